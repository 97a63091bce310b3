// LoRABackward: the loss of a batch of token sequences (each the mean NLL of its last tokens,
// weighted) and its exact gradients with respect to every LoRA A and B of the sequences'
// adapter mixtures, through the frozen Llama/Qwen2 decoder. The sequences' rows are concatenated
// and attention is causal within each sequence (TrainingAttention), its probabilities recomputed
// in the backward: memory grows with layers × rows × (hidden + intermediate), not with rows².
// No input gradient is formed where nothing trainable lies below (the attention and norms of
// layer 0). Buffers are kept between calls (DecoderActivations): a training loop allocates no
// buffers per step.
//
// Threads: each sequence's rows are cut into blocks of up to 256 (by its own length only), and
// each layer's row-wise work (norms, every product with a frozen weight, the branches, SiLU) runs
// block by block on whichever thread of the trainer's budget (ComputeThreads) is free, with
// single-threaded sgemm — a handful
// of hand-offs per layer, where OpenBLAS's own threads would synchronise inside every product
// and run the skinny LoRA products several times slower than one thread. Sums over rows (the
// branches' dA and dB, attention's key and value gradients, the LM head's input gradient) are
// cut into blocks of output columns of fixed widths instead. So every product has the same
// shape, and every result the same bits, whatever the thread count and whatever else shares
// the batch: a tool trains alike alone and beside others.
import Foundation
import LLM
import ParaTool
import Tensor

/// Loss and LoRA gradients through the frozen decoder. Not thread-safe (it owns its scratch).
public final class LoRABackward {
    public let model: LlamaModel
    private let activations: DecoderActivations
    private let attention: TrainingAttention
    private var rope: RopePositions
    private var targetRows = 0
    private var finalInput = FloatBuffer(count: 0), finalNormed = FloatBuffer(count: 0), finalInverse = FloatBuffer(count: 0)
    private var logits = FloatBuffer(count: 0), finalGradient = FloatBuffer(count: 0), rowLosses = FloatBuffer(count: 0)
    /// This pass's sequences' rows, and the blocks of rows the threads take (each within one
    /// sequence, largest first).
    private var sequenceRows = [Range<Int>](), rowBlocks = [Range<Int>]()

    /// The threads the row blocks and column blocks are dealt to.
    public let threads: ComputeThreads

    /// A backward pass for `model` on `threads`.
    public init(model: LlamaModel, threads: ComputeThreads = .machine) {
        self.model = model
        self.threads = threads
        let c = model.config
        activations = DecoderActivations(config: c)
        attention = TrainingAttention(heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim, threads: threads)
        rope = RopePositions(model.rope, positions: 0)
    }

    /// The mean negative log-likelihood of the last `targets` tokens of `ids` (position t predicts
    /// token t + 1) under `mixture`, and its gradients for each adapter of the mixture with a
    /// non-zero weight (in order).
    public func lossAndGradients(ids: [Int], targets: Int, mixture: Mixture) -> (loss: Float, gradients: [AdapterGradients]) {
        let comps = mixture.components.filter { $0.weight != 0 }
        let adapters = comps.map(\.adapter)
        let gradients = adapters.map { AdapterGradients(zerosLike: $0) }
        let sequence = TrainingSequence(ids: ids, targets: targets, components: comps.enumerated().map { ($0, $1.weight) })
        let losses = accumulate([sequence], adapters: adapters, into: gradients)
        return (losses[0], gradients)
    }

    /// Runs `sequences` as one batch and adds the gradients of Σ lossWeight · loss to
    /// `gradients` (one per adapter of `adapters`, which the sequences' components index).
    /// Returns each sequence's own loss (the mean NLL of its targets, unweighted).
    public func accumulate(_ sequences: [TrainingSequence], adapters: [ToolAdapter], into gradients: [AdapterGradients]) -> [Float] {
        precondition(gradients.count == adapters.count, "one gradient set per adapter")
        var rows = [Range<Int>](), total = 0
        for s in sequences {
            precondition(s.targets >= 1 && s.targets < s.ids.count, "need 1 ≤ targets < sequence length")
            precondition(s.components.allSatisfy { $0.adapter >= 0 && $0.adapter < adapters.count }, "component names a missing adapter")
            rows.append(total..<(total + s.ids.count))
            total += s.ids.count
        }
        guard total > 0 else { return [] }
        let branches = LoRABranches(sequences: sequences, rows: rows, adapters: adapters)
        activations.reserve(rows: total, lowFloats: branches.layerFloats)
        let longest = rows.map(\.count).max()!
        if rope.positions < longest { rope = RopePositions(model.rope, positions: max(longest, 2 * rope.positions)) }
        sequenceRows = rows
        // Blocks of at most 256 rows, and two from 64 rows so that one sequence keeps two threads busy.
        var blocks = [Range<Int>]()
        for r in rows {
            let k = r.count >= 64 ? max(2, (r.count + 255) / 256) : 1
            for b in Self.split(r.count, into: k, align: 1) { blocks.append((r.lowerBound + b.lowerBound)..<(r.lowerBound + b.upperBound)) }
        }
        rowBlocks = blocks.sorted { $0.count > $1.count || ($0.count == $1.count && $0.lowerBound < $1.lowerBound) }
        forward(sequences, total: total, branches: branches, adapters: adapters)
        let losses = head(sequences, total: total)
        backward(total: total, branches: branches, adapters: adapters, gradients: gradients)
        return losses
    }

    private func view(_ b: FloatBuffer, _ rows: Int, _ cols: Int) -> MatrixView { MatrixView(b, rows: rows, cols: cols) }
    private func column(_ b: FloatBuffer, _ rows: Range<Int>) -> MatrixView { MatrixView(b, offset: rows.lowerBound, rows: rows.count, cols: 1, stride: 1) }

    /// `0..<n` cut into `k` near-equal consecutive ranges, inner bounds multiples of `align`.
    static func split(_ n: Int, into k: Int, align: Int) -> [Range<Int>] {
        let bounds = (0...k).map { i in i == k ? n : min(n, (n * i / k + align / 2) / align * align) }
        return (0..<k).map { bounds[$0]..<bounds[$0 + 1] }.filter { !$0.isEmpty }
    }

    /// Column blocks of a width-`n` dimension, about `width` wide.
    static func columnBlocks(_ n: Int, width: Int, align: Int = 16) -> [Range<Int>] {
        split(n, into: max(1, (n + width - 1) / width), align: align)
    }

    /// Runs `body` on every row block (each within one sequence), blocks taken by free threads.
    private func onRowBlocks(_ body: (Range<Int>) -> Void) {
        let blocks = rowBlocks
        threads.pool.forEach(blocks.count) { i, _ in body(blocks[i]) }
    }

    /// Runs `body` on every item, items taken by free threads.
    private func onItems<Item>(_ items: [Item], _ body: (Item) -> Void) {
        threads.pool.forEach(items.count) { i, _ in body(items[i]) }
    }

    /// Rotary embedding (or its transpose) of the rows `block` (within one sequence) of q and k:
    /// each sequence's rows are at positions 0, 1, ….
    private func rope(q: MatrixView, k: MatrixView, block: Range<Int>, inverse: Bool) {
        let c = model.config
        var lo = 0, hi = sequenceRows.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if sequenceRows[mid].lowerBound <= block.lowerBound { lo = mid } else { hi = mid - 1 }
        }
        let start = block.lowerBound - sequenceRows[lo].lowerBound
        TrainingKernels.rope(q.rows(block.lowerBound, block.count), heads: c.headCount, startPosition: start, table: rope, inverse: inverse)
        TrainingKernels.rope(k.rows(block.lowerBound, block.count), heads: c.kvHeadCount, startPosition: start, table: rope, inverse: inverse)
    }

    /// The forward over all layers, keeping each layer's activations; the last layer's output
    /// goes to `activations.output`.
    private func forward(_ sequences: [TrainingSequence], total s: Int, branches: LoRABranches, adapters: [ToolAdapter]) {
        let c = model.config, a = activations
        let h = c.hiddenSize, f = c.intermediateSize
        let first = view(a.layers[0].input, s, h)
        for (i, seq) in sequences.enumerated() {
            for (j, t) in seq.ids.enumerated() {
                precondition(t >= 0 && t < c.vocabSize, "token id \(t) outside the vocabulary (\(c.vocabSize))")
                model.embedding.copyRow(t, into: first, row: sequenceRows[i].lowerBound + j)
            }
        }
        let normed = view(a.normed, s, h), att = view(a.attention, s, c.qDim), act = view(a.act, s, f)
        for (l, layer) in model.layers.enumerated() {
            let cache = a.layers[l]
            let input = view(cache.input, s, h), middle = view(cache.middle, s, h)
            let q = view(cache.q, s, c.qDim), k = view(cache.k, s, c.kvDim), v = view(cache.v, s, c.kvDim)
            let gate = view(cache.gate, s, f), up = view(cache.up, s, f)
            let next = view(l + 1 < c.layerCount ? a.layers[l + 1].input : a.output, s, h)
            onRowBlocks { r in
                let n = normed.rows(r.lowerBound, r.count)
                TrainingKernels.rmsNorm(input.rows(r.lowerBound, r.count), weight: layer.inputNorm, eps: c.rmsNormEps, into: n,
                                        inverse: column(cache.inverse1, r))
                layer.qProj.apply(n, into: q.rows(r.lowerBound, r.count))
                layer.kProj.apply(n, into: k.rows(r.lowerBound, r.count))
                layer.vProj.apply(n, into: v.rows(r.lowerBound, r.count))
                rope(q: q, k: k, block: r, inverse: false)
            }
            attention.forward(q: q, k: k, v: v, segments: sequenceRows, into: att)
            onRowBlocks { r in
                let m = middle.rows(r.lowerBound, r.count), n = normed.rows(r.lowerBound, r.count)
                let g = gate.rows(r.lowerBound, r.count), u = up.rows(r.lowerBound, r.count), x = act.rows(r.lowerBound, r.count)
                let out = next.rows(r.lowerBound, r.count)
                Kernels.copy(input.rows(r.lowerBound, r.count), into: m)
                layer.oProj.apply(att.rows(r.lowerBound, r.count), into: m, accumulate: true)
                TrainingKernels.rmsNorm(m, weight: layer.postAttentionNorm, eps: c.rmsNormEps, into: n, inverse: column(cache.inverse2, r))
                layer.gateProj.apply(n, into: g)
                layer.upProj.apply(n, into: u)
                branches.forward(.gate, layer: l, adapters: adapters, input: normed, output: gate, low: cache.low, part: r)
                branches.forward(.up, layer: l, adapters: adapters, input: normed, output: up, low: cache.low, part: r)
                TrainingKernels.siluMul(gate: g, up: u, into: x)
                Kernels.copy(m, into: out)
                layer.downProj.apply(x, into: out, accumulate: true)
                branches.forward(.down, layer: l, adapters: adapters, input: act, output: next, low: cache.low, part: r)
            }
        }
    }

    /// The final norm, the logits of every target row and their cross-entropy: returns each
    /// sequence's mean loss and leaves ∂(Σ lossWeight · loss)/∂output in `activations.gradient`
    /// (zero outside the target rows).
    private func head(_ sequences: [TrainingSequence], total s: Int) -> [Float] {
        let c = model.config, h = c.hiddenSize, vocab = c.vocabSize
        let n = sequences.reduce(0) { $0 + $1.targets }
        if n > targetRows {
            targetRows = n
            finalInput = FloatBuffer(count: n * h)
            finalNormed = FloatBuffer(count: n * h)
            finalInverse = FloatBuffer(count: n)
            logits = FloatBuffer(count: n * vocab)
            finalGradient = FloatBuffer(count: n * h)
            rowLosses = FloatBuffer(count: n)
        }
        let output = view(activations.output, s, h)
        let xs = view(finalInput, n, h), xn = view(finalNormed, n, h), z = view(logits, n, vocab)
        var sources = [Int](), targets = [Int](), scales = [Float](), spans = [Range<Int>]()
        for (i, seq) in sequences.enumerated() {
            let first = seq.ids.count - 1 - seq.targets
            spans.append(sources.count..<(sources.count + seq.targets))
            sources += (sequenceRows[i].lowerBound + first)..<(sequenceRows[i].lowerBound + first + seq.targets)
            targets += seq.ids[(first + 1)...(first + seq.targets)]
            scales += [Float](repeating: seq.lossWeight / Float(seq.targets), count: seq.targets)
        }
        for (o, row) in sources.enumerated() { Kernels.copyRow(output, row, into: xs, row: o) }
        TrainingKernels.rmsNorm(xs, weight: model.finalNorm, eps: c.rmsNormEps, into: xn, inverse: column(finalInverse, 0..<n))
        // Per sequence and block of vocabulary (then of hidden columns), so the products' shapes
        // are the sequence's own.
        let lm = model.lmHead
        let vocabBlocks = Self.columnBlocks(vocab, width: 4096)
        let hiddenBlocks = Self.columnBlocks(h, width: 320, align: max(16, lm.columnAlignment))
        onItems(spans.flatMap { span in vocabBlocks.map { (span, $0) } }) { span, cols in
            lm.rows(cols).multiply(xn.rows(span.lowerBound, span.count),
                                   into: z.rows(span.lowerBound, span.count).columns(cols.lowerBound, cols.count))
        }
        let rowLosses = self.rowLosses
        onItems(Array(0..<n)) { r in
            rowLosses[r] = TrainingKernels.softmaxCrossEntropy(z, row: r, target: targets[r], scale: scales[r])
        }
        let dxn = view(finalNormed, n, h), dxs = view(finalGradient, n, h)
        onItems(spans.flatMap { span in hiddenBlocks.map { (span, $0) } }) { span, cols in
            lm.columns(cols).multiplyUntransposed(z.rows(span.lowerBound, span.count),
                                                  into: dxn.rows(span.lowerBound, span.count).columns(cols.lowerBound, cols.count))
        }
        TrainingKernels.rmsNormBackward(x: xs, inverse: column(finalInverse, 0..<n), weight: model.finalNorm, dy: dxn,
                                        residual: nil, into: dxs)
        let gradient = view(activations.gradient, s, h)
        activations.gradient.zero()
        for (o, row) in sources.enumerated() { Kernels.copyRow(dxs, o, into: gradient, row: row) }
        var losses = [Float](), o = 0
        for seq in sequences {
            losses.append(rowLosses.slice(o, seq.targets).reduce(0, +) / Float(seq.targets))
            o += seq.targets
        }
        return losses
    }

    /// The backward through every layer from `activations.gradient`, accumulating the branches'
    /// gradients.
    private func backward(total s: Int, branches: LoRABranches, adapters: [ToolAdapter], gradients: [AdapterGradients]) {
        let c = model.config, a = activations
        let h = c.hiddenSize, f = c.intermediateSize
        let dx = view(a.gradient, s, h), dMiddle = view(a.dMiddle, s, h), normed = view(a.normed, s, h), act = view(a.act, s, f)
        let dGate = view(a.dAct, s, f), dUp = view(a.dUp, s, f), dNormed = view(a.dNormed, s, h)
        let dAtt = view(a.dAttention, s, c.qDim)
        let dq = view(a.dq, s, c.qDim), dk = view(a.dk, s, c.kvDim), dv = view(a.dv, s, c.kvDim)
        // The weight gradients' blocks: B's output rows and A's input columns of every projection.
        let gradientBlocks = FFNProjection.allCases.flatMap { p -> [(FFNProjection, LoRABranches.GradientBlock)] in
            let (inputs, outputs) = p == .down ? (f, h) : (h, f)
            return Self.columnBlocks(outputs, width: 512).map { (p, .b($0)) } + Self.columnBlocks(inputs, width: 512).map { (p, .a($0)) }
        }
        for l in stride(from: c.layerCount - 1, through: 0, by: -1) {
            let layer = model.layers[l], cache = a.layers[l]
            let gate = view(cache.gate, s, f), up = view(cache.up, s, f), middle = view(cache.middle, s, h)
            let q = view(cache.q, s, c.qDim), k = view(cache.k, s, c.kvDim), v = view(cache.v, s, c.kvDim)
            // Layer 0's input gradient reaches nothing trainable.
            let below = l > 0
            onRowBlocks { r in
                let d = dx.rows(r.lowerBound, r.count), g = gate.rows(r.lowerBound, r.count), u = up.rows(r.lowerBound, r.count)
                let dg = dGate.rows(r.lowerBound, r.count), du = dUp.rows(r.lowerBound, r.count), dn = dNormed.rows(r.lowerBound, r.count)
                let m = middle.rows(r.lowerBound, r.count)
                // x = middle + act·Wdᵀ + branches, act = silu(gate)·up (recomputed for the branches' dA).
                layer.downProj.weight.multiplyUntransposed(d, into: dg)
                branches.inputGradient(.down, layer: l, adapters: adapters, dOut: dx, dInput: dGate, dLow: a.dLow, part: r)
                TrainingKernels.siluMulBackward(gate: g, up: u, dOut: dg, act: act.rows(r.lowerBound, r.count), dGate: dg, dUp: du)
                // gate, up = rms(middle)·Wᵀ + branches.
                if below {
                    layer.gateProj.weight.multiplyUntransposed(dg, into: dn)
                    layer.upProj.weight.multiplyUntransposed(du, into: dn, beta: 1)
                }
                branches.inputGradient(.gate, layer: l, adapters: adapters, dOut: dGate, dInput: below ? dNormed : nil, dLow: a.dLow, part: r)
                branches.inputGradient(.up, layer: l, adapters: adapters, dOut: dUp, dInput: below ? dNormed : nil, dLow: a.dLow, part: r)
                TrainingKernels.rmsNorm(m, weight: layer.postAttentionNorm, eps: c.rmsNormEps, into: normed.rows(r.lowerBound, r.count),
                                        inverse: column(cache.inverse2, r))
                guard below else { return }
                // middle = input + attention·Woᵀ.
                let dm = dMiddle.rows(r.lowerBound, r.count)
                TrainingKernels.rmsNormBackward(x: m, inverse: column(cache.inverse2, r), weight: layer.postAttentionNorm, dy: dn,
                                                residual: d, into: dm)
                layer.oProj.weight.multiplyUntransposed(dm, into: dAtt.rows(r.lowerBound, r.count))
            }
            onItems(gradientBlocks) { projection, block in
                let (input, dOut) = projection == .down ? (act, dx) : (normed, projection == .gate ? dGate : dUp)
                branches.weightGradients(projection, layer: l, adapters: adapters, input: input, dOut: dOut, low: cache.low,
                                         dLow: a.dLow, gradients: gradients, block: block)
            }
            guard below else { break }
            attention.backward(q: q, k: k, v: v, dOut: dAtt, segments: sequenceRows, dq: dq, dk: dk, dv: dv)
            onRowBlocks { r in
                // q, k, v = rms(input)·Wᵀ (+ bias).
                rope(q: dq, k: dk, block: r, inverse: true)
                let dn = dNormed.rows(r.lowerBound, r.count)
                layer.qProj.weight.multiplyUntransposed(dq.rows(r.lowerBound, r.count), into: dn)
                layer.kProj.weight.multiplyUntransposed(dk.rows(r.lowerBound, r.count), into: dn, beta: 1)
                layer.vProj.weight.multiplyUntransposed(dv.rows(r.lowerBound, r.count), into: dn, beta: 1)
                TrainingKernels.rmsNormBackward(x: view(cache.input, s, h).rows(r.lowerBound, r.count), inverse: column(cache.inverse1, r),
                                                weight: layer.inputNorm, dy: dn, residual: dMiddle.rows(r.lowerBound, r.count),
                                                into: dx.rows(r.lowerBound, r.count))
            }
        }
    }
}
