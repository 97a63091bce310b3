// GateTrainer: stage 2 — the gate learns next-tool prediction with loss CE − λ·H(w) over each
// example's candidates, the encoder frozen (context vectors c computed once and cached). The
// backward pass through the MLP [c, d, c⊙d, |c−d|] → GELU layers → score, and into the tool
// vectors d, is written out here; a test checks it against finite differences.
import Foundation
import LLM
import ParaTool
import Tensor

/// Settings of gate training.
public struct GateTrainingConfig: Sendable, Codable, Equatable {
    /// Optimisation steps.
    public var steps = 200
    /// Examples per step (losses averaged).
    public var batchSize = 16
    /// Weight of the entropy bonus: loss = CE − λ·H(w) (the reference code uses 0.2).
    public var entropyWeight: Float = 0.2
    /// The optimiser; `totalSteps` is set to `steps`.
    public var optimizer: AdamWConfig
    /// Seed of the data order.
    public var seed: UInt64 = 0
    /// Save a checkpoint every this many steps (0: only at the end or on a stop).
    public var checkpointEvery = 50

    /// The defaults: 200 steps of 16 examples, λ = 0.2, learning rate 1e-3 after 10 warm-up steps.
    public init() {
        optimizer = AdamWConfig()
        optimizer.learningRate = 1e-3
        optimizer.warmupSteps = 10
    }
}

/// One next-tool example: the frozen encoding of the context, the candidates, and the target
/// distribution over them (uniform over the step's gold tools).
public struct GateExample: Sendable, Equatable {
    /// The frozen encoder's vector c of the context.
    public var context: [Float]
    /// The candidate tools, in the order of `target`.
    public var candidates: [String]
    /// The target distribution over the candidates (sums to 1).
    public var target: [Float]

    /// An example.
    public init(context: [Float], candidates: [String], target: [Float]) {
        self.context = context
        self.candidates = candidates
        self.target = target
    }
}

/// Gradients of the gate's loss: per MLP layer (same shapes as the layer) and per tool vector.
public struct GateGradients {
    /// dL/dW of each layer, row-major (outputs × inputs).
    public var weights: [[Float]]
    /// dL/db of each layer.
    public var biases: [[Float]]
    /// dL/dd of each tool vector that appeared among the candidates.
    public var tools: [String: [Float]]
}

/// Trains a gate's MLP and tool vectors.
public final class GateTrainer {
    /// The gate being trained.
    public let gate: GateNetwork
    /// The settings.
    public let config: GateTrainingConfig
    /// Where checkpoints go (nil: none).
    public var checkpoints: CheckpointDirectory?
    /// Continue from the latest checkpoint when there is one.
    public var resume = false

    /// A trainer for `gate` (its weights and tool vectors are updated in place).
    public init(gate: GateNetwork, config: GateTrainingConfig) {
        self.gate = gate
        self.config = config
    }

    /// CE − λ·H(w) averaged over `batch`, and its gradients. Candidates must have tool vectors.
    public func lossAndGradients(_ batch: [GateExample], entropyWeight lambda: Float) -> (loss: Float, gradients: GateGradients) {
        let d = gate.config.dimension
        let layers = gate.layers
        let n = batch.reduce(0) { $0 + $1.candidates.count }
        // Inputs: one row [c, d_i, c⊙d_i, |c−d_i|] per (example, candidate).
        let x = FloatBuffer(count: n * 4 * d)
        var row = 0
        for e in batch {
            for name in e.candidates {
                let t = gate.toolVectors[name]!
                x.write(e.context, at: row * 4 * d)
                x.write(t, at: row * 4 * d + d)
                x.write(zip(e.context, t).map { $0 * $1 }, at: row * 4 * d + 2 * d)
                x.write(zip(e.context, t).map { abs($0 - $1) }, at: row * 4 * d + 3 * d)
                row += 1
            }
        }
        // Forward, keeping each layer's input and pre-activation.
        var inputs = [MatrixView(x, rows: n, cols: 4 * d)]
        var pre = [MatrixView]()
        for (k, layer) in layers.enumerated() {
            let z = MatrixView(FloatBuffer(count: n * layer.outputs), rows: n, cols: layer.outputs)
            BLAS.gemmABt(inputs[k], MatrixView(layer.weight, rows: layer.outputs, cols: layer.inputs), into: z)
            Kernels.addRowVector(layer.bias, into: z)
            pre.append(z)
            if k < layers.count - 1 {
                let a = MatrixView(FloatBuffer(count: n * layer.outputs), rows: n, cols: layer.outputs)
                for i in 0..<(n * layer.outputs) { a.buffer[i] = Self.gelu(z.buffer[i]) }
                inputs.append(a)
            }
        }
        let scores = pre.last!
        // Loss and dL/ds per example: CE = −Σ y log w, H = −Σ w log w,
        // d(CE − λH)/ds_j = w_j − y_j + λ w_j (log w_j + H).
        let ds = MatrixView(FloatBuffer(count: n), rows: n, cols: 1)
        var loss: Float = 0
        row = 0
        let scale = 1 / Float(batch.count)
        for e in batch {
            let s = (0..<e.candidates.count).map { scores[row + $0, 0] }
            let m = s.max()!
            let logSum = m + logf(s.reduce(Float(0)) { $0 + expf($1 - m) })
            let logw = s.map { $0 - logSum }
            let w = logw.map(expf)
            var entropy: Float = 0, ce: Float = 0
            for j in w.indices {
                entropy -= w[j] * logw[j]
                ce -= e.target[j] * logw[j]
            }
            loss += (ce - lambda * entropy) * scale
            for j in w.indices { ds[row + j, 0] = (w[j] - e.target[j] + lambda * w[j] * (logw[j] + entropy)) * scale }
            row += e.candidates.count
        }
        // Backward through the layers.
        var weights = [[Float]](repeating: [], count: layers.count), biases = weights
        var dz = ds
        for k in stride(from: layers.count - 1, through: 0, by: -1) {
            let layer = layers[k]
            let dw = MatrixView(FloatBuffer(count: layer.outputs * layer.inputs), rows: layer.outputs, cols: layer.inputs)
            BLAS.gemmAtB(dz, inputs[k], into: dw)
            weights[k] = dw.toArray()
            biases[k] = (0..<layer.outputs).map { o in (0..<n).reduce(Float(0)) { $0 + dz[$1, o] } }
            let dIn = MatrixView(FloatBuffer(count: n * layer.inputs), rows: n, cols: layer.inputs)
            BLAS.gemmAB(dz, MatrixView(layer.weight, rows: layer.outputs, cols: layer.inputs), into: dIn)
            if k > 0 {
                let z = pre[k - 1]
                for i in 0..<(n * layer.inputs) { dIn.buffer[i] *= Self.geluDerivative(z.buffer[i]) }
            }
            dz = dIn
        }
        // dz is now dL/dx; x = [c, d, c⊙d, |c−d|] with c frozen: dd = dx₂ + c⊙dx₃ + sign(d−c)⊙dx₄.
        var tools = [String: [Float]]()
        row = 0
        for e in batch {
            for name in e.candidates {
                let t = gate.toolVectors[name]!
                var g = tools[name] ?? [Float](repeating: 0, count: d)
                for i in 0..<d {
                    let diff = t[i] - e.context[i]
                    let sign: Float = diff > 0 ? 1 : (diff < 0 ? -1 : 0)
                    g[i] += dz[row, d + i] + e.context[i] * dz[row, 2 * d + i] + sign * dz[row, 3 * d + i]
                }
                tools[name] = g
                row += 1
            }
        }
        return (loss, GateGradients(weights: weights, biases: biases, tools: tools))
    }

    /// Trains on `examples` for `config.steps` steps (job `gate` of stage `gate`). Every tool of
    /// every candidate set must have a vector in the gate. Returns false when `progress` asked to
    /// stop (a checkpoint was written).
    @discardableResult
    public func train(examples: [GateExample], progress: ProgressHandler) throws -> Bool {
        guard !examples.isEmpty else { throw ToolFormatError("gate: no training examples") }
        let missing = Set(examples.flatMap(\.candidates)).filter { gate.toolVectors[$0] == nil }
        guard missing.isEmpty else { throw GateError.unknownTool(missing.sorted()[0]) }
        let names = gate.toolVectors.keys.sorted()
        let vectors = names.map { FloatBuffer(gate.toolVectors[$0]!) }
        let params = gate.layers.flatMap { [$0.weight, $0.bias] } + vectors
        var opt = config.optimizer
        opt.totalSteps = config.steps
        let group = ParameterGroup(name: "gate", parameters: params, optimizer: AdamW(parameters: params, config: opt))
        let loop = JobLoop(stage: "gate", job: "gate", totalSteps: config.steps, seed: config.seed,
                           fingerprint: fingerprint(examples, tools: names), checkpointEvery: config.checkpointEvery,
                           checkpoints: checkpoints, resume: resume)
        let restored = try loop.restore([group])
        if restored != nil {
            for (name, v) in zip(names, vectors) { gate.setTool(name, vector: v.toArray()) }
        }
        let start = restored?.step ?? 0
        let order = JobLoop.order(seed: config.seed, job: "gate", count: examples.count)
        let batch = min(config.batchSize, examples.count)
        return try loop.run(groups: [group], from: start, progress: progress) { step in
            let chosen = (0..<batch).map { examples[order(step * batch + $0)] }
            let (loss, g) = lossAndGradients(chosen, entropyWeight: config.entropyWeight)
            var grads = zip(g.weights, g.biases).flatMap { [FloatBuffer($0), FloatBuffer($1)] }
            grads += names.map { FloatBuffer(g.tools[$0] ?? [Float](repeating: 0, count: gate.config.dimension)) }
            let norm = group.optimizer.update(gradients: grads)
            for (name, v) in zip(names, vectors) { gate.setTool(name, vector: v.toArray()) }
            return StepOutcome(loss: loss, tokens: chosen.reduce(0) { $0 + $1.candidates.count },
                               learningRate: group.optimizer.learningRate(at: group.optimizer.step), gradientNorm: norm)
        }
    }

    private func fingerprint(_ examples: [GateExample], tools: [String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var text = String(decoding: (try? encoder.encode(config)) ?? Data(), as: UTF8.self) + "\n" + tools.joined(separator: ",") + "\n"
        for e in examples {
            text += e.candidates.joined(separator: ",") + "|" + e.target.map { String($0.bitPattern) }.joined(separator: ",") + "|"
            text += SHA1.hex(e.context.map { String($0.bitPattern) }.joined(separator: ",")) + "\n"
        }
        return SHA1.hex(text)
    }

    /// GELU with the exact erf form (PyTorch's default), as the gate uses it.
    static func gelu(_ x: Float) -> Float { 0.5 * x * (1 + erff(x / Float(2).squareRoot())) }

    /// d/dx GELU(x) = Φ(x) + x·φ(x).
    static func geluDerivative(_ x: Float) -> Float {
        0.5 * (1 + erff(x / Float(2).squareRoot())) + x * expf(-0.5 * x * x) / (2 * Float.pi).squareRoot()
    }
}
