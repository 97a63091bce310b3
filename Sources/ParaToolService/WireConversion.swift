// Conversions between the wire messages (Wire) and the method's value types (ParaTool): requests
// in, actions/telemetry/trajectories out, tool specs from the catalogue topic.
import Crypto
import Foundation
import ParaTool
import Wire

/// A request field the engine cannot use, with the reason.
struct ConversionError: Error, CustomStringConvertible {
    let field: String
    let reason: String
    var description: String { "invalid field \(field): \(reason)" }
}

extension SelectionMode {
    /// The mode a wire request asks for; nil for `unspecified` (use the default).
    init?(wire: WireMode) throws {
        switch wire {
        case .unspecified: return nil
        case .paratool: self = .paratool
        case .average: self = .average
        case .top1: self = .top1
        case .oracle: self = .oracle
        case .embsim: self = .embsim
        case .contextDocs: self = .contextDocs
        case .unrecognized(let v): throw ConversionError(field: "mode", reason: "unknown mode value \(v)")
        }
    }
}

extension ToolCall {
    /// The deepest nesting of arrays and objects accepted in a call's arguments from the wire.
    /// Well below the parser's limit (512), so a call stored inside the objects of a dataset or
    /// journal line (trajectory, steps, call: a handful of levels) still reads back.
    public static let maxWireArgumentsDepth = 64

    /// A call from the wire; `field` names it in errors. The arguments must be one JSON object
    /// (numbers finite in Double, as the parser requires) nested at most
    /// `maxWireArgumentsDepth` levels.
    public init(wire: WireToolCall, field: String) throws {
        let arguments: JSONValue
        do {
            arguments = try JSONValue.parse(wire.argumentsJSON.isEmpty ? "{}" : wire.argumentsJSON)
        } catch {
            throw ConversionError(field: field + ".arguments_json", reason: "\(error)")
        }
        guard case .object = arguments else { throw ConversionError(field: field + ".arguments_json", reason: "not a JSON object") }
        guard arguments.nestingDepth <= Self.maxWireArgumentsDepth else {
            throw ConversionError(field: field + ".arguments_json",
                                  reason: "nested \(arguments.nestingDepth) levels deep; at most \(Self.maxWireArgumentsDepth) are accepted")
        }
        self.init(name: wire.name, arguments: arguments)
    }

    /// The call's wire form.
    public var wire: WireToolCall { WireToolCall(name: name, argumentsJSON: arguments.serialized()) }
}

extension Step {
    /// A step from the wire; `field` names it in errors (e.g. `history[2]`).
    /// A step from the wire; `field` names it in errors (e.g. `history[2]`). The wire message was
    /// validated: its results name calls of the step.
    init(wire: WireStep, field: String) throws {
        let ids = wire.calls.map(\.id)
        self.init(calls: try wire.calls.enumerated().map { try ToolCall(wire: $1, field: "\(field).calls[\($0)]") },
                  observation: wire.observation, callIDs: ids.allSatisfy(\.isEmpty) ? [] : ids,
                  results: wire.results.map { StepResult(callID: $0.callID, content: $0.content) })
    }

    var wire: WireStep {
        WireStep(calls: calls.enumerated().map { j, call in
                     var w = call.wire
                     if j < callIDs.count { w.id = callIDs[j] }
                     return w
                 },
                 observation: observation, results: results.map { WireToolResult(callID: $0.callID, content: $0.content) })
    }
}

extension ToolCallRequest {
    /// The engine's request for a wire request, with the worker's defaults filled in.
    init(wire r: WireToolCallRequest, defaultMaxNewTokens: Int, defaultMode: SelectionMode, maxNewTokensLimit: Int,
         defaultToolChoice: ToolChoice = .auto) throws {
        let history = try r.history.enumerated().map { try Step(wire: $1, field: "history[\($0)]") }
        let maxNew = r.maxNewTokens == 0 ? defaultMaxNewTokens : Int(r.maxNewTokens)
        guard maxNew <= maxNewTokensLimit else {
            throw ConversionError(field: "max_new_tokens", reason: "\(maxNew) exceeds this worker's limit of \(maxNewTokensLimit)")
        }
        if let n = r.topN, n == 0 { throw ConversionError(field: "top_n", reason: "must be at least 1 when set") }
        if let n = r.maxCalls, n == 0 { throw ConversionError(field: "max_calls", reason: "must be at least 1 when set") }
        self.init(id: r.requestID, query: r.query, history: history, candidates: r.candidateTools, maxNewTokens: maxNew,
                  topN: r.topN.map(Int.init), mode: try r.mode.flatMap { try SelectionMode(wire: $0) } ?? defaultMode)
        maxCalls = r.maxCalls.map { Int(min($0, UInt32(CallGrammar.defaultMaxCalls))) }
        toolChoice = r.toolChoice.isEmpty ? defaultToolChoice : ToolChoice(parsing: r.toolChoice)
        if case .tool(let name) = toolChoice, !r.candidateTools.isEmpty, !r.candidateTools.contains(name) {
            throw ConversionError(field: "tool_choice", reason: "'\(name)' is neither auto, required, none nor one of the candidate tools")
        }
    }
}

extension WireToolCallRequest {
    /// The wire form of an engine request (for clients and tests).
    public init(_ r: ToolCallRequest, deadlineUnixMs: Int64 = 0) {
        self.init(requestID: r.id, query: r.query,
                  history: r.history.map(\.wire),
                  candidateTools: r.candidates, maxNewTokens: UInt32(r.maxNewTokens), deadlineUnixMs: deadlineUnixMs,
                  topN: r.topN.map(UInt32.init), mode: r.mode.wire, maxCalls: r.maxCalls.map { UInt32(max(1, $0)) },
                  toolChoice: r.toolChoice.description)
    }
}

extension SelectionMode {
    /// The wire enum value.
    var wire: WireMode {
        switch self {
        case .paratool: .paratool
        case .average: .average
        case .top1: .top1
        case .oracle: .oracle
        case .embsim: .embsim
        case .contextDocs: .contextDocs
        }
    }
}

/// Throws unless `name` is a tool name the adapter store accepts (`AdapterStore.validate(tool:)`),
/// the one rule for tool names arriving on the topics (specs, trajectories, feedback, adapter
/// updates): they become store paths, checkpoint folders and catalogue keys.
func requireValidToolName(_ name: String, field: String) throws {
    do { try AdapterStore.validate(tool: name) } catch { throw ConversionError(field: field, reason: "\(error)") }
}

extension ToolSpec {
    /// A catalogue entry from the `tools` topic; its name must be a valid tool name.
    init(wire: WireToolSpec) throws {
        try requireValidToolName(wire.name, field: "name")
        let parameters: JSONValue
        do { parameters = try JSONValue.parse(wire.parametersJSON.isEmpty ? "{}" : wire.parametersJSON) } catch {
            throw ConversionError(field: "parameters_json", reason: "\(error)")
        }
        self.init(name: wire.name, description: wire.description, parameters: parameters)
    }
}

extension WireToolSpec {
    /// The wire form of a catalogue entry.
    public init(_ spec: ToolSpec) {
        self.init(name: spec.name, description: spec.description, parametersJSON: spec.parameters.serialized())
    }
}

extension WireToolCall {
    /// The id of call `index` (0-based) of the Action answering `requestID`: "call_" and the
    /// first 24 hex digits of SHA-256(request id, NUL, index). The same on every answer to the
    /// request (redelivery answers again with the same ids), distinct across requests.
    public static func callID(requestID: String, index: Int) -> String {
        let digest = SHA256.hash(data: Data((requestID + "\u{0}\(index)").utf8))
        return "call_" + digest.prefix(12).map { String(format: "%02x", $0) }.joined()
    }
}

extension WireAction {
    /// The Action for an engine response; each call carries its id (`WireToolCall.callID`).
    init(response: ToolCallResponse, modelID: String, timings: WirePhaseTimings) {
        var calls: [WireToolCall] = []
        var text = ""
        switch response.action {
        case .calls(let c):
            calls = c.enumerated().map { index, call in
                var w = call.wire
                w.id = WireToolCall.callID(requestID: response.id, index: index)
                return w
            }
        case .answer(let t): text = t
        }
        self.init(requestID: response.id, calls: calls, text: text,
                  weights: (response.callWeights.isEmpty ? [response.weights] : response.callWeights).enumerated().flatMap { call, weights in
                      weights.map { WireToolWeight(tool: $0.tool, weight: Double($0.weight), adapterVersion: $0.adapterVersion ?? "", call: UInt32(call)) }
                  },
                  modelID: modelID, status: .ok, timings: timings, servedFormat: response.servedMode.rawValue,
                  forceClosed: response.forceClosed)
    }
}

extension WireFlopsTelemetry {
    /// The telemetry for an engine response.
    init(response: ToolCallResponse, workerID: String, timings: WirePhaseTimings) {
        let f = response.flops
        self.init(requestID: response.id, workerID: workerID, promptTokens: UInt64(response.promptTokens),
                  generatedTokens: UInt64(response.generatedTokens), baseLinear: UInt64(f.baseLinear),
                  attention: UInt64(f.attention), lora: UInt64(f.lora), encoder: UInt64(f.encoder), gate: UInt64(f.gate),
                  total: UInt64(f.total), contextDocsEquivalent: UInt64(response.contextDocsFlops), timings: timings,
                  servedFormat: response.servedMode.rawValue)
    }
}

extension WireAdapterUpdate {
    /// The announcement on `adapters` of a version published to the store.
    init(announcing v: AdapterVersion) {
        self.init(tool: v.tool, version: v.version, uri: v.path.path, sha256: v.sha256, stage: v.stage, createdUnixMs: v.createdUnixMs)
    }
}
