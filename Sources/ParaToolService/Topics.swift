// Topics: the eight topic names under a prefix (docs/design.md §4) and how each is created
// (partitions, cleanup policy). One place, so workers, trainers, `up` and `topics` agree.
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
}

/// Header names on `dlq` messages.
public enum DeadLetterHeader {
    public static let errorCode = "paratool.error.code"
    public static let errorMessage = "paratool.error.message"
    public static let sourceTopic = "paratool.source.topic"
    public static let sourcePartition = "paratool.source.partition"
    public static let sourceOffset = "paratool.source.offset"
    public static let worker = "paratool.worker"

    /// The dead letter of `m`: its key, value and headers plus the reason and where it came from;
    /// `by` names the worker or trainer that refused it.
    public static func letter(for m: KafkaMessage, topic: String, code: String, message: String, by: String) -> OutgoingMessage {
        OutgoingMessage(topic: topic, partition: nil, key: m.key, value: m.value, headers: m.headers + [
            KafkaHeader(name: errorCode, string: code),
            KafkaHeader(name: errorMessage, string: String(message.prefix(4096))),
            KafkaHeader(name: sourceTopic, string: m.topic),
            KafkaHeader(name: sourcePartition, string: "\(m.partition)"),
            KafkaHeader(name: sourceOffset, string: "\(m.offset)"),
            KafkaHeader(name: worker, string: by),
        ])
    }
}
