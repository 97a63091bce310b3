// WireRoundTripTests: every message through protobuf-c and back with non-trivial values, and the
// encodings of two small messages against bytes written out by hand from the protobuf wire format.
import Wire
import XCTest

final class WireRoundTripTests: XCTestCase {
    func roundTrip<M: WireMessage>(_ message: M, file: StaticString = #filePath, line: UInt = #line) throws {
        let bytes = try message.encode()
        let decoded = try M(bytes: bytes)
        XCTAssertEqual(decoded, message, file: file, line: line)
        XCTAssertEqual(try decoded.encode(), bytes, "re-encoding differs", file: file, line: line)
    }

    static let calls = [
        WireToolCall(name: "weather.lookup", argumentsJSON: #"{"city":"Zürich","days":3}"#),
        WireToolCall(name: "翻訳", argumentsJSON: #"{"text":"🦜 emoji, \"quotes\", \\ and newlines\n"}"#),
    ]
    static let longTools = (0..<500).map { "tool_\($0)_" + String(repeating: "x", count: $0 % 17) }

    func testToolCallAndStep() throws {
        for call in Self.calls { try roundTrip(call) }
        try roundTrip(WireToolCall(name: "n", argumentsJSON: ""))
        try roundTrip(WireStep(calls: Self.calls, observation: "°C: 21.5 — sunny ☀️"))
        try roundTrip(WireStep())
        try roundTrip(WireStep(calls: (0..<300).map { WireToolCall(name: "t\($0)", argumentsJSON: "{\"i\":\($0)}") }))
    }

    func testToolCallRequest() throws {
        let history = [WireStep(calls: Self.calls, observation: "ok"), WireStep(calls: [], observation: "")]
        try roundTrip(WireToolCallRequest(requestID: "req-1", query: "Wie wird das Wetter in Zürich? 天気"))
        try roundTrip(WireToolCallRequest(
            requestID: "req-2", query: "q", history: history, candidateTools: Self.longTools,
            maxNewTokens: .max, deadlineUnixMs: 1_764_000_000_123, topN: 3, mode: .contextDocs))
        try roundTrip(WireToolCallRequest(requestID: "r", query: "", deadlineUnixMs: -5, topN: 0, mode: .unspecified))
        try roundTrip(WireToolCallRequest(requestID: "r", query: "", mode: .unrecognized(42)))
        for mode: WireMode in [.paratool, .average, .top1, .oracle, .embsim, .contextDocs] {
            try roundTrip(WireToolCallRequest(requestID: "r", query: "q", mode: mode))
            XCTAssertEqual(WireMode(name: mode.name ?? ""), mode)
        }
        let unset = try WireToolCallRequest(bytes: WireToolCallRequest(requestID: "r", query: "q").encode())
        XCTAssertNil(unset.topN)
        XCTAssertNil(unset.mode)
        XCTAssertNil(unset.maxCalls)
        XCTAssertEqual(try WireToolCallRequest(bytes: WireToolCallRequest(requestID: "r", query: "q", maxCalls: 1).encode()).maxCalls, 1)
        let zero = try WireToolCallRequest(bytes: WireToolCallRequest(requestID: "r", query: "q", topN: 0).encode())
        XCTAssertEqual(zero.topN, 0, "a present zero must stay distinguishable from unset")
    }

    func testAction() throws {
        let weights = [
            WireToolWeight(tool: "weather.lookup", weight: 0.75, adapterVersion: "v000003"),
            WireToolWeight(tool: "翻訳", weight: 0.25, adapterVersion: "v000001"),
            WireToolWeight(tool: "z", weight: 0, adapterVersion: ""),
            WireToolWeight(tool: "z", weight: 1, adapterVersion: "v000002", call: 3),
        ]
        let timings = WirePhaseTimings(queueMs: 0.25, gateMs: 1.5, prefillMs: 30.125, decodeMs: 120, totalMs: 151.875)
        try roundTrip(WireAction(
            requestID: "req-1", calls: Self.calls, weights: weights, modelID: "Llama-3.2-1B-Instruct",
            status: .ok, timings: timings, servedFormat: "context-docs"))
        try roundTrip(WireAction(requestID: "req-2", text: "Die Antwort ist 42. ✅", status: .ok))
        for status: WireStatus in [.unspecified, .invalidRequest, .unknownTool, .deadlineExceeded, .internal, .unrecognized(99)] {
            try roundTrip(WireAction(
                requestID: "req-e", status: status, error: WireErrorDetail(code: "tool.unknown", message: "no tool 'x' ✗")))
        }
        try roundTrip(WireAction(requestID: "r", status: .internal, error: WireErrorDetail(code: "", message: "")))
        try roundTrip(weights[0])
        try roundTrip(timings)
        try roundTrip(WirePhaseTimings())
        try roundTrip(WireErrorDetail(code: "wire.malformed", message: "ünïcode"))
    }

    func testFlopsTelemetry() throws {
        try roundTrip(WireFlopsTelemetry(
            requestID: "req-1", workerID: "worker-ä-1", promptTokens: 1234, generatedTokens: 56,
            baseLinear: 2_470_000_000_000, attention: 12_345_678, lora: 9_876_543, encoder: 1, gate: .max,
            total: UInt64.max - 1, contextDocsEquivalent: 1 << 63,
            timings: WirePhaseTimings(queueMs: 1, gateMs: 2, prefillMs: 3, decodeMs: 4, totalMs: 10)))
        try roundTrip(WireFlopsTelemetry(requestID: "r"))
    }

    func testTrajectory() throws {
        for outcome: WireOutcome in [.unknown, .solved, .unsolved, .unrecognized(7)] {
            try roundTrip(WireTrajectory(
                id: "traj-1", query: "Book a table für 2 🍽", candidateTools: Self.longTools,
                steps: [WireStep(calls: Self.calls, observation: "{\"ok\":true}"), WireStep(observation: "done")],
                outcome: outcome, source: "served"))
        }
        try roundTrip(WireTrajectory(id: "t", query: ""))
    }

    func testFeedback() throws {
        try roundTrip(WireFeedback(requestID: "req-1", outcome: .unsolved, correctedCalls: Self.calls, source: "agent:ä",
                                   createdUnixMs: 1_764_000_000_000))
        try roundTrip(WireFeedback(requestID: "r", outcome: .solved))
    }

    /// Feedback must say solved or unsolved, and only unsolved feedback may carry corrected calls.
    func testFeedbackValidation() throws {
        func field(_ f: WireFeedback) -> String? {
            do { _ = try WireFeedback(bytes: try f.encode()); return nil } catch WireError.invalidField(let field, _) { return field } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(field(WireFeedback(requestID: "", outcome: .solved)), "request_id")
        XCTAssertEqual(field(WireFeedback(requestID: "r", outcome: .unknown)), "outcome")
        XCTAssertEqual(field(WireFeedback(requestID: "r", outcome: .unrecognized(9))), "outcome")
        XCTAssertEqual(field(WireFeedback(requestID: "r", outcome: .solved, correctedCalls: [WireToolCall(name: "t")])), "corrected_calls")
        XCTAssertEqual(field(WireFeedback(requestID: "r", outcome: .unsolved, correctedCalls: [WireToolCall(name: "")])),
                       "corrected_calls[0].name")
        XCTAssertNil(field(WireFeedback(requestID: "r", outcome: .unsolved)))
    }

    func testAdapterUpdateAndToolSpec() throws {
        try roundTrip(WireAdapterUpdate(
            tool: "weather.lookup", version: "v000003", uri: "file:///store/weather.lookup/v000003",
            sha256: String(repeating: "ab", count: 32), stage: "joint", createdUnixMs: 1_764_000_000_000))
        try roundTrip(WireAdapterUpdate(tool: "t", version: "v000001", sha256: "00", createdUnixMs: -1))
        try roundTrip(WireToolSpec(
            name: "weather.lookup", description: "Looks up the weather — any city, any language.",
            parametersJSON: #"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#))
        try roundTrip(WireToolSpec(name: "x", description: "", parametersJSON: String(repeating: "y", count: 100_000)))
    }

    // MARK: - Independent encodings (protobuf wire format: tag = field << 3 | wire type)

    func testToolCallMatchesHandEncoding() throws {
        let expected: [UInt8] = [
            0x0A, 0x02, 0x61, 0x62,        // field 1 (name), length-delimited: "ab"
            0x12, 0x02, 0x7B, 0x7D,        // field 2 (arguments_json), length-delimited: "{}"
        ]
        XCTAssertEqual(try WireToolCall(name: "ab", argumentsJSON: "{}").encode(), expected)
        XCTAssertEqual(try WireToolCall(bytes: expected), WireToolCall(name: "ab", argumentsJSON: "{}"))
    }

    func testToolCallRequestMatchesHandEncoding() throws {
        let request = WireToolCallRequest(
            requestID: "r1", query: "", candidateTools: ["x", "yz"], maxNewTokens: 300, deadlineUnixMs: -1,
            topN: 0, mode: .top1)
        let expected: [UInt8] = [
            0x0A, 0x02, 0x72, 0x31,        // field 1 (request_id): "r1"; field 2 (query) empty: omitted
            0x22, 0x01, 0x78,              // field 4 (candidate_tools): "x"
            0x22, 0x02, 0x79, 0x7A,        // field 4 (candidate_tools): "yz"
            0x28, 0xAC, 0x02,              // field 5 (max_new_tokens), varint 300
            0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,  // field 6 (deadline), int64 -1
            0x38, 0x00,                    // field 7 (top_n) present with value 0
            0x40, 0x03,                    // field 8 (mode) MODE_TOP1
        ]
        XCTAssertEqual(try request.encode(), expected)
        XCTAssertEqual(try WireToolCallRequest(bytes: expected), request)
        // Fields in another order, and an unknown field 15 (varint), decode the same.
        let reordered: [UInt8] = [0x40, 0x03, 0x78, 0x05] + expected.dropLast(2)
        XCTAssertEqual(try WireToolCallRequest(bytes: reordered), request)
    }
}
