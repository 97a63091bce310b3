// ClientHandle: owns one `rd_kafka_t` and the context its C callbacks reach through the
// configuration opaque (logging, errors, delivery reports, rebalances). Internal to the layer.
import CRdKafka
import Foundation
import Logging
import Synchronization

/// A group rebalance seen by a consumer.
public enum RebalanceEvent: Sendable, Equatable {
    /// Partitions now owned by this member.
    case assigned([TopicPartition])
    /// Partitions taken away; `lost` when the member was evicted rather than asked.
    case revoked([TopicPartition], lost: Bool)
}

/// State shared with librdkafka's callback threads. Only immutable or lock-protected members.
final class ClientContext: @unchecked Sendable {
    let logger: Logger
    let name: String
    let onRebalance: (@Sendable (RebalanceEvent) -> Void)?
    let fatal = Mutex<KafkaError?>(nil)

    init(name: String, logger: Logger, onRebalance: (@Sendable (RebalanceEvent) -> Void)?) {
        self.name = name
        self.logger = logger
        self.onRebalance = onRebalance
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> ClientContext? {
        opaque.map { Unmanaged<ClientContext>.fromOpaque($0).takeUnretainedValue() }
    }
}

/// One librdkafka client instance and its callback context; destroyed with this object.
final class ClientHandle: @unchecked Sendable {
    let rk: OpaquePointer
    let context: ClientContext
    private let contextRef: Unmanaged<ClientContext>

    /// Creates the client. `customize` may install further callbacks on the conf.
    init(type: rd_kafka_type_t, properties: [String: String], name: String, logger: Logger,
         onRebalance: (@Sendable (RebalanceEvent) -> Void)? = nil,
         customize: (OpaquePointer) -> Void = { _ in }) throws {
        let conf = try properties.makeConf()
        let context = ClientContext(name: name, logger: logger, onRebalance: onRebalance)
        let ref = Unmanaged.passRetained(context)
        rd_kafka_conf_set_opaque(conf, ref.toOpaque())
        rd_kafka_conf_set_log_cb(conf) { rk, level, facility, message in
            guard let rk, let context = ClientContext.from(rd_kafka_opaque(rk)) else { return }
            let text = message.map { String(cString: $0) } ?? ""
            let fac = facility.map { String(cString: $0) } ?? ""
            let logLevel: Logger.Level = switch level {
            case ...2: .critical
            case 3: .error
            case 4: .warning
            case 5: .notice
            case 6: .info
            default: .debug
            }
            context.logger.log(level: logLevel, "\(text)", metadata: ["client": "\(context.name)", "facility": "\(fac)"])
        }
        rd_kafka_conf_set_error_cb(conf) { rk, err, reason, opaque in
            guard let context = ClientContext.from(opaque) else { return }
            let text = reason.map { String(cString: $0) } ?? ""
            if err == RD_KAFKA_RESP_ERR__FATAL.rawValue, let rk {
                var buffer = [CChar](repeating: 0, count: 512)
                let original = rd_kafka_fatal_error(rk, &buffer, buffer.count)
                let error = KafkaError(code: original.rawValue, message: "fatal: \(string(fromBuffer: buffer))", isFatal: true)
                context.fatal.withLock { $0 = error }
                context.logger.critical("\(error)", metadata: ["client": "\(context.name)"])
            } else {
                // Transport errors are retried by librdkafka; they are worth a warning, not a failure.
                context.logger.warning("\(String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(err)))): \(text)", metadata: ["client": "\(context.name)"])
            }
        }
        customize(conf)
        var errstr = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            ref.release()
            throw KafkaError.invalid("creating the Kafka client: \(string(fromBuffer: errstr))")
        }
        self.rk = rk
        self.context = context
        self.contextRef = ref
    }

    /// The fatal error that made this client unusable, if one happened.
    var fatalError: KafkaError? { context.fatal.withLock { $0 } }

    deinit {
        rd_kafka_destroy(rk)
        contextRef.release()
    }

    /// Partition count of a topic from cluster metadata (creating nothing).
    func partitionCount(topic: String, timeout: Duration) throws -> Int32 {
        guard let rkt = rd_kafka_topic_new(rk, topic, nil) else { throw KafkaError.invalid("topic handle for \(topic)") }
        defer { rd_kafka_topic_destroy(rkt) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        try check(rd_kafka_metadata(rk, 0, rkt, &metadata, timeout.milliseconds), "metadata of \(topic)")
        guard let metadata else { throw KafkaError.invalid("no metadata for \(topic)") }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt > 0 else { throw KafkaError.invalid("topic \(topic) not in metadata") }
        let t = metadata.pointee.topics[0]
        try check(t.err, "topic \(topic)")
        return t.partition_cnt
    }

    /// Low and high watermark of a partition, asked of the broker.
    func watermarks(topic: String, partition: Int32, timeout: Duration) throws -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        try check(rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high, timeout.milliseconds),
                  "watermarks of \(topic)[\(partition)]")
        return (low, high)
    }
}

extension Duration {
    /// Whole milliseconds, clamped to Int32 (librdkafka's timeout type).
    var milliseconds: Int32 {
        let (seconds, attoseconds) = components
        let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: ms)
    }
}

/// The NUL-terminated text in a C character buffer.
func string(fromBuffer buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A Boolean shared between threads (a reference, so closures and threads can capture it).
final class AtomicFlag: Sendable {
    private let value: Atomic<Bool>
    init(_ initial: Bool) { value = Atomic(initial) }
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set(_ newValue: Bool) { value.store(newValue, ordering: .releasing) }
    /// Sets the flag and returns the previous value.
    func exchange(_ newValue: Bool) -> Bool { value.exchange(newValue, ordering: .acquiringAndReleasing) }
}
