// A served request's trajectory candidate that cannot be encoded (a string holding U+0000, which
// protobuf-c cannot carry) was dropped by `try?` without a word: it is now logged and counted
// (`paratool_trajectory_drops_total{reason}`). Strings decoded from the wire cannot hold U+0000, so
// no request reaches this today; the test calls the worker's encoding step directly.
import Foundation
import Kafka
import Logging
@testable import ParaToolService
import Testing
import Wire

@Suite struct TrajectoryDropTests {
    @Test func anUnencodableCandidateIsCountedNotSilentlyDropped() throws {
        let metrics = ServiceMetrics()
        let kafka = KafkaConfiguration(brokers: "127.0.0.1:1")
        var logger = Logger(label: "test")
        // The listener's consumer is never run; its failed connection attempts are not the point.
        logger.logLevel = .critical
        let control = try ControlListener(kafka: kafka, topics: TopicNames(), registry: nil, followTools: false, followAdapters: false,
                                          metrics: metrics, logger: logger)
        let worker = Worker(settings: WorkerSettings(workerID: "w", modelID: "m"), kafka: kafka, catalogue: nil, gate: nil,
                            control: control, metrics: metrics, logger: logger) { _, _ in throw CancellationError() }
        let fine = WireTrajectory(id: "r1", query: "Weather?", candidateTools: ["get_weather"], steps: [], outcome: .unknown, source: "served:w")
        #expect(worker.candidateOutput(fine, key: "get_weather") != nil)
        var broken = fine
        broken.query = "Weather\u{0}?"
        #expect(worker.candidateOutput(broken, key: "get_weather") == nil)
        let exposition = metrics.exposition()
        #expect(exposition.contains(#"paratool_trajectory_drops_total{reason="unencodable"} 1"#), "\(exposition)")
    }
}
