/* AVX2 (+FMA, F16C) dot-product kernels: one weight row (x) against one activation row (y) already
 * converted to the weight type's vec_dot_type. Same contract and results as the scalar reference
 * (quant/vec_dot.c) up to float summation order:
 *   - every integer sum (per block, per sub-block, scales applied) is computed exactly in int32;
 *   - the float part (block scale products, the sum over blocks) runs in 8 f32 lanes and is reduced
 *     at the end, so the order differs from the scalar loop. Bound: |ours - exact| and
 *     |reference - exact| are each <= ~(n_blocks/8 + 8) * 2^-24 * sum_e |w_e * a_e| (w, a the
 *     dequantized weight / activation values; for types with a min term the min part's magnitude
 *     is added), which tests/test_kernels.c checks with 1e-5 * that sum.
 *
 * Blocks are read through byte pointers (memcpy / loadu), never through struct members, so rows may
 * start at any address. Activation codes are assumed to lie in [-127, 127] (what the Q8_0 / Q8_1 /
 * Q8_K quantizers produce); weight codes may be any bit pattern the format allows.
 *
 * Integer-overflow bounds are stated next to each maddubs/madd: _mm256_maddubs_epi16 multiplies
 * u8 x s8 and adds adjacent pairs into s16 *with saturation*, so every use must keep
 * |2 * max|u| * max|s|| <= 32767; _mm256_madd_epi16 (s16 x s16, pairs into s32) cannot overflow for
 * the operands used here. */
#include "cpu_features.h"
#include "blocks.h"
#include "block_unpack.h"
#include "ref.h"

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

/* ---- small helpers ---------------------------------------------------------------------------- */

static inline float load_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

static inline __m256i load32(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m128i load16(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum_epi32_128(__m128i v) {
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(v);
}

static inline int hsum_epi32(__m256i v) {
    return hsum_epi32_128(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

/* 16 packed bytes -> 32 codes: low nibbles (elements 0..15) then high nibbles (16..31), the
 * Q4_0 / Q4_1 / Q5_x / IQ4_NL / IQ4_XS-sub-block element order. */
static inline __m256i nibbles_lo_hi(__m128i q) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), m4);
}

/* 32 bits -> 32 bytes: byte e = 0xFF if bit e is set, else 0x00 (Q5_0 / Q5_1 high bits). */
static inline __m256i bits_to_bytes(uint32_t bits) {
    /* pshufb works per 128-bit lane and both lanes hold the same 4 bytes, so lane 1 can pick 2, 3. */
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* Sum of w*a over 32 signed byte pairs as 8 int32 lanes (4 products each). w: any int8; a: int8 in
 * [-127, 127]. |w| <= 128 as u8, sign(a, w) in [-127, 127]: pair <= 2*128*127 = 32512 fits s16. */
static inline __m256i dot_i8(__m256i w, __m256i a) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* Same for unsigned weights u in [0, 31]: pair <= 2*31*127 = 7874. */
static inline __m256i dot_u8(__m256i u, __m256i a) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, a), _mm256_set1_epi16(1));
}

/* ---- float types ------------------------------------------------------------------------------ */

static void dot_f32(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const float *x = vx, *y = vy;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) {   /* rows need not be 4-byte aligned: read the tail with memcpy */
        float a, b;
        memcpy(&a, x + i, sizeof a);
        memcpy(&b, y + i, sizeof b);
        sum += a * b;
    }
    *s = sum;
}

/* F16 x F16: F16C widening is exact; products of two f16 are exact in f32 (11+11 bit mantissas). */
static void dot_f16(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
#define LD(p, i) _mm256_cvtph_ps(load16((p) + 2 * (i)))
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(LD(x, i), LD(y, i), acc0);
        acc1 = _mm256_fmadd_ps(LD(x, i + 8), LD(y, i + 8), acc1);
        acc2 = _mm256_fmadd_ps(LD(x, i + 16), LD(y, i + 16), acc2);
        acc3 = _mm256_fmadd_ps(LD(x, i + 24), LD(y, i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(LD(x, i), LD(y, i), acc0);
#undef LD
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += load_f16(x + 2 * i) * load_f16(y + 2 * i);
    *s = sum;
}

/* BF16 x BF16: bf16 -> f32 is a 16-bit left shift (exact); products of two bf16 are exact in f32. */
static inline __m256 bf16x8_to_f32(const uint8_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load16(p)), 16));
}

static void dot_bf16(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(bf16x8_to_f32(x + 2 * i), bf16x8_to_f32(y + 2 * i), acc0);
        acc1 = _mm256_fmadd_ps(bf16x8_to_f32(x + 2 * i + 16), bf16x8_to_f32(y + 2 * i + 16), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(bf16x8_to_f32(x + 2 * i), bf16x8_to_f32(y + 2 * i), acc0);
    float sum = hsum_ps(_mm256_add_ps(acc0, acc1));
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

/* Each 32-element type supplies the contribution of one block to 8 f32 lanes (and, for the types with
 * a min, to a scalar min sum); BLOCK_DOT_32 wraps it in a loop with two independent accumulators
 * (even / odd blocks) so consecutive FMAs do not wait on each other. */
#define BLOCK_DOT_32(name, block_fn, x_block_bytes, y_block_bytes)                                  \
    static void name(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) { \
        const uint8_t *x = vx, *y = vy;                                                             \
        const int64_t nb = n / 32;                                                                  \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                              \
        float min_sum = 0.0f;                                                                       \
        int64_t i = 0;                                                                              \
        for (; i + 2 <= nb; i += 2) {                                                               \
            acc0 = block_fn(x + i * (x_block_bytes), y + i * (y_block_bytes), acc0, &min_sum);      \
            acc1 = block_fn(x + (i + 1) * (x_block_bytes), y + (i + 1) * (y_block_bytes), acc1, &min_sum); \
        }                                                                                           \
        if (i < nb) acc0 = block_fn(x + i * (x_block_bytes), y + i * (y_block_bytes), acc0, &min_sum); \
        *s = hsum_ps(_mm256_add_ps(acc0, acc1)) + min_sum;                                          \
    }

/* Q4_1 / Q5_0 / Q5_1 use llama.cpp's x86 float order instead, so their logits can match its goldens bit
 * for bit: ggml_vec_dot_q4_1_q8_1 / q5_0_q8_0 / q5_1_q8_1 (AVX2 path, also taken on AVX-512) and, for Q5_0
 * prompt batches, llamafile's tinyBLAS_Q0_AVX, which does the same per-output operations. ONE 8-lane
 * accumulator: lane k (products 4k..4k+3 of the block, an exact int32) gets fma(d_w * d_a, lane, acc_k)
 * block after block; then hsum_ps (hi + lo halves, then pairs); the min terms are fused in block order,
 * min_sum = fmaf(m, s_a, min_sum) (ggml's `summs += m * s` is built with -std=gnu11, i.e. FP contraction
 * on: one vfmadd231ss), and added last. tests/test_kernels.c checks this order bit for bit. */
#define BLOCK_DOT_32_GGML_X86(name, block_fn, x_block_bytes, y_block_bytes)                         \
    static void name(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) { \
        const uint8_t *x = vx, *y = vy;                                                             \
        const int64_t nb = n / 32;                                                                  \
        __m256 acc = _mm256_setzero_ps();                                                           \
        float min_sum = 0.0f;                                                                       \
        for (int64_t i = 0; i < nb; i++)                                                            \
            acc = block_fn(x + i * (x_block_bytes), y + i * (y_block_bytes), acc, &min_sum);        \
        *s = hsum_ps(acc) + min_sum;                                                                \
    }

/* Q4_0: w = c - 8 in [-8, 7]; block sum exact (|sum| <= 32*8*127). */
static inline __m256 step_q4_0(const uint8_t *xb, const uint8_t *yb, __m256 acc, float *min_sum) {
    (void)min_sum;
    const __m256i w = _mm256_sub_epi8(nibbles_lo_hi(load16(xb + Q4_0_QS)), _mm256_set1_epi8(8));
    const __m256i p = dot_i8(w, load32(yb + Q8_0_QS));
    const __m256 d = _mm256_set1_ps(load_f16(xb + Q4_0_D) * load_f16(yb + Q8_0_D));
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
}
BLOCK_DOT_32(dot_q4_0_q8_0, step_q4_0, sizeof(block_q4_0), sizeof(block_q8_0))

/* Q8_0: both operands int8; dot_i8 handles a weight code of -128 (|w| = 128 as u8). */
static inline __m256 step_q8_0(const uint8_t *xb, const uint8_t *yb, __m256 acc, float *min_sum) {
    (void)min_sum;
    const __m256i p = dot_i8(load32(xb + Q8_0_QS), load32(yb + Q8_0_QS));
    const __m256 d = _mm256_set1_ps(load_f16(xb + Q8_0_D) * load_f16(yb + Q8_0_D));
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
}
BLOCK_DOT_32(dot_q8_0_q8_0, step_q8_0, sizeof(block_q8_0), sizeof(block_q8_0))

/* Q4_1 x Q8_1: d*dy*sum(c*a) + m*s_y, c in [0, 15] unsigned (maddubs pair <= 2*15*127). */
static inline __m256 step_q4_1(const uint8_t *xb, const uint8_t *yb, __m256 acc, float *min_sum) {
    const __m256i p = dot_u8(nibbles_lo_hi(load16(xb + Q4_1_QS)), load32(yb + Q8_1_QS));
    const __m256 d = _mm256_set1_ps(load_f16(xb + Q4_1_D) * load_f16(yb + Q8_1_D));
    *min_sum = fmaf(load_f16(xb + Q4_1_M), load_f16(yb + Q8_1_S), *min_sum);
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
}
BLOCK_DOT_32_GGML_X86(dot_q4_1_q8_1, step_q4_1, sizeof(block_q4_1), sizeof(block_q8_1))

/* Q5_0: w = c - 16 in [-16, 15] = nibble | (high bit ? 0x00 : 0xF0) read as int8. */
static inline __m256 step_q5_0(const uint8_t *xb, const uint8_t *yb, __m256 acc, float *min_sum) {
    (void)min_sum;
    uint32_t qh;
    memcpy(&qh, xb + Q5_0_QH, sizeof qh);
    const __m256i hi = _mm256_andnot_si256(bits_to_bytes(qh), _mm256_set1_epi8((char)0xF0));
    const __m256i w = _mm256_or_si256(nibbles_lo_hi(load16(xb + Q5_0_QS)), hi);
    const __m256i p = dot_i8(w, load32(yb + Q8_0_QS));
    const __m256 d = _mm256_set1_ps(load_f16(xb + Q5_0_D) * load_f16(yb + Q8_0_D));
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
}
BLOCK_DOT_32_GGML_X86(dot_q5_0_q8_0, step_q5_0, sizeof(block_q5_0), sizeof(block_q8_0))

/* Q5_1 x Q8_1: c = nibble | 16*bit in [0, 31] unsigned (pair <= 2*31*127 = 7874). */
static inline __m256 step_q5_1(const uint8_t *xb, const uint8_t *yb, __m256 acc, float *min_sum) {
    uint32_t qh;
    memcpy(&qh, xb + Q5_1_QH, sizeof qh);
    const __m256i hi = _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10));
    const __m256i c = _mm256_or_si256(nibbles_lo_hi(load16(xb + Q5_1_QS)), hi);
    const __m256i p = dot_u8(c, load32(yb + Q8_1_QS));
    const __m256 d = _mm256_set1_ps(load_f16(xb + Q5_1_D) * load_f16(yb + Q8_1_D));
    *min_sum = fmaf(load_f16(xb + Q5_1_M), load_f16(yb + Q8_1_S), *min_sum);
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
}
BLOCK_DOT_32_GGML_X86(dot_q5_1_q8_1, step_q5_1, sizeof(block_q5_1), sizeof(block_q8_1))

/* IQ4_NL: w = K[c] in [-127, 113] via a 16-entry pshufb table; dot_i8 bound applies. */
static inline __m256 step_iq4_nl(const uint8_t *xb, const uint8_t *yb, __m256 acc, float *min_sum) {
    (void)min_sum;
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kvalues_iq4nl));
    const __m256i w = _mm256_shuffle_epi8(table, nibbles_lo_hi(load16(xb + IQ4NL_QS)));
    const __m256i p = dot_i8(w, load32(yb + Q8_0_QS));
    const __m256 d = _mm256_set1_ps(load_f16(xb + IQ4NL_D) * load_f16(yb + Q8_0_D));
    return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc);
}
BLOCK_DOT_32(dot_iq4_nl_q8_0, step_iq4_nl, sizeof(block_iq4_nl), sizeof(block_q8_0))

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

/* Scale vectors for 16-element sub-blocks: given 16 scale bytes in both 128-bit lanes, the int16
 * vector [scale[s] x8 | scale[s+1] x8]. `pick` starts as below and advances by 2 per pair (each
 * odd byte += 2); signed scales go to the high byte and are shifted down arithmetically, unsigned
 * ones go to the low byte with a zeroed (0x80 index) high byte. */
static inline __m256i pick_first_signed(void) {   /* odd bytes: 0 (lane 0) / 1 (lane 1), even: 0x80 */
    return _mm256_setr_epi8(-128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0,
                            -128, 1, -128, 1, -128, 1, -128, 1, -128, 1, -128, 1, -128, 1, -128, 1);
}
static inline __m256i pick_first_unsigned(void) {
    return _mm256_setr_epi8(0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128, 0, -128,
                            1, -128, 1, -128, 1, -128, 1, -128, 1, -128, 1, -128, 1, -128, 1, -128);
}

/* Q2_K: dy*(d * sum_s sc_s * sum(c*a) - dmin * sum_s m_s * bsums_s); c in [0,3], sc, m in [0,15].
 * maddubs pair <= 2*3*127 = 762; madd with sc: lane <= 2*762*15; 8 groups -> |lane| < 2^18. */
static void dot_q2_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float min_sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q2_K), *yb = y + i * sizeof(block_q8_K);
        const float dy = load_f32(yb + Q8K_D);
        const __m128i sc_packed = load16(xb + Q2K_SC);
        /* min part: sum_s m_s * bsums_s, |.| <= 16 * 15 * 2032 */
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc_packed, 4), _mm256_castsi256_si128(m4)));
        const int msum = hsum_epi32(_mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)(yb + Q8K_BSUMS))));
        const __m256i scales = _mm256_and_si256(_mm256_broadcastsi128_si256(sc_packed), m4);
        __m256i pick = pick_first_unsigned();
        const __m256i pick_step = _mm256_set1_epi16(2);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i q = load32(xb + Q2K_QS + 32 * h);
            for (int k = 0; k < 4; k++) {
                const __m256i c = _mm256_and_si256(q, m3);
                q = _mm256_srli_epi16(q, 2);
                const __m256i p = _mm256_maddubs_epi16(c, load32(yb + Q8K_QS + 128 * h + 32 * k));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_shuffle_epi8(scales, pick)));
                pick = _mm256_add_epi8(pick, pick_step);
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(load_f16(xb + Q2K_D) * dy), _mm256_cvtepi32_ps(sumi), acc);
        min_sum += load_f16(xb + Q2K_DMIN) * dy * (float)msum;
    }
    *s = hsum_ps(acc) - min_sum;
}

/* Q3_K: q = c3 - 4 with c3 = 2 low bits | 4*hmask bit in [0, 7]; sum sc*q*a = sum sc*c3*a - 4*sum sc*bsums.
 * maddubs pair <= 2*7*127 = 1778; madd with sc in [-32, 31]: lane <= 2*1778*32, 8 groups < 2^20. */
static void dot_q3_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3), bit2 = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q3_K), *yb = y + i * sizeof(block_q8_K);
        uint8_t sc_u[16];
        unpack_q3k_scales(xb + Q3K_SC, sc_u);
        const __m128i sc8 = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)sc_u), _mm_set1_epi8(32));
        const __m256i scales = _mm256_broadcastsi128_si256(sc8);
        /* offset: 4 * sum_s sc_s * bsums_s, |.| <= 4 * 16 * 32 * 2032 */
        const __m256i off = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), _mm256_loadu_si256((const __m256i *)(yb + Q8K_BSUMS)));
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 2));
        __m256i hm = load32(xb + Q3K_HM);
        __m256i pick = pick_first_signed();
        const __m256i pick_step = _mm256_set1_epi16(0x0200);
        for (int h = 0; h < 2; h++) {
            __m256i q = load32(xb + Q3K_QS + 32 * h);
            for (int k = 0; k < 4; k++) {
                /* element 128h+32k+p: low bits (q[p] >> 2k) & 3, high bit = bit (4h+k) of hmask[p] */
                const __m256i c = _mm256_or_si256(_mm256_and_si256(q, m3), _mm256_and_si256(_mm256_slli_epi16(hm, 2), bit2));
                q = _mm256_srli_epi16(q, 2);
                hm = _mm256_srli_epi16(hm, 1);
                const __m256i p = _mm256_maddubs_epi16(c, load32(yb + Q8K_QS + 128 * h + 32 * k));
                const __m256i sc16 = _mm256_srai_epi16(_mm256_shuffle_epi8(scales, pick), 8);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, sc16));
                pick = _mm256_add_epi8(pick, pick_step);
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(load_f16(xb + Q3K_D) * load_f32(yb + Q8K_D)), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* min part shared by Q4_K / Q5_K: sum_{j<8} m_j * (bsums[2j] + bsums[2j+1]); |.| <= 63 * 256 * 127. */
static inline int k4_min_sum(const uint8_t *mins8, const uint8_t *bsums) {
    const __m128i b_lo = _mm_loadu_si128((const __m128i *)bsums), b_hi = _mm_loadu_si128((const __m128i *)(bsums + 16));
    const __m128i pair = _mm_hadd_epi16(b_lo, b_hi);   /* 8 sums of 32 codes, |.| <= 4064 */
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mins8));
    return hsum_epi32_128(_mm_madd_epi16(pair, m16));
}

/* Q4_K: sum_j sc_j * sum(c*a) with c in [0,15], sc in [0,63]; pair <= 2*15*127 = 3810, madd lane <=
 * 2*3810*63, 4 pairs of sub-blocks: |lane| < 2^21. */
static void dot_q4_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float min_sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q4_K), *yb = y + i * sizeof(block_q8_K);
        const float dy = load_f32(yb + Q8K_D);
        uint8_t sm[16];
        unpack_k4_scales(xb + Q4K_SC, sm);
        const int msum = k4_min_sum(sm + 8, yb + Q8K_BSUMS);
        __m256i sumi = _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            const __m256i q = load32(xb + Q4K_QS + 32 * g);
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i p0 = _mm256_maddubs_epi16(lo, load32(yb + Q8K_QS + 64 * g));
            const __m256i p1 = _mm256_maddubs_epi16(hi, load32(yb + Q8K_QS + 64 * g + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, _mm256_set1_epi16(sm[2 * g])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, _mm256_set1_epi16(sm[2 * g + 1])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(load_f16(xb + Q4K_D) * dy), _mm256_cvtepi32_ps(sumi), acc);
        min_sum += load_f16(xb + Q4K_DMIN) * dy * (float)msum;
    }
    *s = hsum_ps(acc) - min_sum;
}

/* Q5_K: c = nibble | 16*hbit in [0, 31]; pair <= 2*31*127 = 7874, lane <= 4*2*7874*63 < 2^22. */
static void dot_q5_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
    __m256 acc = _mm256_setzero_ps();
    float min_sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q5_K), *yb = y + i * sizeof(block_q8_K);
        const float dy = load_f32(yb + Q8K_D);
        uint8_t sm[16];
        unpack_k4_scales(xb + Q5K_SC, sm);
        const int msum = k4_min_sum(sm + 8, yb + Q8K_BSUMS);
        __m256i qh = load32(xb + Q5K_QH);   /* bit j of qh[p] = high bit of element 32j + p */
        __m256i sumi = _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            const __m256i q = load32(xb + Q5K_QS + 32 * g);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), bit4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                               _mm256_and_si256(_mm256_slli_epi16(qh, 3), bit4));
            qh = _mm256_srli_epi16(qh, 2);
            const __m256i p0 = _mm256_maddubs_epi16(lo, load32(yb + Q8K_QS + 64 * g));
            const __m256i p1 = _mm256_maddubs_epi16(hi, load32(yb + Q8K_QS + 64 * g + 32));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, _mm256_set1_epi16(sm[2 * g])));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, _mm256_set1_epi16(sm[2 * g + 1])));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(load_f16(xb + Q5K_D) * dy), _mm256_cvtepi32_ps(sumi), acc);
        min_sum += load_f16(xb + Q5K_DMIN) * dy * (float)msum;
    }
    *s = hsum_ps(acc) - min_sum;
}

/* Q6_K: q = c - 32 with c = 4 low bits | 2 high bits << 4 in [0, 63];
 * sum sc*q*a = sum sc*c*a - 32*sum sc*bsums. maddubs pair <= 2*63*127 = 16002 (fits s16);
 * madd with sc in [-128, 127]: lane <= 2*16002*128, 8 groups: |lane| <= 32.8M < 2^31 (exact in
 * int32; above 2^24 only for adversarial blocks, where the f32 conversion rounds like the reference). */
static void dot_q6_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m_hi2 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q6_K), *yb = y + i * sizeof(block_q8_K);
        const __m128i sc8 = load16(xb + Q6K_SC);
        const __m256i scales = _mm256_broadcastsi128_si256(sc8);
        const __m256i off = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), _mm256_loadu_si256((const __m256i *)(yb + Q8K_BSUMS)));
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
        __m256i pick = pick_first_signed();
        const __m256i pick_step = _mm256_set1_epi16(0x0200);
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = load32(xb + Q6K_QL + 64 * h), ql1 = load32(xb + Q6K_QL + 64 * h + 32);
            const __m256i qh = load32(xb + Q6K_QH + 32 * h);
            __m256i c[4];
            c[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m_hi2));
            c[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m_hi2));
            c[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m_hi2));
            c[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m_hi2));
            for (int k = 0; k < 4; k++) {
                const __m256i p = _mm256_maddubs_epi16(c[k], load32(yb + Q8K_QS + 128 * h + 32 * k));
                const __m256i sc16 = _mm256_srai_epi16(_mm256_shuffle_epi8(scales, pick), 8);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, sc16));
                pick = _mm256_add_epi8(pick, pick_step);
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(load_f16(xb + Q6K_D) * load_f32(yb + Q8K_D)), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* IQ4_XS: sum_ib (ls_ib - 32) * sum K[c]*a. dot pairs <= 32512 (dot_i8 bound); madd with ls - 32 in
 * [-32, 31]: lane <= 2*32512*32, 8 sub-blocks: |lane| < 2^24. */
static void dot_iq4_xs_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kvalues_iq4nl));
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_iq4_xs), *yb = y + i * sizeof(block_q8_K);
        uint16_t sh;
        memcpy(&sh, xb + IQ4XS_SH, sizeof sh);
        __m256i sumi = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            const int ls = ((xb[IQ4XS_SL + ib / 2] >> 4 * (ib % 2)) & 15) | (((sh >> 2 * ib) & 3) << 4);
            const __m256i w = _mm256_shuffle_epi8(table, nibbles_lo_hi(load16(xb + IQ4XS_QS + 16 * ib)));
            const __m256i a = load32(yb + Q8K_QS + 32 * ib);
            const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_set1_epi16((short)(ls - 32))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(load_f16(xb + IQ4XS_D) * load_f32(yb + Q8K_D)), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* Trit t = (m * 3) >> 8 of a byte m (TQ1_0 decoding): 0 for m < 86, 1 for m < 171, else 2. */
static inline __m256i trit_of(__m256i m) {
    const __m256i ge86 = _mm256_cmpeq_epi8(_mm256_max_epu8(m, _mm256_set1_epi8(86)), m);
    const __m256i ge171 = _mm256_cmpeq_epi8(_mm256_max_epu8(m, _mm256_set1_epi8((char)171)), m);
    return _mm256_abs_epi8(_mm256_add_epi8(ge86, ge171));   /* (-1) + (-1) -> 2 */
}

/* m * 3 mod 256 per byte. */
static inline __m256i times3(__m256i m) { return _mm256_add_epi8(m, _mm256_add_epi8(m, m)); }
static inline __m128i times3_128(__m128i m) { return _mm_add_epi8(m, _mm_add_epi8(m, m)); }

/* TQ1_0: sum (t-1)*a = sum t*a - sum a (bsums). t in [0,2]: pair <= 2*2*127 = 508; 8 groups of
 * products accumulate in s16: |lane| <= 8*508 = 4064. */
static void dot_tq1_0_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_tq1_0), *yb = y + i * sizeof(block_q8_K);
        const uint8_t *a = yb + Q8K_QS;
        __m256i sum16 = _mm256_setzero_si256();
        /* qs[0..31]: element 32n + m is trit n of qs[m] */
        __m256i m = load32(xb + TQ1_QS);
        for (int t = 0; t < 5; t++) {
            sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(trit_of(m), load32(a + 32 * t)));
            m = times3(m);
        }
        /* qs[32..47]: element 160 + 16n + m is trit n of qs[32 + m]; trits (0,1) and (2,3) pair up with
         * 32 contiguous activations; trit 4 shares a vector with the qh trits (elements 240..255:
         * 240 + 4n + j is trit n of qh[j]). */
        const __m128i b = load16(xb + TQ1_QS + 32);
        const __m256i b01 = _mm256_set_m128i(times3_128(b), b);                 /* trits 0 | 1 */
        const __m256i b23 = times3(times3(b01));                                /* trits 2 | 3 */
        const __m128i b4 = times3_128(_mm256_extracti128_si256(b23, 1));      /* trit 4: 81 = 27 * 3 */
        uint32_t qh4;
        memcpy(&qh4, xb + TQ1_QH, sizeof qh4);
        const __m128i h0 = _mm_set1_epi32((int)qh4), h1 = times3_128(h0);
        const __m128i h2 = times3_128(h1), h3 = times3_128(h2);
        /* 32-bit lane n takes qh * 3^n: bytes 4n + j = trit n of qh[j] */
        const __m128i hq = _mm_blend_epi32(_mm_blend_epi32(h0, h1, 0x2), _mm_blend_epi32(h2, h3, 0x8), 0xC);
        sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(trit_of(b01), load32(a + 160)));
        sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(trit_of(b23), load32(a + 192)));
        sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(trit_of(_mm256_set_m128i(hq, b4)), load32(a + 224)));
        const __m256i bs = _mm256_loadu_si256((const __m256i *)(yb + Q8K_BSUMS));
        const __m256i sumi = _mm256_sub_epi32(_mm256_madd_epi16(sum16, ones16), _mm256_madd_epi16(bs, ones16));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(load_f16(xb + TQ1_D) * load_f32(yb + Q8K_D)), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* TQ2_0: sum (c-1)*a = sum c*a - sum a; c in [0,3]: pair <= 762, 8 groups in s16: |lane| <= 6096. */
static void dot_tq2_0_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m3 = _mm256_set1_epi8(3), ones16 = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_tq2_0), *yb = y + i * sizeof(block_q8_K);
        __m256i sum16 = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i q = load32(xb + TQ2_QS + 32 * h);
            for (int k = 0; k < 4; k++) {
                const __m256i c = _mm256_and_si256(q, m3);
                q = _mm256_srli_epi16(q, 2);
                sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(c, load32(yb + Q8K_QS + 128 * h + 32 * k)));
            }
        }
        const __m256i bs = _mm256_loadu_si256((const __m256i *)(yb + Q8K_BSUMS));
        const __m256i sumi = _mm256_sub_epi32(_mm256_madd_epi16(sum16, ones16), _mm256_madd_epi16(bs, ones16));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(load_f16(xb + TQ2_D) * load_f32(yb + Q8K_D)), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_ps(acc);
}

/* ---- BitNet I2_S x I8_S ------------------------------------------------------------------------ */

/* *s = (S - A) / s_act exactly as the reference (quant/ref.h): S = sum code*a with raw codes 0..3,
 * A and s_act from the I8_S row trailer; S is exact (int32 lanes, int64 total), so the result is
 * bit-identical. Group of 128: byte p holds elements p, p+32, p+64, p+96 in bits 7-6 .. 1-0.
 * I8_S codes may be -128: maddubs pair <= 2*3*128 = 768, 4 groups in s16 <= 3072; each int32 lane
 * gains <= 6144 per group. */
static void dot_i2_s_i8_s(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *a = vy;
    const int64_t ng = n / QK_I2S;
    const __m256i m3 = _mm256_set1_epi8(3), ones16 = _mm256_set1_epi16(1);
    __m256i sumi = _mm256_setzero_si256();
    int64_t total = 0;
    for (int64_t g = 0; g < ng; g++) {
        const __m256i q = load32(x + 32 * g);
        const uint8_t *ag = a + QK_I2S * g;
        __m256i sum16 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 6), m3), load32(ag));
        sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), m3), load32(ag + 32)));
        sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 2), m3), load32(ag + 64)));
        sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(_mm256_and_si256(q, m3), load32(ag + 96)));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(sum16, ones16));
        if ((g & 0xFFFF) == 0xFFFF) {   /* flush long before an int32 lane could reach 2^31 */
            total += hsum_epi32(sumi);
            sumi = _mm256_setzero_si256();
        }
    }
    total += hsum_epi32(sumi);
    float act_scale;
    int32_t act_sum;
    memcpy(&act_scale, a + I8S_SCALE_OFFSET(n), sizeof act_scale);
    memcpy(&act_sum, a + I8S_SUM_OFFSET(n), sizeof act_sum);
    *s = (float)(total - act_sum) / act_scale;
}

/* ---- 4-column kernels (kern_vec_dot4_fn): one weight row against 4 activation rows ------------------
 * Each weight block is decoded once and used against the 4 activation blocks. Per column, every float
 * operation is the one the single kernel above does, in the same order (same even/odd accumulator
 * split, same scale products, same final reduction), so s[k] is bit-identical to calling the single
 * kernel on column k. Integer partial sums may be formed in a different order (they are exact). */

/* Q4_0 / Q8_0 block step for 4 columns: w = decoded weight codes (any int8), |w| shared. */
static inline void step4_i8(__m256i w, float dx, const uint8_t *yb, size_t ys, __m256 acc[4]) {
    const __m256i abs_w = _mm256_abs_epi8(w), ones16 = _mm256_set1_epi16(1);
    for (int k = 0; k < 4; k++) {
        const uint8_t *yk = yb + (size_t)k * ys;
        /* dot_i8(w, a): same bound as there */
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(load32(yk + Q8_0_QS), w)), ones16);
        const __m256 d = _mm256_set1_ps(dx * load_f16(yk + Q8_0_D));
        acc[k] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc[k]);
    }
}

static inline void step4_q4_0(const uint8_t *xb, const uint8_t *yb, size_t ys, __m256 acc[4]) {
    const __m256i w = _mm256_sub_epi8(nibbles_lo_hi(load16(xb + Q4_0_QS)), _mm256_set1_epi8(8));
    step4_i8(w, load_f16(xb + Q4_0_D), yb, ys, acc);
}

static inline void step4_q8_0(const uint8_t *xb, const uint8_t *yb, size_t ys, __m256 acc[4]) {
    step4_i8(load32(xb + Q8_0_QS), load_f16(xb + Q8_0_D), yb, ys, acc);
}

/* Mirrors BLOCK_DOT_32 (types without a min: min_sum stays 0.0f but is still added, as there). */
#define BLOCK_DOT4_32(name, step4_fn, x_block_bytes, y_block_bytes)                                  \
    static void name(int64_t n, float *s, const void *vx, const void *vy, size_t ys) {               \
        const uint8_t *x = vx, *y = vy;                                                             \
        const int64_t nb = n / 32;                                                                  \
        __m256 acc0[4], acc1[4];                                                                    \
        for (int k = 0; k < 4; k++) acc0[k] = acc1[k] = _mm256_setzero_ps();                        \
        const float min_sum = 0.0f;                                                                 \
        int64_t i = 0;                                                                              \
        for (; i + 2 <= nb; i += 2) {                                                               \
            step4_fn(x + i * (x_block_bytes), y + i * (y_block_bytes), ys, acc0);                   \
            step4_fn(x + (i + 1) * (x_block_bytes), y + (i + 1) * (y_block_bytes), ys, acc1);       \
        }                                                                                           \
        if (i < nb) step4_fn(x + i * (x_block_bytes), y + i * (y_block_bytes), ys, acc0);           \
        for (int k = 0; k < 4; k++) s[k] = hsum_ps(_mm256_add_ps(acc0[k], acc1[k])) + min_sum;      \
    }
BLOCK_DOT4_32(dot4_q4_0_q8_0, step4_q4_0, sizeof(block_q4_0), sizeof(block_q8_0))
BLOCK_DOT4_32(dot4_q8_0_q8_0, step4_q8_0, sizeof(block_q8_0), sizeof(block_q8_0))

/* Q4_K, 4 columns: nibbles and scales decoded once per super-block (bounds as dot_q4_K_q8_K). */
static void dot4_q4_K_q8_K(int64_t n, float *s, const void *vx, const void *vy, size_t ys) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[4];
    float min_sum[4];
    for (int k = 0; k < 4; k++) { acc[k] = _mm256_setzero_ps(); min_sum[k] = 0.0f; }
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q4_K), *yb = y + i * sizeof(block_q8_K);
        uint8_t sm[16];
        unpack_k4_scales(xb + Q4K_SC, sm);
        __m256i sumi[4];
        for (int k = 0; k < 4; k++) sumi[k] = _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            const __m256i q = load32(xb + Q4K_QS + 32 * g);
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i sc_lo = _mm256_set1_epi16(sm[2 * g]), sc_hi = _mm256_set1_epi16(sm[2 * g + 1]);
            for (int k = 0; k < 4; k++) {
                const uint8_t *yk = yb + (size_t)k * ys;
                const __m256i p0 = _mm256_maddubs_epi16(lo, load32(yk + Q8K_QS + 64 * g));
                const __m256i p1 = _mm256_maddubs_epi16(hi, load32(yk + Q8K_QS + 64 * g + 32));
                sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(p0, sc_lo));
                sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(p1, sc_hi));
            }
        }
        const float dx = load_f16(xb + Q4K_D), dmin = load_f16(xb + Q4K_DMIN);
        for (int k = 0; k < 4; k++) {
            const uint8_t *yk = yb + (size_t)k * ys;
            const float dy = load_f32(yk + Q8K_D);
            const int msum = k4_min_sum(sm + 8, yk + Q8K_BSUMS);
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dx * dy), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
            min_sum[k] += dmin * dy * (float)msum;
        }
    }
    for (int k = 0; k < 4; k++) s[k] = hsum_ps(acc[k]) - min_sum[k];
}

/* Q6_K, 4 columns: codes and scale vectors decoded once per super-block (bounds as dot_q6_K_q8_K). */
static void dot4_q6_K_q8_K(int64_t n, float *s, const void *vx, const void *vy, size_t ys) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m_hi2 = _mm256_set1_epi8(0x30);
    __m256 acc[4];
    for (int k = 0; k < 4; k++) acc[k] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q6_K), *yb = y + i * sizeof(block_q8_K);
        const __m128i sc8 = load16(xb + Q6K_SC);
        const __m256i scales = _mm256_broadcastsi128_si256(sc8), sc16_all = _mm256_cvtepi8_epi16(sc8);
        __m256i sumi[4];
        for (int k = 0; k < 4; k++) {
            const __m256i off = _mm256_madd_epi16(sc16_all, _mm256_loadu_si256((const __m256i *)(yb + (size_t)k * ys + Q8K_BSUMS)));
            sumi[k] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
        }
        __m256i pick = pick_first_signed();
        const __m256i pick_step = _mm256_set1_epi16(0x0200);
        for (int h = 0; h < 2; h++) {
            const __m256i ql0 = load32(xb + Q6K_QL + 64 * h), ql1 = load32(xb + Q6K_QL + 64 * h + 32);
            const __m256i qh = load32(xb + Q6K_QH + 32 * h);
            __m256i c[4];
            c[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m_hi2));
            c[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m_hi2));
            c[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m_hi2));
            c[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), m_hi2));
            for (int j = 0; j < 4; j++) {
                const __m256i sc16 = _mm256_srai_epi16(_mm256_shuffle_epi8(scales, pick), 8);
                pick = _mm256_add_epi8(pick, pick_step);
                for (int k = 0; k < 4; k++) {
                    const __m256i p = _mm256_maddubs_epi16(c[j], load32(yb + (size_t)k * ys + Q8K_QS + 128 * h + 32 * j));
                    sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(p, sc16));
                }
            }
        }
        const float dx = load_f16(xb + Q6K_D);
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dx * load_f32(yb + (size_t)k * ys + Q8K_D)), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
    }
    for (int k = 0; k < 4; k++) s[k] = hsum_ps(acc[k]);
}

/* ---- table ------------------------------------------------------------------------------------- */

const kern_dot_entry kern_dots_avx2[] = {
    { LLMPI_TYPE_F32, dot_f32 },
    { LLMPI_TYPE_F16, dot_f16 },
    { LLMPI_TYPE_BF16, dot_bf16 },
    { LLMPI_TYPE_Q4_0, dot_q4_0_q8_0 },
    { LLMPI_TYPE_Q4_1, dot_q4_1_q8_1 },
    { LLMPI_TYPE_Q5_0, dot_q5_0_q8_0 },
    { LLMPI_TYPE_Q5_1, dot_q5_1_q8_1 },
    { LLMPI_TYPE_Q8_0, dot_q8_0_q8_0 },
    { LLMPI_TYPE_IQ4_NL, dot_iq4_nl_q8_0 },
    { LLMPI_TYPE_Q2_K, dot_q2_K_q8_K },
    { LLMPI_TYPE_Q3_K, dot_q3_K_q8_K },
    { LLMPI_TYPE_Q4_K, dot_q4_K_q8_K },
    { LLMPI_TYPE_Q5_K, dot_q5_K_q8_K },
    { LLMPI_TYPE_Q6_K, dot_q6_K_q8_K },
    { LLMPI_TYPE_IQ4_XS, dot_iq4_xs_q8_K },
    { LLMPI_TYPE_TQ1_0, dot_tq1_0_q8_K },
    { LLMPI_TYPE_TQ2_0, dot_tq2_0_q8_K },
    { LLMPI_TYPE_I2_S, dot_i2_s_i8_s },
    { LLMPI_TYPE_COUNT, NULL },
};

/* 4-column kernels; every type listed is also served by this family's single kernel. */
const kern_dot4_entry kern_dots4_avx2[] = {
    { LLMPI_TYPE_Q4_0, dot4_q4_0_q8_0 },
    { LLMPI_TYPE_Q8_0, dot4_q8_0_q8_0 },
    { LLMPI_TYPE_Q4_K, dot4_q4_K_q8_K },
    { LLMPI_TYPE_Q6_K, dot4_q6_K_q8_K },
    { LLMPI_TYPE_COUNT, NULL },
};

/* F16 weights x F32 activations (not a type-table pair: kern_vec_dot_for(F16, F32), used for the F16
 * output matrix under bitnet.cpp's numerics, which multiply it by the unrounded f32 hidden state).
 * Exact widening of the weights, f32 products and sums in 4 x 8 lanes; tail in f32. */
void kern_dot_f16_f32_avx2(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx;
    const float *y = vy;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    int64_t i = 0;
#define W8(k) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + 2 * (i + (k)))))
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(W8(0), _mm256_loadu_ps(y + i), acc0);
        acc1 = _mm256_fmadd_ps(W8(8), _mm256_loadu_ps(y + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(W8(16), _mm256_loadu_ps(y + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(W8(24), _mm256_loadu_ps(y + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(W8(0), _mm256_loadu_ps(y + i), acc0);
#undef W8
    const __m256 v = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    float sum = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
    for (; i < n; i++) {
        uint16_t hv;
        memcpy(&hv, x + 2 * i, sizeof hv);
        sum += _cvtsh_ss(hv) * y[i];
    }
    *s = sum;
}
