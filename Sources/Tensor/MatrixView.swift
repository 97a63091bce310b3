// MatrixView: a row-major 2-D window (rows × cols, row stride) onto a FloatBuffer. Kernels take
// views so that heads, column blocks and batch rows are addressed without copying.

/// A row-major matrix window onto a `FloatBuffer`: element (r, c) is at
/// `offset + r * stride + c`.
public struct MatrixView: @unchecked Sendable {
    /// The storage this view reads and writes.
    public let buffer: FloatBuffer
    /// Index of element (0, 0) in `buffer`.
    public let offset: Int
    /// Number of rows.
    public let rows: Int
    /// Number of columns.
    public let cols: Int
    /// Distance in floats between the starts of consecutive rows (≥ cols).
    public let stride: Int

    /// A view of `rows × cols` elements starting at `offset` with row stride `stride` (default `cols`).
    public init(_ buffer: FloatBuffer, offset: Int = 0, rows: Int, cols: Int, stride: Int? = nil) {
        let stride = stride ?? cols
        precondition(rows >= 0 && cols >= 0 && stride >= cols, "invalid matrix view shape")
        precondition(offset >= 0 && (rows == 0 || offset + (rows - 1) * stride + cols <= buffer.count),
                     "matrix view \(rows)x\(cols) (stride \(stride)) at \(offset) exceeds buffer of \(buffer.count)")
        self.buffer = buffer
        self.offset = offset
        self.rows = rows
        self.cols = cols
        self.stride = stride
    }

    /// Rows `start ..< start + count` of this view.
    public func rows(_ start: Int, _ count: Int) -> MatrixView {
        precondition(start >= 0 && count >= 0 && start + count <= rows, "row range out of bounds")
        return MatrixView(buffer, offset: offset + start * stride, rows: count, cols: cols, stride: stride)
    }

    /// Columns `start ..< start + count` of this view (same rows, same stride).
    public func columns(_ start: Int, _ count: Int) -> MatrixView {
        precondition(start >= 0 && count >= 0 && start + count <= cols, "column range out of bounds")
        return MatrixView(buffer, offset: offset + start, rows: rows, cols: count, stride: stride)
    }

    /// Element access (bounds-checked).
    public subscript(row: Int, col: Int) -> Float {
        get {
            precondition(row >= 0 && row < rows && col >= 0 && col < cols, "matrix index out of range")
            return buffer.base[offset + row * stride + col]
        }
        nonmutating set {
            precondition(row >= 0 && row < rows && col >= 0 && col < cols, "matrix index out of range")
            precondition(!buffer.isMapped, "write to a read-only mapped buffer")
            buffer.base[offset + row * stride + col] = newValue
        }
    }

    /// A copy of row `r`.
    public func row(_ r: Int) -> [Float] { buffer.slice(offset + r * stride, cols) }

    /// A copy of all elements, row by row.
    public func toArray() -> [Float] {
        var out = [Float]()
        out.reserveCapacity(rows * cols)
        for r in 0..<rows { out.append(contentsOf: row(r)) }
        return out
    }

    var pointer: UnsafeMutablePointer<Float> { buffer.base + offset }
}
