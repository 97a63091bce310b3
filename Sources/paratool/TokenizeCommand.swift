// `paratool tokenize`: prints the token ids of a text as a JSON array.
import ArgumentParser
import LLM

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of a text as a JSON array.",
        discussion: "Special tokens written in the text (like <|im_start|>) are matched as single tokens; no BOS is added.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "The text to tokenize.")
    var text: String

    @Flag(help: "Print the decoded text of each token beside its id, one per line.")
    var pieces = false

    func run() throws {
        let tokenizer = try LanguageModel.loadTokenizer(path: modelOptions.model)
        let ids = tokenizer.encode(text)
        if pieces {
            for id in ids { print(id, try jsonText([tokenizer.decode([id])])) }
        } else {
            print(try jsonText(ids))
        }
    }
}
