// Row and element kernels of LoRA training (forward with stored activations and the backward):
// RMSNorm and its backward, rotary embedding from a position table and its transpose, SiLU-gated
// product and its backward, causal softmax rows and their backward, softmax cross-entropy, and
// the AdamW update. Each has AVX-512, AVX2+FMA and portable variants of one loop body, chosen at
// run time; exp is a vectorisable polynomial (max relative error ~2e-7). Called only from the
// Tensor module, which wraps them in safe types.
#pragma once
#include <stddef.h>

/// out[r] = x[r] · inv[r] · w with inv[r] = 1/√(mean(x[r]²) + eps), for `rows` rows of `n`;
/// `inverse` (rows floats) receives inv. `out` may alias `x`.
void pt_rms_norm_rows(const float *x, size_t x_stride, const float *w, float eps, size_t rows, size_t n,
                      float *out, size_t out_stride, float *inverse);

/// The backward of `pt_rms_norm_rows` given its `inverse`: with u = dy · w,
/// dx[r] = residual[r] + inv·u − inv³·x[r]·(Σ u·x[r]) / n. `residual` may be NULL (nothing added)
/// or alias `dx`.
void pt_rms_norm_backward_rows(const float *x, size_t x_stride, const float *inverse, const float *w,
                               const float *dy, size_t dy_stride, const float *residual, size_t residual_stride,
                               size_t rows, size_t n, float *dx, size_t dx_stride);

/// Rotary embedding (rotate_half layout) of `rows` rows of `heads` heads of `head_dim` columns:
/// row r uses cos/sin row r of the table (`table_stride` apart, head_dim/2 each). `inverse`
/// applies the transpose (the backward: each pair rotated back by its angle).
void pt_rope_rows(float *x, size_t x_stride, size_t rows, size_t heads, size_t head_dim,
                  const float *cos_table, const float *sin_table, size_t table_stride, int inverse);

/// out = silu(gate) · up for n elements, silu(g) = g / (1 + e^−g). `out` may alias either input.
void pt_silu_mul(const float *gate, const float *up, size_t n, float *out);

/// The backward of `pt_silu_mul` for upstream gradient `dout`: dgate = dout · up · σ(g)(1 + g(1 − σ(g))),
/// dup = dout · silu(g); `act` (may be NULL) receives silu(g) · up again. Outputs may alias `dout`.
void pt_silu_mul_backward(const float *gate, const float *up, const float *dout, size_t n,
                          float *act, float *dgate, float *dup);

/// Causal softmax of a block of score rows, in place: row r keeps its first `visible + r` entries
/// (softmax over them) and is zeroed up to `width`.
void pt_softmax_prefix_rows(float *p, size_t stride, size_t rows, size_t visible, size_t width);

/// The backward of `pt_softmax_prefix_rows`: given its output p and dp = ∂L/∂p (in place),
/// dp[r] = p[r] ⊙ (dp[r] − ⟨p[r], dp[r]⟩) over the visible prefix and 0 beyond, up to `width`.
void pt_softmax_backward_prefix_rows(const float *p, size_t p_stride, float *dp, size_t dp_stride,
                                     size_t rows, size_t visible, size_t width);

/// Softmax cross-entropy of one row of n logits against `target`, in place: returns
/// −log softmax(z)[target] and leaves scale · (softmax(z) − onehot(target)) in z.
float pt_softmax_cross_entropy(float *z, size_t n, size_t target, float scale);

/// One AdamW step on n parameters: m = b1·m + (1−b1)·g·clip, v = b2·v + (1−b2)·(g·clip)²,
/// p −= lr · ((m/c1) / (√(v/c2) + eps) + decay · p).
void pt_adamw(float *p, const float *g, float *m, float *v, size_t n, float clip, float b1, float b2,
              float c1, float c2, float eps, float lr, float decay);

/// Σ g² in double precision.
double pt_sum_squares(const float *g, size_t n);

/// The instruction set these kernels use on this CPU (0 portable, 1 AVX2, 2 AVX-512), and a
/// choice for tests (returns −1 when this CPU lacks it, else 0); −1 restores the CPU's choice.
int pt_row_kernels_isa(void);
int pt_row_kernels_force_isa(int isa);
