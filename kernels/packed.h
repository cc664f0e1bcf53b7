/* Packed (repacked-at-load) weight layouts for matrix products where one SIMD lane serves one output
 * row, so no horizontal sums and one scale multiply per block serve 16 rows (llama.cpp does the same
 * with its "repack" buffers: ggml-cpu/repack.cpp, gemv/gemm_q4_0_8x8_q8_0).
 *
 * KERN_PACKED_Q4_0_16 (Q4_0 weights x Q8_0 activations). Rows are taken in groups of 16; group g,
 * block column b (32 weights) is 288 bytes = the same as the 16 original blocks (16 x 18 bytes):
 *   bytes   0..31 : d of rows 0..15 (f16)
 *   bytes 32..287 : 4 chunks of 64 bytes; chunk q, bytes 4r..4r+3 = row r's qs[4q..4q+3]
 * so a 64-byte load gives, per 32-bit lane r, the codes of row r for elements 4q..4q+3 (low nibbles)
 * and 16+4q..16+4q+3 (high nibbles) -- the operands of one dpbusd / sdot against 4 broadcast
 * activation bytes. The packed copy holds ne1 / 16 groups (nb blocks each, group-major), then the
 * ne1 % 16 remaining rows in the file layout. Same layout on every CPU; packing is a byte shuffle.
 *
 * KERN_PACKED_Q8_0_16 (Q8_0 x Q8_0): the same with 544-byte group blocks (16 x 34): 16 f16 d, then 8
 * chunks of 64 bytes, chunk q bytes 4r..4r+3 = row r's qs[4q..4q+3]. dpbusd wants one unsigned
 * operand, so the kernels take the activation codes offset by 128 (a + 128 in 0..255, prepared once per
 * token) and subtract 128 * sum_j w_j: isum = sum (a + 128) w - 128 sum w = sum a w, exact
 * (|isum| <= 32 * 255 * 128).
 *
 * KERN_PACKED_Q4_K_16 (Q4_K x Q8_K): group block = 16 super-blocks (2304 bytes, the file's size):
 *   bytes    0..31   : d of rows 0..15 (f16);  bytes 32..63: dmin of rows 0..15 (f16)
 *   bytes   64..255  : 12 planes of 16 bytes; plane k byte r = row r's scales[k] (the 6-bit scale/min
 *                      packing of the file, decoded in the kernel: 16 rows per vector operation)
 *   bytes  256..2303 : 32 chunks of 64 bytes; chunk c, bytes 4r..4r+3 = row r's qs[4c..4c+3]
 * Code byte j of a row holds element 64 (j / 32) + j % 32 (low nibble) and that + 32 (high nibble), so
 * chunk c serves sub-blocks 2 (c / 8) (low) and 2 (c / 8) + 1 (high). Float order per row: llama.cpp's
 * repacked Q4_K (two fmaf chains, see kern_packed_q4_K_ref).
 *
 * KERN_PACKED_Q2_K_16 (Q2_K x Q8_K): group block = 16 super-blocks (1344 bytes, the file's size):
 *   bytes    0..63   : d, then dmin of rows 0..15 (f16)
 *   bytes   64..319  : 16 planes of 16 bytes; plane s byte r = row r's scales[s] (scale | min << 4)
 *   bytes  320..1343 : 16 chunks of 64 bytes; chunk c, bytes 4r..4r+3 = row r's qs[4c..4c+3]
 * Code byte j holds elements 128 (j / 32) + 32 k + j % 32 in bits 2k..2k+1 (k = 0..3). Float order per
 * row: llama.cpp's repacked Q2_K (gemv/gemm_q2_K_8x8_q8_K, used on AVX-512 CPUs: the goldens' machine),
 * the two chains of Q4_K with parts of 128 weights (kern_packed_q2_K_ref).
 *
 * Per row the float result is acc = fmaf((float)isum_b, d_w * d_a, acc) over blocks b in order, with
 * isum_b = sum_j (c_j - 8) a_j exact in int32 (|isum| <= 32*8*127): the scalar reference and the SIMD
 * kernels are bit-identical, and the order is llama.cpp's repacked Q4_0 GEMV/GEMM order. */
#ifndef LLMPI_PACKED_H
#define LLMPI_PACKED_H

#include "kernels.h"

enum { KERN_PACKED_NONE = 0, KERN_PACKED_Q4_0_16 = 1, KERN_PACKED_Q8_0_16 = 2, KERN_PACKED_Q4_K_16 = 3,
       KERN_PACKED_Q2_K_16 = 4 };
#define KERN_PACK_ROWS 16

/* Layout the matrix would be packed into on this CPU's active kernel family (KERN_PACKED_NONE if the
 * type has no packed layout or the family has no packed kernel, so packing would not pay). */
uint32_t kern_pack_layout(const kern_matrix *w);
/* Bytes of the packed copy of w in `layout` (0 if not packable). */
size_t kern_packed_bytes(const kern_matrix *w, uint32_t layout);
/* Writes the packed copy of w (file layout) into dst (kern_packed_bytes bytes, 64-byte aligned), then
 * points w at it (w->data = dst, w->packed = layout). Returns 0, or -1 if w cannot be packed. */
int kern_pack_matrix(kern_matrix *w, uint32_t layout, void *dst);

/* Called by kern_matmul for a packed matrix: y[t][r] for every row and token. xq holds the converted
 * activations (n_tokens rows of act_bytes, Q8_0). Runs on the pool. */
void kern_packed_matmul(llmpi_pool *pool, const kern_matrix *w, const uint8_t *xq, size_t act_bytes, int n_tokens,
                        float *y, int64_t ldy, void *extra);
/* Extra scratch kern_packed_matmul needs (per-token block sums and scales). */
size_t kern_packed_scratch_bytes(const kern_matrix *w, int n_tokens);

/* One group of 16 rows x n_tok tokens (n_tok <= KERN_PACK_TILE): for each token t,
 * y[t * ldy + r] = tensor_scale * acc_r (r < 16). grp: the group's packed bytes; nb blocks;
 * da[t * nb + b] activation scale (f32). Q4_0: act_rows[t] are Q8_0 rows (block b's codes at
 * b * act_block_bytes + 2), sa8[t * nb + b] = 8 * sum of the block's codes. Q8_0: act_rows[t] are the
 * codes + 128 as bytes (block b at b * act_block_bytes), sa8 unused. */
#define KERN_PACK_TILE 8
/* per_part (K-quant layouts only): accumulate the float sums per part of a super-block (Q4_K: 64
 * weights, Q2_K: 128) instead of once per super-block -- llama.cpp's 4-token GEMM does the former and
 * its GEMV (the batch's last n % 4 tokens, and decode) the latter; kern_packed_matmul follows the same
 * split so that results are llama.cpp's bit for bit. */
typedef void (*kern_packed_fn)(const uint8_t *grp, int64_t nb, const uint8_t *const *act_qs_rows,
                               size_t act_block_bytes, const float *da, const int32_t *sa8, int n_tok,
                               float tensor_scale, float *y, int64_t ldy, bool per_part);
void kern_packed_q4_0_ref(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,
                          const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy, bool per_part);
#if defined(__x86_64__)
void kern_packed_q4_0_avx512(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,
                             const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy, bool per_part);
#endif
void kern_packed_q8_0_ref(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,
                          const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy, bool per_part);
#if defined(__x86_64__)
void kern_packed_q8_0_avx512(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,
                             const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy, bool per_part);
#endif
/* Q4_K: act_rows[t] are Q8_K rows (block b at b * act_block_bytes); da and sa8 unused (NULL). */
void kern_packed_q4_K_ref(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,
                          const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy, bool per_part);
#if defined(__x86_64__)
void kern_packed_q4_K_avx512(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,
                             const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy, bool per_part);
#endif
void kern_packed_q2_K_ref(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,
                          const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy, bool per_part);
#if defined(__x86_64__)
void kern_packed_q2_K_avx512(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,
                             const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy, bool per_part);
#endif
/* NEON (kernels/packed_neon.c): "neon" family (ARMv8.0) and "neon-dotprod" (SDOT by lane); same contract,
 * bit-identical to the references above. */
#if defined(__aarch64__)
#define KERN_PACKED_NEON_DECL(name)                                                                          \
    void name(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,       \
              const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy, bool per_part);
KERN_PACKED_NEON_DECL(kern_packed_q4_0_neon)
KERN_PACKED_NEON_DECL(kern_packed_q8_0_neon)
KERN_PACKED_NEON_DECL(kern_packed_q4_K_neon)
KERN_PACKED_NEON_DECL(kern_packed_q2_K_neon)
#if defined(__ARM_FEATURE_DOTPROD)
KERN_PACKED_NEON_DECL(kern_packed_q4_0_neon_dotprod)
KERN_PACKED_NEON_DECL(kern_packed_q8_0_neon_dotprod)
KERN_PACKED_NEON_DECL(kern_packed_q4_K_neon_dotprod)
KERN_PACKED_NEON_DECL(kern_packed_q2_K_neon_dotprod)
#endif
#undef KERN_PACKED_NEON_DECL
#endif
/* The packed kernel for a layout under the active family (the reference when the family has none). */
kern_packed_fn kern_packed_kernel(uint32_t layout, const char **impl);
kern_packed_fn kern_packed_q4_0_kernel(const char **impl);   /* = kern_packed_kernel(Q4_0_16) */

#endif
