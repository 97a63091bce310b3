// The worker end to end over the mock cluster: every request answered once with the engine's own
// result, telemetry per request, bad requests answered with an error Action and dead-lettered,
// offsets committed after delivery, graceful stop.
import Foundation
import Kafka
import LLM
import ParaTool
import ParaToolService
import Testing
import Wire

@Suite(.serialized) struct WorkerEndToEndTests {
    @Test func answersEveryRequestAndDeadLettersBadOnes() throws {
        let harness = try ServiceHarness()
        let worker = try harness.startWorker(id: "w1")
        let client = try harness.client()

        let queries = ["Weather in Paris?", "Fly me from SFO to JFK", "100 USD in EUR", "Rain tomorrow in Oslo?",
                       "Book BOS to LAX", "Convert 5 GBP to JPY"]
        let good = queries.enumerated().map { i, q in
            WireToolCallRequest(requestID: "r\(i)", query: q, maxNewTokens: 4, mode: i % 2 == 0 ? .paratool : .average)
        }
        for r in good { try client.send(r) }
        try client.sendRaw(key: "garbage", value: [0xff, 0xff, 0xff, 0x07])
        try client.send(WireToolCallRequest(requestID: "unknown", query: "x", candidateTools: ["no_such_tool"], maxNewTokens: 4))
        try client.send(WireToolCallRequest(requestID: "late", query: "x", maxNewTokens: 4, deadlineUnixMs: 1_000))
        try client.send(WireToolCallRequest(requestID: "too-long", query: "x", maxNewTokens: 100_000))
        // tool_choice: text only, and a tool that is not among the candidates.
        try client.send(WireToolCallRequest(requestID: "text", query: "Hello there", maxNewTokens: 6, toolChoice: "none"))
        try client.send(WireToolCallRequest(requestID: "ghost", query: "x", candidateTools: ["get_weather"], maxNewTokens: 4,
                                            toolChoice: "ghost_tool"))

        let ids = Set(good.map(\.requestID) + ["garbage", "unknown", "late", "too-long", "text", "ghost"])
        let results = try client.collect(ids, timeout: .seconds(60))
        #expect(Set(results.keys) == ids, "every request is answered")

        // The same requests run in process on an identical engine give the same calls and weights.
        let registry = AdapterRegistry(store: harness.store, config: ServiceFixtures.model.model.config)
        let gate = GateNetwork(config: GateConfig(dimension: ServiceFixtures.model.model.config.hiddenSize, hidden: [32, 32]), seed: 5)
        let engine = try ToolCallEngine(model: ServiceFixtures.model, catalogue: ServiceFixtures.catalogue, adapters: registry, gate: gate)
        for r in good {
            let got = try #require(results[r.requestID])
            #expect(got.action.status == .ok)
            #expect(got.action.modelID == "tiny-qwen2")
            let direct = try engine.run([ToolCallRequest(id: r.requestID, query: r.query, maxNewTokens: 4,
                                                         mode: r.mode == .average ? .average : .paratool)])[0]
            #expect(got.action.weights.map(\.tool) == direct.weights.map(\.tool))
            for (w, d) in zip(got.action.weights, direct.weights) {
                #expect(abs(w.weight - Double(d.weight)) < 1e-5)
                #expect(w.adapterVersion == (d.adapterVersion ?? ""))
                #expect(d.weight == 0 || w.adapterVersion == "v000001")
            }
            if case .answer(let text) = direct.action { #expect(got.action.text == text) }
            let t = try #require(got.telemetry, "telemetry for \(r.requestID)")
            #expect(t.workerID == "w1")
            #expect(t.promptTokens == UInt64(direct.promptTokens))
            #expect(t.total == UInt64(direct.flops.total))
            #expect(t.total == t.baseLinear + t.attention + t.lora + t.encoder + t.gate)
            #expect(t.contextDocsEquivalent == UInt64(direct.contextDocsFlops))
        }
        #expect(results["garbage"]?.action.status == .invalidRequest)
        #expect(results["garbage"]?.action.error?.code == "wire.malformed")
        #expect(results["unknown"]?.action.status == .unknownTool)
        #expect(results["late"]?.action.status == .deadlineExceeded)
        #expect(results["too-long"]?.action.status == .invalidRequest)
        let text = try #require(results["text"]?.action)
        #expect(text.status == .ok && text.calls.isEmpty && !text.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
                "tool_choice none: a text answer, \(text)")
        #expect(!text.forceClosed)
        #expect(results["ghost"]?.action.status == .invalidRequest)
        #expect(results["ghost"]?.action.error?.message.contains("tool_choice") == true)

        // Dead letters keep the original bytes and say why in headers.
        let dlq = try harness.readAll(harness.topics.dlq, count: 5)
        #expect(dlq.count == 5)
        let garbage = try #require(dlq.first { $0.keyString == "garbage" })
        #expect(garbage.value == [0xff, 0xff, 0xff, 0x07])
        #expect(garbage.header(DeadLetterHeader.errorCode)?.string == "wire.malformed")
        #expect(garbage.header(DeadLetterHeader.sourceTopic)?.string == harness.topics.requests)
        #expect(garbage.header(DeadLetterHeader.worker)?.string == "w1")
        #expect(Set(dlq.compactMap { $0.header(DeadLetterHeader.errorCode)?.string })
                == ["wire.malformed", "tool.unknown", "deadline.exceeded", "request.invalid"])

        // Served requests are logged as trajectory candidates.
        let trajectories = try harness.readAll(harness.topics.trajectories, count: good.count + 1)
        #expect(Set(try trajectories.map { try WireTrajectory(bytes: $0.value).id }) == Set(good.map(\.requestID) + ["text"]))

        // Graceful stop; then the group's committed offsets cover every request.
        try harness.stop(worker)
        let reader = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: harness.kafka, groupID: "paratool-workers"), logger: harness.logger)
        let parts = (0..<2).map { TopicPartition(topic: harness.topics.requests, partition: Int32($0)) }
        let committed = try reader.committed(parts).reduce(Int64(0)) { $0 + max(0, $1.offset) }
        #expect(committed == Int64(ids.count))
        #expect(good.allSatisfy { client.answerCount($0.requestID) == 1 })
    }
}
