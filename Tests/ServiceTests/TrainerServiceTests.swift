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

    /// A new work folder beside `harness`'s store holding `tools.json` with `catalogue` (JSON):
    /// the folder (the caller removes it) and the file.
    private func trainerWork(_ harness: ServiceHarness, catalogue: String) throws -> (work: URL, toolsFile: URL) {
        let work = harness.storeRoot.deletingLastPathComponent().appendingPathComponent("trainer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let toolsFile = work.appendingPathComponent("tools.json")
        try Data(catalogue.utf8).write(to: toolsFile)
        return (work, toolsFile)
    }

    /// A reader of `adapters` from its beginning, and a trainer running on its own thread; `finish`
    /// stops the trainer and returns what its `run()` threw.
    private func startTrainer(_ harness: ServiceHarness, settings: TrainerSettings, metrics: ServiceMetrics = ServiceMetrics()) throws
        -> (announcements: KafkaConsumer, trainer: TrainerService, finish: () -> Error?) {
        let announcements = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: harness.kafka, groupID: nil), logger: harness.logger)
        try announcements.assign([TopicPartitionOffset(topic: harness.topics.adapters, partition: 0, offset: LogicalOffset.beginning)])
        let stack = try TrainerStack(settings: settings, kafka: harness.kafka, metrics: metrics, logger: harness.logger)
        let services = RunningServices(stack.services, logger: harness.logger)
        return (announcements, stack.trainer, {
            do { try waitFor { try await services.shutdown() } } catch { return error }
            return nil
        })
    }

    /// A tool whose schema changed since its adapter was trained is retrained for the new schema
    /// without waiting for data, and the new version records the new schema.
    @Test func retrainsAdaptersWhoseSchemaChanged() throws {
        let harness = try ServiceHarness()
        for (i, spec) in ServiceFixtures.catalogue.tools.enumerated() {
            _ = try harness.store.publish(try ServiceFixtures.adapter(i), tool: spec.name, stage: "fixture", baseModel: "tiny-qwen2",
                                          schemaFingerprint: spec.schemaFingerprint)
        }
        let (work, toolsFile) = try trainerWork(harness, catalogue: #"[{"name":"get_weather","description":"Current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},{"name":"book_flight","description":"Book a flight between two airports"},{"name":"convert_currency","description":"Convert an amount between currencies"}]"#)
        defer { try? FileManager.default.removeItem(at: work) }
        let settings = trainerSettings(harness, work: work, tools: toolsFile, retrainEvery: 1000)
        let catalogue = try ToolCatalogue.load(file: toolsFile)
        #expect(try harness.store.latest(tool: "get_weather")?.isStale(for: catalogue["get_weather"]!) == true)
        let (announcements, trainer, finish) = try startTrainer(harness, settings: settings)
        var announced: WireAdapterUpdate?
        let deadline = Date().addingTimeInterval(180)
        while announced == nil, Date() < deadline {
            if let m = try announcements.poll(timeout: .milliseconds(200)) { announced = try WireAdapterUpdate(bytes: m.value) }
        }
        let update = try #require(announced, "the stale adapter is retrained and announced")
        #expect(update.tool == "get_weather" && update.version == "v000003")
        #expect(try harness.store.latest(tool: "get_weather")?.schemaFingerprint == catalogue["get_weather"]!.schemaFingerprint)
        #expect(trainer.staleTools().isEmpty)
        #expect(finish() == nil)
    }

    /// After a forget request no file of the trainer's holds the request's query: dataset,
    /// feedback journal, set-aside lines; by source, everything that source sent goes; a forgotten
    /// request that arrives again is not stored.
    @Test func forgetsARequestAndASource() throws {
        let harness = try ServiceHarness()
        let (work, toolsFile) = try trainerWork(harness, catalogue: #"[{"name":"get_weather","description":"Current weather for a city"}]"#)
        defer { try? FileManager.default.removeItem(at: work) }
        var settings = trainerSettings(harness, work: work, tools: toolsFile, retrainEvery: 1000)
        settings.acceptUnlabelled = true
        settings.review = false
        // A line set aside at open that names the request (it cannot be read, so it is found by its bytes).
        try FileManager.default.createDirectory(at: settings.dataset, withIntermediateDirectories: true)
        try Data(#"{"id": "secret-1", "query": "ZX-8841 torn"#.utf8 + [0x0a]).write(to: settings.dataset.appendingPathComponent("trajectories.jsonl.rejected"))

        func served(_ id: String, query: String, requester: String) -> OutgoingMessage {
            let t = WireTrajectory(id: id, query: query, candidateTools: ["get_weather"],
                                   steps: [WireStep(calls: [WireToolCall(name: "get_weather", argumentsJSON: #"{"city": "Oslo"}"#, id: "call_1")])],
                                   outcome: .unknown, source: "served:w1", requestSource: requester)
            return OutgoingMessage(topic: harness.topics.trajectories, key: "get_weather", value: try! t.encode())
        }
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        defer { producer.close() }
        let secret = served("secret-1", query: "My secret query ZX-8841", requester: "agent:alice")
        let waiting = WireFeedback(requestID: "secret-3", outcome: .solved, source: "agent:alice")
        // The journal holds feedback as its protobuf bytes in base64.
        let waitingInJournal = Data(try waiting.encode()).base64EncodedString()
        _ = try producer.sendAndWait([
            secret, served("secret-2", query: "Another ALICE-77 question", requester: "agent:alice"),
            served("keep-1", query: "Public question BOB-12", requester: "agent:bob"),
            // Feedback waiting for a candidate that has not come: held in the join and its journal.
            OutgoingMessage(topic: harness.topics.feedback, key: "secret-3", value: try waiting.encode()),
        ])
        let (_, trainer, finish) = try startTrainer(harness, settings: settings)
        func wait(until done: () -> Bool) {
            let deadline = Date().addingTimeInterval(60)
            while !done(), Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        }
        /// Every file under the dataset directory holding `text`.
        func filesHolding(_ text: String) -> [String] {
            let root = settings.dataset
            let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
            return files.filter { (try? Data(contentsOf: $0))?.range(of: Data(text.utf8)) != nil }.map(\.lastPathComponent)
        }
        wait { trainer.dataset.count == 3 && filesHolding(waitingInJournal) == ["feedback-join.jsonl"] }
        #expect(filesHolding(waitingInJournal) == ["feedback-join.jsonl"])
        #expect(trainer.dataset.count == 3)
        #expect(filesHolding("ZX-8841").sorted() == ["feedback-join.jsonl", "trajectories.jsonl", "trajectories.jsonl.rejected"])

        _ = try producer.sendAndWait([OutgoingMessage(topic: harness.topics.forget, key: "secret-1",
                                                      value: try WireForgetRequest(requestID: "secret-1").encode())])
        wait { trainer.dataset.count == 2 }
        wait { filesHolding("ZX-8841").isEmpty }
        #expect(filesHolding("ZX-8841").isEmpty, "no file of the trainer's holds the query")
        #expect(!filesHolding("ALICE-77").isEmpty)

        _ = try producer.sendAndWait([OutgoingMessage(topic: harness.topics.forget, key: "agent:alice",
                                                      value: try WireForgetRequest(source: "agent:alice").encode())])
        wait { trainer.dataset.count == 1 && filesHolding("ALICE-77").isEmpty && filesHolding(waitingInJournal).isEmpty }
        #expect(filesHolding("ALICE-77").isEmpty)
        #expect(filesHolding(waitingInJournal).isEmpty, "the source's waiting feedback went too")
        #expect(filesHolding("agent:alice") == ["forgotten.jsonl"], "only the forget log names the source")
        #expect(filesHolding("BOB-12").sorted() == ["feedback-join.jsonl", "trajectories.jsonl"], "another source's records stay")

        // Redelivered, the forgotten request is not stored again.
        _ = try producer.sendAndWait([secret])
        Thread.sleep(forTimeInterval: 2)
        #expect(trainer.dataset.count == 1)
        #expect(filesHolding("ZX-8841").isEmpty)
        #expect(finish() == nil)
    }

    @Test func storesRetrainsPublishesAndAnnounces() throws {
        let harness = try ServiceHarness()
        let (work, toolsFile) = try trainerWork(harness, catalogue: #"[{"name":"get_weather","description":"Current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},{"name":"book_flight","description":"Book a flight between two airports"},{"name":"convert_currency","description":"Convert an amount between currencies"}]"#)
        defer { try? FileManager.default.removeItem(at: work) }
        var settings = trainerSettings(harness, work: work, tools: toolsFile, retrainEvery: 3)
        settings.stages = [1, 2]
        // Storage and announcement without the held-out review (none of t1–t3 is held out, so a
        // review would reject for want of evidence): `reviewsBeforeAnnouncing` tests the review.
        settings.review = false

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
        let (work, toolsFile) = try trainerWork(harness, catalogue: #"[{"name":"get_weather","description":"Current weather for a city"}]"#)
        defer { try? FileManager.default.removeItem(at: work) }
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

        let metrics = ServiceMetrics()
        let (_, trainer, finish) = try startTrainer(harness, settings: settings, metrics: metrics)
        let deadline = Date().addingTimeInterval(60)
        while trainer.dataset.count < 2, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        let letters = try harness.readAll(harness.topics.dlq, count: 2)
        #expect(finish() == nil)
        // Requests carry no client identity, so feedback for an id no worker served (r5, so far)
        // cannot be told from early feedback: it waits, and the gauge shows how much does.
        #expect(metrics.exposition().contains("paratool_trainer_feedback_waiting 1.0"), "\(metrics.exposition())")
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

    /// `paratool_announcement_failures_total` (nil before the first failure). A send soon after a
    /// refused one may fail as well (librdkafka keeps the topic's error for a moment).
    private func announcementFailures(_ metrics: ServiceMetrics) -> Int? {
        metrics.exposition().split(separator: "\n").first { $0.hasPrefix("paratool_announcement_failures_total ") }
            .flatMap { Int($0.split(separator: " ")[1]) }
    }

    /// An announcement the broker refuses for good. Before, the failed send failed the whole
    /// retraining: the versions stayed unannounced in the store, the tool was held off for a
    /// minute and then trained again. Now the failure is counted and logged, the training counts
    /// as done, and the announcements are sent again at the trainer's next round.
    @Test func aFailedAnnouncementIsCountedAndSentAgain() throws {
        let harness = try ServiceHarness()
        let (work, toolsFile) = try trainerWork(harness, catalogue: #"[{"name":"get_weather","description":"Current weather for a city"}]"#)
        defer { try? FileManager.default.removeItem(at: work) }
        var settings = trainerSettings(harness, work: work, tools: toolsFile, retrainEvery: 2)
        settings.review = false
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        _ = try producer.sendAndWait(try ["Oslo", "Rome"].map { city in
            let t = WireTrajectory(id: "t-\(city)", query: "Weather in \(city)?", candidateTools: ["get_weather"],
                                   steps: [WireStep(calls: [WireToolCall(name: "get_weather", argumentsJSON: #"{"city": "\#(city)"}"#)])],
                                   outcome: .solved, source: "test")
            return OutgoingMessage(topic: harness.topics.trajectories, key: "get_weather", value: try t.encode())
        })
        producer.close()
        // The next produce request, the trainer's announcement, is refused for good.
        harness.cluster!.pushRequestErrors(.produce, [.topicAuthorizationFailed])
        let metrics = ServiceMetrics()
        let (announcements, trainer, finish) = try startTrainer(harness, settings: settings, metrics: metrics)
        var update: WireAdapterUpdate?
        let deadline = Date().addingTimeInterval(45)
        while update == nil, Date() < deadline {
            if let m = try announcements.poll(timeout: .milliseconds(200)) { update = try WireAdapterUpdate(bytes: m.value) }
        }
        #expect(finish() == nil)
        let announced = try #require(update, "announced again well before the minute a failed training waits")
        #expect(announced.tool == "get_weather" && announced.version == "v000002", "the version trained once, not retrained")
        #expect(trainer.dataset.due(threshold: 1).isEmpty, "the training counts as done")
        #expect(announcementFailures(metrics).map { $0 >= 1 } == true, "\(metrics.exposition())")
    }

    /// The first-start trainer's announcements: one refused for good is counted and sent again
    /// (with the next one, or at the end of the run) instead of only logged.
    @Test func theFirstStartTrainerSendsAFailedAnnouncementAgain() throws {
        let harness = try ServiceHarness()
        let (work, toolsFile) = try trainerWork(harness, catalogue: "[]")
        defer { try? FileManager.default.removeItem(at: work) }
        let catalogue = try ToolCatalogue.parse(#"[{"name":"get_weather","description":"Current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}]"#)
        try catalogue.save(to: toolsFile)
        let store = work.appendingPathComponent("store")
        var policy = FirstStartTraining(catalogue: catalogue, catalogueFile: toolsFile, store: store, work: work)
        policy.model = ServiceFixtures.hfTiny.appendingPathComponent("qwen2").path
        policy.steps = 2
        policy.gateSteps = 2
        policy.examplesPerTool = 4
        let announcements = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: harness.kafka, groupID: nil), logger: harness.logger)
        try announcements.assign([TopicPartitionOffset(topic: harness.topics.adapters, partition: 0, offset: LogicalOffset.beginning)])
        // The first announcement (get_weather's adapter) is refused for good.
        harness.cluster!.pushRequestErrors(.produce, [.topicAuthorizationFailed])
        let metrics = ServiceMetrics()
        let trainer = FirstStartTrainer(policy: policy, plan: try policy.plan(), kafka: harness.kafka, topics: harness.topics,
                                        metrics: metrics, logger: harness.logger)
        try waitFor { try await trainer.run() }
        var tools: [String] = []
        let deadline = Date().addingTimeInterval(10)
        while tools.count < 2, Date() < deadline {
            if let m = try announcements.poll(timeout: .milliseconds(200)) { tools.append(try WireAdapterUpdate(bytes: m.value).tool) }
        }
        #expect(tools.sorted() == [GateDistribution.toolKey, "get_weather"].sorted(), "both announced in the end: \(tools)")
        // librdkafka keeps the topic's error for a moment, so the gate's first send may fail too.
        #expect(announcementFailures(metrics).map { $0 >= 1 } == true, "\(metrics.exposition())")
    }

    /// A dead letter larger than the trainer's producer takes (`message.max.bytes`): before, the
    /// send threw out of the poll loop and the trainer stopped. Now a truncated letter (the
    /// reason, where the message came from, its first bytes) goes to `dlq` and the trainer goes on.
    @Test func anOversizedDeadLetterIsTruncatedAndTheTrainerGoesOn() throws {
        let harness = try ServiceHarness()
        let (work, toolsFile) = try trainerWork(harness, catalogue: #"[{"name":"get_weather","description":"Current weather for a city"}]"#)
        defer { try? FileManager.default.removeItem(at: work) }
        let settings = trainerSettings(harness, work: work, tools: toolsFile, retrainEvery: 1000)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        defer { producer.close() }
        let solved = WireTrajectory(id: "after", query: "Weather in Oslo?", candidateTools: ["get_weather"],
                                    steps: [WireStep(calls: [WireToolCall(name: "get_weather", argumentsJSON: #"{"city": "Oslo"}"#)])],
                                    outcome: .solved, source: "test")
        _ = try producer.sendAndWait([
            OutgoingMessage(topic: harness.topics.feedback, key: "big", value: [UInt8](repeating: 0xff, count: 30_000)),
            OutgoingMessage(topic: harness.topics.trajectories, key: "get_weather", value: try solved.encode()),
        ])
        let metrics = ServiceMetrics()
        let stack = try TrainerStack(settings: settings, kafka: harness.kafka.merging(["message.max.bytes": "20000"]), metrics: metrics,
                                     logger: harness.logger)
        let services = RunningServices(stack.services, logger: harness.logger)
        let deadline = Date().addingTimeInterval(30)
        while stack.trainer.dataset.count < 1, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        let letters = try harness.readAll(harness.topics.dlq, count: 1, timeout: .seconds(10))
        let stopped: Error? = { do { try waitFor { try await services.shutdown() }; return nil } catch { return error } }()
        #expect(stopped == nil, "the trainer ran on: \(String(describing: stopped))")
        #expect(stack.trainer.dataset.count == 1, "the trajectory after the feedback is stored")
        let letter = try #require(letters.first, "a dead letter reached dlq")
        #expect(letter.header(DeadLetterHeader.errorCode)?.string == "feedback.invalid")
        #expect(letter.header("paratool.truncated.bytes")?.string == "30000")
        #expect(letter.value.count < 20_000 && letter.value == [UInt8](repeating: 0xff, count: letter.value.count))
        let exposition = metrics.exposition()
        #expect(exposition.contains("paratool_dead_letters_truncated_total"), "\(exposition)")
    }

    /// One message must not brick the trainer. Before, a trajectory or a correction holding
    /// `1e999` was stored as `Infinity`, which no reader accepts: every snapshot failed and a
    /// restarted trainer could not open its dataset or journal. Such messages (and arguments
    /// nested too deep to read back inside a stored line) are refused where they enter; the
    /// trainer stores the rest and starts again.
    @Test func refusesMessagesItCouldNotReadBack() throws {
        let harness = try ServiceHarness()
        let (work, toolsFile) = try trainerWork(harness, catalogue: #"[{"name":"get_weather","description":"Current weather for a city"}]"#)
        defer { try? FileManager.default.removeItem(at: work) }
        let settings = trainerSettings(harness, work: work, tools: toolsFile, retrainEvery: 1000)
        let deep = String(repeating: #"{"a": "#, count: 99) + "{}" + String(repeating: "}", count: 99)

        func trajectory(_ id: String, arguments: String, outcome: WireOutcome = .solved, source: String = "test") throws -> OutgoingMessage {
            let t = WireTrajectory(id: id, query: "Weather?", candidateTools: ["get_weather"],
                                   steps: [WireStep(calls: [WireToolCall(name: "get_weather", argumentsJSON: arguments)])],
                                   outcome: outcome, source: source)
            return OutgoingMessage(topic: harness.topics.trajectories, key: "get_weather", value: try t.encode())
        }
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        _ = try producer.sendAndWait([
            try trajectory("infinite", arguments: #"{"city": 1e999}"#),
            try trajectory("deep", arguments: deep),
            try trajectory("served-infinite", arguments: #"{"city": -1e999}"#, outcome: .unknown, source: "served:w1"),
            try trajectory("r1", arguments: #"{"city": "Oslo"}"#, outcome: .unknown, source: "served:w1"),
            try trajectory("r2", arguments: #"{"city": "Rome"}"#, outcome: .unknown, source: "served:w1"),
            try trajectory("ok", arguments: #"{"city": 1e300}"#),
        ])
        let client = try RequestClient(kafka: harness.kafka, topics: harness.topics, logger: harness.logger)
        try client.report(WireFeedback(requestID: "r1", outcome: .unsolved, correctedCalls: [
            WireToolCall(name: "get_weather", argumentsJSON: #"{"city": 1e999}"#)], source: "agent"))
        try client.report(WireFeedback(requestID: "r2", outcome: .unsolved, correctedCalls: [
            WireToolCall(name: "get_weather", argumentsJSON: deep)], source: "agent"))

        let (_, trainer, finish) = try startTrainer(harness, settings: settings)
        let letters = try harness.readAll(harness.topics.dlq, count: 2)
        let deadline = Date().addingTimeInterval(30)
        while trainer.dataset.count < 1, Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        Thread.sleep(forTimeInterval: 1)
        #expect(finish() == nil)
        let messages = letters.compactMap { $0.header(DeadLetterHeader.errorMessage)?.string }
        #expect(messages.count == 2 && messages.contains { $0.contains("a finite number") }
                && messages.contains { $0.contains("nested 100 levels deep") }, "\(messages)")
        let stored = try String(contentsOf: settings.dataset.appendingPathComponent("trajectories.jsonl"), encoding: .utf8)
        #expect(!stored.contains("Infinity"))
        #expect(stored.split(separator: "\n").map { try? Trajectory(json: try JSONValue.parse(String($0))).id } == ["ok"])

        // Restarted on the same directory: the dataset and the journal open, and it runs.
        let (_, second, finishSecond) = try startTrainer(harness, settings: settings)
        let until = Date().addingTimeInterval(15)
        while !second.isReady, Date() < until { Thread.sleep(forTimeInterval: 0.1) }
        #expect(second.isReady)
        #expect(finishSecond() == nil)
        #expect(second.dataset.count == 1)
    }

    /// Tool names become checkpoint folders and store paths in training. A dataset stored before
    /// names were checked may hold trajectories of `../../x`: the trainer skips that tool (and
    /// logs it) and trains the others, instead of writing outside its folders and aborting the
    /// run; a trajectory calling a badly named tool arriving now is not stored.
    @Test func skipsToolsWithInvalidNames() throws {
        let harness = try ServiceHarness()
        let (work, toolsFile) = try trainerWork(harness, catalogue: #"[{"name":"get_weather","description":"Current weather for a city"},{"name":"../../x","description":"Escapes"}]"#)
        defer { try? FileManager.default.removeItem(at: work) }
        var settings = trainerSettings(harness, work: work, tools: toolsFile, retrainEvery: 2)
        settings.review = false
        func trajectory(_ id: String, tool: String) -> Trajectory {
            Trajectory(id: id, query: "Use \(tool) for \(id)", candidateTools: [tool],
                       steps: [Step(calls: [ToolCall(name: tool, arguments: .object(["city": .string(id)]))], observation: "")],
                       outcome: .solved, source: "test")
        }
        try FileManager.default.createDirectory(at: settings.dataset, withIntermediateDirectories: true)
        try Trajectory.save([trajectory("x1", tool: "../../x"), trajectory("x2", tool: "../../x"),
                             trajectory("w1", tool: "get_weather"), trajectory("w2", tool: "get_weather")],
                            jsonl: settings.dataset.appendingPathComponent("trajectories.jsonl"))
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        let late = WireTrajectory(id: "y1", query: "q", candidateTools: ["../../y"],
                                  steps: [WireStep(calls: [WireToolCall(name: "../../y", argumentsJSON: "{}")])], outcome: .solved, source: "test")
        _ = try producer.sendAndWait([OutgoingMessage(topic: harness.topics.trajectories, key: "../../y", value: try late.encode())])

        let (announcements, trainer, finish) = try startTrainer(harness, settings: settings)
        var announced: WireAdapterUpdate?
        let deadline = Date().addingTimeInterval(180)
        while announced == nil, Date() < deadline {
            if let m = try announcements.poll(timeout: .milliseconds(200)) { announced = try WireAdapterUpdate(bytes: m.value) }
        }
        Thread.sleep(forTimeInterval: 1)
        #expect(finish() == nil)
        #expect(announced?.tool == "get_weather", "the valid tool is trained and announced")
        #expect(!FileManager.default.fileExists(atPath: settings.dataset.appendingPathComponent("x").path), "nothing written outside the checkpoints")
        #expect(!FileManager.default.fileExists(atPath: work.appendingPathComponent("x").path))
        #expect(trainer.dataset.count == 4, "the trajectory calling ../../y is not stored")
    }

    /// No --tools: the documents come from the `tools` topic. A tool published there is retrained
    /// with its document; trajectories of a tool missing from the topic stay stored and due.
    @Test func followsTheToolsTopic() throws {
        let harness = try ServiceHarness()
        let work = harness.storeRoot.deletingLastPathComponent().appendingPathComponent("trainer-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        var settings = trainerSettings(harness, work: work, tools: nil, retrainEvery: 2)
        settings.review = false  // the catalogue's source is under test; `reviewsBeforeAnnouncing` tests the review

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

    /// The no-regression review. Thirty labelled weather episodes retrain get_weather: the new
    /// version beats the fixture adapter serving it on the held-out slice (never trained on) and
    /// is promoted and announced. Then a batch of wrong corrections arrives through `feedback`:
    /// flight requests corrected to get_weather calls (labels swapped between tools). The version
    /// trained with them is worse on the held-out steps v000002 was promoted on, so it is kept in
    /// the store as rejected, with its reason, never announced, and v000002 stays the one served.
    @Test func reviewsBeforeAnnouncing() throws {
        let harness = try ServiceHarness()
        let (work, toolsFile) = try trainerWork(harness, catalogue: #"[{"name":"get_weather","description":"Current weather for a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},{"name":"book_flight","description":"Book a flight between two cities","parameters":{"type":"object","properties":{"origin":{"type":"string"},"destination":{"type":"string"}},"required":["origin","destination"]}}]"#)
        defer { try? FileManager.default.removeItem(at: work) }
        var settings = trainerSettings(harness, work: work, tools: toolsFile, retrainEvery: 30)
        settings.adapter.steps = 30
        let cities = ["Oslo", "Rome", "Lima", "Bern", "Kyiv", "Riga", "Baku", "Doha", "Suva", "Apia", "Male", "Lome", "Nuuk", "Accra", "Dakar",
                      "Hanoi", "Quito", "Sofia", "Tunis", "Vaduz", "Minsk", "Cairo", "Delhi", "Paris", "Tokyo", "Seoul", "Dubai", "Perth",
                      "Porto", "Turin"]
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        _ = try producer.sendAndWait(try cities.enumerated().map { i, city in
            let t = WireTrajectory(id: "weather-\(i)", query: "What's the weather in \(city)?", candidateTools: ["get_weather", "book_flight"],
                                   steps: [WireStep(calls: [WireToolCall(name: "get_weather", argumentsJSON: #"{"city": "\#(city)"}"#)])],
                                   outcome: .solved, source: "labelled")
            return OutgoingMessage(topic: harness.topics.trajectories, key: "get_weather", value: try t.encode())
        })
        let metrics = ServiceMetrics()
        let (announcements, trainer, finish) = try startTrainer(harness, settings: settings, metrics: metrics)
        func nextAnnouncement(within seconds: Double) throws -> WireAdapterUpdate? {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let m = try announcements.poll(timeout: .milliseconds(200)) { return try WireAdapterUpdate(bytes: m.value) }
            }
            return nil
        }
        let first = try #require(try nextAnnouncement(within: 180), "the first retrained version is announced")
        #expect(first.tool == "get_weather" && first.version == "v000002")
        let promoted = try #require(try harness.store.review(tool: "get_weather", version: "v000002"))
        #expect(promoted.decision == .promoted, "\(promoted.reason)")
        #expect(promoted.servingVersion == "v000001")
        let heldOut = cities.indices.map { "weather-\($0)" }.filter(HeldOutSlice.contains)
        #expect(!heldOut.isEmpty && promoted.heldOutSteps == heldOut.count)
        #expect(promoted.candidate.meanNLL < promoted.serving!.meanNLL)
        let trainedOn = try String(contentsOf: settings.dataset.appendingPathComponent("snapshot.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try Trajectory(json: try JSONValue.parse(String($0))).id }
        #expect(trainedOn.count == cities.count - heldOut.count && Set(trainedOn).isDisjoint(with: heldOut), "never trained on the held-out slice")

        // Thirty flight requests as a worker served them, each "corrected" to a get_weather call.
        let routes = cities.indices.map { (cities[$0], cities[($0 + 7) % cities.count]) }
        _ = try producer.sendAndWait(try routes.enumerated().map { i, route in
            let t = WireTrajectory(id: "flight-\(i)", query: "Book me a flight from \(route.0) to \(route.1).", candidateTools: ["get_weather", "book_flight"],
                                   steps: [WireStep(calls: [WireToolCall(name: "book_flight",
                                                                         argumentsJSON: #"{"origin": "\#(route.0)", "destination": "\#(route.1)"}"#)])],
                                   outcome: .unknown, source: "served:w1")
            return OutgoingMessage(topic: harness.topics.trajectories, key: "book_flight", value: try t.encode())
        })
        let client = try RequestClient(kafka: harness.kafka, topics: harness.topics, logger: harness.logger)
        for (i, route) in routes.enumerated() {
            try client.report(WireFeedback(requestID: "flight-\(i)", outcome: .unsolved, correctedCalls: [
                WireToolCall(name: "get_weather", argumentsJSON: #"{"city": "\#(route.0)"}"#)], source: "buggy-agent"))
        }
        let deadline = Date().addingTimeInterval(180)
        var review: AdapterReview?
        while review == nil, Date() < deadline {
            if (try? harness.store.versions(tool: "get_weather").count) == 3 { review = try? harness.store.review(tool: "get_weather", version: "v000003") }
            if review == nil { Thread.sleep(forTimeInterval: 0.2) }
        }
        let rejected = try #require(review, "the version trained with the wrong corrections is reviewed")
        let late = try nextAnnouncement(within: 3)
        #expect(finish() == nil)
        #expect(rejected.decision == .rejected, "\(rejected.reason)")
        #expect(rejected.servingVersion == "v000002")
        #expect(rejected.reason.contains("promoted on"), "\(rejected.reason)")
        #expect(late == nil, "a rejected version is never announced")
        #expect(try harness.store.latest(tool: "get_weather")?.version == "v000002", "the serving version stays")
        #expect(trainer.dataset.count == 60)
        let exposition = metrics.exposition()
        #expect(exposition.contains(#"paratool_trainer_promotions_total{result="promoted"} 1"#), "\(exposition)")
        #expect(exposition.contains(#"paratool_trainer_promotions_total{result="rejected"} 1"#))
        #expect(exposition.contains(#"paratool_trainer_heldout_accuracy{tool="get_weather",version="v000003"}"#)
                || exposition.contains(#"paratool_trainer_heldout_accuracy{version="v000003",tool="get_weather"}"#), "\(exposition)")
    }
}
