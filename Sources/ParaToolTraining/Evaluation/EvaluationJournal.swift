// Owns EvaluationJournal: what `paratool eval --resume-from` keeps so an interrupted evaluation
// goes on from its last answered question. One JSON-lines file per category and mode, its first
// line the settings it was made under, then one line per answered question (the decoded calls and
// the request's counts); verdicts are not stored but recomputed from the calls by the checker
// when read back, so a journal never carries a stale score.
import Foundation
import ParaTool

/// The answered questions of one category under one mode, kept on disk as they are answered.
public final class EvaluationJournal {
    /// The journal file: `<directory>/<category>_<mode>.jsonl`.
    public let url: URL
    /// The settings line every record of the file was made under.
    public let settingsKey: String
    /// Outcomes read back (check and unasked arguments not yet scored), by question id.
    public private(set) var recorded: [String: QuestionOutcome] = [:]
    private let handle: FileHandle

    /// Opens (or starts) the journal of `category` under `modeName` in `directory`. A file made
    /// under other settings is refused, naming both, so answers of different runs never mix; a
    /// last line cut short by an interruption is dropped.
    /// - Throws: `ToolFormatError` for a file made under other settings or a damaged line.
    public init(directory: URL, category: String, modeName: String, settingsKey: String) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        url = directory.appendingPathComponent("\(category)_\(modeName).jsonl")
        self.settingsKey = settingsKey
        let header = JSONValue.object(JSONObject([("settings", .string(settingsKey))])).serialized(asciiOnly: false)
        if let data = FileManager.default.contents(atPath: url.path), !data.isEmpty {
            let text = String(decoding: data, as: UTF8.self)
            var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            // A line without its newline was being written when the run stopped: answer it again.
            if !text.hasSuffix("\n"), !lines.isEmpty { lines.removeLast() }
            guard let first = lines.first, let found = try? JSONValue.parse(first)["settings"]?.stringValue else {
                throw ToolFormatError("\(url.path): not an evaluation journal (no settings line); remove it or use another --resume-from directory")
            }
            guard found == settingsKey else {
                throw ToolFormatError("\(url.path) was made under other settings (\(found)), not (\(settingsKey)); "
                                      + "remove it or use another --resume-from directory")
            }
            for (n, line) in lines.dropFirst().enumerated() {
                do {
                    let outcome = try Self.outcome(from: JSONValue.parse(line))
                    recorded[outcome.id] = outcome
                } catch {
                    throw ToolFormatError("\(url.path) line \(n + 2): \(error)")
                }
            }
            // Rewrite what was read, so a dropped partial line leaves no fragment to append to.
            let kept = ([first] + lines.dropFirst()).map { $0 + "\n" }.joined()
            try Data(kept.utf8).write(to: url, options: .atomic)
        } else {
            try Data((header + "\n").utf8).write(to: url, options: .atomic)
        }
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    /// Appends one answered question.
    public func append(_ outcome: QuestionOutcome) throws {
        try handle.write(contentsOf: Data((Self.line(outcome) + "\n").utf8))
        recorded[outcome.id] = outcome
    }

    /// The record of `outcome`: everything but the verdicts.
    static func line(_ o: QuestionOutcome) -> String {
        let calls = JSONValue.array(o.calls.map { .object(JSONObject([("name", .string($0.name)), ("arguments", $0.arguments)])) })
        let flops = JSONValue.object(JSONObject([
            ("base_linear", .int(Int64(o.flops.baseLinear))), ("attention", .int(Int64(o.flops.attention))),
            ("lora", .int(Int64(o.flops.lora))), ("encoder", .int(Int64(o.flops.encoder))), ("gate", .int(Int64(o.flops.gate))),
        ]))
        return JSONValue.object(JSONObject([
            ("id", .string(o.id)), ("calls", calls), ("text", .string(o.text)), ("is_text", .bool(o.isText)),
            ("complete", .bool(o.isComplete)), ("force_closed", .bool(o.forceClosed)),
            ("prompt_tokens", .int(Int64(o.promptTokens))), ("generated_tokens", .int(Int64(o.generatedTokens))),
            ("adapters", .int(Int64(o.adapters))), ("rank", .int(Int64(o.rank))), ("flops", flops),
            ("context_docs_flops", .int(Int64(o.contextDocsFlops))), ("seconds", .double(o.seconds)),
        ])).serialized(asciiOnly: false)
    }

    /// The outcome a record holds, its verdict still to be scored (`check` says so until then).
    static func outcome(from v: JSONValue) throws -> QuestionOutcome {
        func int(_ key: String, in object: JSONValue = v) throws -> Int {
            guard case .int(let n)? = object[key] else { throw ToolFormatError("\(key) is not an integer") }
            return Int(n)
        }
        func bool(_ key: String) throws -> Bool {
            guard case .bool(let b)? = v[key] else { throw ToolFormatError("\(key) is not a boolean") }
            return b
        }
        guard let id = v["id"]?.stringValue, let text = v["text"]?.stringValue, let callValues = v["calls"]?.arrayValue,
              let flopsValue = v["flops"] else {
            throw ToolFormatError("a record needs id, text, calls and flops")
        }
        let calls = try callValues.map { c -> ToolCall in
            guard let name = c["name"]?.stringValue, let arguments = c["arguments"] else { throw ToolFormatError("a call needs name and arguments") }
            return ToolCall(name: name, arguments: arguments)
        }
        let seconds: Double
        switch v["seconds"] {
        case .double(let s)?: seconds = s
        case .int(let s)?: seconds = Double(s)
        default: throw ToolFormatError("seconds is not a number")
        }
        return QuestionOutcome(
            id: id, calls: calls, text: text, isText: try bool("is_text"), isComplete: try bool("complete"),
            forceClosed: try bool("force_closed"), unaskedArguments: 0,
            check: BFCLCheckResult(valid: false, errorType: "journal:unscored", message: "not scored yet"),
            promptTokens: try int("prompt_tokens"), generatedTokens: try int("generated_tokens"), adapters: try int("adapters"),
            rank: try int("rank"),
            flops: FlopsBreakdown(baseLinear: try int("base_linear", in: flopsValue), attention: try int("attention", in: flopsValue),
                                  lora: try int("lora", in: flopsValue), encoder: try int("encoder", in: flopsValue),
                                  gate: try int("gate", in: flopsValue)),
            contextDocsFlops: try int("context_docs_flops"), seconds: seconds)
    }
}
