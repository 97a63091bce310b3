// ModelConfig: the architecture hyper-parameters of a Llama-family decoder, decoded from a
// Hugging Face config.json (keys as HF spells them) or built from GGUF metadata.
import Foundation
import Tensor

/// Errors raised while loading a model.
public enum ModelLoadError: Error, CustomStringConvertible {
    case unsupportedArchitecture(String)
    case invalidConfig(String)
    case missingTensor(String)
    case shapeMismatch(tensor: String, expected: [Int], found: [Int])
    case unsupportedDType(tensor: String, dtype: String)
    case invalidFile(path: String, reason: String)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let a):
            return "unsupported architecture '\(a)' (supported: LlamaForCausalLM, Qwen2ForCausalLM, GGUF 'llama')"
        case .invalidConfig(let m): return "invalid model config: \(m)"
        case .missingTensor(let n): return "missing tensor '\(n)'"
        case .shapeMismatch(let n, let e, let f): return "tensor '\(n)' has shape \(f), expected \(e)"
        case .unsupportedDType(let n, let d): return "tensor '\(n)' has unsupported dtype \(d)"
        case .invalidFile(let p, let r): return "\(p): \(r)"
        }
    }
}

/// Hyper-parameters of a Llama-family decoder-only model (Llama, Qwen2, SmolLM).
public struct ModelConfig: Sendable, Equatable {
    /// Which family: decides biases on q/k/v.
    public enum Family: String, Sendable { case llama, qwen2 }

    public var family: Family
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var vocabSize: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var ropeLlama3: RopeTable.Llama3Scaling?
    public var tieWordEmbeddings: Bool
    /// Whether q/k/v projections carry a bias (Qwen2 always; Llama when `attention_bias`).
    public var attentionBias: Bool
    public var maxPositionEmbeddings: Int
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]

    /// Width of the K and V projections.
    public var kvDim: Int { kvHeadCount * headDim }
    /// Width of the Q projection.
    public var qDim: Int { headCount * headDim }

    /// Checks the invariants the runtime relies on.
    public func validate() throws {
        func need(_ ok: Bool, _ m: String) throws { if !ok { throw ModelLoadError.invalidConfig(m) } }
        try need(hiddenSize > 0 && intermediateSize > 0 && layerCount > 0 && vocabSize > 0, "sizes must be positive")
        try need(headCount > 0 && kvHeadCount > 0 && headCount % kvHeadCount == 0,
                 "num_attention_heads (\(headCount)) must be a multiple of num_key_value_heads (\(kvHeadCount))")
        try need(headDim > 0 && headDim % 2 == 0, "head_dim (\(headDim)) must be even and positive")
        try need(ropeTheta > 0, "rope_theta must be positive")
    }

    /// Decodes a Hugging Face `config.json` (LlamaForCausalLM or Qwen2ForCausalLM). Both the
    /// transformers 4 (`rope_theta`, `rope_scaling`) and 5 (`rope_parameters`) spellings are read.
    public init(huggingFaceJSON data: Data) throws {
        guard let j = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelLoadError.invalidConfig("config.json is not a JSON object")
        }
        let arch = (j["architectures"] as? [String])?.first ?? (j["model_type"] as? String ?? "?")
        switch arch {
        case "LlamaForCausalLM", "llama", "MistralForCausalLM": family = .llama
        case "Qwen2ForCausalLM", "qwen2": family = .qwen2
        default: throw ModelLoadError.unsupportedArchitecture(arch)
        }
        func int(_ k: String) throws -> Int {
            guard let v = j[k] as? NSNumber else { throw ModelLoadError.invalidConfig("missing integer '\(k)'") }
            return v.intValue
        }
        func optInt(_ k: String) -> Int? { (j[k] as? NSNumber)?.intValue }
        hiddenSize = try int("hidden_size")
        intermediateSize = try int("intermediate_size")
        layerCount = try int("num_hidden_layers")
        headCount = try int("num_attention_heads")
        kvHeadCount = optInt("num_key_value_heads") ?? headCount
        headDim = optInt("head_dim") ?? (headCount > 0 ? hiddenSize / headCount : 0)
        vocabSize = try int("vocab_size")
        rmsNormEps = (j["rms_norm_eps"] as? NSNumber)?.floatValue ?? 1e-6
        let ropeParams = j["rope_parameters"] as? [String: Any]
        ropeTheta = ((j["rope_theta"] ?? ropeParams?["rope_theta"]) as? NSNumber)?.floatValue ?? 10000
        let scaling = (j["rope_scaling"] as? [String: Any]) ?? ropeParams
        let ropeType = (scaling?["rope_type"] ?? scaling?["type"]) as? String
        switch ropeType {
        case nil, "default": ropeLlama3 = nil
        case "llama3":
            guard let s = scaling, let f = (s["factor"] as? NSNumber)?.floatValue,
                  let lo = (s["low_freq_factor"] as? NSNumber)?.floatValue,
                  let hi = (s["high_freq_factor"] as? NSNumber)?.floatValue,
                  let orig = (s["original_max_position_embeddings"] as? NSNumber)?.intValue else {
                throw ModelLoadError.invalidConfig("llama3 rope_scaling needs factor, low_freq_factor, high_freq_factor, original_max_position_embeddings")
            }
            ropeLlama3 = .init(factor: f, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositionEmbeddings: orig)
        case let other?: throw ModelLoadError.invalidConfig("unsupported rope scaling type '\(other)'")
        }
        tieWordEmbeddings = (j["tie_word_embeddings"] as? Bool) ?? false
        attentionBias = family == .qwen2 ? true : ((j["attention_bias"] as? Bool) ?? false)
        if (j["mlp_bias"] as? Bool) == true { throw ModelLoadError.invalidConfig("mlp_bias is not supported") }
        if let act = j["hidden_act"] as? String, act != "silu" {
            throw ModelLoadError.invalidConfig("hidden_act '\(act)' is not supported (only silu)")
        }
        maxPositionEmbeddings = optInt("max_position_embeddings") ?? 4096
        bosTokenId = optInt("bos_token_id")
        if let e = j["eos_token_id"] as? NSNumber { eosTokenIds = [e.intValue] }
        else if let es = j["eos_token_id"] as? [NSNumber] { eosTokenIds = es.map(\.intValue) }
        else { eosTokenIds = [] }
        try validate()
    }

    /// Builds a config from explicit values (GGUF metadata, tests).
    public init(family: Family, hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int,
                kvHeadCount: Int, headDim: Int, vocabSize: Int, rmsNormEps: Float, ropeTheta: Float,
                ropeLlama3: RopeTable.Llama3Scaling? = nil, tieWordEmbeddings: Bool, attentionBias: Bool,
                maxPositionEmbeddings: Int, bosTokenId: Int? = nil, eosTokenIds: [Int] = []) throws {
        self.family = family
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim
        self.vocabSize = vocabSize
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeLlama3 = ropeLlama3
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        try validate()
    }
}
