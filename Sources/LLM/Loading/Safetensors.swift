// SafetensorsFile / SafetensorsWeights: reading Hugging Face `*.safetensors` (single file or
// sharded with `model.safetensors.index.json`). F32 tensors are memory-mapped in place; F16 and
// BF16 are converted to float32 once at load.
import Foundation
import Tensor

/// Where tensors of a model come from, by Hugging Face tensor name, in Hugging Face shape order
/// (a linear weight is `[out, in]`).
public protocol WeightSource: Sendable {
    /// The shape of tensor `name`, or nil when absent.
    func shape(of name: String) -> [Int]?
    /// The tensor's values as float32, row-major.
    func load(_ name: String) throws -> FloatBuffer
    /// Matrix `name` (`rows × cols`, shape already checked) in memory: in `format` when given,
    /// else as the source stores it (a GGUF block format in place; float files as float32).
    func matrix(_ name: String, rows: Int, cols: Int, format: WeightFormat?) throws -> WeightMatrix
}

extension WeightSource {
    /// Float sources: float32, or quantised at load when `format` asks for a block format.
    public func matrix(_ name: String, rows: Int, cols: Int, format: WeightFormat?) throws -> WeightMatrix {
        try WeightMatrix(rows: rows, cols: cols, float32: try load(name), format: format ?? .f32)
    }
}

/// One `.safetensors` file: its header parsed, its data memory-mapped.
public final class SafetensorsFile: Sendable {
    /// One tensor's entry in the header.
    public struct Entry: Sendable {
        public let dtype: String
        public let shape: [Int]
        /// Absolute byte range in the file.
        public let start: Int
        public let end: Int
    }

    /// The mapped file.
    public let file: MappedFile
    /// Tensor entries by name.
    public let entries: [String: Entry]
    /// The optional `__metadata__` map.
    public let metadata: [String: String]

    /// Maps and parses the file at `path`.
    public init(path: String) throws {
        file = try MappedFile(path: path)
        func bad(_ r: String) -> ModelLoadError { .invalidFile(path: path, reason: r) }
        guard file.count >= 8 else { throw bad("too short for a safetensors header") }
        let headerLength = try file.load(UInt64.self, at: 0)
        guard headerLength <= UInt64(file.count - 8), headerLength <= 100_000_000 else {
            throw bad("header length \(headerLength) exceeds the file size")
        }
        let header = try file.bytes(offset: 8, length: Int(headerLength))
        guard let json = try? JSONSerialization.jsonObject(with: Data(header)) as? [String: Any] else {
            throw bad("header is not a JSON object")
        }
        let dataStart = 8 + Int(headerLength)
        var entries = [String: Entry]()
        var metadata = [String: String]()
        for (name, value) in json {
            if name == "__metadata__" {
                for (k, v) in (value as? [String: Any]) ?? [:] { metadata[k] = "\(v)" }
                continue
            }
            guard let e = value as? [String: Any], let dtype = e["dtype"] as? String,
                  let shape = (e["shape"] as? [NSNumber])?.map(\.intValue),
                  let offs = (e["data_offsets"] as? [NSNumber])?.map(\.intValue), offs.count == 2 else {
                throw bad("malformed header entry for '\(name)'")
            }
            // Offsets are checked against the data's length before any arithmetic, so a hostile
            // header cannot overflow them; shapes are non-negative and their byte size must not
            // overflow either.
            guard offs[0] >= 0, offs[0] <= offs[1], offs[1] <= file.count - dataStart else {
                throw bad("tensor '\(name)' data range \(offs) runs past the end of the file")
            }
            let start = dataStart + offs[0], end = dataStart + offs[1]
            guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("tensor '\(name)' has a negative dimension in \(shape)") }
            guard let elements = Self.product(shape) else { throw bad("tensor '\(name)': shape \(shape) has too many elements") }
            if let size = Self.elementSize(dtype) {
                let (bytes, overflow) = elements.multipliedReportingOverflow(by: size)
                guard !overflow, bytes == end - start else {
                    throw bad("tensor '\(name)' holds \(end - start) bytes, but shape \(shape) of \(dtype) needs \(overflow ? "more" : "\(bytes)")")
                }
            }
            entries[name] = Entry(dtype: dtype, shape: shape, start: start, end: end)
        }
        self.entries = entries
        self.metadata = metadata
    }

    /// The product of `dims`, nil when it overflows.
    static func product(_ dims: [Int]) -> Int? {
        var result = 1
        for d in dims {
            let (next, overflow) = result.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            result = next
        }
        return result
    }

    static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F32", "I32", "U32": return 4
        case "F16", "BF16", "I16", "U16": return 2
        case "F64", "I64", "U64": return 8
        case "I8", "U8", "BOOL": return 1
        default: return nil
        }
    }

    /// Tensor `name` as float32: mapped in place when stored as aligned F32, converted otherwise.
    public func load(_ name: String) throws -> FloatBuffer {
        guard let e = entries[name] else { throw ModelLoadError.missingTensor(name) }
        let count = e.shape.reduce(1, *)
        switch e.dtype {
        case "F32":
            if e.start % 4 == 0 { return try FloatBuffer(mapping: file, offset: e.start, count: count) }
            let out = FloatBuffer(count: count)
            try Dequantize.into(out, at: 0, from: file, offset: e.start, type: .f32, count: count)
            return out
        case "F16", "BF16":
            let out = FloatBuffer(count: count)
            try Dequantize.into(out, at: 0, from: file, offset: e.start, type: e.dtype == "F16" ? .f16 : .bf16, count: count)
            return out
        default:
            throw ModelLoadError.unsupportedDType(tensor: name, dtype: e.dtype)
        }
    }
}

/// All tensors of a Hugging Face model folder: `model.safetensors`, or the shards listed by
/// `model.safetensors.index.json`.
public final class SafetensorsWeights: WeightSource {
    private let files: [SafetensorsFile]
    private let index: [String: Int]

    /// Opens the weights in `directory`.
    public init(directory: URL) throws {
        let fm = FileManager.default
        let indexURL = directory.appendingPathComponent("model.safetensors.index.json")
        var names: [String]
        if fm.fileExists(atPath: indexURL.path) {
            let data = try Data(contentsOf: indexURL)
            guard let j = try JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = j["weight_map"] as? [String: String] else {
                throw ModelLoadError.invalidFile(path: indexURL.path, reason: "no weight_map")
            }
            names = Array(Set(map.values)).sorted()
        } else {
            let single = directory.appendingPathComponent("model.safetensors")
            guard fm.fileExists(atPath: single.path) else {
                throw ModelLoadError.invalidFile(path: directory.path,
                                                 reason: "no model.safetensors or model.safetensors.index.json")
            }
            names = ["model.safetensors"]
        }
        var files = [SafetensorsFile]()
        var index = [String: Int]()
        for (i, n) in names.enumerated() {
            let f = try SafetensorsFile(path: directory.appendingPathComponent(n).path)
            files.append(f)
            for k in f.entries.keys { index[k] = i }
        }
        self.files = files
        self.index = index
    }

    public func shape(of name: String) -> [Int]? {
        guard let i = index[name] else { return nil }
        return files[i].entries[name]?.shape
    }

    public func load(_ name: String) throws -> FloatBuffer {
        guard let i = index[name] else { throw ModelLoadError.missingTensor(name) }
        return try files[i].load(name)
    }
}
