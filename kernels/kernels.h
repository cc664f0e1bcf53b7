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
} kern_matrix;

/* Fastest dot product available for weight type t on this CPU (never NULL for a supported type). */
quant_vec_dot_fn kern_vec_dot(uint32_t t);
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
 * version where this CPU and the selected family have one (Q8_0, Q8_K on avx2/avx512/neon), else
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

/* ---- float vector ops (docs/formats.md §4.6 for llama.cpp's exact numerics) ----------------- */
/* y = x / sqrt(mean(x^2) + eps) * w  (sum of squares in double, like ggml); w may be NULL. */
void kern_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);
void kern_softmax(float *x, int64_t n);
float kern_silu(float x);
float kern_gelu(float x);  /* tanh form, through an f16 table like ggml */
/* Rotary embedding of one head vector (n_rot leading dims rotated), NORM (adjacent pairs) or NEOX
 * (i, i + n_rot/2) pairing. cos_sin holds n_rot/2 (cos, sin) pairs for this position. */
void kern_rope(float *x, int n_rot, const float *cos_sin, int neox);
/* (cos, sin) table for one position: theta_i = pos * base^(-2i/n_rot) / freq_factor[i] * freq_scale. */
void kern_rope_cache(float *cos_sin, int n_rot, int pos, float freq_base, float freq_scale,
                     const float *freq_factors, float attn_factor);
#endif
