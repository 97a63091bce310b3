// BFCLChecker against hand-written cases, one or more per AST rule of BFCL's checker (expected
// verdicts worked out by hand from the rules, not produced by the checker), and the gold answers
// of the four shared BFCL categories, which must all pass.
import FixtureSupport
import Foundation
import XCTest
@testable import ParaTool
@testable import ParaToolTraining

final class BFCLCheckerTests: XCTestCase {
    /// A function with one parameter of every BFCL type; `city` and `count` are required.
    static let function = try! ToolSpec(json: JSONValue.parse("""
        {"name": "weather.get", "description": "Weather.", "parameters": {"type": "dict", "properties": {
          "city": {"type": "string", "description": "City."},
          "count": {"type": "integer", "description": "Days."},
          "ratio": {"type": "float", "description": "Ratio."},
          "flag": {"type": "boolean", "description": "Flag."},
          "tags": {"type": "array", "items": {"type": "string"}, "description": "Tags."},
          "weights": {"type": "array", "items": {"type": "float"}, "description": "Weights."},
          "point": {"type": "tuple", "items": {"type": "integer"}, "description": "Point."},
          "options": {"type": "dict", "description": "Options."},
          "stops": {"type": "array", "items": {"type": "dict"}, "description": "Stops."},
          "extra": {"type": "any", "description": "Anything."},
          "undeclared_in_gold": {"type": "string", "description": "Not in the gold answer."}
        }, "required": ["city", "count"]}}
        """))

    /// Gold: each parameter's acceptable values (`""` = may be omitted).
    static let gold = BFCLAnswer.Call(name: "weather.get", parameters: [
        .init(name: "city", acceptable: [.string("San Francisco, CA"), .string("SF")]),
        .init(name: "count", acceptable: [.int(3)]),
        .init(name: "ratio", acceptable: [.string(""), .double(2.0)]),
        .init(name: "flag", acceptable: [.string(""), .bool(true)]),
        .init(name: "tags", acceptable: [.string(""), .array([.string("Hot Day"), .string("rain")])]),
        .init(name: "weights", acceptable: [.string(""), .array([.double(1.0), .double(2.5)])]),
        .init(name: "point", acceptable: [.string(""), .array([.int(1), .int(2)])]),
        .init(name: "options", acceptable: [.string(""), .object(["unit": .array([.string("Celsius")]),
                                                                    "lang": .array([.string(""), .string("en")])])]),
        .init(name: "stops", acceptable: [.string(""), .array([.object(["name": .array([.string("Paris")])])])]),
        .init(name: "extra", acceptable: [.string(""), .string("x")]),
    ])

    func call(_ arguments: String, name: String = "weather.get") throws -> ToolCall {
        ToolCall(name: name, arguments: try JSONValue.parse(arguments))
    }

    func verdict(_ arguments: String, name: String = "weather.get", gold: BFCLAnswer.Call = gold) throws -> BFCLCheckResult {
        BFCLChecker.checkCall(try call(arguments, name: name), function: Self.function, gold: gold)
    }

    func testFunctionNameMustMatch() throws {
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": 3}"#).valid)
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3}"#, name: "weather_get").errorType, "simple_function_checker:wrong_func_name")
    }

    func testRequiredParametersMustBePresent() throws {
        XCTAssertEqual(try verdict(#"{"city": "SF"}"#).errorType, "simple_function_checker:missing_required")
    }

    func testUnexpectedParametersFail() throws {
        // Not declared at all, and declared but absent from the gold answer.
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3, "colour": "red"}"#).errorType, "simple_function_checker:unexpected_param")
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3, "undeclared_in_gold": "a"}"#).errorType,
                       "simple_function_checker:unexpected_param")
    }

    func testOptionalParametersMayBeOmittedOnlyWhenMarked() throws {
        let strict = BFCLAnswer.Call(name: "weather.get", parameters: [
            .init(name: "city", acceptable: [.string("SF")]), .init(name: "count", acceptable: [.int(3)]),
            .init(name: "flag", acceptable: [.bool(true)]),
        ])
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3}"#, gold: strict).errorType, "simple_function_checker:missing_optional")
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": 3, "flag": true}"#, gold: strict).valid)
    }

    func testIntegerIsAcceptedForFloatButNotTheReverse() throws {
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": 3, "ratio": 2}"#).valid)
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": 3, "ratio": 2.0}"#).valid)
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3.0}"#).errorType, "type_error:simple")
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3, "ratio": 2.5}"#).errorType, "value_error:others")
    }

    func testBooleansAreNotIntegersAndViceVersa() throws {
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3, "flag": 1}"#).errorType, "type_error:simple")
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": true}"#).errorType, "type_error:simple")
        XCTAssertEqual(try verdict(#"{"city": 5, "count": 3}"#).errorType, "type_error:simple")
    }

    func testStringsAreComparedAfterBFCLNormalisation() throws {
        // Case, spaces and , . / - _ * ^ are ignored; quotes ' and " are the same.
        for city in ["san francisco ca", "SAN-FRANCISCO,CA", "San_Francisco.CA", "s*f", "sf^"] {
            XCTAssertTrue(try verdict(#"{"city": "\#(city)", "count": 3}"#).valid, city)
        }
        XCTAssertEqual(BFCLChecker.standardize("It's  A/B-c_d*e^f.g, H"), "it\"sabcdefgh")
        // Other punctuation and other whitespace count.
        for city in ["San Francisco!", "San\\tFrancisco, CA", "Los Angeles"] {
            XCTAssertEqual(try verdict(#"{"city": "\#(city)", "count": 3}"#).errorType, "value_error:string", city)
        }
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": 3, "extra": "X"}"#).valid, "any is compared as a string")
    }

    func testListsAreComparedElementWiseInOrder() throws {
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": 3, "tags": ["hot day", "RAIN"]}"#).valid)
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3, "tags": ["rain", "hot day"]}"#).errorType, "value_error:list/tuple")
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3, "tags": ["hot day"]}"#).errorType, "value_error:list/tuple")
        // With "" among the acceptable values BFCL's item type check passes; the value check fails.
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3, "tags": ["hot day", 1]}"#).errorType, "value_error:list/tuple")
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": 3, "point": [1, 2]}"#).valid)
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3, "point": [2, 1]}"#).errorType, "value_error:list/tuple")
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3, "tags": "hot day"}"#).errorType, "type_error:simple")
    }

    func testItemsOfAFloatListGetNoIntegerConversion() throws {
        // BFCL converts int to float only for a top-level float parameter: [1, 2.5] against the
        // float list [1.0, 2.5] fails its item type check...
        let required = BFCLAnswer.Call(name: "weather.get", parameters: [
            .init(name: "city", acceptable: [.string("SF")]), .init(name: "count", acceptable: [.int(3)]),
            .init(name: "weights", acceptable: [.array([.double(1.0), .double(2.5)])]),
        ])
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": 3, "weights": [1.0, 2.5]}"#, gold: required).valid)
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3, "weights": [1, 2.5]}"#, gold: required).errorType, "type_error:nested")
        // ...unless "" is acceptable too: then the item check passes and 1 == 1.0 in the value check.
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": 3, "weights": [1, 2.5]}"#).valid)
    }

    func testDictsMatchKeyByKeyWithOptionalKeys() throws {
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": 3, "options": {"unit": "celsius"}}"#).valid)
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": 3, "options": {"unit": "Celsius", "lang": "EN"}}"#).valid)
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3, "options": {"unit": "kelvin"}}"#).errorType, "value_error:dict_value")
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3, "options": {"unit": "celsius", "x": 1}}"#).errorType, "value_error:dict_key")
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": 3, "options": {"lang": "en"}}"#).errorType, "value_error:dict_key")
    }

    func testListsOfDictsMatchPositionByPosition() throws {
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": 3, "stops": [{"name": "paris"}]}"#).valid)
        XCTAssertFalse(try verdict(#"{"city": "SF", "count": 3, "stops": [{"name": "Rome"}]}"#).valid)
        XCTAssertFalse(try verdict(#"{"city": "SF", "count": 3, "stops": [{"name": "Paris"}, {"name": "Paris"}]}"#).valid)
    }

    func testAGoldOfAnotherTypeIsAVariableComparedExactly() throws {
        // An integer parameter whose gold is a string (a variable name): the string passes the
        // type check, and is compared without normalisation.
        let variable = BFCLAnswer.Call(name: "weather.get", parameters: [
            .init(name: "city", acceptable: [.string("SF")]), .init(name: "count", acceptable: [.string("num_days")]),
        ])
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": "num_days"}"#, gold: variable).valid)
        XCTAssertEqual(try verdict(#"{"city": "SF", "count": "Num Days"}"#, gold: variable).errorType, "value_error:others")
        XCTAssertTrue(try verdict(#"{"city": "SF", "count": 3}"#, gold: variable).errorType == "value_error:others")
    }

    // MARK: Categories

    static let other = ToolSpec(name: "news.get", description: "News.", parameters: [
        "type": "dict", "properties": ["topic": ["type": "string", "description": "Topic."]], "required": ["topic"]])

    func answer(_ calls: [BFCLAnswer.Call]) -> BFCLAnswer { BFCLAnswer(id: "q", groundTruth: calls) }

    func testSimpleNeedsExactlyOneCallOfTheFirstFunction() throws {
        let one = try call(#"{"city": "SF", "count": 3}"#)
        let gold = answer([Self.gold])
        XCTAssertTrue(BFCLChecker.check(calls: [one], answer: gold, functions: [Self.function], category: .simple).valid)
        XCTAssertEqual(BFCLChecker.check(calls: [one, one], answer: gold, functions: [Self.function], category: .simple).errorType,
                       "simple_function_checker:wrong_count")
        XCTAssertEqual(BFCLChecker.check(calls: [], answer: gold, functions: [Self.function], category: .simple).errorType,
                       "simple_function_checker:wrong_count")
    }

    func testMultipleFindsTheGoldFunctionAmongTheCandidates() throws {
        let gold = answer([Self.gold])
        let functions = [Self.other, Self.function]
        XCTAssertTrue(BFCLChecker.check(calls: [try call(#"{"city": "SF", "count": 3}"#)], answer: gold, functions: functions,
                                        category: .multiple).valid)
        let wrongTool = ToolCall(name: "news.get", arguments: ["topic": "weather"])
        XCTAssertEqual(BFCLChecker.check(calls: [wrongTool], answer: gold, functions: functions, category: .multiple).errorType,
                       "simple_function_checker:wrong_func_name")
        XCTAssertEqual(BFCLChecker.check(calls: [try call(#"{"city": "SF", "count": 3}"#), wrongTool], answer: gold,
                                         functions: functions, category: .multiple).errorType, "multiple_function_checker:wrong_count")
    }

    func testParallelMatchesInAnyOrderButOnceEach() throws {
        let newsGold = BFCLAnswer.Call(name: "news.get", parameters: [.init(name: "topic", acceptable: [.string("rain")])])
        let sfGold = BFCLAnswer.Call(name: "weather.get", parameters: [
            .init(name: "city", acceptable: [.string("SF")]), .init(name: "count", acceptable: [.int(3)])])
        let laGold = BFCLAnswer.Call(name: "weather.get", parameters: [
            .init(name: "city", acceptable: [.string("LA")]), .init(name: "count", acceptable: [.int(1)])])
        let gold = answer([sfGold, laGold, newsGold])
        let functions = [Self.function, Self.other]
        let sf = try call(#"{"city": "SF", "count": 3}"#), la = try call(#"{"city": "la", "count": 1}"#)
        let news = ToolCall(name: "news.get", arguments: ["topic": "Rain"])
        for category in [BFCLCategory.parallel, .parallelMultiple] {
            XCTAssertTrue(BFCLChecker.check(calls: [news, la, sf], answer: gold, functions: functions, category: category).valid)
            XCTAssertTrue(BFCLChecker.check(calls: [sf, la, news], answer: gold, functions: functions, category: category).valid)
            XCTAssertEqual(BFCLChecker.check(calls: [sf, sf, news], answer: gold, functions: functions, category: category).errorType,
                           "parallel_function_checker_no_order:cannot_find_match")
            XCTAssertEqual(BFCLChecker.check(calls: [sf, la], answer: gold, functions: functions, category: category).errorType,
                           "parallel_function_checker_no_order:wrong_count")
        }
    }

    func testCategoryNamesFollowBFCLsRules() {
        XCTAssertEqual(BFCLCategory(name: "simple_python"), .simple)
        XCTAssertEqual(BFCLCategory(name: "live_simple"), .simple)
        XCTAssertEqual(BFCLCategory(name: "multiple"), .multiple)
        XCTAssertEqual(BFCLCategory(name: "parallel"), .parallel)
        XCTAssertEqual(BFCLCategory(name: "parallel_multiple"), .parallelMultiple)
        XCTAssertEqual(BFCLCategory.name(ofFile: URL(fileURLWithPath: "/x/BFCL_v4_parallel_multiple.json")), "parallel_multiple")
        XCTAssertEqual(BFCLCategory.name(ofFile: URL(fileURLWithPath: "/x/subset.json")), "subset")
        // A name without a category word declares no rules (eval then asks for --rules).
        XCTAssertNil(BFCLCategory.declared(by: "subset"))
        XCTAssertNil(BFCLCategory.declared(by: "val"))
        XCTAssertEqual(BFCLCategory.declared(by: "live_simple"), .simple)
        XCTAssertEqual(BFCLCategory.declared(by: "check_multiple"), .multiple)
        XCTAssertEqual(BFCLCategory.declared(by: "parallel_multiple"), .parallelMultiple)
    }

    // MARK: The shared BFCL data

    func testGoldAnswersScoreFullMarksOnEveryCategory() throws {
        let bfcl = RepositoryFixtures.bfcl
        for category in ["simple_python", "live_simple", "multiple", "parallel", "parallel_multiple"] {
            let questions = try BFCLQuestion.load(file: bfcl.appendingPathComponent("BFCL_v4_\(category).json"))
            let answers = Dictionary(try BFCLAnswer.load(file: bfcl.appendingPathComponent("possible_answer/BFCL_v4_\(category).json"))
                .map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            XCTAssertGreaterThanOrEqual(questions.count, 200, category)
            var failures = [String]()
            for q in questions {
                let answer = try XCTUnwrap(answers[q.id], q.id)
                let calls = answer.firstAcceptableCall(functions: q.functions)
                let verdict = BFCLChecker.check(calls: calls, answer: answer, functions: q.functions, category: BFCLCategory(name: category))
                if !verdict.valid { failures.append("\(q.id): \(verdict.message)") }
            }
            if category == "live_simple" {
                // Two questions no answer can pass under BFCL's rules: required list parameters
                // whose only acceptable value list is empty.
                XCTAssertEqual(failures, ["live_simple_106-63-0: Missing required parameter: auto_loan_payment_start.",
                                          "live_simple_112-68-0: Missing required parameter: acc_routing_start."])
            } else {
                XCTAssertEqual(failures, [], category)
            }
        }
    }

    func testGoldCallsTakeFirstValuesInsideDictsAndKeepRequiredParameters() throws {
        // Expectations written by reading the two lines of possible_answer/ and their functions.
        let bfcl = RepositoryFixtures.bfcl
        let questions = try BFCLQuestion.load(file: bfcl.appendingPathComponent("BFCL_v4_simple_python.json"))
        let answers = try BFCLAnswer.load(file: bfcl.appendingPathComponent("possible_answer/BFCL_v4_simple_python.json"))
        func gold(_ id: String) -> [ToolCall] {
            answers.first { $0.id == id }!.firstAcceptableCall(functions: questions.first { $0.id == id }!.functions)
        }
        XCTAssertEqual(gold("simple_python_89"), [ToolCall(name: "db_fetch_records", arguments: [
            "database_name": "StudentDB", "table_name": "students",
            "conditions": ["department": "Science", "school": "Bluebird High School"]])])
        // fuel_efficiency is required although its gold lists "" first; efficiency_reduction is not.
        XCTAssertEqual(gold("simple_python_200"), [ToolCall(name: "calculate_emissions", arguments: [
            "distance": 12000, "fuel_type": "gas", "fuel_efficiency": 25.0, "efficiency_reduction": 0])])
    }

    func testDroppingARequiredArgumentOfTheGoldFails() throws {
        let bfcl = RepositoryFixtures.bfcl
        let questions = try BFCLQuestion.load(file: bfcl.appendingPathComponent("BFCL_v4_multiple.json"))
        let answers = Dictionary(try BFCLAnswer.load(file: bfcl.appendingPathComponent("possible_answer/BFCL_v4_multiple.json"))
            .map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var checked = 0
        for q in questions {
            let answer = answers[q.id]!
            var call = answer.firstAcceptableCall(functions: q.functions)[0]
            guard let spec = q.functions.first(where: { $0.name == call.name }), let required = spec.requiredParameters.first,
                  var arguments = call.arguments.objectValue else { continue }
            arguments[required] = nil
            call.arguments = .object(arguments)
            XCTAssertFalse(BFCLChecker.check(calls: [call], answer: answer, functions: q.functions, category: .multiple).valid, q.id)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 150)
    }
}
