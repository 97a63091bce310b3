// ArgumentPhrasing: how arguments read in a request, in several forms chosen by each parameter's
// role. Every form states the value so that it can be read back:
// - strings as they are, except: a currency code may be its name ("JPY" → "yen") or, before an
//   amount, its symbol ("$40"); an enum value's underscores may be spaces; a date may be written
//   in words ("2026-12-18" → "December 18, 2026", "Dec 18, 2026", "18 December 2026", "the 18th
//   of December 2026"), and a clock time in 12-hour form ("14:30" → "2:30 PM");
// - integers as digits or, for counts and quantities below 100, in words ("twenty-five
//   minutes", 12 as "a dozen"); doubles as serialized, a whole one without ".0" ("$40" for 40.0);
// - numbers with their unit ("25 minutes", "120 meters", "3.5%"), money with its currency; a
//   duration that is a round share of the next larger unit in that unit ("90 minutes" → "an hour
//   and a half", "120 seconds" → "2 minutes"), and before the tool's object ("a 25-minute timer");
// - the duration of something that goes off (a timer, an alarm, a reminder) as a delay too
//   ("to go off in 25 minutes", "Alert me in 25 minutes.");
// - booleans as an intent ("include reviews", "without tax"), lists as "a, b and c", objects as
//   their members' phrases.
// Pairs read together ("from Boston to Denver", "to Denver from Boston", "between 1990 and
// 2000"), and an amount with its two currencies or units as one phrase ("250 euros in yen").
import Foundation
import ParaTool
import Tensor

/// One or more arguments as words of a request.
struct ArgumentPhrase {
    /// The words: "in Paris", "from Boston to Denver", "radius 3".
    var text: String
    /// Whether it reads right after the verb phrase ("in Paris", "including reviews"); otherwise
    /// it is a noun phrase, joined to the request with "with".
    var attached: Bool
    /// The value alone as a noun phrase, to stand in for the parameter's mention in the verb
    /// phrase ("Get the weather for a city" → "Get the weather for Paris").
    var bare: String?
    /// A statement of it: "the radius is 3".
    var sentence: String?
    /// The parameters it states.
    var parameters: [String]
    /// The words that name those parameters (matched against the verb phrase).
    var nouns: Set<String>
    /// A whole request when these are the request's only arguments: "How much is 250 euros in
    /// yen?", "Alert me in 25 minutes.".
    var wholeRequest: String?
    /// The value as a modifier before the tool's object, for a number with its unit: "25-minute"
    /// ("set a 25-minute countdown timer").
    var modifier: String?
    /// Whether it states a boolean ("including reviews"), which reads best last.
    var isFlag = false
    /// Whether it states one value per call of a parallel request ("radius 3, 5 and 7"), which
    /// reads best after the other noun phrases.
    var isList = false
}

enum ArgumentPhrasing {
    typealias Pick = ExampleSynthesizer

    /// Phrases stating every argument of `args` (pairs and conversions as one phrase each), in a
    /// random order. `legacy` uses the plain "name: value" clauses of earlier versions.
    static func phrases(_ args: JSONObject, _ profile: ObjectProfile, legacy: Bool = false, rng: inout SeededGenerator) -> [ArgumentPhrase] {
        let present = profile.parameters.filter { args[$0.name] != nil }
        if legacy {
            return present.map { p in
                ArgumentPhrase(text: legacyClause(p, args[p.name]!, rng: &rng), attached: false, parameters: [p.name], nouns: nounWords(p))
            }
        }
        var out = [ArgumentPhrase](), done = Set<String>()
        if let c = profile.conversion, let amount = args[c.amount], let from = args[c.from], let to = args[c.to] {
            out.append(conversion(amount: (profile[c.amount]!, amount), from: (profile[c.from]!, from), to: (profile[c.to]!, to), rng: &rng))
            done.formUnion([c.amount, c.from, c.to])
        }
        for pair in profile.pairs where !done.contains(pair.first) && !done.contains(pair.second) {
            // Two lists or objects side by side would blur where one ends: those are said apart.
            guard let a = args[pair.first], let b = args[pair.second], a.arrayValue == nil, a.objectValue == nil,
                  b.arrayValue == nil, b.objectValue == nil else { continue }
            out.append(pairPhrase(pair, (profile[pair.first]!, a), (profile[pair.second]!, b), rng: &rng))
            done.formUnion([pair.first, pair.second])
        }
        let singles = present.filter { !done.contains($0.name) }
        var roleCounts = [ParameterRole: Int]()
        for p in singles { roleCounts[p.role, default: 0] += 1 }
        for p in singles {
            let side = profile.pair(of: p.name).map { ($0, $0.first == p.name) }
            out.append(phrase(p, args[p.name]!, side: side, mayAttach: roleCounts[p.role] == 1, rng: &rng))
        }
        return Pick.shuffled(out, rng: &rng)
    }

    // MARK: Values as words

    /// How `value` of `p` is written (the forms listed at the top of this file).
    static func mention(_ value: JSONValue, _ p: ParameterProfile, rng: inout SeededGenerator) -> String {
        switch value {
        case .string(let s):
            if p.role == .currency, let names = Pools.currencyNames[s], rng.next() & 1 == 1 { return Pick.pick(names, &rng) }
            if p.role == .date, let layout = p.layout, let m = layout.parse(s), Pick.uniform(&rng) < 0.6 { return dateWords(m, layout, rng: &rng) }
            if p.role == .clockTime, (p.layout ?? .clock) == .clock, let m = DateLayout.clock.parse(s), Pick.uniform(&rng) < 0.3 {
                return twelveHour(m, rng: &rng)
            }
            if p.role == .choice && s.contains("_") && rng.next() & 1 == 1 { return s.replacingOccurrences(of: "_", with: " ") }
            return s
        case .int(let i):
            if [.count, .duration, .measure].contains(p.role), Pick.uniform(&rng) < 0.25 {
                if i == 12 && p.role == .count && rng.next() & 1 == 1 { return "a dozen" }
                if let words = Pools.numberWords(i) { return words }
            }
            return String(i)
        case .double(let d):
            return d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : value.serialized()
        case .array(let items):
            return list(items.map { mention($0, p.items ?? p, rng: &rng) })
        case .object(let o):
            if let members = p.members { return list(phrases(o, members, rng: &rng).map(\.text)) }
            return list(o.members.map { ExampleSynthesizer.words($0.key).joined(separator: " ") + " " + ($0.value.stringValue ?? $0.value.serialized()) })
        default:
            return value.serialized()
        }
    }

    /// A date in words, with its time when the layout has one.
    static func dateWords(_ m: Moment, _ layout: DateLayout, rng: inout SeededGenerator) -> String {
        let month = Pools.months[m.month - 1], short = Pools.monthAbbreviations[m.month - 1]
        var date: String
        if !layout.hasDay {
            date = "\(month) \(m.year)"
        } else {
            date = Pick.pick(["\(month) \(m.day), \(m.year)", "\(short) \(m.day), \(m.year)", "\(m.day) \(month) \(m.year)",
                              "the \(ordinal(m.day)) of \(month) \(m.year)"], &rng)
        }
        if layout.hasTime { date += " at " + (rng.next() & 1 == 1 ? String(format: "%02d:%02d", m.hour, m.minute) : twelveHour(m, rng: &rng)) }
        return date
    }

    static func ordinal(_ n: Int) -> String {
        let suffix = (11...13).contains(n % 100) ? "th" : [1: "st", 2: "nd", 3: "rd"][n % 10] ?? "th"
        return "\(n)\(suffix)"
    }

    private static func twelveHour(_ m: Moment, rng: inout SeededGenerator) -> String {
        let h = m.hour % 12 == 0 ? 12 : m.hour % 12
        let suffix = m.hour < 12 ? (rng.next() & 1 == 1 ? "AM" : "am") : (rng.next() & 1 == 1 ? "PM" : "pm")
        return String(format: "%d:%02d %@", h, m.minute, suffix)
    }

    /// A number with the unit it is in ("25 minutes", "1 hour", "3.5%", "$40"), or the mention alone.
    static func quantity(_ value: JSONValue, _ p: ParameterProfile, rng: inout SeededGenerator) -> String {
        let m = mention(value, p, rng: &rng)
        let d = p.description.lowercased()
        switch p.role {
        case .money where d.contains("dollar") || d.contains("usd") || d.contains("$"):
            return m.first?.isNumber == true ? Pick.pick(["$" + m, m + " dollars", m + " USD"], &rng) : m + " dollars"
        case .percent:
            return m.first?.isNumber == true ? Pick.pick([m + "%", m + " percent"], &rng) : m + " percent"
        default:
            guard let unit = p.unit else { return m }
            if p.role == .duration, case .int(let i) = value, let larger = inLargerUnit(i, unit: unit), Pick.uniform(&rng) < 0.6 {
                return Pick.pick(larger, &rng)
            }
            let one = m == "1" || m == "one"
            let plain = unit.hasSuffix("s") && unit.allSatisfy(\.isLetter) && !["celsius", "degrees", "hertz", "atm"].contains(unit.lowercased())
            return m + " " + (one && plain ? String(unit.dropLast()) : unit)
        }
    }

    /// The next larger units of time and how many of a unit make one.
    private static let largerUnits = ["seconds": ("minute", Int64(60)), "minutes": ("hour", 60), "hours": ("day", 24)]

    /// A whole or half number of the next larger unit said in it ("an hour and a half", "1.5
    /// hours", "half an hour", "2 minutes"); nil when `n` of `unit` is not one.
    static func inLargerUnit(_ n: Int64, unit: String) -> [String]? {
        guard let (larger, size) = largerUnits[unit.lowercased()], n > 0, n % (size / 2) == 0 else { return nil }
        let whole = n / size, half = n % size != 0
        let a = article(larger), plural = larger + "s"
        switch (whole, half) {
        case (0, _): return ["half \(a) \(larger)"]
        case (1, false): return ["\(a) \(larger)", "one \(larger)", "1 \(larger)"]
        case (1, true): return ["\(a) \(larger) and a half", "one and a half \(plural)", "1.5 \(plural)"]
        default:
            let words = Pools.numberWords(whole)
            return half ? ["\(whole).5 \(plural)"] + (words.map { ["\($0) and a half \(plural)"] } ?? [])
                        : ["\(whole) \(plural)"] + (words.map { ["\($0) \(plural)"] } ?? [])
        }
    }

    /// Whether `p` is the duration of something that goes off when it ends (a timer, an alarm,
    /// a reminder), which a request may say as a delay ("in 25 minutes").
    static func goesOffAfter(_ p: ParameterProfile) -> Bool {
        guard p.role == .duration else { return false }
        let words = Set(p.words + ExampleSynthesizer.words(p.description))
        return !words.isDisjoint(with: ["timer", "countdown", "alarm", "reminder", "remind", "alert", "snooze", "timeout"])
    }

    /// "25 minutes" → "25-minute" or "25 minute"; nil for anything but a number and a unit.
    private static func modifier(_ quantity: String, rng: inout SeededGenerator) -> String? {
        let w = quantity.split(separator: " ").map(String.init)
        guard w.count == 2, w[0].first?.isNumber == true || (1...99).contains(where: { Pools.numberWords($0) == w[0] }),
              w[1].allSatisfy(\.isLetter), w[1].count > 2 else { return nil }
        let unit = w[1].hasSuffix("s") ? String(w[1].dropLast()) : w[1]
        return Pick.pick(["\(w[0])-\(unit)", "\(w[0]) \(unit)"], &rng)
    }

    static func list(_ parts: [String]) -> String {
        parts.count <= 1 ? parts.joined() : parts.dropLast().joined(separator: ", ") + " and " + parts.last!
    }

    // MARK: One argument

    /// The words that name `p` in a verb phrase: its nouns' words and the words of its role
    /// ("city", "location" for a place; "currency", "money" for a currency).
    static func nounWords(_ p: ParameterProfile) -> Set<String> {
        Set(p.words + p.nouns.flatMap { ExampleSynthesizer.words($0) } + (roleWords[p.role] ?? []))
            .subtracting(["of", "the", "a", "to", "from", "in", "is", "for", "and", "or"])
    }

    private static let roleWords: [ParameterRole: [String]] = [
        .place: ["city", "location", "place", "town", "region", "country", "area"], .date: ["date", "day"], .clockTime: ["time"],
        .currency: ["currency", "money"], .money: ["money", "amount"], .language: ["language"], .person: ["person", "user"],
        .creator: ["author", "artist"], .topic: ["topic", "subject"], .text: ["text", "message"], .duration: ["duration", "time", "length"],
        .year: ["year"], .unitName: ["unit"],
    ]

    private static func noun(_ p: ParameterProfile, rng: inout SeededGenerator) -> String {
        p.nouns.count > 1 && Pick.uniform(&rng) < 0.4 ? p.nouns[1] : p.nouns[0]
    }

    /// A noun phrase's plural: "height" → "heights", "city" → "cities", "number of players" → "numbers of players".
    static func plural(_ noun: String) -> String {
        var parts = noun.components(separatedBy: " of ")
        let head = parts[0]
        if head.hasSuffix("s") || head.hasSuffix("x") || head.hasSuffix("ch") || head.hasSuffix("sh") { parts[0] = head + "es" }
        else if head.hasSuffix("y"), let before = head.dropLast().last, !"aeiou".contains(before) { parts[0] = head.dropLast() + "ies" }
        else { parts[0] = head + "s" }
        return parts.joined(separator: " of ")
    }

    /// The indefinite article said before `word`, by its sound: "an hour", "a unit", "a one-minute",
    /// "an 8-minute", "an 18 minute", "a 25-minute".
    static func article(_ word: String) -> String {
        let w = word.lowercased()
        guard let c = w.first else { return "a" }
        let digits = w.prefix { $0.isNumber }
        if !digits.isEmpty { return digits.hasPrefix("8") || digits == "11" || digits == "18" ? "an" : "a" }
        let firstWord = w.prefix { $0.isLetter }
        if firstWord == "one" || firstWord == "once" { return "a" }
        if ["hour", "honest", "honour", "honor", "heir"].contains(where: { w.hasPrefix($0) }) { return "an" }
        return "aeio".contains(c) || (c == "u" && !w.hasPrefix("uni") && !w.hasPrefix("use")) ? "an" : "a"
    }

    /// The old clause forms: "unit: celsius", "amount = 250", "origin set to Boston".
    static func legacyClause(_ p: ParameterProfile, _ value: JSONValue, rng: inout SeededGenerator) -> String {
        let n = p.words.joined(separator: " ")
        var v = value.stringValue ?? mention(value, p, rng: &rng)
        if case .string(let code) = value, let names = Pools.currencyNames[code], rng.next() & 1 == 1 { v = Pick.pick(names, &rng) }
        if case .double = value { v = value.serialized() }
        if case .bool(let b) = value {
            // A bare "true" would not say which flag.
            return Pick.pick(["\(n) \(b)", "\(n): \(b)", "\(n) set to \(b)", "\(n) = \(b)"], &rng)
        }
        // A value alone only where it says what it is (not an object's parts).
        let alone = value.objectValue == nil ? [v] : []
        return Pick.pick(["\(n) \(v)", "\(n): \(v)", "\(v) as the \(n)", "the \(n) \(v)", "\(n) set to \(v)", "\(n) = \(v)"] + alone, &rng)
    }

    /// One argument: an attached form by role when `mayAttach` (no other argument shares the
    /// role), else a noun phrase. `side` is the pair the parameter belongs to when only its side
    /// is given, and whether it is the first side.
    static func phrase(_ p: ParameterProfile, _ value: JSONValue, side: (ParameterPair, Bool)? = nil, mayAttach: Bool,
                       rng: inout SeededGenerator) -> ArgumentPhrase {
        let nouns = nounWords(p)
        if case .bool(let b) = value { return flag(p, b, rng: &rng) }
        if case .object(let o) = value, let members = p.members { return object(p, o, members, rng: &rng) }
        let n = noun(p, rng: &rng)
        let q = quantity(value, p, rng: &rng)
        let quoted = [.text, .title].contains(p.role) ? "\"\(q)\"" : q
        // "minutes" named by its unit: "25 minutes", never "minutes of 25 minutes".
        let namedByUnit = p.unit.map { u in ExampleSynthesizer.words(n).contains { u.lowercased().hasPrefix($0) } } ?? false
        let head = n.components(separatedBy: " of ")[0]
        let isAre = head.hasSuffix("s") && !["ss", "us", "is"].contains(where: head.hasSuffix) ? "are" : "is"
        let goesOff = goesOffAfter(p)
        let modifier = p.unit != nil && [.duration, .measure].contains(p.role) ? modifier(q, rng: &rng) : nil
        // A request that names no tool ("Alert me in 25 minutes.") now and then: as a habit, it taught the adapter to
        // answer every vague request with this tool.
        let delay = goesOff && Pick.uniform(&rng) < 0.4 ? Pick.pick(["Alert me in \(q).", "Ping me in \(q).", "Let me know in \(q).", "Buzz me in \(q).",
                                         "Give me a heads-up in \(q).", "Can you alert me in \(q)?", "I need an alert in \(q)."], &rng) : nil
        func make(_ text: String, _ attached: Bool) -> ArgumentPhrase {
            ArgumentPhrase(text: text, attached: attached, bare: p.kind == .array ? nil : quoted,
                           sentence: namedByUnit ? nil : p.isSymbol ? "\(n) is \(quoted)" : "the \(n) \(isAre) \(quoted)",
                           parameters: [p.name], nouns: nouns, wholeRequest: delay, modifier: modifier)
        }
        if let (pair, first) = side {
            let rest = pair.rest.isEmpty ? n : pair.rest.joined(separator: " ")
            switch (pair.kind, first) {
            case (.direction, true): return make("from \(q)", true)
            case (.direction, false): return make(Pick.pick(["to \(q)", "to \(q)", "into \(q)"], &rng), true)
            case (.range, true): return make(Pick.pick(["from \(q)", "starting \(q)"], &rng), true)
            case (.range, false): return make(Pick.pick(["until \(q)", "up to \(q)"], &rng), true)
            case (.bounds, true) where pair.rest.isEmpty: return make(Pick.pick(["of at least \(q)", "a minimum of \(q)", "from \(q)"], &rng), true)
            case (.bounds, false) where pair.rest.isEmpty: return make(Pick.pick(["up to \(q)", "of at most \(q)", "a maximum of \(q)"], &rng), true)
            case (.bounds, true): return make(Pick.pick(["a minimum \(rest) of \(q)", "\(rest) of at least \(q)"], &rng), false)
            case (.bounds, false): return make(Pick.pick(["a maximum \(rest) of \(q)", "\(rest) of at most \(q)", "\(rest) up to \(q)"], &rng), false)
            case (.sequence, _): break
            }
        }
        if p.isSymbol || n.last?.isNumber == true {
            return make(Pick.pick(["\(n) = \(q)", "\(n)=\(q)", "\(n) of \(q)", "\(n) equal to \(q)", "\(n): \(q)"], &rng), false)
        }
        var attached = [String]()
        switch p.role {
        case .place: attached = ["in \(q)", "in \(q)", "for \(q)"] + (p.description.lowercased().contains("near") ? ["near \(q)"] : [])
        case .creator: attached = ["by \(q)"]
        case .person: attached = ["for \(q)"]
        case .date: attached = ["on \(q)", "for \(q)"]
        case .clockTime: attached = ["at \(q)"]
        case .year: attached = ["in \(q)", "for \(q)"]
        case .currency, .unitName, .language: attached = ["in \(q)"]
        case .topic: attached = ["about \(q)", "on \(q)"]
        case .title: attached = ["titled \(quoted)", "called \(quoted)"]
        case .duration: attached = ["for \(q)"] + (goesOff ? ["for \(q)", "to go off in \(q)"] : [])
        case .choice:
            let w = Set(p.words)
            if !w.isDisjoint(with: ["unit", "units", "scale", "format", "language", "currency", "system", "measurement"]) { attached = ["in \(q)"] }
            else if p.choices.allSatisfy({ Pools.weekdays.contains($0.stringValue ?? "") }) { attached = ["on \(q)"] }
            else if w.contains("sort") || (w.contains("order") && w.contains("by")) { attached = ["sorted by \(q)"] }
            else if w == ["order"] || w == ["sort", "order"] { attached = ["in \(q) order"] }
        case .count:
            if let counted = p.nouns.first(where: { $0.hasPrefix("number of ") }) {
                attached = ["for \(q) \(counted.dropFirst(10))"]
            }
        case .list:
            if p.items?.role == .place { attached = ["in \(q)", "for \(q)"] }
        default: break
        }
        if mayAttach && !attached.isEmpty && Pick.uniform(&rng) < 0.65 { return make(Pick.pick(attached, &rng), true) }
        if namedByUnit { return make(mayAttach || attached.isEmpty ? q : Pick.pick(attached, &rng), !attached.isEmpty && !mayAttach) }
        var nominal = ["\(n) \(quoted)", "\(n) \(quoted)", "the \(n) \(quoted)", "\(quoted) as the \(n)"]
        if p.kind == .integer || p.kind == .number {
            nominal += [isAre == "are" ? "\(n) of \(q)" : "\(article(n)) \(n) of \(q)", "\(n) of \(q)"]
            if p.unit != nil && mayAttach { nominal.append(q) }
        }
        if p.role == .choice { nominal += ["\(q) \(n)", "\(q) as \(n)"] }
        if p.role == .count, let counted = p.nouns.first(where: { $0.hasPrefix("number of ") }) { nominal.append("\(q) \(counted.dropFirst(10))") }
        return make(Pick.pick(nominal, &rng), false)
    }

    /// Several values of one parameter, one per call of a parallel request: "in Paris and Rome",
    /// "radius 3, 5 and 7", "for 5, 10 and 15 minutes".
    static func listPhrase(_ p: ParameterProfile, _ values: [JSONValue], mayAttach: Bool, rng: inout SeededGenerator) -> ArgumentPhrase {
        let n = noun(p, rng: &rng)
        let quotedRoles: Set<ParameterRole> = [.text, .title]
        var ms = values.map { quantity($0, p, rng: &rng) }
        if quotedRoles.contains(p.role) { ms = ms.map { "\"\($0)\"" } }
        var unitOnce = false
        if let unit = p.unit, p.role != .money, p.role != .percent, rng.next() & 1 == 1 {
            // The unit once, after the last number: "5, 10 and 15 minutes".
            ms = values.map { mention($0, p, rng: &rng) }
            ms[ms.count - 1] += " " + unit
            unitOnce = true
        }
        let joined = list(ms)
        let prepositions: [ParameterRole: String] = [.place: "in", .creator: "by", .person: "for", .date: "on", .clockTime: "at", .year: "in",
                                                     .currency: "in", .language: "in", .topic: "about", .duration: "for"]
        var forms = ["\(n) \(joined)", "\(n) \(joined)", "the \(n) \(joined)", "\(n) \(joined) respectively", "\(plural(n)) \(joined)"]
        var attached = false
        if mayAttach, let prep = prepositions[p.role], Pick.uniform(&rng) < 0.7 {
            forms = unitOnce ? ["\(prep) \(joined)"] : ["\(prep) \(joined)", list(ms.map { "\(prep) \($0)" })]
            attached = true
        } else if p.isSymbol {
            forms = ["\(n) = \(joined)", "\(n) of \(joined)"]
        } else if let unit = p.unit, ExampleSynthesizer.words(n).contains(where: { unit.lowercased().hasPrefix($0) }) {
            // Named by its unit: "5, 10 and 15 minutes", never "minutes 5, 10 and 15 minutes".
            forms = [joined]
        }
        return ArgumentPhrase(text: Pick.pick(forms, &rng), attached: attached, bare: joined, sentence: nil, parameters: [p.name],
                              nouns: nounWords(p), isList: true)
    }

    // MARK: Booleans and objects

    private static let flagVerbs: Set<String> = ["include", "get", "return", "show", "add", "enable", "allow", "use", "apply", "consider",
                                                 "avoid", "exclude", "hide", "calculate", "notify", "sort", "want", "append", "round",
                                                 "provide", "fetch", "retrieve", "display", "check", "verify", "send", "save", "keep",
                                                 "remove", "skip", "ignore", "format", "filter", "compute", "list", "load", "play"]
    private static let inclusionVerbs: Set<String> = ["include", "get", "return", "show", "add", "provide", "fetch", "retrieve", "display",
                                                      "want", "list", "use", "apply", "consider"]

    /// A boolean as an intent, by the shape of its name: "include reviews" / "without reviews",
    /// "avoid tolls" / "don't avoid tolls", "full term only" / "not only full term", "power save
    /// enabled" / "power save off", "with tax" / "without tax".
    static func flag(_ p: ParameterProfile, _ on: Bool, rng: inout SeededGenerator) -> ArgumentPhrase {
        var w = p.words
        if ["is", "has", "with", "should", "do", "does"].contains(w.first ?? "") && w.count > 1 { w.removeFirst() }
        let rest = w.dropFirst().joined(separator: " "), all = w.joined(separator: " ")
        var forms: [String]
        if let verb = w.first, flagVerbs.contains(verb), !rest.isEmpty {
            let gerund = verb.hasSuffix("e") && !verb.hasSuffix("ee") ? String(verb.dropLast()) + "ing" : verb + "ing"
            if on {
                forms = ["and \(verb) \(rest)", "\(gerund) \(rest)", "and \(verb) the \(rest)"]
            } else {
                forms = ["but don't \(verb) \(rest)", "without \(gerund) \(rest)", "and do not \(verb) \(rest)"]
                if inclusionVerbs.contains(verb) { forms += ["without \(rest)", "with no \(rest)"] }
            }
        } else if w.last == "only" && w.count > 1 {
            let what = w.dropLast().joined(separator: " ")
            forms = on ? ["\(what) only", "only \(what)"] : ["not only \(what)", "not just \(what)"]
        } else if ["enabled", "enable", "on", "mode", "allowed"].contains(w.last ?? "") && w.count > 1 {
            let what = w.dropLast().joined(separator: " ")
            forms = on ? ["with \(what) enabled", "with \(what) on", "\(what) turned on"] : ["with \(what) disabled", "with \(what) off", "\(what) turned off"]
        } else {
            forms = on ? ["with \(all)", "\(all): yes", "with \(all) on", "\(all) enabled"]
                : ["without \(all)", "\(all): no", "with \(all) off", "no \(all)"]
        }
        return ArgumentPhrase(text: Pick.pick(forms, &rng), attached: true, parameters: [p.name], nouns: nounWords(p), isFlag: true)
    }

    /// An object with properties: its members' phrases after the parameter's noun: "a budget
    /// between 1000 and 5000", "dimensions with length 3 and width 2".
    private static func object(_ p: ParameterProfile, _ o: JSONObject, _ members: ObjectProfile, rng: inout SeededGenerator) -> ArgumentPhrase {
        let n = noun(p, rng: &rng)
        let parts = phrases(o, members, rng: &rng)
        let attachedParts = parts.filter(\.attached).map(\.text), nominalParts = parts.filter { !$0.attached }.map(\.text)
        var text = n
        if !attachedParts.isEmpty { text += " " + attachedParts.joined(separator: " ") }
        if !nominalParts.isEmpty { text += Pick.pick([" with ", " with ", ": ", " of "], &rng) + list(nominalParts) }
        if parts.isEmpty { text = "an empty \(n)" }
        return ArgumentPhrase(text: text, attached: false, parameters: [p.name], nouns: nounWords(p))
    }

    // MARK: Pairs

    /// Two parameters as one phrase: "from Boston to Denver", "Boston to Denver", "to Denver from
    /// Boston"; "between 1990 and 2000"; "a price between 10 and 50"; "Paris and Rome".
    static func pairPhrase(_ pair: ParameterPair, _ first: (ParameterProfile, JSONValue), _ second: (ParameterProfile, JSONValue),
                           rng: inout SeededGenerator) -> ArgumentPhrase {
        let a = quantity(first.1, first.0, rng: &rng), b = quantity(second.1, second.0, rng: &rng)
        let nouns = nounWords(first.0).union(nounWords(second.0))
        let params = [first.0.name, second.0.name]
        let rest = pair.rest.filter { !["check", "date", "time", "day", "point"].contains($0) }.joined(separator: " ")
        switch pair.kind {
        case .direction:
            let text = Pick.pick(["from \(a) to \(b)", "from \(a) to \(b)", "\(a) to \(b)", "to \(b) from \(a)"], &rng)
            return ArgumentPhrase(text: text, attached: true, parameters: params, nouns: nouns)
        case .range:
            var forms = ["from \(a) to \(b)", "between \(a) and \(b)", "\(a) to \(b)"]
            if first.0.role == .year, case .int = first.1, a.allSatisfy(\.isNumber), b.allSatisfy(\.isNumber) { forms.append("\(a)-\(b)") }
            var text = Pick.pick(forms, &rng)
            if !rest.isEmpty && rng.next() & 1 == 1 { text = "for \(rest) " + text }
            return ArgumentPhrase(text: text, attached: true, parameters: params, nouns: nouns)
        case .bounds:
            guard !rest.isEmpty else {
                // Bare bounds (a budget's min and max): "between 10 and 50", "at least 10 and at most 50".
                let text = Pick.pick(["between \(a) and \(b)", "from \(a) to \(b)", "at least \(a) and at most \(b)",
                                      "no more than \(b) and no less than \(a)"], &rng)
                return ArgumentPhrase(text: text, attached: true, parameters: params, nouns: nouns)
            }
            let forms = ["between \(a) and \(b)", "from \(a) to \(b)", "of at least \(a) and at most \(b)", "of no more than \(b) and no less than \(a)"]
            return ArgumentPhrase(text: "\(article(rest)) \(rest) " + Pick.pick(forms, &rng), attached: false, parameters: params, nouns: nouns)
        case .sequence:
            let text = Pick.pick(["for \(a) and \(b)", "with \(a) and \(b)"] + (first.0.role == .place ? ["between \(a) and \(b)"] : []), &rng)
            return ArgumentPhrase(text: text, attached: true, parameters: params, nouns: nouns)
        }
    }

    /// An amount with the currencies or units it is converted from and to: "250 EUR to JPY",
    /// "250 euros in yen", "$40 into pounds", "5 kilometers in miles".
    static func conversion(amount: (ParameterProfile, JSONValue), from: (ParameterProfile, JSONValue), to: (ParameterProfile, JSONValue),
                           rng: inout SeededGenerator) -> ArgumentPhrase {
        let a = mention(amount.1, amount.0, rng: &rng)
        let fromCode = from.1.stringValue ?? mention(from.1, from.0, rng: &rng)
        let target = mention(to.1, to.0, rng: &rng)
        let source: String
        if from.0.role == .currency {
            let name = Pools.currencyNames[fromCode].map { Pick.pick($0, &rng) } ?? fromCode
            var forms = ["\(a) \(fromCode)", "\(a) \(name)", "\(a) \(name)", "\(fromCode) \(a)"]
            if let symbol = Pools.currencySymbols[fromCode], a.first?.isNumber == true { forms += ["\(symbol)\(a)", "\(symbol)\(a)"] }
            source = Pick.pick(forms, &rng)
        } else {
            source = "\(a) \(mention(from.1, from.0, rng: &rng))"
        }
        let text = Pick.pick(["\(source) to \(target)", "\(source) to \(target)", "\(source) into \(target)"], &rng)
        let question = Pick.pick(["How much is \(source) in \(target)?", "What is \(source) in \(target)?", "What's \(source) in \(target)?",
                                  "How many \(target) is \(source)?", "How many \(target) do I get for \(source)?",
                                  "What's the \(target) equivalent of \(source)?"], &rng)
        return ArgumentPhrase(text: text, attached: true, bare: text, parameters: [amount.0.name, from.0.name, to.0.name],
                              nouns: nounWords(amount.0).union(nounWords(from.0)).union(nounWords(to.0)), wholeRequest: question)
    }
}
