// What one request may cost a worker, checked before any compute: a prompt over the model's
// context or --max-prompt-tokens, and a request estimated over the batch budget, are rejected to
// the DLQ with their reason while the requests polled with them are answered as usual and the
// worker keeps its partitions; batches are formed short requests first, long ones alone.
import Foundation
import Kafka
import LLM
import ParaTool
@testable import ParaToolService
import Testing
import Wire

@Suite(.serialized) struct RequestLimitTests {
    static let queries = ["Weather in Paris?", "Fly me from SFO to JFK", "100 USD in EUR", "Rain tomorrow in Oslo?",
                          "Book BOS to LAX", "Convert 5 GBP to JPY", "Is it sunny in Rome?"]

    /// A query far beyond the tiny fixture model's context of 256 tokens.
    static let overLongQuery = String(repeating: "Please find the weather in Paris and then in Oslo. ", count: 120)

    static func ordinary(_ round: String) -> [WireToolCallRequest] {
        queries.enumerated().map { i, q in WireToolCallRequest(requestID: "\(round)-\(i)", query: q, maxNewTokens: 4) }
    }

    /// Sends `requests` at once and returns the answers and the seconds until the last arrived.
    static func serve(_ requests: [WireToolCallRequest], client: RequestClient) throws -> ([String: RequestResult], Double) {
        let start = Date()
        for r in requests { try client.send(r) }
        let results = try client.collect(Set(requests.map(\.requestID)), timeout: .seconds(60))
        return (results, Date().timeIntervalSince(start))
    }

    @Test func overLongQueryAmongOrdinaryRequestsIsRejectedAndTheOthersAnswered() throws {
        let harness = try ServiceHarness()
        let worker = try harness.startWorker(id: "w1")
        let client = try harness.client()

        // The same seven requests alone, once to warm up and once to time.
        _ = try Self.serve(Self.ordinary("warm"), client: client)
        let (alone, aloneSeconds) = try Self.serve(Self.ordinary("alone"), client: client)
        #expect(alone.values.allSatisfy { $0.action.status == .ok })

        // The over-long request first, so it is polled with the seven.
        let long = WireToolCallRequest(requestID: "long", query: Self.overLongQuery, maxNewTokens: 4)
        let (mixed, mixedSeconds) = try Self.serve([long] + Self.ordinary("mixed"), client: client)
        #expect(mixed.count == 8, "every request is answered")
        for r in Self.ordinary("mixed") {
            #expect(mixed[r.requestID]?.action.status == .ok, "\(r.requestID) answered")
        }
        #expect(mixedSeconds < aloneSeconds * 2 + 2, "the seven took \(mixedSeconds) s beside the long one, \(aloneSeconds) s alone")

        let rejected = try #require(mixed["long"])
        #expect(rejected.action.status == .invalidRequest)
        #expect(rejected.action.error?.code == "prompt.too_long")
        #expect(rejected.action.error?.message.contains("context of 256 tokens") == true, "\(rejected.action.error?.message ?? "")")
        #expect(rejected.telemetry == nil, "nothing was computed for it")

        let dlq = try harness.readAll(harness.topics.dlq, count: 1)
        let letter = try #require(dlq.first)
        #expect(letter.keyString == "long")
        #expect(letter.header(DeadLetterHeader.errorCode)?.string == "prompt.too_long")
        #expect(letter.header(DeadLetterHeader.errorMessage)?.string.contains("tokens") == true)
        #expect(try WireToolCallRequest(bytes: letter.value).query == Self.overLongQuery, "the original bytes")

        #expect(worker.assignmentCount == 1, "no rebalance: the worker kept its partitions throughout")
        try harness.stop(worker)
    }

    @Test func configuredPromptLimitAndBatchBudgetRejectBeforeCompute() throws {
        let harness = try ServiceHarness()
        let tight = try harness.startWorker(id: "w-tight") { $0.maxPromptTokens = 8 }
        let client = try harness.client()
        let (results, _) = try Self.serve([WireToolCallRequest(requestID: "p", query: "Weather in Paris?", maxNewTokens: 4)], client: client)
        #expect(results["p"]?.action.error?.code == "prompt.too_long")
        #expect(results["p"]?.action.error?.message.contains("the configured most prompt tokens") == true)
        try harness.stop(tight)

        let starved = try harness.startWorker(id: "w-starved") { $0.batchBudget = .microseconds(1) }
        let (costly, _) = try Self.serve([WireToolCallRequest(requestID: "c", query: "Weather in Paris?", maxNewTokens: 4)], client: client)
        #expect(costly["c"]?.action.error?.code == "request.too_costly")
        #expect(costly["c"]?.action.error?.message.contains("between two polls") == true)
        try harness.stop(starved)

        let codes = try harness.readAll(harness.topics.dlq, count: 2).compactMap { $0.header(DeadLetterHeader.errorCode)?.string }
        #expect(codes.sorted() == ["prompt.too_long", "request.too_costly"])
    }

    @Test func pollIntervalSetsTheBudget() {
        let cluster = KafkaConfiguration(brokers: "127.0.0.1:1")
        #expect(ComputeBudget(consumer: .init(cluster: cluster, groupID: "g")).perBatch == .seconds(75))
        let operator20s = cluster.merging(["max.poll.interval.ms": "20000"])
        #expect(ComputeBudget(consumer: .init(cluster: operator20s, groupID: "g")).perBatch == .seconds(5))
        #expect(ComputeBudget(consumer: .init(cluster: operator20s, groupID: "g", maxPollInterval: .seconds(8))).perBatch == .seconds(2))
        #expect(ComputeBudget(consumer: .init(cluster: cluster.merging(["max.poll.interval.ms": "soon"]), groupID: "g")).perBatch == .seconds(75))
    }

    @Test func batchesPutShortRequestsFirstAndLongOnesAlone() {
        let budget = ComputeBudget(perBatch: .seconds(100))
        let sum: ([BatchPlanner.Item]) -> ([Int]) -> Double = { items in { $0.reduce(0) { $0 + items[$1].seconds } } }

        // A long request (over a quarter of the budget) polled with seven short ones.
        var items = [BatchPlanner.Item(seconds: 60)] + Array(repeating: BatchPlanner.Item(seconds: 1), count: 7)
        let first = BatchPlanner.next(items, budget: budget, maxBatch: 8, estimate: sum(items))
        #expect(first == Array(1...7), "the short ones together, first")
        items = [BatchPlanner.Item(seconds: 60, deferrals: 1), BatchPlanner.Item(seconds: 1)]
        #expect(BatchPlanner.next(items, budget: budget, maxBatch: 8, estimate: sum(items)) == [0],
                "once passed over, the long one goes next, alone")

        // Short requests fill a batch only up to the budget, shortest first.
        items = [20, 5, 24, 24, 24, 24, 24].map { BatchPlanner.Item(seconds: $0) }
        let batch = BatchPlanner.next(items, budget: budget, maxBatch: 8, estimate: sum(items))
        #expect(batch == [1, 0, 2, 3, 4], "5 + 20 + 3 × 24 = 97 s; a fourth 24 would pass 100")
        #expect(sum(items)(batch) <= 100)
        #expect(BatchPlanner.next(items, budget: budget, maxBatch: 2, estimate: sum(items)) == [1, 0])
    }

    @Test func estimatesFollowThePromptAndTheMeasuredSpeed() {
        let estimator = ComputeEstimator(measuring: ServiceFixtures.model)
        let short = RequestCost(promptTokens: 20, maxNewTokens: 4, encoderTokens: 20, candidates: 3)
        let long = RequestCost(promptTokens: 250, maxNewTokens: 4, encoderTokens: 250, candidates: 3)
        #expect(estimator.seconds([short]) > 0)
        #expect(estimator.seconds([long]) > estimator.seconds([short]))
        #expect(estimator.seconds([short, short]) > estimator.seconds([short]))
        // A batch that ran slower than estimated raises the estimate at once.
        let before = estimator.seconds([long])
        estimator.record([long], prefillSeconds: before * 10, decodeSeconds: before * 10, steps: 3)
        #expect(estimator.seconds([long]) > before * 5)
    }

    @Test func commitsNeverPassARequestStillWaiting() {
        func message(_ partition: Int32, _ offset: Int64) -> KafkaMessage {
            KafkaMessage(topic: "t", partition: partition, offset: offset, key: [], value: [], headers: [], timestampMs: nil)
        }
        var progress = Worker.CommitProgress()
        // Offsets 3 (long, waiting) and 4, 5 (answered) on partition 0; 7 answered on partition 1.
        let first = progress.commitPositions(handled: [message(0, 4), message(0, 5), message(1, 7)], waiting: [message(0, 3)])
        #expect(first == [TopicPartitionOffset(topic: "t", partition: 0, offset: 3), TopicPartitionOffset(topic: "t", partition: 1, offset: 8)])
        let second = progress.commitPositions(handled: [message(0, 3)], waiting: [])
        #expect(second == [TopicPartitionOffset(topic: "t", partition: 0, offset: 6)])
    }
}
