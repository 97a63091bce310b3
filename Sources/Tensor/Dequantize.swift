// Dequantize: the GGML tensor types (ids as in llama.cpp's ggml.h), their block layouts, and the
// kernels that expand F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/Q4_K/Q5_K/Q6_K data from a mapped file
// into float32 (the 5-bit and K-quant formats through the C block kernels).
// Also the scalar and bulk half/bfloat16 conversions the safetensors and GGUF loaders share.
import CKernels
import Foundation

/// A GGML tensor element type, with the numeric ids GGUF files store.
///
/// Every standard id is listed so a file can be described even when its tensors cannot be
/// expanded; `isDequantizable` says which ones `Dequantize.into` handles
/// (`GGMLType.dequantizableNames`).
public enum GGMLType: UInt32, Sendable, CaseIterable {
    /// IEEE float32 and half precision (supported).
    case f32 = 0, f16 = 1
    /// 32-value blocks of 4-bit values with a half scale (Q4_0) or scale and minimum (Q4_1)
    /// (supported).
    case q4_0 = 2, q4_1 = 3
    /// 32-value blocks of 5-bit values with a half scale (Q5_0) or scale and minimum (Q5_1)
    /// (supported).
    case q5_0 = 6, q5_1 = 7
    /// 32-value blocks of signed bytes with a half scale (Q8_0, supported; Q8_1 is not).
    case q8_0 = 8, q8_1 = 9
    /// 256-value "k-quant" super-blocks (Q4_K, Q5_K and Q6_K supported; Q2_K, Q3_K, Q8_K not).
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    /// Importance-matrix quantisations (not supported).
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21
    /// Importance-matrix quantisations (not supported).
    case iq2_s = 22, iq4_xs = 23
    /// Plain integers and float64 (not supported).
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28
    /// Importance-matrix 1.75-bit quantisation (not supported).
    case iq1_m = 29
    /// bfloat16: the top 16 bits of a float32 (supported).
    case bf16 = 30
    /// Ternary quantisations (not supported).
    case tq1_0 = 34, tq2_0 = 35
    /// Microscaling and other recent 4-bit and 1-bit formats (not supported).
    case mxfp4 = 39, nvfp4 = 40, q1_0 = 41

    /// Elements per quantisation block (1 for plain element types).
    public var blockSize: Int { layout.block }

    /// Bytes one block occupies in the file.
    public var bytesPerBlock: Int { layout.bytes }

    /// Whether `Dequantize.into` can expand this type to float32.
    public var isDequantizable: Bool {
        switch self {
        case .f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q5_K, .q6_K: return true
        default: return false
        }
    }

    /// The dequantisable types' names, for error messages ("F32, F16, …, Q6_K").
    public static var dequantizableNames: String {
        allCases.filter(\.isDequantizable).map(\.name).joined(separator: ", ")
    }

    /// The llama.cpp spelling, e.g. `Q4_1`, `BF16`, `IQ2_XXS`.
    public var name: String { String(describing: self).uppercased() }

    /// Bytes needed for `elements` values of this type.
    ///
    /// Throws when `elements` is negative or not a whole number of blocks, or when the size
    /// overflows `Int`.
    public func byteCount(elements: Int) throws -> Int {
        guard elements >= 0, elements % blockSize == 0 else {
            throw DequantizeError.notWholeBlocks(type: self, elements: elements)
        }
        let (bytes, overflow) = (elements / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        guard !overflow else { throw DequantizeError.sizeOverflow(type: self, elements: elements) }
        return bytes
    }

    private var layout: (block: Int, bytes: Int) {
        let qkK = 256
        switch self {
        case .f32: return (1, 4)
        case .f16, .bf16: return (1, 2)
        case .q4_0: return (32, 2 + 16)
        case .q4_1: return (32, 2 + 2 + 16)
        case .q5_0: return (32, 2 + 4 + 16)
        case .q5_1: return (32, 2 + 2 + 4 + 16)
        case .q8_0: return (32, 2 + 32)
        case .q8_1: return (32, 4 + 4 + 32)
        case .q2_K: return (qkK, 2 + 2 + qkK / 16 + qkK / 4)
        case .q3_K: return (qkK, 2 + qkK / 4 + qkK / 8 + 12)
        case .q4_K: return (qkK, 2 + 2 + qkK / 2 + 12)
        case .q5_K: return (qkK, 2 + 2 + qkK / 2 + qkK / 8 + 12)
        case .q6_K: return (qkK, 2 + qkK / 2 + qkK / 4 + qkK / 16)
        case .q8_K: return (qkK, 4 + qkK + qkK / 8)
        case .iq2_xxs: return (qkK, 2 + qkK / 4)
        case .iq2_xs: return (qkK, 2 + qkK / 4 + qkK / 32)
        case .iq3_xxs: return (qkK, 2 + qkK / 4 + qkK / 8)
        case .iq1_s: return (qkK, 2 + qkK / 8 + qkK / 16)
        case .iq4_nl: return (32, 2 + 16)
        case .iq3_s: return (qkK, 2 + qkK / 4 + qkK / 8 + qkK / 32 + 4)
        case .iq2_s: return (qkK, 2 + qkK / 4 + qkK / 16)
        case .iq4_xs: return (qkK, 2 + 2 + qkK / 2 + qkK / 64)
        case .i8: return (1, 1)
        case .i16: return (1, 2)
        case .i32: return (1, 4)
        case .i64, .f64: return (1, 8)
        case .iq1_m: return (qkK, qkK / 8 + qkK / 16 + qkK / 32)
        case .tq1_0: return (qkK, 2 + 4 * 13)
        case .tq2_0: return (qkK, 2 + 64)
        case .mxfp4: return (32, 1 + 16)
        case .nvfp4: return (64, 4 + 32)
        case .q1_0: return (128, 2 + 16)
        }
    }
}

/// Errors raised by the dequantisation kernels.
public enum DequantizeError: Error, CustomStringConvertible, Equatable {
    /// The type has no float32 expansion here.
    case unsupportedType(GGMLType)
    /// `elements` is negative or not a multiple of the type's block size.
    case notWholeBlocks(type: GGMLType, elements: Int)
    /// The byte size of the data does not fit in `Int`.
    case sizeOverflow(type: GGMLType, elements: Int)
    /// The destination range `at..<at+count` does not lie inside the buffer.
    case destinationOutOfRange(at: Int, count: Int, bufferCount: Int)
    /// The destination is a read-only mapped buffer.
    case destinationReadOnly

    public var description: String {
        switch self {
        case .unsupportedType(let t):
            return "cannot dequantise GGML type \(t.name) (id \(t.rawValue)): supported are \(GGMLType.dequantizableNames)"
        case .notWholeBlocks(let t, let n):
            return "\(n) elements is not a whole number of \(t.name) blocks (\(t.blockSize) elements each)"
        case .sizeOverflow(let t, let n):
            return "byte size of \(n) \(t.name) elements overflows"
        case .destinationOutOfRange(let at, let count, let size):
            return "destination range \(at)..<\(at + count) lies outside a buffer of \(size) floats"
        case .destinationReadOnly:
            return "cannot dequantise into a read-only mapped buffer"
        }
    }
}

/// Kernels that expand stored tensor data into float32 `FloatBuffer`s.
public enum Dequantize {
    /// Expands `count` elements of `type` stored at byte `offset` of `file` into
    /// `dst[at ..< at + count]`.
    ///
    /// Throws for types other than `GGMLType.dequantizableNames` (naming the type), for a
    /// count that is not a whole number of blocks, for a source range past the end of the file,
    /// and for a destination range outside `dst`.
    public static func into(
        _ dst: FloatBuffer, at: Int, from file: MappedFile, offset: Int, type: GGMLType, count: Int
    ) throws {
        guard type.isDequantizable else { throw DequantizeError.unsupportedType(type) }
        let length = try type.byteCount(elements: count)
        let out = try destination(dst, at: at, count: count)
        let src = try file.rawBytes(offset: offset, length: length)
        guard count > 0, let p = src.baseAddress else { return }
        switch type {
        case .f32: UnsafeMutableRawPointer(out).copyMemory(from: p, byteCount: length)
        case .f16: halfRun(p, out, count)
        case .bf16: bfloat16Run(p, out, count)
        case .q8_0: q8_0Run(p, out, count / 32)
        case .q4_0: q4_0Run(p, out, count / 32)
        case .q4_1: q4_1Run(p, out, count / 32)
        case .q5_0, .q5_1, .q4_K, .q5_K, .q6_K:
            // One row of `count` values through the C kernels (portable or AVX2, whichever runs here).
            _ = pt_block_dequantize_rows(-1, Int32(type.rawValue), p, length, count, 0, 1, out, count)
        default: throw DequantizeError.unsupportedType(type)
        }
    }

    /// Converts `count` little-endian IEEE half-precision values at byte `offset` of `file`
    /// into `dst[at ..< at + count]`.
    public static func halfToFloat(
        _ dst: FloatBuffer, at: Int, from file: MappedFile, offset: Int, count: Int
    ) throws {
        try into(dst, at: at, from: file, offset: offset, type: .f16, count: count)
    }

    /// Converts `count` little-endian bfloat16 values at byte `offset` of `file` into
    /// `dst[at ..< at + count]`.
    public static func bfloat16ToFloat(
        _ dst: FloatBuffer, at: Int, from file: MappedFile, offset: Int, count: Int
    ) throws {
        try into(dst, at: at, from: file, offset: offset, type: .bf16, count: count)
    }

    /// The float32 value of an IEEE 754 half-precision bit pattern (exact; subnormals, signed
    /// zeros, infinities and NaN payloads are kept).
    @inline(__always)
    public static func halfToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: halfBitsToFloatBits(bits))
    }

    /// The float32 value of a bfloat16 bit pattern (the top half of a float32; exact).
    @inline(__always)
    public static func bfloat16ToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    // MARK: - Kernels

    /// Half → float bits without a lookup table or F16C: normal numbers rebias the exponent,
    /// subnormals are an exact integer scaled by 2^-24, and Inf/NaN keep their payload.
    @inline(__always)
    static func halfBitsToFloatBits(_ h: UInt16) -> UInt32 {
        let sign = UInt32(h & 0x8000) << 16
        let magnitude = UInt32(h & 0x7FFF)
        let exponent = magnitude & 0x7C00
        let normal = (magnitude << 13) &+ (112 << 23)
        let special = (magnitude << 13) | 0x7F80_0000
        let tiny = (Float(magnitude) * 0x1p-24).bitPattern
        let bits = exponent == 0x7C00 ? special : (exponent == 0 ? tiny : normal)
        return sign | bits
    }

    private static func destination(_ dst: FloatBuffer, at: Int, count: Int) throws -> UnsafeMutablePointer<Float> {
        guard !dst.isMapped else { throw DequantizeError.destinationReadOnly }
        guard at >= 0, count >= 0, at <= dst.count, count <= dst.count - at else {
            throw DequantizeError.destinationOutOfRange(at: at, count: count, bufferCount: dst.count)
        }
        return dst.base + at
    }

    @inline(__always)
    private static func loadHalf(_ p: UnsafeRawPointer, _ byteOffset: Int) -> Float {
        halfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: byteOffset, as: UInt16.self)))
    }

    private static func halfRun(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { out[i] = loadHalf(p, 2 * i) }
    }

    private static func bfloat16Run(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n {
            out[i] = bfloat16ToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
    }

    /// Q8_0: per 32 values, a half scale `d` then 32 signed bytes; x = d·q.
    private static func q8_0Run(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let block = p + b * 34
            let d = loadHalf(block, 0)
            let qs = (block + 2).assumingMemoryBound(to: Int8.self)
            let o = out + b * 32
            for j in 0..<32 { o[j] = Float(qs[j]) * d }
        }
    }

    /// Q4_0: per 32 values, a half scale `d` then 16 bytes; the low nibbles are values 0..<16,
    /// the high nibbles 16..<32; x = d·(q − 8).
    private static func q4_0Run(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let block = p + b * 18
            let d = loadHalf(block, 0)
            let qs = (block + 2).assumingMemoryBound(to: UInt8.self)
            let o = out + b * 32
            for j in 0..<16 {
                let q = qs[j]
                o[j] = Float(Int32(q & 0x0F) - 8) * d
                o[j + 16] = Float(Int32(q >> 4) - 8) * d
            }
        }
    }

    /// Q4_1: per 32 values, a half scale `d` and half minimum `m`, then 16 bytes of nibbles laid
    /// out as in Q4_0; x = d·q + m.
    private static func q4_1Run(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let block = p + b * 20
            let d = loadHalf(block, 0)
            let m = loadHalf(block, 2)
            let qs = (block + 4).assumingMemoryBound(to: UInt8.self)
            let o = out + b * 32
            for j in 0..<16 {
                let q = qs[j]
                o[j] = Float(q & 0x0F) * d + m
                o[j + 16] = Float(q >> 4) * d + m
            }
        }
    }
}
