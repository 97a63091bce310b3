// `paratool up`: the whole system on one machine — librdkafka's mock cluster in process, the
// topics, the demo catalogue on the tools topic, a worker on the default model — until Ctrl-C.
import ArgumentParser
import Foundation
import Kafka
import LLM
import Logging
import ParaTool
import ParaToolService
import ParaToolTraining

struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run broker, worker and demo tools in one process; print `bootstrap: HOST:PORT` when ready.",
        discussion: """
            Starts librdkafka's in-process mock Kafka cluster on 127.0.0.1 (a real Kafka protocol endpoint; \
            no transactions), creates the topics, publishes the demo catalogue (get_weather, convert_currency, \
            search_flights, set_timer) to <prefix>tools, and starts a worker and a trainer on the model. Then try:
              paratool send --brokers HOST:PORT --query "What's the weather like in Lisbon right now?"
            Runs until Ctrl-C or SIGTERM.

            On first start, tools without an adapter in the store are trained: examples are synthesized from             their schemas (`paratool synth`, the demo's example queries held out), then stage 1 trains each             tool's adapter and stage 2 the gate (`paratool train --offline --stages 1,2 --steps 75`). On 2 cores             this takes about 5 minutes for the four demo tools; the result is cached in the store, an             interrupted run resumes, and later starts take seconds.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("Tool catalogue to publish instead of the demo one.", valueName: "file"))
    var tools: String?

    @Option(help: ArgumentHelp("Adapter store (default ~/.cache/paratool/store).", valueName: "dir"))
    var adapterStore: String?

    @Option(help: ArgumentHelp("Gate directory (default <adapter-store>/.gate, where training writes it).", valueName: "dir"))
    var gate: String?

    @Flag(help: "Decode without the call-grammar constraint (ablation).")
    var unconstrained = false

    @Flag(help: "Do not train missing adapters on start (the base model answers for tools without one).")
    var skipTraining = false

    @Option(help: "Stage 1 steps per tool when training on first start.")
    var trainSteps = 75

    @Option(help: ArgumentHelp("Partitions of the request-side topics (default 2).", valueName: "n"))
    var partitions: Int = 2

    @Option(help: ArgumentHelp("Port of /metrics and /healthz (default 9464; 0 disables).", valueName: "port"))
    var metricsPort: Int = 9464

    @Option(help: ArgumentHelp("Log level (default info).", valueName: "level"))
    var logLevel: String?

    static var defaultStore: URL {
        FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/paratool/store", isDirectory: true)
    }

    func run() throws {
        let logger = try serviceLogger("paratool.up", level: logLevel)
        guard partitions >= 1 else { throw UsageError("--partitions must be at least 1") }
        let catalogue = try tools.map { try ToolCatalogue.load(file: URL(fileURLWithPath: $0)) } ?? DemoCatalogue.catalogue()
        let storeURL = adapterStore.map { URL(fileURLWithPath: $0) } ?? Self.defaultStore
        try FileManager.default.createDirectory(at: storeURL, withIntermediateDirectories: true)
        let gateURL = gate.map { URL(fileURLWithPath: $0) } ?? storeURL.appendingPathComponent(".gate", isDirectory: true)
        let work = storeURL.deletingLastPathComponent()
        let catalogueFile = work.appendingPathComponent("up-tools.json")
        try catalogue.save(to: catalogueFile)
        if !skipTraining {
            try trainMissing(catalogue: catalogue, catalogueFile: catalogueFile, store: storeURL, gate: gateURL, work: work, logger: logger)
        }
        let gatePath = FileManager.default.fileExists(atPath: gateURL.appendingPathComponent("gate_config.json").path) ? gateURL.path : nil

        let started = Date()
        let lm = try modelOptions.load()
        logger.info("model loaded", metadata: ["model": "\(ServiceStack.modelID(lm))", "seconds": "\(String(format: "%.2f", Date().timeIntervalSince(started)))"])

        let cluster = try KafkaMockCluster(logger: logger)
        let topics = TopicNames()
        for spec in topics.specifications(partitions: Int32(partitions)) {
            try cluster.createTopic(spec.name, partitions: spec.partitions)
        }
        // The mock broker answers a fetch only when fetch.wait.max.ms runs out (a real broker answers
        // as soon as data arrives), so keep the wait short: requests then start within milliseconds.
        let kafka = KafkaConfiguration(brokers: cluster.bootstrapServers, properties: ["fetch.wait.max.ms": "5"])
        let producer = try KafkaProducer(configuration: kafka, name: "up-publisher", logger: logger)
        _ = try producer.sendAndWait(try topics.toolMessages(catalogue))
        producer.close()

        var settings = WorkerSettings(workerID: "up-worker-1", modelID: ServiceStack.modelID(lm))
        settings.topics = topics
        let stack = try ServiceStack.worker(lm: lm, settings: settings, kafka: kafka, toolsFile: nil, gateDirectory: gatePath,
                                            storeDirectory: storeURL.path, constrained: !unconstrained, logger: logger)
        let health = metricsPort > 0 ? try ServiceStack.startHealth(port: metricsPort, metrics: stack.metrics, isReady: { stack.worker.isReady }, logger: logger) : nil
        var trainerSettings = TrainerSettings(dataset: work.appendingPathComponent("dataset"), store: storeURL, tools: catalogueFile)
        trainerSettings.topics = topics
        trainerSettings.model = modelOptions.model
        trainerSettings.adapter.steps = trainSteps
        let trainer = try TrainerService(settings: trainerSettings, kafka: kafka, metrics: stack.metrics, logger: logger)
        let trainerDone = BlockingResult<Void>()
        Thread {
            do { try trainer.run(); trainerDone.set(.success(())) } catch { trainerDone.set(.failure(error)) }
        }.start()
        let signals = ShutdownSignals { [logger] in
            logger.info("signal received: stopping")
            stack.worker.stop()
            trainer.stop()
        }
        defer { withExtendedLifetime(signals) {} }
        let failure = BlockingResult<Void>()
        let thread = Thread {
            do { try stack.worker.run(); failure.set(.success(())) } catch { failure.set(.failure(error)) }
        }
        thread.start()
        while !stack.worker.isReady { Thread.sleep(forTimeInterval: 0.05) }
        print("bootstrap: \(cluster.bootstrapServers)")
        print("try: paratool send --brokers \(cluster.bootstrapServers) --query \"\(DemoCatalogue.exampleQueries[0])\"")
        fflush(nil)
        try failure.wait()
        try trainerDone.wait()
        health?.stop()
        withExtendedLifetime(cluster) {}
        logger.info("stopped")
    }
}

extension UpCommand {
    /// Trains the tools that have no adapter yet, or only one made with other prompt wording
    /// (stage 1), and the gate (stage 2) on synthesized examples; resumes an interrupted run.
    /// Does nothing when every tool has a current adapter and the gate exists.
    func trainMissing(catalogue: ToolCatalogue, catalogueFile: URL, store: URL, gate: URL, work: URL, logger: Logger) throws {
        let adapters = try AdapterStore(root: store)
        let data = work.appendingPathComponent("up-train.jsonl")
        var options = OfflineTrainingOptions(data: data, tools: catalogueFile, store: store)
        let checkpoints = CheckpointDirectory(root: options.resolvedCheckpointDirectory)
        var missing: [String] = []
        for tool in catalogue.names {
            guard let latest = try adapters.latest(tool: tool) else { missing.append(tool); continue }
            guard !latest.matchesPromptWording else { continue }
            logger.warning("adapter was trained on other prompt wording; retraining it",
                           metadata: ["tool": "\(tool)", "version": "\(latest.version)",
                                      "trained": "\(latest.promptWording ?? "unrecorded")", "current": "\(PromptWording.fingerprint)"])
            // Its finished checkpoint would otherwise be taken as done (and its data no longer matches).
            try checkpoints.remove(stage: "pretrain", job: tool)
            missing.append(tool)
        }
        let gateExists = FileManager.default.fileExists(atPath: gate.appendingPathComponent("gate_config.json").path)
        guard !missing.isEmpty || !gateExists else { return }
        printError("first start: training \(missing.count) tool adapters and the gate on synthesized examples "
                   + "(about 1.25 minutes per tool on 2 cores; cached in \(store.path); Ctrl-C and restart resumes)")
        var config = SynthesisConfig()
        config.examplesPerTool = 30
        config.seed = 0
        let held = DemoCatalogue.heldOutQueries
        let (trajectories, _) = ExampleSynthesizer(tools: catalogue.tools, config: config, evaluationQueries: held).synthesize()
        try Trajectory.save(trajectories, jsonl: data)
        options.model = modelOptions.model
        options.gateDirectory = gate
        options.stages = [1, 2]
        options.onlyTools = missing
        options.adapter.steps = trainSteps
        options.adapter.optimizer.learningRate = 1e-3
        options.adapter.optimizer.warmupSteps = 8
        options.gate.steps = 200
        options.resume = true
        options.evaluationQueries = held
        options.metrics = work.appendingPathComponent("up-train-metrics.jsonl")
        let display = ProgressLine()
        let stop = StopRequest()
        let start = Date()
        let result = try OfflineTraining.run(options, log: { display.note($0) }) { progress in
            display.show(progress)
            return !stop.requested
        }
        if result.stopped {
            display.note("stopped: run `paratool up` again to resume the training")
            throw ExitCode(130)
        }
        display.note("trained in \(TrainingProgress.duration(Date().timeIntervalSince(start))): \(result.published.count) adapters, gate in \(gate.path)")
    }
}
