// Trajectory: one solved (or not) task — a query, its candidate tools and the gold steps (calls
// and observations) — stored as JSON Lines, imported from BFCL question/answer files, and turned
// into next-action training instances (document-aware and document-free).
import Foundation
import LLM
import ParaTool

/// How a trajectory ended.
public enum TrajectoryOutcome: String, Sendable, Codable {
    case solved, unsolved, unknown
}

/// A task with its gold actions.
public struct Trajectory: Sendable, Equatable {
    public var id: String
    public var query: String
    public var candidateTools: [String]
    /// Gold steps: the calls of each step and the observation that followed.
    public var steps: [Step]
    public var outcome: TrajectoryOutcome
    /// Where it came from ("bfcl:multiple", "synthetic", "service").
    public var source: String
    /// Who sent the served request it records (`ToolCallRequest.source`; "" when unknown).
    public var requestSource: String = ""
    /// When a trainer stored it, milliseconds since the Unix epoch (nil: not stored by one, or
    /// stored before the field existed), for the retention period.
    public var storedUnixMs: Int64?

    public init(id: String, query: String, candidateTools: [String], steps: [Step], outcome: TrajectoryOutcome = .solved,
                source: String) {
        self.id = id
        self.query = query
        self.candidateTools = candidateTools
        self.steps = steps
        self.outcome = outcome
        self.source = source
    }

    /// The trajectory as one JSON object (keys in a fixed order).
    public var json: JSONValue {
        .object(JSONObject([
            ("id", .string(id)), ("query", .string(query)),
            ("candidate_tools", .array(candidateTools.map { .string($0) })),
            ("steps", .array(steps.map(\.json))),
            ("outcome", .string(outcome.rawValue)), ("source", .string(source)),
        ] + (requestSource.isEmpty ? [] : [("request_source", .string(requestSource))])
          + (storedUnixMs.map { [("stored_unix_ms", JSONValue.int($0))] } ?? [])))
    }

    /// Whether it records `requestID`, or was sent or reported by `source` (its `source` or
    /// `requestSource`); an empty argument matches nothing.
    public func matches(requestID: String, source: String) -> Bool {
        (!requestID.isEmpty && id == requestID) || (!source.isEmpty && (self.source == source || requestSource == source))
    }

    /// Reads one JSON object written by `json`; errors name the missing or mistyped field.
    public init(json: JSONValue) throws {
        func string(_ v: JSONValue?, _ field: String) throws -> String {
            guard case .string(let s)? = v else { throw ToolFormatError("trajectory: \"\(field)\" must be a string") }
            return s
        }
        guard case .object(let o) = json else { throw ToolFormatError("trajectory: expected an object, found \(json.kindWithArticle)") }
        let id = try string(o["id"], "id")
        self.id = id
        query = try string(o["query"], "query")
        guard case .array(let tools)? = o["candidate_tools"] else { throw ToolFormatError("trajectory \(id): \"candidate_tools\" must be an array") }
        candidateTools = try tools.map { try string($0, "candidate_tools[]") }
        guard case .array(let rawSteps)? = o["steps"] else { throw ToolFormatError("trajectory \(id): \"steps\" must be an array") }
        steps = try rawSteps.enumerated().map { k, raw in try Step(json: raw, context: "trajectory \(id): steps[\(k)]") }
        outcome = TrajectoryOutcome(rawValue: (try? string(o["outcome"], "outcome")) ?? "unknown") ?? .unknown
        source = (try? string(o["source"], "source")) ?? ""
        requestSource = (try? string(o["request_source"], "request_source")) ?? ""
        if case .int(let ms)? = o["stored_unix_ms"] { storedUnixMs = ms }
    }

    /// Reads a JSON Lines file of trajectories (blank lines skipped; errors give the line number).
    public static func load(jsonl url: URL) throws -> [Trajectory] {
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { n, line in
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
            do { return try Trajectory(json: try JSONValue.parse(String(line))) } catch {
                throw ToolFormatError("\(url.lastPathComponent):\(n + 1): \(error)")
            }
        }
    }

    /// Writes trajectories as JSON Lines.
    public static func save(_ trajectories: [Trajectory], jsonl url: URL) throws {
        try Data(trajectories.map { $0.json.serialized(asciiOnly: false) + "\n" }.joined().utf8).write(to: url, options: .atomic)
    }

    /// BFCL questions with their gold answers as one-step trajectories: the query is the last
    /// user message of the first turn, the candidates are the question's functions, the step's
    /// calls the first acceptable value of every parameter (optional ones marked "" omitted,
    /// required ones never; see `BFCLAnswer.firstAcceptableCall(functions:)`).
    /// Questions without an answer are skipped.
    public static func fromBFCL(questions: [BFCLQuestion], answers: [BFCLAnswer], category: String) -> [Trajectory] {
        let gold = Dictionary(answers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return questions.compactMap { q in
            guard let answer = gold[q.id], let query = q.turns.first?.last(where: { $0.role == "user" })?.content else { return nil }
            return Trajectory(id: q.id, query: query, candidateTools: q.functions.map(\.name),
                              steps: [Step(calls: answer.firstAcceptableCall(functions: q.functions), observation: "")], source: "bfcl:\(category)")
        }
    }
}

extension Trajectory {
    /// The trajectory with each step that calls several tools written in every rotation of its
    /// tools' runs (a run: one tool's consecutive calls), one copy per rotation of one step, the
    /// trajectory itself first. Parallel calls have no order, so whichever tool an answer begins
    /// with should learn to go on to the others, and whichever ends it to end. A step where some
    /// tool's calls are not one run keeps its order.
    public func callOrderRotations() -> [Trajectory] {
        var out = [self]
        for (k, step) in steps.enumerated() {
            var runs = [[ToolCall]]()
            for call in step.calls {
                if let last = runs.last?.last, last.name == call.name { runs[runs.count - 1].append(call) } else { runs.append([call]) }
            }
            guard runs.count > 1, Set(runs.map { $0[0].name }).count == runs.count else { continue }
            for r in 1..<runs.count {
                var copy = self
                copy.steps[k].calls = Array((runs[r...] + runs[..<r]).joined())
                out.append(copy)
            }
        }
        return out
    }
}

/// One next-action training example: the prompt's tokens and the target action's tokens.
public struct TrainingInstance: Sendable, Equatable {
    public enum Format: String, Sendable { case documentAware, documentFree }
    public var trajectoryID: String
    public var step: Int
    public var format: Format
    /// The tools whose calls the target holds (the adapters stage 1 trains with it).
    public var tools: [String]
    public var prompt: [Int]
    public var target: [Int]
}

/// Builds training instances from trajectories with one model's tokenizer and chat template.
public struct InstanceBuilder {
    public let tokenizer: Tokenizer
    public let formatter: PromptFormatter
    public let catalogue: ToolCatalogue
    /// The token that ends the assistant's turn (appended to every target).
    public let endOfTurn: Int

    public init(tokenizer: Tokenizer, catalogue: ToolCatalogue) throws {
        guard let template = tokenizer.chatTemplate else { throw ToolFormatError("the model has no chat template") }
        guard let end = tokenizer.id(of: "<|im_end|>") ?? tokenizer.eosTokenId else {
            throw ToolFormatError("the tokenizer has no end-of-turn token")
        }
        self.tokenizer = tokenizer
        formatter = PromptFormatter(template: template)
        self.catalogue = catalogue
        endOfTurn = end
    }

    /// For step k of `trajectory`: the prompt holds the query and steps 0..<k as history, the
    /// target the step's calls. Document-free always; document-aware (the first called tool's
    /// documentation in the prompt) when `documentAware` — stage 1 trains both, stages 2–3 and
    /// inference use document-free only.
    public func instances(_ trajectory: Trajectory, documentAware: Bool) throws -> [TrainingInstance] {
        var out = [TrainingInstance]()
        for (k, step) in trajectory.steps.enumerated() where !step.calls.isEmpty {
            let request = PromptRequest(query: trajectory.query, history: Array(trajectory.steps.prefix(k)))
            let target = tokenizer.encode(step.calls.map(\.rendered).joined(separator: "\n")) + [endOfTurn]
            let tools = step.calls.map(\.name)
            let free = try formatter.render(.documentFree(candidates: trajectory.candidateTools), request: request)
            out.append(TrainingInstance(trajectoryID: trajectory.id, step: k, format: .documentFree, tools: tools,
                                        prompt: tokenizer.encode(free), target: target))
            if documentAware, let spec = catalogue[tools[0]] {
                let aware = try formatter.render(.documentAware(candidates: trajectory.candidateTools, target: spec), request: request)
                out.append(TrainingInstance(trajectoryID: trajectory.id, step: k, format: .documentAware, tools: tools,
                                            prompt: tokenizer.encode(aware), target: target))
            }
        }
        return out
    }

    /// Stage-1 instances of the calls of one tool inside a step that calls several tools: for
    /// each tool whose calls are one contiguous run of the step, the calls before the run are
    /// written into the prompt (as the answer so far) and the target is the run, then the newline
    /// that opens the next call, or the end of the turn when the run is last. So each adapter
    /// learns its part of a parallel answer of several tools: to write its calls after another
    /// tool's and not to end the turn before the next tool's. Only where encoding the parts
    /// apart gives the tokens of the whole answer (byte-level BPE could merge across the cut).
    public func runInstances(_ trajectory: Trajectory, documentAware: Bool) throws -> [TrainingInstance] {
        var out = [TrainingInstance]()
        for (k, step) in trajectory.steps.enumerated() where Set(step.calls.map(\.name)).count > 1 {
            let request = PromptRequest(query: trajectory.query, history: Array(trajectory.steps.prefix(k)))
            let free = tokenizer.encode(try formatter.render(.documentFree(candidates: trajectory.candidateTools), request: request))
            let rendered = step.calls.map(\.rendered)
            let whole = tokenizer.encode(rendered.joined(separator: "\n"))
            var next = 0
            while next < step.calls.count {
                let start = next, tool = step.calls[start].name
                var end = start
                while end < step.calls.count && step.calls[end].name == tool { end += 1 }
                next = end
                let elsewhere = step.calls[..<start].contains { $0.name == tool } || step.calls[end...].contains { $0.name == tool }
                guard !elsewhere else { continue }
                let before = start == 0 ? [] : tokenizer.encode(rendered[..<start].joined(separator: "\n") + "\n")
                let run = tokenizer.encode(rendered[start..<end].joined(separator: "\n") + (end < rendered.count ? "\n" : ""))
                let after = end < rendered.count ? tokenizer.encode(rendered[end...].joined(separator: "\n")) : []
                guard before + run + after == whole else { continue }
                let target = run + (end < rendered.count ? [] : [endOfTurn])
                out.append(TrainingInstance(trajectoryID: trajectory.id, step: k, format: .documentFree, tools: [tool],
                                            prompt: free + before, target: target))
                if documentAware, let spec = catalogue[tool] {
                    let aware = try formatter.render(.documentAware(candidates: trajectory.candidateTools, target: spec), request: request)
                    out.append(TrainingInstance(trajectoryID: trajectory.id, step: k, format: .documentAware, tools: [tool],
                                                prompt: tokenizer.encode(aware) + before, target: target))
                }
            }
        }
        return out
    }
}

/// The slice of labelled episodes the online trainer never trains on and scores each retrained
/// adapter on before promoting it: a fixed share of episodes, chosen by a stable hash of the
/// episode id (64-bit FNV-1a of its UTF-8 bytes), so an episode is held out forever or never,
/// whatever arrives later and on whichever trainer.
public enum HeldOutSlice {
    /// Percent of episodes held out.
    public static let percent: UInt64 = 20

    /// Whether the episode with id `id` is held out.
    public static func contains(_ id: String) -> Bool { fnv1a(id) % 100 < percent }

    /// 64-bit FNV-1a of the UTF-8 bytes of `text`.
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return hash
    }

    /// The steps of `trajectories` that score an adapter of `tool` alone: those with calls, all of
    /// `tool` (as stage 1 trains it), in order.
    public static func steps(_ trajectories: [Trajectory], tool: String) -> [(trajectory: Trajectory, step: Int)] {
        trajectories.flatMap { t in
            t.steps.indices.filter { k in !t.steps[k].calls.isEmpty && t.steps[k].calls.allSatisfy { $0.name == tool } }.map { (t, $0) }
        }
    }
}

/// The guard between training and evaluation data.
public enum HeldOut {
    /// A query normalised for comparison: lower-cased, whitespace collapsed.
    public static func normalise(_ query: String) -> String {
        query.lowercased().split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    /// The evaluation queries in `file`: every user message of a BFCL question file (JSON Lines
    /// with `question`), or, for any other text, one query per non-empty line.
    public static func queries(file: URL) throws -> [String] {
        if let questions = try? BFCLQuestion.load(file: file), !questions.isEmpty {
            return questions.flatMap { $0.turns.flatMap { $0.filter { $0.role == "user" }.map(\.content) } }
        }
        return try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }

    /// Throws when any training trajectory's query equals an evaluation query (after
    /// normalisation), naming the first such pair.
    public static func check(training: [Trajectory], evaluationQueries: [String]) throws {
        let held = Set(evaluationQueries.map(normalise))
        if let leak = training.first(where: { held.contains(normalise($0.query)) }) {
            throw ToolFormatError("training trajectory \(leak.id) holds an evaluation query: \"\(leak.query)\"")
        }
    }
}
