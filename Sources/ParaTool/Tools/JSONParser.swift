// Owns the strict JSON parser behind `JSONValue.parse` and its error, JSONParseError, which names
// the offset and what was expected there.
import Foundation

/// Malformed JSON: where, what was expected there, and what was found.
public struct JSONParseError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Offset of the problem in Unicode scalars (Python's character offset) from the start of the
    /// text.
    public var offset: Int
    /// 1-based line of `offset`.
    public var line: Int
    /// 1-based column of `offset`, in Unicode scalars.
    public var column: Int
    /// What the parser needed there, e.g. `',' or '}' after an object member`.
    public var expected: String
    /// What it found: a quoted character or `end of text`.
    public var found: String

    /// The `expected` text when a complete value is followed by more text.
    static let trailingTextExpectation = "end of text after the JSON value"

    /// True when the text starts with a complete JSON value followed by more text (as in JSON
    /// Lines read as one document).
    public var isTrailingText: Bool { expected == Self.trailingTextExpectation }

    /// `invalid JSON at offset 12 (line 1, column 13): expected …, found …`.
    public var description: String {
        "invalid JSON at offset \(offset) (line \(line), column \(column)): expected \(expected), found \(found)"
    }
}

extension JSONValue {
    /// Parses `text` as one JSON value (RFC 8259, strict): surrounding whitespace is allowed,
    /// anything else after the value is an error; no comments, trailing commas, single quotes,
    /// leading zeros, `NaN`, numbers beyond Double's range (`1e999`), or raw control characters in
    /// strings. `\uXXXX` escapes combine surrogate pairs; a lone surrogate is an error. Integers
    /// that fit in `Int64` become `.int`, other numbers `.double`. A repeated object key keeps its
    /// first position and last value (like Python's `json.loads`).
    /// - Throws: `JSONParseError`.
    public static func parse(_ text: String) throws -> JSONValue {
        var parser = JSONParser(bytes: Array(text.utf8))
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.position < parser.bytes.count {
            throw parser.error(JSONParseError.trailingTextExpectation)
        }
        return value
    }
}

/// Recursive-descent parser over UTF-8 bytes.
private struct JSONParser {
    let bytes: [UInt8]
    var position = 0

    /// Nesting beyond this is rejected rather than risking the stack.
    static let maxDepth = 512

    init(bytes: [UInt8]) { self.bytes = bytes }

    func error(_ expected: String, at byteOffset: Int? = nil) -> JSONParseError {
        let at = byteOffset ?? position
        let prefix = bytes[0..<min(at, bytes.count)]
        // Count scalars: every byte that is not a UTF-8 continuation byte starts one.
        var offset = 0, line = 1, column = 1
        for byte in prefix where byte & 0xC0 != 0x80 {
            offset += 1
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return JSONParseError(offset: offset, line: line, column: column, expected: expected, found: describe(at: at))
    }

    private func describe(at index: Int) -> String {
        guard index < bytes.count else { return "end of text" }
        var end = index + 1
        while end < bytes.count, bytes[end] & 0xC0 == 0x80 { end += 1 }
        let character = String(decoding: bytes[index..<end], as: UTF8.self)
        if let scalar = character.unicodeScalars.first, scalar.value < 0x20 {
            return "control character U+" + String(format: "%04X", scalar.value)
        }
        return "'\(character)'"
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws -> JSONValue {
        guard position < bytes.count else { throw error("a JSON value") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("a JSON value (object, array, string, number, true, false or null)")
        }
    }

    private mutating func literal(_ word: String) throws {
        for byte in word.utf8 {
            guard position < bytes.count, bytes[position] == byte else { throw error("'\(word)'") }
            position += 1
        }
    }

    private mutating func parseObject(depth: Int) throws -> JSONValue {
        guard depth <= Self.maxDepth else { throw error("nesting of at most \(Self.maxDepth) levels") }
        position += 1
        var object = JSONObject()
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw error(object.isEmpty ? "a string key or '}'" : "a string key after ','")
            }
            let key = try parseString()
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                throw error("':' after the object key")
            }
            position += 1
            skipWhitespace()
            object[key] = try parseValue(depth: depth)
            skipWhitespace()
            guard position < bytes.count else { throw error("',' or '}' after an object member") }
            switch bytes[position] {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"): position += 1; return .object(object)
            default: throw error("',' or '}' after an object member")
            }
        }
    }

    private mutating func parseArray(depth: Int) throws -> JSONValue {
        guard depth <= Self.maxDepth else { throw error("nesting of at most \(Self.maxDepth) levels") }
        position += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth))
            skipWhitespace()
            guard position < bytes.count else { throw error("',' or ']' after an array element") }
            switch bytes[position] {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return .array(items)
            default: throw error("',' or ']' after an array element")
            }
        }
    }

    private mutating func parseString() throws -> String {
        position += 1
        var scalars = String.UnicodeScalarView()
        var runStart = position
        func flush(_ end: Int) {
            if end > runStart { scalars.append(contentsOf: String(decoding: bytes[runStart..<end], as: UTF8.self).unicodeScalars) }
        }
        while true {
            guard position < bytes.count else { throw error("'\"' to close the string") }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                flush(position)
                position += 1
                return String(scalars)
            }
            if byte < 0x20 { throw error("an escape sequence instead of a raw control character in a string") }
            if byte != UInt8(ascii: "\\") {
                position += 1
                continue
            }
            flush(position)
            let escapeStart = position
            position += 1
            guard position < bytes.count else { throw error("an escape character after '\\'") }
            let escaped = bytes[position]
            position += 1
            switch escaped {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                let unit = try hex4()
                if (0xD800...0xDBFF).contains(unit) {
                    guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                        throw error("a '\\uDC00'-'\\uDFFF' low surrogate after the high surrogate", at: escapeStart)
                    }
                    position += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw error("a '\\uDC00'-'\\uDFFF' low surrogate after the high surrogate", at: escapeStart)
                    }
                    scalars.append(Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!)
                } else if (0xDC00...0xDFFF).contains(unit) {
                    throw error("a high surrogate before the low surrogate (lone '\\u\(String(unit, radix: 16))')", at: escapeStart)
                } else {
                    scalars.append(Unicode.Scalar(unit)!)
                }
            default:
                position -= 1
                throw error("one of '\"\\/bfnrtu' after '\\'")
            }
            runStart = position
        }
    }

    private mutating func hex4() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard position < bytes.count else { throw error("4 hex digits after '\\u'") }
            let b = bytes[position]
            let digit: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw error("4 hex digits after '\\u'")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    private mutating func parseNumber() throws -> JSONValue {
        let start = position
        var integral = true
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count, isDigit(bytes[position]) else { throw error("a digit after '-'") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < bytes.count, isDigit(bytes[position]) { throw error("'.', 'e' or the end of the number after a leading 0") }
        } else {
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            integral = false
            position += 1
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("a digit after '.'") }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            integral = false
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("a digit in the exponent") }
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if integral, let i = Int64(text) { return .int(i) }
        // Beyond Double's range the value would be infinity, which `serialized` cannot write as
        // JSON this parser reads back: refused here so it never reaches a stored line.
        guard let d = Double(text), d.isFinite else { throw error("a finite number", at: start) }
        return .double(d)
    }

    private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
}
