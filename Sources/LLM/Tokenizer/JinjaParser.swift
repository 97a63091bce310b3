// Owns the parsing half of the chat-template Jinja subset: the syntax tree and a recursive-descent
// parser for statements (for, if, set) and expressions.

/// A Jinja value.
indirect enum JinjaValue: Sendable, Equatable {
    case undefined
    case none
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case list([JinjaValue])
    /// Keys in insertion order.
    case dictionary([String], [String: JinjaValue])
}

indirect enum JinjaExpr: Sendable {
    case literal(JinjaValue)
    case variable(String)
    case list([JinjaExpr])
    case dictionary([(JinjaExpr, JinjaExpr)])
    case attribute(JinjaExpr, String)
    case subscripted(JinjaExpr, JinjaExpr)
    case slice(JinjaExpr, JinjaExpr?, JinjaExpr?)
    case call(JinjaExpr, [JinjaExpr])
    case filter(JinjaExpr, String, [JinjaExpr])
    case test(JinjaExpr, String, negated: Bool)
    case negate(JinjaExpr)
    case not(JinjaExpr)
    case and(JinjaExpr, JinjaExpr)
    case or(JinjaExpr, JinjaExpr)
    case binary(String, JinjaExpr, JinjaExpr)
    case conditional(JinjaExpr, then: JinjaExpr, otherwise: JinjaExpr?)
}

indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr)
    case forLoop(targets: [String], iterable: JinjaExpr, body: [JinjaNode], otherwise: [JinjaNode])
    case conditional(branches: [(JinjaExpr, [JinjaNode])], otherwise: [JinjaNode])
    case assign(String, JinjaExpr)
}

/// Builds the syntax tree; anything outside the subset throws a `TokenizerError` naming it.
struct JinjaParser {
    private var pieces: [JinjaPiece]
    private var index = 0

    static func parse(_ source: String) throws -> [JinjaNode] {
        var parser = JinjaParser(pieces: try JinjaLexer.pieces(source))
        let (nodes, end) = try parser.nodes(until: [])
        if let end { throw TokenizerError("chat template: unexpected {% \(end) %}") }
        return nodes
    }

    private init(pieces: [JinjaPiece]) { self.pieces = pieces }

    /// Nodes up to one of the `until` statements (returned, its tokens consumed), or the end.
    private mutating func nodes(until: Set<String>) throws -> ([JinjaNode], String?) {
        var nodes: [JinjaNode] = []
        while index < pieces.count {
            let piece = pieces[index]
            index += 1
            switch piece {
            case .text(let text):
                nodes.append(.text(text))
            case .output(let tokens):
                var expressions = ExpressionParser(tokens: tokens)
                nodes.append(.output(try expressions.parseAll()))
            case .statement(let tokens):
                guard case .name(let keyword)? = tokens.first else {
                    throw TokenizerError("chat template: empty or malformed {% %} tag")
                }
                if until.contains(keyword) {
                    index -= 1
                    return (nodes, keyword)
                }
                nodes.append(try statement(keyword, Array(tokens.dropFirst())))
            }
        }
        if !until.isEmpty {
            throw TokenizerError("chat template: missing {% \(until.sorted().joined(separator: " or ")) %}")
        }
        return (nodes, nil)
    }

    /// Consumes the closing statement found by `nodes(until:)` and returns its tokens after the keyword.
    private mutating func take() -> [JinjaToken] {
        guard case .statement(let tokens) = pieces[index] else { return [] }
        index += 1
        return Array(tokens.dropFirst())
    }

    private mutating func statement(_ keyword: String, _ tokens: [JinjaToken]) throws -> JinjaNode {
        var expressions = ExpressionParser(tokens: tokens)
        switch keyword {
        case "if":
            var branches: [(JinjaExpr, [JinjaNode])] = []
            var condition = try expressions.parseAll()
            while true {
                let (body, end) = try nodes(until: ["elif", "else", "endif"])
                let rest = take()
                branches.append((condition, body))
                switch end {
                case "elif":
                    var next = ExpressionParser(tokens: rest)
                    condition = try next.parseAll()
                case "else":
                    let (otherwise, _) = try nodes(until: ["endif"])
                    _ = take()
                    return .conditional(branches: branches, otherwise: otherwise)
                default:
                    return .conditional(branches: branches, otherwise: [])
                }
            }
        case "for":
            var targets: [String] = []
            repeat {
                targets.append(try expressions.name())
            } while expressions.skip(.symbol(","))
            try expressions.expect(.name("in"))
            let iterable = try expressions.parseOr()
            if !expressions.atEnd {
                throw TokenizerError("chat template: unsupported syntax after for loop iterable (loop filters and recursive loops)")
            }
            let (body, end) = try nodes(until: ["else", "endfor"])
            _ = take()
            var otherwise: [JinjaNode] = []
            if end == "else" {
                (otherwise, _) = try nodes(until: ["endfor"])
                _ = take()
            }
            return .forLoop(targets: targets, iterable: iterable, body: body, otherwise: otherwise)
        case "set":
            let target = try expressions.name()
            if expressions.skip(.symbol(".")) {
                throw TokenizerError("chat template: unsupported {% set \(target).… %} (namespace attributes)")
            }
            guard expressions.skip(.symbol("=")) else {
                throw TokenizerError("chat template: unsupported block {% set \(target) %} (expected set name = value)")
            }
            return .assign(target, try expressions.parseAll())
        case "elif", "else", "endif", "endfor", "endset":
            throw TokenizerError("chat template: unexpected {% \(keyword) %}")
        default:
            throw TokenizerError("chat template: unsupported tag {% \(keyword) %}")
        }
    }
}

/// Recursive descent over one tag's tokens, in Jinja's precedence order.
struct ExpressionParser {
    private let tokens: [JinjaToken]
    private var index = 0

    init(tokens: [JinjaToken]) { self.tokens = tokens }

    var atEnd: Bool { index >= tokens.count }

    private var peek: JinjaToken? { index < tokens.count ? tokens[index] : nil }

    mutating func skip(_ token: JinjaToken) -> Bool {
        guard peek == token else { return false }
        index += 1
        return true
    }

    mutating func expect(_ token: JinjaToken) throws {
        guard skip(token) else { throw TokenizerError("chat template: expected \(Self.show(token)), found \(found)") }
    }

    mutating func name() throws -> String {
        guard case .name(let name)? = peek else { throw TokenizerError("chat template: expected a name, found \(found)") }
        index += 1
        return name
    }

    private var found: String { peek.map(Self.show) ?? "end of tag" }

    private static func show(_ token: JinjaToken) -> String {
        switch token {
        case .name(let n): return "'\(n)'"
        case .string(let s): return "string '\(s)'"
        case .integer(let i): return "\(i)"
        case .number(let d): return "\(d)"
        case .symbol(let s): return "'\(s)'"
        }
    }

    /// A whole tag: one expression and nothing after it.
    mutating func parseAll() throws -> JinjaExpr {
        let expr = try parseExpression()
        guard atEnd else { throw TokenizerError("chat template: unsupported syntax at \(found)") }
        return expr
    }

    /// `a if cond else b`.
    mutating func parseExpression() throws -> JinjaExpr {
        let value = try parseOr()
        guard skip(.name("if")) else { return value }
        let condition = try parseOr()
        let otherwise = skip(.name("else")) ? try parseExpression() : nil
        return .conditional(condition, then: value, otherwise: otherwise)
    }

    mutating func parseOr() throws -> JinjaExpr {
        var left = try parseAnd()
        while skip(.name("or")) { left = .or(left, try parseAnd()) }
        return left
    }

    private mutating func parseAnd() throws -> JinjaExpr {
        var left = try parseNot()
        while skip(.name("and")) { left = .and(left, try parseNot()) }
        return left
    }

    private mutating func parseNot() throws -> JinjaExpr {
        if skip(.name("not")) { return .not(try parseNot()) }
        return try parseComparison()
    }

    private mutating func parseComparison() throws -> JinjaExpr {
        var left = try parseConcat()
        while true {
            if case .symbol(let op)? = peek, ["==", "!=", "<", ">", "<=", ">="].contains(op) {
                index += 1
                left = .binary(op, left, try parseConcat())
            } else if skip(.name("in")) {
                left = .binary("in", left, try parseConcat())
            } else if peek == .name("not"), index + 1 < tokens.count, tokens[index + 1] == .name("in") {
                index += 2
                left = .not(.binary("in", left, try parseConcat()))
            } else {
                return left
            }
        }
    }

    private mutating func parseConcat() throws -> JinjaExpr {
        var left = try parseAdditive()
        while skip(.symbol("~")) { left = .binary("~", left, try parseAdditive()) }
        return left
    }

    private mutating func parseAdditive() throws -> JinjaExpr {
        var left = try parseMultiplicative()
        while case .symbol(let op)? = peek, op == "+" || op == "-" {
            index += 1
            left = .binary(op, left, try parseMultiplicative())
        }
        return left
    }

    private mutating func parseMultiplicative() throws -> JinjaExpr {
        var left = try parseUnary()
        while case .symbol(let op)? = peek, ["*", "/", "//", "%"].contains(op) {
            index += 1
            left = .binary(op, left, try parseUnary())
        }
        return left
    }

    private mutating func parseUnary() throws -> JinjaExpr {
        if skip(.symbol("-")) { return .negate(try parseUnary()) }
        if skip(.symbol("+")) { return try parseUnary() }
        return try parsePostfix(try parsePrimary())
    }

    private mutating func parsePostfix(_ base: JinjaExpr) throws -> JinjaExpr {
        var expr = base
        while true {
            if skip(.symbol(".")) {
                expr = .attribute(expr, try name())
            } else if skip(.symbol("[")) {
                expr = try parseSubscript(expr)
            } else if skip(.symbol("(")) {
                expr = .call(expr, try arguments())
            } else if skip(.symbol("|")) {
                let filter = try name()
                expr = .filter(expr, filter, skip(.symbol("(")) ? try arguments() : [])
            } else if skip(.name("is")) {
                let negated = skip(.name("not"))
                expr = .test(expr, try name(), negated: negated)
            } else {
                return expr
            }
        }
    }

    private mutating func parseSubscript(_ base: JinjaExpr) throws -> JinjaExpr {
        var lower: JinjaExpr?
        if peek != .symbol(":") { lower = try parseExpression() }
        if skip(.symbol("]")) {
            guard let lower else { throw TokenizerError("chat template: empty subscript") }
            return .subscripted(base, lower)
        }
        try expect(.symbol(":"))
        var upper: JinjaExpr?
        if peek != .symbol("]") && peek != .symbol(":") { upper = try parseExpression() }
        if skip(.symbol(":")) { throw TokenizerError("chat template: unsupported slice step") }
        try expect(.symbol("]"))
        return .slice(base, lower, upper)
    }

    /// Positional arguments up to `)`; keyword arguments are not supported.
    private mutating func arguments() throws -> [JinjaExpr] {
        var args: [JinjaExpr] = []
        while !skip(.symbol(")")) {
            if case .name(let keyword)? = peek, index + 1 < tokens.count, tokens[index + 1] == .symbol("=") {
                throw TokenizerError("chat template: unsupported keyword argument \(keyword)=")
            }
            args.append(try parseExpression())
            if !skip(.symbol(",")) {
                try expect(.symbol(")"))
                break
            }
        }
        return args
    }

    private mutating func parsePrimary() throws -> JinjaExpr {
        guard let token = peek else { throw TokenizerError("chat template: expected a value, found end of tag") }
        index += 1
        switch token {
        case .string(var text):
            while case .string(let more)? = peek {
                text += more
                index += 1
            }
            return .literal(.string(text))
        case .integer(let value): return .literal(.integer(value))
        case .number(let value): return .literal(.number(value))
        case .name(let name):
            switch name {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .variable(name)
            }
        case .symbol("("):
            let inner = try parseExpression()
            if peek == .symbol(",") { throw TokenizerError("chat template: unsupported tuple literal") }
            try expect(.symbol(")"))
            return inner
        case .symbol("["):
            var items: [JinjaExpr] = []
            while !skip(.symbol("]")) {
                items.append(try parseExpression())
                if !skip(.symbol(",")) {
                    try expect(.symbol("]"))
                    break
                }
            }
            return .list(items)
        case .symbol("{"):
            var pairs: [(JinjaExpr, JinjaExpr)] = []
            while !skip(.symbol("}")) {
                let key = try parseExpression()
                try expect(.symbol(":"))
                pairs.append((key, try parseExpression()))
                if !skip(.symbol(",")) {
                    try expect(.symbol("}"))
                    break
                }
            }
            return .dictionary(pairs)
        case .symbol(let s):
            throw TokenizerError("chat template: unexpected '\(s)'")
        }
    }
}
