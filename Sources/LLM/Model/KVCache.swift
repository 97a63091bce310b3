// KVCache: the keys and values one sequence has produced so far, per layer, in contiguous
// row-major blocks ([position, kvHeads·headDim]) that attention reads with sgemm.
import Tensor

/// Per-sequence key/value cache. Capacity grows by doubling (a copy per doubling, never per
/// token); `reserve` up front avoids even that.
public final class KVCache {
    /// Number of positions stored.
    public private(set) var length: Int = 0
    /// Positions that fit without growing.
    public private(set) var capacity: Int
    let layerCount: Int
    let width: Int
    private(set) var keys: [FloatBuffer]
    private(set) var values: [FloatBuffer]

    /// An empty cache for `config`, with room for `capacity` positions.
    public init(config: ModelConfig, capacity: Int = 256) {
        layerCount = config.layerCount
        width = config.kvDim
        self.capacity = max(1, capacity)
        keys = (0..<layerCount).map { _ in FloatBuffer(count: max(1, capacity) * config.kvDim) }
        values = (0..<layerCount).map { _ in FloatBuffer(count: max(1, capacity) * config.kvDim) }
    }

    /// Ensures room for `positions` positions in total.
    public func reserve(_ positions: Int) {
        guard positions > capacity else { return }
        var newCapacity = capacity
        while newCapacity < positions { newCapacity *= 2 }
        func grow(_ old: FloatBuffer) -> FloatBuffer {
            let b = FloatBuffer(count: newCapacity * width)
            let src = MatrixView(old, rows: length, cols: width)
            let dst = MatrixView(b, rows: length, cols: width)
            for r in 0..<length { Kernels.copyRow(src, r, into: dst, row: r) }
            return b
        }
        keys = keys.map(grow)
        values = values.map(grow)
        capacity = newCapacity
    }

    /// Forgets every position (keeps the memory).
    public func clear() { length = 0 }

    /// Forgets every position and gives back the memory beyond room for `positions` positions.
    public func reset(capacity positions: Int) {
        length = 0
        guard positions < capacity else { return }
        capacity = max(1, positions)
        keys = (0..<layerCount).map { _ in FloatBuffer(count: capacity * width) }
        values = (0..<layerCount).map { _ in FloatBuffer(count: capacity * width) }
    }

    /// Drops positions from `newLength` on.
    public func truncate(to newLength: Int) {
        precondition(newLength >= 0 && newLength <= length, "truncate beyond cache length")
        length = newLength
    }

    func keyView(layer: Int) -> MatrixView { MatrixView(keys[layer], rows: capacity, cols: width) }
    func valueView(layer: Int) -> MatrixView { MatrixView(values[layer], rows: capacity, cols: width) }
    func advance(by n: Int) {
        precondition(length + n <= capacity, "KV cache overflow")
        length += n
    }

    /// Bytes held.
    public var byteCount: Int { 2 * layerCount * capacity * width * 4 }
}
