// Tests of the PEFT adapter layout (PEFTAdapterIO) and the safetensors writer, against the PEFT
// 0.21 adapters in Tests/Fixtures/hf-tiny/adapters, with the adapter-fixture helpers the
// adapter tests share.
import Foundation
import FixtureSupport
import LLM
import Tensor
import XCTest

@testable import ParaTool

/// Adapter fixture paths and helpers (the files are found by `RepositoryFixtures`).
enum AdapterTestFixtures {

    /// `adapters/tool_<k>` of the tiny Hugging Face fixtures; fails (never skips silently) when absent.
    static func adapter(_ k: Int, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        try require(RepositoryFixtures.hfTiny.appendingPathComponent("adapters/tool_\(k)"), file: file, line: line)
    }

    /// The Qwen2 model config the adapters were made for.
    static func qwen2Config() throws -> ModelConfig {
        let url = try require(RepositoryFixtures.hfTiny.appendingPathComponent("qwen2/config.json"))
        return try ModelConfig(huggingFaceJSON: try Data(contentsOf: url))
    }

    static func require(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        try RepositoryFixtures.require(url, file: file, line: line)
    }

    /// A fresh temporary directory, removed when the test ends.
    static func temporaryDirectory(_ test: XCTestCase) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("paratool-adapter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// A safetensors file's header parsed independently of the project's reader, and its raw
    /// tensor bytes by name.
    static func rawTensors(_ url: URL) throws -> (header: [String: Any], bytes: [String: Data]) {
        let data = try Data(contentsOf: url)
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as! [String: Any]
        var bytes = [String: Data]()
        for (name, value) in header where name != "__metadata__" {
            let offsets = (value as! [String: Any])["data_offsets"] as! [Int]
            bytes[name] = data.subdata(in: (8 + n + offsets[0])..<(8 + n + offsets[1]))
        }
        return (header, bytes)
    }

    /// Copies fixture adapter `k` into a fresh directory, for tests that modify it.
    static func copy(_ k: Int, test: XCTestCase) throws -> URL {
        let dir = try temporaryDirectory(test).appendingPathComponent("tool_\(k)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for f in [ToolAdapter.peftConfigFileName, ToolAdapter.peftWeightsFileName] {
            let data = try Data(contentsOf: try adapter(k).appendingPathComponent(f))
            try data.write(to: dir.appendingPathComponent(f))
        }
        return dir
    }

    /// Rewrites `adapter_config.json` in `dir` through `edit`.
    static func editConfig(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent(ToolAdapter.peftConfigFileName)
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
    }

    /// Rewrites `adapter_model.safetensors` in `dir` through `edit` on its (name, shape, values) list.
    static func editTensors(_ dir: URL, _ edit: (inout [(String, [Int], [Float])]) -> Void) throws {
        let url = dir.appendingPathComponent(ToolAdapter.peftWeightsFileName)
        let file = try SafetensorsFile(path: url.path)
        var tensors = try file.entries.keys.sorted().map { ($0, file.entries[$0]!.shape, try file.load($0).toArray()) }
        edit(&tensors)
        try SafetensorsWriter.write(tensors.map { SafetensorsTensor(name: $0.0, shape: $0.1, values: $0.2) },
                                    metadata: ["format": "pt"], to: url)
    }
}

final class AdapterIOTests: XCTestCase {
    func testFixtureAdaptersMatchTheirConfigAndTensors() throws {
        let model = try AdapterTestFixtures.qwen2Config()
        for k in 0..<3 {
            let dir = try AdapterTestFixtures.adapter(k)
            let json = try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("adapter_config.json"))) as! [String: Any]
            let r = json["r"] as! Int
            let alpha = (json["lora_alpha"] as! NSNumber).floatValue
            let targets = Set(json["target_modules"] as! [String])
            let raw = try AdapterTestFixtures.rawTensors(dir.appendingPathComponent("adapter_model.safetensors"))

            for config in [model, nil] {
                let adapter = try ToolAdapter.load(peftDirectory: dir, config: config)
                XCTAssertEqual(adapter.name, "tool_\(k)")
                XCTAssertEqual(adapter.rank, r)
                XCTAssertEqual(adapter.alpha, alpha)
                XCTAssertEqual(adapter.scale, alpha / Float(r))
                XCTAssertEqual(adapter.scale, 4.0)
                XCTAssertEqual(Set(adapter.targets.map(\.rawValue)), targets)
                XCTAssertEqual(adapter.pairs.count, model.layerCount)
                var seen = 0
                for layer in 0..<model.layerCount {
                    for projection in FFNProjection.allCases {
                        let pair = try XCTUnwrap(adapter.pair(layer: layer, projection: projection))
                        for (isA, view) in [(true, pair.a), (false, pair.b)] {
                            let name = ToolAdapter.peftTensorName(layer: layer, projection: projection, isA: isA)
                            let entry = raw.header[name] as! [String: Any]
                            XCTAssertEqual(entry["dtype"] as? String, "F32")
                            XCTAssertEqual(entry["shape"] as! [Int], [view.rows, view.cols], name)
                            let values = view.toArray().map(\.bitPattern)
                            let expected = raw.bytes[name]!.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
                            XCTAssertEqual(values, expected.map { UInt32(littleEndian: $0) }, name)
                            seen += 1
                        }
                        let down = projection == .down
                        XCTAssertEqual([pair.a.rows, pair.a.cols], [r, down ? model.intermediateSize : model.hiddenSize])
                        XCTAssertEqual([pair.b.rows, pair.b.cols], [down ? model.hiddenSize : model.intermediateSize, r])
                    }
                }
                XCTAssertEqual(seen, raw.bytes.count)
            }
        }
    }

    func testRoundTripIsByteIdentical() throws {
        for k in 0..<3 {
            let source = try AdapterTestFixtures.adapter(k)
            let out = try AdapterTestFixtures.temporaryDirectory(self)
            let loaded = try ToolAdapter.load(peftDirectory: source)
            try loaded.save(peftDirectory: out, baseModel: "qwen2")
            let reloaded = try ToolAdapter.load(peftDirectory: out)
            XCTAssertEqual(reloaded.rank, loaded.rank)
            XCTAssertEqual(reloaded.alpha, loaded.alpha)
            XCTAssertEqual(reloaded.targets, loaded.targets)

            let a = try AdapterTestFixtures.rawTensors(source.appendingPathComponent("adapter_model.safetensors"))
            let b = try AdapterTestFixtures.rawTensors(out.appendingPathComponent("adapter_model.safetensors"))
            XCTAssertEqual(Set(a.bytes.keys), Set(b.bytes.keys))
            for (name, bytes) in a.bytes { XCTAssertEqual(bytes, b.bytes[name], name) }
            // The writer lays the file out as Python safetensors does: the whole file is identical.
            XCTAssertEqual(try Data(contentsOf: source.appendingPathComponent("adapter_model.safetensors")),
                           try Data(contentsOf: out.appendingPathComponent("adapter_model.safetensors")))

            // Saving the reloaded adapter again reproduces both files exactly.
            let again = try AdapterTestFixtures.temporaryDirectory(self)
            try reloaded.save(peftDirectory: again, baseModel: "qwen2")
            for f in ["adapter_config.json", "adapter_model.safetensors"] {
                XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(f)),
                               try Data(contentsOf: again.appendingPathComponent(f)), f)
            }
        }
    }

    func testSavedConfigIsPlainPEFTLoRA() throws {
        let out = try AdapterTestFixtures.temporaryDirectory(self)
        try ToolAdapter.load(peftDirectory: try AdapterTestFixtures.adapter(1)).save(peftDirectory: out, baseModel: "org/qwen2")
        let json = try JSONSerialization.jsonObject(
            with: Data(contentsOf: out.appendingPathComponent("adapter_config.json"))) as! [String: Any]
        XCTAssertEqual(json["peft_type"] as? String, "LORA")
        XCTAssertEqual(json["task_type"] as? String, "CAUSAL_LM")
        XCTAssertEqual(json["r"] as? Int, 4)
        XCTAssertEqual(json["lora_alpha"] as? Int, 16)
        XCTAssertEqual(json["target_modules"] as? [String], ["down_proj", "gate_proj", "up_proj"])
        XCTAssertEqual(json["bias"] as? String, "none")
        XCTAssertEqual((json["lora_dropout"] as? NSNumber)?.doubleValue, 0)
        XCTAssertEqual(json["fan_in_fan_out"] as? Bool, false)
        XCTAssertEqual(json["inference_mode"] as? Bool, true)
        XCTAssertEqual(json["use_dora"] as? Bool, false)
        XCTAssertEqual(json["use_rslora"] as? Bool, false)
        XCTAssertEqual(json["base_model_name_or_path"] as? String, "org/qwen2")
        XCTAssertTrue(json["layers_to_transform"] is NSNull)
        let file = try SafetensorsFile(path: out.appendingPathComponent("adapter_model.safetensors").path)
        XCTAssertEqual(file.metadata, ["format": "pt"])
    }

    func testMissingTensorIsNamed() throws {
        let dir = try AdapterTestFixtures.copy(0, test: self)
        let dropped = "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight"
        try AdapterTestFixtures.editTensors(dir) { $0.removeAll { $0.0 == dropped } }
        XCTAssertThrowsError(try ToolAdapter.load(peftDirectory: dir)) { error in
            XCTAssertEqual(error as? PEFTAdapterError,
                           .missingTensor(name: dropped, path: dir.appendingPathComponent("adapter_model.safetensors").path))
            XCTAssertTrue("\(error)".contains(dropped))
        }
    }

    func testWrongShapesAreNamed() throws {
        let model = try AdapterTestFixtures.qwen2Config()
        // A with an extra input column: wrong against the model, and against the other layers.
        let dir = try AdapterTestFixtures.copy(0, test: self)
        let bad = "base_model.model.model.layers.1.mlp.gate_proj.lora_A.weight"
        try AdapterTestFixtures.editTensors(dir) { tensors in
            let i = tensors.firstIndex { $0.0 == bad }!
            tensors[i] = (bad, [4, 65], [Float](repeating: 0.5, count: 4 * 65))
        }
        for config in [model, nil] {
            XCTAssertThrowsError(try ToolAdapter.load(peftDirectory: dir, config: config)) { error in
                guard case .shapeMismatch(let tensor, let expected, let found, _) = error as? PEFTAdapterError else {
                    return XCTFail("unexpected error \(error)")
                }
                XCTAssertEqual(tensor, bad)
                XCTAssertEqual(expected, [4, 64])
                XCTAssertEqual(found, [4, 65])
                XCTAssertTrue("\(error)".contains("[4, 65]"))
            }
        }
        // B with a rank that disagrees with r.
        let dir2 = try AdapterTestFixtures.copy(0, test: self)
        let badB = "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"
        try AdapterTestFixtures.editTensors(dir2) { tensors in
            let i = tensors.firstIndex { $0.0 == badB }!
            tensors[i] = (badB, [64, 5], [Float](repeating: 0.5, count: 64 * 5))
        }
        XCTAssertThrowsError(try ToolAdapter.load(peftDirectory: dir2)) { error in
            XCTAssertEqual(error as? PEFTAdapterError, .shapeMismatch(
                tensor: badB, expected: [64, 4], found: [64, 5], reason: "r is 4 in adapter_config.json"))
        }
        // A model with another hidden size.
        var other = model
        other.hiddenSize = 48
        XCTAssertThrowsError(try ToolAdapter.load(peftDirectory: try AdapterTestFixtures.adapter(0), config: other)) { error in
            guard case .shapeMismatch(let tensor, let expected, _, _) = error as? PEFTAdapterError else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertEqual(tensor, "base_model.model.model.layers.0.mlp.gate_proj.lora_A.weight")
            XCTAssertEqual(expected, [4, 48])
        }
    }

    func testRefusedConfigFlags() throws {
        let cases: [(String, Any, String)] = [
            ("use_dora", true, "DoRA"),
            ("use_rslora", true, "rsLoRA"),
            ("fan_in_fan_out", true, "fan_in_fan_out"),
            ("bias", "all", "bias"),
            ("rank_pattern", ["model.layers.0.mlp.up_proj": 8], "rank_pattern"),
            ("alpha_pattern", ["model.layers.0.mlp.up_proj": 8], "alpha_pattern"),
            ("peft_type", "IA3", "LORA"),
            ("target_modules", ["q_proj", "up_proj"], "q_proj"),
            ("target_modules", "all-linear", "attention"),
            ("target_modules", "model\\.layers\\.0\\..*", "not targeted"),
        ]
        for (key, value, mention) in cases {
            let dir = try AdapterTestFixtures.copy(0, test: self)
            try AdapterTestFixtures.editConfig(dir) { $0[key] = value }
            XCTAssertThrowsError(try ToolAdapter.load(peftDirectory: dir), "\(key)=\(value)") { error in
                XCTAssertTrue("\(error)".contains(mention), "\(key): \(error)")
            }
        }
    }

    func testAttentionTensorsAreRefusedByName() throws {
        let dir = try AdapterTestFixtures.copy(2, test: self)
        let names = ["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                     "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"]
        try AdapterTestFixtures.editTensors(dir) { tensors in
            tensors.append((names[0], [4, 64], [Float](repeating: 0.1, count: 256)))
            tensors.append((names[1], [64, 4], [Float](repeating: 0.1, count: 256)))
        }
        XCTAssertThrowsError(try ToolAdapter.load(peftDirectory: dir)) { error in
            XCTAssertEqual(error as? PEFTAdapterError,
                           .unsupportedTensors(names: names, path: dir.appendingPathComponent("adapter_model.safetensors").path))
            XCTAssertTrue("\(error)".contains(names[0]))
        }
    }

    func testUntargetedFFNTensorIsRefused() throws {
        let dir = try AdapterTestFixtures.copy(0, test: self)
        try AdapterTestFixtures.editConfig(dir) { $0["target_modules"] = ["gate_proj", "up_proj"] }
        XCTAssertThrowsError(try ToolAdapter.load(peftDirectory: dir)) { error in
            guard case .untargetedTensor(let name, _, _) = error as? PEFTAdapterError else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertTrue(name.contains("down_proj"), name)
        }
    }

    func testLayersToTransformLeavesOtherLayersWithoutPairs() throws {
        let model = try AdapterTestFixtures.qwen2Config()
        let dir = try AdapterTestFixtures.copy(1, test: self)
        try AdapterTestFixtures.editConfig(dir) { $0["layers_to_transform"] = [1] }
        try AdapterTestFixtures.editTensors(dir) { $0.removeAll { $0.0.contains(".layers.0.") } }
        let adapter = try ToolAdapter.load(peftDirectory: dir, config: model)
        XCTAssertEqual(adapter.pairs.count, 2)
        XCTAssertTrue(adapter.pairs[0].isEmpty)
        XCTAssertEqual(adapter.pairs[1].count, 3)

        let out = try AdapterTestFixtures.temporaryDirectory(self)
        try adapter.save(peftDirectory: out, baseModel: "qwen2")
        let json = try JSONSerialization.jsonObject(
            with: Data(contentsOf: out.appendingPathComponent("adapter_config.json"))) as! [String: Any]
        XCTAssertEqual(json["layers_to_transform"] as? [Int], [1])
        let reloaded = try ToolAdapter.load(peftDirectory: out, config: model)
        XCTAssertNil(reloaded.pair(layer: 0, projection: .gate))
        XCTAssertEqual(reloaded.pair(layer: 1, projection: .down)?.a.toArray(),
                       adapter.pair(layer: 1, projection: .down)?.a.toArray())

        // Without layers_to_transform, a missing layer is an error.
        try AdapterTestFixtures.editConfig(dir) { $0["layers_to_transform"] = NSNull() }
        XCTAssertThrowsError(try ToolAdapter.load(peftDirectory: dir, config: model)) { error in
            guard case .missingTensor(let name, _) = error as? PEFTAdapterError else {
                return XCTFail("unexpected error \(error)")
            }
            XCTAssertTrue(name.contains(".layers.0."), name)
        }
    }

    func testRegexTargetModules() throws {
        let dir = try AdapterTestFixtures.copy(0, test: self)
        try AdapterTestFixtures.editConfig(dir) { $0["target_modules"] = #".*\.mlp\.(gate|up|down)_proj"# }
        let adapter = try ToolAdapter.load(peftDirectory: dir)
        XCTAssertEqual(adapter.targets, [.gate, .up, .down])
        XCTAssertEqual(adapter.parameterCount, 2 * 3 * 4 * (64 + 160))
    }

    func testBF16WeightsAreConverted() throws {
        let dir = try AdapterTestFixtures.copy(0, test: self)
        let url = dir.appendingPathComponent("adapter_model.safetensors")
        let file = try SafetensorsFile(path: url.path)
        let names = file.entries.keys.sorted()
        // Hand-written BF16 file: each value keeps the upper 16 bits of its float32 pattern.
        var header = [String: Any]()
        var body = Data()
        var expected = [String: [Float]]()
        for name in names {
            let values = try file.load(name).toArray()
            let halves = values.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) }
            header[name] = ["dtype": "BF16", "shape": file.entries[name]!.shape,
                            "data_offsets": [body.count, body.count + 2 * halves.count]]
            for h in halves { body.append(contentsOf: [UInt8(h & 0xff), UInt8(h >> 8)]) }
            expected[name] = halves.map { Float(bitPattern: UInt32($0) << 16) }
        }
        let json = try JSONSerialization.data(withJSONObject: header)
        var out = Data((0..<8).map { UInt8(truncatingIfNeeded: json.count >> (8 * $0)) })
        out.append(json)
        out.append(body)
        try out.write(to: url)

        let adapter = try ToolAdapter.load(peftDirectory: dir, config: try AdapterTestFixtures.qwen2Config())
        for layer in 0..<2 {
            for p in FFNProjection.allCases {
                let pair = try XCTUnwrap(adapter.pair(layer: layer, projection: p))
                XCTAssertEqual(pair.a.toArray(), expected[ToolAdapter.peftTensorName(layer: layer, projection: p, isA: true)])
                XCTAssertEqual(pair.b.toArray(), expected[ToolAdapter.peftTensorName(layer: layer, projection: p, isA: false)])
            }
        }
    }

    func testWriterLayoutAndMetadata() throws {
        let out = try AdapterTestFixtures.temporaryDirectory(self).appendingPathComponent("t.safetensors")
        try SafetensorsWriter.write(
            [SafetensorsTensor(name: "b", shape: [2], values: [1, 2]),
             SafetensorsTensor(name: "a\"q", shape: [1, 3], buffer: FloatBuffer([3, 4, 5])),
             SafetensorsTensor(name: "c", shape: [], values: [6])],
            metadata: ["format": "pt", "note": "x\ny"], to: out)
        let data = try Data(contentsOf: out)
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(n % 8, 0)
        let header = String(decoding: data.subdata(in: 8..<(8 + n)), as: UTF8.self)
        XCTAssertEqual(header.trimmingCharacters(in: .whitespaces),
                       #"{"__metadata__":{"format":"pt","note":"x\ny"},"a\"q":{"dtype":"F32","shape":[1,3],"data_offsets":[0,12]},"#
                       + #""b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]},"c":{"dtype":"F32","shape":[],"data_offsets":[20,24]}}"#)
        let file = try SafetensorsFile(path: out.path)
        XCTAssertEqual(file.metadata, ["format": "pt", "note": "x\ny"])
        XCTAssertEqual(try file.load("a\"q").toArray(), [3, 4, 5])
        XCTAssertEqual(try file.load("b").toArray(), [1, 2])
        XCTAssertEqual(try file.load("c").toArray(), [6])
        XCTAssertEqual(data.count, 8 + n + 24)

        XCTAssertThrowsError(try SafetensorsWriter.encode([SafetensorsTensor(name: "x", shape: [2, 2], values: [1])])) {
            XCTAssertEqual($0 as? SafetensorsWriteError, .shapeMismatch(tensor: "x", shape: [2, 2], valueCount: 1))
        }
        XCTAssertThrowsError(try SafetensorsWriter.encode([SafetensorsTensor(name: "x", shape: [1], values: [1]),
                                                           SafetensorsTensor(name: "x", shape: [1], values: [2])])) {
            XCTAssertEqual($0 as? SafetensorsWriteError, .duplicateName("x"))
        }
        // A strided view is written as its elements, row by row.
        let buffer = FloatBuffer([1, 2, 3, 4, 5, 6])
        let strided = MatrixView(buffer, offset: 1, rows: 2, cols: 2, stride: 3)
        let encoded = try SafetensorsWriter.encode([SafetensorsTensor(name: "m", matrix: strided)])
        XCTAssertEqual(encoded.suffix(16), Data([Float(2), 3, 5, 6].flatMap { v in
            (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }))
    }
}
