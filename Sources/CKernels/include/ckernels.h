// Hot float32 kernels in C, compiled for AVX-512, AVX2+FMA and a portable fallback, chosen at run
// time by CPU support (Swift has no per-function target attributes). Called only from the
// Tensor module, which wraps them in safe types.
#pragma once
#include <stddef.h>
#include "rowkernels.h"
#include "blockkernels.h"
#include "allocator.h"

/// y[j][r] (+)= dot(w[r], x[j]) for weight rows r in [start, end) and input rows j in [0, k).
/// w: rows of `n` floats `w_stride` apart; x: k rows `x_stride` apart; y: k rows `y_stride` apart.
void pt_matvec_rows(const float *w, size_t w_stride, size_t n,
                    const float *x, size_t x_stride, size_t k,
                    float *y, size_t y_stride,
                    size_t start, size_t end, int accumulate);

/// The instruction set the kernels use on this CPU: "avx512", "avx2" or "portable".
const char *pt_kernel_isa(void);

/// y[c] += Σ_j t[j] · bt[j][c] for columns c in [start, end): a product with a matrix stored
/// transposed (bt: r rows of length ≥ end, `bt_stride` apart). Used for LoRA's B, whose rows are
/// only r long: reading Bᵀ by rows keeps every access a long vector instead of r-float dot products.
void pt_matvec_transposed(const float *bt, size_t bt_stride, size_t r, const float *t,
                          float *y, size_t start, size_t end);

/// Both kernels with an explicit instruction set (0 portable, 1 AVX2, 2 AVX-512), so tests cover
/// every variant on one machine. Return 0, or -1 (nothing computed) when this CPU lacks the set.
int pt_matvec_rows_isa(int isa, const float *w, size_t w_stride, size_t n,
                       const float *x, size_t x_stride, size_t k,
                       float *y, size_t y_stride, size_t start, size_t end, int accumulate);
int pt_matvec_transposed_isa(int isa, const float *bt, size_t bt_stride, size_t r, const float *t,
                             float *y, size_t start, size_t end);
