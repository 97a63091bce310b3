// The one locator of the test fixtures: every oracle and data file the tests read lives in the
// repository under Tests/Fixtures/ (each folder's README names the independent tool that made it),
// so a bare clone passes its own tests.
import Foundation
import XCTest

public enum RepositoryFixtures {
    /// `<repo>/Tests/Fixtures`. This file lives at `<repo>/Tests/FixtureSupport/RepositoryFixtures.swift`.
    public static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Hugging Face transformers / tokenizers / PEFT oracles on tiny random models (`hf-tiny/`).
    public static var hfTiny: URL { root.appendingPathComponent("hf-tiny") }
    /// llama.cpp's own output on the default SmolLM2 GGUF (`smollm2-llama-cpp/`).
    public static var smollm2LlamaCpp: URL { root.appendingPathComponent("smollm2-llama-cpp") }
    /// The float64 numpy reference on the default SmolLM2 GGUF (`smollm2-float/`).
    public static var smollm2Float: URL { root.appendingPathComponent("smollm2-float") }
    /// gguf-py's reading of a crafted GGUF and of the default model (`gguf/`).
    public static var gguf: URL { root.appendingPathComponent("gguf") }
    /// gguf-py's dequantisation of the 5-bit and K-quant formats, and llama.cpp's Q4_K_M/Q5_K_M
    /// quantisations of a tiny Llama with its logits and greedy text (`kquants/`).
    public static var kquants: URL { root.appendingPathComponent("kquants") }
    /// float32 → BF16 encodings by gguf-py.
    public static var bf16: URL { root.appendingPathComponent("bf16") }
    /// Berkeley Function-Calling Leaderboard questions and gold answers (`bfcl/`).
    public static var bfcl: URL { root.appendingPathComponent("bfcl") }
    /// The inputs libFuzzer found that crashed a parser (`fuzz/<target>/<name>`), kept as
    /// regression tests.
    public static var fuzz: URL { root.appendingPathComponent("fuzz") }
    /// The bytes of the fuzzer-found input `name` of `target` (e.g. `fuzz-json`); fails when absent.
    public static func fuzzInput(_ target: String, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: require(fuzz.appendingPathComponent(target).appendingPathComponent(name), file: file, line: line)))
    }

    /// The BFCL categories kept in `bfcl/`.
    public static let bfclCategories = ["simple_python", "multiple", "parallel", "parallel_multiple", "live_simple"]
    /// `bfcl/BFCL_v4_<category>.json`: the questions.
    public static func bfclQuestions(_ category: String) -> URL {
        bfcl.appendingPathComponent("BFCL_v4_\(category).json")
    }
    /// `bfcl/possible_answer/BFCL_v4_<category>.json`: the gold answers.
    public static func bfclAnswers(_ category: String) -> URL {
        bfcl.appendingPathComponent("possible_answer/BFCL_v4_\(category).json")
    }

    /// The URL if the file exists; otherwise the test fails (never skips silently), since every
    /// fixture is part of the repository.
    public static func require(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        guard FileManager.default.fileExists(atPath: url.path) else {
            XCTFail("missing fixture \(url.path): Tests/Fixtures is part of the repository", file: file, line: line)
            throw XCTSkip("missing fixture")
        }
        return url
    }

    /// A fixture folder's parsed `expected.json`.
    public static func expectedJSON(_ folder: URL, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let data = try Data(contentsOf: require(folder.appendingPathComponent("expected.json"), file: file, line: line))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            XCTFail("\(folder.path)/expected.json is not a JSON object", file: file, line: line)
            throw XCTSkip("malformed fixture")
        }
        return object
    }
}
