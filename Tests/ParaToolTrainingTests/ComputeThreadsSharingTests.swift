// A worker's runner and a trainer in one process (as under `paratool up`), each with its own
// thread budget: while the trainer runs training steps on another thread, the runner's prefill
// gives the same bits as alone, and the trainer's loss and gradients the same bits as alone; the
// budgets stay what each was given, and OpenBLAS's own thread count stays 1 throughout.
import FixtureSupport
import Foundation
import Synchronization
import Tensor
import XCTest
@testable import LLM
@testable import ParaTool
@testable import ParaToolTraining

final class ComputeThreadsSharingTests: XCTestCase {
    func testWorkerAndTrainerKeepTheirOwnBudgets() throws {
        let model = try LlamaModel(huggingFaceDirectory: RepositoryFixtures.hfTiny.appendingPathComponent("qwen2"))
        let adapter = ToolAdapter.initialized(name: "t", config: model.config, rank: 4, alpha: 8, seed: 3, randomB: true)
        let runner = Transformer(model: model, threads: 1)
        let trainer = LoRABackward(model: model, threads: 2)
        // Long enough that the products split (rows × width over MatVec.parallelElements).
        let prompt = (0..<250).map { 3 + ($0 * 37) % (model.config.vocabSize - 3) }
        let trainingIds = (0..<240).map { 5 + ($0 * 53) % (model.config.vocabSize - 5) }

        func prefill() -> [Float] {
            runner.forward([BatchSegment(sequence: 0, tokens: prompt)], caches: [KVCache(config: model.config)], logits: .all)
                .logits.toArray()
        }
        func step() -> (Float, [Float]) {
            let (loss, gradients) = trainer.lossAndGradients(ids: trainingIds, targets: 100, mixture: Mixture([(adapter, 1)]))
            let g = gradients[0]
            return (loss, FFNProjection.allCases.flatMap { p in g.a[0][p]!.toArray() + g.b[1][p]!.toArray() })
        }
        let aloneLogits = prefill()
        let (aloneLoss, aloneGradients) = step()
        // The worker's result under its budget of 1 matches a budget of 2 (the split is exact up
        // to float rounding): a reference computed independently of the trainer's pool.
        let two = Transformer(model: model, threads: 2)
            .forward([BatchSegment(sequence: 0, tokens: prompt)], caches: [KVCache(config: model.config)], logits: .all).logits.toArray()
        XCTAssertLessThanOrEqual(zip(two, aloneLogits).map { abs($0 - $1) }.max()!, 1e-4)

        let shared = Shared()
        let trainerBox = UncheckedBox(step)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            while !shared.stop.load(ordering: .relaxed) {
                let (loss, gradients) = trainerBox.value()
                if loss != aloneLoss || gradients != aloneGradients { shared.trainerMismatches.add(1, ordering: .relaxed) }
                if OpenBLASThreads.current != 1 { shared.openBLASChanged.add(1, ordering: .relaxed) }
                shared.trainerSteps.add(1, ordering: .relaxed)
            }
            done.signal()
        }
        var runs = 0
        while runs < 20 || shared.trainerSteps.load(ordering: .relaxed) < 3 {
            XCTAssertEqual(prefill(), aloneLogits, "prefill \(runs) beside the trainer")
            if OpenBLASThreads.current != 1 { shared.openBLASChanged.add(1, ordering: .relaxed) }
            runs += 1
        }
        shared.stop.store(true, ordering: .relaxed)
        done.wait()
        XCTAssertEqual(shared.trainerMismatches.load(ordering: .relaxed), 0, "trainer steps beside the worker differ from alone")
        XCTAssertEqual(shared.openBLASChanged.load(ordering: .relaxed), 0)
        XCTAssertEqual(runner.prefillThreads.count, 1)
        XCTAssertEqual(runner.decodeThreads.count, 1)
        XCTAssertEqual(trainer.threads.count, 2)
        XCTAssertEqual(OpenBLASThreads.current, 1)
    }
}

/// What the test's two threads share.
private final class Shared: Sendable {
    let stop = Atomic<Bool>(false)
    let trainerMismatches = Atomic<Int>(0), trainerSteps = Atomic<Int>(0), openBLASChanged = Atomic<Int>(0)
}

/// Hands a closure over non-Sendable state to one other thread, which alone calls it.
private final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
