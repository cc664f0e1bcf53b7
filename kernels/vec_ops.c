/* Float vector ops of the forward pass, with llama.cpp's x86 AVX-512 CPU numerics (the backend that
 * produced our logit goldens; details and algorithms in kernels/vec_ops_impl.h and docs/engine.md).
 *
 * This file is the scalar reference and the dispatcher: each op asks the active kernel family
 * (kern_get_impl(), so $LLMPI_KERNELS / kern_set_impl() apply) and runs the avx512 / avx2 / neon
 * version if there is one, else the scalar code here. Every version gives bit-identical results:
 * same operations, same rounding, same association; results therefore do not depend on the CPU,
 * including aarch64 (where llama.cpp itself would use a 4-lane NEON expf with a different final
 * step and so differs from its own x86 results by ~1 ulp per exp).
 *
 * No -ffp-contract surprises: C11 mode makes gcc keep a*b+c unfused; clang fuses only within one
 * expression, so the unfused products below are written as separate statements. */
#include "kernels.h"
#include "vec_ops_impl.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

typedef enum { VF_SCALAR, VF_AVX2, VF_AVX512, VF_NEON } vec_family;

/* Which ISA to use now: follows the dot-product family (avx512 needs F+BW+VL+VNNI there, a superset
 * of the AVX-512F these ops use; avx2 needs AVX2+FMA+F16C). */
static vec_family vec_family_now(void) {
    const char *f = kern_get_impl();
    if (f[0] == 'a') return strcmp(f, "avx512") == 0 ? VF_AVX512 : VF_AVX2;
    if (f[0] == 'n') return VF_NEON;
    return VF_SCALAR;
}

/* ---- RMSNorm ---------------------------------------------------------------------------------- */
void kern_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    /* ggml: float squares summed in double, in element order (a serial chain; not vectorized on
     * purpose -- any other order can change the rounded mean). ~4 cycles/element, <0.1% of a token. */
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    if (w) for (int64_t i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
    else   for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale;
}

/* ---- softmax ------------------------------------------------------------------------------------ */
static double softmax_exp16_scalar(float *x, int64_t n, float max) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i += 16) {
        for (int k = 0; k < 16; k++) x[i + k] = vexp_ref(x[i + k] - max);
        sum += (double)vsum16_ref(x + i);
    }
    return sum;
}

static double softmax_exp16(vec_family f, float *x, int64_t n, float max) {
    switch (f) {
#if defined(__x86_64__)
    case VF_AVX512: return kern_softmax_exp16_avx512(x, n, max);
    case VF_AVX2:   return kern_softmax_exp16_avx2(x, n, max);
#endif
#if defined(__aarch64__)
    case VF_NEON:   return kern_softmax_exp16_neon(x, n, max);
#endif
    default:        return softmax_exp16_scalar(x, n, max);
    }
}

void kern_softmax_at(float *x, int64_t n, int64_t col0) {
    if (n <= 0) return;
    const vec_family f = vec_family_now();
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) if (x[i] > max) max = x[i];
    /* Chunks are 16 columns of the full row, aligned to column 0. A partial chunk at either end is
     * run through a 16-float buffer whose absent columns are -inf (exp -> 0, like ggml's masked
     * cells), which leaves the present lanes' values and the tree sum as ggml has them. */
    double sum = 0.0;
    int64_t i = 0;
    const int lead = (int)(col0 & 15);
    if (lead != 0 || n < 16) {
        float buf[16];
        const int64_t take = n < 16 - lead ? n : 16 - lead;
        for (int k = 0; k < 16; k++) buf[k] = -INFINITY;
        memcpy(buf + lead, x, (size_t)take * sizeof(float));
        sum += softmax_exp16(f, buf, 16, max);
        memcpy(x, buf + lead, (size_t)take * sizeof(float));
        i = take;
    }
    const int64_t body = (n - i) & ~(int64_t)15;
    if (body > 0) sum += softmax_exp16(f, x + i, body, max);
    i += body;
    if (i < n) {
        float buf[16];
        const int64_t rest = n - i;
        for (int k = 0; k < 16; k++) buf[k] = -INFINITY;
        memcpy(buf, x + i, (size_t)rest * sizeof(float));
        sum += softmax_exp16(f, buf, 16, max);
        memcpy(x + i, buf, (size_t)rest * sizeof(float));
    }
    const float inv = (float)(1.0 / sum);      /* ggml: sum = 1.0/sum; ggml_vec_scale_f32(.., (float)sum) */
    for (int64_t k = 0; k < n; k++) x[k] *= inv;
}

void kern_softmax(float *x, int64_t n) { kern_softmax_at(x, n, 0); }

/* ---- SiLU / SwiGLU -------------------------------------------------------------------------------- */
float kern_silu(float x) { return x / (1.0f + expf(-x)); }

void kern_swiglu(float *out, const float *gate, const float *up, int64_t n) {
    const int64_t n16 = n & ~(int64_t)15;
    switch (vec_family_now()) {
#if defined(__x86_64__)
    case VF_AVX512: kern_swiglu16_avx512(out, gate, up, n16); break;
    case VF_AVX2:   kern_swiglu16_avx2(out, gate, up, n16); break;
#endif
#if defined(__aarch64__)
    case VF_NEON:   kern_swiglu16_neon(out, gate, up, n16); break;
#endif
    default:
        for (int64_t i = 0; i < n16; i++) {
            const float a = vsilu_ref(gate[i]);
            out[i] = a * up[i];
        }
        break;
    }
    /* ggml's leftovers (n % 16): ggml_silu_f32 with libm expf. */
    for (int64_t i = n16; i < n; i++) {
        const float a = kern_silu(gate[i]);
        out[i] = a * up[i];
    }
}

/* ---- GELU (tanh form through ggml's f16 table) ---------------------------------------------------- */
/* table[h] = f16(gelu(f32(h))) for every f16 bit pattern h, plus one padding entry (SIMD gathers
 * read 32 bits at 2*h). ggml builds it in ggml-cpu.c, compiled as gnu11 -O3 -march=native, where gcc
 * contracts 1 + A*x*x into fma(A*x, x, 1); the rest of the expression has no a*b+c to fuse. */
static uint16_t gelu_table[65536 + 1];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static void gelu_table_init(void) {
    const float c = 0.79788456080286535587989211986876f; /* sqrt(2/pi) */
    for (uint32_t h = 0; h < 65536; h++) {
        const float x = quant_f16_to_f32((uint16_t)h);
        const float ax = 0.044715f * x;
        const float inner = fmaf(ax, x, 1.0f);
        const float cx = c * x;
        const float t = tanhf(cx * inner);
        const float hx = 0.5f * x;
        gelu_table[h] = quant_f32_to_f16(hx * (1.0f + t));
    }
    gelu_table[65536] = 0;
}

static const uint16_t *gelu_table_get(void) {
    pthread_once(&gelu_once, gelu_table_init);
    return gelu_table;
}

static inline float gelu_lookup(const uint16_t *table, float x) {
    return quant_f16_to_f32(table[quant_f32_to_f16(x)]);
}

float kern_gelu(float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    return gelu_lookup(gelu_table_get(), x);
}

void kern_geglu(float *out, const float *gate, const float *up, int64_t n) {
    const uint16_t *table = gelu_table_get();
    switch (vec_family_now()) {
#if defined(__x86_64__)
    case VF_AVX512: kern_geglu_avx512(out, gate, up, n, table); return;
    case VF_AVX2:   kern_geglu_avx2(out, gate, up, n, table); return;
#endif
    default: break;  /* scalar and neon: table lookups are scalar loads anyway */
    }
    /* ggml_vec_geglu_f32 (GGML_GELU_FP16): 0 below -10, x*g above 10, else table(f16(x)) * g. */
    for (int64_t i = 0; i < n; i++) {
        const float x = gate[i];
        if (x <= -10.0f) out[i] = 0.0f;
        else if (x >= 10.0f) out[i] = x * up[i];
        else out[i] = gelu_lookup(table, x) * up[i];
    }
}

/* ---- RoPE ------------------------------------------------------------------------------------------ */
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
#if defined(__x86_64__)
    /* Same arithmetic; the -mfma file turns fmaf into one instruction instead of a libm call. */
    const vec_family f = vec_family_now();
    if (f == VF_AVX2 || f == VF_AVX512) { kern_rope_avx2(x, n_rot, cos_sin, neox); return; }
#endif
    vrope_ref(x, n_rot, cos_sin, neox);
}
