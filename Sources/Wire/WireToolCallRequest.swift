// WireToolCallRequest: a request for the next action (`paratool.v1.ToolCallRequest`, topic
// `requests`, key request_id).
import ParaToolProtoC

/// A request for the next action (`paratool.v1.ToolCallRequest`).
public struct WireToolCallRequest: WireMessage, Hashable {
    public static let protoName = "paratool.v1.ToolCallRequest"

    /// Unique per request; required (the Kafka key of the request and its Action).
    public var requestID: String
    /// The user's query.
    public var query: String
    /// Earlier steps of this episode, oldest first.
    public var history: [WireStep]
    /// Tools that may be called; empty means the whole catalogue.
    public var candidateTools: [String]
    /// Generation budget; 0 means the worker's default.
    public var maxNewTokens: UInt32
    /// Unix time in milliseconds after which the request is answered with
    /// `deadlineExceeded`; 0 means no deadline.
    public var deadlineUnixMs: Int64
    /// How many adapters the gate keeps; `nil` means the worker's default.
    public var topN: UInt32?
    /// Method override; `nil` means the worker's default.
    public var mode: WireMode?
    /// Most tool calls the answer may hold (1: no parallel calls); `nil` means the decoder's limit.
    public var maxCalls: UInt32?
    /// What the answer may be: `auto`, `required`, `none` or a candidate tool's name; empty means
    /// the worker's default.
    public var toolChoice: String
    /// Do not store this request (no trajectory candidate is published for it).
    public var doNotLog: Bool
    /// Who sends it (e.g. `agent:<name>`), stored with its trajectory candidate; may be empty.
    public var source: String

    /// Creates a request.
    public init(requestID: String, query: String, history: [WireStep] = [], candidateTools: [String] = [],
                maxNewTokens: UInt32 = 0, deadlineUnixMs: Int64 = 0, topN: UInt32? = nil, mode: WireMode? = nil,
                maxCalls: UInt32? = nil, toolChoice: String = "", doNotLog: Bool = false, source: String = "") {
        self.requestID = requestID
        self.query = query
        self.history = history
        self.candidateTools = candidateTools
        self.maxNewTokens = maxNewTokens
        self.deadlineUnixMs = deadlineUnixMs
        self.topN = topN
        self.mode = mode
        self.maxCalls = maxCalls
        self.toolChoice = toolChoice
        self.doNotLog = doNotLog
        self.source = source
    }

    init(c: Paratool__V1__ToolCallRequest) throws {
        requestID = try wireString(c.request_id, field: "request_id")
        query = try wireString(c.query, field: "query")
        history = try wireMap(c.n_history, c.history, field: "history") { try WireStep(c: $0.pointee, path: $1 + ".") }
        candidateTools = try wireMap(c.n_candidate_tools, c.candidate_tools, field: "candidate_tools") {
            try wireString($0, field: $1)
        }
        maxNewTokens = c.max_new_tokens
        deadlineUnixMs = c.deadline_unix_ms
        topN = c.top_n_present_case == PARATOOL__V1__TOOL_CALL_REQUEST__TOP_N_PRESENT_TOP_N ? c.top_n : nil
        mode = c.mode_present_case == PARATOOL__V1__TOOL_CALL_REQUEST__MODE_PRESENT_MODE
            ? WireMode(rawValue: wireEnum(c.mode)) : nil
        maxCalls = c.max_calls_present_case == PARATOOL__V1__TOOL_CALL_REQUEST__MAX_CALLS_PRESENT_MAX_CALLS ? c.max_calls : nil
        toolChoice = try wireString(c.tool_choice, field: "tool_choice")
        doNotLog = c.do_not_log != 0
        source = try wireString(c.source, field: "source")
    }

    func c(_ arena: CArena) -> Paratool__V1__ToolCallRequest {
        var c = Paratool__V1__ToolCallRequest()
        paratool__v1__tool_call_request__init(&c)
        c.request_id = arena.string(requestID)
        c.query = arena.string(query)
        c.n_history = history.count
        c.history = arena.messages(history.map { $0.c(arena) })
        c.n_candidate_tools = candidateTools.count
        c.candidate_tools = arena.strings(candidateTools)
        c.max_new_tokens = maxNewTokens
        c.deadline_unix_ms = deadlineUnixMs
        if let topN {
            c.top_n_present_case = PARATOOL__V1__TOOL_CALL_REQUEST__TOP_N_PRESENT_TOP_N
            c.top_n = topN
        }
        if let mode {
            c.mode_present_case = PARATOOL__V1__TOOL_CALL_REQUEST__MODE_PRESENT_MODE
            c.mode = cEnum(mode.rawValue)
        }
        if let maxCalls {
            c.max_calls_present_case = PARATOOL__V1__TOOL_CALL_REQUEST__MAX_CALLS_PRESENT_MAX_CALLS
            c.max_calls = maxCalls
        }
        c.tool_choice = arena.string(toolChoice)
        c.do_not_log = doNotLog ? 1 : 0
        c.source = arena.string(source)
        return c
    }

    public func validate() throws {
        try requireNonEmpty(requestID, field: "request_id")
        for (index, step) in history.enumerated() { try step.validate(path: "history[\(index)].") }
        // A result names its call by id, so an id names one call of the whole episode.
        var ids = Set<String>()
        for (s, step) in history.enumerated() {
            for (index, call) in step.calls.enumerated() where !call.id.isEmpty && !ids.insert(call.id).inserted {
                throw WireError.invalidField(field: "history[\(s)].calls[\(index)].id", reason: "'\(call.id)' is the id of an earlier call")
            }
        }
        for (index, tool) in candidateTools.enumerated() {
            try requireNonEmpty(tool, field: "candidate_tools[\(index)]")
        }
    }

    public func encode() throws -> [UInt8] {
        try encodeMessage(Self.protoName, c, size: paratool__v1__tool_call_request__get_packed_size, pack: paratool__v1__tool_call_request__pack)
    }

    public init(bytes: [UInt8], limits: WireLimits) throws {
        self = try decodeMessage(
            bytes, limits: limits, type: Self.protoName,
            unpack: paratool__v1__tool_call_request__unpack, free: paratool__v1__tool_call_request__free_unpacked
        ) { try WireToolCallRequest(c: $0) }
        try validate()
    }
}
