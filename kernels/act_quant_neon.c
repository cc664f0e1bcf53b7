/* NEON (aarch64) activation quantizers for Q8_0, Q8_1 and Q8_K, byte-identical to quant/act_quant.c's
 * quantize_row_q8_0_act / _q8_1_act / _q8_K_act (the from_float of the type table, x86 rule), used
 * by kern_matmul through kern_act_quant() when the neon / neon-dotprod family is selected.
 * Same argument as kernels/act_quant_avx2.c: identical scalar scale expressions, lane-wise identical
 * multiplies, order-independent max (NaN lanes are zeroed first, matching the scalar `ax > amax`
 * skip), and FCVTNS (to nearest, ties to even) equals quant_nearest_int for |v| <= 2^22. Lanes with
 * |v| > 2^22 or NaN (only NaN/Inf inputs or an infinite scale produce them) get 0, the low byte the
 * 1.5*2^23 trick leaves for them. */
#include "cpu_features.h"

#if defined(__aarch64__)
#include "blocks.h"
#include "ref.h"

#include <arm_neon.h>
#include <math.h>
#include <string.h>

/* |x| with NaN lanes turned into +0. */
static inline float32x4_t abs_no_nan(float32x4_t x) {
    const float32x4_t a = vabsq_f32(x);
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(a), vceqq_f32(a, a)));
}

/* Round to int32 like quant_nearest_int; NaN / |v| > 2^22 -> 0. */
static inline int32x4_t round_codes(float32x4_t v) {
    const uint32x4_t in_range = vcaleq_f32(v, vdupq_n_f32(4194304.0f));   /* false for NaN */
    return vreinterpretq_s32_u32(vandq_u32(vreinterpretq_u32_s32(vcvtnq_s32_f32(v)), in_range));
}

/* 4 x 4 int32 codes in [-127, 127] -> 16 int8 in order (plain narrowing, values fit). */
static inline int8x16_t narrow16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    const int16x8_t lo = vcombine_s16(vmovn_s32(a), vmovn_s32(b)), hi = vcombine_s16(vmovn_s32(c), vmovn_s32(d));
    return vcombine_s8(vmovn_s16(lo), vmovn_s16(hi));
}

enum { Q8_0_D = offsetof(block_q8_0, d), Q8_0_QS = offsetof(block_q8_0, qs),
       Q8_1_D = offsetof(block_q8_1, d), Q8_1_S = offsetof(block_q8_1, s), Q8_1_QS = offsetof(block_q8_1, qs),
       Q8K_D = offsetof(block_q8_K, d), Q8K_QS = offsetof(block_q8_K, qs), Q8K_BSUMS = offsetof(block_q8_K, bsums) };

void kern_quantize_row_q8_0_neon(const float *restrict x, void *restrict vy, int64_t n) {
    uint8_t *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0, y += sizeof(block_q8_0)) {
        float32x4_t v[8], m = vdupq_n_f32(0.0f);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(x + 4 * k);
            m = vmaxq_f32(m, abs_no_nan(v[k]));
        }
        const float amax = vmaxvq_f32(m);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32x4_t q[8];
        for (int k = 0; k < 8; k++) q[k] = round_codes(vmulq_n_f32(v[k], id));
        vst1q_s8((int8_t *)(y + Q8_0_QS), narrow16(q[0], q[1], q[2], q[3]));
        vst1q_s8((int8_t *)(y + Q8_0_QS + 16), narrow16(q[4], q[5], q[6], q[7]));
        const uint16_t h = quant_f32_to_f16(d);
        memcpy(y + Q8_0_D, &h, sizeof h);
    }
}

/* Q8_1: the Q8_0 codes and d plus s = f16(d * sum of the codes), f32 d. A block with a lane that is NaN
 * or beyond 2^22 (only from NaN/Inf inputs or an infinite 127 / amax) goes through the reference, whose
 * sum adds quant_nearest_int's full int for such lanes (see kernels/act_quant_avx2.c). */
void kern_quantize_row_q8_1_neon(const float *restrict x, void *restrict vy, int64_t n) {
    uint8_t *y = vy;
    const float32x4_t limit = vdupq_n_f32(4194304.0f);   /* 2^22 */
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1, y += sizeof(block_q8_1)) {
        float32x4_t v[8], m = vdupq_n_f32(0.0f);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(x + 4 * k);
            m = vmaxq_f32(m, abs_no_nan(v[k]));
        }
        const float amax = vmaxvq_f32(m);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32x4_t q[8];
        uint32x4_t in_range = vdupq_n_u32(0xFFFFFFFFu);
        for (int k = 0; k < 8; k++) {
            const float32x4_t scaled = vmulq_n_f32(v[k], id);
            in_range = vandq_u32(in_range, vcaleq_f32(scaled, limit));   /* false for NaN */
            q[k] = vcvtnq_s32_f32(scaled);
        }
        if (vminvq_u32(in_range) == 0) {
            block_q8_1 ref;   /* aligned: the reference writes struct members, y may be at any address */
            quantize_row_q8_1_act(x, &ref, QK8_1);
            memcpy(y, &ref, sizeof ref);
            continue;
        }
        vst1q_s8((int8_t *)(y + Q8_1_QS), narrow16(q[0], q[1], q[2], q[3]));
        vst1q_s8((int8_t *)(y + Q8_1_QS + 16), narrow16(q[4], q[5], q[6], q[7]));
        int32x4_t s4 = vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3]));
        s4 = vaddq_s32(s4, vaddq_s32(vaddq_s32(q[4], q[5]), vaddq_s32(q[6], q[7])));
        const int sum = vaddvq_s32(s4);   /* |sum| <= 32 * 127 */
        const uint16_t hd = quant_f32_to_f16(d), hs = quant_f32_to_f16(d * (float)sum);
        memcpy(y + Q8_1_D, &hd, sizeof hd);
        memcpy(y + Q8_1_S, &hs, sizeof hs);
    }
}

void kern_quantize_row_q8_K_neon(const float *restrict x, void *restrict vy, int64_t n) {
    uint8_t *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, y += sizeof(block_q8_K)) {
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < QK_K / 4; k++) m = vmaxq_f32(m, abs_no_nan(vld1q_f32(x + 4 * k)));
        const float amax = vmaxvq_f32(m);
        if (amax == 0.0f) {
            memset(y, 0, sizeof(block_q8_K));   /* d = 0.0f, qs = 0, bsums = 0 */
            continue;
        }
        float max = 0.0f;   /* the first element with |x| == amax (it exists) */
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) == amax) { max = x[j]; break; }
        const float iscale = -127.0f / max;
        const int32x4_t cap = vdupq_n_s32(127);
        int16_t bsums[QK_K / 16];
        for (int g = 0; g < QK_K / 16; g++) {
            int32x4_t q[4];
            for (int k = 0; k < 4; k++)
                q[k] = vminq_s32(round_codes(vmulq_n_f32(vld1q_f32(x + 16 * g + 4 * k), iscale)), cap);
            vst1q_s8((int8_t *)(y + Q8K_QS + 16 * g), narrow16(q[0], q[1], q[2], q[3]));
            bsums[g] = (int16_t)vaddvq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3])));
        }
        memcpy(y + Q8K_BSUMS, bsums, sizeof bsums);
        const float d = 1.0f / iscale;
        memcpy(y + Q8K_D, &d, sizeof d);
    }
}
#endif
