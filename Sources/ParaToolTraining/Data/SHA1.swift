// SHA1: hex digests that name and deduplicate synthesized examples and tool schemas (not for
// security), computed by swift-crypto's `Insecure.SHA1`.
import Crypto

/// SHA-1 digests as lowercase hex.
public enum SHA1 {
    /// The SHA-1 digest of `text`'s UTF-8 bytes, 40 lowercase hex digits.
    public static func hex(_ text: String) -> String { hex(Array(text.utf8)) }

    /// The SHA-1 digest of `bytes`, 40 lowercase hex digits.
    public static func hex(_ bytes: [UInt8]) -> String {
        digest(bytes).map { byte in String(byte >> 4, radix: 16) + String(byte & 15, radix: 16) }.joined()
    }

    /// The 20 digest bytes.
    static func digest(_ bytes: [UInt8]) -> [UInt8] { Array(Insecure.SHA1.hash(data: bytes)) }
}
