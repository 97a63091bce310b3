// `paratool bench service`: what the queue costs. The same requests answered by calling the engine
// in process and through Kafka (librdkafka's mock cluster in process, or --brokers) with 1 and 2
// workers: requests/s and p50/p99 latency, one request at a time (latency) and all at once
// (throughput).
import ArgumentParser
import Foundation
import Kafka
import LLM
import Logging
import ParaTool
import ParaToolService
import Wire

struct ServiceBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service",
        abstract: "Latency and throughput through Kafka against calling the engine in process.",
        discussion: """
            Requests are the demo catalogue's queries (no adapters, a fresh gate: the queue's cost does not \
            depend on them). Closed loop: one request at a time, latency from send to the Action's arrival at \
            the client. Open loop: all requests sent at once, requests/s until the last Action. The mock \
            cluster holds a fetch until fetch.wait.max.ms runs out (a real broker answers when data arrives), so workers and client use 1 ms here.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Requests per measurement.")
    var requests = 24

    @Option(help: "Tokens generated per request.")
    var maxNewTokens = 8

    @Option(help: "Most requests per worker batch in the open-loop run.")
    var batchSize = 8

    @Option(help: ArgumentHelp("An external broker instead of the in-process mock cluster.", valueName: "host:port"))
    var brokers: String?

    @Option(name: .customShort("X"), help: ArgumentHelp("A librdkafka property for every client (repeatable).", valueName: "key=value"))
    var kafkaProperties: [String] = []

    @Option(help: "fetch.wait.max.ms of the consumers on the mock cluster (it holds every fetch this long).")
    var mockFetchWaitMs = 1

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let lm = try modelOptions.load()
        let catalogue = try DemoCatalogue.catalogue()
        let queries = (0..<requests).map { DemoCatalogue.exampleQueries[$0 % DemoCatalogue.exampleQueries.count] }
        func engine() throws -> ToolCallEngine {
            try ToolCallEngine(model: lm, catalogue: catalogue, adapters: InMemoryAdapters(),
                               gate: GateNetwork(config: GateConfig(dimension: lm.model.config.hiddenSize)))
        }

        // In process.
        let direct = try engine()
        _ = try direct.run([ToolCallRequest(id: "warm", query: queries[0], maxNewTokens: maxNewTokens)])
        var inProcess: [Double] = []
        let t0 = ContinuousClock.now
        for (i, q) in queries.enumerated() {
            let start = ContinuousClock.now
            _ = try direct.run([ToolCallRequest(id: "p\(i)", query: q, maxNewTokens: maxNewTokens)])
            inProcess.append((ContinuousClock.now - start).seconds * 1000)
        }
        let inProcessRate = Double(queries.count) / (ContinuousClock.now - t0).seconds
        var rows: [(name: String, latency: [Double], rate: Double, worker: [Double], queue: [Double])] =
            [("in process", inProcess, inProcessRate, inProcess, [])]

        for workers in [1, 2] {
            let cluster = brokers == nil ? try KafkaMockCluster(logger: logger) : nil
            let topics = TopicNames(prefix: "bench\(workers).")
            let kafka = KafkaConfiguration(brokers: brokers ?? cluster!.bootstrapServers,
                                           properties: brokers == nil ? ["fetch.wait.max.ms": "\(mockFetchWaitMs)"] : [:])
                .merging(try KafkaConfiguration.properties(fromAssignments: kafkaProperties))
            let specs = topics.specifications(partitions: 2)
            if let cluster { for s in specs { try cluster.createTopic(s.name, partitions: s.partitions) } } else {
                try KafkaAdmin(configuration: kafka, logger: logger).createTopics(specs)
            }
            var running: [(Worker, RunningServices)] = []
            for w in 0..<workers {
                var settings = WorkerSettings(workerID: "bench-\(w)", modelID: WorkerStack.modelID(lm))
                settings.topics = topics
                settings.batchSize = batchSize
                settings.logTrajectories = false
                let metrics = ServiceMetrics()
                let control = try ControlListener(kafka: kafka, topics: topics, registry: nil, followTools: false, followAdapters: false,
                                                  metrics: metrics, logger: logger)
                let worker = Worker(settings: settings, kafka: kafka, catalogue: catalogue, gate: nil, control: control,
                                    metrics: metrics, logger: logger) { _, _ in try engine() }
                running.append((worker, RunningServices([control, worker], logger: logger)))
            }
            for (worker, _) in running { try await worker.ready() }
            let client = try RequestClient(kafka: kafka, topics: topics, logger: logger)
            func wire(_ id: String, _ q: String) -> WireToolCallRequest {
                WireToolCallRequest(requestID: id, query: q, maxNewTokens: UInt32(maxNewTokens))
            }
            _ = try client.call(wire("warm", queries[0]), timeout: .seconds(60))
            var closed: [Double] = []
            var workerMs: [Double] = []
            for (i, q) in queries.enumerated() {
                let start = ContinuousClock.now
                guard let r = try client.call(wire("c\(i)", q), timeout: .seconds(60)) else { throw UsageError("request c\(i) timed out") }
                closed.append((ContinuousClock.now - start).seconds * 1000)
                workerMs.append(r.action.timings?.totalMs ?? 0)
            }
            let queuePath = zip(closed, workerMs).map { $0 - $1 }
            let t1 = ContinuousClock.now
            for (i, q) in queries.enumerated() { try client.send(wire("o\(i)", q)) }
            let got = try client.collect(Set(queries.indices.map { "o\($0)" }), timeout: .seconds(600))
            guard got.count == queries.count else { throw UsageError("open loop: \(got.count) of \(queries.count) answered") }
            let rate = Double(queries.count) / (got.values.map(\.receivedAt).max()! - t1).seconds
            rows.append(("Kafka, \(workers) worker\(workers == 1 ? "" : "s")", closed, rate, workerMs, queuePath))
            for (_, services) in running { try await services.shutdown() }
            // The broker outlives every client of this round.
            withExtendedLifetime((client, cluster)) {}
        }

        print("model \(WorkerStack.modelID(lm)), \(queries.count) requests of \(maxNewTokens) new tokens, broker \(brokers ?? "mock cluster (in process)")")
        print("| path | p50 ms | p99 ms | p50 over in-process | engine p50 ms | queue path p50 ms | requests/s (all sent at once) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        let base = percentile(inProcess, 0.5)
        for row in rows {
            let p50 = percentile(row.latency, 0.5)
            print(String(format: "| %@ | %.1f | %.1f | %@ | %.1f | %@ | %.2f |", row.name, p50, percentile(row.latency, 0.99),
                         row.queue.isEmpty ? "–" : String(format: "%+.1f ms", p50 - base), percentile(row.worker, 0.5),
                         row.queue.isEmpty ? "–" : String(format: "%.1f", percentile(row.queue, 0.5)), row.rate))
        }
        print("engine: the worker's consumed-to-answered time (Action.timings.total_ms); queue path: client round trip minus that, per request.")
    }

    func percentile(_ values: [Double], _ q: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * q).rounded()))]
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
