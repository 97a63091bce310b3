// `--adapter DIR=WEIGHT`: PEFT LoRA adapters fused into the forward pass of `logits` and `generate`.
import ArgumentParser
import Foundation
import LLM
import ParaTool

struct AdapterOptions: ParsableArguments {
    @Option(name: .customLong("adapter"), help: ArgumentHelp(
        "A PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) and its weight, DIR=WEIGHT. Repeatable: the adapters are fused as y = Wx + Σ w·(α/r)·B(Ax).",
        valueName: "dir=weight"))
    var adapters: [String] = []

    /// The parsed (folder, weight) pairs.
    func parsed() throws -> [(path: String, weight: Float)] {
        try adapters.map { spec in
            guard let eq = spec.lastIndex(of: "="), let w = Float(spec[spec.index(after: eq)...]), w.isFinite,
                  !spec[..<eq].isEmpty else {
                throw UsageError("--adapter takes DIR=WEIGHT with a finite number for WEIGHT, got '\(spec)'")
            }
            return (String(spec[..<eq]), w)
        }
    }

    /// Loads the adapters (checked against `config`) and attaches them to `transformer` for one
    /// sequence; returns the mixture (empty when no --adapter was given).
    func attach(to transformer: Transformer, config: ModelConfig) throws -> AdapterMixture? {
        let specs = try parsed()
        guard !specs.isEmpty else { return nil }
        let components = try specs.map { spec -> (adapter: ToolAdapter, weight: Float) in
            (try ToolAdapter.load(peftDirectory: URL(fileURLWithPath: spec.path), config: config), spec.weight)
        }
        return Self.attach(Mixture(components), to: transformer)
    }

    /// Fuses `mixture` into `transformer` for one sequence; the caller keeps the returned object
    /// alive (the transformer holds it weakly).
    static func attach(_ mixture: Mixture, to transformer: Transformer) -> AdapterMixture {
        let branches = AdapterMixture(threads: transformer.decodeThreads)
        branches.mixtures = [mixture]
        transformer.branches = branches
        return branches
    }
}
