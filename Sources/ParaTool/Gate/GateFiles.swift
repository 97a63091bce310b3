// Saving and loading a GateNetwork: `gate_config.json` (the GateConfig and the tool names in
// row order) and `gate.safetensors` (`mlp.<k>.weight` / `mlp.<k>.bias` per layer and
// `tool_vectors`, tools × dimension).
import Foundation
import LLM
import Tensor

extension GateNetwork {
    /// The configuration file of a saved gate.
    public static let configFileName = "gate_config.json"
    /// The tensor file of a saved gate.
    public static let weightsFileName = "gate.safetensors"

    private struct FileConfig: Codable {
        var gate: GateConfig
        var tools: [String]
    }

    /// Writes the gate into `directory` (created if needed); each file is replaced atomically.
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let tools = toolVectors.keys.sorted()
        var tensors = layers.enumerated().flatMap { k, layer in
            [SafetensorsTensor(name: "mlp.\(k).weight", shape: [layer.outputs, layer.inputs], buffer: layer.weight),
             SafetensorsTensor(name: "mlp.\(k).bias", shape: [layer.outputs], buffer: layer.bias)]
        }
        tensors.append(SafetensorsTensor(name: "tool_vectors", shape: [tools.count, config.dimension],
                                         values: tools.flatMap { toolVectors[$0]! }))
        try SafetensorsWriter.write(tensors, metadata: ["format": "paratool-gate"],
                                    to: directory.appendingPathComponent(Self.weightsFileName))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFiles.write(try encoder.encode(FileConfig(gate: config, tools: tools)),
                               to: directory.appendingPathComponent(Self.configFileName))
    }

    /// Reads a gate written by `save(to:)`, checking the config's widths (`GateConfig.validate`)
    /// and every shape against the config.
    public static func load(from directory: URL) throws -> GateNetwork {
        let configURL = directory.appendingPathComponent(configFileName)
        guard let data = FileManager.default.contents(atPath: configURL.path) else {
            throw GateError.invalidFile("cannot read \(configURL.path)")
        }
        let file: FileConfig
        do { file = try JSONDecoder().decode(FileConfig.self, from: data) } catch {
            throw GateError.invalidFile("\(configURL.path): \(error)")
        }
        try file.gate.validate()
        guard file.tools.count <= Int.max / file.gate.dimension else { throw GateError.invalidFile("too many tools: \(file.tools.count)") }
        let weights = try SafetensorsFile(path: directory.appendingPathComponent(weightsFileName).path)
        func tensor(_ name: String, _ shape: [Int]) throws -> FloatBuffer {
            guard let e = weights.entries[name] else { throw GateError.invalidFile("missing tensor \(name)") }
            guard e.shape == shape else { throw GateError.invalidFile("tensor \(name) has shape \(e.shape), expected \(shape)") }
            return try weights.load(name)
        }
        let widths = file.gate.layerWidths
        let layers = try zip(widths, widths.dropFirst()).enumerated().map { k, io in
            DenseLayer(weight: try tensor("mlp.\(k).weight", [io.1, io.0]), bias: try tensor("mlp.\(k).bias", [io.1]),
                       inputs: io.0, outputs: io.1)
        }
        let vectors = try tensor("tool_vectors", [file.tools.count, file.gate.dimension]).toArray()
        var table = [String: [Float]]()
        for (i, name) in file.tools.enumerated() {
            table[name] = Array(vectors[(i * file.gate.dimension)..<((i + 1) * file.gate.dimension)])
        }
        return GateNetwork(config: file.gate, layers: layers, toolVectors: table)
    }
}
