// Example synthesis: SHA-1 against the FIPS 180 test vectors, determinism under a seed, every
// synthesized call checked by a schema validator written here and by Python's `jsonschema` (all
// BFCL schemas, the demo catalogue and a tool made up here), every argument value readable in
// its query (allowing only the documented rewritings, recomputed here: currency names and
// symbols, number words, dates in words, 12-hour times, enum words, whole amounts), several
// phrasings and word orders per argument, parallel requests of one tool and of several,
// deduplication, the Jaccard distractor choice against a hand-computed example, and the
// held-out guard against BFCL's evaluation questions.
import FixtureSupport
import Foundation
import XCTest
@testable import ParaTool
@testable import ParaToolTraining
import Tensor

final class SynthesisTests: XCTestCase {
    var bfcl: URL { RepositoryFixtures.bfcl }
    var demoTools: URL { Self.demoCatalogue }
    static let demoCatalogue = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Deploy/demo/tools.json")

    /// The tools of every BFCL file here (schemas only; the questions are not used).
    static func allBFCLTools() throws -> [ToolSpec] {
        let bfcl = RepositoryFixtures.bfcl
        let files = try FileManager.default.contentsOfDirectory(atPath: bfcl.path).filter { $0.hasPrefix("BFCL_v4_") }.sorted()
        return try files.flatMap { try BFCLQuestion.load(file: bfcl.appendingPathComponent($0)).flatMap(\.functions) }
    }

    /// A synthesis run over every BFCL schema, the demo catalogue and the made-up tool (5 per
    /// tool, seed 3), made once for the tests that check every call.
    struct WideRun: Sendable {
        let catalogue: ToolCatalogue
        let trajectories: [Trajectory]
    }

    static let wideRun = Result<WideRun, any Error> {
        var config = SynthesisConfig()
        config.examplesPerTool = 5
        config.seed = 3
        let tools = try allBFCLTools() + ToolCatalogue.load(file: demoCatalogue).tools + [unseenTool]
        let synth = ExampleSynthesizer(tools: tools, config: config)
        return WideRun(catalogue: ToolCatalogue(synth.tools), trajectories: synth.synthesize().trajectories)
    }

    /// A tool no catalogue here has: a nested object, a date in US order, a clock time, an enum
    /// with underscores, a list of enums, a flag and a min/max pair.
    static let unseenTool = ToolSpec(
        name: "reserve_table", description: "Reserves a table at a restaurant for a party.",
        parameters: ["type": "object",
                     "properties": ["restaurant": ["type": "string", "description": "Restaurant name, e.g. Chez Panisse"],
                                    "day": ["type": "string", "description": "Day of the booking, MM/DD/YYYY"],
                                    "arrival_time": ["type": "string", "description": "Arrival time, HH:MM"],
                                    "party": ["type": "object", "description": "Who comes",
                                              "properties": ["adults": ["type": "integer", "minimum": 1, "maximum": 12],
                                                             "children": ["type": "integer", "minimum": 0, "maximum": 6]],
                                              "required": ["adults"]],
                                    "seating": ["type": "string", "enum": ["indoor", "outdoor", "bar_counter"]],
                                    "dietary_needs": ["type": "array", "items": ["type": "string", "enum": ["vegan", "gluten_free", "nut_free"]]],
                                    "include_parking": ["type": "boolean", "description": "Whether to include a parking spot"],
                                    "min_budget": ["type": "number", "description": "Lowest price per person in dollars"],
                                    "max_budget": ["type": "number", "description": "Highest price per person in dollars"]],
                     "required": ["restaurant", "day", "party"]])

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
        XCTAssertEqual(Self.parallelOfOneTool(alone.trajectories, alone.report).map(\.steps),
                       Self.parallelOfOneTool(a.trajectories, a.report).filter { $0.steps[0].calls[0].name == tools[3].name }.map(\.steps),
                       "a tool's parallel requests do not depend on the other tools either")
        XCTAssertEqual(a.report.atomicPerTool.map(\.count), [8, 8, 8, 8])
        XCTAssertEqual(a.report.parallelPerTool.map(\.count), [2, 2, 2, 2], "examplesPerTool / 4, rounded up")
        XCTAssertEqual(a.report.episodes, 8 * 4 / 2)
        XCTAssertEqual(Set(a.trajectories.map(\.source)), ["synth:atomic", "synth:parallel", "synth:sequential",
                                                           "synth:irrelevant", "synth:no-tool", "synth:final"])
        for t in a.trajectories where t.source == "synth:parallel" || t.source == "synth:sequential" {
            XCTAssertTrue((2...4).contains(t.steps.flatMap(\.calls).count), t.query)
        }
    }

    /// A validator for the JSON-schema subset BFCL uses (independent of the synthesizer).
    func violations(_ v: JSONValue, _ schema: JSONValue, _ path: String) -> [String] {
        // An enum on an array constrains its items (BFCL's schemas put it there).
        if let options = schema["enum"]?.arrayValue, case .array(let items) = v {
            return items.filter { !options.contains($0) }.map { "\(path): \($0.serialized()) not in enum" }
        }
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
        let run = try Self.wideRun.get()
        let (catalogue, trajectories) = (run.catalogue, run.trajectories)
        XCTAssertGreaterThan(catalogue.tools.count, 800, "BFCL's tools, each schema once")
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

    /// Python's `jsonschema` on every call, the BFCL type names mapped to JSON Schema's (dict →
    /// object, float → number, tuple → array, any → no constraint) and unknown properties
    /// refused, as BFCL's checker refuses them.
    func testEveryCallValidatesWithPythonJSONSchema() throws {
        let run = try Self.wideRun.get()
        var items = [SchemaWitness.Item]()
        for t in run.trajectories {
            for (k, call) in t.steps.flatMap(\.calls).enumerated() {
                let spec = try XCTUnwrap(run.catalogue[call.name])
                items.append(SchemaWitness.Item(id: "\(t.id)#\(k) \(call.name)", parametersJSON: spec.parameters.serialized(),
                                                argumentsJSON: call.arguments.serialized()))
            }
        }
        let verdicts = try SchemaWitness.verdicts(items)
        let bad = verdicts.values.filter { !$0.valid }
        XCTAssertTrue(bad.isEmpty, bad.prefix(30).map { "\($0.id): \($0.error)" }.joined(separator: "\n"))
        XCTAssertGreaterThan(items.count, 5000)
    }

    // MARK: Values read back from the query

    /// The ways a value may be written in a query, computed here and not by the synthesizer:
    /// as it is; a currency code by name or symbol; an enum value with spaces for underscores;
    /// an integer in words ("twenty-five", 12 as "a dozen"); a whole double without ".0"; a
    /// date in words ("December 18, 2026", "Dec 18, 2026", "18 December 2026", "the 18th of
    /// December 2026", "December 2026" for a month) with its time as "HH:MM" or in 12-hour form.
    /// Returns how the value was found, or nil.
    func reading(_ value: JSONValue, _ schema: JSONValue, in query: String) -> String? {
        let lower = query.lowercased()
        switch value {
        case .string(let s):
            if query.contains(s) { return "as is" }
            if schema["enum"] != nil && s.contains("_") && lower.contains(s.replacingOccurrences(of: "_", with: " ").lowercased()) { return "enum words" }
            if let words = Self.currencyWords[s], words.contains(where: { lower.contains($0) }) { return "currency name" }
            if let symbol = Self.currencySymbols[s], query.contains(symbol) { return "currency symbol" }
            if let (dates, times) = Self.dateReadings(s), dates.contains(where: { query.contains($0) }),
               times.isEmpty || times.contains(where: { query.contains($0) }) {
                return "date in words"
            }
            if let times = Self.twelveHour(s), times.contains(where: { query.contains($0) }) { return "12-hour time" }
            return nil
        case .int(let i):
            if Self.containsNumber(query, String(i)) { return "digits" }
            if i == 12 && lower.contains("a dozen") { return "a dozen" }
            if let words = Self.numberWords(i), Self.containsNumber(lower, words) { return "number words" }
            if Self.inLargerUnit(i).contains(where: { Self.containsNumber(lower, $0) }) { return "larger unit" }
            return nil
        case .double(let d):
            if Self.containsNumber(query, value.serialized()) || Self.containsNumber(query, String(d)) { return "digits" }
            if d == d.rounded(), Self.containsNumber(query, String(Int64(d))) { return "whole amount" }
            return nil
        default:
            return nil
        }
    }

    /// Whether `text` holds `number` not as part of a longer number or word ("5" is not in "15"
    /// or "5.5").
    static func containsNumber(_ text: String, _ number: String) -> Bool {
        let chars = Array(text), target = Array(number)
        guard !target.isEmpty, chars.count >= target.count else { return false }
        for start in 0...(chars.count - target.count) where Array(chars[start..<(start + target.count)]) == target {
            let before = start > 0 ? chars[start - 1] : " "
            let end = start + target.count
            let after = end < chars.count ? chars[end] : " "
            let afterAfter = end + 1 < chars.count ? chars[end + 1] : " "
            let continues = after.isLetter || after.isNumber || (after == "." && afterAfter.isNumber)
            if !(before.isLetter || before.isNumber || before == ".") && !continues { return true }
        }
        return false
    }

    static func numberWords(_ n: Int64) -> String? {
        let ones = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen",
                    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
        let tens = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
        guard (0..<100).contains(n) else { return nil }
        if n < 20 { return ones[Int(n)] }
        return tens[Int(n / 10) - 2] + (n % 10 == 0 ? "" : "-" + ones[Int(n % 10)])
    }

    /// A whole or half number of minutes, hours or days read as `n` of the next smaller unit
    /// (seconds, minutes, hours): 90 → "an hour and a half", "1.5 hours", "a minute and a half",
    /// "one and a half minutes"; 48 → "2 days"; before a noun "2-day", "two day", "1-hour".
    static func inLargerUnit(_ n: Int64) -> [String] {
        var out = [String]()
        for (unit, size) in [("minute", Int64(60)), ("hour", 60), ("day", 24)] where n > 0 && (2 * n) % size == 0 {
            let a = unit == "hour" ? "an" : "a", halves = 2 * n / size, whole = halves / 2
            if halves == 1 { out.append("half \(a) \(unit)"); continue }
            if halves == 2 { out += ["\(a) \(unit)", "one \(unit)", "1 \(unit)", "one-\(unit)", "1-\(unit)"]; continue }
            if halves % 2 == 1 {
                out += ["\(whole).5 \(unit)s", "\(whole).5 \(unit)", "\(whole).5-\(unit)", "\(whole == 1 ? "one" : numberWords(whole) ?? "?") and a half \(unit)s"]
                if whole == 1 { out.append("\(a) \(unit) and a half") }
            } else {
                for number in ["\(whole)"] + (numberWords(whole).map { [$0] } ?? []) {
                    out += ["\(number) \(unit)s", "\(number) \(unit)", "\(number)-\(unit)"]
                }
            }
        }
        return out
    }

    static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                         "November", "December"]

    /// A date value's readings in words and its time's readings, for the layouts BFCL uses
    /// (year-month-day, month-day-year or day-month-year with "-" or "/", "DD Mon, YYYY",
    /// month-year, year-month), each reading of an ambiguous order included; nil when it is not a date.
    static func dateReadings(_ s: String) -> (dates: [String], times: [String])? {
        func match(_ pattern: String) -> [String]? {
            guard let re = try? NSRegularExpression(pattern: pattern),
                  let m = re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) else { return nil }
            return (1..<m.numberOfRanges).map { Range(m.range(at: $0), in: s).map { String(s[$0]) } ?? "" }
        }
        var ymd = [(Int, Int, Int)]()
        var monthOnly: (Int, Int)?
        if let g = match(#"^(\d{4})-(\d{2})-(\d{2})"#) { ymd.append((Int(g[0])!, Int(g[1])!, Int(g[2])!)) }
        if let g = match(#"^(\d{2})[-/](\d{2})[-/](\d{4})"#) {
            ymd.append((Int(g[2])!, Int(g[0])!, Int(g[1])!))
            ymd.append((Int(g[2])!, Int(g[1])!, Int(g[0])!))
        }
        if let g = match(#"^(\d{2}) ([A-Z][a-z]{2}), (\d{4})"#), let m = months.firstIndex(where: { $0.hasPrefix(g[1]) }) {
            ymd.append((Int(g[2])!, m + 1, Int(g[0])!))
        }
        if let g = match(#"^(\d{2})-(\d{4})$"#) { monthOnly = (Int(g[1])!, Int(g[0])!) }
        if let g = match(#"^(\d{4})-(\d{2})$"#) { monthOnly = (Int(g[0])!, Int(g[1])!) }
        var dates = [String]()
        for (y, m, d) in ymd where (1...12).contains(m) {
            let month = months[m - 1], short = String(month.prefix(3))
            let suffix = (11...13).contains(d) ? "th" : [1: "st", 2: "nd", 3: "rd"][d % 10] ?? "th"
            dates += ["\(month) \(d), \(y)", "\(short) \(d), \(y)", "\(d) \(month) \(y)", "the \(d)\(suffix) of \(month) \(y)"]
        }
        if let (y, m) = monthOnly, (1...12).contains(m) { dates.append("\(months[m - 1]) \(y)") }
        guard !dates.isEmpty else { return nil }
        var times = [String]()
        if let g = match(#"[T ](\d{2}):(\d{2})"#) { times = [g[0] + ":" + g[1]] + (twelveHour(g[0] + ":" + g[1]) ?? []) }
        return (dates, times)
    }

    /// "14:30" → "2:30 PM", "2:30 pm".
    static func twelveHour(_ s: String) -> [String]? {
        let parts = s.split(separator: ":")
        guard parts.count == 2, let h = Int(parts[0]), parts[1].count == 2, (0..<24).contains(h) else { return nil }
        let hour = h % 12 == 0 ? 12 : h % 12
        return h < 12 ? ["\(hour):\(parts[1]) AM", "\(hour):\(parts[1]) am"] : ["\(hour):\(parts[1]) PM", "\(hour):\(parts[1]) pm"]
    }

    /// The name's words, lower-cased: "include_reviews", "excludeInactive" → include, reviews; exclude, inactive.
    static func nameWords(_ name: String) -> [String] {
        var out = [String](), current = ""
        for ch in name {
            if ch.isUppercase && !current.isEmpty && current.last!.isLowercase { out.append(current); current = "" }
            if ch.isLetter || ch.isNumber { current.append(Character(ch.lowercased())) } else if !current.isEmpty { out.append(current); current = "" }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// Every leaf value of `value` that cannot be read from `query`, with its path.
    func unreadable(_ value: JSONValue, _ schema: JSONValue, name: String, path: String, query: String,
                    found: inout [String: Int]) -> [String] {
        switch value {
        case .array(let items):
            return items.enumerated().flatMap {
                unreadable($1, schema["items"] ?? [:], name: name, path: "\(path)[\($0)]", query: query, found: &found)
            }
        case .object(let o):
            return o.members.flatMap { m in
                unreadable(m.value, schema["properties"]?[m.key] ?? [:], name: m.key, path: "\(path).\(m.key)", query: query, found: &found)
            }
        case .bool:
            // A flag is said as an intent ("include reviews", "without tax"): a word of its name is there.
            let lower = query.lowercased()
            return Self.nameWords(name).contains { $0.count >= 2 && lower.contains($0) } ? [] : ["\(path) (flag)"]
        default:
            guard let how = reading(value, schema, in: query) else { return ["\(path) = \(value.serialized())"] }
            found[how, default: 0] += 1
            return []
        }
    }

    func testArgumentValuesAppearInTheQuery() throws {
        let run = try Self.wideRun.get()
        var failures = [String](), found = [String: Int](), checked = 0
        for t in run.trajectories {
            for call in t.steps.flatMap(\.calls) {
                guard case .object(let args) = call.arguments else { return XCTFail("arguments are not an object") }
                let spec = try XCTUnwrap(run.catalogue[call.name])
                for (name, value) in args {
                    let schema = spec.parameters["properties"]?[name] ?? [:]
                    failures += unreadable(value, schema, name: name, path: "\(call.name).\(name)", query: t.query, found: &found)
                        .map { "\($0) not in: \(t.query)" }
                    checked += 1
                }
            }
        }
        XCTAssertEqual(Array(failures.prefix(20)), [], "\(failures.count) of \(checked) arguments unreadable")
        XCTAssertGreaterThan(checked, 20000)
        for how in ["as is", "digits", "currency name", "currency symbol", "number words", "date in words", "12-hour time",
                    "enum words", "whole amount", "larger unit"] {
            XCTAssertGreaterThan(found[how] ?? 0, 0, "some values are read \(how): \(found)")
        }
    }

    /// Currencies in words, independent of the synthesizer's own table.
    static let currencyWords = ["USD": ["dollar"], "EUR": ["euro"], "GBP": ["pound"], "JPY": ["yen"], "CHF": ["franc"],
                                "CAD": ["dollar"], "AUD": ["dollar"], "INR": ["rupee"], "CNY": ["yuan"], "SEK": ["kronor"],
                                "NOK": ["kroner"], "MXN": ["peso"], "BRL": ["rea"], "KRW": ["won"]]
    static let currencySymbols = ["USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩"]

    // MARK: Phrasings

    func testSeveralPhrasingsPerArgument() throws {
        let synth = ExampleSynthesizer(tools: try ToolCatalogue.load(file: demoTools).tools, config: config(perTool: 60))
        let atomic = synth.synthesize().trajectories.filter { $0.source == "synth:atomic" }.map { ($0.query, $0.steps[0].calls[0]) }
        func count(_ tool: String, _ test: (String, JSONValue) -> Bool) -> Int {
            atomic.filter { $0.1.name == tool && test($0.0, $0.1.arguments) }.count
        }
        func position(_ q: String, _ v: JSONValue?) -> String.Index? { v?.stringValue.flatMap { q.range(of: $0)?.lowerBound } }
        // Origin and destination in both orders, with and without "from".
        XCTAssertGreaterThan(count("search_flights") { q, a in position(q, a["origin"])! < position(q, a["destination"])! }, 5)
        XCTAssertGreaterThan(count("search_flights") { q, a in position(q, a["destination"])! < position(q, a["origin"])! }, 2)
        XCTAssertGreaterThan(count("search_flights") { q, a in !q.contains("from \(a["origin"]!.stringValue!)") }, 2)
        // The date as in the call and in words.
        XCTAssertGreaterThan(count("search_flights") { q, a in q.contains(a["date"]!.stringValue!) }, 2)
        XCTAssertGreaterThan(count("search_flights") { q, a in Self.months.contains { q.contains($0) } && !q.contains(a["date"]!.stringValue!) }, 5)
        // An amount with a symbol, a code and a name; the target currency before the source.
        let symbols = Set(Self.currencySymbols.values)
        XCTAssertGreaterThan(count("convert_currency") { q, _ in symbols.contains { q.contains($0) } }, 2)
        XCTAssertGreaterThan(count("convert_currency") { q, a in q.contains(a["from"]!.stringValue!) }, 5)
        XCTAssertGreaterThan(count("convert_currency") { q, a in !q.contains(a["from"]!.stringValue!) }, 5)
        XCTAssertGreaterThan(count("convert_currency") { q, _ in q.contains(" in ") }, 2, "\"250 euros in yen\"")
        XCTAssertGreaterThan(count("convert_currency") { q, a in
            let to = a["to"]!.stringValue!, from = a["from"]!.stringValue!
            let words = [to] + (Self.currencyWords[to] ?? []), fromWords = [from] + (Self.currencyWords[from] ?? [])
            let t = words.compactMap { q.range(of: $0)?.lowerBound }.min(), f = fromWords.compactMap { q.range(of: $0)?.lowerBound }.min()
            return t != nil && f != nil && t! < f! && to != from
        }, 2, "\"How many yen do I get for 250 euros?\"")
        // Minutes in digits and in words.
        XCTAssertGreaterThan(count("set_timer") { q, a in q.contains(String(a["minutes"]!.serialized())) }, 20)
        XCTAssertGreaterThan(count("set_timer") { q, a in Self.numberWords(Int64(a["minutes"]!.serialized())!).map { q.lowercased().contains($0) } ?? false }, 2)
        // Round durations in hours ("an hour and a half"; rare by design, about one timer in thirteen), a delay ("in 25
        // minutes") and a modifier ("a 25-minute … timer").
        XCTAssertGreaterThan(count("set_timer") { q, a in Self.inLargerUnit(Int64(a["minutes"]!.serialized())!).contains { q.lowercased().contains($0) } }, 0)
        XCTAssertGreaterThan(count("set_timer") { q, a in q.contains("in \(a["minutes"]!.serialized()) minutes") }, 2)
        XCTAssertGreaterThan(count("set_timer") { q, a in q.contains("\(a["minutes"]!.serialized())-minute ") }, 0)
        // The word before the city varies ("in Paris", "for Paris", "city Paris", …).
        let before = Set(atomic.filter { $0.1.name == "get_weather" }.compactMap { q, call -> String? in
            guard let r = q.range(of: call.arguments["city"]!.stringValue!) else { return nil }
            return q[..<r.lowerBound].split(separator: " ").last.map(String.init)
        })
        XCTAssertGreaterThanOrEqual(before.count, 4, "\(before)")
        // Requests as questions, in the first person and as commands; the old clause forms a minority.
        let queries = atomic.map(\.0)
        let questions = queries.filter { $0.hasSuffix("?") }.count
        XCTAssertTrue((queries.count / 5...queries.count * 4 / 5).contains(questions), "\(questions) questions of \(queries.count)")
        XCTAssertGreaterThan(queries.filter { $0.hasPrefix("I ") || $0.hasPrefix("I'") || $0.hasPrefix("Help me") }.count, queries.count / 10)
        XCTAssertGreaterThan(queries.filter { ["Get", "Convert", "Search", "Set", "Please"].contains(String($0.prefix { $0.isLetter })) }.count,
                             queries.count / 10)
        let legacy = queries.filter { $0.contains(" = ") || $0.contains(" set to ") || $0.contains(" — ") }.count
        XCTAssertLessThan(legacy, queries.count / 5, "the old clause forms are a minority")
    }

    // MARK: Parallel requests

    /// The parallel requests of one tool: after the atomic examples and before the episodes,
    /// as many as the report counts.
    static func parallelOfOneTool(_ trajectories: [Trajectory], _ report: SynthesisReport) -> [Trajectory] {
        let atomic = report.atomicPerTool.reduce(0) { $0 + $1.count }, parallel = report.parallelPerTool.reduce(0) { $0 + $1.count }
        return Array(trajectories[atomic..<(atomic + parallel)])
    }

    func testParallelRequestsOfOneToolAndOfSeveral() throws {
        let demo = try ToolCatalogue.load(file: demoTools).tools
        let parallel = try BFCLQuestion.load(file: bfcl.appendingPathComponent("BFCL_v4_parallel.json")).flatMap(\.functions)
        let synth = ExampleSynthesizer(tools: demo + parallel, config: config(perTool: 8))
        let (trajectories, report) = synth.synthesize()
        let oneTool = Self.parallelOfOneTool(trajectories, report)
        XCTAssertEqual(report.parallelPerTool.map(\.tool), synth.tools.map(\.name))
        XCTAssertGreaterThan(oneTool.count, synth.tools.count, "about two per tool")
        for t in oneTool {
            XCTAssertEqual(t.source, "synth:parallel")
            XCTAssertEqual(Set(t.steps.flatMap(\.calls).map(\.name)).count, 1, t.query)
            XCTAssertEqual(t.steps.count, 1, "one answer holds all calls")
            let calls = t.steps[0].calls
            XCTAssertGreaterThanOrEqual(calls.count, 2, t.query)
            XCTAssertEqual(Set(calls.map { $0.arguments.serialized(sortedKeys: true) }).count, calls.count, "the calls differ: \(t.query)")
            XCTAssertEqual(Set(calls.map { $0.arguments.objectValue!.keys.sorted() }).count, 1, "the same arguments are given: \(t.query)")
        }
        // "What's the weather in Paris and in Rome?": several cities, each in the query.
        let weather = oneTool.filter { $0.steps[0].calls[0].name == "get_weather" }
        XCTAssertTrue(weather.contains { t in
            let cities = Set(t.steps[0].calls.compactMap { $0.arguments["city"]?.stringValue })
            return cities.count >= 2 && cities.allSatisfy { t.query.contains($0) }
        }, weather.map(\.query).joined(separator: "\n"))
        // Several tools in one answer, one of them called more than once.
        XCTAssertTrue(trajectories.contains { t in
            let names = t.steps.flatMap(\.calls).map(\.name)
            return t.source == "synth:parallel" && t.steps.count == 1 && Set(names).count >= 2 && names.count > Set(names).count
        })
    }

    /// The steps answered in text: a tool's own request with only other tools as candidates, a
    /// request no candidate's schema words name, and the step after a task's call was observed;
    /// sequential episodes end in one; none of them with noCallFraction 0.
    func testNoCallTrajectories() throws {
        let tools = try ToolCatalogue.load(file: demoTools).tools
        let (trajectories, report) = ExampleSynthesizer(tools: tools, config: config(perTool: 12)).synthesize()
        let atomic = trajectories.filter { $0.source == "synth:atomic" }
        let toolOfQuery = Dictionary(atomic.map { ($0.query, $0.steps[0].calls[0].name) }, uniquingKeysWith: { a, _ in a })
        let noCall = trajectories.filter { ["synth:irrelevant", "synth:no-tool", "synth:final"].contains($0.source) }
        XCTAssertEqual(noCall.count, report.noCallTrajectories)
        XCTAssertEqual(noCall.count, Int((Double(atomic.count) * 0.3).rounded(.up)))
        for kind in ["synth:irrelevant", "synth:no-tool", "synth:final"] {
            XCTAssertGreaterThanOrEqual(noCall.filter { $0.source == kind }.count, noCall.count / 3 - 1, kind)
        }
        for t in noCall {
            XCTAssertEqual(t.steps.last?.calls, [], "\(t.source): the last step is answered in text")
            XCTAssertFalse(t.candidateTools.isEmpty)
            switch t.source {
            case "synth:irrelevant":
                let tool = try XCTUnwrap(toolOfQuery[t.query], "an atomic request: \(t.query)")
                XCTAssertFalse(t.candidateTools.contains(tool), "\(t.query): its tool \(tool) is among \(t.candidateTools)")
                XCTAssertEqual(t.steps.count, 1)
            case "synth:no-tool":
                XCTAssertNil(toolOfQuery[t.query])
                XCTAssertEqual(t.steps.count, 1)
            default:
                let tool = try XCTUnwrap(toolOfQuery[t.query])
                XCTAssertEqual(t.steps.count, 2)
                XCTAssertEqual(t.steps[0].calls.map(\.name), [tool])
                XCTAssertTrue(t.candidateTools.contains(tool))
                XCTAssertEqual(t.steps[0].observation, "\(tool): ok")
            }
        }
        for t in trajectories where t.source == "synth:sequential" {
            XCTAssertEqual(t.steps.last?.calls, [])
            XCTAssertTrue(t.steps.dropLast().allSatisfy { $0.calls.count == 1 })
        }
        var off = config(perTool: 12)
        off.noCallFraction = 0
        let plain = ExampleSynthesizer(tools: tools, config: off).synthesize().trajectories
        XCTAssertTrue(plain.allSatisfy { $0.steps.allSatisfy { !$0.calls.isEmpty } })
    }

    /// Off-topic requests are never drawn for candidates whose schemas name their job.
    func testNoToolRequestsAvoidTheCandidatesJobs() {
        var rng = SeededGenerator(seed: 1)
        let translator: Set<String> = ["translate", "text", "language", "target"]
        for _ in 0..<200 {
            let request = NoCallRequests.request(avoiding: translator, rng: &rng)!
            XCTAssertFalse(request.lowercased().contains("translate"), request)
        }
        let everything = NoCallRequests.templates.reduce(into: Set<String>()) { $0.formUnion($1.jobWords) }
        XCTAssertNil(NoCallRequests.request(avoiding: everything, rng: &rng))
    }

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
        let episodes = trajectories.filter { $0.source == "synth:parallel" || $0.source == "synth:sequential" }
        XCTAssertEqual(Set(try episodes.map { try $0.steps.flatMap(\.calls).map(key).joined(separator: "|") }).count, episodes.count)
        // The no-call kinds reuse the atomic requests on purpose (other candidates, or after the call).
        let withCalls = trajectories.filter { $0.source == "synth:atomic" || $0.source == "synth:parallel" || $0.source == "synth:sequential" }
        XCTAssertEqual(Set(withCalls.map { HeldOut.normalise($0.query) }).count, withCalls.count, "queries are unique")
        XCTAssertEqual(Set(trajectories.map(\.id)).count, trajectories.count)
    }

    /// The article goes by the sound of the next word, as an English speaker says it.
    func testArticleFollowsTheSoundOfTheNextWord() {
        let expected: [(String, String)] = [
            ("hour", "an"), ("hourly rate", "an"), ("honest", "an"), ("hotel", "a"), ("unit", "a"), ("umbrella", "an"),
            ("user", "a"), ("apple", "an"), ("one-minute", "a"), ("once", "a"), ("eleven-minute", "an"), ("eight minute", "an"),
            ("8-minute", "an"), ("80 minute", "an"), ("11-minute", "an"), ("18 minute", "an"), ("1-minute", "a"),
            ("25-minute", "a"), ("110-minute", "a"), ("city", "a"), ("", "a"),
        ]
        for (word, article) in expected { XCTAssertEqual(ArgumentPhrasing.article(word), article, word) }
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
        let tools = try Self.allBFCLTools()
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
