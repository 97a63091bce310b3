// ToolCallEngine: one ParaTool step for a batch of requests — encode each query, weigh its
// candidate tools (the gate, or a baseline selector), render the document-free prompt, generate
// greedily with each request's adapter mixture fused in (one batch, per-row mixtures) and, unless
// turned off, each row held to its candidates' call grammar (CallConstraint), parse the action, and
// account FLOPs (with the Context+Docs cost of the same request for comparison).
import Foundation
import LLM
import Tensor

/// How a request's tools are weighted (the method and the baselines of docs/design.md §1).
public enum SelectionMode: String, Sendable, CaseIterable, Codable {
    /// The gate MLP's softmax (optionally top-N): ParaTool.
    case paratool
    /// Equal weights over the candidates (Param+Average).
    case average
    /// The gate's highest-scoring candidate alone (Param+Top-1).
    case top1
    /// The gold tool's adapter alone (Param+Oracle; needs `goldTool`).
    case oracle
    /// Softmax of cosine(c, d_i) instead of the MLP (Param+EmbSim).
    case embsim
    /// Tool documents of all candidates in the prompt, no adapters (Context+Docs).
    case contextDocs = "context-docs"
}

/// One request to the engine.
public struct ToolCallRequest: Sendable {
    public var id: String
    public var query: String
    public var history: [Step]
    /// Candidate tool names; empty means the whole catalogue.
    public var candidates: [String]
    public var maxNewTokens: Int
    public var topN: Int?
    public var mode: SelectionMode
    /// The gold tool, for `.oracle`.
    public var goldTool: String?
    /// The gold calls' tools in order (a tool once per call), for `.oracle` when an answer holds
    /// several calls: decided call by call, each call under its own gold tool and the answer
    /// ended after the last; under one mixture (`callSteps` off), equal weights over the tools.
    /// Empty: `goldTool` alone.
    public var goldTools: [String] = []
    /// Demonstrations per tool for `.contextDocs`: when non-empty, the prompt is the
    /// Context+Docs&Examples format with up to `examplesPerTool` of each candidate's examples.
    public var examples: [String: [ToolExample]] = [:]
    /// How many of each candidate's `examples` the Context+Docs&Examples prompt shows.
    public var examplesPerTool = 0
    /// Most calls the answer may hold under constrained decoding (nil: `CallGrammar.defaultMaxCalls`);
    /// 1 asks for a single call, as an API's "no parallel tool calls" does.
    public var maxCalls: Int?
    /// What the answer may be: calls, text, or either (`.auto`: text when the gate's no-call
    /// candidate wins, calls otherwise). Held by constrained decoding; an unconstrained engine
    /// lets the model choose.
    public var toolChoice: ToolChoice = .auto

    /// The gold tools `.oracle` weighs: `goldTools`, or `goldTool` when that is empty.
    var oracleTools: [String] { goldTools.isEmpty ? (goldTool.map { [$0] } ?? []) : goldTools }

    public init(id: String, query: String, history: [Step] = [], candidates: [String] = [], maxNewTokens: Int = 96,
                topN: Int? = nil, mode: SelectionMode = .paratool, goldTool: String? = nil) {
        self.id = id
        self.query = query
        self.history = history
        self.candidates = candidates
        self.maxNewTokens = maxNewTokens
        self.topN = topN
        self.mode = mode
        self.goldTool = goldTool
    }
}

/// A tool's weight in one request and the adapter version it used.
public struct ToolWeight: Sendable, Equatable {
    public var tool: String
    public var weight: Float
    /// The adapter version, or nil when the tool has no adapter.
    public var adapterVersion: String?
}

/// The engine's answer to one request.
public struct ToolCallResponse: Sendable {
    public var id: String
    public var action: Action
    public var diagnostics: [ActionDiagnostic]
    /// The generated text (without the stop token).
    public var text: String
    public var weights: [ToolWeight]
    public var promptTokens: Int
    public var generatedTokens: Int
    public var flops: FlopsBreakdown
    /// FLOPs of the same request in the Context+Docs format (docs of every candidate in the prompt).
    public var contextDocsFlops: Int
    /// Wall time of the whole batch this request ran in, in seconds, by phase.
    public var gateSeconds: Double
    public var generateSeconds: Double
    /// The part of `generateSeconds` until the batch's first tokens (prompt processing).
    public var prefillSeconds: Double = 0
    /// How the request was served: its mode, or `.contextDocs` when the engine fell back to the
    /// documents (`documentFallback`).
    public var servedMode: SelectionMode = .paratool
    /// True when the token budget forced a call closed (`ActionDiagnostic.Kind.forceClosed`).
    public var forceClosed = false
    /// The gate's weight of the no-call candidate when it was weighed (a gate trained with it,
    /// `tool_choice` auto, a gate mode); the answer is text when it outweighed every tool.
    public var noToolWeight: Float?
    /// The weights each call was decided under, in call order (the first is `weights`); one
    /// entry when the whole answer had one mixture.
    public var callWeights: [[ToolWeight]] = []
    /// Tokens read again because a call changed the mixture (the prompt and the calls so far).
    public var rereadTokens = 0
}

/// What one request will cost, known from `ToolCallEngine.validate` before any compute.
public struct RequestCost: Sendable, Equatable {
    /// Tokens of the rendered prompt (prefill).
    public var promptTokens: Int
    /// Most tokens the request may generate: its budget.
    public var maxNewTokens: Int
    /// Tokens the gate's encoder reads first (0 when the mode needs no encoding).
    public var encoderTokens: Int
    /// Candidate tools, each an adapter that may be fused in.
    public var candidates: Int

    /// A cost of `promptTokens` prompt tokens, up to `maxNewTokens` new ones, `encoderTokens` read
    /// by the gate's encoder, and `candidates` tools.
    public init(promptTokens: Int, maxNewTokens: Int, encoderTokens: Int, candidates: Int) {
        self.promptTokens = promptTokens
        self.maxNewTokens = maxNewTokens
        self.encoderTokens = encoderTokens
        self.candidates = candidates
    }
}

/// Errors the engine reports for bad requests.
public enum EngineError: Error, CustomStringConvertible {
    case unknownTools([String])
    case noCandidates(String)
    case noGate
    case oracleWithoutGold(String)
    case invalidRequest(String)
    /// The rendered prompt has `tokens` tokens, over `limit`: the model's context (less one
    /// token to generate) or the configured most prompt tokens, as `reason` says.
    case promptTooLong(id: String, tokens: Int, limit: Int, reason: String)
    /// The adapters of these tools were trained on another schema than the catalogue's (their
    /// tools changed) and the engine does not serve with documents in their place.
    case staleAdapters([String])

    public var description: String {
        switch self {
        case .unknownTools(let t): return "unknown tools: \(t.joined(separator: ", "))"
        case .noCandidates(let id): return "request \(id) has no candidate tools and the catalogue is empty"
        case .noGate: return "this mode needs a gate, and the engine has none"
        case .oracleWithoutGold(let id): return "request \(id): oracle mode needs the gold tool among the candidates"
        case .invalidRequest(let m): return m
        case .promptTooLong(let id, let tokens, let limit, let reason):
            return "request \(id): the prompt has \(tokens) tokens, over the limit of \(limit) (\(reason))"
        case .staleAdapters(let t):
            return "the adapters of \(t.joined(separator: ", ")) were trained on an earlier schema of their tools; they are not served until retrained"
        }
    }
}

/// Where the engine finds each tool's adapter.
public protocol AdapterProvider: AnyObject {
    /// The adapter of `tool` and its version, or nil when the tool has none.
    func adapter(for tool: String) throws -> (adapter: ToolAdapter, version: String)?
    /// `ToolSpec.schemaFingerprint` of the schema `tool`'s serving adapter was trained on (nil:
    /// no adapter, or none recorded).
    func schemaFingerprint(of tool: String) throws -> String?
}

extension AdapterProvider {
    public func schemaFingerprint(of tool: String) throws -> String? { nil }
}

/// Adapters held in memory, by tool name.
public final class InMemoryAdapters: AdapterProvider {
    public var adapters: [String: (adapter: ToolAdapter, version: String)]
    public init(_ adapters: [String: (adapter: ToolAdapter, version: String)] = [:]) { self.adapters = adapters }
    public func adapter(for tool: String) throws -> (adapter: ToolAdapter, version: String)? { adapters[tool] }
}

/// Runs requests. Not thread-safe: one engine per worker thread (they can share the model).
public final class ToolCallEngine {
    public let model: LanguageModel
    public let catalogue: ToolCatalogue
    public let adapters: AdapterProvider
    public let gate: GateNetwork?
    public let encoder: ContextEncoder
    public let formatter: PromptFormatter
    /// Whether each answer is held to its candidates' call grammar (schema-constrained decoding).
    public let constrained: Bool
    /// Under constrained decoding, how strongly the selector's weights steer which tool a call
    /// names: `scale · log w` is added to the logits of the tokens writing the name (0: the model
    /// alone picks; a tool the top-N cut to weight 0 cannot be named). Applies to the modes whose
    /// weights come from a selector (paratool, top1, embsim).
    public var namePriorScale: Float = 0
    /// How an answer's calls after the first are decided: each under its own mixture, the
    /// context read again (`.reread`, the default) or kept (`.keepCache`, the ablation), or the
    /// whole answer under one mixture (`.off`). Steps need a gate trained with the no-call
    /// candidate (it ends the answer) in the gate modes, or the gold calls in `.oracle`.
    public let callSteps: CallStepReading
    /// Who ends an answer decided call by call: the model under the last call's mixture (the
    /// default: measured ahead of the gate's no-call candidate on `check3`, docs/results.md), or
    /// the step (the gate's no-call candidate, or the oracle's count of gold calls).
    public let answerEnd: AnswerEnd
    /// Serve a request whose mode needs adapters with its candidates' documents in the prompt
    /// (Context+Docs) when one of them has no adapter yet, or the mode needs a gate and there is
    /// none: how a service answers while its tools are still being trained.
    public let documentFallback: Bool
    /// With more candidates than this, the gate's MLP scores only this many: those whose tool
    /// vectors are most similar to the context (cosine, as EmbSim selects); the others weigh 0.
    /// 0 scores every candidate.
    public let selectionShortlist: Int
    /// The default `selectionShortlist`: 64.
    public static let defaultSelectionShortlist = 64
    private let runner: Transformer
    private let mixture: AdapterMixture
    private let decoder: CallStepDecoder
    private let counter: FlopsCounter
    private var vocabularyStorage: TokenVocabulary?
    /// The grammars of recent requests' candidates, limits and choices. The engine serves one
    /// catalogue (a catalogue change makes a new engine), and the key holds the schemas anyway.
    public let grammars = CallGrammarCache()

    /// `stackCacheBytes` bounds the stacked adapter sets kept for prefill (`AdapterMixture`).
    /// `constrained` holds every answer to the call grammar of its request's candidates;
    /// `vocabulary` is the model's vocabulary prepared for that (built on first use when nil, so
    /// engines made one after another can share one). `documentFallback`: see the property.
    /// `threads`: the engine's budget (its runner, encoder and adapter branches).
    public init(model: LanguageModel, catalogue: ToolCatalogue, adapters: AdapterProvider, gate: GateNetwork?,
                pooling: Pooling = .mean, stackCacheBytes: Int = AdapterMixture.defaultStackCacheBytes,
                constrained: Bool = true, vocabulary: TokenVocabulary? = nil, callSteps: CallStepReading = .reread,
                answerEnd: AnswerEnd = .model, selectionShortlist: Int = ToolCallEngine.defaultSelectionShortlist,
                documentFallback: Bool = false, threads: ComputeThreads = .machine) throws {
        guard let template = model.tokenizer.chatTemplate else {
            throw EngineError.invalidRequest("the model has no chat template: \(model.tokenizer.chatTemplateError.map { "\($0)" } ?? "none found")")
        }
        // The gate's tool vectors and MLP inputs are as wide as the encoder's hidden states.
        if let gate, gate.config.dimension != model.model.config.hiddenSize {
            throw GateError.dimensionMismatch(gate: gate.config.dimension, encoder: model.model.config.hiddenSize)
        }
        self.model = model
        self.constrained = constrained
        self.callSteps = callSteps
        self.answerEnd = answerEnd
        self.selectionShortlist = max(0, selectionShortlist)
        self.documentFallback = documentFallback
        vocabularyStorage = vocabulary
        self.catalogue = catalogue
        self.adapters = adapters
        self.gate = gate
        encoder = ContextEncoder(model: model.model, tokenizer: model.tokenizer, pooling: gate?.config.pooling ?? pooling,
                                 layers: gate?.config.encoderLayers, threads: threads)
        formatter = PromptFormatter(template: template)
        runner = Transformer(model: model.model, threads: threads)
        mixture = AdapterMixture(threads: threads, stackCacheBytes: stackCacheBytes)
        runner.branches = mixture
        decoder = CallStepDecoder(runner: runner, mixture: mixture, tokenizer: model.tokenizer,
                                  stopTokens: model.tokenizer.stopTokenIds.union(model.model.config.eosTokenIds))
        counter = FlopsCounter(config: model.model.config)
        if let gate {
            gate.addTools(catalogue.tools.map { ($0.name, $0.description) }, encoder: encoder)
        }
    }

    /// The weights of `request`'s candidates under its mode, the token count of the context the
    /// encoder read (the prompt's user message: the query, then the history when there is any,
    /// the same text stage 2 trains the gate on), and, when the gate weighed the no-call candidate
    /// (`tool_choice` auto, a gate trained with it, paratool or top1), its weight and whether it
    /// won: then the answer is text.
    func selectTools(_ request: ToolCallRequest, candidates: [String])
        throws -> (weights: [Float], queryTokens: Int, noTool: (weight: Float, wins: Bool)?) {
        switch request.mode {
        case .contextDocs:
            return ([Float](repeating: 0, count: candidates.count), 0, nil)
        case .average:
            return (ToolSelection.uniform(count: candidates.count), 0, nil)
        case .oracle:
            let gold = request.oracleTools
            guard !gold.isEmpty, gold.allSatisfy(candidates.contains) else { throw EngineError.oracleWithoutGold(request.id) }
            // Call by call, the first call is the first gold call's tool alone; otherwise one
            // mixture holds every gold tool at an equal weight.
            let tools = constrained && callSteps != .off ? [gold[0]] : gold
            return (candidates.map { tools.contains($0) ? 1 / Float(Set(tools).count) : 0 }, 0, nil)
        case .paratool, .top1, .embsim:
            guard let gate else { throw EngineError.noGate }
            let (c, n) = encoder.encode(PromptFormatter.gateContext(PromptRequest(query: request.query, history: request.history), callsSoFar: []))
            gate.addTools(try catalogue.specs(named: candidates).map { ($0.name, $0.description) }, encoder: encoder)
            if request.mode == .embsim {
                let sims = candidates.map { ToolSelection.cosine(c, gate.toolVectors[$0]!) }
                return (ToolSelection.softmax(sims, topN: request.topN), n, nil)
            }
            let (weights, noTool) = gateWeights(gate, context: c, candidates: candidates, request: request,
                                                weighsNoTool: request.toolChoice == .auto)
            return (weights, n, noTool)
        }
    }

    /// The gate's weights of `candidates` on context `c` in `request`'s mode (the MLP's softmax,
    /// top-N, or top-1), each candidate scored once; with `weighsNoTool` and a gate that has the
    /// no-call candidate, that candidate's weight among them all and whether it outweighs every tool.
    private func gateWeights(_ gate: GateNetwork, context c: [Float], candidates: [String], request: ToolCallRequest,
                             weighsNoTool: Bool) -> (weights: [Float], noTool: (weight: Float, wins: Bool)?) {
        // A large candidate set is narrowed by the cached tool vectors before the MLP.
        var scored = Array(candidates.indices)
        if selectionShortlist > 0, candidates.count > selectionShortlist {
            let similarity = candidates.map { ToolSelection.cosine(c, gate.toolVectors[$0]!) }
            scored = Array(candidates.indices.sorted { (similarity[$0], $1) > (similarity[$1], $0) }.prefix(selectionShortlist))
        }
        // The no-call candidate, when it is weighed, is scored in the same batch, last.
        let noToolVector = weighsNoTool ? gate.toolVectors[GateNetwork.noToolName] : nil
        let batch = gate.scores(context: c, tools: scored.map { gate.toolVectors[candidates[$0]]! } + (noToolVector.map { [$0] } ?? []))
        var scores = [Float](repeating: -.infinity, count: candidates.count)
        for (i, score) in zip(scored, batch) { scores[i] = score }
        var noTool: (weight: Float, wins: Bool)?
        if noToolVector != nil, let noToolScore = batch.last {
            let all = ToolSelection.softmax(scores + [noToolScore], topN: gate.config.topN)
            let none = all[candidates.count]
            noTool = (none, candidates.indices.allSatisfy { all[$0] < none })
        }
        let weights = request.mode == .paratool
            ? ToolSelection.softmax(scores, topN: request.topN ?? gate.config.topN) : ToolSelection.top1(scores)
        return (weights, noTool)
    }

    /// The model's vocabulary as constrained decoding reads it (built once, on first use).
    public var vocabulary: TokenVocabulary {
        if let v = vocabularyStorage { return v }
        let v = TokenVocabulary(tokenizer: model.tokenizer)
        vocabularyStorage = v
        return v
    }

    /// Frees the scratch the largest batch so far sized, in the decoder and the gate's encoder,
    /// and returns it (with the batch's freed KV caches) to the system; the next batch allocates
    /// what it needs. Adapter stacks stay cached (`stackCacheBytes`).
    public func releaseWorkingMemory() {
        runner.releaseWorkingMemory()
        encoder.releaseWorkingMemory()
        ProcessMemory.returnFreedMemory()
    }

    /// Re-initialises the gate's vectors of `tools` from their (changed) documentation, the
    /// encoding of "name: description" (`ContextEncoder.encodeTool`) — for a catalogue update that
    /// rewrote a tool's description.
    public func reencodeTools(_ tools: [ToolSpec]) {
        guard let gate else { return }
        for t in tools { gate.setTool(t.name, vector: encoder.encodeTool(name: t.name, description: t.description).vector) }
    }

    /// The longest context the model takes: its `max_position_embeddings`.
    public var contextLength: Int { model.model.config.maxPositionEmbeddings }

    /// Checks `request` alone without running anything: throws what `run` would throw for it
    /// (bad token budget, no or unknown candidates, a mode the engine cannot serve), and
    /// `promptTooLong` when its rendered prompt leaves no room in the model's context to generate
    /// a token, or has more than `maxPromptTokens` tokens. Costs one prompt rendering and
    /// tokenization; returns what the request will cost to run.
    @discardableResult
    public func validate(_ request: ToolCallRequest, maxPromptTokens: Int? = nil) throws -> RequestCost {
        guard request.maxNewTokens >= 1 else {
            throw EngineError.invalidRequest("request \(request.id): max_new_tokens must be at least 1")
        }
        let candidates = request.candidates.isEmpty ? catalogue.names : request.candidates
        guard !candidates.isEmpty else { throw EngineError.noCandidates(request.id) }
        let unknown = candidates.filter { !catalogue.contains($0) }
        guard unknown.isEmpty else { throw EngineError.unknownTools(unknown) }
        try Self.checkToolChoice(request, candidates: candidates)
        var request = request
        request.mode = try servedMode(request, candidates: candidates)
        let encodes: Bool
        switch request.mode {
        case .paratool, .top1, .embsim:
            if gate == nil { throw EngineError.noGate }
            encodes = true
        case .oracle:
            let gold = request.oracleTools
            guard !gold.isEmpty, gold.allSatisfy(candidates.contains) else { throw EngineError.oracleWithoutGold(request.id) }
            encodes = false
        case .average, .contextDocs:
            encodes = false
        }
        let promptTokens = try prompt(for: request, candidates: candidates).count
        if promptTokens > contextLength - 1 {
            throw EngineError.promptTooLong(id: request.id, tokens: promptTokens, limit: contextLength - 1,
                                            reason: "the model's context of \(contextLength) tokens, less one to generate")
        }
        if let maxPromptTokens, promptTokens > maxPromptTokens {
            throw EngineError.promptTooLong(id: request.id, tokens: promptTokens, limit: maxPromptTokens,
                                            reason: "the configured most prompt tokens")
        }
        // The encoder reads the prompt's user message, a part of the prompt.
        return RequestCost(promptTokens: promptTokens, maxNewTokens: request.maxNewTokens,
                           encoderTokens: encodes ? promptTokens : 0, candidates: candidates.count)
    }

    /// Throws unless the tool `request.toolChoice` names (if any) is one of `candidates`.
    static func checkToolChoice(_ request: ToolCallRequest, candidates: [String]) throws {
        if case .tool(let name) = request.toolChoice, !candidates.contains(name) {
            throw EngineError.invalidRequest("request \(request.id): tool_choice names \(name), which is not among the candidates")
        }
    }

    /// The mode `request` is served in: its own, or `.contextDocs` under `documentFallback` when
    /// a candidate has no adapter or a stale one (`staleTools`), or the mode needs a gate the
    /// engine lacks. Without `documentFallback`, a stale adapter among the candidates of a mode
    /// that reads adapters refuses the request (`EngineError.staleAdapters`): an adapter trained
    /// for an earlier schema is never served.
    public func servedMode(_ request: ToolCallRequest, candidates: [String]) throws -> SelectionMode {
        guard documentFallback else {
            if request.mode != .contextDocs {
                let stale = try staleTools(candidates)
                guard stale.isEmpty else { throw EngineError.staleAdapters(stale) }
            }
            return request.mode
        }
        switch request.mode {
        case .contextDocs:
            return request.mode
        case .oracle:
            return try staleTools(candidates).isEmpty ? request.mode : .contextDocs
        case .paratool, .top1, .embsim, .average:
            if request.mode != .average && gate == nil { return .contextDocs }
            for tool in candidates where try adapters.adapter(for: tool) == nil { return .contextDocs }
            return try staleTools(candidates).isEmpty ? request.mode : .contextDocs
        }
    }

    /// The tools among `names` whose serving adapter was trained on another schema than the
    /// catalogue's (`AdapterProvider.schemaFingerprint`; an adapter with none recorded is not stale).
    public func staleTools(_ names: [String]) throws -> [String] {
        try names.filter { name in
            guard let trained = try adapters.schemaFingerprint(of: name), let spec = catalogue[name] else { return false }
            return trained != spec.schemaFingerprint
        }
    }

    /// The prompt's tokens for `request` over `candidates`, in its mode's format.
    private func prompt(for r: ToolCallRequest, candidates: [String]) throws -> [Int] {
        let request = PromptRequest(query: r.query, history: r.history)
        let format: PromptFormat
        if r.mode != .contextDocs {
            format = .documentFree(candidates: candidates)
        } else {
            let specs = try catalogue.specs(named: candidates)
            format = r.examples.isEmpty ? .contextDocs(candidates: specs)
                : .contextDocsExamples(candidates: specs, examples: r.examples, k: r.examplesPerTool)
        }
        return model.tokenizer.encode(try formatter.render(format, request: request))
    }

    /// The adapter mixture the engine would use for `request`, with the weights and versions.
    public func mixture(for request: ToolCallRequest) throws -> (mixture: Mixture, weights: [ToolWeight]) {
        let p = try plan(request)
        return (p.mixture, p.weights)
    }

    /// Selection for one request: its candidates (the catalogue when none are given), mixture, the
    /// weights reported, the query tokens the encoder read (0 when the mode needs no encoding),
    /// the served mode, and what the answer may be: the request's tool choice, or `.none` when
    /// the gate's no-call candidate won (the base model then answers in text, no adapter fused).
    private func plan(_ request: ToolCallRequest) throws
        -> (candidates: [String], mixture: Mixture, weights: [ToolWeight], queryTokens: Int, mode: SelectionMode,
            choice: ToolChoice, noToolWeight: Float?) {
        let candidates = request.candidates.isEmpty ? catalogue.names : request.candidates
        guard !candidates.isEmpty else { throw EngineError.noCandidates(request.id) }
        let unknown = candidates.filter { !catalogue.contains($0) }
        guard unknown.isEmpty else { throw EngineError.unknownTools(unknown) }
        try Self.checkToolChoice(request, candidates: candidates)
        var request = request
        request.mode = try servedMode(request, candidates: candidates)
        var (w, queryTokens, noTool) = try selectTools(request, candidates: candidates)
        var choice = request.toolChoice
        if noTool?.wins == true {
            choice = .none
        } else if choice == .auto {
            // The gate chose tools over a text answer, or nothing weighed a text answer (modes
            // without the gate, a gate trained without the no-call candidate): the answer is
            // calls. Left to itself under the auto grammar, SmolLM2-135M with the documents in the
            // prompt answered all 36 demo check requests in text.
            choice = .required
        }
        // A text answer is the base model's: no adapter was trained to write one.
        if choice == .none { w = [Float](repeating: 0, count: candidates.count) }
        let (mixture, weights) = try weighedMixture(candidates, weights: w)
        return (candidates, mixture, weights, queryTokens, request.mode, choice, noTool?.weight)
    }

    /// The mixture of `candidates` at weights `w` (tools at weight 0 or without an adapter left
    /// out), and every candidate's reported weight and adapter version.
    private func weighedMixture(_ candidates: [String], weights w: [Float]) throws -> (Mixture, [ToolWeight]) {
        var components = [(adapter: ToolAdapter, weight: Float)]()
        var weights = [ToolWeight]()
        for (name, weight) in zip(candidates, w) {
            let found = weight != 0 ? try adapters.adapter(for: name) : nil
            if let found { components.append((found.adapter, weight)) }
            weights.append(ToolWeight(tool: name, weight: weight, adapterVersion: found?.version))
        }
        return (Mixture(components), weights)
    }

    /// Runs `requests` as one batch and returns one response per request, in order.
    public func run(_ requests: [ToolCallRequest]) throws -> [ToolCallResponse] {
        guard !requests.isEmpty else { return [] }
        let gateStart = Date()
        var rows = [DecodeRow]()
        var plans = [RowPlan]()
        for var r in requests {
            guard r.maxNewTokens >= 1 else { throw EngineError.invalidRequest("request \(r.id): max_new_tokens must be at least 1") }
            let (candidates, selected, toolWeights, queryTokens, mode, choice, noToolWeight) = try plan(r)
            r.mode = mode
            r.toolChoice = choice
            let specs = try catalogue.specs(named: candidates)
            let request = PromptRequest(query: r.query, history: r.history)
            let prompt = try prompt(for: r, candidates: candidates)
            var constraint: CallConstraint?
            if constrained {
                let grammar = grammars.grammar(tools: specs, maxCalls: r.maxCalls, choice: r.toolChoice)
                constraint = CallConstraint(grammar: grammar, vocabulary: vocabulary, budget: r.maxNewTokens)
                constraint!.namePrior = namePrior(r.mode, grammar: grammar, weights: toolWeights)
            }
            rows.append(DecodeRow(prompt: prompt, mixture: selected, constraint: constraint, limit: r.maxNewTokens))
            var extra = FlopsBreakdown()
            if queryTokens > 0 {
                extra.encoder = counter.encoder(tokens: queryTokens, layers: encoder.layers)
                if r.mode != .embsim, let gate { extra.gate = counter.gate(candidates: candidates.count + (noToolWeight == nil ? 0 : 1), layers: gate.config.layerWidths) }
            }
            plans.append(RowPlan(
                request: r, candidates: candidates, callWeights: [toolWeights], extraFlops: extra, noToolWeight: noToolWeight,
                docsPromptTokens: model.tokenizer.encode(try formatter.render(.contextDocs(candidates: specs), request: request)).count,
                rank: selected.components.first?.adapter.rank ?? 0))
        }
        let gateSeconds = Date().timeIntervalSince(gateStart)

        let genStart = Date()
        let stops = model.tokenizer.stopTokenIds.union(model.model.config.eosTokenIds)
        var prefillSeconds: Double?
        var stepError: Error?
        let decoded = decoder.run(rows, reading: constrained ? callSteps : .off, end: answerEnd, nextStep: { row, callsText in
            do {
                guard let (step, weights, extra) = try self.nextCall(plans[row], callsText: callsText,
                                                                      grammar: rows[row].constraint?.grammar) else { return nil }
                plans[row].extraFlops = plans[row].extraFlops + extra
                if case .next = step { plans[row].callWeights.append(weights) }
                return step
            } catch {
                stepError = stepError ?? error
                return nil
            }
        }) { _, _ in
            if prefillSeconds == nil { prefillSeconds = Date().timeIntervalSince(genStart) }
        }
        if let stepError { throw stepError }
        let genSeconds = Date().timeIntervalSince(genStart)

        return requests.indices.map { i in
            let generated = decoded[i].tokens
            let plan = plans[i]
            let content = generated.last.map { stops.contains($0) } == true ? Array(generated.dropLast()) : generated
            let text = model.tokenizer.decode(content)
            var parsed = ActionParser.parse(text, catalogue: catalogue)
            let forceClosed = decoded[i].forceClosed
            if forceClosed {
                parsed.diagnostics.append(ActionDiagnostic(
                    kind: .forceClosed, severity: .warning, block: parsed.action.calls.isEmpty ? nil : parsed.action.calls.count,
                    message: "the token budget of \(requests[i].maxNewTokens) closed the call in the shortest way its schema allows"))
            }
            // Every mixture counts for the tokens it ran; the largest stands for all (an upper bound).
            let adapters = decoded[i].callMixtures.map { $0.components.filter { $0.weight != 0 }.count }.max() ?? 0
            let flops = counter.generation(prompt: rows[i].prompt.count, generated: generated.count, adapters: adapters, rank: plan.rank)
                + counter.reread(tokens: decoded[i].rereadTokens, adapters: adapters, rank: plan.rank) + plan.extraFlops
            var response = ToolCallResponse(
                id: requests[i].id, action: parsed.action, diagnostics: parsed.diagnostics, text: text,
                weights: plan.callWeights[0], promptTokens: rows[i].prompt.count, generatedTokens: generated.count, flops: flops,
                contextDocsFlops: counter.generation(prompt: plan.docsPromptTokens, generated: generated.count).total,
                gateSeconds: gateSeconds, generateSeconds: genSeconds, prefillSeconds: prefillSeconds ?? genSeconds,
                servedMode: plan.request.mode, forceClosed: forceClosed, noToolWeight: plan.noToolWeight)
            response.callWeights = plan.callWeights
            response.rereadTokens = decoded[i].rereadTokens
            return response
        }
    }

    /// What `run` keeps of one request while its batch decodes.
    private struct RowPlan {
        /// The request as served (its served mode and resolved tool choice).
        var request: ToolCallRequest
        var candidates: [String]
        var callWeights: [[ToolWeight]]
        var extraFlops: FlopsBreakdown
        var noToolWeight: Float?
        var docsPromptTokens: Int
        var rank: Int
    }

    /// Under constrained decoding in a selector's mode, `namePriorScale · log w` per grammar tool.
    private func namePrior(_ mode: SelectionMode, grammar: CallGrammar, weights: [ToolWeight]) -> [Float]? {
        guard namePriorScale > 0 && [.paratool, .top1, .embsim].contains(mode) else { return nil }
        let byName = Dictionary(weights.map { ($0.tool, $0.weight) }, uniquingKeysWith: { a, _ in a })
        return grammar.tools.map { tool in
            let w = byName[tool] ?? 0
            return w > 0 ? namePriorScale * logf(w) : -.infinity
        }
    }

    /// The step after the calls in `callsText`: in `.oracle`, the next gold call's tool alone, or
    /// the end after the last; in `.paratool` and `.top1`, the gate on the query and the calls so
    /// far (`PromptFormatter.gateContext`), over the candidates and, when the step ends answers
    /// (`answerEnd == .step`), the no-call candidate, which ends it when it outweighs every tool. Nil when the request's mode takes no steps
    /// (the model goes on under one mixture), with the weights of the next call and the FLOPs of
    /// deciding.
    private func nextCall(_ plan: RowPlan, callsText: String, grammar: CallGrammar?) throws
        -> (step: CallStep, weights: [ToolWeight], flops: FlopsBreakdown)? {
        let r = plan.request, candidates = plan.candidates
        let calls = ActionParser.parse(callsText, catalogue: catalogue).action.calls
        var w: [Float]
        var flops = FlopsBreakdown()
        switch r.mode {
        case .oracle:
            let gold = r.oracleTools
            guard gold.count > 1 else { return nil }
            guard calls.count < gold.count else { return (.end, [], flops) }
            w = candidates.map { $0 == gold[calls.count] ? 1 : 0 }
        case .paratool, .top1:
            guard let gate else { return nil }
            let noTool = gate.toolVectors[GateNetwork.noToolName]
            guard answerEnd == .model || noTool != nil else { return nil }
            let (c, n) = encoder.encode(PromptFormatter.gateContext(PromptRequest(query: r.query, history: r.history), callsSoFar: calls))
            flops.encoder = counter.encoder(tokens: n, layers: encoder.layers)
            flops.gate = counter.gate(candidates: candidates.count + (answerEnd == .step ? 1 : 0), layers: gate.config.layerWidths)
            let (weights, ends) = gateWeights(gate, context: c, candidates: candidates, request: r, weighsNoTool: answerEnd == .step)
            if ends?.wins == true { return (.end, [], flops) }
            w = weights
        case .average, .embsim, .contextDocs:
            return nil
        }
        let (next, weights) = try weighedMixture(candidates, weights: w)
        let prior = grammar.flatMap { namePrior(r.mode, grammar: $0, weights: weights) }
        return (.next(next, namePrior: prior), weights, flops)
    }
}
