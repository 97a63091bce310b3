// Tests of the prompt formats: what each format's system message contains (and must not), the
// shared wording, the history section, and the rendering through the fixture ChatML template.
import Foundation
import LLM
import XCTest
@testable import ParaTool

final class PromptTests: XCTestCase {
    /// The candidate tools of BFCL question multiple_0 (read from Tests/Fixtures/bfcl).
    private func candidates() throws -> [ToolSpec] {
        let line = try ToolTestFixtures.line(id: "multiple_0", in: ToolTestFixtures.question("multiple"))
        let tools = try BFCLQuestion(line: line).functions
        XCTAssertGreaterThan(tools.count, 1)
        return tools
    }

    private func formatter() throws -> PromptFormatter {
        let tokenizer = try Tokenizer(directory: ToolTestFixtures.require(ToolTestFixtures.hfTiny.appendingPathComponent("tokenizer")))
        let template = try XCTUnwrap(tokenizer.chatTemplate, "\(String(describing: tokenizer.chatTemplateError))")
        return PromptFormatter(template: template)
    }

    private let request = PromptRequest(query: "What is the area of a triangle with sides 5, 4 and 3?")

    func testDocumentFreeHasEveryNameAndNoDocuments() throws {
        let tools = try candidates()
        let system = PromptFormatter.systemMessage(.documentFree(candidates: tools.map(\.name)))
        XCTAssertTrue(system.contains("You MUST choose only from these tools:"))
        for tool in tools {
            XCTAssertTrue(system.contains("\n- \(tool.name)\n") || system.hasSuffix("\n- \(tool.name)"), tool.name)
            XCTAssertFalse(system.contains(tool.description), tool.name)
        }
        XCTAssertFalse(system.contains("\"properties\""))
        XCTAssertFalse(system.contains("\"parameters\""))
    }

    func testDocumentFreeExactLayout() {
        let system = PromptFormatter.systemMessage(.documentFree(candidates: ["a.b", "c"]))
        XCTAssertEqual(system, """
            You call tools to answer the question, or answer in plain text when no tool applies.

            Write each call as <tool_call>{"name": "tool_name", "arguments": {"parameter": "value"}}</tool_call>, \
            one block per call, nothing else.

            You MUST choose only from these tools:
            - a.b
            - c
            """)
    }

    func testDocumentAwareAddsOnlyTheTargetDocument() throws {
        let tools = try candidates()
        let target = tools[0]
        let free = PromptFormatter.systemMessage(.documentFree(candidates: tools.map(\.name)))
        let aware = PromptFormatter.systemMessage(.documentAware(candidates: tools.map(\.name), target: target))
        XCTAssertTrue(aware.hasPrefix(free + "\n\n"))
        XCTAssertTrue(aware.contains(target.description))
        XCTAssertTrue(aware.contains(#""required": ["side1", "side2", "side3"]"#))
        XCTAssertTrue(aware.hasSuffix("\n" + #"{"name": "triangle_properties.get", "description": ""# + target.description + "\", \"parameters\": "
                                      + target.parameters.serialized() + "}"))
        for other in tools.dropFirst() {
            XCTAssertFalse(aware.contains(other.description), other.name)
        }
    }

    func testContextDocsCarryEveryDocument() throws {
        let tools = try candidates()
        let system = PromptFormatter.systemMessage(.contextDocs(candidates: tools))
        XCTAssertTrue(system.hasPrefix(PromptFormatter.systemMessage(.documentFree(candidates: tools.map(\.name))) + "\n\n"))
        for tool in tools {
            XCTAssertTrue(system.contains(tool.description), tool.name)
            XCTAssertTrue(system.contains("\n" + tool.json.serialized()), tool.name)
        }
        XCTAssertFalse(system.contains(PromptWording.examplesHeader))
    }

    func testContextDocsExamplesShowAtMostKPerTool() throws {
        let tools = try candidates()
        let first = ToolExample(query: "Sides 3, 4, 5?", calls: [ToolCall(name: tools[0].name, arguments: ["side1": 3, "side2": 4, "side3": 5])])
        let second = ToolExample(query: "Sides 6, 8, 10?", calls: [ToolCall(name: tools[0].name, arguments: ["side1": 6, "side2": 8, "side3": 10])])
        let circle = ToolExample(query: "Radius 2?", calls: [ToolCall(name: tools[1].name, arguments: ["radius": 2.0])])
        let examples = [tools[0].name: [first, second], tools[1].name: [circle], "not.a.candidate": [first]]
        let system = PromptFormatter.systemMessage(.contextDocsExamples(candidates: tools, examples: examples, k: 1))
        XCTAssertTrue(system.hasPrefix(PromptFormatter.systemMessage(.contextDocs(candidates: tools)) + "\n\n"))
        XCTAssertTrue(system.hasSuffix("""
            Examples:
            Query: Sides 3, 4, 5?
            Answer: <tool_call>{"name": "triangle_properties.get", "arguments": {"side1": 3, "side2": 4, "side3": 5}}</tool_call>
            Query: Radius 2?
            Answer: <tool_call>{"name": "circle_properties.get", "arguments": {"radius": 2.0}}</tool_call>
            """))
        XCTAssertFalse(system.contains("Sides 6, 8, 10?"))
        let none = PromptFormatter.systemMessage(.contextDocsExamples(candidates: tools, examples: examples, k: 0))
        XCTAssertEqual(none, PromptFormatter.systemMessage(.contextDocs(candidates: tools)))
    }

    func testEveryFormatSharesRoleAndRules() throws {
        let tools = try candidates()
        let formats: [PromptFormat] = [
            .documentFree(candidates: tools.map(\.name)),
            .documentAware(candidates: tools.map(\.name), target: tools[1]),
            .contextDocs(candidates: tools),
            .contextDocsExamples(candidates: tools, examples: [:], k: 3),
        ]
        for format in formats {
            let system = PromptFormatter.systemMessage(format)
            XCTAssertTrue(system.hasPrefix(PromptWording.role + "\n\n" + PromptWording.rules + "\n\n"), "\(format)")
            XCTAssertEqual(format.candidateNames, tools.map(\.name))
        }
        XCTAssertTrue(PromptWording.rules.contains(#"<tool_call>{"name": "tool_name", "arguments": {"parameter": "value"}}</tool_call>"#))
    }

    func testUserMessageAndHistorySection() {
        XCTAssertEqual(PromptFormatter.userMessage(request), request.query)
        XCTAssertFalse(PromptFormatter.userMessage(request).contains("[TOOLCALL HISTORY]"))

        let search = ToolCall(name: "search", arguments: ["q": "Paris"])
        let weather = ToolCall(name: "weather", arguments: ["city": "Paris", "days": 2])
        let withHistory = PromptRequest(query: "Plan my trip.", history: [
            Step(calls: [search], observation: "Paris is in France."),
            Step(calls: [weather, search], observation: "Sunny."),
        ])
        XCTAssertEqual(PromptFormatter.userMessage(withHistory), """
            Plan my trip.

            [TOOLCALL HISTORY]
            Step 1:
            <tool_call>{"name": "search", "arguments": {"q": "Paris"}}</tool_call>
            Observation: Paris is in France.
            Step 2:
            <tool_call>{"name": "weather", "arguments": {"city": "Paris", "days": 2}}</tool_call>
            <tool_call>{"name": "search", "arguments": {"q": "Paris"}}</tool_call>
            Observation: Sunny.
            """)

        // Results naming their calls by id are shown in the calls' order, each with the call's
        // position and tool; a step with results and no observation shows no observation line.
        let withResults = PromptRequest(query: "Plan my trip.", history: [
            Step(calls: [weather, search], observation: "", callIDs: ["call_w", "call_s"],
                 results: [StepResult(callID: "call_s", content: "Paris is in France."), StepResult(callID: "call_w", content: "Sunny.")]),
        ])
        XCTAssertEqual(PromptFormatter.userMessage(withResults), """
            Plan my trip.

            [TOOLCALL HISTORY]
            Step 1:
            <tool_call>{"name": "weather", "arguments": {"city": "Paris", "days": 2}}</tool_call>
            <tool_call>{"name": "search", "arguments": {"q": "Paris"}}</tool_call>
            Result of call 1 (weather): Sunny.
            Result of call 2 (search): Paris is in France.
            """)
        // The JSON form keeps ids and results (the trainer's dataset stores steps so).
        let step = withResults.history[0]
        XCTAssertEqual(try Step(json: step.json, context: "s"), step)
        XCTAssertEqual(try Step(json: withHistory.history[0].json, context: "s"), withHistory.history[0])
    }

    func testRenderWrapsMessagesInTheFixtureChatMLTemplate() throws {
        let formatter = try formatter()
        let tools = try candidates()
        let format = PromptFormat.documentFree(candidates: tools.map(\.name))
        let messages = formatter.messages(format, request: request)
        XCTAssertEqual(messages.map(\.role), ["system", "user"])
        XCTAssertEqual(messages[0].content, PromptFormatter.systemMessage(format))
        XCTAssertEqual(messages[1].content, request.query)

        let prompt = try formatter.render(format, request: request)
        XCTAssertEqual(prompt, "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n"
                       + "<|im_start|>user\n" + request.query + "<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertTrue(prompt.hasPrefix("<|im_start|>system\nYou call tools to answer the question,"))
        XCTAssertTrue(prompt.hasSuffix("<|im_end|>\n<|im_start|>assistant\n"))
        XCTAssertFalse(prompt.contains("[TOOLCALL HISTORY]"))

        let step = Step(calls: [ToolCall(name: tools[0].name, arguments: ["side1": 5])], observation: "6.0")
        let multiStep = try formatter.render(format, request: PromptRequest(query: request.query, history: [step]))
        XCTAssertTrue(multiStep.contains("<|im_start|>user\n" + request.query + "\n\n[TOOLCALL HISTORY]\nStep 1:\n"
                                         + step.calls[0].rendered + "\nObservation: 6.0<|im_end|>\n"))
    }
}
