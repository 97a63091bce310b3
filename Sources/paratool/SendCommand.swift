// `paratool send`: one request through Kafka; prints the Action and its telemetry.
import ArgumentParser
import Foundation
import Kafka
import ParaTool
import ParaToolService
import Wire

struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send one request to the workers and print the Action and FLOPs telemetry that answer it.")

    @OptionGroup var kafka: KafkaOptions

    @Option(help: "The user's query.")
    var query: String

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

    @Option(help: "Give up waiting after this many milliseconds; also sent as the request's deadline.")
    var timeoutMs: Int = 120_000

    @Option(help: "Request id (default: a new UUID).")
    var requestId: String?

    @Flag(help: "Print one JSON object {\"action\": …, \"telemetry\": …}.")
    var json = false

    func run() throws {
        let settings = try kafka.settings()
        let config = try kafka.kafkaConfiguration(settings)
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
        let candidates = tools?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } ?? []
        let request = WireToolCallRequest(
            requestID: requestId ?? UUID().uuidString.lowercased(), query: query, candidateTools: candidates,
            maxNewTokens: UInt32(maxNewTokens ?? 0),
            deadlineUnixMs: Int64(Date().timeIntervalSince1970 * 1000) + Int64(timeoutMs),
            topN: topN.map(UInt32.init), mode: wireMode, maxCalls: maxCalls.map(UInt32.init))
        let client = try RequestClient(kafka: config, topics: kafka.topics(settings))
        let start = ContinuousClock.now
        guard let result = try client.call(request, timeout: .milliseconds(timeoutMs)) else {
            throw UsageError("no Action for \(request.requestID) within \(timeoutMs) ms: is a worker running on \(config.brokers)?")
        }
        let elapsed = ContinuousClock.now - start
        if json {
            print(try jsonText(["action": result.action.jsonObject, "telemetry": result.telemetry.map { $0.jsonObject as Any } ?? NSNull()]))
        } else {
            print(result.action.humanReadable)
            if let t = result.telemetry { print(t.humanReadable) }
            print(String(format: "round trip: %.1f ms", elapsed.seconds * 1000))
        }
        if result.action.status != .ok { throw ExitCode(2) }
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
        return o
    }

    var humanReadable: String {
        var lines = ["status: \(status.label)"]
        if let error { lines.append("error: \(error.code): \(error.message)") }
        for call in calls { lines.append("call: \(call.name) \(call.argumentsJSON)") }
        if calls.isEmpty && !text.isEmpty { lines.append("answer: \(text)") }
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
        case .unrecognized(let v): "STATUS_\(v)"
        }
    }
}
