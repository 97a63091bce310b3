// ContextEncoder: the frozen base model as the gate's encoder. A text (the raw question, or a
// tool's "name: description") is run through the decoder without adapters or chat template, and
// its hidden states (of the last layer, or of an inner one), through the final norm, are pooled
// into one vector: the mean over tokens (the authors' code) or the last token (the paper). A
// tool's document is read up to a bound (`toolDocumentTokens`): its description comes from the
// `tools` topic and is encoded on every engine build, so its length must not set that work.
import LLM
import Tensor

/// How hidden states are pooled into one vector.
public enum Pooling: String, Sendable, Codable, CaseIterable {
    /// Mean over all tokens of the text.
    case mean
    /// The last token's hidden state.
    case last
}

/// Encodes texts into vectors with the base model. Not thread-safe (owns a Transformer).
public final class ContextEncoder {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let pooling: Pooling
    /// How many layers run before pooling (nil: all of them).
    public let layers: Int?
    /// Most tokens of a tool's document ("name: description") read (`encodeTool`).
    public let toolDocumentTokens: Int
    /// The default of `toolDocumentTokens`: 512, more than the longest BFCL tool document.
    public static let defaultToolDocumentTokens = 512
    private let runner: Transformer
    private let cache: KVCache

    /// An encoder pooling the hidden states after `layers` layers (nil: the last layer's) that
    /// reads at most `toolDocumentTokens` tokens of a tool's document (at least 1, at most the
    /// model's context), on `threads`.
    public init(model: LlamaModel, tokenizer: Tokenizer, pooling: Pooling, layers: Int? = nil,
                toolDocumentTokens: Int = ContextEncoder.defaultToolDocumentTokens, threads: ComputeThreads = .machine) {
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.layers = layers
        self.toolDocumentTokens = max(1, min(toolDocumentTokens, model.config.maxPositionEmbeddings))
        runner = Transformer(model: model, threads: threads)
        cache = KVCache(config: model.config, capacity: Self.initialCapacity)
    }

    /// Width of the vectors.
    public var dimension: Int { model.config.hiddenSize }

    /// Frees what the longest text encoded so far sized (see `Transformer.releaseWorkingMemory`).
    public func releaseWorkingMemory() {
        runner.releaseWorkingMemory()
        cache.reset(capacity: Self.initialCapacity)
    }

    private static let initialCapacity = 64

    /// The pooled encoding of `text` (the zero vector for an empty text) and its token count.
    public func encode(_ text: String) -> (vector: [Float], tokens: Int) {
        encode(tokens: tokenizer.encode(text))
    }

    /// The pooled encoding of tool `name`'s document, "name: description", of its first
    /// `toolDocumentTokens` tokens, and the tokens read.
    public func encodeTool(name: String, description: String) -> (vector: [Float], tokens: Int) {
        encode(tokens: Array(tokenizer.encode("\(name): \(description)").prefix(toolDocumentTokens)))
    }

    /// The pooled encoding of token ids `ids`.
    private func encode(tokens ids: [Int]) -> (vector: [Float], tokens: Int) {
        guard !ids.isEmpty else { return ([Float](repeating: 0, count: dimension), 0) }
        cache.clear()
        let out = runner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [cache], logits: .hiddenOnly, layers: layers)
        switch pooling {
        case .last:
            return (out.hidden.row(out.hidden.rows - 1), ids.count)
        case .mean:
            var sum = [Double](repeating: 0, count: dimension)
            for r in 0..<out.hidden.rows {
                for (i, v) in out.hidden.row(r).enumerated() { sum[i] += Double(v) }
            }
            return (sum.map { Float($0 / Double(out.hidden.rows)) }, ids.count)
        }
    }
}
