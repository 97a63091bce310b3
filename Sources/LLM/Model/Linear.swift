// Linear: a model's weight matrices as they are held in memory (float32, or a GGML block format
// read in place from the mapped file) and the linear layer's products on either, for a few rows
// (decode: matrix-vector kernels) and for many (prefill, encoders, training: sgemm, on tiles of
// dequantised rows for block formats). Also the load-time choice of format (`WeightFormat`).
import Foundation
import Tensor

/// How a weight matrix is stored in memory.
public enum WeightStorage: Sendable {
    /// Row-major float32 (owned, or mapped from the file).
    case float32(MatrixView)
    /// A GGML storage format (`BlockMatrix.supportedTypes`: Q4_0 … Q6_K, F16, BF16, F32), in place
    /// in the mapped file or owned when the loader reordered or quantised it.
    case blocks(BlockMatrix)
}

/// The in-memory format a loader gives a model's matrices (`--weights`).
public enum WeightFormat: String, Sendable, CaseIterable {
    /// Every matrix float32: block formats are dequantised at load.
    case f32
    /// Float matrices (F32, F16, BF16) quantised to Q8_0 at load; block formats kept.
    case q8_0
    /// Float matrices quantised to Q4_0 at load; block formats kept.
    case q4_0

    /// The GGML type float matrices are quantised to, nil for float32.
    var quantizedType: GGMLType? {
        switch self {
        case .f32: return nil
        case .q8_0: return .q8_0
        case .q4_0: return .q4_0
        }
    }
}

/// A weight matrix `[rows = out, cols = in]`.
public struct WeightMatrix: Sendable {
    public let rows: Int
    public let cols: Int
    public let storage: WeightStorage

    /// Wraps a row-major float32 buffer of `rows × cols`.
    public init(rows: Int, cols: Int, float32 buffer: FloatBuffer) {
        precondition(buffer.count == rows * cols, "weight buffer size mismatch")
        self.rows = rows
        self.cols = cols
        storage = .float32(MatrixView(buffer, rows: rows, cols: cols))
    }

    /// Wraps a float32 view.
    public init(float32 view: MatrixView) {
        rows = view.rows
        cols = view.cols
        storage = .float32(view)
    }

    /// Wraps a block-format matrix.
    public init(blocks: BlockMatrix) {
        rows = blocks.rows
        cols = blocks.cols
        storage = .blocks(blocks)
    }

    /// `floats` (rows × cols) in `format`: float32 as is, or quantised.
    public init(rows: Int, cols: Int, float32 buffer: FloatBuffer, format: WeightFormat) throws {
        if let type = format.quantizedType, cols % type.blockSize == 0 {
            self.init(blocks: try BlockMatrix.quantizing(MatrixView(buffer, rows: rows, cols: cols), to: type))
        } else {
            self.init(rows: rows, cols: cols, float32: buffer)
        }
    }

    /// The storage format (F32 for float32).
    public var type: GGMLType {
        switch storage {
        case .float32: return .f32
        case .blocks(let b): return b.type
        }
    }

    /// The matrix as a float32 view, when it is stored as float32.
    public var floatView: MatrixView? {
        if case .float32(let v) = storage { return v }
        return nil
    }

    /// Bytes read from memory by one full pass over the matrix.
    public var byteCount: Int {
        switch storage {
        case .float32: return rows * cols * 4
        case .blocks(let b): return b.byteCount
        }
    }

    /// Bytes of memory the matrix owns (0 when it is a window onto a mapped file).
    public var ownedBytes: Int {
        switch storage {
        case .float32(let v): return v.buffer.isMapped ? 0 : rows * cols * 4
        case .blocks(let b): return b.ownedBytes
        }
    }

    /// Rows `range` (shares the storage).
    public func rows(_ range: Range<Int>) -> WeightMatrix {
        switch storage {
        case .float32(let v): return WeightMatrix(float32: v.rows(range.lowerBound, range.count))
        case .blocks(let b): return WeightMatrix(blocks: b.rows(range))
        }
    }

    /// Columns `range` (shares the storage); for block formats the bounds must be multiples of
    /// the block size (`columnAlignment`).
    public func columns(_ range: Range<Int>) -> WeightMatrix {
        switch storage {
        case .float32(let v): return WeightMatrix(float32: v.columns(range.lowerBound, range.count))
        case .blocks(let b): return WeightMatrix(blocks: b.columns(range))
        }
    }

    /// The granularity of `columns(_:)`: 1 for float32, the block size otherwise.
    public var columnAlignment: Int { type.blockSize }

    /// Row `r` as float32 into row `row` of `out` (the embedding lookup).
    public func copyRow(_ r: Int, into out: MatrixView, row: Int) {
        switch storage {
        case .float32(let v): Kernels.copyRow(v, r, into: out, row: row)
        case .blocks(let b): b.copyRow(r, into: out, row: row)
        }
    }

    /// `y = x · Wᵀ` (or `y += …`) for many rows: sgemm (on dequantised tiles for block formats),
    /// the weight's rows split over `threads`.
    public func multiply(_ x: MatrixView, into y: MatrixView, accumulate: Bool = false, threads: ComputeThreads = .single) {
        switch storage {
        case .float32(let v): BLAS.gemmABt(x, v, into: y, beta: accumulate ? 1 : 0, threads: threads)
        case .blocks(let b): BlockProducts.multiply(x, b, into: y, accumulate: accumulate, threads: threads)
        }
    }

    /// `out = d · W + beta · out` on the calling thread (a linear layer's input gradient).
    public func multiplyUntransposed(_ d: MatrixView, into out: MatrixView, beta: Float = 0) {
        switch storage {
        case .float32(let v): BLAS.gemmAB(d, v, into: out, beta: beta)
        case .blocks(let b): BlockProducts.multiplyUntransposed(d, b, into: out, beta: beta)
        }
    }

    /// A matrix-vector job `y = x · Wᵀ` for a few rows; `activations` is x quantised when the
    /// format needs it (`needsActivationBlocks`).
    func job(_ x: MatrixView, activations: ActivationBlocks?, into y: MatrixView, accumulate: Bool) -> MatVec.Job {
        switch storage {
        case .float32(let v): return MatVec.Job(v, x, into: y, accumulate: accumulate)
        case .blocks(let b): return MatVec.Job(b, x, activations: activations, into: y, accumulate: accumulate)
        }
    }

    /// Whether the decode kernel of this format reads 8-bit activation blocks.
    var needsActivationBlocks: Bool {
        if case .blocks(let b) = storage { return ActivationBlocks.needed(for: b.type) }
        return false
    }
}

/// A linear layer `y = x Wᵀ + b`.
public struct Linear: Sendable {
    public let weight: WeightMatrix
    public let bias: FloatBuffer?

    public init(weight: WeightMatrix, bias: FloatBuffer? = nil) {
        self.weight = weight
        self.bias = bias
    }

    /// Input width.
    public var inFeatures: Int { weight.cols }
    /// Output width.
    public var outFeatures: Int { weight.rows }

    /// Up to this many rows (decode of a small batch) use the matrix-vector kernel, which reads
    /// each weight once for all rows without sgemm's packing copy; more rows use sgemm.
    public static let maxMatVecRows = 16

    /// `y = x Wᵀ + b` (or `y += x Wᵀ + b` when `accumulate`). Few rows use the SIMD
    /// matrix-vector kernels (integer block dot products for block formats); more rows use
    /// sgemm. `threads`: the budget both split their work over.
    public func apply(_ x: MatrixView, into y: MatrixView, accumulate: Bool = false, threads: ComputeThreads = .single) {
        if x.rows <= Linear.maxMatVecRows {
            let acts = weight.needsActivationBlocks ? ActivationBlocks.quantize(x) : nil
            MatVec.multiply(weight.job(x, activations: acts, into: y, accumulate: accumulate), threads: threads)
        } else {
            weight.multiply(x, into: y, accumulate: accumulate, threads: threads)
        }
        if let bias { Kernels.addRowVector(bias, into: y) }
    }

    /// Two or three linears that read the same input (q/k/v, gate/up). For few rows their
    /// matrix-vector products run as one parallel call (the input quantised once); otherwise
    /// each is an sgemm.
    public static func apply(_ x: MatrixView, _ a: (Linear, MatrixView), _ b: (Linear, MatrixView),
                             _ c: (Linear, MatrixView)? = nil, threads: ComputeThreads) {
        guard x.rows <= maxMatVecRows else {
            a.0.apply(x, into: a.1, threads: threads)
            b.0.apply(x, into: b.1, threads: threads)
            if let c { c.0.apply(x, into: c.1, threads: threads) }
            return
        }
        let quantize = a.0.weight.needsActivationBlocks || b.0.weight.needsActivationBlocks || (c?.0.weight.needsActivationBlocks ?? false)
        let acts = quantize ? ActivationBlocks.quantize(x) : nil
        func job(_ l: Linear, _ y: MatrixView) -> MatVec.Job {
            l.weight.job(x, activations: l.weight.needsActivationBlocks ? acts : nil, into: y, accumulate: false)
        }
        MatVec.multiply(job(a.0, a.1), job(b.0, b.1), c.map { job($0.0, $0.1) }, threads: threads)
        if let bias = a.0.bias { Kernels.addRowVector(bias, into: a.1) }
        if let bias = b.0.bias { Kernels.addRowVector(bias, into: b.1) }
        if let c, let bias = c.0.bias { Kernels.addRowVector(bias, into: c.1) }
    }
}
