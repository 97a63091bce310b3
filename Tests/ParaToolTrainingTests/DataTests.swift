// Trajectories: BFCL import against the answer file read independently, JSON Lines round trip,
// next-action instances (document-free and document-aware, history for later steps; each tool's
// part of a parallel answer of several tools), and the
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

    /// Each tool's part of a parallel answer of several tools: the calls before it in the prompt,
    /// its own calls and then the newline that opens the next call (or the end of the turn) as
    /// the target; a tool whose calls are not one run is left out.
    func testRunInstancesOfAParallelAnswerOfSeveralTools() throws {
        let tokenizer = try Tokenizer(directory: LoRABackwardTests.tiny.appendingPathComponent("qwen2"))
        let catalogue = ToolCatalogue([ToolSpec(name: "get_weather", description: "Current weather for a city"),
                                       ToolSpec(name: "book_flight", description: "Book a flight"),
                                       ToolSpec(name: "set_timer", description: "Set a timer")])
        let builder = try InstanceBuilder(tokenizer: tokenizer, catalogue: catalogue)
        let oslo = ToolCall(name: "get_weather", arguments: ["city": "Oslo"])
        let rome = ToolCall(name: "get_weather", arguments: ["city": "Rome"])
        let flight = ToolCall(name: "book_flight", arguments: ["to": "Oslo"])
        let timer = ToolCall(name: "set_timer", arguments: ["minutes": 5])
        let assistant = "<|im_start|>assistant\n"
        let t = Trajectory(id: "p1", query: "Weather in Oslo and Rome, a flight to Oslo, and a 5 minute timer.",
                           candidateTools: ["get_weather", "book_flight", "set_timer"],
                           steps: [Step(calls: [oslo, rome, flight, timer], observation: "")], source: "test")
        let runs = try builder.runInstances(t, documentAware: true)
        XCTAssertEqual(runs.map(\.tools), [["get_weather"], ["get_weather"], ["book_flight"], ["book_flight"], ["set_timer"], ["set_timer"]])
        XCTAssertEqual(runs.map(\.format), [.documentFree, .documentAware, .documentFree, .documentAware, .documentFree, .documentAware])
        let answers = ["", oslo.rendered + "\n" + rome.rendered + "\n", oslo.rendered + "\n" + rome.rendered + "\n" + flight.rendered + "\n"]
        let targets = [oslo.rendered + "\n" + rome.rendered + "\n", flight.rendered + "\n", timer.rendered + "<|im_end|>"]
        for (k, run) in runs.enumerated() {
            let prompt = tokenizer.decode(run.prompt)
            XCTAssertTrue(prompt.hasSuffix(assistant + answers[k / 2]), prompt)
            XCTAssertEqual(tokenizer.decode(run.target), targets[k / 2])
            XCTAssertEqual(run.format == .documentAware, prompt.contains(catalogue[run.tools[0]]!.description))
        }
        // The weather calls split by the flight: no run of get_weather; one tool alone: no run at all.
        let split = Trajectory(id: "p2", query: "q", candidateTools: ["get_weather", "book_flight"],
                               steps: [Step(calls: [oslo, flight, rome], observation: "")], source: "test")
        XCTAssertEqual(try builder.runInstances(split, documentAware: false).map(\.tools), [["book_flight"]])
        let single = Trajectory(id: "p3", query: "q", candidateTools: ["get_weather"],
                                steps: [Step(calls: [oslo, rome], observation: "")], source: "test")
        XCTAssertTrue(try builder.runInstances(single, documentAware: true).isEmpty)
    }

    /// Every rotation of a step's tool runs, one copy per rotation, the trajectory first; a step
    /// where a tool's calls are split keeps its order.
    func testCallOrderRotations() {
        let a1 = ToolCall(name: "a", arguments: ["k": 1]), a2 = ToolCall(name: "a", arguments: ["k": 2])
        let b = ToolCall(name: "b", arguments: [:]), c = ToolCall(name: "c", arguments: [:])
        let t = Trajectory(id: "t", query: "q", candidateTools: ["a", "b", "c"],
                           steps: [Step(calls: [a1, a2, b, c], observation: "x"), Step(calls: [a1, b, a2], observation: "")], source: "test")
        let rotations = t.callOrderRotations()
        XCTAssertEqual(rotations.map { $0.steps[0].calls.map(\.name) }, [["a", "a", "b", "c"], ["b", "c", "a", "a"], ["c", "a", "a", "b"]])
        XCTAssertEqual(rotations[2].steps[0].calls, [c, a1, a2, b])
        XCTAssertTrue(rotations.allSatisfy { $0.steps[1] == t.steps[1] && $0.id == "t" && $0.query == "q" })
        XCTAssertEqual(Trajectory(id: "s", query: "q", candidateTools: ["a"], steps: [Step(calls: [a1, a2], observation: "")],
                                  source: "test").callOrderRotations().count, 1)
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
