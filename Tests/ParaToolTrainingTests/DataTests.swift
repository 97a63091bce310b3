// Trajectories: BFCL import against the answer file read independently, JSON Lines round trip,
// next-action instances (document-free and document-aware, history for later steps), and the
// held-out guard between evaluation queries and training data.
import FixtureSupport
import Foundation
import XCTest
@testable import LLM
@testable import ParaTool
@testable import ParaToolTraining

final class DataTests: XCTestCase {
    var bfcl: URL { RepositoryFixtures.bfcl }

    func multiple() throws -> [Trajectory] {
        Trajectory.fromBFCL(questions: try BFCLQuestion.load(file: bfcl.appendingPathComponent("BFCL_v4_multiple.json")),
                            answers: try BFCLAnswer.load(file: bfcl.appendingPathComponent("possible_answer/BFCL_v4_multiple.json")),
                            category: "multiple")
    }

    func testBFCLImportTakesTheFirstAcceptableValues() throws {
        let trajectories = try multiple()
        let answerLines = try String(contentsOf: bfcl.appendingPathComponent("possible_answer/BFCL_v4_multiple.json"), encoding: .utf8)
            .split(separator: "\n")
        XCTAssertEqual(trajectories.count, answerLines.count)
        for (t, line) in zip(trajectories.prefix(20), answerLines) {
            let answer = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            XCTAssertEqual(t.id, answer["id"] as? String)
            let gold = (answer["ground_truth"] as! [[String: Any]])[0]
            let name = gold.keys.first!
            let call = t.steps[0].calls[0]
            XCTAssertEqual(call.name, name)
            XCTAssertTrue(t.candidateTools.contains(name))
            guard case .object(let args) = call.arguments else { return XCTFail("arguments are not an object") }
            for (param, values) in gold[name] as! [String: [Any]] {
                if let first = values.first as? String, first.isEmpty {
                    XCTAssertNil(args[param], "\(t.id): optional \(param) is omitted")
                } else if let first = values.first as? String {
                    XCTAssertEqual(args[param], .string(first), "\(t.id).\(param)")
                } else if let first = values.first as? NSNumber, !(values.first is Bool) {
                    switch args[param] {
                    case .int(let v)?: XCTAssertEqual(Double(v), first.doubleValue, "\(t.id).\(param)")
                    case .double(let v)?: XCTAssertEqual(v, first.doubleValue, "\(t.id).\(param)")
                    default: XCTFail("\(t.id).\(param): expected a number, found \(String(describing: args[param]))")
                    }
                }
            }
        }
    }

    func testJSONLRoundTrip() throws {
        var trajectories = Array(try multiple().prefix(5))
        trajectories[1].steps.append(Step(calls: [ToolCall(name: "x", arguments: ["k": [1, 2.5, "é"]])], observation: "ok ✓"))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("traj-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        try Trajectory.save(trajectories, jsonl: url)
        XCTAssertEqual(try Trajectory.load(jsonl: url), trajectories)
        try Data("{\"id\": \"a\", \"query\": 3}\n".utf8).write(to: url)
        XCTAssertThrowsError(try Trajectory.load(jsonl: url)) { XCTAssertTrue("\($0)".contains(":1:") && "\($0)".contains("query"), "\($0)") }
    }

    func testInstancesDocumentFreeAndAwareWithHistory() throws {
        let tokenizer = try Tokenizer(directory: LoRABackwardTests.tiny.appendingPathComponent("qwen2"))
        let catalogue = ToolCatalogue([ToolSpec(name: "get_weather", description: "Current weather for a city"),
                                       ToolSpec(name: "book_flight", description: "Book a flight")])
        let builder = try InstanceBuilder(tokenizer: tokenizer, catalogue: catalogue)
        let first = ToolCall(name: "get_weather", arguments: ["city": "Oslo"])
        let second = ToolCall(name: "book_flight", arguments: ["to": "Oslo"])
        let t = Trajectory(id: "t1", query: "Is it warm in Oslo? If so book a flight.", candidateTools: ["get_weather", "book_flight"],
                           steps: [Step(calls: [first], observation: "25C"), Step(calls: [second], observation: "booked")], source: "test")
        let instances = try builder.instances(t, documentAware: true)
        XCTAssertEqual(instances.map(\.format), [.documentFree, .documentAware, .documentFree, .documentAware])
        XCTAssertEqual(instances.map(\.step), [0, 0, 1, 1])
        for i in instances {
            let prompt = tokenizer.decode(i.prompt)
            XCTAssertEqual(i.format == .documentAware, prompt.contains("Current weather") || prompt.contains("Book a flight"))
            XCTAssertEqual(prompt.contains(PromptWording.historyHeader), i.step == 1)
            XCTAssertTrue(prompt.hasSuffix("<|im_start|>assistant\n"))
        }
        XCTAssertEqual(tokenizer.decode(instances[0].target), first.rendered + "<|im_end|>")
        XCTAssertEqual(tokenizer.decode(instances[2].target), second.rendered + "<|im_end|>")
        XCTAssertTrue(tokenizer.decode(instances[2].prompt).contains("25C"), "the first observation is in the history")
    }

    func testHeldOutGuard() throws {
        let all = try multiple()
        let evaluation = all.prefix(50).map(\.query)
        let training = Array(all.dropFirst(50))
        XCTAssertNoThrow(try HeldOut.check(training: training, evaluationQueries: evaluation))
        var leaked = training
        var copy = all[7]
        copy.id = "synthetic-7"
        copy.query = "  " + copy.query.uppercased().replacingOccurrences(of: " ", with: "\t ") + "\n"
        leaked.append(copy)
        XCTAssertThrowsError(try HeldOut.check(training: leaked, evaluationQueries: evaluation)) {
            XCTAssertTrue("\($0)".contains("synthetic-7"), "\($0)")
        }
    }
}
