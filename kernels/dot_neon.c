/* NEON dot-product kernels (aarch64 only), in two families built from the same source:
 *   "neon"          ARMv8.0 Advanced SIMD (Cortex-A72, Raspberry Pi 4): int8 products with
 *                   vmull_s8 / vmlal_s8 into int16 lanes, widened with vpadalq_s16;
 *   "neon-dotprod"  SDOT (vdotq_s32; Cortex-A76, Raspberry Pi 5), compiled only when the target
 *                   has __ARM_FEATURE_DOTPROD (make cross-a76) and used only if HWCAP says asimddp.
 * Each kernel body is written once with a compile-time `dp` flag; the two wrappers per type force
 * the body inline so the flag folds away.
 *
 * Same contract and exactness as dot_avx2.c: integer sums exact in int32, float accumulation order
 * differs from the scalar reference (per-block float terms summed in 4 lanes or in a different
 * association), bounded by ~(blocks + 16) * 2^-24 * sum|w*a|. I2_S is bit-exact.
 *
 * Overflow of the ARMv8.0 path: vmull_s8 + vmlal_s8 put 2 (dot16) or 4 (dot32) products in one
 * int16 lane before vpadalq widens them. dot16: 2 * 128 * 127 = 32512 <= 32767 for any weight
 * byte against activation codes in [-127, 127] (what Q8_0/Q8_1/Q8_K produce). dot32: 4 * |w| * |a|
 * <= 32767 needs |w| <= 63 (|a| <= 127) -- every 2..6-bit code qualifies -- or |w| <= 3 with
 * |a| <= 128 (I2_S against I8_S, whose codes may be -128). */
#include "cpu_features.h"

#if defined(__aarch64__)
#include "blocks.h"
#include "block_unpack.h"
#include "ref.h"

#include <arm_neon.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))
/* Fixed-trip inner loops (sub-blocks of a super-block) are unrolled so scale indices become
 * constants and the scheduler sees the whole block. */
#define UNROLL _Pragma("GCC unroll 8")

/* ---- helpers ------------------------------------------------------------------------------------ */

static inline float load_f16(const uint8_t *p) {
    __fp16 h;
    memcpy(&h, p, sizeof h);
    return (float)h;
}

/* Byte loads have no alignment requirement; typed views are reinterpreted from them. */
static inline uint8x16_t ld_u8(const uint8_t *p) { return vld1q_u8(p); }
static inline int8x16_t ld_s8(const uint8_t *p) { return vreinterpretq_s8_u8(vld1q_u8(p)); }
static inline int16x8_t ld_s16(const uint8_t *p) { return vreinterpretq_s16_u8(vld1q_u8(p)); }
static inline int8x16_t as_s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

/* acc += w . a over 16 int8 pairs (lane grouping differs between the paths; callers only use the
 * total of the 4 lanes). Any weight byte; activation codes in [-127, 127]. */
ALWAYS_INLINE int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t a, const bool dp) {
#if defined(__ARM_FEATURE_DOTPROD)
    if (dp) return vdotq_s32(acc, w, a);
#endif
    (void)dp;
    return vpadalq_s16(acc, vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(a)), w, a));
}

/* acc += w0 . a0 + w1 . a1 for small weights (|w| <= 63, or |w| <= 3 with |a| <= 128). */
ALWAYS_INLINE int32x4_t dot32(int32x4_t acc, int8x16_t w0, int8x16_t a0, int8x16_t w1, int8x16_t a1, const bool dp) {
#if defined(__ARM_FEATURE_DOTPROD)
    if (dp) return vdotq_s32(vdotq_s32(acc, w0, a0), w1, a1);
#endif
    (void)dp;
    int16x8_t p = vmull_s8(vget_low_s8(w0), vget_low_s8(a0));
    p = vmlal_high_s8(p, w0, a0);
    p = vmlal_s8(p, vget_low_s8(w1), vget_low_s8(a1));
    p = vmlal_high_s8(p, w1, a1);
    return vpadalq_s16(acc, p);
}

/* 32 bits -> two 16-byte masks: byte e = 0xFF if bit e is set (Q5_0 / Q5_1 high bits). */
static inline void bits_to_bytes(uint32_t bits, uint8x16_t *lo, uint8x16_t *hi) {
    static const uint8_t spread_lo[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 };
    static const uint8_t spread_hi[16] = { 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3 };
    static const uint8_t bit_of[16] = { 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128 };
    const uint8x16_t v = vreinterpretq_u8_u32(vdupq_n_u32(bits));
    const uint8x16_t b = vld1q_u8(bit_of);
    *lo = vtstq_u8(vqtbl1q_u8(v, vld1q_u8(spread_lo)), b);
    *hi = vtstq_u8(vqtbl1q_u8(v, vld1q_u8(spread_hi)), b);
}

/* ---- float types ------------------------------------------------------------------------------ */

ALWAYS_INLINE float32x4_t ld_f32(const float *p) { return vreinterpretq_f32_u8(vld1q_u8((const uint8_t *)p)); }

static void dot_f32(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const float *x = vx, *y = vy;
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0), acc2 = vdupq_n_f32(0), acc3 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = vfmaq_f32(acc0, ld_f32(x + i), ld_f32(y + i));
        acc1 = vfmaq_f32(acc1, ld_f32(x + i + 4), ld_f32(y + i + 4));
        acc2 = vfmaq_f32(acc2, ld_f32(x + i + 8), ld_f32(y + i + 8));
        acc3 = vfmaq_f32(acc3, ld_f32(x + i + 12), ld_f32(y + i + 12));
    }
    for (; i + 4 <= n; i += 4) acc0 = vfmaq_f32(acc0, ld_f32(x + i), ld_f32(y + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; i++) {
        float a, b;
        memcpy(&a, x + i, sizeof a);
        memcpy(&b, y + i, sizeof b);
        sum += a * b;
    }
    *s = sum;
}

/* F16: exact widening, exact products in f32 (no f16 arithmetic, unlike ggml's FP16 path). */
static void dot_f16(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0), acc2 = vdupq_n_f32(0), acc3 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const float16x8_t x0 = vreinterpretq_f16_u8(vld1q_u8(x + 2 * i)), x1 = vreinterpretq_f16_u8(vld1q_u8(x + 2 * i + 16));
        const float16x8_t y0 = vreinterpretq_f16_u8(vld1q_u8(y + 2 * i)), y1 = vreinterpretq_f16_u8(vld1q_u8(y + 2 * i + 16));
        acc0 = vfmaq_f32(acc0, vcvt_f32_f16(vget_low_f16(x0)), vcvt_f32_f16(vget_low_f16(y0)));
        acc1 = vfmaq_f32(acc1, vcvt_high_f32_f16(x0), vcvt_high_f32_f16(y0));
        acc2 = vfmaq_f32(acc2, vcvt_f32_f16(vget_low_f16(x1)), vcvt_f32_f16(vget_low_f16(y1)));
        acc3 = vfmaq_f32(acc3, vcvt_high_f32_f16(x1), vcvt_high_f32_f16(y1));
    }
    for (; i + 4 <= n; i += 4) {
        const float16x4_t xv = vreinterpret_f16_u8(vld1_u8(x + 2 * i)), yv = vreinterpret_f16_u8(vld1_u8(y + 2 * i));
        acc0 = vfmaq_f32(acc0, vcvt_f32_f16(xv), vcvt_f32_f16(yv));
    }
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; i++) sum += load_f16(x + 2 * i) * load_f16(y + 2 * i);
    *s = sum;
}

/* BF16: widening is a 16-bit shift (exact), products exact in f32. */
static void dot_bf16(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint16x8_t xv = vreinterpretq_u16_u8(vld1q_u8(x + 2 * i)), yv = vreinterpretq_u16_u8(vld1q_u8(y + 2 * i));
        acc0 = vfmaq_f32(acc0, vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(xv), 16)),
                         vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(yv), 16)));
        acc1 = vfmaq_f32(acc1, vreinterpretq_f32_u32(vshll_high_n_u16(xv, 16)),
                         vreinterpretq_f32_u32(vshll_high_n_u16(yv, 16)));
    }
    float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++) sum += bf16_to_f32(x + 2 * i) * bf16_to_f32(y + 2 * i);
    *s = sum;
}

/* ---- 32-element blocks against Q8_0 / Q8_1 ------------------------------------------------------ */

enum {
    Q4_0_D = offsetof(block_q4_0, d), Q4_0_QS = offsetof(block_q4_0, qs),
    Q4_1_D = offsetof(block_q4_1, d), Q4_1_M = offsetof(block_q4_1, m), Q4_1_QS = offsetof(block_q4_1, qs),
    Q5_0_D = offsetof(block_q5_0, d), Q5_0_QH = offsetof(block_q5_0, qh), Q5_0_QS = offsetof(block_q5_0, qs),
    Q5_1_D = offsetof(block_q5_1, d), Q5_1_M = offsetof(block_q5_1, m), Q5_1_QH = offsetof(block_q5_1, qh),
    Q5_1_QS = offsetof(block_q5_1, qs),
    Q8_0_D = offsetof(block_q8_0, d), Q8_0_QS = offsetof(block_q8_0, qs),
    Q8_1_D = offsetof(block_q8_1, d), Q8_1_S = offsetof(block_q8_1, s), Q8_1_QS = offsetof(block_q8_1, qs),
    IQ4NL_D = offsetof(block_iq4_nl, d), IQ4NL_QS = offsetof(block_iq4_nl, qs),
};

/* One block's contribution: int32x4 partial sums of w.a (exact) and the float factor d_w * d_a;
 * min types add m * s_a to *min_sum. BLOCK_DOT_32 runs two blocks per iteration into two float
 * accumulators. */
#define BLOCK_DOT_32(name, block_fn, x_block_bytes, y_block_bytes)                                   \
    ALWAYS_INLINE void name(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy, const bool dp) { \
        const uint8_t *x = vx, *y = vy;                                                              \
        const int64_t nb = n / 32;                                                                   \
        float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);                                    \
        float min_sum = 0.0f;                                                                        \
        int64_t i = 0;                                                                               \
        for (; i + 2 <= nb; i += 2) {                                                                \
            acc0 = block_fn(x + i * (x_block_bytes), y + i * (y_block_bytes), acc0, &min_sum, dp);   \
            acc1 = block_fn(x + (i + 1) * (x_block_bytes), y + (i + 1) * (y_block_bytes), acc1, &min_sum, dp); \
        }                                                                                            \
        if (i < nb) acc0 = block_fn(x + i * (x_block_bytes), y + i * (y_block_bytes), acc0, &min_sum, dp); \
        *s = vaddvq_f32(vaddq_f32(acc0, acc1)) + min_sum;                                            \
    }

/* Q4_0: w = c - 8 in [-8, 7]. */
ALWAYS_INLINE float32x4_t step_q4_0(const uint8_t *xb, const uint8_t *yb, float32x4_t acc, float *min_sum, const bool dp) {
    (void)min_sum;
    const uint8x16_t q = ld_u8(xb + Q4_0_QS);
    const int8x16_t eight = vdupq_n_s8(8);
    const int8x16_t lo = vsubq_s8(as_s8(vandq_u8(q, vdupq_n_u8(0x0F))), eight);
    const int8x16_t hi = vsubq_s8(as_s8(vshrq_n_u8(q, 4)), eight);
    const int32x4_t p = dot32(vdupq_n_s32(0), lo, ld_s8(yb + Q8_0_QS), hi, ld_s8(yb + Q8_0_QS + 16), dp);
    return vfmaq_n_f32(acc, vcvtq_f32_s32(p), load_f16(xb + Q4_0_D) * load_f16(yb + Q8_0_D));
}
BLOCK_DOT_32(body_q4_0, step_q4_0, sizeof(block_q4_0), sizeof(block_q8_0))

/* Q8_0: full int8 weights -> dot16 (2 products per int16 lane). */
ALWAYS_INLINE float32x4_t step_q8_0(const uint8_t *xb, const uint8_t *yb, float32x4_t acc, float *min_sum, const bool dp) {
    (void)min_sum;
    int32x4_t p = dot16(vdupq_n_s32(0), ld_s8(xb + Q8_0_QS), ld_s8(yb + Q8_0_QS), dp);
    p = dot16(p, ld_s8(xb + Q8_0_QS + 16), ld_s8(yb + Q8_0_QS + 16), dp);
    return vfmaq_n_f32(acc, vcvtq_f32_s32(p), load_f16(xb + Q8_0_D) * load_f16(yb + Q8_0_D));
}
BLOCK_DOT_32(body_q8_0, step_q8_0, sizeof(block_q8_0), sizeof(block_q8_0))

/* Q4_1 / Q5_0 / Q5_1 follow llama.cpp's x86 float order (see BLOCK_DOT_32_GGML_X86 in kernels/dot_avx2.c),
 * so these files give the x86 goldens' logits here too: the 8 x86 lanes are kept as two float32x4
 * accumulators, lo = lanes 0..3 (elements 0..15), hi = lanes 4..7 (16..31); lane k gets
 * fma(d_w * d_a, exact sum of the products 4k..4k+3) per block; the end is ((t0 + t2) + (t1 + t3)) with
 * t = hi + lo, plus the min terms fused in block order. tests/test_kernels.c checks it bit for bit. */
ALWAYS_INLINE int32x4_t quad_sums16(int8x16_t w, int8x16_t a, const bool dp) {
#if defined(__ARM_FEATURE_DOTPROD)
    if (dp) return vdotq_s32(vdupq_n_s32(0), w, a);   /* lane j = bytes 4j..4j+3 */
#endif
    (void)dp;
    /* products fit int16 (|w| <= 128, |a| <= 127); pairs, then pairs of pairs: lane j = bytes 4j..4j+3 */
    const int32x4_t pairs_lo = vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(a)));
    const int32x4_t pairs_hi = vpaddlq_s16(vmull_high_s8(w, a));
    return vpaddq_s32(pairs_lo, pairs_hi);
}

ALWAYS_INLINE void x86_lanes_fma(float32x4_t acc[2], int8x16_t w_lo, int8x16_t w_hi, const uint8_t *a_qs, float d,
                                 const bool dp) {
    acc[0] = vfmaq_n_f32(acc[0], vcvtq_f32_s32(quad_sums16(w_lo, ld_s8(a_qs), dp)), d);
    acc[1] = vfmaq_n_f32(acc[1], vcvtq_f32_s32(quad_sums16(w_hi, ld_s8(a_qs + 16), dp)), d);
}

#define BLOCK_DOT_32_GGML_X86(name, block_fn, x_block_bytes, y_block_bytes)                           \
    ALWAYS_INLINE void name(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy, const bool dp) { \
        const uint8_t *x = vx, *y = vy;                                                              \
        const int64_t nb = n / 32;                                                                   \
        float32x4_t acc[2] = { vdupq_n_f32(0), vdupq_n_f32(0) };                                     \
        float min_sum = 0.0f;                                                                        \
        for (int64_t i = 0; i < nb; i++) block_fn(x + i * (x_block_bytes), y + i * (y_block_bytes), acc, &min_sum, dp); \
        const float32x4_t t = vaddq_f32(acc[1], acc[0]);                                             \
        const float32x2_t u = vadd_f32(vget_low_f32(t), vget_high_f32(t));                           \
        *s = (vget_lane_f32(u, 0) + vget_lane_f32(u, 1)) + min_sum;                                  \
    }

/* Q4_1 x Q8_1: c in [0, 15]; + m * s_a. */
ALWAYS_INLINE void step_q4_1(const uint8_t *xb, const uint8_t *yb, float32x4_t acc[2], float *min_sum, const bool dp) {
    const uint8x16_t q = ld_u8(xb + Q4_1_QS);
    const int8x16_t lo = as_s8(vandq_u8(q, vdupq_n_u8(0x0F))), hi = as_s8(vshrq_n_u8(q, 4));
    *min_sum = fmaf(load_f16(xb + Q4_1_M), load_f16(yb + Q8_1_S), *min_sum);
    x86_lanes_fma(acc, lo, hi, yb + Q8_1_QS, load_f16(xb + Q4_1_D) * load_f16(yb + Q8_1_D), dp);
}
BLOCK_DOT_32_GGML_X86(body_q4_1, step_q4_1, sizeof(block_q4_1), sizeof(block_q8_1))

/* Q5_0: w = c - 16 in [-16, 15] = nibble | (high bit ? 0x00 : 0xF0) as int8. */
ALWAYS_INLINE void step_q5_0(const uint8_t *xb, const uint8_t *yb, float32x4_t acc[2], float *min_sum, const bool dp) {
    (void)min_sum;
    uint32_t qh;
    memcpy(&qh, xb + Q5_0_QH, sizeof qh);
    uint8x16_t hb_lo, hb_hi;
    bits_to_bytes(qh, &hb_lo, &hb_hi);
    const uint8x16_t q = ld_u8(xb + Q5_0_QS), f0 = vdupq_n_u8(0xF0);
    const int8x16_t lo = as_s8(vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0F)), vbicq_u8(f0, hb_lo)));
    const int8x16_t hi = as_s8(vorrq_u8(vshrq_n_u8(q, 4), vbicq_u8(f0, hb_hi)));
    x86_lanes_fma(acc, lo, hi, yb + Q8_0_QS, load_f16(xb + Q5_0_D) * load_f16(yb + Q8_0_D), dp);
}
BLOCK_DOT_32_GGML_X86(body_q5_0, step_q5_0, sizeof(block_q5_0), sizeof(block_q8_0))

/* Q5_1 x Q8_1: c = nibble | 16 * bit in [0, 31]; + m * s_a. */
ALWAYS_INLINE void step_q5_1(const uint8_t *xb, const uint8_t *yb, float32x4_t acc[2], float *min_sum, const bool dp) {
    uint32_t qh;
    memcpy(&qh, xb + Q5_1_QH, sizeof qh);
    uint8x16_t hb_lo, hb_hi;
    bits_to_bytes(qh, &hb_lo, &hb_hi);
    const uint8x16_t q = ld_u8(xb + Q5_1_QS), b4 = vdupq_n_u8(0x10);
    const int8x16_t lo = as_s8(vorrq_u8(vandq_u8(q, vdupq_n_u8(0x0F)), vandq_u8(hb_lo, b4)));
    const int8x16_t hi = as_s8(vorrq_u8(vshrq_n_u8(q, 4), vandq_u8(hb_hi, b4)));
    *min_sum = fmaf(load_f16(xb + Q5_1_M), load_f16(yb + Q8_1_S), *min_sum);
    x86_lanes_fma(acc, lo, hi, yb + Q8_1_QS, load_f16(xb + Q5_1_D) * load_f16(yb + Q8_1_D), dp);
}
BLOCK_DOT_32_GGML_X86(body_q5_1, step_q5_1, sizeof(block_q5_1), sizeof(block_q8_1))

/* IQ4_NL: w = K[c] in [-127, 113] by table lookup; dot16 (|w| > 63). */
ALWAYS_INLINE float32x4_t step_iq4_nl(const uint8_t *xb, const uint8_t *yb, float32x4_t acc, float *min_sum, const bool dp) {
    (void)min_sum;
    const int8x16_t table = vld1q_s8(kvalues_iq4nl);
    const uint8x16_t q = ld_u8(xb + IQ4NL_QS);
    const int8x16_t lo = vqtbl1q_s8(table, vandq_u8(q, vdupq_n_u8(0x0F))), hi = vqtbl1q_s8(table, vshrq_n_u8(q, 4));
    int32x4_t p = dot16(vdupq_n_s32(0), lo, ld_s8(yb + Q8_0_QS), dp);
    p = dot16(p, hi, ld_s8(yb + Q8_0_QS + 16), dp);
    return vfmaq_n_f32(acc, vcvtq_f32_s32(p), load_f16(xb + IQ4NL_D) * load_f16(yb + Q8_0_D));
}
BLOCK_DOT_32(body_iq4_nl, step_iq4_nl, sizeof(block_iq4_nl), sizeof(block_q8_0))

/* ---- 256-element super-blocks against Q8_K -------------------------------------------------------- */

enum {
    Q8K_D = offsetof(block_q8_K, d), Q8K_QS = offsetof(block_q8_K, qs), Q8K_BSUMS = offsetof(block_q8_K, bsums),
    Q2K_SC = offsetof(block_q2_K, scales), Q2K_QS = offsetof(block_q2_K, qs), Q2K_D = offsetof(block_q2_K, d),
    Q2K_DMIN = offsetof(block_q2_K, dmin),
    Q3K_HM = offsetof(block_q3_K, hmask), Q3K_QS = offsetof(block_q3_K, qs), Q3K_SC = offsetof(block_q3_K, scales),
    Q3K_D = offsetof(block_q3_K, d),
    Q4K_D = offsetof(block_q4_K, d), Q4K_DMIN = offsetof(block_q4_K, dmin), Q4K_SC = offsetof(block_q4_K, scales),
    Q4K_QS = offsetof(block_q4_K, qs),
    Q5K_D = offsetof(block_q5_K, d), Q5K_DMIN = offsetof(block_q5_K, dmin), Q5K_SC = offsetof(block_q5_K, scales),
    Q5K_QH = offsetof(block_q5_K, qh), Q5K_QS = offsetof(block_q5_K, qs),
    Q6K_QL = offsetof(block_q6_K, ql), Q6K_QH = offsetof(block_q6_K, qh), Q6K_SC = offsetof(block_q6_K, scales),
    Q6K_D = offsetof(block_q6_K, d),
    IQ4XS_D = offsetof(block_iq4_xs, d), IQ4XS_SH = offsetof(block_iq4_xs, scales_h),
    IQ4XS_SL = offsetof(block_iq4_xs, scales_l), IQ4XS_QS = offsetof(block_iq4_xs, qs),
    TQ1_QS = offsetof(block_tq1_0, qs), TQ1_QH = offsetof(block_tq1_0, qh), TQ1_D = offsetof(block_tq1_0, d),
    TQ2_QS = offsetof(block_tq2_0, qs), TQ2_D = offsetof(block_tq2_0, d),
};

/* sum_s scale_s * bsums_s over the 16 sub-blocks of 16 (int16 scales). |.| <= 16 * 128 * 2032. */
static inline int32_t scaled_bsums(int16x8_t sc_lo, int16x8_t sc_hi, const uint8_t *bsums) {
    const int16x8_t b_lo = ld_s16(bsums), b_hi = ld_s16(bsums + 16);
    int32x4_t t = vmull_s16(vget_low_s16(sc_lo), vget_low_s16(b_lo));
    t = vmlal_high_s16(t, sc_lo, b_lo);
    t = vmlal_s16(t, vget_low_s16(sc_hi), vget_low_s16(b_hi));
    t = vmlal_high_s16(t, sc_hi, b_hi);
    return vaddvq_s32(t);
}

/* Q4_K / Q5_K mins: sum_j m_j (bsums[2j] + bsums[2j+1]). */
static inline int32_t k4_min_sum(const uint8_t *mins8, const uint8_t *bsums) {
    const int16x8_t pair = vpaddq_s16(ld_s16(bsums), ld_s16(bsums + 16));   /* |.| <= 4064 */
    const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mins8)));
    return vaddvq_s32(vmlal_high_s16(vmull_s16(vget_low_s16(pair), vget_low_s16(m)), pair, m));
}

/* Q2_K: c in [0, 3]; one 16-register per sub-block s, scaled by lo(scales[s]) (int32 mla, exact). */
ALWAYS_INLINE void body_q2_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy, const bool dp) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const uint8x16_t m3 = vdupq_n_u8(3);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q2_K), *yb = y + i * sizeof(block_q8_K);
        const uint8_t *a = yb + Q8K_QS;
        const uint8x16_t sc = ld_u8(xb + Q2K_SC);
        const uint8x16_t mins = vshrq_n_u8(sc, 4);
        const int32_t msum = scaled_bsums(vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mins))),
                                          vreinterpretq_s16_u16(vmovl_high_u8(mins)), yb + Q8K_BSUMS);
        uint8_t scale[16];
        vst1q_u8(scale, vandq_u8(sc, vdupq_n_u8(0x0F)));
        int32x4_t sumi = vdupq_n_s32(0);
        UNROLL
        for (int h = 0; h < 2; h++) {
            uint8x16_t q0 = ld_u8(xb + Q2K_QS + 32 * h), q1 = ld_u8(xb + Q2K_QS + 32 * h + 16);
            UNROLL
            for (int k = 0; k < 4; k++) {
                const int sub = 8 * h + 2 * k;
                const uint8_t *ak = a + 128 * h + 32 * k;
                const int32x4_t p0 = dot16(vdupq_n_s32(0), as_s8(vandq_u8(q0, m3)), ld_s8(ak), dp);
                const int32x4_t p1 = dot16(vdupq_n_s32(0), as_s8(vandq_u8(q1, m3)), ld_s8(ak + 16), dp);
                sumi = vmlaq_n_s32(sumi, p0, scale[sub]);
                sumi = vmlaq_n_s32(sumi, p1, scale[sub + 1]);
                q0 = vshrq_n_u8(q0, 2);
                q1 = vshrq_n_u8(q1, 2);
            }
        }
        const float dy = load_f32(yb + Q8K_D);
        sum += dy * load_f16(xb + Q2K_D) * (float)vaddvq_s32(sumi) - dy * load_f16(xb + Q2K_DMIN) * (float)msum;
    }
    *s = sum;
}

/* Q3_K: c3 = 2 low bits | hmask bit << 2 in [0, 7]; sum sc*(c3-4)*a = sum sc*c3*a - 4 sum sc*bsums. */
ALWAYS_INLINE void body_q3_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy, const bool dp) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const uint8x16_t m3 = vdupq_n_u8(3), one = vdupq_n_u8(1);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q3_K), *yb = y + i * sizeof(block_q8_K);
        const uint8_t *a = yb + Q8K_QS;
        uint8_t sc_u[16];
        unpack_q3k_scales(xb + Q3K_SC, sc_u);
        const int8x16_t sc8 = vsubq_s8(vreinterpretq_s8_u8(vld1q_u8(sc_u)), vdupq_n_s8(32));
        int8_t scale[16];
        vst1q_s8(scale, sc8);
        const int32_t off = scaled_bsums(vmovl_s8(vget_low_s8(sc8)), vmovl_high_s8(sc8), yb + Q8K_BSUMS);
        uint8x16_t hm0 = ld_u8(xb + Q3K_HM), hm1 = ld_u8(xb + Q3K_HM + 16);
        int32x4_t sumi = vdupq_n_s32(0);
        UNROLL
        for (int h = 0; h < 2; h++) {
            uint8x16_t q0 = ld_u8(xb + Q3K_QS + 32 * h), q1 = ld_u8(xb + Q3K_QS + 32 * h + 16);
            UNROLL
            for (int k = 0; k < 4; k++) {
                const int sub = 8 * h + 2 * k;
                const uint8_t *ak = a + 128 * h + 32 * k;
                /* element 128h + 32k + p: high bit = bit (4h + k) of hmask[p] (hm shifted down as we go) */
                const int8x16_t c0 = as_s8(vorrq_u8(vandq_u8(q0, m3), vshlq_n_u8(vandq_u8(hm0, one), 2)));
                const int8x16_t c1 = as_s8(vorrq_u8(vandq_u8(q1, m3), vshlq_n_u8(vandq_u8(hm1, one), 2)));
                sumi = vmlaq_n_s32(sumi, dot16(vdupq_n_s32(0), c0, ld_s8(ak), dp), scale[sub]);
                sumi = vmlaq_n_s32(sumi, dot16(vdupq_n_s32(0), c1, ld_s8(ak + 16), dp), scale[sub + 1]);
                q0 = vshrq_n_u8(q0, 2);
                q1 = vshrq_n_u8(q1, 2);
                hm0 = vshrq_n_u8(hm0, 1);
                hm1 = vshrq_n_u8(hm1, 1);
            }
        }
        sum += load_f16(xb + Q3K_D) * load_f32(yb + Q8K_D) * (float)(vaddvq_s32(sumi) - 4 * off);
    }
    *s = sum;
}

/* Q4_K: sub-block 2g = low nibbles of qs[32g..32g+31], 2g+1 = high nibbles; c in [0, 15]. */
ALWAYS_INLINE void body_q4_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy, const bool dp) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q4_K), *yb = y + i * sizeof(block_q8_K);
        const uint8_t *a = yb + Q8K_QS;
        uint8_t sm[16];
        unpack_k4_scales(xb + Q4K_SC, sm);
        const int32_t msum = k4_min_sum(sm + 8, yb + Q8K_BSUMS);
        int32x4_t sumi = vdupq_n_s32(0);
        UNROLL
        for (int g = 0; g < 4; g++) {
            const uint8x16_t q0 = ld_u8(xb + Q4K_QS + 32 * g), q1 = ld_u8(xb + Q4K_QS + 32 * g + 16);
            const uint8_t *ag = a + 64 * g;
            const int32x4_t p_lo = dot32(vdupq_n_s32(0), as_s8(vandq_u8(q0, m4)), ld_s8(ag),
                                         as_s8(vandq_u8(q1, m4)), ld_s8(ag + 16), dp);
            const int32x4_t p_hi = dot32(vdupq_n_s32(0), as_s8(vshrq_n_u8(q0, 4)), ld_s8(ag + 32),
                                         as_s8(vshrq_n_u8(q1, 4)), ld_s8(ag + 48), dp);
            sumi = vmlaq_n_s32(sumi, p_lo, sm[2 * g]);
            sumi = vmlaq_n_s32(sumi, p_hi, sm[2 * g + 1]);
        }
        const float dy = load_f32(yb + Q8K_D);
        sum += load_f16(xb + Q4K_D) * dy * (float)vaddvq_s32(sumi) - load_f16(xb + Q4K_DMIN) * dy * (float)msum;
    }
    *s = sum;
}

/* Q5_K: Q4_K plus 16 * (bit j of qh[p]) for sub-block j; c in [0, 31]. */
ALWAYS_INLINE void body_q5_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy, const bool dp) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), one = vdupq_n_u8(1), two = vdupq_n_u8(2);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q5_K), *yb = y + i * sizeof(block_q8_K);
        const uint8_t *a = yb + Q8K_QS;
        uint8_t sm[16];
        unpack_k4_scales(xb + Q5K_SC, sm);
        const int32_t msum = k4_min_sum(sm + 8, yb + Q8K_BSUMS);
        uint8x16_t qh0 = ld_u8(xb + Q5K_QH), qh1 = ld_u8(xb + Q5K_QH + 16);
        int32x4_t sumi = vdupq_n_s32(0);
        UNROLL
        for (int g = 0; g < 4; g++) {
            const uint8x16_t q0 = ld_u8(xb + Q5K_QS + 32 * g), q1 = ld_u8(xb + Q5K_QS + 32 * g + 16);
            const uint8_t *ag = a + 64 * g;
            /* bit 0 of the shifted qh -> sub-block 2g, bit 1 -> 2g+1; moved to bit 4 of the code */
            const int8x16_t l0 = as_s8(vorrq_u8(vandq_u8(q0, m4), vshlq_n_u8(vandq_u8(qh0, one), 4)));
            const int8x16_t l1 = as_s8(vorrq_u8(vandq_u8(q1, m4), vshlq_n_u8(vandq_u8(qh1, one), 4)));
            const int8x16_t h0 = as_s8(vorrq_u8(vshrq_n_u8(q0, 4), vshlq_n_u8(vandq_u8(qh0, two), 3)));
            const int8x16_t h1 = as_s8(vorrq_u8(vshrq_n_u8(q1, 4), vshlq_n_u8(vandq_u8(qh1, two), 3)));
            sumi = vmlaq_n_s32(sumi, dot32(vdupq_n_s32(0), l0, ld_s8(ag), l1, ld_s8(ag + 16), dp), sm[2 * g]);
            sumi = vmlaq_n_s32(sumi, dot32(vdupq_n_s32(0), h0, ld_s8(ag + 32), h1, ld_s8(ag + 48), dp), sm[2 * g + 1]);
            qh0 = vshrq_n_u8(qh0, 2);
            qh1 = vshrq_n_u8(qh1, 2);
        }
        const float dy = load_f32(yb + Q8K_D);
        sum += load_f16(xb + Q5K_D) * dy * (float)vaddvq_s32(sumi) - load_f16(xb + Q5K_DMIN) * dy * (float)msum;
    }
    *s = sum;
}

/* Q6_K: c = 4 low bits | 2 high bits << 4 in [0, 63]; sum sc*(c-32)*a = sum sc*c*a - 32 sum sc*bsums.
 * Per register (one sub-block of 16) |dot| <= 16*63*127, times |sc| <= 128, 16 sub-blocks < 2^31. */
ALWAYS_INLINE void body_q6_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy, const bool dp) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(3);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q6_K), *yb = y + i * sizeof(block_q8_K);
        const uint8_t *a = yb + Q8K_QS;
        const int8x16_t sc8 = ld_s8(xb + Q6K_SC);
        int8_t scale[16];
        vst1q_s8(scale, sc8);
        const int32_t off = scaled_bsums(vmovl_s8(vget_low_s8(sc8)), vmovl_high_s8(sc8), yb + Q8K_BSUMS);
        int32x4_t sumi = vdupq_n_s32(0);
        UNROLL
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = xb + Q6K_QL + 64 * h, *qh = xb + Q6K_QH + 32 * h, *ah = a + 128 * h;
            UNROLL
            for (int half = 0; half < 2; half++) {   /* p in [16*half, 16*half + 16) */
                const uint8x16_t l0 = ld_u8(ql + 16 * half), l1 = ld_u8(ql + 32 + 16 * half);
                const uint8x16_t hb = ld_u8(qh + 16 * half);
                const int8x16_t c0 = as_s8(vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m3), 4)));
                const int8x16_t c1 = as_s8(vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4)));
                const int8x16_t c2 = as_s8(vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4)));
                const int8x16_t c3 = as_s8(vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4)));
                const int sub = 8 * h + half;   /* k adds 2 */
                sumi = vmlaq_n_s32(sumi, dot16(vdupq_n_s32(0), c0, ld_s8(ah + 16 * half), dp), scale[sub]);
                sumi = vmlaq_n_s32(sumi, dot16(vdupq_n_s32(0), c1, ld_s8(ah + 32 + 16 * half), dp), scale[sub + 2]);
                sumi = vmlaq_n_s32(sumi, dot16(vdupq_n_s32(0), c2, ld_s8(ah + 64 + 16 * half), dp), scale[sub + 4]);
                sumi = vmlaq_n_s32(sumi, dot16(vdupq_n_s32(0), c3, ld_s8(ah + 96 + 16 * half), dp), scale[sub + 6]);
            }
        }
        sum += load_f16(xb + Q6K_D) * load_f32(yb + Q8K_D) * (float)(vaddvq_s32(sumi) - 32 * off);
    }
    *s = sum;
}

/* IQ4_XS: per 32-element sub-block K[c] . a (dot16: |K| up to 127), scaled by ls - 32. */
ALWAYS_INLINE void body_iq4_xs(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy, const bool dp) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const int8x16_t table = vld1q_s8(kvalues_iq4nl);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_iq4_xs), *yb = y + i * sizeof(block_q8_K);
        const uint8_t *a = yb + Q8K_QS;
        uint16_t sh;
        memcpy(&sh, xb + IQ4XS_SH, sizeof sh);
        int32x4_t sumi = vdupq_n_s32(0);
        UNROLL
        for (int ib = 0; ib < 8; ib++) {
            const int ls = ((xb[IQ4XS_SL + ib / 2] >> 4 * (ib % 2)) & 15) | (((sh >> 2 * ib) & 3) << 4);
            const uint8x16_t q = ld_u8(xb + IQ4XS_QS + 16 * ib);
            int32x4_t p = dot16(vdupq_n_s32(0), vqtbl1q_s8(table, vandq_u8(q, m4)), ld_s8(a + 32 * ib), dp);
            p = dot16(p, vqtbl1q_s8(table, vshrq_n_u8(q, 4)), ld_s8(a + 32 * ib + 16), dp);
            sumi = vmlaq_n_s32(sumi, p, ls - 32);
        }
        sum += load_f16(xb + IQ4XS_D) * load_f32(yb + Q8K_D) * (float)vaddvq_s32(sumi);
    }
    *s = sum;
}

/* Minus the trit t = (m * 3) >> 8 of each byte m: 0, -1 (m >= 86) or -2 (m >= 171), as int8. */
static inline int8x16_t neg_trit(uint8x16_t m) {
    return vaddq_s8(vreinterpretq_s8_u8(vcgeq_u8(m, vdupq_n_u8(86))), vreinterpretq_s8_u8(vcgeq_u8(m, vdupq_n_u8(171))));
}

/* TQ1_0: sum (t-1) a = -(sum (-t) a) - sum a. Trit n of byte b is the trit of b * 3^n mod 256
 * (vmulq_u8 wraps). Weights |-t| <= 2 -> dot32. */
ALWAYS_INLINE void body_tq1_0(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy, const bool dp) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    static const uint8_t pow3_qh[16] = { 1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27 };
    const uint8x16_t qh_mul = vld1q_u8(pow3_qh);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_tq1_0), *yb = y + i * sizeof(block_q8_K);
        const uint8_t *a = yb + Q8K_QS;
        int32x4_t acc = vdupq_n_s32(0);
        /* qs[0..31]: element 32n + m is trit n of qs[m] */
        uint8x16_t b0 = ld_u8(xb + TQ1_QS), b1 = ld_u8(xb + TQ1_QS + 16);
        /* qs[32..47]: element 160 + 16n + m is trit n of qs[32 + m] */
        uint8x16_t b2 = ld_u8(xb + TQ1_QS + 32);
        UNROLL
        for (int t = 0; t < 5; t++) {
            acc = dot32(acc, neg_trit(b0), ld_s8(a + 32 * t), neg_trit(b1), ld_s8(a + 32 * t + 16), dp);
            acc = dot16(acc, neg_trit(b2), ld_s8(a + 160 + 16 * t), dp);
            b0 = vmulq_u8(b0, vdupq_n_u8(3));
            b1 = vmulq_u8(b1, vdupq_n_u8(3));
            b2 = vmulq_u8(b2, vdupq_n_u8(3));
        }
        /* qh[0..3]: element 240 + 4n + j is trit n of qh[j] */
        uint32_t qh;
        memcpy(&qh, xb + TQ1_QH, sizeof qh);
        const uint8x16_t bh = vmulq_u8(vreinterpretq_u8_u32(vdupq_n_u32(qh)), qh_mul);
        acc = dot16(acc, neg_trit(bh), ld_s8(a + 240), dp);
        const int32_t sum_a = vaddvq_s32(vpaddlq_s16(vaddq_s16(ld_s16(yb + Q8K_BSUMS), ld_s16(yb + Q8K_BSUMS + 16))));
        sum += (float)(-vaddvq_s32(acc) - sum_a) * (load_f16(xb + TQ1_D) * load_f32(yb + Q8K_D));
    }
    *s = sum;
}

/* TQ2_0: sum (c-1) a = sum c a - sum a; c in [0, 3] -> dot32. */
ALWAYS_INLINE void body_tq2_0(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy, const bool dp) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const uint8x16_t m3 = vdupq_n_u8(3);
    float sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_tq2_0), *yb = y + i * sizeof(block_q8_K);
        const uint8_t *a = yb + Q8K_QS;
        int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
        UNROLL
        for (int h = 0; h < 2; h++) {
            const uint8x16_t q0 = ld_u8(xb + TQ2_QS + 32 * h), q1 = ld_u8(xb + TQ2_QS + 32 * h + 16);
            const uint8_t *ah = a + 128 * h;
            acc0 = dot32(acc0, as_s8(vandq_u8(q0, m3)), ld_s8(ah), as_s8(vandq_u8(q1, m3)), ld_s8(ah + 16), dp);
            acc1 = dot32(acc1, as_s8(vandq_u8(vshrq_n_u8(q0, 2), m3)), ld_s8(ah + 32),
                         as_s8(vandq_u8(vshrq_n_u8(q1, 2), m3)), ld_s8(ah + 48), dp);
            acc0 = dot32(acc0, as_s8(vandq_u8(vshrq_n_u8(q0, 4), m3)), ld_s8(ah + 64),
                         as_s8(vandq_u8(vshrq_n_u8(q1, 4), m3)), ld_s8(ah + 80), dp);
            acc1 = dot32(acc1, as_s8(vshrq_n_u8(q0, 6)), ld_s8(ah + 96), as_s8(vshrq_n_u8(q1, 6)), ld_s8(ah + 112), dp);
        }
        const int32_t sum_a = vaddvq_s32(vpaddlq_s16(vaddq_s16(ld_s16(yb + Q8K_BSUMS), ld_s16(yb + Q8K_BSUMS + 16))));
        sum += (float)(vaddvq_s32(vaddq_s32(acc0, acc1)) - sum_a) * (load_f16(xb + TQ2_D) * load_f32(yb + Q8K_D));
    }
    *s = sum;
}

/* ---- BitNet I2_S x I8_S ------------------------------------------------------------------------ */

/* Bit-exact with the reference: S = sum code*a (codes 0..3, I8_S codes may be -128 -> dot32 bound
 * 4*3*128), total in int64, then (float)(S - A) / s_act. Each group adds <= 8 * 4*3*128 per int32
 * lane; the lanes are flushed to int64 every 4096 groups. */
ALWAYS_INLINE void body_i2_s(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy, const bool dp) {
    const uint8_t *x = vx, *a = vy;
    const int64_t ng = n / QK_I2S;
    const uint8x16_t m3 = vdupq_n_u8(3);
    int32x4_t acc = vdupq_n_s32(0);
    int64_t total = 0;
    for (int64_t g = 0; g < ng; g++) {
        const uint8x16_t q0 = ld_u8(x + 32 * g), q1 = ld_u8(x + 32 * g + 16);
        const uint8_t *ag = a + QK_I2S * g;
        /* byte p holds elements p, p+32, p+64, p+96 in bits 7-6, 5-4, 3-2, 1-0 */
        acc = dot32(acc, as_s8(vshrq_n_u8(q0, 6)), ld_s8(ag), as_s8(vshrq_n_u8(q1, 6)), ld_s8(ag + 16), dp);
        acc = dot32(acc, as_s8(vandq_u8(vshrq_n_u8(q0, 4), m3)), ld_s8(ag + 32),
                    as_s8(vandq_u8(vshrq_n_u8(q1, 4), m3)), ld_s8(ag + 48), dp);
        acc = dot32(acc, as_s8(vandq_u8(vshrq_n_u8(q0, 2), m3)), ld_s8(ag + 64),
                    as_s8(vandq_u8(vshrq_n_u8(q1, 2), m3)), ld_s8(ag + 80), dp);
        acc = dot32(acc, as_s8(vandq_u8(q0, m3)), ld_s8(ag + 96), as_s8(vandq_u8(q1, m3)), ld_s8(ag + 112), dp);
        if ((g & 4095) == 4095) {
            total += vaddlvq_s32(acc);
            acc = vdupq_n_s32(0);
        }
    }
    total += vaddlvq_s32(acc);
    float act_scale;
    int32_t act_sum;
    memcpy(&act_scale, a + I8S_SCALE_OFFSET(n), sizeof act_scale);
    memcpy(&act_sum, a + I8S_SUM_OFFSET(n), sizeof act_sum);
    *s = (float)(total - act_sum) / act_scale;
}

/* ---- 4-column kernels (kern_vec_dot4_fn): one weight row against 4 activation rows ------------------
 * Each weight block is decoded once and used against the 4 activation blocks; per column every float
 * operation is the one of the single kernel (body_*) above, in the same order, so s[k] is
 * bit-identical to it. Integer partial sums are exact, so their grouping does not matter. */

/* Q4_0: as step_q4_0 for 4 columns. */
ALWAYS_INLINE void step4_q4_0(const uint8_t *xb, const uint8_t *yb, size_t ys, float32x4_t acc[4], const bool dp) {
    const uint8x16_t q = ld_u8(xb + Q4_0_QS);
    const int8x16_t eight = vdupq_n_s8(8);
    const int8x16_t lo = vsubq_s8(as_s8(vandq_u8(q, vdupq_n_u8(0x0F))), eight);
    const int8x16_t hi = vsubq_s8(as_s8(vshrq_n_u8(q, 4)), eight);
    const float dx = load_f16(xb + Q4_0_D);
    for (int k = 0; k < 4; k++) {
        const uint8_t *yk = yb + (size_t)k * ys;
        const int32x4_t p = dot32(vdupq_n_s32(0), lo, ld_s8(yk + Q8_0_QS), hi, ld_s8(yk + Q8_0_QS + 16), dp);
        acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(p), dx * load_f16(yk + Q8_0_D));
    }
}

/* Q8_0: as step_q8_0 for 4 columns. */
ALWAYS_INLINE void step4_q8_0(const uint8_t *xb, const uint8_t *yb, size_t ys, float32x4_t acc[4], const bool dp) {
    const int8x16_t w0 = ld_s8(xb + Q8_0_QS), w1 = ld_s8(xb + Q8_0_QS + 16);
    const float dx = load_f16(xb + Q8_0_D);
    for (int k = 0; k < 4; k++) {
        const uint8_t *yk = yb + (size_t)k * ys;
        int32x4_t p = dot16(vdupq_n_s32(0), w0, ld_s8(yk + Q8_0_QS), dp);
        p = dot16(p, w1, ld_s8(yk + Q8_0_QS + 16), dp);
        acc[k] = vfmaq_n_f32(acc[k], vcvtq_f32_s32(p), dx * load_f16(yk + Q8_0_D));
    }
}

/* Mirrors BLOCK_DOT_32 (no min term here: min_sum stays 0.0f but is still added, as there). */
#define BLOCK_DOT4_32(name, step4_fn, x_block_bytes, y_block_bytes)                                   \
    ALWAYS_INLINE void name(int64_t n, float *s, const void *vx, const void *vy, size_t ys, const bool dp) { \
        const uint8_t *x = vx, *y = vy;                                                              \
        const int64_t nb = n / 32;                                                                   \
        float32x4_t acc0[4], acc1[4];                                                                \
        for (int k = 0; k < 4; k++) acc0[k] = acc1[k] = vdupq_n_f32(0);                              \
        const float min_sum = 0.0f;                                                                  \
        int64_t i = 0;                                                                               \
        for (; i + 2 <= nb; i += 2) {                                                                \
            step4_fn(x + i * (x_block_bytes), y + i * (y_block_bytes), ys, acc0, dp);                \
            step4_fn(x + (i + 1) * (x_block_bytes), y + (i + 1) * (y_block_bytes), ys, acc1, dp);    \
        }                                                                                            \
        if (i < nb) step4_fn(x + i * (x_block_bytes), y + i * (y_block_bytes), ys, acc0, dp);        \
        for (int k = 0; k < 4; k++) s[k] = vaddvq_f32(vaddq_f32(acc0[k], acc1[k])) + min_sum;        \
    }
BLOCK_DOT4_32(body4_q4_0, step4_q4_0, sizeof(block_q4_0), sizeof(block_q8_0))
BLOCK_DOT4_32(body4_q8_0, step4_q8_0, sizeof(block_q8_0), sizeof(block_q8_0))

/* Q4_K: as body_q4_K for 4 columns. */
ALWAYS_INLINE void body4_q4_K(int64_t n, float *s, const void *vx, const void *vy, size_t ys, const bool dp) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float sum[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q4_K), *yb = y + i * sizeof(block_q8_K);
        uint8_t sm[16];
        unpack_k4_scales(xb + Q4K_SC, sm);
        int32x4_t sumi[4];
        for (int k = 0; k < 4; k++) sumi[k] = vdupq_n_s32(0);
        UNROLL
        for (int g = 0; g < 4; g++) {
            const uint8x16_t q0 = ld_u8(xb + Q4K_QS + 32 * g), q1 = ld_u8(xb + Q4K_QS + 32 * g + 16);
            const int8x16_t l0 = as_s8(vandq_u8(q0, m4)), l1 = as_s8(vandq_u8(q1, m4));
            const int8x16_t h0 = as_s8(vshrq_n_u8(q0, 4)), h1 = as_s8(vshrq_n_u8(q1, 4));
            for (int k = 0; k < 4; k++) {
                const uint8_t *ag = yb + (size_t)k * ys + Q8K_QS + 64 * g;
                const int32x4_t p_lo = dot32(vdupq_n_s32(0), l0, ld_s8(ag), l1, ld_s8(ag + 16), dp);
                const int32x4_t p_hi = dot32(vdupq_n_s32(0), h0, ld_s8(ag + 32), h1, ld_s8(ag + 48), dp);
                sumi[k] = vmlaq_n_s32(sumi[k], p_lo, sm[2 * g]);
                sumi[k] = vmlaq_n_s32(sumi[k], p_hi, sm[2 * g + 1]);
            }
        }
        const float dx = load_f16(xb + Q4K_D), dmin = load_f16(xb + Q4K_DMIN);
        for (int k = 0; k < 4; k++) {
            const uint8_t *yk = yb + (size_t)k * ys;
            const int32_t msum = k4_min_sum(sm + 8, yk + Q8K_BSUMS);
            const float dy = load_f32(yk + Q8K_D);
            sum[k] += dx * dy * (float)vaddvq_s32(sumi[k]) - dmin * dy * (float)msum;
        }
    }
    for (int k = 0; k < 4; k++) s[k] = sum[k];
}

/* Q6_K: as body_q6_K for 4 columns. */
ALWAYS_INLINE void body4_q6_K(int64_t n, float *s, const void *vx, const void *vy, size_t ys, const bool dp) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(3);
    float sum[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q6_K), *yb = y + i * sizeof(block_q8_K);
        const int8x16_t sc8 = ld_s8(xb + Q6K_SC);
        int8_t scale[16];
        vst1q_s8(scale, sc8);
        const int16x8_t sc_lo = vmovl_s8(vget_low_s8(sc8)), sc_hi = vmovl_high_s8(sc8);
        int32x4_t sumi[4];
        for (int k = 0; k < 4; k++) sumi[k] = vdupq_n_s32(0);
        UNROLL
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = xb + Q6K_QL + 64 * h, *qh = xb + Q6K_QH + 32 * h;
            UNROLL
            for (int half = 0; half < 2; half++) {
                const uint8x16_t l0 = ld_u8(ql + 16 * half), l1 = ld_u8(ql + 32 + 16 * half);
                const uint8x16_t hb = ld_u8(qh + 16 * half);
                const int8x16_t c0 = as_s8(vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m3), 4)));
                const int8x16_t c1 = as_s8(vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4)));
                const int8x16_t c2 = as_s8(vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4)));
                const int8x16_t c3 = as_s8(vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4)));
                const int sub = 8 * h + half;
                for (int k = 0; k < 4; k++) {
                    const uint8_t *ah = yb + (size_t)k * ys + Q8K_QS + 128 * h;
                    sumi[k] = vmlaq_n_s32(sumi[k], dot16(vdupq_n_s32(0), c0, ld_s8(ah + 16 * half), dp), scale[sub]);
                    sumi[k] = vmlaq_n_s32(sumi[k], dot16(vdupq_n_s32(0), c1, ld_s8(ah + 32 + 16 * half), dp), scale[sub + 2]);
                    sumi[k] = vmlaq_n_s32(sumi[k], dot16(vdupq_n_s32(0), c2, ld_s8(ah + 64 + 16 * half), dp), scale[sub + 4]);
                    sumi[k] = vmlaq_n_s32(sumi[k], dot16(vdupq_n_s32(0), c3, ld_s8(ah + 96 + 16 * half), dp), scale[sub + 6]);
                }
            }
        }
        const float dx = load_f16(xb + Q6K_D);
        for (int k = 0; k < 4; k++) {
            const uint8_t *yk = yb + (size_t)k * ys;
            const int32_t off = scaled_bsums(sc_lo, sc_hi, yk + Q8K_BSUMS);
            sum[k] += dx * load_f32(yk + Q8K_D) * (float)(vaddvq_s32(sumi[k]) - 32 * off);
        }
    }
    for (int k = 0; k < 4; k++) s[k] = sum[k];
}

/* ---- the two families --------------------------------------------------------------------------- */

#define NEON_WRAPPERS(type)                                                                           \
    static void type##_neon(int64_t n, float *restrict s, const void *restrict x, const void *restrict y) { \
        body_##type(n, s, x, y, false);                                                               \
    }                                                                                                 \
    DOTPROD_WRAPPER(type)

#if defined(__ARM_FEATURE_DOTPROD)
#define DOTPROD_WRAPPER(type)                                                                         \
    static void type##_dotprod(int64_t n, float *restrict s, const void *restrict x, const void *restrict y) { \
        body_##type(n, s, x, y, true);                                                                \
    }
#else
#define DOTPROD_WRAPPER(type)
#endif

#define NEON_WRAPPERS4(type)                                                                          \
    static void type##_neon4(int64_t n, float *s, const void *x, const void *y, size_t ys) {         \
        body4_##type(n, s, x, y, ys, false);                                                          \
    }                                                                                                 \
    DOTPROD_WRAPPER4(type)

#if defined(__ARM_FEATURE_DOTPROD)
#define DOTPROD_WRAPPER4(type)                                                                        \
    static void type##_dotprod4(int64_t n, float *s, const void *x, const void *y, size_t ys) {      \
        body4_##type(n, s, x, y, ys, true);                                                           \
    }
#else
#define DOTPROD_WRAPPER4(type)
#endif

NEON_WRAPPERS4(q4_0)
NEON_WRAPPERS4(q8_0)
NEON_WRAPPERS4(q4_K)
NEON_WRAPPERS4(q6_K)

NEON_WRAPPERS(q4_0)
NEON_WRAPPERS(q4_1)
NEON_WRAPPERS(q5_0)
NEON_WRAPPERS(q5_1)
NEON_WRAPPERS(q8_0)
NEON_WRAPPERS(iq4_nl)
NEON_WRAPPERS(q2_K)
NEON_WRAPPERS(q3_K)
NEON_WRAPPERS(q4_K)
NEON_WRAPPERS(q5_K)
NEON_WRAPPERS(q6_K)
NEON_WRAPPERS(iq4_xs)
NEON_WRAPPERS(tq1_0)
NEON_WRAPPERS(tq2_0)
NEON_WRAPPERS(i2_s)

const kern_dot_entry kern_dots_neon[] = {
    { LLMPI_TYPE_F32, dot_f32 },
    { LLMPI_TYPE_F16, dot_f16 },
    { LLMPI_TYPE_BF16, dot_bf16 },
    { LLMPI_TYPE_Q4_0, q4_0_neon },
    { LLMPI_TYPE_Q4_1, q4_1_neon },
    { LLMPI_TYPE_Q5_0, q5_0_neon },
    { LLMPI_TYPE_Q5_1, q5_1_neon },
    { LLMPI_TYPE_Q8_0, q8_0_neon },
    { LLMPI_TYPE_IQ4_NL, iq4_nl_neon },
    { LLMPI_TYPE_Q2_K, q2_K_neon },
    { LLMPI_TYPE_Q3_K, q3_K_neon },
    { LLMPI_TYPE_Q4_K, q4_K_neon },
    { LLMPI_TYPE_Q5_K, q5_K_neon },
    { LLMPI_TYPE_Q6_K, q6_K_neon },
    { LLMPI_TYPE_IQ4_XS, iq4_xs_neon },
    { LLMPI_TYPE_TQ1_0, tq1_0_neon },
    { LLMPI_TYPE_TQ2_0, tq2_0_neon },
    { LLMPI_TYPE_I2_S, i2_s_neon },
    { LLMPI_TYPE_COUNT, NULL },
};

/* 4-column kernels (each type is also served by this family's single kernel). */
const kern_dot4_entry kern_dots4_neon[] = {
    { LLMPI_TYPE_Q4_0, q4_0_neon4 },
    { LLMPI_TYPE_Q8_0, q8_0_neon4 },
    { LLMPI_TYPE_Q4_K, q4_K_neon4 },
    { LLMPI_TYPE_Q6_K, q6_K_neon4 },
    { LLMPI_TYPE_COUNT, NULL },
};

#if defined(__ARM_FEATURE_DOTPROD)
const kern_dot4_entry kern_dots4_neon_dotprod[] = {
    { LLMPI_TYPE_Q4_0, q4_0_dotprod4 },
    { LLMPI_TYPE_Q8_0, q8_0_dotprod4 },
    { LLMPI_TYPE_Q4_K, q4_K_dotprod4 },
    { LLMPI_TYPE_Q6_K, q6_K_dotprod4 },
    { LLMPI_TYPE_COUNT, NULL },
};

/* F32 / F16 / BF16 have no integer part: they fall back to the neon family. */
const kern_dot_entry kern_dots_neon_dotprod[] = {
    { LLMPI_TYPE_Q4_0, q4_0_dotprod },
    { LLMPI_TYPE_Q4_1, q4_1_dotprod },
    { LLMPI_TYPE_Q5_0, q5_0_dotprod },
    { LLMPI_TYPE_Q5_1, q5_1_dotprod },
    { LLMPI_TYPE_Q8_0, q8_0_dotprod },
    { LLMPI_TYPE_IQ4_NL, iq4_nl_dotprod },
    { LLMPI_TYPE_Q2_K, q2_K_dotprod },
    { LLMPI_TYPE_Q3_K, q3_K_dotprod },
    { LLMPI_TYPE_Q4_K, q4_K_dotprod },
    { LLMPI_TYPE_Q5_K, q5_K_dotprod },
    { LLMPI_TYPE_Q6_K, q6_K_dotprod },
    { LLMPI_TYPE_IQ4_XS, iq4_xs_dotprod },
    { LLMPI_TYPE_TQ1_0, tq1_0_dotprod },
    { LLMPI_TYPE_TQ2_0, tq2_0_dotprod },
    { LLMPI_TYPE_I2_S, i2_s_dotprod },
    { LLMPI_TYPE_COUNT, NULL },
};
#endif

/* F16 weights x F32 activations (kern_vec_dot_for(F16, F32); see kern_dot_f16_f32_avx2). */
void kern_dot_f16_f32_neon(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx;
    const float *y = vy;
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0), acc2 = vdupq_n_f32(0), acc3 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const float16x8_t x0 = vreinterpretq_f16_u8(vld1q_u8(x + 2 * i)), x1 = vreinterpretq_f16_u8(vld1q_u8(x + 2 * i + 16));
        acc0 = vfmaq_f32(acc0, vcvt_f32_f16(vget_low_f16(x0)), vld1q_f32(y + i));
        acc1 = vfmaq_f32(acc1, vcvt_high_f32_f16(x0), vld1q_f32(y + i + 4));
        acc2 = vfmaq_f32(acc2, vcvt_f32_f16(vget_low_f16(x1)), vld1q_f32(y + i + 8));
        acc3 = vfmaq_f32(acc3, vcvt_high_f32_f16(x1), vld1q_f32(y + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        acc0 = vfmaq_f32(acc0, vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(x + 2 * i))), vld1q_f32(y + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc0, acc1), vaddq_f32(acc2, acc3)));
    for (; i < n; i++) sum += load_f16(x + 2 * i) * y[i];
    *s = sum;
}

#else
typedef int dot_neon_not_built_on_this_arch; /* ISO C wants a non-empty translation unit */
#endif
