/* Internal interface between the float GEMM driver (kernels/gemm_float.c) and its per-ISA register
 * tiles (gemm_float_avx512.c, gemm_float_avx2.c, gemm_float_neon.c). Public entry points are in
 * kernels.h (kern_gemm_float*).
 *
 * A tile computes an RM x nr block of outputs, RM weight rows by nr <= RN tokens, with one SIMD
 * accumulator of L f32 lanes per output carried across the whole row length k and reduced once at
 * the end (llama.cpp's tinyBLAS scheme, ggml-cpu/llamafile/sgemm.cpp). Per output the float
 * operations are: acc_lane[i % L] = fma(w[i], x[i], acc_lane[i % L]) for i = 0, 1, ... k-1 (the
 * zero-padded tail last), then a fixed horizontal sum of the L lanes. That order depends only on
 * the ISA, never on the tile position, the tile width nr, n_tokens or the thread count, so every
 * output is bit-identical however the matrix is cut.
 *
 * AVX-512 BF16 is the one exception to "lane = i % L": it follows VDPBF16PS (what llama.cpp's
 * AVX512_BF16 build runs), lane j of each 32-element step gets element 2j+1 then element 2j. */
#ifndef LLMPI_GEMM_FLOAT_H
#define LLMPI_GEMM_FLOAT_H

#include <stddef.h>
#include <stdint.h>

#include "quant.h"

#define GEMM_RM_MAX 4   /* weight rows per tile, every ISA */
#define GEMM_RN_MAX 6   /* tokens per tile, widest ISA */

/* y[j * ldy + i] = sum_l w_i[l] * x_j[l] for i < mr, j < nr (nr fixed by the function).
 * w: GEMM_RM_MAX row pointers (rows past mr repeat a valid row: computed, not stored);
 * x: nr activation rows in the weight's vec_dot_type. k: elements per row (any k >= 1).
 * Pointers need no alignment. */
typedef void (*gemm_tile_fn)(int64_t k, const uint8_t *const *w, int mr, const uint8_t *const *x,
                             float *y, int64_t ldy);

enum { GEMM_F32, GEMM_F16, GEMM_BF16, GEMM_NTYPES };

typedef struct {
    const char *name;   /* "avx512", "avx2", "neon" */
    int rn;             /* tokens per full tile (<= GEMM_RN_MAX); rows per tile is GEMM_RM_MAX */
    int lanes;          /* f32 lanes per accumulator (L above), for the documented error bound */
    /* tile[type][nr] for nr = 1..rn (index 0 unused) */
    gemm_tile_fn tile[GEMM_NTYPES][GEMM_RN_MAX + 1];
} gemm_float_isa;

#if defined(__x86_64__)
extern const gemm_float_isa kern_gemm_float_avx512;
extern const gemm_float_isa kern_gemm_float_avx2;
#endif
#if defined(__aarch64__)
extern const gemm_float_isa kern_gemm_float_neon;
#endif

#endif
