// Owns ToolCatalogue: the set of known tools, looked up by name, and its loaders for BFCL function
// lists and question files, OpenAI-style `tools` arrays, and plain arrays of ToolSpec objects.
import Foundation
import LLM

/// The tools a deployment knows, in load order, unique by name.
public struct ToolCatalogue: Sendable, Equatable {
    /// The tools, in the order they were first seen.
    public private(set) var tools: [ToolSpec] = []
    private var index: [String: Int] = [:]

    /// A catalogue of `tools`; a repeated name keeps its first definition.
    public init(_ tools: [ToolSpec] = []) {
        for tool in tools { add(tool) }
    }

    /// Adds `tool` unless a tool of that name is already present; returns whether it was added.
    @discardableResult
    public mutating func add(_ tool: ToolSpec) -> Bool {
        guard index[tool.name] == nil else { return false }
        index[tool.name] = tools.count
        tools.append(tool)
        return true
    }

    /// The tool called `name`.
    public subscript(name: String) -> ToolSpec? {
        index[name].map { tools[$0] }
    }

    /// The tool names, in order.
    public var names: [String] { tools.map(\.name) }

    /// The number of tools.
    public var count: Int { tools.count }

    /// Whether a tool called `name` is present.
    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// The tools called `names`, in that order.
    /// - Throws: `ToolFormatError` listing the names that are not in the catalogue.
    public func specs(named names: [String]) throws -> [ToolSpec] {
        let missing = names.filter { index[$0] == nil }
        guard missing.isEmpty else {
            throw ToolFormatError("unknown tools: \(missing.joined(separator: ", "))")
        }
        return names.map { tools[index[$0]!] }
    }

    // MARK: Loading

    /// Loads `file`; see `parse(_:)` for the formats.
    /// - Throws: `ToolFormatError` (prefixed with the path) or a file-reading error.
    public static func load(file: URL) throws -> ToolCatalogue {
        let data = try Data(contentsOf: file)
        guard let text = String(data: data, encoding: .utf8) else {
            throw ToolFormatError("\(file.path): not UTF-8 text")
        }
        do {
            return try parse(text)
        } catch let error as ToolFormatError {
            throw ToolFormatError("\(file.path): \(error.message)")
        }
    }

    /// Writes the catalogue as a JSON array of ToolSpec objects (which `load(file:)` reads back),
    /// durably: a temporary file, fsync, then rename.
    public func save(to file: URL) throws {
        try DurableFiles.write(Data(JSONValue.array(tools.map(\.json)).serialized().utf8), to: file)
    }

    /// A catalogue from text in one of these shapes, detected from the content:
    /// - a JSON array of tools, each either `{name, description, parameters}` (a BFCL `function`
    ///   list, or ToolSpec objects) or OpenAI-style `{"type": "function", "function": {…}}`;
    /// - a JSON object: one BFCL question (`"function": [...]`), a request with `"tools": [...]`,
    ///   or a single tool;
    /// - JSON Lines, each line one of the above (a BFCL question file): the union of all tools,
    ///   a repeated name keeping its first definition.
    /// - Throws: `ToolFormatError` naming what was found where (with line numbers for JSON Lines
    ///   and the JSON parser's offset for malformed text).
    public static func parse(_ text: String) throws -> ToolCatalogue {
        let whole: JSONValue
        do {
            whole = try JSONValue.parse(text)
        } catch let error as JSONParseError {
            // A complete value followed by more text: JSON Lines.
            guard error.isTrailingText else {
                throw ToolFormatError("\(error)")
            }
            var catalogue = ToolCatalogue()
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                guard line.contains(where: { !$0.isWhitespace }) else { continue }
                do {
                    for tool in try tools(in: JSONValue.parse(String(line))) { catalogue.add(tool) }
                } catch let error as JSONParseError {
                    throw ToolFormatError("line \(number + 1): \(error)")
                } catch let error as ToolFormatError {
                    throw ToolFormatError("line \(number + 1): \(error.message)")
                }
            }
            return catalogue
        }
        return ToolCatalogue(try tools(in: whole))
    }

    /// The tools in one parsed JSON value (any shape `parse(_:)` accepts for a whole document).
    /// - Throws: `ToolFormatError` naming the unexpected shape.
    public static func tools(in value: JSONValue) throws -> [ToolSpec] {
        switch value {
        case .array(let items):
            return try toolList(items, container: "array")
        case .object(let object):
            if let functions = object["function"], case .array(let items) = functions {
                return try toolList(items, container: "\"function\"")
            }
            if let tools = object["tools"], case .array(let items) = tools {
                return try toolList(items, container: "\"tools\"")
            }
            if object["name"] != nil || isOpenAITool(object) {
                return [try tool(object)]
            }
            throw ToolFormatError(
                "found an object with keys [\(object.keys.joined(separator: ", "))]; expected a BFCL question "
                    + "(\"function\": [...]), an object with \"tools\": [...], a tool, or an array of tools")
        default:
            throw ToolFormatError("found a JSON \(value.kindName); expected an array of tools or an object holding them")
        }
    }

    private static func toolList(_ items: [JSONValue], container: String) throws -> [ToolSpec] {
        try items.enumerated().map { i, item in
            guard case .object(let object) = item, object["name"] != nil || isOpenAITool(object) else {
                let found = item.objectValue.map { "an object with keys [\($0.keys.joined(separator: ", "))]" } ?? item.kindWithArticle
                throw ToolFormatError(
                    "element \(i) of the \(container) is \(found); expected {\"name\", \"description\", \"parameters\"} "
                        + "or {\"type\": \"function\", \"function\": {...}}")
            }
            do {
                return try tool(object)
            } catch let error as ToolFormatError {
                throw ToolFormatError("element \(i) of the \(container): \(error.message)")
            }
        }
    }

    private static func isOpenAITool(_ object: JSONObject) -> Bool {
        object["type"] == .string("function") && object["function"]?.objectValue != nil
    }

    private static func tool(_ object: JSONObject) throws -> ToolSpec {
        if object["name"] == nil, isOpenAITool(object), let function = object["function"] {
            return try ToolSpec(json: function)
        }
        return try ToolSpec(json: .object(object))
    }
}
