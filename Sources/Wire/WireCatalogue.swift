// WireAdapterUpdate and WireToolSpec: the compacted control topics, `adapters` (a new adapter
// version per tool) and `tools` (the catalogue), both keyed by tool name.
import ParaToolProtoC

/// A new adapter version is available (`paratool.v1.AdapterUpdate`).
public struct WireAdapterUpdate: WireMessage, Hashable {
    public static let protoName = "paratool.v1.AdapterUpdate"

    /// The tool; required.
    public var tool: String
    /// The store version, e.g. `v000003`; required.
    public var version: String
    /// Where the adapter lives (store path or URL).
    public var uri: String
    /// The hex sha256 the store reports for this version; required.
    public var sha256: String
    /// The training stage that produced it, e.g. `pretrain`, `joint`.
    public var stage: String
    /// Creation time, Unix milliseconds.
    public var createdUnixMs: Int64

    /// Creates an update.
    public init(tool: String, version: String, uri: String = "", sha256: String, stage: String = "", createdUnixMs: Int64 = 0) {
        self.tool = tool
        self.version = version
        self.uri = uri
        self.sha256 = sha256
        self.stage = stage
        self.createdUnixMs = createdUnixMs
    }

    init(c: Paratool__V1__AdapterUpdate) throws {
        self.init(
            tool: try wireString(c.tool, field: "tool"), version: try wireString(c.version, field: "version"),
            uri: try wireString(c.uri, field: "uri"), sha256: try wireString(c.sha256, field: "sha256"),
            stage: try wireString(c.stage, field: "stage"), createdUnixMs: c.created_unix_ms)
    }

    func c(_ arena: CArena) -> Paratool__V1__AdapterUpdate {
        var c = Paratool__V1__AdapterUpdate()
        paratool__v1__adapter_update__init(&c)
        c.tool = arena.string(tool)
        c.version = arena.string(version)
        c.uri = arena.string(uri)
        c.sha256 = arena.string(sha256)
        c.stage = arena.string(stage)
        c.created_unix_ms = createdUnixMs
        return c
    }

    public func validate() throws {
        try requireNonEmpty(tool, field: "tool")
        try requireNonEmpty(version, field: "version")
        try requireNonEmpty(sha256, field: "sha256")
    }

    public func encode() throws -> [UInt8] {
        try encodeMessage(Self.protoName, c, size: paratool__v1__adapter_update__get_packed_size, pack: paratool__v1__adapter_update__pack)
    }

    public init(bytes: [UInt8], limits: WireLimits) throws {
        self = try decodeMessage(
            bytes, limits: limits, type: Self.protoName,
            unpack: paratool__v1__adapter_update__unpack, free: paratool__v1__adapter_update__free_unpacked
        ) { try WireAdapterUpdate(c: $0) }
        try validate()
    }
}

/// A tool of the catalogue (`paratool.v1.ToolSpec`).
public struct WireToolSpec: WireMessage, Hashable {
    public static let protoName = "paratool.v1.ToolSpec"

    /// The tool's name; required.
    public var name: String
    /// What the tool does.
    public var description: String
    /// JSON Schema of the arguments object.
    public var parametersJSON: String

    /// Creates a tool spec.
    public init(name: String, description: String = "", parametersJSON: String = "{}") {
        self.name = name
        self.description = description
        self.parametersJSON = parametersJSON
    }

    init(c: Paratool__V1__ToolSpec) throws {
        self.init(
            name: try wireString(c.name, field: "name"), description: try wireString(c.description, field: "description"),
            parametersJSON: try wireString(c.parameters_json, field: "parameters_json"))
    }

    func c(_ arena: CArena) -> Paratool__V1__ToolSpec {
        var c = Paratool__V1__ToolSpec()
        paratool__v1__tool_spec__init(&c)
        c.name = arena.string(name)
        c.description = arena.string(description)
        c.parameters_json = arena.string(parametersJSON)
        return c
    }

    public func validate() throws {
        try requireNonEmpty(name, field: "name")
    }

    public func encode() throws -> [UInt8] {
        try encodeMessage(Self.protoName, c, size: paratool__v1__tool_spec__get_packed_size, pack: paratool__v1__tool_spec__pack)
    }

    public init(bytes: [UInt8], limits: WireLimits) throws {
        self = try decodeMessage(
            bytes, limits: limits, type: Self.protoName,
            unpack: paratool__v1__tool_spec__unpack, free: paratool__v1__tool_spec__free_unpacked
        ) { try WireToolSpec(c: $0) }
        try validate()
    }
}
