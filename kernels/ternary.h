/* Ternary weight kernels (TQ1_0, TQ2_0, I2_S): the lookup-table ("LUT", T-MAC TL1 style) family,
 * its repacked weight layout, and the MAD/LUT mode selector (kern_set_ternary_mode, kernels.h).
 *
 * MAD ("multiply-add") kernels decode the 2-bit / base-3 codes of one weight row and multiply them
 * with the int8 activations (maddubs / dpbusd / sdot); they live in kernels/dot_*.c and
 * kernels/ternary_avx512.c and have the ordinary quant_vec_dot_fn contract.
 *
 * LUT kernels work on a tile of KERN_TL1_ROWS = 16 weight rows at once. Elements (2j, 2j+1) of a
 * row form pair j; its two codes c0, c1 in 0..3 (value c - 1; code 3 = +2 as in the scalar
 * references) become the 4-bit index c0 + 4 c1. Per activation row, for every pair j a table
 *     T_j[c0 + 4 c1] = (c0 - 1) a[2j] + (c1 - 1) a[2j+1]        |T| <= 512 -> int16
 * is built once and stored as two 16-byte halves (low bytes, high bytes) so that one byte shuffle
 * (pshufb / vpshufb / tbl) looks up the low or high bytes of 16 rows' entries for the same pair;
 * unpacking low/high bytes gives the exact int16 entries, which are summed in int16 (<= 32 entries
 * per lane between flushes: |sum| <= 16384) and flushed to int32 every 128 elements.
 *
 * ---- TL1 packed layout (same on every CPU) ---------------------------------------------------------
 * Rows are padded to a multiple of 16 (pad rows have index 5 = codes (1,1) = 0, results dropped).
 * A tile (16 rows) is, for each 128-element chunk k = 0 .. ne0/128 - 1, 512 bytes = 8 octets of
 * 64 bytes; octet o covers pairs 8o .. 8o+7 of the chunk (p = local pair 0..7):
 *     byte      r  (r < 16): idx(row r, p0) | idx(row r, p2) << 4
 *     byte 16 + r          : idx(row r, p1) | idx(row r, p3) << 4
 *     byte 32 + r          : idx(row r, p4) | idx(row r, p6) << 4
 *     byte 48 + r          : idx(row r, p5) | idx(row r, p7) << 4
 * followed (TQ1_0/TQ2_0 only) by the f32 block scales: for each 256-element block b, 16 floats
 * d[row] = f16 d of that row's block b (exact widening). Size per tile: ne0 * 4 bytes of indices
 * (2 bits per weight) + ne0 / 16 bytes of scales (TQ only), i.e. per row 0.25 ne0 + ne0/256 * 4
 * bytes = 68 bytes per 256 weights for TQ1_0/TQ2_0 (file: TQ2_0 66 -> x1.03, TQ1_0 54 -> x1.26)
 * and ne0/4 bytes for I2_S (same as the file).
 *
 * ---- activation tables (per activation row) --------------------------------------------------------
 * For each 128-element chunk, 8 octets of 256 bytes; octet o (pairs p0..p7 as above, Tp.lo / Tp.hi
 * the 16 low / high bytes of T_p):
 *     [  0, 64) T0.lo T1.lo T4.lo T5.lo      [ 64,128) T0.hi T1.hi T4.hi T5.hi
 *     [128,192) T2.lo T3.lo T6.lo T7.lo      [192,256) T2.hi T3.hi T6.hi T7.hi
 * so a 32-byte load at +0/+64/+128/+192 serves AVX2 (pairs 0-3, then +32 for pairs 4-7), one 64-byte
 * load serves AVX-512 and 16-byte loads serve NEON. 16 bytes of table per activation element.
 *
 * Results are bit-identical to the scalar references (quant/vec_dot.c): integer sums are exact and
 * each row does the reference's float operations in the same order (TQ: per 256-block
 * sumf += (float)sumi * (d_w * d_act); I2_S: (float)(S - A) / s_act). */
#ifndef LLMPI_TERNARY_H
#define LLMPI_TERNARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "blocks.h"
#include "kernels.h"

#define KERN_TL1_ROWS  16
#define KERN_TL1_CHUNK 128                     /* elements per index chunk */
#define KERN_TL1_CHUNK_BYTES 512               /* index bytes per chunk per tile */
#define KERN_TL1_TABLE_BYTES_PER_ELEM 16       /* activation table bytes per element */

/* A ternary matrix repacked for the LUT kernels. */
typedef struct {
    uint32_t type;          /* source type: TQ1_0, TQ2_0 or I2_S */
    int64_t  ne0, ne1;      /* row length, rows */
    int64_t  n_tiles;       /* ceil(ne1 / 16) */
    size_t   tile_bytes;    /* bytes per tile (layout above) */
    float    tensor_scale;  /* copied from the source kern_matrix (I2_S; 1 otherwise) */
    uint8_t *data;          /* n_tiles * tile_bytes, 64-byte aligned, owned (kern_tl1_free) */
} kern_tl1_matrix;

/* True if type t has LUT kernels (TQ1_0, TQ2_0, I2_S). */
bool kern_tl1_supported(uint32_t t);
/* Bytes kern_tl1_pack will allocate for w (0 if w cannot be packed). */
size_t kern_tl1_packed_bytes(const kern_matrix *w);
/* Repack w (rows of its native layout, row_bytes apart) into out. ne0 must be a multiple of 128
 * (256 for TQ) and at most 2^22 (int32 row sums for I2_S). Returns 0, or -1 (out zeroed) on an
 * unsupported type/shape or allocation failure. */
int  kern_tl1_pack(const kern_matrix *w, kern_tl1_matrix *out);
void kern_tl1_free(kern_tl1_matrix *m);

/* Activation table for one activation row already converted to the type's vec_dot_type (Q8_K for
 * TQ, I8_S for I2_S): ne0 * 16 bytes into tables (any alignment; 64 is best). */
void kern_tl1_build_table(uint32_t type, int64_t ne0, const void *act_row, uint8_t *tables);

/* Table builder type (kern_tl1_build_table is the scalar reference; SIMD builders are
 * byte-identical). kern_tl1_table_builder() returns the one for the active family. */
typedef void (*kern_tl1_table_fn)(uint32_t type, int64_t ne0, const void *act_row, uint8_t *tables);
kern_tl1_table_fn kern_tl1_table_builder(void);

/* One tile: out[r] for r < 16 = the reference vec_dot of tile row r with the activation row
 * (before the tensor scale). act_row is the converted row (for d / I8_S trailer), tables its table. */
typedef void (*kern_tl1_tile_fn)(const kern_tl1_matrix *w, int64_t tile, const void *act_row,
                                 const uint8_t *tables, float out[KERN_TL1_ROWS]);
/* Scalar reference over the packed layout (reads indices and tables like the SIMD kernels). */
void kern_tl1_tile_ref(const kern_tl1_matrix *w, int64_t tile, const void *act_row,
                       const uint8_t *tables, float out[KERN_TL1_ROWS]);
/* Four consecutive tiles (tile .. tile+3, all must exist) in one pass sharing the table loads:
 * out[16 k + r] is exactly kern_tl1_tile_fn's out[r] for tile + k. */
typedef void (*kern_tl1_tile4_fn)(const kern_tl1_matrix *w, int64_t tile, const void *act_row,
                                  const uint8_t *tables, float out[4 * KERN_TL1_ROWS]);
/* The 4-tile kernel matching kern_tl1_tile_kernel()'s family, or NULL if that family has none. */
kern_tl1_tile4_fn kern_tl1_tile4_kernel(void);

/* Best LUT tile kernel for this CPU and the active kernel family (kern_set_impl): avx512, avx2,
 * neon or the scalar reference. *impl (if not NULL) gets its name. */
kern_tl1_tile_fn kern_tl1_tile_kernel(const char **impl);
/* The tile kernel of a named family ("scalar", "avx2", "avx512", "neon"), or NULL if that family is
 * not built or not usable on this CPU (tests). */
kern_tl1_tile_fn kern_tl1_tile_kernel_named(const char *family);

/* Scratch bytes for kern_tl1_matmul with n_tokens activation rows. */
size_t kern_tl1_scratch_bytes(const kern_tl1_matrix *w, int n_tokens);
/* Y[t][0..ne1) = W · X[t] like kern_matmul (tensor scale applied), through the LUT kernels. */
void kern_tl1_matmul(llmpi_pool *pool, const kern_tl1_matrix *w, const float *x, int n_tokens,
                     float *y, int64_t ldy, void *scratch);

/* Mode resolved for type t under the current kern_set_ternary_mode(): true = LUT. For "auto" this
 * is the type's choice at its usual shapes; kern_ternary_use_lut_shape() is the per-shape one
 * kern_matmul follows. */
bool kern_ternary_use_lut(uint32_t t);
bool kern_ternary_use_lut_shape(uint32_t t, int64_t ne0, int64_t ne1);

/* ---- kern_matmul hook (kernels/matmul.c) ----
 * Until weights can be packed at load (h1's packed-weight framework), the LUT path packs a matrix
 * on its first LUT matmul and keeps the packed copy in a process-wide cache keyed by (data pointer,
 * type, shape) and verified by a signature of 16 sampled 64-byte spans (a different matrix later
 * loaded at the same address is repacked). The copy costs 1.03x (TQ2_0, I2_S: 1x) to 1.26x (TQ1_0)
 * of the matrix in addition to the file's bytes. Only tokens batches of <= KERN_TL1_MAX_TOKENS take
 * the LUT path (generation); larger batches use the MAD kernels (4-column kernels, compute bound). */
#define KERN_TL1_MAX_TOKENS 4
/* Extra scratch the hook may need (0 for a non-ternary or cross-scheme matrix). */
size_t kern_ternary_scratch_bytes(const kern_matrix *w, int n_tokens);
/* Runs Y = W X through the LUT family and returns true if the mode picks LUT for w (native
 * activation type, <= KERN_TL1_MAX_TOKENS tokens, packable shape); else returns false untouched. */
bool kern_ternary_matmul(llmpi_pool *pool, const kern_matrix *w, const float *x, int n_tokens,
                         float *y, int64_t ldy, void *scratch);
/* Frees every cached packed matrix (call when no matmul runs; tests, model unload). */
void kern_ternary_cache_clear(void);

/* ---- MAD row groups: TQ2_0 x Q8_K, 4 weight rows per pass (generation) ------------------------------
 * One token's Q8_K activation row is rearranged once per matmul (kern_tq2_prepare_act) so a kernel can
 * load each weight block's 64 code bytes with one load and reuse the activation loads for 4 rows:
 *   qs[64 k + p]      = a[32 k + p]        (k = 0..3, p = 0..31: bits 2k of code byte p, half 0)
 *   qs[64 k + 32 + p] = a[128 + 32 k + p]  (bits 2k of code byte 32 + p, half 1)
 *   neg_bsum[l] = -(bsums[2l] + bsums[2l+1]) for l < 8, 0 for l >= 8 (the "- 1" of the codes)
 * Per row the result is the scalar reference's (quant/vec_dot.c vec_dot_tq2_0_q8_K), bit for bit: the
 * block's exact int32 sum, then sumf += (float)sumi * (d_w * d_a) block by block. */
typedef struct {
    int8_t  qs[QK_K];
    int32_t neg_bsum[16];
} kern_tq2_act_block;   /* 320 bytes: 64-byte multiple, so an aligned array keeps every block aligned */

/* out[b], d[b] for the n / 256 blocks of a Q8_K row (any alignment). */
void kern_tq2_prepare_act(int64_t n, const void *q8k_row, kern_tq2_act_block *out, float *d);
/* s[r] = vec_dot_tq2_0_q8_K(n, row x + r * row_bytes, activation) for r < 4; a / d from
 * kern_tq2_prepare_act. Weight rows may sit at any address. */
typedef void (*kern_tq2_rows4_fn)(int64_t n, float s[4], const uint8_t *x, size_t row_bytes,
                                  const kern_tq2_act_block *a, const float *d);
/* Scalar reference over the prepared layout (reads it like the SIMD kernels). */
void kern_tq2_rows4_ref(int64_t n, float s[4], const uint8_t *x, size_t row_bytes,
                        const kern_tq2_act_block *a, const float *d);
/* The 4-row kernel of the family serving TQ2_0 (kern_vec_dot_impl), or NULL if that family has none
 * (then kern_matmul uses the one-row kernels). Bit-identical to kern_vec_dot(TQ2_0) of that family. */
kern_tq2_rows4_fn kern_tq2_rows4_kernel(void);

/* d of Q8_K block b of a converted activation row (any alignment: rows may sit at odd offsets). */
static inline float kern_tl1_q8k_d(const void *act_row, int64_t b) {
    float d;
    memcpy(&d, (const uint8_t *)act_row + (size_t)b * sizeof(block_q8_K) + offsetof(block_q8_K, d), sizeof d);
    return d;
}

/* ---- per-ISA tile kernels (kernels/ternary_*.c) ---- */
#if defined(__x86_64__)
void kern_tl1_tile_avx2(const kern_tl1_matrix *w, int64_t tile, const void *act_row,
                        const uint8_t *tables, float out[KERN_TL1_ROWS]);
void kern_tl1_build_table_avx2(uint32_t type, int64_t ne0, const void *act_row, uint8_t *tables);
void kern_tl1_tile_avx512(const kern_tl1_matrix *w, int64_t tile, const void *act_row,
                          const uint8_t *tables, float out[KERN_TL1_ROWS]);
void kern_tl1_tile4_avx512(const kern_tl1_matrix *w, int64_t tile, const void *act_row,
                           const uint8_t *tables, float out[4 * KERN_TL1_ROWS]);
/* AVX-512 MAD kernels (kernels/ternary_avx512.c), quant_vec_dot_fn contract. */
void kern_dot_tq1_0_q8_K_avx512(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy);
void kern_dot_i2_s_i8_s_avx512(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy);
/* TQ2_0 x Q8_K, bit-identical to the scalar reference (one row; and the 4-row kernel above). */
void kern_dot_tq2_0_q8_K_avx512(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy);
void kern_tq2_rows4_avx512(int64_t n, float s[4], const uint8_t *x, size_t row_bytes,
                           const kern_tq2_act_block *a, const float *d);
#endif
#if defined(__aarch64__)
void kern_tl1_tile_neon(const kern_tl1_matrix *w, int64_t tile, const void *act_row,
                        const uint8_t *tables, float out[KERN_TL1_ROWS]);
void kern_tl1_build_table_neon(uint32_t type, int64_t ne0, const void *act_row, uint8_t *tables);
#endif

#endif
