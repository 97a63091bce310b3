// Element-wise and row-wise float32 kernels of the transformer: RMSNorm, rotary position
// embedding (Hugging Face rotate_half layout), SiLU-gated product, residual add, softmax, argmax,
// row gather, and causal grouped-query attention (sgemm per head).
import CKernels
import Foundation

/// Row-wise and element-wise kernels on `MatrixView`s.
public enum Kernels {
    /// `out[r] = x[r] / sqrt(mean(x[r]²) + eps) * weight` for every row. `out` may alias `x`.
    public static func rmsNorm(_ x: MatrixView, weight: FloatBuffer, eps: Float, into out: MatrixView) {
        precondition(x.rows == out.rows && x.cols == out.cols && weight.count == x.cols, "rmsNorm shape mismatch")
        let n = x.cols
        let wp = weight.base
        for r in 0..<x.rows {
            let xp = x.pointer + r * x.stride
            let op = out.pointer + r * out.stride
            var acc = SIMD8<Float>()
            var i = 0
            while i + 8 <= n {
                let v = UnsafeRawPointer(xp + i).loadUnaligned(as: SIMD8<Float>.self)
                acc += v * v
                i += 8
            }
            var ss = acc.sum()
            while i < n { ss += xp[i] * xp[i]; i += 1 }
            let inv = 1 / (ss / Float(n) + eps).squareRoot()
            for j in 0..<n { op[j] = (xp[j] * inv) * wp[j] }
        }
    }

    /// `y += x` element-wise.
    public static func add(_ x: MatrixView, into y: MatrixView) {
        precondition(x.rows == y.rows && x.cols == y.cols, "add shape mismatch")
        for r in 0..<x.rows {
            let xp = x.pointer + r * x.stride, yp = y.pointer + r * y.stride
            for i in 0..<x.cols { yp[i] += xp[i] }
        }
    }

    /// `x *= factor` element-wise.
    public static func scale(_ x: MatrixView, by factor: Float) {
        for r in 0..<x.rows {
            let p = x.pointer + r * x.stride
            for i in 0..<x.cols { p[i] *= factor }
        }
    }

    /// `x[r, c] *= factors[c]` for every row: one factor per column (a 1×cols view).
    public static func multiplyColumns(_ x: MatrixView, by factors: MatrixView) {
        precondition(factors.rows == 1 && factors.cols == x.cols, "multiplyColumns shape mismatch")
        let f = factors.pointer
        for r in 0..<x.rows {
            let p = x.pointer + r * x.stride
            for i in 0..<x.cols { p[i] *= f[i] }
        }
    }

    /// Copies `source` into `destination` (same shape), row by row.
    public static func copy(_ source: MatrixView, into destination: MatrixView) {
        precondition(source.rows == destination.rows && source.cols == destination.cols, "copy shape mismatch")
        precondition(!destination.buffer.isMapped, "write to a read-only mapped buffer")
        for r in 0..<source.rows {
            (destination.pointer + r * destination.stride).update(from: source.pointer + r * source.stride, count: source.cols)
        }
    }

    /// Writes the transpose of `source` (r × c) into `destination` (c × r).
    public static func transpose(_ source: MatrixView, into destination: MatrixView) {
        precondition(source.rows == destination.cols && source.cols == destination.rows, "transpose shape mismatch")
        precondition(!destination.buffer.isMapped, "write to a read-only mapped buffer")
        defer { withExtendedLifetime((source.buffer, destination.buffer)) {} }
        let s = source.pointer, d = destination.pointer
        for r in 0..<source.rows {
            for c in 0..<source.cols { d[c * destination.stride + r] = s[r * source.stride + c] }
        }
    }

    /// `y += x` for one row vector broadcast over all rows of `y` (bias add).
    public static func addRowVector(_ v: FloatBuffer, into y: MatrixView) {
        precondition(v.count == y.cols, "bias length mismatch")
        for r in 0..<y.rows {
            let yp = y.pointer + r * y.stride
            for i in 0..<y.cols { yp[i] += v.base[i] }
        }
    }

    /// `out = silu(gate) * up` element-wise, silu(g) = g / (1 + e^-g). `out` may alias either input.
    public static func siluMul(gate: MatrixView, up: MatrixView, into out: MatrixView) {
        precondition(gate.rows == up.rows && gate.cols == up.cols && out.rows == gate.rows && out.cols == gate.cols,
                     "siluMul shape mismatch")
        for r in 0..<gate.rows {
            let g = gate.pointer + r * gate.stride, u = up.pointer + r * up.stride, o = out.pointer + r * out.stride
            for i in 0..<gate.cols {
                let v = g[i]
                o[i] = v / (1 + expf(-v)) * u[i]
            }
        }
    }

    /// Copies row `index` of `table` into row `row` of `out` (embedding lookup).
    public static func copyRow(_ table: MatrixView, _ index: Int, into out: MatrixView, row: Int) {
        precondition(index >= 0 && index < table.rows && table.cols == out.cols && row < out.rows, "copyRow out of range")
        (out.pointer + row * out.stride).update(from: table.pointer + index * table.stride, count: table.cols)
    }

    /// In-place softmax of every row (numerically stable).
    public static func softmaxRows(_ x: MatrixView) {
        for r in 0..<x.rows { softmax(x.pointer + r * x.stride, x.cols) }
    }

    @inline(__always)
    static func softmax(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        if n == 0 { return }
        var m = -Float.infinity
        for i in 0..<n where p[i] > m { m = p[i] }
        var s: Float = 0
        for i in 0..<n { let e = expf(p[i] - m); p[i] = e; s += e }
        let inv = 1 / s
        for i in 0..<n { p[i] *= inv }
    }

    /// Index of the largest value of row `row` (first one on ties).
    public static func argmax(_ x: MatrixView, row: Int) -> Int {
        precondition(row >= 0 && row < x.rows && x.cols > 0, "argmax out of range")
        let p = x.pointer + row * x.stride
        var best = 0
        var bv = p[0]
        for i in 1..<x.cols where p[i] > bv { bv = p[i]; best = i }
        return best
    }

    /// The index among `candidates` whose value in row `row` is largest (the first listed on
    /// ties), or nil when `candidates` is empty. Indices outside the row are skipped.
    public static func argmax(_ x: MatrixView, row: Int, among candidates: [Int32]) -> Int? {
        precondition(row >= 0 && row < x.rows, "argmax out of range")
        let p = x.pointer + row * x.stride
        var best = -1
        var bv = -Float.infinity
        for c in candidates {
            let i = Int(c)
            guard i >= 0 && i < x.cols else { continue }
            if best < 0 || p[i] > bv { bv = p[i]; best = i }
        }
        return best < 0 ? nil : best
    }

    /// The `k` largest values of row `row` with their indices, largest first (ties: lower index first).
    public static func topK(_ x: MatrixView, row: Int, k: Int) -> [(index: Int, value: Float)] {
        precondition(row >= 0 && row < x.rows && k >= 0, "topK out of range")
        let p = x.pointer + row * x.stride
        var best = [(index: Int, value: Float)]()
        best.reserveCapacity(k + 1)
        for i in 0..<x.cols {
            let v = p[i]
            if best.count == k, let last = best.last, !(v > last.value) { continue }
            var j = best.count
            while j > 0 && v > best[j - 1].value { j -= 1 }
            best.insert((i, v), at: j)
            if best.count > k { best.removeLast() }
        }
        return best
    }

    /// Rotary position embedding in the Hugging Face "rotate_half" layout: for each head, element
    /// i of the first half pairs with element i of the second half. Row r of `x` is at position
    /// `startPosition + r`. `x` holds `heads` heads of `table.headDim` columns each.
    public static func rope(_ x: MatrixView, heads: Int, startPosition: Int, table: RopeTable) {
        let hd = table.headDim, half = hd / 2
        precondition(x.cols == heads * hd, "rope shape mismatch")
        withUnsafeTemporaryAllocation(of: Float.self, capacity: hd) { trig in
            let cosv = trig.baseAddress!, sinv = cosv + half
            for r in 0..<x.rows {
                table.angles(position: startPosition + r, cos: cosv, sin: sinv)
                let row = x.pointer + r * x.stride
                for h in 0..<heads {
                    let p = row + h * hd
                    for i in 0..<half {
                        let a = p[i], b = p[i + half]
                        p[i] = a * cosv[i] - b * sinv[i]
                        p[i + half] = b * cosv[i] + a * sinv[i]
                    }
                }
            }
        }
    }

    /// Causal grouped-query attention for a block of consecutive query positions of one sequence.
    ///
    /// - `q`: rows × (heads·headDim), row r at position `startPosition + r` (RoPE already applied).
    /// - `keys`, `values`: the sequence's cache, at least `startPosition + q.rows` rows ×
    ///   (kvHeads·headDim); query head h reads KV head h / (heads / kvHeads).
    /// - `scores`: scratch of at least q.rows × (startPosition + q.rows) floats.
    /// - `out`: rows × (heads·headDim).
    public static func causalAttention(q: MatrixView, keys: MatrixView, values: MatrixView,
                                       startPosition: Int, heads: Int, kvHeads: Int, headDim: Int,
                                       scores: FloatBuffer, into out: MatrixView) {
        let rows = q.rows, length = startPosition + rows
        precondition(q.cols == heads * headDim && out.cols == q.cols && out.rows == rows, "attention q/out shape")
        precondition(keys.rows >= length && values.rows >= length && keys.cols == kvHeads * headDim
                     && values.cols == keys.cols, "attention cache shape")
        precondition(heads % kvHeads == 0 && scores.count >= rows * length, "attention heads/scratch")
        let group = heads / kvHeads
        let scale = 1 / Float(headDim).squareRoot()
        let s = MatrixView(scores, rows: rows, cols: length)
        if rows == 1 {
            // Decode: per head, scores = K·q and out = Σ_j p_j V_j with the matrix-vector kernels
            // (an sgemm call per head costs more than the work at one row).
            for h in 0..<heads {
                let kvh = h / group
                let qp = q.pointer + h * headDim, op = out.pointer + h * headDim
                pt_matvec_rows(keys.pointer + kvh * headDim, keys.stride, headDim, qp, 0, 1, s.pointer, 0, 0, length, 0)
                for j in 0..<length { s.pointer[j] *= scale }
                softmax(s.pointer, length)
                op.update(repeating: 0, count: headDim)
                pt_matvec_transposed(values.pointer + kvh * headDim, values.stride, length, s.pointer, op, 0, headDim)
            }
            return
        }
        for h in 0..<heads {
            let kvh = h / group
            let qh = q.columns(h * headDim, headDim)
            let kh = keys.rows(0, length).columns(kvh * headDim, headDim)
            let vh = values.rows(0, length).columns(kvh * headDim, headDim)
            BLAS.gemmABt(qh, kh, into: s, alpha: scale)
            for r in 0..<rows {
                let p = s.pointer + r * s.stride
                let visible = startPosition + r + 1
                softmax(p, visible)
                for j in visible..<length { p[j] = 0 }
            }
            BLAS.gemmAB(s, vh, into: out.columns(h * headDim, headDim))
        }
    }
}

/// Rotary embedding frequencies for one model: `inv_freq[i] = base^(-2i/d)`, optionally rescaled
/// with the "llama3" rule (low frequencies divided by `factor`, a smooth blend in between).
public struct RopeTable: Sendable {
    /// The rotated head dimension.
    public let headDim: Int
    /// The inverse frequencies, headDim/2 of them.
    public let inverseFrequencies: [Float]

    /// Llama 3 style frequency scaling parameters (`rope_scaling` with `rope_type: llama3`).
    public struct Llama3Scaling: Sendable, Equatable {
        public var factor: Float
        public var lowFreqFactor: Float
        public var highFreqFactor: Float
        public var originalMaxPositionEmbeddings: Int
        public init(factor: Float, lowFreqFactor: Float, highFreqFactor: Float, originalMaxPositionEmbeddings: Int) {
            self.factor = factor
            self.lowFreqFactor = lowFreqFactor
            self.highFreqFactor = highFreqFactor
            self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
        }
    }

    /// Frequencies for `headDim` with base `theta`, computed in float32 as Hugging Face does.
    public init(headDim: Int, theta: Float, llama3: Llama3Scaling? = nil) {
        precondition(headDim > 0 && headDim % 2 == 0, "rotary dimension must be even")
        self.headDim = headDim
        var inv = (0..<(headDim / 2)).map { i -> Float in
            1 / powf(theta, Float(2 * i) / Float(headDim))
        }
        if let s = llama3 {
            let lowWavelen = Float(s.originalMaxPositionEmbeddings) / s.lowFreqFactor
            let highWavelen = Float(s.originalMaxPositionEmbeddings) / s.highFreqFactor
            inv = inv.map { f in
                let wavelen = 2 * Float.pi / f
                if wavelen < highWavelen { return f }
                if wavelen > lowWavelen { return f / s.factor }
                let smooth = (Float(s.originalMaxPositionEmbeddings) / wavelen - s.lowFreqFactor)
                    / (s.highFreqFactor - s.lowFreqFactor)
                return (1 - smooth) * f / s.factor + smooth * f
            }
        }
        inverseFrequencies = inv
    }

    /// cos and sin of `position * inv_freq[i]` for every i, written to `c` and `s`.
    @inline(__always)
    func angles(position: Int, cos c: UnsafeMutablePointer<Float>, sin s: UnsafeMutablePointer<Float>) {
        let p = Float(position)
        for i in 0..<inverseFrequencies.count {
            let a = p * inverseFrequencies[i]
            c[i] = cosf(a)
            s[i] = sinf(a)
        }
    }
}
