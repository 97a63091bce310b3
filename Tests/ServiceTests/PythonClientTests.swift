// The Python client example (Deploy/clients/python/send_request.py: confluent-kafka and the
// protoc-generated classes) against the embedded default, `paratool up` on the default model;
// the Feedback it reports is read back with the Wire layer.
import Foundation
import Kafka
import ParaToolService
import Testing
import Wire

@Suite struct PythonClientTests {
    @Test func pythonClientGetsAnActionFromTheEmbeddedDefault() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("paratool")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "paratool is built beside the tests")
        let store = FileManager.default.temporaryDirectory.appendingPathComponent("paratool-up-\(UUID().uuidString)/store")
        defer { try? FileManager.default.removeItem(at: store.deletingLastPathComponent()) }

        let up = Process()
        up.executableURL = binary
        up.arguments = ["up", "--skip-training", "--adapter-store", store.path, "--metrics-port", "0", "--log-level", "warning"]
        let output = Pipe()
        up.standardOutput = output
        up.standardError = FileHandle.nullDevice
        try up.run()
        defer {
            up.terminate()
            up.waitUntilExit()
        }
        // The first line `bootstrap: HOST:PORT` says it is ready.
        var text = ""
        let deadline = Date().addingTimeInterval(120)
        while !text.contains("\n"), Date() < deadline, up.isRunning {
            text += String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        }
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("bootstrap: ") })
        let bootstrap = String(line.dropFirst("bootstrap: ".count))
        #expect(bootstrap.hasPrefix("127.0.0.1:"))

        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = ["python3", repo.appendingPathComponent("Deploy/clients/python/send_request.py").path,
                            "--brokers", bootstrap, "--query", "What's the weather like in Lisbon right now?",
                            "--max-new-tokens", "8", "--timeout", "120",
                            "--feedback", "unsolved", "--corrected-call", "get_weather", #"{"city": "Lisbon"}"#]
        let answer = Pipe()
        let errors = Pipe()
        client.standardOutput = answer
        client.standardError = errors
        try client.run()
        let data = answer.fileHandleForReading.readDataToEndOfFile()
        let diagnostics = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        client.waitUntilExit()
        #expect(client.terminationStatus == 0, "send_request.py failed (pip install confluent-kafka protobuf, as .ci/install does): \(diagnostics)")
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let action = try #require(object["action"] as? [String: Any])
        #expect(action["status"] as? String == "STATUS_OK")
        #expect((action["weights"] as? [[String: Any]])?.map { $0["tool"] as? String } == ["get_weather", "convert_currency", "search_flights", "set_timer"])
        let telemetry = try #require(object["telemetry"] as? [String: Any])
        #expect(telemetry["request_id"] as? String == action["request_id"] as? String)
        // protobuf's JSON mapping writes uint64 as strings.
        let parts = ["base_linear", "attention", "lora", "encoder", "gate"].map { UInt64(telemetry[$0] as? String ?? "0") ?? 0 }
        #expect(UInt64(telemetry["total"] as? String ?? "") == parts.reduce(0, +))
        #expect(parts[0] > 0)

        // The feedback, encoded by Python's protobuf, decodes with the Wire layer.
        let reader = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: KafkaConfiguration(brokers: bootstrap), groupID: nil))
        defer { reader.close() }
        let feedbackTopic = TopicNames().feedback
        try reader.assign((0..<(try reader.partitionCount(topic: feedbackTopic))).map {
            TopicPartitionOffset(topic: feedbackTopic, partition: $0, offset: LogicalOffset.beginning)
        })
        var message: KafkaMessage?
        let readDeadline = ContinuousClock.now + .seconds(20)
        while message == nil, ContinuousClock.now < readDeadline { message = try reader.poll(timeout: .milliseconds(100)) }
        let received = try #require(message, "the feedback arrived on \(feedbackTopic)")
        let feedback = try WireFeedback(bytes: received.value)
        #expect(feedback.requestID == action["request_id"] as? String && received.keyString == feedback.requestID)
        #expect(feedback.outcome == .unsolved && feedback.source == "python:send_request" && feedback.createdUnixMs > 0)
        #expect(feedback.correctedCalls == [WireToolCall(name: "get_weather", argumentsJSON: #"{"city": "Lisbon"}"#)])
    }
}
