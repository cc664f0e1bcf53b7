/* Activation quantizers: the from_float of every vec_dot_type (docs/formats.md §4).
 * The int8 codes these produce must match llama.cpp's exactly, because every matmul against a
 * quantized weight sees only the codes; a single flipped code changes the logits' last bits.
 *
 * n must be a multiple of the block size (32 for Q8_0/Q8_1, 256 for Q8_K); I8_S and the float
 * types take any n >= 1. */
#include "quant.h"
#include "blocks.h"
#include "ref.h"

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* Largest |x| of a 32-element block (NaNs are skipped by the comparison). */
static float block_amax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) {
        const float ax = fabsf(x[j]);
        if (ax > amax) amax = ax;
    }
    return amax;
}

/* roundf, then to int without UB: only a NaN/Inf input can leave [-127, 127] (it then gives 0). */
static int round_away_to_int8(float v) {
    const float r = roundf(v);
    return r >= -128.0f && r <= 127.0f ? (int)r : 0;
}

/* The three ways llama.cpp builds turn x * id into an int8 code for Q8_0/Q8_1 (§4.1). */
typedef enum { Q8_X86, Q8_REF, Q8_ARM } q8_variant;

/* Quantizes one 32-element block: writes qs, returns the f32 scale d (stored as f16 by callers)
 * and the code sum through *sum. |x * id| <= 127 (+1 ulp), so every code is in [-127, 127]. */
static float q8_block(const float *x, int8_t *qs, q8_variant v, int *sum) {
    const float amax = block_amax(x, QK8_0);
    const float d = amax / 127.0f;
    float id;
    if (v == Q8_X86) id = amax != 0.0f ? 127.0f / amax : 0.0f;   /* computed directly, not 1/d */
    else             id = d != 0.0f ? 1.0f / d : 0.0f;
    int s = 0;
    for (int j = 0; j < QK8_0; j++) {
        const float scaled = x[j] * id;
        const int q = v == Q8_REF ? round_away_to_int8(scaled)   /* ties away from zero */
                                  : quant_nearest_int(scaled);   /* ties to even */
        qs[j] = (int8_t)q;
        s += q;
    }
    *sum = s;
    return d;
}

static void q8_0_row(const float *restrict x, void *restrict vy, int64_t n, q8_variant v) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sum;
        const float d = q8_block(x + i * QK8_0, y[i].qs, v, &sum);
        y[i].d = quant_f32_to_f16(d);
    }
}

/* Q8_1 adds s = f16(d * sum(qs)) with the f32 d (before f16 rounding), as ggml does. */
static void q8_1_row(const float *restrict x, void *restrict vy, int64_t n, q8_variant v) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        int sum;
        const float d = q8_block(x + i * QK8_1, y[i].qs, v, &sum);
        y[i].d = quant_f32_to_f16(d);
        y[i].s = quant_f32_to_f16(d * (float)sum);
    }
}

void quantize_row_q8_0_act(const float *restrict x, void *restrict y, int64_t n) { q8_0_row(x, y, n, Q8_X86); }
void quantize_row_q8_0_ref(const float *restrict x, void *restrict y, int64_t n) { q8_0_row(x, y, n, Q8_REF); }
void quantize_row_q8_0_arm(const float *restrict x, void *restrict y, int64_t n) { q8_0_row(x, y, n, Q8_ARM); }
void quantize_row_q8_1_act(const float *restrict x, void *restrict y, int64_t n) { q8_1_row(x, y, n, Q8_X86); }
void quantize_row_q8_1_ref(const float *restrict x, void *restrict y, int64_t n) { q8_1_row(x, y, n, Q8_REF); }
void quantize_row_q8_1_arm(const float *restrict x, void *restrict y, int64_t n) { q8_1_row(x, y, n, Q8_ARM); }

/* Q8_K (§4.4): scale from the *signed* element of largest magnitude (first one wins), so
 * iscale * max = -127 exactly-ish and the opposite extreme may reach +127 (clamped). d = 1/iscale
 * is stored as f32 and is negative when that element is positive. */
void quantize_row_q8_K_act(const float *restrict x, void *restrict vy, int64_t n) {
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (amax == 0.0f) {
            y[i].d = 0.0f;
            memset(y[i].qs, 0, sizeof y[i].qs);
            memset(y[i].bsums, 0, sizeof y[i].bsums);   /* ggml leaves these stale; we define them */
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) {
            const int v = quant_nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        /* 16 codes of |q| <= 127: |bsum| <= 2032 fits int16 */
        for (int g = 0; g < QK_K / 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[i].qs[16 * g + l];
            y[i].bsums[g] = (int16_t)sum;
        }
        y[i].d = 1.0f / iscale;
    }
}

void quantize_row_f32_act(const float *restrict x, void *restrict y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

void quantize_row_f16_act(const float *restrict x, void *restrict vy, int64_t n) {
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = quant_f32_to_f16(x[i]);
}

void quantize_row_bf16_act(const float *restrict x, void *restrict vy, int64_t n) {
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = quant_f32_to_bf16(x[i]);
}

/* I8_S (BitNet fork, §8.3): one absmax scale per row. amax is taken in double with a 1e-5 floor,
 * s = (float)(127 / amax), a_k = clamp(nearest_int(x_k * s), -128, 127) (x_k * s in f32, ties to
 * even), A = sum a_k (|A| <= 128 n, fits i32 for n < 2^24). Layout: codes, f32 s, i32 A (ref.h). */
void quantize_row_i8_s_act(const float *restrict x, void *restrict vy, int64_t n) {
    uint8_t *y = vy;
    int8_t *codes = vy;
    double amax = 0.0;
    for (int64_t k = 0; k < n; k++) {
        const double ax = fabs((double)x[k]);
        if (ax > amax) amax = ax;
    }
    if (amax < 1e-5) amax = 1e-5;
    const float s = (float)(127.0 / amax);
    int32_t sum = 0;
    for (int64_t k = 0; k < n; k++) {
        int q = quant_nearest_int(x[k] * s);
        q = q < -128 ? -128 : q > 127 ? 127 : q;
        codes[k] = (int8_t)q;
        sum += q;
    }
    memcpy(y + I8S_SCALE_OFFSET(n), &s, sizeof s);
    memcpy(y + I8S_SUM_OFFSET(n), &sum, sizeof sum);
}
