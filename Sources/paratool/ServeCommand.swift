// `paratool serve`: one stateless worker of the consumer group on `requests` (docs/design.md §3, §5).
import ArgumentParser
import Foundation
import Kafka
import LLM
import Logging
import ParaTool
import ParaToolService
import Tensor
import Wire

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a worker: consume requests, answer with tool calls through the gated adapter mixture.",
        discussion: """
            Consumes <prefix>requests in a consumer group, runs up to --batch-size requests as one batch, and \
            produces an Action to <prefix>actions, FlopsTelemetry to <prefix>telemetry and the served request \
            as a Trajectory candidate to <prefix>trajectories. Offsets are committed only after those are \
            acknowledged (at-least-once), or inside a Kafka transaction with --exactly-once. Undecodable or \
            invalid requests, unknown tools, requests past their deadline and requests over a limit (prompt \
            tokens, message size, estimated compute) are answered with an error Action and their original bytes \
            go to <prefix>dlq with the reason in headers, before any compute. Batches are formed so their \
            estimated compute stays within a quarter of max.poll.interval.ms: short requests first, long ones alone. Adapter versions announced on \
            <prefix>adapters are verified against the store's sha256 and swapped without stopping; tools come \
            from --tools or the compacted <prefix>tools topic. SIGTERM or Ctrl-C: stop polling, finish the \
            batch, commit, leave the group, exit 0.
            Every setting is also read from the environment as PARATOOL_<FLAG> (e.g. PARATOOL_BATCH_SIZE) and \
            from --config; librdkafka properties from -X and PARATOOL_KAFKA_<KEY>.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var toolLimits: ToolLimitOptions

    @Option(help: ArgumentHelp("Consumer group of the workers (default paratool-workers).", valueName: "id"))
    var group: String?

    @Option(help: ArgumentHelp("Tool catalogue file (BFCL, OpenAI tools or ToolSpec JSON). Default: the compacted tools topic.", valueName: "file"))
    var tools: String?

    @Option(help: ArgumentHelp("Gate directory (gate_config.json + gate.safetensors). Default: the newest gate in the adapter store (<store>/.gates/<version>/); without any, a fresh gate (not meaningful until trained) is used, with a warning, unless --document-fallback.", valueName: "dir"))
    var gate: String?

    @Flag(help: "Serve a request with its tools' documents in the prompt (Context+Docs) while one of its tools has no adapter yet or no gate is trained; the Action's served_format says which format answered.")
    var documentFallback = false

    @Option(help: ArgumentHelp("Adapter store directory (<tool>/<version>/). Without one, tools have no adapters.", valueName: "dir"))
    var adapterStore: String?

    @Option(help: ArgumentHelp("Most requests per batch (default 8).", valueName: "n"))
    var batchSize: Int?

    @Option(help: ArgumentHelp("After the first request, wait this long for more to fill the batch (default 0: batch what has already arrived).", valueName: "ms"))
    var batchWaitMs: Int?

    @Flag(help: "Exactly-once delivery with Kafka transactions (needs a broker with transaction support).")
    var exactlyOnce = false

    @Option(help: ArgumentHelp("Transactional id for --exactly-once, unique per worker instance (default paratool-worker-<worker-id>).", valueName: "id"))
    var transactionalId: String?

    @Option(help: ArgumentHelp("Port of GET /metrics and GET /healthz (default 9464; 0 disables).", valueName: "port"))
    var metricsPort: Int?

    @Option(help: ArgumentHelp("IPv4 address GET /metrics and GET /healthz listen on (default 127.0.0.1, this host only; 0.0.0.0 for every interface, e.g. in a container scraped from outside).", valueName: "address"))
    var metricsHost: String?

    @Option(help: ArgumentHelp("Worker id in telemetry and dead-letter headers (default <hostname>-<pid>).", valueName: "id"))
    var workerId: String?

    @Option(help: ArgumentHelp("Compute threads of this worker (default: all cores).", valueName: "n"))
    var threads: Int?

    @Option(help: ArgumentHelp("Memory for stacked adapter sets, which speed up the prefill of requests whose tools were seen recently (default 128; 0 turns stacking off). Four rank-16 adapters on SmolLM2-135M take ~49 MB.", valueName: "mb"))
    var stackCacheMb: Int?

    @Flag(help: "Decode without the call-grammar constraint (ablation): answers may then name tools, keys or types no candidate has.")
    var unconstrained = false

    @Option(help: ArgumentHelp("Generation budget when a request sets none (default 96).", valueName: "n"))
    var maxNewTokens: Int?

    @Option(help: ArgumentHelp("Most prompt tokens of a request; longer ones are refused before any compute with the code prompt.too_long and go to the dlq (default: the model's context less one).", valueName: "n"))
    var maxPromptTokens: Int?

    @Option(help: ArgumentHelp("Largest request message accepted, in bytes; decoding one also allocates at most this much for protobuf-c (default 4194304).", valueName: "bytes"))
    var maxMessageBytes: Int?

    @Option(help: ArgumentHelp("Most estimated compute of one batch (default: a quarter of the consumer's max.poll.interval.ms, set with -X; 300000 unless set). Requests estimated over it alone are refused with request.too_costly; long ones run alone after the short ones.", valueName: "ms"))
    var batchBudgetMs: Int?

    @Option(help: ArgumentHelp("Method when a request names none: \(SelectionMode.allCases.map(\.rawValue).joined(separator: ", ")) (default paratool).", valueName: "mode"))
    var mode: String?

    @Option(help: ArgumentHelp("What an answer may be when a request leaves tool_choice empty: auto (calls or a text answer), required (at least one call) or none (text only) (default auto).", valueName: "choice"))
    var toolChoice: String?

    @Option(help: ArgumentHelp("Memory for the adapters a worker holds; past it the least recently used are dropped and reloaded from the store when asked again (default 1024; 0 holds only the running batch's).", valueName: "mb"))
    var adapterCacheMb: Int?

    @Option(help: ArgumentHelp("With more candidates than this (e.g. a request over the whole catalogue), the gate's MLP scores only the N whose tool vectors are most similar to the request; the rest weigh 0 (default 64; 0 scores all).", valueName: "n"))
    var selectionShortlist: Int?

    @Option(help: ArgumentHelp("Reply topics a request may name in its kafka_replyTopic header must start with this; a request naming another is refused with reply.refused (default <prefix>replies.).", valueName: "prefix"))
    var replyTopicPrefix: String?

    @Flag(help: "Answer a request that names a reply topic only there, not also on the shared actions and telemetry topics (clients that read those then miss it).")
    var noSharedReplies = false

    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical (default info).", valueName: "level"))
    var logLevel: String?

    func run() async throws {
        let settings = try kafka.settings()
        let logger = try serviceLogger("paratool.serve", level: settings.string("log-level", logLevel))
        let kafkaConfig = try kafka.kafkaConfiguration(settings)
        var worker = WorkerSettings(
            workerID: settings.string("worker-id", workerId) ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())",
            modelID: "")
        worker.topics = kafka.topics(settings)
        if let n = try settings.int("threads", threads) {
            guard n >= 1 else { throw UsageError("--threads must be at least 1") }
            worker.threads = ComputeThreads(n)
        }
        worker.groupID = settings.string("group", group) ?? worker.groupID
        worker.batchSize = try settings.int("batch-size", batchSize) ?? worker.batchSize
        worker.batchWait = .milliseconds(try settings.int("batch-wait-ms", batchWaitMs) ?? 0)
        worker.exactlyOnce = try settings.bool("exactly-once", exactlyOnce)
        worker.transactionalID = settings.string("transactional-id", transactionalId)
        worker.defaultMaxNewTokens = try settings.int("max-new-tokens", maxNewTokens) ?? worker.defaultMaxNewTokens
        if let n = try settings.int("max-prompt-tokens", maxPromptTokens) {
            guard n >= 1 else { throw UsageError("--max-prompt-tokens must be at least 1") }
            worker.maxPromptTokens = n
        }
        if let n = try settings.int("max-message-bytes", maxMessageBytes) {
            guard n >= 1 else { throw UsageError("--max-message-bytes must be at least 1") }
            worker.limits = WireLimits(maxMessageSize: n)
        }
        if let n = try settings.int("batch-budget-ms", batchBudgetMs) {
            guard n >= 1 else { throw UsageError("--batch-budget-ms must be at least 1") }
            worker.batchBudget = .milliseconds(n)
        }
        if let m = settings.string("mode", mode) {
            guard let parsed = SelectionMode(rawValue: m) else { throw UsageError("--mode must be one of \(SelectionMode.allCases.map(\.rawValue).joined(separator: ", "))") }
            worker.defaultMode = parsed
        }
        if let c = settings.string("tool-choice", toolChoice) {
            let parsed = ToolChoice(parsing: c)
            guard [.auto, .required, .none].contains(parsed) else { throw UsageError("--tool-choice must be auto, required or none") }
            worker.defaultToolChoice = parsed
        }
        worker.toolLimits = try toolLimits.limits(settings)
        if let prefix = settings.string("reply-topic-prefix", replyTopicPrefix) {
            guard !prefix.isEmpty else { throw UsageError("--reply-topic-prefix must not be empty") }
            worker.replyTopicPrefix = prefix
        }
        worker.sharedReplies = !(try settings.bool("no-shared-replies", noSharedReplies))
        if let n = try settings.int("selection-shortlist", selectionShortlist) {
            guard n >= 0 else { throw UsageError("--selection-shortlist must be 0 or more") }
            worker.selectionShortlist = n
        }
        if let mb = try settings.int("adapter-cache-mb", adapterCacheMb) {
            guard mb >= 0 else { throw UsageError("--adapter-cache-mb must be 0 or more") }
            worker.adapterCacheBytes = mb << 20
        }
        guard worker.batchSize >= 1 else { throw UsageError("--batch-size must be at least 1") }
        let port = try settings.int("metrics-port", metricsPort) ?? 9464
        guard (0...65535).contains(port) else { throw UsageError("--metrics-port must be 0…65535") }

        let stackCacheMB = try settings.int("stack-cache-mb", stackCacheMb) ?? AdapterMixture.defaultStackCacheBytes >> 20
        guard stackCacheMB >= 0 else { throw UsageError("--stack-cache-mb must be 0 or more") }

        let modelPath = settings.string("model", modelOptions.model)
        let fallback = try settings.bool("document-fallback", documentFallback)
        let started = Date()
        let lm = try modelOptions.load(path: modelPath)
        worker.modelID = WorkerStack.modelID(lm)
        logger.info("model loaded", metadata: ["model": "\(worker.modelID)", "seconds": "\(String(format: "%.2f", Date().timeIntervalSince(started)))"])
        let store = try settings.string("adapter-store", adapterStore).map { try AdapterStore(root: URL(fileURLWithPath: $0)) }
        let gateDirectory = settings.string("gate", gate) ?? store.flatMap { AdapterStore.latestGate(root: $0.root)?.path }
        let gateNetwork: GateNetwork? = gateDirectory == nil && fallback ? nil : try loadGate(gateDirectory, for: lm) {
            logger.warning("no --gate and none in the store: using an untrained gate; its weights are not meaningful until trained")
        }
        let catalogue = try settings.string("tools", tools).map { try ToolCatalogue.load(file: URL(fileURLWithPath: $0)) }
        if let catalogue { try ToolLimitOptions.check(catalogue, worker.toolLimits) }
        let stack = try WorkerStack(
            model: lm, settings: worker, kafka: kafkaConfig, catalogue: catalogue, gate: gateNetwork, store: store,
            stackCacheBytes: stackCacheMB << 20, constrained: !(try settings.bool("unconstrained", unconstrained)),
            documentFallback: fallback, logger: logger)
        let host = settings.string("metrics-host", metricsHost) ?? HealthServer.defaultHost
        let health = port > 0
            ? try HealthServer(host: host, port: UInt16(port), metrics: stack.metrics, isReady: { stack.worker.isReady }, logger: logger) : nil
        try await ServiceStack.run((health.map { [$0] } ?? []) + stack.services, logger: logger)
        logger.info("stopped")
    }
}
