// KQuantTests: the 5-bit and K-quant formats (Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) against gguf-py on
// Tests/Fixtures/kquants/blocks.gguf: dequantisation by the bulk expander and by every
// instruction-set variant of the tile kernel, and the decode products of every variant against
// plain loops over gguf-py's values times the 8-bit-quantised activations (in Double).
import Foundation
import Tensor
import FixtureSupport
import XCTest

final class KQuantTests: XCTestCase {
    static let formats: [GGMLType] = [.q5_0, .q5_1, .q4_K, .q5_K, .q6_K]

    /// blocks.gguf mapped with gguf-py's reading of it.
    func fixture() throws -> (MappedFile, [String: DequantizeTests.Expected.Entry]) {
        try DequantizeTests.fixture(RepositoryFixtures.kquants, "blocks.gguf", "blocks_expected.json")
    }

    /// The fixture's tensor of `type` as a matrix (rows of 96 for the 32-value formats, 512 for
    /// the K-quants) and gguf-py's values.
    func matrix(_ type: GGMLType) throws -> (BlockMatrix, [Double]) {
        let (file, tensors) = try fixture()
        let t = try XCTUnwrap(tensors.values.first { $0.typeID == type.rawValue }, "no \(type.name) tensor")
        let cols = type.blockSize == 256 ? 512 : 96
        return (try BlockMatrix(mapping: file, offset: t.offset, type: type, rows: t.values.count / cols, cols: cols), t.values)
    }

    func testFixtureHoldsEveryFormat() throws {
        let (_, tensors) = try fixture()
        let types = Set(tensors.values.compactMap { GGMLType(rawValue: $0.typeID) })
        XCTAssertEqual(types, Set(Self.formats + [.q2_K]))
        for type in Self.formats {
            XCTAssertTrue(type.isDequantizable && BlockMatrix.supportedTypes.contains(type), type.name)
            XCTAssertTrue(ActivationBlocks.needed(for: type), type.name)
        }
        XCTAssertFalse(GGMLType.q2_K.isDequantizable || BlockMatrix.supportedTypes.contains(.q2_K))
    }

    func testBulkDequantizationMatchesGGUFPy() throws {
        let (file, tensors) = try fixture()
        for type in Self.formats {
            let t = try XCTUnwrap(tensors.values.first { $0.typeID == type.rawValue })
            XCTAssertEqual(try type.byteCount(elements: t.values.count), t.bytes, type.name)
            let out = FloatBuffer(count: t.values.count + 2)
            try Dequantize.into(out, at: 1, from: file, offset: t.offset, type: type, count: t.values.count)
            XCTAssertEqual(out[0], 0, "\(type.name): wrote before the range")
            XCTAssertEqual(out[t.values.count + 1], 0, "\(type.name): wrote after the range")
            var worst = 0.0
            for (i, e) in t.values.enumerated() { worst = max(worst, abs(Double(out[i + 1]) - e) / max(1, abs(e))) }
            XCTAssertLessThanOrEqual(worst, 1e-6, type.name)
        }
    }

    func testTileDequantizationOfEveryVariantMatchesGGUFPy() throws {
        var variantsRun = Set<BlockProducts.Variant>()
        for type in Self.formats {
            let (w, values) = try matrix(type)
            // Rows 1..< (an offset start), into a wider buffer to catch writes past the rows.
            let rows = w.rows, cols = w.cols
            for variant in BlockProducts.Variant.allCases {
                let out = MatrixView(FloatBuffer(count: rows * cols + 8), rows: rows - 1, cols: cols)
                guard BlockProducts.dequantize(w, rows: 1..<rows, into: out, variant: variant) else { continue }
                variantsRun.insert(variant)
                var worst = 0.0
                for (i, e) in values.dropFirst(cols).enumerated() { worst = max(worst, abs(Double(out.buffer[i]) - e) / max(1, abs(e))) }
                XCTAssertLessThanOrEqual(worst, 1e-6, "\(type.name) \(variant)")
                XCTAssertEqual(out.buffer[(rows - 1) * cols], 0, "\(type.name) \(variant): wrote past the rows")
            }
            // The whole-matrix path the loader and tools use.
            let all = w.dequantized().toArray()
            for (i, e) in values.enumerated() { XCTAssertEqual(Double(all[i]), e, accuracy: 1e-6 * max(1, abs(e)), "\(type.name)[\(i)]") }
        }
        XCTAssertTrue(variantsRun.contains(.portable))
        if BlockProducts.instructionSet != "portable" { XCTAssertTrue(variantsRun.contains(.avx2), "this CPU has AVX2") }
    }

    /// Decode products of every variant against gguf-py's weights times the activations as the
    /// kernels quantise them (per 32 values d = max|x| / 127, x̂ = d·round(x/d)), summed in Double.
    func testDecodeProductsMatchPlainLoopsOverGGUFPyValues() throws {
        var variantsRun = Set<BlockProducts.Variant>()
        for type in Self.formats {
            let (w, values) = try matrix(type)
            for k in [1, 2, 4, 5, 16] {
                let x = BlockKernelTests.randomRows(k, w.cols, seed: UInt64(k * 13) + UInt64(type.rawValue))
                var expected = [Double]()
                for j in 0..<k {
                    let xs = BlockKernelTests.quantizedActivations(x.row(j))
                    for r in 0..<w.rows {
                        expected.append((0..<w.cols).reduce(0.0) { $0 + values[r * w.cols + $1] * xs[$1] })
                    }
                }
                let scale = expected.map(abs).max() ?? 1
                for variant in BlockProducts.Variant.allCases {
                    let y = MatrixView(FloatBuffer(count: k * w.rows), rows: k, cols: w.rows)
                    guard BlockProducts.decodeProduct(w, x, into: y, variant: variant) else { continue }
                    variantsRun.insert(variant)
                    let worst = zip(y.toArray(), expected).map { abs(Double($0) - $1) }.max() ?? 0
                    XCTAssertLessThanOrEqual(worst, 2e-5 * scale, "\(type.name) \(variant) k=\(k)")
                }
            }
        }
        XCTAssertTrue(variantsRun.contains(.portable))
        if BlockProducts.instructionSet != "portable" { XCTAssertTrue(variantsRun.contains(.avx2), "this CPU has AVX2") }
    }

    /// A K-quant row must be whole super-blocks of 256; column windows keep to them.
    func testKQuantRowsAreWholeSuperBlocks() throws {
        let (file, tensors) = try fixture()
        let t = try XCTUnwrap(tensors["t.q4_k"])
        XCTAssertThrowsError(try BlockMatrix(mapping: file, offset: t.offset, type: .q4_K, rows: 6, cols: 256 + 32)) {
            XCTAssertEqual($0 as? BlockMatrixError, .notWholeBlocks(type: .q4_K, cols: 288))
        }
        let (w, values) = try matrix(.q4_K)
        let window = w.rows(1..<3).columns(256..<512).dequantized().toArray()
        var expected = [Double]()
        for r in 1..<3 { expected += values[(r * 512 + 256)..<(r * 512 + 512)] }
        for (a, e) in zip(window, expected) { XCTAssertEqual(Double(a), e, accuracy: 1e-6 * max(1, abs(e))) }
        XCTAssertEqual(w.columns(256..<512).byteCount, 3 * 144)
    }
}
