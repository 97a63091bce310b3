// Tests the byte-level BPE tokenizer and chat templates against the Hugging Face and llama.cpp
// oracle fixtures, plus hand-derived pre-tokenizer splits.
import Foundation
import FixtureSupport
import XCTest
@testable import LLM

final class TokenizerTests: XCTestCase {
    private func tinyTokenizer() throws -> Tokenizer {
        try Tokenizer(directory: try RepositoryFixtures.require(RepositoryFixtures.hfTiny.appendingPathComponent("tokenizer")))
    }

    // MARK: Hugging Face oracle (tokenizers 0.23)

    func testHFTinyEncodeAndDecodeMatchOracle() throws {
        let tokenizer = try tinyTokenizer()
        let cases = try XCTUnwrap(RepositoryFixtures.expectedJSON(RepositoryFixtures.hfTiny)["tokenizer"] as? [[String: Any]])
        XCTAssertFalse(cases.isEmpty)
        for entry in cases {
            let text = try XCTUnwrap(entry["text"] as? String)
            let ids = try XCTUnwrap(entry["ids"] as? [Int])
            let decoded = try XCTUnwrap(entry["decoded"] as? String)
            XCTAssertEqual(tokenizer.encode(text), ids, "encode \(text.debugDescription)")
            XCTAssertEqual(tokenizer.decode(ids), decoded, "decode \(ids)")
        }
    }

    func testHFTinyChatTemplateMatchesOracle() throws {
        let tokenizer = try tinyTokenizer()
        let chat = try XCTUnwrap(RepositoryFixtures.expectedJSON(RepositoryFixtures.hfTiny)["chat"] as? [String: Any])
        let messages = try XCTUnwrap(chat["messages"] as? [[String: String]]).map {
            ChatMessage(role: $0["role"]!, content: $0["content"]!)
        }
        let template = try XCTUnwrap(tokenizer.chatTemplate, "\(String(describing: tokenizer.chatTemplateError))")
        let rendered = try template.render(messages, addGenerationPrompt: true)
        XCTAssertEqual(rendered, chat["rendered"] as? String)
        XCTAssertEqual(tokenizer.encode(rendered), chat["ids"] as? [Int])
    }

    func testHFTinySpecialTokens() throws {
        let tokenizer = try tinyTokenizer()
        XCTAssertEqual(tokenizer.vocabularySize, 600)
        XCTAssertEqual(tokenizer.id(of: "<|endoftext|>"), 0)
        XCTAssertEqual(tokenizer.id(of: "<|im_start|>"), 1)
        XCTAssertEqual(tokenizer.eosTokenId, 2)
        XCTAssertNil(tokenizer.bosTokenId)
        XCTAssertEqual(tokenizer.stopTokenIds, [0, 2])
        XCTAssertEqual(tokenizer.tokenText(1), "<|im_start|>")
        XCTAssertNil(tokenizer.tokenText(600))
    }

    func testModelFolderTokenizersLoadAndMatchModelPromptIds() throws {
        let expected = try RepositoryFixtures.expectedJSON(RepositoryFixtures.hfTiny)
        let models = try XCTUnwrap(expected["models"] as? [String: Any])
        for folder in ["qwen2", "llama"] {
            let tokenizer = try Tokenizer(directory: RepositoryFixtures.hfTiny.appendingPathComponent(folder))
            XCTAssertEqual(tokenizer.eosTokenId, 2, folder)
            XCTAssertNotNil(tokenizer.chatTemplate, folder)
            let prompts = try XCTUnwrap(models[folder] as? [[String: Any]])
            XCTAssertFalse(prompts.isEmpty)
            for prompt in prompts {
                let text = try XCTUnwrap(prompt["text"] as? String)
                XCTAssertEqual(tokenizer.encode(text), prompt["ids"] as? [Int], "\(folder): \(text)")
            }
        }
    }

    // MARK: llama.cpp oracle (SmolLM2 GGUF)

    private func smolLM2Tokenizer() throws -> Tokenizer {
        let gguf = try GGUFFile(path: try DefaultModelFixture.path())
        let meta = gguf.metadata
        return try Tokenizer(
            tokens: try XCTUnwrap(meta["tokenizer.ggml.tokens"]?.stringArray),
            merges: try XCTUnwrap(meta["tokenizer.ggml.merges"]?.stringArray),
            tokenTypes: meta["tokenizer.ggml.token_type"]?.int32Array,
            preTokenizer: try Tokenizer.preTokenizer(ggufName: try XCTUnwrap(meta["tokenizer.ggml.pre"]?.stringValue)),
            bosTokenId: meta["tokenizer.ggml.bos_token_id"]?.intValue,
            eosTokenId: meta["tokenizer.ggml.eos_token_id"]?.intValue,
            chatTemplate: meta["tokenizer.chat_template"]?.stringValue)
    }

    func testSmolLM2EncodeAndDecodeMatchLlamaCpp() throws {
        let tokenizer = try smolLM2Tokenizer()
        XCTAssertEqual(tokenizer.vocabularySize, 49152)
        XCTAssertEqual(tokenizer.stopTokenIds, [0, 2])
        let expected = try RepositoryFixtures.expectedJSON(RepositoryFixtures.smollm2LlamaCpp)
        let cases = try XCTUnwrap(expected["tokenize"] as? [[String: Any]])
        XCTAssertFalse(cases.isEmpty)
        for entry in cases {
            let text = try XCTUnwrap(entry["text"] as? String)
            let ids = try XCTUnwrap(entry["ids"] as? [Int])
            XCTAssertEqual(tokenizer.encode(text), ids, "encode \(text.debugDescription)")
            XCTAssertEqual(tokenizer.decode(ids), entry["decoded"] as? String, "decode \(ids)")
        }
    }

    func testSmolLM2ChatTemplateMatchesLlamaCppPrompt() throws {
        let tokenizer = try smolLM2Tokenizer()
        let expected = try RepositoryFixtures.expectedJSON(RepositoryFixtures.smollm2LlamaCpp)
        let first = try XCTUnwrap((expected["prompts"] as? [[String: Any]])?.first)
        let template = try XCTUnwrap(tokenizer.chatTemplate, "\(String(describing: tokenizer.chatTemplateError))")
        // The template adds SmolLM's default system turn when the first message is not a system one.
        let rendered = try template.render(
            [ChatMessage(role: "user", content: "What is the capital of France?")], addGenerationPrompt: true)
        XCTAssertEqual(rendered, first["prompt"] as? String)
        XCTAssertEqual(tokenizer.encode(rendered), first["ids"] as? [Int])
        let explicit = try template.render(
            [ChatMessage(role: "system", content: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
             ChatMessage(role: "user", content: "What is the capital of France?")], addGenerationPrompt: true)
        XCTAssertEqual(explicit, first["prompt"] as? String)
    }

    func testSmolLM2EncodeSpeed() throws {
        let tokenizer = try smolLM2Tokenizer()
        let sentence = "The quick brown fox jumps over the lazy dog, 1234 times; café naïve façade 東京の天気! "
        let text = String(repeating: sentence, count: 2000)
        let start = Date()
        let ids = tokenizer.encode(text)
        let seconds = Date().timeIntervalSince(start)
        print("SmolLM2 encode: \(text.utf8.count) bytes → \(ids.count) tokens in \(String(format: "%.3f", seconds)) s "
            + "(\(String(format: "%.2f", Double(text.utf8.count) / seconds / 1e6)) MB/s)")
        XCTAssertEqual(tokenizer.decode(ids), text)
    }

    // MARK: Pre-tokenizer splits (hand-derived from the regexes)

    private func words(_ text: String, _ kind: PreTokenizerKind) -> [String] {
        let scalars = Array(text.unicodeScalars)
        return PreTokenizer(kind: kind).split(scalars, 0..<scalars.count).map {
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars[$0])
            return String(view)
        }
    }

    func testPreTokenizerSplitsDigitsPerRule() {
        let text = "Hello  world's 123"
        XCTAssertEqual(words(text, .gpt2), ["Hello", " ", " world", "'s", " 123"])
        XCTAssertEqual(words(text, .llama3), ["Hello", " ", " world", "'s", " ", "123"])
        XCTAssertEqual(words(text, .qwen2), ["Hello", " ", " world", "'s", " ", "1", "2", "3"])
        XCTAssertEqual(words(text, .smollm), ["Hello", " ", " world", "'s", " ", "1", "2", "3"])
        XCTAssertEqual(words("12345", .llama3), ["123", "45"])
        XCTAssertEqual(words("x 12345", .gpt2), ["x", " 12345"])
    }

    func testPreTokenizerWhitespaceLookahead() {
        XCTAssertEqual(words("a   b", .gpt2), ["a", "  ", " b"])
        XCTAssertEqual(words("a   b", .llama3), ["a", "  ", " b"])
        XCTAssertEqual(words("a \tb", .gpt2), ["a", " ", "\t", "b"])
        XCTAssertEqual(words("end  ", .gpt2), ["end", "  "])
        XCTAssertEqual(words("x\n\n  y", .gpt2), ["x", "\n\n ", " y"])
        XCTAssertEqual(words("x\n\n  y", .llama3), ["x", "\n\n", " ", " y"])
    }

    func testPreTokenizerContractionsAndPunctuation() {
        XCTAssertEqual(words("I'M (ok)!!\n", .gpt2), ["I", "'", "M", " (", "ok", ")!!", "\n"])
        XCTAssertEqual(words("I'M (ok)!!\n", .llama3), ["I", "'M", " (", "ok", ")!!\n"])
        XCTAssertEqual(words("we'll 'sup", .gpt2), ["we", "'ll", " '", "sup"])
        XCTAssertEqual(words("(hello\tworld", .llama3), ["(hello", "\tworld"])
        XCTAssertEqual(words("(hello\tworld", .gpt2), ["(", "hello", "\t", "world"])
    }

    func testPreTokenizerUnicodeClasses() {
        // U+00E9 is Ll, U+0663 (Arabic-Indic three) is Nd, U+2163 (Roman four) is Nl, U+00A0 is White_Space.
        XCTAssertEqual(words("café \u{663}\u{2163}\u{A0}x", .gpt2), ["café", " \u{663}\u{2163}", "\u{A0}", "x"])
        XCTAssertEqual(words("ab\u{301}c", .gpt2), ["ab", "\u{301}", "c"])
        XCTAssertEqual(words("東京 🚀", .llama3), ["東京", " 🚀"])
    }

    // MARK: Errors and decoding

    func testUnknownGGUFPreTokenizerIsNamed() {
        XCTAssertThrowsError(try Tokenizer.preTokenizer(ggufName: "falcon")) { error in
            XCTAssertTrue("\(error)".contains("\"falcon\""), "\(error)")
        }
        XCTAssertEqual(try Tokenizer.preTokenizer(ggufName: "llama-bpe"), .llama3)
        XCTAssertEqual(try Tokenizer.preTokenizer(ggufName: "smollm"), .smollm)
    }

    func testBadMergeLineAndBadModelTypeAreReported() throws {
        XCTAssertThrowsError(try Tokenizer(
            tokens: ["a", "b", "ab"], merges: ["a b", "ab"], tokenTypes: nil, preTokenizer: .gpt2,
            bosTokenId: nil, eosTokenId: nil, chatTemplate: nil)) { error in
            XCTAssertTrue("\(error)".contains("bad merge line 1"), "\(error)")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(#"{"model": {"type": "WordPiece", "vocab": {}}}"#.utf8)
            .write(to: folder.appendingPathComponent("tokenizer.json"))
        XCTAssertThrowsError(try Tokenizer(directory: folder)) { error in
            XCTAssertTrue("\(error)".contains("\"WordPiece\""), "\(error)")
        }
        try Data(#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Metaspace"}}"#.utf8)
            .write(to: folder.appendingPathComponent("tokenizer.json"))
        XCTAssertThrowsError(try Tokenizer(directory: folder)) { error in
            XCTAssertTrue("\(error)".contains("Metaspace"), "\(error)")
        }
    }

    func testRawPartsMergeByRank() throws {
        // Ranks: "b c" before "a b", so "abc" → a + bc; then "a bc" applies.
        let tokenizer = try Tokenizer(
            tokens: ["a", "b", "c", "ab", "bc", "abc", "<|im_end|>"], merges: ["b c", "a b", "a bc"],
            tokenTypes: [1, 1, 1, 1, 1, 1, 3], preTokenizer: .gpt2, bosTokenId: nil, eosTokenId: 6, chatTemplate: nil)
        XCTAssertEqual(tokenizer.encode("abc"), [5])
        XCTAssertEqual(tokenizer.encode("ab"), [3])
        XCTAssertEqual(tokenizer.encode("abab<|im_end|>c"), [3, 3, 6, 2])
        XCTAssertEqual(tokenizer.decode([5, 6]), "abc<|im_end|>")
        XCTAssertEqual(tokenizer.stopTokenIds, [6])
    }

    func testDecodeInvalidUTF8GivesReplacementCharacter() throws {
        let tokenizer = try tinyTokenizer()
        // Byte-level spellings: 0xE6 → "æ", 0x9D → "Ŀ" (U+013F), 0xFF → "ÿ", 0x61 → "a".
        let e6 = try XCTUnwrap(tokenizer.id(of: "æ"))
        let x9d = try XCTUnwrap(tokenizer.id(of: "\u{13F}"))
        let ff = try XCTUnwrap(tokenizer.id(of: "ÿ"))
        let a = try XCTUnwrap(tokenizer.id(of: "a"))
        XCTAssertEqual(tokenizer.decode([e6]), "\u{FFFD}")
        XCTAssertEqual(tokenizer.decode([e6, x9d, a]), "\u{FFFD}a")
        XCTAssertEqual(tokenizer.decode([ff, ff, a]), "\u{FFFD}\u{FFFD}a")
        XCTAssertEqual(tokenizer.decode([a, 100_000, -1]), "a")
    }

    // MARK: Chat template subset

    func testTemplateWhitespaceControlAndBlockTrimming() throws {
        let none: [ChatMessage] = []
        XCTAssertEqual(try ChatTemplate(source: "a  {%- if true -%}  x  {%- endif %}\n").render(none, addGenerationPrompt: false), "ax")
        XCTAssertEqual(try ChatTemplate(source: "{% if true %}\nA{% endif %}\nB").render(none, addGenerationPrompt: false), "AB")
        XCTAssertEqual(try ChatTemplate(source: "x\n  {% if true %}B{% endif %}").render(none, addGenerationPrompt: false), "x\nB")
        XCTAssertEqual(try ChatTemplate(source: "  {{ 'k' }}").render(none, addGenerationPrompt: false), "  k")
        XCTAssertEqual(try ChatTemplate(source: "{# note #}\nz").render(none, addGenerationPrompt: false), "z")
    }

    func testTemplateExpressionsAndLoops() throws {
        let messages = [ChatMessage(role: "system", content: " S "), ChatMessage(role: "user", content: "U")]
        let source = """
            {{ bos_token }}{% for m in messages %}{% if loop.first %}[{% elif loop.last %}|{% else %}?{% endif %}\
            {{ loop.index0 }}{{ m.role + ':' + m['content'] | trim }}{% if not loop.last and m.role != 'user' %},{% endif %}\
            {% endfor %}{{ messages | length }}{{ 'yes' if add_generation_prompt else 'no' }}{{ eos_token }}
            """
        let template = try ChatTemplate(source: source, bosToken: "<s>", eosToken: "</s>")
        XCTAssertEqual(try template.render(messages, addGenerationPrompt: false), "<s>[0system:S,|1user:U2no</s>")
        let escapes = try ChatTemplate(source: #"{{ 'a\nb' ~ "\t" ~ 'it\'s' }}{% set x = 3 %}{{ x * 2 }}{{ messages[1:] | length }}"#)
        XCTAssertEqual(try escapes.render(messages, addGenerationPrompt: false), "a\nb\tit's61")
        let arithmetic = try ChatTemplate(source: "{{ -7 // 2 }},{{ -7 % 2 }},{{ 7 / 2 }},{{ [1, 2] + [3] }},{{ 'b' in ['a', 'b'] }}")
        XCTAssertEqual(try arithmetic.render([], addGenerationPrompt: false), "-4,1,3.5,[1, 2, 3],True")
        XCTAssertThrowsError(try ChatTemplate(source: "{{ 9223372036854775807 + 1 }}").render([], addGenerationPrompt: false))
    }

    func testTemplateUnsupportedSyntaxThrowsNamingIt() {
        XCTAssertThrowsError(try ChatTemplate(source: "{% macro f() %}{% endmacro %}")) { error in
            XCTAssertTrue("\(error)".contains("macro"), "\(error)")
        }
        XCTAssertThrowsError(try ChatTemplate(source: "{% if x %}open")) { error in
            XCTAssertTrue("\(error)".contains("endif"), "\(error)")
        }
        XCTAssertThrowsError(try ChatTemplate(source: "{{ x | tojson }}").render([], addGenerationPrompt: false)) { error in
            XCTAssertTrue("\(error)".contains("tojson"), "\(error)")
        }
        XCTAssertThrowsError(try ChatTemplate(source: "{{ raise_exception('no tools') }}").render([], addGenerationPrompt: false)) { error in
            XCTAssertTrue("\(error)".contains("no tools"), "\(error)")
        }
        XCTAssertThrowsError(try ChatTemplate(source: "{{ 'a' + 1 }}").render([], addGenerationPrompt: false))
    }
}
