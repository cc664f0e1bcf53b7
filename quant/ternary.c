/* BitNet b1.58 ternarization (docs/formats.md §5.7).
 *
 * A BitNet checkpoint's projection matrices are trained with "absmean" quantization in the loop:
 *   s = max(mean|W|, 1e-5) over the whole matrix,  T = clamp(round(W / s), -1, 1),  W_q = T * s.
 * TQ1_0 / TQ2_0 / I2_S store exactly such {-s, 0, +s} matrices, so a full-precision checkpoint is
 * ternarized first (this file) and then packed by the block quantizers in quant/quantize.c. */
#include "quantize.h"

#include <math.h>
#include <stdbool.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* The absmean floor of the BitNet reference code (keeps an all-zero matrix finite). */
#define TERNARY_MIN_SCALE 1e-5f

float quant_ternarize_absmean(const float *w, float *out, int64_t n) {
    if (n <= 0) return TERNARY_MIN_SCALE;
    /* mean|W| in double: the sum of millions of f32 magnitudes would otherwise drift. */
    double sum_abs = 0;
    for (int64_t i = 0; i < n; i++) sum_abs += fabs((double)w[i]);
    float scale = (float)(sum_abs / (double)n);
    if (!(scale >= TERNARY_MIN_SCALE)) scale = TERNARY_MIN_SCALE; /* also catches NaN */
    /* Same arithmetic as llama.cpp's convert_hf_to_gguf.py (and the BitNet reference): multiply by
     * the f32 reciprocal, round half to even, clamp, then divide by the reciprocal again. */
    const float iscale = 1.0f / scale;
    for (int64_t i = 0; i < n; i++) {
        float t = rintf(w[i] * iscale); /* default rounding mode: ties to even, like torch.round */
        if (t > 1.0f) t = 1.0f;
        if (t < -1.0f) t = -1.0f;
        if (t != t) t = 0.0f;           /* NaN weight -> 0 */
        out[i] = t / iscale;
    }
    return scale;
}

bool quant_is_ternary(const float *w, int64_t n, float *scale_out) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        const float a = fabsf(w[i]);
        if (a == 0) continue;
        if (!(a == a) || isinf(a)) return false;
        if (s == 0) s = a;
        else if (a != s) return false;
    }
    if (scale_out) *scale_out = s;
    return true;
}
