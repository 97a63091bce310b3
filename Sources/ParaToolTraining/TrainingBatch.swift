// TrainingBatch: what one pass of the LoRA backward takes — sequences, each with its target
// length, its mixture of the batch's adapters and its weight in the loss — and the gradients it
// accumulates into: AdapterGradients, one set per adapter, shaped like the adapter's A and B.
import LLM
import ParaTool
import Tensor

/// One sequence of a training batch.
public struct TrainingSequence: Sendable {
    /// Prompt followed by target tokens.
    public var ids: [Int]
    /// How many tokens at the end are the target (its loss is their mean NLL).
    public var targets: Int
    /// The sequence's mixture: indices into the batch's adapters, with their weights w in
    /// y = Wx + Σ w·(α/r)·B(Ax). Zero weights are skipped.
    public var components: [(adapter: Int, weight: Float)]
    /// The factor of this sequence's loss in the batch's objective (1/batch size for a mean).
    public var lossWeight: Float

    /// A sequence of a batch.
    public init(ids: [Int], targets: Int, components: [(adapter: Int, weight: Float)], lossWeight: Float = 1) {
        self.ids = ids
        self.targets = targets
        self.components = components
        self.lossWeight = lossWeight
    }
}

/// Gradients of one adapter: `a[layer][projection]` (r × in) and `b[layer][projection]` (out × r).
public struct AdapterGradients {
    public var a: [[FFNProjection: FloatBuffer]]
    public var b: [[FFNProjection: FloatBuffer]]

    /// Zero gradients shaped like `adapter`'s pairs.
    public init(zerosLike adapter: ToolAdapter) {
        a = adapter.pairs.map { layer in layer.mapValues { FloatBuffer(count: $0.a.rows * $0.a.cols) } }
        b = adapter.pairs.map { layer in layer.mapValues { FloatBuffer(count: $0.b.rows * $0.b.cols) } }
    }

    /// Sets every gradient to zero (before the next step accumulates into them).
    public func zero() {
        for layer in a { for g in layer.values { g.zero() } }
        for layer in b { for g in layer.values { g.zero() } }
    }

    /// The gradients in `ToolAdapter.parameterBuffers` order.
    public var buffers: [FloatBuffer] {
        zip(a, b).flatMap { la, lb in
            FFNProjection.allCases.compactMap { p in la[p].map { [$0, lb[p]!] } }.flatMap { $0 }
        }
    }
}
