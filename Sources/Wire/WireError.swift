// WireError and WireLimits: what can go wrong when decoding the service's messages, and the
// limits decoding enforces before handing any bytes to protobuf-c.

/// Why bytes could not be decoded into a message (or a decoded message was rejected).
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input is larger than the configured limit; it was not parsed.
    case tooLarge(size: Int, limit: Int)
    /// The bytes are not a valid protobuf encoding of `messageType` (e.g. `paratool.v1.Action`).
    case malformed(messageType: String, reason: String)
    /// The encoding is valid protobuf, but a field's value is not acceptable: `field` is a path
    /// such as `history[1].calls[0].name`.
    case invalidField(field: String, reason: String)
    /// The input is within the size limit, but its decoded form would need more than `limit`
    /// bytes of memory (e.g. many empty nested messages); it was not decoded.
    case decodedTooLarge(limit: Int)

    public var description: String {
        switch self {
        case .tooLarge(let size, let limit):
            return "message of \(size) bytes exceeds the limit of \(limit) bytes"
        case .malformed(let type, let reason):
            return "malformed \(type): \(reason)"
        case .invalidField(let field, let reason):
            return "invalid field \(field): \(reason)"
        case .decodedTooLarge(let limit):
            return "decoding the message would allocate more than the limit of \(limit) bytes"
        }
    }
}

/// Limits applied when decoding.
public struct WireLimits: Equatable, Sendable {
    /// The default maximum encoded size: 4 MiB.
    public static let defaultMaxMessageSize = 4 << 20
    /// The defaults.
    public static let `default` = WireLimits()

    /// The largest encoded message accepted, in bytes; larger inputs fail with
    /// `WireError.tooLarge` before parsing.
    public var maxMessageSize: Int

    /// The most memory protobuf-c may allocate for the decoded form of one message: the message
    /// limit plus 64 KiB for the structures of a small message (each nested message and string is
    /// a block of its own). A message whose decoded form needs more fails with
    /// `WireError.decodedTooLarge`; the Swift value built from the decoded form is of the same order.
    public var decodeAllocationLimit: Int { maxMessageSize + (64 << 10) }

    /// Creates limits with the given maximum encoded size in bytes.
    public init(maxMessageSize: Int = WireLimits.defaultMaxMessageSize) {
        self.maxMessageSize = maxMessageSize
    }
}
