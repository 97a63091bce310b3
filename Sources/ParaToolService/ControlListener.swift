// ControlListener: follows the compacted control topics every worker reads in full (no consumer
// group): `adapters` (AdapterUpdate → hot swap in the AdapterRegistry) and `tools` (ToolSpec →
// the catalogue the worker picks up between batches; the trainer follows `tools` alone). A spec
// whose name the store refuses, or whose message key names another tool, is refused and counted;
// so are a spec larger than its limit, a spec whose schema holds more alternatives or literal
// bytes than the call grammar may take, and a new tool beyond the catalogue's (ToolTopicLimits). A
// tombstone (the tool's key with no value) removes the tool.
import Foundation
import Kafka
import Logging
import ParaTool
import ServiceLifecycle
import Synchronization
import Wire

/// How much one reader of the `tools` topic keeps: every spec is held in memory and compiled into
/// call grammars, so a producer flooding the topic must not grow them without bound.
public struct ToolTopicLimits: Sendable, Equatable {
    /// Most tools in the catalogue; a spec naming a new tool beyond it is refused (counted as
    /// `too_many`), while specs of tools already held still update them.
    public var maxTools: Int
    /// Most bytes of one ToolSpec message; a larger one is refused before it is decoded
    /// (counted as `too_large`).
    public var maxSpecBytes: Int
    /// Most alternatives one spec's schema may hold (enum and const values, anyOf/oneOf members,
    /// type-list names: `SchemaAlternatives`); each is compiled into the call grammar of every
    /// request naming the tool and tried at value starts. More is refused (`too_complex`).
    public var maxAlternatives: Int
    /// Most bytes of one spec's enum and const values; more is refused (`too_complex`).
    public var maxLiteralBytes: Int

    public static let `default` = ToolTopicLimits()

    public init(maxTools: Int = 10_000, maxSpecBytes: Int = 64 << 10, maxAlternatives: Int = 1024, maxLiteralBytes: Int = 16 << 10) {
        self.maxTools = maxTools
        self.maxSpecBytes = maxSpecBytes
        self.maxAlternatives = maxAlternatives
        self.maxLiteralBytes = maxLiteralBytes
    }

    /// Why `spec`'s schema is over the limits on alternatives and literal bytes (nil: within them).
    public func complexityRefusal(_ spec: ToolSpec) -> String? {
        let alternatives = SchemaAlternatives(schema: spec.parameters)
        if alternatives.count > maxAlternatives {
            return "its schema holds \(alternatives.count) alternatives (enum values, anyOf/oneOf members), more than --max-schema-alternatives \(maxAlternatives)"
        }
        if alternatives.literalBytes > maxLiteralBytes {
            return "its schema's enum and const values hold \(alternatives.literalBytes) bytes, more than --max-schema-literal-bytes \(maxLiteralBytes)"
        }
        return nil
    }
}

/// A gate announced on `adapters`, verified and loaded, for the worker to take over.
struct AnnouncedGate: @unchecked Sendable {
    // GateNetwork is a class: the listener hands it over once and keeps no reference.
    let gate: GateNetwork
    let version: String
}

/// Reads `adapters` and `tools` from the beginning, catches up (so a worker starts with the
/// latest adapters and catalogue: `caughtUp()`), then follows them until the service group shuts
/// down. A `Service`: run it in the same group as the worker or trainer that reads it.
public final class ControlListener: Service, Sendable {
    private let consumer: KafkaConsumer
    private let topics: TopicNames
    private let registry: AdapterRegistry?
    private let followTools: Bool
    private let followAdapters: Bool
    private let catchUpTimeout: Duration
    /// The serving model's hidden size: announced gates of another dimension are refused.
    private let gateDimension: Int?
    private let toolLimits: ToolTopicLimits
    private let metrics: ServiceMetrics
    private let logger: Logger
    private let specs = Mutex<(table: [String: ToolSpec], order: [String], changed: Bool)>(([:], [], false))
    private let gates = Mutex<(pending: AnnouncedGate?, version: String?)>((nil, nil))
    private let readiness = Readiness()

    /// A listener; with `followAdapters` false it reads only `tools` (no adapter or gate updates).
    /// `gateDimension` is the serving model's hidden size, which an announced gate must have;
    /// `toolLimits` bound the catalogue read from `tools`.
    public init(kafka: KafkaConfiguration, topics: TopicNames, registry: AdapterRegistry?, followTools: Bool,
                followAdapters: Bool = true, catchUpTimeout: Duration = .seconds(30), gateDimension: Int? = nil,
                toolLimits: ToolTopicLimits = .default, metrics: ServiceMetrics, logger: Logger) throws {
        self.topics = topics
        self.toolLimits = toolLimits
        self.gateDimension = gateDimension
        self.registry = registry
        self.followTools = followTools
        self.followAdapters = followAdapters
        self.catchUpTimeout = catchUpTimeout
        self.metrics = metrics
        self.logger = logger
        // Control updates are rare and not latency-critical: long fetch waits keep this reader idle.
        consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: kafka, groupID: nil, fetchMaxWait: .milliseconds(500)),
                                     name: "control", logger: logger)
    }

    /// Returns once both topics were read to the ends they had at the start; throws when that
    /// failed (the listener's `run` throws the same).
    public func caughtUp() async throws { try await readiness.wait() }

    /// Catches up, then follows the topics on a thread of its own until graceful shutdown.
    public func run() async throws {
        try await ServiceThread(name: "paratool-control").run { [self] in
            defer { consumer.close() }
            do {
                try catchUp()
                readiness.markReady()
            } catch {
                readiness.fail(error)
                throw error
            }
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                do {
                    if let m = try consumer.poll(timeout: .milliseconds(200)) { handle(m) }
                } catch {
                    logger.error("control topics: \(error)")
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    private func catchUp() throws {
        let ends = try consumer.endOffsets(topics: followAdapters ? [topics.adapters, topics.tools] : [topics.tools])
        try consumer.assign(ends.map { TopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: LogicalOffset.beginning) })
        var remaining = Dictionary(uniqueKeysWithValues: ends.filter { $0.offset > 0 }
            .map { (TopicPartition(topic: $0.topic, partition: $0.partition), $0.offset) })
        let deadline = ContinuousClock.now + catchUpTimeout
        while !remaining.isEmpty {
            guard ContinuousClock.now < deadline else {
                throw KafkaError(code: KafkaError.Code.timedOut,
                                 message: "control topics not read to their end within \(catchUpTimeout): \(remaining.keys.map(\.description))")
            }
            guard let m = try consumer.poll(timeout: .milliseconds(200)) else { continue }
            handle(m)
            let tp = TopicPartition(topic: m.topic, partition: m.partition)
            if let end = remaining[tp], m.offset + 1 >= end { remaining[tp] = nil }
        }
        logger.info("control topics read", metadata: ["adapters": "\(registry?.versions.count ?? 0) swapped", "tools": "\(specs.withLock { $0.table.count })"])
    }

    /// The catalogue from the `tools` topic if it changed since the last call (nil otherwise).
    func takeCatalogue() -> ToolCatalogue? {
        guard followTools, specs.withLock({ s in defer { s.changed = false }; return s.changed }) else { return nil }
        return catalogue()
    }

    /// The catalogue read from the `tools` topic so far, in order of first appearance.
    func catalogue() -> ToolCatalogue {
        specs.withLock { s in ToolCatalogue(s.order.compactMap { s.table[$0] }) }
    }

    /// A gate announced and verified since the last call (nil otherwise).
    func takeGate() -> AnnouncedGate? {
        gates.withLock { g in
            defer { g.pending = nil }
            return g.pending
        }
    }

    private func handle(_ m: KafkaMessage) {
        if m.topic == topics.adapters {
            do {
                let update = try WireAdapterUpdate(bytes: m.value)
                if update.tool == GateDistribution.toolKey {
                    applyGate(update)
                    return
                }
                guard let registry else { return }
                do {
                    try registry.apply(update)
                    metrics.adapterUpdate(result: "applied")
                } catch let refusal as AdapterUpdateRefusal {
                    if case .notNewer = refusal {
                        metrics.adapterUpdate(result: "stale")
                        logger.debug("adapter update skipped: \(refusal)")
                    } else {
                        metrics.adapterUpdate(result: "refused")
                        logger.error("adapter update refused, the previous version keeps serving: \(refusal)",
                                     metadata: ["tool": "\(update.tool)", "version": "\(update.version)"])
                    }
                }
            } catch {
                metrics.adapterUpdate(result: "refused")
                logger.error("undecodable AdapterUpdate at \(m.topic)[\(m.partition)]@\(m.offset): \(error)")
            }
        } else if m.topic == topics.tools, followTools {
            // A tombstone (a key and no value, as compaction keeps until it deletes the key)
            // removes the tool: it is no longer offered or served.
            if m.value.isEmpty, let key = m.key, !key.isEmpty {
                let name = String(decoding: key, as: UTF8.self)
                let removed = specs.withLock { s in
                    guard s.table.removeValue(forKey: name) != nil else { return false }
                    s.order.removeAll { $0 == name }
                    s.changed = true
                    return true
                }
                metrics.toolSpec(result: removed ? "removed" : "tombstone_unknown")
                logger.notice(removed ? "tool removed from the catalogue" : "tombstone for a tool not in the catalogue", metadata: ["tool": "\(name)"])
                return
            }
            guard m.value.count <= toolLimits.maxSpecBytes else {
                metrics.toolSpec(result: "too_large")
                logger.error("ToolSpec refused at \(m.topic)[\(m.partition)]@\(m.offset), the rest of the catalogue serves: \(m.value.count) bytes, more than --max-spec-bytes \(toolLimits.maxSpecBytes)")
                return
            }
            do {
                let spec = try ToolSpec(wire: WireToolSpec(bytes: m.value))
                // Compaction keeps the last message per key: a key naming another tool would
                // replace that tool's spec there while this listener kept both.
                if let key = m.key, !key.isEmpty, key != Array(spec.name.utf8) {
                    throw ConversionError(field: "key", reason: "the message key '\(String(decoding: key, as: UTF8.self))' is not the spec's name '\(spec.name)'")
                }
                if let reason = toolLimits.complexityRefusal(spec) {
                    metrics.toolSpec(result: "too_complex")
                    logger.error("ToolSpec refused at \(m.topic)[\(m.partition)]@\(m.offset), the rest of the catalogue serves: \(reason)",
                                 metadata: ["tool": "\(spec.name)"])
                    return
                }
                let added = specs.withLock { s in
                    guard s.table[spec.name] != nil || s.table.count < toolLimits.maxTools else { return false }
                    if s.table.updateValue(spec, forKey: spec.name) == nil { s.order.append(spec.name) }
                    s.changed = true
                    return true
                }
                guard added else {
                    metrics.toolSpec(result: "too_many")
                    logger.error("ToolSpec of a new tool refused at \(m.topic)[\(m.partition)]@\(m.offset): the catalogue holds --max-tools \(toolLimits.maxTools) tools already",
                                 metadata: ["tool": "\(spec.name)"])
                    return
                }
                metrics.toolSpec(result: "accepted")
            } catch {
                metrics.toolSpec(result: "refused")
                logger.error("ToolSpec refused at \(m.topic)[\(m.partition)]@\(m.offset), the rest of the catalogue serves: \(error)")
            }
        }
    }

    /// Verifies and loads an announced gate for the worker to pick up; older versions are skipped.
    private func applyGate(_ update: WireAdapterUpdate) {
        if let current = gates.withLock({ $0.version }), current >= update.version {
            metrics.adapterUpdate(result: "stale")
            return
        }
        do {
            let gate = try GateDistribution.load(update, dimension: gateDimension)
            gates.withLock { $0 = (AnnouncedGate(gate: gate, version: update.version), update.version) }
            metrics.adapterUpdate(result: "applied")
            logger.info("gate announced", metadata: ["version": "\(update.version)"])
        } catch {
            metrics.adapterUpdate(result: "refused")
            logger.error("gate update refused, the previous gate keeps serving: \(error)", metadata: ["version": "\(update.version)"])
        }
    }
}
