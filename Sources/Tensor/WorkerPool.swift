// WorkerPool: a fixed set of threads that split one kernel call into parts with microsecond
// hand-off. Decode runs ~200 matrix-vector products per token; a GCD dispatch per product cost
// more than the product's own memory traffic at 2 threads, so workers spin briefly between calls
// (yielding the core now and then, for machines with more runnable threads than cores) and sleep
// on a condition variable when idle. `forEach` deals a list of items to whichever thread is free.
// Which pool a call uses comes from the caller's thread budget (ComputeThreads).
import Foundation
import Synchronization

/// Runs `body(part)` for every `part in 0..<threadCount`: the calling thread takes part 0, pool
/// threads the others.
public final class WorkerPool: @unchecked Sendable {
    /// Total threads that take parts, including the caller.
    public let threadCount: Int

    private let generation = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let submitLock = Mutex<Void>(())
    private let sleepMutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Written by the submitting thread before `generation` is bumped (release), read by workers
    // after they observe the bump (acquire).
    private var task: ((Int) -> Void)?

    /// A pool of `threads` threads in total (the caller counts as one).
    public init(threads: Int) {
        threadCount = max(1, threads)
        pthread_mutex_init(sleepMutex, nil)
        pthread_cond_init(wake, nil)
        for index in 1..<threadCount {
            let t = Thread { [unowned self] in self.workerLoop(index: index) }
            t.name = "paratool-worker-\(index)"
            t.start()
        }
    }

    /// Calls `body(part)` for every part in `0..<threadCount`, the caller taking part 0, and
    /// returns when all are done. Every pool thread takes part in every call, so no call can be
    /// missed. Calls from several threads are serialised.
    public func run(_ body: (Int) -> Void) {
        if threadCount == 1 { body(0); return }
        submitLock.withLock { _ in
            withoutActuallyEscaping(body) { escaping in
                task = escaping
                remaining.store(threadCount - 1, ordering: .sequentiallyConsistent)
                generation.add(1, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                    pthread_mutex_lock(sleepMutex)
                    pthread_cond_broadcast(wake)
                    pthread_mutex_unlock(sleepMutex)
                }
                escaping(0)
                var spins = 0
                while remaining.load(ordering: .acquiring) > 0 { spins += 1; spinPause(spins) }
                task = nil
            }
        }
    }

    /// Calls `body(item, part)` for every item in `0..<count`, in order of index: each thread (the
    /// caller included, `part` naming it) takes the next item not yet taken, so a thread held up
    /// elsewhere leaves its share to the others. Put the largest items first.
    public func forEach(_ count: Int, _ body: (Int, Int) -> Void) {
        if count == 0 { return }
        if threadCount == 1 || count == 1 {
            for item in 0..<count { body(item, 0) }
            return
        }
        let next = Atomic<Int>(0)
        run { part in
            while true {
                let item = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if item >= count { return }
                body(item, part)
            }
        }
    }

    private func workerLoop(index: Int) {
        var seen = 0  // the generation before any call: a thread that starts late still runs call 1
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < 200_000 { spinPause(spins); continue }
                sleepers.add(1, ordering: .sequentiallyConsistent)
                pthread_mutex_lock(sleepMutex)
                while generation.load(ordering: .sequentiallyConsistent) == seen {
                    pthread_cond_wait(wake, sleepMutex)
                }
                pthread_mutex_unlock(sleepMutex)
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
            }
            seen = generation.load(ordering: .acquiring)
            task?(index)
            remaining.subtract(1, ordering: .releasing)
        }
    }

    /// A spin-wait step: an atomic load per iteration is the whole cost, except that every 64th
    /// step yields the core, so that on a machine with more runnable threads than cores the
    /// thread being waited for (or another process) gets it instead of a spinner.
    @inline(__always)
    private func spinPause(_ spins: Int) {
        if spins & 63 == 0 { sched_yield() }
    }
}
