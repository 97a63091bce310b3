// GGUFWeights: a GGUF file (llama.cpp's format) seen as Hugging Face tensors. Maps names
// (`blk.N.ffn_gate.weight` → `model.layers.N.mlp.gate_proj.weight`), reverses GGML's dimension
// order, and undoes the row permutation llama.cpp's converter applies to Llama's Q and K
// projections, so the runtime keeps one (rotate_half) RoPE convention for every source.
import Foundation
import Tensor

/// Tensors of a GGUF model under their Hugging Face names and shapes.
public final class GGUFWeights: WeightSource {
    public let gguf: GGUFFile
    public let config: ModelConfig
    private let ggufName: [String: String]

    /// Opens `gguf` and derives the model config from its metadata (architectures `llama`, `qwen2`).
    public init(gguf: GGUFFile) throws {
        self.gguf = gguf
        config = try Self.config(from: gguf)
        var names = [String: String]()
        names["model.embed_tokens.weight"] = "token_embd.weight"
        names["model.norm.weight"] = "output_norm.weight"
        names["lm_head.weight"] = "output.weight"
        let perLayer: [(String, String)] = [
            ("input_layernorm.weight", "attn_norm.weight"),
            ("self_attn.q_proj.weight", "attn_q.weight"), ("self_attn.q_proj.bias", "attn_q.bias"),
            ("self_attn.k_proj.weight", "attn_k.weight"), ("self_attn.k_proj.bias", "attn_k.bias"),
            ("self_attn.v_proj.weight", "attn_v.weight"), ("self_attn.v_proj.bias", "attn_v.bias"),
            ("self_attn.o_proj.weight", "attn_output.weight"),
            ("post_attention_layernorm.weight", "ffn_norm.weight"),
            ("mlp.gate_proj.weight", "ffn_gate.weight"),
            ("mlp.up_proj.weight", "ffn_up.weight"),
            ("mlp.down_proj.weight", "ffn_down.weight"),
        ]
        for l in 0..<config.layerCount {
            for (hf, gg) in perLayer { names["model.layers.\(l).\(hf)"] = "blk.\(l).\(gg)" }
        }
        ggufName = names
    }

    /// Reads the hyper-parameters from `<arch>.*` metadata keys.
    static func config(from gguf: GGUFFile) throws -> ModelConfig {
        let arch = gguf.metadata["general.architecture"]?.stringValue ?? "?"
        let family: ModelConfig.Family
        switch arch {
        case "llama": family = .llama
        case "qwen2": family = .qwen2
        default: throw ModelLoadError.unsupportedArchitecture(arch)
        }
        func int(_ key: String) throws -> Int {
            guard let v = gguf.metadata["\(arch).\(key)"]?.intValue else {
                throw ModelLoadError.invalidConfig("GGUF metadata lacks \(arch).\(key)")
            }
            return v
        }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        let vocab = gguf.metadata["\(arch).vocab_size"]?.intValue
            ?? gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count
            ?? gguf.tensors["token_embd.weight"]?.dims.last ?? 0
        let headDim = gguf.metadata["\(arch).attention.key_length"]?.intValue ?? hidden / max(heads, 1)
        return try ModelConfig(
            family: family, hiddenSize: hidden, intermediateSize: try int("feed_forward_length"),
            layerCount: try int("block_count"), headCount: heads,
            kvHeadCount: gguf.metadata["\(arch).attention.head_count_kv"]?.intValue ?? heads,
            headDim: headDim, vocabSize: vocab,
            rmsNormEps: gguf.metadata["\(arch).attention.layer_norm_rms_epsilon"]?.floatValue ?? 1e-5,
            ropeTheta: gguf.metadata["\(arch).rope.freq_base"]?.floatValue ?? 10000,
            tieWordEmbeddings: gguf.tensors["output.weight"] == nil,
            attentionBias: family == .qwen2,
            maxPositionEmbeddings: gguf.metadata["\(arch).context_length"]?.intValue ?? 4096,
            bosTokenId: gguf.metadata["tokenizer.ggml.bos_token_id"]?.intValue,
            eosTokenIds: gguf.metadata["tokenizer.ggml.eos_token_id"]?.intValue.map { [$0] } ?? [])
    }

    public func shape(of name: String) -> [Int]? {
        guard let g = ggufName[name], let info = gguf.tensors[g] else { return nil }
        return info.dims.reversed()
    }

    public func load(_ name: String) throws -> FloatBuffer {
        guard let g = ggufName[name], gguf.tensors[g] != nil else { throw ModelLoadError.missingTensor(name) }
        let values = try gguf.floats(g)
        guard let heads = rotaryHeads(of: name) else { return values }
        return Self.unpermuteRotaryRows(values, heads: heads, headDim: config.headDim)
    }

    /// Matrix `name`: a supported block format (`BlockMatrix.supportedTypes`: Q4_0, Q4_1, Q5_0,
    /// Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, F16, BF16) stays in place in the mapping (Llama's Q and K
    /// rows put back in an owned copy), unless `format` is `.f32`;
    /// F32 and unsupported-in-place matrices are read as floats (quantised when `format` asks).
    public func matrix(_ name: String, rows: Int, cols: Int, format: WeightFormat?) throws -> WeightMatrix {
        guard let g = ggufName[name], let info = gguf.tensors[g] else { throw ModelLoadError.missingTensor(name) }
        let inPlace = info.type != .f32 && BlockMatrix.supportedTypes.contains(info.type) && cols % info.type.blockSize == 0
        guard inPlace, format != .f32 else {
            return try WeightMatrix(rows: rows, cols: cols, float32: try load(name), format: format ?? .f32)
        }
        let blocks = try BlockMatrix(mapping: gguf.file, offset: info.offset, type: info.type, rows: rows, cols: cols)
        if let heads = rotaryHeads(of: name) {
            return WeightMatrix(blocks: try blocks.reorderingRows(Self.rotaryRowOrder(heads: heads, headDim: config.headDim)))
        }
        return WeightMatrix(blocks: blocks)
    }

    /// The head count of a Llama Q or K projection's weight or bias (whose rows llama.cpp's
    /// converter permuted), nil for every other tensor.
    private func rotaryHeads(of name: String) -> Int? {
        guard config.family == .llama else { return nil }
        if name.hasSuffix("self_attn.q_proj.weight") || name.hasSuffix("self_attn.q_proj.bias") { return config.headCount }
        if name.hasSuffix("self_attn.k_proj.weight") || name.hasSuffix("self_attn.k_proj.bias") { return config.kvHeadCount }
        return nil
    }

    /// For each Hugging Face row of a rotary projection, the GGUF row it is stored at.
    static func rotaryRowOrder(heads: Int, headDim: Int) -> [Int] {
        let half = headDim / 2
        var order = [Int](repeating: 0, count: heads * headDim)
        for h in 0..<heads {
            for i in 0..<half {
                for t in 0..<2 { order[h * headDim + t * half + i] = h * headDim + 2 * i + t }
            }
        }
        return order
    }

    /// llama.cpp's converter stores, within each head, HF row `t·(d/2) + i` at row `2i + t`
    /// (interleaved rotary pairs). This puts the rows back in HF's rotate_half order.
    static func unpermuteRotaryRows(_ src: FloatBuffer, heads: Int, headDim: Int) -> FloatBuffer {
        let rows = heads * headDim, cols = src.count / rows
        precondition(rows * cols == src.count, "rotary rows do not divide the tensor")
        let out = FloatBuffer(count: src.count)
        let s = MatrixView(src, rows: rows, cols: cols), o = MatrixView(out, rows: rows, cols: cols)
        for (row, stored) in rotaryRowOrder(heads: heads, headDim: headDim).enumerated() {
            Kernels.copyRow(s, stored, into: o, row: row)
        }
        return out
    }
}
