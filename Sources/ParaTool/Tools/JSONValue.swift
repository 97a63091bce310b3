// Owns JSONValue, the JSON tree used for tool schemas and call arguments: objects keep their key
// order (prompt text must be deterministic), integers stay exact, and `serialized` writes text
// byte-identical to Python's `json.dumps` with its default separators.
import Foundation

/// A JSON value. Objects keep their members in order; integers are exact (`int`), other numbers
/// are `double`.
public enum JSONValue: Sendable, Equatable {
    /// `null`.
    case null
    /// `true` / `false`.
    case bool(Bool)
    /// A number written without fraction or exponent that fits in 64 bits.
    case int(Int64)
    /// Any other number.
    case double(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object, members in order.
    case object(JSONObject)

    /// The member `key` of an object; nil for a missing key or a non-object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    /// The string, when this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The object, when this is an object.
    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The elements, when this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// What kind of value this is, for error messages: `null`, `boolean`, `integer`, `number`,
    /// `string`, `array`, `object`.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int: return "integer"
        case .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// How many arrays and objects nest on the deepest path: 0 for a scalar, 1 for `{}` or
    /// `[1]`, 2 for `{"a": []}`. What the parser's nesting limit counts, for callers that wrap a
    /// value in objects of their own before storing it.
    public var nestingDepth: Int {
        switch self {
        case .array(let items): return 1 + (items.lazy.map(\.nestingDepth).max() ?? 0)
        case .object(let object): return 1 + (object.members.lazy.map(\.value.nestingDepth).max() ?? 0)
        default: return 0
        }
    }

    /// `kindName` with its article (`an array`, `a string`, `null`), for error messages.
    public var kindWithArticle: String {
        switch self {
        case .null: return "null"
        case .int, .array, .object: return "an \(kindName)"
        default: return "a \(kindName)"
        }
    }
}

/// A JSON object: members in insertion order, looked up by key. Setting an existing key replaces
/// its value in place (like a Python dict), so keys are unique.
///
/// Equality ignores member order (two objects are equal when they have the same keys with equal
/// values), as JSON and Python's `dict` do; serialization keeps the order.
public struct JSONObject: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    /// The keys, in order.
    public private(set) var keys: [String] = []
    private var values: [String: JSONValue] = [:]

    /// An empty object.
    public init() {}

    /// An object from `members` in order; a repeated key keeps its first position and last value.
    public init(_ members: [(String, JSONValue)]) {
        for (key, value) in members { self[key] = value }
    }

    /// An object from a literal, in the literal's order.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }

    /// The value of `key`; assigning nil removes the member.
    public subscript(key: String) -> JSONValue? {
        get { values[key] }
        set {
            if let newValue {
                if values.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if values.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// The number of members.
    public var count: Int { keys.count }

    /// True when there are no members.
    public var isEmpty: Bool { keys.isEmpty }

    /// The members in order.
    public var members: [(key: String, value: JSONValue)] { keys.map { ($0, values[$0]!) } }

    /// Iterates the members in order.
    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> {
        members.makeIterator()
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.values == rhs.values
    }
}

// MARK: Literals

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
}

// MARK: Serialization

extension JSONValue {
    /// Compact JSON text, identical to Python's `json.dumps(value)` with its defaults: separators
    /// `", "` and `": "`, floats as Python's `repr` (`1.0`, `1e-05`, `1e+16`), `NaN` and
    /// `Infinity` for non-finite doubles.
    /// - Parameters:
    ///   - sortedKeys: sort object keys by Unicode code points (`sort_keys=True`); otherwise the
    ///     object's own order.
    ///   - asciiOnly: escape every non-ASCII character as `\uXXXX` (surrogate pairs above U+FFFF),
    ///     Python's default `ensure_ascii=True`; false writes them as UTF-8 (`ensure_ascii=False`).
    public func serialized(sortedKeys: Bool = false, asciiOnly: Bool = true) -> String {
        var out = ""
        write(to: &out, sortedKeys: sortedKeys, asciiOnly: asciiOnly)
        return out
    }

    private func write(to out: inout String, sortedKeys: Bool, asciiOnly: Bool) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += Self.pythonRepr(d)
        case .string(let s): Self.writeString(s, to: &out, asciiOnly: asciiOnly)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += ", " }
                item.write(to: &out, sortedKeys: sortedKeys, asciiOnly: asciiOnly)
            }
            out += "]"
        case .object(let object):
            out += "{"
            var members = object.members
            if sortedKeys { members.sort { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) } }
            for (i, member) in members.enumerated() {
                if i > 0 { out += ", " }
                Self.writeString(member.key, to: &out, asciiOnly: asciiOnly)
                out += ": "
                member.value.write(to: &out, sortedKeys: sortedKeys, asciiOnly: asciiOnly)
            }
            out += "}"
        }
    }

    /// Python's `float.__repr__`: shortest round-trip digits, exponent form below 1e-4 and from
    /// 1e16 on. Swift's `description` follows the same rule.
    static func pythonRepr(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return d.description
    }

    private static let hexDigits = Array("0123456789abcdef")

    private static func writeString(_ s: String, to out: inout String, asciiOnly: Bool) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                let v = scalar.value
                if v < 0x20 || (asciiOnly && v > 0x7E) {
                    if v > 0xFFFF {
                        let u = v - 0x10000
                        writeEscape(0xD800 + (u >> 10), to: &out)
                        writeEscape(0xDC00 + (u & 0x3FF), to: &out)
                    } else {
                        writeEscape(v, to: &out)
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private static func writeEscape(_ unit: UInt32, to out: inout String) {
        out += "\\u"
        for shift in stride(from: 12, through: 0, by: -4) {
            out.append(hexDigits[Int((unit >> UInt32(shift)) & 0xF)])
        }
    }
}

// MARK: Codable

/// Through `Codable` a `JSONValue` is the JSON value itself. Decoders do not report object key
/// order, so decoded objects take the decoder's key order; use `JSONValue.parse` when the order
/// matters (prompt text).
extension JSONValue: Codable {
    private struct MemberKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: MemberKey.self) {
            var object = JSONObject()
            for key in keyed.allKeys { object[key.stringValue] = try keyed.decode(JSONValue.self, forKey: key) }
            self = .object(object)
            return
        }
        if var unkeyed = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !unkeyed.isAtEnd { items.append(try unkeyed.decode(JSONValue.self)) }
            self = .array(items)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let b = try? single.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? single.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? single.decode(Double.self) {
            self = .double(d)
        } else if let s = try? single.decode(String.self) {
            self = .string(s)
        } else {
            throw DecodingError.dataCorruptedError(in: single, debugDescription: "not a JSON value")
        }
    }

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .int(let i):
            var c = encoder.singleValueContainer()
            try c.encode(i)
        case .double(let d):
            var c = encoder.singleValueContainer()
            try c.encode(d)
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .array(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(item) }
        case .object(let object):
            var c = encoder.container(keyedBy: MemberKey.self)
            for (key, value) in object { try c.encode(value, forKey: MemberKey(stringValue: key)) }
        }
    }
}
