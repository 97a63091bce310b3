// FuzzSupport: what the fuzz targets share — scratch files for the loaders that read a path (GGUF,
// safetensors, a PEFT folder, a tokenizer folder), splitting one input into several files, and the
// allocation bound a parser of a hostile header must stay under.
import CFuzzSupport
import Foundation

/// A folder of this process for the files a target writes before calling a loader that reads
/// paths (in /dev/shm when there is one, so no disk is touched).
public enum FuzzScratch {
    /// The folder, made on first use.
    public static let directory: URL = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? URL(fileURLWithPath: "/dev/shm")
            : FileManager.default.temporaryDirectory
        let folder = base.appendingPathComponent("paratool-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }()

    /// Writes `bytes` to `name` in the folder (replacing it) and returns its URL.
    @discardableResult
    public static func write(_ bytes: [UInt8], to name: String) -> URL {
        let url = directory.appendingPathComponent(name)
        FileManager.default.createFile(atPath: url.path, contents: Data(bytes))
        return url
    }

    /// Removes `name` from the folder when it is there.
    public static func remove(_ name: String) {
        try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
    }
}

/// Splits one fuzz input into parts at a separator line, so one input can hold several files.
public enum FuzzParts {
    /// The separator between parts: a line of its own, also in the targets' dictionaries.
    public static let separator = Array("\n--next-file--\n".utf8)

    /// The parts of `bytes`, at most `count` (the last keeps any further separators).
    public static func split(_ bytes: [UInt8], count: Int) -> [[UInt8]] {
        var parts: [[UInt8]] = []
        var start = 0
        var i = 0
        while parts.count < count - 1, i + separator.count <= bytes.count {
            if bytes[i..<(i + separator.count)].elementsEqual(separator) {
                parts.append(Array(bytes[start..<i]))
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        parts.append(Array(bytes[start...]))
        return parts
    }
}

/// The heap a parser may use for one input: `factor` times the input's size plus `slack` bytes.
/// Measured with AddressSanitizer's malloc hooks (peak of the bytes live during the call); a
/// parse over the bound stops the fuzzer with a message, as a crash does.
public struct AllocationBound: Sendable {
    /// Bytes allowed per byte of input.
    public var factor: Int
    /// Bytes allowed whatever the input's size.
    public var slack: Int

    /// The bound `factor` × size + `slack`.
    public init(factor: Int, slack: Int) {
        self.factor = factor
        self.slack = slack
    }

    /// The bound for an input of `size` bytes.
    public func limit(forInputOf size: Int) -> Int { factor * size + slack }

    /// Runs `body`, then stops the process when the peak heap it used exceeds the bound.
    public func check<T>(_ what: String, inputSize: Int, _ body: () -> T) -> T {
        guard fuzz_allocations_install() != 0 else { return body() }
        fuzz_allocations_begin()
        let result = body()
        let peak = fuzz_allocations_end()
        let limit = limit(forInputOf: inputSize)
        if peak > limit {
            fatalError("\(what): \(peak) bytes live for an input of \(inputSize) bytes, over the bound of \(factor) × size + \(slack) = \(limit)")
        }
        return result
    }
}

/// Starts libFuzzer. SwiftPM links an executable's entry point as `<module>_main`, so each
/// target defines that (with `@_cdecl`) and hands its `LLVMFuzzerTestOneInput` to this.
public enum FuzzDriver {
    /// A target's `LLVMFuzzerTestOneInput`.
    public typealias Callback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

    /// Runs libFuzzer over `callback` with the process's command line; returns the exit status.
    public static func run(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                           _ callback: Callback) -> CInt {
        fuzz_run_driver(argc, argv, callback)
    }
}
