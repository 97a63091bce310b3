// The training stages: the gate's hand-written backward pass against central finite differences
// (and its forward against GateNetwork's own scoring), gate training learning a separable task,
// each stage's data against hand-built trajectories, checkpoint + resume giving bit-identical
// adapters to an uninterrupted run on the tiny fixture model, jobs trained in lockstep giving the
// bits of each job alone (also across a stop and a resume in other groups), and the offline run
// of all stages into an adapter store.
import Foundation
import Tensor
import XCTest
@testable import LLM
@testable import ParaTool
@testable import ParaToolTraining

final class StageTests: XCTestCase {
    func temporaryDirectory() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("paratool-stages-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func smallGate() -> (GateNetwork, [GateExample]) {
        let gate = GateNetwork(config: GateConfig(dimension: 3, hidden: [5, 4]), seed: 7)
        gate.setTool("a", vector: [0.9, -0.4, 0.3])
        gate.setTool("b", vector: [-0.5, 0.8, 0.1])
        gate.setTool("c", vector: [0.2, 0.6, -0.9])
        let examples = [GateExample(context: [0.5, -0.2, 0.7], candidates: ["a", "b", "c"], target: [0, 1, 0]),
                        GateExample(context: [-0.3, 0.4, 0.2], candidates: ["c", "a"], target: [0.5, 0.5])]
        return (gate, examples)
    }

    func testGateBackwardMatchesFiniteDifferences() {
        let (gate, examples) = smallGate()
        let trainer = GateTrainer(gate: gate, config: GateTrainingConfig())
        let lambda: Float = 0.3
        let (_, g) = trainer.lossAndGradients(examples, entropyWeight: lambda)
        func loss() -> Double { Double(trainer.lossAndGradients(examples, entropyWeight: lambda).loss) }
        let h: Float = 1e-2
        var checked = 0
        func compare(_ analytic: Float, _ perturb: (Float) -> Void, _ label: String) {
            perturb(h)
            let up = loss()
            perturb(-2 * h)
            let down = loss()
            perturb(h)
            let numeric = Float((up - down) / Double(2 * h))
            XCTAssertEqual(analytic, numeric, accuracy: 1e-3 + 0.01 * abs(numeric), label)
            checked += 1
        }
        for (k, layer) in gate.layers.enumerated() {
            for i in Set([0, 3, layer.weight.count / 2, layer.weight.count - 1]) {
                compare(g.weights[k][i], { layer.weight[i] += $0 }, "W\(k)[\(i)]")
            }
            for i in Set([0, layer.bias.count - 1]) { compare(g.biases[k][i], { layer.bias[i] += $0 }, "b\(k)[\(i)]") }
        }
        for name in ["a", "b", "c"] {
            for i in 0..<3 {
                compare(g.tools[name]![i], { delta in
                    var v = gate.toolVectors[name]!
                    v[i] += delta
                    gate.setTool(name, vector: v)
                }, "d_\(name)[\(i)]")
            }
        }
        XCTAssertEqual(checked, 11 + 5 + 9, "weights 4 + 4 + 3 (the last layer has 4), biases 2 + 2 + 1, tool entries 9")
        XCTAssertGreaterThan(g.tools.values.flatMap { $0 }.map(abs).max()!, 1e-4, "the tool gradients are not ~0")

        // The forward pass agrees with the gate's own scoring: with λ = 0 and a one-hot target the
        // loss is −log of the gold weight GateNetwork.weights gives.
        let one = GateExample(context: [0.1, 0.2, -0.3], candidates: ["b", "a", "c"], target: [0, 0, 1])
        let w = try! gate.weights(context: one.context, candidates: one.candidates)
        XCTAssertEqual(trainer.lossAndGradients([one], entropyWeight: 0).loss, -logf(w[2]), accuracy: 1e-5)
        // With λ the loss drops by λ·H(w).
        let entropy = -w.map { $0 * logf($0) }.reduce(0, +)
        XCTAssertEqual(trainer.lossAndGradients([one], entropyWeight: 0.5).loss, -logf(w[2]) - 0.5 * entropy, accuracy: 1e-5)
    }

    func testGateTrainingLearnsToPickTheGoldTool() throws {
        let gate = GateNetwork(config: GateConfig(dimension: 4, hidden: [16, 16]), seed: 1)
        let names = ["w", "x", "y", "z"]
        for (i, n) in names.enumerated() { gate.setTool(n, vector: (0..<4).map { $0 == i ? 1 : 0 }) }
        var rng = SeededGenerator(seed: 9)
        let examples = (0..<40).map { k -> GateExample in
            let gold = k % 4
            let c = (0..<4).map { ($0 == gold ? 1 : 0) + rng.uniform(-0.3, 0.3) }
            return GateExample(context: c, candidates: names, target: names.indices.map { $0 == gold ? 1 : 0 })
        }
        var config = GateTrainingConfig()
        config.steps = 150
        config.batchSize = 8
        config.optimizer.learningRate = 1e-2
        var losses = [Float]()
        try GateTrainer(gate: gate, config: config).train(examples: examples) { losses.append($0.loss); return true }
        XCTAssertEqual(losses.count, 150)
        XCTAssertLessThan(losses.suffix(10).reduce(0, +) / 10, losses.prefix(10).reduce(0, +) / 10 / 3)
        for e in examples {
            let w = try gate.weights(context: e.context, candidates: e.candidates)
            XCTAssertEqual(w.indices.max { w[$0] < w[$1] }, e.target.firstIndex(of: 1))
        }
    }

    func testStageDataFromTrajectories() throws {
        let tokenizer = try Tokenizer(directory: LoRABackwardTests.tiny.appendingPathComponent("qwen2"))
        let catalogue = ToolCatalogue([ToolSpec(name: "a", description: "Tool a"), ToolSpec(name: "b", description: "Tool b"),
                                       ToolSpec(name: "c", description: "Tool c")])
        let builder = try InstanceBuilder(tokenizer: tokenizer, catalogue: catalogue)
        let ca = ToolCall(name: "a", arguments: ["k": 1]), cb = ToolCall(name: "b", arguments: ["k": 2])
        let parallel = Trajectory(id: "p", query: "two a and one b", candidateTools: ["b", "a", "c"],
                                  steps: [Step(calls: [ca, ca, cb], observation: "")], source: "test")
        let sequential = Trajectory(id: "s", query: "a then b", candidateTools: ["c", "a", "b"],
                                    steps: [Step(calls: [ca], observation: "A"), Step(calls: [cb], observation: "B")], source: "test")
        let instances = try [parallel, sequential].flatMap { try builder.instances($0, documentAware: true) }
        // Stage 1: only single-tool targets, in both formats.
        let forA = StageData.pretraining(instances, tool: "a")
        XCTAssertEqual(forA.count, 2)
        XCTAssertEqual(forA.map { tokenizer.decode(Array($0.ids.suffix($0.targets))) }, [ca.rendered + "<|im_end|>", ca.rendered + "<|im_end|>"])
        XCTAssertEqual(StageData.pretraining(instances, tool: "b").count, 2)
        XCTAssertEqual(StageData.pretraining(instances, tool: "c").count, 0)
        // Stage 2: every prefix of every answer; the target is the next call's tool, then (with
        // the no-call candidate) the end; the context holds the calls so far and the history.
        var texts = [String]()
        let gate = StageData.gate([parallel, sequential], known: ["a", "b", "c"]) { texts.append($0); return [Float(texts.count)] }
        XCTAssertEqual(gate.map(\.candidates), [["b", "a", "c"], ["b", "a", "c"], ["b", "a", "c"], ["c", "a", "b"], ["c", "a", "b"]])
        XCTAssertEqual(gate.map(\.target), [[0, 1, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
        XCTAssertEqual(texts[0], "two a and one b")
        XCTAssertEqual(texts[1], "two a and one b\n\n[CALLS SO FAR]\n" + ca.rendered)
        XCTAssertEqual(texts[2], "two a and one b\n\n[CALLS SO FAR]\n" + ca.rendered + "\n" + ca.rendered)
        XCTAssertTrue(texts[4].hasPrefix("a then b\n\n" + PromptWording.historyHeader) && texts[4].contains("Observation: A")
                      && !texts[4].contains(PromptWording.callsSoFarHeader), texts[4])
        let ending = StageData.gate([parallel], known: ["a", "b", "c"], noTool: true, ends: true) { _ in [0] }
        XCTAssertEqual(ending.map(\.target), [[0, 1, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
        XCTAssertEqual(ending[0].candidates, ["b", "a", "c", GateNetwork.noToolName])
        let text = Trajectory(id: "x", query: "hello", candidateTools: ["a"], steps: [Step(calls: [], observation: "")], source: "test")
        XCTAssertEqual(StageData.gate([parallel, text], known: ["a", "b", "c"], noTool: true, ends: false) { _ in [0] }.map(\.target),
                       [[0, 1, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 1]], "no end examples; a text answer still teaches the no-call candidate")
        // Stage 3: document-free instances only, weighted by the gate over the candidates with adapters.
        let g = GateNetwork(config: GateConfig(dimension: 2, hidden: [3]), seed: 2)
        for (n, v) in [("a", [1, 0]), ("b", [0, 1]), ("c", [1, 1])] as [(String, [Float])] { g.setTool(n, vector: v) }
        let joint = try StageData.joint(instances, trajectories: [parallel, sequential], gate: g, adapters: ["a", "b"]) { _ in [0.5, -0.5] }
        XCTAssertEqual(joint.count, 3)
        let w = try g.weights(context: [0.5, -0.5], candidates: ["b", "a", "c"])
        XCTAssertEqual(joint[0].weights, [WeightedExample.Weight(tool: "b", weight: w[0]), WeightedExample.Weight(tool: "a", weight: w[1])])
    }

    /// Two adapters trained as a mixture (the stage-3 path) with batches of two, checkpointing
    /// every two steps. Interrupted runs — stopped cleanly at step 3, or "killed" after step 3
    /// with only the step-2 checkpoint on disk — resume to the same bits as an uninterrupted run.
    func testResumeIsBitIdenticalToAnUninterruptedRun() throws {
        let model = try LlamaModel(huggingFaceDirectory: LoRABackwardTests.tiny.appendingPathComponent("qwen2"))
        var rng = SeededGenerator(seed: 11)
        let examples = (0..<5).map { k in
            WeightedExample(ids: (0..<(12 + k)).map { _ in 3 + Int(rng.next() % 500) }, targets: 4,
                            weights: [.init(tool: "p", weight: 0.7), .init(tool: "q", weight: 0.3 + 0.1 * Float(k))])
        }
        var config = AdapterTrainingConfig()
        config.steps = 6
        config.batchSize = 2
        config.rank = 2
        config.alpha = 8
        config.checkpointEvery = 2
        config.optimizer.learningRate = 1e-2
        config.optimizer.warmupSteps = 2
        func fresh(_ seed: UInt64) -> [ToolAdapter] {
            ["p", "q"].map { ToolAdapter.initialized(name: $0, config: model.config, rank: 2, alpha: 8, seed: seed) }
        }
        func values(_ adapters: [ToolAdapter]) -> [[UInt32]] { adapters.flatMap { $0.parameterBuffers.map { $0.toArray().map(\.bitPattern) } } }

        let reference = fresh(1)
        var referenceLosses = [Float]()
        XCTAssertTrue(try AdapterTrainer(model: model, config: config).train(stage: "joint", job: "j", adapters: reference, examples: examples) {
            referenceLosses.append($0.loss); return true
        })
        XCTAssertNotEqual(values(reference), values(fresh(1)), "training changed the adapters")

        for killed in [false, true] {
            let dir = temporaryDirectory()
            let backup = dir.appendingPathComponent("backup")
            let first = AdapterTrainer(model: model, config: config)
            first.checkpoints = CheckpointDirectory(root: dir.appendingPathComponent("cp"))
            var losses = [Float]()
            let finished = try first.train(stage: "joint", job: "j", adapters: fresh(1), examples: examples) { p in
                losses.append(p.loss)
                if p.step == 3 && killed { try! FileManager.default.copyItem(at: dir.appendingPathComponent("cp"), to: backup) }
                return p.step < 3
            }
            XCTAssertFalse(finished)
            if killed {
                try FileManager.default.removeItem(at: dir.appendingPathComponent("cp"))
                try FileManager.default.moveItem(at: backup, to: dir.appendingPathComponent("cp"))
                losses.removeLast()
            }
            let saved = try XCTUnwrap(try first.checkpoints!.latest(stage: "joint", job: "j"))
            XCTAssertEqual(saved.state.step, killed ? 2 : 3)
            XCTAssertEqual(saved.state.optimizerSteps, [saved.state.step, saved.state.step])
            // A new process: other initial values, which the checkpoint must overwrite.
            let second = AdapterTrainer(model: model, config: config)
            second.checkpoints = first.checkpoints
            second.resume = true
            let resumed = fresh(99)
            XCTAssertTrue(try second.train(stage: "joint", job: "j", adapters: resumed, examples: examples) { losses.append($0.loss); return true })
            XCTAssertEqual(losses.map(\.bitPattern), referenceLosses.map(\.bitPattern), "killed: \(killed)")
            XCTAssertEqual(values(resumed), values(reference), "killed: \(killed)")
            XCTAssertEqual(try second.checkpoints!.latest(stage: "joint", job: "j")?.state.complete, true)
        }

        // Other data under the same job name is refused rather than silently mixed.
        let dir = temporaryDirectory()
        let t = AdapterTrainer(model: model, config: config)
        t.checkpoints = CheckpointDirectory(root: dir)
        try t.train(stage: "joint", job: "j", adapters: fresh(1), examples: examples) { _ in true }
        t.resume = true
        XCTAssertThrowsError(try t.train(stage: "joint", job: "j", adapters: fresh(1), examples: Array(examples.prefix(3))) { _ in true })
        // Removing the job's checkpoints (as `up` does for an adapter of other prompt wording) lets it start over.
        try t.checkpoints!.remove(stage: "joint", job: "j")
        XCTAssertNil(try t.checkpoints!.latest(stage: "joint", job: "j"))
        XCTAssertNoThrow(try t.checkpoints!.remove(stage: "joint", job: "j"))
        XCTAssertTrue(try t.train(stage: "joint", job: "j", adapters: fresh(1), examples: Array(examples.prefix(3))) { _ in true })
    }

    /// Three stage-1 jobs trained in lockstep (small passes, so a step spans several) end with
    /// the bits of each job trained alone; so does a lockstep run stopped at step 3 and resumed
    /// with the jobs in other groups.
    func testJobsInLockstepMatchEachJobAlone() throws {
        let model = try LlamaModel(huggingFaceDirectory: LoRABackwardTests.tiny.appendingPathComponent("qwen2"))
        var rng = SeededGenerator(seed: 21)
        let tools = ["a", "b", "c"]
        let data = Dictionary(uniqueKeysWithValues: tools.enumerated().map { t, tool in
            (tool, (0..<(3 + t)).map { k in
                WeightedExample(ids: (0..<(20 + 30 * k + 7 * t)).map { _ in 3 + Int(rng.next() % 500) }, targets: 5 + k,
                                weights: [.init(tool: tool, weight: 1)])
            })
        })
        var config = AdapterTrainingConfig()
        config.steps = 5
        config.batchSize = 2
        config.rank = 2
        config.alpha = 8
        config.checkpointEvery = 2
        config.optimizer.learningRate = 1e-2
        config.optimizer.warmupSteps = 2
        func fresh(_ tool: String) -> ToolAdapter { ToolAdapter.initialized(name: tool, config: model.config, rank: 2, alpha: 8, seed: 3) }
        func bits(_ a: ToolAdapter) -> [[UInt32]] { a.parameterBuffers.map { $0.toArray().map(\.bitPattern) } }

        var alone = [String: [[UInt32]]](), aloneLosses = [String: [UInt32]]()
        for tool in tools {
            let adapter = fresh(tool)
            XCTAssertTrue(try AdapterTrainer(model: model, config: config).train(stage: "pretrain", job: tool, adapters: [adapter],
                                                                              examples: data[tool]!) {
                aloneLosses[tool, default: []].append($0.loss.bitPattern); return true
            })
            alone[tool] = bits(adapter)
        }

        let together = AdapterTrainer(model: model, config: config)
        together.maxRowsPerPass = 100
        let adapters = tools.map(fresh)
        var losses = [String: [UInt32]]()
        XCTAssertTrue(try together.train(stage: "pretrain", jobs: zip(tools, adapters).map { AdapterJob(job: $0, adapters: [$1], examples: data[$0]!) }) {
            losses[$0.job, default: []].append($0.loss.bitPattern); return true
        })
        XCTAssertEqual(together.updated, Set(tools))
        for (tool, adapter) in zip(tools, adapters) {
            XCTAssertTrue(bits(adapter) == alone[tool], "\(tool) trained with the others")
            XCTAssertTrue(losses[tool] == aloneLosses[tool], "\(tool) losses")
        }

        let checkpoints = CheckpointDirectory(root: temporaryDirectory())
        let first = AdapterTrainer(model: model, config: config)
        first.checkpoints = checkpoints
        XCTAssertFalse(try first.train(stage: "pretrain", jobs: tools.map { AdapterJob(job: $0, adapters: [fresh($0)], examples: data[$0]!) }) {
            !($0.job == "b" && $0.step == 3)
        })
        for tool in tools { XCTAssertEqual(try checkpoints.latest(stage: "pretrain", job: tool)?.state.step, 3, tool) }
        for group in [["a"], ["b", "c"]] {
            let second = AdapterTrainer(model: model, config: config)
            second.checkpoints = checkpoints
            second.resume = true
            let resumed = group.map(fresh)
            XCTAssertTrue(try second.train(stage: "pretrain", jobs: zip(group, resumed).map { AdapterJob(job: $0, adapters: [$1], examples: data[$0]!) }) { _ in true })
            for (tool, adapter) in zip(group, resumed) { XCTAssertTrue(bits(adapter) == alone[tool], "\(tool) resumed in \(group)") }
        }
    }

    func testOfflineRunOfAllStagesPublishesAdaptersAndGate() throws {
        let (dir, trajectories, demoOptions) = try demoRun(examplesPerTool: 2, episodes: 3)
        var options = demoOptions
        options.adapter.steps = 2
        // Stage 1 in lockstep groups of three tools, then the one left.
        options.toolsPerStep = 3
        options.gate.steps = 3
        options.gate.batchSize = 4
        options.globalBaseline = true
        options.metrics = dir.appendingPathComponent("metrics.jsonl")
        var reports = [TrainingProgress]()
        let result = try OfflineTraining.run(options, log: { _ in }) { reports.append($0); return true }
        XCTAssertFalse(result.stopped)

        let names = ["get_weather", "convert_currency", "search_flights", "set_timer"]
        let store = try AdapterStore(root: options.store)
        XCTAssertEqual(try store.tools(), (names + [OfflineTraining.globalAdapterName]).sorted())
        // Stage 3 publishes the adapters its two steps updated (those in the visited mixtures).
        var joint = 0
        for name in names {
            let versions = try store.versions(tool: name)
            XCTAssertEqual(versions.first?.stage, "pretrain", name)
            XCTAssertLessThanOrEqual(versions.count, 2)
            if versions.count == 2 {
                joint += 1
                XCTAssertEqual(versions[1].stage, "joint")
                XCTAssertEqual(versions[1].parent, versions[0].version)
                XCTAssertNoThrow(try store.load(tool: name, version: versions[1].version))
            }
        }
        XCTAssertGreaterThanOrEqual(joint, 1)
        XCTAssertEqual(result.published.count, 4 + 1 + joint)
        // The gate is a new version of the store's gate layout, the newest one.
        let gateDirectory = try XCTUnwrap(result.gateDirectory)
        XCTAssertEqual(gateDirectory.deletingLastPathComponent().standardizedFileURL,
                       AdapterStore.gatesDirectory(root: options.store).standardizedFileURL)
        XCTAssertEqual(AdapterStore.latestGate(root: options.store)?.standardizedFileURL, gateDirectory.standardizedFileURL)
        let gate = try GateNetwork.load(from: gateDirectory)
        // The gate always has the no-call candidate: it ends answers, and answers in text.
        XCTAssertEqual(Set(gate.toolVectors.keys), Set(names + [GateNetwork.noToolName]))
        // One report (and metrics line) per step: the global adapter first (4 tools × 2 steps),
        // then 4 tools × 2, the gate 3, joint 2.
        XCTAssertEqual(reports.map(\.stage), Array(repeating: "global", count: 8) + Array(repeating: "pretrain", count: 8)
                       + Array(repeating: "gate", count: 3) + Array(repeating: "joint", count: 2))
        let lines = try String(contentsOf: options.metrics!, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 21)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        for key in ["stage", "job", "step", "total_steps", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "eta_s"] {
            XCTAssertNotNil(first[key], key)
        }
        XCTAssertEqual(first["job"] as? String, "global")
        let firstOfStageOne = try JSONSerialization.jsonObject(with: Data(lines[8].utf8)) as! [String: Any]
        XCTAssertEqual(firstOfStageOne["job"] as? String, "get_weather")
        XCTAssertTrue(reports.allSatisfy { $0.loss.isFinite && $0.tokens > 0 })

        // Published jobs keep only their state: no parameters or moments remain in the checkpoints.
        let checkpointFiles = FileManager.default.enumerator(atPath: options.resolvedCheckpointDirectory.path)?
            .compactMap { $0 as? String } ?? []
        XCTAssertEqual(checkpointFiles.filter { $0.hasSuffix("state.json") }.count, 1 + 4 + 1 + 1, "global, four tools, gate, joint")
        XCTAssertEqual(checkpointFiles.filter { $0.hasSuffix(".safetensors") }, [])

        // Resuming a finished run trains and publishes nothing more.
        options.resume = true
        reports = []
        let again = try OfflineTraining.run(options, log: { _ in }) { reports.append($0); return true }
        XCTAssertEqual(again.published.count, 0)
        XCTAssertEqual(reports.count, 0)
        XCTAssertEqual(again.gateDirectory?.standardizedFileURL, gateDirectory.standardizedFileURL, "resuming keeps the trained gate's version")
        XCTAssertEqual(try store.tools().map { try store.versions(tool: $0).count }.reduce(0, +), 4 + 1 + joint)

        // An evaluation query in the data stops the run before any training.
        options.evaluationQueries = [trajectories[3].query]
        XCTAssertThrowsError(try OfflineTraining.run(options, log: { _ in }) { _ in true })
    }

    /// With `startFromGlobal`, stage 1 begins every tool at the global adapter: after one step a
    /// tool's B is within one optimiser step of the global B (which moved several steps away from
    /// the zero a random start has).
    func testStageOneStartsFromTheGlobalAdapter() throws {
        var options = try demoRun(examplesPerTool: 3, episodes: 2).options
        options.stages = [1]
        options.onlyTools = ["set_timer"]
        options.adapter.steps = 1
        options.adapter.optimizer.warmupSteps = 0
        options.startFromGlobal = true
        options.globalSteps = 8
        _ = try OfflineTraining.run(options, log: { _ in }) { _ in true }
        let store = try AdapterStore(root: options.store)
        let global = try store.load(tool: OfflineTraining.globalAdapterName, version: try XCTUnwrap(store.latest(tool: OfflineTraining.globalAdapterName)).version)
        let tool = try store.load(tool: "set_timer", version: try XCTUnwrap(store.latest(tool: "set_timer")).version)
        let lr = options.adapter.optimizer.learningRate
        var globalMagnitude: Float = 0, distance: Float = 0
        for l in 0..<global.pairs.count {
            for p in FFNProjection.allCases {
                let g = global.pair(layer: l, projection: p)!.b.toArray(), t = tool.pair(layer: l, projection: p)!.b.toArray()
                globalMagnitude = max(globalMagnitude, g.map(abs).max() ?? 0)
                distance = max(distance, zip(g, t).map { abs($0 - $1) }.max() ?? 0)
            }
        }
        XCTAssertGreaterThan(globalMagnitude, 3 * lr, "the global adapter moved several steps from B = 0")
        XCTAssertLessThanOrEqual(distance, 1.1 * lr, "one step from the global adapter")
    }

    /// A temporary folder holding trajectories synthesized for the demo catalogue, and offline
    /// training options over them on the tiny Qwen2 with rank-2 adapters (alpha 8).
    func demoRun(examplesPerTool: Int, episodes: Int) throws -> (dir: URL, trajectories: [Trajectory], options: OfflineTrainingOptions) {
        let dir = temporaryDirectory()
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let tools = repo.appendingPathComponent("Deploy/demo/tools.json")
        var synth = SynthesisConfig()
        synth.examplesPerTool = examplesPerTool
        synth.episodes = episodes
        let (trajectories, _) = ExampleSynthesizer(tools: try ToolCatalogue.load(file: tools).tools, config: synth).synthesize()
        let data = dir.appendingPathComponent("train.jsonl")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Trajectory.save(trajectories, jsonl: data)
        var options = OfflineTrainingOptions(data: data, tools: tools, store: dir.appendingPathComponent("store"))
        options.model = LoRABackwardTests.tiny.appendingPathComponent("qwen2").path
        options.adapter.rank = 2
        options.adapter.alpha = 8
        return (dir, trajectories, options)
    }
}
