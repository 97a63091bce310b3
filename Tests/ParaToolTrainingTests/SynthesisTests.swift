// Example synthesis: SHA-1 against the FIPS 180 test vectors, determinism under a seed, every
// synthesized call checked by a schema validator written here (BFCL and demo schemas), every
// argument value readable in its query, deduplication, the Jaccard distractor choice against a
// hand-computed example, and the held-out guard against BFCL's evaluation questions.
import FixtureSupport
import Foundation
import XCTest
@testable import ParaTool
@testable import ParaToolTraining

final class SynthesisTests: XCTestCase {
    var bfcl: URL { RepositoryFixtures.bfcl }
    var demoTools: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Deploy/demo/tools.json")
    }

    /// The tools of BFCL `multiple` and `parallel_multiple` (schemas only; the questions are not used).
    func bfclTools() throws -> [ToolSpec] {
        try ["BFCL_v4_multiple.json", "BFCL_v4_parallel_multiple.json"].flatMap {
            try BFCLQuestion.load(file: bfcl.appendingPathComponent($0)).flatMap(\.functions)
        }
    }

    func config(perTool: Int, seed: UInt64 = 3) -> SynthesisConfig {
        var c = SynthesisConfig()
        c.examplesPerTool = perTool
        c.seed = seed
        return c
    }

    func testSHA1MatchesTheFIPSVectors() {
        XCTAssertEqual(SHA1.hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        XCTAssertEqual(SHA1.hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(SHA1.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        XCTAssertEqual(SHA1.hex(String(repeating: "a", count: 1_000_000)), "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    func testDeterministicUnderASeed() throws {
        let tools = try ToolCatalogue.load(file: demoTools).tools
        let a = ExampleSynthesizer(tools: tools, config: config(perTool: 8)).synthesize()
        let b = ExampleSynthesizer(tools: tools, config: config(perTool: 8)).synthesize()
        XCTAssertEqual(a.trajectories, b.trajectories)
        XCTAssertEqual(a.report, b.report)
        let c = ExampleSynthesizer(tools: tools, config: config(perTool: 8, seed: 4)).synthesize()
        XCTAssertNotEqual(a.trajectories.map(\.query), c.trajectories.map(\.query))
        // A tool's examples do not depend on the other tools.
        let alone = ExampleSynthesizer(tools: [tools[3]], config: config(perTool: 8)).synthesize()
        XCTAssertEqual(alone.trajectories.filter { $0.source == "synth:atomic" }.map(\.steps),
                       a.trajectories.filter { $0.source == "synth:atomic" && $0.steps[0].calls[0].name == tools[3].name }.map(\.steps))
        XCTAssertEqual(a.report.atomicPerTool.map(\.count), [8, 8, 8, 8])
        XCTAssertEqual(a.report.episodes, 8 * 4 / 2)
        XCTAssertEqual(Set(a.trajectories.map(\.source)), ["synth:atomic", "synth:parallel", "synth:sequential"])
        for t in a.trajectories where t.source != "synth:atomic" {
            XCTAssertTrue((2...4).contains(t.steps.flatMap(\.calls).count), t.query)
        }
    }

    /// A validator for the JSON-schema subset BFCL uses (independent of the synthesizer).
    func violations(_ v: JSONValue, _ schema: JSONValue, _ path: String) -> [String] {
        if let options = schema["enum"]?.arrayValue, !options.contains(v) { return ["\(path): \(v.serialized()) not in enum"] }
        func bound(_ key: String) -> Double? {
            switch schema[key] { case .int(let i)?: return Double(i); case .double(let d)?: return d; default: return nil }
        }
        switch (schema["type"]?.stringValue ?? "any", v) {
        case ("string", .string), ("boolean", .bool), ("any", _):
            return []
        case ("integer", .int(let i)):
            return (bound("minimum").map { Double(i) < $0 } ?? false) || (bound("maximum").map { Double(i) > $0 } ?? false)
                ? ["\(path): \(i) out of range"] : []
        case ("number", .double), ("float", .double), ("number", .int), ("float", .int):
            return []
        case ("array", .array(let items)), ("tuple", .array(let items)):
            let itemSchema = schema["items"] ?? ["type": "any"]
            return items.isEmpty ? ["\(path): empty array"]
                : items.enumerated().flatMap { violations($1, itemSchema, "\(path)[\($0)]") }
        case ("dict", .object(let o)), ("object", .object(let o)):
            let props = schema["properties"]?.objectValue ?? JSONObject()
            var out = (schema["required"]?.arrayValue ?? []).compactMap(\.stringValue).filter { o[$0] == nil }.map { "\(path).\($0) missing" }
            if !props.isEmpty { out += o.keys.filter { props[$0] == nil }.map { "\(path).\($0) unknown" } }
            for (k, value) in o { if let p = props[k] { out += violations(value, p, "\(path).\(k)") } }
            return out
        default:
            return ["\(path): \(v.kindName) is not a \(schema["type"]?.stringValue ?? "?")"]
        }
    }

    func testEveryCallValidatesAgainstItsSchema() throws {
        let tools = try bfclTools() + ToolCatalogue.load(file: demoTools).tools
        let synth = ExampleSynthesizer(tools: tools, config: config(perTool: 4))
        XCTAssertGreaterThan(synth.tools.count, 300, "BFCL's tools, each schema once")
        let catalogue = ToolCatalogue(synth.tools)
        let (trajectories, _) = synth.synthesize()
        var calls = 0
        for t in trajectories {
            for call in t.steps.flatMap(\.calls) {
                let spec = try XCTUnwrap(catalogue[call.name])
                XCTAssertEqual(violations(call.arguments, spec.parameters, call.name), [], t.query)
                XCTAssertTrue(t.candidateTools.contains(call.name))
                calls += 1
            }
        }
        XCTAssertGreaterThan(calls, 1500)
    }

    /// Leaf values of arguments as they must read in the query.
    func leaves(_ v: JSONValue) -> [String] {
        switch v {
        case .string(let s): return [s]
        case .array(let a): return a.flatMap(leaves)
        case .object(let o): return o.members.flatMap { leaves($0.value) }
        case .bool(let b): return [b ? "true" : "false"]
        case .int(let i): return [String(i)]
        case .double(let d): return [v.serialized(), String(d)]
        case .null: return ["null"]
        }
    }

    func testArgumentValuesAppearInTheQuery() throws {
        let tools = try Array(bfclTools().prefix(120)) + ToolCatalogue.load(file: demoTools).tools
        let (trajectories, _) = ExampleSynthesizer(tools: tools, config: config(perTool: 5)).synthesize()
        var checked = 0, spelledOut = 0
        for t in trajectories {
            for call in t.steps.flatMap(\.calls) {
                guard case .object(let args) = call.arguments else { return XCTFail("arguments are not an object") }
                for (name, value) in args {
                    let forms = leaves(value)
                    if case .double = value {
                        XCTAssertTrue(forms.contains { t.query.contains($0) }, "\(call.name).\(name) = \(forms) not in: \(t.query)")
                    } else {
                        for f in forms {
                            // A currency code may be written in words (the currency's name, here by hand).
                            let words = Self.currencyWords[f] ?? []
                            XCTAssertTrue(t.query.contains(f) || words.contains { t.query.contains($0) },
                                          "\(call.name).\(name) = \(f) not in: \(t.query)")
                            if !t.query.contains(f) { spelledOut += 1 }
                        }
                    }
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 1000)
        XCTAssertGreaterThan(spelledOut, 0, "some currency codes are written in words")
    }

    /// Currencies in words, independent of the synthesizer's own table.
    static let currencyWords = ["USD": ["dollar"], "EUR": ["euro"], "GBP": ["pound"], "JPY": ["yen"], "CHF": ["franc"],
                                "CAD": ["dollar"], "AUD": ["dollar"], "INR": ["rupee"], "CNY": ["yuan"], "SEK": ["kronor"],
                                "NOK": ["kroner"], "MXN": ["peso"], "BRL": ["rea"], "KRW": ["won"]]

    func testDeduplication() throws {
        // A schema with two possible calls yields two examples however many are asked for.
        let flag = ToolSpec(name: "toggle", description: "Turn the light on or off.",
                            parameters: ["type": "object", "properties": ["on": ["type": "boolean", "description": "Light state"]],
                                         "required": ["on"]])
        let demo = try ToolCatalogue.load(file: demoTools).tools
        let synth = ExampleSynthesizer(tools: [flag] + demo + [demo[0], flag], config: config(perTool: 10))
        XCTAssertEqual(synth.tools.map(\.name), ["toggle"] + demo.map(\.name), "repeated definitions are skipped")
        let (trajectories, report) = synth.synthesize()
        XCTAssertEqual(report.duplicateSchemas.map(\.tool), [demo[0].name, "toggle"])
        XCTAssertEqual(report.atomicPerTool.first?.count, 2)
        XCTAssertGreaterThan(report.duplicatesDropped, 0)
        let atomic = trajectories.filter { $0.source == "synth:atomic" }
        let toggles = atomic.filter { $0.steps[0].calls[0].name == "toggle" }.map { $0.steps[0].calls[0].arguments }
        XCTAssertEqual(Set(toggles.map { $0.serialized() }), ["{\"on\": true}", "{\"on\": false}"])
        // No two atomic examples make the same call; no two episodes the same call sequence
        // (keys computed here with Foundation's sorted-key JSON, not the synthesizer's hash).
        func key(_ c: ToolCall) throws -> String {
            let data = try JSONSerialization.data(withJSONObject: ["n": c.name, "a": JSONSerialization.jsonObject(with: Data(c.arguments.serialized().utf8))],
                                                  options: .sortedKeys)
            return String(decoding: data, as: UTF8.self)
        }
        XCTAssertEqual(Set(try atomic.map { try key($0.steps[0].calls[0]) }).count, atomic.count)
        let episodes = trajectories.filter { $0.source != "synth:atomic" }
        XCTAssertEqual(Set(try episodes.map { try $0.steps.flatMap(\.calls).map(key).joined(separator: "|") }).count, episodes.count)
        XCTAssertEqual(Set(trajectories.map { HeldOut.normalise($0.query) }).count, trajectories.count, "queries are unique")
        XCTAssertEqual(Set(trajectories.map(\.id)).count, trajectories.count)
    }

    func testJaccardDistractorsMatchAHandComputedExample() {
        func tool(_ name: String, _ description: String, _ params: [(String, String)]) -> ToolSpec {
            ToolSpec(name: name, description: description,
                     parameters: .object(JSONObject([("type", "object"),
                                                     ("properties", .object(JSONObject(params.map { ($0.0, ["type": "string", "description": .string($0.1)]) }))),
                                                     ("required", .array(params.map { .string($0.0) }))])))
        }
        let a = tool("get_weather", "Get weather for a city", [("city", "city name")])
        let b = tool("get_forecast", "Get forecast for a city", [("city", "city name"), ("days", "number of days")])
        let c = tool("set_timer", "Set a timer", [("minutes", "timer length")])
        let d = tool("convert_currency", "Convert money", [("amount", "money amount")])
        XCTAssertEqual(ExampleSynthesizer.schemaTokens(a), ["get", "weather", "for", "a", "city", "name"])
        XCTAssertEqual(ExampleSynthesizer.schemaTokens(c), ["set", "timer", "a", "minutes", "length"])
        // A∩B = {get, for, a, city, name}: 5 of 6 + 9 − 5 = 10 → 0.5; A∩C = {a}: 1 of 10; A∩D = ∅.
        let ta = ExampleSynthesizer.schemaTokens(a)
        XCTAssertEqual(ExampleSynthesizer.jaccard(ta, ExampleSynthesizer.schemaTokens(b)), 0.5)
        XCTAssertEqual(ExampleSynthesizer.jaccard(ta, ExampleSynthesizer.schemaTokens(c)), 0.1)
        XCTAssertEqual(ExampleSynthesizer.jaccard(ta, ExampleSynthesizer.schemaTokens(d)), 0)
        let synth = ExampleSynthesizer(tools: [d, c, a, b], config: config(perTool: 6))
        XCTAssertEqual(synth.mostSimilar(to: "get_weather", count: 3), ["get_forecast", "set_timer", "convert_currency"])
        XCTAssertEqual(synth.mostSimilar(to: "get_weather", count: 1), ["get_forecast"])
        // Every atomic get_weather example's distractors are a prefix of that ranking.
        let ranking = ["get_forecast", "set_timer", "convert_currency"]
        for t in synth.synthesize().trajectories where t.source == "synth:atomic" && t.steps[0].calls[0].name == "get_weather" {
            let distractors = Set(t.candidateTools).subtracting(["get_weather"])
            XCTAssertFalse(distractors.isEmpty)
            XCTAssertEqual(distractors, Set(ranking.prefix(distractors.count)), "\(t.candidateTools)")
        }
    }

    func testNoEvaluationQueryInTrainingData() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: bfcl.path).filter { $0.hasPrefix("BFCL_v4_") }
        let evaluation = try files.flatMap { try HeldOut.queries(file: bfcl.appendingPathComponent($0)) }
        XCTAssertGreaterThan(evaluation.count, 1000)
        let tools = try bfclTools()
        let (trajectories, _) = ExampleSynthesizer(tools: tools, config: config(perTool: 3), evaluationQueries: evaluation).synthesize()
        XCTAssertNoThrow(try HeldOut.check(training: trajectories, evaluationQueries: evaluation))
        let normalised = Set(evaluation.map(HeldOut.normalise))
        XCTAssertFalse(trajectories.contains { normalised.contains(HeldOut.normalise($0.query)) })

        // The guard is not vacuous: declare some queries the synthesizer produces as evaluation
        // queries (in another spelling); the same run then leaves them out, and the unguarded
        // data fails the check.
        let demo = try ToolCatalogue.load(file: demoTools).tools
        let plain = ExampleSynthesizer(tools: demo, config: config(perTool: 6)).synthesize().trajectories
        let held = [plain[0].query.uppercased(), plain[7].query, "  " + plain[13].query + " "]
        XCTAssertThrowsError(try HeldOut.check(training: plain, evaluationQueries: held))
        let (guarded, report) = ExampleSynthesizer(tools: demo, config: config(perTool: 6), evaluationQueries: held).synthesize()
        XCTAssertEqual(report.heldOutDropped, 3)
        XCTAssertNoThrow(try HeldOut.check(training: guarded, evaluationQueries: held))
        XCTAssertFalse(guarded.map(\.query).contains(plain[7].query))
    }
}
