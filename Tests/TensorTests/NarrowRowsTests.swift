// LoRA weights stored as bfloat16: the float32 → BF16 rounding against gguf-py's reference
// quantiser (fixture), and the narrow-rows product (y[o] += dot(B[o], t), B out × r in F32 or BF16)
// of every instruction-set variant against a plain loop over the same stored values.
import FixtureSupport
import Foundation
import XCTest
@testable import Tensor

final class NarrowRowsTests: XCTestCase {
    func random(_ n: Int, seed: UInt64) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<n).map { _ in g.uniform(-1, 1) }
    }

    /// `BlockMatrix.quantizing(_, to: .bf16)` gives gguf-py's bits for zeros, ties, infinities,
    /// the largest float (rounds to infinity), subnormals, NaNs (quieted) and random values.
    func testBF16RoundingMatchesGGUFPy() throws {
        let data = try Data(contentsOf: RepositoryFixtures.bf16.appendingPathComponent("bf16_rounding.json"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let bits = try XCTUnwrap(json["float32_bits"] as? [Int]), expected = try XCTUnwrap(json["bf16"] as? [Int])
        XCTAssertEqual(bits.count, 83)
        let floats = bits.map { Float(bitPattern: UInt32($0)) }
        let m = try BlockMatrix.quantizing(MatrixView(FloatBuffer(floats), rows: 1, cols: floats.count), to: .bf16)
        let stored = m.storedBytes()
        XCTAssertEqual(stored.count, 2 * floats.count)
        let got = (0..<floats.count).map { Int(stored[2 * $0]) | Int(stored[2 * $0 + 1]) << 8 }
        XCTAssertEqual(got, expected)
        // Reading back gives the BF16 values (upper 16 bits), as gguf-py's dequantiser does.
        let back = m.dequantized().toArray()
        for (i, h) in expected.enumerated() where !back[i].isNaN {
            XCTAssertEqual(back[i].bitPattern, UInt32(h) << 16, "value \(i)")
        }
    }

    /// Every variant this CPU has, F32 and BF16, ranks with and without a whole number of 8 and
    /// row ranges that start and end off a multiple of 8: the result equals a plain loop over the
    /// stored values (accumulated into what y held).
    func testNarrowRowsEveryVariantMatchesAPlainLoop() throws {
        var covered = [String]()
        for variant in MatVec.Variant.allCases {
            var ran = true
            for type in [GGMLType.f32, .bf16] {
                for (rank, out, rows) in [(16, 1536, 0..<1536), (16, 576, 5..<571), (8, 40, 0..<40), (12, 30, 3..<29), (3, 10, 0..<10)] {
                    let b = try BlockMatrix.quantizing(MatrixView(FloatBuffer(random(out * rank, seed: UInt64(rank * out))), rows: out, cols: rank),
                                                       to: type)
                    let stored = b.dequantized().toArray()
                    let t = random(rank, seed: 7), start = random(out, seed: 8)
                    let y = FloatBuffer(start)
                    ran = MatVec.multiplyNarrowRows(b, MatrixView(FloatBuffer(t), rows: 1, cols: rank),
                                                    accumulatingInto: MatrixView(y, rows: 1, cols: out), rows: rows, variant: variant)
                    guard ran else { break }
                    var expected = start
                    for o in rows {
                        var s: Float = 0
                        for k in 0..<rank { s += stored[o * rank + k] * t[k] }
                        expected[o] += s
                    }
                    let got = y.toArray()
                    for o in 0..<out {
                        XCTAssertEqual(got[o], expected[o], accuracy: 1e-5 * max(1, abs(expected[o])),
                                       "\(variant) \(type.name) r = \(rank) rows \(rows) output \(o)")
                    }
                }
                guard ran else { break }
            }
            if ran { covered.append("\(variant)") }
        }
        XCTAssertTrue(covered.contains("portable"))
        print("narrow-row variants covered on this CPU: \(covered.joined(separator: ", "))")
    }

    /// The fused call: several jobs (rows of y chosen per job) split over threads give what each
    /// job's rows get from the plain loop.
    func testNarrowRowsJobsSplitOverThreads() throws {
        let out = 600, rank = 16
        let y = FloatBuffer(count: 3 * out)
        var expected = [Float](repeating: 0, count: 3 * out)
        var jobs = [MatVec.NarrowRowsJob]()
        for (j, rows) in [[0, 2], [1], [2]].enumerated() {
            let b = try BlockMatrix.quantizing(MatrixView(FloatBuffer(random(out * rank, seed: UInt64(90 + j))), rows: out, cols: rank),
                                               to: j == 1 ? .f32 : .bf16)
            let stored = b.dequantized().toArray()
            let t = random(rows.count * rank, seed: UInt64(95 + j))
            jobs.append(MatVec.NarrowRowsJob(b, MatrixView(FloatBuffer(t), rows: rows.count, cols: rank),
                                             accumulatingInto: MatrixView(y, rows: 3, cols: out), rows: rows))
            for (i, row) in rows.enumerated() {
                for o in 0..<out { for k in 0..<rank { expected[row * out + o] += stored[o * rank + k] * t[i * rank + k] } }
            }
        }
        MatVec.multiplyNarrowRows(jobs, threads: ComputeThreads(2))
        let got = y.toArray()
        for i in 0..<got.count { XCTAssertEqual(got[i], expected[i], accuracy: 1e-4, "element \(i)") }
    }
}
