// GateNetwork: ParaTool's soft tool selection. Each tool has a vector d (initialised from the
// encoding of its "name: description", trainable); an MLP scores [c, d, c⊙d, |c−d|] for the
// context vector c; a softmax over the candidates gives the weights, optionally kept to the
// top N and renormalised. Saved as safetensors plus a JSON config.
import Foundation
import LLM
import Tensor

/// Errors of the gate.
public enum GateError: Error, CustomStringConvertible {
    case unknownTool(String)
    case noCandidates
    case invalidFile(String)
    /// The gate's vectors are not as wide as the encoder's.
    case dimensionMismatch(gate: Int, encoder: Int)

    public var description: String {
        switch self {
        case .unknownTool(let t): return "the gate has no vector for tool '\(t)' (add it with addTool)"
        case .noCandidates: return "no candidate tools"
        case .invalidFile(let m): return "invalid gate files: \(m)"
        case .dimensionMismatch(let g, let e): return "the gate has dimension \(g), the encoder's vectors have \(e) values"
        }
    }
}

/// The gate's configuration (saved as `gate_config.json`).
public struct GateConfig: Sendable, Codable, Equatable {
    /// Width of c and d (the model's hidden size).
    public var dimension: Int
    /// Hidden widths of the MLP (default [512, 512]); input is 4·dimension, output 1.
    public var hidden: [Int]
    /// How the encoder pools hidden states.
    public var pooling: Pooling
    /// Keep only the N highest-weighted candidates (nil: all).
    public var topN: Int?
    /// Decoder layers the encoder runs before pooling (nil: all). An inner layer selects tools
    /// better than the last one, which serves next-token prediction (`paratool bench selection`).
    public var encoderLayers: Int?

    public init(dimension: Int, hidden: [Int] = [512, 512], pooling: Pooling = .mean, topN: Int? = nil,
                encoderLayers: Int? = nil) {
        self.dimension = dimension
        self.hidden = hidden
        self.pooling = pooling
        self.topN = topN
        self.encoderLayers = encoderLayers
    }

    /// The encoder depth a new gate uses on a model of `layerCount` layers: four fifths of them
    /// (24 of SmolLM2-135M's 30, where mean pooling picked BFCL `multiple`'s gold tool for 86.5%
    /// of questions against 76.5% at the last layer), never fewer than one.
    public static func defaultEncoderLayers(layerCount: Int) -> Int { max(1, (layerCount * 4 + 2) / 5) }

    /// Layer widths from input to output: [4d, hidden..., 1]. Only for a config that passed
    /// `validate()` (a made-up one is built by code, a read one is checked by `load`).
    public var layerWidths: [Int] { [4 * dimension] + hidden + [1] }

    /// The largest width accepted in a gate read from files (inputs and hidden layers alike):
    /// far above any model's hidden size, far below where `4 · dimension` or a layer's
    /// `inputs · outputs` could overflow.
    public static let maxWidth = 1 << 20

    /// Throws unless every width is in 1…`maxWidth` (and so `layerWidths`, the layers' sizes and
    /// the tool vector table are computable without overflow) and `topN`/`encoderLayers`, when
    /// set, are at least 1. `GateNetwork.load` checks this before sizing anything from the file.
    public func validate() throws {
        guard (1...Self.maxWidth).contains(dimension) else {
            throw GateError.invalidFile("dimension \(dimension) is outside 1…\(Self.maxWidth)")
        }
        for width in hidden where !(1...Self.maxWidth).contains(width) {
            throw GateError.invalidFile("hidden width \(width) is outside 1…\(Self.maxWidth)")
        }
        if let topN, topN < 1 { throw GateError.invalidFile("topN \(topN) is below 1") }
        if let encoderLayers, encoderLayers < 1 { throw GateError.invalidFile("encoderLayers \(encoderLayers) is below 1") }
    }
}

/// One dense layer `y = W x + b` (W: out × in).
public struct DenseLayer: Sendable {
    public let weight: FloatBuffer
    public let bias: FloatBuffer
    public let inputs: Int
    public let outputs: Int

    /// PyTorch's nn.Linear default initialisation: U(−1/√in, 1/√in) for W and b.
    init(inputs: Int, outputs: Int, rng: inout SeededGenerator) {
        self.inputs = inputs
        self.outputs = outputs
        let bound = 1 / Float(inputs).squareRoot()
        weight = FloatBuffer((0..<(inputs * outputs)).map { _ in rng.uniform(-bound, bound) })
        bias = FloatBuffer((0..<outputs).map { _ in rng.uniform(-bound, bound) })
    }

    init(weight: FloatBuffer, bias: FloatBuffer, inputs: Int, outputs: Int) {
        self.weight = weight
        self.bias = bias
        self.inputs = inputs
        self.outputs = outputs
    }
}

/// The gate: tool vectors and the scoring MLP.
public final class GateNetwork {
    public let config: GateConfig
    public private(set) var layers: [DenseLayer]
    /// Tool vectors by name.
    public private(set) var toolVectors: [String: [Float]] = [:]

    /// A fresh gate with seeded random MLP weights and no tools.
    public init(config: GateConfig, seed: UInt64 = 0) {
        self.config = config
        var rng = SeededGenerator(seed: seed)
        let w = config.layerWidths
        layers = zip(w, w.dropFirst()).map { DenseLayer(inputs: $0, outputs: $1, rng: &rng) }
    }

    init(config: GateConfig, layers: [DenseLayer], toolVectors: [String: [Float]]) {
        self.config = config
        self.layers = layers
        self.toolVectors = toolVectors
    }

    /// Sets tool `name`'s vector (e.g. the encoding of "name: description").
    public func setTool(_ name: String, vector: [Float]) {
        precondition(vector.count == config.dimension, "tool vector has \(vector.count) values, gate dimension is \(config.dimension)")
        toolVectors[name] = vector
    }

    /// The reserved candidate that stands for "no call": a gate trained on steps whose answer is
    /// text (no tool fits, or the observations already answer) scores it beside the tools, and
    /// the engine answers in text when it wins. Reserved, like the store's `_global` and `_gate`:
    /// a catalogue should not name a tool so.
    public static let noToolName = "_no_tool"
    /// The text whose encoding starts the no-call candidate's vector.
    public static let noToolDescription = "none of the tools: answer in plain text, because no tool fits the request or the observations already answer it"

    /// Initialises the no-call candidate's vector (when it has none) from the encoding of
    /// `noToolDescription`.
    public func addNoTool(encoder: ContextEncoder) {
        addTools([(Self.noToolName, Self.noToolDescription)], encoder: encoder)
    }

    /// Initialises the vectors of `tools` that have none from their "name: description" encodings
    /// (`ContextEncoder.encodeTool`: the document's first tokens).
    public func addTools(_ tools: [(name: String, description: String)], encoder: ContextEncoder) {
        for t in tools where toolVectors[t.name] == nil {
            setTool(t.name, vector: encoder.encodeTool(name: t.name, description: t.description).vector)
        }
    }

    /// The MLP's score for context `c` and tool vector `d`.
    public func score(context c: [Float], tool d: [Float]) -> Float {
        var x = c + d + zip(c, d).map { $0 * $1 } + zip(c, d).map { abs($0 - $1) }
        for (k, layer) in layers.enumerated() {
            var y = [Float](repeating: 0, count: layer.outputs)
            for o in 0..<layer.outputs {
                var s = layer.bias[o]
                let row = layer.weight.slice(o * layer.inputs, layer.inputs)
                for i in 0..<layer.inputs { s += row[i] * x[i] }
                y[o] = k == layers.count - 1 ? s : Self.gelu(s)
            }
            x = y
        }
        return x[0]
    }

    /// The MLP's scores for context `c` and each of `tools`, as one batch: the features of every
    /// tool are the rows of one matrix and each layer is one sgemm (scoring tools one at a time
    /// costs a matrix-vector product per tool and layer). Equal to `score` per tool up to
    /// summation order.
    public func scores(context c: [Float], tools: [[Float]]) -> [Float] {
        guard !tools.isEmpty else { return [] }
        let n = tools.count, d = c.count
        var x = FloatBuffer(count: n * 4 * d)
        for (row, t) in tools.enumerated() {
            precondition(t.count == d, "tool vector of \(t.count) values, context of \(d)")
            var features = [Float](repeating: 0, count: 4 * d)
            for i in 0..<d {
                features[i] = c[i]
                features[d + i] = t[i]
                features[2 * d + i] = c[i] * t[i]
                features[3 * d + i] = abs(c[i] - t[i])
            }
            x.write(features, at: row * 4 * d)
        }
        var inputs = 4 * d
        for (k, layer) in layers.enumerated() {
            let y = FloatBuffer(count: n * layer.outputs)
            BLAS.gemmABt(MatrixView(x, rows: n, cols: inputs), MatrixView(layer.weight, rows: layer.outputs, cols: layer.inputs),
                         into: MatrixView(y, rows: n, cols: layer.outputs))
            let last = k == layers.count - 1
            for r in 0..<n {
                for o in 0..<layer.outputs {
                    let v = y[r * layer.outputs + o] + layer.bias[o]
                    y[r * layer.outputs + o] = last ? v : Self.gelu(v)
                }
            }
            x = y
            inputs = layer.outputs
        }
        return x.toArray()
    }

    /// GELU with the exact erf form (PyTorch's default).
    static func gelu(_ x: Float) -> Float { 0.5 * x * (1 + erff(x / Float(2).squareRoot())) }

    /// Softmax weights over `candidates` for context `c`, kept to the top N (config or argument)
    /// and renormalised. Order follows `candidates`.
    public func weights(context c: [Float], candidates: [String], topN: Int? = nil) throws -> [Float] {
        guard !candidates.isEmpty else { throw GateError.noCandidates }
        let tools = try candidates.map { name -> [Float] in
            guard let d = toolVectors[name] else { throw GateError.unknownTool(name) }
            return d
        }
        return ToolSelection.softmax(scores(context: c, tools: tools), topN: topN ?? config.topN)
    }
}

/// Selection rules shared by the gate and the baselines the evaluation compares.
public enum ToolSelection {
    /// Softmax of `scores`; with `topN`, all but the N largest are zeroed and the rest renormalised.
    public static func softmax(_ scores: [Float], topN: Int? = nil) -> [Float] {
        let m = scores.max() ?? 0
        var e = scores.map { expf($0 - m) }
        if let n = topN, n < e.count {
            let keep = Set(e.indices.sorted { e[$0] > e[$1] || (e[$0] == e[$1] && $0 < $1) }.prefix(max(n, 1)))
            for i in e.indices where !keep.contains(i) { e[i] = 0 }
        }
        let z = e.reduce(0, +)
        return e.map { $0 / z }
    }

    /// Equal weights (Param+Average).
    public static func uniform(count: Int) -> [Float] { [Float](repeating: 1 / Float(count), count: count) }

    /// Weight 1 on the largest score, 0 elsewhere (Param+Top-1).
    public static func top1(_ scores: [Float]) -> [Float] {
        let best = scores.indices.max { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 > $1) } ?? 0
        return scores.indices.map { $0 == best ? 1 : 0 }
    }

    /// Weight 1 on the gold tool (Param+Oracle).
    public static func oracle(candidates: [String], gold: String) -> [Float] {
        candidates.map { $0 == gold ? 1 : 0 }
    }

    /// Cosine similarity of c and each tool vector, softmaxed (Param+EmbSim).
    public static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for (x, y) in zip(a, b) { dot += x * y; na += x * x; nb += y * y }
        return na > 0 && nb > 0 ? dot / (na.squareRoot() * nb.squareRoot()) : 0
    }
}
