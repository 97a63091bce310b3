// `paratool bench gate`: what the gate's selection costs over a large catalogue: the MLP scoring
// each tool alone (one matrix-vector product per tool and layer), all tools as one batch (one
// sgemm per layer), and the batch after the shortlist by tool-vector similarity.
import ArgumentParser
import Foundation
import ParaTool
import Tensor

struct GateBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate",
        abstract: "Time the gate's scoring of a catalogue of N tools: one by one, batched, and shortlisted.")

    @Option(help: "Tools in the catalogue (random vectors).")
    var tools = 2000

    @Option(help: "The context and tool vector width (SmolLM2-135M: 576).")
    var dimension = 576

    @Option(help: "The shortlist scored by the MLP.")
    var shortlist = ToolCallEngine.defaultSelectionShortlist

    @Option(help: "Repetitions; the best is reported.")
    var repeats = 5

    func run() throws {
        guard tools >= 1, dimension >= 1, shortlist >= 1, repeats >= 1 else { throw ValidationError("every option must be at least 1") }
        let gate = GateNetwork(config: GateConfig(dimension: dimension), seed: 1)
        var rng = SeededGenerator(seed: 2)
        let vectors = (0..<tools).map { _ in (0..<dimension).map { _ in rng.uniform(-1, 1) } }
        let context = (0..<dimension).map { _ in rng.uniform(-1, 1) }
        func best(_ body: () -> [Float]) -> (ms: Double, result: [Float]) {
            var fastest = Double.infinity
            var result: [Float] = []
            for _ in 0..<repeats {
                let start = ContinuousClock.now
                result = body()
                let elapsed = (ContinuousClock.now - start).components
                fastest = min(fastest, Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds) / 1e15)
            }
            return (fastest, result)
        }
        let single = best { vectors.map { gate.score(context: context, tool: $0) } }
        let batched = best { gate.scores(context: context, tools: vectors) }
        let narrowed = best {
            let similarity = vectors.map { ToolSelection.cosine(context, $0) }
            let kept = vectors.indices.sorted { similarity[$0] > similarity[$1] }.prefix(shortlist)
            return gate.scores(context: context, tools: kept.map { vectors[$0] })
        }
        let difference = zip(single.result, batched.result).map { abs($0 - $1) }.max() ?? 0
        print(CPUDescription.line)
        print("gate \(gate.config.layerWidths.map(String.init).joined(separator: "→")), \(tools) tools, best of \(repeats)")
        print("| scoring | ms per request |")
        print("|---|---|")
        print(String(format: "| each tool alone (%d MLP passes) | %.1f |", tools, single.ms))
        print(String(format: "| all tools, one sgemm per layer | %.1f |", batched.ms))
        print(String(format: "| shortlist of %d by cosine, then one batch | %.1f |", min(shortlist, tools), narrowed.ms))
        print(String(format: "largest difference between the first two: %.2e", difference))
    }
}
