/* AVX2 LUT tile kernel for TQ1_0 / TQ2_0 / I2_S (TL1 layout and table layout: kernels/ternary.h).
 *
 * Per 32 index bytes (4 pairs x 16 rows, two nibbles per byte) the low nibbles select pairs p0/p1
 * (one per 128-bit lane, since vpshufb looks up a 16-byte table per lane) and the high nibbles
 * p2/p3. Two vpshufb give the low and high bytes of the 32 int16 entries; unpacklo/hi_epi8 of
 * (low, high) rebuild the exact int16 values of rows 0-7 / 8-15. Entries |T| <= 512; an int16 lane
 * takes 32 entries per 128-element chunk (<= 16384) and is flushed to int32 after every chunk.
 * Float ops per row are the reference's (ternary.h), so results are bit-identical to it. */
#include "ternary.h"
#include "blocks.h"
#include "ref.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static inline __m256i ld32(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* Add int16 rows (lanes: [rows 0-7 of slot a | rows 0-7 of slot b]) into 8 int32 row sums. */
static inline __m256i widen_rows(__m256i acc16) {
    return _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(acc16)),
                            _mm256_cvtepi16_epi32(_mm256_extracti128_si256(acc16, 1)));
}

/* Integer sums (pairs (c0-1)a0 + (c1-1)a1) of one 128-element chunk for 16 rows. */
static inline void chunk_sums(const uint8_t *idx, const uint8_t *tab, __m256i *s_lo, __m256i *s_hi) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i a_lo = _mm256_setzero_si256(), a_hi = _mm256_setzero_si256();
    for (int o = 0; o < 8; o++) {
        const uint8_t *io = idx + 64 * o, *to = tab + 256 * o;
        for (int h = 0; h < 2; h++) {   /* slots 2h, 2h+1 */
            const __m256i w = ld32(io + 32 * h);
            const __m256i i0 = _mm256_and_si256(w, m4);
            const __m256i i1 = _mm256_and_si256(_mm256_srli_epi16(w, 4), m4);
            const __m256i l0 = _mm256_shuffle_epi8(ld32(to + 32 * h), i0);
            const __m256i h0 = _mm256_shuffle_epi8(ld32(to + 64 + 32 * h), i0);
            const __m256i l1 = _mm256_shuffle_epi8(ld32(to + 128 + 32 * h), i1);
            const __m256i h1 = _mm256_shuffle_epi8(ld32(to + 192 + 32 * h), i1);
            a_lo = _mm256_add_epi16(a_lo, _mm256_add_epi16(_mm256_unpacklo_epi8(l0, h0), _mm256_unpacklo_epi8(l1, h1)));
            a_hi = _mm256_add_epi16(a_hi, _mm256_add_epi16(_mm256_unpackhi_epi8(l0, h0), _mm256_unpackhi_epi8(l1, h1)));
        }
    }
    *s_lo = widen_rows(a_lo);
    *s_hi = widen_rows(a_hi);
}

void kern_tl1_tile_avx2(const kern_tl1_matrix *w, int64_t tile, const void *act_row,
                        const uint8_t *tables, float out[KERN_TL1_ROWS]) {
    const uint8_t *tp = w->data + (size_t)tile * w->tile_bytes;
    const int64_t n_chunks = w->ne0 / KERN_TL1_CHUNK;
    const size_t tstride = KERN_TL1_CHUNK * KERN_TL1_TABLE_BYTES_PER_ELEM;
    if (w->type == LLMPI_TYPE_I2_S) {
        __m256i t_lo = _mm256_setzero_si256(), t_hi = _mm256_setzero_si256();   /* |S - A| <= 256 ne0 < 2^31 */
        for (int64_t k = 0; k < n_chunks; k++) {
            __m256i s_lo, s_hi;
            chunk_sums(tp + k * KERN_TL1_CHUNK_BYTES, tables + k * tstride, &s_lo, &s_hi);
            t_lo = _mm256_add_epi32(t_lo, s_lo);
            t_hi = _mm256_add_epi32(t_hi, s_hi);
        }
        float act_scale;
        memcpy(&act_scale, (const uint8_t *)act_row + I8S_SCALE_OFFSET(w->ne0), sizeof act_scale);
        const __m256 sc = _mm256_set1_ps(act_scale);
        _mm256_storeu_ps(out, _mm256_div_ps(_mm256_cvtepi32_ps(t_lo), sc));
        _mm256_storeu_ps(out + 8, _mm256_div_ps(_mm256_cvtepi32_ps(t_hi), sc));
        return;
    }
    const float *d = (const float *)(tp + (size_t)n_chunks * KERN_TL1_CHUNK_BYTES);
    __m256 f_lo = _mm256_setzero_ps(), f_hi = _mm256_setzero_ps();
    for (int64_t b = 0; b < n_chunks / 2; b++) {
        __m256i s_lo, s_hi, u_lo, u_hi;
        chunk_sums(tp + 2 * b * KERN_TL1_CHUNK_BYTES, tables + 2 * b * tstride, &s_lo, &s_hi);
        chunk_sums(tp + (2 * b + 1) * KERN_TL1_CHUNK_BYTES, tables + (2 * b + 1) * tstride, &u_lo, &u_hi);
        const __m256 dy = _mm256_set1_ps(kern_tl1_q8k_d(act_row, b));
        /* sumf += (float)sumi * (d_w * d_y), lane-wise exactly as the scalar reference */
        const __m256 p_lo = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s_lo, u_lo)),
                                          _mm256_mul_ps(_mm256_loadu_ps(d + 16 * b), dy));
        const __m256 p_hi = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s_hi, u_hi)),
                                          _mm256_mul_ps(_mm256_loadu_ps(d + 16 * b + 8), dy));
        f_lo = _mm256_add_ps(f_lo, p_lo);
        f_hi = _mm256_add_ps(f_hi, p_hi);
    }
    _mm256_storeu_ps(out, f_lo);
    _mm256_storeu_ps(out + 8, f_hi);
}

/* Activation tables (byte-identical to kern_tl1_build_table): per pair (a0, a1) the 16 int16 entries
 * (c0-1) a0 + (c1-1) a1 = a0 * [-1 0 1 2 | x4] + a1 * [-1 x4, 0 x4, 1 x4, 2 x4] (vpmullw, exact:
 * |a| <= 128), then the low bytes and high bytes gathered into two 16-byte halves. */
void kern_tl1_build_table_avx2(uint32_t type, int64_t ne0, const void *act_row, uint8_t *tables) {
    const __m256i cu = _mm256_setr_epi16(-1, 0, 1, 2, -1, 0, 1, 2, -1, 0, 1, 2, -1, 0, 1, 2);
    const __m256i cv = _mm256_setr_epi16(-1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2);
    /* per 128-bit lane: low bytes to 0-7, high bytes to 8-15; then qwords (0, 2 | 1, 3) */
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                           0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const bool tq = type != LLMPI_TYPE_I2_S;
    for (int64_t j = 0; j < ne0 / 2; j++) {
        const int8_t *a = tq ? (const int8_t *)act_row + (size_t)(2 * j / QK_K) * sizeof(block_q8_K) +
                                   offsetof(block_q8_K, qs) + (2 * j) % QK_K
                             : (const int8_t *)act_row + 2 * j;
        const __m256i t = _mm256_add_epi16(_mm256_mullo_epi16(_mm256_set1_epi16(a[0]), cu),
                                           _mm256_mullo_epi16(_mm256_set1_epi16(a[1]), cv));
        const __m256i b = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(t, split), _MM_SHUFFLE(3, 1, 2, 0));
        const int q = (int)(j % 64), o = q / 8, p = q % 8;
        uint8_t *lo = tables + (j / 64) * (KERN_TL1_CHUNK * KERN_TL1_TABLE_BYTES_PER_ELEM) + o * 256 +
                      ((p >> 1) & 1) * 128 + ((p & 1) + 2 * (p >> 2)) * 16;
        _mm_storeu_si128((__m128i *)lo, _mm256_castsi256_si128(b));
        _mm_storeu_si128((__m128i *)(lo + 64), _mm256_extracti128_si256(b, 1));
    }
}
