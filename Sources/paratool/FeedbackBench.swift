// `paratool bench feedback`: the feedback loop end to end on a real broker (librdkafka's mock
// cluster in process). Weakly trained demo adapters serve requests through a worker; a client
// checks each answer against the request's gold call and reports it on the `feedback` topic
// (solved, or unsolved with the corrected call); the trainer joins the reports with what was
// served, retrains every round, reviews each version on its held-out slice and announces the
// promoted ones, which the worker hot-swaps before the next round. Each version is scored on
// phrasings that neither the weak training, nor the feedback, nor the review ever saw.
import ArgumentParser
import Foundation
import Kafka
import LLM
import Logging
import ParaTool
import ParaToolService
import ParaToolTraining
import Wire

struct FeedbackBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "feedback",
        abstract: "Corrections through the feedback topic make weak adapters better: held-out accuracy per version.",
        discussion: """
            Three disjoint sets are synthesized from the demo tools' schemas (different seeds, no query shared, \
            the demo's example and check queries excluded): the weak adapters' training set, the requests of \
            the loop, and the held-out phrasings every version is scored on. Requests name one candidate tool and \
            are served in `average` mode (that tool's adapter at weight 1), under the call grammar. A round sends \
            --round requests per tool, reports every answer, and waits until the trainer has reviewed a new \
            version of each tool; a tool stops after the round in which its corrections reach --corrections. \
            Accuracy is exact match of the calls (greedy, constrained), as in the trainer's review.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Comma-separated tools of the demo catalogue (default: all four).")
    var tools: String?

    @Option(help: "Stage 1 steps of the weak adapters.")
    var weakSteps = 8

    @Option(help: "Stage 1 steps of each retraining.")
    var retrainSteps = 75

    @Option(help: "Requests per tool and round (also the trainer's retrain threshold).")
    var round = 25

    @Option(help: "Corrections per tool after which it stops.")
    var corrections = 50

    @Option(help: "Most rounds.")
    var maxRounds = 4

    @Option(help: "Held-out phrasings per tool.")
    var heldOut = 20

    @Option(help: ArgumentHelp("Working directory (default: a new temporary one, removed at the end).", valueName: "dir"))
    var work: String?

    @Option(help: "Seconds to wait for a round's answers or reviews.")
    var timeout = 3600

    func run() async throws {
        var logger = Logger(label: "bench.feedback")
        logger.logLevel = .error
        let catalogue = try DemoCatalogue.catalogue()
        let names = tools.map { $0.split(separator: ",").map(String.init) } ?? catalogue.tools.map(\.name)
        for name in names where !catalogue.contains(name) {
            throw UsageError("--tools: \(name) is not a demo tool (\(catalogue.tools.map(\.name).joined(separator: ", ")))")
        }
        guard round >= 1, corrections >= 1, maxRounds >= 1, heldOut >= 1, weakSteps >= 1, retrainSteps >= 1 else {
            throw UsageError("--round, --corrections, --max-rounds, --held-out and the step counts must be at least 1")
        }
        let workURL = work.map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("paratool-feedback-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: workURL, withIntermediateDirectories: true)
        defer { if work == nil { try? FileManager.default.removeItem(at: workURL) } }
        let catalogueFile = workURL.appendingPathComponent("tools.json")
        try catalogue.save(to: catalogueFile)
        let storeURL = workURL.appendingPathComponent("store", isDirectory: true)
        let store = try AdapterStore(root: storeURL)
        let started = ContinuousClock.now

        // Three disjoint sets: held-out phrasings first, then the loop's requests, then the weak training.
        var excluded = DemoCatalogue.heldOutQueries
        func synthesize(seed: UInt64, perTool: Int) -> [String: [Trajectory]] {
            var config = SynthesisConfig()
            config.examplesPerTool = perTool
            config.seed = seed
            let (trajectories, _) = ExampleSynthesizer(tools: catalogue.tools, config: config, evaluationQueries: excluded).synthesize()
            excluded += trajectories.map(\.query)
            var byTool: [String: [Trajectory]] = [:]
            for t in trajectories where t.steps.count == 1 {
                let called = Set(t.steps[0].calls.map(\.name))
                guard called.count == 1, let tool = called.first, names.contains(tool) else { continue }
                var single = t
                single.candidateTools = [tool]
                byTool[tool, default: []].append(single)
            }
            return byTool
        }
        let phrasings = synthesize(seed: 2, perTool: heldOut + 10).mapValues { Array($0.prefix(heldOut)) }
        let pool = synthesize(seed: 1, perTool: round * maxRounds + 10)
        var config = SynthesisConfig()
        config.examplesPerTool = 30
        config.seed = 0
        let weakData = ExampleSynthesizer(tools: catalogue.tools, config: config, evaluationQueries: excluded).synthesize().trajectories
        for name in names where (pool[name]?.count ?? 0) < round || (phrasings[name]?.count ?? 0) == 0 {
            throw ValidationError("\(name): the synthesis gave too few single-call examples (\(pool[name]?.count ?? 0) requests, "
                                  + "\(phrasings[name]?.count ?? 0) held-out)")
        }
        let weakFile = workURL.appendingPathComponent("weak-train.jsonl")
        try Trajectory.save(weakData, jsonl: weakFile)

        print(CPUDescription.line)
        print("weak adapters: stage 1, \(weakSteps) steps per tool on \(weakData.count) synthesized examples")
        fflush(nil)
        var weak = OfflineTrainingOptions(data: weakFile, tools: catalogueFile, store: storeURL)
        weak.model = modelOptions.model
        weak.stages = [1]
        weak.onlyTools = names
        weak.adapter = FirstStartTraining.adapterSettings(steps: weakSteps)
        weak.checkpointDirectory = workURL.appendingPathComponent("weak-checkpoints")
        // Training refuses (HeldOut.check) any query of the loop's requests or the held-out phrasings.
        weak.evaluationQueries = excluded
        _ = try OfflineTraining.run(weak, log: { _ in }, progress: { _ in true })

        let lm = try modelOptions.load()
        let scorer = try HeldOutScorer(model: lm, catalogue: catalogue)
        func accuracy(_ tool: String, version: String) throws -> Double {
            let adapter = try store.load(tool: tool, version: version, config: lm.model.config)
            let steps = phrasings[tool]!.map { (trajectory: $0, step: 0) }
            return HeldOutScore(try scorer.score(adapter, tool: tool, steps: steps)).accuracy
        }
        /// One version of a tool; `decision` nil for the weak start.
        struct Row {
            var tool, version: String
            var decision: AdapterReview.Decision?
            var episodes, corrections: Int
            var servedRight: String
            var accuracy: Double
            var isServed: Bool { decision == nil || decision == .promoted }
        }
        var rows: [Row] = []
        for tool in names {
            guard let v = try store.latest(tool: tool) else { throw ValidationError("\(tool): the weak training published nothing") }
            rows.append(Row(tool: tool, version: v.version, decision: nil, episodes: 0, corrections: 0, servedRight: "–",
                            accuracy: try accuracy(tool, version: v.version)))
        }

        // The system: broker, topics, a worker on the store, the trainer reviewing every version.
        let cluster = try KafkaMockCluster(logger: logger)
        let topics = TopicNames()
        for spec in topics.specifications(partitions: 2) { try cluster.createTopic(spec.name, partitions: spec.partitions) }
        let kafka = KafkaConfiguration(brokers: cluster.bootstrapServers, properties: ["fetch.wait.max.ms": "5"])
        var settings = WorkerSettings(workerID: "bench-worker", modelID: WorkerStack.modelID(lm))
        settings.topics = topics
        let stack = try WorkerStack(model: lm, settings: settings, kafka: kafka, catalogue: catalogue, gate: nil, store: store,
                                    constrained: true, logger: logger)
        var trainerSettings = TrainerSettings(dataset: workURL.appendingPathComponent("dataset"), store: storeURL, tools: catalogueFile)
        trainerSettings.topics = topics
        trainerSettings.model = modelOptions.model
        trainerSettings.retrainEvery = round
        trainerSettings.adapter = FirstStartTraining.adapterSettings(steps: retrainSteps)
        let trainer = try TrainerStack(settings: trainerSettings, kafka: kafka, metrics: ServiceMetrics(), logger: logger)
        let services = RunningServices(trainer.services + stack.services, logger: logger)
        try await stack.worker.ready()
        let client = try RequestClient(kafka: kafka, topics: topics, logger: logger)

        var sent: [String: Int] = [:], corrected: [String: Int] = [:]
        var active = names
        for r in 1...maxRounds where !active.isEmpty {
            var gold: [String: (tool: String, calls: [ToolCall])] = [:]
            for tool in active {
                for t in pool[tool]!.dropFirst(sent[tool, default: 0]).prefix(round) {
                    let id = "r\(r)-\(t.id)"
                    gold[id] = (tool, t.steps[0].calls)
                    try client.send(WireToolCallRequest(requestID: id, query: t.query, candidateTools: [tool], mode: .average))
                }
            }
            let answers = try client.collect(Set(gold.keys), timeout: .seconds(timeout))
            guard answers.count == gold.count else { throw ValidationError("round \(r): \(answers.count) of \(gold.count) requests answered") }
            var right: [String: Int] = [:], asked: [String: Int] = [:]
            let before = try Dictionary(uniqueKeysWithValues: active.map { ($0, try store.versions(tool: $0).count) })
            for (id, (tool, calls)) in gold.sorted(by: { $0.key < $1.key }) {
                let served = try answers[id]!.action.calls.enumerated().map { try ToolCall(wire: $1, field: "\(id).calls[\($0)]") }
                asked[tool, default: 0] += 1
                sent[tool, default: 0] += 1
                if served == calls {
                    right[tool, default: 0] += 1
                    try client.report(WireFeedback(requestID: id, outcome: .solved, source: "bench"))
                } else {
                    corrected[tool, default: 0] += 1
                    try client.report(WireFeedback(requestID: id, outcome: .unsolved, correctedCalls: calls.map(\.wire), source: "bench"))
                }
            }
            // The trainer retrains once a tool has `round` new episodes; wait for each tool's reviewed version.
            let deadline = ContinuousClock.now + .seconds(timeout)
            for tool in active {
                let (version, decision) = try await reviewed(tool: tool, after: before[tool]!, store: store, deadline: deadline, round: r)
                rows.append(Row(tool: tool, version: version, decision: decision, episodes: sent[tool]!,
                                corrections: corrected[tool, default: 0], servedRight: "\(right[tool, default: 0])/\(asked[tool]!)",
                                accuracy: try accuracy(tool, version: version)))
                printError(String(format: "round %d, %@: served %d of %d right, %d corrections so far; %@ %@, %.0f%% on the held-out phrasings",
                                  r, tool, right[tool, default: 0], asked[tool]!, corrected[tool, default: 0], version,
                                  decision.rawValue, rows.last!.accuracy * 100))
                if decision == .promoted { try await waitUntilServed(tool: tool, version: version, client: client) }
            }
            active = active.filter { corrected[$0, default: 0] < corrections }
        }
        try await services.shutdown()
        withExtendedLifetime(cluster) {}

        print("model \(WorkerStack.modelID(lm)); \(round) requests per tool and round, retraining \(retrainSteps) stage-1 steps from "
              + "the shared start on the tool's episodes (a fifth held out for the review); \(heldOut) held-out phrasings per tool; "
              + String(format: "%.1f min in all", (ContinuousClock.now - started).seconds / 60))
        print("| tool | version | episodes reported | of them corrections | served right this round | review | held-out phrasings |")
        print("|---|---|---:|---:|---:|---|---:|")
        for row in rows {
            print(String(format: "| %@ | %@ | %d | %d | %@ | %@ | %.0f%% |", row.tool, row.version, row.episodes, row.corrections,
                         row.servedRight, row.decision?.rawValue ?? "weak start", row.accuracy * 100))
        }
        print("| tool | weak | serving at the end | corrections | change |")
        print("|---|---:|---:|---:|---:|")
        for tool in names {
            let weak = rows.first { $0.tool == tool }!, serving = rows.last { $0.tool == tool && $0.isServed }!
            print(String(format: "| %@ | %.0f%% | %.0f%% (%@) | %d | %+.0f points |", tool, weak.accuracy * 100, serving.accuracy * 100,
                         serving.version, corrected[tool, default: 0], (serving.accuracy - weak.accuracy) * 100))
        }
    }

    /// The newest version of `tool` once there are more than `after` and the trainer has recorded its review.
    private func reviewed(tool: String, after: Int, store: AdapterStore, deadline: ContinuousClock.Instant,
                          round: Int) async throws -> (version: String, decision: AdapterReview.Decision) {
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .seconds(1))
            let versions = try store.versions(tool: tool)
            if versions.count > after, let newest = versions.last, let review = try store.review(tool: tool, version: newest.version) {
                return (newest.version, review.decision)
            }
        }
        throw ValidationError("round \(round): no reviewed version of \(tool) in time")
    }

    /// Sends one-token probes until the worker answers `tool` with `version` (it hot-swaps on the announcement).
    private func waitUntilServed(tool: String, version: String, client: RequestClient) async throws {
        for k in 0..<120 {
            let probe = WireToolCallRequest(requestID: "probe-\(tool)-\(version)-\(k)", query: "ping", candidateTools: [tool],
                                            maxNewTokens: 1, mode: .average)
            if let r = try client.call(probe, timeout: .seconds(60)), r.action.weights.contains(where: { $0.tool == tool && $0.adapterVersion == version }) {
                return
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw ValidationError("the worker did not switch \(tool) to \(version) within a minute")
    }
}
