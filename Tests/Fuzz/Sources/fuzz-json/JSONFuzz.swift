// fuzz-json: ParaTool's JSON parser (tool schemas, call arguments, catalogues) on any text. It must
// return a value or throw; a value must render as JSON that parses back to the same value, unless
// it holds a number beyond a double's range: that parses to infinity and renders as Python's
// `Infinity`, which is not JSON (the call grammar allows such numbers, so the parser takes them).
import FuzzSupport
import ParaTool

/// Whether every number in `value` is finite.
func isFinite(_ value: JSONValue) -> Bool {
    switch value {
    case .double(let d): d.isFinite
    case .array(let items): items.allSatisfy(isFinite)
    case .object(let object): object.members.allSatisfy { isFinite($0.value) }
    default: true
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    guard let value = try? JSONValue.parse(text), isFinite(value) else { return 0 }
    let rendered = value.serialized()
    guard let again = try? JSONValue.parse(rendered) else {
        fatalError("a parsed value renders as text that does not parse: \(rendered.prefix(200))")
    }
    guard again == value else { fatalError("a parsed value renders as text that parses to another value") }
    return 0
}

/// The entry point SwiftPM links for this executable: libFuzzer's driver over `fuzzJSON`.
@_cdecl("fuzz_json_main")
public func fuzzJSONMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzJSON)
}
