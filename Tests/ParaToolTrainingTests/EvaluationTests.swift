// BFCLEvaluation end to end on the tiny fixture model and a few BFCL `multiple` questions:
// every mode runs from a store of adapters for the questions' tools, writes BFCL result files
// with every question id in order, and reports FLOPs equal to FlopsCounter's formula for the
// recorded token counts. (The tiny model is untrained, so accuracy is not asserted.)
import FixtureSupport
import Foundation
import XCTest
@testable import LLM
@testable import ParaTool
@testable import ParaToolTraining

final class EvaluationTests: XCTestCase {
    /// Arguments no gold call asks for: absent from every gold call of the function, or
    /// acceptable only as omitted ("" alone); asked ones and calls of other functions count nothing.
    func testUnaskedArgumentsAreThoseTheGoldOmits() throws {
        let answer = try BFCLAnswer(line: """
            {"id": "q", "ground_truth": [{"get_weather": {"city": ["Paris"], "unit": [""], "days": ["", 3]}}, \
            {"get_weather": {"city": ["Rome"], "unit": ["", "celsius"]}}]}
            """)
        func call(_ name: String, _ arguments: [(String, JSONValue)]) -> ToolCall {
            ToolCall(name: name, arguments: .object(JSONObject(arguments)))
        }
        let calls = [
            call("get_weather", [("city", "Paris"), ("unit", "celsius"), ("days", .int(3))]),  // all asked by some gold call
            call("get_weather", [("city", "Rome"), ("country", "IT")]),                        // country: in no gold call
            call("get_time", [("zone", "CET")]),                                               // not a gold function
        ]
        XCTAssertEqual(BFCLEvaluation.unaskedArguments(calls: calls, answer: answer), 1)
        let onlyOmitted = try BFCLAnswer(line: #"{"id": "q", "ground_truth": [{"f": {"a": [1], "b": [""]}}]}"#)
        XCTAssertEqual(BFCLEvaluation.unaskedArguments(calls: [call("f", [("a", .int(1)), ("b", .int(2))])], answer: onlyOmitted), 1)
    }

    /// The first three BFCL `multiple` questions, their gold answers, the tiny Qwen2 model and a
    /// temporary directory removed after the test.
    func firstMultipleQuestions(directory: String) throws -> (URL, [BFCLQuestion], [BFCLAnswer], LanguageModel) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(directory)-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let bfcl = RepositoryFixtures.bfcl
        let questions = Array(try BFCLQuestion.load(file: bfcl.appendingPathComponent("BFCL_v4_multiple.json")).prefix(3))
        let answers = try BFCLAnswer.load(file: bfcl.appendingPathComponent("possible_answer/BFCL_v4_multiple.json"))
        return (dir, questions, answers, try LanguageModel.load(path: LoRABackwardTests.tiny.appendingPathComponent("qwen2").path))
    }

    func testEvalRunsEveryModeAndWritesBFCLResultFiles() throws {
        let (dir, questions, answers, lm) = try firstMultipleQuestions(directory: "paratool-eval")

        // A store holding, per tool, a stage-1 version and (for the first tool) a later joint one,
        // plus the global adapter; and a fresh gate.
        let store = try AdapterStore(root: dir.appendingPathComponent("store"))
        let tools = ToolCatalogue(questions.flatMap(\.functions))
        var trainerConfig = AdapterTrainingConfig()
        trainerConfig.rank = 2
        trainerConfig.alpha = 8
        let trainer = AdapterTrainer(model: lm.model, config: trainerConfig)
        for tool in tools.names {
            _ = try store.publish(trainer.initialAdapter(tool), tool: tool, stage: "pretrain", baseModel: lm.path)
        }
        let tuned = try store.publish(trainer.initialAdapter(tools.names[0]), tool: tools.names[0], stage: "joint", baseModel: lm.path)
        _ = try store.publish(trainer.initialAdapter(OfflineTraining.globalAdapterName), tool: OfflineTraining.globalAdapterName,
                              stage: "global", baseModel: lm.path)
        let gate = GateNetwork(config: GateConfig(dimension: lm.model.config.hiddenSize, hidden: [8]), seed: 1)
        // An adapter generator (untrained: it writes its shared adapter for every tool).
        let c = lm.model.config
        let generator = try AdapterHypernetwork(
            shared: ToolAdapter.initialized(name: "shared", config: c, rank: 2, alpha: 8, seed: 4, randomB: true),
            encodings: [[Float](repeating: 0.5, count: c.hiddenSize), [Float](repeating: -0.5, count: c.hiddenSize)],
            shape: AdapterHypernetworkShape(encodingWidth: c.hiddenSize, codeWidth: 4, hiddenWidth: 4, layers: c.layerCount, rank: 2, alpha: 8,
                                            targets: FFNProjection.allCases, hiddenSize: c.hiddenSize, intermediateSize: c.intermediateSize),
            provenance: AdapterHypernetworkProvenance(version: "g000000", trainingTools: [], heldOutTools: [], shared: "random"), seed: 2)

        var settings = EvaluationSettings()
        settings.maxNewTokens = 6
        settings.evaluationQueries = questions.map { $0.turns[0].last!.content }
        let evaluation = try BFCLEvaluation(model: lm, questions: questions, answers: answers, categoryName: "multiple",
                                            store: store, gate: gate, generator: generator, settings: settings)
        let counter = FlopsCounter(config: lm.model.config)
        var reports = [EvaluationMode: ModeReport]()
        for mode in EvaluationMode.allCases {
            let report = try evaluation.run(mode)
            XCTAssertNil(report.skipped, mode.rawValue)
            XCTAssertEqual(report.outcomes.map(\.id), questions.map(\.id), mode.rawValue)
            let file = try evaluation.writeResults(report, to: dir.appendingPathComponent("out"))
            XCTAssertEqual(file.lastPathComponent, "bfcl_multiple_\(mode.rawValue).jsonl")

            // The result file: one JSON object a line, every question once, in order; `result` a
            // list of single-key objects {function: {param: value}}.
            let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
            XCTAssertEqual(lines.count, questions.count, mode.rawValue)
            for (line, (question, outcome)) in zip(lines, zip(questions, report.outcomes)) {
                let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                XCTAssertEqual(object["id"] as? String, question.id)
                let result = try XCTUnwrap(object["result"] as? [[String: Any]], "\(mode.rawValue) \(question.id)")
                XCTAssertEqual(result.count, outcome.calls.count)
                for (entry, call) in zip(result, outcome.calls) {
                    XCTAssertEqual(Array(entry.keys), [call.name])
                    XCTAssertNotNil(entry[call.name] as? [String: Any])
                }
                XCTAssertEqual(object["input_token_count"] as? Int, outcome.promptTokens)
                XCTAssertEqual(object["output_token_count"] as? Int, outcome.generatedTokens)
                XCTAssertEqual((object["flops"] as? NSNumber)?.intValue, outcome.flops.total)
                // The verdict is the checker's on the written calls.
                XCTAssertEqual(outcome.check, BFCLChecker.check(calls: outcome.calls, answer: answers.first { $0.id == question.id }!,
                                                                functions: question.functions, category: .multiple))
            }

            // FLOPs: generation of the recorded tokens with the fused adapters, plus (gate modes)
            // the encoder pass and the gate MLP over the candidates.
            for (question, outcome) in zip(questions, report.outcomes) {
                XCTAssertGreaterThan(outcome.generatedTokens, 0)
                let generation = counter.generation(prompt: outcome.promptTokens, generated: outcome.generatedTokens,
                                                    adapters: outcome.adapters, rank: outcome.rank)
                XCTAssertEqual(outcome.flops.baseLinear, generation.baseLinear, mode.rawValue)
                XCTAssertEqual(outcome.flops.attention, generation.attention, mode.rawValue)
                XCTAssertEqual(outcome.flops.lora, generation.lora, mode.rawValue)
                if mode.needsGate {
                    let queryTokens = ContextEncoder(model: lm.model, tokenizer: lm.tokenizer, pooling: gate.config.pooling)
                        .encode(question.turns[0].last!.content).tokens
                    XCTAssertEqual(outcome.flops.encoder, counter.encoder(tokens: queryTokens), mode.rawValue)
                    let gateFlops = mode == .embsim ? 0 : counter.gate(candidates: question.functions.count, layers: gate.config.layerWidths)
                    XCTAssertEqual(outcome.flops.gate, gateFlops, mode.rawValue)
                } else {
                    XCTAssertEqual(outcome.flops.encoder + outcome.flops.gate, 0, mode.rawValue)
                }
            }
            reports[mode] = report
        }

        // How many adapters each mode fused: none in context, one for global/top1 and oracle
        // (one gold tool in `multiple`), every candidate's for average.
        for (mode, expected) in [(EvaluationMode.contextDocs, { (_: BFCLQuestion) in 0 }), (.contextDocsExamples, { _ in 0 }),
                                 (.global, { _ in 1 }), (.oracle, { _ in 1 }), (.generated, { _ in 1 }), (.top1, { _ in 1 }),
                                 (.average, { $0.functions.count })] {
            XCTAssertEqual(reports[mode]!.outcomes.map(\.adapters), questions.map(expected), mode.rawValue)
            XCTAssertEqual(reports[mode]!.outcomes.map(\.rank), questions.map { expected($0) == 0 ? 0 : 2 }, mode.rawValue)
        }
        // The gate weighs generated adapters as it weighs trained ones.
        XCTAssertEqual(reports[.generatedGate]!.outcomes.map(\.adapters), reports[.paratool]!.outcomes.map(\.adapters))
        // Examples lengthen the Context+Docs prompt; the document-free prompt is the shortest.
        for i in questions.indices {
            XCTAssertGreaterThan(reports[.contextDocsExamples]!.outcomes[i].promptTokens, reports[.contextDocs]!.outcomes[i].promptTokens)
            XCTAssertLessThan(reports[.paratool]!.outcomes[i].promptTokens, reports[.contextDocs]!.outcomes[i].promptTokens)
        }
        // The store has a joint version, so no-finetune is a distinct model: no note.
        XCTAssertNil(reports[.noFinetune]!.note)
        let stageOne = StageAdapters(store: store, config: lm.model.config, stage: "pretrain")
        XCTAssertNotEqual(try stageOne.adapter(for: tools.names[0])?.version, tuned.version)

        let table = BFCLEvaluation.table(EvaluationMode.allCases.map { reports[$0]! })
        XCTAssertEqual(table.split(separator: "\n").count, 2 + EvaluationMode.allCases.count)
        XCTAssertTrue(table.contains("| context-docs | "))
        // Context+Docs priced against itself: its own run and the same requests with docs are one cost.
        let docsRow = try XCTUnwrap(table.split(separator: "\n").first { $0.hasPrefix("| context-docs | ") })
            .split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(Array(docsRow[5...6]), ["+0.0%", "+0.0%"])
        // ParaTool's prompt is shorter than the same request's with docs: a saving.
        let paraRow = try XCTUnwrap(table.split(separator: "\n").first { $0.hasPrefix("| paratool | ") })
            .split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertTrue(paraRow[6].hasPrefix("-"), "\(paraRow)")

        // Without a store or gate, only the context modes run; the others say why.
        let bare = try BFCLEvaluation(model: lm, questions: questions, answers: answers, categoryName: "multiple", store: nil, gate: nil,
                                      settings: settings)
        XCTAssertNotNil(try bare.run(.paratool).skipped)
        XCTAssertNotNil(try bare.run(.average).skipped)
        XCTAssertEqual(try bare.run(.generated).skipped, "needs an adapter generator (--generator)")
        XCTAssertNil(try bare.run(.contextDocs).skipped)
    }

    func testExamplesAreSynthesizedPerToolAndNeverAnEvaluationQuery() throws {
        let bfcl = RepositoryFixtures.bfcl
        let question = try BFCLQuestion.load(file: bfcl.appendingPathComponent("BFCL_v4_multiple.json"))[0]
        let answers = try BFCLAnswer.load(file: bfcl.appendingPathComponent("possible_answer/BFCL_v4_multiple.json"))
        let lm = try LanguageModel.load(path: LoRABackwardTests.tiny.appendingPathComponent("qwen2").path)
        var settings = EvaluationSettings()
        settings.examplesPerTool = 3
        let evaluation = try BFCLEvaluation(model: lm, questions: [question], answers: answers, categoryName: "multiple",
                                            store: nil, gate: nil, settings: settings)
        let examples = evaluation.examples(for: question.functions)
        XCTAssertEqual(Set(examples.keys), Set(question.functions.map(\.name)))
        for (tool, list) in examples {
            XCTAssertEqual(list.count, 3, tool)
            XCTAssertTrue(list.allSatisfy { $0.calls.map(\.name) == [tool] })
        }
        // An evaluation query equal to a synthesized one is never shown.
        let shown = examples[question.functions[0].name]![0].query
        settings.evaluationQueries = [shown.uppercased()]
        let guarded = try BFCLEvaluation(model: lm, questions: [question], answers: answers, categoryName: "multiple",
                                         store: nil, gate: nil, settings: settings)
        XCTAssertFalse(guarded.examples(for: question.functions).values.flatMap { $0 }.map(\.query).contains(shown))
    }

    /// The exact two-sided sign test against scipy 1.x's `binomtest(a, a + b, 0.5).pvalue`.
    func testSignTestMatchesScipysBinomialTest() {
        for (a, b, p) in [(7, 2, 0.1796875), (5, 5, 1.0), (0, 6, 0.03125), (12, 3, 0.03515625), (1, 0, 1.0), (30, 18, 0.11140289106101878)] {
            XCTAssertEqual(BFCLEvaluation.signTestP(a, b), p, accuracy: 1e-9, "\(a) vs \(b)")
        }
        XCTAssertEqual(BFCLEvaluation.signTestP(0, 0), 1)
    }

    /// Paired counts: per question id, which of ParaTool and a baseline got it right.
    func testPairedComparisonsCountQuestionsOneGetsRightAndTheOtherWrong() {
        func report(_ mode: EvaluationMode, _ right: [Bool]) -> ModeReport {
            var r = ModeReport(mode: mode)
            r.outcomes = right.enumerated().map { i, ok in
                QuestionOutcome(id: "q\(i)", calls: [], text: "", check: ok ? .correct : .wrong("x", "x"), promptTokens: 1,
                                generatedTokens: 1, adapters: 0, rank: 0, flops: FlopsBreakdown(), contextDocsFlops: 0, seconds: 0)
            }
            return r
        }
        let ours = report(.paratool, [true, true, false, false, true])
        let docs = report(.contextDocs, [true, false, true, false, false])
        let table = BFCLEvaluation.pairedComparisons([ours, docs, report(.average, [false, false, false, false, false])])
        let rows = table.split(separator: "\n")
        XCTAssertEqual(rows.count, 3, table)  // header, rule, context-docs only (average is not a paired baseline)
        XCTAssertEqual(rows[2], "| context-docs | 1 | 2 | 1 | 1 | 1.000 |")
        XCTAssertEqual(BFCLEvaluation.pairedComparisons([docs]), "")
        // Generated adapters are compared with the documents, Global, the trained adapters and ParaTool.
        let generated = report(.generated, [false, true, true, false, false])
        let oracle = report(.oracle, [true, true, true, true, false])
        let second = BFCLEvaluation.pairedComparisons([ours, docs, generated, oracle], subject: .generated).split(separator: "\n")
        XCTAssertEqual(second.first, "| generated against | both right | only generated | only the other | both wrong | sign test p (two-sided) |")
        XCTAssertEqual(Array(second.dropFirst(2)), ["| context-docs | 1 | 1 | 1 | 2 | 1.000 |", "| oracle | 2 | 0 | 2 | 1 | 0.500 |",
                                                   "| paratool | 1 | 1 | 2 | 1 | 1.000 |"])
    }

    /// An evaluation stopped after two of three questions (its journal's last line cut short)
    /// goes on from the third when run again, and gives the report an uninterrupted run gives;
    /// verdicts are scored again from the journaled calls; a journal of other settings is refused.
    func testAnInterruptedEvaluationGoesOnFromItsJournal() throws {
        let (dir, questions, answers, lm) = try firstMultipleQuestions(directory: "paratool-journal")
        var settings = EvaluationSettings()
        settings.maxNewTokens = 6
        func evaluation(_ qs: [BFCLQuestion]) throws -> BFCLEvaluation {
            try BFCLEvaluation(model: lm, questions: qs, answers: answers, categoryName: "multiple", store: nil, gate: nil, settings: settings)
        }
        func journal(_ key: String = "k") throws -> EvaluationJournal {
            try EvaluationJournal(directory: dir, category: "multiple", modeName: "context-docs", settingsKey: key)
        }
        let whole = try evaluation(questions).run(.contextDocs)

        _ = try evaluation(Array(questions.prefix(2))).run(.contextDocs, journal: try journal())
        let file = dir.appendingPathComponent("multiple_context-docs.jsonl")
        let handle = try FileHandle(forWritingTo: file)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"id": "multiple_2", "calls": [{"na"#.utf8))  // the interrupted write
        try handle.close()

        var fromJournal = [Bool]()
        let resumed = try evaluation(questions).run(.contextDocs, journal: try journal()) { _, _, journaled in fromJournal.append(journaled) }
        XCTAssertEqual(fromJournal, [true, true, false])
        XCTAssertEqual(resumed.outcomes.map(\.id), whole.outcomes.map(\.id))
        for (a, b) in zip(resumed.outcomes, whole.outcomes) {
            XCTAssertEqual(a.calls, b.calls, a.id)
            XCTAssertEqual(a.text, b.text, a.id)
            XCTAssertEqual(a.check, b.check, a.id)
            XCTAssertEqual(a.unaskedArguments, b.unaskedArguments, a.id)
            XCTAssertEqual([a.promptTokens, a.generatedTokens, a.adapters, a.rank, a.contextDocsFlops],
                           [b.promptTokens, b.generatedTokens, b.adapters, b.rank, b.contextDocsFlops], a.id)
            XCTAssertEqual(a.flops, b.flops, a.id)
            XCTAssertEqual([a.isText, a.isComplete, a.forceClosed], [b.isText, b.isComplete, b.forceClosed], a.id)
        }
        // Header plus three whole records: the cut line was dropped, the third answer appended.
        XCTAssertEqual(try String(contentsOf: file, encoding: .utf8).split(separator: "\n").count, 4)
        XCTAssertThrowsError(try journal("other")) { XCTAssertTrue("\($0)".contains("other settings"), "\($0)") }
    }
}
