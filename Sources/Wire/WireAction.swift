// WireAction and its parts: the answer to a request (`paratool.v1.Action`, topic `actions`, key
// request_id), the adapter weights behind it, its error detail and per-phase timings.
import ParaToolProtoC

/// A tool adapter's share of the mixture that produced an Action (`paratool.v1.ToolWeight`).
public struct WireToolWeight: WireMessage, Hashable {
    public static let protoName = "paratool.v1.ToolWeight"

    /// The tool; required.
    public var tool: String
    /// The gate's weight, a finite value in [0, 1].
    public var weight: Double
    /// The adapter store version used, e.g. `v000003`.
    public var adapterVersion: String
    /// The call (0-based, in the Action's order) decided under this weight.
    public var call: UInt32

    /// Creates a weight.
    public init(tool: String, weight: Double, adapterVersion: String = "", call: UInt32 = 0) {
        self.tool = tool
        self.weight = weight
        self.adapterVersion = adapterVersion
        self.call = call
    }

    init(c: Paratool__V1__ToolWeight, path: String) throws {
        tool = try wireString(c.tool, field: path + "tool")
        weight = c.weight
        adapterVersion = try wireString(c.adapter_version, field: path + "adapter_version")
        call = c.call
    }

    func c(_ arena: CArena) -> Paratool__V1__ToolWeight {
        var c = Paratool__V1__ToolWeight()
        paratool__v1__tool_weight__init(&c)
        c.tool = arena.string(tool)
        c.weight = weight
        c.adapter_version = arena.string(adapterVersion)
        c.call = call
        return c
    }

    func validate(path: String) throws {
        try requireNonEmpty(tool, field: path + "tool")
        guard weight.isFinite, weight >= 0, weight <= 1 else {
            throw WireError.invalidField(field: path + "weight", reason: "\(weight) is not in [0, 1]")
        }
    }

    public func validate() throws { try validate(path: "") }

    public func encode() throws -> [UInt8] {
        try encodeMessage(Self.protoName, c, size: paratool__v1__tool_weight__get_packed_size, pack: paratool__v1__tool_weight__pack)
    }

    public init(bytes: [UInt8], limits: WireLimits) throws {
        self = try decodeMessage(
            bytes, limits: limits, type: Self.protoName,
            unpack: paratool__v1__tool_weight__unpack, free: paratool__v1__tool_weight__free_unpacked
        ) { try WireToolWeight(c: $0, path: "") }
        try validate()
    }
}

/// Why a request failed (`paratool.v1.Error`).
public struct WireErrorDetail: WireMessage, Hashable {
    public static let protoName = "paratool.v1.Error"

    /// A stable machine-readable reason, e.g. `wire.malformed`, `tool.unknown`.
    public var code: String
    /// Human-readable detail.
    public var message: String

    /// Creates an error detail.
    public init(code: String, message: String = "") {
        self.code = code
        self.message = message
    }

    init(c: Paratool__V1__Error, path: String) throws {
        code = try wireString(c.code, field: path + "code")
        message = try wireString(c.message, field: path + "message")
    }

    func c(_ arena: CArena) -> Paratool__V1__Error {
        var c = Paratool__V1__Error()
        paratool__v1__error__init(&c)
        c.code = arena.string(code)
        c.message = arena.string(message)
        return c
    }

    public func validate() throws {}

    public func encode() throws -> [UInt8] {
        try encodeMessage(Self.protoName, c, size: paratool__v1__error__get_packed_size, pack: paratool__v1__error__pack)
    }

    public init(bytes: [UInt8], limits: WireLimits) throws {
        self = try decodeMessage(
            bytes, limits: limits, type: Self.protoName,
            unpack: paratool__v1__error__unpack, free: paratool__v1__error__free_unpacked
        ) { try WireErrorDetail(c: $0, path: "") }
    }
}

/// Wall-clock milliseconds per serving phase (`paratool.v1.PhaseTimings`).
public struct WirePhaseTimings: WireMessage, Hashable {
    public static let protoName = "paratool.v1.PhaseTimings"

    /// Waiting: produced to consumed, or consumed to batch start.
    public var queueMs: Double
    /// The gate: query encoding and adapter weights.
    public var gateMs: Double
    /// Prompt processing.
    public var prefillMs: Double
    /// Token generation.
    public var decodeMs: Double
    /// Consumed to produced.
    public var totalMs: Double

    /// Creates timings.
    public init(queueMs: Double = 0, gateMs: Double = 0, prefillMs: Double = 0, decodeMs: Double = 0, totalMs: Double = 0) {
        self.queueMs = queueMs
        self.gateMs = gateMs
        self.prefillMs = prefillMs
        self.decodeMs = decodeMs
        self.totalMs = totalMs
    }

    init(c: Paratool__V1__PhaseTimings) {
        self.init(queueMs: c.queue_ms, gateMs: c.gate_ms, prefillMs: c.prefill_ms, decodeMs: c.decode_ms, totalMs: c.total_ms)
    }

    func c() -> Paratool__V1__PhaseTimings {
        var c = Paratool__V1__PhaseTimings()
        paratool__v1__phase_timings__init(&c)
        c.queue_ms = queueMs
        c.gate_ms = gateMs
        c.prefill_ms = prefillMs
        c.decode_ms = decodeMs
        c.total_ms = totalMs
        return c
    }

    public func validate() throws {}

    public func encode() throws -> [UInt8] {
        encodeMessage(c(), size: paratool__v1__phase_timings__get_packed_size, pack: paratool__v1__phase_timings__pack)
    }

    public init(bytes: [UInt8], limits: WireLimits) throws {
        self = try decodeMessage(
            bytes, limits: limits, type: Self.protoName,
            unpack: paratool__v1__phase_timings__unpack, free: paratool__v1__phase_timings__free_unpacked
        ) { WirePhaseTimings(c: $0) }
    }
}

/// The answer to a request (`paratool.v1.Action`).
public struct WireAction: WireMessage, Hashable {
    public static let protoName = "paratool.v1.Action"

    /// The request's id; required.
    public var requestID: String
    /// The tool calls to make; empty when `text` is the final answer.
    public var calls: [WireToolCall]
    /// The final answer when no tool is called.
    public var text: String
    /// The adapters mixed, with their versions.
    public var weights: [WireToolWeight]
    /// The base model that served the request.
    public var modelID: String
    /// How the request ended.
    public var status: WireStatus
    /// Why it failed, when `status` is not `.ok`.
    public var error: WireErrorDetail?
    /// Wall-clock time per phase.
    public var timings: WirePhaseTimings?
    /// How the request was served: a selection mode's name, e.g. `paratool`, or `context-docs`
    /// when the tools' documents were in the prompt; empty when nothing was served (an error).
    public var servedFormat: String
    /// True when the token budget closed the last call in the shortest way its schema allows.
    public var forceClosed: Bool

    /// Creates an action.
    public init(requestID: String, calls: [WireToolCall] = [], text: String = "", weights: [WireToolWeight] = [],
                modelID: String = "", status: WireStatus = .ok, error: WireErrorDetail? = nil,
                timings: WirePhaseTimings? = nil, servedFormat: String = "", forceClosed: Bool = false) {
        self.requestID = requestID
        self.calls = calls
        self.text = text
        self.weights = weights
        self.modelID = modelID
        self.status = status
        self.error = error
        self.timings = timings
        self.servedFormat = servedFormat
        self.forceClosed = forceClosed
    }

    init(c: Paratool__V1__Action) throws {
        requestID = try wireString(c.request_id, field: "request_id")
        calls = try wireMap(c.n_calls, c.calls, field: "calls") { try WireToolCall(c: $0.pointee, path: $1 + ".") }
        text = try wireString(c.text, field: "text")
        weights = try wireMap(c.n_weights, c.weights, field: "weights") { try WireToolWeight(c: $0.pointee, path: $1 + ".") }
        modelID = try wireString(c.model_id, field: "model_id")
        status = WireStatus(rawValue: wireEnum(c.status))
        error = try c.error.map { try WireErrorDetail(c: $0.pointee, path: "error.") }
        timings = c.timings.map { WirePhaseTimings(c: $0.pointee) }
        servedFormat = try wireString(c.served_format, field: "served_format")
        forceClosed = c.force_closed != 0
    }

    func c(_ arena: CArena) -> Paratool__V1__Action {
        var c = Paratool__V1__Action()
        paratool__v1__action__init(&c)
        c.request_id = arena.string(requestID)
        c.n_calls = calls.count
        c.calls = arena.messages(calls.map { $0.c(arena) })
        c.text = arena.string(text)
        c.n_weights = weights.count
        c.weights = arena.messages(weights.map { $0.c(arena) })
        c.model_id = arena.string(modelID)
        c.status = cEnum(status.rawValue)
        c.error = error.map { arena.box($0.c(arena)) }
        c.timings = timings.map { arena.box($0.c()) }
        c.served_format = arena.string(servedFormat)
        c.force_closed = forceClosed ? 1 : 0
        return c
    }

    public func validate() throws {
        try requireNonEmpty(requestID, field: "request_id")
        for (index, call) in calls.enumerated() { try call.validate(path: "calls[\(index)].") }
        for (index, weight) in weights.enumerated() { try weight.validate(path: "weights[\(index)].") }
    }

    public func encode() throws -> [UInt8] {
        try encodeMessage(Self.protoName, c, size: paratool__v1__action__get_packed_size, pack: paratool__v1__action__pack)
    }

    public init(bytes: [UInt8], limits: WireLimits) throws {
        self = try decodeMessage(
            bytes, limits: limits, type: Self.protoName,
            unpack: paratool__v1__action__unpack, free: paratool__v1__action__free_unpacked
        ) { try WireAction(c: $0) }
        try validate()
    }
}
