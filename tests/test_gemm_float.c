/* Register-tiled float GEMM (kernels/gemm_float*.c) for F32, F16 and BF16 weights.
 *
 * For every kernel family this build and CPU can run that has GEMM tiles (avx512, avx2 on x86;
 * neon, neon-dotprod on aarch64), every float type, odd shapes (rows 1..37 -- also not multiples of
 * the 4-row tile --, k not a multiple of any SIMD width, tokens 2..19 -- also not multiples of the
 * tile width), three seeds, weights / activations / outputs at addresses that are not 16-byte
 * aligned (element-aligned: the scalar reference reads typed arrays), through kern_matmul (so the
 * dispatch is tested too):
 *   1. bound against the scalar reference kern_gemm_float_ref (quant_traits()->vec_dot, sums in
 *      double). With u = 2^-24, L lanes and M = sum_i |w_i x_i| per output: every lane is a
 *      sequential FMA chain of ceil(k / L) terms, then log2(L) pairwise adds; the reference rounds
 *      once (and, for F32, each product once). So |gemm - ref| <= (ceil(k/L) + log2(L) + 2) * u * M;
 *      the check uses that bound times 1.01 and reports the worst |err| / (u * M) seen.
 *   2. bit-exact against a scalar emulation of the documented per-output float order (lane i % L,
 *      fmaf, the ISA's reduction tree; AVX-512 BF16 in VDPBF16PS order), which is what makes the
 *      results equal to llama.cpp's tinyBLAS on x86.
 *   3. identical bits for 1, 2 and 3 threads, and when the tokens are split into two batches of
 *      >= 2 tokens (a batch of 1 takes the dot kernels, whose order differs, as in llama.cpp).
 *   4. the padding columns of Y (ldy > rows) are never written. */
#include "harness.h"
#include "kernels.h"
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const families[] = { "avx512", "avx2", "neon", "neon-dotprod" };
static const llmpi_type types[] = { LLMPI_TYPE_F32, LLMPI_TYPE_F16, LLMPI_TYPE_BF16 };
/* rows, k, tokens */
static const int shapes[][3] = {
    { 1, 1, 2 },   { 3, 7, 2 },    { 4, 16, 6 },   { 5, 17, 3 },   { 7, 33, 5 },  { 8, 100, 7 },
    { 13, 15, 11 }, { 37, 261, 19 }, { 9, 64, 13 }, { 16, 95, 4 }, { 2, 513, 9 }, { 6, 31, 12 },
};

static float emul_reduce(float *v, int L, int neon) {
    if (neon) return (v[0] + v[1]) + (v[2] + v[3]);   /* vaddvq_f32: FADDP, FADDP */
    for (int h = L / 2; h >= 1; h /= 2)                   /* x86: halves, then 2 + 2, then 1 + 1 */
        for (int i = 0; i < h; i++) v[i] = v[i] + v[i + h];
    return v[0];
}

/* The documented float order of one output (kernels/gemm_float.h) on an ISA with L lanes. */
static float emul_dot(const float *w, const float *x, int64_t k, int L, int neon, int bf16_dp) {
    float acc[16] = { 0 };
    if (bf16_dp) {   /* AVX-512 BF16: per 32 elements, lane j: element 2j+1 then 2j */
        for (int64_t l = 0; l < k; l += 32)
            for (int j = 0; j < 16; j++) {
                const int64_t o = l + 2 * j + 1, e = l + 2 * j;
                acc[j] = fmaf(o < k ? w[o] : 0.0f, o < k ? x[o] : 0.0f, acc[j]);
                acc[j] = fmaf(e < k ? w[e] : 0.0f, e < k ? x[e] : 0.0f, acc[j]);
            }
    } else {
        const int64_t kp = (k + L - 1) / L * L;   /* zero-padded tail */
        for (int64_t i = 0; i < kp; i++)
            acc[i % L] = fmaf(i < k ? w[i] : 0.0f, i < k ? x[i] : 0.0f, acc[i % L]);
    }
    return emul_reduce(acc, L, neon);
}

/* 64-byte aligned block (posix_memalign: no size restriction, unlike C11 aligned_alloc). */
static void *alloc64(size_t n) {
    void *p = NULL;
    return posix_memalign(&p, 64, n) == 0 ? p : NULL;
}

static void run_family(const char *fam, llmpi_pool *pools[3]) {
    const int L = kern_gemm_float_lanes();
    const int neon = strncmp(fam, "neon", 4) == 0;
    const double u = ldexp(1.0, -24);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const llmpi_type t = types[ti];
        const quant_type_traits *tr = quant_traits(t);
        const quant_type_traits *atr = quant_traits(tr->vec_dot_type);
        t_begin("gemm %s %s", fam, tr->name);
        double worst = 0;
        int n_cases = 0;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0] && !t_case_failed(); si++) {
            const int rows = shapes[si][0], n = shapes[si][2];
            const int64_t k = shapes[si][1];
            for (uint64_t seed = 1; seed <= 3 && !t_case_failed(); seed++) {
                uint64_t rng = seed * 0x9E3779B97F4A7C15ull + si * 7919 + ti;
                const size_t es = tr->type_size, rb = (size_t)k * es;
                const int64_t ldy = rows + 3;
                /* element-aligned but not vector-aligned: one element past a 64-byte boundary */
                uint8_t *wbuf = alloc64(64 + rb * rows + 64);
                float *xbuf = alloc64(64 + sizeof(float) * (size_t)k * n + 64);
                float *ybuf = alloc64(64 + sizeof(float) * (size_t)ldy * n + 64);
                float *y_ref = malloc(sizeof(float) * (size_t)ldy * n);
                float *y_alt = malloc(sizeof(float) * (size_t)ldy * n);
                uint8_t *xq = malloc(atr->type_size * (size_t)k * n + 64);
                float *wf = malloc(sizeof(float) * (size_t)k * rows), *xf = malloc(sizeof(float) * (size_t)k * n);
                uint8_t *w = wbuf + es;
                float *x = xbuf + 1, *y = ybuf + 1;
                float *wrow = malloc(sizeof(float) * (size_t)k);
                for (int r = 0; r < rows; r++) {
                    for (int64_t i = 0; i < k; i++) wrow[i] = t_rand_normal(&rng) * 0.5f;
                    tr->from_float(wrow, w + (size_t)r * rb, k);
                    tr->to_float(w + (size_t)r * rb, wf + (size_t)r * k, k);
                }
                for (int64_t i = 0; i < k * n; i++) x[i] = t_rand_normal(&rng);
                for (int q = 0; q < n; q++) {
                    atr->from_float(x + (size_t)q * k, xq + (size_t)q * rb, k);
                    atr->to_float(xq + (size_t)q * rb, xf + (size_t)q * k, k);
                }
                const kern_matrix m = { .data = w, .type = t, .ne0 = k, .ne1 = rows, .row_bytes = rb, .tensor_scale = 1.0f };
                CHECK(kern_gemm_float_available(&m), "%s not served by the GEMM", tr->name);
                void *scratch = malloc(kern_matmul_scratch_bytes(&m, n));
                const float sentinel = -12345.0f;
                for (int64_t i = 0; i < ldy * n; i++) y[i] = sentinel;
                kern_matmul(pools[0], &m, x, n, y, ldy, scratch);
                kern_gemm_float_ref(&m, xq, rb, n, y_ref, ldy);
                for (int q = 0; q < n && !t_case_failed(); q++) {
                    for (int r = 0; r < rows; r++) {
                        const float got = y[(size_t)q * ldy + r], ref = y_ref[(size_t)q * ldy + r];
                        const float *wr = wf + (size_t)r * k, *xr = xf + (size_t)q * k;
                        double M = 0;
                        for (int64_t i = 0; i < k; i++) M += fabs((double)wr[i] * xr[i]);
                        const double bound = ((double)((k + L - 1) / L) + log2(L) + 2) * u * M * 1.01;
                        const double err = fabs((double)got - ref);
                        if (M > 0 && err / (u * M) > worst) worst = err / (u * M);
                        CHECK(err <= bound, "rows %d k %lld n %d seed %llu (r %d, t %d): gemm %.9g ref %.9g |err| %.3g > %.3g",
                              rows, (long long)k, n, (unsigned long long)seed, r, q, got, ref, err, bound);
                        const float em = emul_dot(wr, xr, k, L, neon, t == LLMPI_TYPE_BF16 && L == 16);
                        CHECK(memcmp(&em, &got, sizeof em) == 0,
                              "rows %d k %lld n %d seed %llu (r %d, t %d): gemm %.9g != documented order %.9g",
                              rows, (long long)k, n, (unsigned long long)seed, r, q, got, em);
                        if (t_case_failed()) break;
                    }
                    for (int64_t c = rows; c < ldy; c++)
                        CHECK(y[(size_t)q * ldy + c] == sentinel, "padding column %lld of token %d written", (long long)c, q);
                }
                /* other thread counts, and the tokens in two batches: bit-identical */
                for (int p = 1; p < 3; p++) {
                    kern_matmul(pools[p], &m, x, n, y_alt, ldy, scratch);
                    for (int q = 0; q < n; q++)
                        CHECK(memcmp(y_alt + (size_t)q * ldy, y + (size_t)q * ldy, sizeof(float) * rows) == 0,
                              "rows %d k %lld n %d: %d threads differ from 1", rows, (long long)k, n, p + 1);
                }
                const int n0 = 2 + (int)(seed % 2);
                if (n - n0 >= 2) {   /* both batches on the GEMM (a single token takes the dot kernels) */
                    kern_matmul(pools[1], &m, x, n0, y_alt, ldy, scratch);
                    kern_matmul(pools[1], &m, x + (size_t)n0 * k, n - n0, y_alt + (size_t)n0 * ldy, ldy, scratch);
                    for (int q = 0; q < n; q++)
                        CHECK(memcmp(y_alt + (size_t)q * ldy, y + (size_t)q * ldy, sizeof(float) * rows) == 0,
                              "rows %d k %lld n %d: split %d + %d differs", rows, (long long)k, n, n0, n - n0);
                }
                n_cases++;
                free(scratch); free(wrow); free(wbuf); free(xbuf); free(ybuf); free(y_ref); free(y_alt);
                free(xq); free(wf); free(xf);
            }
        }
        printf("# %-12s %-4s %3d cases, worst |err| / (2^-24 * sum|w x|) = %.2f (lanes %d)\n", fam, tr->name,
               n_cases, worst, L);
        t_end();
    }
}

int main(void) {
    llmpi_pool *pools[3] = { pool_create(1), pool_create(2), pool_create(3) };
    t_begin("thread pools");
    CHECK(pools[0] && pools[1] && pools[2], "pool_create failed");
    t_end();
    if (!(pools[0] && pools[1] && pools[2])) return t_summary();
    int n_families = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        if (kern_set_impl(families[f]) != 0) continue;   /* not built / not on this CPU */
        if (!kern_gemm_float_impl()) continue;
        n_families++;
        run_family(families[f], pools);
    }
    /* The scalar family has no tiles: kern_matmul must keep its vec_dot path. */
    t_begin("scalar family has no GEMM");
    CHECK(kern_set_impl("scalar") == 0, "scalar");
    const kern_matrix m = { .data = NULL, .type = LLMPI_TYPE_F16, .ne0 = 32, .ne1 = 4, .row_bytes = 64, .tensor_scale = 1.0f };
    CHECK(!kern_gemm_float_available(&m) && kern_gemm_float_impl() == NULL, "scalar family claims GEMM tiles");
    kern_set_impl("auto");
    const kern_matrix q = { .data = NULL, .type = LLMPI_TYPE_Q8_0, .ne0 = 32, .ne1 = 4, .row_bytes = 34, .tensor_scale = 1.0f };
    CHECK(!kern_gemm_float_available(&q), "Q8_0 must not go through the float GEMM");
    CHECK(n_families >= 1, "no SIMD family with GEMM tiles on this machine");
    t_end();
    for (int i = 0; i < 3; i++) pool_free(pools[i]);
    return t_summary();
}
