// What every training stage reports after each step — TrainingProgress (step, loss, tokens/s,
// ETA), the handler that receives it and may ask the run to stop — and MetricsLog, which appends
// each report as one JSON line.
import Foundation
import ParaTool

/// One step's report.
public struct TrainingProgress: Sendable {
    /// `pretrain`, `gate`, `joint` or `global`.
    public var stage: String
    /// The job within the stage: the tool for `pretrain`, otherwise the stage's name.
    public var job: String
    /// Steps done (1-based).
    public var step: Int
    /// The job's total steps.
    public var totalSteps: Int
    /// The step's mean loss over its batch.
    public var loss: Float
    /// The learning rate the step used.
    public var learningRate: Float
    /// The gradients' global norm before clipping (the largest over the step's optimisers).
    public var gradientNorm: Float
    /// Tokens (or, for the gate, scored candidates) the step processed.
    public var tokens: Int
    /// Tokens per second since this run of the job started.
    public var tokensPerSecond: Double
    /// Seconds since this run of the job started.
    public var elapsedSeconds: Double
    /// Estimated seconds to the job's end at the pace so far.
    public var etaSeconds: Double

    /// The report as a JSON object (one metrics line).
    public var json: JSONValue {
        .object(JSONObject([
            ("stage", .string(stage)), ("job", .string(job)), ("step", .int(Int64(step))), ("total_steps", .int(Int64(totalSteps))),
            ("loss", .double(Double(loss))), ("lr", .double(Double(learningRate))), ("grad_norm", .double(Double(gradientNorm))),
            ("tokens", .int(Int64(tokens))), ("tokens_per_s", .double((tokensPerSecond * 10).rounded() / 10)),
            ("elapsed_s", .double((elapsedSeconds * 1000).rounded() / 1000)), ("eta_s", .double(etaSeconds.rounded())),
            ("time_unix_ms", .int(Int64((Date().timeIntervalSince1970 * 1000).rounded()))),
        ]))
    }

    /// `stage job  step 12/80  loss 1.2345  150 tok/s  ETA 1m20s`, for a terminal line.
    public var line: String {
        "\(stage) \(job)  step \(step)/\(totalSteps)  loss " + String(format: "%.4f  %.0f tok/s", loss, tokensPerSecond)
            + "  ETA \(Self.duration(etaSeconds))"
    }

    /// `45s`, `3m05s`, `1h02m`.
    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
    }
}

/// Receives each step's report; returning false stops the job after a checkpoint (the run can be
/// resumed later from it).
public typealias ProgressHandler = (TrainingProgress) -> Bool

/// Appends reports to a JSON Lines file. When several processes train in parallel, give each its
/// own file.
public final class MetricsLog {
    private let handle: FileHandle?

    /// A log appending to `url` (created if missing); nil writes nothing.
    public init(url: URL?) throws {
        guard let url else { handle = nil; return }
        if !FileManager.default.fileExists(atPath: url.path) {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw ToolFormatError("cannot create the metrics file \(url.path)")
            }
        }
        handle = try FileHandle(forWritingTo: url)
        try handle?.seekToEnd()
    }

    deinit { try? handle?.close() }

    /// Writes one line for `progress`.
    public func append(_ progress: TrainingProgress) throws {
        try handle?.write(contentsOf: Data((progress.json.serialized(asciiOnly: false) + "\n").utf8))
    }

    /// The reporter that logs each step and then asks `next`.
    public func recording(then next: @escaping ProgressHandler) -> ProgressHandler {
        { progress in
            try? self.append(progress)
            return next(progress)
        }
    }
}

/// Running throughput and ETA of one job.
struct StepClock {
    private let start = Date()
    private let firstStep: Int
    private var tokens = 0

    /// A clock for a run that starts after `firstStep` steps were already done (resume).
    init(firstStep: Int) { self.firstStep = firstStep }

    /// Records a finished step and returns (elapsed, tokens/s, ETA).
    mutating func tick(step: Int, total: Int, tokens stepTokens: Int) -> (elapsed: Double, rate: Double, eta: Double) {
        tokens += stepTokens
        let elapsed = Date().timeIntervalSince(start)
        let done = max(1, step - firstStep)
        return (elapsed, Double(tokens) / max(elapsed, 1e-9), elapsed / Double(done) * Double(max(0, total - step)))
    }
}
