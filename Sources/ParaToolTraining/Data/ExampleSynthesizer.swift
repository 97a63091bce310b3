// ExampleSynthesizer: training trajectories for a tool catalogue without a teacher LLM. Atomic
// examples come from each tool's JSON schema (typed values drawn by SchemaValues, phrased by
// ArgumentPhrasing and RequestTemplates the way users write, so every argument can be read back
// from the query); parallel requests ask for several calls of one tool at once; episodes compose
// 2–4 examples in shuffled order, as parallel calls in one step (of several tools, some with
// several calls) or as steps with history; candidate sets add the tools whose schemas are most
// similar (token-level Jaccard) as distractors; steps whose right answer is text (no call) teach
// the gate when not to call: a tool's request with only other tools as candidates, a request no
// tool does (NoCallRequests), and the step after the last observation of a task. Calls, episodes
// and schemas are deduplicated by SHA-1, and no query equal to an evaluation query is ever produced.
import Foundation
import ParaTool
import Tensor

/// Settings of example synthesis.
public struct SynthesisConfig: Sendable, Codable, Equatable {
    /// Distinct atomic examples to make per tool (fewer when the schema admits fewer calls).
    public var examplesPerTool = 20
    /// Composed episodes to make (nil: examplesPerTool × tools / 2).
    public var episodes: Int?
    /// Fewest calls per episode.
    public var minEpisodeCalls = 2
    /// Most calls per episode.
    public var maxEpisodeCalls = 4
    /// Share of episodes written as one step holding all calls (parallel calls); the others are
    /// one step per call, each later step seeing the earlier ones as history, and their requests
    /// say so ("one at a time", "once that is done").
    public var parallelFraction = 0.7
    /// Distractors per example: 1 up to this many, the most similar tools first.
    public var maxDistractors = 3
    /// Probability that an optional parameter is given a value.
    public var optionalProbability = 0.5
    /// Parallel requests per tool: several calls of the one tool in one step, the arguments
    /// that differ said as a list or per call (nil: examplesPerTool / 4, rounded up).
    public var parallelPerTool: Int?
    /// Share of atomic requests written in the plain clause forms of earlier versions
    /// ("amount = 250", "origin set to Boston").
    public var legacyFraction = 0.1
    /// Trajectories whose last step is answered in text (no call), as a share of the atomic
    /// examples: in equal parts a tool's request among other tools only, a request no tool does,
    /// and a task whose call was made and observed. With any, every sequential episode also ends
    /// in such a step after its last observation. 0 turns them off.
    public var noCallFraction = 0.3
    /// The seed; the same catalogue, config and seed always give the same trajectories.
    public var seed: UInt64 = 0

    /// The defaults: 20 examples and 5 parallel requests per tool, episodes of 2-4 calls, seven
    /// in ten of them parallel.
    public init() {}

    /// Decodes a config; a field it lacks (one written before that field existed) keeps its default.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SynthesisConfig()
        examplesPerTool = try c.decodeIfPresent(Int.self, forKey: .examplesPerTool) ?? d.examplesPerTool
        episodes = try c.decodeIfPresent(Int.self, forKey: .episodes)
        minEpisodeCalls = try c.decodeIfPresent(Int.self, forKey: .minEpisodeCalls) ?? d.minEpisodeCalls
        maxEpisodeCalls = try c.decodeIfPresent(Int.self, forKey: .maxEpisodeCalls) ?? d.maxEpisodeCalls
        parallelFraction = try c.decodeIfPresent(Double.self, forKey: .parallelFraction) ?? d.parallelFraction
        maxDistractors = try c.decodeIfPresent(Int.self, forKey: .maxDistractors) ?? d.maxDistractors
        optionalProbability = try c.decodeIfPresent(Double.self, forKey: .optionalProbability) ?? d.optionalProbability
        parallelPerTool = try c.decodeIfPresent(Int.self, forKey: .parallelPerTool)
        legacyFraction = try c.decodeIfPresent(Double.self, forKey: .legacyFraction) ?? d.legacyFraction
        noCallFraction = try c.decodeIfPresent(Double.self, forKey: .noCallFraction) ?? d.noCallFraction
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
    }
}

/// What a synthesis run produced and dropped.
public struct SynthesisReport: Sendable, Equatable {
    /// Atomic examples per tool, in catalogue order.
    public var atomicPerTool: [(tool: String, count: Int)] = []
    /// Parallel requests of one tool (several calls of it in one step), per tool in catalogue order.
    public var parallelPerTool: [(tool: String, count: Int)] = []
    /// Composed episodes (parallel ones across tools, and sequential ones).
    public var episodes = 0
    /// Trajectories whose last step is answered in text.
    public var noCallTrajectories = 0
    /// Candidate calls or episodes dropped because an identical one (same SHA-1) existed.
    public var duplicatesDropped = 0
    /// Queries dropped because they equal an evaluation query.
    public var heldOutDropped = 0
    /// Definitions skipped because an earlier one had the same schema hash, with its name.
    public var duplicateSchemas: [(tool: String, sameAs: String)] = []

    public static func == (l: SynthesisReport, r: SynthesisReport) -> Bool {
        l.atomicPerTool.map(\.tool) == r.atomicPerTool.map(\.tool) && l.atomicPerTool.map(\.count) == r.atomicPerTool.map(\.count)
            && l.parallelPerTool.map(\.tool) == r.parallelPerTool.map(\.tool) && l.parallelPerTool.map(\.count) == r.parallelPerTool.map(\.count)
            && l.episodes == r.episodes && l.noCallTrajectories == r.noCallTrajectories && l.duplicatesDropped == r.duplicatesDropped && l.heldOutDropped == r.heldOutDropped
            && l.duplicateSchemas.map(\.tool) == r.duplicateSchemas.map(\.tool)
    }
}

/// Makes training trajectories from tool schemas.
public struct ExampleSynthesizer {
    /// The tools, without repeated schemas, in input order.
    public let tools: [ToolSpec]
    /// The settings.
    public let config: SynthesisConfig
    private let heldOut: Set<String>
    private let tokens: [String: Set<String>]
    private let skipped: [(tool: String, sameAs: String)]
    private let rankings = Rankings()
    private let profiles: [String: ToolProfile]
    /// Names given again with a different schema; the first definition was kept.
    public let nameConflicts: [String]

    /// A synthesizer for `tools`. A tool whose schema hash equals an earlier tool's (the same
    /// definition given twice, as when tools are gathered from many BFCL questions) is skipped
    /// and reported; a name given again with another schema keeps its first definition. No synthesized query equals
    /// (after `HeldOut.normalise`) any of `evaluationQueries`.
    public init(tools: [ToolSpec], config: SynthesisConfig = SynthesisConfig(), evaluationQueries: [String] = []) {
        var seen = [String: String](), names = Set<String>(), kept = [ToolSpec](), skipped = [(tool: String, sameAs: String)]()
        var conflicts = [String]()
        for tool in tools {
            let hash = Self.schemaHash(tool)
            if let first = seen[hash] { skipped.append((tool.name, first)); continue }
            if names.contains(tool.name) { conflicts.append(tool.name); continue }
            seen[hash] = tool.name
            names.insert(tool.name)
            kept.append(tool)
        }
        self.tools = kept
        self.config = config
        self.skipped = skipped
        nameConflicts = conflicts
        heldOut = Set(evaluationQueries.map(HeldOut.normalise))
        tokens = Dictionary(kept.map { ($0.name, Self.schemaTokens($0)) }, uniquingKeysWith: { a, _ in a })
        profiles = Dictionary(kept.map { ($0.name, ToolProfile($0)) }, uniquingKeysWith: { a, _ in a })
    }

    // MARK: Hashes and similarity

    /// SHA-1 of the tool's document (name, description, parameters) serialized with sorted keys.
    public static func schemaHash(_ spec: ToolSpec) -> String {
        SHA1.hex(spec.json.serialized(sortedKeys: true))
    }

    /// SHA-1 of a call: its name and arguments serialized with sorted keys (argument order does
    /// not matter).
    public static func callHash(_ call: ToolCall) -> String {
        SHA1.hex(JSONValue.object(["name": .string(call.name), "arguments": call.arguments]).serialized(sortedKeys: true))
    }

    /// The lower-cased alphanumeric words of a schema: the tool's name and description, and
    /// every parameter's name, description and enum values (nested ones too). Names split at
    /// `_`, `.` and camel-case boundaries.
    public static func schemaTokens(_ spec: ToolSpec) -> Set<String> {
        var out = Set(words(spec.name) + words(spec.description))
        func visit(_ schema: JSONValue) {
            if let d = schema["description"]?.stringValue { out.formUnion(words(d)) }
            for e in schema["enum"]?.arrayValue ?? [] { out.formUnion(words(e.stringValue ?? e.serialized())) }
            for (name, child) in schema["properties"]?.objectValue ?? JSONObject() {
                out.formUnion(words(name))
                visit(child)
            }
            if let items = schema["items"] { visit(items) }
        }
        visit(spec.parameters)
        return out
    }

    /// |a ∩ b| / |a ∪ b| (0 for two empty sets).
    public static func jaccard(_ a: Set<String>, _ b: Set<String>) -> Double {
        let union = a.union(b).count
        return union == 0 ? 0 : Double(a.intersection(b).count) / Double(union)
    }

    /// The `count` other tools whose schema tokens are most similar to `tool`'s (Jaccard,
    /// descending; ties in catalogue order).
    public func mostSimilar(to tool: String, count: Int) -> [String] {
        Array(ranked(tool).prefix(max(0, count)))
    }

    /// Every other tool, most similar to `tool` first (computed once per tool).
    private func ranked(_ tool: String) -> [String] {
        if let hit = rankings.lists[tool] { return hit }
        guard let own = tokens[tool] else { return [] }
        let scored = tools.enumerated().filter { $0.element.name != tool }.map { (i: $0.offset, name: $0.element.name,
                                                                                    s: Self.jaccard(own, tokens[$0.element.name]!)) }
        let list = scored.sorted { $0.s > $1.s || ($0.s == $1.s && $0.i < $1.i) }.map(\.name)
        rankings.lists[tool] = list
        return list
    }

    // MARK: Synthesis

    /// Atomic examples for every tool, parallel requests of each tool (several calls of it in one
    /// step), then composed episodes; each a trajectory with source `synth:atomic`,
    /// `synth:parallel` (one step holding all calls: of one tool, or of several) or
    /// `synth:sequential`.
    public func synthesize() -> (trajectories: [Trajectory], report: SynthesisReport) {
        var report = SynthesisReport()
        report.duplicateSchemas = skipped
        var seenCalls = Set<String>(), seenQueries = Set<String>(), seenEpisodes = Set<String>()
        var atomic = [Composed]()
        var out = [Trajectory]()
        for tool in tools {
            var rng = SeededGenerator(seed: Self.derivedSeed(config.seed, tool.name))
            var candidateRNG = SeededGenerator(seed: Self.derivedSeed(config.seed, tool.name + "#candidates"))
            var made = 0, attempts = 0
            while made < config.examplesPerTool && attempts < 20 * config.examplesPerTool + 20 {
                attempts += 1
                let example = composedAtomic(tool, rng: &rng)
                // Drawn before the checks, so a dropped example does not shift the later ones,
                // and from its own stream, so the examples do not depend on the catalogue's size.
                let candidates = candidates(for: [tool.name], rng: &candidateRNG)
                let key = Self.callHash(example.calls[0])
                let normal = HeldOut.normalise(example.query)
                if seenCalls.contains(key) || seenQueries.contains(normal) { report.duplicatesDropped += 1; continue }
                if heldOut.contains(normal) { report.heldOutDropped += 1; continue }
                seenCalls.insert(key)
                seenQueries.insert(normal)
                atomic.append(example)
                out.append(trajectory(query: example.query, steps: [Step(calls: example.calls, observation: "")],
                                      candidates: candidates, source: "synth:atomic"))
                made += 1
            }
            report.atomicPerTool.append((tool.name, made))
        }
        let (lo, hi) = callRange
        let perTool = config.parallelPerTool ?? (config.examplesPerTool + 3) / 4
        for tool in tools {
            var rng = SeededGenerator(seed: Self.derivedSeed(config.seed, tool.name + "#parallel"))
            var candidateRNG = SeededGenerator(seed: Self.derivedSeed(config.seed, tool.name + "#parallel-candidates"))
            var made = 0, attempts = 0
            while made < perTool && profile(tool).varies && attempts < 20 * perTool + 20 {
                attempts += 1
                let wanted = max(2, lo) + Int(rng.next() % UInt64(max(2, hi) - max(2, lo) + 1))
                let candidates = candidates(for: [tool.name], rng: &candidateRNG)
                guard let example = parallelExample(tool, calls: wanted, rng: &rng) else { continue }
                let key = SHA1.hex(example.calls.map(Self.callHash).joined(separator: ","))
                let normal = HeldOut.normalise(example.query)
                if seenEpisodes.contains(key) || seenQueries.contains(normal) { report.duplicatesDropped += 1; continue }
                if heldOut.contains(normal) { report.heldOutDropped += 1; continue }
                seenEpisodes.insert(key)
                seenQueries.insert(normal)
                out.append(trajectory(query: example.query, steps: [Step(calls: example.calls, observation: "")], candidates: candidates,
                                      source: "synth:parallel"))
                made += 1
            }
            report.parallelPerTool.append((tool.name, made))
        }
        guard !atomic.isEmpty else { return (out, report) }
        var rng = SeededGenerator(seed: Self.derivedSeed(config.seed, "episodes"))
        let wanted = config.episodes ?? (config.examplesPerTool * tools.count / 2)
        let varying = tools.filter { profile($0).varies }
        var attempts = 0
        while report.episodes < wanted && attempts < 20 * wanted + 20 {
            attempts += 1
            let k = min(atomic.count, lo + Int(rng.next() % UInt64(hi - lo + 1)))
            let parallel = Self.uniform(&rng) < config.parallelFraction
            var parts = [Composed](), picked = Set<Int>(), calls = 0
            while calls < k {
                // A parallel episode may hold a group of calls of one tool beside the others.
                if parallel && k - calls >= 2 && k >= 3 && !varying.isEmpty && (!parts.isEmpty || k - calls >= 3) && Self.uniform(&rng) < 0.35,
                   let group = parallelExample(Self.pick(varying, &rng), calls: 2, rng: &rng) {
                    parts.append(group)
                    calls += group.calls.count
                    continue
                }
                let i = Int(rng.next() % UInt64(atomic.count))
                if picked.insert(i).inserted {
                    parts.append(atomic[i])
                    calls += 1
                }
            }
            let allCalls = parts.flatMap(\.calls)
            let key = SHA1.hex(allCalls.map(Self.callHash).joined(separator: ","))
            if seenEpisodes.contains(key) { report.duplicatesDropped += 1; continue }
            let query: String
            if parallel {
                query = Self.uniform(&rng) < 0.6 ? RequestTemplates.joinBodies(parts.map(\.body), rng: &rng)
                    : RequestTemplates.join(parts.map(\.query), rng: &rng)
            } else {
                query = Self.uniform(&rng) < 0.5 ? RequestTemplates.joinSteps(parts.map(\.body), rng: &rng)
                    : RequestTemplates.joinInOrder(parts.map(\.query), rng: &rng)
            }
            let normal = HeldOut.normalise(query)
            if heldOut.contains(normal) { report.heldOutDropped += 1; continue }
            if seenQueries.contains(normal) { report.duplicatesDropped += 1; continue }
            seenEpisodes.insert(key)
            seenQueries.insert(normal)
            let names = allCalls.map(\.name)
            var steps = parallel ? [Step(calls: allCalls, observation: "")] : allCalls.map { Step(calls: [$0], observation: "\($0.name): ok") }
            // Once every task of a sequential episode was done and observed, the answer is text.
            if !parallel && config.noCallFraction > 0 { steps.append(Step(calls: [], observation: "")) }
            out.append(trajectory(query: query, steps: steps, candidates: candidates(for: names, rng: &rng),
                                  source: parallel ? "synth:parallel" : "synth:sequential"))
            report.episodes += 1
        }
        out += noCallTrajectories(atomic: atomic, report: &report)
        return (out, report)
    }

    /// Trajectories whose last step's right answer is text, `noCallFraction` × the atomic
    /// examples, cycling through three kinds: a tool's request with only other (similar) tools
    /// as candidates, a request no tool does, and an atomic task already called and observed.
    private func noCallTrajectories(atomic: [Composed], report: inout SynthesisReport) -> [Trajectory] {
        let wanted = Int((Double(atomic.count) * config.noCallFraction).rounded(.up))
        guard wanted > 0, !atomic.isEmpty else { return [] }
        var rng = SeededGenerator(seed: Self.derivedSeed(config.seed, "no-call"))
        var out = [Trajectory](), seen = Set<String>()
        var attempts = 0
        while out.count < wanted && attempts < 20 * wanted + 20 {
            attempts += 1
            let kind = attempts % 3
            let example = atomic[Int(rng.next() % UInt64(atomic.count))]
            let tool = example.calls[0].name
            var query = example.query, candidates: [String], steps: [Step], source: String
            switch kind {
            case 0:
                // The request of a tool that is not among the candidates.
                guard tools.count > 1 else { continue }
                let n = 1 + Int(rng.next() % UInt64(max(1, min(config.maxDistractors, tools.count - 1))))
                candidates = Self.shuffled(Array(ranked(tool).prefix(n)), rng: &rng)
                steps = [Step(calls: [], observation: "")]
                source = "synth:irrelevant"
            case 1:
                let n = 1 + Int(rng.next() % UInt64(min(3, tools.count)))
                candidates = Array(Self.shuffled(tools.map(\.name), rng: &rng).prefix(n))
                let words = candidates.reduce(into: Set<String>()) { $0.formUnion(tokens[$1] ?? []) }
                guard let request = NoCallRequests.request(avoiding: words, rng: &rng) else { continue }
                query = request
                steps = [Step(calls: [], observation: "")]
                source = "synth:no-tool"
            default:
                candidates = self.candidates(for: example.calls.map(\.name), rng: &rng)
                steps = [Step(calls: example.calls, observation: example.calls.map { "\($0.name): ok" }.joined(separator: "\n")),
                         Step(calls: [], observation: "")]
                source = "synth:final"
            }
            let normal = HeldOut.normalise(query)
            if heldOut.contains(normal) { report.heldOutDropped += 1; continue }
            let key = SHA1.hex(source + "\n" + query + "\n" + candidates.sorted().joined(separator: ","))
            guard seen.insert(key).inserted else { report.duplicatesDropped += 1; continue }
            out.append(Trajectory(id: "synth-" + key.prefix(12), query: query, candidateTools: candidates, steps: steps,
                                  outcome: .solved, source: source))
        }
        report.noCallTrajectories = out.count
        return out
    }

    /// The fewest and most calls of a multi-call request.
    private var callRange: (Int, Int) {
        let lo = max(1, min(config.minEpisodeCalls, config.maxEpisodeCalls))
        return (lo, max(lo, config.maxEpisodeCalls))
    }

    private func trajectory(query: String, steps: [Step], candidates: [String], source: String) -> Trajectory {
        let calls = steps.flatMap(\.calls).map(Self.callHash).joined(separator: ",")
        return Trajectory(id: "synth-" + SHA1.hex(query + "\n" + calls).prefix(12), query: query, candidateTools: candidates,
                          steps: steps, outcome: .solved, source: source)
    }

    /// The called tools plus, for each, 1…maxDistractors of its most similar tools, shuffled.
    private func candidates(for called: [String], rng: inout SeededGenerator) -> [String] {
        var set = [String]()
        for name in called where !set.contains(name) { set.append(name) }
        let available = tools.count - 1
        for name in called where available > 0 && config.maxDistractors > 0 {
            let n = 1 + Int(rng.next() % UInt64(min(config.maxDistractors, available)))
            for d in ranked(name).prefix(n) where !set.contains(d) { set.append(d) }
        }
        return Self.shuffled(set, rng: &rng)
    }

    // MARK: Requests

    /// A request with its calls, and its body (the verb phrase with the arguments, before it is
    /// said as a command or a question) for joining into a larger request.
    struct Composed {
        var query: String
        var body: String
        var calls: [ToolCall]
    }

    private func profile(_ tool: ToolSpec) -> ToolProfile {
        if let known = profiles[tool.name], known.spec == tool { return known }
        return ToolProfile(tool)
    }

    /// One atomic example of `tool`: arguments drawn from its schema, and a request stating them.
    public func atomicExample(_ tool: ToolSpec, rng: inout SeededGenerator) -> (query: String, call: ToolCall) {
        let example = composedAtomic(tool, rng: &rng)
        return (example.query, example.calls[0])
    }

    private func composedAtomic(_ tool: ToolSpec, rng: inout SeededGenerator) -> Composed {
        let p = profile(tool)
        let args = SchemaValues.object(p.object, rng: &rng, optionalProbability: config.optionalProbability)
        let call = ToolCall(name: tool.name, arguments: .object(args))
        if Self.uniform(&rng) < config.legacyFraction {
            let clauses = ArgumentPhrasing.phrases(args, p.object, legacy: true, rng: &rng).map(\.text)
            let query = RequestTemplates.legacyRequest(p.frame, clauses: clauses, rng: &rng)
            let body = p.frame.verb.joined(separator: " ") + (clauses.isEmpty ? "" : " with " + ArgumentPhrasing.list(clauses))
            return Composed(query: query, body: body, calls: [call])
        }
        let phrases = ArgumentPhrasing.phrases(args, p.object, rng: &rng)
        let (query, body) = RequestTemplates.request(p.frame, phrases: phrases, rng: &rng)
        return Composed(query: query, body: body, calls: [call])
    }

    /// A request for `calls` calls of `tool` in one answer (fewer when the schema admits fewer
    /// distinct calls, nil below two): shared arguments said once, the one or two that differ
    /// per call said as a list ("in Paris and Rome", "radius 3, 5 and 7"), per call ("from
    /// Boston to Denver and from Rome to Oslo"), or as whole requests one after another.
    func parallelExample(_ tool: ToolSpec, calls wanted: Int, rng: inout SeededGenerator) -> Composed? {
        let p = profile(tool)
        let base = SchemaValues.object(p.object, rng: &rng, optionalProbability: config.optionalProbability)
        // What may differ between the calls: a parameter alone, or a pair as a whole.
        var slots = [[String]]()
        var inPairs = Set<String>()
        for pair in p.object.pairs where base[pair.first] != nil && base[pair.second] != nil {
            slots.append([pair.first, pair.second])
            inPairs.formUnion([pair.first, pair.second])
        }
        for q in p.object.parameters where base[q.name] != nil && !inPairs.contains(q.name) && ToolProfile.mayVary(q) {
            slots.append([q.name])
        }
        guard !slots.isEmpty else { return nil }
        let weighted = slots.flatMap { slot in Array(repeating: slot, count: slot.contains { p.object.required.contains($0) } ? 3 : 1) }
        var varying = [Self.pick(weighted, &rng)]
        if slots.count > 1 && Self.uniform(&rng) < 0.25 {
            let other = slots.filter { $0 != varying[0] }
            varying.append(Self.pick(other, &rng))
        }
        let names = varying.flatMap { $0 }
        var calls = [base]
        for _ in 0..<(4 * wanted) where calls.count < wanted {
            var args = base
            for name in names { args[name] = SchemaValues.value(p.object[name]!, rng: &rng, optionalProbability: config.optionalProbability) }
            SchemaValues.reconcile(&args, p.object, rng: &rng, optionalProbability: config.optionalProbability)
            if !calls.contains(args) && base.keys.allSatisfy({ names.contains($0) || args[$0] == base[$0] }) { calls.append(args) }
        }
        guard calls.count >= 2 else { return nil }
        let toolCalls = calls.map { ToolCall(name: tool.name, arguments: .object($0)) }
        var shared = JSONObject()
        for (k, v) in base where !names.contains(k) { shared[k] = v }
        let sharedPhrases = ArgumentPhrasing.phrases(shared, p.object, rng: &rng)
        let roll = Self.uniform(&rng)
        if names.count == 1, let q = p.object[names.first!], roll < 0.55 {
            let roleShared = p.object.parameters.contains { $0.name != q.name && shared[$0.name] != nil && $0.role == q.role }
            let list = ArgumentPhrasing.listPhrase(q, calls.map { $0[q.name]! }, mayAttach: !roleShared, rng: &rng)
            let (query, body) = RequestTemplates.request(p.frame, phrases: sharedPhrases + [list], rng: &rng)
            return Composed(query: query, body: body, calls: toolCalls)
        }
        if roll < 0.8 {
            // Shared arguments once, then what differs per call, each call's part in the same
            // form (phrased from the same random state).
            let form = rng
            _ = rng.next()
            let diffs = calls.map { args -> String in
                var own = JSONObject()
                for (k, v) in args where names.contains(k) { own[k] = v }
                var same = form
                let phrases = ArgumentPhrasing.phrases(own, p.object, rng: &same)
                let attached = phrases.filter(\.attached).map(\.text), nominal = phrases.filter { !$0.attached }.map(\.text)
                return (attached + (nominal.isEmpty ? [] : ["with " + ArgumentPhrasing.list(nominal)])).joined(separator: " ")
            }
            let joined = diffs.count == 2 ? Self.pick(["\(diffs[0]) and \(diffs[1])", "\(diffs[0]), and also \(diffs[1])",
                                                      "once \(diffs[0]) and once \(diffs[1])", "\(diffs[0]), and again \(diffs[1])"], &rng)
                : ArgumentPhrasing.list(diffs)
            let stated = names.reduce(into: Set<String>()) { $0.formUnion(ArgumentPhrasing.nounWords(p.object[$1]!)) }
            let head = RequestTemplates.fit(p.frame, sharedPhrases, alsoStated: stated, rng: &rng)
            let body = head.text + " " + joined
            return Composed(query: RequestTemplates.wrap(body, object: nil, rng: &rng), body: body, calls: toolCalls)
        }
        // Each call as a whole request, one after another.
        let parts = calls.map { args -> (query: String, body: String) in
            RequestTemplates.request(p.frame, phrases: ArgumentPhrasing.phrases(args, p.object, rng: &rng), rng: &rng)
        }
        let query = Self.uniform(&rng) < 0.5 ? RequestTemplates.join(parts.map(\.query), rng: &rng)
            : RequestTemplates.joinBodies(parts.map(\.body), rng: &rng)
        return Composed(query: query, body: ArgumentPhrasing.list(parts.map(\.body)), calls: toolCalls)
    }

    // MARK: Words

    /// Words of a name or sentence: split at non-alphanumerics and camel-case boundaries, lower-cased.
    static func words(_ text: String) -> [String] {
        var out = [String](), current = ""
        var previousLower = false
        for ch in text {
            if ch.isLetter || ch.isNumber {
                if ch.isUppercase && previousLower && !current.isEmpty { out.append(current); current = "" }
                current.append(Character(ch.lowercased()))
                previousLower = ch.isLowercase || ch.isNumber
            } else {
                if !current.isEmpty { out.append(current); current = "" }
                previousLower = false
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    // MARK: Randomness

    /// A seed for one stream (a tool's examples, the episodes) derived from the run's seed, so
    /// adding a tool does not change the other tools' examples.
    static func derivedSeed(_ seed: UInt64, _ stream: String) -> UInt64 {
        SHA1.digest(Array("\(seed):\(stream)".utf8)).prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func uniform(_ rng: inout SeededGenerator) -> Double { Double(rng.next() >> 11) / Double(1 << 53) }

    static func pick<T>(_ items: [T], _ rng: inout SeededGenerator) -> T { items[Int(rng.next() % UInt64(items.count))] }

    /// A Fisher–Yates shuffle driven by `rng`.
    public static func shuffled<T>(_ items: [T], rng: inout SeededGenerator) -> [T] {
        var a = items
        if a.count > 1 {
            for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        }
        return a
    }
}

/// Similarity rankings computed so far, by tool.
private final class Rankings {
    var lists = [String: [String]]()
}

/// A tool's schema read for synthesis.
struct ToolProfile {
    let spec: ToolSpec
    /// Its arguments' meanings and pairs.
    let object: ObjectProfile
    /// What its requests are built from: purpose, name words, parameter nouns.
    let frame: RequestFrame
    /// Whether a parallel request can vary one of its arguments between calls.
    let varies: Bool

    init(_ spec: ToolSpec) {
        self.spec = spec
        object = ObjectProfile(spec.parameters)
        let verb = RequestTemplates.verbPhrase(spec)
        let toolWords = ExampleSynthesizer.words(spec.name).joined(separator: " ")
        frame = RequestFrame(verb: verb ?? ["use"] + toolWords.split(separator: " ").map(String.init), toolWords: toolWords,
                             parameterNouns: object.parameters.reduce(into: Set<String>()) { $0.formUnion(ArgumentPhrasing.nounWords($1)) })
        varies = object.parameters.contains(where: Self.mayVary)
    }

    /// Whether a parameter's value may differ between the calls of a parallel request: a
    /// string, number or enum of several values (a flag, list or object stays shared).
    static func mayVary(_ p: ParameterProfile) -> Bool {
        switch p.kind {
        case .string, .integer, .number, .any: return p.choices.isEmpty || p.choices.count >= 2
        default: return false
        }
    }
}
