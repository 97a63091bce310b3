// The float32 kernels against straightforward scalar reference loops written here: products
// (sgemm in three layouts, sgemv, the SIMD matvec with threads), RMSNorm, SiLU-gating, softmax,
// RoPE in rotate_half layout with and without llama3 scaling, and causal GQA attention.
import Foundation
import XCTest
@testable import Tensor

final class KernelTests: XCTestCase {
    var rng = SystemRandomNumberGenerator()

    func random(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2000) / 1000 - 1
        }
    }

    func assertClose(_ a: [Float], _ b: [Float], _ tol: Float, _ msg: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, msg, file: file, line: line)
        let d = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(d, tol, "\(msg) max |Δ| = \(d)", file: file, line: line)
    }

    func naiveABt(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { var s: Float = 0; for t in 0..<k { s += a[i * k + t] * b[j * k + t] }; c[i * n + j] = s } }
        return c
    }

    func testProductsMatchScalarLoops() {
        let m = 7, n = 13, k = 37
        let a = random(m * k, seed: 1), b = random(n * k, seed: 2)
        let expected = naiveABt(a, b, m: m, n: n, k: k)
        let c = FloatBuffer(count: m * n)
        BLAS.gemmABt(MatrixView(FloatBuffer(a), rows: m, cols: k), MatrixView(FloatBuffer(b), rows: n, cols: k),
                     into: MatrixView(c, rows: m, cols: n))
        assertClose(c.toArray(), expected, 1e-4, "gemmABt")
        // a · b with b stored transposed (k × n).
        var bt = [Float](repeating: 0, count: k * n)
        for j in 0..<n { for t in 0..<k { bt[t * n + j] = b[j * k + t] } }
        let c2 = FloatBuffer(count: m * n)
        BLAS.gemmAB(MatrixView(FloatBuffer(a), rows: m, cols: k), MatrixView(FloatBuffer(bt), rows: k, cols: n),
                    into: MatrixView(c2, rows: m, cols: n))
        assertClose(c2.toArray(), expected, 1e-4, "gemmAB")
        // Accumulation with beta = 1.
        BLAS.gemmAB(MatrixView(FloatBuffer(a), rows: m, cols: k), MatrixView(FloatBuffer(bt), rows: k, cols: n),
                    into: MatrixView(c2, rows: m, cols: n), beta: 1)
        assertClose(c2.toArray(), expected.map { 2 * $0 }, 2e-4, "gemmAB beta 1")
        // Every row alone through the matvec kernel, 1 and 2 threads, and through sgemv.
        for threads: ComputeThreads in [1, 2] {
            let w = MatrixView(FloatBuffer(b), rows: n, cols: k)
            for i in 0..<m {
                let y = FloatBuffer(count: n)
                MatVec.multiply(w, MatrixView(FloatBuffer(Array(a[(i * k)..<((i + 1) * k)])), rows: 1, cols: k),
                                into: MatrixView(y, rows: 1, cols: n), threads: threads)
                assertClose(y.toArray(), Array(expected[(i * n)..<((i + 1) * n)]), 1e-4, "matvec row \(i)")
                let y2 = FloatBuffer(count: n)
                BLAS.gemv(w, MatrixView(FloatBuffer(Array(a[(i * k)..<((i + 1) * k)])), rows: 1, cols: k),
                          into: MatrixView(y2, rows: 1, cols: n))
                assertClose(y2.toArray(), y.toArray(), 1e-4, "sgemv row \(i)")
            }
        }
    }

    func testMatVecThreadsOnLargeMatrix() {
        let rows = 1000, cols = 333
        let w = random(rows * cols, seed: 9), x = random(cols, seed: 10)
        let expected = naiveABt(x, w, m: 1, n: rows, k: cols)
        let y = FloatBuffer(count: rows)
        MatVec.multiply(MatrixView(FloatBuffer(w), rows: rows, cols: cols), MatrixView(FloatBuffer(x), rows: 1, cols: cols),
                        into: MatrixView(y, rows: 1, cols: rows), threads: 2)
        assertClose(y.toArray(), expected, 1e-3)
    }

    func testRMSNormSiluSoftmaxArgmax() {
        let x = random(3 * 10, seed: 3), w = random(10, seed: 4)
        let out = FloatBuffer(count: 30)
        Kernels.rmsNorm(MatrixView(FloatBuffer(x), rows: 3, cols: 10), weight: FloatBuffer(w), eps: 1e-5,
                        into: MatrixView(out, rows: 3, cols: 10))
        var expected = [Float]()
        for r in 0..<3 {
            let row = x[(r * 10)..<((r + 1) * 10)]
            let ms = row.map { Double($0) * Double($0) }.reduce(0, +) / 10
            expected += row.enumerated().map { Float(Double($0.element) / (ms + 1e-5).squareRoot()) * w[$0.offset] }
        }
        assertClose(out.toArray(), expected, 1e-5, "rmsNorm")

        let g = FloatBuffer(random(12, seed: 5)), u = FloatBuffer(random(12, seed: 6))
        let expectedSilu = (0..<12).map { i -> Float in let v = Double(g[i]); return Float(v / (1 + exp(-v))) * u[i] }
        Kernels.siluMul(gate: MatrixView(g, rows: 2, cols: 6), up: MatrixView(u, rows: 2, cols: 6), into: MatrixView(g, rows: 2, cols: 6))
        assertClose(g.toArray(), expectedSilu, 1e-6, "siluMul")

        let logits: [Float] = [1000, 1001, 999, -5]
        let s = FloatBuffer(logits)
        Kernels.softmaxRows(MatrixView(s, rows: 1, cols: 4))
        let e = logits.map { exp(Double($0 - 1001)) }
        assertClose(s.toArray(), e.map { Float($0 / e.reduce(0, +)) }, 1e-6, "softmax is stable")
        XCTAssertEqual(Kernels.argmax(MatrixView(FloatBuffer([3, 7, 7, 1]), rows: 1, cols: 4), row: 0), 1, "first max wins")
    }

    /// RoPE reference: HF's apply_rotary_pos_emb, q*cos + rotate_half(q)*sin with cos/sin repeated
    /// over both halves, written out per element.
    func testRopeRotateHalf() {
        let hd = 8, heads = 2, rows = 3, start = 5
        let x = random(rows * heads * hd, seed: 7)
        let table = RopeTable(headDim: hd, theta: 10000)
        let buf = FloatBuffer(x)
        Kernels.rope(MatrixView(buf, rows: rows, cols: heads * hd), heads: heads, startPosition: start, table: table)
        var expected = x
        for r in 0..<rows {
            for h in 0..<heads {
                let base = r * heads * hd + h * hd
                for i in 0..<hd {
                    let f = 1 / pow(10000.0, Double(2 * (i % (hd / 2))) / Double(hd))
                    let ang = Double(start + r) * f
                    let rotated = i < hd / 2 ? -Double(x[base + i + hd / 2]) : Double(x[base + i - hd / 2])
                    expected[base + i] = Float(Double(x[base + i]) * cos(ang) + rotated * sin(ang))
                }
            }
        }
        assertClose(buf.toArray(), expected, 1e-5, "rope")
    }

    /// Llama 3.1's published scaling (factor 8, low 1, high 4, original 8192): wavelengths
    /// shorter than 2048 keep their frequency, longer than 8192 are divided by 8, between blend.
    func testLlama3RopeScaling() {
        let s = RopeTable.Llama3Scaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192)
        let plain = RopeTable(headDim: 128, theta: 500000)
        let scaled = RopeTable(headDim: 128, theta: 500000, llama3: s)
        var sawHigh = false, sawLow = false, sawMid = false
        for (f, g) in zip(plain.inverseFrequencies, scaled.inverseFrequencies) {
            let wavelen = 2 * Double.pi / Double(f)
            if wavelen < 2048 { XCTAssertEqual(g, f); sawHigh = true }
            else if wavelen > 8192 { XCTAssertEqual(g, f / 8, accuracy: f * 1e-6); sawLow = true }
            else {
                let smooth = (8192 / wavelen - 1) / (4 - 1)
                XCTAssertEqual(Double(g), (1 - smooth) * Double(f) / 8 + smooth * Double(f), accuracy: Double(f) * 1e-5)
                sawMid = true
            }
        }
        XCTAssertTrue(sawHigh && sawLow && sawMid)
    }

    /// Causal GQA attention against a direct per-row, per-head loop.
    func testCausalGroupedQueryAttention() {
        let heads = 4, kvHeads = 2, hd = 8, start = 3, rows = 4, length = start + rows
        let q = random(rows * heads * hd, seed: 11)
        let k = random(length * kvHeads * hd, seed: 12), v = random(length * kvHeads * hd, seed: 13)
        let out = FloatBuffer(count: rows * heads * hd)
        Kernels.causalAttention(q: MatrixView(FloatBuffer(q), rows: rows, cols: heads * hd),
                                keys: MatrixView(FloatBuffer(k), rows: length, cols: kvHeads * hd),
                                values: MatrixView(FloatBuffer(v), rows: length, cols: kvHeads * hd),
                                startPosition: start, heads: heads, kvHeads: kvHeads, headDim: hd,
                                scores: FloatBuffer(count: rows * length), into: MatrixView(out, rows: rows, cols: heads * hd))
        var expected = [Float](repeating: 0, count: rows * heads * hd)
        for r in 0..<rows {
            for h in 0..<heads {
                let g = h / (heads / kvHeads)
                let visible = start + r + 1
                var s = (0..<visible).map { j -> Double in
                    var d = 0.0
                    for i in 0..<hd { d += Double(q[r * heads * hd + h * hd + i]) * Double(k[j * kvHeads * hd + g * hd + i]) }
                    return d / Double(hd).squareRoot()
                }
                let m = s.max()!
                s = s.map { exp($0 - m) }
                let z = s.reduce(0, +)
                for i in 0..<hd {
                    var acc = 0.0
                    for j in 0..<visible { acc += s[j] / z * Double(v[j * kvHeads * hd + g * hd + i]) }
                    expected[r * heads * hd + h * hd + i] = Float(acc)
                }
            }
        }
        assertClose(out.toArray(), expected, 1e-5, "attention")
    }

    func testMappedFileBoundsAreErrors() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("paratool-map-\(UUID().uuidString)")
        try Data([1, 0, 0, 0, 0, 0, 128, 63]).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let f = try MappedFile(path: url.path)
        XCTAssertEqual(try f.load(UInt32.self, at: 0), 1)
        XCTAssertEqual(try f.loadFloat(at: 4), 1.0)
        XCTAssertThrowsError(try f.load(UInt64.self, at: 4))
        XCTAssertThrowsError(try f.bytes(offset: 9, length: 1))
        XCTAssertThrowsError(try f.bytes(offset: -1, length: 1))
        XCTAssertThrowsError(try MappedFile(path: "/nonexistent/file"))
        let view = try FloatBuffer(mapping: f, offset: 4, count: 1)
        XCTAssertEqual(view[0], 1.0)
        XCTAssertThrowsError(try FloatBuffer(mapping: f, offset: 4, count: 2))
    }
}

extension KernelTests {
    func testTopKAgainstSort() {
        let x = random(5000, seed: 21)
        let got = Kernels.topK(MatrixView(FloatBuffer(x), rows: 1, cols: 5000), row: 0, k: 7)
        let expected = x.enumerated().sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }.prefix(7)
        XCTAssertEqual(got.map(\.index), expected.map(\.offset))
        XCTAssertEqual(got.map(\.value), expected.map(\.element))
    }
}

extension KernelTests {
    /// Three products fused into one parallel call equal the three computed alone, including
    /// accumulation; the split points fall inside each matrix for these sizes.
    func testFusedMatVecJobs() {
        let cols = 40
        let x = FloatBuffer(random(cols, seed: 30))
        let xs = MatrixView(x, rows: 1, cols: cols)
        let sizes = [300, 100, 170]
        let ws = sizes.enumerated().map { FloatBuffer(random($0.element * cols, seed: UInt64(31 + $0.offset))) }
        let ys = sizes.map { FloatBuffer(random($0, seed: UInt64($0))) }
        let before = ys.map { $0.toArray() }
        MatVec.multiply(MatVec.Job(MatrixView(ws[0], rows: 300, cols: cols), xs, into: MatrixView(ys[0], rows: 1, cols: 300)),
                        MatVec.Job(MatrixView(ws[1], rows: 100, cols: cols), xs, into: MatrixView(ys[1], rows: 1, cols: 100), accumulate: true),
                        MatVec.Job(MatrixView(ws[2], rows: 170, cols: cols), xs, into: MatrixView(ys[2], rows: 1, cols: 170)),
                        threads: 2)
        for (k, n) in sizes.enumerated() {
            var expected = naiveABt(x.toArray(), ws[k].toArray(), m: 1, n: n, k: cols)
            if k == 1 { expected = zip(expected, before[k]).map { $0 + $1 } }
            assertClose(ys[k].toArray(), expected, 1e-4, "job \(k)")
        }
    }

    func testWorkerPoolRunsEveryPartEveryCall() {
        let pool = WorkerPool(threads: 3)
        let counts = FloatBuffer(count: 3)
        for _ in 0..<2000 { pool.run { part in counts[part] += 1 } }
        XCTAssertEqual(counts.toArray(), [2000, 2000, 2000])
    }

    func testBLASCoreUpgradeOnlyFromNarrowerKernels() {
        let avx512: Set<String> = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"]
        XCTAssertEqual(BLASCore.betterCore(current: "Prescott", cpuFlags: avx512), "SkylakeX")
        XCTAssertEqual(BLASCore.betterCore(current: "Prescott", cpuFlags: ["avx2", "fma"]), "Haswell")
        XCTAssertNil(BLASCore.betterCore(current: "Prescott", cpuFlags: ["sse3"]))
        XCTAssertEqual(BLASCore.betterCore(current: "Zen", cpuFlags: avx512), "SkylakeX", "an AVX2 set on an AVX-512 CPU")
        XCTAssertEqual(BLASCore.betterCore(current: "Haswell", cpuFlags: avx512), "SkylakeX")
        XCTAssertNil(BLASCore.betterCore(current: "Haswell", cpuFlags: ["avx2", "fma"]), "the right set is kept")
        XCTAssertNil(BLASCore.betterCore(current: "Zen", cpuFlags: ["avx2", "fma"]))
        XCTAssertNil(BLASCore.betterCore(current: "SkylakeX", cpuFlags: avx512))
        XCTAssertNil(BLASCore.betterCore(current: "Cooperlake", cpuFlags: avx512))
    }
}

extension KernelTests {
    /// Several input rows through the C kernel (4-row register groups, a remainder, and more
    /// rows than one call holds) and the transposed product with a row map.
    func testMultiRowAndTransposedMatVec() {
        let out = 300, cols = 77
        let w = random(out * cols, seed: 40)
        for k in [2, 5, 8, 17] {
            let x = random(k * cols, seed: UInt64(41 + k))
            let y = FloatBuffer(count: k * out)
            MatVec.multiply(MatVec.Job(MatrixView(FloatBuffer(w), rows: out, cols: cols), MatrixView(FloatBuffer(x), rows: k, cols: cols),
                                       into: MatrixView(y, rows: k, cols: out)), threads: 2)
            assertClose(y.toArray(), naiveABt(x, w, m: k, n: out, k: cols), 1e-4, "k = \(k)")
        }
        // y[rows[j]] += t[j] · Bᵀ with Bᵀ given (r × out): two jobs of different ranks into two
        // outputs, in one call.
        let jobs: [(rank: Int, tRows: Int, yRows: Int, map: [Int])] = [(6, 3, 5, [4, 0, 2]), (16, 2, 2, [1, 0])]
        var outputs = [FloatBuffer](), expected = [[Float]](), fused = [MatVec.TransposedJob]()
        for (n, job) in jobs.enumerated() {
            let bt = random(job.rank * out, seed: UInt64(50 + 3 * n)), t = random(job.tRows * job.rank, seed: UInt64(51 + 3 * n))
            let y = FloatBuffer(random(job.yRows * out, seed: UInt64(52 + 3 * n)))
            var want = y.toArray()
            for (j, target) in job.map.enumerated() {
                for c in 0..<out {
                    var s: Float = 0
                    for i in 0..<job.rank { s += t[j * job.rank + i] * bt[i * out + c] }
                    want[target * out + c] += s
                }
            }
            outputs.append(y)
            expected.append(want)
            fused.append(MatVec.TransposedJob(MatrixView(FloatBuffer(bt), rows: job.rank, cols: out),
                                              MatrixView(FloatBuffer(t), rows: job.tRows, cols: job.rank),
                                              accumulatingInto: MatrixView(y, rows: job.yRows, cols: out), rows: job.map))
        }
        MatVec.multiplyTransposed(fused, threads: 2)
        for n in jobs.indices { assertClose(outputs[n].toArray(), expected[n], 1e-4, "transposed job \(n) with row map") }
    }

    /// Every instruction-set variant of both decode kernels (not only the one this CPU picks)
    /// against plain loops, on widths and row counts with remainders.
    func testEveryKernelVariantMatchesPlainLoops() {
        var covered = [String]()
        for variant in MatVec.Variant.allCases {
            let out = 45, cols = 77
            let w = random(out * cols, seed: 70)
            var ran = true
            for k in [1, 3, 4, 9, 17] {
                let x = random(k * cols, seed: UInt64(71 + k))
                let y = FloatBuffer(count: k * out)
                ran = MatVec.multiply(MatrixView(FloatBuffer(w), rows: out, cols: cols), MatrixView(FloatBuffer(x), rows: k, cols: cols),
                                      into: MatrixView(y, rows: k, cols: out), variant: variant)
                guard ran else { break }
                assertClose(y.toArray(), naiveABt(x, w, m: k, n: out, k: cols), 1e-4, "\(variant) matvec, k = \(k)")
            }
            guard ran else { continue }
            for (rank, width, columns) in [(16, 300, 0..<300), (6, 300, 5..<299), (3, 70, 64..<70), (16, 1536, 768..<1536)] {
                let bt = random(rank * width, seed: UInt64(80 + rank)), t = random(rank, seed: 81)
                let y = FloatBuffer(random(width, seed: 82))
                var expected = y.toArray()
                for c in columns { for j in 0..<rank { expected[c] += t[j] * bt[j * width + c] } }
                XCTAssertTrue(MatVec.multiplyTransposed(MatrixView(FloatBuffer(bt), rows: rank, cols: width), MatrixView(FloatBuffer(t), rows: 1, cols: rank),
                                                        accumulatingInto: MatrixView(y, rows: 1, cols: width), columns: columns, variant: variant))
                assertClose(y.toArray(), expected, 1e-4, "\(variant) transposed, r = \(rank), columns \(columns)")
            }
            covered.append("\(variant)")
        }
        XCTAssertTrue(covered.contains("portable"), "the portable kernels run everywhere")
        print("kernel variants covered on this CPU: \(covered.joined(separator: ", "))")
    }

    /// Column factors and block copies on strided views.
    func testColumnFactorsAndCopy() {
        let x = FloatBuffer(random(4 * 10, seed: 60)), before = x.toArray()
        let factors = random(6, seed: 61)
        let view = MatrixView(x, offset: 2, rows: 3, cols: 6, stride: 10)
        Kernels.multiplyColumns(view, by: MatrixView(FloatBuffer(factors), rows: 1, cols: 6))
        var want = before
        for r in 0..<3 { for c in 0..<6 { want[2 + r * 10 + c] *= factors[c] } }
        XCTAssertEqual(x.toArray(), want)
        let destination = FloatBuffer(count: 3 * 6)
        Kernels.copy(view, into: MatrixView(destination, rows: 3, cols: 6))
        XCTAssertEqual(destination.toArray(), (0..<3).flatMap { r in (0..<6).map { want[2 + r * 10 + $0] } })
    }
}
