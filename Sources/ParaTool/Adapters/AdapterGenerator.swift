// AdapterGenerator: an adapter for a tool nobody has trained yet, made from its document in
// milliseconds. Every trained tool's adapter starts from one shared adapter (the Global one) and
// moves a little for its own tool; a new tool gets that start plus the similarity-weighted mean of
// the moves of the trained tools whose documents read most like its own:
//   θ = θ_start + λ · Σ_j w_j (θ_j − θ_start),  w = softmax(cos(d, d_j) / τ) over the k nearest,
// with d the documents' encodings (the gate's encoder), centred on the references' mean when asked:
// mean-pooled hidden states share one large common direction (every document's cosine with every
// other is high), so the raw nearest neighbour is close to arbitrary. λ = 0 is the start alone; k = 1, λ = 1 is
// the nearest trained tool's adapter. The result is an ordinary rank-r adapter (same rank, alpha
// and targets as the references), so it is stored, loaded and fused like any other.
import Foundation
import LLM
import Tensor

/// How an `AdapterGenerator` mixes its references.
public struct AdapterGeneratorSettings: Sendable, Equatable, Codable, CustomStringConvertible {
    /// How many nearest references are mixed.
    public var neighbours: Int
    /// Softmax temperature over cosine similarities (small: the nearest dominates).
    public var temperature: Float
    /// How far from the start the mixed moves go (0: the start alone; 1: the weighted mean).
    public var strength: Float

    public init(neighbours: Int, temperature: Float, strength: Float) {
        self.neighbours = neighbours
        self.temperature = temperature
        self.strength = strength
    }

    public var description: String {
        String(format: "k=%d τ=%g λ=%g", neighbours, Double(temperature), Double(strength))
    }
}

/// One trained tool the generator draws on: its document's encoding and its adapter.
public struct GeneratorReference: Sendable {
    public let tool: String
    public let encoding: [Float]
    public let adapter: ToolAdapter

    public init(tool: String, encoding: [Float], adapter: ToolAdapter) {
        self.tool = tool
        self.encoding = encoding
        self.adapter = adapter
    }
}

/// Makes adapters from document encodings (see the file's header).
public struct AdapterGenerator: Sendable {
    /// The adapter every reference started from.
    public let start: ToolAdapter
    /// The trained tools drawn on.
    public let references: [GeneratorReference]
    /// What is subtracted from every encoding before cosines are taken: the references' mean
    /// encoding, or zeros.
    public let centre: [Float]

    /// A generator over `references`, all trained from `start` (same rank, alpha, layers and
    /// targets, which is checked); with `centred`, cosines are taken after subtracting the
    /// references' mean encoding.
    public init(start: ToolAdapter, references: [GeneratorReference], centred: Bool = true) throws {
        for r in references {
            let a = r.adapter
            guard a.rank == start.rank, a.alpha == start.alpha, a.targets == start.targets, a.pairs.count == start.pairs.count else {
                throw ToolFormatError("reference \(r.tool) is rank \(a.rank), alpha \(a.alpha), \(a.pairs.count) layers; the start is rank \(start.rank), alpha \(start.alpha), \(start.pairs.count) layers")
            }
        }
        self.start = start
        self.references = references
        let width = references.first?.encoding.count ?? 0
        var mean = [Float](repeating: 0, count: width)
        for r in references {
            guard r.encoding.count == width else { throw ToolFormatError("reference \(r.tool)'s encoding has \(r.encoding.count) values, not \(width)") }
            if centred { for i in mean.indices { mean[i] += r.encoding[i] / Float(references.count) } }
        }
        centre = mean
    }

    /// `encoding` minus the centre.
    private func centred(_ encoding: [Float]) -> [Float] {
        centre.isEmpty ? encoding : zip(encoding, centre).map { $0 - $1 }
    }

    /// The references mixed for a document encoded as `encoding` and their weights (summing to
    /// 1), nearest first; references named in `excluding` are left out.
    public func weights(for encoding: [Float], settings: AdapterGeneratorSettings,
                        excluding: Set<String> = []) -> [(tool: String, weight: Float)] {
        let query = centred(encoding)
        let ranked = references.indices.filter { !excluding.contains(references[$0].tool) }
            .map { ($0, ToolSelection.cosine(query, centred(references[$0].encoding))) }
            .sorted { $0.1 > $1.1 }
            .prefix(max(1, settings.neighbours))
        guard let top = ranked.first?.1 else { return [] }
        let t = max(settings.temperature, 1e-6)
        let e = ranked.map { exp(($0.1 - top) / t) }
        let sum = e.reduce(0, +)
        return zip(ranked, e).map { (references[$0.0].tool, $1 / sum) }
    }

    /// A float32 adapter named `name` for a document encoded as `encoding`, and the references
    /// mixed into it.
    public func generate(name: String, encoding: [Float], settings: AdapterGeneratorSettings,
                         excluding: Set<String> = []) -> (adapter: ToolAdapter, mixed: [(tool: String, weight: Float)]) {
        let mixed = weights(for: encoding, settings: settings, excluding: excluding)
        let byName = Dictionary(references.map { ($0.tool, $0.adapter) }, uniquingKeysWith: { a, _ in a })
        let parts = mixed.map { (byName[$0.tool]!, settings.strength * $0.weight) }
        func blend(_ base: MatrixView, _ others: [(MatrixView, Float)]) -> MatrixView {
            let from = base.toArray()
            var out = from
            for (m, w) in others where w != 0 {
                let v = m.toArray()
                for i in out.indices { out[i] += w * (v[i] - from[i]) }
            }
            return MatrixView(FloatBuffer(out), rows: base.rows, cols: base.cols)
        }
        let pairs = start.pairs.enumerated().map { layer, projections in
            projections.reduce(into: [FFNProjection: LoRAPair]()) { out, entry in
                let others = parts.compactMap { adapter, w in adapter.pair(layer: layer, projection: entry.key).map { ($0, w) } }
                let startA = entry.value.a, startB = entry.value.b
                out[entry.key] = LoRAPair(a: blend(startA, others.map { ($0.0.a, $0.1) }), b: blend(startB, others.map { ($0.0.b, $0.1) }))
            }
        }
        return (ToolAdapter(name: name, rank: start.rank, alpha: start.alpha, targets: start.targets, pairs: pairs), mixed)
    }
}
