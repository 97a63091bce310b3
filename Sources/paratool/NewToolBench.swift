// `paratool bench new-tool`: what a tool nobody has trained yet can be served with, scored on tools
// held out from everything the candidates draw on — the base model alone, the Global adapter, the
// Global adapter after one or two steps on the tool's own examples, the nearest trained tool's
// adapter (by document encoding), adapters generated from the document (`AdapterGenerator`, each
// setting of a grid; the one chosen on the trained tools themselves, leaving each out in turn, is
// the "generated" row), with --generator a trained AdapterHypernetwork (its shared adapter θ⁰, the
// adapter it writes, and each after the same few steps), and the tool's own trained adapter as the
// ceiling. Each is scored alone at
// weight 1 on examples synthesized fresh from the tool's schema: teacher-forced NLL of the gold calls
// per token and the exact match of the greedy, schema-constrained answer (HeldOutScorer), with the
// time each start takes to make.
import ArgumentParser
import Foundation
import LLM
import ParaTool
import ParaToolTraining
import Tensor

struct NewToolBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-tool",
        abstract: "Starts for a tool with no trained adapter (Global, a few steps, nearest tool, generated), scored on held-out tools.",
        discussion: """
            Held out: the tools of the first --held-out-questions questions of --held-out (a BFCL question file); the \
            references (what the nearest-tool and generated adapters draw on) are the store's other stage-1 adapters, \
            leaving out any tool sharing a held-out tool's name or its parameters' schema (whatever its name). The generator's setting is chosen on the \
            first --tune-count references (each generated from the others) before any held-out tool is scored. The \
            steps on the Global adapter train on the tool's stage-1 examples in --data (the trajectories the store was \
            trained on). Scores: --per-tool examples per tool synthesized with --seed (one the training did not use).
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("Adapter store with a Global adapter and stage-1 adapters started from it.", valueName: "dir"))
    var adapterStore: String

    @Option(help: ArgumentHelp("The tools' catalogue (JSON list, JSONL or BFCL question file).", valueName: "file"))
    var tools: String

    @Option(help: ArgumentHelp("BFCL question file whose questions' tools are held out.", valueName: "file"))
    var heldOut: String

    @Option(help: "Questions of --held-out whose tools are held out.")
    var heldOutQuestions = 50

    @Option(help: ArgumentHelp("Training trajectories (JSON Lines) for the steps on the Global adapter.", valueName: "file"))
    var data: String

    @Option(help: "Held-out tools scored (the first N, in --held-out's order, that have a stage-1 adapter).")
    var count = 8

    @Option(help: "References the generator's setting is chosen on (each left out of its own generation).")
    var tuneCount = 6

    @Option(help: "Synthesized examples per tool.")
    var perTool = 4

    @Option(help: "Synthesis seed of the scored examples (one the store's training did not use).")
    var seed: UInt64 = 99

    @Option(parsing: .upToNextOption, help: "Steps on the Global adapter, one row each.")
    var steps: [Int] = [1, 2]

    @Option(help: "Learning rate of those steps (no warm-up).")
    var learningRate: Float = 1e-3

    @Option(parsing: .upToNextOption, help: "Generator settings tried, each k:τ:λ (neighbours, temperature, strength).")
    var grid: [String] = ["4:0.05:1", "4:0.05:0.5", "16:1:0.5"]

    @Option(help: ArgumentHelp("A trained adapter generator (paratool generator train): adds its shared adapter θ⁰, θ⁰ plus the --steps, its generated adapter and that plus the --steps; every scored tool must be among its held-out tools.", valueName: "file"))
    var generator: String?

    @Option(help: "Compute threads.")
    var threads = 2

    func run() throws {
        let settings = try grid.map { text -> AdapterGeneratorSettings in
            let parts = text.split(separator: ":")
            guard parts.count == 3, let k = Int(parts[0]), let t = Float(parts[1]), let l = Float(parts[2]), k > 0, t > 0 else {
                throw ValidationError("--grid \(text): expected k:τ:λ, like 4:0.02:1")
            }
            return AdapterGeneratorSettings(neighbours: k, temperature: t, strength: l)
        }
        let lm = try modelOptions.load()
        let config = lm.model.config
        let store = try AdapterStore(root: URL(fileURLWithPath: adapterStore))
        let catalogue = try ToolCatalogue.load(file: URL(fileURLWithPath: tools))
        let held = try HeldOutTools(file: heldOut, questions: heldOutQuestions)
        let learned = try generator.map { try AdapterHypernetwork(contentsOf: URL(fileURLWithPath: $0)) }
        let compute = ComputeThreads(threads)

        func stageOne(_ tool: String) throws -> ToolAdapter? {
            guard let v = try store.versions(tool: tool).last(where: { $0.stage == "pretrain" }) else { return nil }
            return try store.load(tool: tool, version: v.version, expectedSHA256: v.sha256, config: config)
        }
        guard let globalVersion = try store.latest(tool: OfflineTraining.globalAdapterName) else {
            throw ValidationError("\(adapterStore) has no \(OfflineTraining.globalAdapterName) adapter")
        }
        let global = try store.load(tool: OfflineTraining.globalAdapterName, version: globalVersion.version,
                                    expectedSHA256: globalVersion.sha256, config: config)
        // The gate's encoder (mean pooling, its default layers): tool names and descriptions for the
        // mixes of trained tools, whole documents for the learned generator.
        let encoder = AdapterHypernetwork.documentEncoder(model: lm.model, tokenizer: lm.tokenizer, threads: compute)
        func encoding(_ spec: ToolSpec) -> [Float] { encoder.encodeTool(name: spec.name, description: spec.description).vector }

        var references = [GeneratorReference]()
        var leftOut = 0
        for spec in catalogue.tools where spec.name != OfflineTraining.globalAdapterName {
            if held.names.contains(spec.name) { continue }
            if held.holds(spec) { leftOut += 1; continue }
            guard let adapter = try stageOne(spec.name) else { continue }
            references.append(GeneratorReference(tool: spec.name, encoding: encoding(spec), adapter: adapter))
        }
        var scored = [(spec: ToolSpec, trained: ToolAdapter)]()
        var seen = Set<String>()
        for spec in held.specs where scored.count < count && seen.insert(spec.name).inserted {
            guard let trained = try stageOne(spec.name), let own = catalogue[spec.name] else { continue }
            scored.append((own, trained))
        }
        guard !references.isEmpty, !scored.isEmpty else {
            throw ValidationError("need stage-1 adapters of held-out tools (\(scored.count) found) and of others (\(references.count) found)")
        }
        if let learned {
            let trainedOn = Set(learned.provenance.trainingTools)
            guard !scored.contains(where: { trainedOn.contains($0.spec.name) }) else {
                throw ValidationError("\(generator!) was trained on a tool scored here: hold the same tools out when training it")
            }
        }
        let generator = try AdapterGenerator(start: global, references: references)
        print("model: \(lm.path); store \(adapterStore) (\(OfflineTraining.globalAdapterName) \(globalVersion.version))")
        print(CPUDescription.line)
        print("held out: the tools of the first \(heldOutQuestions) questions of \(heldOut) (\(held.names.count) tools); "
              + "references: \(references.count) stage-1 adapters of other tools (\(leftOut) left out for sharing a held-out schema)")

        var synthesis = SynthesisConfig()
        synthesis.examplesPerTool = perTool
        synthesis.episodes = 0
        synthesis.noCallFraction = 0
        synthesis.seed = seed
        let scorer = try HeldOutScorer(model: lm, catalogue: catalogue, threads: compute)
        func freshSteps(_ spec: ToolSpec) -> [(trajectory: Trajectory, step: Int)] {
            HeldOutSlice.steps(ExampleSynthesizer(tools: [spec], config: synthesis).synthesize().trajectories, tool: spec.name)
        }

        // 1. The generator's setting, chosen on references only (each generated from the others).
        let tuning = references.prefix(tuneCount)
        var tuned = [[StepScore]](repeating: [], count: settings.count)
        for reference in tuning {
            guard let spec = catalogue[reference.tool] else { continue }
            let steps = freshSteps(spec)
            for (i, s) in settings.enumerated() {
                let made = generator.generate(name: spec.name, encoding: reference.encoding, settings: s, excluding: [spec.name]).adapter
                tuned[i] += try scorer.score(made, tool: spec.name, steps: steps)
            }
            printError("tuning \(spec.name): \(steps.count) steps")
        }
        let tuningScores = tuned.map { HeldOutScore($0) }
        let chosen = tuningScores.indices.min { tuningScores[$0].meanNLL < tuningScores[$1].meanNLL } ?? 0
        print("")
        print("Generator settings on \(tuning.count) references, each generated from the others:")
        print("")
        print("| setting | steps | exact match | mean NLL per gold token |")
        print("|---|---:|---:|---:|")
        for (s, score) in zip(settings, tuningScores) {
            print(String(format: "| %@%@ | %d | %d | %.4f |", s.description, s == settings[chosen] ? " (chosen)" : "", score.episodes, score.correct, score.meanNLL))
        }
        fflush(nil)

        // 2. Every start on the held-out tools.
        struct Row { var name: String; var scores = [StepScore](); var seconds = [Double]() }
        func plus(_ n: Int) -> String { " + \(n) step\(n == 1 ? "" : "s")" }
        let learnedRows = learned.map { g in
            [Row(name: "generator's θ⁰ (Global without the held-out tools)")] + steps.map { Row(name: "θ⁰" + plus($0)) }
                + [Row(name: "learned generator \(g.provenance.version)")] + steps.map { Row(name: "learned generator" + plus($0)) }
        } ?? []
        var rows = [Row(name: "base model (no adapter)"), Row(name: "Global")] + steps.map { Row(name: "Global" + plus($0)) } + learnedRows
            + [Row(name: "nearest trained tool")] + settings.map { Row(name: "generated \($0)\($0 == settings[chosen] ? " (chosen)" : "")") }
            + [Row(name: "trained (its own stage-1 adapter)")]
        let trajectories = try Trajectory.load(jsonl: URL(fileURLWithPath: data))
        let builder = try InstanceBuilder(tokenizer: lm.tokenizer, catalogue: catalogue)
        // B = 0: the branches add nothing, so this scores the base model through the same path.
        let zero = ToolAdapter.initialized(name: "zero", config: config, rank: global.rank, alpha: global.alpha,
                                           targets: global.targets, seed: 0)
        var stepsPerTool = [Int]()
        for (spec, trained) in scored {
            let fresh = freshSteps(spec)
            stepsPerTool.append(fresh.count)
            var r = 0
            func add(_ adapter: ToolAdapter, seconds: Double) throws {
                rows[r].scores += try scorer.score(adapter, tool: spec.name, steps: fresh)
                rows[r].seconds.append(seconds)
                r += 1
            }
            try add(zero, seconds: 0)
            try add(global, seconds: 0)
            let own = try trajectories.filter { $0.steps.contains { $0.calls.contains { $0.name == spec.name } } }
                .flatMap { try builder.instances($0, documentAware: true) }
            let examples = StageData.pretraining(own, tool: spec.name)
            /// `start` after each of --steps on the tool's own examples, with the time each took (plus `made`).
            func stepped(_ start: ToolAdapter, made: Double) throws {
                for n in steps {
                    var c = AdapterTrainingConfig()
                    c.steps = n
                    c.rank = start.rank
                    c.alpha = start.alpha
                    c.optimizer.learningRate = learningRate
                    c.optimizer.warmupSteps = 0
                    c.checkpointEvery = 0
                    let started = Date()
                    let adapter = start.ownedCopy(name: spec.name)
                    try AdapterTrainer(model: lm.model, config: c, threads: compute)
                        .train(stage: "new-tool", job: spec.name, adapters: [adapter], examples: examples, progress: { _ in true })
                    try add(adapter, seconds: made + Date().timeIntervalSince(started))
                }
            }
            try stepped(global, made: 0)
            if let learned {
                let shared = learned.sharedAdapter(name: spec.name)
                try add(shared, seconds: 0)
                try stepped(shared, made: 0)
                let started = Date()
                let made = learned.generate(name: spec.name, encoding: AdapterHypernetwork.encoding(of: spec, encoder: encoder))
                let seconds = Date().timeIntervalSince(started)
                try add(made, seconds: seconds)
                try stepped(made, made: seconds)
            }
            var started = Date()
            let d = encoding(spec)
            let encodeSeconds = Date().timeIntervalSince(started)
            let nearest = generator.weights(for: d, settings: AdapterGeneratorSettings(neighbours: 1, temperature: 1, strength: 1))[0].tool
            try add(references.first { $0.tool == nearest }!.adapter, seconds: encodeSeconds)
            for s in settings {
                started = Date()
                let made = generator.generate(name: spec.name, encoding: d, settings: s).adapter
                try add(made, seconds: encodeSeconds + Date().timeIntervalSince(started))
            }
            try add(trained, seconds: .nan)
            let nll = rows.map { String(format: "%.3f", HeldOutScore($0.scores.suffix(fresh.count)).meanNLL) }.joined(separator: " ")
            printError("\(spec.name): \(fresh.count) steps, \(examples.count) training sequences, nearest \(nearest); NLL per row: \(nll)")
        }
        // Paired against the learned generator when there is one, else the chosen mix of trained tools.
        let generated = learned != nil ? rows[2 + 2 * steps.count + 1] : rows[2 + steps.count + learnedRows.count + 1 + chosen]
        print("")
        print("Held-out tools: \(scored.count), \(perTool) fresh examples each (seed \(seed)); paired against \(generated.name):")
        print("")
        print("| start | made in (median) | steps | exact match | mean NLL per gold token | right only here / only there | tools with lower NLL than there |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for row in rows {
            let score = HeldOutScore(row.scores)
            let here = zip(row.scores, generated.scores).filter { $0.correct && !$1.correct }.count
            let there = zip(row.scores, generated.scores).filter { !$0.correct && $1.correct }.count
            // Per tool: the mean NLL per token over its steps.
            var lower = 0, first = 0
            for n in stepsPerTool {
                let mine = HeldOutScore(row.scores[first..<first + n]).meanNLL, theirs = HeldOutScore(generated.scores[first..<first + n]).meanNLL
                if mine < theirs { lower += 1 }
                first += n
            }
            let seconds = row.seconds.sorted()[row.seconds.count / 2]
            let made = seconds.isNaN ? "(trained)" : seconds < 1 ? String(format: "%.0f ms", seconds * 1000) : String(format: "%.1f s", seconds)
            print(String(format: "| %@ | %@ | %d | %d | %.4f | %d / %d | %d of %d |", row.name, made, score.episodes, score.correct, score.meanNLL,
                         here, there, lower, scored.count))
        }
    }
}
