/* Ternary kernels (TQ1_0, TQ2_0, I2_S), both families against the scalar references
 * (quant/vec_dot.c):
 *   - LUT (kernels/ternary*.c): every tile kernel this CPU has (scalar / avx2 / avx512 / neon) and
 *     kern_tl1_matmul on a 2-thread pool must be BIT-IDENTICAL to the reference vec_dot (times the
 *     tensor scale) -- integer sums are exact and the per-row float ops are the reference's.
 *   - MAD (kern_vec_dot of every family): I2_S and the avx512 TQ1_0 / TQ2_0 kernels bit-identical; the
 *     other TQ1_0 / TQ2_0 kernels combine blocks in vector lanes (different float order), so
 *     |err| <= 1e-5 * M, M = sum |w_k a_k| (dequantized).
 *   - TQ2_0 4-row MAD kernels (kern_tq2_rows4_ref over the prepared activations, and the family's
 *     kern_tq2_rows4_kernel) and kern_matmul's MAD path for 1..3 tokens: bit-identical to the reference.
 * Weights are random code bytes (TQ2_0 / I2_S include the never-written code 3 = +2; TQ1_0 any byte)
 * with random-sign f16 scales; activations have outliers and hit -128 codes. Row counts 1..50 (odd,
 * partial tiles), 1..10 blocks, 3 seeds, weight rows / activation rows / tables at odd addresses.
 * Also: the mode selector API and $LLMPI_TERNARY. */
#include "harness.h"
#include "kernels.h"
#include "ternary.h"
#include "quant.h"
#include "ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const llmpi_type types[] = { LLMPI_TYPE_TQ1_0, LLMPI_TYPE_TQ2_0, LLMPI_TYPE_I2_S };
static const int row_counts[] = { 1, 15, 16, 17, 33, 50 };
static const int block_counts_tq[] = { 1, 2, 3, 10 };      /* x 256 */
static const int block_counts_i2s[] = { 1, 3, 5, 20 };     /* x 128: odd chunk counts too */

static void put_f16(uint8_t *p, float f) {
    const uint16_t h = quant_f32_to_f16(f);
    memcpy(p, &h, sizeof h);
}

static void random_rows(llmpi_type t, uint8_t *w, int rows, int64_t n, uint64_t *rng) {
    const size_t rb = quant_row_size(t, n);
    for (size_t i = 0; i < rb * (size_t)rows; i++) w[i] = (uint8_t)(t_rand_u64(rng) >> 56);
    if (t == LLMPI_TYPE_I2_S) return;
    const size_t bsz = quant_traits(t)->type_size;
    const size_t doff = t == LLMPI_TYPE_TQ1_0 ? offsetof(block_tq1_0, d) : offsetof(block_tq2_0, d);
    for (size_t b = 0; b < rb * (size_t)rows / bsz; b++) {
        const float sign = (t_rand_u64(rng) & 1) ? 1.0f : -1.0f;
        put_f16(w + b * bsz + doff, sign * t_rand_uniform(rng, 0.0005f, 0.05f));
    }
}

static void random_x(float *x, int64_t n, uint64_t *rng, int seed) {
    for (int64_t i = 0; i < n; i++) {
        x[i] = t_rand_normal(rng);
        if ((t_rand_u64(rng) & 63) == 0) x[i] *= 20.0f;
    }
    if (seed == 2) x[n / 3] = -1000.0f;   /* the row's largest |x| is negative: codes reach -128 */
}

/* M = sum |w_k a_k| with w dequantized (TQ: scale included) and a the dequantized activation. */
static double magnitude(llmpi_type t, const uint8_t *wr, const uint8_t *act, int64_t n) {
    float *w = malloc((size_t)n * sizeof(float)), *a = malloc((size_t)n * sizeof(float));
    quant_traits(t)->to_float(wr, w, n);
    if (t == LLMPI_TYPE_I2_S) {
        float s;
        memcpy(&s, act + I8S_SCALE_OFFSET(n), sizeof s);
        for (int64_t k = 0; k < n; k++) a[k] = (float)((const int8_t *)act)[k] / s;
    } else {
        quant_traits(LLMPI_TYPE_Q8_K)->to_float(act, a, n);
    }
    double m = 0;
    for (int64_t k = 0; k < n; k++) m += fabs((double)w[k] * a[k]);
    free(w);
    free(a);
    return m;
}

static const char *const lut_families[] = { "scalar", "avx2", "avx512", "neon" };
static const char *const mad_families[] = { "scalar", "avx2", "avx512", "neon", "neon-dotprod" };

/* MAD kernels that keep the reference's float order (integer block sum, then the same float ops). */
static bool mad_exact(llmpi_type t, const char *fam) {
    return t == LLMPI_TYPE_I2_S || strcmp(fam, "scalar") == 0 || ((t == LLMPI_TYPE_TQ1_0 || t == LLMPI_TYPE_TQ2_0) && strcmp(fam, "avx512") == 0);
}

static void test_type(llmpi_type t, llmpi_pool *pool) {
    const quant_type_traits *tr = quant_traits(t);
    const llmpi_type at = tr->vec_dot_type;
    const int *bc = t == LLMPI_TYPE_I2_S ? block_counts_i2s : block_counts_tq;
    const int64_t blk = t == LLMPI_TYPE_I2_S ? QK_I2S : QK_K;
    int lut_checked[4] = { 0 }, lut_bad[4] = { 0 }, mm_checked = 0, mm_bad = 0;
    int mad_checked[5] = { 0 }, mad_bad[5] = { 0 };
    bool lut_avail[4], mad_avail[5];
    char first[4][200] = { "", "", "", "" }, mm_first[200] = "", mad_first[5][200] = { "", "", "", "", "" };
    double mad_worst[5] = { 0 };
    int tables_checked = 0, tables_bad = 0, t4_checked = 0, t4_bad = 0;
    int r4_checked[2] = { 0, 0 }, r4_bad[2] = { 0, 0 };   /* TQ2_0 4-row kernels: reference, family's */
    char r4_first[2][200] = { "", "" };
    for (int f = 0; f < 4; f++) lut_avail[f] = kern_tl1_tile_kernel_named(lut_families[f]) != NULL;
    for (int f = 0; f < 5; f++) mad_avail[f] = kern_set_impl(mad_families[f]) == 0;
    kern_set_impl("auto");
    for (int seed = 1; seed <= 3; seed++) {
        uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)seed + t;
        for (int bi = 0; bi < 4; bi++) {
            const int64_t n = bc[bi] * blk;
            const size_t rb = quant_row_size(t, n), ab = quant_row_size(at, n);
            for (int ri = 0; ri < (int)(sizeof row_counts / sizeof row_counts[0]); ri++) {
                const int rows = row_counts[ri];
                uint8_t *wbuf = malloc(rb * (size_t)rows + 1);
                uint8_t *w = wbuf + 1;                                /* odd address */
                float *x = malloc((size_t)n * sizeof(float));
                uint8_t *abuf = malloc(ab + 3), *act = abuf + 3;    /* odd address */
                uint8_t *tbuf = malloc((size_t)n * KERN_TL1_TABLE_BYTES_PER_ELEM + 5), *tab = tbuf + 5;
                /* the references (and quantizers) use struct pointers: give them aligned copies */
                uint8_t *w_al = malloc(rb * (size_t)rows), *act_al = malloc(ab);
                random_rows(t, w_al, rows, n, &rng);
                memcpy(w, w_al, rb * (size_t)rows);
                random_x(x, n, &rng, seed);
                quant_traits(at)->from_float(x, act_al, n);
                memcpy(act, act_al, ab);
                kern_tl1_build_table(t, n, act, tab);
                {   /* the SIMD table builder of the active family is byte-identical */
                    uint8_t *tab2 = malloc((size_t)n * KERN_TL1_TABLE_BYTES_PER_ELEM + 1);
                    kern_tl1_table_builder()(t, n, act, tab2 + 1);
                    tables_checked++;
                    if (memcmp(tab, tab2 + 1, (size_t)n * KERN_TL1_TABLE_BYTES_PER_ELEM) != 0) tables_bad++;
                    free(tab2);
                }
                const float tscale = t == LLMPI_TYPE_I2_S ? 0.75f : 1.0f;
                kern_matrix km = { .data = w, .type = t, .ne0 = n, .ne1 = rows, .row_bytes = rb, .tensor_scale = tscale };
                kern_tl1_matrix pm;
                CHECK(kern_tl1_pack(&km, &pm) == 0, "pack failed n=%lld rows=%d", (long long)n, rows);
                if (!pm.data) goto next;
                float *ref = malloc((size_t)rows * sizeof(float));
                for (int r = 0; r < rows; r++) tr->vec_dot(n, &ref[r], w_al + (size_t)r * rb, act_al);
                /* LUT tile kernels */
                for (int f = 0; f < 4; f++) {
                    if (!lut_avail[f]) continue;
                    kern_tl1_tile_fn fn = kern_tl1_tile_kernel_named(lut_families[f]);
                    for (int64_t tile = 0; tile < pm.n_tiles; tile++) {
                        float out[KERN_TL1_ROWS];
                        fn(&pm, tile, act, tab, out);
                        for (int r = 0; r < KERN_TL1_ROWS && tile * KERN_TL1_ROWS + r < rows; r++) {
                            const float want = ref[tile * KERN_TL1_ROWS + r];
                            lut_checked[f]++;
                            if (memcmp(&want, &out[r], sizeof want) != 0 && lut_bad[f]++ == 0)
                                snprintf(first[f], sizeof first[f], "n=%lld rows=%d row %lld seed %d: ref %.9g got %.9g",
                                         (long long)n, rows, (long long)(tile * KERN_TL1_ROWS + r), seed, want, out[r]);
                        }
                    }
                }
                if (t == LLMPI_TYPE_TQ2_0) {   /* 4-row MAD kernels over the prepared activations (from the odd address) */
                    const int64_t nb = n / QK_K;
                    kern_tq2_act_block *pa = malloc((size_t)nb * sizeof *pa);
                    float *pd = malloc((size_t)nb * sizeof *pd);
                    kern_tq2_prepare_act(n, act, pa, pd);
                    const kern_tq2_rows4_fn fns[2] = { kern_tq2_rows4_ref, kern_tq2_rows4_kernel() };
                    for (int f = 0; f < 2; f++) {
                        if (!fns[f]) continue;
                        for (int r = 0; r + 4 <= rows; r += 4) {
                            float s4[4];
                            fns[f](n, s4, w + (size_t)r * rb, rb, pa, pd);
                            for (int k = 0; k < 4; k++) {
                                r4_checked[f]++;
                                if (memcmp(&s4[k], &ref[r + k], sizeof(float)) != 0 && r4_bad[f]++ == 0)
                                    snprintf(r4_first[f], sizeof r4_first[f], "n=%lld row %d seed %d: ref %.9g got %.9g",
                                             (long long)n, r + k, seed, ref[r + k], s4[k]);
                            }
                        }
                    }
                    free(pa);
                    free(pd);
                }
                /* 4-tile kernel of the active family (shares table loads) */
                if (kern_tl1_tile4_kernel() && pm.n_tiles >= 4) {
                    float out[4 * KERN_TL1_ROWS];
                    kern_tl1_tile4_kernel()(&pm, pm.n_tiles - 4, act, tab, out);
                    for (int r = 0; r < 4 * KERN_TL1_ROWS; r++) {
                        const int64_t row = (pm.n_tiles - 4) * KERN_TL1_ROWS + r;
                        if (row >= rows) break;
                        t4_checked++;
                        if (memcmp(&ref[row], &out[r], sizeof(float)) != 0) t4_bad++;
                    }
                }
                /* LUT matmul driver (pool, active family), from floats like kern_matmul */
                {
                    void *scratch = malloc(kern_tl1_scratch_bytes(&pm, 1));
                    float *y = malloc((size_t)rows * sizeof(float));
                    kern_tl1_matmul(pool, &pm, x, 1, y, rows, scratch);
                    for (int r = 0; r < rows; r++) {
                        /* kern_matmul converts with kern_act_quant (byte-identical to from_float) */
                        const float want = ref[r] * tscale;
                        mm_checked++;
                        if (memcmp(&want, &y[r], sizeof want) != 0 && mm_bad++ == 0)
                            snprintf(mm_first, sizeof mm_first, "n=%lld rows=%d row %d: ref %.9g got %.9g",
                                     (long long)n, rows, r, want, y[r]);
                    }
                    free(scratch);
                    free(y);
                }
                /* MAD kernels of every family */
                for (int f = 0; f < 5; f++) {
                    if (!mad_avail[f]) continue;
                    kern_set_impl(mad_families[f]);
                    if (strcmp(kern_vec_dot_impl(t), mad_families[f]) != 0) continue;   /* served lower: tested there */
                    const quant_vec_dot_fn dot = kern_vec_dot(t);
                    for (int r = 0; r < rows; r++) {
                        float got;
                        if (f == 0) dot(n, &got, w_al + (size_t)r * rb, act_al);   /* reference: aligned */
                        else dot(n, &got, w + (size_t)r * rb, act);
                        mad_checked[f]++;
                        bool bad;
                        if (mad_exact(t, mad_families[f])) {
                            bad = memcmp(&got, &ref[r], sizeof got) != 0;
                        } else {
                            const double m = magnitude(t, w_al + (size_t)r * rb, act_al, n);
                            const double err = fabs((double)got - ref[r]);
                            if (m > 0 && err / m > mad_worst[f]) mad_worst[f] = err / m;
                            bad = !(err <= 1e-5 * m);
                        }
                        if (bad && mad_bad[f]++ == 0)
                            snprintf(mad_first[f], sizeof mad_first[f], "n=%lld row %d seed %d: ref %.9g got %.9g",
                                     (long long)n, r, seed, ref[r], got);
                    }
                }
                kern_set_impl("auto");
                free(ref);
                kern_tl1_free(&pm);
            next:
                free(w_al);
                free(act_al);
                free(wbuf);
                free(x);
                free(abuf);
                free(tbuf);
            }
        }
    }
    for (int f = 0; f < 4; f++) {
        if (!lut_avail[f]) continue;
        t_begin("lut %-6s %-7s %5d rows bit-exact", tr->name, lut_families[f], lut_checked[f]);
        CHECK(lut_checked[f] > 0 && lut_bad[f] == 0, "%d of %d rows differ; first: %s", lut_bad[f], lut_checked[f], first[f]);
        t_end();
    }
    if (kern_tl1_tile4_kernel()) {
        t_begin("lut %-6s 4-tile kernel %d rows bit-exact", tr->name, t4_checked);
        CHECK(t4_checked > 0 && t4_bad == 0, "%d of %d rows differ", t4_bad, t4_checked);
        t_end();
    }
    if (t == LLMPI_TYPE_TQ2_0) {
        t_begin("mad TQ2_0  4-row reference %d rows bit-exact", r4_checked[0]);
        CHECK(r4_checked[0] > 0 && r4_bad[0] == 0, "%d of %d differ; first: %s", r4_bad[0], r4_checked[0], r4_first[0]);
        t_end();
        if (kern_tq2_rows4_kernel()) {
            t_begin("mad TQ2_0  4-row %s kernel %d rows bit-exact", kern_vec_dot_impl(t), r4_checked[1]);
            CHECK(r4_checked[1] > 0 && r4_bad[1] == 0, "%d of %d differ; first: %s", r4_bad[1], r4_checked[1], r4_first[1]);
            t_end();
        }
    }
    t_begin("lut %-6s tables: %d rows, SIMD builder byte-identical", tr->name, tables_checked);
    CHECK(tables_checked > 0 && tables_bad == 0, "%d of %d tables differ", tables_bad, tables_checked);
    t_end();
    t_begin("lut %-6s matmul  %5d rows bit-exact (2 threads)", tr->name, mm_checked);
    CHECK(mm_checked > 0 && mm_bad == 0, "%d of %d differ; first: %s", mm_bad, mm_checked, mm_first);
    t_end();
    for (int f = 0; f < 5; f++) {
        if (!mad_avail[f] || mad_checked[f] == 0) continue;
        t_begin("mad %-6s %-12s %5d rows, %s (max |err|/M %.1e)", tr->name, mad_families[f], mad_checked[f],
                mad_exact(t, mad_families[f]) ? "bit-exact" : "<= 1e-5 M", mad_worst[f]);
        CHECK(mad_bad[f] == 0, "%d of %d rows off; first: %s", mad_bad[f], mad_checked[f], mad_first[f]);
        t_end();
    }
}

/* A tile kernel must see the indices it is given: a one-code change in one row changes that row only. */
static void test_lut_sensitivity(void) {
    t_begin("lut: flipping one weight code changes exactly that row");
    const llmpi_type t = LLMPI_TYPE_TQ2_0;
    const int64_t n = 256;
    const int rows = 16;
    const size_t rb = quant_row_size(t, n);
    uint8_t *w = calloc((size_t)rows, rb);
    uint64_t rng = 7;
    random_rows(t, w, rows, n, &rng);
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = (float)(i % 7) - 3.0f + 0.25f;
    uint8_t act[sizeof(block_q8_K)];
    quant_traits(LLMPI_TYPE_Q8_K)->from_float(x, act, n);
    uint8_t *tab = malloc((size_t)n * KERN_TL1_TABLE_BYTES_PER_ELEM);
    kern_tl1_build_table(t, n, act, tab);
    kern_matrix km = { .data = w, .type = t, .ne0 = n, .ne1 = rows, .row_bytes = rb, .tensor_scale = 1.0f };
    kern_tl1_matrix a, b;
    float oa[16], ob[16];
    CHECK(kern_tl1_pack(&km, &a) == 0, "pack");
    w[5 * rb + 17] ^= 0x0C;   /* row 5, element 32 + 17: code flips between values */
    CHECK(kern_tl1_pack(&km, &b) == 0, "pack");
    kern_tl1_tile_fn fn = kern_tl1_tile_kernel(NULL);
    fn(&a, 0, act, tab, oa);
    fn(&b, 0, act, tab, ob);
    for (int r = 0; r < 16; r++) {
        if (r == 5) CHECK(oa[r] != ob[r], "row 5 did not change (%g)", oa[r]);
        else CHECK(memcmp(&oa[r], &ob[r], sizeof(float)) == 0, "row %d changed", r);
    }
    kern_tl1_free(&b);
    kern_matrix bad = km;
    bad.ne0 = 128;   /* TQ needs multiples of 256 */
    CHECK(kern_tl1_pack(&bad, &b) == -1 || (kern_tl1_free(&b), 0), "pack accepted ne0=128 for TQ2_0");
    bad = km;
    bad.type = LLMPI_TYPE_Q4_0;
    CHECK(kern_tl1_packed_bytes(&bad) == 0 && !kern_tl1_supported(LLMPI_TYPE_Q4_0), "Q4_0 is not ternary");
    CHECK(kern_tl1_packed_bytes(&km) == 16 * 68, "TQ2_0 tile bytes %zu (want 1088: 64 B codes + 4 B f32 d per row)", kern_tl1_packed_bytes(&km));
    kern_tl1_free(&a);
    kern_tl1_free(&b);
    free(tab);
    free(w);
    t_end();
}

static void test_mode_api(void) {
    t_begin("mode: LLMPI_TERNARY, kern_set_ternary_mode, kern_ternary_impl");
    /* main() set LLMPI_TERNARY=lut before the first use */
    CHECK(strcmp(kern_get_ternary_mode(), "lut") == 0, "env not honoured: %s", kern_get_ternary_mode());
    CHECK(strncmp(kern_ternary_impl(LLMPI_TYPE_TQ2_0), "lut-", 4) == 0, "got %s", kern_ternary_impl(LLMPI_TYPE_TQ2_0));
    CHECK(kern_set_ternary_mode("bogus") == -1 && strcmp(kern_get_ternary_mode(), "lut") == 0, "bogus accepted");
    CHECK(kern_set_ternary_mode("mad") == 0, "mad");
    for (int i = 0; i < 3; i++)
        CHECK(strncmp(kern_ternary_impl(types[i]), "mad-", 4) == 0 && !kern_ternary_use_lut(types[i]), "%s: %s",
              quant_type_name(types[i]), kern_ternary_impl(types[i]));
    CHECK(kern_set_impl("scalar") == 0 && strcmp(kern_ternary_impl(LLMPI_TYPE_TQ1_0), "mad-scalar") == 0, "scalar: %s",
          kern_ternary_impl(LLMPI_TYPE_TQ1_0));
    CHECK(kern_set_ternary_mode("lut") == 0 && strcmp(kern_ternary_impl(LLMPI_TYPE_I2_S), "lut-scalar") == 0, "%s",
          kern_ternary_impl(LLMPI_TYPE_I2_S));
    kern_set_impl("auto");
    CHECK(strcmp(kern_ternary_impl(LLMPI_TYPE_Q4_0), "none") == 0, "Q4_0: %s", kern_ternary_impl(LLMPI_TYPE_Q4_0));
    CHECK(kern_set_ternary_mode(NULL) == 0 && strcmp(kern_get_ternary_mode(), "auto") == 0, "auto");
    t_end();
}

/* kern_matmul goes through the LUT hook in "lut" mode (bit-exact), through MAD in "mad" mode, and
 * repacks when a different matrix appears at the same address. */
static void test_matmul_hook(llmpi_pool *pool) {
    t_begin("kern_matmul: lut / mad / auto modes, cache repacks a changed matrix");
    const llmpi_type t = LLMPI_TYPE_TQ1_0;
    const int64_t n = 512;
    const int rows = 37;
    const size_t rb = quant_row_size(t, n);
    uint8_t *w = malloc(rb * rows);
    uint64_t rng = 11;
    float x[512], y[37], ref[37];
    for (int i = 0; i < 512; i++) x[i] = t_rand_normal(&rng);
    uint8_t act[2 * sizeof(block_q8_K)];
    quant_traits(LLMPI_TYPE_Q8_K)->from_float(x, act, n);
    kern_matrix km = { .data = w, .type = t, .ne0 = n, .ne1 = rows, .row_bytes = rb, .tensor_scale = 1.0f };
    void *scratch = malloc(kern_matmul_scratch_bytes(&km, 1));
    CHECK(kern_matmul_scratch_bytes(&km, 1) >= kern_ternary_scratch_bytes(&km, 1) && kern_ternary_scratch_bytes(&km, 1) > 0,
          "scratch does not cover the LUT path");
    for (int round = 0; round < 2; round++) {   /* round 1: new weights at the same address */
        random_rows(t, w, rows, n, &rng);
        for (int r = 0; r < rows; r++) quant_traits(t)->vec_dot(n, &ref[r], w + (size_t)r * rb, act);
        kern_set_ternary_mode("lut");
        CHECK(kern_ternary_use_lut_shape(t, n, rows), "lut mode");
        kern_matmul(pool, &km, x, 1, y, rows, scratch);
        CHECK(memcmp(y, ref, sizeof ref) == 0, "round %d: lut kern_matmul differs from the reference", round);
        kern_set_ternary_mode("mad");
        CHECK(!kern_ternary_matmul(pool, &km, x, 1, y, rows, scratch), "hook ran in mad mode");
        kern_matmul(pool, &km, x, 1, y, rows, scratch);
        for (int r = 0; r < rows; r++)
            CHECK(fabsf(y[r] - ref[r]) <= 1e-4f * (fabsf(ref[r]) + 1.0f), "round %d mad row %d: %g vs %g", round, r, y[r], ref[r]);
    }
    kern_set_ternary_mode("auto");
#if defined(__x86_64__)
    CHECK(kern_ternary_use_lut_shape(LLMPI_TYPE_TQ1_0, 6912, 2560), "auto: TQ1_0 takes LUT on x86");
#else
    CHECK(!kern_ternary_use_lut_shape(LLMPI_TYPE_TQ1_0, 6912, 2560), "auto: MAD on ARM");
#endif
    CHECK(!kern_ternary_use_lut_shape(LLMPI_TYPE_TQ2_0, 6912, 2560) && !kern_ternary_use_lut_shape(LLMPI_TYPE_I2_S, 1536, 4096),
          "auto: the 2-bit types take MAD (measured table)");
    kern_matrix cross = km;
    cross.act_type = LLMPI_TYPE_I8_S;   /* other activation scheme: not the LUT's business */
    kern_set_ternary_mode("lut");
    CHECK(!kern_ternary_matmul(pool, &cross, x, 1, y, rows, scratch), "hook took a cross-scheme matrix");
    CHECK(!kern_ternary_matmul(pool, &km, x, KERN_TL1_MAX_TOKENS + 1, y, rows, scratch), "hook took a large batch");
    kern_set_ternary_mode("auto");
    kern_ternary_cache_clear();
    free(scratch);
    free(w);
    t_end();
}

/* kern_matmul in "mad" mode on TQ2_0: the 4-row path (kern_ternary_matmul) where the family has a 4-row
 * kernel (else the generic MAD path), for 1..3 tokens and a row count with a tail (37 = 9 x 4 + 1), on a
 * pool and (4-row path) without one:
 * bit-identical to the reference times the tensor scale. */
static void test_tq2_rows_matmul(llmpi_pool *pool) {
    t_begin("kern_matmul TQ2_0 mad: 4-row path, 1..3 tokens, 37 rows, bit-exact");
    const llmpi_type t = LLMPI_TYPE_TQ2_0;
    const int64_t n = 768;
    const int rows = 37, max_tok = 3;
    const size_t rb = quant_row_size(t, n), ab = quant_row_size(LLMPI_TYPE_Q8_K, n);
    uint8_t *w = malloc(rb * rows);
    uint64_t rng = 23;
    random_rows(t, w, rows, n, &rng);
    float *x = malloc((size_t)max_tok * n * sizeof(float)), *y = malloc((size_t)max_tok * rows * sizeof(float));
    float *ref = malloc((size_t)max_tok * rows * sizeof(float));
    uint8_t *act = malloc(ab);
    for (int64_t i = 0; i < max_tok * n; i++) x[i] = t_rand_normal(&rng);
    kern_matrix km = { .data = w, .type = t, .ne0 = n, .ne1 = rows, .row_bytes = rb, .tensor_scale = 0.625f };
    for (int tok = 0; tok < max_tok; tok++) {
        quant_traits(LLMPI_TYPE_Q8_K)->from_float(x + (size_t)tok * n, act, n);
        for (int r = 0; r < rows; r++) {
            quant_traits(t)->vec_dot(n, &ref[tok * rows + r], w + (size_t)r * rb, act);
            ref[tok * rows + r] *= km.tensor_scale;
        }
    }
    kern_set_ternary_mode("mad");
    void *scratch = malloc(kern_matmul_scratch_bytes(&km, max_tok));
    for (int nt = 1; nt <= max_tok; nt++)
        for (int use_pool = 0; use_pool < 2; use_pool++) {
            memset(y, 0, (size_t)max_tok * rows * sizeof(float));
            const bool took = kern_ternary_matmul(use_pool ? pool : NULL, &km, x, nt, y, rows, scratch);
            CHECK(took == (kern_tq2_rows4_kernel() != NULL), "%d tokens: hook took=%d", nt, took);
            if (!took) {   /* no 4-row kernel here: the generic MAD path (kern_matmul needs a pool) */
                if (!use_pool) continue;
                kern_matmul(pool, &km, x, nt, y, rows, scratch);
            }
            CHECK(memcmp(y, ref, (size_t)nt * rows * sizeof(float)) == 0, "%d tokens, pool %d: differs from the reference", nt, use_pool);
        }
    kern_set_ternary_mode("auto");
    free(scratch);
    free(act);
    free(ref);
    free(y);
    free(x);
    free(w);
    t_end();
}

int main(void) {
    setenv("LLMPI_TERNARY", "lut", 1);
    test_mode_api();
    kern_set_ternary_mode("auto");
    llmpi_pool *pool = pool_create(2);
    for (int i = 0; i < 3; i++) test_type(types[i], pool);
    test_lut_sensitivity();
    test_matmul_hook(pool);
    test_tq2_rows_matmul(pool);
    pool_free(pool);
    return t_summary();
}
