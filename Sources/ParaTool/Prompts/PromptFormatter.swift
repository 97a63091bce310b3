// Owns PromptFormatter, which builds the system and user messages of every prompt format and
// renders them through the model's chat template, and PromptWording, the one place holding the
// fixed text every format shares (so comparisons between formats are fair).
import Crypto
import Foundation
import LLM

/// The fixed text of all prompts. Every format uses these strings; only the tool section differs.
public enum PromptWording {
    /// The assistant's role, first paragraph of every system message. Kept to one sentence: it
    /// is paid on every request, and the document-free saving is (role + rules + names + query)
    /// against (role + rules + docs + query), so every shared token narrows it.
    public static let role = """
        You call tools to answer the question, or answer in plain text when no tool applies.
        """

    /// How to answer, second paragraph of every system message: the call syntax in one line.
    public static let rules = """
        Write each call as \
        \(ToolCall.openTag){"name": "tool_name", "arguments": {"parameter": "value"}}\(ToolCall.closeTag), \
        one block per call, nothing else.
        """

    /// Heads the `- name` list of candidate tools.
    public static let candidatesHeader = "You MUST choose only from these tools:"

    /// Prefix of each candidate line.
    public static let candidateBullet = "- "

    /// Heads the tool documents (one JSON object a line) in the document-aware and context formats.
    public static let documentsHeader = "Tool documentation (JSON, one tool per line):"

    /// Heads the examples of the Context+Docs&Examples format.
    public static let examplesHeader = "Examples:"

    /// Prefix of an example's query line.
    public static let exampleQuery = "Query: "

    /// Prefix of an example's answer (its rendered calls follow on the same line).
    public static let exampleAnswer = "Answer: "

    /// Heads the history section of the user message.
    public static let historyHeader = "[TOOLCALL HISTORY]"

    /// `Step N:` heading of one history step (1-based).
    public static func stepHeading(_ number: Int) -> String { "Step \(number):" }

    /// Prefix of a step's observation.
    public static let observation = "Observation: "

    /// Prefix of one call's result in a history step whose results name their calls: the call's
    /// 1-based position in the step and its tool. Not in `fingerprint`: only histories carrying
    /// per-call results read it, and the prompts adapters were trained on before it existed are
    /// unchanged.
    public static func result(call number: Int, tool: String) -> String { "Result of call \(number) (\(tool)): " }

    /// Heads the calls an answer has made so far, in the gate's context for the next call (the
    /// gate's own input, never a prompt an adapter reads).
    public static let callsSoFarHeader = "[CALLS SO FAR]"

    /// A fingerprint of this wording: the first 16 hex digits of the SHA-256 of every string
    /// above, each followed by a NUL byte. Adapters learn the prompt they were trained on, so
    /// the adapter store records it per version and `up` retrains adapters made with other wording.
    public static let fingerprint: String = {
        let parts = [role, rules, candidatesHeader, candidateBullet, documentsHeader, examplesHeader, exampleQuery,
                     exampleAnswer, historyHeader, stepHeading(1), observation]
        var hasher = SHA256()
        for part in parts { hasher.update(data: Data(part.utf8) + Data([0])) }
        return hasher.finalize().prefix(8).map { String(format: "%02x", $0) }.joined()
    }()
}

/// Renders prompts for one model: system message (role, rules, tool section) and user message
/// (query, history), through the model's chat template with the generation prompt on.
public struct PromptFormatter: Sendable {
    /// The model's chat template.
    public let template: ChatTemplate

    /// A formatter for the model whose chat template is `template`.
    public init(template: ChatTemplate) {
        self.template = template
    }

    /// The prompt text: the chat template applied to `messages(format, request:)`, ending with
    /// the opening of the assistant turn.
    /// - Throws: `TokenizerError` from the template.
    public func render(_ format: PromptFormat, request: PromptRequest) throws -> String {
        try template.render(messages(format, request: request), addGenerationPrompt: true)
    }

    /// The system and user messages of the prompt.
    public func messages(_ format: PromptFormat, request: PromptRequest) -> [ChatMessage] {
        [ChatMessage(role: "system", content: Self.systemMessage(format)),
         ChatMessage(role: "user", content: Self.userMessage(request))]
    }

    /// The system message: role, rules, candidate names, then the format's documents and
    /// examples, paragraphs separated by a blank line. Documents are `ToolSpec.json` serialized
    /// as Python's `json.dumps` with its defaults (non-ASCII escaped), one a line.
    public static func systemMessage(_ format: PromptFormat) -> String {
        var paragraphs = [PromptWording.role, PromptWording.rules, candidateList(format.candidateNames)]
        switch format {
        case .documentFree:
            break
        case .documentAware(_, let target):
            paragraphs.append(documents([target]))
        case .contextDocs(let candidates):
            paragraphs.append(documents(candidates))
        case .contextDocsExamples(let candidates, let examples, let k):
            paragraphs.append(documents(candidates))
            let shown = candidates.flatMap { (examples[$0.name] ?? []).prefix(max(0, k)) }
            if !shown.isEmpty {
                paragraphs.append(([PromptWording.examplesHeader] + shown.map(example)).joined(separator: "\n"))
            }
        }
        return paragraphs.joined(separator: "\n\n")
    }

    /// The user message: the query, then, when there is history, the history section with each
    /// step's rendered calls, then each call's result naming the call by position and tool (in
    /// the calls' order), then the step's observation (when there are no results, or it is set).
    public static func userMessage(_ request: PromptRequest) -> String {
        guard !request.history.isEmpty else { return request.query }
        var lines = [PromptWording.historyHeader]
        for (i, step) in request.history.enumerated() {
            lines.append(PromptWording.stepHeading(i + 1))
            lines.append(contentsOf: step.calls.map(\.rendered))
            for result in step.results.sorted(by: { (step.callNumber(of: $0.callID) ?? 0) < (step.callNumber(of: $1.callID) ?? 0) }) {
                guard let number = step.callNumber(of: result.callID) else { continue }
                lines.append(PromptWording.result(call: number, tool: step.calls[number - 1].name) + result.content)
            }
            if step.results.isEmpty || !step.observation.isEmpty {
                lines.append(PromptWording.observation + step.observation)
            }
        }
        return request.query + "\n\n" + lines.joined(separator: "\n")
    }

    /// The gate's context for the next call of an answer: the user message, then, once the
    /// answer holds calls, those calls under `PromptWording.callsSoFarHeader`. Stage 2 trains the
    /// gate on this text for every prefix of every answer (the next call's tool, or the end).
    public static func gateContext(_ request: PromptRequest, callsSoFar: [ToolCall]) -> String {
        let message = userMessage(request)
        guard !callsSoFar.isEmpty else { return message }
        return message + "\n\n" + ([PromptWording.callsSoFarHeader] + callsSoFar.map(\.rendered)).joined(separator: "\n")
    }

    private static func candidateList(_ names: [String]) -> String {
        ([PromptWording.candidatesHeader] + names.map { PromptWording.candidateBullet + $0 }).joined(separator: "\n")
    }

    private static func documents(_ specs: [ToolSpec]) -> String {
        ([PromptWording.documentsHeader] + specs.map { $0.json.serialized() }).joined(separator: "\n")
    }

    private static func example(_ example: ToolExample) -> String {
        PromptWording.exampleQuery + example.query + "\n" + PromptWording.exampleAnswer
            + example.calls.map(\.rendered).joined(separator: "\n")
    }
}
