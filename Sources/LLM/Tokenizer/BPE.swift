// Owns the byte-pair merge step: merging one word's byte tokens by merge rank with a heap.

/// Merge table of a byte-level BPE vocabulary, keyed by the pair of token ids.
struct BPEMerges: Sendable {
    /// `(left << 32 | right)` → `(rank << 32 | merged id)`.
    private let table: [UInt64: UInt64]

    init(table: [UInt64: UInt64]) { self.table = table }

    static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Builds the table from `(left, right)` token pairs in rank order. Pairs whose parts or
    /// concatenation are not in the vocabulary can never apply and are skipped; a repeated pair
    /// keeps its first (best) rank.
    init(pairs: [(String, String)], vocabulary: [String: Int]) {
        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(pairs.count)
        for (rank, pair) in pairs.enumerated() {
            guard let left = vocabulary[pair.0], let right = vocabulary[pair.1],
                  let merged = vocabulary[pair.0 + pair.1] else { continue }
            let key = Self.key(Int32(left), Int32(right))
            if table[key] == nil { table[key] = UInt64(rank) << 32 | UInt64(merged) }
        }
        self.table = table
    }

    private func lookup(_ left: Int32, _ right: Int32) -> (rank: UInt32, id: Int32)? {
        guard let value = table[Self.key(left, right)] else { return nil }
        return (UInt32(truncatingIfNeeded: value >> 32), Int32(truncatingIfNeeded: value & 0xFFFF_FFFF))
    }

    /// Merges `ids` (one word's initial tokens) repeatedly: the lowest-rank adjacent pair first,
    /// the leftmost among equals, as Hugging Face `tokenizers` and llama.cpp do. O(n log n).
    func merge(_ ids: [Int32]) -> [Int32] {
        let n = ids.count
        if n < 2 { return ids }
        var symbols = ids
        var prev = (0..<n).map { Int32($0) - 1 }
        var next = (0..<n).map { $0 + 1 < n ? Int32($0 + 1) : -1 }
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        for i in 0..<(n - 1) {
            if let m = lookup(symbols[i], symbols[i + 1]) { heap.push(UInt64(m.rank) << 32 | UInt64(i)) }
        }
        while let top = heap.pop() {
            let rank = UInt32(top >> 32)
            let pos = Int(top & 0xFFFF_FFFF)
            let right = Int(next[pos])
            guard alive[pos], right >= 0, let m = lookup(symbols[pos], symbols[right]), m.rank == rank
            else { continue }
            symbols[pos] = m.id
            alive[right] = false
            next[pos] = next[right]
            if next[right] >= 0 { prev[Int(next[right])] = Int32(pos) }
            let before = Int(prev[pos])
            if before >= 0, let l = lookup(symbols[before], symbols[pos]) {
                heap.push(UInt64(l.rank) << 32 | UInt64(before))
            }
            let after = Int(next[pos])
            if after >= 0, let r = lookup(symbols[pos], symbols[after]) {
                heap.push(UInt64(r.rank) << 32 | UInt64(pos))
            }
        }
        var result: [Int32] = []
        var i = 0
        while i >= 0 {
            result.append(symbols[i])
            i = Int(next[i])
        }
        return result
    }
}

/// A binary min-heap of packed `(rank << 32 | position)` keys.
private struct MinHeap {
    private var items: [UInt64] = []

    mutating func push(_ value: UInt64) {
        items.append(value)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if items[parent] <= items[child] { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return first }
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            if left >= items.count { break }
            let right = left + 1
            let smallest = right < items.count && items[right] < items[left] ? right : left
            if items[parent] <= items[smallest] { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}
