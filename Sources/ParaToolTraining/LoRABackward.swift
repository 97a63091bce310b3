// LoRABackward: the loss of a token sequence (mean NLL of its last tokens) and its exact
// gradients with respect to every LoRA A and B of a weighted adapter mixture, through the frozen
// Llama/Qwen2 decoder. Activations of one sequence are stored, except the attention probabilities,
// which are recomputed per head in the backward pass: memory grows with layers × tokens ×
// (hidden + intermediate), not with tokens².
import Foundation
import LLM
import ParaTool
import Tensor

/// Gradients of one adapter: `a[layer][projection]` (r × in) and `b[layer][projection]` (out × r).
public struct AdapterGradients {
    public var a: [[FFNProjection: FloatBuffer]]
    public var b: [[FFNProjection: FloatBuffer]]
}

/// Loss and gradients for a mixture of adapters on one sequence.
public struct LoRABackward {
    public let model: LlamaModel

    public init(model: LlamaModel) { self.model = model }

    /// Per-layer activations kept for the backward pass.
    private struct LayerCache {
        var input: FloatBuffer      // h (S × H)
        var normed1: FloatBuffer    // rms(h) (S × H)
        var q: FloatBuffer, k: FloatBuffer, v: FloatBuffer  // after RoPE for q, k (S × qDim / kvDim)
        var attention: FloatBuffer  // S × qDim
        var middle: FloatBuffer     // residual after attention (S × H)
        var normed2: FloatBuffer    // S × H
        var gate: FloatBuffer, up: FloatBuffer, act: FloatBuffer  // S × I
        var low: [[FFNProjection: FloatBuffer]]  // per adapter: t = A·input (S × r)
    }

    /// The mean negative log-likelihood of the last `targets` tokens of `ids` (position t predicts
    /// token t + 1) under `mixture`, and its gradients for each adapter of the mixture (in order).
    public func lossAndGradients(ids: [Int], targets: Int, mixture: Mixture) -> (loss: Float, gradients: [AdapterGradients]) {
        let c = model.config
        let s = ids.count, h = c.hiddenSize, f = c.intermediateSize, qd = c.qDim, kd = c.kvDim, hd = c.headDim
        precondition(targets >= 1 && targets < s, "need 1 ≤ targets < sequence length")
        func mat(_ b: FloatBuffer, _ r: Int, _ cl: Int) -> MatrixView { MatrixView(b, rows: r, cols: cl) }
        func new(_ r: Int, _ cl: Int) -> FloatBuffer { FloatBuffer(count: r * cl) }
        let comps = mixture.components.filter { $0.weight != 0 }

        // Forward, keeping activations.
        var x = new(s, h)
        for (i, t) in ids.enumerated() { Kernels.copyRow(model.embedding.view, t, into: mat(x, s, h), row: i) }
        var caches = [LayerCache]()
        for (l, layer) in model.layers.enumerated() {
            let input = x
            let n1 = new(s, h)
            Kernels.rmsNorm(mat(input, s, h), weight: layer.inputNorm, eps: c.rmsNormEps, into: mat(n1, s, h))
            let q = new(s, qd), k = new(s, kd), v = new(s, kd)
            layer.qProj.apply(mat(n1, s, h), into: mat(q, s, qd))
            layer.kProj.apply(mat(n1, s, h), into: mat(k, s, kd))
            layer.vProj.apply(mat(n1, s, h), into: mat(v, s, kd))
            Kernels.rope(mat(q, s, qd), heads: c.headCount, startPosition: 0, table: model.rope)
            Kernels.rope(mat(k, s, kd), heads: c.kvHeadCount, startPosition: 0, table: model.rope)
            let att = new(s, qd)
            let p = new(s, s)
            for head in 0..<c.headCount {
                attentionProbabilities(q: mat(q, s, qd), k: mat(k, s, kd), head: head, into: mat(p, s, s))
                BLAS.gemmAB(mat(p, s, s), mat(v, s, kd).columns(head / (c.headCount / c.kvHeadCount) * hd, hd),
                            into: mat(att, s, qd).columns(head * hd, hd))
            }
            let middle = FloatBuffer(input.toArray())
            layer.oProj.apply(mat(att, s, qd), into: mat(middle, s, h), accumulate: true)
            let n2 = new(s, h)
            Kernels.rmsNorm(mat(middle, s, h), weight: layer.postAttentionNorm, eps: c.rmsNormEps, into: mat(n2, s, h))
            let gate = new(s, f), up = new(s, f), act = new(s, f)
            layer.gateProj.apply(mat(n2, s, h), into: mat(gate, s, f))
            layer.upProj.apply(mat(n2, s, h), into: mat(up, s, f))
            var low = [[FFNProjection: FloatBuffer]]()
            for comp in comps {
                var t = [FFNProjection: FloatBuffer]()
                for (proj, out) in [(FFNProjection.gate, gate), (.up, up)] {
                    guard let pair = comp.adapter.pair(layer: l, projection: proj) else { continue }
                    let tb = new(s, pair.rank)
                    BLAS.gemmABt(mat(n2, s, h), pair.a, into: mat(tb, s, pair.rank))
                    BLAS.gemmABt(mat(tb, s, pair.rank), pair.b, into: mat(out, s, f), alpha: comp.weight * comp.adapter.scale, beta: 1)
                    t[proj] = tb
                }
                low.append(t)
            }
            for i in 0..<(s * f) { let g = gate[i]; act[i] = g / (1 + expf(-g)) * up[i] }
            x = FloatBuffer(middle.toArray())
            layer.downProj.apply(mat(act, s, f), into: mat(x, s, h), accumulate: true)
            for (ci, comp) in comps.enumerated() {
                guard let pair = comp.adapter.pair(layer: l, projection: .down) else { continue }
                let tb = new(s, pair.rank)
                BLAS.gemmABt(mat(act, s, f), pair.a, into: mat(tb, s, pair.rank))
                BLAS.gemmABt(mat(tb, s, pair.rank), pair.b, into: mat(x, s, h), alpha: comp.weight * comp.adapter.scale, beta: 1)
                low[ci][.down] = tb
            }
            caches.append(LayerCache(input: input, normed1: n1, q: q, k: k, v: v, attention: att, middle: middle,
                                     normed2: n2, gate: gate, up: up, act: act, low: low))
        }
        let xf = new(s, h)
        Kernels.rmsNorm(mat(x, s, h), weight: model.finalNorm, eps: c.rmsNormEps, into: mat(xf, s, h))
        let first = s - 1 - targets
        let rowsT = targets
        let logits = new(rowsT, c.vocabSize)
        BLAS.gemmABt(mat(xf, s, h).rows(first, rowsT), model.lmHead.view, into: mat(logits, rowsT, c.vocabSize))
        var loss: Float = 0
        Kernels.softmaxRows(mat(logits, rowsT, c.vocabSize))
        for r in 0..<rowsT {
            let target = ids[first + r + 1]
            loss -= logf(max(logits[r * c.vocabSize + target], Float.leastNormalMagnitude))
            logits[r * c.vocabSize + target] -= 1
        }
        loss /= Float(targets)
        Kernels.scale(mat(logits, rowsT, c.vocabSize), by: 1 / Float(targets))

        // Backward.
        var grads = comps.map { comp in
            AdapterGradients(
                a: (0..<c.layerCount).map { l in
                    var d = [FFNProjection: FloatBuffer]()
                    for p in comp.adapter.targets { if let pair = comp.adapter.pair(layer: l, projection: p) { d[p] = new(pair.a.rows, pair.a.cols) } }
                    return d
                },
                b: (0..<c.layerCount).map { l in
                    var d = [FFNProjection: FloatBuffer]()
                    for p in comp.adapter.targets { if let pair = comp.adapter.pair(layer: l, projection: p) { d[p] = new(pair.b.rows, pair.b.cols) } }
                    return d
                })
        }
        let dxf = new(s, h)
        BLAS.gemmAB(mat(logits, rowsT, c.vocabSize), model.lmHead.view, into: mat(dxf, s, h).rows(first, rowsT))
        var dx = new(s, h)
        rmsBackward(x: mat(x, s, h), weight: model.finalNorm, eps: c.rmsNormEps, dy: mat(dxf, s, h), into: mat(dx, s, h))

        for l in stride(from: c.layerCount - 1, through: 0, by: -1) {
            let layer = model.layers[l], cache = caches[l]
            // x = middle + act·Wdᵀ + Σ c_i B_d (A_d act)
            let dact = new(s, f)
            BLAS.gemmAB(mat(dx, s, h), layer.downProj.weight.view, into: mat(dact, s, f))
            loraBackward(.down, layer: l, comps: comps, cache: cache, input: mat(cache.act, s, f), dOut: mat(dx, s, h),
                         dInput: mat(dact, s, f), grads: &grads, rows: s)
            let dgate = new(s, f), dup = new(s, f)
            for i in 0..<(s * f) {
                let g = cache.gate[i], sg = 1 / (1 + expf(-g)), silu = g * sg
                dup[i] = dact[i] * silu
                dgate[i] = dact[i] * cache.up[i] * (sg * (1 + g * (1 - sg)))
            }
            let dn2 = new(s, h)
            BLAS.gemmAB(mat(dgate, s, f), layer.gateProj.weight.view, into: mat(dn2, s, h))
            BLAS.gemmAB(mat(dup, s, f), layer.upProj.weight.view, into: mat(dn2, s, h), beta: 1)
            loraBackward(.gate, layer: l, comps: comps, cache: cache, input: mat(cache.normed2, s, h), dOut: mat(dgate, s, f),
                         dInput: mat(dn2, s, h), grads: &grads, rows: s)
            loraBackward(.up, layer: l, comps: comps, cache: cache, input: mat(cache.normed2, s, h), dOut: mat(dup, s, f),
                         dInput: mat(dn2, s, h), grads: &grads, rows: s)
            let dmid = FloatBuffer(dx.toArray())
            let tmp = new(s, h)
            rmsBackward(x: mat(cache.middle, s, h), weight: layer.postAttentionNorm, eps: c.rmsNormEps, dy: mat(dn2, s, h), into: mat(tmp, s, h))
            Kernels.add(mat(tmp, s, h), into: mat(dmid, s, h))
            // middle = input + att·Woᵀ
            let datt = new(s, qd)
            BLAS.gemmAB(mat(dmid, s, h), layer.oProj.weight.view, into: mat(datt, s, qd))
            let dq = new(s, qd), dk = new(s, kd), dv = new(s, kd)
            let group = c.headCount / c.kvHeadCount, scale = 1 / Float(hd).squareRoot()
            let probs = new(s, s), dp = new(s, s)
            for head in 0..<c.headCount {
                let g = head / group
                // Recomputed rather than stored: S² floats per head and layer would dominate memory.
                let p = mat(probs, s, s)
                attentionProbabilities(q: mat(cache.q, s, qd), k: mat(cache.k, s, kd), head: head, into: p)
                BLAS.gemmABt(mat(datt, s, qd).columns(head * hd, hd), mat(cache.v, s, kd).columns(g * hd, hd), into: mat(dp, s, s))
                BLAS.gemmAtB(p, mat(datt, s, qd).columns(head * hd, hd), into: mat(dv, s, kd).columns(g * hd, hd), beta: 1)
                for r in 0..<s {
                    var dot: Float = 0
                    for j in 0..<s { dot += dp[r * s + j] * p[r, j] }
                    for j in 0..<s { dp[r * s + j] = p[r, j] * (dp[r * s + j] - dot) }
                }
                BLAS.gemmAB(mat(dp, s, s), mat(cache.k, s, kd).columns(g * hd, hd), into: mat(dq, s, qd).columns(head * hd, hd), alpha: scale)
                BLAS.gemmAtB(mat(dp, s, s), mat(cache.q, s, qd).columns(head * hd, hd), into: mat(dk, s, kd).columns(g * hd, hd),
                             alpha: scale, beta: 1)
            }
            ropeBackward(mat(dq, s, qd), heads: c.headCount)
            ropeBackward(mat(dk, s, kd), heads: c.kvHeadCount)
            let dn1 = new(s, h)
            BLAS.gemmAB(mat(dq, s, qd), layer.qProj.weight.view, into: mat(dn1, s, h))
            BLAS.gemmAB(mat(dk, s, kd), layer.kProj.weight.view, into: mat(dn1, s, h), beta: 1)
            BLAS.gemmAB(mat(dv, s, kd), layer.vProj.weight.view, into: mat(dn1, s, h), beta: 1)
            let dinput = FloatBuffer(dmid.toArray())
            rmsBackward(x: mat(cache.input, s, h), weight: layer.inputNorm, eps: c.rmsNormEps, dy: mat(dn1, s, h), into: mat(tmp, s, h))
            Kernels.add(mat(tmp, s, h), into: mat(dinput, s, h))
            dx = dinput
        }
        return (loss, grads)
    }

    /// Causal softmax(q_h k_gᵀ / √d) of one head (rows: queries, columns: keys).
    private func attentionProbabilities(q: MatrixView, k: MatrixView, head: Int, into p: MatrixView) {
        let c = model.config, hd = c.headDim, g = head / (c.headCount / c.kvHeadCount), s = p.rows
        BLAS.gemmABt(q.columns(head * hd, hd), k.columns(g * hd, hd), into: p, alpha: 1 / Float(hd).squareRoot())
        for r in 0..<s {
            for j in (r + 1)..<s { p[r, j] = -.infinity }
        }
        Kernels.softmaxRows(p)
    }

    /// For `out = … + Σ_i c_i B_i (A_i input)`: accumulates dB_i = c_i dOutᵀ t_i, dA_i = (c_i dOut B_i)ᵀ input
    /// and dInput += c_i (dOut B_i) A_i.
    private func loraBackward(_ proj: FFNProjection, layer: Int, comps: [(adapter: ToolAdapter, weight: Float)], cache: LayerCache,
                              input: MatrixView, dOut: MatrixView, dInput: MatrixView, grads: inout [AdapterGradients], rows: Int) {
        for (ci, comp) in comps.enumerated() {
            guard let pair = comp.adapter.pair(layer: layer, projection: proj), let t = cache.low[ci][proj] else { continue }
            let coef = comp.weight * comp.adapter.scale
            let r = pair.rank
            BLAS.gemmAtB(dOut, MatrixView(t, rows: rows, cols: r), into: MatrixView(grads[ci].b[layer][proj]!, rows: pair.b.rows, cols: r),
                         alpha: coef, beta: 1)
            let dt = FloatBuffer(count: rows * r)
            BLAS.gemmAB(dOut, pair.b, into: MatrixView(dt, rows: rows, cols: r), alpha: coef)
            BLAS.gemmAtB(MatrixView(dt, rows: rows, cols: r), input, into: MatrixView(grads[ci].a[layer][proj]!, rows: r, cols: pair.a.cols),
                         beta: 1)
            BLAS.gemmAB(MatrixView(dt, rows: rows, cols: r), pair.a, into: dInput, beta: 1)
        }
    }

    /// y = x · inv · w with inv = 1/√(mean x² + eps): dx = inv·u − inv³·x·(Σ u·x)/n, u = dy·w.
    private func rmsBackward(x: MatrixView, weight: FloatBuffer, eps: Float, dy: MatrixView, into dx: MatrixView) {
        let n = x.cols
        for r in 0..<x.rows {
            var ss: Float = 0, ux: Float = 0
            for i in 0..<n { ss += x[r, i] * x[r, i] }
            let inv = 1 / (ss / Float(n) + eps).squareRoot()
            for i in 0..<n { ux += dy[r, i] * weight[i] * x[r, i] }
            let k = inv * inv * inv * ux / Float(n)
            for i in 0..<n { dx[r, i] = inv * dy[r, i] * weight[i] - k * x[r, i] }
        }
    }

    /// The transpose of RoPE: rotate each pair back by its angle.
    private func ropeBackward(_ d: MatrixView, heads: Int) {
        let hd = model.rope.headDim, half = hd / 2
        for r in 0..<d.rows {
            for h in 0..<heads {
                for i in 0..<half {
                    let angle = Float(r) * model.rope.inverseFrequencies[i]
                    let cs = cosf(angle), sn = sinf(angle)
                    let a = d[r, h * hd + i], b = d[r, h * hd + i + half]
                    d[r, h * hd + i] = a * cs + b * sn
                    d[r, h * hd + i + half] = b * cs - a * sn
                }
            }
        }
    }
}
