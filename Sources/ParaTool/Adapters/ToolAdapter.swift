// ToolAdapter: one tool's parameters — a LoRA pair (A: r×in, B: out×r) on gate/up/down_proj of
// every layer, with scale alpha/r, stored as float32 or bfloat16 and read in place (the products
// of each storage are here too, so callers never branch on it). Reading and writing the PEFT
// layout is in PEFTAdapterIO.swift.
import LLM
import Tensor

/// How an adapter's A and B are stored: float32, or bfloat16 (half the bytes; what the store
/// publishes by default). Both are read in place, from the mapped file, by decode and prefill.
public enum AdapterWeightFormat: String, Sendable, CaseIterable {
    case float32
    case bfloat16

    /// The GGML type of the format's storage.
    public var ggmlType: GGMLType { self == .float32 ? .f32 : .bf16 }
    /// The safetensors dtype name.
    public var safetensorsDType: String { self == .float32 ? "F32" : "BF16" }
}

/// One low-rank pair on one linear: the update is `scale · B (A x)`.
public struct LoRAPair: Sendable {
    /// A (r × in) as stored: F32 or BF16.
    public let aWeights: BlockMatrix
    /// B (out × r) as stored, in PEFT's layout: F32 or BF16. Decode reads its short rows eight at
    /// a time (`MatVec.NarrowRowsJob`), so no transposed copy is kept.
    public let bWeights: BlockMatrix
    /// A and B as float32 views of the same storage, for float32 pairs (training's parameters).
    private let floats: (a: MatrixView, b: MatrixView)?

    /// A float32 pair over `a` (r × in) and `b` (out × r), which must be contiguous; no copy.
    public init(a: MatrixView, b: MatrixView) {
        precondition(a.rows == b.cols, "LoRA rank mismatch: A is \(a.rows)x\(a.cols), B is \(b.rows)x\(b.cols)")
        aWeights = BlockMatrix(wrapping: a)
        bWeights = BlockMatrix(wrapping: b)
        floats = (a, b)
    }

    /// A pair over stored weights (F32 or BF16; F32 ones also get float32 views of their storage).
    public init(a: BlockMatrix, b: BlockMatrix) {
        precondition(a.rows == b.cols, "LoRA rank mismatch: A is \(a.rows)x\(a.cols), B is \(b.rows)x\(b.cols)")
        precondition([GGMLType.f32, .bf16].contains(a.type) && a.type == b.type, "LoRA weights are F32 or BF16, both alike")
        aWeights = a
        bWeights = b
        floats = nil
    }

    /// The storage format.
    public var format: AdapterWeightFormat { aWeights.type == .f32 ? .float32 : .bfloat16 }

    /// A (r × in) as float32: a view of the storage for float32 pairs, otherwise a new copy (for
    /// training and tests; the serving paths read `aWeights` in place).
    public var a: MatrixView { floats?.a ?? MatrixView(aWeights.dequantized(), rows: aWeights.rows, cols: aWeights.cols) }
    /// B (out × r) as float32, likewise.
    public var b: MatrixView { floats?.b ?? MatrixView(bWeights.dequantized(), rows: bWeights.rows, cols: bWeights.cols) }

    /// Whether `a` and `b` are views of the storage (float32), not copies.
    public var hasFloatViews: Bool { floats != nil }

    /// The rank r.
    public var rank: Int { aWeights.rows }

    /// Bytes of A and B as stored.
    public var storedBytes: Int { aWeights.byteCount + bWeights.byteCount }

    /// This pair in `format`: itself when already there; bfloat16 rounds to nearest even.
    public func converted(to format: AdapterWeightFormat) -> LoRAPair {
        if format == self.format { return self }
        switch format {
        case .float32:
            return LoRAPair(a: a, b: b)
        case .bfloat16:
            // Cannot fail: BF16 takes any row length.
            return LoRAPair(a: try! BlockMatrix.quantizing(a, to: format.ggmlType), b: try! BlockMatrix.quantizing(b, to: format.ggmlType))
        }
    }

    /// `t = x · Aᵀ` (x is rows × in, t rows × r) on the calling thread.
    public func multiplyA(_ x: MatrixView, into t: MatrixView) {
        if let floats { BLAS.gemmABt(x, floats.a, into: t) } else { BlockProducts.multiply(x, aWeights, into: t) }
    }

    /// `y = t · Bᵀ`, or `y += t · Bᵀ` when `accumulate` (t is rows × r, y rows × out), split
    /// over `threads`.
    public func multiplyB(_ t: MatrixView, into y: MatrixView, accumulate: Bool, threads: ComputeThreads) {
        if let floats {
            BLAS.gemmABt(t, floats.b, into: y, beta: accumulate ? 1 : 0, threads: threads)
        } else {
            BlockProducts.multiply(t, bWeights, into: y, accumulate: accumulate, threads: threads)
        }
    }

    /// The decode job `t = x · Aᵀ` for a few rows x.
    public func decodeJobA(_ x: MatrixView, into t: MatrixView) -> MatVec.Job {
        if let floats { return MatVec.Job(floats.a, x, into: t) }
        return MatVec.Job(aWeights, x, activations: nil, into: t)
    }
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

    /// Bytes of the adapter's weights as stored (A and B of every pair), whether mapped or owned.
    public var residentBytes: Int {
        pairs.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.storedBytes } }
    }

    /// Number of trainable parameters.
    public var parameterCount: Int {
        pairs.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.aWeights.rows * $1.aWeights.cols + $1.bWeights.rows * $1.bWeights.cols } }
    }

    /// The storage format of the weights (float32 when the adapter has no pairs).
    public var format: AdapterWeightFormat {
        pairs.lazy.flatMap(\.values).first?.format ?? .float32
    }

    /// This adapter with every pair in `format` (itself when already there).
    public func converted(to format: AdapterWeightFormat) -> ToolAdapter {
        if pairs.allSatisfy({ $0.values.allSatisfy { $0.format == format } }) { return self }
        return ToolAdapter(name: name, rank: rank, alpha: alpha, targets: targets,
                           pairs: pairs.map { $0.mapValues { $0.converted(to: format) } })
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
    /// A float32 copy whose A and B are owned (writable) buffers — trainable even when this
    /// adapter was memory-mapped from a file or stored as bfloat16 — under `name` (default: the
    /// same name).
    public func ownedCopy(name: String? = nil) -> ToolAdapter {
        func copy(_ m: MatrixView) -> MatrixView { MatrixView(FloatBuffer(m.toArray()), rows: m.rows, cols: m.cols) }
        return ToolAdapter(name: name ?? self.name, rank: rank, alpha: alpha, targets: targets,
                           pairs: pairs.map { layer in layer.mapValues { LoRAPair(a: copy($0.a), b: copy($0.b)) } })
    }

    /// Every A and B buffer in a fixed order (layer, then gate/up/down, A before B): the order in
    /// which optimisers and checkpoints see the parameters.
    public var parameterBuffers: [FloatBuffer] {
        precondition(pairs.allSatisfy { $0.values.allSatisfy(\.hasFloatViews) }, "training needs float32 weights (see ownedCopy)")
        return pairs.flatMap { layer in
            FFNProjection.allCases.compactMap { layer[$0] }.flatMap { [$0.a.buffer, $0.b.buffer] }
        }
    }
}
