// fuzz-call-grammar: the constrained decoder's schema compiler and recognizer. One input holds a
// tool catalogue (any form ToolCatalogue reads) and, after FuzzParts.separator, the bytes of a
// model answer; the catalogue's first and last bytes pick max_calls and the tool choice (required,
// auto, none, or its first tool by name). `CallGrammar(tools:)` must compile any schemas; a
// CallRecognizer then reads the answer byte by byte, and an answer it accepts as complete must
// parse as calls of those tools that the choice allows, or, where the choice allows text, as text.
import FuzzSupport
@testable import ParaTool

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCallGrammar(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let parts = FuzzParts.split(bytes, count: 2)
    guard let catalogue = try? ToolCatalogue.parse(String(decoding: parts[0], as: UTF8.self)) else { return 0 }
    let maxCalls = parts[0].first.map { Int($0 % 4) }
    let choice: ToolChoice = switch parts[0].last.map({ $0 % 4 }) {
    case 1: .auto
    case 2: .none
    case 3: .tool(catalogue.tools.first?.name ?? "")
    default: .required
    }
    let grammar = CallGrammar(tools: catalogue.tools, maxCalls: maxCalls == 0 ? nil : maxCalls, choice: choice)
    guard parts.count > 1 else { return 0 }
    let answer = parts[1]
    let recognizer = CallRecognizer(grammar: grammar)
    var state = recognizer.initialState()
    var read = 0
    for byte in answer {
        guard recognizer.step(&state, byte) else { break }
        read += 1
    }
    guard read == answer.count, recognizer.isComplete(state) else { return 0 }
    let text = String(decoding: answer, as: UTF8.self)
    let seen = Int(recognizer.arena[Int(state.top)].seen)
    let parsed = ActionParser.parse(text, catalogue: catalogue)
    if recognizer.isText(state) {
        guard choice == .auto || choice == .none else { fatalError("the recognizer accepted a text answer under tool_choice \(choice): \(text.prefix(300))") }
        guard case .answer = parsed.action, !text.contains(ToolCall.openTag) else {
            fatalError("the recognizer accepted as text an answer that parses as \(parsed.action): \(text.prefix(300))")
        }
        return 0
    }
    if choice == .none { fatalError("the recognizer accepted calls under tool_choice none: \(text.prefix(300))") }
    if case .tool(let name) = choice, grammar.tools != [name] {
        fatalError("tool_choice \(name) left the grammar the tools \(grammar.tools)")
    }
    guard case .calls(let calls) = parsed.action, calls.count == seen, parsed.isValid else {
        fatalError("the recognizer accepted \(seen) calls in an answer that parses as \(parsed.action), \(parsed.errors): \(text.prefix(300))")
    }
    for call in calls where !grammar.tools.contains(call.name) {
        fatalError("the recognizer accepted a call of \(call.name), which is not among the tools")
    }
    if calls.count > grammar.maxCalls {
        fatalError("the recognizer accepted \(calls.count) calls, more than max_calls \(grammar.maxCalls)")
    }
    return 0
}

/// The entry point SwiftPM links for this executable: libFuzzer's driver over `fuzzCallGrammar`.
@_cdecl("fuzz_call_grammar_main")
public func fuzzCallGrammarMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzCallGrammar)
}
