// ToolAdapter: one tool's parameters — a LoRA pair (A: r×in, B: out×r) on gate/up/down_proj of
// every layer, with scale alpha/r. Reading and writing the PEFT layout is in PEFTAdapterIO.swift.
import LLM
import Tensor

/// One low-rank pair on one linear: the update is `scale · B (A x)`.
public struct LoRAPair: Sendable {
    /// r × in.
    public let a: MatrixView
    /// out × r.
    public let b: MatrixView
    /// Bᵀ (r × out), a copy kept for decode, where reading B's r-float rows one dot product at a
    /// time costs several times its memory traffic.
    public let bTransposed: MatrixView

    public init(a: MatrixView, b: MatrixView) {
        precondition(a.rows == b.cols, "LoRA rank mismatch: A is \(a.rows)x\(a.cols), B is \(b.rows)x\(b.cols)")
        self.a = a
        self.b = b
        let t = FloatBuffer(count: b.rows * b.cols)
        let tv = MatrixView(t, rows: b.cols, cols: b.rows)
        for o in 0..<b.rows {
            for k in 0..<b.cols { tv[k, o] = b[o, k] }
        }
        bTransposed = tv
    }

    /// The rank r.
    public var rank: Int { a.rows }
}

/// A tool's adapter: LoRA pairs on FFN projections of every layer.
public final class ToolAdapter: Sendable {
    /// The tool (or adapter) name.
    public let name: String
    /// LoRA rank r.
    public let rank: Int
    /// LoRA alpha; the branch scale is alpha / r.
    public let alpha: Float
    /// Which projections carry pairs.
    public let targets: [FFNProjection]
    /// `pairs[layer][projection]`.
    public let pairs: [[FFNProjection: LoRAPair]]

    /// The branch scale alpha / r.
    public var scale: Float { alpha / Float(rank) }

    public init(name: String, rank: Int, alpha: Float, targets: [FFNProjection], pairs: [[FFNProjection: LoRAPair]]) {
        self.name = name
        self.rank = rank
        self.alpha = alpha
        self.targets = targets
        self.pairs = pairs
    }

    /// The pair on `projection` of `layer`, if the adapter has one.
    public func pair(layer: Int, projection: FFNProjection) -> LoRAPair? {
        layer < pairs.count ? pairs[layer][projection] : nil
    }

    /// Bytes the adapter holds in memory: A, B and the transposed copy of B of every pair.
    public var residentBytes: Int {
        pairs.reduce(0) { $0 + $1.values.reduce(0) { $0 + MemoryLayout<Float>.size * ($1.a.rows * $1.a.cols + 2 * $1.b.rows * $1.b.cols) } }
    }

    /// Number of trainable parameters.
    public var parameterCount: Int {
        pairs.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.a.rows * $1.a.cols + $1.b.rows * $1.b.cols } }
    }
}

extension ToolAdapter {
    /// A new adapter for `config` with PEFT's default initialisation: A ~ U(−1/√in, 1/√in)
    /// (Kaiming-uniform with a = √5, as PEFT uses), B = 0 — so it starts as the identity update.
    /// `randomB` fills B the same way instead (benchmarks and tests that need a non-zero update).
    public static func initialized(name: String, config: ModelConfig, rank: Int, alpha: Float,
                                   targets: [FFNProjection] = FFNProjection.allCases, seed: UInt64,
                                   randomB: Bool = false) -> ToolAdapter {
        var rng = SeededGenerator(seed: seed)
        let h = config.hiddenSize, f = config.intermediateSize
        func matrix(_ rows: Int, _ cols: Int, random: Bool) -> MatrixView {
            let bound = 1 / Float(cols).squareRoot()
            let values = random ? (0..<(rows * cols)).map { _ in rng.uniform(-bound, bound) } : [Float](repeating: 0, count: rows * cols)
            return MatrixView(FloatBuffer(values), rows: rows, cols: cols)
        }
        let pairs = (0..<config.layerCount).map { _ -> [FFNProjection: LoRAPair] in
            var layer = [FFNProjection: LoRAPair]()
            for t in targets {
                let (inp, out) = t == .down ? (f, h) : (h, f)
                layer[t] = LoRAPair(a: matrix(rank, inp, random: true), b: matrix(out, rank, random: randomB))
            }
            return layer
        }
        return ToolAdapter(name: name, rank: rank, alpha: alpha, targets: targets, pairs: pairs)
    }
}

extension ToolAdapter {
    /// A copy whose A and B are owned (writable) buffers — trainable even when this adapter was
    /// memory-mapped from a file — under `name` (default: the same name).
    public func ownedCopy(name: String? = nil) -> ToolAdapter {
        func copy(_ m: MatrixView) -> MatrixView { MatrixView(FloatBuffer(m.toArray()), rows: m.rows, cols: m.cols) }
        return ToolAdapter(name: name ?? self.name, rank: rank, alpha: alpha, targets: targets,
                           pairs: pairs.map { layer in layer.mapValues { LoRAPair(a: copy($0.a), b: copy($0.b)) } })
    }

    /// Every A and B buffer in a fixed order (layer, then gate/up/down, A before B): the order in
    /// which optimisers and checkpoints see the parameters.
    public var parameterBuffers: [FloatBuffer] {
        pairs.flatMap { layer in
            FFNProjection.allCases.compactMap { layer[$0] }.flatMap { [$0.a.buffer, $0.b.buffer] }
        }
    }
}
