// The fused multi-adapter forward against PEFT's own outputs (single adapters and the
// [0.5, 0.3, 0.2] mixture on the tiny Qwen2 fixture) and against weights merged by a plain
// loop here, for a batch whose rows carry different mixtures.
import Foundation
import Tensor
import XCTest
@testable import LLM
@testable import ParaTool


/// Weights with Σ_i w_i (α/r) B_i A_i added to every adapted FFN linear, computed by plain loops.
final class MergedWeights: WeightSource, @unchecked Sendable {
    let base: WeightSource
    let mixture: Mixture
    init(base: WeightSource, mixture: Mixture) {
        self.base = base
        self.mixture = mixture
    }
    func shape(of n: String) -> [Int]? { base.shape(of: n) }
    func load(_ n: String) throws -> FloatBuffer {
        let b = try base.load(n)
        let parts = n.split(separator: ".")
        guard parts.count == 6, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]),
              let projection = FFNProjection(rawValue: String(parts[4])) else { return b }
        var w = b.toArray()
        let cols = base.shape(of: n)![1]
        for (adapter, weight) in mixture.components {
            guard let pair = adapter.pair(layer: layer, projection: projection) else { continue }
            let a = pair.a, b = pair.b  // float32 values (a copy for bfloat16 pairs: taken once)
            for o in 0..<b.rows {
                for i in 0..<a.cols {
                    var d: Float = 0
                    for k in 0..<pair.rank { d += b[o, k] * a[k, i] }
                    w[o * cols + i] += weight * adapter.scale * d
                }
            }
        }
        return FloatBuffer(w)
    }
}

final class FusedForwardTests: XCTestCase {
    func qwen2() throws -> (ModelConfig, SafetensorsWeights, LlamaModel) {
        let dir = MethodFixtures.hfTiny.appendingPathComponent("qwen2")
        let config = try ModelConfig(huggingFaceJSON: Data(contentsOf: dir.appendingPathComponent("config.json")))
        let weights = try SafetensorsWeights(directory: dir)
        return (config, weights, try LlamaModel(config: config, weights: weights))
    }

    func fixtureAdapters() throws -> [ToolAdapter] {
        try (0..<3).map { try ToolAdapter.load(peftDirectory: MethodFixtures.hfTiny.appendingPathComponent("adapters/tool_\($0)")) }
    }

    func logits(_ model: LlamaModel, _ ids: [Int], _ mixture: Mixture) -> [Float] {
        let runner = Transformer(model: model)
        let branches = AdapterMixture()
        branches.mixtures = [mixture]
        runner.branches = branches
        return runner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [KVCache(config: model.config)],
                              logits: .all).logits.toArray()
    }

    func maxDiff(_ a: [Float], _ b: [Float]) -> Float {
        XCTAssertEqual(a.count, b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
    }

    /// The logits of `ids` under the base weights with `mixture` merged in by plain loops.
    func mergedLogits(_ config: ModelConfig, _ weights: WeightSource, _ mixture: Mixture, _ ids: [Int]) throws -> [Float] {
        logits(try LlamaModel(config: config, weights: MergedWeights(base: weights, mixture: mixture)), ids, .none)
    }

    /// Prefills `prompts` as one batch, sequence k under `mixtures[k]`, checks every position's
    /// logits against merged weights, and returns the caches.
    func assertPrefillMatchesMergedWeights(_ runner: Transformer, _ branches: AdapterMixture, _ mixtures: [Mixture], _ prompts: [[Int]],
                                           _ config: ModelConfig, _ weights: WeightSource, _ name: String) throws -> [KVCache] {
        branches.mixtures = mixtures
        let caches = prompts.map { _ in KVCache(config: config) }
        let out = runner.forward(prompts.enumerated().map { BatchSegment(sequence: $0.offset, tokens: $0.element) },
                                 caches: caches, logits: .all)
        var row = 0
        for (k, p) in prompts.enumerated() {
            let got = (0..<p.count).flatMap { out.logits.row(row + $0) }
            XCTAssertLessThanOrEqual(maxDiff(got, try mergedLogits(config, weights, mixtures[k], p)), 1e-4, "\(name), prefill of segment \(k)")
            row += p.count
        }
        return caches
    }

    /// One decode step of every sequence (one row each, under `mixtures`) after the prompts in
    /// `caches`, checked against merged weights.
    func assertStepMatchesMergedWeights(_ runner: Transformer, _ branches: AdapterMixture, _ mixtures: [Mixture], _ prompts: [[Int]],
                                        caches: [KVCache], _ config: ModelConfig, _ weights: WeightSource, _ name: String) throws {
        branches.mixtures = mixtures
        let next = prompts.indices.map { 7 + $0 }
        let step = runner.forward(next.enumerated().map { BatchSegment(sequence: $0.offset, tokens: [$0.element]) }, caches: caches)
        for (k, p) in prompts.enumerated() {
            let expected = Array(try mergedLogits(config, weights, mixtures[k], p + [next[k]]).suffix(config.vocabSize))
            XCTAssertLessThanOrEqual(maxDiff(step.logits.row(k), expected), 1e-4, "\(name), decode step of segment \(k)")
        }
    }

    func testSingleAdaptersAndMixtureMatchPEFT() throws {
        let (_, _, model) = try qwen2()
        let json = try MethodFixtures.expected()["adapters"] as! [String: Any]
        let tensors = try MethodFixtures.tensors()
        let ids = (json["ids"] as! [NSNumber]).map(\.intValue)
        let adapters = try fixtureAdapters()
        XCTAssertEqual(adapters[0].scale, (json["scale"] as! NSNumber).floatValue)
        let single = json["single"] as! [String]
        for (k, name) in single.enumerated() {
            let d = maxDiff(logits(model, ids, Mixture([(adapters[k], 1)])), try tensors.load(name).toArray())
            XCTAssertLessThanOrEqual(d, 1e-4, "adapter \(k) alone: max |Δ| \(d)")
        }
        let weights = (json["weights"] as! [NSNumber]).map(\.floatValue)
        let mixed = logits(model, ids, Mixture(zip(adapters, weights).map { ($0, $1) }))
        let d = maxDiff(mixed, try tensors.load(json["mixture_logits"] as! String).toArray())
        XCTAssertLessThanOrEqual(d, 1e-4, "mixture: max |Δ| \(d)")
        // And the adapters matter: the base model's logits are far from the mixture's.
        XCTAssertGreaterThan(maxDiff(logits(model, ids, .none), mixed), 1e-2)

        // The same prompt six times in one batch is enough rows for the mixture to go through the
        // stacked prefill (every segment carries the same adapters, in either order).
        let runner = Transformer(model: model)
        let branches = AdapterMixture()
        let components = zip(adapters, weights).map { ($0, $1) }
        let copies = (AdapterMixture.rowsWorthStacking + ids.count - 1) / ids.count
        branches.mixtures = (0..<copies).map { Mixture($0 % 2 == 0 ? components : components.reversed()) }
        runner.branches = branches
        let out = runner.forward((0..<copies).map { BatchSegment(sequence: $0, tokens: ids) },
                                 caches: (0..<copies).map { _ in KVCache(config: model.config) }, logits: .all)
        let expected = try tensors.load(json["mixture_logits"] as! String).toArray()
        for k in 0..<copies {
            let got = (0..<ids.count).flatMap { out.logits.row(k * ids.count + $0) }
            XCTAssertLessThanOrEqual(maxDiff(got, expected), 1e-4, "mixture, stacked prefill, segment \(k)")
        }
    }

    /// When sets are stacked: a short prefill stacks a set only when it recurs, a long one at first
    /// sight, a set over the budget never, and the cache keeps within its budget.
    func testStackingPolicy() throws {
        let (config, _, model) = try qwen2()
        let a = try fixtureAdapters()
        let branches = AdapterMixture()
        let runner = Transformer(model: model)
        runner.branches = branches
        func prefill(_ mixture: Mixture, rows: Int) {
            branches.mixtures = [mixture]
            _ = runner.forward([BatchSegment(sequence: 0, tokens: (0..<rows).map { 3 + $0 % 50 })], caches: [KVCache(config: config)])
        }
        let short = Linear.maxMatVecRows + 4, long = AdapterMixture.rowsWorthStacking
        prefill(Mixture([(a[0], 0.5), (a[1], 0.5)]), rows: short)
        XCTAssertEqual(branches.stackedSetCount, 0, "a new set on a short prompt is not copied")
        prefill(Mixture([(a[0], 0.2), (a[1], 0.8)]), rows: short)
        XCTAssertEqual(branches.stackedSetCount, 1, "the same set again is stacked")
        prefill(Mixture([(a[2], 1)]), rows: long)
        XCTAssertEqual(branches.stackedSetCount, 2, "a new set on a long prompt is stacked at once")
        let oneSet = AdapterStack.bytes(of: [a[2]])
        branches.stackCacheBytes = oneSet
        XCTAssertEqual(branches.stackedSetCount, 1, "a smaller budget drops the least recently used sets")
        prefill(Mixture([(a[0], 0.5), (a[1], 0.3), (a[2], 0.2)]), rows: long)
        XCTAssertEqual(branches.stackedSetCount, 1, "a set over the budget is not stacked")
        branches.stackCacheBytes = 0
        XCTAssertEqual(branches.stackedSetCount, 0)
    }

    /// Every branch path against merged weights, on batches of enough rows to stack a new set:
    /// segments sharing one adapter set with their own weights and orders (stacked),
    /// segments with different sets (grouped by adapter, gathered), a decode step of several rows
    /// sharing a set, a set found again in the stack cache, and stacking turned off.
    func testEveryBranchPathEqualsMergedWeights() throws {
        try assertEveryBranchPathEqualsMergedWeights(try fixtureAdapters())
    }

    /// The same paths with the adapters stored as bfloat16 (as the store publishes them): decode
    /// reads A and B in place (BF16 rows, B's eight at a time), prefill expands them per tile or
    /// into the stack; the reference merges the BF16 values with plain loops.
    func testBFloat16AdaptersOnEveryBranchPathEqualMergedWeights() throws {
        let float = try fixtureAdapters()
        let compact = float.map { $0.converted(to: .bfloat16) }
        for (f, c) in zip(float, compact) {
            XCTAssertEqual(c.format, .bfloat16)
            XCTAssertEqual(c.residentBytes * 2, f.residentBytes, "half the bytes")
            let pair = c.pair(layer: 0, projection: .gate)!, exact = f.pair(layer: 0, projection: .gate)!
            let values = pair.a.toArray(), originals = exact.a.toArray()
            XCTAssertNotEqual(values, originals, "rounded")
            for (v, o) in zip(values, originals) { XCTAssertEqual(v, o, accuracy: abs(o) / 256 + 1e-30) }
        }
        try assertEveryBranchPathEqualsMergedWeights(compact)
    }

    func assertEveryBranchPathEqualsMergedWeights(_ a: [ToolAdapter]) throws {
        let (config, weights, model) = try qwen2()
        let sharedSet = [Mixture([(a[0], 0.5), (a[1], 0.3), (a[2], 0.2)]), Mixture([(a[2], -0.4), (a[0], 1.1), (a[1], 0.25)])]
        let differentSets = [Mixture([(a[0], 0.6), (a[2], 0.4)]), Mixture.none, Mixture([(a[1], 0.9)]), Mixture([(a[2], 0.3), (a[1], 0.7)])]
        let pairSet = [Mixture([(a[1], 0.5), (a[0], 0.5)])]
        var seed: UInt64 = 5
        func prompt(_ n: Int) -> [Int] {
            (0..<n).map { _ in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return 3 + Int(seed >> 33) % (config.vocabSize - 3)
            }
        }
        let branches = AdapterMixture()
        let runner = Transformer(model: model)
        runner.branches = branches
        let cases: [(String, [Mixture], cacheBytes: Int)] = [
            ("shared set", sharedSet, 1 << 20), ("different sets", differentSets, 1 << 20), ("one segment", pairSet, 1 << 20),
            ("shared set again", sharedSet, 1 << 20), ("shared set, stacking off", sharedSet, 0)]
        for (name, mixtures, cacheBytes) in cases {
            branches.stackCacheBytes = cacheBytes
            let prompts = mixtures.indices.map { prompt(AdapterMixture.rowsWorthStacking + 6 - 3 * $0) }
            let caches = try assertPrefillMatchesMergedWeights(runner, branches, mixtures, prompts, config, weights, name)
            try assertStepMatchesMergedWeights(runner, branches, mixtures, prompts, caches: caches, config, weights, name)
        }
    }

    /// Four prompts in one batch: no adapter, one adapter, the fixture mixture, and a mixture that
    /// shares adapters with the third (so groups span non-adjacent segments and are gathered).
    func testBatchWithDifferentMixturesEqualsMergedWeights() throws {
        let (config, weights, model) = try qwen2()
        let a = try fixtureAdapters()
        let mixtures = [Mixture.none, Mixture([(a[1], 0.7)]), Mixture([(a[0], 0.5), (a[1], 0.3), (a[2], 0.2)]),
                        Mixture([(a[2], -0.4), (a[0], 1.1)])]
        let prompts = [[5, 6, 7], [100, 101, 102, 103, 104], [300, 12], [42, 43, 44, 45]]
        let runner = Transformer(model: model)
        let branches = AdapterMixture()
        runner.branches = branches
        let caches = try assertPrefillMatchesMergedWeights(runner, branches, mixtures, prompts, config, weights, "different mixtures")
        // One sequence alone decoding a step (the single-row branch path) matches too.
        let solo = KVCache(config: config)
        branches.mixtures = [mixtures[2]]
        _ = runner.forward([BatchSegment(sequence: 0, tokens: prompts[2])], caches: [solo])
        let soloStep = runner.forward([BatchSegment(sequence: 0, tokens: [77])], caches: [solo])
        let expectedSolo = Array(try mergedLogits(config, weights, mixtures[2], prompts[2] + [77]).suffix(config.vocabSize))
        XCTAssertLessThanOrEqual(maxDiff(soloStep.logits.row(0), expectedSolo), 1e-4, "single-sequence decode step")
        // A decode step for all four with their mixtures continues to match (one row per segment).
        try assertStepMatchesMergedWeights(runner, branches, mixtures, prompts, caches: caches, config, weights, "different mixtures")
    }
}
