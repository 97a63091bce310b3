// ShortestCompletion: how many bytes, at the fewest, complete an answer from a CallRecognizer
// state — the rest of the lexeme being read, the required properties still missing, the items an
// array still needs, every container's closing and the call's `}</tool_call>` — found by writing
// such a completion through the recognizer itself, so it is a valid one by construction. The
// constraint's budget-aware closing keeps this length within the tokens left (a byte-level
// vocabulary writes any byte as one token).

extension CallRecognizer {
    /// The length in bytes of a shortest text completing the answer from `state` (0 when it is
    /// complete); `Int.max / 2` when none is found within `limit` bytes.
    func shortestCompletionLength(_ state: CallParseState, limit: Int = 1 << 16) -> Int {
        shortestCompletion(state, limit: limit)?.count ?? Int.max / 2
    }

    /// A shortest text completing the answer from `state` (empty when it is complete); nil when
    /// none is found within `limit` bytes.
    func shortestCompletion(_ state: CallParseState, limit: Int = 1 << 16) -> [UInt8]? {
        let start = mark
        defer { rewind(to: start) }
        var s = state
        var text = [UInt8]()
        while !isComplete(s) {
            guard text.count < limit, let bytes = shortestNextBytes(s), !bytes.isEmpty, step(&s, bytes[...]) else {
                return nil
            }
            text += bytes
        }
        return text
    }

    /// The next bytes of a shortest completion from `s` (not complete), or nil when it has none.
    private func shortestNextBytes(_ s: CallParseState) -> [UInt8]? {
        switch s.lexer {
        case .text:
            // A text answer with nothing but whitespace so far: any visible byte completes it.
            return [UInt8(ascii: ".")]
        case .string:
            // `"` closes; `0` and `\u` + `d` + C finish an escape (a low surrogate after a high one).
            for b in [UInt8(ascii: "\""), UInt8(ascii: "0"), UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "d")] {
                var t = s
                if step(&t, b) { return [b] }
            }
            return nil
        case .number(let state, _, _):
            guard Self.numberAccepts(state) else { return [UInt8(ascii: "0")] }
            // The number may end here: the next byte is what its container takes after a value.
            var t = s
            t.lexer = .idle
            valueDone(&t)
            return idleBytes(t)
        case .literal(let n):
            return literalBytes(s, node: n)
        case .idle:
            return idleBytes(s)
        }
    }

    /// The rest of the literal being read at trie node `n`: the entry with the shortest
    /// completion of the whole answer where the entry decides more than itself (a tool's name,
    /// an object's property), the shortest entry otherwise.
    private func literalBytes(_ s: CallParseState, node n: Int32) -> [UInt8]? {
        let f = arena[Int(s.top)]
        var options = grammar.literals.remainders(from: n)
        let cost: ((entry: Int32, bytes: [UInt8])) -> Int
        if f.kind == .root && f.phase == .name {
            cost = { $0.bytes.count + (Int($0.entry) < self.grammar.minCallTail.count ? self.grammar.minCallTail[Int($0.entry)] : Int.max / 4) }
        } else if f.kind == .object && f.phase == .key {
            let object = node(f.node), keys = grammar.keyLengths[Int(f.node)]
            options = options.filter { $0.entry < 64 && f.seen & (1 << UInt64($0.entry)) == 0 }
            cost = { option in
                let value = self.grammar.minValueLength[Int(self.grammar.members[Int(object.first + option.entry)])]
                return option.bytes.count + 2 + value + self.missingRequiredLength(object, keys: keys, given: f.seen | (1 << UInt64(option.entry)))
            }
        } else {
            cost = { $0.bytes.count }
        }
        guard let best = options.min(by: { cost($0) < cost($1) }) else { return nil }
        guard best.bytes.isEmpty else { return best.bytes }
        // An entry ends here and others continue past it: it ends at the next byte, which is
        // what follows the literal.
        var t = s
        t.lexer = .idle
        literalDone(&t, payload: best.entry)
        return shortestNextBytes(t)
    }

    /// Bytes of the required properties of `object` not in `given`, each with `, `, its key
    /// (`keys`: the object's `CallGrammar.keyLengths`), `: ` and its shortest value.
    private func missingRequiredLength(_ object: SchemaNode, keys: [Int], given: UInt64) -> Int {
        var total = 0
        var missing = object.required & ~given
        guard missing != 0 else { return 0 }
        while missing != 0 {
            let k = missing.trailingZeroBitCount
            missing &= missing - 1
            total += 2 + keys[k] + 2 + grammar.minValueLength[Int(grammar.members[Int(object.first) + k])]
        }
        return total
    }

    /// The next bytes from a state between lexemes, by the top frame's phase.
    private func idleBytes(_ s: CallParseState) -> [UInt8]? {
        let f = arena[Int(s.top)]
        switch (f.kind, f.phase) {
        case (.root, .begin):
            // Text is the shortest answer: one visible byte.
            return [UInt8(ascii: ".")]
        case (.root, .value):
            return valueStartBytes(grammar.toolRoots[Int(f.node)])
        case (.object, .start), (.object, .after):
            if node(f.node).required & ~f.seen == 0 { return [UInt8(ascii: "}")] }
            return [f.phase == .start ? UInt8(ascii: "\"") : UInt8(ascii: ",")]
        case (.object, .value):
            let n = node(f.node)
            return valueStartBytes(grammar.members[Int(n.first + f.current)])
        case (.array, .value):
            return valueStartBytes(grammar.members[Int(node(f.node).first)])
        case (.array, .start), (.array, .after):
            if Int64(f.seen) >= Int64(node(f.node).minItems) { return [UInt8(ascii: "]")] }
            return f.phase == .start ? valueStartBytes(grammar.members[Int(node(f.node).first)]) : [UInt8(ascii: ",")]
        case (.freeObject, .start), (.freeObject, .after):
            return [UInt8(ascii: "}")]
        case (.freeObject, .keyStart):
            return [UInt8(ascii: "\"")]
        case (.freeObject, .value), (.freeArray, .value):
            return [UInt8(ascii: "0")]
        case (.freeArray, .start), (.freeArray, .after):
            return [UInt8(ascii: "]")]
        default:
            return nil
        }
    }

    /// The first bytes of a shortest value of node `index`.
    private func valueStartBytes(_ index: Int32) -> [UInt8] {
        let n = node(index)
        switch n.kind {
        case .string: return [UInt8(ascii: "\"")]
        case .integer, .number, .any: return [UInt8(ascii: "0")]
        case .literal:
            return grammar.literals.remainders(from: n.literalRoot).min(by: { $0.bytes.count < $1.bytes.count })?.bytes ?? []
        case .array: return [UInt8(ascii: "[")]
        case .object, .freeObject: return [UInt8(ascii: "{")]
        case .union:
            let shortest = (0..<n.count).map { grammar.members[Int(n.first + $0)] }
                .min(by: { grammar.minValueLength[Int($0)] < grammar.minValueLength[Int($1)] })
            return shortest.map(valueStartBytes) ?? []
        }
    }
}
