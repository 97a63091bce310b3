// BlockKernelTests: the block-format kernels (Sources/CKernels/blockkernels.c) in every
// instruction-set variant this CPU has, against plain loops: decode products against the
// dequantised weights times the 8-bit-quantised activations (computed here in Double), the
// float formats' products, dequantisation against gguf-py's values on tiny.gguf, the tiled sgemm
// products against float32 sgemm, and the load-time quantisers' error bounds.
import Foundation
import Tensor
import FixtureSupport
import XCTest

final class BlockKernelTests: XCTestCase {
    /// A random matrix of `type` written to a temporary file and mapped (as the loader maps a
    /// GGUF file), with its values expanded by the Swift dequantiser (tested against gguf-py).
    func randomMatrix(_ type: GGMLType, rows: Int, cols: Int, seed: UInt64) throws -> (BlockMatrix, [Float]) {
        var rng = SeededGenerator(seed: seed)
        func uniform() -> Float { Float(rng.next() % 1_000_000) / 1_000_000 }
        func half(_ v: Float) -> [UInt8] { withUnsafeBytes(of: Float16(v).bitPattern.littleEndian, Array.init) }
        func randomBytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        var bytes = [UInt8]()
        let blocks = rows * cols / type.blockSize
        for _ in 0..<blocks {
            switch type {
            case .q4_0: bytes += half(uniform() * 0.02 + 0.001) + (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case .q4_1: bytes += half(uniform() * 0.02 + 0.001) + half(uniform() * 0.2 - 0.1) + (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case .q8_0: bytes += half(uniform() * 0.002 + 0.0001) + (0..<32).map { _ in UInt8(bitPattern: Int8(Int(rng.next() % 255) - 127)) }
            case .q5_0: bytes += half(uniform() * 0.02 + 0.001) + randomBytes(4 + 16)
            case .q5_1: bytes += half(uniform() * 0.02 + 0.001) + half(uniform() * 0.2 - 0.1) + randomBytes(4 + 16)
            case .q4_K: bytes += half(uniform() * 0.01 + 0.0005) + half(uniform() * 0.01) + randomBytes(12 + 128)
            case .q5_K: bytes += half(uniform() * 0.01 + 0.0005) + half(uniform() * 0.01) + randomBytes(12 + 32 + 128)
            case .q6_K: bytes += randomBytes(128 + 64 + 16) + half(uniform() * 0.005 + 0.0001)
            case .f16: bytes += half(uniform() * 2 - 1)
            case .bf16: bytes += withUnsafeBytes(of: UInt16((uniform() * 2 - 1).bitPattern >> 16).littleEndian, Array.init)
            case .f32: bytes += withUnsafeBytes(of: (uniform() * 2 - 1).bitPattern.littleEndian, Array.init)
            default: XCTFail("no generator for \(type)")
            }
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("block-\(type.name)-\(seed)-\(UUID().uuidString).bin")
        try Data(bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let file = try MappedFile(path: url.path)
        let expanded = FloatBuffer(count: rows * cols)
        try Dequantize.into(expanded, at: 0, from: file, offset: 0, type: type, count: rows * cols)
        return (try BlockMatrix(mapping: file, offset: 0, type: type, rows: rows, cols: cols), expanded.toArray())
    }

    func randomRows(_ k: Int, _ n: Int, seed: UInt64) -> MatrixView { Self.randomRows(k, n, seed: seed) }
    func quantizedActivations(_ x: [Float]) -> [Double] { Self.quantizedActivations(x) }

    /// k rows of n values in [−2, 2] on a grid of 1/500.
    static func randomRows(_ k: Int, _ n: Int, seed: UInt64) -> MatrixView {
        var rng = SeededGenerator(seed: seed)
        let values = (0..<(k * n)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 500 }
        return MatrixView(FloatBuffer(values), rows: k, cols: n)
    }

    /// The activations as the kernels see them: per 32 values d = max|x| / 127, x̂ = d·round(x/d).
    static func quantizedActivations(_ x: [Float]) -> [Double] {
        var out = [Double]()
        for b in stride(from: 0, to: x.count, by: 32) {
            let block = x[b..<(b + 32)]
            let amax = block.map(abs).max() ?? 0
            let d = amax / 127, id: Float = amax > 0 ? 127 / amax : 0
            out += block.map { Double(d) * Double(($0 * id).rounded(.toNearestOrEven)) }
        }
        return out
    }

    func testDecodeProductsOfEveryFormatAndVariantMatchPlainLoops() throws {
        var variantsRun = Set<BlockProducts.Variant>()
        for type in [GGMLType.q4_0, .q4_1, .q8_0, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K, .f16, .bf16, .f32] {
            let shapes = type.blockSize == 256 ? [(256, 37), (768, 20)] : type.blockSize == 1 ? [(96, 37), (576, 20), (44, 7)] : [(96, 37), (576, 20)]
            for (cols, rows) in shapes {
                let (w, values) = try randomMatrix(type, rows: rows, cols: cols, seed: UInt64(cols + Int(type.rawValue)))
                for k in [1, 3, 16] {
                    let x = randomRows(k, cols, seed: UInt64(k * 7 + cols))
                    var expected = [Double]()
                    for j in 0..<k {
                        let xs = ActivationBlocks.needed(for: type) ? quantizedActivations(x.row(j)) : x.row(j).map(Double.init)
                        for r in 0..<rows { expected.append((0..<cols).reduce(0.0) { $0 + Double(values[r * cols + $1]) * xs[$1] }) }
                    }
                    let scale = expected.map(abs).max() ?? 1
                    for variant in BlockProducts.Variant.allCases {
                        let y = MatrixView(FloatBuffer(count: k * rows), rows: k, cols: rows)
                        guard BlockProducts.decodeProduct(w, x, into: y, variant: variant) else { continue }
                        variantsRun.insert(variant)
                        let worst = zip(y.toArray(), expected).map { abs(Double($0) - $1) }.max() ?? 0
                        XCTAssertLessThanOrEqual(worst, 2e-5 * scale, "\(type.name) \(variant) k=\(k) cols=\(cols)")
                    }
                }
            }
        }
        XCTAssertTrue(variantsRun.contains(.portable))
        if BlockProducts.instructionSet != "portable" { XCTAssertTrue(variantsRun.contains(.avx2), "this CPU has AVX2") }
    }

    /// A row's result does not depend on the rows batched with it (bit for bit, every variant),
    /// so batched decode generates what one-by-one decode does.
    func testDecodeRowsAreIndependentOfTheirBatch() throws {
        for type in [GGMLType.q4_0, .q4_1, .q8_0, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K, .f16, .bf16] {
            let cols = type.blockSize == 256 ? 512 : type.blockSize == 1 ? 172 : 160
            let (w, _) = try randomMatrix(type, rows: 24, cols: cols, seed: 5)
            let x = randomRows(11, cols, seed: 6)
            for variant in BlockProducts.Variant.allCases {
                let all = MatrixView(FloatBuffer(count: 11 * 24), rows: 11, cols: 24)
                guard BlockProducts.decodeProduct(w, x, into: all, variant: variant) else { continue }
                for j in 0..<11 {
                    let one = MatrixView(FloatBuffer(count: 24), rows: 1, cols: 24)
                    XCTAssertTrue(BlockProducts.decodeProduct(w, x.rows(j, 1), into: one, variant: variant))
                    XCTAssertEqual(one.row(0), all.row(j), "\(type.name) \(variant) row \(j)")
                }
            }
        }
    }

    /// Rows of jobs run in parts (as the worker pool splits them) and accumulate into y.
    func testDecodeJobsSplitAndAccumulate() throws {
        let (w, _) = try randomMatrix(.q4_1, rows: 70, cols: 64, seed: 3)
        let x = randomRows(2, 64, seed: 4)
        let whole = MatrixView(FloatBuffer(count: 2 * 70), rows: 2, cols: 70)
        XCTAssertTrue(BlockProducts.decodeProduct(w, x, into: whole, variant: .portable))
        let y = MatrixView(FloatBuffer([Float](repeating: 1, count: 2 * 70)), rows: 2, cols: 70)
        MatVec.multiply(MatVec.Job(w, x, activations: ActivationBlocks.quantize(x), into: y, accumulate: true), threads: 2)
        for (a, b) in zip(y.toArray(), whole.toArray()) { XCTAssertEqual(a, b + 1, accuracy: 1e-4 * max(1, abs(b))) }
    }

    func testDequantizationOfEveryVariantMatchesGGUFPy() throws {
        let (file, tensors) = try DequantizeTests.fixture()
        var checked = Set<String>()
        for (name, t) in tensors {
            guard let type = GGMLType(rawValue: t.typeID), BlockMatrix.supportedTypes.contains(type) else { continue }
            // Rows of 32 where the count allows (float tensors of other sizes: two rows or one).
            let cols = t.values.count % 32 == 0 ? 32 : t.values.count % 2 == 0 ? t.values.count / 2 : t.values.count
            let rows = t.values.count / cols, first = rows > 1 ? 1 : 0
            let w = try BlockMatrix(mapping: file, offset: t.offset, type: type, rows: rows, cols: cols)
            for variant in BlockProducts.Variant.allCases {
                let out = MatrixView(FloatBuffer(count: rows * cols + 8), rows: rows - first, cols: cols)
                guard BlockProducts.dequantize(w, rows: first..<rows, into: out, variant: variant) else { continue }
                for (i, e) in t.values.dropFirst(first * cols).enumerated() {
                    XCTAssertEqual(Double(out.buffer[i]), e, accuracy: 1e-6 * max(1, abs(e)), "\(name) \(variant) [\(i)]")
                }
                XCTAssertEqual(out.buffer[(rows - first) * cols], 0, "\(name): wrote past the rows")
            }
            checked.insert(type.name)
        }
        XCTAssertEqual(checked, ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0"])
    }

    /// Sub-matrices of rows and of block-aligned columns read the right bytes.
    func testRowAndColumnWindows() throws {
        let (w, values) = try randomMatrix(.q8_0, rows: 10, cols: 128, seed: 9)
        let window = w.rows(2..<7).columns(32..<96)
        let out = window.dequantized().toArray()
        var expected = [Float]()
        for r in 2..<7 { expected += values[(r * 128 + 32)..<(r * 128 + 96)] }
        XCTAssertEqual(out, expected)
        XCTAssertEqual(window.byteCount, 5 * 2 * 34)
    }

    func testTiledProductsMatchFloatSgemm() throws {
        for type in [GGMLType.q4_1, .q8_0, .f16, .q5_0, .q4_K, .q6_K] {
            let cols = type.blockSize == 256 ? 256 : 160
            let (w, values) = try randomMatrix(type, rows: 300, cols: cols, seed: 11)
            let dense = MatrixView(FloatBuffer(values), rows: 300, cols: cols)
            for n in [17, 200] {
                let x = randomRows(n, cols, seed: UInt64(n))
                let reference = MatrixView(FloatBuffer(count: n * 300), rows: n, cols: 300)
                BLAS.gemmABt(x, dense, into: reference)
                for threads: ComputeThreads in [1, 2] {
                    let y = MatrixView(FloatBuffer([Float](repeating: 0.5, count: n * 300)), rows: n, cols: 300)
                    BlockProducts.multiply(x, w, into: y, accumulate: true, threads: threads)
                    for (a, b) in zip(y.toArray(), reference.toArray()) { XCTAssertEqual(a, b + 0.5, accuracy: 1e-4 * max(1, abs(b))) }
                }
                // dx = dy · W, the backward's product.
                let dy = randomRows(n, 300, seed: UInt64(n + 1))
                let dxReference = MatrixView(FloatBuffer(count: n * cols), rows: n, cols: cols)
                BLAS.gemmAB(dy, dense, into: dxReference)
                let dx = MatrixView(FloatBuffer([Float](repeating: 2, count: n * cols)), rows: n, cols: cols)
                BlockProducts.multiplyUntransposed(dy, w, into: dx, beta: 1)
                for (a, b) in zip(dx.toArray(), dxReference.toArray()) { XCTAssertEqual(a, b + 2, accuracy: 1e-4 * max(1, abs(b))) }
            }
        }
    }

    /// Quantising at load: every value within half a step of its block's scale (plus the scale's
    /// own half-precision rounding), except that Q4_0's 16 levels run from −8 to 7 steps on the
    /// side of the block's extreme value, so values beyond 7.5 steps on the other side are within
    /// one step (llama.cpp's reference quantiser clamps them to 15).
    func testLoadTimeQuantisersStayWithinHalfAStep() throws {
        let x = randomRows(8, 128, seed: 21)
        for type in [GGMLType.q8_0, .q4_0] {
            let q = try BlockMatrix.quantizing(x, to: type)
            XCTAssertEqual(q.type, type)
            let back = q.dequantized().toArray(), original = x.toArray()
            for b in stride(from: 0, to: original.count, by: 32) {
                let block = original[b..<(b + 32)]
                let amax = block.map(abs).max()!, extreme = block.first { abs($0) == amax }!
                let step = type == .q8_0 ? amax / 127 : amax / 8
                for i in b..<(b + 32) {
                    let clamped = type == .q4_0 && original[i] * extreme < 0 && abs(original[i]) > 7.5 * step
                    XCTAssertLessThanOrEqual(abs(back[i] - original[i]), step * (clamped ? 1 : 0.5) + amax * 2e-3, "\(type.name)[\(i)]")
                }
            }
        }
        XCTAssertThrowsError(try BlockMatrix.quantizing(x, to: .q4_1))
        XCTAssertThrowsError(try BlockMatrix.quantizing(randomRows(2, 40, seed: 1), to: .q8_0))
    }
}
