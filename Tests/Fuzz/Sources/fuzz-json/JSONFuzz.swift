// fuzz-json: ParaTool's JSON parser (tool schemas, call arguments, catalogues) on any text. It must
// return a value or throw; a value must render as JSON that parses back to the same value.
import FuzzSupport
import ParaTool

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    guard let value = try? JSONValue.parse(text) else { return 0 }
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
