// Owns ToolSpec (one tool's name, description and JSON-schema parameters) and ToolFormatError,
// the error for tool files, gold answers and calls whose shape is not the expected one.
import Crypto
import Foundation

/// A tool document: what the prompt shows about a tool and what its adapter is named after.
public struct ToolSpec: Sendable, Codable, Equatable {
    /// The function name the model must write, e.g. `spotify.play`.
    public var name: String
    /// What the tool does.
    public var description: String
    /// The JSON schema of the arguments (BFCL writes `"type": "dict"` for objects; kept as is).
    public var parameters: JSONValue

    /// What an adapter of this tool learned to write: the first 16 hex digits of the SHA-256 of
    /// the name, a NUL byte and the parameters' JSON with sorted keys. The adapter store records
    /// it per version; an adapter whose tool's schema changed since is stale (a description
    /// change only re-encodes the gate's vector of the tool).
    public var schemaFingerprint: String {
        let text = name + "\u{0}" + parameters.serialized(sortedKeys: true)
        return SHA256.hash(data: Data(text.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// A tool; `parameters` defaults to an empty object schema.
    public init(name: String, description: String, parameters: JSONValue = ["type": "object", "properties": [:]]) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }

    /// From a `{"name", "description", "parameters"}` object (BFCL `function` entries and the
    /// `function` member of OpenAI tools). A missing description is `""`, missing parameters an
    /// empty object schema; other members are ignored.
    /// - Throws: `ToolFormatError` naming the missing or mistyped member.
    public init(json: JSONValue) throws {
        guard case .object(let object) = json else {
            throw ToolFormatError("a tool must be an object with \"name\", found \(json.kindWithArticle)")
        }
        guard let nameValue = object["name"] else {
            throw ToolFormatError("a tool object has no \"name\" (keys: \(object.keys.joined(separator: ", ")))")
        }
        guard case .string(let name) = nameValue, !name.isEmpty else {
            throw ToolFormatError("a tool's \"name\" must be a non-empty string, found \(nameValue.serialized())")
        }
        var description = ""
        if let value = object["description"] {
            guard case .string(let s) = value else {
                throw ToolFormatError("tool \(name): \"description\" must be a string, found \(value.kindWithArticle)")
            }
            description = s
        }
        var parameters: JSONValue = ["type": "object", "properties": [:]]
        if let value = object["parameters"] {
            guard case .object = value else {
                throw ToolFormatError("tool \(name): \"parameters\" must be an object, found \(value.kindWithArticle)")
            }
            parameters = value
        }
        self.init(name: name, description: description, parameters: parameters)
    }

    /// The document as JSON, members in the order name, description, parameters (the order of
    /// BFCL files), so `json.serialized()` is the text a Python tool would print.
    public var json: JSONValue {
        ["name": .string(name), "description": .string(description), "parameters": parameters]
    }

    /// The names in `parameters.required`, in order (empty when absent).
    public var requiredParameters: [String] {
        parameters["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// The names in `parameters.properties`, in order (empty when absent).
    public var parameterNames: [String] {
        parameters["properties"]?.objectValue?.keys ?? []
    }
}

/// A tool file, gold answer or call that does not have the expected shape.
public struct ToolFormatError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What was expected and what was found.
    public var message: String

    /// An error with `message`.
    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
