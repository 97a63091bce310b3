// ModelConfig decoded from the Hugging Face config.json files of the fixtures (checked against the
// same files read as plain JSON), its defaults, the transformers 4 spellings, an unknown
// architecture refused with the supported ones named, and a missing required key named.
import FixtureSupport
import Foundation
import Tensor
import XCTest
@testable import LLM

final class ModelConfigTests: XCTestCase {
    static let required = ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"]

    func json(_ name: String) throws -> [String: Any] {
        let url = RepositoryFixtures.hfTiny.appendingPathComponent("\(name)/config.json")
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    func decode(_ object: [String: Any]) throws -> ModelConfig {
        try ModelConfig(huggingFaceJSON: JSONSerialization.data(withJSONObject: object))
    }

    /// Every fixture's config.json against its own keys read as plain JSON.
    func testFixtureConfigsDecodeToTheirKeys() throws {
        for name in ["llama", "llama-bf16", "qwen2"] {
            let j = try json(name)
            let url = RepositoryFixtures.hfTiny.appendingPathComponent("\(name)/config.json")
            let c = try ModelConfig(huggingFaceJSON: Data(contentsOf: url))
            func int(_ key: String) -> Int? { (j[key] as? NSNumber)?.intValue }
            XCTAssertEqual(c.family, name == "qwen2" ? .qwen2 : .llama, name)
            XCTAssertEqual(c.hiddenSize, int("hidden_size"), name)
            XCTAssertEqual(c.intermediateSize, int("intermediate_size"), name)
            XCTAssertEqual(c.layerCount, int("num_hidden_layers"), name)
            XCTAssertEqual(c.headCount, int("num_attention_heads"), name)
            XCTAssertEqual(c.kvHeadCount, int("num_key_value_heads"), name)
            XCTAssertEqual(c.headDim, int("head_dim") ?? c.hiddenSize / c.headCount, name)
            XCTAssertEqual(c.vocabSize, int("vocab_size"), name)
            XCTAssertEqual(c.rmsNormEps, (j["rms_norm_eps"] as! NSNumber).floatValue, name)
            XCTAssertEqual(c.ropeTheta, ((j["rope_parameters"] as! [String: Any])["rope_theta"] as! NSNumber).floatValue, name)
            XCTAssertNil(c.ropeLlama3, name)
            XCTAssertEqual(c.tieWordEmbeddings, j["tie_word_embeddings"] as? Bool, name)
            XCTAssertEqual(c.maxPositionEmbeddings, int("max_position_embeddings"), name)
            XCTAssertNil(c.bosTokenId, name)
            XCTAssertEqual(c.eosTokenIds, [int("eos_token_id")!], name)
            // Qwen2 always has q/k/v biases; Llama as attention_bias says.
            XCTAssertEqual(c.attentionBias, name == "qwen2" ? true : (j["attention_bias"] as! Bool), name)
        }
        // The values themselves, for one file.
        let llama = try ModelConfig(huggingFaceJSON: Data(contentsOf: RepositoryFixtures.hfTiny.appendingPathComponent("llama/config.json")))
        XCTAssertEqual([llama.hiddenSize, llama.intermediateSize, llama.layerCount, llama.headCount, llama.kvHeadCount, llama.headDim,
                        llama.vocabSize], [48, 128, 3, 6, 3, 8, 600])
        XCTAssertTrue(llama.tieWordEmbeddings)
    }

    /// Only the required keys: the rest take the transformers defaults.
    func testDefaultsWhenOptionalKeysAreAbsent() throws {
        var j: [String: Any] = ["architectures": ["LlamaForCausalLM"]]
        for key in Self.required { j[key] = try json("llama")[key] }
        let c = try decode(j)
        XCTAssertEqual(c.kvHeadCount, c.headCount)
        XCTAssertEqual(c.headDim, 48 / 6)
        XCTAssertEqual(c.rmsNormEps, 1e-6)
        XCTAssertEqual(c.ropeTheta, 10000)
        XCTAssertFalse(c.tieWordEmbeddings)
        XCTAssertFalse(c.attentionBias)
        XCTAssertEqual(c.maxPositionEmbeddings, 4096)
        XCTAssertEqual(c.eosTokenIds, [])
        // model_type names the architecture when architectures is absent.
        j["architectures"] = nil
        j["model_type"] = "qwen2"
        XCTAssertEqual(try decode(j).family, .qwen2)
    }

    /// transformers 4: rope_theta at the top, llama3 rope_scaling, a list of eos ids; and the
    /// encoding reads back to an equal config.
    func testTransformers4SpellingsAndRoundTrip() throws {
        var j = try json("llama")
        j["rope_parameters"] = nil
        j["rope_theta"] = 500000
        j["rope_scaling"] = ["rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 128]
        j["eos_token_id"] = [2, 5]
        let c = try decode(j)
        XCTAssertEqual(c.ropeTheta, 500000)
        XCTAssertEqual(c.ropeLlama3, RopeTable.Llama3Scaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 128))
        XCTAssertEqual(c.eosTokenIds, [2, 5])
        XCTAssertEqual(try JSONDecoder().decode(ModelConfig.self, from: JSONEncoder().encode(c)), c)
        j["rope_scaling"] = ["rope_type": "yarn", "factor": 4.0]
        XCTAssertThrowsError(try decode(j)) { XCTAssertTrue("\($0)".contains("'yarn'"), "\($0)") }
    }

    /// An architecture this runtime does not run is refused, naming the ones it does.
    func testUnknownArchitectureIsRefusedNamingTheSupportedOnes() throws {
        var j = try json("llama")
        j["architectures"] = ["GPTNeoXForCausalLM"]
        XCTAssertThrowsError(try decode(j)) { error in
            guard case ModelLoadError.unsupportedArchitecture("GPTNeoXForCausalLM") = error else { return XCTFail("\(error)") }
            let text = "\(error)"
            for name in ["GPTNeoXForCausalLM", "LlamaForCausalLM", "Qwen2ForCausalLM"] { XCTAssertTrue(text.contains(name), text) }
        }
        j["architectures"] = nil
        j["model_type"] = nil
        XCTAssertThrowsError(try decode(j)) { error in
            guard case ModelLoadError.unsupportedArchitecture = error else { return XCTFail("\(error)") }
        }
    }

    /// Each required key, missing or of the wrong type, is named in the error.
    func testMissingOrMistypedRequiredKeyIsNamed() throws {
        for key in Self.required {
            var j = try json("qwen2")
            j[key] = nil
            XCTAssertThrowsError(try decode(j), key) { error in
                guard case ModelLoadError.invalidConfig(let message) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(message, "missing key '\(key)'")
            }
            j[key] = "many"
            XCTAssertThrowsError(try decode(j), key) { error in
                guard case ModelLoadError.invalidConfig(let message) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(message.contains("'\(key)'"), message)
            }
        }
        XCTAssertThrowsError(try ModelConfig(huggingFaceJSON: Data("[1, 2]".utf8))) { error in
            guard case ModelLoadError.invalidConfig = error else { return XCTFail("\(error)") }
        }
    }
}
