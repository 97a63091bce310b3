// FirstStartTrainer: trains what FirstStartTraining plans (missing adapters, then the gate) in
// the background of a running service and announces each adapter version on `adapters` the moment
// it is published, and the gate when it is trained, so workers switch from serving a tool with its
// document in the prompt to its adapter without a restart. Progress goes to the log and /metrics.
// An announcement whose send fails is counted and sent again with the next one, and at the end.
import Foundation
import Kafka
import Logging
import ParaTool
import ParaToolTraining
import ServiceLifecycle
import Synchronization
import Wire

/// A `Service` that runs the first-start training once and then returns; on graceful shutdown it
/// stops after the current step (checkpointed: the next start resumes).
public final class FirstStartTrainer: Service, @unchecked Sendable {
    // @unchecked: `policy` holds a catalogue and file URLs, read on the training thread only.
    private let policy: FirstStartTraining
    private let plan: FirstStartTraining.Plan
    private let kafka: KafkaConfiguration
    private let topics: TopicNames
    private let metrics: ServiceMetrics
    private let logger: Logger
    /// Steps done and to do over the whole run (every job), for `progress`.
    private let counts = Mutex<(done: Int, total: Int)>((0, 0))
    /// Announcements whose send failed, sent again before the next ones.
    private let unannounced = Mutex<[WireAdapterUpdate]>([])

    /// A trainer for `plan` (from `policy.plan()`).
    public init(policy: FirstStartTraining, plan: FirstStartTraining.Plan, kafka: KafkaConfiguration, topics: TopicNames,
                metrics: ServiceMetrics, logger: Logger) {
        self.policy = policy
        self.plan = plan
        self.kafka = kafka
        self.topics = topics
        self.metrics = metrics
        self.logger = logger
    }

    public func run() async throws {
        guard !plan.isEmpty else { return }
        try await ServiceThread(name: "paratool-first-start").run { [self] in try train() }
    }

    private func train() throws {
        let started = Date()
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: kafka), name: "first-start-announcer", logger: logger)
        defer { producer.close() }
        logger.notice("first start: training in the background; tools without an adapter are served with their documents meanwhile",
                      metadata: ["tools": "\(plan.tools.joined(separator: ","))", "gate": "\(plan.gateMissing ? "to train" : "stored")",
                                 "store": "\(policy.store.path)"])
        var options = try policy.options(for: plan)
        options.onPublish = { [self] version in
            announce([WireAdapterUpdate(announcing: version)], producer: producer)
        }
        let stepGauge = metrics.gauge("first_start_steps_done", labels: [], help: "Training steps done by the first-start training.")
        let totalGauge = metrics.gauge("first_start_steps_total", labels: [], help: "Training steps the first-start training plans.")
        var lastJob = ""
        var jobOffset = 0
        let result = try OfflineTraining.run(options, log: { [logger] in logger.info("\($0)") }) { [self] p in
            if p.job != lastJob {
                jobOffset = counts.withLock { $0.done }
                lastJob = p.job
                counts.withLock { $0.total = max($0.total, jobOffset + p.totalSteps) }
            }
            let (done, total) = counts.withLock { c in
                c.done = jobOffset + p.step
                c.total = max(c.total, c.done)
                return (c.done, c.total)
            }
            stepGauge.set(to: Double(done))
            totalGauge.set(to: Double(total))
            if p.step == p.totalSteps || p.step % 25 == 0 { logger.info("first start: \(p.line)") }
            return !Task.isShuttingDownGracefully && !Task.isCancelled
        }
        if result.stopped {
            logger.notice("first start: stopped; the next start resumes from the checkpoints")
            return
        }
        if let gate = result.gateDirectory {
            announce([try GateDistribution.update(directory: gate)], producer: producer)
        }
        // What still failed is sent again a few times before the trainer returns.
        var wait = 1.0
        while !unannounced.withLock({ $0.isEmpty }), wait <= 16, !Task.isShuttingDownGracefully, !Task.isCancelled {
            Thread.sleep(forTimeInterval: wait)
            announce([], producer: producer)
            wait *= 2
        }
        logger.notice("first start: trained; every tool is now served with its adapter",
                      metadata: ["adapters": "\(result.published.count)", "seconds": "\(Int(Date().timeIntervalSince(started)))"])
    }

    /// Sends the announcements a failed send left, then `updates`; what fails is counted
    /// (`paratool_announcement_failures_total`), logged, and kept for the next call.
    private func announce(_ updates: [WireAdapterUpdate], producer: KafkaProducer) {
        let pending = unannounced.withLock { u in
            defer { u.removeAll() }
            return u + updates
        }
        var failed: [WireAdapterUpdate] = []
        var lastError: Error?
        for u in pending {
            do {
                _ = try producer.sendAndWait([OutgoingMessage(topic: topics.adapters, key: u.tool, value: try u.encode())])
                logger.info("first start: announced", metadata: ["tool": "\(u.tool)", "version": "\(u.version)"])
            } catch {
                failed.append(u)
                lastError = error
            }
        }
        guard let lastError else { return }
        unannounced.withLock { $0 = failed + $0 }
        metrics.announcementFailed(count: failed.count)
        // The version is in the store: it is announced again with the next one, or at the end.
        logger.error("first start: announcing \(failed.map(\.tool)) failed, sending again later: \(lastError)")
    }
}
