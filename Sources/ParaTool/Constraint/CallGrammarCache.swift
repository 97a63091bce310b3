// CallGrammarCache: the compiled CallGrammars of recent requests, so a request whose candidates,
// call limit and tool choice were seen before reuses the grammar instead of compiling its schemas
// again. Keyed by the candidates' names and their schemas' canonical text (so a spec whose schema
// changed compiles anew), bounded by count, least recently used evicted first.
import Foundation

/// A bounded least-recently-used cache of compiled call grammars. Not thread-safe: one per engine.
public final class CallGrammarCache {
    /// What decides a grammar: the candidates in order (name and schema) and the request's limits.
    struct Key: Hashable {
        let tools: [String]
        /// Each candidate's schema as its canonical text (`schemaText`): the text, not a hash of
        /// it, so two schemas never share a grammar.
        let schemas: [String]
        let maxCalls: Int?
        let choice: ToolChoice
    }

    /// Most grammars kept.
    public let capacity: Int
    /// Lookups answered from the cache, and grammars compiled.
    public private(set) var hits = 0, misses = 0
    private var entries: [Key: (grammar: CallGrammar, used: UInt64)] = [:]
    /// The canonical schema text of each tool seen, with the schema it was written from: comparing
    /// a schema with the one held costs less than serializing it again. Cleared when it holds
    /// sixteen times as many tools as the cache holds grammars.
    private var texts: [String: (schema: JSONValue, text: String)] = [:]
    private var clock: UInt64 = 0

    /// A cache of at most `capacity` grammars (at least 1).
    public init(capacity: Int = 256) { self.capacity = max(1, capacity) }

    /// Grammars held now.
    public var count: Int { entries.count }

    /// The grammar `CallGrammar(tools: specs, maxCalls: maxCalls, choice: choice)` compiles, from the
    /// cache when the same candidates (same schemas), limit and choice were compiled before.
    public func grammar(tools specs: [ToolSpec], maxCalls: Int?, choice: ToolChoice) -> CallGrammar {
        let key = Key(tools: specs.map(\.name), schemas: specs.map(schemaText), maxCalls: maxCalls, choice: choice)
        clock &+= 1
        if let hit = entries[key] {
            entries[key]?.used = clock
            hits += 1
            return hit.grammar
        }
        misses += 1
        let grammar = CallGrammar(tools: specs, maxCalls: maxCalls, choice: choice)
        if entries.count >= capacity, let oldest = entries.min(by: { $0.value.used < $1.value.used })?.key {
            entries[oldest] = nil
        }
        if texts.count > 16 * capacity { texts.removeAll(keepingCapacity: true) }
        entries[key] = (grammar, clock)
        return grammar
    }

    /// The canonical text of `spec`'s schema, serialized once per schema seen.
    private func schemaText(_ spec: ToolSpec) -> String {
        if let held = texts[spec.name], held.schema == spec.parameters { return held.text }
        let text = spec.parameters.serialized(sortedKeys: true, asciiOnly: false)
        texts[spec.name] = (spec.parameters, text)
        return text
    }
}
