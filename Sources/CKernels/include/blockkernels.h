// Kernels on weights kept in GGML's block formats (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
// and the K-quants Q4_K, Q5_K, Q6_K of 256-value super-blocks), read in place
// from the mapped file: matrix-vector products for decode against activation rows quantised once
// to 8-bit blocks (integer dot products per block: AVX-512 VNNI, AVX2 maddubs, or portable C),
// dequantisation of a range of rows into float32 (the tiles prefill and training hand to sgemm),
// and the quantisers that turn float32 rows into Q8_0 or Q4_0 blocks at load. Each has variants
// chosen at run time by CPU support, and an explicit choice for tests. Called only from the Tensor
// module, which wraps them in safe types.
#pragma once
#include <stddef.h>
#include <stdint.h>

/// The GGML type ids these kernels take (as stored in GGUF files).
enum {
    PT_BLOCK_F32 = 0, PT_BLOCK_F16 = 1, PT_BLOCK_Q4_0 = 2, PT_BLOCK_Q4_1 = 3, PT_BLOCK_Q5_0 = 6,
    PT_BLOCK_Q5_1 = 7, PT_BLOCK_Q8_0 = 8, PT_BLOCK_Q4_K = 12, PT_BLOCK_Q5_K = 13, PT_BLOCK_Q6_K = 14,
    PT_BLOCK_BF16 = 30
};

/// Quantises k rows of n floats (n a multiple of 32; rows `x_stride` apart) to 8-bit blocks:
/// per block of 32, d = max|x| / 127 and q = round(x / d), written to q[j·n + i], d to
/// scales[j·n/32 + b] and d·Σq to sums[j·n/32 + b].
void pt_quantize_rows_q8(const float *x, size_t x_stride, size_t k, size_t n,
                         int8_t *q, float *scales, float *sums);

/// y[j][r] (+)= dot(w[r], x[j]) for weight rows r in [start, end) of a matrix in `type` (rows
/// `row_bytes` apart, n columns, a whole number of the type's blocks: 32 values, 256 for the
/// K-quants) and k ≤ 16 input rows. Float types read `x` (rows `x_stride`
/// apart); block types read the rows quantised by `pt_quantize_rows_q8` (q, scales, sums).
/// `isa`: −1 the CPU's best, 0 portable, 1 AVX2, 2 AVX-512 VNNI. Returns 0, or −1 (nothing
/// computed) for an unknown type, k > 16, or an instruction set this CPU lacks.
int pt_block_matvec(int isa, int type, const void *w, size_t row_bytes, size_t n,
                    const float *x, size_t x_stride, const int8_t *q, const float *scales, const float *sums,
                    size_t k, float *y, size_t y_stride, size_t start, size_t end, int accumulate);

/// Expands rows [start, end) of a matrix in `type` (rows `row_bytes` apart, n columns) to float32
/// rows `out_stride` apart. Returns 0, or −1 for an unknown type or an instruction set this CPU lacks.
int pt_block_dequantize_rows(int isa, int type, const void *w, size_t row_bytes, size_t n,
                             size_t start, size_t end, float *out, size_t out_stride);

/// Quantises one row of n floats to Q8_0 or Q4_0 blocks (n a multiple of 32) as llama.cpp's
/// reference quantisers do, or to BF16 (any n; round to nearest even, as gguf-py and PyTorch do);
/// returns 0, or −1 for another type.
int pt_block_quantize_row(int type, const float *x, size_t n, void *out);

/// y[o] += dot(w[o], t) for rows o in [start, end) of a matrix of narrow rows (n values each,
/// F32 or BF16, rows `row_bytes` apart), such as LoRA's B (out × r): eight rows are reduced
/// together, so a short row costs no horizontal sum of its own. `isa`: −1 the CPU's best, 0
/// portable, 1 AVX2 (the AVX2 variant serves AVX-512 machines too). Returns 0, or −1 for another
/// type or an instruction set this CPU lacks.
int pt_block_narrow_rows(int isa, int type, const void *w, size_t row_bytes, size_t n, const float *t, float *y,
                         size_t start, size_t end);

/// The instruction set the block kernels use on this CPU: 0 portable, 1 AVX2, 2 AVX-512 VNNI
/// (the best it has, or a lesser one named by $PARATOOL_BLOCK_KERNELS = avx2 | portable).
int pt_block_isa(void);
