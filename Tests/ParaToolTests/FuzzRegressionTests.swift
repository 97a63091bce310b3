// Inputs libFuzzer's targets (Tests/Fuzz) crashed ParaTool's parsers with, kept under
// Tests/Fixtures/fuzz/: each must now give the parser's error (Tests/Fixtures/fuzz/README.md says
// what was wrong with each).
import FixtureSupport
import Foundation
import ParaTool
import XCTest

final class FuzzRegressionTests: XCTestCase {
    func testNumbersBeyondADoubleAreRefusedSoArgumentsStayJSON() throws {
        let text = String(decoding: try RepositoryFixtures.fuzzInput("fuzz-json", "number-beyond-double"), as: UTF8.self)
        XCTAssertThrowsError(try JSONValue.parse(text)) { error in
            XCTAssertTrue("\(error)".contains("within a double's range"), "\(error)")
        }
        XCTAssertThrowsError(try JSONValue.parse("-1\(String(repeating: "0", count: 400))"))
        XCTAssertEqual(try JSONValue.parse("1.7e308"), .double(1.7e308))
        // A model answer with such a number is not a call whose arguments could not be written back.
        let parsed = ActionParser.parse(#"<tool_call>{"name": "t", "arguments": {"x": \#(text)}}</tool_call>"#)
        XCTAssertFalse(parsed.errors.isEmpty)
    }

    func testAdapterLayerIndicesCannotSizeTheLoadersArrays() throws {
        for name in ["layer-beyond-any-model", "tensor-of-layer-beyond-any-model"] {
            let folder = try RepositoryFixtures.require(RepositoryFixtures.fuzz.appendingPathComponent("fuzz-peft/\(name)"))
            XCTAssertThrowsError(try ToolAdapter.load(peftDirectory: folder), name) { error in
                guard case PEFTAdapterError.invalidConfig(_, let reason) = error else { return XCTFail("\(name): \(error)") }
                XCTAssertTrue(reason.contains("beyond the 4096 layers"), reason)
            }
        }
    }
}
