// `paratool flops`: the FLOPs of requests, term by term, in the document-free ParaTool format and
// in the Context+Docs format, from their token counts (no model run).
import ArgumentParser
import Foundation
import LLM
import ParaTool

struct FlopsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flops",
        abstract: "FLOPs per request: base linears, attention, LoRA, encoder, gate, and the Context+Docs equivalent.",
        discussion: """
            The request file is JSON or JSONL: objects with "query", optional "candidates" (tool names; default \
            the whole catalogue), "id" and "history" (a list of {"calls": [{"name", "arguments"}], "observation"}). \
            Prompts are rendered with the model's chat template and tokenized; the generated length is --generated.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("Tool catalogue (as for generate --tools).", valueName: "file"))
    var tools: String

    @Option(help: ArgumentHelp("Requests: a JSON object, a JSON array or JSONL.", valueName: "file"))
    var request: String

    @Option(help: "Generated tokens per request.")
    var generated = 32

    @Option(help: "Adapters fused per request (the top-N kept).")
    var adapters = 4

    @Option(help: "LoRA rank.")
    var rank = 16

    @Option(help: "Gate MLP hidden widths, comma-separated.")
    var gateHidden = "512,512"

    func run() throws {
        let lm = try LanguageModel.loadTokenizerAndConfig(path: modelOptions.model)
        guard let template = lm.tokenizer.chatTemplate else { throw UsageError("the model has no chat template") }
        let catalogue = try ToolCatalogue.load(file: URL(fileURLWithPath: tools))
        let text = try String(contentsOfFile: request, encoding: .utf8)
        let values: [JSONValue]
        if case .array(let items)? = try? JSONValue.parse(text) { values = items }
        else if let one = try? JSONValue.parse(text) { values = [one] }
        else { values = try text.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { try JSONValue.parse(String($0)) } }
        let formatter = PromptFormatter(template: template)
        let counter = FlopsCounter(config: lm.config)
        let hidden = gateHidden.split(separator: ",").compactMap { Int($0) }
        print("| id | prompt tokens (doc-free / docs) | base linear | attention | LoRA | encoder | gate | total | Context+Docs | saving |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for (i, v) in values.enumerated() {
            guard case .object(let o) = v, case .string(let query)? = o["query"] else {
                throw UsageError("request \(i + 1) is not an object with a \"query\" string")
            }
            var candidates = catalogue.names
            if case .array(let names)? = o["candidates"] {
                candidates = try names.map { n -> String in
                    guard case .string(let s) = n else { throw UsageError("request \(i + 1): candidates must be strings") }
                    return s
                }
            }
            let unknown = candidates.filter { !catalogue.contains($0) }
            guard unknown.isEmpty else { throw UsageError("request \(i + 1): unknown tools \(unknown.joined(separator: ", "))") }
            var id = "\(i + 1)"
            if case .string(let s)? = o["id"] { id = s }
            var history: [Step] = []
            switch o["history"] {
            case nil, .null?: break
            case .array(let steps)?: history = try steps.enumerated().map { try Step(json: $1, context: "request \(i + 1): history[\($0)]") }
            default: throw UsageError("request \(i + 1): history must be a list of steps")
            }
            let req = PromptRequest(query: query, history: history)
            let free = lm.tokenizer.encode(try formatter.render(.documentFree(candidates: candidates), request: req)).count
            let docs = lm.tokenizer.encode(try formatter.render(.contextDocs(candidates: try catalogue.specs(named: candidates)), request: req)).count
            var f = counter.generation(prompt: free, generated: generated, adapters: min(adapters, candidates.count), rank: rank)
            f.encoder = counter.encoder(tokens: lm.tokenizer.encode(PromptFormatter.userMessage(req)).count)
            f.gate = counter.gate(candidates: candidates.count, layers: [4 * lm.config.hiddenSize] + hidden + [1])
            let d = counter.generation(prompt: docs, generated: generated).total
            print("| \(id) | \(free) / \(docs) | \(g(f.baseLinear)) | \(g(f.attention)) | \(g(f.lora)) | \(g(f.encoder)) | \(g(f.gate)) | \(g(f.total)) | \(g(d)) | \(String(format: "%.1f%%", 100 * (1 - Double(f.total) / Double(d)))) |")
        }
    }

    func g(_ x: Int) -> String { String(format: "%.3g", Double(x)) }
}
