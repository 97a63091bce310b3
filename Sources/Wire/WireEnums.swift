// The protobuf enums of paratool.proto as Swift enums. Protobuf enums are open: a value a newer
// writer added decodes as `.unrecognized(raw)` and encodes back unchanged.

/// The inference method for a request (`paratool.v1.Mode`).
public enum WireMode: Hashable, Sendable {
    /// The worker's configured default.
    case unspecified
    /// Gated mixture of per-tool adapters.
    case paratool
    /// Uniform average of the candidate adapters.
    case average
    /// Only the gate's best adapter.
    case top1
    /// The gold tool's adapter (evaluation only).
    case oracle
    /// Embedding-similarity retrieval of one adapter.
    case embsim
    /// No adapters: tool documentation in the prompt.
    case contextDocs
    /// A value this build does not know.
    case unrecognized(Int32)

    /// Creates the case for a wire value.
    public init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .unspecified
        case 1: self = .paratool
        case 2: self = .average
        case 3: self = .top1
        case 4: self = .oracle
        case 5: self = .embsim
        case 6: self = .contextDocs
        default: self = .unrecognized(rawValue)
        }
    }

    /// The wire value.
    public var rawValue: Int32 {
        switch self {
        case .unspecified: return 0
        case .paratool: return 1
        case .average: return 2
        case .top1: return 3
        case .oracle: return 4
        case .embsim: return 5
        case .contextDocs: return 6
        case .unrecognized(let v): return v
        }
    }

    /// The mode's command-line and log name (`paratool`, `context-docs`, …), `nil` for
    /// `.unspecified` and unrecognized values.
    public var name: String? {
        switch self {
        case .paratool: return "paratool"
        case .average: return "average"
        case .top1: return "top1"
        case .oracle: return "oracle"
        case .embsim: return "embsim"
        case .contextDocs: return "context-docs"
        case .unspecified, .unrecognized: return nil
        }
    }

    /// The mode with the given name (see `name`), or `nil`.
    public init?(name: String) {
        let all: [WireMode] = [.paratool, .average, .top1, .oracle, .embsim, .contextDocs]
        guard let mode = all.first(where: { $0.name == name }) else { return nil }
        self = mode
    }
}

/// How a request ended (`paratool.v1.Status`).
public enum WireStatus: Hashable, Sendable {
    /// Never sent by a current worker.
    case unspecified
    /// The calls or text hold the answer.
    case ok
    /// Undecodable bytes or invalid fields.
    case invalidRequest
    /// A candidate tool is not in the catalogue.
    case unknownTool
    /// The deadline passed before the answer was ready.
    case deadlineExceeded
    /// The worker failed; retrying may help.
    case `internal`
    /// The worker cannot serve it now (a candidate's adapter is stale and being retrained);
    /// retrying later helps.
    case unavailable
    /// A value this build does not know.
    case unrecognized(Int32)

    /// Creates the case for a wire value.
    public init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .unspecified
        case 1: self = .ok
        case 2: self = .invalidRequest
        case 3: self = .unknownTool
        case 4: self = .deadlineExceeded
        case 5: self = .internal
        case 6: self = .unavailable
        default: self = .unrecognized(rawValue)
        }
    }

    /// The wire value.
    public var rawValue: Int32 {
        switch self {
        case .unspecified: return 0
        case .ok: return 1
        case .invalidRequest: return 2
        case .unknownTool: return 3
        case .deadlineExceeded: return 4
        case .internal: return 5
        case .unavailable: return 6
        case .unrecognized(let v): return v
        }
    }
}

/// Outcome of a training episode (`paratool.v1.Outcome`).
public enum WireOutcome: Hashable, Sendable {
    /// Not (yet) labelled.
    case unknown
    /// The episode reached its goal.
    case solved
    /// The episode failed.
    case unsolved
    /// A value this build does not know.
    case unrecognized(Int32)

    /// Creates the case for a wire value.
    public init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .unknown
        case 1: self = .solved
        case 2: self = .unsolved
        default: self = .unrecognized(rawValue)
        }
    }

    /// The wire value.
    public var rawValue: Int32 {
        switch self {
        case .unknown: return 0
        case .solved: return 1
        case .unsolved: return 2
        case .unrecognized(let v): return v
        }
    }
}
