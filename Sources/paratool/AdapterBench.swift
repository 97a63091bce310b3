// `paratool bench adapters`: the cost of fused adapters — prefill and decode tokens/s with 0, 1,
// 4 and 8 rank-16 adapters in the mixture (LoRA share of FLOPs and of wall time), and a batch of
// requests with different mixtures against the same requests run one by one.
import ArgumentParser
import Foundation
import LLM
import ParaTool
import Tensor

struct AdapterBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapters",
        abstract: "Throughput with 0/1/4/8 fused adapters, and a mixed-mixture batch vs one by one.",
        discussion: "Adapters are seeded random (A and B non-zero), rank --rank, alpha 2·rank, on gate/up/down_proj of every layer, stored in --adapter-format (bfloat16, as the store publishes them, or float32).")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "LoRA rank.")
    var rank = 16

    @Option(help: ArgumentHelp("How the adapters' weights are stored: bfloat16 (as the store publishes them) or float32.", valueName: "format"))
    var adapterFormat: AdapterWeightFormat = .bfloat16

    @Option(help: ArgumentHelp("Threads of the adapters' branch products (default: the runner's decode threads).", valueName: "n"))
    var branchThreads: Int?

    @Option(help: "Prompt tokens for the prefill figures.")
    var prompt = 256

    @Option(help: "Tokens decoded after the prompt.")
    var decode = 64

    @Option(parsing: .upToNextOption, help: "Prompt lengths of the prefill-path table.")
    var prefillLengths = [32, 128, 512]

    @Option(help: "Requests in the mixed batch.")
    var batch = 8

    @Option(help: "Tokens each batched request generates.")
    var batchTokens = 32

    @Option(help: "Rounds (the best time of each figure is kept).")
    var repeats = 3

    @Flag(inversion: .prefixedNo, help: "Print the 0/1/4/8-adapter table.")
    var table = true

    @Flag(inversion: .prefixedNo, help: "Run the requests one by one as well (the batch's reference).")
    var oneByOne = true

    func run() throws {
        let lm = try modelOptions.load()
        let model = lm.model, config = model.config
        let pool = (0..<8).map {
            ToolAdapter.initialized(name: "tool\($0)", config: config, rank: rank, alpha: Float(2 * rank),
                                    seed: UInt64(100 + $0), randomB: true).converted(to: adapterFormat)
        }
        var rng = SeededGenerator(seed: 7)
        func ids(_ n: Int) -> [Int] { (0..<n).map { _ in 100 + Int(rng.next() % UInt64(config.vocabSize - 100)) } }
        let runner = Transformer(model: model, threads: 2)
        let branches = AdapterMixture(threads: branchThreads.map { ComputeThreads($0) } ?? runner.decodeThreads)
        runner.branches = branches
        let counter = FlopsCounter(config: config)
        print("model: \(lm.path); adapters rank \(rank) on gate/up/down of \(config.layerCount) layers, \(adapterFormat.rawValue) "
              + String(format: "(%.1f MB each); ", Double(pool[0].residentBytes) / 1e6) + "best of \(repeats) rounds, adapter counts interleaved")
        print(CPUDescription.line)
        print("")
        print("One request: prefill \(prompt) tokens, then decode \(decode) tokens.")
        print("")
        print("| adapters N | prefill (tokens/s) | decode (tokens/s) | LoRA share of request FLOPs | LoRA share of request wall time | wall time vs N=0 (prefill / decode) |")
        print("|---:|---:|---:|---:|---:|---:|")
        let promptIds = ids(prompt)
        let counts = table ? [0, 1, 4, 8] : []
        branches.stackCacheBytes = 512 << 20  // room for the 1-, 4- and 8-adapter sets at once
        let cache = KVCache(config: config, capacity: prompt + decode + 1)
        // Each round measures every count in turn, so a slow stretch of the machine hits all alike.
        var prefillTime = [Double](repeating: .infinity, count: counts.count), decodeTime = prefillTime
        for _ in 0..<max(1, repeats) {
            for (k, n) in counts.enumerated() {
                branches.mixtures = [Mixture(pool.prefix(n).map { ($0, 1 / Float(n)) })]
                cache.clear()
                let start = Date()
                var out = runner.forward([BatchSegment(sequence: 0, tokens: promptIds)], caches: [cache])
                let prefilled = Date()
                for _ in 0..<decode {
                    let t = Kernels.argmax(out.logits, row: 0)
                    out = runner.forward([BatchSegment(sequence: 0, tokens: [t])], caches: [cache])
                }
                prefillTime[k] = min(prefillTime[k], prefilled.timeIntervalSince(start))
                decodeTime[k] = min(decodeTime[k], Date().timeIntervalSince(prefilled))
            }
        }
        for (k, n) in counts.enumerated() {
            let flops = counter.generation(prompt: prompt, generated: decode, adapters: n, rank: rank)
            let (tp, td) = (prefillTime[k], decodeTime[k])
            print(String(format: "| %d | %.0f | %.1f | %.2f%% | %.2f%% | %+.1f%% / %+.1f%% |", n, Double(prompt) / tp, Double(decode) / td,
                         100 * Double(flops.lora) / Double(flops.total), 100 * (1 - (prefillTime[0] + decodeTime[0]) / (tp + td)),
                         100 * (tp / prefillTime[0] - 1), 100 * (td / decodeTime[0] - 1)))
        }

        // Prefill of one request with 4 adapters by each path: the set's stacked weights when the
        // set is cached, when it is new (its weights copied first), and rows grouped by adapter.
        if table {
            print("")
            print("Prefill with 4 adapters (ms; in brackets, time added to the base model's prefill):")
            print("")
            print("| prompt tokens | no adapters | stacked, set cached | set seen first (stacked from \(AdapterMixture.rowsWorthStacking) rows, copy included) | grouped by adapter |")
            print("|---:|---:|---:|---:|---:|")
            for length in prefillLengths {
                let tokens = ids(length)
                var times = [Double](repeating: .infinity, count: 4)
                for _ in 0..<max(1, repeats) {
                    // Grouped first (stacking off empties the cache), then a new set, then the
                    // same set again, now cached.
                    for mode in [0, 3, 2, 1] {
                        branches.stackCacheBytes = mode == 3 ? 0 : AdapterMixture.defaultStackCacheBytes
                        if mode == 2 { branches.dropStackedSets() }
                        let set = mode == 0 ? [] : Array(pool.prefix(4))
                        branches.mixtures = [Mixture(set.map { ($0, 0.25) })]
                        if mode == 1 && length < AdapterMixture.rowsWorthStacking {
                            // A prompt this short stacks a set on its second sight: make sure the
                            // timed one finds it stacked.
                            _ = runner.forward([BatchSegment(sequence: 0, tokens: ids(AdapterMixture.rowsWorthStacking))], caches: [cache])
                        }
                        cache.clear()
                        let start = Date()
                        _ = runner.forward([BatchSegment(sequence: 0, tokens: tokens)], caches: [cache])
                        times[mode] = min(times[mode], Date().timeIntervalSince(start))
                    }
                }
                func cell(_ k: Int) -> String { String(format: "%.1f (%+.1f%%)", 1000 * times[k], 100 * (times[k] / times[0] - 1)) }
                print(String(format: "| %d | %.1f | %@ | %@ | %@ |", length, 1000 * times[0], cell(1), cell(2), cell(3)))
            }
            branches.stackCacheBytes = AdapterMixture.defaultStackCacheBytes
        }

        // Mixed batch: each request its own mixture of 4 of the 8 adapters, prompts of different lengths.
        let prompts = (0..<batch).map { ids(48 + 4 * $0) }
        let mixtures = (0..<batch).map { i in Mixture((0..<4).map { k in (pool[(i + 3 * k) % 8], Float(4 - k) / 10) }) }
        let generator = Generator(transformer: runner)
        /// The requests under `mixtures` as one batch and one by one: best times of the rounds and
        /// the tokens of the last round.
        func timed(_ mixtures: [Mixture]) -> (batch: Double, oneByOne: Double, batched: [[Int]], single: [[Int]]) {
            var batched = [[Int]](), single = [[Int]]()
            var tb = Double.infinity, ts = oneByOne ? Double.infinity : .nan
            for _ in 0..<max(1, repeats) {
                var start = Date()
                branches.mixtures = mixtures
                batched = generator.greedyBatch(prompts: prompts, maxNewTokens: batchTokens, stopTokens: [])
                tb = min(tb, Date().timeIntervalSince(start))
                guard oneByOne else { continue }
                start = Date()
                single = []
                for (i, p) in prompts.enumerated() {
                    branches.mixtures = [mixtures[i]]
                    single.append(generator.greedy(prompt: p, maxNewTokens: batchTokens, stopTokens: []))
                }
                ts = min(ts, Date().timeIntervalSince(start))
            }
            return (tb, ts, batched, single)
        }
        let (tb, ts, batched, single) = timed(mixtures)
        // The same requests without adapters: how much batching gains on this machine at all
        // (the base runtime's ceiling for the mixed batch).
        let (tb0, ts0, _, _) = timed(prompts.map { _ in Mixture.none })
        let tokens = Double(batch * batchTokens)
        print("")
        print("| \(batch) requests, \(batchTokens) new tokens each, \(batch) different 4-adapter mixtures | wall (s) | generated tokens/s |")
        print("|---|---:|---:|")
        print(String(format: "| one batch | %.2f | %.1f |", tb, tokens / tb))
        print(String(format: "| one by one | %.2f | %.1f |", ts, tokens / ts))
        print(String(format: "| batch speed-up | %.2fx | |", ts / tb))
        print(String(format: "| the same requests without adapters: one batch / one by one | %.2f / %.2f | %.1f / %.1f |", tb0, ts0, tokens / tb0, tokens / ts0))
        print(String(format: "| batch speed-up without adapters (the base runtime's) | %.2fx | |", ts0 / tb0))
        if oneByOne {
            // Tokens each request generates alike in both runs before they first differ.
            let agreeing = zip(batched, single).map { b, o in zip(b, o).prefix { $0 == $1 }.count }
            print("same tokens batched and one by one: \(batched == single ? "yes" : "NO") "
                  + "(\(agreeing.filter { $0 == batchTokens }.count) of \(batch) requests identical; tokens before the first "
                  + "difference: \(agreeing.map(String.init).joined(separator: ", ")))")
        }
    }
}

extension AdapterWeightFormat: ExpressibleByArgument {}
