// Inputs libFuzzer's targets (Tests/Fuzz) crashed ParaTool's parsers with, kept under
// Tests/Fixtures/fuzz/: each must now give the parser's error (Tests/Fixtures/fuzz/README.md says
// what was wrong with each).
import FixtureSupport
import Foundation
import ParaTool
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
}
