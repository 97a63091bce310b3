// AdapterStack: the weights of an ordered set of adapters laid end to end, layer by layer — the
// A matrices of gate_proj and up_proj as one (2R × hidden) matrix, each projection's Bᵀ as one
// (R × out) matrix, R = Σ r_i — so that a prefill applies a whole mixture to an FFN linear with
// two sgemms and one pass over the output instead of two small sgemms per adapter. A copy of the
// adapters' weights, built once per adapter set and kept by AdapterMixture.
import Dispatch
import LLM
import Synchronization
import Tensor

/// The stacked weights of one ordered adapter set (see the file comment).
final class AdapterStack {
    /// The adapters, in stacking order (held, so their identities stay unique while cached).
    let adapters: [ToolAdapter]
    /// R: the summed rank of the set.
    let rank: Int
    /// The first stacked row of each adapter (the rank dimension).
    let offsets: [Int]
    /// One layer's stacked matrices.
    struct Layer {
        /// [A_gate,1; …; A_gate,N; A_up,1; …; A_up,N]: 2R × hidden.
        let aGateUp: MatrixView
        /// [B_gate,iᵀ]: R × intermediate.
        let btGate: MatrixView
        /// [B_up,iᵀ]: R × intermediate.
        let btUp: MatrixView
        /// [A_down,i]: R × intermediate.
        let aDown: MatrixView
        /// [B_down,iᵀ]: R × hidden.
        let btDown: MatrixView
    }
    let layers: [Layer]

    /// Bytes of the copy (`bytes(of: adapters)`).
    let bytes: Int

    /// Bytes a stack of `adapters` would take (their A and B on gate/up/down of every layer).
    static func bytes(of adapters: [ToolAdapter]) -> Int {
        adapters.reduce(0) { total, adapter in
            total + adapter.pairs.reduce(0) { layer, pairs in
                layer + 4 * pairs.values.reduce(0) { $0 + $1.aWeights.rows * $1.aWeights.cols + $1.bWeights.rows * $1.bWeights.cols }
            }
        }
    }

    /// Stacks `adapters`, or nil when one of them lacks a pair on some FFN linear of some layer or
    /// has a pair whose rank is not its own (such sets take the per-adapter path).
    init?(_ adapters: [ToolAdapter], layerCount: Int) {
        guard !adapters.isEmpty else { return nil }
        for adapter in adapters {
            for layer in 0..<layerCount {
                for projection in FFNProjection.allCases {
                    guard let pair = adapter.pair(layer: layer, projection: projection), pair.rank == adapter.rank else { return nil }
                }
            }
        }
        let first = adapters[0].pair(layer: 0, projection: .gate)!
        let hidden = first.aWeights.cols, intermediate = first.bWeights.rows
        var offsets = [Int](), rank = 0
        for adapter in adapters {
            offsets.append(rank)
            rank += adapter.rank
        }
        self.adapters = adapters
        self.rank = rank
        self.offsets = offsets
        bytes = Self.bytes(of: adapters)
        // Allocating (zero-filling) and copying are memory-bound: layers are built on every core.
        let built = Mutex<[Layer?]>(Array(repeating: nil, count: layerCount))
        DispatchQueue.concurrentPerform(iterations: layerCount) { [offsets, rank] layer in
            func matrix(_ rows: Int, _ cols: Int) -> MatrixView { MatrixView(FloatBuffer(count: rows * cols), rows: rows, cols: cols) }
            let stacked = Layer(aGateUp: matrix(2 * rank, hidden), btGate: matrix(rank, intermediate), btUp: matrix(rank, intermediate),
                                aDown: matrix(rank, intermediate), btDown: matrix(rank, hidden))
            for (adapter, offset) in zip(adapters, offsets) {
                let r = adapter.rank
                let gate = adapter.pair(layer: layer, projection: .gate)!, up = adapter.pair(layer: layer, projection: .up)!
                let down = adapter.pair(layer: layer, projection: .down)!
                // Stored F32 or BF16, expanded to float32 here; B goes in transposed.
                let b = matrix(intermediate, r)
                gate.aWeights.dequantize(rows: 0..<r, into: stacked.aGateUp.rows(offset, r))
                up.aWeights.dequantize(rows: 0..<r, into: stacked.aGateUp.rows(rank + offset, r))
                gate.bWeights.dequantize(rows: 0..<intermediate, into: b)
                Kernels.transpose(b, into: stacked.btGate.rows(offset, r))
                up.bWeights.dequantize(rows: 0..<intermediate, into: b)
                Kernels.transpose(b, into: stacked.btUp.rows(offset, r))
                down.aWeights.dequantize(rows: 0..<r, into: stacked.aDown.rows(offset, r))
                let bDown = matrix(hidden, r)
                down.bWeights.dequantize(rows: 0..<hidden, into: bDown)
                Kernels.transpose(bDown, into: stacked.btDown.rows(offset, r))
            }
            built.withLock { $0[layer] = stacked }
        }
        layers = built.withLock { $0.map { $0! } }
    }

    /// True when this stack holds exactly `adapters`, in that order.
    func holds(_ adapters: [ToolAdapter]) -> Bool {
        adapters.count == self.adapters.count && zip(adapters, self.adapters).allSatisfy { $0 === $1 }
    }
}
