// The engine end to end on the tiny Qwen2 fixture with PEFT's adapters as three tools: selection
// per mode, per-request mixtures inside one batch (against weights merged by plain loops),
// versions and FLOPs in the response, and clear errors for bad requests.
import Foundation
import Tensor
import XCTest
@testable import LLM
@testable import ParaTool

final class EngineTests: XCTestCase {
    func setUpEngine(constrained: Bool = true) throws -> (ToolCallEngine, [ToolAdapter], LanguageModel) {
        try Self.makeEngine(constrained: constrained)
    }

    /// The tiny model, PEFT's three adapters as three tools, and a random gate.
    static func makeEngine(constrained: Bool = true, answerEnd: AnswerEnd = .model) throws -> (ToolCallEngine, [ToolAdapter], LanguageModel) {
        let lm = try LanguageModel.load(path: MethodFixtures.hfTiny.appendingPathComponent("qwen2").path)
        let adapters = try (0..<3).map {
            try ToolAdapter.load(peftDirectory: MethodFixtures.hfTiny.appendingPathComponent("adapters/tool_\($0)"))
        }
        let catalogue = ToolCatalogue([
            ToolSpec(name: "get_weather", description: "Current weather for a city"),
            ToolSpec(name: "book_flight", description: "Book a flight between two airports"),
            ToolSpec(name: "convert_currency", description: "Convert an amount between currencies"),
        ])
        var table = [String: (adapter: ToolAdapter, version: String)]()
        for (i, name) in catalogue.names.enumerated() { table[name] = (adapters[i], "v00000\(i + 1)") }
        let provider = InMemoryAdapters(table)
        let gate = GateNetwork(config: GateConfig(dimension: lm.model.config.hiddenSize, hidden: [32, 32]), seed: 5)
        return (try ToolCallEngine(model: lm, catalogue: catalogue, adapters: provider, gate: gate, constrained: constrained,
                                   answerEnd: answerEnd), adapters, lm)
    }

    /// Adapters that record the schema they were trained on.
    final class SchemaRecordingAdapters: AdapterProvider {
        let table: [String: (adapter: ToolAdapter, version: String, schema: String)]
        init(_ table: [String: (adapter: ToolAdapter, version: String, schema: String)]) { self.table = table }
        func adapter(for tool: String) throws -> (adapter: ToolAdapter, version: String)? { table[tool].map { ($0.adapter, $0.version) } }
        func schemaFingerprint(of tool: String) throws -> String? { table[tool]?.schema }
    }

    /// An adapter trained for another schema of its tool is never served: without the document
    /// fallback the request is refused naming the tool, with it the request is answered exactly as
    /// Context+Docs would answer it; a current adapter still serves.
    func testAStaleAdapterIsNeverServed() throws {
        let (full, adapters, lm) = try setUpEngine()
        let specs = full.catalogue.tools
        let changed = ToolSpec(name: "get_weather", description: specs[0].description,
                               parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])
        // get_weather's adapter was trained before its schema gained `city`.
        let provider = SchemaRecordingAdapters([
            "get_weather": (adapters[0], "v000001", specs[0].schemaFingerprint),
            "book_flight": (adapters[1], "v000002", specs[1].schemaFingerprint),
        ])
        let catalogue = ToolCatalogue([changed, specs[1]])
        let gate = GateNetwork(config: GateConfig(dimension: lm.model.config.hiddenSize, hidden: [32, 32]), seed: 5)
        let strict = try ToolCallEngine(model: lm, catalogue: catalogue, adapters: provider, gate: gate)
        XCTAssertEqual(try strict.staleTools(catalogue.names), ["get_weather"])
        let stale = ToolCallRequest(id: "s", query: "Weather in Oslo?", candidates: ["get_weather"], maxNewTokens: 12)
        XCTAssertThrowsError(try strict.run([stale])) { error in
            guard case EngineError.staleAdapters(let tools) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(tools, ["get_weather"])
        }
        let current = ToolCallRequest(id: "c", query: "Fly me to Rome", candidates: ["book_flight"], maxNewTokens: 12)
        XCTAssertEqual(try strict.run([current])[0].weights.first?.adapterVersion, "v000002")

        let fallback = try ToolCallEngine(model: lm, catalogue: catalogue, adapters: provider, gate: gate, documentFallback: true)
        let served = try fallback.run([stale])[0]
        XCTAssertEqual(served.servedMode, .contextDocs)
        var docs = stale
        docs.mode = .contextDocs
        XCTAssertEqual(served.text, try fallback.run([docs])[0].text)
        XCTAssertTrue(served.weights.allSatisfy { $0.adapterVersion == nil || $0.weight == 0 })
    }

    /// With `documentFallback`, a request whose candidates all have adapters is served as asked;
    /// one with a candidate lacking an adapter, or needing a gate the engine lacks, is served
    /// exactly as the same request in Context+Docs mode would be.
    func testDocumentFallbackServesToolsWithoutAdaptersWithTheirDocuments() throws {
        let (full, adapters, lm) = try setUpEngine()
        let partial = InMemoryAdapters(["get_weather": (adapters[0], "v000001"), "book_flight": (adapters[1], "v000002")])
        let gate = GateNetwork(config: GateConfig(dimension: lm.model.config.hiddenSize, hidden: [32, 32]), seed: 5)
        let engine = try ToolCallEngine(model: lm, catalogue: full.catalogue, adapters: partial, gate: gate, documentFallback: true)
        let covered = ToolCallRequest(id: "covered", query: "Weather in Paris?", candidates: ["get_weather", "book_flight"], maxNewTokens: 6)
        var uncovered = covered
        uncovered.id = "uncovered"
        uncovered.candidates = ["get_weather", "convert_currency"]
        var docs = uncovered
        docs.id = "docs"
        docs.mode = .contextDocs
        let out = try engine.run([covered, uncovered, docs])
        XCTAssertEqual(out.map(\.servedMode), [.paratool, .contextDocs, .contextDocs])
        XCTAssertGreaterThan(out[0].flops.lora, 0)
        XCTAssertEqual(out[1].flops.lora, 0)
        XCTAssertEqual(out[1].promptTokens, out[2].promptTokens)
        XCTAssertEqual(out[1].text, out[2].text)
        // validate sees the served format: the documents' prompt is over the tiny model's context.
        XCTAssertLessThan(try engine.validate(covered).promptTokens, 256)
        XCTAssertThrowsError(try engine.validate(uncovered)) { error in
            guard case EngineError.promptTooLong(_, let tokens, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(tokens, out[2].promptTokens)
        }
        // The covered request's answer is the one an engine without the fallback gives.
        XCTAssertEqual(try full.run([covered])[0].text, out[0].text)

        // No gate: the gate modes fall back (and fail without the fallback).
        let gateless = try ToolCallEngine(model: lm, catalogue: full.catalogue, adapters: full.adapters, gate: nil)
        XCTAssertThrowsError(try gateless.run([covered]))
        let gatelessFallback = try ToolCallEngine(model: lm, catalogue: full.catalogue, adapters: full.adapters, gate: nil,
                                                  documentFallback: true)
        XCTAssertEqual(try gatelessFallback.run([covered])[0].servedMode, .contextDocs)
        var average = covered
        average.mode = .average
        XCTAssertEqual(try gatelessFallback.run([average])[0].servedMode, .average, "equal weights need no gate")
    }

    /// A request the engine has seen (same candidates, limit and choice) reuses its compiled call
    /// grammar; the answer is the same as with the grammar compiled anew.
    func testRepeatedRequestsReuseTheCompiledGrammar() throws {
        let (engine, _, _) = try setUpEngine()
        let request = ToolCallRequest(id: "a", query: "Weather in Paris?", candidates: ["get_weather", "book_flight"], maxNewTokens: 6, mode: .average)
        let first = try engine.run([request])[0].text
        var other = request
        other.id = "b"
        XCTAssertEqual(try engine.run([request, other]).map(\.text), [first, first])
        XCTAssertEqual([engine.grammars.misses, engine.grammars.hits], [1, 2])
        other.candidates = ["book_flight"]
        _ = try engine.run([other])
        XCTAssertEqual(engine.grammars.misses, 2)
    }

    func testModesWeightsVersionsAndFlops() throws {
        let (engine, _, lm) = try setUpEngine()
        let base = ToolCallRequest(id: "r", query: "Weather in Paris?", maxNewTokens: 6)
        var requests = [SelectionMode]([.paratool, .average, .top1, .oracle, .embsim, .contextDocs]).map { mode -> ToolCallRequest in
            var r = base
            r.id = mode.rawValue
            r.mode = mode
            r.goldTool = "book_flight"
            return r
        }
        requests[0].topN = 2
        let out = try engine.run(requests)
        XCTAssertEqual(out.map(\.id), requests.map(\.id))
        let byMode = Dictionary(uniqueKeysWithValues: out.map { ($0.id, $0) })
        let p = byMode["paratool"]!
        XCTAssertEqual(p.weights.map(\.tool), ["get_weather", "book_flight", "convert_currency"])
        XCTAssertEqual(p.weights.reduce(0) { $0 + $1.weight }, 1, accuracy: 1e-5)
        XCTAssertEqual(p.weights.filter { $0.weight > 0 }.count, 2, "top-2")
        XCTAssertEqual(Set(p.weights.filter { $0.weight > 0 }.compactMap(\.adapterVersion)).count, 2)
        XCTAssertEqual(byMode["average"]!.weights.map(\.weight), [Float](repeating: Float(1.0 / 3.0), count: 3))
        XCTAssertEqual(byMode["top1"]!.weights.filter { $0.weight == 1 }.count, 1)
        XCTAssertEqual(byMode["oracle"]!.weights.map(\.weight), [0, 1, 0])
        XCTAssertEqual(byMode["oracle"]!.weights[1].adapterVersion, "v000002")
        XCTAssertNil(byMode["oracle"]!.weights[0].adapterVersion, "zero-weight tools load no adapter")
        XCTAssertEqual(byMode["context-docs"]!.flops.lora, 0)
        // FLOPs: the counter's terms for the response's own token counts.
        let counter = FlopsCounter(config: lm.model.config)
        let queryTokens = lm.tokenizer.encode("Weather in Paris?").count
        XCTAssertEqual(p.flops.lora, counter.lora(tokens: p.promptTokens + p.generatedTokens - 1, adapters: 2, rank: 4))
        XCTAssertEqual(p.flops.encoder, counter.encoder(tokens: queryTokens))
        XCTAssertEqual(p.flops.gate, counter.gate(candidates: 3, layers: [256, 32, 32, 1]))
        // The Context+Docs prompt is longer, so its equivalent costs more than the base of this one.
        XCTAssertGreaterThan(byMode["context-docs"]!.promptTokens, p.promptTokens)
        XCTAssertGreaterThan(p.contextDocsFlops, p.flops.baseLinear + p.flops.attention)
    }

    /// The gate's no-call candidate decides between calls and text under `auto`: when it outweighs
    /// every tool the answer is the base model's text (no adapter fused, no call tag); when not,
    /// the answer is held to calls; `required` never weighs it, `none` answers in text.
    func testNoCallCandidateDecidesBetweenCallsAndText() throws {
        let (engine, _, lm) = try setUpEngine()
        let gate = try XCTUnwrap(engine.gate)
        let request = ToolCallRequest(id: "n", query: "Tell me a joke", maxNewTokens: 12)
        let encoder = ContextEncoder(model: lm.model, tokenizer: lm.tokenizer, pooling: gate.config.pooling, layers: gate.config.encoderLayers)
        let c = encoder.encode(request.query).vector
        let toolScores = engine.catalogue.names.map { gate.score(context: c, tool: gate.toolVectors[$0]!) }
        // Vectors for the no-call candidate that score above and below every tool.
        var rng = SeededGenerator(seed: 9)
        var above: [Float]?, below: [Float]?
        for _ in 0..<400 where above == nil || below == nil {
            let v = (0..<gate.config.dimension).map { _ in rng.uniform(-20, 20) }
            let score = gate.score(context: c, tool: v)
            if score > toolScores.max()! + 0.05 { above = above ?? v }
            if score < toolScores.min()! - 0.05 { below = below ?? v }
        }
        gate.setTool(GateNetwork.noToolName, vector: try XCTUnwrap(above))
        let text = try engine.run([request])[0]
        guard case .answer(let answer) = text.action else { return XCTFail("expected text, got \(text.action)") }
        XCTAssertFalse(answer.contains("<tool_call>"))
        XCTAssertTrue(text.weights.allSatisfy { $0.weight == 0 })
        XCTAssertEqual(text.flops.lora, 0)
        let expected = ToolSelection.softmax(toolScores + [gate.score(context: c, tool: above!)])
        XCTAssertEqual(try XCTUnwrap(text.noToolWeight), expected.last!, accuracy: 1e-5)

        gate.setTool(GateNetwork.noToolName, vector: try XCTUnwrap(below))
        var budgeted = request
        budgeted.maxNewTokens = 80
        let calls = try engine.run([budgeted])[0]
        XCTAssertFalse(calls.action.calls.isEmpty, "the gate chose tools: the answer is calls (\(calls.text))")
        XCTAssertGreaterThan(calls.flops.lora, 0)
        XCTAssertLessThan(try XCTUnwrap(calls.noToolWeight), 0.5)

        gate.setTool(GateNetwork.noToolName, vector: above!)
        var required = budgeted
        required.toolChoice = .required
        let forced = try engine.run([required])[0]
        XCTAssertNil(forced.noToolWeight)
        XCTAssertFalse(forced.action.calls.isEmpty)
        var none = request
        none.toolChoice = .none
        none.mode = .average
        let plain = try engine.run([none])[0]
        guard case .answer = plain.action else { return XCTFail("tool_choice none gave \(plain.action)") }
        XCTAssertEqual(plain.flops.lora, 0)
        var named = budgeted
        named.toolChoice = .tool("book_flight")
        let one = try engine.run([named])[0]
        XCTAssertEqual(Set(one.action.calls.map(\.name)), ["book_flight"])
        named.toolChoice = .tool("nope")
        XCTAssertThrowsError(try engine.run([named]))
    }

    /// With history, the gate reads the prompt's user message (query, then the history section),
    /// the text stage 2 trains it on, and the encoder's FLOPs count those tokens.
    func testGateReadsQueryAndHistory() throws {
        let (engine, _, lm) = try setUpEngine()
        var request = ToolCallRequest(id: "h", query: "Weather in Paris?", maxNewTokens: 2)
        request.history = [Step(calls: [ToolCall(name: "get_weather", arguments: .object(JSONObject([("city", .string("Paris"))])))],
                                observation: "18C")]
        let out = try XCTUnwrap(try engine.run([request]).first)
        let context = """
            Weather in Paris?

            [TOOLCALL HISTORY]
            Step 1:
            <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>
            Observation: 18C
            """
        let encoder = ContextEncoder(model: lm.model, tokenizer: lm.tokenizer, pooling: engine.gate!.config.pooling)
        let expected = try engine.gate!.weights(context: encoder.encode(context).vector, candidates: out.weights.map(\.tool))
        for (got, want) in zip(out.weights.map(\.weight), expected) { XCTAssertEqual(got, want, accuracy: 1e-6) }
        XCTAssertEqual(out.flops.encoder, FlopsCounter(config: lm.model.config).encoder(tokens: lm.tokenizer.encode(context).count))
        let queryOnly = try engine.gate!.weights(context: encoder.encode("Weather in Paris?").vector, candidates: out.weights.map(\.tool))
        XCTAssertNotEqual(out.weights.map(\.weight), queryOnly, "the history changes the context")
    }

    /// Each request of a batch generates what its own merged-weights model generates alone, with
    /// the call-grammar constraint (the same constraint on the merged model) and without it.
    func testBatchedRequestsEqualMergedModels() throws {
        try checkBatchedRequestsEqualMergedModels(constrained: true)
        try checkBatchedRequestsEqualMergedModels(constrained: false)
    }

    func checkBatchedRequestsEqualMergedModels(constrained: Bool) throws {
        let (engine, adapters, lm) = try setUpEngine(constrained: constrained)
        // Calls required, so the constrained answers begin a call (the tiny model would write text).
        let requests = [
            ToolCallRequest(id: "a", query: "Weather in Oslo?", maxNewTokens: 8, mode: .oracle, goldTool: "get_weather"),
            ToolCallRequest(id: "b", query: "Fly me to Rome", candidates: ["book_flight", "convert_currency"], maxNewTokens: 5, mode: .average),
            ToolCallRequest(id: "c", query: "100 USD in EUR", maxNewTokens: 7, mode: .oracle, goldTool: "convert_currency"),
        ].map { r -> ToolCallRequest in
            var r = r
            r.toolChoice = .required
            return r
        }
        let out = try engine.run(requests)
        let mixtures = [Mixture([(adapters[0], 1)]), Mixture([(adapters[1], 0.5), (adapters[2], 0.5)]), Mixture([(adapters[2], 1)])]
        let weights = try SafetensorsWeights(directory: MethodFixtures.hfTiny.appendingPathComponent("qwen2"))
        let stops = lm.tokenizer.stopTokenIds
        for (i, r) in requests.enumerated() {
            let merged = try LlamaModel(config: lm.model.config, weights: MergedWeights(base: weights, mixture: mixtures[i]))
            let candidates = r.candidates.isEmpty ? engine.catalogue.names : r.candidates
            let prompt = lm.tokenizer.encode(try engine.formatter.render(.documentFree(candidates: candidates),
                                                                         request: PromptRequest(query: r.query)))
            XCTAssertEqual(out[i].promptTokens, prompt.count)
            let constraint = constrained ? CallConstraint(grammar: CallGrammar(tools: try engine.catalogue.specs(named: candidates)),
                                                          vocabulary: TokenVocabulary(tokenizer: lm.tokenizer), budget: r.maxNewTokens) : nil
            let expected = Generator(transformer: Transformer(model: merged)).greedyBatch(
                prompts: [prompt], maxNewTokens: r.maxNewTokens, stopTokens: stops, constraints: [constraint])[0]
            if constrained {
                let text = lm.tokenizer.decode(expected)
                XCTAssertTrue(text.hasPrefix(ToolCall.openTag) || ToolCall.openTag.hasPrefix(text), "request \(r.id): \(text)")
            }
            XCTAssertEqual(out[i].generatedTokens, expected.count, "request \(r.id)")
            let content = expected.last.map { stops.contains($0) } == true ? Array(expected.dropLast()) : expected
            XCTAssertEqual(out[i].text, lm.tokenizer.decode(content), "request \(r.id)")
        }
    }

    func testBadRequestsAreClearErrors() throws {
        let (engine, _, _) = try setUpEngine()
        XCTAssertThrowsError(try engine.run([ToolCallRequest(id: "x", query: "q", candidates: ["nope"])])) {
            XCTAssertTrue("\($0)".contains("nope"))
        }
        XCTAssertThrowsError(try engine.run([ToolCallRequest(id: "y", query: "q", mode: .oracle)])) {
            XCTAssertTrue("\($0)".contains("oracle"))
        }
        XCTAssertThrowsError(try engine.run([ToolCallRequest(id: "z", query: "q", maxNewTokens: 0)]))
    }
}

final class EngineToolVectorTests: XCTestCase {
    /// A changed description re-initialises the tool's gate vector from the new text's encoding.
    func testReencodeToolsUsesTheNewDescription() throws {
        let lm = try LanguageModel.load(path: MethodFixtures.hfTiny.appendingPathComponent("qwen2").path)
        let gate = GateNetwork(config: GateConfig(dimension: lm.model.config.hiddenSize, hidden: [8]), seed: 1)
        let catalogue = ToolCatalogue([ToolSpec(name: "get_weather", description: "Current weather for a city")])
        let engine = try ToolCallEngine(model: lm, catalogue: catalogue, adapters: InMemoryAdapters(), gate: gate)
        let before = gate.toolVectors["get_weather"]!
        engine.reencodeTools([ToolSpec(name: "get_weather", description: "Seven-day forecast for a place")])
        let encoder = ContextEncoder(model: lm.model, tokenizer: lm.tokenizer, pooling: gate.config.pooling)
        XCTAssertEqual(gate.toolVectors["get_weather"]!, encoder.encode("get_weather: Seven-day forecast for a place").vector)
        XCTAssertNotEqual(gate.toolVectors["get_weather"]!, before)
    }
}

/// Answers decided call by call (`CallStepDecoder`): each call under its own mixture, against
/// plain greedy decoding of models with those adapters merged into their weights.
final class CallStepTests: XCTestCase {
    /// Oracle with two gold calls of different tools: the first call is what the first tool's
    /// merged model writes; the second is what the second tool's merged model writes after the
    /// prompt and the first call (read again from the start); then the answer ends.
    func testEachOracleCallIsDecidedUnderItsOwnTool() throws {
        let (engine, adapters, lm) = try EngineTests.makeEngine(answerEnd: .step)
        var request = ToolCallRequest(id: "two", query: "Weather in Oslo, then 5 USD in EUR", maxNewTokens: 120, mode: .oracle)
        request.goldTools = ["get_weather", "convert_currency"]
        request.toolChoice = .required
        let out = try engine.run([request])[0]

        let weights = try SafetensorsWeights(directory: MethodFixtures.hfTiny.appendingPathComponent("qwen2"))
        let specs = try engine.catalogue.specs(named: engine.catalogue.names)
        let vocabulary = TokenVocabulary(tokenizer: lm.tokenizer)
        let stops = lm.tokenizer.stopTokenIds.union(lm.model.config.eosTokenIds)
        let prompt = lm.tokenizer.encode(try engine.formatter.render(.documentFree(candidates: engine.catalogue.names),
                                                                     request: PromptRequest(query: request.query)))
        func merged(_ adapter: ToolAdapter) throws -> Generator {
            Generator(transformer: Transformer(model: try LlamaModel(config: lm.model.config,
                                                                     weights: MergedWeights(base: weights, mixture: Mixture([(adapter, 1)])))))
        }
        func firstCall(_ tokens: [Int]) -> String {
            let text = lm.tokenizer.decode(tokens.filter { !stops.contains($0) })
            guard let close = text.range(of: ToolCall.closeTag) else { return text }
            return String(text[..<close.upperBound])
        }
        // Call 1: the weather adapter alone, until its call closes.
        let one = CallConstraint(grammar: CallGrammar(tools: specs, maxCalls: 1, choice: .required), vocabulary: vocabulary, budget: 120)
        let first = firstCall(try merged(adapters[0]).greedyBatch(prompts: [prompt], maxNewTokens: 120, stopTokens: stops,
                                                                  constraints: [one])[0])
        XCTAssertTrue(first.hasSuffix(ToolCall.closeTag), first)
        // Call 2: the currency adapter alone, reading the prompt and the first call from the start.
        let answer = lm.tokenizer.encode(first + "\n")
        let two = try XCTUnwrap(CallConstraint(grammar: CallGrammar(tools: specs, choice: .required), vocabulary: vocabulary,
                                               budget: 120, answer: answer))
        let second = firstCall(try merged(adapters[2]).greedyBatch(prompts: [prompt + answer], maxNewTokens: 120 - answer.count,
                                                                   stopTokens: stops, constraints: [two])[0])
        XCTAssertEqual(out.text, first + "\n" + second)
        XCTAssertEqual(out.action.calls.count, 2)
        XCTAssertEqual(out.callWeights.map { $0.filter { $0.weight != 0 }.map(\.tool) }, [["get_weather"], ["convert_currency"]])
        XCTAssertEqual(out.rereadTokens, prompt.count + answer.count)
        let counter = FlopsCounter(config: lm.model.config)
        XCTAssertEqual(out.flops, counter.generation(prompt: prompt.count, generated: out.generatedTokens, adapters: 1, rank: adapters[0].rank)
                       + counter.reread(tokens: prompt.count + answer.count, adapters: 1, rank: adapters[0].rank))

        // One mixture for the whole answer (the ablation off): both gold tools at 0.5, nothing read again.
        let single = try ToolCallEngine(model: lm, catalogue: engine.catalogue, adapters: engine.adapters, gate: nil, callSteps: .off)
        let whole = try single.run([request])[0]
        XCTAssertEqual(whole.rereadTokens, 0)
        XCTAssertEqual(whole.callWeights.count, 1)
        XCTAssertEqual(whole.weights.filter { $0.weight != 0 }.map(\.weight), [0.5, 0.5])
    }

    /// With the model ending the answer: after the first call, the first tool's merged model
    /// either ends (the answer is that call) or goes on, and then the second call is the second
    /// tool's merged model's, read from the start after the first call.
    func testTheModelEndsOrGoesOnUnderTheLastCallsMixture() throws {
        let (engine, adapters, lm) = try EngineTests.makeEngine(answerEnd: .model)
        let weights = try SafetensorsWeights(directory: MethodFixtures.hfTiny.appendingPathComponent("qwen2"))
        let specs = try engine.catalogue.specs(named: engine.catalogue.names)
        let vocabulary = TokenVocabulary(tokenizer: lm.tokenizer)
        let stops = lm.tokenizer.stopTokenIds.union(lm.model.config.eosTokenIds)
        func merged(_ adapter: ToolAdapter) throws -> Generator {
            Generator(transformer: Transformer(model: try LlamaModel(config: lm.model.config,
                                                                     weights: MergedWeights(base: weights, mixture: Mixture([(adapter, 1)])))))
        }
        for query in ["Weather in Oslo, then 5 USD in EUR", "Book a flight to Rome and tell me the weather there", "Hi"] {
            var request = ToolCallRequest(id: "m", query: query, maxNewTokens: 120, mode: .oracle)
            request.goldTools = ["get_weather", "convert_currency"]
            request.toolChoice = .required
            let out = try engine.run([request])[0]
            let prompt = lm.tokenizer.encode(try engine.formatter.render(.documentFree(candidates: engine.catalogue.names),
                                                                         request: PromptRequest(query: query)))
            let constraint = CallConstraint(grammar: CallGrammar(tools: specs, choice: .required), vocabulary: vocabulary, budget: 120)
            let alone = lm.tokenizer.decode(try merged(adapters[0]).greedyBatch(prompts: [prompt], maxNewTokens: 120, stopTokens: stops,
                                                                                constraints: [constraint])[0].filter { !stops.contains($0) })
            let close = try XCTUnwrap(alone.range(of: ToolCall.closeTag), alone)
            let first = String(alone[..<close.upperBound])
            if alone == first {
                XCTAssertEqual(out.text, first, "the model ended after its call")
                XCTAssertEqual(out.rereadTokens, 0)
                continue
            }
            let answer = lm.tokenizer.encode(first + "\n")
            let two = try XCTUnwrap(CallConstraint(grammar: CallGrammar(tools: specs, choice: .required), vocabulary: vocabulary,
                                                   budget: 120, answer: answer))
            let rest = lm.tokenizer.decode(try merged(adapters[2]).greedyBatch(prompts: [prompt + answer], maxNewTokens: 120 - answer.count,
                                                                               stopTokens: stops, constraints: [two])[0])
            let second = String(rest[..<(try XCTUnwrap(rest.range(of: ToolCall.closeTag))).upperBound])
            XCTAssertEqual(out.text, first + "\n" + second, "the model went on: the second call is the second tool's")
            XCTAssertEqual(out.rereadTokens, prompt.count + answer.count)
        }
    }

    /// The same gold tool twice keeps the cache (the mixture does not change): nothing is read
    /// again, and the second call's weights are reported.
    func testSameToolAgainReadsNothingAgain() throws {
        let (engine, _, _) = try EngineTests.makeEngine(answerEnd: .step)
        var request = ToolCallRequest(id: "twice", query: "Weather in Oslo and in Rome", maxNewTokens: 120, mode: .oracle)
        request.goldTools = ["get_weather", "get_weather"]
        request.toolChoice = .required
        let out = try engine.run([request])[0]
        XCTAssertEqual(out.action.calls.count, 2, out.text)
        XCTAssertEqual(out.rereadTokens, 0)
        XCTAssertEqual(out.callWeights.count, 2)
    }

    /// In the gate's mode, the no-call candidate ends the answer after a call when it outweighs
    /// every tool on the query and the calls so far; when it never does, calls go on to the limit
    /// of calls, each decided by the gate on its own context.
    func testGateEndsTheAnswerWithTheNoCallCandidate() throws {
        let (engine, _, lm) = try EngineTests.makeEngine(answerEnd: .step)
        let gate = try XCTUnwrap(engine.gate)
        var request = ToolCallRequest(id: "g", query: "Weather in Oslo", maxNewTokens: 200)
        request.toolChoice = .required
        // No-call vectors above (then below) every tool on every context the steps can meet: the
        // tiny catalogue's tools take no arguments, so the calls so far are one of few texts.
        let encoder = ContextEncoder(model: lm.model, tokenizer: lm.tokenizer, pooling: gate.config.pooling, layers: gate.config.encoderLayers)
        let names = engine.catalogue.names
        let oneCall = names.map { [ToolCall(name: $0, arguments: .object(JSONObject()))] }
        let prefixes = [[]] + oneCall + oneCall.flatMap { a in oneCall.map { a + $0 } }
        let contexts = prefixes.map { encoder.encode(PromptFormatter.gateContext(PromptRequest(query: request.query), callsSoFar: $0)).vector }
        let toolScores = contexts.map { c in names.map { gate.score(context: c, tool: gate.toolVectors[$0]!) } }
        var rng = SeededGenerator(seed: 3)
        var above: (v: [Float], margin: Float)?, below: (v: [Float], margin: Float)?
        for _ in 0..<1500 {
            let v = (0..<gate.config.dimension).map { _ in rng.uniform(-20, 20) }
            let scores = contexts.map { gate.score(context: $0, tool: v) }
            let up = zip(scores, toolScores).map { $0 - $1.max()! }.min()!, down = zip(scores, toolScores).map { $1.min()! - $0 }.min()!
            if up > (above?.margin ?? 0) { above = (v, up) }
            if down > (below?.margin ?? 0) { below = (v, down) }
        }
        gate.setTool(GateNetwork.noToolName, vector: try XCTUnwrap(above).v)
        let ended = try engine.run([request])[0]
        XCTAssertEqual(ended.action.calls.count, 1, ended.text)
        XCTAssertEqual(ended.callWeights.count, 1)
        XCTAssertTrue(ended.text.hasSuffix(ToolCall.closeTag))
        XCTAssertGreaterThan(ended.flops.encoder, FlopsCounter(config: lm.model.config).encoder(tokens: lm.tokenizer.encode(request.query).count),
                             "the step's context was encoded")

        gate.setTool(GateNetwork.noToolName, vector: try XCTUnwrap(below).v)
        request.maxCalls = 3
        let more = try engine.run([request])[0]
        XCTAssertEqual(more.action.calls.count, 3, more.text)
        XCTAssertEqual(more.callWeights.count, 3)
    }
}
