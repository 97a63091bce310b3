// FeedbackJoin: feedback on served requests becomes labelled episodes (solved: the served calls;
// unsolved with a correction: the corrected calls after the request's history), and every other
// piece of feedback is accounted for (unsolved without correction, duplicate, late, waiting then
// joined or unknown, invalid).
import Foundation
import ParaTool
import ParaToolService
import ParaToolTraining
import Testing
import Wire

@Suite struct FeedbackJoinTests {
    func candidate(_ id: String, calls: [ToolCall] = [ToolCall(name: "get_weather", arguments: .object(["city": .string("Pariss")]))]) -> Trajectory {
        Trajectory(id: id, query: "Weather in Paris?", candidateTools: ["get_weather", "set_timer"],
                   steps: [Step(calls: [ToolCall(name: "set_timer", arguments: .object([:]))], observation: "ok"), Step(calls: calls, observation: "")],
                   outcome: .unknown, source: "served:w1")
    }

    func episode(_ outcomes: [FeedbackJoin.Outcome]) -> Trajectory? {
        guard outcomes.count == 1, case .labelled(let t) = outcomes[0] else { return nil }
        return t
    }

    @Test func solvedAndCorrectedFeedbackLabelEpisodes() throws {
        var join = FeedbackJoin(window: 8)
        #expect(join.add(candidate: candidate("a")) == [])
        #expect(join.add(candidate: candidate("b")) == [])
        #expect(FeedbackJoin.isCandidate(candidate("a")))

        let solved = try #require(episode(join.add(feedback: WireFeedback(requestID: "a", outcome: .solved, source: "agent"))))
        #expect(solved.id == "a#feedback" && solved.outcome == .solved && solved.source == "feedback:agent")
        #expect(solved.steps == candidate("a").steps, "the served calls are the target")
        #expect(!FeedbackJoin.isCandidate(solved))

        let fix = WireFeedback(requestID: "b", outcome: .unsolved,
                               correctedCalls: [WireToolCall(name: "get_weather", argumentsJSON: #"{"city": "Paris"}"#)], source: "human")
        let corrected = try #require(episode(join.add(feedback: fix)))
        #expect(corrected.steps.count == 2 && corrected.steps[0] == candidate("b").steps[0], "the history stays")
        #expect(corrected.steps[1].calls == [ToolCall(name: "get_weather", arguments: .object(["city": .string("Paris")]))])
        #expect(corrected.source == "correction:human" && corrected.query == "Weather in Paris?")
        #expect(join.add(feedback: fix) == [.duplicate], "a second report on a joined request changes nothing")
        #expect(join.candidateCount == 0)
    }

    @Test func everyOtherFeedbackIsAccountedFor() {
        var join = FeedbackJoin(window: 2)
        _ = join.add(candidate: candidate("u"))
        #expect(join.add(feedback: WireFeedback(requestID: "u", outcome: .unsolved)) == [.unsolvedWithoutCorrection])

        // A correction whose arguments are not an object is refused, and the candidate stays.
        _ = join.add(candidate: candidate("x"))
        let bad = join.add(feedback: WireFeedback(requestID: "x", outcome: .unsolved, correctedCalls: [WireToolCall(name: "t", argumentsJSON: "[1]")]))
        guard case .invalid(let reason)? = bad.first, bad.count == 1 else { Issue.record("\(bad)"); return }
        #expect(reason.contains("corrected_calls[0].arguments_json"))
        #expect(episode(join.add(feedback: WireFeedback(requestID: "x", outcome: .solved))) != nil)

        // Feedback before its candidate waits, then joins when the candidate comes.
        #expect(join.add(feedback: WireFeedback(requestID: "e", outcome: .solved)) == [.waiting])
        #expect(join.add(feedback: WireFeedback(requestID: "e", outcome: .solved)) == [.duplicate])
        #expect(episode(join.add(candidate: candidate("e")))?.id == "e#feedback")

        // The window holds two candidates: the oldest leaves, and its feedback is late.
        for id in ["c1", "c2", "c3"] { _ = join.add(candidate: candidate(id)) }
        #expect(join.candidateCount == 2)
        #expect(join.add(feedback: WireFeedback(requestID: "c1", outcome: .solved)) == [.late])
        #expect(episode(join.add(feedback: WireFeedback(requestID: "c3", outcome: .solved))) != nil)

        // Feedback that never finds a candidate is pushed out of the waiting room as unknown.
        #expect(join.add(feedback: WireFeedback(requestID: "n1", outcome: .solved)) == [.waiting])
        #expect(join.add(feedback: WireFeedback(requestID: "n2", outcome: .solved)) == [.waiting])
        #expect(join.add(feedback: WireFeedback(requestID: "n3", outcome: .solved)) == [.waiting, .unknown(requestID: "n1")])
    }

    /// The journal replays into the same join; compaction keeps what the join holds.
    @Test func journalReplaysAndCompacts() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("join-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var join = FeedbackJoin(window: 2)
        let (journal, none) = try FeedbackJournal.open(directory: directory, into: &join)
        #expect(none.isEmpty)
        let early = WireFeedback(requestID: "w", outcome: .unsolved, correctedCalls: [WireToolCall(name: "get_weather", argumentsJSON: #"{"city": "Oslo"}"#)])
        _ = join.add(candidate: candidate("a"))
        _ = join.add(feedback: early)
        try journal.append([FeedbackJournal.line(candidate: candidate("a")), try FeedbackJournal.line(feedback: early)], join: join)

        var replayed = FeedbackJoin(window: 2)
        _ = try FeedbackJournal.open(directory: directory, into: &replayed)
        #expect(replayed.heldCandidates == [candidate("a")] && replayed.waitingFeedback == [early])
        #expect(episode(replayed.add(candidate: candidate("w")))?.source == "correction:")

        // Past four windows of lines the journal is rewritten with the join's state.
        for id in ["b", "c", "d", "e", "f", "g", "h"] {
            _ = join.add(candidate: candidate(id))
            try journal.append([FeedbackJournal.line(candidate: candidate(id))], join: join)
        }
        let lines = try String(contentsOf: journal.url, encoding: .utf8).split(separator: "\n")
        #expect(lines.count < 9, "compacted: \(lines.count) lines")
        var compacted = FeedbackJoin(window: 2)
        _ = try FeedbackJournal.open(directory: directory, into: &compacted)
        #expect(compacted.heldCandidates.map(\.id) == join.heldCandidates.map(\.id))
        #expect(compacted.waitingFeedback == join.waitingFeedback)
    }

    /// A correction the trainer could not store and read back is refused, not joined: a number
    /// beyond Double (1e999 would be written as `Infinity`, which no reader accepts) and arguments
    /// nested deeper than the wire allows (a dataset or journal line wraps them in a few more
    /// levels, and the reader stops at 512).
    @Test func refusesCorrectionsThatCouldNotBeReadBack() {
        var join = FeedbackJoin(window: 8)
        func correct(_ id: String, _ arguments: String) -> [FeedbackJoin.Outcome] {
            _ = join.add(candidate: candidate(id))
            return join.add(feedback: WireFeedback(requestID: id, outcome: .unsolved,
                                                   correctedCalls: [WireToolCall(name: "get_weather", argumentsJSON: arguments)]))
        }
        func nested(_ levels: Int) -> String {
            String(repeating: #"{"a": "#, count: levels - 1) + #"{"b": 1}"# + String(repeating: "}", count: levels - 1)
        }
        let infinite = correct("inf", #"{"city": 1e999}"#)
        guard case .invalid(let reason)? = infinite.first, infinite.count == 1 else { Issue.record("not refused: \(infinite)"); return }
        #expect(reason.contains("corrected_calls[0].arguments_json") && reason.contains("a finite number"), "\(reason)")

        let deep = correct("deep", nested(100))
        guard case .invalid(let why)? = deep.first, deep.count == 1 else { Issue.record("not refused: \(deep)"); return }
        #expect(why.contains("nested 100 levels deep"), "\(why)")

        #expect(episode(correct("limit", nested(64))) != nil, "64 levels are accepted")
    }

    /// A journal line that cannot be replayed (here a candidate holding `Infinity`, as the
    /// serializer wrote 1e999 before such numbers were refused) is moved to
    /// `feedback-join.jsonl.rejected`; the open replays every other line instead of throwing.
    @Test func journalSetsAsideAnUnreadableLine() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("join-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let early = WireFeedback(requestID: "w", outcome: .solved, source: "agent")
        let bad = FeedbackJournal.line(candidate: candidate("bad")).replacingOccurrences(of: #""Pariss""#, with: "Infinity")
        #expect(bad.contains("Infinity"))
        let url = directory.appendingPathComponent("feedback-join.jsonl")
        try Data([FeedbackJournal.line(candidate: candidate("a")), bad, try FeedbackJournal.line(feedback: early)].map { $0 + "\n" }.joined().utf8)
            .write(to: url)

        var join = FeedbackJoin(window: 4)
        let (journal, _) = try FeedbackJournal.open(directory: directory, into: &join)
        #expect(join.heldCandidates == [candidate("a")] && join.waitingFeedback == [early])
        #expect(try String(contentsOf: url.appendingPathExtension("rejected"), encoding: .utf8) == bad + "\n")
        #expect(try String(contentsOf: url, encoding: .utf8).split(separator: "\n").count == 2, "the bad line left the journal")
        #expect(journal.rejectedAtOpen.map(\.line) == [2])
    }

    /// The join was bounded by count only: ten thousand candidates of a megabyte each held ten
    /// gigabytes. Past `maxBytes` the oldest candidates leave (their feedback is then late) and the
    /// oldest waiting feedback is pushed out as unknown; each eviction is counted.
    @Test func candidatesAndWaitingFeedbackAreBoundedByBytes() throws {
        let big = Trajectory(id: "big0", query: String(repeating: "weather ", count: 200), candidateTools: ["get_weather"],
                             steps: [Step(calls: [ToolCall(name: "get_weather", arguments: .object([:]))], observation: "")],
                             outcome: .unknown, source: "served:w1")
        let size = FeedbackJoin.bytes(of: big)
        #expect(size > 1600)
        var join = FeedbackJoin(window: 100, maxBytes: 3 * size)
        for i in 0..<5 {
            var t = big
            t.id = "big\(i)"
            #expect(join.add(candidate: t) == [])
        }
        #expect(join.candidateCount == 3 && join.candidateBytes <= 3 * size)
        #expect(join.evictions == FeedbackJoin.Evictions(byCount: 0, byBytes: 2))
        #expect(join.add(feedback: WireFeedback(requestID: "big0", outcome: .solved)) == [.late])
        #expect(episode(join.add(feedback: WireFeedback(requestID: "big4", outcome: .solved))) != nil)

        // Waiting feedback has the same byte bound.
        let long = WireFeedback(requestID: "w0", outcome: .unsolved, correctedCalls: [
            WireToolCall(name: "get_weather", argumentsJSON: #"{"city": ""# + String(repeating: "x", count: size * 9 / 10) + #""}"#)], source: "agent")
        #expect(join.add(feedback: long) == [.waiting])
        var longer = long
        longer.requestID = "w1"
        #expect(join.add(feedback: longer) == [.waiting])
        longer.requestID = "w2"
        #expect(join.add(feedback: longer) == [.waiting])
        longer.requestID = "w3"
        #expect(join.add(feedback: longer) == [.waiting, .unknown(requestID: "w0")])
        #expect(join.waitingFeedback.count == 3 && join.waitingBytes <= 3 * size)
        #expect(join.evictions.byBytes == 3)
    }

    @Test func theDefaultByteBoundIsTwoHundredFiftySixMiB() {
        #expect(FeedbackJoin().maxBytes == 256 << 20)
        #expect(TrainerSettings(dataset: URL(fileURLWithPath: "/d"), store: URL(fileURLWithPath: "/s"), tools: nil).feedbackMaxBytes == 256 << 20)
    }
}
