/* kernels/: the compute the forward pass runs on. Matrix products go through the type table
 * (quant/quant.h): activations are converted once to the weight's vec_dot_type, then every output
 * is one vec_dot of a weight row with an activation row. kern_vec_dot() picks the fastest
 * implementation this CPU has for a weight type (SIMD where written, else the scalar reference). */
#ifndef LLMPI_KERNELS_H
#define LLMPI_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "quant.h"
#include "threadpool.h"

/* A weight matrix as stored in the file: ne1 rows of ne0 elements of `type`. */
typedef struct {
    const void *data;
    uint32_t    type;
    int64_t     ne0;          /* input features (row length) */
    int64_t     ne1;          /* output features (rows) */
    size_t      row_bytes;
    float       tensor_scale; /* I2_S per-tensor scale (1 for every other type) */
    uint32_t    act_type;     /* activation type the matmul converts X to; 0 (never an alternative)
                               * = the type's vec_dot_type. Ternary weights may take the other
                               * scheme's type (TQx: I8_S, I2_S: Q8_K; engine act_scheme). */
    uint32_t    packed;       /* 0: rows in the file layout; KERN_PACKED_*: row groups interleaved at load
                               * (kernels/packed.h), data then points at the packed copy */
} kern_matrix;

/* Fastest dot product available for weight type t on this CPU (never NULL for a supported type). */
quant_vec_dot_fn kern_vec_dot(uint32_t t);
/* Fastest dot of weight type w against activation type a (a = 0: its vec_dot_type, same as
 * kern_vec_dot(w)); for the ternary cross pairs of quant_vec_dot_for() the scalar reference unless a
 * family provides one. NULL if the pair is unsupported. (kernels/dispatch.c) */
quant_vec_dot_fn kern_vec_dot_for(uint32_t w, uint32_t a);
/* Four dot products in one pass over a weight row: s[k] = x . y_k with y_k = y + k * y_stride_bytes
 * (k < 4; activation rows already converted to the type's vec_dot_type). Each weight block is decoded
 * once and used against the 4 activation blocks. Results are bit-identical to 4 calls of the
 * kern_vec_dot(t) kernel of the same family (same per-block float operations in the same order), so
 * logits do not depend on how tokens are batched. */
typedef void (*kern_vec_dot4_fn)(int64_t n, float *s, const void *x, const void *y, size_t y_stride_bytes);
/* The 4-column kernel of the family that serves kern_vec_dot(t), or NULL if that family has none
 * (then call kern_vec_dot(t) per column). */
kern_vec_dot4_fn kern_vec_dot_4(uint32_t t);

/* Activation quantizer for vec_dot type t (what kern_matmul converts activations with): a SIMD
 * version where this CPU and the selected family have one (Q8_0, Q8_1, Q8_K on avx2/avx512/neon), else
 * quant_traits(t)->from_float. Output is byte-identical to from_float either way. NULL for an
 * unknown type. */
quant_from_float_fn kern_act_quant(uint32_t t);

/* Name of the kernel family kern_vec_dot picked ("scalar", "avx2", "neon-dotprod", ...). */
const char *kern_vec_dot_impl(uint32_t t);
/* Force a kernel family for every type (tests, benchmarks): "scalar", "avx2", "avx512", "neon",
 * "neon-dotprod", or "auto"/NULL/"" for the best this CPU has. Types the family does not implement
 * still fall back down its chain (kern_vec_dot_impl says which). Returns 0, or -1 (nothing changes)
 * if the name is unknown or the family is not built/available here. $LLMPI_KERNELS sets the initial
 * family the same way. Do not call while matmuls run on other threads. (kernels/dispatch.c) */
int kern_set_impl(const char *name);
/* Name of the family currently selected ("avx512", "scalar", ...). */
const char *kern_get_impl(void);

/* Bytes of scratch kern_matmul needs for n_tokens activation rows against W. */
size_t kern_matmul_scratch_bytes(const kern_matrix *w, int n_tokens);

/* Y[t][0..ne1) = W · X[t][0..ne0) for t < n_tokens. X rows are ne0 floats apart, Y rows ldy apart.
 * scratch: kern_matmul_scratch_bytes() bytes (the converted activations). Runs on the pool. */
void kern_matmul(llmpi_pool *pool, const kern_matrix *w, const float *x, int n_tokens,
                 float *y, int64_t ldy, void *scratch);

/* ---- register-tiled GEMM for float weights (kernels/gemm_float.c; issue #5) ----------------------
 * kern_matmul hands F32 / F16 / BF16 weights with n_tokens >= 2 to kern_gemm_float when
 * kern_gemm_float_available(w): register tiles of 4 rows x up to 6 tokens, one SIMD accumulator
 * per output (llama.cpp's tinyBLAS order on x86, see kernels/gemm_float.h). Same arguments and
 * scratch as kern_matmul. Results do not depend on the thread count or on n_tokens. */
/* True if w is F32/F16/BF16 with its own vec_dot_type activations and the active family has tiles. */
bool kern_gemm_float_available(const kern_matrix *w);
void kern_gemm_float(llmpi_pool *pool, const kern_matrix *w, const float *x, int n_tokens,
                     float *y, int64_t ldy, void *scratch);
/* Tile set in use ("avx512", "avx2", "neon") and its f32 lanes per accumulator; NULL / 0 if none
 * (the "scalar" family). */
const char *kern_gemm_float_impl(void);
int kern_gemm_float_lanes(void);
/* Scalar reference: y[t * ldy + r] = quant_traits(type)->vec_dot(row r, xq row t) * tensor_scale,
 * xq rows already in vec_dot_type, xq_stride bytes apart (sums in double, see quant/vec_dot.c). */
void kern_gemm_float_ref(const kern_matrix *w, const void *xq, size_t xq_stride, int n_tokens,
                         float *y, int64_t ldy);

/* ---- float vector ops (docs/formats.md §4.6 for llama.cpp's exact numerics) ----------------- */
/* y = x / sqrt(mean(x^2) + eps) * w  (sum of squares in double, like ggml); w may be NULL. */
/* All ops below reproduce llama.cpp's x86 AVX-512 CPU backend bit for bit, on every ISA (scalar /
 * avx2 / avx512 / neon versions in kernels/vec_ops*.c are bit-identical; kernels/vec_ops_impl.h). */
void kern_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);
/* In-place softmax of x[0..n) = columns col0..col0+n-1 of a row whose other columns are masked
 * (-inf), as ggml computes it for the whole row: exp by ggml_v_expf in 16-column chunks aligned to
 * column 0, chunk sums in double. (llama.cpp's KQ rows span >= 256 KV cells, so no column ever goes
 * through its scalar expf tail.) NaN anywhere makes the row NaN; a row of only -inf gives NaN. */
void kern_softmax_at(float *x, int64_t n, int64_t col0);
void kern_softmax(float *x, int64_t n);   /* kern_softmax_at(x, n, 0) */
/* out[i] = silu(gate[i]) * up[i] (ggml_vec_swiglu_f32: 16-lane ggml_v_silu, the n % 16 leftovers
 * with libm expf). out may alias gate or up. */
void kern_swiglu(float *out, const float *gate, const float *up, int64_t n);
/* out[i] = gelu(gate[i]) * up[i] (ggml_vec_geglu_f32 with its f16 GELU table). out may alias. */
void kern_geglu(float *out, const float *gate, const float *up, int64_t n);
float kern_silu(float x);  /* x / (1 + expf(-x)), libm expf (ggml's scalar leftover form) */
float kern_gelu(float x);  /* tanh form, through an f16 table like ggml */
/* Rotary embedding of one head vector (n_rot leading dims rotated), NORM (adjacent pairs) or NEOX
 * (i, i + n_rot/2) pairing. cos_sin holds n_rot/2 (cos, sin) pairs for this position. */
void kern_rope(float *x, int n_rot, const float *cos_sin, int neox);
/* (cos, sin) table for one position: theta_i = pos * base^(-2i/n_rot) / freq_factor[i] * freq_scale. */
void kern_rope_cache(float *cos_sin, int n_rot, int pos, float freq_base, float freq_scale,
                     const float *freq_factors, float attn_factor);

/* ---- ternary kernels (TQ1_0, TQ2_0, I2_S): MAD vs LUT (kernels/ternary.c, h4) ----------------------
 * Two kernel families serve the ternary types: "mad" (decode codes, int8 multiply-add: the
 * kern_vec_dot kernels) and "lut" (T-MAC TL1 lookup tables over a repacked 16-row layout,
 * kernels/ternary.h). kern_set_ternary_mode("auto" | "mad" | "lut"; NULL/"" = auto) picks the family;
 * $LLMPI_TERNARY sets the initial mode the same way. "auto" uses a measured static table (see
 * docs/kernels.md, "Ternary kernels"). Returns 0, or -1 (nothing changes) for an unknown name.
 * kern_ternary_impl(t) names what serves type t ("mad-avx512", "lut-avx2", ...; "none" for a
 * non-ternary type). Do not call while matmuls run on other threads. */
int kern_set_ternary_mode(const char *mode);
const char *kern_get_ternary_mode(void);
const char *kern_ternary_impl(uint32_t type);
/* ---- end ternary kernels ---- */

#endif
