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

    public var description: String {
        switch self {
        case .tooLarge(let size, let limit):
            return "message of \(size) bytes exceeds the limit of \(limit) bytes"
        case .malformed(let type, let reason):
            return "malformed \(type): \(reason)"
        case .invalidField(let field, let reason):
            return "invalid field \(field): \(reason)"
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

    /// Creates limits with the given maximum encoded size in bytes.
    public init(maxMessageSize: Int = WireLimits.defaultMaxMessageSize) {
        self.maxMessageSize = maxMessageSize
    }
}
