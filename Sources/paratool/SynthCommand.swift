// `paratool synth`: training trajectories synthesized from a tool catalogue's schemas (no
// teacher model), written as JSON Lines for `paratool train --offline --data`.
import ArgumentParser
import Foundation
import ParaTool
import ParaToolTraining

struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Synthesize training trajectories for a tool catalogue from its JSON schemas.",
        discussion: """
            Each tool gets --per-tool distinct atomic examples: argument values drawn from its schema (enums, \
            ranges, date layouts and word pools chosen by the parameter's name and description) and a request \
            that states every value the way users write it (several phrasings and word orders per argument: \
            "250 euros in yen", "from Boston to Denver", "twenty-five minutes", "December 18, 2026"; commands, \
            questions, first person). Each tool also gets --parallel-per-tool requests for several calls of it \
            at once ("the weather in Paris and Rome"). Episodes then combine 2-4 examples in shuffled order, \
            either as parallel calls in one step (of several tools, some called more than once) or as steps \
            with history. Candidate lists add the most similar tools (token-level Jaccard of the schemas) as \
            distractors. Calls and episodes are deduplicated by SHA-1; queries equal to any --held-out query are \
            never written. The same catalogue, options and seed give the same file.
            """)

    @Option(help: ArgumentHelp("Tool catalogue: BFCL function list or questions (JSON/JSONL), OpenAI tools array, or ToolSpec array.", valueName: "file"))
    var tools: String

    @Option(help: ArgumentHelp("Output trajectories, JSON Lines (replaced atomically).", valueName: "file.jsonl"))
    var out: String

    @Option(help: "Distinct atomic examples per tool (fewer when a schema admits fewer distinct calls).")
    var perTool = 20

    @Option(help: "Composed multi-call episodes (default: per-tool × tools / 2).")
    var episodes: Int?

    @Option(help: "Parallel requests per tool: several calls of the one tool in one answer (default: per-tool / 4, rounded up).")
    var parallelPerTool: Int?

    @Option(help: "Share of episodes written as parallel calls in one step (the rest: one step per call with history, asked for one at a time).")
    var parallelFraction = SynthesisConfig().parallelFraction

    @Option(help: "Largest number of distractor tools added per called tool.")
    var maxDistractors = 3

    @Option(help: "Probability that an optional parameter gets a value.")
    var optionalProbability = 0.5

    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Evaluation queries that must never be produced: a BFCL question file or a text file with one query a line. Repeatable.", valueName: "file"))
    var heldOut: [String] = []

    func validate() throws {
        if perTool < 1 { throw ValidationError("--per-tool must be at least 1") }
        if let episodes, episodes < 0 { throw ValidationError("--episodes must not be negative") }
        if let parallelPerTool, parallelPerTool < 0 { throw ValidationError("--parallel-per-tool must not be negative") }
        if !(0...1).contains(parallelFraction) || !(0...1).contains(optionalProbability) {
            throw ValidationError("--parallel-fraction and --optional-probability are probabilities (0 to 1)")
        }
    }

    func run() throws {
        let catalogue = try ToolCatalogue.load(file: URL(fileURLWithPath: tools))
        var config = SynthesisConfig()
        config.examplesPerTool = perTool
        config.episodes = episodes
        config.parallelPerTool = parallelPerTool
        config.parallelFraction = parallelFraction
        config.maxDistractors = maxDistractors
        config.optionalProbability = optionalProbability
        config.seed = seed
        let evaluation = try heldOut.flatMap { try HeldOut.queries(file: URL(fileURLWithPath: $0)) }
        let (trajectories, report) = ExampleSynthesizer(tools: catalogue.tools, config: config, evaluationQueries: evaluation).synthesize()
        try HeldOut.check(training: trajectories, evaluationQueries: evaluation)
        try Trajectory.save(trajectories, jsonl: URL(fileURLWithPath: out))
        let atomic = report.atomicPerTool.reduce(0) { $0 + $1.count }, parallel = report.parallelPerTool.reduce(0) { $0 + $1.count }
        printError("\(trajectories.count) trajectories → \(out): \(atomic) atomic over \(report.atomicPerTool.count) tools, "
                   + "\(parallel) parallel of one tool, \(report.episodes) episodes; "
                   + "dropped \(report.duplicatesDropped) duplicates, \(report.heldOutDropped) held-out queries")
        for (tool, count) in report.atomicPerTool where count < perTool {
            printError("note: \(tool): only \(count) distinct calls")
        }
        for (tool, same) in report.duplicateSchemas { printError("note: \(tool) has the same schema as \(same); skipped") }
    }
}
