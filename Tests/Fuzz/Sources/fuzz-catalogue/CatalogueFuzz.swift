// fuzz-catalogue: any text as a tool catalogue (`--tools FILE`, the `tools` topic's ToolSpec
// documents): BFCL questions and JSON Lines, OpenAI `tools` lists, ToolSpec arrays, single tools;
// and a line of a BFCL question or answer file. Each must give a value or throw, never trap.
import FuzzSupport
import ParaTool

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCatalogue(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: bytes, as: UTF8.self)
    if let catalogue = try? ToolCatalogue.parse(text) {
        for name in catalogue.names where !catalogue.contains(name) {
            fatalError("the catalogue lists \(name) but does not contain it")
        }
        _ = try? catalogue.specs(named: catalogue.names)
    }
    if let value = try? JSONValue.parse(text) {
        _ = try? ToolSpec(json: value)
    }
    _ = try? BFCLQuestion(line: text)
    if let answer = try? BFCLAnswer(line: text) {
        _ = answer.firstAcceptableCall()
    }
    return 0
}

/// The entry point SwiftPM links for this executable: libFuzzer's driver over `fuzzCatalogue`.
@_cdecl("fuzz_catalogue_main")
public func fuzzCatalogueMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzCatalogue)
}
