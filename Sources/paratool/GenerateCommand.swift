// `paratool generate`: greedy generation from a prompt, streamed to standard output.
import ArgumentParser
import Foundation
import LLM
import ParaTool

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate a greedy continuation of a prompt.",
        discussion: """
            By default the prompt is sent as a user message through the model's chat template (when it \
            has one) and generation stops at the end-of-turn token. --raw feeds the prompt text as is. \
            Timing goes to standard error.

            With --tools, the prompt is a query for a tool call: the gate weighs the candidate tools, their \
            adapters (from --adapter-store) are fused in, the prompt is document-free, and the result is \
            printed as JSON: the parsed action, the weights with adapter versions, tokens and FLOPs.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var adapterOptions: AdapterOptions
    @OptionGroup(title: "Tool calling (the gate chooses adapters)") var toolOptions: ToolOptions

    @Option(help: "The prompt text.")
    var prompt: String

    @Option(help: "Maximum number of tokens to generate.")
    var maxNewTokens = 128

    @Option(help: "System message for the chat template (default: the template's own).")
    var system: String?

    @Flag(help: "Use the prompt text as is, without the chat template.")
    var raw = false

    func validate() throws {
        if maxNewTokens < 1 { throw ValidationError("--max-new-tokens must be at least 1") }
    }

    func run() throws {
        let start = Date()
        let lm = try modelOptions.load()
        if toolOptions.tools != nil {
            guard adapterOptions.adapters.isEmpty else { throw ToolOptions.adapterConflict }
            let response = try toolOptions.engine(lm).run([try toolOptions.request(query: prompt, maxNewTokens: maxNewTokens)])[0]
            print(try jsonText(response.jsonObject))
            printError(String(format: "load %.2fs · gate %.3fs · generate %.3fs", Date().timeIntervalSince(start) - response.gateSeconds - response.generateSeconds,
                              response.gateSeconds, response.generateSeconds))
            return
        }
        let text: String
        if !raw, let template = lm.tokenizer.chatTemplate {
            var messages = [ChatMessage]()
            if let system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: prompt))
            text = try template.render(messages, addGenerationPrompt: true)
        } else {
            text = prompt
        }
        let ids = lm.tokenizer.encode(text)
        guard !ids.isEmpty else { throw UsageError("the prompt encodes to no tokens") }
        let loaded = Date()
        var emitted = [Int]()
        var printedCount = 0
        let stops = lm.tokenizer.stopTokenIds.union(lm.model.config.eosTokenIds)
        let runner = Transformer(model: lm.model)
        let branches = try adapterOptions.attach(to: runner, config: lm.model.config)
        let generator = Generator(transformer: runner)
        var firstToken: Date?
        _ = generator.greedy(prompt: ids, maxNewTokens: maxNewTokens, stopTokens: stops) { token in
            if firstToken == nil { firstToken = Date() }
            if stops.contains(token) { return }
            emitted.append(token)
            // Print only complete characters: hold back a trailing partial UTF-8 sequence.
            let decoded = lm.tokenizer.decode(emitted)
            if !decoded.hasSuffix("\u{FFFD}") {
                let chars = Array(decoded)
                if chars.count > printedCount {
                    FileHandle.standardOutput.write(Data(String(chars[printedCount...]).utf8))
                    printedCount = chars.count
                }
            }
        }
        withExtendedLifetime(branches) {}
        let decoded = Array(lm.tokenizer.decode(emitted))
        if decoded.count > printedCount { FileHandle.standardOutput.write(Data(String(decoded[printedCount...]).utf8)) }
        print()
        let end = Date()
        let prefill = (firstToken ?? end).timeIntervalSince(loaded)
        let decodeTime = end.timeIntervalSince(firstToken ?? end)
        printError(String(format: "load %.2fs · prompt %d tokens in %.3fs · %d new tokens, %.1f tokens/s",
                          loaded.timeIntervalSince(start), ids.count, prefill, emitted.count,
                          emitted.count > 1 ? Double(emitted.count - 1) / max(decodeTime, 1e-9) : 0))
    }
}
