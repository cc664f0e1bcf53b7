/* AVX2 + FMA + F16C register tiles for the float GEMM (kernels/gemm_float.h): 4 weight rows x 3
 * tokens = 12 ymm accumulators + 3 activation vectors + 1 weight vector = all 16 ymm registers
 * (the activation vectors are loaded once per step, weight rows one at a time, as tinyBLAS does
 * when RM > RN).
 *
 * Float order per output = llama.cpp's AVX2 tinyBLAS (tinyBLAS<8, __m256, __m256>): 8 lanes, lane
 * i % 8 accumulates w[i] * x[i] with one FMA per 8 elements (F16 widened by vcvtph2ps, BF16 by a
 * 16-bit shift, both exact; f16 x f16 and bf16 x bf16 products are exact in f32), then its hsum:
 * high 128 + low 128, then lanes {0,1} + {2,3}, then lane 0 + lane 1. The tail (k % 8 elements) is
 * loaded zero-padded from a small buffer. */
#include "gemm_float.h"

#include <immintrin.h>
#include <string.h>

#define RM GEMM_RM_MAX
#define RN 3
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

/* 8 elements of type ty (GEMM_F32 / F16 / BF16) at p widened exactly to f32. */
ALWAYS_INLINE __m256 ld8(const int ty, const uint8_t *p) {
    if (ty == GEMM_F32) return _mm256_loadu_ps((const float *)(const void *)p);
    const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)p);
    if (ty == GEMM_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

ALWAYS_INLINE float hsum8(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

ALWAYS_INLINE void step(const int ty, const int nr, __m256 acc[RN][RM], const uint8_t *const *w,
                        const uint8_t *const *x, size_t off) {
    __m256 b[RN];
    UNROLL for (int j = 0; j < nr; j++) b[j] = ld8(ty, x[j] + off);
    UNROLL for (int i = 0; i < RM; i++) {
        const __m256 a = ld8(ty, w[i] + off);
        UNROLL for (int j = 0; j < nr; j++) acc[j][i] = _mm256_fmadd_ps(a, b[j], acc[j][i]);
    }
}

ALWAYS_INLINE void tile(const int ty, const int nr, int64_t k, const uint8_t *const *w, int mr,
                        const uint8_t *const *x, float *y, int64_t ldy) {
    const size_t es = ty == GEMM_F32 ? 4 : 2;
    __m256 acc[RN][RM];
    UNROLL for (int j = 0; j < nr; j++) UNROLL for (int i = 0; i < RM; i++) acc[j][i] = _mm256_setzero_ps();
    int64_t l = 0;
    for (; l + 8 <= k; l += 8) step(ty, nr, acc, w, x, (size_t)l * es);
    if (l < k) {   /* zero-padded copies of the last k - l elements of every row */
        uint8_t wt[RM][32], xt[RN][32];
        const uint8_t *wp[RM], *xp[RN];
        const size_t nb = (size_t)(k - l) * es;
        UNROLL for (int i = 0; i < RM; i++) {
            memset(wt[i], 0, sizeof wt[i]);
            memcpy(wt[i], w[i] + (size_t)l * es, nb);
            wp[i] = wt[i];
        }
        UNROLL for (int j = 0; j < nr; j++) {
            memset(xt[j], 0, sizeof xt[j]);
            memcpy(xt[j], x[j] + (size_t)l * es, nb);
            xp[j] = xt[j];
        }
        step(ty, nr, acc, wp, xp, 0);
    }
    UNROLL for (int j = 0; j < nr; j++)
        UNROLL for (int i = 0; i < RM; i++)
            if (i < mr) y[j * ldy + i] = hsum8(acc[j][i]);
}

#define TILES(NR)                                                                                           \
    static void f32_##NR(int64_t k, const uint8_t *const *w, int mr, const uint8_t *const *x, float *y,     \
                         int64_t ldy) { tile(GEMM_F32, NR, k, w, mr, x, y, ldy); }                          \
    static void f16_##NR(int64_t k, const uint8_t *const *w, int mr, const uint8_t *const *x, float *y,     \
                         int64_t ldy) { tile(GEMM_F16, NR, k, w, mr, x, y, ldy); }                          \
    static void bf16_##NR(int64_t k, const uint8_t *const *w, int mr, const uint8_t *const *x, float *y,    \
                          int64_t ldy) { tile(GEMM_BF16, NR, k, w, mr, x, y, ldy); }
TILES(1) TILES(2) TILES(3)
#undef TILES

const gemm_float_isa kern_gemm_float_avx2 = {
    .name = "avx2", .rn = RN, .lanes = 8,
    .tile = {
        [GEMM_F32]  = { NULL, f32_1, f32_2, f32_3 },
        [GEMM_F16]  = { NULL, f16_1, f16_2, f16_3 },
        [GEMM_BF16] = { NULL, bf16_1, bf16_2, bf16_3 },
    },
};
