// fuzz-tokenizer: a Hugging Face tokenizer folder from the shared volume, as up to three parts of
// one input (`tokenizer.json`, `tokenizer_config.json`, then text to tokenize). Loading must give
// a Tokenizer or a TokenizerError, within the heap the files justify; a loaded tokenizer must
// encode any text to ids of its vocabulary and decode any ids without trapping.
import Foundation
import FuzzSupport
import LLM

let bound = AllocationBound(factor: 64, slack: 1 << 18)
let folder = FuzzScratch.directory.appendingPathComponent("tokenizer")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let parts = FuzzParts.split(bytes, count: 3)
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    FuzzScratch.write(parts[0], to: "tokenizer/tokenizer.json")
    if parts.count > 1 {
        FuzzScratch.write(parts[1], to: "tokenizer/tokenizer_config.json")
    } else {
        FuzzScratch.remove("tokenizer/tokenizer_config.json")
    }
    let tokenizer: Tokenizer? = bound.check("tokenizer folder", inputSize: size) {
        do {
            return try Tokenizer(directory: folder)
        } catch is TokenizerError {
            return nil
        } catch {
            fatalError("tokenizer folder: an error that is not a TokenizerError: \(error)")
        }
    }
    guard let tokenizer else { return 0 }
    let text = parts.count > 2 ? String(decoding: parts[2], as: UTF8.self) : "Hello, wörld! 123 <tool_call>"
    let ids = tokenizer.encode(text)
    for id in ids where tokenizer.tokenText(id) == nil {
        fatalError("encode gave id \(id), which the vocabulary does not have")
    }
    _ = tokenizer.decode(ids)
    _ = tokenizer.decode(parts[0].prefix(16).map { Int($0) * 37 } + [-1, Int.max, Int.min])
    return 0
}

/// The entry point SwiftPM links for this executable: libFuzzer's driver over `fuzzTokenizer`.
@_cdecl("fuzz_tokenizer_main")
public func fuzzTokenizerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzTokenizer)
}
