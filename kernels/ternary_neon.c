/* NEON LUT tile kernel for TQ1_0 / TQ2_0 / I2_S (TL1 layout and table layout: kernels/ternary.h).
 * ARMv8.0 only (no dotprod needed): serves both the neon and neon-dotprod families.
 *
 * Per 16 index bytes (one slot: 2 pairs x 16 rows) the low nibbles index pair p (group A) and the
 * high nibbles pair p' (group B); vqtbl1q_u8 looks up the low and high bytes of the 16 rows' int16
 * entries, vzip1q/vzip2q_u8 rebuild them as int16 (rows 0-7 / 8-15). Group A and B accumulate
 * separately: 32 entries per int16 lane per 128-element chunk (|T| <= 512 -> <= 16384), then the
 * chunk is flushed to int32. Float ops per row are the reference's (bit-identical). */
#include "ternary.h"

#if defined(__aarch64__)
#include "blocks.h"
#include "ref.h"

#include <arm_neon.h>
#include <stddef.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Row sums of one 128-element chunk: s[0..3] = rows 0-3, 4-7, 8-11, 12-15 (int32). */
static inline void chunk_sums(const uint8_t *idx, const uint8_t *tab, int32x4_t s[4]) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    int16x8_t a_lo = vdupq_n_s16(0), a_hi = vdupq_n_s16(0), b_lo = vdupq_n_s16(0), b_hi = vdupq_n_s16(0);
    for (int o = 0; o < 8; o++) {
        const uint8_t *io = idx + 64 * o, *to = tab + 256 * o;
        for (int sl = 0; sl < 4; sl++) {
            const uint8x16_t w = vld1q_u8(io + 16 * sl);
            const uint8x16_t i0 = vandq_u8(w, m4), i1 = vshrq_n_u8(w, 4);
            const uint8x16_t l0 = vqtbl1q_u8(vld1q_u8(to + 16 * sl), i0);
            const uint8x16_t h0 = vqtbl1q_u8(vld1q_u8(to + 64 + 16 * sl), i0);
            const uint8x16_t l1 = vqtbl1q_u8(vld1q_u8(to + 128 + 16 * sl), i1);
            const uint8x16_t h1 = vqtbl1q_u8(vld1q_u8(to + 192 + 16 * sl), i1);
            a_lo = vaddq_s16(a_lo, vreinterpretq_s16_u8(vzip1q_u8(l0, h0)));
            a_hi = vaddq_s16(a_hi, vreinterpretq_s16_u8(vzip2q_u8(l0, h0)));
            b_lo = vaddq_s16(b_lo, vreinterpretq_s16_u8(vzip1q_u8(l1, h1)));
            b_hi = vaddq_s16(b_hi, vreinterpretq_s16_u8(vzip2q_u8(l1, h1)));
        }
    }
    s[0] = vaddl_s16(vget_low_s16(a_lo), vget_low_s16(b_lo));
    s[1] = vaddl_high_s16(a_lo, b_lo);
    s[2] = vaddl_s16(vget_low_s16(a_hi), vget_low_s16(b_hi));
    s[3] = vaddl_high_s16(a_hi, b_hi);
}

void kern_tl1_tile_neon(const kern_tl1_matrix *w, int64_t tile, const void *act_row,
                        const uint8_t *tables, float out[KERN_TL1_ROWS]) {
    const uint8_t *tp = w->data + (size_t)tile * w->tile_bytes;
    const int64_t n_chunks = w->ne0 / KERN_TL1_CHUNK;
    const size_t tstride = KERN_TL1_CHUNK * KERN_TL1_TABLE_BYTES_PER_ELEM;
    if (w->type == LLMPI_TYPE_I2_S) {
        int32x4_t t[4] = { vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0) };  /* |S-A| < 2^31 */
        for (int64_t k = 0; k < n_chunks; k++) {
            int32x4_t s[4];
            chunk_sums(tp + k * KERN_TL1_CHUNK_BYTES, tables + k * tstride, s);
            for (int q = 0; q < 4; q++) t[q] = vaddq_s32(t[q], s[q]);
        }
        float act_scale;
        memcpy(&act_scale, (const uint8_t *)act_row + I8S_SCALE_OFFSET(w->ne0), sizeof act_scale);
        const float32x4_t sc = vdupq_n_f32(act_scale);
        for (int q = 0; q < 4; q++) vst1q_f32(out + 4 * q, vdivq_f32(vcvtq_f32_s32(t[q]), sc));
        return;
    }
    const float *d = (const float *)(tp + (size_t)n_chunks * KERN_TL1_CHUNK_BYTES);
    float32x4_t f[4] = { vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0) };
    for (int64_t b = 0; b < n_chunks / 2; b++) {
        int32x4_t s[4], u[4];
        chunk_sums(tp + 2 * b * KERN_TL1_CHUNK_BYTES, tables + 2 * b * tstride, s);
        chunk_sums(tp + (2 * b + 1) * KERN_TL1_CHUNK_BYTES, tables + (2 * b + 1) * tstride, u);
        const float32x4_t dy = vdupq_n_f32(kern_tl1_q8k_d(act_row, b));
        for (int q = 0; q < 4; q++) {
            /* sumf += (float)sumi * (d_w * d_y): separate mul and add, as the scalar reference */
            const float32x4_t dd = vmulq_f32(vld1q_f32(d + 16 * b + 4 * q), dy);
            f[q] = vaddq_f32(f[q], vmulq_f32(vcvtq_f32_s32(vaddq_s32(s[q], u[q])), dd));
        }
    }
    for (int q = 0; q < 4; q++) vst1q_f32(out + 4 * q, f[q]);
}

/* Activation tables (byte-identical to kern_tl1_build_table): entries (c0-1) a0 + (c1-1) a1 as two
 * int16x8 (exact), low bytes / high bytes gathered with vuzp1q / vuzp2q. */
void kern_tl1_build_table_neon(uint32_t type, int64_t ne0, const void *act_row, uint8_t *tables) {
    static const int16_t cu_[8] = { -1, 0, 1, 2, -1, 0, 1, 2 };
    static const int16_t cv0_[8] = { -1, -1, -1, -1, 0, 0, 0, 0 }, cv1_[8] = { 1, 1, 1, 1, 2, 2, 2, 2 };
    const int16x8_t cu = vld1q_s16(cu_), cv0 = vld1q_s16(cv0_), cv1 = vld1q_s16(cv1_);
    const bool tq = type != LLMPI_TYPE_I2_S;
    for (int64_t j = 0; j < ne0 / 2; j++) {
        const int8_t *a = tq ? (const int8_t *)act_row + (size_t)(2 * j / QK_K) * sizeof(block_q8_K) +
                                   offsetof(block_q8_K, qs) + (2 * j) % QK_K
                             : (const int8_t *)act_row + 2 * j;
        const int16x8_t u = vmulq_n_s16(cu, a[0]);
        const uint8x16_t t0 = vreinterpretq_u8_s16(vmlaq_n_s16(u, cv0, a[1]));
        const uint8x16_t t1 = vreinterpretq_u8_s16(vmlaq_n_s16(u, cv1, a[1]));
        const int q = (int)(j % 64), o = q / 8, p = q % 8;
        uint8_t *lo = tables + (j / 64) * (KERN_TL1_CHUNK * KERN_TL1_TABLE_BYTES_PER_ELEM) + o * 256 +
                      ((p >> 1) & 1) * 128 + ((p & 1) + 2 * (p >> 2)) * 16;
        vst1q_u8(lo, vuzp1q_u8(t0, t1));
        vst1q_u8(lo + 64, vuzp2q_u8(t0, t1));
    }
}

#else
typedef int ternary_neon_not_built_on_this_arch; /* ISO C wants a non-empty translation unit */
#endif
