// `paratool topics`: create the service's topics (idempotent); publish or remove tools.
import ArgumentParser
import Foundation
import Kafka
import ParaTool
import ParaToolService

struct TopicsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics",
        abstract: "Create the service's topics if they do not exist, then exit.",
        discussion: """
            Creates <prefix>requests, actions, telemetry, trajectories, feedback and dlq (cleanup.policy=delete, \
            --partitions each), <prefix>forget (delete, one partition) and <prefix>adapters and tools \
            (cleanup.policy=compact, one partition). \
            Existing topics are left as they are. Workers beyond the partition count of requests stay idle. \
            With --publish-tools FILE, the catalogue's tools are then published to <prefix>tools (keyed by name; \
            the topic is compacted, so republishing replaces a tool's spec), where workers started without \
            --tools read them. --remove-tool NAME publishes a tombstone: workers stop offering the tool.
            """)

    @OptionGroup var kafka: KafkaOptions

    @Option(help: ArgumentHelp("Partitions of requests, actions, telemetry, trajectories and dlq (default 6).", valueName: "n"))
    var partitions: Int?

    @Option(help: ArgumentHelp("Replication factor of every topic (default 1; 3 on a production cluster).", valueName: "n"))
    var replication: Int?

    @Option(help: ArgumentHelp("Publish this tool catalogue to the tools topic after creating the topics.", valueName: "file"))
    var publishTools: String?

    @Option(help: ArgumentHelp("Remove this tool from the tools topic (a tombstone; repeatable).", valueName: "name"))
    var removeTool: [String] = []

    func run() throws {
        let settings = try kafka.settings()
        let config = try kafka.kafkaConfiguration(settings)
        let partitions = try settings.int("partitions", self.partitions) ?? 6
        let replication = try settings.int("replication", self.replication) ?? 1
        guard partitions >= 1, replication >= 1 else { throw UsageError("--partitions and --replication must be at least 1") }
        let admin = try KafkaAdmin(configuration: config)
        let specs = kafka.topics(settings).specifications(partitions: Int32(partitions), replicationFactor: Int32(replication))
        let created = try admin.createTopics(specs)
        for spec in specs {
            print("\(spec.name): \(created[spec.name] == true ? "created" : "exists") (\(spec.partitions) partitions, \(spec.configs["cleanup.policy"] ?? "delete"))")
        }
        if let file = settings.string("publish-tools", publishTools) {
            let catalogue = try ToolCatalogue.load(file: URL(fileURLWithPath: file))
            let topics = kafka.topics(settings)
            let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: config))
            _ = try producer.sendAndWait(try topics.toolMessages(catalogue))
            producer.close()
            print("\(topics.tools): published \(catalogue.count) tools (\(catalogue.names.joined(separator: ", ")))")
        }
        if !removeTool.isEmpty {
            let topics = kafka.topics(settings)
            let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: config))
            _ = try producer.sendAndWait(removeTool.map(topics.toolRemoval))
            producer.close()
            print("\(topics.tools): removed \(removeTool.joined(separator: ", "))")
        }
    }
}
