// The adapter generator (AdapterHypernetwork) and its training through the frozen base: the adapter
// it writes against the formula evaluated element by element in plain loops; an untrained generator
// writes its shared adapter exactly; the chained gradients against central finite differences of
// the loss through the tiny Llama fixture; save/load; a resumed training run ends where an
// uninterrupted one does, and training lowers its tools' loss.
import FixtureSupport
import Foundation
import Tensor
import XCTest
@testable import LLM
@testable import ParaTool
@testable import ParaToolTraining

final class AdapterHypernetworkTests: XCTestCase {
    static var tiny: URL { RepositoryFixtures.hfTiny }

    struct Setup {
        let model: LlamaModel
        let generator: AdapterHypernetwork
        let encodings: [[Float]]
    }

    /// A generator over a random rank-2 shared adapter of the tiny Llama, with random (non-zero)
    /// heads so every parameter carries gradient.
    func makeSetup(headBound: Float = 0.05) throws -> Setup {
        let model = try LlamaModel(huggingFaceDirectory: Self.tiny.appendingPathComponent("llama"))
        let c = model.config
        let shared = ToolAdapter.initialized(name: "shared", config: c, rank: 2, alpha: 4, seed: 3, randomB: true)
        var rng = SeededGenerator(seed: 11)
        let encodings = (0..<5).map { _ in (0..<6).map { _ in rng.uniform(-1, 1) } }
        let shape = AdapterHypernetworkShape(encodingWidth: 6, codeWidth: 4, layerEmbeddingWidth: 3, projectionEmbeddingWidth: 2,
                                             hiddenWidth: 5, layers: c.layerCount, rank: 2, alpha: 4, targets: FFNProjection.allCases,
                                             hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize)
        let generator = try AdapterHypernetwork(shared: shared, encodings: encodings, shape: shape,
                                                provenance: AdapterHypernetworkProvenance(version: "test", trainingTools: [], heldOutTools: [], shared: "random"),
                                                seed: 5)
        for h in generator.heads { h.write((0..<h.count).map { _ in rng.uniform(-headBound, headBound) }) }
        return Setup(model: model, generator: generator, encodings: encodings)
    }

    func testUntrainedGeneratorWritesItsSharedAdapter() throws {
        let model = try LlamaModel(huggingFaceDirectory: Self.tiny.appendingPathComponent("llama"))
        let c = model.config
        let shared = ToolAdapter.initialized(name: "shared", config: c, rank: 2, alpha: 4, seed: 3, randomB: true)
        let shape = AdapterHypernetworkShape(encodingWidth: 3, layers: c.layerCount, rank: 2, alpha: 4, targets: FFNProjection.allCases,
                                             hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize)
        let generator = try AdapterHypernetwork(shared: shared, encodings: [[1, 2, 3], [0, 1, 0]], shape: shape,
                                                provenance: AdapterHypernetworkProvenance(version: "v", trainingTools: [], heldOutTools: [], shared: "s"), seed: 1)
        let made = generator.generate(name: "new", encoding: [0.3, -2, 7])
        for l in 0..<c.layerCount {
            for p in FFNProjection.allCases {
                XCTAssertEqual(made.pair(layer: l, projection: p)!.a.toArray(), shared.pair(layer: l, projection: p)!.a.toArray())
                XCTAssertEqual(made.pair(layer: l, projection: p)!.b.toArray(), shared.pair(layer: l, projection: p)!.b.toArray())
            }
        }
        XCTAssertEqual(made.rank, 2)
        XCTAssertEqual(made.alpha, 4)
    }

    /// θ_{l,p}[i] = θ⁰_{l,p}[i] + Σ_j H_p[i, j] · relu(Σ_m W₂[j, m] v_m + b₂[j]), v = [z; e_l; e_p],
    /// z = tanh(W₁ x̂ + b₁), x̂ = (d − μ)/σ — written out in scalar loops over the stored parameters.
    func testAdapterMatchesTheFormulaElementByElement() throws {
        let setup = try makeSetup(headBound: 0.5)
        let g = setup.generator, s = g.shape
        let d: [Float] = [0.2, -0.4, 1.5, 0.0, -1.1, 0.7]
        let made = g.generate(name: "t", encoding: d)
        // μ and σ straight from the training encodings (population deviation).
        let n = Float(setup.encodings.count)
        let mean = (0..<6).map { i in setup.encodings.reduce(Float(0)) { $0 + $1[i] } / n }
        let sd = (0..<6).map { i in (setup.encodings.reduce(Float(0)) { $0 + ($1[i] - mean[i]) * ($1[i] - mean[i]) } / n).squareRoot() }
        let x = (0..<6).map { (d[$0] - mean[$0]) / sd[$0] }
        let z = (0..<s.codeWidth).map { t in tanh((0..<6).reduce(g.b1[t]) { $0 + g.w1[t * 6 + $1] * x[$1] }) }
        var checked = 0
        for (k, p) in s.projections.enumerated() {
            for l in [0, s.layers - 1] {
                let v = z + (0..<s.layerEmbeddingWidth).map { g.layerEmbeddings[l * s.layerEmbeddingWidth + $0] }
                    + (0..<s.projectionEmbeddingWidth).map { g.projectionEmbeddings[k * s.projectionEmbeddingWidth + $0] }
                let code = (0..<s.hiddenWidth).map { j in max(0, (0..<v.count).reduce(g.b2[j]) { $0 + g.w2[j * v.count + $1] * v[$1] }) }
                let (input, output) = s.sizes(p)
                let width = s.pairWidth(p)
                for i in [0, 7, s.rank * input - 1, s.rank * input, width - 1] {
                    let expected = g.shared[k][l * width + i] + (0..<s.hiddenWidth).reduce(Float(0)) { $0 + g.heads[k][i * s.hiddenWidth + $1] * code[$1] }
                    let pair = made.pair(layer: l, projection: p)!
                    let actual = i < s.rank * input ? pair.a[i / input, i % input] : pair.b[(i - s.rank * input) / s.rank, (i - s.rank * input) % s.rank]
                    XCTAssertEqual(actual, expected, accuracy: 1e-5 + 1e-5 * abs(expected), "\(p) layer \(l) element \(i)")
                    checked += 1
                }
                _ = output
            }
        }
        XCTAssertEqual(checked, 30)
    }

    func testChainedGradientsMatchFiniteDifferences() throws {
        let setup = try makeSetup()
        let g = setup.generator
        let ids = [5, 17, 42, 99, 3, 250, 7, 8]
        let d: [Float] = [0.5, -0.2, 0.9, -1.3, 0.1, 0.4]
        let backward = LoRABackward(model: setup.model)
        func loss() -> Float {
            backward.lossAndGradients(ids: ids, targets: 3, mixture: Mixture([(g.generate(name: "t", encoding: d), 1)])).loss
        }
        let activations = g.forward(d)
        let (_, adapterGradients) = backward.lossAndGradients(ids: ids, targets: 3, mixture: Mixture([(g.adapter(name: "t", activations: activations), 1)]))
        let gradients = HypernetworkGradients(like: g)
        g.accumulate(adapterGradients[0], activations: activations, into: gradients)
        let names = ["w1", "b1", "layer embeddings", "projection embeddings", "w2", "b2", "head gate", "head up", "head down"]
        var nonZero = 0, compared = 0
        for (b, buffer) in g.trainableBuffers.enumerated() {
            // Three probes per buffer: the first, the middle and the last element.
            for index in Set([0, buffer.count / 2, buffer.count - 1]).sorted() {
                let original = buffer[index]
                let h: Float = 1e-2
                buffer[index] = original + h
                let up = loss()
                buffer[index] = original - h
                let down = loss()
                buffer[index] = original
                let numeric = (up - down) / (2 * h)
                let analytic = gradients.buffers[b][index]
                XCTAssertEqual(analytic, numeric, accuracy: 2e-3 + 0.03 * abs(numeric), "\(names[b])[\(index)]")
                compared += 1
                if abs(numeric) > 1e-3 { nonZero += 1 }
            }
        }
        XCTAssertEqual(compared, 27)
        XCTAssertGreaterThanOrEqual(nonZero, 18, "most probed gradients should not be ~0")
    }

    func testSaveAndLoadWriteTheSameAdapter() throws {
        let setup = try makeSetup()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("generator-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        setup.generator.provenance.trainingTools = ["a", "b"]
        try setup.generator.save(to: url)
        let loaded = try AdapterHypernetwork(contentsOf: url)
        XCTAssertEqual(loaded.shape, setup.generator.shape)
        XCTAssertEqual(loaded.provenance, setup.generator.provenance)
        let d: [Float] = [1, 0, -1, 2, 0.5, 0.25]
        let a = setup.generator.generate(name: "t", encoding: d), b = loaded.generate(name: "t", encoding: d)
        for l in 0..<a.pairs.count {
            for p in FFNProjection.allCases {
                XCTAssertEqual(a.pair(layer: l, projection: p)!.a.toArray(), b.pair(layer: l, projection: p)!.a.toArray())
                XCTAssertEqual(a.pair(layer: l, projection: p)!.b.toArray(), b.pair(layer: l, projection: p)!.b.toArray())
            }
        }
        // A file that is not a generator is refused with a reason, not a crash.
        let other = FileManager.default.temporaryDirectory.appendingPathComponent("not-generator-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: other) }
        try SafetensorsWriter.write([SafetensorsTensor(name: "x", shape: [1], values: [1])], metadata: ["format": "something"], to: other)
        XCTAssertThrowsError(try AdapterHypernetwork(contentsOf: other)) { error in
            XCTAssertTrue("\(error)".contains("not an adapter generator"), "\(error)")
        }
    }

    /// The provider serves what the generator writes for each catalogue tool's document, nothing
    /// for other tools, and writes an evicted tool's adapter again alike.
    func testGeneratedAdaptersServeTheGeneratorsAdapterForEachTool() throws {
        let lm = try LanguageModel.load(path: Self.tiny.appendingPathComponent("llama").path)
        let c = lm.model.config
        let shape = AdapterHypernetworkShape(encodingWidth: c.hiddenSize, codeWidth: 4, hiddenWidth: 4, layers: c.layerCount, rank: 2, alpha: 4,
                                             targets: FFNProjection.allCases, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize)
        var rng = SeededGenerator(seed: 3)
        let generator = try AdapterHypernetwork(
            shared: ToolAdapter.initialized(name: "shared", config: c, rank: 2, alpha: 4, seed: 3, randomB: true),
            encodings: (0..<3).map { _ in (0..<c.hiddenSize).map { _ in rng.uniform(-1, 1) } }, shape: shape,
            provenance: AdapterHypernetworkProvenance(version: "g000007", trainingTools: [], heldOutTools: [], shared: "random"), seed: 1)
        for h in generator.heads { h.write((0..<h.count).map { _ in rng.uniform(-0.5, 0.5) }) }
        let tools = [ToolSpec(name: "get_weather", description: "Current weather for a city."),
                     ToolSpec(name: "set_timer", description: "Starts a countdown timer.")]
        let provider = try GeneratedAdapters(generator: generator, catalogue: ToolCatalogue(tools), model: lm.model, tokenizer: lm.tokenizer,
                                             threads: ComputeThreads(1), capacity: 1)
        let encoder = AdapterHypernetwork.documentEncoder(model: lm.model, tokenizer: lm.tokenizer, threads: ComputeThreads(1))
        func weights(_ a: ToolAdapter) -> [Float] { a.pairs.flatMap { l in FFNProjection.allCases.flatMap { l[$0]!.a.toArray() + l[$0]!.b.toArray() } } }
        var served = [[Float]]()
        for spec in tools {
            let got = try XCTUnwrap(try provider.adapter(for: spec.name))
            XCTAssertEqual(got.version, "generated-g000007")
            XCTAssertEqual(weights(got.adapter), weights(generator.generate(name: spec.name, encoding: AdapterHypernetwork.encoding(of: spec, encoder: encoder))))
            served.append(weights(got.adapter))
        }
        XCTAssertNotEqual(served[0], served[1], "two documents, two adapters")
        XCTAssertNil(try provider.adapter(for: "not_in_the_catalogue"))
        // Capacity 1: the first tool was dropped; asked again, it is written again, alike.
        XCTAssertEqual(weights(try XCTUnwrap(try provider.adapter(for: "get_weather")).adapter), served[0])
    }

    func trainingTools(_ setup: Setup) -> [HypernetworkTrainingTool] {
        [HypernetworkTrainingTool(name: "a", encoding: setup.encodings[0], sequences: [([5, 17, 42, 99, 3, 250, 7, 8], 3), ([9, 8, 7, 6, 5], 2)]),
         HypernetworkTrainingTool(name: "b", encoding: setup.encodings[1], sequences: [([1, 2, 3, 4, 5, 6], 2)]),
         HypernetworkTrainingTool(name: "c", encoding: setup.encodings[2], sequences: [([40, 41, 42, 43, 44, 45, 46], 4)])]
    }

    func testResumedTrainingEndsWhereAnUninterruptedRunDoes() throws {
        var config = HypernetworkTrainingConfig()
        config.steps = 6
        config.toolsPerStep = 2
        config.checkpointEvery = 3
        config.optimizer.warmupSteps = 0
        config.optimizer.learningRate = 1e-2
        let straight = try makeSetup()
        try HypernetworkTrainer(model: straight.model, config: config).train(straight.generator, tools: trainingTools(straight), progress: { _ in true })

        let root = FileManager.default.temporaryDirectory.appendingPathComponent("generator-ckpt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let interrupted = try makeSetup()
        let first = HypernetworkTrainer(model: interrupted.model, config: config)
        first.checkpoints = CheckpointDirectory(root: root)
        let finished = try first.train(interrupted.generator, tools: trainingTools(interrupted), progress: { $0.step < 3 })
        XCTAssertFalse(finished, "the handler stopped it after step 3")
        let resumed = try makeSetup()
        let second = HypernetworkTrainer(model: resumed.model, config: config)
        second.checkpoints = CheckpointDirectory(root: root)
        second.resume = true
        var steps = [Int]()
        XCTAssertTrue(try second.train(resumed.generator, tools: trainingTools(resumed), progress: { steps.append($0.step); return true }))
        XCTAssertEqual(steps, [4, 5, 6])
        for (a, b) in zip(straight.generator.trainableBuffers, resumed.generator.trainableBuffers) {
            XCTAssertEqual(a.toArray(), b.toArray())
        }
    }

    func testTrainingLowersItsToolsLoss() throws {
        let setup = try makeSetup(headBound: 0)
        let tools = trainingTools(setup)
        var config = HypernetworkTrainingConfig()
        config.steps = 30
        config.toolsPerStep = 3
        config.optimizer.warmupSteps = 0
        config.optimizer.learningRate = 1e-2
        let trainer = HypernetworkTrainer(model: setup.model, config: config)
        func losses() -> (generated: Float, shared: Float) {
            let shared = setup.generator.sharedAdapter(name: "shared")
            return (trainer.meanLoss(tools) { setup.generator.generate(name: $0.name, encoding: $0.encoding) }, trainer.meanLoss(tools) { _ in shared })
        }
        let before = losses()
        XCTAssertEqual(before.generated, before.shared, accuracy: 1e-6, "untrained, it writes θ⁰")
        try trainer.train(setup.generator, tools: tools, progress: { _ in true })
        let after = losses()
        XCTAssertEqual(after.shared, before.shared, accuracy: 1e-6, "θ⁰ is not trained")
        XCTAssertLessThan(after.generated, before.generated * 0.9, "30 steps on three tools should lower their loss by a tenth")
    }
}
