/* kernels/attention.c: the tiled, threaded kern_attention and the SIMD f16 converters.
 *
 * For every kernel family this build and CPU can run (kern_set_impl):
 *   - kern_f32_to_f16_row is bit-identical to quant_f32_to_f16 on every f16 boundary (each f16 value,
 *     its neighbours, exact ties and ties +-1 ulp), NaNs with payloads, Inf, f32 subnormals and random
 *     bit patterns, at odd lengths and unaligned pointers;
 *   - kern_f16_to_f32_row equals quant_f16_to_f32 on all 65536 inputs (signalling NaNs: a NaN of the
 *     same sign, documented in attention.h);
 *   - kern_attention equals kern_attention_ref bit for bit (same operations, see attention.h) for head
 *     dims 40/64/80/128 and small odd ones, GQA groups 1..8, 1..37 queries at several pos0, sliding
 *     windows, softcap, Q prescale, F16 and F32 caches, several seeds, 1..3 threads and no pool, unaligned
 *     buffers, and cache cells past the last valid position filled with NaN (must not be read).
 * The reference itself is checked against a double-precision attention (bound: 2e-2 relative to the
 * output's scale with an f16 cache, 1e-4 with f32; f16 rounding of Q, K, V and P dominates). */
#include "harness.h"
#include "attention.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const families[] = { "scalar", "avx2", "avx512", "neon", "neon-dotprod" };

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }

/* Converts xs[0..n) in pieces of odd lengths from an unaligned copy and compares with the scalar. */
static void check_f32_to_f16(const char *fam, const float *xs, int64_t n) {
    float *x = malloc((size_t)(n + 1) * sizeof(float));
    uint16_t *y = malloc((size_t)(n + 3) * sizeof(uint16_t));
    if (!x || !y) { CHECK(0, "out of memory"); free(x); free(y); return; }
    memcpy(x + 1, xs, (size_t)n * sizeof(float));
    int64_t bad = 0, first = -1;
    int64_t i = 0;
    for (int len = 1; i < n; len = len % 37 + 1) {
        const int64_t m = n - i < len ? n - i : len;
        kern_f32_to_f16_row(x + 1 + i, y + 1 + i, m);
        i += m;
    }
    for (i = 0; i < n; i++)
        if (y[1 + i] != quant_f32_to_f16(xs[i])) { if (first < 0) first = i; bad++; }
    CHECK(bad == 0, "%s: %lld of %lld f32->f16 differ, first x=0x%08x got 0x%04x want 0x%04x", fam, (long long)bad,
          (long long)n, first >= 0 ? f32_bits(xs[first]) : 0u, first >= 0 ? y[1 + first] : 0u,
          first >= 0 ? quant_f32_to_f16(xs[first]) : 0u);
    free(x);
    free(y);
}

static void test_convert(const char *fam) {
    t_begin("f32->f16 row conversion (%s)", fam);
    const int64_t cap = 65536 * 8 + 200000;
    float *xs = malloc((size_t)cap * sizeof(float));
    if (!xs) { CHECK(0, "out of memory"); t_end(); return; }
    int64_t n = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = quant_f16_to_f32((uint16_t)h);
        const uint32_t b = f32_bits(f);
        xs[n++] = f;
        if ((h & 0x7C00u) == 0x7C00u) continue;  /* Inf/NaN: no neighbours to probe */
        xs[n++] = bits_f32(b + 1);
        xs[n++] = bits_f32(b - 1);
        const float next = quant_f16_to_f32((uint16_t)(h + 1));  /* same sign, next magnitude */
        if ((h & 0x7FFFu) < 0x7BFFu) {
            const float mid = (f + next) * 0.5f;                  /* exact: ties round to even */
            const uint32_t mb = f32_bits(mid);
            xs[n++] = mid;
            xs[n++] = bits_f32(mb + 1);
            xs[n++] = bits_f32(mb - 1);
        } else {
            xs[n++] = (h & 0x8000u) ? -65520.0f : 65520.0f;       /* overflow boundary */
            xs[n++] = bits_f32((f32_bits(65520.0f) - 1u) | (h & 0x8000u ? 0x80000000u : 0u));
            xs[n++] = (h & 0x8000u) ? -1e30f : 1e30f;
        }
    }
    const uint32_t specials[] = { 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF812345u,
                                  0x7FFFFFFFu, 0x7FA00000u, 0x00000001u, 0x80000001u, 0x007FFFFFu, 0x33000000u,
                                  0x33000001u, 0xB3000000u, 0x32FFFFFFu, 0x387FC000u, 0x387FE000u, 0x477FEFFFu,
                                  0x477FF000u };
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) xs[n++] = bits_f32(specials[i]);
    uint64_t st = 0x1234567u;
    while (n < cap) xs[n++] = bits_f32((uint32_t)t_rand_u64(&st));
    check_f32_to_f16(fam, xs, n);
    free(xs);
    t_end();

    t_begin("f16->f32 row conversion, all 65536 inputs (%s)", fam);
    uint16_t *h = malloc(65537 * sizeof(uint16_t));
    float *y = malloc(65537 * sizeof(float));
    if (!h || !y) { CHECK(0, "out of memory"); free(h); free(y); t_end(); return; }
    for (uint32_t i = 0; i < 65536; i++) h[1 + i] = (uint16_t)i;
    for (int64_t i = 0, len = 1; i < 65536; len = len % 29 + 1) {
        const int64_t m = 65536 - i < len ? 65536 - i : len;
        kern_f16_to_f32_row(h + 1 + i, y + 1 + i, m);
        i += m;
    }
    int bad = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        const float want = quant_f16_to_f32((uint16_t)i), got = y[1 + i];
        const bool snan = (i & 0x7C00u) == 0x7C00u && (i & 0x3FFu) != 0 && !(i & 0x200u);
        const bool ok = snan ? isnan(got) && (signbit(got) != 0) == ((i & 0x8000u) != 0)
                             : f32_bits(got) == f32_bits(want);
        if (!ok && bad++ == 0) CHECK(0, "%s: f16 0x%04x -> 0x%08x, want 0x%08x", fam, i, f32_bits(got), f32_bits(want));
    }
    CHECK(bad == 0, "%s: %d f16->f32 differ", fam, bad);
    free(h);
    free(y);
    t_end();
}

typedef struct {
    int D, H, Hk, n_q, pos0, window, n_ctx;
    bool kv_f32, prescale, probs_f32;
    float softcap;
    uint64_t seed;
} attn_case;

/* Double-precision attention of one (query, head) on the cache values as stored (f16 or f32). */
static void attn_double(const kern_attn_params *p, int t, int h, double *out) {
    const int D = p->head_dim, G = p->n_head / p->n_head_kv, kvh = h / G, pos = p->pos0 + t;
    const size_t KD = (size_t)p->n_head_kv * (size_t)D, HD = (size_t)p->n_head * (size_t)D;
    const int start = p->window > 0 && pos - p->window + 1 > 0 ? pos - p->window + 1 : 0;
    double *s = malloc((size_t)(pos + 1) * sizeof(double)), max = -INFINITY, sum = 0;
    if (!s) return;
    for (int k = start; k <= pos; k++) {
        double acc = 0;
        for (int d = 0; d < D; d++) {
            const size_t i = (size_t)k * KD + (size_t)kvh * (size_t)D + (size_t)d;
            const double kd = p->kv_f32 ? ((const float *)p->k)[i] : quant_f16_to_f32(((const uint16_t *)p->k)[i]);
            acc += (double)p->q[(size_t)t * HD + (size_t)h * (size_t)D + (size_t)d] * p->q_scale * kd;
        }
        acc *= p->score_scale;
        if (p->softcap > 0) acc = p->softcap * tanh(acc / p->softcap);
        s[k - start] = acc;
        if (acc > max) max = acc;
    }
    for (int k = start; k <= pos; k++) sum += (s[k - start] = exp(s[k - start] - max));
    for (int d = 0; d < D; d++) out[d] = 0;
    for (int k = start; k <= pos; k++)
        for (int d = 0; d < D; d++) {
            const size_t i = (size_t)k * KD + (size_t)kvh * (size_t)D + (size_t)d;
            const double vd = p->kv_f32 ? ((const float *)p->v)[i] : quant_f16_to_f32(((const uint16_t *)p->v)[i]);
            out[d] += s[k - start] / sum * vd;
        }
    free(s);
}

static void run_case(const attn_case *c, llmpi_pool *const pools[3], int n_fam, const char *const *fams) {
    t_begin("attention D=%d H=%d Hk=%d n_q=%d pos0=%d window=%d %s%s%s softcap=%g seed=%llu", c->D, c->H, c->Hk,
            c->n_q, c->pos0, c->window, c->kv_f32 ? "f32" : "f16", c->prescale ? " prescale" : "",
            c->probs_f32 ? " probs_f32" : "", c->softcap,
            (unsigned long long)c->seed);
    const size_t KD = (size_t)c->Hk * (size_t)c->D, HD = (size_t)c->H * (size_t)c->D;
    const size_t elem = c->kv_f32 ? 4 : 2, cache_elems = (size_t)c->n_ctx * KD, out_n = (size_t)c->n_q * HD;
    /* +1 element / +1 float offsets make every buffer unaligned. */
    char *kbuf = malloc(cache_elems * elem + 4), *vbuf = malloc(cache_elems * elem + 4);
    float *qbuf = malloc((out_n + 1) * sizeof(float)), *ref = malloc(out_n * sizeof(float));
    float *got = malloc((out_n + 1) * sizeof(float));
    double *dbl = malloc((size_t)c->D * sizeof(double));
    void *scratch = NULL;
    if (!kbuf || !vbuf || !qbuf || !ref || !got || !dbl) { CHECK(0, "out of memory"); goto done; }
    uint64_t st = c->seed * 0x9E3779B97F4A7C15ull + 1;
    void *k = kbuf + elem, *v = vbuf + elem;
    const int n_valid = c->pos0 + c->n_q;
    for (size_t i = 0; i < cache_elems; i++) {
        const bool valid = i < (size_t)n_valid * KD;
        const float kv = valid ? t_rand_normal(&st) * 2.0f : NAN, vv = valid ? t_rand_normal(&st) : NAN;
        if (c->kv_f32) { ((float *)k)[i] = kv; ((float *)v)[i] = vv; }
        else { ((uint16_t *)k)[i] = quant_f32_to_f16(kv); ((uint16_t *)v)[i] = quant_f32_to_f16(vv); }
    }
    float *q = qbuf + 1;
    for (size_t i = 0; i < out_n; i++) q[i] = t_rand_normal(&st) * 1.5f;
    const float scale = 1.0f / sqrtf((float)c->D);
    kern_attn_params p = { .n_q = c->n_q, .pos0 = c->pos0, .n_head = c->H, .n_head_kv = c->Hk, .head_dim = c->D,
                           .n_ctx = c->n_ctx, .window = c->window, .kv_f32 = c->kv_f32,
                           .q_scale = c->prescale ? scale : 1.0f, .score_scale = c->prescale ? 1.0f : scale,
                           .softcap = c->softcap, .probs_f32 = c->probs_f32, .q = q, .k = k, .v = v, .out = ref };
    CHECK(kern_attention_ref(&p) == 0, "reference failed");
    if (p.probs_f32 && !p.kv_f32 && c->pos0 + c->n_q > 1) {
        /* The flag must matter: with f16-rounded probabilities some output differs. */
        kern_attn_params pr = p;
        pr.probs_f32 = false;
        pr.out = got + 1;
        CHECK(kern_attention_ref(&pr) == 0, "reference failed");
        size_t n_diff = 0;
        for (size_t i = 0; i < out_n; i++) n_diff += memcmp(&ref[i], &pr.out[i], sizeof(float)) != 0;
        CHECK(n_diff > 0, "probs_f32 made no difference");
    }

    /* The reference against double precision (catches a wrong reference, not just a mismatch). */
    double worst = 0, mag = 0;
    for (int t = 0; t < c->n_q; t += (c->n_q > 5 ? 4 : 1))
        for (int h = 0; h < c->H; h++) {
            attn_double(&p, t, h, dbl);
            for (int d = 0; d < c->D; d++) {
                const double e = fabs(dbl[d] - ref[(size_t)t * HD + (size_t)h * (size_t)c->D + (size_t)d]);
                if (e > worst) worst = e;
                if (fabs(dbl[d]) > mag) mag = fabs(dbl[d]);
            }
        }
    const double bound = (c->kv_f32 ? 1e-4 : 2e-2) * (mag > 0.25 ? mag : 0.25);
    CHECK(worst <= bound, "reference vs double: max |err| %.3g > %.3g", worst, bound);

    scratch = aligned_alloc(64, (kern_attention_scratch_bytes(&p, 3) + 63) / 64 * 64);
    if (!scratch) { CHECK(0, "out of memory"); goto done; }
    p.out = got + 1;
    for (int f = 0; f < n_fam; f++) {
        kern_set_impl(fams[f]);
        for (int th = 0; th < 4; th++) {  /* pools of 1, 2, 3 threads, then no pool */
            for (size_t i = 0; i < out_n; i++) p.out[i] = -12345.0f;  /* every output must be written */
            kern_attention(th < 3 ? pools[th] : NULL, &p, scratch);
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < out_n; i++)
                if (f32_bits(p.out[i]) != f32_bits(ref[i]) && bad++ == 0) first = i;
            CHECK(bad == 0, "%s, %d threads (4 = NULL pool): %zu of %zu outputs differ from the reference, first [%zu] %.9g vs %.9g",
                  fams[f], th + 1, bad, out_n, first, p.out[first], ref[first]);
        }
    }
    kern_set_impl("auto");
done:
    free(kbuf); free(vbuf); free(qbuf); free(ref); free(got); free(dbl); free(scratch);
    t_end();
}

int main(void) {
    const char *fams[5];
    int n_fam = 0;
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (kern_set_impl(families[i]) == 0) {
            fams[n_fam++] = families[i];
            test_convert(families[i]);
        }
    kern_set_impl("auto");

    llmpi_pool *pools[3] = { pool_create(1), pool_create(2), pool_create(3) };
    t_begin("thread pools");
    CHECK(pools[0] && pools[1] && pools[2], "pool_create failed");
    t_end();
    if (!pools[0] || !pools[1] || !pools[2]) return t_summary();

    /* Head dims the brief names plus tiny odd ones (vector tails everywhere). */
    const int dims[] = { 40, 64, 80, 128, 3, 17 };
    const int heads[][2] = { { 4, 4 }, { 8, 2 }, { 6, 3 }, { 4, 1 }, { 8, 1 } };
    const int nqs[] = { 1, 2, 5, 16, 17, 37 };
    const int pos0s[] = { 0, 3, 29 };
    uint64_t seed = 1;
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
        for (size_t hi = 0; hi < sizeof heads / sizeof heads[0]; hi++) {
            /* Rotate through the other parameters so each dim/group pair sees several of them. */
            for (int v = 0; v < 3; v++, seed++) {
                attn_case c = { .D = dims[di], .H = heads[hi][0], .Hk = heads[hi][1],
                                .n_q = nqs[(di + hi + (size_t)v * 2) % 6], .pos0 = pos0s[(hi + (size_t)v) % 3],
                                .window = v == 1 ? 7 : (v == 2 && hi % 2 ? 20 : 0), .kv_f32 = (seed % 3) == 0,
                                .prescale = (seed % 4) == 1, .softcap = (seed % 5) == 2 ? 2.0f : 0.0f,
                                .seed = seed };
                c.n_ctx = c.pos0 + c.n_q + (int)(seed % 7);  /* spare cells hold NaN */
                run_case(&c, pools, n_fam, fams);
            }
        }
    /* Every n_q 1..37 once (block edges for any block size), GQA 4, D 64, f16 and f32. */
    for (int nq = 1; nq <= 37; nq++, seed++) {
        attn_case c = { .D = 64, .H = 8, .Hk = 2, .n_q = nq, .pos0 = (nq * 7) % 23, .window = nq % 3 == 0 ? 9 : 0,
                        .kv_f32 = nq % 2 == 0, .probs_f32 = nq % 4 == 1, .seed = seed };
        c.n_ctx = c.pos0 + c.n_q + 1;
        run_case(&c, pools, n_fam, fams);
    }
    /* Long context: the score budget forces small query blocks (G * keys > budget / 2). */
    {
        attn_case c = { .D = 40, .H = 8, .Hk = 1, .n_q = 37, .pos0 = 3000, .window = 0, .seed = 777 };
        c.n_ctx = c.pos0 + c.n_q + 5;
        run_case(&c, pools, n_fam, fams);
        c.window = 1000; c.kv_f32 = true; c.seed = 778;
        run_case(&c, pools, n_fam, fams);
    }
    for (int i = 0; i < 3; i++) pool_free(pools[i]);
    return t_summary();
}
