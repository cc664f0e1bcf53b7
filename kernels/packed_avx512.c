/* AVX-512 VNNI kernel for KERN_PACKED_Q4_0_16 (layout and float order in kernels/packed.h): 16 rows in
 * the 16 lanes; per block, 8 dpbusd of the decoded codes with 4 broadcast activation bytes each, then
 * one convert, one scale multiply and one FMA per token -- the operations of kern_packed_q4_0_ref in
 * the same order (integer sums are exact: |isum| <= 32 * 15 * 128 + 8 * 32 * 127 < 2^17). */
#include "packed.h"
#include "blocks.h"

#include <immintrin.h>
#include <string.h>

static inline int32_t load_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* T tokens at once: T accumulators stay in registers (T is a constant in each instance). */
static inline __attribute__((always_inline)) void tile(const int T, const uint8_t *grp, int64_t nb,
                                                      const uint8_t *const *act_rows, size_t abb, const float *da,
                                                      const int32_t *sa8, float tensor_scale, float *y, int64_t ldy) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[KERN_PACK_TILE];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * (KERN_PACK_ROWS * sizeof(block_q4_0));
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        __m512i lo[4], hi[4];
        for (int q = 0; q < 4; q++) {
            const __m512i raw = _mm512_loadu_si512((const void *)(blk + 32 + 64 * q));
            lo[q] = _mm512_and_si512(raw, m4);
            hi[q] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
        }
        for (int t = 0; t < T; t++) {
            const uint8_t *a = act_rows[t] + (size_t)b * abb + offsetof(block_q8_0, qs);
            __m512i is = _mm512_set1_epi32(-sa8[(size_t)t * (size_t)nb + (size_t)b]);
            for (int q = 0; q < 4; q++) is = _mm512_dpbusd_epi32(is, lo[q], _mm512_set1_epi32(load_i32(a + 4 * q)));
            for (int q = 0; q < 4; q++) is = _mm512_dpbusd_epi32(is, hi[q], _mm512_set1_epi32(load_i32(a + 16 + 4 * q)));
            const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(da[(size_t)t * (size_t)nb + (size_t)b]));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), scale, acc[t]);
        }
    }
    const __m512 ts = _mm512_set1_ps(tensor_scale);
    for (int t = 0; t < T; t++) _mm512_storeu_ps(y + (size_t)t * (size_t)ldy, _mm512_mul_ps(acc[t], ts));
}

void kern_packed_q4_0_avx512(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t abb,
                             const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy) {
    switch (n_tok) {
#define CASE(T) case T: tile(T, grp, nb, act_rows, abb, da, sa8, tensor_scale, y, ldy); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
    default: kern_packed_q4_0_ref(grp, nb, act_rows, abb, da, sa8, n_tok, tensor_scale, y, ldy); break;
    }
}

/* KERN_PACKED_Q8_0_16: activations arrive as codes + 128 (unsigned); per block the row sums of the
 * weights (dpbusd with ones) are computed once for all T tokens. */
static inline __attribute__((always_inline)) void tile8(const int T, const uint8_t *grp, int64_t nb,
                                                       const uint8_t *const *act_rows, size_t abb, const float *da,
                                                       float tensor_scale, float *y, int64_t ldy) {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512 acc[KERN_PACK_TILE];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * (KERN_PACK_ROWS * sizeof(block_q8_0));
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        __m512i wq[8];
        __m512i sw = _mm512_setzero_si512();
        for (int q = 0; q < 8; q++) {
            wq[q] = _mm512_loadu_si512((const void *)(blk + 32 + 64 * q));
            sw = _mm512_dpbusd_epi32(sw, ones, wq[q]);
        }
        const __m512i bias = _mm512_slli_epi32(sw, 7);   /* 128 * sum w per row */
        for (int t = 0; t < T; t++) {
            const uint8_t *a = act_rows[t] + (size_t)b * abb;
            __m512i is = _mm512_setzero_si512();
            for (int q = 0; q < 8; q++) is = _mm512_dpbusd_epi32(is, _mm512_set1_epi32(load_i32(a + 4 * q)), wq[q]);
            is = _mm512_sub_epi32(is, bias);
            const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(da[(size_t)t * (size_t)nb + (size_t)b]));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), scale, acc[t]);
        }
    }
    const __m512 ts = _mm512_set1_ps(tensor_scale);
    for (int t = 0; t < T; t++) _mm512_storeu_ps(y + (size_t)t * (size_t)ldy, _mm512_mul_ps(acc[t], ts));
}

void kern_packed_q8_0_avx512(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t abb,
                             const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy) {
    switch (n_tok) {
#define CASE(T) case T: tile8(T, grp, nb, act_rows, abb, da, tensor_scale, y, ldy); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
    default: kern_packed_q8_0_ref(grp, nb, act_rows, abb, da, sa8, n_tok, tensor_scale, y, ldy); break;
    }
}
