// HeldOutScorer: how well one tool's adapter, alone, answers held-out steps — the exact-match
// accuracy of its greedy, schema-constrained answers (the engine in oracle mode over the step's
// candidates, as the worker decodes) and the teacher-forced mean NLL of the gold calls. The online
// trainer scores a retrained candidate and the serving version on the same steps before promoting.
import Foundation
import LLM
import ParaTool
import Tensor

/// One held-out step's result.
public struct StepScore: Sendable, Equatable {
    /// The decoded answer is exactly the gold calls.
    public var correct: Bool
    /// Σ −log p over the gold answer's tokens.
    public var negativeLogLikelihood: Double
    /// The gold answer's tokens.
    public var tokens: Int
}

extension HeldOutScore {
    /// The score of these steps: how many are correct and the mean NLL per gold token.
    public init(_ steps: some Collection<StepScore>) {
        let tokens = steps.reduce(0) { $0 + $1.tokens }
        self.init(episodes: steps.count, correct: steps.filter(\.correct).count,
                  meanNLL: steps.reduce(0.0) { $0 + $1.negativeLogLikelihood } / Double(max(1, tokens)))
    }
}

/// Scores adapters of single tools on held-out steps with one model.
public final class HeldOutScorer {
    public let model: LanguageModel
    public let catalogue: ToolCatalogue
    private let builder: InstanceBuilder
    private let runner: Transformer
    private let branches: AdapterMixture
    private let vocabulary: TokenVocabulary
    private let threads: ComputeThreads
    /// Steps decoded together (one batch of the engine).
    public var batchSize = 8
    /// Tokens a decoded answer may run past its gold answer's length before it is cut off (a
    /// longer answer is wrong anyway).
    public var extraTokens = 16

    /// A scorer of `catalogue`'s tools on `model`, computing on `threads`.
    public init(model: LanguageModel, catalogue: ToolCatalogue, threads: ComputeThreads = .machine) throws {
        self.model = model
        self.catalogue = catalogue
        builder = try InstanceBuilder(tokenizer: model.tokenizer, catalogue: catalogue)
        self.threads = threads
        runner = Transformer(model: model.model, threads: threads)
        branches = AdapterMixture(threads: threads)
        runner.branches = branches
        vocabulary = TokenVocabulary(tokenizer: model.tokenizer)
    }

    /// The result of `adapter` (the adapter of `tool`, weight 1, nothing else fused in) on each of
    /// `steps`. A step's candidates are its trajectory's that the catalogue knows, and always `tool`.
    public func score(_ adapter: ToolAdapter, tool: String, steps: [(trajectory: Trajectory, step: Int)]) throws -> [StepScore] {
        guard !steps.isEmpty else { return [] }
        let engine = try ToolCallEngine(model: model, catalogue: catalogue, adapters: InMemoryAdapters([tool: (adapter, "scored")]),
                                        gate: nil, constrained: true, vocabulary: vocabulary, threads: threads)
        var scores = [StepScore]()
        var requests = [ToolCallRequest](), gold = [[ToolCall]]()
        func decode() throws {
            let first = scores.count - requests.count
            for (i, (response, calls)) in zip(try engine.run(requests), gold).enumerated() {
                scores[first + i].correct = response.action.calls == calls
            }
            requests.removeAll(keepingCapacity: true)
            gold.removeAll(keepingCapacity: true)
        }
        for (n, (t, k)) in steps.enumerated() {
            let instance = try builder.instances(t, documentAware: false).first { $0.step == k }
            guard let instance else { throw ToolFormatError("held-out step \(k) of \(t.id) has no calls") }
            var candidates = t.candidateTools.filter(catalogue.contains)
            if !candidates.contains(tool) { candidates.append(tool) }
            var request = ToolCallRequest(id: "\(t.id)#\(k)", query: t.query, history: Array(t.steps.prefix(k)), candidates: candidates,
                                          maxNewTokens: instance.target.count + extraTokens, mode: .oracle, goldTool: tool)
            // The step's gold answer is calls: the adapter is scored on writing them.
            request.toolChoice = .required
            requests.append(request)
            gold.append(t.steps[k].calls)
            scores.append(StepScore(correct: false, negativeLogLikelihood: negativeLogLikelihood(adapter, prompt: instance.prompt,
                                                                                                target: instance.target),
                                    tokens: instance.target.count))
            if requests.count == batchSize || n == steps.count - 1 { try decode() }
        }
        engine.releaseWorkingMemory()
        return scores
    }

    /// Σ −log p(target token) over `target` after `prompt`, under `adapter` at weight 1.
    func negativeLogLikelihood(_ adapter: ToolAdapter, prompt: [Int], target: [Int]) -> Double {
        let ids = prompt + target
        branches.mixtures = [Mixture([(adapter, 1)])]
        let cache = KVCache(config: model.model.config, capacity: ids.count)
        let out = runner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [cache], logits: .all)
        var total = 0.0
        for (j, token) in target.enumerated() {
            let row = out.logits.row(prompt.count - 1 + j)
            let peak = Double(row.max() ?? 0)
            let logSum = peak + log(row.reduce(0.0) { $0 + exp(Double($1) - peak) })
            total += logSum - Double(row[token])
        }
        return total
    }
}
