// Checkpoints of training jobs and the step loop that writes them. A checkpoint holds every
// trained tensor, the AdamW moments and step counts, the job's step and seed (the data order is a
// pure function of seed, job and epoch, so the seed and step are the whole random state), and a
// fingerprint of the data and settings. It is written as a new directory and then named in
// `LATEST` (an atomic rename), so a crash leaves the previous checkpoint intact.
import Foundation
import LLM
import ParaTool
import Tensor

/// A job's saved state (`state.json` of a checkpoint).
public struct CheckpointState: Codable, Equatable, Sendable {
    /// The stage (`pretrain`, `gate`, `joint`, `global`) and the job within it (a tool, or the stage's name).
    public var stage: String
    public var job: String
    /// Steps done, and the job's total.
    public var step: Int
    public var totalSteps: Int
    /// The seed of the job's data order.
    public var seed: UInt64
    /// SHA-1 of the job's training data and settings; resuming with other data is refused.
    public var fingerprint: String
    /// The optimiser groups (e.g. tool names), in the order of the tensors.
    public var groups: [String]
    /// Each group's AdamW step count.
    public var optimizerSteps: [Int]
    /// True once the job ran all its steps.
    public var complete: Bool
    /// Versions published from the finished job, by tool (set after publishing).
    public var published: [String: String]
}

/// Trainable tensors with their optimiser, saved and restored together.
public struct ParameterGroup {
    /// The group's name in checkpoints (a tool, or `gate`).
    public var name: String
    /// The trainable buffers, in the optimiser's order.
    public var parameters: [FloatBuffer]
    /// The optimiser over exactly `parameters`.
    public var optimizer: AdamW

    /// A group; `optimizer` must have been made for `parameters`.
    public init(name: String, parameters: [FloatBuffer], optimizer: AdamW) {
        self.name = name
        self.parameters = parameters
        self.optimizer = optimizer
    }
}

/// Checkpoints of jobs under one root: `<root>/<stage>/<job>/step-NNNNNN/{state.json,
/// tensors.safetensors}` and `<root>/<stage>/<job>/LATEST` naming the newest complete one.
public struct CheckpointDirectory: Sendable {
    /// The directory holding every job's checkpoints.
    public let root: URL

    /// Checkpoints under `root` (created when the first one is saved).
    public init(root: URL) { self.root = root }

    private func jobDirectory(_ stage: String, _ job: String) -> URL {
        root.appendingPathComponent(stage, isDirectory: true).appendingPathComponent(job, isDirectory: true)
    }

    /// Saves `state` with the groups' parameters and moments, then points `LATEST` at it and
    /// removes older checkpoints of the job.
    public func save(_ state: CheckpointState, groups: [ParameterGroup]) throws {
        let dir = jobDirectory(state.stage, state.job)
        let fm = FileManager.default
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        let name = String(format: "step-%06d", state.step)
        let tmp = dir.appendingPathComponent(".tmp-\(UUID().uuidString)", isDirectory: true)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: false)
        defer { try? fm.removeItem(at: tmp) }
        var tensors = [SafetensorsTensor]()
        for (g, group) in groups.enumerated() {
            let (m, v) = group.optimizer.moments
            for (k, p) in group.parameters.enumerated() {
                tensors.append(SafetensorsTensor(name: "\(g).param.\(k)", shape: [p.count], buffer: p))
                tensors.append(SafetensorsTensor(name: "\(g).m.\(k)", shape: [p.count], values: m[k]))
                tensors.append(SafetensorsTensor(name: "\(g).v.\(k)", shape: [p.count], values: v[k]))
            }
        }
        try SafetensorsWriter.write(tensors, metadata: ["format": "paratool-checkpoint"], to: tmp.appendingPathComponent("tensors.safetensors"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFiles.write(try encoder.encode(state), to: tmp.appendingPathComponent("state.json"))
        let final = dir.appendingPathComponent(name, isDirectory: true)
        if fm.fileExists(atPath: final.path) {
            // The same step saved again (e.g. after publishing): move the old one aside first.
            let old = dir.appendingPathComponent(".old-\(UUID().uuidString)", isDirectory: true)
            try fm.moveItem(at: final, to: old)
            try fm.moveItem(at: tmp, to: final)
            try? fm.removeItem(at: old)
        } else {
            try fm.moveItem(at: tmp, to: final)
        }
        try DurableFiles.syncDirectory(dir)
        try DurableFiles.write(Data(name.utf8), to: dir.appendingPathComponent("LATEST"))
        for entry in try fm.contentsOfDirectory(atPath: dir.path) where entry.hasPrefix("step-") && entry != name {
            try? fm.removeItem(at: dir.appendingPathComponent(entry))
        }
    }

    /// Removes every checkpoint of `job` of `stage` (nothing to do when there is none), so the
    /// job starts again from step 0 on the next run.
    public func remove(stage: String, job: String) throws {
        let dir = jobDirectory(stage, job)
        guard FileManager.default.fileExists(atPath: dir.path) else { return }
        try FileManager.default.removeItem(at: dir)
    }

    /// The newest checkpoint of `job` of `stage`, or nil when there is none.
    /// - Throws: when the checkpoint's tensors were pruned after publishing (`markPublished`).
    public func latest(stage: String, job: String) throws -> (state: CheckpointState, tensors: SafetensorsFile)? {
        guard let (state, cp) = try newest(stage: stage, job: job) else { return nil }
        let tensors = cp.appendingPathComponent("tensors.safetensors")
        guard FileManager.default.fileExists(atPath: tensors.path) else {
            throw ToolFormatError("the checkpoint of \(job) (\(stage)) holds no tensors: they were removed once its adapters were "
                                  + "published as \(state.published.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        }
        return (state, try SafetensorsFile(path: tensors.path))
    }

    /// The state of `job`'s newest checkpoint (without its tensors, which a published job no
    /// longer keeps), or nil when there is none.
    public func state(stage: String, job: String) throws -> CheckpointState? {
        try newest(stage: stage, job: job)?.state
    }

    private func newest(stage: String, job: String) throws -> (state: CheckpointState, directory: URL)? {
        let dir = jobDirectory(stage, job)
        guard let pointer = try? String(contentsOf: dir.appendingPathComponent("LATEST"), encoding: .utf8) else { return nil }
        let cp = dir.appendingPathComponent(pointer.trimmingCharacters(in: .whitespacesAndNewlines), isDirectory: true)
        return (try JSONDecoder().decode(CheckpointState.self, from: Data(contentsOf: cp.appendingPathComponent("state.json"))), cp)
    }

    /// Records in `job`'s latest checkpoint which versions its adapters were published as, so a
    /// resumed run skips the finished job, and removes the checkpoint's tensors (parameters and
    /// AdamW moments, three float32 copies of every adapter): the store holds what is served,
    /// and a resume needs only to know the job is done.
    public func markPublished(stage: String, job: String, versions: [String: String]) throws {
        guard let newest = try newest(stage: stage, job: job) else { return }
        var state = newest.state
        let cp = newest.directory
        state.published = versions
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFiles.write(try encoder.encode(state), to: cp.appendingPathComponent("state.json"))
        if state.complete { try? FileManager.default.removeItem(at: cp.appendingPathComponent("tensors.safetensors")) }
    }

    /// Restores the groups' parameters and optimiser states from a checkpoint.
    public static func restore(_ groups: [ParameterGroup], state: CheckpointState, tensors: SafetensorsFile) throws {
        guard state.groups == groups.map(\.name) else {
            throw ToolFormatError("checkpoint of \(state.job) holds groups \(state.groups), the job has \(groups.map(\.name))")
        }
        for (g, group) in groups.enumerated() {
            var m = [[Float]](), v = [[Float]]()
            for (k, p) in group.parameters.enumerated() {
                let saved = try tensors.load("\(g).param.\(k)").toArray()
                guard saved.count == p.count else { throw ToolFormatError("checkpoint tensor \(g).param.\(k) has the wrong size") }
                p.write(saved)
                m.append(try tensors.load("\(g).m.\(k)").toArray())
                v.append(try tensors.load("\(g).v.\(k)").toArray())
            }
            group.optimizer.restore(step: state.optimizerSteps[g], m: m, v: v)
        }
    }
}

/// What one optimisation step did.
struct StepOutcome {
    var loss: Float
    var tokens: Int
    var learningRate: Float
    var gradientNorm: Float
}

/// Runs a job's steps with checkpoints, resume and progress reports.
struct JobLoop {
    var stage: String
    var job: String
    var totalSteps: Int
    var seed: UInt64
    var fingerprint: String
    var checkpointEvery: Int
    var checkpoints: CheckpointDirectory?
    var resume: Bool

    /// The saved state to continue from (parameters and optimisers restored into `groups`), or
    /// nil to start at step 0.
    func restore(_ groups: [ParameterGroup]) throws -> CheckpointState? {
        guard resume, let checkpoints, let (state, tensors) = try checkpoints.latest(stage: stage, job: job) else { return nil }
        guard state.fingerprint == fingerprint else {
            throw ToolFormatError("the checkpoint of \(job) in \(checkpoints.root.path) was made with other data or settings; "
                                  + "remove it or run without --resume")
        }
        try CheckpointDirectory.restore(groups, state: state, tensors: tensors)
        return state
    }

    /// Runs steps from `start` to `totalSteps`; returns whether the job finished (false: the
    /// handler asked to stop). Checkpoints every `checkpointEvery` steps, at the end and on a stop.
    func run(groups: [ParameterGroup], from start: Int, progress: ProgressHandler,
             step body: (Int) throws -> StepOutcome) throws -> Bool {
        var clock = StepClock(firstStep: start)
        var step = start
        while step < totalSteps {
            let outcome = try body(step)
            step += 1
            let goOn = try finish(step: step, outcome: outcome, groups: groups, clock: &clock, progress: progress)
            if !goOn && step < totalSteps { return false }
        }
        return true
    }

    /// After step `step` (1-based) ran: reports it and checkpoints every `checkpointEvery` steps,
    /// at the end and on a stop. Returns whether the handler wants more steps.
    func finish(step: Int, outcome: StepOutcome, groups: [ParameterGroup], clock: inout StepClock,
                progress: ProgressHandler) throws -> Bool {
        let (elapsed, rate, eta) = clock.tick(step: step, total: totalSteps, tokens: outcome.tokens)
        let report = TrainingProgress(stage: stage, job: job, step: step, totalSteps: totalSteps, loss: outcome.loss,
                                      learningRate: outcome.learningRate, gradientNorm: outcome.gradientNorm,
                                      tokens: outcome.tokens, tokensPerSecond: rate, elapsedSeconds: elapsed, etaSeconds: eta)
        let goOn = progress(report)
        if step == totalSteps || !goOn || (checkpointEvery > 0 && step % checkpointEvery == 0) {
            try save(groups, step: step)
        }
        return goOn
    }

    func save(_ groups: [ParameterGroup], step: Int, published: [String: String] = [:]) throws {
        guard let checkpoints else { return }
        try checkpoints.save(CheckpointState(stage: stage, job: job, step: step, totalSteps: totalSteps, seed: seed,
                                             fingerprint: fingerprint, groups: groups.map(\.name),
                                             optimizerSteps: groups.map(\.optimizer.step), complete: step >= totalSteps,
                                             published: published), groups: groups)
    }

    /// The data index for sample `n` (counting over the whole run): epoch `n / count` visits every
    /// index once in an order drawn from (seed, job, epoch).
    static func order(seed: UInt64, job: String, count: Int) -> (Int) -> Int {
        var cache = [Int: [Int]]()
        return { n in
            let epoch = n / count
            if cache[epoch] == nil {
                var rng = SeededGenerator(seed: ExampleSynthesizer.derivedSeed(seed, "\(job)#\(epoch)"))
                cache = [epoch: ExampleSynthesizer.shuffled(Array(0..<count), rng: &rng)]
            }
            return cache[epoch]![n % count]
        }
    }
}
