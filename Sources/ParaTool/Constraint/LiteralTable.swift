// LiteralTable: byte tries of the literal strings a call may contain at some point — the fixed
// syntax of the call envelope, the candidate tool names, an object's property names, enum values,
// `true`/`false`/`null` — all kept in one flat table so a parser state refers to a position in any
// of them by one integer.

/// Byte tries of literal strings, flattened into one table of nodes and edges.
struct LiteralTable: Sendable {
    /// One trie node: its outgoing edges, the entry that ends here, and which entries lie below.
    struct Node: Sendable {
        /// Index of the node's first edge in `edgeBytes` / `edgeTargets`.
        var firstEdge: Int32
        /// Number of edges (sorted by byte).
        var edgeCount: Int32
        /// Index (in its trie's entry list) of the entry that ends at this node, or -1.
        var payload: Int32
        /// Bit i set when entry i (i < 64) ends at or below this node.
        var below: UInt64
    }

    private(set) var nodes: [Node] = []
    private(set) var edgeBytes: [UInt8] = []
    private(set) var edgeTargets: [Int32] = []

    /// Adds a trie holding `entries` and returns its root. Entry i's payload is i; an entry
    /// given twice keeps its first index. An empty list gives a root with no edges (nothing
    /// matches).
    mutating func addTrie(_ entries: [[UInt8]]) -> Int32 {
        var children: [[(byte: UInt8, node: Int)]] = [[]]
        var payload: [Int32] = [-1]
        var below: [UInt64] = [0]
        for (i, entry) in entries.enumerated() {
            let bit: UInt64 = i < 64 ? 1 << UInt64(i) : 0
            var n = 0
            below[0] |= bit
            for byte in entry {
                if let next = children[n].first(where: { $0.byte == byte })?.node {
                    n = next
                } else {
                    children.append([])
                    payload.append(-1)
                    below.append(0)
                    children[n].append((byte, children.count - 1))
                    n = children.count - 1
                }
                below[n] |= bit
            }
            if payload[n] < 0 { payload[n] = Int32(i) }
        }
        let base = Int32(nodes.count)
        for (n, edges) in children.enumerated() {
            let sorted = edges.sorted { $0.byte < $1.byte }
            nodes.append(Node(firstEdge: Int32(edgeBytes.count), edgeCount: Int32(sorted.count), payload: payload[n], below: below[n]))
            for e in sorted {
                edgeBytes.append(e.byte)
                edgeTargets.append(base + Int32(e.node))
            }
        }
        return base
    }

    /// Adds a trie of one string and returns its root.
    mutating func addLiteral(_ text: String) -> Int32 { addTrie([Array(text.utf8)]) }

    /// The node reached from `node` by `byte`, or -1.
    @inline(__always)
    func child(_ node: Int32, _ byte: UInt8) -> Int32 {
        let n = nodes[Int(node)]
        var e = Int(n.firstEdge)
        let end = e + Int(n.edgeCount)
        while e < end {
            let b = edgeBytes[e]
            if b == byte { return edgeTargets[e] }
            if b > byte { return -1 }
            e += 1
        }
        return -1
    }

    /// The entry ending at `node`, or -1.
    @inline(__always)
    func payload(_ node: Int32) -> Int32 { nodes[Int(node)].payload }

    /// True when no edge leaves `node`.
    @inline(__always)
    func isLeaf(_ node: Int32) -> Bool { nodes[Int(node)].edgeCount == 0 }

    /// The entries ending at or below `node`, in trie order.
    func entriesBelow(_ node: Int32) -> [Int32] {
        var out = [Int32](), stack = [node]
        while let n = stack.popLast() {
            let p = nodes[Int(n)]
            if p.payload >= 0 { out.append(p.payload) }
            for e in Int(p.firstEdge)..<Int(p.firstEdge + p.edgeCount) { stack.append(edgeTargets[e]) }
        }
        return out
    }

    /// The entries (bits, below 64) ending at or below `node`.
    @inline(__always)
    func below(_ node: Int32) -> UInt64 { nodes[Int(node)].below }

    /// Every entry ending at or below `node` with the bytes that lead there from `node`, in
    /// trie order.
    func remainders(from node: Int32) -> [(entry: Int32, bytes: [UInt8])] {
        var out = [(entry: Int32, bytes: [UInt8])]()
        var stack: [(node: Int32, bytes: [UInt8])] = [(node, [])]
        while let (n, bytes) = stack.popLast() {
            let p = nodes[Int(n)]
            if p.payload >= 0 { out.append((p.payload, bytes)) }
            for e in (Int(p.firstEdge)..<Int(p.firstEdge + p.edgeCount)).reversed() {
                stack.append((edgeTargets[e], bytes + [edgeBytes[e]]))
            }
        }
        return out
    }

    /// The length of the shortest path from `node` to an entry's end (0 when one ends at `node`,
    /// `Int.max / 2` when none lies below).
    func shortestEntry(below node: Int32) -> Int {
        var best = Int.max / 2
        var stack: [(node: Int32, depth: Int)] = [(node, 0)]
        while let (n, depth) = stack.popLast() {
            let p = nodes[Int(n)]
            if p.payload >= 0 { best = min(best, depth) }
            guard depth + 1 < best else { continue }
            for e in Int(p.firstEdge)..<Int(p.firstEdge + p.edgeCount) { stack.append((edgeTargets[e], depth + 1)) }
        }
        return best
    }

    /// The length of each entry below `node` counted from `node`, indexed by entry (0 for indices
    /// no entry below `node` has).
    func entryLengths(below node: Int32) -> [Int] {
        let found = remainders(from: node)
        var lengths = [Int](repeating: 0, count: (found.map { Int($0.entry) }.max() ?? -1) + 1)
        for (entry, bytes) in found { lengths[Int(entry)] = bytes.count }
        return lengths
    }
}
