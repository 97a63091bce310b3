// WireMalformedTests: hostile and broken inputs (truncations at every length, wrong wire types,
// oversized input, invalid UTF-8, fields ParaTool requires, a seeded fuzz loop) must end in a
// WireError or a valid message, never a crash.
import Wire
import Tensor
import XCTest

final class WireMalformedTests: XCTestCase {
    /// Decodes `bytes` as every message type; each must throw a WireError or succeed.
    func decodeAll(_ bytes: [UInt8], limits: WireLimits = .default) {
        func attempt<M: WireMessage>(_ type: M.Type) {
            do {
                let message = try M(bytes: bytes, limits: limits)
                XCTAssertNoThrow(try M(bytes: try message.encode(), limits: .default))
            } catch is WireError {
            } catch {
                XCTFail("\(M.protoName): unexpected error \(error)")
            }
        }
        attempt(WireToolCall.self)
        attempt(WireStep.self)
        attempt(WireToolCallRequest.self)
        attempt(WireToolWeight.self)
        attempt(WireErrorDetail.self)
        attempt(WirePhaseTimings.self)
        attempt(WireAction.self)
        attempt(WireFlopsTelemetry.self)
        attempt(WireTrajectory.self)
        attempt(WireAdapterUpdate.self)
        attempt(WireToolSpec.self)
        attempt(WireFeedback.self)
        attempt(WireForgetRequest.self)
    }

    // Samples hold no U+0000, so encoding cannot fail; `try!` states that.
    static let samples: [[UInt8]] = try! [
        WireToolCallRequest(
            requestID: "req-1", query: "Wetter in Zürich?",
            history: [WireStep(calls: [WireToolCall(name: "weather", argumentsJSON: #"{"c":"Zürich"}"#)], observation: "21°")],
            candidateTools: ["weather", "翻訳"], maxNewTokens: 64, deadlineUnixMs: 1_764_000_000_000, topN: 2, mode: .paratool
        ).encode(),
        WireAction(
            requestID: "req-1", calls: [WireToolCall(name: "weather", argumentsJSON: "{}")],
            weights: [WireToolWeight(tool: "weather", weight: 1, adapterVersion: "v000001")], modelID: "m",
            status: .internal, error: WireErrorDetail(code: "c", message: "m"), timings: WirePhaseTimings(totalMs: 3)
        ).encode(),
        WireFlopsTelemetry(requestID: "r", workerID: "w", total: 123_456_789, timings: WirePhaseTimings(gateMs: 1)).encode(),
        WireTrajectory(id: "t", query: "q", candidateTools: ["a"], steps: [WireStep(observation: "o")], outcome: .solved).encode(),
        WireAdapterUpdate(tool: "t", version: "v000001", uri: "u", sha256: "ff", stage: "joint", createdUnixMs: 5).encode(),
        WireToolSpec(name: "t", description: "d", parametersJSON: "{}").encode(),
        WireFeedback(requestID: "r", outcome: .unsolved, correctedCalls: [WireToolCall(name: "t")], source: "s", createdUnixMs: 1).encode(),
        WireToolCallRequest(requestID: "r", query: "q", history: [WireStep(calls: [WireToolCall(name: "a", id: "c1")],
                                                                      results: [WireToolResult(callID: "c1", content: "x")])],
                            doNotLog: true, source: "s").encode(),
        WireForgetRequest(source: "s", createdUnixMs: 2).encode(),
    ]

    func testTruncatedAtEveryLength() throws {
        for sample in Self.samples {
            for length in 0..<sample.count { decodeAll(Array(sample.prefix(length))) }
        }
        let request = Self.samples[0]
        XCTAssertThrowsError(try WireToolCallRequest(bytes: Array(request.dropLast()))) { error in
            guard case WireError.malformed(let type, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(type, "paratool.v1.ToolCallRequest")
            XCTAssertTrue(reason.contains("field 8"), reason)
        }
        XCTAssertThrowsError(try WireToolCallRequest(bytes: Array(request.prefix(3)))) { error in
            guard case WireError.malformed(_, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("length 5 exceeds"), reason)
        }
    }

    func testWrongWireType() {
        let cases: [[UInt8]] = [
            [0x08, 0x01],                          // request_id (string) as a varint
            [0x0A, 0x01, 0x72, 0x2A, 0x01, 0x00],  // max_new_tokens (uint32) as length-delimited
            [0x0A, 0x01, 0x72, 0x1D, 0, 0, 0, 0],  // history (message) as fixed32
            [0x0A, 0x01, 0x72, 0x1A, 0x02, 0x08, 0x01],  // history[0].calls as a varint
        ]
        for bytes in cases {
            XCTAssertThrowsError(try WireToolCallRequest(bytes: bytes)) { error in
                guard case WireError.malformed(let type, _) = error else { return XCTFail("\(bytes): \(error)") }
                XCTAssertEqual(type, "paratool.v1.ToolCallRequest")
            }
        }
        XCTAssertThrowsError(try WireToolCallRequest(bytes: [0x0F])) { error in
            XCTAssertEqual(error as? WireError, .malformed(
                messageType: "paratool.v1.ToolCallRequest", reason: "field 1: invalid wire type 7 at offset 0"))
        }
        XCTAssertThrowsError(try WireToolCallRequest(bytes: [0x00, 0x00])) { error in
            guard case WireError.malformed = error else { return XCTFail("\(error)") }
        }
    }

    func testOversized() throws {
        let sample = Self.samples[0]
        XCTAssertThrowsError(try WireToolCallRequest(bytes: sample, limits: WireLimits(maxMessageSize: sample.count - 1))) { error in
            XCTAssertEqual(error as? WireError, .tooLarge(size: sample.count, limit: sample.count - 1))
        }
        XCTAssertNoThrow(try WireToolCallRequest(bytes: sample, limits: WireLimits(maxMessageSize: sample.count)))
        let big = try WireToolSpec(name: "t", parametersJSON: String(repeating: "a", count: WireLimits.defaultMaxMessageSize)).encode()
        XCTAssertThrowsError(try WireToolSpec(bytes: big)) { error in
            XCTAssertEqual(error as? WireError, .tooLarge(size: big.count, limit: 4 << 20))
        }
        decodeAll(big, limits: WireLimits(maxMessageSize: 0))
    }

    /// Two bytes of input (an empty history step) are a C struct, a pointer and a block header
    /// decoded: 100,000 of them fit the size limit but not the decode allocation limit.
    func testDecodedFormIsLimitedToo() throws {
        let request = try WireToolCallRequest(requestID: "r", query: "q").encode()
        let limits = WireLimits(maxMessageSize: 256 << 10)
        let dense = request + Array(repeating: [0x1A, 0x00], count: 100_000).flatMap { $0 }
        XCTAssertLessThanOrEqual(dense.count, limits.maxMessageSize)
        XCTAssertThrowsError(try WireToolCallRequest(bytes: dense, limits: limits)) { error in
            XCTAssertEqual(error as? WireError, .decodedTooLarge(limit: limits.decodeAllocationLimit))
        }
        // A message as large as the limit whose bytes are one string decodes.
        let query = String(repeating: "q", count: limits.maxMessageSize - 64)
        let large = try WireToolCallRequest(requestID: "r", query: query).encode()
        XCTAssertEqual(try WireToolCallRequest(bytes: large, limits: limits).query, query)
        // So do a few thousand steps, well within the allocation limit.
        let steps = request + Array(repeating: [0x1A, 0x00], count: 2_000).flatMap { $0 }
        XCTAssertEqual(try WireToolCallRequest(bytes: steps, limits: limits).history.count, 2_000)
    }

    func testInvalidFields() {
        XCTAssertThrowsError(try WireToolCall(bytes: [0x0A, 0x02, 0xC3, 0x28])) { error in
            XCTAssertEqual(error as? WireError, .invalidField(field: "name", reason: "not valid UTF-8"))
        }
        let badNested: [UInt8] = [0x0A, 0x01, 0x72, 0x1A, 0x05, 0x0A, 0x03, 0x0A, 0x01, 0xFF]
        XCTAssertThrowsError(try WireToolCallRequest(bytes: badNested)) { error in
            XCTAssertEqual(error as? WireError, .invalidField(field: "history[0].calls[0].name", reason: "not valid UTF-8"))
        }
        XCTAssertThrowsError(try WireToolCallRequest(bytes: WireToolCallRequest(requestID: "", query: "q").encode())) { error in
            XCTAssertEqual(error as? WireError, .invalidField(field: "request_id", reason: "must not be empty"))
        }
        XCTAssertThrowsError(try WireAction(bytes: [])) { error in
            XCTAssertEqual(error as? WireError, .invalidField(field: "request_id", reason: "must not be empty"))
        }
        let nanWeight = WireAction(requestID: "r", weights: [WireToolWeight(tool: "t", weight: .nan)])
        XCTAssertThrowsError(try WireAction(bytes: try nanWeight.encode())) { error in
            guard case WireError.invalidField(let field, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "weights[0].weight")
        }
        XCTAssertThrowsError(try WireAdapterUpdate(bytes: WireAdapterUpdate(tool: "t", version: "v1", sha256: "").encode()))
        XCTAssertThrowsError(try WireTrajectory(bytes: WireTrajectory(id: "", query: "q").encode()))
        XCTAssertThrowsError(try WireToolSpec(bytes: []))
        XCTAssertThrowsError(try WireFlopsTelemetry(bytes: []))
        XCTAssertEqual(try WirePhaseTimings(bytes: []), WirePhaseTimings())
    }

    /// A result must name a call of its step, once; call ids are unique in the whole history;
    /// a forget request names a request or a source, not both.
    func testResultsNameTheirCalls() throws {
        func refusal(_ steps: [WireStep]) -> WireError? {
            do {
                _ = try WireToolCallRequest(bytes: WireToolCallRequest(requestID: "r", query: "q", history: steps).encode())
                return nil
            } catch { return error as? WireError }
        }
        let a = WireToolCall(name: "a", id: "c1"), b = WireToolCall(name: "b", id: "c2")
        XCTAssertNil(refusal([WireStep(calls: [a, b], results: [WireToolResult(callID: "c2", content: "x"), WireToolResult(callID: "c1", content: "y")])]))
        XCTAssertNil(refusal([WireStep(calls: [WireToolCall(name: "a")], observation: "old clients: one observation")]))
        XCTAssertEqual(refusal([WireStep(calls: [a], results: [WireToolResult(callID: "c9", content: "x")])]),
                       .invalidField(field: "history[0].results[0].call_id", reason: "'c9' names no call of this step"))
        XCTAssertEqual(refusal([WireStep(calls: [a], results: [WireToolResult(callID: "c1", content: "x"), WireToolResult(callID: "c1", content: "y")])]),
                       .invalidField(field: "history[0].results[1].call_id", reason: "call 'c1' has an earlier result in this step"))
        XCTAssertEqual(refusal([WireStep(calls: [a, WireToolCall(name: "b", id: "c1")])]),
                       .invalidField(field: "history[0].calls[1].id", reason: "'c1' is the id of an earlier call of this step"))
        XCTAssertEqual(refusal([WireStep(calls: [a]), WireStep(calls: [WireToolCall(name: "b", id: "c1")])]),
                       .invalidField(field: "history[1].calls[0].id", reason: "'c1' is the id of an earlier call"))
        XCTAssertEqual(refusal([WireStep(calls: [WireToolCall(name: "a")], results: [WireToolResult(callID: "", content: "x")])]),
                       .invalidField(field: "history[0].results[0].call_id", reason: "must not be empty"))
        XCTAssertThrowsError(try WireForgetRequest(bytes: WireForgetRequest(requestID: "r", source: "s").encode()))
        XCTAssertThrowsError(try WireForgetRequest(bytes: []))
        XCTAssertEqual(try WireForgetRequest(bytes: WireForgetRequest(requestID: "r").encode()).key, "r")
    }

    /// protobuf-c cannot carry U+0000 inside a string: encoding refuses rather than drop it.
    func testNulCharactersAreRefusedOnEncode() throws {
        XCTAssertThrowsError(try WireToolCall(name: "a\u{0}b", argumentsJSON: "{}").encode()) {
            XCTAssertTrue("\($0)".contains("U+0000"), "\($0)")
        }
        XCTAssertThrowsError(try WireToolCallRequest(requestID: "r", query: "q\u{0}").encode())
        XCTAssertEqual(try WireToolCall(bytes: try WireToolCall(name: "ab", argumentsJSON: "{}").encode()).name, "ab")
    }

    func testSeededFuzz() {
        var rng = SeededGenerator(seed: 0x5EED_2026)
        for iteration in 0..<20_000 {
            var bytes: [UInt8]
            if iteration % 2 == 0 {
                bytes = (0..<Int(rng.next() % 96)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                bytes = Self.samples[Int(rng.next() % UInt64(Self.samples.count))]
                for _ in 0...Int(rng.next() % 4) where !bytes.isEmpty {
                    let index = Int(rng.next() % UInt64(bytes.count))
                    bytes[index] ^= UInt8(1) << (rng.next() % 8)
                }
                if rng.next() % 4 == 0 { bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count + 1)))) }
            }
            decodeAll(bytes)
        }
    }
}
