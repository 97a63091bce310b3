// TrajectoryDataset opened on damaged files: a line that cannot be read is moved to
// `trajectories.jsonl.rejected` and the good ones are kept, a torn last line is cut off, and a
// corrupt `state.json` is moved aside — none of them stops the trainer from starting.
import Foundation
import ParaTool
import ParaToolService
import ParaToolTraining
import Testing

@Suite struct TrajectoryDatasetTests {
    func trajectory(_ id: String, city: String = "Oslo") -> Trajectory {
        Trajectory(id: id, query: "Weather in \(city)?", candidateTools: ["get_weather"],
                   steps: [Step(calls: [ToolCall(name: "get_weather", arguments: .object(["city": .string(city)]))], observation: "")],
                   outcome: .solved, source: "test")
    }

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dataset-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The line the serializer wrote for `{"city": 1e999}` before such numbers were refused.
    func unreadableLine() -> String {
        trajectory("bad").json.serialized().replacingOccurrences(of: #""Oslo""#, with: "Infinity")
    }

    @Test func anUnreadableLineIsSetAsideAndTheRestKept() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("trajectories.jsonl")
        let bad = unreadableLine()
        #expect(bad.contains("Infinity"))
        let good = [trajectory("t1").json.serialized(), trajectory("t2", city: "Rome").json.serialized()]
        try Data((good[0] + "\n" + bad + "\n" + good[1] + "\n" + #"{"id": "torn"#).utf8).write(to: log)

        let dataset = try TrajectoryDataset(directory: directory)
        #expect(dataset.rejectedAtOpen.map(\.line) == [2], "the second line is reported")
        #expect(dataset.rejectedAtOpen.first?.reason.contains("found 'I'") == true, "\(dataset.rejectedAtOpen)")
        #expect(dataset.count == 2)
        #expect(dataset.counts == ["get_weather": 2])
        #expect(try String(contentsOf: log, encoding: .utf8) == good.map { $0 + "\n" }.joined(), "the good lines stay, in order")
        let rejected = log.appendingPathExtension("rejected")
        #expect(try String(contentsOf: rejected, encoding: .utf8) == bad + "\n", "the bad line is kept aside, not lost")

        // The dataset works on: appends, snapshots, and a second open finds nothing more to set aside.
        #expect(try dataset.append([trajectory("t3")]).stored.map(\.id) == ["t3"])
        try dataset.snapshot(to: directory.appendingPathComponent("snapshot.jsonl"), withoutHeldOut: true)
        let reopened = try TrajectoryDataset(directory: directory)
        #expect(reopened.count == 3 && reopened.rejectedAtOpen.isEmpty)
        #expect(try String(contentsOf: rejected, encoding: .utf8) == bad + "\n")
    }

    /// `state.json` records what was trained. Before, a corrupt one was read as empty without a
    /// word (every tool became due again, and the file was overwritten at the next training): it
    /// is now moved to `state.json.rejected` for the owner to see, and reported.
    @Test func aCorruptStateFileIsMovedAside() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try TrajectoryDataset(directory: directory)
        try first.append([trajectory("t1"), trajectory("t2")])
        try first.markTrained(["get_weather"])
        #expect(try TrajectoryDataset(directory: directory).due(threshold: 1).isEmpty, "an intact state survives the reopen")

        let state = directory.appendingPathComponent("state.json")
        let corrupt = Data(#"{"get_weather": 2"#.utf8)
        try corrupt.write(to: state)
        let reopened = try TrajectoryDataset(directory: directory)
        #expect(reopened.count == 2)
        #expect(reopened.stateRejected?.contains("state.json moved to state.json.rejected") == true, "\(String(describing: reopened.stateRejected))")
        #expect(try Data(contentsOf: state.appendingPathExtension("rejected")) == corrupt, "the corrupt state is kept aside")
        #expect(!FileManager.default.fileExists(atPath: state.path))
        #expect(reopened.due(threshold: 1) == ["get_weather"], "what was trained is unknown: the tool is due again")
    }

    /// The dataset had no disk quota: whoever could produce to `trajectories` or `feedback` could
    /// fill the trainer's disk. Past `maxBytes` new episodes are refused and returned as such (the
    /// trainer logs and counts them); what is stored stays, and a reopen keeps the quota.
    @Test func newEpisodesPastTheQuotaAreRefused() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // A stored line carries its 13-digit storage stamp.
        var stamped = trajectory("t1")
        stamped.storedUnixMs = 1_765_000_000_000
        let line = stamped.json.serialized().utf8.count + 1
        let dataset = try TrajectoryDataset(directory: directory, maxBytes: Int64(2 * line + line / 2))
        let first = try dataset.append([trajectory("t1"), trajectory("t2"), trajectory("t3")])
        #expect(first.stored.map(\.id) == ["t1", "t2"])
        #expect(first.overQuota.map(\.id) == ["t3"])
        #expect(dataset.count == 2 && dataset.bytes == Int64(2 * line))
        let reopened = try TrajectoryDataset(directory: directory, maxBytes: Int64(2 * line + line / 2))
        #expect(reopened.bytes == Int64(2 * line))
        let again = try reopened.append([trajectory("t3"), trajectory("t1")])
        #expect(again.stored.isEmpty && again.overQuota.map(\.id) == ["t3"], "a duplicate is not over the quota, only not new")
        #expect(TrajectoryDataset.defaultMaxBytes == 1 << 30)
    }

    /// `remove` rewrites the log without what it selects (and the set-aside lines naming it), the
    /// counts follow, and `expire` removes what was stored before the cutoff.
    @Test func removesAndExpiresEpisodes() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("trajectories.jsonl")
        try Data((unreadableLine().replacingOccurrences(of: #""bad""#, with: #""secret-1""#) + "\n").utf8).write(to: log)
        let dataset = try TrajectoryDataset(directory: directory)
        #expect(dataset.rejectedAtOpen.count == 1)
        var old = trajectory("old", city: "Lima")
        old.storedUnixMs = 1_000
        var secret = trajectory("secret-1", city: "Zanzibar")
        secret.requestSource = "agent:alice"
        let stored = try dataset.append([old, secret, trajectory("t1"), trajectory("t2", city: "Rome")]).stored
        #expect(stored.map(\.storedUnixMs).dropFirst().allSatisfy { ($0 ?? 0) > 1_000_000 }, "stamped when stored")
        #expect(stored.first?.storedUnixMs == 1_000, "a stamp it carries is kept")
        try dataset.markTrained(["get_weather"])

        #expect(try dataset.remove(textMatches: ["secret-1"]) { $0.matches(requestID: "", source: "agent:alice") } == 1)
        #expect(dataset.count == 3 && dataset.counts == ["get_weather": 3])
        #expect(try !String(contentsOf: log, encoding: .utf8).contains("Zanzibar"))
        #expect(try String(contentsOf: log.appendingPathExtension("rejected"), encoding: .utf8).isEmpty, "the set-aside line naming it went")
        #expect(dataset.due(threshold: 1).isEmpty, "trained counts were lowered with the removal")

        #expect(try dataset.expire(storedBefore: 2_000) == 1)
        #expect(try !String(contentsOf: log, encoding: .utf8).contains("Lima"))
        let reopened = try TrajectoryDataset(directory: directory)
        #expect(reopened.count == 2)
        #expect(try reopened.append([secret]).stored.count == 1, "a removed id is new again to the dataset (the trainer's forget log refuses it)")
    }
}
