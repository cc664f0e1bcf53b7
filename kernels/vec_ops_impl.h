/* Private to kernels/vec_ops*.c: the per-ISA entry points of the float vector ops and the scalar
 * pieces they share. kernels/vec_ops.c holds the scalar reference and picks an ISA per call from
 * the active kernel family (kern_get_impl()), so kern_set_impl("scalar") runs the reference.
 *
 * The numerics are llama.cpp's x86 AVX-512 CPU backend (the build that produced our logit goldens,
 * GGML_NATIVE on an AVX-512F/DQ CPU), reproduced bit for bit on every ISA:
 *   expf   ggml_v_expf, AVX-512 variant: polynomial j ~ 2^b on b in [-ln2/2, ln2/2] and
 *          _mm512_scalef_ps(j, n); |n| > 192 saturates to 0 / +inf. Other ISAs emulate scalef with two
 *          exact power-of-two multiplies (j * 2^k1 is exact and normal for |k1| <= 96, the second
 *          multiply rounds once, so even subnormal results round like vscalefps).
 *   chunks ggml works on 16-lane vectors; a 16-element chunk's sum is _mm512_reduce_add_ps's tree:
 *          s[i] = v[i] + v[i+8], t[i] = s[i] + s[i+4], (t0 + t2) + (t1 + t3).
 * Every ISA file includes this header and must produce exactly what the scalar reference does. */
#ifndef LLMPI_VEC_OPS_IMPL_H
#define LLMPI_VEC_OPS_IMPL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ggml_v_expf's constants (ARM optimized-routines expf, as used by ggml). */
#define VEXP_SHIFT 0x1.8p23f       /* round-to-integer shifter */
#define VEXP_LOG2E 0x1.715476p+0f
#define VEXP_LN2HI 0x1.62e4p-1f
#define VEXP_LN2LO 0x1.7f7d1cp-20f
#define VEXP_C0 0x1.ffffecp-1f
#define VEXP_C1 0x1.fffdb6p-2f
#define VEXP_C2 0x1.555e66p-3f
#define VEXP_C3 0x1.573e2ep-5f
#define VEXP_C4 0x1.0e4020p-7f

/* 2^k as a float for k in [-126, 127] (built from the exponent bits). */
static inline float vexp_pow2i(int32_t k) {
    const uint32_t u = (uint32_t)(k + 127) << 23;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* One lane of ggml_v_expf (AVX-512 variant). fmaf must be a true fused multiply-add (it is: C99
 * fmaf, an instruction on aarch64 and in the -mfma x86 files, glibc's exact fmaf elsewhere). */
static inline float vexp_ref(float x) {
    const float z = fmaf(x, VEXP_LOG2E, VEXP_SHIFT);
    const float n = z - VEXP_SHIFT;
    const float b = fmaf(-n, VEXP_LN2LO, fmaf(-n, VEXP_LN2HI, x));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(VEXP_C4, b, VEXP_C3), u, fmaf(VEXP_C2, b, VEXP_C1)), u,
                         fmaf(VEXP_C0, b, 1.0f));
    if (n != n) return j;                           /* NaN in, NaN out (vscalefps propagates it) */
    if (fabsf(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
    const int32_t k = (int32_t)n, k1 = k / 2, k2 = k - k1;
    const float p = j * vexp_pow2i(k1);             /* exact: |k1| <= 96, j in [0.7, 1.5] */
    return p * vexp_pow2i(k2);                      /* the one rounding, as vscalefps */
}

/* ggml_v_silu lane: x / (1 + exp(0 - x)). */
static inline float vsilu_ref(float x) {
    const float e = vexp_ref(0.0f - x);
    return x / (1.0f + e);
}

/* _mm512_reduce_add_ps's association for one 16-lane chunk. */
static inline float vsum16_ref(const float *v) {
    float s[8], t[4];
    for (int i = 0; i < 8; i++) s[i] = v[i] + v[i + 8];
    for (int i = 0; i < 4; i++) t[i] = s[i] + s[i + 4];
    const float w0 = t[0] + t[2], w1 = t[1] + t[3];
    return w0 + w1;
}

/* ggml's rotate_pairs as gcc -O3 -march=native compiled it (C++, so -ffp-contract=fast):
 *   NEOX (x0 = x[i], x1 = x[i + n_rot/2]), scalar loop:
 *       x0' = fma(c, x0, -(s*x1))      x1' = fma(s, x0, c*x1)
 *   NORMAL (adjacent pairs), vectorized: 16-float and then one 8-float chunk use vfmaddsub:
 *       x0' = fma(c, x0, -(s*x1))      x1' = fma(s, x0, c*x1)   (the same forms as NEOX)
 *     and the last < 8 floats use vaddsubps (no fusion):  x0' = c*x0 - s*x1   x1' = c*x1 + s*x0 */
static inline void vrope_ref(float *x, int n_rot, const float *cos_sin, int neox) {
    const int half = n_rot / 2;
    if (neox) {
        for (int i = 0; i < half; i++) {
            const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
            const float x0 = x[i], x1 = x[i + half];
            const float sx1 = s * x1, cx1 = c * x1;
            x[i] = fmaf(c, x0, -sx1);
            x[i + half] = fmaf(s, x0, cx1);
        }
        return;
    }
    const int fused = (n_rot / 16) * 16 + ((n_rot % 16) >= 8 ? 8 : 0); /* floats done by vfmaddsub */
    for (int i = 0; i < half; i++) {
        const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
        const float x0 = x[2 * i], x1 = x[2 * i + 1];
        const float sx1 = s * x1, cx1 = c * x1;
        if (2 * i < fused) {
            x[2 * i] = fmaf(c, x0, -sx1);
            x[2 * i + 1] = fmaf(s, x0, cx1);
        } else {
            const float cx0 = c * x0, sx0 = s * x0;
            x[2 * i] = cx0 - sx1;
            x[2 * i + 1] = cx1 + sx0;
        }
    }
}


/* ---- per-ISA kernels --------------------------------------------------------------------------
 * swiglu16: out[i] = silu(gate[i]) * up[i] for i < n, n a multiple of 16 (the wrapper does the
 *           leftovers with libm expf like ggml). out may alias gate or up (same index).
 * softmax_exp16: x[i] = exp(x[i] - max) in place for i < n, n a multiple of 16, returns the sum over
 *           chunks of vsum16_ref(chunk), accumulated in double in chunk order (ggml_float).
 * geglu:    out[i] = gelu_f16_table(gate[i]) * up[i] with ggml's +-10 cut-offs, any n; table is the
 *           65536-entry f16 GELU table (plus one padding entry so 32-bit gathers stay in bounds).
 * rope:     kern_rope's contract (kernels.h). */
#if defined(__x86_64__)
void   kern_swiglu16_avx512(float *out, const float *gate, const float *up, int64_t n);
double kern_softmax_exp16_avx512(float *x, int64_t n, float max);
void   kern_geglu_avx512(float *out, const float *gate, const float *up, int64_t n, const uint16_t *table);
void   kern_swiglu16_avx2(float *out, const float *gate, const float *up, int64_t n);
double kern_softmax_exp16_avx2(float *x, int64_t n, float max);
void   kern_geglu_avx2(float *out, const float *gate, const float *up, int64_t n, const uint16_t *table);
void   kern_rope_avx2(float *x, int n_rot, const float *cos_sin, int neox);
#endif
#if defined(__aarch64__)
void   kern_swiglu16_neon(float *out, const float *gate, const float *up, int64_t n);
double kern_softmax_exp16_neon(float *x, int64_t n, float max);
#endif

#endif
