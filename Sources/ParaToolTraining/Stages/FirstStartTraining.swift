// FirstStartTraining: the policy a service follows when it starts on a store that lacks adapters
// (`paratool up` on a fresh cache): which tools to train (no adapter, or one trained on other
// prompt wording), the data (examples synthesized from the tools' schemas, held-out queries
// excluded), and the settings of stage 1 and the gate (stage 2). Resumes an interrupted run.
import Foundation
import ParaTool
import Tensor

/// What to train on first start, and how.
public struct FirstStartTraining {
    /// The tools served.
    public var catalogue: ToolCatalogue
    /// The catalogue as a file (what training reads).
    public var catalogueFile: URL
    /// The adapter store trained into (its gate layout holds the gate).
    public var store: URL
    /// Where the synthesized data and the metrics log go.
    public var work: URL
    /// The base model (nil: the default).
    public var model: String?
    /// The threads the training computes on.
    public var threads = ComputeThreads.machine
    /// Stage-1 steps per tool.
    public var steps = 75
    /// Gate steps. Few: the tool vectors start from the documents, and longer training fits the
    /// synthesized phrasings (loss → 0 by 800 steps) at the expense of real ones (docs/results.md, "Gate steps").
    public var gateSteps = 50
    /// Synthesized examples per tool.
    public var examplesPerTool = 30
    /// Queries never trained on (the demo's examples and check set).
    public var heldOutQueries: [String] = []

    public init(catalogue: ToolCatalogue, catalogueFile: URL, store: URL, work: URL) {
        self.catalogue = catalogue
        self.catalogueFile = catalogueFile
        self.store = store
        self.work = work
    }

    /// What a first start has to train.
    public struct Plan: Sendable, Equatable {
        /// Tools without a current adapter, in catalogue order.
        public var tools: [String]
        /// Tools among them whose adapter was trained on other prompt wording or another schema.
        public var stale: [String]
        /// No gate is stored yet.
        public var gateMissing: Bool
        /// Nothing to train.
        public var isEmpty: Bool { tools.isEmpty && !gateMissing }

        public init(tools: [String] = [], stale: [String] = [], gateMissing: Bool = false) {
            self.tools = tools
            self.stale = stale
            self.gateMissing = gateMissing
        }
    }

    /// The tools with no adapter or one trained on other prompt wording or on another schema of
    /// the tool (`AdapterVersion.isStale`), and whether the gate is missing. Reads the store only.
    public func plan() throws -> Plan {
        let adapters = try AdapterStore(root: store)
        var plan = Plan(tools: [], stale: [], gateMissing: AdapterStore.latestGate(root: store) == nil)
        for tool in catalogue.names {
            guard let latest = try adapters.latest(tool: tool) else { plan.tools.append(tool); continue }
            guard !latest.matchesPromptWording || latest.isStale(for: catalogue[tool]!) else { continue }
            plan.tools.append(tool)
            plan.stale.append(tool)
        }
        return plan
    }

    /// Stage-1 settings of `steps` steps from the shared initialisation: learning rate 1e-3 after
    /// 8 warm-up steps (the short schedules of a first start and of retraining on feedback).
    public static func adapterSettings(steps: Int) -> AdapterTrainingConfig {
        var config = AdapterTrainingConfig()
        config.steps = steps
        config.optimizer.learningRate = 1e-3
        config.optimizer.warmupSteps = min(8, steps)
        return config
    }

    /// The options of the training run for `plan`: synthesizes its data into `work` first.
    public func options(for plan: Plan) throws -> OfflineTrainingOptions {
        let data = work.appendingPathComponent("first-start-train.jsonl")
        var options = OfflineTrainingOptions(data: data, tools: catalogueFile, store: store)
        let checkpoints = CheckpointDirectory(root: options.resolvedCheckpointDirectory)
        // A stale adapter's finished checkpoint would otherwise be taken as done.
        for tool in plan.stale { try checkpoints.remove(stage: "pretrain", job: tool) }
        var config = SynthesisConfig()
        config.examplesPerTool = examplesPerTool
        config.seed = 0
        let (trajectories, _) = ExampleSynthesizer(tools: catalogue.tools, config: config, evaluationQueries: heldOutQueries).synthesize()
        try Trajectory.save(trajectories, jsonl: data)
        options.model = model
        options.threads = threads
        options.stages = [1, 2]
        options.onlyTools = plan.tools
        options.adapter = Self.adapterSettings(steps: steps)
        options.gate.steps = gateSteps
        options.resume = true
        options.evaluationQueries = heldOutQueries
        options.metrics = work.appendingPathComponent("first-start-metrics.jsonl")
        return options
    }
}
