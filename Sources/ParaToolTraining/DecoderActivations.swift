// DecoderActivations: the buffers of one training pass — per layer, what the forward keeps for
// the backward (layer input, q/k/v after RoPE, the residual after attention, gate and up before
// SiLU, both norms' inverse RMS, the LoRA branches' A·x), and the scratch both directions share.
// The normed inputs, the attention output and silu(gate)·up are recomputed or transient rather
// than kept. Buffers grow to the largest batch seen and are reused by later passes.
import LLM
import Tensor

/// Buffers of a training pass, reused from pass to pass.
final class DecoderActivations {
    /// What one layer's forward keeps.
    struct Layer {
        var input, q, k, v, middle, gate, up: FloatBuffer
        var inverse1, inverse2: FloatBuffer
        /// A·x of every LoRA branch, for each projection (see `LoRABranches`).
        var low: FloatBuffer
    }

    let config: ModelConfig
    private(set) var rows = 0
    private(set) var lowFloats = 0
    private(set) var layers: [Layer] = []
    /// Row-shaped scratch: widths hidden, qDim, intermediate, kvDim.
    private(set) var normed = FloatBuffer(count: 0), attention = FloatBuffer(count: 0), act = FloatBuffer(count: 0)
    private(set) var gradient = FloatBuffer(count: 0), dMiddle = FloatBuffer(count: 0), dNormed = FloatBuffer(count: 0)
    private(set) var dAttention = FloatBuffer(count: 0)
    private(set) var dAct = FloatBuffer(count: 0), dUp = FloatBuffer(count: 0)
    private(set) var dq = FloatBuffer(count: 0), dk = FloatBuffer(count: 0), dv = FloatBuffer(count: 0)
    /// The output of the last layer.
    private(set) var output = FloatBuffer(count: 0)
    /// The branches' gradients of A·x in one layer (laid out as `Layer.low`).
    private(set) var dLow = FloatBuffer(count: 0)

    init(config: ModelConfig) { self.config = config }

    /// Makes room for `rows` rows and `lowFloats` floats of branch activations per layer.
    func reserve(rows needed: Int, lowFloats lowNeeded: Int) {
        let c = config
        if needed > rows {
            rows = needed
            func n(_ width: Int) -> FloatBuffer { FloatBuffer(count: needed * width) }
            let low = layers.map(\.low)
            layers = (0..<c.layerCount).map { l in
                Layer(input: n(c.hiddenSize), q: n(c.qDim), k: n(c.kvDim), v: n(c.kvDim), middle: n(c.hiddenSize),
                      gate: n(c.intermediateSize), up: n(c.intermediateSize), inverse1: n(1), inverse2: n(1),
                      low: l < low.count ? low[l] : FloatBuffer(count: 0))
            }
            normed = n(c.hiddenSize)
            attention = n(c.qDim)
            act = n(c.intermediateSize)
            gradient = n(c.hiddenSize)
            dMiddle = n(c.hiddenSize)
            dNormed = n(c.hiddenSize)
            dAttention = n(c.qDim)
            dAct = n(c.intermediateSize)
            dUp = n(c.intermediateSize)
            dq = n(c.qDim)
            dk = n(c.kvDim)
            dv = n(c.kvDim)
            output = n(c.hiddenSize)
        }
        if lowNeeded > lowFloats {
            lowFloats = lowNeeded
            for l in layers.indices { layers[l].low = FloatBuffer(count: lowNeeded) }
            dLow = FloatBuffer(count: lowNeeded)
        }
    }
}
