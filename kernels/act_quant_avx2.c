/* AVX2 activation quantizers for Q8_0, Q8_1 and Q8_K, byte-identical to quant/act_quant.c's
 * quantize_row_q8_0_act / _q8_1_act / _q8_K_act (the from_float of the type table), used by
 * kern_matmul's conversion step through kern_act_quant() (kernels/dispatch.c).
 *
 * Why identical: the scale computations are the same scalar expressions; x * id is the same IEEE
 * multiply lane-wise; max is order-independent (NaN lanes are skipped like the scalar `ax > amax`,
 * because _mm256_max_ps returns its second operand when either is NaN); and vcvtps2dq under the
 * default MXCSR rounding (to nearest, ties to even) equals quant_nearest_int (the 1.5*2^23 trick,
 * also ties to even) for |v| <= 2^22 -- here |x * id| <= 127 * (1 + 2^-23) for every finite v.
 * The only other inputs, NaN and +-Inf (from NaN/Inf activations or an infinite scale), make
 * vcvtps2dq return 0x80000000 where the trick gives a value whose low byte is 0: mapped to 0. */
#include "cpu_features.h"
#include "blocks.h"
#include "ref.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Round 8 lanes to int32 like quant_nearest_int, NaN/Inf -> 0 (see above). */
static inline __m256i round_codes(__m256 v) {
    const __m256i q = _mm256_cvtps_epi32(v);
    return _mm256_andnot_si256(_mm256_cmpeq_epi32(q, _mm256_set1_epi32(INT32_MIN)), q);
}

/* 4 x 8 int32 codes in [-127, 127] -> 32 int8 in element order. */
static inline __m256i pack_codes(__m256i q0, __m256i q1, __m256i q2, __m256i q3) {
    const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
    /* packs work per 128-bit lane: dwords come out as 0 2 4 6 1 3 5 7 of the element order */
    return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

enum { Q8_0_D = offsetof(block_q8_0, d), Q8_0_QS = offsetof(block_q8_0, qs),
       Q8_1_D = offsetof(block_q8_1, d), Q8_1_S = offsetof(block_q8_1, s), Q8_1_QS = offsetof(block_q8_1, qs),
       Q8K_D = offsetof(block_q8_K, d), Q8K_QS = offsetof(block_q8_K, qs), Q8K_BSUMS = offsetof(block_q8_K, bsums) };

/* Q8_0, x86 rule: d = amax / 127, id = 127 / amax (0 for an all-zero block), codes ties-to-even. */
void kern_quantize_row_q8_0_avx2(const float *restrict x, void *restrict vy, int64_t n) {
    uint8_t *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0, y += sizeof(block_q8_0)) {
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m = _mm256_max_ps(abs_ps(v[k]), m);   /* NaN in the first operand -> keeps m */
        }
        const float amax = hmax_ps(m);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const __m256 idv = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++) q[k] = round_codes(_mm256_mul_ps(v[k], idv));
        _mm256_storeu_si256((__m256i *)(y + Q8_0_QS), pack_codes(q[0], q[1], q[2], q[3]));
        const uint16_t h = quant_f32_to_f16(d);
        memcpy(y + Q8_0_D, &h, sizeof h);
    }
}

/* Q8_1, x86 rule (ggml's AVX2 quantize_row_q8_1): the Q8_0 codes and d, plus s = f16(d * sum of the
 * codes) with the f32 d. The scalar reference sums quant_nearest_int's full int, which for a lane that
 * is NaN or beyond 2^22 (only NaN/Inf inputs or an infinite 127 / amax give one) is not the stored
 * code; such a block goes through the reference itself, so s stays byte-identical there too. */
void kern_quantize_row_q8_1_avx2(const float *restrict x, void *restrict vy, int64_t n) {
    uint8_t *y = vy;
    const __m256 limit = _mm256_set1_ps(4194304.0f);   /* 2^22 */
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1, y += sizeof(block_q8_1)) {
        __m256 v[4], m = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            m = _mm256_max_ps(abs_ps(v[k]), m);   /* NaN in the first operand -> keeps m */
        }
        const float amax = hmax_ps(m);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        const __m256 idv = _mm256_set1_ps(id);
        __m256i q[4];
        int in_range = 0xFF;
        for (int k = 0; k < 4; k++) {
            const __m256 scaled = _mm256_mul_ps(v[k], idv);
            in_range &= _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(scaled), limit, _CMP_LE_OQ));   /* NaN: 0 */
            q[k] = _mm256_cvtps_epi32(scaled);
        }
        if (in_range != 0xFF) {
            block_q8_1 ref;   /* aligned: the reference writes struct members, y may be at any address */
            quantize_row_q8_1_act(x, &ref, QK8_1);
            memcpy(y, &ref, sizeof ref);
            continue;
        }
        _mm256_storeu_si256((__m256i *)(y + Q8_1_QS), pack_codes(q[0], q[1], q[2], q[3]));
        const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
        const int sum = _mm_cvtsi128_si32(s4);   /* |sum| <= 32 * 127 */
        const uint16_t hd = quant_f32_to_f16(d), hs = quant_f32_to_f16(d * (float)sum);
        memcpy(y + Q8_1_D, &hd, sizeof hd);
        memcpy(y + Q8_1_S, &hs, sizeof hs);
    }
}

/* Q8_K: iscale = -127 / (signed element of largest |x|, first one wins), codes clamped to <= 127,
 * bsums = sums of 16 codes, d = 1 / iscale; an all-zero (or all-NaN) block is all zeros. */
void kern_quantize_row_q8_K_avx2(const float *restrict x, void *restrict vy, int64_t n) {
    uint8_t *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K, y += sizeof(block_q8_K)) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < QK_K / 8; k++) m = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + 8 * k)), m);
        const float amax = hmax_ps(m);
        if (amax == 0.0f) {
            memset(y, 0, sizeof(block_q8_K));   /* d = 0.0f, qs = 0, bsums = 0 */
            continue;
        }
        /* first element with |x| == amax (it exists: amax is one of the |x|) */
        float max = 0.0f;
        const __m256 amax_v = _mm256_set1_ps(amax);
        for (int k = 0; k < QK_K / 8; k++) {
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + 8 * k)), amax_v, _CMP_EQ_OQ));
            if (hit) { max = x[8 * k + __builtin_ctz((unsigned)hit)]; break; }
        }
        const float iscale = -127.0f / max;
        const __m256 isv = _mm256_set1_ps(iscale);
        const __m256i cap = _mm256_set1_epi32(127);
        int16_t bsums[QK_K / 16];
        for (int g = 0; g < QK_K / 32; g++) {   /* 32 codes = 2 bsums groups */
            __m256i q[4];
            for (int k = 0; k < 4; k++)
                q[k] = _mm256_min_epi32(round_codes(_mm256_mul_ps(isv, _mm256_loadu_ps(x + 32 * g + 8 * k))), cap);
            _mm256_storeu_si256((__m256i *)(y + Q8K_QS + 32 * g), pack_codes(q[0], q[1], q[2], q[3]));
            for (int h = 0; h < 2; h++) {
                const __m256i s8 = _mm256_add_epi32(q[2 * h], q[2 * h + 1]);
                __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
                bsums[2 * g + h] = (int16_t)_mm_cvtsi128_si32(s4);   /* |sum| <= 16 * 127 */
            }
        }
        memcpy(y + Q8K_BSUMS, bsums, sizeof bsums);
        const float d = 1.0f / iscale;
        memcpy(y + Q8K_D, &d, sizeof d);
    }
}
