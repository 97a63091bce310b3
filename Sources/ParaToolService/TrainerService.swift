// TrainerService: `paratool train --brokers`. Consumes `trajectories` in a consumer group (keyed by
// tool, so several trainers split the tools), keeps solved ones in the durable TrajectoryDataset
// (offsets committed after the fsync), joins the `feedback` clients report with the served
// candidates into labelled episodes (FeedbackJoin) and keeps those too, retrains a tool's adapter every K new trajectories or on a
// schedule (stage 1 for the affected tools, then the stages configured) on everything but the
// held-out slice, publishes each tool's new version held for review, scores it against the
// serving version on the held-out slice (PromotionPolicy), and announces on `adapters` only the
// versions promoted, for workers to hot-swap; rejected ones stay in the store with their reason.
// A retrained gate is announced there too (GateDistribution). An announcement whose send fails is
// counted and sent again at the next round; a dead letter the broker can never take is sent
// truncated (Undeliverable). The tool documents come from a file or, by default, from the
// compacted `tools` topic the workers follow.
import Foundation
import Kafka
import LLM
import Logging
import ParaTool
import ParaToolTraining
import ServiceLifecycle
import Synchronization
import Tensor
import Wire

/// How the trainer works.
public struct TrainerSettings: Sendable {
    public var topics = TopicNames()
    public var groupID = "paratool-trainers"
    /// The durable dataset directory.
    public var dataset: URL
    /// The adapter store the versions go to.
    public var store: URL
    /// The tool catalogue file (documents for document-aware instances, the gate's tool vectors);
    /// nil: the catalogue on the `tools` topic, read to its end at start and followed after.
    public var tools: URL?
    /// The base model (nil: the default).
    public var model: String?
    /// Retrain a tool once this many new trajectories of it arrived.
    public var retrainEvery = 50
    /// Also retrain whatever has new data at this interval (nil: only by count).
    public var schedule: Duration?
    /// Stages after the new data arrives: 1 (that tool's adapter), 2 (gate), 3 (joint).
    public var stages: Set<Int> = [1]
    /// Adapter training settings of stage 1.
    public var adapter = AdapterTrainingConfig()
    /// Store trajectories whose outcome is unknown (served candidates) as well as solved ones.
    public var acceptUnlabelled = false
    /// Served candidates kept for feedback to join (the newest this many; journaled in the
    /// dataset directory, so a restart keeps them and the feedback still waiting).
    public var feedbackWindow = 10_000
    /// Most bytes the served candidates held for feedback may take, and the feedback waiting for
    /// its candidate as well (`FeedbackJoin.maxBytes`).
    public var feedbackMaxBytes = FeedbackJoin.defaultMaxBytes
    /// Most bytes of the dataset's log; past it new episodes are refused, logged and counted.
    public var datasetMaxBytes = TrajectoryDataset.defaultMaxBytes
    /// Name in the dead-letter headers of feedback this trainer refused.
    public var trainerID = "trainer"
    /// Score every retrained version on the held-out slice against the serving one and announce
    /// it only when it is not worse (`PromotionPolicy`); false: announce whatever is trained.
    public var review = true
    /// How many tools, and how large a spec, the catalogue from the `tools` topic may hold.
    public var toolLimits = ToolTopicLimits.default
    /// How long stored episodes, served candidates and waiting feedback are kept (nil: until
    /// the byte quotas push them out).
    public var retention: Duration?
    /// The threads training and review compute on.
    public var threads = ComputeThreads.machine

    public init(dataset: URL, store: URL, tools: URL?) {
        self.dataset = dataset
        self.store = store
        self.tools = tools
    }
}

/// The online trainer, a `Service`: on graceful shutdown it finishes the current append and
/// commit, lets a running training finish and publish, and leaves the group. Polls run on one
/// thread of its own, training on another (ServiceThread), so the group keeps its membership
/// while a tool trains.
public final class TrainerService: Service, Sendable {
    public let settings: TrainerSettings
    private let kafka: KafkaConfiguration
    private let metrics: ServiceMetrics
    private let logger: Logger
    /// Joined the group; a training running; graceful shutdown begun.
    private let state = Mutex<(joined: Bool, training: Bool, draining: Bool)>((false, false, false))
    /// Tools whose last training failed (or whose document is missing) are not retried before
    /// this time, so a persistent failure is logged once a minute, not on every poll, and does
    /// not hold up the other tools.
    private let heldOff = Mutex<[String: ContinuousClock.Instant]>([:])
    /// How long a failed tool waits before its next attempt.
    public static let retryDelay: Duration = .seconds(60)
    /// Announcements (adapter versions, gates) whose send failed, to send again at the next round
    /// of the loop once `retryAt` has come; `failures` in a row set the back-off.
    private let unannounced = Mutex<(messages: [OutgoingMessage], failures: Int, retryAt: ContinuousClock.Instant)>(([], 0, .now))
    /// The `tools` topic, when the catalogue comes from there (run it in the same group).
    private let toolsTopic: ControlListener?
    public let dataset: TrajectoryDataset

    /// A trainer; `toolsTopic` is the listener of the `tools` topic when `settings.tools` is nil.
    public init(settings: TrainerSettings, kafka: KafkaConfiguration, toolsTopic: ControlListener?, metrics: ServiceMetrics,
                logger: Logger) throws {
        guard settings.tools != nil || toolsTopic != nil else {
            throw KafkaError(code: KafkaError.Code.invalidArgument, message: "the trainer needs a catalogue file or the tools topic's listener")
        }
        self.settings = settings
        self.kafka = kafka
        self.toolsTopic = toolsTopic
        self.metrics = metrics
        self.logger = logger
        dataset = try TrajectoryDataset(directory: settings.dataset, maxBytes: settings.datasetMaxBytes)
        reportRejected(dataset.rejectedAtOpen)
        if let reason = dataset.stateRejected {
            logger.error("the dataset's trained counts could not be read; every tool with data is due again: \(reason)")
            countRejected(file: "state.json")
        }
    }

    /// Logs and counts the lines of the dataset or journal that could not be read at open.
    private func reportRejected(_ lines: [RejectedLine]) {
        for line in lines {
            logger.error("unreadable line set aside: \(line)")
            countRejected(file: line.file.lastPathComponent)
        }
    }

    private func countRejected(file: String) {
        metrics.counter("trainer_rejected", labels: [("file", file)],
                        help: "Dataset or feedback journal lines, or state files, that could not be read at open, moved to <file>.rejected.")
            .increment()
    }

    public var isReady: Bool { state.withLock { $0.joined && !$0.draining } }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await toolsTopic?.caughtUp()
            try await ServiceThread(name: "paratool-trainer").run { [self] in try await consume() }
        } onGracefulShutdown: { [self] in
            state.withLock { $0.draining = true }
            logger.info("trainer shutting down: a running training finishes first")
        }
    }

    private func consume() async throws {
        let consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(cluster: kafka, groupID: settings.groupID),
                                         name: "trainer-consumer", logger: logger) { [weak self] _ in self?.markJoined() }
        try consumer.subscribe(topics: [settings.topics.trajectories, settings.topics.feedback, settings.topics.forget])
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(cluster: kafka), name: "trainer-producer", logger: logger)
        defer { producer.close() }
        metrics.setReady(true)
        logger.info("trainer consuming", metadata: ["topic": "\(settings.topics.trajectories)", "stored": "\(dataset.count)",
                                                     "retrain_every": "\(settings.retrainEvery)"])
        let trainingThread = ServiceThread(name: "paratool-training")
        var join = FeedbackJoin(window: settings.feedbackWindow, maxBytes: settings.feedbackMaxBytes)
        let (journal, replayed) = try FeedbackJournal.open(directory: settings.dataset, into: &join)
        reportRejected(journal.rejectedAtOpen)
        reportOverQuota(try dataset.append(replayed).overQuota)
        let forgotten = try ForgetLog(directory: settings.dataset)
        reportRejected(forgotten.rejectedAtOpen)
        var evictions = FeedbackJoin.Evictions()
        report(join, since: &evictions)
        logger.info("feedback join restored", metadata: ["candidates": "\(join.candidateCount)", "waiting": "\(join.waitingFeedback.count)"])
        try await withThrowingDiscardingTaskGroup { trainings in
            var lastScheduled = ContinuousClock.now
            var staleChecked: ContinuousClock.Instant?
            // The catalogue last checked and whether tools were stale in it: the store's manifests
            // are read again only when the catalogue changed or stale tools wait for training.
            var checked: (catalogue: ToolCatalogue, stale: Bool)?
            var expired: ContinuousClock.Instant?
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                if let retention = settings.retention, expired.map({ ContinuousClock.now - $0 >= Self.expiryInterval }) ?? true {
                    expired = .now
                    try expire(olderThan: retention, join: &join, journal: journal)
                }
                // Tools whose schema changed since their adapter was trained are retrained from
                // examples of the new schema before anything else.
                if staleChecked.map({ ContinuousClock.now - $0 >= Self.staleCheckInterval }) ?? true {
                    staleChecked = .now
                    let now = ContinuousClock.now
                    let catalogue = currentCatalogue()
                    var stale: [String] = []
                    if checked.map({ $0.catalogue != catalogue || $0.stale }) ?? true {
                        let found = staleTools(in: catalogue)
                        checked = (catalogue, !found.isEmpty)
                        stale = found.filter { tool in heldOff.withLock { $0[tool].map { now >= $0 } ?? true } }
                    }
                    if !stale.isEmpty, state.withLock({ s in defer { s.training = true }; return !s.training }) {
                        trainings.addTask(executorPreference: trainingThread) { [self] in
                            defer { trainingEnded() }
                            do { try retrainChangedSchemas(stale, producer: producer) } catch {
                                logger.error("retraining \(stale.joined(separator: ",")) for their new schemas failed, next attempt in \(Self.retryDelay): \(error)")
                                holdOff(stale)
                            }
                        }
                        continue
                    }
                }
                let batch = try consumer.pollBatch(maxMessages: 256, timeout: .milliseconds(200), window: .milliseconds(20))
                if !batch.isEmpty {
                    try store(batch, join: &join, journal: journal, forgotten: forgotten, consumer: consumer, producer: producer)
                    report(join, since: &evictions)
                }
                let scheduled = settings.schedule.map { ContinuousClock.now - lastScheduled >= $0 } ?? false
                let now = ContinuousClock.now
                let due = dataset.due(threshold: scheduled ? 1 : settings.retrainEvery)
                    .filter { tool in heldOff.withLock { $0[tool].map { now >= $0 } ?? true } }
                if scheduled { lastScheduled = .now }
                let announceDue = unannounced.withLock { !$0.messages.isEmpty && now >= $0.retryAt }
                guard !due.isEmpty || announceDue, state.withLock({ s in defer { s.training = true }; return !s.training }) else { continue }
                trainings.addTask(executorPreference: trainingThread) { [self] in
                    defer { trainingEnded() }
                    if announceDue { announce([], producer: producer) }
                    guard !due.isEmpty else { return }
                    do { try retrain(due, producer: producer) } catch {
                        logger.error("retraining \(due.joined(separator: ",")) failed, next attempt in \(Self.retryDelay): \(error)")
                        holdOff(due)
                    }
                }
            }
            logger.info("trainer stopping: waiting for a running training to finish")
        }
        consumer.close()
        metrics.setReady(false)
    }

    /// Stores the solved (or, when accepted, unlabelled) trajectories of `batch` and the episodes
    /// its feedback labels durably, journals what the feedback join now holds, sends refused
    /// feedback to `dlq`, then commits the offsets: a crash in between only re-delivers
    /// (deduplicated by id).
    private func store(_ batch: [KafkaMessage], join: inout FeedbackJoin, journal: FeedbackJournal, forgotten: ForgetLog,
                       consumer: KafkaConsumer, producer: KafkaProducer) throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        // Forget requests first (recorded durably), so nothing of this batch they cover is stored.
        var forgets: [WireForgetRequest] = []
        for m in batch where m.topic == settings.topics.forget {
            do {
                let request = try WireForgetRequest(bytes: m.value)
                try forgotten.record(request, at: now)
                forgets.append(request)
            } catch let error as WireError {
                logger.error("undecodable or invalid ForgetRequest at \(m.topic)[\(m.partition)]@\(m.offset): \(error)")
                metrics.deadLettered(reason: "forget.invalid")
                _ = try send(deadLetters: [DeadLetterHeader.letter(for: m, topic: settings.topics.dlq, code: "forget.invalid",
                                                                   message: "\(error)", by: settings.trainerID)], producer: producer)
            }
        }
        var accepted: [Trajectory] = []
        var deadLetters: [OutgoingMessage] = []
        var journalLines: [String] = []
        func count(_ outcomes: [FeedbackJoin.Outcome], _ m: KafkaMessage) {
            for outcome in outcomes {
                metrics.counter("trainer_feedback", labels: [("result", outcome.label)], help: "Feedback messages by what they came to.").increment()
                switch outcome {
                case .labelled(let episode): accepted.append(episode)
                case .invalid(let reason):
                    deadLetters.append(DeadLetterHeader.letter(for: m, topic: settings.topics.dlq, code: "feedback.invalid", message: reason,
                                                               by: settings.trainerID))
                case .unknown(let id): logger.info("feedback for \(id) found no served candidate within the window")
                default: break
                }
            }
        }
        func skipForgotten() {
            metrics.counter("trainer_forgotten_skipped", labels: [], help: "Trajectories and feedback not stored: a forget request covers them.").increment()
        }
        for m in batch where m.topic != settings.topics.forget {
            if m.topic == settings.topics.feedback {
                do {
                    let feedback = try WireFeedback(bytes: m.value)
                    if forgotten.covers(requestID: feedback.requestID, sources: [feedback.source], timestampMs: m.timestampMs) {
                        skipForgotten()
                        continue
                    }
                    let outcomes = join.add(feedback: feedback)
                    count(outcomes, m)
                    // What changed the join's state is journaled; what it refused or ignored is not.
                    switch outcomes.first {
                    case .invalid?, .duplicate?, .late?: break
                    default: journalLines.append(try FeedbackJournal.line(feedback: feedback))
                    }
                } catch {
                    count([.invalid(reason: "\(error)")], m)
                }
                continue
            }
            do {
                var t = try Self.trajectory(WireTrajectory(bytes: m.value))
                if forgotten.covers(requestID: t.id, sources: [t.source, t.requestSource], timestampMs: m.timestampMs) {
                    skipForgotten()
                    continue
                }
                t.storedUnixMs = now
                if FeedbackJoin.isCandidate(t) {
                    count(join.add(candidate: t), m)
                    journalLines.append(FeedbackJournal.line(candidate: t))
                }
                if t.outcome == .solved || (settings.acceptUnlabelled && t.outcome == .unknown) { accepted.append(t) } else {
                    metrics.counter("trainer_skipped", labels: [("outcome", t.outcome.rawValue)], help: "Trajectories not stored, by outcome.").increment()
                }
            } catch {
                logger.warning("undecodable or invalid trajectory skipped at \(m.topic)[\(m.partition)]@\(m.offset): \(error)")
                metrics.counter("trainer_skipped", labels: [("outcome", "undecodable")], help: "Trajectories not stored, by outcome.").increment()
            }
        }
        // Stopping while the letters could not be sent: nothing is stored or committed, so the
        // batch comes again.
        guard try send(deadLetters: deadLetters, producer: producer) else { return }
        let appended = try dataset.append(accepted)
        reportOverQuota(appended.overQuota)
        try journal.append(journalLines, join: join)
        metrics.counter("trainer_stored", labels: [], help: "Trajectories appended to the dataset.").increment(by: Int64(appended.stored.count))
        for request in forgets { try forget(request, join: &join, journal: journal) }
        do { try consumer.commit(TopicPartitionOffset.commitPositions(after: batch)) } catch {
            logger.warning("commit failed; the batch may be delivered again: \(error)")
        }
    }

    /// Sends the dead letters of refused feedback. One the broker can never take (too large,
    /// invalid) is dropped and counted and its truncated letter sent instead (`Undeliverable`);
    /// before, the send threw out of the poll loop and stopped the trainer. Other failures are
    /// retried; returns false when the trainer stops while they still fail.
    private func send(deadLetters: [OutgoingMessage], producer: KafkaProducer) throws -> Bool {
        let undeliverable = Undeliverable(metrics: metrics, logger: logger)
        var pending = deadLetters
        var attempt = 0
        while !pending.isEmpty {
            var failed: [(OutgoingMessage, KafkaError)] = []
            var replacements: [OutgoingMessage] = []
            for (m, result) in zip(pending, producer.deliver(pending)) {
                guard case .failure(let e) = result else { continue }
                if !e.isPermanentForMessage { failed.append((m, e)) } else if let truncated = undeliverable.drop(m, e) { replacements.append(truncated) }
            }
            if !failed.isEmpty {
                if let fatal = producer.fatalError { throw fatal }
                attempt += 1
                logger.warning("dead letters not delivered, retrying", metadata: ["messages": "\(failed.count)", "attempt": "\(attempt)",
                                                                                  "error": "\(failed[0].1)"])
                if (Task.isShuttingDownGracefully || Task.isCancelled) && attempt >= 3 { return false }
                Thread.sleep(forTimeInterval: min(2, 0.1 * Double(attempt)))
            }
            pending = failed.map(\.0) + replacements
        }
        return true
    }

    /// Sends `updates` after the announcements a failed send left. What fails again is counted
    /// (`paratool_announcement_failures_total`), logged, and kept for the next round, after a
    /// back-off of 1 s doubling to `retryDelay`: the versions are in the store, so an announcement
    /// is never given up and nothing is trained again for it.
    func announce(_ updates: [OutgoingMessage], producer: KafkaProducer) {
        let pending = unannounced.withLock { u in
            u.messages += updates
            return u.messages
        }
        guard !pending.isEmpty else { return }
        let failed = zip(pending, producer.deliver(pending)).compactMap { m, result -> (OutgoingMessage, KafkaError)? in
            if case .failure(let e) = result { (m, e) } else { nil }
        }
        let delay = unannounced.withLock { u -> Duration in
            u.messages = failed.map(\.0)
            u.failures = failed.isEmpty ? 0 : u.failures + 1
            let delay = failed.isEmpty ? .zero : min(Self.retryDelay, .seconds(1 << min(u.failures - 1, 6)))
            u.retryAt = .now + delay
            return delay
        }
        guard let (_, error) = failed.first else { return }
        metrics.announcementFailed(count: failed.count)
        logger.error("announcing failed, sending again in \(delay)",
                     metadata: ["announcements": "\(failed.map { String(decoding: $0.0.key ?? [], as: UTF8.self) })", "error": "\(error)"])
    }

    /// Logs and counts episodes the dataset refused for its quota (their offsets are committed:
    /// they are not stored, but never silently).
    private func reportOverQuota(_ refused: [Trajectory]) {
        guard !refused.isEmpty else { return }
        metrics.counter("trainer_over_quota", labels: [], help: "Episodes refused because the dataset reached --dataset-max-bytes.")
            .increment(by: Int64(refused.count))
        logger.error("the dataset is at its quota: episodes refused, not stored",
                     metadata: ["episodes": "\(refused.count)", "first": "\(refused[0].id)", "bytes": "\(dataset.bytes)",
                                "max_bytes": "\(dataset.maxBytes)"])
    }

    /// Counts what the feedback join pushed out since `last` (by count and by bytes), and sets
    /// the gauges of what it holds: feedback waiting for a candidate (feedback for a request id
    /// no worker served waits there too, until it is pushed out as unknown), and the bytes held.
    private func report(_ join: FeedbackJoin, since last: inout FeedbackJoin.Evictions) {
        let now = join.evictions
        for (bound, n) in [("count", now.byCount - last.byCount), ("bytes", now.byBytes - last.byBytes)] where n > 0 {
            metrics.counter("trainer_join_evictions", labels: [("bound", bound)],
                            help: "Candidates and waiting feedback the feedback join pushed out, by the bound that did (count: the window of served candidates, bytes: --feedback-max-bytes).")
                .increment(by: Int64(n))
        }
        last = now
        metrics.gauge("trainer_feedback_waiting", labels: [], help: "Feedback waiting for its served candidate (or for a request id no worker served).")
            .set(to: Double(join.waitingCount))
        metrics.gauge("trainer_join_bytes", labels: [("held", "candidates")], help: "Bytes the feedback join holds.").set(to: Double(join.candidateBytes))
        metrics.gauge("trainer_join_bytes", labels: [("held", "feedback")], help: "Bytes the feedback join holds.").set(to: Double(join.waitingBytes))
    }

    private func markJoined() { state.withLock { $0.joined = true } }

    /// Not inlined into the async training task: see `Readiness` on locks in async functions.
    @inline(never)
    private func trainingEnded() { state.withLock { $0.training = false } }

    /// Trains `tools` on a snapshot of the dataset, publishes and announces the versions.
    func retrain(_ tools: [String], producer: KafkaProducer) throws {
        let started = Date()
        let snapshot = snapshotURL
        try dataset.snapshot(to: snapshot, withoutHeldOut: settings.review)
        let counts = dataset.counts
        let catalogueFile = try catalogueFile()
        let known = try ToolCatalogue.load(file: catalogueFile)
        // A name the store refuses (stored before names were checked) would name folders outside
        // the checkpoints and fail the publish, ending the run for every tool: skip it.
        let invalid = tools.filter { (try? AdapterStore.validate(tool: $0)) == nil }
        if !invalid.isEmpty {
            logger.error("tool names the adapter store refuses are not trained; their trajectories stay stored",
                         metadata: ["tools": "\(invalid)"])
            metrics.counter("trainer_invalid_tools", labels: [], help: "Due tools skipped because the store refuses their names.")
                .increment(by: Int64(invalid.count))
        }
        holdOff(invalid)
        let valid = tools.filter { !invalid.contains($0) }
        let unknown = valid.filter { !known.contains($0) }
        let trainable = valid.filter(known.contains)
        if !unknown.isEmpty {
            logger.warning("no tool document in the catalogue; the trajectories stay stored and the tool is tried again in \(Self.retryDelay)",
                           metadata: ["tools": "\(unknown.joined(separator: ","))", "catalogue": "\(catalogueFile.path)"])
        }
        holdOff(unknown)
        guard !trainable.isEmpty else { return }
        logger.info("retraining", metadata: ["tools": "\(trainable.joined(separator: ","))", "trajectories": "\(trainable.map { counts[$0] ?? 0 })"])
        var options = OfflineTrainingOptions(data: snapshot, tools: catalogueFile, store: settings.store)
        options.model = settings.model
        options.stages = settings.stages
        options.onlyTools = trainable
        options.adapter = settings.adapter
        options.holdForReview = settings.review
        // A gate trained here goes to a new version directory (workers may be reading the older
        // ones); stage 3 alone uses the newest gate.
        if settings.stages.contains(2) {
            options.gateDirectory = AdapterStore.gatesDirectory(root: settings.store)
                .appendingPathComponent(AdapterStore.newGateVersion(), isDirectory: true)
        } else if let latest = AdapterStore.latestGate(root: settings.store) {
            options.gateDirectory = latest
        }
        options.checkpointDirectory = settings.dataset.appendingPathComponent("checkpoints-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: options.checkpointDirectory!) }
        let result = try train(options)
        var announced = result.published
        if settings.review {
            // Each tool's last version of the run is its candidate; the earlier ones (stage 1
            // before stage 3) stay held without a review, so they are never served.
            let finals = Dictionary(result.published.map { ($0.tool, $0) }, uniquingKeysWith: { _, newer in newer })
            announced = try review(finals.values.sorted { $0.tool < $1.tool }, catalogue: known)
        }
        var updates: [OutgoingMessage] = []
        for v in announced {
            let update = WireAdapterUpdate(announcing: v)
            updates.append(OutgoingMessage(topic: settings.topics.adapters, key: v.tool, value: try update.encode()))
        }
        if settings.stages.contains(2), let directory = result.gateDirectory {
            updates.append(OutgoingMessage(topic: settings.topics.adapters, key: GateDistribution.toolKey,
                                           value: try GateDistribution.update(directory: directory).encode()))
        }
        // Trained and published whatever the send does: a failed announcement waits for the next round.
        announce(updates, producer: producer)
        try dataset.markTrained(trainable)
        metrics.counter("trainer_versions_published", labels: [], help: "Adapter versions published.").increment(by: Int64(result.published.count))
        logger.info("published", metadata: ["versions": "\(result.published.map { "\($0.tool)@\($0.version)" })",
                                             "announced": "\(announced.map { "\($0.tool)@\($0.version)" })",
                                             "seconds": "\(Int(Date().timeIntervalSince(started)))"])
    }

    /// The copy of the dataset the last training read (kept as the record of what it trained on).
    private var snapshotURL: URL { settings.dataset.appendingPathComponent("snapshot.jsonl") }

    /// Runs a training on this trainer's thread budget, its progress in the log every 25 steps.
    private func train(_ options: OfflineTrainingOptions) throws -> OfflineTrainingResult {
        var options = options
        options.threads = settings.threads
        return try OfflineTraining.run(options, log: { [logger] in logger.info("\($0)") }) { [logger] p in
            if p.step == p.totalSteps || p.step % 25 == 0 { logger.info("\(p.line)") }
            return true
        }
    }

    /// How often the retention period is applied.
    static let expiryInterval: Duration = .seconds(60)

    /// Removes every stored record `request` names from the dataset, the feedback join and its
    /// journal (the files rewritten, their set-aside lines included) and the last training
    /// snapshot. Adapters already trained keep what they learned; the next training reads none of it.
    func forget(_ request: WireForgetRequest, join: inout FeedbackJoin, journal: FeedbackJournal) throws {
        let id = request.requestID, source = request.source
        let episodes = try dataset.remove(textMatches: [id, source]) { $0.matches(requestID: id, source: source) }
        let held = join.remove(candidates: { $0.matches(requestID: id, source: source) },
                               feedback: { (!id.isEmpty && $0.requestID == id) || (!source.isEmpty && $0.source == source) })
        try journal.compact(join)
        try JSONLinesRecovery.removeRejected(of: journal.url, containing: [id, source])
        try? FileManager.default.removeItem(at: snapshotURL)
        metrics.counter("trainer_forgotten", labels: [], help: "Stored episodes, candidates and feedback removed by forget requests.")
            .increment(by: Int64(episodes + held))
        logger.notice("forgotten", metadata: [(id.isEmpty ? "source" : "request_id"): "\(request.key)",
                                              "episodes": "\(episodes)", "candidates_and_feedback": "\(held)"])
    }

    /// Applies the retention period: removes the episodes, candidates and waiting feedback older
    /// than `retention` and compacts the journal.
    private func expire(olderThan retention: Duration, join: inout FeedbackJoin, journal: FeedbackJournal) throws {
        let cutoff = Int64(Date().timeIntervalSince1970 * 1000) - Int64(retention.components.seconds * 1000)
        let episodes = try dataset.expire(storedBefore: cutoff)
        let held = join.remove(candidates: { ($0.storedUnixMs ?? .max) < cutoff }, feedback: { $0.createdUnixMs > 0 && $0.createdUnixMs < cutoff })
        if held > 0 { try journal.compact(join) }
        guard episodes + held > 0 else { return }
        // The last training's copy of the dataset holds what expired too.
        if episodes > 0 { try? FileManager.default.removeItem(at: snapshotURL) }
        metrics.counter("trainer_expired", labels: [], help: "Stored episodes, candidates and feedback removed by the retention period.")
            .increment(by: Int64(episodes + held))
        logger.info("retention applied", metadata: ["episodes": "\(episodes)", "candidates_and_feedback": "\(held)"])
    }

    /// How often the trainer looks for adapters trained on an earlier schema.
    static let staleCheckInterval: Duration = .seconds(30)

    /// The catalogue trained for: the file's, else the `tools` topic's (empty when the file
    /// cannot be read, logged).
    private func currentCatalogue() -> ToolCatalogue {
        do {
            return try settings.tools.map { try ToolCatalogue.load(file: $0) } ?? toolsTopic?.catalogue() ?? ToolCatalogue()
        } catch {
            logger.error("could not read the catalogue: \(error)")
            return ToolCatalogue()
        }
    }

    /// The tools of `catalogue` (default: the current one) whose latest servable adapter recorded
    /// another schema than the catalogue's (`AdapterVersion.isStale`).
    public func staleTools(in given: ToolCatalogue? = nil) -> [String] {
        let catalogue = given ?? currentCatalogue()
        do {
            let store = try AdapterStore(root: settings.store)
            return try catalogue.tools.filter { spec in try store.latest(tool: spec.name)?.isStale(for: spec) ?? false }.map(\.name)
        } catch {
            logger.error("could not check the adapters' schemas: \(error)")
            return []
        }
    }

    /// Retrains `tools`, whose schemas changed, on examples synthesized from their new schemas
    /// (their stored trajectories call the old ones), stage 1 as a first start does, and announces
    /// the versions (not held for review: the serving version cannot be served at all).
    func retrainChangedSchemas(_ tools: [String], producer: KafkaProducer) throws {
        let started = Date()
        let catalogueFile = try catalogueFile()
        let catalogue = try ToolCatalogue.load(file: catalogueFile)
        logger.notice("retraining adapters for their tools' new schemas", metadata: ["tools": "\(tools.joined(separator: ","))"])
        let work = settings.dataset.appendingPathComponent("schema-retraining", isDirectory: true)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        var policy = FirstStartTraining(catalogue: catalogue, catalogueFile: catalogueFile, store: settings.store, work: work)
        policy.model = settings.model
        var options = try policy.options(for: FirstStartTraining.Plan(tools: tools, stale: tools, gateMissing: false))
        options.stages = [1]
        options.adapter = settings.adapter
        options.checkpointDirectory = work.appendingPathComponent("checkpoints-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: options.checkpointDirectory!) }
        let result = try train(options)
        let updates = try result.published.map { v in
            OutgoingMessage(topic: settings.topics.adapters, key: v.tool, value: try WireAdapterUpdate(announcing: v).encode())
        }
        announce(updates, producer: producer)
        metrics.counter("trainer_versions_published", labels: [], help: "Adapter versions published.").increment(by: Int64(result.published.count))
        logger.notice("retrained for the new schemas", metadata: ["versions": "\(result.published.map { "\($0.tool)@\($0.version)" })",
                                                                  "seconds": "\(Int(Date().timeIntervalSince(started)))"])
    }

    /// Scores each candidate and the serving version of its tool on the tool's held-out steps,
    /// records the decision in the store, and returns the candidates promoted.
    private func review(_ candidates: [AdapterVersion], catalogue: ToolCatalogue) throws -> [AdapterVersion] {
        guard !candidates.isEmpty else { return [] }
        let store = try AdapterStore(root: settings.store)
        let lm = try LanguageModel.load(path: settings.model)
        let scorer = try HeldOutScorer(model: lm, catalogue: catalogue, threads: settings.threads)
        var promoted = [AdapterVersion]()
        for v in candidates {
            let steps = HeldOutSlice.steps(try dataset.heldOut(tool: v.tool), tool: v.tool)
            func scores(_ entry: AdapterVersion) throws -> [StepScore] {
                let adapter = try store.load(tool: entry.tool, version: entry.version, expectedSHA256: entry.sha256, config: lm.model.config)
                return try scorer.score(adapter, tool: entry.tool, steps: steps)
            }
            let mine = try scores(v)
            let candidate = HeldOutScore(mine)
            var serving: (version: String, score: HeldOutScore)?
            var established: (candidate: HeldOutScore, serving: HeldOutScore)?
            if let current = try store.latest(tool: v.tool) {
                let theirs = try scores(current)
                serving = (current.version, HeldOutScore(theirs))
                if let n = try store.review(tool: current.tool, version: current.version)?.heldOutSteps, n > 0 {
                    established = (HeldOutScore(mine.prefix(n)), HeldOutScore(theirs.prefix(n)))
                }
                setAccuracy(tool: v.tool, version: current.version, serving!.score)
            }
            let (decision, reason) = PromotionPolicy.decide(candidate: candidate, serving: serving,
                                                            candidateEstablished: established?.candidate,
                                                            servingEstablished: established?.serving)
            try store.recordReview(AdapterReview(decision: decision, reason: reason, servingVersion: serving?.version, candidate: candidate,
                                                 serving: serving?.score, candidateEstablished: established?.candidate,
                                                 servingEstablished: established?.serving, heldOutSteps: steps.count),
                                   tool: v.tool, version: v.version)
            setAccuracy(tool: v.tool, version: v.version, candidate)
            metrics.counter("trainer_promotions", labels: [("result", decision.rawValue)],
                            help: "Retrained adapter versions by the held-out review's decision.").increment()
            logger.info("\(decision.rawValue) \(v.tool) \(v.version): \(reason)")
            if decision == .promoted { promoted.append(v) }
        }
        return promoted
    }

    private func setAccuracy(tool: String, version: String, _ score: HeldOutScore) {
        metrics.gauge("trainer_heldout_accuracy", labels: [("tool", tool), ("version", version)],
                      help: "Exact-match accuracy of an adapter version on its tool's held-out steps, at its latest scoring.")
            .set(to: score.accuracy)
    }

    private func holdOff(_ tools: [String]) {
        let until = ContinuousClock.now + Self.retryDelay
        heldOff.withLock { table in for tool in tools { table[tool] = until } }
    }

    /// The catalogue file for a training run: `settings.tools`, or the `tools` topic's current
    /// catalogue written to `<dataset>/catalogue.json` (a ToolSpec array).
    private func catalogueFile() throws -> URL {
        if let file = settings.tools { return file }
        let catalogue = toolsTopic?.catalogue() ?? ToolCatalogue([])
        let url = settings.dataset.appendingPathComponent("catalogue.json")
        try catalogue.save(to: url)
        return url
    }

    /// The training form of a wire trajectory; the tools its steps call must have valid names
    /// (they name the tool's checkpoints and store folder when it trains).
    static func trajectory(_ w: WireTrajectory) throws -> Trajectory {
        let steps = try w.steps.enumerated().map { k, step in
            for (j, call) in step.calls.enumerated() { try requireValidToolName(call.name, field: "steps[\(k)].calls[\(j)].name") }
            return try Step(wire: step, field: "steps[\(k)]")
        }
        let outcome: TrajectoryOutcome = switch w.outcome {
        case .solved: .solved
        case .unsolved: .unsolved
        default: .unknown
        }
        var t = Trajectory(id: w.id, query: w.query, candidateTools: w.candidateTools, steps: steps, outcome: outcome, source: w.source)
        t.requestSource = w.requestSource
        return t
    }
}
