// `paratool bench backward`: the throughput of a stage-1 training step (forward with stored
// activations, LoRA backward through the frozen decoder, AdamW update) beside the prefill
// throughput of the inference Transformer on the same tokens, measured in the same run, with
// the CPU's vector features, and the peak memory.
import ArgumentParser
import Foundation
import LLM
import ParaTool
import ParaToolTraining
import Tensor

struct BackwardBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backward",
        abstract: "Training-step tokens/s beside prefill tokens/s on the same tokens (rank 16, all FFN linears).",
        discussion: """
            A step costs about twice a prefill's FLOPs (the forward, then the input-gradient products of the \
            backward; the frozen base needs no weight gradients), so a ratio of 0.5 is the floor of an equally \
            efficient implementation. Prompts are random token ids (seeded); rounds alternate prefill and step \
            at every length so a slow stretch of a shared machine hits both; each figure is the best round.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Comma-separated sequence lengths.")
    var lengths = "256,1024"

    @Option(help: "Target tokens at the end of each sequence (the loss's tokens).")
    var targets = 32

    @Option(help: "Tools per training step, as stage 1's --tools-per-step: one sequence each (all of the same length, in one pass), each tool with its own adapter and AdamW update.")
    var tools = 1

    @Option(help: "Rounds (the best is kept).")
    var repeats = 3

    func run() throws {
        let lens = lengths.split(separator: ",").compactMap { Int($0) }
        guard !lens.isEmpty, lens.allSatisfy({ $0 > 1 }) else { throw ValidationError("--lengths needs lengths above 1") }
        guard tools >= 1 else { throw ValidationError("--tools must be at least 1") }
        let lm = try modelOptions.load()
        let model = lm.model
        let adapters = (0..<tools).map {
            ToolAdapter.initialized(name: "bench\($0)", config: model.config, rank: 16, alpha: 64, seed: UInt64(1 + $0), randomB: true)
        }
        let optimizers = adapters.map { AdamW(parameters: $0.parameterBuffers, config: AdamWConfig()) }
        let gradients = adapters.map { AdapterGradients(zerosLike: $0) }
        let backward = LoRABackward(model: model)
        let runner = Transformer(model: model)
        var rng = SeededGenerator(seed: 5)
        let batches = lens.map { n in
            (0..<tools).map { _ in (0..<n).map { _ in 100 + Int(rng.next() % UInt64(model.config.vocabSize - 100)) } }
        }
        let caches = batches.map { batch in batch.map { KVCache(config: model.config, capacity: $0.count) } }
        var prefill = [Double](repeating: .infinity, count: lens.count), step = prefill, peak = prefill
        for _ in 0..<max(1, repeats) {
            for (i, batch) in batches.enumerated() {
                for cache in caches[i] { cache.clear() }
                var start = Date()
                _ = runner.forward(batch.enumerated().map { BatchSegment(sequence: $0, tokens: $1) }, caches: caches[i])
                prefill[i] = min(prefill[i], Date().timeIntervalSince(start))
                start = Date()
                for g in gradients { g.zero() }
                let seqs = batch.enumerated().map { TrainingSequence(ids: $1, targets: min(targets, $1.count - 1), components: [($0, 1)]) }
                _ = backward.accumulate(seqs, adapters: adapters, into: gradients)
                for (o, g) in zip(optimizers, gradients) { o.update(gradients: g.buffers) }
                step[i] = min(step[i], Date().timeIntervalSince(start))
                peak[i] = min(peak[i], Double(ProcessMemory.peakResidentBytes) / 1_048_576)
            }
        }
        print(CPUDescription.line)
        print("OpenBLAS core \(BLASCore.name), \(backward.threads) threads; training kernels \(TrainingKernels.instructionSet); best of \(max(1, repeats))")
        print("")
        print("| tokens per step | prefill (tokens/s) | training step (tokens/s) | step / prefill | step (s) | peak RSS after the first step (MB) |")
        print("|---:|---:|---:|---:|---:|---:|")
        for (i, n) in lens.enumerated() {
            let tokens = Double(n * tools)
            let label = tools == 1 ? "\(n)" : "\(tools) × \(n)"
            print(String(format: "| %@ | %.0f | %.0f | %.2f | %.2f | %.0f |", label, tokens / prefill[i], tokens / step[i],
                         prefill[i] / step[i], step[i], peak[i]))
        }
    }

    /// The CPU's model name from /proc/cpuinfo ("unknown" where unavailable).
}
