// LlamaModel: the weights of a Llama-family decoder (Llama, Qwen2, SmolLM) arranged as the
// Hugging Face module tree (`model.layers.N.mlp.gate_proj`), loaded and shape-checked from any
// WeightSource. Holds no mutable state: one model is shared by every Transformer that runs it.
import Foundation
import Synchronization
import Tensor

/// How a weight matrix is stored in memory. Only float32 today; the enum is the seam where
/// quantised in-memory formats go.
public enum WeightStorage: Sendable {
    /// Row-major float32 (owned, or mapped from the file).
    case float32(FloatBuffer)
}

/// A weight matrix `[rows = out, cols = in]`.
public struct WeightMatrix: Sendable {
    public let rows: Int
    public let cols: Int
    public let storage: WeightStorage

    /// Wraps a row-major float32 buffer of `rows × cols`.
    public init(rows: Int, cols: Int, float32 buffer: FloatBuffer) {
        precondition(buffer.count == rows * cols, "weight buffer size mismatch")
        self.rows = rows
        self.cols = cols
        storage = .float32(buffer)
    }

    /// The matrix as a view for the float32 kernels.
    public var view: MatrixView {
        switch storage {
        case .float32(let b): return MatrixView(b, rows: rows, cols: cols)
        }
    }

    /// Bytes read from memory by one full pass over the matrix.
    public var byteCount: Int {
        switch storage {
        case .float32: return rows * cols * 4
        }
    }
}

/// A linear layer `y = x Wᵀ + b`.
public struct Linear: Sendable {
    public let weight: WeightMatrix
    public let bias: FloatBuffer?

    public init(weight: WeightMatrix, bias: FloatBuffer? = nil) {
        self.weight = weight
        self.bias = bias
    }

    /// Input width.
    public var inFeatures: Int { weight.cols }
    /// Output width.
    public var outFeatures: Int { weight.rows }

    /// Up to this many rows (decode of a small batch) use the matrix-vector kernel, which reads
    /// each weight once for all rows without sgemm's packing copy; more rows use sgemm.
    public static let maxMatVecRows = 16

    /// `y = x Wᵀ + b` (or `y += x Wᵀ + b` when `accumulate`). Few rows use the SIMD
    /// matrix-vector kernel; more rows use sgemm.
    public func apply(_ x: MatrixView, into y: MatrixView, accumulate: Bool = false, matvecThreads: Int = 1) {
        if x.rows <= Linear.maxMatVecRows {
            MatVec.multiply(weight.view, x, into: y, accumulate: accumulate, threads: matvecThreads)
        } else {
            BLAS.gemmABt(x, weight.view, into: y, beta: accumulate ? 1 : 0)
        }
        if let bias { Kernels.addRowVector(bias, into: y) }
    }

    /// Two or three linears that read the same input (q/k/v, gate/up). For one row their
    /// matrix-vector products run as one parallel call; otherwise each is an sgemm.
    public static func apply(_ x: MatrixView, _ a: (Linear, MatrixView), _ b: (Linear, MatrixView),
                             _ c: (Linear, MatrixView)? = nil, matvecThreads: Int) {
        guard x.rows <= maxMatVecRows else {
            a.0.apply(x, into: a.1)
            b.0.apply(x, into: b.1)
            if let c { c.0.apply(x, into: c.1) }
            return
        }
        MatVec.multiply(MatVec.Job(a.0.weight.view, x, into: a.1), MatVec.Job(b.0.weight.view, x, into: b.1),
                        c.map { MatVec.Job($0.0.weight.view, x, into: $0.1) }, threads: matvecThreads)
        if let bias = a.0.bias { Kernels.addRowVector(bias, into: a.1) }
        if let bias = b.0.bias { Kernels.addRowVector(bias, into: b.1) }
        if let c, let bias = c.0.bias { Kernels.addRowVector(bias, into: c.1) }
    }
}

/// The weights of one decoder layer.
public struct DecoderLayerWeights: Sendable {
    public let inputNorm: FloatBuffer
    public let qProj: Linear
    public let kProj: Linear
    public let vProj: Linear
    public let oProj: Linear
    public let postAttentionNorm: FloatBuffer
    public let gateProj: Linear
    public let upProj: Linear
    public let downProj: Linear
}

/// The FFN linears an adapter may attach to, named as in Hugging Face / PEFT.
public enum FFNProjection: String, Sendable, CaseIterable {
    case gate = "gate_proj"
    case up = "up_proj"
    case down = "down_proj"
}

/// A loaded Llama-family model.
public final class LlamaModel: Sendable {
    public let config: ModelConfig
    /// Token embedding table `[vocab, hidden]`.
    public let embedding: WeightMatrix
    public let layers: [DecoderLayerWeights]
    public let finalNorm: FloatBuffer
    /// Output head `[vocab, hidden]` (the embedding table itself when tied).
    public let lmHead: WeightMatrix
    public let rope: RopeTable

    /// Loads and shape-checks every tensor of `config` from `weights` (Hugging Face names). The
    /// layers and the embedding are read on every core (dequantisation is most of a load); an
    /// error names the first failing tensor in layer order.
    public init(config: ModelConfig, weights: WeightSource) throws {
        self.config = config
        let h = config.hiddenSize
        let layerCount = config.layerCount
        let loaded = Mutex<[Result<DecoderLayerWeights, any Error>?]>(Array(repeating: nil, count: layerCount))
        let embedding = Mutex<Result<WeightMatrix, any Error>?>(nil)
        DispatchQueue.concurrentPerform(iterations: layerCount + 1) { index in
            if index == layerCount {
                let result = Result { try Self.matrix("model.embed_tokens.weight", config.vocabSize, h, from: weights) }
                embedding.withLock { $0 = result }
            } else {
                let result = Result { try Self.layer(index, config: config, from: weights) }
                loaded.withLock { $0[index] = result }
            }
        }
        self.embedding = try embedding.withLock { $0! }.get()
        layers = try loaded.withLock { $0 }.map { try $0!.get() }
        finalNorm = try Self.tensor("model.norm.weight", [h], from: weights)
        if config.tieWordEmbeddings || weights.shape(of: "lm_head.weight") == nil {
            guard config.tieWordEmbeddings else { throw ModelLoadError.missingTensor("lm_head.weight") }
            lmHead = self.embedding
        } else {
            lmHead = try Self.matrix("lm_head.weight", config.vocabSize, h, from: weights)
        }
        rope = RopeTable(headDim: config.headDim, theta: config.ropeTheta, llama3: config.ropeLlama3)
    }

    private static func tensor(_ name: String, _ shape: [Int], from weights: WeightSource) throws -> FloatBuffer {
        guard let found = weights.shape(of: name) else { throw ModelLoadError.missingTensor(name) }
        guard found == shape else { throw ModelLoadError.shapeMismatch(tensor: name, expected: shape, found: found) }
        return try weights.load(name)
    }

    private static func matrix(_ name: String, _ rows: Int, _ cols: Int, from weights: WeightSource) throws -> WeightMatrix {
        WeightMatrix(rows: rows, cols: cols, float32: try tensor(name, [rows, cols], from: weights))
    }

    private static func layer(_ l: Int, config: ModelConfig, from weights: WeightSource) throws -> DecoderLayerWeights {
        let h = config.hiddenSize, inter = config.intermediateSize, p = "model.layers.\(l)"
        func linear(_ prefix: String, _ out: Int, _ inp: Int, bias: Bool) throws -> Linear {
            Linear(weight: try matrix(prefix + ".weight", out, inp, from: weights),
                   bias: bias ? try tensor(prefix + ".bias", [out], from: weights) : nil)
        }
        let b = config.attentionBias
        return DecoderLayerWeights(
            inputNorm: try tensor(p + ".input_layernorm.weight", [h], from: weights),
            qProj: try linear(p + ".self_attn.q_proj", config.qDim, h, bias: b),
            kProj: try linear(p + ".self_attn.k_proj", config.kvDim, h, bias: b),
            vProj: try linear(p + ".self_attn.v_proj", config.kvDim, h, bias: b),
            oProj: try linear(p + ".self_attn.o_proj", h, config.qDim, bias: false),
            postAttentionNorm: try tensor(p + ".post_attention_layernorm.weight", [h], from: weights),
            gateProj: try linear(p + ".mlp.gate_proj", inter, h, bias: false),
            upProj: try linear(p + ".mlp.up_proj", inter, h, bias: false),
            downProj: try linear(p + ".mlp.down_proj", h, inter, bias: false))
    }

    /// Loads a Hugging Face model folder (`config.json` + safetensors).
    public convenience init(huggingFaceDirectory dir: URL) throws {
        let configURL = dir.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: configURL.path) else {
            throw ModelLoadError.invalidFile(path: configURL.path, reason: "cannot read config.json")
        }
        try self.init(config: try ModelConfig(huggingFaceJSON: data), weights: try SafetensorsWeights(directory: dir))
    }

    /// Number of parameters in the linear layers a token passes through (excluding the embedding
    /// lookup, including the output head).
    public var linearParameterCount: Int {
        let perLayer = layers.first.map { l in
            [l.qProj, l.kProj, l.vProj, l.oProj, l.gateProj, l.upProj, l.downProj]
                .reduce(0) { $0 + $1.weight.rows * $1.weight.cols }
        } ?? 0
        return perLayer * layers.count + lmHead.rows * lmHead.cols
    }

    /// Bytes of weights read per decoded token (every linear once, plus norms).
    public var bytesReadPerToken: Int {
        let perLayer = layers.first.map { l in
            [l.qProj, l.kProj, l.vProj, l.oProj, l.gateProj, l.upProj, l.downProj].reduce(0) { $0 + $1.weight.byteCount }
        } ?? 0
        return perLayer * layers.count + lmHead.byteCount
    }
}
