// The limits on what the `tools` topic may put in a worker's catalogue (ToolTopicLimits): a spec
// larger than --max-spec-bytes and a new tool beyond --max-tools are refused, logged and counted,
// while specs of tools already held still update them and the catalogue keeps serving; the
// trainer's reader of the topic holds the same limits.
import Foundation
import Kafka
import ParaTool
import ParaToolService
import Testing
import Wire

@Suite(.serialized) struct ToolTopicLimitTests {
    @Test func oversizedSpecsAndToolsBeyondTheLimitAreRefused() throws {
        let harness = try ServiceHarness()
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        defer { producer.close() }
        let huge = ToolSpec(name: "huge", description: String(repeating: "Describes at length. ", count: 200))
        let hugeBytes = try WireToolSpec(huge).encode()
        #expect(hugeBytes.count > 2048)
        let reworded = ToolSpec(name: "get_weather", description: "Weather now and tomorrow for a city")
        _ = try producer.sendAndWait(try harness.topics.toolMessages(ToolCatalogue([ServiceFixtures.catalogue.tools[0]]))
            + [OutgoingMessage(topic: harness.topics.tools, key: "huge", value: hugeBytes)]
            + harness.topics.toolMessages(ToolCatalogue(Array(ServiceFixtures.catalogue.tools[1...])))
            + harness.topics.toolMessages(ToolCatalogue([reworded])))
        let metrics = ServiceMetrics()
        try harness.startWorker(id: "w1", catalogue: nil, metrics: metrics) {
            $0.toolLimits = ToolTopicLimits(maxTools: 2, maxSpecBytes: 2048)
        }
        let client = try harness.client()
        let result = try #require(try client.call(WireToolCallRequest(requestID: "all", query: "Weather in Rome?", maxNewTokens: 2, mode: .average),
                                                  timeout: .seconds(30)))
        #expect(result.action.status == .ok, "\(String(describing: result.action.error))")
        #expect(result.action.weights.map(\.tool) == ["get_weather", "book_flight"], "the first two tools serve; convert_currency is one too many")
        let exposition = metrics.exposition()
        #expect(exposition.contains(#"paratool_tool_specs_total{result="too_large"} 1"#), "\(exposition)")
        #expect(exposition.contains(#"paratool_tool_specs_total{result="too_many"} 1"#), "\(exposition)")
        #expect(exposition.contains(#"paratool_tool_specs_total{result="accepted"} 3"#), "the reworded get_weather updates a tool held")
    }

    /// Every enum value and anyOf/oneOf alternative of a schema is compiled into the call grammar
    /// of each request naming the tool, and the recognizer tries the alternatives at every value
    /// start: a spec within --max-spec-bytes may still hold thousands. Over the schema limits
    /// (alternatives, literal bytes) it is refused where it enters and counted as `too_complex`.
    @Test func specsWithTooManyAlternativesAreRefused() throws {
        let harness = try ServiceHarness()
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        defer { producer.close() }
        // 3000 enum values in 14 KB; 200 anyOf alternatives whose string constants hold 40 KB.
        let manyValues = ToolSpec(name: "many_values", description: "Picks a code",
                                  parameters: try JSONValue.parse(#"{"type":"object","properties":{"code":{"enum":["#
                                      + (0..<3000).map(String.init).joined(separator: ",") + "]}}}"))
        let longLiterals = ToolSpec(name: "long_literals", description: "Picks a phrase",
                                    parameters: try JSONValue.parse(#"{"type":"object","properties":{"phrase":{"anyOf":["#
                                        + (0..<200).map { #"{"const":""# + String(repeating: "x", count: 200) + "\($0)" + #""}"# }.joined(separator: ",")
                                        + "]}}}"))
        for spec in [manyValues, longLiterals] { #expect(try WireToolSpec(spec).encode().count < ToolTopicLimits.default.maxSpecBytes) }
        _ = try producer.sendAndWait(try harness.topics.toolMessages(ToolCatalogue([manyValues, longLiterals] + ServiceFixtures.catalogue.tools)))
        let metrics = ServiceMetrics()
        try harness.startWorker(id: "w1", catalogue: nil, metrics: metrics)
        let client = try harness.client()
        let result = try #require(try client.call(WireToolCallRequest(requestID: "all", query: "Weather in Rome?", maxNewTokens: 2, mode: .average),
                                                  timeout: .seconds(30)))
        #expect(result.action.status == .ok, "\(String(describing: result.action.error))")
        #expect(result.action.weights.map(\.tool) == ServiceFixtures.catalogue.names, "the other tools serve")
        let exposition = metrics.exposition()
        #expect(exposition.contains(#"paratool_tool_specs_total{result="too_complex"} 2"#), "\(exposition)")
        #expect(exposition.contains(#"paratool_tool_specs_total{result="accepted"} 3"#), "\(exposition)")
    }

    /// The trainer's reader of `tools` holds the same limits, from its settings.
    @Test func theTrainerRefusesOversizedSpecsToo() throws {
        let harness = try ServiceHarness()
        let work = harness.storeRoot.deletingLastPathComponent().appendingPathComponent("trainer-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), logger: harness.logger)
        defer { producer.close() }
        let huge = ToolSpec(name: "huge", description: String(repeating: "Describes at length. ", count: 200))
        _ = try producer.sendAndWait(try harness.topics.toolMessages(ToolCatalogue([huge] + ServiceFixtures.catalogue.tools)))
        var settings = TrainerSettings(dataset: work.appendingPathComponent("dataset"), store: harness.storeRoot, tools: nil)
        settings.topics = harness.topics
        settings.model = ServiceFixtures.hfTiny.appendingPathComponent("qwen2").path
        settings.toolLimits = ToolTopicLimits(maxTools: 2, maxSpecBytes: 2048)
        let metrics = ServiceMetrics()
        let stack = try TrainerStack(settings: settings, kafka: harness.kafka, metrics: metrics, logger: harness.logger)
        let services = RunningServices(stack.services, logger: harness.logger)
        let listener = try #require(stack.toolsTopic)
        try waitFor { try await listener.caughtUp() }
        try waitFor { try await services.shutdown() }
        let exposition = metrics.exposition()
        #expect(exposition.contains(#"paratool_tool_specs_total{result="too_large"} 1"#), "\(exposition)")
        #expect(exposition.contains(#"paratool_tool_specs_total{result="too_many"} 1"#), "\(exposition)")
        #expect(exposition.contains(#"paratool_tool_specs_total{result="accepted"} 2"#), "\(exposition)")
    }

    @Test func theDefaultsAreTenThousandToolsOfSixtyFourKiB() {
        #expect(ToolTopicLimits.default == ToolTopicLimits(maxTools: 10_000, maxSpecBytes: 65_536))
        #expect(WorkerSettings(workerID: "w", modelID: "m").toolLimits == .default)
        #expect(TrainerSettings(dataset: URL(fileURLWithPath: "/d"), store: URL(fileURLWithPath: "/s"), tools: nil).toolLimits == .default)
    }
}
