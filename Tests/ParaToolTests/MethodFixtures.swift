// The tiny Hugging Face fixture's expected values for the ParaTool tests (the files are found by
// `RepositoryFixtures`, under Tests/Fixtures/hf-tiny).
import FixtureSupport
import Foundation
@testable import LLM

enum MethodFixtures {
    static var hfTiny: URL { RepositoryFixtures.hfTiny }
    static func expected() throws -> [String: Any] {
        try RepositoryFixtures.expectedJSON(hfTiny)
    }
    static func tensors() throws -> SafetensorsFile {
        try SafetensorsFile(path: RepositoryFixtures.require(hfTiny.appendingPathComponent("tensors.safetensors")).path)
    }
}
