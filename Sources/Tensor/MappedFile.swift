// MappedFile: a read-only memory map of a whole file with bounds-checked, little-endian reads.
// Weight files (safetensors, GGUF) are mapped once; float32 tensors are used in place, so several
// processes on a host share one copy through the page cache.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Errors raised while mapping or reading a file.
public enum MappedFileError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case outOfBounds(path: String, offset: Int, length: Int, fileSize: Int)
    case invalidUTF8(path: String, offset: Int)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): return "cannot open \(path): \(reason)"
        case .outOfBounds(let path, let offset, let length, let size):
            return "\(path): read of \(length) bytes at offset \(offset) runs past the end of the file (\(size) bytes)"
        case .invalidUTF8(let path, let offset): return "\(path): invalid UTF-8 string at offset \(offset)"
        }
    }
}

/// A whole file mapped read-only into memory. Reads are bounds-checked and throw instead of
/// trapping, so a truncated or corrupt file gives an error that names the file and the offset.
public final class MappedFile: @unchecked Sendable {
    /// The file's path, as given.
    public let path: String
    /// The file's size in bytes.
    public let count: Int
    let base: UnsafeRawPointer?

    /// Maps the file at `path` read-only.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw MappedFileError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw MappedFileError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw MappedFileError.cannotOpen(path: path, reason: "is a directory")
        }
        count = Int(st.st_size)
        if count == 0 {
            base = nil
            return
        }
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw MappedFileError.cannotOpen(path: path, reason: "mmap: " + String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    /// Throws unless `length` bytes starting at `offset` lie inside the file.
    public func checkRange(offset: Int, length: Int) throws {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else {
            throw MappedFileError.outOfBounds(path: path, offset: offset, length: length, fileSize: count)
        }
    }

    /// Reads a little-endian integer at `offset`.
    public func load<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) throws -> T {
        try checkRange(offset: offset, length: MemoryLayout<T>.size)
        return T(littleEndian: base!.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// Reads a little-endian IEEE float32 at `offset`.
    public func loadFloat(at offset: Int) throws -> Float {
        Float(bitPattern: try load(UInt32.self, at: offset))
    }

    /// Reads a little-endian IEEE float64 at `offset`.
    public func loadDouble(at offset: Int) throws -> Double {
        Double(bitPattern: try load(UInt64.self, at: offset))
    }

    /// Copies `length` bytes starting at `offset`.
    public func bytes(offset: Int, length: Int) throws -> [UInt8] {
        try checkRange(offset: offset, length: length)
        if length == 0 { return [] }
        return Array(UnsafeRawBufferPointer(start: base! + offset, count: length))
    }

    /// Decodes `length` bytes at `offset` as UTF-8.
    public func string(offset: Int, length: Int) throws -> String {
        try checkRange(offset: offset, length: length)
        if length == 0 { return "" }
        let raw = UnsafeRawBufferPointer(start: base! + offset, count: length)
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw MappedFileError.invalidUTF8(path: path, offset: offset)
        }
        return s
    }

    /// Raw view of a checked byte range, for the kernels of this module only.
    func rawBytes(offset: Int, length: Int) throws -> UnsafeRawBufferPointer {
        try checkRange(offset: offset, length: length)
        if length == 0 { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base! + offset, count: length)
    }
}
