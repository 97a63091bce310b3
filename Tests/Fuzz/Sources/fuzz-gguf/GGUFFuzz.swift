// fuzz-gguf: any bytes as a GGUF file from the shared model volume — header, metadata, tensor
// table and the tensors' offsets against the file size. Parsing must give a GGUFFile or a
// GGUFError; every tensor the table lists must then read (or throw) within the file, and neither
// step may allocate more than the bound below.
import FuzzSupport
import LLM

/// The heap parsing may take: each metadata value is one 24-byte GGUFValue however few bytes it
/// has in the file (a uint8 array element has one), plus the strings it copies.
let parseBound = AllocationBound(factor: 32, slack: 1 << 16)
/// Reading the tensors: float32 is 8 times the bytes of the densest block format (Q4_0, 4.5 bits).
let readBound = AllocationBound(factor: 8, slack: 1 << 16)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGGUF(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let url = FuzzScratch.write(bytes, to: "model.gguf")
    let file: GGUFFile? = parseBound.check("GGUF parse", inputSize: size) {
        do {
            return try GGUFFile(path: url.path)
        } catch is GGUFError {
            return nil
        } catch {
            fatalError("GGUF parse: an error that is not a GGUFError: \(error)")
        }
    }
    guard let file else { return 0 }
    for name in file.tensorNames.prefix(8) {
        let info = file.tensors[name]!
        guard info.offset >= 0, info.byteCount >= 0, info.offset + info.byteCount <= size else {
            fatalError("tensor \(name) lies at \(info.offset)+\(info.byteCount), outside the \(size)-byte file")
        }
        readBound.check("GGUF tensor \(name)", inputSize: size) {
            _ = try? file.floats(name)
        }
    }
    return 0
}

/// The entry point SwiftPM links for this executable: libFuzzer's driver over `fuzzGGUF`.
@_cdecl("fuzz_gguf_main")
public func fuzzGGUFMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzGGUF)
}
