// AdapterTrainer: the optimisation loop shared by every stage that trains LoRA adapters — stage 1
// (one tool's adapter alone on its instances), stage 3 (the candidates' adapters together under
// the frozen gate's weights) and the Global Parameterization baseline (one shared adapter). Each
// step averages the gradients of a batch of sequences and updates every adapter that took part,
// each with its own AdamW; checkpoints make runs resumable with bit-identical results.
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
    /// After `train`: the adapters that took at least one optimiser step in the job.
    public private(set) var updated: Set<String> = []

    /// A trainer on `model`.
    public init(model: LlamaModel, config: AdapterTrainingConfig) {
        self.model = model
        self.config = config
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
        let byName = Dictionary(adapters.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let usable = examples.filter { e in e.ids.count <= config.maxTokens && e.weights.contains { $0.weight != 0 && byName[$0.tool] != nil } }
        guard !usable.isEmpty else { throw ToolFormatError("\(stage) \(job): no training sequences") }
        var opt = config.optimizer
        opt.totalSteps = config.steps
        let groups = adapters.map { ParameterGroup(name: $0.name, parameters: $0.parameterBuffers, optimizer: AdamW(parameters: $0.parameterBuffers, config: opt)) }
        let groupIndex = Dictionary(groups.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        let loop = JobLoop(stage: stage, job: job, totalSteps: config.steps, seed: config.seed,
                           fingerprint: Self.fingerprint(stage: stage, job: job, config: config, adapters: adapters.map(\.name), examples: usable),
                           checkpointEvery: config.checkpointEvery, checkpoints: checkpoints, resume: resume)
        let start = try loop.restore(groups)?.step ?? 0
        let order = JobLoop.order(seed: config.seed, job: job, count: usable.count)
        let backward = LoRABackward(model: model)
        defer { updated = Set(groups.filter { $0.optimizer.step > 0 }.map(\.name)) }
        return try loop.run(groups: groups, from: start, progress: progress) { step in
            var sums = [String: [FloatBuffer]]()
            var loss: Float = 0, tokens = 0
            for j in 0..<config.batchSize {
                let example = usable[order(step * config.batchSize + j)]
                let parts = example.weights.filter { $0.weight != 0 && byName[$0.tool] != nil }
                let (l, grads) = backward.lossAndGradients(ids: example.ids, targets: example.targets,
                                                           mixture: Mixture(parts.map { (byName[$0.tool]!, $0.weight) }))
                loss += l
                tokens += example.ids.count
                for (part, g) in zip(parts, grads) {
                    let buffers = g.buffers
                    if let sum = sums[part.tool] {
                        for (s, b) in zip(sum, buffers) { for i in 0..<s.count { s[i] += b[i] } }
                    } else {
                        sums[part.tool] = buffers
                    }
                }
            }
            var norm: Float = 0, lr: Float = 0
            for name in sums.keys.sorted() {
                let grads = sums[name]!
                if config.batchSize > 1 {
                    let k = 1 / Float(config.batchSize)
                    for g in grads { for i in 0..<g.count { g[i] *= k } }
                }
                let optimizer = groups[groupIndex[name]!].optimizer
                norm = max(norm, optimizer.update(gradients: grads))
                lr = optimizer.learningRate(at: optimizer.step)
            }
            return StepOutcome(loss: loss / Float(config.batchSize), tokens: tokens, learningRate: lr, gradientNorm: norm)
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
