// TrainingKernels: the row and element kernels of training (CKernels/rowkernels.c: vectorised
// for AVX-512, AVX2 or portable code) on MatrixViews — RMSNorm keeping its inverse norms and its
// backward, rotary embedding from a position table and its transpose, the SiLU-gated product and
// its backward, causal softmax rows and their backward, softmax cross-entropy and the AdamW
// update. Every call runs on the calling thread: callers split rows over threads themselves.
import CKernels

/// Training's row kernels on `MatrixView`s.
public enum TrainingKernels {
    /// `out[r] = x[r] · inv[r] · weight` with `inv[r] = 1/√(mean(x[r]²) + eps)`, which is written
    /// to `inverse` (a contiguous column: rows × 1; the backward needs it). `out` may alias `x`.
    public static func rmsNorm(_ x: MatrixView, weight: FloatBuffer, eps: Float, into out: MatrixView, inverse: MatrixView) {
        precondition(x.rows == out.rows && x.cols == out.cols && weight.count == x.cols && isColumn(inverse, x.rows),
                     "rmsNorm shape mismatch")
        precondition(!out.buffer.isMapped && !inverse.buffer.isMapped, "write to a read-only mapped buffer")
        defer { withExtendedLifetime((x.buffer, weight, out.buffer, inverse.buffer)) {} }
        pt_rms_norm_rows(x.pointer, x.stride, weight.base, eps, x.rows, x.cols, out.pointer, out.stride, inverse.pointer)
    }

    /// The backward of `rmsNorm(x, weight:, into:, inverse:)`: `dx = residual + ∂/∂x` for the
    /// upstream gradient `dy` (`residual` nil: nothing added). `residual` may be `dx` itself.
    public static func rmsNormBackward(x: MatrixView, inverse: MatrixView, weight: FloatBuffer, dy: MatrixView,
                                       residual: MatrixView?, into dx: MatrixView) {
        precondition(x.rows == dy.rows && x.cols == dy.cols && dx.rows == x.rows && dx.cols == x.cols
                     && weight.count == x.cols && isColumn(inverse, x.rows), "rmsNormBackward shape mismatch")
        precondition(residual.map { $0.rows == x.rows && $0.cols == x.cols } ?? true, "rmsNormBackward residual shape")
        precondition(!dx.buffer.isMapped, "write to a read-only mapped buffer")
        defer { withExtendedLifetime((x.buffer, inverse.buffer, weight, dy.buffer, residual?.buffer, dx.buffer)) {} }
        pt_rms_norm_backward_rows(x.pointer, x.stride, inverse.pointer, weight.base, dy.pointer, dy.stride,
                                  residual.map { UnsafePointer($0.pointer) }, residual?.stride ?? 0, x.rows, x.cols,
                                  dx.pointer, dx.stride)
    }

    private static func isColumn(_ v: MatrixView, _ rows: Int) -> Bool { v.rows == rows && v.cols == 1 && (v.stride == 1 || rows <= 1) }

    /// Rotary embedding of `x` (rows × heads·headDim), row r at position `startPosition + r`, with
    /// the angles of `table`; `inverse` applies the transpose (the backward).
    public static func rope(_ x: MatrixView, heads: Int, startPosition: Int, table: RopePositions, inverse: Bool = false) {
        let half = table.headDim / 2
        precondition(x.cols == heads * table.headDim && startPosition >= 0 && startPosition + x.rows <= table.positions,
                     "rope shape mismatch or positions beyond the table")
        precondition(!x.buffer.isMapped, "write to a read-only mapped buffer")
        defer { withExtendedLifetime((x.buffer, table.cos, table.sin)) {} }
        pt_rope_rows(x.pointer, x.stride, x.rows, heads, table.headDim, table.cos.base + startPosition * half,
                     table.sin.base + startPosition * half, half, inverse ? 1 : 0)
    }

    /// `out = silu(gate) · up` element-wise (contiguous views of one shape; `out` may alias either).
    public static func siluMul(gate: MatrixView, up: MatrixView, into out: MatrixView) {
        let n = contiguousCount(gate, up, out)
        precondition(!out.buffer.isMapped, "write to a read-only mapped buffer")
        defer { withExtendedLifetime((gate.buffer, up.buffer, out.buffer)) {} }
        pt_silu_mul(gate.pointer, up.pointer, n, out.pointer)
    }

    /// The backward of `siluMul` for the upstream gradient `dOut`: `dGate`, `dUp` (either may be
    /// `dOut` itself) and, when given, `act = silu(gate) · up` again.
    public static func siluMulBackward(gate: MatrixView, up: MatrixView, dOut: MatrixView, act: MatrixView?,
                                       dGate: MatrixView, dUp: MatrixView) {
        let n = contiguousCount(gate, up, dOut, dGate, dUp)
        precondition(act.map { $0.rows * $0.cols == n && $0.stride == $0.cols } ?? true, "siluMulBackward act shape")
        precondition(!dGate.buffer.isMapped && !dUp.buffer.isMapped && !(act?.buffer.isMapped ?? false), "write to a read-only mapped buffer")
        defer { withExtendedLifetime((gate.buffer, up.buffer, dOut.buffer, act?.buffer, dGate.buffer, dUp.buffer)) {} }
        pt_silu_mul_backward(gate.pointer, up.pointer, dOut.pointer, n, act?.pointer, dGate.pointer, dUp.pointer)
    }

    /// In place: row r of `p` becomes the softmax of its first
    /// `visible + r` entries, zero beyond (a block of causal attention scores).
    public static func causalSoftmax(_ p: MatrixView, visible: Int) {
        precondition(visible >= 1 && !p.buffer.isMapped, "causalSoftmax needs a visible key and a writable view")
        defer { withExtendedLifetime(p.buffer) {} }
        pt_softmax_prefix_rows(p.pointer, p.stride, p.rows, visible, p.cols)
    }

    /// In place: the backward of `causalSoftmax` — `dp` (∂L/∂p) becomes
    /// ∂L/∂scores given the probabilities `p`.
    public static func causalSoftmaxBackward(p: MatrixView, dp: MatrixView, visible: Int) {
        precondition(p.rows == dp.rows && p.cols == dp.cols && visible >= 1 && !dp.buffer.isMapped, "causalSoftmaxBackward shape mismatch")
        defer { withExtendedLifetime((p.buffer, dp.buffer)) {} }
        pt_softmax_backward_prefix_rows(p.pointer, p.stride, dp.pointer, dp.stride, p.rows, visible, p.cols)
    }

    /// Softmax cross-entropy of row `row` of `logits` against `target`, in place: returns
    /// −log softmax(row)[target] and leaves `scale · (softmax(row) − onehot(target))` in the row.
    public static func softmaxCrossEntropy(_ logits: MatrixView, row: Int, target: Int, scale: Float) -> Float {
        precondition(row >= 0 && row < logits.rows && target >= 0 && target < logits.cols && !logits.buffer.isMapped,
                     "softmaxCrossEntropy out of range")
        defer { withExtendedLifetime(logits.buffer) {} }
        return pt_softmax_cross_entropy(logits.pointer + row * logits.stride, logits.cols, target, scale)
    }

    /// Σ g² over the buffer, accumulated in double precision.
    public static func sumOfSquares(_ g: FloatBuffer) -> Double {
        defer { withExtendedLifetime(g) {} }
        return pt_sum_squares(g.base, g.count)
    }

    /// Settings of one AdamW step shared by every tensor of the step.
    public struct AdamWStep: Sendable {
        /// Factor applied to every gradient (global-norm clipping; 1 for none).
        public var clip: Float
        public var beta1: Float, beta2: Float
        /// Bias corrections 1 − β1^t and 1 − β2^t.
        public var correction1: Float, correction2: Float
        public var epsilon: Float
        public var learningRate: Float
        public var weightDecay: Float

        /// A step's settings.
        public init(clip: Float, beta1: Float, beta2: Float, correction1: Float, correction2: Float, epsilon: Float,
                    learningRate: Float, weightDecay: Float) {
            self.clip = clip
            self.beta1 = beta1
            self.beta2 = beta2
            self.correction1 = correction1
            self.correction2 = correction2
            self.epsilon = epsilon
            self.learningRate = learningRate
            self.weightDecay = weightDecay
        }
    }

    /// One AdamW step on `parameters` in place with `gradients` and the moments `m`, `v` (all
    /// of one size): m = β1·m + (1−β1)·g·clip, v = β2·v + (1−β2)·(g·clip)²,
    /// p −= lr · ((m/c1) / (√(v/c2) + ε) + decay · p).
    public static func adamW(_ parameters: FloatBuffer, gradients: FloatBuffer, m: FloatBuffer, v: FloatBuffer, step s: AdamWStep) {
        let n = parameters.count
        precondition(gradients.count == n && m.count == n && v.count == n, "adamW size mismatch")
        precondition(!parameters.isMapped && !m.isMapped && !v.isMapped, "write to a read-only mapped buffer")
        defer { withExtendedLifetime((parameters, gradients, m, v)) {} }
        pt_adamw(parameters.base, gradients.base, m.base, v.base, n, s.clip, s.beta1, s.beta2, s.correction1, s.correction2,
                 s.epsilon, s.learningRate, s.weightDecay)
    }

    /// The element count of contiguous views of one shape.
    private static func contiguousCount(_ views: MatrixView...) -> Int {
        let first = views[0]
        precondition(views.allSatisfy { $0.rows == first.rows && $0.cols == first.cols && $0.stride == $0.cols },
                     "element-wise kernels need contiguous views of one shape")
        return first.rows * first.cols
    }

    /// The instruction set of these kernels on this CPU: "avx512", "avx2" or "portable".
    public static var instructionSet: String { ["portable", "avx2", "avx512"][Int(pt_row_kernels_isa())] }

    /// Runs `body` with the kernels forced to one instruction-set variant (tests cover every
    /// variant on one machine); false (body not run) when this CPU lacks it. Not thread-safe:
    /// nothing else may run these kernels meanwhile.
    static func withVariant(_ variant: MatVec.Variant, _ body: () -> Void) -> Bool {
        guard pt_row_kernels_force_isa(variant.rawValue) == 0 else { return false }
        defer { pt_row_kernels_force_isa(-1) }
        body()
        return true
    }
}

/// cos and sin of every rotary angle for positions `0..<positions` (rows of headDim/2), so the
/// training kernels read angles instead of computing them per element.
public struct RopePositions: Sendable {
    /// The rotated head dimension.
    public let headDim: Int
    /// Positions covered.
    public let positions: Int
    let cos: FloatBuffer
    let sin: FloatBuffer

    /// The angles of `table` for positions `0..<positions`, computed as `RopeTable` does.
    public init(_ table: RopeTable, positions: Int) {
        let half = table.headDim / 2
        headDim = table.headDim
        self.positions = positions
        cos = FloatBuffer(count: positions * half)
        sin = FloatBuffer(count: positions * half)
        for p in 0..<positions { table.angles(position: p, cos: cos.base + p * half, sin: sin.base + p * half) }
    }
}
