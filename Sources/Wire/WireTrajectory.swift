// WireTrajectory: one episode for training (`paratool.v1.Trajectory`, topic `trajectories`, key
// tool name).
import ParaToolProtoC

/// One episode for training (`paratool.v1.Trajectory`).
public struct WireTrajectory: WireMessage, Hashable {
    public static let protoName = "paratool.v1.Trajectory"

    /// Unique per trajectory; required.
    public var id: String
    /// The user's query.
    public var query: String
    /// The tools that were offered.
    public var candidateTools: [String]
    /// Gold actions and their observations, in order.
    public var steps: [WireStep]
    /// Whether the episode reached its goal.
    public var outcome: WireOutcome
    /// Where it came from, e.g. `served` or `dataset:<name>`.
    public var source: String
    /// A served episode's `ToolCallRequest.source` (who sent it; may be empty).
    public var requestSource: String

    /// Creates a trajectory.
    public init(id: String, query: String, candidateTools: [String] = [], steps: [WireStep] = [],
                outcome: WireOutcome = .unknown, source: String = "", requestSource: String = "") {
        self.id = id
        self.query = query
        self.candidateTools = candidateTools
        self.steps = steps
        self.outcome = outcome
        self.source = source
        self.requestSource = requestSource
    }

    init(c: Paratool__V1__Trajectory) throws {
        id = try wireString(c.id, field: "id")
        query = try wireString(c.query, field: "query")
        candidateTools = try wireMap(c.n_candidate_tools, c.candidate_tools, field: "candidate_tools") {
            try wireString($0, field: $1)
        }
        steps = try wireMap(c.n_steps, c.steps, field: "steps") { try WireStep(c: $0.pointee, path: $1 + ".") }
        outcome = WireOutcome(rawValue: wireEnum(c.outcome))
        source = try wireString(c.source, field: "source")
        requestSource = try wireString(c.request_source, field: "request_source")
    }

    func c(_ arena: CArena) -> Paratool__V1__Trajectory {
        var c = Paratool__V1__Trajectory()
        paratool__v1__trajectory__init(&c)
        c.id = arena.string(id)
        c.query = arena.string(query)
        c.n_candidate_tools = candidateTools.count
        c.candidate_tools = arena.strings(candidateTools)
        c.n_steps = steps.count
        c.steps = arena.messages(steps.map { $0.c(arena) })
        c.outcome = cEnum(outcome.rawValue)
        c.source = arena.string(source)
        c.request_source = arena.string(requestSource)
        return c
    }

    public func validate() throws {
        try requireNonEmpty(id, field: "id")
        for (index, step) in steps.enumerated() { try step.validate(path: "steps[\(index)].") }
    }

    public func encode() throws -> [UInt8] {
        try encodeMessage(Self.protoName, c, size: paratool__v1__trajectory__get_packed_size, pack: paratool__v1__trajectory__pack)
    }

    public init(bytes: [UInt8], limits: WireLimits) throws {
        self = try decodeMessage(
            bytes, limits: limits, type: Self.protoName,
            unpack: paratool__v1__trajectory__unpack, free: paratool__v1__trajectory__free_unpacked
        ) { try WireTrajectory(c: $0) }
        try validate()
    }
}
