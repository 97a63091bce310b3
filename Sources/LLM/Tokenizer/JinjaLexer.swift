// Owns the lexing half of the chat-template Jinja subset: splitting a template into text and
// tags (with whitespace control, trim_blocks and lstrip_blocks) and tags into tokens.

/// A token inside a `{{ }}` or `{% %}` tag.
enum JinjaToken: Sendable, Equatable {
    case name(String)
    case string(String)
    case integer(Int)
    case number(Double)
    /// Operators and punctuation: `== != <= >= < > + - * / // % ~ ( ) [ ] { } . , : | =`.
    case symbol(String)
}

/// A piece of template source.
enum JinjaPiece: Sendable {
    case text(String)
    case output([JinjaToken])
    case statement([JinjaToken])
}

/// Splits a template as Hugging Face renders it: `jinja2.Environment(trim_blocks=True,
/// lstrip_blocks=True)`, so the first newline after a `%}` is dropped and spaces or tabs before
/// a `{%` that starts its line are dropped; `-` in a tag strips all whitespace on that side.
struct JinjaLexer {
    private let source: [Character]
    private var position = 0

    init(_ source: String) { self.source = Array(source) }

    static func pieces(_ source: String) throws -> [JinjaPiece] {
        var lexer = JinjaLexer(source)
        return try lexer.run()
    }

    private func starts(with text: String, at index: Int) -> Bool {
        var i = index
        for ch in text {
            guard i < source.count, source[i] == ch else { return false }
            i += 1
        }
        return true
    }

    private mutating func run() throws -> [JinjaPiece] {
        var pieces: [JinjaPiece] = []
        var text = ""
        var trimNextText = false
        var trimNewline = false
        while position < source.count {
            let isTag = source[position] == "{" && position + 1 < source.count && "{%#".contains(source[position + 1])
            if !isTag {
                text.append(source[position])
                position += 1
                continue
            }
            let kind = source[position + 1]
            position += 2
            var leftModifier: Character?
            if position < source.count, source[position] == "-" || source[position] == "+" {
                leftModifier = source[position]
                position += 1
            }
            if leftModifier == "-" {
                while let last = text.last, last.isWhitespace { text.removeLast() }
            } else if leftModifier == nil, kind != "{" {
                // lstrip_blocks: drop spaces and tabs between the line start and the tag.
                let kept = text.reversed().drop { $0 == " " || $0 == "\t" }
                if kept.first?.isNewline ?? true {
                    text = String(kept.reversed())
                }
            }
            pieces.append(.text(Self.finish(text, trimLeading: trimNextText, trimNewline: trimNewline)))
            text = ""
            let closer: String = kind == "{" ? "}}" : kind == "%" ? "%}" : "#}"
            var rightModifier: Character?
            if kind == "#" {
                while position < source.count, !starts(with: closer, at: position) { position += 1 }
                guard position < source.count else { throw TokenizerError("chat template: unclosed comment") }
                if let prev = source.indices.contains(position - 1) ? source[position - 1] : nil, prev == "-" {
                    rightModifier = "-"
                }
                position += 2
            } else {
                let (tokens, modifier) = try tagTokens(closer: closer)
                rightModifier = modifier
                pieces.append(kind == "{" ? .output(tokens) : .statement(tokens))
            }
            trimNextText = rightModifier == "-"
            trimNewline = kind != "{" && rightModifier == nil
        }
        pieces.append(.text(Self.finish(text, trimLeading: trimNextText, trimNewline: trimNewline)))
        return pieces.filter { if case .text(let t) = $0 { return !t.isEmpty } else { return true } }
    }

    private static func finish(_ text: String, trimLeading: Bool, trimNewline: Bool) -> String {
        if trimLeading { return String(text.drop { $0.isWhitespace }) }
        if trimNewline, let first = text.first, first == "\n" || first == "\r\n" { return String(text.dropFirst()) }
        return text
    }

    /// Tokens up to the tag's closer; returns the `-`/`+` modifier written before the closer.
    private mutating func tagTokens(closer: String) throws -> ([JinjaToken], Character?) {
        var tokens: [JinjaToken] = []
        while true {
            while position < source.count, source[position].isWhitespace { position += 1 }
            guard position < source.count else { throw TokenizerError("chat template: unclosed tag, expected \(closer)") }
            if starts(with: closer, at: position) {
                position += 2
                return (tokens, nil)
            }
            let ch = source[position]
            if (ch == "-" || ch == "+"), starts(with: closer, at: position + 1) {
                position += 3
                return (tokens, ch)
            }
            if ch == "'" || ch == "\"" {
                tokens.append(.string(try stringLiteral(quote: ch)))
            } else if ch.isNumber, ch.isASCII {
                tokens.append(number())
            } else if ch.isLetter || ch == "_" {
                var name = ""
                while position < source.count, source[position].isLetter || source[position].isNumber || source[position] == "_" {
                    name.append(source[position])
                    position += 1
                }
                tokens.append(.name(name))
            } else {
                let two = position + 1 < source.count ? String([ch, source[position + 1]]) : ""
                if ["==", "!=", "<=", ">=", "//", "**"].contains(two) {
                    tokens.append(.symbol(two))
                    position += 2
                } else if "+-*/%~()[]{}.,:|=<>".contains(ch) {
                    tokens.append(.symbol(String(ch)))
                    position += 1
                } else {
                    throw TokenizerError("chat template: unexpected character \"\(ch)\" in a tag")
                }
            }
        }
    }

    private mutating func number() -> JinjaToken {
        var digits = ""
        while position < source.count, source[position].isASCII, source[position].isNumber || source[position] == "_" {
            if source[position] != "_" { digits.append(source[position]) }
            position += 1
        }
        if position + 1 < source.count, source[position] == ".", source[position + 1].isASCII, source[position + 1].isNumber {
            digits.append(".")
            position += 1
            while position < source.count, source[position].isASCII, source[position].isNumber {
                digits.append(source[position])
                position += 1
            }
            return .number(Double(digits) ?? 0)
        }
        return Int(digits).map(JinjaToken.integer) ?? .number(Double(digits) ?? 0)
    }

    /// A quoted literal with Python escapes (`\n \t \r \\ \' \"`; others kept as written).
    private mutating func stringLiteral(quote: Character) throws -> String {
        position += 1
        var value = ""
        while position < source.count {
            let ch = source[position]
            position += 1
            if ch == quote { return value }
            guard ch == "\\", position < source.count else {
                value.append(ch)
                continue
            }
            let escaped = source[position]
            position += 1
            switch escaped {
            case "n": value.append("\n")
            case "t": value.append("\t")
            case "r": value.append("\r")
            case "\\", "'", "\"": value.append(escaped)
            default:
                value.append("\\")
                value.append(escaped)
            }
        }
        throw TokenizerError("chat template: unterminated string literal")
    }
}
