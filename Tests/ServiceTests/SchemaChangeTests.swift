// Tools that change on the `tools` topic: an adapter trained for a tool's earlier schema is never
// served (the request is refused as unavailable, or served with the documents under the document
// fallback), `/metrics` counts it, the trainer finds it; a tombstone removes the tool.
import Foundation
import Kafka
import LLM
import ParaTool
import ParaToolService
import Testing
import Wire

@Suite(.serialized) struct SchemaChangeTests {
    /// The fixture catalogue with `get_weather` now requiring a `city`.
    static let changedWeather = ToolSpec(name: "get_weather", description: "Current weather for a city",
                                         parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])

    /// Publishes the fixture adapters again, each recording the schema it was trained for.
    static func publishWithSchemas(_ harness: ServiceHarness) throws {
        for (i, spec) in ServiceFixtures.catalogue.tools.enumerated() {
            _ = try harness.store.publish(try ServiceFixtures.adapter(i), tool: spec.name, stage: "fixture", baseModel: "tiny-qwen2",
                                          schemaFingerprint: spec.schemaFingerprint)
        }
    }

    static func produce(_ messages: [OutgoingMessage], _ harness: ServiceHarness) throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: harness.kafka), name: "tools", logger: harness.logger)
        defer { producer.close() }
        _ = try producer.sendAndWait(messages)
    }

    @Test func aChangedSchemaIsNeverServedByTheOldAdapter() throws {
        let harness = try ServiceHarness()
        try Self.publishWithSchemas(harness)
        try Self.produce(try harness.topics.toolMessages(ServiceFixtures.catalogue), harness)
        let metrics = ServiceMetrics()
        try harness.startWorker(id: "w1", catalogue: nil, metrics: metrics)
        let client = try harness.client()

        let before = try #require(try client.call(WireToolCallRequest(requestID: "before", query: "Weather in Oslo?", candidateTools: ["get_weather"],
                                                                      maxNewTokens: 4), timeout: .seconds(60)))
        #expect(before.action.status == .ok)
        #expect(before.action.weights.first?.adapterVersion == "v000002", "the version recording the schema serves")

        // The tool's required parameter changes on `tools`; the worker takes it between batches.
        try Self.produce([OutgoingMessage(topic: harness.topics.tools, key: "get_weather", value: try WireToolSpec(Self.changedWeather).encode())], harness)
        var after: RequestResult?
        let deadline = ContinuousClock.now + .seconds(30)
        var n = 0
        while ContinuousClock.now < deadline {
            n += 1
            after = try client.call(WireToolCallRequest(requestID: "after-\(n)", query: "Weather in Oslo?", candidateTools: ["get_weather"],
                                                        maxNewTokens: 4), timeout: .seconds(30))
            if after?.action.status != .ok { break }
            #expect(after?.action.weights.first?.adapterVersion == "v000002", "until the worker reads the change, the old schema serves")
            Thread.sleep(forTimeInterval: 0.2)
        }
        let refused = try #require(after)
        #expect(refused.action.status == .unavailable)
        #expect(refused.action.error?.code == "adapter.stale")
        #expect(refused.action.error?.message.contains("get_weather") == true)
        #expect(metrics.exposition().contains("paratool_stale_adapters 1"))
        // The other tools still serve with their adapters.
        let other = try #require(try client.call(WireToolCallRequest(requestID: "other", query: "Book BOS to LAX", candidateTools: ["book_flight"],
                                                                     maxNewTokens: 4), timeout: .seconds(60)))
        #expect(other.action.status == .ok)
        #expect(other.action.weights.first?.adapterVersion == "v000002")

        // A tombstone removes a tool: it is no longer offered.
        try Self.produce([harness.topics.toolRemoval("convert_currency")], harness)
        var removed: RequestResult?
        for k in 0..<100 {
            removed = try client.call(WireToolCallRequest(requestID: "removed-\(k)", query: "100 USD in EUR", candidateTools: ["convert_currency"],
                                                          maxNewTokens: 4), timeout: .seconds(30))
            if removed?.action.status == .unknownTool { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(removed?.action.status == .unknownTool)
        #expect(metrics.exposition().contains("result=\"removed\""))
    }

    @Test func theStoreKnowsWhichAdaptersAreStale() throws {
        let harness = try ServiceHarness()
        try Self.publishWithSchemas(harness)
        let weather = try #require(try harness.store.latest(tool: "get_weather"))
        #expect(weather.schemaFingerprint == ServiceFixtures.catalogue["get_weather"]!.schemaFingerprint)
        #expect(!weather.isStale(for: ServiceFixtures.catalogue["get_weather"]!))
        #expect(weather.isStale(for: Self.changedWeather))
        // A description change is not a schema change; a version that recorded none is never stale.
        #expect(!weather.isStale(for: ToolSpec(name: "get_weather", description: "Weather now, anywhere")))
        let legacy = try #require(try harness.store.versions(tool: "get_weather").first)
        #expect(legacy.schemaFingerprint == nil && !legacy.isStale(for: Self.changedWeather))
        // The fingerprint is independent of key order, and changes with the name or the parameters.
        let reordered = ToolSpec(name: "get_weather", description: "", parameters: JSONValue.object(JSONObject([
            ("required", ["city"]), ("properties", ["city": ["type": "string"]]), ("type", "object")])))
        #expect(reordered.schemaFingerprint == Self.changedWeather.schemaFingerprint)
        #expect(ToolSpec(name: "get_weather2", description: "", parameters: Self.changedWeather.parameters).schemaFingerprint
            != Self.changedWeather.schemaFingerprint)
    }
}
