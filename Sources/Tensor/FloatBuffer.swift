// FloatBuffer: a fixed-size float32 array, either owned (64-byte aligned heap memory) or a
// read-only window onto a memory-mapped file. All kernels operate on FloatBuffers; the pointer
// never leaves this module.
import Foundation

/// A contiguous float32 array with reference semantics and a stable address.
///
/// Owned buffers are zero-initialised and writable. Buffers that view a `MappedFile` are
/// read-only; writing to one is a programming error (it traps).
public final class FloatBuffer: @unchecked Sendable {
    /// Number of floats.
    public let count: Int
    /// Whether this buffer views a memory-mapped file (shared, read-only) instead of owning memory.
    public let isMapped: Bool
    let base: UnsafeMutablePointer<Float>
    private let owner: MappedFile?

    /// A zero-filled buffer of `count` floats.
    public init(count: Int) {
        precondition(count >= 0, "negative buffer size")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
        isMapped = false
        owner = nil
    }

    /// A buffer holding a copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let s = src.baseAddress { base.update(from: s, count: values.count) }
        }
    }

    /// A read-only view of `count` little-endian float32 values at `offset` in `file` (no copy).
    /// The offset must be 4-byte aligned.
    public init(mapping file: MappedFile, offset: Int, count: Int) throws {
        let raw = try file.rawBytes(offset: offset, length: count * 4)
        precondition(offset % 4 == 0, "float32 data must be 4-byte aligned")
        self.count = count
        base = UnsafeMutablePointer(
            mutating: (raw.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!).assumingMemoryBound(to: Float.self))
        isMapped = true
        owner = file
    }

    deinit {
        if owner == nil { base.deallocate() }
    }

    /// Element access (bounds-checked).
    public subscript(index: Int) -> Float {
        get {
            precondition(index >= 0 && index < count, "FloatBuffer index \(index) out of range 0..<\(count)")
            return base[index]
        }
        set {
            precondition(index >= 0 && index < count, "FloatBuffer index \(index) out of range 0..<\(count)")
            precondition(!isMapped, "write to a read-only mapped buffer")
            base[index] = newValue
        }
    }

    /// A copy of all values.
    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: base, count: count)) }

    /// A copy of `length` values starting at `start`.
    public func slice(_ start: Int, _ length: Int) -> [Float] {
        precondition(start >= 0 && length >= 0 && start + length <= count, "slice out of range")
        return Array(UnsafeBufferPointer(start: base + start, count: length))
    }

    /// Overwrites values starting at `start` with `values`.
    public func write(_ values: [Float], at start: Int = 0) {
        precondition(!isMapped, "write to a read-only mapped buffer")
        precondition(start >= 0 && start + values.count <= count, "write out of range")
        values.withUnsafeBufferPointer { src in
            if let s = src.baseAddress { (base + start).update(from: s, count: values.count) }
        }
    }

    /// Sets every value to zero.
    public func zero() {
        precondition(!isMapped, "write to a read-only mapped buffer")
        base.update(repeating: 0, count: count)
    }

    /// Bytes this buffer holds in memory it owns (0 for mapped views).
    public var ownedBytes: Int { isMapped ? 0 : count * 4 }
}
