// KafkaMockCluster: librdkafka's in-process mock cluster (real Kafka protocol on loopback, consumer
// groups, fault injection), for tests and the embedded `paratool up`. It does not implement
// transaction semantics (docs/operations.md, Guarantees): exactly-once is shown on a real broker.
import CRdKafka
import Foundation
import Logging

/// Kafka API keys the mock cluster can inject errors into.
public enum KafkaAPI: Int16, Sendable {
    case produce = 0, fetch = 1, listOffsets = 2, metadata = 3, offsetCommit = 8, offsetFetch = 9,
         findCoordinator = 10, joinGroup = 11, heartbeat = 12, leaveGroup = 13, syncGroup = 14,
         initProducerID = 22, addPartitionsToTxn = 24, addOffsetsToTxn = 25, endTxn = 26, txnOffsetCommit = 28
}

/// Broker error codes used for fault injection (Kafka protocol numbers).
public enum KafkaBrokerError: Int32, Sendable {
    case notLeaderForPartition = 6
    case requestTimedOut = 7
    case networkException = 13
    case coordinatorLoadInProgress = 14
    case coordinatorNotAvailable = 15
    case notCoordinator = 16
    case notEnoughReplicas = 19
    case rebalanceInProgress = 27
    /// Not retriable: a produce that gets it fails for good.
    case topicAuthorizationFailed = 29
}

/// An in-process Kafka cluster on loopback.
public final class KafkaMockCluster: @unchecked Sendable {
    private let handle: ClientHandle
    private let cluster: OpaquePointer
    /// `host:port,…` for clients.
    public let bootstrapServers: String

    /// Starts `brokers` mock brokers on 127.0.0.1 (random ports).
    public init(brokers: Int32 = 1, logger: Logger = Logger(label: "paratool.kafka.mock")) throws {
        // A minimal client owns the cluster; it never connects anywhere.
        handle = try ClientHandle(type: RD_KAFKA_PRODUCER, properties: [:],
                                  name: "mock-cluster", logger: logger, customize: { conf in
            _ = rd_kafka_conf_set(conf, "bootstrap.servers", "", nil, 0)
        })
        guard let cluster = rd_kafka_mock_cluster_new(handle.rk, brokers) else {
            throw KafkaError.invalid("could not start the mock Kafka cluster")
        }
        self.cluster = cluster
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit { rd_kafka_mock_cluster_destroy(cluster) }

    /// Creates a topic (the mock cluster also auto-creates topics on first use).
    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32 = 1) throws {
        try check(rd_kafka_mock_topic_create(cluster, name, partitions, replicationFactor), "mock topic \(name)")
    }

    /// Takes a broker down (connections closed, new ones refused) or brings it back.
    public func setBroker(_ id: Int32, up: Bool) throws {
        try check(up ? rd_kafka_mock_broker_set_up(cluster, id) : rd_kafka_mock_broker_set_down(cluster, id),
                  "mock broker \(id) \(up ? "up" : "down")")
    }

    /// The next `errors.count` requests of `api` (to any broker) fail with these errors in order.
    public func pushRequestErrors(_ api: KafkaAPI, _ errors: [KafkaBrokerError]) {
        let codes = errors.map { rd_kafka_resp_err_t($0.rawValue) }
        codes.withUnsafeBufferPointer { rd_kafka_mock_push_request_errors_array(cluster, api.rawValue, codes.count, $0.baseAddress) }
    }

    /// Adds `ms` of round-trip latency to a broker.
    public func setRoundTripTime(broker: Int32, milliseconds: Int32) throws {
        try check(rd_kafka_mock_broker_set_rtt(cluster, broker, milliseconds), "mock broker \(broker) rtt")
    }
}
