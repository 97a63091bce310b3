// Row and element kernels of LoRA training (see rowkernels.h). Each kernel is one loop body,
// always inlined into an AVX-512, an AVX2+FMA and a portable function, so the compiler
// vectorises the same code for each instruction set; a function pointer per kernel picks the
// variant once. Reductions keep 16 partial sums (fixed order per instruction set).
#include "rowkernels.h"
#include <math.h>
#include <stdint.h>

#define BODY static inline __attribute__((always_inline))
#define LANES 16

// e^x on [-87, 88] (clamped): x = n·ln2 + r, e^r by Cephes' degree-6 polynomial, 2^n by the
// exponent bits. Branch-free and libm-free, so loops that call it vectorise.
BODY float fast_exp(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float t = x * 1.44269504088896341f + 0.5f;
    int i = (int)t;
    i -= (float)i > t;
    float n = (float)i;
    float r = x - n * 0.693359375f - n * -2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    union { uint32_t u; float f; } scale = { (uint32_t)(i + 127) << 23 };
    return y * scale.f;
}

BODY float sum_squares_body(const float *x, size_t n) {
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += x[i + k] * x[i + k];
    float s = 0;
    for (int k = 0; k < LANES; k++) s += acc[k];
    for (; i < n; i++) s += x[i] * x[i];
    return s;
}

BODY float dot_body(const float *a, const float *b, size_t n) {
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += a[i + k] * b[i + k];
    float s = 0;
    for (int k = 0; k < LANES; k++) s += acc[k];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

BODY float max_body(const float *x, size_t n) {
    float acc[LANES];
    for (int k = 0; k < LANES; k++) acc[k] = -INFINITY;
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) acc[k] = x[i + k] > acc[k] ? x[i + k] : acc[k];
    float m = -INFINITY;
    for (int k = 0; k < LANES; k++) m = acc[k] > m ? acc[k] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

// In place: p[i] = e^(p[i] − m); returns Σ.
BODY float exp_sum_body(float *p, size_t n, float m) {
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) {
            float e = fast_exp(p[i + k] - m);
            p[i + k] = e;
            acc[k] += e;
        }
    float s = 0;
    for (int k = 0; k < LANES; k++) s += acc[k];
    for (; i < n; i++) { float e = fast_exp(p[i] - m); p[i] = e; s += e; }
    return s;
}

BODY void rms_norm_body(const float *x, size_t xs, const float *w, float eps, size_t rows, size_t n,
                        float *out, size_t os, float *inverse) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * xs;
        float *o = out + r * os;
        float inv = 1.0f / sqrtf(sum_squares_body(xr, n) / (float)n + eps);
        inverse[r] = inv;
        for (size_t i = 0; i < n; i++) o[i] = (xr[i] * inv) * w[i];
    }
}

BODY void rms_norm_backward_body(const float *x, size_t xs, const float *inverse, const float *w,
                                 const float *dy, size_t dys, const float *res, size_t rs,
                                 size_t rows, size_t n, float *dx, size_t dxs) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * xs, *d = dy + r * dys;
        float *o = dx + r * dxs;
        float acc[LANES] = {0};
        size_t i = 0;
        for (; i + LANES <= n; i += LANES)
            for (int k = 0; k < LANES; k++) acc[k] += d[i + k] * w[i + k] * xr[i + k];
        float ux = 0;
        for (int k = 0; k < LANES; k++) ux += acc[k];
        for (; i < n; i++) ux += d[i] * w[i] * xr[i];
        float inv = inverse[r], c = inv * inv * inv * ux / (float)n;
        if (res) {
            const float *b = res + r * rs;
            for (i = 0; i < n; i++) o[i] = b[i] + (inv * d[i] * w[i] - c * xr[i]);
        } else {
            for (i = 0; i < n; i++) o[i] = inv * d[i] * w[i] - c * xr[i];
        }
    }
}

BODY void rope_body(float *x, size_t xs, size_t rows, size_t heads, size_t hd, const float *cs, const float *sn,
                    size_t ts, int inverse) {
    size_t half = hd / 2;
    for (size_t r = 0; r < rows; r++) {
        const float *c = cs + r * ts, *s = sn + r * ts;
        for (size_t h = 0; h < heads; h++) {
            float *p = x + r * xs + h * hd, *q = p + half;
            if (inverse) {
                for (size_t i = 0; i < half; i++) {
                    float a = p[i], b = q[i];
                    p[i] = a * c[i] + b * s[i];
                    q[i] = b * c[i] - a * s[i];
                }
            } else {
                for (size_t i = 0; i < half; i++) {
                    float a = p[i], b = q[i];
                    p[i] = a * c[i] - b * s[i];
                    q[i] = b * c[i] + a * s[i];
                }
            }
        }
    }
}

BODY void silu_mul_body(const float *g, const float *u, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) {
        float v = g[i];
        out[i] = v / (1.0f + fast_exp(-v)) * u[i];
    }
}

BODY void silu_mul_backward_body(const float *g, const float *u, const float *dout, size_t n,
                                 float *act, float *dgate, float *dup) {
    for (size_t i = 0; i < n; i++) {
        float v = g[i], s = 1.0f / (1.0f + fast_exp(-v)), silu = v * s, d = dout[i], up = u[i];
        if (act) act[i] = silu * up;
        dup[i] = d * silu;
        dgate[i] = d * up * (s * (1.0f + v * (1.0f - s)));
    }
}

BODY void softmax_prefix_body(float *p, size_t stride, size_t rows, size_t visible, size_t width) {
    for (size_t r = 0; r < rows; r++) {
        float *row = p + r * stride;
        size_t n = visible + r < width ? visible + r : width;
        float m = max_body(row, n);
        float inv = 1.0f / exp_sum_body(row, n, m);
        for (size_t i = 0; i < n; i++) row[i] *= inv;
        for (size_t i = n; i < width; i++) row[i] = 0;
    }
}

BODY void softmax_backward_prefix_body(const float *p, size_t ps, float *dp, size_t dps, size_t rows,
                                       size_t visible, size_t width) {
    for (size_t r = 0; r < rows; r++) {
        const float *pr = p + r * ps;
        float *d = dp + r * dps;
        size_t n = visible + r < width ? visible + r : width;
        float dot = dot_body(pr, d, n);
        for (size_t i = 0; i < n; i++) d[i] = pr[i] * (d[i] - dot);
        for (size_t i = n; i < width; i++) d[i] = 0;
    }
}

BODY float softmax_cross_entropy_body(float *z, size_t n, size_t target, float scale) {
    float m = max_body(z, n);
    float zt = z[target];
    float sum = exp_sum_body(z, n, m);
    float k = scale / sum;
    for (size_t i = 0; i < n; i++) z[i] *= k;
    z[target] -= scale;
    return logf(sum) + m - zt;
}

BODY void adamw_body(float *p, const float *g, float *m, float *v, size_t n, float clip, float b1, float b2,
                     float c1, float c2, float eps, float lr, float decay) {
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * clip;
        float mi = b1 * m[i] + (1 - b1) * gi;
        float vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float update = (mi / c1) / (__builtin_elementwise_sqrt(vi / c2) + eps);
        p[i] -= lr * (update + decay * p[i]);
    }
}

BODY double sum_squares_double_body(const float *g, size_t n) {
    double acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += (double)g[i + k] * (double)g[i + k];
    double s = 0;
    for (int k = 0; k < 8; k++) s += acc[k];
    for (; i < n; i++) s += (double)g[i] * (double)g[i];
    return s;
}

// One definition per instruction set of every kernel, and a table of them.
#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
#define AVX2 __attribute__((target("avx2,fma")))
#endif

#define KERNELS(X) \
    X(rms_norm, void, (const float *x, size_t xs, const float *w, float eps, size_t rows, size_t n, float *out, size_t os, float *inv), \
      (x, xs, w, eps, rows, n, out, os, inv)) \
    X(rms_norm_backward, void, (const float *x, size_t xs, const float *inv, const float *w, const float *dy, size_t dys, \
                                const float *res, size_t rs, size_t rows, size_t n, float *dx, size_t dxs), \
      (x, xs, inv, w, dy, dys, res, rs, rows, n, dx, dxs)) \
    X(rope, void, (float *x, size_t xs, size_t rows, size_t heads, size_t hd, const float *c, const float *s, size_t ts, int inverse), \
      (x, xs, rows, heads, hd, c, s, ts, inverse)) \
    X(silu_mul, void, (const float *g, const float *u, size_t n, float *out), (g, u, n, out)) \
    X(silu_mul_backward, void, (const float *g, const float *u, const float *d, size_t n, float *act, float *dg, float *du), \
      (g, u, d, n, act, dg, du)) \
    X(softmax_prefix, void, (float *p, size_t stride, size_t rows, size_t visible, size_t width), (p, stride, rows, visible, width)) \
    X(softmax_backward_prefix, void, (const float *p, size_t ps, float *dp, size_t dps, size_t rows, size_t visible, size_t width), \
      (p, ps, dp, dps, rows, visible, width)) \
    X(softmax_cross_entropy, float, (float *z, size_t n, size_t target, float scale), (z, n, target, scale)) \
    X(adamw, void, (float *p, const float *g, float *m, float *v, size_t n, float clip, float b1, float b2, float c1, float c2, \
                    float eps, float lr, float decay), (p, g, m, v, n, clip, b1, b2, c1, c2, eps, lr, decay)) \
    X(sum_squares_double, double, (const float *g, size_t n), (g, n))

#if defined(__x86_64__)
#define DEFINE_VARIANTS(name, ret, params, args) \
    AVX512 static ret name##_avx512 params { return name##_body args; } \
    AVX2 static ret name##_avx2 params { return name##_body args; } \
    static ret name##_portable params { return name##_body args; }
#else
#define DEFINE_VARIANTS(name, ret, params, args) \
    static ret name##_portable params { return name##_body args; }
#endif
KERNELS(DEFINE_VARIANTS)

typedef struct {
#define FIELD(name, ret, params, args) ret (*name) params;
    KERNELS(FIELD)
} kernel_set;

static const kernel_set portable_set = {
#define PORTABLE(name, ret, params, args) name##_portable,
    KERNELS(PORTABLE)
};
#if defined(__x86_64__)
static const kernel_set avx2_set = {
#define AVX2_ENTRY(name, ret, params, args) name##_avx2,
    KERNELS(AVX2_ENTRY)
};
static const kernel_set avx512_set = {
#define AVX512_ENTRY(name, ret, params, args) name##_avx512,
    KERNELS(AVX512_ENTRY)
};
#endif

static int cpu_isa(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

static const kernel_set *set_for(int isa) {
#if defined(__x86_64__)
    if (isa == 2) return &avx512_set;
    if (isa == 1) return &avx2_set;
#endif
    return &portable_set;
}

// The chosen variant, set on first use by whichever thread comes first (every thread picks the
// same one) or by pt_row_kernels_force_isa: atomic, so concurrent first uses do not race.
static const kernel_set *active = 0;
static int active_isa = -1;

static const kernel_set *kernels(void) {
    const kernel_set *set = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    if (!set) {
        int isa = cpu_isa();
        set = set_for(isa);
        __atomic_store_n(&active_isa, isa, __ATOMIC_RELAXED);
        __atomic_store_n(&active, set, __ATOMIC_RELEASE);
    }
    return set;
}

int pt_row_kernels_isa(void) {
    kernels();
    return __atomic_load_n(&active_isa, __ATOMIC_RELAXED);
}

int pt_row_kernels_force_isa(int isa) {
    if (isa < 0) isa = cpu_isa();
    if (isa > cpu_isa()) return -1;
    __atomic_store_n(&active_isa, isa, __ATOMIC_RELAXED);
    __atomic_store_n(&active, set_for(isa), __ATOMIC_RELEASE);
    return 0;
}

void pt_rms_norm_rows(const float *x, size_t x_stride, const float *w, float eps, size_t rows, size_t n,
                      float *out, size_t out_stride, float *inverse) {
    kernels()->rms_norm(x, x_stride, w, eps, rows, n, out, out_stride, inverse);
}

void pt_rms_norm_backward_rows(const float *x, size_t x_stride, const float *inverse, const float *w,
                               const float *dy, size_t dy_stride, const float *residual, size_t residual_stride,
                               size_t rows, size_t n, float *dx, size_t dx_stride) {
    kernels()->rms_norm_backward(x, x_stride, inverse, w, dy, dy_stride, residual, residual_stride, rows, n, dx, dx_stride);
}

void pt_rope_rows(float *x, size_t x_stride, size_t rows, size_t heads, size_t head_dim,
                  const float *cos_table, const float *sin_table, size_t table_stride, int inverse) {
    kernels()->rope(x, x_stride, rows, heads, head_dim, cos_table, sin_table, table_stride, inverse);
}

void pt_silu_mul(const float *gate, const float *up, size_t n, float *out) { kernels()->silu_mul(gate, up, n, out); }

void pt_silu_mul_backward(const float *gate, const float *up, const float *dout, size_t n,
                          float *act, float *dgate, float *dup) {
    kernels()->silu_mul_backward(gate, up, dout, n, act, dgate, dup);
}

void pt_softmax_prefix_rows(float *p, size_t stride, size_t rows, size_t visible, size_t width) {
    kernels()->softmax_prefix(p, stride, rows, visible, width);
}

void pt_softmax_backward_prefix_rows(const float *p, size_t p_stride, float *dp, size_t dp_stride,
                                     size_t rows, size_t visible, size_t width) {
    kernels()->softmax_backward_prefix(p, p_stride, dp, dp_stride, rows, visible, width);
}

float pt_softmax_cross_entropy(float *z, size_t n, size_t target, float scale) {
    return kernels()->softmax_cross_entropy(z, n, target, scale);
}

void pt_adamw(float *p, const float *g, float *m, float *v, size_t n, float clip, float b1, float b2,
              float c1, float c2, float eps, float lr, float decay) {
    kernels()->adamw(p, g, m, v, n, clip, b1, b2, c1, c2, eps, lr, decay);
}

double pt_sum_squares(const float *g, size_t n) { return kernels()->sum_squares_double(g, n); }
