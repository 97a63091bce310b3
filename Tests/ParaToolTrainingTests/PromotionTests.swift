// The pieces of the online trainer's no-regression review: the held-out slice (a stable hash of
// the episode id), the scorer's teacher-forced NLL against PyTorch/PEFT's loss on the tiny Qwen2
// fixture, its exact-match accuracy, and the promotion rule's decisions.
import FixtureSupport
import Foundation
import XCTest
@testable import LLM
@testable import ParaTool
@testable import ParaToolTraining

final class PromotionTests: XCTestCase {
    /// FNV-1a against its published test vectors; about a fifth of ids held out; the same id
    /// always gets the same answer.
    func testHeldOutSliceIsAStableFifthOfIDs() {
        XCTAssertEqual(HeldOutSlice.fnv1a(""), 0xcbf2_9ce4_8422_2325)
        XCTAssertEqual(HeldOutSlice.fnv1a("a"), 0xaf63_dc4c_8601_ec8c)
        XCTAssertEqual(HeldOutSlice.fnv1a("foobar"), 0x8594_4171_f739_67e8)
        let ids = (0..<10_000).map { "request-\($0)#feedback" }
        let held = ids.filter(HeldOutSlice.contains)
        XCTAssertGreaterThan(held.count, 1_800)
        XCTAssertLessThan(held.count, 2_200)
        XCTAssertEqual(held, ids.filter(HeldOutSlice.contains))
    }

    /// Only steps whose calls are all of the tool score its adapter alone.
    func testScoredStepsAreTheToolsOwn() {
        let weather = ToolCall(name: "get_weather", arguments: .object(["city": .string("Oslo")]))
        let flight = ToolCall(name: "book_flight", arguments: .object([:]))
        let t = Trajectory(id: "t", query: "q", candidateTools: ["get_weather", "book_flight"],
                           steps: [Step(calls: [weather], observation: ""), Step(calls: [weather, flight], observation: ""),
                                   Step(calls: [], observation: ""), Step(calls: [weather, weather], observation: "")],
                           source: "test")
        XCTAssertEqual(HeldOutSlice.steps([t], tool: "get_weather").map(\.step), [0, 3])
        XCTAssertEqual(HeldOutSlice.steps([t], tool: "book_flight").map(\.step), [])
    }

    /// Σ NLL / tokens of the gold answer equals PyTorch's mean cross-entropy of the same tokens
    /// with PEFT's adapter (expected.json `gradients.loss_single_tool_0`).
    func testNegativeLogLikelihoodMatchesPyTorch() throws {
        let tiny = RepositoryFixtures.hfTiny
        let lm = try LanguageModel.load(path: tiny.appendingPathComponent("qwen2").path)
        let adapter = try ToolAdapter.load(peftDirectory: tiny.appendingPathComponent("adapters/tool_0"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: tiny.appendingPathComponent("expected.json"))) as! [String: Any]
        let g = json["gradients"] as! [String: Any]
        let ids = (g["ids"] as! [NSNumber]).map(\.intValue)
        let n = (g["n_target"] as! NSNumber).intValue
        let scorer = try HeldOutScorer(model: lm, catalogue: ToolCatalogue([]))
        let nll = scorer.negativeLogLikelihood(adapter, prompt: Array(ids.dropLast(n)), target: Array(ids.suffix(n)))
        XCTAssertEqual(nll / Double(n), (g["loss_single_tool_0"] as! NSNumber).doubleValue, accuracy: 1e-5)
    }

    /// A step counts as correct exactly when the adapter's constrained answer is the gold call:
    /// scored against itself — the gold of each step set to what the engine answers in oracle
    /// mode — every step is correct, and with another argument value none is.
    func testAccuracyIsExactMatchOfTheDecodedCall() throws {
        let tiny = RepositoryFixtures.hfTiny
        let lm = try LanguageModel.load(path: tiny.appendingPathComponent("qwen2").path)
        let adapter = try ToolAdapter.load(peftDirectory: tiny.appendingPathComponent("adapters/tool_0"))
        let spec = try ToolSpec(json: try JSONValue.parse(
            #"{"name": "set_mode", "description": "Switch the mode", "parameters": {"type": "object", "properties": {"mode": {"type": "string", "enum": ["eco", "sport"]}}, "required": ["mode"]}}"#))
        let catalogue = ToolCatalogue([spec])
        let engine = try ToolCallEngine(model: lm, catalogue: catalogue, adapters: InMemoryAdapters(["set_mode": (adapter, "x")]), gate: nil)
        let queries = ["Go eco", "Sport mode please"]
        let answers = try engine.run(queries.enumerated().map {
            var r = ToolCallRequest(id: "\($0.offset)", query: $0.element, candidates: ["set_mode"], maxNewTokens: 160, mode: .oracle, goldTool: "set_mode")
            r.toolChoice = .required
            return r
        })
        let decoded = answers.map(\.action.calls)
        XCTAssertTrue(decoded.allSatisfy { !$0.isEmpty }, "the grammar makes the tiny model write a call: \(answers.map(\.text))")
        let asDecoded = zip(queries, decoded).enumerated().map {
            Trajectory(id: "s\($0.offset)", query: $0.element.0, candidateTools: ["set_mode"], steps: [Step(calls: $0.element.1, observation: "")], source: "test")
        }
        let scorer = try HeldOutScorer(model: lm, catalogue: catalogue)
        scorer.extraTokens = 160
        let same = try scorer.score(adapter, tool: "set_mode", steps: HeldOutSlice.steps(asDecoded, tool: "set_mode"))
        XCTAssertEqual(same.map(\.correct), [true, true])
        let other = asDecoded.map { t in
            var t = t
            t.steps[0].calls = t.steps[0].calls.map { ToolCall(name: $0.name, arguments: .object(["mode": .string("none of the enum")])) }
            return t
        }
        let wrong = try scorer.score(adapter, tool: "set_mode", steps: HeldOutSlice.steps(other, tool: "set_mode"))
        XCTAssertEqual(wrong.filter(\.correct).count, 0)
        XCTAssertEqual(HeldOutScore(same).episodes, same.count)
    }

    func testPromotionRule() {
        func s(_ correct: Int, of n: Int, _ nll: Double) -> HeldOutScore { HeldOutScore(episodes: n, correct: correct, meanNLL: nll) }
        // No serving version: promoted, whatever the score.
        XCTAssertEqual(PromotionPolicy.decide(candidate: s(0, of: 0, 0), serving: nil).decision, .promoted)
        // Nothing held out: cannot show it is not worse.
        XCTAssertEqual(PromotionPolicy.decide(candidate: s(0, of: 0, 0), serving: ("v000001", s(0, of: 0, 0))).decision, .rejected)
        // Too few held-out steps to tell: held, and the reason says so; the minimum is enough.
        let few = PromotionPolicy.decide(candidate: s(1, of: 1, 0.1), serving: ("v000001", s(0, of: 1, 2.0)))
        XCTAssertEqual(few.decision, .rejected)
        XCTAssertTrue(few.reason.contains("only 1 held-out steps"), few.reason)
        XCTAssertEqual(PromotionPolicy.decide(candidate: s(2, of: 2, 0.1), serving: ("v000001", s(0, of: 2, 2.0))).decision, .rejected)
        XCTAssertEqual(PromotionPolicy.decide(candidate: s(3, of: 3, 0.1), serving: ("v000001", s(0, of: 3, 2.0))).decision, .promoted)
        // Accuracy first, NLL breaks ties, equal is enough.
        XCTAssertEqual(PromotionPolicy.decide(candidate: s(6, of: 10, 3.0), serving: ("v000001", s(5, of: 10, 1.0))).decision, .promoted)
        XCTAssertEqual(PromotionPolicy.decide(candidate: s(4, of: 10, 0.1), serving: ("v000001", s(5, of: 10, 1.0))).decision, .rejected)
        XCTAssertEqual(PromotionPolicy.decide(candidate: s(5, of: 10, 1.1), serving: ("v000001", s(5, of: 10, 1.0))).decision, .rejected)
        XCTAssertEqual(PromotionPolicy.decide(candidate: s(5, of: 10, 1.0), serving: ("v000001", s(5, of: 10, 1.0))).decision, .promoted)
        // Both fit the gold calls (NLL below fitNLL): a tie; one of them not: worse.
        XCTAssertEqual(PromotionPolicy.decide(candidate: s(10, of: 10, 0.0002), serving: ("v000001", s(10, of: 10, 0.0001))).decision, .promoted)
        XCTAssertEqual(PromotionPolicy.decide(candidate: s(10, of: 10, 0.02), serving: ("v000001", s(10, of: 10, 0.0001))).decision, .rejected)
        // Better overall but worse on the slice serving was promoted on: rejected, and the reason says so.
        let established = PromotionPolicy.decide(candidate: s(8, of: 12, 1.0), serving: ("v000003", s(6, of: 12, 1.0)),
                                                 candidateEstablished: s(2, of: 6, 1.0), servingEstablished: s(5, of: 6, 1.0))
        XCTAssertEqual(established.decision, .rejected)
        XCTAssertTrue(established.reason.contains("6 held-out steps serving v000003 was promoted on"), established.reason)
        XCTAssertTrue(established.reason.contains("33.3%"), established.reason)
    }
}
