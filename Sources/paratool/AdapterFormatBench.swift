// `paratool bench adapter-format`: what storing adapters as bfloat16 costs in accuracy. Each of a
// store's float32 adapters is scored alone, as stored and rounded to bfloat16, on examples
// synthesized fresh from its tool's schema (a seed its training did not use): teacher-forced NLL
// of the gold calls per token and the exact match of the greedy, schema-constrained answer (the
// promotion review's HeldOutScorer), paired step by step.
import ArgumentParser
import Foundation
import LLM
import ParaTool
import ParaToolTraining
import Tensor

struct AdapterFormatBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapter-format",
        abstract: "Float32 against bfloat16 adapters: teacher-forced NLL and greedy exact match on fresh synthesized steps.",
        discussion: """
            Scores the newest version of the first --count tools of --tools that the store holds in float32 (a store \
            trained before adapters were published as bfloat16, or with format float32): each alone at weight 1 on \
            --per-tool atomic examples synthesized from its schema with --seed, as stored and rounded to bfloat16.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("Adapter store holding float32 adapters.", valueName: "dir"))
    var adapterStore: String

    @Option(help: ArgumentHelp("The tools' catalogue (JSON list, JSONL or BFCL question file).", valueName: "file"))
    var tools: String

    @Option(help: "Tools scored (the first N of the catalogue that have a float32 adapter).")
    var count = 20

    @Option(help: "Synthesized examples per tool.")
    var perTool = 4

    @Option(help: "Synthesis seed (use one the store's training did not).")
    var seed: UInt64 = 99

    @Option(help: "Compute threads.")
    var threads = 2

    func run() throws {
        let lm = try modelOptions.load()
        let store = try AdapterStore(root: URL(fileURLWithPath: adapterStore))
        let catalogue = try ToolCatalogue.load(file: URL(fileURLWithPath: tools))
        var chosen = [(ToolSpec, ToolAdapter)]()
        for spec in catalogue.tools where chosen.count < count {
            guard let v = try store.latest(tool: spec.name) else { continue }
            let adapter = try store.load(tool: spec.name, version: v.version, expectedSHA256: v.sha256, config: lm.model.config)
            if adapter.format == .float32 { chosen.append((spec, adapter)) }
        }
        guard !chosen.isEmpty else { throw ValidationError("no float32 adapter of the catalogue's tools in \(adapterStore)") }
        var config = SynthesisConfig()
        config.examplesPerTool = perTool
        config.episodes = 0
        config.noCallFraction = 0
        config.seed = seed
        let scorer = try HeldOutScorer(model: lm, catalogue: catalogue, threads: ComputeThreads(threads))
        print("model: \(lm.path); store \(adapterStore); \(chosen.count) tools, \(perTool) fresh examples each (seed \(seed))")
        print(CPUDescription.line)
        var float = [StepScore](), compact = [StepScore]()
        var bytes = (float: 0, compact: 0)
        for (spec, adapter) in chosen {
            let (trajectories, _) = ExampleSynthesizer(tools: [spec], config: config).synthesize()
            let steps = HeldOutSlice.steps(trajectories, tool: spec.name)
            let rounded = adapter.converted(to: .bfloat16)
            float += try scorer.score(adapter, tool: spec.name, steps: steps)
            compact += try scorer.score(rounded, tool: spec.name, steps: steps)
            bytes.float += adapter.residentBytes
            bytes.compact += rounded.residentBytes
            printError("\(spec.name): \(steps.count) steps")
        }
        let (f, c) = (HeldOutScore(float), HeldOutScore(compact))
        let onlyFloat = zip(float, compact).filter { $0.correct && !$1.correct }.count
        let onlyCompact = zip(float, compact).filter { !$0.correct && $1.correct }.count
        let perStep = zip(float, compact).map { abs($0.negativeLogLikelihood - $1.negativeLogLikelihood) / Double(max(1, $0.tokens)) }
        print("")
        print("| adapters | MB per adapter | steps | exact match | mean NLL per gold token |")
        print("|---|---:|---:|---:|---:|")
        print(String(format: "| float32 | %.2f | %d | %d | %.5f |", Double(bytes.float) / Double(chosen.count) / 1e6, f.episodes, f.correct, f.meanNLL))
        print(String(format: "| bfloat16 | %.2f | %d | %d | %.5f |", Double(bytes.compact) / Double(chosen.count) / 1e6, c.episodes, c.correct, c.meanNLL))
        print("")
        print(String(format: "paired: %d steps right only in float32, %d only in bfloat16; |ΔNLL| per token: mean %.5f, max %.5f",
                     onlyFloat, onlyCompact, perStep.reduce(0, +) / Double(max(1, perStep.count)), perStep.max() ?? 0))
    }
}
