// ParameterProfile: what a tool's parameters mean, read from their names, descriptions and types,
// for drawing their values and phrasing them: each parameter's role (a place, a person, a date,
// an amount of money, a duration, a flag, …), its unit, the noun a request names it by, the
// example values its description offers and the date layout it asks for; and, per object, the
// parameters that read best together (from/to, start/end, min/max, first/second) and the
// "amount from one unit or currency to another" triple of conversions.
import Foundation
import ParaTool

/// What a parameter holds, as far as phrasing is concerned.
enum ParameterRole: Equatable {
    case place, creator, person, date, clockTime, currency, unitName, language, topic, text, title, email, url, phone
    case identifier, year, duration, count, money, percent, coordinate, measure, flag, choice, list, object, generic
}

/// The JSON type a schema declares, with BFCL's names mapped (dict → object, float → number,
/// tuple → array).
enum ValueKind {
    case string, integer, number, boolean, array, object, any

    init(_ schema: JSONValue) {
        switch schema["type"]?.stringValue ?? "string" {
        case "integer", "int": self = .integer
        case "number", "float", "double": self = .number
        case "boolean", "bool": self = .boolean
        case "array", "tuple", "list": self = .array
        case "dict", "object": self = .object
        case "any": self = .any
        default: self = .string
        }
    }
}

/// One parameter's meaning for synthesis.
final class ParameterProfile {
    let name: String
    let schema: JSONValue
    let kind: ValueKind
    /// The name's words ("numPlayers" → number, players; abbreviations spelled out).
    let words: [String]
    let description: String
    let role: ParameterRole
    /// The unit a number is in ("minutes", "meters"), from the name or "in <unit>" in the description.
    let unit: String?
    /// Nouns a request names the parameter by: the name's words, and the description's leading
    /// noun phrase when it shares a word with the name ("number of players").
    let nouns: [String]
    /// Example values the description offers ("e.g. Paris", "such as 'villa', 'condo'").
    let examples: [String]
    /// The date or time layout the value must have.
    let layout: DateLayout?
    /// The enum's values.
    let choices: [JSONValue]
    /// The members of an object parameter with properties.
    let members: ObjectProfile?
    /// The items of an array parameter.
    let items: ParameterProfile?
    /// Whether the description says the value is a range (two ordered numbers: "start and end year").
    let isRange: Bool

    /// The profile of parameter `name`; `context` is the words of the object it belongs to, which
    /// give a generic name its role (a budget's "min" is money).
    init(name: String, schema: JSONValue, context: [String] = []) {
        self.name = name
        self.schema = schema
        kind = ValueKind(schema)
        let description = schema["description"]?.stringValue ?? ""
        self.description = description
        let raw = Self.splitDigits(ExampleSynthesizer.words(name))
        words = (raw.count > 1 && raw[0] == "the" ? Array(raw.dropFirst()) : raw).map { Self.abbreviations[$0] ?? $0 }
        choices = schema["enum"]?.arrayValue ?? []
        let lower = description.lowercased()
        layout = kind == .string && choices.isEmpty && !raw.contains("format") ? DateLayout.read(description, nameWords: Set(raw)) : nil
        unit = Self.unit(nameWords: raw, description: lower, kind: kind)
        examples = Self.examples(in: description)
        isRange = kind == .array && ["start and end", "range", "min and max", "minimum and maximum", "lower and upper", "beginning and end"]
            .contains { lower.contains($0) }
        if kind == .object, schema["properties"]?.objectValue?.isEmpty == false || schema["required"]?.arrayValue?.isEmpty == false {
            members = ObjectProfile(schema, context: raw)
        } else {
            members = nil
        }
        items = kind == .array ? ParameterProfile(name: name, schema: schema["items"] ?? ["type": "string"]) : nil
        let nameNoun = words.joined(separator: " ")
        var nouns = [nameNoun]
        if let phrase = Self.descriptionNoun(lower), phrase != nameNoun,
           !Set(ExampleSynthesizer.words(phrase)).isDisjoint(with: words) || raw.allSatisfy({ $0.count <= 2 }) {
            nouns.append(phrase)
        }
        self.nouns = nouns
        let generic: Set<String> = ["min", "max", "minimum", "maximum", "start", "end", "low", "high", "lower", "upper", "from", "to", "value"]
        let roleWords = Set(raw + words).isSubset(of: generic) ? Set(raw + words + context) : Set(raw + words)
        role = Self.role(kind: kind, words: roleWords, description: lower, unit: unit, layout: layout, hasChoices: !choices.isEmpty)
    }

    /// Words with a trailing number split off: "num1" → "num", "1".
    static func splitDigits(_ words: [String]) -> [String] {
        words.flatMap { w -> [String] in
            guard let i = w.firstIndex(where: \.isNumber), i != w.startIndex, w[i...].allSatisfy(\.isNumber) else { return [w] }
            return [String(w[..<i]), String(w[i...])]
        }
    }

    /// Whether the name is a symbol ("a", "x", "n1") rather than words.
    var isSymbol: Bool { words.count <= 2 && words[0].count <= 2 && words.dropFirst().allSatisfy { $0.allSatisfy(\.isNumber) } }

    private static let abbreviations = ["num": "number", "qty": "quantity", "temp": "temperature", "avg": "average", "desc": "description",
                                        "addr": "address", "dob": "date of birth", "msg": "message", "pct": "percent", "lang": "language"]

    private static func role(kind: ValueKind, words w: Set<String>, description d: String, unit: String?, layout: DateLayout?,
                             hasChoices: Bool) -> ParameterRole {
        func has(_ keys: Set<String>) -> Bool { !w.isDisjoint(with: keys) }
        if hasChoices { return .choice }
        switch kind {
        case .boolean: return .flag
        case .array: return .list
        case .object: return .object
        case .integer, .number:
            if has(["year"]) && kind == .integer { return .year }
            if has(["latitude", "longitude", "lat", "lon", "lng"]) { return .coordinate }
            if has(["amount", "price", "cost", "salary", "balance", "principal", "budget", "income", "investment", "payment", "loan",
                    "deposit", "fee", "revenue", "expenses", "savings"]) || d.contains("in dollars") || d.contains("in usd") { return .money }
            if d.contains("percent") || d.contains("%") || has(["percentage", "percent"]) { return d.contains("decimal") ? .generic : .percent }
            if let unit { return Pools.durationUnits.contains(unit.lowercased()) ? .duration : .measure }
            if has(["count", "number", "quantity", "players", "people", "guests", "rooms", "bedrooms", "bathrooms", "items", "tickets",
                    "nights", "adults", "children", "copies", "results", "limit", "top", "size"]) { return .count }
            return .generic
        case .string, .any:
            if w.contains("format") { return .generic }
            if let layout { return layout.hasDate ? .date : .clockTime }
            if has(["date", "birthday", "datetime"]) { return .date }
            if has(["time"]) && !has(["zone", "timezone", "period", "frame", "signature", "span", "duration", "limit", "unit"]) {
                return .clockTime
            }
            if has(["currency"]) || (has(["from", "to", "base", "target", "source"]) && d.contains("currency")) { return .currency }
            if has(["unit", "units"]) || (has(["from", "to"]) && d.contains("unit")) { return .unitName }
            if has(["email", "mail"]) { return .email }
            if has(["url", "website", "link", "domain"]) { return .url }
            if has(["phone", "mobile"]) { return .phone }
            if has(["language", "lang"]) { return .language }
            if has(["city", "location", "place", "destination", "origin", "town", "region", "country", "nation", "departure", "arrival",
                    "county", "area", "state", "address", "venue"]) || d.hasPrefix("the city") || d.contains("city name") { return .place }
            if has(["author", "artist", "composer", "director", "creator", "writer", "painter", "band", "singer", "designer",
                    "architect", "inventor", "discoverer"]) { return .creator }
            if has(["person", "actor", "user", "username", "player", "owner", "recipient", "contact", "customer", "patient", "employee",
                    "student", "leader", "president", "scientist", "manager", "sender", "member", "athlete", "team", "passenger", "traveler",
                    "traveller", "guest", "client", "driver", "doctor", "teacher", "friend", "candidate", "applicant", "attendee",
                    "participant", "buyer", "seller", "tenant", "host", "speaker", "reviewer", "lawyer", "judge", "defendant",
                    "plaintiff", "worker", "individual", "victim", "suspect", "politician", "celebrity", "monarch", "king", "queen"])
                || d.hasPrefix("the name of the person") || d.hasPrefix("name of the person") { return .person }
            if has(["id", "identifier", "code", "sku", "isbn", "key", "token", "number"]) { return .identifier }
            if has(["text", "message", "content", "sentence", "paragraph", "review", "comment", "phrase", "note", "body", "statement",
                    "passage", "prompt"]) { return .text }
            if has(["title"]) { return .title }
            if has(["query", "keyword", "keywords", "topic", "search", "term", "subject", "question"]) { return .topic }
            return .generic
        }
    }

    /// The unit a number parameter is in: a unit word in its name ("duration_minutes"), or
    /// "in <unit>" / "(<unit>)" in its description.
    private static func unit(nameWords: [String], description d: String, kind: ValueKind) -> String? {
        guard kind == .integer || kind == .number else { return nil }
        for w in nameWords.reversed() where Pools.durationUnits.contains(w) || ["km", "kg", "miles", "meters", "feet"].contains(w) {
            return w
        }
        for u in Pools.unitWords {
            let lu = u.lowercased()
            for cue in ["in " + lu, "(" + lu + ")", "in units of " + lu, "measured in " + lu] {
                guard let r = d.range(of: cue) else { continue }
                let after = d[r.upperBound...].first
                if after == nil || !(after!.isLetter || after!.isNumber) { return u }
            }
        }
        return nil
    }

    /// The description's leading noun phrase, up to its first verb-like or joining word, keeping
    /// one "of" ("Number of bedrooms required" → "number of bedrooms"); nil when it is empty or
    /// longer than four words.
    static func descriptionNoun(_ d: String) -> String? {
        let clause = d.split(whereSeparator: { ",.;:(".contains($0) }).first.map(String.init) ?? ""
        var words = clause.split(separator: " ").map(String.init)
        let leading: Set<String> = ["the", "a", "an", "specific", "given", "specified", "optional", "particular", "desired", "target"]
        while let first = words.first, leading.contains(first) { words.removeFirst() }
        let stops: Set<String> = ["that", "which", "who", "whose", "to", "for", "in", "on", "at", "from", "with", "by", "is", "are", "be",
                                  "will", "should", "you", "we", "being", "used", "as", "when", "where", "if", "or", "and", "the", "e",
                                  "eg", "i", "it", "this", "can", "must", "default", "defaults", "between", "within", "into", "per", "such",
                                  "like", "including", "etc"]
        var out = [String](), sawOf = false
        for w in words {
            if w == "of" {
                if sawOf || out.isEmpty { break }
                sawOf = true
                out.append(w)
                continue
            }
            if stops.contains(w) || !w.allSatisfy({ $0.isLetter || $0 == "-" }) { break }
            if out.count >= 1 && w.count > 4 && w.hasSuffix("ed") && !["speed", "seed", "breed"].contains(w) { break }
            if out.count >= 1 && w.count > 5 && w.hasSuffix("ing") { break }
            out.append(w)
        }
        while out.last == "of" { out.removeLast() }
        guard (1...4).contains(out.count) else { return nil }
        return out.joined(separator: " ")
    }

    /// Example values a description offers after "e.g.", "for example", "such as" or "like", and
    /// quoted alternatives ("'12h' or '24h'"); format placeholders and long phrases are left out.
    static func examples(in description: String) -> [String] {
        var out = [String]()
        func add(_ raw: String) {
            var s = raw.trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: "'\"`.")))
            if s.lowercased().hasPrefix("etc") { return }
            if s.lowercased().hasSuffix(" etc") { s = String(s.dropLast(4)) }
            let placeholderWords: Set<String> = ["city", "country", "state", "province", "name", "value", "key", "type", "number", "format",
                                                 "yyyy", "mm", "dd", "hh", "ss", "string", "first", "last", "true", "false", "none", "null"]
            let w = ExampleSynthesizer.words(s)
            guard !s.isEmpty, s.count <= 40, w.count <= 5, !w.allSatisfy(placeholderWords.contains), DateLayout.read(s, nameWords: []) == nil
                    || s.first?.isNumber == true, !out.contains(s) else { return }
            out.append(s)
        }
        for quoted in matches(#"'([^']{1,40})'|"([^"]{1,40})""#, in: description) { add(quoted) }
        for cue in ["e.g.,", "e.g.", "E.g.,", "E.g.", "for example,", "for example", "such as", "like"] {
            guard let r = description.range(of: cue) else { continue }
            let tail = description[r.upperBound...]
            if tail.trimmingCharacters(in: .whitespaces).first.map({ "'\"".contains($0) }) == true { continue }
            let segment = String(tail.prefix { !").;".contains($0) && $0 != "\n" })
                .replacingOccurrences(of: " or ", with: ", ").replacingOccurrences(of: " and ", with: ", ")
            var parts = segment.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            // "San Diego, CA": a two-letter part belongs to the one before it.
            var merged = [String]()
            for p in parts {
                if let last = merged.last, p.count == 2, p.allSatisfy(\.isUppercase) { merged[merged.count - 1] = last + ", " + p } else { merged.append(p) }
            }
            parts = merged
            for p in parts where !p.isEmpty { add(p) }
            break
        }
        return out
    }

    static func matches(_ pattern: String, in text: String) -> [String] {
        guard let re = try? NSRegularExpression(pattern: pattern) else { return [] }
        let ns = text as NSString
        return re.matches(in: text, range: NSRange(location: 0, length: ns.length)).compactMap { m in
            (1..<m.numberOfRanges).lazy.map { m.range(at: $0) }.first { $0.location != NSNotFound }.map { ns.substring(with: $0) }
        }
    }
}

/// How two parameters relate when they read as one phrase.
enum PairKind: Equatable {
    /// A way from one thing to another: "from Boston to Denver".
    case direction
    /// An ordered interval: "from 1990 to 2000", "between May 1 and May 9".
    case range
    /// Lower and upper bounds: "at least 3 and at most 8".
    case bounds
    /// Two of a kind in order: "Paris and Rome" (city_1, city_2).
    case sequence
}

/// Two parameters of one object that read best together, `first` being the from/start/min side.
struct ParameterPair: Equatable {
    let first: String
    let second: String
    let kind: PairKind
    /// The words both names share ("year" for start_year/end_year).
    let rest: [String]
}

/// The parameters of an object schema (a tool's arguments, or a nested object), their pairs, and
/// the conversion triple when there is one.
final class ObjectProfile {
    /// In the schema's property order.
    let parameters: [ParameterProfile]
    let required: Set<String>
    let pairs: [ParameterPair]
    /// An amount converted from one currency or unit to another: "250 euros in yen".
    let conversion: (amount: String, from: String, to: String)?

    /// The profile of an object schema (`context`: the words of the parameter holding it). A required name without a property (a dict whose
    /// description names its keys) is a number when the description speaks of numbers, else a string.
    init(_ schema: JSONValue, context: [String] = []) {
        let properties = schema["properties"]?.objectValue ?? JSONObject()
        let requiredNames = schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let undeclared: JSONValue = (schema["description"]?.stringValue ?? "").lowercased().contains("number") ? ["type": "integer"] : ["type": "string"]
        parameters = properties.members.map { ParameterProfile(name: $0.key, schema: $0.value, context: context) }
            + requiredNames.filter { properties[$0] == nil }.map { ParameterProfile(name: $0, schema: undeclared, context: context) }
        required = Set(requiredNames)
        let pairs = Self.pairs(parameters.map(\.name))
        self.pairs = pairs
        let byName = Dictionary(parameters.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var conversion: (String, String, String)?
        if let pair = pairs.first(where: { $0.kind == .direction && [.currency, .unitName].contains(byName[$0.first]?.role) }) {
            let amounts = parameters.filter { [.integer, .number].contains($0.kind) && $0.choices.isEmpty }
            let named = amounts.first { !Set($0.words).isDisjoint(with: ["amount", "value", "quantity", "sum", "money", "number", "price"]) }
            if let amount = named ?? (amounts.count == 1 ? amounts[0] : nil) { conversion = (amount.name, pair.first, pair.second) }
        }
        self.conversion = conversion
    }

    subscript(name: String) -> ParameterProfile? { parameters.first { $0.name == name } }

    /// The pair `name` belongs to.
    func pair(of name: String) -> ParameterPair? { pairs.first { $0.first == name || $0.second == name } }

    private static let markers: [(String, String, PairKind)] = [
        ("from", "to", .direction), ("origin", "destination", .direction), ("source", "target", .direction),
        ("departure", "arrival", .direction), ("src", "dst", .direction), ("base", "target", .direction), ("start", "end", .range),
        ("begin", "end", .range), ("in", "out", .range), ("earliest", "latest", .range), ("min", "max", .bounds),
        ("minimum", "maximum", .bounds), ("lower", "upper", .bounds), ("low", "high", .bounds),
    ]
    private static let placeWords: Set<String> = ["location", "city", "point", "place", "address", "station", "airport", "position",
                                                  "coordinates", "country", "node", "port", "town"]

    /// Pairs among sibling names: the same words around a marker pair (from_currency/to_currency,
    /// start_year/end_year, origin/destination, min_price/max_price), or the same words ending in
    /// two numbers (city_1/city_2). Each name is in one pair at most.
    static func pairs(_ names: [String]) -> [ParameterPair] {
        func split(_ name: String) -> [String] { ParameterProfile.splitDigits(ExampleSynthesizer.words(name)) }
        var out = [ParameterPair](), used = Set<String>()
        for (i, a) in names.enumerated() {
            for b in names[(i + 1)...] where !used.contains(a) && !used.contains(b) {
                let wa = split(a), wb = split(b)
                var found: ParameterPair?
                for (m1, m2, kind) in markers {
                    for (x, y, wx, wy) in [(a, b, wa, wb), (b, a, wb, wa)] {
                        guard let ix = wx.firstIndex(of: m1), let iy = wy.firstIndex(of: m2) else { continue }
                        var rx = wx, ry = wy
                        rx.remove(at: ix)
                        ry.remove(at: iy)
                        guard rx == ry else { continue }
                        var k = kind
                        if kind == .range && m1 == "start" && !placeWords.isDisjoint(with: rx) { k = .direction }
                        if kind == .direction && m1 == "from" && !Set(rx).isDisjoint(with: ["year", "date", "time", "day", "month"]) { k = .range }
                        found = ParameterPair(first: x, second: y, kind: k, rest: rx)
                        break
                    }
                    if found != nil { break }
                }
                // Numbered names pair only when there are two of them (side1, side2, side3 are three sides).
                let numbered = names.filter { split($0).dropLast() == wa.dropLast() && split($0).last.flatMap { Int($0) } != nil }
                if found == nil, numbered.count == 2, let da = wa.last.flatMap({ Int($0) }), let db = wb.last.flatMap({ Int($0) }), da != db,
                   wa.dropLast() == wb.dropLast(), !wa.dropLast().isEmpty {
                    found = da < db ? ParameterPair(first: a, second: b, kind: .sequence, rest: Array(wa.dropLast()))
                        : ParameterPair(first: b, second: a, kind: .sequence, rest: Array(wa.dropLast()))
                }
                if let found {
                    out.append(found)
                    used.formUnion([a, b])
                }
            }
        }
        return out
    }
}

/// A point in time, as far as a date or time value needs one.
struct Moment: Comparable {
    var year = 2026, month = 1, day = 1, hour = 0, minute = 0, second = 0

    static func < (l: Moment, r: Moment) -> Bool {
        (l.year, l.month, l.day, l.hour, l.minute, l.second) < (r.year, r.month, r.day, r.hour, r.minute, r.second)
    }

    /// The same time `days` days later (Gregorian calendar).
    func adding(days: Int) -> Moment {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let date = calendar.date(from: DateComponents(year: year, month: month, day: day)),
              let later = calendar.date(byAdding: .day, value: days, to: date) else { return self }
        let c = calendar.dateComponents([.year, .month, .day], from: later)
        var m = self
        m.year = c.year ?? year
        m.month = c.month ?? month
        m.day = c.day ?? day
        return m
    }
}

/// A date or time layout a description asks for ("YYYY-MM-DD", "dd/mm/yyyy HH:MM", "DD MMM,
/// YYYY", or the shape of an example such as "2023-04-12T14:00:00Z").
struct DateLayout: Equatable {
    enum Field: Equatable { case year, month, monthAbbreviation, day, hour, minute, second, literal(String) }
    let fields: [Field]

    static let isoDate = DateLayout(fields: [.year, .literal("-"), .month, .literal("-"), .day])
    static let isoDateTime = DateLayout(fields: [.year, .literal("-"), .month, .literal("-"), .day, .literal("T"), .hour, .literal(":"),
                                                 .minute, .literal(":"), .second])
    static let clock = DateLayout(fields: [.hour, .literal(":"), .minute])

    var hasDate: Bool { fields.contains(.year) && (fields.contains(.month) || fields.contains(.monthAbbreviation)) }
    var hasDay: Bool { fields.contains(.day) }
    var hasTime: Bool { fields.contains(.hour) }

    /// The layout a description states, or the shape of an ISO example in it, or ISO 8601 when
    /// it names that; for a name with date words and no stated layout, ISO dates; nil otherwise.
    static func read(_ description: String, nameWords: Set<String>) -> DateLayout? {
        let pattern = #"(?i)(?<![a-z])(?:y{4}|m{2,3}|d{2}|h{2}|s{2})(?:(?:[-/:., ]{1,2}|t)(?:y{4}|m{2,3}|d{2}|h{2}|s{2}))+z?(?![a-z])"#
        if let token = ParameterProfile.matches("(" + pattern + ")", in: description).first, let layout = parse(pattern: token) {
            return layout
        }
        if let example = ParameterProfile.matches(#"(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?Z?)"#, in: description).first {
            var fields = isoDate.fields
            let rest = example.dropFirst(10)
            if !rest.isEmpty {
                fields += [.literal(String(rest.first!)), .hour, .literal(":"), .minute]
                if rest.count >= 9 { fields += [.literal(":"), .second] }
                if rest.hasSuffix("Z") { fields.append(.literal("Z")) }
            }
            return DateLayout(fields: fields)
        }
        let d = description.lowercased()
        if d.contains("iso 8601") || d.contains("iso-8601") || d.contains("iso format") {
            return d.contains("time") || nameWords.contains("datetime") ? isoDateTime : isoDate
        }
        if !nameWords.isDisjoint(with: ["date", "birthday", "datetime", "dob"]) { return isoDate }
        return nil
    }

    private static func parse(pattern token: String) -> DateLayout? {
        var fields = [Field](), chars = Array(token), i = 0
        while i < chars.count {
            let c = Character(chars[i].lowercased())
            var j = i
            while j < chars.count && Character(chars[j].lowercased()) == c && "ymdhs".contains(c) { j += 1 }
            let run = j - i
            switch c {
            case "y": fields.append(.year)
            case "m": fields.append(run == 3 ? .monthAbbreviation : fields.last(where: { !Self.isLiteral($0) }) == .hour ? .minute : .month)
            case "d": fields.append(.day)
            case "h": fields.append(.hour)
            case "s": fields.append(.second)
            default:
                j = i + 1
                fields.append(.literal(c == "t" ? "T" : c == "z" ? "Z" : String(chars[i])))
            }
            i = j
        }
        let layout = DateLayout(fields: fields)
        return layout.hasDate || layout.hasTime ? layout : nil
    }

    private static func isLiteral(_ f: Field) -> Bool { if case .literal = f { return true } else { return false } }

    /// A moment written in this layout.
    func format(_ m: Moment) -> String {
        fields.map { f -> String in
            switch f {
            case .year: return String(format: "%04d", m.year)
            case .month: return String(format: "%02d", m.month)
            case .monthAbbreviation: return Pools.monthAbbreviations[m.month - 1]
            case .day: return String(format: "%02d", m.day)
            case .hour: return String(format: "%02d", m.hour)
            case .minute: return String(format: "%02d", m.minute)
            case .second: return String(format: "%02d", m.second)
            case .literal(let s): return s
            }
        }.joined()
    }

    /// The moment a value in this layout names, or nil when it does not fit the layout.
    func parse(_ value: String) -> Moment? {
        var m = Moment(), rest = Substring(value)
        func digits(_ n: Int) -> Int? {
            guard rest.count >= n, rest.prefix(n).allSatisfy(\.isNumber) else { return nil }
            defer { rest = rest.dropFirst(n) }
            return Int(rest.prefix(n))
        }
        for f in fields {
            switch f {
            case .year: guard let v = digits(4) else { return nil }; m.year = v
            case .month: guard let v = digits(2), (1...12).contains(v) else { return nil }; m.month = v
            case .monthAbbreviation:
                guard let i = Pools.monthAbbreviations.firstIndex(where: { rest.hasPrefix($0) }) else { return nil }
                m.month = i + 1
                rest = rest.dropFirst(3)
            case .day: guard let v = digits(2), (1...31).contains(v) else { return nil }; m.day = v
            case .hour: guard let v = digits(2) else { return nil }; m.hour = v
            case .minute: guard let v = digits(2) else { return nil }; m.minute = v
            case .second: guard let v = digits(2) else { return nil }; m.second = v
            case .literal(let s): guard rest.hasPrefix(s) else { return nil }; rest = rest.dropFirst(s.count)
            }
        }
        return rest.isEmpty ? m : nil
    }
}
