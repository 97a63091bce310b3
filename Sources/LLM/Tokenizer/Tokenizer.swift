// Owns the Tokenizer type: byte-level BPE encode/decode with special tokens, built from raw
// vocabulary parts (the GGUF path); TokenizerJSON.swift adds the Hugging Face folder path.
import Foundation

/// A tokenizer or chat-template failure, with a message naming what was wrong.
public struct TokenizerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, e.g. `tokenizer.json: unsupported model type "Unigram" (only BPE)`.
    public var message: String

    /// An error with `message`.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

/// A byte-level BPE tokenizer (GPT-2 family: SmolLM, Qwen2, Llama-3).
///
/// Immutable and `Sendable`: one instance can encode from many tasks at once.
public final class Tokenizer: Sendable {
    private let core: TokenizerCore

    /// From raw parts, as stored in GGUF metadata.
    ///
    /// - Parameters:
    ///   - tokens: `tokenizer.ggml.tokens`, vocabulary strings in byte-level spelling.
    ///   - merges: `tokenizer.ggml.merges`, `"left right"` strings in rank order.
    ///   - tokenTypes: `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control,
    ///     4 user-defined, 5 unused, 6 byte). Types 2, 3 and 4 are matched inside text and decode
    ///     to their own text, like llama.cpp with `parse_special`. When nil, the BOS/EOS tokens
    ///     and tokens spelled `<|…|>` are treated that way.
    ///   - preTokenizer: the split rule (see `preTokenizer(ggufName:)`).
    ///   - bosTokenId: `tokenizer.ggml.bos_token_id`.
    ///   - eosTokenId: `tokenizer.ggml.eos_token_id`.
    ///   - chatTemplate: `tokenizer.chat_template`, a Jinja template.
    /// - Throws: `TokenizerError` for a malformed merge line, mismatched `tokenTypes` length, or
    ///   out-of-range BOS/EOS ids. A chat template that does not parse is not fatal: it is
    ///   reported by `chatTemplateError`.
    public init(
        tokens: [String], merges: [String], tokenTypes: [Int32]?, preTokenizer: PreTokenizerKind,
        bosTokenId: Int?, eosTokenId: Int?, chatTemplate: String?
    ) throws {
        if let tokenTypes, tokenTypes.count != tokens.count {
            throw TokenizerError("token_type has \(tokenTypes.count) entries but there are \(tokens.count) tokens")
        }
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(merges.count)
        for (index, line) in merges.enumerated() {
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw TokenizerError("bad merge line \(index): \"\(line)\" (expected two tokens separated by one space)")
            }
            pairs.append((String(parts[0]), String(parts[1])))
        }
        var special = Set<Int>()
        var bytes: [Int: UInt8] = [:]
        if let tokenTypes {
            for (id, type) in tokenTypes.enumerated() {
                switch type {
                case 2, 3, 4: special.insert(id)
                case 6: if let byte = Self.byteTokenValue(tokens[id]) { bytes[id] = byte }
                default: break
                }
            }
        } else {
            for (id, token) in tokens.enumerated() where token.hasPrefix("<|") && token.hasSuffix("|>") {
                special.insert(id)
            }
            for id in [bosTokenId, eosTokenId].compactMap({ $0 }) where tokens.indices.contains(id) {
                special.insert(id)
            }
        }
        core = try TokenizerCore(
            tokens: tokens.map { Optional($0) }, mergePairs: pairs, matchedInText: special,
            verbatim: special, byteTokens: bytes, preTokenizer: preTokenizer, addPrefixSpace: false,
            ignoreMerges: preTokenizer == .llama3, normalizeNFC: false, bosTokenId: bosTokenId, eosTokenId: eosTokenId,
            chatTemplate: chatTemplate)
    }

    init(core: TokenizerCore) { self.core = core }

    /// `<0x41>` → 0x41.
    private static func byteTokenValue(_ token: String) -> UInt8? {
        guard token.count == 6, token.hasPrefix("<0x"), token.hasSuffix(">") else { return nil }
        return UInt8(token.dropFirst(3).prefix(2), radix: 16)
    }

    /// The pre-tokenizer for a GGUF `tokenizer.ggml.pre` name: `gpt2`, `llama-bpe`/`llama3`,
    /// `qwen2`, `smollm`.
    /// - Throws: `TokenizerError` naming any other value.
    public static func preTokenizer(ggufName: String) throws -> PreTokenizerKind {
        switch ggufName {
        case "gpt2": return .gpt2
        case "llama-bpe", "llama3": return .llama3
        case "qwen2": return .qwen2
        case "smollm": return .smollm
        default:
            throw TokenizerError(
                "unsupported pre-tokenizer \"\(ggufName)\" (supported: gpt2, llama-bpe, llama3, qwen2, smollm)")
        }
    }

    /// The token ids of `text`. Special and added tokens written in the text are matched as
    /// single tokens (leftmost, longest first); no BOS is added.
    public func encode(_ text: String) -> [Int] { core.encode(text) }

    /// The text of `ids`: byte-level tokens become their bytes, special tokens their own text;
    /// invalid UTF-8 becomes U+FFFD. Ids outside the vocabulary are skipped.
    public func decode(_ ids: [Int]) -> String { core.decode(ids) }

    /// The vocabulary string of `id` (byte-level spelling, e.g. `Ġworld`), or nil.
    public func tokenText(_ id: Int) -> String? {
        core.tokens.indices.contains(id) ? core.tokens[id] : nil
    }

    /// The id of a vocabulary string (byte-level spelling), or nil.
    public func id(of token: String) -> Int? { core.vocabulary[token] }

    /// The bytes token `id` stands for in decoded text (empty for an id outside the vocabulary).
    /// A special token's bytes are its own text.
    public func bytes(of id: Int) -> [UInt8] {
        core.decodeBytes.indices.contains(id) ? core.decodeBytes[id] : []
    }

    /// Special and added tokens (`<|im_end|>`, …): matched as whole tokens in text, never produced
    /// by byte-level merges.
    public var specialTokenIds: Set<Int> { core.specialIds }

    /// Number of ids (one more than the largest id).
    public var vocabularySize: Int { core.tokens.count }

    /// The end-of-sequence token, if the model declares one.
    public var eosTokenId: Int? { core.eosTokenId }

    /// The beginning-of-sequence token, if the model declares one.
    public var bosTokenId: Int? { core.bosTokenId }

    /// Ids that end generation: the EOS token plus `<|im_end|>`, `<|endoftext|>` and `<|eot_id|>`
    /// when the vocabulary has them.
    public var stopTokenIds: Set<Int> {
        var ids = Set(["<|im_end|>", "<|endoftext|>", "<|eot_id|>"].compactMap { core.vocabulary[$0] })
        if let eos = core.eosTokenId { ids.insert(eos) }
        return ids
    }

    /// The parsed chat template, or nil when the model has none or it did not parse.
    public var chatTemplate: ChatTemplate? { core.chatTemplate }

    /// Why the model's chat template did not parse, if it did not.
    public var chatTemplateError: TokenizerError? { core.chatTemplateError }
}

/// Everything a tokenizer needs, prepared once.
struct TokenizerCore: Sendable {
    let tokens: [String?]
    let vocabulary: [String: Int]
    let merges: BPEMerges
    /// Token id of each single byte's byte-level spelling, or -1.
    let byteIds: [Int32]
    /// First scalar value → (scalars, id) of the tokens matched inside text, longest first.
    let specials: [UInt32: [([Unicode.Scalar], Int)]]
    /// The bytes each token decodes to.
    let decodeBytes: [[UInt8]]
    /// Special and added tokens (matched inside text, decoded verbatim).
    let specialIds: Set<Int>
    let preTokenizer: PreTokenizer
    let addPrefixSpace: Bool
    let ignoreMerges: Bool
    /// Unicode NFC before encoding (Qwen2's `tokenizer.json` normalizer).
    let normalizeNFC: Bool
    let bosTokenId: Int?
    let eosTokenId: Int?
    let chatTemplate: ChatTemplate?
    let chatTemplateError: TokenizerError?

    /// - Parameters:
    ///   - matchedInText: ids matched as whole tokens when their text occurs in the input.
    ///   - verbatim: ids that decode to their own UTF-8 instead of through the byte-level table.
    ///   - byteTokens: ids that stand for one raw byte (`<0xHH>`).
    init(
        tokens: [String?], mergePairs: [(String, String)], matchedInText: Set<Int>, verbatim: Set<Int>,
        byteTokens: [Int: UInt8], preTokenizer: PreTokenizerKind, addPrefixSpace: Bool, ignoreMerges: Bool,
        normalizeNFC: Bool, bosTokenId: Int?, eosTokenId: Int?, chatTemplate: String?
    ) throws {
        for (name, id) in [("bos", bosTokenId), ("eos", eosTokenId)] {
            if let id, !(tokens.indices.contains(id) && tokens[id] != nil) {
                throw TokenizerError("\(name) token id \(id) is not in the vocabulary (size \(tokens.count))")
            }
        }
        var vocabulary: [String: Int] = [:]
        vocabulary.reserveCapacity(tokens.count)
        for (id, token) in tokens.enumerated() {
            if let token, vocabulary[token] == nil { vocabulary[token] = id }
        }
        self.tokens = tokens
        self.vocabulary = vocabulary
        self.merges = BPEMerges(pairs: mergePairs, vocabulary: vocabulary)
        self.byteIds = ByteLevel.scalarForByte.map { scalar in
            vocabulary[String(Character(scalar))].map { Int32($0) } ?? -1
        }
        var specials: [UInt32: [([Unicode.Scalar], Int)]] = [:]
        for id in matchedInText.sorted() {
            guard let token = tokens[id], let first = token.unicodeScalars.first else { continue }
            specials[first.value, default: []].append((Array(token.unicodeScalars), id))
        }
        self.specials = specials.mapValues { $0.sorted { $0.0.count > $1.0.count } }
        self.decodeBytes = tokens.enumerated().map { id, token in
            guard let token else { return [] }
            if let byte = byteTokens[id] { return [byte] }
            if verbatim.contains(id) { return Array(token.utf8) }
            return ByteLevel.decode(token) ?? Array(token.utf8)
        }
        self.specialIds = matchedInText.union(verbatim)
        self.preTokenizer = PreTokenizer(kind: preTokenizer)
        self.addPrefixSpace = addPrefixSpace
        self.ignoreMerges = ignoreMerges
        self.normalizeNFC = normalizeNFC
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        if let chatTemplate {
            do {
                self.chatTemplate = try ChatTemplate(
                    source: chatTemplate, bosToken: bosTokenId.flatMap { tokens[$0] },
                    eosToken: eosTokenId.flatMap { tokens[$0] })
                self.chatTemplateError = nil
            } catch {
                self.chatTemplate = nil
                self.chatTemplateError = error as? TokenizerError ?? TokenizerError("chat template: \(error)")
            }
        } else {
            self.chatTemplate = nil
            self.chatTemplateError = nil
        }
    }

    func encode(_ text: String) -> [Int] {
        let scalars = Array((normalizeNFC ? text.precomposedStringWithCanonicalMapping : text).unicodeScalars)
        var output: [Int] = []
        output.reserveCapacity(scalars.count / 3 + 1)
        var segmentStart = 0
        var i = 0
        while i < scalars.count {
            if let candidates = specials[scalars[i].value],
               let (length, id) = match(candidates, in: scalars, at: i) {
                encodeSegment(scalars, segmentStart..<i, into: &output)
                output.append(id)
                i += length
                segmentStart = i
            } else {
                i += 1
            }
        }
        encodeSegment(scalars, segmentStart..<scalars.count, into: &output)
        return output
    }

    private func match(_ candidates: [([Unicode.Scalar], Int)], in scalars: [Unicode.Scalar], at i: Int) -> (Int, Int)? {
        for (token, id) in candidates where i + token.count <= scalars.count {
            var equal = true
            for k in 1..<token.count where scalars[i + k] != token[k] {
                equal = false
                break
            }
            if equal { return (token.count, id) }
        }
        return nil
    }

    private func encodeSegment(_ scalars: [Unicode.Scalar], _ range: Range<Int>, into output: inout [Int]) {
        guard !range.isEmpty else { return }
        if addPrefixSpace && scalars[range.lowerBound] != " " {
            let prefixed: [Unicode.Scalar] = [" "] + scalars[range]
            encodeWords(prefixed, 0..<prefixed.count, into: &output)
        } else {
            encodeWords(scalars, range, into: &output)
        }
    }

    private func encodeWords(_ scalars: [Unicode.Scalar], _ range: Range<Int>, into output: inout [Int]) {
        var bytes: [UInt8] = []
        var ids: [Int32] = []
        for word in preTokenizer.split(scalars, range) {
            bytes.removeAll(keepingCapacity: true)
            for k in word { UTF8.encode(scalars[k]) { bytes.append($0) } }
            if ignoreMerges, let id = vocabulary[ByteLevel.encode(bytes)] {
                output.append(id)
                continue
            }
            ids.removeAll(keepingCapacity: true)
            for byte in bytes where byteIds[Int(byte)] >= 0 { ids.append(byteIds[Int(byte)]) }
            for id in merges.merge(ids) { output.append(Int(id)) }
        }
    }

    func decode(_ ids: [Int]) -> String {
        var bytes: [UInt8] = []
        for id in ids where decodeBytes.indices.contains(id) { bytes.append(contentsOf: decodeBytes[id]) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
