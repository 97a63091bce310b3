// SchemaWitness: Python's `jsonschema` as an independent judge of tool-call arguments, through
// Tests/Scripts/validate_calls.py (BFCL's type names mapped to JSON Schema's). Used by the
// constrained decoder's and the synthesizer's tests, so neither judges its own output.
import Foundation
import XCTest

public enum SchemaWitness {
    /// jsonschema's verdict on one call.
    public struct Verdict: Decodable, Sendable {
        /// The id the call was given.
        public var id: String
        /// Whether the arguments satisfy the parameters' schema.
        public var valid: Bool
        /// jsonschema's first complaint, when not valid.
        public var error: String
    }

    /// One call to judge: an id, the tool's parameters schema and the arguments, both as JSON text.
    public struct Item: Sendable {
        public var id: String
        public var parametersJSON: String
        public var argumentsJSON: String
        public init(id: String, parametersJSON: String, argumentsJSON: String) {
            self.id = id
            self.parametersJSON = parametersJSON
            self.argumentsJSON = argumentsJSON
        }
    }

    /// The verdicts by id. Fails the test when Python or jsonschema cannot run (`.ci/install`
    /// installs jsonschema).
    public static func verdicts(_ items: [Item], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Verdict] {
        let script = RepositoryFixtures.root.deletingLastPathComponent().appendingPathComponent("Scripts/validate_calls.py")
        var input = ""
        for item in items {
            let id = String(decoding: try JSONSerialization.data(withJSONObject: item.id, options: .fragmentsAllowed), as: UTF8.self)
            input += "{\"id\": \(id), \"parameters\": \(item.parametersJSON), \"arguments\": \(item.argumentsJSON)}\n"
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", try RepositoryFixtures.require(script, file: file, line: line).path]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let data = Data(input.utf8)
        let writer = Thread {
            stdin.fileHandleForWriting.write(data)
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "validate_calls.py failed (is jsonschema installed?): \(errors)", file: file, line: line)
        var verdicts = [String: Verdict]()
        for row in output.split(separator: UInt8(ascii: "\n")) {
            let v = try JSONDecoder().decode(Verdict.self, from: Data(row))
            verdicts[v.id] = v
        }
        XCTAssertEqual(verdicts.count, Set(items.map(\.id)).count, "one verdict per call", file: file, line: line)
        return verdicts
    }
}
