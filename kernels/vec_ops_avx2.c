/* AVX2+FMA float vector ops computing ggml's *AVX-512* numerics (kernels/vec_ops_impl.h) with 8-lane
 * vectors: a 16-element chunk is two vectors, scalef is emulated with two exact power-of-two
 * multiplies, and the chunk sum uses reduce_add_ps's association. Bit-identical to the scalar
 * reference. (ggml's own AVX2 path uses a different final step, k + k*j; we deliberately do not.) */
#include "kernels.h"
#include "vec_ops_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>

static inline __m256 v_expf(__m256 x) {
    const __m256 r = _mm256_set1_ps(VEXP_SHIFT);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(VEXP_LOG2E), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(VEXP_LN2LO),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(VEXP_LN2HI), x));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(VEXP_C4), b, _mm256_set1_ps(VEXP_C3)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(VEXP_C2), b, _mm256_set1_ps(VEXP_C1))),
        u, _mm256_fmadd_ps(_mm256_set1_ps(VEXP_C0), b, _mm256_set1_ps(1.0f)));
    /* scalef(j, n) for |n| <= 192: j * 2^k1 (exact) * 2^k2 (one rounding); k = k1 + k2. Lanes with
     * |n| > 192 or NaN get garbage exponents here and are replaced below (NaN: j is NaN already). */
    const __m256i k = _mm256_cvttps_epi32(n);
    const __m256i k1 = _mm256_srai_epi32(k, 1);
    const __m256i k2 = _mm256_sub_epi32(k, k1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 p1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
    const __m256 p2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
    const __m256 res = _mm256_mul_ps(_mm256_mul_ps(j, p1), p2);
    const __m256 an = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    const __m256 d = _mm256_cmp_ps(an, _mm256_set1_ps(192), _CMP_GT_OQ);
    if (!_mm256_movemask_ps(d)) {
        /* NaN lanes: k is 0x80000000, p1/p2 finite; j is NaN so res is NaN. */
        return res;
    }
    const __m256 le0 = _mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ);
    const __m256 alt = _mm256_andnot_ps(le0, _mm256_set1_ps(INFINITY));
    return _mm256_blendv_ps(res, alt, d);
}

static inline __m256 v_silu(__m256 x) {
    const __m256 e = v_expf(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* Sum of one 16-lane chunk held as lo = lanes 0..7, hi = lanes 8..15 (reduce_add_ps order). */
static inline float v_sum16(__m256 lo, __m256 hi) {
    const __m256 s = _mm256_add_ps(lo, hi);
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
}

void kern_swiglu16_avx2(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i), u = _mm256_loadu_ps(up + i);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(v_silu(g), u));
    }
}

double kern_softmax_exp16_avx2(float *x, int64_t n, float max) {
    const __m256 vmax = _mm256_set1_ps(max);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i += 16) {
        const __m256 lo = v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        const __m256 hi = v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vmax));
        _mm256_storeu_ps(x + i, lo);
        _mm256_storeu_ps(x + i + 8, hi);
        sum += (double)v_sum16(lo, hi);
    }
    return sum;
}

void kern_geglu_avx2(float *out, const float *gate, const float *up, int64_t n, const uint16_t *table) {
    const __m256 lo = _mm256_set1_ps(-10.0f), hi = _mm256_set1_ps(10.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(gate + i), u = _mm256_loadu_ps(up + i);
        const __m256i h = _mm256_cvtepu16_epi32(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m256i g32 = _mm256_i32gather_epi32((const int *)(const void *)table, h, 2);
        /* keep the low 16 bits of each lane and pack them to 8 halves for vcvtph2ps */
        const __m256i g16 = _mm256_and_si256(g32, _mm256_set1_epi32(0xffff));
        const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(g16), _mm256_extracti128_si256(g16, 1));
        const __m256 t = _mm256_cvtph_ps(packed);
        __m256 y = _mm256_mul_ps(t, u);
        y = _mm256_blendv_ps(y, _mm256_mul_ps(x, u), _mm256_cmp_ps(x, hi, _CMP_GE_OQ));
        y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LE_OQ));
        _mm256_storeu_ps(out + i, y);
    }
    for (; i < n; i++) {
        const float x = gate[i];
        if (x <= -10.0f) out[i] = 0.0f;
        else if (x >= 10.0f) out[i] = x * up[i];
        else out[i] = quant_f16_to_f32(table[quant_f32_to_f16(x)]) * up[i];
    }
}

/* The scalar reference compiled with -mfma: fmaf becomes vfmadd instead of a libm call. */
void kern_rope_avx2(float *x, int n_rot, const float *cos_sin, int neox) {
    vrope_ref(x, n_rot, cos_sin, neox);
}
#else
typedef int vec_ops_avx2_empty_tu; /* non-x86 builds do not compile this file (Makefile) */
#endif
