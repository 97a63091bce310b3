// WireGoldenTests: the Wire layer against an independent implementation. PythonGoldenEncodings
// holds encodings made by Google's Python protobuf runtime (Protos/golden.py); the same values are
// built here in Swift, decoded from those bytes, and encoded back byte for byte.
import Wire
import XCTest

final class WireGoldenTests: XCTestCase {
    func check<M: WireMessage>(_ expected: M, _ golden: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try M(bytes: golden), expected, "decoding Python's bytes", file: file, line: line)
        XCTAssertEqual(try expected.encode(), golden, "encoding differs from Python's", file: file, line: line)
    }

    static let weather = WireToolCall(name: "weather.lookup", argumentsJSON: #"{"city":"Zürich","days":3}"#)
    static let translate = WireToolCall(name: "翻訳", argumentsJSON: #"{"text":"🦜 \"q\"\n"}"#)

    func testToolCallRequest() throws {
        try check(WireToolCallRequest(
            requestID: "req-42", query: "Wie wird das Wetter in Zürich? 天気",
            history: [WireStep(calls: [Self.weather, Self.translate], observation: "21.5 °C ☀️"), WireStep()],
            candidateTools: ["weather.lookup", "翻訳", "calendar"], maxNewTokens: 4_294_967_295,
            deadlineUnixMs: 1_764_000_000_123, topN: 0, mode: .contextDocs, maxCalls: 2, toolChoice: "翻訳"), PythonGolden.toolCallRequest)
        try check(WireToolCallRequest(requestID: "r", query: "q"), PythonGolden.minimalToolCallRequest)
    }

    func testCallIDsResultsAndForgetting() throws {
        try check(WireToolCallRequest(
            requestID: "req-43", query: "And in Oslo?",
            history: [WireStep(calls: [WireToolCall(name: "weather.lookup", argumentsJSON: #"{"city":"Zürich"}"#, id: "call_1"),
                                       WireToolCall(name: "翻訳", argumentsJSON: "{}", id: "call_2")],
                               results: [WireToolResult(callID: "call_2", content: "天気"),
                                         WireToolResult(callID: "call_1", content: #"{"temp":21.5}"#)])],
            doNotLog: true, source: "agent:trip-planner ✈"), PythonGolden.requestWithCallIDs)
        try check(WireTrajectory(id: "traj-2", query: "q", steps: [WireStep()], source: "served:w1", requestSource: "user:42"),
                  PythonGolden.trajectoryWithRequester)
        try check(WireForgetRequest(source: "user:42", createdUnixMs: 1_764_000_000_789), PythonGolden.forgetRequest)
    }

    func testAction() throws {
        try check(WireAction(
            requestID: "req-42", calls: [Self.weather], text: "",
            weights: [WireToolWeight(tool: "weather.lookup", weight: 0.75, adapterVersion: "v000003"),
                      WireToolWeight(tool: "翻訳", weight: 0.25, adapterVersion: "v000001"),
                      WireToolWeight(tool: "翻訳", weight: 1, adapterVersion: "v000001", call: 1)],
            modelID: "Llama-3.2-1B-Instruct", status: .unknownTool,
            error: WireErrorDetail(code: "tool.unknown", message: "no tool 'x' ✗"),
            timings: WirePhaseTimings(queueMs: 0.25, gateMs: 1.5, prefillMs: 30.125, decodeMs: 120, totalMs: 151.875),
            forceClosed: true),
            PythonGolden.action)
    }

    func testFlopsTelemetry() throws {
        try check(WireFlopsTelemetry(
            requestID: "req-42", workerID: "worker-ä-1", promptTokens: 1234, generatedTokens: 56,
            baseLinear: 2_470_000_000_000, attention: 12_345_678, lora: 9_876_543, encoder: 1, gate: .max,
            total: .max - 1, contextDocsEquivalent: 1 << 63,
            timings: WirePhaseTimings(queueMs: 1, gateMs: 2, prefillMs: 3, decodeMs: 4, totalMs: 10)),
            PythonGolden.flopsTelemetry)
    }

    func testTrajectoryAdapterUpdateToolSpec() throws {
        try check(WireTrajectory(
            id: "traj-1", query: "Book a table für 2 🍽", candidateTools: ["restaurant.book"],
            steps: [WireStep(calls: [WireToolCall(name: "restaurant.book", argumentsJSON: #"{"n":2}"#)], observation: "ok")],
            outcome: .solved, source: "served"), PythonGolden.trajectory)
        try check(WireAdapterUpdate(
            tool: "weather.lookup", version: "v000003", uri: "file:///store/weather.lookup/v000003",
            sha256: String(repeating: "ab", count: 32), stage: "joint", createdUnixMs: 1_764_000_000_000),
            PythonGolden.adapterUpdate)
        try check(WireToolSpec(
            name: "weather.lookup", description: "Looks up the weather — any city.",
            parametersJSON: #"{"type":"object","properties":{"city":{"type":"string"}}}"#), PythonGolden.toolSpec)
    }

    func testFeedback() throws {
        try check(WireFeedback(
            requestID: "req-42", outcome: .unsolved,
            correctedCalls: [WireToolCall(name: "weather.lookup", argumentsJSON: #"{"city":"Zürich","days":1}"#),
                             Self.translate],
            source: "agent:trip-planner ✈", createdUnixMs: 1_764_000_000_456), PythonGolden.feedback)
    }
}
