// KafkaConsumer: a group member (or a manual-assignment reader) with manual offset commits,
// batched polling, rebalance notifications, lag, and an AsyncSequence of messages.
import CRdKafka
import Foundation
import Logging
import Synchronization

/// A Kafka consumer. Poll from one thread at a time; the other methods are thread-safe.
public final class KafkaConsumer: @unchecked Sendable {
    private let handle: ClientHandle
    private let closed = AtomicFlag(false)
    /// The consumer group, nil for a manual-assignment reader.
    public let groupID: String?

    /// Creates a consumer. With a group id it joins that group on `subscribe`; `onRebalance`
    /// runs on the polling thread (inside `poll`) when partitions are assigned or revoked.
    public init(configuration: KafkaConsumerConfiguration, name: String = "consumer",
                logger: Logger = Logger(label: "paratool.kafka"),
                onRebalance: (@Sendable (RebalanceEvent) -> Void)? = nil) throws {
        groupID = configuration.groupID
        handle = try ClientHandle(type: RD_KAFKA_CONSUMER, properties: configuration.librdkafkaProperties, name: name, logger: logger,
                                  onRebalance: onRebalance, customize: { conf in
            rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, opaque in
                guard let rk, let partitions else { return }
                let context = ClientContext.from(opaque)
                let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
                let parts = readPartitionList(partitions).offsets.map { TopicPartition(topic: $0.topic, partition: $0.partition) }
                switch err {
                case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
                    if cooperative {
                        if let e = rd_kafka_incremental_assign(rk, partitions) {
                            context?.logger.error("\(KafkaError(consuming: e, "incremental_assign"))")
                        }
                    } else {
                        let e = rd_kafka_assign(rk, partitions)
                        if e != RD_KAFKA_RESP_ERR_NO_ERROR { context?.logger.error("\(KafkaError(e, "assign"))") }
                    }
                    context?.logger.info("partitions assigned", metadata: ["partitions": "\(parts.map(\.description))"])
                    context?.onRebalance?(.assigned(parts))
                case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
                    let lost = rd_kafka_assignment_lost(rk) != 0
                    context?.logger.info("partitions revoked", metadata: ["partitions": "\(parts.map(\.description))", "lost": "\(lost)"])
                    context?.onRebalance?(.revoked(parts, lost: lost))
                    if cooperative {
                        if let e = rd_kafka_incremental_unassign(rk, partitions) {
                            context?.logger.error("\(KafkaError(consuming: e, "incremental_unassign"))")
                        }
                    } else {
                        _ = rd_kafka_assign(rk, nil)
                    }
                default:
                    context?.logger.error("rebalance failed: \(String(cString: rd_kafka_err2str(err)))")
                    _ = rd_kafka_assign(rk, nil)
                }
            }
        })
        // Route the main event queue (rebalances, errors, logs) into the consumer queue served by poll.
        rd_kafka_poll_set_consumer(handle.rk)
    }

    deinit { close() }

    /// The fatal error that made this consumer unusable.
    public var fatalError: KafkaError? { handle.fatalError }

    /// Joins the group (or re-subscribes) for these topics.
    public func subscribe(topics: [String]) throws {
        guard groupID != nil else { throw KafkaError.invalid("subscribe needs a consumer group id") }
        let list = makePartitionList(topics.map { TopicPartitionOffset(topic: $0, partition: RD_KAFKA_PARTITION_UA, offset: 0) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try check(rd_kafka_subscribe(handle.rk, list), "subscribe to \(topics.joined(separator: ","))")
    }

    /// Reads exactly these partitions from these offsets (no group membership).
    public func assign(_ partitions: [TopicPartitionOffset]) throws {
        let list = makePartitionList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try check(rd_kafka_assign(handle.rk, list), "assign")
    }

    /// Assigns every partition of `topics` at its current end: only messages produced after
    /// this call are read.
    public func assignAtEnd(topics: [String], timeout: Duration = .seconds(10)) throws {
        try assign(try endOffsets(topics: topics, timeout: timeout))
    }

    /// Every partition of `topics` with its end offset (the next offset to be written), asked of
    /// the broker.
    public func endOffsets(topics: [String], timeout: Duration = .seconds(10)) throws -> [TopicPartitionOffset] {
        var positions: [TopicPartitionOffset] = []
        for topic in topics {
            let count = try handle.partitionCount(topic: topic, timeout: timeout)
            for p in 0..<count {
                let high = try handle.watermarks(topic: topic, partition: p, timeout: timeout).high
                positions.append(TopicPartitionOffset(topic: topic, partition: p, offset: high))
            }
        }
        return positions
    }

    /// The next message, or nil when none arrived within `timeout`. Consumer errors that
    /// librdkafka recovers from by itself are logged; a fatal one throws.
    public func poll(timeout: Duration) throws -> KafkaMessage? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = max(Duration.zero, deadline - ContinuousClock.now)
            guard let m = rd_kafka_consumer_poll(handle.rk, remaining.milliseconds) else {
                if let fatal = handle.fatalError { throw fatal }
                return nil
            }
            defer { rd_kafka_message_destroy(m) }
            let err = m.pointee.err
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { return KafkaMessage(copying: m) }
            if err == RD_KAFKA_RESP_ERR__PARTITION_EOF { continue }
            let error = KafkaError(err, "consume")
            if let fatal = handle.fatalError { throw fatal }
            handle.context.logger.warning("\(error)")
            if ContinuousClock.now >= deadline { return nil }
        }
    }

    /// Up to `maxMessages`: waits up to `timeout` for the first, then takes what has already
    /// arrived and waits up to `window` more for the rest (empty when nothing arrived).
    public func pollBatch(maxMessages: Int, timeout: Duration, window: Duration) throws -> [KafkaMessage] {
        guard let first = try poll(timeout: timeout) else { return [] }
        var batch = [first]
        let deadline = ContinuousClock.now + window
        while batch.count < maxMessages {
            let remaining = max(.zero, deadline - ContinuousClock.now)
            guard let next = try poll(timeout: remaining) else { break }
            batch.append(next)
        }
        return batch
    }

    /// Commits these positions (the next offset to read per partition) and waits for the broker.
    public func commit(_ offsets: [TopicPartitionOffset]) throws {
        guard !offsets.isEmpty else { return }
        let list = makePartitionList(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try check(rd_kafka_commit(handle.rk, list, 0), "commit \(offsets.map(\.description).joined(separator: ","))")
        if let error = readPartitionList(list).error { throw error }
    }

    /// The committed positions of these partitions, asked of the group coordinator.
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) throws -> [TopicPartitionOffset] {
        let list = makePartitionList(partitions.map { TopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: Int64(RD_KAFKA_OFFSET_INVALID)) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try check(rd_kafka_committed(handle.rk, list, timeout.milliseconds), "committed")
        return readPartitionList(list).offsets
    }

    /// The partitions currently assigned to this consumer.
    public var assignment: [TopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(handle.rk, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return readPartitionList(list).offsets.map { TopicPartition(topic: $0.topic, partition: $0.partition) }
    }

    /// Messages behind the end of the log over the assigned partitions, from librdkafka's cached
    /// watermarks (no broker round trip); nil when not yet known.
    public func lag() -> Int64? {
        let parts = assignment
        guard !parts.isEmpty else { return 0 }
        let list = makePartitionList(parts.map { TopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: Int64(RD_KAFKA_OFFSET_INVALID)) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        guard rd_kafka_position(handle.rk, list) == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        var total: Int64 = 0
        for position in readPartitionList(list).offsets {
            var low: Int64 = 0
            var high: Int64 = 0
            guard rd_kafka_get_watermark_offsets(handle.rk, position.topic, position.partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR,
                  high >= 0 else { return nil }
            total += position.offset >= 0 ? max(0, high - position.offset) : max(0, high - low)
        }
        return total
    }

    /// The group metadata a transactional producer needs (caller destroys it).
    func groupMetadata() throws -> OpaquePointer {
        guard let metadata = rd_kafka_consumer_group_metadata(handle.rk) else {
            throw KafkaError.invalid("this consumer has no group metadata")
        }
        return metadata
    }

    /// Partition count of a topic.
    public func partitionCount(topic: String, timeout: Duration = .seconds(10)) throws -> Int32 {
        try handle.partitionCount(topic: topic, timeout: timeout)
    }

    /// Leaves the group (revoking partitions, committing nothing) and stops fetching. Idempotent.
    public func close() {
        guard !closed.exchange(true) else { return }
        let err = rd_kafka_consumer_close(handle.rk)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { handle.context.logger.warning("\(KafkaError(err, "consumer close"))") }
    }

    /// The messages as an async sequence, polled on a dedicated thread until the consumer is
    /// closed, a fatal error happens (thrown), or the consuming task stops iterating.
    public func messages(pollInterval: Duration = .milliseconds(100)) -> AsyncThrowingStream<KafkaMessage, Error> {
        let (stream, continuation) = AsyncThrowingStream<KafkaMessage, Error>.makeStream(bufferingPolicy: .bufferingOldest(1024))
        let cancelled = AtomicFlag(false)
        continuation.onTermination = { _ in cancelled.set(true) }
        let thread = Thread { [self] in
            while !cancelled.isSet && !closed.isSet {
                do {
                    if let message = try poll(timeout: pollInterval) { continuation.yield(message) }
                } catch {
                    continuation.finish(throwing: error)
                    return
                }
            }
            continuation.finish()
        }
        thread.name = "kafka-consumer-stream"
        thread.start()
        return stream
    }
}
