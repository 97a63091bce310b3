// fuzz-chat-template: any text as a model's chat template (a Jinja subset). Parsing must give a
// template or a TokenizerError; rendering a parsed template over a short conversation must give
// text or a TokenizerError, in bounded time and output.
import FuzzSupport
import LLM

let conversation = [
    ChatMessage(role: "system", content: "You call tools."),
    ChatMessage(role: "user", content: "Weather in Oslo?"),
    ChatMessage(role: "assistant", content: "<tool_call>{\"name\": \"get_weather\"}</tool_call>"),
    ChatMessage(role: "tool", content: "{\"temp\": 3}"),
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChatTemplate(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let source = String(decoding: bytes, as: UTF8.self)
    let template: ChatTemplate
    do {
        template = try ChatTemplate(source: source, bosToken: "<s>", eosToken: "</s>")
    } catch is TokenizerError {
        return 0
    } catch {
        fatalError("parse: an error that is not a TokenizerError: \(error)")
    }
    for addGenerationPrompt in [false, true] {
        do {
            _ = try template.render(conversation, addGenerationPrompt: addGenerationPrompt)
        } catch is TokenizerError {
        } catch {
            fatalError("render: an error that is not a TokenizerError: \(error)")
        }
    }
    return 0
}

/// The entry point SwiftPM links for this executable: libFuzzer's driver over `fuzzChatTemplate`.
@_cdecl("fuzz_chat_template_main")
public func fuzzChatTemplateMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.run(argc, argv, fuzzChatTemplate)
}
