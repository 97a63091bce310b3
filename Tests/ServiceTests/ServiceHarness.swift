// A worker on the tiny Qwen2 fixture model with PEFT's three fixture adapters published to a
// temporary adapter store, served over librdkafka's mock cluster: the setting of the service tests.
import FixtureSupport
import Foundation
import Kafka
import KafkaTestSupport
import LLM
import Logging
import ParaTool
import ParaToolService
import Wire

enum ServiceFixtures {
    /// `Tests/Fixtures/hf-tiny`.
    static var hfTiny: URL { RepositoryFixtures.hfTiny }

    static let catalogue = ToolCatalogue([
        ToolSpec(name: "get_weather", description: "Current weather for a city"),
        ToolSpec(name: "book_flight", description: "Book a flight between two airports"),
        ToolSpec(name: "convert_currency", description: "Convert an amount between currencies"),
    ])

    /// The model, loaded once for all tests.
    static let model: LanguageModel = try! LanguageModel.load(path: hfTiny.appendingPathComponent("qwen2").path)

    static func adapter(_ i: Int) throws -> ToolAdapter {
        try ToolAdapter.load(peftDirectory: hfTiny.appendingPathComponent("adapters/tool_\(i)"))
    }
}

/// One broker (librdkafka's mock cluster, or Tansu for transactions) with the service's topics, an
/// adapter store, and workers started on threads.
final class ServiceHarness: @unchecked Sendable {
    enum Broker { case mock, tansu }
    let cluster: KafkaMockCluster?
    let tansu: TansuBroker?
    let kafka: KafkaConfiguration
    let topics = TopicNames(prefix: "test.")
    let store: AdapterStore
    let storeRoot: URL
    var logger = Logger(label: "test")
    private var workers: [(worker: Worker, services: RunningServices)] = []

    init(partitions: Int32 = 2, broker: Broker = .mock) throws {
        logger.logLevel = .warning
        switch broker {
        case .mock:
            let cluster = try KafkaMockCluster(logger: logger)
            for spec in topics.specifications(partitions: partitions) {
                try cluster.createTopic(spec.name, partitions: spec.partitions)
            }
            self.cluster = cluster
            tansu = nil
            // A crashed member leaves the group after the session timeout: keep it short in tests.
            kafka = KafkaConfiguration(brokers: cluster.bootstrapServers, properties: ["session.timeout.ms": "6000"])
        case .tansu:
            let tansu = try TansuBroker()
            self.tansu = tansu
            cluster = nil
            kafka = KafkaConfiguration(brokers: tansu.bootstrap, properties: TansuBroker.groupProperties)
            try KafkaAdmin(configuration: kafka, logger: logger).createTopics(topics.specifications(partitions: partitions))
        }
        storeRoot = FileManager.default.temporaryDirectory.appendingPathComponent("paratool-store-\(UUID().uuidString)")
        store = try AdapterStore(root: storeRoot)
        for (i, name) in ServiceFixtures.catalogue.names.enumerated() {
            _ = try store.publish(try ServiceFixtures.adapter(i), tool: name, stage: "fixture", baseModel: "tiny-qwen2")
        }
    }

    deinit {
        stopAll()
        try? FileManager.default.removeItem(at: storeRoot)
    }

    /// Starts a worker (and its control listener) in a service group; returns it once it serves.
    /// With `catalogue` nil the worker follows the `tools` topic; `kafka` overrides the harness's
    /// client configuration for this worker.
    @discardableResult
    func startWorker(id: String, catalogue: ToolCatalogue? = ServiceFixtures.catalogue, metrics: ServiceMetrics = ServiceMetrics(),
                     kafka override: KafkaConfiguration? = nil, settings customize: (inout WorkerSettings) -> Void = { _ in }) throws -> Worker {
        var settings = WorkerSettings(workerID: id, modelID: "tiny-qwen2")
        settings.topics = topics
        settings.defaultMaxNewTokens = 4
        customize(&settings)
        let lm = ServiceFixtures.model
        let gate = GateNetwork(config: GateConfig(dimension: lm.model.config.hiddenSize, hidden: [32, 32]), seed: 5)
        let stack = try WorkerStack(model: lm, settings: settings, kafka: override ?? kafka, catalogue: catalogue, gate: gate,
                                    store: store, metrics: metrics, logger: logger)
        let services = RunningServices(stack.services, logger: logger)
        workers.append((stack.worker, services))
        let worker = stack.worker
        try waitFor { try await worker.ready() }
        return worker
    }

    /// Shuts a worker down gracefully and waits for it to end; rethrows its error.
    func stop(_ worker: Worker) throws {
        guard let i = workers.firstIndex(where: { $0.worker === worker }) else { return }
        let services = workers.remove(at: i).services
        try waitFor { try await services.shutdown() }
    }

    func stopAll() {
        let running = workers.map(\.services)
        workers.removeAll()
        try? waitFor { for s in running { try? await s.shutdown() } }
    }

    func client() throws -> RequestClient { try RequestClient(kafka: kafka, topics: topics, logger: logger) }

    /// Reads every message of `topic` from the beginning (until `count` arrived or the timeout).
    func readAll(_ topic: String, count: Int, timeout: Duration = .seconds(20)) throws -> [KafkaMessage] {
        let reader = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: kafka, groupID: nil), name: "test-reader", logger: logger)
        defer { reader.close() }
        let n = try reader.partitionCount(topic: topic)
        try reader.assign((0..<n).map { TopicPartitionOffset(topic: topic, partition: $0, offset: LogicalOffset.beginning) })
        var out: [KafkaMessage] = []
        let deadline = ContinuousClock.now + timeout
        while out.count < count, ContinuousClock.now < deadline {
            if let m = try reader.poll(timeout: .milliseconds(100)) { out.append(m) }
        }
        return out
    }
}

/// Runs `body` on a thread of its own and blocks the calling (test) thread until it returns:
/// the bridge from the synchronous tests to the async services.
func waitFor<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = WaitOutcome<T>()
    let done = DispatchSemaphore(value: 0)
    Task(executorPreference: ServiceThread(name: "test-wait")) {
        do { outcome.result = .success(try await body()) } catch { outcome.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try outcome.result!.get()
}

/// What `waitFor`'s task produced, handed to the waiting thread (the semaphore orders the accesses).
final class WaitOutcome<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}
