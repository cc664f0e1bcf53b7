/* Weight quantizers (the llmpi-quantize path), implemented in quant/quantize.c.
 * Each converts nrows rows of n_per_row floats into packed blocks of its type, writing
 * nrows * quant_row_size(type, n_per_row) bytes to dst, and returns that byte count
 * (0 if n_per_row is not a multiple of the type's block size).
 * imatrix: optional per-column importance weights (n_per_row floats) or NULL.
 * The signature matches quant_quantize_fn in quant.h; quant/types.c points the traits table at them.
 * I2_S writes the whole tensor including its 32-byte tail (docs/formats.md §3.19), so callers
 * must pass all rows of the tensor in one call; it returns nrows*n_per_row/4 + 32 (codes, f32
 * scale = max|x| over the tensor, 28 zero bytes), not nrows * row size.
 * All functions are reentrant (stack scratch only); non-I2_S types may be called from several
 * threads on disjoint row ranges. Without imatrix the output is byte-identical to llama-quantize. */
#ifndef LLMPI_QUANTIZE_H
#define LLMPI_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

size_t quantize_f32   (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_f16   (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_bf16  (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q4_0  (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q4_1  (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q5_0  (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q5_1  (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q8_0  (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q2_K  (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q3_K  (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q4_K  (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q5_K  (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_q6_K  (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_iq4_nl(const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_iq4_xs(const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_tq1_0 (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_tq2_0 (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);
size_t quantize_i2_s  (const float *restrict src, void *restrict dst, int64_t nrows, int64_t n_per_row, const float *imatrix);

/* BitNet ternarization (quant/ternary.c, docs/formats.md §5.7). absmean: s = max(mean|w|, 1e-5) over
 * all n values, out[i] = clamp(round_half_even(w[i]/s), -1, 1) * s (computed as llama.cpp's converter
 * does: t / (1/s) in f32). out may equal w. Returns s. The result is ready for TQ1_0/TQ2_0/I2_S. */
float quant_ternarize_absmean(const float *w, float *out, int64_t n);
/* True when every value is 0 or +-s for a single s > 0 (or all are zero): the tensor is already
 * ternary and can be packed losslessly (up to f16 rounding of s for TQ1_0/TQ2_0). *scale_out
 * (may be NULL) receives s, 0 for an all-zero tensor. NaN/inf make it false. */
bool quant_is_ternary(const float *w, int64_t n, float *scale_out);

#endif
