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
}
