#include "kernels.h"

#include <math.h>

void kern_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    double sum = 0.0; /* ggml accumulates the sum of squares in double */
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w) for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    else   for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
}

void kern_softmax(float *x, int64_t n) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) if (x[i] > max) max = x[i];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) { x[i] = expf(x[i] - max); sum += x[i]; }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

float kern_silu(float x) { return x / (1.0f + expf(-x)); }

float kern_gelu(float x) {
    /* ggml evaluates GELU through a table indexed by the f16 of x and stores f16 results. */
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    const float xh = quant_f16_to_f32(quant_f32_to_f16(x));
    const float c = 0.79788456080286535587989211986876f; /* sqrt(2/pi) */
    const float r = 0.5f * xh * (1.0f + tanhf(c * xh * (1.0f + 0.044715f * xh * xh)));
    return quant_f16_to_f32(quant_f32_to_f16(r));
}

void kern_rope_cache(float *cos_sin, int n_rot, int pos, float freq_base, float freq_scale,
                     const float *freq_factors, float attn_factor) {
    /* ggml builds theta by repeated f32 multiplication, not powf per pair; match it. */
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < n_rot / 2; i++) {
        float t = theta;
        if (freq_factors) t /= freq_factors[i];
        t *= freq_scale;
        cos_sin[2 * i] = cosf(t) * attn_factor;
        cos_sin[2 * i + 1] = sinf(t) * attn_factor;
        theta *= theta_scale;
    }
}

void kern_rope(float *x, int n_rot, const float *cos_sin, int neox) {
    const int half = n_rot / 2;
    for (int i = 0; i < half; i++) {
        const int i0 = neox ? i : 2 * i;
        const int i1 = neox ? i + half : 2 * i + 1;
        const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
        const float x0 = x[i0], x1 = x[i1];
        x[i0] = x0 * c - x1 * s;
        x[i1] = x0 * s + x1 * c;
    }
}
