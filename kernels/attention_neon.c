/* AArch64 NEON attention building blocks (ARMv8.0: fcvtl/fcvtn for f16, no FP16 arithmetic);
 * contracts in attention.h (kern_attn_ops). Separate multiply and add (no fmla) so results equal
 * the scalar ops bit for bit. Used by the "neon" and "neon-dotprod" families (Pi 4 and Pi 5). */
#if defined(__aarch64__)
#include "attention.h"
#include "quant.h"

#include <arm_neon.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static float32x4_t load4(const void *row, bool f16, int d0, int m) {
    if (m == 4)
        return f16 ? vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)row + d0)))
                   : vld1q_f32((const float *)row + d0);
    if (f16) {
        uint16_t b[4] = { 0 };
        memcpy(b, (const uint16_t *)row + d0, (size_t)m * sizeof(uint16_t));
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(b)));
    }
    float b[4] = { 0 };
    memcpy(b, (const float *)row + d0, (size_t)m * sizeof(float));
    return vld1q_f32(b);
}

static void k_tile_neon(const void *const rows[ATTN_KT], bool f16, int D, float *kt) {
    for (int d0 = 0; d0 < D; d0 += 4) {
        const int m = D - d0 < 4 ? D - d0 : 4;
        for (int g = 0; g < ATTN_KT / 4; g++) {
            const float32x4_t r0 = load4(rows[4 * g], f16, d0, m), r1 = load4(rows[4 * g + 1], f16, d0, m);
            const float32x4_t r2 = load4(rows[4 * g + 2], f16, d0, m), r3 = load4(rows[4 * g + 3], f16, d0, m);
            /* 4 x 4 transpose: a0 = r0[0] r1[0] r0[2] r1[2], a1 = r0[1] r1[1] r0[3] r1[3], ... */
            const float64x2_t a0 = vreinterpretq_f64_f32(vtrn1q_f32(r0, r1)), a1 = vreinterpretq_f64_f32(vtrn2q_f32(r0, r1));
            const float64x2_t a2 = vreinterpretq_f64_f32(vtrn1q_f32(r2, r3)), a3 = vreinterpretq_f64_f32(vtrn2q_f32(r2, r3));
            float32x4_t o[4];
            o[0] = vreinterpretq_f32_f64(vtrn1q_f64(a0, a2));
            o[1] = vreinterpretq_f32_f64(vtrn1q_f64(a1, a3));
            o[2] = vreinterpretq_f32_f64(vtrn2q_f64(a0, a2));
            o[3] = vreinterpretq_f32_f64(vtrn2q_f64(a1, a3));
            for (int e = 0; e < m; e++) vst1q_f32(kt + (size_t)(d0 + e) * ATTN_KT + 4 * g, o[e]);
        }
    }
}

static void qk_neon(const float *kt, int D, const float *q, size_t q_stride, int n_rows, float *s, size_t s_stride) {
    int r = 0;
    for (; r + 2 <= n_rows; r += 2) {
        const float *q0 = q + (size_t)r * q_stride, *q1 = q0 + q_stride;
        float32x4_t a[8];
        for (int i = 0; i < 8; i++) a[i] = vdupq_n_f32(0.0f);
        for (int d = 0; d < D; d++) {
            const float *k = kt + (size_t)d * ATTN_KT;
            const float32x4_t k0 = vld1q_f32(k), k1 = vld1q_f32(k + 4), k2 = vld1q_f32(k + 8), k3 = vld1q_f32(k + 12);
            const float x0 = q0[d], x1 = q1[d];
            a[0] = vaddq_f32(a[0], vmulq_n_f32(k0, x0));
            a[1] = vaddq_f32(a[1], vmulq_n_f32(k1, x0));
            a[2] = vaddq_f32(a[2], vmulq_n_f32(k2, x0));
            a[3] = vaddq_f32(a[3], vmulq_n_f32(k3, x0));
            a[4] = vaddq_f32(a[4], vmulq_n_f32(k0, x1));
            a[5] = vaddq_f32(a[5], vmulq_n_f32(k1, x1));
            a[6] = vaddq_f32(a[6], vmulq_n_f32(k2, x1));
            a[7] = vaddq_f32(a[7], vmulq_n_f32(k3, x1));
        }
        for (int i = 0; i < 4; i++) {
            vst1q_f32(s + (size_t)r * s_stride + 4 * (size_t)i, a[i]);
            vst1q_f32(s + (size_t)(r + 1) * s_stride + 4 * (size_t)i, a[4 + i]);
        }
    }
    for (; r < n_rows; r++) {
        const float *q0 = q + (size_t)r * q_stride;
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        for (int d = 0; d < D; d++) {
            const float *k = kt + (size_t)d * ATTN_KT;
            a0 = vaddq_f32(a0, vmulq_n_f32(vld1q_f32(k), q0[d]));
            a1 = vaddq_f32(a1, vmulq_n_f32(vld1q_f32(k + 4), q0[d]));
            a2 = vaddq_f32(a2, vmulq_n_f32(vld1q_f32(k + 8), q0[d]));
            a3 = vaddq_f32(a3, vmulq_n_f32(vld1q_f32(k + 12), q0[d]));
        }
        float *o = s + (size_t)r * s_stride;
        vst1q_f32(o, a0); vst1q_f32(o + 4, a1); vst1q_f32(o + 8, a2); vst1q_f32(o + 12, a3);
    }
}

static void pv_neon(float *out, const float *v, size_t v_stride, const float *w, int j0, int j1, int D) {
    int d0 = 0;
    for (; d0 + 16 <= D; d0 += 16) {
        float32x4_t a0 = vld1q_f32(out + d0), a1 = vld1q_f32(out + d0 + 4);
        float32x4_t a2 = vld1q_f32(out + d0 + 8), a3 = vld1q_f32(out + d0 + 12);
        for (int j = j0; j < j1; j++) {
            const float *vj = v + (size_t)j * v_stride + d0;
            a0 = vaddq_f32(a0, vmulq_n_f32(vld1q_f32(vj), w[j]));
            a1 = vaddq_f32(a1, vmulq_n_f32(vld1q_f32(vj + 4), w[j]));
            a2 = vaddq_f32(a2, vmulq_n_f32(vld1q_f32(vj + 8), w[j]));
            a3 = vaddq_f32(a3, vmulq_n_f32(vld1q_f32(vj + 12), w[j]));
        }
        vst1q_f32(out + d0, a0); vst1q_f32(out + d0 + 4, a1);
        vst1q_f32(out + d0 + 8, a2); vst1q_f32(out + d0 + 12, a3);
    }
    for (; d0 + 4 <= D; d0 += 4) {
        float32x4_t a = vld1q_f32(out + d0);
        for (int j = j0; j < j1; j++) a = vaddq_f32(a, vmulq_n_f32(vld1q_f32(v + (size_t)j * v_stride + d0), w[j]));
        vst1q_f32(out + d0, a);
    }
    /* columns past the last full vector: the reference's operations on the remaining D - d0 columns */
    if (d0 < D) kern_attn_ops_scalar.pv(out + d0, v + d0, v_stride, w, j0, j1, D - d0);
}

/* fcvtn rounds by FPCR (round to nearest even, the Linux default) like quant_f32_to_f16, but keeps
 * NaN payload bits; NaN lanes are replaced by sign | 0x7E00 like the scalar converter. */
static uint16x4_t cvt4(float32x4_t x) {
    const uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(x));
    const uint32x4_t bits = vreinterpretq_u32_f32(x);
    const uint16x4_t nan = vmovn_u32(vmvnq_u32(vceqq_f32(x, x)));
    const uint16x4_t qnan = vmovn_u32(vorrq_u32(vandq_u32(vshrq_n_u32(bits, 16), vdupq_n_u32(0x8000)), vdupq_n_u32(0x7E00)));
    return vbsl_u16(nan, qnan, h);
}

static void f32_to_f16_neon(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        vst1_u16(y + i, cvt4(vld1q_f32(x + i)));
        vst1_u16(y + i + 4, cvt4(vld1q_f32(x + i + 4)));
    }
    for (; i + 4 <= n; i += 4) vst1_u16(y + i, cvt4(vld1q_f32(x + i)));
    for (; i < n; i++) y[i] = quant_f32_to_f16(x[i]);
}

static void f16_to_f32_neon(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint16x8_t h = vld1q_u16(x + i);
        vst1q_f32(y + i, vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h))));
        vst1q_f32(y + i + 4, vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h))));
    }
    for (; i < n; i++) y[i] = quant_f16_to_f32(x[i]);
}

const kern_attn_ops kern_attn_ops_neon = {
    k_tile_neon, qk_neon, pv_neon, f32_to_f16_neon, f16_to_f32_neon,
};

#else
typedef int attention_neon_not_built_on_this_arch; /* ISO C wants a non-empty translation unit */
#endif
