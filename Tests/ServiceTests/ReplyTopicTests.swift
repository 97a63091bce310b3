// Request-reply and call ids over the mock cluster: two clients with reply topics of their own each
// read only their answers while an old client on `actions` reads all; the correlation id is echoed
// (Spring's and SmallRye's header names); a reply topic outside the workers' prefix is refused;
// every call of an Action carries its id; a request that opts out of logging leaves no trajectory.
import Foundation
import Kafka
import ParaTool
import ParaToolService
import Testing
import Wire

@Suite(.serialized) struct ReplyTopicTests {
    @Test func twoClientsEachReadOnlyTheirOwnAnswers() throws {
        let harness = try ServiceHarness()
        try harness.startWorker(id: "w1")
        let old = try harness.client()
        let a = try RequestClient(kafka: harness.kafka, topics: harness.topics, replyTopic: "test.replies.a", logger: harness.logger)
        let b = try RequestClient(kafka: harness.kafka, topics: harness.topics,
                                  replyTopic: RequestClient.defaultReplyTopic(topics: harness.topics, client: "agent b/1"),
                                  logger: harness.logger)
        #expect(b.replyTopic == "test.replies.agent_b_1")
        let aIDs = ["a0", "a1"], bIDs = ["b0", "b1"]
        for id in aIDs { try a.send(WireToolCallRequest(requestID: id, query: "Weather in Paris?", maxNewTokens: 4)) }
        for id in bIDs { try b.send(WireToolCallRequest(requestID: id, query: "100 USD in EUR", maxNewTokens: 4)) }

        let gotB = try b.collect(Set(bIDs), timeout: .seconds(60))
        let gotA = try a.collect(Set(aIDs), timeout: .seconds(60))
        #expect(Set(gotA.keys) == Set(aIDs))
        #expect(Set(gotB.keys) == Set(bIDs))
        for result in Array(gotA.values) + Array(gotB.values) {
            #expect(result.action.status == .ok)
            #expect(result.telemetry != nil, "telemetry comes to the reply topic too")
        }
        // Both answered before either looked again: neither saw the other's answers.
        _ = try a.collect(["none"], timeout: .milliseconds(300))
        _ = try b.collect(["none"], timeout: .milliseconds(300))
        #expect(a.requestIDsSeen == Set(aIDs))
        #expect(b.requestIDsSeen == Set(bIDs))
        // The client that reads the shared topic still gets every answer.
        let all = try old.collect(Set(aIDs + bIDs), timeout: .seconds(30))
        #expect(Set(all.keys) == Set(aIDs + bIDs))

        // On the reply topic each message carries the correlation id (the request id when the
        // request sent its own, as RequestClient does) and which message it holds.
        let replies = try harness.readAll("test.replies.a", count: 4)
        #expect(replies.count == 4)
        #expect(Set(replies.compactMap { $0.header(ReplyHeader.correlationID)?.string }) == Set(aIDs))
        #expect(Set(replies.compactMap { $0.header(ReplyHeader.messageType)?.string })
            == [WireAction.protoName, WireFlopsTelemetry.protoName])
    }

    @Test func echoesCorrelationIDsAndRefusesForeignReplyTopics() throws {
        let harness = try ServiceHarness()
        try harness.startWorker(id: "w1")
        let cluster = try #require(harness.cluster)
        try cluster.createTopic("test.replies.spring", partitions: 1)
        try cluster.createTopic("test.replies.smallrye", partitions: 1)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), name: "raw", logger: harness.logger)
        defer { producer.close() }
        func send(_ id: String, headers: [KafkaHeader]) throws {
            let value = try WireToolCallRequest(requestID: id, query: "Weather in Oslo?", maxNewTokens: 4).encode()
            _ = try producer.sendAndWait([OutgoingMessage(topic: harness.topics.requests, key: id, value: value, headers: headers)])
        }
        // Spring sends a 16-byte binary correlation id; it comes back byte for byte.
        let binary: [UInt8] = [0x00, 0xff, 0x10, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        try send("spring", headers: [KafkaHeader(name: "kafka_replyTopic", string: "test.replies.spring"),
                                     KafkaHeader(name: "kafka_correlationId", value: binary)])
        try send("smallrye", headers: [KafkaHeader(name: "REPLY_TOPIC", string: "test.replies.smallrye"),
                                       KafkaHeader(name: "REPLY_CORRELATION_ID", string: "corr-7")])
        // A request may not send answers onto the service's own topics.
        try send("hijack", headers: [KafkaHeader(name: "kafka_replyTopic", string: harness.topics.tools)])
        try send("bad-name", headers: [KafkaHeader(name: "kafka_replyTopic", string: "test.replies.a b")])

        let spring = try harness.readAll("test.replies.spring", count: 2)
        #expect(spring.count == 2)
        #expect(spring.allSatisfy { $0.header("kafka_correlationId")?.value == binary })
        let smallrye = try harness.readAll("test.replies.smallrye", count: 2)
        #expect(smallrye.count == 2)
        #expect(smallrye.allSatisfy { $0.header("kafka_correlationId")?.string == "corr-7" })

        let shared = try harness.readAll(harness.topics.actions, count: 4)
        let actions = try shared.map { try WireAction(bytes: $0.value) }
        let byID = Dictionary(actions.map { ($0.requestID, $0) }, uniquingKeysWith: { first, _ in first })
        #expect(byID["hijack"]?.status == .invalidRequest)
        #expect(byID["hijack"]?.error?.code == "reply.refused")
        #expect(byID["bad-name"]?.error?.code == "reply.refused")
        #expect(byID["spring"]?.status == .ok, "shared answers stay on by default")
        #expect(try harness.readAll(harness.topics.tools, count: 1, timeout: .seconds(2)).isEmpty, "nothing was written to `tools`")
    }

    @Test func callsCarryIDsAndOptedOutRequestsAreNotStored() throws {
        let harness = try ServiceHarness()
        try harness.startWorker(id: "w1")
        let client = try harness.client()
        let kept = WireToolCallRequest(requestID: "rr-a0", query: "Weather in Paris and in Rome?", maxNewTokens: 40, maxCalls: 2,
                                       toolChoice: "get_weather", source: "agent:alpha")
        let private_ = WireToolCallRequest(requestID: "rr-private", query: "Weather in Oslo?", maxNewTokens: 24,
                                           toolChoice: "get_weather", doNotLog: true, source: "agent:alpha")
        try client.send(kept)
        try client.send(private_)
        let got = try client.collect(["rr-a0", "rr-private"], timeout: .seconds(60))
        let calls = try #require(got["rr-a0"]).action.calls
        #expect(!calls.isEmpty)
        // "call_" and the first 24 hex digits of SHA-256("rr-a0\0<index>"), from Python's hashlib.
        let expected = ["call_1303ac494178448820720a84", "call_a980ff8b274d18d3749fa8d2"]
        #expect(calls.map(\.id) == Array(expected.prefix(calls.count)))

        // Only the request that did not opt out left a trajectory candidate, with its source and ids.
        let stored = try harness.readAll(harness.topics.trajectories, count: 2, timeout: .seconds(5))
        let trajectories = try stored.map { try WireTrajectory(bytes: $0.value) }
        #expect(trajectories.map(\.id) == ["rr-a0"])
        #expect(trajectories.first?.requestSource == "agent:alpha")
        #expect(trajectories.first?.steps.last?.calls.map(\.id) == calls.map(\.id))
    }

    /// Requests over the same tools share a partition key, whatever order they list them in.
    @Test func requestsAreKeyedByTheirCandidateSet() throws {
        let harness = try ServiceHarness()
        let client = try harness.client()
        try client.send(WireToolCallRequest(requestID: "k1", query: "q", candidateTools: ["get_weather", "book_flight"]))
        try client.send(WireToolCallRequest(requestID: "k2", query: "q", candidateTools: ["book_flight", "get_weather", "book_flight"]))
        try client.send(WireToolCallRequest(requestID: "k3", query: "q"))
        let keys = try harness.readAll(harness.topics.requests, count: 3).map { String(decoding: $0.key ?? [], as: UTF8.self) }
        // "tools:" + hashlib.sha256("\0".join(sorted(tools)).encode()).hexdigest()[:16], from Python.
        #expect(keys.sorted() == ["k3", "tools:9f30c9b8ef8730dc", "tools:9f30c9b8ef8730dc"])
    }
}
