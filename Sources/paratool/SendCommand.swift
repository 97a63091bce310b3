// `paratool send`: one request through Kafka; prints the Action and its telemetry. With
// `--feedback` it also reports whether the answer solved the request (and, if not, the calls that
// were needed) on the `feedback` topic, for this request or, without `--query`, an earlier one.
import ArgumentParser
import Foundation
import Kafka
import ParaTool
import ParaToolService
import Wire

struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send one request to the workers and print the Action and FLOPs telemetry that answer it.",
        discussion: """
            --feedback solved|unsolved then reports on the feedback topic whether the answer did the \
            job; with unsolved, each --corrected-call 'NAME {JSON arguments}' names a call that was \
            needed instead. Without --query it reports on an earlier request: --request-id ID \
            --feedback unsolved --corrected-call 'get_weather {"city": "Oslo"}'.
            """)

    @OptionGroup var kafka: KafkaOptions

    @Option(help: "The user's query (omit it to only report --feedback on --request-id).")
    var query: String?

    @Option(help: ArgumentHelp("Report whether the answer solved the request.", valueName: "solved|unsolved"))
    var feedback: String?

    @Option(help: ArgumentHelp("With --feedback unsolved: a call that was needed, its name then its JSON arguments (repeatable).",
                               valueName: "'name {json}'"))
    var correctedCall: [String] = []

    @Option(help: "Who reports the feedback.")
    var feedbackSource = "send"

    @Option(help: ArgumentHelp("Candidate tools, comma-separated (default: the worker's whole catalogue).", valueName: "a,b"))
    var tools: String?

    @Option(help: ArgumentHelp("Method: \(SelectionMode.allCases.map(\.rawValue).joined(separator: ", ")) (default: the worker's).", valueName: "mode"))
    var mode: String?

    @Option(help: "Keep the gate's N best adapters.")
    var topN: Int?

    @Option(help: "Most tool calls in the answer (1: no parallel calls; default: the worker's limit).")
    var maxCalls: Int?

    @Option(help: "Generation budget (default: the worker's).")
    var maxNewTokens: Int?

    @Option(help: ArgumentHelp("What the answer may be: auto (calls or a text answer), required (at least one call), none (text only), or a candidate tool's name (default: the worker's, auto unless configured).", valueName: "choice"))
    var toolChoice: String?

    @Option(help: "Give up waiting after this many milliseconds; also sent as the request's deadline.")
    var timeoutMs: Int = 120_000

    @Option(help: "Request id (default: a new UUID).")
    var requestId: String?

    @Option(help: ArgumentHelp("Topic the answer comes back on (created when missing; must be under the workers' reply prefix). Default <prefix>replies.send-<hostname>.", valueName: "topic"))
    var replyTopic: String?

    @Flag(help: "Read the answer from the shared actions topic (as clients before reply topics did) instead of a reply topic.")
    var sharedReplies = false

    @Flag(help: "Ask the workers not to store this request (no trajectory candidate for training).")
    var noLog = false

    @Option(help: "Who sends the request (e.g. agent:<name>), stored with its trajectory so `paratool forget --source` can remove it.")
    var source: String?

    @Flag(help: "Print one JSON object {\"action\": …, \"telemetry\": …}.")
    var json = false

    func run() throws {
        let settings = try kafka.settings()
        let config = try kafka.kafkaConfiguration(settings)
        let report = try parsedFeedback()
        guard let query else {
            guard let report, let requestId else { throw UsageError("--query is required, unless --request-id and --feedback report on an earlier request") }
            let client = try RequestClient(kafka: config, topics: kafka.topics(settings))
            try Self.send(report, about: requestId, through: client)
            print("feedback: \(feedback!) for \(requestId)" + (report.correctedCalls.isEmpty ? "" : " with \(report.correctedCalls.count) corrected call(s)"))
            return
        }
        var wireMode: WireMode?
        if let mode {
            guard let m = SelectionMode(rawValue: mode) else {
                throw UsageError("--mode must be one of \(SelectionMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            wireMode = WireMode(name: m.rawValue)
        }
        if let topN, topN < 1 { throw UsageError("--top-n must be at least 1") }
        if let maxCalls, maxCalls < 1 { throw UsageError("--max-calls must be at least 1") }
        if let maxNewTokens, maxNewTokens < 1 { throw UsageError("--max-new-tokens must be at least 1") }
        if let toolChoice, toolChoice.isEmpty { throw UsageError("--tool-choice must be auto, required, none or a tool's name") }
        let candidates = tools?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } ?? []
        let request = WireToolCallRequest(
            requestID: requestId ?? UUID().uuidString.lowercased(), query: query, candidateTools: candidates,
            maxNewTokens: UInt32(maxNewTokens ?? 0),
            deadlineUnixMs: Int64(Date().timeIntervalSince1970 * 1000) + Int64(timeoutMs),
            topN: topN.map(UInt32.init), mode: wireMode, maxCalls: maxCalls.map(UInt32.init), toolChoice: toolChoice ?? "",
            doNotLog: noLog, source: source ?? "")
        let topics = kafka.topics(settings)
        if sharedReplies, replyTopic != nil { throw UsageError("--reply-topic and --shared-replies exclude each other") }
        let reply = sharedReplies ? nil : replyTopic ?? RequestClient.defaultReplyTopic(topics: topics, client: "send-\(ProcessInfo.processInfo.hostName)")
        let client = try RequestClient(kafka: config, topics: topics, replyTopic: reply)
        let start = ContinuousClock.now
        guard let result = try client.call(request, timeout: .milliseconds(timeoutMs)) else {
            throw UsageError("no Action for \(request.requestID) within \(timeoutMs) ms: is a worker running on \(config.brokers)?")
        }
        let elapsed = ContinuousClock.now - start
        if let report { try Self.send(report, about: request.requestID, through: client) }
        if json {
            print(try jsonText(["action": result.action.jsonObject, "telemetry": result.telemetry.map { $0.jsonObject as Any } ?? NSNull()]))
        } else {
            print(result.action.humanReadable)
            if let t = result.telemetry { print(t.humanReadable) }
            print(String(format: "round trip: %.1f ms", elapsed.seconds * 1000))
            if report != nil { print("feedback: \(feedback!) reported") }
        }
        if result.action.status != .ok { throw ExitCode(2) }
    }

    /// Reports `feedback` on `requestID`, stamped with the current time.
    private static func send(_ feedback: WireFeedback, about requestID: String, through client: RequestClient) throws {
        var feedback = feedback
        feedback.requestID = requestID
        feedback.createdUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
        try client.report(feedback)
    }

    /// `--feedback`, `--corrected-call` and `--feedback-source` checked and parsed into the
    /// feedback to report (its request id and time still unset); nil without `--feedback`.
    private func parsedFeedback() throws -> WireFeedback? {
        guard let feedback else {
            if !correctedCall.isEmpty { throw UsageError("--corrected-call belongs to --feedback unsolved") }
            return nil
        }
        let outcome: WireOutcome
        switch feedback {
        case "solved": outcome = .solved
        case "unsolved": outcome = .unsolved
        default: throw UsageError("--feedback must be solved or unsolved, got \"\(feedback)\"")
        }
        if outcome == .solved, !correctedCall.isEmpty { throw UsageError("--corrected-call belongs to --feedback unsolved") }
        let calls = try correctedCall.map { text -> WireToolCall in
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            guard let brace = trimmed.firstIndex(of: "{") else {
                throw UsageError("--corrected-call \"\(text)\": expected a tool name then its JSON arguments, e.g. 'get_weather {\"city\": \"Oslo\"}'")
            }
            let name = trimmed[..<brace].trimmingCharacters(in: .whitespaces)
            let arguments = String(trimmed[brace...])
            guard !name.isEmpty else { throw UsageError("--corrected-call \"\(text)\": the tool name is missing") }
            let parsed: JSONValue
            do { parsed = try JSONValue.parse(arguments) } catch {
                throw UsageError("--corrected-call \"\(text)\": the arguments are not JSON: \(error)")
            }
            guard case .object = parsed else { throw UsageError("--corrected-call \"\(text)\": the arguments must be a JSON object") }
            return WireToolCall(name: name, argumentsJSON: parsed.serialized())
        }
        return WireFeedback(requestID: "", outcome: outcome, correctedCalls: calls, source: feedbackSource)
    }
}

extension WireAction {
    var jsonObject: [String: Any] {
        var o: [String: Any] = [
            "request_id": requestID, "status": status.label, "model_id": modelID,
            "calls": calls.map { call -> [String: Any] in
                let args = (try? JSONSerialization.jsonObject(with: Data(call.argumentsJSON.utf8), options: [.fragmentsAllowed])) ?? call.argumentsJSON
                return ["name": call.name, "arguments": args]
            },
            "text": text,
            "weights": weights.map { ["tool": $0.tool, "weight": $0.weight, "adapter_version": $0.adapterVersion] },
        ]
        if let error { o["error"] = ["code": error.code, "message": error.message] }
        if let t = timings { o["timings_ms"] = t.jsonObject }
        if !servedFormat.isEmpty { o["served_format"] = servedFormat }
        if forceClosed { o["force_closed"] = true }
        return o
    }

    var humanReadable: String {
        var lines = ["status: \(status.label)"]
        if let error { lines.append("error: \(error.code): \(error.message)") }
        for call in calls { lines.append("call: \(call.name) \(call.argumentsJSON)") }
        if calls.isEmpty && !text.isEmpty { lines.append("answer: \(text)") }
        if forceClosed { lines.append("note: the token budget closed the last call early; its last values may be cut short") }
        if !servedFormat.isEmpty { lines.append("served as: \(servedFormat)") }
        let used = weights.filter { $0.weight > 0 }.sorted { $0.weight > $1.weight }
        if !used.isEmpty {
            lines.append("weights: " + used.map { String(format: "%@ %.3f (%@)", $0.tool, $0.weight, $0.adapterVersion.isEmpty ? "no adapter" : $0.adapterVersion) }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}

extension WirePhaseTimings {
    var jsonObject: [String: Any] {
        ["queue": queueMs, "gate": gateMs, "prefill": prefillMs, "decode": decodeMs, "total": totalMs]
    }
}

extension WireFlopsTelemetry {
    var jsonObject: [String: Any] {
        var o: [String: Any] = [
            "request_id": requestID, "worker_id": workerID, "prompt_tokens": promptTokens, "generated_tokens": generatedTokens,
            "base_linear": baseLinear, "attention": attention, "lora": lora, "encoder": encoder, "gate": gate,
            "total": total, "context_docs_equivalent": contextDocsEquivalent,
        ]
        if let t = timings { o["timings_ms"] = t.jsonObject }
        return o
    }

    var humanReadable: String {
        let saving = contextDocsEquivalent > 0 ? 100 * (1 - Double(total) / Double(contextDocsEquivalent)) : 0
        return String(format: "flops: %.3g total (lora %.3g, encoder %.3g, gate %.3g); context+docs would be %.3g (%.0f%% saved); %llu prompt + %llu generated tokens; worker %@",
                      Double(total), Double(lora), Double(encoder), Double(gate), Double(contextDocsEquivalent), saving,
                      promptTokens, generatedTokens, workerID)
    }
}

extension WireStatus {
    /// The proto enum's name without its prefix, e.g. `OK`, `UNKNOWN_TOOL`.
    var label: String {
        switch self {
        case .unspecified: "UNSPECIFIED"
        case .ok: "OK"
        case .invalidRequest: "INVALID_REQUEST"
        case .unknownTool: "UNKNOWN_TOOL"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .internal: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .unrecognized(let v): "STATUS_\(v)"
        }
    }
}
