// LlamaModel: the weights of a Llama-family decoder (Llama, Qwen2, SmolLM) arranged as the
// Hugging Face module tree (`model.layers.N.mlp.gate_proj`), loaded and shape-checked from any
// WeightSource. Holds no mutable state: one model is shared by every Transformer that runs it.
import Foundation
import Synchronization
import Tensor

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

    /// How the matrices are held (nil: as the source stores them).
    public let weightFormat: WeightFormat?

    /// Loads and shape-checks every tensor of `config` from `weights` (Hugging Face names), the
    /// matrices in `format` (nil: as stored; a GGUF file's block formats stay in place in the
    /// mapping). The layers and the embedding are read on every core; an error names the first
    /// failing tensor in layer order.
    public init(config: ModelConfig, weights: WeightSource, format: WeightFormat? = nil) throws {
        self.config = config
        weightFormat = format
        let h = config.hiddenSize
        let layerCount = config.layerCount
        let loaded = Mutex<[Result<DecoderLayerWeights, any Error>?]>(Array(repeating: nil, count: layerCount))
        let embedding = Mutex<Result<WeightMatrix, any Error>?>(nil)
        DispatchQueue.concurrentPerform(iterations: layerCount + 1) { index in
            if index == layerCount {
                let result = Result { try Self.matrix("model.embed_tokens.weight", config.vocabSize, h, from: weights, format: format) }
                embedding.withLock { $0 = result }
            } else {
                let result = Result { try Self.layer(index, config: config, from: weights, format: format) }
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
            lmHead = try Self.matrix("lm_head.weight", config.vocabSize, h, from: weights, format: format)
        }
        rope = RopeTable(headDim: config.headDim, theta: config.ropeTheta, llama3: config.ropeLlama3)
    }

    private static func tensor(_ name: String, _ shape: [Int], from weights: WeightSource) throws -> FloatBuffer {
        guard let found = weights.shape(of: name) else { throw ModelLoadError.missingTensor(name) }
        guard found == shape else { throw ModelLoadError.shapeMismatch(tensor: name, expected: shape, found: found) }
        return try weights.load(name)
    }

    private static func matrix(_ name: String, _ rows: Int, _ cols: Int, from weights: WeightSource,
                               format: WeightFormat?) throws -> WeightMatrix {
        guard let found = weights.shape(of: name) else { throw ModelLoadError.missingTensor(name) }
        guard found == [rows, cols] else { throw ModelLoadError.shapeMismatch(tensor: name, expected: [rows, cols], found: found) }
        return try weights.matrix(name, rows: rows, cols: cols, format: format)
    }

    private static func layer(_ l: Int, config: ModelConfig, from weights: WeightSource,
                              format: WeightFormat?) throws -> DecoderLayerWeights {
        let h = config.hiddenSize, inter = config.intermediateSize, p = "model.layers.\(l)"
        func linear(_ prefix: String, _ out: Int, _ inp: Int, bias: Bool) throws -> Linear {
            Linear(weight: try matrix(prefix + ".weight", out, inp, from: weights, format: format),
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

    /// Loads a Hugging Face model folder (`config.json` + safetensors), the matrices float32 or
    /// quantised at load to `format`.
    public convenience init(huggingFaceDirectory dir: URL, format: WeightFormat? = nil) throws {
        let configURL = dir.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: configURL.path) else {
            throw ModelLoadError.invalidFile(path: configURL.path, reason: "cannot read config.json")
        }
        try self.init(config: try ModelConfig(huggingFaceJSON: data), weights: try SafetensorsWeights(directory: dir), format: format)
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
