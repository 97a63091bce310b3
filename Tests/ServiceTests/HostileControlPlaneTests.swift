// A worker and a trainer on the mock cluster under one message of every kind of attack the earlier
// hardening refuses (a non-finite or too deeply nested correction, a path-like tool name, a spec
// keyed as another tool, an announced version held for review, a gate of another dimension,
// undecodable bytes on each control and data topic), interleaved with ordinary traffic: every
// request is answered, every attack is counted as refused, nothing is written outside the store
// and dataset folders, the trainer still retrains and announces, and both come back on restart.
import Foundation
import Kafka
import ParaTool
import ParaToolService
import ParaToolTraining
import Testing
import Wire

@Suite(.serialized) struct HostileControlPlaneTests {
    /// Every regular file and folder under `root`, as paths relative to it.
    private func listing(_ root: URL) -> Set<String> {
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        let prefix = root.resolvingSymlinksInPath().path + "/"
        var out: Set<String> = []
        for case let url as URL in walker { out.insert(String(url.resolvingSymlinksInPath().path.dropFirst(prefix.count))) }
        return out
    }

    /// Waits until every one of `series` is in `metrics`' exposition (or 30 s passed); returns the exposition.
    private func waitForSeries(_ series: [String], in metrics: ServiceMetrics) -> String {
        let deadline = Date().addingTimeInterval(30)
        while !series.allSatisfy(metrics.exposition().contains), Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        return metrics.exposition()
    }

    @Test func attacksAreRefusedWhileOrdinaryTrafficIsServedAndTrained() throws {
        let harness = try ServiceHarness()
        let work = harness.storeRoot.deletingLastPathComponent().appendingPathComponent("hostile-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        var settings = TrainerSettings(dataset: work.appendingPathComponent("dataset"), store: harness.storeRoot, tools: nil)
        settings.topics = harness.topics
        settings.model = ServiceFixtures.hfTiny.appendingPathComponent("qwen2").path
        settings.retrainEvery = 3
        settings.adapter.steps = 2
        settings.adapter.rank = 4
        settings.adapter.alpha = 8
        settings.review = false  // the review has its own test; here a retrain must announce

        // The attacks' material: a version held for review, a gate one wider than the model.
        let held = try harness.store.publish(try ServiceFixtures.adapter(1), tool: "get_weather", stage: "joint", baseModel: "tiny-qwen2",
                                             heldForReview: true)
        let hidden = ServiceFixtures.model.model.config.hiddenSize
        let wideDir = work.appendingPathComponent("gates/g000000000000001")
        let wide = GateNetwork(config: GateConfig(dimension: hidden + 8, hidden: [16]), seed: 9)
        wide.setTool("get_weather", vector: [Float](repeating: 0.5, count: hidden + 8))
        try wide.save(to: wideDir)
        let before = listing(harness.storeRoot).union(listing(work).map { "work/" + $0 })

        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        defer { producer.close() }
        _ = try producer.sendAndWait(try harness.topics.toolMessages(ServiceFixtures.catalogue))

        let workerMetrics = ServiceMetrics()
        let worker = try harness.startWorker(id: "w1", catalogue: nil, metrics: workerMetrics)
        let trainerMetrics = ServiceMetrics()
        var trainerStack = try TrainerStack(settings: settings, kafka: harness.kafka, metrics: trainerMetrics, logger: harness.logger)
        var trainer = RunningServices(trainerStack.services, logger: harness.logger)
        let announcements = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: harness.kafka, groupID: nil), logger: harness.logger)
        defer { announcements.close() }
        try announcements.assign([TopicPartitionOffset(topic: harness.topics.adapters, partition: 0, offset: LogicalOffset.beginning)])

        let deep = String(repeating: #"{"a": "#, count: 99) + "{}" + String(repeating: "}", count: 99)
        func feedback(_ id: String, arguments: String) throws -> OutgoingMessage {
            OutgoingMessage(topic: harness.topics.feedback, key: id, value: try WireFeedback(requestID: id, outcome: .unsolved, correctedCalls: [
                WireToolCall(name: "get_weather", argumentsJSON: arguments)], source: "agent").encode())
        }
        func spec(_ name: String, key: String) throws -> OutgoingMessage {
            OutgoingMessage(topic: harness.topics.tools, key: Array(key.utf8), value: try WireToolSpec(ToolSpec(name: name, description: "Tool \(name)")).encode())
        }
        let junk: [UInt8] = [0xff, 0x01]
        let attacks: [OutgoingMessage] = [
            try feedback("r6", arguments: #"{"city": 1e999}"#),
            try feedback("r7", arguments: deep),
            try spec("../../x", key: "../../x"),
            try spec("book_flight", key: "get_weather"),
            OutgoingMessage(topic: harness.topics.adapters, key: "get_weather", value: try WireAdapterUpdate(
                tool: "get_weather", version: held.version, uri: held.path.path, sha256: held.sha256, stage: held.stage,
                createdUnixMs: held.createdUnixMs).encode()),
            OutgoingMessage(topic: harness.topics.adapters, key: GateDistribution.toolKey, value: try GateDistribution.update(directory: wideDir).encode()),
            OutgoingMessage(topic: harness.topics.tools, key: "junk", value: junk),
            OutgoingMessage(topic: harness.topics.adapters, key: "junk", value: junk),
            OutgoingMessage(topic: harness.topics.trajectories, key: "junk", value: junk),
            OutgoingMessage(topic: harness.topics.feedback, key: "junk", value: junk),
        ]
        let client = try harness.client()
        func request(_ id: String) -> WireToolCallRequest {
            WireToolCallRequest(requestID: id, query: "Weather in Rome?", maxNewTokens: 2, mode: .average)
        }
        let ids = (0..<16).map { "r\($0)" }
        for (i, id) in ids.enumerated() {
            try client.send(request(id))
            if i < 6 { _ = try producer.sendAndWait([try feedback(id, arguments: #"{"city": "City \#(i)"}"#)]) }
            if i < attacks.count { _ = try producer.sendAndWait([attacks[i]]) }
        }
        let results = try client.collect(Set(ids), timeout: .seconds(60))
        #expect(results.count == 16)
        #expect(results.values.allSatisfy { $0.action.status == .ok }, "\(results.values.map { String(describing: $0.action.error) })")

        // Each attack was delivered and refused where it entered.
        let workerRefusals = [#"paratool_tool_specs_total{result="refused"} 3"#, #"paratool_adapter_updates_total{result="refused"} 3"#]
        let workerExposition = waitForSeries(workerRefusals, in: workerMetrics)
        for series in workerRefusals { #expect(workerExposition.contains(series), "\(workerExposition)") }
        let trainerRefusals = [#"paratool_tool_specs_total{result="refused"} 3"#, #"paratool_trainer_feedback_total{result="invalid"} 3"#,
                               #"paratool_trainer_skipped_total{outcome="undecodable"} 1"#]
        let trainerExposition = waitForSeries(trainerRefusals, in: trainerMetrics)
        for series in trainerRefusals { #expect(trainerExposition.contains(series), "\(trainerExposition)") }

        // The six corrections are stored and retrain get_weather (every 3): announced.
        func nextRetrain(within seconds: Double) throws -> WireAdapterUpdate? {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                guard let m = try announcements.poll(timeout: .milliseconds(200)), let u = try? WireAdapterUpdate(bytes: m.value) else { continue }
                if u.tool == "get_weather", u.stage == "pretrain" { return u }
            }
            return nil
        }
        let first = try #require(try nextRetrain(within: 60), "the trainer retrains and announces")
        #expect(try harness.store.load(tool: "get_weather", version: first.version, expectedSHA256: first.sha256).rank == 4)

        // Restart both on the same store and dataset.
        try harness.stop(worker)
        try waitFor { [trainer] in try await trainer.shutdown() }
        let restartedMetrics = ServiceMetrics()
        try harness.startWorker(id: "w1", catalogue: nil, metrics: restartedMetrics)
        trainerStack = try TrainerStack(settings: settings, kafka: harness.kafka, metrics: ServiceMetrics(), logger: harness.logger)
        trainer = RunningServices(trainerStack.services, logger: harness.logger)
        let again = (16..<22).map { "r\($0)" }
        for (i, id) in again.enumerated() {
            try client.send(request(id))
            _ = try producer.sendAndWait([try feedback(id, arguments: #"{"city": "Town \#(i)"}"#)])
        }
        let answered = try client.collect(Set(again), timeout: .seconds(60))
        #expect(answered.count == again.count && answered.values.allSatisfy { $0.action.status == .ok })
        let served = Set(answered.values.compactMap { $0.action.weights.first { $0.tool == "get_weather" }?.adapterVersion })
        #expect(served.isSubset(of: ["v000001", first.version]), "the held version is never served: \(served)")
        // The restarted worker read the attacks again while catching up, and refused them again;
        // the held version, now older than the store's servable latest, is skipped as stale.
        let restartRefusals = [#"paratool_tool_specs_total{result="refused"} 3"#, #"paratool_adapter_updates_total{result="refused"} 2"#,
                               #"paratool_adapter_updates_total{result="stale"} 1"#]
        let caughtUp = waitForSeries(restartRefusals, in: restartedMetrics)
        for series in restartRefusals { #expect(caughtUp.contains(series), "\(caughtUp)") }
        var retrained: WireAdapterUpdate?
        while retrained == nil || retrained?.version == first.version {
            guard let u = try nextRetrain(within: 60) else { break }
            retrained = u
        }
        #expect(retrained.map { $0.version > first.version } == true, "the restarted trainer retrains and announces")
        try waitFor { [trainer] in try await trainer.shutdown() }
        harness.stopAll()

        // Only the store and the dataset changed; no `x` appeared beside or above them.
        let after = listing(harness.storeRoot).union(listing(work).map { "work/" + $0 })
        let added = after.subtracting(before)
        #expect(added.allSatisfy { !$0.hasPrefix("work/") || $0.hasPrefix("work/dataset") }, "\(added.sorted())")
        #expect(!added.contains { $0.split(separator: "/").contains("x") }, "\(added.sorted())")
        for base in [harness.storeRoot, work, settings.dataset, harness.storeRoot.appendingPathComponent("get_weather")] {
            for escape in ["x", "../x", "../../x"] {
                #expect(!FileManager.default.fileExists(atPath: base.appendingPathComponent(escape).standardizedFileURL.path), "\(base.path)/\(escape)")
            }
        }
        #expect(try harness.store.versions(tool: "get_weather").count >= 4, "fixture, held, and two retrained versions")
    }
}
