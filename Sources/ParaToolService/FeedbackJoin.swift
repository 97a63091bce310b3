// FeedbackJoin: turns what agent backends report (`Feedback`, topic `feedback`) into labelled
// training episodes by joining it, by request id, with the trajectory candidates workers publish
// for served requests (outcome unknown, source `served:<worker>`). Solved feedback makes the
// served calls the target; unsolved feedback with corrected calls makes those the target; unsolved
// feedback without a correction is counted, never trained on. Candidates are kept for a bounded
// window, by count and by bytes; feedback that arrives before its candidate waits (bounded the same
// way; feedback for a request id no worker served waits too: requests carry no client identity,
// so it cannot be told apart before it leaves as unknown). Pure state: the trainer
// feeds it the messages of both topics in the order it polls them (FeedbackJournal keeps it
// across restarts).
import Foundation
import ParaTool
import ParaToolTraining
import Wire

/// The join of feedback with served trajectory candidates.
public struct FeedbackJoin: Sendable {
    /// What one piece of feedback (or a candidate that early feedback waited for) came to.
    public enum Outcome: Sendable, Equatable {
        /// A training episode: the query and history of the served request, the target calls.
        case labelled(Trajectory)
        /// Unsolved without a correction: counted, not trained on.
        case unsolvedWithoutCorrection
        /// The request already had feedback joined; this one changes nothing.
        case duplicate
        /// Its candidate left the window before the feedback came.
        case late
        /// No candidate (yet): the feedback waits for one.
        case waiting
        /// Feedback that waited the whole window for a candidate that never came.
        case unknown(requestID: String)
        /// A corrected call whose arguments are not one JSON object: for the dead-letter topic.
        case invalid(reason: String)

        /// The metric label.
        public var label: String {
            switch self {
            case .labelled: "joined"
            case .unsolvedWithoutCorrection: "unsolved_without_correction"
            case .duplicate: "duplicate"
            case .late: "late"
            case .waiting: "waiting"
            case .unknown: "unknown"
            case .invalid: "invalid"
            }
        }
    }

    /// Entries pushed out of the join to keep it within its bounds: the oldest candidates (their
    /// feedback is then late) and the oldest waiting feedback (unknown).
    public struct Evictions: Sendable, Equatable {
        /// Pushed out by `window`.
        public var byCount = 0
        /// Pushed out by `maxBytes`.
        public var byBytes = 0

        public init(byCount: Int = 0, byBytes: Int = 0) {
            self.byCount = byCount
            self.byBytes = byBytes
        }
    }

    /// Candidates kept; also how many early feedback messages wait and how many joined and
    /// evicted ids are remembered.
    public let window: Int
    /// Most bytes (`bytes(of:)`) the candidates may hold, and the waiting feedback as well.
    public let maxBytes: Int
    /// The default of `maxBytes`: 256 MiB.
    public static let defaultMaxBytes = 256 << 20
    private var candidates: [String: Trajectory] = [:]
    private var candidateOrder: [String] = []
    /// `bytes(of:)` of each candidate held, computed once.
    private var candidateSizes: [String: Int] = [:]
    private var early: [String: WireFeedback] = [:]
    private var earlyOrder: [String] = []
    private var joined = BoundedIDSet()
    private var evicted = BoundedIDSet()
    /// Bytes of the candidates held, and of the feedback waiting.
    public private(set) var candidateBytes = 0, waitingBytes = 0
    /// Entries pushed out since the join was made.
    public private(set) var evictions = Evictions()

    /// A join that keeps the last `window` candidates (at least 1) within `maxBytes` (at least 1).
    public init(window: Int = 10_000, maxBytes: Int = FeedbackJoin.defaultMaxBytes) {
        self.window = max(1, window)
        self.maxBytes = max(1, maxBytes)
        joined = BoundedIDSet(capacity: self.window)
        evicted = BoundedIDSet(capacity: self.window)
    }

    /// What a served candidate counts for against `maxBytes`: its JSON Lines form.
    public static func bytes(of t: Trajectory) -> Int { t.json.serialized().utf8.count }

    /// What waiting feedback counts for against `maxBytes`: its strings, plus 64 for the rest.
    public static func bytes(of f: WireFeedback) -> Int {
        64 + f.requestID.utf8.count + f.source.utf8.count + f.correctedCalls.reduce(0) { $0 + $1.name.utf8.count + $1.argumentsJSON.utf8.count }
    }

    /// Candidates held now.
    public var candidateCount: Int { candidates.count }

    /// The candidates held, oldest first.
    public var heldCandidates: [Trajectory] { candidateOrder.compactMap { candidates[$0] } }

    /// Feedback waiting for its candidate, oldest first.
    public var waitingFeedback: [WireFeedback] { earlyOrder.compactMap { early[$0] } }

    /// How much feedback waits for its candidate.
    public var waitingCount: Int { early.count }

    /// Drops the candidates and waiting feedback `candidate` and `feedback` select (forgetting a
    /// request or a source, the retention period); returns how many entries went. The journal
    /// must be compacted afterwards (`FeedbackJournal.compact`) for the files to forget them too.
    @discardableResult
    public mutating func remove(candidates candidate: (Trajectory) -> Bool, feedback: (WireFeedback) -> Bool) -> Int {
        let goneCandidates = candidateOrder.filter { candidates[$0].map(candidate) ?? false }
        for id in goneCandidates {
            candidates[id] = nil
            candidateBytes -= candidateSizes.removeValue(forKey: id) ?? 0
        }
        candidateOrder.removeAll { candidates[$0] == nil }
        let goneFeedback = earlyOrder.filter { early[$0].map(feedback) ?? false }
        for id in goneFeedback {
            if let f = early.removeValue(forKey: id) { waitingBytes -= Self.bytes(of: f) }
        }
        earlyOrder.removeAll { early[$0] == nil }
        return goneCandidates.count + goneFeedback.count
    }

    /// Whether a trajectory is a served candidate this join takes.
    public static func isCandidate(_ t: Trajectory) -> Bool { t.outcome == .unknown && t.source.hasPrefix("served") }

    /// Holds a served candidate; returns what feedback that waited for it came to (empty when
    /// none waited).
    public mutating func add(candidate t: Trajectory) -> [Outcome] {
        guard !joined.contains(t.id) else { return [] }
        if let feedback = early.removeValue(forKey: t.id) {
            earlyOrder.removeAll { $0 == t.id }
            waitingBytes -= Self.bytes(of: feedback)
            // Checked when it arrived, so the conversion succeeds.
            return [join(feedback, calls: (try? Self.correctedCalls(feedback)) ?? [], with: t)]
        }
        if candidates[t.id] == nil { candidateOrder.append(t.id) }
        candidates[t.id] = t
        let size = Self.bytes(of: t)
        candidateBytes += size - (candidateSizes.updateValue(size, forKey: t.id) ?? 0)
        // The newest candidate stays even when it alone is over the bytes.
        while candidateOrder.count > window || (candidateBytes > maxBytes && candidateOrder.count > 1) {
            if candidateOrder.count > window { evictions.byCount += 1 } else { evictions.byBytes += 1 }
            let old = candidateOrder.removeFirst()
            candidates[old] = nil
            candidateBytes -= candidateSizes.removeValue(forKey: old) ?? 0
            evicted.insert(old)
        }
        return []
    }

    /// Joins `feedback` with its candidate, or holds it until the candidate arrives (`.waiting`,
    /// followed by `.unknown` for the feedback that waited longest when the waiting room is full).
    public mutating func add(feedback: WireFeedback) -> [Outcome] {
        let calls: [ToolCall]
        do { calls = try Self.correctedCalls(feedback) } catch { return [.invalid(reason: "\(error)")] }
        let id = feedback.requestID
        if joined.contains(id) { return [.duplicate] }
        if let candidate = candidates.removeValue(forKey: id) {
            candidateOrder.removeAll { $0 == id }
            candidateBytes -= candidateSizes.removeValue(forKey: id) ?? 0
            return [join(feedback, calls: calls, with: candidate)]
        }
        if evicted.contains(id) { return [.late] }
        if early[id] != nil { return [.duplicate] }
        early[id] = feedback
        earlyOrder.append(id)
        waitingBytes += Self.bytes(of: feedback)
        var outcomes: [Outcome] = [.waiting]
        while earlyOrder.count > window || (waitingBytes > maxBytes && earlyOrder.count > 1) {
            if earlyOrder.count > window { evictions.byCount += 1 } else { evictions.byBytes += 1 }
            let old = earlyOrder.removeFirst()
            if let gone = early.removeValue(forKey: old) { waitingBytes -= Self.bytes(of: gone) }
            outcomes.append(.unknown(requestID: old))
        }
        return outcomes
    }

    /// The corrected calls in the training form (valid tool names, arguments JSON objects).
    private static func correctedCalls(_ feedback: WireFeedback) throws -> [ToolCall] {
        try feedback.correctedCalls.enumerated().map {
            try requireValidToolName($1.name, field: "corrected_calls[\($0)].name")
            return try ToolCall(wire: $1, field: "corrected_calls[\($0)]")
        }
    }

    /// The episode for checked feedback (its corrected calls converted) and its candidate.
    private mutating func join(_ feedback: WireFeedback, calls: [ToolCall], with candidate: Trajectory) -> Outcome {
        joined.insert(candidate.id)
        var episode = candidate
        episode.id = candidate.id + "#feedback"
        episode.outcome = .solved
        if feedback.outcome == .solved {
            episode.source = "feedback:" + feedback.source
            return .labelled(episode)
        }
        guard !calls.isEmpty else { return .unsolvedWithoutCorrection }
        // The served request's history, then the calls that were needed instead of the served ones.
        episode.steps = Array(candidate.steps.dropLast()) + [Step(calls: calls, observation: "")]
        episode.source = "correction:" + feedback.source
        return .labelled(episode)
    }
}

/// The last `capacity` ids inserted, for membership tests.
struct BoundedIDSet: Sendable {
    private var members: Set<String> = []
    private var order: [String] = []
    private var head = 0
    let capacity: Int

    init(capacity: Int = 1) { self.capacity = max(1, capacity) }

    func contains(_ id: String) -> Bool { members.contains(id) }

    mutating func insert(_ id: String) {
        guard members.insert(id).inserted else { return }
        order.append(id)
        if order.count - head > capacity {
            members.remove(order[head])
            head += 1
            if head > capacity { order.removeFirst(head); head = 0 }
        }
    }
}
