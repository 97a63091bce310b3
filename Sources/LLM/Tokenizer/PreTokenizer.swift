// Owns the pre-tokenizers: hand-written scanners equivalent to the GPT-2, Llama-3, Qwen2 and
// SmolLM split regexes, over Unicode scalars.

/// Which split rule cuts text into words before byte-level BPE.
public enum PreTokenizerKind: Sendable, Equatable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// The Llama-3 rule with single digits (`\p{N}` instead of `\p{N}{1,3}`).
    case qwen2
    /// Every `\p{N}` scalar on its own, then the GPT-2 rule on the remaining pieces.
    case smollm
}

extension PreTokenizerKind {
    /// The split regexes as Hugging Face `tokenizer.json` spells them in a `Split` pre-tokenizer.
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The kind whose regex is exactly `pattern`, if any.
    static func matching(pattern: String) -> PreTokenizerKind? {
        switch pattern {
        case gpt2Pattern: return .gpt2
        case llama3Pattern: return .llama3
        case qwen2Pattern: return .qwen2
        default: return nil
        }
    }
}

/// The regex character classes the scanners need: `\p{L}`, `\p{N}`, `\s`, and everything else.
enum ScalarClass: UInt8 {
    case letter, number, space, other

    private static let ascii: [ScalarClass] = (0..<128).map { classify(Unicode.Scalar(UInt8($0))) }

    /// `\p{L}` is Lu/Ll/Lt/Lm/Lo, `\p{N}` is Nd/Nl/No, `\s` is the White_Space property.
    static func of(_ scalar: Unicode.Scalar) -> ScalarClass {
        scalar.value < 128 ? ascii[Int(scalar.value)] : classify(scalar)
    }

    private static func classify(_ scalar: Unicode.Scalar) -> ScalarClass {
        let properties = scalar.properties
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return properties.isWhitespace ? .space : .other
        }
    }
}

/// Splits text (as Unicode scalars) into the words that BPE merges independently.
struct PreTokenizer: Sendable {
    let kind: PreTokenizerKind

    /// The word boundaries of `scalars[range]`, as consecutive ranges covering all of it.
    func split(_ scalars: [Unicode.Scalar], _ range: Range<Int>) -> [Range<Int>] {
        let classes = scalars[range].map(ScalarClass.of)
        var scanner = Scanner(scalars: scalars, classes: classes, base: range.lowerBound)
        switch kind {
        case .gpt2:
            scanner.gpt2(0..<classes.count)
        case .llama3:
            scanner.llama3(0..<classes.count, maxDigits: 3)
        case .qwen2:
            scanner.llama3(0..<classes.count, maxDigits: 1)
        case .smollm:
            var start = 0
            for i in 0..<classes.count where classes[i] == .number {
                if start < i { scanner.gpt2(start..<i) }
                scanner.emit(i, i + 1)
                start = i + 1
            }
            if start < classes.count { scanner.gpt2(start..<classes.count) }
        }
        return scanner.words
    }
}

/// One pass of a split rule; indices are relative to `base` in `scalars` and index `classes` directly.
private struct Scanner {
    let scalars: [Unicode.Scalar]
    let classes: [ScalarClass]
    let base: Int
    var words: [Range<Int>] = []

    init(scalars: [Unicode.Scalar], classes: [ScalarClass], base: Int) {
        self.scalars = scalars
        self.classes = classes
        self.base = base
    }

    mutating func emit(_ start: Int, _ end: Int) {
        words.append((base + start)..<(base + end))
    }

    func scalar(_ i: Int) -> UInt32 { scalars[base + i].value }

    /// End of the run of `cls` starting at `i` (exclusive), bounded by `end`.
    func run(_ cls: ScalarClass, from i: Int, to end: Int) -> Int {
        var j = i
        while j < end && classes[j] == cls { j += 1 }
        return j
    }

    /// Length of a contraction (`'s 't 're 've 'm 'll 'd`) at `i`, or 0.
    func contraction(at i: Int, end: Int, ignoringCase: Bool) -> Int {
        guard scalar(i) == 0x27, i + 1 < end else { return 0 }
        func lower(_ k: Int) -> UInt32 {
            let v = scalar(k)
            return ignoringCase && (0x41...0x5A).contains(v) ? v + 0x20 : v
        }
        let c1 = lower(i + 1)
        switch c1 {
        case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
        default: break
        }
        guard i + 2 < end else { return 0 }
        let c2 = lower(i + 2)
        switch (c1, c2) {
        case (0x72, 0x65), (0x76, 0x65), (0x6C, 0x6C): return 3  // re ve ll
        default: return 0
        }
    }

    /// `\s+(?!\S)|\s+` at a whitespace scalar `i`: a run followed by a non-space gives back its
    /// last scalar, unless the run is a single scalar.
    func whitespaceEnd(from i: Int, end: Int) -> Int {
        let j = run(.space, from: i, to: end)
        if j == end || j - i == 1 { return j }
        return j - 1
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    mutating func gpt2(_ range: Range<Int>) {
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let start = i
            let length = contraction(at: i, end: end, ignoringCase: false)
            if length > 0 {
                i += length
            } else {
                var cls = classes[i]
                var j = i
                if scalar(i) == 0x20, i + 1 < end, classes[i + 1] != .space {
                    cls = classes[i + 1]
                    j = i + 1
                }
                i = cls == .space ? whitespaceEnd(from: i, end: end) : run(cls, from: j, to: end)
            }
            emit(start, i)
        }
    }

    /// The Llama-3 rule (Qwen2 when `maxDigits` is 1).
    mutating func llama3(_ range: Range<Int>, maxDigits: Int) {
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let start = i
            let cls = classes[i]
            let isLineBreak = scalar(i) == 0x0A || scalar(i) == 0x0D
            let length = contraction(at: i, end: end, ignoringCase: true)
            if length > 0 {
                i += length
            } else if cls == .letter {
                // [^\r\n\p{L}\p{N}]?\p{L}+ without the optional prefix.
                i = run(.letter, from: i, to: end)
            } else if cls != .number, !isLineBreak, i + 1 < end, classes[i + 1] == .letter {
                // [^\r\n\p{L}\p{N}]?\p{L}+ with one prefix scalar.
                i = run(.letter, from: i + 1, to: end)
            } else if cls == .number {
                // \p{N}{1,maxDigits}
                i = min(run(.number, from: i, to: end), i + maxDigits)
            } else if cls == .other || (scalar(i) == 0x20 && i + 1 < end && classes[i + 1] == .other) {
                // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
                i = run(.other, from: cls == .other ? i : i + 1, to: end)
                while i < end && (scalar(i) == 0x0A || scalar(i) == 0x0D) { i += 1 }
            } else {
                // cls == .space: \s*[\r\n]+ ends after the run's last line break; else \s+(?!\S)|\s+.
                let j = run(.space, from: i, to: end)
                var lastBreak = -1
                for k in i..<j where scalar(k) == 0x0A || scalar(k) == 0x0D { lastBreak = k }
                i = lastBreak >= 0 ? lastBreak + 1 : whitespaceEnd(from: i, end: end)
            }
            emit(start, i)
        }
    }
}
