// Delivery guarantees under change and failure: exactly-once across a rebalance and a graceful
// hand-over on a real broker (Tansu); at-least-once through broker outages, injected produce and
// commit errors, and a worker process killed mid-stream (mock cluster). The duplicate counts are
// the assertions that would fail if a request were answered twice (or never).
import Foundation
import Kafka
import ParaToolService
import Testing
import Wire

@Suite(.serialized) struct DeliveryTests {
    func requests(_ prefix: String, _ n: Int) -> [WireToolCallRequest] {
        let queries = ["Weather in Paris?", "Fly me from SFO to JFK", "100 USD in EUR", "Rain in Oslo?"]
        return (0..<n).map { WireToolCallRequest(requestID: "\(prefix)\($0)", query: queries[$0 % queries.count], maxNewTokens: 3, mode: .average) }
    }

    /// Waits until `client` has answers for `ids`, then a quiet period to see any duplicate.
    func collect(_ client: RequestClient, _ ids: [String], timeout: Duration = .seconds(90)) throws -> [String: RequestResult] {
        let results = try client.collect(Set(ids), timeout: timeout)
        _ = try client.collect(["never-sent"], timeout: .seconds(2))
        return results
    }

    @Test func exactlyOnceAcrossRebalanceAndHandOverOnTansu() throws {
        let harness = try ServiceHarness(broker: .tansu)
        let w1 = try harness.startWorker(id: "w1") { $0.exactlyOnce = true; $0.batchSize = 3 }
        let client = try harness.client()
        let first = requests("a", 12)
        for r in first { try client.send(r) }
        _ = try client.collect(Set(first.prefix(3).map(\.requestID)), timeout: .seconds(60))
        // A second member joins mid-stream (rebalance), then the first leaves gracefully.
        try harness.startWorker(id: "w2") { $0.exactlyOnce = true; $0.batchSize = 3 }
        let second = requests("b", 12)
        for r in second.prefix(6) { try client.send(r) }
        try harness.stop(w1)
        for r in second.suffix(6) { try client.send(r) }
        let ids = (first + second).map(\.requestID)
        let results = try collect(client, ids)
        #expect(Set(results.keys) == Set(ids), "every request answered")
        #expect(ids.filter { client.answerCount($0) != 1 } == [], "answered exactly once")
        #expect(results.values.allSatisfy { $0.action.status == .ok })
        harness.stopAll()
        let reader = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: harness.kafka, groupID: "paratool-workers"), logger: harness.logger)
        let committed = try reader.committed((0..<2).map { TopicPartition(topic: harness.topics.requests, partition: Int32($0)) })
        #expect(committed.reduce(Int64(0)) { $0 + max(0, $1.offset) } == Int64(ids.count), "offsets committed in the transactions")
    }

    @Test func brokerDownAndBackLosesNothing() throws {
        let harness = try ServiceHarness()
        try harness.startWorker(id: "w1")
        let client = try harness.client()
        let rs = requests("d", 10)
        for r in rs.prefix(5) { try client.send(r) }
        try harness.cluster!.setBroker(1, up: false)
        Thread.sleep(forTimeInterval: 2)
        try harness.cluster!.setBroker(1, up: true)
        for r in rs.suffix(5) { try client.send(r) }
        let results = try collect(client, rs.map(\.requestID))
        #expect(Set(results.keys) == Set(rs.map(\.requestID)))
        #expect(rs.allSatisfy { client.answerCount($0.requestID) >= 1 })
    }

    @Test func produceAndCommitErrorsAreRetried() throws {
        let harness = try ServiceHarness()
        try harness.startWorker(id: "w1")
        let client = try harness.client()
        // The next produce requests (the worker's outputs among them) and offset commits fail.
        harness.cluster!.pushRequestErrors(.produce, [.notLeaderForPartition, .requestTimedOut, .notEnoughReplicas, .notLeaderForPartition])
        harness.cluster!.pushRequestErrors(.offsetCommit, [.coordinatorNotAvailable, .notCoordinator, .requestTimedOut])
        let rs = requests("e", 8)
        for r in rs { try client.send(r) }
        let results = try collect(client, rs.map(\.requestID))
        #expect(Set(results.keys) == Set(rs.map(\.requestID)))
        #expect(results.values.allSatisfy { $0.action.status == .ok && $0.telemetry != nil })
    }

    /// A message the worker's producer can never deliver — here the dead letter of a request
    /// larger than the producer's message.max.bytes (the letter carries the request) — fails with
    /// a permanent error. Before, the worker retried it forever: it answered nothing after it
    /// and never committed. It is now logged, counted and skipped, and the worker serves on.
    @Test func undeliverableOutputDoesNotStopTheWorker() throws {
        try checkUndeliverableOutputIsSkipped(broker: .mock, prefix: "n") { $0.maxPromptTokens = 64 }
    }

    /// The same with exactly-once delivery (Tansu): the transaction holding the undeliverable
    /// letter fails; it is retried without that letter instead of forever.
    @Test func undeliverableOutputDoesNotStopATransactionalWorker() throws {
        try checkUndeliverableOutputIsSkipped(broker: .tansu, prefix: "t") {
            $0.exactlyOnce = true
            $0.maxPromptTokens = 64
        }
    }

    /// A worker whose broker takes messages of at most 20,000 bytes gets a request whose dead
    /// letter is larger, then four ordinary ones: those are answered, the letter is counted, and a
    /// truncated letter takes its place on `dlq`.
    func checkUndeliverableOutputIsSkipped(broker: ServiceHarness.Broker, prefix: String,
                                            configure: (inout WorkerSettings) -> Void) throws {
        let harness = try ServiceHarness(broker: broker)
        let metrics = ServiceMetrics()
        try harness.startWorker(id: "w1", metrics: metrics, kafka: harness.kafka.merging(["message.max.bytes": "20000"]), settings: configure)
        let client = try harness.client()
        try client.send(WireToolCallRequest(requestID: "huge", query: String(repeating: "weather ", count: 5000), maxNewTokens: 3, mode: .average))
        let rs = requests(prefix, 4)
        for r in rs { try client.send(r) }
        let results = try client.collect(Set(rs.map(\.requestID)), timeout: .seconds(30))
        #expect(Set(results.keys) == Set(rs.map(\.requestID)), "the requests after the undeliverable letter are answered")
        // The letter may be in a later batch than the answers.
        let deadline = Date().addingTimeInterval(10)
        while !metrics.exposition().contains("paratool_undeliverable_total{"), Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        #expect(metrics.exposition().contains(#"paratool_undeliverable_total{topic="test.dlq",error="MSG_SIZE_TOO_LARGE"} 1"#)
                || metrics.exposition().contains(#"paratool_undeliverable_total{error="MSG_SIZE_TOO_LARGE",topic="test.dlq"} 1"#),
                "\(metrics.exposition())")
        // In its place a truncated letter: the reason, where the request came from, its first bytes.
        // (The four ordinary requests are over maxPromptTokens: their letters are there too.)
        let letters = try harness.readAll(harness.topics.dlq, count: 5, timeout: .seconds(10))
        let letter = try #require(letters.first { $0.key == Array("huge".utf8) }, "a truncated dead letter reached dlq")
        #expect(letter.header(DeadLetterHeader.sourceTopic)?.string == harness.topics.requests)
        #expect(letter.header("paratool.request.id")?.string == "huge")
        #expect(letter.header("paratool.truncated.bytes").flatMap { Int($0.string) }.map { $0 > 20_000 } == true)
        #expect(letter.value.count < 20_000)
    }

    @Test func killedWorkerProcessIsReplacedWithoutLoss() throws {
        let harness = try ServiceHarness()
        let (process, toolsFile) = try startServeProcess(harness, workerID: "doomed")
        defer { try? FileManager.default.removeItem(at: toolsFile) }
        let client = try harness.client()
        let rs = requests("k", 24)
        for r in rs { try client.send(r) }
        // Kill it once it has answered something, in the middle of the stream.
        let firstAnswered = try client.collect([rs[0].requestID, rs[1].requestID], timeout: .seconds(60))
        #expect(!firstAnswered.isEmpty, "the worker process served before it was killed")
        #if os(Linux)
        if ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil {
            // The service restarted itself once to start with one allocator heap.
            let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(process.processIdentifier)/environ"))
            let variables = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            #expect(variables.contains("MALLOC_ARENA_MAX=1"), "serve runs with one allocator heap")
        }
        #endif
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try harness.startWorker(id: "survivor")
        let results = try collect(client, rs.map(\.requestID))
        #expect(Set(results.keys) == Set(rs.map(\.requestID)), "no request lost")
        #expect(rs.allSatisfy { client.answerCount($0.requestID) >= 1 })
        let byWorker = Dictionary(grouping: results.values.compactMap { $0.telemetry?.workerID }, by: { $0 }).mapValues(\.count)
        #expect(byWorker["survivor", default: 0] > 0, "the survivor took over: \(byWorker)")
    }

    /// SIGTERM to a worker process in the middle of a stream: it finishes its batch, commits,
    /// leaves the group and exits 0 within the shutdown timeout, and the other member of the
    /// group answers the rest; no request is lost.
    @Test func terminatedWorkerProcessHandsOverAndExitsZero() throws {
        let harness = try ServiceHarness()
        let (process, toolsFile) = try startServeProcess(harness, workerID: "leaving")
        defer { try? FileManager.default.removeItem(at: toolsFile) }
        let client = try harness.client()
        // Half the stream before the signal, half while the worker shuts down.
        let rs = requests("t", 32)
        for r in rs.prefix(16) { try client.send(r) }
        let firstAnswered = try client.collect([rs[0].requestID, rs[1].requestID], timeout: .seconds(60))
        #expect(!firstAnswered.isEmpty, "the worker process served before it was told to stop")
        try harness.startWorker(id: "successor")
        let signalled = ContinuousClock.now
        kill(process.processIdentifier, SIGTERM)
        for r in rs.suffix(16) { try client.send(r) }
        let limit = ServiceStack.defaultShutdownTimeout + .seconds(10)
        while process.isRunning, ContinuousClock.now - signalled < limit { Thread.sleep(forTimeInterval: 0.05) }
        let stillRunning = process.isRunning
        if stillRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(!stillRunning, "the worker exits within its shutdown timeout")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "an orderly shutdown exits 0")
        let results = try collect(client, rs.map(\.requestID))
        #expect(Set(results.keys) == Set(rs.map(\.requestID)), "no request lost")
        #expect(results.values.allSatisfy { $0.action.status == .ok })
        let byWorker = Dictionary(grouping: results.values.compactMap { $0.telemetry?.workerID }, by: { $0 }).mapValues(\.count)
        #expect(byWorker["successor", default: 0] > 0, "the other member took over: \(byWorker)")
        #expect(byWorker["leaving", default: 0] > 0, "the leaving worker answered its share: \(byWorker)")
    }

    /// `paratool serve` (built beside the tests) as a member of `harness`'s worker group on the
    /// tiny model, and the catalogue file it reads (the caller removes it).
    private func startServeProcess(_ harness: ServiceHarness, workerID: String) throws -> (Process, URL) {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("paratool")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "paratool is built beside the tests")
        let toolsFile = harness.storeRoot.deletingLastPathComponent().appendingPathComponent("tools-\(UUID().uuidString).json")
        try Data(#"[{"name":"get_weather","description":"Current weather for a city"},{"name":"book_flight","description":"Book a flight between two airports"},{"name":"convert_currency","description":"Convert an amount between currencies"}]"#.utf8).write(to: toolsFile)
        let process = Process()
        process.executableURL = binary
        process.arguments = ["serve", "--brokers", harness.kafka.brokers, "--topic-prefix", harness.topics.prefix,
                             "--model", ServiceFixtures.hfTiny.appendingPathComponent("qwen2").path,
                             "--tools", toolsFile.path, "--adapter-store", harness.store.root.path,
                             "--metrics-port", "0", "--worker-id", workerID, "--max-new-tokens", "3",
                             "--batch-size", "2", "--log-level", "error", "-X", "session.timeout.ms=6000"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, toolsFile)
    }
}
