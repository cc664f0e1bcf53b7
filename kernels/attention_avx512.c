/* AVX-512 (F+BW+VL) attention building blocks; contracts in attention.h (kern_attn_ops). Every
 * arithmetic step is a separate multiply and add (no FMA), so results equal the scalar ops bit for
 * bit; conversions use F16C-style vcvtps2ph/vcvtph2ps with an explicit round-to-nearest-even. */
#include "attention.h"
#include "quant.h"

#include <immintrin.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static __mmask16 tail_mask(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

/* 16 x 16 transpose: in r[j] = row j, out r[e] = element e of rows 0..15. */
static void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4k + m], 128-bit chunk L = rows 4k..4k+3 of element 4L + m */
    for (int k = 0; k < 4; k++) {
        const __m512d a = _mm512_castps_pd(t[4 * k]), b = _mm512_castps_pd(t[4 * k + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * k + 2]), d = _mm512_castps_pd(t[4 * k + 3]);
        u[4 * k + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int m = 0; m < 4; m++) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[m], u[4 + m], _MM_SHUFFLE(2, 0, 2, 0));
        const __m512 v1 = _mm512_shuffle_f32x4(u[m], u[4 + m], _MM_SHUFFLE(3, 1, 3, 1));
        const __m512 w0 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], _MM_SHUFFLE(2, 0, 2, 0));
        const __m512 w1 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], _MM_SHUFFLE(3, 1, 3, 1));
        r[m] = _mm512_shuffle_f32x4(v0, w0, _MM_SHUFFLE(2, 0, 2, 0));       /* element m      */
        r[8 + m] = _mm512_shuffle_f32x4(v0, w0, _MM_SHUFFLE(3, 1, 3, 1));   /* element 8 + m  */
        r[4 + m] = _mm512_shuffle_f32x4(v1, w1, _MM_SHUFFLE(2, 0, 2, 0));   /* element 4 + m  */
        r[12 + m] = _mm512_shuffle_f32x4(v1, w1, _MM_SHUFFLE(3, 1, 3, 1));  /* element 12 + m */
    }
}

static void k_tile_avx512(const void *const rows[ATTN_KT], bool f16, int D, float *kt) {
    for (int d0 = 0; d0 < D; d0 += 16) {
        const int m = D - d0 < 16 ? D - d0 : 16;
        const __mmask16 mask = tail_mask(m);
        __m512 r[16];
        for (int j = 0; j < 16; j++)
            r[j] = f16 ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)rows[j] + d0))
                       : _mm512_maskz_loadu_ps(mask, (const float *)rows[j] + d0);
        transpose16(r);
        for (int e = 0; e < m; e++) _mm512_storeu_ps(kt + (size_t)(d0 + e) * ATTN_KT, r[e]);
    }
}

static void qk_avx512(const float *kt, int D, const float *q, size_t q_stride, int n_rows, float *s,
                      size_t s_stride) {
    int r = 0;
    for (; r + 4 <= n_rows; r += 4) {
        const float *q0 = q + (size_t)r * q_stride, *q1 = q0 + q_stride, *q2 = q1 + q_stride, *q3 = q2 + q_stride;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int d = 0; d < D; d++) {
            const __m512 k = _mm512_loadu_ps(kt + (size_t)d * ATTN_KT);
            a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_set1_ps(q0[d]), k));
            a1 = _mm512_add_ps(a1, _mm512_mul_ps(_mm512_set1_ps(q1[d]), k));
            a2 = _mm512_add_ps(a2, _mm512_mul_ps(_mm512_set1_ps(q2[d]), k));
            a3 = _mm512_add_ps(a3, _mm512_mul_ps(_mm512_set1_ps(q3[d]), k));
        }
        _mm512_storeu_ps(s + (size_t)r * s_stride, a0);
        _mm512_storeu_ps(s + (size_t)(r + 1) * s_stride, a1);
        _mm512_storeu_ps(s + (size_t)(r + 2) * s_stride, a2);
        _mm512_storeu_ps(s + (size_t)(r + 3) * s_stride, a3);
    }
    for (; r < n_rows; r++) {
        const float *q0 = q + (size_t)r * q_stride;
        __m512 a0 = _mm512_setzero_ps();
        for (int d = 0; d < D; d++)
            a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_set1_ps(q0[d]), _mm512_loadu_ps(kt + (size_t)d * ATTN_KT)));
        _mm512_storeu_ps(s + (size_t)r * s_stride, a0);
    }
}

static void pv_avx512(float *out, const float *v, size_t v_stride, const float *w, int j0, int j1, int D) {
    int d0 = 0;
    for (; d0 + 64 <= D; d0 += 64) {
        __m512 a0 = _mm512_loadu_ps(out + d0), a1 = _mm512_loadu_ps(out + d0 + 16);
        __m512 a2 = _mm512_loadu_ps(out + d0 + 32), a3 = _mm512_loadu_ps(out + d0 + 48);
        for (int j = j0; j < j1; j++) {
            const __m512 wj = _mm512_set1_ps(w[j]);
            const float *vj = v + (size_t)j * v_stride + d0;
            a0 = _mm512_add_ps(a0, _mm512_mul_ps(wj, _mm512_loadu_ps(vj)));
            a1 = _mm512_add_ps(a1, _mm512_mul_ps(wj, _mm512_loadu_ps(vj + 16)));
            a2 = _mm512_add_ps(a2, _mm512_mul_ps(wj, _mm512_loadu_ps(vj + 32)));
            a3 = _mm512_add_ps(a3, _mm512_mul_ps(wj, _mm512_loadu_ps(vj + 48)));
        }
        _mm512_storeu_ps(out + d0, a0);
        _mm512_storeu_ps(out + d0 + 16, a1);
        _mm512_storeu_ps(out + d0 + 32, a2);
        _mm512_storeu_ps(out + d0 + 48, a3);
    }
    for (; d0 < D; d0 += 16) {
        const __mmask16 mask = tail_mask(D - d0);
        __m512 a = _mm512_maskz_loadu_ps(mask, out + d0);
        for (int j = j0; j < j1; j++)
            a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_set1_ps(w[j]),
                                               _mm512_maskz_loadu_ps(mask, v + (size_t)j * v_stride + d0)));
        _mm512_mask_storeu_ps(out + d0, mask, a);
    }
}

/* vcvtps2ph rounds like quant_f32_to_f16 (RNE, subnormals, overflow to Inf) except for NaN, where it
 * keeps the top payload bits; quant_f32_to_f16 gives sign | 0x7E00, so NaN lanes are replaced. */
static __m256i cvt16(__m512 x) {
    const __m256i h = _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(x), 16), _mm512_set1_epi32(0x8000));
    const __m256i qnan = _mm512_cvtepi32_epi16(_mm512_or_si512(sign, _mm512_set1_epi32(0x7E00)));
    return _mm256_mask_blend_epi16(nan, h, qnan);
}

static void f32_to_f16_avx512(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(y + i), cvt16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 mask = tail_mask((int)(n - i));
        _mm256_mask_storeu_epi16(y + i, mask, cvt16(_mm512_maskz_loadu_ps(mask, x + i)));
    }
}

static void f16_to_f32_avx512(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
    if (i < n) {
        const __mmask16 mask = tail_mask((int)(n - i));
        _mm512_mask_storeu_ps(y + i, mask, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, x + i)));
    }
}

const kern_attn_ops kern_attn_ops_avx512 = {
    k_tile_avx512, qk_avx512, pv_avx512, f32_to_f16_avx512, f16_to_f32_avx512,
};
