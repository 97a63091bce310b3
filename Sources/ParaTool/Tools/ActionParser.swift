// Owns ActionParser: turns generated text into an Action, with one diagnostic per problem found
// (which block, what is wrong, where), so evaluation and the service can say why a call failed.
import Foundation

/// One problem found while parsing generated text.
public struct ActionDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public enum Kind: Sendable, Equatable {
        /// A `<tool_call>` with no `</tool_call>` before the next `<tool_call>` or the end.
        case unclosedBlock
        /// A `</tool_call>` with no open block.
        case unexpectedCloseTag
        /// A block with only whitespace inside.
        case emptyBlock
        /// The block is not valid JSON; `offset` counts Unicode scalars from the first character
        /// after `<tool_call>`.
        case invalidJSON(offset: Int)
        /// The block's JSON is not an object.
        case notAnObject
        /// The object has no `"name"`.
        case missingName
        /// `"name"` is not a non-empty string.
        case nameNotString
        /// The object has no `"arguments"`; the call is kept with `{}`.
        case missingArguments
        /// `"arguments"` is neither an object nor a string holding a JSON object.
        case argumentsNotObject
        /// `"arguments"` is a JSON string whose content is an object; it was decoded and kept.
        case argumentsAsString
        /// A member other than `"name"` and `"arguments"`; ignored.
        case unexpectedKey(String)
        /// The name is not in the catalogue passed to the parser; the call is kept.
        case unknownTool(String)
        /// Non-whitespace text before, between or after the blocks; ignored.
        case textOutsideBlocks
        /// The decoder's token budget forced the last call closed in the shortest way its schema
        /// allows (set by the engine, not the parser): the call is valid, its last values may be
        /// cut short.
        case forceClosed
    }

    /// How serious the problem is.
    public enum Severity: Sendable, Equatable {
        /// The text is not a valid action: a block gave no call, the tags are broken, or a call
        /// names an unknown tool.
        case error
        /// The call was accepted after a repair, or something was ignored.
        case warning
    }

    /// What is wrong.
    public var kind: Kind
    /// Error or warning.
    public var severity: Severity
    /// The 1-based block number, when the problem is inside or about one block.
    public var block: Int?
    /// A readable explanation with the details (offsets, found values).
    public var message: String

    /// `block 2: …` or the message alone.
    public var description: String {
        block.map { "block \($0): \(message)" } ?? message
    }
}

/// The result of parsing generated text.
public struct ActionParseResult: Sendable, Equatable {
    /// The action: `.calls` with the valid calls (possibly none) when the text has any
    /// `<tool_call>` or `</tool_call>` tag, otherwise `.answer` with the trimmed text.
    public var action: Action
    /// Every problem found, in text order.
    public var diagnostics: [ActionDiagnostic]

    /// The error diagnostics.
    public var errors: [ActionDiagnostic] { diagnostics.filter { $0.severity == .error } }
    /// The warning diagnostics.
    public var warnings: [ActionDiagnostic] { diagnostics.filter { $0.severity == .warning } }
    /// True when there is no error (warnings allowed).
    public var isValid: Bool { errors.isEmpty }
}

/// Parses model output written as `<tool_call>{"name": …, "arguments": {…}}</tool_call>` blocks.
public enum ActionParser {
    /// Parses `text` without checking tool names.
    public static func parse(_ text: String) -> ActionParseResult {
        parse(text, catalogue: nil)
    }

    /// Parses `text`; when `catalogue` is given, calls of tools not in it get an `unknownTool`
    /// error (and are kept, so evaluation can score them).
    public static func parse(_ text: String, catalogue: ToolCatalogue?) -> ActionParseResult {
        let open = ToolCall.openTag, close = ToolCall.closeTag
        guard text.contains(open) || text.contains(close) else {
            return ActionParseResult(action: .answer(text.trimmingCharacters(in: .whitespacesAndNewlines)), diagnostics: [])
        }
        var diagnostics: [ActionDiagnostic] = []
        var calls: [ToolCall] = []
        var outside: [Substring] = []
        var cursor = text.startIndex
        var blockNumber = 0
        while cursor < text.endIndex {
            let nextOpen = text.range(of: open, range: cursor..<text.endIndex)
            let nextClose = text.range(of: close, range: cursor..<text.endIndex)
            if let stray = nextClose, nextOpen.map({ stray.lowerBound < $0.lowerBound }) ?? true {
                outside.append(text[cursor..<stray.lowerBound])
                diagnostics.append(ActionDiagnostic(
                    kind: .unexpectedCloseTag, severity: .error, block: nil,
                    message: "\(close) at character \(text.distance(from: text.startIndex, to: stray.lowerBound)) closes no block"))
                cursor = stray.upperBound
                continue
            }
            guard let start = nextOpen else {
                outside.append(text[cursor...])
                break
            }
            outside.append(text[cursor..<start.lowerBound])
            blockNumber += 1
            // A block's tags are found outside its JSON strings, so a string value that holds tag
            // text (the call grammar allows any text in a string) does not split the block; when
            // the block's strings never close, the plain search of malformed text applies.
            let (after, end) = tagsAfterBlockStart(in: text, from: start.upperBound, open: open, close: close)
            if let end, after.map({ end.lowerBound < $0.lowerBound }) ?? true {
                if let call = parseBlock(text[start.upperBound..<end.lowerBound], block: blockNumber, catalogue: catalogue, into: &diagnostics) {
                    calls.append(call)
                }
                cursor = end.upperBound
            } else {
                let contentEnd = after?.lowerBound ?? text.endIndex
                let marker = diagnostics.count
                let call = parseBlock(text[start.upperBound..<contentEnd], block: blockNumber, catalogue: catalogue, into: &diagnostics)
                let before = after == nil ? "the end of the text" : "the next \(open)"
                diagnostics.insert(ActionDiagnostic(
                    kind: .unclosedBlock, severity: call == nil ? .error : .warning, block: blockNumber,
                    message: "\(open) is not closed by \(close) before \(before)"
                        + (call == nil ? "" : "; its content is a complete call and was kept")),
                    at: marker)
                if let call { calls.append(call) }
                cursor = contentEnd
            }
        }
        let stray = outside.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        if !stray.isEmpty {
            let joined = stray.joined(separator: " … ")
            let shown = joined.count > 80 ? String(joined.prefix(80)) + "…" : joined
            diagnostics.append(ActionDiagnostic(
                kind: .textOutsideBlocks, severity: .warning, block: nil,
                message: "text outside \(open) blocks was ignored: \"\(shown)\""))
        }
        return ActionParseResult(action: .calls(calls), diagnostics: diagnostics)
    }

    /// The next `open` and `close` tags after a block's start, searched outside JSON strings; the
    /// plain text search when no `close` is found that way (a block whose quotes do not pair).
    private static func tagsAfterBlockStart(
        in text: String, from: String.Index, open: String, close: String
    ) -> (open: Range<String.Index>?, close: Range<String.Index>?) {
        let openBytes = Array(open.utf8), closeBytes = Array(close.utf8)
        let utf8 = text.utf8
        var index = from
        var inString = false, escaped = false
        var nextOpen: Range<String.Index>?
        func starts(_ tag: [UInt8], at i: String.Index) -> Bool {
            utf8[i...].starts(with: tag)
        }
        while index < utf8.endIndex {
            let byte = utf8[index]
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            } else if byte == UInt8(ascii: "<") {
                if nextOpen == nil, starts(openBytes, at: index) {
                    nextOpen = index..<utf8.index(index, offsetBy: openBytes.count)
                }
                if starts(closeBytes, at: index) {
                    return (nextOpen, index..<utf8.index(index, offsetBy: closeBytes.count))
                }
            }
            index = utf8.index(after: index)
        }
        return (text.range(of: open, range: from..<text.endIndex), text.range(of: close, range: from..<text.endIndex))
    }

    private static func parseBlock(
        _ content: Substring, block: Int, catalogue: ToolCatalogue?, into diagnostics: inout [ActionDiagnostic]
    ) -> ToolCall? {
        func report(_ kind: ActionDiagnostic.Kind, _ severity: ActionDiagnostic.Severity, _ message: String) {
            diagnostics.append(ActionDiagnostic(kind: kind, severity: severity, block: block, message: message))
        }
        guard content.contains(where: { !$0.isWhitespace }) else {
            report(.emptyBlock, .error, "the block is empty")
            return nil
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(String(content))
        } catch let error as JSONParseError {
            report(.invalidJSON(offset: error.offset), .error,
                   "invalid JSON at offset \(error.offset) of the block: expected \(error.expected), found \(error.found)")
            return nil
        } catch {
            report(.invalidJSON(offset: 0), .error, "invalid JSON: \(error)")
            return nil
        }
        guard case .object(let object) = value else {
            report(.notAnObject, .error, "expected a JSON object {\"name\": …, \"arguments\": {…}}, found \(value.kindWithArticle)")
            return nil
        }
        guard let nameValue = object["name"] else {
            report(.missingName, .error, "the object has no \"name\" (keys: \(object.keys.map { "\"\($0)\"" }.joined(separator: ", ")))")
            return nil
        }
        guard case .string(let name) = nameValue, !name.isEmpty else {
            report(.nameNotString, .error, "\"name\" must be a non-empty string, found \(nameValue.serialized(asciiOnly: false))")
            return nil
        }
        var arguments = JSONValue.object(JSONObject())
        switch object["arguments"] {
        case nil:
            report(.missingArguments, .warning, "the call of \(name) has no \"arguments\"; treated as {}")
        case .object?:
            arguments = object["arguments"]!
        case .string(let inner)?:
            do {
                let decoded = try JSONValue.parse(inner)
                guard case .object = decoded else {
                    report(.argumentsNotObject, .error,
                           "\"arguments\" of \(name) is a string holding a JSON \(decoded.kindName), not an object")
                    return nil
                }
                arguments = decoded
                report(.argumentsAsString, .warning, "\"arguments\" of \(name) is a JSON string holding an object; decoded")
            } catch {
                report(.argumentsNotObject, .error, "\"arguments\" of \(name) is a string that is not a JSON object (\(error))")
                return nil
            }
        case let other?:
            report(.argumentsNotObject, .error, "\"arguments\" of \(name) must be an object, found \(other.kindWithArticle)")
            return nil
        }
        for key in object.keys where key != "name" && key != "arguments" {
            report(.unexpectedKey(key), .warning, "unexpected member \"\(key)\" ignored")
        }
        if let catalogue, !catalogue.contains(name) {
            report(.unknownTool(name), .error, "\(name) is not in the tool catalogue")
        }
        return ToolCall(name: name, arguments: arguments)
    }
}
