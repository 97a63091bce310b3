// Tool names from the topics follow the store's one rule (AdapterStore.validate(tool:)): a ToolSpec
// on `tools` with a bad name, or whose message key names another tool, is refused and counted
// while the rest of the catalogue serves; feedback correcting to a badly named tool is refused.
import Foundation
import Kafka
import ParaTool
import ParaToolService
import ParaToolTraining
import Testing
import Wire

@Suite(.serialized) struct ToolNameTests {
    /// Before, a spec named `../../x` joined the catalogue and every request without a candidate
    /// list was refused (`invalid tool name '../../x'`): one message denied the whole catalogue.
    @Test func aBadSpecOnToolsIsRefusedAndTheCatalogueServes() throws {
        let harness = try ServiceHarness()
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        func spec(_ name: String, key: String?) throws -> OutgoingMessage {
            OutgoingMessage(topic: harness.topics.tools, key: key.map { Array($0.utf8) },
                            value: try WireToolSpec(ToolSpec(name: name, description: "Tool \(name)")).encode())
        }
        _ = try producer.sendAndWait([
            try spec("get_weather", key: "get_weather"),
            try spec("../../x", key: "../../x"),
            try spec("book_flight", key: "get_weather"),  // keyed as another tool: would replace it under compaction
            try spec("convert_currency", key: nil),  // no key: the name in the value counts
        ])
        producer.close()
        let metrics = ServiceMetrics()
        try harness.startWorker(id: "w1", catalogue: nil, metrics: metrics)
        let client = try harness.client()
        let result = try #require(try client.call(WireToolCallRequest(requestID: "all", query: "Weather in Rome?", maxNewTokens: 2, mode: .average),
                                                  timeout: .seconds(30)))
        #expect(result.action.status == .ok, "\(String(describing: result.action.error))")
        #expect(Set(result.action.weights.map(\.tool)) == ["get_weather", "convert_currency"])
        let exposition = metrics.exposition()
        #expect(exposition.contains(#"paratool_tool_specs_total{result="refused"} 2"#), "\(exposition)")
    }

    /// Feedback that corrects to a tool whose name the store refuses is refused before it is
    /// joined (its episode would train, and name a folder, for that tool).
    @Test func feedbackCorrectingToABadNameIsRefused() {
        var join = FeedbackJoin(window: 4)
        let candidate = Trajectory(id: "r", query: "q", candidateTools: ["get_weather"],
                                   steps: [Step(calls: [ToolCall(name: "get_weather", arguments: .object([:]))], observation: "")],
                                   outcome: .unknown, source: "served:w1")
        _ = join.add(candidate: candidate)
        let outcomes = join.add(feedback: WireFeedback(requestID: "r", outcome: .unsolved,
                                                       correctedCalls: [WireToolCall(name: "../../x", argumentsJSON: "{}")]))
        guard case .invalid(let reason)? = outcomes.first, outcomes.count == 1 else { Issue.record("not refused: \(outcomes)"); return }
        #expect(reason.contains("invalid tool name '../../x'"), "\(reason)")
    }
}
