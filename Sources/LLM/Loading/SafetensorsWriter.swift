// SafetensorsWriter: writing `.safetensors` files (float32, or values already encoded in another dtype) laid out exactly as Python `safetensors`
// lays them out, and DurableFiles, the crash-safe file operations it uses (write a temporary
// file, fsync, rename; fsync of directories), shared with the adapter store.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Tensor

/// Errors raised while encoding or writing a file.
public enum SafetensorsWriteError: Error, CustomStringConvertible, Equatable {
    /// A tensor's shape does not hold its number of values.
    case shapeMismatch(tensor: String, shape: [Int], valueCount: Int)
    /// Two tensors share a name.
    case duplicateName(String)
    /// The name is empty or reserved (`__metadata__`).
    case invalidName(String)
    /// A file-system operation failed.
    case io(path: String, operation: String, reason: String)

    public var description: String {
        switch self {
        case .shapeMismatch(let t, let s, let n):
            return "tensor '\(t)': shape \(s) holds \(s.reduce(1, *)) values, but \(n) were given"
        case .duplicateName(let n): return "tensor name '\(n)' is used twice"
        case .invalidName(let n): return "invalid tensor name '\(n)'"
        case .io(let p, let op, let r): return "\(p): \(op) failed: \(r)"
        }
    }
}

/// One named float32 tensor to write.
public struct SafetensorsTensor: Sendable {
    enum Values: Sendable {
        case array([Float])
        case buffer(FloatBuffer)
        case matrix(MatrixView)
        /// Values already encoded little-endian in `dtype` (e.g. BF16 weights read from a store).
        case stored(dtype: String, elementSize: Int, bytes: Data)
    }

    /// The tensor's name in the header.
    public let name: String
    /// The shape, outermost dimension first (a linear weight is `[out, in]`).
    public let shape: [Int]
    let values: Values

    /// A tensor holding `values`, row-major.
    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = .array(values)
    }

    /// A tensor holding the whole of `buffer`, row-major.
    public init(name: String, shape: [Int], buffer: FloatBuffer) {
        self.name = name
        self.shape = shape
        self.values = .buffer(buffer)
    }

    /// A 2-D tensor `[rows, cols]` holding the elements of `matrix` (any stride).
    public init(name: String, matrix: MatrixView) {
        self.name = name
        self.shape = [matrix.rows, matrix.cols]
        self.values = .matrix(matrix)
    }

    /// A tensor of `shape` whose values are `bytes`, already encoded in `dtype` (`BF16`, `F16`,
    /// `F32`: little-endian), elementSize bytes each.
    public init(name: String, shape: [Int], dtype: String, elementSize: Int, bytes: Data) {
        self.name = name
        self.shape = shape
        self.values = .stored(dtype: dtype, elementSize: elementSize, bytes: bytes)
    }

    var valueCount: Int {
        switch values {
        case .array(let a): return a.count
        case .buffer(let b): return b.count
        case .matrix(let m): return m.rows * m.cols
        case .stored(_, let size, let bytes): return size > 0 ? bytes.count / size : 0
        }
    }

    /// The dtype written in the header.
    var dtype: String {
        if case .stored(let dtype, _, _) = values { return dtype }
        return "F32"
    }

    /// Bytes per value.
    var elementSize: Int {
        if case .stored(_, let size, _) = values { return size }
        return 4
    }

    func floats() -> [Float] {
        switch values {
        case .array(let a): return a
        case .buffer(let b): return b.toArray()
        case .matrix(let m): return m.toArray()
        case .stored: preconditionFailure("stored bytes are written as they are")
        }
    }
}

/// Encodes and writes `.safetensors` files of float32 tensors.
///
/// The layout matches what Python `safetensors` (`save_file`) produces, so that a file written
/// here from tensors read out of a Python-written file is byte-identical to it:
/// - tensors are ordered by name (byte-wise; all tensors are F32, so the library's primary key,
///   dtype alignment descending, never differs), and their data follows in that order;
/// - the header is compact JSON: `__metadata__` first (its keys sorted), then one entry per
///   tensor as `{"dtype":"F32","shape":[...],"data_offsets":[begin,end]}`;
/// - the header is padded with spaces to a multiple of 8 bytes, and preceded by its length as
///   a little-endian UInt64; values are little-endian IEEE float32.
public enum SafetensorsWriter {
    /// The complete file contents for `tensors` and the optional `__metadata__` map.
    public static func encode(_ tensors: [SafetensorsTensor], metadata: [String: String]? = nil) throws -> Data {
        var seen = Set<String>()
        for t in tensors {
            guard !t.name.isEmpty, t.name != "__metadata__" else { throw SafetensorsWriteError.invalidName(t.name) }
            guard seen.insert(t.name).inserted else { throw SafetensorsWriteError.duplicateName(t.name) }
            guard t.shape.allSatisfy({ $0 >= 0 }), t.shape.reduce(1, *) == t.valueCount else {
                throw SafetensorsWriteError.shapeMismatch(tensor: t.name, shape: t.shape, valueCount: t.valueCount)
            }
        }
        // As `safetensors` orders them: by alignment (element size) descending, then by name.
        let ordered = tensors.sorted {
            $0.elementSize != $1.elementSize ? $0.elementSize > $1.elementSize
                : Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8))
        }

        var header = "{"
        var first = true
        if let metadata {
            header += jsonString("__metadata__") + ":{"
            let keys = metadata.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            header += keys.map { jsonString($0) + ":" + jsonString(metadata[$0]!) }.joined(separator: ",")
            header += "}"
            first = false
        }
        var offset = 0
        for t in ordered {
            let size = t.valueCount * t.elementSize
            if !first { header += "," }
            first = false
            header += jsonString(t.name) + ":{\"dtype\":\"\(t.dtype)\",\"shape\":["
                + t.shape.map(String.init).joined(separator: ",")
                + "],\"data_offsets\":[\(offset),\(offset + size)]}"
            offset += size
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        headerBytes += [UInt8](repeating: UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8)

        var out = Data()
        out.reserveCapacity(8 + headerBytes.count + offset)
        let headerLength = UInt64(headerBytes.count)
        out.append(contentsOf: (0..<8).map { UInt8(truncatingIfNeeded: headerLength >> (8 * $0)) })
        out.append(contentsOf: headerBytes)
        for t in ordered {
            if case .stored(_, _, let bytes) = t.values {
                out.append(bytes)
                continue
            }
            var values = t.floats()
            if UInt32(1).littleEndian != 1 {
                values = values.map { Float(bitPattern: $0.bitPattern.littleEndian) }
            }
            values.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        return out
    }

    /// Writes `tensors` to `url` atomically (see `DurableFiles.write`).
    public static func write(_ tensors: [SafetensorsTensor], metadata: [String: String]? = nil, to url: URL) throws {
        try DurableFiles.write(try encode(tensors, metadata: metadata), to: url)
    }

    /// A JSON string literal escaped the way serde_json (used by `safetensors`) escapes it:
    /// `"` and `\` and control characters; everything else verbatim UTF-8.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

/// Crash-safe file-system operations: a reader sees either the old state or the complete new
/// one, and completed operations survive a power loss.
public enum DurableFiles {
    /// Writes `data` to `url` atomically: into a temporary file in the same directory, fsync'd,
    /// renamed over `url` (replacing any existing file), then the directory is fsync'd.
    public static func write(_ data: Data, to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
            throw SafetensorsWriteError.io(path: tmp.path, operation: "create", reason: "cannot create file")
        }
        var renamed = false
        defer { if !renamed { try? FileManager.default.removeItem(at: tmp) } }
        do {
            let handle = try FileHandle(forWritingTo: tmp)
            defer { try? handle.close() }
            try handle.write(contentsOf: data)
            try handle.synchronize()
        } catch {
            throw SafetensorsWriteError.io(path: tmp.path, operation: "write", reason: "\(error)")
        }
        guard rename(tmp.path, url.path) == 0 else {
            throw SafetensorsWriteError.io(path: url.path, operation: "rename", reason: String(cString: strerror(errno)))
        }
        renamed = true
        try syncDirectory(dir)
    }

    /// Flushes a directory's entries (created, renamed or removed files) to stable storage.
    public static func syncDirectory(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else {
            throw SafetensorsWriteError.io(path: url.path, operation: "open", reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw SafetensorsWriteError.io(path: url.path, operation: "fsync", reason: String(cString: strerror(errno)))
        }
    }

    /// Renames the directory `source` to `destination` unless `destination` already exists
    /// (as a non-empty directory, which every directory this package publishes is). Returns
    /// false when the destination exists; throws on any other failure.
    public static func renameDirectoryIfAbsent(_ source: URL, to destination: URL) throws -> Bool {
        if rename(source.path, destination.path) == 0 { return true }
        let code = errno
        if code == EEXIST || code == ENOTEMPTY || code == ENOTDIR { return false }
        throw SafetensorsWriteError.io(path: destination.path, operation: "rename", reason: String(cString: strerror(code)))
    }
}
