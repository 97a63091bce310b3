// CallGrammar: what a constrained answer may be, compiled for one request's candidate tools and its
// tool choice — one or more `<tool_call>{"name": "…", "arguments": {…}}</tool_call>` blocks
// (newline between them), or, where the choice allows it, a plain-text answer holding no call tag;
// the name is one of the candidates and the arguments follow that tool's JSON schema
// (property names, required ones, no duplicates, types, enums, nested objects and arrays; BFCL's
// type names dict, float, tuple and any as well as JSON Schema's). Spacing is the canonical one of
// `ToolCall.rendered` (Python's `json.dumps` separators), so exactly one text exists per value.
// `CallRecognizer` walks text against it byte by byte. `SchemaAlternatives` measures what a schema
// puts in the grammar (alternatives, literal bytes) for where specs enter to bound it.
import Foundation

/// The compiled form of a value's schema.
struct SchemaNode: Sendable {
    /// What kind of value the node admits.
    enum Kind: UInt8, Sendable {
        /// A JSON string.
        case string
        /// A JSON number without fraction or exponent.
        case integer
        /// A JSON number.
        case number
        /// One of the literal texts of the trie at `literalRoot` (enum values, true/false, null).
        case literal
        /// An array of `members[first]`, between `minItems` and `maxItems` items.
        case array
        /// An object with the properties of the trie at `keyRoot` (values `members[first + k]`).
        case object
        /// An object with any string keys and any values.
        case freeObject
        /// Any JSON value.
        case any
        /// The first of `members[first..<first+count]` that can start with the next byte.
        case union
    }

    var kind: Kind
    var literalRoot: Int32 = -1
    var keyRoot: Int32 = -1
    var first: Int32 = 0
    var count: Int32 = 0
    /// Object: bit k set when property k is required.
    var required: UInt64 = 0
    var minItems: Int32 = 0
    var maxItems: Int32 = CallGrammar.maxFreeItems
    /// String: most characters (Unicode scalars; an escape counts as one).
    var maxLength: UInt16 = CallGrammar.defaultMaxStringLength
}

/// The grammar of the answer to one request: its candidate tools' calls.
public struct CallGrammar: Sendable {
    /// Items an array may hold when its schema sets no maximum (bounds every answer).
    static let maxFreeItems: Int32 = 64
    /// Members a free-form object may hold.
    static let maxFreeMembers: Int64 = 32
    /// Nesting depth of free-form values (`any`, objects without properties).
    static let maxFreeDepth: UInt8 = 6
    /// Longest number, in bytes.
    static let maxNumberLength: UInt8 = 32
    /// Calls one answer may hold when the request sets no limit.
    public static let defaultMaxCalls = 16
    /// Characters of a string whose schema sets no `maxLength`: twice the longest string value of
    /// BFCL's gold answers (224), so no such value is cut, while a value that repeats itself stops
    /// long before it can take a budget of hundreds of tokens.
    public static let defaultMaxStringLength: UInt16 = 512

    /// The candidate tools, in request order.
    public let tools: [String]
    /// How many calls one answer may hold (at least 1).
    public let maxCalls: Int
    /// What kind of answer is allowed: with `.tool(name)`, `tools` holds that tool alone.
    public let choice: ToolChoice
    /// Schema notes: properties beyond 64 left out, unknown type names read as any value.
    public private(set) var warnings: [String] = []

    var literals = LiteralTable()
    var nodes: [SchemaNode] = []
    var members: [Int32] = []
    /// The arguments' node of each tool.
    var toolRoots: [Int32] = []
    /// `<tool_call>{"name": ` (first call) and `\n<tool_call>{"name": ` (later calls).
    var openRoot: Int32 = -1, separatorRoot: Int32 = -1
    /// The candidates' names as JSON strings; payload = tool index.
    var namesRoot: Int32 = -1
    /// `, "arguments": `, `}</tool_call>`, `: ` and `, `.
    var argumentsRoot: Int32 = -1, closeRoot: Int32 = -1, colonRoot: Int32 = -1, commaRoot: Int32 = -1
    /// `true`, `false`, `null`: the keywords of free-form values.
    var keywordRoot: Int32 = -1
    /// Bytes of the shortest value each node admits (see `shortestValueLength`).
    var minValueLength: [Int] = []
    /// Object nodes: the bytes of each property's quoted key, by property (empty for other nodes).
    var keyLengths: [[Int]] = []
    /// Bytes of the shortest rest of a call of each tool after its name: `, "arguments": `, the
    /// shortest arguments and `}</tool_call>`.
    var minCallTail: [Int] = []

    /// Compiles the grammar of answers calling `tools` (names deduplicated, first schema kept), at
    /// most `maxCalls` calls (nil: `defaultMaxCalls`; values below 1 count as 1), of the kind
    /// `choice` allows (`.tool(name)` keeps that tool alone; a name not among `tools` leaves no
    /// call possible).
    public init(tools specs: [ToolSpec], maxCalls: Int? = nil, choice: ToolChoice = .required) {
        var seen = Set<String>()
        var unique = specs.filter { seen.insert($0.name).inserted }
        if case .tool(let name) = choice { unique = unique.filter { $0.name == name } }
        tools = unique.map(\.name)
        self.choice = choice
        self.maxCalls = max(1, maxCalls ?? Self.defaultMaxCalls)
        var notes = [String]()
        openRoot = literals.addLiteral(ToolCall.openTag + "{\"name\": ")
        separatorRoot = literals.addLiteral("\n" + ToolCall.openTag + "{\"name\": ")
        namesRoot = literals.addTrie(unique.map { Array(JSONValue.string($0.name).serialized(asciiOnly: false).utf8) })
        argumentsRoot = literals.addLiteral(", \"arguments\": ")
        closeRoot = literals.addLiteral("}" + ToolCall.closeTag)
        colonRoot = literals.addLiteral(": ")
        commaRoot = literals.addLiteral(", ")
        keywordRoot = literals.addTrie([Array("true".utf8), Array("false".utf8), Array("null".utf8)])
        for spec in unique {
            var path = spec.name
            toolRoots.append(compile(spec.parameters, path: &path, notes: &notes, topLevel: true))
        }
        warnings = notes
        // Children are compiled before their parents, so one pass in node order sees every
        // member's length before the node that holds it.
        minValueLength.reserveCapacity(nodes.count)
        for node in nodes {
            keyLengths.append(node.kind == .object ? literals.entryLengths(below: node.keyRoot) : [])
            minValueLength.append(shortestValueLength(node, keys: keyLengths[keyLengths.count - 1]))
        }
        let fixed = Array(", \"arguments\": ".utf8).count + Array("}" + ToolCall.closeTag).count
        minCallTail = toolRoots.map { fixed + minValueLength[Int($0)] }
    }

    /// Bytes of the shortest value `node` admits, its members' lengths known: `""`, `0`, the
    /// shortest literal, `[]` or the fewest items, `{}` or the required properties with their
    /// shortest values. Saturates instead of overflowing.
    private func shortestValueLength(_ node: SchemaNode, keys: [Int]) -> Int {
        func member(_ k: Int32) -> Int { minValueLength[Int(members[Int(node.first + k)])] }
        switch node.kind {
        case .string: return 2
        case .integer, .number, .any: return 1
        case .freeObject: return 2
        case .literal: return literals.shortestEntry(below: node.literalRoot)
        case .array:
            let n = Int(node.minItems)
            return n == 0 ? 2 : min(Self.lengthCap, 2 + n * member(0) + (n - 1) * 2)
        case .object:
            var total = 2, given = 0
            for k in 0..<Int(node.count) where node.required & (1 << UInt64(k)) != 0 {
                total += (given > 0 ? 2 : 0) + keys[k] + 2 + member(Int32(k))
                given += 1
            }
            return min(Self.lengthCap, total)
        case .union:
            return (0..<node.count).map(member).min() ?? 1
        }
    }

    /// The largest length the shortest-completion arithmetic keeps (no overflow on crafted schemas).
    static let lengthCap = 1 << 40

    // MARK: Schema compilation

    /// The node of `schema`. Never fails: what cannot be constrained is admitted as any value and
    /// noted in `notes`.
    private mutating func compile(_ schema: JSONValue, path: inout String, notes: inout [String], topLevel: Bool = false) -> Int32 {
        guard case .object(let s) = schema else {
            if !topLevel { notes.append("\(path): schema is \(schema.kindWithArticle), read as any value") }
            return add(SchemaNode(kind: topLevel ? .object : .any))
        }
        if let values = s["enum"]?.arrayValue, !values.isEmpty, Self.isArrayType(s["type"]) {
            // BFCL's convention: an enum on an array lists the values of its items.
            var items = s["items"]?.objectValue ?? JSONObject()
            if items["enum"] == nil { items["enum"] = .array(values) }
            var array = s
            array["enum"] = nil
            array["items"] = .object(items)
            return compile(.object(array), path: &path, notes: &notes)
        }
        if let values = s["enum"]?.arrayValue ?? s["const"].map({ [$0] }), !values.isEmpty {
            return add(SchemaNode(kind: .literal, literalRoot: literals.addTrie(values.map { Array($0.serialized(asciiOnly: false).utf8) })))
        }
        if let alternatives = s["anyOf"]?.arrayValue ?? s["oneOf"]?.arrayValue, !alternatives.isEmpty {
            let compiled = alternatives.map { alt -> Int32 in compile(alt, path: &path, notes: &notes) }
            return union(compiled)
        }
        var typeNames: [String] = []
        switch s["type"] {
        case .string(let t)?: typeNames = [t]
        case .array(let list)?: typeNames = list.compactMap(\.stringValue)
        case nil: typeNames = s["properties"] != nil ? ["object"] : s["items"] != nil ? ["array"] : [topLevel ? "object" : "any"]
        case let other?:
            notes.append("\(path): type is \(other.kindWithArticle), read as any value")
            typeNames = ["any"]
        }
        if s["nullable"] == .bool(true) && !typeNames.contains("null") { typeNames.append("null") }
        let compiled = typeNames.map { compileType($0, s, path: &path, notes: &notes) }
        return compiled.count == 1 ? compiled[0] : union(compiled)
    }

    private mutating func compileType(_ type: String, _ s: JSONObject, path: inout String, notes: inout [String]) -> Int32 {
        switch type.lowercased() {
        case "string", "str", "char":
            var node = SchemaNode(kind: .string)
            if let n = s["maxLength"].flatMap(Self.integer) { node.maxLength = UInt16(clamping: max(0, n)) }
            return add(node)
        case "integer", "int", "long":
            return add(SchemaNode(kind: .integer))
        case "number", "float", "double":
            return add(SchemaNode(kind: .number))
        case "boolean", "bool":
            return add(SchemaNode(kind: .literal, literalRoot: literals.addTrie([Array("true".utf8), Array("false".utf8)])))
        case "null", "none":
            return add(SchemaNode(kind: .literal, literalRoot: literals.addLiteral("null")))
        case "array", "tuple", "list", "set":
            let itemNode: Int32
            let saved = path
            path += "[]"
            if let items = s["items"], items.objectValue != nil { itemNode = compile(items, path: &path, notes: &notes) }
            else { itemNode = add(SchemaNode(kind: .any)) }
            path = saved
            let lo = max(0, Int32(clamping: s["minItems"].flatMap(Self.integer) ?? 0))
            let hi = max(lo, min(Self.maxFreeItems, Int32(clamping: s["maxItems"].flatMap(Self.integer) ?? Int64(Self.maxFreeItems))))
            let first = Int32(members.count)
            members.append(itemNode)
            return add(SchemaNode(kind: .array, first: first, count: 1, minItems: lo, maxItems: hi))
        case "object", "dict", "map":
            let required = Set(s["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            var kept = s["properties"]?.objectValue?.members ?? []
            if kept.isEmpty {
                // Keys named only by `required` must be there, with any values; without them the
                // object is empty when `properties` says so, and free otherwise.
                kept = required.sorted().map { ($0, JSONValue.object(JSONObject())) }
                if kept.isEmpty && s["properties"] == nil { return add(SchemaNode(kind: .freeObject)) }
            }
            if kept.count > 64 {
                notes.append("\(path): \(kept.count) properties, only the first 64 are allowed")
                kept = Array(kept.prefix(64))
            }
            var mask: UInt64 = 0
            var children = [Int32]()
            for (k, member) in kept.enumerated() {
                if required.contains(member.key) { mask |= 1 << UInt64(k) }
                let saved = path
                path += "." + member.key
                children.append(compile(member.value, path: &path, notes: &notes))
                path = saved
            }
            let keyRoot = literals.addTrie(kept.map { Array(JSONValue.string($0.key).serialized(asciiOnly: false).utf8) })
            let first = Int32(members.count)
            members.append(contentsOf: children)
            return add(SchemaNode(kind: .object, keyRoot: keyRoot, first: first, count: Int32(children.count), required: mask))
        case "any", "mixed":
            return add(SchemaNode(kind: .any))
        default:
            notes.append("\(path): unknown type \"\(type)\", read as any value")
            return add(SchemaNode(kind: .any))
        }
    }

    private mutating func union(_ alternatives: [Int32]) -> Int32 {
        let first = Int32(members.count)
        members.append(contentsOf: alternatives)
        return add(SchemaNode(kind: .union, first: first, count: Int32(alternatives.count)))
    }

    private mutating func add(_ node: SchemaNode) -> Int32 {
        nodes.append(node)
        return Int32(nodes.count - 1)
    }

    private static func isArrayType(_ type: JSONValue?) -> Bool {
        guard case .string(let t)? = type else { return false }
        return ["array", "tuple", "list", "set"].contains(t.lowercased())
    }

    private static func integer(_ v: JSONValue) -> Int64? {
        switch v {
        case .int(let i): return i
        case .double(let d) where d.isFinite && abs(d) < 1e15: return Int64(d)
        default: return nil
        }
    }
}

/// What a tool's schema puts in a call grammar that the recognizer tries one by one: every enum or
/// const value, every anyOf/oneOf member and every name of a type list is an alternative, and the
/// enum and const values are literals held whole. Counted over the whole schema (every object in
/// it, as the grammar compiles nested schemas), so where specs enter can bound it.
public struct SchemaAlternatives: Sendable, Equatable {
    /// Enum and const values, anyOf/oneOf members and type-list names.
    public var count = 0
    /// Bytes of the enum and const values as the grammar holds them (canonical JSON text).
    public var literalBytes = 0

    public init(count: Int = 0, literalBytes: Int = 0) {
        self.count = count
        self.literalBytes = literalBytes
    }

    /// The alternatives of `schema`.
    public init(schema: JSONValue) {
        add(schema)
    }

    private mutating func add(_ value: JSONValue) {
        switch value {
        case .object(let s):
            for (key, member) in s.members {
                switch (key, member) {
                case ("enum", .array(let values)):
                    count += values.count
                    for v in values { literalBytes += v.serialized(asciiOnly: false).utf8.count }
                case ("const", _):
                    count += 1
                    literalBytes += member.serialized(asciiOnly: false).utf8.count
                case ("anyOf", .array(let members)), ("oneOf", .array(let members)), ("type", .array(let members)):
                    count += members.count
                    for m in members { add(m) }
                default:
                    add(member)
                }
            }
        case .array(let items):
            for item in items { add(item) }
        default:
            break
        }
    }
}
