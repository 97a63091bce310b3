// `paratool forget`: asks the trainers to remove every stored record of a request or of a source
// (a ForgetRequest on the `forget` topic).
import ArgumentParser
import Foundation
import Kafka
import ParaToolService
import Wire

struct ForgetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Ask the trainers to delete every stored record of a request id or of a source.",
        discussion: """
            Publishes a ForgetRequest on <prefix>forget. Each trainer removes the matching trajectories, \
            served candidates and feedback from its dataset and feedback journal (rewriting the files, \
            set-aside lines included) and ignores matching messages that arrive later: by request id \
            always, by source those produced before the request. Adapters already trained keep what they \
            learned; no later training reads the records. Kafka's own topics (requests, actions, \
            trajectories, feedback) keep their copies until their retention.ms deletes them.
            """)

    @OptionGroup var kafka: KafkaOptions

    @Option(help: "The request id whose records go (its trajectory, candidate and feedback).")
    var requestId: String?

    @Option(help: "The source whose records go: ToolCallRequest.source, Feedback.source or Trajectory.source.")
    var source: String?

    func run() throws {
        let settings = try kafka.settings()
        guard (requestId == nil) != (source == nil) else { throw UsageError("give exactly one of --request-id and --source") }
        let request = WireForgetRequest(requestID: requestId ?? "", source: source ?? "",
                                        createdUnixMs: Int64(Date().timeIntervalSince1970 * 1000))
        try request.validate()
        let topics = kafka.topics(settings)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: try kafka.kafkaConfiguration(settings)))
        defer { producer.close() }
        _ = try producer.sendAndWait([OutgoingMessage(topic: topics.forget, key: request.key, value: try request.encode())])
        print("\(topics.forget): asked to forget \(requestId.map { "request \($0)" } ?? "source \(source!)")")
    }
}
