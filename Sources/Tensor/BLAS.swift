// Matrix products through OpenBLAS (cblas_sgemm / cblas_sgemv), a SIMD matrix-vector kernel for
// single-row decode, and the split of a product over a context's thread budget (ComputeThreads).
// OpenBLAS itself runs on the calling thread: its thread count is one per process, so it is set
// to 1 once and every split is this file's, over the budget the caller passes.
import CKernels
import COpenBLAS

/// OpenBLAS's own thread count, which is process-wide (OpenBLAS 0.3.21 has no per-call count;
/// `openblas_set_num_threads_local` came in 0.3.27).
public enum OpenBLASThreads {
    /// Set to 1 before the first product and never changed: a context's budget splits products
    /// (`BLAS.gemmABt(_:_:into:beta:threads:)`, `BlockProducts.multiply`) into single-threaded calls.
    static let single: Void = { openblas_set_num_threads(1) }()

    /// OpenBLAS's current thread count (1 unless a benchmark is inside `benchmarkOnly`).
    public static var current: Int {
        _ = single
        return Int(openblas_get_num_threads())
    }

    /// Runs `body` with OpenBLAS's own threads at `n`, then sets them back to 1. For benchmarks
    /// that measure OpenBLAS's threading against the budget's split (`paratool bench runtime`),
    /// in a process that runs nothing else: the count is process-wide.
    public static func benchmarkOnly<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        _ = single
        openblas_set_num_threads(Int32(max(1, n)))
        defer { openblas_set_num_threads(1) }
        return try body()
    }
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
        _ = OpenBLASThreads.single
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                    Int32(a.rows), Int32(b.rows), Int32(a.cols), alpha,
                    a.pointer, Int32(a.stride), b.pointer, Int32(b.stride), beta,
                    c.pointer, Int32(c.stride))
    }

    /// `c = a · bᵀ + beta * c` with b's rows (c's columns) split over `threads` in blocks of
    /// multiples of 16, each block one single-threaded sgemm: the linear-layer product of many
    /// rows (prefill) under a context's budget. Small products stay on the calling thread.
    public static func gemmABt(_ a: MatrixView, _ b: MatrixView, into c: MatrixView, beta: Float = 0,
                               threads: ComputeThreads) {
        let parallel = threads.count > 1 && a.rows * b.rows >= MatVec.parallelElements
        MatVec.splitAcrossThreads(b.rows, threads: threads, parallel: parallel) { start, end in
            gemmABt(a, b.rows(start, end - start), into: c.columns(start, end - start), beta: beta)
        }
    }

    /// `c = alpha * a · b + beta * c` where a is M×K, b is K×N and c is M×N.
    public static func gemmAB(_ a: MatrixView, _ b: MatrixView, into c: MatrixView,
                              alpha: Float = 1, beta: Float = 0) {
        precondition(a.cols == b.rows && c.rows == a.rows && c.cols == b.cols,
                     "gemmAB shape mismatch: \(a.rows)x\(a.cols) · \(b.rows)x\(b.cols) -> \(c.rows)x\(c.cols)")
        precondition(!c.buffer.isMapped, "write to a read-only mapped buffer")
        if a.rows == 0 || b.cols == 0 { return }
        if a.cols == 0 { scale(c, by: beta); return }
        _ = OpenBLASThreads.single
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                    Int32(a.rows), Int32(b.cols), Int32(a.cols), alpha,
                    a.pointer, Int32(a.stride), b.pointer, Int32(b.stride), beta,
                    c.pointer, Int32(c.stride))
    }

    /// `c = a · b + beta * c` with b's columns (c's columns) split over `threads` in blocks of
    /// multiples of 16, each block one single-threaded sgemm. Small products stay on the calling
    /// thread.
    public static func gemmAB(_ a: MatrixView, _ b: MatrixView, into c: MatrixView, beta: Float = 0,
                              threads: ComputeThreads) {
        let parallel = threads.count > 1 && a.rows * b.cols >= MatVec.parallelElements
        MatVec.splitAcrossThreads(b.cols, threads: threads, parallel: parallel) { start, end in
            gemmAB(a, b.columns(start, end - start), into: c.columns(start, end - start), beta: beta)
        }
    }

    /// `c = alpha * aᵀ · b + beta * c` where a is K×M, b is K×N and c is M×N.
    public static func gemmAtB(_ a: MatrixView, _ b: MatrixView, into c: MatrixView,
                               alpha: Float = 1, beta: Float = 0) {
        precondition(a.rows == b.rows && c.rows == a.cols && c.cols == b.cols,
                     "gemmAtB shape mismatch: (\(a.rows)x\(a.cols))ᵀ · \(b.rows)x\(b.cols) -> \(c.rows)x\(c.cols)")
        precondition(!c.buffer.isMapped, "write to a read-only mapped buffer")
        if a.cols == 0 || b.cols == 0 { return }
        if a.rows == 0 { scale(c, by: beta); return }
        _ = OpenBLASThreads.single
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
        _ = OpenBLASThreads.single
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

/// A low-rank product of a fused call whose threads split the output columns.
protocol OutputSplitJob {
    /// The output width, the rank and the output rows of the job.
    var cols: Int { get }
    var rank: Int { get }
    var rows: [Int] { get }
    /// Computes the output columns `start..<end`.
    func run(_ start: Int, _ end: Int)
}

/// Matrix-vector products for decode, written for memory bandwidth: 8-wide SIMD accumulators,
/// rows split across threads in contiguous blocks. `y[r] = dot(w[r, :], x)` (+ y when accumulating).
public enum MatVec {
    /// One product `y = x · wᵀ` (or `y += …`) of a fused call, for a few input rows (decode of a
    /// small batch): each weight row is read once for all of them.
    public struct Job {
        /// The weights: float32 rows, or a BlockMatrix with the activations its kernel reads.
        enum Weights {
            case float(UnsafePointer<Float>, stride: Int)
            case blocks(type: Int32, base: UnsafeRawPointer, rowBytes: Int,
                        q: UnsafePointer<Int8>?, scales: UnsafePointer<Float>?, sums: UnsafePointer<Float>?)
        }
        let weights: Weights
        let x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
        let rows: Int, cols: Int, accumulate: Bool
        let inputs: Int, xStride: Int, yStride: Int
        /// The storage behind the pointers, kept alive for as long as the job exists.
        let owners: (AnyObject, FloatBuffer, FloatBuffer)

        /// `w` is out×in, `x` is k×in (k ≥ 1 input rows), `y` is k×out.
        public init(_ w: MatrixView, _ x: MatrixView, into y: MatrixView, accumulate: Bool = false) {
            precondition(x.rows >= 1 && y.rows == x.rows && x.cols == w.cols && y.cols == w.rows, "matvec shape mismatch")
            precondition(!y.buffer.isMapped, "write to a read-only mapped buffer")
            self.init(weights: .float(UnsafePointer(w.pointer), stride: w.stride), owner: w.buffer, rows: w.rows, cols: w.cols,
                      x, y, accumulate: accumulate)
        }

        /// The same product with block-format weights: `activations` must be `x` quantised
        /// (`ActivationBlocks.quantize(x)`) when the format needs them, else nil.
        public init(_ w: BlockMatrix, _ x: MatrixView, activations: ActivationBlocks?, into y: MatrixView, accumulate: Bool = false) {
            precondition(x.rows >= 1 && y.rows == x.rows && x.cols == w.cols && y.cols == w.rows, "matvec shape mismatch")
            precondition(!y.buffer.isMapped, "write to a read-only mapped buffer")
            precondition(ActivationBlocks.needed(for: w.type) == (activations != nil), "activations given iff the format needs them")
            precondition(activations.map { $0.rows == x.rows && $0.cols == x.cols } ?? true, "activations of another shape")
            self.init(weights: .blocks(type: Int32(w.type.rawValue), base: w.base, rowBytes: w.rowBytes,
                                       q: activations?.q, scales: activations?.scales, sums: activations?.sums),
                      owner: w, rows: w.rows, cols: w.cols, x, y, accumulate: accumulate)
        }

        private init(weights: Weights, owner: AnyObject, rows: Int, cols: Int, _ x: MatrixView, _ y: MatrixView, accumulate: Bool) {
            self.weights = weights
            self.x = UnsafePointer(x.pointer)
            self.y = y.pointer
            self.rows = rows
            self.cols = cols
            self.accumulate = accumulate
            inputs = x.rows
            xStride = x.stride
            yStride = y.stride
            owners = (owner, x.buffer, y.buffer)
        }

        func run(_ start: Int, _ end: Int) {
            guard start < end else { return }
            defer { withExtendedLifetime(owners) {} }
            switch weights {
            case .float(let w, let stride):
                pt_matvec_rows(w, stride, cols, x, xStride, inputs, y, yStride, start, end, accumulate ? 1 : 0)
            case .blocks(let type, let base, let rowBytes, let q, let scales, let sums):
                let blocks = cols / 32
                for j0 in stride(from: 0, to: inputs, by: 16) {
                    let k = min(16, inputs - j0)
                    _ = pt_block_matvec(-1, type, base, rowBytes, cols, x + j0 * xStride, xStride,
                                        q.map { $0 + j0 * cols }, scales.map { $0 + j0 * blocks }, sums.map { $0 + j0 * blocks },
                                        k, y + j0 * yStride, yStride, start, end, accumulate ? 1 : 0)
                }
            }
        }
    }

    /// Computes `y = w · x` (or `y += w · x` when `accumulate`) using `threads` threads.
    public static func multiply(_ w: MatrixView, _ x: MatrixView, into y: MatrixView,
                                accumulate: Bool = false, threads: ComputeThreads = .single) {
        multiply(Job(w, x, into: y, accumulate: accumulate), threads: threads)
    }

    /// Up to three independent products in one parallel call: their rows are concatenated and
    /// split evenly over the threads, so the hand-off happens once (q/k/v, gate/up in decode).
    public static func multiply(_ a: Job, _ b: Job? = nil, _ c: Job? = nil, threads: ComputeThreads) {
        let ra = a.rows, rb = b?.rows ?? 0, rc = c?.rows ?? 0
        let elements = ra * a.cols + rb * (b?.cols ?? 0) + rc * (c?.cols ?? 0)
        splitAcrossThreads(ra + rb + rc, threads: threads, parallel: elements >= parallelElements) { start, end in
            a.run(min(start, ra), min(end, ra))
            b?.run(min(max(start - ra, 0), rb), min(max(end - ra, 0), rb))
            c?.run(min(max(start - ra - rb, 0), rc), min(max(end - ra - rb, 0), rc))
        }
    }

    /// Independent products in one parallel call: their rows are concatenated and split evenly
    /// over the threads.
    public static func multiply(concatenated jobs: [Job], threads: ComputeThreads) {
        let total = jobs.reduce(0) { $0 + $1.rows }
        let elements = jobs.reduce(0) { $0 + $1.rows * $1.cols }
        splitAcrossThreads(total, threads: threads, parallel: elements >= parallelElements) { start, end in
            var offset = 0
            for j in jobs {
                j.run(min(max(start - offset, 0), j.rows), min(max(end - offset, 0), j.rows))
                offset += j.rows
            }
        }
    }

    /// One product `y[rows[j]] += t[j] · btᵀ` of a fused call, for every row j of `t` (k×r):
    /// `bt` (r×out) is the transpose of a low-rank weight such as LoRA's B, so every access is a
    /// long row instead of an r-float dot product.
    public struct TransposedJob: OutputSplitJob {
        let bt: UnsafePointer<Float>, btStride: Int, rank: Int
        let t: UnsafePointer<Float>, tStride: Int
        let y: UnsafeMutablePointer<Float>, yStride: Int
        /// Width of `y` (the columns the threads split).
        let cols: Int
        let rows: [Int]
        /// The buffers behind the pointers, kept alive for as long as the job exists.
        let owners: (FloatBuffer, FloatBuffer, FloatBuffer)

        /// `bt` is r×out, `t` is k×r, `y` has `out` columns and `rows` (k entries) names the row
        /// of `y` each row of `t` is added to.
        public init(_ bt: MatrixView, _ t: MatrixView, accumulatingInto y: MatrixView, rows: [Int]) {
            precondition(t.cols == bt.rows && y.cols == bt.cols && rows.count == t.rows
                         && rows.allSatisfy { $0 >= 0 && $0 < y.rows }, "transposed matvec shape mismatch")
            precondition(!y.buffer.isMapped, "write to a read-only mapped buffer")
            self.bt = UnsafePointer(bt.pointer)
            btStride = bt.stride
            rank = bt.rows
            self.t = UnsafePointer(t.pointer)
            tStride = t.stride
            self.y = y.pointer
            yStride = y.stride
            cols = y.cols
            self.rows = rows
            owners = (bt.buffer, t.buffer, y.buffer)
        }

        func run(_ start: Int, _ end: Int) {
            guard start < end else { return }
            defer { withExtendedLifetime(owners) {} }
            for (j, row) in rows.enumerated() {
                pt_matvec_transposed(bt, btStride, rank, t + j * tStride, y + row * yStride, start, end)
            }
        }
    }

    /// One product `y[rows[j], o] += dot(b[o, :], t[j, :])` of a fused call for every output o
    /// and every row j of `t` (k×r): `b` (out×r, F32 or BF16, e.g. LoRA's B as PEFT stores it) is
    /// read in place, its short rows eight at a time.
    public struct NarrowRowsJob: OutputSplitJob {
        let type: Int32, base: UnsafeRawPointer, rowBytes: Int, rank: Int
        let t: UnsafePointer<Float>, tStride: Int
        let y: UnsafeMutablePointer<Float>, yStride: Int
        /// Width of `y` (the outputs the threads split).
        let cols: Int
        let rows: [Int]
        /// The storage behind the pointers, kept alive for as long as the job exists.
        let owners: (BlockMatrix, FloatBuffer, FloatBuffer)

        /// `b` is out×r (F32 or BF16), `t` is k×r, `y` has `out` columns and `rows` (k entries)
        /// names the row of `y` each row of `t` is added to.
        public init(_ b: BlockMatrix, _ t: MatrixView, accumulatingInto y: MatrixView, rows: [Int]) {
            precondition(b.type == .f32 || b.type == .bf16, "narrow rows are F32 or BF16")
            precondition(t.cols == b.cols && y.cols == b.rows && rows.count == t.rows
                         && rows.allSatisfy { $0 >= 0 && $0 < y.rows }, "narrow-rows product shape mismatch")
            precondition(!y.buffer.isMapped, "write to a read-only mapped buffer")
            type = Int32(b.type.rawValue)
            base = b.base
            rowBytes = b.rowBytes
            rank = b.cols
            self.t = UnsafePointer(t.pointer)
            tStride = t.stride
            self.y = y.pointer
            yStride = y.stride
            cols = y.cols
            self.rows = rows
            owners = (b, t.buffer, y.buffer)
        }

        func run(_ start: Int, _ end: Int) {
            guard start < end else { return }
            defer { withExtendedLifetime(owners) {} }
            for (j, row) in rows.enumerated() {
                _ = pt_block_narrow_rows(-1, type, base, rowBytes, rank, t + j * tStride, y + row * yStride, start, end)
            }
        }
    }

    /// Independent narrow-row products in one parallel call (every job's `y` has the same
    /// width): each thread takes a block of the outputs and runs every job on it.
    public static func multiplyNarrowRows(_ jobs: [NarrowRowsJob], threads: ComputeThreads) {
        splitOutputs(jobs, threads: threads)
    }

    /// Jobs whose outputs are the columns of a shared width: each thread takes a block of the
    /// columns and runs every job on it, so the hand-off happens once for all of them.
    private static func splitOutputs<Job: OutputSplitJob>(_ jobs: [Job], threads: ComputeThreads) {
        guard let cols = jobs.first?.cols else { return }
        precondition(jobs.allSatisfy { $0.cols == cols }, "the jobs of one call must share their output width")
        let elements = jobs.reduce(0) { $0 + $1.rank * $1.rows.count } * cols
        splitAcrossThreads(cols, threads: threads, parallel: elements >= parallelElements) { start, end in
            for job in jobs { job.run(start, end) }
        }
    }

    /// `y[0, rows] += b[rows, :] · t[0]` by one instruction-set variant on one thread; false when
    /// this CPU lacks it.
    static func multiplyNarrowRows(_ b: BlockMatrix, _ t: MatrixView, accumulatingInto y: MatrixView,
                                   rows: Range<Int>, variant: Variant) -> Bool {
        precondition(t.rows == 1 && y.rows == 1 && t.cols == b.cols && y.cols == b.rows && !y.buffer.isMapped
                     && rows.lowerBound >= 0 && rows.upperBound <= y.cols, "narrow-rows product shape mismatch")
        defer { withExtendedLifetime((b, t.buffer, y.buffer)) {} }
        return pt_block_narrow_rows(variant.rawValue, Int32(b.type.rawValue), b.base, b.rowBytes, b.cols, t.pointer, y.pointer,
                                    rows.lowerBound, rows.upperBound) == 0
    }

    /// Independent transposed products in one parallel call (every job's `y` has the same width):
    /// each thread takes a block of the columns and runs every job on it, so the hand-off happens
    /// once for all of them.
    public static func multiplyTransposed(_ jobs: [TransposedJob], threads: ComputeThreads) {
        splitOutputs(jobs, threads: threads)
    }

    /// Below this many weight elements a product stays on the calling thread: the hand-off to
    /// the pool (~1-2 µs) would cost more than splitting saves.
    public static let parallelElements = 16_384

    /// Runs `body(start, end)` over `0..<count` split into one block per thread of `threads`
    /// (block bounds are multiples of 16, so each thread's output stays contiguous and cache-line
    /// aligned), or once over everything when `parallel` is false.
    static func splitAcrossThreads(_ count: Int, threads: ComputeThreads, parallel: Bool, _ body: (Int, Int) -> Void) {
        let pool = threads.pool
        guard parallel, pool.threadCount > 1 else {
            if count > 0 { body(0, count) }
            return
        }
        let parts = pool.threadCount, blocks = (count + 15) / 16
        pool.run { part in
            let start = min(count, blocks * part / parts * 16), end = min(count, blocks * (part + 1) / parts * 16)
            if start < end { body(start, end) }
        }
    }

    /// The instruction set of the matrix-vector kernels on this CPU ("avx512", "avx2", "portable").
    public static var instructionSet: String { String(cString: pt_kernel_isa()) }

    /// The kernels' instruction-set variants, so tests cover each one on a single machine.
    enum Variant: Int32, CaseIterable { case portable = 0, avx2 = 1, avx512 = 2 }

    /// `y = x · wᵀ` for every row of x by one variant, on one thread; false (nothing computed)
    /// when this CPU lacks the variant.
    static func multiply(_ w: MatrixView, _ x: MatrixView, into y: MatrixView, variant: Variant) -> Bool {
        precondition(x.cols == w.cols && y.rows == x.rows && y.cols == w.rows && !y.buffer.isMapped, "matvec shape mismatch")
        defer { withExtendedLifetime((w.buffer, x.buffer, y.buffer)) {} }
        return pt_matvec_rows_isa(variant.rawValue, w.pointer, w.stride, w.cols, x.pointer, x.stride, x.rows,
                                  y.pointer, y.stride, 0, w.rows, 0) == 0
    }

    /// `y[0, start..<end] += t[0] · btᵀ` by one variant; false when this CPU lacks it.
    static func multiplyTransposed(_ bt: MatrixView, _ t: MatrixView, accumulatingInto y: MatrixView,
                                   columns: Range<Int>, variant: Variant) -> Bool {
        precondition(t.rows == 1 && y.rows == 1 && t.cols == bt.rows && y.cols == bt.cols && !y.buffer.isMapped
                     && columns.lowerBound >= 0 && columns.upperBound <= y.cols, "transposed matvec shape mismatch")
        defer { withExtendedLifetime((bt.buffer, t.buffer, y.buffer)) {} }
        return pt_matvec_transposed_isa(variant.rawValue, bt.pointer, bt.stride, bt.rows, t.pointer, y.pointer,
                                        columns.lowerBound, columns.upperBound) == 0
    }
}
