// BlockMatrix: a row-major weight matrix kept in one of GGML's storage formats (F32, F16, BF16,
// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), read in place from a memory-mapped file or from
// a buffer it owns (rows reordered at load, or float32 quantised at load). Sub-matrices of whole
// rows, or of columns on block boundaries (256 values for the K-quants), share the storage. The
// pointer never leaves this module.
import CKernels
import Foundation

/// Errors raised when a block matrix cannot be formed.
public enum BlockMatrixError: Error, CustomStringConvertible, Equatable {
    /// The type has no kernels here.
    case unsupportedType(GGMLType)
    /// A row is not a whole number of the type's blocks.
    case notWholeBlocks(type: GGMLType, cols: Int)

    public var description: String {
        switch self {
        case .unsupportedType(let t):
            return "GGML type \(t.name) has no in-place kernels: supported are \(BlockMatrix.supportedNames)"
        case .notWholeBlocks(let t, let cols):
            return "a row of \(cols) values is not a whole number of \(t.name) blocks (\(t.blockSize) values each)"
        }
    }
}

/// A `rows × cols` matrix stored row by row in a GGML format, without a float32 copy.
public final class BlockMatrix: @unchecked Sendable {
    /// The storage format.
    public let type: GGMLType
    /// Number of rows.
    public let rows: Int
    /// Number of columns (values per row).
    public let cols: Int
    /// Bytes between the starts of consecutive rows.
    public let rowBytes: Int
    let base: UnsafeRawPointer
    private let owner: AnyObject?
    private let ownedAllocation: UnsafeMutableRawPointer?

    /// The formats with kernels: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K.
    public static let supportedTypes: Set<GGMLType> = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K]

    /// The supported formats' names in id order, for messages.
    static var supportedNames: String {
        GGMLType.allCases.filter(supportedTypes.contains).map(\.name).joined(separator: ", ")
    }

    /// Whether the storage is a window onto a mapped file (shared between processes that map it).
    public let isMapped: Bool

    private init(type: GGMLType, rows: Int, cols: Int, rowBytes: Int, base: UnsafeRawPointer, owner: AnyObject?,
                 ownedAllocation: UnsafeMutableRawPointer?, isMapped: Bool) {
        self.type = type
        self.rows = rows
        self.cols = cols
        self.rowBytes = rowBytes
        self.base = base
        self.owner = owner
        self.ownedAllocation = ownedAllocation
        self.isMapped = isMapped
    }

    deinit { ownedAllocation?.deallocate() }

    private static func checkedRowBytes(_ type: GGMLType, cols: Int) throws -> Int {
        guard supportedTypes.contains(type) else { throw BlockMatrixError.unsupportedType(type) }
        guard cols > 0, cols % type.blockSize == 0 else { throw BlockMatrixError.notWholeBlocks(type: type, cols: cols) }
        return try type.byteCount(elements: cols)
    }

    /// The `rows × cols` matrix of `type` stored at byte `offset` of `file` (no copy). Throws when
    /// the type has no kernels, a row is not whole blocks, or the data runs past the file's end.
    public convenience init(mapping file: MappedFile, offset: Int, type: GGMLType, rows: Int, cols: Int) throws {
        let rowBytes = try Self.checkedRowBytes(type, cols: cols)
        let (length, overflow) = rowBytes.multipliedReportingOverflow(by: rows)
        guard !overflow, rows >= 0 else { throw DequantizeError.sizeOverflow(type: type, elements: cols) }
        let raw = try file.rawBytes(offset: offset, length: length)
        self.init(type: type, rows: rows, cols: cols, rowBytes: rowBytes,
                  base: raw.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!, owner: file, ownedAllocation: nil, isMapped: true)
    }

    /// A matrix that owns a copy of `rows` rows of `type` produced by `fill`, which is handed the
    /// destination of each row in turn.
    private static func owned(type: GGMLType, rows: Int, cols: Int, _ fill: (Int, UnsafeMutableRawPointer) -> Void) throws -> BlockMatrix {
        let rowBytes = try checkedRowBytes(type, cols: cols)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(1, rowBytes * rows), alignment: 64)
        for r in 0..<rows { fill(r, memory + r * rowBytes) }
        return BlockMatrix(type: type, rows: rows, cols: cols, rowBytes: rowBytes, base: UnsafeRawPointer(memory), owner: nil,
                           ownedAllocation: memory, isMapped: false)
    }

    /// A copy whose row `i` is row `order[i]` of this matrix (llama.cpp's converter permutes the
    /// rows of Llama's Q and K projections; the runtime puts them back at load).
    public func reorderingRows(_ order: [Int]) throws -> BlockMatrix {
        precondition(order.allSatisfy { $0 >= 0 && $0 < rows }, "row order names a missing row")
        let length = try type.byteCount(elements: cols)
        return try Self.owned(type: type, rows: order.count, cols: cols) { r, dst in
            dst.copyMemory(from: base + order[r] * rowBytes, byteCount: length)
        }
    }

    /// A float32 matrix over the storage of `floats` (no copy; mapped when its buffer is), which
    /// must be contiguous (stride = cols).
    public convenience init(wrapping floats: MatrixView) {
        precondition(floats.stride == floats.cols || floats.rows <= 1, "only a contiguous matrix can be wrapped")
        self.init(type: .f32, rows: floats.rows, cols: floats.cols, rowBytes: 4 * floats.cols,
                  base: UnsafeRawPointer(floats.pointer), owner: floats.buffer, ownedAllocation: nil, isMapped: floats.buffer.isMapped)
    }

    /// `floats` quantised to `type` (Q8_0 or Q4_0, as llama.cpp's reference quantisers do; BF16
    /// rounded to nearest even; F32 is a copy). Throws for other types or when a row is not whole
    /// blocks.
    public static func quantizing(_ floats: MatrixView, to type: GGMLType) throws -> BlockMatrix {
        guard type == .q8_0 || type == .q4_0 || type == .bf16 || type == .f32 else { throw BlockMatrixError.unsupportedType(type) }
        defer { withExtendedLifetime(floats.buffer) {} }
        return try owned(type: type, rows: floats.rows, cols: floats.cols) { r, dst in
            let src = floats.pointer + r * floats.stride
            if type == .f32 {
                dst.copyMemory(from: src, byteCount: floats.cols * 4)
            } else {
                _ = pt_block_quantize_row(Int32(type.rawValue), src, floats.cols, dst)
            }
        }
    }

    /// The stored bytes of the whole matrix, row by row (for writing it to a file).
    public func storedBytes() -> Data {
        defer { withExtendedLifetime(self) {} }
        let length = (try? type.byteCount(elements: cols)) ?? 0
        if rowBytes == length { return Data(bytes: base, count: rows * length) }
        var data = Data(capacity: rows * length)
        for r in 0..<rows { data.append(Data(bytes: base + r * rowBytes, count: length)) }
        return data
    }

    /// Rows `range` of this matrix (shares the storage).
    public func rows(_ range: Range<Int>) -> BlockMatrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "row range out of bounds")
        return BlockMatrix(type: type, rows: range.count, cols: cols, rowBytes: rowBytes, base: base + range.lowerBound * rowBytes,
                           owner: self, ownedAllocation: nil, isMapped: isMapped)
    }

    /// Columns `range` of this matrix (shares the storage); both bounds must be multiples of
    /// the type's block size.
    public func columns(_ range: Range<Int>) -> BlockMatrix {
        let block = type.blockSize
        precondition(range.lowerBound >= 0 && range.upperBound <= cols && range.lowerBound % block == 0
                     && range.upperBound % block == 0 && !range.isEmpty, "column range \(range) is not on \(type.name) block bounds")
        let offset = range.lowerBound / block * type.bytesPerBlock
        return BlockMatrix(type: type, rows: rows, cols: range.count, rowBytes: rowBytes, base: base + offset,
                           owner: self, ownedAllocation: nil, isMapped: isMapped)
    }

    /// Bytes one pass over the matrix reads.
    public var byteCount: Int { rows * ((try? type.byteCount(elements: cols)) ?? 0) }

    /// Bytes of memory this matrix owns (0 for a window onto a mapped file or a sub-matrix).
    public var ownedBytes: Int { ownedAllocation == nil ? 0 : rows * rowBytes }

    /// Expands rows `range` into the rows of `out` (`range.count × cols`).
    public func dequantize(rows range: Range<Int>, into out: MatrixView) {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows && out.rows == range.count && out.cols == cols,
                     "dequantize shape mismatch")
        precondition(!out.buffer.isMapped, "write to a read-only mapped buffer")
        guard !range.isEmpty else { return }
        defer { withExtendedLifetime((self, out.buffer)) {} }
        _ = pt_block_dequantize_rows(-1, Int32(type.rawValue), base, rowBytes, cols, range.lowerBound, range.upperBound,
                                     out.pointer, out.stride)
    }

    /// Row `r` expanded into row `row` of `out`.
    public func copyRow(_ r: Int, into out: MatrixView, row: Int) {
        dequantize(rows: r..<(r + 1), into: out.rows(row, 1))
    }

    /// The whole matrix as float32 (tests and tools; the runtime never makes one).
    public func dequantized() -> FloatBuffer {
        let out = FloatBuffer(count: rows * cols)
        dequantize(rows: 0..<rows, into: MatrixView(out, rows: rows, cols: cols))
        return out
    }
}
