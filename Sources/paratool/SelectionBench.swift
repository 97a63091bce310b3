// `paratool bench selection`: which pooling of the frozen encoder (mean over tokens, as the
// authors' code; last token, as the paper) selects the gold tool better, measured with the
// training-free EmbSim selector (cosine of the query's and each tool's "name: description"
// encodings) on BFCL questions.
import ArgumentParser
import Foundation
import LLM
import ParaTool

struct SelectionBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selection",
        abstract: "Top-1 tool selection accuracy of EmbSim with mean vs last-token pooling on BFCL questions.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("BFCL question file (JSONL).", valueName: "file"))
    var data: String

    @Option(help: ArgumentHelp("BFCL possible_answer file for the same category.", valueName: "file"))
    var answers: String

    @Option(help: "Use the first N questions (0: all).")
    var limit = 0

    @Option(help: ArgumentHelp("Encoder depths to compare: layers run before pooling, comma-separated (0 or absent: all).", valueName: "list"))
    var layers = "0"

    @Option(help: ArgumentHelp("Also rank every function of the whole file for each question (a request without candidates over that catalogue) and report how often the gold tool is among the K most similar: the gate's shortlist (comma-separated K; empty: skip).", valueName: "list"))
    var shortlist = ""

    func run() throws {
        let lm = try modelOptions.load()
        var questions = try BFCLQuestion.load(file: URL(fileURLWithPath: data))
        if limit > 0 { questions = Array(questions.prefix(limit)) }
        let gold = Dictionary(try BFCLAnswer.load(file: URL(fileURLWithPath: answers)).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let depths = layers.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            .map { $0 <= 0 || $0 >= lm.model.config.layerCount ? lm.model.config.layerCount : $0 }
        let variants = depths.flatMap { d in Pooling.allCases.map { (pooling: $0, layers: d) } }
        var correct = [String: Int](), counted = 0, candidatesTotal = 0
        let start = Date()
        for (pooling, depth) in variants {
            let encoder = ContextEncoder(model: lm.model, tokenizer: lm.tokenizer, pooling: pooling, layers: depth)
            var toolCache = [String: [Float]]()
            var n = 0
            for q in questions {
                guard let answer = gold[q.id], let goldName = answer.groundTruth.first?.name,
                      let query = q.turns.first?.last(where: { $0.role == "user" })?.content else { continue }
                let names = q.functions.map(\.name)
                guard names.contains(goldName) else { continue }
                let c = encoder.encode(query).vector
                let sims = q.functions.map { f -> Float in
                    let key = "\(f.name): \(f.description)"
                    if toolCache[key] == nil { toolCache[key] = encoder.encodeTool(name: f.name, description: f.description).vector }
                    return ToolSelection.cosine(c, toolCache[key]!)
                }
                if names[ToolSelection.top1(sims).firstIndex(of: 1)!] == goldName { correct["\(pooling) \(depth)", default: 0] += 1 }
                n += 1
                if pooling == .mean && depth == depths[0] { candidatesTotal += names.count }
            }
            counted = n
        }
        if !shortlist.isEmpty { try shortlistRecall(lm: lm, questions: questions, gold: gold) }
        print("questions: \(counted) of \(URL(fileURLWithPath: data).lastPathComponent), mean \(String(format: "%.2f", Double(candidatesTotal) / Double(max(counted, 1)))) candidates each; \(String(format: "%.0f", Date().timeIntervalSince(start))) s")
        print("")
        print("| pooling | layers | EmbSim top-1 accuracy |")
        print("|---|---:|---:|")
        for (p, d) in variants {
            let k = correct["\(p) \(d)", default: 0]
            print(String(format: "| %@ | %d of %d | %.1f%% (%d/%d) |", p.rawValue, d, lm.model.config.layerCount,
                         100 * Double(k) / Double(max(counted, 1)), k, counted))
        }
    }

    /// How often the gold tool is among the K tools whose encodings are most similar to the
    /// query's, ranking every function of the file (mean pooling, every layer: the gate's encoder
    /// before training moves the tool vectors).
    private func shortlistRecall(lm: LanguageModel, questions: [BFCLQuestion], gold: [String: BFCLAnswer]) throws {
        let ks = shortlist.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 }
        guard !ks.isEmpty else { throw ValidationError("--shortlist needs positive integers, e.g. 16,64") }
        let everything = try BFCLQuestion.load(file: URL(fileURLWithPath: data))
        var catalogue: [String: String] = [:]
        for q in everything { for f in q.functions where catalogue[f.name] == nil { catalogue[f.name] = f.description } }
        let names = catalogue.keys.sorted()
        let start = Date()
        let encoder = ContextEncoder(model: lm.model, tokenizer: lm.tokenizer, pooling: .mean, layers: nil)
        let vectors = names.map { encoder.encodeTool(name: $0, description: catalogue[$0]!).vector }
        var within = [Int: Int](), ranks: [Int] = []
        for q in questions {
            guard let goldName = gold[q.id]?.groundTruth.first?.name,
                  let query = q.turns.first?.last(where: { $0.role == "user" })?.content,
                  let goldIndex = names.firstIndex(of: goldName) else { continue }
            let c = encoder.encode(query).vector
            let sims = vectors.map { ToolSelection.cosine(c, $0) }
            let rank = sims.indices.filter { sims[$0] > sims[goldIndex] }.count + 1
            ranks.append(rank)
            for k in ks where rank <= k { within[k, default: 0] += 1 }
        }
        let median = ranks.sorted()[ranks.count / 2]
        print("whole-file catalogue: \(names.count) functions, \(ranks.count) questions, median gold rank \(median); \(String(format: "%.0f", Date().timeIntervalSince(start))) s")
        print("")
        print("| shortlist K | gold tool among the K most similar |")
        print("|---:|---:|")
        for k in ks {
            print(String(format: "| %d | %.1f%% (%d/%d) |", k, 100 * Double(within[k, default: 0]) / Double(max(ranks.count, 1)), within[k, default: 0], ranks.count))
        }
        print("")
    }
}
