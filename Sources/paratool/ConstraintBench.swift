// `paratool bench constraint`: what schema-constrained decoding costs per generated token on the
// default model's vocabulary, measured inside real greedy decoding of BFCL questions: the time the
// constraint adds to choosing each token (beyond the argmax unconstrained decoding does anyway),
// against the time of the decode step it belongs to; plus the one-off costs (vocabulary
// preparation per model, grammar compilation per request) and the cost of listing every allowed
// token, which a step needs only when the model's best token is not allowed.
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

        var compile = Duration.zero, requests = 0
        var overhead = [Double](), decoding = Duration.zero, constraintTotal = Duration.zero, decodeSteps = 0
        var steps = 0, listed = 0, complete = 0
        for file in data {
            for q in try BFCLQuestion.load(file: URL(fileURLWithPath: file)).prefix(limit) {
                let query = q.turns.first?.last(where: { $0.role == "user" })?.content ?? ""
                let prompt = lm.tokenizer.encode(try formatter.render(.documentFree(candidates: q.functions.map(\.name)),
                                                                      request: PromptRequest(query: query)))
                var grammar: CallGrammar!
                compile += clock.measure { grammar = CallGrammar(tools: q.functions) }
                requests += 1
                let timed = TimedConstraint(CallConstraint(grammar: grammar, vocabulary: vocabulary))
                // Decode steps only: from the first token (the end of the prefill) to the last.
                var first: ContinuousClock.Instant?
                var generated = 0
                _ = generator.greedyBatch(prompts: [prompt], maxNewTokens: maxNewTokens, stopTokens: stops, constraints: [timed]) { _, _ in
                    generated += 1
                    if first == nil { first = clock.now; timed.resetTotal() }
                }
                if let first { decoding += clock.now - first }
                decodeSteps += max(0, generated - 1)
                constraintTotal += timed.total
                overhead += timed.overheads
                steps += timed.inner.steps
                listed += timed.inner.listedSteps
                if timed.inner.finished { complete += 1 }
            }
        }
        let listing = Self.listingCost(vocabulary: vocabulary, lm: lm)
        let sorted = overhead.sorted()
        let mean = sorted.reduce(0, +) / Double(max(1, sorted.count))
        func percentile(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(p * Double(sorted.count)))] }
        let stepMs = (decoding - constraintTotal).seconds * 1000 / Double(max(1, decodeSteps))
        print("""
            Constrained decoding on \(URL(fileURLWithPath: lm.path).lastPathComponent) (vocabulary \(vocabulary.size)), \
            \(requests) BFCL questions, greedy, up to \(maxNewTokens) tokens each
            \(CPUDescription.line)

            | figure | value |
            |---|---:|
            | tokens decided | \(steps) |
            | answers complete within the budget | \(complete)/\(requests) |
            | constraint per token, mean (µs, beyond the argmax) | \(String(format: "%.1f", mean)) |
            | constraint per token, p50 / p99 (µs) | \(String(format: "%.1f / %.1f", percentile(0.5), percentile(0.99))) |
            | decode step without the constraint, mean (ms) | \(String(format: "%.2f", stepMs)) |
            | constraint share of a decode step | \(String(format: "%.2f%%", 100 * mean / 1000 / stepMs)) |
            | steps whose best token was not allowed (allowed tokens listed) | \(listed) (\(String(format: "%.1f%%", 100 * Double(listed) / Double(max(1, steps))))) |
            | listing the allowed tokens inside a string / between lexemes (µs) | \(String(format: "%.0f / %.0f", listing.string, listing.structural)) |
            | vocabulary preparation, once per model (ms) | \(String(format: "%.1f", prepare.seconds * 1000)) |
            | grammar compilation, per request (µs) | \(String(format: "%.1f", compile.seconds * 1e6 / Double(max(1, requests)))) |
            """)
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
