// `paratool bench backward`: time and peak memory of the LoRA backward pass on the default model
// for one sequence, with stored activations.
import ArgumentParser
import Foundation
import LLM
import ParaTool
import ParaToolTraining
import Tensor

struct BackwardBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backward",
        abstract: "Seconds and peak RSS of the loss and LoRA gradients for one sequence (rank 16, all FFN linears).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Comma-separated sequence lengths.")
    var lengths = "256,1024"

    @Option(help: "Target tokens at the end of each sequence (the loss's tokens).")
    var targets = 32

    func run() throws {
        let lm = try LanguageModel.load(path: modelOptions.model)
        let adapter = ToolAdapter.initialized(name: "bench", config: lm.model.config, rank: 16, alpha: 64, seed: 1, randomB: true)
        var rng = SeededGenerator(seed: 5)
        print("| tokens | seconds | tokens/s | peak RSS after (MB) |")
        print("|---:|---:|---:|---:|")
        for n in lengths.split(separator: ",").compactMap({ Int($0) }) {
            let ids = (0..<n).map { _ in 100 + Int(rng.next() % UInt64(lm.model.config.vocabSize - 100)) }
            let start = Date()
            _ = LoRABackward(model: lm.model).lossAndGradients(ids: ids, targets: min(targets, n - 1), mixture: Mixture([(adapter, 1)]))
            let t = Date().timeIntervalSince(start)
            print(String(format: "| %d | %.2f | %.0f | %.0f |", n, t, Double(n) / t, Double(ProcessMemory.peakResidentBytes) / 1_048_576))
        }
    }
}
