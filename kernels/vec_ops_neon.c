/* NEON (AArch64 Advanced SIMD) float vector ops computing ggml's x86 AVX-512 numerics
 * (kernels/vec_ops_impl.h) with 4-lane vectors: a 16-element chunk is four vectors, scalef is
 * emulated with two exact power-of-two multiplies, the chunk sum uses reduce_add_ps's association.
 * Bit-identical to the scalar reference, so aarch64 logits equal x86 ones. (llama.cpp on aarch64
 * uses its NEON ggml_v_expf instead -- 4-lane chunks, result k + k*j -- which differs from its own
 * x86 result by about 1 ulp per exp; we match the x86 build that produced the goldens.)
 * GELU and RoPE use the scalar code on aarch64 (table lookups; fmaf is one instruction here). */
#include "kernels.h"
#include "vec_ops_impl.h"

#if defined(__aarch64__)
#include <arm_neon.h>

static inline float32x4_t v_expf(float32x4_t x) {
    const float32x4_t r = vdupq_n_f32(VEXP_SHIFT);
    const float32x4_t z = vfmaq_f32(r, x, vdupq_n_f32(VEXP_LOG2E));
    const float32x4_t n = vsubq_f32(z, r);
    /* fnmadd(n, c, x) = x - n*c, one rounding: vfmsq_f32(x, n, c) */
    const float32x4_t b = vfmsq_f32(vfmsq_f32(x, n, vdupq_n_f32(VEXP_LN2HI)), n, vdupq_n_f32(VEXP_LN2LO));
    const float32x4_t u = vmulq_f32(b, b);
    const float32x4_t p1 = vfmaq_f32(vdupq_n_f32(VEXP_C3), vdupq_n_f32(VEXP_C4), b);
    const float32x4_t p2 = vfmaq_f32(vdupq_n_f32(VEXP_C1), vdupq_n_f32(VEXP_C2), b);
    const float32x4_t p3 = vfmaq_f32(vdupq_n_f32(1.0f), vdupq_n_f32(VEXP_C0), b);
    const float32x4_t j = vfmaq_f32(p3, vfmaq_f32(p2, p1, u), u);
    /* scalef(j, n), |n| <= 192: j * 2^k1 (exact) * 2^k2 (one rounding). vcvtq_s32_f32 saturates and
     * maps NaN to 0, so every lane gets finite factors; NaN lanes stay NaN through j. */
    const int32x4_t k = vcvtq_s32_f32(n);
    const int32x4_t k1 = vshrq_n_s32(k, 1);
    const int32x4_t k2 = vsubq_s32(k, k1);
    const int32x4_t bias = vdupq_n_s32(127);
    const float32x4_t f1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k1, bias), 23));
    const float32x4_t f2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k2, bias), 23));
    const float32x4_t res = vmulq_f32(vmulq_f32(j, f1), f2);
    const uint32x4_t d = vcagtq_f32(n, vdupq_n_f32(192.0f));  /* |n| > 192, false for NaN */
    if (vmaxvq_u32(d) == 0) return res;
    const uint32x4_t le0 = vclezq_f32(n);
    const float32x4_t alt = vbslq_f32(le0, vdupq_n_f32(0.0f), vdupq_n_f32(INFINITY));
    return vbslq_f32(d, alt, res);
}

static inline float32x4_t v_silu(float32x4_t x) {
    const float32x4_t e = v_expf(vsubq_f32(vdupq_n_f32(0.0f), x));
    return vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), e));
}

void kern_swiglu16_neon(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i += 4) {
        const float32x4_t g = vld1q_f32(gate + i), u = vld1q_f32(up + i);
        vst1q_f32(out + i, vmulq_f32(v_silu(g), u));
    }
}

double kern_softmax_exp16_neon(float *x, int64_t n, float max) {
    const float32x4_t vmax = vdupq_n_f32(max);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i += 16) {
        const float32x4_t v0 = v_expf(vsubq_f32(vld1q_f32(x + i), vmax));
        const float32x4_t v1 = v_expf(vsubq_f32(vld1q_f32(x + i + 4), vmax));
        const float32x4_t v2 = v_expf(vsubq_f32(vld1q_f32(x + i + 8), vmax));
        const float32x4_t v3 = v_expf(vsubq_f32(vld1q_f32(x + i + 12), vmax));
        vst1q_f32(x + i, v0);
        vst1q_f32(x + i + 4, v1);
        vst1q_f32(x + i + 8, v2);
        vst1q_f32(x + i + 12, v3);
        /* s[i] = v[i] + v[i+8] (lanes 0..3 and 4..7), t[i] = s[i] + s[i+4], (t0+t2) + (t1+t3) */
        const float32x4_t t = vaddq_f32(vaddq_f32(v0, v2), vaddq_f32(v1, v3));
        const float32x2_t w = vadd_f32(vget_low_f32(t), vget_high_f32(t));
        sum += (double)(vget_lane_f32(w, 0) + vget_lane_f32(w, 1));
    }
    return sum;
}
#else
typedef int vec_ops_neon_empty_tu; /* this file only has code for aarch64 */
#endif
