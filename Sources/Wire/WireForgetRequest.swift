// WireForgetRequest: a request to remove every stored record of one request id or of one source
// (`paratool.v1.ForgetRequest`, topic `forget`, key the request id or the source).
import ParaToolProtoC

/// What to forget (`paratool.v1.ForgetRequest`): exactly one of `requestID` and `source` is set.
public struct WireForgetRequest: WireMessage, Hashable {
    public static let protoName = "paratool.v1.ForgetRequest"

    /// A request's (and its trajectory's) id.
    public var requestID: String
    /// A `ToolCallRequest.source`, `Feedback.source` or `Trajectory.source`.
    public var source: String
    /// When it was asked, milliseconds since the Unix epoch.
    public var createdUnixMs: Int64

    /// Creates a forget request.
    public init(requestID: String = "", source: String = "", createdUnixMs: Int64 = 0) {
        self.requestID = requestID
        self.source = source
        self.createdUnixMs = createdUnixMs
    }

    init(c: Paratool__V1__ForgetRequest) throws {
        requestID = try wireString(c.request_id, field: "request_id")
        source = try wireString(c.source, field: "source")
        createdUnixMs = c.created_unix_ms
    }

    func c(_ arena: CArena) -> Paratool__V1__ForgetRequest {
        var c = Paratool__V1__ForgetRequest()
        paratool__v1__forget_request__init(&c)
        c.request_id = arena.string(requestID)
        c.source = arena.string(source)
        c.created_unix_ms = createdUnixMs
        return c
    }

    /// The message key: the request id or the source.
    public var key: String { requestID.isEmpty ? source : requestID }

    public func validate() throws {
        guard requestID.isEmpty != source.isEmpty else {
            throw WireError.invalidField(field: requestID.isEmpty ? "request_id" : "source",
                                         reason: "exactly one of request_id and source must be set")
        }
    }

    public func encode() throws -> [UInt8] {
        try encodeMessage(Self.protoName, c, size: paratool__v1__forget_request__get_packed_size, pack: paratool__v1__forget_request__pack)
    }

    public init(bytes: [UInt8], limits: WireLimits) throws {
        self = try decodeMessage(
            bytes, limits: limits, type: Self.protoName,
            unpack: paratool__v1__forget_request__unpack, free: paratool__v1__forget_request__free_unpacked
        ) { try WireForgetRequest(c: $0) }
        try validate()
    }
}
