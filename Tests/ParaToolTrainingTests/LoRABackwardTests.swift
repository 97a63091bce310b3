// LoRA gradients through the frozen decoder against PyTorch/PEFT's own (tiny Qwen2 fixture: one
// adapter, and the [0.5, 0.3, 0.2] mixture), and against central finite differences; a long
// sequence (several attention blocks) against the inference forward and finite differences;
// a batch of sequences against each sequence alone.
import FixtureSupport
import Foundation
import Tensor
import XCTest
@testable import LLM
@testable import ParaTool
@testable import ParaToolTraining

final class LoRABackwardTests: XCTestCase {
    static var tiny: URL { RepositoryFixtures.hfTiny }

    func setUpFixture() throws -> (LlamaModel, [ToolAdapter], [String: Any], SafetensorsFile) {
        let model = try LlamaModel(huggingFaceDirectory: Self.tiny.appendingPathComponent("qwen2"))
        let adapters = try (0..<3).map { try ToolAdapter.load(peftDirectory: Self.tiny.appendingPathComponent("adapters/tool_\($0)")) }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.tiny.appendingPathComponent("expected.json"))) as! [String: Any]
        let tensors = try SafetensorsFile(path: Self.tiny.appendingPathComponent("tensors.safetensors").path)
        return (model, adapters, json["gradients"] as! [String: Any], tensors)
    }

    func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        let diff = zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        let norm = b.map { $0 * $0 }.reduce(0, +).squareRoot()
        return diff / max(norm, 1e-12)
    }

    func check(_ grads: AdapterGradients, prefix: String, tensors: SafetensorsFile, layers: Int) throws {
        var checked = 0
        for l in 0..<layers {
            for p in FFNProjection.allCases {
                let base = "\(prefix).model.layers.\(l).mlp.\(p.rawValue)"
                for (name, ours) in [("lora_A", grads.a[l][p]!), ("lora_B", grads.b[l][p]!)] {
                    let expected = try tensors.load("\(base).\(name)").toArray()
                    let e = relativeError(ours.toArray(), expected)
                    XCTAssertLessThanOrEqual(e, 1e-3, "\(base).\(name): ‖Δ‖/‖ref‖ = \(e)")
                    checked += 1
                }
            }
        }
        XCTAssertEqual(checked, layers * 6)
    }

    func testSingleAdapterMatchesPyTorch() throws {
        let (model, adapters, g, tensors) = try setUpFixture()
        let ids = (g["ids"] as! [NSNumber]).map(\.intValue)
        let (loss, grads) = LoRABackward(model: model).lossAndGradients(ids: ids, targets: (g["n_target"] as! NSNumber).intValue,
                                                                        mixture: Mixture([(adapters[0], 1)]))
        XCTAssertEqual(loss, (g["loss_single_tool_0"] as! NSNumber).floatValue, accuracy: 1e-5)
        try check(grads[0], prefix: "grad.single.tool_0", tensors: tensors, layers: model.config.layerCount)
    }

    func testMixtureMatchesPyTorch() throws {
        let (model, adapters, g, tensors) = try setUpFixture()
        let ids = (g["ids"] as! [NSNumber]).map(\.intValue)
        let w = (g["mixture_weights"] as! [NSNumber]).map(\.floatValue)
        let (loss, grads) = LoRABackward(model: model).lossAndGradients(ids: ids, targets: (g["n_target"] as! NSNumber).intValue,
                                                                        mixture: Mixture(zip(adapters, w).map { ($0, $1) }))
        XCTAssertEqual(loss, (g["loss_mixture"] as! NSNumber).floatValue, accuracy: 1e-5)
        for k in 0..<3 { try check(grads[k], prefix: "grad.mixture.tool_\(k)", tensors: tensors, layers: model.config.layerCount) }
    }

    /// A second witness: central differences of the loss on a few entries of A and B (float32,
    /// step 1e-2 on a short sequence), on the Llama fixture with a fresh random adapter.
    func testFiniteDifferences() throws {
        let model = try LlamaModel(huggingFaceDirectory: Self.tiny.appendingPathComponent("llama"))
        let adapter = ToolAdapter.initialized(name: "t", config: model.config, rank: 2, alpha: 4, seed: 3, randomB: true)
        let ids = [5, 17, 42, 99, 3, 250, 7, 8]
        let backward = LoRABackward(model: model)
        let (_, grads) = backward.lossAndGradients(ids: ids, targets: 3, mixture: Mixture([(adapter, 0.8)]))
        var compared = 0, nonZero = 0
        for (l, p, isA, index) in [(0, FFNProjection.gate, true, 5), (1, .down, false, 7), (2, .up, true, 40), (0, .down, false, 0),
                                    (2, .gate, false, 11)] {
            let pair = adapter.pair(layer: l, projection: p)!
            let m = isA ? pair.a : pair.b
            let original = m.buffer[m.offset + index]
            let h: Float = 1e-2
            m.buffer[m.offset + index] = original + h
            let up = backward.lossAndGradients(ids: ids, targets: 3, mixture: Mixture([(adapter, 0.8)])).loss
            m.buffer[m.offset + index] = original - h
            let down = backward.lossAndGradients(ids: ids, targets: 3, mixture: Mixture([(adapter, 0.8)])).loss
            m.buffer[m.offset + index] = original
            let numeric = (up - down) / (2 * h)
            let analytic = (isA ? grads[0].a[l][p]! : grads[0].b[l][p]!)[index]
            XCTAssertEqual(analytic, numeric, accuracy: 2e-3 + 0.02 * abs(numeric), "layer \(l) \(p) \(isA ? "A" : "B")[\(index)]")
            compared += 1
            if abs(numeric) > 1e-3 { nonZero += 1 }
        }
        XCTAssertEqual(compared, 5)
        XCTAssertGreaterThanOrEqual(nonZero, 4, "the probed gradients should not be ~0")
    }

    func randomIds(_ n: Int, vocab: Int, seed: UInt64) -> [Int] {
        var rng = SeededGenerator(seed: seed)
        return (0..<n).map { _ in Int(rng.next() % UInt64(vocab)) }
    }

    /// A sequence longer than an attention block, with a two-adapter mixture: the loss equals the
    /// mean NLL the inference Transformer (fused branches) gives the same targets.
    func testLongSequenceLossMatchesTheInferenceForward() throws {
        let (model, adapters, _, _) = try setUpFixture()
        let ids = randomIds(150, vocab: model.config.vocabSize, seed: 11), targets = 40
        let mixture = Mixture([(adapters[0], 0.7), (adapters[1], 0.3)])
        let loss = LoRABackward(model: model).lossAndGradients(ids: ids, targets: targets, mixture: mixture).loss
        let runner = Transformer(model: model)
        let branches = AdapterMixture()
        branches.mixtures = [mixture]
        runner.branches = branches
        let out = runner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [KVCache(config: model.config, capacity: ids.count)],
                                 logits: .all)
        var nll: Double = 0
        for t in (ids.count - 1 - targets)..<(ids.count - 1) {
            let row = out.logits.row(t).map(Double.init), m = row.max()!
            nll += log(row.map { exp($0 - m) }.reduce(0, +)) + m - row[ids[t + 1]]
        }
        XCTAssertEqual(Double(loss), nll / Double(targets), accuracy: 1e-4)
    }

    /// Central differences on a sequence of several attention blocks (the Llama fixture).
    func testFiniteDifferencesOnALongSequence() throws {
        let model = try LlamaModel(huggingFaceDirectory: Self.tiny.appendingPathComponent("llama"))
        let adapter = ToolAdapter.initialized(name: "t", config: model.config, rank: 2, alpha: 4, seed: 4, randomB: true)
        let ids = randomIds(140, vocab: model.config.vocabSize, seed: 12)
        let backward = LoRABackward(model: model)
        let (_, grads) = backward.lossAndGradients(ids: ids, targets: 30, mixture: Mixture([(adapter, 1)]))
        var nonZero = 0
        for (l, p, isA, index) in [(0, FFNProjection.gate, true, 3), (1, .down, false, 9), (2, .up, true, 50), (0, .down, true, 17),
                                    (1, .gate, false, 30)] {
            let pair = adapter.pair(layer: l, projection: p)!
            let m = isA ? pair.a : pair.b
            let original = m.buffer[m.offset + index]
            let h: Float = 1e-2
            m.buffer[m.offset + index] = original + h
            let up = backward.lossAndGradients(ids: ids, targets: 30, mixture: Mixture([(adapter, 1)])).loss
            m.buffer[m.offset + index] = original - h
            let down = backward.lossAndGradients(ids: ids, targets: 30, mixture: Mixture([(adapter, 1)])).loss
            m.buffer[m.offset + index] = original
            let numeric = (up - down) / (2 * h)
            let analytic = (isA ? grads[0].a[l][p]! : grads[0].b[l][p]!)[index]
            XCTAssertEqual(analytic, numeric, accuracy: 2e-3 + 0.02 * abs(numeric), "layer \(l) \(p) \(isA ? "A" : "B")[\(index)]")
            if abs(numeric) > 1e-3 { nonZero += 1 }
        }
        XCTAssertGreaterThanOrEqual(nonZero, 4, "the probed gradients should not be ~0")
    }

    /// Sequences of different lengths and mixtures in one pass give the bits of running each
    /// alone (losses, and gradients summed in the same order).
    func testBatchMatchesEachSequenceAlone() throws {
        let (model, adapters, _, _) = try setUpFixture()
        let v = model.config.vocabSize
        let batch = [TrainingSequence(ids: randomIds(40, vocab: v, seed: 1), targets: 7, components: [(0, 1)], lossWeight: 0.5),
                     TrainingSequence(ids: randomIds(90, vocab: v, seed: 2), targets: 20, components: [(0, 0.5), (1, 0.5)], lossWeight: 0.25),
                     TrainingSequence(ids: randomIds(9, vocab: v, seed: 3), targets: 3, components: [(1, 1)], lossWeight: 1)]
        let used = Array(adapters.prefix(2))
        let backward = LoRABackward(model: model)
        let together = used.map { AdapterGradients(zerosLike: $0) }
        let losses = backward.accumulate(batch, adapters: used, into: together)
        let alone = used.map { AdapterGradients(zerosLike: $0) }
        for (i, seq) in batch.enumerated() {
            XCTAssertEqual(backward.accumulate([seq], adapters: used, into: alone)[0], losses[i], "loss of sequence \(i)")
        }
        for (t, a) in zip(together, alone) {
            for (x, y) in zip(t.buffers, a.buffers) { XCTAssertTrue(x.toArray() == y.toArray(), "the same sums in the same order") }
        }
    }
}
