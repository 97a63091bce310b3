// fuzz-safetensors: any bytes as a `.safetensors` file — the 8-byte header length, the JSON header
// and each tensor's data range against the file size. Opening must give a file or an error, and
// every listed tensor must then read (or throw) without leaving the file.
import FuzzSupport
import LLM

/// The header is JSON parsed by Foundation into dictionaries: a few dozen bytes per byte of text
/// at worst (one-byte numbers and empty containers become objects of their own).
let parseBound = AllocationBound(factor: 64, slack: 1 << 17)
/// Reading: float32 from F16/BF16 is twice the bytes, F32 is mapped in place.
let readBound = AllocationBound(factor: 4, slack: 1 << 16)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let url = FuzzScratch.write(bytes, to: "model.safetensors")
    let file: SafetensorsFile? = parseBound.check("safetensors header", inputSize: size) {
        try? SafetensorsFile(path: url.path)
    }
    guard let file else { return 0 }
    for (name, entry) in file.entries.sorted(by: { $0.key < $1.key }).prefix(8) {
        guard entry.start >= 0, entry.start <= entry.end, entry.end <= size else {
            fatalError("tensor \(name) lies at \(entry.start)..<\(entry.end), outside the \(size)-byte file")
        }
        readBound.check("safetensors tensor \(name)", inputSize: size) {
            _ = try? file.load(name)
        }
    }
    return 0
}

/// The entry point SwiftPM links for this executable: libFuzzer's driver over `fuzzSafetensors`.
@_cdecl("fuzz_safetensors_main")
public func fuzzSafetensorsMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzSafetensors)
}
