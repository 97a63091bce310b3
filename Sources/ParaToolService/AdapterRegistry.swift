// AdapterRegistry: the adapters a worker serves, swappable while requests run. Reads the store
// lazily (each tool's latest verified version) and applies AdapterUpdates from the `adapters`
// topic after checking them against the store (servable: not held for review unless promoted;
// sha256); a refused update leaves the old version. The adapters held are a cache within a byte
// budget: past it the least recently used go, except those a running batch holds.
import Foundation
import LLM
import Logging
import ParaTool
import Synchronization
import Wire

/// Why an AdapterUpdate was not applied.
public enum AdapterUpdateRefusal: Error, CustomStringConvertible, Equatable {
    /// The update names a version older than (or equal to) the one serving.
    case notNewer(tool: String, version: String, current: String)
    /// The store refused it (missing, hash mismatch, unreadable, invalid tool name).
    case store(String)
    /// The version was published held for review and no review promoted it (pending or rejected).
    case notPromoted(tool: String, version: String, review: String)

    public var description: String {
        switch self {
        case .notNewer(let t, let v, let c): return "\(t) \(v) is not newer than the serving \(c)"
        case .store(let m): return m
        case .notPromoted(let t, let v, let r): return "\(t) \(v) is held for review and not promoted (\(r))"
        }
    }
}

/// Thread-safe adapter table: the engine reads it per request, the control thread writes it.
/// A swap replaces the table entry only; requests already planned keep the adapter they hold.
public final class AdapterRegistry: AdapterProvider, @unchecked Sendable {
    public let store: AdapterStore?
    private let config: ModelConfig
    private let logger: Logger
    /// Most bytes the adapters held may take (nil: no bound).
    public let cacheBytes: Int?
    private let metrics: ServiceMetrics?
    /// One adapter held: its version, resident bytes and when it was last used.
    private struct Entry {
        var adapter: ToolAdapter
        var version: String
        var bytes: Int
        var lastUse: UInt64
    }
    private let table = Mutex<(entries: [String: Entry], tick: UInt64, bytes: Int)>(([:], 0, 0))
    /// The schema fingerprint each held version recorded, and the store's latest for tools asked about but not held (nil: none recorded).
    private let schemas = Mutex<[String: String?]>([:])
    /// Tools known to have no adapter in the store (so the store is not listed per request).
    private let missing = Mutex<Set<String>>([])

    /// A registry over `store`; `cacheBytes` bounds the adapters held (nil: no bound), `metrics`
    /// receives the cache's hits, misses, evictions, bytes and load time.
    public init(store: AdapterStore?, config: ModelConfig, cacheBytes: Int? = nil, metrics: ServiceMetrics? = nil,
                logger: Logger = Logger(label: "paratool.adapters")) {
        self.store = store
        self.config = config
        self.cacheBytes = cacheBytes.map { max(0, $0) }
        self.metrics = metrics
        self.logger = logger
    }

    /// The serving adapter of `tool`: the one held, else the store's latest verified version,
    /// loaded now (and held while the budget allows).
    public func adapter(for tool: String) throws -> (adapter: ToolAdapter, version: String)? {
        let hit = table.withLock { t -> (adapter: ToolAdapter, version: String)? in
            guard var entry = t.entries[tool] else { return nil }
            t.tick += 1
            entry.lastUse = t.tick
            t.entries[tool] = entry
            return (entry.adapter, entry.version)
        }
        if let hit {
            metrics?.counter("adapter_cache_lookups", labels: [("result", "hit")], help: "Adapter lookups by whether the adapter was held.").increment()
            return hit
        }
        guard let store, !missing.withLock({ $0.contains(tool) }) else { return nil }
        guard let latest = try store.latest(tool: tool) else {
            missing.withLock { _ = $0.insert(tool) }
            return nil
        }
        let started = ContinuousClock.now
        let adapter = try store.load(tool: tool, version: latest.version, expectedSHA256: latest.sha256, config: config)
        let elapsed = (ContinuousClock.now - started).components
        metrics?.counter("adapter_cache_lookups", labels: [("result", "miss")], help: "Adapter lookups by whether the adapter was held.").increment()
        metrics?.gauge("adapter_load_seconds_last", labels: [], help: "Seconds the last adapter load from the store took.")
            .set(to: Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18)
        warnIfOtherWording(latest)
        return hold(adapter, tool: tool, version: latest.version, schema: latest.schemaFingerprint, keepNewer: true)
    }

    /// Holds `adapter` as `tool`'s serving version (with `keepNewer`, a newer one already held
    /// stays and is returned instead), then evicts least recently used adapters until the held
    /// bytes fit the budget: never `tool`'s, and never one a running batch still holds (it would
    /// free nothing).
    private func hold(_ adapter: ToolAdapter, tool: String, version: String, schema: String?, keepNewer: Bool)
        -> (adapter: ToolAdapter, version: String) {
        var evicted: [String] = []
        let (result, bytes) = table.withLock { t -> ((adapter: ToolAdapter, version: String), Int) in
            t.tick += 1
            if keepNewer, var existing = t.entries[tool], Self.number(existing.version) >= Self.number(version) {
                existing.lastUse = t.tick
                t.entries[tool] = existing
                return ((existing.adapter, existing.version), t.bytes)
            }
            let size = adapter.residentBytes
            t.bytes += size - (t.entries[tool]?.bytes ?? 0)
            t.entries[tool] = Entry(adapter: adapter, version: version, bytes: size, lastUse: t.tick)
            schemas.withLock { $0[tool] = schema }
            if let budget = cacheBytes, t.bytes > budget {
                for name in t.entries.sorted(by: { $0.value.lastUse < $1.value.lastUse }).map(\.key) where name != tool {
                    guard t.bytes > budget else { break }
                    // Held elsewhere too (a running batch's mixture, a stacked set): evicting frees nothing.
                    guard isKnownUniquelyReferenced(&t.entries[name]!.adapter) else { continue }
                    t.bytes -= t.entries.removeValue(forKey: name)!.bytes
                    schemas.withLock { _ = $0.removeValue(forKey: name) }
                    evicted.append(name)
                }
            }
            return ((adapter, version), t.bytes)
        }
        metrics?.gauge("adapter_cache_bytes", labels: [], help: "Bytes of the adapters a worker holds.").set(to: Double(bytes))
        if !evicted.isEmpty {
            metrics?.counter("adapter_cache_evictions", labels: [], help: "Adapters dropped to keep within --adapter-cache-mb.")
                .increment(by: Int64(evicted.count))
            logger.debug("adapters evicted", metadata: ["tools": "\(evicted.joined(separator: ","))", "held_bytes": "\(bytes)"])
        }
        return result
    }

    /// Bytes of the adapters held now.
    public var heldBytes: Int { table.withLock { $0.bytes } }

    /// The tools whose adapters are held now.
    public var heldTools: Set<String> { table.withLock { Set($0.entries.keys) } }

    /// The schema fingerprint of the version of `tool` that serves (or would serve: the store's
    /// latest servable, read once from its manifest without loading the weights).
    public func schemaFingerprint(of tool: String) throws -> String? {
        if let known = schemas.withLock({ $0[tool] }) { return known }
        guard let store, !missing.withLock({ $0.contains(tool) }) else { return nil }
        guard let latest = try store.latest(tool: tool) else {
            missing.withLock { _ = $0.insert(tool) }
            return nil
        }
        // Remembered like a held adapter's, so a request does not read the manifest again: a
        // version loaded or swapped in later replaces it.
        schemas.withLock { $0[tool] = latest.schemaFingerprint }
        return latest.schemaFingerprint
    }

    /// Applies an update: checks that the store may serve the version (not held for review
    /// unless a review promoted it), loads it, verifies it against the update's sha256 and the
    /// manifest, and swaps it in. Throws (and keeps serving the old version) when the update is
    /// older than what serves — or, for a tool not loaded yet, than the store's servable latest —
    /// or the store refuses it.
    public func apply(_ update: WireAdapterUpdate) throws {
        guard let store else { throw AdapterUpdateRefusal.store("this worker has no adapter store") }
        let manifest: AdapterVersion
        let current: String?
        do {
            try AdapterStore.validate(tool: update.tool)
            manifest = try store.manifest(tool: update.tool, version: update.version)
            current = try table.withLock({ $0.entries[update.tool]?.version }) ?? store.latest(tool: update.tool)?.version
        } catch {
            throw AdapterUpdateRefusal.store("\(error)")
        }
        if let current, Self.number(current) > Self.number(update.version)
            || (Self.number(current) == Self.number(update.version) && table.withLock({ $0.entries[update.tool] != nil })) {
            throw AdapterUpdateRefusal.notNewer(tool: update.tool, version: update.version, current: current)
        }
        do {
            if try !store.isServable(manifest) {
                let review = try store.review(tool: update.tool, version: update.version)
                throw AdapterUpdateRefusal.notPromoted(tool: update.tool, version: update.version,
                                                       review: review.map { "\($0.decision.rawValue): \($0.reason)" } ?? "no review yet")
            }
        } catch let refusal as AdapterUpdateRefusal {
            throw refusal
        } catch {
            throw AdapterUpdateRefusal.store("\(error)")
        }
        let adapter: ToolAdapter
        do {
            adapter = try store.load(tool: update.tool, version: update.version, expectedSHA256: update.sha256, config: config)
        } catch {
            throw AdapterUpdateRefusal.store("\(error)")
        }
        warnIfOtherWording(manifest)
        _ = hold(adapter, tool: update.tool, version: update.version, schema: manifest.schemaFingerprint, keepNewer: false)
        missing.withLock { _ = $0.remove(update.tool) }
        logger.info("adapter swapped", metadata: ["tool": "\(update.tool)", "version": "\(update.version)", "stage": "\(update.stage)"])
    }

    /// The version serving for each tool loaded so far.
    public var versions: [String: String] { table.withLock { $0.entries.mapValues(\.version) } }

    private static func number(_ version: String) -> Int { Int(version.dropFirst()) ?? -1 }

    /// Adapters learn the prompt they were trained on; one made with other wording still serves
    /// (it may be all there is) but answers worse, so say so.
    private func warnIfOtherWording(_ version: AdapterVersion) {
        guard !version.matchesPromptWording else { return }
        logger.warning("adapter was trained on other prompt wording; retrain it for full accuracy",
                       metadata: ["tool": "\(version.tool)", "version": "\(version.version)",
                                  "trained": "\(version.promptWording ?? "unrecorded")", "serving": "\(PromptWording.fingerprint)"])
    }
}
