// PromotionPolicy: whether a retrained adapter may replace the serving one — never worse on the
// held-out steps, and never worse on the steps the serving version was itself promoted on.
import Foundation
import ParaTool

/// The no-regression rule of the online trainer.
///
/// "Worse" compares exact-match accuracy first and, at equal accuracy, the mean NLL of the gold
/// calls (so the rule also decides between versions that answer the same steps right, and on a
/// model too small to answer any). A candidate is promoted when
/// - the tool has no serving version (nothing to regress from), or
/// - it has at least `minimumSteps` held-out steps to be scored on (an accuracy on one or two
///   steps is a coin toss: a run promoted versions that fell from 100% to 67% to 33% on held-out
///   phrasings on slices of 0-1 steps), is not worse than the serving version on all of them,
///   and not worse on the established slice: the held-out steps that existed when the serving
///   version was promoted. That slice is what makes a batch of wrong labels harmless: the steps
///   it adds to the held-out slice cannot outvote the ones the serving version was judged on.
public enum PromotionPolicy {
    /// Fewest held-out steps a candidate is judged on; with fewer it is held (rejected, kept in
    /// the store) until more labelled episodes arrive.
    public static let minimumSteps = 3
    /// Mean NLL below which a version fits the gold calls: at equal accuracy two versions that both
    /// do (NLL 0.0001 against 0.0002) are a tie, not a regression. Above it the NLL decides
    /// strictly, since on a model too small to answer anything it is the only evidence.
    public static let fitNLL = 0.01

    /// The decision and its reason.
    public static func decide(candidate: HeldOutScore, serving: (version: String, score: HeldOutScore)?,
                              candidateEstablished: HeldOutScore? = nil, servingEstablished: HeldOutScore? = nil)
        -> (decision: AdapterReview.Decision, reason: String) {
        guard let serving else { return (.promoted, "first version of the tool: nothing to regress from") }
        guard candidate.episodes > 0 else {
            return (.rejected, "no held-out steps to score on yet (\(HeldOutSlice.percent)% of episodes are held out, by id)")
        }
        guard candidate.episodes >= minimumSteps else {
            return (.rejected, "only \(candidate.episodes) held-out steps, fewer than the \(minimumSteps) a version is judged on "
                + "(\(HeldOutSlice.percent)% of episodes are held out, by id): held until more arrive")
        }
        if let c = candidateEstablished, let s = servingEstablished, c.episodes > 0, let worse = worse(c, than: s) {
            return (.rejected, "on the \(c.episodes) held-out steps serving \(serving.version) was promoted on: \(worse)")
        }
        if let worse = worse(candidate, than: serving.score) {
            return (.rejected, "on \(candidate.episodes) held-out steps, against serving \(serving.version): \(worse)")
        }
        return (.promoted, "on \(candidate.episodes) held-out steps: accuracy \(percent(candidate.accuracy)) (serving \(serving.version) "
            + "\(percent(serving.score.accuracy))), NLL \(format(candidate.meanNLL)) (\(format(serving.score.meanNLL)))")
    }

    /// Why `a` is worse than `b`, or nil when it is not.
    static func worse(_ a: HeldOutScore, than b: HeldOutScore) -> String? {
        if a.accuracy < b.accuracy { return "accuracy \(percent(a.accuracy)) below \(percent(b.accuracy))" }
        if a.accuracy == b.accuracy && a.meanNLL > b.meanNLL && !(a.meanNLL < fitNLL && b.meanNLL < fitNLL) {
            return "accuracy equal (\(percent(a.accuracy))) and NLL \(format(a.meanNLL)) above \(format(b.meanNLL))"
        }
        return nil
    }

    private static func percent(_ x: Double) -> String { String(format: "%.1f%%", 100 * x) }
    private static func format(_ x: Double) -> String { String(format: "%.4f", x) }
}
