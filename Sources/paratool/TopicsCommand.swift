// `paratool topics`: create the service's seven topics (idempotent).
import ArgumentParser
import Foundation
import Kafka
import ParaToolService

struct TopicsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics",
        abstract: "Create the service's topics if they do not exist, then exit.",
        discussion: """
            Creates <prefix>requests, actions, telemetry, trajectories and dlq (cleanup.policy=delete, \
            --partitions each) and <prefix>adapters and tools (cleanup.policy=compact, one partition). \
            Existing topics are left as they are. Workers beyond the partition count of requests stay idle.
            """)

    @OptionGroup var kafka: KafkaOptions

    @Option(help: ArgumentHelp("Partitions of requests, actions, telemetry, trajectories and dlq (default 6).", valueName: "n"))
    var partitions: Int?

    @Option(help: ArgumentHelp("Replication factor of every topic (default 1; 3 on a production cluster).", valueName: "n"))
    var replication: Int?

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
    }
}
