// TrajectoryDataset opened on damaged files: a line that cannot be read is moved to
// `trajectories.jsonl.rejected` and the good ones are kept, and a torn last line is cut off —
// neither stops the trainer from starting.
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
        #expect(try dataset.append([trajectory("t3")]).map(\.id) == ["t3"])
        try dataset.snapshot(to: directory.appendingPathComponent("snapshot.jsonl"), withoutHeldOut: true)
        let reopened = try TrajectoryDataset(directory: directory)
        #expect(reopened.count == 3 && reopened.rejectedAtOpen.isEmpty)
        #expect(try String(contentsOf: rejected, encoding: .utf8) == bad + "\n")
    }
}
