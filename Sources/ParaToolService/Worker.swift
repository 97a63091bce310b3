// Worker: `paratool serve`. Consumes `requests` in a consumer group, checks each request's cost
// before any compute, runs the waiting requests in batches whose estimated compute stays within
// the poll interval's budget (ComputeBudget), produces Action (`actions`), FlopsTelemetry
// (`telemetry`) and a Trajectory candidate (`trajectories`), and commits offsets only after
// delivery — or, with exactly-once, inside a Kafka transaction. Bad requests (undecodable,
// invalid, over a limit) get an error Action and go to `dlq`; an output the broker can never take
// is dropped and counted, a dead letter then sent truncated (Undeliverable). A request naming a
// reply topic (ReplyRouting) gets its Action and telemetry there too, with its correlation id.
import Foundation
import Kafka
import Logging
import ParaTool
import ServiceLifecycle
import Synchronization
import Tensor
import Wire

/// How a worker serves.
public struct WorkerSettings: Sendable {
    public var topics = TopicNames()
    public var groupID = "paratool-workers"
    /// Reported in telemetry and DLQ headers.
    public var workerID: String
    /// The base model reported in every Action.
    public var modelID: String
    /// Most requests per engine batch.
    public var batchSize = 8
    /// After the first request of a batch, how long to wait for more (0: batch only what has
    /// already arrived, so a lone request starts at once).
    public var batchWait: Duration = .zero
    /// Kafka transactions (consume-transform-produce) instead of at-least-once.
    public var exactlyOnce = false
    /// The transactional id (one per worker instance); default `paratool-worker-<workerID>`.
    public var transactionalID: String?
    /// Generation budget when a request gives none, and the most a request may ask for.
    public var defaultMaxNewTokens = 96
    public var maxNewTokensLimit = 512
    /// The method when a request names none.
    public var defaultMode: SelectionMode = .paratool
    /// What an answer may be when a request leaves `tool_choice` empty.
    public var defaultToolChoice: ToolChoice = .auto
    /// Decoding limits for requests.
    public var limits = WireLimits.default
    /// Most prompt tokens of a request (nil: only the model's context limits them).
    public var maxPromptTokens: Int?
    /// The most estimated compute of one batch; nil: a quarter of the consumer's
    /// `max.poll.interval.ms` (ComputeBudget), so the worker polls well within that interval.
    public var batchBudget: Duration?
    /// Publish each served request as a trajectory candidate (a request may opt out: `do_not_log`).
    public var logTrajectories = true
    /// Reply topics a request may name must start with this; nil: `<prefix>replies.`.
    public var replyTopicPrefix: String?
    /// Answer on the shared `actions` and `telemetry` topics also when a request names a reply
    /// topic (older clients read those); an answer whose reply topic is missing goes there always.
    public var sharedReplies = true
    /// How many tools, and how large a spec, the catalogue from the `tools` topic may hold.
    public var toolLimits = ToolTopicLimits.default
    /// Most bytes of adapters held in memory (least recently used dropped past it, reloaded from
    /// the store when asked again; nil: no bound). Default 1 GiB: ~60 rank-16 adapters of
    /// SmolLM2-135M (18 MB each with the transposed copy decode reads).
    public var adapterCacheBytes: Int? = 1 << 30
    /// With more candidates than this (a request over the whole catalogue), the gate's MLP scores
    /// only the most similar by tool vector (`ToolCallEngine.selectionShortlist`; 0: all).
    public var selectionShortlist = ToolCallEngine.defaultSelectionShortlist
    /// The threads the worker's engines compute on (`serve --threads`).
    public var threads = ComputeThreads.machine

    public init(workerID: String, modelID: String) {
        self.workerID = workerID
        self.modelID = modelID
    }
}

/// Builds the engine for a catalogue and a gate.
public typealias EngineFactory = (ToolCatalogue, GateNetwork?) throws -> ToolCallEngine

/// A stateless request worker, run as a `Service` of a service group: on graceful shutdown it
/// stops polling, finishes the batch, commits, leaves the group and flushes its producer. Its
/// loop runs on a thread of its own (ServiceThread); cancellation (the group's escalation) stops
/// it without finishing the batch, which the group then serves again.
public final class Worker: Service, @unchecked Sendable {
    // @unchecked: `initialGate` and what `makeEngine` captures (model, registry) are used on the
    // worker's own thread only; every other stored property is immutable and Sendable or guarded
    // by a Mutex.
    public let settings: WorkerSettings
    private let kafka: KafkaConfiguration
    /// The group consumer's settings (its poll interval also sets the compute budget).
    private let consumerConfiguration: KafkaConsumerConfiguration
    private let makeEngine: EngineFactory
    private let initialGate: GateNetwork?
    private let fixedCatalogue: ToolCatalogue?
    private let control: ControlListener
    private let metrics: ServiceMetrics
    private let logger: Logger
    /// Serving, the group has assigned this member its share, the number of assignments, and
    /// whether a graceful shutdown has begun.
    private let membership = Mutex<(serving: Bool, joined: Bool, assignments: Int, draining: Bool)>((false, false, 0, false))
    private let readiness = Readiness()
    /// What a batch may compute between two polls.
    public let budget: ComputeBudget
    /// Which reply topics requests may name, and whether answers also go to the shared topics.
    private let replyRouting: ReplyRouting

    /// How long a worker is idle before it frees the scratch of its largest batch.
    public static let idleBeforeRelease: Duration = .seconds(1)

    /// A worker. With `catalogue` nil, tools come from the compacted `tools` topic, which
    /// `control` (run in the same service group) reads to its end before this worker serves and
    /// follows after; `makeEngine` builds the engine for a catalogue and a gate: `gate` first,
    /// then each gate announced on `adapters` (GateDistribution).
    public init(settings: WorkerSettings, kafka: KafkaConfiguration, catalogue: ToolCatalogue?, gate: GateNetwork?,
                control: ControlListener, metrics: ServiceMetrics, logger: Logger, makeEngine: @escaping EngineFactory) {
        self.settings = settings
        self.kafka = kafka
        consumerConfiguration = KafkaConsumerConfiguration(cluster: kafka, groupID: settings.groupID)
        budget = settings.batchBudget.map(ComputeBudget.init(perBatch:)) ?? ComputeBudget(consumer: consumerConfiguration)
        replyRouting = ReplyRouting(allowedPrefix: settings.replyTopicPrefix ?? ReplyRouting.defaultPrefix(settings.topics),
                                    sharedTopics: settings.sharedReplies)
        self.fixedCatalogue = catalogue
        self.control = control
        self.metrics = metrics
        self.logger = logger
        self.makeEngine = makeEngine
        initialGate = gate
    }

    /// Ready: serving, and the group has assigned this member its (possibly empty) share.
    public var isReady: Bool {
        membership.withLock { $0.serving && $0.joined && !$0.draining }
    }

    /// Returns once the worker is ready; throws when its `run` failed before that.
    public func ready() async throws { try await readiness.wait() }

    private var isStopping: Bool { Task.isShuttingDownGracefully || Task.isCancelled }

    private func markJoined(_ event: RebalanceEvent) {
        guard case .assigned = event else { return }
        let becameReady = membership.withLock { m -> Bool in
            m.joined = true
            m.assignments += 1
            return m.serving
        }
        if becameReady { readiness.markReady() }
    }

    /// Not inlined into the async loop: see `Readiness` on locks in async functions.
    @inline(never)
    private func markServing(_ serving: Bool) {
        let becameReady = membership.withLock { m -> Bool in
            m.serving = serving
            return serving && m.joined
        }
        metrics.setReady(serving)
        if becameReady { readiness.markReady() }
    }

    /// How many times the group has assigned partitions to this member: 1 while it has served
    /// without a rebalance (each rejoin, e.g. after exceeding `max.poll.interval.ms`, adds one).
    public var assignmentCount: Int { membership.withLock { $0.assignments } }

    /// Serves until the service group shuts down. Throws when Kafka fails fatally (e.g. a fenced
    /// transactional id), the control topics cannot be read, or the first engine cannot be built.
    public func run() async throws {
        do {
            try await control.caughtUp()
            try await withGracefulShutdownHandler {
                try await ServiceThread(name: "paratool-worker").run { [self] in try await serve() }
            } onGracefulShutdown: { [self] in
                membership.withLock { $0.draining = true }
                logger.info("shutting down: finishing the batch, committing, leaving the group")
            }
        } catch {
            readiness.fail(error)
            throw error
        }
    }

    private func serve() async throws {
        var catalogue = fixedCatalogue ?? control.takeCatalogue() ?? ToolCatalogue()
        var gate = initialGate
        var announcedEngine: ToolCallEngine?
        if let announced = control.takeGate(), let adopted = engineServing(announced, catalogue: catalogue) {
            announcedEngine = adopted
            gate = announced.gate
        }
        var engine = try announcedEngine ?? makeEngine(catalogue, gate)
        var stale = reportStale(engine, among: catalogue.names)
        logger.info("engine ready", metadata: ["tools": "\(catalogue.count)", "model": "\(settings.modelID)"])
        let estimator = ComputeEstimator(measuring: engine.model, threads: settings.threads)
        logger.info("compute budget per batch", metadata: ["seconds": "\(budget.perBatchSeconds)"])
        // Requests admitted but not yet run (a long one waits for the short ones polled with it),
        // and what each partition's commit may cover.
        var waiting: [Waiting] = []
        var lastBatchEnd: ContinuousClock.Instant?
        var progress = CommitProgress()

        let producer = settings.exactlyOnce
            ? try KafkaProducer(configuration: KafkaTransactionalProducerConfiguration(
                cluster: kafka, transactionalID: settings.transactionalID ?? "paratool-worker-\(settings.workerID)"),
                                name: "worker-producer", logger: logger)
            : try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: kafka), name: "worker-producer", logger: logger)
        defer { producer.close() }
        if settings.exactlyOnce { try producer.initTransactions() }
        let replyTopics = ReplyTopicDirectory { topic in (try? producer.partitionCount(topic: topic, timeout: .seconds(2))) != nil }
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, name: "worker-consumer", logger: logger) { [weak self] event in self?.markJoined(event) }
        try consumer.subscribe(topics: [settings.topics.requests])
        markServing(true)
        logger.info("serving", metadata: ["group": "\(settings.groupID)", "topic": "\(settings.topics.requests)",
                                          "exactly_once": "\(settings.exactlyOnce)", "batch": "\(settings.batchSize)"])
        defer { markServing(false) }

        while !isStopping {
            // Swaps happen between requests: waiting ones were checked against this engine.
            if waiting.isEmpty, let announced = control.takeGate(), let adopted = engineServing(announced, catalogue: catalogue) {
                engine = adopted
                gate = announced.gate
            }
            if waiting.isEmpty, fixedCatalogue == nil, let updated = control.takeCatalogue() {
                do {
                    engine = try makeEngine(updated, gate)
                    // A tool whose documentation changed gets its gate vector from the new text.
                    let changed = updated.tools.filter { spec in catalogue.tools.contains { $0.name == spec.name && $0 != spec } }
                    engine.reencodeTools(changed)
                    catalogue = updated
                    stale = reportStale(engine, among: catalogue.names)
                    logger.info("catalogue updated", metadata: ["tools": "\(catalogue.count)"])
                } catch {
                    logger.error("catalogue update refused, keeping the previous one: \(error)")
                }
            }
            // With requests waiting, poll without waiting: polling keeps the membership alive.
            let polled = try consumer.pollBatch(maxMessages: max(1, settings.batchSize - waiting.count),
                                                timeout: waiting.isEmpty ? .milliseconds(100) : .zero,
                                                window: waiting.isEmpty ? settings.batchWait : .zero)
            if let lag = consumer.lag() { metrics.setLag(lag) }
            guard !polled.isEmpty || !waiting.isEmpty else {
                // Idle for a second: the scratch sized by the largest batch goes back to the system.
                if let end = lastBatchEnd, ContinuousClock.now - end >= Self.idleBeforeRelease {
                    engine.releaseWorkingMemory()
                    lastBatchEnd = nil
                    logger.debug("idle: the working memory of the last batch is released")
                }
                continue
            }
            let start = ContinuousClock.now
            var served = Served(replyTopics: replyTopics)
            waiting += admit(polled, engine: engine, estimator: estimator, into: &served)
            let picked = BatchPlanner.next(waiting.map(\.planned), budget: budget, maxBatch: settings.batchSize) { indices in
                estimator.seconds(indices.map { waiting[$0].cost })
            }
            let running = picked.map { waiting[$0] }
            waiting = waiting.indices.filter { !picked.contains($0) }.map { index in
                var item = waiting[index]
                item.planned.deferrals += 1
                return item
            }
            run(running, engine: engine, estimator: estimator, into: &served)
            let positions = progress.commitPositions(handled: served.rejected + running.map(\.message),
                                                     waiting: waiting.map(\.message))
            if settings.exactlyOnce {
                guard try await deliverInTransaction(served.outputs, positions: positions, producer: producer, consumer: consumer) else { break }
            } else {
                guard try await deliver(served.outputs, producer: producer) else { break }
                do {
                    try consumer.commit(positions)
                } catch {
                    // The partitions moved to another member: it will read this batch again
                    // (at-least-once), so nothing is lost.
                    logger.warning("commit failed; the batch may be answered again: \(error)")
                }
            }
            let elapsed = ContinuousClock.now - start
            for status in served.statuses { metrics.request(status: status, duration: elapsed) }
            lastBatchEnd = .now
            if !stale.tools.isEmpty, ContinuousClock.now - stale.checked >= Self.staleCheckInterval {
                stale = reportStale(engine, among: stale.tools)
            }
        }
        if !waiting.isEmpty {
            logger.info("stopping with requests not yet run: left uncommitted for the group", metadata: ["requests": "\(waiting.count)"])
        }
        logger.info("draining: leaving the group")
        consumer.close()
    }

    /// How often the tools found stale are checked again between catalogue changes (a retrained
    /// version swapped in makes a tool current again).
    static let staleCheckInterval: Duration = .seconds(60)

    /// Counts (`paratool_stale_adapters`) and logs the tools among `names` whose serving adapter
    /// was trained on another schema than the catalogue's: every tool at a catalogue change, the
    /// stale ones after (reading a manifest per tool, so not the whole catalogue every minute).
    private func reportStale(_ engine: ToolCallEngine, among names: [String]) -> (tools: [String], checked: ContinuousClock.Instant) {
        var stale: [String] = []
        do {
            stale = try engine.staleTools(names)
            metrics.gauge("stale_adapters", labels: [], help: "Tools whose adapter was trained on an earlier schema (not served until retrained).")
                .set(to: Double(stale.count))
            if !stale.isEmpty {
                logger.warning("adapters trained on an earlier schema are not served until retrained", metadata: ["tools": "\(stale.joined(separator: ","))"])
            }
        } catch {
            logger.error("could not check the adapters' schemas: \(error)")
        }
        return (stale, .now)
    }

    /// An engine serving `announced`'s gate over `catalogue`, or nil (logged) when the engine
    /// refuses the gate (one that does not fit the model): the gate serving until now goes on.
    private func engineServing(_ announced: AnnouncedGate, catalogue: ToolCatalogue) -> ToolCallEngine? {
        do {
            let engine = try makeEngine(catalogue, announced.gate)
            logger.info("gate swapped", metadata: ["version": "\(announced.version)"])
            return engine
        } catch {
            logger.error("gate \(announced.version) refused, the previous gate serves on: \(error)")
            return nil
        }
    }

    // MARK: Delivery

    /// At-least-once: waits for every output; re-sends failed ones until they land. An output
    /// that can never land as it is (too large, invalid: `KafkaError.isPermanentForMessage`) is
    /// logged, counted and dropped, so the batch commits past it instead of retrying forever; a
    /// dead letter dropped so is sent again truncated (`Undeliverable`). Returns false when asked
    /// to stop while retrying (the batch is then not committed).
    private func deliver(_ outputs: [OutgoingMessage], producer: KafkaProducer) async throws -> Bool {
        var pending = outputs
        var attempt = 0
        while !pending.isEmpty {
            let results = producer.deliver(pending)
            var failed: [(OutgoingMessage, KafkaError)] = []
            var replacements: [OutgoingMessage] = []
            for (m, r) in zip(pending, results) {
                guard case .failure(let e) = r else { continue }
                if e.isPermanentForMessage {
                    if let truncated = undeliverable.drop(m, e) { replacements.append(truncated) }
                } else {
                    failed.append((m, e))
                }
            }
            if failed.isEmpty {
                // Truncated letters go at once; one refused again is dropped for good.
                pending = replacements
                continue
            }
            if let fatal = producer.fatalError { throw fatal }
            attempt += 1
            logger.warning("delivery failed, retrying", metadata: ["messages": "\(failed.count)", "attempt": "\(attempt)",
                                                                   "error": "\(failed[0].1)"])
            if isStopping && attempt >= 3 { return false }
            pending = failed.map(\.0) + replacements
            try? await Task.sleep(for: .seconds(min(2, 0.1 * Double(attempt))))
        }
        return true
    }

    private var undeliverable: Undeliverable { Undeliverable(metrics: metrics, logger: logger) }

    /// Exactly-once: outputs and input offsets commit atomically; a failed transaction is aborted
    /// and retried with the same outputs, less those that can never be delivered as they are
    /// (`KafkaError.isPermanentForMessage`, logged and counted), a dead letter among them replaced
    /// by its truncated letter. Returns false when asked to stop while retrying.
    private func deliverInTransaction(_ outputs: [OutgoingMessage], positions: [TopicPartitionOffset],
                                      producer: KafkaProducer, consumer: KafkaConsumer) async throws -> Bool {
        var attempt = 0
        var outputs = outputs
        while true {
            // Outputs the broker refused for good in this attempt (by index), from the delivery reports.
            let refused = RefusedOutputs()
            // Outputs refused before they were queued, left out of this attempt and the next ones.
            var skipped: Set<Int> = []
            do {
                try producer.beginTransaction()
                for (i, message) in outputs.enumerated() {
                    do {
                        try producer.produce(message) { [logger] result in
                            guard case .failure(let e) = result else { return }
                            if e.isPermanentForMessage { refused.table.withLock { $0[i] = e } }
                            logger.warning("transactional delivery failed: \(e)")
                        }
                    } catch let e as KafkaError where e.isPermanentForMessage {
                        // Refused before it was queued: the transaction goes on without it (with
                        // its truncated letter in its place, for the next attempts too).
                        skipped.insert(i)
                        if let truncated = undeliverable.drop(message, e) {
                            outputs[i] = truncated
                            do {
                                try producer.produce(truncated) { [logger] result in
                                    guard case .failure(let e) = result else { return }
                                    if e.isPermanentForMessage { refused.table.withLock { $0[i] = e } }
                                    logger.warning("transactional delivery failed: \(e)")
                                }
                                skipped.remove(i)
                            } catch let e as KafkaError where e.isPermanentForMessage {
                                _ = undeliverable.drop(truncated, e)
                            }
                        }
                    }
                }
                try producer.sendOffsetsToTransaction(positions, consumer: consumer)
                try producer.commitTransaction()
                return true
            } catch let error as KafkaError {
                if error.isFatal || producer.fatalError != nil { throw producer.fatalError ?? error }
                attempt += 1
                logger.warning("transaction failed, aborting and retrying", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                do { try producer.abortTransaction() } catch { logger.warning("abort failed: \(error)") }
                let gone = refused.table.withLock { $0 }
                var replacements: [Int: OutgoingMessage] = [:]
                for (i, e) in gone.sorted(by: { $0.key < $1.key }) where !skipped.contains(i) {
                    replacements[i] = undeliverable.drop(outputs[i], e)
                }
                outputs = outputs.indices.compactMap { i in
                    guard !skipped.contains(i) else { return nil }
                    return gone[i] == nil ? outputs[i] : replacements[i]
                }
                if isStopping && attempt >= 3 { return false }
                try? await Task.sleep(for: .seconds(min(2, 0.1 * Double(attempt))))
            }
        }
    }

    // MARK: Processing

    /// What one round of the loop produced: the messages to send, a status per request, and the
    /// requests rejected before compute.
    struct Served {
        /// Which reply topics exist (asked of the broker, cached).
        let replyTopics: ReplyTopicDirectory
        var outputs: [OutgoingMessage] = []
        var statuses: [String] = []
        var rejected: [KafkaMessage] = []
    }

    /// A request admitted to run: decoded, validated, its cost known.
    struct Waiting {
        var message: KafkaMessage
        var request: ToolCallRequest
        /// Where its answer goes besides the shared topics.
        var route: ReplyRoute
        /// Whether it may be stored (its trajectory candidate published), and who sent it.
        var logged: Bool
        var source: String
        var queueMs: Double
        var consumedAt: Date
        var cost: RequestCost
        var planned: BatchPlanner.Item
    }

    /// Decodes and validates `batch` before any compute: each request either waits to run or is
    /// rejected (an error Action and a dead letter) when it cannot be decoded, is invalid, names
    /// unknown tools, is past its deadline, has a prompt over the limits, or would compute longer
    /// than a batch may.
    func admit(_ batch: [KafkaMessage], engine: ToolCallEngine, estimator: ComputeEstimator,
               into served: inout Served) -> [Waiting] {
        let consumedAt = Date()
        let nowMs = Int64(consumedAt.timeIntervalSince1970 * 1000)
        var admitted: [Waiting] = []
        for m in batch {
            let queueMs = m.timestampMs.map { max(0, Double(nowMs - $0)) } ?? 0
            metrics.queued(.milliseconds(queueMs))
            // The reply headers first, so even an undecodable request is answered where it asked.
            let route: ReplyRoute
            do {
                route = try replyRouting.route(m)
            } catch {
                reject(m, requestID: m.keyString, route: .none, status: .invalidRequest,
                       code: "reply.refused", message: "\(error)", into: &served)
                continue
            }
            let wire: WireToolCallRequest
            do {
                wire = try WireToolCallRequest(bytes: m.value, limits: settings.limits)
            } catch {
                reject(m, requestID: m.keyString, route: route, status: .invalidRequest, code: Self.code(for: error), message: "\(error)", into: &served)
                continue
            }
            if wire.deadlineUnixMs > 0, nowMs > wire.deadlineUnixMs {
                reject(m, requestID: wire.requestID, route: route, status: .deadlineExceeded, code: "deadline.exceeded",
                       message: "the deadline passed \(nowMs - wire.deadlineUnixMs) ms before a worker took the request", into: &served)
                continue
            }
            do {
                let request = try ToolCallRequest(wire: wire, defaultMaxNewTokens: settings.defaultMaxNewTokens,
                                                  defaultMode: settings.defaultMode, maxNewTokensLimit: settings.maxNewTokensLimit,
                                                  defaultToolChoice: settings.defaultToolChoice)
                let cost = try engine.validate(request, maxPromptTokens: settings.maxPromptTokens)
                let seconds = estimator.seconds([cost])
                guard seconds <= budget.perBatchSeconds else {
                    reject(m, requestID: wire.requestID, route: route, status: .invalidRequest, code: "request.too_costly",
                           message: "request \(wire.requestID): estimated \(String(format: "%.3f", seconds)) s of compute "
                               + "(\(cost.promptTokens) prompt tokens, up to \(cost.maxNewTokens) new), over the "
                               + "\(String(format: "%.3f", budget.perBatchSeconds)) s a batch may take between two polls",
                           into: &served)
                    continue
                }
                admitted.append(Waiting(message: m, request: request, route: route, logged: !wire.doNotLog, source: wire.source,
                                        queueMs: queueMs, consumedAt: consumedAt, cost: cost,
                                        planned: BatchPlanner.Item(seconds: seconds)))
            } catch EngineError.unknownTools(let tools) {
                reject(m, requestID: wire.requestID, route: route, status: .unknownTool, code: "tool.unknown",
                       message: "unknown tools: \(tools.joined(separator: ", "))", into: &served)
            } catch EngineError.staleAdapters(let tools) {
                reject(m, requestID: wire.requestID, route: route, status: .unavailable, code: "adapter.stale",
                       message: "\(EngineError.staleAdapters(tools))", into: &served)
            } catch let error as EngineError {
                if case .promptTooLong = error {
                    reject(m, requestID: wire.requestID, route: route, status: .invalidRequest, code: "prompt.too_long", message: "\(error)", into: &served)
                } else {
                    reject(m, requestID: wire.requestID, route: route, status: .invalidRequest, code: "request.invalid", message: "\(error)", into: &served)
                }
            } catch {
                reject(m, requestID: wire.requestID, route: route, status: .invalidRequest, code: "request.invalid", message: "\(error)", into: &served)
            }
        }
        return admitted
    }

    /// Runs `batch` through the engine as one batch and answers each request; never throws (a
    /// request that breaks the batch is isolated and answered with an error).
    func run(_ batch: [Waiting], engine: ToolCallEngine, estimator: ComputeEstimator, into served: inout Served) {
        guard !batch.isEmpty else { return }
        var results: [Result<ToolCallResponse, Error>]
        let runStart = Date()
        do {
            results = try engine.run(batch.map(\.request)).map { .success($0) }
        } catch {
            // One request broke the batch: run each alone so the others are still answered.
            logger.warning("batch failed, isolating requests: \(error)")
            results = batch.map { item in Result { try engine.run([item.request])[0] } }
        }
        let runSeconds = Date().timeIntervalSince(runStart)
        var prompt = 0, generated = 0
        var parts: [String: Int] = [:]
        for (item, result) in zip(batch, results) {
            switch result {
            case .success(let response):
                prompt += response.promptTokens
                generated += response.generatedTokens
                parts["base_linear", default: 0] += response.flops.baseLinear
                parts["attention", default: 0] += response.flops.attention
                parts["lora", default: 0] += response.flops.lora
                parts["encoder", default: 0] += response.flops.encoder
                parts["gate", default: 0] += response.flops.gate
                answer(item, response: response, into: &served)
            case .failure(let error):
                reject(item.message, requestID: item.request.id, route: item.route, status: .internal, code: "engine.failed",
                       message: "\(error)", into: &served)
            }
        }
        if let first = try? results.first?.get(), results.count == batch.count {
            let steps = results.compactMap { try? $0.get().generatedTokens }.max() ?? 0
            estimator.record(batch.map(\.cost), prefillSeconds: first.gateSeconds + first.prefillSeconds,
                             decodeSeconds: max(0, first.generateSeconds - first.prefillSeconds), steps: max(0, steps - 1))
        }
        metrics.batch(size: batch.count, promptTokens: prompt, generatedTokens: generated, seconds: runSeconds, flops: parts)
    }

    private func answer(_ item: Waiting, response: ToolCallResponse, into served: inout Served) {
        let request = item.request
        let timings = WirePhaseTimings(queueMs: item.queueMs, gateMs: response.gateSeconds * 1000,
                                       prefillMs: response.prefillSeconds * 1000,
                                       decodeMs: (response.generateSeconds - response.prefillSeconds) * 1000,
                                       totalMs: Date().timeIntervalSince(item.consumedAt) * 1000)
        let action = WireAction(response: response, modelID: settings.modelID, timings: timings)
        let telemetry = WireFlopsTelemetry(response: response, workerID: settings.workerID, timings: timings)
        do {
            served.outputs += replies(try action.encode(), type: WireAction.protoName, key: response.id,
                                      shared: settings.topics.actions, route: item.route, into: &served)
            served.outputs += replies(try telemetry.encode(), type: WireFlopsTelemetry.protoName, key: response.id,
                                      shared: settings.topics.telemetry, route: item.route, into: &served)
        } catch {
            // The model wrote something the wire cannot carry (e.g. U+0000): answer with an error.
            reject(item.message, requestID: response.id, route: item.route, status: .internal, code: "wire.unencodable",
                   message: "\(error)", into: &served)
            return
        }
        served.statuses.append("ok")
        metrics.served(format: response.servedMode.rawValue)
        metrics.answered(kind: response.forceClosed ? "force_closed" : response.action.calls.isEmpty ? "text" : "calls")
        guard settings.logTrajectories, item.logged else { return }
        let calls = action.calls
        let steps = request.history.map(\.wire) + [WireStep(calls: calls)]
        let trajectory = WireTrajectory(id: response.id, query: request.query, candidateTools: response.weights.map(\.tool),
                                        steps: steps, outcome: .unknown, source: "served:\(settings.workerID)",
                                        requestSource: item.source)
        if let output = candidateOutput(trajectory, key: calls.first?.name ?? "") { served.outputs.append(output) }
    }

    /// The message publishing a served request's trajectory candidate, or nil (logged and counted
    /// in `paratool_trajectory_drops_total`) when the wire cannot carry it: the answer still goes out.
    func candidateOutput(_ trajectory: WireTrajectory, key: String) -> OutgoingMessage? {
        do {
            return OutgoingMessage(topic: settings.topics.trajectories, key: key, value: try trajectory.encode())
        } catch {
            metrics.trajectoryDropped(reason: "unencodable")
            logger.error("trajectory candidate not published: \(error)", metadata: ["request_id": "\(trajectory.id)"])
            return nil
        }
    }

    /// The messages of one answer for `route` (ReplyRouting.outputs); a reply topic that does not
    /// exist is logged and counted, and the answer goes to the shared topic.
    private func replies(_ value: [UInt8], type: String, key: String, shared: String, route: ReplyRoute,
                         into served: inout Served) -> [OutgoingMessage] {
        let directory = served.replyTopics
        var missing: String?
        let out = replyRouting.outputs(value: value, type: type, key: key, sharedTopic: shared, route: route) { topic in
            let exists = directory.exists(topic)
            if !exists { missing = topic }
            return exists
        }
        if let missing {
            metrics.replyTopicMissing()
            logger.warning("reply topic does not exist; answered on the shared topic", metadata: ["request_id": "\(key)", "reply_topic": "\(missing)"])
        }
        return out
    }

    /// An error Action to `actions` (and the request's reply topic) and the original bytes to
    /// `dlq` with the reason in headers.
    private func reject(_ m: KafkaMessage, requestID: String, route: ReplyRoute, status: WireStatus, code: String, message: String,
                        into served: inout Served) {
        let id = requestID.isEmpty ? "\(m.topic)-\(m.partition)-\(m.offset)" : requestID
        logger.warning("request rejected", metadata: ["request_id": "\(id)", "code": "\(code)", "reason": "\(message)"])
        metrics.deadLettered(reason: code)
        let action = WireAction(requestID: id, modelID: settings.modelID, status: status,
                                error: WireErrorDetail(code: code, message: String(message.prefix(4096))))
        if let bytes = try? action.encode() {
            served.outputs += replies(bytes, type: WireAction.protoName, key: id, shared: settings.topics.actions, route: route, into: &served)
        }
        served.outputs.append(DeadLetterHeader.letter(for: m, topic: settings.topics.dlq, code: code, message: message,
                                                      by: settings.workerID, requestID: requestID.isEmpty ? nil : requestID))
        served.statuses.append(Self.statusLabel(status))
        served.rejected.append(m)
    }

    /// How far each partition's commit may go: past every handled request, but never past a
    /// request still waiting to run (so a worker that stops or dies leaves it to the group).
    struct CommitProgress {
        private var handledUpTo: [TopicPartition: Int64] = [:]

        /// Records `handled` and returns the positions to commit for the partitions they are in.
        mutating func commitPositions(handled: [KafkaMessage], waiting: [KafkaMessage]) -> [TopicPartitionOffset] {
            var touched = Set<TopicPartition>()
            for m in handled {
                let tp = TopicPartition(topic: m.topic, partition: m.partition)
                handledUpTo[tp] = max(handledUpTo[tp] ?? Int64.min, m.offset + 1)
                touched.insert(tp)
            }
            var firstWaiting: [TopicPartition: Int64] = [:]
            for m in waiting {
                let tp = TopicPartition(topic: m.topic, partition: m.partition)
                firstWaiting[tp] = min(firstWaiting[tp] ?? Int64.max, m.offset)
            }
            return touched.compactMap { tp -> TopicPartitionOffset? in
                guard let done = handledUpTo[tp] else { return nil }
                return TopicPartitionOffset(topic: tp.topic, partition: tp.partition, offset: min(done, firstWaiting[tp] ?? done))
            }
            .sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
        }
    }

    static func code(for error: Error) -> String {
        switch error as? WireError {
        case .tooLarge, .decodedTooLarge: "wire.too_large"
        case .malformed: "wire.malformed"
        case .invalidField: "wire.invalid_field"
        case nil: "wire.malformed"
        }
    }

    static func statusLabel(_ status: WireStatus) -> String {
        switch status {
        case .ok: "ok"
        case .invalidRequest: "invalid_request"
        case .unknownTool: "unknown_tool"
        case .deadlineExceeded: "deadline_exceeded"
        case .unavailable: "unavailable"
        default: "internal"
        }
    }
}

/// The outputs of one transaction attempt that the broker refused for good, by index, filled by
/// delivery reports on librdkafka's thread.
private final class RefusedOutputs: Sendable {
    let table = Mutex<[Int: KafkaError]>([:])
}
