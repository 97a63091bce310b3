// Owns chat-template rendering: ChatMessage, ChatTemplate and the evaluator of the Jinja subset
// (text, {{ }}, for/if/set, and the operators, filters and methods chat templates use).
import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    /// `system`, `user`, `assistant` or `tool`.
    public var role: String
    /// The turn's text.
    public var content: String

    /// A message with `role` and `content`.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A model's Jinja chat template, parsed once and rendered like Hugging Face
/// `apply_chat_template` (trim_blocks and lstrip_blocks on).
///
/// Supported: text, `{{ }}`, `{% for %}` (with `loop.first/last/index/index0/length/revindex`,
/// tuple targets, `else`), `{% if/elif/else %}`, `{% set name = … %}`, `{# #}`, `-` whitespace
/// control; `and or not in is`, comparisons, `+ - * / // % ~`, conditional expressions, literals,
/// `x['k']`, `x.k`, slices; filters `trim length count upper lower string first last join default
/// capitalize`; tests `defined undefined none string number integer mapping sequence iterable
/// true false`; methods `strip lstrip rstrip upper lower startswith endswith split replace title
/// items keys values get`; and `raise_exception(msg)`. Anything else throws a `TokenizerError`
/// naming it.
public struct ChatTemplate: Sendable {
    private let nodes: [JinjaNode]
    private let bosToken: String?
    private let eosToken: String?

    /// Parses `source`.
    /// - Parameters:
    ///   - bosToken: the value of `bos_token` in the template (undefined when nil).
    ///   - eosToken: the value of `eos_token` in the template (undefined when nil).
    /// - Throws: `TokenizerError` naming unsupported or malformed syntax.
    public init(source: String, bosToken: String? = nil, eosToken: String? = nil) throws {
        nodes = try JinjaParser.parse(source)
        self.bosToken = bosToken
        self.eosToken = eosToken
    }

    /// The prompt text for `messages`; with `addGenerationPrompt` the template's opening of an
    /// assistant turn is appended.
    /// - Throws: `TokenizerError` for a runtime error (type mismatch, `raise_exception`, use of an
    ///   undefined value's member).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        var globals: [String: JinjaValue] = [
            "messages": .list(messages.map { .dictionary(["role", "content"], ["role": .string($0.role), "content": .string($0.content)]) }),
            "add_generation_prompt": .bool(addGenerationPrompt),
        ]
        if let bosToken { globals["bos_token"] = .string(bosToken) }
        if let eosToken { globals["eos_token"] = .string(eosToken) }
        var interpreter = JinjaInterpreter(scopes: [globals])
        try interpreter.run(nodes)
        return interpreter.output
    }
}

/// Walks the syntax tree, appending to `output`.
private struct JinjaInterpreter {
    var scopes: [[String: JinjaValue]]
    var output = ""

    private static func fail(_ message: String) -> TokenizerError { TokenizerError("chat template: \(message)") }

    mutating func run(_ nodes: [JinjaNode]) throws {
        for node in nodes {
            switch node {
            case .text(let text):
                output += text
            case .output(let expr):
                output += Self.string(try evaluate(expr))
            case .assign(let name, let expr):
                let value = try evaluate(expr)
                scopes[scopes.count - 1][name] = value
            case .conditional(let branches, let otherwise):
                var taken = false
                for (condition, body) in branches where try Self.truthy(evaluate(condition)) {
                    try run(body)
                    taken = true
                    break
                }
                if !taken { try run(otherwise) }
            case .forLoop(let targets, let iterable, let body, let otherwise):
                let items = try Self.iterate(evaluate(iterable))
                if items.isEmpty {
                    try run(otherwise)
                    continue
                }
                for (i, item) in items.enumerated() {
                    var scope: [String: JinjaValue] = [:]
                    if targets.count == 1 {
                        scope[targets[0]] = item
                    } else {
                        guard case .list(let parts) = item, parts.count == targets.count else {
                            throw Self.fail("cannot unpack \(Self.string(item)) into \(targets.count) loop variables")
                        }
                        for (name, part) in zip(targets, parts) { scope[name] = part }
                    }
                    scope["loop"] = .dictionary(
                        ["index", "index0", "first", "last", "length", "revindex", "revindex0"],
                        ["index": .integer(i + 1), "index0": .integer(i), "first": .bool(i == 0),
                         "last": .bool(i == items.count - 1), "length": .integer(items.count),
                         "revindex": .integer(items.count - i), "revindex0": .integer(items.count - i - 1)])
                    scopes.append(scope)
                    defer { scopes.removeLast() }
                    try run(body)
                }
            }
        }
    }

    private func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() {
            if let value = scope[name] { return value }
        }
        return .undefined
    }

    private mutating func evaluate(_ expr: JinjaExpr) throws -> JinjaValue {
        switch expr {
        case .literal(let value):
            return value
        case .variable(let name):
            return lookup(name)
        case .list(let items):
            return .list(try items.map { try evaluate($0) })
        case .dictionary(let pairs):
            var keys: [String] = []
            var values: [String: JinjaValue] = [:]
            for (keyExpr, valueExpr) in pairs {
                guard case .string(let key) = try evaluate(keyExpr) else { throw Self.fail("dictionary keys must be strings") }
                if values[key] == nil { keys.append(key) }
                values[key] = try evaluate(valueExpr)
            }
            return .dictionary(keys, values)
        case .attribute(let base, let name):
            return try Self.member(try evaluate(base), .string(name), describe: ".\(name)")
        case .subscripted(let base, let key):
            let k = try evaluate(key)
            return try Self.member(try evaluate(base), k, describe: "[\(Self.repr(k))]")
        case .slice(let base, let lower, let upper):
            return try Self.slice(try evaluate(base), try lower.map { try evaluate($0) }, try upper.map { try evaluate($0) })
        case .call(let callee, let argExprs):
            let args = try argExprs.map { try evaluate($0) }
            if case .attribute(let objectExpr, let method) = callee {
                return try Self.method(try evaluate(objectExpr), method, args)
            }
            if case .variable(let function) = callee {
                return try Self.function(function, args)
            }
            throw Self.fail("unsupported call")
        case .filter(let base, let name, let argExprs):
            return try Self.filter(try evaluate(base), name, try argExprs.map { try evaluate($0) })
        case .test(let base, let name, let negated):
            return .bool(try Self.test(try evaluate(base), name) != negated)
        case .negate(let inner):
            switch try evaluate(inner) {
            case .integer(let i): return .integer(try Self.integerArithmetic("-", 0, i))
            case .number(let d): return .number(-d)
            case let other: throw Self.fail("cannot negate \(Self.repr(other))")
            }
        case .not(let inner):
            return .bool(!Self.truthy(try evaluate(inner)))
        case .and(let left, let right):
            let l = try evaluate(left)
            return Self.truthy(l) ? try evaluate(right) : l
        case .or(let left, let right):
            let l = try evaluate(left)
            return Self.truthy(l) ? l : try evaluate(right)
        case .binary(let op, let left, let right):
            return try Self.binary(op, try evaluate(left), try evaluate(right))
        case .conditional(let condition, let value, let otherwise):
            if Self.truthy(try evaluate(condition)) { return try evaluate(value) }
            return try otherwise.map { try evaluate($0) } ?? .undefined
        }
    }

    // MARK: Values

    static func truthy(_ value: JinjaValue) -> Bool {
        switch value {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .integer(let i): return i != 0
        case .number(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let l): return !l.isEmpty
        case .dictionary(let keys, _): return !keys.isEmpty
        }
    }

    /// `{{ value }}` output, as Python's `str`.
    static func string(_ value: JinjaValue) -> String {
        switch value {
        case .undefined: return ""
        case .string(let s): return s
        default: return repr(value)
        }
    }

    /// Python's `repr`.
    static func repr(_ value: JinjaValue) -> String {
        switch value {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .integer(let i): return String(i)
        case .number(let d): return "\(d)"
        case .string(let s):
            return "'" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
                .replacingOccurrences(of: "\n", with: "\\n") + "'"
        case .list(let items): return "[" + items.map(repr).joined(separator: ", ") + "]"
        case .dictionary(let keys, let values):
            return "{" + keys.map { "'\($0)': " + repr(values[$0]!) }.joined(separator: ", ") + "}"
        }
    }

    private static func iterate(_ value: JinjaValue) throws -> [JinjaValue] {
        switch value {
        case .list(let items): return items
        case .dictionary(let keys, _): return keys.map { .string($0) }
        case .string(let s): return s.map { .string(String($0)) }
        case .undefined: return []
        default: throw fail("\(repr(value)) is not iterable")
        }
    }

    private static func member(_ base: JinjaValue, _ key: JinjaValue, describe: String) throws -> JinjaValue {
        switch (base, key) {
        case (.dictionary(_, let values), .string(let k)):
            return values[k] ?? .undefined
        case (.list(let items), .integer(let i)):
            let index = i < 0 ? items.count + i : i
            return items.indices.contains(index) ? items[index] : .undefined
        case (.string(let s), .integer(let i)):
            let chars = Array(s)
            let index = i < 0 ? chars.count + i : i
            return chars.indices.contains(index) ? .string(String(chars[index])) : .undefined
        case (.undefined, _):
            throw fail("undefined value has no member \(describe)")
        default:
            return .undefined
        }
    }

    private static func slice(_ base: JinjaValue, _ lower: JinjaValue?, _ upper: JinjaValue?) throws -> JinjaValue {
        func bound(_ value: JinjaValue?, _ count: Int, _ fallback: Int) throws -> Int {
            guard let value, value != .none else { return fallback }
            guard case .integer(let i) = value else { throw fail("slice bounds must be integers") }
            return max(0, min(count, i < 0 ? count + i : i))
        }
        switch base {
        case .list(let items):
            let lo = try bound(lower, items.count, 0), hi = try bound(upper, items.count, items.count)
            return .list(lo < hi ? Array(items[lo..<hi]) : [])
        case .string(let s):
            let chars = Array(s)
            let lo = try bound(lower, chars.count, 0), hi = try bound(upper, chars.count, chars.count)
            return .string(lo < hi ? String(chars[lo..<hi]) : "")
        default:
            throw fail("cannot slice \(repr(base))")
        }
    }

    private static func number(_ value: JinjaValue) -> Double? {
        switch value {
        case .integer(let i): return Double(i)
        case .number(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    private static func equal(_ a: JinjaValue, _ b: JinjaValue) -> Bool {
        if let x = number(a), let y = number(b) { return x == y }
        return a == b
    }

    private static func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        switch op {
        case "==": return .bool(equal(a, b))
        case "!=": return .bool(!equal(a, b))
        case "~": return .string(string(a) + string(b))
        case "in":
            switch b {
            case .string(let s):
                guard case .string(let needle) = a else { throw fail("'in <string>' needs a string on the left") }
                return .bool(s.contains(needle))
            case .list(let items): return .bool(items.contains { equal($0, a) })
            case .dictionary(_, let values):
                guard case .string(let key) = a else { return .bool(false) }
                return .bool(values[key] != nil)
            case .undefined: throw fail("'in' on an undefined value")
            default: throw fail("'in' needs a string, list or mapping on the right, not \(repr(b))")
            }
        case "<", ">", "<=", ">=":
            let ordered: Bool
            if case .string(let x) = a, case .string(let y) = b {
                ordered = op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y
            } else if let x = number(a), let y = number(b) {
                ordered = op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y
            } else {
                throw fail("cannot compare \(repr(a)) \(op) \(repr(b))")
            }
            return .bool(ordered)
        case "+":
            switch (a, b) {
            case (.string(let x), .string(let y)): return .string(x + y)
            case (.list(let x), .list(let y)): return .list(x + y)
            case (.integer(let x), .integer(let y)): return .integer(try integerArithmetic("+", x, y))
            default:
                if let x = number(a), let y = number(b), !isString(a), !isString(b) { return .number(x + y) }
                throw fail("cannot add \(repr(a)) and \(repr(b))")
            }
        default:
            if case .integer(let x) = a, case .integer(let y) = b, op != "/" {
                return .integer(try integerArithmetic(op, x, y))
            }
            if op == "*", case .string(let s) = a, case .integer(let n) = b { return .string(String(repeating: s, count: max(0, n))) }
            guard let x = number(a), let y = number(b) else { throw fail("unsupported operands for \(op): \(repr(a)), \(repr(b))") }
            switch op {
            case "-": return .number(x - y)
            case "*": return .number(x * y)
            case "/":
                guard y != 0 else { throw fail("division by zero") }
                return .number(x / y)
            default: throw fail("unsupported operator \(op)")
            }
        }
    }

    /// `+ - * // %` on integers, Python-style floor division; overflow throws instead of trapping.
    private static func integerArithmetic(_ op: String, _ x: Int, _ y: Int) throws -> Int {
        let result: (partialValue: Int, overflow: Bool)
        switch op {
        case "+": result = x.addingReportingOverflow(y)
        case "-": result = x.subtractingReportingOverflow(y)
        case "*": result = x.multipliedReportingOverflow(by: y)
        case "//", "%":
            guard y != 0 else { throw fail("division by zero") }
            let quotient = x.dividedReportingOverflow(by: y)
            guard !quotient.overflow else { throw fail("integer overflow in \(x) \(op) \(y)") }
            var q = quotient.partialValue
            if x % y != 0 && ((x < 0) != (y < 0)) { q -= 1 }
            return op == "//" ? q : x - q * y
        default: throw fail("unsupported operator \(op)")
        }
        guard !result.overflow else { throw fail("integer overflow in \(x) \(op) \(y)") }
        return result.partialValue
    }

    private static func isString(_ value: JinjaValue) -> Bool {
        if case .string = value { return true }
        return false
    }

    // MARK: Filters, tests, methods, functions

    private static func filter(_ value: JinjaValue, _ name: String, _ args: [JinjaValue]) throws -> JinjaValue {
        switch (name, value) {
        case ("trim", .string(let s)): return .string(s.trimmingWhitespace())
        case ("upper", .string(let s)): return .string(s.uppercased())
        case ("lower", .string(let s)): return .string(s.lowercased())
        case ("capitalize", .string(let s)): return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case ("string", _): return .string(string(value))
        case ("length", _), ("count", _):
            switch value {
            case .string(let s): return .integer(s.count)
            case .list(let l): return .integer(l.count)
            case .dictionary(let keys, _): return .integer(keys.count)
            default: throw fail("\(repr(value)) has no length")
            }
        case ("first", .list(let l)): return l.first ?? .undefined
        case ("last", .list(let l)): return l.last ?? .undefined
        case ("join", .list(let l)):
            let separator = args.first.map(string) ?? ""
            return .string(l.map(string).joined(separator: separator))
        case ("default", _), ("d", _):
            if case .undefined = value { return args.first ?? .string("") }
            return value
        default:
            throw fail("unsupported filter \(name) on \(repr(value))")
        }
    }

    private static func test(_ value: JinjaValue, _ name: String) throws -> Bool {
        switch name {
        case "defined": if case .undefined = value { return false } else { return true }
        case "undefined": if case .undefined = value { return true } else { return false }
        case "none": return value == .none
        case "true": return value == .bool(true)
        case "false": return value == .bool(false)
        case "string": return isString(value)
        case "number":
            switch value {
            case .integer, .number: return true
            default: return false
            }
        case "integer": if case .integer = value { return true } else { return false }
        case "mapping": if case .dictionary = value { return true } else { return false }
        case "sequence", "iterable":
            switch value {
            case .list, .string, .dictionary: return true
            default: return false
            }
        default: throw fail("unsupported test 'is \(name)'")
        }
    }

    private static func method(_ object: JinjaValue, _ name: String, _ args: [JinjaValue]) throws -> JinjaValue {
        switch (object, name) {
        case (.string(let s), "strip"): return .string(s.trimmingWhitespace())
        case (.string(let s), "lstrip"): return .string(String(s.drop { $0.isWhitespace }))
        case (.string(let s), "rstrip"):
            return .string(String(s.reversed().drop { $0.isWhitespace }.reversed()))
        case (.string(let s), "upper"): return .string(s.uppercased())
        case (.string(let s), "lower"): return .string(s.lowercased())
        case (.string(let s), "title"): return .string(s.capitalized)
        case (.string(let s), "startswith"):
            guard case .string(let p)? = args.first else { throw fail("startswith needs a string") }
            return .bool(s.hasPrefix(p))
        case (.string(let s), "endswith"):
            guard case .string(let p)? = args.first else { throw fail("endswith needs a string") }
            return .bool(s.hasSuffix(p))
        case (.string(let s), "split"):
            if case .string(let separator)? = args.first {
                return .list(s.components(separatedBy: separator).map { .string($0) })
            }
            return .list(s.split(whereSeparator: \.isWhitespace).map { .string(String($0)) })
        case (.string(let s), "replace"):
            guard args.count == 2, case .string(let a) = args[0], case .string(let b) = args[1] else {
                throw fail("replace needs two strings")
            }
            return .string(s.replacingOccurrences(of: a, with: b))
        case (.dictionary(let keys, let values), "items"):
            return .list(keys.map { .list([.string($0), values[$0]!]) })
        case (.dictionary(let keys, _), "keys"): return .list(keys.map { .string($0) })
        case (.dictionary(let keys, let values), "values"): return .list(keys.map { values[$0]! })
        case (.dictionary(_, let values), "get"):
            guard case .string(let key)? = args.first else { throw fail("get needs a string key") }
            return values[key] ?? (args.count > 1 ? args[1] : .none)
        default:
            throw fail("unsupported method \(name)() on \(repr(object))")
        }
    }

    private static func function(_ name: String, _ args: [JinjaValue]) throws -> JinjaValue {
        switch name {
        case "raise_exception":
            throw fail("raise_exception: \(args.first.map(string) ?? "")")
        default:
            throw fail("unsupported function \(name)()")
        }
    }
}

private extension String {
    func trimmingWhitespace() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
