/* AVX-512 (F, BW, VL, VNNI) dot-product kernels for the types where 512-bit registers and VNNI pay:
 * Q4_0, Q8_0 (two 32-element blocks per register), Q4_K, TQ2_0 (a 256-element super-block in four
 * registers), F32, F16. Every other type is served by the AVX2 family (see the table at the end and
 * kernels/dispatch.c).
 *
 * Exactness and float order: as in dot_avx2.c -- integer sums exact in int32, float combination in
 * 16 f32 lanes (different order than the scalar reference, same bound).
 *
 * VNNI notes: _mm512_dpbusd_epi32(acc, u, s) adds u8 x s8 products four at a time into int32 lanes
 * with no intermediate saturation (unlike maddubs), so any u8 x s8 input is exact;
 * _mm512_dpwssd_epi32(acc, a, b) adds s16 x s16 pairs into int32 (also exact for our operands). */
#include "cpu_features.h"
#include "blocks.h"
#include "block_unpack.h"
#include "ternary.h"   /* h4: AVX-512 TQ1_0 / I2_S MAD kernels live in kernels/ternary_avx512.c */

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

static inline float load_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

static inline __m256i load32(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m512i load64(const uint8_t *p) { return _mm512_loadu_si512((const void *)p); }

/* [lo 256 | hi 256] from two unaligned 32-byte loads. */
static inline __m512i load32x2(const uint8_t *lo, const uint8_t *hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(load32(lo)), load32(hi), 1);
}

/* 16 f32 lanes: the first 8 = a, the last 8 = b. */
static inline __m512 halves_ps(float a, float b) {
    return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(a), _mm512_set1_ps(b));
}

/* ---- float types ------------------------------------------------------------------------------ */

static void dot_f32(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const float *x = vx, *y = vy;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), acc1);
        acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), acc2);
        acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), acc3);
    }
    for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), acc0);
    if (i < n) {   /* masked tail: lanes past n load as 0 */
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), acc1);
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

/* F16: exact widening (vcvtph2ps), exact f16 x f16 products in f32. */
static void dot_f16(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
#define LD(p, i) _mm512_cvtph_ps(load32((p) + 2 * (i)))
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        acc0 = _mm512_fmadd_ps(LD(x, i), LD(y, i), acc0);
        acc1 = _mm512_fmadd_ps(LD(x, i + 16), LD(y, i + 16), acc1);
        acc2 = _mm512_fmadd_ps(LD(x, i + 32), LD(y, i + 32), acc2);
        acc3 = _mm512_fmadd_ps(LD(x, i + 48), LD(y, i + 48), acc3);
    }
    for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(LD(x, i), LD(y, i), acc0);
#undef LD
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        const __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + 2 * i));
        const __m512 yv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, y + 2 * i));
        acc1 = _mm512_fmadd_ps(xv, yv, acc1);
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

/* ---- Q4_0 / Q8_0: two blocks per 512-bit register ----------------------------------------------- */

enum {
    Q4_0_D = offsetof(block_q4_0, d), Q4_0_QS = offsetof(block_q4_0, qs),
    Q8_0_D = offsetof(block_q8_0, d), Q8_0_QS = offsetof(block_q8_0, qs),
    Q8K_D = offsetof(block_q8_K, d), Q8K_QS = offsetof(block_q8_K, qs), Q8K_BSUMS = offsetof(block_q8_K, bsums),
    Q4K_D = offsetof(block_q4_K, d), Q4K_DMIN = offsetof(block_q4_K, dmin), Q4K_SC = offsetof(block_q4_K, scales),
    Q4K_QS = offsetof(block_q4_K, qs),
    TQ2_QS = offsetof(block_tq2_0, qs), TQ2_D = offsetof(block_tq2_0, d),
};

/* Blocks i and i+1 of Q4_0: 64 codes c in [0, 15] ordered like the activations (block i elements
 * 0..15 = low nibbles, 16..31 = high nibbles, then block i+1). */
static inline __m512i q4_0_codes_x2(const uint8_t *b0, const uint8_t *b1) {
    const __m512i shifts = _mm512_set_epi64(0x0004000400040004LL, 0x0004000400040004LL, 0, 0,
                                            0x0004000400040004LL, 0x0004000400040004LL, 0, 0);
    const __m256i q0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b0 + Q4_0_QS)));
    const __m256i q1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b1 + Q4_0_QS)));
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);   /* [q0 q0 q1 q1] */
    return _mm512_and_si512(_mm512_srlv_epi16(q, shifts), _mm512_set1_epi8(0x0F));
}

/* Q4_0: sum (c - 8) a = dpbusd(c, a) - dpbusd(8, a); per block |sum| <= 32*8*127, exact. */
static inline __m512 q4_0_pair(const uint8_t *x, const uint8_t *y, int64_t i, __m512 acc) {
    const uint8_t *x0 = x + i * sizeof(block_q4_0), *x1 = x0 + sizeof(block_q4_0);
    const uint8_t *y0 = y + i * sizeof(block_q8_0), *y1 = y0 + sizeof(block_q8_0);
    const __m512i a = load32x2(y0 + Q8_0_QS, y1 + Q8_0_QS);
    const __m512i cx = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q4_0_codes_x2(x0, x1), a);
    const __m512i eight_a = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), a);
    const __m512 d = halves_ps(load_f16(x0 + Q4_0_D) * load_f16(y0 + Q8_0_D), load_f16(x1 + Q4_0_D) * load_f16(y1 + Q8_0_D));
    return _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(_mm512_sub_epi32(cx, eight_a)), acc);
}

/* Q8_0: sign trick so dpbusd sees u8 |w| <= 128 and s8 a*sign(w) in [-127, 127] (activation codes
 * never reach -128); per block |sum| <= 32*128*127, exact. */
static inline __m512 q8_0_pair(const uint8_t *x, const uint8_t *y, int64_t i, __m512 acc) {
    const uint8_t *x0 = x + i * sizeof(block_q8_0), *x1 = x0 + sizeof(block_q8_0);
    const uint8_t *y0 = y + i * sizeof(block_q8_0), *y1 = y0 + sizeof(block_q8_0);
    const __m512i w = load32x2(x0 + Q8_0_QS, x1 + Q8_0_QS);
    const __m512i a = load32x2(y0 + Q8_0_QS, y1 + Q8_0_QS);
    const __m512i a_signed = _mm512_mask_sub_epi8(a, _mm512_movepi8_mask(w), _mm512_setzero_si512(), a);
    const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), a_signed);
    const __m512 d = halves_ps(load_f16(x0 + Q8_0_D) * load_f16(y0 + Q8_0_D), load_f16(x1 + Q8_0_D) * load_f16(y1 + Q8_0_D));
    return _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc);
}

/* Pairs of blocks into two accumulators (4 blocks per iteration); an odd last block goes through the
 * AVX2-width path of the same arithmetic by pairing it with itself and masking the second half. */
#define PAIR_DOT(name, pair_fn, x_block_bytes, y_block_bytes, tail_fn)                              \
    static void name(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) { \
        const uint8_t *x = vx, *y = vy;                                                             \
        const int64_t nb = n / 32;                                                                  \
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();                              \
        int64_t i = 0;                                                                              \
        for (; i + 4 <= nb; i += 4) {                                                               \
            acc0 = pair_fn(x, y, i, acc0);                                                          \
            acc1 = pair_fn(x, y, i + 2, acc1);                                                      \
        }                                                                                           \
        if (i + 2 <= nb) { acc0 = pair_fn(x, y, i, acc0); i += 2; }                                 \
        float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));                                \
        if (i < nb) sum += tail_fn(x + i * (x_block_bytes), y + i * (y_block_bytes));               \
        *s = sum;                                                                                   \
    }

/* Single trailing block, 256-bit (AVX-512VL forms of the same instructions). */
static float q4_0_single(const uint8_t *xb, const uint8_t *yb) {
    const __m128i q = _mm_loadu_si128((const __m128i *)(xb + Q4_0_QS));
    const __m256i c = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
    const __m256i a = load32(yb + Q8_0_QS);
    const __m256i p = _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), c, a),
                                       _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), a));
    const __m256 v = _mm256_mul_ps(_mm256_set1_ps(load_f16(xb + Q4_0_D) * load_f16(yb + Q8_0_D)), _mm256_cvtepi32_ps(p));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

static float q8_0_single(const uint8_t *xb, const uint8_t *yb) {
    const __m256i w = load32(xb + Q8_0_QS), a = load32(yb + Q8_0_QS);
    const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
    const __m256 v = _mm256_mul_ps(_mm256_set1_ps(load_f16(xb + Q8_0_D) * load_f16(yb + Q8_0_D)), _mm256_cvtepi32_ps(p));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

PAIR_DOT(dot_q4_0_q8_0, q4_0_pair, sizeof(block_q4_0), sizeof(block_q8_0), q4_0_single)
PAIR_DOT(dot_q8_0_q8_0, q8_0_pair, sizeof(block_q8_0), sizeof(block_q8_0), q8_0_single)

/* ---- Q4_K, TQ2_0: one 256-element super-block in four registers ---------------------------------- */

/* Q4_K: register g holds sub-blocks 2g (low nibbles of qs[32g..32g+31]) and 2g+1 (high nibbles).
 * maddubs c*a pairs <= 2*15*127 = 3810 (no saturation), dpwssd with the sub-block scale (<= 63):
 * int32 lane <= 4 * 2*3810*63 < 2^21. Mins: sum_j m_j (bsums[2j] + bsums[2j+1]), exact. */
static void dot_q4_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m512i nib_shift = _mm512_set_epi64(0x0004000400040004LL, 0x0004000400040004LL, 0x0004000400040004LL,
                                               0x0004000400040004LL, 0, 0, 0, 0);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* int16 lane l of register g takes scale 2g + (l >= 16) */
    const __m512i pick_lo = _mm512_set_epi64(0x0001000100010001LL, 0x0001000100010001LL, 0x0001000100010001LL,
                                             0x0001000100010001LL, 0, 0, 0, 0);
    const __m512i two = _mm512_set1_epi16(2);
    __m512 acc = _mm512_setzero_ps();
    float min_sum = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q4_K), *yb = y + i * sizeof(block_q8_K);
        const float dy = load_f32(yb + Q8K_D);
        uint8_t sm[16];
        unpack_k4_scales(xb + Q4K_SC, sm);
        const __m128i sm16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sm));  /* sc0..7 as int16 */
        const __m512i sc_all = _mm512_broadcast_i32x4(sm16);
        /* mins */
        const __m128i b_lo = _mm_loadu_si128((const __m128i *)(yb + Q8K_BSUMS));
        const __m128i b_hi = _mm_loadu_si128((const __m128i *)(yb + Q8K_BSUMS + 16));
        const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
        __m128i mv = _mm_madd_epi16(_mm_hadd_epi16(b_lo, b_hi), m16);
        mv = _mm_add_epi32(mv, _mm_shuffle_epi32(mv, _MM_SHUFFLE(1, 0, 3, 2)));
        mv = _mm_add_epi32(mv, _mm_shuffle_epi32(mv, _MM_SHUFFLE(2, 3, 0, 1)));
        const int msum = _mm_cvtsi128_si32(mv);
        __m512i sumi = _mm512_setzero_si512();
        __m512i pick = pick_lo;
        for (int g = 0; g < 4; g++) {
            const __m512i q = _mm512_broadcast_i64x4(load32(xb + Q4K_QS + 32 * g));
            const __m512i c = _mm512_and_si512(_mm512_srlv_epi16(q, nib_shift), m4);
            const __m512i p = _mm512_maddubs_epi16(c, load64(yb + Q8K_QS + 64 * g));
            sumi = _mm512_dpwssd_epi32(sumi, p, _mm512_permutexvar_epi16(pick, sc_all));
            pick = _mm512_add_epi16(pick, two);
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(load_f16(xb + Q4K_D) * dy), _mm512_cvtepi32_ps(sumi), acc);
        min_sum += load_f16(xb + Q4K_DMIN) * dy * (float)msum;
    }
    *s = _mm512_reduce_add_ps(acc) - min_sum;
}

/* TQ2_0: kern_dot_tq2_0_q8_K_avx512 in kernels/ternary_avx512.c (next to its 4-row kernel). */

/* ---- Q6_K, Q3_K, Q2_K in llama.cpp's float order (issue #4 goldens) -----------------------------
 * A super-block's 256 elements sit in four 512-bit registers r = 0..3 (elements 64r..64r+63, i.e. the
 * 32-element groups 2r and 2r+1); group element p (0..31) is in int32 lane p/4 of its 256-bit half.
 * maddubs (u8 codes x s8 activations -> s16 pairs) and dpwssd with the 16-element sub-block's scale
 * (s16) add sc * (sum of 4 products) to that lane, exactly; the two halves are added at the end (exact).
 *
 * Q6_K / Q3_K: the resulting 8 int32 lanes are the 8 lanes of ggml's AVX2 ggml_vec_dot_q6_K_q8_K /
 * ggml_vec_dot_q3_K_q8_K (what llama.cpp runs on AVX-512 CPUs too): lane l = sum over the 8 groups of
 * sc * (products 4l..4l+3); Q6_K minus 32 * (sc[2l] bsums[2l] + sc[2l+1] bsums[2l+1]) (its -32 goes
 * through bsums), Q3_K with its -4 applied per element. The float part is ggml's too: acc_l =
 * fma(dy * dx, (float)lane_l, acc_l) super-block after super-block, then hsum8_ggml. Results are
 * bit-identical to llama.cpp's (tests/test_kernels.c checks them against an order model).
 *
 * Q2_K: llama.cpp repacks Q2_K on AVX-512 CPUs (repack.cpp, gemv/gemm_q2_K_8x8_q8_K) and computes per
 * output S = fma((float)isum_b, dx*dy, S), M = fma((float)msum_b, dmin*dy, M) over super-blocks b in
 * order (isum = sum_s sc_s * sum(c*a), msum = sum_s m_s * bsums_s, both exact), result S - M. The kernel
 * below does exactly that, S and M in two f32 lanes.
 *
 * GCC -O2 does not unroll small loops, and arrays of vectors then go through the stack, so the four
 * registers are spelled out (zmm4). */
enum {
    Q6K_QL = offsetof(block_q6_K, ql), Q6K_QH = offsetof(block_q6_K, qh), Q6K_SC = offsetof(block_q6_K, scales),
    Q6K_D = offsetof(block_q6_K, d),
    Q3K_HM = offsetof(block_q3_K, hmask), Q3K_QS = offsetof(block_q3_K, qs), Q3K_SC = offsetof(block_q3_K, scales),
    Q3K_D = offsetof(block_q3_K, d),
    Q2K_SC = offsetof(block_q2_K, scales), Q2K_QS = offsetof(block_q2_K, qs), Q2K_D = offsetof(block_q2_K, d),
};
_Static_assert(offsetof(block_q2_K, dmin) == offsetof(block_q2_K, d) + 2, "Q2_K d and dmin are read as one pair");

typedef struct { __m512i r0, r1, r2, r3; } zmm4;

/* ggml's hsum_float_8: (hi128 + lo128), then lanes (0+2, 1+3), then their sum. */
static inline float hsum8_ggml(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* [v | v]: a 32-byte field in both 256-bit halves. */
static inline __m512i load32_both(const uint8_t *p) { return _mm512_broadcast_i64x4(load32(p)); }

/* Per-16-bit-word shift counts: `lo` in the first 256 bits, `hi` in the second. */
static inline __m512i shift_halves(int lo, int hi) {
    return _mm512_inserti64x4(_mm512_set1_epi16((short)lo), _mm256_set1_epi16((short)hi), 1);
}

/* Scale vectors from 16 int16 sub-block scales: register r gets, per int16 pair lane (8 per 16
 * elements), the scale of sub-block 4r + (lane / 8). vpermw indices < 16 read only the low half. */
static inline zmm4 subblock_scales(__m256i sc16) {
    const __m512i sc = _mm512_castsi256_si512(sc16);
    const __m512i idx = _mm512_set_epi64(0x0003000300030003LL, 0x0003000300030003LL, 0x0002000200020002LL,
                                         0x0002000200020002LL, 0x0001000100010001LL, 0x0001000100010001LL, 0, 0);
    zmm4 v;
    v.r0 = _mm512_permutexvar_epi16(idx, sc);
    v.r1 = _mm512_permutexvar_epi16(_mm512_add_epi16(idx, _mm512_set1_epi16(4)), sc);
    v.r2 = _mm512_permutexvar_epi16(_mm512_add_epi16(idx, _mm512_set1_epi16(8)), sc);
    v.r3 = _mm512_permutexvar_epi16(_mm512_add_epi16(idx, _mm512_set1_epi16(12)), sc);
    return v;
}

/* The 8 ggml lanes: sum over r of dpwssd(maddubs(c.r, a[64r..]), scv.r), halves folded. Two chains
 * (r = 0, 1 and r = 2, 3) shorten the dpwssd latency chain; integer sums, so the order is free. */
static inline __m256i scaled_lanes(zmm4 c, zmm4 scv, const uint8_t *a) {
    const __m512i z = _mm512_setzero_si512();
    __m512i s01 = _mm512_dpwssd_epi32(z, _mm512_maddubs_epi16(c.r0, load64(a)), scv.r0);
    __m512i s23 = _mm512_dpwssd_epi32(z, _mm512_maddubs_epi16(c.r2, load64(a + 128)), scv.r2);
    s01 = _mm512_dpwssd_epi32(s01, _mm512_maddubs_epi16(c.r1, load64(a + 64)), scv.r1);
    s23 = _mm512_dpwssd_epi32(s23, _mm512_maddubs_epi16(c.r3, load64(a + 192)), scv.r3);
    const __m512i s = _mm512_add_epi32(s01, s23);
    return _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
}

/* Q6_K codes c = low4 | high2 << 4 in [0, 63]. Register 2h: low nibbles of ql[64h .. 64h+63] with qh[32h+p]
 * bits 0-1 (first half) / 2-3 (second half); register 2h+1: high nibbles with bits 4-5 / 6-7. */
static inline zmm4 q6k_codes(const uint8_t *xb) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m_hi2 = _mm512_set1_epi8(0x30);
    const __m512i up = shift_halves(4, 2), down = shift_halves(0, 2);
    const __m512i ql0 = load64(xb + Q6K_QL), ql1 = load64(xb + Q6K_QL + 64);
    const __m512i qh0 = load32_both(xb + Q6K_QH), qh1 = load32_both(xb + Q6K_QH + 32);
    zmm4 c;   /* ternary 0xEA: (a & b) | c */
    c.r0 = _mm512_ternarylogic_epi32(ql0, m4, _mm512_and_si512(_mm512_sllv_epi16(qh0, up), m_hi2), 0xEA);
    c.r1 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql0, 4), m4, _mm512_and_si512(_mm512_srlv_epi16(qh0, down), m_hi2), 0xEA);
    c.r2 = _mm512_ternarylogic_epi32(ql1, m4, _mm512_and_si512(_mm512_sllv_epi16(qh1, up), m_hi2), 0xEA);
    c.r3 = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql1, 4), m4, _mm512_and_si512(_mm512_srlv_epi16(qh1, down), m_hi2), 0xEA);
    return c;
}

static inline __m256i q6k_scales16(const uint8_t *xb) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(xb + Q6K_SC)));
}

/* Q6_K lanes minus ggml's q8sclsub = 32 * (sc[2l] bsums[2l] + sc[2l+1] bsums[2l+1]). maddubs pair <=
 * 2*63*127 = 16002 (no saturation); dpwssd with sc in [-128, 127] adds <= 2*16002*128 per op, 4 ops and
 * the fold: |lane| <= 32.8M < 2^31 (as the AVX2 kernel). */
static inline __m256i q6k_lanes(zmm4 c, zmm4 scv, __m256i sc16, const uint8_t *yb) {
    const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(load32(yb + Q8K_BSUMS), sc16), 5);
    return _mm256_sub_epi32(scaled_lanes(c, scv, yb + Q8K_QS), off);
}

static void dot_q6_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q6_K), *yb = y + i * sizeof(block_q8_K);
        const __m256i sc16 = q6k_scales16(xb);
        const __m256i lanes = q6k_lanes(q6k_codes(xb), subblock_scales(sc16), sc16, yb);
        const float d = load_f32(yb + Q8K_D) * load_f16(xb + Q6K_D);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), acc);
    }
    *s = hsum8_ggml(acc);
}

/* Q3_K 12-byte scale field -> 16 signed scales (6-bit - 32) as int16, without a trip through memory
 * (unpack_q3k_scales' layout, in 32-bit lanes): lane k = low nibbles (k < 2: w[k], else w[k-2] >> 4)
 * | bits 2k..2k+1 of each byte of w[2], shifted to bits 4-5. The masked load reads exactly 12 bytes. */
static inline __m256i q3k_scales16(const uint8_t *xb) {
    const __m128i w = _mm_maskz_loadu_epi8(0x0FFF, xb + Q3K_SC);
    const __m128i lo4 = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(w, _MM_SHUFFLE(1, 0, 1, 0)), _mm_setr_epi32(0, 0, 4, 4)),
                                      _mm_set1_epi8(0x0F));
    const __m128i hi2 = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(w, _MM_SHUFFLE(2, 2, 2, 2)), _mm_setr_epi32(0, 2, 4, 6)),
                                      _mm_set1_epi8(0x03));
    const __m128i sc = _mm_sub_epi8(_mm_or_si128(lo4, _mm_slli_epi32(hi2, 4)), _mm_set1_epi8(32));
    return _mm256_cvtepi8_epi16(sc);
}

/* Q3_K register 2h + j: c3 = low2 | 4 * hbit in [0, 7] (weight c3 - 4); low2 = (qs[32h + p] >> 4j or
 * 4j+2) & 3, hbit = bit 4h + 2j (first half) / 4h + 2j + 1 (second half) of hmask[p]. */
static inline __m512i q3k_code(__m512i qs_h, __m512i hmask, int h, int j) {
    const __m512i low2 = _mm512_and_si512(_mm512_srlv_epi16(qs_h, shift_halves(4 * j, 4 * j + 2)), _mm512_set1_epi8(3));
    const int b = 4 * h + 2 * j;
    const __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << b)), _mm256_set1_epi8((char)(1 << (b + 1))), 1);
    return _mm512_mask_add_epi8(low2, _mm512_test_epi8_mask(hmask, bit), low2, _mm512_set1_epi8(4));
}

/* Pairs of (c3 - 4) * a = maddubs(c3, a) - maddubs(4, a), |.| <= 2*4*127 (each maddubs <= 1778, no
 * saturation); dpwssd with sc in [-32, 31]: |lane| <= 8 * 2*1016*32 < 2^20. */
static inline __m512i q3k_pairs(__m512i c3, const uint8_t *a) {
    const __m512i av = load64(a);
    return _mm512_sub_epi16(_mm512_maddubs_epi16(c3, av), _mm512_maddubs_epi16(_mm512_set1_epi8(4), av));
}

static void dot_q3_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q3_K), *yb = y + i * sizeof(block_q8_K);
        const uint8_t *a = yb + Q8K_QS;
        const zmm4 scv = subblock_scales(q3k_scales16(xb));
        const __m512i hmask = load32_both(xb + Q3K_HM);
        const __m512i q0 = load32_both(xb + Q3K_QS), q1 = load32_both(xb + Q3K_QS + 32);
        const __m512i z = _mm512_setzero_si512();
        __m512i s01 = _mm512_dpwssd_epi32(z, q3k_pairs(q3k_code(q0, hmask, 0, 0), a), scv.r0);
        __m512i s23 = _mm512_dpwssd_epi32(z, q3k_pairs(q3k_code(q1, hmask, 1, 0), a + 128), scv.r2);
        s01 = _mm512_dpwssd_epi32(s01, q3k_pairs(q3k_code(q0, hmask, 0, 1), a + 64), scv.r1);
        s23 = _mm512_dpwssd_epi32(s23, q3k_pairs(q3k_code(q1, hmask, 1, 1), a + 192), scv.r3);
        const __m512i sumi = _mm512_add_epi32(s01, s23);
        const __m256i lanes = _mm256_add_epi32(_mm512_castsi512_si256(sumi), _mm512_extracti64x4_epi64(sumi, 1));
        const float d = load_f32(yb + Q8K_D) * load_f16(xb + Q3K_D);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), acc);
    }
    *s = hsum8_ggml(acc);
}

/* Q2_K: c in [0, 3], sc, m in [0, 15]. maddubs pair <= 2*3*127 = 762; dpwssd: |lane| <= 4*2*762*15;
 * isum <= 256*3*15*127 < 2^21 and |msum| <= 16*15*2032 < 2^19, both exact in f32. Register 2h + j:
 * c = (qs[32h + p] >> 4j or 4j+2) & 3. */
static void dot_q2_K_q8_K(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m512i m3 = _mm512_set1_epi8(3), sh01 = shift_halves(0, 2), sh23 = shift_halves(4, 6);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    __m128 acc = _mm_setzero_ps();   /* lane 0: S (scale part), lane 1: M (min part), lanes 2-3 stay 0 */
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q2_K), *yb = y + i * sizeof(block_q8_K);
        const __m128i packed = _mm_loadu_si128((const __m128i *)(xb + Q2K_SC));
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
        const __m256i msum8 = _mm256_madd_epi16(mins, load32(yb + Q8K_BSUMS));
        const __m512i q0 = load32_both(xb + Q2K_QS), q1 = load32_both(xb + Q2K_QS + 32);
        zmm4 c;
        c.r0 = _mm512_and_si512(_mm512_srlv_epi16(q0, sh01), m3);
        c.r1 = _mm512_and_si512(_mm512_srlv_epi16(q0, sh23), m3);
        c.r2 = _mm512_and_si512(_mm512_srlv_epi16(q1, sh01), m3);
        c.r3 = _mm512_and_si512(_mm512_srlv_epi16(q1, sh23), m3);
        const __m256i isum8 = scaled_lanes(c, subblock_scales(_mm256_cvtepu8_epi16(_mm_and_si128(packed, m4))), yb + Q8K_QS);
        /* [isum, msum] by exact integer reductions, then the two fmas of the repacked kernel */
        const __m256i both = _mm256_hadd_epi32(isum8, msum8);   /* i01 i23 m01 m23 | i45 i67 m45 m67 */
        __m128i t = _mm_add_epi32(_mm256_castsi256_si128(both), _mm256_extracti128_si256(both, 1));
        t = _mm_hadd_epi32(t, t);                               /* isum, msum, isum, msum */
        uint32_t d_dmin;
        memcpy(&d_dmin, xb + Q2K_D, sizeof d_dmin);             /* f16 d, dmin (adjacent) */
        const __m128 dxy = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)d_dmin)), _mm_set1_ps(load_f32(yb + Q8K_D)));
        acc = _mm_fmadd_ps(_mm_cvtepi32_ps(t), dxy, acc);
    }
    *s = _mm_cvtss_f32(acc) - _mm_cvtss_f32(_mm_movehdup_ps(acc));
}

/* ---- 4-column kernels (kern_vec_dot4_fn): one weight row against 4 activation rows ------------------
 * Weight blocks are decoded once per pass and used against the 4 activation rows; per column every
 * float operation is the one of the single kernel above, in the same order (pair accumulators,
 * reduction, single-block tail), so s[k] is bit-identical to the single kernel on column k. */

static inline __m512 q4_0_pair4_col(__m512i codes, const uint8_t *x0, const uint8_t *x1, const uint8_t *y0,
                                    __m512 acc) {
    const uint8_t *y1 = y0 + sizeof(block_q8_0);
    const __m512i a = load32x2(y0 + Q8_0_QS, y1 + Q8_0_QS);
    const __m512i cx = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes, a);
    const __m512i eight_a = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), a);
    const __m512 d = halves_ps(load_f16(x0 + Q4_0_D) * load_f16(y0 + Q8_0_D), load_f16(x1 + Q4_0_D) * load_f16(y1 + Q8_0_D));
    return _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(_mm512_sub_epi32(cx, eight_a)), acc);
}

static inline void q4_0_pair4(const uint8_t *x, const uint8_t *y, size_t ys, int64_t i, __m512 acc[4]) {
    const uint8_t *x0 = x + i * sizeof(block_q4_0), *x1 = x0 + sizeof(block_q4_0);
    const __m512i codes = q4_0_codes_x2(x0, x1);
    for (int k = 0; k < 4; k++)
        acc[k] = q4_0_pair4_col(codes, x0, x1, y + (size_t)k * ys + i * sizeof(block_q8_0), acc[k]);
}

static inline void q8_0_pair4(const uint8_t *x, const uint8_t *y, size_t ys, int64_t i, __m512 acc[4]) {
    const uint8_t *x0 = x + i * sizeof(block_q8_0), *x1 = x0 + sizeof(block_q8_0);
    const __m512i w = load32x2(x0 + Q8_0_QS, x1 + Q8_0_QS);
    const __m512i abs_w = _mm512_abs_epi8(w);
    const __mmask64 neg = _mm512_movepi8_mask(w);
    const float dx0 = load_f16(x0 + Q8_0_D), dx1 = load_f16(x1 + Q8_0_D);
    for (int k = 0; k < 4; k++) {
        const uint8_t *y0 = y + (size_t)k * ys + i * sizeof(block_q8_0), *y1 = y0 + sizeof(block_q8_0);
        const __m512i a = load32x2(y0 + Q8_0_QS, y1 + Q8_0_QS);
        const __m512i a_signed = _mm512_mask_sub_epi8(a, neg, _mm512_setzero_si512(), a);
        const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), abs_w, a_signed);
        const __m512 d = halves_ps(dx0 * load_f16(y0 + Q8_0_D), dx1 * load_f16(y1 + Q8_0_D));
        acc[k] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc[k]);
    }
}

/* Mirrors PAIR_DOT. */
#define PAIR_DOT4(name, pair4_fn, x_block_bytes, y_block_bytes, tail_fn)                             \
    static void name(int64_t n, float *s, const void *vx, const void *vy, size_t ys) {               \
        const uint8_t *x = vx, *y = vy;                                                             \
        const int64_t nb = n / 32;                                                                  \
        __m512 acc0[4], acc1[4];                                                                    \
        for (int k = 0; k < 4; k++) acc0[k] = acc1[k] = _mm512_setzero_ps();                        \
        int64_t i = 0;                                                                              \
        for (; i + 4 <= nb; i += 4) {                                                               \
            pair4_fn(x, y, ys, i, acc0);                                                            \
            pair4_fn(x, y, ys, i + 2, acc1);                                                        \
        }                                                                                           \
        if (i + 2 <= nb) { pair4_fn(x, y, ys, i, acc0); i += 2; }                                   \
        for (int k = 0; k < 4; k++) {                                                               \
            float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0[k], acc1[k]));                      \
            if (i < nb) sum += tail_fn(x + i * (x_block_bytes), y + (size_t)k * ys + i * (y_block_bytes)); \
            s[k] = sum;                                                                             \
        }                                                                                           \
    }
PAIR_DOT4(dot4_q4_0_q8_0, q4_0_pair4, sizeof(block_q4_0), sizeof(block_q8_0), q4_0_single)
PAIR_DOT4(dot4_q8_0_q8_0, q8_0_pair4, sizeof(block_q8_0), sizeof(block_q8_0), q8_0_single)

/* Q4_K, 4 columns (bounds as dot_q4_K_q8_K): codes and scale vectors decoded once per super-block. */
static void dot4_q4_K_q8_K(int64_t n, float *s, const void *vx, const void *vy, size_t ys) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m512i nib_shift = _mm512_set_epi64(0x0004000400040004LL, 0x0004000400040004LL, 0x0004000400040004LL,
                                               0x0004000400040004LL, 0, 0, 0, 0);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i pick_lo = _mm512_set_epi64(0x0001000100010001LL, 0x0001000100010001LL, 0x0001000100010001LL,
                                             0x0001000100010001LL, 0, 0, 0, 0);
    const __m512i two = _mm512_set1_epi16(2);
    __m512 acc[4];
    float min_sum[4];
    for (int k = 0; k < 4; k++) { acc[k] = _mm512_setzero_ps(); min_sum[k] = 0.0f; }
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q4_K), *yb = y + i * sizeof(block_q8_K);
        uint8_t sm[16];
        unpack_k4_scales(xb + Q4K_SC, sm);
        const __m128i sm16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sm));
        const __m512i sc_all = _mm512_broadcast_i32x4(sm16);
        const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
        __m512i sumi[4];
        for (int k = 0; k < 4; k++) sumi[k] = _mm512_setzero_si512();
        __m512i pick = pick_lo;
        for (int g = 0; g < 4; g++) {
            const __m512i q = _mm512_broadcast_i64x4(load32(xb + Q4K_QS + 32 * g));
            const __m512i c = _mm512_and_si512(_mm512_srlv_epi16(q, nib_shift), m4);
            const __m512i sc = _mm512_permutexvar_epi16(pick, sc_all);
            pick = _mm512_add_epi16(pick, two);
            for (int k = 0; k < 4; k++) {
                const __m512i p = _mm512_maddubs_epi16(c, load64(yb + (size_t)k * ys + Q8K_QS + 64 * g));
                sumi[k] = _mm512_dpwssd_epi32(sumi[k], p, sc);
            }
        }
        const float dx = load_f16(xb + Q4K_D), dmin = load_f16(xb + Q4K_DMIN);
        for (int k = 0; k < 4; k++) {
            const uint8_t *yk = yb + (size_t)k * ys;
            const float dy = load_f32(yk + Q8K_D);
            const __m128i b_lo = _mm_loadu_si128((const __m128i *)(yk + Q8K_BSUMS));
            const __m128i b_hi = _mm_loadu_si128((const __m128i *)(yk + Q8K_BSUMS + 16));
            __m128i mv = _mm_madd_epi16(_mm_hadd_epi16(b_lo, b_hi), m16);
            mv = _mm_add_epi32(mv, _mm_shuffle_epi32(mv, _MM_SHUFFLE(1, 0, 3, 2)));
            mv = _mm_add_epi32(mv, _mm_shuffle_epi32(mv, _MM_SHUFFLE(2, 3, 0, 1)));
            const int msum = _mm_cvtsi128_si32(mv);
            acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(dx * dy), _mm512_cvtepi32_ps(sumi[k]), acc[k]);
            min_sum[k] += dmin * dy * (float)msum;
        }
    }
    for (int k = 0; k < 4; k++) s[k] = _mm512_reduce_add_ps(acc[k]) - min_sum[k];
}

/* Q6_K, 4 columns: codes and scale vectors decoded once per super-block; per column the integer lanes
 * and every float operation are those of dot_q6_K_q8_K (ggml's order), so results are bit-identical. */
static void dot4_q6_K_q8_K(int64_t n, float *s, const void *vx, const void *vy, size_t ys) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_q6_K), *yb = y + i * sizeof(block_q8_K);
        const __m256i sc16 = q6k_scales16(xb);
        const zmm4 c = q6k_codes(xb), scv = subblock_scales(sc16);
        const float dx = load_f16(xb + Q6K_D);
#define COLUMN(acc, k)                                                                              \
        acc = _mm256_fmadd_ps(_mm256_set1_ps(load_f32(yb + (k) * ys + Q8K_D) * dx),                 \
                              _mm256_cvtepi32_ps(q6k_lanes(c, scv, sc16, yb + (k) * ys)), acc)
        COLUMN(acc0, 0);
        COLUMN(acc1, 1);
        COLUMN(acc2, 2);
        COLUMN(acc3, 3);
#undef COLUMN
    }
    s[0] = hsum8_ggml(acc0);
    s[1] = hsum8_ggml(acc1);
    s[2] = hsum8_ggml(acc2);
    s[3] = hsum8_ggml(acc3);
}

/* ---- table: types not listed fall back to the AVX2 family ------------------------------------- */

const kern_dot_entry kern_dots_avx512[] = {
    { LLMPI_TYPE_F32, dot_f32 },
    { LLMPI_TYPE_F16, dot_f16 },
    { LLMPI_TYPE_Q4_0, dot_q4_0_q8_0 },
    { LLMPI_TYPE_Q8_0, dot_q8_0_q8_0 },
    { LLMPI_TYPE_Q4_K, dot_q4_K_q8_K },
    { LLMPI_TYPE_TQ2_0, kern_dot_tq2_0_q8_K_avx512 },   /* kernels/ternary_avx512.c */
    { LLMPI_TYPE_Q6_K, dot_q6_K_q8_K },     /* llama.cpp's float order (see above) */
    { LLMPI_TYPE_Q3_K, dot_q3_K_q8_K },
    { LLMPI_TYPE_Q2_K, dot_q2_K_q8_K },
    { LLMPI_TYPE_TQ1_0, kern_dot_tq1_0_q8_K_avx512 },   /* kernels/ternary_avx512.c */
    { LLMPI_TYPE_I2_S, kern_dot_i2_s_i8_s_avx512 },     /* kernels/ternary_avx512.c */
    { LLMPI_TYPE_COUNT, NULL },
};

/* 4-column kernels for the types this family serves (the others use the AVX2 family's, if any). */
const kern_dot4_entry kern_dots4_avx512[] = {
    { LLMPI_TYPE_Q4_0, dot4_q4_0_q8_0 },
    { LLMPI_TYPE_Q8_0, dot4_q8_0_q8_0 },
    { LLMPI_TYPE_Q4_K, dot4_q4_K_q8_K },
    { LLMPI_TYPE_Q6_K, dot4_q6_K_q8_K },
    { LLMPI_TYPE_COUNT, NULL },
};
