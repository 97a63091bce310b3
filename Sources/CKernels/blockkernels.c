// Kernels on weights in GGML block formats (see blockkernels.h): decode products against 8-bit
// activation blocks, dequantisation of row ranges for the sgemm tiles, and load-time quantisers.
// Block layouts (32 values each): Q4_0 = half d, 16 bytes of nibbles (low nibbles values 0..15,
// high nibbles 16..31), x = d·(q − 8); Q4_1 = half d, half m, nibbles as Q4_0, x = d·q + m;
// Q8_0 = half d, 32 signed bytes, x = d·q. The 5-bit and K-quant layouts are described where their
// blocks are unpacked (MARK: 5-bit and K-quant blocks).
#include "blockkernels.h"
#include "ckernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define QK 32
#define MAXK 16

// MARK: - Scalar helpers

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, mag = h & 0x7FFF, exp = mag & 0x7C00, bits;
    if (exp == 0x7C00) {
        bits = (mag << 13) | 0x7F800000u;
    } else if (exp == 0) {
        float f = (float)mag * 0x1p-24f;
        memcpy(&bits, &f, 4);
    } else {
        bits = (mag << 13) + (112u << 23);
    }
    bits |= sign;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/// float32 → IEEE half, round to nearest even (overflow to infinity, NaN kept a NaN).
static inline uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, abs = x & 0x7FFFFFFFu;
    if (abs > 0x7F800000u) return (uint16_t)(sign | 0x7E00);
    if (abs >= 0x477FF000u) return (uint16_t)(sign | 0x7C00);  // rounds to ≥ 65520: infinity
    if (abs < 0x38800000u) {                                    // below 2^-14: subnormal half
        float a;
        memcpy(&a, &abs, 4);
        return (uint16_t)(sign | (uint32_t)lrintf(a * 0x1p24f));
    }
    uint32_t mant = abs + 0xFFFu + ((abs >> 13) & 1);           // round to nearest even at bit 13
    return (uint16_t)(sign | ((mant - (112u << 23)) >> 13));
}

static inline uint16_t load_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline float load_half(const uint8_t *p) { return half_to_float(load_u16(p)); }
static inline float bf16_to_float(uint16_t h) { uint32_t b = (uint32_t)h << 16; float f; memcpy(&f, &b, 4); return f; }

static int block_bytes(int type) {
    switch (type) {
    case PT_BLOCK_Q4_0: return 18;
    case PT_BLOCK_Q4_1: return 20;
    case PT_BLOCK_Q8_0: return 34;
    case PT_BLOCK_Q5_0: return 22;
    case PT_BLOCK_Q5_1: return 24;
    case PT_BLOCK_Q4_K: return 144;
    case PT_BLOCK_Q5_K: return 176;
    case PT_BLOCK_Q6_K: return 210;
    default: return 0;
    }
}

// MARK: - Activation quantisation

void pt_quantize_rows_q8(const float *x, size_t x_stride, size_t k, size_t n, int8_t *q, float *scales, float *sums) {
    size_t nb = n / QK;
    for (size_t j = 0; j < k; j++) {
        const float *xr = x + j * x_stride;
        for (size_t b = 0; b < nb; b++) {
            const float *v = xr + b * QK;
            float amax = 0;
            for (int i = 0; i < QK; i++) { float a = fabsf(v[i]); amax = a > amax ? a : amax; }
            float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
            int8_t *o = q + j * n + b * QK;
            int sum = 0;
            for (int i = 0; i < QK; i++) { int t = (int)lrintf(v[i] * id); o[i] = (int8_t)t; sum += t; }
            scales[j * nb + b] = d;
            sums[j * nb + b] = d * (float)sum;
        }
    }
}

// MARK: - Portable kernels

static void matvec_blocks_portable(int type, const uint8_t *w, size_t rb, size_t n, const int8_t *q, const float *sc,
                                   const float *su, size_t k, float *y, size_t ys, size_t start, size_t end, int acc) {
    size_t nb = n / QK;
    int bb = block_bytes(type);
    for (size_t r = start; r < end; r++) {
        const uint8_t *row = w + r * rb;
        for (size_t j = 0; j < k; j++) {
            const int8_t *xq = q + j * n;
            float s = 0;
            for (size_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + b * bb;
                const int8_t *xb = xq + b * QK;
                float d = load_half(blk), dx = sc[j * nb + b];
                int dot = 0;
                if (type == PT_BLOCK_Q8_0) {
                    const int8_t *wq = (const int8_t *)(blk + 2);
                    for (int i = 0; i < QK; i++) dot += wq[i] * xb[i];
                    s += d * dx * (float)dot;
                } else {
                    const uint8_t *qs = blk + (type == PT_BLOCK_Q4_1 ? 4 : 2);
                    for (int i = 0; i < 16; i++) dot += (qs[i] & 0x0F) * xb[i] + (qs[i] >> 4) * xb[i + 16];
                    s += d * dx * (float)dot;
                    s += type == PT_BLOCK_Q4_1 ? load_half(blk + 2) * su[j * nb + b] : -8.0f * d * su[j * nb + b];
                }
            }
            float *o = y + j * ys + r;
            *o = acc ? *o + s : s;
        }
    }
}

static void matvec_half_portable(int type, const uint8_t *w, size_t rb, size_t n, const float *x, size_t xs, size_t k,
                                 float *y, size_t ys, size_t start, size_t end, int acc) {
    for (size_t r = start; r < end; r++) {
        const uint8_t *row = w + r * rb;
        for (size_t j = 0; j < k; j++) {
            const float *xr = x + j * xs;
            float s = 0;
            for (size_t i = 0; i < n; i++) {
                uint16_t h = load_u16(row + 2 * i);
                s += (type == PT_BLOCK_F16 ? half_to_float(h) : bf16_to_float(h)) * xr[i];
            }
            float *o = y + j * ys + r;
            *o = acc ? *o + s : s;
        }
    }
}

static void dequantize_portable(int type, const uint8_t *w, size_t rb, size_t n, size_t start, size_t end, float *out, size_t os) {
    size_t nb = n / QK;
    int bb = block_bytes(type);
    for (size_t r = start; r < end; r++) {
        const uint8_t *row = w + r * rb;
        float *o = out + (r - start) * os;
        switch (type) {
        case PT_BLOCK_F32: memcpy(o, row, n * 4); break;
        case PT_BLOCK_F16: for (size_t i = 0; i < n; i++) o[i] = half_to_float(load_u16(row + 2 * i)); break;
        case PT_BLOCK_BF16: for (size_t i = 0; i < n; i++) o[i] = bf16_to_float(load_u16(row + 2 * i)); break;
        default:
            for (size_t b = 0; b < nb; b++) {
                const uint8_t *blk = row + b * bb;
                float d = load_half(blk), *ob = o + b * QK;
                if (type == PT_BLOCK_Q8_0) {
                    const int8_t *wq = (const int8_t *)(blk + 2);
                    for (int i = 0; i < QK; i++) ob[i] = (float)wq[i] * d;
                } else if (type == PT_BLOCK_Q4_0) {
                    for (int i = 0; i < 16; i++) {
                        ob[i] = (float)((blk[2 + i] & 0x0F) - 8) * d;
                        ob[i + 16] = (float)((blk[2 + i] >> 4) - 8) * d;
                    }
                } else {
                    float m = load_half(blk + 2);
                    for (int i = 0; i < 16; i++) {
                        ob[i] = (float)(blk[4 + i] & 0x0F) * d + m;
                        ob[i + 16] = (float)(blk[4 + i] >> 4) * d + m;
                    }
                }
            }
        }
    }
}

// MARK: - 5-bit and K-quant blocks
//
// Layouts (llama.cpp's ggml-common.h; every value x = scale·v + offset per group of 16):
// Q5_0 (32 values, 22 bytes) = half d, 32 bits qh, 16 bytes qs: value i's low four bits are qs's low
//   nibbles (i < 16) or high nibbles (i ≥ 16), its fifth bit is bit i of qh; x = d·(q − 16).
// Q5_1 (32 values, 24 bytes) = half d, half m, qh, qs as Q5_0; x = d·q + m.
// Q4_K (256 values, 144 bytes) = half d, half dmin, 12 bytes of eight 6-bit scales and minimums,
//   128 bytes qs: each 32 bytes of qs hold two sub-blocks of 32 (low nibbles, then high nibbles);
//   sub-block j: x = d·sc_j·q − dmin·m_j.
// Q5_K (256 values, 176 bytes) = Q4_K's d, dmin, scales, then 32 bytes qh (bit j of qh[l] is the
//   fifth bit of value l of sub-block j), then Q4_K's qs.
// Q6_K (256 values, 210 bytes) = 128 bytes ql, 64 bytes qh, 16 signed byte scales, half d: two
//   halves of 128, each from 64 bytes of ql (l and l+32: low nibbles for values l and 32+l, high
//   nibbles for 64+l and 96+l) and 32 bytes of qh (bit pairs 0-1, 2-3, 4-5, 6-7 for the four);
//   group g of 16: x = d·scale_g·(q − 32).

static inline int is_kquant(int type) { return type == PT_BLOCK_Q4_K || type == PT_BLOCK_Q5_K || type == PT_BLOCK_Q6_K; }
/// The formats unpacked through `unpack_block` (5-bit values, or scales per sub-block).
static inline int is_unpacked(int type) { return is_kquant(type) || type == PT_BLOCK_Q5_0 || type == PT_BLOCK_Q5_1; }
static inline size_t block_values(int type) { return is_kquant(type) ? 256 : QK; }

/// The 6-bit scale and minimum of sub-block j (0..7) from a Q4_K/Q5_K block's 12 packed bytes:
/// bytes 0-3 scales 0-3 (low six bits), bytes 4-7 minimums 0-3; sub-blocks 4-7 take their low
/// four bits from bytes 8-11 and their top two from the spare bits of bytes 0-7.
static inline void kscale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/// One block as signed values v (32 or 256) with per group of 16 a scale and an offset.
static void unpack_block(int type, const uint8_t *b, int8_t *v, float *scale, float *offset) {
    if (type == PT_BLOCK_Q5_0 || type == PT_BLOCK_Q5_1) {
        int q51 = type == PT_BLOCK_Q5_1, bias = q51 ? 0 : 16;
        uint32_t qh;
        memcpy(&qh, b + (q51 ? 4 : 2), 4);
        const uint8_t *qs = b + (q51 ? 8 : 6);
        for (int i = 0; i < 16; i++) {
            v[i] = (int8_t)(((qs[i] & 0x0F) | (((qh >> i) & 1) << 4)) - bias);
            v[i + 16] = (int8_t)(((qs[i] >> 4) | (((qh >> (i + 16)) & 1) << 4)) - bias);
        }
        scale[0] = scale[1] = load_half(b);
        offset[0] = offset[1] = q51 ? load_half(b + 2) : 0.0f;
    } else if (type == PT_BLOCK_Q4_K || type == PT_BLOCK_Q5_K) {
        int q5 = type == PT_BLOCK_Q5_K;
        float d = load_half(b), dmin = load_half(b + 2);
        const uint8_t *qh = b + 16, *qs = b + (q5 ? 48 : 16);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            kscale_min(b + 4, j, &sc, &m);
            for (int l = 0; l < 32; l++) {
                int q = (j & 1) ? qs[32 * (j / 2) + l] >> 4 : qs[32 * (j / 2) + l] & 0x0F;
                if (q5) q |= ((qh[l] >> j) & 1) << 4;
                v[32 * j + l] = (int8_t)q;
            }
            scale[2 * j] = scale[2 * j + 1] = d * (float)sc;
            offset[2 * j] = offset[2 * j + 1] = -(dmin * (float)m);
        }
    } else {
        const int8_t *sc = (const int8_t *)(b + 192);
        float d = load_half(b + 208);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            int8_t *o = v + 128 * h;
            for (int l = 0; l < 32; l++) {
                o[l] = (int8_t)(((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32);
                o[l + 32] = (int8_t)(((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32);
                o[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        for (int g = 0; g < 16; g++) {
            scale[g] = d * (float)sc[g];
            offset[g] = 0.0f;
        }
    }
}

static void dequantize_unpacked_portable(int type, const uint8_t *w, size_t rb, size_t n, size_t start, size_t end,
                                         float *out, size_t os) {
    const size_t per = block_values(type), bb = (size_t)block_bytes(type);
    int8_t v[256];
    float scale[16], offset[16];
    for (size_t r = start; r < end; r++) {
        const uint8_t *row = w + r * rb;
        float *o = out + (r - start) * os;
        for (size_t b = 0; b < n / per; b++) {
            unpack_block(type, row + b * bb, v, scale, offset);
            float *ob = o + b * per;
            for (size_t i = 0; i < per; i++) ob[i] = scale[i / 16] * (float)v[i] + offset[i / 16];
        }
    }
}

/// Decode products of the unpacked formats: per 32 activation values (scale dx), per group of 16
/// the integer sums Σv·q and Σq, x·w = dx·(scale·Σv·q + offset·Σq).
static void matvec_unpacked_portable(int type, const uint8_t *w, size_t rb, size_t n, const int8_t *q, const float *sc,
                                     size_t k, float *y, size_t ys, size_t start, size_t end, int acc) {
    const size_t per = block_values(type), bb = (size_t)block_bytes(type), nb = n / QK;
    int8_t v[256];
    float scale[16], offset[16];
    for (size_t r = start; r < end; r++) {
        const uint8_t *row = w + r * rb;
        float s[MAXK] = {0};
        for (size_t b = 0; b < n / per; b++) {
            unpack_block(type, row + b * bb, v, scale, offset);
            for (size_t j = 0; j < k; j++) {
                for (size_t c = 0; c < per / QK; c++) {
                    size_t a = b * (per / QK) + c;
                    const int8_t *xb = q + j * n + a * QK, *vb = v + c * QK;
                    int d0 = 0, d1 = 0, x0 = 0, x1 = 0;
                    for (int i = 0; i < 16; i++) {
                        d0 += vb[i] * xb[i];
                        x0 += xb[i];
                        d1 += vb[i + 16] * xb[i + 16];
                        x1 += xb[i + 16];
                    }
                    s[j] += sc[j * nb + a] * (scale[2 * c] * (float)d0 + scale[2 * c + 1] * (float)d1
                                              + offset[2 * c] * (float)x0 + offset[2 * c + 1] * (float)x1);
                }
            }
        }
        for (size_t j = 0; j < k; j++) {
            float *o = y + j * ys + r;
            *o = acc ? *o + s[j] : s[j];
        }
    }
}

// MARK: - x86 kernels

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TARGET_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

TARGET_AVX2 static inline __m256i unpack_nibbles(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/// The 32 bits of `qh` as bytes: 0x10 where the bit is set, else 0.
TARGET_AVX2 static inline __m256i fifth_bits(uint32_t qh) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), spread);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(0x10));
}

TARGET_AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

TARGET_AVX2 static inline __m256i dot_avx2(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

TARGET_VNNI static inline __m256i dot_vnni(__m256i u, __m256i s) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}

// One weight block of `TYPE` against the rows' blocks: `u` the weights as unsigned bytes (4-bit,
// or 5-bit for Q5_0/Q5_1 with the fifth bits from qh), `w8` the signed bytes (Q8_0, whose sign
// moves onto the activations), d and m its scale and minimum.
#define BLOCK_WEIGHTS(TYPE, blk, u, w8, d, m)                                                     \
    __m256i u, w8 = _mm256_setzero_si256();                                                       \
    float d = _cvtsh_ss(load_u16(blk)), m = 0;                                                   \
    if (TYPE == PT_BLOCK_Q8_0) {                                                                  \
        w8 = _mm256_loadu_si256((const __m256i *)(blk + 2));                                      \
        u = _mm256_sign_epi8(w8, w8);                                                             \
    } else if (TYPE == PT_BLOCK_Q5_0 || TYPE == PT_BLOCK_Q5_1) {                                  \
        uint32_t qh_;                                                                             \
        memcpy(&qh_, blk + (TYPE == PT_BLOCK_Q5_1 ? 4 : 2), 4);                                   \
        if (TYPE == PT_BLOCK_Q5_1) m = _cvtsh_ss(load_u16(blk + 2));                              \
        u = _mm256_or_si256(unpack_nibbles(blk + (TYPE == PT_BLOCK_Q5_1 ? 8 : 6)), fifth_bits(qh_)); \
    } else {                                                                                      \
        if (TYPE == PT_BLOCK_Q4_1) m = _cvtsh_ss(load_u16(blk + 2));                              \
        u = unpack_nibbles(blk + (TYPE == PT_BLOCK_Q4_1 ? 4 : 2));                                \
    }                                                                                             \
    (void)m

#define ACTIVATIONS(TYPE, xq, w8) \
    (TYPE == PT_BLOCK_Q8_0 ? _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(xq)), w8) \
                           : _mm256_loadu_si256((const __m256i *)(xq)))

// The offset term of a 4- or 5-bit block (−8·d·Σx for Q4_0, −16·d·Σx for Q5_0, m·Σx for Q4_1
// and Q5_1) given the row's d·Σq.
#define OFFSET(TYPE, d, m, sum)                                                                          \
    (TYPE == PT_BLOCK_Q4_1 || TYPE == PT_BLOCK_Q5_1 ? (m) * (sum) : TYPE == PT_BLOCK_Q4_0 ? -8.0f * (d) * (sum) \
     : TYPE == PT_BLOCK_Q5_0 ? -16.0f * (d) * (sum) : 0.0f)

// A decode kernel's outer loop, shared by the block formats: each weight row in [start, end)
// against the k input rows in groups of four (then three, two, one), by NAME##_group, which reads
// BLOCKS blocks of the row and the rows' 32-value activation blocks.
#define DEFINE_ROW_GROUPS(NAME, TARGET, TYPE, BLOCKS)                                                        \
    TARGET static void NAME(const uint8_t *w, size_t rb, size_t n, const int8_t *q, const float *sc,         \
                            const float *su, size_t k, float *y, size_t ys, size_t start, size_t end, int acc) { \
        const size_t nb = n / QK, bb = (size_t)block_bytes(TYPE), blocks = (BLOCKS);                         \
        for (size_t r = start; r < end; r++) {                                                               \
            const uint8_t *row = w + r * rb;                                                                 \
            size_t j = 0;                                                                                    \
            for (; j + 4 <= k; j += 4) NAME##_group(row, blocks, bb, n, q + j * n, sc + j * nb, su + j * nb, 4, y + j * ys + r, ys, acc); \
            switch (k - j) {                                                                                 \
            case 3: NAME##_group(row, blocks, bb, n, q + j * n, sc + j * nb, su + j * nb, 3, y + j * ys + r, ys, acc); break; \
            case 2: NAME##_group(row, blocks, bb, n, q + j * n, sc + j * nb, su + j * nb, 2, y + j * ys + r, ys, acc); break; \
            case 1: NAME##_group(row, blocks, bb, n, q + j * n, sc + j * nb, su + j * nb, 1, y + j * ys + r, ys, acc); break; \
            default: break;                                                                                  \
            }                                                                                                \
        }                                                                                                    \
    }

// A decode product of one block type and instruction set. Input rows go in groups of up to four
// that share each unpacked weight block, their accumulators in registers; every row's sum is
// formed in the same order whatever the group (even blocks into one accumulator, odd into
// another, the 4-bit offsets pairwise), so a row's result does not depend on the rows batched
// with it: batched decode gives the tokens one-by-one decode gives.
#define DEFINE_MATVEC(NAME, TARGET, DOT, TYPE)                                                               \
    TARGET static inline __attribute__((always_inline)) void NAME##_group(                                   \
        const uint8_t *row, size_t nb, size_t bb, size_t n, const int8_t *q, const float *sc, const float *su, \
        const int R, float *y, size_t ys, int acc) {                                                         \
        __m256 a0[4], a1[4];                                                                                 \
        float off[4];                                                                                        \
        for (int j = 0; j < R; j++) { a0[j] = _mm256_setzero_ps(); a1[j] = _mm256_setzero_ps(); off[j] = 0; } \
        size_t b = 0;                                                                                        \
        for (; b + 2 <= nb; b += 2) {                                                                        \
            const uint8_t *b0 = row + b * bb, *b1 = b0 + bb;                                                 \
            BLOCK_WEIGHTS(TYPE, b0, u0, s0, d0, m0);                                                         \
            BLOCK_WEIGHTS(TYPE, b1, u1, s1, d1, m1);                                                         \
            for (int j = 0; j < R; j++) {                                                                    \
                const int8_t *xq = q + j * n + b * QK;                                                       \
                const float *xsc = sc + j * nb + b, *xsu = su + j * nb + b;                                   \
                __m256i p0 = DOT(u0, ACTIVATIONS(TYPE, xq, s0));                                             \
                __m256i p1 = DOT(u1, ACTIVATIONS(TYPE, xq + QK, s1));                                        \
                a0[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d0 * xsc[0]), a0[j]);         \
                a1[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(d1 * xsc[1]), a1[j]);         \
                off[j] += OFFSET(TYPE, d0, m0, xsu[0]) + OFFSET(TYPE, d1, m1, xsu[1]);                       \
            }                                                                                                \
        }                                                                                                    \
        if (b < nb) {                                                                                        \
            const uint8_t *b0 = row + b * bb;                                                                \
            BLOCK_WEIGHTS(TYPE, b0, u0, s0, d0, m0);                                                         \
            for (int j = 0; j < R; j++) {                                                                    \
                __m256i p0 = DOT(u0, ACTIVATIONS(TYPE, q + j * n + b * QK, s0));                             \
                a0[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d0 * sc[j * nb + b]), a0[j]); \
                off[j] += OFFSET(TYPE, d0, m0, su[j * nb + b]);                                              \
            }                                                                                                \
        }                                                                                                    \
        for (int j = 0; j < R; j++) {                                                                        \
            float s = hsum8(_mm256_add_ps(a0[j], a1[j])) + off[j];                                           \
            float *o = y + (size_t)j * ys;                                                                   \
            *o = acc ? *o + s : s;                                                                           \
        }                                                                                                    \
    }                                                                                                        \
    DEFINE_ROW_GROUPS(NAME, TARGET, TYPE, n / QK)

DEFINE_MATVEC(q4_0_avx2, TARGET_AVX2, dot_avx2, PT_BLOCK_Q4_0)
DEFINE_MATVEC(q4_1_avx2, TARGET_AVX2, dot_avx2, PT_BLOCK_Q4_1)
DEFINE_MATVEC(q8_0_avx2, TARGET_AVX2, dot_avx2, PT_BLOCK_Q8_0)
// Q5_0/Q5_1 through the 32-value kernel above (two blocks per step): 8-15% faster for Q5_0 and
// 15-30% for Q5_1 than through the sub-block kernel of the K-quants below (1536 × 1536, k = 1).
DEFINE_MATVEC(q5_0_avx2, TARGET_AVX2, dot_avx2, PT_BLOCK_Q5_0)
DEFINE_MATVEC(q5_1_avx2, TARGET_AVX2, dot_avx2, PT_BLOCK_Q5_1)
DEFINE_MATVEC(q4_0_vnni, TARGET_VNNI, dot_vnni, PT_BLOCK_Q4_0)
DEFINE_MATVEC(q4_1_vnni, TARGET_VNNI, dot_vnni, PT_BLOCK_Q4_1)
DEFINE_MATVEC(q8_0_vnni, TARGET_VNNI, dot_vnni, PT_BLOCK_Q8_0)

/// Eight half or bfloat16 values as floats.
TARGET_AVX2 static inline __m256 load8_half(int type, const uint8_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    if (type == PT_BLOCK_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// One input row (decode of one sequence): four weight rows at a time, two accumulators each, so
// eight independent FMA chains hide the FMA latency that one accumulator per row waits on.
TARGET_AVX2 static size_t matvec_half_one_row_avx2(int type, const uint8_t *w, size_t rb, size_t n, const float *x,
                                                   float *y, size_t start, size_t end, int acc) {
    const size_t n16 = n & ~(size_t)15;
    size_t r = start;
    for (; r + 4 <= end; r += 4) {
        __m256 a[4], b[4];
        for (int j = 0; j < 4; j++) a[j] = b[j] = _mm256_setzero_ps();
        for (size_t i = 0; i < n16; i += 16) {
            const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
            for (int j = 0; j < 4; j++) {
                const uint8_t *row = w + (r + j) * rb + 2 * i;
                a[j] = _mm256_fmadd_ps(load8_half(type, row), x0, a[j]);
                b[j] = _mm256_fmadd_ps(load8_half(type, row + 16), x1, b[j]);
            }
        }
        for (int j = 0; j < 4; j++) {
            const uint8_t *row = w + (r + j) * rb;
            float s = hsum8(_mm256_add_ps(a[j], b[j]));
            for (size_t i = n16; i < n; i++) {
                uint16_t h = load_u16(row + 2 * i);
                s += (type == PT_BLOCK_F16 ? half_to_float(h) : bf16_to_float(h)) * x[i];
            }
            y[r + j] = acc ? y[r + j] + s : s;
        }
    }
    return r;
}

TARGET_AVX2 static void matvec_half_avx2(int type, const uint8_t *w, size_t rb, size_t n, const float *x, size_t xs, size_t k,
                                         float *y, size_t ys, size_t start, size_t end, int acc) {
    // The same summation order as the one-row path (two accumulators over alternate 8-value
    // halves of each 16, then the tail), so a row's result does not depend on its batch.
    const size_t n16 = n & ~(size_t)15;
    if (k == 1) start = matvec_half_one_row_avx2(type, w, rb, n, x, y, start, end, acc);
    for (size_t r = start; r < end; r++) {
        const uint8_t *row = w + r * rb;
        __m256 a[MAXK], b[MAXK];
        for (size_t j = 0; j < k; j++) a[j] = b[j] = _mm256_setzero_ps();
        for (size_t i = 0; i < n16; i += 16) {
            const __m256 w0 = load8_half(type, row + 2 * i), w1 = load8_half(type, row + 2 * i + 16);
            for (size_t j = 0; j < k; j++) {
                a[j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + j * xs + i), a[j]);
                b[j] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + j * xs + i + 8), b[j]);
            }
        }
        for (size_t j = 0; j < k; j++) {
            float s = hsum8(_mm256_add_ps(a[j], b[j]));
            for (size_t i = n16; i < n; i++) {
                uint16_t h = load_u16(row + 2 * i);
                s += (type == PT_BLOCK_F16 ? half_to_float(h) : bf16_to_float(h)) * x[j * xs + i];
            }
            float *o = y + j * ys + r;
            *o = acc ? *o + s : s;
        }
    }
}

/// Eight bytes as floats: unsigned (4-bit values) or signed (Q8_0).
TARGET_AVX2 static inline __m256 bytes8(__m128i v, int is_signed) {
    return _mm256_cvtepi32_ps(is_signed ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v));
}

TARGET_AVX2 static inline void half_row_avx2(int type, const uint8_t *row, size_t n, float *o) {
    for (size_t i = 0; i < n; i += 8) _mm256_storeu_ps(o + i, load8_half(type, row + 2 * i));
}

/// o[i] = q[i]·d + m for the 16 bytes of `v` (signed for Q8_0, else 4-bit values).
TARGET_AVX2 static inline void store16_avx2(float *o, __m128i v, int is_signed, float d, float m) {
    __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
    _mm256_storeu_ps(o, _mm256_fmadd_ps(bytes8(v, is_signed), vd, vm));
    _mm256_storeu_ps(o + 8, _mm256_fmadd_ps(bytes8(_mm_srli_si128(v, 8), is_signed), vd, vm));
}

#define TARGET_512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

TARGET_512 static inline void half_row_avx512(int type, const uint8_t *row, size_t n, float *o) {
    for (size_t i = 0; i < n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(row + 2 * i));
        __m512 v = type == PT_BLOCK_F16 ? _mm512_cvtph_ps(h) : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
        _mm512_storeu_ps(o + i, v);
    }
}

TARGET_512 static inline void store16_avx512(float *o, __m128i v, int is_signed, float d, float m) {
    __m512i q = is_signed ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v);
    _mm512_storeu_ps(o, _mm512_fmadd_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(d), _mm512_set1_ps(m)));
}

// Dequantisation of a row range with one instruction set: F16/BF16 rows `WIDTH` values at a time
// (other widths, and F32, by the `NARROWER` variant), block rows 16 values at a time. Every block
// is read as its scale d, its offset m (Q4_1's minimum, −8·d for Q4_0, −0 for Q8_0, so that q·d
// keeps its sign) and two halves of 16 values.
#define DEFINE_DEQUANTIZE(NAME, TARGET, WIDTH, NARROWER, HALF_ROW, STORE16)                                    \
    TARGET static void NAME(int type, const uint8_t *w, size_t rb, size_t n, size_t start, size_t end, float *out, size_t os) { \
        int half = type == PT_BLOCK_F16 || type == PT_BLOCK_BF16;                                              \
        if (type == PT_BLOCK_F32 || (half && n % WIDTH != 0)) {                                                \
            NARROWER(type, w, rb, n, start, end, out, os);                                                     \
            return;                                                                                            \
        }                                                                                                      \
        const size_t nb = n / QK, bb = (size_t)block_bytes(type);                                              \
        const __m128i m4 = _mm_set1_epi8(0x0F);                                                                \
        for (size_t r = start; r < end; r++) {                                                                 \
            const uint8_t *row = w + r * rb;                                                                   \
            float *o = out + (r - start) * os;                                                                 \
            if (half) { HALF_ROW(type, row, n, o); continue; }                                                 \
            for (size_t b = 0; b < nb; b++) {                                                                  \
                const uint8_t *blk = row + b * bb;                                                             \
                float d = _cvtsh_ss(load_u16(blk));                                                            \
                if (type == PT_BLOCK_Q8_0) {                                                                   \
                    STORE16(o + b * QK, _mm_loadu_si128((const __m128i *)(blk + 2)), 1, d, -0.0f);             \
                    STORE16(o + b * QK + 16, _mm_loadu_si128((const __m128i *)(blk + 18)), 1, d, -0.0f);       \
                    continue;                                                                                  \
                }                                                                                              \
                int q41 = type == PT_BLOCK_Q4_1;                                                               \
                float m = q41 ? _cvtsh_ss(load_u16(blk + 2)) : d * -8.0f;                                      \
                __m128i qs = _mm_loadu_si128((const __m128i *)(blk + (q41 ? 4 : 2)));                          \
                STORE16(o + b * QK, _mm_and_si128(qs, m4), 0, d, m);                                           \
                STORE16(o + b * QK + 16, _mm_and_si128(_mm_srli_epi16(qs, 4), m4), 0, d, m);                   \
            }                                                                                                  \
        }                                                                                                      \
    }

DEFINE_DEQUANTIZE(dequantize_avx2, TARGET_AVX2, 8, dequantize_portable, half_row_avx2, store16_avx2)
DEFINE_DEQUANTIZE(dequantize_avx512, TARGET_512, 16, dequantize_avx2, half_row_avx512, store16_avx512)

// MARK: x86 kernels of the 5-bit and K-quant formats

/// One sub-block of 32 values for the AVX2 kernels: `u` the values as unsigned bytes (Q6_K: the
/// signed v = q − 32), `s16` the integer scale of each half as eight 16-bit lanes (K-quants; 1
/// otherwise), `f` the float factor of the integer sum and `m` the offset per unit of the
/// activations' sum (dot = f·Σ s16·u·q + m·Σx); `d0`, `d1` the float scales of the two halves
/// for dequantisation (x = d·u + m).
typedef struct { __m256i u, s16; float f, m, d0, d1; } ksub;

/// Bytes of `v` whose bit `mask` is set as 0x10, else 0.
TARGET_AVX2 static inline __m256i masked_fifth(__m256i v, int mask) {
    __m256i m = _mm256_set1_epi8((char)mask);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, m), m), _mm256_set1_epi8(0x10));
}

/// Unpacks one block of `TYPE` into its sub-blocks; returns how many (1 or 8).
TARGET_AVX2 static inline __attribute__((always_inline)) int unpack_avx2(const int TYPE, const uint8_t *b, ksub *s) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    if (TYPE == PT_BLOCK_Q5_0 || TYPE == PT_BLOCK_Q5_1) {
        const int q51 = TYPE == PT_BLOCK_Q5_1;
        uint32_t qh;
        memcpy(&qh, b + (q51 ? 4 : 2), 4);
        float d = _cvtsh_ss(load_u16(b));
        s[0].u = _mm256_or_si256(unpack_nibbles(b + (q51 ? 8 : 6)), fifth_bits(qh));
        s[0].s16 = _mm256_set1_epi16(1);
        s[0].f = s[0].d0 = s[0].d1 = d;
        s[0].m = q51 ? _cvtsh_ss(load_u16(b + 2)) : -16.0f * d;
        return 1;
    }
    if (TYPE == PT_BLOCK_Q4_K || TYPE == PT_BLOCK_Q5_K) {
        const int q5 = TYPE == PT_BLOCK_Q5_K;
        float d = _cvtsh_ss(load_u16(b)), dmin = _cvtsh_ss(load_u16(b + 2));
        __m256i qh = q5 ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
        const uint8_t *qs = b + (q5 ? 48 : 16);
        for (int c = 0; c < 4; c++) {
            __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
            if (q5) {
                lo = _mm256_or_si256(lo, masked_fifth(qh, 1 << (2 * c)));
                hi = _mm256_or_si256(hi, masked_fifth(qh, 2 << (2 * c)));
            }
            s[2 * c].u = lo;
            s[2 * c + 1].u = hi;
        }
        for (int j = 0; j < 8; j++) {
            int sc, m;
            kscale_min(b + 4, j, &sc, &m);
            s[j].s16 = _mm256_set1_epi16((short)sc);
            s[j].f = d;
            s[j].d0 = s[j].d1 = d * (float)sc;
            s[j].m = -(dmin * (float)m);
        }
        return 8;
    }
    const int8_t *sc = (const int8_t *)(b + 192);
    const __m256i m3 = _mm256_set1_epi8(3), bias = _mm256_set1_epi8(32);
    float d = _cvtsh_ss(load_u16(b + 208));
    for (int h = 0; h < 2; h++) {
        __m256i l0 = _mm256_loadu_si256((const __m256i *)(b + 64 * h));
        __m256i l1 = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
        __m256i lows[4] = {_mm256_and_si256(l0, m4), _mm256_and_si256(l1, m4),
                           _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4)};
        for (int t = 0; t < 4; t++) {
            __m256i high = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * t), m3), 4);
            ksub *o = &s[4 * h + t];
            int g = 2 * (4 * h + t);
            o->u = _mm256_sub_epi8(_mm256_or_si256(lows[t], high), bias);
            o->s16 = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(sc[g])), _mm_set1_epi16(sc[g + 1]), 1);
            o->f = d;
            o->d0 = d * (float)sc[g];
            o->d1 = d * (float)sc[g + 1];
            o->m = 0.0f;
        }
    }
    return 8;
}

/// Σ over the sub-block of s16·v·q as eight int32 sums, converted to float.
TARGET_AVX2 static inline __m256 ksub_dot(const int TYPE, const ksub *s, const int8_t *xq) {
    __m256i x = _mm256_loadu_si256((const __m256i *)xq), p;
    if (TYPE == PT_BLOCK_Q6_K) p = _mm256_maddubs_epi16(_mm256_abs_epi8(s->u), _mm256_sign_epi8(x, s->u));
    else p = _mm256_maddubs_epi16(s->u, x);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, s->s16));
}

// The decode product of one unpacked format: each weight block unpacked once per group of up to
// four input rows; a row's sum in a fixed order (even sub-blocks into one accumulator, odd into
// another, offsets in sequence) whatever the group, as in DEFINE_MATVEC.
#define DEFINE_UNPACKED_MATVEC(NAME, TYPE)                                                                   \
    TARGET_AVX2 static inline __attribute__((always_inline)) void NAME##_group(                              \
        const uint8_t *row, size_t nblk, size_t bb, size_t n, const int8_t *q, const float *sc, const float *su, \
        const int R, float *y, size_t ys, int acc) {                                                         \
        const size_t nb = n / QK;                                                                            \
        __m256 a0[4], a1[4];                                                                                 \
        float off[4];                                                                                        \
        ksub s[8];                                                                                           \
        for (int j = 0; j < R; j++) { a0[j] = _mm256_setzero_ps(); a1[j] = _mm256_setzero_ps(); off[j] = 0; } \
        for (size_t b = 0; b < nblk; b++) {                                                                  \
            const int subs = unpack_avx2(TYPE, row + b * bb, s);                                             \
            for (int j = 0; j < R; j++) {                                                                    \
                const int8_t *xq = q + j * n + b * subs * QK;                                                \
                const float *xsc = sc + j * nb + b * subs, *xsu = su + j * nb + b * subs;                     \
                for (int t = 0; t < subs; t++) {                                                             \
                    __m256 p = ksub_dot(TYPE, &s[t], xq + t * QK), f = _mm256_set1_ps(s[t].f * xsc[t]);      \
                    if (((b * subs + t) & 1) == 0) a0[j] = _mm256_fmadd_ps(p, f, a0[j]);                     \
                    else a1[j] = _mm256_fmadd_ps(p, f, a1[j]);                                               \
                    if (TYPE != PT_BLOCK_Q6_K) off[j] += s[t].m * xsu[t];                                    \
                }                                                                                            \
            }                                                                                                \
        }                                                                                                    \
        for (int j = 0; j < R; j++) {                                                                        \
            float r = hsum8(_mm256_add_ps(a0[j], a1[j])) + off[j];                                           \
            float *o = y + (size_t)j * ys;                                                                   \
            *o = acc ? *o + r : r;                                                                           \
        }                                                                                                    \
    }                                                                                                        \
    DEFINE_ROW_GROUPS(NAME, TARGET_AVX2, TYPE, n / block_values(TYPE))

DEFINE_UNPACKED_MATVEC(q4_k_avx2, PT_BLOCK_Q4_K)
DEFINE_UNPACKED_MATVEC(q5_k_avx2, PT_BLOCK_Q5_K)
DEFINE_UNPACKED_MATVEC(q6_k_avx2, PT_BLOCK_Q6_K)

TARGET_AVX2 static inline __attribute__((always_inline)) void dequantize_unpacked_rows_avx2(
    const int TYPE, const uint8_t *w, size_t rb, size_t n, size_t start, size_t end, float *out, size_t os) {
    const size_t per = block_values(TYPE), bb = (size_t)block_bytes(TYPE);
    ksub s[8];
    for (size_t r = start; r < end; r++) {
        const uint8_t *row = w + r * rb;
        float *o = out + (r - start) * os;
        for (size_t b = 0; b < n / per; b++) {
            const int subs = unpack_avx2(TYPE, row + b * bb, s);
            for (int t = 0; t < subs; t++) {
                float *ot = o + b * per + (size_t)t * QK;
                store16_avx2(ot, _mm256_castsi256_si128(s[t].u), TYPE == PT_BLOCK_Q6_K, s[t].d0, s[t].m);
                store16_avx2(ot + 16, _mm256_extracti128_si256(s[t].u, 1), TYPE == PT_BLOCK_Q6_K, s[t].d1, s[t].m);
            }
        }
    }
}

TARGET_AVX2 static void dequantize_unpacked_avx2(int type, const uint8_t *w, size_t rb, size_t n, size_t start, size_t end,
                                                 float *out, size_t os) {
    switch (type) {
    case PT_BLOCK_Q5_0: dequantize_unpacked_rows_avx2(PT_BLOCK_Q5_0, w, rb, n, start, end, out, os); break;
    case PT_BLOCK_Q5_1: dequantize_unpacked_rows_avx2(PT_BLOCK_Q5_1, w, rb, n, start, end, out, os); break;
    case PT_BLOCK_Q4_K: dequantize_unpacked_rows_avx2(PT_BLOCK_Q4_K, w, rb, n, start, end, out, os); break;
    case PT_BLOCK_Q5_K: dequantize_unpacked_rows_avx2(PT_BLOCK_Q5_K, w, rb, n, start, end, out, os); break;
    default: dequantize_unpacked_rows_avx2(PT_BLOCK_Q6_K, w, rb, n, start, end, out, os); break;
    }
}
#endif

// MARK: - Dispatch

static int isa_supported(int isa) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (isa == 2)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
            && __builtin_cpu_supports("f16c");
    if (isa == 1) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#endif
    return isa == 0;
}

int pt_block_isa(void) {
    // Chosen on first use; atomic, as first uses may come from several threads at once.
    static int cached = -1;
    int chosen = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (chosen < 0) {
        int best = isa_supported(2) ? 2 : isa_supported(1) ? 1 : 0;
        // PARATOOL_BLOCK_KERNELS=avx2|portable measures a lesser variant on this CPU.
        const char *asked = getenv("PARATOOL_BLOCK_KERNELS");
        int wanted = !asked ? best : !strcmp(asked, "portable") ? 0 : !strcmp(asked, "avx2") ? 1 : best;
        chosen = wanted < best ? wanted : best;
        __atomic_store_n(&cached, chosen, __ATOMIC_RELAXED);
    }
    return chosen;
}

static int known_type(int type) {
    return type == PT_BLOCK_F32 || type == PT_BLOCK_F16 || type == PT_BLOCK_BF16 || block_bytes(type) > 0;
}

int pt_block_matvec(int isa, int type, const void *weights, size_t row_bytes, size_t n,
                    const float *x, size_t x_stride, const int8_t *q, const float *scales, const float *sums,
                    size_t k, float *y, size_t y_stride, size_t start, size_t end, int accumulate) {
    if (isa < 0) isa = pt_block_isa();
    if (!known_type(type) || k > MAXK || !isa_supported(isa)) return -1;
    const uint8_t *w = weights;
    if (type == PT_BLOCK_F32) {
        // The float32 kernel's own variants: 2 is its AVX-512 one, which this CPU has when it has VNNI.
        return pt_matvec_rows_isa(isa, (const float *)weights, row_bytes / 4, n, x, x_stride, k, y, y_stride, start, end, accumulate);
    }
    if (type == PT_BLOCK_F16 || type == PT_BLOCK_BF16) {
#if defined(__x86_64__)
        if (isa >= 1) { matvec_half_avx2(type, w, row_bytes, n, x, x_stride, k, y, y_stride, start, end, accumulate); return 0; }
#endif
        matvec_half_portable(type, w, row_bytes, n, x, x_stride, k, y, y_stride, start, end, accumulate);
        return 0;
    }
    if (n % block_values(type) != 0) return -1;
#if defined(__x86_64__)
    typedef void (*fn)(const uint8_t *, size_t, size_t, const int8_t *, const float *, const float *, size_t, float *, size_t, size_t, size_t, int);
    fn f = 0;
    if (is_unpacked(type)) {
        // No AVX-512 variant of these yet: the AVX2 one runs on AVX-512 machines.
        if (isa >= 1) {
            f = type == PT_BLOCK_Q5_0 ? q5_0_avx2 : type == PT_BLOCK_Q5_1 ? q5_1_avx2 : type == PT_BLOCK_Q4_K ? q4_k_avx2
              : type == PT_BLOCK_Q5_K ? q5_k_avx2 : q6_k_avx2;
            f(w, row_bytes, n, q, scales, sums, k, y, y_stride, start, end, accumulate);
            return 0;
        }
    } else if (isa == 2) f = type == PT_BLOCK_Q4_0 ? q4_0_vnni : type == PT_BLOCK_Q4_1 ? q4_1_vnni : q8_0_vnni;
    if (isa == 1) f = type == PT_BLOCK_Q4_0 ? q4_0_avx2 : type == PT_BLOCK_Q4_1 ? q4_1_avx2 : q8_0_avx2;
    if (f) { f(w, row_bytes, n, q, scales, sums, k, y, y_stride, start, end, accumulate); return 0; }
#endif
    if (is_unpacked(type)) matvec_unpacked_portable(type, w, row_bytes, n, q, scales, k, y, y_stride, start, end, accumulate);
    else matvec_blocks_portable(type, w, row_bytes, n, q, scales, sums, k, y, y_stride, start, end, accumulate);
    return 0;
}

int pt_block_dequantize_rows(int isa, int type, const void *weights, size_t row_bytes, size_t n,
                             size_t start, size_t end, float *out, size_t out_stride) {
    if (isa < 0) isa = pt_block_isa();
    if (!known_type(type) || !isa_supported(isa)) return -1;
    if (block_bytes(type) > 0 && n % block_values(type) != 0) return -1;
    if (is_unpacked(type)) {
#if defined(__x86_64__)
        if (isa >= 1) { dequantize_unpacked_avx2(type, weights, row_bytes, n, start, end, out, out_stride); return 0; }
#endif
        dequantize_unpacked_portable(type, weights, row_bytes, n, start, end, out, out_stride);
        return 0;
    }
#if defined(__x86_64__)
    if (isa == 2) { dequantize_avx512(type, weights, row_bytes, n, start, end, out, out_stride); return 0; }
    if (isa == 1) { dequantize_avx2(type, weights, row_bytes, n, start, end, out, out_stride); return 0; }
#endif
    dequantize_portable(type, weights, row_bytes, n, start, end, out, out_stride);
    return 0;
}

// Narrow rows (LoRA's B, out × r with r ~ 16): y[o] += dot(w[o], t). A row is too short for a
// vector dot of its own (the horizontal sum would cost more than the row), so eight rows are
// accumulated side by side and reduced together into one vector of eight outputs.
static float narrow_value(int type, const uint8_t *row, size_t i) {
    if (type == PT_BLOCK_F32) { float f; memcpy(&f, row + 4 * i, 4); return f; }
    return bf16_to_float(load_u16(row + 2 * i));
}

static void narrow_rows_portable(int type, const uint8_t *w, size_t rb, size_t n, const float *t, float *y,
                                 size_t start, size_t end) {
    for (size_t o = start; o < end; o++) {
        const uint8_t *row = w + o * rb;
        float s = 0;
        for (size_t i = 0; i < n; i++) s += narrow_value(type, row, i) * t[i];
        y[o] += s;
    }
}

#if defined(__x86_64__)
TARGET_AVX2 static inline __m256 load8_narrow(int type, const uint8_t *p) {
    if (type == PT_BLOCK_F32) return _mm256_loadu_ps((const float *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

TARGET_AVX2 static void narrow_rows_avx2(int type, const uint8_t *w, size_t rb, size_t n, const float *t, float *y,
                                         size_t start, size_t end) {
    const size_t esize = type == PT_BLOCK_F32 ? 4 : 2, n8 = n & ~(size_t)7;
    size_t o = start;
    if (n8 == n) {
        for (; o + 8 <= end; o += 8) {
            __m256 a[8];
            for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
            for (size_t i = 0; i < n; i += 8) {
                const __m256 tv = _mm256_loadu_ps(t + i);
                for (int j = 0; j < 8; j++) a[j] = _mm256_fmadd_ps(load8_narrow(type, w + (o + j) * rb + i * esize), tv, a[j]);
            }
            // Eight vectors to the vector of their eight sums, in row order.
            __m256 s01 = _mm256_hadd_ps(a[0], a[1]), s23 = _mm256_hadd_ps(a[2], a[3]);
            __m256 s45 = _mm256_hadd_ps(a[4], a[5]), s67 = _mm256_hadd_ps(a[6], a[7]);
            __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
            __m256 sums = _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20), _mm256_permute2f128_ps(s0123, s4567, 0x31));
            _mm256_storeu_ps(y + o, _mm256_add_ps(_mm256_loadu_ps(y + o), sums));
        }
    }
    narrow_rows_portable(type, w, rb, n, t, y, o, end);
}
#endif

int pt_block_narrow_rows(int isa, int type, const void *w, size_t row_bytes, size_t n, const float *t, float *y,
                         size_t start, size_t end) {
    if (isa < 0) isa = pt_block_isa();
    if ((type != PT_BLOCK_F32 && type != PT_BLOCK_BF16) || !isa_supported(isa)) return -1;
#if defined(__x86_64__)
    if (isa >= 1) { narrow_rows_avx2(type, w, row_bytes, n, t, y, start, end); return 0; }
#endif
    narrow_rows_portable(type, w, row_bytes, n, t, y, start, end);
    return 0;
}

int pt_block_quantize_row(int type, const float *x, size_t n, void *out) {
    if (type == PT_BLOCK_BF16) {
        // Round to nearest even on the upper 16 bits; a NaN stays a (quiet) NaN.
        uint8_t *o = out;
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, x + i, 4);
            uint16_t h = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40u)
                                                           : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
            memcpy(o + 2 * i, &h, 2);
        }
        return 0;
    }
    if ((type != PT_BLOCK_Q8_0 && type != PT_BLOCK_Q4_0) || n % QK != 0) return -1;
    uint8_t *o = out;
    for (size_t b = 0; b < n / QK; b++) {
        const float *v = x + b * QK;
        if (type == PT_BLOCK_Q8_0) {
            float amax = 0;
            for (int i = 0; i < QK; i++) amax = fmaxf(amax, fabsf(v[i]));
            float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
            uint16_t h = float_to_half(d);
            memcpy(o, &h, 2);
            for (int i = 0; i < QK; i++) o[2 + i] = (uint8_t)(int8_t)roundf(v[i] * id);
            o += 34;
        } else {
            float amax = 0, max = 0;
            for (int i = 0; i < QK; i++) {
                if (amax < fabsf(v[i])) { amax = fabsf(v[i]); max = v[i]; }
            }
            float d = max / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
            uint16_t h = float_to_half(d);
            memcpy(o, &h, 2);
            for (int i = 0; i < 16; i++) {
                int a = (int)(int8_t)(v[i] * id + 8.5f), b2 = (int)(int8_t)(v[16 + i] * id + 8.5f);
                a = a < 15 ? a : 15;
                b2 = b2 < 15 ? b2 : 15;
                o[2 + i] = (uint8_t)(a | (b2 << 4));
            }
            o += 18;
        }
    }
    return 0;
}
