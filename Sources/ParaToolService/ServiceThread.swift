// ServiceThread: a task executor with one thread of its own, for the services' blocking work
// (librdkafka polls and flushes, engine batches, training steps), so that an async service never
// blocks a thread of Swift's cooperative pool; and Readiness, a state set once from any thread
// and awaited by tasks.
import Foundation
import Synchronization

/// Runs the jobs of the tasks that prefer it, in order, on one dedicated thread.
///
/// `run(_:)` executes an async body with this executor preferred: its synchronous calls (a
/// blocking poll, a forward pass) then occupy this thread, not the cooperative pool. The thread
/// starts with the first job and, once no `run` is in progress, ends after a second without a job
/// (the next job starts another). Within one `run` every job runs on the same thread.
public final class ServiceThread: TaskExecutor, Sendable {
    private struct Queue: ~Copyable {
        var jobs: [UnownedJob] = []
        var threadRunning = false
        /// `run` calls in progress: the thread stays while there is one.
        var active = 0
    }

    private let name: String
    private let queue = Mutex(Queue())
    private let wakeUp = NSCondition()

    public init(name: String) { self.name = name }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let startThread = queue.withLock { q -> Bool in
            q.jobs.append(job)
            guard !q.threadRunning else { return false }
            q.threadRunning = true
            return true
        }
        if startThread {
            Thread { [self] in
                // The kernel's name of the thread (top -H, gdb, backtraces; at most 15 bytes).
                try? String(decoding: name.utf8.prefix(15), as: UTF8.self)
                    .write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
                drain()
            }.start()
        } else {
            wakeUp.lock()
            wakeUp.signal()
            wakeUp.unlock()
        }
    }

    /// Runs `body` on this executor's thread (and the jobs it awaits as well).
    public func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        enter()
        defer { leave() }
        return try await withTaskExecutorPreference(self, operation: body)
    }

    // Not inlined into the async `run`: see `Readiness` on locks in async functions.
    @inline(never)
    private func enter() { queue.withLock { $0.active += 1 } }

    @inline(never)
    private func leave() { queue.withLock { $0.active -= 1 } }

    private enum Next { case job(UnownedJob), idle, exit }

    private func drain() {
        let executor = asUnownedTaskExecutor()
        while true {
            wakeUp.lock()
            var next = take(mayExit: false)
            if case .idle = next {
                _ = wakeUp.wait(until: Date().addingTimeInterval(1))
                next = take(mayExit: true)
            }
            wakeUp.unlock()
            switch next {
            case .job(let job): job.runSynchronously(on: executor)
            case .idle: continue
            case .exit: return
            }
        }
    }

    /// The next job; with none, `exit` (and the thread no longer counts as running) when allowed
    /// and no `run` is in progress.
    private func take(mayExit: Bool) -> Next {
        queue.withLock { q in
            if !q.jobs.isEmpty { return .job(q.jobs.removeFirst()) }
            guard mayExit, q.active == 0 else { return .idle }
            q.threadRunning = false
            return .exit
        }
    }
}

/// Becomes ready, or failed, once; tasks await it.
///
/// Its methods that take the lock are never inlined: inlined into an async function, the lock's
/// owner-thread lookup may be computed before a suspension and used after it, on another thread
/// (Synchronization's Mutex then traps on unlock).
public final class Readiness: Sendable {
    private struct State: ~Copyable {
        var outcome: Result<Void, any Error>?
        var waiters: [CheckedContinuation<Void, any Error>] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Whether `markReady()` has been called (and not a failure).
    public var isReady: Bool { readyNow() }

    @inline(never)
    private func readyNow() -> Bool { state.withLock { if case .success = $0.outcome { true } else { false } } }

    /// Wakes every waiter; later calls (and a later `fail`) change nothing.
    @inline(never)
    public func markReady() { settle(.success(())) }

    /// Wakes every waiter with `error`, unless already settled.
    @inline(never)
    public func fail(_ error: any Error) { settle(.failure(error)) }

    /// Returns once ready; throws the failure.
    public func wait() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let settled = state.withLock { s -> Result<Void, any Error>? in
                if let outcome = s.outcome { return outcome }
                s.waiters.append(continuation)
                return nil
            }
            if let settled { continuation.resume(with: settled) }
        }
    }

    @inline(never)
    private func settle(_ outcome: Result<Void, any Error>) {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, any Error>] in
            guard s.outcome == nil else { return [] }
            s.outcome = outcome
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume(with: outcome) }
    }
}
