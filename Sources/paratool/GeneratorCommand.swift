// `paratool generator train`: trains the adapter generator (AdapterHypernetwork) on a catalogue's
// synthesized data, holding out the tools of a BFCL question file by name and by parameters'
// schema. Two resumable phases in one work directory: the shared adapter θ⁰ (a Global adapter on
// the training tools alone, AdapterTrainer), then the generator through the frozen base
// (HypernetworkTrainer), with a check on validation tools (training tools left out of both) at
// every checkpoint. Tool documents are encoded once with the gate's encoder and cached.
import ArgumentParser
import Foundation
import LLM
import ParaTool
import ParaToolTraining
import Tensor

struct GeneratorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generator",
        abstract: "The adapter generator: adapters written from a tool's document (Text-to-LoRA for tools).",
        subcommands: [GeneratorTrain.self])
}

/// The tools a check holds out: those of the first `questions` questions of a BFCL file, and any
/// other tool with one of their parameters' schemas (whatever its name).
struct HeldOutTools {
    let specs: [ToolSpec]
    let names: Set<String>
    let schemas: Set<String>

    init(file: String, questions: Int) throws {
        let chosen = try BFCLQuestion.load(file: URL(fileURLWithPath: file)).prefix(questions)
        var seen = Set<String>()
        specs = chosen.flatMap(\.functions).filter { seen.insert($0.name).inserted }
        names = Set(specs.map(\.name))
        schemas = Set(specs.map { $0.parameters.serialized(sortedKeys: true) })
    }

    /// Whether `spec` is held out by name, or shares a held-out schema.
    func holds(_ spec: ToolSpec) -> Bool {
        names.contains(spec.name) || schemas.contains(spec.parameters.serialized(sortedKeys: true))
    }
}

struct GeneratorTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Trains the adapter generator through the frozen base model (resumable: rerun the same command).",
        discussion: """
            Phase 1 trains the shared adapter θ⁰ (a Global adapter: one adapter on every training tool's data) for \
            --shared-steps; phase 2 trains the generator, which writes θ⁰ + H·c from a tool's encoded document, for \
            --steps of --tools-per-step tools. Tools of the first --held-out-questions questions of --held-out, and \
            tools sharing their parameters' schema, are never trained on; every --validation-every-th remaining tool \
            is kept for validation (also never trained on). Everything goes into --out: checkpoints, the encodings' \
            cache, shared/ (θ⁰ as a PEFT adapter), generator-latest.safetensors (rewritten at every checkpoint) and, at \
            the end, generator.safetensors. Progress on standard error.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("The tools' catalogue (JSON list, JSONL or BFCL question file).", valueName: "file"))
    var tools: String

    @Option(help: ArgumentHelp("Training trajectories, JSON Lines (paratool synth writes them).", valueName: "file"))
    var data: String

    @Option(help: ArgumentHelp("BFCL question file whose questions' tools are held out.", valueName: "file"))
    var heldOut: String

    @Option(help: "Questions of --held-out whose tools are held out.")
    var heldOutQuestions = 50

    @Option(help: ArgumentHelp("Work directory (created; rerun with the same one to resume).", valueName: "dir"))
    var out: String

    @Option(help: "Steps of the shared adapter θ⁰ (one sequence each).")
    var sharedSteps = 500

    @Option(help: "Peak learning rate of the shared adapter.")
    var sharedLr: Float = 1e-3

    @Option(help: "Steps of the generator.")
    var steps = 300

    @Option(help: "Training tools per generator step (one sequence each).")
    var toolsPerStep = 4

    @Option(help: "Peak learning rate of the generator.")
    var lr: Float = 1e-3

    @Option(help: "Width T of a tool's code.")
    var codeWidth = 64

    @Option(help: "Width C of a layer-and-projection code.")
    var hiddenWidth = 32

    @Option(help: "Every this-many-th training tool is kept for validation.")
    var validationEvery = 12

    @Option(help: "Validation sequences per validation tool.")
    var validationSequences = 2

    @Option(help: "Checkpoint (and validate) every this many generator steps.")
    var checkpointEvery = 25

    @Option(help: "Seed of the data order and the generator's initialisation.")
    var seed: UInt64 = 0

    @Option(help: "Compute threads.")
    var threads = 2

    func validate() throws {
        guard sharedSteps > 0, steps > 0, toolsPerStep > 0, codeWidth > 0, hiddenWidth > 0, validationEvery > 1,
              checkpointEvery > 0, threads > 0 else {
            throw ValidationError("steps, widths, --tools-per-step, --checkpoint-every and --threads must be positive; --validation-every at least 2")
        }
    }

    func run() throws {
        let started = Date()
        let workDirectory = URL(fileURLWithPath: out, isDirectory: true)
        try FileManager.default.createDirectory(at: workDirectory, withIntermediateDirectories: true)
        let lm = try modelOptions.load()
        let config = lm.model.config
        let compute = ComputeThreads(threads)
        let catalogue = try ToolCatalogue.load(file: URL(fileURLWithPath: tools))
        let held = try HeldOutTools(file: heldOut, questions: heldOutQuestions)
        let candidates = catalogue.tools.filter { !held.holds($0) && !$0.name.hasPrefix("_") }
        let validation = candidates.enumerated().filter { $0.offset % validationEvery == validationEvery - 1 }.map(\.element)
        let validationNames = Set(validation.map(\.name))
        let training = candidates.filter { !validationNames.contains($0.name) }
        let trainingNames = Set(training.map(\.name))
        printError("generator: \(training.count) training tools, \(validation.count) validation tools; held out: \(held.names.count) tools of the first "
                   + "\(heldOutQuestions) questions of \(heldOut) and \(catalogue.tools.count - candidates.count - held.names.count) sharing their schemas")

        // The data: every instance whose calls are all training tools' (θ⁰), each tool's own (the generator).
        let trajectories = try Trajectory.load(jsonl: URL(fileURLWithPath: data))
        let builder = try InstanceBuilder(tokenizer: lm.tokenizer, catalogue: catalogue)
        func instances(of keep: Set<String>) throws -> [TrainingInstance] {
            let mine = trajectories.filter { t in t.steps.allSatisfy { $0.calls.allSatisfy { keep.contains($0.name) } } }
            return try mine.flatMap { try builder.instances($0, documentAware: true) + builder.runInstances($0, documentAware: true) }
        }
        let trainingInstances = try instances(of: trainingNames)
        let validationInstances = try instances(of: validationNames)

        // Phase 1: θ⁰.
        let checkpoints = CheckpointDirectory(root: workDirectory.appendingPathComponent("checkpoints", isDirectory: true))
        let sharedDirectory = workDirectory.appendingPathComponent("shared", isDirectory: true)
        var adapterConfig = AdapterTrainingConfig()
        adapterConfig.steps = sharedSteps
        adapterConfig.optimizer.learningRate = sharedLr
        adapterConfig.optimizer.warmupSteps = 8
        adapterConfig.seed = seed
        let display = ProgressLine()
        let stop = StopRequest()
        let shared: ToolAdapter
        if FileManager.default.fileExists(atPath: sharedDirectory.appendingPathComponent("adapter_model.safetensors").path) {
            shared = try ToolAdapter.load(peftDirectory: sharedDirectory, name: "_generator_shared", config: config)
            display.note("phase 1: shared adapter \(sharedDirectory.path) exists, kept")
        } else {
            let examples = StageData.global(trainingInstances.filter { $0.tools.allSatisfy(trainingNames.contains) }, adapter: "_generator_shared")
            display.note("phase 1: shared adapter θ⁰, \(examples.count) sequences, \(sharedSteps) steps")
            let trainer = AdapterTrainer(model: lm.model, config: adapterConfig, threads: compute)
            trainer.checkpoints = checkpoints
            trainer.resume = true
            let adapter = trainer.initialAdapter("_generator_shared")
            guard try trainer.train(stage: "generator-shared", job: "shared", adapters: [adapter], examples: examples,
                                    progress: { display.show($0); return !stop.requested }) else {
                display.note("stopped: rerun the same command to continue")
                throw ExitCode(130)
            }
            let tmp = workDirectory.appendingPathComponent(".shared-\(UUID().uuidString)", isDirectory: true)
            try adapter.save(peftDirectory: tmp, baseModel: lm.path)
            try FileManager.default.moveItem(at: tmp, to: sharedDirectory)
            shared = adapter
        }

        // The documents' encodings, cached (the gate's encoder over name, description and parameters).
        let encodings = try cachedEncodings(training + validation, model: lm, threads: compute,
                                            file: workDirectory.appendingPathComponent("encodings.json"), display: display)
        func tool(_ spec: ToolSpec, _ pool: [TrainingInstance], limit: Int? = nil) -> HypernetworkTrainingTool {
            let examples = StageData.pretraining(pool, tool: spec.name).filter { $0.ids.count <= adapterConfig.maxTokens }
            let sequences = examples.prefix(limit ?? examples.count).map { (ids: $0.ids, targets: $0.targets) }
            return HypernetworkTrainingTool(name: spec.name, encoding: encodings[spec.name]!, sequences: Array(sequences))
        }
        let trainingTools = training.map { tool($0, trainingInstances) }.filter { !$0.sequences.isEmpty }
        let validationTools = validation.map { tool($0, validationInstances, limit: validationSequences) }.filter { !$0.sequences.isEmpty }

        // Phase 2: the generator.
        let shape = AdapterHypernetworkShape(encodingWidth: config.hiddenSize, codeWidth: codeWidth, hiddenWidth: hiddenWidth,
                                             layers: config.layerCount, rank: shared.rank, alpha: shared.alpha, targets: shared.targets,
                                             hiddenSize: config.hiddenSize, intermediateSize: config.intermediateSize)
        let provenance = AdapterHypernetworkProvenance(version: "g000000", trainingTools: trainingTools.map(\.name).sorted(),
                                                       heldOutTools: held.names.sorted(),
                                                       shared: "θ⁰: \(sharedSteps) steps on the training tools' data (\(sharedDirectory.path))")
        let generator = try AdapterHypernetwork(shared: shared, encodings: trainingTools.map(\.encoding), shape: shape,
                                                provenance: provenance, seed: seed)
        var generatorConfig = HypernetworkTrainingConfig()
        generatorConfig.steps = steps
        generatorConfig.toolsPerStep = toolsPerStep
        generatorConfig.optimizer.learningRate = lr
        generatorConfig.seed = seed
        generatorConfig.checkpointEvery = checkpointEvery
        let trainer = HypernetworkTrainer(model: lm.model, config: generatorConfig, threads: compute)
        trainer.checkpoints = checkpoints
        trainer.resume = true
        display.note("phase 2: generator (\(generator.trainableBuffers.reduce(0) { $0 + $1.count }) parameters), \(trainingTools.count) tools "
                     + "(\(trainingTools.reduce(0) { $0 + $1.sequences.count }) sequences), \(steps) steps of \(toolsPerStep) tools")
        let sharedAlone = generator.sharedAdapter(name: "shared")
        let sharedLoss = trainer.meanLoss(validationTools) { _ in sharedAlone }
        let finished = try trainer.train(generator, tools: trainingTools, progress: { p in
            display.show(p)
            if p.step % checkpointEvery == 0 || p.step == p.totalSteps {
                // The generator as it stands, usable before the run ends (bench new-tool, eval --generator).
                generator.provenance.version = String(format: "g%06d", p.step)
                do { try generator.save(to: workDirectory.appendingPathComponent("generator-latest.safetensors")) } catch {
                    display.note("could not save generator-latest.safetensors: \(error)")
                }
                let generated = trainer.meanLoss(validationTools) { generator.generate(name: $0.name, encoding: $0.encoding) }
                display.note(String(format: "validation at step %d: %d tools, NLL per target token %.4f generated, %.4f θ⁰ alone",
                                    p.step, validationTools.count, generated, sharedLoss))
            }
            return !stop.requested
        })
        guard finished else {
            display.note("stopped: rerun the same command to continue")
            throw ExitCode(130)
        }
        generator.provenance.version = String(format: "g%06d", steps)
        let file = workDirectory.appendingPathComponent("generator.safetensors")
        try generator.save(to: file)
        display.note("done in \(TrainingProgress.duration(Date().timeIntervalSince(started))): \(file.path) (\(generator.provenance.version))")
    }

    /// Each tool's document encoding, read from `file` when it holds them all, else computed and written.
    func cachedEncodings(_ specs: [ToolSpec], model lm: LanguageModel, threads: ComputeThreads, file: URL,
                         display: ProgressLine) throws -> [String: [Float]] {
        var cache = (try? JSONDecoder().decode([String: [Float]].self, from: Data(contentsOf: file))) ?? [:]
        let missing = specs.filter { cache[$0.name]?.count != lm.model.config.hiddenSize }
        if missing.isEmpty { return cache }
        display.note("encoding \(missing.count) tool documents")
        let encoder = AdapterHypernetwork.documentEncoder(model: lm.model, tokenizer: lm.tokenizer, threads: threads)
        for spec in missing { cache[spec.name] = AdapterHypernetwork.encoding(of: spec, encoder: encoder) }
        try JSONEncoder().encode(cache).write(to: file, options: .atomic)
        return cache
    }
}
