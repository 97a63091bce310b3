// PEFTAdapterIO: reading and writing a ToolAdapter in the Hugging Face PEFT LoRA layout — a
// folder with `adapter_config.json` and `adapter_model.safetensors` whose tensors are named
// `base_model.model.model.layers.{l}.mlp.{gate_proj|up_proj|down_proj}.lora_{A|B}.weight`.
// Only plain LoRA on the FFN projections is accepted; every other PEFT option that changes the
// forward pass is refused by name.
import Foundation
import LLM
import Tensor

/// Errors raised while reading or writing a PEFT adapter folder.
public enum PEFTAdapterError: Error, CustomStringConvertible, Equatable {
    /// A required file is absent.
    case missingFile(path: String)
    /// `adapter_config.json` is malformed or lacks a required field.
    case invalidConfig(path: String, reason: String)
    /// `adapter_config.json` asks for something this runtime does not implement.
    case unsupportedConfig(path: String, reason: String)
    /// A tensor the configuration requires is absent.
    case missingTensor(name: String, path: String)
    /// A tensor's shape disagrees with the rank or the model's sizes.
    case shapeMismatch(tensor: String, expected: [Int], found: [Int], reason: String)
    /// Tensors outside the supported set (FFN LoRA A/B), e.g. attention targets.
    case unsupportedTensors(names: [String], path: String)
    /// An FFN LoRA tensor the configuration does not target.
    case untargetedTensor(name: String, path: String, reason: String)
    /// The in-memory adapter cannot be expressed in the PEFT layout.
    case notRepresentable(reason: String)

    public var description: String {
        switch self {
        case .missingFile(let p): return "missing adapter file \(p)"
        case .invalidConfig(let p, let r): return "\(p): invalid adapter config: \(r)"
        case .unsupportedConfig(let p, let r): return "\(p): unsupported adapter config: \(r)"
        case .missingTensor(let n, let p): return "\(p): missing tensor '\(n)'"
        case .shapeMismatch(let t, let e, let f, let r):
            return "tensor '\(t)' has shape \(f), expected \(e) (\(r))"
        case .unsupportedTensors(let names, let p):
            let shown = names.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            let more = names.count > 5 ? " and \(names.count - 5) more" : ""
            return "\(p): unsupported tensors \(shown)\(more); only LoRA A/B on mlp.gate_proj, "
                + "mlp.up_proj and mlp.down_proj are supported"
        case .untargetedTensor(let n, let p, let r): return "\(p): tensor '\(n)' is not targeted by the config: \(r)"
        case .notRepresentable(let r): return "adapter cannot be saved in the PEFT layout: \(r)"
        }
    }
}

extension ToolAdapter {
    /// The PEFT configuration file name.
    public static let peftConfigFileName = "adapter_config.json"
    /// The PEFT weights file name.
    public static let peftWeightsFileName = "adapter_model.safetensors"

    /// The PEFT tensor name of the `lora_A` (`isA`) or `lora_B` weight on `projection` of `layer`.
    public static func peftTensorName(layer: Int, projection: FFNProjection, isA: Bool) -> String {
        "base_model.model.model.layers.\(layer).mlp.\(projection.rawValue).lora_\(isA ? "A" : "B").weight"
    }

    /// Reads a PEFT LoRA adapter folder (`adapter_config.json` + `adapter_model.safetensors`).
    ///
    /// F32 and BF16 tensors are read in place from the mapped file (BF16 stays BF16: decode and
    /// prefill read it as stored); F16 is converted to float32. The configuration
    /// must be plain LoRA (`peft_type` LORA, `bias` none, no DoRA, no rsLoRA, no
    /// `fan_in_fan_out`, empty `rank_pattern`/`alpha_pattern`, nothing in `modules_to_save`);
    /// rsLoRA is refused rather than converted, so a loaded adapter's scale is always alpha / r.
    /// `target_modules` may be a list (PEFT suffix matching) or a regular expression (full
    /// match), and must select only FFN projections. Layers excluded by `layers_to_transform`
    /// have no pairs; every other targeted module must have both tensors.
    ///
    /// - Parameters:
    ///   - name: the adapter's name; defaults to the folder's name.
    ///   - config: when given, the layer count and A/B shapes are checked against the model's
    ///     hidden and intermediate sizes; otherwise shapes are checked for mutual consistency.
    /// The most layers an adapter may have (no published decoder comes near).
    public static let maxPEFTLayers = 4096

    public static func load(peftDirectory: URL, name: String? = nil, config: ModelConfig? = nil) throws -> ToolAdapter {
        let configURL = peftDirectory.appendingPathComponent(peftConfigFileName)
        let weightsURL = peftDirectory.appendingPathComponent(peftWeightsFileName)
        let fm = FileManager.default
        for url in [configURL, weightsURL] where !fm.fileExists(atPath: url.path) {
            throw PEFTAdapterError.missingFile(path: url.path)
        }
        let peft = try PEFTLoRAConfig(data: try Data(contentsOf: configURL), path: configURL.path)
        let file = try SafetensorsFile(path: weightsURL.path)
        let path = weightsURL.path

        // Sort the file's tensors into FFN LoRA tensors and everything else.
        var present = [Int: [FFNProjection: (a: Bool, b: Bool)]]()
        var unsupported = [String]()
        for tensor in file.entries.keys.sorted() {
            guard let (layer, projection, isA) = parsePEFTName(tensor) else {
                unsupported.append(tensor)
                continue
            }
            var entry = present[layer, default: [:]][projection, default: (false, false)]
            if isA { entry.a = true } else { entry.b = true }
            present[layer, default: [:]][projection] = entry
        }
        guard unsupported.isEmpty else { throw PEFTAdapterError.unsupportedTensors(names: unsupported, path: path) }

        let maxPresent = present.keys.max() ?? -1
        let layerCount = config?.layerCount ?? (max(maxPresent, peft.layersToTransform?.max() ?? -1) + 1)
        // Without the model's config the layer count comes from the files, so a hostile index
        // (`layers.99999999999.` in a name, or in layers_to_transform) must not size the arrays.
        guard layerCount <= maxPEFTLayers else {
            throw PEFTAdapterError.invalidConfig(
                path: configURL.path, reason: "layer \(layerCount - 1) is beyond the \(maxPEFTLayers) layers an adapter may have")
        }

        // Which modules the config targets, and the file must hold exactly those.
        var targeted = [[FFNProjection]](repeating: [], count: layerCount)
        for layer in 0..<layerCount {
            targeted[layer] = FFNProjection.allCases.filter { peft.targets(layer: layer, projection: $0) }
        }
        for layer in present.keys.sorted() {
            let projections = present[layer]!
            for projection in FFNProjection.allCases where projections[projection] != nil
                && !(layer < layerCount && targeted[layer].contains(projection)) {
                let reason = layer >= layerCount
                    ? "the model has only \(layerCount) layers"
                    : "target_modules \(peft.targetDescription) and layers_to_transform "
                        + "\(peft.layersToTransform.map { "\($0)" } ?? "null") do not select it"
                throw PEFTAdapterError.untargetedTensor(
                    name: peftTensorName(layer: layer, projection: projection, isA: projections[projection]!.a),
                    path: path, reason: reason)
            }
        }

        // Shapes: A is r × in, B is out × r; in/out from the model config, else from the first
        // tensor that fixes them.
        let r = peft.rank
        var known = [String: (size: Int, from: String)]()
        if let config {
            known["hidden"] = (config.hiddenSize, "hidden_size of the model config")
            known["intermediate"] = (config.intermediateSize, "intermediate_size of the model config")
        }
        func check(_ tensor: String, rankAxis: Int, sizeName: String) throws {
            let shape = file.entries[tensor]!.shape
            var expected = [r, r]
            expected[1 - rankAxis] = known[sizeName]?.size ?? (shape.count == 2 ? shape[1 - rankAxis] : -1)
            guard shape.count == 2, shape[rankAxis] == r, shape[1 - rankAxis] == expected[1 - rankAxis] else {
                let reason = shape.count != 2 ? "LoRA weights are 2-D"
                    : shape[rankAxis] != r ? "r is \(r) in \(peftConfigFileName)"
                    : "\(sizeName) size is \(known[sizeName]!.size) from \(known[sizeName]!.from)"
                throw PEFTAdapterError.shapeMismatch(tensor: tensor, expected: expected, found: shape, reason: reason)
            }
            if known[sizeName] == nil { known[sizeName] = (shape[1 - rankAxis], "tensor '\(tensor)'") }
        }

        var targets = Set<FFNProjection>()
        var pairs = [[FFNProjection: LoRAPair]](repeating: [:], count: layerCount)
        for layer in 0..<layerCount {
            for projection in targeted[layer] {
                let aName = peftTensorName(layer: layer, projection: projection, isA: true)
                let bName = peftTensorName(layer: layer, projection: projection, isA: false)
                for n in [aName, bName] where file.entries[n] == nil {
                    throw PEFTAdapterError.missingTensor(name: n, path: path)
                }
                let input = projection == .down ? "intermediate" : "hidden"
                let output = projection == .down ? "hidden" : "intermediate"
                try check(aName, rankAxis: 0, sizeName: input)
                try check(bName, rankAxis: 1, sizeName: output)
                let aEntry = file.entries[aName]!, bEntry = file.entries[bName]!
                if aEntry.dtype == "BF16" && bEntry.dtype == "BF16" && aEntry.start % 2 == 0 && bEntry.start % 2 == 0 {
                    // Read in place: the pages are shared by every process that maps the file.
                    pairs[layer][projection] = LoRAPair(
                        a: try BlockMatrix(mapping: file.file, offset: aEntry.start, type: .bf16, rows: aEntry.shape[0], cols: aEntry.shape[1]),
                        b: try BlockMatrix(mapping: file.file, offset: bEntry.start, type: .bf16, rows: bEntry.shape[0], cols: bEntry.shape[1]))
                } else {
                    pairs[layer][projection] = LoRAPair(
                        a: MatrixView(try file.load(aName), rows: aEntry.shape[0], cols: aEntry.shape[1]),
                        b: MatrixView(try file.load(bName), rows: bEntry.shape[0], cols: bEntry.shape[1]))
                }
                targets.insert(projection)
            }
        }
        return ToolAdapter(
            name: name ?? peftDirectory.lastPathComponent, rank: r, alpha: peft.alpha,
            targets: FFNProjection.allCases.filter(targets.contains), pairs: pairs)
    }

    /// Writes this adapter as a PEFT LoRA folder (created if needed): `adapter_config.json`
    /// (plain LoRA, `task_type` CAUSAL_LM, JSON with sorted keys like PEFT writes it) and
    /// `adapter_model.safetensors` (in the adapter's format, float32 or bfloat16 — the dtypes PEFT
    /// saves —, `__metadata__` `{"format": "pt"}`), each written
    /// atomically. Layers without pairs are left out through `layers_to_transform`; a layer
    /// must carry either all of `targets` or none.
    public func save(peftDirectory: URL, baseModel: String) throws {
        var tensors = [SafetensorsTensor]()
        var adaptedLayers = [Int]()
        for (layer, layerPairs) in pairs.enumerated() where !layerPairs.isEmpty {
            let extra = layerPairs.keys.filter { !targets.contains($0) }
            let missing = targets.filter { layerPairs[$0] == nil }
            guard extra.isEmpty, missing.isEmpty else {
                throw PEFTAdapterError.notRepresentable(
                    reason: "layer \(layer) has pairs on \(layerPairs.keys.map(\.rawValue).sorted()) but the targets are "
                        + "\(targets.map(\.rawValue).sorted()); PEFT needs the same modules in every adapted layer")
            }
            for projection in targets {
                let pair = layerPairs[projection]!
                guard pair.rank == rank else {
                    throw PEFTAdapterError.notRepresentable(
                        reason: "layer \(layer) \(projection.rawValue) has rank \(pair.rank), the adapter's rank is \(rank)")
                }
                for (isA, weights) in [(true, pair.aWeights), (false, pair.bWeights)] {
                    let tensorName = Self.peftTensorName(layer: layer, projection: projection, isA: isA)
                    tensors.append(pair.format == .float32
                        ? SafetensorsTensor(name: tensorName, matrix: isA ? pair.a : pair.b)
                        : SafetensorsTensor(name: tensorName, shape: [weights.rows, weights.cols], dtype: pair.format.safetensorsDType,
                                            elementSize: 2, bytes: weights.storedBytes()))
                }
            }
            adaptedLayers.append(layer)
        }
        let allLayers = adaptedLayers == Array(0..<pairs.count)
        let configJSON = PEFTLoRAConfig.render(
            rank: rank, alpha: alpha, targets: targets.map(\.rawValue).sorted(), baseModel: baseModel,
            layersToTransform: allLayers ? nil : adaptedLayers)

        try FileManager.default.createDirectory(at: peftDirectory, withIntermediateDirectories: true)
        try SafetensorsWriter.write(tensors, metadata: ["format": "pt"],
                                    to: peftDirectory.appendingPathComponent(Self.peftWeightsFileName))
        try DurableFiles.write(configJSON, to: peftDirectory.appendingPathComponent(Self.peftConfigFileName))
    }

    /// `(layer, projection, isA)` for a PEFT FFN LoRA tensor name, nil for anything else.
    static func parsePEFTName(_ name: String) -> (Int, FFNProjection, Bool)? {
        let prefix = "base_model.model.model.layers."
        guard name.hasPrefix(prefix) else { return nil }
        let parts = name.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[1] == "mlp", parts[4] == "weight",
              let layer = Int(parts[0]), layer >= 0, String(layer) == parts[0],
              let projection = FFNProjection(rawValue: String(parts[2])),
              parts[3] == "lora_A" || parts[3] == "lora_B" else { return nil }
        return (layer, projection, parts[3] == "lora_A")
    }
}

/// The fields of a PEFT `adapter_config.json` that this runtime honours, validated.
struct PEFTLoRAConfig {
    enum Targets {
        /// PEFT list form: a module matches an entry equal to its name or to a dotted suffix.
        case names([String])
        /// PEFT string form: a regular expression that must match the whole module name.
        case pattern(NSRegularExpression, String)
    }

    let rank: Int
    let alpha: Float
    let targetModules: Targets
    let layersToTransform: [Int]?
    let path: String

    init(data: Data, path: String) throws {
        self.path = path
        func invalid(_ r: String) -> PEFTAdapterError { .invalidConfig(path: path, reason: r) }
        func unsupported(_ r: String) -> PEFTAdapterError { .unsupportedConfig(path: path, reason: r) }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw invalid("not a JSON object")
        }
        guard let type = json["peft_type"] as? String else { throw invalid("no peft_type") }
        guard type == "LORA" else { throw unsupported("peft_type is \(type); only LORA adapters are supported") }

        guard let r = json["r"] as? NSNumber, r.doubleValue == Double(r.intValue), r.intValue > 0 else {
            throw invalid("r must be a positive integer, found \(json["r"].map { "\($0)" } ?? "nothing")")
        }
        guard let alpha = json["lora_alpha"] as? NSNumber, alpha.doubleValue.isFinite else {
            throw invalid("lora_alpha must be a number, found \(json["lora_alpha"].map { "\($0)" } ?? "nothing")")
        }
        rank = r.intValue
        self.alpha = alpha.floatValue

        func isSet(_ key: String) -> Bool {
            switch json[key] {
            case nil, is NSNull: return false
            case let b as Bool: return b
            case let d as [String: Any]: return !d.isEmpty
            case let a as [Any]: return !a.isEmpty
            case let s as String: return !s.isEmpty
            default: return true
            }
        }
        let refused: [(String, String)] = [
            ("use_dora", "DoRA (use_dora) changes the forward pass and is not implemented"),
            ("use_rslora", "rsLoRA (use_rslora, scale alpha/sqrt(r)) is not implemented; "
                + "convert with lora_alpha = alpha·sqrt(r) and use_rslora false"),
            ("fan_in_fan_out", "fan_in_fan_out (transposed Conv1D weights) is not supported"),
            ("lora_bias", "lora_bias (a bias on lora_B) is not supported"),
            ("rank_pattern", "per-module ranks (rank_pattern) are not supported"),
            ("alpha_pattern", "per-module alphas (alpha_pattern) are not supported"),
            ("modules_to_save", "modules_to_save (fully trained extra modules) is not supported"),
            ("exclude_modules", "exclude_modules is not supported"),
            ("layer_replication", "layer_replication is not supported"),
            ("use_qalora", "QA-LoRA (use_qalora) is not supported"),
            ("alora_invocation_tokens", "activated LoRA (alora_invocation_tokens) is not supported"),
            ("target_parameters", "target_parameters is not supported"),
            ("trainable_token_indices", "trainable_token_indices is not supported"),
        ]
        for (key, reason) in refused where isSet(key) { throw unsupported(reason) }
        if let bias = json["bias"], !(bias is NSNull) {
            guard let b = bias as? String, b == "none" else {
                throw unsupported("bias is \(bias); only \"none\" is supported")
            }
        }

        switch json["target_modules"] {
        case let list as [Any]:
            let names = list.compactMap { $0 as? String }
            guard names.count == list.count, !names.isEmpty else { throw invalid("target_modules must list module names") }
            let other = names.filter { n in
                let parts = n.split(separator: ".", omittingEmptySubsequences: false)
                return FFNProjection(rawValue: String(parts.last ?? "")) == nil
                    || (parts.count > 1 && parts[parts.count - 2] != "mlp")
            }
            guard other.isEmpty else {
                throw unsupported("target_modules \(other) are not FFN projections; only gate_proj, up_proj and "
                    + "down_proj can be adapted")
            }
            targetModules = .names(names)
        case let pattern as String:
            guard pattern != "all-linear" else {
                throw unsupported("target_modules 'all-linear' also adapts the attention linears; only gate_proj, "
                    + "up_proj and down_proj can be adapted")
            }
            guard let regex = try? NSRegularExpression(pattern: "^(?:" + pattern + ")$") else {
                throw invalid("target_modules '\(pattern)' is not a valid regular expression")
            }
            targetModules = .pattern(regex, pattern)
        default:
            throw invalid("target_modules must be a list of names or a regular expression")
        }

        switch json["layers_to_transform"] {
        case nil, is NSNull: layersToTransform = nil
        case let n as NSNumber: layersToTransform = [n.intValue]
        case let list as [Any]:
            let layers = list.compactMap { ($0 as? NSNumber)?.intValue }
            guard layers.count == list.count, layers.allSatisfy({ $0 >= 0 }) else {
                throw invalid("layers_to_transform must be layer indices")
            }
            layersToTransform = layers
        default: throw invalid("layers_to_transform must be an integer or a list of integers")
        }
    }

    /// Whether the config adapts `projection` of `layer`.
    func targets(layer: Int, projection: FFNProjection) -> Bool {
        if let layers = layersToTransform, !layers.contains(layer) { return false }
        let module = "model.layers.\(layer).mlp.\(projection.rawValue)"
        switch targetModules {
        case .names(let names):
            return names.contains { module == $0 || module.hasSuffix("." + $0) }
        case .pattern(let regex, _):
            return regex.firstMatch(in: module, range: NSRange(module.startIndex..., in: module)) != nil
        }
    }

    var targetDescription: String {
        switch targetModules {
        case .names(let names): return "\(names)"
        case .pattern(_, let p): return "'\(p)'"
        }
    }

    /// A PEFT-compatible `adapter_config.json` for plain LoRA, keys sorted, 2-space indent
    /// (the format of PEFT's `save_pretrained`).
    static func render(rank: Int, alpha: Float, targets: [String], baseModel: String, layersToTransform: [Int]?) -> Data {
        func string(_ s: String) -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            return String(decoding: (try? encoder.encode(s)) ?? Data("\"\"".utf8), as: UTF8.self)
        }
        let alphaText = alpha == alpha.rounded() && abs(alpha) < 1e9 ? String(Int(alpha)) : "\(alpha)"
        let fields: [(String, String)] = [
            ("alpha_pattern", "{}"),
            ("base_model_name_or_path", string(baseModel)),
            ("bias", string("none")),
            ("fan_in_fan_out", "false"),
            ("inference_mode", "true"),
            ("init_lora_weights", "true"),
            ("layers_to_transform", layersToTransform.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" } ?? "null"),
            ("lora_alpha", alphaText),
            ("lora_dropout", "0.0"),
            ("modules_to_save", "null"),
            ("peft_type", string("LORA")),
            ("r", String(rank)),
            ("rank_pattern", "{}"),
            ("target_modules", "[\n" + targets.map { "    " + string($0) }.joined(separator: ",\n") + "\n  ]"),
            ("task_type", string("CAUSAL_LM")),
            ("use_dora", "false"),
            ("use_rslora", "false"),
        ]
        let body = fields.map { "  " + string($0.0) + ": " + $0.1 }.joined(separator: ",\n")
        return Data(("{\n" + body + "\n}").utf8)
    }
}
