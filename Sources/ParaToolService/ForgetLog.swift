// ForgetLog: what the trainer was asked to forget (ForgetRequest on `forget`), kept in
// `<dataset>/forgotten.jsonl` so that a trajectory or feedback about a forgotten request, or sent
// by a forgotten source before it was forgotten, that arrives later (redelivery, a lagging worker)
// is not stored again. It holds ids and source names only, never a query.
import Foundation
import LLM
import ParaTool
import ParaToolTraining
import Wire

/// The forget requests a trainer has applied, durable.
public final class ForgetLog {
    public let url: URL
    private var handle: FileHandle
    private var requestIDs: Set<String> = []
    /// Each forgotten source and the latest time it was forgotten (ms since the Unix epoch).
    private var sources: [String: Int64] = [:]

    /// Lines that could not be read when the log was opened (set aside).
    public let rejectedAtOpen: [RejectedLine]

    /// Opens (or creates) `<directory>/forgotten.jsonl`.
    public init(directory: URL) throws {
        url = directory.appendingPathComponent("forgotten.jsonl")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var ids: Set<String> = []
        var sources: [String: Int64] = [:]
        rejectedAtOpen = try JSONLinesRecovery.open(url) { line in
            Self.remember(try Self.request(JSONValue.parse(String(decoding: line, as: UTF8.self))), ids: &ids, sources: &sources)
        }
        requestIDs = ids
        self.sources = sources
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    /// Records `request` durably (fsynced) before returning; `at` stands for its time when it
    /// carries none.
    public func record(_ request: WireForgetRequest, at now: Int64) throws {
        var request = request
        if request.createdUnixMs <= 0 { request.createdUnixMs = now }
        let line = JSONValue.object(JSONObject([
            ("request_id", .string(request.requestID)), ("source", .string(request.source)), ("at_ms", .int(request.createdUnixMs)),
        ])).serialized() + "\n"
        try handle.write(contentsOf: Data(line.utf8))
        try handle.synchronize()
        Self.remember(request, ids: &requestIDs, sources: &sources)
    }

    /// Adds `request` to the forgotten ids, or its source with the later of its times.
    private static func remember(_ request: WireForgetRequest, ids: inout Set<String>, sources: inout [String: Int64]) {
        if !request.requestID.isEmpty { ids.insert(request.requestID) }
        if !request.source.isEmpty { sources[request.source] = max(sources[request.source] ?? .min, request.createdUnixMs) }
    }

    /// Whether a message about `requestID`, from one of `sources`, produced at `timestampMs`
    /// (nil: unknown, taken as before) is covered: its request was forgotten, or one of its
    /// sources was forgotten after it was produced.
    public func covers(requestID: String, sources candidates: [String], timestampMs: Int64?) -> Bool {
        if requestIDs.contains(requestID) { return true }
        return candidates.contains { source in
            guard !source.isEmpty, let at = sources[source] else { return false }
            return (timestampMs ?? .min) <= at
        }
    }

    private static func request(_ value: JSONValue) throws -> WireForgetRequest {
        guard case .object(let o) = value else { throw ToolFormatError("a forget line is not a JSON object") }
        guard case .string(let id)? = o["request_id"], case .string(let source)? = o["source"], case .int(let at)? = o["at_ms"] else {
            throw ToolFormatError("a forget line needs request_id, source and at_ms")
        }
        return WireForgetRequest(requestID: id, source: source, createdUnixMs: at)
    }
}
