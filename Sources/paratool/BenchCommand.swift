// `paratool bench runtime`: load time, prefill and decode throughput, peak RSS and the memory
// floor of decode for a model, beside llama.cpp's figures on the same file measured in the same
// run (Benchmarks/llama_cpp_bench.py through llama-cpp-python).
import ArgumentParser
import Foundation
import LLM
import ParaTool
import Tensor

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks (build with -c release).",
        subcommands: [RuntimeBench.self, AdapterBench.self, SelectionBench.self, BackwardBench.self, ServiceBench.self, ConstraintBench.self, FeedbackBench.self,
                      GateBench.self, AdapterFormatBench.self, CatalogueBench.self, NewToolBench.self])
}

struct RuntimeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime",
        abstract: "Prefill and decode throughput of the runtime, with llama.cpp's on the same GGUF as reference.",
        discussion: """
            Prompts are random token ids (seeded), identical in count to the reference's. Each figure is the \
            best of --repeats runs. The decode floor is the measured memory-copy bandwidth divided by the \
            bytes of weights read per token. The reference needs `pip install llama-cpp-python==0.3.36 diskcache`.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Comma-separated prompt lengths for prefill.")
    var prefill = "32,256,1024"

    @Option(help: "Tokens to decode after a 32-token prompt.")
    var decode = 128

    @Option(help: "Repeats per figure (the best is kept).")
    var repeats = 3

    @Option(help: "Threads of prefill: the products of many rows are split over them, each part a single-threaded sgemm.")
    var threads = 2

    @Option(help: "Threads of the matrix-vector kernel in decode.")
    var decodeThreads = 2

    @Option(help: "The llama.cpp reference script; empty to skip the reference.")
    var referenceScript = "Benchmarks/llama_cpp_bench.py"

    func run() throws {
        let lengths = prefill.split(separator: ",").compactMap { Int($0) }
        guard !lengths.isEmpty, lengths.allSatisfy({ $0 > 0 }) else { throw ValidationError("--prefill needs positive lengths") }
        let path = try modelOptions.model ?? DefaultModel.locate().path
        var t = Date()
        let lm = try modelOptions.load(path: path)
        let loadSeconds = Date().timeIntervalSince(t)
        let model = lm.model
        let runner = Transformer(model: model, prefillThreads: ComputeThreads(threads), decodeThreads: ComputeThreads(decodeThreads))
        // The reference for the split: the same prefill on one budget thread with OpenBLAS's own
        // threads at --threads (process-wide, so measured here with nothing else running).
        let openBLASRunner = Transformer(model: model, prefillThreads: .single, decodeThreads: ComputeThreads(decodeThreads))
        var rng = SeededGenerator(seed: 1234)
        func randomIds(_ n: Int) -> [Int] { (0..<n).map { _ in 100 + Int(rng.next() % UInt64(model.config.vocabSize - 100)) } }

        var prefillRates = [Int: Double](), openBLASRates = [Int: Double]()
        for n in lengths {
            let ids = randomIds(n)
            let cache = KVCache(config: model.config, capacity: n)
            var best = Double.infinity, bestOpenBLAS = Double.infinity
            for _ in 0..<max(1, repeats) {
                cache.clear()
                t = Date()
                _ = runner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [cache])
                best = min(best, Date().timeIntervalSince(t))
                cache.clear()
                OpenBLASThreads.benchmarkOnly(threads) {
                    t = Date()
                    _ = openBLASRunner.forward([BatchSegment(sequence: 0, tokens: ids)], caches: [cache])
                    bestOpenBLAS = min(bestOpenBLAS, Date().timeIntervalSince(t))
                }
            }
            prefillRates[n] = Double(n) / best
            openBLASRates[n] = Double(n) / bestOpenBLAS
        }
        let prompt = randomIds(32)
        var bestDecode = Double.infinity
        let cache = KVCache(config: model.config, capacity: 32 + decode + 1)
        for _ in 0..<max(1, repeats) {
            cache.clear()
            var out = runner.forward([BatchSegment(sequence: 0, tokens: prompt)], caches: [cache])
            var token = Kernels.argmax(out.logits, row: 0)
            t = Date()
            for _ in 0..<decode {
                out = runner.forward([BatchSegment(sequence: 0, tokens: [token])], caches: [cache])
                token = Kernels.argmax(out.logits, row: 0)
            }
            bestDecode = min(bestDecode, Date().timeIntervalSince(t))
        }
        let decodeRate = Double(decode) / bestDecode
        let rssMB = Double(ProcessMemory.peakResidentBytes) / 1_048_576
        let split = ProcessMemory.residentSplit
        let bandwidth = MemoryBandwidth.measureCopy(megabytes: 256, threads: decodeThreads)
        let bytesPerToken = Double(model.bytesReadPerToken)
        let floorRate = bandwidth / bytesPerToken

        var reference: [String: Any]?
        var referenceNote = ""
        if !referenceScript.isEmpty {
            if FileManager.default.fileExists(atPath: referenceScript) {
                let r = runReference(script: referenceScript, model: path, lengths: lengths)
                if let e = r["error"] { referenceNote = "reference unavailable: \(e)" } else { reference = r }
            } else {
                referenceNote = "reference script \(referenceScript) not found (run from the repository root)"
            }
        }

        let formats = Self.formats(of: model)
        print("model: \(path)")
        if let types = Self.fileTensorTypes(path: path) { print("file tensor types: \(types)") }
        print(String(format: "layers %d, hidden %d, vocab %d; weights held as %@, %.1f MB read per token; copy bandwidth %.1f GB/s (%d threads)",
                     model.config.layerCount, model.config.hiddenSize, model.config.vocabSize, formats,
                     bytesPerToken / 1e6, bandwidth / 1e9, decodeThreads))
        print(CPUDescription.line)
        print("kernels: block formats \(BlockProducts.instructionSet), float32 matrix-vector \(MatVec.instructionSet), "
              + "OpenBLAS core \(BLASCore.name)")
        print("threads: prefill \(threads), decode \(decodeThreads); best of \(repeats)")
        print("")
        print("| figure | ParaTool (Swift, \(modelOptions.weights?.rawValue ?? "weights as stored")) | llama.cpp | ratio |")
        print("|---|---:|---:|---:|")
        func ref(_ key: String, _ sub: String? = nil) -> Double? {
            guard let r = reference else { return nil }
            if let sub { return ((r[key] as? [String: Any])?[sub] as? NSNumber)?.doubleValue }
            return (r[key] as? NSNumber)?.doubleValue
        }
        func row(_ name: String, _ ours: Double, _ theirs: Double?, _ fmt: String, higherIsBetter: Bool = true) {
            let o = String(format: fmt, ours)
            let th = theirs.map { String(format: fmt, $0) } ?? "–"
            let ratio = theirs.map { String(format: "%.2fx", higherIsBetter ? ours / $0 : $0 / ours) } ?? "–"
            print("| \(name) | \(o) | \(th) | \(ratio) |")
        }
        row("load time (s)", loadSeconds, ref("load_s"), "%.2f", higherIsBetter: false)
        for n in lengths { row("prefill \(n) tokens (tokens/s)", prefillRates[n]!, ref("prefill_tps", "\(n)"), "%.0f") }
        row("decode (tokens/s)", decodeRate, ref("decode_tps"), "%.1f")
        for n in lengths {
            row("prefill \(n) tokens, OpenBLAS's own \(threads) threads instead of the split (tokens/s)",
                openBLASRates[n]!, ref("prefill_tps", "\(n)"), "%.0f")
        }
        row("peak RSS (MB)", rssMB, ref("peak_rss_mb"), "%.0f", higherIsBetter: false)
        print("")
        if let split {
            print(String(format: "resident now: %.0f MB = %.0f MB file-backed (the mapped model, shared by every process on the host "
                         + "through the page cache) + %.0f MB anonymous (what each further process adds)",
                         Double(split.resident) / 1_048_576, Double(split.fileBacked) / 1_048_576, Double(split.anonymous) / 1_048_576))
        }
        print(String(format: "decode memory floor: %.1f MB/token at %.1f GB/s = %.1f tokens/s; measured %.1f tokens/s = %.2fx the floor's time",
                     bytesPerToken / 1e6, bandwidth / 1e9, floorRate, decodeRate, floorRate / decodeRate))
        if !referenceNote.isEmpty { print(referenceNote) }
    }

    /// The storage formats of the model's matrices with their counts, e.g. "Q4_1 ×210, Q8_0 ×1".
    static func formats(of model: LlamaModel) -> String {
        var counts = [String: Int]()
        // An output head of its own (untied) counts as a matrix too.
        let head = model.config.tieWordEmbeddings ? [] : [model.lmHead]
        let matrices = [model.embedding] + head + model.layers.flatMap { l in
            [l.qProj, l.kProj, l.vProj, l.oProj, l.gateProj, l.upProj, l.downProj].map(\.weight)
        }
        for m in matrices { counts[m.type.name, default: 0] += 1 }
        return counts.sorted { $0.value > $1.value }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
    }

    /// The types of every tensor a GGUF file stores with their counts, e.g. "Q5_0 ×166, F32 ×61,
    /// Q4_K ×16, Q8_0 ×15, Q6_K ×14" (nil for other files): what llama.cpp's quantiser chose,
    /// fallbacks included.
    static func fileTensorTypes(path: String) -> String? {
        guard let file = try? GGUFFile(path: path) else { return nil }
        var counts = [String: Int]()
        for info in file.tensors.values { counts[info.type.name, default: 0] += 1 }
        return counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
    }

    func runReference(script: String, model: String, lengths: [Int]) -> [String: Any] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script, "--model", model, "--prefill", lengths.map(String.init).joined(separator: ","),
                       "--decode", "\(decode)", "--threads", "\(threads)", "--repeats", "\(repeats)"]
        let pipe = Pipe()
        p.standardOutput = pipe
        do { try p.run() } catch { return ["error": "cannot run python3: \(error)"] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            return ["error": "reference printed no JSON (exit \(p.terminationStatus))"]
        }
        return obj
    }
}
