/* Float vector ops (kernels/vec_ops*.c): every SIMD family against the scalar reference, bit for bit
 * (they implement the same algorithm: llama.cpp's x86 AVX-512 numerics, kernels/vec_ops_impl.h);
 * the reference against double-precision maths within documented bounds; and known answers
 * produced by llama.cpp's own ggml CPU ops (libggml-cpu of /work/llmpi-ref, AVX-512 build) for
 * fixed inputs, so "matches ggml" is checked, not just "matches ourselves".
 * Sizes 1..70 and some long rows, several seeds, unaligned pointers, aliasing, special values. */
#include "harness.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ggml outputs (bits) for the inputs built in gold_*() below, dumped with ggml_swiglu_split,
 * ggml_geglu_split, ggml_soft_max_ext (256 cells, cells 5..40 unmasked) and ggml_rope_ext
 * (n_dims 24, pos 7, base 1e4; mode 0 = NORMAL, 2 = NEOX). */
static const uint32_t gold_swiglu[37] = {
    0xb7d50699, 0xb85e02fe, 0xb8e5c718, 0xb96c2778, 0xb9f0f50e, 0xba73fcb7,
    0xbaf506b9, 0xbb73d5bf, 0xbbf02566, 0xbc69a777, 0xbcdfff9a, 0xbd52bc6d,
    0xbdc14e8d, 0xbe2b0373, 0xbe8f1a3a, 0xbeda5fc9, 0xbf0cd8e6, 0xbefadc34,
    0x00000000, 0x3f8a29ff, 0x402aea2a, 0x4091fdf4, 0x40d2e524, 0x410af396,
    0x412d4856, 0x41508c07, 0x4174e8c6, 0x418d4095, 0x41a0b668, 0x41b4dd41,
    0x41c9b989, 0x41df4dc8, 0x41f59b71, 0x420651a5, 0x421232e4, 0x421e7190,
    0x422b0dbe
};
static const uint32_t gold_geglu[37] = {
    0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x80000000,
    0x80000000, 0x80000000, 0x80000000, 0x80000000, 0x80000000, 0xb4a20000,
    0xb78dc000, 0xba1c8e00, 0xbc0dcc00, 0xbd742000, 0xbe57a000, 0xbeb37000,
    0x00000000, 0x3f9d1700, 0x40435400, 0x409fff00, 0x40ddea00, 0x410e8480,
    0x412f7800, 0x4151ce00, 0x41759a00, 0x418d6e00, 0x41a0ca00, 0x41b4e100,
    0x41c9ca00, 0x41df4000, 0x41f59db2, 0x4206523e, 0x42123333, 0x421e71ba,
    0x422b0dd3
};
static const uint32_t gold_softmax[36] = {
    0x3287697b, 0x3ab4007b, 0x3575f08d, 0x3da3766c, 0x385f577c, 0x331893f0,
    0x3b4ad1fc, 0x360a8ef5, 0x3e382f30, 0x38fba77b, 0x33abeb75, 0x3be487fe,
    0x369c1f83, 0x3ecf886c, 0x398dc724, 0x3441b6ad, 0x3c80c033, 0x372fea16,
    0x31f05ad8, 0x3a1fc02e, 0x34da4526, 0x3d11127a, 0x37c636f1, 0x3287697b,
    0x3ab4007b, 0x3575f08d, 0x3da3766c, 0x385f577c, 0x331893f0, 0x3b4ad1fc,
    0x360a8ef5, 0x3e382f30, 0x38fba77b, 0x33abeb75, 0x3be487fe, 0x369c1f83
};
static const uint32_t gold_rope_norm[24] = {
    0xbf35f700, 0xc026fb0e, 0x3f3ee42a, 0x3da4d4f7, 0xbfb99bbb, 0x3f57ae4a,
    0x404ae795, 0xbe8af5a3, 0xbf974f0f, 0xbf9844b1, 0xbde6c488, 0x3f3dd21c,
    0x3fab62e2, 0x40165ca3, 0xc00cce2f, 0xbfc94124, 0xbf3ffa69, 0xbc394f0c,
    0x3f3d4eac, 0x3fc0aad4, 0x40107794, 0xc00f8808, 0xbfbfdae2, 0xbf409433
};
static const uint32_t gold_rope_neox[24] = {
    0xc02ba1f5, 0x3fddcc18, 0x400cb5ba, 0x3f77612b, 0x3f733eda, 0x3fbdd21c,
    0x400c4a43, 0xc0130ae8, 0xbfc45243, 0xbf3bf69d, 0x3b9fb335, 0x3f404a12,
    0xbeb1da03, 0xc004ddd0, 0xbf63b5b7, 0xbf92d986, 0xbef15397, 0x3e66c488,
    0x3f67d11e, 0x3fb68afa, 0x400e8931, 0xc010551d, 0xbfbfffbd, 0xbf3fb5d2
};

static const char *const families[] = { "scalar", "avx2", "avx512", "neon", "neon-dotprod" };

static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
/* Bitwise equality, any NaN equal to any NaN (payloads are not part of the contract). */
static int same(float a, float b) { return (isnan(a) && isnan(b)) || bits(a) == bits(b); }
/* Distance in ulps between two finite floats of the same sign region. */
static double ulps(float a, double ref) {
    const double sp = fabs(ref) < 0x1p-126 ? 0x1p-149 : ldexp(1.0, ilogb(ref) - 23);
    return fabs((double)a - ref) / sp;
}

static float *buf_alloc(size_t n) { return calloc(n + 8, sizeof(float)); }

/* Inputs: mostly N(0, 4^2), plus every 9th element large (|x| up to 150) to hit the saturation
 * paths of exp (|n| > 126 and > 192). */
static void fill(float *x, int64_t n, uint64_t *st) {
    for (int64_t i = 0; i < n; i++) {
        x[i] = 4.0f * t_rand_normal(st);
        if (i % 9 == 4) x[i] = t_rand_uniform(st, -150.0f, 150.0f);
    }
}

static int use_family(const char *f) { return kern_set_impl(f) == 0; }

static void test_swiglu_families(void) {
    for (size_t fi = 1; fi < sizeof families / sizeof *families; fi++) {
        if (!use_family(families[fi])) continue;
        kern_set_impl("auto");
        t_begin("swiglu/geglu %s == scalar (n 1..70, 768, 1000; 3 seeds; unaligned; aliasing)", families[fi]);
        for (uint64_t seed = 1; seed <= 3 && !t_case_failed(); seed++) {
            uint64_t st = seed * 0x9e3779b97f4a7c15ull;
            for (int n = 1; n <= 72 && !t_case_failed(); n++) {
                const int64_t len = n <= 70 ? n : (n == 71 ? 768 : 1000);
                const int off = (int)(seed % 3); /* 0..2 floats: unaligned starts */
                float *g = buf_alloc((size_t)len), *u = buf_alloc((size_t)len);
                float *r = buf_alloc((size_t)len), *s = buf_alloc((size_t)len), *a = buf_alloc((size_t)len);
                fill(g + off, len, &st);
                for (int64_t i = 0; i < len; i++) u[off + i] = t_rand_uniform(&st, -3.0f, 3.0f);
                kern_set_impl("scalar");
                kern_swiglu(r + off, g + off, u + off, len);
                kern_set_impl(families[fi]);
                kern_swiglu(s + off, g + off, u + off, len);
                memcpy(a, g, (size_t)(len + off) * sizeof(float));
                kern_swiglu(a + off, a + off, u + off, len); /* out aliases gate */
                for (int64_t i = 0; i < len; i++) {
                    CHECK(same(r[off + i], s[off + i]), "swiglu n=%lld i=%lld x=%a: %a vs scalar %a",
                          (long long)len, (long long)i, g[off + i], s[off + i], r[off + i]);
                    CHECK(same(r[off + i], a[off + i]), "swiglu aliased n=%lld i=%lld", (long long)len, (long long)i);
                    if (t_case_failed()) break;
                }
                kern_set_impl("scalar");
                kern_geglu(r + off, g + off, u + off, len);
                kern_set_impl(families[fi]);
                kern_geglu(s + off, g + off, u + off, len);
                for (int64_t i = 0; i < len && !t_case_failed(); i++)
                    CHECK(same(r[off + i], s[off + i]), "geglu n=%lld i=%lld x=%a: %a vs scalar %a",
                          (long long)len, (long long)i, g[off + i], s[off + i], r[off + i]);
                free(g); free(u); free(r); free(s); free(a);
            }
        }
        kern_set_impl("auto");
        t_end();
    }
}

static void test_softmax_families(void) {
    for (size_t fi = 1; fi < sizeof families / sizeof *families; fi++) {
        if (!use_family(families[fi])) continue;
        kern_set_impl("auto");
        t_begin("softmax_at %s == scalar (n 1..70, col0 0..17, masked cells, 3 seeds)", families[fi]);
        for (uint64_t seed = 1; seed <= 3 && !t_case_failed(); seed++) {
            uint64_t st = seed * 0x2545f4914f6cdd1dull;
            for (int n = 1; n <= 70 && !t_case_failed(); n++)
                for (int col0 = 0; col0 <= 17 && !t_case_failed(); col0 += (n > 20 ? 5 : 1)) {
                    float x[80], r[80], s[80];
                    const float spread = t_rand_uniform(&st, 0.5f, 60.0f);
                    for (int i = 0; i < n; i++) x[i + 1] = spread * t_rand_normal(&st);
                    if (n > 3) x[1 + n / 2] = -INFINITY; /* a masked cell inside the row */
                    memcpy(r, x, sizeof x);
                    memcpy(s, x, sizeof x);
                    kern_set_impl("scalar");
                    kern_softmax_at(r + 1, n, col0);
                    kern_set_impl(families[fi]);
                    kern_softmax_at(s + 1, n, col0);
                    for (int i = 0; i < n; i++)
                        CHECK(same(r[i + 1], s[i + 1]), "n=%d col0=%d i=%d: %a vs scalar %a", n, col0, i, s[i + 1], r[i + 1]);
                }
        }
        kern_set_impl("auto");
        t_end();
    }
}

static void test_rope_families(void) {
    for (size_t fi = 1; fi < sizeof families / sizeof *families; fi++) {
        if (!use_family(families[fi])) continue;
        kern_set_impl("auto");
        t_begin("rope %s == scalar (n_rot 2..128, NORMAL and NEOX)", families[fi]);
        uint64_t st = 77;
        for (int n_rot = 2; n_rot <= 128 && !t_case_failed(); n_rot += 2)
            for (int neox = 0; neox <= 1; neox++) {
                float cs[128], x[129], r[129], s[129];
                kern_rope_cache(cs, n_rot, 5 + n_rot, 10000.0f, 1.0f, NULL, 1.0f);
                for (int i = 0; i < n_rot; i++) x[i + 1] = 3.0f * t_rand_normal(&st);
                memcpy(r, x, sizeof x);
                memcpy(s, x, sizeof x);
                kern_set_impl("scalar");
                kern_rope(r + 1, n_rot, cs, neox);
                kern_set_impl(families[fi]);
                kern_rope(s + 1, n_rot, cs, neox);
                for (int i = 0; i < n_rot; i++)
                    CHECK(same(r[i + 1], s[i + 1]), "n_rot=%d neox=%d i=%d: %a vs %a", n_rot, neox, i, s[i + 1], r[i + 1]);
            }
        kern_set_impl("auto");
        t_end();
    }
}

/* The reference itself against double-precision maths. Bounds: ggml_v_expf is "1.45 + 0.5 ulp"
 * (ARM optimized-routines, where ggml took it from); silu adds the rounding of 1 + e and of the
 * division, each up to 0.5 ulp of its result plus the propagated exp error: 4.5 ulp. softmax: the
 * float x - max is rounded (relative error of exp up to |x - max| * 2^-24) on top of ~3 ulp.
 * GELU: ggml's float formula cancels in 1 + tanh for x < 0 (absolute error ~ |x| * 2^-23), then
 * rounds to f16 (2^-11 relative, 2^-24 absolute below 2^-14). Runs under the default family. */
static void test_accuracy(void) {
    t_begin("exp/silu accuracy vs double (swiglu with up = 1, |x| <= 87)");
    uint64_t st = 5;
    double worst = 0;
    float g[4096], u[4096], o[4096];
    for (int rep = 0; rep < 8; rep++) {
        for (int i = 0; i < 4096; i++) { g[i] = t_rand_uniform(&st, -87.0f, 87.0f); u[i] = 1.0f; }
        kern_swiglu(o, g, u, 4096);
        for (int i = 0; i < 4096; i++) {
            const double x = g[i], ref = x / (1.0 + exp(-x));
            if (fabs(ref) < 0x1p-126) continue;
            const double e = ulps(o[i], ref);
            if (e > worst) worst = e;
        }
    }
    printf("# worst silu error %.2f ulp\n", worst);
    CHECK(worst <= 4.5, "silu error %.2f ulp > 4.5", worst);
    t_end();

    t_begin("softmax vs double (n 1..300, sum 1, masked -> 0)");
    for (int n = 1; n <= 300 && !t_case_failed(); n += (n < 40 ? 1 : 13)) {
        float x[300];
        double xd[300], mx = -INFINITY, sum = 0;
        for (int i = 0; i < n; i++) {
            x[i] = 10.0f * t_rand_normal(&st);
            if (i % 7 == 3 && n > 1) x[i] = -INFINITY;
            xd[i] = x[i];
            if (xd[i] > mx) mx = xd[i];
        }
        for (int i = 0; i < n; i++) sum += exp(xd[i] - mx);
        kern_softmax_at(x, n, n % 16);
        double s = 0;
        for (int i = 0; i < n; i++) {
            const double ref = exp(xd[i] - mx) / sum;
            s += x[i];
            if (isinf(xd[i])) CHECK(x[i] == 0.0f, "masked cell %d gave %g", i, x[i]);
            else CHECK(fabs(x[i] - ref) <= ref * (4e-7 + fabs(xd[i] - mx) * 0x1p-24) + 1e-37, "n=%d i=%d: %.9g vs %.9g", n, i, x[i], ref);
        }
        CHECK(fabs(s - 1.0) < 1e-5, "n=%d: sum %.9g", n, s);
    }
    t_end();

    t_begin("rope vs double rotation, norm preserved");
    for (int n_rot = 2; n_rot <= 128 && !t_case_failed(); n_rot += 6)
        for (int neox = 0; neox <= 1; neox++) {
            float cs[128], x[128];
            double xd[128];
            kern_rope_cache(cs, n_rot, 123, 10000.0f, 1.0f, NULL, 1.0f);
            for (int i = 0; i < n_rot; i++) xd[i] = x[i] = t_rand_normal(&st);
            kern_rope(x, n_rot, cs, neox);
            for (int i = 0; i < n_rot / 2; i++) {
                const int i0 = neox ? i : 2 * i, i1 = neox ? i + n_rot / 2 : 2 * i + 1;
                const double c = cs[2 * i], s = cs[2 * i + 1];
                const double y0 = xd[i0] * c - xd[i1] * s, y1 = xd[i0] * s + xd[i1] * c;
                const double tol = 2e-7 * (fabs(xd[i0]) + fabs(xd[i1]));
                CHECK(fabs(x[i0] - y0) <= tol && fabs(x[i1] - y1) <= tol, "n_rot=%d neox=%d pair %d", n_rot, neox, i);
            }
        }
    t_end();

    t_begin("gelu table vs double tanh-GELU (f16 precision)");
    for (int i = 0; i < 20000 && !t_case_failed(); i++) {
        const float x = t_rand_uniform(&st, -12.0f, 12.0f);
        const double xh = quant_f16_to_f32(quant_f32_to_f16(x));
        const double ref = x <= -10 ? 0.0 : x >= 10 ? x : 0.5 * xh * (1 + tanh(0.7978845608028654 * xh * (1 + 0.044715 * xh * xh)));
        const float one = 1.0f;
        float y;
        kern_geglu(&y, &x, &one, 1);
        CHECK(fabs(y - ref) <= fabs(ref) * 0x1p-10 + 0x1p-24 + fabs(xh) * 0x1p-23, "gelu(%a) = %a, want %.9g", x, y, ref);
        CHECK(same(y, kern_gelu(x)), "kern_gelu(%a) = %a != geglu %a", x, kern_gelu(x), y);
    }
    t_end();
}

static void test_special(void) {
    for (size_t fi = 0; fi < sizeof families / sizeof *families; fi++) {
        if (!use_family(families[fi])) continue;
        t_begin("special values under %s (NaN, +-inf, huge |x|)", families[fi]);
        float g[32], u[32], o[32];
        for (int i = 0; i < 32; i++) { g[i] = (float)i - 16.0f; u[i] = 1.0f; }
        g[0] = NAN; g[1] = INFINITY; g[2] = -INFINITY; g[3] = 1e30f; g[4] = -1e30f; g[5] = -100.0f;
        g[6] = -87.5f; g[7] = 88.8f; g[8] = 0.0f; g[9] = -0.0f; g[10] = 200.0f; g[11] = -200.0f;
        kern_swiglu(o, g, u, 32);
        CHECK(isnan(o[0]), "silu(NaN) = %g", o[0]);
        CHECK(o[1] == INFINITY, "silu(+inf) = %g", o[1]);
        CHECK(isnan(o[2]), "silu(-inf) = %g (-inf/inf)", o[2]);
        CHECK(o[3] == 1e30f, "silu(1e30) = %g", o[3]);
        CHECK(o[4] == 0.0f && signbit(o[4]), "silu(-1e30) = %g", o[4]);
        CHECK(o[5] == 0.0f && signbit(o[5]), "silu(-100) = %g (exp overflows to inf)", o[5]);
        CHECK(o[6] < 0.0f && o[6] > -1e-35f, "silu(-87.5) = %g", o[6]);
        CHECK(o[7] == 88.8f, "silu(88.8) = %g", o[7]);
        CHECK(o[8] == 0.0f && o[9] == 0.0f, "silu(+-0)");
        CHECK(o[10] == 200.0f && o[11] == 0.0f, "silu(+-200) = %g %g", o[10], o[11]);
        for (int i = 12; i < 32; i++) CHECK(!isnan(o[i]) && !isinf(o[i]), "silu(%g) = %g", g[i], o[i]);

        float x[20];
        for (int i = 0; i < 20; i++) x[i] = (float)i;
        x[7] = NAN;
        kern_softmax_at(x, 20, 3);
        for (int i = 0; i < 20; i++) CHECK(isnan(x[i]), "softmax with a NaN: x[%d] = %g (want NaN row)", i, x[i]);
        for (int i = 0; i < 20; i++) x[i] = (i == 11) ? 1e30f : -INFINITY;
        kern_softmax_at(x, 20, 0);
        for (int i = 0; i < 20; i++) CHECK(x[i] == (i == 11 ? 1.0f : 0.0f), "one live cell: x[%d] = %g", i, x[i]);
        kern_set_impl("auto");
        t_end();
    }
}

/* Known answers from ggml itself (see the tables at the top). */
static void test_ggml_gold(void) {
    for (size_t fi = 0; fi < sizeof families / sizeof *families; fi++) {
        if (!use_family(families[fi])) continue;
        t_begin("bit-exact to ggml's CPU ops under %s", families[fi]);
        float g[37], u[37], o[37];
        for (int i = 0; i < 37; i++) { g[i] = (float)(i - 18) * 0.731f; u[i] = 1.0f + (float)i * 0.0625f; } /* exact: no fma-contraction dependence */
        kern_swiglu(o, g, u, 37);
        for (int i = 0; i < 37; i++) CHECK(bits(o[i]) == gold_swiglu[i], "swiglu[%d] %08x want %08x", i, bits(o[i]), gold_swiglu[i]);
        kern_geglu(o, g, u, 37);
        for (int i = 0; i < 37; i++) CHECK(bits(o[i]) == gold_geglu[i], "geglu[%d] %08x want %08x", i, bits(o[i]), gold_geglu[i]);
        float s[36];
        for (int c = 5; c <= 40; c++) s[c - 5] = (float)((c * 37) % 23 - 11) * 0.8125f;
        kern_softmax_at(s, 36, 5);
        for (int i = 0; i < 36; i++) CHECK(bits(s[i]) == gold_softmax[i], "softmax[%d] %08x want %08x", i, bits(s[i]), gold_softmax[i]);
        for (int neox = 0; neox <= 1; neox++) {
            float cs[24], x[24];
            kern_rope_cache(cs, 24, 7, 10000.0f, 1.0f, NULL, 1.0f);
            for (int i = 0; i < 24; i++) x[i] = (float)(i % 7 - 3) * 0.75f;
            kern_rope(x, 24, cs, neox);
            const uint32_t *want = neox ? gold_rope_neox : gold_rope_norm;
            for (int i = 0; i < 24; i++) CHECK(bits(x[i]) == want[i], "rope neox=%d [%d] %08x want %08x", neox, i, bits(x[i]), want[i]);
        }
        kern_set_impl("auto");
        t_end();
    }
}

int main(void) {
    test_swiglu_families();
    test_softmax_families();
    test_rope_families();
    test_accuracy();
    test_special();
    test_ggml_gold();
    return t_summary();
}
