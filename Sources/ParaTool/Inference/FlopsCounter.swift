// FlopsCounter: floating-point operations of one request, term by term (docs/design.md §1): base
// linears, causal attention, LoRA branches, the gate's encoder pass and its MLP, and what the
// same request would cost in the Context+Docs format (tool documents in the prompt, no adapters).
// A multiply-add counts as 2 FLOPs. Counts are exact integers for the given token counts.
import LLM

/// FLOPs of one request by part.
public struct FlopsBreakdown: Sendable, Equatable, Codable {
    /// Linear layers of the decoder (q, k, v, o, gate, up, down) over every processed token, plus
    /// the output head for every position whose logits are computed.
    public var baseLinear: Int = 0
    /// Attention scores and weighted values: 4 · layers · heads · headDim per (query, visible key) pair.
    public var attention: Int = 0
    /// The LoRA branches: 2 · r · (in + out) per adapter, adapted linear and processed token.
    public var lora: Int = 0
    /// The gate's encoder pass over the query (decoder layers, no output head).
    public var encoder: Int = 0
    /// The gate MLP over every candidate.
    public var gate: Int = 0

    public init(baseLinear: Int = 0, attention: Int = 0, lora: Int = 0, encoder: Int = 0, gate: Int = 0) {
        self.baseLinear = baseLinear
        self.attention = attention
        self.lora = lora
        self.encoder = encoder
        self.gate = gate
    }

    /// The sum of all parts.
    public var total: Int { baseLinear + attention + lora + encoder + gate }

    public static func + (a: FlopsBreakdown, b: FlopsBreakdown) -> FlopsBreakdown {
        FlopsBreakdown(baseLinear: a.baseLinear + b.baseLinear, attention: a.attention + b.attention,
                       lora: a.lora + b.lora, encoder: a.encoder + b.encoder, gate: a.gate + b.gate)
    }
}

/// Counts FLOPs for a model configuration.
public struct FlopsCounter: Sendable {
    public let config: ModelConfig

    public init(config: ModelConfig) { self.config = config }

    /// Weights of the decoder linears of one layer (q, k, v, o, gate, up, down).
    public var layerLinearParameters: Int {
        let h = config.hiddenSize, f = config.intermediateSize
        return h * config.qDim + 2 * h * config.kvDim + config.qDim * h + 3 * h * f
    }

    /// Weights of the output head.
    public var headParameters: Int { config.vocabSize * config.hiddenSize }

    /// Decoder linears for `tokens` processed tokens (no head).
    public func decoderLinear(tokens: Int) -> Int { 2 * layerLinearParameters * config.layerCount * tokens }

    /// Attention for `tokens` new tokens appended after `context` cached ones (causal: the token
    /// at position p sees p + 1 keys).
    public func attention(tokens: Int, context: Int) -> Int {
        // Σ_{p=context}^{context+tokens-1} (p + 1)
        let visible = tokens * (2 * context + tokens + 1) / 2
        return 4 * config.layerCount * config.qDim * visible
    }

    /// LoRA branches of `adapters` adapters of rank `rank` on `targets` for `tokens` tokens.
    public func lora(tokens: Int, adapters: Int, rank: Int, targets: [FFNProjection] = FFNProjection.allCases) -> Int {
        let h = config.hiddenSize, f = config.intermediateSize
        // Every FFN linear maps between h and f, so each costs r · (h + f) multiply-adds.
        return 2 * targets.count * rank * (h + f) * adapters * config.layerCount * tokens
    }

    /// Greedy generation of `generated` tokens after a `prompt`-token prompt: prefill of the
    /// prompt, then one step per further token; logits for the last prompt position and each step.
    public func generation(prompt: Int, generated: Int, adapters: Int = 0, rank: Int = 0,
                           targets: [FFNProjection] = FFNProjection.allCases) -> FlopsBreakdown {
        let steps = max(0, generated - 1)
        let processed = prompt + steps
        let logitsRows = generated > 0 ? generated : 1
        return FlopsBreakdown(
            baseLinear: decoderLinear(tokens: processed) + 2 * headParameters * logitsRows,
            attention: attention(tokens: prompt, context: 0) + attention(tokens: steps, context: prompt),
            lora: lora(tokens: processed, adapters: adapters, rank: rank, targets: targets))
    }

    /// Reading `tokens` tokens again from the start of a sequence (a row that resumes under a
    /// new mixture): decoder linears, causal attention among them and the LoRA branches of
    /// `adapters` adapters; no logits beyond the last position's, already counted as a step.
    public func reread(tokens: Int, adapters: Int = 0, rank: Int = 0) -> FlopsBreakdown {
        FlopsBreakdown(baseLinear: decoderLinear(tokens: tokens), attention: attention(tokens: tokens, context: 0),
                       lora: lora(tokens: tokens, adapters: adapters, rank: rank))
    }

    /// The encoder pass of the gate over `tokens` query tokens: the first `layers` decoder layers
    /// (nil: all of them), no output head.
    public func encoder(tokens: Int, layers: Int? = nil) -> Int {
        let n = min(max(0, layers ?? config.layerCount), config.layerCount)
        let full = decoderLinear(tokens: tokens) + attention(tokens: tokens, context: 0)
        return full / config.layerCount * n
    }

    /// The gate MLP for `candidates` tools: features [c, d, c⊙d, |c−d|] (2 FLOPs per element for
    /// the product and the difference), then linear layers of widths `layers` (e.g. [4d, 512,
    /// 512, 1]) with bias, and the softmax (counted as 3 per candidate).
    public func gate(candidates: Int, layers: [Int]) -> Int {
        let d = config.hiddenSize
        var perCandidate = 2 * d
        for (i, o) in zip(layers, layers.dropFirst()) { perCandidate += 2 * i * o + o }
        return candidates * (perCandidate + 3)
    }
}
