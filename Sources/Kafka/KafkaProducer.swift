// KafkaProducer: an idempotent producer whose delivery reports resolve per message (callback,
// async, or a blocking wait for a batch), plus the transactional API for exactly-once
// consume-transform-produce. A background thread serves librdkafka's delivery callbacks.
import CRdKafka
import Foundation
import Logging
import Synchronization

/// A Kafka producer. Thread-safe: any thread may produce; callbacks run on the poll thread.
public final class KafkaProducer: @unchecked Sendable {
    private let handle: ClientHandle
    private let running = AtomicFlag(true)
    private let stopped = DispatchSemaphore(value: 0)
    /// Whether this producer was made from a `KafkaTransactionalProducerConfiguration`.
    public let isTransactional: Bool

    /// Creates a producer without transactions.
    public convenience init(configuration: KafkaProducerConfiguration, name: String = "producer",
                            logger: Logger = Logger(label: "paratool.kafka")) throws {
        try self.init(properties: configuration.librdkafkaProperties, isTransactional: false, name: name, logger: logger)
    }

    /// Creates a transactional producer (call `initTransactions` before the first transaction).
    public convenience init(configuration: KafkaTransactionalProducerConfiguration, name: String = "producer",
                            logger: Logger = Logger(label: "paratool.kafka")) throws {
        try self.init(properties: configuration.librdkafkaProperties, isTransactional: true, name: name, logger: logger)
    }

    private init(properties: [String: String], isTransactional: Bool, name: String, logger: Logger) throws {
        self.isTransactional = isTransactional
        handle = try ClientHandle(type: RD_KAFKA_PRODUCER, properties: properties, name: name, logger: logger, customize: { conf in
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, _ in
                guard let message, let opaque = message.pointee._private else { return }
                let box = Unmanaged<DeliveryBox>.fromOpaque(opaque).takeRetainedValue()
                let m = message.pointee
                if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
                    box.complete(.success(DeliveryReport(topic: topic, partition: m.partition, offset: m.offset)))
                } else {
                    box.complete(.failure(KafkaError(m.err, "delivery")))
                }
            }
        })
        let thread = Thread { [handle, running, stopped] in
            while running.isSet { rd_kafka_poll(handle.rk, 50) }
            stopped.signal()
        }
        thread.name = "kafka-\(name)-poll"
        thread.start()
    }

    deinit { close() }

    /// The fatal error that made this producer unusable (for example a fenced transactional id).
    public var fatalError: KafkaError? { handle.fatalError }

    /// Enqueues `message`; `completion` runs once with its delivery report or the failure.
    /// Throws only when librdkafka refuses the message outright (unknown topic, too large, …).
    public func produce(_ message: OutgoingMessage,
                        completion: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void) throws {
        let box = Unmanaged.passRetained(DeliveryBox(completion))
        var headers: OpaquePointer?
        if !message.headers.isEmpty {
            headers = rd_kafka_headers_new(message.headers.count)
            for h in message.headers {
                _ = h.value.withUnsafeBytes { rd_kafka_header_add(headers, h.name, -1, $0.baseAddress, $0.count) }
            }
        }
        var attempts = 0
        while true {
            let err = message.value.withUnsafeBytes { value in
                (message.key ?? []).withUnsafeBytes { key in
                    pt_kafka_produce(handle.rk, message.topic, message.partition ?? RD_KAFKA_PARTITION_UA,
                                     message.key == nil ? nil : key.baseAddress, message.key == nil ? 0 : key.count,
                                     value.baseAddress, value.count, headers, box.toOpaque())
                }
            }
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            // A full local queue drains as deliveries complete: wait for room rather than fail.
            if err == RD_KAFKA_RESP_ERR__QUEUE_FULL, attempts < 3000 {
                attempts += 1
                Thread.sleep(forTimeInterval: 0.002)
                continue
            }
            if let headers { rd_kafka_headers_destroy(headers) }
            box.release()
            throw KafkaError(err, "producing to \(message.topic)")
        }
    }

    /// Produces `message` and returns once the broker has acknowledged it.
    public func send(_ message: OutgoingMessage) async throws -> DeliveryReport {
        try await withCheckedThrowingContinuation { continuation in
            do {
                try produce(message) { continuation.resume(with: $0) }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// Produces all `messages` and blocks until every one is acknowledged or failed; one result
    /// per message, in order. A message librdkafka refuses outright fails without being sent.
    public func deliver(_ messages: [OutgoingMessage]) -> [Result<DeliveryReport, KafkaError>] {
        let results = Mutex<[Result<DeliveryReport, KafkaError>?]>(Array(repeating: nil, count: messages.count))
        let group = DispatchGroup()
        for (i, message) in messages.enumerated() {
            group.enter()
            do {
                try produce(message) { result in
                    results.withLock { $0[i] = result }
                    group.leave()
                }
            } catch {
                results.withLock { $0[i] = .failure(error as? KafkaError ?? KafkaError.invalid("\(error)")) }
                group.leave()
            }
        }
        group.wait()
        return results.withLock { $0.map { $0! } }
    }

    /// Produces all `messages`, waits for every acknowledgement, and returns the reports in
    /// order; throws the first failure (after all have completed).
    public func sendAndWait(_ messages: [OutgoingMessage]) throws -> [DeliveryReport] {
        try deliver(messages).map { try $0.get() }
    }

    /// Waits until every queued message is delivered or failed.
    public func flush(timeout: Duration = .seconds(30)) throws {
        try check(rd_kafka_flush(handle.rk, timeout.milliseconds), "flush")
    }

    /// Partition count of a topic.
    public func partitionCount(topic: String, timeout: Duration = .seconds(10)) throws -> Int32 {
        try handle.partitionCount(topic: topic, timeout: timeout)
    }

    // MARK: Transactions

    /// Registers the transactional id with the coordinator (fencing older instances).
    public func initTransactions(timeout: Duration = .seconds(30)) throws {
        try check(rd_kafka_init_transactions(handle.rk, timeout.milliseconds), "init_transactions")
    }

    public func beginTransaction() throws {
        try check(rd_kafka_begin_transaction(handle.rk), "begin_transaction")
    }

    /// Adds the consumer's positions to the transaction, so they commit with its messages.
    public func sendOffsetsToTransaction(_ offsets: [TopicPartitionOffset], consumer: KafkaConsumer,
                                         timeout: Duration = .seconds(30)) throws {
        let list = makePartitionList(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let metadata = try consumer.groupMetadata()
        defer { rd_kafka_consumer_group_metadata_destroy(metadata) }
        try check(rd_kafka_send_offsets_to_transaction(handle.rk, list, metadata, timeout.milliseconds),
                  "send_offsets_to_transaction")
    }

    /// Flushes and commits the transaction.
    public func commitTransaction(timeout: Duration = .seconds(30)) throws {
        try check(rd_kafka_commit_transaction(handle.rk, timeout.milliseconds), "commit_transaction")
    }

    public func abortTransaction(timeout: Duration = .seconds(30)) throws {
        try check(rd_kafka_abort_transaction(handle.rk, timeout.milliseconds), "abort_transaction")
    }

    /// Delivers what is queued (up to `timeout`) and stops the poll thread. Idempotent.
    public func close(timeout: Duration = .seconds(10)) {
        guard running.isSet else { return }
        _ = rd_kafka_flush(handle.rk, timeout.milliseconds)
        // Whatever is still queued fails now (each completion runs with _PURGE_* errors) rather
        // than leaving a waiter without an answer.
        _ = rd_kafka_purge(handle.rk, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        _ = rd_kafka_flush(handle.rk, 1000)
        if running.exchange(false) { stopped.wait() }
    }
}

/// Holds one message's completion until its delivery report arrives.
private final class DeliveryBox: @unchecked Sendable {
    let completion: @Sendable (Result<DeliveryReport, KafkaError>) -> Void
    init(_ completion: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void) { self.completion = completion }
    func complete(_ result: Result<DeliveryReport, KafkaError>) { completion(result) }
}
