// AdamW: Adam with bias correction and decoupled weight decay, global gradient-norm clipping,
// and a learning rate with linear warm-up then cosine decay. Updates parameters in place.
import Foundation
import LLM
import Tensor

/// Settings of the optimiser and its schedule.
public struct AdamWConfig: Sendable, Codable, Equatable {
    public var learningRate: Float = 1e-3
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    /// Decoupled weight decay (applied as p -= lr · decay · p).
    public var weightDecay: Float = 0
    /// Clip the global L2 norm of the gradients to this value (nil: no clipping).
    public var clipNorm: Float? = 1
    /// Steps of linear warm-up from 0 to `learningRate`.
    public var warmupSteps = 0
    /// Total steps; after warm-up the rate follows a cosine down to `minimumFactor · learningRate`.
    public var totalSteps = 1000
    public var minimumFactor: Float = 0.1

    public init() {}
}

/// The optimiser state for a fixed list of parameter buffers.
public final class AdamW {
    public let config: AdamWConfig
    public let parameters: [FloatBuffer]
    private var m: [FloatBuffer]
    private var v: [FloatBuffer]
    /// Steps taken so far.
    public private(set) var step = 0

    public init(parameters: [FloatBuffer], config: AdamWConfig) {
        precondition(parameters.allSatisfy { !$0.isMapped }, "AdamW needs owned, writable parameters (see ToolAdapter.ownedCopy)")
        self.parameters = parameters
        self.config = config
        m = parameters.map { FloatBuffer(count: $0.count) }
        v = parameters.map { FloatBuffer(count: $0.count) }
    }

    /// The first and second moments, one array per parameter buffer (for checkpoints).
    public var moments: (m: [[Float]], v: [[Float]]) { (m.map { $0.toArray() }, v.map { $0.toArray() }) }

    /// Restores the state a checkpoint saved: the step count and both moments (same shapes as
    /// the parameters). The parameters themselves are restored by the caller.
    public func restore(step: Int, m: [[Float]], v: [[Float]]) {
        precondition(m.count == parameters.count && v.count == parameters.count
                     && zip(m, parameters).allSatisfy { $0.count == $1.count } && zip(v, parameters).allSatisfy { $0.count == $1.count },
                     "optimiser state does not match the parameters")
        self.step = step
        for k in parameters.indices {
            self.m[k].write(m[k])
            self.v[k].write(v[k])
        }
    }

    /// The learning rate used at step `t` (1-based).
    public func learningRate(at t: Int) -> Float {
        let c = config
        if c.warmupSteps > 0 && t <= c.warmupSteps { return c.learningRate * Float(t) / Float(c.warmupSteps) }
        let span = max(1, c.totalSteps - c.warmupSteps)
        let progress = min(1, Float(t - c.warmupSteps) / Float(span))
        let cosine = 0.5 * (1 + cosf(Float.pi * progress))
        return c.learningRate * (c.minimumFactor + (1 - c.minimumFactor) * cosine)
    }

    /// Applies one update with `gradients` (same order and sizes as `parameters`). Returns the
    /// gradients' global norm before clipping.
    @discardableResult
    public func update(gradients: [FloatBuffer]) -> Float {
        precondition(gradients.count == parameters.count && zip(gradients, parameters).allSatisfy { $0.count == $1.count },
                     "gradients do not match the parameters")
        let squared = gradients.reduce(0.0) { $0 + TrainingKernels.sumOfSquares($1) }
        let norm = Float(squared.squareRoot())
        let clip: Float = config.clipNorm.map { norm > $0 ? $0 / norm : 1 } ?? 1
        step += 1
        let settings = TrainingKernels.AdamWStep(
            clip: clip, beta1: config.beta1, beta2: config.beta2, correction1: 1 - powf(config.beta1, Float(step)),
            correction2: 1 - powf(config.beta2, Float(step)), epsilon: config.epsilon, learningRate: learningRate(at: step),
            weightDecay: config.weightDecay)
        for (k, p) in parameters.enumerated() {
            TrainingKernels.adamW(p, gradients: gradients[k], m: m[k], v: v[k], step: settings)
        }
        return norm
    }
}
