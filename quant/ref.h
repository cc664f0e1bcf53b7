/* Per-type scalar reference functions behind the traits table (quant/types.c). SIMD kernels
 * (kernels/) must produce the same int8 activation codes and the same integer partial sums as
 * these; only float accumulation order may differ.
 *
 *   dequantize_row_<t>(x, y, n)   to_float: n elements (multiple of the block size) -> f32,
 *                                 bit-identical to ggml (quant/dequant.c)
 *   quantize_row_<t>_act(x, y, n) from_float for activations (quant/act_quant.c)
 *   vec_dot_<w>_<a>(n, s, x, y)   *s = dot(weight row x, activation row y) (quant/vec_dot.c)
 *
 * Layout conventions beyond quant/blocks.h:
 *   I2_S row (weights): n/4 bytes of 2-bit codes in 128-element groups; the per-tensor f32 scale
 *     lives after the whole tensor (quant_i2s_tensor_scale), so dequantize_row_i2_s emits the
 *     ternary value t = code - 1 in {-1, 0, +1} (code 3, never written, gives +2) and
 *     quant_dequantize_tensor multiplies by the scale.
 *   I8_S row (activations, one per token): bytes [0, n) int8 codes a_k, then at byte n an f32
 *     scale s (codes = x * s, so x ~= a / s) and at byte n+4 the i32 sum A = sum a_k.
 *     Row bytes = n + 8 (quant_row_size(LLMPI_TYPE_I8_S, n)); fields are read with memcpy. */
#ifndef LLMPI_QUANT_REF_H
#define LLMPI_QUANT_REF_H

#include <stdint.h>
#include <string.h>

#include "quant.h"

/* Byte offsets of the I8_S row trailer for a row of n codes. */
#define I8S_SCALE_OFFSET(n) ((size_t)(n))
#define I8S_SUM_OFFSET(n)   ((size_t)(n) + 4)
#define I8S_ROW_BYTES(n)    ((size_t)(n) + 8)

/* ---- to_float (quant/dequant.c) ---------------------------------------------------------- */
void dequantize_row_f32   (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_f16   (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_bf16  (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q4_0  (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q4_1  (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q5_0  (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q5_1  (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q8_0  (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q8_1  (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q2_K  (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q3_K  (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q4_K  (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q5_K  (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q6_K  (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_q8_K  (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_iq4_nl(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_iq4_xs(const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_tq1_0 (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_tq2_0 (const void *restrict x, float *restrict y, int64_t n);
void dequantize_row_i2_s  (const void *restrict x, float *restrict y, int64_t n); /* ternary t, no scale */
void dequantize_row_i8_s  (const void *restrict x, float *restrict y, int64_t n); /* a_k / s */

/* Unpack the 6-bit (scale, min) pair j (0..7) of a Q4_K / Q5_K block's 12 scale bytes. */
void q4k_get_scale_min(int j, const uint8_t *scales, uint8_t *sc, uint8_t *m);

/* ---- activation quantizers (quant/act_quant.c) ------------------------------------------- */
/* Q8_0 / Q8_1 come in the three variants llama.cpp builds use (docs/formats.md §4.1-4.2):
 *   _act: x86 AVX2/AVX-512 build (id = 127/amax, round half to even) - what the logits goldens used;
 *         this is the from_float in the traits table.
 *   _ref: ggml reference / scalar build (id = 1/d, roundf: ties away from zero).
 *   _arm: ARM NEON build (id = 1/d, round half to even). */
void quantize_row_q8_0_act(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q8_0_ref(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q8_0_arm(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q8_1_act(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q8_1_ref(const float *restrict x, void *restrict y, int64_t n);
void quantize_row_q8_1_arm(const float *restrict x, void *restrict y, int64_t n);
/* Q8_K (§4.4; every build uses the reference routine). bsums are zero for an all-zero block. */
void quantize_row_q8_K_act(const float *restrict x, void *restrict y, int64_t n);
/* F32 (copy), F16, BF16 (round to nearest even). */
void quantize_row_f32_act (const float *restrict x, void *restrict y, int64_t n);
void quantize_row_f16_act (const float *restrict x, void *restrict y, int64_t n);
void quantize_row_bf16_act(const float *restrict x, void *restrict y, int64_t n);
/* I8_S (BitNet fork, §8.3): per-row absmax int8, layout above. */
void quantize_row_i8_s_act(const float *restrict x, void *restrict y, int64_t n);

/* ggml's nearest_int: round half to even through the 1.5*2^23 trick; valid for |x| <= 4194303. */
static inline int quant_nearest_int(float x) {
    const float shifted = x + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    return (bits & 0x007FFFFF) - 0x00400000;
}

/* ---- scalar reference dot products (quant/vec_dot.c) ------------------------------------- */
void vec_dot_f32_f32    (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_f16_f16    (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_f16_f32    (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_bf16_bf16  (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q4_0_q8_0  (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q4_1_q8_1  (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q5_0_q8_0  (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q5_1_q8_1  (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q8_0_q8_0  (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q2_K_q8_K  (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q3_K_q8_K  (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q4_K_q8_K  (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q5_K_q8_K  (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_q6_K_q8_K  (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_iq4_nl_q8_0(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_iq4_xs_q8_K(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_tq1_0_q8_K (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_tq2_0_q8_K (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
/* I2_S . I8_S: *s = (S - A) / s_act = (sum_k t_k * a_k) / s_act, i.e. the ternary dot product of the
 * dequantized activations. The per-tensor weight scale is NOT applied: the caller multiplies by
 * quant_i2s_tensor_scale() afterwards, which reproduces the fork's ((S - A) / s) * scale exactly. */
void vec_dot_i2_s_i8_s  (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
/* Ternary cross pairs (the other activation scheme, quant_vec_dot_for):
 *   TQ1_0/TQ2_0 . I8_S: (sum_b d_b * sum_k t_k a_k) / s_act  (BitNet's per-row int8 activations);
 *   I2_S . Q8_K: sum_b d_b * sum_k t_k a_k, n % 256 == 0, tensor scale left to the caller (ggml's). */
void vec_dot_tq1_0_i8_s (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_tq2_0_i8_s (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);
void vec_dot_i2_s_q8_K  (int64_t n, float *restrict s, const void *restrict x, const void *restrict y);

#endif
