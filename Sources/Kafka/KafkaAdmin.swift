// KafkaAdmin: topic creation (idempotent: an existing topic is fine) through librdkafka's admin
// API, used by `paratool topics`, `paratool up` and the tests.
import CRdKafka
import Foundation
import Logging

/// A topic to create.
public struct TopicSpecification: Sendable, Equatable {
    public var name: String
    public var partitions: Int32
    public var replicationFactor: Int32
    /// Topic-level configs, e.g. `cleanup.policy=compact`.
    public var configs: [String: String]

    public init(name: String, partitions: Int32, replicationFactor: Int32 = 1, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
    }
}

/// Cluster administration.
public final class KafkaAdmin: @unchecked Sendable {
    private let handle: ClientHandle

    public init(configuration: KafkaConfiguration, logger: Logger = Logger(label: "paratool.kafka")) throws {
        var properties = configuration.properties(for: .any)
        properties["bootstrap.servers"] = configuration.brokers
        handle = try ClientHandle(type: RD_KAFKA_PRODUCER, properties: properties, name: "admin", logger: logger)
    }

    /// Creates the topics that do not exist yet. Returns, per topic, whether it was created now
    /// (false: it existed). Throws the first other failure, naming the topic.
    @discardableResult
    public func createTopics(_ topics: [TopicSpecification], timeout: Duration = .seconds(30)) throws -> [String: Bool] {
        guard !topics.isEmpty else { return [:] }
        var errstr = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { for t in newTopics { rd_kafka_NewTopic_destroy(t) } }
        for spec in topics {
            guard let t = rd_kafka_NewTopic_new(spec.name, spec.partitions, spec.replicationFactor, &errstr, errstr.count) else {
                throw KafkaError.invalid("topic \(spec.name): \(string(fromBuffer: errstr))")
            }
            newTopics.append(t)
            for (key, value) in spec.configs.sorted(by: { $0.key < $1.key }) {
                try check(rd_kafka_NewTopic_set_config(t, key, value), "topic \(spec.name) config \(key)")
            }
        }
        guard let queue = rd_kafka_queue_new(handle.rk) else { throw KafkaError.invalid("rd_kafka_queue_new failed") }
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(handle.rk, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeout.milliseconds, &errstr, errstr.count)
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeout.milliseconds, &errstr, errstr.count)
        newTopics.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_CreateTopics(handle.rk, buffer.baseAddress, buffer.count, options, queue)
        }
        guard let event = rd_kafka_queue_poll(queue, timeout.milliseconds + 5000) else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue, message: "creating topics: no answer within \(timeout)")
        }
        defer { rd_kafka_event_destroy(event) }
        try check(rd_kafka_event_error(event), "creating topics")
        guard let result = rd_kafka_event_CreateTopics_result(event) else { throw KafkaError.invalid("unexpected admin event") }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &count) else { return [:] }
        var created: [String: Bool] = [:]
        for i in 0..<count {
            let r = results[i]
            let name = String(cString: rd_kafka_topic_result_name(r))
            let err = rd_kafka_topic_result_error(r)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                created[name] = true
            } else if err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS {
                created[name] = false
            } else {
                let detail = rd_kafka_topic_result_error_string(r).map { String(cString: $0) } ?? ""
                throw KafkaError(code: err.rawValue, message: "creating topic \(name): \(detail)")
            }
        }
        return created
    }

    /// Partition count of a topic.
    public func partitionCount(topic: String, timeout: Duration = .seconds(10)) throws -> Int32 {
        try handle.partitionCount(topic: topic, timeout: timeout)
    }
}
