// CallRecognizer: reads an answer byte by byte against a CallGrammar and says, after each byte,
// whether the text so far is still the beginning of a valid answer. Its state is two small values
// (the innermost open container and the lexeme being read); containers live in an append-only
// arena of immutable frames, so a state is copied by value and exploring a continuation costs no
// more than the frames it adds, which `rewind(to:)` drops again.

/// A position in an answer: the innermost open container and the lexeme being read.
struct CallParseState: Sendable, Equatable {
    /// The lexeme being read.
    enum Lexer: Sendable, Equatable {
        /// Between lexemes: the frame's phase says what may come.
        case idle
        /// Inside a literal; the node of the literal table reached so far.
        case literal(Int32)
        /// Inside a string after its opening quote: 0 plain, 1 after a backslash, 2…12 inside a
        /// `\uXXXX` escape (see `StringEscape`), which tracks surrogates so that a high one is
        /// always followed by `\u` and a low one and a low one never stands alone, as JSON
        /// parsers require; 13 and 14 at the start of a string-typed argument (see
        /// `StringStart`), which begins with a space only when it is nothing but spaces.
        case string(UInt8)
        /// Inside a number: the state of the number automaton, the bytes read, integers only.
        case number(state: UInt8, length: UInt8, integer: Bool)
        /// Inside a plain-text answer: how much of a call tag the last bytes began (`TextTag`).
        case text(UInt8)
    }

    /// Index of the innermost frame in the recognizer's arena.
    var top: Int32
    var lexer: Lexer
    /// Inside a string: characters it may still take (its schema's `maxLength`, or the default).
    var room: UInt16 = 0
}

/// A container being read (or the answer itself, at the root).
struct CallFrame: Sendable {
    enum Kind: UInt8, Sendable { case root, object, freeObject, array, freeArray }
    enum Phase: UInt8, Sendable {
        // Root: the envelope of each call, then between calls; before the first byte when the
        // answer may be a call or text, and inside a text answer.
        case open, name, arguments, close, afterCall, begin, text
        // Containers.
        case start, key, colon, after, comma, keyString, keyStart
        // Any frame: a value is expected (lexer idle) or being read.
        case value
    }

    var parent: Int32
    var kind: Kind
    var phase: Phase
    /// Object or array: its schema node. Root: the tool being called (-1 before its name).
    var node: Int32
    /// Object: the property being read.
    var current: Int32 = 0
    /// Object: properties given (bits). Arrays and free objects: items given. Root: calls
    /// completed, or, in a text answer, 1 once it holds a byte other than whitespace.
    var seen: UInt64 = 0
    /// Nesting depth of free-form containers.
    var depth: UInt8 = 0
}

/// Byte-level recognizer of the answers of one CallGrammar.
final class CallRecognizer {
    let grammar: CallGrammar
    /// Frames of every state reachable from the current one; states refer to them by index.
    private(set) var arena: [CallFrame] = []

    init(grammar: CallGrammar) {
        self.grammar = grammar
        arena.reserveCapacity(4096)
    }

    /// The state before any byte: the first call's opening, text, or either, as the grammar's
    /// tool choice allows.
    func initialState() -> CallParseState {
        arena.removeAll(keepingCapacity: true)
        switch (grammar.choice.allowsCalls, grammar.choice.allowsText) {
        case (true, true):
            arena.append(CallFrame(parent: -1, kind: .root, phase: .begin, node: -1))
            return CallParseState(top: 0, lexer: .idle)
        case (false, _):
            arena.append(CallFrame(parent: -1, kind: .root, phase: .text, node: -1))
            return CallParseState(top: 0, lexer: .text(0))
        case (true, false):
            arena.append(CallFrame(parent: -1, kind: .root, phase: .open, node: -1))
            return CallParseState(top: 0, lexer: .literal(grammar.openRoot))
        }
    }

    /// The arena's size, to `rewind` to after exploring.
    var mark: Int { arena.count }

    /// Drops the frames added after `mark` (states made since then become invalid).
    func rewind(to mark: Int) {
        if arena.count > mark { arena.removeLast(arena.count - mark) }
    }

    /// True when the answer may end in `state`: every call is complete, or the text answer holds
    /// something other than whitespace.
    func isComplete(_ state: CallParseState) -> Bool {
        let f = arena[Int(state.top)]
        guard f.kind == .root else { return false }
        if case .text = state.lexer { return f.seen > 0 }
        return state.lexer == .idle && f.phase == .afterCall
    }

    /// True when `state` is inside a call: past the start of its envelope, not yet closed.
    func isInsideCall(_ state: CallParseState) -> Bool {
        let f = arena[Int(state.top)]
        guard f.kind == .root else { return true }
        switch f.phase {
        case .begin, .text, .afterCall: return false
        case .open: return state.lexer != .literal(grammar.openRoot) && state.lexer != .literal(grammar.separatorRoot)
        default: return true
        }
    }

    /// True when `state` is inside a text answer.
    func isText(_ state: CallParseState) -> Bool {
        if case .text = state.lexer { return true }
        return false
    }

    /// Calls completed in `state` (their closing tag read); 0 in a text answer.
    func completedCalls(_ state: CallParseState) -> Int {
        if case .text = state.lexer { return 0 }
        var f = arena[Int(state.top)]
        while f.kind != .root { f = arena[Int(f.parent)] }
        return f.phase == .text || f.phase == .begin ? 0 : Int(f.seen)
    }

    /// True when `state` is complete and no further call may follow.
    func mustEnd(_ state: CallParseState) -> Bool {
        isComplete(state) && arena[Int(state.top)].seen >= UInt64(grammar.maxCalls)
    }

    /// Where the current call's tool name stands in `state`: not begun (the envelope's opening),
    /// being written (the literal node reached in the names trie), or chosen (the tool's index:
    /// anywhere later in the call); nil between calls.
    enum NameProgress: Equatable {
        case notBegun
        case writing(Int32)
        case chosen(Int32)
    }

    func nameProgress(_ s: CallParseState) -> NameProgress? {
        var f = arena[Int(s.top)]
        while f.kind != .root { f = arena[Int(f.parent)] }
        switch f.phase {
        case .open, .begin: return .notBegun
        case .text: return nil
        case .name:
            if case .literal(let n) = s.lexer { return .writing(n) }
            return nil
        case .afterCall: return nil
        default: return .chosen(f.node)
        }
    }

    /// True while the text reaches the current call's tool name (the envelope's opening or the
    /// name itself): the steps where a token can decide which tool is called.
    func isBeforeArguments(_ s: CallParseState) -> Bool {
        let f = arena[Int(s.top)]
        return f.kind == .root && (f.phase == .open || f.phase == .name || f.phase == .begin)
    }

    /// Advances `state` over `bytes`; false (and `state` unspecified) when they leave the grammar.
    func step(_ state: inout CallParseState, _ bytes: ArraySlice<UInt8>) -> Bool {
        for b in bytes where !step(&state, b) { return false }
        return true
    }

    /// Advances `state` over one byte; false when the byte leaves the grammar.
    func step(_ s: inout CallParseState, _ b: UInt8) -> Bool {
        let lit = grammar.literals
        while true {
            switch s.lexer {
            case .literal(let n):
                let c = lit.child(n, b)
                if c >= 0 && keyAllowed(c, s) {
                    if lit.isLeaf(c) {
                        s.lexer = .idle
                        literalDone(&s, payload: lit.payload(c))
                    } else {
                        s.lexer = .literal(c)
                    }
                    return true
                }
                let p = lit.payload(n)
                guard p >= 0 else { return false }
                s.lexer = .idle
                literalDone(&s, payload: p)
            case .string(let e):
                return stringByte(&s, escape: e, b)
            case .text(let t):
                return textByte(&s, tag: t, b)
            case .number(let state, let length, let integer):
                if length < CallGrammar.maxNumberLength, let next = Self.number(state, b, integer: integer) {
                    s.lexer = .number(state: next, length: length + 1, integer: integer)
                    return true
                }
                guard Self.numberAccepts(state) else { return false }
                s.lexer = .idle
                valueDone(&s)
            case .idle:
                switch structural(&s, b) {
                case .consumed: return true
                case .rejected: return false
                case .again: continue
                }
            }
        }
    }

    // MARK: Lexemes

    /// Progress through the call tags inside a text answer, as values of `Lexer.text`: a text
    /// answer may hold any printable byte, tab or newline, but never `<tool_call>` or
    /// `</tool_call>` (the parser would read a call there). 0: no tag begun; 1: after `<`;
    /// 2…10: that many bytes of `<tool_call>`; 11…20: t − 9 bytes of `</tool_call>`.
    enum TextTag {
        static let open = Array(ToolCall.openTag.utf8), close = Array(ToolCall.closeTag.utf8)

        /// The progress after byte `b`, or nil when `b` completes a tag.
        static func next(_ t: UInt8, _ b: UInt8) -> UInt8? {
            if b == UInt8(ascii: "<") { return 1 }
            switch t {
            case 1:
                return b == open[1] ? 2 : b == close[1] ? 11 : 0
            case 2...10:
                guard b == open[Int(t)] else { return 0 }
                return Int(t) + 1 == open.count ? nil : t + 1
            case 11...20:
                let matched = Int(t) - 9
                guard b == close[matched] else { return 0 }
                return matched + 1 == close.count ? nil : t + 1
            default:
                return 0
            }
        }
    }

    private func textByte(_ s: inout CallParseState, tag t: UInt8, _ b: UInt8) -> Bool {
        guard b >= 0x20 || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\t"), b != 0x7F, let next = TextTag.next(t, b) else {
            return false
        }
        s.lexer = .text(next)
        let isSpace = b == UInt8(ascii: " ") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\t")
        if !isSpace && arena[Int(s.top)].seen == 0 {
            var f = arena[Int(s.top)]
            f.seen = 1
            replaceTop(&s, f)
        }
        return true
    }

    private func stringByte(_ s: inout CallParseState, escape e: UInt8, _ b: UInt8) -> Bool {
        switch e {
        case 0:
            if b == UInt8(ascii: "\"") {
                s.lexer = .idle
                stringDone(&s)
                return true
            }
            guard b >= 0x20 else { return false }
            // A UTF-8 continuation byte belongs to the character its lead byte counted.
            if b & 0xC0 == 0x80 { return true }
            guard s.room > 0 else { return false }
            s.room -= 1
            if b == UInt8(ascii: "\\") { s.lexer = .string(1) }
            return true
        case StringStart.opening:
            if b == UInt8(ascii: " ") {
                guard s.room > 0 else { return false }
                s.room -= 1
                s.lexer = .string(StringStart.blank)
                return true
            }
            s.lexer = .string(0)
            return stringByte(&s, escape: 0, b)
        case StringStart.blank:
            if b == UInt8(ascii: " ") {
                guard s.room > 0 else { return false }
                s.room -= 1
                return true
            }
            return b == UInt8(ascii: "\"") && stringByte(&s, escape: 0, b)
        case 1:
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                 UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                s.lexer = .string(0)
                return true
            case UInt8(ascii: "u"):
                s.lexer = .string(StringEscape.first)
                return true
            default:
                return false
            }
        default:
            guard let next = StringEscape.next(e, b) else { return false }
            s.lexer = .string(next)
            return true
        }
    }

    /// The first states of a string-typed argument, as values of `Lexer.string`: a value the
    /// schema types as a string may be spaces alone (BFCL's gold answers hold `" "` as a
    /// separator) but never starts with a space before other text: the model's space-led tokens
    /// (" Edinburgh") would otherwise put the space into the argument.
    enum StringStart {
        /// Right after the opening quote.
        static let opening: UInt8 = 13
        /// Spaces only so far: more spaces or the closing quote.
        static let blank: UInt8 = 14
    }

    /// The states of a `\uXXXX` escape inside a string (after the backslash state 1), as values
    /// of `Lexer.string`. A code unit D800–DBFF (high surrogate) must be followed by `\u` and a
    /// DC00–DFFF one (low surrogate); a low one on its own is refused.
    enum StringEscape {
        /// The first hex digit; D leads to `afterD`.
        static let first: UInt8 = 2
        /// The second digit after a first D: 0–7 an ordinary unit, 8–B a high surrogate, C–F a
        /// lone low one (refused).
        static let afterD: UInt8 = 3
        /// An ordinary unit with three, two or one digits to go.
        static let three: UInt8 = 4, two: UInt8 = 5, one: UInt8 = 6
        /// A high surrogate with two or one digits to go.
        static let highTwo: UInt8 = 7, highOne: UInt8 = 8
        /// After a high surrogate: the backslash, the `u`, the D and the C–F of its low one.
        static let lowBackslash: UInt8 = 9, lowU: UInt8 = 10, lowD: UInt8 = 11, lowSecond: UInt8 = 12

        /// The state after byte `b` in state `e` (2…12), or nil when `b` leaves the grammar.
        static func next(_ e: UInt8, _ b: UInt8) -> UInt8? {
            switch e {
            case lowBackslash: return b == UInt8(ascii: "\\") ? lowU : nil
            case lowU: return b == UInt8(ascii: "u") ? lowD : nil
            case lowD: return b == UInt8(ascii: "d") || b == UInt8(ascii: "D") ? lowSecond : nil
            default: break
            }
            guard let v = hexValue(b) else { return nil }
            switch e {
            case first: return v == 0xD ? afterD : three
            case afterD: return v < 0x8 ? two : v < 0xC ? highTwo : nil
            case three: return two
            case two: return one
            case one: return 0
            case highTwo: return highOne
            case highOne: return lowBackslash
            case lowSecond: return v >= 0xC ? two : nil
            default: return nil
            }
        }

        private static func hexValue(_ b: UInt8) -> UInt8? {
            switch b {
            case 0x30...0x39: return b - 0x30
            case 0x41...0x46: return b - 0x41 + 10
            case 0x61...0x66: return b - 0x61 + 10
            default: return nil
            }
        }
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// The number automaton: 0 start, 1 after '-', 2 a leading zero, 3 integer digits, 4 after
    /// '.', 5 fraction digits, 6 after 'e', 7 after the exponent's sign, 8 and 9 one and two
    /// exponent digits. At most two exponent digits and `maxNumberLength` bytes keep every
    /// number finite as a Double (below 10^130), which JSON parsers, ours included, require.
    private static func number(_ state: UInt8, _ b: UInt8, integer: Bool) -> UInt8? {
        let digit = isDigit(b)
        switch state {
        case 0: return b == UInt8(ascii: "-") ? 1 : b == UInt8(ascii: "0") ? 2 : digit ? 3 : nil
        case 1: return b == UInt8(ascii: "0") ? 2 : digit ? 3 : nil
        case 2, 3:
            if state == 3 && digit { return 3 }
            if integer { return nil }
            return b == UInt8(ascii: ".") ? 4 : (b == UInt8(ascii: "e") || b == UInt8(ascii: "E")) ? 6 : nil
        case 4: return digit ? 5 : nil
        case 5: return digit ? 5 : (b == UInt8(ascii: "e") || b == UInt8(ascii: "E")) ? 6 : nil
        case 6: return (b == UInt8(ascii: "+") || b == UInt8(ascii: "-")) ? 7 : digit ? 8 : nil
        case 7: return digit ? 8 : nil
        case 8: return digit ? 9 : nil
        default: return nil
        }
    }

    static func numberAccepts(_ state: UInt8) -> Bool { state == 2 || state == 3 || state == 5 || state == 8 || state == 9 }

    /// In an object's key, only names not given yet may be continued.
    @inline(__always)
    private func keyAllowed(_ node: Int32, _ s: CallParseState) -> Bool {
        let f = arena[Int(s.top)]
        guard f.kind == .object && f.phase == .key else { return true }
        return grammar.literals.below(node) & ~f.seen != 0
    }

    // MARK: Frames

    private enum Outcome { case consumed, rejected, again }

    func replaceTop(_ s: inout CallParseState, _ f: CallFrame) {
        arena.append(f)
        s.top = Int32(arena.count - 1)
    }

    private func push(_ s: inout CallParseState, _ f: CallFrame) {
        var f = f
        f.parent = s.top
        arena.append(f)
        s.top = Int32(arena.count - 1)
    }

    func node(_ i: Int32) -> SchemaNode { grammar.nodes[Int(i)] }

    /// The byte after a complete lexeme (or a container's opening) in the frame's phase.
    private func structural(_ s: inout CallParseState, _ b: UInt8) -> Outcome {
        var f = arena[Int(s.top)]
        switch (f.kind, f.phase) {
        case (.root, .begin):
            // The first byte decides: a call's opening, or a text answer.
            if b == ToolCall.openTag.utf8.first! {
                f.phase = .open
                s.lexer = .literal(grammar.openRoot)
            } else {
                f.phase = .text
                s.lexer = .text(0)
            }
            replaceTop(&s, f)
            return .again
        case (.root, .afterCall):
            guard b == UInt8(ascii: "\n"), f.seen < UInt64(grammar.maxCalls) else { return .rejected }
            f.phase = .open
            f.node = -1
            replaceTop(&s, f)
            s.lexer = .literal(grammar.separatorRoot)
            return .again
        case (.root, .value):
            return valueStart(&s, node: grammar.toolRoots[Int(f.node)], depth: 0, b)
        case (.object, .start), (.object, .after):
            let n = node(f.node)
            if b == UInt8(ascii: "}") {
                guard n.required & ~f.seen == 0 else { return .rejected }
                return close(&s)
            }
            if f.phase == .start {
                guard b == UInt8(ascii: "\"") else { return .rejected }
                f.phase = .key
                replaceTop(&s, f)
                s.lexer = .literal(n.keyRoot)
                return .again
            }
            guard b == UInt8(ascii: ","), grammar.literals.below(n.keyRoot) & ~f.seen != 0 else { return .rejected }
            f.phase = .comma
            replaceTop(&s, f)
            s.lexer = .literal(grammar.commaRoot)
            return .again
        case (.object, .value), (.array, .value):
            let n = node(f.node)
            let child = f.kind == .object ? grammar.members[Int(n.first + f.current)] : grammar.members[Int(n.first)]
            return valueStart(&s, node: child, depth: f.depth, b)
        case (.freeObject, .start), (.freeObject, .keyStart):
            if f.phase == .start && b == UInt8(ascii: "}") { return close(&s) }
            guard b == UInt8(ascii: "\"") else { return .rejected }
            f.phase = .keyString
            replaceTop(&s, f)
            s.lexer = .string(0)
            s.room = CallGrammar.defaultMaxStringLength
            return .consumed
        case (.freeObject, .after):
            if b == UInt8(ascii: "}") { return close(&s) }
            guard b == UInt8(ascii: ","), f.seen < UInt64(CallGrammar.maxFreeMembers) else { return .rejected }
            f.phase = .comma
            replaceTop(&s, f)
            s.lexer = .literal(grammar.commaRoot)
            return .again
        case (.freeObject, .value), (.freeArray, .value):
            return valueStart(&s, node: -1, depth: f.depth, b)
        case (.array, .start), (.array, .after), (.freeArray, .start), (.freeArray, .after):
            let (lo, hi) = f.kind == .array ? (Int64(node(f.node).minItems), Int64(node(f.node).maxItems))
                : (0, Int64(CallGrammar.maxFreeItems))
            if b == UInt8(ascii: "]") {
                guard Int64(f.seen) >= lo else { return .rejected }
                return close(&s)
            }
            if f.phase == .start {
                guard hi > 0 else { return .rejected }
                f.phase = .value
                replaceTop(&s, f)
                return .again
            }
            guard b == UInt8(ascii: ","), Int64(f.seen) < hi else { return .rejected }
            f.phase = .comma
            replaceTop(&s, f)
            s.lexer = .literal(grammar.commaRoot)
            return .again
        default:
            return .rejected
        }
    }

    /// The first byte of a value of schema node `index` (-1: any value) in the top frame.
    private func valueStart(_ s: inout CallParseState, node index: Int32, depth: UInt8, _ b: UInt8) -> Outcome {
        let kind = index < 0 ? SchemaNode.Kind.any : node(index).kind
        switch kind {
        case .string:
            guard b == UInt8(ascii: "\"") else { return .rejected }
            s.lexer = .string(StringStart.opening)
            s.room = node(index).maxLength
            return .consumed
        case .literal:
            s.lexer = .literal(node(index).literalRoot)
            return .again
        case .integer, .number:
            guard let first = Self.number(0, b, integer: kind == .integer) else { return .rejected }
            s.lexer = .number(state: first, length: 1, integer: kind == .integer)
            return .consumed
        case .array:
            guard b == UInt8(ascii: "[") else { return .rejected }
            push(&s, CallFrame(parent: -1, kind: .array, phase: .start, node: index, depth: depth))
            return .consumed
        case .object:
            guard b == UInt8(ascii: "{") else { return .rejected }
            push(&s, CallFrame(parent: -1, kind: .object, phase: .start, node: index, depth: depth))
            return .consumed
        case .freeObject:
            guard b == UInt8(ascii: "{"), depth < CallGrammar.maxFreeDepth else { return .rejected }
            push(&s, CallFrame(parent: -1, kind: .freeObject, phase: .start, node: index, depth: depth + 1))
            return .consumed
        case .any:
            switch b {
            case UInt8(ascii: "\""):
                s.lexer = .string(0)
                s.room = CallGrammar.defaultMaxStringLength
                return .consumed
            case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                s.lexer = .literal(grammar.keywordRoot)
                return .again
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                guard depth < CallGrammar.maxFreeDepth else { return .rejected }
                push(&s, CallFrame(parent: -1, kind: b == UInt8(ascii: "[") ? .freeArray : .freeObject, phase: .start,
                                   node: -1, depth: depth + 1))
                return .consumed
            default:
                guard let first = Self.number(0, b, integer: false) else { return .rejected }
                s.lexer = .number(state: first, length: 1, integer: false)
                return .consumed
            }
        case .union:
            let n = node(index)
            for k in 0..<Int(n.count) {
                let m = grammar.members[Int(n.first) + k]
                if canStart(m, b) { return valueStart(&s, node: m, depth: depth, b) }
            }
            return .rejected
        }
    }

    /// Whether a value of node `index` can begin with byte `b`.
    private func canStart(_ index: Int32, _ b: UInt8) -> Bool {
        let n = node(index)
        switch n.kind {
        case .string: return b == UInt8(ascii: "\"")
        case .literal: return grammar.literals.child(n.literalRoot, b) >= 0
        case .integer: return Self.number(0, b, integer: true) != nil
        case .number: return Self.number(0, b, integer: false) != nil
        case .array: return b == UInt8(ascii: "[")
        case .object, .freeObject: return b == UInt8(ascii: "{")
        case .any: return true
        case .union: return (0..<Int(n.count)).contains { canStart(grammar.members[Int(n.first) + $0], b) }
        }
    }

    /// Closes the top container (its closing byte consumed) and completes the value it was.
    private func close(_ s: inout CallParseState) -> Outcome {
        s.top = arena[Int(s.top)].parent
        valueDone(&s)
        return .consumed
    }

    /// A value of the top frame is complete.
    func valueDone(_ s: inout CallParseState) {
        var f = arena[Int(s.top)]
        switch f.kind {
        case .root:
            f.phase = .close
            s.lexer = .literal(grammar.closeRoot)
        case .object:
            f.phase = .after
        case .freeObject, .array, .freeArray:
            f.phase = .after
            f.seen += 1
        }
        replaceTop(&s, f)
    }

    /// A string ended: a free object's key, or a value.
    private func stringDone(_ s: inout CallParseState) {
        var f = arena[Int(s.top)]
        if f.kind == .freeObject && f.phase == .keyString {
            f.phase = .colon
            replaceTop(&s, f)
            s.lexer = .literal(grammar.colonRoot)
        } else {
            valueDone(&s)
        }
    }

    /// A literal ended, with the payload of its entry; what it was follows from the frame's phase.
    func literalDone(_ s: inout CallParseState, payload: Int32) {
        var f = arena[Int(s.top)]
        switch f.phase {
        case .open:
            f.phase = .name
            s.lexer = .literal(grammar.namesRoot)
        case .name:
            f.phase = .arguments
            f.node = payload
            s.lexer = .literal(grammar.argumentsRoot)
        case .arguments:
            f.phase = .value
        case .close:
            f.phase = .afterCall
            f.seen += 1
        case .key:
            f.phase = .colon
            f.current = payload
            f.seen |= 1 << UInt64(payload)
            s.lexer = .literal(grammar.colonRoot)
        case .colon:
            f.phase = .value
        case .comma:
            if f.kind == .object {
                f.phase = .key
                s.lexer = .literal(node(f.node).keyRoot)
            } else {
                f.phase = f.kind == .freeObject ? .keyStart : .value
            }
        case .value:
            valueDone(&s)
            return
        default:
            return
        }
        replaceTop(&s, f)
    }
}
