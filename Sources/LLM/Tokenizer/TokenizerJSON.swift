// Owns loading a Tokenizer from a Hugging Face folder: tokenizer.json, tokenizer_config.json
// and chat_template.jinja.
import Foundation

extension Tokenizer {
    /// From a Hugging Face tokenizer folder: `tokenizer.json` (a byte-level BPE model), plus
    /// `tokenizer_config.json` when present for `bos_token`, `eos_token` and `chat_template`, and
    /// `chat_template.jinja` (written by transformers 5), which takes precedence for the template.
    ///
    /// Every added token is matched inside text; all tokens decode through the byte-level table
    /// (falling back to their own UTF-8), as `tokenizers` does.
    /// - Throws: `TokenizerError` naming a missing file or field, a model type other than BPE,
    ///   a malformed merge, or an unsupported normalizer or pre-tokenizer.
    public convenience init(directory: URL) throws {
        let json = try Self.readJSON(directory.appendingPathComponent("tokenizer.json"), required: true)!
        let model = try HFField.dictionary(json, "model", in: "tokenizer.json")
        guard let type = model["type"] as? String else {
            throw TokenizerError("tokenizer.json: missing field model.type")
        }
        guard type == "BPE" else {
            throw TokenizerError("tokenizer.json: unsupported model type \"\(type)\" (only BPE)")
        }
        guard let vocab = model["vocab"] as? [String: Any] else {
            throw TokenizerError("tokenizer.json: missing field model.vocab")
        }
        var entries: [(String, Int)] = []
        entries.reserveCapacity(vocab.count)
        for (token, value) in vocab {
            guard let id = (value as? NSNumber)?.intValue, id >= 0 else {
                throw TokenizerError("tokenizer.json: model.vocab[\"\(token)\"] is not a token id")
            }
            entries.append((token, id))
        }
        var added: [(String, Int)] = []
        for (index, item) in ((json["added_tokens"] as? [Any]) ?? []).enumerated() {
            guard let item = item as? [String: Any], let content = item["content"] as? String,
                  let id = (item["id"] as? NSNumber)?.intValue, id >= 0 else {
                throw TokenizerError("tokenizer.json: added_tokens[\(index)] lacks content or id")
            }
            added.append((content, id))
        }
        let largest = (entries + added).map(\.1).max() ?? -1
        // The id table is as long as the largest id: a hostile id (2^62, or Int.max, where the
        // table's size would overflow) must not size it.
        guard largest < entries.count + added.count + Self.maxIdGap else {
            throw TokenizerError("tokenizer.json: token id \(largest) is beyond the \(entries.count + added.count) tokens "
                                 + "(ids may leave gaps of at most \(Self.maxIdGap))")
        }
        let size = largest + 1
        var tokens = [String?](repeating: nil, count: size)
        for (token, id) in entries + added { tokens[id] = token }

        let pairs = try Self.mergePairs(model["merges"])
        let (kind, addPrefixSpace) = try Self.preTokenizerKind(json["pre_tokenizer"])
        let nfc = try Self.usesNFC(json["normalizer"])

        let config = try Self.readJSON(directory.appendingPathComponent("tokenizer_config.json"), required: false)
        var template = Self.configTemplate(config?["chat_template"])
        let jinja = directory.appendingPathComponent("chat_template.jinja")
        if FileManager.default.fileExists(atPath: jinja.path) {
            do {
                template = try String(contentsOf: jinja, encoding: .utf8)
            } catch {
                throw TokenizerError("cannot read \(jinja.path): \(error)")
            }
        }
        var ids: [String: Int] = [:]
        for (token, id) in entries + added { ids[token] = id }
        func specialId(_ key: String) throws -> Int? {
            guard let value = config?[key], !(value is NSNull) else { return nil }
            let text = (value as? String) ?? ((value as? [String: Any])?["content"] as? String)
            guard let text else { throw TokenizerError("tokenizer_config.json: \(key) is not a string") }
            guard let id = ids[text] else {
                throw TokenizerError("tokenizer_config.json: \(key) \"\(text)\" is not in the vocabulary")
            }
            return id
        }
        let core = try TokenizerCore(
            tokens: tokens, mergePairs: pairs, matchedInText: Set(added.map(\.1)), verbatim: [],
            byteTokens: [:], preTokenizer: kind, addPrefixSpace: addPrefixSpace,
            ignoreMerges: (model["ignore_merges"] as? Bool) ?? false, normalizeNFC: nfc,
            bosTokenId: try specialId("bos_token"), eosTokenId: try specialId("eos_token"),
            chatTemplate: template)
        self.init(core: core)
    }

    /// How many unused ids a vocabulary may have in all (real ones have none, or a few).
    static let maxIdGap = 1024

    private static func readJSON(_ url: URL, required: Bool) throws -> [String: Any]? {
        guard FileManager.default.fileExists(atPath: url.path) else {
            if required { throw TokenizerError("missing \(url.lastPathComponent) in \(url.deletingLastPathComponent().path)") }
            return nil
        }
        do {
            let data = try Data(contentsOf: url)
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw TokenizerError("\(url.lastPathComponent): top level is not an object")
            }
            return object
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw TokenizerError("\(url.lastPathComponent): invalid JSON (\(error))")
        }
    }

    /// `["a b", ...]` or `[["a", "b"], ...]`.
    private static func mergePairs(_ value: Any?) throws -> [(String, String)] {
        guard let list = value as? [Any] else { throw TokenizerError("tokenizer.json: missing field model.merges") }
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(list.count)
        for (index, item) in list.enumerated() {
            if let line = item as? String {
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw TokenizerError("tokenizer.json: bad merge line \(index): \"\(line)\"")
                }
                pairs.append((String(parts[0]), String(parts[1])))
            } else if let pair = item as? [String], pair.count == 2 {
                pairs.append((pair[0], pair[1]))
            } else {
                throw TokenizerError("tokenizer.json: bad merge \(index): \(item) (expected \"a b\" or [\"a\", \"b\"])")
            }
        }
        return pairs
    }

    /// ByteLevel (regex on), or a Sequence of Split(known regex, Isolated) + ByteLevel (regex off),
    /// or Digits(individual) + ByteLevel (regex on).
    private static func preTokenizerKind(_ value: Any?) throws -> (PreTokenizerKind, Bool) {
        guard let node = value as? [String: Any], let type = node["type"] as? String else {
            throw TokenizerError("tokenizer.json: missing field pre_tokenizer")
        }
        func byteLevel(_ node: [String: Any], regex: Bool) throws -> Bool {
            let useRegex = (node["use_regex"] as? Bool) ?? true
            guard useRegex == regex else {
                throw TokenizerError("tokenizer.json: unsupported ByteLevel pre-tokenizer with use_regex \(useRegex) here")
            }
            return (node["add_prefix_space"] as? Bool) ?? false
        }
        switch type {
        case "ByteLevel":
            return (.gpt2, try byteLevel(node, regex: true))
        case "Sequence":
            let steps = (node["pretokenizers"] as? [[String: Any]]) ?? []
            let types = steps.map { ($0["type"] as? String) ?? "?" }
            if types == ["Split", "ByteLevel"] {
                let split = steps[0]
                guard let regex = (split["pattern"] as? [String: Any])?["Regex"] as? String else {
                    throw TokenizerError("tokenizer.json: Split pre-tokenizer without a Regex pattern")
                }
                guard let kind = PreTokenizerKind.matching(pattern: regex) else {
                    throw TokenizerError("tokenizer.json: unsupported Split regex \(regex)")
                }
                let behavior = (split["behavior"] as? String) ?? "?"
                guard behavior == "Isolated", (split["invert"] as? Bool) != true else {
                    throw TokenizerError("tokenizer.json: unsupported Split behavior \(behavior)")
                }
                if try byteLevel(steps[1], regex: false) {
                    throw TokenizerError("tokenizer.json: unsupported ByteLevel add_prefix_space after Split")
                }
                return (kind, false)
            }
            if types == ["Digits", "ByteLevel"], (steps[0]["individual_digits"] as? Bool) == true {
                if try byteLevel(steps[1], regex: true) {
                    throw TokenizerError("tokenizer.json: unsupported ByteLevel add_prefix_space after Digits")
                }
                return (.smollm, false)
            }
            throw TokenizerError("tokenizer.json: unsupported pre-tokenizer sequence \(types)")
        default:
            throw TokenizerError("tokenizer.json: unsupported pre-tokenizer \(type)")
        }
    }

    /// No normalizer, or NFC.
    private static func usesNFC(_ value: Any?) throws -> Bool {
        guard let node = value as? [String: Any] else { return false }
        let type = (node["type"] as? String) ?? "?"
        guard type == "NFC" else { throw TokenizerError("tokenizer.json: unsupported normalizer \(type)") }
        return true
    }

    /// A template string, or the `default` entry of a list of named templates.
    private static func configTemplate(_ value: Any?) -> String? {
        if let text = value as? String { return text }
        guard let list = value as? [[String: Any]] else { return nil }
        let named = list.first { ($0["name"] as? String) == "default" } ?? list.first
        return named?["template"] as? String
    }
}

/// Typed access to untyped JSON.
private enum HFField {
    static func dictionary(_ object: [String: Any], _ key: String, in file: String) throws -> [String: Any] {
        guard let value = object[key] as? [String: Any] else { throw TokenizerError("\(file): missing field \(key)") }
        return value
    }
}
