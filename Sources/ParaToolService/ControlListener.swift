// ControlListener: follows the compacted control topics every worker reads in full (no consumer
// group): `adapters` (AdapterUpdate → hot swap in the AdapterRegistry) and `tools` (ToolSpec →
// the catalogue the worker picks up between batches; the trainer follows `tools` alone).
import Foundation
import Kafka
import Logging
import ParaTool
import Synchronization
import Wire

/// Reads `adapters` and `tools` from the beginning, catches up before serving, then follows them
/// on a background thread.
final class ControlListener: @unchecked Sendable {
    private let consumer: KafkaConsumer
    private let topics: TopicNames
    private let registry: AdapterRegistry?
    private let followTools: Bool
    private let followAdapters: Bool
    private let metrics: ServiceMetrics
    private let logger: Logger
    private let specs = Mutex<[String: ToolSpec]>([:])
    private let order = Mutex<[String]>([])
    private let catalogueChanged = Mutex(false)
    // GateNetwork is a class the worker thread takes over; guarded by `gateLock`.
    private var pendingGate: (gate: GateNetwork, version: String)?
    private let gateLock = NSLock()
    private let gateVersion = Mutex<String?>(nil)
    private let stopped = Mutex(false)
    private let finished = DispatchSemaphore(value: 0)
    private var thread: Thread?

    /// A listener; with `followAdapters` false it reads only `tools` (no adapter or gate updates).
    init(kafka: KafkaConfiguration, topics: TopicNames, registry: AdapterRegistry?, followTools: Bool,
         followAdapters: Bool = true, metrics: ServiceMetrics, logger: Logger) throws {
        self.topics = topics
        self.registry = registry
        self.followTools = followTools
        self.followAdapters = followAdapters
        self.metrics = metrics
        self.logger = logger
        // Control updates are rare and not latency-critical: long fetch waits keep this reader idle.
        consumer = try KafkaConsumer(configuration: kafka.merging(["fetch.wait.max.ms": "500"]), groupID: nil,
                                     name: "control", logger: logger)
    }

    /// Reads both topics up to their current ends (so the worker starts with the latest adapters
    /// and catalogue), then keeps following them in the background.
    func catchUp(timeout: Duration) throws {
        let ends = try consumer.endOffsets(topics: followAdapters ? [topics.adapters, topics.tools] : [topics.tools])
        try consumer.assign(ends.map { TopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: -2) })  // beginning
        var remaining = Dictionary(uniqueKeysWithValues: ends.filter { $0.offset > 0 }
            .map { (TopicPartition(topic: $0.topic, partition: $0.partition), $0.offset) })
        let deadline = ContinuousClock.now + timeout
        while !remaining.isEmpty {
            guard ContinuousClock.now < deadline else {
                throw KafkaError(code: -185, message: "control topics not read to their end within \(timeout): \(remaining.keys.map(\.description))")
            }
            guard let m = try consumer.poll(timeout: .milliseconds(200)) else { continue }
            handle(m)
            let tp = TopicPartition(topic: m.topic, partition: m.partition)
            if let end = remaining[tp], m.offset + 1 >= end { remaining[tp] = nil }
        }
        logger.info("control topics read", metadata: ["adapters": "\(registry?.versions.count ?? 0) swapped", "tools": "\(specs.withLock { $0.count })"])
        let thread = Thread { [self] in
            while !stopped.withLock({ $0 }) {
                do {
                    if let m = try consumer.poll(timeout: .milliseconds(200)) { handle(m) }
                } catch {
                    logger.error("control topics: \(error)")
                    Thread.sleep(forTimeInterval: 1)
                }
            }
            finished.signal()
        }
        thread.name = "paratool-control"
        self.thread = thread
        thread.start()
    }

    /// The catalogue from the `tools` topic if it changed since the last call (nil otherwise).
    func takeCatalogue() -> ToolCatalogue? {
        guard followTools, catalogueChanged.withLock({ let c = $0; $0 = false; return c }) else { return nil }
        return catalogue()
    }

    /// The catalogue read from the `tools` topic so far, in order of first appearance.
    func catalogue() -> ToolCatalogue {
        let names = order.withLock { $0 }
        let table = specs.withLock { $0 }
        return ToolCatalogue(names.compactMap { table[$0] })
    }

    /// A gate announced and verified since the last call (nil otherwise).
    func takeGate() -> (gate: GateNetwork, version: String)? {
        gateLock.withLock {
            defer { pendingGate = nil }
            return pendingGate
        }
    }

    func stop() {
        let wasRunning = thread != nil && !stopped.withLock { let s = $0; $0 = true; return s }
        if wasRunning { finished.wait() }
        // The thread's closure holds this listener: drop it so the listener (and its client) can go.
        thread = nil
        consumer.close()
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
            do {
                let spec = try ToolSpec(wire: WireToolSpec(bytes: m.value))
                specs.withLock { $0[spec.name] = spec }
                order.withLock { if !$0.contains(spec.name) { $0.append(spec.name) } }
                catalogueChanged.withLock { $0 = true }
            } catch {
                logger.error("undecodable ToolSpec at \(m.topic)[\(m.partition)]@\(m.offset): \(error)")
            }
        }
    }

    /// Verifies and loads an announced gate for the worker to pick up; older versions are skipped.
    private func applyGate(_ update: WireAdapterUpdate) {
        if let current = gateVersion.withLock({ $0 }), current >= update.version {
            metrics.adapterUpdate(result: "stale")
            return
        }
        do {
            let gate = try GateDistribution.load(update)
            gateVersion.withLock { $0 = update.version }
            gateLock.withLock { pendingGate = (gate, update.version) }
            metrics.adapterUpdate(result: "applied")
            logger.info("gate announced", metadata: ["version": "\(update.version)"])
        } catch {
            metrics.adapterUpdate(result: "refused")
            logger.error("gate update refused, the previous gate keeps serving: \(error)", metadata: ["version": "\(update.version)"])
        }
    }
}
