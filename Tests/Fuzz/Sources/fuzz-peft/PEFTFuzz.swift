// fuzz-peft: a PEFT adapter folder from the shared volume, as two files in one input
// (`adapter_config.json`, then `adapter_model.safetensors`, split at FuzzParts.separator). Loading
// must give a ToolAdapter or an error, within the heap the two files justify.
import Foundation
import FuzzSupport
import LLM
import ParaTool

/// A `target_modules` regular expression alone takes ICU about 150 KB to compile and match.
let bound = AllocationBound(factor: 64, slack: 1 << 20)
let folder = FuzzScratch.directory.appendingPathComponent("adapter")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPEFT(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let parts = FuzzParts.split(bytes, count: 2)
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    FuzzScratch.write(parts[0], to: "adapter/adapter_config.json")
    if parts.count > 1 {
        FuzzScratch.write(parts[1], to: "adapter/adapter_model.safetensors")
    } else {
        FuzzScratch.remove("adapter/adapter_model.safetensors")
    }
    bound.check("PEFT adapter", inputSize: size) {
        _ = try? ToolAdapter.load(peftDirectory: folder, name: "fuzzed")
    }
    return 0
}

/// The entry point SwiftPM links for this executable: libFuzzer's driver over `fuzzPEFT`.
@_cdecl("fuzz_peft_main")
public func fuzzPEFTMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzPEFT)
}
