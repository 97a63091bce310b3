// BLASCore: which OpenBLAS kernel set is in use, and the fix for OpenBLAS builds that do not
// recognise a newer CPU. Debian's OpenBLAS 0.3.21 falls back to its generic "Prescott" (SSE3)
// kernels on CPUs it cannot name, which made prefill sgemm 3x slower on this project's machines
// than the AVX-512 ("SkylakeX") kernels the CPU supports.
import COpenBLAS
import Foundation

/// The OpenBLAS kernel set ("core") of this process.
public enum BLASCore {
    /// The core OpenBLAS selected, e.g. "SkylakeX", "Haswell", "Prescott".
    public static var name: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// Generic kernel sets OpenBLAS uses when it does not recognise the CPU.
    static let genericCores: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom",
                                            "katmai", "coppermine", "northwood", "banias", "sandybridge"]

    /// AVX2 kernel sets: OpenBLAS 0.3.21 names AMD's AVX-512 CPUs (Zen 4 and 5) "Haswell" or
    /// "Zen", whose sgemm is 1.3-1.6x slower there than the AVX-512 set (measured with
    /// `bench runtime` prefill on an AMD EPYC with AVX-512, one thread).
    static let avx2Cores: Set<String> = ["haswell", "zen"]

    /// The core this CPU supports better than `current`: when OpenBLAS fell back to a generic
    /// one, or chose an AVX2 set on a CPU with AVX-512.
    public static func betterCore(current: String, cpuFlags: Set<String>) -> String? {
        let hasAVX512 = cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"])
        if avx2Cores.contains(current.lowercased()) { return hasAVX512 ? "SkylakeX" : nil }
        guard genericCores.contains(current.lowercased()) else { return nil }
        if hasAVX512 { return "SkylakeX" }
        if cpuFlags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// The CPU's model name from /proc/cpuinfo ("unknown" where unavailable).
    public static var cpuModel: String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
              let colon = line.firstIndex(of: ":") else { return "unknown" }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }

    /// CPU feature flags from /proc/cpuinfo (empty where unavailable).
    public static var cpuFlags: Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// The `OPENBLAS_CORETYPE` setting this process should start with, or nil. OpenBLAS reads the
    /// variable only when it is loaded, before `main`; when it chose a generic core on a CPU with
    /// AVX2 or AVX-512, or an AVX2 core on a CPU with AVX-512, this is the better core, for
    /// `ProcessEnvironment.restartIfMissing` (which applies it only when the variable is unset:
    /// set `OPENBLAS_CORETYPE` yourself to choose, or to keep what OpenBLAS picked).
    public static var matchingKernelsSetting: ProcessEnvironment.Setting? {
        #if os(Linux)
        guard let better = betterCore(current: name, cpuFlags: cpuFlags) else { return nil }
        return ProcessEnvironment.Setting(name: "OPENBLAS_CORETYPE", value: better)
        #else
        return nil
        #endif
    }
}
