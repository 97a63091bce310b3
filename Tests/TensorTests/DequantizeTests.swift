// DequantizeTests: half/bfloat16 conversions against IEEE 754 bit patterns, and the block
// kernels against gguf-py's dequantisation of Tests/Fixtures/gguf/tiny.gguf.
import Foundation
import Tensor
import FixtureSupport
import XCTest

final class DequantizeTests: XCTestCase {
    // MARK: - Scalar conversions

    func testHalfKnownBitPatterns() {
        let cases: [(UInt16, Float)] = [
            (0x0000, 0), (0x3C00, 1), (0xBC00, -1), (0xC000, -2), (0x3800, 0.5),
            (0x3555, 0.333251953125), (0x7BFF, 65504), (0xFBFF, -65504),
            (0x0400, 0x1p-14),                 // smallest normal
            (0x0001, 0x1p-24),                 // smallest subnormal
            (0x8001, -0x1p-24),
            (0x03FF, 1023 * 0x1p-24),          // largest subnormal
            (0x0200, 0x1p-15),
            (0x7C00, .infinity), (0xFC00, -.infinity),
        ]
        for (bits, value) in cases {
            XCTAssertEqual(Dequantize.halfToFloat(bits).bitPattern, value.bitPattern,
                           "half 0x\(String(bits, radix: 16))")
        }
        XCTAssertEqual(Dequantize.halfToFloat(0x8000).bitPattern, 0x8000_0000, "negative zero keeps its sign")
        XCTAssertTrue(Dequantize.halfToFloat(0x7E00).isNaN)
        XCTAssertTrue(Dequantize.halfToFloat(0xFE01).isNaN)
        XCTAssertTrue(Dequantize.halfToFloat(0x7C01).isNaN)
    }

    #if !(os(macOS) && arch(x86_64))
    /// Every one of the 65536 half bit patterns against the standard library's Float16.
    func testHalfMatchesFloat16Exhaustively() {
        for bits in 0...UInt16.max {
            let reference = Float(Float16(bitPattern: bits))
            let mine = Dequantize.halfToFloat(bits)
            if reference.isNaN {
                XCTAssertTrue(mine.isNaN, "half 0x\(String(bits, radix: 16))")
            } else if mine.bitPattern != reference.bitPattern {
                XCTFail("half 0x\(String(bits, radix: 16)): \(mine) != \(reference)")
                return
            }
        }
    }
    #endif

    func testBFloat16KnownBitPatterns() {
        let cases: [(UInt16, UInt32, Float?)] = [
            (0x0000, 0x0000_0000, 0), (0x8000, 0x8000_0000, nil),
            (0x3F80, 0x3F80_0000, 1), (0xC000, 0xC000_0000, -2), (0x3EAB, 0x3EAB_0000, nil),
            (0x7F7F, 0x7F7F_0000, 3.3895314e38),  // largest finite
            (0x0080, 0x0080_0000, 0x1p-126),      // smallest normal
            (0x0001, 0x0001_0000, 0x1p-133),      // smallest subnormal
            (0x7F80, 0x7F80_0000, .infinity), (0xFF80, 0xFF80_0000, -.infinity),
        ]
        for (bits, floatBits, value) in cases {
            let f = Dequantize.bfloat16ToFloat(bits)
            XCTAssertEqual(f.bitPattern, floatBits, "bf16 0x\(String(bits, radix: 16))")
            if let value { XCTAssertEqual(f, value) }
        }
        XCTAssertTrue(Dequantize.bfloat16ToFloat(0x7FC0).isNaN)
    }

    // MARK: - Block kernels against gguf-py

    func testKernelsMatchGGUFPyOnTinyFixture() throws {
        let (file, tensors) = try Self.fixture()
        var checked = Set<String>()
        for (name, t) in tensors {
            guard let type = GGMLType(rawValue: t.typeID), type.isDequantizable else { continue }
            XCTAssertEqual(try type.byteCount(elements: t.values.count), t.bytes, name)
            let out = FloatBuffer(count: t.values.count + 2)
            try Dequantize.into(out, at: 1, from: file, offset: t.offset, type: type, count: t.values.count)
            XCTAssertEqual(out[0], 0, "\(name): wrote before the range")
            XCTAssertEqual(out[t.values.count + 1], 0, "\(name): wrote after the range")
            for (i, e) in t.values.enumerated() {
                XCTAssertEqual(Double(out[i + 1]), e, accuracy: 1e-6 * max(1, abs(e)), "\(name)[\(i)]")
            }
            checked.insert(type.name)
        }
        XCTAssertEqual(checked, ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0"])
    }

    func testBulkHalfAndBFloat16Helpers() throws {
        let (file, tensors) = try Self.fixture()
        for (name, convert) in [("t.f16", Dequantize.halfToFloat), ("t.bf16", Dequantize.bfloat16ToFloat)]
            as [(String, (FloatBuffer, Int, MappedFile, Int, Int) throws -> Void)] {
            let t = try XCTUnwrap(tensors[name])
            let out = FloatBuffer(count: t.values.count)
            try convert(out, 0, file, t.offset, t.values.count)
            XCTAssertEqual(out.toArray().map(Double.init), t.values, name)
        }
    }

    // MARK: - Errors

    func testUnsupportedTypeNamesTheType() throws {
        let (file, tensors) = try Self.fixture(RepositoryFixtures.kquants, "blocks.gguf", "blocks_expected.json")
        let t = try XCTUnwrap(tensors["t.q2_k"])
        XCTAssertThrowsError(try Dequantize.into(FloatBuffer(count: 256), at: 0, from: file, offset: t.offset,
                                                 type: .q2_K, count: 256)) { error in
            XCTAssertEqual(error as? DequantizeError, .unsupportedType(.q2_K))
            XCTAssertTrue("\(error)".contains("Q2_K"), "\(error)")
            XCTAssertTrue("\(error)".contains("Q4_K, Q5_K, Q6_K"), "names what is supported: \(error)")
        }
        XCTAssertTrue("\(DequantizeError.unsupportedType(.iq4_xs))".contains("IQ4_XS"))
    }

    func testRangeErrors() throws {
        let (file, _) = try Self.fixture()
        let out = FloatBuffer(count: 64)
        XCTAssertThrowsError(try Dequantize.into(out, at: 0, from: file, offset: 0, type: .q8_0, count: 31)) {
            XCTAssertEqual($0 as? DequantizeError, .notWholeBlocks(type: .q8_0, elements: 31))
        }
        XCTAssertThrowsError(try Dequantize.into(out, at: 40, from: file, offset: 0, type: .f16, count: 32)) {
            XCTAssertEqual($0 as? DequantizeError, .destinationOutOfRange(at: 40, count: 32, bufferCount: 64))
        }
        XCTAssertThrowsError(try Dequantize.into(out, at: 0, from: file, offset: file.count - 10, type: .f32, count: 8)) {
            XCTAssertTrue($0 is MappedFileError, "\($0)")
        }
        let mapped = try FloatBuffer(mapping: file, offset: 0, count: 4)
        XCTAssertThrowsError(try Dequantize.into(mapped, at: 0, from: file, offset: 0, type: .f32, count: 4)) {
            XCTAssertEqual($0 as? DequantizeError, .destinationReadOnly)
        }
    }

    func testBlockLayoutsMatchGGML() throws {
        XCTAssertEqual(GGMLType.q8_0.blockSize, 32)
        XCTAssertEqual(GGMLType.q8_0.bytesPerBlock, 34)
        XCTAssertEqual(GGMLType.q4_0.bytesPerBlock, 18)
        XCTAssertEqual(GGMLType.q4_1.bytesPerBlock, 20)
        XCTAssertEqual(GGMLType.q6_K.blockSize, 256)
        XCTAssertEqual(GGMLType.q6_K.bytesPerBlock, 210)
        XCTAssertEqual(GGMLType.q4_K.bytesPerBlock, 144)
        XCTAssertEqual(GGMLType.bf16.rawValue, 30)
        XCTAssertEqual(try GGMLType.q4_1.byteCount(elements: 576 * 1536), 576 * 1536 / 32 * 20)
        XCTAssertThrowsError(try GGMLType.f32.byteCount(elements: Int.max / 2))
        XCTAssertThrowsError(try GGMLType.f32.byteCount(elements: -1))
    }

    // MARK: - Fixture

    struct Expected: Decodable {
        struct Entry: Decodable {
            let typeID: UInt32
            let offset: Int
            let bytes: Int
            let values: [Double]
            enum CodingKeys: String, CodingKey {
                case typeID = "type_id", offset, bytes = "n_bytes", values
            }
        }
        let tensors: [String: Entry]
    }

    static var fixtureFolder: URL { RepositoryFixtures.gguf }

    /// tiny.gguf (or another gguf-py-written file) mapped, and gguf-py's offsets and dequantised
    /// values for its tensors.
    static func fixture(_ folder: URL = fixtureFolder, _ name: String = "tiny.gguf",
                        _ expected: String = "expected.json") throws -> (MappedFile, [String: Expected.Entry]) {
        let file = try MappedFile(path: RepositoryFixtures.require(folder.appendingPathComponent(name)).path)
        let json = try Data(contentsOf: folder.appendingPathComponent(expected))
        return (file, try JSONDecoder().decode(Expected.self, from: json).tensors)
    }
}
