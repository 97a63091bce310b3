// Transactions on a real broker (Tansu 0.6.0): a second producer with the same transactional id
// fences the first (whose commit then fails), and consumer offsets sent in a transaction become the
// group's committed position when it commits — what exactly-once serving relies on. Tansu does not
// hide aborted records from read_committed readers; that gap is recorded as a known issue, so this
// test reports when a Tansu version closes it.
import Foundation
import Kafka
import KafkaTestSupport
import Logging
import Testing

@Suite(.serialized) struct KafkaTransactionTests {
    func readCommitted(_ brokers: String, topic: String, expecting count: Int, partitions: Int32 = 1) throws -> [String] {
        let reader = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: KafkaConfiguration(brokers: brokers), groupID: nil), name: "reader")
        defer { reader.close() }
        try reader.assign((0..<partitions).map { TopicPartitionOffset(topic: topic, partition: $0, offset: LogicalOffset.beginning) })
        var values: [String] = []
        let deadline = Date().addingTimeInterval(10)
        // Read until `count` arrived, then a little longer to catch anything that should not be there.
        var quietUntil: Date?
        while Date() < deadline {
            if let m = try reader.poll(timeout: .milliseconds(100)) {
                values.append(String(decoding: m.value, as: UTF8.self))
            } else if values.count >= count {
                if quietUntil == nil { quietUntil = Date().addingTimeInterval(1.5) }
                if Date() > quietUntil! { break }
            }
        }
        return values
    }

    @Test func commitAbortAndFencing() throws {
        let broker = try TansuBroker()
        let config = KafkaConfiguration(brokers: broker.bootstrap)
        let admin = try KafkaAdmin(configuration: config)
        let created = try admin.createTopics([TopicSpecification(name: "out", partitions: 1), TopicSpecification(name: "in", partitions: 1)])
        #expect(created == ["out": true, "in": true])
        #expect(try admin.createTopics([TopicSpecification(name: "out", partitions: 1)]) == ["out": false], "idempotent")

        // Input the transactions consume from, and a group consumer whose offsets they commit.
        let plain = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: config))
        _ = try plain.sendAndWait((0..<3).map { OutgoingMessage(topic: "in", key: "k", value: Array("in\($0)".utf8)) })
        // Tansu holds a JoinGroup for the whole rebalance timeout (= max.poll.interval.ms): keep it short.
        let consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: config.merging(TansuBroker.groupProperties), groupID: "txn-group"))
        try consumer.subscribe(topics: ["in"])
        var input: [KafkaMessage] = []
        let deadline = Date().addingTimeInterval(20)
        while input.count < 3, Date() < deadline { input += try consumer.pollBatch(maxMessages: 3, timeout: .milliseconds(200), window: .milliseconds(10)) }
        try #require(input.count == 3)

        let a = try KafkaProducer(configuration: KafkaTransactionalProducerConfiguration(cluster: config, transactionalID: "txn-x"), name: "a")
        try a.initTransactions()
        try a.beginTransaction()
        _ = try a.sendAndWait([OutgoingMessage(topic: "out", key: "k", value: Array("committed".utf8))])
        try a.sendOffsetsToTransaction(TopicPartitionOffset.commitPositions(after: [input[0]]), consumer: consumer)
        try a.commitTransaction()

        try a.beginTransaction()
        _ = try a.sendAndWait([OutgoingMessage(topic: "out", key: "k", value: Array("aborted".utf8))])
        try a.abortTransaction()

        // A zombie: an open transaction, then a new instance with the same id takes over.
        try a.beginTransaction()
        _ = try a.sendAndWait([OutgoingMessage(topic: "out", key: "k", value: Array("zombie".utf8))])
        let b = try KafkaProducer(configuration: KafkaTransactionalProducerConfiguration(cluster: config, transactionalID: "txn-x"), name: "b")
        try b.initTransactions()
        try b.beginTransaction()
        _ = try b.sendAndWait([OutgoingMessage(topic: "out", key: "k", value: Array("successor".utf8))])
        try b.sendOffsetsToTransaction(TopicPartitionOffset.commitPositions(after: input), consumer: consumer)
        try b.commitTransaction()
        #expect(throws: KafkaError.self) { try a.commitTransaction() }

        let visible = try readCommitted(broker.bootstrap, topic: "out", expecting: 2)
        #expect(visible.filter { $0 == "committed" || $0 == "successor" } == ["committed", "successor"])
        withKnownIssue("Tansu 0.6.0 returns aborted transactional records to read_committed consumers") {
            #expect(visible == ["committed", "successor"])
        }
        // The offsets committed with the successor's transaction are the group's position.
        let committed = try consumer.committed([TopicPartition(topic: "in", partition: 0)])
        #expect(committed.first?.offset == input.last!.offset + 1)
    }
}
