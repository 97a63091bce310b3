// Typed settings per client role: a consumer (group member or reader), a producer, and a
// transactional producer. Each resolves to librdkafka properties in one documented order: the
// role's defaults, then the operator's properties for that role (`KafkaConfiguration`), then the
// fields set here, which are the program's decisions.
import Foundation

/// Where a consumer without a committed offset starts (`auto.offset.reset`).
public enum KafkaOffsetReset: String, Sendable {
    /// The oldest message still kept.
    case earliest
    /// Only messages produced after the consumer joined.
    case latest
    /// Fail the partition instead (`ERR__AUTO_OFFSET_RESET`).
    case error
}

/// Which messages a consumer sees from transactional producers (`isolation.level`).
public enum KafkaIsolationLevel: String, Sendable {
    /// Only messages of committed transactions.
    case readCommitted = "read_committed"
    /// Also messages of open and aborted transactions.
    case readUncommitted = "read_uncommitted"
}

/// Settings of one `KafkaConsumer`.
public struct KafkaConsumerConfiguration: Sendable, Equatable {
    /// The cluster and the operator's properties.
    public var cluster: KafkaConfiguration
    /// The consumer group to join on `subscribe` (`group.id`); nil for a reader that assigns
    /// partitions itself and never joins a group.
    public var groupID: String?
    /// Where to start without a committed offset; nil leaves the default (earliest).
    public var offsetReset: KafkaOffsetReset?
    /// Which transactional messages to see; nil leaves the default (read committed).
    public var isolationLevel: KafkaIsolationLevel?
    /// How long the group waits for a heartbeat before it declares this member gone and
    /// rebalances (`session.timeout.ms`); nil leaves librdkafka's 45 s.
    public var sessionTimeout: Duration?
    /// The longest time between two polls before this member is considered stuck and its
    /// partitions reassigned (`max.poll.interval.ms`); nil leaves librdkafka's 300 s.
    public var maxPollInterval: Duration?
    /// How long the broker may hold a fetch waiting for data (`fetch.wait.max.ms`): lower answers
    /// sooner on an idle topic at the price of more fetches; nil leaves librdkafka's 500 ms.
    public var fetchMaxWait: Duration?

    /// Defaults for at-least-once processing: nothing is committed or stored automatically, the
    /// consumer starts at the oldest message and reads only committed transactions.
    public static let defaults: [String: String] = [
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": KafkaOffsetReset.earliest.rawValue,
        "enable.partition.eof": "false",
        "isolation.level": KafkaIsolationLevel.readCommitted.rawValue,
    ]

    /// A consumer of `cluster`, a member of `groupID` or (nil) a reader.
    public init(cluster: KafkaConfiguration, groupID: String?, offsetReset: KafkaOffsetReset? = nil,
                isolationLevel: KafkaIsolationLevel? = nil, sessionTimeout: Duration? = nil,
                maxPollInterval: Duration? = nil, fetchMaxWait: Duration? = nil) {
        self.cluster = cluster
        self.groupID = groupID
        self.offsetReset = offsetReset
        self.isolationLevel = isolationLevel
        self.sessionTimeout = sessionTimeout
        self.maxPollInterval = maxPollInterval
        self.fetchMaxWait = fetchMaxWait
    }

    /// The librdkafka properties: defaults, then the operator's consumer properties, then the
    /// fields set here. A reader gets a private group id it never joins (librdkafka needs one).
    public var librdkafkaProperties: [String: String] {
        var p = Self.defaults.merging(cluster.properties(for: .consumer)) { _, new in new }
        p["bootstrap.servers"] = cluster.brokers
        p["group.id"] = groupID ?? p["group.id"] ?? "paratool-reader-\(UUID().uuidString)"
        if let offsetReset { p["auto.offset.reset"] = offsetReset.rawValue }
        if let isolationLevel { p["isolation.level"] = isolationLevel.rawValue }
        if let sessionTimeout { p["session.timeout.ms"] = "\(sessionTimeout.milliseconds)" }
        if let maxPollInterval { p["max.poll.interval.ms"] = "\(maxPollInterval.milliseconds)" }
        if let fetchMaxWait { p["fetch.wait.max.ms"] = "\(fetchMaxWait.milliseconds)" }
        return p
    }

    /// librdkafka's default `max.poll.interval.ms`.
    public static let defaultMaxPollInterval: Duration = .seconds(300)

    /// The poll interval this consumer runs under, as resolved (the default when unset or unreadable).
    public var effectiveMaxPollInterval: Duration {
        librdkafkaProperties["max.poll.interval.ms"].flatMap(Int.init).flatMap { $0 > 0 ? .milliseconds($0) : nil }
            ?? Self.defaultMaxPollInterval
    }
}

/// How many replicas acknowledge a produced message before it counts as delivered (`acks`).
public enum KafkaAcks: String, Sendable {
    /// Every in-sync replica (needed for idempotence and transactions).
    case all = "all"
    /// The partition leader only.
    case leader = "1"
    /// None: fire and forget.
    case none = "0"
}

/// Settings of one `KafkaProducer` without transactions.
public struct KafkaProducerConfiguration: Sendable, Equatable {
    /// The cluster and the operator's properties.
    public var cluster: KafkaConfiguration
    /// Whether retries can neither duplicate nor reorder messages (`enable.idempotence`); nil
    /// leaves the default (on).
    public var idempotent: Bool?
    /// Acknowledgements awaited per message; nil leaves the default (all).
    public var acks: KafkaAcks?
    /// How long a message may wait to share a request with later ones (`linger.ms`); nil leaves
    /// the default (0: send at once; messages queued while a request is in flight still batch).
    public var linger: Duration?
    /// How long librdkafka keeps retrying a message before its delivery fails
    /// (`message.timeout.ms`); nil leaves the default (30 s).
    public var messageTimeout: Duration?

    /// Defaults that make delivery safe and fast.
    public static let defaults: [String: String] = [
        "enable.idempotence": "true",
        "acks": KafkaAcks.all.rawValue,
        "linger.ms": "0",
        "message.timeout.ms": "30000",
    ]

    /// A producer for `cluster`.
    public init(cluster: KafkaConfiguration, idempotent: Bool? = nil, acks: KafkaAcks? = nil,
                linger: Duration? = nil, messageTimeout: Duration? = nil) {
        self.cluster = cluster
        self.idempotent = idempotent
        self.acks = acks
        self.linger = linger
        self.messageTimeout = messageTimeout
    }

    /// The librdkafka properties: defaults, then the operator's producer properties, then the
    /// fields set here.
    public var librdkafkaProperties: [String: String] {
        var p = Self.defaults.merging(cluster.properties(for: .producer)) { _, new in new }
        p["bootstrap.servers"] = cluster.brokers
        if let idempotent { p["enable.idempotence"] = "\(idempotent)" }
        if let acks { p["acks"] = acks.rawValue }
        if let linger { p["linger.ms"] = "\(linger.milliseconds)" }
        if let messageTimeout { p["message.timeout.ms"] = "\(messageTimeout.milliseconds)" }
        return p
    }
}

/// Settings of a `KafkaProducer` that writes in transactions (exactly-once consume-transform-
/// produce): always idempotent with acks from all replicas.
public struct KafkaTransactionalProducerConfiguration: Sendable, Equatable {
    /// The producer settings underneath.
    public var producer: KafkaProducerConfiguration
    /// The id that identifies this producer across restarts (`transactional.id`): a new instance
    /// with the same id fences the old one and finishes or aborts its open transaction.
    public var transactionalID: String
    /// How long the broker lets a transaction stay open before aborting it
    /// (`transaction.timeout.ms`); nil leaves librdkafka's 60 s.
    public var transactionTimeout: Duration?

    /// A transactional producer for `cluster` with `transactionalID`.
    public init(cluster: KafkaConfiguration, transactionalID: String, transactionTimeout: Duration? = nil) {
        producer = KafkaProducerConfiguration(cluster: cluster, idempotent: true, acks: .all)
        self.transactionalID = transactionalID
        self.transactionTimeout = transactionTimeout
    }

    /// The producer's properties plus the transactional id and timeout.
    public var librdkafkaProperties: [String: String] {
        var p = producer.librdkafkaProperties
        p["transactional.id"] = transactionalID
        if let transactionTimeout { p["transaction.timeout.ms"] = "\(transactionTimeout.milliseconds)" }
        return p
    }
}
