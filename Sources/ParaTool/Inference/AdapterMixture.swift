// AdapterMixture: the fused forward of ParaTool. For every adapted FFN linear it adds
// Σ_i w_i · (α/r) · B_i (A_i x) to the base output as low-rank branches — never forming B·A,
// never touching W — with a different mixture per segment of the batch.
// - Prefill of segments that all carry the same adapters: the set's stacked weights
//   (AdapterStack) apply the whole mixture with two sgemms per linear.
// - Prefill of segments with different adapters: rows are grouped by adapter, and each adapter's
//   A and B are applied with one sgemm over all the rows that use it.
// - Decode (up to `Linear.maxMatVecRows` rows): every adapter's A for gate and up in one parallel
//   matrix-vector call, every B in a second one (likewise for down), whatever the mixtures.
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
/// finished sequences from the batch without touching this object. Not thread-safe (one per
/// Transformer).
public final class AdapterMixture: FFNBranches {
    /// The mixture of each sequence, indexed by `BatchSegment.sequence`.
    public var mixtures: [Mixture] = [] { didSet { layout = nil } }

    /// The threads the branches' products are split over (the runner's budget).
    public let threads: ComputeThreads

    /// Bytes of stacked adapter sets kept for later prefills, least recently used dropped first.
    /// A stacked set copies its adapters' weights (~49 MB for four rank-16 adapters on
    /// SmolLM2-135M); requests that reuse a set, such as the steps of one episode, skip the copy.
    /// A set larger than this is not stacked; 0 turns stacking off (rows grouped by adapter).
    public var stackCacheBytes: Int { didSet { trimStacks() } }

    /// The default `stackCacheBytes`: 128 MB, two four-adapter sets on SmolLM2-135M.
    public static let defaultStackCacheBytes = 128 << 20

    /// A set seen for the first time is stacked only for a prefill of at least this many rows:
    /// copying its weights (~49 MB for four rank-16 adapters on SmolLM2-135M) costs about what
    /// stacking saves on 128 rows (`paratool bench adapters`, prefill table). A set seen before is
    /// stacked on its second prefill whatever the length, since sets that recur (one episode's
    /// steps, a small catalogue) repay the copy; a stacked set is used from
    /// `Linear.maxMatVecRows` rows up.
    public static let rowsWorthStacking = 128

    /// The adapter sets of recent prefills (identities only, most recent first), to stack a set
    /// when it recurs.
    private var recentSets: [[ObjectIdentifier]] = []
    private static let recentSetLimit = 32

    /// How many stacked sets the cache holds (for tests).
    var stackedSetCount: Int { stacks.count }

    /// Stacked sets, most recently used first.
    private var stacks: [AdapterStack] = []
    private var layout: Layout?

    private var packedInput = FloatBuffer(count: 0)
    private var packedOutput = FloatBuffer(count: 0)
    private var lowRank = FloatBuffer(count: 0)
    private var stackFactors = FloatBuffer(count: 0)
    private var jobs: [MatVec.Job] = []
    private var narrowJobs: [MatVec.NarrowRowsJob] = []
    /// The low-rank activations of each decode job and the group they belong to.
    private var lowRankViews: [(t: MatrixView, group: Int)] = []

    /// One adapter and the segments (with their weights) that use it, in the current batch.
    private struct Group {
        let adapter: ToolAdapter
        var segments: [(index: Int, weight: Float)]
        /// The batch rows of those segments, in order.
        var rows: [Int] = []
        /// The first row when `rows` is one contiguous run (no gather needed).
        var contiguousStart: Int?
    }

    /// The grouping of one batch layout (the segments' sequences and row ranges).
    private struct Layout {
        let sequences: [Int]
        let rowRanges: [Range<Int>]
        let rows: Int
        let groups: [Group]
        /// The adapters every segment carries, in the first segment's order, when all carry the
        /// same ones; `weights[s][i]` is segment s's weight for adapter i.
        let shared: (adapters: [ToolAdapter], weights: [[Float]])?
        /// The stacked weights of `shared`, resolved at the first prefill of the layout.
        var stack: AdapterStack?
        var stackResolved = false
    }

    public init(threads: ComputeThreads = .machine, stackCacheBytes: Int = AdapterMixture.defaultStackCacheBytes) {
        self.threads = threads
        self.stackCacheBytes = stackCacheBytes
    }

    // MARK: FFNBranches

    public func addGateUpBranches(layer: Int, input: MatrixView, gate: MatrixView, up: MatrixView,
                                  segments: [BatchSegment], rowRanges: [Range<Int>]) {
        guard let layout = prepared(segments, rowRanges), !layout.groups.isEmpty else { return }
        if layout.rows <= Linear.maxMatVecRows {
            decode(layout, layer: layer, input: input, (.gate, gate), (.up, up))
        } else if let stack = stackedLayout(layout)?.stack {
            stackedGateUp(stack, layout, layer: layer, input: input, gate: gate, up: up)
        } else {
            grouped(layout, layer: layer, projection: .gate, input: input, output: gate)
            grouped(layout, layer: layer, projection: .up, input: input, output: up)
        }
    }

    public func addBranches(layer: Int, projection: FFNProjection, input: MatrixView, output: MatrixView,
                            segments: [BatchSegment], rowRanges: [Range<Int>]) {
        guard let layout = prepared(segments, rowRanges), !layout.groups.isEmpty else { return }
        if layout.rows <= Linear.maxMatVecRows {
            decode(layout, layer: layer, input: input, (projection, output))
        } else if projection == .down, let stack = stackedLayout(layout)?.stack {
            stackedDown(stack, layout, layer: layer, input: input, output: output)
        } else {
            grouped(layout, layer: layer, projection: projection, input: input, output: output)
        }
    }

    // MARK: Layout

    /// The layout for this batch, regrouped only when the sequences or row ranges changed.
    private func prepared(_ segments: [BatchSegment], _ rowRanges: [Range<Int>]) -> Layout? {
        if let l = layout, l.rowRanges == rowRanges, l.sequences.count == segments.count,
           !zip(l.sequences, segments).contains(where: { $0 != $1.sequence }) { return l }
        var order = [ObjectIdentifier: Int]()
        var groups = [Group]()
        for (index, segment) in segments.enumerated() {
            precondition(segment.sequence < mixtures.count, "no mixture for sequence \(segment.sequence)")
            for c in mixtures[segment.sequence].components where c.weight != 0 {
                let id = ObjectIdentifier(c.adapter)
                if let g = order[id] {
                    groups[g].segments.append((index, c.weight))
                } else {
                    order[id] = groups.count
                    groups.append(Group(adapter: c.adapter, segments: [(index, c.weight)]))
                }
            }
        }
        for g in groups.indices {
            groups[g].rows = groups[g].segments.flatMap { Array(rowRanges[$0.index]) }
            let rows = groups[g].rows
            if let first = rows.first, rows.last! - first + 1 == rows.count { groups[g].contiguousStart = first }
        }
        let built = Layout(sequences: segments.map(\.sequence), rowRanges: rowRanges,
                           rows: rowRanges.last?.upperBound ?? 0, groups: groups,
                           shared: sharedAdapters(segments, groups))
        layout = built
        return built
    }

    /// The adapters and per-segment weights when every segment carries the same adapters, each once.
    private func sharedAdapters(_ segments: [BatchSegment], _ groups: [Group]) -> (adapters: [ToolAdapter], weights: [[Float]])? {
        guard !groups.isEmpty else { return nil }
        var weights = [[Float]](repeating: [Float](repeating: 0, count: groups.count), count: segments.count)
        for (i, group) in groups.enumerated() {
            guard group.segments.count == segments.count else { return nil }
            for (k, use) in group.segments.enumerated() {
                guard use.index == k else { return nil }  // each segment exactly once, in order
                weights[k][i] = use.weight
            }
        }
        return (groups.map(\.adapter), weights)
    }

    /// The layout with its stacked set resolved (from the cache, or built when the set recurs or
    /// the batch has `rowsWorthStacking` rows), or nil when the segments do not share one set.
    private func stackedLayout(_ current: Layout) -> Layout? {
        guard let shared = current.shared else { return nil }
        if current.stackResolved { return current }
        var resolved = current
        resolved.stackResolved = true
        let identities = shared.adapters.map(ObjectIdentifier.init)
        let recurs = recentSets.contains(identities)
        recentSets.removeAll { $0 == identities }
        recentSets.insert(identities, at: 0)
        if recentSets.count > Self.recentSetLimit { recentSets.removeLast() }
        if let i = stacks.firstIndex(where: { $0.holds(shared.adapters) }) {
            resolved.stack = stacks.remove(at: i)
        } else if (recurs || current.rows >= Self.rowsWorthStacking) && AdapterStack.bytes(of: shared.adapters) <= stackCacheBytes {
            resolved.stack = AdapterStack(shared.adapters, layerCount: shared.adapters.map(\.pairs.count).max() ?? 0)
        }
        if let stack = resolved.stack {
            stacks.insert(stack, at: 0)
            trimStacks()
            fillStackFactors(stack, shared.weights)
        }
        layout = resolved
        return resolved
    }

    /// Drops least recently used stacks until the rest fit in `stackCacheBytes`.
    private func trimStacks() {
        var bytes = 0
        stacks = stacks.filter { bytes += $0.bytes; return bytes <= stackCacheBytes }
    }

    /// Forgets every stacked set (their memory is freed once no batch uses them), for instance
    /// after the adapters were replaced.
    public func dropStackedSets() {
        stacks.removeAll()
        recentSets.removeAll()
        if layout?.stack != nil { layout = nil }
    }

    /// Row s of `stackFactors`: segment s's weight · α/r on every stacked column, for the gate
    /// block and again for the up block (2R columns; down reads the first R).
    private func fillStackFactors(_ stack: AdapterStack, _ weights: [[Float]]) {
        let width = 2 * stack.rank
        ensure(&stackFactors, weights.count * width)
        let factors = MatrixView(stackFactors, rows: weights.count, cols: width)
        for (s, segmentWeights) in weights.enumerated() {
            for (i, adapter) in stack.adapters.enumerated() {
                let value = segmentWeights[i] * adapter.scale
                for c in 0..<adapter.rank {
                    factors[s, stack.offsets[i] + c] = value
                    factors[s, stack.rank + stack.offsets[i] + c] = value
                }
            }
        }
    }

    private func ensure(_ buffer: inout FloatBuffer, _ count: Int) {
        if buffer.count < count { buffer = FloatBuffer(count: max(count, buffer.count * 2)) }
    }

    // MARK: Prefill, one shared set

    private func stackedGateUp(_ stack: AdapterStack, _ layout: Layout, layer: Int, input: MatrixView,
                               gate: MatrixView, up: MatrixView) {
        let s = stack.layers[layer], r = stack.rank
        ensure(&lowRank, layout.rows * 2 * r)
        let t = MatrixView(lowRank, rows: layout.rows, cols: 2 * r)
        BLAS.gemmABt(input, s.aGateUp, into: t)
        scaleByStackFactors(t, stack, layout)
        BLAS.gemmAB(t.columns(0, r), s.btGate, into: gate, beta: 1, threads: threads)
        BLAS.gemmAB(t.columns(r, r), s.btUp, into: up, beta: 1, threads: threads)
    }

    private func stackedDown(_ stack: AdapterStack, _ layout: Layout, layer: Int, input: MatrixView, output: MatrixView) {
        let s = stack.layers[layer], r = stack.rank
        ensure(&lowRank, layout.rows * r)
        let t = MatrixView(lowRank, rows: layout.rows, cols: r)
        BLAS.gemmABt(input, s.aDown, into: t)
        scaleByStackFactors(t, stack, layout)
        BLAS.gemmAB(t, s.btDown, into: output, beta: 1, threads: threads)
    }

    /// Multiplies each segment's rows of `t` by that segment's factors (the first `t.cols` of them).
    private func scaleByStackFactors(_ t: MatrixView, _ stack: AdapterStack, _ layout: Layout) {
        let width = 2 * stack.rank
        for (s, range) in layout.rowRanges.enumerated() {
            Kernels.multiplyColumns(t.rows(range.lowerBound, range.count),
                                    by: MatrixView(stackFactors, offset: s * width, rows: 1, cols: t.cols))
        }
    }

    // MARK: Prefill, rows grouped by adapter

    private func grouped(_ layout: Layout, layer: Int, projection: FFNProjection, input: MatrixView, output: MatrixView) {
        for group in layout.groups {
            guard let pair = group.adapter.pair(layer: layer, projection: projection) else { continue }
            let rows = group.rows.count
            ensure(&lowRank, rows * pair.rank)
            let t = MatrixView(lowRank, rows: rows, cols: pair.rank)
            if let start = group.contiguousStart {
                pair.multiplyA(input.rows(start, rows), into: t)
                scaleRows(t, group, layout, scale: group.adapter.scale)
                pair.multiplyB(t, into: output.rows(start, rows), accumulate: true, threads: threads)
            } else {
                ensure(&packedInput, rows * input.cols)
                ensure(&packedOutput, rows * output.cols)
                let x = MatrixView(packedInput, rows: rows, cols: input.cols)
                let y = MatrixView(packedOutput, rows: rows, cols: output.cols)
                for (j, i) in group.rows.enumerated() { Kernels.copyRow(input, i, into: x, row: j) }
                pair.multiplyA(x, into: t)
                scaleRows(t, group, layout, scale: group.adapter.scale)
                pair.multiplyB(t, into: y, accumulate: false, threads: threads)
                var row = 0
                for s in group.segments {
                    let range = layout.rowRanges[s.index]
                    Kernels.add(y.rows(row, range.count), into: output.rows(range.lowerBound, range.count))
                    row += range.count
                }
            }
        }
    }

    // MARK: Decode

    /// Up to `Linear.maxMatVecRows` rows, any mixtures: the A products of every adapter on one or
    /// two projections (which share `input`) in one parallel call, then every B product in a
    /// second, each weight read once for all the rows that use it.
    private func decode(_ layout: Layout, layer: Int, input: MatrixView, _ first: (FFNProjection, MatrixView),
                        _ second: (FFNProjection, MatrixView)? = nil) {
        let outputCount = second == nil ? 1 : 2
        func output(_ k: Int) -> (FFNProjection, MatrixView) { k == 0 ? first : second! }
        var rankRows = 0, gathered = 0
        for group in layout.groups {
            for k in 0..<outputCount { rankRows += group.rows.count * (group.adapter.pair(layer: layer, projection: output(k).0)?.rank ?? 0) }
            if group.contiguousStart == nil { gathered += group.rows.count }
        }
        guard rankRows > 0 else { return }
        ensure(&lowRank, rankRows)
        ensure(&packedInput, gathered * input.cols)
        jobs.removeAll(keepingCapacity: true)
        narrowJobs.removeAll(keepingCapacity: true)
        lowRankViews.removeAll(keepingCapacity: true)
        var offset = 0, packedRow = 0
        for (g, group) in layout.groups.enumerated() {
            let n = group.rows.count
            let x: MatrixView
            if let start = group.contiguousStart {
                x = input.rows(start, n)
            } else {
                x = MatrixView(packedInput, offset: packedRow * input.cols, rows: n, cols: input.cols)
                for (j, i) in group.rows.enumerated() { Kernels.copyRow(input, i, into: x, row: j) }
                packedRow += n
            }
            for k in 0..<outputCount {
                let (projection, output) = output(k)
                guard let pair = group.adapter.pair(layer: layer, projection: projection) else { continue }
                let t = MatrixView(lowRank, offset: offset, rows: n, cols: pair.rank)
                offset += n * pair.rank
                jobs.append(pair.decodeJobA(x, into: t))
                lowRankViews.append((t, g))
                narrowJobs.append(MatVec.NarrowRowsJob(pair.bWeights, t, accumulatingInto: output, rows: group.rows))
            }
        }
        MatVec.multiply(concatenated: jobs, threads: threads)
        for (t, g) in lowRankViews { scaleRows(t, layout.groups[g], layout, scale: layout.groups[g].adapter.scale) }
        MatVec.multiplyNarrowRows(narrowJobs, threads: threads)
    }

    /// Multiplies the low-rank activations of each segment's rows by weight · α/r.
    private func scaleRows(_ t: MatrixView, _ group: Group, _ layout: Layout, scale: Float) {
        var row = 0
        for s in group.segments {
            let n = layout.rowRanges[s.index].count
            Kernels.scale(t.rows(row, n), by: s.weight * scale)
            row += n
        }
    }
}
