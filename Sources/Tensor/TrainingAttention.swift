// TrainingAttention: causal grouped-query attention of training, forward and backward, over the
// segments of a batch (each segment is one sequence attending to its own earlier rows). Query
// rows go in blocks: a block of rows r0..<r1 only meets keys 0..<r1, so the causal half of the
// score matrix is never computed. The query heads that share a key/value head are stacked (their
// rows of a block copied one under another), so each product spans all of them: one sgemm where
// there were `heads / kvHeads`, with as many times the rows. The backward recomputes each
// block's probabilities instead of storing S² per head. Work items go to whichever thread of the
// trainer's budget (ComputeThreads) is free, each calling single-threaded sgemm; every sum has a fixed order (a key/value
// head's gradients accumulate over its blocks in order, in two halves kept apart and added last),
// so results do not depend on the thread count, on which thread ran what, or on the other
// segments.
import CKernels

/// Causal attention forward and backward for training batches. Not thread-safe (one per trainer).
public final class TrainingAttention {
    /// Query heads, key/value heads (query head h reads key/value head h / (heads / kvHeads)) and
    /// the head dimension.
    public let heads: Int, kvHeads: Int, headDim: Int
    /// Query rows per block (of each query head).
    public let blockRows: Int

    /// Per thread: probabilities and their gradients (stacked rows × keys), and the stacked
    /// queries, upstream gradients and outputs (stacked rows × headDim).
    private var scores = [FloatBuffer](), gradients = [FloatBuffer]()
    private var stackedQ = [FloatBuffer](), stackedD = [FloatBuffer](), stackedOut = [FloatBuffer]()
    private var partials = FloatBuffer(count: 0)

    /// The threads the (segment, head, block) items are dealt to.
    public let threads: ComputeThreads

    /// Attention for `heads` query heads over `kvHeads` key/value heads of `headDim` columns, on
    /// `threads`.
    public init(heads: Int, kvHeads: Int, headDim: Int, blockRows: Int = 64, threads: ComputeThreads = .machine) {
        precondition(heads > 0 && kvHeads > 0 && heads % kvHeads == 0 && headDim > 0 && blockRows > 0, "attention shape")
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.blockRows = blockRows
        self.threads = threads
    }

    private var scale: Float { 1 / Float(headDim).squareRoot() }
    /// Query heads per key/value head.
    private var group: Int { heads / kvHeads }

    private func checkShapes(_ q: MatrixView, _ k: MatrixView, _ v: MatrixView, _ segments: [Range<Int>]) {
        precondition(q.cols == heads * headDim && k.cols == kvHeads * headDim && v.cols == k.cols
                     && k.rows == q.rows && v.rows == q.rows, "attention q/k/v shape")
        precondition(segments.allSatisfy { !$0.isEmpty && $0.lowerBound >= 0 && $0.upperBound <= q.rows }, "attention segments")
    }

    private func ensureScratch(longest: Int) {
        let threads = self.threads.count, rows = group * blockRows
        if scores.count != threads || scores[0].count < rows * longest {
            func make(_ n: Int) -> [FloatBuffer] { (0..<threads).map { _ in FloatBuffer(count: n) } }
            scores = make(rows * longest)
            gradients = make(rows * longest)
            stackedQ = make(rows * headDim)
            stackedD = make(rows * headDim)
            stackedOut = make(rows * headDim)
        }
    }

    /// `out` = causal softmax(q kᵀ / √d) v per head, each segment of rows on its own.
    public func forward(q: MatrixView, k: MatrixView, v: MatrixView, segments: [Range<Int>], into out: MatrixView) {
        checkShapes(q, k, v, segments)
        precondition(out.rows == q.rows && out.cols == q.cols && !out.buffer.isMapped, "attention output shape")
        ensureScratch(longest: segments.map(\.count).max() ?? 0)
        var items = [(segment: Int, kv: Int, block: Int, cost: Int)]()
        for (s, seg) in segments.enumerated() {
            for b in 0..<blockCount(seg.count) {
                let rows = blockRange(b, seg.count)
                for g in 0..<kvHeads { items.append((s, g, b, rows.count * rows.upperBound)) }
            }
        }
        runOnPool(items.map(\.cost)) { item, thread in
            let (s, g, b, _) = items[item]
            let seg = segments[s], rows = blockRange(b, seg.count), n = group * rows.count
            let qs = stack(q, segment: seg, rows: rows, kv: g, into: stackedQ[thread])
            let p = probabilities(qs, k: k, segment: seg, kv: g, rows: rows, into: scores[thread])
            let o = MatrixView(stackedOut[thread], rows: n, cols: headDim)
            BLAS.gemmAB(p, v.rows(seg.lowerBound, rows.upperBound).columns(g * headDim, headDim), into: o)
            unstack(o, into: out, segment: seg, rows: rows, kv: g)
        }
    }

    /// Gradients of `forward` for the upstream gradient `dOut`: `dq`, `dk`, `dv` are overwritten.
    public func backward(q: MatrixView, k: MatrixView, v: MatrixView, dOut: MatrixView, segments: [Range<Int>],
                         dq: MatrixView, dk: MatrixView, dv: MatrixView) {
        checkShapes(q, k, v, segments)
        precondition(dOut.rows == q.rows && dOut.cols == q.cols && dq.rows == q.rows && dq.cols == q.cols
                     && dk.rows == k.rows && dk.cols == k.cols && dv.rows == v.rows && dv.cols == v.cols, "attention gradient shape")
        precondition(!dq.buffer.isMapped && !dk.buffer.isMapped && !dv.buffer.isMapped, "write to a read-only mapped buffer")
        ensureScratch(longest: segments.map(\.count).max() ?? 0)
        // Each (segment, key/value head) is cut into two runs of blocks of about equal work; each
        // run sums its key and value gradients into its own partial (segment length × headDim, twice).
        let hd = headDim
        var items = [(segment: Int, kv: Int, blocks: Range<Int>, offset: Int, cost: Int)]()
        var offset = 0
        for (s, seg) in segments.enumerated() {
            let n = blockCount(seg.count)
            let costs = (0..<n).map { b -> Int in let r = blockRange(b, seg.count); return r.count * r.upperBound }
            let total = costs.reduce(0, +)
            var split = 0, first = 0
            while split < n - 1 && 2 * (first + costs[split]) <= total { first += costs[split]; split += 1 }
            if split == 0 { split = 1; first = costs[0] }
            for g in 0..<kvHeads {
                items.append((s, g, 0..<split, offset, first))
                offset += 2 * seg.count * hd
                if split < n {
                    items.append((s, g, split..<n, offset, total - first))
                    offset += 2 * seg.count * hd
                }
            }
        }
        if partials.count < offset { partials = FloatBuffer(count: offset) }
        let scale = self.scale
        runOnPool(items.map(\.cost)) { item, thread in
            let (s, g, blocks, offset, _) = items[item]
            let seg = segments[s]
            let covered = blockRange(blocks.upperBound - 1, seg.count).upperBound
            (partials.base + offset).update(repeating: 0, count: covered * hd)
            (partials.base + offset + seg.count * hd).update(repeating: 0, count: covered * hd)
            let dkPart = MatrixView(partials, offset: offset, rows: covered, cols: hd)
            let dvPart = MatrixView(partials, offset: offset + seg.count * hd, rows: covered, cols: hd)
            for b in blocks {
                let rows = blockRange(b, seg.count), keys = rows.upperBound, n = group * rows.count
                let qs = stack(q, segment: seg, rows: rows, kv: g, into: stackedQ[thread])
                let dO = stack(dOut, segment: seg, rows: rows, kv: g, into: stackedD[thread])
                let p = probabilities(qs, k: k, segment: seg, kv: g, rows: rows, into: scores[thread])
                let dp = MatrixView(gradients[thread], rows: n, cols: keys)
                BLAS.gemmABt(dO, v.rows(seg.lowerBound, keys).columns(g * hd, hd), into: dp)
                BLAS.gemmAtB(p, dO, into: dvPart.rows(0, keys), beta: 1)
                for j in 0..<group {
                    TrainingKernels.causalSoftmaxBackward(p: p.rows(j * rows.count, rows.count), dp: dp.rows(j * rows.count, rows.count),
                                                          visible: rows.lowerBound + 1)
                }
                let dqs = MatrixView(stackedOut[thread], rows: n, cols: hd)
                BLAS.gemmAB(dp, k.rows(seg.lowerBound, keys).columns(g * hd, hd), into: dqs, alpha: scale)
                unstack(dqs, into: dq, segment: seg, rows: rows, kv: g)
                BLAS.gemmAtB(dp, qs, into: dkPart.rows(0, keys), alpha: scale, beta: 1)
            }
        }
        // dk, dv of a key/value head: the sum of its runs' partials, in run order.
        var runs = [[(offset: Int, covered: Int)]](repeating: [], count: segments.count * kvHeads)
        for it in items {
            let covered = blockRange(it.blocks.upperBound - 1, segments[it.segment].count).upperBound
            runs[it.segment * kvHeads + it.kv].append((it.offset, covered))
        }
        defer { withExtendedLifetime((partials, dk.buffer, dv.buffer)) {} }
        let sums = (0..<(segments.count * kvHeads)).map { segments[$0 / kvHeads].count }
        runOnPool(sums) { index, _ in
            let seg = segments[index / kvHeads], g = index % kvHeads
            for (target, second) in [(dk, 0), (dv, seg.count * hd)] {
                let base = target.pointer + seg.lowerBound * target.stride + g * hd
                for r in 0..<seg.count {
                    let out = base + r * target.stride
                    out.update(repeating: 0, count: hd)
                    for run in runs[index] where r < run.covered {
                        let src = partials.base + run.offset + second + r * hd
                        for i in 0..<hd { out[i] += src[i] }
                    }
                }
            }
        }
    }

    private func blockCount(_ length: Int) -> Int { (length + blockRows - 1) / blockRows }

    private func blockRange(_ b: Int, _ length: Int) -> Range<Int> { (b * blockRows)..<min(length, (b + 1) * blockRows) }

    /// The rows `rows` of a segment of every query head of key/value head `kv`, one head under
    /// another (group × rows.count rows of headDim), copied into `buffer`.
    private func stack(_ x: MatrixView, segment: Range<Int>, rows: Range<Int>, kv: Int, into buffer: FloatBuffer) -> MatrixView {
        let n = rows.count, out = MatrixView(buffer, rows: group * n, cols: headDim)
        for j in 0..<group {
            Kernels.copy(x.rows(segment.lowerBound + rows.lowerBound, n).columns((kv * group + j) * headDim, headDim), into: out.rows(j * n, n))
        }
        return out
    }

    /// The inverse of `stack`: each head's rows of `stacked` back into its columns of `x`.
    private func unstack(_ stacked: MatrixView, into x: MatrixView, segment: Range<Int>, rows: Range<Int>, kv: Int) {
        let n = rows.count
        for j in 0..<group {
            Kernels.copy(stacked.rows(j * n, n), into: x.rows(segment.lowerBound + rows.lowerBound, n).columns((kv * group + j) * headDim, headDim))
        }
    }

    /// The probabilities of stacked query rows (block `rows` of a segment, every head of `kv`)
    /// over keys 0..<rows.upperBound.
    private func probabilities(_ stacked: MatrixView, k: MatrixView, segment: Range<Int>, kv: Int, rows: Range<Int>,
                               into buffer: FloatBuffer) -> MatrixView {
        let keys = rows.upperBound
        let p = MatrixView(buffer, rows: stacked.rows, cols: keys)
        BLAS.gemmABt(stacked, k.rows(segment.lowerBound, keys).columns(kv * headDim, headDim), into: p, alpha: scale)
        for j in 0..<group { TrainingKernels.causalSoftmax(p.rows(j * rows.count, rows.count), visible: rows.lowerBound + 1) }
        return p
    }

    /// Runs `body(item, thread)` for every item, largest cost first, each taken by the next free
    /// thread of the budget. Results do not depend on who takes what.
    private func runOnPool(_ costs: [Int], _ body: (Int, Int) -> Void) {
        let order = costs.indices.sorted { costs[$0] > costs[$1] || (costs[$0] == costs[$1] && $0 < $1) }
        threads.pool.forEach(order.count) { i, thread in body(order[i], thread) }
    }
}
