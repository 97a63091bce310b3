// The FFN extension point: branches added through `FFNBranches` act per batch row exactly like
// the same delta merged into the weights, and only on the rows they are given.
import Foundation
import Tensor
import FixtureSupport
import XCTest
@testable import LLM

/// A weight source that adds a delta to one tensor of another source (the "merged" reference).
private final class MergedWeights: WeightSource, @unchecked Sendable {
    let base: WeightSource
    let name: String
    let delta: [Float]
    init(base: WeightSource, name: String, delta: [Float]) {
        self.base = base
        self.name = name
        self.delta = delta
    }
    func shape(of n: String) -> [Int]? { base.shape(of: n) }
    func load(_ n: String) throws -> FloatBuffer {
        let b = try base.load(n)
        guard n == name else { return b }
        return FloatBuffer(zip(b.toArray(), delta).map { $0 + $1 })
    }
}

/// Adds `input · deltaᵀ` to one projection of one layer, on the rows of one segment.
private final class DeltaBranch: FFNBranches {
    let layer: Int, projection: FFNProjection, segment: Int
    let delta: MatrixView
    var calls = 0
    init(layer: Int, projection: FFNProjection, segment: Int, delta: MatrixView) {
        self.layer = layer
        self.projection = projection
        self.segment = segment
        self.delta = delta
    }
    func addBranches(layer: Int, projection: FFNProjection, input: MatrixView, output: MatrixView,
                     segments: [BatchSegment], rowRanges: [Range<Int>]) {
        calls += 1
        guard layer == self.layer, projection == self.projection else { return }
        let r = rowRanges[segment]
        BLAS.gemmABt(input.rows(r.lowerBound, r.count), delta, into: output.rows(r.lowerBound, r.count), beta: 1)
    }
}

final class FFNBranchTests: XCTestCase {
    func testBranchesEqualMergedWeightsPerRow() throws {
        let dir = RepositoryFixtures.hfTiny.appendingPathComponent("qwen2")
        let config = try ModelConfig(huggingFaceJSON: Data(contentsOf: dir.appendingPathComponent("config.json")))
        let weights = try SafetensorsWeights(directory: dir)
        let base = try LlamaModel(config: config, weights: weights)
        let prompts = [[5, 17, 42, 99, 3], [7, 8, 9], [100, 200, 300, 400]]

        for projection in FFNProjection.allCases {
            let name = "model.layers.1.mlp.\(projection.rawValue).weight"
            let shape = weights.shape(of: name)!
            var seed: UInt64 = 77
            let delta = (0..<(shape[0] * shape[1])).map { _ -> Float in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: seed >> 11) % 1000) / 10000
            }
            let merged = try LlamaModel(config: config, weights: MergedWeights(base: weights, name: name, delta: delta))
            let branch = DeltaBranch(layer: 1, projection: projection, segment: 1,
                                     delta: MatrixView(FloatBuffer(delta), rows: shape[0], cols: shape[1]))
            let runner = Transformer(model: base)
            runner.branches = branch
            let caches = prompts.map { _ in KVCache(config: config) }
            let out = runner.forward(prompts.enumerated().map { BatchSegment(sequence: $0.offset, tokens: $0.element) },
                                     caches: caches, logits: .all)
            XCTAssertEqual(branch.calls, 3 * config.layerCount)
            var row = 0
            for (k, p) in prompts.enumerated() {
                let reference = Transformer(model: k == 1 ? merged : base)
                let expected = reference.forward([BatchSegment(sequence: 0, tokens: p)], caches: [KVCache(config: config)],
                                                 logits: .all).logits.toArray()
                let got = (0..<p.count).flatMap { out.logits.row(row + $0) }
                let d = zip(got, expected).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(d, 1e-4, "\(projection) segment \(k): max |Δ| \(d)")
                row += p.count
            }
            // The delta is large enough to matter: the merged model differs from the base.
            let plain = Transformer(model: base).forward([BatchSegment(sequence: 0, tokens: prompts[1])],
                                                         caches: [KVCache(config: config)], logits: .all).logits.toArray()
            let changed = Transformer(model: merged).forward([BatchSegment(sequence: 0, tokens: prompts[1])],
                                                             caches: [KVCache(config: config)], logits: .all).logits.toArray()
            XCTAssertGreaterThan(zip(plain, changed).map { abs($0 - $1) }.max()!, 1e-2, "\(projection): delta too small to test")
        }
    }
}
