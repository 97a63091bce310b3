// WireToolCall and WireStep: one tool invocation and one turn of an episode (`paratool.v1.ToolCall`,
// `paratool.v1.Step`), shared by requests, actions and trajectories.
import ParaToolProtoC

/// One tool invocation (`paratool.v1.ToolCall`).
public struct WireToolCall: WireMessage, Hashable {
    public static let protoName = "paratool.v1.ToolCall"

    /// The tool's catalogue name; required.
    public var name: String
    /// The arguments as one JSON object.
    public var argumentsJSON: String

    /// Creates a tool call.
    public init(name: String, argumentsJSON: String = "{}") {
        self.name = name
        self.argumentsJSON = argumentsJSON
    }

    init(c: Paratool__V1__ToolCall, path: String) throws {
        name = try wireString(c.name, field: path + "name")
        argumentsJSON = try wireString(c.arguments_json, field: path + "arguments_json")
    }

    func c(_ arena: CArena) -> Paratool__V1__ToolCall {
        var c = Paratool__V1__ToolCall()
        paratool__v1__tool_call__init(&c)
        c.name = arena.string(name)
        c.arguments_json = arena.string(argumentsJSON)
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

/// One turn of an episode: the calls made and what came back (`paratool.v1.Step`).
public struct WireStep: WireMessage, Hashable {
    public static let protoName = "paratool.v1.Step"

    /// The action taken; empty for a final answer.
    public var calls: [WireToolCall]
    /// The tool results shown to the model afterwards.
    public var observation: String

    /// Creates a step.
    public init(calls: [WireToolCall] = [], observation: String = "") {
        self.calls = calls
        self.observation = observation
    }

    init(c: Paratool__V1__Step, path: String) throws {
        calls = try wireMap(c.n_calls, c.calls, field: path + "calls") { try WireToolCall(c: $0.pointee, path: $1 + ".") }
        observation = try wireString(c.observation, field: path + "observation")
    }

    func c(_ arena: CArena) -> Paratool__V1__Step {
        var c = Paratool__V1__Step()
        paratool__v1__step__init(&c)
        c.n_calls = calls.count
        c.calls = arena.messages(calls.map { $0.c(arena) })
        c.observation = arena.string(observation)
        return c
    }

    func validate(path: String) throws {
        for (index, call) in calls.enumerated() { try call.validate(path: "\(path)calls[\(index)].") }
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
