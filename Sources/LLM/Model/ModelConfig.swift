// ModelConfig: the architecture hyper-parameters of a Llama-family decoder, a Codable type whose
// keys are the Hugging Face config.json names (defaults for the optional ones, unknown
// architectures refused), or built from GGUF metadata (GGUFWeights) with the memberwise init.
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
            return "unsupported architecture '\(a)' (supported: config.json architectures LlamaForCausalLM, "
                + "MistralForCausalLM, Qwen2ForCausalLM, or model_type llama, qwen2; GGUF general.architecture llama, qwen2)"
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

    /// Decodes a Hugging Face `config.json` (see `init(from:)`); a missing or mistyped key is
    /// reported by its config.json name.
    public init(huggingFaceJSON data: Data) throws {
        do {
            self = try JSONDecoder().decode(ModelConfig.self, from: data)
        } catch let error as DecodingError {
            throw ModelLoadError.invalidConfig(Self.describe(error))
        }
    }

    /// A decoding error in config.json's terms: the key's path and what was wrong.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String { keys.map(\.stringValue).joined(separator: ".") }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing key '\(path(context.codingPath + [key]))'"
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return "'\(path(context.codingPath))' is not a valid \(type)"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "config.json is not a JSON object" : "'\(path(context.codingPath))': \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

extension ModelConfig: Codable {
    /// The Hugging Face config.json names.
    enum CodingKeys: String, CodingKey {
        case architectures
        case modelType = "model_type"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case layerCount = "num_hidden_layers"
        case headCount = "num_attention_heads"
        case kvHeadCount = "num_key_value_heads"
        case headDim = "head_dim"
        case vocabSize = "vocab_size"
        case rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta"
        case ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters"
        case tieWordEmbeddings = "tie_word_embeddings"
        case attentionBias = "attention_bias"
        case mlpBias = "mlp_bias"
        case hiddenAct = "hidden_act"
        case maxPositionEmbeddings = "max_position_embeddings"
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
    }

    /// `rope_scaling` (transformers 4) or `rope_parameters` (transformers 5, which also holds
    /// `rope_theta`).
    struct RopeScaling: Codable {
        var ropeTheta: Float?
        var ropeType: String?
        var type: String?
        var factor: Float?
        var lowFreqFactor: Float?
        var highFreqFactor: Float?
        var originalMaxPositionEmbeddings: Int?

        enum CodingKeys: String, CodingKey {
            case ropeTheta = "rope_theta", ropeType = "rope_type", type, factor
            case lowFreqFactor = "low_freq_factor", highFreqFactor = "high_freq_factor"
            case originalMaxPositionEmbeddings = "original_max_position_embeddings"
        }
    }

    /// The architectures this runtime runs, as `architectures[0]` (or `model_type`) names them.
    public static let supportedArchitectures: [String: Family] = [
        "LlamaForCausalLM": .llama, "MistralForCausalLM": .llama, "llama": .llama,
        "Qwen2ForCausalLM": .qwen2, "qwen2": .qwen2,
    ]

    /// Decodes a Hugging Face `config.json` (LlamaForCausalLM or Qwen2ForCausalLM; the
    /// architecture from `architectures`, else `model_type`). Required: `hidden_size`,
    /// `intermediate_size`, `num_hidden_layers`, `num_attention_heads`, `vocab_size`; the rest
    /// take the transformers defaults when absent. Both the transformers 4 (`rope_theta`,
    /// `rope_scaling`) and 5 (`rope_parameters`) spellings are read.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let architecture = try c.decodeIfPresent([String].self, forKey: .architectures)?.first
            ?? c.decodeIfPresent(String.self, forKey: .modelType) ?? "?"
        guard let family = Self.supportedArchitectures[architecture] else {
            throw ModelLoadError.unsupportedArchitecture(architecture)
        }
        let hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        let headCount = try c.decode(Int.self, forKey: .headCount)
        let scaling = try c.decodeIfPresent(RopeScaling.self, forKey: .ropeScaling)
        let parameters = try c.decodeIfPresent(RopeScaling.self, forKey: .ropeParameters)
        let rope = scaling ?? parameters
        let ropeLlama3: RopeTable.Llama3Scaling?
        switch rope?.ropeType ?? rope?.type {
        case nil, "default": ropeLlama3 = nil
        case "llama3":
            guard let r = rope, let f = r.factor, let lo = r.lowFreqFactor, let hi = r.highFreqFactor,
                  let original = r.originalMaxPositionEmbeddings else {
                throw ModelLoadError.invalidConfig("llama3 rope_scaling needs factor, low_freq_factor, high_freq_factor, original_max_position_embeddings")
            }
            ropeLlama3 = .init(factor: f, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositionEmbeddings: original)
        case let other?: throw ModelLoadError.invalidConfig("unsupported rope scaling type '\(other)'")
        }
        if try c.decodeIfPresent(Bool.self, forKey: .mlpBias) == true { throw ModelLoadError.invalidConfig("mlp_bias is not supported") }
        if let act = try c.decodeIfPresent(String.self, forKey: .hiddenAct), act != "silu" {
            throw ModelLoadError.invalidConfig("hidden_act '\(act)' is not supported (only silu)")
        }
        let eosTokenIds: [Int]
        if let many = try? c.decodeIfPresent([Int].self, forKey: .eosTokenId) { eosTokenIds = many }
        else { eosTokenIds = try c.decodeIfPresent(Int.self, forKey: .eosTokenId).map { [$0] } ?? [] }
        try self.init(
            family: family, hiddenSize: hiddenSize,
            intermediateSize: try c.decode(Int.self, forKey: .intermediateSize),
            layerCount: try c.decode(Int.self, forKey: .layerCount),
            headCount: headCount,
            kvHeadCount: try c.decodeIfPresent(Int.self, forKey: .kvHeadCount) ?? headCount,
            headDim: try c.decodeIfPresent(Int.self, forKey: .headDim) ?? (headCount > 0 ? hiddenSize / headCount : 0),
            vocabSize: try c.decode(Int.self, forKey: .vocabSize),
            rmsNormEps: try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? 1e-6,
            ropeTheta: try c.decodeIfPresent(Float.self, forKey: .ropeTheta) ?? parameters?.ropeTheta ?? 10000,
            ropeLlama3: ropeLlama3,
            tieWordEmbeddings: try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false,
            // Qwen2 always has q/k/v biases.
            attentionBias: family == .qwen2 ? true : (try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? false),
            maxPositionEmbeddings: try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 4096,
            bosTokenId: try c.decodeIfPresent(Int.self, forKey: .bosTokenId),
            eosTokenIds: eosTokenIds)
    }

    /// Encodes the config under the config.json names (reads back to an equal config).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([family == .qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"], forKey: .architectures)
        try c.encode(family.rawValue, forKey: .modelType)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(layerCount, forKey: .layerCount)
        try c.encode(headCount, forKey: .headCount)
        try c.encode(kvHeadCount, forKey: .kvHeadCount)
        try c.encode(headDim, forKey: .headDim)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        if let r = ropeLlama3 {
            try c.encode(RopeScaling(ropeType: "llama3", factor: r.factor, lowFreqFactor: r.lowFreqFactor,
                                     highFreqFactor: r.highFreqFactor, originalMaxPositionEmbeddings: r.originalMaxPositionEmbeddings),
                         forKey: .ropeScaling)
        }
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(attentionBias, forKey: .attentionBias)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encodeIfPresent(bosTokenId, forKey: .bosTokenId)
        try c.encode(eosTokenIds, forKey: .eosTokenId)
        try c.encode("silu", forKey: .hiddenAct)
    }
}

extension ModelConfig {
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
