/* AVX2 + F16C attention building blocks; contracts in attention.h (kern_attn_ops). Separate multiply
 * and add everywhere (no FMA) so results equal the scalar ops bit for bit; tails that do not fill a
 * vector go through zero-padded stack copies (loads) or the scalar formulas (stores). */
#include "attention.h"
#include "quant.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* 8 x 8 transpose: in r[j] = row j (8 elements), out r[e] = element e of rows 0..7. */
static void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int k = 0; k < 2; k++) {
        u[4 * k + 0] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * k + 1] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * k + 2] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * k + 3] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int m = 0; m < 4; m++) {
        r[m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x20);
        r[4 + m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x31);
    }
}

static __m256 load8(const void *row, bool f16, int d0, int m) {
    if (m == 8)
        return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + d0)))
                   : _mm256_loadu_ps((const float *)row + d0);
    if (f16) {
        uint16_t b[8] = { 0 };
        memcpy(b, (const uint16_t *)row + d0, (size_t)m * sizeof(uint16_t));
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b));
    }
    float b[8] = { 0 };
    memcpy(b, (const float *)row + d0, (size_t)m * sizeof(float));
    return _mm256_loadu_ps(b);
}

static void k_tile_avx2(const void *const rows[ATTN_KT], bool f16, int D, float *kt) {
    for (int d0 = 0; d0 < D; d0 += 8) {
        const int m = D - d0 < 8 ? D - d0 : 8;
        for (int half = 0; half < 2; half++) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) r[j] = load8(rows[8 * half + j], f16, d0, m);
            transpose8(r);
            for (int e = 0; e < m; e++) _mm256_storeu_ps(kt + (size_t)(d0 + e) * ATTN_KT + 8 * half, r[e]);
        }
    }
}

static void qk_avx2(const float *kt, int D, const float *q, size_t q_stride, int n_rows, float *s, size_t s_stride) {
    int r = 0;
    for (; r + 4 <= n_rows; r += 4) {
        const float *q0 = q + (size_t)r * q_stride, *q1 = q0 + q_stride, *q2 = q1 + q_stride, *q3 = q2 + q_stride;
        __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
        for (int d = 0; d < D; d++) {
            const __m256 klo = _mm256_loadu_ps(kt + (size_t)d * ATTN_KT), khi = _mm256_loadu_ps(kt + (size_t)d * ATTN_KT + 8);
            __m256 x = _mm256_broadcast_ss(q0 + d);
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(x, klo));
            b0 = _mm256_add_ps(b0, _mm256_mul_ps(x, khi));
            x = _mm256_broadcast_ss(q1 + d);
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(x, klo));
            b1 = _mm256_add_ps(b1, _mm256_mul_ps(x, khi));
            x = _mm256_broadcast_ss(q2 + d);
            a2 = _mm256_add_ps(a2, _mm256_mul_ps(x, klo));
            b2 = _mm256_add_ps(b2, _mm256_mul_ps(x, khi));
            x = _mm256_broadcast_ss(q3 + d);
            a3 = _mm256_add_ps(a3, _mm256_mul_ps(x, klo));
            b3 = _mm256_add_ps(b3, _mm256_mul_ps(x, khi));
        }
        float *s0 = s + (size_t)r * s_stride;
        _mm256_storeu_ps(s0, a0); _mm256_storeu_ps(s0 + 8, b0); s0 += s_stride;
        _mm256_storeu_ps(s0, a1); _mm256_storeu_ps(s0 + 8, b1); s0 += s_stride;
        _mm256_storeu_ps(s0, a2); _mm256_storeu_ps(s0 + 8, b2); s0 += s_stride;
        _mm256_storeu_ps(s0, a3); _mm256_storeu_ps(s0 + 8, b3);
    }
    for (; r < n_rows; r++) {
        const float *q0 = q + (size_t)r * q_stride;
        __m256 a0 = _mm256_setzero_ps(), b0 = a0;
        for (int d = 0; d < D; d++) {
            const __m256 x = _mm256_broadcast_ss(q0 + d);
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(x, _mm256_loadu_ps(kt + (size_t)d * ATTN_KT)));
            b0 = _mm256_add_ps(b0, _mm256_mul_ps(x, _mm256_loadu_ps(kt + (size_t)d * ATTN_KT + 8)));
        }
        _mm256_storeu_ps(s + (size_t)r * s_stride, a0);
        _mm256_storeu_ps(s + (size_t)r * s_stride + 8, b0);
    }
}

static void pv_avx2(float *out, const float *v, size_t v_stride, const float *w, int j0, int j1, int D) {
    int d0 = 0;
    for (; d0 + 32 <= D; d0 += 32) {
        __m256 a0 = _mm256_loadu_ps(out + d0), a1 = _mm256_loadu_ps(out + d0 + 8);
        __m256 a2 = _mm256_loadu_ps(out + d0 + 16), a3 = _mm256_loadu_ps(out + d0 + 24);
        for (int j = j0; j < j1; j++) {
            const __m256 wj = _mm256_broadcast_ss(w + j);
            const float *vj = v + (size_t)j * v_stride + d0;
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(wj, _mm256_loadu_ps(vj)));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(wj, _mm256_loadu_ps(vj + 8)));
            a2 = _mm256_add_ps(a2, _mm256_mul_ps(wj, _mm256_loadu_ps(vj + 16)));
            a3 = _mm256_add_ps(a3, _mm256_mul_ps(wj, _mm256_loadu_ps(vj + 24)));
        }
        _mm256_storeu_ps(out + d0, a0);
        _mm256_storeu_ps(out + d0 + 8, a1);
        _mm256_storeu_ps(out + d0 + 16, a2);
        _mm256_storeu_ps(out + d0 + 24, a3);
    }
    for (; d0 + 8 <= D; d0 += 8) {
        __m256 a = _mm256_loadu_ps(out + d0);
        for (int j = j0; j < j1; j++)
            a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_broadcast_ss(w + j), _mm256_loadu_ps(v + (size_t)j * v_stride + d0)));
        _mm256_storeu_ps(out + d0, a);
    }
    /* columns past the last full vector: the reference's operations on the remaining D - d0 columns */
    if (d0 < D) kern_attn_ops_scalar.pv(out + d0, v + d0, v_stride, w, j0, j1, D - d0);
}

/* vcvtps2ph (imm 0 = round to nearest even) matches quant_f32_to_f16 except for NaN payloads;
 * NaN lanes are replaced by sign | 0x7E00 like the scalar converter. */
static __m128i cvt8(__m256 x) {
    const __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT);
    const __m256i nan32 = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    const __m256i q32 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(x), 16),
                                                         _mm256_set1_epi32(0x8000)),
                                        _mm256_set1_epi32(0x7E00));
    const __m128i nan16 = _mm_packs_epi32(_mm256_castsi256_si128(nan32), _mm256_extracti128_si256(nan32, 1));
    const __m128i q16 = _mm_packus_epi32(_mm256_castsi256_si128(q32), _mm256_extracti128_si256(q32, 1));
    return _mm_blendv_epi8(h, q16, nan16);
}

static void f32_to_f16_avx2(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(y + i), cvt8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = quant_f32_to_f16(x[i]);
}

static void f16_to_f32_avx2(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = quant_f16_to_f32(x[i]);
}

const kern_attn_ops kern_attn_ops_avx2 = {
    k_tile_avx2, qk_avx2, pv_avx2, f32_to_f16_avx2, f16_to_f32_avx2,
};
