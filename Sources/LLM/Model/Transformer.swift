// Transformer: the forward pass of a LlamaModel over a batch of sequence segments (prefill of
// whole prompts and single-token decode steps alike, different lengths in one batch), with
// reusable scratch buffers and the FFN extension point through which adapters add low-rank
// branches per batch row.
import Foundation
import Tensor

/// A run of consecutive tokens of one sequence, appended to that sequence's KV cache.
public struct BatchSegment: Sendable {
    /// Index into the `caches` array passed to `forward`.
    public var sequence: Int
    /// The tokens to process (at least one).
    public var tokens: [Int]

    public init(sequence: Int, tokens: [Int]) {
        self.sequence = sequence
        self.tokens = tokens
    }
}

/// Which rows' logits a forward pass computes.
public enum LogitsSelection: Sendable {
    /// The last position of every segment (prefill and decode).
    case lastOfEachSegment
    /// Every position (scoring, training, tests).
    case all
    /// None: only the caches are filled.
    case none
    /// The final-norm hidden states of every position, without logits (encoders, pooling).
    case hiddenOnly
}

extension LogitsSelection {
    var isHiddenOnly: Bool {
        if case .hiddenOnly = self { return true }
        return false
    }
}

/// Where adapters attach: called after the base product of every FFN linear of every layer.
/// `input` is the linear's input rows, `output` its output rows (already holding `x Wᵀ`); the
/// implementation adds its branches into `output`. `rows` maps each batch row to its segment
/// index, so rows of different requests can carry different adapter mixtures.
public protocol FFNBranches: AnyObject {
    func addBranches(layer: Int, projection: FFNProjection, input: MatrixView, output: MatrixView,
                     segments: [BatchSegment], rowRanges: [Range<Int>])

    /// The branches of gate_proj and up_proj, which share their input: one call so that an
    /// implementation can apply both with the same products. The default makes the two
    /// `addBranches` calls.
    func addGateUpBranches(layer: Int, input: MatrixView, gate: MatrixView, up: MatrixView,
                           segments: [BatchSegment], rowRanges: [Range<Int>])
}

extension FFNBranches {
    public func addGateUpBranches(layer: Int, input: MatrixView, gate: MatrixView, up: MatrixView,
                                  segments: [BatchSegment], rowRanges: [Range<Int>]) {
        addBranches(layer: layer, projection: .gate, input: input, output: gate, segments: segments, rowRanges: rowRanges)
        addBranches(layer: layer, projection: .up, input: input, output: up, segments: segments, rowRanges: rowRanges)
    }
}

/// Runs a `LlamaModel`. Not thread-safe: give each thread its own Transformer (they share the
/// model's weights). Its thread budgets are its own: two runners in one process (a worker's and
/// a trainer's) never change each other's.
public final class Transformer {
    public let model: LlamaModel
    /// Optional low-rank branches on the FFN linears.
    public weak var branches: FFNBranches?
    /// The threads products of many rows (prefill) are split over.
    public let prefillThreads: ComputeThreads
    /// The threads the matrix-vector kernels of a few rows (decode) are split over.
    public let decodeThreads: ComputeThreads

    private var rowCapacity = 0
    private var x = FloatBuffer(count: 0), xn = FloatBuffer(count: 0)
    private var q = FloatBuffer(count: 0), k = FloatBuffer(count: 0), v = FloatBuffer(count: 0)
    private var attn = FloatBuffer(count: 0), gate = FloatBuffer(count: 0), up = FloatBuffer(count: 0)
    private var scores = FloatBuffer(count: 0)
    private var outHidden = FloatBuffer(count: 0), outLogits = FloatBuffer(count: 0)

    /// A runner for `model` on `threads` (prefill and decode alike; default: the machine's
    /// active cores).
    public convenience init(model: LlamaModel, threads: ComputeThreads = .machine) {
        self.init(model: model, prefillThreads: threads, decodeThreads: threads)
    }

    /// A runner for `model` with a budget for prefill and one for decode (benchmarks).
    public init(model: LlamaModel, prefillThreads: ComputeThreads, decodeThreads: ComputeThreads) {
        self.model = model
        self.prefillThreads = prefillThreads
        self.decodeThreads = decodeThreads
    }

    /// Result of a forward pass: views into the Transformer's scratch, valid until the next call.
    public struct Output {
        /// Final-norm hidden states of the selected rows.
        public let hidden: MatrixView
        /// Logits of the selected rows (rows × vocab).
        public let logits: MatrixView
        /// For each selected row: (segment index, position within the segment).
        public let rows: [(segment: Int, offset: Int)]
    }

    /// Frees the scratch the largest forward pass so far sized (activations, attention scores,
    /// outputs); the next pass allocates what it needs again. For a server that goes idle: its
    /// working memory then no longer stays at its peak batch.
    public func releaseWorkingMemory() {
        rowCapacity = 0
        for keyPath in [\Transformer.x, \.xn, \.q, \.k, \.v, \.attn, \.gate, \.up, \.scores, \.outHidden, \.outLogits] {
            self[keyPath: keyPath] = FloatBuffer(count: 0)
        }
    }

    private func ensureRows(_ rows: Int) {
        guard rows > rowCapacity else { return }
        let c = model.config
        rowCapacity = max(rows, rowCapacity * 2)
        x = FloatBuffer(count: rowCapacity * c.hiddenSize)
        xn = FloatBuffer(count: rowCapacity * c.hiddenSize)
        q = FloatBuffer(count: rowCapacity * c.qDim)
        k = FloatBuffer(count: rowCapacity * c.kvDim)
        v = FloatBuffer(count: rowCapacity * c.kvDim)
        attn = FloatBuffer(count: rowCapacity * c.qDim)
        gate = FloatBuffer(count: rowCapacity * c.intermediateSize)
        up = FloatBuffer(count: rowCapacity * c.intermediateSize)
    }

    private func ensure(_ buffer: inout FloatBuffer, _ count: Int) {
        if buffer.count < count { buffer = FloatBuffer(count: max(count, buffer.count * 2)) }
    }

    /// Runs `segments` through the model, appending their keys and values to `caches[segment.sequence]`,
    /// and returns the final hidden states and logits of the rows chosen by `logits`. With
    /// `layers`, only the first `layers` layers run (encoders reading an inner layer; only with
    /// `.hiddenOnly`, since the caches of the other layers stay unfilled), and the hidden states
    /// are those of that layer, through the final norm.
    public func forward(_ segments: [BatchSegment], caches: [KVCache],
                        logits selection: LogitsSelection = .lastOfEachSegment, layers: Int? = nil) -> Output {
        let c = model.config
        precondition(layers == nil || selection.isHiddenOnly, "a layer limit needs .hiddenOnly")
        let layerCount = min(max(0, layers ?? c.layerCount), c.layerCount)
        var ranges = [Range<Int>]()
        var total = 0
        for s in segments {
            precondition(!s.tokens.isEmpty, "empty segment")
            precondition(s.sequence >= 0 && s.sequence < caches.count, "segment names a missing cache")
            ranges.append(total..<(total + s.tokens.count))
            total += s.tokens.count
        }
        precondition(Set(segments.map(\.sequence)).count == segments.count,
                     "two segments of one batch append to the same cache")
        ensureRows(total)
        let starts = segments.map { caches[$0.sequence].length }
        for (i, s) in segments.enumerated() { caches[s.sequence].reserve(starts[i] + s.tokens.count) }
        let maxLength = zip(segments, starts).map { $1 + $0.tokens.count }.max() ?? 0
        let maxSegmentRows = segments.map(\.tokens.count).max() ?? 0
        ensure(&scores, maxSegmentRows * maxLength)

        let hx = MatrixView(x, rows: total, cols: c.hiddenSize)
        let hn = MatrixView(xn, rows: total, cols: c.hiddenSize)
        let qv = MatrixView(q, rows: total, cols: c.qDim)
        let kv = MatrixView(k, rows: total, cols: c.kvDim)
        let vv = MatrixView(v, rows: total, cols: c.kvDim)
        let av = MatrixView(attn, rows: total, cols: c.qDim)
        let gv = MatrixView(gate, rows: total, cols: c.intermediateSize)
        let uv = MatrixView(up, rows: total, cols: c.intermediateSize)
        let embed = model.embedding
        for (i, s) in segments.enumerated() {
            for (j, t) in s.tokens.enumerated() {
                precondition(t >= 0 && t < c.vocabSize, "token id \(t) outside the vocabulary (\(c.vocabSize))")
                embed.copyRow(t, into: hx, row: ranges[i].lowerBound + j)
            }
        }
        // The budget of the matrix-vector kernels (decode) or of sgemm (prefill).
        let mt = total > Linear.maxMatVecRows ? prefillThreads : decodeThreads
        for (l, layer) in model.layers.prefix(layerCount).enumerated() {
            Kernels.rmsNorm(hx, weight: layer.inputNorm, eps: c.rmsNormEps, into: hn)
            Linear.apply(hn, (layer.qProj, qv), (layer.kProj, kv), (layer.vProj, vv), threads: mt)
            for (i, s) in segments.enumerated() {
                let r = ranges[i], n = r.count, start = starts[i]
                let cache = caches[s.sequence]
                let qs = qv.rows(r.lowerBound, n), ks = kv.rows(r.lowerBound, n), vs = vv.rows(r.lowerBound, n)
                Kernels.rope(qs, heads: c.headCount, startPosition: start, table: model.rope)
                Kernels.rope(ks, heads: c.kvHeadCount, startPosition: start, table: model.rope)
                let kc = cache.keyView(layer: l), vc = cache.valueView(layer: l)
                for j in 0..<n {
                    Kernels.copyRow(ks, j, into: kc, row: start + j)
                    Kernels.copyRow(vs, j, into: vc, row: start + j)
                }
                Kernels.causalAttention(q: qs, keys: kc, values: vc, startPosition: start,
                                        heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                                        scores: scores, into: av.rows(r.lowerBound, n))
            }
            layer.oProj.apply(av, into: hx, accumulate: true, threads: mt)
            Kernels.rmsNorm(hx, weight: layer.postAttentionNorm, eps: c.rmsNormEps, into: hn)
            Linear.apply(hn, (layer.gateProj, gv), (layer.upProj, uv), threads: mt)
            branches?.addGateUpBranches(layer: l, input: hn, gate: gv, up: uv, segments: segments, rowRanges: ranges)
            Kernels.siluMul(gate: gv, up: uv, into: gv)
            layer.downProj.apply(gv, into: hx, accumulate: true, threads: mt)
            branches?.addBranches(layer: l, projection: .down, input: gv, output: hx, segments: segments, rowRanges: ranges)
        }
        for s in segments { caches[s.sequence].advance(by: s.tokens.count) }

        var selected = [(segment: Int, offset: Int)]()
        switch selection {
        case .lastOfEachSegment: selected = segments.indices.map { ($0, segments[$0].tokens.count - 1) }
        case .all, .hiddenOnly:
            for (i, s) in segments.enumerated() { for j in 0..<s.tokens.count { selected.append((i, j)) } }
        case .none: break
        }
        let n = selected.count
        ensure(&outHidden, n * c.hiddenSize)
        let hidden = MatrixView(outHidden, rows: n, cols: c.hiddenSize)
        for (o, sel) in selected.enumerated() {
            Kernels.copyRow(hx, ranges[sel.segment].lowerBound + sel.offset, into: hidden, row: o)
        }
        Kernels.rmsNorm(hidden, weight: model.finalNorm, eps: c.rmsNormEps, into: hidden)
        if case .hiddenOnly = selection {
            return Output(hidden: hidden, logits: MatrixView(outLogits, rows: 0, cols: c.vocabSize), rows: selected)
        }
        ensure(&outLogits, n * c.vocabSize)
        let logits = MatrixView(outLogits, rows: n, cols: c.vocabSize)
        Linear(weight: model.lmHead).apply(hidden, into: logits, threads: n > Linear.maxMatVecRows ? prefillThreads : decodeThreads)
        return Output(hidden: hidden, logits: logits, rows: selected)
    }
}
