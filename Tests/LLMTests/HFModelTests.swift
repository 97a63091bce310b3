// Logits, final hidden states and greedy continuations of the tiny Hugging Face fixture models
// (Qwen2 with q/k/v bias and untied head; Llama with tied embeddings; the same Llama stored in
// bfloat16) against transformers' own outputs.
import Foundation
import Tensor
import FixtureSupport
import XCTest
@testable import LLM

final class HFModelTests: XCTestCase {
    static func reference() throws -> (json: [String: Any], tensors: SafetensorsFile) {
        let json = try RepositoryFixtures.expectedJSON(RepositoryFixtures.hfTiny)
        let tensors = try SafetensorsFile(path: RepositoryFixtures.hfTiny.appendingPathComponent("tensors.safetensors").path)
        return (json, tensors)
    }

    func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        XCTAssertEqual(a.count, b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    func checkModel(_ name: String, tolerance: Float) throws {
        let (json, tensors) = try Self.reference()
        let model = try LlamaModel(huggingFaceDirectory: RepositoryFixtures.hfTiny.appendingPathComponent(name))
        let cases = (json["models"] as! [String: Any])[name] as! [[String: Any]]
        XCTAssertFalse(cases.isEmpty)
        let runner = Transformer(model: model)
        for (k, c) in cases.enumerated() {
            let ids = (c["ids"] as! [NSNumber]).map(\.intValue)
            let cache = KVCache(config: model.config)
            let out = runner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [cache], logits: .all)
            let expected = try tensors.load(c["logits"] as! String).toArray()
            XCTAssertEqual(out.logits.rows * out.logits.cols, expected.count)
            let d = maxAbsDiff(out.logits.toArray(), expected)
            XCTAssertLessThanOrEqual(d, tolerance, "\(name) prompt \(k): logits max |Δ| = \(d)")
            let hidden = try tensors.load(c["hidden_last"] as! String).toArray()
            let dh = maxAbsDiff(out.hidden.row(out.hidden.rows - 1), hidden)
            XCTAssertLessThanOrEqual(dh, tolerance, "\(name) prompt \(k): hidden max |Δ| = \(dh)")

            let greedy = (c["greedy_12"] as! [NSNumber]).map(\.intValue)
            let generated = Generator(transformer: runner).greedy(prompt: ids, maxNewTokens: greedy.count, stopTokens: [])
            XCTAssertEqual(generated, greedy, "\(name) prompt \(k): greedy continuation")

            // After giving back its scratch and the cache's memory (what an idle worker does), the
            // same runner and cache give the same logits.
            runner.releaseWorkingMemory()
            cache.reset(capacity: 1)
            XCTAssertEqual(cache.capacity, 1)
            let again = runner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [cache], logits: .all)
            let da = maxAbsDiff(again.logits.toArray(), expected)
            XCTAssertLessThanOrEqual(da, tolerance, "\(name) prompt \(k): logits after releasing working memory, max |Δ| = \(da)")
        }
    }

    func testQwen2LogitsHiddenGreedy() throws { try checkModel("qwen2", tolerance: 1e-4) }
    func testLlamaLogitsHiddenGreedy() throws { try checkModel("llama", tolerance: 1e-4) }
    func testLlamaBF16LogitsHiddenGreedy() throws { try checkModel("llama-bf16", tolerance: 1e-3) }

    /// Several prompts of different lengths in one forward give the same logits as each alone.
    /// `--weights q8_0|q4_0` on a float model: every matrix quantised at load (rows of the tiny
    /// Qwen2 are whole blocks), and the logits of every position still close to transformers'
    /// float ones (relative RMS error: 2.0% for Q8_0, 21% for Q4_0 on this random model), prefill
    /// (sgemm on dequantised tiles) and decode (integer products on 8-bit activations) alike.
    func testQuantisedAtLoadStaysCloseToTransformers() throws {
        let (json, tensors) = try Self.reference()
        let c = ((json["models"] as! [String: Any])["qwen2"] as! [[String: Any]])[0]
        let ids = (c["ids"] as! [NSNumber]).map(\.intValue)
        let expected = try tensors.load(c["logits"] as! String).toArray()
        let rms = (expected.map { Double($0 * $0) }.reduce(0, +) / Double(expected.count)).squareRoot()
        // Weight rounding alone (the decode's 8-bit activations add far less, checked below).
        for (format, bound) in [(WeightFormat.q8_0, 0.04), (.q4_0, 0.35)] {
            let model = try LlamaModel(huggingFaceDirectory: RepositoryFixtures.hfTiny.appendingPathComponent("qwen2"), format: format)
            XCTAssertEqual(model.weightFormat, format)
            let types = Set(model.layers.flatMap { [$0.qProj, $0.kProj, $0.vProj, $0.oProj, $0.gateProj, $0.upProj, $0.downProj].map(\.weight.type) })
            XCTAssertEqual(types, [format == .q8_0 ? GGMLType.q8_0 : .q4_0])
            let runner = Transformer(model: model)
            let out = runner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [KVCache(config: model.config)], logits: .all)
            let prefilled = out.logits.toArray()
            let prefillError = (zip(prefilled, expected).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
                                / Double(expected.count)).squareRoot() / rms
            XCTAssertLessThanOrEqual(prefillError, bound, "\(format) prefill: relative RMS error \(prefillError)")
            // One token at a time: every position through the decode kernels.
            let cache = KVCache(config: model.config), vocab = model.config.vocabSize
            var decoded = [Float]()
            for t in ids { decoded += runner.forward([BatchSegment(sequence: 0, tokens: [t])], caches: [cache]).logits.row(0) }
            let decodeError = (zip(decoded, expected).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
                               / Double(ids.count * vocab)).squareRoot() / rms
            XCTAssertLessThanOrEqual(decodeError, bound, "\(format) decode: relative RMS error \(decodeError)")
            let apart = (zip(decoded, prefilled).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +)
                         / Double(ids.count * vocab)).squareRoot() / rms
            XCTAssertLessThanOrEqual(apart, 0.005, "\(format): decode and prefill logits differ by \(apart) (relative RMS)")
        }
    }

    func testBatchOfDifferentLengthsMatchesSingles() throws {
        let (json, tensors) = try Self.reference()
        let model = try LlamaModel(huggingFaceDirectory: RepositoryFixtures.hfTiny.appendingPathComponent("qwen2"))
        let cases = (json["models"] as! [String: Any])["qwen2"] as! [[String: Any]]
        let prompts = cases.map { ($0["ids"] as! [NSNumber]).map(\.intValue) }
        XCTAssertGreaterThan(Set(prompts.map(\.count)).count, 1, "fixture prompts should differ in length")
        let caches = prompts.map { _ in KVCache(config: model.config) }
        let runner = Transformer(model: model)
        let segments = prompts.enumerated().map { BatchSegment(sequence: $0.offset, tokens: $0.element) }
        let out = runner.forward(segments, caches: caches, logits: .all)
        var row = 0
        for (k, c) in cases.enumerated() {
            let expected = try tensors.load(c["logits"] as! String).toArray()
            let n = prompts[k].count
            let got = (0..<n).flatMap { out.logits.row(row + $0) }
            XCTAssertLessThanOrEqual(maxAbsDiff(got, expected), 1e-4, "prompt \(k) inside a batch")
            row += n
        }
        // One batched decode step for all sequences equals the greedy oracle's first new token.
        let firsts = cases.map { ($0["greedy_12"] as! [NSNumber]).map(\.intValue) }
        let step = runner.forward(firsts.enumerated().map { BatchSegment(sequence: $0.offset, tokens: [$0.element[0]]) },
                                  caches: caches)
        for k in cases.indices {
            XCTAssertEqual(Kernels.argmax(step.logits, row: k), firsts[k][1], "batched decode, sequence \(k)")
        }
    }

    /// An encoder's layer limit: all layers give the plain hidden states; no layer gives the
    /// final norm of the embeddings (computed here with plain loops); one layer differs from both.
    func testHiddenStatesOfAnInnerLayer() throws {
        let model = try LlamaModel(huggingFaceDirectory: RepositoryFixtures.hfTiny.appendingPathComponent("qwen2"))
        let ids = [5, 17, 42, 99]
        func hidden(_ layers: Int?) -> [Float] {
            Transformer(model: model).forward([BatchSegment(sequence: 0, tokens: ids)], caches: [KVCache(config: model.config)],
                                              logits: .hiddenOnly, layers: layers).hidden.toArray()
        }
        let all = hidden(nil)
        XCTAssertEqual(hidden(model.config.layerCount), all)
        let h = model.config.hiddenSize, eps = model.config.rmsNormEps
        var expected = [Float]()
        for t in ids {
            let row: [Float] = try XCTUnwrap(model.embedding.floatView).row(t)
            let inv = 1 / ((row.map { Double($0) * Double($0) }.reduce(0, +) / Double(h)) + Double(eps)).squareRoot()
            expected += (0..<h).map { Float(Double(row[$0]) * inv) * model.finalNorm[$0] }
        }
        XCTAssertLessThanOrEqual(maxAbsDiff(hidden(0), expected), 1e-5)
        let one = hidden(1)
        XCTAssertGreaterThan(maxAbsDiff(one, all), 1e-3)
        XCTAssertGreaterThan(maxAbsDiff(one, expected), 1e-3)
    }

    func testMissingTensorAndBadConfigAreClearErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("paratool-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = RepositoryFixtures.hfTiny.appendingPathComponent("llama")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: src.appendingPathComponent("config.json"))) as! [String: Any]
        config["architectures"] = ["GPTNeoXForCausalLM"]
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: src.appendingPathComponent("model.safetensors"),
                                         to: dir.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try LlamaModel(huggingFaceDirectory: dir)) { e in
            XCTAssertTrue("\(e)".contains("GPTNeoXForCausalLM"), "\(e)")
        }
        // A config asking for more layers than the file has names the first missing tensor, though
        // layers load in parallel and three of them fail.
        config["architectures"] = ["LlamaForCausalLM"]
        config["num_hidden_layers"] = 6
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try LlamaModel(huggingFaceDirectory: dir)) { e in
            XCTAssertTrue("\(e)".contains("model.layers.3.input_layernorm.weight"), "\(e)")
        }
        // A wrong hidden size is a shape mismatch naming the tensor.
        config["num_hidden_layers"] = 3
        config["intermediate_size"] = 96
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        XCTAssertThrowsError(try LlamaModel(huggingFaceDirectory: dir)) { e in
            XCTAssertTrue("\(e)".contains("model.layers.0.mlp.gate_proj.weight") && "\(e)".contains("96"), "\(e)")
        }
    }
}

extension HFModelTests {
    /// The Llama fixture split into two shards with a `model.safetensors.index.json` (written with
    /// the project's writer, tensor bytes copied unchanged) gives transformers' logits.
    func testShardedSafetensorsLoad() throws {
        let src = RepositoryFixtures.hfTiny.appendingPathComponent("llama")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("paratool-shards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: src.appendingPathComponent("config.json"), to: dir.appendingPathComponent("config.json"))
        let whole = try SafetensorsFile(path: src.appendingPathComponent("model.safetensors").path)
        let names = whole.entries.keys.sorted()
        var weightMap = [String: String]()
        for (k, part) in [names.filter { $0.contains("layers.0.") || $0.contains("embed") },
                          names.filter { !($0.contains("layers.0.") || $0.contains("embed")) }].enumerated() {
            let file = "model-0000\(k + 1)-of-00002.safetensors"
            try SafetensorsWriter.write(try part.map { SafetensorsTensor(name: $0, shape: whole.entries[$0]!.shape, buffer: try whole.load($0)) },
                                        to: dir.appendingPathComponent(file))
            for n in part { weightMap[n] = file }
        }
        try JSONSerialization.data(withJSONObject: ["metadata": [:], "weight_map": weightMap])
            .write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let model = try LlamaModel(huggingFaceDirectory: dir)
        let (json, tensors) = try Self.reference()
        let c = ((json["models"] as! [String: Any])["llama"] as! [[String: Any]])[0]
        let ids = (c["ids"] as! [NSNumber]).map(\.intValue)
        let out = Transformer(model: model).forward([BatchSegment(sequence: 0, tokens: ids)], caches: [KVCache(config: model.config)], logits: .all)
        XCTAssertLessThanOrEqual(maxAbsDiff(out.logits.toArray(), try tensors.load(c["logits"] as! String).toArray()), 1e-4)
    }
}
