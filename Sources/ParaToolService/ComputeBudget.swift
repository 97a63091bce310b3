// ComputeBudget: what a worker may spend between two polls of its consumer, the estimate of what
// a batch of requests will take (from each request's RequestCost and speeds measured on this
// machine), and the planner that forms batches under that budget: short requests together and
// first, a long request alone, a request that could not finish within the budget refused.
import Foundation
import Kafka
import LLM
import ParaTool
import Synchronization
import Tensor

/// How long requests may compute between two polls, derived from the consumer's
/// `max.poll.interval.ms`: a member that does not poll within that interval is removed from its
/// group, and its partitions (with the request it was working on) go to another member.
public struct ComputeBudget: Sendable, Equatable {
    /// The share of the poll interval one batch may take: the rest covers delivery, commits and
    /// estimates that were too low.
    public static let pollIntervalShare = 0.25

    /// The longest estimated compute of one batch.
    public var perBatch: Duration
    /// A request whose own estimate is over this share of `perBatch` runs in a batch of its own.
    public var longShare = 0.25

    /// A budget of `perBatch` estimated compute per batch.
    public init(perBatch: Duration) {
        self.perBatch = perBatch
    }

    /// The budget for `consumer`: a quarter of its `max.poll.interval.ms` as resolved (the typed
    /// field, else the operator's property, else librdkafka's default).
    public init(consumer: KafkaConsumerConfiguration) {
        self.init(perBatch: consumer.effectiveMaxPollInterval * Self.pollIntervalShare)
    }

    var perBatchSeconds: Double { Double(perBatch.components.seconds) + Double(perBatch.components.attoseconds) * 1e-18 }
}

/// The estimated wall time of requests on this worker: prefill FLOPs at a measured rate, plus
/// decode steps at a measured time per step. Both rates start from a measurement on the model at
/// start-up and follow each served batch, rising at once when a batch ran slower than estimated
/// and falling slowly when it ran faster, so estimates err long.
public final class ComputeEstimator: Sendable {
    private let counter: FlopsCounter
    /// Seconds per prefill FLOP and per decode step.
    private let rates: Mutex<(prefillFlop: Double, decodeStep: Double)>

    /// An estimator with the given rates (seconds per prefill FLOP and per decode step).
    public init(config: ModelConfig, secondsPerPrefillFlop: Double, secondsPerDecodeStep: Double) {
        counter = FlopsCounter(config: config)
        rates = Mutex((secondsPerPrefillFlop, secondsPerDecodeStep))
    }

    /// An estimator whose rates are measured on `model`: a 64-token prefill and 8 decode steps
    /// without adapters (about 0.1 s on SmolLM2-135M), on `threads`.
    public convenience init(measuring model: LanguageModel, threads: ComputeThreads = .machine) {
        let runner = Transformer(model: model.model, threads: threads)
        let promptLength = min(64, max(1, model.model.config.maxPositionEmbeddings / 2))
        let steps = min(8, max(1, model.model.config.maxPositionEmbeddings - promptLength - 1))
        let prompt = (0..<promptLength).map { $0 % max(1, model.model.config.vocabSize) }
        let start = ContinuousClock.now
        var firstToken: ContinuousClock.Instant?
        _ = Generator(transformer: runner).greedyBatch(prompts: [prompt], maxNewTokens: steps, stopTokens: []) { _, _ in
            if firstToken == nil { firstToken = .now }
        }
        let end = ContinuousClock.now
        let prefill = Self.seconds((firstToken ?? end) - start)
        let decode = Self.seconds(end - (firstToken ?? end))
        // The prefill's FLOPs as estimates count them.
        let flops = ComputeEstimator(config: model.model.config, secondsPerPrefillFlop: 0, secondsPerDecodeStep: 0)
            .prefillFlops(RequestCost(promptTokens: promptLength, maxNewTokens: steps, encoderTokens: 0, candidates: 0))
        self.init(config: model.model.config,
                  secondsPerPrefillFlop: prefill / Double(max(1, flops)),
                  secondsPerDecodeStep: decode / Double(max(1, steps - 1)))
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// How many linear FLOPs one attention FLOP of a prefill is counted as. An assumption that errs
    /// long, not a measurement: attention runs as per-head products of the head dimension (64) and
    /// a softmax over every score, slower per FLOP than the linears' sgemm, and the start-up
    /// measurement's 64-token prompt is too short to show it (attention grows with the square of
    /// the prompt).
    static let attentionWeight = 4

    /// FLOPs of the passes over prompt tokens (the encoder's and the prefill, with adapters),
    /// attention weighted by `attentionWeight`.
    func prefillFlops(_ cost: RequestCost) -> Int {
        let prefill = counter.generation(prompt: cost.promptTokens, generated: 1, adapters: cost.candidates, rank: 16)
        let encoder = cost.encoderTokens > 0
            ? counter.decoderLinear(tokens: cost.encoderTokens) + Self.attentionWeight * counter.attention(tokens: cost.encoderTokens, context: 0)
            : 0
        return prefill.baseLinear + prefill.lora + Self.attentionWeight * prefill.attention + encoder
    }

    /// The estimated seconds of running `costs` as one batch. (Never inlined, like every method
    /// that takes a lock and is called from async code: see `Readiness`.)
    @inline(never)
    public func seconds(_ costs: [RequestCost]) -> Double {
        guard !costs.isEmpty else { return 0 }
        let flops = costs.reduce(0) { $0 + prefillFlops($1) }
        let steps = max(0, (costs.map(\.maxNewTokens).max() ?? 1) - 1)
        let rows = Double(costs.count)
        let (perFlop, perStep) = rates.withLock { $0 }
        // Decode steps of a batch cost more with each row (attention and the adapters' branches).
        return Double(flops) * perFlop + Double(steps) * perStep * (1 + 0.25 * (rows - 1))
    }

    /// Learns from a served batch: `costs` took `prefillSeconds` until the first tokens (the
    /// gate's encoder included) and `decodeSeconds` for `steps` further steps.
    @inline(never)
    public func record(_ costs: [RequestCost], prefillSeconds: Double, decodeSeconds: Double, steps: Int) {
        let flops = costs.reduce(0) { $0 + prefillFlops($1) }
        let rows = Double(costs.count)
        rates.withLock { r in
            if flops > 0, prefillSeconds > 0 {
                r.prefillFlop = Self.follow(r.prefillFlop, prefillSeconds / Double(flops))
            }
            if steps > 0, decodeSeconds > 0 {
                r.decodeStep = Self.follow(r.decodeStep, decodeSeconds / Double(steps) / (1 + 0.25 * (rows - 1)))
            }
        }
    }

    /// Up at once, down by a tenth of the difference.
    private static func follow(_ current: Double, _ observed: Double) -> Double {
        observed > current ? observed : current + 0.1 * (observed - current)
    }
}

/// Forms batches from the requests waiting on a worker.
public enum BatchPlanner {
    /// One waiting request as the planner sees it.
    public struct Item: Sendable, Equatable {
        /// The estimated seconds of running it alone.
        public var seconds: Double
        /// How many batches were already formed without it.
        public var deferrals: Int

        /// An item estimated at `seconds` alone, passed over `deferrals` times so far.
        public init(seconds: Double, deferrals: Int = 0) {
            self.seconds = seconds
            self.deferrals = deferrals
        }
    }

    /// The indices of `items` to run next as one batch (never empty when `items` is not).
    ///
    /// Requests go shortest first, as many as fit in `budget` (by `estimate` of the batch) and
    /// `maxBatch`. A long request (alone over `budget.longShare` of the budget) runs in a batch of
    /// its own, after the short ones that wait with it; once passed over, a request goes next,
    /// so a stream of short requests cannot starve it.
    public static func next(_ items: [Item], budget: ComputeBudget, maxBatch: Int,
                            estimate: ([Int]) -> Double) -> [Int] {
        guard !items.isEmpty else { return [] }
        let long = budget.perBatchSeconds * budget.longShare
        let order = items.indices.sorted { a, b in
            let (x, y) = (items[a], items[b])
            if (x.deferrals > 0) != (y.deferrals > 0) { return x.deferrals > 0 }
            if (x.seconds > long) != (y.seconds > long) { return x.seconds <= long }
            return x.seconds != y.seconds ? x.seconds < y.seconds : a < b
        }
        let first = order[0]
        if items[first].seconds > long { return [first] }
        var batch = [first]
        for index in order.dropFirst() where batch.count < maxBatch && items[index].seconds <= long {
            if estimate(batch + [index]) <= budget.perBatchSeconds { batch.append(index) }
        }
        return batch
    }
}
