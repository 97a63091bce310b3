// ReplyRouting: request-reply over Kafka. A request may name the topic its answer goes to and a
// correlation id to echo, in the headers Spring's ReplyingKafkaTemplate uses (`kafka_replyTopic`,
// `kafka_correlationId`; SmallRye's `REPLY_TOPIC` and `REPLY_CORRELATION_ID` are read too). The
// worker answers there (and on the shared `actions`/`telemetry` unless turned off), only on topics
// under its reply prefix, and checks that a reply topic exists before it produces to it.
import Foundation
import Kafka
import Synchronization

/// Header names of request-reply.
public enum ReplyHeader {
    /// Where the answer goes (Spring's name; written by `RequestClient`).
    public static let replyTopic = "kafka_replyTopic"
    /// Echoed on the answer so the requester can match it (Spring's name).
    public static let correlationID = "kafka_correlationId"
    /// SmallRye Reactive Messaging's names, read as well.
    public static let smallRyeReplyTopic = "REPLY_TOPIC"
    public static let smallRyeCorrelationID = "REPLY_CORRELATION_ID"
    /// On every reply: which message the value holds (`paratool.v1.Action` or
    /// `paratool.v1.FlopsTelemetry`), since both share a reply topic.
    public static let messageType = "paratool.message.type"
    /// Longest correlation id echoed (Spring's are 16 bytes).
    public static let maxCorrelationIDBytes = 256
}

/// Where one request's answer goes besides the shared topics.
public struct ReplyRoute: Sendable, Equatable {
    /// The reply topic the request named (nil: none).
    public var topic: String?
    /// The correlation id the request sent (nil: none; its answer then echoes its request id).
    public var correlationID: [UInt8]?

    /// No reply topic, no correlation id.
    public static let none = ReplyRoute(topic: nil, correlationID: nil)
}

/// Why a request's reply headers were refused.
public struct ReplyRouteRefusal: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}

/// What a worker may answer on, and how it reads a request's reply headers.
public struct ReplyRouting: Sendable {
    /// A reply topic must start with this (default `<prefix>replies.`), so a request cannot send
    /// answers onto the service's own topics or anyone else's.
    public var allowedPrefix: String
    /// Also answer on the shared `actions` and `telemetry` topics (older clients read those).
    public var sharedTopics: Bool

    public init(allowedPrefix: String, sharedTopics: Bool = true) {
        self.allowedPrefix = allowedPrefix
        self.sharedTopics = sharedTopics
    }

    /// The default reply prefix under a topic prefix: `<prefix>replies.`.
    public static func defaultPrefix(_ topics: TopicNames) -> String { topics.prefix + "replies." }

    /// The route of a request read from `m`: its reply topic (checked against `allowedPrefix` and
    /// Kafka's topic-name rules) and correlation id (at most `maxCorrelationIDBytes`).
    public func route(_ m: KafkaMessage) throws -> ReplyRoute {
        let topicHeader = m.header(ReplyHeader.replyTopic) ?? m.header(ReplyHeader.smallRyeReplyTopic)
        let correlation = m.header(ReplyHeader.correlationID) ?? m.header(ReplyHeader.smallRyeCorrelationID)
        var route = ReplyRoute.none
        if let correlation {
            guard correlation.value.count <= ReplyHeader.maxCorrelationIDBytes else {
                throw ReplyRouteRefusal(reason: "the correlation id is \(correlation.value.count) bytes, more than \(ReplyHeader.maxCorrelationIDBytes)")
            }
            route.correlationID = correlation.value
        }
        guard let topicHeader else { return route }
        guard let topic = String(validating: topicHeader.value, as: UTF8.self) else {
            throw ReplyRouteRefusal(reason: "the reply topic is not UTF-8")
        }
        try Self.checkTopicName(topic)
        guard topic.hasPrefix(allowedPrefix), topic.count > allowedPrefix.count else {
            throw ReplyRouteRefusal(reason: "reply topic '\(topic)' is not under this worker's reply prefix '\(allowedPrefix)'")
        }
        route.topic = topic
        return route
    }

    /// The characters a Kafka topic name may hold.
    static let topicCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-".unicodeScalars)

    /// Kafka's rule for topic names: 1-249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
    static func checkTopicName(_ name: String) throws {
        guard (1...249).contains(name.unicodeScalars.count), name != ".", name != "..",
              name.unicodeScalars.allSatisfy(topicCharacters.contains) else {
            throw ReplyRouteRefusal(reason: "'\(name.prefix(300))' is not a valid Kafka topic name (1-249 of a-z, A-Z, 0-9, '.', '_', '-')")
        }
    }

    /// The messages carrying one answer (`value`, a message of `type`, keyed by its request id) for
    /// `route`: to its reply topic when it has one that exists (`exists`), with the correlation id
    /// (the request's, else the request id) and the type in headers, and to `sharedTopic` when
    /// shared answers are on, or when it could go nowhere else.
    public func outputs(value: [UInt8], type: String, key: String, sharedTopic: String, route: ReplyRoute,
                        exists: (String) -> Bool) -> [OutgoingMessage] {
        let correlationID = route.correlationID ?? Array(key.utf8)
        var out: [OutgoingMessage] = []
        if let topic = route.topic, exists(topic) {
            out.append(OutgoingMessage(topic: topic, key: key, value: value, headers: [
                KafkaHeader(name: ReplyHeader.correlationID, value: correlationID),
                KafkaHeader(name: ReplyHeader.messageType, string: type),
            ]))
        }
        if sharedTopics || out.isEmpty {
            out.append(OutgoingMessage(topic: sharedTopic, key: key, value: value,
                                       headers: route.topic == nil ? [] : [KafkaHeader(name: ReplyHeader.correlationID, value: correlationID)]))
        }
        return out
    }
}

/// Which reply topics exist, asked of the broker once a minute per topic: producing to a missing
/// topic would block delivery until librdkafka gives up, so an answer for a missing reply topic
/// goes to the shared topic instead (logged and counted by the worker).
final class ReplyTopicDirectory: Sendable {
    private let known = Mutex<[String: (exists: Bool, checked: ContinuousClock.Instant)]>([:])
    private let lookup: @Sendable (String) -> Bool
    static let recheckAfter: Duration = .seconds(60)

    /// `lookup` asks the broker whether a topic exists.
    init(lookup: @escaping @Sendable (String) -> Bool) { self.lookup = lookup }

    func exists(_ topic: String) -> Bool {
        let now = ContinuousClock.now
        if let entry = known.withLock({ $0[topic] }), now - entry.checked < Self.recheckAfter { return entry.exists }
        let exists = lookup(topic)
        known.withLock { table in
            if table.count > 10_000 { table.removeAll() }
            table[topic] = (exists, now)
        }
        return exists
    }
}
