// KafkaError: the one error type of the Kafka layer, carrying librdkafka's error code and
// whether the failure is retriable, fatal, or (in a transaction) requires an abort.
import CRdKafka

/// A failure reported by librdkafka or by this layer's checks.
public struct KafkaError: Error, CustomStringConvertible, Sendable, Equatable {
    /// librdkafka's `rd_kafka_resp_err_t` value (negative: client-side, positive: broker).
    public var code: Int32
    /// librdkafka's name for the code, e.g. `"_TRANSPORT"` or `"UNKNOWN_TOPIC_OR_PART"`.
    public var name: String
    /// What was being done and librdkafka's explanation.
    public var message: String
    /// The operation may succeed when retried.
    public var isRetriable = false
    /// The client instance is unusable and must be recreated.
    public var isFatal = false
    /// The current transaction must be aborted before anything else.
    public var requiresAbort = false

    public init(code: Int32, message: String, isRetriable: Bool = false, isFatal: Bool = false, requiresAbort: Bool = false) {
        self.code = code
        self.name = String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(code)))
        self.message = message
        self.isRetriable = isRetriable
        self.isFatal = isFatal
        self.requiresAbort = requiresAbort
    }

    init(_ err: rd_kafka_resp_err_t, _ context: String) {
        self.init(code: err.rawValue, message: "\(context): \(String(cString: rd_kafka_err2str(err)))")
    }

    /// Takes ownership of an `rd_kafka_error_t` (destroys it).
    init(consuming error: OpaquePointer, _ context: String) {
        let code = rd_kafka_error_code(error).rawValue
        let text = String(cString: rd_kafka_error_string(error))
        self.init(code: code, message: "\(context): \(text)",
                  isRetriable: rd_kafka_error_is_retriable(error) != 0,
                  isFatal: rd_kafka_error_is_fatal(error) != 0,
                  requiresAbort: rd_kafka_error_txn_requires_abort(error) != 0)
        rd_kafka_error_destroy(error)
    }

    /// A configuration or usage error detected by this layer.
    static func invalid(_ message: String) -> KafkaError {
        KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, message: message)
    }

    public var description: String { "kafka \(name): \(message)" }

    /// The message itself can never be delivered as it is — too large for the producer or the
    /// topic, or rejected as invalid — so producing it again fails the same way. Other delivery
    /// failures (timeouts, leader changes, a broker down) may pass on a retry.
    public var isPermanentForMessage: Bool {
        Self.permanentForMessage.contains(code)
    }

    private static let permanentForMessage: Set<Int32> = [
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue, RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE.rawValue,
        RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE.rawValue, RD_KAFKA_RESP_ERR_INVALID_MSG.rawValue,
        RD_KAFKA_RESP_ERR_INVALID_RECORD.rawValue, RD_KAFKA_RESP_ERR__BAD_MSG.rawValue,
    ]
}

/// Throws when `err` is not `NO_ERROR`.
@inline(__always)
func check(_ err: rd_kafka_resp_err_t, _ context: @autoclosure () -> String) throws {
    if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context()) }
}

/// Throws (and destroys) a non-nil `rd_kafka_error_t`.
@inline(__always)
func check(_ error: OpaquePointer?, _ context: @autoclosure () -> String) throws {
    if let error { throw KafkaError(consuming: error, context()) }
}

extension KafkaError {
    /// Names for the librdkafka error codes this project tests or raises (`rd_kafka_resp_err_t`).
    public enum Code {
        /// The operation timed out (`_TIMED_OUT`).
        public static let timedOut = RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue
        /// An argument or configuration is invalid (`_INVALID_ARG`).
        public static let invalidArgument = RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue
        /// The local queue is full (`_QUEUE_FULL`).
        public static let queueFull = RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue
        /// The broker does not know the topic or partition (`UNKNOWN_TOPIC_OR_PART`).
        public static let unknownTopicOrPartition = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART.rawValue
        /// Another producer with the same transactional id took over (`_FENCED`).
        public static let fenced = RD_KAFKA_RESP_ERR__FENCED.rawValue
    }
}

/// librdkafka's logical offsets, for `assign` and seeks (`RD_KAFKA_OFFSET_*`).
public enum LogicalOffset {
    /// The partition's first retained message.
    public static let beginning = Int64(RD_KAFKA_OFFSET_BEGINNING)
    /// The partition's end: only messages produced from now on.
    public static let end = Int64(RD_KAFKA_OFFSET_END)
    /// The group's committed offset.
    public static let stored = Int64(RD_KAFKA_OFFSET_STORED)
}
