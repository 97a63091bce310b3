// Tests of schema-constrained decoding (CallGrammar, CallRecognizer, TokenVocabulary,
// CallConstraint): hand-written answers accepted and rejected byte by byte; the listed allowed
// tokens equal to a token-by-token check of the whole vocabulary; and the two witnesses against
// Python's `jsonschema` (Tests/Scripts/validate_calls.py): every BFCL gold answer, tokenized by the
// model's tokenizer, is accepted token by token exactly when jsonschema finds it valid, and random
// walks among the allowed tokens over every BFCL function end in calls jsonschema validates.
import FixtureSupport
import Foundation
import LLM
import Tensor
import XCTest

@testable import ParaTool

final class CallConstraintTests: XCTestCase {
    // MARK: Fixtures

    static let weather = ToolSpec(name: "get_weather", description: "Weather for a city", parameters: [
        "type": "object",
        "properties": ["city": ["type": "string"], "unit": ["type": "string", "enum": ["celsius", "fahrenheit"]],
                       "days": ["type": "integer"]],
        "required": ["city"],
    ])
    static let convert = ToolSpec(name: "convert", description: "Convert money", parameters: [
        "type": "dict",
        "properties": ["amount": ["type": "float"], "from": ["type": "string"], "to": ["type": "string"]],
        "required": ["amount", "from", "to"],
    ])
    static let search = ToolSpec(name: "search", description: "Search with filters", parameters: [
        "type": "dict",
        "properties": [
            "filters": ["type": "dict", "properties": ["min": ["type": "integer"], "tags": ["type": "array", "items": ["type": "string"]]],
                        "required": ["min"]],
            "exact": ["type": "boolean"], "extra": ["type": "any"], "point": ["type": "tuple", "items": ["type": "float"]],
            "meta": ["type": "dict"],
        ],
        "required": [],
    ])

    static func recognize(_ text: String, _ grammar: CallGrammar) -> (prefix: Bool, complete: Bool) {
        let r = CallRecognizer(grammar: grammar)
        var s = r.initialState()
        guard r.step(&s, Array(text.utf8)[...]) else { return (false, false) }
        return (true, r.isComplete(s))
    }

    func assertComplete(_ text: String, _ grammar: CallGrammar, file: StaticString = #filePath, line: UInt = #line) {
        let r = Self.recognize(text, grammar)
        XCTAssertTrue(r.prefix && r.complete, "should be a complete answer: \(text)", file: file, line: line)
    }

    func assertPrefixOnly(_ text: String, _ grammar: CallGrammar, file: StaticString = #filePath, line: UInt = #line) {
        let r = Self.recognize(text, grammar)
        XCTAssertTrue(r.prefix && !r.complete, "should be a valid but unfinished answer: \(text)", file: file, line: line)
    }

    func assertRejected(_ text: String, _ grammar: CallGrammar, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(Self.recognize(text, grammar).prefix, "should be rejected: \(text)", file: file, line: line)
    }

    static var tinyTokenizer: Tokenizer {
        get throws { try Tokenizer(directory: RepositoryFixtures.require(RepositoryFixtures.hfTiny.appendingPathComponent("tokenizer"))) }
    }

    /// A number the grammar admits must parse: JSON's parser refuses values beyond Double's range,
    /// so exponents stop at two digits (the longest number, 32 bytes, then stays below 1e131).
    /// Before, `1e999` completed a call whose arguments no parser accepted.
    func testNumbersStayWithinDoublesRange() {
        let g = CallGrammar(tools: [Self.convert], maxCalls: 1)
        func call(_ amount: String) -> String { #"<tool_call>{"name": "convert", "arguments": {"amount": "# + amount + #", "from": "EUR", "to": "USD"}}</tool_call>"# }
        for amount in ["1e99", "-9.5E-99", "6.022e23", "99999999999999999999999999e+99"] {
            assertComplete(call(amount), g)
            XCTAssertTrue(ActionParser.parse(call(amount)).isValid, amount)
        }
        for amount in ["1e999", "-8e308", "1e100", "1E+309"] { assertRejected(call(amount), g) }
    }

    // MARK: Grammar cache

    /// Whether two grammars share their compiled storage (the cache handed out the same one).
    static func sameCompilation(_ a: CallGrammar, _ b: CallGrammar) -> Bool {
        a.nodes.withUnsafeBufferPointer { x in b.nodes.withUnsafeBufferPointer { $0.baseAddress == x.baseAddress } }
    }

    /// The same candidates, limit and choice reuse the compiled grammar; another limit, choice or
    /// schema (same name) compiles anew, and the new schema is the one enforced; the least
    /// recently used grammar goes first when the cache is full.
    func testGrammarCacheReusesCompiledGrammarsAndRecompilesChangedSchemas() {
        let cache = CallGrammarCache(capacity: 3)
        let first = cache.grammar(tools: [Self.weather, Self.convert], maxCalls: nil, choice: .auto)
        let again = cache.grammar(tools: [Self.weather, Self.convert], maxCalls: nil, choice: .auto)
        XCTAssertTrue(Self.sameCompilation(first, again))
        XCTAssertEqual([cache.hits, cache.misses], [1, 1])
        XCTAssertFalse(Self.sameCompilation(first, cache.grammar(tools: [Self.weather, Self.convert], maxCalls: 1, choice: .auto)))
        XCTAssertFalse(Self.sameCompilation(first, cache.grammar(tools: [Self.weather, Self.convert], maxCalls: nil, choice: .required)))
        XCTAssertEqual([cache.hits, cache.misses], [1, 3])

        var renamedCity = Self.weather
        renamedCity.parameters = ["type": "object", "properties": ["town": ["type": "string"]], "required": ["town"]]
        let changed = cache.grammar(tools: [renamedCity, Self.convert], maxCalls: nil, choice: .auto)
        XCTAssertFalse(Self.sameCompilation(first, changed))
        XCTAssertEqual(cache.misses, 4)
        XCTAssertEqual(cache.count, 3, "bounded by its capacity")
        assertComplete(#"<tool_call>{"name": "get_weather", "arguments": {"town": "Oslo"}}</tool_call>"#, changed)
        assertRejected(#"<tool_call>{"name": "get_weather", "arguments": {"city""#, changed)

        // `first` was used least recently: evicted. The one with maxCalls 1 was used after it.
        _ = cache.grammar(tools: [Self.weather, Self.convert], maxCalls: nil, choice: .required)
        XCTAssertEqual(cache.hits, 2)
        XCTAssertFalse(Self.sameCompilation(first, cache.grammar(tools: [Self.weather, Self.convert], maxCalls: nil, choice: .auto)))
        XCTAssertEqual(cache.misses, 5)
    }

    /// What the cache saves per request: compiling the three fixture schemas against a lookup.
    func testGrammarCacheLookupCostsLessThanCompiling() {
        let specs = [Self.weather, Self.convert, Self.search]
        let cache = CallGrammarCache()
        _ = cache.grammar(tools: specs, maxCalls: nil, choice: .auto)
        let rounds = 2000
        let clock = ContinuousClock()
        var nodes = 0
        let compile = clock.measure { for _ in 0..<rounds { nodes &+= CallGrammar(tools: specs, choice: .auto).nodes.count } }
        let lookup = clock.measure { for _ in 0..<rounds { nodes &+= cache.grammar(tools: specs, maxCalls: nil, choice: .auto).nodes.count } }
        print("grammar per request: compiled \(compile / rounds), cached \(lookup / rounds) (\(nodes) nodes)")
        XCTAssertEqual(cache.misses, 1)
        XCTAssertLessThan(lookup, compile)
    }

    // MARK: Byte-level grammar

    func testEnvelopeNamesAndCallCount() {
        let g = CallGrammar(tools: [Self.weather, Self.convert], maxCalls: 2)
        let one = #"<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>"#
        assertComplete(one, g)
        assertComplete(one + "\n" + #"<tool_call>{"name": "convert", "arguments": {"amount": 2.5, "from": "EUR", "to": "JPY"}}</tool_call>"#, g)
        assertRejected(one + "\n" + one + "\n<", g)
        assertPrefixOnly(#"<tool_call>{"name": "get_"#, g)
        assertRejected(#"<tool_call>{"name": "get_time"#, g)
        assertRejected(#"<tool_call>{"name": "tool_name", "arguments": {}}</tool_call>"#, g)
        assertRejected("Sure! " + one, g)
        assertRejected(#"<tool_call>{"name":"get_weather""#, g)
        assertRejected(one + " ", g)
        assertPrefixOnly(one + "\n", g)
        assertComplete(#"<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>"#,
                       CallGrammar(tools: [Self.weather], maxCalls: 1))
        assertRejected(one + "\n", CallGrammar(tools: [Self.weather], maxCalls: 1))
    }

    func testPropertiesRequiredDuplicatesTypesEnums() {
        let g = CallGrammar(tools: [Self.weather, Self.convert])
        let w = #"<tool_call>{"name": "get_weather", "arguments": "#
        assertComplete(w + #"{"unit": "celsius", "city": "Rome", "days": 3}}</tool_call>"#, g)
        assertRejected(w + #"{"unit": "celsius"}"#, g)
        assertPrefixOnly(w + #"{"unit": "celsius""#, g)
        assertRejected(w + #"{"town": "Rome"}"#, g)
        assertRejected(w + #"{"city": "Rome", "city""#, g)
        assertRejected(w + #"{"city": "Rome", "unit": "kelvin"#, g)
        assertRejected(w + #"{"city": 5"#, g)
        assertRejected(w + #"{"city": "Rome", "days": 3.5"#, g)
        assertRejected(w + #"{"city": "Rome", "days": 03"#, g)
        assertRejected(w + #"{"city": "Rome", "days": "3"#, g)
        assertRejected(w + #"{"city": "Rome", "unit": "celsius", "days": 1, "#, g)
        assertComplete(w + #"{"city": "S\u00e3o Paulo \"SP\" \\ ok"}}</tool_call>"#, g)
        assertComplete(w + #"{"city": "São Paulo"}}</tool_call>"#, g)
        assertRejected(w + "{\"city\": \"a\nb\"", g)
        // A string argument is spaces alone or starts with something else: no " Rome".
        assertRejected(w + #"{"city": " Rome"#, g)
        assertRejected(w + #"{"city": "  R"#, g)
        assertComplete(w + #"{"city": " "}}</tool_call>"#, g)
        assertComplete(w + #"{"city": ""}}</tool_call>"#, g)
        assertComplete(w + #"{"city": "New York "}}</tool_call>"#, g)
        assertRejected(w + #"{"city": "\x"#, g)
        let c = #"<tool_call>{"name": "convert", "arguments": {"amount": "#
        for number in ["250", "-0.5", "1e-05", "2.5E+3", "0"] {
            assertComplete(c + number + #", "from": "EUR", "to": "JPY"}}</tool_call>"#, g)
        }
        for number in ["1.", "-", ".5", "01", "1e"] {
            assertRejected(c + number + #", "#, g)
        }
        assertRejected(c + #"true"#, g)
    }

    func testNestedObjectsArraysAnyAndFreeObjects() {
        let g = CallGrammar(tools: [Self.search])
        let s = #"<tool_call>{"name": "search", "arguments": "#
        assertComplete(s + "{}}</tool_call>", g)
        assertComplete(s + #"{"filters": {"min": 2, "tags": ["a", "b c"]}, "exact": true}}</tool_call>"#, g)
        assertRejected(s + #"{"filters": {"tags": []}"#, g)
        assertRejected(s + #"{"filters": {"min": 2, "max": 3"#, g)
        assertRejected(s + #"{"filters": {"min": 2, "tags": [1"#, g)
        assertRejected(s + #"{"exact": "yes""#, g)
        assertComplete(s + #"{"point": [1.5, -2, 3e2]}}</tool_call>"#, g)
        assertComplete(s + #"{"extra": {"k": [1, "x", null, {"d": false}]}, "meta": {"a": 1, "b": "c"}}}</tool_call>"#, g)
        assertComplete(s + #"{"extra": "text"}}</tool_call>"#, g)
        assertRejected(s + #"{"extra": nul}"#, g)
        assertRejected(s + #"{"meta": {"a" 1"#, g)
        assertRejected(s + #"{"point": [1,2]"#, g)
    }

    func testSchemaForms() {
        let union = ToolSpec(name: "u", description: "", parameters: [
            "type": "object",
            "properties": ["v": ["type": ["string", "null"]], "w": ["anyOf": [["type": "integer"], ["type": "array", "items": ["type": "boolean"]]]],
                           "c": ["const": 7], "odd": ["type": "complex"], "n": ["type": "integer", "enum": [1, 10]]],
        ])
        let g = CallGrammar(tools: [union])
        XCTAssertEqual(g.warnings.count, 1, "\(g.warnings)")
        let u = #"<tool_call>{"name": "u", "arguments": "#
        assertComplete(u + #"{"v": null, "w": [true, false], "c": 7, "odd": {"x": 1}}}</tool_call>"#, g)
        assertComplete(u + #"{"v": "s", "w": 12}}</tool_call>"#, g)
        assertRejected(u + #"{"c": 8"#, g)
        assertComplete(u + #"{"n": 1}}</tool_call>"#, g)
        assertComplete(u + #"{"n": 10}}</tool_call>"#, g)
        assertRejected(u + #"{"n": 100"#, g)
        let noParameters = ToolSpec(name: "now", description: "")
        assertComplete(#"<tool_call>{"name": "now", "arguments": {}}</tool_call>"#, CallGrammar(tools: [noParameters]))
        assertRejected(#"<tool_call>{"name": "now", "arguments": {""#, CallGrammar(tools: [noParameters]))
    }

    // MARK: Tokens

    /// The tokens the constraint lists (trie walk, or the plain-string shortcut) are exactly
    /// those that a token-by-token check of the whole vocabulary accepts, at every step of
    /// answers that pass through strings, numbers, enums, nesting and the end.
    func testListedTokensEqualTheVocabularyCheckedOneByOne() throws {
        let tokenizer = try Self.tinyTokenizer
        let vocabulary = TokenVocabulary(tokenizer: tokenizer)
        let grammar = CallGrammar(tools: [Self.weather, Self.convert, Self.search], maxCalls: 2)
        let answers = [
            #"<tool_call>{"name": "get_weather", "arguments": {"city": "Par\"is \u00e9", "unit": "fahrenheit", "days": 12}}</tool_call>"#,
            #"<tool_call>{"name": "search", "arguments": {"filters": {"min": -3, "tags": ["x y"]}, "extra": [1.5e3, {"q": null}]}}</tool_call>"#
                + "\n" + #"<tool_call>{"name": "convert", "arguments": {"amount": 0.25, "from": "a", "to": "b"}}</tool_call>"#,
        ]
        var steps = 0
        for answer in answers {
            let constraint = CallConstraint(grammar: grammar, vocabulary: vocabulary)
            for token in tokenizer.encode(answer) + [tokenizer.stopTokenIds.min()!] {
                let listed = Set(constraint.allowedTokens().map(Int.init))
                let checked = Set((0..<vocabulary.size).filter(constraint.accepts))
                XCTAssertEqual(listed, checked, "step \(steps)")
                XCTAssertTrue(listed.contains(token), "gold token \(token) not allowed at step \(steps)")
                XCTAssertTrue(constraint.advance(token))
                steps += 1
            }
            XCTAssertTrue(constraint.finished)
        }
        XCTAssertGreaterThan(steps, 60)
    }

    /// Greedy selection takes the model's best token when allowed, else the best allowed one.
    func testBestAllowedTokenIsTheHighestAllowedLogit() throws {
        let tokenizer = try Self.tinyTokenizer
        let vocabulary = TokenVocabulary(tokenizer: tokenizer)
        let constraint = CallConstraint(grammar: CallGrammar(tools: [Self.weather]), vocabulary: vocabulary)
        let logits = FloatBuffer(count: vocabulary.size)
        var rng = SeededGenerator(seed: 11)
        for i in 0..<vocabulary.size { logits[i] = Float(rng.next() % 10_000) / 100 }
        let view = MatrixView(logits, rows: 1, cols: vocabulary.size)
        for _ in 0..<40 where !constraint.finished {
            let allowed = constraint.allowedTokens()
            let expected = allowed.max { logits[Int($0)] < logits[Int($1)] || (logits[Int($0)] == logits[Int($1)] && $0 > $1) }!
            let chosen = constraint.bestAllowedToken(view, row: 0)
            XCTAssertEqual(logits[chosen], logits[Int(expected)])
            XCTAssertTrue(constraint.advance(chosen))
            for i in 0..<vocabulary.size { logits[i] = Float(rng.next() % 10_000) / 100 }
        }
    }

    /// The name prior ranks names by logit plus prior: a forbidden tool is never named, and
    /// among the others a strong enough prior overrides the logits, a zero one leaves them.
    func testNamePriorSteersTheNamedTool() throws {
        let tokenizer = try Self.tinyTokenizer
        let vocabulary = TokenVocabulary(tokenizer: tokenizer)
        let grammar = CallGrammar(tools: [Self.weather, Self.convert, Self.search], maxCalls: 1)
        // Logits that spell the search call's name, token by token.
        let favoured = tokenizer.encode(#"<tool_call>{"name": "search", "arguments": {}}</tool_call>"#)
        func named(prior: [Float]?) -> String {
            let constraint = CallConstraint(grammar: grammar, vocabulary: vocabulary)
            constraint.namePrior = prior
            let logits = FloatBuffer(count: vocabulary.size)
            let view = MatrixView(logits, rows: 1, cols: vocabulary.size)
            var ids = [Int]()
            // Up to the arguments: the name is then written.
            for step in 0..<40 where !tokenizer.decode(ids).contains("\"arguments\"") {
                for i in 0..<vocabulary.size { logits[i] = 0 }
                if step < favoured.count { logits[favoured[step]] = 5 }
                let t = constraint.bestAllowedToken(view, row: 0)
                XCTAssertTrue(constraint.advance(t))
                ids.append(t)
            }
            let text = tokenizer.decode(ids)
            guard let start = text.range(of: "\"name\": \""), let end = text[start.upperBound...].firstIndex(of: "\"") else { return "none" }
            return String(text[start.upperBound..<end])
        }
        XCTAssertEqual(named(prior: nil), "search")
        XCTAssertEqual(named(prior: [0, 0, 0]), "search")
        XCTAssertEqual(named(prior: [0, -.infinity, -.infinity]), "get_weather")
        XCTAssertEqual(named(prior: [-.infinity, 0, -.infinity]), "convert")
        XCTAssertEqual(named(prior: [40, 0, 0]), "get_weather")
    }

    // MARK: Witnesses against jsonschema

    /// jsonschema's verdicts (SchemaWitness) on (id, tool parameters, arguments).
    static func jsonschemaVerdicts(_ items: [(id: String, parameters: JSONValue, arguments: JSONValue)]) throws -> [String: SchemaWitness.Verdict] {
        try SchemaWitness.verdicts(items.map {
            SchemaWitness.Item(id: $0.id, parametersJSON: $0.parameters.serialized(), argumentsJSON: $0.arguments.serialized())
        })
    }

    /// Every gold answer of the BFCL files, written in the call syntax and tokenized by
    /// `tokenizer`, fed token by token: accepted to the end (and the stop token after it)
    /// exactly when jsonschema finds every call valid. Returns (answers, valid ones).
    func checkGoldAnswers(tokenizer: Tokenizer) throws -> (Int, Int) {
        let vocabulary = TokenVocabulary(tokenizer: tokenizer)
        var items = [(id: String, parameters: JSONValue, arguments: JSONValue)]()
        var answers = [(id: String, grammar: CallGrammar, text: String, calls: Int)]()
        for category in RepositoryFixtures.bfclCategories {
            let questions = try BFCLQuestion.load(file: RepositoryFixtures.require(RepositoryFixtures.bfclQuestions(category)))
            let gold = try BFCLAnswer.load(file: RepositoryFixtures.require(RepositoryFixtures.bfclAnswers(category)))
            let byID = Dictionary(questions.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            for answer in gold {
                let question = try XCTUnwrap(byID[answer.id])
                let calls = answer.firstAcceptableCall(functions: question.functions)
                for (k, call) in calls.enumerated() {
                    let spec = try XCTUnwrap(question.functions.first { $0.name == call.name })
                    items.append(("\(answer.id)#\(k)", spec.parameters, call.arguments))
                }
                answers.append((answer.id, CallGrammar(tools: question.functions, maxCalls: calls.count),
                                Action.calls(calls).rendered, calls.count))
            }
        }
        let verdicts = try Self.jsonschemaVerdicts(items)
        var valid = 0
        let stop = tokenizer.stopTokenIds.min()!
        for a in answers {
            let expected = (0..<a.calls).allSatisfy { verdicts["\(a.id)#\($0)"]?.valid == true }
            let constraint = CallConstraint(grammar: a.grammar, vocabulary: vocabulary)
            let accepted = (tokenizer.encode(a.text) + [stop]).allSatisfy { constraint.accepts($0) && constraint.advance($0) }
            if expected { valid += 1 }
            let reasons = (0..<a.calls).compactMap { verdicts["\(a.id)#\($0)"]?.error }.filter { !$0.isEmpty }
            XCTAssertEqual(accepted, expected, "\(a.id): constraint \(accepted ? "accepts" : "rejects"), jsonschema says \(reasons): \(a.text)")
        }
        return (answers.count, valid)
    }

    func testGoldAnswersWithTheTinyTokenizer() throws {
        let (answers, valid) = try checkGoldAnswers(tokenizer: try Self.tinyTokenizer)
        XCTAssertGreaterThan(answers, 1_000)
        XCTAssertGreaterThan(Double(valid) / Double(answers), 0.99, "nearly every gold answer follows its schema")
    }

    func testGoldAnswersWithTheDefaultModelsTokenizer() throws {
        let tokenizer = try LanguageModel.loadTokenizer(path: try DefaultModelFixture.path())
        let (answers, valid) = try checkGoldAnswers(tokenizer: tokenizer)
        XCTAssertGreaterThan(answers, 1_000)
        XCTAssertGreaterThan(Double(valid) / Double(answers), 0.99)
    }

    /// Random walks among the allowed tokens, one per BFCL function (with the other functions
    /// of its question as further candidates, up to two calls), biased toward tokens that close
    /// something so walks end; every walk must end, and its calls must satisfy jsonschema.
    func walk(tokenizer: Tokenizer, functions limit: Int?, seed: UInt64) throws -> Int {
        let vocabulary = TokenVocabulary(tokenizer: tokenizer)
        var seen = Set<String>()
        var questions = [(function: ToolSpec, all: [ToolSpec])]()
        for category in RepositoryFixtures.bfclCategories {
            for q in try BFCLQuestion.load(file: RepositoryFixtures.require(RepositoryFixtures.bfclQuestions(category))) {
                for f in q.functions where seen.insert(f.json.serialized(sortedKeys: true)).inserted { questions.append((f, q.functions)) }
            }
        }
        if let limit { questions = Array(questions.prefix(limit)) }
        var rng = SeededGenerator(seed: seed)
        let closing = Set("\"]},".utf8)
        var items = [(id: String, parameters: JSONValue, arguments: JSONValue)]()
        for (i, q) in questions.enumerated() {
            let candidates = [q.function] + q.all.filter { $0.name != q.function.name }
            let constraint = CallConstraint(grammar: CallGrammar(tools: candidates, maxCalls: 2), vocabulary: vocabulary)
            // Start with the function under test, so every schema is walked.
            var ids = tokenizer.encode(ToolCall.openTag + "{\"name\": " + JSONValue.string(q.function.name).serialized(asciiOnly: false))
            for t in ids { XCTAssertTrue(constraint.advance(t)) }
            while !constraint.finished && ids.count < 3_000 {
                let allowed = constraint.allowedTokens()
                guard !allowed.isEmpty else { XCTFail("\(q.function.name): no token allowed after \(tokenizer.decode(ids))"); break }
                let stops = allowed.filter { vocabulary.stopSet.contains(Int($0)) }
                var pick: Int32
                if !stops.isEmpty && (ids.count > 400 || rng.next() % 2 == 0) {
                    pick = stops[0]
                } else {
                    let closers = allowed.filter { vocabulary.tokenBytes(Int($0)).contains(where: closing.contains) }
                    let pool = !closers.isEmpty && (ids.count > 200 || rng.next() % 10 < 7) ? closers : allowed
                    pick = pool[Int(rng.next() % UInt64(pool.count))]
                }
                XCTAssertTrue(constraint.advance(Int(pick)))
                ids.append(Int(pick))
            }
            XCTAssertTrue(constraint.finished, "\(q.function.name): the walk did not end: \(tokenizer.decode(ids).suffix(200))")
            let parsed = ActionParser.parse(tokenizer.decode(ids.filter { !vocabulary.stopSet.contains($0) }))
            XCTAssertTrue(parsed.isValid && parsed.warnings.isEmpty, "\(q.function.name): \(parsed.diagnostics)")
            XCTAssertFalse(parsed.action.calls.isEmpty)
            for (k, call) in parsed.action.calls.enumerated() {
                guard let spec = candidates.first(where: { $0.name == call.name }) else { XCTFail("unknown tool \(call.name)"); continue }
                items.append(("\(i)#\(k)", spec.parameters, call.arguments))
            }
        }
        let verdicts = try Self.jsonschemaVerdicts(items)
        for item in items where verdicts[item.id]?.valid != true {
            XCTFail("\(item.id): \(item.arguments.serialized()) fails \(verdicts[item.id]?.error ?? "?")")
        }
        return questions.count
    }

    func testRandomWalksOverEveryBFCLFunctionSatisfyJSONSchema() throws {
        let walked = try walk(tokenizer: try Self.tinyTokenizer, functions: nil, seed: 1)
        XCTAssertGreaterThanOrEqual(walked, 1_000)
    }

    func testRandomWalksWithTheDefaultModelsTokenizer() throws {
        let tokenizer = try LanguageModel.loadTokenizer(path: try DefaultModelFixture.path())
        XCTAssertEqual(try walk(tokenizer: tokenizer, functions: 150, seed: 2), 150)
    }

    // MARK: Tool choice and budget

    /// `auto` takes calls or text, `required` and a named tool only calls (of that tool), `none`
    /// only text; text never holds a call tag and is not complete while it is only whitespace.
    func testToolChoiceShapesWhatAnAnswerMayBe() {
        let call = #"<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>"#
        let other = #"<tool_call>{"name": "convert", "arguments": {"amount": 1, "from": "a", "to": "b"}}</tool_call>"#
        let tools = [Self.weather, Self.convert]
        let auto = CallGrammar(tools: tools, choice: .auto)
        assertComplete(call, auto)
        assertComplete(call + "\n" + other, auto)
        assertComplete("None of these tools can tell a joke.", auto)
        assertComplete("It is 12 °C in Oslo.\nAnything else?", auto)
        assertPrefixOnly(" \n", auto)
        assertRejected("Sure: " + call, auto)
        assertRejected("I will write </tool_call> here", auto)
        assertRejected("<b>bold</b>", auto)
        assertRejected("bell\u{7}", auto)

        let required = CallGrammar(tools: tools, choice: .required)
        assertComplete(call, required)
        assertRejected("No tool fits.", required)

        let none = CallGrammar(tools: tools, choice: .none)
        assertComplete("No tool fits.", none)
        assertComplete("x < 5 and <b>", none)
        assertRejected(call, none)
        assertComplete("a <tool_call", none)
        assertRejected("a <tool_call>", none)

        let named = CallGrammar(tools: tools, choice: .tool("convert"))
        XCTAssertEqual(named.tools, ["convert"])
        assertComplete(other, named)
        assertRejected(call, named)
        assertRejected("No tool fits.", named)
    }

    /// The shortest completion's length, against completions counted by hand (each also checked
    /// to complete the answer).
    func testShortestCompletionOfHandCountedPrefixes() {
        let grammar = CallGrammar(tools: [Self.weather, Self.convert], choice: .required)
        let head = #"<tool_call>{"name": "get_weather", "arguments": {"#
        let cases: [(prefix: String, completion: String)] = [
            ("", #"<tool_call>{"name": "get_weather", "arguments": {"city": ""}}</tool_call>"#),
            ("<tool_call>{\"name\": \"c", #"onvert", "arguments": {"amount": 0, "from": "", "to": ""}}</tool_call>"#),
            (head, #""city": ""}}</tool_call>"#),
            (head + #""city": "Par"#, #""}}</tool_call>"#),
            (head + #""city": "Par\"#, #"""}}</tool_call>"#),
            (head + #""city": "\uD83"#, #"0\udd00"}}</tool_call>"#),
            (head + #""city": "Paris", "days": 1"#, #"}}</tool_call>"#),
            (head + #""city": "Paris", "days": -"#, #"0}}</tool_call>"#),
            (head + #""city": "Paris", "u"#, #"nit": "celsius"}}</tool_call>"#),
            (head + #""days": 3, "#, #""city": ""}}</tool_call>"#),
            ("<tool_call>{\"name\": \"convert\", \"arguments\": {\"to\": \"EUR\"", #", "amount": 0, "from": ""}}</tool_call>"#),
            (#"<tool_call>{"name": "convert", "arguments": {"amount": 1, "from": "a", "to": "b"}}</tool_call>"#, ""),
            (#"<tool_call>{"name": "convert", "arguments": {"amount": 1, "from": "a", "to": "b"}}</tool_call>"# + "\n",
             #"<tool_call>{"name": "get_weather", "arguments": {"city": ""}}</tool_call>"#),
        ]
        for (prefix, completion) in cases {
            assertComplete(prefix + completion, grammar)
            XCTAssertEqual(Self.shortestCompletion(prefix, grammar), completion.utf8.count, "after \(prefix)")
        }
        let search = CallGrammar(tools: [Self.search], choice: .required)
        let filters = #"<tool_call>{"name": "search", "arguments": {"filters": {"tags": ["a", "#
        assertComplete(filters + #"""], "min": 0}}}</tool_call>"#, search)
        XCTAssertEqual(Self.shortestCompletion(filters, search), #"""], "min": 0}}}</tool_call>"#.utf8.count)
        let free = #"<tool_call>{"name": "search", "arguments": {"extra": {"k": [1, {"#
        assertComplete(free + #"}]}}}</tool_call>"#, search)
        XCTAssertEqual(Self.shortestCompletion(free, search), #"}]}}}</tool_call>"#.utf8.count)
        for choice in [ToolChoice.auto, .none] {
            XCTAssertEqual(Self.shortestCompletion("", CallGrammar(tools: [Self.weather], choice: choice)), 1)
            XCTAssertEqual(Self.shortestCompletion("Yes", CallGrammar(tools: [Self.weather], choice: choice)), 0)
        }
    }

    /// A string stops at its schema's maxLength in characters (an escape or a multi-byte
    /// character counts as one), else at the default, which every BFCL gold string fits; the
    /// listed tokens stay those a one-by-one check allows near the limit.
    func testStringsStopAtTheirLength() throws {
        let code = ToolSpec(name: "code", description: "", parameters: [
            "type": "object", "properties": ["pin": ["type": "string", "maxLength": 4], "note": ["type": "string"]], "required": ["pin"]])
        let g = CallGrammar(tools: [code])
        let head = #"<tool_call>{"name": "code", "arguments": {"pin": ""#
        assertComplete(head + #"1234"}}</tool_call>"#, g)
        assertComplete(head + #"ééé\n"}}</tool_call>"#, g)
        assertRejected(head + #"12345"#, g)
        assertRejected(head + #"ééé\né"#, g)
        assertComplete(head + #"    "}}</tool_call>"#, g)
        assertRejected(head + #"     "#, g)
        let note = #"<tool_call>{"name": "code", "arguments": {"pin": "1", "note": ""#
        let limit = Int(CallGrammar.defaultMaxStringLength)
        assertComplete(note + String(repeating: "a", count: limit) + #""}}</tool_call>"#, g)
        assertRejected(note + String(repeating: "a", count: limit + 1), g)
        let tokenizer = try Self.tinyTokenizer
        let vocabulary = TokenVocabulary(tokenizer: tokenizer)
        let constraint = CallConstraint(grammar: g, vocabulary: vocabulary)
        for token in tokenizer.encode(note + String(repeating: "b", count: limit - 3)) { XCTAssertTrue(constraint.advance(token)) }
        let listed = Set(constraint.allowedTokens().map(Int.init))
        XCTAssertEqual(listed, Set((0..<vocabulary.size).filter(constraint.accepts)))
        // Three characters of room: no listed token writes more before the string's closing quote.
        for token in listed where !vocabulary.stopSet.contains(token) {
            let bytes = vocabulary.tokenBytes(token)
            let inString = bytes.prefix { $0 != UInt8(ascii: "\"") }
            XCTAssertLessThanOrEqual(inString.filter { $0 & 0xC0 != 0x80 }.count, 3, "\(tokenizer.decode([token]))")
        }
    }

    /// The fewest tokens of a text, against every way of cutting it into vocabulary tokens
    /// counted by plain recursion (small texts only).
    func testFewestTokensIsTheBestCut() throws {
        let tokenizer = try Self.tinyTokenizer
        let vocabulary = TokenVocabulary(tokenizer: tokenizer)
        var bytesToToken = [[UInt8]: Int]()
        for t in 0..<vocabulary.size where !vocabulary.tokenBytes(t).isEmpty { bytesToToken[Array(vocabulary.tokenBytes(t))] = t }
        func brute(_ text: ArraySlice<UInt8>) -> Int {
            if text.isEmpty { return 0 }
            var best = Int.max / 2
            for k in 1...text.count where bytesToToken[Array(text.prefix(k))] != nil {
                best = min(best, 1 + brute(text.dropFirst(k)))
            }
            return best
        }
        for text in [#"}}</tool_call>"#, #"", "to": ""}}</tool_call>"#, "\n<tool_call>{\"name\": ", #"ty": ""}}"#, "é\"}"] {
            let bytes = Array(text.utf8)
            let (count, first) = vocabulary.fewestTokens(bytes)
            XCTAssertEqual(count, brute(bytes[...]), text)
            let firstBytes = Array(vocabulary.tokenBytes(Int(try XCTUnwrap(first))))
            XCTAssertEqual(Array(bytes.prefix(firstBytes.count)), firstBytes)
            XCTAssertEqual(brute(bytes.dropFirst(firstBytes.count)[...]), count - 1, "the first token starts a fewest writing")
        }
        XCTAssertEqual(vocabulary.fewestTokens([]).count, 0)
    }

    static func shortestCompletion(_ prefix: String, _ grammar: CallGrammar) -> Int {
        let r = CallRecognizer(grammar: grammar)
        var s = r.initialState()
        guard r.step(&s, Array(prefix.utf8)[...]) else { return -1 }
        return r.shortestCompletionLength(s)
    }

    /// Under a token budget, decoding from random logits (the worst a model can do) over every
    /// BFCL function ends complete within the budget: calls jsonschema accepts under `required`,
    /// text or calls under `auto`, never a call begun that the budget could not finish; a call
    /// the budget had to close is flagged.
    func testBudgetedDecodingAlwaysEndsComplete() throws {
        let tokenizer = try LanguageModel.loadTokenizer(path: try DefaultModelFixture.path())
        let vocabulary = TokenVocabulary(tokenizer: tokenizer)
        var functions = [(function: ToolSpec, all: [ToolSpec])]()
        var seen = Set<String>()
        for category in RepositoryFixtures.bfclCategories {
            for q in try BFCLQuestion.load(file: RepositoryFixtures.require(RepositoryFixtures.bfclQuestions(category))) {
                for f in q.functions where seen.insert(f.json.serialized(sortedKeys: true)).inserted { functions.append((f, q.functions)) }
            }
        }
        var rng = SeededGenerator(seed: 5)
        let logits = FloatBuffer(count: vocabulary.size)
        let view = MatrixView(logits, rows: 1, cols: vocabulary.size)
        var items = [(id: String, parameters: JSONValue, arguments: JSONValue)]()
        var forced = 0, texts = 0, callAnswers = 0
        for (i, f) in functions.prefix(60).enumerated() {
            let candidates = [f.function] + f.all.filter { $0.name != f.function.name }
            let choice: ToolChoice = i % 4 == 3 ? .auto : .required
            let grammar = CallGrammar(tools: candidates, maxCalls: 2, choice: choice)
            // Budgets from the fewest tokens of the shortest call up: tight enough that most walks
            // run out inside a call.
            let shortestCall = CallConstraint(grammar: CallGrammar(tools: candidates, choice: .required), vocabulary: vocabulary).tokensToComplete
            let budget = (choice == .auto ? 2 : shortestCall) + Int(rng.next() % 24)
            let constraint = CallConstraint(grammar: grammar, vocabulary: vocabulary, budget: budget)
            let start = constraint.tokensToComplete
            var ids = [Int]()
            while !constraint.finished && ids.count < budget {
                // Random logits, with closing bytes and stops pushed down: a model that rambles.
                for t in 0..<vocabulary.size { logits[t] = Float(rng.next() % 10_000) / 100 }
                for t in vocabulary.stopTokens { logits[Int(t)] = -100 }
                let t = constraint.bestAllowedToken(view, row: 0)
                XCTAssertTrue(constraint.advance(t))
                ids.append(t)
            }
            XCTAssertLessThanOrEqual(ids.count, budget)
            let text = tokenizer.decode(ids.filter { !vocabulary.stopSet.contains($0) })
            guard start <= budget else { continue }
            XCTAssertTrue(constraint.isComplete, "\(f.function.name), budget \(budget): incomplete \(text)")
            if constraint.forceClosed { forced += 1 }
            let parsed = ActionParser.parse(text)
            XCTAssertTrue(parsed.isValid, "\(f.function.name): \(parsed.diagnostics)")
            switch parsed.action {
            case .answer:
                XCTAssertEqual(choice, .auto, "a text answer under required: \(text)")
                texts += 1
            case .calls(let calls):
                callAnswers += 1
                for (k, call) in calls.enumerated() {
                    guard let spec = candidates.first(where: { $0.name == call.name }) else { XCTFail("unknown tool \(call.name)"); continue }
                    items.append(("\(i)#\(k)", spec.parameters, call.arguments))
                }
            }
        }
        let verdicts = try Self.jsonschemaVerdicts(items)
        for item in items where verdicts[item.id]?.valid != true {
            XCTFail("\(item.id): \(item.arguments.serialized()) fails \(verdicts[item.id]?.error ?? "?")")
        }
        XCTAssertGreaterThan(forced, 10, "random logits run out of budget inside calls")
        XCTAssertGreaterThan(texts, 3)
        XCTAssertGreaterThan(callAnswers, 40)
    }
}
