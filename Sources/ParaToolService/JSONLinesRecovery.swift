// JSONLinesRecovery: how the trainer's JSON Lines files (the dataset's `trajectories.jsonl`, the
// feedback journal) are read back when opened. A torn last line is cut off; a whole line that
// cannot be read is moved aside to `<file>.rejected` and reported, never a reason to stop: one bad
// line must not keep the trainer from starting. Both repairs rewrite the file atomically.
import Foundation
import LLM

/// A line of a JSON Lines file that could not be read when it was opened, moved to `<file>.rejected`.
public struct RejectedLine: Sendable, CustomStringConvertible {
    /// The file it was in.
    public var file: URL
    /// Its 1-based line number there (before it was removed).
    public var line: Int
    /// Why it could not be read.
    public var reason: String

    public var description: String { "\(file.lastPathComponent):\(line) moved to \(file.lastPathComponent).rejected: \(reason)" }
}

enum JSONLinesRecovery {
    /// Where the unreadable lines of `url` go.
    static func rejectedURL(_ url: URL) -> URL { url.appendingPathExtension("rejected") }

    /// Opens `url` (created empty when missing) and hands each whole non-empty line to `read`, in
    /// order. A torn last line (no newline after it: a crash during an append, whose offset was
    /// therefore never committed) is dropped. Lines `read` throws on are appended to
    /// `<url>.rejected` (fsynced) and then removed from `url`; either repair rewrites `url` with
    /// `DurableFiles.write` (atomic, fsynced). Returns the lines set aside.
    static func open(_ url: URL, read: (Data) throws -> Void) throws -> [RejectedLine] {
        let fm = FileManager.default
        if !fm.fileExists(atPath: url.path) { _ = fm.createFile(atPath: url.path, contents: nil) }
        let data = try Data(contentsOf: url)
        let whole = data.lastIndex(of: UInt8(ascii: "\n")).map { data.prefix($0 + 1) } ?? Data()
        var kept = Data()
        var rejected: [(line: Int, bytes: Data, reason: String)] = []
        for (n, line) in whole.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            do {
                try read(Data(line))
                kept.append(line)
                kept.append(UInt8(ascii: "\n"))
            } catch {
                rejected.append((n + 1, Data(line), "\(error)"))
            }
        }
        if !rejected.isEmpty {
            let aside = rejectedURL(url)
            if !fm.fileExists(atPath: aside.path) { _ = fm.createFile(atPath: aside.path, contents: nil) }
            let handle = try FileHandle(forWritingTo: aside)
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(rejected.map { $0.bytes + Data([UInt8(ascii: "\n")]) }.joined()))
            try handle.synchronize()
        }
        if kept.count != data.count { try DurableFiles.write(kept, to: url) }
        return rejected.map { RejectedLine(file: url, line: $0.line, reason: $0.reason) }
    }

    /// Removes from `<url>.rejected` (when it exists) every line holding one of `needles` as
    /// text: set-aside lines cannot be read, so what they record is found by its bytes. Returns
    /// how many went.
    @discardableResult
    static func removeRejected(of url: URL, containing needles: [String]) throws -> Int {
        let aside = rejectedURL(url)
        let patterns = needles.filter { !$0.isEmpty }.map { Data($0.utf8) }
        guard !patterns.isEmpty, FileManager.default.fileExists(atPath: aside.path) else { return 0 }
        let data = try Data(contentsOf: aside)
        var kept = Data()
        var removed = 0
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            if patterns.contains(where: { line.range(of: $0) != nil }) { removed += 1; continue }
            kept.append(line)
            kept.append(UInt8(ascii: "\n"))
        }
        if removed > 0 { try DurableFiles.write(kept, to: aside) }
        return removed
    }
}
