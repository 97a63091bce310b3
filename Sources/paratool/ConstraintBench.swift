// `paratool bench constraint`: what schema-constrained decoding costs per generated token on the
// default model's vocabulary, measured inside real greedy decoding of BFCL questions: the time the
// constraint adds to choosing each token (beyond the argmax unconstrained decoding does anyway),
// against the time of the decode step it belongs to; plus the one-off costs (vocabulary
// preparation per model, grammar compilation per request) and the cost of listing every allowed
// token, which a step needs only when the model's best token is not allowed; each question decoded
// with the grammar alone and held to its token budget (budget-aware closing), side by side.
import ArgumentParser
import Foundation
import LLM
import ParaTool
import Tensor

struct ConstraintBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "constraint",
        abstract: "Cost of schema-constrained decoding per token, against the decode step, on BFCL questions.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("BFCL question files (repeatable).", valueName: "file"))
    var data: [String] = ["Tests/Fixtures/bfcl/BFCL_v4_multiple.json", "Tests/Fixtures/bfcl/BFCL_v4_parallel.json"]

    @Option(help: "Questions per file.")
    var limit = 10

    @Option(help: "Tokens generated per question at most.")
    var maxNewTokens = 96

    func run() throws {
        let lm = try modelOptions.load()
        guard let template = lm.tokenizer.chatTemplate else { throw UsageError("the model has no chat template") }
        let formatter = PromptFormatter(template: template)
        let clock = ContinuousClock()
        var vocabulary: TokenVocabulary!
        let prepare = clock.measure { vocabulary = TokenVocabulary(tokenizer: lm.tokenizer) }
        let transformer = Transformer(model: lm.model)
        let generator = Generator(transformer: transformer)
        let stops = lm.tokenizer.stopTokenIds.union(lm.model.config.eosTokenIds)

        // The same questions decoded twice: held to the budget (budget-aware closing, what the
        // service does) and with the grammar alone, which may run out of tokens inside a call.
        var compile = Duration.zero, requests = 0
        var runs = [BudgetRun]()
        for budgeted in [false, true] {
            var run = BudgetRun(budgeted: budgeted)
            for file in data {
                for q in try BFCLQuestion.load(file: URL(fileURLWithPath: file)).prefix(limit) {
                    let query = q.turns.first?.last(where: { $0.role == "user" })?.content ?? ""
                    let prompt = lm.tokenizer.encode(try formatter.render(.documentFree(candidates: q.functions.map(\.name)),
                                                                          request: PromptRequest(query: query)))
                    var grammar: CallGrammar!
                    compile += clock.measure { grammar = CallGrammar(tools: q.functions, choice: .required) }
                    requests += 1
                    let timed = TimedConstraint(CallConstraint(grammar: grammar, vocabulary: vocabulary,
                                                               budget: budgeted ? maxNewTokens : nil))
                    // Decode steps only: from the first token (the end of the prefill) to the last.
                    var first: ContinuousClock.Instant?
                    var generated = 0
                    _ = generator.greedyBatch(prompts: [prompt], maxNewTokens: maxNewTokens, stopTokens: stops, constraints: [timed]) { _, _ in
                        generated += 1
                        if first == nil { first = clock.now; timed.resetTotal() }
                    }
                    if let first { run.decoding += clock.now - first }
                    run.decodeSteps += max(0, generated - 1)
                    run.constraintTotal += timed.total
                    run.overhead += timed.overheads
                    run.steps += timed.inner.steps
                    run.listed += timed.inner.listedSteps
                    run.questions += 1
                    if timed.inner.isComplete { run.complete += 1 }
                    if timed.inner.forceClosed { run.forceClosed += 1 }
                }
            }
            runs.append(run)
        }
        let listing = Self.listingCost(vocabulary: vocabulary, lm: lm)
        func column(_ f: (BudgetRun) -> String) -> String { runs.map(f).joined(separator: " | ") }
        print("""
            Constrained decoding on \(URL(fileURLWithPath: lm.path).lastPathComponent) (vocabulary \(vocabulary.size)), \
            \(runs[0].questions) BFCL questions, greedy, up to \(maxNewTokens) tokens each, with the grammar alone and held to that budget
            \(CPUDescription.line)

            | figure | grammar alone | held to the budget |
            |---|---:|---:|
            | tokens decided | \(column { "\($0.steps)" }) |
            | answers complete within the budget | \(column { "\($0.complete)/\($0.questions)" }) |
            | calls the budget force-closed | \(column { "\($0.forceClosed)" }) |
            | constraint per token, mean (µs, beyond the argmax) | \(column { String(format: "%.1f", $0.mean) }) |
            | constraint per token, p50 / p99 (µs) | \(column { String(format: "%.1f / %.1f", $0.percentile(0.5), $0.percentile(0.99)) }) |
            | decode step without the constraint, mean (ms) | \(column { String(format: "%.2f", $0.stepMs) }) |
            | constraint share of a decode step | \(column { String(format: "%.2f%%", 100 * $0.mean / 1000 / $0.stepMs) }) |
            | steps whose best token was not allowed (allowed tokens listed) | \(column { "\($0.listed) (\(String(format: "%.1f%%", 100 * Double($0.listed) / Double(max(1, $0.steps)))))" }) |

            | one-off figure | value |
            |---|---:|
            | listing the allowed tokens inside a string / between lexemes (µs) | \(String(format: "%.0f / %.0f", listing.string, listing.structural)) |
            | vocabulary preparation, once per model (ms) | \(String(format: "%.1f", prepare.seconds * 1000)) |
            | grammar compilation, per request (µs) | \(String(format: "%.1f", compile.seconds * 1e6 / Double(max(1, requests)))) |
            """)
    }

    /// One pass over the questions: with or without the budget.
    struct BudgetRun {
        var budgeted: Bool
        var questions = 0, steps = 0, listed = 0, complete = 0, forceClosed = 0, decodeSteps = 0
        var overhead = [Double](), decoding = Duration.zero, constraintTotal = Duration.zero

        var mean: Double { overhead.reduce(0, +) / Double(max(1, overhead.count)) }
        func percentile(_ p: Double) -> Double {
            let sorted = overhead.sorted()
            return sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(p * Double(sorted.count)))]
        }
        var stepMs: Double { (decoding - constraintTotal).seconds * 1000 / Double(max(1, decodeSteps)) }
    }

    /// Mean time to list every allowed token inside a JSON string value and at an object's key.
    static func listingCost(vocabulary: TokenVocabulary, lm: LanguageModel) -> (string: Double, structural: Double) {
        let tool = ToolSpec(name: "f", description: "", parameters: ["type": "object", "properties": ["city": ["type": "string"], "n": ["type": "integer"]]])
        func cost(_ prefix: String) -> Double {
            let constraint = CallConstraint(grammar: CallGrammar(tools: [tool]), vocabulary: vocabulary)
            for t in lm.tokenizer.encode(prefix) { constraint.advance(t) }
            let clock = ContinuousClock()
            let rounds = 50
            let elapsed = clock.measure { for _ in 0..<rounds { _ = constraint.allowedTokens() } }
            return elapsed.seconds * 1e6 / Double(rounds)
        }
        return (cost("<tool_call>{\"name\": \"f\", \"arguments\": {\"city\": \"Par"), cost("<tool_call>{\"name\": \"f\", \"arguments\": {\"city\": \"Paris\", "))
    }
}

/// Times a constraint's work per step, and the argmax the same step costs without a constraint.
private final class TimedConstraint: TokenConstraint {
    let inner: CallConstraint
    private(set) var total = Duration.zero
    private(set) var overheads: [Double] = []
    private let clock = ContinuousClock()

    init(_ inner: CallConstraint) { self.inner = inner }

    /// Forgets the time measured so far (the first step's, which belongs to the prefill).
    func resetTotal() { total = .zero }

    func bestAllowedToken(_ logits: MatrixView, row: Int) -> Int {
        let plain = clock.measure { _ = Kernels.argmax(logits, row: row) }
        var token = 0
        let constrained = clock.measure { token = inner.bestAllowedToken(logits, row: row) }
        total += constrained
        pending = constrained - plain
        return token
    }

    private var pending = Duration.zero

    func commit(_ token: Int) {
        let elapsed = clock.measure { inner.commit(token) }
        total += elapsed
        overheads.append((pending + elapsed).seconds * 1e6)
    }
}
