// Owns the inputs of prompt rendering: PromptFormat (which tool information the prompt carries),
// PromptRequest (query and history), Step (one earlier action and its observation) and
// ToolExample (a demonstration for the Context+Docs&Examples baseline).
import Foundation

/// Which tool information the system message carries. Every format shares the role, the rules
/// and the candidate name list; they differ only in the documents and examples added.
public enum PromptFormat: Sendable, Equatable {
    /// Names only (`- name` lines): the ParaTool inference format, where tool knowledge lives in
    /// the adapters.
    case documentFree(candidates: [String])
    /// Names plus the target tool's document: the second pre-training instance of each trace.
    case documentAware(candidates: [String], target: ToolSpec)
    /// Names plus every candidate's document: the Context+Docs baseline.
    case contextDocs(candidates: [ToolSpec])
    /// Context+Docs plus up to `k` examples per candidate, taken from `examples[toolName]` in
    /// order: the Context+Docs&Examples baseline.
    case contextDocsExamples(candidates: [ToolSpec], examples: [String: [ToolExample]], k: Int)

    /// The candidate tool names, in order.
    public var candidateNames: [String] {
        switch self {
        case .documentFree(let names), .documentAware(let names, _): return names
        case .contextDocs(let specs), .contextDocsExamples(let specs, _, _): return specs.map(\.name)
        }
    }
}

/// One earlier step of a multi-step request: what was called and what came back.
public struct Step: Sendable, Equatable {
    /// The calls made at this step.
    public var calls: [ToolCall]
    /// The observation text (tool output) returned for them.
    public var observation: String

    /// A step.
    public init(calls: [ToolCall], observation: String) {
        self.calls = calls
        self.observation = observation
    }

    /// Reads `{"calls": [{"name": …, "arguments": {…}}], "observation": "…"}` (`arguments`
    /// defaults to `{}`, `observation` to ""). `context` names the step in errors, e.g.
    /// `trajectory t1: steps[0]`.
    /// - Throws: `ToolFormatError` naming the missing or mistyped field.
    public init(json: JSONValue, context: String) throws {
        guard case .object(let s) = json, case .array(let calls)? = s["calls"] else {
            throw ToolFormatError("\(context) needs a \"calls\" array")
        }
        self.calls = try calls.enumerated().map { j, c in
            guard case .object(let call) = c, case .string(let name)? = call["name"] else {
                throw ToolFormatError("\(context).calls[\(j)] needs a \"name\" string")
            }
            return ToolCall(name: name, arguments: call["arguments"] ?? .object(JSONObject()))
        }
        switch s["observation"] {
        case nil, .null?: observation = ""
        case .string(let text)?: observation = text
        default: throw ToolFormatError("\(context): \"observation\" must be a string")
        }
    }
}

/// What the user asks, with the history of earlier steps.
public struct PromptRequest: Sendable, Equatable {
    /// The user's query.
    public var query: String
    /// Earlier steps, oldest first; empty for a single-step request.
    public var history: [Step]

    /// A request.
    public init(query: String, history: [Step] = []) {
        self.query = query
        self.history = history
    }
}

/// A demonstration: a query and the calls that answer it.
public struct ToolExample: Sendable, Equatable {
    /// The example query.
    public var query: String
    /// The gold calls, shown in their rendered `<tool_call>` form.
    public var calls: [ToolCall]

    /// An example.
    public init(query: String, calls: [ToolCall]) {
        self.query = query
        self.calls = calls
    }
}
