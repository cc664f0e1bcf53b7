/* AVX-512F float vector ops: ggml's own AVX-512 code path (vec.h ggml_v_expf / ggml_v_silu,
 * vec.cpp ggml_vec_swiglu_f32 / ggml_vec_soft_max_f32), one 16-lane vector per chunk. Bit-identical
 * to the scalar reference in kernels/vec_ops_impl.h (see there for the algorithm). */
#include "kernels.h"
#include "vec_ops_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>

static inline __m512 v_expf(__m512 x) {
    const __m512 r = _mm512_set1_ps(VEXP_SHIFT);
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(VEXP_LOG2E), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(VEXP_LN2LO),
                                      _mm512_fnmadd_ps(n, _mm512_set1_ps(VEXP_LN2HI), x));
    const __mmask16 d = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_GT_OQ);
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(VEXP_C4), b, _mm512_set1_ps(VEXP_C3)), u,
                        _mm512_fmadd_ps(_mm512_set1_ps(VEXP_C2), b, _mm512_set1_ps(VEXP_C1))),
        u, _mm512_fmadd_ps(_mm512_set1_ps(VEXP_C0), b, _mm512_set1_ps(1.0f)));
    const __m512 res = _mm512_scalef_ps(j, n);
    if (_mm512_kortestz(d, d)) return res;
    const __m512 zero = _mm512_setzero_ps();
    const __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, zero, _CMP_LE_OQ),
                                            _mm512_set1_ps(INFINITY), zero);
    return _mm512_mask_blend_ps(d, res, alt);
}

static inline __m512 v_silu(__m512 x) {
    const __m512 e = v_expf(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* _mm512_reduce_add_ps spelled out, so the association is ours and not the compiler's. */
static inline float v_sum16(__m512 v) {
    const __m256 s = _mm256_add_ps(_mm512_castps512_ps256(v),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
}

void kern_swiglu16_avx512(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __m512 g = _mm512_loadu_ps(gate + i), u = _mm512_loadu_ps(up + i);
        _mm512_storeu_ps(out + i, _mm512_mul_ps(v_silu(g), u));
    }
}

double kern_softmax_exp16_avx512(float *x, int64_t n, float max) {
    const __m512 vmax = _mm512_set1_ps(max);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i += 16) {
        const __m512 v = v_expf(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmax));
        _mm512_storeu_ps(x + i, v);
        sum += (double)v_sum16(v);
    }
    return sum;
}

/* GELU through the f16 table: vcvtps2ph (round to nearest even, = quant_f32_to_f16 for finite x),
 * a 32-bit gather at 2*h keeping the low half, vcvtph2ps back. */
void kern_geglu_avx512(float *out, const float *gate, const float *up, int64_t n, const uint16_t *table) {
    const __m512 lo = _mm512_set1_ps(-10.0f), hi = _mm512_set1_ps(10.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(gate + i), u = _mm512_loadu_ps(up + i);
        const __m512i h = _mm512_cvtepu16_epi32(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m512i g32 = _mm512_i32gather_epi32(h, (const void *)table, 2);
        const __m512 t = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g32));
        __m512 y = _mm512_mul_ps(t, u);
        y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, hi, _CMP_GE_OQ), y, _mm512_mul_ps(x, u));
        y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, lo, _CMP_LE_OQ), y, _mm512_setzero_ps());
        _mm512_storeu_ps(out + i, y);
    }
    for (; i < n; i++) {
        const float x = gate[i];
        if (x <= -10.0f) out[i] = 0.0f;
        else if (x >= 10.0f) out[i] = x * up[i];
        else out[i] = quant_f16_to_f32(table[quant_f32_to_f16(x)]) * up[i];
    }
}
#else
typedef int vec_ops_avx512_empty_tu; /* non-x86 builds do not compile this file (Makefile) */
#endif
