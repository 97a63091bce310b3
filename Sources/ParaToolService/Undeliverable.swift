// Undeliverable: what a worker or trainer does with an output the broker or producer can never
// take as it is (too large, invalid: `KafkaError.isPermanentForMessage`). It is logged, counted
// and dropped so the batch commits past it, never retried forever; a dead letter is not lost with
// it: a truncated letter (the reason, where the message came from, its first bytes) takes its place.
import Kafka
import Logging

/// Drops outputs that can never be delivered, and gives the truncated letter to send instead of
/// a dropped dead letter.
struct Undeliverable: Sendable {
    let metrics: ServiceMetrics
    let logger: Logger

    /// Logs and counts `m`, refused for good with `e`; returns the truncated letter to send in
    /// its place when `m` is a dead letter that was not truncated already (nil otherwise).
    func drop(_ m: OutgoingMessage, _ e: KafkaError) -> OutgoingMessage? {
        metrics.counter("undeliverable", labels: [("topic", m.topic), ("error", e.name)],
                        help: "Outputs dropped because the broker or producer can never accept them (too large, invalid).")
            .increment()
        let truncated = DeadLetterHeader.truncated(m)
        logger.error(truncated == nil ? "output can never be delivered, dropped" : "dead letter can never be delivered, sending it truncated",
                     metadata: ["topic": "\(m.topic)", "bytes": "\(m.value.count)",
                                "key": "\(String(decoding: (m.key ?? []).prefix(256), as: UTF8.self))", "error": "\(e)"])
        if truncated != nil {
            metrics.counter("dead_letters_truncated", labels: [],
                            help: "Dead letters the broker could never take, sent again holding only their reason, origin and first bytes.")
                .increment()
        }
        return truncated
    }
}
