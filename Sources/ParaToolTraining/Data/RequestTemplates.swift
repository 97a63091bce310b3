// RequestTemplates: whole requests around argument phrases. The tool's purpose comes from its
// description's first sentence as a verb phrase ("Gets the current weather for a city." → "get
// the current weather for a city"); a phrase may take the place of the generic mention it
// answers ("… for a city" → "… for Paris"), a tail that only describes the arguments is cut
// ("Search flights between two cities on a date" → "search flights"), and the rest follows:
// attached phrases as they are, noun phrases after "with". The body is then said as a command, a
// question, in the first person, as a question about the result ("What's the current weather in
// Paris?") or with the arguments first; several bodies join into one multi-call request.
import Foundation
import ParaTool
import Tensor

/// What requests for one tool are built from.
struct RequestFrame {
    /// The tool's purpose as verb phrase words ("use" and the name's words when it has none).
    var verb: [String]
    /// The tool's name as words: "search flights".
    var toolWords: String
    /// Words naming any of the tool's parameters (given in a request or not): a stretch of the
    /// verb phrase that mentions one describes the arguments in general.
    var parameterNouns: Set<String>
}

enum RequestTemplates {
    typealias Pick = ExampleSynthesizer

    // MARK: The verb phrase

    private static let verbs: Set<String> = [
        "get", "find", "search", "calculate", "compute", "convert", "create", "list", "fetch", "retrieve", "book", "send",
        "set", "update", "delete", "add", "check", "analyze", "analyse", "predict", "estimate", "generate", "return", "provide",
        "determine", "identify", "show", "display", "play", "order", "schedule", "cancel", "make", "translate", "count", "sort",
        "filter", "validate", "verify", "compare", "evaluate", "measure", "look", "query", "post", "submit", "register",
        "track", "monitor", "recommend", "suggest", "plan", "reserve", "buy", "purchase", "sell", "open", "close", "start",
        "stop", "run", "execute", "perform", "apply", "remove", "insert", "modify", "change", "edit", "read", "write", "load",
        "save", "upload", "download", "extract", "parse", "format", "summarize", "summarise", "classify", "detect", "locate",
        "map", "navigate", "simulate", "solve", "draw", "plot", "fit", "train", "test", "obtain", "give", "tell", "explain",
        "describe", "assess", "invest", "transfer", "pay", "lookup", "forecast", "discover", "explore", "organize", "organise",
        "prepare", "cook", "mix", "grow", "resize", "scale", "rotate", "crop", "merge", "split", "join", "connect",
        "disconnect", "turn", "enable", "disable", "toggle", "mute", "call", "email", "notify", "remind", "log", "record",
        "rate", "review", "rank", "match", "resolve", "reset", "restart", "install", "configure", "deploy", "build", "compile",
        "encode", "decode", "encrypt", "decrypt", "hash", "sign", "approve", "reject", "assign", "invite", "share", "print",
        "scan", "copy", "move", "rename", "archive", "restore", "backup", "sync", "subscribe", "unsubscribe", "follow", "like",
        "comment", "report", "flag", "calibrate", "inspect", "diagnose", "optimize", "optimise", "round", "multiply", "divide",
        "sum", "average", "integrate", "differentiate", "factorize", "factor", "visualize", "render", "greet", "welcome",
        "authenticate", "login", "logout", "accept", "mark", "complete", "finish", "begin", "access", "choose", "select",
        "pick", "roll", "flip", "shuffle", "deal", "project", "infer",
    ]
    private static let followsThirdPerson: Set<String> = ["the", "a", "an", "all", "any", "information", "data", "details", "and", "or",
                                                         "specific", "current", "historical", "detailed", "user", "list", "statistics"]

    /// The tool's purpose as verb phrase words ("get", "the", "current", "weather", "for", "a",
    /// "city"): the description's first sentence when it starts with a verb (third-person forms
    /// made base: "Retrieves" → "retrieve"; "This function calculates" → "calculate"), else the
    /// tool name's words from its first verb ("museum.get_waiting_time" → "get waiting time");
    /// nil when neither has a verb.
    static func verbPhrase(_ tool: ToolSpec) -> [String]? {
        if let phrase = verbPhrase(description: tool.description) { return phrase }
        let w = ExampleSynthesizer.words(tool.name)
        if let i = w.firstIndex(where: { verbs.contains($0) }), w.count - i >= 2 { return Array(w[i...]) }
        return nil
    }

    /// The description's first sentence as verb phrase words, or nil when it does not start
    /// with a verb.
    static func verbPhrase(description: String) -> [String]? {
        var sentence = firstSentence(description)
        let prefixes = ["this tool ", "this function ", "this api ", "this endpoint ", "this method ", "this service ", "the function ",
                        "the tool ", "a function that ", "a function to ", "a tool that ", "a tool to ", "function to ", "function that ",
                        "tool to ", "api to ", "used to ", "use this to ", "allows you to ", "allows users to ", "allows to ", "helps you ",
                        "helps to ", "is used to ", "will ", "can ", "is designed to ", "is able to ", "lets you ", "is a function that ",
                        "it ", "this is used to ", "a method to ", "method to ", "endpoint to ", "service to ", "attempts to ", "tries to "]
        var stripped = true
        while stripped {
            stripped = false
            for p in prefixes where sentence.lowercased().hasPrefix(p) {
                sentence = String(sentence.dropFirst(p.count))
                stripped = true
            }
        }
        var parts = sentence.split(separator: " ").map(String.init)
        guard parts.count >= 2, parts[0].allSatisfy(\.isLetter) else { return nil }
        let original = parts[0].lowercased(), head = baseForm(original)
        let next = parts[1].lowercased()
        guard verbs.contains(original) || verbs.contains(head)
                || (original.hasSuffix("s") && original != head && followsThirdPerson.contains(next)) else { return nil }
        parts[0] = verbs.contains(original) ? original : head
        // "… and returns the result" → "… and return the result".
        for i in parts.indices.dropFirst(2) where ["and", "or"].contains(parts[i - 1].lowercased()) {
            let w = parts[i].lowercased(), base = baseForm(w)
            if w != base && verbs.contains(base) { parts[i] = base }
        }
        if parts.count > 20 { parts = Array(parts.prefix(20)) }
        while let last = parts.last, let c = last.last, ",;:-".contains(c) {
            parts[parts.count - 1] = String(last.dropLast())
            if parts[parts.count - 1].isEmpty { parts.removeLast() }
        }
        return parts
    }

    /// A third-person verb's base form: "retrieves" → "retrieve", "fetches" → "fetch", "applies" → "apply".
    private static func baseForm(_ w: String) -> String {
        if w.hasSuffix("ies") { return String(w.dropLast(3)) + "y" }
        if ["ches", "shes", "sses", "xes", "zzes"].contains(where: w.hasSuffix) { return String(w.dropLast(2)) }
        if w.hasSuffix("s") && !w.hasSuffix("ss") { return String(w.dropLast()) }
        return w
    }

    /// The text up to the first full stop that ends a sentence (not one of "e.g.", "U.S.", "etc.")
    /// or line break.
    static func firstSentence(_ text: String) -> String {
        let chars = Array(text.trimmingCharacters(in: .whitespacesAndNewlines))
        var word = ""
        for (i, c) in chars.enumerated() {
            if c == "\n" { return String(chars[..<i]).trimmingCharacters(in: .whitespaces) }
            if c == "." && (i + 1 == chars.count || chars[i + 1] == " " || chars[i + 1] == "\n") {
                let w = word.lowercased()
                if !["e.g", "i.e", "etc", "vs", "u.s", "dr", "mr", "mrs", "st", "no", "approx"].contains(w) && w.count != 1 {
                    return String(chars[..<i]).trimmingCharacters(in: .whitespaces)
                }
            }
            if c == " " { word = "" } else { word.append(c) }
        }
        return String(chars).trimmingCharacters(in: CharacterSet(charactersIn: ". "))
    }

    // MARK: Fitting phrases into the verb phrase

    /// A request body: the verb phrase with the argument phrases placed.
    struct Body {
        /// "get the current weather in Paris in fahrenheit".
        var text: String
        /// What is asked for, when the verb asks for information about something definite: "the
        /// current weather in Paris in fahrenheit" (for "What's …?").
        var object: String?
        /// Noun phrases left out (when fitted without them), to be said separately.
        var left: [ArgumentPhrase]
    }

    private struct Word {
        var text: String
        var fixed = false
        var key: String { text.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: ",;:'\"()")) }
    }

    private static let indefinite: Set<String> = ["a", "an", "any", "some"]
    private static let specific: Set<String> = ["given", "specific", "specified", "provided", "particular", "certain", "desired", "chosen",
                                                "selected", "target", "input", "single", "new"]
    private static let cutWords: Set<String> = ["for", "of", "in", "on", "at", "between", "from", "with", "by", "given", "based", "using",
                                                "according", "within", "that", "which", "to", "into", "across", "over", "during",
                                                "including", "filtered", "when", "where", "whose", "under",
                                                "along", "per", "via", "about", "near", "around", "after", "before", "like", "such"]
    private static let infoVerbs: Set<String> = ["get", "retrieve", "fetch", "find", "calculate", "compute", "determine", "obtain", "return",
                                                 "provide", "give", "show", "check", "estimate", "predict", "measure", "identify", "count"]

    private static func matches(_ key: String, _ nouns: Set<String>) -> Bool {
        nouns.contains(key) || (key.hasSuffix("s") && nouns.contains(String(key.dropLast())))
            || (key.hasSuffix("ies") && nouns.contains(String(key.dropLast(3)) + "y"))
    }

    /// The span of a generic mention of one of `nouns` starting at `i`: "a city", "a given text",
    /// "the specified location", "given number"; nil when there is none.
    private static func mention(at i: Int, in words: [Word], nouns: Set<String>) -> Range<Int>? {
        guard !words[i].fixed else { return nil }
        var j = i, qualified = false
        if indefinite.contains(words[i].key) { qualified = true; j += 1 } else if words[i].key == "the" { j += 1 }
        while j < words.count, specific.contains(words[j].key), j - i < 3 { qualified = true; j += 1 }
        guard qualified, j < words.count, !words[j].fixed, matches(words[j].key, nouns), !words[j].text.hasSuffix("'s") else { return nil }
        // The noun ends its noun phrase ("a given total" is not "a given total payout").
        let ends = j + 1 == words.count || words[j].text.last.map { ",;:)".contains($0) } == true
            || cutWords.contains(words[j + 1].key) || ["and", "or", "is", "are"].contains(words[j + 1].key)
        return ends ? i..<(j + 1) : nil
    }

    /// Places `phrases` into the frame's verb phrase: some take the place of the generic mention they answer
    /// ("for a city" → "for Paris"); a stretch of the verb phrase that describes an argument in
    /// general ("between two cities") is dropped, and so is everything after such a stretch once
    /// nothing placed follows; the rest of the phrases follow. `alsoStated` names parameters the
    /// caller states elsewhere in the request. With `nominals` false, the noun phrases are left
    /// out and returned in `left`.
    static func fit(_ frame: RequestFrame, _ phrases: [ArgumentPhrase], nominals: Bool = true, alsoStated: Set<String> = [],
                    rng: inout SeededGenerator) -> Body {
        var words = frame.verb.map { Word(text: $0) }
        var placed = Set<Int>()
        func substitute(_ k: Int, trailingOnly: Bool) {
            guard let bare = phrases[k].bare, words.count > 1 else { return }
            for i in (trailingOnly ? max(1, words.count - 4) : 1)..<words.count {
                guard let span = mention(at: i, in: words, nouns: phrases[k].nouns), !trailingOnly || span.upperBound == words.count else { continue }
                let punctuation = words[span.upperBound - 1].text.last.map { ",;:".contains($0) ? String($0) : "" } ?? ""
                words.replaceSubrange(span, with: [Word(text: bare + punctuation, fixed: true)])
                placed.insert(k)
                return
            }
        }
        for k in Pick.shuffled(Array(phrases.indices), rng: &rng) where nominals || phrases[k].attached {
            if rng.next() & 1 == 1 { substitute(k, trailingOnly: false) }
        }
        let stated = phrases.reduce(into: alsoStated.union(frame.parameterNouns)) { $0.formUnion($1.nouns) }
        words = dropGenericStretches(words, stated: stated)
        // A generic mention of an argument stated elsewhere, left at the end: "convert an amount".
        if !alsoStated.isEmpty, words.count > 2, let i = (max(1, words.count - 4)..<words.count).first(where: {
            mention(at: $0, in: words, nouns: alsoStated)?.upperBound == words.count
        }) {
            words.removeSubrange(i...)
        }
        for k in phrases.indices where !placed.contains(k) && (nominals || phrases[k].attached) { substitute(k, trailingOnly: true) }

        let rest = phrases.indices.filter { !placed.contains($0) }.map { phrases[$0] }
        // Flags last: "… in Paris, including the forecast".
        var parts = rest.filter { $0.attached && !$0.isFlag }.map(\.text) + rest.filter { $0.attached && $0.isFlag }.map(\.text)
        let nouns = rest.filter { !$0.attached && !$0.isList } + rest.filter { !$0.attached && $0.isList }
        if nominals && !nouns.isEmpty {
            let sentences = nouns.compactMap(\.sentence)
            if sentences.count == nouns.count && Pick.uniform(&rng) < 0.12 {
                parts.append("where " + ArgumentPhrasing.list(sentences))
            } else {
                let clause = Pick.pick(["with", "with", "with", "using", "for"], &rng) + " " + ArgumentPhrasing.list(nouns.map(\.text))
                parts.insert(clause, at: Pick.uniform(&rng) < 0.75 ? parts.count : Int(rng.next() % UInt64(parts.count + 1)))
            }
        }
        let head = words.map(\.text).joined(separator: " ")
        let text = ([head] + parts).joined(separator: " ")
        var object: String?
        let keys = words.map(\.key)
        if keys.count >= 2, infoVerbs.contains(keys[0]), keys[1] == "the" {
            object = ([words.dropFirst().map(\.text).joined(separator: " ")] + parts).joined(separator: " ")
        } else if keys.count >= 3, keys[0] == "look", keys[1] == "up", keys[2] == "the" {
            object = ([words.dropFirst(2).map(\.text).joined(separator: " ")] + parts).joined(separator: " ")
        }
        return Body(text: text, object: object, left: nominals ? [] : nouns)
    }

    /// The verb phrase without the stretches (from a preposition or comma to the next) that
    /// mention an argument in general: one before a placed value is dropped alone, the first
    /// one after the last placed value is dropped with all that follows it.
    private static func dropGenericStretches(_ words: [Word], stated: Set<String>) -> [Word] {
        var starts = [0]
        // A stretch starts at a preposition ("based on", "such as" start one; "a given" does not)
        // or after a comma; a stretch after a comma runs to the next comma.
        var inClause = false
        for i in 1..<max(1, words.count) {
            if words[i - 1].text.hasSuffix(",") {
                starts.append(i)
                inClause = true
            } else if cutWords.contains(words[i].key) && !inClause && !(cutWords.contains(words[i - 1].key) && starts.last == i - 1)
                        && !["a", "an", "the"].contains(words[i - 1].key) {
                starts.append(i)
            }
        }
        let stretches = starts.indices.map { k in starts[k]..<(k + 1 < starts.count ? starts[k + 1] : words.count) }
        let lastFixed = stretches.lastIndex { r in words[r].contains(where: \.fixed) } ?? 0
        var out = Array(words[stretches[0]])
        for (k, r) in stretches.enumerated().dropFirst() {
            let fixed = words[r].contains(where: \.fixed)
            let general = words[r].contains { !$0.fixed && matches($0.key, stated) }
            if fixed || !general { out += words[r]; continue }
            if k > lastFixed { break }
        }
        while out.count > 1, let last = out.last, !last.fixed,
              ["and", "or", "the", "a", "an", "its", "their", "as"].contains(last.key) || cutWords.contains(last.key) {
            out.removeLast()
        }
        if let last = out.last, let c = last.text.last, ",;:".contains(c) { out[out.count - 1].text.removeLast() }
        return out
    }

    /// Whether an object's head noun is plural ("the stats of …" → true).
    private static func plural(_ object: String) -> Bool {
        let w = object.split(separator: " ").map { $0.lowercased() }
        let head = w.prefix { !cutWords.contains($0) }.last ?? ""
        return head.hasSuffix("s") && !["ss", "us", "is", "ics"].contains(where: head.hasSuffix)
    }

    // MARK: Whole requests

    /// A whole request for one tool's call (or a parallel request of one tool, whose phrases
    /// hold lists), in one of several forms.
    static func request(_ frame: RequestFrame, phrases: [ArgumentPhrase], rng: inout SeededGenerator) -> (query: String, body: String) {
        if phrases.isEmpty {
            let b = frame.verb.joined(separator: " ")
            return (capitalised(Pick.pick(["please \(b).", "can you \(b)?", "I need to \(b).", "\(b), please.", "I'd like to \(b).",
                                           "could you \(b) for me?"], &rng)), b)
        }
        if phrases.count == 1, let whole = phrases[0].wholeRequest, Pick.uniform(&rng) < 0.35 {
            return (whole, fit(frame, phrases, rng: &rng).text)
        }
        if phrases.count == 1, let modifier = phrases[0].modifier, let (verb, object) = modified(frame, modifier), Pick.uniform(&rng) < 0.3 {
            // "Set a 25-minute countdown timer.", "A 25-minute countdown timer, please."
            let body = verb + " " + object
            let query = Pick.uniform(&rng) < 0.35
                ? capitalised(Pick.pick(["\(object), please.", "I need \(object).", "I want \(object).", "give me \(object)."], &rng))
                : wrap(body, object: nil, rng: &rng)
            return (query, body)
        }
        let hasSentences = phrases.contains { !$0.attached } && phrases.allSatisfy { $0.attached || $0.sentence != nil }
        if hasSentences && Pick.uniform(&rng) < 0.12 {
            // The arguments first: "The radius is 3. Calculate the area of a circle."
            let body = fit(frame, phrases, nominals: false, rng: &rng)
            let facts = capitalised(ArgumentPhrasing.list(body.left.compactMap(\.sentence))) + "."
            let ask = wrap(body.text, object: body.object, rng: &rng)
            let full = fit(frame, phrases, rng: &rng).text
            return (Pick.pick(["\(facts) \(ask)", "\(ask) \(facts)"], &rng), full)
        }
        let body = fit(frame, phrases, rng: &rng)
        return (wrap(body.text, object: body.object, rng: &rng), body.text)
    }

    /// The verb and its object with `modifier` before the object's noun, when the verb phrase is a
    /// verb and an indefinite noun phrase alone ("set a countdown timer" → "set", "a 25-minute
    /// countdown timer"); nil for any other verb phrase.
    static func modified(_ frame: RequestFrame, _ modifier: String) -> (verb: String, object: String)? {
        let w = frame.verb
        guard w.count >= 3, ["a", "an"].contains(w[1].lowercased()),
              w.dropFirst(2).allSatisfy({ $0.allSatisfy(\.isLetter) && !cutWords.contains($0.lowercased()) && !["and", "or"].contains($0.lowercased()) })
        else { return nil }
        return (w[0], ArgumentPhrasing.article(modifier) + " " + modifier + " " + w.dropFirst(2).joined(separator: " "))
    }

    /// A body said as a command, a question, in the first person, or (for a verb that asks for
    /// something definite) as a question about the result.
    static func wrap(_ b: String, object: String?, rng: inout SeededGenerator) -> String {
        let roll = Pick.uniform(&rng)
        if let object, roll < 0.22 {
            let be = plural(object) ? "are" : "is"
            return capitalised(Pick.pick(["what \(be) \(object)?", plural(object) ? "what are \(object)?" : "what's \(object)?",
                                          "tell me \(object).", "I need \(object).", "show me \(object).", "I'm looking for \(object).",
                                          "do you know \(object)?"], &rng))
        }
        switch Pick.uniform(&rng) {
        case ..<0.34: return capitalised(Pick.pick(["\(b).", "\(b).", "\(b), please.", "please \(b).", "\(b) for me."], &rng))
        case ..<0.67: return capitalised(Pick.pick(["can you \(b)?", "could you \(b)?", "would you \(b)?", "can you please \(b)?",
                                                    "could you please \(b)?"], &rng))
        default: return capitalised(Pick.pick(["I want to \(b).", "I'd like to \(b).", "I need to \(b).", "help me \(b).",
                                               "I'm trying to \(b).", "I have to \(b).", "I would like to \(b)."], &rng))
        }
    }

    /// The clause forms of earlier versions: "use <tool> for <clauses>", "<tool>: <clauses>", …
    static func legacyRequest(_ frame: RequestFrame, clauses: [String], rng: inout SeededGenerator) -> String {
        let vp = frame.verb.joined(separator: " "), toolWords = frame.toolWords
        let args = ArgumentPhrasing.list(clauses)
        if clauses.isEmpty {
            return capitalised(Pick.pick(["please \(vp).", "can you \(vp)?", "I need to \(vp).", "\(vp), please.", "run \(toolWords) now."], &rng))
        }
        let forms = ["\(vp) with \(args).", "please \(vp): \(args).", "can you \(vp)? Use \(args).", "I want to \(vp), \(args).",
                     "use \(toolWords) for \(args).", "help me \(vp). Details: \(args).", "\(args) — \(vp), please.",
                     "I'd like to \(vp) using \(args).", "\(toolWords): \(args)."]
        let form = Pick.pick(forms, &rng)
        // A request that opens with a value keeps the value as written.
        return form.hasPrefix(args) ? form : capitalised(form)
    }

    // MARK: Several calls in one request

    /// Several bodies in one request: "Get the weather in Paris and convert 250 euros to yen.",
    /// "Can you …, and also …?", "I need to …, then …".
    static func joinBodies(_ bodies: [String], rng: inout SeededGenerator) -> String {
        let and = ArgumentPhrasing.list(bodies)
        let also = bodies.dropFirst().reduce(bodies[0]) { $0 + Pick.pick([", and also ", ", and ", "; also ", ", then ", ", plus "], &rng) + $1 }
        let sentences = bodies.dropFirst().reduce(capitalised(bodies[0]) + ".") {
            $0 + " " + Pick.pick(["Also, ", "Then ", "And ", "Next, ", "Also "], &rng) + $1 + "."
        }
        return Pick.pick([capitalised(and) + ".", "Can you \(and)?", "Could you \(also)?", "I need to \(also).", "I'd like to \(and).",
                          "Please \(also).", sentences, "Help me \(and)."], &rng)
    }

    /// Bodies as steps to take one at a time, each after the previous one's result: "First …,
    /// and once that is done, …". Only sequential episodes use these words; "then", "also" and
    /// "after that" alone ask for every call in one answer (as BFCL's parallel questions do).
    static func joinSteps(_ bodies: [String], rng: inout SeededGenerator) -> String {
        let waits = [", and once that is done, ", ", and when that is finished, ", "; wait for the result, then ",
                     ", and after you have the result, ", ", and once you have that, "]
        let then = bodies.dropFirst().reduce(bodies[0]) { $0 + Pick.pick(waits, &rng) + $1 }
        return Pick.pick(["First \(then).", "One at a time, please: \(then).", "Step by step: \(then).",
                          "I need to \(then).", capitalised(then) + "."], &rng)
    }

    /// Whole requests to be answered one at a time: each after the first led by a connector that
    /// waits for the previous result ("Once that is done, ").
    static func joinInOrder(_ queries: [String], rng: inout SeededGenerator) -> String {
        "One at a time: " + join(queries, connectors: ["Once that is done, ", "When that is finished, ", "After you have the result, ",
                                                       "Once you have that, ", "When you are done with that, "], rng: &rng)
    }

    /// Whole requests in one: each after the first led by a connector ("Also, ", "Then ").
    static func join(_ queries: [String], rng: inout SeededGenerator) -> String {
        join(queries, connectors: ["Also, ", "Then ", "After that, ", "And ", "Next, "], rng: &rng)
    }

    /// Whole requests in one, each after the first led by one of `connectors`.
    private static func join(_ queries: [String], connectors: [String], rng: inout SeededGenerator) -> String {
        var text = queries[0]
        for q in queries.dropFirst() { text += " " + Pick.pick(connectors, &rng) + lowercasedOpening(q) }
        return text
    }

    /// `q` with its first letter lower-cased when it opens with a template's word or a verb ("Please
    /// …", "What's …", "Convert …"); a value that opens a request stays as written.
    static func lowercasedOpening(_ q: String) -> String {
        let first = q.prefix { $0.isLetter }.lowercased()
        let openings: Set<String> = ["please", "can", "could", "would", "help", "use", "what", "tell", "show", "do", "how", "the"]
        return openings.contains(first) || verbs.contains(first) ? q.prefix(1).lowercased() + q.dropFirst() : q
    }

    static func capitalised(_ s: String) -> String { s.prefix(1).uppercased() + s.dropFirst() }
}
