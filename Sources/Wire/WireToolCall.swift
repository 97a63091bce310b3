// WireToolCall, WireToolResult and WireStep: one tool invocation, what it returned, and one turn of
// an episode (`paratool.v1.ToolCall`, `paratool.v1.ToolResult`, `paratool.v1.Step`), shared by
// requests, actions and trajectories. A step's results name the calls they answer by id.
import ParaToolProtoC

/// One tool invocation (`paratool.v1.ToolCall`).
public struct WireToolCall: WireMessage, Hashable {
    public static let protoName = "paratool.v1.ToolCall"

    /// The tool's catalogue name; required.
    public var name: String
    /// The arguments as one JSON object.
    public var argumentsJSON: String
    /// The call's id, unique within its episode ("" when the sender gave none: older clients).
    public var id: String

    /// Creates a tool call.
    public init(name: String, argumentsJSON: String = "{}", id: String = "") {
        self.name = name
        self.argumentsJSON = argumentsJSON
        self.id = id
    }

    init(c: Paratool__V1__ToolCall, path: String) throws {
        name = try wireString(c.name, field: path + "name")
        argumentsJSON = try wireString(c.arguments_json, field: path + "arguments_json")
        id = try wireString(c.id, field: path + "id")
    }

    func c(_ arena: CArena) -> Paratool__V1__ToolCall {
        var c = Paratool__V1__ToolCall()
        paratool__v1__tool_call__init(&c)
        c.name = arena.string(name)
        c.arguments_json = arena.string(argumentsJSON)
        c.id = arena.string(id)
        return c
    }

    func validate(path: String) throws {
        try requireNonEmpty(name, field: path + "name")
    }

    public func validate() throws { try validate(path: "") }

    public func encode() throws -> [UInt8] {
        try encodeMessage(Self.protoName, c, size: paratool__v1__tool_call__get_packed_size, pack: paratool__v1__tool_call__pack)
    }

    public init(bytes: [UInt8], limits: WireLimits) throws {
        self = try decodeMessage(
            bytes, limits: limits, type: Self.protoName,
            unpack: paratool__v1__tool_call__unpack, free: paratool__v1__tool_call__free_unpacked
        ) { try WireToolCall(c: $0, path: "") }
        try validate()
    }
}

/// What one call returned (`paratool.v1.ToolResult`).
public struct WireToolResult: Sendable, Hashable {
    /// The id of the call it answers; required.
    public var callID: String
    /// What the tool returned.
    public var content: String

    /// Creates a result.
    public init(callID: String, content: String) {
        self.callID = callID
        self.content = content
    }

    init(c: Paratool__V1__ToolResult, path: String) throws {
        callID = try wireString(c.call_id, field: path + "call_id")
        content = try wireString(c.content, field: path + "content")
    }

    func c(_ arena: CArena) -> Paratool__V1__ToolResult {
        var c = Paratool__V1__ToolResult()
        paratool__v1__tool_result__init(&c)
        c.call_id = arena.string(callID)
        c.content = arena.string(content)
        return c
    }
}

/// One turn of an episode: the calls made and what came back (`paratool.v1.Step`).
public struct WireStep: WireMessage, Hashable {
    public static let protoName = "paratool.v1.Step"

    /// The action taken; empty for a final answer.
    public var calls: [WireToolCall]
    /// One text for all of the step's results (older clients; shown after `results`).
    public var observation: String
    /// One result per call, each naming the call it answers.
    public var results: [WireToolResult]

    /// Creates a step.
    public init(calls: [WireToolCall] = [], observation: String = "", results: [WireToolResult] = []) {
        self.calls = calls
        self.observation = observation
        self.results = results
    }

    init(c: Paratool__V1__Step, path: String) throws {
        calls = try wireMap(c.n_calls, c.calls, field: path + "calls") { try WireToolCall(c: $0.pointee, path: $1 + ".") }
        observation = try wireString(c.observation, field: path + "observation")
        results = try wireMap(c.n_results, c.results, field: path + "results") { try WireToolResult(c: $0.pointee, path: $1 + ".") }
    }

    func c(_ arena: CArena) -> Paratool__V1__Step {
        var c = Paratool__V1__Step()
        paratool__v1__step__init(&c)
        c.n_calls = calls.count
        c.calls = arena.messages(calls.map { $0.c(arena) })
        c.observation = arena.string(observation)
        c.n_results = results.count
        c.results = arena.messages(results.map { $0.c(arena) })
        return c
    }

    /// Every call valid; call ids unique within the step; every result names a call of the step,
    /// and no call has two results.
    func validate(path: String) throws {
        for (index, call) in calls.enumerated() { try call.validate(path: "\(path)calls[\(index)].") }
        var ids = Set<String>()
        for (index, call) in calls.enumerated() where !call.id.isEmpty {
            guard ids.insert(call.id).inserted else {
                throw WireError.invalidField(field: "\(path)calls[\(index)].id", reason: "'\(call.id)' is the id of an earlier call of this step")
            }
        }
        var answered = Set<String>()
        for (index, result) in results.enumerated() {
            let field = "\(path)results[\(index)].call_id"
            try requireNonEmpty(result.callID, field: field)
            guard ids.contains(result.callID) else {
                throw WireError.invalidField(field: field, reason: "'\(result.callID)' names no call of this step")
            }
            guard answered.insert(result.callID).inserted else {
                throw WireError.invalidField(field: field, reason: "call '\(result.callID)' has an earlier result in this step")
            }
        }
    }

    public func validate() throws { try validate(path: "") }

    public func encode() throws -> [UInt8] {
        try encodeMessage(Self.protoName, c, size: paratool__v1__step__get_packed_size, pack: paratool__v1__step__pack)
    }

    public init(bytes: [UInt8], limits: WireLimits) throws {
        self = try decodeMessage(
            bytes, limits: limits, type: Self.protoName,
            unpack: paratool__v1__step__unpack, free: paratool__v1__step__free_unpacked
        ) { try WireStep(c: $0, path: "") }
        try validate()
    }
}
