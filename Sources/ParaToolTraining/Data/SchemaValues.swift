// SchemaValues: argument values drawn from a schema, typed as it declares (JSON-schema and BFCL
// type names), from the enum when there is one, else from a range or word pool chosen by the
// parameter's role (ParameterProfile); dates and times in the layout the description asks for;
// the description's own examples among the candidates. Pairs are made consistent: a from/to pair
// names two different things, a start/end or min/max pair is in order, two units of one pair
// measure the same thing.
import Foundation
import ParaTool
import Tensor

enum SchemaValues {
    typealias Pick = ExampleSynthesizer

    /// Values for an object: every required property, each optional one with
    /// `optionalProbability`, in the schema's property order; then the pairs made consistent. A
    /// nested object (`nested`) gets at least one property: an empty one says nothing.
    static func object(_ profile: ObjectProfile, nested: Bool = false, rng: inout SeededGenerator, optionalProbability: Double) -> JSONObject {
        var out = JSONObject()
        for p in profile.parameters {
            if !profile.required.contains(p.name) && Pick.uniform(&rng) >= optionalProbability { continue }
            out[p.name] = value(p, rng: &rng, optionalProbability: optionalProbability)
        }
        if nested && out.isEmpty, let first = profile.parameters.first {
            out[first.name] = value(first, rng: &rng, optionalProbability: optionalProbability)
        }
        reconcile(&out, profile, rng: &rng, optionalProbability: optionalProbability)
        return out
    }

    /// Makes `args`' pairs consistent: different values for the two sides of a direction or a
    /// sequence, one dimension for two units, ranges and bounds in order.
    static func reconcile(_ args: inout JSONObject, _ profile: ObjectProfile, rng: inout SeededGenerator, optionalProbability: Double) {
        for pair in profile.pairs {
            guard let a = args[pair.first], let b = args[pair.second], let pb = profile[pair.second], let pa = profile[pair.first] else { continue }
            var second = b
            if pa.role == .unitName, pb.role == .unitName, pb.choices.isEmpty, let u = a.stringValue,
               let units = Pools.units.first(where: { $0.units.contains(u) })?.units, units.count > 1,
               !(units.contains(b.stringValue ?? "") && b != a) {
                second = .string(Pick.pick(units.filter { $0 != u }, &rng))
            }
            for _ in 0..<8 where second == a { second = value(pb, rng: &rng, optionalProbability: optionalProbability) }
            args[pair.second] = second
            guard pair.kind == .range || pair.kind == .bounds else { continue }
            // A stay or a period: the end 1 to 14 days after the start.
            if let layout = pa.layout, layout == pb.layout, layout.hasDay, let start = a.stringValue.flatMap(layout.parse) {
                args[pair.second] = .string(layout.format(start.adding(days: 1 + Int(rng.next() % 14))))
                continue
            }
            if inOrder(a, second, pa, pb) == false {
                args[pair.first] = second
                args[pair.second] = a
            }
        }
    }

    /// Whether `a` comes before `b` (nil when they do not compare: different kinds or layouts).
    private static func inOrder(_ a: JSONValue, _ b: JSONValue, _ pa: ParameterProfile, _ pb: ParameterProfile) -> Bool? {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x <= y
        case (.double(let x), .double(let y)): return x <= y
        case (.string(let x), .string(let y)):
            guard let la = pa.layout, la == pb.layout, let mx = la.parse(x), let my = la.parse(y) else { return nil }
            return mx <= my
        default: return nil
        }
    }

    /// A value of the type `p` declares.
    static func value(_ p: ParameterProfile, rng: inout SeededGenerator, optionalProbability: Double) -> JSONValue {
        // An enum on an array constrains its items (BFCL's schemas put it there).
        if !p.choices.isEmpty && p.kind != .array { return Pick.pick(p.choices, &rng) }
        let w = Set(ExampleSynthesizer.words(p.name) + p.words)
        switch p.kind {
        case .integer:
            var (lo, hi) = integerRange(w, role: p.role)
            if let m = number(p.schema["minimum"]) { lo = max(lo, Int64(m.rounded(.up))); hi = max(hi, lo) }
            if let m = number(p.schema["maximum"]) { hi = min(hi, Int64(m.rounded(.down))); lo = min(lo, hi) }
            // Durations are sometimes round ("a quarter of an hour", "90 minutes"): a multiple of 15 one time in four
            // when the range allows (more often, the round values become a prior the adapter falls back on: "3 minutes" → 30).
            if p.role == .duration, hi / 15 > lo / 15, Pick.uniform(&rng) < 0.25 {
                let first = max(1, (lo + 14) / 15), last = hi / 15
                return .int(15 * (first + Int64(rng.next() % UInt64(last - first + 1))))
            }
            return .int(lo + Int64(rng.next() % UInt64(hi - lo + 1)))
        case .number:
            var (lo, hi, decimals) = numberRange(w, role: p.role)
            if let m = number(p.schema["minimum"]) { lo = max(lo, m); hi = max(hi, lo + 1) }
            if let m = number(p.schema["maximum"]) { hi = min(hi, m); lo = min(lo, hi - 1) }
            if p.role == .money && lo <= 10 && hi >= 100 {
                // Money: whole amounts half of the time ("$40"), else cents ending in a non-zero digit.
                let whole = Double(Int(lo.rounded(.up)) + Int(rng.next() % UInt64(max(1, Int(hi - lo)))))
                return .double(rng.next() & 1 == 0 ? whole : whole + Double(1 + 2 * Int(rng.next() % 50)) / 100)
            }
            let scale = pow(10, Double(decimals))
            for _ in 0..<8 {
                let x = ((lo + (hi - lo) * Pick.uniform(&rng)) * scale).rounded() / scale
                if x != x.rounded() && x >= lo && x <= hi { return .double(x) }
            }
            return .double(((lo + hi) / 2 * scale).rounded() / scale + 0.5 / scale)
        case .boolean:
            return .bool(rng.next() & 1 == 1)
        case .array:
            let item = p.items!
            if p.isRange && (item.kind == .integer || item.kind == .number) {
                var pair = [value(item, rng: &rng, optionalProbability: optionalProbability)]
                for _ in 0..<8 where pair.count < 2 {
                    let v = value(item, rng: &rng, optionalProbability: optionalProbability)
                    if v != pair[0] { pair.append(v) }
                }
                if pair.count == 2, case .int(let x) = pair[0], case .int(let y) = pair[1], x > y { pair.reverse() }
                if pair.count == 2, case .double(let x) = pair[0], case .double(let y) = pair[1], x > y { pair.reverse() }
                return .array(pair)
            }
            let lo = max(1, Int(number(p.schema["minItems"]) ?? 1)), hi = max(lo, min(3, Int(number(p.schema["maxItems"]) ?? 3)))
            let n = lo + Int(rng.next() % UInt64(hi - lo + 1))
            var values = [JSONValue]()
            for _ in 0..<(4 * n) where values.count < n {
                let v = p.choices.isEmpty ? value(item, rng: &rng, optionalProbability: optionalProbability) : Pick.pick(p.choices, &rng)
                if !values.contains(v) { values.append(v) }
            }
            return .array(values)
        case .object:
            if let members = p.members { return .object(object(members, nested: true, rng: &rng, optionalProbability: optionalProbability)) }
            return .object(JSONObject([(Pick.pick(Pools.topics, &rng).replacingOccurrences(of: " ", with: "_"), .string(Pick.pick(Pools.firstNames, &rng)))]))
        case .string, .any:
            return .string(stringValue(p, nameWords: w, rng: &rng))
        }
    }

    private static func number(_ v: JSONValue?) -> Double? {
        switch v {
        case .int(let i)?: return Double(i)
        case .double(let d)?: return d
        default: return nil
        }
    }

    private static func integerRange(_ w: Set<String>, role: ParameterRole) -> (Int64, Int64) {
        if role == .year { return (1990, 2030) }
        if w.contains("century") { return (1, 21) }
        if role == .percent { return (1, 100) }
        if w.contains("years") { return (1, 40) }
        if !w.isDisjoint(with: ["minute", "minutes", "mins"]) { return (1, 120) }
        if !w.isDisjoint(with: ["second", "seconds", "secs"]) { return (1, 300) }
        if !w.isDisjoint(with: ["hour", "hours"]) { return (1, 48) }
        if !w.isDisjoint(with: ["day", "days", "nights"]) { return (1, 30) }
        if w.contains("age") { return (1, 99) }
        if !w.isDisjoint(with: ["percent", "percentage"]) { return (1, 100) }
        if !w.isDisjoint(with: ["count", "number", "num", "n", "limit", "top", "max", "quantity", "size", "k"]) || role == .count { return (1, 50) }
        return (1, 500)
    }

    private static func numberRange(_ w: Set<String>, role: ParameterRole) -> (Double, Double, Int) {
        if w.contains("latitude") || w.contains("lat") { return (-90, 90, 4) }
        if w.contains("longitude") || w.contains("lon") || w.contains("lng") { return (-180, 180, 4) }
        if role == .money || !w.isDisjoint(with: ["amount", "price", "cost", "salary", "balance", "principal", "budget", "value", "income"]) {
            return (5, 5000, 2)
        }
        if !w.isDisjoint(with: ["probability", "ratio", "fraction"]) { return (0.01, 0.99, 2) }
        if role == .percent { return (0.5, 99.5, 1) }
        if !w.isDisjoint(with: ["rate", "interest", "percent", "percentage"]) { return (0.5, 15, 1) }
        if w.contains("temperature") { return (-20, 40, 1) }
        return (0.5, 500, 1)
    }

    private static func moment(_ layout: DateLayout, rng: inout SeededGenerator) -> Moment {
        var m = Moment(year: 2024 + Int(rng.next() % 4), month: 1 + Int(rng.next() % 12), day: 1 + Int(rng.next() % 28))
        if layout.hasTime { m.hour = 6 + Int(rng.next() % 17); m.minute = 5 * Int(rng.next() % 12) }
        if !layout.hasDay { m.day = 1 }
        return m
    }

    private static func stringValue(_ p: ParameterProfile, nameWords w: Set<String>, rng: inout SeededGenerator) -> String {
        let d = p.description.lowercased()
        func has(_ keys: Set<String>) -> Bool { !w.isDisjoint(with: keys) }
        // The description's own examples, some of the time, for roles with a pool; always else.
        if !p.examples.isEmpty && ![.date, .clockTime, .email, .url, .phone, .currency].contains(p.role)
            && (p.role == .generic || p.role == .identifier || Pick.uniform(&rng) < (p.role == .unitName ? 0.8 : 0.25)) {
            return Pick.pick(p.examples, &rng)
        }
        switch p.role {
        case .date: return (p.layout ?? .isoDate).format(moment(p.layout ?? .isoDate, rng: &rng))
        case .clockTime:
            let layout = p.layout ?? .clock
            return layout.format(moment(layout, rng: &rng))
        case .currency: return Pick.pick(Pools.currencies, &rng)
        case .unitName:
            let dimension = Pools.dimensionWords.first { d.contains($0.word) || w.contains($0.word) }?.dimension
            let units = Pools.units.first { $0.dimension == dimension }?.units ?? Pick.pick(Pools.units, &rng).units
            return Pick.pick(units, &rng)
        case .email: return Pick.pick(Pools.firstNames, &rng).lowercased() + "@example.com"
        case .url: return "https://www." + Pick.pick(Pools.companies, &rng).lowercased() + ".com"
        case .phone: return String(format: "+1-555-%04d", Int(rng.next() % 10000))
        case .language: return Pick.pick(Pools.languages, &rng)
        case .place:
            if d.contains("city, country") || d.contains("city and country") { return Pick.pick(Pools.citiesWithCountry, &rng) }
            if d.contains("state") || d.contains(", ca") { return Pick.pick(Pools.usCities, &rng) }
            if has(["country", "nation"]) { return Pick.pick(Pools.countries, &rng) }
            if has(["address", "street"]) { return "\(1 + Int(rng.next() % 400)) \(Pick.pick(Pools.lastNames, &rng)) Street" }
            return Pick.pick(Pools.cities, &rng)
        case .creator, .person:
            if has(["team"]) { return Pick.pick(Pools.teams, &rng) }
            if has(["username"]) { return Pick.pick(Pools.firstNames, &rng).lowercased() + String(10 + rng.next() % 90) }
            return Pick.pick(Pools.firstNames, &rng) + " " + Pick.pick(Pools.lastNames, &rng)
        case .identifier: return "ID-\(1000 + Int(rng.next() % 9000))"
        case .text: return Pick.pick(Pools.texts, &rng)
        case .title: return "The " + pseudoWord(&rng) + " " + Pick.pick(["Garden", "Voyage", "Letters", "River", "Machine", "Winter"], &rng)
        case .topic: return Pick.pick(Pools.topics, &rng)
        default: break
        }
        if has(["company", "organization", "organisation", "brand", "firm", "manufacturer"]) { return Pick.pick(Pools.companies, &rng) }
        if has(["color", "colour"]) { return Pick.pick(Pools.colors, &rng) }
        if has(["genre", "style", "category", "type", "kind"]) { return Pick.pick(Pools.genres, &rng) }
        if has(["food", "dish", "recipe", "ingredient", "cuisine", "meal"]) { return Pick.pick(Pools.foods, &rng) }
        if has(["day", "weekday"]) && d.contains("week") { return Pick.pick(Pools.weekdays, &rng) }
        if has(["name"]), let thing = p.words.first(where: { !["name", "full", "first", "last", "the", "of"].contains($0) }) {
            // A named thing: "museum_name" → "Kalomi Museum".
            return pseudoWord(&rng) + " " + thing.prefix(1).uppercased() + thing.dropFirst()
        }
        if has(["name"]) { return Pick.pick(Pools.firstNames, &rng) + " " + Pick.pick(Pools.lastNames, &rng) }
        return pseudoWord(&rng)
    }

    private static func pseudoWord(_ rng: inout SeededGenerator) -> String {
        Pick.pick(Pools.syllables, &rng).capitalized + Pick.pick(Pools.syllables, &rng) + Pick.pick(Pools.syllables, &rng)
    }
}
