// FeedbackJournal: makes the trainer's FeedbackJoin survive a restart. Every served candidate and
// every piece of feedback the join holds is appended (fsynced) to `<dataset>/feedback-join.jsonl`
// before the consumer commits its offset; a restarted trainer replays the journal into a fresh
// join, and the episodes the replay labels are appended to the dataset again (deduplicated by id
// there), so a crash between the journal and the dataset loses nothing. When the journal holds
// four windows of lines it is rewritten with what the join holds now (compaction forgets which
// requests were already joined or evicted: their later feedback then counts as unknown). A line
// that cannot be replayed is moved aside when the journal is opened (JSONLinesRecovery).
import Foundation
import LLM
import ParaTool
import ParaToolTraining
import Wire

/// The durable log of a FeedbackJoin's input.
public final class FeedbackJournal {
    /// The journal file.
    public let url: URL
    private var handle: FileHandle
    private var lines: Int

    /// Lines that could not be replayed when the journal was opened, moved to
    /// `feedback-join.jsonl.rejected` (for the owner to log and count).
    public let rejectedAtOpen: [RejectedLine]

    /// Opens (or creates) the journal in `directory` and replays it into `join`; returns the
    /// journal and what the replay labelled (to store again, deduplicated by the dataset). A torn
    /// last line is cut off; a line that cannot be replayed is moved aside (`rejectedAtOpen`).
    public static func open(directory: URL, into join: inout FeedbackJoin) throws -> (FeedbackJournal, [Trajectory]) {
        let url = directory.appendingPathComponent("feedback-join.jsonl")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var labelled: [Trajectory] = []
        var count = 0
        var replayed = join
        let rejected = try JSONLinesRecovery.open(url) { line in
            for outcome in try replay(JSONValue.parse(String(decoding: line, as: UTF8.self)), into: &replayed) {
                if case .labelled(let episode) = outcome { labelled.append(episode) }
            }
            count += 1
        }
        join = replayed
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        return (FeedbackJournal(url: url, handle: handle, lines: count, rejectedAtOpen: rejected), labelled)
    }

    private init(url: URL, handle: FileHandle, lines: Int, rejectedAtOpen: [RejectedLine]) {
        self.url = url
        self.handle = handle
        self.lines = lines
        self.rejectedAtOpen = rejectedAtOpen
    }

    deinit { try? handle.close() }

    /// One journal line for a candidate.
    public static func line(candidate: Trajectory) -> String {
        JSONValue.object(["candidate": candidate.json]).serialized()
    }

    /// One journal line for feedback (its protobuf encoding in base64, exact and versioned).
    public static func line(feedback: WireFeedback) throws -> String {
        JSONValue.object(["feedback": .string(Data(try feedback.encode()).base64EncodedString())]).serialized()
    }

    private static func replay(_ entry: JSONValue, into join: inout FeedbackJoin) throws -> [FeedbackJoin.Outcome] {
        guard case .object(let o) = entry else { throw JournalError("a journal line is not a JSON object") }
        if let candidate = o["candidate"] { return join.add(candidate: try Trajectory(json: candidate)) }
        if case .string(let text)? = o["feedback"], let bytes = Data(base64Encoded: text) {
            return join.add(feedback: try WireFeedback(bytes: Array(bytes)))
        }
        throw JournalError("a journal line holds neither a candidate nor feedback")
    }

    /// Appends `lines` and makes them durable before returning; compacts to `join`'s state when
    /// the journal grew past four windows.
    public func append(_ newLines: [String], join: FeedbackJoin) throws {
        guard !newLines.isEmpty else { return }
        try handle.write(contentsOf: Data(newLines.map { $0 + "\n" }.joined().utf8))
        try handle.synchronize()
        lines += newLines.count
        if lines > 4 * join.window { try compact(join) }
    }

    /// Rewrites the journal with the candidates and waiting feedback `join` holds (atomically).
    public func compact(_ join: FeedbackJoin) throws {
        let held = join.heldCandidates.map(Self.line(candidate:)) + (try join.waitingFeedback.map(Self.line(feedback:)))
        try handle.close()
        try DurableFiles.write(Data(held.map { $0 + "\n" }.joined().utf8), to: url)
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        lines = held.count
    }

    struct JournalError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
