// The default model (SmolLM2-135M-Instruct, GGUF Q4_1) against llama.cpp's own outputs on the
// same file: prompt ids exactly, top-10 logits, per-position logits RMS, greedy continuations,
// with the tolerances of Tests/Fixtures/smollm2-llama-cpp/README.md, on the weights as loaded by
// default (Q4_1/Q8_0 blocks in place, activations quantised to 8 bits as llama.cpp does); and the
// float32 path (`--weights f32`, every tensor dequantised) against the float64 reference.
import Foundation
import Tensor
import FixtureSupport
import XCTest
@testable import LLM

final class SmolLM2Tests: XCTestCase {
    nonisolated(unsafe) static var loaded: LanguageModel?
    nonisolated(unsafe) static var loadedFloat: LanguageModel?

    static func model() throws -> LanguageModel {
        if let loaded { return loaded }
        let lm = try LanguageModel.load(path: try DefaultModelFixture.path())
        loaded = lm
        return lm
    }

    /// The default model with every matrix dequantised to float32 at load.
    static func floatModel() throws -> LanguageModel {
        if let loadedFloat { return loadedFloat }
        let lm = try LanguageModel.load(path: try DefaultModelFixture.path(), weights: .f32)
        loadedFloat = lm
        return lm
    }

    /// By default the file's formats stay in place: Q4_1 layers, the Q8_0 embedding (which is
    /// also the tied output head), nothing owned but the reordered Q and K rows; and every
    /// matrix expands to exactly the float32 model's values.
    func testTensorsStayInTheirBlockFormats() throws {
        let lm = try Self.model(), float = try Self.floatModel()
        XCTAssertEqual(lm.model.embedding.type, .q8_0)
        XCTAssertEqual(lm.model.lmHead.type, .q8_0)
        let layer = lm.model.layers[3], floatLayer = float.model.layers[3]
        let pairs = [(layer.qProj, floatLayer.qProj), (layer.kProj, floatLayer.kProj), (layer.vProj, floatLayer.vProj),
                     (layer.oProj, floatLayer.oProj), (layer.gateProj, floatLayer.gateProj), (layer.upProj, floatLayer.upProj),
                     (layer.downProj, floatLayer.downProj)]
        for (quantized, reference) in pairs {
            XCTAssertEqual(quantized.weight.type, .q4_1)
            XCTAssertEqual(reference.weight.type, .f32)
            guard case .blocks(let blocks) = quantized.weight.storage else { return XCTFail("not block storage") }
            XCTAssertEqual(blocks.dequantized().toArray(), try XCTUnwrap(reference.weight.floatView).toArray())
        }
        XCTAssertEqual(layer.vProj.weight.ownedBytes, 0, "V is read in place from the mapping")
        XCTAssertGreaterThan(layer.qProj.weight.ownedBytes, 0, "Q's rows are reordered into an owned copy")
        XCTAssertEqual(lm.model.bytesReadPerToken * 10 / float.model.bytesReadPerToken, 1, "Q4_1 is ~0.16 of float32")
    }

    func prompts() throws -> [[String: Any]] {
        try RepositoryFixtures.expectedJSON(RepositoryFixtures.smollm2LlamaCpp)["prompts"] as! [[String: Any]]
    }

    func testConfigFromMetadata() throws {
        let c = try Self.model().model.config
        XCTAssertEqual(c.layerCount, 30)
        XCTAssertEqual(c.hiddenSize, 576)
        XCTAssertEqual(c.intermediateSize, 1536)
        XCTAssertEqual(c.headCount, 9)
        XCTAssertEqual(c.kvHeadCount, 3)
        XCTAssertEqual(c.headDim, 64)
        XCTAssertEqual(c.vocabSize, 49152)
        XCTAssertEqual(c.ropeTheta, 100000)
        XCTAssertTrue(c.tieWordEmbeddings)
    }

    func floatReference() throws -> [[String: Any]] {
        try RepositoryFixtures.expectedJSON(RepositoryFixtures.smollm2Float)["prompts"] as! [[String: Any]]
    }

    static func rms(_ row: [Float]) -> Double {
        (row.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(row.count)).squareRoot()
    }

    /// With the weights in place and 8-bit activations, as llama.cpp computes: the same top-1 id
    /// at every position of every prompt, prefill and token-by-token decode alike, wherever
    /// llama.cpp's own top two are more than 0.5 apart, the activation rounding the other
    /// llama.cpp comparisons here allow; closer, llama.cpp's top-1 must be in our top two. The
    /// int8 activations are re-rounded at every layer, so sums that agree to 1e-6 (the AVX2 and
    /// portable decode products on every tensor of this model) flip roundings and move logits by
    /// up to 0.3: on an AVX2-only CPU prompt 0 position 15 decodes 260 8.086 / 253 8.039 with
    /// the AVX2 products and 253 8.167 / 260 8.116 with the portable ones, where llama.cpp's
    /// margin is 0.32.
    func testTopTokenAtEveryPositionAgainstLlamaCpp() throws {
        let lm = try Self.model()
        let runner = Transformer(model: lm.model)
        var compared = 0
        for (k, p) in try prompts().enumerated() {
            let ids = (p["ids"] as! [NSNumber]).map(\.intValue)
            let argmax = (p["argmax_per_position"] as! [NSNumber]).map(\.intValue)
            let margins = (p["margin_per_position"] as! [NSNumber]).map(\.floatValue)
            let prefill = runner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [KVCache(config: lm.model.config)], logits: .all)
            let prefillTop = (0..<ids.count).map { Kernels.topK(prefill.logits, row: $0, k: 2).map(\.index) }
            let cache = KVCache(config: lm.model.config)
            for (i, t) in ids.enumerated() {
                let out = runner.forward([BatchSegment(sequence: 0, tokens: [t])], caches: [cache])
                let decoded = Kernels.topK(out.logits, row: 0, k: 2).map(\.index)
                for (path, top) in [("prefill", prefillTop[i]), ("decode", decoded)] {
                    if margins[i] > 0.5 {
                        XCTAssertEqual(top[0], argmax[i], "prompt \(k) position \(i) (\(path)): top-1")
                    } else {
                        XCTAssertTrue(top.contains(argmax[i]), "prompt \(k) position \(i) (\(path)): llama.cpp's top-1 in our top two")
                    }
                }
                compared += 1
            }
        }
        XCTAssertEqual(compared, 41)
    }

    func testPromptLogitsAgainstLlamaCpp() throws {
        let lm = try Self.model()
        let runner = Transformer(model: lm.model)
        var deviations = [Double]()
        for (k, p) in try prompts().enumerated() {
            let ids = (p["ids"] as! [NSNumber]).map(\.intValue)
            XCTAssertEqual(lm.tokenizer.encode(p["prompt"] as! String), ids, "prompt \(k) token ids")
            let cache = KVCache(config: lm.model.config)
            let out = runner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [cache], logits: .all)
            let top = Kernels.topK(out.logits, row: out.logits.rows - 1, k: 10).map(\.index)
            let expectedTop = (p["last_logits_top10_ids"] as! [NSNumber]).map(\.intValue)
            let expectedValues = (p["last_logits_top10_values"] as! [NSNumber]).map(\.floatValue)
            if expectedValues[0] - expectedValues[1] > 0.5 {
                XCTAssertEqual(top.first, expectedTop.first, "prompt \(k): top-1 id at the last position")
            } else {
                // llama.cpp's own top two are closer than its activation rounding: same pair, either order.
                XCTAssertEqual(Set(top.prefix(2)), Set(expectedTop.prefix(2)), "prompt \(k): top-2 ids")
            }
            let overlap = Set(top).intersection(expectedTop).count
            XCTAssertGreaterThanOrEqual(overlap, 8, "prompt \(k): top-10 overlap \(overlap)")
            let rms = (p["logits_rms_per_position"] as! [NSNumber]).map(\.doubleValue)
            XCTAssertEqual(rms.count, out.logits.rows)
            deviations += rms.enumerated().map { abs(Self.rms(out.logits.row($0.offset)) - $0.element) / $0.element }
        }
        // Per-position logits RMS. llama.cpp's int8 activations move it by up to ~10% at some
        // positions; the float64 reference (Tests/Fixtures/smollm2-float, numpy on gguf-py's
        // dequantised weights) deviates from llama.cpp identically, so the shared README's 2%
        // cannot hold everywhere for float arithmetic. It holds at most positions, and none is
        // further than 12%; testAgainstFloat64Reference checks every position to 0.1%.
        let within2 = Double(deviations.filter { $0 <= 0.02 }.count) / Double(deviations.count)
        XCTAssertGreaterThanOrEqual(within2, 0.6, "share of positions with logits RMS within 2% of llama.cpp")
        XCTAssertLessThanOrEqual(deviations.max()!, 0.12, "worst logits RMS deviation from llama.cpp")
    }

    /// Teacher-forced along llama.cpp's greedy continuation: at every step where our top-1
    /// margin exceeds 0.5, our argmax is llama.cpp's token.
    func testGreedyContinuationsAgainstLlamaCpp() throws {
        let lm = try Self.model()
        let runner = Transformer(model: lm.model)
        var compared = 0
        for (k, p) in try prompts().enumerated() {
            let ids = (p["ids"] as! [NSNumber]).map(\.intValue)
            let expected = (p["greedy_24"] as! [NSNumber]).map(\.intValue)
            let cache = KVCache(config: lm.model.config)
            var out = runner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [cache])
            for (step, want) in expected.enumerated() {
                let top = Kernels.topK(out.logits, row: 0, k: 2)
                if top[0].value - top[1].value > 0.5 {
                    XCTAssertEqual(top[0].index, want, "prompt \(k) step \(step)")
                    compared += 1
                }
                out = runner.forward([BatchSegment(sequence: 0, tokens: [want])], caches: [cache])
            }
        }
        XCTAssertGreaterThanOrEqual(compared, 24, "too few confident greedy steps were compared")
    }

    /// Against the float64 reference (same arithmetic, no activation quantisation): logits RMS
    /// within 0.1% at every position, the top-20 logits within 0.01, and the free-running greedy
    /// continuation identical wherever the reference's margin exceeds 0.05.
    func testAgainstFloat64Reference() throws {
        let lm = try Self.floatModel()
        let runner = Transformer(model: lm.model)
        for (k, p) in try floatReference().enumerated() {
            let ids = (p["ids"] as! [NSNumber]).map(\.intValue)
            let cache = KVCache(config: lm.model.config)
            let out = runner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [cache], logits: .all)
            let rms = (p["logits_rms_per_position"] as! [NSNumber]).map(\.doubleValue)
            for (i, expected) in rms.enumerated() {
                let ours = Self.rms(out.logits.row(i))
                XCTAssertLessThanOrEqual(abs(ours - expected) / expected, 1e-3, "prompt \(k) position \(i): RMS \(ours) vs \(expected)")
            }
            let last = out.logits.row(out.logits.rows - 1)
            let topIds = (p["last_logits_top20_ids"] as! [NSNumber]).map(\.intValue)
            let topValues = (p["last_logits_top20_values"] as! [NSNumber]).map(\.floatValue)
            for (id, v) in zip(topIds, topValues) {
                XCTAssertEqual(last[id], v, accuracy: 0.01, "prompt \(k): logit of token \(id)")
            }
            let greedy = (p["greedy_12"] as! [NSNumber]).map(\.intValue)
            let margins = (p["greedy_12_margins"] as! [NSNumber]).map(\.floatValue)
            let ours = Generator(transformer: runner).greedy(prompt: ids, maxNewTokens: greedy.count, stopTokens: [])
            for step in greedy.indices {
                guard margins[step] > 0.05 else { break }
                XCTAssertEqual(ours[step], greedy[step], "prompt \(k) free-running greedy step \(step)")
            }
        }
    }
}
