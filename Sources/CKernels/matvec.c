// Matrix-vector products for decode (one to a few input rows): each weight row is read once and
// dotted with every input row. Memory-bound for one row; with several rows the FMA width matters,
// hence the AVX-512 and AVX2 variants.
#include "ckernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define MAXK 16

__attribute__((target("avx512f")))
static inline void store_dot512(__m512 a, const float *row, const float *x, size_t n16, size_t n, float *o, int acc) {
    float s = _mm512_reduce_add_ps(a);
    for (size_t i = n16; i < n; i++) s += row[i] * x[i];
    *o = acc ? *o + s : s;
}

__attribute__((target("avx512f")))
static void matvec_avx512(const float *w, size_t ws, size_t n, const float *x, size_t xs, size_t k,
                          float *y, size_t ys, size_t start, size_t end, int acc) {
    size_t n16 = n & ~(size_t)15;
    for (size_t r = start; r < end; r++) {
        const float *row = w + r * ws;
        size_t j = 0;
        // Four input rows at a time with their accumulators in registers; the weight row stays
        // in L1 between the groups, so it is read from memory once.
        const float *next = r + 1 < end ? row + ws : row;
        for (; j + 4 <= k; j += 4) {
            const float *x0 = x + j * xs, *x1 = x0 + xs, *x2 = x1 + xs, *x3 = x2 + xs;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (size_t i = 0; i < n16; i += 16) {
                // With several input rows the weight row is consumed slowly: fetch the next one
                // during the first pass so the memory stream never stalls.
                if (j == 0) _mm_prefetch((const char *)(next + i), _MM_HINT_T0);
                __m512 wv = _mm512_loadu_ps(row + i);
                a0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x0 + i), a0);
                a1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x1 + i), a1);
                a2 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x2 + i), a2);
                a3 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x3 + i), a3);
            }
            store_dot512(a0, row, x0, n16, n, y + j * ys + r, acc);
            store_dot512(a1, row, x1, n16, n, y + (j + 1) * ys + r, acc);
            store_dot512(a2, row, x2, n16, n, y + (j + 2) * ys + r, acc);
            store_dot512(a3, row, x3, n16, n, y + (j + 3) * ys + r, acc);
        }
        for (; j < k; j++) {
            const float *xj = x + j * xs;
            __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
            size_t i = 0;
            for (; i + 32 <= n16; i += 32) {
                _mm_prefetch((const char *)(row + i + 512), _MM_HINT_T0);
                a = _mm512_fmadd_ps(_mm512_loadu_ps(row + i), _mm512_loadu_ps(xj + i), a);
                b = _mm512_fmadd_ps(_mm512_loadu_ps(row + i + 16), _mm512_loadu_ps(xj + i + 16), b);
            }
            for (; i < n16; i += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(row + i), _mm512_loadu_ps(xj + i), a);
            store_dot512(_mm512_add_ps(a, b), row, xj, n16, n, y + j * ys + r, acc);
        }
    }
}

static inline float hsum256(__m256 v) __attribute__((target("avx2,fma")));
static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma")))
static void matvec_avx2(const float *w, size_t ws, size_t n, const float *x, size_t xs, size_t k,
                        float *y, size_t ys, size_t start, size_t end, int acc) {
    size_t n8 = n & ~(size_t)7;
    for (size_t r = start; r < end; r++) {
        const float *row = w + r * ws;
        __m256 a[MAXK];
        for (size_t j = 0; j < k; j++) a[j] = _mm256_setzero_ps();
        for (size_t i = 0; i < n8; i += 8) {
            __m256 wv = _mm256_loadu_ps(row + i);
            for (size_t j = 0; j < k; j++) a[j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + j * xs + i), a[j]);
        }
        for (size_t j = 0; j < k; j++) {
            float s = hsum256(a[j]);
            for (size_t i = n8; i < n; i++) s += row[i] * x[j * xs + i];
            float *o = y + j * ys + r;
            *o = acc ? *o + s : s;
        }
    }
}
#else
#define MAXK 16
#endif

static void matvec_portable(const float *w, size_t ws, size_t n, const float *x, size_t xs, size_t k,
                            float *y, size_t ys, size_t start, size_t end, int acc) {
    for (size_t r = start; r < end; r++) {
        const float *row = w + r * ws;
        for (size_t j = 0; j < k; j++) {
            const float *xr = x + j * xs;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            size_t i = 0;
            for (; i + 4 <= n; i += 4) {
                s0 += row[i] * xr[i]; s1 += row[i + 1] * xr[i + 1];
                s2 += row[i + 2] * xr[i + 2]; s3 += row[i + 3] * xr[i + 3];
            }
            float s = (s0 + s1) + (s2 + s3);
            for (; i < n; i++) s += row[i] * xr[i];
            float *o = y + j * ys + r;
            *o = acc ? *o + s : s;
        }
    }
}

typedef void (*matvec_fn)(const float *, size_t, size_t, const float *, size_t, size_t, float *, size_t, size_t, size_t, int);

static matvec_fn chosen(const char **name) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) { if (name) *name = "avx512"; return matvec_avx512; }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) { if (name) *name = "avx2"; return matvec_avx2; }
#endif
    if (name) *name = "portable";
    return matvec_portable;
}

/// Runs `fn` over the input rows in groups of at most MAXK (the kernels' register budget).
static void matvec_in_groups(matvec_fn fn, const float *w, size_t w_stride, size_t n, const float *x, size_t x_stride,
                             size_t k, float *y, size_t y_stride, size_t start, size_t end, int accumulate) {
    for (size_t j0 = 0; j0 < k; j0 += MAXK) {
        size_t kk = k - j0 < MAXK ? k - j0 : MAXK;
        fn(w, w_stride, n, x + j0 * x_stride, x_stride, kk, y + j0 * y_stride, y_stride, start, end, accumulate);
    }
}

void pt_matvec_rows(const float *w, size_t w_stride, size_t n, const float *x, size_t x_stride, size_t k,
                    float *y, size_t y_stride, size_t start, size_t end, int accumulate) {
    // Chosen on first use; atomic, as first uses may come from several threads at once.
    static matvec_fn cached = 0;
    matvec_fn fn = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!fn) {
        fn = chosen(0);
        __atomic_store_n(&cached, fn, __ATOMIC_RELAXED);
    }
    matvec_in_groups(fn, w, w_stride, n, x, x_stride, k, y, y_stride, start, end, accumulate);
}

const char *pt_kernel_isa(void) {
    const char *name = "portable";
    chosen(&name);
    return name;
}

// y[c] += Σ_j t[j] · bt[j][c]: each block of y stays in registers while all r rows of Bᵀ are
// added into it, so y is read and written once per call instead of once per row.
#if defined(__x86_64__)
__attribute__((target("avx512f")))
static void axpy_rows_avx512(const float *bt, size_t bt_stride, size_t r, const float *t, float *y, size_t start, size_t end) {
    size_t c = start;
    for (; c + 64 <= end; c += 64) {
        __m512 a0 = _mm512_loadu_ps(y + c), a1 = _mm512_loadu_ps(y + c + 16);
        __m512 a2 = _mm512_loadu_ps(y + c + 32), a3 = _mm512_loadu_ps(y + c + 48);
        for (size_t j = 0; j < r; j++) {
            const float *row = bt + j * bt_stride + c;
            const __m512 s = _mm512_set1_ps(t[j]);
            a0 = _mm512_fmadd_ps(s, _mm512_loadu_ps(row), a0);
            a1 = _mm512_fmadd_ps(s, _mm512_loadu_ps(row + 16), a1);
            a2 = _mm512_fmadd_ps(s, _mm512_loadu_ps(row + 32), a2);
            a3 = _mm512_fmadd_ps(s, _mm512_loadu_ps(row + 48), a3);
        }
        _mm512_storeu_ps(y + c, a0);
        _mm512_storeu_ps(y + c + 16, a1);
        _mm512_storeu_ps(y + c + 32, a2);
        _mm512_storeu_ps(y + c + 48, a3);
    }
    for (; c + 16 <= end; c += 16) {
        __m512 a = _mm512_loadu_ps(y + c);
        for (size_t j = 0; j < r; j++) a = _mm512_fmadd_ps(_mm512_set1_ps(t[j]), _mm512_loadu_ps(bt + j * bt_stride + c), a);
        _mm512_storeu_ps(y + c, a);
    }
    for (; c < end; c++) {
        float a = y[c];
        for (size_t j = 0; j < r; j++) a += t[j] * bt[j * bt_stride + c];
        y[c] = a;
    }
}

__attribute__((target("avx2,fma")))
static void axpy_rows_avx2(const float *bt, size_t bt_stride, size_t r, const float *t, float *y, size_t start, size_t end) {
    size_t c = start;
    for (; c + 32 <= end; c += 32) {
        __m256 a0 = _mm256_loadu_ps(y + c), a1 = _mm256_loadu_ps(y + c + 8);
        __m256 a2 = _mm256_loadu_ps(y + c + 16), a3 = _mm256_loadu_ps(y + c + 24);
        for (size_t j = 0; j < r; j++) {
            const float *row = bt + j * bt_stride + c;
            const __m256 s = _mm256_set1_ps(t[j]);
            a0 = _mm256_fmadd_ps(s, _mm256_loadu_ps(row), a0);
            a1 = _mm256_fmadd_ps(s, _mm256_loadu_ps(row + 8), a1);
            a2 = _mm256_fmadd_ps(s, _mm256_loadu_ps(row + 16), a2);
            a3 = _mm256_fmadd_ps(s, _mm256_loadu_ps(row + 24), a3);
        }
        _mm256_storeu_ps(y + c, a0);
        _mm256_storeu_ps(y + c + 8, a1);
        _mm256_storeu_ps(y + c + 16, a2);
        _mm256_storeu_ps(y + c + 24, a3);
    }
    for (; c < end; c++) {
        float a = y[c];
        for (size_t j = 0; j < r; j++) a += t[j] * bt[j * bt_stride + c];
        y[c] = a;
    }
}
#endif

static void axpy_rows_portable(const float *bt, size_t bt_stride, size_t r, const float *t, float *y, size_t start, size_t end) {
    for (size_t j = 0; j < r; j++) {
        const float a = t[j];
        const float *row = bt + j * bt_stride;
        for (size_t c = start; c < end; c++) y[c] += a * row[c];
    }
}

void pt_matvec_transposed(const float *bt, size_t bt_stride, size_t r, const float *t,
                          float *y, size_t start, size_t end) {
    static int cached = -1;
    int isa = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (isa < 0) {
        const char *name = pt_kernel_isa();
        isa = name[0] == 'a' ? (name[3] == '5' ? 2 : 1) : 0;
        __atomic_store_n(&cached, isa, __ATOMIC_RELAXED);
    }
#if defined(__x86_64__)
    if (isa == 2) { axpy_rows_avx512(bt, bt_stride, r, t, y, start, end); return; }
    if (isa == 1) { axpy_rows_avx2(bt, bt_stride, r, t, y, start, end); return; }
#endif
    axpy_rows_portable(bt, bt_stride, r, t, y, start, end);
}

static int isa_supported(int isa) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (isa == 2) return __builtin_cpu_supports("avx512f");
    if (isa == 1) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return isa == 0;
}

int pt_matvec_rows_isa(int isa, const float *w, size_t w_stride, size_t n, const float *x, size_t x_stride, size_t k,
                       float *y, size_t y_stride, size_t start, size_t end, int accumulate) {
    if (!isa_supported(isa)) return -1;
    matvec_fn fn = matvec_portable;
#if defined(__x86_64__)
    if (isa == 2) fn = matvec_avx512;
    if (isa == 1) fn = matvec_avx2;
#endif
    matvec_in_groups(fn, w, w_stride, n, x, x_stride, k, y, y_stride, start, end, accumulate);
    return 0;
}

int pt_matvec_transposed_isa(int isa, const float *bt, size_t bt_stride, size_t r, const float *t,
                             float *y, size_t start, size_t end) {
    if (!isa_supported(isa)) return -1;
#if defined(__x86_64__)
    if (isa == 2) { axpy_rows_avx512(bt, bt_stride, r, t, y, start, end); return 0; }
    if (isa == 1) { axpy_rows_avx2(bt, bt_stride, r, t, y, start, end); return 0; }
#endif
    axpy_rows_portable(bt, bt_stride, r, t, y, start, end);
    return 0;
}
