// Inputs libFuzzer's targets (Tests/Fuzz) crashed ParaTool's parsers with, kept under
// Tests/Fixtures/fuzz/: each must now give the parser's error (Tests/Fixtures/fuzz/README.md says
// what was wrong with each).
import FixtureSupport
import Foundation
@testable import ParaTool
import XCTest

final class FuzzRegressionTests: XCTestCase {
    func testAdapterLayerIndicesCannotSizeTheLoadersArrays() throws {
        for name in ["layer-beyond-any-model", "tensor-of-layer-beyond-any-model"] {
            let folder = try RepositoryFixtures.require(RepositoryFixtures.fuzz.appendingPathComponent("fuzz-peft/\(name)"))
            XCTAssertThrowsError(try ToolAdapter.load(peftDirectory: folder), name) { error in
                guard case PEFTAdapterError.invalidConfig(_, let reason) = error else { return XCTFail("\(name): \(error)") }
                XCTAssertTrue(reason.contains("beyond the 4096 layers"), reason)
            }
        }
    }

    /// The grammar lets a string hold tag text (here a key of an object the schema leaves free);
    /// the parser finds a block's end outside its JSON strings, so it reads the same one call.
    func testTagTextInsideAStringStaysInsideTheBlock() throws {
        let input = try RepositoryFixtures.fuzzInput("fuzz-call-grammar", "tag-inside-a-string")
        let separator = Array("\n--next-file--\n".utf8)
        let at = try XCTUnwrap((0...(input.count - separator.count)).first { input[$0..<($0 + separator.count)].elementsEqual(separator) })
        let catalogue = try ToolCatalogue.parse(String(decoding: input[..<at], as: UTF8.self))
        let answer = Array(input[(at + separator.count)...])
        let recognizer = CallRecognizer(grammar: CallGrammar(tools: catalogue.tools))
        var state = recognizer.initialState()
        XCTAssertTrue(answer.allSatisfy { recognizer.step(&state, $0) } && recognizer.isComplete(state),
                      "the grammar accepts the answer, a tag's text inside a key")
        let parsed = ActionParser.parse(String(decoding: answer, as: UTF8.self), catalogue: catalogue)
        XCTAssertTrue(parsed.isValid, "\(parsed.errors)")
        guard case .calls(let calls) = parsed.action else { return XCTFail("\(parsed.action)") }
        XCTAssertEqual(calls.count, Int(recognizer.arena[Int(state.top)].seen))
        XCTAssertEqual(calls.count, 1)
        XCTAssertEqual(calls.first?.name, "calculate_triangle_area")
        XCTAssertEqual(calls.first?.arguments["h<tool_call>eight"], .int(5), "the tag's text stays the key it was written as")
    }

    /// The grammar let a string hold a lone high surrogate (`\ud83d` then `]`), which every JSON
    /// parser refuses, so a constrained answer failed to parse: it now allows one only before
    /// `\u` and a low surrogate, and no low surrogate on its own.
    func testAStringsEscapesKeepSurrogatesPaired() throws {
        let input = try RepositoryFixtures.fuzzInput("fuzz-call-grammar", "lone-high-surrogate")
        let separator = Array("\n--next-file--\n".utf8)
        let at = try XCTUnwrap((0...(input.count - separator.count)).first { input[$0..<($0 + separator.count)].elementsEqual(separator) })
        let catalogue = try ToolCatalogue.parse(String(decoding: input[..<at], as: UTF8.self))
        let recognizer = CallRecognizer(grammar: CallGrammar(tools: catalogue.tools))
        func accepts(_ text: String) -> Bool {
            var state = recognizer.initialState()
            return text.utf8.allSatisfy { recognizer.step(&state, $0) } && recognizer.isComplete(state)
        }
        let answer = String(decoding: input[(at + separator.count)...], as: UTF8.self)
        XCTAssertTrue(answer.contains("\\ud83d]"))
        XCTAssertFalse(accepts(answer), "a lone high surrogate")
        let weather = try ToolCatalogue.parse(#"[{"name": "get_weather", "description": "Weather.", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]"#)
        let plain = CallRecognizer(grammar: CallGrammar(tools: weather.tools))
        func acceptsPlain(_ text: String) -> Bool {
            var state = plain.initialState()
            return text.utf8.allSatisfy { plain.step(&state, $0) } && plain.isComplete(state)
        }
        func call(city: String) -> String { #"<tool_call>{"name": "get_weather", "arguments": {"city": "\#(city)"}}</tool_call>"# }
        for (city, valid) in [(#"Oslo\ud83d\ude00"#, true), (#"Oslo\uD83D\uDE00!"#, true), (#"\u00e9t\u00C9"#, true),
                              (#"Oslo\ud83d"#, false), (#"Oslo\ud83d\u0041"#, false), (#"Oslo\ude00"#, false),
                              (#"Oslo\ud83dx"#, false), (#"\uDBFF\uDFFF"#, true), (#"\uDC00"#, false)] {
            XCTAssertEqual(acceptsPlain(call(city: city)), valid, city)
            if valid {
                let parsed = ActionParser.parse(call(city: city), catalogue: weather)
                XCTAssertTrue(parsed.isValid, "\(city): \(parsed.errors)")
            } else {
                XCTAssertThrowsError(try JSONValue.parse(#""\#(city)""#), "the JSON parser refuses \(city) too")
            }
        }
    }
}
