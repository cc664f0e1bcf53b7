/* quant/: the one source of truth for weight and activation formats.
 *
 * Type ids are ggml's (docs/formats.md §2), so a GGUF tensor's type field indexes this table
 * directly. I2_S (36) and I8_S (37) are the BitNet fork's ids; upstream ggml treats them as removed.
 *
 * Everything that needs to know about a format (GGUF validation, the model loader, the matmul
 * dispatch, llmpi-quantize, tests, benchmarks) loops over quant_traits(); adding a type means one
 * row in quant/types.c. Block layouts live in quant/blocks.h. */
#ifndef LLMPI_QUANT_H
#define LLMPI_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    LLMPI_TYPE_F32    = 0,
    LLMPI_TYPE_F16    = 1,
    LLMPI_TYPE_Q4_0   = 2,
    LLMPI_TYPE_Q4_1   = 3,
    LLMPI_TYPE_Q5_0   = 6,
    LLMPI_TYPE_Q5_1   = 7,
    LLMPI_TYPE_Q8_0   = 8,
    LLMPI_TYPE_Q8_1   = 9,   /* activation only */
    LLMPI_TYPE_Q2_K   = 10,
    LLMPI_TYPE_Q3_K   = 11,
    LLMPI_TYPE_Q4_K   = 12,
    LLMPI_TYPE_Q5_K   = 13,
    LLMPI_TYPE_Q6_K   = 14,
    LLMPI_TYPE_Q8_K   = 15,  /* activation only */
    LLMPI_TYPE_IQ4_NL = 20,
    LLMPI_TYPE_IQ4_XS = 23,
    LLMPI_TYPE_BF16   = 30,
    LLMPI_TYPE_TQ1_0  = 34,
    LLMPI_TYPE_TQ2_0  = 35,
    LLMPI_TYPE_I2_S   = 36,  /* BitNet fork: 2-bit ternary, per-tensor f32 scale (see below) */
    LLMPI_TYPE_I8_S   = 37,  /* BitNet fork activation: per-row int8 with absmax scale */
    LLMPI_TYPE_COUNT  = 43   /* one past the largest ggml id we know of */
} llmpi_type;

/* Row conversion to f32: y[0..n) from n elements of packed x. n must be a multiple of blck_size. */
typedef void (*quant_to_float_fn)(const void *restrict x, float *restrict y, int64_t n);
/* Row conversion from f32 (activation path, fast, no search): x[0..n) -> packed y. */
typedef void (*quant_from_float_fn)(const float *restrict x, void *restrict y, int64_t n);
/* Weight quantizer (the llmpi-quantize path): nrows rows of n_per_row floats -> packed dst.
 * imatrix: optional per-column importance weights (n_per_row floats) or NULL.
 * Returns bytes written (nrows * row size), or 0 if n_per_row is not a multiple of the block size. */
typedef size_t (*quant_quantize_fn)(const float *restrict src, void *restrict dst, int64_t nrows,
                                    int64_t n_per_row, const float *imatrix);
/* Dot product of n elements: *s = dot(x as this type, y as vec_dot_type). Scalar reference. */
typedef void (*quant_vec_dot_fn)(int64_t n, float *restrict s, const void *restrict x, const void *restrict y);

typedef struct {
    const char *name;               /* ggml's name: "Q4_K", "F16", ... */
    int64_t     blck_size;          /* elements per block (1 for plain floats) */
    size_t      type_size;          /* bytes per block */
    bool        is_quantized;
    bool        is_activation_only; /* Q8_1, Q8_K, I8_S: never a weight in a file */
    quant_to_float_fn   to_float;   /* exact dequantization (bit-compatible with ggml) */
    quant_from_float_fn from_float; /* activation quantizer when this type is some weight's vec_dot_type */
    quant_quantize_fn   quantize;   /* weight quantizer; NULL if llmpi-quantize cannot write this type */
    quant_vec_dot_fn    vec_dot;    /* scalar reference dot against vec_dot_type */
    llmpi_type          vec_dot_type;
} quant_type_traits;

/* Traits of type id t, or NULL for an id this build does not support (removed, unknown, IQ2/IQ3...). */
const quant_type_traits *quant_traits(uint32_t t);
/* Scalar reference dot of weight type w against activation type a: quant_traits(w)->vec_dot when a is
 * its vec_dot_type, else the ternary cross pairs of the two activation schemes (TQ1_0/TQ2_0 . I8_S,
 * I2_S . Q8_K; quant/vec_dot.c), else NULL (pair not supported). */
quant_vec_dot_fn quant_vec_dot_for(uint32_t w, uint32_t a);
/* Name of any id (also unsupported ones, e.g. "IQ2_XXS", "type 99"); never NULL. */
const char *quant_type_name(uint32_t t);
/* Parse a type name (case-insensitive, e.g. "q4_k"); returns -1 if unknown. */
int quant_type_from_name(const char *name);

/* Bytes of one row of ne0 elements; 0 if t unsupported or ne0 not a multiple of the block size.
 * I8_S (per-row activation) is special: ne0 int8 codes, then an f32 scale s at byte ne0 and an i32
 * code sum A at byte ne0 + 4 (read with memcpy) -> ne0 + 8 bytes. I2_S rows are ne0/4 bytes (the
 * tensor's scale tail is not part of any row). */
size_t quant_row_size(uint32_t t, int64_t ne0);

/* Bytes a whole tensor occupies in a GGUF file. For most types = row_size(ne0) * ne1*ne2*ne3;
 * I2_S is special: n/4 packed bytes + 32 (f32 scale + filler), see docs/formats.md §3.19.
 * Returns false (and leaves *out unset) on an unsupported type, a row length that is not a
 * multiple of the block size, or a size that would overflow. */
bool quant_tensor_nbytes(uint32_t t, const int64_t ne[4], uint64_t *out);

/* I2_S: the per-tensor scale stored after the codes of a tensor with n elements.
 * I2_S's row to_float cannot see this scale: it returns the ternary values t in {-1, 0, +1};
 * quant_dequantize_tensor multiplies them by the scale. Likewise its vec_dot (against I8_S) returns
 * (S - A) / s = sum t_k a_k / s and the caller multiplies by the scale (kern_matrix.tensor_scale). */
float quant_i2s_tensor_scale(const void *tensor_data, int64_t n);
/* One TQ1_0 row of n elements -> the same values as a TQ2_0 row (lossless; quant/dequant.c). */
void quant_tq1_0_to_tq2_0(const void *restrict src, void *restrict dst, int64_t n);

/* Dequantize a whole tensor (any supported type including I2_S) of n_per_row * nrows elements
 * into y; data is the tensor's bytes (rows back to back; for I2_S followed by its scale tail).
 * n_per_row is ne0. Returns false for an unsupported type, a type without to_float, a bad row
 * length or NULL pointers. */
bool quant_dequantize_tensor(uint32_t t, const void *data, float *y, int64_t n_per_row, int64_t nrows);

/* F16 / BF16 scalar conversions (round-to-nearest-even, NaN/Inf preserved), docs/formats.md §3.0. */
float    quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);
float    quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);

#endif
