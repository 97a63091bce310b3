// Inputs libFuzzer's targets (Tests/Fuzz) crashed the LLM layer's loaders with, kept under
// Tests/Fixtures/fuzz/: each must now give the loader's error (Tests/Fixtures/fuzz/README.md says
// what was wrong with each).
import FixtureSupport
import Foundation
import LLM
import XCTest

final class FuzzRegressionTests: XCTestCase {
    func fixture(_ target: String, _ name: String) throws -> URL {
        try RepositoryFixtures.require(RepositoryFixtures.fuzz.appendingPathComponent(target).appendingPathComponent(name))
    }

    func assertSafetensorsRefused(_ name: String, saying expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let url = try fixture("fuzz-safetensors", name)
        XCTAssertThrowsError(try SafetensorsFile(path: url.path), file: file, line: line) { error in
            guard case ModelLoadError.invalidFile(_, let reason) = error else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertTrue(reason.contains(expected), reason, file: file, line: line)
        }
    }

    func testSafetensorsOffsetsNearIntMaxAreRefusedWithoutOverflow() throws {
        try assertSafetensorsRefused("offset-overflow", saying: "runs past the end of the file")
    }

    func testSafetensorsShapeWhoseElementCountOverflowsIsRefused() throws {
        try assertSafetensorsRefused("shape-overflow", saying: "too many elements")
    }

    func testSafetensorsNegativeDimensionsAreRefused() throws {
        try assertSafetensorsRefused("negative-shape", saying: "negative dimension")
    }

    func testTokenizerIdFarBeyondTheVocabularyIsRefused() throws {
        let folder = try fixture("fuzz-tokenizer", "id-beyond-vocabulary")
        XCTAssertThrowsError(try Tokenizer(directory: folder)) { error in
            XCTAssertTrue("\(error)".contains("token id 4611686018427387904 is beyond the 1 tokens"), "\(error)")
        }
    }

    func testTokenizerIdAtIntMaxIsRefusedWithoutOverflow() throws {
        let folder = try fixture("fuzz-tokenizer", "id-at-int-max")
        XCTAssertThrowsError(try Tokenizer(directory: folder)) { error in
            XCTAssertTrue("\(error)".contains("token id 9223372036854775807 is beyond the"), "\(error)")
        }
    }
}
