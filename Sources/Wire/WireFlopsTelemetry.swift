// WireFlopsTelemetry: the compute spent on one request (`paratool.v1.FlopsTelemetry`, topic
// `telemetry`, key request_id).
import ParaToolProtoC

/// The compute spent on one request (`paratool.v1.FlopsTelemetry`). FLOP counts count a
/// multiply-add as 2 FLOPs.
public struct WireFlopsTelemetry: WireMessage, Hashable {
    public static let protoName = "paratool.v1.FlopsTelemetry"

    /// The request's id; required.
    public var requestID: String
    /// The worker that served it.
    public var workerID: String
    /// Prompt tokens processed.
    public var promptTokens: UInt64
    /// Tokens generated.
    public var generatedTokens: UInt64
    /// FLOPs in the base model's linear layers.
    public var baseLinear: UInt64
    /// FLOPs in attention score and value products.
    public var attention: UInt64
    /// FLOPs in LoRA adapter products.
    public var lora: UInt64
    /// FLOPs in the gate's query encoder.
    public var encoder: UInt64
    /// FLOPs in gate scoring.
    public var gate: UInt64
    /// The sum of the above.
    public var total: UInt64
    /// FLOPs the same request would cost with tool documentation in the prompt.
    public var contextDocsEquivalent: UInt64
    /// Wall-clock time per phase.
    public var timings: WirePhaseTimings?
    /// How the request was served, as in `WireAction.servedFormat`.
    public var servedFormat: String

    /// Creates telemetry.
    public init(requestID: String, workerID: String = "", promptTokens: UInt64 = 0, generatedTokens: UInt64 = 0,
                baseLinear: UInt64 = 0, attention: UInt64 = 0, lora: UInt64 = 0, encoder: UInt64 = 0, gate: UInt64 = 0,
                total: UInt64 = 0, contextDocsEquivalent: UInt64 = 0, timings: WirePhaseTimings? = nil,
                servedFormat: String = "") {
        self.requestID = requestID
        self.workerID = workerID
        self.promptTokens = promptTokens
        self.generatedTokens = generatedTokens
        self.baseLinear = baseLinear
        self.attention = attention
        self.lora = lora
        self.encoder = encoder
        self.gate = gate
        self.total = total
        self.contextDocsEquivalent = contextDocsEquivalent
        self.timings = timings
        self.servedFormat = servedFormat
    }

    init(c: Paratool__V1__FlopsTelemetry) throws {
        self.init(
            requestID: try wireString(c.request_id, field: "request_id"),
            workerID: try wireString(c.worker_id, field: "worker_id"),
            promptTokens: c.prompt_tokens, generatedTokens: c.generated_tokens, baseLinear: c.base_linear,
            attention: c.attention, lora: c.lora, encoder: c.encoder, gate: c.gate, total: c.total,
            contextDocsEquivalent: c.context_docs_equivalent, timings: c.timings.map { WirePhaseTimings(c: $0.pointee) },
            servedFormat: try wireString(c.served_format, field: "served_format"))
    }

    func c(_ arena: CArena) -> Paratool__V1__FlopsTelemetry {
        var c = Paratool__V1__FlopsTelemetry()
        paratool__v1__flops_telemetry__init(&c)
        c.request_id = arena.string(requestID)
        c.worker_id = arena.string(workerID)
        c.prompt_tokens = promptTokens
        c.generated_tokens = generatedTokens
        c.base_linear = baseLinear
        c.attention = attention
        c.lora = lora
        c.encoder = encoder
        c.gate = gate
        c.total = total
        c.context_docs_equivalent = contextDocsEquivalent
        c.timings = timings.map { arena.box($0.c()) }
        c.served_format = arena.string(servedFormat)
        return c
    }

    public func validate() throws {
        try requireNonEmpty(requestID, field: "request_id")
    }

    public func encode() throws -> [UInt8] {
        try encodeMessage(Self.protoName, c, size: paratool__v1__flops_telemetry__get_packed_size, pack: paratool__v1__flops_telemetry__pack)
    }

    public init(bytes: [UInt8], limits: WireLimits) throws {
        self = try decodeMessage(
            bytes, limits: limits, type: Self.protoName,
            unpack: paratool__v1__flops_telemetry__unpack, free: paratool__v1__flops_telemetry__free_unpacked
        ) { try WireFlopsTelemetry(c: $0) }
        try validate()
    }
}
