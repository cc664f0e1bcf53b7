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
                             const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy,
                             bool per_part) {
    (void)per_part;
    switch (n_tok) {
#define CASE(T) case T: tile(T, grp, nb, act_rows, abb, da, sa8, tensor_scale, y, ldy); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
    default: kern_packed_q4_0_ref(grp, nb, act_rows, abb, da, sa8, n_tok, tensor_scale, y, ldy, false); break;
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
                             const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy,
                             bool per_part) {
    (void)per_part;
    switch (n_tok) {
#define CASE(T) case T: tile8(T, grp, nb, act_rows, abb, da, tensor_scale, y, ldy); break;
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
    default: kern_packed_q8_0_ref(grp, nb, act_rows, abb, da, sa8, n_tok, tensor_scale, y, ldy, false); break;
    }
}

/* KERN_PACKED_Q4_K_16: per super-block the 6-bit scales and mins of the 16 rows are decoded with a few
 * byte operations on the 12 scale planes (plane k = byte k of every row's scales[12]):
 *   sc 0..3 = planes 0..3 & 63            m 0..3 = planes 4..7 & 63
 *   sc 4..7 = (planes 8..11 & 15) | ((planes 0..3 >> 6) << 4)
 *   m  4..7 = (planes 8..11 >> 4) | ((planes 4..7 >> 6) << 4)
 * then widened to one 32-bit lane per row. Sub-block sums are exact dpbusd chains (|sum| <= 32*15*128),
 * scaled with vpmulld; the mins term is one dpwssd of (m_2j, m_2j+1) int16 pairs with the token's
 * (bsum_2j, bsum_2j+1) pair per 64 weights. P (per_part) flushes the integer sums into the float chains
 * after every 64 weights instead of once per super-block. T <= 4 tokens per pass (register budget). */
#define KQ_TILE 4

/* Shared by the K-quant tiles below (same float steps for Q4_K and Q2_K, packed.h). */
/* Per token of the tile: its Q8_K block b, d * da and dmin * da for the 16 rows, zeroed integer sums. */
static inline __attribute__((always_inline)) void kq_block_start(const int T, const uint8_t *const *act_rows,
                                                                int64_t b, size_t abb, __m512 dw, __m512 dmw,
                                                                const uint8_t **a, __m512 *d, __m512 *dmin,
                                                                __m512i *isum, __m512i *imin) {
    for (int t = 0; t < T; t++) {
        a[t] = act_rows[t] + (size_t)b * abb;
        float ad;
        memcpy(&ad, a[t] + offsetof(block_q8_K, d), sizeof ad);
        d[t] = _mm512_mul_ps(dw, _mm512_set1_ps(ad));
        dmin[t] = _mm512_mul_ps(dmw, _mm512_set1_ps(ad));
        isum[t] = imin[t] = _mm512_setzero_si512();
    }
}
/* The two float chains: acc += isum * d, accm += imin * dmin; the integer sums restart. */
static inline __attribute__((always_inline)) void kq_flush(const int T, __m512 *acc, __m512 *accm, __m512i *isum,
                                                          __m512i *imin, const __m512 *d, const __m512 *dmin) {
    for (int t = 0; t < T; t++) {
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), d[t], acc[t]);
        accm[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(imin[t]), dmin[t], accm[t]);
        isum[t] = imin[t] = _mm512_setzero_si512();
    }
}
/* Mins of two sub-blocks (16 row bytes each) as one (ma, mb) int16 pair per row lane, for dpwssd. */
static inline __m512i kq_min_pairs(__m128i ma, __m128i mb) {
    return _mm512_cvtepu8_epi16(_mm256_set_m128i(_mm_unpackhi_epi8(ma, mb), _mm_unpacklo_epi8(ma, mb)));
}
/* y[t] = (acc - accm) * tensor_scale for the 16 rows. */
static inline __attribute__((always_inline)) void kq_store(const int T, const __m512 *acc, const __m512 *accm,
                                                          float tensor_scale, float *y, int64_t ldy) {
    const __m512 ts = _mm512_set1_ps(tensor_scale);
    for (int t = 0; t < T; t++)
        _mm512_storeu_ps(y + (size_t)t * (size_t)ldy, _mm512_mul_ps(_mm512_sub_ps(acc[t], accm[t]), ts));
}
static inline __attribute__((always_inline)) void tile_q4_K(const int T, const int P, const uint8_t *grp, int64_t nb,
                                                           const uint8_t *const *act_rows, size_t abb,
                                                           float tensor_scale, float *y, int64_t ldy) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m63 = _mm512_set1_epi8(63), m30 = _mm512_set1_epi8(0x30);
    __m512 acc[KQ_TILE], accm[KQ_TILE];
    for (int t = 0; t < T; t++) acc[t] = accm[t] = _mm512_setzero_ps();
    _Alignas(64) uint8_t dec[4][64];   /* sc 0..3, sc 4..7, m 0..3, m 4..7: 16 bytes (rows) per sub-block */
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * (KERN_PACK_ROWS * sizeof(block_q4_K));
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        const __m512 dmw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32)));
        const __m512i p0 = _mm512_loadu_si512((const void *)(blk + 64));
        const __m512i p1 = _mm512_loadu_si512((const void *)(blk + 128));
        const __m512i p2 = _mm512_loadu_si512((const void *)(blk + 192));
        _mm512_store_si512((void *)dec[0], _mm512_and_si512(p0, m63));
        _mm512_store_si512((void *)dec[1], _mm512_or_si512(_mm512_and_si512(p2, m4),
                                                           _mm512_and_si512(_mm512_srli_epi16(p0, 2), m30)));
        _mm512_store_si512((void *)dec[2], _mm512_and_si512(p1, m63));
        _mm512_store_si512((void *)dec[3], _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(p2, 4), m4),
                                                           _mm512_and_si512(_mm512_srli_epi16(p1, 2), m30)));
        const uint8_t *a[KQ_TILE];
        __m512 d[KQ_TILE], dmin[KQ_TILE];
        __m512i isum[KQ_TILE], imin[KQ_TILE];
        kq_block_start(T, act_rows, b, abb, dw, dmw, a, d, dmin, isum, imin);
        for (int j = 0; j < 4; j++) {   /* sub-blocks 2j (low nibbles) and 2j + 1 (high nibbles) */
            const __m128i ma = _mm_load_si128((const __m128i *)(dec[2 + j / 2] + 32 * (j % 2)));
            const __m128i mb = _mm_load_si128((const __m128i *)(dec[2 + j / 2] + 32 * (j % 2) + 16));
            const __m512i pairs = kq_min_pairs(ma, mb);
            for (int t = 0; t < T; t++) {
                int16_t bs[4];
                memcpy(bs, a[t] + offsetof(block_q8_K, bsums) + 8 * j, sizeof bs);
                const uint32_t pair = (uint16_t)(bs[0] + bs[1]) | (uint32_t)(uint16_t)(bs[2] + bs[3]) << 16;
                imin[t] = _mm512_dpwssd_epi32(imin[t], pairs, _mm512_set1_epi32((int32_t)pair));
            }
            __m512i sl[KQ_TILE], sh[KQ_TILE];
            for (int t = 0; t < T; t++) sl[t] = sh[t] = _mm512_setzero_si512();
            for (int q = 0; q < 8; q++) {
                const __m512i raw = _mm512_loadu_si512((const void *)(blk + 256 + 64 * (8 * j + q)));
                const __m512i lo = _mm512_and_si512(raw, m4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
                for (int t = 0; t < T; t++) {
                    const uint8_t *qs = a[t] + offsetof(block_q8_K, qs) + 64 * j + 4 * q;
                    sl[t] = _mm512_dpbusd_epi32(sl[t], lo, _mm512_set1_epi32(load_i32(qs)));
                    sh[t] = _mm512_dpbusd_epi32(sh[t], hi, _mm512_set1_epi32(load_i32(qs + 32)));
                }
            }
            const __m512i sc_lo = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(dec[j / 2] + 32 * (j % 2))));
            const __m512i sc_hi = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(dec[j / 2] + 32 * (j % 2) + 16)));
            for (int t = 0; t < T; t++)
                isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(sl[t], sc_lo),
                                                                      _mm512_mullo_epi32(sh[t], sc_hi)));
            if (P || j == 3) kq_flush(T, acc, accm, isum, imin, d, dmin);
        }
    }
    kq_store(T, acc, accm, tensor_scale, y, ldy);
}

/* KERN_PACKED_Q2_K_16, the float order of kern_packed_q2_K_ref: the 2-bit codes times their sub-block
 * scale fit in a byte (<= 3 * 15), so each decoded chunk is scaled once with vpmullw (the bytes of a
 * 16-bit lane never carry: c1 * 256 * sc + c0 * sc < 2^16) and one dpbusd chain per token gives isum;
 * mins: 4 dpwssd per 128 weights of (m_2p, m_2p+1) pairs with (bsums[2p], bsums[2p+1]). */
static inline __attribute__((always_inline)) void tile_q2_K(const int T, const int P, const uint8_t *grp, int64_t nb,
                                                           const uint8_t *const *act_rows, size_t abb,
                                                           float tensor_scale, float *y, int64_t ldy) {
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    __m512 acc[KQ_TILE], accm[KQ_TILE];
    for (int t = 0; t < T; t++) acc[t] = accm[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = grp + (size_t)b * (KERN_PACK_ROWS * sizeof(block_q2_K));
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        const __m512 dmw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32)));
        const uint8_t *a[KQ_TILE];
        __m512 d[KQ_TILE], dmin[KQ_TILE];
        __m512i isum[KQ_TILE], imin[KQ_TILE];
        kq_block_start(T, act_rows, b, abb, dw, dmw, a, d, dmin, isum, imin);
        for (int h = 0; h < 2; h++) {   /* 128 weights: sub-blocks 8h..8h+7 */
            for (int p = 4 * h; p < 4 * h + 4; p++) {   /* mins of sub-blocks 2p, 2p+1 as int16 pairs per row */
                const __m128i ma = _mm_and_si128(_mm_srli_epi16(_mm_loadu_si128((const __m128i *)(blk + 64 + 32 * p)), 4), m4);
                const __m128i mb = _mm_and_si128(_mm_srli_epi16(_mm_loadu_si128((const __m128i *)(blk + 80 + 32 * p)), 4), m4);
                const __m512i pairs = kq_min_pairs(ma, mb);
                for (int t = 0; t < T; t++) {
                    int32_t bs2;
                    memcpy(&bs2, a[t] + offsetof(block_q8_K, bsums) + 4 * p, sizeof bs2);
                    imin[t] = _mm512_dpwssd_epi32(imin[t], pairs, _mm512_set1_epi32(bs2));
                }
            }
            for (int k = 0; k < 4; k++)
                for (int part = 0; part < 2; part++) {
                    const int sb = 8 * h + 2 * k + part;
                    const __m512i sc32 = _mm512_cvtepu8_epi32(
                        _mm_and_si128(_mm_loadu_si128((const __m128i *)(blk + 64 + 16 * sb)), m4));
                    const __m512i sc16 = _mm512_or_si512(sc32, _mm512_slli_epi32(sc32, 16));   /* sc in both halves */
                    for (int q = 4 * part; q < 4 * part + 4; q++) {
                        const __m512i raw = _mm512_loadu_si512((const void *)(blk + 320 + 64 * (8 * h + q)));
                        const __m512i w = _mm512_mullo_epi16(_mm512_and_si512(_mm512_srli_epi16(raw, 2 * k), m3), sc16);
                        for (int t = 0; t < T; t++) {
                            const uint8_t *qs = a[t] + offsetof(block_q8_K, qs) + 128 * h + 32 * k + 4 * q;
                            isum[t] = _mm512_dpbusd_epi32(isum[t], w, _mm512_set1_epi32(load_i32(qs)));
                        }
                    }
                }
            if (P || h == 1) kq_flush(T, acc, accm, isum, imin, d, dmin);
        }
    }
    kq_store(T, acc, accm, tensor_scale, y, ldy);
}

/* Tiles of up to KQ_TILE tokens; T and P are constants in each instance. */
#define KQ_DISPATCH(tilefn)                                                                               \
    for (int t0 = 0; t0 < n_tok; t0 += KQ_TILE) {                                                         \
        const int n = n_tok - t0 < KQ_TILE ? n_tok - t0 : KQ_TILE;                                        \
        const uint8_t *const *rows = act_rows + t0;                                                       \
        float *yt = y + (size_t)t0 * (size_t)ldy;                                                         \
        switch (n * 2 + (per_part ? 1 : 0)) {                                                             \
        case 2: tilefn(1, 0, grp, nb, rows, abb, tensor_scale, yt, ldy); break;                          \
        case 3: tilefn(1, 1, grp, nb, rows, abb, tensor_scale, yt, ldy); break;                          \
        case 4: tilefn(2, 0, grp, nb, rows, abb, tensor_scale, yt, ldy); break;                          \
        case 5: tilefn(2, 1, grp, nb, rows, abb, tensor_scale, yt, ldy); break;                          \
        case 6: tilefn(3, 0, grp, nb, rows, abb, tensor_scale, yt, ldy); break;                          \
        case 7: tilefn(3, 1, grp, nb, rows, abb, tensor_scale, yt, ldy); break;                          \
        case 8: tilefn(4, 0, grp, nb, rows, abb, tensor_scale, yt, ldy); break;                          \
        default: tilefn(4, 1, grp, nb, rows, abb, tensor_scale, yt, ldy); break;                         \
        }                                                                                                 \
    }

void kern_packed_q4_K_avx512(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t abb,
                             const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy,
                             bool per_part) {
    (void)da;
    (void)sa8;
    KQ_DISPATCH(tile_q4_K)
}

void kern_packed_q2_K_avx512(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t abb,
                             const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy,
                             bool per_part) {
    (void)da;
    (void)sa8;
    KQ_DISPATCH(tile_q2_K)
}
