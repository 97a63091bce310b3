// Value types crossing the Kafka layer: messages in and out, headers, topic partitions and
// offsets, delivery reports. Plain Swift data; no librdkafka pointers escape.
import CRdKafka

/// One record header (Kafka headers are ordered and may repeat).
public struct KafkaHeader: Sendable, Equatable {
    public var name: String
    public var value: [UInt8]
    public init(name: String, value: [UInt8]) { self.name = name; self.value = value }
    public init(name: String, string: String) { self.name = name; self.value = Array(string.utf8) }
    /// The value as UTF-8 text (invalid bytes repaired).
    public var string: String { String(decoding: value, as: UTF8.self) }
}

/// A record to produce.
public struct OutgoingMessage: Sendable, Equatable {
    public var topic: String
    /// nil: librdkafka's partitioner chooses (by key hash).
    public var partition: Int32?
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]

    public init(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader] = []) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
    }

    public init(topic: String, key: String, value: [UInt8], headers: [KafkaHeader] = []) {
        self.init(topic: topic, key: Array(key.utf8), value: value, headers: headers)
    }
}

/// A consumed record.
public struct KafkaMessage: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// Milliseconds since the epoch (create or log-append time), nil when unknown.
    public var timestampMs: Int64?

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8],
                headers: [KafkaHeader] = [], timestampMs: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMs = timestampMs
    }

    /// The key as UTF-8 text (empty when absent).
    public var keyString: String { key.map { String(decoding: $0, as: UTF8.self) } ?? "" }

    /// The first header with this name.
    public func header(_ name: String) -> KafkaHeader? { headers.first { $0.name == name } }

    /// Copies a librdkafka message (which the caller still owns and destroys).
    init(copying m: UnsafeMutablePointer<rd_kafka_message_t>) {
        let msg = m.pointee
        topic = msg.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        partition = msg.partition
        offset = msg.offset
        key = msg.key.map { Array(UnsafeRawBufferPointer(start: $0, count: msg.key_len)) }
        value = msg.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: msg.len)) } ?? []
        var headers: [KafkaHeader] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var index = 0
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(hdrs, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                headers.append(KafkaHeader(name: name.map { String(cString: $0) } ?? "", value: bytes))
                index += 1
            }
        }
        self.headers = headers
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(m, &type)
        timestampMs = type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : ts
    }
}

/// A topic partition.
public struct TopicPartition: Sendable, Hashable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public init(topic: String, partition: Int32) { self.topic = topic; self.partition = partition }
    public var description: String { "\(topic)[\(partition)]" }
}

/// A topic partition with an offset: for commits, the next offset to read.
public struct TopicPartitionOffset: Sendable, Hashable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
    public var description: String { "\(topic)[\(partition)]@\(offset)" }

    /// The commit position after consuming `messages`: per partition, the highest offset + 1.
    public static func commitPositions(after messages: [KafkaMessage]) -> [TopicPartitionOffset] {
        var next: [TopicPartition: Int64] = [:]
        for m in messages {
            let tp = TopicPartition(topic: m.topic, partition: m.partition)
            next[tp] = max(next[tp] ?? Int64.min, m.offset + 1)
        }
        return next.map { TopicPartitionOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) }
            .sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }
}

/// Where a produced message was stored.
public struct DeliveryReport: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
}

/// Builds an `rd_kafka_topic_partition_list_t` (caller destroys it).
func makePartitionList(_ offsets: [TopicPartitionOffset]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
    let list = rd_kafka_topic_partition_list_new(Int32(max(offsets.count, 1)))!
    for o in offsets {
        let element = rd_kafka_topic_partition_list_add(list, o.topic, o.partition)!
        element.pointee.offset = o.offset
    }
    return list
}

/// The elements of a partition list, with the first per-partition error (if any).
func readPartitionList(_ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>)
    -> (offsets: [TopicPartitionOffset], error: KafkaError?) {
    var result: [TopicPartitionOffset] = []
    var firstError: KafkaError?
    for i in 0..<Int(list.pointee.cnt) {
        let e = list.pointee.elems[i]
        let topic = String(cString: e.topic)
        result.append(TopicPartitionOffset(topic: topic, partition: e.partition, offset: e.offset))
        if e.err != RD_KAFKA_RESP_ERR_NO_ERROR, firstError == nil {
            firstError = KafkaError(e.err, "\(topic)[\(e.partition)]")
        }
    }
    return (result, firstError)
}
