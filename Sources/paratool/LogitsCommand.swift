// `paratool logits`: runs the model over token ids and prints every position's logits and the
// last token's final-norm hidden state as JSON.
import ArgumentParser
import Foundation
import LLM
import ParaTool

struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Print the logits of every position and the last hidden state for a list of token ids.",
        discussion: """
            Output: {"logits": [[...] per position], "hidden": [... last token, after the final norm]}.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var adapterOptions: AdapterOptions
    @OptionGroup(title: "Tool calling (the gate chooses adapters)") var toolOptions: ToolOptions

    @Option(help: "With --tools: the query the gate weighs the candidate tools for.")
    var query: String?

    @Option(help: ArgumentHelp("Comma-separated token ids, e.g. 1,2,3.", valueName: "ids"))
    var ids: String

    func validate() throws {
        if parsedIds == nil { throw ValidationError("--ids must be a non-empty comma-separated list of integers, got '\(ids)'") }
    }

    var parsedIds: [Int]? {
        let parts = ids.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
        return parts.map { $0! }
    }

    func run() throws {
        let lm = try modelOptions.load()
        let tokens = parsedIds!
        let vocab = lm.model.config.vocabSize
        if let bad = tokens.first(where: { $0 < 0 || $0 >= vocab }) {
            throw UsageError("token id \(bad) is outside the vocabulary (0..<\(vocab))")
        }
        let runner = Transformer(model: lm.model)
        var branches = try adapterOptions.attach(to: runner, config: lm.model.config)
        var chosen: [[String: Any]]?
        if toolOptions.tools != nil {
            guard branches == nil else { throw ToolOptions.adapterConflict }
            guard let query else { throw UsageError("--tools needs --query: the text the gate weighs the tools for") }
            let (mixture, weights) = try toolOptions.engine(lm).mixture(for: try toolOptions.request(query: query))
            branches = AdapterOptions.attach(mixture, to: runner)
            chosen = weights.map(\.jsonObject)
        }
        let cache = KVCache(config: lm.model.config, capacity: tokens.count)
        let out = runner.forward([BatchSegment(sequence: 0, tokens: tokens)], caches: [cache], logits: .all)
        let logits = (0..<out.logits.rows).map { out.logits.row($0).map(Double.init) }
        let hidden = out.hidden.row(out.hidden.rows - 1).map(Double.init)
        var result: [String: Any] = ["logits": logits, "hidden": hidden]
        if let chosen { result["weights"] = chosen }
        print(try jsonText(result))
        withExtendedLifetime(branches) {}
    }
}
