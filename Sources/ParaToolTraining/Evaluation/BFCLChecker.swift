// Owns BFCLChecker: scoring decoded tool calls against a BFCL possible_answer by the rules of
// BFCL's AST checker (Python categories simple, multiple, parallel, parallel_multiple), with
// Python's value semantics (1 == 1.0 == True, strict type(x) checks) reproduced on JSONValue.
// Written from a reading of BFCL's public checker's behaviour; quirks are kept on purpose so a
// score here equals BFCL's own on the same result file.
import Foundation
import ParaTool

/// How BFCL checks a category: it looks at the category name only.
public enum BFCLCategory: String, Sendable, CaseIterable {
    /// One call of the single given function (`simple_python`, `live_simple`, …).
    case simple
    /// One call, the function chosen among several (`multiple`, `live_multiple`).
    case multiple
    /// Several calls, order-free (`parallel`).
    case parallel
    /// Several calls of several functions, order-free (`parallel_multiple`).
    case parallelMultiple = "parallel_multiple"
    /// No call: none of the functions fits the question (`irrelevance`).
    case irrelevance

    /// The rules BFCL applies to a category name: "parallel" in it → order-free matching
    /// (`parallel_multiple` when "multiple" is in it too), else "multiple" in it → multiple, else
    /// simple.
    public init(name: String) {
        if name.contains("irrelevance") {
            self = .irrelevance
        } else if name.contains("parallel") {
            self = name.contains("multiple") ? .parallelMultiple : .parallel
        } else {
            self = name.contains("multiple") ? .multiple : .simple
        }
    }

    /// The rules a category name declares by one of the words `simple`, `multiple` or `parallel`
    /// (as `init(name:)` reads them); nil when it has none of them, so a caller can ask which
    /// rules apply instead of scoring every answer by the single-function rules.
    public static func declared(by name: String) -> BFCLCategory? {
        guard ["simple", "multiple", "parallel", "irrelevance"].contains(where: { name.contains($0) }) else { return nil }
        return BFCLCategory(name: name)
    }

    /// The category name of a BFCL file, `BFCL_v4_<name>.json` → `<name>` (the file's base name
    /// without extension when it does not follow that pattern).
    public static func name(ofFile url: URL) -> String {
        var base = url.deletingPathExtension().lastPathComponent
        if let range = base.range(of: "BFCL_v"), range.lowerBound == base.startIndex,
           let underscore = base[range.upperBound...].firstIndex(of: "_") {
            base = String(base[base.index(after: underscore)...])
        }
        return base
    }
}

/// The verdict on one question.
public struct BFCLCheckResult: Sendable, Equatable {
    /// True when the calls are correct.
    public var valid: Bool
    /// BFCL's error type for the first failure (e.g. `value_error:string`); empty when valid.
    public var errorType: String
    /// A readable reason; empty when valid.
    public var message: String

    /// A correct answer.
    public static let correct = BFCLCheckResult(valid: true, errorType: "", message: "")

    /// A wrong answer of `type` with `message`.
    public static func wrong(_ type: String, _ message: String) -> BFCLCheckResult {
        BFCLCheckResult(valid: false, errorType: type, message: message)
    }
}

/// BFCL's AST checker for the Python categories.
public enum BFCLChecker {
    /// Scores `calls` (the decoded model output, in order) against `answer` for a question whose
    /// candidate functions are `functions`, under `category`'s rules:
    /// - simple: exactly one call, checked against the question's first function;
    /// - multiple: as many calls as gold calls (one), the first checked against the gold
    ///   function's description;
    /// - parallel, parallel_multiple: as many calls as gold calls; each gold call, in order, takes
    ///   the first not yet matched call that passes (greedy, as BFCL does);
    /// - irrelevance: no call at all (a text answer), as BFCL's relevance runner requires.
    public static func check(calls: [ToolCall], answer: BFCLAnswer, functions: [ToolSpec],
                             category: BFCLCategory) -> BFCLCheckResult {
        switch category {
        case .irrelevance:
            guard calls.isEmpty else {
                return .wrong("irrelevance_error:decoder_success", "Valid syntax. Successfully decode AST when it should not.")
            }
            return .correct
        case .simple:
            guard calls.count == 1 else { return .wrong("simple_function_checker:wrong_count", "Wrong number of functions.") }
            guard let function = functions.first, let gold = answer.groundTruth.first else {
                return .wrong("simple_function_checker:no_gold", "The question has no function or no gold call.")
            }
            return checkCall(calls[0], function: function, gold: gold)
        case .multiple:
            guard calls.count == answer.groundTruth.count, let gold = answer.groundTruth.first else {
                return .wrong("multiple_function_checker:wrong_count", "Wrong number of functions.")
            }
            guard let function = functions.first(where: { $0.name == gold.name }) else {
                return .wrong("multiple_function_checker:no_description", "No function \(gold.name) among the question's functions.")
            }
            return checkCall(calls[0], function: function, gold: gold)
        case .parallel, .parallelMultiple:
            guard calls.count == answer.groundTruth.count else {
                return .wrong("parallel_function_checker_no_order:wrong_count", "Wrong number of functions.")
            }
            var matched = Set<Int>()
            for (g, gold) in answer.groundTruth.enumerated() {
                guard let function = functions.first(where: { $0.name == gold.name }) else {
                    return .wrong("parallel_function_checker_no_order:no_description", "No function \(gold.name) among the question's functions.")
                }
                var found = false
                for i in calls.indices where !matched.contains(i) {
                    if checkCall(calls[i], function: function, gold: gold).valid {
                        matched.insert(i)
                        found = true
                        break
                    }
                }
                if !found {
                    return .wrong("parallel_function_checker_no_order:cannot_find_match",
                                  "No remaining call matches gold call \(g) (\(gold.name)).")
                }
            }
            return .correct
        }
    }

    /// One call against one gold call, `function` being the gold function's description: the
    /// name matches; every required parameter is given; every given parameter is both declared
    /// and in the gold call; each value passes the type check and is among the acceptable
    /// values; every gold parameter left out has `""` among its acceptable values.
    public static func checkCall(_ call: ToolCall, function: ToolSpec, gold: BFCLAnswer.Call) -> BFCLCheckResult {
        guard call.name == function.name else {
            return .wrong("simple_function_checker:wrong_func_name", "Function name \(function.name) not found in model output.")
        }
        guard case .object(let arguments) = call.arguments else {
            return .wrong("simple_function_checker:wrong_arguments", "The arguments are \(call.arguments.kindWithArticle), not an object.")
        }
        let properties = function.parameters["properties"]?.objectValue ?? JSONObject()
        let required = function.parameters["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let possible = Dictionary(gold.parameters.map { ($0.name, $0.acceptable) }, uniquingKeysWith: { a, _ in a })
        for name in required where arguments[name] == nil {
            return .wrong("simple_function_checker:missing_required", "Missing required parameter: \(name).")
        }
        for (param, given) in arguments {
            guard let details = properties[param], let acceptable = possible[param] else {
                return .wrong("simple_function_checker:unexpected_param", "Unexpected parameter: \(param).")
            }
            let typeName = details["type"]?.stringValue ?? ""
            guard let expected = PyType(bfclName: typeName) else {
                return .wrong("type_error:unknown", "Parameter \(param) declares type \(typeName), which BFCL does not know.")
            }
            var nested: PyType?
            if typeName == "array" || typeName == "tuple" {
                nested = details["items"]?["type"]?.stringValue.flatMap(PyType.init(bfclName:))
            }
            var value = given
            // Python converts an int to float where a float is declared (top level only).
            if typeName == "float", case .int(let i) = value { value = .double(Double(i)) }
            let type = typeCheck(param: param, value: value, acceptable: acceptable, expected: expected, nested: nested)
            guard type.valid else { return type.result }
            if !type.isVariable {
                let verdict: BFCLCheckResult?
                switch expected {
                case .dict:
                    verdict = dictCheck(param: param, value: value, acceptable: acceptable)
                case .list where nested == .dict:
                    verdict = listOfDictsCheck(param: param, value: value, acceptable: acceptable)
                case .str:
                    verdict = stringCheck(param: param, value: value, acceptable: acceptable)
                case .list:
                    verdict = listCheck(param: param, value: value, acceptable: acceptable)
                default:
                    verdict = nil
                }
                if let verdict {
                    guard verdict.valid else { return verdict }
                    continue
                }
            }
            guard acceptable.contains(where: { pythonEqual(value, $0) }) else {
                return .wrong("value_error:others", "Invalid value for parameter \(param): \(value.serialized()).")
            }
        }
        for parameter in gold.parameters where arguments[parameter.name] == nil {
            guard parameter.acceptable.contains(where: isOptionalMarker) else {
                return .wrong("simple_function_checker:missing_optional",
                              "Optional parameter \(parameter.name) not provided and not marked as optional.")
            }
        }
        return .correct
    }

    /// BFCL's string normalisation: spaces and the characters `,./-_*^` removed, lower-cased,
    /// single quotes turned into double quotes (so "April 1, 2024" equals "april 1 2024").
    public static func standardize(_ text: String) -> String {
        let removed: Set<Character> = [" ", ",", ".", "/", "-", "_", "*", "^"]
        return String(text.filter { !removed.contains($0) }).lowercased().replacingOccurrences(of: "'", with: "\"")
    }

    // MARK: Python value semantics

    /// Python's type of a decoded JSON value.
    enum PyType: Equatable {
        case none, bool, int, float, str, list, dict

        init(_ value: JSONValue) {
            switch value {
            case .null: self = .none
            case .bool: self = .bool
            case .int: self = .int
            case .double: self = .float
            case .string: self = .str
            case .array: self = .list
            case .object: self = .dict
            }
        }

        /// BFCL's Python type mapping of declared types; nil for a name it does not know.
        init?(bfclName: String) {
            switch bfclName {
            case "string", "any": self = .str
            case "integer": self = .int
            case "float": self = .float
            case "boolean": self = .bool
            case "array", "tuple": self = .list
            case "dict": self = .dict
            default: return nil
            }
        }
    }

    /// Python's `==` on decoded JSON: numbers (bools as 0/1) compare by value, lists element by
    /// element, dicts by key set and values, anything else only with its own kind.
    static func pythonEqual(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if case .int(let x) = a, case .int(let y) = b { return x == y }
        if let x = number(a), let y = number(b) { return x == y }
        switch (a, b) {
        case (.null, .null): return true
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { pythonEqual($0, $1) }
        case (.object(let x), .object(let y)):
            return Set(x.keys) == Set(y.keys) && x.allSatisfy { key, value in y[key].map { pythonEqual(value, $0) } ?? false }
        default: return false
        }
    }

    private static func number(_ v: JSONValue) -> Double? {
        switch v {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// `x == ""` in Python: the optional-parameter marker.
    private static func isOptionalMarker(_ v: JSONValue) -> Bool { v == .string("") }

    /// The string normalised when it is one, the value unchanged otherwise.
    private static func standardized(_ v: JSONValue) -> JSONValue {
        if case .string(let s) = v { return .string(standardize(s)) }
        return v
    }

    /// Python's `len(x)`/iteration over an acceptable value that should be a list: a list's
    /// elements, a string's characters (so `""` is the empty list), nil for anything else.
    private static func elements(_ v: JSONValue) -> [JSONValue]? {
        switch v {
        case .array(let items): return items
        case .string(let s): return s.map { .string(String($0)) }
        default: return nil
        }
    }

    // MARK: The checks

    /// The type check. The type of the first acceptable value that is not `""` stands for the
    /// gold's type; when it differs from the declared type the gold is a "variable" (e.g. a
    /// string naming a value) and later checks compare values plainly. A value of the declared
    /// type passes (for lists with an item type, every element must have that type against at
    /// least one acceptable list, or an acceptable value is not a list); a value of the gold's
    /// type passes as a variable; anything else fails.
    static func typeCheck(param: String, value: JSONValue, acceptable: [JSONValue], expected: PyType, nested: PyType?)
        -> (valid: Bool, isVariable: Bool, result: BFCLCheckResult) {
        let goldType = acceptable.first(where: { !isOptionalMarker($0) }).map(PyType.init)
        let isVariable = goldType != nil && goldType != expected
        var failure: BFCLCheckResult?
        if PyType(value) == expected {
            guard let nested else { return (true, isVariable, .correct) }
            let items = value.arrayValue ?? []
            for candidate in acceptable {
                var allMatch = true
                if case .array(let goldItems) = candidate {
                    for item in items where !typeCheck(param: param, value: item, acceptable: goldItems, expected: nested, nested: nil).valid {
                        allMatch = false
                        break
                    }
                }
                if allMatch { return (true, isVariable, .correct) }
            }
            failure = .wrong("type_error:nested", "Nested type checking failed for parameter \(param): \(value.serialized()).")
        }
        if let goldType, PyType(value) == goldType {
            return failure.map { (false, true, $0) } ?? (true, true, .correct)
        }
        return (false, isVariable, failure ?? .wrong("type_error:simple", "Incorrect type for parameter \(param): \(value.serialized())."))
    }

    /// Strings: the normalised value among the normalised acceptable strings.
    static func stringCheck(param: String, value: JSONValue, acceptable: [JSONValue]) -> BFCLCheckResult {
        let options = Set(acceptable.compactMap(\.stringValue).map(standardize))
        guard let s = value.stringValue, options.contains(standardize(s)) else {
            return .wrong("value_error:string", "Invalid value for parameter \(param): \(value.serialized()).")
        }
        return .correct
    }

    /// Lists: the value, its string elements normalised, equal (Python `==`) to one acceptable
    /// list with its string elements normalised. Only the top level is normalised.
    static func listCheck(param: String, value: JSONValue, acceptable: [JSONValue]) -> BFCLCheckResult {
        let given = JSONValue.array((value.arrayValue ?? []).map(standardized))
        let options = acceptable.compactMap(elements).map { JSONValue.array($0.map(standardized)) }
        guard options.contains(where: { pythonEqual(given, $0) }) else {
            return .wrong("value_error:list/tuple", "Invalid value for parameter \(param): \(value.serialized()).")
        }
        return .correct
    }

    /// Dicts: some acceptable dict (skipping `""`) has every given key, each given value
    /// (normalised when a string) among that key's acceptable values (normalised when strings),
    /// and every key it lacks marked optional.
    static func dictCheck(param: String, value: JSONValue, acceptable: [JSONValue]) -> BFCLCheckResult {
        guard case .object(let given) = value else {
            return .wrong("value_error:dict_value", "Parameter \(param) is \(value.kindWithArticle), not a dict.")
        }
        var last = BFCLCheckResult.wrong("dict_checker:unclear", "No acceptable dict for parameter \(param).")
        candidates: for candidate in acceptable where !isOptionalMarker(candidate) {
            guard case .object(let gold) = candidate else { continue }
            for (key, v) in given {
                guard let options = gold[key] else {
                    last = .wrong("value_error:dict_key", "Unexpected dict key parameter: \(key).")
                    continue candidates
                }
                let normalised = (elements(options) ?? [options]).map(standardized)
                guard normalised.contains(where: { pythonEqual(standardized(v), $0) }) else {
                    last = .wrong("value_error:dict_value", "Invalid value for parameter \(key): \(v.serialized()).")
                    continue candidates
                }
            }
            for (key, options) in gold where given[key] == nil {
                guard (elements(options) ?? [options]).contains(where: isOptionalMarker) else {
                    last = .wrong("value_error:dict_key", "Missing dict key parameter: \(key).")
                    continue candidates
                }
            }
            return .correct
        }
        return last
    }

    /// Lists of dicts: some acceptable list has as many dicts as the value, and each dict passes
    /// the dict check against the one at its position.
    static func listOfDictsCheck(param: String, value: JSONValue, acceptable: [JSONValue]) -> BFCLCheckResult {
        let given = value.arrayValue ?? []
        var last = BFCLCheckResult.wrong("list_dict_checker:unclear", "No acceptable list of dicts for parameter \(param).")
        candidates: for candidate in acceptable {
            guard let gold = elements(candidate), gold.count == given.count else {
                last = .wrong("value_error:list_dict_count", "Wrong number of dictionaries in the list.")
                continue
            }
            for (v, g) in zip(given, gold) {
                let verdict = dictCheck(param: param, value: v, acceptable: [g])
                if !verdict.valid {
                    last = verdict
                    continue candidates
                }
            }
            return .correct
        }
        return last
    }
}
