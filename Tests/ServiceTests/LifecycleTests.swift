// The pieces the services run on: ServiceThread keeps a service's blocking work on a thread of
// its own (off the cooperative pool), Readiness wakes its waiters once, and FirstStartTraining
// plans what a fresh or partly trained store lacks.
import Foundation
import ParaTool
import ParaToolService
import ParaToolTraining
import Testing

@Suite struct LifecycleTests {
    @Test func serviceThreadRunsTheBodyAndWhatItAwaitsOnItsOwnThread() async throws {
        let executor = ServiceThread(name: "lifecycle-test")
        let names = try await executor.run { () -> [String] in
            let firstID = threadID()
            let before = currentThreadName()
            try await Task.sleep(for: .milliseconds(10))
            let after = currentThreadName()
            // A blocking call here occupies this thread only; so does a sleep past the idle time.
            block(seconds: 0.01)
            try await Task.sleep(for: .seconds(1.5))
            return [before, after, currentThreadName()] + [threadID() == firstID ? "same" : "other"]
        }
        #expect(names == ["lifecycle-test", "lifecycle-test", "lifecycle-test", "same"])
        // The thread ends when idle and a later run starts another one.
        try await Task.sleep(for: .seconds(1.5))
        #expect(try await executor.run { currentThreadName() } == "lifecycle-test")
    }

    @Test func readinessWakesEveryWaiterOnceAndCarriesAFailure() async throws {
        let ready = Readiness()
        #expect(!ready.isReady)
        async let first: Void = ready.wait()
        async let second: Void = ready.wait()
        try await Task.sleep(for: .milliseconds(20))
        ready.markReady()
        ready.fail(CancellationError())
        try await first
        try await second
        try await ready.wait()
        #expect(ready.isReady, "the first outcome stays")

        struct Broken: Error {}
        let failing = Readiness()
        let waiting = Task { try await failing.wait() }
        failing.fail(Broken())
        await #expect(throws: Broken.self) { try await waiting.value }
        #expect(!failing.isReady)
    }

    @Test func firstStartPlansMissingAdaptersAndTheGate() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("paratool-first-start-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let store = root.appendingPathComponent("store")
        let policy = FirstStartTraining(catalogue: ServiceFixtures.catalogue, catalogueFile: root.appendingPathComponent("tools.json"),
                                        store: store, work: root)
        #expect(try policy.plan() == FirstStartTraining.Plan(tools: ServiceFixtures.catalogue.names, gateMissing: true))
        // One tool with a current adapter, and a gate in the store's layout: the rest remains.
        _ = try AdapterStore(root: store).publish(try ServiceFixtures.adapter(0), tool: "get_weather", stage: "fixture", baseModel: "tiny-qwen2")
        let lm = ServiceFixtures.model
        try GateNetwork(config: GateConfig(dimension: lm.model.config.hiddenSize, hidden: [8]), seed: 1)
            .save(to: AdapterStore.gatesDirectory(root: store).appendingPathComponent(AdapterStore.newGateVersion()))
        #expect(try policy.plan() == FirstStartTraining.Plan(tools: ["book_flight", "convert_currency"], gateMissing: false))
    }
}

/// The calling thread's name (a synchronous function, callable from async code).
private func currentThreadName() -> String {
    ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .newlines)
}

private func block(seconds: Double) { Thread.sleep(forTimeInterval: seconds) }

/// The calling thread's identity.
private func threadID() -> pthread_t { pthread_self() }
