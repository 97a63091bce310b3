// RequestClient: the agent side of the queue. Produces ToolCallRequests and collects the Actions
// and FlopsTelemetry answering them (reading `actions` and `telemetry` from their ends, no group);
// reports Feedback on answered requests.
// Used by `paratool send`, the benchmarks and the tests.
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
    private var actions: [String: [WireAction]] = [:]
    private var telemetry: [String: WireFlopsTelemetry] = [:]
    private var arrived: [String: ContinuousClock.Instant] = [:]

    /// Connects and positions the reader at the current ends of `actions` and `telemetry`, so
    /// every answer to a request sent afterwards is seen.
    public init(kafka: KafkaConfiguration, topics: TopicNames = TopicNames(), logger: Logger = Logger(label: "paratool.client")) throws {
        self.topics = topics
        producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: kafka), name: "client-producer", logger: logger)
        // Answers are awaited, so fetch with a short wait (a broker that holds fetches until the wait
        // runs out, like the mock cluster, would otherwise add up to 500 ms per answer), unless the
        // operator chose one.
        let fetchWait: Duration? = kafka.properties["fetch.wait.max.ms"] == nil ? .milliseconds(10) : nil
        consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: kafka, groupID: nil, fetchMaxWait: fetchWait),
                                     name: "client-reader", logger: logger)
        try consumer.assignAtEnd(topics: [topics.actions, topics.telemetry])
    }

    deinit {
        consumer.close()
        producer.close()
    }

    /// Produces `request` (keyed by its id) and waits for the broker's acknowledgement.
    public func send(_ request: WireToolCallRequest) throws {
        _ = try producer.sendAndWait([OutgoingMessage(topic: topics.requests, key: request.requestID, value: try request.encode())])
    }

    /// Produces `feedback` on the `feedback` topic (keyed by its request id) and waits for the
    /// broker's acknowledgement; invalid feedback is refused before it is sent.
    public func report(_ feedback: WireFeedback) throws {
        try feedback.validate()
        _ = try producer.sendAndWait([OutgoingMessage(topic: topics.feedback, key: feedback.requestID, value: try feedback.encode())])
    }

    /// Produces raw bytes as a request (for clients of other languages and for tests).
    public func sendRaw(key: String, value: [UInt8]) throws {
        _ = try producer.sendAndWait([OutgoingMessage(topic: topics.requests, key: key, value: value)])
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
            if m.topic == topics.actions, let a = try? WireAction(bytes: m.value) {
                actions[a.requestID, default: []].append(a)
                if arrived[a.requestID] == nil { arrived[a.requestID] = .now }
            } else if m.topic == topics.telemetry, let t = try? WireFlopsTelemetry(bytes: m.value), telemetry[t.requestID] == nil {
                telemetry[t.requestID] = t
            }
        }
        var out: [String: RequestResult] = [:]
        for id in ids {
            if let a = actions[id]?.first { out[id] = RequestResult(action: a, telemetry: telemetry[id], receivedAt: arrived[id]!) }
        }
        return out
    }

    /// How many Actions arrived for `id` so far (more than one: it was answered again).
    public func answerCount(_ id: String) -> Int { actions[id]?.count ?? 0 }

    /// Sends one request and waits for its answer.
    public func call(_ request: WireToolCallRequest, timeout: Duration) throws -> RequestResult? {
        try send(request)
        return try collect([request.requestID], timeout: timeout)[request.requestID]
    }
}
