// Owns ToolChoice: what kind of answer a request allows — calls, a plain-text answer, or either —
// named as OpenAI's chat API and vLLM name it (`tool_choice`).

/// What kind of answer a request allows.
public enum ToolChoice: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// One or more calls, or a plain-text answer (a final answer, or "no tool fits"): the default.
    case auto
    /// At least one call.
    case required
    /// A plain-text answer only.
    case none
    /// At least one call, every call of this tool.
    case tool(String)

    /// Whether the answer may be plain text.
    public var allowsText: Bool { self == .auto || self == .none }
    /// Whether the answer may hold calls.
    public var allowsCalls: Bool { self != .none }

    /// `auto`, `required`, `none`, or the tool's name.
    public var description: String {
        switch self {
        case .auto: "auto"
        case .required: "required"
        case .none: "none"
        case .tool(let name): name
        }
    }

    /// Reads `auto`, `required` or `none`; any other non-empty text names a tool.
    public init(parsing text: String) {
        switch text {
        case "auto": self = .auto
        case "required": self = .required
        case "none": self = .none
        default: self = .tool(text)
        }
    }
}
