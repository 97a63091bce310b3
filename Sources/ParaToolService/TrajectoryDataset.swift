// TrajectoryDataset: the trainer's durable local dataset, a segment log. Trajectories are appended
// as JSON Lines and fsynced before the consumer commits their offsets, so a crash loses nothing;
// duplicates from redelivery are dropped by id. A small state file records how many trajectories
// of each tool the last training used, so a restarted trainer knows what is still due. Damaged
// lines or state are moved aside at open (JSONLinesRecovery), never a reason not to start. The log
// has a byte quota: past it new episodes are refused and returned as such, for the owner to log
// and count. Episodes are stamped when stored; `remove` rewrites the log without the ones asked
// for (forgetting a request or a source, the retention period).
import Foundation
import LLM
import ParaTool
import ParaToolTraining
import Synchronization

/// An append-only trajectory log in a directory (`trajectories.jsonl`, `state.json`).
public final class TrajectoryDataset: @unchecked Sendable {
    public let directory: URL
    private let logURL: URL
    private let stateURL: URL
    private let lock = NSLock()
    private var handle: FileHandle
    private var ids: Set<String> = []
    private var perTool: [String: Int] = [:]
    private var trained: [String: Int] = [:]
    /// Bytes of the log now.
    private var logBytes: Int64 = 0
    /// When the dataset was opened: the storage time of episodes stored before stamps existed.
    private let openedUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
    /// Most bytes the log may hold (`append` refuses what would go past).
    public let maxBytes: Int64
    /// The default of `maxBytes`: 1 GiB.
    public static let defaultMaxBytes: Int64 = 1 << 30

    /// What `append` did with the trajectories it was given.
    public struct Appended: Sendable {
        /// New ones, now durable.
        public var stored: [Trajectory] = []
        /// New ones refused because the log would have gone past `maxBytes`.
        public var overQuota: [Trajectory] = []
    }

    /// Lines of the log that could not be read when it was opened, moved to
    /// `trajectories.jsonl.rejected` (for the owner to log and count).
    public let rejectedAtOpen: [RejectedLine]

    /// Opens (or creates) the dataset and reads what it holds. A torn last line (a crash during
    /// an append whose offset was therefore never committed) is cut off; a line that cannot be
    /// read is moved aside (`rejectedAtOpen`) instead of failing the open. The log may grow to
    /// `maxBytes` (a log already larger is kept, and nothing more is appended).
    public init(directory: URL, maxBytes: Int64 = TrajectoryDataset.defaultMaxBytes) throws {
        self.directory = directory
        self.maxBytes = max(0, maxBytes)
        logURL = directory.appendingPathComponent("trajectories.jsonl")
        stateURL = directory.appendingPathComponent("state.json")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var ids: Set<String> = []
        var perTool: [String: Int] = [:]
        rejectedAtOpen = try JSONLinesRecovery.open(logURL) { line in
            let t = try Trajectory(json: try JSONValue.parse(String(decoding: line, as: UTF8.self)))
            ids.insert(t.id)
            for tool in TrajectoryDataset.tools(of: t) { perTool[tool, default: 0] += 1 }
        }
        self.ids = ids
        self.perTool = perTool
        let state = try TrajectoryDataset.readState(stateURL)
        trained = state.trained
        stateRejected = state.rejected
        handle = try FileHandle(forWritingTo: logURL)
        logBytes = Int64(clamping: try handle.seekToEnd())
    }

    deinit { try? handle.close() }

    /// Why `state.json` could not be read at open (it was moved to `state.json.rejected`, and
    /// every tool counts as untrained), for the owner to log; nil when it was read or absent.
    public let stateRejected: String?

    /// The trained counts in `url`; a file that cannot be read is moved aside (never silently
    /// forgotten: the next `markTrained` would overwrite it) and its error returned.
    private static func readState(_ url: URL) throws -> (trained: [String: Int], rejected: String?) {
        let fm = FileManager.default
        guard fm.fileExists(atPath: url.path) else { return ([:], nil) }
        do {
            let data = try Data(contentsOf: url)
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Int] else {
                throw TrajectoryDatasetError("not a JSON object of counts")
            }
            return (object, nil)
        } catch {
            var aside = JSONLinesRecovery.rejectedURL(url)
            if fm.fileExists(atPath: aside.path) {
                aside = aside.appendingPathExtension(String(Int64(Date().timeIntervalSince1970 * 1000)))
            }
            try fm.moveItem(at: url, to: aside)
            try DurableFiles.syncDirectory(url.deletingLastPathComponent())
            return ([:], "\(url.lastPathComponent) moved to \(aside.lastPathComponent): \(error)")
        }
    }

    /// The tools a trajectory trains: those its gold steps call.
    public static func tools(of t: Trajectory) -> Set<String> { Set(t.steps.flatMap { $0.calls.map(\.name) }) }

    /// Appends the trajectories not already present and makes them durable (fsync) before
    /// returning; a new one whose line would take the log past `maxBytes` is refused (not stored,
    /// not remembered: it is new again if it comes back once there is room). Returns what was
    /// stored and what was refused.
    @discardableResult
    public func append(_ trajectories: [Trajectory]) throws -> Appended {
        try lock.withLock {
            var result = Appended()
            var text = ""
            var size = logBytes
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            for var t in trajectories where !ids.contains(t.id) {
                t.storedUnixMs = t.storedUnixMs ?? now
                let line = t.json.serialized() + "\n"
                let lineBytes = Int64(line.utf8.count)
                guard size + lineBytes <= maxBytes else {
                    result.overQuota.append(t)
                    continue
                }
                size += lineBytes
                ids.insert(t.id)
                result.stored.append(t)
                text += line
            }
            guard !result.stored.isEmpty else { return result }
            try handle.write(contentsOf: Data(text.utf8))
            try handle.synchronize()
            logBytes = size
            for t in result.stored { for tool in Self.tools(of: t) { perTool[tool, default: 0] += 1 } }
            return result
        }
    }

    /// Bytes of the log.
    public var bytes: Int64 { lock.withLock { logBytes } }

    /// Removes every stored episode `matches` selects: the log is rewritten without them
    /// (atomically, fsynced), and the lines set aside as unreadable at open that hold one of
    /// `textMatches` go too. Trained counts above what remains are lowered. Returns how many
    /// episodes went. A removed id is new again if it comes back (the owner decides whether to
    /// take it).
    @discardableResult
    public func remove(textMatches: [String] = [], where matches: (Trajectory) -> Bool) throws -> Int {
        try lock.withLock {
            let data = try Data(contentsOf: logURL)
            var kept = Data()
            var removed = 0
            var keptIDs = Set<String>()
            var keptPerTool: [String: Int] = [:]
            for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
                let t = try Trajectory(json: try JSONValue.parse(String(decoding: line, as: UTF8.self)))
                if matches(t) { removed += 1; continue }
                kept.append(line)
                kept.append(UInt8(ascii: "\n"))
                keptIDs.insert(t.id)
                for tool in Self.tools(of: t) { keptPerTool[tool, default: 0] += 1 }
            }
            try JSONLinesRecovery.removeRejected(of: logURL, containing: textMatches)
            guard removed > 0 else { return 0 }
            try handle.close()
            try DurableFiles.write(kept, to: logURL)
            handle = try FileHandle(forWritingTo: logURL)
            logBytes = Int64(clamping: try handle.seekToEnd())
            ids = keptIDs
            perTool = keptPerTool
            var lowered = false
            for (tool, n) in trained where n > (keptPerTool[tool] ?? 0) {
                trained[tool] = keptPerTool[tool] ?? 0
                lowered = true
            }
            if lowered { try DurableFiles.write(try JSONSerialization.data(withJSONObject: trained, options: [.sortedKeys]), to: stateURL) }
            return removed
        }
    }

    /// Removes the episodes stored before `cutoff` (milliseconds since the Unix epoch; episodes
    /// stored before stamps existed count as stored when the dataset was opened).
    @discardableResult
    public func expire(storedBefore cutoff: Int64) throws -> Int {
        try remove { ($0.storedUnixMs ?? openedUnixMs) < cutoff }
    }

    /// How many stored trajectories call each tool.
    public var counts: [String: Int] { lock.withLock { perTool } }

    /// Tools with at least `threshold` trajectories more than their last training used.
    public func due(threshold: Int) -> [String] {
        lock.withLock { perTool.filter { $0.value - (trained[$0.key] ?? 0) >= threshold }.map(\.key).sorted() }
    }

    /// Records that `tools` were trained on their current counts (written atomically).
    public func markTrained(_ tools: [String]) throws {
        try lock.withLock {
            for tool in tools { trained[tool] = perTool[tool] ?? 0 }
            try DurableFiles.write(try JSONSerialization.data(withJSONObject: trained, options: [.sortedKeys]), to: stateURL)
        }
    }

    /// A consistent copy of the log (whole lines only) for a training run to read, without the
    /// episodes of the held-out slice (`HeldOutSlice`) when `withoutHeldOut`.
    public func snapshot(to url: URL, withoutHeldOut: Bool = false) throws {
        try lock.withLock {
            let data = try Data(contentsOf: logURL)
            guard withoutHeldOut else { return try DurableFiles.write(data, to: url) }
            var kept = Data()
            for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
                let t = try Trajectory(json: try JSONValue.parse(String(decoding: line, as: UTF8.self)))
                guard !HeldOutSlice.contains(t.id) else { continue }
                kept.append(line)
                kept.append(UInt8(ascii: "\n"))
            }
            try DurableFiles.write(kept, to: url)
        }
    }

    /// The stored episodes of the held-out slice that call `tool`, in the order they arrived (so
    /// the first n of them stay the same n as more arrive).
    public func heldOut(tool: String) throws -> [Trajectory] {
        let data = try lock.withLock { try Data(contentsOf: logURL) }
        return try data.split(separator: UInt8(ascii: "\n")).filter { !$0.isEmpty }
            .map { try Trajectory(json: try JSONValue.parse(String(decoding: $0, as: UTF8.self))) }
            .filter { HeldOutSlice.contains($0.id) && Self.tools(of: $0).contains(tool) }
    }

    /// Number of trajectories stored.
    public var count: Int { lock.withLock { ids.count } }
}

/// A dataset file that does not hold what it should.
struct TrajectoryDatasetError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
