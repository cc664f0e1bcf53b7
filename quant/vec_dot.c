/* Scalar reference dot products: weight row (type W) . activation row (W's vec_dot_type),
 * docs/formats.md §4.5. Written to read like the spec, not to be fast: each block's codes are
 * decoded to small integers, multiplied with the int8 activation codes and summed exactly in
 * int32, and only then scaled and accumulated in f32 (one term per block, blocks in order).
 * SIMD kernels must produce the same integer sums; their float accumulation order may differ.
 *
 * Activation codes: Q8_0/Q8_1/Q8_K codes are in [-127, 127], I8_S in [-128, 127]; the overflow
 * bounds below use |a| <= 128. n is a multiple of the weight block size. */
#include "quant.h"
#include "blocks.h"
#include "ref.h"

#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define F16(h) quant_f16_to_f32(h)

/* ---- plain floats: products are exact in f32 for F16/BF16 inputs; sum in double like ggml's
 * scalar path (ggml_float). ------------------------------------------------------------------ */
void vec_dot_f32_f32(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const float *x = vx, *y = vy;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * y[i]);
    *s = (float)sum;
}

void vec_dot_f16_f16(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint16_t *x = vx, *y = vy;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(F16(x[i]) * F16(y[i]));
    *s = (float)sum;
}

/* F16 weights x F32 activations: not a type-table pair; the engine's bitnet.cpp numerics use it for an F16
 * output matrix (bitnet.cpp's fork multiplies it by the unrounded f32 hidden state). */
void vec_dot_f16_f32(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint16_t *x = vx;
    const float *y = vy;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(F16(x[i]) * y[i]);
    *s = (float)sum;
}

void vec_dot_bf16_bf16(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint16_t *x = vx, *y = vy;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(quant_bf16_to_f32(x[i]) * quant_bf16_to_f32(y[i]));
    *s = (float)sum;
}

/* ---- 32-element blocks -------------------------------------------------------------------- */

/* Nibble e of a 16-byte array: e < 16 low nibble of qs[e], else high nibble of qs[e-16]. */
static int nibble32(const uint8_t *qs, int e) {
    return e < 16 ? (qs[e] & 0x0F) : (qs[e - 16] >> 4);
}

static uint32_t load_u32_le(const uint8_t b[4]) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Q4_0: sum (c - 8) a over 32 elements, |c - 8| <= 8: |sum| <= 32*8*128 = 32768. */
void vec_dot_q4_0_q8_0(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        int32_t sumi = 0;
        for (int e = 0; e < QK4_0; e++) sumi += (nibble32(x[i].qs, e) - 8) * y[i].qs[e];
        sumf += (float)sumi * F16(x[i].d) * F16(y[i].d);
    }
    *s = sumf;
}

/* Q4_1: sum c a with c <= 15: |sum| <= 32*15*128 = 61440. The min term uses the activation's
 * stored s = f16(d_a * sum a), not sum(a) * d_a. */
void vec_dot_q4_1_q8_1(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q4_1 *x = vx;
    const block_q8_1 *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        int32_t sumi = 0;
        for (int e = 0; e < QK4_1; e++) sumi += nibble32(x[i].qs, e) * y[i].qs[e];
        sumf += (F16(x[i].d) * F16(y[i].d)) * (float)sumi + F16(x[i].m) * F16(y[i].s);
    }
    *s = sumf;
}

static int q5_code(const uint8_t *qs, uint32_t qh, int e) {
    return nibble32(qs, e) | (int)((qh >> e) & 1u) << 4;
}

/* Q5_0: |c - 16| <= 16: |sum| <= 32*16*128 = 65536. */
void vec_dot_q5_0_q8_0(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK5_0; i++) {
        const uint32_t qh = load_u32_le(x[i].qh);
        int32_t sumi = 0;
        for (int e = 0; e < QK5_0; e++) sumi += (q5_code(x[i].qs, qh, e) - 16) * y[i].qs[e];
        sumf += (F16(x[i].d) * F16(y[i].d)) * (float)sumi;
    }
    *s = sumf;
}

/* Q5_1: c <= 31: |sum| <= 32*31*128 = 126976. */
void vec_dot_q5_1_q8_1(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q5_1 *x = vx;
    const block_q8_1 *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK5_1; i++) {
        const uint32_t qh = load_u32_le(x[i].qh);
        int32_t sumi = 0;
        for (int e = 0; e < QK5_1; e++) sumi += q5_code(x[i].qs, qh, e) * y[i].qs[e];
        sumf += (F16(x[i].d) * F16(y[i].d)) * (float)sumi + F16(x[i].m) * F16(y[i].s);
    }
    *s = sumf;
}

/* Q8_0: |q| <= 128: |sum| <= 32*128*128 = 524288. */
void vec_dot_q8_0_q8_0(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q8_0 *x = vx;
    const block_q8_0 *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int32_t sumi = 0;
        for (int e = 0; e < QK8_0; e++) sumi += x[i].qs[e] * y[i].qs[e];
        sumf += (float)sumi * (F16(x[i].d) * F16(y[i].d));
    }
    *s = sumf;
}

/* IQ4_NL: |K[c]| <= 127: |sum| <= 32*127*128 = 520192. */
void vec_dot_iq4_nl_q8_0(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_iq4_nl *x = vx;
    const block_q8_0 *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK4_NL; i++) {
        int32_t sumi = 0;
        for (int e = 0; e < QK4_NL; e++) sumi += kvalues_iq4nl[nibble32(x[i].qs, e)] * y[i].qs[e];
        sumf += (F16(x[i].d) * F16(y[i].d)) * (float)sumi;
    }
    *s = sumf;
}

/* ---- 256-element super-blocks against Q8_K ------------------------------------------------
 * Each weight block is first decoded to the integer q_e that its sub-block scale multiplies
 * (element order = dequantization order), then: sum_s scale_s * sum_{e in s} q_e * a_e. */

/* Sum over 16 elements starting at e0 of q_e * a_e. */
static int32_t dot16(const int8_t *q, const int8_t *a, int e0) {
    int32_t sum = 0;
    for (int l = e0; l < e0 + 16; l++) sum += q[l] * a[l];
    return sum;
}

/* Q2_K codes 0..3: element e = 128h + 32k + p is (qs[32h + p] >> 2k) & 3. */
static void q2k_codes(const block_q2_K *b, int8_t q[QK_K]) {
    for (int e = 0; e < QK_K; e++) {
        const int h = e / 128, k = (e % 128) / 32, p = e % 32;
        q[e] = (int8_t)((b->qs[32 * h + p] >> (2 * k)) & 3);
    }
}

/* Q2_K: per 16 elements |sum q a| <= 16*3*128 = 6144, times scale <= 15 over 16 sub-blocks:
 * <= 1474560. Mins: |bsum| <= 2048, times min <= 15 over 16: <= 491520. */
void vec_dot_q2_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q2_K *x = vx;
    const block_q8_K *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K];
        q2k_codes(&x[i], q);
        int32_t sum_scaled = 0, sum_mins = 0;
        for (int sub = 0; sub < 16; sub++) {
            sum_scaled += (x[i].scales[sub] & 0x0F) * dot16(q, y[i].qs, 16 * sub);
            sum_mins   += (x[i].scales[sub] >> 4) * y[i].bsums[sub];
        }
        sumf += y[i].d * F16(x[i].d) * (float)sum_scaled - y[i].d * F16(x[i].dmin) * (float)sum_mins;
    }
    *s = sumf;
}

/* Q3_K signed codes -4..3: 2 low bits as Q2_K, minus 4 when the hmask bit (bit e/32 of
 * hmask[e % 32]) is clear. Scales are 6-bit signed -32..31. */
static void q3k_codes(const block_q3_K *b, int8_t q[QK_K], int8_t scales[16]) {
    for (int e = 0; e < QK_K; e++) {
        const int h = e / 128, k = (e % 128) / 32, p = e % 32;
        const int low2 = (b->qs[32 * h + p] >> (2 * k)) & 3;
        const int hb = (b->hmask[e % 32] >> (e / 32)) & 1;
        q[e] = (int8_t)(hb ? low2 : low2 - 4);
    }
    for (int sub = 0; sub < 16; sub++) {
        const int low4 = sub < 8 ? (b->scales[sub] & 0x0F) : (b->scales[sub - 8] >> 4);
        const int high2 = (b->scales[8 + sub % 4] >> (2 * (sub / 4))) & 3;
        scales[sub] = (int8_t)((low4 | high2 << 4) - 32);
    }
}

/* Q3_K: per 16 |sum| <= 16*4*128 = 8192, times |scale| <= 32 over 16 sub-blocks: <= 4194304. */
void vec_dot_q3_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q3_K *x = vx;
    const block_q8_K *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K], scales[16];
        q3k_codes(&x[i], q, scales);
        int32_t sumi = 0;
        for (int sub = 0; sub < 16; sub++) sumi += scales[sub] * dot16(q, y[i].qs, 16 * sub);
        sumf += F16(x[i].d) * y[i].d * (float)sumi;
    }
    *s = sumf;
}

/* Q4_K / Q5_K low nibble: element e = 64g + t is the low (t < 32) or high nibble of qs[32g + t%32]. */
static int q4k_nibble(const uint8_t *qs, int e) {
    const int g = e / 64, t = e % 64;
    return t < 32 ? (qs[32 * g + t] & 0x0F) : (qs[32 * g + t - 32] >> 4);
}

/* Shared tail of Q4_K and Q5_K: q holds codes, 8 sub-blocks of 32 with 6-bit scale and min.
 * Q4_K: per 32 |sum| <= 32*15*128 = 61440, times 63, 8 sub-blocks: <= 30965760.
 * Q5_K: per 32 |sum| <= 32*31*128 = 126976, times 63, 8 sub-blocks: <= 63995904.
 * Mins: |bsum| <= 2048, times 63 over 16 groups: <= 2064384. All fit int32. */
static float kquant_scaled_min_dot(const int8_t *q, const uint8_t *packed_scales, float d, float dmin,
                                   const block_q8_K *yb) {
    int32_t sum_scaled = 0, sum_mins = 0;
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        q4k_get_scale_min(j, packed_scales, &sc, &m);
        sum_scaled += sc * (dot16(q, yb->qs, 32 * j) + dot16(q, yb->qs, 32 * j + 16));
        sum_mins   += m * (yb->bsums[2 * j] + yb->bsums[2 * j + 1]);
    }
    return d * yb->d * (float)sum_scaled - dmin * yb->d * (float)sum_mins;
}

void vec_dot_q4_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q4_K *x = vx;
    const block_q8_K *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K];
        for (int e = 0; e < QK_K; e++) q[e] = (int8_t)q4k_nibble(x[i].qs, e);
        sumf += kquant_scaled_min_dot(q, x[i].scales, F16(x[i].d), F16(x[i].dmin), &y[i]);
    }
    *s = sumf;
}

/* Q5_K: Q4_K's nibble plus 16 when bit e/32 of qh[e % 32] is set. */
void vec_dot_q5_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q5_K *x = vx;
    const block_q8_K *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K];
        for (int e = 0; e < QK_K; e++)
            q[e] = (int8_t)(q4k_nibble(x[i].qs, e) + (((x[i].qh[e % 32] >> (e / 32)) & 1) << 4));
        sumf += kquant_scaled_min_dot(q, x[i].scales, F16(x[i].d), F16(x[i].dmin), &y[i]);
    }
    *s = sumf;
}

/* Q6_K signed codes -32..31: e = 128h + 32k + p; low 4 bits from ql[64h + p] (k = 0, 2: low/high
 * nibble) or ql[64h + 32 + p] (k = 1, 3), high 2 bits (qh[32h + p] >> 2k) & 3.
 * Per 16 |sum| <= 16*32*128 = 65536, times |scale| <= 128 over 16: <= 134217728 < 2^31. */
void vec_dot_q6_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K];
        for (int e = 0; e < QK_K; e++) {
            const int h = e / 128, k = (e % 128) / 32, p = e % 32;
            const uint8_t l = x[i].ql[64 * h + 32 * (k & 1) + p];
            const int low4 = k < 2 ? (l & 0x0F) : (l >> 4);
            const int high2 = (x[i].qh[32 * h + p] >> (2 * k)) & 3;
            q[e] = (int8_t)((low4 | high2 << 4) - 32);
        }
        int32_t sumi = 0;
        for (int sub = 0; sub < 16; sub++) sumi += x[i].scales[sub] * dot16(q, y[i].qs, 16 * sub);
        sumf += F16(x[i].d) * y[i].d * (float)sumi;
    }
    *s = sumf;
}

/* IQ4_XS: per 32 |sum K a| <= 32*127*128 = 520192, times |ls - 32| <= 32 over 8: <= 133169152. */
void vec_dot_iq4_xs_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_iq4_xs *x = vx;
    const block_q8_K *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t sumi = 0;
        for (int ib = 0; ib < QK_K / 32; ib++) {
            const int ls = ((x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((x[i].scales_h >> (2 * ib)) & 3) << 4);
            int32_t sub = 0;
            for (int t = 0; t < 32; t++)
                sub += kvalues_iq4nl[nibble32(x[i].qs + 16 * ib, t)] * y[i].qs[32 * ib + t];
            sumi += (ls - 32) * sub;
        }
        sumf += F16(x[i].d) * y[i].d * (float)sumi;
    }
    *s = sumf;
}

/* TQ1_0 trit n (0 = most significant) of a base-3 fixed-point byte (see dequant.c). */
static int tq1_trit(uint8_t b, int n) {
    static const uint8_t pow3[5] = { 1, 3, 9, 27, 81 };
    const uint8_t q = (uint8_t)(b * pow3[n]);
    return (q * 3) >> 8;
}

/* Integer dot of one TQ1_0 block's trits (t - 1) with 256 int8 activation codes a. Element order is
 * the dequantizer's: 32t + m from qs[0..31], 160 + 16t + m from qs[32..47], 240 + 4t + j from qh.
 * |t - 1| <= 1, |a| <= 128: |sum| <= 256*128 = 32768. */
static int32_t tq1_0_block_dot(const block_tq1_0 *x, const int8_t *a) {
    int32_t sumi = 0;
    for (int t = 0; t < 5; t++)
        for (int m = 0; m < 32; m++) sumi += (tq1_trit(x->qs[m], t) - 1) * a[32 * t + m];
    for (int t = 0; t < 5; t++)
        for (int m = 0; m < 16; m++) sumi += (tq1_trit(x->qs[32 + m], t) - 1) * a[160 + 16 * t + m];
    for (int t = 0; t < 4; t++)
        for (int j = 0; j < 4; j++) sumi += (tq1_trit(x->qh[j], t) - 1) * a[240 + 4 * t + j];
    return sumi;
}

/* Integer dot of one TQ2_0 block's (code - 1) with 256 int8 codes: element e = 128h + 32k + p sits in
 * bits 2k of qs[32h + p]. Code 3 (never written) decodes to +2: |sum| <= 256*2*128 = 65536. */
static int32_t tq2_0_block_dot(const block_tq2_0 *x, const int8_t *a) {
    int32_t sumi = 0;
    for (int e = 0; e < QK_K; e++) {
        const int h = e / 128, k = (e % 128) / 32, p = e % 32;
        sumi += (((x->qs[32 * h + p] >> (2 * k)) & 3) - 1) * a[e];
    }
    return sumi;
}

/* Integer dot of one I2_S 128-group's raw codes (0..3, NOT minus 1) with 128 int8 codes: byte p holds
 * elements p, p+32, p+64, p+96 in bits 7-6, 5-4, 3-2, 1-0. |sum| <= 128*3*128 = 49152. */
static int32_t i2_s_group_dot_raw(const block_i2_s *x, const int8_t *a) {
    int32_t sumi = 0;
    for (int c = 0; c < 4; c++)
        for (int p = 0; p < 32; p++) sumi += ((x->qs[p] >> (6 - 2 * c)) & 3) * a[32 * c + p];
    return sumi;
}

/* ---- ternary weights x Q8_K: ggml's activation scheme (matches llama.cpp's logits) ---------- */
void vec_dot_tq1_0_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_tq1_0 *x = vx;
    const block_q8_K *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++)
        sumf += (float)tq1_0_block_dot(&x[i], y[i].qs) * (F16(x[i].d) * y[i].d);
    *s = sumf;
}

void vec_dot_tq2_0_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_tq2_0 *x = vx;
    const block_q8_K *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++)
        sumf += (float)tq2_0_block_dot(&x[i], y[i].qs) * (F16(x[i].d) * y[i].d);
    *s = sumf;
}

/* I2_S . Q8_K (ggml's scheme applied to an I2_S matrix; no engine computes this natively): n must be a
 * multiple of 256; each Q8_K block covers two I2_S groups. Per block the integer sum of (code - 1) a
 * (|sum| <= 256*128) is scaled by the block's d; blocks accumulate in f32 in order. Like
 * vec_dot_i2_s_i8_s the per-tensor weight scale is left to the caller (kern_matrix.tensor_scale). */
void vec_dot_i2_s_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_i2_s *x = vx;
    const block_q8_K *y = vy;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int32_t sumi = 0;
        for (int g = 0; g < 2; g++) sumi += i2_s_group_dot_raw(&x[2 * i + g], y[i].qs + QK_I2S * g);
        int32_t asum = 0; /* (code - 1) a = code a - a */
        for (int e = 0; e < QK_K; e++) asum += y[i].qs[e];
        sumf += (float)(sumi - asum) * y[i].d;
    }
    *s = sumf;
}

/* ---- ternary weights x I8_S: BitNet's activation scheme (one absmax scale per token row) ----- */
/* TQ1_0 / TQ2_0 . I8_S: sum over blocks of d_b * (integer block sum) in f32, blocks in order, then one
 * division by the row's activation scale s (codes = x * s). Row sums per block as above. */
void vec_dot_tq1_0_i8_s(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_tq1_0 *x = vx;
    const int8_t *a = vy;
    float act_scale;
    memcpy(&act_scale, (const uint8_t *)vy + I8S_SCALE_OFFSET(n), sizeof act_scale);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) sumf += (float)tq1_0_block_dot(&x[i], a + i * QK_K) * F16(x[i].d);
    *s = sumf / act_scale;
}

void vec_dot_tq2_0_i8_s(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_tq2_0 *x = vx;
    const int8_t *a = vy;
    float act_scale;
    memcpy(&act_scale, (const uint8_t *)vy + I8S_SCALE_OFFSET(n), sizeof act_scale);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) sumf += (float)tq2_0_block_dot(&x[i], a + i * QK_K) * F16(x[i].d);
    *s = sumf / act_scale;
}

/* I2_S . I8_S (BitNet fork, §8.3): S = sum code_k a_k with raw codes 0..3, A = sum a_k (stored in the
 * I8_S row), result (S - A) / s_act = sum (code_k - 1) a_k / s_act. The per-tensor weight scale is
 * applied by the caller. Per 128-group |sum code a| <= 128*3*128 = 49152 (int32); the row total
 * is kept in int64 (|S - A| <= 512 n), then converted to f32 exactly as the fork's int result. */
void vec_dot_i2_s_i8_s(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const block_i2_s *x = vx;
    const int8_t *a = vy;
    float act_scale;
    int32_t act_sum;
    memcpy(&act_scale, (const uint8_t *)vy + I8S_SCALE_OFFSET(n), sizeof act_scale);
    memcpy(&act_sum, (const uint8_t *)vy + I8S_SUM_OFFSET(n), sizeof act_sum);
    int64_t total = 0;
    for (int64_t g = 0; g < n / QK_I2S; g++) total += i2_s_group_dot_raw(&x[g], a + g * QK_I2S);
    *s = (float)(total - act_sum) / act_scale;
}

/* Scalar reference dot of weight type w against activation type a, for the pairs a model may
 * select through its activation scheme (engine: llmpi_model_params.act_scheme): the type table's
 * own pair (quant_traits(w)->vec_dot, against its vec_dot_type) plus the ternary cross pairs. */
quant_vec_dot_fn quant_vec_dot_for(uint32_t w, uint32_t a) {
    const quant_type_traits *tr = quant_traits(w);
    if (!tr) return NULL;
    if (a == (uint32_t)tr->vec_dot_type) return tr->vec_dot;
    switch (w) {
    case LLMPI_TYPE_TQ1_0: return a == LLMPI_TYPE_I8_S ? vec_dot_tq1_0_i8_s : NULL;
    case LLMPI_TYPE_TQ2_0: return a == LLMPI_TYPE_I8_S ? vec_dot_tq2_0_i8_s : NULL;
    case LLMPI_TYPE_I2_S:  return a == LLMPI_TYPE_Q8_K ? vec_dot_i2_s_q8_K : NULL;
    case LLMPI_TYPE_F16:   return a == LLMPI_TYPE_F32 ? vec_dot_f16_f32 : NULL;
    default: return NULL;
    }
}
