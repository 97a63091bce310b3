// FLOPs counts against hand computations for the tiny fixture models, and the gate: its encoder
// against transformers' hidden states, its MLP against a double-precision loop written here,
// softmax/top-N and the baseline selectors.
import Foundation
import Tensor
import XCTest
@testable import LLM
@testable import ParaTool

final class FlopsAndGateTests: XCTestCase {
    func config(_ name: String) throws -> ModelConfig {
        try ModelConfig(huggingFaceJSON: Data(contentsOf: MethodFixtures.hfTiny.appendingPathComponent("\(name)/config.json")))
    }

    /// Qwen2 fixture: hidden 64, FFN 160, 2 layers, 4 heads × 16, 2 KV heads, vocab 600.
    func testQwen2FixtureCountsByHand() throws {
        let c = FlopsCounter(config: try config("qwen2"))
        // q 64·64 + k 64·32 + v 64·32 + o 64·64 + gate/up/down 3·64·160
        XCTAssertEqual(c.layerLinearParameters, 4096 + 2048 + 2048 + 4096 + 30720)
        // 7-token prompt, 12 generated: 7 + 11 processed tokens, 12 logits rows.
        let g = c.generation(prompt: 7, generated: 12, adapters: 3, rank: 4)
        XCTAssertEqual(g.baseLinear, 2 * 43008 * 2 * 18 + 2 * 600 * 64 * 12)
        // Visible keys: 1+…+7 = 28 in prefill, 8+…+18 = 143 in decode; 4 · layers · qDim each.
        XCTAssertEqual(g.attention, 4 * 2 * 64 * (28 + 143))
        // 3 linears × 2·r·(64+160) × 3 adapters × 2 layers × 18 tokens.
        XCTAssertEqual(g.lora, 3 * 2 * 4 * 224 * 3 * 2 * 18)
        XCTAssertEqual(g.total, g.baseLinear + g.attention + g.lora)
        XCTAssertEqual(c.encoder(tokens: 5), 2 * 43008 * 2 * 5 + 4 * 2 * 64 * 15)
        XCTAssertEqual(c.encoder(tokens: 5, layers: 1), 2 * 43008 * 1 * 5 + 4 * 1 * 64 * 15)
        XCTAssertEqual(GateConfig.defaultEncoderLayers(layerCount: 30), 24)
        XCTAssertEqual(GateConfig.defaultEncoderLayers(layerCount: 2), 2)
        XCTAssertEqual(GateConfig.defaultEncoderLayers(layerCount: 1), 1)
        // Gate MLP [256, 512, 512, 1] over 3 candidates: features 2·64, layers with bias, softmax 3.
        XCTAssertEqual(c.gate(candidates: 3, layers: [256, 512, 512, 1]),
                       3 * (128 + (2 * 256 * 512 + 512) + (2 * 512 * 512 + 512) + (2 * 512 + 1) + 3))
    }

    /// Llama fixture (tied head): hidden 48, FFN 128, 3 layers, 6 heads × 8, 3 KV heads.
    func testContextDocsEquivalentGrowsAsTheFormula() throws {
        let c = FlopsCounter(config: try config("llama"))
        XCTAssertEqual(c.layerLinearParameters, 48 * 48 + 2 * 48 * 24 + 48 * 48 + 3 * 48 * 128)
        let base = c.generation(prompt: 40, generated: 10).total
        for extra in [1, 25, 300] {
            let longer = c.generation(prompt: 40 + extra, generated: 10).total
            // Each extra prompt token: one more token through the decoder linears, and it is seen by
            // the queries at and after it: prefill adds Σ_{p=40}^{39+extra}(p+1), every decode
            // step (9 of them) sees `extra` more keys.
            let prefillVisible = (41 + 40 + extra) * extra / 2
            let expected = 2 * c.layerLinearParameters * 3 * extra + 4 * 3 * 48 * (prefillVisible + 9 * extra)
            XCTAssertEqual(longer - base, expected, "extra \(extra) tokens")
        }
    }

    /// With last-token pooling the encoder returns transformers' final-norm hidden state.
    func testEncoderLastTokenMatchesTransformers() throws {
        let lm = try LanguageModel.load(path: MethodFixtures.hfTiny.appendingPathComponent("qwen2").path)
        let json = try MethodFixtures.expected()
        let tensors = try MethodFixtures.tensors()
        let cases = (json["models"] as! [String: Any])["qwen2"] as! [[String: Any]]
        let encoder = ContextEncoder(model: lm.model, tokenizer: lm.tokenizer, pooling: .last)
        let mean = ContextEncoder(model: lm.model, tokenizer: lm.tokenizer, pooling: .mean)
        for c in cases {
            let text = c["text"] as! String
            let (v, n) = encoder.encode(text)
            XCTAssertEqual(n, (c["ids"] as! [Any]).count)
            let expected = try tensors.load(c["hidden_last"] as! String).toArray()
            XCTAssertLessThanOrEqual(zip(v, expected).map { abs($0 - $1) }.max()!, 1e-4)
            XCTAssertNotEqual(mean.encode(text).vector, v, "mean pooling differs from last-token pooling")
        }
    }

    /// A tool's document is encoded from its first tokens only: a description from the `tools`
    /// topic (up to --max-spec-bytes) was encoded whole by every engine build, so its length set
    /// the encoder's work and KV cache. Two descriptions that differ only past the bound now give
    /// the same vector.
    func testToolDocumentEncodingReadsABoundedPrefix() throws {
        let lm = try LanguageModel.load(path: MethodFixtures.hfTiny.appendingPathComponent("qwen2").path)
        let encoder = ContextEncoder(model: lm.model, tokenizer: lm.tokenizer, pooling: .mean)
        let description = String(repeating: "Current weather for a city, its wind and its rain. ", count: 120)
        XCTAssertGreaterThan(lm.tokenizer.encode(description).count, 1024)
        let gate = GateNetwork(config: GateConfig(dimension: encoder.dimension, hidden: [8]), seed: 1)
        gate.addTools([("long", description), ("longer", description + " And much more about snow, ice and hail.")], encoder: encoder)
        // The names differ too: compare each against its own name's encoding of the same prefix.
        let again = GateNetwork(config: GateConfig(dimension: encoder.dimension, hidden: [8]), seed: 1)
        again.addTools([("longer", description)], encoder: encoder)
        XCTAssertEqual(gate.toolVectors["longer"], again.toolVectors["longer"], "text past the bound is not read")
        XCTAssertNotEqual(gate.toolVectors["long"], gate.toolVectors["longer"])
    }

    /// The MLP in float64 with plain loops: the reference for one score.
    static func referenceScore(_ gate: GateNetwork, context c: [Float], tool d: [Float]) -> Double {
        var x = (c + d + zip(c, d).map { $0 * $1 } + zip(c, d).map { abs($0 - $1) }).map(Double.init)
        for (k, layer) in gate.layers.enumerated() {
            x = (0..<layer.outputs).map { o in
                var s = Double(layer.bias[o])
                for i in 0..<layer.inputs { s += Double(layer.weight[o * layer.inputs + i]) * x[i] }
                return k == gate.layers.count - 1 ? s : 0.5 * s * (1 + erf(s / 2.0.squareRoot()))
            }
        }
        return x[0]
    }

    func testGateMLPMatchesDoubleReference() throws {
        let gate = GateNetwork(config: GateConfig(dimension: 8, hidden: [16, 12]), seed: 3)
        var rng = SeededGenerator(seed: 9)
        let c = (0..<8).map { _ in rng.uniform(-1, 1) }
        let d = (0..<8).map { _ in rng.uniform(-1, 1) }
        XCTAssertEqual(Double(gate.score(context: c, tool: d)), Self.referenceScore(gate, context: c, tool: d), accuracy: 1e-5)
        XCTAssertEqual(gate.layers.map(\.inputs), [32, 16, 12])
        // Many tools at once (each layer one sgemm) give each tool's score.
        let tools = (0..<37).map { _ in (0..<8).map { _ in rng.uniform(-1, 1) } }
        for (got, tool) in zip(gate.scores(context: c, tools: tools), tools) {
            XCTAssertEqual(Double(got), Self.referenceScore(gate, context: c, tool: tool), accuracy: 1e-5)
        }
        XCTAssertEqual(gate.scores(context: c, tools: []), [])
    }

    /// Over a catalogue larger than the shortlist, the MLP weighs only the tools whose vectors are
    /// most similar to the context; the rest weigh 0. Without the shortlist every tool is weighed.
    func testLargeCandidateSetsAreShortlistedByToolVectors() throws {
        let lm = try LanguageModel.load(path: MethodFixtures.hfTiny.appendingPathComponent("qwen2").path)
        let dimension = lm.model.config.hiddenSize
        let catalogue = ToolCatalogue((0..<40).map { ToolSpec(name: "tool_\($0)", description: "Tool number \($0)") })
        let gate = GateNetwork(config: GateConfig(dimension: dimension, hidden: [16]), seed: 4)
        var rng = SeededGenerator(seed: 21)
        for name in catalogue.names { gate.setTool(name, vector: (0..<dimension).map { _ in rng.uniform(-1, 1) }) }
        let request = ToolCallRequest(id: "r", query: "Which tool?", maxNewTokens: 1, mode: .paratool)
        let narrow = try ToolCallEngine(model: lm, catalogue: catalogue, adapters: InMemoryAdapters(), gate: gate, selectionShortlist: 8)
        let weights = try narrow.mixture(for: request).weights
        // The reference: the context's encoding, cosine to each tool, the 8 most similar, the
        // float64 MLP's softmax over them.
        let encoder = ContextEncoder(model: lm.model, tokenizer: lm.tokenizer, pooling: gate.config.pooling, layers: gate.config.encoderLayers)
        let c = encoder.encode(PromptFormatter.gateContext(PromptRequest(query: request.query), callsSoFar: [])).vector
        func cosine(_ a: [Float], _ b: [Float]) -> Double {
            let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            return dot / (a.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot() * b.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot())
        }
        let nearest = Set(catalogue.names.sorted { cosine(c, gate.toolVectors[$0]!) > cosine(c, gate.toolVectors[$1]!) }.prefix(8))
        XCTAssertEqual(Set(weights.filter { $0.weight > 0 }.map(\.tool)).isSubset(of: nearest), true)
        let topN = gate.config.topN ?? nearest.count
        let scores = nearest.sorted().map { ($0, Self.referenceScore(gate, context: c, tool: gate.toolVectors[$0]!)) }
        let kept = scores.sorted { $0.1 > $1.1 }.prefix(topN)
        let z = kept.reduce(0.0) { $0 + exp($1.1 - kept.first!.1) }
        for w in weights {
            let expected = kept.first { $0.0 == w.tool }.map { exp($0.1 - kept.first!.1) / z } ?? 0
            XCTAssertEqual(Double(w.weight), expected, accuracy: 1e-4, w.tool)
        }
        let wide = try ToolCallEngine(model: lm, catalogue: catalogue, adapters: InMemoryAdapters(), gate: gate, selectionShortlist: 0)
        let all = try wide.mixture(for: request).weights
        XCTAssertEqual(all.count, 40)
        XCTAssertGreaterThan(all.filter { $0.weight > 0 }.count, 0)
        if topN >= 40 { XCTAssertEqual(all.filter { $0.weight > 0 }.count, 40) }
    }

    func testWeightsSoftmaxTopNAndSelectors() throws {
        let gate = GateNetwork(config: GateConfig(dimension: 4, hidden: [8]), seed: 1)
        for (i, name) in ["a", "b", "c", "d"].enumerated() {
            gate.setTool(name, vector: (0..<4).map { Float(($0 + i) % 3) - 1 })
        }
        let ctx: [Float] = [0.5, -0.2, 0.1, 0.9]
        let w = try gate.weights(context: ctx, candidates: ["a", "b", "c", "d"])
        XCTAssertEqual(w.reduce(0, +), 1, accuracy: 1e-6)
        let scores = ["a", "b", "c", "d"].map { gate.score(context: ctx, tool: gate.toolVectors[$0]!) }
        let e = scores.map { exp(Double($0)) }
        for i in 0..<4 { XCTAssertEqual(Double(w[i]), e[i] / e.reduce(0, +), accuracy: 1e-6) }
        let top2 = try gate.weights(context: ctx, candidates: ["a", "b", "c", "d"], topN: 2)
        XCTAssertEqual(top2.filter { $0 > 0 }.count, 2)
        XCTAssertEqual(top2.reduce(0, +), 1, accuracy: 1e-6)
        let kept = top2.indices.filter { top2[$0] > 0 }
        XCTAssertEqual(Set(kept), Set(w.indices.sorted { w[$0] > w[$1] }.prefix(2)))
        XCTAssertEqual(Double(top2[kept[0]] / top2[kept[1]]), Double(w[kept[0]] / w[kept[1]]), accuracy: 1e-5)
        XCTAssertThrowsError(try gate.weights(context: ctx, candidates: ["a", "zzz"])) { XCTAssertTrue("\($0)".contains("zzz")) }
        XCTAssertThrowsError(try gate.weights(context: ctx, candidates: []))
        XCTAssertEqual(ToolSelection.uniform(count: 4), [0.25, 0.25, 0.25, 0.25])
        XCTAssertEqual(ToolSelection.top1([0.1, 0.7, 0.7, 0.2]), [0, 1, 0, 0])
        XCTAssertEqual(ToolSelection.oracle(candidates: ["a", "b"], gold: "b"), [0, 1])
        XCTAssertEqual(ToolSelection.cosine([1, 0], [0, 2]), 0)
        XCTAssertEqual(ToolSelection.cosine([1, 1], [2, 2]), 1, accuracy: 1e-6)
    }
}

extension FlopsAndGateTests {
    func testGateSaveLoadRoundTrip() throws {
        let gate = GateNetwork(config: GateConfig(dimension: 6, hidden: [10], pooling: .last, topN: 2), seed: 11)
        gate.setTool("b_tool", vector: [1, 2, 3, 4, 5, 6])
        gate.setTool("a_tool", vector: [-1, 0, 1, 0, -1, 0.5])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gate-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try gate.save(to: dir)
        let loaded = try GateNetwork.load(from: dir)
        XCTAssertEqual(loaded.config, gate.config)
        XCTAssertEqual(loaded.toolVectors["a_tool"]!, gate.toolVectors["a_tool"]!)
        XCTAssertEqual(loaded.toolVectors["b_tool"]!, gate.toolVectors["b_tool"]!)
        for (a, b) in zip(loaded.layers, gate.layers) {
            XCTAssertEqual(a.weight.toArray(), b.weight.toArray())
            XCTAssertEqual(a.bias.toArray(), b.bias.toArray())
        }
        let ctx: [Float] = [0.3, -0.1, 0.2, 0.9, -0.5, 0]
        XCTAssertEqual(try loaded.weights(context: ctx, candidates: ["a_tool", "b_tool"]),
                       try gate.weights(context: ctx, candidates: ["a_tool", "b_tool"]))
        // A tampered config (wrong dimension) is a clear error naming the tensor.
        var json = try String(contentsOf: dir.appendingPathComponent("gate_config.json"), encoding: .utf8)
        json = json.replacingOccurrences(of: "\"dimension\" : 6", with: "\"dimension\" : 7")
        try json.write(to: dir.appendingPathComponent("gate_config.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try GateNetwork.load(from: dir)) { XCTAssertTrue("\($0)".contains("mlp.0.weight"), "\($0)") }
    }
}

extension FlopsAndGateTests {
    /// Gate files come from the `adapters` topic's announcements. A crafted config must be a
    /// clear error at load, never arithmetic overflow (`4 * dimension`) or a trap.
    func testCraftedGateConfigsAreClearErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gate-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let gate = GateNetwork(config: GateConfig(dimension: 6, hidden: [10]), seed: 11)
        gate.setTool("a_tool", vector: [1, 2, 3, 4, 5, 6])
        try gate.save(to: dir)
        let configURL = dir.appendingPathComponent(GateNetwork.configFileName)
        let original = try String(contentsOf: configURL, encoding: .utf8)
        for (from, to, expected) in [("\"dimension\" : 6", "\"dimension\" : 2305843009213693952", "dimension"),
                                     ("\"dimension\" : 6", "\"dimension\" : 0", "dimension"),
                                     ("\"dimension\" : 6", "\"dimension\" : -6", "dimension"),
                                     ("10\n", "-10\n", "hidden"),
                                     ("10\n", "4611686018427387904\n", "hidden")] {
            XCTAssertTrue(original.contains(from), original)
            try original.replacingOccurrences(of: from, with: to).write(to: configURL, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try GateNetwork.load(from: dir), to) { error in
                guard case GateError.invalidFile(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains(expected), message)
            }
        }
    }

    /// A gate whose dimension is not the encoder's is refused with a clear error when an engine
    /// is built with it (before, `setTool`'s precondition stopped the process).
    func testEngineRefusesAGateOfAnotherDimension() throws {
        let lm = try LanguageModel.load(path: MethodFixtures.hfTiny.appendingPathComponent("qwen2").path)
        let hidden = lm.model.config.hiddenSize
        let gate = GateNetwork(config: GateConfig(dimension: hidden + 1, hidden: [8]), seed: 1)
        XCTAssertThrowsError(try ToolCallEngine(model: lm, catalogue: ToolCatalogue([ToolSpec(name: "get_weather", description: "Weather")]),
                                                adapters: InMemoryAdapters(), gate: gate)) { error in
            XCTAssertTrue("\(error)".contains("dimension \(hidden + 1)") && "\(error)".contains("\(hidden)"), "\(error)")
        }
    }
}
