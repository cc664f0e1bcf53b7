/* AVX-512 (F, BW, VL, VNNI) ternary kernels: MAD dot products for TQ1_0 and I2_S (TQ2_0's is in
 * dot_avx512.c) and the LUT tile kernel (TL1 layout, kernels/ternary.h).
 *
 * MAD exactness: integer sums exact (dpbusd has no intermediate saturation). TQ1_0 reduces each
 * block's sum to one int32 and then does the reference's float ops in its order (a vector-lane
 * float combination was measured off by 1.9e-6 on a row whose exact result is 0: the bsums
 * correction lands in other lanes than the products it cancels); I2_S keeps the reference's int64
 * total and final division. Both are bit-identical to quant/vec_dot.c. The LUT kernel is
 * bit-identical to the scalar references (per-row float ops in the reference order). */
#include "ternary.h"
#include "blocks.h"
#include "cpu_features.h"
#include "ref.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static inline float load_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}
static inline float load_f32(const uint8_t *p) {
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}
static inline __m256i ld32(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m512i ld64(const uint8_t *p) { return _mm512_loadu_si512((const void *)p); }

enum {
    Q8K_D = offsetof(block_q8_K, d), Q8K_QS = offsetof(block_q8_K, qs), Q8K_BSUMS = offsetof(block_q8_K, bsums),
    TQ1_QS = offsetof(block_tq1_0, qs), TQ1_QH = offsetof(block_tq1_0, qh), TQ1_D = offsetof(block_tq1_0, d),
};

/* ---- MAD: TQ1_0 x Q8_K ------------------------------------------------------------------------------ */

/* Bytes b * m mod 256 where m is a per-16-bit-word multiplier (both bytes of a word share it):
 * the low byte of vpmullw(b, m) is right for the even bytes, vpmullw(b & 0xFF00, m) gives the odd
 * bytes (the low byte is 0 and cannot carry into them). 4 instructions for any multipliers. */
static inline __m512i mul_bytes(__m512i b, __m512i b_hi, __m512i m) {
    return _mm512_mask_blend_epi8(0xAAAAAAAAAAAAAAAAULL, _mm512_mullo_epi16(b, m), _mm512_mullo_epi16(b_hi, m));
}

/* Trit (q * 3) >> 8 of every byte: 0 for q < 86, 1 for 86 <= q < 171, 2 above (2 compares, 2 masked ops). */
static inline __m512i trits(__m512i q, __m512i one) {
    const __mmask64 k1 = _mm512_cmpge_epu8_mask(q, _mm512_set1_epi8(86));
    const __mmask64 k2 = _mm512_cmpge_epu8_mask(q, _mm512_set1_epi8((char)171));
    const __m512i t = _mm512_maskz_mov_epi8(k1, one);
    return _mm512_mask_add_epi8(t, k2, t, one);
}

/* 16-bit multipliers, one per 16-byte quarter (q0 = lowest) or per dword within the last quarter. */
static inline __m512i mult4(short q0, short q1, short q2, short q3) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16(q1), _mm_set1_epi16(q0))),
                              _mm256_set_m128i(_mm_set1_epi16(q3), _mm_set1_epi16(q2)), 1);
}

/* Block layout (quant/vec_dot.c): element 32n + m = trit n of qs[m] (n < 5), 160 + 16n + m = trit n
 * of qs[32 + m], 240 + 4n + j = trit n of qh[j]. Four registers of 64 trits, in activation order:
 *   A = [qs0-31 x1  | qs0-31 x3 ]                     -> a[  0.. 63]
 *   B = [qs0-31 x9  | qs0-31 x27]                     -> a[ 64..127]
 *   C = [qs0-31 x81 | qs32-47 x1 | qs32-47 x3]        -> a[128..191]
 *   D = [qs32-47 x9 | x27 | x81 | qh (dword n: x3^n)] -> a[192..255]
 * then sum (t-1) a = dpbusd(t, a) - sum(bsums); trits t in 0..2 (u8), a s8: exact in int32. */
void kern_dot_tq1_0_q8_K_avx512(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const __m512i one = _mm512_set1_epi8(1), hi_bytes = _mm512_set1_epi16((short)0xFF00);
    const __m512i mA = mult4(1, 1, 3, 3), mB = mult4(9, 9, 27, 27), mC = mult4(81, 81, 1, 3);
    /* last quarter of D: dword n of the qh broadcast times 3^n */
    const __m512i mD = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16(27), _mm_set1_epi16(9))),
                                          _mm256_set_m128i(_mm_set_epi16(27, 27, 9, 9, 3, 3, 1, 1), _mm_set1_epi16(81)), 1);
    const __m256i ones16 = _mm256_set1_epi16(1);
    float sumf = 0.0f;
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_tq1_0), *yb = y + i * sizeof(block_q8_K);
        const uint8_t *a = yb + Q8K_QS;
        const __m512i q = _mm512_broadcast_i64x4(ld32(xb + TQ1_QS));
        const __m512i q_hi = _mm512_and_si512(q, hi_bytes);
        const __m128i r = _mm_loadu_si128((const __m128i *)(xb + TQ1_QS + 32));
        uint32_t qh4;
        memcpy(&qh4, xb + TQ1_QH, sizeof qh4);
        /* [qs0-31 | r | r] and [r | r | r | qh x4] */
        const __m512i c = _mm512_inserti64x4(q, _mm256_broadcastsi128_si256(r), 1);
        const __m512i d = _mm512_inserti32x4(_mm512_broadcast_i32x4(r), _mm_set1_epi32((int)qh4), 3);
        __m512i sumi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), trits(mul_bytes(q, q_hi, mA), one), ld64(a));
        sumi = _mm512_dpbusd_epi32(sumi, trits(mul_bytes(q, q_hi, mB), one), ld64(a + 64));
        sumi = _mm512_dpbusd_epi32(sumi, trits(mul_bytes(c, _mm512_and_si512(c, hi_bytes), mC), one), ld64(a + 128));
        sumi = _mm512_dpbusd_epi32(sumi, trits(mul_bytes(d, _mm512_and_si512(d, hi_bytes), mD), one), ld64(a + 192));
        const __m256i bs = _mm256_madd_epi16(ld32(yb + Q8K_BSUMS), ones16);   /* 8 x (sum of 32 codes) */
        /* the block's exact integer sum, then the reference's float ops: bit-identical */
        const int32_t si = _mm512_reduce_add_epi32(_mm512_sub_epi32(sumi, _mm512_zextsi256_si512(bs)));
        sumf += (float)si * (load_f16(xb + TQ1_D) * load_f32(yb + Q8K_D));
    }
    *s = sumf;
}

/* ---- MAD: TQ2_0 x Q8_K (one row, and 4 rows sharing the activation loads) -----------------------------
 * Both are bit-identical to the scalar reference: each block's exact int32 sum (dpbusd of the codes
 * 0..3 with the activations, started from -sum(bsums) for the "- 1"; |sum| <= 256*2*128), then per row
 * sumf += (float)sumi * (d_w * d_a) block by block, in the reference's order.
 *
 * Generation streams each matrix from DRAM once per token and the hardware prefetcher alone leaves one
 * thread well short of the memory bandwidth: on a 240 MB TQ2_0 matrix (ne0 = 1536, SPR, 1 thread) the
 * one-row kernel streamed 5.7 GB/s without software prefetch, 8.3 GB/s prefetching 4 KiB ahead, and the
 * 4-row kernel 9.8 GB/s (a plain AVX-512 read loop: 9-10 GB/s). Prefetches past the end of the matrix
 * are harmless (prefetch never faults). */
#define TQ2_PREFETCH_BYTES 4096
enum { TQ2_QS = offsetof(block_tq2_0, qs), TQ2_D = offsetof(block_tq2_0, d) };

/* Lane r of the result = the sum of the 16 int32 lanes of v_r. */
static inline __m128i hsum4_epi32(__m512i v0, __m512i v1, __m512i v2, __m512i v3) {
    /* 256-bit halves added: [v0 | v1] and [v2 | v3], 8 partial sums each */
    const __m512i f01 = _mm512_add_epi32(_mm512_shuffle_i64x2(v0, v1, 0x44), _mm512_shuffle_i64x2(v0, v1, 0xEE));
    const __m512i f23 = _mm512_add_epi32(_mm512_shuffle_i64x2(v2, v3, 0x44), _mm512_shuffle_i64x2(v2, v3, 0xEE));
    /* 128-bit lane r: 4 partial sums of v_r */
    const __m512i g = _mm512_add_epi32(_mm512_shuffle_i64x2(f01, f23, 0x88), _mm512_shuffle_i64x2(f01, f23, 0xDD));
    __m512i h = _mm512_add_epi32(g, _mm512_shuffle_epi32(g, _MM_PERM_BADC));
    h = _mm512_add_epi32(h, _mm512_shuffle_epi32(h, _MM_PERM_CDAB));
    return _mm512_castsi512_si128(_mm512_permutexvar_epi32(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), h));
}

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* 4 f16 at p, p + stride, p + 2 stride, p + 3 stride -> 4 f32 (exact). */
static inline __m128 load_f16x4(const uint8_t *p, size_t stride) {
    __m128i h = _mm_cvtsi32_si128(load_u16(p));
    h = _mm_insert_epi16(h, load_u16(p + stride), 1);
    h = _mm_insert_epi16(h, load_u16(p + 2 * stride), 2);
    h = _mm_insert_epi16(h, load_u16(p + 3 * stride), 3);
    return _mm_cvtph_ps(h);
}

/* One block against a Q8_K block in its own order: register m = activations 64m .. 64m+63 = code byte
 * 32(m/2) + p, bits 2(2(m%2) + (p >= 32)) -> the 32 code bytes of each half broadcast and shifted by
 * 0 | 2 (m even) or 4 | 6 (m odd) per 256-bit half. */
static inline __m512i tq2_block_q8k(const uint8_t *xb, const uint8_t *yb) {
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m512i sh01 = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
    const __m512i sh23 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(6), 1);
    const uint8_t *a = yb + Q8K_QS;
    _mm_prefetch((const char *)xb + TQ2_PREFETCH_BYTES, _MM_HINT_T0);
    const __m512i q0 = _mm512_broadcast_i64x4(ld32(xb + TQ2_QS));
    const __m512i q1 = _mm512_broadcast_i64x4(ld32(xb + TQ2_QS + 32));
    /* -(bsums[2l] + bsums[2l+1]) in lanes 0..7 */
    const __m512i init = _mm512_zextsi256_si512(_mm256_madd_epi16(ld32(yb + Q8K_BSUMS), _mm256_set1_epi16(-1)));
    __m512i s = _mm512_dpbusd_epi32(init, _mm512_and_si512(_mm512_srlv_epi16(q0, sh01), m3), ld64(a));
    s = _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srlv_epi16(q0, sh23), m3), ld64(a + 64));
    s = _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srlv_epi16(q1, sh01), m3), ld64(a + 128));
    return _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srlv_epi16(q1, sh23), m3), ld64(a + 192));
}

void kern_dot_tq2_0_q8_K_avx512(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *y = vy;
    const int64_t nb = n / QK_K;
    const size_t xs = sizeof(block_tq2_0), ys = sizeof(block_q8_K);
    float sumf = 0.0f;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {   /* 4 blocks share one horizontal reduction */
        const uint8_t *xb = x + i * xs, *yb = y + i * ys;
        const __m128i sumi = hsum4_epi32(tq2_block_q8k(xb, yb), tq2_block_q8k(xb + xs, yb + ys),
                                         tq2_block_q8k(xb + 2 * xs, yb + 2 * ys), tq2_block_q8k(xb + 3 * xs, yb + 3 * ys));
        const __m128 dy = _mm_set_ps(load_f32(yb + 3 * ys + Q8K_D), load_f32(yb + 2 * ys + Q8K_D),
                                     load_f32(yb + ys + Q8K_D), load_f32(yb + Q8K_D));
        float p[4];
        _mm_storeu_ps(p, _mm_mul_ps(_mm_cvtepi32_ps(sumi), _mm_mul_ps(load_f16x4(xb + TQ2_D, xs), dy)));
        for (int k = 0; k < 4; k++) sumf += p[k];   /* the reference's order */
    }
    for (; i < nb; i++) {
        const uint8_t *xb = x + i * xs, *yb = y + i * ys;
        const int32_t sumi = _mm512_reduce_add_epi32(tq2_block_q8k(xb, yb));
        sumf += (float)sumi * (load_f16(xb + TQ2_D) * load_f32(yb + Q8K_D));
    }
    *s = sumf;
}

/* One weight block (one 64-byte load: field k of code byte p) against the prepared activations. */
static inline __m512i tq2_block_prepared(const uint8_t *xb, __m512i init, __m512i a0, __m512i a1, __m512i a2,
                                         __m512i a3) {
    const __m512i m3 = _mm512_set1_epi8(3);
    _mm_prefetch((const char *)xb + TQ2_PREFETCH_BYTES, _MM_HINT_T0);
    const __m512i q = ld64(xb + TQ2_QS);
    __m512i s = _mm512_dpbusd_epi32(init, _mm512_and_si512(q, m3), a0);
    s = _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srli_epi16(q, 2), m3), a1);
    s = _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srli_epi16(q, 4), m3), a2);
    return _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srli_epi16(q, 6), m3), a3);
}

void kern_tq2_rows4_avx512(int64_t n, float s[4], const uint8_t *x, size_t row_bytes,
                           const kern_tq2_act_block *a, const float *d) {
    const int64_t nb = n / QK_K;
    const size_t rb = row_bytes;
    __m128 sumf = _mm_setzero_ps();   /* lane r: row r */
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *xb = x + i * sizeof(block_tq2_0);
        const uint8_t *ab = (const uint8_t *)a[i].qs;
        const __m512i a0 = ld64(ab), a1 = ld64(ab + 64), a2 = ld64(ab + 128), a3 = ld64(ab + 192);
        const __m512i init = _mm512_loadu_si512((const void *)a[i].neg_bsum);
        const __m128i sumi = hsum4_epi32(tq2_block_prepared(xb, init, a0, a1, a2, a3),
                                         tq2_block_prepared(xb + rb, init, a0, a1, a2, a3),
                                         tq2_block_prepared(xb + 2 * rb, init, a0, a1, a2, a3),
                                         tq2_block_prepared(xb + 3 * rb, init, a0, a1, a2, a3));
        const __m128 dd = _mm_mul_ps(load_f16x4(xb + TQ2_D, rb), _mm_set1_ps(d[i]));
        sumf = _mm_add_ps(sumf, _mm_mul_ps(_mm_cvtepi32_ps(sumi), dd));
    }
    _mm_storeu_ps(s, sumf);
}

/* ---- MAD: I2_S x I8_S ------------------------------------------------------------------------------- */

/* Group of 128 (32 bytes): field c (bits 7-6, 5-4, 3-2, 1-0) of byte p = element 32c + p. The group's
 * 32 bytes are broadcast to both halves and shifted by (6, 4) / (2, 0) so each register's codes are
 * in activation order (64 contiguous I8_S codes). dpbusd: u8 codes 0..3 x s8 (may be -128): a lane
 * of each accumulator gains <= 4 * 3 * 128 = 1536 per group; flushed to int64 every 2^16 groups. Exact, so the result
 * (float)(S - A) / s_act is bit-identical to the reference. */
void kern_dot_i2_s_i8_s_avx512(int64_t n, float *restrict s, const void *restrict vx, const void *restrict vy) {
    const uint8_t *x = vx, *a = vy;
    const int64_t ng = n / QK_I2S;
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m512i sh01 = _mm512_inserti64x4(_mm512_set1_epi16(6), _mm256_set1_epi16(4), 1);
    const __m512i sh23 = _mm512_inserti64x4(_mm512_set1_epi16(2), _mm256_set1_epi16(0), 1);
    __m512i sumi0 = _mm512_setzero_si512(), sumi1 = _mm512_setzero_si512();
    int64_t total = 0;
    for (int64_t g = 0; g < ng; g++) {
        const __m512i q = _mm512_broadcast_i64x4(ld32(x + 32 * g));
        const uint8_t *ag = a + QK_I2S * g;
        sumi0 = _mm512_dpbusd_epi32(sumi0, _mm512_and_si512(_mm512_srlv_epi16(q, sh01), m3), ld64(ag));
        sumi1 = _mm512_dpbusd_epi32(sumi1, _mm512_and_si512(_mm512_srlv_epi16(q, sh23), m3), ld64(ag + 64));
        if ((g & 0xFFFF) == 0xFFFF) {
            total += _mm512_reduce_add_epi32(_mm512_add_epi32(sumi0, sumi1));
            sumi0 = sumi1 = _mm512_setzero_si512();
        }
    }
    total += _mm512_reduce_add_epi32(_mm512_add_epi32(sumi0, sumi1));
    float act_scale;
    int32_t act_sum;
    memcpy(&act_scale, a + I8S_SCALE_OFFSET(n), sizeof act_scale);
    memcpy(&act_sum, a + I8S_SUM_OFFSET(n), sizeof act_sum);
    *s = (float)(total - act_sum) / act_scale;
}

/* ---- LUT tile kernel ------------------------------------------------------------------------------------
 * Per octet (64 index bytes = 8 pairs x 16 rows): low nibbles = pairs p0 p1 p4 p5 (one per 128-bit
 * lane), high nibbles = p2 p3 p6 p7; one 64-byte table load per (nibble, low/high byte). unpacklo /
 * unpackhi_epi8 rebuild int16 entries for rows 0-7 / 8-15 in each lane. An int16 lane takes 16 entries
 * per chunk (|T| <= 512): flushed every 2 chunks (<= 16384).
 * NT consecutive tiles (NT = 4 where the driver has them) share every table load: in the DRAM-bound
 * case one tile at a time streamed ~8 GB/s at ne0 = 4096 (64 KiB of tables per row, from L2) against
 * ~20 GB/s for the MAD kernel; the table traffic per weight byte drops by NT. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE void octets(const uint8_t *idx, size_t tile_stride, const uint8_t *tab, int n_oct, int nt,
                          __m512i *a_lo, __m512i *a_hi) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int o = 0; o < n_oct; o++) {
        const uint8_t *to = tab + 256 * o;
        const __m512i t0l = ld64(to), t0h = ld64(to + 64), t1l = ld64(to + 128), t1h = ld64(to + 192);
#pragma GCC unroll 4
        for (int k = 0; k < nt; k++) {
            const __m512i w = ld64(idx + k * tile_stride + 64 * o);
            const __m512i i0 = _mm512_and_si512(w, m4);
            const __m512i i1 = _mm512_and_si512(_mm512_srli_epi16(w, 4), m4);
            const __m512i l0 = _mm512_shuffle_epi8(t0l, i0), h0 = _mm512_shuffle_epi8(t0h, i0);
            const __m512i l1 = _mm512_shuffle_epi8(t1l, i1), h1 = _mm512_shuffle_epi8(t1h, i1);
            a_lo[k] = _mm512_add_epi16(a_lo[k], _mm512_add_epi16(_mm512_unpacklo_epi8(l0, h0), _mm512_unpacklo_epi8(l1, h1)));
            a_hi[k] = _mm512_add_epi16(a_hi[k], _mm512_add_epi16(_mm512_unpackhi_epi8(l0, h0), _mm512_unpackhi_epi8(l1, h1)));
        }
    }
}

/* int16 lanes [rows 0-7 of slots 0..3] (a_lo) and [rows 8-15 ...] (a_hi) -> 16 int32 row sums. */
static inline __m512i rows16(__m512i a_lo, __m512i a_hi) {
    const __m512i s = _mm512_add_epi32(_mm512_cvtepi16_epi32(_mm512_castsi512_si256(a_lo)),
                                       _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(a_lo, 1)));
    const __m512i t = _mm512_add_epi32(_mm512_cvtepi16_epi32(_mm512_castsi512_si256(a_hi)),
                                       _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(a_hi, 1)));
    /* s = [r0-7 | r0-7], t = [r8-15 | r8-15] (256-bit halves) -> [r0-7 | r8-15] */
    return _mm512_add_epi32(_mm512_shuffle_i64x2(s, t, _MM_SHUFFLE(1, 0, 1, 0)),
                            _mm512_shuffle_i64x2(s, t, _MM_SHUFFLE(3, 2, 3, 2)));
}

/* NT tiles from `tile`: out[16 k + r] for tile + k. */
ALWAYS_INLINE void tiles(const kern_tl1_matrix *w, int64_t tile, const void *act_row, const uint8_t *tables,
                         float *out, int nt) {
    const uint8_t *tp = w->data + (size_t)tile * w->tile_bytes;
    const size_t ts = w->tile_bytes;
    const int64_t n_chunks = w->ne0 / KERN_TL1_CHUNK;
    const size_t tstride = KERN_TL1_CHUNK * KERN_TL1_TABLE_BYTES_PER_ELEM;
    __m512i a_lo[4], a_hi[4];
    if (w->type == LLMPI_TYPE_I2_S) {
        __m512i total[4];   /* |S - A| <= 256 ne0 < 2^31 (ne0 <= 2^22) */
        for (int k = 0; k < nt; k++) total[k] = _mm512_setzero_si512();
        for (int64_t c = 0; c < n_chunks; c += 2) {
            const int n_oct = c + 1 < n_chunks ? 16 : 8;   /* two chunks are contiguous in both layouts */
#pragma GCC unroll 4
            for (int k = 0; k < nt; k++) a_lo[k] = a_hi[k] = _mm512_setzero_si512();
            octets(tp + c * KERN_TL1_CHUNK_BYTES, ts, tables + c * tstride, n_oct, nt, a_lo, a_hi);
#pragma GCC unroll 4
            for (int k = 0; k < nt; k++) total[k] = _mm512_add_epi32(total[k], rows16(a_lo[k], a_hi[k]));
        }
        float act_scale;
        memcpy(&act_scale, (const uint8_t *)act_row + I8S_SCALE_OFFSET(w->ne0), sizeof act_scale);
        for (int k = 0; k < nt; k++)
            _mm512_storeu_ps(out + 16 * k, _mm512_div_ps(_mm512_cvtepi32_ps(total[k]), _mm512_set1_ps(act_scale)));
        return;
    }
    const size_t d_off = (size_t)n_chunks * KERN_TL1_CHUNK_BYTES;
    __m512 f[4];
    for (int k = 0; k < nt; k++) f[k] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n_chunks / 2; b++) {
#pragma GCC unroll 4
        for (int k = 0; k < nt; k++) a_lo[k] = a_hi[k] = _mm512_setzero_si512();
        octets(tp + 2 * b * KERN_TL1_CHUNK_BYTES, ts, tables + 2 * b * tstride, 16, nt, a_lo, a_hi);
        const __m512 dy = _mm512_set1_ps(kern_tl1_q8k_d(act_row, b));
#pragma GCC unroll 4
        for (int k = 0; k < nt; k++) {
            /* sumf += (float)sumi * (d_w * d_y), lane-wise as the scalar reference */
            const __m512 dd = _mm512_mul_ps(_mm512_loadu_ps((const float *)(tp + k * ts + d_off) + 16 * b), dy);
            f[k] = _mm512_add_ps(f[k], _mm512_mul_ps(_mm512_cvtepi32_ps(rows16(a_lo[k], a_hi[k])), dd));
        }
    }
    for (int k = 0; k < nt; k++) _mm512_storeu_ps(out + 16 * k, f[k]);
}

void kern_tl1_tile_avx512(const kern_tl1_matrix *w, int64_t tile, const void *act_row,
                          const uint8_t *tables, float out[KERN_TL1_ROWS]) {
    tiles(w, tile, act_row, tables, out, 1);
}

void kern_tl1_tile4_avx512(const kern_tl1_matrix *w, int64_t tile, const void *act_row,
                           const uint8_t *tables, float out[4 * KERN_TL1_ROWS]) {
    tiles(w, tile, act_row, tables, out, 4);
}
