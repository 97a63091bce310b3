// ProcessMemory and MemoryBandwidth: the peak resident set of this process, giving freed memory
// back to the system, and a measured memory-copy bandwidth (the floor against which decode, a
// memory-bound loop, is judged).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernels
import Dispatch
import Foundation

#if os(Linux)
private let RUSAGE_SELF_ID = __rusage_who_t(RUSAGE_SELF.rawValue)
#else
private let RUSAGE_SELF_ID = RUSAGE_SELF
#endif

/// Memory figures of the running process.
public enum ProcessMemory {
    /// Returns the memory the allocator holds free back to the system. glibc keeps freed blocks
    /// in its heaps (and raises its mmap threshold after large frees, so later large buffers come
    /// from the heaps too): a server's KV caches and scratch, freed after a batch, would otherwise
    /// stay resident at the size of its largest batch. A no-op elsewhere.
    public static func returnFreedMemory() {
        _ = pt_return_freed_memory()
    }

    /// `MALLOC_ARENA_MAX=1` on glibc (nil elsewhere), for the long-running services, started with
    /// it through `ProcessEnvironment.restartIfMissing`. glibc gives threads heaps of their own (up
    /// to 8 per core) and `malloc_trim` cannot return a heap's pages while a few live blocks sit in
    /// it: a second worker that served 16 concurrent long prompts kept one to three fully dirty
    /// 64 MB heaps (215-218 MB private 4 s after its last answer, 160-170 MB with one heap). The
    /// hot paths reuse their buffers, so the one heap's lock did not move the latency. glibc reads
    /// the variable at its first allocation, before `main`, so `mallopt` from `main` comes too late
    /// for heaps the runtime's threads already hold.
    public static var oneHeapSetting: ProcessEnvironment.Setting? {
        #if canImport(Glibc)
        return ProcessEnvironment.Setting(name: "MALLOC_ARENA_MAX", value: "1")
        #else
        return nil
        #endif
    }

    /// Peak resident set size in bytes: VmHWM of /proc/self/status on Linux (getrusage's
    /// ru_maxrss is inherited across fork+exec, so it can report a parent's size), getrusage
    /// elsewhere.
    public static var peakResidentBytes: Int {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kb = Int(line.split(separator: " ").dropFirst().first ?? "") {
            return kb * 1024
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF_ID, &usage)
        #if os(Linux)
        return Int(usage.ru_maxrss) * 1024
        #else
        return Int(usage.ru_maxrss)
        #endif
    }
}

extension ProcessMemory {
    /// Starts `peakResidentBytes` again from the current resident size (Linux: "5" written to
    /// /proc/self/clear_refs), so a benchmark's setup does not count in its peak; a no-op where
    /// unsupported.
    public static func resetPeak() {
        try? Data("5".utf8).write(to: URL(fileURLWithPath: "/proc/self/clear_refs"))
    }

    /// The resident memory of this process split by what another process mapping the same
    /// files would share: `fileBacked` (mapped files such as the model, served from the page
    /// cache once for every process) and `anonymous` (heap and private copies: what each further
    /// process adds), in bytes, from /proc/self/smaps_rollup; nil where unavailable.
    public static var residentSplit: (resident: Int, fileBacked: Int, anonymous: Int)? {
        guard let text = try? String(contentsOfFile: "/proc/self/smaps_rollup", encoding: .utf8) else { return nil }
        var fields = [String: Int]()
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, parts[0].hasSuffix(":"), let kb = Int(parts[1]) { fields[String(parts[0].dropLast())] = kb * 1024 }
        }
        guard let rss = fields["Rss"], let anonymous = fields["Anonymous"] else { return nil }
        return (rss, rss - anonymous, anonymous)
    }
}

/// Measures how fast this machine streams memory.
public enum MemoryBandwidth {
    /// Bytes per second moved by copying a `megabytes` buffer, best of 5, split over `threads`.
    /// Counts the bytes read (the figure that bounds a read-dominated loop like decode).
    public static func measureCopy(megabytes: Int, threads: Int) -> Double {
        let count = megabytes * 1_048_576 / 4
        let src = FloatBuffer(count: count), dst = FloatBuffer(count: count)
        for i in stride(from: 0, to: count, by: 1024) { src[i] = Float(i) }
        let parts = max(1, threads)
        let chunk = (count + parts - 1) / parts
        let s = UInt(bitPattern: src.base), d = UInt(bitPattern: dst.base)
        defer { withExtendedLifetime((src, dst)) {} }
        var best = Double.infinity
        for _ in 0..<5 {
            let t = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let start = p * chunk, n = min(count, start + chunk) - start
                if n > 0 {
                    memcpy(UnsafeMutableRawPointer(bitPattern: d)! + start * 4,
                           UnsafeRawPointer(bitPattern: s)! + start * 4, n * 4)
                }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
        }
        return Double(count * 4) / best
    }
}
