// LoRABranches: the low-rank branches of a training batch and their products. A branch is one
// (sequence, mixture component): out[rows] += c · (x[rows] Aᵀ) Bᵀ with c = w·α/r, and its
// backward dt = c · dOut B, dx += dt A (by blocks of rows, like the forward), then dB += c · dOutᵀ t
// and dA += dtᵀ x (sums over the branch's rows, split into blocks of output columns instead).
// Branches are per sequence, so a sequence's gradients are the same sums whatever else shares
// its batch (other sequences, other tools), and they accumulate in batch order.
import LLM
import ParaTool
import Tensor

/// The branches of a batch and where each keeps its `t = x Aᵀ` and `dt`.
struct LoRABranches {
    struct Branch {
        /// Batch rows of the branch's sequence.
        var rows: Range<Int>
        /// Index into the batch's adapters.
        var adapter: Int
        /// w · α / r.
        var coefficient: Float
        var rank: Int
        /// Offset of its t (rows × rank) within a projection's section of the layer's buffer.
        var offset: Int
    }

    let branches: [Branch]
    /// Floats of t per projection (the three sections follow one another).
    let sectionFloats: Int

    init(sequences: [TrainingSequence], rows: [Range<Int>], adapters: [ToolAdapter]) {
        var out = [Branch](), offset = 0
        for (s, seq) in sequences.enumerated() {
            for comp in seq.components where comp.weight != 0 {
                let adapter = adapters[comp.adapter]
                out.append(Branch(rows: rows[s], adapter: comp.adapter, coefficient: comp.weight * adapter.scale,
                                  rank: adapter.rank, offset: offset))
                offset += rows[s].count * adapter.rank
            }
        }
        branches = out
        sectionFloats = offset
    }

    /// Floats of t per layer (all three projections).
    var layerFloats: Int { 3 * sectionFloats }

    private func section(_ p: FFNProjection) -> Int {
        switch p {
        case .gate: return 0
        case .up: return sectionFloats
        case .down: return 2 * sectionFloats
        }
    }

    /// The rows of `br` within `part`, and the view of its (rows × rank) values there in `buffer`.
    private func slice(_ br: Branch, _ p: FFNProjection, part: Range<Int>, in buffer: FloatBuffer) -> (Range<Int>, MatrixView)? {
        let rows = br.rows.clamped(to: part)
        guard !rows.isEmpty else { return nil }
        let offset = section(p) + br.offset + (rows.lowerBound - br.rows.lowerBound) * br.rank
        return (rows, MatrixView(buffer, offset: offset, rows: rows.count, cols: br.rank))
    }

    /// Adds every branch on `projection` of `layer` into `output` for the batch rows `part` (within
    /// one sequence), keeping each t in `low`.
    func forward(_ projection: FFNProjection, layer: Int, adapters: [ToolAdapter], input: MatrixView, output: MatrixView,
                 low: FloatBuffer, part: Range<Int>) {
        for br in branches {
            guard let pair = adapters[br.adapter].pair(layer: layer, projection: projection),
                  let (rows, t) = slice(br, projection, part: part, in: low) else { continue }
            BLAS.gemmABt(input.rows(rows.lowerBound, rows.count), pair.a, into: t)
            BLAS.gemmABt(t, pair.b, into: output.rows(rows.lowerBound, rows.count), alpha: br.coefficient, beta: 1)
        }
    }

    /// For the batch rows `part`: dt = c · dOut B into `dLow` and, when `dInput` is given,
    /// dInput += dt A.
    func inputGradient(_ projection: FFNProjection, layer: Int, adapters: [ToolAdapter], dOut: MatrixView, dInput: MatrixView?,
                       dLow: FloatBuffer, part: Range<Int>) {
        for br in branches {
            guard let pair = adapters[br.adapter].pair(layer: layer, projection: projection),
                  let (rows, dt) = slice(br, projection, part: part, in: dLow) else { continue }
            BLAS.gemmAB(dOut.rows(rows.lowerBound, rows.count), pair.b, into: dt, alpha: br.coefficient)
            if let dInput { BLAS.gemmAB(dt, pair.a, into: dInput.rows(rows.lowerBound, rows.count), beta: 1) }
        }
    }

    /// A block of the weight gradients: rows of dB (B's output rows) or columns of dA (A's input
    /// columns).
    enum GradientBlock {
        case b(Range<Int>)
        case a(Range<Int>)
    }

    /// One block of the weight gradients: dB += c · dOutᵀ t or dA += dtᵀ input, summed over each
    /// branch's rows, branch after branch.
    func weightGradients(_ projection: FFNProjection, layer: Int, adapters: [ToolAdapter], input: MatrixView, dOut: MatrixView,
                         low: FloatBuffer, dLow: FloatBuffer, gradients: [AdapterGradients], block: GradientBlock) {
        for br in branches {
            guard let pair = adapters[br.adapter].pair(layer: layer, projection: projection),
                  let ga = gradients[br.adapter].a[layer][projection], let gb = gradients[br.adapter].b[layer][projection],
                  let (rows, t) = slice(br, projection, part: br.rows, in: low),
                  let (_, dt) = slice(br, projection, part: br.rows, in: dLow) else { continue }
            let r = br.rank
            switch block {
            case .b(let out):
                BLAS.gemmAtB(dOut.rows(rows.lowerBound, rows.count).columns(out.lowerBound, out.count), t,
                             into: MatrixView(gb, rows: pair.b.rows, cols: r).rows(out.lowerBound, out.count),
                             alpha: br.coefficient, beta: 1)
            case .a(let inp):
                BLAS.gemmAtB(dt, input.rows(rows.lowerBound, rows.count).columns(inp.lowerBound, inp.count),
                             into: MatrixView(ga, rows: r, cols: pair.a.cols).columns(inp.lowerBound, inp.count), beta: 1)
            }
        }
    }
}
