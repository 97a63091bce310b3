// AdapterMixture: the fused forward of ParaTool. For every adapted FFN linear it adds
// Σ_i w_i · (α/r) · B_i (A_i x) to the base output as low-rank branches — never forming B·A,
// never touching W — with a different mixture per segment of the batch. Rows are grouped by
// adapter so each adapter's A and B are applied with one sgemm over all the rows that use it.
import LLM
import Tensor

/// A weighted set of tool adapters for one request.
public struct Mixture: Sendable {
    /// The adapters and their weights (weights need not sum to one; zero weights are skipped).
    public var components: [(adapter: ToolAdapter, weight: Float)]

    public init(_ components: [(adapter: ToolAdapter, weight: Float)]) { self.components = components }

    /// No adapters: the base model.
    public static let none = Mixture([])
}

/// Low-rank branches for a batch whose sequences carry their own mixtures. `mixtures[s]` is the
/// mixture of every segment with `sequence == s` (the KV-cache index), so a generator may drop
/// finished sequences from the batch without touching this object.
public final class AdapterMixture: FFNBranches {
    /// The mixture of each sequence, indexed by `BatchSegment.sequence`.
    public var mixtures: [Mixture] = [] { didSet { groupedSequences = nil } }

    private var packedInput = FloatBuffer(count: 0)
    private var packedOutput = FloatBuffer(count: 0)
    private var lowRank = FloatBuffer(count: 0)
    /// Adapter groups (by segment index) for the batch layout `groupedSequences`.
    private var groups: [Group] = []
    private var groupedSequences: [Int]?
    private var groupedRowRanges: [Range<Int>] = []

    /// One adapter and the segments (with their weights) that use it.
    struct Group {
        let adapter: ToolAdapter
        var segments: [(index: Int, weight: Float)]
        /// The batch rows of those segments, in order (set for the current layout).
        var rows: [Int] = []
    }

    /// Threads for the single-row (decode) products.
    public var matvecThreads: Int

    public init(matvecThreads: Int = 2) { self.matvecThreads = matvecThreads }

    /// Regroups when the batch's sequences differ from the last grouping (no allocation otherwise).
    private func updateGroups(_ segments: [BatchSegment]) {
        if let g = groupedSequences, g.count == segments.count,
           !zip(g, segments).contains(where: { $0 != $1.sequence }) { return }
        var order = [ObjectIdentifier: Int]()
        var built = [Group]()
        for (seg, segment) in segments.enumerated() {
            precondition(segment.sequence < mixtures.count, "no mixture for sequence \(segment.sequence)")
            for c in mixtures[segment.sequence].components where c.weight != 0 {
                let id = ObjectIdentifier(c.adapter)
                if let g = order[id] {
                    built[g].segments.append((seg, c.weight))
                } else {
                    order[id] = built.count
                    built.append(Group(adapter: c.adapter, segments: [(seg, c.weight)]))
                }
            }
        }
        groups = built
        groupedSequences = segments.map(\.sequence)
        groupedRowRanges = []
    }

    private func ensure(_ buffer: inout FloatBuffer, _ count: Int) {
        if buffer.count < count { buffer = FloatBuffer(count: max(count, buffer.count * 2)) }
    }

    public func addBranches(layer: Int, projection: FFNProjection, input: MatrixView, output: MatrixView,
                            segments: [BatchSegment], rowRanges: [Range<Int>]) {
        if layer == 0 && projection == .gate {
            updateGroups(segments)
            if groupedRowRanges != rowRanges {
                for g in groups.indices { groups[g].rows = groups[g].segments.flatMap { Array(rowRanges[$0.index]) } }
                groupedRowRanges = rowRanges
            }
        }
        if segments.count == 1 && rowRanges[0].count == 1 {
            addSingleRowBranches(layer: layer, projection: projection, input: input, output: output)
            return
        }
        for group in groups {
            guard let pair = group.adapter.pair(layer: layer, projection: projection) else { continue }
            let r = pair.rank, scale = group.adapter.scale
            let rows = group.segments.reduce(0) { $0 + rowRanges[$1.index].count }
            ensure(&lowRank, rows * r)
            let t = MatrixView(lowRank, rows: rows, cols: r)
            // Rows of one segment are contiguous; a group covering one contiguous block needs no copy.
            let contiguous = group.segments.count == 1
                || zip(group.segments, group.segments.dropFirst()).allSatisfy { rowRanges[$0.index].upperBound == rowRanges[$1.index].lowerBound }
            if contiguous {
                let start = rowRanges[group.segments[0].index].lowerBound
                let x = input.rows(start, rows), y = output.rows(start, rows)
                if rows == 1 {
                    // Decode: two matrix-vector products on the worker pool, as the base linears.
                    MatVec.multiply(pair.a, x, into: t, threads: matvecThreads)
                    scaleRows(t, group: group, rowRanges: rowRanges, scale: scale)
                    MatVec.multiply(pair.b, t, into: y, accumulate: true, threads: matvecThreads)
                } else {
                    BLAS.gemmABt(x, pair.a, into: t)
                    scaleRows(t, group: group, rowRanges: rowRanges, scale: scale)
                    BLAS.gemmABt(t, pair.b, into: y, beta: 1)
                }
            } else if rows <= Linear.maxMatVecRows {
                // Decode of a small batch: gather the rows, A through the matrix-vector kernel (one
                // read of A for all rows), B through its transpose straight into the output rows.
                ensure(&packedInput, rows * input.cols)
                let x = MatrixView(packedInput, rows: rows, cols: input.cols)
                for (j, i) in group.rows.enumerated() { Kernels.copyRow(input, i, into: x, row: j) }
                MatVec.multiply(MatVec.Job(pair.a, x, into: t), threads: matvecThreads)
                scaleRows(t, group: group, rowRanges: rowRanges, scale: scale)
                MatVec.multiplyTransposed(pair.bTransposed, t, accumulatingInto: output, rowMap: group.rows, threads: matvecThreads)
            } else {
                ensure(&packedInput, rows * input.cols)
                ensure(&packedOutput, rows * output.cols)
                let x = MatrixView(packedInput, rows: rows, cols: input.cols)
                let y = MatrixView(packedOutput, rows: rows, cols: output.cols)
                for (j, i) in group.rows.enumerated() { Kernels.copyRow(input, i, into: x, row: j) }
                BLAS.gemmABt(x, pair.a, into: t)
                scaleRows(t, group: group, rowRanges: rowRanges, scale: scale)
                BLAS.gemmABt(t, pair.b, into: y)
                var row = 0
                for s in group.segments {
                    let n = rowRanges[s.index].count
                    Kernels.add(y.rows(row, n), into: output.rows(rowRanges[s.index].lowerBound, n))
                    row += n
                }
            }
        }
    }

    private var jobsA: [MatVec.Job] = []
    private var pairsB: [(bt: MatrixView, t: MatrixView)] = []

    /// Decode of one sequence: every adapter's A in one parallel call, then every B through its
    /// transpose (long rows instead of r-float dot products) in a second one.
    private func addSingleRowBranches(layer: Int, projection: FFNProjection, input: MatrixView, output: MatrixView) {
        jobsA.removeAll(keepingCapacity: true)
        pairsB.removeAll(keepingCapacity: true)
        let totalRank = groups.reduce(0) { $0 + ($1.adapter.pair(layer: layer, projection: projection)?.rank ?? 0) }
        guard totalRank > 0 else { return }
        ensure(&lowRank, totalRank)
        var offset = 0
        for group in groups {
            guard let pair = group.adapter.pair(layer: layer, projection: projection) else { continue }
            let t = MatrixView(lowRank, offset: offset, rows: 1, cols: pair.rank)
            jobsA.append(MatVec.Job(pair.a, input, into: t))
            offset += pair.rank
        }
        MatVec.multiply(concatenated: jobsA, threads: matvecThreads)
        offset = 0
        for group in groups {
            guard let pair = group.adapter.pair(layer: layer, projection: projection) else { continue }
            let t = MatrixView(lowRank, offset: offset, rows: 1, cols: pair.rank)
            Kernels.scale(t, by: group.segments[0].weight * group.adapter.scale)
            pairsB.append((pair.bTransposed, t))
            offset += pair.rank
        }
        MatVec.multiplyTransposed(pairsB, accumulatingInto: output, threads: matvecThreads)
    }

    /// Multiplies the low-rank activations of each segment's rows by weight · α/r.
    private func scaleRows(_ t: MatrixView, group: Group, rowRanges: [Range<Int>], scale: Float) {
        var row = 0
        for s in group.segments {
            let n = rowRanges[s.index].count
            Kernels.scale(t.rows(row, n), by: s.weight * scale)
            row += n
        }
    }
}
