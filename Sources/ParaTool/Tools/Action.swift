// Owns the model's actions — ToolCall and Action — and their text form, the training target:
// one `<tool_call>{"name": …, "arguments": {…}}</tool_call>` block per call.
import Foundation

/// One call of one tool.
public struct ToolCall: Sendable, Equatable {
    /// The tool name.
    public var name: String
    /// The arguments, a JSON object (the parser always produces one). Equality ignores member
    /// order.
    public var arguments: JSONValue

    /// A call of `name` with `arguments` (an object).
    public init(name: String, arguments: JSONValue = .object(JSONObject())) {
        self.name = name
        self.arguments = arguments
    }

    /// The opening tag of a call block.
    public static let openTag = "<tool_call>"
    /// The closing tag of a call block.
    public static let closeTag = "</tool_call>"

    /// `{"name": "x", "arguments": {...}}`: members in that order, Python `json.dumps`
    /// separators, non-ASCII characters written as they are (so the model copies text from the
    /// query rather than learning `\u` escapes).
    public var json: String {
        JSONValue.object(["name": .string(name), "arguments": arguments]).serialized(asciiOnly: false)
    }

    /// `<tool_call>{"name": "x", "arguments": {...}}</tool_call>`, the exact text the model is
    /// trained to write.
    public var rendered: String { Self.openTag + json + Self.closeTag }
}

/// What the model does at one step: call tools (several calls = parallel calls) or answer.
public enum Action: Sendable, Equatable {
    /// One or more tool calls, in the order written.
    case calls([ToolCall])
    /// A plain-text answer (no tool applies, or the task is done).
    case answer(String)

    /// The text form: the rendered calls joined by newlines, or the answer text.
    public var rendered: String {
        switch self {
        case .calls(let calls): return calls.map(\.rendered).joined(separator: "\n")
        case .answer(let text): return text
        }
    }

    /// The calls (empty for an answer).
    public var calls: [ToolCall] {
        if case .calls(let calls) = self { return calls }
        return []
    }
}
