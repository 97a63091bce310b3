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

/// What one call of a step returned, naming the call by its id.
public struct StepResult: Sendable, Equatable {
    /// The id of the call it answers (one of the step's `callIDs`).
    public var callID: String
    /// What the tool returned.
    public var content: String

    public init(callID: String, content: String) {
        self.callID = callID
        self.content = content
    }
}

/// One earlier step of a multi-step request: what was called and what came back, either as one
/// observation for all calls or as one result per call (each naming the call's id), or both.
public struct Step: Sendable, Equatable {
    /// The calls made at this step.
    public var calls: [ToolCall]
    /// The observation text (tool output) returned for them.
    public var observation: String
    /// The calls' ids, in the calls' order (empty when the step's calls carry none; else one per
    /// call, "" for a call without one).
    public var callIDs: [String]
    /// One result per call, each naming its call's id.
    public var results: [StepResult]

    /// A step.
    public init(calls: [ToolCall], observation: String, callIDs: [String] = [], results: [StepResult] = []) {
        self.calls = calls
        self.observation = observation
        self.callIDs = callIDs
        self.results = results
    }

    /// The 1-based position of the call `id` names, or nil.
    public func callNumber(of id: String) -> Int? {
        callIDs.firstIndex(of: id).map { $0 + 1 }
    }

    /// Reads `{"calls": [{"name": …, "arguments": {…}, "id"?: …}], "observation": "…",
    /// "results"?: [{"call_id": …, "content": …}]}` (`arguments` defaults to `{}`, `observation`
    /// to ""). `context` names the step in errors, e.g. `trajectory t1: steps[0]`.
    /// - Throws: `ToolFormatError` naming the missing or mistyped field.
    public init(json: JSONValue, context: String) throws {
        guard case .object(let s) = json, case .array(let calls)? = s["calls"] else {
            throw ToolFormatError("\(context) needs a \"calls\" array")
        }
        var ids: [String] = []
        self.calls = try calls.enumerated().map { j, c in
            guard case .object(let call) = c, case .string(let name)? = call["name"] else {
                throw ToolFormatError("\(context).calls[\(j)] needs a \"name\" string")
            }
            switch call["id"] {
            case nil, .null?: ids.append("")
            case .string(let id)?: ids.append(id)
            default: throw ToolFormatError("\(context).calls[\(j)]: \"id\" must be a string")
            }
            return ToolCall(name: name, arguments: call["arguments"] ?? .object(JSONObject()))
        }
        callIDs = ids.allSatisfy(\.isEmpty) ? [] : ids
        switch s["observation"] {
        case nil, .null?: observation = ""
        case .string(let text)?: observation = text
        default: throw ToolFormatError("\(context): \"observation\" must be a string")
        }
        switch s["results"] {
        case nil, .null?: results = []
        case .array(let items)?:
            results = try items.enumerated().map { j, item in
                guard case .object(let r) = item, case .string(let id)? = r["call_id"], case .string(let content)? = r["content"] else {
                    throw ToolFormatError("\(context).results[\(j)] needs \"call_id\" and \"content\" strings")
                }
                return StepResult(callID: id, content: content)
            }
        default: throw ToolFormatError("\(context): \"results\" must be an array")
        }
    }

    /// The step as one JSON object, read back by `init(json:context:)`: `id` on calls and
    /// `results` only when the step has them, so steps without ids keep their old form.
    public var json: JSONValue {
        var object = JSONObject([
            ("calls", .array(calls.enumerated().map { j, call in
                var members: [(String, JSONValue)] = [("name", .string(call.name)), ("arguments", call.arguments)]
                if j < callIDs.count, !callIDs[j].isEmpty { members.append(("id", .string(callIDs[j]))) }
                return .object(JSONObject(members))
            })),
            ("observation", .string(observation)),
        ])
        if !results.isEmpty {
            object["results"] = .array(results.map { .object(JSONObject([("call_id", .string($0.callID)), ("content", .string($0.content))])) })
        }
        return .object(object)
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
