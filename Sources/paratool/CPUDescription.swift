// CPUDescription: the line every benchmark prints beside its figures — the CPU's model and the
// vector features the kernels choose between (machines here differ: some have AVX-512 and VNNI,
// some only AVX2 + FMA + F16C).
import Tensor

enum CPUDescription {
    /// The features the kernels' variants depend on, in a fixed order.
    static let vectorFeatures = ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx2", "fma", "f16c"]

    /// `CPU: <model>; vector features: <list>`.
    static var line: String {
        let flags = BLASCore.cpuFlags
        let present = vectorFeatures.filter(flags.contains)
        return "CPU: \(BLASCore.cpuModel); vector features: \(present.isEmpty ? "none of AVX2/AVX-512/FMA" : present.joined(separator: " "))"
    }
}
