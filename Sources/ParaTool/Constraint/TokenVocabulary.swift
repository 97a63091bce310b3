// TokenVocabulary: a tokenizer's vocabulary seen as byte strings, prepared once for constrained
// decoding — every token's bytes, a byte trie over all of them (so the tokens allowed after a
// state are found by walking the trie and pruning a byte the grammar rejects together with every
// token below it), and the split of the vocabulary that makes the most common state, the inside
// of a JSON string, cheap: tokens of plain string bytes keep that state unchanged.
import LLM

/// The vocabulary of one tokenizer as bytes, with a trie over it.
public final class TokenVocabulary: Sendable {
    /// Number of token ids.
    public let size: Int
    /// Ids that end generation (the tokenizer's stop tokens).
    public let stopTokens: [Int32]
    let stopSet: Set<Int>
    /// Bytes of token i: `bytes[offsets[i] ..< offsets[i + 1]]`. Special tokens other than the
    /// stop tokens have none: they are never part of an answer.
    let offsets: [Int32]
    let bytes: [UInt8]

    // Trie over the tokens' bytes: per node its edges (sorted by byte) and the first token whose
    // bytes end at it (-1 for none); further tokens with the same bytes in `sameBytes`.
    let firstEdge: [Int32]
    let edgeCount: [Int32]
    let edgeBytes: [UInt8]
    let edgeTargets: [Int32]
    let nodeToken: [Int32]
    let sameBytes: [Int32: [Int32]]

    /// Tokens whose every byte may stand inside a JSON string as it is (no quote, no backslash,
    /// no control byte).
    let plainTokens: [Int32]
    /// The other non-empty tokens, with the offset of their first byte that is not plain.
    let mixedTokens: [(token: Int32, firstSpecial: Int32)]
    /// Bytes of the longest token.
    let longestToken: Int

    /// Prepares `tokenizer`'s vocabulary.
    public init(tokenizer: Tokenizer) {
        size = tokenizer.vocabularySize
        let stops = tokenizer.stopTokenIds
        stopSet = stops
        stopTokens = stops.sorted().map(Int32.init)
        let special = tokenizer.specialTokenIds
        var offsets = [Int32](repeating: 0, count: size + 1)
        var bytes = [UInt8]()
        bytes.reserveCapacity(size * 8)
        for id in 0..<size {
            if !special.contains(id) && !stops.contains(id) { bytes.append(contentsOf: tokenizer.bytes(of: id)) }
            offsets[id + 1] = Int32(bytes.count)
        }
        self.offsets = offsets
        self.bytes = bytes

        func slice(_ id: Int) -> ArraySlice<UInt8> { bytes[Int(offsets[id])..<Int(offsets[id + 1])] }
        var plain = [Int32](), mixed = [(token: Int32, firstSpecial: Int32)]()
        for id in 0..<size where offsets[id + 1] > offsets[id] {
            if let k = slice(id).firstIndex(where: { !Self.isPlain($0) }) {
                mixed.append((Int32(id), Int32(k - Int(offsets[id]))))
            } else {
                plain.append(Int32(id))
            }
        }
        plainTokens = plain
        mixedTokens = mixed
        longestToken = (0..<size).map { Int(offsets[$0 + 1] - offsets[$0]) }.max() ?? 0

        // The trie, built from the tokens in byte order: each token shares the path of its
        // longest common prefix with the previous one, so nodes are made in preorder.
        let sorted = (0..<size).filter { offsets[$0 + 1] > offsets[$0] }.sorted { slice($0).lexicographicallyPrecedes(slice($1)) }
        var parent: [Int32] = [-1], byteIn: [UInt8] = [0], token: [Int32] = [-1]
        var same = [Int32: [Int32]]()
        var path: [Int32] = [0]
        var previous = ArraySlice<UInt8>()
        for id in sorted {
            let b = slice(id)
            var common = 0
            while common < min(b.count, previous.count) && b[b.startIndex + common] == previous[previous.startIndex + common] { common += 1 }
            path.removeLast(path.count - 1 - common)
            for k in common..<b.count {
                parent.append(path.last!)
                byteIn.append(b[b.startIndex + k])
                token.append(-1)
                path.append(Int32(parent.count - 1))
            }
            let end = Int(path.last!)
            if token[end] < 0 { token[end] = Int32(id) } else { same[token[end], default: []].append(Int32(id)) }
            previous = b
        }
        let nodeCount = parent.count
        var counts = [Int32](repeating: 0, count: nodeCount)
        for n in 1..<nodeCount { counts[Int(parent[n])] += 1 }
        var first = [Int32](repeating: 0, count: nodeCount)
        var running: Int32 = 0
        for n in 0..<nodeCount { first[n] = running; running += counts[n] }
        var fill = first
        var targets = [Int32](repeating: 0, count: nodeCount - 1), edgeBytes = [UInt8](repeating: 0, count: nodeCount - 1)
        for n in 1..<nodeCount {
            let p = Int(parent[n])
            targets[Int(fill[p])] = Int32(n)
            edgeBytes[Int(fill[p])] = byteIn[n]
            fill[p] += 1
        }
        firstEdge = first
        edgeCount = counts
        self.edgeBytes = edgeBytes
        edgeTargets = targets
        nodeToken = token
        sameBytes = same
    }

    /// The bytes token `id` contributes to an answer (empty for stop and special tokens).
    func tokenBytes(_ id: Int) -> ArraySlice<UInt8> {
        guard id >= 0 && id < size else { return [] }
        return bytes[Int(offsets[id])..<Int(offsets[id + 1])]
    }

    /// Whether `b` may stand inside a JSON string as it is.
    @inline(__always)
    static func isPlain(_ b: UInt8) -> Bool { b >= 0x20 && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") }

    /// Nodes in the trie.
    var nodeCount: Int { nodeToken.count }

    /// The fewest tokens that write `text` exactly, and the first token of such a writing (nil
    /// for empty text, or when no tokens write it): a dynamic programme over the byte trie.
    func fewestTokens(_ text: [UInt8]) -> (count: Int, first: Int32?) {
        let n = text.count
        guard n > 0 else { return (0, nil) }
        var best = [Int](repeating: Int.max / 2, count: n + 1)
        var firstToken = [Int32](repeating: -1, count: n + 1)
        best[n] = 0
        for i in stride(from: n - 1, through: 0, by: -1) {
            var node: Int32 = 0
            var k = i
            while k < n {
                guard let next = child(node, text[k]) else { break }
                node = next
                k += 1
                let token = nodeToken[Int(node)]
                if token >= 0, best[k] + 1 < best[i] {
                    best[i] = best[k] + 1
                    firstToken[i] = token
                }
            }
        }
        return best[0] < Int.max / 2 ? (best[0], firstToken[0]) : (Int.max / 2, nil)
    }

    /// The trie node reached from `node` by `byte`, or nil.
    private func child(_ node: Int32, _ byte: UInt8) -> Int32? {
        let first = Int(firstEdge[Int(node)]), end = first + Int(edgeCount[Int(node)])
        for e in first..<end where edgeBytes[e] == byte { return edgeTargets[e] }
        return nil
    }
}
