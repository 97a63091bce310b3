// TrainingAttention: causal grouped-query attention of training, forward and backward, over the
// segments of a batch (each segment is one sequence attending to its own earlier rows). Query
// rows go in blocks: a block of rows r0..<r1 only meets keys 0..<r1, so the causal half of the
// score matrix is never computed, and a block's scores (blockRows × r1) stay in cache. The
// backward recomputes each block's probabilities instead of storing S² per head. Work items go
// to whichever WorkerPool thread is free, each calling single-threaded sgemm; every sum has a
// fixed order (a head's key/value gradients accumulate over its blocks in order, in two halves
// kept apart and added last), so results do not depend on the thread count, on which thread
// ran what, or on the other segments.
import CKernels

/// Causal attention forward and backward for training batches. Not thread-safe (one per trainer).
public final class TrainingAttention {
    /// Query heads, key/value heads (query head h reads key/value head h / (heads / kvHeads)) and
    /// the head dimension.
    public let heads: Int, kvHeads: Int, headDim: Int
    /// Query rows per block.
    public let blockRows: Int

    private var scores = [FloatBuffer]()
    private var gradients = [FloatBuffer]()
    private var partials = FloatBuffer(count: 0)

    /// Attention for `heads` query heads over `kvHeads` key/value heads of `headDim` columns.
    public init(heads: Int, kvHeads: Int, headDim: Int, blockRows: Int = 64) {
        precondition(heads > 0 && kvHeads > 0 && heads % kvHeads == 0 && headDim > 0 && blockRows > 0, "attention shape")
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.blockRows = blockRows
    }

    private var scale: Float { 1 / Float(headDim).squareRoot() }
    private func group(_ head: Int) -> Int { head / (heads / kvHeads) }

    private func checkShapes(_ q: MatrixView, _ k: MatrixView, _ v: MatrixView, _ segments: [Range<Int>]) {
        precondition(q.cols == heads * headDim && k.cols == kvHeads * headDim && v.cols == k.cols
                     && k.rows == q.rows && v.rows == q.rows, "attention q/k/v shape")
        precondition(segments.allSatisfy { !$0.isEmpty && $0.lowerBound >= 0 && $0.upperBound <= q.rows }, "attention segments")
    }

    private func ensureScratch(longest: Int) {
        let threads = WorkerPool.shared.threadCount, need = blockRows * longest
        if scores.count != threads || scores[0].count < need {
            scores = (0..<threads).map { _ in FloatBuffer(count: need) }
            gradients = (0..<threads).map { _ in FloatBuffer(count: need) }
        }
    }

    /// `out` = causal softmax(q kᵀ / √d) v per head, each segment of rows on its own.
    public func forward(q: MatrixView, k: MatrixView, v: MatrixView, segments: [Range<Int>], into out: MatrixView) {
        checkShapes(q, k, v, segments)
        precondition(out.rows == q.rows && out.cols == q.cols && !out.buffer.isMapped, "attention output shape")
        ensureScratch(longest: segments.map(\.count).max() ?? 0)
        var items = [(segment: Int, head: Int, block: Int, cost: Int)]()
        for (s, seg) in segments.enumerated() {
            for b in 0..<blockCount(seg.count) {
                let rows = blockRange(b, seg.count)
                for h in 0..<heads { items.append((s, h, b, rows.count * rows.upperBound)) }
            }
        }
        runOnPool(items.map(\.cost)) { item, thread in
            let (s, h, b, _) = items[item]
            let seg = segments[s], rows = blockRange(b, seg.count)
            let p = probabilities(q: q, k: k, segment: seg, head: h, rows: rows, into: scores[thread])
            let vh = v.rows(seg.lowerBound, rows.upperBound).columns(group(h) * headDim, headDim)
            BLAS.gemmAB(p, vh, into: out.rows(seg.lowerBound + rows.lowerBound, rows.count).columns(h * headDim, headDim))
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
        // Each (segment, head) is cut into two runs of blocks of about equal work; each run sums
        // its key and value gradients into its own partial (segment length × headDim, twice).
        let hd = headDim
        var items = [(segment: Int, head: Int, blocks: Range<Int>, offset: Int, cost: Int)]()
        var offset = 0
        for (s, seg) in segments.enumerated() {
            let n = blockCount(seg.count)
            let costs = (0..<n).map { b -> Int in let r = blockRange(b, seg.count); return r.count * r.upperBound }
            let total = costs.reduce(0, +)
            var split = 0, first = 0
            while split < n - 1 && 2 * (first + costs[split]) <= total { first += costs[split]; split += 1 }
            if split == 0 { split = 1; first = costs[0] }
            for h in 0..<heads {
                items.append((s, h, 0..<split, offset, first))
                offset += 2 * seg.count * hd
                if split < n { items.append((s, h, split..<n, offset, total - first)) }
                offset += 2 * seg.count * hd
            }
        }
        if partials.count < offset { partials = FloatBuffer(count: offset) }
        let scale = self.scale
        runOnPool(items.map(\.cost)) { item, thread in
            let (s, h, blocks, offset, _) = items[item]
            let seg = segments[s], g = group(h)
            let covered = blockRange(blocks.upperBound - 1, seg.count).upperBound
            let dkPart = MatrixView(partials, offset: offset, rows: covered, cols: hd)
            let dvPart = MatrixView(partials, offset: offset + seg.count * hd, rows: covered, cols: hd)
            dkPart.buffer.base.advanced(by: offset).update(repeating: 0, count: covered * hd)
            dvPart.buffer.base.advanced(by: offset + seg.count * hd).update(repeating: 0, count: covered * hd)
            for b in blocks {
                let rows = blockRange(b, seg.count), keys = rows.upperBound
                let p = probabilities(q: q, k: k, segment: seg, head: h, rows: rows, into: scores[thread])
                let dO = dOut.rows(seg.lowerBound + rows.lowerBound, rows.count).columns(h * hd, hd)
                let dp = MatrixView(gradients[thread], rows: rows.count, cols: keys)
                BLAS.gemmABt(dO, v.rows(seg.lowerBound, keys).columns(g * hd, hd), into: dp)
                BLAS.gemmAtB(p, dO, into: dvPart.rows(0, keys), beta: 1)
                TrainingKernels.causalSoftmaxBackward(p: p, dp: dp, visible: rows.lowerBound + 1)
                BLAS.gemmAB(dp, k.rows(seg.lowerBound, keys).columns(g * hd, hd),
                            into: dq.rows(seg.lowerBound + rows.lowerBound, rows.count).columns(h * hd, hd), alpha: scale)
                BLAS.gemmAtB(dp, q.rows(seg.lowerBound + rows.lowerBound, rows.count).columns(h * hd, hd),
                             into: dkPart.rows(0, keys), alpha: scale, beta: 1)
            }
        }
        // dk, dv of a key/value head: the sum of its query heads' partials, in head then run order.
        var runs = [[(offset: Int, covered: Int)]](repeating: [], count: segments.count * kvHeads)
        for it in items {
            let covered = blockRange(it.blocks.upperBound - 1, segments[it.segment].count).upperBound
            runs[it.segment * kvHeads + group(it.head)].append((it.offset, covered))
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

    /// The probabilities of query rows `rows` of one head of a segment over keys 0..<rows.upperBound.
    private func probabilities(q: MatrixView, k: MatrixView, segment: Range<Int>, head: Int, rows: Range<Int>,
                               into buffer: FloatBuffer) -> MatrixView {
        let hd = headDim, keys = rows.upperBound
        let p = MatrixView(buffer, rows: rows.count, cols: keys)
        BLAS.gemmABt(q.rows(segment.lowerBound + rows.lowerBound, rows.count).columns(head * hd, hd),
                     k.rows(segment.lowerBound, keys).columns(group(head) * hd, hd), into: p, alpha: scale)
        TrainingKernels.causalSoftmax(p, visible: rows.lowerBound + 1)
        return p
    }

    /// Runs `body(item, thread)` for every item, largest cost first, each taken by the next free
    /// pool thread, with OpenBLAS on one thread meanwhile. Results do not depend on who takes what.
    private func runOnPool(_ costs: [Int], _ body: (Int, Int) -> Void) {
        let order = costs.indices.sorted { costs[$0] > costs[$1] || (costs[$0] == costs[$1] && $0 < $1) }
        let previous = BLASThreads.current
        BLASThreads.set(1)
        defer { BLASThreads.set(previous) }
        WorkerPool.shared.forEach(order.count) { i, thread in body(order[i], thread) }
    }
}
