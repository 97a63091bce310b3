// ServiceMetrics: the Prometheus series a worker or trainer exports on /metrics (requests by
// status, DLQ reasons, batch sizes, latencies, tokens/s, FLOPs by part, consumer lag, adapter
// swaps, tool specs), in one registry.
import Foundation
import Prometheus

/// The service's metrics. Thread-safe (the Prometheus types are).
public final class ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let statusCounters: [String: Counter]
    private let latency: DurationHistogram
    private let queueLatency: DurationHistogram
    private let batchSize: ValueHistogram
    private let promptTokens: Counter
    private let generatedTokens: Counter
    private let tokensPerSecond: Gauge
    private let flops: [String: Counter]
    private let lag: Gauge
    private let ready: Gauge
    private let registryLock = NSLock()

    public static let statuses = ["ok", "invalid_request", "unknown_tool", "deadline_exceeded", "internal"]

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        statusCounters = Dictionary(uniqueKeysWithValues: Self.statuses.map {
            ($0, registry.makeCounter(descriptor: Self.name("requests", "total", "Requests answered, by status."), labels: [("status", $0)]))
        })
        let buckets: [Duration] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000].map { .milliseconds($0) }
        latency = registry.makeDurationHistogram(descriptor: Self.name("request_duration", "seconds", "From consuming a request to its Action being acknowledged."), buckets: buckets)
        queueLatency = registry.makeDurationHistogram(descriptor: Self.name("queue_duration", "seconds", "From a request's Kafka timestamp to its consumption."), buckets: buckets)
        batchSize = registry.makeValueHistogram(descriptor: Self.name("batch_size", "requests", "Requests per engine batch."), buckets: [1, 2, 4, 8, 16, 32])
        promptTokens = registry.makeCounter(descriptor: Self.name("prompt_tokens", "total", "Prompt tokens processed."))
        generatedTokens = registry.makeCounter(descriptor: Self.name("generated_tokens", "total", "Tokens generated."))
        tokensPerSecond = registry.makeGauge(descriptor: Self.name("tokens", "per_second", "Prompt plus generated tokens per second of the last batch."))
        flops = Dictionary(uniqueKeysWithValues: ["base_linear", "attention", "lora", "encoder", "gate"].map {
            ($0, registry.makeCounter(descriptor: Self.name("flops", "total", "FLOPs spent, by part."), labels: [("part", $0)]))
        })
        lag = registry.makeGauge(descriptor: Self.name("consumer_lag", "messages", "Messages behind the end of the assigned request partitions."))
        ready = registry.makeGauge(descriptor: Self.name("ready", "", "1 when the service serves (model loaded, group joined)."))
    }

    /// Counts one answered request.
    public func request(status: String, duration: Duration?) {
        statusCounters[status]?.increment()
        if let duration { latency.record(duration) }
    }

    public func queued(_ duration: Duration) { queueLatency.record(duration) }

    /// Records one engine batch.
    public func batch(size: Int, promptTokens p: Int, generatedTokens g: Int, seconds: Double,
                      flops parts: [String: Int]) {
        batchSize.record(Double(size))
        promptTokens.increment(by: Int64(p))
        generatedTokens.increment(by: Int64(g))
        if seconds > 0 { tokensPerSecond.set(to: Double(p + g) / seconds) }
        for (part, value) in parts { flops[part]?.increment(by: Int64(value)) }
    }

    /// Counts a dead-lettered message by reason code.
    public func deadLettered(reason: String) {
        counter("dlq", labels: [("reason", reason)], help: "Messages sent to the dead-letter topic, by reason.").increment()
    }

    /// Counts an answer whose request named a reply topic that does not exist (answered on the
    /// shared topic instead).
    public func replyTopicMissing() {
        counter("reply_topic_missing", labels: [], help: "Answers whose reply topic did not exist, sent to the shared topic instead.").increment()
    }

    /// Counts an adapter update by result (`applied`, `refused`, `stale`).
    public func adapterUpdate(result: String) {
        counter("adapter_updates", labels: [("result", result)], help: "AdapterUpdate messages, by result.").increment()
    }

    /// Counts a ToolSpec read from the `tools` topic by result (`accepted`, `refused`, and over
    /// the limits: `too_large`, `too_many`, `too_complex`).
    public func toolSpec(result: String) {
        counter("tool_specs", labels: [("result", result)], help: "ToolSpec messages read from the tools topic, by result.").increment()
    }

    /// Counts a request served in `format` (a selection mode's name, e.g. `paratool`, `context-docs`).
    public func served(format: String) {
        counter("requests_served", labels: [("format", format)], help: "Requests answered, by the format that served them.").increment()
    }

    /// Counts an answer by kind: `calls` (complete calls), `text` (a text answer), `force_closed`
    /// (calls the token budget closed early).
    public func answered(kind: String) {
        counter("answers", labels: [("kind", kind)], help: "Answers served, by kind: calls, text, or calls the budget force-closed.").increment()
    }

    /// Counts announcements on `adapters` (adapter versions, gates) whose send failed; each is
    /// sent again later (`paratool_announcement_failures_total`).
    public func announcementFailed(count: Int = 1) {
        counter("announcement_failures", labels: [],
                help: "Adapter and gate announcements whose send failed; each is sent again at a later round.")
            .increment(by: Int64(count))
    }

    /// Counts a served request's trajectory candidate that was not published, by reason
    /// (`unencodable`: the wire cannot carry it).
    public func trajectoryDropped(reason: String) {
        counter("trajectory_drops", labels: [("reason", reason)], help: "Served trajectory candidates not published, by reason.").increment()
    }

    /// The gauge `paratool_<name>` with these labels, created on first use.
    public func gauge(_ name: String, labels: [(String, String)], help: String) -> Gauge {
        registryLock.withLock { registry.makeGauge(descriptor: Self.name(name, "", help), labels: labels) }
    }

    public func setLag(_ value: Int64) { lag.set(to: Double(value)) }
    public func setReady(_ value: Bool) { ready.set(to: value ? 1 : 0) }

    /// The counter `paratool_<name>_total` with these labels, created on first use (the registry
    /// returns the same one for the same name and labels).
    public func counter(_ name: String, labels: [(String, String)], help: String) -> Counter {
        registryLock.withLock { registry.makeCounter(descriptor: Self.name(name, "total", help), labels: labels) }
    }

    /// `paratool_<metric>_<unit>` with its help text.
    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "paratool", metricName: metric, unitName: unit, helpText: help)
    }

    /// The Prometheus text exposition.
    public func exposition() -> String { registry.emitToString() }
}
