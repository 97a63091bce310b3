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
}
