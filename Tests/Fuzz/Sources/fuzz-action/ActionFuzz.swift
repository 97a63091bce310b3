// fuzz-action: the action parser on any model output, with and without a catalogue to check the
// calls against. It must always give an Action (a final answer when nothing parses) and never trap.
import FuzzSupport
import ParaTool

let catalogue = ToolCatalogue([
    ToolSpec(name: "get_weather", description: "Current weather", parameters: [
        "type": "object", "properties": ["city": ["type": "string"], "unit": ["type": "string", "enum": ["celsius", "fahrenheit"]]],
        "required": ["city"]]),
    ToolSpec(name: "set_timer", description: "A timer", parameters: [
        "type": "object", "properties": ["minutes": ["type": "integer"]], "required": ["minutes"]]),
])

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAction(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    _ = ActionParser.parse(text)
    let checked = ActionParser.parse(text, catalogue: catalogue)
    if case .calls(let calls) = checked.action {
        for call in calls where !catalogue.contains(call.name) && checked.diagnostics.isEmpty {
            fatalError("a call of \(call.name), which the catalogue does not have, came without a diagnostic")
        }
    }
    return 0
}

/// The entry point SwiftPM links for this executable: libFuzzer's driver over `fuzzAction`.
@_cdecl("fuzz_action_main")
public func fuzzActionMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzAction)
}
