// CallStepDecoder: greedy decoding of a batch of answers in which every call may be decided under
// its own adapter mixture. The batch is a value: each row brings its prompt, mixture, constraint
// and token limit. When a row completes a call, the caller decides the next step (end the answer,
// or the next call's mixture); the row then resumes on its own inside the batch: its answer is cut
// back to the calls so far plus the separator's newline, and the prompt and that answer are read
// again under the new mixture in the next batched forward (as stage 1 trains a call that follows
// others), or, as the ablation, only the new tokens are read on top of the old cache.
import LLM
import Tensor

/// One row of a decode batch.
public struct DecodeRow {
    /// The prompt's tokens.
    public var prompt: [Int]
    /// The adapters fused in for the row's first call.
    public var mixture: Mixture
    /// The call grammar the answer is held to (nil: unconstrained, and no call steps).
    public var constraint: CallConstraint?
    /// Most tokens the answer may hold.
    public var limit: Int

    public init(prompt: [Int], mixture: Mixture, constraint: CallConstraint?, limit: Int) {
        self.prompt = prompt
        self.mixture = mixture
        self.constraint = constraint
        self.limit = limit
    }
}

/// What follows a completed call.
public enum CallStep {
    /// The answer ends after the calls so far.
    case end
    /// Another call, decided under `mixture`, with `namePrior` (see `CallConstraint.namePrior`).
    case next(Mixture, namePrior: [Float]?)
}

/// How a row that changes mixture between calls reads its context under the new one.
public enum CallStepReading: String, Sendable, CaseIterable, Codable {
    /// The prompt and the calls so far are read again under the new mixture (as trained).
    case reread
    /// The keys and values computed under the old mixture stay; only new tokens are read under
    /// the new one (the ablation: cheaper, not what the adapters were trained on).
    case keepCache = "keep-cache"
    /// One mixture for the whole answer: the model decides after each call, no step is asked.
    case off
}

/// Who decides that an answer ends after a call.
public enum AnswerEnd: String, Sendable, CaseIterable, Codable {
    /// The step: asked as soon as a call closes, it ends the answer or names the next mixture.
    case step
    /// The model, under the mixture of the call it just wrote: when it goes on to another call
    /// instead of ending, the step names that call's mixture.
    case model
}

/// One row's result.
public struct DecodedRow {
    /// The answer's tokens (the stop token last when the model wrote one).
    public var tokens: [Int]
    /// The constraint as the answer left it.
    public var constraint: CallConstraint?
    /// The mixture of each call, in order (the first is the row's own; one entry when no step
    /// was taken).
    public var callMixtures: [Mixture]
    /// Tokens read again after a change of mixture (the prompt and the answer so far).
    public var rereadTokens = 0
    /// True once the budget force-closed a call under a constraint the row has since left.
    var forceClosedEarlier = false

    /// True when the budget force-closed any of the answer's calls (`CallConstraint.forceClosed`
    /// of every constraint the row was decoded under).
    public var forceClosed: Bool { forceClosedEarlier || constraint?.forceClosed == true }
}

/// Runs decode batches on a Transformer whose branches are `mixture`. Not thread-safe.
final class CallStepDecoder {
    let runner: Transformer
    let mixture: AdapterMixture
    let tokenizer: Tokenizer
    let stopTokens: Set<Int>

    init(runner: Transformer, mixture: AdapterMixture, tokenizer: Tokenizer, stopTokens: Set<Int>) {
        self.runner = runner
        self.mixture = mixture
        self.tokenizer = tokenizer
        self.stopTokens = stopTokens
    }

    /// Decodes `rows` greedily, one batched forward per step. After a row completes a call and
    /// may take another (its grammar and budget allow one), `nextStep(row, callsText)` is asked
    /// with the answer's text through the last call's closing tag: nil lets the row go on as the
    /// model chooses under its current mixture. `onToken(row, token)` sees every generated token.
    func run(_ rows: [DecodeRow], reading: CallStepReading, end: AnswerEnd = .step,
             nextStep: (Int, String) -> CallStep?, onToken: ((Int, Int) -> Void)? = nil) -> [DecodedRow] {
        let config = runner.model.config
        var results = rows.map { DecodedRow(tokens: [], constraint: $0.constraint, callMixtures: [$0.mixture]) }
        let caches = rows.map { KVCache(config: config, capacity: $0.prompt.count + $0.limit) }
        var callsSeen = [Int](repeating: 0, count: rows.count)
        mixture.mixtures = rows.map(\.mixture)
        var segments = rows.enumerated().compactMap { i, r in r.limit > 0 ? BatchSegment(sequence: i, tokens: r.prompt) : nil }
        while !segments.isEmpty {
            let out = runner.forward(segments, caches: caches, logits: .lastOfEachSegment)
            var next = [BatchSegment]()
            for (i, s) in segments.enumerated() {
                let r = s.sequence
                let token: Int
                if let constraint = results[r].constraint {
                    token = constraint.bestAllowedToken(out.logits, row: i)
                    constraint.commit(token)
                } else {
                    token = Kernels.argmax(out.logits, row: i)
                }
                results[r].tokens.append(token)
                onToken?(r, token)
                guard !stopTokens.contains(token) && results[r].tokens.count < rows[r].limit else { continue }
                var segment = BatchSegment(sequence: r, tokens: [token])
                // Under `.model`, the step is asked once the model went on past a closed call.
                let completed = results[r].constraint?.completedCalls ?? 0
                let asks = end == .step ? completed > callsSeen[r]
                    : completed > callsSeen[r] && (results[r].constraint.map { !$0.isComplete } ?? false)
                if reading != .off, asks {
                    callsSeen[r] = completed
                    switch resume(row: r, rows[r], &results[r], cache: caches[r], reading: reading, nextStep: nextStep) {
                    case .finished: continue
                    case .read(let tokens): segment = BatchSegment(sequence: r, tokens: tokens)
                    case .unchanged: break
                    }
                }
                next.append(segment)
            }
            segments = next
        }
        return results
    }

    private enum Resumption {
        /// The row ended.
        case finished
        /// The row reads these tokens next.
        case read([Int])
        /// Nothing changed: the row reads its last token.
        case unchanged
    }

    /// The step after a completed call of row `r`: ends the answer, or cuts it back to the calls
    /// so far and the separator's newline under the next mixture, rewinding the cache.
    private func resume(row r: Int, _ row: DecodeRow, _ result: inout DecodedRow, cache: KVCache,
                        reading: CallStepReading, nextStep: (Int, String) -> CallStep?) -> Resumption {
        guard let constraint = result.constraint, !constraint.mustEnd else { return .unchanged }
        let text = tokenizer.decode(result.tokens)
        guard let close = text.range(of: ToolCall.closeTag, options: .backwards) else { return .unchanged }
        let calls = String(text[..<close.upperBound])
        // Another call must fit: the separator, then the shortest call, within the budget.
        let answer = tokenizer.encode(calls + "\n")
        guard answer.count < row.limit,
              let resumed = CallConstraint(grammar: constraint.grammar, vocabulary: constraint.vocabulary,
                                           budget: constraint.budget, answer: answer),
              answer.count + resumed.tokensToComplete <= row.limit
        else { return .unchanged }
        switch nextStep(r, calls) {
        case nil:
            return .unchanged
        case .end?:
            result.tokens = tokenizer.encode(calls)
            return .finished
        case .next(let next, let prior)?:
            resumed.namePrior = prior
            let old = result.tokens
            result.tokens = answer
            result.forceClosedEarlier = result.forceClosed
            result.constraint = resumed
            result.callMixtures.append(next)
            // The cache holds the prompt and every answer token but the last (not read yet).
            let same = Self.sameMixture(next, mixture.mixtures[r])
            if reading == .reread && !same {
                mixture.mixtures[r] = next
                cache.truncate(to: 0)
                result.rereadTokens += row.prompt.count + answer.count
                return .read(row.prompt + answer)
            }
            mixture.mixtures[r] = next
            var kept = zip(old.dropLast(), answer).prefix { $0 == $1 }.count
            if kept == answer.count { kept -= 1 }
            cache.truncate(to: row.prompt.count + kept)
            return .read(Array(answer[kept...]))
        }
    }

    /// True when `a` and `b` fuse the same adapters with the same weights.
    static func sameMixture(_ a: Mixture, _ b: Mixture) -> Bool {
        let x = a.components.filter { $0.weight != 0 }, y = b.components.filter { $0.weight != 0 }
        return x.count == y.count && zip(x, y).allSatisfy { $0.adapter === $1.adapter && $0.weight == $1.weight }
    }
}
