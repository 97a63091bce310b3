// `paratool up`: the whole system on one machine — librdkafka's mock cluster in process, the
// topics, the demo catalogue on the tools topic, a worker on the default model — until Ctrl-C.
import ArgumentParser
import Foundation
import Kafka
import LLM
import Logging
import ParaTool
import ParaToolService
import Wire

struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run broker, worker and demo tools in one process; print `bootstrap: HOST:PORT` when ready.",
        discussion: """
            Starts librdkafka's in-process mock Kafka cluster on 127.0.0.1 (a real Kafka protocol endpoint; \
            no transactions), creates the topics, publishes the demo catalogue (get_weather, convert_currency, \
            search_flights, set_timer) to <prefix>tools, and starts a worker on the model. Then try:
              paratool send --brokers HOST:PORT --query "What's the weather like in Lisbon right now?"
            Runs until Ctrl-C or SIGTERM.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("Tool catalogue to publish instead of the demo one.", valueName: "file"))
    var tools: String?

    @Option(help: ArgumentHelp("Adapter store (default ~/.cache/paratool/store).", valueName: "dir"))
    var adapterStore: String?

    @Option(help: ArgumentHelp("Gate directory (default <adapter-store>/../gate when it exists).", valueName: "dir"))
    var gate: String?

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
        let gateURL = gate.map { URL(fileURLWithPath: $0) } ?? storeURL.deletingLastPathComponent().appendingPathComponent("gate")
        let gatePath = FileManager.default.fileExists(atPath: gateURL.appendingPathComponent("gate_config.json").path) ? gateURL.path : nil

        let started = Date()
        let lm = try LanguageModel.load(path: modelOptions.model)
        logger.info("model loaded", metadata: ["model": "\(ServiceStack.modelID(lm))", "seconds": "\(String(format: "%.2f", Date().timeIntervalSince(started)))"])

        let cluster = try KafkaMockCluster(logger: logger)
        let topics = TopicNames()
        for spec in topics.specifications(partitions: Int32(partitions)) {
            try cluster.createTopic(spec.name, partitions: spec.partitions)
        }
        let kafka = KafkaConfiguration(brokers: cluster.bootstrapServers)
        let producer = try KafkaProducer(configuration: kafka, name: "up-publisher", logger: logger)
        _ = try producer.sendAndWait(try catalogue.tools.map {
            OutgoingMessage(topic: topics.tools, key: $0.name, value: try WireToolSpec($0).encode())
        })
        producer.close()

        var settings = WorkerSettings(workerID: "up-worker-1", modelID: ServiceStack.modelID(lm))
        settings.topics = topics
        let stack = try ServiceStack.worker(lm: lm, settings: settings, kafka: kafka, toolsFile: nil, gateDirectory: gatePath,
                                            storeDirectory: storeURL.path, logger: logger)
        let health = metricsPort > 0 ? try ServiceStack.startHealth(port: metricsPort, metrics: stack.metrics, isReady: { stack.worker.isReady }, logger: logger) : nil
        let signals = ShutdownSignals { [logger] in
            logger.info("signal received: stopping")
            stack.worker.stop()
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
        health?.stop()
        withExtendedLifetime(cluster) {}
        logger.info("stopped")
    }
}
