// The training kernels against double-precision reference loops written here, in every
// instruction-set variant this CPU runs (RMSNorm and its backward, RoPE from a position table and
// its transpose, the SiLU product and its backward, causal softmax rows and their backward,
// softmax cross-entropy, AdamW, sums of squares), and causal attention of training (forward and
// backward, several segments, several blocks) against the same in double precision.
import Foundation
import XCTest
@testable import Tensor

final class TrainingKernelTests: XCTestCase {
    func random(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return (Float(Int64(bitPattern: s >> 11) % 2000) / 1000 - 1) * scale
        }
    }

    func assertClose(_ a: [Float], _ b: [Double], relative tol: Double, _ msg: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, msg, file: file, line: line)
        let scale = max(b.map(abs).max() ?? 0, 1e-30)
        let d = zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(d / scale, tol, "\(msg): max |Δ| / max |ref| = \(d / scale)", file: file, line: line)
    }

    func view(_ values: [Float], _ rows: Int, _ cols: Int) -> MatrixView { MatrixView(FloatBuffer(values), rows: rows, cols: cols) }

    func column(_ rows: Int) -> MatrixView { MatrixView(FloatBuffer(count: rows), rows: rows, cols: 1, stride: 1) }

    /// Every kernel of `TrainingKernels` in `variant`, with widths that leave remainders after
    /// 16-wide blocks.
    func checkRowKernels(_ variant: String) {
        let rows = 3
        for n in [7, 37, 576] {
            let x = random(rows * n, seed: UInt64(n), scale: 3), w = random(n, seed: UInt64(n + 1)), dy = random(rows * n, seed: UInt64(n + 2))
            let residual = random(rows * n, seed: UInt64(n + 3)), eps: Float = 1e-5
            let out = view([Float](repeating: 0, count: rows * n), rows, n), inv = column(rows)
            TrainingKernels.rmsNorm(view(x, rows, n), weight: FloatBuffer(w), eps: eps, into: out, inverse: inv)
            var wantOut = [Double](), wantInv = [Double](), wantDx = [Double]()
            for r in 0..<rows {
                let xr = (0..<n).map { Double(x[r * n + $0]) }, d = (0..<n).map { Double(dy[r * n + $0]) }
                let i = 1 / ((xr.map { $0 * $0 }.reduce(0, +) / Double(n)) + Double(eps)).squareRoot()
                wantInv.append(i)
                wantOut += (0..<n).map { xr[$0] * i * Double(w[$0]) }
                let ux = (0..<n).map { d[$0] * Double(w[$0]) * xr[$0] }.reduce(0, +)
                wantDx += (0..<n).map { Double(residual[r * n + $0]) + i * d[$0] * Double(w[$0]) - i * i * i * ux / Double(n) * xr[$0] }
            }
            assertClose(out.toArray(), wantOut, relative: 1e-6, "\(variant) rmsNorm n=\(n)")
            assertClose(inv.toArray(), wantInv, relative: 1e-6, "\(variant) rmsNorm inverse n=\(n)")
            let dx = view(residual, rows, n)
            TrainingKernels.rmsNormBackward(x: view(x, rows, n), inverse: inv, weight: FloatBuffer(w), dy: view(dy, rows, n),
                                            residual: dx, into: dx)
            assertClose(dx.toArray(), wantDx, relative: 1e-5, "\(variant) rmsNormBackward n=\(n)")
            let noResidual = view([Float](repeating: 9, count: rows * n), rows, n)
            TrainingKernels.rmsNormBackward(x: view(x, rows, n), inverse: inv, weight: FloatBuffer(w), dy: view(dy, rows, n),
                                            residual: nil, into: noResidual)
            assertClose(noResidual.toArray(), zip(wantDx, residual).map { $0 - Double($1) }, relative: 1e-5, "\(variant) rmsNormBackward no residual")

            // SiLU product over gates far into both tails (the exp polynomial's clamps).
            let g = random(rows * n, seed: UInt64(n + 4), scale: 95), u = random(rows * n, seed: UInt64(n + 5))
            let dout = random(rows * n, seed: UInt64(n + 6))
            let act = view([Float](repeating: 0, count: rows * n), rows, n)
            TrainingKernels.siluMul(gate: view(g, rows, n), up: view(u, rows, n), into: act)
            let sig = g.map { 1 / (1 + exp(-Double($0))) }
            let wantAct = (0..<(rows * n)).map { Double(g[$0]) * sig[$0] * Double(u[$0]) }
            assertClose(act.toArray(), wantAct, relative: 1e-6, "\(variant) siluMul n=\(n)")
            let dg = view(dout, rows, n), du = view([Float](repeating: 0, count: rows * n), rows, n)
            let act2 = view([Float](repeating: 0, count: rows * n), rows, n)
            TrainingKernels.siluMulBackward(gate: view(g, rows, n), up: view(u, rows, n), dOut: dg, act: act2, dGate: dg, dUp: du)
            assertClose(act2.toArray(), wantAct, relative: 1e-6, "\(variant) siluMulBackward act")
            assertClose(du.toArray(), (0..<(rows * n)).map { Double(dout[$0]) * Double(g[$0]) * sig[$0] }, relative: 1e-6, "\(variant) dUp")
            var wantDg = [Double]()
            for i in 0..<(rows * n) {
                let gi = Double(g[i]), si = sig[i]
                wantDg.append(Double(dout[i]) * Double(u[i]) * si * (1 + gi * (1 - si)))
            }
            assertClose(dg.toArray(), wantDg, relative: 1e-6, "\(variant) dGate")

            // Causal softmax of a block whose first row sees 2 keys, and its backward.
            let visible = 2, width = n
            let s = random(rows * width, seed: UInt64(n + 7), scale: 4), dp = random(rows * width, seed: UInt64(n + 8))
            let p = view(s, rows, width)
            TrainingKernels.causalSoftmax(p, visible: visible)
            var wantP = [Double](), wantDs = [Double]()
            let ours = p.toArray()
            for r in 0..<rows {
                let k = min(visible + r, width)
                let row = (0..<k).map { Double(s[r * width + $0]) }, m = row.max()!
                let e = row.map { exp($0 - m) }, z = e.reduce(0, +)
                wantP += e.map { $0 / z } + [Double](repeating: 0, count: width - k)
                // The backward's reference starts from the kernel's own probabilities.
                let pr = (0..<width).map { Double(ours[r * width + $0]) }
                let dot = (0..<width).map { pr[$0] * Double(dp[r * width + $0]) }.reduce(0, +)
                wantDs += (0..<width).map { pr[$0] * (Double(dp[r * width + $0]) - dot) }
            }
            assertClose(ours, wantP, relative: 1e-6, "\(variant) causalSoftmax n=\(n)")
            let d = view(dp, rows, width)
            TrainingKernels.causalSoftmaxBackward(p: p, dp: d, visible: visible)
            assertClose(d.toArray(), wantDs, relative: 1e-5, "\(variant) causalSoftmaxBackward n=\(n)")

            // Cross-entropy of one row.
            let logits = random(n, seed: UInt64(n + 9), scale: 30), target = n / 3, scale: Float = 0.25
            let zv = view(logits, 1, n)
            let loss = TrainingKernels.softmaxCrossEntropy(zv, row: 0, target: target, scale: scale)
            let m = logits.map(Double.init).max()!, e = logits.map { exp(Double($0) - m) }, z = e.reduce(0, +)
            XCTAssertEqual(Double(loss), log(z) + m - Double(logits[target]), accuracy: 1e-5, "\(variant) cross-entropy loss")
            assertClose(zv.toArray(), (0..<n).map { Double(scale) * (e[$0] / z - ($0 == target ? 1 : 0)) }, relative: 1e-5,
                        "\(variant) cross-entropy gradient")

            // Sum of squares and AdamW against the plain formulas.
            let grad = random(n, seed: UInt64(n + 10))
            XCTAssertEqual(TrainingKernels.sumOfSquares(FloatBuffer(grad)), grad.map { Double($0) * Double($0) }.reduce(0, +),
                           accuracy: 1e-9, "\(variant) sum of squares")
            let p0 = random(n, seed: UInt64(n + 11)), m0 = random(n, seed: UInt64(n + 12), scale: 0.1)
            let v0 = random(n, seed: UInt64(n + 13)).map { $0 * $0 }
            let step = TrainingKernels.AdamWStep(clip: 0.5, beta1: 0.9, beta2: 0.999, correction1: 0.19, correction2: 0.002,
                                                 epsilon: 1e-8, learningRate: 1e-3, weightDecay: 0.01)
            let pb = FloatBuffer(p0), mb = FloatBuffer(m0), vb = FloatBuffer(v0)
            TrainingKernels.adamW(pb, gradients: FloatBuffer(grad), m: mb, v: vb, step: step)
            var wantM = [Double](), wantV = [Double](), wantParams = [Double]()
            for i in 0..<n {
                let gi = Double(grad[i]) * 0.5
                let mi = 0.9 * Double(m0[i]) + 0.1 * gi, vi = 0.999 * Double(v0[i]) + 0.001 * gi * gi
                wantM.append(mi)
                wantV.append(vi)
                wantParams.append(Double(p0[i]) - 1e-3 * ((mi / 0.19) / ((vi / 0.002).squareRoot() + 1e-8) + 0.01 * Double(p0[i])))
            }
            assertClose(mb.toArray(), wantM, relative: 1e-6, "\(variant) AdamW m")
            assertClose(vb.toArray(), wantV, relative: 1e-6, "\(variant) AdamW v")
            assertClose(pb.toArray(), wantParams, relative: 1e-6, "\(variant) AdamW parameters")
        }

        // RoPE from the table: the inference kernel's rotation, and its transpose undoes it.
        let heads = 3, table = RopeTable(headDim: 8, theta: 10000), start = 5
        let positions = RopePositions(table, positions: 20)
        let x = random(6 * heads * 8, seed: 40)
        let ours = view(x, 6, heads * 8), reference = view(x, 6, heads * 8)
        TrainingKernels.rope(ours, heads: heads, startPosition: start, table: positions)
        Kernels.rope(reference, heads: heads, startPosition: start, table: table)
        assertClose(ours.toArray(), reference.toArray().map(Double.init), relative: 1e-6, "\(variant) rope")
        TrainingKernels.rope(ours, heads: heads, startPosition: start, table: positions, inverse: true)
        assertClose(ours.toArray(), x.map(Double.init), relative: 1e-6, "\(variant) rope transpose")
    }

    func testRowKernelsMatchReferenceInEveryVariant() {
        var covered = [String]()
        for variant in MatVec.Variant.allCases {
            if TrainingKernels.withVariant(variant, { checkRowKernels("\(variant)") }) { covered.append("\(variant)") }
        }
        XCTAssertTrue(covered.contains("portable"), "the portable kernels run everywhere")
        print("training kernel variants covered on this CPU: \(covered.joined(separator: ", "))")
    }

    /// Attention in double precision for one segment: the output and, for the upstream gradient
    /// `dOut`, the gradients of q, k and v.
    func referenceAttention(q: [Float], k: [Float], v: [Float], dOut: [Float], rows: Range<Int>, heads: Int, kvHeads: Int, hd: Int)
        -> (out: [Int: Double], dq: [Int: Double], dk: [Int: Double], dv: [Int: Double]) {
        var out = [Int: Double](), dq = [Int: Double](), dk = [Int: Double](), dv = [Int: Double]()
        let qw = heads * hd, kw = kvHeads * hd, scale = 1 / Double(hd).squareRoot()
        for h in 0..<heads {
            let g = h / (heads / kvHeads)
            for i in rows {
                let keys = rows.lowerBound...i
                let s = keys.map { j in (0..<hd).map { Double(q[i * qw + h * hd + $0]) * Double(k[j * kw + g * hd + $0]) }.reduce(0, +) * scale }
                let m = s.max()!, e = s.map { exp($0 - m) }, z = e.reduce(0, +), p = e.map { $0 / z }
                let dp = keys.map { j in (0..<hd).map { Double(dOut[i * qw + h * hd + $0]) * Double(v[j * kw + g * hd + $0]) }.reduce(0, +) }
                let dot = zip(p, dp).map { $0 * $1 }.reduce(0, +)
                let ds = zip(p, dp).map { $0 * ($1 - dot) }
                for (a, j) in keys.enumerated() {
                    for c in 0..<hd {
                        out[i * qw + h * hd + c, default: 0] += p[a] * Double(v[j * kw + g * hd + c])
                        dv[j * kw + g * hd + c, default: 0] += p[a] * Double(dOut[i * qw + h * hd + c])
                        dq[i * qw + h * hd + c, default: 0] += ds[a] * Double(k[j * kw + g * hd + c]) * scale
                        dk[j * kw + g * hd + c, default: 0] += ds[a] * Double(q[i * qw + h * hd + c]) * scale
                    }
                }
            }
        }
        return (out, dq, dk, dv)
    }

    func testTrainingAttentionMatchesReferenceAcrossSegmentsAndBlocks() {
        let heads = 4, kvHeads = 2, hd = 8
        let segments = [0..<13, 13..<14, 14..<44]
        let n = 44, qw = heads * hd, kw = kvHeads * hd
        let q = random(n * qw, seed: 1), k = random(n * kw, seed: 2), v = random(n * kw, seed: 3), dOut = random(n * qw, seed: 4)
        var want = (out: [Double](repeating: 0, count: n * qw), dq: [Double](repeating: 0, count: n * qw),
                    dk: [Double](repeating: 0, count: n * kw), dv: [Double](repeating: 0, count: n * kw))
        for seg in segments {
            let r = referenceAttention(q: q, k: k, v: v, dOut: dOut, rows: seg, heads: heads, kvHeads: kvHeads, hd: hd)
            for (i, x) in r.out { want.out[i] = x }
            for (i, x) in r.dq { want.dq[i] = x }
            for (i, x) in r.dk { want.dk[i] = x }
            for (i, x) in r.dv { want.dv[i] = x }
        }
        for blockRows in [4, 5, 64] {
            let attention = TrainingAttention(heads: heads, kvHeads: kvHeads, headDim: hd, blockRows: blockRows)
            let out = view([Float](repeating: 0, count: n * qw), n, qw)
            attention.forward(q: view(q, n, qw), k: view(k, n, kw), v: view(v, n, kw), segments: segments, into: out)
            assertClose(out.toArray(), want.out, relative: 1e-5, "attention blocks of \(blockRows)")
            let dq = view([Float](repeating: 7, count: n * qw), n, qw)
            let dk = view([Float](repeating: 7, count: n * kw), n, kw), dv = view([Float](repeating: 7, count: n * kw), n, kw)
            attention.backward(q: view(q, n, qw), k: view(k, n, kw), v: view(v, n, kw), dOut: view(dOut, n, qw), segments: segments,
                               dq: dq, dk: dk, dv: dv)
            assertClose(dq.toArray(), want.dq, relative: 1e-5, "dq, blocks of \(blockRows)")
            assertClose(dk.toArray(), want.dk, relative: 1e-5, "dk, blocks of \(blockRows)")
            assertClose(dv.toArray(), want.dv, relative: 1e-5, "dv, blocks of \(blockRows)")
        }
    }

    /// A segment's attention and gradients are the same bits whether or not other segments share
    /// the call, so a sequence trains alike alone and in a batch.
    func testTrainingAttentionOfASegmentIgnoresItsNeighbours() {
        let heads = 4, kvHeads = 2, hd = 8, n = 70, qw = heads * hd, kw = kvHeads * hd
        let q = random(n * qw, seed: 5), k = random(n * kw, seed: 6), v = random(n * kw, seed: 7), dOut = random(n * qw, seed: 8)
        let attention = TrainingAttention(heads: heads, kvHeads: kvHeads, headDim: hd, blockRows: 8)
        func run(_ rows: Range<Int>, _ segments: [Range<Int>]) -> [[Float]] {
            let m = rows.count
            func part(_ x: [Float], _ w: Int) -> MatrixView { view(Array(x[(rows.lowerBound * w)..<(rows.upperBound * w)]), m, w) }
            let out = view([Float](repeating: 0, count: m * qw), m, qw), dq = view([Float](repeating: 0, count: m * qw), m, qw)
            let dk = view([Float](repeating: 0, count: m * kw), m, kw), dv = view([Float](repeating: 0, count: m * kw), m, kw)
            attention.forward(q: part(q, qw), k: part(k, kw), v: part(v, kw), segments: segments, into: out)
            attention.backward(q: part(q, qw), k: part(k, kw), v: part(v, kw), dOut: part(dOut, qw), segments: segments, dq: dq, dk: dk, dv: dv)
            return [out, dq, dk, dv].map { $0.toArray() }
        }
        let together = run(0..<n, [0..<25, 25..<70])
        let alone = run(25..<70, [0..<45])
        for (t, (a, w)) in zip(together, zip(alone, [qw, qw, kw, kw])) {
            XCTAssertEqual(Array(t[(25 * w)...]), a)
        }
    }
}
