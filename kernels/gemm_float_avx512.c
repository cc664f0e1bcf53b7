/* AVX-512F register tiles for the float GEMM (kernels/gemm_float.h): 4 weight rows x 6 tokens =
 * 24 zmm accumulators + 4 weight vectors + 1 activation vector = 29 of the 32 zmm registers.
 *
 * Float order per output, chosen to equal llama.cpp's AVX-512 tinyBLAS (the build our logit goldens
 * come from) whenever tinyBLAS accepts the shape (k a multiple of 16, or of 32 for BF16):
 *   F32 x F32, F16 x F16: 16 lanes, lane i % 16 accumulates w[i] * x[i] with one FMA per step of 16
 *     elements (f16 widened exactly by vcvtph2ps, f16 x f16 products are exact in f32), then
 *     _mm512_reduce_add_ps (256-bit halves, then 128, then 64, then the last pair).
 *   BF16 x BF16: as VDPBF16PS (tinyBLAS<32, __m512, __m512bh> under AVX512_BF16): per 32 elements
 *     lane j does acc = fma(w[2j+1], x[2j+1], acc) then acc = fma(w[2j], x[2j], acc) (checked
 *     bit-identical against _mm512_dpbf16_ps on this project's AVX-512 machine for normal inputs;
 *     VDPBF16PS flushes denormals, we do not). Done with plain AVX-512F so any AVX-512 CPU runs it.
 * Tails (k not a multiple of the step) are masked loads, the zero lanes add +0. */
#include "gemm_float.h"

#include <immintrin.h>

#define RM GEMM_RM_MAX
#define RN 6
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

ALWAYS_INLINE __m512 ld_f32(const uint8_t *p) { return _mm512_loadu_ps((const void *)p); }
ALWAYS_INLINE __m512 ld_f16(const uint8_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
ALWAYS_INLINE __m512 ldm_f32(const uint8_t *p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, (const void *)p); }
ALWAYS_INLINE __m512 ldm_f16(const uint8_t *p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const void *)p)); }

/* F32 / F16: 16 elements per step. es = element size in bytes (4 or 2), a compile-time constant. */
ALWAYS_INLINE void tile16(const int es, const int nr, int64_t k, const uint8_t *const *w, int mr,
                          const uint8_t *const *x, float *y, int64_t ldy) {
    __m512 acc[RN][RM];
    UNROLL for (int j = 0; j < nr; j++) UNROLL for (int i = 0; i < RM; i++) acc[j][i] = _mm512_setzero_ps();
    int64_t l = 0;
    for (; l + 16 <= k; l += 16) {
        __m512 a[RM];
        UNROLL for (int i = 0; i < RM; i++) a[i] = es == 4 ? ld_f32(w[i] + 4 * l) : ld_f16(w[i] + 2 * l);
        UNROLL for (int j = 0; j < nr; j++) {
            const __m512 b = es == 4 ? ld_f32(x[j] + 4 * l) : ld_f16(x[j] + 2 * l);
            UNROLL for (int i = 0; i < RM; i++) acc[j][i] = _mm512_fmadd_ps(a[i], b, acc[j][i]);
        }
    }
    if (l < k) {
        const __mmask16 m = (__mmask16)((1u << (k - l)) - 1);
        __m512 a[RM];
        UNROLL for (int i = 0; i < RM; i++) a[i] = es == 4 ? ldm_f32(w[i] + 4 * l, m) : ldm_f16(w[i] + 2 * l, m);
        UNROLL for (int j = 0; j < nr; j++) {
            const __m512 b = es == 4 ? ldm_f32(x[j] + 4 * l, m) : ldm_f16(x[j] + 2 * l, m);
            UNROLL for (int i = 0; i < RM; i++) acc[j][i] = _mm512_fmadd_ps(a[i], b, acc[j][i]);
        }
    }
    UNROLL for (int j = 0; j < nr; j++)
        UNROLL for (int i = 0; i < RM; i++)
            if (i < mr) y[j * ldy + i] = _mm512_reduce_add_ps(acc[j][i]);
}

/* BF16: 32 elements (one 64-byte load) per step, split into odd (high half of each dword, already
 * in f32 position) and even (shifted up 16) elements. */
ALWAYS_INLINE __m512 bf_odd(__m512i v) { return _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xFFFF0000u))); }
ALWAYS_INLINE __m512 bf_even(__m512i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)); }

ALWAYS_INLINE void tile_bf16(const int nr, int64_t k, const uint8_t *const *w, int mr,
                             const uint8_t *const *x, float *y, int64_t ldy) {
    __m512 acc[RN][RM];
    UNROLL for (int j = 0; j < nr; j++) UNROLL for (int i = 0; i < RM; i++) acc[j][i] = _mm512_setzero_ps();
    for (int64_t l = 0; l < k; l += 32) {
        const __mmask32 m = k - l >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << (k - l)) - 1);
        /* Two passes, odd elements then even, each with 4 weight + 1 activation registers next to the
         * 24 accumulators (one pass holding both halves spills). Activations are loaded twice (L1). */
        __m512 a[RM];
        UNROLL for (int i = 0; i < RM; i++) a[i] = bf_odd(_mm512_maskz_loadu_epi16(m, (const void *)(w[i] + 2 * l)));
        UNROLL for (int j = 0; j < nr; j++) {
            const __m512 b = bf_odd(_mm512_maskz_loadu_epi16(m, (const void *)(x[j] + 2 * l)));
            UNROLL for (int i = 0; i < RM; i++) acc[j][i] = _mm512_fmadd_ps(a[i], b, acc[j][i]);
        }
        UNROLL for (int i = 0; i < RM; i++) a[i] = bf_even(_mm512_maskz_loadu_epi16(m, (const void *)(w[i] + 2 * l)));
        UNROLL for (int j = 0; j < nr; j++) {
            const __m512 b = bf_even(_mm512_maskz_loadu_epi16(m, (const void *)(x[j] + 2 * l)));
            UNROLL for (int i = 0; i < RM; i++) acc[j][i] = _mm512_fmadd_ps(a[i], b, acc[j][i]);
        }
    }
    UNROLL for (int j = 0; j < nr; j++)
        UNROLL for (int i = 0; i < RM; i++)
            if (i < mr) y[j * ldy + i] = _mm512_reduce_add_ps(acc[j][i]);
}

/* BF16 tiles wider than 4 tokens spill (GCC keeps the raw 64-byte loads live for both halves), so
 * they run as two narrower tiles; each output's float order is unchanged. */
ALWAYS_INLINE void tile_bf16_split(const int nr, int64_t k, const uint8_t *const *w, int mr,
                                   const uint8_t *const *x, float *y, int64_t ldy) {
    if (nr <= 4) {
        tile_bf16(nr, k, w, mr, x, y, ldy);
    } else {
        tile_bf16(3, k, w, mr, x, y, ldy);
        tile_bf16(nr - 3, k, w, mr, x + 3, y + 3 * ldy, ldy);
    }
}

#define TILES(NR)                                                                                           \
    static void f32_##NR(int64_t k, const uint8_t *const *w, int mr, const uint8_t *const *x, float *y,     \
                         int64_t ldy) { tile16(4, NR, k, w, mr, x, y, ldy); }                               \
    static void f16_##NR(int64_t k, const uint8_t *const *w, int mr, const uint8_t *const *x, float *y,     \
                         int64_t ldy) { tile16(2, NR, k, w, mr, x, y, ldy); }                               \
    static void bf16_##NR(int64_t k, const uint8_t *const *w, int mr, const uint8_t *const *x, float *y,    \
                          int64_t ldy) { tile_bf16_split(NR, k, w, mr, x, y, ldy); }
TILES(1) TILES(2) TILES(3) TILES(4) TILES(5) TILES(6)
#undef TILES

const gemm_float_isa kern_gemm_float_avx512 = {
    .name = "avx512", .rn = RN, .lanes = 16,
    .tile = {
        [GEMM_F32]  = { NULL, f32_1, f32_2, f32_3, f32_4, f32_5, f32_6 },
        [GEMM_F16]  = { NULL, f16_1, f16_2, f16_3, f16_4, f16_5, f16_6 },
        [GEMM_BF16] = { NULL, bf16_1, bf16_2, bf16_3, bf16_4, bf16_5, bf16_6 },
    },
};
