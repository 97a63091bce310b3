// AdapterReview: the promotion decision about an adapter version published held for review (a
// retrained candidate), kept beside the immutable version as `<root>/<tool>/.reviews/<version>.json`.
// A held version is served only once a review promotes it; a rejected one stays in the store with
// its reason and scores, and `AdapterStore.latest` passes over it.
import Foundation
import LLM

/// What a held-out scoring measured for one adapter version.
public struct HeldOutScore: Sendable, Equatable, Codable {
    /// Held-out steps scored.
    public var episodes: Int
    /// Steps whose greedy, schema-constrained answer is exactly the gold calls.
    public var correct: Int
    /// Mean negative log-likelihood per target token of the gold calls (teacher-forced).
    public var meanNLL: Double

    public init(episodes: Int, correct: Int, meanNLL: Double) {
        self.episodes = episodes
        self.correct = correct
        self.meanNLL = meanNLL
    }

    /// `correct / episodes` (0 when nothing was scored).
    public var accuracy: Double { episodes == 0 ? 0 : Double(correct) / Double(episodes) }

    enum CodingKeys: String, CodingKey {
        case episodes, correct
        case meanNLL = "mean_nll"
    }
}

/// The decision about one held version.
public struct AdapterReview: Sendable, Equatable, Codable {
    public enum Decision: String, Sendable, Codable {
        /// Served from now on (announced to the workers).
        case promoted
        /// Never served; kept with the reason.
        case rejected
    }

    public var decision: Decision
    /// Why, in words (e.g. "held-out accuracy 40.0% below serving v000002's 60.0%").
    public var reason: String
    /// The version serving when the decision was taken (nil: the tool had none).
    public var servingVersion: String?
    /// The candidate's score on the whole held-out slice.
    public var candidate: HeldOutScore
    /// The serving version's score on the same slice (nil: no serving version).
    public var serving: HeldOutScore?
    /// The candidate's and the serving version's scores on the established slice: the held-out
    /// steps the serving version was itself promoted on (nil when that slice is empty).
    public var candidateEstablished: HeldOutScore?
    public var servingEstablished: HeldOutScore?
    /// Held-out steps of the tool when the decision was taken: a promoted version's established
    /// slice is the first this many held-out steps, for the next review.
    public var heldOutSteps: Int
    /// Decision time, milliseconds since the Unix epoch.
    public var decidedUnixMs: Int64

    public init(decision: Decision, reason: String, servingVersion: String?, candidate: HeldOutScore, serving: HeldOutScore?,
                candidateEstablished: HeldOutScore? = nil, servingEstablished: HeldOutScore? = nil, heldOutSteps: Int,
                decidedUnixMs: Int64 = Int64((Date().timeIntervalSince1970 * 1000).rounded())) {
        self.decision = decision
        self.reason = reason
        self.servingVersion = servingVersion
        self.candidate = candidate
        self.serving = serving
        self.candidateEstablished = candidateEstablished
        self.servingEstablished = servingEstablished
        self.heldOutSteps = heldOutSteps
        self.decidedUnixMs = decidedUnixMs
    }

    enum CodingKeys: String, CodingKey {
        case decision, reason, candidate, serving
        case servingVersion = "serving_version"
        case candidateEstablished = "candidate_established"
        case servingEstablished = "serving_established"
        case heldOutSteps = "held_out_steps"
        case decidedUnixMs = "decided_unix_ms"
    }
}

extension AdapterStore {
    /// The folder of a tool's review files.
    static func reviewsDirectory(root: URL, tool: String) -> URL {
        root.appendingPathComponent(tool, isDirectory: true).appendingPathComponent(".reviews", isDirectory: true)
    }

    /// The review of `version` of `tool`, or nil when none was recorded (a version not held for
    /// review never has one; a held one without one is still pending).
    public func review(tool: String, version: String) throws -> AdapterReview? {
        _ = try manifest(tool: tool, version: version)
        let url = Self.reviewsDirectory(root: root, tool: tool).appendingPathComponent("\(version).json")
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        guard let data = try? Data(contentsOf: url) else { throw AdapterStoreError.invalidReview(path: url.path, reason: "cannot read the file") }
        do { return try JSONDecoder().decode(AdapterReview.self, from: data) } catch {
            throw AdapterStoreError.invalidReview(path: url.path, reason: "\(error)")
        }
    }

    /// Records the decision about a version published held for review. Decisions are final: a
    /// second review of the same version, or a review of a version that was not held, throws.
    public func recordReview(_ review: AdapterReview, tool: String, version: String) throws {
        let entry = try manifest(tool: tool, version: version)
        guard entry.heldForReview else { throw AdapterStoreError.notHeldForReview(tool: tool, version: version) }
        guard try self.review(tool: tool, version: version) == nil else {
            throw AdapterStoreError.alreadyReviewed(tool: tool, version: version)
        }
        let directory = Self.reviewsDirectory(root: root, tool: tool)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFiles.write(try encoder.encode(review), to: directory.appendingPathComponent("\(version).json"))
    }

    /// Whether workers may serve `version`: it was not held for review, or a review promoted it.
    public func isServable(_ version: AdapterVersion) throws -> Bool {
        guard version.heldForReview else { return true }
        return try review(tool: version.tool, version: version.version)?.decision == .promoted
    }
}
