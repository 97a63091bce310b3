// `paratool bench catalogue`: a worker serving a catalogue of thousands of tools. A seeded store
// of N tools (seeded random rank-16 adapters, published as the store publishes them), an engine
// over an AdapterRegistry with a byte budget, and requests of 2-4 candidates drawn Zipf-like
// (s = 1.1, a few tools hot) or uniformly; beside the same requests over a 4-tool catalogue.
// Prints the worker's memory (peak, and resident split into what a second worker on the host
// shares and what it adds), engine latency p50/p99, cache hit ratio, loads and their time, tokens/s.
import ArgumentParser
import Foundation
import LLM
import ParaTool
import ParaToolService
import ParaToolTraining
import Tensor

struct CatalogueBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalogue",
        abstract: "A worker over a catalogue of N tools: memory, latency, cache hits and adapter loads, Zipf and uniform traffic.",
        discussion: """
            The store (--store, made when missing: N seeded adapters, rank 16 on gate/up/down of every layer, \
            published in the store's default format) is kept for later runs. Requests are answered by the engine \
            in average mode (every candidate's adapter fused at equal weight; no gate is needed), each with its own \
            2-4 candidates; a lookup of an adapter the registry does not hold loads it from the store (timed). \
            Memory: peak resident size after the store exists, and the resident split into file-backed pages (the \
            model and the mapped adapters, shared by every worker of the host) and anonymous ones (what each further \
            worker adds).
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Tools in the catalogue.")
    var tools = 2000

    @Option(help: ArgumentHelp("The store of the catalogue's adapters (made when missing).", valueName: "dir"))
    var store = "/tmp/paratool-catalogue-store"

    @Option(help: "The registry's byte budget in MB.")
    var cacheMb = 512

    @Option(help: "Requests per traffic pattern.")
    var requests = 200

    @Option(help: "Tokens generated per request.")
    var maxNewTokens = 8

    @Option(help: "Zipf exponent of the skewed traffic.")
    var zipf = 1.1

    @Option(help: "Compute threads.")
    var threads = 2

    func validate() throws {
        guard tools >= 4, requests >= 1, cacheMb >= 0, maxNewTokens >= 1, threads >= 1, zipf > 0 else {
            throw ValidationError("--tools must be ≥ 4, --requests, --max-new-tokens and --threads ≥ 1, --cache-mb ≥ 0, --zipf > 0")
        }
    }

    func run() throws {
        let lm = try modelOptions.load()
        let config = lm.model.config
        let storeURL = URL(fileURLWithPath: store)
        let adapterStore = try AdapterStore(root: storeURL)
        let specs = (0..<tools).map { i in
            ToolSpec(name: String(format: "tool_%05d", i), description: "Looks up record \(i) of the catalogue.",
                     parameters: ["type": "object", "properties": ["id": ["type": "integer", "description": "The record."]], "required": ["id"]])
        }
        // The store: one published adapter per tool, made once.
        let existing = Set(try adapterStore.tools())
        let missing = specs.indices.filter { !existing.contains(specs[$0].name) }
        if !missing.isEmpty {
            let start = Date()
            for (k, index) in missing.enumerated() {
                let spec = specs[index], seed = UInt64(index + 1)
                let adapter = ToolAdapter.initialized(name: spec.name, config: config, rank: 16, alpha: 32, seed: seed, randomB: true)
                _ = try adapterStore.publish(adapter, tool: spec.name, stage: "bench", baseModel: lm.path, schemaFingerprint: spec.schemaFingerprint)
                if (k + 1) % 100 == 0 || k + 1 == missing.count {
                    printError("store: \(k + 1)/\(missing.count) adapters published (\(TrainingProgress.duration(Date().timeIntervalSince(start))))")
                }
            }
        }
        let sample = try adapterStore.latest(tool: specs[0].name)!
        let storeBytes = try FileManager.default.contentsOfDirectory(at: sample.path, includingPropertiesForKeys: [.fileSizeKey])
            .reduce(0) { $0 + ((try? $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
        ProcessMemory.returnFreedMemory()
        ProcessMemory.resetPeak()

        print("model: \(lm.path); \(tools) tools, store \(store) (\(String(format: "%.2f", Double(storeBytes) / 1e6)) MB per tool); "
              + "cache \(cacheMb) MB; \(requests) requests per pattern, 2-4 candidates, \(maxNewTokens) new tokens; \(threads) threads")
        print(CPUDescription.line)
        print("")
        print("| catalogue, traffic | engine p50 (ms) | engine p99 (ms) | tokens/s | cache hit ratio | first loads: count, p50 / max (ms) | reloads: count, p50 / max (ms) | held MB | resident MB: shared (file) / private (anon) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        var generator = SeededGenerator(seed: 11)
        let small = Array(specs.prefix(4))
        let patterns: [(String, [ToolSpec], Bool)] = [("4 tools, uniform", small, false), ("\(tools) tools, Zipf s=\(zipf)", specs, true),
                                                      ("\(tools) tools, uniform", specs, false)]
        var p50s = [String: Double]()
        let vocabulary = TokenVocabulary(tokenizer: lm.tokenizer)
        for (name, catalogue, skewed) in patterns {
            let registry = AdapterRegistry(store: adapterStore, config: config, cacheBytes: cacheMb << 20)
            let timed = TimedLookups(registry)
            let engine = try ToolCallEngine(model: lm, catalogue: ToolCatalogue(catalogue), adapters: timed, gate: nil,
                                            vocabulary: vocabulary, threads: ComputeThreads(threads))
            // One request first, not counted: the engine's first answer builds what every later one reuses.
            _ = try engine.run([ToolCallRequest(id: "warm-up", query: "Look up record 1.", candidates: [catalogue[0].name],
                                                maxNewTokens: maxNewTokens, mode: .average)])
            timed.reset()
            // Zipf: P(rank k) ∝ 1 / k^s over a seeded shuffle of the tools.
            let order = catalogue.indices.shuffled(using: &generator)
            var cumulative = [Double](), total = 0.0
            for k in 1...catalogue.count { total += skewed ? 1 / pow(Double(k), zipf) : 1; cumulative.append(total) }
            func draw() -> Int {
                let u = Double(generator.next() % 1_000_000) / 1_000_000 * total
                let k = cumulative.firstIndex { $0 >= u } ?? catalogue.count - 1
                return order[k]
            }
            var latencies = [Double](), generated = 0
            let started = Date()
            for r in 0..<requests {
                var chosen = [Int]()
                let want = min(catalogue.count, 2 + Int(generator.next() % 3))
                while chosen.count < want {
                    let c = draw()
                    if !chosen.contains(c) { chosen.append(c) }
                }
                let names = chosen.map { catalogue[$0].name }
                let request = ToolCallRequest(id: "r\(r)", query: "Look up record \(r) with \(names[0]).", candidates: names,
                                              maxNewTokens: maxNewTokens, mode: .average)
                let t0 = Date()
                let response = try engine.run([request])[0]
                latencies.append(Date().timeIntervalSince(t0))
                generated += response.generatedTokens
            }
            let wall = Date().timeIntervalSince(started)
            latencies.sort()
            let loads = timed.loadSeconds.sorted(), reloads = timed.reloadSeconds.sorted()
            func cell(_ xs: [Double]) -> String {
                String(format: "%d, %.1f / %.1f", xs.count, 1000 * (xs.isEmpty ? 0 : xs[xs.count / 2]), 1000 * (xs.last ?? 0))
            }
            let split = ProcessMemory.residentSplit
            p50s[name] = latencies[latencies.count / 2]
            print(String(format: "| %@ | %.0f | %.0f | %.1f | %.3f | %@ | %@ | %.0f | %@ |", name,
                         1000 * latencies[latencies.count / 2], 1000 * latencies[min(latencies.count - 1, latencies.count * 99 / 100)],
                         Double(generated) / wall, Double(timed.hits) / Double(max(1, timed.hits + loads.count + reloads.count)),
                         cell(loads), cell(reloads), Double(registry.heldBytes) / 1e6,
                         split.map { String(format: "%.0f / %.0f", Double($0.fileBacked) / 1e6, Double($0.anonymous) / 1e6) } ?? "—"))
        }
        print("")
        print(String(format: "peak resident size: %.0f MB; engine p50 with %d tools under Zipf traffic: %+.1f%% against 4 tools",
                     Double(ProcessMemory.peakResidentBytes) / 1e6, tools,
                     100 * ((p50s["\(tools) tools, Zipf s=\(zipf)"] ?? 0) / (p50s["4 tools, uniform"] ?? 1) - 1)))
    }
}

/// The registry, with each lookup that loaded an adapter (one it did not hold) timed.
private final class TimedLookups: AdapterProvider {
    let registry: AdapterRegistry
    private(set) var hits = 0
    /// Seconds of each load: the tool's first in this run (its files hashed), or a reload after
    /// the registry dropped it (verified before: not hashed again).
    private(set) var loadSeconds = [Double](), reloadSeconds = [Double]()
    private var loadedBefore = Set<String>()

    init(_ registry: AdapterRegistry) { self.registry = registry }

    func reset() {
        hits = 0
        loadSeconds = []
        reloadSeconds = []
    }

    func adapter(for tool: String) throws -> (adapter: ToolAdapter, version: String)? {
        let held = registry.heldTools.contains(tool)
        let start = Date()
        let result = try registry.adapter(for: tool)
        let seconds = Date().timeIntervalSince(start)
        if held {
            hits += 1
        } else if loadedBefore.insert(tool).inserted {
            loadSeconds.append(seconds)
        } else {
            reloadSeconds.append(seconds)
        }
        return result
    }
}
