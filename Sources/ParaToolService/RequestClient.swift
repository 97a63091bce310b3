// RequestClient: the agent side of the queue. Produces ToolCallRequests and collects the Actions
// and FlopsTelemetry answering them: from a reply topic of its own (the request names it in
// `kafka_replyTopic`, ReplyRouting) or, without one, from the shared `actions` and `telemetry`
// (read from their ends, no group); reports Feedback on answered requests.
// Used by `paratool send`, the benchmarks and the tests.
import Crypto
import Foundation
import Kafka
import Logging
import Wire

/// An Action with its telemetry (nil when the request failed: errors carry no telemetry). For a
/// request answered more than once (at-least-once delivery), both are the first that arrived.
public struct RequestResult: Sendable {
    public var action: WireAction
    public var telemetry: WireFlopsTelemetry?
    /// When the Action arrived.
    public var receivedAt: ContinuousClock.Instant
}

/// Sends requests and waits for their answers.
public final class RequestClient: @unchecked Sendable {
    private let producer: KafkaProducer
    private let consumer: KafkaConsumer
    private let topics: TopicNames
    /// The topic this client's answers come to (nil: the shared `actions` and `telemetry`).
    public let replyTopic: String?
    private var actions: [String: [WireAction]] = [:]
    private var telemetry: [String: WireFlopsTelemetry] = [:]
    private var arrived: [String: ContinuousClock.Instant] = [:]

    /// Connects and positions the reader at the current end of `replyTopic` (created when missing,
    /// one partition), or of `actions` and `telemetry` when it is nil, so every answer to a request
    /// sent afterwards is seen. A reply topic must be under the workers' reply prefix (by default
    /// `<prefix>replies.`, `defaultReplyTopic`).
    public init(kafka: KafkaConfiguration, topics: TopicNames = TopicNames(), replyTopic: String? = nil,
                logger: Logger = Logger(label: "paratool.client")) throws {
        self.topics = topics
        self.replyTopic = replyTopic
        if let replyTopic { try ReplyRouting.checkTopicName(replyTopic) }
        producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: kafka), name: "client-producer", logger: logger)
        // Answers are awaited, so fetch with a short wait (a broker that holds fetches until the wait
        // runs out, like the mock cluster, would otherwise add up to 500 ms per answer), unless the
        // operator chose one.
        let fetchWait: Duration? = kafka.properties["fetch.wait.max.ms"] == nil ? .milliseconds(10) : nil
        consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: kafka, groupID: nil, fetchMaxWait: fetchWait),
                                     name: "client-reader", logger: logger)
        if let replyTopic { try Self.ensureExists(replyTopic, producer: producer, kafka: kafka, logger: logger) }
        try consumer.assignAtEnd(topics: replyTopic.map { [$0] } ?? [topics.actions, topics.telemetry])
    }

    /// Makes sure `topic` exists: asks for its metadata (a broker that auto-creates topics, like
    /// the mock cluster, creates it then), else creates it with one partition.
    private static func ensureExists(_ topic: String, producer: KafkaProducer, kafka: KafkaConfiguration, logger: Logger) throws {
        if (try? producer.partitionCount(topic: topic, timeout: .seconds(5))) != nil { return }
        do {
            try KafkaAdmin(configuration: kafka, logger: logger).createTopics([
                TopicSpecification(name: topic, partitions: 1, configs: ["cleanup.policy": "delete"]),
            ], timeout: .seconds(10))
        } catch {
            throw ReplyRouteRefusal(reason: "reply topic \(topic) does not exist and could not be created (\(error)); create it, or name an existing one")
        }
    }

    /// A reply topic for a client named `client`: `<prefix>replies.<client>` with the characters
    /// a topic name may not hold replaced by `_`.
    public static func defaultReplyTopic(topics: TopicNames, client: String) -> String {
        let name = String(String.UnicodeScalarView(client.unicodeScalars.map { ReplyRouting.topicCharacters.contains($0) ? $0 : "_" }))
        return ReplyRouting.defaultPrefix(topics) + String(name.prefix(200))
    }

    /// The reply headers of a request: where to answer and the request id as correlation id.
    private func replyHeaders(requestID: String) -> [KafkaHeader] {
        guard let replyTopic else { return [] }
        return [KafkaHeader(name: ReplyHeader.replyTopic, string: replyTopic),
                KafkaHeader(name: ReplyHeader.correlationID, string: requestID)]
    }

    deinit {
        consumer.close()
        producer.close()
    }

    /// Produces `request` and waits for the broker's acknowledgement. It is keyed by its
    /// candidate set (`routingKey`) when it names one, so requests over the same tools reach the
    /// same partition and worker, whose adapters are then held already; else by its id.
    public func send(_ request: WireToolCallRequest) throws {
        let key = request.candidateTools.isEmpty ? request.requestID : Self.routingKey(candidates: request.candidateTools)
        _ = try producer.sendAndWait([OutgoingMessage(topic: topics.requests, key: key, value: try request.encode(),
                                                      headers: replyHeaders(requestID: request.requestID))])
    }

    /// The key of a request over `candidates`: "tools:" and the first 16 hex digits of the
    /// SHA-256 of the sorted names joined by NUL bytes (the order a request lists them in does
    /// not matter).
    public static func routingKey(candidates: [String]) -> String {
        let digest = SHA256.hash(data: Data(Set(candidates).sorted().joined(separator: "\u{0}").utf8))
        return "tools:" + digest.prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// Produces `feedback` on the `feedback` topic (keyed by its request id) and waits for the
    /// broker's acknowledgement; invalid feedback is refused before it is sent.
    public func report(_ feedback: WireFeedback) throws {
        try feedback.validate()
        _ = try producer.sendAndWait([OutgoingMessage(topic: topics.feedback, key: feedback.requestID, value: try feedback.encode())])
    }

    /// Produces raw bytes as a request (for clients of other languages and for tests).
    public func sendRaw(key: String, value: [UInt8]) throws {
        _ = try producer.sendAndWait([OutgoingMessage(topic: topics.requests, key: key, value: value, headers: replyHeaders(requestID: key))])
    }

    /// Waits until every id in `ids` has an Action (and, for successful ones, telemetry) or the
    /// timeout passes; returns what arrived. Answers seen twice are kept (see `duplicates`).
    public func collect(_ ids: Set<String>, timeout: Duration) throws -> [String: RequestResult] {
        let deadline = ContinuousClock.now + timeout
        func complete(_ id: String) -> Bool {
            guard let a = actions[id]?.first else { return false }
            return a.status != .ok || telemetry[id] != nil
        }
        while !ids.allSatisfy(complete), ContinuousClock.now < deadline {
            guard let m = try consumer.poll(timeout: .milliseconds(50)) else { continue }
            // On a reply topic both kinds arrive together, told apart by their type header.
            let type = m.header(ReplyHeader.messageType)?.string
            let isAction = m.topic == replyTopic ? type == WireAction.protoName : m.topic == topics.actions
            let isTelemetry = m.topic == replyTopic ? type == WireFlopsTelemetry.protoName : m.topic == topics.telemetry
            if isAction, let a = try? WireAction(bytes: m.value) {
                actions[a.requestID, default: []].append(a)
                if arrived[a.requestID] == nil { arrived[a.requestID] = .now }
            } else if isTelemetry, let t = try? WireFlopsTelemetry(bytes: m.value), telemetry[t.requestID] == nil {
                telemetry[t.requestID] = t
            }
        }
        var out: [String: RequestResult] = [:]
        for id in ids {
            if let a = actions[id]?.first { out[id] = RequestResult(action: a, telemetry: telemetry[id], receivedAt: arrived[id]!) }
        }
        return out
    }

    /// Every Action that arrived so far, by request id (also those of requests this client did not
    /// collect: on the shared topic, other clients' answers).
    public var requestIDsSeen: Set<String> { Set(actions.keys) }

    /// How many Actions arrived for `id` so far (more than one: it was answered again).
    public func answerCount(_ id: String) -> Int { actions[id]?.count ?? 0 }

    /// Sends one request and waits for its answer.
    public func call(_ request: WireToolCallRequest, timeout: Duration) throws -> RequestResult? {
        try send(request)
        return try collect([request.requestID], timeout: timeout)[request.requestID]
    }
}
