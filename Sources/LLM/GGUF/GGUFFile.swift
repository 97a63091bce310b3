// GGUFFile: parses a GGUF (llama.cpp) file — header, metadata, tensor table — over a read-only
// memory map, and hands out tensors as float32 (zero-copy for F32, dequantised otherwise).
// Every count and length is checked against the file size before anything is allocated, so a
// corrupt or truncated file throws a GGUFError instead of crashing.
import Foundation
import Tensor

/// Where and how one tensor is stored in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    public let name: String
    /// The dimensions in GGML order: `dims[0]` (ne[0]) varies fastest, so a row-major
    /// `[rows, columns]` matrix has `dims == [columns, rows]`.
    public let dims: [Int]
    /// The element type.
    public let type: GGMLType
    /// Absolute byte offset of the data in the file.
    public let offset: Int
    /// Number of elements (the product of `dims`).
    public let elementCount: Int
    /// Number of bytes the data occupies.
    public let byteCount: Int
}

/// A parsed GGUF file (versions 2 and 3), memory-mapped read-only.
public final class GGUFFile: Sendable {
    /// The file's path, as given.
    public let path: String
    /// The GGUF format version (2 or 3).
    public let version: UInt32
    /// Metadata key/values.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor descriptions by name.
    public let tensors: [String: GGUFTensorInfo]
    /// Tensor names in file order.
    public let tensorNames: [String]
    /// Alignment of tensor data (`general.alignment`, default 32).
    public let alignment: Int
    /// Absolute byte offset where the tensor data section starts.
    public let dataOffset: Int
    /// The underlying memory map.
    public let file: MappedFile

    /// The alignment used when a file has no `general.alignment` key.
    public static let defaultAlignment = 32
    /// Nested arrays deeper than this are rejected (no real file nests at all).
    static let maxArrayDepth = 8
    /// GGML tensors have at most four dimensions.
    static let maxDims = 4

    /// Maps and parses the GGUF file at `path`.
    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    /// Parses an already mapped GGUF file.
    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        var r = Reader(file: file, offset: 0)
        do {
            let magic = try file.bytes(offset: 0, length: min(4, file.count))
            guard magic == Array("GGUF".utf8) else { throw GGUFError.badMagic(path: path, found: magic) }
            r.offset = 4
            version = try r.read(UInt32.self)
            guard version == 2 || version == 3 else {
                throw GGUFError.unsupportedVersion(path: path, version: version)
            }
            let tensorCount = try r.count(minimumElementSize: 24)
            let kvCount = try r.count(minimumElementSize: 13)

            var metadata: [String: GGUFValue] = [:]
            var keys: [String] = []
            metadata.reserveCapacity(kvCount)
            keys.reserveCapacity(kvCount)
            for _ in 0..<kvCount {
                let key = try r.string()
                let type = try r.read(UInt32.self)
                let value = try r.value(type: type, key: key, depth: 0)
                guard metadata.updateValue(value, forKey: key) == nil else {
                    throw GGUFError.invalid(path: path, reason: "duplicate metadata key \"\(key)\"")
                }
                keys.append(key)
            }
            self.metadata = metadata
            metadataKeys = keys

            var alignment = Self.defaultAlignment
            if let value = metadata["general.alignment"] {
                guard let a = value.intValue, a > 0, a <= 1 << 30, a & (a - 1) == 0 else {
                    throw GGUFError.invalid(path: path, reason: "general.alignment \(value) is not a power of two")
                }
                alignment = a
            }
            self.alignment = alignment

            var raw: [(name: String, dims: [Int], type: GGMLType, relative: Int, elements: Int, bytes: Int)] = []
            raw.reserveCapacity(tensorCount)
            for _ in 0..<tensorCount {
                let name = try r.string()
                let nDims = try r.read(UInt32.self)
                guard nDims <= Self.maxDims else {
                    throw GGUFError.invalid(path: path, reason: "tensor \"\(name)\" has \(nDims) dimensions (at most \(Self.maxDims))")
                }
                var dims: [Int] = []
                var elements = 1
                for _ in 0..<nDims {
                    let ne = try r.read(Int64.self)
                    guard ne >= 0, let d = Int(exactly: ne) else {
                        throw GGUFError.invalid(path: path, reason: "tensor \"\(name)\" has dimension \(ne)")
                    }
                    let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                    guard !overflow else {
                        throw GGUFError.invalid(path: path, reason: "tensor \"\(name)\" element count overflows")
                    }
                    elements = product
                    dims.append(d)
                }
                let typeID = try r.read(UInt32.self)
                guard let type = GGMLType(rawValue: typeID) else {
                    throw GGUFError.unknownTensorType(path: path, tensor: name, typeID: typeID)
                }
                let relative = try r.read(UInt64.self)
                guard (dims.first ?? 1) % type.blockSize == 0,
                      let bytes = try? type.byteCount(elements: elements) else {
                    throw GGUFError.invalid(path: path, reason: "tensor \"\(name)\" rows of \(dims.first ?? 1) are not whole \(type.name) blocks of \(type.blockSize)")
                }
                guard let rel = Int(exactly: relative), rel % alignment == 0 else {
                    throw GGUFError.invalid(path: path, reason: "tensor \"\(name)\" data offset \(relative) is not a multiple of the alignment \(alignment)")
                }
                raw.append((name, dims, type, rel, elements, bytes))
            }

            let padded = (r.offset + alignment - 1) / alignment * alignment
            dataOffset = padded
            var tensors: [String: GGUFTensorInfo] = [:]
            tensors.reserveCapacity(raw.count)
            for t in raw {
                let (start, overflow) = padded.addingReportingOverflow(t.relative)
                guard !overflow, start <= file.count, t.bytes <= file.count - start else {
                    throw GGUFError.dataPastEnd(tensor: t.name, offset: overflow ? Int.max : start,
                                                length: t.bytes, fileSize: file.count)
                }
                let info = GGUFTensorInfo(name: t.name, dims: t.dims, type: t.type, offset: start,
                                          elementCount: t.elements, byteCount: t.bytes)
                guard tensors.updateValue(info, forKey: t.name) == nil else {
                    throw GGUFError.invalid(path: path, reason: "duplicate tensor name \"\(t.name)\"")
                }
            }
            self.tensors = tensors
            tensorNames = raw.map(\.name)
        } catch let MappedFileError.outOfBounds(path, offset, length, size) {
            throw GGUFError.truncated(path: path, offset: offset, length: length, fileSize: size)
        } catch MappedFileError.invalidUTF8(_, let offset) {
            throw GGUFError.invalid(path: path, reason: "invalid UTF-8 string at offset \(offset)")
        }
    }

    /// The description of tensor `name`; throws `GGUFError.tensorMissing` when absent.
    public func tensor(_ name: String) throws -> GGUFTensorInfo {
        guard let info = tensors[name] else { throw GGUFError.tensorMissing(name: name, path: path) }
        return info
    }

    /// Tensor `name` as float32 values in GGML order (`dims[0]` fastest).
    ///
    /// F32 tensors are a zero-copy read-only view of the map; F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
    /// Q5_1, Q4_K, Q5_K and Q6_K are dequantised into a new buffer. Other types throw `GGUFError.unsupportedTensorType`.
    public func floats(_ name: String) throws -> FloatBuffer {
        let info = try tensor(name)
        guard info.type.isDequantizable else {
            throw GGUFError.unsupportedTensorType(tensor: name, type: info.type)
        }
        if info.type == .f32, info.offset % 4 == 0 {
            return try FloatBuffer(mapping: file, offset: info.offset, count: info.elementCount)
        }
        let out = FloatBuffer(count: info.elementCount)
        try Dequantize.into(out, at: 0, from: file, offset: info.offset, type: info.type, count: info.elementCount)
        return out
    }
}

/// A forward cursor over the map that checks every length against the bytes left.
private struct Reader {
    let file: MappedFile
    var offset: Int

    var remaining: Int { max(0, file.count - offset) }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let v = try file.load(T.self, at: offset)
        offset += MemoryLayout<T>.size
        return v
    }

    /// A 64-bit count of items each at least `minimumElementSize` bytes, checked against the
    /// bytes left in the file before anyone allocates for it (a count that cannot fit means the
    /// file is truncated or the count is corrupt; either way it is reported as truncation).
    mutating func count(minimumElementSize: Int) throws -> Int {
        let n = try read(UInt64.self)
        guard n <= UInt64(remaining / minimumElementSize) else {
            let needed = n.multipliedReportingOverflow(by: UInt64(minimumElementSize))
            throw GGUFError.truncated(path: file.path, offset: offset,
                                      length: needed.overflow ? Int.max : Int(clamping: needed.partialValue),
                                      fileSize: file.count)
        }
        return Int(n)
    }

    mutating func string() throws -> String {
        let at = offset
        let length = try read(UInt64.self)
        guard length <= UInt64(remaining) else {
            throw GGUFError.truncated(path: file.path, offset: at + 8, length: Int(clamping: length), fileSize: file.count)
        }
        let s = try file.string(offset: offset, length: Int(length))
        offset += Int(length)
        return s
    }

    /// The smallest encoding of one value of GGUF value type `type`, or nil for unknown types.
    static func minimumSize(_ type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 8, 10, 11, 12: return 8
        case 9: return 12
        default: return nil
        }
    }

    mutating func value(type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .uint(UInt64(try read(UInt8.self)))
        case 1: return .int(Int64(try read(Int8.self)))
        case 2: return .uint(UInt64(try read(UInt16.self)))
        case 3: return .int(Int64(try read(Int16.self)))
        case 4: return .uint(UInt64(try read(UInt32.self)))
        case 5: return .int(Int64(try read(Int32.self)))
        case 6: return .float(Double(Float(bitPattern: try read(UInt32.self))))
        case 7: return .bool(try read(UInt8.self) != 0)
        case 8: return .string(try string())
        case 9:
            guard depth < GGUFFile.maxArrayDepth else {
                throw GGUFError.invalid(path: file.path, reason: "metadata \"\(key)\" nests arrays deeper than \(GGUFFile.maxArrayDepth)")
            }
            let elementType = try read(UInt32.self)
            guard let size = Self.minimumSize(elementType) else {
                throw GGUFError.unknownValueType(path: file.path, key: key, typeID: elementType)
            }
            let n = try count(minimumElementSize: size)
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(type: elementType, key: key, depth: depth + 1)) }
            return .array(items)
        case 10: return .uint(try read(UInt64.self))
        case 11: return .int(try read(Int64.self))
        case 12: return .float(Double(bitPattern: try read(UInt64.self)))
        default: throw GGUFError.unknownValueType(path: file.path, key: key, typeID: type)
        }
    }
}
