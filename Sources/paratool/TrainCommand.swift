// `paratool train`: the training stages. `--offline` trains from a trajectory file through
// `OfflineTraining.run` (the library does the work; this file parses options and shows progress
// on one updating terminal line). Ctrl-C stops after the current step with a checkpoint.
import ArgumentParser
import Foundation
import LLM
import Kafka
import ParaTool
import ParaToolService
import ParaToolTraining
import Tensor

struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train the tools' adapters and the gate (stages 1-3), publishing into an adapter store.",
        discussion: """
            Offline mode (--offline --data FILE --out STORE) reads trajectories (JSON Lines, e.g. from \
            `paratool synth`) and runs the stages chosen with --stages: 1 pre-trains each tool's adapter alone \
            on its document-aware and document-free instances; 2 trains the gate (CE - λ·entropy over the \
            candidates, encoder frozen); 3 fine-tunes the candidates' adapters together under the frozen gate. \
            Each finished tool is published as a new version in STORE; the gate goes to STORE/.gate unless \
            --gate says otherwise. Stage 1 jobs are independent: run several processes with disjoint \
            --only-tools (and --stages 1, each with its own --metrics) to train tools in parallel.

            Every job checkpoints (adapter tensors, AdamW moments, step, seed) into STORE/.checkpoints; \
            --resume continues each job from its latest checkpoint with results identical to an uninterrupted \
            run, and skips jobs already published. Progress (step, loss, tokens/s, ETA) is one updating line on \
            a terminal and a JSON line per step in --metrics.

            Service mode (--brokers …) is the online trainer: it consumes <prefix>trajectories in the consumer \
            group --group (trajectories are keyed by tool, so several trainers split the tools), appends the \
            solved ones to the durable dataset in --dataset (fsync before the offsets are committed), retrains a \
            tool every --retrain-every new trajectories of it (or every --schedule-minutes), publishes the new \
            versions into --adapter-store and announces each on <prefix>adapters, where workers verify and \
            hot-swap it. The tool documents come from --tools FILE or, without it, from <prefix>tools (the \
            catalogue the workers follow). It serves /metrics and /healthz on --metrics-port. Settings also come \
            from PARATOOL_<FLAG> and --config.
            """)

    @Flag(help: "Train from a trajectory file (--data) instead of consuming the trajectories topic (--brokers).")
    var offline = false

    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var toolLimits: ToolLimitOptions
    @OptionGroup var trainerLimits: TrainerLimitOptions

    @Option(help: ArgumentHelp("Service mode: the trainer's durable dataset directory (env PARATOOL_DATASET).", valueName: "dir"))
    var dataset: String?

    @Option(help: ArgumentHelp("Service mode: the adapter store to publish into (env PARATOOL_ADAPTER_STORE).", valueName: "dir"))
    var adapterStore: String?

    @Option(help: ArgumentHelp("Service mode: consumer group of the trainers (default paratool-trainers).", valueName: "id"))
    var group: String?

    @Option(help: ArgumentHelp("Service mode: retrain a tool after this many new trajectories of it (default 50).", valueName: "k"))
    var retrainEvery: Int?

    @Option(help: ArgumentHelp("Service mode: also retrain every tool with new data at this interval.", valueName: "minutes"))
    var scheduleMinutes: Int?

    @Flag(help: "Service mode: also store served trajectories whose outcome is unknown (default: solved only).")
    var acceptUnlabelled = false

    @Flag(help: "Service mode: announce every retrained version as soon as it is trained, without scoring it against the serving version on the held-out slice first (default: only versions that are not worse are announced; the others stay in the store, rejected, with the reason).")
    var noReview = false

    @Option(help: ArgumentHelp("Service mode: port of /metrics and /healthz (default 9465; 0 disables).", valueName: "port"))
    var metricsPort: Int?

    @Option(help: ArgumentHelp("Service mode: IPv4 address /metrics and /healthz listen on (default 127.0.0.1, this host only; 0.0.0.0 for every interface).", valueName: "address"))
    var metricsHost: String?

    @Option(help: ArgumentHelp("Service mode: log level (default info).", valueName: "level"))
    var logLevel: String?

    @Option(help: ArgumentHelp("Trajectories, JSON Lines (paratool synth writes them).", valueName: "file"))
    var data: String?

    @Option(help: ArgumentHelp("The adapter store to publish into (created if missing).", valueName: "store"))
    var out: String?

    @Option(help: ArgumentHelp("Tool catalogue: BFCL function list or questions (JSON/JSONL), OpenAI tools array, or ToolSpec array.", valueName: "file"))
    var tools: String?

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("Stages to run, comma-separated: 1 (per-tool pre-training), 2 (gate), 3 (joint fine-tuning).", valueName: "list"))
    var stages = "1,2,3"

    @Option(help: ArgumentHelp("Stage 1 trains only these tools, comma-separated (default: every tool of the catalogue).", valueName: "a,b"))
    var onlyTools: String?

    @Option(help: "Optimisation steps per tool in stage 1 (and of stage 3 unless --joint-steps).")
    var steps = 100

    @Option(help: "Steps of stage 3 (default: --steps).")
    var jointSteps: Int?

    @Option(help: "Steps of stage 2 (the gate).")
    var gateSteps = 200

    @Option(help: "Sequences per adapter step (gradients averaged).")
    var batchSize = 1

    @Option(help: "Stage 1 trains this many tools together, their batches in one pass per step (faster on sequences under ~100 tokens; each tool's result is the same as alone).")
    var toolsPerStep = 1

    @Option(help: "Contexts per gate step.")
    var gateBatchSize = 16

    @Option(help: "LoRA rank of new adapters.")
    var rank = 16

    @Option(help: "LoRA alpha of new adapters (default: 4 × rank, the paper's 64 for rank 16).")
    var alpha: Float?

    @Option(help: "Peak learning rate of the adapters (linear warm-up, then cosine decay to a tenth).")
    var lr: Float = 5e-4

    @Option(help: "Warm-up steps of the adapters' learning rate.")
    var warmup = 5

    @Option(help: "Peak learning rate of the gate.")
    var gateLr: Float = 1e-3

    @Option(help: "λ of the gate's loss CE - λ·entropy.")
    var entropyWeight: Float = 0.2

    @Option(help: "Pooling of the gate's encoder: mean or last.")
    var pooling = Pooling.mean.rawValue

    @Option(help: ArgumentHelp("Decoder layers the gate's encoder runs before pooling (default: four fifths of the model's).", valueName: "n"))
    var encoderLayers: Int?

    @Option(help: "Leave out sequences (prompt + target) longer than this many tokens.")
    var maxTokens = 1024

    @Option(help: "Seed of the shared adapter initialisation, the gate and the data order.")
    var seed: UInt64 = 0

    @Option(help: "Save a checkpoint every N steps (0: only at the end of each job or on a stop).")
    var checkpointEvery = 25

    @Flag(help: "Continue each job from its latest checkpoint; skip jobs already published.")
    var resume = false

    @Option(help: ArgumentHelp("Checkpoint directory (default: STORE/.checkpoints).", valueName: "dir"))
    var checkpoints: String?

    @Option(help: ArgumentHelp("Where the trained gate is written and stage 3 reads it (default: STORE/.gate).", valueName: "dir"))
    var gate: String?

    @Option(help: ArgumentHelp("Append one JSON line per step (stage, job, step, loss, lr, grad_norm, tokens, tokens_per_s, eta_s) to this file.", valueName: "file"))
    var metrics: String?

    @Flag(help: "Also train the Global Parameterization baseline: one shared adapter on the same data (published as _global).")
    var global = false

    @Flag(help: "Write each parallel answer of several tools in every rotation of its tools for stage 1's parts and the gate's next-call examples (default: the order the request names its tasks in). Measured worse on the demo: the adapters stopped ending answers (docs/results.md).")
    var rotateCallOrders = false

    @Flag(help: "Stage 2 also learns where answers end (the no-call candidate after each step's last call), for serving with --answer-end step (default: the model ends answers, and the gate learns the next call only).")
    var gateLearnsEnd = false

    @Option(help: "Steps of the global adapter (default: --steps × the stage-1 tools).")
    var globalSteps: Int?

    @Option(help: ArgumentHelp("Where stage-1 adapters start: random (the shared random initialisation) or global (the global adapter, trained first when missing).", valueName: "start"))
    var `init` = "random"

    @Option(help: ArgumentHelp("Compute threads of the training (default: all cores).", valueName: "n"))
    var threads: Int?

    @Option(help: ArgumentHelp("Evaluation queries that must not be in the training data (BFCL question file, or one query a line); the run refuses to start if one is. Repeatable.", valueName: "file"))
    var heldOut: [String] = []

    var serviceMode: Bool { !offline }

    func validate() throws {
        if offline {
            guard data != nil, out != nil, tools != nil else { throw ValidationError("--offline needs --data FILE, --out STORE and --tools FILE") }
        } else if data != nil || out != nil {
            throw ValidationError("--data and --out belong to --offline; the service mode (--brokers) uses --dataset and --adapter-store")
        }
        if steps < 1 || gateSteps < 1 || (jointSteps ?? 1) < 1 { throw ValidationError("step counts must be at least 1") }
        if batchSize < 1 || gateBatchSize < 1 || rank < 1 || maxTokens < 2 || toolsPerStep < 1 {
            throw ValidationError("--batch-size, --gate-batch-size, --rank, --max-tokens and --tools-per-step must be positive")
        }
        _ = try stageSet()
        if Pooling(rawValue: pooling) == nil { throw ValidationError("--pooling must be mean or last") }
        if let encoderLayers, encoderLayers < 1 { throw ValidationError("--encoder-layers must be at least 1") }
        if let globalSteps, globalSteps < 1 { throw ValidationError("--global-steps must be at least 1") }
        guard ["random", "global"].contains(`init`) else { throw ValidationError("--init must be random or global") }
    }

    /// The adapter settings these options give (stage 1 and 3, the online trainer).
    func adapterConfig() -> AdapterTrainingConfig {
        var config = AdapterTrainingConfig()
        config.steps = steps
        config.batchSize = batchSize
        config.rank = rank
        config.alpha = alpha ?? Float(4 * rank)
        config.optimizer.learningRate = lr
        config.optimizer.warmupSteps = warmup
        config.seed = seed
        config.maxTokens = maxTokens
        config.checkpointEvery = checkpointEvery
        return config
    }

    func stageSet() throws -> Set<Int> {
        let parts = stages.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let values = parts.compactMap { Int($0) }
        guard !values.isEmpty, values.count == parts.count, values.allSatisfy({ (1...3).contains($0) }) else {
            throw ValidationError("--stages takes a comma-separated list of 1, 2 and 3, got '\(stages)'")
        }
        return Set(values)
    }

    func run() async throws {
        if serviceMode { return try await runService() }
        // Training computes for minutes to hours: on a thread of its own, not a cooperative one.
        let command = self
        try await ServiceThread(name: "paratool-train").run { try command.runOffline() }
    }

    /// `--offline`: the stages through `OfflineTraining.run`, with progress on standard error.
    func runOffline() throws {
        var options = OfflineTrainingOptions(data: URL(fileURLWithPath: data!), tools: URL(fileURLWithPath: tools!),
                                             store: URL(fileURLWithPath: out!))
        options.model = modelOptions.model
        options.threads = try UpCommand.budget(threads, flag: "--threads")
        options.gateDirectory = gate.map { URL(fileURLWithPath: $0) }
        options.checkpointDirectory = checkpoints.map { URL(fileURLWithPath: $0) }
        options.stages = try stageSet()
        options.onlyTools = onlyTools?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } ?? []
        options.adapter = adapterConfig()
        options.toolsPerStep = toolsPerStep
        options.jointSteps = jointSteps
        options.gate.steps = gateSteps
        options.gate.batchSize = gateBatchSize
        options.gate.optimizer.learningRate = gateLr
        options.gate.entropyWeight = entropyWeight
        options.gate.seed = seed
        options.gate.checkpointEvery = checkpointEvery
        options.pooling = Pooling(rawValue: pooling)!
        options.encoderLayers = encoderLayers
        options.globalBaseline = global
        options.rotateCallOrders = rotateCallOrders
        options.gateLearnsEnd = gateLearnsEnd
        options.globalSteps = globalSteps
        options.startFromGlobal = `init` == "global"
        options.resume = resume
        options.metrics = metrics.map { URL(fileURLWithPath: $0) }
        options.evaluationQueries = try heldOut.flatMap { try HeldOut.queries(file: URL(fileURLWithPath: $0)) }

        let display = ProgressLine()
        let stop = StopRequest()
        let start = Date()
        let result = try OfflineTraining.run(options, log: { display.note($0) }) { progress in
            display.show(progress)
            return !stop.requested
        }
        if result.stopped {
            display.note("stopped: checkpoints saved in \(options.resolvedCheckpointDirectory.path); continue with --resume")
            throw ExitCode(130)
        }
        let timing = result.seconds.map { "\($0.stage) " + TrainingProgress.duration($0.seconds) }.joined(separator: ", ")
        display.note("done in \(TrainingProgress.duration(Date().timeIntervalSince(start)))"
                     + (timing.isEmpty ? "" : " (\(timing))") + ": \(result.published.count) adapter versions in \(options.store.path)"
                     + (result.gateDirectory.map { ", gate in \($0.path)" } ?? ""))
    }
}

/// Progress on standard error: one line rewritten in place on a terminal; otherwise a line at
/// every twentieth of a job and at its end.
final class ProgressLine {
    private let isTerminal = isatty(2) == 1
    private var open = false

    func show(_ p: TrainingProgress) {
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + p.line).utf8))
            open = p.step < p.totalSteps
            if !open { FileHandle.standardError.write(Data("\n".utf8)) }
        } else if p.step == p.totalSteps || p.step % max(1, p.totalSteps / 20) == 0 {
            printError(p.line)
        }
    }

    func note(_ text: String) {
        if open { FileHandle.standardError.write(Data("\n".utf8)); open = false }
        printError(text)
    }
}

/// Set by SIGINT: the run stops after the current step, with a checkpoint.
final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    private let source: DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            self.lock.withLock { self.flag = true }
            printError("\nstopping after this step (a second Ctrl-C ends at once)")
            signal(SIGINT, SIG_DFL)
        }
        source.resume()
    }

    var requested: Bool { lock.withLock { flag } }

    /// Stops listening (so a later handler, e.g. a server's, owns SIGINT alone).
    deinit { source.cancel() }
}

extension Train {
    /// The online trainer (`--brokers`).
    func runService() async throws {
        let settings = try kafka.settings()
        let logger = try serviceLogger("paratool.train", level: settings.string("log-level", logLevel))
        let config = try kafka.kafkaConfiguration(settings)
        guard let datasetPath = settings.string("dataset", dataset), let storePath = settings.string("adapter-store", adapterStore) else {
            throw UsageError("the trainer service needs --brokers, --dataset DIR and --adapter-store DIR (or their PARATOOL_* variables)")
        }
        var trainer = TrainerSettings(dataset: URL(fileURLWithPath: datasetPath), store: URL(fileURLWithPath: storePath),
                                      tools: settings.string("tools", tools).map { URL(fileURLWithPath: $0) })
        trainer.topics = kafka.topics(settings)
        trainer.groupID = settings.string("group", group) ?? trainer.groupID
        trainer.model = settings.string("model", modelOptions.model)
        trainer.threads = try UpCommand.budget(settings.int("threads", threads), flag: "--threads")
        trainer.retrainEvery = try settings.int("retrain-every", retrainEvery) ?? trainer.retrainEvery
        trainer.schedule = try settings.int("schedule-minutes", scheduleMinutes).map { .seconds(60 * $0) }
        trainer.stages = try stageSet()
        trainer.acceptUnlabelled = try settings.bool("accept-unlabelled", acceptUnlabelled)
        trainer.review = !(try settings.bool("no-review", noReview))
        trainer.adapter = adapterConfig()
        trainer.toolLimits = try toolLimits.limits(settings)
        try trainerLimits.apply(to: &trainer, settings)
        guard trainer.retrainEvery >= 1 else { throw UsageError("--retrain-every must be at least 1") }
        let port = try settings.int("metrics-port", metricsPort) ?? 9465
        let metrics = ServiceMetrics()
        let stack = try TrainerStack(settings: trainer, kafka: config, metrics: metrics, logger: logger)
        let host = settings.string("metrics-host", metricsHost) ?? HealthServer.defaultHost
        let health = port > 0
            ? try HealthServer(host: host, port: UInt16(port), metrics: metrics, isReady: { stack.trainer.isReady }, logger: logger) : nil
        // A training run takes minutes: let it finish and publish before the group gives up on it.
        try await ServiceStack.run((health.map { [$0] } ?? []) + stack.services, shutdownTimeout: .seconds(30 * 60), logger: logger)
    }
}
