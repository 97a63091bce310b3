// WireFeedback: what an agent backend learned about an answered request (`paratool.v1.Feedback`,
// topic `feedback`, key request id): whether the served calls solved it and, when not, optionally
// the calls that were needed.
import ParaToolProtoC

/// Feedback on one answered request (`paratool.v1.Feedback`).
public struct WireFeedback: WireMessage, Hashable {
    public static let protoName = "paratool.v1.Feedback"

    /// The request (and Action) it is about; required.
    public var requestID: String
    /// `.solved` (the served calls did the job) or `.unsolved`; required.
    public var outcome: WireOutcome
    /// With `.unsolved` only, optional: the calls that were needed.
    public var correctedCalls: [WireToolCall]
    /// Who reports, e.g. `agent:<name>`, `human`, `send`.
    public var source: String
    /// When it was reported, milliseconds since the Unix epoch.
    public var createdUnixMs: Int64

    /// Creates feedback.
    public init(requestID: String, outcome: WireOutcome, correctedCalls: [WireToolCall] = [], source: String = "",
                createdUnixMs: Int64 = 0) {
        self.requestID = requestID
        self.outcome = outcome
        self.correctedCalls = correctedCalls
        self.source = source
        self.createdUnixMs = createdUnixMs
    }

    init(c: Paratool__V1__Feedback) throws {
        requestID = try wireString(c.request_id, field: "request_id")
        outcome = WireOutcome(rawValue: wireEnum(c.outcome))
        correctedCalls = try wireMap(c.n_corrected_calls, c.corrected_calls, field: "corrected_calls") {
            try WireToolCall(c: $0.pointee, path: $1 + ".")
        }
        source = try wireString(c.source, field: "source")
        createdUnixMs = c.created_unix_ms
    }

    func c(_ arena: CArena) -> Paratool__V1__Feedback {
        var c = Paratool__V1__Feedback()
        paratool__v1__feedback__init(&c)
        c.request_id = arena.string(requestID)
        c.outcome = cEnum(outcome.rawValue)
        c.n_corrected_calls = correctedCalls.count
        c.corrected_calls = arena.messages(correctedCalls.map { $0.c(arena) })
        c.source = arena.string(source)
        c.created_unix_ms = createdUnixMs
        return c
    }

    public func validate() throws {
        try requireNonEmpty(requestID, field: "request_id")
        switch outcome {
        case .solved:
            guard correctedCalls.isEmpty else {
                throw WireError.invalidField(field: "corrected_calls", reason: "only feedback with outcome unsolved carries corrected calls")
            }
        case .unsolved: break
        case .unknown, .unrecognized:
            throw WireError.invalidField(field: "outcome", reason: "must be solved or unsolved, got \(outcome.rawValue)")
        }
        for (index, call) in correctedCalls.enumerated() { try call.validate(path: "corrected_calls[\(index)].") }
    }

    public func encode() throws -> [UInt8] {
        try encodeMessage(Self.protoName, c, size: paratool__v1__feedback__get_packed_size, pack: paratool__v1__feedback__pack)
    }

    public init(bytes: [UInt8], limits: WireLimits) throws {
        self = try decodeMessage(
            bytes, limits: limits, type: Self.protoName,
            unpack: paratool__v1__feedback__unpack, free: paratool__v1__feedback__free_unpacked
        ) { try WireFeedback(c: $0) }
        try validate()
    }
}
