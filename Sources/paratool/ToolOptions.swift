// `--tools FILE --gate DIR --adapter-store DIR`: let the gate choose the tools' adapters for a
// query (generate), and the request files that `flops` reads.
import ArgumentParser
import Foundation
import LLM
import ParaTool

struct ToolOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Tool catalogue: BFCL function list or questions (JSON/JSONL), OpenAI tools array, or ToolSpec array.", valueName: "file"))
    var tools: String?

    @Option(help: ArgumentHelp("A gate saved by ParaTool (gate_config.json + gate.safetensors). Default: the newest in <adapter-store>/.gates/; without any, a fresh untrained gate is used and said so.", valueName: "dir"))
    var gate: String?

    @Option(help: ArgumentHelp("Adapter store: <dir>/<tool>/<version>/ with PEFT files; each tool's latest version is used.", valueName: "dir"))
    var adapterStore: String?

    @Option(help: "Tool selection: \(SelectionMode.allCases.map(\.rawValue).joined(separator: ", ")).")
    var mode: String = SelectionMode.paratool.rawValue

    @Option(help: "Keep the N highest-weighted tools and renormalise.")
    var topN: Int?

    @Option(help: "Candidate tools, comma-separated (default: the whole catalogue).")
    var candidates: String?

    @Option(help: "The gold tool, for --mode oracle.")
    var goldTool: String?

    @Option(help: "Most calls in the answer (default: no limit but the grammar's 16); 1 asks for a single call.")
    var maxCalls: Int?

    @Flag(help: "Decode without the call-grammar constraint (ablation): the answer may then name tools, keys or types no candidate has.")
    var unconstrained = false

    func catalogue() throws -> ToolCatalogue {
        guard let tools else { throw UsageError("--tools is required here") }
        return try ToolCatalogue.load(file: URL(fileURLWithPath: tools))
    }

    func selectionMode() throws -> SelectionMode {
        guard let m = SelectionMode(rawValue: mode) else {
            throw UsageError("--mode must be one of \(SelectionMode.allCases.map(\.rawValue).joined(separator: ", ")), got '\(mode)'")
        }
        return m
    }

    /// Refusal of `--adapter` together with `--tools`.
    static let adapterConflict = UsageError("--adapter and --tools do not combine: with --tools the gate chooses")

    /// The engine request these options describe for `query`.
    func request(query: String, maxNewTokens: Int = 96) throws -> ToolCallRequest {
        if let maxCalls, maxCalls < 1 { throw UsageError("--max-calls must be at least 1") }
        var request = ToolCallRequest(id: "cli", query: query, candidates: candidateList, maxNewTokens: maxNewTokens, topN: topN,
                                      mode: try selectionMode(), goldTool: goldTool)
        request.maxCalls = maxCalls
        return request
    }

    var candidateList: [String] {
        candidates?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } ?? []
    }

    /// The engine for `lm` with the catalogue, gate and adapters these options name.
    func engine(_ lm: LanguageModel) throws -> ToolCallEngine {
        let catalogue = try catalogue()
        let stored = adapterStore.flatMap { AdapterStore.latestGate(root: URL(fileURLWithPath: $0))?.path }
        let gateNetwork = try loadGate(gate ?? stored, for: lm) {
            printError("note: no --gate given and none in the store: using an untrained gate (seed 0); weights are not meaningful until it is trained")
        }
        let provider: AdapterProvider
        if let adapterStore {
            provider = StoreAdapters(store: try AdapterStore(root: URL(fileURLWithPath: adapterStore)), config: lm.model.config)
        } else {
            printError("note: no --adapter-store given: tools have no adapters, the base model answers")
            provider = InMemoryAdapters()
        }
        return try ToolCallEngine(model: lm, catalogue: catalogue, adapters: provider, gate: gateNetwork, constrained: !unconstrained)
    }
}

/// The gate saved in `directory`, checked against `lm`'s hidden size; without a directory a fresh
/// untrained gate, after `warnUntrained` has said so.
func loadGate(_ directory: String?, for lm: LanguageModel, warnUntrained: () -> Void) throws -> GateNetwork {
    guard let directory else {
        warnUntrained()
        return GateNetwork(config: GateConfig(dimension: lm.model.config.hiddenSize,
                                              encoderLayers: GateConfig.defaultEncoderLayers(layerCount: lm.model.config.layerCount)))
    }
    let gate = try GateNetwork.load(from: URL(fileURLWithPath: directory))
    guard gate.config.dimension == lm.model.config.hiddenSize else {
        throw UsageError("the gate's dimension \(gate.config.dimension) differs from the model's hidden size \(lm.model.config.hiddenSize)")
    }
    return gate
}

extension ToolWeight {
    /// The weight as a JSON-ready dictionary (`adapter_version` null when the tool has no adapter).
    var jsonObject: [String: Any] {
        ["tool": tool, "weight": Double(weight), "adapter_version": adapterVersion ?? NSNull()]
    }
}

extension ToolCallResponse {
    /// The response as a JSON-ready dictionary.
    var jsonObject: [String: Any] {
        var action: [String: Any]
        switch self.action {
        case .answer(let text): action = ["answer": text]
        case .calls(let calls):
            action = ["calls": calls.map { ["name": $0.name, "arguments_json": $0.arguments.serialized()] }]
        }
        return [
            "id": id, "action": action, "text": text,
            "diagnostics": diagnostics.map(\.description),
            "weights": weights.map(\.jsonObject),
            "prompt_tokens": promptTokens, "generated_tokens": generatedTokens,
            "flops": ["base_linear": flops.baseLinear, "attention": flops.attention, "lora": flops.lora,
                      "encoder": flops.encoder, "gate": flops.gate, "total": flops.total,
                      "context_docs_equivalent": contextDocsFlops],
        ]
    }
}
