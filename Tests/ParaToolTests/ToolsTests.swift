// Tests of the Tools layer: JSONValue parsing and Python-compatible serialization, catalogue
// loading from every BFCL file in Tests/Fixtures/bfcl (checked against an independent JSONSerialization read),
// the action parser's diagnostics, and BFCL gold answers turned into calls.
import Foundation
import FixtureSupport
import XCTest
@testable import ParaTool

/// BFCL and tokenizer paths under Tests/Fixtures (found by `RepositoryFixtures`).
enum ToolTestFixtures {
    /// `Tests/Fixtures/hf-tiny`.
    static var hfTiny: URL { RepositoryFixtures.hfTiny }

    /// The BFCL categories kept in `Tests/Fixtures/bfcl`.
    static let categories = RepositoryFixtures.bfclCategories

    static func question(_ category: String) -> URL { RepositoryFixtures.bfclQuestions(category) }
    static func answer(_ category: String) -> URL { RepositoryFixtures.bfclAnswers(category) }

    /// Fails the test (never skips silently) when a fixture is missing.
    static func require(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        try RepositoryFixtures.require(url, file: file, line: line)
    }

    /// The non-empty lines of a JSON Lines file.
    static func lines(_ url: URL) throws -> [String] {
        try String(contentsOf: require(url), encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// The `line` with `"id": id` from a JSON Lines file.
    static func line(id: String, in url: URL) throws -> String {
        try XCTUnwrap(lines(url).first { $0.hasPrefix("{\"id\": \"\(id)\"") }, "no line \(id)")
    }
}

final class ToolsTests: XCTestCase {
    // MARK: JSONValue

    // Expected texts are what Python 3's json.dumps prints for the same values.
    func testSerializedMatchesPythonJSONDumps() throws {
        let value: JSONValue = ["a": 1, "b": [true, nil, 2.5]]
        XCTAssertEqual(value.serialized(), #"{"a": 1, "b": [true, null, 2.5]}"#)
        XCTAssertEqual(JSONValue.double(1.0).serialized(), "1.0")
        XCTAssertEqual(JSONValue.double(1e-5).serialized(), "1e-05")
        XCTAssertEqual(JSONValue.double(0.0001).serialized(), "0.0001")
        XCTAssertEqual(JSONValue.double(1e16).serialized(), "1e+16")
        XCTAssertEqual(JSONValue.double(1e15).serialized(), "1000000000000000.0")
        XCTAssertEqual(JSONValue.double(0.1 + 0.2).serialized(), "0.30000000000000004")
        XCTAssertEqual(JSONValue.double(-0.0).serialized(), "-0.0")
        XCTAssertEqual(JSONValue.double(.infinity).serialized(), "Infinity")
        XCTAssertEqual(JSONValue.double(.nan).serialized(), "NaN")
        XCTAssertEqual(JSONValue.int(-9_007_199_254_740_993).serialized(), "-9007199254740993")
        XCTAssertEqual(JSONValue.array([]).serialized(), "[]")
        XCTAssertEqual(JSONValue.object([:]).serialized(), "{}")
    }

    func testStringEscapesMatchPython() {
        // json.dumps("é\n\"\\\t\x01\x7f/") and json.dumps("😀"), with and without ensure_ascii.
        XCTAssertEqual(JSONValue.string("é\n\"\\\t\u{01}\u{7f}/").serialized(), #""\u00e9\n\"\\\t\u0001\u007f/""#)
        XCTAssertEqual(JSONValue.string("é\n\u{7f}").serialized(asciiOnly: false), "\"é\\n\u{7f}\"")
        XCTAssertEqual(JSONValue.string("😀").serialized(), #""\ud83d\ude00""#)
        XCTAssertEqual(JSONValue.string("😀").serialized(asciiOnly: false), "\"😀\"")
        XCTAssertEqual(JSONValue.string("\u{08}\u{0C}\r").serialized(), #""\b\f\r""#)
    }

    func testSortedKeysAndOrderPreservation() throws {
        let value = try JSONValue.parse(#"{"b": 1, "a": {"d": 2, "c": 3}}"#)
        XCTAssertEqual(value.serialized(), #"{"b": 1, "a": {"d": 2, "c": 3}}"#)
        XCTAssertEqual(value.serialized(sortedKeys: true), #"{"a": {"c": 3, "d": 2}, "b": 1}"#)
        // Equality ignores member order, like Python dicts.
        XCTAssertEqual(value, try JSONValue.parse(#"{"a": {"c": 3, "d": 2}, "b": 1}"#))
        XCTAssertNotEqual(value, try JSONValue.parse(#"{"a": {"c": 3, "d": 2}, "b": 2}"#))
        // A repeated key keeps its first position and last value (json.loads then json.dumps).
        XCTAssertEqual(try JSONValue.parse(#"{"a": 1, "b": 2, "a": 3}"#).serialized(), #"{"a": 3, "b": 2}"#)
    }

    func testParseValuesAndNumbers() throws {
        XCTAssertEqual(try JSONValue.parse(" \n[1, -2, 2.5, 1e2, -0, 9007199254740993, true, false, null, \"x\"]\t"),
                       [1, -2, 2.5, 100.0, 0, .int(9_007_199_254_740_993), true, false, nil, "x"])
        XCTAssertEqual(try JSONValue.parse("1e2").serialized(), "100.0")
        XCTAssertEqual(try JSONValue.parse("-0").serialized(), "0")
        // Beyond Int64 the value is kept as a double.
        XCTAssertEqual(try JSONValue.parse("12345678901234567890"), .double(Double("12345678901234567890")!))
        XCTAssertEqual(try JSONValue.parse(#""\ud83d\ude00 \u00E9 \/""#), "😀 é /")
        XCTAssertEqual(try JSONValue.parse(#"{"k": {}}"#)["k"], .object([:]))
    }

    func testParseErrorsNameOffsetAndExpectation() {
        func failure(_ text: String) -> JSONParseError? {
            do {
                _ = try JSONValue.parse(text)
                return nil
            } catch {
                return error as? JSONParseError
            }
        }
        var e = failure(#"{"a": 1,}"#)
        XCTAssertEqual(e?.offset, 8)
        XCTAssertEqual(e?.expected, "a string key after ','")
        XCTAssertEqual(e?.found, "'}'")
        XCTAssertEqual(e?.description, "invalid JSON at offset 8 (line 1, column 9): expected a string key after ',', found '}'")

        e = failure("[1 2]")
        XCTAssertEqual(e?.offset, 3)
        XCTAssertEqual(e?.expected, "',' or ']' after an array element")

        e = failure(#"{"a": 01}"#)
        XCTAssertEqual(e?.offset, 7)
        XCTAssertEqual(e?.expected, "'.', 'e' or the end of the number after a leading 0")

        // Offsets count Unicode scalars, not UTF-8 bytes.
        e = failure(#""é"x"#)
        XCTAssertEqual(e?.offset, 3)
        XCTAssertEqual(e?.expected, "end of text after the JSON value")
        XCTAssertEqual(e?.found, "'x'")

        e = failure(#""é"#)
        XCTAssertEqual(e?.offset, 2)
        XCTAssertEqual(e?.found, "end of text")

        e = failure(#"["\ud83d"]"#)
        XCTAssertEqual(e?.offset, 2)
        XCTAssertEqual(e?.expected, "a '\\uDC00'-'\\uDFFF' low surrogate after the high surrogate")

        e = failure(#""\ude00""#)
        XCTAssertEqual(e?.offset, 1)

        e = failure("\"a\nb\"")
        XCTAssertEqual(e?.offset, 2)
        XCTAssertEqual(e?.found, "control character U+000A")

        e = failure("{\n  \"a\" 1}")
        XCTAssertEqual(e?.offset, 8)
        XCTAssertEqual(e?.line, 2)
        XCTAssertEqual(e?.column, 7)
        XCTAssertEqual(e?.expected, "':' after the object key")

        e = failure("")
        XCTAssertEqual(e?.offset, 0)
        XCTAssertEqual(e?.found, "end of text")

        for bad in ["tru", "'a'", "[1,]", "NaN", "01", "1.", "-", "1e", "\"\\x\"", "{\"a\" 1}", "// c\n1"] {
            XCTAssertNotNil(failure(bad), bad)
        }
        XCTAssertNotNil(failure(String(repeating: "[", count: 600) + String(repeating: "]", count: 600)))
    }

    /// A number beyond Double's range would become infinity, which `serialized` writes as
    /// `Infinity` and the parser then refuses: a stored line could never be read back. Such numbers
    /// are refused where they are read; underflow to zero is fine (the value stays finite).
    func testParseRefusesNumbersThatAreNotFiniteInDouble() {
        for text in ["1e999", "-1e999", #"{"city": 1e999}"#, "[0, 2e308]", "123456789012345678901234567890e300"] {
            XCTAssertThrowsError(try JSONValue.parse(text), text) { error in
                XCTAssertEqual((error as? JSONParseError)?.expected, "a finite number", text)
            }
        }
        do {
            _ = try JSONValue.parse(#"{"city": 1e999}"#)
        } catch let error as JSONParseError {
            XCTAssertEqual(error.offset, 9, "the offset of the number")
        } catch { XCTFail("\(error)") }
        XCTAssertEqual(try JSONValue.parse("1e-999"), .double(0))
        XCTAssertEqual(try JSONValue.parse("1.7976931348623157e308"), .double(.greatestFiniteMagnitude))
    }

    /// `nestingDepth` counts arrays and objects on the deepest path (scalars are 0).
    func testNestingDepth() throws {
        XCTAssertEqual(JSONValue.string("a").nestingDepth, 0)
        XCTAssertEqual(try JSONValue.parse("{}").nestingDepth, 1)
        XCTAssertEqual(try JSONValue.parse(#"{"a": [1, {"b": []}], "c": 2}"#).nestingDepth, 4)
        XCTAssertEqual(try JSONValue.parse(String(repeating: "[", count: 300) + String(repeating: "]", count: 300)).nestingDepth, 300)
    }

    /// Every line of the BFCL files was written by Python's json.dumps, so parsing and
    /// serializing must give the line back byte for byte.
    func testEveryBFCLLineRoundTripsToPythonText() throws {
        var count = 0
        for category in ToolTestFixtures.categories {
            for url in [ToolTestFixtures.question(category), ToolTestFixtures.answer(category)] {
                for line in try ToolTestFixtures.lines(url) {
                    XCTAssertEqual(try JSONValue.parse(line).serialized(), line)
                    count += 1
                }
            }
        }
        XCTAssertEqual(count, 2 * (400 + 200 + 200 + 200 + 258))
    }

    func testCodableRoundTrip() throws {
        let spec = ToolSpec(name: "f", description: "d", parameters: ["type": "dict", "properties": ["x": ["type": "integer"]], "required": ["x"]])
        let decoded = try JSONDecoder().decode(ToolSpec.self, from: JSONEncoder().encode(spec))
        XCTAssertEqual(decoded, spec)
    }

    // MARK: ToolCatalogue

    /// Every question of every BFCL file loads; tool names (first-seen order), function counts and
    /// required parameters agree with an independent JSONSerialization read.
    func testEveryBFCLFileLoads() throws {
        // Distinct function names per file, counted with Python.
        let distinct = ["simple_python": 370, "multiple": 443, "parallel": 186, "parallel_multiple": 458, "live_simple": 85]
        for category in ToolTestFixtures.categories {
            let url = try ToolTestFixtures.require(ToolTestFixtures.question(category))
            let catalogue = try ToolCatalogue.load(file: url)
            let questions = try BFCLQuestion.load(file: url)

            var names: [String] = []
            var seen = Set<String>()
            var lineCount = 0
            for (line, question) in zip(try ToolTestFixtures.lines(url), questions) {
                lineCount += 1
                let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                XCTAssertEqual(question.id, object["id"] as? String)
                let functions = try XCTUnwrap(object["function"] as? [[String: Any]])
                XCTAssertEqual(question.functions.count, functions.count, question.id)
                for (spec, function) in zip(question.functions, functions) {
                    let name = try XCTUnwrap(function["name"] as? String)
                    XCTAssertEqual(spec.name, name)
                    XCTAssertEqual(spec.description, function["description"] as? String)
                    let parameters = try XCTUnwrap(function["parameters"] as? [String: Any])
                    XCTAssertEqual(spec.requiredParameters, parameters["required"] as? [String] ?? [], name)
                    XCTAssertEqual(Set(spec.parameterNames), Set((parameters["properties"] as? [String: Any] ?? [:]).keys), name)
                    if seen.insert(name).inserted { names.append(name) }
                }
            }
            XCTAssertEqual(questions.count, lineCount, category)
            XCTAssertEqual(catalogue.names, names, category)
            XCTAssertEqual(catalogue.count, distinct[category], category)
        }
    }

    /// A saved catalogue loads back equal (every BFCL `multiple` tool: names, documents, schemas, order).
    func testSaveLoadRoundTrip() throws {
        let original = try ToolCatalogue.load(file: try ToolTestFixtures.require(ToolTestFixtures.question("multiple")))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("catalogue-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try original.save(to: file)
        XCTAssertEqual(try ToolCatalogue.load(file: file), original)
        XCTAssertEqual(try ToolCatalogue.load(file: file).count, 443)
    }

    func testHandCheckedBFCLTools() throws {
        let parallel = try ToolCatalogue.load(file: ToolTestFixtures.require(ToolTestFixtures.question("parallel")))
        let play = try XCTUnwrap(parallel["spotify.play"])
        XCTAssertEqual(play.description, "Play specific tracks from a given artist for a specific time duration.")
        XCTAssertEqual(play.requiredParameters, ["artist", "duration"])
        XCTAssertEqual(play.parameterNames, ["artist", "duration"])
        XCTAssertEqual(play.parameters["type"], "dict")
        XCTAssertEqual(parallel.names.first, "spotify.play")

        let multiple = try ToolCatalogue.load(file: ToolTestFixtures.require(ToolTestFixtures.question("multiple")))
        let triangle = try XCTUnwrap(multiple["triangle_properties.get"])
        XCTAssertEqual(triangle.requiredParameters, ["side1", "side2", "side3"])
        XCTAssertEqual(triangle.parameterNames, ["side1", "side2", "side3", "get_area", "get_perimeter", "get_angles"])
        XCTAssertNotNil(multiple["circle_properties.get"])
        XCTAssertNil(multiple["no.such.tool"])
        XCTAssertEqual(try multiple.specs(named: ["circle_properties.get"]).map(\.name), ["circle_properties.get"])
        XCTAssertThrowsError(try multiple.specs(named: ["x", "triangle_properties.get", "y"])) {
            XCTAssertEqual(($0 as? ToolFormatError)?.message, "unknown tools: x, y")
        }
    }

    func testOpenAIAndPlainFormats() throws {
        let openAI = """
            [{"type": "function", "function": {"name": "get_weather", "description": "Weather now.",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
             {"type": "function", "function": {"name": "get_time"}}]
            """
        let a = try ToolCatalogue.parse(openAI)
        XCTAssertEqual(a.names, ["get_weather", "get_time"])
        XCTAssertEqual(a["get_weather"]?.requiredParameters, ["city"])
        XCTAssertEqual(a["get_time"]?.description, "")

        let request = try ToolCatalogue.parse(#"{"model": "m", "tools": [{"type": "function", "function": {"name": "x", "description": "X"}}]}"#)
        XCTAssertEqual(request.names, ["x"])

        let plain = try ToolCatalogue.parse(#"[{"name": "b", "description": "B", "parameters": {}}, {"name": "a", "description": "A"}, {"name": "b", "description": "again"}]"#)
        XCTAssertEqual(plain.names, ["b", "a"])
        XCTAssertEqual(plain["b"]?.description, "B")

        let jsonl = "{\"id\": \"1\", \"function\": [{\"name\": \"p\"}, {\"name\": \"q\"}]}\n\n{\"id\": \"2\", \"function\": [{\"name\": \"q\", \"description\": \"dup\"}, {\"name\": \"r\"}]}\n"
        let lines = try ToolCatalogue.parse(jsonl)
        XCTAssertEqual(lines.names, ["p", "q", "r"])
        XCTAssertEqual(lines["q"]?.description, "")
    }

    func testUnknownShapesNameWhatWasFound() {
        func message(_ text: String) -> String {
            do {
                _ = try ToolCatalogue.parse(text)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(message(#"{"foo": 1, "bar": 2}"#).contains("found an object with keys [foo, bar]"), message(#"{"foo": 1}"#))
        XCTAssertEqual(message("42"), "found a JSON integer; expected an array of tools or an object holding them")
        XCTAssertTrue(message(#"[{"x": 1}]"#).hasPrefix("element 0 of the array is an object with keys [x]"))
        XCTAssertTrue(message(#"[{"name": "a"}, "b"]"#).hasPrefix("element 1 of the array is a string"))
        XCTAssertTrue(message(#"[{"name": 3}]"#).contains("\"name\" must be a non-empty string, found 3"))
        XCTAssertTrue(message(#"[{"name": "a", "parameters": []}]"#).contains("tool a: \"parameters\" must be an object, found an array"))
        XCTAssertTrue(message("{\"function\": [{\"name\": \"a\"}]}\n{\"function\": [{\"name\": \"b\"}] \n").hasPrefix("line 2: invalid JSON at offset"))
        XCTAssertTrue(message("[1,").hasPrefix("invalid JSON at offset 3"))
    }

    // MARK: ActionParser

    private let taylor = ToolCall(name: "spotify.play", arguments: ["artist": "Taylor Swift", "duration": 20])
    private let maroon = ToolCall(name: "spotify.play", arguments: ["artist": "Maroon 5", "duration": 15])

    private func kinds(_ result: ActionParseResult) -> [ActionDiagnostic.Kind] { result.diagnostics.map(\.kind) }

    func testRenderedIsTheTrainingTarget() throws {
        XCTAssertEqual(taylor.rendered,
                       #"<tool_call>{"name": "spotify.play", "arguments": {"artist": "Taylor Swift", "duration": 20}}</tool_call>"#)
        XCTAssertEqual(ToolCall(name: "f").rendered, #"<tool_call>{"name": "f", "arguments": {}}</tool_call>"#)
        let city = ToolCall(name: "get_current_weather", arguments: ["location": "Divinópolis, MG"])
        XCTAssertEqual(city.rendered, #"<tool_call>{"name": "get_current_weather", "arguments": {"location": "Divinópolis, MG"}}</tool_call>"#)
        XCTAssertEqual(Action.calls([taylor, maroon]).rendered, taylor.rendered + "\n" + maroon.rendered)
        XCTAssertEqual(Action.answer("hi").rendered, "hi")
        for call in [taylor, city] {
            XCTAssertEqual(ActionParser.parse(call.rendered), ActionParseResult(action: .calls([call]), diagnostics: []))
        }
    }

    func testParallelCalls() {
        let text = """
            <tool_call>{"name": "spotify.play", "arguments": {"artist": "Taylor Swift", "duration": 20}}</tool_call>
            <tool_call>{"name": "spotify.play", "arguments": {"duration": 15, "artist": "Maroon 5"}}</tool_call>
            """
        let result = ActionParser.parse(text)
        XCTAssertEqual(result.action, .calls([taylor, maroon]))
        XCTAssertEqual(result.diagnostics, [])
        XCTAssertTrue(result.isValid)
    }

    func testPlainAnswer() {
        let result = ActionParser.parse("  The answer is 42.\n")
        XCTAssertEqual(result.action, .answer("The answer is 42."))
        XCTAssertEqual(result.diagnostics, [])
    }

    func testUnclosedBlocks() {
        var result = ActionParser.parse(#"<tool_call>{"name": "f", "arguments": {"x": 1}}"#)
        XCTAssertEqual(result.action, .calls([ToolCall(name: "f", arguments: ["x": 1])]))
        XCTAssertEqual(kinds(result), [.unclosedBlock])
        XCTAssertEqual(result.diagnostics.first?.severity, .warning)
        XCTAssertEqual(result.diagnostics.first?.block, 1)

        result = ActionParser.parse(#"<tool_call>{"name": "f", "arguments": {"#)
        XCTAssertEqual(result.action, .calls([]))
        XCTAssertEqual(kinds(result), [.unclosedBlock, .invalidJSON(offset: 28)])
        XCTAssertEqual(result.errors.count, 2)
        XCTAssertEqual(result.diagnostics.first?.description,
                       "block 1: <tool_call> is not closed by </tool_call> before the end of the text")

        result = ActionParser.parse(#"<tool_call>{"name": "a"<tool_call>{"name": "b", "arguments": {}}</tool_call>"#)
        XCTAssertEqual(result.action, .calls([ToolCall(name: "b")]))
        XCTAssertEqual(kinds(result), [.unclosedBlock, .invalidJSON(offset: 12)])
        XCTAssertTrue(result.diagnostics[0].message.hasSuffix("before the next <tool_call>"))
    }

    func testInvalidJSONNamesBlockAndOffset() {
        let text = #"<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{"name": "b", "arguments": {"x": 1,}}</tool_call>"#
        let result = ActionParser.parse(text)
        XCTAssertEqual(result.action, .calls([ToolCall(name: "a")]))
        XCTAssertEqual(result.diagnostics.count, 1)
        let d = result.diagnostics[0]
        XCTAssertEqual(d.kind, .invalidJSON(offset: 35))
        XCTAssertEqual(d.block, 2)
        XCTAssertEqual(d.severity, .error)
        XCTAssertEqual(d.description, "block 2: invalid JSON at offset 35 of the block: expected a string key after ',', found '}'")
    }

    func testMalformedCallObjects() {
        func single(_ block: String) -> ActionParseResult { ActionParser.parse("<tool_call>\(block)</tool_call>") }

        var r = single(#"{"arguments": {"x": 1}}"#)
        XCTAssertEqual(kinds(r), [.missingName])
        XCTAssertEqual(r.action, .calls([]))
        XCTAssertEqual(r.diagnostics[0].message, #"the object has no "name" (keys: "arguments")"#)

        r = single(#"{"name": 5, "arguments": {}}"#)
        XCTAssertEqual(kinds(r), [.nameNotString])

        r = single(#"{"name": "f", "arguments": [1, 2]}"#)
        XCTAssertEqual(kinds(r), [.argumentsNotObject])
        XCTAssertEqual(r.diagnostics[0].message, #""arguments" of f must be an object, found an array"#)

        r = single(#"{"name": "f", "arguments": "[1]"}"#)
        XCTAssertEqual(kinds(r), [.argumentsNotObject])
        XCTAssertEqual(r.action, .calls([]))

        r = single(#"{"name": "f", "arguments": "{oops"}"#)
        XCTAssertEqual(kinds(r), [.argumentsNotObject])

        r = single("[1]")
        XCTAssertEqual(kinds(r), [.notAnObject])

        r = single("  \n ")
        XCTAssertEqual(kinds(r), [.emptyBlock])

        r = single(#"{"name": "f"}"#)
        XCTAssertEqual(r.action, .calls([ToolCall(name: "f")]))
        XCTAssertEqual(kinds(r), [.missingArguments])
        XCTAssertTrue(r.isValid)

        r = single(#"{"name": "f", "arguments": {}, "id": 1}"#)
        XCTAssertEqual(r.action, .calls([ToolCall(name: "f")]))
        XCTAssertEqual(kinds(r), [.unexpectedKey("id")])
    }

    func testArgumentsGivenAsJSONString() {
        let r = ActionParser.parse(#"<tool_call>{"name": "f", "arguments": "{\"x\": 1, \"y\": [\"a\"]}"}</tool_call>"#)
        XCTAssertEqual(r.action, .calls([ToolCall(name: "f", arguments: ["x": 1, "y": ["a"]])]))
        XCTAssertEqual(kinds(r), [.argumentsAsString])
        XCTAssertEqual(r.diagnostics[0].severity, .warning)
        XCTAssertTrue(r.isValid)
    }

    func testTextOutsideBlocksAndStrayCloseTag() {
        var r = ActionParser.parse(#"Sure! <tool_call>{"name": "f", "arguments": {}}</tool_call> Done."#)
        XCTAssertEqual(r.action, .calls([ToolCall(name: "f")]))
        XCTAssertEqual(kinds(r), [.textOutsideBlocks])
        XCTAssertEqual(r.diagnostics[0].message, #"text outside <tool_call> blocks was ignored: "Sure! … Done.""#)

        r = ActionParser.parse("hello</tool_call>")
        XCTAssertEqual(r.action, .calls([]))
        XCTAssertEqual(kinds(r), [.unexpectedCloseTag, .textOutsideBlocks])
        XCTAssertEqual(r.diagnostics[0].message, "</tool_call> at character 5 closes no block")
    }

    func testUnknownToolWithCatalogue() {
        let catalogue = ToolCatalogue([ToolSpec(name: "spotify.play", description: "Play.")])
        let text = taylor.rendered + #"<tool_call>{"name": "youtube.play", "arguments": {}}</tool_call>"#
        let r = ActionParser.parse(text, catalogue: catalogue)
        XCTAssertEqual(r.action, .calls([taylor, ToolCall(name: "youtube.play")]))
        XCTAssertEqual(kinds(r), [.unknownTool("youtube.play")])
        XCTAssertEqual(r.diagnostics[0].block, 2)
        XCTAssertFalse(r.isValid)
        XCTAssertTrue(ActionParser.parse(text).isValid)
    }

    // MARK: BFCL answers

    private func calls(_ category: String, _ id: String) throws -> [ToolCall] {
        let answer = try BFCLAnswer(line: ToolTestFixtures.line(id: id, in: ToolTestFixtures.answer(category)))
        XCTAssertEqual(answer.id, id)
        return answer.firstAcceptableCall()
    }

    // Expectations written by reading the lines of possible_answer/.
    func testHandCheckedAnswers() throws {
        XCTAssertEqual(try calls("parallel", "parallel_0"), [
            ToolCall(name: "spotify.play", arguments: ["artist": "Taylor Swift", "duration": 20]),
            ToolCall(name: "spotify.play", arguments: ["artist": "Maroon 5", "duration": 15]),
        ])
        XCTAssertEqual(try calls("simple_python", "simple_python_0"), [
            ToolCall(name: "calculate_triangle_area", arguments: ["base": 10, "height": 5, "unit": "units"]),
        ])
        XCTAssertEqual(try calls("multiple", "multiple_0"), [
            ToolCall(name: "triangle_properties.get", arguments: ["side1": 5, "side2": 4, "side3": 3]),
        ])
        XCTAssertEqual(try calls("parallel_multiple", "parallel_multiple_0"), [
            ToolCall(name: "math_toolkit.sum_of_multiples", arguments: ["lower_limit": 1, "upper_limit": 1000, "multiples": [3, 5]]),
            ToolCall(name: "math_toolkit.product_of_primes", arguments: ["count": 5]),
        ])
        XCTAssertEqual(try calls("live_simple", "live_simple_5-3-1"), [
            ToolCall(name: "get_current_weather", arguments: ["location": "Divinópolis, MG", "unit": "fahrenheit"]),
        ])
        XCTAssertEqual(try calls("live_simple", "live_simple_48-21-0"), [
            ToolCall(name: "find_beer", arguments: ["brewery": "Sierra Nevada", "taste": "bitter", "aroma": "hoppy", "color": "pale", "style": "lager"]),
        ])
        XCTAssertEqual(try calls("live_simple", "live_simple_70-34-0"), [
            ToolCall(name: "get_sensor_alerts", arguments: ["perPage": 10, "sensorSerial": "Q3CC-CRT3-SZ2G"]),
        ])
        XCTAssertEqual(try calls("live_simple", "live_simple_112-68-0"), [
            ToolCall(name: "record", arguments: ["outofscope": ["what is the weather like"]]),
        ])
    }

    func testAnswerStructureAndArgumentOrder() throws {
        let answer = try BFCLAnswer(line: ToolTestFixtures.line(id: "simple_python_0", in: ToolTestFixtures.answer("simple_python")))
        XCTAssertEqual(answer.groundTruth, [BFCLAnswer.Call(name: "calculate_triangle_area", parameters: [
            .init(name: "base", acceptable: [10]), .init(name: "height", acceptable: [5]), .init(name: "unit", acceptable: ["units", ""]),
        ])])
        XCTAssertEqual(answer.firstAcceptableCall()[0].rendered,
                       #"<tool_call>{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5, "unit": "units"}}</tool_call>"#)
    }

    func testEveryAnswerFileLoadsAndMatchesQuestions() throws {
        for category in ToolTestFixtures.categories {
            let answers = try BFCLAnswer.load(file: ToolTestFixtures.require(ToolTestFixtures.answer(category)))
            let questions = try BFCLQuestion.load(file: ToolTestFixtures.require(ToolTestFixtures.question(category)))
            XCTAssertEqual(answers.map(\.id), questions.map(\.id), category)
            for (answer, question) in zip(answers, questions) {
                let catalogue = ToolCatalogue(question.functions)
                for call in answer.firstAcceptableCall() {
                    XCTAssertTrue(catalogue.contains(call.name), "\(answer.id): \(call.name)")
                    // The gold calls, rendered, parse back to themselves against the question's tools.
                    XCTAssertEqual(ActionParser.parse(call.rendered, catalogue: catalogue),
                                   ActionParseResult(action: .calls([call]), diagnostics: []), answer.id)
                }
            }
        }
    }

    func testMalformedAnswerLines() {
        XCTAssertThrowsError(try BFCLAnswer(line: #"{"id": "x", "ground_truth": [{"f": {"a": 1}}]}"#)) {
            XCTAssertEqual("\($0)", "BFCL answer x: f.a must be a list of acceptable values, found an integer")
        }
        XCTAssertThrowsError(try BFCLAnswer(line: #"{"id": "x", "ground_truth": [{"f": {}, "g": {}}]}"#)) {
            XCTAssertEqual("\($0)", "BFCL answer x: call 0 must be an object with exactly one function name")
        }
    }
}
