// `paratool up`: the whole system on one machine — librdkafka's mock cluster in process, the
// topics, the demo catalogue on the tools topic, a worker on the default model, the trainer and,
// on a fresh store, the first-start training in the background — until Ctrl-C or SIGTERM.
import ArgumentParser
import Foundation
import Kafka
import LLM
import Logging
import ParaTool
import ParaToolService
import ParaToolTraining
import Tensor

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run broker, worker and demo tools in one process; print `bootstrap: HOST:PORT` when ready.",
        discussion: """
            Starts librdkafka's in-process mock Kafka cluster on 127.0.0.1 (a real Kafka protocol endpoint; \
            no transactions), creates the topics, publishes the demo catalogue (get_weather, convert_currency, \
            search_flights, set_timer) to <prefix>tools, and starts a worker and a trainer on the model. Then try:
              paratool send --brokers HOST:PORT --query "What's the weather like in Lisbon right now?"
            Runs until Ctrl-C or SIGTERM, which stop the worker (finishing its batch), the trainers and the \
            endpoint in that order.

            It answers at once, also on a fresh store: a request whose tools lack an adapter, or that needs \
            the gate before one is trained, is served with the tools' documents in the prompt (Context+Docs, \
            under the call grammar), and the Action's served_format says so. Meanwhile the missing adapters \
            are trained in the background on examples synthesized from the tools' schemas (the demo's example \
            and check queries held out: stage 1 with --train-steps per tool, then stage 2, the gate), each \
            announced on <prefix>adapters the moment it is published; the worker switches that tool to its \
            adapter without a restart. On 2 cores that takes 5-11 minutes for the four demo tools (by the machine). The \
            result is cached in the store, an interrupted run resumes, and later starts train nothing.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var toolLimits: ToolLimitOptions
    @OptionGroup var trainerLimits: TrainerLimitOptions

    @Option(help: ArgumentHelp("Tool catalogue to publish instead of the demo one.", valueName: "file"))
    var tools: String?

    @Option(help: ArgumentHelp("Adapter store (default ~/.cache/paratool/store).", valueName: "dir"))
    var adapterStore: String?

    @Option(help: ArgumentHelp("Gate directory (default: the newest in <adapter-store>/.gates/, where training writes it).", valueName: "dir"))
    var gate: String?

    @Flag(help: "Decode without the call-grammar constraint (ablation).")
    var unconstrained = false

    @Flag(help: "Do not train missing adapters on start (tools without one are served with their documents in the prompt).")
    var skipTraining = false

    @Option(help: "Stage 1 steps per tool when training on first start.")
    var trainSteps = 75

    @Option(help: ArgumentHelp("Partitions of the request-side topics (default 2).", valueName: "n"))
    var partitions: Int = 2

    @Option(help: ArgumentHelp("Port of /metrics and /healthz (default 9464; 0 disables).", valueName: "port"))
    var metricsPort: Int = 9464

    @Option(help: ArgumentHelp("IPv4 address /metrics and /healthz listen on (default 127.0.0.1, this host only; 0.0.0.0 for every interface).", valueName: "address"))
    var metricsHost: String = HealthServer.defaultHost

    @Option(help: ArgumentHelp("Log level (default info).", valueName: "level"))
    var logLevel: String?

    @Option(help: ArgumentHelp("Compute threads of the worker (default: all cores).", valueName: "n"))
    var threads: Int?

    @Option(help: ArgumentHelp("Compute threads of the trainer and the first-start training, its own budget beside the worker's (default: all cores).", valueName: "n"))
    var trainerThreads: Int?

    /// The budget a `--threads`-like flag gives (all active cores when absent).
    static func budget(_ n: Int?, flag: String) throws -> ComputeThreads {
        guard let n else { return .machine }
        guard n >= 1 else { throw UsageError("\(flag) must be at least 1") }
        return ComputeThreads(n)
    }

    static var defaultStore: URL {
        FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/paratool/store", isDirectory: true)
    }

    func run() async throws {
        let logger = try serviceLogger("paratool.up", level: logLevel)
        guard partitions >= 1 else { throw UsageError("--partitions must be at least 1") }
        let catalogue = try tools.map { try ToolCatalogue.load(file: URL(fileURLWithPath: $0)) } ?? DemoCatalogue.catalogue()
        try ToolLimitOptions.check(catalogue, try toolLimits.limits(nil))
        let storeURL = adapterStore.map { URL(fileURLWithPath: $0) } ?? Self.defaultStore
        let store = try AdapterStore(root: storeURL)
        let work = storeURL.deletingLastPathComponent()
        let catalogueFile = work.appendingPathComponent("up-tools.json")
        try catalogue.save(to: catalogueFile)

        var policy = FirstStartTraining(catalogue: catalogue, catalogueFile: catalogueFile, store: storeURL, work: work)
        policy.model = modelOptions.model
        policy.steps = trainSteps
        policy.threads = try Self.budget(trainerThreads, flag: "--trainer-threads")
        policy.heldOutQueries = DemoCatalogue.heldOutQueries
        var plan = try policy.plan()
        for tool in plan.stale {
            logger.warning("adapter was trained on other prompt wording; retraining it", metadata: ["tool": "\(tool)", "current": "\(PromptWording.fingerprint)"])
        }
        if skipTraining { plan = FirstStartTraining.Plan() }
        if !plan.isEmpty {
            let parts = (plan.tools.isEmpty ? [] : ["\(plan.tools.count) tool adapter\(plan.tools.count == 1 ? "" : "s")"])
                + (plan.gateMissing ? ["the gate"] : [])
            printError("first start: answering at once with the tools' documents in the prompt while \(parts.joined(separator: " and ")) "
                       + "train in the background (1.25-2.75 minutes per tool on 2 cores; cached in \(storeURL.path); a restart resumes)")
        }
        let gateDirectory = gate.map { URL(fileURLWithPath: $0) } ?? AdapterStore.latestGate(root: storeURL)
        let gateNetwork = try gateDirectory.map { try GateNetwork.load(from: $0) }

        let started = Date()
        let lm = try modelOptions.load()
        logger.info("model loaded", metadata: ["model": "\(WorkerStack.modelID(lm))", "seconds": "\(String(format: "%.2f", Date().timeIntervalSince(started)))"])

        let cluster = try KafkaMockCluster(logger: logger)
        let topics = TopicNames()
        for spec in topics.specifications(partitions: Int32(partitions)) {
            try cluster.createTopic(spec.name, partitions: spec.partitions)
        }
        // The mock broker answers a fetch only when fetch.wait.max.ms runs out (a real broker answers
        // as soon as data arrives), so keep the wait short: requests then start within milliseconds.
        let kafka = KafkaConfiguration(brokers: cluster.bootstrapServers, properties: ["fetch.wait.max.ms": "5"])
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: kafka), name: "up-publisher", logger: logger)
        _ = try producer.sendAndWait(try topics.toolMessages(catalogue))
        producer.close()

        var settings = WorkerSettings(workerID: "up-worker-1", modelID: WorkerStack.modelID(lm))
        settings.topics = topics
        settings.toolLimits = try toolLimits.limits(nil)
        settings.threads = try Self.budget(threads, flag: "--threads")
        let metrics = ServiceMetrics()
        let stack = try WorkerStack(model: lm, settings: settings, kafka: kafka, catalogue: nil, gate: gateNetwork, store: store,
                                    constrained: !unconstrained, documentFallback: true, metrics: metrics, logger: logger)
        var trainerSettings = TrainerSettings(dataset: work.appendingPathComponent("dataset"), store: storeURL, tools: catalogueFile)
        trainerSettings.topics = topics
        trainerSettings.toolLimits = settings.toolLimits
        try trainerLimits.apply(to: &trainerSettings, nil)
        trainerSettings.model = modelOptions.model
        trainerSettings.threads = policy.threads
        // Retraining on feedback follows the first start's schedule.
        trainerSettings.adapter = FirstStartTraining.adapterSettings(steps: trainSteps)
        let trainer = try TrainerStack(settings: trainerSettings, kafka: kafka, metrics: metrics, logger: logger)
        let firstStart = FirstStartTrainer(policy: policy, plan: plan, kafka: kafka, topics: topics, metrics: metrics, logger: logger)
        let health = metricsPort > 0
            ? try HealthServer(host: metricsHost, port: UInt16(metricsPort), metrics: metrics, isReady: { stack.worker.isReady }, logger: logger) : nil
        let services = (health.map { [$0] } ?? []) + [firstStart] + trainer.services + stack.services
        try await withThrowingTaskGroup { group in
            group.addTask { try await ServiceStack.run(services, mayFinish: [firstStart], logger: logger) }
            try await stack.worker.ready()
            print("bootstrap: \(cluster.bootstrapServers)")
            print("try: paratool send --brokers \(cluster.bootstrapServers) --query \"\(DemoCatalogue.exampleQueries[0])\"")
            fflush(nil)
            try await group.waitForAll()
        }
        withExtendedLifetime(cluster) {}
        logger.info("stopped")
    }
}
