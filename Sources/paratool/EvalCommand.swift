// `paratool eval`: BFCL questions under each evaluation mode (BFCLEvaluation does the work): AST
// accuracy by BFCL's rules, prompt tokens, FLOPs and latency per request, the decoded calls in
// BFCL's result format per mode, and the side-by-side table of all modes.
import ArgumentParser
import Foundation
import LLM
import ParaTool
import ParaToolTraining

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score modes of tool calling on BFCL questions by BFCL's AST rules, with FLOPs and latency per request.",
        discussion: """
            Each question's candidate tools are its own `function` list. Modes: \
            \(EvaluationMode.allCases.map(\.rawValue).joined(separator: ", ")). paratool, top1, embsim, no-finetune and \
            generated-gate need the trained gate; every mode but the context and generated ones needs --adapter-store; \
            generated (the gold tools' adapters, as oracle) and generated-gate (the gate's weights) serve adapters \
            --generator writes from the tools' documents instead of trained ones. global fuses the store's \
            _global adapter alone; no-finetune uses each tool's newest stage-1 (pretrain) version; oracle weighs the \
            gold answer's tools equally; context-docs-examples adds --examples synthesized examples per tool (from the \
            schemas; none equals an evaluation query).

            Answers are held to the call grammar of each question's functions (schema-constrained decoding; one call \
            per answer in the single-call categories simple and multiple) and to --max-new-tokens: a call the budget \
            would cut is closed in the shortest way its schema allows (counted as force-closed). With --tool-choice \
            auto (the default) an answer may instead be text, which the irrelevance rules count as correct and every \
            other category as wrong; required holds every answer to calls. A mode named with the suffix \
            -unconstrained (e.g. paratool-unconstrained) runs without the constraint, as every mode does with \
            --unconstrained, for the ablation.

            Writes OUT/bfcl_<category>_<mode>.jsonl (one line per question: id, result = [{function: {param: value}}], \
            input_token_count, output_token_count, latency, flops), OUT/bfcl_<category>_table.md, and prints the table.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("BFCL question file, BFCL_v4_<category>.json (the category sets the checker's rules).", valueName: "file"))
    var data: String

    @Option(help: ArgumentHelp("BFCL possible_answer file of the same category (irrelevance has none: there, correct means no call).", valueName: "file"))
    var answers: String?

    @Option(help: ArgumentHelp("What an answer may be: auto (calls or a text answer) or required (calls only) (default auto).", valueName: "choice"))
    var toolChoice: String = "auto"

    @Option(help: ArgumentHelp("How calls after the first are decided: reread (each call under its own mixture, the prompt and the calls so far read again), keep-cache (the ablation: the old cache kept), off (one mixture for the whole answer) (default reread).", valueName: "policy"))
    var callSteps: CallStepReading = .reread

    @Option(help: ArgumentHelp("Who ends an answer decided call by call: model (the model under the last call's mixture; when it goes on, the gate or the oracle names the next call's mixture) or step (the gate's no-call candidate; the oracle's gold count) (default model).", valueName: "who"))
    var answerEnd: AnswerEnd = .model

    @Option(help: ArgumentHelp("The checker's rules: simple, multiple, parallel, parallel_multiple or irrelevance (default: the ones the file name declares; required when it names none).", valueName: "rules"))
    var rules: BFCLCategory?

    @Option(help: ArgumentHelp("Mode to run; repeatable or comma-separated, optionally with the suffix -unconstrained (default: every mode).", valueName: "mode"))
    var mode: [String] = []

    @Flag(help: "Decode without the call-grammar constraint (ablation).")
    var unconstrained = false

    @Option(help: ArgumentHelp("How strongly the gate's weights steer which tool a call names: scale · log(weight) added to the name's logits (0: the model alone).", valueName: "scale"))
    var namePrior: Float = 0

    @Option(help: ArgumentHelp("Adapter store with the trained adapters.", valueName: "dir"))
    var adapterStore: String?

    @Option(help: ArgumentHelp("Trained gate directory (default: STORE/.gate when it exists).", valueName: "dir"))
    var gate: String?

    @Option(help: ArgumentHelp("Adapter generator (paratool generator train) for the generated modes.", valueName: "file"))
    var generator: String?

    @Option(help: "Use the first N questions (0: all).")
    var limit = 0

    @Option(help: ArgumentHelp("Directory for the result files and the table.", valueName: "dir"))
    var out = "."

    @Option(help: "Greedy decoding budget per question.")
    var maxNewTokens = 256

    @Option(help: "Synthesized examples per tool in context-docs-examples.")
    var examples = 2

    @Option(help: "Keep the gate's N highest-weighted tools (default: the gate's setting).")
    var topN: Int?

    @Option(help: ArgumentHelp("Keep every answered question in a journal in this directory and, run again with the same settings, go on from the last one answered (a journal made under other settings is refused; the store and gate are compared by path, not content: use a new directory after retraining).", valueName: "dir"))
    var resumeFrom: String?

    @Option(help: ArgumentHelp("More evaluation queries the synthesized examples must not equal (BFCL question file or one query a line). Repeatable.", valueName: "file"))
    var heldOut: [String] = []

    func validate() throws {
        _ = try modes()
        guard ["auto", "required"].contains(toolChoice) else { throw ValidationError("--tool-choice must be auto or required") }
        if limit < 0 || maxNewTokens < 1 || examples < 1 { throw ValidationError("--limit must be ≥ 0, --max-new-tokens and --examples ≥ 1") }
    }

    /// The modes to run, each with whether it is constrained.
    func modes() throws -> [(mode: EvaluationMode, constrained: Bool)] {
        let names = mode.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
        guard !names.isEmpty else { return EvaluationMode.allCases.map { ($0, !unconstrained) } }
        return try names.map { name in
            let plain = name.hasSuffix(EvaluationMode.unconstrainedSuffix) ? String(name.dropLast(EvaluationMode.unconstrainedSuffix.count)) : name
            guard let m = EvaluationMode(rawValue: plain) else {
                throw ValidationError("unknown mode '\(name)'; modes: \(EvaluationMode.allCases.map(\.rawValue).joined(separator: ", ")), "
                                      + "each optionally with the suffix \(EvaluationMode.unconstrainedSuffix)")
            }
            return (m, !unconstrained && plain == name)
        }
    }

    func run() throws {
        let dataURL = URL(fileURLWithPath: data)
        var questions = try BFCLQuestion.load(file: dataURL)
        if limit > 0 { questions = Array(questions.prefix(limit)) }
        let category = BFCLCategory.name(ofFile: dataURL)
        guard let checkerRules = rules ?? BFCLCategory.declared(by: category) else {
            throw ValidationError("the name of \(dataURL.lastPathComponent) declares no BFCL category (simple, multiple, parallel, "
                                  + "irrelevance), so the checker's rules are unknown; pass --rules simple|multiple|parallel|parallel_multiple|irrelevance")
        }
        guard answers != nil || checkerRules == .irrelevance else {
            throw ValidationError("--answers is required under the \(checkerRules.rawValue) rules (only irrelevance has no gold answers)")
        }
        let lm = try modelOptions.load()
        let store = try adapterStore.map { try AdapterStore(root: URL(fileURLWithPath: $0)) }
        let gateDirectory = gate.map { URL(fileURLWithPath: $0) } ?? store.flatMap { AdapterStore.latestGate(root: $0.root) }
        let gateNetwork = try gateDirectory.map { try GateNetwork.load(from: $0) }
        var settings = EvaluationSettings()
        settings.maxNewTokens = maxNewTokens
        settings.examplesPerTool = examples
        settings.topN = topN
        settings.namePriorScale = namePrior
        settings.toolChoice = ToolChoice(parsing: toolChoice)
        settings.callSteps = callSteps
        settings.answerEnd = answerEnd
        settings.evaluationQueries = try HeldOut.queries(file: dataURL) + heldOut.flatMap { try HeldOut.queries(file: URL(fileURLWithPath: $0)) }
        let evaluation = try BFCLEvaluation(model: lm, questions: questions, answers: try answers.map { try BFCLAnswer.load(file: URL(fileURLWithPath: $0)) } ?? [],
                                            categoryName: category, rules: checkerRules, store: store, gate: gateNetwork,
                                            generator: try generator.map { try AdapterHypernetwork(contentsOf: URL(fileURLWithPath: $0)) },
                                            settings: settings)
        printError("\(questions.count) questions of \(category) (\(checkerRules.rawValue) rules\(rules == nil ? ", from the file name" : "")), model \(lm.path)"
                   + (store.map { ", adapters \($0.root.path)" } ?? "") + (gateDirectory.map { ", gate \($0.path)" } ?? ""))
        let outURL = URL(fileURLWithPath: out)
        var reports = [ModeReport]()
        let runs = try modes()
        // Seconds per answered question so far (journaled answers excluded), for the ETA.
        var answeredSeconds = 0.0, answered = 0
        for (runIndex, (m, constrained)) in runs.enumerated() {
            let start = Date()
            var correct = 0
            let label = m.rawValue + (constrained ? "" : EvaluationMode.unconstrainedSuffix)
            let journal = try resumeFrom.map {
                try EvaluationJournal(directory: URL(fileURLWithPath: $0), category: category, modeName: label,
                                      settingsKey: journalSettings(mode: label, model: lm.path, store: store?.root.path, gate: gateDirectory?.path))
            }
            if let journal, !journal.recorded.isEmpty {
                printError("[\(label)] \(journal.recorded.count) questions answered before, read back from \(journal.url.path)")
            }
            let report = try evaluation.run(m, constrained: constrained, journal: journal) { i, outcome, fromJournal in
                if outcome.check.valid { correct += 1 }
                if fromJournal { return }
                answeredSeconds += outcome.seconds
                answered += 1
                let perQuestion = answeredSeconds / Double(answered)
                let leftInMode = questions.count - i - 1
                let leftAfter = (runs.count - runIndex - 1) * questions.count
                printError("[\(label)] \(i + 1)/\(questions.count) \(outcome.id): \(outcome.check.valid ? "correct" : outcome.check.errorType) "
                           + "(\(outcome.promptTokens)+\(outcome.generatedTokens) tokens, \(String(format: "%.1f", outcome.seconds)) s); \(correct) correct so far; "
                           + "ETA \(TrainingProgress.duration(perQuestion * Double(leftInMode))) for this mode, "
                           + "\(TrainingProgress.duration(perQuestion * Double(leftInMode + leftAfter))) for all")
            }
            if let reason = report.skipped {
                printError("[\(label)] skipped: \(reason)")
            } else {
                let file = try evaluation.writeResults(report, to: outURL)
                printError("[\(label)] \(report.correct)/\(report.count) correct in \(TrainingProgress.duration(Date().timeIntervalSince(start))) → \(file.path)")
            }
            reports.append(report)
        }
        let paired = [EvaluationMode.paratool, .generated].map { BFCLEvaluation.pairedComparisons(reports, subject: $0) }
            .filter { !$0.isEmpty }.joined(separator: "\n\n")
        let table = BFCLEvaluation.table(reports) + (paired.isEmpty ? "" : "\n\n" + paired)
        let tableFile = outURL.appendingPathComponent("bfcl_\(category)_table.md")
        try FileManager.default.createDirectory(at: outURL, withIntermediateDirectories: true)
        try Data((table + "\n").utf8).write(to: tableFile, options: .atomic)
        print("\(category): first \(questions.count) questions, model \(URL(fileURLWithPath: lm.path).lastPathComponent)\n")
        print(table)
    }
}

extension EvalCommand {
    /// What a journal's answers depend on: a journal is read back only under the same values.
    func journalSettings(mode: String, model: String, store: String?, gate: String?) -> String {
        ["mode=\(mode)", "model=\(model)", "store=\(store ?? "-")", "gate=\(gate ?? "-")", "max-new-tokens=\(maxNewTokens)",
         "tool-choice=\(toolChoice)", "call-steps=\(callSteps.rawValue)", "answer-end=\(answerEnd.rawValue)",
         "name-prior=\(namePrior)", "top-n=\(topN.map(String.init) ?? "-")", "examples=\(examples)"].joined(separator: " ")
            + (generator.map { " generator=\($0)" } ?? "") // only when given, so journals made before the option still match
    }
}

extension BFCLCategory: ExpressibleByArgument {}
extension CallStepReading: ExpressibleByArgument {}
extension AnswerEnd: ExpressibleByArgument {}
