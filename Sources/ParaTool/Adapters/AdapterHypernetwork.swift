// AdapterHypernetwork: a tool's whole adapter written in one pass from its document's encoding —
// the Text-to-LoRA idea (Sakana AI, 2025) for tools. One set of weights serves every layer and
// projection, told apart by learned embeddings:
//   x̂       = (d − μ) / σ                       the document's encoding, standardised with the
//                                               training tools' statistics (fixed at creation)
//   z       = tanh(W₁ x̂ + b₁)                   the tool's code (T values)
//   c_{l,p} = relu(W₂ [z; e_l; e_p] + b₂)       a code per layer l and projection p (C values)
//   θ_{l,p} = θ⁰_{l,p} + H_p c_{l,p}            the pair's A (r × in) then B (out × r), flattened
// θ⁰ is a shared adapter (a Global adapter trained on the generator's training tools alone) and
// H_p starts at zero, so an untrained generator writes θ⁰ exactly and training only adds what a
// tool's document predicts about its own adapter. Generation is one product per projection
// (layers × C times C × r·(in+out)); the result is an ordinary float32 adapter over three owned
// buffers, stored and served like any other. The parameters and the shape are saved as one
// safetensors file (shape and provenance in its metadata). Gradients and training live in
// ParaToolTraining (HypernetworkTraining.swift).
import Foundation
import LLM
import Tensor

/// The sizes of an `AdapterHypernetwork` and of the adapters it writes.
public struct AdapterHypernetworkShape: Sendable, Codable, Equatable {
    /// Width of the document encoding d (the gate encoder's hidden size).
    public var encodingWidth: Int
    /// Width T of the tool's code z.
    public var codeWidth: Int
    /// Widths of the layer and projection embeddings e_l, e_p.
    public var layerEmbeddingWidth: Int
    public var projectionEmbeddingWidth: Int
    /// Width C of a layer-and-projection code c_{l,p}.
    public var hiddenWidth: Int
    /// The written adapters: layers, rank, alpha, projections (PEFT names) and the model's sizes.
    public var layers: Int
    public var rank: Int
    public var alpha: Float
    public var targets: [String]
    public var hiddenSize: Int
    public var intermediateSize: Int

    public init(encodingWidth: Int, codeWidth: Int = 64, layerEmbeddingWidth: Int = 32, projectionEmbeddingWidth: Int = 8,
                hiddenWidth: Int = 32, layers: Int, rank: Int, alpha: Float, targets: [FFNProjection],
                hiddenSize: Int, intermediateSize: Int) {
        self.encodingWidth = encodingWidth
        self.codeWidth = codeWidth
        self.layerEmbeddingWidth = layerEmbeddingWidth
        self.projectionEmbeddingWidth = projectionEmbeddingWidth
        self.hiddenWidth = hiddenWidth
        self.layers = layers
        self.rank = rank
        self.alpha = alpha
        self.targets = targets.map(\.rawValue)
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
    }

    /// The projections, in `targets` order.
    public var projections: [FFNProjection] { targets.compactMap(FFNProjection.init(rawValue:)) }
    /// Input and output sizes of `projection`.
    public func sizes(_ projection: FFNProjection) -> (input: Int, output: Int) {
        projection == .down ? (intermediateSize, hiddenSize) : (hiddenSize, intermediateSize)
    }
    /// Values of one pair of `projection`: A (r × in) then B (out × r).
    public func pairWidth(_ projection: FFNProjection) -> Int {
        let (i, o) = sizes(projection)
        return rank * (i + o)
    }
    /// Width of the input [z; e_l; e_p] of W₂.
    public var mixedWidth: Int { codeWidth + layerEmbeddingWidth + projectionEmbeddingWidth }

    /// Checks that the sizes are usable (positive, known projections).
    func validate() throws {
        guard encodingWidth > 0, codeWidth > 0, layerEmbeddingWidth >= 0, projectionEmbeddingWidth >= 0, hiddenWidth > 0,
              layers > 0, rank > 0, alpha.isFinite, hiddenSize > 0, intermediateSize > 0 else {
            throw ToolFormatError("hypernetwork shape has a size that is not positive: \(self)")
        }
        guard !targets.isEmpty, projections.count == targets.count, Set(targets).count == targets.count else {
            throw ToolFormatError("hypernetwork targets \(targets) are not distinct FFN projections (gate_proj, up_proj, down_proj)")
        }
    }
}

/// Where a generator came from, saved beside its weights (and copied into what it writes).
public struct AdapterHypernetworkProvenance: Sendable, Codable, Equatable {
    /// The generator's version (e.g. `g000300`: its training step).
    public var version: String
    /// Its training tools, and the tools held out from it (never trained on).
    public var trainingTools: [String]
    public var heldOutTools: [String]
    /// The shared adapter θ⁰: its name and how it was made.
    public var shared: String

    public init(version: String, trainingTools: [String], heldOutTools: [String], shared: String) {
        self.version = version
        self.trainingTools = trainingTools
        self.heldOutTools = heldOutTools
        self.shared = shared
    }
}

/// What a forward pass computed for one document (kept for the backward pass).
public struct HypernetworkActivations {
    /// The standardised encoding x̂ and the tool's code z.
    public let standardized: [Float]
    public let code: [Float]
    /// Per projection (in `targets` order): the rows [z; e_l; e_p] (layers × mixedWidth), the
    /// pre-activations W₂[…] + b₂ and the codes c (layers × hiddenWidth).
    public let mixed: [MatrixView]
    public let preActivations: [MatrixView]
    public let codes: [MatrixView]
}

/// The generator (see the file's header). Its parameters are owned float32 buffers, updated in
/// place by training; generation only reads them.
public final class AdapterHypernetwork: @unchecked Sendable {
    public let shape: AdapterHypernetworkShape
    public var provenance: AdapterHypernetworkProvenance
    /// μ and 1/σ of the training tools' encodings (not trained).
    public let inputMean: FloatBuffer
    public let inputScale: FloatBuffer
    /// W₁ (T × E), b₁ (T).
    public let w1: FloatBuffer
    public let b1: FloatBuffer
    /// e_l (layers × Le) and e_p (projections × Pe).
    public let layerEmbeddings: FloatBuffer
    public let projectionEmbeddings: FloatBuffer
    /// W₂ (C × (T + Le + Pe)), b₂ (C).
    public let w2: FloatBuffer
    public let b2: FloatBuffer
    /// H_p (pairWidth × C), per projection in `targets` order.
    public let heads: [FloatBuffer]
    /// θ⁰ per projection: layers × pairWidth (row l: A then B of layer l's pair).
    public let shared: [FloatBuffer]

    /// The trained parameters in a fixed order (what optimisers and checkpoints see): W₁, b₁, e_l,
    /// e_p, W₂, b₂, then every H_p. θ⁰ and the input statistics are fixed.
    public var trainableBuffers: [FloatBuffer] { [w1, b1, layerEmbeddings, projectionEmbeddings, w2, b2] + heads }

    private init(shape: AdapterHypernetworkShape, provenance: AdapterHypernetworkProvenance, buffers: [String: FloatBuffer]) {
        self.shape = shape
        self.provenance = provenance
        inputMean = buffers["input_mean"]!
        inputScale = buffers["input_scale"]!
        w1 = buffers["w1"]!
        b1 = buffers["b1"]!
        layerEmbeddings = buffers["layer_embeddings"]!
        projectionEmbeddings = buffers["projection_embeddings"]!
        w2 = buffers["w2"]!
        b2 = buffers["b2"]!
        heads = shape.targets.map { buffers["head.\($0)"]! }
        shared = shape.targets.map { buffers["shared.\($0)"]! }
    }

    /// Every buffer's name and element count, in the file's order.
    private static func layout(_ s: AdapterHypernetworkShape) -> [(String, Int)] {
        [("input_mean", s.encodingWidth), ("input_scale", s.encodingWidth), ("w1", s.codeWidth * s.encodingWidth), ("b1", s.codeWidth),
         ("layer_embeddings", s.layers * s.layerEmbeddingWidth), ("projection_embeddings", s.targets.count * s.projectionEmbeddingWidth),
         ("w2", s.hiddenWidth * s.mixedWidth), ("b2", s.hiddenWidth)]
            + s.projections.map { ("head.\($0.rawValue)", s.pairWidth($0) * s.hiddenWidth) }
            + s.projections.map { ("shared.\($0.rawValue)", s.layers * s.pairWidth($0)) }
    }

    /// A new generator that writes `shared` (θ⁰) for every document: H = 0; W₁, W₂ drawn
    /// uniformly in ±1/√fan-in, embeddings in ±1, b₂ = 0.1 (so codes start active) from `seed`;
    /// inputs standardised with the mean and deviation of `encodings` (the training tools').
    public convenience init(shared adapter: ToolAdapter, encodings: [[Float]], shape: AdapterHypernetworkShape,
                            provenance: AdapterHypernetworkProvenance, seed: UInt64) throws {
        try shape.validate()
        guard adapter.rank == shape.rank, adapter.alpha == shape.alpha, adapter.pairs.count == shape.layers,
              adapter.targets.map(\.rawValue).sorted() == shape.targets.sorted() else {
            throw ToolFormatError("shared adapter \(adapter.name) (rank \(adapter.rank), \(adapter.pairs.count) layers, \(adapter.targets.map(\.rawValue))) does not match the generator's shape")
        }
        guard !encodings.isEmpty, encodings.allSatisfy({ $0.count == shape.encodingWidth }) else {
            throw ToolFormatError("the generator needs at least one training encoding of \(shape.encodingWidth) values")
        }
        var buffers = [String: FloatBuffer]()
        for (name, count) in Self.layout(shape) { buffers[name] = FloatBuffer(count: count) }
        let n = Float(encodings.count)
        var mean = [Float](repeating: 0, count: shape.encodingWidth), scale = mean
        for e in encodings { for i in e.indices { mean[i] += e[i] / n } }
        for i in mean.indices {
            let variance = encodings.reduce(Float(0)) { $0 + ($1[i] - mean[i]) * ($1[i] - mean[i]) } / n
            scale[i] = 1 / max(variance.squareRoot(), 1e-6)
        }
        buffers["input_mean"]!.write(mean)
        buffers["input_scale"]!.write(scale)
        var rng = SeededGenerator(seed: seed)
        func fill(_ name: String, bound: Float) {
            let b = buffers[name]!
            b.write((0..<b.count).map { _ in rng.uniform(-bound, bound) })
        }
        fill("w1", bound: 1 / Float(shape.encodingWidth).squareRoot())
        fill("layer_embeddings", bound: 1)
        fill("projection_embeddings", bound: 1)
        fill("w2", bound: 1 / Float(shape.mixedWidth).squareRoot())
        buffers["b2"]!.write([Float](repeating: 0.1, count: shape.hiddenWidth))
        for p in shape.projections {
            let (i, o) = shape.sizes(p)
            let width = shape.pairWidth(p), out = buffers["shared.\(p.rawValue)"]!
            for l in 0..<shape.layers {
                guard let pair = adapter.pair(layer: l, projection: p), pair.a.cols == i, pair.b.rows == o else {
                    throw ToolFormatError("shared adapter \(adapter.name) has no \(p.rawValue) pair of \(o)x\(i) on layer \(l)")
                }
                out.write(pair.a.toArray(), at: l * width)
                out.write(pair.b.toArray(), at: l * width + shape.rank * i)
            }
        }
        self.init(shape: shape, provenance: provenance, buffers: buffers)
    }

    /// The text a tool is known by: its name, description and parameters' schema (what the
    /// adapter must learn to write: names, types, enums).
    public static func document(of spec: ToolSpec) -> String {
        "\(spec.name): \(spec.description)\nParameters: \(spec.parameters.serialized(sortedKeys: true))"
    }

    /// The encoder of tool documents the generator reads: the gate's (its default layers, mean
    /// pooling over the document's tokens).
    public static func documentEncoder(model: LlamaModel, tokenizer: Tokenizer, threads: ComputeThreads) -> ContextEncoder {
        ContextEncoder(model: model, tokenizer: tokenizer, pooling: .mean,
                       layers: GateConfig.defaultEncoderLayers(layerCount: model.config.layerCount), threads: threads)
    }

    /// The encoding of `spec`'s document (`document(of:)`) by `encoder`.
    public static func encoding(of spec: ToolSpec, encoder: ContextEncoder) -> [Float] {
        encoder.encode(document(of: spec)).vector
    }

    /// The forward pass for a document encoded as `encoding`.
    public func forward(_ encoding: [Float]) -> HypernetworkActivations {
        precondition(encoding.count == shape.encodingWidth, "encoding has \(encoding.count) values, the generator reads \(shape.encodingWidth)")
        let s = shape
        let x = (0..<s.encodingWidth).map { (encoding[$0] - inputMean[$0]) * inputScale[$0] }
        let pre1 = MatrixView(FloatBuffer(count: s.codeWidth), rows: 1, cols: s.codeWidth)
        BLAS.gemmABt(MatrixView(FloatBuffer(x), rows: 1, cols: s.encodingWidth), MatrixView(w1, rows: s.codeWidth, cols: s.encodingWidth), into: pre1)
        let z = (0..<s.codeWidth).map { tanh(pre1[0, $0] + b1[$0]) }
        var mixed = [MatrixView](), pre = [MatrixView](), codes = [MatrixView]()
        for p in s.targets.indices {
            let m = MatrixView(FloatBuffer(count: s.layers * s.mixedWidth), rows: s.layers, cols: s.mixedWidth)
            let pe = projectionEmbeddings.slice(p * s.projectionEmbeddingWidth, s.projectionEmbeddingWidth)
            for l in 0..<s.layers {
                m.buffer.write(z + layerEmbeddings.slice(l * s.layerEmbeddingWidth, s.layerEmbeddingWidth) + pe, at: l * s.mixedWidth)
            }
            let a = MatrixView(FloatBuffer(count: s.layers * s.hiddenWidth), rows: s.layers, cols: s.hiddenWidth)
            BLAS.gemmABt(m, MatrixView(w2, rows: s.hiddenWidth, cols: s.mixedWidth), into: a)
            let c = MatrixView(FloatBuffer(count: s.layers * s.hiddenWidth), rows: s.layers, cols: s.hiddenWidth)
            for l in 0..<s.layers {
                for j in 0..<s.hiddenWidth {
                    let v = a[l, j] + b2[j]
                    a.buffer[l * s.hiddenWidth + j] = v
                    c.buffer[l * s.hiddenWidth + j] = max(v, 0)
                }
            }
            mixed.append(m)
            pre.append(a)
            codes.append(c)
        }
        return HypernetworkActivations(standardized: x, code: z, mixed: mixed, preActivations: pre, codes: codes)
    }

    /// The adapter for `activations` (a forward pass): θ⁰ + H c, one product per projection.
    public func adapter(name: String, activations: HypernetworkActivations) -> ToolAdapter {
        let s = shape
        var pairs = [[FFNProjection: LoRAPair]](repeating: [:], count: s.layers)
        for (k, p) in s.projections.enumerated() {
            let width = s.pairWidth(p), (i, o) = s.sizes(p)
            let out = FloatBuffer(count: s.layers * width)
            out.write(shared[k].toArray())
            BLAS.gemmABt(activations.codes[k], MatrixView(heads[k], rows: width, cols: s.hiddenWidth),
                         into: MatrixView(out, rows: s.layers, cols: width), beta: 1)
            for l in 0..<s.layers {
                pairs[l][p] = LoRAPair(a: MatrixView(out, offset: l * width, rows: s.rank, cols: i),
                                       b: MatrixView(out, offset: l * width + s.rank * i, rows: o, cols: s.rank))
            }
        }
        return ToolAdapter(name: name, rank: s.rank, alpha: s.alpha, targets: s.projections, pairs: pairs)
    }

    /// The adapter named `name` for a document encoded as `encoding`.
    public func generate(name: String, encoding: [Float]) -> ToolAdapter {
        adapter(name: name, activations: forward(encoding))
    }

    /// θ⁰ alone, as an adapter named `name` (what the generator writes before training).
    public func sharedAdapter(name: String) -> ToolAdapter {
        let zero = HypernetworkActivations(standardized: [], code: [], mixed: [], preActivations: [],
                                           codes: shape.targets.map { _ in MatrixView(FloatBuffer(count: shape.layers * shape.hiddenWidth), rows: shape.layers, cols: shape.hiddenWidth) })
        return adapter(name: name, activations: zero)
    }

    // MARK: Files

    /// Saves the generator as one safetensors file (the shape and provenance as JSON in its metadata).
    public func save(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var named = ["input_mean": inputMean, "input_scale": inputScale, "w1": w1, "b1": b1, "layer_embeddings": layerEmbeddings,
                     "projection_embeddings": projectionEmbeddings, "w2": w2, "b2": b2]
        for (k, t) in shape.targets.enumerated() {
            named["head.\(t)"] = heads[k]
            named["shared.\(t)"] = shared[k]
        }
        let tensors = Self.layout(shape).map { SafetensorsTensor(name: $0.0, shape: [$0.1], buffer: named[$0.0]!) }
        try SafetensorsWriter.write(tensors, metadata: [
            "format": "paratool-adapter-generator",
            "shape": String(decoding: try encoder.encode(shape), as: UTF8.self),
            "provenance": String(decoding: try encoder.encode(provenance), as: UTF8.self),
        ], to: url)
    }

    /// Loads a generator saved by `save(to:)` (copied into owned buffers, so it can train on).
    public convenience init(contentsOf url: URL) throws {
        let file = try SafetensorsFile(path: url.path)
        guard file.metadata["format"] == "paratool-adapter-generator", let shapeJSON = file.metadata["shape"],
              let provenanceJSON = file.metadata["provenance"] else {
            throw ToolFormatError("\(url.path) is not an adapter generator (no paratool-adapter-generator metadata)")
        }
        let shape = try JSONDecoder().decode(AdapterHypernetworkShape.self, from: Data(shapeJSON.utf8))
        let provenance = try JSONDecoder().decode(AdapterHypernetworkProvenance.self, from: Data(provenanceJSON.utf8))
        try shape.validate()
        var buffers = [String: FloatBuffer]()
        for (name, count) in Self.layout(shape) {
            let values = try file.load(name).toArray()
            guard values.count == count else { throw ToolFormatError("\(url.path): \(name) has \(values.count) values, the shape needs \(count)") }
            guard values.allSatisfy(\.isFinite) else { throw ToolFormatError("\(url.path): \(name) holds a value that is not finite") }
            buffers[name] = FloatBuffer(values)
        }
        self.init(shape: shape, provenance: provenance, buffers: buffers)
    }
}
