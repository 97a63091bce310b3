// BlockProducts: the products of float32 activations with BlockMatrix weights. Decode (a few
// rows) quantises the activation rows once to 8-bit blocks and runs integer block dot products
// (MatVec jobs); prefill, encoders and training dequantise a tile of weight rows at a time into a
// small per-thread float32 scratch and hand it to sgemm, so no float32 copy of a whole model exists.
import CKernels
import COpenBLAS
import Foundation

/// Activation rows quantised to 8-bit blocks of 32 for the block kernels (per block: a scale and
/// the scale times the sum of its bytes). Lives in the calling thread's scratch until the next
/// `quantize` on that thread.
public struct ActivationBlocks {
    let q: UnsafePointer<Int8>
    let scales: UnsafePointer<Float>
    let sums: UnsafePointer<Float>
    /// Rows and columns quantised.
    public let rows: Int, cols: Int

    /// Quantises the rows of `x` (its columns a multiple of 32) into this thread's scratch.
    public static func quantize(_ x: MatrixView) -> ActivationBlocks {
        precondition(x.cols % 32 == 0, "activation rows must be whole blocks of 32")
        let scratch = ThreadScratch.current
        scratch.reserveActivations(rows: x.rows, cols: x.cols)
        pt_quantize_rows_q8(x.pointer, x.stride, x.rows, x.cols, scratch.quantized, scratch.scales, scratch.sums)
        return ActivationBlocks(q: UnsafePointer(scratch.quantized), scales: UnsafePointer(scratch.scales),
                                sums: UnsafePointer(scratch.sums), rows: x.rows, cols: x.cols)
    }

    /// Whether `type`'s decode kernel reads quantised activations (the block formats) rather than
    /// the float32 rows (F32, F16, BF16).
    public static func needed(for type: GGMLType) -> Bool {
        type != .f32 && type != .f16 && type != .bf16 && BlockMatrix.supportedTypes.contains(type)
    }
}

/// Per-thread reusable memory of the block products: the quantised activations and the float32
/// tile of dequantised weight rows. Grows to the largest request and is then reused, so decode
/// and prefill allocate nothing per token.
final class ThreadScratch {
    private(set) var quantized = UnsafeMutablePointer<Int8>.allocate(capacity: 1)
    private(set) var scales = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    private(set) var sums = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    private var activationCapacity = 0
    private var tileBuffer = FloatBuffer(count: 0)

    deinit {
        quantized.deallocate()
        scales.deallocate()
        sums.deallocate()
    }

    func reserveActivations(rows: Int, cols: Int) {
        let count = rows * cols
        guard count > activationCapacity else { return }
        quantized.deallocate()
        scales.deallocate()
        sums.deallocate()
        activationCapacity = max(count, activationCapacity * 2)
        quantized = .allocate(capacity: activationCapacity)
        scales = .allocate(capacity: activationCapacity / 32 + 1)
        sums = .allocate(capacity: activationCapacity / 32 + 1)
    }

    func tile(rows: Int, cols: Int) -> MatrixView {
        if tileBuffer.count < rows * cols { tileBuffer = FloatBuffer(count: max(rows * cols, tileBuffer.count * 2)) }
        return MatrixView(tileBuffer, rows: rows, cols: cols)
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<ThreadScratch>.fromOpaque(pointer).release() }
        }
        return key
    }()

    /// This thread's scratch (made at its first use, freed when the thread exits).
    static var current: ThreadScratch {
        if let pointer = pthread_getspecific(key) { return Unmanaged<ThreadScratch>.fromOpaque(pointer).takeUnretainedValue() }
        let scratch = ThreadScratch()
        pthread_setspecific(key, Unmanaged.passRetained(scratch).toOpaque())
        return scratch
    }
}

/// Products with BlockMatrix weights for many rows (prefill, encoders, training).
public enum BlockProducts {
    /// Weight rows dequantised per tile: enough for sgemm to run at speed on a tile, small
    /// enough that the tile stays in the core's cache (at most 256 Ki floats).
    static func tileRows(inputRows: Int, cols: Int) -> Int {
        let wanted = min(256, max(64, (inputRows + 15) / 16 * 16))
        return max(16, min(wanted, (1 << 18) / max(cols, 1) / 16 * 16))
    }

    /// Hands `body` each tile of `rows` (at most `tileRows` of them) expanded to float32 in this
    /// thread's scratch, in order.
    private static func forEachTile(of w: BlockMatrix, rows: Range<Int>, inputRows: Int, _ body: (Range<Int>, MatrixView) -> Void) {
        let scratch = ThreadScratch.current
        let tile = tileRows(inputRows: inputRows, cols: w.cols)
        for t0 in stride(from: rows.lowerBound, to: rows.upperBound, by: tile) {
            let tileRange = t0..<min(rows.upperBound, t0 + tile)
            let weights = scratch.tile(rows: tileRange.count, cols: w.cols)
            w.dequantize(rows: tileRange, into: weights)
            body(tileRange, weights)
        }
    }

    /// `y = x · wᵀ` (or `y += x · wᵀ` when `accumulate`): x is rows × w.cols, y is rows × w.rows.
    /// With a budget of more than one thread the weight rows are split over its pool, each thread
    /// dequantising its own tiles and running single-threaded sgemm on them; with one it runs on
    /// the calling thread (which may itself be a pool thread).
    public static func multiply(_ x: MatrixView, _ w: BlockMatrix, into y: MatrixView, accumulate: Bool = false,
                                threads: ComputeThreads = .single) {
        precondition(x.cols == w.cols && y.rows == x.rows && y.cols == w.rows, "block product shape mismatch")
        precondition(!y.buffer.isMapped, "write to a read-only mapped buffer")
        guard x.rows > 0, w.rows > 0 else { return }
        let body = { (start: Int, end: Int) in
            forEachTile(of: w, rows: start..<end, inputRows: x.rows) { rows, weights in
                BLAS.gemmABt(x, weights, into: y.columns(rows.lowerBound, rows.count), beta: accumulate ? 1 : 0)
            }
        }
        MatVec.splitAcrossThreads(w.rows, threads: threads, parallel: true, body)
    }

    /// `out = d · w + beta · out` on the calling thread: d is rows × w.rows, out is rows × w.cols
    /// (the input gradient of a linear layer, `dx = dy · W`).
    public static func multiplyUntransposed(_ d: MatrixView, _ w: BlockMatrix, into out: MatrixView, beta: Float = 0) {
        precondition(d.cols == w.rows && out.rows == d.rows && out.cols == w.cols, "block product shape mismatch")
        precondition(!out.buffer.isMapped, "write to a read-only mapped buffer")
        guard d.rows > 0 else { return }
        forEachTile(of: w, rows: 0..<w.rows, inputRows: d.rows) { rows, weights in
            BLAS.gemmAB(d.columns(rows.lowerBound, rows.count), weights, into: out, beta: rows.lowerBound == 0 ? beta : 1)
        }
        if w.rows == 0 { BLAS.scale(out, by: beta) }
    }

    /// The instruction set of the block kernels on this CPU ("avx512-vnni", "avx2", "portable").
    public static var instructionSet: String {
        switch pt_block_isa() {
        case 2: return "avx512-vnni"
        case 1: return "avx2"
        default: return "portable"
        }
    }

    /// The kernels' instruction-set variants, so tests cover each one on a single machine.
    public enum Variant: Int32, CaseIterable, Sendable { case portable = 0, avx2 = 1, avx512vnni = 2 }

    /// `y = x · wᵀ` for every row of x (at most 16) by one variant of the decode kernel, on one
    /// thread; false (nothing computed) when this CPU lacks the variant.
    public static func decodeProduct(_ w: BlockMatrix, _ x: MatrixView, into y: MatrixView, variant: Variant) -> Bool {
        precondition(x.cols == w.cols && y.rows == x.rows && y.cols == w.rows && x.rows <= 16 && !y.buffer.isMapped,
                     "block matvec shape mismatch")
        let acts = ActivationBlocks.needed(for: w.type) ? ActivationBlocks.quantize(x) : nil
        defer { withExtendedLifetime((w, x.buffer, y.buffer)) {} }
        return pt_block_matvec(variant.rawValue, Int32(w.type.rawValue), w.base, w.rowBytes, w.cols, x.pointer, x.stride,
                               acts?.q, acts?.scales, acts?.sums, x.rows, y.pointer, y.stride, 0, w.rows, 0) == 0
    }

    /// Rows `range` of `w` expanded by one variant; false when this CPU lacks it.
    public static func dequantize(_ w: BlockMatrix, rows range: Range<Int>, into out: MatrixView, variant: Variant) -> Bool {
        precondition(out.rows == range.count && out.cols == w.cols && !out.buffer.isMapped, "dequantize shape mismatch")
        defer { withExtendedLifetime((w, out.buffer)) {} }
        return pt_block_dequantize_rows(variant.rawValue, Int32(w.type.rawValue), w.base, w.rowBytes, w.cols,
                                        range.lowerBound, range.upperBound, out.pointer, out.stride) == 0
    }
}
