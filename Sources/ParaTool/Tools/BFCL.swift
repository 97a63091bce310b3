// Owns the Berkeley Function-Calling Leaderboard file formats: questions (BFCLQuestion: chat turns
// and candidate functions) and gold answers (BFCLAnswer: acceptable values per parameter), with
// the conversion of a gold answer to concrete ToolCalls.
import Foundation
import LLM

/// One line of a BFCL question file (`BFCL_v4_<category>.json`).
public struct BFCLQuestion: Sendable, Equatable {
    /// The question id, e.g. `parallel_0`.
    public var id: String
    /// The turns; each turn is a list of chat messages (single-turn categories have one).
    public var turns: [[ChatMessage]]
    /// The candidate tools (`function`), in file order.
    public var functions: [ToolSpec]

    /// A question.
    public init(id: String, turns: [[ChatMessage]], functions: [ToolSpec]) {
        self.id = id
        self.turns = turns
        self.functions = functions
    }

    /// Parses one line.
    /// - Throws: `JSONParseError` or `ToolFormatError` naming the bad member.
    public init(line: String) throws {
        let value = try JSONValue.parse(line)
        guard case .string(let id)? = value["id"] else {
            throw ToolFormatError("a BFCL question needs a string \"id\"")
        }
        guard case .array(let turnValues)? = value["question"] else {
            throw ToolFormatError("BFCL question \(id): \"question\" must be a list of turns")
        }
        var turns: [[ChatMessage]] = []
        for (t, turnValue) in turnValues.enumerated() {
            guard case .array(let messages) = turnValue else {
                throw ToolFormatError("BFCL question \(id): turn \(t) must be a list of messages, found \(turnValue.kindWithArticle)")
            }
            turns.append(try messages.enumerated().map { m, message in
                guard case .string(let role)? = message["role"], case .string(let content)? = message["content"] else {
                    throw ToolFormatError("BFCL question \(id): turn \(t) message \(m) needs string \"role\" and \"content\"")
                }
                return ChatMessage(role: role, content: content)
            })
        }
        guard case .array(let functionValues)? = value["function"] else {
            throw ToolFormatError("BFCL question \(id): \"function\" must be a list of tools")
        }
        let functions = try functionValues.enumerated().map { i, f in
            do {
                return try ToolSpec(json: f)
            } catch let error as ToolFormatError {
                throw ToolFormatError("BFCL question \(id): function \(i): \(error.message)")
            }
        }
        self.init(id: id, turns: turns, functions: functions)
    }

    /// Every question of a JSON Lines file, in order.
    /// - Throws: the first line's error, prefixed with the path and line number.
    public static func load(file: URL) throws -> [BFCLQuestion] {
        try BFCLFile.lines(of: file).map { number, line in
            do {
                return try BFCLQuestion(line: line)
            } catch {
                throw ToolFormatError("\(file.path) line \(number): \(error)")
            }
        }
    }
}

/// One line of a BFCL gold-answer file (`possible_answer/BFCL_v4_<category>.json`).
public struct BFCLAnswer: Sendable, Equatable {
    /// One gold call: the function and, per parameter, the acceptable values.
    public struct Call: Sendable, Equatable {
        /// The function name.
        public var name: String
        /// The parameters in file order, each with its acceptable values; `""` among them means
        /// the parameter may be omitted.
        public var parameters: [Parameter]

        /// A gold call.
        public init(name: String, parameters: [Parameter]) {
            self.name = name
            self.parameters = parameters
        }
    }

    /// One parameter of a gold call.
    public struct Parameter: Sendable, Equatable {
        /// The parameter name.
        public var name: String
        /// The acceptable values, in file order.
        public var acceptable: [JSONValue]

        /// A parameter with its acceptable values.
        public init(name: String, acceptable: [JSONValue]) {
            self.name = name
            self.acceptable = acceptable
        }
    }

    /// The question id this answers.
    public var id: String
    /// The gold calls (`ground_truth`), in file order; for parallel categories any order of
    /// calls is correct.
    public var groundTruth: [Call]

    /// A gold answer.
    public init(id: String, groundTruth: [Call]) {
        self.id = id
        self.groundTruth = groundTruth
    }

    /// Parses one line `{"id": …, "ground_truth": [{fname: {param: [values…]}}…]}`.
    /// - Throws: `JSONParseError` or `ToolFormatError` naming the bad member.
    public init(line: String) throws {
        let value = try JSONValue.parse(line)
        guard case .string(let id)? = value["id"] else {
            throw ToolFormatError("a BFCL answer needs a string \"id\"")
        }
        guard case .array(let callValues)? = value["ground_truth"] else {
            throw ToolFormatError("BFCL answer \(id): \"ground_truth\" must be a list of calls")
        }
        let calls = try callValues.enumerated().map { i, callValue in
            guard case .object(let call) = callValue, call.count == 1, let member = call.members.first else {
                throw ToolFormatError("BFCL answer \(id): call \(i) must be an object with exactly one function name")
            }
            let name = member.key, paramsValue = member.value
            guard case .object(let params) = paramsValue else {
                throw ToolFormatError("BFCL answer \(id): call \(i) (\(name)) must map parameters to lists, found \(paramsValue.kindWithArticle)")
            }
            return Call(name: name, parameters: try params.map { param, acceptable in
                guard case .array(let values) = acceptable else {
                    throw ToolFormatError("BFCL answer \(id): \(name).\(param) must be a list of acceptable values, found \(acceptable.kindWithArticle)")
                }
                return Parameter(name: param, acceptable: values)
            })
        }
        self.init(id: id, groundTruth: calls)
    }

    /// Every answer of a JSON Lines file, in order.
    /// - Throws: the first line's error, prefixed with the path and line number.
    public static func load(file: URL) throws -> [BFCLAnswer] {
        try BFCLFile.lines(of: file).map { number, line in
            do {
                return try BFCLAnswer(line: line)
            } catch {
                throw ToolFormatError("\(file.path) line \(number): \(error)")
            }
        }
    }

    /// One concrete call per gold call: each parameter takes its first acceptable value; a
    /// parameter whose first acceptable value is `""` (optional) or that has no acceptable value
    /// is omitted, unless `functions` declares it required: then it takes its first value other
    /// than `""`. A parameter the function does not declare is omitted (BFCL accepts it only
    /// when absent). A dict value (or a list of dicts) holds acceptable values per key, so each key
    /// likewise takes its first one (keys marked `""` first are omitted). Argument order follows
    /// the file.
    public func firstAcceptableCall(functions: [ToolSpec] = []) -> [ToolCall] {
        groundTruth.map { call in
            let spec = functions.first { $0.name == call.name }
            let required = Set(spec?.requiredParameters ?? [])
            var arguments = JSONObject()
            for parameter in call.parameters {
                if let spec, !spec.parameterNames.contains(parameter.name) { continue }
                let values = required.contains(parameter.name) ? parameter.acceptable.filter { $0 != .string("") } : parameter.acceptable
                guard let first = values.first, first != .string("") else { continue }
                arguments[parameter.name] = Self.concrete(first)
            }
            return ToolCall(name: call.name, arguments: .object(arguments))
        }
    }

    /// An acceptable value made concrete: a dict's keys (one level, as BFCL's checker reads them)
    /// take their first acceptable value, also inside a list of dicts; other values are kept.
    static func concrete(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let gold):
            var out = JSONObject()
            for (key, options) in gold {
                guard case .array(let values) = options else { out[key] = options; continue }
                if let first = values.first, first != .string("") { out[key] = first }
            }
            return .object(out)
        case .array(let items) where !items.isEmpty && items.allSatisfy({ $0.objectValue != nil }):
            return .array(items.map(concrete))
        default:
            return value
        }
    }
}

/// Reading JSON Lines files.
enum BFCLFile {
    /// The non-blank lines of `file` with their 1-based line numbers.
    static func lines(of file: URL) throws -> [(Int, String)] {
        let data = try Data(contentsOf: file)
        guard let text = String(data: data, encoding: .utf8) else {
            throw ToolFormatError("\(file.path): not UTF-8 text")
        }
        return text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            .filter { $0.element.contains { !$0.isWhitespace } }
            .map { ($0.offset + 1, String($0.element)) }
    }
}
