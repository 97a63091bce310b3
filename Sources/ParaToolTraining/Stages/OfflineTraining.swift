// OfflineTraining: the three stages run from a trajectory file into an AdapterStore and a gate
// directory — (1) each tool's adapter alone on its document-aware and document-free instances
// (optionally several tools per step, each still trained as if alone),
// (2) the gate on next-tool prediction, (3) the candidates' adapters together under the frozen
// gate — plus the Global Parameterization baseline. StageData turns trajectories into each
// stage's examples. `paratool train --offline` calls `OfflineTraining.run`.
import Foundation
import LLM
import ParaTool
import Tensor

/// Each stage's examples, built from trajectories.
public enum StageData {
    /// Stage 1 for `tool`: the instances (both formats) whose target calls `tool` and nothing
    /// else. A whole target mixing tools is left to stage 3, where the mixture produces it; its
    /// parts, `InstanceBuilder.runInstances`, come here as targets of one tool each.
    public static func pretraining(_ instances: [TrainingInstance], tool: String) -> [WeightedExample] {
        instances.filter { !$0.tools.isEmpty && $0.tools.allSatisfy { $0 == tool } }.map { WeightedExample($0, adapter: tool) }
    }

    /// The Global Parameterization baseline: every instance, one shared adapter.
    public static func global(_ instances: [TrainingInstance], adapter: String) -> [WeightedExample] {
        instances.map { WeightedExample($0, adapter: adapter) }
    }

    /// The gate's context before call `call` of step `step` of `trajectory`: the user message,
    /// then the step's calls before that one (`PromptFormatter.gateContext`).
    public static func contextText(_ trajectory: Trajectory, step: Int, call: Int) -> String {
        PromptFormatter.gateContext(PromptRequest(query: trajectory.query, history: Array(trajectory.steps.prefix(step))),
                                    callsSoFar: Array(trajectory.steps[step].calls.prefix(call)))
    }

    /// Stage 2: next-call prediction on every prefix of every step's answer — the encoded
    /// context (the query, the history, the step's calls so far), the trajectory's candidates
    /// that are in `known`, and the next call's tool as the target. With `noTool`, every example
    /// also has the no-call candidate (`GateNetwork.noToolName`), which is the target for a step
    /// without calls (its answer is text) and, with `ends`, after a step's last call (the answer
    /// ends: what `--answer-end step` reads). Prefixes whose next tool is not among the candidates
    /// are left out.
    public static func gate(_ trajectories: [Trajectory], known: Set<String>, noTool: Bool = false, ends: Bool = true,
                            encode: (String) -> [Float]) -> [GateExample] {
        var out = [GateExample]()
        for t in trajectories {
            let candidates = t.candidateTools.filter(known.contains) + (noTool ? [GateNetwork.noToolName] : [])
            for (k, step) in t.steps.enumerated() {
                for j in 0...step.calls.count where j < step.calls.count || step.calls.isEmpty || ends {
                    let next = j < step.calls.count ? step.calls[j].name : GateNetwork.noToolName
                    guard let index = candidates.firstIndex(of: next) else { continue }
                    var target = [Float](repeating: 0, count: candidates.count)
                    target[index] = 1
                    out.append(GateExample(context: encode(contextText(t, step: k, call: j)), candidates: candidates, target: target))
                }
            }
        }
        return out
    }

    /// Stage 3: the document-free instances, each with the frozen gate's weights over its
    /// trajectory's candidates (top-N from the gate's config), restricted to tools in `adapters`.
    public static func joint(_ instances: [TrainingInstance], trajectories: [Trajectory], gate: GateNetwork, adapters: Set<String>,
                             encode: (String) -> [Float]) throws -> [WeightedExample] {
        let byID = Dictionary(trajectories.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var out = [WeightedExample]()
        for i in instances where i.format == .documentFree {
            guard let t = byID[i.trajectoryID] else { continue }
            let candidates = t.candidateTools.filter { gate.toolVectors[$0] != nil }
            guard !candidates.isEmpty else { continue }
            let w = try gate.weights(context: encode(contextText(t, step: i.step, call: 0)), candidates: candidates)
            let weights = zip(candidates, w).filter { $0.1 != 0 && adapters.contains($0.0) }
                .map { WeightedExample.Weight(tool: $0.0, weight: $0.1) }
            guard !weights.isEmpty else { continue }
            out.append(WeightedExample(ids: i.prompt + i.target, targets: i.target.count, weights: weights))
        }
        return out
    }
}

/// What `OfflineTraining.run` should do.
public struct OfflineTrainingOptions {
    /// The base model (nil: the default model).
    public var model: String?
    /// The threads training computes on (its encoder and adapter trainers).
    public var threads = ComputeThreads.machine
    /// Trajectories, JSON Lines.
    public var data: URL
    /// The tool catalogue (documents for the document-aware instances and the gate's vectors).
    public var tools: URL
    /// The adapter store to publish into.
    public var store: URL
    /// Where the gate is written (nil: `<store>/.gate`).
    public var gateDirectory: URL?
    /// Where checkpoints go (nil: `<store>/.checkpoints`).
    public var checkpointDirectory: URL?
    /// Which stages to run: 1, 2, 3.
    public var stages: Set<Int> = [1, 2, 3]
    /// Stage 1 trains only these tools (empty: all). Lets tools train in parallel processes.
    public var onlyTools: [String] = []
    /// Adapter settings; `steps` is per tool in stage 1.
    public var adapter = AdapterTrainingConfig()
    /// Stage 1 trains this many tools together (consecutive tools of the catalogue): their
    /// batches share each forward and backward pass. A pass cuts each sequence into blocks of its
    /// own, so the products are no bigger; what grows is the work the threads share, which keeps
    /// both cores busy on sequences too short to split (under 64 tokens) — measured about twice
    /// the tokens/s on 48-token sequences, and no change from about 100 tokens up. Each tool keeps
    /// its own adapter, optimiser, data order and checkpoints, and gets the same bits as when
    /// trained alone, so the grouping may change between a stop and `resume`. Memory grows with
    /// the rows of a step (bounded by `maxRowsPerPass`).
    public var toolsPerStep = 1
    /// Rows (tokens) of one forward and backward pass of adapter training (see
    /// `AdapterTrainer.maxRowsPerPass`).
    public var maxRowsPerPass = 2048
    /// Steps of stage 3 (nil: `adapter.steps`).
    public var jointSteps: Int?
    /// Gate settings.
    public var gate = GateTrainingConfig()
    /// Pooling of the gate's encoder.
    public var pooling: Pooling = .mean
    /// Decoder layers the gate's encoder runs (nil: `GateConfig.defaultEncoderLayers`).
    public var encoderLayers: Int?
    /// Write each parallel answer of several tools in every rotation of its tools for stage 1's
    /// parts and the gate's next-call examples (`Trajectory.callOrderRotations`), instead of the
    /// order the request names its tasks in.
    public var rotateCallOrders = false
    /// Stage 2 also learns the end of an answer (the no-call candidate after each step's last
    /// call), which `--answer-end step` reads; off by default: the model ends answers, and each
    /// such example costs an encoder pass.
    public var gateLearnsEnd = false
    /// Also train the Global Parameterization baseline (published as `globalAdapterName`).
    public var globalBaseline = false
    /// Steps of the global adapter (nil: `adapter.steps` × the stage-1 tools).
    public var globalSteps: Int?
    /// Start every stage-1 adapter from the global adapter (trained first when missing) instead
    /// of the shared random initialisation: the tools then begin from what all of them share.
    public var startFromGlobal = false
    /// Continue every job from its latest checkpoint; finished, published jobs are skipped.
    public var resume = false
    /// Metrics JSON Lines file (nil: none).
    public var metrics: URL?
    /// Queries that must not appear in the training data (checked before anything runs).
    public var evaluationQueries: [String] = []
    /// Called with each adapter version the moment it is published (before the run ends).
    public var onPublish: ((AdapterVersion) -> Void)?
    /// Publish every tool adapter held for review (`AdapterStore.publish(heldForReview:)`): the
    /// online trainer's candidates, served only once their held-out scores promote them. Stage 3
    /// then starts from this run's own stage-1 candidates.
    public var holdForReview = false

    /// Options for training on `data` with the catalogue `tools` into `store`; the rest defaults.
    public init(data: URL, tools: URL, store: URL) {
        self.data = data
        self.tools = tools
        self.store = store
    }


    /// The checkpoint directory used.
    public var resolvedCheckpointDirectory: URL {
        checkpointDirectory ?? store.appendingPathComponent(".checkpoints", isDirectory: true)
    }
}

/// What a run published.
public struct OfflineTrainingResult {
    /// Adapter versions published, in order.
    public var published: [AdapterVersion] = []
    /// The gate directory, when stage 2 ran.
    public var gateDirectory: URL?
    /// True when a progress handler stopped the run early (resume continues it).
    public var stopped = false
    /// Wall seconds per stage name.
    public var seconds: [(stage: String, seconds: Double)] = []
}

/// The offline trainer.
public enum OfflineTraining {
    /// The store name of the Global Parameterization adapter.
    public static let globalAdapterName = "_global"

    /// Runs the chosen stages. `log` receives one-line notes (data sizes, skipped jobs, where
    /// results went); `progress` every step's report (it is also written to the metrics file).
    public static func run(_ options: OfflineTrainingOptions, log: (String) -> Void,
                           progress: @escaping ProgressHandler) throws -> OfflineTrainingResult {
        let catalogue = try ToolCatalogue.load(file: options.tools)
        let trajectories = try Trajectory.load(jsonl: options.data)
        try HeldOut.check(training: trajectories, evaluationQueries: options.evaluationQueries)
        let unknownOnly = options.onlyTools.filter { !catalogue.contains($0) }
        guard unknownOnly.isEmpty else { throw ToolFormatError("--only-tools names tools not in the catalogue: \(unknownOnly.joined(separator: ", "))") }
        let lm = try LanguageModel.load(path: options.model)
        let store = try AdapterStore(root: options.store)
        let checkpoints = CheckpointDirectory(root: options.resolvedCheckpointDirectory)
        let metrics = try MetricsLog(url: options.metrics)
        let report = metrics.recording(then: progress)
        var result = OfflineTrainingResult()
        log("\(trajectories.count) trajectories, \(catalogue.count) tools, model \(lm.path)")

        let builder = try InstanceBuilder(tokenizer: lm.tokenizer, catalogue: catalogue)
        let instances = try trajectories.flatMap { try builder.instances($0, documentAware: true) }
        // Each tool's part of a parallel answer of several tools: stage 1 only (the global
        // baseline and stage 3 train on whole answers).
        // Parallel calls of several tools in every rotation, when asked: for stage 1's parts and the gate.
        let ordered = options.rotateCallOrders ? trajectories.flatMap { $0.callOrderRotations() } : trajectories
        let runInstances = options.stages.contains(1) ? try ordered.flatMap { try builder.runInstances($0, documentAware: true) } : []
        let encoderLayers = options.encoderLayers ?? GateConfig.defaultEncoderLayers(layerCount: lm.model.config.layerCount)
        var encoder = ContextEncoder(model: lm.model, tokenizer: lm.tokenizer, pooling: options.pooling, layers: encoderLayers,
                                     threads: options.threads)
        var contexts = [String: [Float]]()
        let encode: (String) -> [Float] = { text in
            if let hit = contexts[text] { return hit }
            let v = encoder.encode(text).vector
            contexts[text] = v
            return v
        }

        func publish(_ adapter: ToolAdapter, tool: String, stage: String, parent: String? = nil) throws -> AdapterVersion {
            let v = try store.publish(adapter, tool: tool, stage: stage, baseModel: lm.path, parent: parent,
                                      heldForReview: options.holdForReview && tool != globalAdapterName,
                                      schemaFingerprint: catalogue[tool]?.schemaFingerprint)
            result.published.append(v)
            options.onPublish?(v)
            log("published \(tool) \(v.version) (\(stage)) → \(v.path.path)")
            return v
        }
        func finished(_ stage: String, _ job: String) -> [String: String]? {
            guard options.resume, let state = try? checkpoints.state(stage: stage, job: job), state.complete, !state.published.isEmpty else { return nil }
            return state.published
        }

        let stage1Tools = catalogue.names.filter { options.onlyTools.isEmpty || options.onlyTools.contains($0) }

        // The Global Parameterization adapter first: with `startFromGlobal`, every tool's stage-1
        // adapter starts from it.
        if options.globalBaseline || options.startFromGlobal {
            let start = Date()
            let job = "global"
            if let done = finished("global", job) {
                log("global baseline: already published \(done[globalAdapterName] ?? "?"), skipped")
            } else {
                var config = options.adapter
                config.steps = options.globalSteps ?? options.adapter.steps * max(1, stage1Tools.count)
                let global = AdapterTrainer(model: lm.model, config: config, threads: options.threads)
                global.maxRowsPerPass = options.maxRowsPerPass
                global.checkpoints = checkpoints
                global.resume = options.resume
                let examples = StageData.global(instances.filter { $0.tools.allSatisfy(stage1Tools.contains) }, adapter: globalAdapterName)
                log("global baseline: \(examples.count) sequences, \(config.steps) steps")
                let adapter = global.initialAdapter(globalAdapterName)
                guard try global.train(stage: "global", job: job, adapters: [adapter], examples: examples, progress: report) else {
                    result.stopped = true
                    return result
                }
                let v = try publish(adapter, tool: globalAdapterName, stage: "global")
                try checkpoints.markPublished(stage: "global", job: job, versions: [globalAdapterName: v.version])
            }
            result.seconds.append(("global", Date().timeIntervalSince(start)))
        }

        var stageOneStart: ToolAdapter?
        var stageOneConfig = options.adapter
        if options.startFromGlobal && options.stages.contains(1) {
            guard let latest = try store.latest(tool: globalAdapterName) else {
                throw ToolFormatError("stage 1 should start from the global adapter, but \(options.store.path) has none")
            }
            stageOneStart = try store.load(tool: globalAdapterName, version: latest.version, expectedSHA256: latest.sha256,
                                           config: lm.model.config)
            stageOneConfig.startsFrom = "\(globalAdapterName) \(latest.version) \(latest.sha256)"
            log("stage 1 starts every tool from \(globalAdapterName) \(latest.version)")
        }

        if options.stages.contains(1) {
            let start = Date()
            // Each stage's trainer (and the activations its passes keep) lives for that stage only.
            let trainer = AdapterTrainer(model: lm.model, config: stageOneConfig, threads: options.threads)
            trainer.checkpoints = checkpoints
            trainer.resume = options.resume
            trainer.maxRowsPerPass = options.maxRowsPerPass
            let size = max(1, options.toolsPerStep)
            for first in stride(from: 0, to: stage1Tools.count, by: size) {
                var jobs = [AdapterJob]()
                for tool in stage1Tools[first..<min(first + size, stage1Tools.count)] {
                    if let done = finished("pretrain", tool) { log("stage 1 \(tool): already published \(done[tool] ?? "?"), skipped"); continue }
                    let examples = StageData.pretraining(instances + runInstances, tool: tool)
                    guard !examples.isEmpty else { log("stage 1 \(tool): no single-tool instances, skipped"); continue }
                    log("stage 1 \(tool): \(examples.count) sequences, \(options.adapter.steps) steps")
                    let initial = stageOneStart.map { $0.ownedCopy(name: tool) } ?? trainer.initialAdapter(tool)
                    jobs.append(AdapterJob(job: tool, adapters: [initial], examples: examples))
                }
                guard !jobs.isEmpty else { continue }
                guard try trainer.train(stage: "pretrain", jobs: jobs, progress: report) else {
                    result.stopped = true
                    return result
                }
                for job in jobs {
                    let v = try publish(job.adapters[0], tool: job.job, stage: "pretrain")
                    try checkpoints.markPublished(stage: "pretrain", job: job.job, versions: [job.job: v.version])
                }
            }
            result.seconds.append(("pretrain", Date().timeIntervalSince(start)))
        }

        // Stage 2 writes a new version of the store's gate layout (or continues the one its
        // finished checkpoint names); stage 3 alone reads the newest.
        let trainedGate = finished("gate", "gate")?["gate"].map { URL(fileURLWithPath: $0, isDirectory: true) }
        let gateDirectory = options.gateDirectory ?? (options.stages.contains(2)
            ? trainedGate ?? AdapterStore.gatesDirectory(root: options.store).appendingPathComponent(AdapterStore.newGateVersion(), isDirectory: true)
            : AdapterStore.latestGate(root: options.store) ?? AdapterStore.gatesDirectory(root: options.store))
        if options.stages.contains(2) {
            let start = Date()
            if finished("gate", "gate") != nil && FileManager.default.fileExists(atPath: gateDirectory.appendingPathComponent(GateNetwork.configFileName).path) {
                log("stage 2: gate already trained in \(gateDirectory.path), skipped")
            } else {
                let gate = GateNetwork(config: GateConfig(dimension: lm.model.config.hiddenSize, pooling: options.pooling,
                                                          encoderLayers: encoderLayers), seed: options.gate.seed)
                gate.addTools(catalogue.tools.map { ($0.name, $0.description) }, encoder: encoder)
                // The no-call candidate answers in text (and, with gateLearnsEnd, ends an answer after its last call).
                gate.addNoTool(encoder: encoder)
                let examples = StageData.gate(ordered, known: Set(catalogue.names), noTool: true, ends: options.gateLearnsEnd, encode: encode)
                log("stage 2: \(examples.count) next-tool examples, \(options.gate.steps) steps")
                let gateTrainer = GateTrainer(gate: gate, config: options.gate)
                gateTrainer.checkpoints = checkpoints
                gateTrainer.resume = options.resume
                guard try gateTrainer.train(examples: examples, progress: report) else {
                    result.stopped = true
                    return result
                }
                try gate.save(to: gateDirectory)
                try checkpoints.markPublished(stage: "gate", job: "gate", versions: ["gate": gateDirectory.path])
                log("gate → \(gateDirectory.path)")
            }
            result.gateDirectory = gateDirectory
            result.seconds.append(("gate", Date().timeIntervalSince(start)))
        }

        if options.stages.contains(3) {
            let start = Date()
            if let done = finished("joint", "joint") {
                log("stage 3: already published \(done.count) adapters, skipped")
            } else {
                let gate = try GateNetwork.load(from: gateDirectory)
                if gate.config.encoderLayers != encoder.layers || gate.config.pooling != encoder.pooling {
                    // The weights come from the gate as it was trained: encode as it encodes.
                    encoder = ContextEncoder(model: lm.model, tokenizer: lm.tokenizer, pooling: gate.config.pooling,
                                             layers: gate.config.encoderLayers, threads: options.threads)
                    contexts.removeAll()
                }
                gate.addTools(catalogue.tools.map { ($0.name, $0.description) }, encoder: encoder)
                var adapters = [ToolAdapter](), parents = [String: String]()
                // This run's candidates (held for review) first, else what is served.
                let candidates = Dictionary(result.published.map { ($0.tool, $0) }, uniquingKeysWith: { _, newer in newer })
                for tool in catalogue.names {
                    guard let latest = try candidates[tool] ?? store.latest(tool: tool) else { continue }
                    adapters.append(try store.load(tool: tool, version: latest.version, expectedSHA256: latest.sha256,
                                                   config: lm.model.config).ownedCopy())
                    parents[tool] = latest.version
                }
                guard !adapters.isEmpty else { throw ToolFormatError("stage 3 needs stage 1's adapters in \(options.store.path)") }
                let examples = try StageData.joint(instances, trajectories: trajectories, gate: gate, adapters: Set(adapters.map(\.name)),
                                                   encode: encode)
                var config = options.adapter
                config.steps = options.jointSteps ?? options.adapter.steps
                let joint = AdapterTrainer(model: lm.model, config: config, threads: options.threads)
                joint.maxRowsPerPass = options.maxRowsPerPass
                joint.checkpoints = checkpoints
                joint.resume = options.resume
                log("stage 3: \(examples.count) sequences over \(adapters.count) adapters, \(config.steps) steps")
                guard try joint.train(stage: "joint", job: "joint", adapters: adapters, examples: examples, progress: report) else {
                    result.stopped = true
                    return result
                }
                var versions = [String: String]()
                for adapter in adapters where joint.updated.contains(adapter.name) {
                    versions[adapter.name] = try publish(adapter, tool: adapter.name, stage: "joint", parent: parents[adapter.name]).version
                }
                try checkpoints.markPublished(stage: "joint", job: "joint", versions: versions)
            }
            result.seconds.append(("joint", Date().timeIntervalSince(start)))
        }
        return result
    }
}
