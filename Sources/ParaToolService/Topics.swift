// Topics: the nine topic names under a prefix (docs/design.md §4) and how each is created
// (partitions, cleanup policy), and the headers of dead letters (a truncated letter's too). One
// place, so workers, trainers, `up` and `topics` agree.
import Kafka
import ParaTool
import Wire

/// The service's topic names: `<prefix><name>`.
public struct TopicNames: Sendable, Equatable {
    public var prefix: String
    public init(prefix: String = "paratool.") { self.prefix = prefix }

    public var requests: String { prefix + "requests" }
    public var actions: String { prefix + "actions" }
    public var telemetry: String { prefix + "telemetry" }
    public var trajectories: String { prefix + "trajectories" }
    public var adapters: String { prefix + "adapters" }
    public var tools: String { prefix + "tools" }
    public var dlq: String { prefix + "dlq" }
    /// What agent backends report about answered requests (`Feedback`, key request id).
    public var feedback: String { prefix + "feedback" }
    /// Requests to remove stored records (`ForgetRequest`, key request id or source).
    public var forget: String { prefix + "forget" }

    /// Every topic with its creation settings: `adapters` and `tools` are compacted (latest value
    /// per key), the control topics have one partition so a reader sees one total order.
    public func specifications(partitions: Int32, replicationFactor: Int32 = 1) -> [TopicSpecification] {
        let delete = ["cleanup.policy": "delete"]
        let compact = ["cleanup.policy": "compact"]
        return [
            TopicSpecification(name: requests, partitions: partitions, replicationFactor: replicationFactor, configs: delete),
            TopicSpecification(name: actions, partitions: partitions, replicationFactor: replicationFactor, configs: delete),
            TopicSpecification(name: telemetry, partitions: partitions, replicationFactor: replicationFactor, configs: delete),
            TopicSpecification(name: trajectories, partitions: partitions, replicationFactor: replicationFactor, configs: delete),
            TopicSpecification(name: dlq, partitions: partitions, replicationFactor: replicationFactor, configs: delete),
            TopicSpecification(name: feedback, partitions: partitions, replicationFactor: replicationFactor, configs: delete),
            TopicSpecification(name: forget, partitions: 1, replicationFactor: replicationFactor, configs: delete),
            TopicSpecification(name: adapters, partitions: 1, replicationFactor: replicationFactor, configs: compact),
            TopicSpecification(name: tools, partitions: 1, replicationFactor: replicationFactor, configs: compact),
        ]
    }
}

extension TopicNames {
    /// The messages that publish `catalogue` on the compacted `tools` topic (one per tool, keyed by name).
    public func toolMessages(_ catalogue: ToolCatalogue) throws -> [OutgoingMessage] {
        try catalogue.tools.map { OutgoingMessage(topic: tools, key: $0.name, value: try WireToolSpec($0).encode()) }
    }

    /// The tombstone that removes tool `name` from the `tools` topic (its key, no value).
    public func toolRemoval(_ name: String) -> OutgoingMessage {
        OutgoingMessage(topic: tools, key: name, value: [])
    }
}

/// Header names on `dlq` messages.
public enum DeadLetterHeader {
    public static let errorCode = "paratool.error.code"
    public static let errorMessage = "paratool.error.message"
    public static let sourceTopic = "paratool.source.topic"
    public static let sourcePartition = "paratool.source.partition"
    public static let sourceOffset = "paratool.source.offset"
    public static let worker = "paratool.worker"
    /// The id of the request (or of the request the feedback is about), when it was read.
    public static let requestID = "paratool.request.id"
    /// On a truncated letter only: the bytes of the value it stands for.
    public static let truncatedBytes = "paratool.truncated.bytes"
    /// Bytes of the value a truncated letter keeps.
    public static let truncatedValueBytes = 1024

    /// The dead letter of `m`: its key, value and headers plus the reason and where it came from;
    /// `by` names the worker or trainer that refused it, `requestID` the request when it is known.
    public static func letter(for m: KafkaMessage, topic: String, code: String, message: String, by: String,
                              requestID id: String? = nil) -> OutgoingMessage {
        OutgoingMessage(topic: topic, partition: nil, key: m.key, value: m.value, headers: m.headers + [
            KafkaHeader(name: errorCode, string: code),
            KafkaHeader(name: errorMessage, string: String(message.prefix(4096))),
            KafkaHeader(name: sourceTopic, string: m.topic),
            KafkaHeader(name: sourcePartition, string: "\(m.partition)"),
            KafkaHeader(name: sourceOffset, string: "\(m.offset)"),
            KafkaHeader(name: worker, string: by),
        ] + (id.map { [KafkaHeader(name: requestID, string: String($0.prefix(1024)))] } ?? []))
    }

    /// The letter that takes the place of `letter` when the broker can never take it: the reason,
    /// where the message came from and the request id (the last of each of these headers, cut to
    /// 1 KiB), the key's first 256 bytes and the value's first `truncatedValueBytes`, with
    /// `truncatedBytes` saying how long the value was; the message's own headers are left out.
    /// Nil when `letter` is no dead letter, or is a truncated one already.
    public static func truncated(_ letter: OutgoingMessage) -> OutgoingMessage? {
        guard letter.headers.contains(where: { $0.name == errorCode }),
              !letter.headers.contains(where: { $0.name == truncatedBytes }) else { return nil }
        let ours: Set = [errorCode, errorMessage, sourceTopic, sourcePartition, sourceOffset, worker, requestID]
        // The letter's own headers come last: a message that sent headers of these names itself
        // does not replace them.
        var kept: [KafkaHeader] = []
        for header in letter.headers.reversed() where ours.contains(header.name) && !kept.contains(where: { $0.name == header.name }) {
            kept.append(KafkaHeader(name: header.name, value: Array(header.value.prefix(1024))))
        }
        return OutgoingMessage(topic: letter.topic, partition: letter.partition, key: letter.key.map { Array($0.prefix(256)) },
                               value: Array(letter.value.prefix(truncatedValueBytes)),
                               headers: kept.reversed() + [KafkaHeader(name: truncatedBytes, string: "\(letter.value.count)")])
    }
}
