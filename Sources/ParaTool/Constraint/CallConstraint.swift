// CallConstraint: schema-constrained decoding of one sequence. It keeps the sequence's position in
// its request's CallGrammar and answers which tokens keep the output a valid beginning of an
// answer (a token may span several JSON lexemes: its bytes are read one by one). Greedy decoding
// first tries the model's best token, which is allowed at most steps; only when it is not are the
// allowed tokens listed (trie walk, or the plain-string shortcut) and the best of them taken.
// Given a token budget, it closes in time: a token is taken only when the shortest completion
// after it (`shortestCompletion`, written in the fewest tokens the vocabulary allows) fits the
// tokens left, so every answer ends complete and a call that could not be finished is never begun.

import LLM
import Tensor

/// The constraint of one sequence of a batch: its own grammar position.
public final class CallConstraint: TokenConstraint {
    /// The vocabulary the sequence is decoded in.
    public let vocabulary: TokenVocabulary
    private let recognizer: CallRecognizer
    private var state: CallParseState
    private var allowed: [Int32] = []
    /// True once a stop token was committed.
    public private(set) var finished = false
    /// True once a token outside the grammar was committed (only `commit` of a token the
    /// constraint did not allow does that).
    public private(set) var broken = false
    /// Steps decided, and how many of them needed the allowed tokens listed because the model's
    /// best token was not allowed.
    public private(set) var steps = 0, listedSteps = 0
    /// Tokens the answer may hold (nil: no limit), and tokens committed so far.
    public let budget: Int?
    public private(set) var generated = 0
    /// True when the budget forced a token inside a call: the call was closed early, in the
    /// shortest way the schema allows, and its last values may be cut short.
    public private(set) var forceClosed = false
    /// A score per candidate tool (in the grammar's tool order) added to the logits of the
    /// tokens that write a call's tool name: each such token gets the best score among the
    /// tools it may still be naming, so greedy decoding ranks names by the model's logit plus
    /// the prior (with log weights: the product of the two). `-infinity` forbids a tool. Nil:
    /// the model alone picks the name.
    public var namePrior: [Float]?
    private var namesBelow: [Int32: [Int32]] = [:]

    /// A constraint at the start of an answer of `grammar`, holding the answer to `budget` tokens
    /// (nil: no limit) by closing it in time.
    public init(grammar: CallGrammar, vocabulary: TokenVocabulary, budget: Int? = nil) {
        self.vocabulary = vocabulary
        self.budget = budget
        recognizer = CallRecognizer(grammar: grammar)
        state = recognizer.initialState()
        allowed.reserveCapacity(vocabulary.size)
    }

    /// A constraint of `grammar` after `answer`, the tokens of an answer begun elsewhere (a row
    /// that resumes under another mixture), with `answer.count` of `budget` spent; nil when
    /// `answer` is not the beginning of an answer of `grammar`.
    public convenience init?(grammar: CallGrammar, vocabulary: TokenVocabulary, budget: Int?, answer: [Int]) {
        self.init(grammar: grammar, vocabulary: vocabulary, budget: budget)
        for token in answer where !advance(token) { return nil }
    }

    /// The grammar the answer is held to.
    public var grammar: CallGrammar { recognizer.grammar }

    /// Calls the answer has completed so far.
    public var completedCalls: Int { recognizer.completedCalls(state) }

    /// True when the answer is complete and may hold no further call.
    public var mustEnd: Bool { !broken && recognizer.mustEnd(state) }

    /// True when the text so far is a complete answer (the sequence may end here).
    public var isComplete: Bool { !broken && recognizer.isComplete(state) }

    /// Whether `token` may come next.
    public func accepts(_ token: Int) -> Bool {
        guard !finished && !broken else { return false }
        if vocabulary.stopSet.contains(token) { return recognizer.isComplete(state) }
        let bytes = vocabulary.tokenBytes(token)
        guard !bytes.isEmpty else { return false }
        let mark = recognizer.mark
        var s = state
        let ok = recognizer.step(&s, bytes)
        recognizer.rewind(to: mark)
        return ok
    }

    /// Every token that may come next (stop tokens when the answer may end), in no set order.
    public func allowedTokens() -> [Int32] {
        listAllowed()
        return allowed
    }

    /// Fills `allowed`.
    private func listAllowed() {
        allowed.removeAll(keepingCapacity: true)
        guard !finished && !broken else { return }
        if recognizer.isComplete(state) { allowed.append(contentsOf: vocabulary.stopTokens) }
        if recognizer.mustEnd(state) { return }
        let mark = recognizer.mark
        if state.lexer == .string(0) && Int(state.room) >= vocabulary.longestToken {
            // Plain bytes leave a string's state as it is: only tokens with a quote, a backslash
            // or a control byte need reading, and only from that byte on.
            allowed.append(contentsOf: vocabulary.plainTokens)
            for (token, first) in vocabulary.mixedTokens {
                var s = state
                let bytes = vocabulary.tokenBytes(Int(token))
                if recognizer.step(&s, bytes.dropFirst(Int(first))) { allowed.append(token) }
                recognizer.rewind(to: mark)
            }
        } else {
            walk(node: 0, state)
        }
        recognizer.rewind(to: mark)
    }

    /// Adds the tokens below trie node `node` whose bytes keep the grammar from `state`.
    private func walk(node: Int32, _ state: CallParseState) {
        let v = vocabulary
        let first = Int(v.firstEdge[Int(node)]), end = first + Int(v.edgeCount[Int(node)])
        var e = first
        while e < end {
            let child = v.edgeTargets[e]
            let mark = recognizer.mark
            var s = state
            if recognizer.step(&s, v.edgeBytes[e]) {
                let t = v.nodeToken[Int(child)]
                if t >= 0 {
                    allowed.append(t)
                    if let more = v.sameBytes[t] { allowed.append(contentsOf: more) }
                }
                walk(node: child, s)
            }
            recognizer.rewind(to: mark)
            e += 1
        }
    }

    /// The allowed token with the highest logit: the model's best token when it is allowed,
    /// else the best of the listed allowed tokens. A stop token when the answer must end. Under a
    /// budget, the best allowed token after which the answer can still be completed in the
    /// tokens left.
    public func bestAllowedToken(_ logits: MatrixView, row: Int) -> Int {
        steps += 1
        let token = bestGrammarToken(logits, row: row)
        guard let budget, !finished, !broken else { return token }
        let left = budget - generated - 1
        if fits(token, tokensLeft: left) { return token }
        if recognizer.isInsideCall(state) { forceClosed = true }
        listAllowed()
        // The model's best allowed tokens that fit, a few at most (each check writes a completion);
        // else the shortest completion's own first token, which always fits.
        if let fitting = topAllowed(logits, row: row, count: Self.forcedCandidates).first(where: { fits(Int($0), tokensLeft: left) }) {
            return Int(fitting)
        }
        // Nothing fits the estimate: end here when the answer is complete, else write the shortest
        // completion itself, from its first token.
        if recognizer.isComplete(state) {
            return Kernels.argmax(logits, row: row, among: vocabulary.stopTokens) ?? Int(vocabulary.stopTokens.first ?? 0)
        }
        if let text = recognizer.shortestCompletion(state), let first = vocabulary.fewestTokens(text).first { return Int(first) }
        return token
    }

    /// Allowed tokens checked against the budget in a forced step, best logits first.
    static let forcedCandidates = 32

    /// The `count` allowed tokens with the highest logits, best first.
    private func topAllowed(_ logits: MatrixView, row: Int, count: Int) -> [Int32] {
        var top = [(token: Int32, logit: Float)]()
        top.reserveCapacity(count + 1)
        for token in allowed {
            let logit = logits[row, Int(token)]
            guard top.count < count || logit > top[top.count - 1].logit else { continue }
            let at = top.firstIndex { logit > $0.logit } ?? top.count
            top.insert((token, logit), at: at)
            if top.count > count { top.removeLast() }
        }
        return top.map(\.token)
    }

    /// Whether after `token` the answer can be completed in `tokensLeft` more tokens: the
    /// shortest completion after it, written in the fewest tokens.
    private func fits(_ token: Int, tokensLeft: Int) -> Bool {
        if vocabulary.stopSet.contains(token) { return true }
        let bytes = vocabulary.tokenBytes(token)
        let mark = recognizer.mark
        defer { recognizer.rewind(to: mark) }
        var s = state
        guard recognizer.step(&s, bytes) else { return false }
        // The fewest tokens of a text are at most its bytes: no need to count them when it is short.
        guard let text = recognizer.shortestCompletion(s) else { return false }
        return text.count <= tokensLeft || vocabulary.fewestTokens(text).count <= tokensLeft
    }

    /// The fewest tokens that complete the answer so far (0 when it may end here).
    public var tokensToComplete: Int { recognizer.shortestCompletion(state).map { vocabulary.fewestTokens($0).count } ?? Int.max / 2 }

    /// The grammar's best token, budget aside.
    private func bestGrammarToken(_ logits: MatrixView, row: Int) -> Int {
        let stop = Int(vocabulary.stopTokens.first ?? 0)
        guard !finished && !broken else { return stop }
        if recognizer.mustEnd(state) {
            return Kernels.argmax(logits, row: row, among: vocabulary.stopTokens) ?? stop
        }
        if let prior = namePrior, recognizer.isBeforeArguments(state) {
            return bestNameToken(logits, row: row, prior: prior)
        }
        let best = Kernels.argmax(logits, row: row)
        if accepts(best) { return best }
        listedSteps += 1
        listAllowed()
        return Kernels.argmax(logits, row: row, among: allowed) ?? stop
    }

    /// The best allowed token by logit plus the name prior of the tools it may still be naming.
    private func bestNameToken(_ logits: MatrixView, row: Int, prior: [Float]) -> Int {
        listedSteps += 1
        listAllowed()
        let stop = Int(vocabulary.stopTokens.first ?? 0)
        let everyTool = prior.max() ?? 0
        var best = -1
        var bestScore = -Float.infinity
        for token in allowed {
            let mark = recognizer.mark
            var s = state
            _ = recognizer.step(&s, vocabulary.tokenBytes(Int(token)))
            let bias: Float
            switch recognizer.nameProgress(s) {
            case .writing(let node)?:
                if namesBelow[node] == nil { namesBelow[node] = recognizer.grammar.literals.entriesBelow(node) }
                bias = namesBelow[node]!.map { Int($0) < prior.count ? prior[Int($0)] : -.infinity }.max() ?? -.infinity
            case .chosen(let tool)?:
                bias = Int(tool) < prior.count ? prior[Int(tool)] : -.infinity
            default:
                bias = everyTool
            }
            recognizer.rewind(to: mark)
            let score = logits[row, Int(token)] + bias
            if best < 0 || score > bestScore {
                best = Int(token)
                bestScore = score
            }
        }
        return best < 0 ? stop : best
    }

    /// Records `token` as generated.
    public func commit(_ token: Int) {
        _ = advance(token)
    }

    /// Records `token` as generated; false (and the constraint broken) when it was not allowed.
    @discardableResult
    public func advance(_ token: Int) -> Bool {
        guard !finished && !broken else { return false }
        if vocabulary.stopSet.contains(token) {
            guard recognizer.isComplete(state) else { broken = true; return false }
            finished = true
            return true
        }
        let bytes = vocabulary.tokenBytes(token)
        guard !bytes.isEmpty, recognizer.step(&state, bytes) else { broken = true; return false }
        generated += 1
        return true
    }
}
