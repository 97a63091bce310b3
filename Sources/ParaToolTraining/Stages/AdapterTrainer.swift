// AdapterTrainer: the optimisation loop shared by every stage that trains LoRA adapters — stage 1
// (one tool's adapter alone on its instances), stage 3 (the candidates' adapters together under
// the frozen gate's weights) and the Global Parameterization baseline (one shared adapter). Each
// step averages the gradients of a batch of sequences and updates every adapter that took part,
// each with its own AdamW; checkpoints make runs resumable with bit-identical results. Several
// independent jobs (stage 1's tools) can train in lockstep, their batches sharing each pass.
import Foundation
import LLM
import ParaTool
import Tensor

/// Settings of adapter training.
public struct AdapterTrainingConfig: Sendable, Codable, Equatable {
    /// Optimisation steps of the job (per tool in stage 1).
    public var steps = 100
    /// Sequences per step (gradients averaged).
    public var batchSize = 1
    /// LoRA rank of new adapters (paper: 16).
    public var rank = 16
    /// LoRA alpha of new adapters (paper: 64); the branch scale is alpha / rank.
    public var alpha: Float = 64
    /// The optimiser; `totalSteps` is set to `steps` by the trainer.
    public var optimizer: AdamWConfig
    /// Seed of the shared adapter initialisation and of the data order.
    public var seed: UInt64 = 0
    /// Sequences longer than this (prompt + target) are left out.
    public var maxTokens = 1024
    /// Save a checkpoint every this many steps (0: only at the end or on a stop).
    public var checkpointEvery = 25
    /// The adapter the job's adapters start from when not the shared random initialisation
    /// (its name, version and hash), so checkpoints of differently started jobs never mix.
    public var startsFrom: String?

    /// The defaults: 100 steps of one sequence, rank 16, alpha 64, learning rate 5e-4 after 5
    /// warm-up steps, checkpoints every 25 steps.
    public init() {
        optimizer = AdamWConfig()
        optimizer.learningRate = 5e-4
        optimizer.warmupSteps = 5
    }
}

/// One training sequence and the adapter mixture that should produce its target.
public struct WeightedExample: Sendable, Equatable {
    /// Prompt followed by target tokens.
    public var ids: [Int]
    /// How many tokens at the end are the target (the loss is their mean NLL).
    public var targets: Int
    /// The adapters (by name) and their weights; zero weights are dropped.
    public var weights: [Weight]

    /// An adapter's weight in the mixture.
    public struct Weight: Sendable, Equatable {
        /// The adapter's name.
        public var tool: String
        /// Its weight w in y = Wx + Σ w·(α/r)·B(Ax).
        public var weight: Float
        /// A weight.
        public init(tool: String, weight: Float) {
            self.tool = tool
            self.weight = weight
        }
    }

    /// An example.
    public init(ids: [Int], targets: Int, weights: [Weight]) {
        self.ids = ids
        self.targets = targets
        self.weights = weights
    }

    /// A training instance with one adapter at weight 1 (stage 1, global baseline).
    public init(_ instance: TrainingInstance, adapter: String) {
        self.init(ids: instance.prompt + instance.target, targets: instance.target.count, weights: [Weight(tool: adapter, weight: 1)])
    }
}

/// One job of `AdapterTrainer.train(stage:jobs:progress:)`: adapters (owned buffers, updated in
/// place) and the examples they train on.
public struct AdapterJob {
    /// The job's name in checkpoints and progress reports (stage 1: the tool).
    public var job: String
    /// The adapters the job trains.
    public var adapters: [ToolAdapter]
    /// Its examples; weights naming adapters not in `adapters` are ignored.
    public var examples: [WeightedExample]

    /// A job.
    public init(job: String, adapters: [ToolAdapter], examples: [WeightedExample]) {
        self.job = job
        self.adapters = adapters
        self.examples = examples
    }
}

/// Trains adapters in place.
public final class AdapterTrainer {
    /// The frozen base model.
    public let model: LlamaModel
    /// The settings.
    public let config: AdapterTrainingConfig
    /// Where checkpoints go (nil: none).
    public var checkpoints: CheckpointDirectory?
    /// Continue from the job's latest checkpoint when there is one.
    public var resume = false
    /// Rows (tokens) of one forward and backward pass: a step's sequences are run in passes of at
    /// most this many rows (a longer sequence has a pass of its own). Bounds the stored
    /// activations (~0.7 MB per row on SmolLM2-135M); results do not depend on it.
    public var maxRowsPerPass = 2048
    /// After `train`: the adapters that took at least one optimiser step in the job(s).
    public private(set) var updated: Set<String> = []

    /// The threads training computes on.
    public let threads: ComputeThreads
    private lazy var backward = LoRABackward(model: model, threads: threads)

    /// A trainer on `model`, computing on `threads`.
    public init(model: LlamaModel, config: AdapterTrainingConfig, threads: ComputeThreads = .machine) {
        self.model = model
        self.config = config
        self.threads = threads
    }

    /// A new adapter for `tool` with the shared initialisation (every tool starts from the same
    /// A, drawn from the config's seed; B = 0).
    public func initialAdapter(_ tool: String) -> ToolAdapter {
        ToolAdapter.initialized(name: tool, config: model.config, rank: config.rank, alpha: config.alpha, seed: config.seed)
    }

    /// Trains `adapters` (owned buffers, updated in place) on `examples` for `config.steps` steps
    /// as job `job` of `stage`. An example's weights naming adapters not in `adapters` are
    /// ignored; an example with no trainable adapter left is skipped. Returns true when the job
    /// ran to its end, false when `progress` asked to stop (a checkpoint was written).
    @discardableResult
    public func train(stage: String, job: String, adapters: [ToolAdapter], examples: [WeightedExample],
                      progress: ProgressHandler) throws -> Bool {
        try train(stage: stage, jobs: [AdapterJob(job: job, adapters: adapters, examples: examples)], progress: progress)
    }

    /// Trains several independent jobs of `stage` in lockstep: each step runs one batch from
    /// every unfinished job through one forward and backward pass (more work for the threads to
    /// share than one short sequence), then updates each job's adapters with its own optimiser. Each job keeps its own
    /// data order, checkpoints, resume and reports, and its results are those of training it
    /// alone: a sequence's gradients do not depend on what else shares its pass. Returns true
    /// when every job ran to its end, false when `progress` asked to stop (each unfinished job
    /// wrote a checkpoint).
    @discardableResult
    public func train(stage: String, jobs: [AdapterJob], progress: ProgressHandler) throws -> Bool {
        let running = try jobs.map { try RunningJob(stage: stage, job: $0, config: config, checkpoints: checkpoints, resume: resume) }
        defer { updated = Set(running.flatMap { $0.groups.filter { $0.optimizer.step > 0 }.map(\.name) }) }
        var adapters = [ToolAdapter](), gradients = [AdapterGradients]()
        for job in running {
            job.firstAdapter = adapters.count
            adapters += job.adapters
            gradients += job.gradients
        }
        var stopped = false
        while !stopped {
            let active = running.filter { $0.step < config.steps }
            if active.isEmpty { break }
            var sequences = [TrainingSequence](), owners = [Int]()
            for (j, job) in active.enumerated() {
                for g in job.gradients { g.zero() }
                job.stepAdapters = []
                for b in 0..<config.batchSize {
                    let example = job.usable[job.order(job.step * config.batchSize + b)]
                    let parts = example.weights.filter { $0.weight != 0 && job.index[$0.tool] != nil }
                    for p in parts { job.stepAdapters.insert(p.tool) }
                    sequences.append(TrainingSequence(ids: example.ids, targets: example.targets,
                                                      components: parts.map { (job.firstAdapter + job.index[$0.tool]!, $0.weight) },
                                                      lossWeight: 1 / Float(config.batchSize)))
                    owners.append(j)
                }
            }
            var losses = [Float]()
            for pass in passes(sequences) {
                losses += backward.accumulate(Array(sequences[pass]), adapters: adapters, into: gradients)
            }
            var continuing = [RunningJob]()
            for (j, job) in active.enumerated() {
                let mine = owners.indices.filter { owners[$0] == j }
                let outcome = job.update(loss: mine.reduce(0) { $0 + losses[$1] } / Float(config.batchSize),
                                         tokens: mine.reduce(0) { $0 + sequences[$1].ids.count })
                job.step += 1
                if try job.loop.finish(step: job.step, outcome: outcome, groups: job.groups, clock: &job.clock, progress: progress) {
                    continuing.append(job)
                } else {
                    stopped = true
                }
            }
            // A stop asked by one job stops them all: the others checkpoint where they are.
            if stopped {
                for job in continuing where job.step < config.steps { try job.loop.save(job.groups, step: job.step) }
            }
        }
        return running.allSatisfy { $0.step >= config.steps }
    }

    /// Consecutive runs of `sequences` of at most `maxRowsPerPass` rows each.
    private func passes(_ sequences: [TrainingSequence]) -> [Range<Int>] { Self.passes(sequences, maxRows: maxRowsPerPass) }

    /// Consecutive runs of `sequences` of at most `maxRows` rows each (a longer sequence has a run of its own).
    static func passes(_ sequences: [TrainingSequence], maxRows: Int) -> [Range<Int>] {
        var out = [Range<Int>](), start = 0, rows = 0
        for (i, s) in sequences.enumerated() {
            if i > start && rows + s.ids.count > maxRows {
                out.append(start..<i)
                start = i
                rows = 0
            }
            rows += s.ids.count
        }
        if start < sequences.count { out.append(start..<sequences.count) }
        return out
    }

    /// A job's state while it trains.
    private final class RunningJob {
        let loop: JobLoop
        let adapters: [ToolAdapter]
        let index: [String: Int]
        let groups: [ParameterGroup]
        let gradients: [AdapterGradients]
        let usable: [WeightedExample]
        let order: (Int) -> Int
        var step: Int
        var clock: StepClock
        /// Where the job's adapters start in the pass's adapter list.
        var firstAdapter = 0
        /// The adapters the current step's examples use.
        var stepAdapters = Set<String>()

        init(stage: String, job: AdapterJob, config: AdapterTrainingConfig, checkpoints: CheckpointDirectory?, resume: Bool) throws {
            adapters = job.adapters
            index = Dictionary(job.adapters.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
            let index = self.index
            usable = job.examples.filter { e in e.ids.count <= config.maxTokens && e.weights.contains { $0.weight != 0 && index[$0.tool] != nil } }
            guard !usable.isEmpty else { throw ToolFormatError("\(stage) \(job.job): no training sequences") }
            var opt = config.optimizer
            opt.totalSteps = config.steps
            groups = job.adapters.map { ParameterGroup(name: $0.name, parameters: $0.parameterBuffers, optimizer: AdamW(parameters: $0.parameterBuffers, config: opt)) }
            gradients = job.adapters.map { AdapterGradients(zerosLike: $0) }
            loop = JobLoop(stage: stage, job: job.job, totalSteps: config.steps, seed: config.seed,
                           fingerprint: AdapterTrainer.fingerprint(stage: stage, job: job.job, config: config,
                                                                   adapters: job.adapters.map(\.name), examples: usable),
                           checkpointEvery: config.checkpointEvery, checkpoints: checkpoints, resume: resume)
            step = try loop.restore(groups)?.step ?? 0
            clock = StepClock(firstStep: step)
            order = JobLoop.order(seed: config.seed, job: job.job, count: usable.count)
        }

        /// Updates, in name order, every adapter the step used with its accumulated gradients.
        func update(loss: Float, tokens: Int) -> StepOutcome {
            var norm: Float = 0, lr: Float = 0
            for name in stepAdapters.sorted() {
                let k = index[name]!
                let optimizer = groups[k].optimizer
                norm = max(norm, optimizer.update(gradients: gradients[k].buffers))
                lr = optimizer.learningRate(at: optimizer.step)
            }
            return StepOutcome(loss: loss, tokens: tokens, learningRate: lr, gradientNorm: norm)
        }
    }

    /// SHA-1 over the job's identity, settings, adapter names and every example.
    static func fingerprint(stage: String, job: String, config: AdapterTrainingConfig, adapters: [String],
                            examples: [WeightedExample]) -> String {
        var text = "\(stage)\n\(job)\n\(adapters.joined(separator: ","))\n"
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        text += String(decoding: (try? encoder.encode(config)) ?? Data(), as: UTF8.self) + "\n"
        for e in examples {
            text += e.ids.map(String.init).joined(separator: ",") + "|\(e.targets)|"
            text += e.weights.map { "\($0.tool)=\($0.weight.bitPattern)" }.joined(separator: ",") + "\n"
        }
        return SHA1.hex(text)
    }
}
