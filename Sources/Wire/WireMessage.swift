// WireMessage: the encode/decode contract every message type adopts, and the only code in the
// package that moves bytes in and out of protobuf-c: the size check, unpack/free, pack, the
// temporary C allocations an encoding needs, C string conversion, and the structural scan that
// explains why protobuf-c rejected an input.
import CProtobufC
import ParaToolProtoC

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A message of `paratool.proto` as a Swift value.
public protocol WireMessage: Sendable, Equatable {
    /// The protobuf full name, e.g. `paratool.v1.Action`.
    static var protoName: String { get }
    /// The protobuf encoding. Throws `invalidField` when a string holds U+0000, which
    /// protobuf-c (NUL-terminated strings) cannot carry: nothing is dropped silently.
    func encode() throws -> [UInt8]
    /// Decodes `bytes`, refusing inputs larger than `limits.maxMessageSize`, and validates the
    /// result (see `validate()`). Unknown fields (from a newer writer) are skipped; unknown enum
    /// values decode as `.unrecognized`. Throws `WireError`, never traps, on any input.
    init(bytes: [UInt8], limits: WireLimits) throws
    /// Checks the fields ParaTool requires (e.g. a non-empty `request_id`); throws
    /// `WireError.invalidField`. Decoding calls it; producers may call it before encoding.
    func validate() throws
}

extension WireMessage {
    /// Decodes `bytes` with the default limits (4 MiB).
    public init(bytes: [UInt8]) throws {
        try self.init(bytes: bytes, limits: .default)
    }
}

// MARK: - Decoding

/// Unpacks `bytes` with a generated `_unpack`, converts the C message with `convert` and frees it.
/// protobuf-c allocates the C form through a `DecodeBudget` of `limits.decodeAllocationLimit`
/// bytes: an input whose C form would need more is refused with `WireError.decodedTooLarge`.
func decodeMessage<C, Value>(
    _ bytes: [UInt8], limits: WireLimits, type: String,
    unpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<C>?,
    free: (UnsafeMutablePointer<C>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void,
    convert: (C) throws -> Value
) throws -> Value {
    guard bytes.count <= limits.maxMessageSize else {
        throw WireError.tooLarge(size: bytes.count, limit: limits.maxMessageSize)
    }
    let budget = DecodeBudget(limit: limits.decodeAllocationLimit)
    return try budget.withAllocator { allocator in
        let message = bytes.withUnsafeBufferPointer { buffer in
            unpack(allocator, buffer.count, buffer.baseAddress)
        }
        guard let message else {
            if budget.exceeded { throw WireError.decodedTooLarge(limit: budget.limit) }
            throw WireError.malformed(messageType: type, reason: WireScan.problem(in: bytes))
        }
        defer { free(message, allocator) }
        return try convert(message.pointee)
    }
}

/// The memory protobuf-c may allocate while unpacking one message: allocations are counted
/// (each block carries its size in front) and refused once their total would pass `limit`, which
/// makes protobuf-c fail the unpack cleanly.
final class DecodeBudget {
    let limit: Int
    private(set) var used = 0
    private(set) var exceeded = false
    /// Bytes in front of each block: its size, keeping the block 16-byte aligned.
    private static let header = 16

    init(limit: Int) {
        self.limit = limit
    }

    /// Runs `body` with a protobuf-c allocator drawing on this budget.
    func withAllocator<T>(_ body: (UnsafeMutablePointer<ProtobufCAllocator>) throws -> T) rethrows -> T {
        var allocator = ProtobufCAllocator(
            alloc: { data, size in
                Unmanaged<DecodeBudget>.fromOpaque(data!).takeUnretainedValue().allocate(size)
            },
            free: { data, pointer in
                Unmanaged<DecodeBudget>.fromOpaque(data!).takeUnretainedValue().release(pointer)
            },
            allocator_data: Unmanaged.passUnretained(self).toOpaque())
        return try withExtendedLifetime(self) { try body(&allocator) }
    }

    private func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        let (total, overflow) = size.addingReportingOverflow(Self.header)
        guard !overflow, total <= limit - used else {
            exceeded = true
            return nil
        }
        guard let block = malloc(total) else { return nil }
        used += total
        block.storeBytes(of: total, as: Int.self)
        return block + Self.header
    }

    private func release(_ pointer: UnsafeMutableRawPointer?) {
        guard let pointer else { return }
        let block = pointer - Self.header
        used -= block.load(as: Int.self)
        free(block)
    }
}

/// A C string from protobuf-c as a Swift string; `nil` is the empty string.
func wireString(_ pointer: UnsafeMutablePointer<CChar>?, field: @autoclosure () -> String) throws -> String {
    guard let pointer else { return "" }
    let bytes = UnsafeBufferPointer(
        start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: strlen(pointer))
    guard let string = String(validating: bytes, as: UTF8.self) else {
        throw WireError.invalidField(field: field(), reason: "not valid UTF-8")
    }
    return string
}

/// The elements of a protobuf-c repeated field (`n_x`, `x`).
func wireArray<Element>(_ count: Int, _ pointer: UnsafeMutablePointer<Element>?, field: String) throws -> [Element] {
    guard count > 0 else { return [] }
    guard let pointer else {
        throw WireError.invalidField(field: field, reason: "\(count) elements but no storage")
    }
    return Array(UnsafeBufferPointer(start: pointer, count: count))
}

/// Converts each non-NULL element of a repeated message or string field, naming it `field[i]`.
func wireMap<Element, Value>(
    _ count: Int, _ pointer: UnsafeMutablePointer<UnsafeMutablePointer<Element>?>?, field: String,
    _ convert: (UnsafeMutablePointer<Element>, String) throws -> Value
) throws -> [Value] {
    try wireArray(count, pointer, field: field).enumerated().map { index, element in
        let name = "\(field)[\(index)]"
        guard let element else { throw WireError.invalidField(field: name, reason: "missing element") }
        return try convert(element, name)
    }
}

/// Throws `invalidField` when `value` is empty.
func requireNonEmpty(_ value: String, field: String) throws {
    if value.isEmpty { throw WireError.invalidField(field: field, reason: "must not be empty") }
}

// MARK: - Encoding

/// Owns the C memory one encoding needs (strings, nested messages, arrays) and frees it all at
/// once when the encoding is done.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []
    /// Whether a string given to `string(_:)` contained U+0000.
    private var sawNUL = false

    deinit {
        for block in blocks { block.deallocate() }
    }

    /// A NUL-terminated copy of `string`; a U+0000 inside is recorded (see `checkStrings`).
    func string(_ string: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = string.utf8.filter { $0 != 0 }
        if utf8.count != string.utf8.count { sawNUL = true }
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count + 1)
        blocks.append(UnsafeMutableRawPointer(pointer))
        for (index, byte) in utf8.enumerated() { pointer[index] = CChar(bitPattern: byte) }
        pointer[utf8.count] = 0
        return pointer
    }

    /// A heap copy of `value` (for a nested message field).
    /// Throws when any string of the message held U+0000.
    func checkStrings(type: String) throws {
        if sawNUL {
            throw WireError.invalidField(field: type, reason: "a string contains U+0000, which protobuf-c cannot encode")
        }
    }

    func box<T>(_ value: T) -> UnsafeMutablePointer<T> {
        let pointer = UnsafeMutablePointer<T>.allocate(capacity: 1)
        blocks.append(UnsafeMutableRawPointer(pointer))
        pointer.initialize(to: value)
        return pointer
    }

    /// A heap array of `values` for a repeated field, `nil` when empty.
    func array<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        guard !values.isEmpty else { return nil }
        let pointer = UnsafeMutablePointer<T>.allocate(capacity: values.count)
        blocks.append(UnsafeMutableRawPointer(pointer))
        pointer.initialize(from: values, count: values.count)
        return pointer
    }

    /// A heap array of C strings for a repeated string field.
    func strings(_ values: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        array(values.map { Optional(string($0)) })
    }

    /// A heap array of boxed messages for a repeated message field.
    func messages<T>(_ values: [T]) -> UnsafeMutablePointer<UnsafeMutablePointer<T>?>? {
        array(values.map { Optional(box($0)) })
    }
}

/// Builds the C form of a message in a fresh arena with `build`, refuses it when a string held
/// U+0000 (protobuf-c strings are NUL-terminated), and packs it. Every message encodes here.
func encodeMessage<C>(
    _ type: String, _ build: (CArena) -> C,
    size: (UnsafePointer<C>?) -> Int, pack: (UnsafePointer<C>?, UnsafeMutablePointer<UInt8>?) -> Int
) throws -> [UInt8] {
    let arena = CArena()
    let message = build(arena)
    try arena.checkStrings(type: type)
    return withExtendedLifetime(arena) { encodeMessage(message, size: size, pack: pack) }
}

/// Packs a C message with the generated `_get_packed_size` and `_pack`.
func encodeMessage<C>(
    _ message: C, size: (UnsafePointer<C>?) -> Int, pack: (UnsafePointer<C>?, UnsafeMutablePointer<UInt8>?) -> Int
) -> [UInt8] {
    withUnsafePointer(to: message) { pointer in
        let count = size(pointer)
        guard count > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = pack(pointer, buffer.baseAddress)
        }
    }
}

/// Converts a Swift enum's wire value to a generated C enum. Clang imports C enums as structs
/// whose `init(rawValue:)` accepts every value, so the unwrap cannot fail.
func cEnum<E: RawRepresentable>(_ value: Int32) -> E where E.RawValue: FixedWidthInteger {
    E(rawValue: E.RawValue(truncatingIfNeeded: value))!
}

/// A generated C enum's wire value.
func wireEnum<E: RawRepresentable>(_ value: E) -> Int32 where E.RawValue: FixedWidthInteger {
    Int32(truncatingIfNeeded: value.rawValue)
}

// MARK: - Diagnosing malformed input

/// A structural walk over the top level of a protobuf encoding, used only after protobuf-c
/// rejected it, to say where and why (protobuf-c reports no reason).
enum WireScan {
    /// A description of the first structural problem, or a generic reason when the top level is
    /// well formed (then a field has the wrong wire type or a nested message is malformed).
    static func problem(in bytes: [UInt8]) -> String {
        var offset = 0
        while offset < bytes.count {
            let start = offset
            guard let tag = varint(bytes, &offset) else { return "truncated or overlong tag at offset \(start)" }
            let field = tag >> 3
            let wireType = tag & 7
            guard field > 0, field <= 0x1FFF_FFFF else { return "invalid field number \(field) at offset \(start)" }
            switch wireType {
            case 0:
                guard varint(bytes, &offset) != nil else { return "field \(field): truncated varint at offset \(start)" }
            case 1, 5:
                let width = wireType == 1 ? 8 : 4
                guard bytes.count - offset >= width else {
                    return "field \(field): truncated \(width)-byte value at offset \(start)"
                }
                offset += width
            case 2:
                guard let length = varint(bytes, &offset) else {
                    return "field \(field): truncated length at offset \(start)"
                }
                guard length <= UInt64(bytes.count - offset) else {
                    return "field \(field): length \(length) exceeds the \(bytes.count - offset) remaining bytes at offset \(start)"
                }
                offset += Int(length)
            case 3, 4:
                return "field \(field): unsupported group wire type \(wireType) at offset \(start)"
            default:
                return "field \(field): invalid wire type \(wireType) at offset \(start)"
            }
        }
        return "a field has the wrong wire type or a nested message is malformed"
    }

    /// Reads a varint of at most 10 bytes, advancing `offset`; `nil` if truncated or too long.
    private static func varint(_ bytes: [UInt8], _ offset: inout Int) -> UInt64? {
        var value: UInt64 = 0
        for index in 0..<10 {
            guard offset < bytes.count else { return nil }
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << (7 * UInt64(index))
            if byte & 0x80 == 0 { return value }
        }
        return nil
    }
}
