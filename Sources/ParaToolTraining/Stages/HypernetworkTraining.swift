// HypernetworkTraining: the adapter generator (AdapterHypernetwork) trained through the frozen base
// model, as Text-to-LoRA trains its hypernetwork by fine-tuning rather than by reconstructing
// trained adapters. Each step writes the adapters of a few training tools from their documents,
// runs one of each tool's synthesized sequences through the base with its own written adapter at
// weight 1 (LoRABackward: the loss's gradients for every A and B), and chains those gradients into
// the generator's parameters:
//   dH_p += dθ_pᵀ c_p,  dc = dθ_p H_p ⊙ [pre > 0],  dW₂ += dcᵀ [z; e_l; e_p],  d[z; e_l; e_p] = dc W₂,
//   dW₁ += (dz ⊙ (1 − z²)) x̂ᵀ
// (θ⁰ stays as given). One AdamW over every trainable buffer; checkpoints and resume as every
// training job here has them (JobLoop). The gradients' chain is checked against finite
// differences of the loss in the tests.
import Foundation
import LLM
import ParaTool
import Tensor

/// Gradients of an `AdapterHypernetwork`'s trainable buffers (its `trainableBuffers` order).
public final class HypernetworkGradients {
    public let buffers: [FloatBuffer]

    /// Zero gradients shaped like `generator`'s trainable buffers.
    public init(like generator: AdapterHypernetwork) {
        buffers = generator.trainableBuffers.map { FloatBuffer(count: $0.count) }
    }

    /// Sets every gradient to zero.
    public func zero() { for b in buffers { b.zero() } }
}

extension AdapterHypernetwork {
    /// Adds to `gradients` `scale` times the gradients of the generator's trainable parameters,
    /// given `adapterGradients`: the loss's gradients with respect to the A and B of the adapter
    /// written from `activations`.
    public func accumulate(_ adapterGradients: AdapterGradients, activations: HypernetworkActivations,
                           into gradients: HypernetworkGradients, scale: Float = 1) {
        let s = shape
        let g = gradients.buffers
        let (gw1, gb1, gLayer, gProjection, gw2, gb2) = (g[0], g[1], g[2], g[3], g[4], g[5])
        let c = s.hiddenWidth, v = s.mixedWidth
        var dz = [Float](repeating: 0, count: s.codeWidth)
        for (k, p) in s.projections.enumerated() {
            let width = s.pairWidth(p), input = s.sizes(p).input
            let dTheta = FloatBuffer(count: s.layers * width)
            for l in 0..<s.layers {
                guard let ga = adapterGradients.a[l][p], let gb = adapterGradients.b[l][p] else {
                    preconditionFailure("the adapter's gradients have no \(p.rawValue) pair on layer \(l)")
                }
                dTheta.write(ga.toArray(), at: l * width)
                dTheta.write(gb.toArray(), at: l * width + s.rank * input)
            }
            let d = MatrixView(dTheta, rows: s.layers, cols: width)
            BLAS.gemmAtB(d, activations.codes[k], into: MatrixView(g[6 + k], rows: width, cols: c), alpha: scale, beta: 1)
            let dc = MatrixView(FloatBuffer(count: s.layers * c), rows: s.layers, cols: c)
            BLAS.gemmAB(d, MatrixView(heads[k], rows: width, cols: c), into: dc, alpha: scale)
            for i in 0..<(s.layers * c) where activations.preActivations[k].buffer[i] <= 0 { dc.buffer[i] = 0 }
            BLAS.gemmAtB(dc, activations.mixed[k], into: MatrixView(gw2, rows: c, cols: v), beta: 1)
            let dm = MatrixView(FloatBuffer(count: s.layers * v), rows: s.layers, cols: v)
            BLAS.gemmAB(dc, MatrixView(w2, rows: c, cols: v), into: dm)
            for l in 0..<s.layers {
                for j in 0..<c { gb2[j] += dc[l, j] }
                for t in 0..<s.codeWidth { dz[t] += dm[l, t] }
                for j in 0..<s.layerEmbeddingWidth { gLayer[l * s.layerEmbeddingWidth + j] += dm[l, s.codeWidth + j] }
                for j in 0..<s.projectionEmbeddingWidth {
                    gProjection[k * s.projectionEmbeddingWidth + j] += dm[l, s.codeWidth + s.layerEmbeddingWidth + j]
                }
            }
        }
        let x = activations.standardized
        for t in 0..<s.codeWidth {
            let z = activations.code[t]
            let d = dz[t] * (1 - z * z)
            gb1[t] += d
            if d == 0 { continue }
            for e in 0..<s.encodingWidth { gw1[t * s.encodingWidth + e] += d * x[e] }
        }
    }
}

/// One training tool of the generator: its document's encoding and its synthesized sequences.
public struct HypernetworkTrainingTool: Sendable {
    public var name: String
    public var encoding: [Float]
    /// Prompt + target token ids and the target's length (the loss is the target's mean NLL).
    public var sequences: [(ids: [Int], targets: Int)]

    public init(name: String, encoding: [Float], sequences: [(ids: [Int], targets: Int)]) {
        self.name = name
        self.encoding = encoding
        self.sequences = sequences
    }
}

/// Settings of generator training.
public struct HypernetworkTrainingConfig: Sendable, Codable, Equatable {
    /// Optimisation steps.
    public var steps = 300
    /// Tools per step, one sequence each (their losses averaged).
    public var toolsPerStep = 4
    /// The optimiser (`totalSteps` is set to `steps`).
    public var optimizer: AdamWConfig
    /// Seed of the tool and sequence order.
    public var seed: UInt64 = 0
    /// Checkpoint every this many steps.
    public var checkpointEvery = 25
    /// Rows of one forward and backward pass (as AdapterTrainer's).
    public var maxRowsPerPass = 2048

    /// The defaults: 300 steps of 4 tools, learning rate 1e-3 after 10 warm-up steps, weight decay 0.01.
    public init() {
        optimizer = AdamWConfig()
        optimizer.learningRate = 1e-3
        optimizer.warmupSteps = 10
        optimizer.weightDecay = 0.01
    }
}

/// Trains an `AdapterHypernetwork` in place (see the file's header).
public final class HypernetworkTrainer {
    public let model: LlamaModel
    public let config: HypernetworkTrainingConfig
    public let threads: ComputeThreads
    /// Where checkpoints go (nil: none), and whether to continue from the latest.
    public var checkpoints: CheckpointDirectory?
    public var resume = false
    private lazy var backward = LoRABackward(model: model, threads: threads)

    public init(model: LlamaModel, config: HypernetworkTrainingConfig, threads: ComputeThreads = .machine) {
        self.model = model
        self.config = config
        self.threads = threads
    }

    /// The stage name of the generator's checkpoints.
    public static let stage = "generator"

    /// Trains `generator` on `tools` for `config.steps` steps (from its latest checkpoint when
    /// resuming). Returns true when it ran to its end, false when `progress` asked to stop (a
    /// checkpoint was written).
    @discardableResult
    public func train(_ generator: AdapterHypernetwork, tools: [HypernetworkTrainingTool], progress: ProgressHandler) throws -> Bool {
        let usable = tools.filter { !$0.sequences.isEmpty }
        guard !usable.isEmpty else { throw ToolFormatError("generator training: no tool has a training sequence") }
        guard usable.allSatisfy({ $0.encoding.count == generator.shape.encodingWidth }) else {
            throw ToolFormatError("generator training: a tool's encoding is not \(generator.shape.encodingWidth) values wide")
        }
        var opt = config.optimizer
        opt.totalSteps = config.steps
        let parameters = generator.trainableBuffers
        let group = ParameterGroup(name: "generator", parameters: parameters, optimizer: AdamW(parameters: parameters, config: opt))
        let loop = JobLoop(stage: Self.stage, job: "generator", totalSteps: config.steps, seed: config.seed,
                           fingerprint: fingerprint(generator, usable), checkpointEvery: config.checkpointEvery,
                           checkpoints: checkpoints, resume: resume)
        let start = try loop.restore([group])?.step ?? 0
        let toolOrder = JobLoop.order(seed: config.seed, job: "generator-tools", count: usable.count)
        let sequenceOrders = usable.map { JobLoop.order(seed: config.seed, job: "generator:\($0.name)", count: $0.sequences.count) }
        let gradients = HypernetworkGradients(like: generator)
        let k = config.toolsPerStep
        return try loop.run(groups: [group], from: start, progress: progress) { step in
            var adapters = [ToolAdapter](), activations = [HypernetworkActivations](), sequences = [TrainingSequence]()
            for j in 0..<k {
                let n = step * k + j
                let t = toolOrder(n)
                let tool = usable[t]
                let sequence = tool.sequences[sequenceOrders[t](n / usable.count)]
                let forward = generator.forward(tool.encoding)
                activations.append(forward)
                adapters.append(generator.adapter(name: tool.name, activations: forward))
                sequences.append(TrainingSequence(ids: sequence.ids, targets: sequence.targets, components: [(j, 1)], lossWeight: 1 / Float(k)))
            }
            let adapterGradients = adapters.map { AdapterGradients(zerosLike: $0) }
            var losses = [Float]()
            for pass in AdapterTrainer.passes(sequences, maxRows: config.maxRowsPerPass) {
                losses += backward.accumulate(Array(sequences[pass]), adapters: adapters, into: adapterGradients)
            }
            gradients.zero()
            for j in 0..<k { generator.accumulate(adapterGradients[j], activations: activations[j], into: gradients) }
            let norm = group.optimizer.update(gradients: gradients.buffers)
            return StepOutcome(loss: losses.reduce(0, +) / Float(k), tokens: sequences.reduce(0) { $0 + $1.ids.count },
                               learningRate: group.optimizer.learningRate(at: group.optimizer.step), gradientNorm: norm)
        }
    }

    /// The mean loss (NLL per target token, averaged over sequences) of `tools`' sequences, each
    /// under the adapter `adapter` gives for its tool: with `generator.generate`, the check of a
    /// generator on tools it did not train on; with `generator.sharedAdapter`, θ⁰'s (fixed, so
    /// computed once).
    public func meanLoss(_ tools: [HypernetworkTrainingTool], adapter: (HypernetworkTrainingTool) -> ToolAdapter) -> Float {
        var total: Float = 0, n = 0
        for tool in tools {
            let a = adapter(tool)
            for s in tool.sequences {
                total += backward.lossAndGradients(ids: s.ids, targets: s.targets, mixture: Mixture([(a, 1)])).loss
                n += 1
            }
        }
        return total / Float(max(n, 1))
    }

    /// SHA-1 over the settings, the generator's shape and every tool's name and sequences.
    private func fingerprint(_ generator: AdapterHypernetwork, _ tools: [HypernetworkTrainingTool]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var text = String(decoding: (try? encoder.encode(config)) ?? Data(), as: UTF8.self) + "\n"
        text += String(decoding: (try? encoder.encode(generator.shape)) ?? Data(), as: UTF8.self) + "\n"
        for t in tools {
            text += t.name + ":" + t.sequences.map { $0.ids.map(String.init).joined(separator: ",") + "|\($0.targets)" }.joined(separator: ";") + "\n"
        }
        return SHA1.hex(text)
    }
}
