// ExampleSynthesizer: training trajectories for a tool catalogue without a teacher LLM. Atomic
// examples come from each tool's JSON schema (typed values; the request is built from the
// description and the chosen values, so every argument can be read back from the query);
// episodes compose 2–4 atomic examples in shuffled order, as parallel calls in one step or as
// steps with history; candidate sets add the tools whose schemas are most similar (token-level
// Jaccard) as distractors. Calls, episodes and schemas are deduplicated by SHA-1, and no query
// equal to an evaluation query is ever produced.
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
    /// one step per call, each later step seeing the earlier ones as history.
    public var parallelFraction = 0.5
    /// Distractors per example: 1 up to this many, the most similar tools first.
    public var maxDistractors = 3
    /// Probability that an optional parameter is given a value.
    public var optionalProbability = 0.5
    /// The seed; the same catalogue, config and seed always give the same trajectories.
    public var seed: UInt64 = 0

    /// The defaults: 20 examples per tool, episodes of 2-4 calls, half of them parallel.
    public init() {}
}

/// What a synthesis run produced and dropped.
public struct SynthesisReport: Sendable, Equatable {
    /// Atomic examples per tool, in catalogue order.
    public var atomicPerTool: [(tool: String, count: Int)] = []
    /// Composed episodes.
    public var episodes = 0
    /// Candidate calls or episodes dropped because an identical one (same SHA-1) existed.
    public var duplicatesDropped = 0
    /// Queries dropped because they equal an evaluation query.
    public var heldOutDropped = 0
    /// Definitions skipped because an earlier one had the same schema hash, with its name.
    public var duplicateSchemas: [(tool: String, sameAs: String)] = []

    public static func == (l: SynthesisReport, r: SynthesisReport) -> Bool {
        l.atomicPerTool.map(\.tool) == r.atomicPerTool.map(\.tool) && l.atomicPerTool.map(\.count) == r.atomicPerTool.map(\.count)
            && l.episodes == r.episodes && l.duplicatesDropped == r.duplicatesDropped && l.heldOutDropped == r.heldOutDropped
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

    /// Atomic examples for every tool, then composed episodes; each a trajectory with source
    /// `synth:atomic`, `synth:parallel` or `synth:sequential`.
    public func synthesize() -> (trajectories: [Trajectory], report: SynthesisReport) {
        var report = SynthesisReport()
        report.duplicateSchemas = skipped
        var seenCalls = Set<String>(), seenQueries = Set<String>()
        var atomic = [(query: String, call: ToolCall)]()
        var out = [Trajectory]()
        for tool in tools {
            var rng = SeededGenerator(seed: Self.derivedSeed(config.seed, tool.name))
            var candidateRNG = SeededGenerator(seed: Self.derivedSeed(config.seed, tool.name + "#candidates"))
            var made = 0, attempts = 0
            while made < config.examplesPerTool && attempts < 20 * config.examplesPerTool + 20 {
                attempts += 1
                let example = atomicExample(tool, rng: &rng)
                // Drawn before the checks, so a dropped example does not shift the later ones,
                // and from its own stream, so the examples do not depend on the catalogue's size.
                let candidates = candidates(for: [tool.name], rng: &candidateRNG)
                let key = Self.callHash(example.call)
                let normal = HeldOut.normalise(example.query)
                if seenCalls.contains(key) || seenQueries.contains(normal) { report.duplicatesDropped += 1; continue }
                if heldOut.contains(normal) { report.heldOutDropped += 1; continue }
                seenCalls.insert(key)
                seenQueries.insert(normal)
                atomic.append(example)
                out.append(trajectory(query: example.query, steps: [Step(calls: [example.call], observation: "")],
                                      candidates: candidates, source: "synth:atomic"))
                made += 1
            }
            report.atomicPerTool.append((tool.name, made))
        }
        guard !atomic.isEmpty else { return (out, report) }
        var rng = SeededGenerator(seed: Self.derivedSeed(config.seed, "episodes"))
        let wanted = config.episodes ?? (config.examplesPerTool * tools.count / 2)
        var seenEpisodes = Set<String>()
        var attempts = 0
        let lo = max(1, min(config.minEpisodeCalls, config.maxEpisodeCalls)), hi = max(lo, config.maxEpisodeCalls)
        while report.episodes < wanted && attempts < 20 * wanted + 20 {
            attempts += 1
            let k = min(atomic.count, lo + Int(rng.next() % UInt64(hi - lo + 1)))
            var picked = [Int]()
            while picked.count < k {
                let i = Int(rng.next() % UInt64(atomic.count))
                if !picked.contains(i) { picked.append(i) }
            }
            let parts = picked.map { atomic[$0] }
            let key = SHA1.hex(parts.map { Self.callHash($0.call) }.joined(separator: ","))
            if seenEpisodes.contains(key) { report.duplicatesDropped += 1; continue }
            let query = Self.join(parts.map(\.query), rng: &rng)
            let normal = HeldOut.normalise(query)
            if heldOut.contains(normal) { report.heldOutDropped += 1; continue }
            if seenQueries.contains(normal) { report.duplicatesDropped += 1; continue }
            seenEpisodes.insert(key)
            seenQueries.insert(normal)
            let names = parts.map(\.call.name)
            let parallel = Double(rng.next() >> 11) / Double(1 << 53) < config.parallelFraction
            let steps = parallel ? [Step(calls: parts.map(\.call), observation: "")]
                : parts.map { Step(calls: [$0.call], observation: "\($0.call.name): ok") }
            out.append(trajectory(query: query, steps: steps, candidates: candidates(for: names, rng: &rng),
                                  source: parallel ? "synth:parallel" : "synth:sequential"))
            report.episodes += 1
        }
        return (out, report)
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

    /// One atomic example of `tool`: arguments drawn from its schema, and a request naming them.
    public func atomicExample(_ tool: ToolSpec, rng: inout SeededGenerator) -> (query: String, call: ToolCall) {
        let args = Self.objectValue(tool.parameters, rng: &rng, optionalProbability: config.optionalProbability)
        let clauses = args.members.map { Self.clause(name: $0.key, value: $0.value, rng: &rng) }
        return (Self.request(tool, clauses: clauses, rng: &rng), ToolCall(name: tool.name, arguments: .object(args)))
    }

    // MARK: Values

    /// Values for an object schema: every required property, each optional one with
    /// `optionalProbability`, in the schema's property order.
    static func objectValue(_ schema: JSONValue, rng: inout SeededGenerator, optionalProbability: Double) -> JSONObject {
        let required = Set(schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        var out = JSONObject()
        for (name, child) in schema["properties"]?.objectValue ?? JSONObject() {
            if !required.contains(name) && uniform(&rng) >= optionalProbability { continue }
            out[name] = value(child, name: name, rng: &rng, optionalProbability: optionalProbability)
        }
        return out
    }

    /// A value of the type `schema` declares (JSON-schema and BFCL type names), drawn from the
    /// enum when there is one, else from a range or word pool chosen by the parameter's name and
    /// description.
    static func value(_ schema: JSONValue, name: String, rng: inout SeededGenerator, optionalProbability: Double) -> JSONValue {
        if let options = schema["enum"]?.arrayValue, !options.isEmpty { return options[Int(rng.next() % UInt64(options.count))] }
        let hint = (words(name) + words(schema["description"]?.stringValue ?? "")).joined(separator: " ")
        let nameWords = Set(words(name))
        switch schema["type"]?.stringValue ?? "string" {
        case "integer":
            var (lo, hi) = integerRange(nameWords)
            if let m = number(schema["minimum"]) { lo = max(lo, Int64(m.rounded(.up))); hi = max(hi, lo) }
            if let m = number(schema["maximum"]) { hi = min(hi, Int64(m.rounded(.down))); lo = min(lo, hi) }
            return .int(lo + Int64(rng.next() % UInt64(hi - lo + 1)))
        case "number", "float", "double":
            var (lo, hi, decimals) = numberRange(nameWords)
            if let m = number(schema["minimum"]) { lo = max(lo, m); hi = max(hi, lo + 1) }
            if let m = number(schema["maximum"]) { hi = min(hi, m); lo = min(lo, hi - 1) }
            let scale = pow(10, Double(decimals))
            for _ in 0..<8 {
                let x = ((lo + (hi - lo) * uniform(&rng)) * scale).rounded() / scale
                if x != x.rounded() && x >= lo && x <= hi { return .double(x) }
            }
            return .double(((lo + hi) / 2 * scale).rounded() / scale + 0.5 / scale)
        case "boolean", "bool":
            return .bool(rng.next() & 1 == 1)
        case "array", "tuple", "list":
            let items = schema["items"] ?? ["type": "string"]
            let lo = max(1, Int(number(schema["minItems"]) ?? 1)), hi = max(lo, min(3, Int(number(schema["maxItems"]) ?? 3)))
            let n = lo + Int(rng.next() % UInt64(hi - lo + 1))
            var values = [JSONValue]()
            for _ in 0..<(4 * n) where values.count < n {
                let v = value(items, name: name, rng: &rng, optionalProbability: optionalProbability)
                if !values.contains(v) { values.append(v) }
            }
            return .array(values)
        case "dict", "object":
            if schema["properties"]?.objectValue?.isEmpty == false {
                return .object(objectValue(schema, rng: &rng, optionalProbability: optionalProbability))
            }
            return .object(JSONObject([(pick(Pools.topics, &rng).replacingOccurrences(of: " ", with: "_"), .string(pick(Pools.names, &rng)))]))
        default:
            return .string(stringValue(nameWords: nameWords, hint: hint, rng: &rng))
        }
    }

    private static func number(_ v: JSONValue?) -> Double? {
        switch v {
        case .int(let i)?: return Double(i)
        case .double(let d)?: return d
        default: return nil
        }
    }

    private static func integerRange(_ w: Set<String>) -> (Int64, Int64) {
        if w.contains("year") { return (1990, 2030) }
        if !w.isDisjoint(with: ["minute", "minutes", "mins"]) { return (1, 120) }
        if !w.isDisjoint(with: ["second", "seconds", "secs"]) { return (1, 300) }
        if !w.isDisjoint(with: ["hour", "hours"]) { return (1, 48) }
        if !w.isDisjoint(with: ["day", "days", "nights"]) { return (1, 30) }
        if w.contains("age") { return (1, 99) }
        if !w.isDisjoint(with: ["percent", "percentage"]) { return (1, 100) }
        if !w.isDisjoint(with: ["count", "number", "num", "n", "limit", "top", "max", "quantity", "size", "k"]) { return (1, 50) }
        return (1, 500)
    }

    private static func numberRange(_ w: Set<String>) -> (Double, Double, Int) {
        if w.contains("latitude") || w.contains("lat") { return (-90, 90, 4) }
        if w.contains("longitude") || w.contains("lon") || w.contains("lng") { return (-180, 180, 4) }
        if !w.isDisjoint(with: ["amount", "price", "cost", "salary", "balance", "principal", "budget", "value", "income"]) {
            return (5, 5000, 2)
        }
        if !w.isDisjoint(with: ["probability", "ratio", "fraction"]) { return (0.01, 0.99, 2) }
        if !w.isDisjoint(with: ["rate", "interest", "percent", "percentage"]) { return (0.5, 15, 1) }
        if w.contains("temperature") { return (-20, 40, 1) }
        return (0.5, 500, 1)
    }

    private static func stringValue(nameWords w: Set<String>, hint: String, rng: inout SeededGenerator) -> String {
        let h = Set(hint.split(separator: " ").map(String.init))
        func has(_ keys: [String], inHint: Bool = false) -> Bool { !(inHint ? h : w).isDisjoint(with: keys) }
        if has(["date", "day", "birthday"]) || hint.contains("yyyy") {
            return String(format: "%04d-%02d-%02d", 2023 + Int(rng.next() % 4), 1 + Int(rng.next() % 12), 1 + Int(rng.next() % 28))
        }
        if has(["time", "hour"]) || h.contains("hh") { return String(format: "%02d:%02d", Int(rng.next() % 24), 5 * Int(rng.next() % 12)) }
        if has(["email", "mail"]) { return pick(Pools.firstNames, &rng).lowercased() + "@example.com" }
        if has(["currency"]) || (has(["from", "to", "base", "target", "source"]) && has(["currency"], inHint: true)) {
            return pick(Pools.currencies, &rng)
        }
        if has(["country", "nation"]) { return pick(Pools.countries, &rng) }
        if has(["city", "location", "place", "destination", "origin", "town", "from", "to", "departure", "arrival", "region", "area"])
            || has(["city", "location"], inHint: true) {
            return has(["state"], inHint: true) ? pick(Pools.usCities, &rng) : pick(Pools.cities, &rng)
        }
        if has(["language", "lang"]) { return pick(Pools.languages, &rng) }
        if has(["url", "website", "link", "domain"]) { return "https://www." + pick(Pools.companies, &rng).lowercased() + ".com" }
        if has(["company", "organization", "organisation", "brand", "firm", "store", "restaurant"]) { return pick(Pools.companies, &rng) }
        if has(["name", "person", "author", "artist", "user", "username", "player", "owner", "recipient", "contact", "director"]) {
            return pick(Pools.firstNames, &rng) + " " + pick(Pools.lastNames, &rng)
        }
        if has(["color", "colour"]) { return pick(Pools.colors, &rng) }
        if has(["genre", "style", "category", "type", "kind"]) { return pick(Pools.genres, &rng) }
        if has(["food", "dish", "recipe", "ingredient", "cuisine", "meal"]) { return pick(Pools.foods, &rng) }
        if has(["phone", "mobile"]) { return String(format: "+1-555-%04d", Int(rng.next() % 10000)) }
        if has(["address", "street"]) { return "\(1 + Int(rng.next() % 400)) \(pick(Pools.lastNames, &rng)) Street" }
        if has(["id", "code", "identifier", "sku", "isbn"]) { return "ID-\(1000 + Int(rng.next() % 9000))" }
        if has(["query", "keyword", "keywords", "topic", "search", "term", "subject", "title", "text", "message", "content", "question"]) {
            return pick(Pools.topics, &rng)
        }
        return pick(Pools.syllables, &rng).capitalized + pick(Pools.syllables, &rng) + pick(Pools.syllables, &rng)
    }

    // MARK: Text

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

    /// How a value reads in a request: strings as they are, numbers as serialized in the call,
    /// booleans as `true`/`false`, lists as "a, b and c", objects as "key value" pairs.
    static func phrase(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): return s
        case .array(let items): return list(items.map(phrase))
        case .object(let o): return list(o.members.map { words($0.key).joined(separator: " ") + " " + phrase($0.value) })
        default: return value.serialized()
        }
    }

    private static func list(_ parts: [String]) -> String {
        parts.count <= 1 ? parts.joined() : parts.dropLast().joined(separator: ", ") + " and " + parts.last!
    }

    /// How a value is mentioned: `phrase(value)`, except that a currency code is, half of the
    /// time, named in words ("JPY" → "Japanese yen"), so the adapter learns to map the words
    /// people write to the code the call needs. Other values draw nothing from `rng`.
    static func mention(_ value: JSONValue, rng: inout SeededGenerator) -> String {
        if case .string(let code) = value, let names = Pools.currencyNames[code], rng.next() & 1 == 1 {
            return pick(names, &rng)
        }
        return phrase(value)
    }

    /// One argument as a phrase, in one of several forms.
    static func clause(name: String, value: JSONValue, rng: inout SeededGenerator) -> String {
        let n = words(name).joined(separator: " "), v = mention(value, rng: &rng)
        let forms = ["\(n) \(v)", "\(n): \(v)", "\(v) as the \(n)", "the \(n) \(v)", "\(n) set to \(v)", "\(n) = \(v)", v]
        return pick(forms, &rng)
    }

    /// The request for one call: the description as a verb phrase with the argument clauses.
    static func request(_ tool: ToolSpec, clauses: [String], rng: inout SeededGenerator) -> String {
        let toolWords = words(tool.name).joined(separator: " ")
        let vp = verbPhrase(tool.description) ?? "use \(toolWords)"
        let args = list(clauses)
        if clauses.isEmpty {
            return capitalised(pick(["please \(vp).", "can you \(vp)?", "I need to \(vp).", "\(vp), please.", "run \(toolWords) now."], &rng))
        }
        let forms = ["\(vp) with \(args).", "please \(vp): \(args).", "can you \(vp)? Use \(args).", "I want to \(vp), \(args).",
                     "use \(toolWords) for \(args).", "help me \(vp). Details: \(args).", "\(args) — \(vp), please.",
                     "I'd like to \(vp) using \(args).", "\(toolWords): \(args)."]
        return capitalised(pick(forms, &rng))
    }

    /// The description's first sentence as a phrase after "please", or nil when it does not
    /// start with a verb-like word: "Gets the weather." → "get the weather".
    static func verbPhrase(_ description: String) -> String? {
        let first = description.split(whereSeparator: { ".\n".contains($0) }).first.map(String.init)?
            .trimmingCharacters(in: .whitespaces) ?? ""
        var parts = first.split(separator: " ").map(String.init)
        guard var head = parts.first?.lowercased(), head.allSatisfy(\.isLetter),
              !["the", "a", "an", "this", "these", "it", "tool", "function", "api", "returns:", "used"].contains(head),
              parts.count >= 2 else { return nil }
        if head.hasSuffix("ies") { head = String(head.dropLast(3)) + "y" }
        else if ["ches", "shes", "sses", "xes"].contains(where: head.hasSuffix) { head = String(head.dropLast(2)) }
        else if head.hasSuffix("s") && !head.hasSuffix("ss") { head = String(head.dropLast()) }
        parts[0] = head
        if parts.count > 16 { parts = Array(parts.prefix(16)) }
        var text = parts.joined(separator: " ")
        while let last = text.last, ",;:".contains(last) { text.removeLast() }
        return text
    }

    /// Joins atomic requests into one multi-call request.
    static func join(_ queries: [String], rng: inout SeededGenerator) -> String {
        var text = queries[0]
        for q in queries.dropFirst() {
            let connector = pick(["Also, ", "Then ", "After that, ", "And ", "Next, "], &rng)
            // Only the templates' own opening words are lower-cased; a value stays as written.
            let first = q.prefix { $0.isLetter }
            let rest = ["Please", "Can", "Help", "Use"].contains(first) ? q.prefix(1).lowercased() + q.dropFirst() : q
            text += " " + connector + rest
        }
        return text
    }

    private static func capitalised(_ s: String) -> String { s.prefix(1).uppercased() + s.dropFirst() }

    // MARK: Randomness

    /// A seed for one stream (a tool's examples, the episodes) derived from the run's seed, so
    /// adding a tool does not change the other tools' examples.
    static func derivedSeed(_ seed: UInt64, _ stream: String) -> UInt64 {
        let words = SHA1.digest(Array("\(seed):\(stream)".utf8))
        return UInt64(words[0]) << 32 | UInt64(words[1])
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

/// Word pools for string values.
enum Pools {
    static let cities = ["Paris", "Berlin", "Tokyo", "Madrid", "Oslo", "Cairo", "Lima", "Toronto", "Sydney", "Mumbai", "Seoul",
                         "Nairobi", "Lisbon", "Chicago", "Boston", "Denver", "Dublin", "Prague", "Vienna", "Rome", "London",
                         "Istanbul", "Bangkok", "Mexico City", "Buenos Aires", "Cape Town", "Helsinki", "Warsaw", "Athens", "Zurich"]
    static let usCities = ["San Francisco, CA", "Austin, TX", "Seattle, WA", "Boston, MA", "Miami, FL", "Denver, CO", "Chicago, IL",
                           "Portland, OR", "Phoenix, AZ", "New York, NY", "Atlanta, GA", "Nashville, TN"]
    static let countries = ["France", "Japan", "Brazil", "Canada", "Kenya", "India", "Germany", "Spain", "Mexico", "Norway", "Egypt",
                            "Australia", "Italy", "Chile", "Vietnam", "Poland"]
    static let currencies = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR", "CNY", "SEK", "NOK", "MXN", "BRL", "KRW"]
    /// Each code of `currencies` in words.
    static let currencyNames: [String: [String]] = [
        "USD": ["US dollars", "dollars"], "EUR": ["euros"], "GBP": ["British pounds", "pounds sterling"],
        "JPY": ["Japanese yen", "yen"], "CHF": ["Swiss francs"], "CAD": ["Canadian dollars"], "AUD": ["Australian dollars"],
        "INR": ["Indian rupees"], "CNY": ["Chinese yuan"], "SEK": ["Swedish kronor"], "NOK": ["Norwegian kroner"],
        "MXN": ["Mexican pesos"], "BRL": ["Brazilian reais"], "KRW": ["South Korean won"],
    ]
    static let languages = ["English", "French", "Spanish", "German", "Japanese", "Italian", "Portuguese", "Korean", "Arabic", "Hindi"]
    static let companies = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Tyrell"]
    static let firstNames = ["Alice", "Bob", "Carmen", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Keiko", "Liam",
                             "Maya", "Nikolai", "Olga", "Pablo"]
    static let lastNames = ["Smith", "Garcia", "Tanaka", "Müller", "Rossi", "Novak", "Okafor", "Silva", "Kim", "Dubois", "Larsen"]
    static let colors = ["red", "blue", "green", "black", "white", "yellow", "purple", "orange"]
    static let genres = ["jazz", "comedy", "science fiction", "rock", "documentary", "thriller", "classical", "fantasy"]
    static let foods = ["pasta", "sushi", "tacos", "curry", "pancakes", "ramen", "falafel", "paella"]
    static let topics = ["machine learning", "climate change", "renaissance art", "electric cars", "quantum computing", "ancient Rome",
                         "healthy breakfast", "solar panels", "jazz history", "marathon training", "coral reefs", "black holes"]
    static let names = firstNames
    static let syllables = ["ka", "lo", "mi", "ra", "ven", "dor", "sel", "tu", "bri", "an", "zo", "el", "qua", "nix", "ter", "pa"]
}
