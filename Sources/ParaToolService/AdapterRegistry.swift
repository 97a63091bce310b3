// AdapterRegistry: the adapters a worker serves, swappable while requests run. Reads the store
// lazily (each tool's latest verified version) and applies AdapterUpdates from the `adapters`
// topic after checking them against the store (servable: not held for review unless promoted;
// sha256); a refused update leaves the old version.
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
    private let table = Mutex<[String: (adapter: ToolAdapter, version: String)]>([:])
    /// The schema fingerprint each serving version recorded (nil: none recorded).
    private let schemas = Mutex<[String: String?]>([:])
    /// Tools known to have no adapter in the store (so the store is not listed per request).
    private let missing = Mutex<Set<String>>([])

    public init(store: AdapterStore?, config: ModelConfig, logger: Logger = Logger(label: "paratool.adapters")) {
        self.store = store
        self.config = config
        self.logger = logger
    }

    /// The serving adapter of `tool`; on first use, the store's latest verified version.
    public func adapter(for tool: String) throws -> (adapter: ToolAdapter, version: String)? {
        if let hit = table.withLock({ $0[tool] }) { return hit }
        guard let store, !missing.withLock({ $0.contains(tool) }) else { return nil }
        guard let latest = try store.latest(tool: tool) else {
            missing.withLock { _ = $0.insert(tool) }
            return nil
        }
        let adapter = try store.load(tool: tool, version: latest.version, expectedSHA256: latest.sha256, config: config)
        warnIfOtherWording(latest)
        return table.withLock { t in
            // Another thread may have installed a newer version meanwhile: keep the newer one.
            if let existing = t[tool], Self.number(existing.version) >= latest.number { return existing }
            t[tool] = (adapter, latest.version)
            schemas.withLock { $0[tool] = latest.schemaFingerprint }
            return (adapter, latest.version)
        }
    }

    /// The schema fingerprint of the version of `tool` that serves (or would serve: the store's
    /// latest servable, read from its manifest without loading the weights).
    public func schemaFingerprint(of tool: String) throws -> String? {
        if let known = schemas.withLock({ $0[tool] }) { return known }
        guard let store, !missing.withLock({ $0.contains(tool) }) else { return nil }
        return try store.latest(tool: tool)?.schemaFingerprint
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
            current = try table.withLock({ $0[update.tool]?.version }) ?? store.latest(tool: update.tool)?.version
        } catch {
            throw AdapterUpdateRefusal.store("\(error)")
        }
        if let current, Self.number(current) > Self.number(update.version)
            || (Self.number(current) == Self.number(update.version) && table.withLock({ $0[update.tool] != nil })) {
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
        table.withLock { t in
            t[update.tool] = (adapter, update.version)
            schemas.withLock { $0[update.tool] = manifest.schemaFingerprint }
        }
        missing.withLock { _ = $0.remove(update.tool) }
        logger.info("adapter swapped", metadata: ["tool": "\(update.tool)", "version": "\(update.version)", "stage": "\(update.stage)"])
    }

    /// The version serving for each tool loaded so far.
    public var versions: [String: String] { table.withLock { $0.mapValues(\.version) } }

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
