// Matrix products through OpenBLAS (cblas_sgemm / cblas_sgemv), a SIMD matrix-vector kernel for
// single-row decode, and explicit control of OpenBLAS's thread count per phase.
import COpenBLAS

/// Thread control for OpenBLAS. Measured on this project's 2-core machine: OpenBLAS's own
/// threads make single-row products several times slower, so callers choose the count per phase
/// (all cores for prefill sgemm, one for decode).
public enum BLASThreads {
    /// Sets OpenBLAS's thread count (≥ 1).
    public static func set(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    /// OpenBLAS's current thread count.
    public static var current: Int { Int(openblas_get_num_threads()) }
}

/// Matrix products. Shapes are checked with preconditions (a shape mismatch here is a bug in
/// the caller, not bad input: the model loader validates every tensor's shape up front).
public enum BLAS {
    /// `c = alpha * a · bᵀ + beta * c` where a is M×K, b is N×K and c is M×N.
    /// This is the linear-layer product: x (rows × in) times Wᵀ (W is out × in).
    public static func gemmABt(_ a: MatrixView, _ b: MatrixView, into c: MatrixView,
                               alpha: Float = 1, beta: Float = 0) {
        precondition(a.cols == b.cols && c.rows == a.rows && c.cols == b.rows,
                     "gemmABt shape mismatch: \(a.rows)x\(a.cols) · (\(b.rows)x\(b.cols))ᵀ -> \(c.rows)x\(c.cols)")
        precondition(!c.buffer.isMapped, "write to a read-only mapped buffer")
        if a.rows == 0 || b.rows == 0 { return }
        if a.cols == 0 { scale(c, by: beta); return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                    Int32(a.rows), Int32(b.rows), Int32(a.cols), alpha,
                    a.pointer, Int32(a.stride), b.pointer, Int32(b.stride), beta,
                    c.pointer, Int32(c.stride))
    }

    /// `c = alpha * a · b + beta * c` where a is M×K, b is K×N and c is M×N.
    public static func gemmAB(_ a: MatrixView, _ b: MatrixView, into c: MatrixView,
                              alpha: Float = 1, beta: Float = 0) {
        precondition(a.cols == b.rows && c.rows == a.rows && c.cols == b.cols,
                     "gemmAB shape mismatch: \(a.rows)x\(a.cols) · \(b.rows)x\(b.cols) -> \(c.rows)x\(c.cols)")
        precondition(!c.buffer.isMapped, "write to a read-only mapped buffer")
        if a.rows == 0 || b.cols == 0 { return }
        if a.cols == 0 { scale(c, by: beta); return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                    Int32(a.rows), Int32(b.cols), Int32(a.cols), alpha,
                    a.pointer, Int32(a.stride), b.pointer, Int32(b.stride), beta,
                    c.pointer, Int32(c.stride))
    }

    /// `c = alpha * aᵀ · b + beta * c` where a is K×M, b is K×N and c is M×N.
    public static func gemmAtB(_ a: MatrixView, _ b: MatrixView, into c: MatrixView,
                               alpha: Float = 1, beta: Float = 0) {
        precondition(a.rows == b.rows && c.rows == a.cols && c.cols == b.cols,
                     "gemmAtB shape mismatch: (\(a.rows)x\(a.cols))ᵀ · \(b.rows)x\(b.cols) -> \(c.rows)x\(c.cols)")
        precondition(!c.buffer.isMapped, "write to a read-only mapped buffer")
        if a.cols == 0 || b.cols == 0 { return }
        if a.rows == 0 { scale(c, by: beta); return }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                    Int32(a.cols), Int32(b.cols), Int32(a.rows), alpha,
                    a.pointer, Int32(a.stride), b.pointer, Int32(b.stride), beta,
                    c.pointer, Int32(c.stride))
    }

    /// `y = alpha * w · x + beta * y` for one vector: w is out×in, x has `in` elements (a 1×in view),
    /// y has `out` (a 1×out view). Uses OpenBLAS's sgemv.
    public static func gemv(_ w: MatrixView, _ x: MatrixView, into y: MatrixView,
                            alpha: Float = 1, beta: Float = 0) {
        precondition(x.rows == 1 && y.rows == 1 && x.cols == w.cols && y.cols == w.rows, "gemv shape mismatch")
        precondition(!y.buffer.isMapped, "write to a read-only mapped buffer")
        if w.rows == 0 { return }
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(w.rows), Int32(w.cols), alpha,
                    w.pointer, Int32(w.stride), x.pointer, 1, beta, y.pointer, 1)
    }

    static func scale(_ c: MatrixView, by beta: Float) {
        for r in 0..<c.rows {
            let p = c.pointer + r * c.stride
            for i in 0..<c.cols { p[i] = beta == 0 ? 0 : p[i] * beta }
        }
    }
}

/// Matrix-vector products for decode, written for memory bandwidth: 8-wide SIMD accumulators,
/// rows split across threads in contiguous blocks. `y[r] = dot(w[r, :], x)` (+ y when accumulating).
public enum MatVec {
    /// One product `y = w · x` (or `y += w · x`) of a fused call.
    public struct Job {
        let w: UnsafePointer<Float>, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
        let rows: Int, cols: Int, stride: Int, accumulate: Bool

        /// `w` is out×in, `x` a 1×in view, `y` a 1×out view.
        public init(_ w: MatrixView, _ x: MatrixView, into y: MatrixView, accumulate: Bool = false) {
            precondition(x.rows == 1 && y.rows == 1 && x.cols == w.cols && y.cols == w.rows, "matvec shape mismatch")
            precondition(!y.buffer.isMapped, "write to a read-only mapped buffer")
            self.w = UnsafePointer(w.pointer)
            self.x = UnsafePointer(x.pointer)
            self.y = y.pointer
            rows = w.rows
            cols = w.cols
            stride = w.stride
            self.accumulate = accumulate
        }

        func run(_ start: Int, _ end: Int) {
            if start < end { rowRange(w, stride, cols, x, y, start, end, accumulate) }
        }
    }

    /// Computes `y = w · x` (or `y += w · x` when `accumulate`) using `threads` threads.
    /// (Separate multiply and add, not `addingProduct`: without FMA in the target baseline that
    /// lowers to a scalar `fmaf` call per element.)
    public static func multiply(_ w: MatrixView, _ x: MatrixView, into y: MatrixView,
                                accumulate: Bool = false, threads: Int = 1) {
        multiply(Job(w, x, into: y, accumulate: accumulate), threads: threads)
    }

    /// Up to three independent products in one parallel call: their rows are concatenated and
    /// split evenly over the threads, so the hand-off happens once (q/k/v, gate/up in decode).
    public static func multiply(_ a: Job, _ b: Job? = nil, _ c: Job? = nil, threads: Int) {
        let ra = a.rows, rb = b?.rows ?? 0, rc = c?.rows ?? 0
        let total = ra + rb + rc
        let pool = WorkerPool.shared
        if threads <= 1 || pool.threadCount == 1 || total < 256 {
            a.run(0, ra)
            b?.run(0, rb)
            c?.run(0, rc)
            return
        }
        let parts = pool.threadCount
        // Row blocks of 16 keep each thread's rows contiguous and cache-line aligned in y.
        let blocks = (total + 15) / 16
        pool.run { part in
            let start = min(total, blocks * part / parts * 16)
            let end = min(total, blocks * (part + 1) / parts * 16)
            a.run(min(start, ra), min(end, ra))
            b?.run(min(max(start - ra, 0), rb), min(max(end - ra, 0), rb))
            c?.run(min(max(start - ra - rb, 0), rc), min(max(end - ra - rb, 0), rc))
        }
    }

    @inline(__always)
    static func rowRange(_ w: UnsafePointer<Float>, _ stride: Int, _ n: Int, _ x: UnsafePointer<Float>,
                         _ y: UnsafeMutablePointer<Float>, _ start: Int, _ end: Int, _ accumulate: Bool) {
        // Four rows at a time: four independent memory streams and one load of x per four rows.
        var r = start
        while r + 4 <= end {
            let w0 = w + r * stride, w1 = w0 + stride, w2 = w1 + stride, w3 = w2 + stride
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            var i = 0
            while i + 8 <= n {
                let xv = load8(x + i)
                a0 += load8(w0 + i) * xv
                a1 += load8(w1 + i) * xv
                a2 += load8(w2 + i) * xv
                a3 += load8(w3 + i) * xv
                i += 8
            }
            var s0 = a0.sum(), s1 = a1.sum(), s2 = a2.sum(), s3 = a3.sum()
            while i < n {
                s0 += w0[i] * x[i]; s1 += w1[i] * x[i]; s2 += w2[i] * x[i]; s3 += w3[i] * x[i]
                i += 1
            }
            if accumulate {
                y[r] += s0; y[r + 1] += s1; y[r + 2] += s2; y[r + 3] += s3
            } else {
                y[r] = s0; y[r + 1] = s1; y[r + 2] = s2; y[r + 3] = s3
            }
            r += 4
        }
        while r < end {
            let row = w + r * stride
            var a = SIMD8<Float>()
            var i = 0
            while i + 8 <= n { a += load8(row + i) * load8(x + i); i += 8 }
            var s = a.sum()
            while i < n { s += row[i] * x[i]; i += 1 }
            y[r] = accumulate ? y[r] + s : s
            r += 1
        }
    }

    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
}
