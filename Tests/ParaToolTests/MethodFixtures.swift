// The one locator of the shared oracle fixtures for the ParaTool tests: `$PARATOOL_SHARED`, else
// `../shared` beside the repository; plus the tiny Hugging Face fixture's expected values.
import Foundation
@testable import LLM

enum MethodFixtures {
    /// `shared/`: `$PARATOOL_SHARED`, else `../shared` beside the repository.
    static var shared: URL {
        if let env = ProcessInfo.processInfo.environment["PARATOOL_SHARED"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        // This file lives at <repo>/Tests/ParaToolTests/MethodFixtures.swift.
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared")
    }
    static var hfTiny: URL { shared.appendingPathComponent("fixtures/hf/tiny") }
    static func expected() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: hfTiny.appendingPathComponent("expected.json"))) as! [String: Any]
    }
    static func tensors() throws -> SafetensorsFile {
        try SafetensorsFile(path: hfTiny.appendingPathComponent("tensors.safetensors").path)
    }
}
