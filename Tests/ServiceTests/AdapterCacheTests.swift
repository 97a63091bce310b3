// The worker's adapters within a byte budget: the least recently used go first, an adapter a
// running batch holds is never dropped, a dropped one is reloaded from the store when asked
// again, and /metrics shows hits, misses, evictions and bytes.
import Foundation
import ParaTool
import ParaToolService
import Testing

@Suite struct AdapterCacheTests {
    @Test func keepsTheMostRecentlyUsedWithinTheBudget() throws {
        let harness = try ServiceHarness()
        let config = ServiceFixtures.model.model.config
        // The three fixture adapters have one shape: the budget holds two. The store keeps them as
        // bfloat16, read in place: two bytes per value of A and B, no other copy.
        let one = try harness.store.load(tool: "get_weather", version: "v000001")
        let size = one.residentBytes
        #expect(one.format == .bfloat16)
        #expect(size == 2 * one.pairs.flatMap(\.values).reduce(0) { $0 + $1.a.rows * $1.a.cols + $1.b.rows * $1.b.cols })
        let metrics = ServiceMetrics()
        let registry = AdapterRegistry(store: harness.store, config: config, cacheBytes: 2 * size + size / 2, metrics: metrics)
        let (weather, flight, currency) = ("get_weather", "book_flight", "convert_currency")

        _ = try registry.adapter(for: weather)
        _ = try registry.adapter(for: flight)
        _ = try registry.adapter(for: weather)  // weather is now the more recently used
        _ = try registry.adapter(for: currency)
        #expect(registry.heldTools == [weather, currency], "the least recently used went")
        #expect(registry.heldBytes == 2 * size)

        // Dropped, it is read from the store again: the same version, the same weights.
        let again = try #require(try registry.adapter(for: flight))
        #expect(again.version == "v000001")
        let stored = try harness.store.load(tool: flight, version: "v000001")
        #expect(again.adapter.pairs[0][.up]?.a.toArray() == stored.pairs[0][.up]?.a.toArray())
        #expect(registry.heldTools == [currency, flight])

        // Adapters a running batch holds are not dropped (that would free nothing): over budget
        // until the batch lets go of them.
        let running = [try registry.adapter(for: currency), try registry.adapter(for: flight)]
        _ = try registry.adapter(for: weather)
        #expect(registry.heldTools == [weather, currency, flight])
        #expect(registry.heldBytes == 3 * size)
        withExtendedLifetime(running) {}

        let text = metrics.exposition()
        #expect(text.contains(#"paratool_adapter_cache_lookups_total{result="miss"} 5"#), "\(text)")
        #expect(text.contains(#"paratool_adapter_cache_lookups_total{result="hit"} 3"#))
        #expect(text.contains("paratool_adapter_cache_evictions_total 2"))
        #expect(text.contains("paratool_adapter_cache_bytes \(3 * size)"))
    }
}
