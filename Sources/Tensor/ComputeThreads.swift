// ComputeThreads: the thread budget of one model context (a runner, an engine, an encoder, a
// trainer), passed to every kernel call that may split its work — as llama.cpp carries
// `n_threads` in `llama_context_params`. Two contexts in one process (`paratool up` runs a worker
// and a trainer) each keep their own budget: nothing here is set process-wide.
import Foundation
import Synchronization

/// How many threads a context's numeric kernels split their work over, and the pool that runs
/// them. A value: copies share the pool. Budgets of the same size share one pool, so two contexts
/// with the same budget take turns in their parallel sections instead of running twice as many
/// spinning threads as there are cores.
public struct ComputeThreads: Sendable, Equatable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// Threads that take parts of a split call, the calling thread included (≥ 1).
    public let count: Int
    /// The pool of `count` threads (the caller counts as one).
    public let pool: WorkerPool

    /// A budget of `count` threads (at least 1).
    public init(_ count: Int) {
        self.count = max(1, count)
        pool = WorkerPool.sized(self.count)
    }

    public init(integerLiteral value: Int) { self.init(value) }

    /// One thread: every call runs on the calling thread.
    public static let single = ComputeThreads(1)

    /// The machine's active cores (the default budget of a context nobody configured).
    public static var machine: ComputeThreads { ComputeThreads(ProcessInfo.processInfo.activeProcessorCount) }

    public static func == (a: ComputeThreads, b: ComputeThreads) -> Bool { a.count == b.count }

    public var description: String { "\(count)" }
}

extension WorkerPool {
    /// The pools of each size made so far: pool threads live as long as the process, so a context
    /// made per request (an engine, an encoder) reuses the pool of its size instead of starting
    /// threads of its own.
    private static let pools = Mutex<[Int: WorkerPool]>([:])

    /// The pool of `threads` threads.
    static func sized(_ threads: Int) -> WorkerPool {
        pools.withLock { pools in
            if let pool = pools[threads] { return pool }
            let pool = WorkerPool(threads: threads)
            pools[threads] = pool
            return pool
        }
    }
}
