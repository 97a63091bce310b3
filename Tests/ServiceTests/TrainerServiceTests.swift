// The online trainer over the mock cluster on the tiny fixture model: solved trajectories are stored
// durably (others skipped), a tool is retrained after K of them, its new version is published in
// the store and announced on `adapters`; a restarted trainer keeps the dataset without duplicates.
// Without a catalogue file the trainer takes the tool documents from the `tools` topic.
import Foundation
import Kafka
import ParaTool
import ParaToolService
import ParaToolTraining
import Testing
import Wire

@Suite(.serialized) struct TrainerServiceTests {
    /// Trainer settings on `harness`'s topics and store, the tiny model, 2 steps of rank-4
    /// training, and a dataset under `work`.
    private func trainerSettings(_ harness: ServiceHarness, work: URL, tools: URL?, retrainEvery: Int) -> TrainerSettings {
        var settings = TrainerSettings(dataset: work.appendingPathComponent("dataset"), store: harness.storeRoot, tools: tools)
        settings.topics = harness.topics
        settings.model = ServiceFixtures.hfTiny.appendingPathComponent("qwen2").path
        settings.retrainEvery = retrainEvery
        settings.adapter.steps = 2
        settings.adapter.rank = 4
        settings.adapter.alpha = 8
        return settings
    }

    /// A reader of `adapters` from its beginning, and a trainer running on its own thread; `finish`
    /// stops the trainer and returns what its `run()` threw.
    private func startTrainer(_ harness: ServiceHarness, settings: TrainerSettings) throws
        -> (announcements: KafkaConsumer, trainer: TrainerService, finish: () -> Error?) {
        let announcements = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: harness.kafka, groupID: nil), logger: harness.logger)
        try announcements.assign([TopicPartitionOffset(topic: harness.topics.adapters, partition: 0, offset: LogicalOffset.beginning)])
        let stack = try TrainerStack(settings: settings, kafka: harness.kafka, metrics: ServiceMetrics(), logger: harness.logger)
        let services = RunningServices(stack.services, logger: harness.logger)
        return (announcements, stack.trainer, {
            do { try waitFor { try await services.shutdown() } } catch { return error }
            return nil
        })
    }

    @Test func storesRetrainsPublishesAndAnnounces() throws {
        let harness = try ServiceHarness()
        let work = harness.storeRoot.deletingLastPathComponent().appendingPathComponent("trainer-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let toolsFile = work.appendingPathComponent("tools.json")
        try Data(#"[{"name":"get_weather","description":"Current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},{"name":"book_flight","description":"Book a flight between two airports"},{"name":"convert_currency","description":"Convert an amount between currencies"}]"#.utf8).write(to: toolsFile)
        var settings = trainerSettings(harness, work: work, tools: toolsFile, retrainEvery: 3)
        settings.stages = [1, 2]

        func trajectory(_ id: String, city: String, outcome: WireOutcome = .solved) -> WireTrajectory {
            WireTrajectory(id: id, query: "Weather in \(city)?", candidateTools: ["get_weather", "book_flight"],
                           steps: [WireStep(calls: [WireToolCall(name: "get_weather", argumentsJSON: #"{"city": "\#(city)"}"#)])],
                           outcome: outcome, source: "test")
        }
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        var messages = try [("t1", "Paris"), ("t2", "Oslo"), ("t3", "Rome")].map {
            OutgoingMessage(topic: harness.topics.trajectories, key: "get_weather", value: try trajectory($0.0, city: $0.1).encode())
        }
        messages.append(OutgoingMessage(topic: harness.topics.trajectories, key: "get_weather",
                                        value: try trajectory("unlabelled", city: "Lima", outcome: .unknown).encode()))
        messages.append(OutgoingMessage(topic: harness.topics.trajectories, key: "get_weather", value: [0xff, 0x01]))
        _ = try producer.sendAndWait(messages)

        let (announcements, trainer, finish) = try startTrainer(harness, settings: settings)

        var updates: [String: WireAdapterUpdate] = [:]
        let deadline = Date().addingTimeInterval(180)
        while updates.count < 2, Date() < deadline {
            if let m = try announcements.poll(timeout: .milliseconds(200)) {
                let u = try WireAdapterUpdate(bytes: m.value)
                updates[u.tool] = u
            }
        }
        let announced = try #require(updates["get_weather"], "an AdapterUpdate is announced")
        // Stage 2 ran too: the new gate is announced with the hash of its files, and loads.
        let gateUpdate = try #require(updates[GateDistribution.toolKey], "the retrained gate is announced")
        #expect(gateUpdate.stage == "gate")
        #expect(try GateDistribution.load(gateUpdate).toolVectors.keys.contains("get_weather"))
        #expect(announced.tool == "get_weather")
        #expect(announced.version == "v000002", "v000001 is the fixture adapter the harness published")
        #expect(announced.stage == "pretrain")
        // The announced version is in the store and verifies against the announced hash.
        let adapter = try harness.store.load(tool: "get_weather", version: announced.version, expectedSHA256: announced.sha256)
        #expect(adapter.rank == 4)
        #expect(trainer.dataset.count == 3, "solved trajectories only")
        #expect(finish() == nil)

        // Restart: the stored dataset is read back; a redelivered trajectory is not stored twice.
        _ = try producer.sendAndWait([OutgoingMessage(topic: harness.topics.trajectories, key: "get_weather",
                                                      value: try trajectory("t1", city: "Paris").encode())])
        let againStack = try TrainerStack(settings: settings, kafka: harness.kafka, metrics: ServiceMetrics(), logger: harness.logger)
        let again = againStack.trainer
        #expect(again.dataset.count == 3)
        #expect(again.dataset.due(threshold: 1).isEmpty, "the trained counts survive the restart")
        let againServices = RunningServices(againStack.services, logger: harness.logger)
        let until = Date().addingTimeInterval(15)
        while !again.isReady, Date() < until { Thread.sleep(forTimeInterval: 0.1) }
        Thread.sleep(forTimeInterval: 2)
        try waitFor { try await againServices.shutdown() }
        #expect(again.dataset.count == 3)
        let lines = try String(contentsOf: settings.dataset.appendingPathComponent("trajectories.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try Trajectory(json: try JSONValue.parse(String($0))).id }
        #expect(lines == ["t1", "t2", "t3"])
    }

    /// Feedback on the `feedback` topic joins the served candidates into stored episodes (a
    /// solved one with the served calls, a corrected one with the corrected calls); unsolved
    /// feedback without a correction is not stored; undecodable and invalid feedback go to `dlq`
    /// with their reason. A restarted trainer still joins a candidate, and feedback, that the
    /// first one held (its journal).
    @Test func joinsFeedbackWithServedCandidates() throws {
        let harness = try ServiceHarness()
        let work = harness.storeRoot.deletingLastPathComponent().appendingPathComponent("trainer-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let toolsFile = work.appendingPathComponent("tools.json")
        try Data(#"[{"name":"get_weather","description":"Current weather for a city"}]"#.utf8).write(to: toolsFile)
        let settings = trainerSettings(harness, work: work, tools: toolsFile, retrainEvery: 1000)

        // What a worker publishes for three served requests (outcome unknown, source served:<worker>).
        func served(_ id: String, city: String) throws -> OutgoingMessage {
            let t = WireTrajectory(id: id, query: "Weather in \(city)?", candidateTools: ["get_weather"],
                                   steps: [WireStep(calls: [WireToolCall(name: "get_weather", argumentsJSON: #"{"town": "\#(city)"}"#)])],
                                   outcome: .unknown, source: "served:w1")
            return OutgoingMessage(topic: harness.topics.trajectories, key: "get_weather", value: try t.encode())
        }
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        _ = try producer.sendAndWait([try served("r1", city: "Oslo"), try served("r2", city: "Rome"), try served("r3", city: "Lima"),
                                      try served("r4", city: "Bern")])
        let client = try RequestClient(kafka: harness.kafka, topics: harness.topics, logger: harness.logger)
        try client.report(WireFeedback(requestID: "r1", outcome: .solved, source: "agent"))
        try client.report(WireFeedback(requestID: "r2", outcome: .unsolved, correctedCalls: [
            WireToolCall(name: "get_weather", argumentsJSON: #"{"city": "Rome"}"#)], source: "agent"))
        try client.report(WireFeedback(requestID: "r3", outcome: .unsolved, source: "agent"))
        try client.report(WireFeedback(requestID: "r5", outcome: .solved, source: "agent"))
        _ = try producer.sendAndWait([
            OutgoingMessage(topic: harness.topics.feedback, key: "r9", value: [0xff, 0x01]),
            OutgoingMessage(topic: harness.topics.feedback, key: "r3", value: try WireFeedback(requestID: "r3", outcome: .unsolved, correctedCalls: [
                WireToolCall(name: "get_weather", argumentsJSON: "not json")]).encode()),
        ])

        let (_, trainer, finish) = try startTrainer(harness, settings: settings)
        let deadline = Date().addingTimeInterval(60)
        while trainer.dataset.count < 2, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        let letters = try harness.readAll(harness.topics.dlq, count: 2)
        #expect(finish() == nil)
        func stored() throws -> [Trajectory] {
            try String(contentsOf: settings.dataset.appendingPathComponent("trajectories.jsonl"), encoding: .utf8)
                .split(separator: "\n").map { try Trajectory(json: try JSONValue.parse(String($0))) }
        }
        #expect(try stored().map(\.id).sorted() == ["r1#feedback", "r2#feedback"], "the unlabelled candidates and r3 are not stored")

        // Restarted: r4's candidate and r5's feedback were held by the first trainer.
        try client.report(WireFeedback(requestID: "r4", outcome: .solved, source: "agent"))
        _ = try producer.sendAndWait([try served("r5", city: "Kyiv")])
        let (_, second, finishSecond) = try startTrainer(harness, settings: settings)
        let secondDeadline = Date().addingTimeInterval(60)
        while second.dataset.count < 4, Date() < secondDeadline { Thread.sleep(forTimeInterval: 0.1) }
        #expect(finishSecond() == nil)
        #expect(try stored().map(\.id).sorted() == ["r1#feedback", "r2#feedback", "r4#feedback", "r5#feedback"])
        let solved = try #require(try stored().first { $0.id == "r1#feedback" })
        #expect(solved.steps.last?.calls == [ToolCall(name: "get_weather", arguments: .object(["town": .string("Oslo")]))])
        let corrected = try #require(try stored().first { $0.id == "r2#feedback" })
        #expect(corrected.steps.last?.calls == [ToolCall(name: "get_weather", arguments: .object(["city": .string("Rome")]))])
        #expect(corrected.outcome == .solved && corrected.source == "correction:agent")
        #expect(letters.map { $0.header(DeadLetterHeader.errorCode)?.string } == ["feedback.invalid", "feedback.invalid"])
        #expect(letters.compactMap { $0.header(DeadLetterHeader.sourceTopic)?.string } == [harness.topics.feedback, harness.topics.feedback])
    }

    /// No --tools: the documents come from the `tools` topic. A tool published there is retrained
    /// with its document; trajectories of a tool missing from the topic stay stored and due.
    @Test func followsTheToolsTopic() throws {
        let harness = try ServiceHarness()
        let work = harness.storeRoot.deletingLastPathComponent().appendingPathComponent("trainer-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let settings = trainerSettings(harness, work: work, tools: nil, retrainEvery: 2)

        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        let weather = ToolSpec(name: "get_weather", description: "Weather report for a named city, from the topic")
        _ = try producer.sendAndWait(try harness.topics.toolMessages(ToolCatalogue([weather])))
        func trajectory(_ id: String, tool: String) -> WireTrajectory {
            WireTrajectory(id: id, query: "Use \(tool) for \(id)", candidateTools: [tool],
                           steps: [WireStep(calls: [WireToolCall(name: tool, argumentsJSON: #"{"city": "\#(id)"}"#)])],
                           outcome: .solved, source: "test")
        }
        let sent = try [("w1", "get_weather"), ("w2", "get_weather"), ("u1", "unpublished_tool"), ("u2", "unpublished_tool")].map {
            OutgoingMessage(topic: harness.topics.trajectories, key: $0.1, value: try trajectory($0.0, tool: $0.1).encode())
        }
        _ = try producer.sendAndWait(sent)

        let (announcements, trainer, finish) = try startTrainer(harness, settings: settings)
        var announced: WireAdapterUpdate?
        let deadline = Date().addingTimeInterval(180)
        while announced == nil, Date() < deadline {
            if let m = try announcements.poll(timeout: .milliseconds(200)) { announced = try WireAdapterUpdate(bytes: m.value) }
        }
        #expect(finish() == nil)
        let update = try #require(announced, "get_weather is retrained and announced")
        #expect(update.tool == "get_weather")
        #expect(update.version == "v000002")
        // The catalogue it trained with is the topic's, document included.
        let used = try ToolCatalogue.load(file: settings.dataset.appendingPathComponent("catalogue.json"))
        #expect(used.names == ["get_weather"])
        #expect(try used.specs(named: ["get_weather"]).first?.description == weather.description)
        #expect(trainer.dataset.count == 4)
        #expect(trainer.dataset.due(threshold: 2) == ["unpublished_tool"], "kept for when its document is published")
    }
}
