// Owns BFCLEvaluation: running BFCL questions through the ToolCallEngine under each evaluation
// mode (ParaTool, its ablations and the in-context baselines of docs/design.md §1), scoring the decoded
// calls with BFCLChecker, accounting prompt tokens, FLOPs and latency per request, writing the
// calls in BFCL's result format, and the side-by-side table of all modes.
import Foundation
import LLM
import ParaTool

/// The methods `paratool eval` compares.
public enum EvaluationMode: String, Sendable, CaseIterable {
    /// The gate's weights over the candidates' adapters, document-free prompt.
    case paratool
    /// Every candidate's document in the prompt, no adapters.
    case contextDocs = "context-docs"
    /// Documents plus k synthesized examples per candidate in the prompt, no adapters.
    case contextDocsExamples = "context-docs-examples"
    /// The Global Parameterization adapter (`_global`) alone at weight 1, document-free prompt.
    case global
    /// Equal weights over the candidates' adapters.
    case average
    /// The gate's best candidate's adapter alone.
    case top1
    /// The gold tools' adapters, equal weights.
    case oracle
    /// ParaTool with the adapters as stage 1 left them (before joint fine-tuning).
    case noFinetune = "no-finetune"
    /// Softmax of the cosine of context and tool vectors instead of the gate MLP.
    case embsim
    /// The gold tools' adapters as the adapter generator writes them from their documents, equal
    /// weights (as oracle): what generated adapters give before any training on the tool.
    case generated
    /// The gate's weights over the generator's adapters.
    case generatedGate = "generated-gate"

    /// What a mode's name ends with when its answers are not constrained to the call grammar.
    public static let unconstrainedSuffix = "-unconstrained"

    /// Whether the mode reads adapters from a store.
    public var needsAdapters: Bool { ![.contextDocs, .contextDocsExamples, .generated, .generatedGate].contains(self) }

    /// Whether the mode needs the trained gate.
    public var needsGate: Bool { [.paratool, .top1, .embsim, .noFinetune, .generatedGate].contains(self) }

    /// Whether the mode needs an adapter generator.
    public var needsGenerator: Bool { self == .generated || self == .generatedGate }

    /// The engine's selection mode that runs this evaluation mode.
    var selection: SelectionMode {
        switch self {
        case .paratool, .noFinetune, .generatedGate: return .paratool
        case .contextDocs, .contextDocsExamples: return .contextDocs
        case .global, .oracle, .generated: return .oracle
        case .average: return .average
        case .top1: return .top1
        case .embsim: return .embsim
        }
    }
}

/// Settings shared by every mode of an evaluation run.
public struct EvaluationSettings: Sendable {
    /// Greedy decoding budget per question.
    public var maxNewTokens = 256
    /// Examples per candidate tool in the Context+Docs&Examples prompt.
    public var examplesPerTool = 2
    /// Seed of the example synthesis.
    public var exampleSeed: UInt64 = 0
    /// Top-N of the gate (nil: the gate's own setting).
    public var topN: Int?
    /// Queries no synthesized example may equal (the evaluation questions).
    public var evaluationQueries: [String] = []
    /// Whether answers are held to the candidates' call grammar (schema-constrained decoding);
    /// single-call categories then allow one call per answer.
    public var constrained = true
    /// `ToolCallEngine.namePriorScale`: how strongly the selector's weights steer the named tool.
    public var namePriorScale: Float = 0
    /// What an answer may be (`auto`: calls or a text answer; `required`: calls).
    public var toolChoice: ToolChoice = .auto
    /// How calls after the first are decided (`ToolCallEngine.callSteps`).
    public var callSteps: CallStepReading = .reread
    /// Who ends an answer decided call by call (`ToolCallEngine.answerEnd`).
    public var answerEnd: AnswerEnd = .model

    /// The defaults: 256 new tokens, 2 examples per tool, seed 0.
    public init() {}
}

/// What one question gave under one mode.
public struct QuestionOutcome: Sendable {
    /// The question id.
    public var id: String
    /// The decoded calls, in the order written (empty when the model called nothing).
    public var calls: [ToolCall]
    /// The generated text.
    public var text: String
    /// True when the answer is text (no call tag); false for calls.
    public var isText = false
    /// True when the answer ended complete: calls without a parse error, or text.
    public var isComplete = true
    /// True when the token budget force-closed a call.
    public var forceClosed = false
    /// Arguments the calls hold that no gold call of the same function asks for
    /// (`unaskedArguments(calls:answer:)`).
    public var unaskedArguments = 0
    /// The AST verdict.
    public var check: BFCLCheckResult
    /// Prompt tokens.
    public var promptTokens: Int
    /// Generated tokens (including a final stop token).
    public var generatedTokens: Int
    /// Adapters fused in.
    public var adapters: Int
    /// LoRA rank of the fused adapters (0 when none).
    public var rank: Int
    /// FLOPs of the request by part.
    public var flops: FlopsBreakdown
    /// FLOPs the same request costs in the Context+Docs format.
    public var contextDocsFlops: Int
    /// Wall seconds of the request (selection, prompt, generation, parsing).
    public var seconds: Double

    /// The line of BFCL's result file: `id`, `result` = one `{function_name: {param: value}}`
    /// per call, and the counts BFCL's own result files carry (`input_token_count`,
    /// `output_token_count`, `latency`) plus `flops`.
    public var resultLine: String {
        let result = JSONValue.array(calls.map { call in
            .object(JSONObject([(call.name, call.arguments)]))
        })
        return JSONValue.object(JSONObject([
            ("id", .string(id)), ("result", result), ("input_token_count", .int(Int64(promptTokens))),
            ("output_token_count", .int(Int64(generatedTokens))), ("latency", .double((seconds * 1000).rounded() / 1000)),
            ("flops", .int(Int64(flops.total))),
        ])).serialized(asciiOnly: false)
    }
}

/// One mode's results.
public struct ModeReport: Sendable {
    /// The mode.
    public var mode: EvaluationMode
    /// Whether its answers were constrained to the call grammar.
    public var constrained = true
    /// The mode's name in tables and file names: `paratool`, or `paratool-unconstrained`.
    public var name: String { mode.rawValue + (constrained ? "" : EvaluationMode.unconstrainedSuffix) }
    /// Per question, in question order (empty when the mode was skipped).
    public var outcomes: [QuestionOutcome] = []
    /// Why the mode did not run, when it did not.
    public var skipped: String?
    /// A remark on how the mode ran (e.g. what it fell back to).
    public var note: String?

    /// Questions scored.
    public var count: Int { outcomes.count }
    /// Questions answered correctly.
    public var correct: Int { outcomes.filter(\.check.valid).count }
    /// correct / count (0 when empty).
    public var accuracy: Double { count == 0 ? 0 : Double(correct) / Double(count) }
    /// Answers that are text, that ended complete, and whose calls the budget force-closed.
    public var textAnswers: Int { outcomes.filter(\.isText).count }
    public var completeAnswers: Int { outcomes.filter(\.isComplete).count }
    public var forceClosedAnswers: Int { outcomes.filter(\.forceClosed).count }
    /// Calls written, and arguments among them no gold call asks for.
    public var callsWritten: Int { outcomes.map(\.calls.count).reduce(0, +) }
    public var unaskedArguments: Int { outcomes.map(\.unaskedArguments).reduce(0, +) }
    /// Mean prompt tokens.
    public var meanPromptTokens: Double { mean(outcomes.map { Double($0.promptTokens) }) }
    /// Mean FLOPs per request.
    public var meanFlops: Double { mean(outcomes.map { Double($0.flops.total) }) }
    /// Mean FLOPs of the same requests in the Context+Docs format.
    public var meanContextDocsFlops: Double { mean(outcomes.map { Double($0.contextDocsFlops) }) }
    /// Mean wall seconds per request.
    public var meanSeconds: Double { mean(outcomes.map(\.seconds)) }

    private func mean(_ xs: [Double]) -> Double { xs.isEmpty ? 0 : xs.reduce(0, +) / Double(xs.count) }
}

/// Runs BFCL questions of one category under the evaluation modes.
public final class BFCLEvaluation {
    /// The base model.
    public let model: LanguageModel
    /// The questions, in file order.
    public let questions: [BFCLQuestion]
    /// Gold answers by question id.
    public let answers: [String: BFCLAnswer]
    /// The BFCL category name (e.g. `multiple`), which names the result files.
    public let categoryName: String
    /// The checker's rules (by default those the category name declares).
    public let rules: BFCLCategory
    /// Trained adapters (nil: only the in-context modes can run).
    public let store: AdapterStore?
    /// The trained gate (nil: the gate modes cannot run).
    public let gate: GateNetwork?
    /// The adapter generator (nil: the generated modes cannot run).
    public let generator: AdapterHypernetwork?
    /// The settings.
    public var settings: EvaluationSettings
    /// The model's vocabulary for constrained decoding, prepared once for every question.
    private lazy var vocabulary = TokenVocabulary(tokenizer: model.tokenizer)

    /// An evaluation of `questions` (each must have an answer in `answers`, except under the
    /// irrelevance rules, which need none), scored by `rules` (default:
    /// `BFCLCategory(name: categoryName)`).
    /// - Throws: `ToolFormatError` naming a question without a gold answer.
    public init(model: LanguageModel, questions: [BFCLQuestion], answers: [BFCLAnswer], categoryName: String,
                rules: BFCLCategory? = nil,
                store: AdapterStore?, gate: GateNetwork?, generator: AdapterHypernetwork? = nil,
                settings: EvaluationSettings = EvaluationSettings()) throws {
        self.model = model
        self.questions = questions
        self.answers = Dictionary(answers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        self.categoryName = categoryName
        self.rules = rules ?? BFCLCategory(name: categoryName)
        self.store = store
        self.gate = gate
        self.generator = generator
        self.settings = settings
        if self.rules != .irrelevance, let missing = questions.first(where: { self.answers[$0.id] == nil }) {
            throw ToolFormatError("question \(missing.id) has no gold answer in the answer file")
        }
    }

    /// The file name of a report's results: `bfcl_<category>_<name>.jsonl`.
    public func resultFileName(_ report: ModeReport) -> String { "bfcl_\(categoryName)_\(report.name).jsonl" }

    /// Most calls an answer may hold in this category when constrained: one in the single-call
    /// categories (simple, multiple), no limit but the grammar's in the parallel ones.
    public var maxCalls: Int? {
        switch rules {
        case .simple, .multiple: return 1
        case .parallel, .parallelMultiple, .irrelevance: return nil
        }
    }

    /// Runs every question under `mode`, one request at a time (so latency is per request),
    /// constrained to the call grammar unless `constrained` is false (default: the settings').
    /// `progress` gets each finished question with its index and whether it came from `journal`.
    /// With a journal, questions it holds are read back (their calls scored again) instead of
    /// answered, and each question answered is appended to it. A mode whose gate or adapters are
    /// missing is returned skipped, with the reason.
    public func run(_ mode: EvaluationMode, constrained: Bool? = nil, journal: EvaluationJournal? = nil,
                    progress: (_ index: Int, _ outcome: QuestionOutcome, _ fromJournal: Bool) -> Void = { _, _, _ in }) throws -> ModeReport {
        var report = ModeReport(mode: mode)
        report.constrained = constrained ?? settings.constrained
        if mode.needsGate && gate == nil {
            report.skipped = "needs the trained gate (--gate, or a store with .gate)"
            return report
        }
        if mode.needsGenerator && generator == nil {
            report.skipped = "needs an adapter generator (--generator)"
            return report
        }
        if (mode == .oracle || mode == .generated) && rules == .irrelevance {
            report.skipped = "no gold tool: no function fits an irrelevance question"
            return report
        }
        if mode.needsAdapters && store == nil {
            report.skipped = "needs trained adapters (--adapter-store)"
            return report
        }
        let provider: AdapterProvider
        switch mode {
        case .contextDocs, .contextDocsExamples:
            provider = InMemoryAdapters()
        case .global:
            guard let store, try store.latest(tool: OfflineTraining.globalAdapterName) != nil else {
                report.skipped = "the store has no \(OfflineTraining.globalAdapterName) adapter (train with --global)"
                return report
            }
            provider = GlobalAdapter(store: store, config: model.model.config)
        case .generated, .generatedGate:
            var seen = Set<String>()
            let tools = questions.flatMap(\.functions).filter { seen.insert($0.name).inserted }
            provider = try GeneratedAdapters(generator: generator!, catalogue: ToolCatalogue(tools), model: model.model,
                                             tokenizer: model.tokenizer, threads: .machine)
        case .noFinetune:
            let stages = StageAdapters(store: store!, config: model.model.config, stage: "pretrain")
            if try !stages.storeHasLaterStages() {
                report.note = "the store has no stage-3 versions, so this equals paratool"
            }
            provider = stages
        default:
            provider = StoreAdapters(store: store!, config: model.model.config)
        }
        for (index, question) in questions.enumerated() {
            if let recorded = journal?.recorded[question.id] {
                let outcome = scored(recorded, question: question)
                report.outcomes.append(outcome)
                progress(index, outcome, true)
                continue
            }
            let outcome = try answer(question, mode: mode, constrained: report.constrained, provider: provider)
            try journal?.append(outcome)
            report.outcomes.append(outcome)
            progress(index, outcome, false)
        }
        return report
    }

    /// `outcome` with its verdict and unasked arguments computed from its calls for `question`.
    func scored(_ outcome: QuestionOutcome, question: BFCLQuestion) -> QuestionOutcome {
        let answer = answers[question.id] ?? BFCLAnswer(id: question.id, groundTruth: [])
        var o = outcome
        o.check = BFCLChecker.check(calls: o.calls, answer: answer, functions: question.functions, category: rules)
        o.unaskedArguments = Self.unaskedArguments(calls: o.calls, answer: answer)
        return o
    }

    /// One question under `mode`: its own functions are the catalogue and the candidates.
    func answer(_ question: BFCLQuestion, mode: EvaluationMode, constrained: Bool, provider: AdapterProvider) throws -> QuestionOutcome {
        let answer = answers[question.id] ?? BFCLAnswer(id: question.id, groundTruth: [])
        let catalogue = ToolCatalogue(question.functions)
        let engine = try ToolCallEngine(model: model, catalogue: catalogue, adapters: provider, gate: mode.needsGate ? gate : nil,
                                        constrained: constrained, vocabulary: vocabulary, callSteps: settings.callSteps,
                                        answerEnd: settings.answerEnd)
        engine.namePriorScale = settings.namePriorScale
        let query = question.turns.first?.last(where: { $0.role == "user" })?.content ?? ""
        var request = ToolCallRequest(id: question.id, query: query, candidates: catalogue.names,
                                      maxNewTokens: settings.maxNewTokens, topN: settings.topN, mode: mode.selection)
        request.maxCalls = maxCalls
        request.toolChoice = settings.toolChoice
        switch mode {
        case .oracle, .generated:
            // Each gold call's tool in order: call by call, the oracle gives each call its own.
            request.goldTools = answer.groundTruth.map(\.name)
        case .global:
            // The engine weighs one "gold" candidate at 1; the provider serves `_global` for it.
            request.goldTools = [catalogue.names[0]]
        case .contextDocsExamples:
            request.examples = examples(for: question.functions)
            request.examplesPerTool = settings.examplesPerTool
        default:
            break
        }
        let start = Date()
        let response = try engine.run([request])[0]
        let seconds = Date().timeIntervalSince(start)
        let calls = response.action.calls
        var isText = false
        if case .answer = response.action { isText = true }
        let used = response.weights.filter { $0.weight != 0 && $0.adapterVersion != nil }
        let rank = try used.first.flatMap { try provider.adapter(for: $0.tool)?.adapter.rank } ?? 0
        return QuestionOutcome(
            id: question.id, calls: calls, text: response.text, isText: isText,
            isComplete: isText || (!calls.isEmpty && response.diagnostics.allSatisfy { $0.severity != .error }),
            forceClosed: response.forceClosed,
            unaskedArguments: Self.unaskedArguments(calls: calls, answer: answer),
            check: BFCLChecker.check(calls: calls, answer: answer, functions: question.functions,
                                     category: rules),
            promptTokens: response.promptTokens, generatedTokens: response.generatedTokens, adapters: used.count,
            rank: rank, flops: response.flops, contextDocsFlops: response.contextDocsFlops, seconds: seconds)
    }

    /// `examplesPerTool` atomic examples per tool, synthesized from the tools' schemas (no
    /// example equals an evaluation query).
    func examples(for tools: [ToolSpec]) -> [String: [ToolExample]] {
        var config = SynthesisConfig()
        config.examplesPerTool = max(1, settings.examplesPerTool)
        config.episodes = 0
        config.seed = settings.exampleSeed
        let (trajectories, _) = ExampleSynthesizer(tools: tools, config: config, evaluationQueries: settings.evaluationQueries).synthesize()
        var out = [String: [ToolExample]]()
        for t in trajectories where t.source == "synth:atomic" {
            guard let call = t.steps.first?.calls.first else { continue }
            out[call.name, default: []].append(ToolExample(query: t.query, calls: [call]))
        }
        return out
    }

    /// Writes `report`'s result lines, one per question in order, to `directory`/`resultFileName`.
    /// - Returns: the file written.
    @discardableResult
    public func writeResults(_ report: ModeReport, to directory: URL) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent(resultFileName(report))
        let text = report.outcomes.map { $0.resultLine + "\n" }.joined()
        try Data(text.utf8).write(to: url, options: .atomic)
        return url
    }

    /// The side-by-side Markdown table of `reports`: AST accuracy, mean prompt tokens, FLOPs per
    /// request, relative to the Context+Docs mode's run (which generated its own, often longer,
    /// answers) when it ran, and relative to the same requests priced in the Context+Docs format
    /// (same generated length: the prompt's share alone), mean latency.
    public static func table(_ reports: [ModeReport]) -> String {
        let docs = reports.first { $0.mode == .contextDocs && $0.constrained && $0.skipped == nil && $0.count > 0 }
            ?? reports.first { $0.mode == .contextDocs && $0.skipped == nil && $0.count > 0 }
        var lines = ["| mode | AST accuracy | correct | mean prompt tokens | GFLOPs / request | FLOPs vs context-docs run "
                     + "| FLOPs vs same request with docs | mean latency (s) | ended complete | text answers | force-closed "
                     + "| unasked arguments / calls |",
                     "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in reports {
            if let reason = r.skipped {
                lines.append("| \(r.name) | skipped: \(reason) | | | | | | | | | | |")
                continue
            }
            let relative = docs.map { String(format: "%+.1f%%", 100 * (r.meanFlops / $0.meanFlops - 1)) } ?? "—"
            let sameRequest = r.meanContextDocsFlops > 0 ? String(format: "%+.1f%%", 100 * (r.meanFlops / r.meanContextDocsFlops - 1)) : "—"
            lines.append(String(format: "| %@ | %.1f%% | %d/%d | %.1f | %.3f | %@ | %@ | %.2f | %d/%d | %d | %d | %d/%d |", r.name, 100 * r.accuracy,
                                r.correct, r.count, r.meanPromptTokens, r.meanFlops / 1e9, relative, sameRequest, r.meanSeconds,
                                r.completeAnswers, r.count, r.textAnswers, r.forceClosedAnswers, r.unaskedArguments, r.callsWritten))
        }
        let notes = reports.compactMap { r in r.note.map { "- \(r.name): \($0)" } }
        return (lines + (notes.isEmpty ? [] : [""] + notes)).joined(separator: "\n")
    }
}

extension BFCLEvaluation {
    /// The modes each subject is compared with question by question: ParaTool against the
    /// documents in the prompt, Global and Top-1; generated adapters against the documents, Global,
    /// the trained adapters (oracle, the same selection) and ParaTool.
    public static func pairedBaselines(of subject: EvaluationMode) -> [EvaluationMode] {
        subject == .generated ? [.contextDocs, .global, .oracle, .paratool] : [.contextDocs, .global, .top1]
    }

    /// `subject` (default ParaTool) against each of `pairedBaselines(of:)` (constrained runs of
    /// both, same questions), as a Markdown table: questions both get right, only the subject, only
    /// the other, neither, and the exact two-sided sign test (McNemar's) on the questions where
    /// they differ, so a difference is read against its noise. Empty when the subject or every
    /// baseline did not run.
    public static func pairedComparisons(_ reports: [ModeReport], subject: EvaluationMode = .paratool) -> String {
        func ran(_ mode: EvaluationMode) -> ModeReport? {
            reports.first { $0.mode == mode && $0.constrained && $0.skipped == nil && $0.count > 0 }
        }
        guard let ours = ran(subject) else { return "" }
        let name = subject.rawValue
        var lines = ["| \(name) against | both right | only \(name) | only the other | both wrong | sign test p (two-sided) |",
                     "|---|---:|---:|---:|---:|---:|"]
        for mode in pairedBaselines(of: subject) {
            guard let other = ran(mode) else { continue }
            let theirs = Dictionary(other.outcomes.map { ($0.id, $0.check.valid) }, uniquingKeysWith: { a, _ in a })
            var both = 0, onlyOurs = 0, onlyTheirs = 0, neither = 0
            for o in ours.outcomes {
                guard let t = theirs[o.id] else { continue }
                switch (o.check.valid, t) {
                case (true, true): both += 1
                case (true, false): onlyOurs += 1
                case (false, true): onlyTheirs += 1
                case (false, false): neither += 1
                }
            }
            lines.append(String(format: "| %@ | %d | %d | %d | %d | %.3f |", mode.rawValue, both, onlyOurs, onlyTheirs, neither,
                                signTestP(onlyOurs, onlyTheirs)))
        }
        return lines.count > 2 ? lines.joined(separator: "\n") : ""
    }

    /// The exact two-sided sign test of `a` against `b` discordant pairs under p = 1/2:
    /// min(1, 2 · P(X ≤ min(a, b))) for X ~ Binomial(a + b, 1/2); 1 when there are none.
    public static func signTestP(_ a: Int, _ b: Int) -> Double {
        let n = a + b
        guard n > 0 else { return 1 }
        var tail = 0.0
        for k in 0...min(a, b) {
            // log C(n, k) - n log 2, summed in log space so large n cannot overflow.
            tail += exp(lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1)) - Double(n) * log(2.0))
        }
        return min(1, 2 * tail)
    }

    /// Arguments of `calls` that the gold answer does not ask for: for every gold call of the
    /// call's function, the argument is absent from it or may only be omitted (its one
    /// acceptable value is `""`). Calls of a function the gold never calls count nothing (the
    /// checker already fails them). An optional argument the request never mentioned, filled
    /// with a made-up value, is what this counts.
    public static func unaskedArguments(calls: [ToolCall], answer: BFCLAnswer) -> Int {
        var count = 0
        for call in calls {
            let gold = answer.groundTruth.filter { $0.name == call.name }
            guard !gold.isEmpty, case .object(let arguments) = call.arguments else { continue }
            for key in arguments.keys {
                let asked = gold.contains { g in
                    g.parameters.contains { $0.name == key && $0.acceptable.contains { $0 != .string("") } }
                }
                if !asked { count += 1 }
            }
        }
        return count
    }
}

/// The Global Parameterization adapter for every tool: the engine asks per tool, and each answer
/// is the one shared `_global` adapter (so one weighted candidate fuses it alone at weight 1).
final class GlobalAdapter: AdapterProvider {
    private let inner: StoreAdapters

    init(store: AdapterStore, config: ModelConfig) { inner = StoreAdapters(store: store, config: config) }

    func adapter(for tool: String) throws -> (adapter: ToolAdapter, version: String)? {
        try inner.adapter(for: OfflineTraining.globalAdapterName)
    }
}

/// Each tool's newest adapter version published by one training stage (e.g. `pretrain`: the
/// adapters before joint fine-tuning), loaded once and checked against its manifest hash.
public final class StageAdapters: AdapterProvider {
    /// The store.
    public let store: AdapterStore
    /// The model configuration the adapters must fit.
    public let config: ModelConfig
    /// The stage whose versions are served.
    public let stage: String
    private var cache: [String: (adapter: ToolAdapter, version: String)] = [:]

    /// Serves `store`'s versions of `stage`.
    public init(store: AdapterStore, config: ModelConfig, stage: String) {
        self.store = store
        self.config = config
        self.stage = stage
    }

    /// The newest servable version of `tool` from `stage` (held versions count once promoted), or
    /// nil when it has none.
    public func adapter(for tool: String) throws -> (adapter: ToolAdapter, version: String)? {
        if let hit = cache[tool] { return hit }
        guard let version = try store.versions(tool: tool).last(where: { try $0.stage == stage && store.isServable($0) }) else { return nil }
        let adapter = try store.load(tool: tool, version: version.version, expectedSHA256: version.sha256, config: config)
        cache[tool] = (adapter, version.version)
        return (adapter, version.version)
    }

    /// Whether any tool has a version newer than its newest `stage` version (from a later stage).
    public func storeHasLaterStages() throws -> Bool {
        for tool in try store.tools() where tool != OfflineTraining.globalAdapterName {
            let versions = try store.versions(tool: tool)
            if let last = versions.last, last.stage != stage { return true }
        }
        return false
    }
}
