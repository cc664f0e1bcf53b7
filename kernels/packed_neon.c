/* NEON kernels for the packed layouts (kernels/packed.h), in two families built from one source:
 *   "neon-dotprod"  SDOT by lane (vdotq_laneq_s32): a 16-byte weight vector is 4 rows x 4 codes (bytes
 *                   4r..4r+3 = row r), the activation vector's 32-bit lane q is the 4 codes they meet;
 *                   one instruction adds 4 products to each of the 4 row lanes. Compiled only when the
 *                   target has __ARM_FEATURE_DOTPROD (make cross-a76).
 *   "neon"          ARMv8.0 (Cortex-A72): the same operands through vmull_s8 / vmlal_s8 into int16
 *                   lanes, widened every few lane dots (lane_chain below).
 * One 128-bit vector serves 4 rows, so each group of 16 rows is done as 4 quarters of 4 rows; a
 * quarter runs over all blocks for a tile of tokens (the float accumulators of a tile stay in
 * registers). Every kernel is bit-identical to its scalar reference kern_packed_*_ref: the integer
 * sums are exact in int32, and the float ops per row are the reference's (f16 -> f32, d_w * d_a,
 * fmaf into the accumulator(s) in block / part order, acc - accm, times tensor_scale).
 * Overflow bounds of the ARMv8.0 int16 lanes: see lane_chain. SDOT sums in int32 directly. */
#include "packed.h"

#if defined(__aarch64__)
#include "blocks.h"

#include <arm_neon.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF   /* the reference's fmaf is the only fused operation */
#endif

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define PACK_TILE_K 4   /* tokens per pass of the K-quant kernels (register budget) */
/* Token, chunk and sub-block loops have constant trip counts: unrolled, accumulators stay in registers
 * and lane / scale indices become constants. */
#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 8")
#endif

/* One exact dot chain of 4 row lanes (lane r = row r of the quarter). dotprod: SDOT by lane into s.
 * ARMv8.0: vmull_s8 / vmlal_s8 of the weights with the 4 activation codes broadcast to every 32-bit
 * lane put the products in int16 lanes (r01: rows 0, 1; r23: rows 2, 3; one lane per row and code
 * position); chain_flush widens them into s (vpaddlq_s16, then vpaddq_s32 joins the halves of a row).
 * Each kernel flushes before an int16 lane could overflow: at most 8 lane dots of 4-bit codes
 * (8 * 15 * 127 = 15240), 4 of scaled 2-bit codes (4 * 45 * 127 = 22860), 2 of Q8_0 codes
 * (2 * 128 * 127 = 32512); the Q8_0 / Q8_K quantizers give activation codes in [-127, 127]. */
typedef struct {
    int32x4_t s;
    int16x8_t r01, r23;
} lane_chain;
ALWAYS_INLINE lane_chain chain_start(int32x4_t init) {
    const lane_chain c = { init, vdupq_n_s16(0), vdupq_n_s16(0) };
    return c;
}
ALWAYS_INLINE void chain_mlal(lane_chain *c, int8x16_t w, int8x16_t ab) {
    c->r01 = vmlal_s8(c->r01, vget_low_s8(w), vget_low_s8(ab));
    c->r23 = vmlal_high_s8(c->r23, w, ab);
}
ALWAYS_INLINE void chain_flush(lane_chain *c, const bool dp) {
    if (dp) return;
    c->s = vaddq_s32(c->s, vpaddq_s32(vpaddlq_s16(c->r01), vpaddlq_s16(c->r23)));
    c->r01 = c->r23 = vdupq_n_s16(0);
}
ALWAYS_INLINE int32x4_t chain_sum(lane_chain *c, const bool dp) {
    chain_flush(c, dp);
    return c->s;
}
#define BCAST_LANE(a, lane) vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(a), (lane)))

/* LANE_DOT(dp, c, w, a, lane): chain c, lane r += w[4r..4r+3] . a[4 lane..4 lane+3]; lane a literal. */
#if defined(__ARM_FEATURE_DOTPROD)
#define LANE_DOT(dp, c, w, a, lane)                                    \
    do {                                                               \
        if (dp) (c).s = vdotq_laneq_s32((c).s, (w), (a), (lane));      \
        else chain_mlal(&(c), (w), BCAST_LANE((a), (lane)));           \
    } while (0)
#else
#define LANE_DOT(dp, c, w, a, lane) chain_mlal(&(c), (w), BCAST_LANE((a), (lane)))
#endif
/* The 4 lanes of a against 4 weight vectors w[0..3]. */
#define LANE_DOT4(dp, c, w, a)                  \
    do {                                        \
        LANE_DOT(dp, (c), (w)[0], (a), 0);      \
        LANE_DOT(dp, (c), (w)[1], (a), 1);      \
        LANE_DOT(dp, (c), (w)[2], (a), 2);      \
        LANE_DOT(dp, (c), (w)[3], (a), 3);      \
    } while (0)

static inline int8x16_t ld_s8(const uint8_t *p) { return vreinterpretq_s8_u8(vld1q_u8(p)); }
/* The f16 values of 4 consecutive rows as f32 (exact). */
static inline float32x4_t ld_f16x4(const uint8_t *p) { return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p))); }
static inline float ld_f32(const uint8_t *p) {
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ---- Q4_0 x Q8_0 ------------------------------------------------------------------------------ */

/* Rows 4 qr..4 qr+3 of the group, T tokens. isum = sum c a - 8 sum a (codes 0..15 as they are, the
 * reference's order of the exact integer terms does not matter). */
ALWAYS_INLINE void q4_0_quarter(const int T, const bool dp, int qr, const uint8_t *grp, int64_t nb,
                                const uint8_t *const *act_rows, size_t abb, const float *da, const int32_t *sa8,
                                float tensor_scale, float *y, int64_t ldy) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float32x4_t acc[KERN_PACK_TILE];
    UNROLL
    for (int t = 0; t < T; t++) acc[t] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * (KERN_PACK_ROWS * sizeof(block_q4_0));
        const float32x4_t dw = ld_f16x4(blk + 8 * qr);
        int8x16_t lo[4], hi[4];
        UNROLL
        for (int q = 0; q < 4; q++) {
            const uint8x16_t raw = vld1q_u8(blk + 32 + 64 * q + 16 * qr);
            lo[q] = vreinterpretq_s8_u8(vandq_u8(raw, m4));
            hi[q] = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
        }
        UNROLL
        for (int t = 0; t < T; t++) {
            const uint8_t *a = act_rows[t] + (size_t)b * abb + offsetof(block_q8_0, qs);
            const size_t tb = (size_t)t * (size_t)nb + (size_t)b;
            lane_chain is = chain_start(vdupq_n_s32(-sa8[tb]));
            LANE_DOT4(dp, is, lo, ld_s8(a));
            LANE_DOT4(dp, is, hi, ld_s8(a + 16));   /* 8 lane dots of 4-bit codes: one flush */
            const float32x4_t scale = vmulq_n_f32(dw, da[tb]);
            acc[t] = vfmaq_f32(acc[t], vcvtq_f32_s32(chain_sum(&is, dp)), scale);
        }
    }
    for (int t = 0; t < T; t++) vst1q_f32(y + (size_t)t * (size_t)ldy + 4 * qr, vmulq_n_f32(acc[t], tensor_scale));
}

/* ---- Q8_0 x Q8_0 ------------------------------------------------------------------------------ */

/* Activations arrive as codes + 128 (the x86 kernels' unsigned operand); xor 0x80 gives the signed
 * codes back, and signed x signed products need no bias term. */
ALWAYS_INLINE void q8_0_quarter(const int T, const bool dp, int qr, const uint8_t *grp, int64_t nb,
                                const uint8_t *const *act_rows, size_t abb, const float *da, float tensor_scale,
                                float *y, int64_t ldy) {
    const uint8x16_t bias = vdupq_n_u8(0x80);
    float32x4_t acc[KERN_PACK_TILE];
    UNROLL
    for (int t = 0; t < T; t++) acc[t] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * (KERN_PACK_ROWS * sizeof(block_q8_0));
        const float32x4_t dw = ld_f16x4(blk + 8 * qr);
        int8x16_t w[8];
        for (int q = 0; q < 8; q++) w[q] = ld_s8(blk + 32 + 64 * q + 16 * qr);
        UNROLL
        for (int t = 0; t < T; t++) {
            const uint8_t *au = act_rows[t] + (size_t)b * abb;
            const int8x16_t a0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(au), bias));
            const int8x16_t a1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(au + 16), bias));
            lane_chain is = chain_start(vdupq_n_s32(0));
            /* 8-bit codes: flush after every 2 lane dots */
            LANE_DOT(dp, is, w[0], a0, 0);
            LANE_DOT(dp, is, w[1], a0, 1);
            chain_flush(&is, dp);
            LANE_DOT(dp, is, w[2], a0, 2);
            LANE_DOT(dp, is, w[3], a0, 3);
            chain_flush(&is, dp);
            LANE_DOT(dp, is, w[4], a1, 0);
            LANE_DOT(dp, is, w[5], a1, 1);
            chain_flush(&is, dp);
            LANE_DOT(dp, is, w[6], a1, 2);
            LANE_DOT(dp, is, w[7], a1, 3);
            const float32x4_t scale = vmulq_n_f32(dw, da[(size_t)t * (size_t)nb + (size_t)b]);
            acc[t] = vfmaq_f32(acc[t], vcvtq_f32_s32(chain_sum(&is, dp)), scale);
        }
    }
    for (int t = 0; t < T; t++) vst1q_f32(y + (size_t)t * (size_t)ldy + 4 * qr, vmulq_n_f32(acc[t], tensor_scale));
}

/* ---- Q4_K x Q8_K ------------------------------------------------------------------------------ */

/* The 8 scales and 8 mins of rows 4 qr..4 qr+3 as int32 lanes. vld4q_u32 on 4 planes of 16 bytes
 * puts, in val[qr], the 4 bytes of those rows from each plane (plane p in 32-bit lane p); the 6-bit
 * decode of q4k_get_scale_min is then the same byte arithmetic for all 4 planes x 4 rows at once:
 *   sc 0..3 = planes 0..3 & 63               m 0..3 = planes 4..7 & 63
 *   sc 4..7 = (planes 8..11 & 15) | (planes 0..3 >> 6) << 4
 *   m  4..7 = (planes 8..11 >> 4) | (planes 4..7 >> 6) << 4 */
static inline uint8x16_t select_quarter(uint32x4x4_t v, int qr) {
    return vreinterpretq_u8_u32(qr == 0 ? v.val[0] : qr == 1 ? v.val[1] : qr == 2 ? v.val[2] : v.val[3]);
}
/* Byte 4 s + r of v (s = 0..3) as 4 int32 lanes r. */
static inline void widen_4x4(uint8x16_t v, int32x4_t out[4]) {
    const uint16x8_t lo = vmovl_u8(vget_low_u8(v)), hi = vmovl_high_u8(v);
    out[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(lo)));
    out[1] = vreinterpretq_s32_u32(vmovl_high_u16(lo));
    out[2] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(hi)));
    out[3] = vreinterpretq_s32_u32(vmovl_high_u16(hi));
}
static inline void q4_K_scales(const uint8_t *blk, int qr, int32x4_t sc[8], int32x4_t m[8]) {
    const uint8x16_t p0 = select_quarter(vld4q_u32((const uint32_t *)(const void *)(blk + 64)), qr);
    const uint8x16_t p1 = select_quarter(vld4q_u32((const uint32_t *)(const void *)(blk + 128)), qr);
    const uint8x16_t p2 = select_quarter(vld4q_u32((const uint32_t *)(const void *)(blk + 192)), qr);
    const uint8x16_t m63 = vdupq_n_u8(63), m4 = vdupq_n_u8(15);
    widen_4x4(vandq_u8(p0, m63), sc);
    widen_4x4(vorrq_u8(vandq_u8(p2, m4), vshlq_n_u8(vshrq_n_u8(p0, 6), 4)), sc + 4);
    widen_4x4(vandq_u8(p1, m63), m);
    widen_4x4(vorrq_u8(vshrq_n_u8(p2, 4), vshlq_n_u8(vshrq_n_u8(p1, 6), 4)), m + 4);
}

/* T tokens, P = per_part (flush the integer sums into the float chains every 64 weights). Sub-blocks
 * 2j (low nibbles) and 2j + 1 (high nibbles) come from chunks 8j..8j+7, i.e. code bytes 32j..32j+31. */
ALWAYS_INLINE void q4_K_quarter(const int T, const bool P, const bool dp, int qr, const uint8_t *grp, int64_t nb,
                                const uint8_t *const *act_rows, size_t abb, float tensor_scale, float *y,
                                int64_t ldy) {
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    float32x4_t acc[PACK_TILE_K], accm[PACK_TILE_K];
    UNROLL
    for (int t = 0; t < T; t++) acc[t] = accm[t] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * (KERN_PACK_ROWS * sizeof(block_q4_K));
        const float32x4_t dw = ld_f16x4(blk + 8 * qr), dmw = ld_f16x4(blk + 32 + 8 * qr);
        int32x4_t sc[8], m[8];
        q4_K_scales(blk, qr, sc, m);
        int32x4_t isum[PACK_TILE_K], imin[PACK_TILE_K];
        UNROLL
        for (int t = 0; t < T; t++) isum[t] = imin[t] = vdupq_n_s32(0);
        UNROLL
        for (int j = 0; j < 4; j++) {
            int8x16_t lo[8], hi[8];
            UNROLL
            for (int q = 0; q < 8; q++) {
                const uint8x16_t raw = vld1q_u8(blk + 256 + 64 * (8 * j + q) + 16 * qr);
                lo[q] = vreinterpretq_s8_u8(vandq_u8(raw, m4));
                hi[q] = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
            }
            UNROLL
            for (int t = 0; t < T; t++) {
                const uint8_t *a = act_rows[t] + (size_t)b * abb;
                const uint8_t *qs = a + offsetof(block_q8_K, qs) + 64 * j;
                lane_chain sl = chain_start(vdupq_n_s32(0)), sh = chain_start(vdupq_n_s32(0));
                LANE_DOT4(dp, sl, lo, ld_s8(qs));   /* 8 lane dots of 4-bit codes per chain */
                LANE_DOT4(dp, sl, lo + 4, ld_s8(qs + 16));
                LANE_DOT4(dp, sh, hi, ld_s8(qs + 32));
                LANE_DOT4(dp, sh, hi + 4, ld_s8(qs + 48));
                isum[t] = vmlaq_s32(vmlaq_s32(isum[t], chain_sum(&sl, dp), sc[2 * j]), chain_sum(&sh, dp), sc[2 * j + 1]);
                int16_t bs[4];
                memcpy(bs, a + offsetof(block_q8_K, bsums) + 8 * j, sizeof bs);
                imin[t] = vmlaq_n_s32(imin[t], m[2 * j], bs[0] + bs[1]);
                imin[t] = vmlaq_n_s32(imin[t], m[2 * j + 1], bs[2] + bs[3]);
                if (P || j == 3) {
                    const float ad = ld_f32(a + offsetof(block_q8_K, d));
                    acc[t] = vfmaq_f32(acc[t], vcvtq_f32_s32(isum[t]), vmulq_n_f32(dw, ad));
                    accm[t] = vfmaq_f32(accm[t], vcvtq_f32_s32(imin[t]), vmulq_n_f32(dmw, ad));
                    isum[t] = imin[t] = vdupq_n_s32(0);
                }
            }
        }
    }
    UNROLL
    for (int t = 0; t < T; t++)
        vst1q_f32(y + (size_t)t * (size_t)ldy + 4 * qr, vmulq_n_f32(vsubq_f32(acc[t], accm[t]), tensor_scale));
}

/* ---- Q2_K x Q8_K ------------------------------------------------------------------------------ */

/* Code byte 32h + 4q + i (chunk 8h + q) holds, in bits 2k..2k+1, element 128h + 32k + 4q + i of
 * sub-block 8h + 2k + q/4. Codes x scale fit a byte (<= 45), so each decoded chunk is scaled once and
 * one dot chain per token gives isum (exact; same integer as the reference's). The scale of row r
 * must cover its 4 code bytes: vqtbl1q_u8 spreads byte (4 u + r) of a plane quadruple to bytes
 * 4r..4r+3. */
ALWAYS_INLINE void q2_K_quarter(const int T, const bool P, const bool dp, int qr, const uint8_t *grp, int64_t nb,
                                const uint8_t *const *act_rows, size_t abb, float tensor_scale, float *y,
                                int64_t ldy) {
    const uint8x16_t m3 = vdupq_n_u8(3), m4 = vdupq_n_u8(0x0F);
    static const uint8_t spread_idx[4][16] = {
        { 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3 },     { 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7 },
        { 8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11 },
        { 12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15 },
    };
    float32x4_t acc[PACK_TILE_K], accm[PACK_TILE_K];
    UNROLL
    for (int t = 0; t < T; t++) acc[t] = accm[t] = vdupq_n_f32(0.0f);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * (KERN_PACK_ROWS * sizeof(block_q2_K));
        const float32x4_t dw = ld_f16x4(blk + 8 * qr), dmw = ld_f16x4(blk + 32 + 8 * qr);
        lane_chain isum[PACK_TILE_K];
        int32x4_t imin[PACK_TILE_K];
        UNROLL
        for (int t = 0; t < T; t++) {
            isum[t] = chain_start(vdupq_n_s32(0));
            imin[t] = vdupq_n_s32(0);
        }
        UNROLL
        for (int h = 0; h < 2; h++) {
            /* planes 8h..8h+7 (sub-blocks of this half): scale | min << 4, 4 planes x 4 rows per vector */
            uint8x16_t planes[2];
            planes[0] = select_quarter(vld4q_u32((const uint32_t *)(const void *)(blk + 64 + 128 * h)), qr);
            planes[1] = select_quarter(vld4q_u32((const uint32_t *)(const void *)(blk + 128 + 128 * h)), qr);
            UNROLL
            for (int half = 0; half < 2; half++) {
                int32x4_t mins[4];
                widen_4x4(vshrq_n_u8(planes[half], 4), mins);
                UNROLL
                for (int t = 0; t < T; t++) {
                    int16_t bs[4];
                    memcpy(bs, act_rows[t] + (size_t)b * abb + offsetof(block_q8_K, bsums) + 2 * (8 * h + 4 * half),
                           sizeof bs);
                    UNROLL
                    for (int u = 0; u < 4; u++) imin[t] = vmlaq_n_s32(imin[t], mins[u], bs[u]);
                }
            }
            uint8x16_t raw[8];
            for (int q = 0; q < 8; q++) raw[q] = vld1q_u8(blk + 320 + 64 * (8 * h + q) + 16 * qr);
            UNROLL
            for (int k = 0; k < 4; k++) {
                /* sub-blocks 8h + 2k (chunks q < 4) and 8h + 2k + 1 (q >= 4): planes 2k, 2k + 1 of the half */
                const uint8x16_t sc_a = vandq_u8(planes[k / 2], m4);
                const uint8x16_t s0 = vqtbl1q_u8(sc_a, vld1q_u8(spread_idx[2 * (k % 2)]));
                const uint8x16_t s1 = vqtbl1q_u8(sc_a, vld1q_u8(spread_idx[2 * (k % 2) + 1]));
                int8x16_t w[8];
                UNROLL
                for (int q = 0; q < 8; q++) {
                    const uint8x16_t c = k == 0 ? vandq_u8(raw[q], m3)
                                         : k == 1 ? vandq_u8(vshrq_n_u8(raw[q], 2), m3)
                                         : k == 2 ? vandq_u8(vshrq_n_u8(raw[q], 4), m3) : vshrq_n_u8(raw[q], 6);
                    w[q] = vreinterpretq_s8_u8(vmulq_u8(c, q < 4 ? s0 : s1));
                }
                UNROLL
                for (int t = 0; t < T; t++) {
                    const uint8_t *qs = act_rows[t] + (size_t)b * abb + offsetof(block_q8_K, qs) + 128 * h + 32 * k;
                    LANE_DOT4(dp, isum[t], w, ld_s8(qs));   /* scaled 2-bit codes: flush every 4 lane dots */
                    chain_flush(&isum[t], dp);
                    LANE_DOT4(dp, isum[t], w + 4, ld_s8(qs + 16));
                    chain_flush(&isum[t], dp);
                }
            }
            if (P || h == 1)
                UNROLL
                for (int t = 0; t < T; t++) {
                    const float ad = ld_f32(act_rows[t] + (size_t)b * abb + offsetof(block_q8_K, d));
                    acc[t] = vfmaq_f32(acc[t], vcvtq_f32_s32(isum[t].s), vmulq_n_f32(dw, ad));   /* flushed */
                    accm[t] = vfmaq_f32(accm[t], vcvtq_f32_s32(imin[t]), vmulq_n_f32(dmw, ad));
                    isum[t] = chain_start(vdupq_n_s32(0));
                    imin[t] = vdupq_n_s32(0);
                }
        }
    }
    UNROLL
    for (int t = 0; t < T; t++)
        vst1q_f32(y + (size_t)t * (size_t)ldy + 4 * qr, vmulq_n_f32(vsubq_f32(acc[t], accm[t]), tensor_scale));
}

/* ---- entry points ----------------------------------------------------------------------------- */

/* Q4_0 / Q8_0: one tile of n_tok <= KERN_PACK_TILE tokens, T a constant per instance. */
#define Q_0_DISPATCH(quarter, dp, ...)                                      \
    for (int qr = 0; qr < 4; qr++) switch (n_tok) {                         \
        case 1: quarter(1, dp, qr, __VA_ARGS__); break;                     \
        case 2: quarter(2, dp, qr, __VA_ARGS__); break;                     \
        case 3: quarter(3, dp, qr, __VA_ARGS__); break;                     \
        case 4: quarter(4, dp, qr, __VA_ARGS__); break;                     \
        case 5: quarter(5, dp, qr, __VA_ARGS__); break;                     \
        case 6: quarter(6, dp, qr, __VA_ARGS__); break;                     \
        case 7: quarter(7, dp, qr, __VA_ARGS__); break;                     \
        default: quarter(8, dp, qr, __VA_ARGS__); break;                    \
        }

/* K-quants: tiles of up to PACK_TILE_K tokens; T and P constants per instance. */
#define K_DISPATCH(quarter, dp)                                                                        \
    for (int t0 = 0; t0 < n_tok; t0 += PACK_TILE_K) {                                                  \
        const int n = n_tok - t0 < PACK_TILE_K ? n_tok - t0 : PACK_TILE_K;                             \
        const uint8_t *const *rows = act_rows + t0;                                                    \
        float *yt = y + (size_t)t0 * (size_t)ldy;                                                      \
        for (int qr = 0; qr < 4; qr++) switch (n * 2 + (per_part ? 1 : 0)) {                           \
            case 2: quarter(1, 0, dp, qr, grp, nb, rows, abb, tensor_scale, yt, ldy); break;           \
            case 3: quarter(1, 1, dp, qr, grp, nb, rows, abb, tensor_scale, yt, ldy); break;           \
            case 4: quarter(2, 0, dp, qr, grp, nb, rows, abb, tensor_scale, yt, ldy); break;           \
            case 5: quarter(2, 1, dp, qr, grp, nb, rows, abb, tensor_scale, yt, ldy); break;           \
            case 6: quarter(3, 0, dp, qr, grp, nb, rows, abb, tensor_scale, yt, ldy); break;           \
            case 7: quarter(3, 1, dp, qr, grp, nb, rows, abb, tensor_scale, yt, ldy); break;           \
            case 8: quarter(4, 0, dp, qr, grp, nb, rows, abb, tensor_scale, yt, ldy); break;           \
            default: quarter(4, 1, dp, qr, grp, nb, rows, abb, tensor_scale, yt, ldy); break;          \
            }                                                                                          \
    }

/* The four kernels of one family; dp is a constant, so each body folds to one instruction set. */
#define DEFINE_PACKED_NEON(suffix, dp)                                                                         \
    void kern_packed_q4_0_##suffix(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t abb,  \
                                   const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, \
                                   int64_t ldy, bool per_part) {                                                \
        (void)per_part;                                                                                         \
        if (n_tok > KERN_PACK_TILE) {                                                                           \
            kern_packed_q4_0_ref(grp, nb, act_rows, abb, da, sa8, n_tok, tensor_scale, y, ldy, false);         \
            return;                                                                                             \
        }                                                                                                       \
        Q_0_DISPATCH(q4_0_quarter, dp, grp, nb, act_rows, abb, da, sa8, tensor_scale, y, ldy)                  \
    }                                                                                                           \
    void kern_packed_q8_0_##suffix(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t abb,  \
                                   const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, \
                                   int64_t ldy, bool per_part) {                                                \
        (void)per_part;                                                                                         \
        if (n_tok > KERN_PACK_TILE) {                                                                           \
            kern_packed_q8_0_ref(grp, nb, act_rows, abb, da, sa8, n_tok, tensor_scale, y, ldy, false);         \
            return;                                                                                             \
        }                                                                                                       \
        Q_0_DISPATCH(q8_0_quarter, dp, grp, nb, act_rows, abb, da, tensor_scale, y, ldy)                       \
    }                                                                                                           \
    void kern_packed_q4_K_##suffix(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t abb,  \
                                   const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, \
                                   int64_t ldy, bool per_part) {                                                \
        (void)da;                                                                                               \
        (void)sa8;                                                                                              \
        K_DISPATCH(q4_K_quarter, dp)                                                                            \
    }                                                                                                           \
    void kern_packed_q2_K_##suffix(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t abb,  \
                                   const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, \
                                   int64_t ldy, bool per_part) {                                                \
        (void)da;                                                                                               \
        (void)sa8;                                                                                              \
        K_DISPATCH(q2_K_quarter, dp)                                                                            \
    }

DEFINE_PACKED_NEON(neon, false)
#if defined(__ARM_FEATURE_DOTPROD)
DEFINE_PACKED_NEON(neon_dotprod, true)
#endif

#else
typedef int packed_neon_not_built_on_this_arch; /* ISO C wants a non-empty translation unit */
#endif
