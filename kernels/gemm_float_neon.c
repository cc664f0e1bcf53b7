/* NEON register tiles for the float GEMM (kernels/gemm_float.h), aarch64 only (ARMv8.0: the same
 * code serves the "neon" and "neon-dotprod" families; Cortex-A72 and A76): 4 weight rows x 6 tokens
 * = 24 q-register accumulators + 4 weight vectors + 1 activation vector = 29 of 32.
 *
 * Float order per output (tinyBLAS<4, float32x4_t> order): 4 f32 lanes, lane i % 4 accumulates
 * w[i] * x[i] with one FMA per 4 elements, then vaddvq_f32 ((l0 + l1) + (l2 + l3)). F16 is widened
 * with FCVTL/FCVTL2 (exact; f16 x f16 products are exact in f32, unlike ggml's FP16-arithmetic path,
 * which accumulates in f16), BF16 with USHLL #16 (exact). The tail (k % 4 elements) is loaded
 * zero-padded from a small buffer. */
#include "gemm_float.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#define RM GEMM_RM_MAX
#define RN 6
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

/* Elements 0..3 at p as f32 (16 bytes of F32, 8 bytes of F16 / BF16). */
ALWAYS_INLINE float32x4_t ld4(const int ty, const uint8_t *p) {
    if (ty == GEMM_F32) return vld1q_f32((const float *)(const void *)p);
    const uint16x4_t h = vld1_u16((const uint16_t *)(const void *)p);
    if (ty == GEMM_F16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

ALWAYS_INLINE void step(const int ty, const int nr, float32x4_t acc[RN][RM], const uint8_t *const *w,
                        const uint8_t *const *x, size_t off) {
    float32x4_t a[RM];
    UNROLL for (int i = 0; i < RM; i++) a[i] = ld4(ty, w[i] + off);
    UNROLL for (int j = 0; j < nr; j++) {
        const float32x4_t b = ld4(ty, x[j] + off);
        UNROLL for (int i = 0; i < RM; i++) acc[j][i] = vfmaq_f32(acc[j][i], a[i], b);
    }
}

ALWAYS_INLINE void tile(const int ty, const int nr, int64_t k, const uint8_t *const *w, int mr,
                        const uint8_t *const *x, float *y, int64_t ldy) {
    const size_t es = ty == GEMM_F32 ? 4 : 2;
    float32x4_t acc[RN][RM];
    UNROLL for (int j = 0; j < nr; j++) UNROLL for (int i = 0; i < RM; i++) acc[j][i] = vdupq_n_f32(0.0f);
    int64_t l = 0;
    for (; l + 4 <= k; l += 4) step(ty, nr, acc, w, x, (size_t)l * es);
    if (l < k) {   /* zero-padded copies of the last k - l elements of every row */
        uint8_t wt[RM][16], xt[RN][16];
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
            if (i < mr) y[j * ldy + i] = vaddvq_f32(acc[j][i]);
}

#define TILES(NR)                                                                                           \
    static void f32_##NR(int64_t k, const uint8_t *const *w, int mr, const uint8_t *const *x, float *y,     \
                         int64_t ldy) { tile(GEMM_F32, NR, k, w, mr, x, y, ldy); }                          \
    static void f16_##NR(int64_t k, const uint8_t *const *w, int mr, const uint8_t *const *x, float *y,     \
                         int64_t ldy) { tile(GEMM_F16, NR, k, w, mr, x, y, ldy); }                          \
    static void bf16_##NR(int64_t k, const uint8_t *const *w, int mr, const uint8_t *const *x, float *y,    \
                          int64_t ldy) { tile(GEMM_BF16, NR, k, w, mr, x, y, ldy); }
TILES(1) TILES(2) TILES(3) TILES(4) TILES(5) TILES(6)
#undef TILES

const gemm_float_isa kern_gemm_float_neon = {
    .name = "neon", .rn = RN, .lanes = 4,
    .tile = {
        [GEMM_F32]  = { NULL, f32_1, f32_2, f32_3, f32_4, f32_5, f32_6 },
        [GEMM_F16]  = { NULL, f16_1, f16_2, f16_3, f16_4, f16_5, f16_6 },
        [GEMM_BF16] = { NULL, bf16_1, bf16_2, bf16_3, bf16_4, bf16_5, bf16_6 },
    },
};

#else
typedef int gemm_float_neon_not_built_on_this_arch; /* ISO C wants a non-empty translation unit */
#endif
