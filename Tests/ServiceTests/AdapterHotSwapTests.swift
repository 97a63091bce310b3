// Adapter hot swap under load: a verified new version serves from the next requests on with no
// failed request; a version whose files do not match its hash, or whose update names another
// hash, is refused and the previous version keeps serving.
import Foundation
import Kafka
import ParaTool
import ParaToolService
import Testing
import Wire

@Suite(.serialized) struct AdapterHotSwapTests {
    func publishUpdate(_ harness: ServiceHarness, tool: String, version: AdapterVersion, sha256: String? = nil) throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        let update = WireAdapterUpdate(tool: tool, version: version.version, uri: version.path.path, sha256: sha256 ?? version.sha256,
                                       stage: version.stage, createdUnixMs: version.createdUnixMs)
        _ = try producer.sendAndWait([OutgoingMessage(topic: harness.topics.adapters, key: tool, value: try update.encode())])
        producer.close()
    }

    func versionServing(_ client: RequestClient, id: String) throws -> String? {
        try client.call(WireToolCallRequest(requestID: id, query: "Weather in Rome?", maxNewTokens: 2, mode: .average), timeout: .seconds(30))?
            .action.weights.first { $0.tool == "get_weather" }?.adapterVersion
    }

    @Test func swapUnderLoadAndRefuseCorruptVersions() throws {
        let harness = try ServiceHarness()
        try harness.startWorker(id: "w1")
        let client = try harness.client()
        #expect(try versionServing(client, id: "before") == "v000001")

        // Background load while the update lands.
        let load = (0..<16).map { WireToolCallRequest(requestID: "load\($0)", query: "Weather in Rome?", maxNewTokens: 2, mode: .average) }
        for r in load.prefix(8) { try client.send(r) }
        let v2 = try harness.store.publish(try ServiceFixtures.adapter(1), tool: "get_weather", stage: "joint", baseModel: "tiny-qwen2")
        try publishUpdate(harness, tool: "get_weather", version: v2)
        for r in load.suffix(8) { try client.send(r) }
        let results = try client.collect(Set(load.map(\.requestID)), timeout: .seconds(60))
        #expect(results.count == load.count)
        #expect(results.values.allSatisfy { $0.action.status == .ok }, "no request failed during the swap")
        let seen = Set(results.values.compactMap { $0.action.weights.first { $0.tool == "get_weather" }?.adapterVersion })
        #expect(seen.isSubset(of: ["v000001", "v000002"]))
        // Updates are applied in order on the control thread: soon every new request uses v2.
        var current: String?
        for i in 0..<50 {
            current = try versionServing(client, id: "after\(i)")
            if current == "v000002" { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(current == "v000002")

        // v3's weights are altered after publishing: its files no longer hash to the manifest.
        let v3 = try harness.store.publish(try ServiceFixtures.adapter(2), tool: "get_weather", stage: "joint", baseModel: "tiny-qwen2")
        let weights = v3.path.appendingPathComponent("adapter_model.safetensors")
        var bytes = try Data(contentsOf: weights)
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: weights)
        try publishUpdate(harness, tool: "get_weather", version: v3)
        // v4 is intact but the update announces a different hash.
        let v4 = try harness.store.publish(try ServiceFixtures.adapter(2), tool: "get_weather", stage: "joint", baseModel: "tiny-qwen2")
        try publishUpdate(harness, tool: "get_weather", version: v4, sha256: String(repeating: "0", count: 64))
        Thread.sleep(forTimeInterval: 1)
        #expect(try versionServing(client, id: "refused") == "v000002", "refused versions leave v2 serving")
    }

    func versionServing(_ client: RequestClient, tool: String, id: String) throws -> String? {
        try client.call(WireToolCallRequest(requestID: id, query: "Weather in Rome?", candidateTools: [tool], maxNewTokens: 2, mode: .average),
                        timeout: .seconds(30))?.action.weights.first { $0.tool == tool }?.adapterVersion
    }

    /// An announcement is only as good as the store's word on the version: one held for review
    /// and not promoted (pending or rejected) is refused, a promoted one is swapped in; and on a
    /// worker that has not loaded a tool yet, a version older than the store's servable latest is
    /// refused (before, it was applied and served instead of the latest).
    @Test func refusesVersionsTheStoreDoesNotServe() throws {
        let harness = try ServiceHarness()
        // book_flight has a newer servable version than the one an old announcement names.
        let flightV2 = try harness.store.publish(try ServiceFixtures.adapter(0), tool: "book_flight", stage: "joint", baseModel: "tiny-qwen2")
        let flightV1 = try harness.store.manifest(tool: "book_flight", version: "v000001")
        try publishUpdate(harness, tool: "book_flight", version: flightV1)
        let metrics = ServiceMetrics()
        try harness.startWorker(id: "w1", metrics: metrics)
        let client = try harness.client()
        #expect(try versionServing(client, tool: "book_flight", id: "flight") == flightV2.version, "the old announcement is refused")
        #expect(try versionServing(client, id: "before") == "v000001")

        func review(_ decision: AdapterReview.Decision) -> AdapterReview {
            AdapterReview(decision: decision, reason: "test", servingVersion: "v000001", candidate: HeldOutScore(episodes: 1, correct: 1, meanNLL: 0.5),
                          serving: HeldOutScore(episodes: 1, correct: 0, meanNLL: 1), heldOutSteps: 1)
        }
        let pending = try harness.store.publish(try ServiceFixtures.adapter(1), tool: "get_weather", stage: "pretrain", baseModel: "tiny-qwen2",
                                                heldForReview: true)
        let rejected = try harness.store.publish(try ServiceFixtures.adapter(2), tool: "get_weather", stage: "pretrain", baseModel: "tiny-qwen2",
                                                 heldForReview: true)
        try harness.store.recordReview(review(.rejected), tool: "get_weather", version: rejected.version)
        try publishUpdate(harness, tool: "get_weather", version: pending)
        try publishUpdate(harness, tool: "get_weather", version: rejected)
        Thread.sleep(forTimeInterval: 1)
        #expect(try versionServing(client, id: "held") == "v000001", "pending and rejected versions are not served")
        #expect(metrics.exposition().contains(#"paratool_adapter_updates_total{result="refused"} 2"#), "\(metrics.exposition())")

        let promoted = try harness.store.publish(try ServiceFixtures.adapter(1), tool: "get_weather", stage: "pretrain", baseModel: "tiny-qwen2",
                                                 heldForReview: true)
        try harness.store.recordReview(review(.promoted), tool: "get_weather", version: promoted.version)
        try publishUpdate(harness, tool: "get_weather", version: promoted)
        var current: String?
        for i in 0..<50 {
            current = try versionServing(client, id: "promoted\(i)")
            if current == promoted.version { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(current == promoted.version)
    }

    func weights(_ client: RequestClient, id: String) throws -> [Double]? {
        try client.call(WireToolCallRequest(requestID: id, query: "Weather in Rome?", maxNewTokens: 2, mode: .paratool), timeout: .seconds(30))?
            .action.weights.map(\.weight)
    }

    @Test func announcedGateIsVerifiedAndSwapped() throws {
        let harness = try ServiceHarness()
        try harness.startWorker(id: "w1")
        let client = try harness.client()
        let lm = ServiceFixtures.model
        // What a gate gives for the query, computed in process by an engine holding it.
        func expected(_ gate: GateNetwork) throws -> [Double] {
            let engine = try ToolCallEngine(model: lm, catalogue: ServiceFixtures.catalogue, adapters: InMemoryAdapters(), gate: gate)
            return try engine.mixture(for: ToolCallRequest(id: "x", query: "Weather in Rome?", mode: .paratool)).weights.map { Double($0.weight) }
        }
        let initial = try #require(try weights(client, id: "before"))
        let before = try expected(GateNetwork(config: GateConfig(dimension: lm.model.config.hiddenSize, hidden: [32, 32]), seed: 5))
        #expect(zip(initial, before).allSatisfy { abs($0 - $1) < 1e-5 })

        let root = harness.storeRoot.deletingLastPathComponent().appendingPathComponent("gates-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let newDir = root.appendingPathComponent("g000000000000001")
        try GateNetwork(config: GateConfig(dimension: lm.model.config.hiddenSize, hidden: [16]), seed: 9).save(to: newDir)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        _ = try producer.sendAndWait([OutgoingMessage(topic: harness.topics.adapters, key: GateDistribution.toolKey,
                                                      value: try GateDistribution.update(directory: newDir).encode())])
        let after = try expected(try GateNetwork.load(from: newDir))
        #expect(zip(after, before).contains { abs($0 - $1) > 1e-3 }, "the new gate weighs differently")
        var got: [Double]?
        for i in 0..<50 {
            got = try weights(client, id: "after\(i)")
            if let g = got, zip(g, after).allSatisfy({ abs($0 - $1) < 1e-5 }) { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(got.map { zip($0, after).allSatisfy { abs($0 - $1) < 1e-5 } } == true, "the announced gate serves")

        // A gate whose files changed after the announcement's hash was taken is refused.
        let badDir = root.appendingPathComponent("g000000000000002")
        try GateNetwork(config: GateConfig(dimension: lm.model.config.hiddenSize, hidden: [16]), seed: 11).save(to: badDir)
        let update = try GateDistribution.update(directory: badDir)
        let weightsFile = badDir.appendingPathComponent(GateNetwork.weightsFileName)
        var bytes = try Data(contentsOf: weightsFile)
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: weightsFile)
        _ = try producer.sendAndWait([OutgoingMessage(topic: harness.topics.adapters, key: GateDistribution.toolKey, value: try update.encode())])
        producer.close()
        Thread.sleep(forTimeInterval: 1)
        let final = try #require(try weights(client, id: "refused"))
        #expect(zip(final, after).allSatisfy { abs($0 - $1) < 1e-5 }, "the refused gate leaves the previous one serving")
    }

    /// A gate announced with another dimension than the model's is refused by the listener
    /// (counted, logged) and the previous gate keeps serving; before, the listener took it and
    /// only the worker's loop caught it, and a worker started without a gate built an engine
    /// with it and stopped at `setTool`'s precondition.
    @Test func aGateOfAnotherDimensionIsRefused() throws {
        let harness = try ServiceHarness()
        let metrics = ServiceMetrics()
        try harness.startWorker(id: "w1", metrics: metrics)
        let client = try harness.client()
        let initial = try #require(try weights(client, id: "before"))
        let hidden = ServiceFixtures.model.model.config.hiddenSize
        let root = harness.storeRoot.deletingLastPathComponent().appendingPathComponent("gates-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let wide = root.appendingPathComponent("g000000000000001")
        let gate = GateNetwork(config: GateConfig(dimension: hidden + 8, hidden: [16]), seed: 9)
        gate.setTool("get_weather", vector: [Float](repeating: 0.5, count: hidden + 8))
        try gate.save(to: wide)
        let update = try GateDistribution.update(directory: wide)
        #expect(throws: GateError.self) { try GateDistribution.load(update, dimension: hidden) }
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        _ = try producer.sendAndWait([OutgoingMessage(topic: harness.topics.adapters, key: GateDistribution.toolKey, value: try update.encode())])
        producer.close()
        let deadline = Date().addingTimeInterval(10)
        while !metrics.exposition().contains(#"paratool_adapter_updates_total{result="refused"} 1"#), Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(metrics.exposition().contains(#"paratool_adapter_updates_total{result="refused"} 1"#), "\(metrics.exposition())")
        let after = try #require(try weights(client, id: "after"))
        #expect(zip(after, initial).allSatisfy { abs($0 - $1) < 1e-5 }, "the previous gate serves")
    }
}
