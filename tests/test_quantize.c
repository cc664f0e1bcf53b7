/* Weight quantizers (quant/quantize.c, quant/ternary.c).
 *
 *  1. Round trips on synthetic data (normal, uniform, outliers, zeros, constant rows) for every type and
 *     1/2/3 blocks per row: RMSE(dequant(quant(x)) - x) / RMS(x) must stay under a per-type bound
 *     (table below; the bounds are ~1.3x what the algorithms give, so a broken search fails).
 *  2. Bad row lengths return 0 and write nothing; nrows = 0 is a no-op.
 *  3. imatrix variants: with importance weights, the importance-weighted error is not worse than the
 *     reference quantizer's on the same data.
 *  4. Reentrancy: two threads quantizing halves of a tensor give the single-call bytes.
 *  5. llama.cpp parity: every 2-D tensor of fixtures/synth/llama-tiny-F32.gguf quantized with our
 *     quantizer vs the same tensor in llama-tiny-<T>-pure.gguf (llama-quantize --pure): count of
 *     byte-identical tensors (asserted: all of them), and RMSE(ours) <= 1.01 x RMSE(llama.cpp) per type.
 *     The preset-mix files of the other models (gemma2/phi3/qwen2/llama3rope/bitnet) are checked too:
 *     every quantized tensor in them must be reproduced byte for byte from its F32 source.
 *  6. BitNet (bitnet-3M real ternary weights, bitnet-tiny synthetic): F32 projections -> TQ1_0/TQ2_0
 *     byte-identical to llama.cpp's files (token_embd Q6_K too); I2_S codes + scale identical to
 *     bitnet.cpp's *-I2_S.gguf (the 28 filler bytes are ignored).
 *  7. Ternarization (absmean) and the ternary detector.
 * Under qemu (LLMPI_RUN set) the fixture comparisons use a subset of tensors to stay fast. */
#include "harness.h"

#include "blocks.h"
#include "gguf.h"
#include "quant.h"
#include "quantize.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    llmpi_type type;
    quant_quantize_fn quantize;
    /* Max RMSE / RMS(x) on normal and on uniform rows (measured worst case x ~1.3). */
    double max_rel_normal;
    /* Same with 1% outliers at +-30 (bulk N(0,1)): the outliers set the block scales, so the bound is
     * about the bulk being crushed to a coarse grid. */
    double max_rel_outliers;
    /* Max relative RMSE on constant rows (scale fits the constant up to f16 rounding). */
    double max_rel_const;
    /* llama-quantize --pure fixture name part, or NULL. */
    const char *pure;
} qtype;

static const qtype k_types[] = {
    /* type              quantizer        normal  outliers const   fixture */
    {LLMPI_TYPE_F32,    quantize_f32,    0.0,    0.0,    0.0,    NULL},
    {LLMPI_TYPE_F16,    quantize_f16,    0.0003, 0.0003, 0.0003, "F16"},
    {LLMPI_TYPE_BF16,   quantize_bf16,   0.0024, 0.0024, 0.0024, "BF16"},
    {LLMPI_TYPE_Q4_0,   quantize_q4_0,   0.125,  0.21,   0.001,  "Q4_0"},
    {LLMPI_TYPE_Q4_1,   quantize_q4_1,   0.105,  0.16,   0.001,  "Q4_1"},
    {LLMPI_TYPE_Q5_0,   quantize_q5_0,   0.06,   0.12,   0.001,  "Q5_0"},
    {LLMPI_TYPE_Q5_1,   quantize_q5_1,   0.046,  0.066,  0.001,  "Q5_1"},
    {LLMPI_TYPE_Q8_0,   quantize_q8_0,   0.0067, 0.0155, 0.001,  "Q8_0"},
    {LLMPI_TYPE_Q2_K,   quantize_q2_K,   0.41,   0.29,   0.002,  "Q2_K"},
    {LLMPI_TYPE_Q3_K,   quantize_q3_K,   0.20,   0.18,   0.002,  "Q3_K"},
    {LLMPI_TYPE_Q4_K,   quantize_q4_K,   0.093,  0.133,  0.002,  "Q4_K"},
    {LLMPI_TYPE_Q5_K,   quantize_q5_K,   0.048,  0.07,   0.002,  "Q5_K"},
    {LLMPI_TYPE_Q6_K,   quantize_q6_K,   0.023,  0.045,  0.002,  "Q6_K"},
    {LLMPI_TYPE_IQ4_NL, quantize_iq4_nl, 0.105,  0.175,  0.002,  "IQ4_NL"},
    {LLMPI_TYPE_IQ4_XS, quantize_iq4_xs, 0.10,   0.17,   0.002,  "IQ4_XS"},
    {LLMPI_TYPE_TQ1_0,  quantize_tq1_0,  0.85,   0.47,   0.001,  "TQ1_0"},
    {LLMPI_TYPE_TQ2_0,  quantize_tq2_0,  0.85,   0.47,   0.001,  "TQ2_0"},
};
#define N_TYPES ((int)(sizeof k_types / sizeof k_types[0]))

static bool under_emulation(void) {
    const char *run = getenv("LLMPI_RUN");
    return run && *run;
}

/* ---- helpers ---------------------------------------------------------------------------------- */

/* Dequantizes nrows rows with the type table's to_float; false if the type has none. */
static bool dequant_rows(llmpi_type t, const void *q, float *y, int64_t nrows, int64_t n_per_row) {
    const quant_type_traits *tr = quant_traits(t);
    if (!tr || !tr->to_float) return false;
    const size_t rs = quant_row_size(t, n_per_row);
    for (int64_t r = 0; r < nrows; r++) tr->to_float((const uint8_t *)q + r * rs, y + r * n_per_row, n_per_row);
    return true;
}

static double sum_sq_diff(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    return s;
}

static double sum_sq(const float *a, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * a[i];
    return s;
}

enum { DATA_NORMAL, DATA_UNIFORM, DATA_OUTLIERS, DATA_ZEROS, DATA_CONST, DATA_COUNT };
static const char *const k_data_names[DATA_COUNT] = {"normal", "uniform", "outliers", "zeros", "const"};

static void fill_data(int kind, float *x, int64_t nrows, int64_t n_per_row, uint64_t *rng) {
    const int64_t n = nrows * n_per_row;
    for (int64_t i = 0; i < n; i++) {
        switch (kind) {
        case DATA_NORMAL: x[i] = 0.02f * t_rand_normal(rng); break;
        case DATA_UNIFORM: x[i] = t_rand_uniform(rng, -0.5f, 0.5f); break;
        case DATA_OUTLIERS: {
            const float u = t_rand_uniform(rng, 0.0f, 1.0f);
            x[i] = u < 0.01f ? 30.0f * (u < 0.005f ? -1.0f : 1.0f) : t_rand_normal(rng);
        } break;
        case DATA_ZEROS: x[i] = 0.0f; break;
        case DATA_CONST: {
            /* One constant per row, alternating sign: -0.75, +1.25, -1.75, ... */
            const int64_t r = i / n_per_row;
            x[i] = (float)((r % 2) ? 1 : -1) * (0.75f + 0.5f * (float)r);
        } break;
        }
    }
}

/* ---- 1. round trips ----------------------------------------------------------------------------- */

static void test_round_trips(void) {
    uint64_t rng = 0x1234567ull;
    for (int ti = 0; ti < N_TYPES; ti++) {
        const qtype *qt = &k_types[ti];
        const quant_type_traits *tr = quant_traits(qt->type);
        for (int kind = 0; kind < DATA_COUNT; kind++) {
            t_begin("round trip %s %s", tr ? tr->name : "?", k_data_names[kind]);
            if (!tr || !tr->to_float) {
                CHECK(0, "type %u has no to_float in the type table", qt->type);
                continue;
            }
            double worst = 0;
            for (int nblocks = 1; nblocks <= 3; nblocks++) {
                const int64_t n_per_row = tr->blck_size == 1 ? 32 * nblocks : tr->blck_size * nblocks;
                const int64_t nrows = 4;
                const int64_t n = nrows * n_per_row;
                float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
                const size_t bytes = quant_row_size(qt->type, n_per_row) * (size_t)nrows;
                uint8_t *q = malloc(bytes + 64);
                fill_data(kind, x, nrows, n_per_row, &rng);
                memset(q, 0xAB, bytes + 64);
                const size_t got = qt->quantize(x, q, nrows, n_per_row, NULL);
                CHECK(got == bytes, "%s: returned %zu bytes, expected %zu", tr->name, got, bytes);
                bool tail_ok = true;
                for (int k = 0; k < 64; k++) tail_ok = tail_ok && q[bytes + k] == 0xAB;
                CHECK(tail_ok, "%s wrote past its %zu bytes", tr->name, bytes);
                dequant_rows(qt->type, q, y, nrows, n_per_row);
                const double err = sum_sq_diff(x, y, n), ref = sum_sq(x, n);
                if (kind == DATA_ZEROS) {
                    CHECK(err == 0, "%s: all-zero input does not dequantize to zeros (sum sq %g)", tr->name, err);
                } else {
                    const double rel = sqrt(err / ref);
                    if (rel > worst) worst = rel;
                    /* Q8_0 / K-quants at f16-exact constants: also no NaN anywhere. */
                    bool finite = true;
                    for (int64_t i = 0; i < n; i++) finite = finite && isfinite(y[i]);
                    CHECK(finite, "%s: non-finite output", tr->name);
                }
                /* Determinism: a second call gives the same bytes. */
                uint8_t *q2 = malloc(bytes + 1);
                qt->quantize(x, q2, nrows, n_per_row, NULL);
                CHECK(memcmp(q, q2, bytes) == 0, "%s: two calls on the same input differ", tr->name);
                free(q2);
                free(x);
                free(y);
                free(q);
            }
            const double bound = kind == DATA_OUTLIERS ? qt->max_rel_outliers
                                 : kind == DATA_CONST  ? qt->max_rel_const
                                                       : qt->max_rel_normal;
            if (getenv("LLMPI_TEST_VERBOSE"))
                printf("# %-6s %-8s worst relative RMSE %.5f (bound %.5f)\n", tr->name, k_data_names[kind], worst, bound);
            if (kind != DATA_ZEROS)
                CHECK(worst <= bound, "%s %s: relative RMSE %.5f > bound %.5f", tr->name, k_data_names[kind], worst, bound);
        }
        t_end();
    }
}

/* I2_S takes ternary tensors: exact reconstruction, scale = max|x|, tail = f32 scale + 28 zeros. */
static void test_i2_s_round_trip(void) {
    t_begin("I2_S ternary round trip and tail");
    uint64_t rng = 99;
    const int64_t nrows = 3, n_per_row = 256, n = nrows * n_per_row;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    const float s = 0.3f;
    for (int64_t i = 0; i < n; i++) x[i] = (float)((int)(t_rand_u64(&rng) % 3) - 1) * s;
    const size_t expect = (size_t)n / 4 + 32;
    uint8_t *q = malloc(expect + 16);
    memset(q, 0xCD, expect + 16);
    const size_t got = quantize_i2_s(x, q, nrows, n_per_row, NULL);
    CHECK(got == expect, "returned %zu, expected n/4 + 32 = %zu", got, expect);
    CHECK(q[expect] == 0xCD, "wrote past the tensor");
    float scale;
    memcpy(&scale, q + n / 4, 4);
    CHECK(scale == s, "scale %g, expected %g", scale, s);
    bool zeros = true;
    for (int k = 4; k < 32; k++) zeros = zeros && q[n / 4 + k] == 0;
    CHECK(zeros, "the 28 filler bytes are not zero");
    /* Element 128g + 32c + p lives in byte 32g + p at bits 6-2c (docs/formats.md §3.19). */
    const int64_t e = 128 + 64 + 5; /* g = 1, c = 2, p = 5 */
    const int code = (q[32 + 5] >> 2) & 3;
    CHECK(code == (int)lrintf(x[e] / s) + 1, "element %lld code %d, value %g", (long long)e, code, x[e]);
    CHECK(quant_dequantize_tensor(LLMPI_TYPE_I2_S, q, y, n_per_row, nrows), "quant_dequantize_tensor(I2_S) failed");
    CHECK(sum_sq_diff(x, y, n) == 0, "I2_S ternary round trip is not exact");
    CHECK(quantize_i2_s(x, q, nrows, 100, NULL) == 0, "row length 100 (not a multiple of 128) accepted");
    free(x);
    free(y);
    free(q);
    t_end();
}

/* ---- 2. bad lengths ---------------------------------------------------------------------------- */

static void test_bad_lengths(void) {
    t_begin("bad row lengths return 0 and write nothing");
    float x[600];
    for (int i = 0; i < 600; i++) x[i] = (float)i * 0.01f;
    uint8_t q[2048];
    for (int ti = 0; ti < N_TYPES; ti++) {
        const qtype *qt = &k_types[ti];
        const quant_type_traits *tr = quant_traits(qt->type);
        const int64_t blck = tr ? tr->blck_size : 1;
        const int64_t bad[] = {blck + 1, blck > 1 ? blck - 1 : 0, blck > 2 ? blck / 2 + 1 : -1, 0, -32};
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            if (bad[k] > 512) continue;
            memset(q, 0x5A, sizeof q);
            const size_t got = qt->quantize(x, q, 1, bad[k], NULL);
            bool untouched = true;
            for (size_t i = 0; i < sizeof q; i++) untouched = untouched && q[i] == 0x5A;
            if (blck == 1 && bad[k] > 0) continue; /* any positive length is valid for F32/F16/BF16 */
            CHECK(got == 0, "%s n_per_row %lld: returned %zu", tr ? tr->name : "?", (long long)bad[k], got);
            CHECK(untouched, "%s n_per_row %lld: wrote to dst", tr ? tr->name : "?", (long long)bad[k]);
        }
        /* nrows = 0: nothing to do, nothing written. */
        memset(q, 0x5A, sizeof q);
        const size_t got = qt->quantize(x, q, 0, blck == 1 ? 32 : blck, NULL);
        CHECK(got == 0 && q[0] == 0x5A, "%s nrows 0: returned %zu / wrote", tr ? tr->name : "?", got);
    }
    t_end();
}

/* Non-finite and huge inputs: the bytes are unspecified, but no crash and no UB (UBSan build). */
static void test_non_finite(void) {
    t_begin("NaN / inf / huge inputs do not crash");
    float x[512];
    const float specials[] = {NAN, INFINITY, -INFINITY, 3.0e38f, -3.0e38f, 1e-40f};
    uint64_t rng = 31;
    for (int i = 0; i < 512; i++) x[i] = t_rand_normal(&rng);
    for (int i = 0; i < 512; i += 37) x[i] = specials[(i / 37) % 6];
    uint8_t q[2048];
    for (int ti = 0; ti < N_TYPES; ti++) {
        const quant_type_traits *tr = quant_traits(k_types[ti].type);
        const size_t got = k_types[ti].quantize(x, q, 2, 256, NULL);
        CHECK(got == quant_row_size(k_types[ti].type, 256) * 2, "%s returned %zu", tr ? tr->name : "?", got);
        float imat[256];
        for (int j = 0; j < 256; j++) imat[j] = 1.0f;
        k_types[ti].quantize(x, q, 2, 256, imat);
    }
    CHECK(quantize_i2_s(x, q, 2, 256, NULL) == 2 * 256 / 4 + 32, "I2_S size");
    float out[512];
    quant_ternarize_absmean(x, out, 512);
    CHECK(!quant_is_ternary(x, 512, NULL), "non-finite input reported ternary");
    t_end();
}

/* ---- 3. imatrix --------------------------------------------------------------------------------- */

static void test_imatrix(void) {
    uint64_t rng = 777;
    const int64_t nrows = 16, n_per_row = 512, n = nrows * n_per_row;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *imat = malloc(n_per_row * sizeof *imat);
    uint8_t *q = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) x[i] = t_rand_normal(&rng);
    /* Skewed importance: a few columns matter 100x more (like activation outlier channels). */
    for (int64_t j = 0; j < n_per_row; j++) imat[j] = (j % 17 == 3) ? 100.0f : t_rand_uniform(&rng, 0.5f, 1.5f);
    for (int ti = 0; ti < N_TYPES; ti++) {
        const qtype *qt = &k_types[ti];
        const quant_type_traits *tr = quant_traits(qt->type);
        if (!tr || !tr->is_quantized || !tr->to_float) continue;
        t_begin("imatrix %s", tr->name);
        double werr[2];
        for (int with = 0; with < 2; with++) {
            const size_t got = qt->quantize(x, q, nrows, n_per_row, with ? imat : NULL);
            CHECK(got == quant_row_size(qt->type, n_per_row) * nrows, "%s: returned %zu", tr->name, got);
            dequant_rows(qt->type, q, y, nrows, n_per_row);
            double s = 0;
            for (int64_t i = 0; i < n; i++) {
                const double d = (double)x[i] - y[i];
                s += imat[i % n_per_row] * d * d;
            }
            werr[with] = s;
        }
        /* Types that ignore the imatrix (Q8_0, TQ*) must give identical results; the others must use it
         * to lower the importance-weighted error (allow 2% noise for the ones that gain little). */
        const bool ignores = qt->type == LLMPI_TYPE_Q8_0 || qt->type == LLMPI_TYPE_TQ1_0 || qt->type == LLMPI_TYPE_TQ2_0;
        if (ignores) CHECK(werr[1] == werr[0], "%s: imatrix changed the output", tr->name);
        else CHECK(werr[1] <= 1.02 * werr[0], "%s: weighted error with imatrix %.6g > without %.6g", tr->name, werr[1], werr[0]);
        printf("# imatrix %-6s weighted SSE ref %.5g -> imatrix %.5g (%.3fx)\n", tr->name, werr[0], werr[1], werr[1] / werr[0]);
        t_end();
    }
    free(x);
    free(y);
    free(imat);
    free(q);
}

/* ---- 4. reentrancy ---------------------------------------------------------------------------- */

typedef struct {
    quant_quantize_fn fn;
    const float *src;
    void *dst;
    int64_t nrows, n_per_row;
} quant_job;

static void *run_job(void *arg) {
    quant_job *j = arg;
    j->fn(j->src, j->dst, j->nrows, j->n_per_row, NULL);
    return NULL;
}

static void test_threads(void) {
    t_begin("two threads on disjoint row ranges = one call");
    uint64_t rng = 4242;
    const int64_t nrows = 8, n_per_row = 512, n = nrows * n_per_row;
    float *x = malloc(n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = t_rand_normal(&rng);
    const llmpi_type types[] = {LLMPI_TYPE_Q4_K, LLMPI_TYPE_IQ4_XS, LLMPI_TYPE_Q3_K};
    quant_quantize_fn fns[] = {quantize_q4_K, quantize_iq4_xs, quantize_q3_K};
    for (int k = 0; k < 3; k++) {
        const size_t rs = quant_row_size(types[k], n_per_row);
        uint8_t *one = malloc(rs * nrows), *two = malloc(rs * nrows);
        fns[k](x, one, nrows, n_per_row, NULL);
        quant_job jobs[2] = {{fns[k], x, two, nrows / 2, n_per_row},
                             {fns[k], x + (nrows / 2) * n_per_row, two + rs * (nrows / 2), nrows / 2, n_per_row}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, run_job, &jobs[i]);
        for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
        CHECK(memcmp(one, two, rs * nrows) == 0, "%s: threaded result differs", quant_type_name(types[k]));
        free(one);
        free(two);
    }
    free(x);
    t_end();
}

/* ---- 5./6. fixtures vs llama.cpp ------------------------------------------------------------- */

static quant_quantize_fn quantizer_for(uint32_t type) {
    for (int i = 0; i < N_TYPES; i++)
        if (k_types[i].type == type) return k_types[i].quantize;
    return NULL;
}

typedef struct {
    int n_tensors, n_identical;
    double err_ours, err_ref, ref_sq;
    int64_t n_elems;
} cmp_stats;

/* Quantizes the F32 source of tensor qt (found by name in src) with our quantizer for qt's type and
 * compares: byte identity and squared error of both dequantizations. Returns false if not comparable. */
static bool compare_tensor(const gguf_file *src, const gguf_tensor *qt, cmp_stats *st, bool want_rmse) {
    const gguf_tensor *ft = gguf_find_tensor(src, qt->name);
    if (!ft || ft->type != LLMPI_TYPE_F32 || ft->n_elements != qt->n_elements || ft->ne[0] != qt->ne[0]) return false;
    const quant_quantize_fn fn = quantizer_for(qt->type);
    if (!fn) return false;
    const int64_t n_per_row = qt->ne[0], nrows = qt->n_elements / n_per_row;
    float *x = malloc((size_t)qt->n_elements * sizeof *x);
    memcpy(x, ft->data, (size_t)qt->n_elements * sizeof *x); /* mapped data may be unaligned for floats */
    const size_t bytes = (size_t)qt->nbytes;
    uint8_t *ours = malloc(bytes);
    const size_t got = fn(x, ours, nrows, n_per_row, NULL);
    CHECK(got == bytes, "%s: quantizer returned %zu bytes, tensor has %zu", qt->name, got, bytes);
    st->n_tensors++;
    if (got == bytes && memcmp(ours, qt->data, bytes) == 0) st->n_identical++;
    if (want_rmse) {
        float *y = malloc((size_t)qt->n_elements * sizeof *y);
        uint8_t *theirs = malloc(bytes);
        memcpy(theirs, qt->data, bytes);
        if (dequant_rows(qt->type, ours, y, nrows, n_per_row)) st->err_ours += sum_sq_diff(x, y, qt->n_elements);
        if (dequant_rows(qt->type, theirs, y, nrows, n_per_row)) st->err_ref += sum_sq_diff(x, y, qt->n_elements);
        st->ref_sq += sum_sq(x, qt->n_elements);
        st->n_elems += qt->n_elements;
        free(y);
        free(theirs);
    }
    free(x);
    free(ours);
    return true;
}

/* Under emulation only a few small tensors per file are compared. */
static bool tensor_selected(const char *name, bool lean) {
    if (!lean) return true;
    return strcmp(name, "blk.0.attn_k.weight") == 0 || strcmp(name, "blk.1.attn_v.weight") == 0 ||
           strcmp(name, "blk.0.ffn_down.weight") == 0;
}

static void test_llama_tiny(void) {
    const bool lean = under_emulation();
    gguf_file src;
    gguf_error err;
    t_begin("open llama-tiny-F32");
    if (gguf_open(t_shared("fixtures/synth/llama-tiny-F32.gguf"), true, &src, &err) != GGUF_OK) {
        CHECK(0, "llama-tiny-F32.gguf: %s", err.msg);
        return;
    }
    t_end();
    printf("# type    identical  rmse(ours)    rmse(llama.cpp)  ratio    (relative to rms of the source)\n");
    for (int ti = 0; ti < N_TYPES; ti++) {
        if (!k_types[ti].pure) continue;
        const uint32_t type = k_types[ti].type;
        char rel[128];
        snprintf(rel, sizeof rel, "fixtures/synth/llama-tiny-%s-pure.gguf", k_types[ti].pure);
        t_begin("llama-tiny %s vs llama.cpp", quant_type_name(type));
        gguf_file qf;
        if (gguf_open(t_shared(rel), true, &qf, &err) != GGUF_OK) {
            CHECK(0, "%s: %s", rel, err.msg);
            continue;
        }
        cmp_stats st = {0};
        for (uint64_t i = 0; i < qf.n_tensors; i++) {
            const gguf_tensor *t = &qf.tensors[i];
            if (t->n_dims != 2 || t->type != type || !tensor_selected(t->name, lean)) continue;
            compare_tensor(&src, t, &st, true);
        }
        const double rms = sqrt(st.ref_sq / (double)(st.n_elems ? st.n_elems : 1));
        const double r_ours = sqrt(st.err_ours / (double)(st.n_elems ? st.n_elems : 1)) / rms;
        const double r_ref = sqrt(st.err_ref / (double)(st.n_elems ? st.n_elems : 1)) / rms;
        printf("# %-7s %2d/%-2d      %.6e  %.6e     %.4f\n", quant_type_name(type), st.n_identical, st.n_tensors, r_ours,
               r_ref, r_ref > 0 ? r_ours / r_ref : 1.0);
        CHECK(st.n_tensors >= (lean ? 3 : 16), "only %d %s tensors compared", st.n_tensors, quant_type_name(type));
        CHECK(r_ours <= 1.01 * r_ref, "%s: RMSE %.6e > 1.01 x llama.cpp's %.6e", quant_type_name(type), r_ours, r_ref);
        /* Every type reproduces llama-quantize exactly (x86-64 gcc/clang, aarch64 under qemu): assert it,
         * so any drift in an algorithm detail shows up here. */
        CHECK(st.n_identical == st.n_tensors, "%s: only %d of %d tensors byte-identical to llama.cpp",
                  quant_type_name(type), st.n_identical, st.n_tensors);
        gguf_free(&qf);
        t_end();
    }
    gguf_free(&src);
}

/* Every non-F32 tensor of a llama-quantize output (any preset mix) reproduced from the F32 source. */
static void compare_whole_file(const gguf_file *src, const char *rel, bool lean) {
    gguf_error err;
    gguf_file qf;
    t_begin("%s byte-identical", rel);
    if (gguf_open(t_shared(rel), true, &qf, &err) != GGUF_OK) {
        CHECK(0, "%s: %s", rel, err.msg);
        return;
    }
    cmp_stats by_type[LLMPI_TYPE_COUNT] = {{0}};
    int compared = 0;
    for (uint64_t i = 0; i < qf.n_tensors; i++) {
        const gguf_tensor *t = &qf.tensors[i];
        if (t->type == LLMPI_TYPE_F32 || t->type >= LLMPI_TYPE_COUNT) continue;
        if (lean && !(strstr(t->name, "blk.0.") || strcmp(t->name, "token_embd.weight") == 0)) continue;
        if (compare_tensor(src, t, &by_type[t->type], false)) compared++;
    }
    CHECK(compared > 0, "no tensor compared");
    for (int ty = 0; ty < LLMPI_TYPE_COUNT; ty++) {
        if (!by_type[ty].n_tensors) continue;
        printf("# %s: %s %d/%d identical\n", rel, quant_type_name(ty), by_type[ty].n_identical, by_type[ty].n_tensors);
        CHECK(by_type[ty].n_identical == by_type[ty].n_tensors, "%s: %s only %d of %d tensors identical", rel,
              quant_type_name(ty), by_type[ty].n_identical, by_type[ty].n_tensors);
    }
    gguf_free(&qf);
    t_end();
}

static void test_preset_mixes(void) {
    const bool lean = under_emulation();
    static const char *const pairs[][2] = {
        /* (llama-tiny's own Q4_K_M/Q2_K/Q3_K_M mixes add nothing over its -pure files: same tensors, same types.) */
        {"fixtures/synth/gemma2-tiny-F32.gguf", "fixtures/synth/gemma2-tiny-Q4_K_M.gguf"},
        {"fixtures/synth/phi3-tiny-F32.gguf", "fixtures/synth/phi3-tiny-Q4_K_M.gguf"},
        {"fixtures/synth/qwen2-tiny-F32.gguf", "fixtures/synth/qwen2-tiny-Q8_0.gguf"},
        {"fixtures/synth/llama3rope-tiny-F32.gguf", "fixtures/synth/llama3rope-tiny-Q4_K_M.gguf"},
        {"fixtures/real/bitnet-3M-f32.gguf", "fixtures/real/bitnet-3M-Q4_K_M.gguf"},
        {"fixtures/real/bitnet-3M-f32.gguf", "fixtures/real/bitnet-3M-Q2_K.gguf"},
    };
    const size_t n_pairs = lean ? 1 : sizeof pairs / sizeof pairs[0];
    for (size_t i = 0; i < n_pairs; i++) {
        gguf_file src;
        gguf_error err;
        if (gguf_open(t_shared(pairs[i][0]), true, &src, &err) != GGUF_OK) {
            t_begin("open %s", pairs[i][0]);
            CHECK(0, "%s: %s", pairs[i][0], err.msg);
            t_end();
            continue;
        }
        compare_whole_file(&src, pairs[i][1], lean);
        gguf_free(&src);
    }
}

/* I2_S (bitnet.cpp, type 36): every I2_S tensor's codes + f32 scale must match what our quantizer makes
 * from the F32 source; the 28 filler bytes after the scale are ignored (bitnet.cpp leaves them
 * uninitialized in these files). */
static void compare_i2_s_file(const gguf_file *src, const char *rel, bool lean) {
    gguf_error err;
    gguf_file qf;
    t_begin("%s codes + scale identical to bitnet.cpp", rel);
    if (gguf_open(t_shared(rel), true, &qf, &err) != GGUF_OK) {
        CHECK(0, "%s: %s", rel, err.msg);
        return;
    }
    int n_i2s = 0, n_same = 0;
    for (uint64_t i = 0; i < qf.n_tensors; i++) {
        const gguf_tensor *t = &qf.tensors[i];
        if (t->type != LLMPI_TYPE_I2_S || (lean && !strstr(t->name, "blk.0."))) continue;
        const gguf_tensor *ft = gguf_find_tensor(src, t->name);
        if (!ft || ft->type != LLMPI_TYPE_F32 || ft->n_elements != t->n_elements) continue;
        n_i2s++;
        float *x = malloc((size_t)t->n_elements * sizeof *x);
        memcpy(x, ft->data, (size_t)t->n_elements * sizeof *x);
        uint8_t *ours = malloc((size_t)t->n_elements / 4 + 32);
        const size_t got = quantize_i2_s(x, ours, t->n_elements / t->ne[0], t->ne[0], NULL);
        const size_t compare = (size_t)t->n_elements / 4 + 4;
        if (got == (size_t)t->nbytes && memcmp(ours, t->data, compare) == 0) n_same++;
        free(x);
        free(ours);
    }
    printf("# %s: I2_S %d/%d identical (codes + scale)\n", rel, n_same, n_i2s);
    CHECK(n_i2s > 0 && n_same == n_i2s, "only %d of %d I2_S tensors identical", n_same, n_i2s);
    gguf_free(&qf);
    t_end();
}

static void test_bitnet(void) {
    const bool lean = under_emulation();
    static const char *const sets[][4] = {
        {"fixtures/real/bitnet-3M-f32.gguf", "fixtures/real/bitnet-3M-TQ1_0.gguf", "fixtures/real/bitnet-3M-TQ2_0.gguf",
         "fixtures/real/bitnet-3M-I2_S.gguf"},
        {"fixtures/synth/bitnet-tiny-F32.gguf", "fixtures/synth/bitnet-tiny-TQ1_0.gguf",
         "fixtures/synth/bitnet-tiny-TQ2_0.gguf", "fixtures/synth/bitnet-tiny-I2_S.gguf"},
    };
    for (size_t k = 0; k < (lean ? 1 : 2); k++) {
        gguf_file src;
        gguf_error err;
        if (gguf_open(t_shared(sets[k][0]), true, &src, &err) != GGUF_OK) {
            t_begin("open %s", sets[k][0]);
            CHECK(0, "%s: %s", sets[k][0], err.msg);
            t_end();
            continue;
        }
        compare_whole_file(&src, sets[k][1], lean);
        compare_whole_file(&src, sets[k][2], lean);
        compare_i2_s_file(&src, sets[k][3], lean);
        gguf_free(&src);
    }
}

/* ---- 7. ternarization --------------------------------------------------------------------------- */

static void test_ternary(void) {
    t_begin("absmean ternarization");
    /* mean|w| = (0.1 + 0.5 + 1 + 2 + 0.4 + 0 + 0.2 + 0.6)/8 = 0.6; w/s = 0.1667 0.833 -1.667 3.33 -0.667 0 0.333 1 */
    const float w[8] = {0.1f, 0.5f, -1.0f, 2.0f, -0.4f, 0.0f, 0.2f, 0.6f};
    const int expect_t[8] = {0, 1, -1, 1, -1, 0, 0, 1};
    float out[8];
    const float s = quant_ternarize_absmean(w, out, 8);
    CHECK(fabsf(s - 0.6f) < 1e-6f, "scale %g, expected 0.6", s);
    for (int i = 0; i < 8; i++)
        CHECK(fabsf(out[i] - (float)expect_t[i] * s) <= 1e-6f * s, "out[%d] = %g, expected %d * s", i, out[i], expect_t[i]);
    float det = -1;
    CHECK(quant_is_ternary(out, 8, &det), "ternarized output not detected as ternary");
    CHECK(fabsf(det - s) <= 1e-6f * s, "detected scale %g vs %g", det, s);
    CHECK(!quant_is_ternary(w, 8, NULL), "random weights detected as ternary");
    /* Ties round to even (torch.round): with s = mean|w| = 1, 0.5 -> 0, -0.5 -> 0, 1.5 -> 2 -> clamped 1. */
    const float ties[4] = {0.5f, -0.5f, 1.5f, 1.5f};
    float tout[4];
    CHECK(quant_ternarize_absmean(ties, tout, 4) == 1.0f, "tie case scale is not 1");
    CHECK(tout[0] == 0 && tout[1] == 0 && tout[2] == 1 && tout[3] == 1, "ties: got %g %g %g %g, expected 0 0 1 1",
          tout[0], tout[1], tout[2], tout[3]);
    /* All zero -> the 1e-5 scale floor, all outputs zero. */
    const float z[4] = {0, 0, 0, 0};
    float zo[4];
    CHECK(quant_ternarize_absmean(z, zo, 4) == 1e-5f, "all-zero scale is not the 1e-5 floor");
    CHECK(zo[0] == 0 && zo[3] == 0, "all-zero ternarized to non-zero");
    CHECK(quant_is_ternary(z, 4, &det) && det == 0, "all-zero not ternary with scale 0");
    /* In place works, and a ternarized random matrix packs losslessly into TQ2_0 when s is f16-exact. */
    uint64_t rng = 5;
    float m[512], back[512];
    for (int i = 0; i < 512; i++) m[i] = t_rand_normal(&rng);
    const float sm = quant_ternarize_absmean(m, m, 512);
    CHECK(quant_is_ternary(m, 512, NULL), "in-place ternarization is not ternary");
    CHECK(sm > 0.6f && sm < 1.0f, "absmean of N(0,1) = %g, expected ~0.8", sm);
    const float s16 = quant_f16_to_f32(quant_f32_to_f16(sm));
    for (int i = 0; i < 512; i++) m[i] = m[i] == 0 ? 0.0f : copysignf(s16, m[i]);
    block_tq2_0 tq[2];
    quantize_tq2_0(m, tq, 1, 512, NULL);
    dequant_rows(LLMPI_TYPE_TQ2_0, tq, back, 1, 512);
    CHECK(sum_sq_diff(m, back, 512) == 0, "TQ2_0 of a ternary matrix is not exact");
    block_tq1_0 tq1[2];
    quantize_tq1_0(m, tq1, 1, 512, NULL);
    dequant_rows(LLMPI_TYPE_TQ1_0, tq1, back, 1, 512);
    CHECK(sum_sq_diff(m, back, 512) == 0, "TQ1_0 of a ternary matrix is not exact");
    t_end();
}

int main(void) {
    void (*const sections[])(void) = {test_round_trips, test_i2_s_round_trip, test_bad_lengths, test_non_finite, test_imatrix, test_threads,
                                      test_ternary, test_llama_tiny, test_preset_mixes, test_bitnet};
    const char *const names[] = {"round trips", "i2_s", "bad lengths", "non-finite", "imatrix", "threads", "ternary", "llama-tiny", "preset mixes", "bitnet"};
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        const clock_t t0 = clock();
        sections[i]();
        if (getenv("LLMPI_TEST_VERBOSE")) printf("# section %-12s %.3f s cpu\n", names[i], (double)(clock() - t0) / CLOCKS_PER_SEC);
    }
    return t_summary();
}
