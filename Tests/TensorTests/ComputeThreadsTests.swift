// Thread budgets (ComputeThreads): the products split over a budget against scalar loops, a
// budget's pool runs every part on as many threads as it counts, and OpenBLAS's own thread count
// stays at 1 whatever budgets the products run under.
import Foundation
import Synchronization
import XCTest
@testable import Tensor

final class ComputeThreadsTests: XCTestCase {
    func random(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2000) / 1000 - 1
        }
    }

    /// `a · bᵀ` and `a · b` split over 1, 2 and 3 threads (widths not multiples of 16, plus beta)
    /// against scalar loops.
    func testSplitProductsMatchScalarLoops() {
        let m = 37, k = 29, n = 203
        let a = random(m * k, seed: 1), b = random(n * k, seed: 2), start = random(m * n, seed: 3)
        var abt = [Float](repeating: 0, count: m * n), ab = abt
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0, t: Float = 0
                for p in 0..<k { s += a[i * k + p] * b[j * k + p]; t += a[i * k + p] * b[p * n + j] }
                abt[i * n + j] = s + 0.5 * start[i * n + j]
                ab[i * n + j] = t + 0.5 * start[i * n + j]
            }
        }
        for threads: ComputeThreads in [1, 2, 3] {
            let c = MatrixView(FloatBuffer(start), rows: m, cols: n)
            BLAS.gemmABt(MatrixView(FloatBuffer(a), rows: m, cols: k), MatrixView(FloatBuffer(b), rows: n, cols: k), into: c,
                         beta: 0.5, threads: threads)
            XCTAssertLessThanOrEqual(zip(c.toArray(), abt).map { abs($0 - $1) }.max()!, 1e-4, "a·bᵀ on \(threads)")
            let d = MatrixView(FloatBuffer(start), rows: m, cols: n)
            BLAS.gemmAB(MatrixView(FloatBuffer(a), rows: m, cols: k), MatrixView(FloatBuffer(b), rows: k, cols: n), into: d,
                        beta: 0.5, threads: threads)
            XCTAssertLessThanOrEqual(zip(d.toArray(), ab).map { abs($0 - $1) }.max()!, 1e-4, "a·b on \(threads)")
        }
        XCTAssertEqual(OpenBLASThreads.current, 1, "the split leaves OpenBLAS on the calling thread")
    }

    /// A budget of n runs each split call on n distinct threads, the caller among them.
    func testBudgetRunsOnItsOwnCountOfThreads() {
        for n in [1, 2, 3] {
            let budget = ComputeThreads(n)
            XCTAssertEqual(budget.count, n)
            XCTAssertEqual(budget.pool.threadCount, n)
            let seen = Mutex<Set<pthread_t>>([])
            let caller = pthread_self()
            budget.pool.run { _ in
                let me = pthread_self()
                seen.withLock { _ = $0.insert(me) }
            }
            let threads = seen.withLock { $0 }
            XCTAssertEqual(threads.count, n)
            XCTAssertTrue(threads.contains(caller))
        }
        XCTAssertEqual(ComputeThreads(0).count, 1, "a budget has at least the calling thread")
    }
}
