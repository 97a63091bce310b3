// Kernels on weights in GGML block formats (see blockkernels.h): decode products against 8-bit
// activation blocks, dequantisation of row ranges for the sgemm tiles, and load-time quantisers.
// Block layouts (32 values each): Q4_0 = half d, 16 bytes of nibbles (low nibbles values 0..15,
// high nibbles 16..31), x = d·(q − 8); Q4_1 = half d, half m, nibbles as Q4_0, x = d·q + m;
// Q8_0 = half d, 32 signed bytes, x = d·q.
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

// One weight block of `TYPE` against the rows' blocks: `u` the weights as unsigned bytes, `w8`
// the signed bytes (Q8_0, whose sign moves onto the activations), d and m its scale and minimum.
#define BLOCK_WEIGHTS(TYPE, blk, u, w8, d, m)                                                     \
    __m256i u, w8 = _mm256_setzero_si256();                                                       \
    float d = _cvtsh_ss(load_u16(blk)), m = 0;                                                   \
    if (TYPE == PT_BLOCK_Q8_0) {                                                                  \
        w8 = _mm256_loadu_si256((const __m256i *)(blk + 2));                                      \
        u = _mm256_sign_epi8(w8, w8);                                                             \
    } else {                                                                                      \
        if (TYPE == PT_BLOCK_Q4_1) m = _cvtsh_ss(load_u16(blk + 2));                              \
        u = unpack_nibbles(blk + (TYPE == PT_BLOCK_Q4_1 ? 4 : 2));                                \
    }                                                                                             \
    (void)m

#define ACTIVATIONS(TYPE, xq, w8) \
    (TYPE == PT_BLOCK_Q8_0 ? _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(xq)), w8) \
                           : _mm256_loadu_si256((const __m256i *)(xq)))

// The offset term of a 4-bit block (−8·d·Σx for Q4_0, m·Σx for Q4_1) given the row's d·Σq.
#define OFFSET(TYPE, d, m, sum) (TYPE == PT_BLOCK_Q4_1 ? (m) * (sum) : TYPE == PT_BLOCK_Q4_0 ? -8.0f * (d) * (sum) : 0.0f)

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
    TARGET static void NAME(const uint8_t *w, size_t rb, size_t n, const int8_t *q, const float *sc,         \
                            const float *su, size_t k, float *y, size_t ys, size_t start, size_t end, int acc) { \
        const size_t nb = n / QK, bb = (size_t)block_bytes(TYPE);                                            \
        for (size_t r = start; r < end; r++) {                                                               \
            const uint8_t *row = w + r * rb;                                                                 \
            size_t j = 0;                                                                                    \
            for (; j + 4 <= k; j += 4) NAME##_group(row, nb, bb, n, q + j * n, sc + j * nb, su + j * nb, 4, y + j * ys + r, ys, acc); \
            switch (k - j) {                                                                                 \
            case 3: NAME##_group(row, nb, bb, n, q + j * n, sc + j * nb, su + j * nb, 3, y + j * ys + r, ys, acc); break; \
            case 2: NAME##_group(row, nb, bb, n, q + j * n, sc + j * nb, su + j * nb, 2, y + j * ys + r, ys, acc); break; \
            case 1: NAME##_group(row, nb, bb, n, q + j * n, sc + j * nb, su + j * nb, 1, y + j * ys + r, ys, acc); break; \
            default: break;                                                                                  \
            }                                                                                                \
        }                                                                                                    \
    }

DEFINE_MATVEC(q4_0_avx2, TARGET_AVX2, dot_avx2, PT_BLOCK_Q4_0)
DEFINE_MATVEC(q4_1_avx2, TARGET_AVX2, dot_avx2, PT_BLOCK_Q4_1)
DEFINE_MATVEC(q8_0_avx2, TARGET_AVX2, dot_avx2, PT_BLOCK_Q8_0)
DEFINE_MATVEC(q4_0_vnni, TARGET_VNNI, dot_vnni, PT_BLOCK_Q4_0)
DEFINE_MATVEC(q4_1_vnni, TARGET_VNNI, dot_vnni, PT_BLOCK_Q4_1)
DEFINE_MATVEC(q8_0_vnni, TARGET_VNNI, dot_vnni, PT_BLOCK_Q8_0)

/// Eight half or bfloat16 values as floats.
TARGET_AVX2 static inline __m256 load8_half(int type, const uint8_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    if (type == PT_BLOCK_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

TARGET_AVX2 static void matvec_half_avx2(int type, const uint8_t *w, size_t rb, size_t n, const float *x, size_t xs, size_t k,
                                         float *y, size_t ys, size_t start, size_t end, int acc) {
    size_t n8 = n & ~(size_t)7;
    for (size_t r = start; r < end; r++) {
        const uint8_t *row = w + r * rb;
        __m256 a[MAXK];
        for (size_t j = 0; j < k; j++) a[j] = _mm256_setzero_ps();
        for (size_t i = 0; i < n8; i += 8) {
            __m256 wv = load8_half(type, row + 2 * i);
            for (size_t j = 0; j < k; j++) a[j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + j * xs + i), a[j]);
        }
        for (size_t j = 0; j < k; j++) {
            float s = hsum8(a[j]);
            for (size_t i = n8; i < n; i++) {
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
    if (n % QK != 0) return -1;
#if defined(__x86_64__)
    typedef void (*fn)(const uint8_t *, size_t, size_t, const int8_t *, const float *, const float *, size_t, float *, size_t, size_t, size_t, int);
    fn f = 0;
    if (isa == 2) f = type == PT_BLOCK_Q4_0 ? q4_0_vnni : type == PT_BLOCK_Q4_1 ? q4_1_vnni : q8_0_vnni;
    if (isa == 1) f = type == PT_BLOCK_Q4_0 ? q4_0_avx2 : type == PT_BLOCK_Q4_1 ? q4_1_avx2 : q8_0_avx2;
    if (f) { f(w, row_bytes, n, q, scales, sums, k, y, y_stride, start, end, accumulate); return 0; }
#endif
    matvec_blocks_portable(type, w, row_bytes, n, q, scales, sums, k, y, y_stride, start, end, accumulate);
    return 0;
}

int pt_block_dequantize_rows(int isa, int type, const void *weights, size_t row_bytes, size_t n,
                             size_t start, size_t end, float *out, size_t out_stride) {
    if (isa < 0) isa = pt_block_isa();
    if (!known_type(type) || !isa_supported(isa)) return -1;
    if (block_bytes(type) > 0 && n % QK != 0) return -1;
#if defined(__x86_64__)
    if (isa == 2) { dequantize_avx512(type, weights, row_bytes, n, start, end, out, out_stride); return 0; }
    if (isa == 1) { dequantize_avx2(type, weights, row_bytes, n, start, end, out, out_stride); return 0; }
#endif
    dequantize_portable(type, weights, row_bytes, n, start, end, out, out_stride);
    return 0;
}

int pt_block_quantize_row(int type, const float *x, size_t n, void *out) {
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
