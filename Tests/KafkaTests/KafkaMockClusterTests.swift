// The Kafka layer against librdkafka's mock cluster: real protocol on loopback.
import Foundation
import Kafka
import Logging
import Testing

@Suite struct KafkaMockClusterTests {
    @Test func produceConsumeCommitRoundTrip() throws {
        let cluster = try KafkaMockCluster()
        try cluster.createTopic("t", partitions: 3)
        let config = KafkaConfiguration(brokers: cluster.bootstrapServers)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: config))
        let sent = (0..<30).map { i in
            OutgoingMessage(topic: "t", key: "k\(i)", value: Array("v\(i)".utf8),
                            headers: [KafkaHeader(name: "h", string: "x\(i)")])
        }
        let reports = try producer.sendAndWait(sent)
        #expect(reports.count == 30)
        #expect(Set(reports.map(\.partition)).isSubset(of: [0, 1, 2]))

        let consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: config, groupID: "g"))
        try consumer.subscribe(topics: ["t"])
        var received: [KafkaMessage] = []
        let deadline = Date().addingTimeInterval(20)
        while received.count < 30, Date() < deadline {
            received += try consumer.pollBatch(maxMessages: 8, timeout: .milliseconds(500), window: .milliseconds(5))
        }
        #expect(received.count == 30)
        for m in received {
            let i = Int(m.keyString.dropFirst())!
            #expect(m.value == Array("v\(i)".utf8))
            #expect(m.header("h")?.string == "x\(i)")
            // Same key, same partition as the delivery report said.
            #expect(reports[i].partition == m.partition && reports[i].offset == m.offset)
        }
        let positions = TopicPartitionOffset.commitPositions(after: received)
        try consumer.commit(positions)
        let committed = try consumer.committed(positions.map { TopicPartition(topic: $0.topic, partition: $0.partition) })
        #expect(Set(committed) == Set(positions))
        consumer.close()
        producer.close()
    }

    @Test func asyncSequenceDeliversMessages() async throws {
        let cluster = try KafkaMockCluster()
        try cluster.createTopic("s", partitions: 1)
        let config = KafkaConfiguration(brokers: cluster.bootstrapServers)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: config))
        for i in 0..<5 { _ = try await producer.send(OutgoingMessage(topic: "s", key: "k", value: Array("m\(i)".utf8))) }
        let consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: config, groupID: nil))
        try consumer.assign([TopicPartitionOffset(topic: "s", partition: 0, offset: LogicalOffset.beginning)])
        var values: [String] = []
        for try await m in consumer.messages() {
            values.append(String(decoding: m.value, as: UTF8.self))
            if values.count == 5 { break }
        }
        #expect(values == ["m0", "m1", "m2", "m3", "m4"])
        consumer.close()
        producer.close()
    }

    @Test func configurationFromEnvironmentAndAssignments() throws {
        let env = ["PARATOOL_KAFKA_SASL_USERNAME": "u", "PARATOOL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "PARATOOL_BROKERS": "x", "HOME": "/"]
        #expect(KafkaConfiguration.properties(fromEnvironment: env) == ["sasl.username": "u", "security.protocol": "SASL_SSL"])
        #expect(try KafkaConfiguration.properties(fromAssignments: ["a.b=1", "sasl.jaas=x=y"]) == ["a.b": "1", "sasl.jaas": "x=y"])
        #expect(throws: KafkaError.self) { try KafkaConfiguration.properties(fromAssignments: ["novalue"]) }
        // librdkafka rejects an unknown property by name, before anything connects.
        let bad = KafkaConfiguration(brokers: "127.0.0.1:1", properties: ["no.such.property": "1"])
        #expect(throws: KafkaError.self) { _ = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: bad)) }
    }

    /// Each role passes on the operator's properties that librdkafka's CONFIGURATION.md gives it
    /// (C, P or *), then the typed fields, which win.
    @Test func roleConfigurationsRouteAndResolveProperties() throws {
        #expect(KafkaClientRole.of(property: "session.timeout.ms") == .consumer)
        #expect(KafkaClientRole.of(property: "linger.ms") == .producer)
        #expect(KafkaClientRole.of(property: "security.protocol") == .any)
        #expect(KafkaClientRole.of(property: "no.such.property") == nil)
        let cluster = KafkaConfiguration(brokers: "127.0.0.1:1", properties: [
            "session.timeout.ms": "6000", "fetch.wait.max.ms": "5", "linger.ms": "7",
            "security.protocol": "plaintext", "auto.offset.reset": "latest"])

        let reader = KafkaConsumerConfiguration(cluster: cluster, groupID: nil, fetchMaxWait: .milliseconds(500)).librdkafkaProperties
        #expect(reader["session.timeout.ms"] == "6000" && reader["security.protocol"] == "plaintext")
        #expect(reader["linger.ms"] == nil, "a producer property never reaches a consumer")
        #expect(reader["fetch.wait.max.ms"] == "500", "a typed field wins over the operator's property")
        #expect(reader["auto.offset.reset"] == "latest", "the operator's property wins over the role's default")
        #expect(reader["enable.auto.commit"] == "false" && reader["group.id"]?.hasPrefix("paratool-reader-") == true)
        let member = KafkaConsumerConfiguration(cluster: cluster, groupID: "g", offsetReset: .earliest,
                                                isolationLevel: .readUncommitted, sessionTimeout: .seconds(10)).librdkafkaProperties
        #expect(member["group.id"] == "g" && member["auto.offset.reset"] == "earliest")
        #expect(member["isolation.level"] == "read_uncommitted" && member["session.timeout.ms"] == "10000")

        let producer = KafkaProducerConfiguration(cluster: cluster, acks: .leader).librdkafkaProperties
        #expect(producer["session.timeout.ms"] == nil && producer["fetch.wait.max.ms"] == nil, "no consumer property in a producer")
        #expect(producer["linger.ms"] == "7" && producer["acks"] == "1" && producer["enable.idempotence"] == "true")
        #expect(producer["bootstrap.servers"] == "127.0.0.1:1" && producer["security.protocol"] == "plaintext")
        let transactional = KafkaTransactionalProducerConfiguration(cluster: cluster.merging(["acks": "1"]), transactionalID: "t",
                                                                    transactionTimeout: .seconds(20)).librdkafkaProperties
        #expect(transactional["transactional.id"] == "t" && transactional["transaction.timeout.ms"] == "20000")
        #expect(transactional["acks"] == "all", "transactions need every replica's acknowledgement")

        // Every resolved set is one librdkafka accepts for its client type.
        _ = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: cluster, groupID: "g"))
        _ = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: cluster))
    }
}
