// FirstStartTrainer: trains what FirstStartTraining plans (missing adapters, then the gate) in
// the background of a running service and announces each adapter version on `adapters` the moment
// it is published, and the gate when it is trained, so workers switch from serving a tool with its
// document in the prompt to its adapter without a restart. Progress goes to the log and /metrics.
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
        logger.notice("first start: trained; every tool is now served with its adapter",
                      metadata: ["adapters": "\(result.published.count)", "seconds": "\(Int(Date().timeIntervalSince(started)))"])
    }

    private func announce(_ updates: [WireAdapterUpdate], producer: KafkaProducer) {
        do {
            let messages = try updates.map { OutgoingMessage(topic: topics.adapters, key: $0.tool, value: try $0.encode()) }
            _ = try producer.sendAndWait(messages)
            for u in updates { logger.info("first start: announced", metadata: ["tool": "\(u.tool)", "version": "\(u.version)"]) }
        } catch {
            // The version is in the store: the next start (or the trainer's next announcement) serves it.
            logger.error("first start: announcing \(updates.map(\.tool)) failed: \(error)")
        }
    }
}
