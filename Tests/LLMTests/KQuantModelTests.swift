// K-quant GGUF files as llama.cpp writes them, against llama.cpp's own reading of them
// (Tests/Fixtures/kquants): the GGUF reader and dequantisation against gguf-py on blocks.gguf and
// on a tiny Llama quantised by llama.cpp to Q4_K_M and Q5_K_M, and that model's prompt ids,
// logits, top-1 ids and greedy text against llama.cpp's, with the tolerances of
// Tests/Fixtures/kquants/README.md, on the weights as loaded by default (in place).
import Foundation
import Tensor
import FixtureSupport
import XCTest
@testable import LLM

final class KQuantModelTests: XCTestCase {
    static let files = ["tiny-llama-Q4_K_M.gguf", "tiny-llama-Q5_K_M.gguf"]
    nonisolated(unsafe) static var loaded = [String: LanguageModel]()

    static func model(_ file: String) throws -> LanguageModel {
        if let lm = loaded[file] { return lm }
        let lm = try LanguageModel.load(path: RepositoryFixtures.require(RepositoryFixtures.kquants.appendingPathComponent(file)).path)
        loaded[file] = lm
        return lm
    }

    func expected(_ file: String) throws -> [String: Any] {
        let files = try XCTUnwrap(RepositoryFixtures.expectedJSON(RepositoryFixtures.kquants)["files"] as? [String: Any])
        return try XCTUnwrap(files[file] as? [String: Any], "no expectations for \(file)")
    }

    func prompts(_ file: String) throws -> [[String: Any]] {
        try XCTUnwrap(try expected(file)["prompts"] as? [[String: Any]])
    }

    // MARK: - Reading the files

    /// Every tensor of blocks.gguf through GGUFFile.floats as gguf-py dequantises it; Q2_K is
    /// refused with its name.
    func testBlocksFileMatchesGGUFPy() throws {
        let folder = RepositoryFixtures.kquants
        let gguf = try GGUFFile(path: RepositoryFixtures.require(folder.appendingPathComponent("blocks.gguf")).path)
        let json = try Data(contentsOf: folder.appendingPathComponent("blocks_expected.json"))
        let tensors = try XCTUnwrap((try JSONSerialization.jsonObject(with: json) as? [String: Any])?["tensors"] as? [String: [String: Any]])
        XCTAssertEqual(Set(gguf.tensors.keys), Set(tensors.keys))
        for (name, e) in tensors {
            let info = try gguf.tensor(name)
            XCTAssertEqual(info.type.name, e["type"] as? String, name)
            XCTAssertEqual(info.offset, (e["offset"] as? NSNumber)?.intValue, name)
            guard info.type.isDequantizable else {
                XCTAssertEqual(info.type, .q2_K)
                XCTAssertThrowsError(try gguf.floats(name)) { error in
                    XCTAssertEqual(error as? GGUFError, .unsupportedTensorType(tensor: name, type: .q2_K))
                    XCTAssertTrue("\(error)".contains("Q2_K") && "\(error)".contains("Q6_K"), "\(error)")
                }
                continue
            }
            let values = try XCTUnwrap(e["values"] as? [NSNumber]).map(\.doubleValue)
            let buffer = try gguf.floats(name)
            XCTAssertEqual(buffer.count, values.count, name)
            for (i, v) in values.enumerated() {
                XCTAssertEqual(Double(buffer[i]), v, accuracy: 1e-6 * max(1, abs(v)), "\(name)[\(i)]")
            }
        }
    }

    /// The quantised files' tensor types as gguf-py reads them (llama.cpp's choices: Q4_K or Q5_K,
    /// Q6_K for the embedding and some V and FFN-down matrices), and the first and last 64 values of
    /// a few tensors as gguf-py dequantises them.
    func testQuantisedFilesMatchGGUFPy() throws {
        for file in Self.files {
            let e = try expected(file)
            let gguf = try GGUFFile(path: RepositoryFixtures.kquants.appendingPathComponent(file).path)
            let types = try XCTUnwrap(e["tensor_types"] as? [String: String])
            XCTAssertEqual(Set(gguf.tensors.keys), Set(types.keys), file)
            for (name, type) in types { XCTAssertEqual(try gguf.tensor(name).type.name, type, "\(file) \(name)") }
            for (name, sample) in try XCTUnwrap(e["samples"] as? [String: [String: Any]]) {
                let values = try gguf.floats(name).toArray()
                let first = try XCTUnwrap(sample["first64"] as? [NSNumber]).map(\.doubleValue)
                let last = try XCTUnwrap(sample["last64"] as? [NSNumber]).map(\.doubleValue)
                for (a, b) in zip(Array(values.prefix(64)) + Array(values.suffix(64)), first + last) {
                    XCTAssertEqual(Double(a), b, accuracy: 1e-6 * max(1, abs(b)), "\(file) \(name)")
                }
            }
        }
    }

    /// The K-quant matrices stay in place in the mapping (only Q and K rows are reordered copies).
    func testMatricesStayInTheirBlockFormats() throws {
        for (file, main) in zip(Self.files, [GGMLType.q4_K, .q5_K]) {
            let lm = try Self.model(file)
            let types = try XCTUnwrap(try expected(file)["tensor_types"] as? [String: String])
            XCTAssertEqual(lm.model.embedding.type.name, types["token_embd.weight"], file)
            for (i, layer) in lm.model.layers.enumerated() {
                let pairs = [("attn_q", layer.qProj), ("attn_k", layer.kProj), ("attn_v", layer.vProj), ("attn_output", layer.oProj),
                             ("ffn_gate", layer.gateProj), ("ffn_up", layer.upProj), ("ffn_down", layer.downProj)]
                for (name, linear) in pairs {
                    XCTAssertEqual(linear.weight.type.name, types["blk.\(i).\(name).weight"], "\(file) blk.\(i).\(name)")
                }
                XCTAssertEqual(layer.vProj.weight.ownedBytes, 0, "\(file): V is read in place")
                XCTAssertEqual(layer.gateProj.weight.type, main, file)
            }
        }
    }

    // MARK: - Against llama.cpp

    func testPromptIdsMatchLlamaCpp() throws {
        for file in Self.files {
            let lm = try Self.model(file)
            for p in try prompts(file) {
                XCTAssertEqual(lm.tokenizer.encode(p["prompt"] as! String), (p["ids"] as! [NSNumber]).map(\.intValue), file)
            }
        }
    }

    /// The same top-1 id at every position of every prompt, prefill and token-by-token decode,
    /// wherever llama.cpp's top two are more than `topOneMargin` apart; closer, llama.cpp's top-1
    /// must be in our top two. The last position's logits within `logitTolerance` of llama.cpp's
    /// (every vocabulary entry) and the per-position logits RMS within `rmsTolerance`.
    func testLogitsAgainstLlamaCpp() throws {
        for file in Self.files {
            let lm = try Self.model(file)
            let runner = Transformer(model: lm.model)
            for (k, p) in try prompts(file).enumerated() {
                let ids = (p["ids"] as! [NSNumber]).map(\.intValue)
                let argmax = (p["argmax_per_position"] as! [NSNumber]).map(\.intValue)
                let margins = (p["margin_per_position"] as! [NSNumber]).map(\.floatValue)
                let rms = (p["logits_rms_per_position"] as! [NSNumber]).map(\.doubleValue)
                let last = (p["last_logits"] as! [NSNumber]).map(\.floatValue)
                let prefill = runner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [KVCache(config: lm.model.config)], logits: .all)
                let cache = KVCache(config: lm.model.config)
                for (i, t) in ids.enumerated() {
                    let out = runner.forward([BatchSegment(sequence: 0, tokens: [t])], caches: [cache])
                    let decodeTop = Kernels.topK(out.logits, row: 0, k: 2).map(\.index)
                    let prefillTop = Kernels.topK(prefill.logits, row: i, k: 2).map(\.index)
                    for (path, top) in [("prefill", prefillTop), ("decode", decodeTop)] {
                        if margins[i] > Self.topOneMargin {
                            XCTAssertEqual(top[0], argmax[i], "\(file) prompt \(k) position \(i) (\(path)): top-1")
                        } else {
                            XCTAssertTrue(top.contains(argmax[i]), "\(file) prompt \(k) position \(i) (\(path)): top two")
                        }
                    }
                    XCTAssertEqual(SmolLM2Tests.rms(prefill.logits.row(i)), rms[i], accuracy: Self.rmsTolerance * rms[i],
                                   "\(file) prompt \(k) position \(i): logits RMS")
                    if i == ids.count - 1 {
                        for (path, row) in [("prefill", prefill.logits.row(i)), ("decode", out.logits.row(0))] {
                            let worst = zip(row, last).map { abs($0 - $1) }.max() ?? 0
                            XCTAssertLessThanOrEqual(worst, Self.logitTolerance, "\(file) prompt \(k) (\(path)): last logits")
                        }
                    }
                }
            }
        }
    }

    /// Free-running greedy generation gives llama.cpp's tokens, and their text, up to the first
    /// step where llama.cpp's own top two (along its greedy path) are within `topOneMargin`: after
    /// that a tie may break either way and the continuations part.
    func testGreedyTextAgainstLlamaCpp() throws {
        var compared = 0
        for file in Self.files {
            let lm = try Self.model(file)
            let generator = Generator(transformer: Transformer(model: lm.model))
            for (k, p) in try prompts(file).enumerated() {
                let ids = (p["ids"] as! [NSNumber]).map(\.intValue)
                let want = (p["greedy_16"] as! [NSNumber]).map(\.intValue)
                let margins = (p["greedy_margins"] as! [NSNumber]).map(\.floatValue)
                let texts = p["greedy_text_prefixes"] as! [String]
                let ours = generator.greedy(prompt: ids, maxNewTokens: want.count, stopTokens: [])
                let confident = margins.firstIndex { $0 <= Self.topOneMargin } ?? want.count
                XCTAssertEqual(Array(ours.prefix(confident)), Array(want.prefix(confident)), "\(file) prompt \(k): greedy ids")
                if confident > 0 {
                    XCTAssertEqual(lm.tokenizer.decode(Array(ours.prefix(confident))), texts[confident - 1], "\(file) prompt \(k): greedy text")
                }
                compared += confident
            }
        }
        XCTAssertGreaterThanOrEqual(compared, 40, "greedy steps compared")
    }

    /// Tolerances (README): llama.cpp multiplies K-quant weights by activations quantised to 8 bits
    /// per 256 values, ParaTool per 32 values in decode and not at all in prefill.
    static let topOneMargin: Float = 0.5
    static let logitTolerance: Float = 1.0
    static let rmsTolerance = 0.02
}
