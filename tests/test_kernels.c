/* SIMD dot-product kernels (kernels/dot_*.c via kernels/dispatch.c) against the scalar reference
 * (quant/vec_dot.c, reached through quant_traits()->vec_dot).
 *
 * For every kernel family this build and CPU can run (forced with kern_set_impl) and every weight
 * type: random weight rows (random code bytes, small random f16 scales -- independent of the
 * weight quantizers), activations from the real activation quantizer (traits->from_float),
 * 1..8 blocks plus one longer row, 3 rows per case (odd count), several seeds. The kernels get
 * copies of the rows at odd addresses (1 byte past an aligned buffer); the reference gets aligned
 * rows (it reads blocks through struct members, which needs natural alignment).
 *
 * Tolerance. Integer partial sums must be exact; only the float accumulation differs (lane-wise
 * partial sums, different association of the scale products). With u = 2^-24 and
 * M = sum_e |w_e * a_e| over dequantized weights and activations (for types with a min term, the
 * scale part and the min part are counted separately, so M bounds every intermediate), both the
 * reference and a SIMD kernel are within about (terms + 16) * u * M of the exact value, where
 * terms = blocks (quantized types) or elements / 8 (float types). For the sizes here that is
 * < 2e-6 * M; the check uses 1e-5 * M and reports the largest |err| / M seen. I2_S is computed in
 * integers and then by the same float expression, so it must match bit for bit.
 *
 * `test_kernels --bench [TYPE...]` times a 4096 x 4096 matrix-vector product per type and family
 * (one thread, the bare dot kernel against pre-converted activations) instead of testing. `make bench`
 * runs tests/bench_kernels.c instead: kern_matmul on the thread pool, with a measured roofline. */
#include "harness.h"
#include "kernels.h"
#include "cpu_features.h"
#include "quant.h"
#include "blocks.h"
#include "ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const all_families[] = { "scalar", "avx2", "avx512", "neon", "neon-dotprod" };
#define N_FAMILIES (int)(sizeof all_families / sizeof all_families[0])

/* Weight types with a vec_dot, in the order of the brief (benchmark types first). */
static const llmpi_type weight_types[] = {
    LLMPI_TYPE_Q4_0, LLMPI_TYPE_Q8_0, LLMPI_TYPE_Q4_K, LLMPI_TYPE_Q6_K, LLMPI_TYPE_Q2_K, LLMPI_TYPE_TQ2_0,
    LLMPI_TYPE_F16, LLMPI_TYPE_F32, LLMPI_TYPE_Q3_K, LLMPI_TYPE_Q5_K, LLMPI_TYPE_Q4_1, LLMPI_TYPE_Q5_0,
    LLMPI_TYPE_Q5_1, LLMPI_TYPE_IQ4_NL, LLMPI_TYPE_IQ4_XS, LLMPI_TYPE_TQ1_0, LLMPI_TYPE_BF16, LLMPI_TYPE_I2_S,
};
#define N_WEIGHT_TYPES (int)(sizeof weight_types / sizeof weight_types[0])

/* Where a block keeps its f16 scale(s): d (multiplies the codes) and, for types with one, the min
 * scale (m / dmin). -1 = none. Plain float types and I2_S (per-tensor scale) have neither. */
typedef struct { llmpi_type type; int d_offset, min_offset; } scale_fields;
static const scale_fields block_scales[] = {
    { LLMPI_TYPE_Q4_0, offsetof(block_q4_0, d), -1 },
    { LLMPI_TYPE_Q4_1, offsetof(block_q4_1, d), offsetof(block_q4_1, m) },
    { LLMPI_TYPE_Q5_0, offsetof(block_q5_0, d), -1 },
    { LLMPI_TYPE_Q5_1, offsetof(block_q5_1, d), offsetof(block_q5_1, m) },
    { LLMPI_TYPE_Q8_0, offsetof(block_q8_0, d), -1 },
    { LLMPI_TYPE_Q2_K, offsetof(block_q2_K, d), offsetof(block_q2_K, dmin) },
    { LLMPI_TYPE_Q3_K, offsetof(block_q3_K, d), -1 },
    { LLMPI_TYPE_Q4_K, offsetof(block_q4_K, d), offsetof(block_q4_K, dmin) },
    { LLMPI_TYPE_Q5_K, offsetof(block_q5_K, d), offsetof(block_q5_K, dmin) },
    { LLMPI_TYPE_Q6_K, offsetof(block_q6_K, d), -1 },
    { LLMPI_TYPE_IQ4_NL, offsetof(block_iq4_nl, d), -1 },
    { LLMPI_TYPE_IQ4_XS, offsetof(block_iq4_xs, d), -1 },
    { LLMPI_TYPE_TQ1_0, offsetof(block_tq1_0, d), -1 },
    { LLMPI_TYPE_TQ2_0, offsetof(block_tq2_0, d), -1 },
};

static const scale_fields *scales_of(llmpi_type t) {
    for (size_t i = 0; i < sizeof block_scales / sizeof block_scales[0]; i++)
        if (block_scales[i].type == t) return &block_scales[i];
    return NULL;
}

static void put_f16(uint8_t *p, float v) {
    const uint16_t h = quant_f32_to_f16(v);
    memcpy(p, &h, sizeof h);
}

/* One random weight row of n elements of type t into row (quant_row_size bytes). */
static void random_weight_row(llmpi_type t, uint8_t *row, int64_t n, uint64_t *rng) {
    const quant_type_traits *tr = quant_traits(t);
    const size_t bytes = quant_row_size(t, n);
    if (t == LLMPI_TYPE_F32 || t == LLMPI_TYPE_F16 || t == LLMPI_TYPE_BF16) {
        float *tmp = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) tmp[i] = t_rand_normal(rng) * 0.5f;
        if (t == LLMPI_TYPE_F32) memcpy(row, tmp, (size_t)n * sizeof(float));
        for (int64_t i = 0; t != LLMPI_TYPE_F32 && i < n; i++) {
            const uint16_t h = t == LLMPI_TYPE_F16 ? quant_f32_to_f16(tmp[i]) : quant_f32_to_bf16(tmp[i]);
            memcpy(row + 2 * i, &h, sizeof h);
        }
        free(tmp);
        return;
    }
    for (size_t i = 0; i < bytes; i++) row[i] = (uint8_t)(t_rand_u64(rng) >> 56);
    const scale_fields *sf = scales_of(t);
    if (!sf) return;
    for (int64_t b = 0; b < n / tr->blck_size; b++) {
        uint8_t *blk = row + (size_t)b * tr->type_size;
        const float sign = (t_rand_u64(rng) & 1) ? 1.0f : -1.0f;
        put_f16(blk + sf->d_offset, sign * t_rand_uniform(rng, 0.0005f, 0.05f));
        if (sf->min_offset >= 0) put_f16(blk + sf->min_offset, t_rand_uniform(rng, -0.02f, 0.05f));
    }
}

/* Activation floats: mostly N(0,1), a few outliers (what makes real Q8 scales uneven). */
static void random_activations(float *x, int64_t n, uint64_t *rng) {
    for (int64_t i = 0; i < n; i++) {
        x[i] = t_rand_normal(rng);
        if ((t_rand_u64(rng) & 63) == 0) x[i] *= 20.0f;
    }
}

/* sum_e |w_e * a_e| over dequantized values; for min types the scale and min parts separately. */
static double magnitude(llmpi_type t, const uint8_t *wrow, const float *a_deq, int64_t n) {
    const quant_type_traits *tr = quant_traits(t);
    const size_t bytes = quant_row_size(t, n);
    float *w = malloc((size_t)n * sizeof(float));
    uint8_t *tmp = malloc(bytes);
    const scale_fields *sf = scales_of(t);
    double m = 0.0;
    const int parts = sf && sf->min_offset >= 0 ? 2 : 1;
    for (int part = 0; part < parts; part++) {
        memcpy(tmp, wrow, bytes);
        if (parts == 2)   /* part 0: min scale zeroed; part 1: code scale zeroed */
            for (int64_t b = 0; b < n / tr->blck_size; b++)
                put_f16(tmp + (size_t)b * tr->type_size + (part == 0 ? sf->min_offset : sf->d_offset), 0.0f);
        tr->to_float(tmp, w, n);
        for (int64_t i = 0; i < n; i++) m += fabs((double)w[i] * (double)a_deq[i]);
    }
    free(tmp);
    free(w);
    return m;
}

static bool family_available(const char *fam) {
    const int ok = kern_set_impl(fam) == 0;
    kern_set_impl("auto");
    return ok;
}

/* Tests every type under one family. */
static void test_family(const char *fam) {
    static const int64_t block_counts[] = { 1, 2, 3, 4, 5, 6, 7, 8, 19 };
    static const int64_t float_lengths[] = { 1, 3, 7, 8, 9, 16, 31, 32, 33, 64, 100, 255, 257 };
    const int n_seeds = 3, n_rows = 3;
    CHECK(kern_set_impl(fam) == 0, "kern_set_impl(%s)", fam);
    for (int ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const llmpi_type t = weight_types[ti];
        const quant_type_traits *tr = quant_traits(t);
        kern_set_impl(fam);
        const char *impl = kern_vec_dot_impl(t);
        const quant_vec_dot_fn simd = kern_vec_dot(t);
        if (!tr || !tr->vec_dot || !simd) {
            t_begin("dot %-6s %-12s", quant_type_name(t), fam);
            CHECK(0, "no reference or kernel (traits %p)", (const void *)tr);
            t_end();
            continue;
        }
        if (strcmp(impl, fam) != 0) {
            /* served by a lower family (tested under that name) or the reference itself */
            t_begin("dot %-6s %-12s -> %s (fallback)", quant_type_name(t), fam, impl);
            if (strcmp(impl, "scalar") == 0) CHECK(simd == tr->vec_dot, "scalar fallback is not the reference");
            t_end();
            continue;
        }
        const quant_type_traits *at = quant_traits(tr->vec_dot_type);
        const bool is_float = tr->blck_size == 1;
        const int n_sizes = is_float ? (int)(sizeof float_lengths / sizeof float_lengths[0])
                                     : (int)(sizeof block_counts / sizeof block_counts[0]);
        double worst = 0.0;
        int n_checked = 0, n_bad = 0;
        char first_bad[256] = "";
        for (int seed = 1; seed <= n_seeds; seed++) {
            uint64_t rng = 0x1234567ull * (uint64_t)seed + (uint64_t)t * 7919u;
            for (int si = 0; si < n_sizes; si++) {
                const int64_t n = is_float ? float_lengths[si] : block_counts[si] * tr->blck_size;
                const size_t wbytes = quant_row_size(t, n), abytes = quant_row_size(tr->vec_dot_type, n);
                uint8_t *w = malloc(wbytes * (size_t)n_rows), *a = malloc(abytes);
                uint8_t *w_odd = malloc(wbytes + 64), *a_odd = malloc(abytes + 64);
                float *x = malloc((size_t)n * sizeof(float)), *a_deq = malloc((size_t)n * sizeof(float));
                random_activations(x, n, &rng);
                at->from_float(x, a, n);
                at->to_float(a, a_deq, n);
                memcpy(a_odd + 3, a, abytes);
                for (int r = 0; r < n_rows; r++) {
                    uint8_t *wr = w + (size_t)r * wbytes;
                    random_weight_row(t, wr, n, &rng);
                    memcpy(w_odd + 1, wr, wbytes);
                    float ref = 0.0f, got = 0.0f;
                    tr->vec_dot(n, &ref, wr, a);
                    simd(n, &got, w_odd + 1, a_odd + 3);
                    const double m = magnitude(t, wr, a_deq, n);
                    const double err = fabs((double)ref - (double)got);
                    const bool exact_required = t == LLMPI_TYPE_I2_S;
                    bool bad = !(isfinite(got) || !isfinite(ref)) || (exact_required ? memcmp(&ref, &got, sizeof ref) != 0
                                                                                     : !(err <= 1e-5 * m));
                    if (m > 0 && err / m > worst) worst = err / m;
                    n_checked++;
                    if (bad && n_bad++ == 0)
                        snprintf(first_bad, sizeof first_bad, "n=%lld row %d seed %d: ref %.9g simd %.9g |err| %.3g M %.3g",
                                 (long long)n, r, seed, ref, got, err, m);
                }
                free(w); free(a); free(w_odd); free(a_odd); free(x); free(a_deq);
            }
        }
        t_begin("dot %-6s %-12s %d rows, max |err|/M %.2e", quant_type_name(t), fam, n_checked, worst);
        CHECK(n_bad == 0, "%d of %d rows off; first: %s", n_bad, n_checked, first_bad);
        t_end();
    }
    kern_set_impl("auto");
}

static void test_dispatch_api(void) {
    t_begin("dispatch: names, fallbacks, LLMPI_KERNELS");
    CHECK(kern_set_impl("no-such-family") == -1, "unknown family accepted");
    CHECK(kern_set_impl("scalar") == 0, "scalar must always be available");
    CHECK(strcmp(kern_get_impl(), "scalar") == 0, "got %s", kern_get_impl());
    for (int ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const quant_type_traits *tr = quant_traits(weight_types[ti]);
        CHECK(kern_vec_dot(weight_types[ti]) == tr->vec_dot, "%s: scalar family is not the reference", tr->name);
        CHECK(strcmp(kern_vec_dot_impl(weight_types[ti]), "scalar") == 0, "%s", tr->name);
    }
    CHECK(kern_vec_dot(4) == NULL, "removed type 4 has a kernel");
    CHECK(kern_set_impl(NULL) == 0 && kern_set_impl("auto") == 0, "auto");
#if defined(__x86_64__)
    CHECK(kern_set_impl("neon") == -1, "neon accepted on x86");
#elif defined(__aarch64__)
    CHECK(kern_set_impl("avx2") == -1, "avx2 accepted on aarch64");
    CHECK(kern_set_impl("neon") == 0, "neon must be available on aarch64");
#endif
    kern_set_impl("auto");
    t_end();
}

/* 4-column kernels (kern_vec_dot_4): for each type the family serves with one, s[k] must equal the
 * single kernel of the same family on column k bit for bit (memcmp). Odd block counts, rows at odd
 * addresses, a column stride that is not a multiple of the block size, several seeds. */
static void test_dot4_family(const char *fam) {
    static const int64_t block_counts[] = { 1, 2, 3, 5, 8, 11 };
    for (int ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const llmpi_type t = weight_types[ti];
        kern_set_impl(fam);
        if (strcmp(kern_vec_dot_impl(t), fam) != 0) continue;
        const kern_vec_dot4_fn dot4 = kern_vec_dot_4(t);
        const quant_vec_dot_fn dot = kern_vec_dot(t);
        if (!dot4) continue;
        const quant_type_traits *tr = quant_traits(t), *at = quant_traits(tr->vec_dot_type);
        t_begin("%s vec_dot_4 %s == 4 x single kernel (bit-exact)", fam, tr->name);
        int compared = 0;
        for (uint64_t seed = 1; seed <= 4; seed++) {
            for (size_t bi = 0; bi < sizeof block_counts / sizeof block_counts[0]; bi++) {
                const int64_t n = block_counts[bi] * tr->blck_size;
                const size_t w_bytes = quant_row_size(t, n), a_bytes = quant_row_size(tr->vec_dot_type, n);
                const size_t stride = a_bytes + 3 + (size_t)seed;   /* not a multiple of anything */
                uint8_t *wbuf = malloc(w_bytes + 1), *abuf = malloc(4 * stride + 1);
                float *xf = malloc((size_t)n * sizeof(float));
                uint64_t rng = seed * 7919 + (uint64_t)bi;
                uint8_t *wrow = wbuf + 1, *arows = abuf + 1;   /* odd addresses */
                memset(abuf, 0xA5, 4 * stride + 1);
                random_weight_row(t, wrow, n, &rng);
                for (int k = 0; k < 4; k++) {
                    random_activations(xf, n, &rng);
                    if (k == 2) for (int64_t e = 0; e < n; e++) xf[e] *= 1e-3f;   /* uneven scales */
                    uint8_t *tmp = malloc(a_bytes);   /* aligned for the quantizer */
                    at->from_float(xf, tmp, n);
                    memcpy(arows + (size_t)k * stride, tmp, a_bytes);
                    free(tmp);
                }
                float got[4], want[4];
                dot4(n, got, wrow, arows, stride);
                for (int k = 0; k < 4; k++) dot(n, &want[k], wrow, arows + (size_t)k * stride);
                CHECK(memcmp(got, want, sizeof got) == 0,
                      "seed %llu n=%lld: got %.9g %.9g %.9g %.9g want %.9g %.9g %.9g %.9g",
                      (unsigned long long)seed, (long long)n, got[0], got[1], got[2], got[3],
                      want[0], want[1], want[2], want[3]);
                compared++;
                free(wbuf); free(abuf); free(xf);
            }
        }
        CHECK(compared == 24, "compared %d", compared);
        t_end();
    }
    kern_set_impl("auto");
}

/* Scalar family has no 4-column kernel; x86 / aarch64 builds have them for Q4_0 and Q8_0. */
static void test_dot4_dispatch(void) {
    t_begin("dispatch: kern_vec_dot_4");
    CHECK(kern_set_impl("scalar") == 0, "scalar");
    CHECK(kern_vec_dot_4(LLMPI_TYPE_Q4_0) == NULL, "scalar family returned a 4-column kernel");
    CHECK(kern_vec_dot_4(4) == NULL, "removed type 4 has a 4-column kernel");
    kern_set_impl("auto");
#if defined(__aarch64__)
    CHECK(kern_set_impl("neon") == 0 && kern_vec_dot_4(LLMPI_TYPE_Q4_0) != NULL, "neon Q4_0 has no 4-column kernel");
#elif defined(__x86_64__)
    if (kern_set_impl("avx2") == 0)
        CHECK(kern_vec_dot_4(LLMPI_TYPE_Q8_0) != NULL, "avx2 Q8_0 has no 4-column kernel");
#endif
    kern_set_impl("auto");
    t_end();
}

/* SIMD activation quantizers (kern_act_quant) must be byte-identical to the type table's from_float
 * (Q8_1: codes, d and s = f16(d * sum)): random rows with outliers, exact ties (a block whose largest
 * |x| is 127 has scale 1, so x = k + 0.5 is a tie; for Q8_K also max = -127 / +127), all-zero blocks,
 * NaN / Inf, subnormals and tiny scales (127 / amax overflows); an odd block count (23 blocks of 32,
 * 3 of 256), input 4 bytes past a 32-byte boundary, output at an odd address, 5 seeds. */
static void fill_act_case(float *x, int64_t n, int kind, uint64_t *rng) {
    random_activations(x, n, rng);
    for (int64_t e = 0; e < n; e++) {
        switch (kind) {
        case 1: x[e] = (float)((int)(t_rand_u64(rng) % 255) - 127) + ((t_rand_u64(rng) & 1) ? 0.5f : 0.0f);
                if (x[e] > 127.0f) x[e] = 126.5f;
                break;                                                       /* ties, amax 127 below */
        case 2: if ((e / 32) % 3 == 1) x[e] = (e & 1) ? 0.0f : -0.0f; break;   /* zero blocks */
        case 3: if (t_rand_u64(rng) % 97 == 0) x[e] = (t_rand_u64(rng) & 1) ? NAN : -INFINITY; break;
        case 4: x[e] *= 1e-39f; break;                                       /* subnormal */
        case 5: x[e] *= 3e-37f; break;                                       /* near-overflow scales */
        default: break;
        }
    }
    if (kind == 1)   /* the largest magnitude per 32: +-127 exactly, sign varies */
        for (int64_t b = 0; b < n / 32; b++) x[32 * b + (b * 7) % 32] = (b & 1) ? 127.0f : -127.0f;
}

static void test_act_quant(void) {
    static const llmpi_type act_types[] = { LLMPI_TYPE_Q8_0, LLMPI_TYPE_Q8_1, LLMPI_TYPE_Q8_K };
    for (int f = 0; f < N_FAMILIES; f++) {
        if (kern_set_impl(all_families[f]) != 0) continue;
        for (size_t ti = 0; ti < sizeof act_types / sizeof act_types[0]; ti++) {
            const quant_type_traits *at = quant_traits(act_types[ti]);
            const quant_from_float_fn fn = kern_act_quant(act_types[ti]);
            if (fn == at->from_float) continue;
            t_begin("%s activation quantizer %s == from_float (bytes)", all_families[f], at->name);
            const int64_t n = act_types[ti] == LLMPI_TYPE_Q8_K ? 3 * 256 : 23 * 32;
            const size_t bytes = quant_row_size(act_types[ti], n);
            float *x_buf = aligned_alloc(32, (size_t)(n + 8) * sizeof(float)), *x = x_buf + 1;
            uint8_t *want = malloc(bytes), *got_buf = malloc(bytes + 1), *got = got_buf + 1;
            for (uint64_t seed = 1; seed <= 5; seed++) {
                for (int kind = 0; kind <= 5; kind++) {
                    uint64_t rng = seed * 131 + (uint64_t)kind;
                    fill_act_case(x, n, kind, &rng);
                    at->from_float(x, want, n);
                    memset(got_buf, 0x5A, bytes + 1);
                    fn(x, got, n);
                    size_t first = bytes;
                    for (size_t b = 0; b < bytes && first == bytes; b++) if (got[b] != want[b]) first = b;
                    CHECK(first == bytes, "seed %llu case %d: first differing byte %zu (%d vs %d)",
                          (unsigned long long)seed, kind, first, first < bytes ? got[first] : 0,
                          first < bytes ? want[first] : 0);
                }
            }
            free(x_buf); free(want); free(got_buf);
            t_end();
        }
    }
    kern_set_impl("auto");
}

/* Q4_1 / Q5_0 / Q5_1 on x86 follow llama.cpp's float order bit for bit (kernels/dot_avx2.c,
 * BLOCK_DOT_32_GGML_X86; that is what lets those files' logits match the goldens exactly). The order,
 * written out here from ggml's x86 quants.c: lane k (k < 8) of a block is the exact integer sum of the
 * products 4k..4k+3; acc_k = fmaf(d_w * d_a, (float)lane_k, acc_k) block after block; the result is
 * ((s0 + s2) + (s1 + s3)) with s_i = acc_{4+i} + acc_i, plus min = fmaf(m, s_a, min) over the blocks.
 * Every SIMD family must match it (memcmp): avx2 (avx512 falls back to it), and neon / neon-dotprod,
 * which emulate the 8 x86 lanes so ARM gives the same logits. */
static int q5_code_of(const uint8_t qs[16], const uint8_t qh[4], int e, bool has_high) {
    const int nib = e < 16 ? (qs[e] & 0x0F) : (qs[e - 16] >> 4);
    const uint32_t bits = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    return has_high ? nib | (int)((bits >> e) & 1u) << 4 : nib;
}

static float ggml_x86_order_dot(llmpi_type t, int64_t n, const uint8_t *wrow, const uint8_t *arow) {
    float acc[8] = { 0 }, min_sum = 0.0f;
    for (int64_t b = 0; b < n / 32; b++) {
        int code[32];
        float dw, mw = 0.0f, da, sa = 0.0f;
        const int8_t *aq;
        if (t == LLMPI_TYPE_Q4_1) {
            const block_q4_1 *x = (const block_q4_1 *)wrow + b;
            for (int e = 0; e < 32; e++) code[e] = q5_code_of(x->qs, (const uint8_t[4]){ 0 }, e, false);
            dw = quant_f16_to_f32(x->d);
            mw = quant_f16_to_f32(x->m);
        } else if (t == LLMPI_TYPE_Q5_0) {
            const block_q5_0 *x = (const block_q5_0 *)wrow + b;
            for (int e = 0; e < 32; e++) code[e] = q5_code_of(x->qs, x->qh, e, true) - 16;
            dw = quant_f16_to_f32(x->d);
        } else {
            const block_q5_1 *x = (const block_q5_1 *)wrow + b;
            for (int e = 0; e < 32; e++) code[e] = q5_code_of(x->qs, x->qh, e, true);
            dw = quant_f16_to_f32(x->d);
            mw = quant_f16_to_f32(x->m);
        }
        if (t == LLMPI_TYPE_Q5_0) {
            const block_q8_0 *y = (const block_q8_0 *)arow + b;
            da = quant_f16_to_f32(y->d);
            aq = y->qs;
        } else {
            const block_q8_1 *y = (const block_q8_1 *)arow + b;
            da = quant_f16_to_f32(y->d);
            sa = quant_f16_to_f32(y->s);
            aq = y->qs;
        }
        const float d = dw * da;
        for (int k = 0; k < 8; k++) {
            int32_t lane = 0;
            for (int i = 0; i < 4; i++) lane += code[4 * k + i] * aq[4 * k + i];
            acc[k] = fmaf(d, (float)lane, acc[k]);
        }
        if (t != LLMPI_TYPE_Q5_0) min_sum = fmaf(mw, sa, min_sum);
    }
    float s4[4];
    for (int i = 0; i < 4; i++) s4[i] = acc[4 + i] + acc[i];
    const float lo = s4[0] + s4[2], hi = s4[1] + s4[3];
    const float sum = lo + hi;
    return sum + min_sum;
}

static void test_ggml_x86_order(void) {
    static const llmpi_type types[] = { LLMPI_TYPE_Q4_1, LLMPI_TYPE_Q5_0, LLMPI_TYPE_Q5_1 };
    static const int64_t block_counts[] = { 1, 2, 3, 5, 8, 9, 24 };
    for (int f = 0; f < N_FAMILIES; f++) {
        if (strcmp(all_families[f], "scalar") == 0 || kern_set_impl(all_families[f]) != 0) continue;
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            const llmpi_type t = types[ti];
            const quant_type_traits *tr = quant_traits(t), *at = quant_traits(tr->vec_dot_type);
            const quant_vec_dot_fn dot = kern_vec_dot(t);
            t_begin("%s dot %s == llama.cpp x86 float order (bit-exact, via %s)", all_families[f], tr->name,
                    kern_vec_dot_impl(t));
            int compared = 0, bad = 0;
            for (uint64_t seed = 1; seed <= 4; seed++)
                for (size_t bi = 0; bi < sizeof block_counts / sizeof block_counts[0]; bi++) {
                    const int64_t n = block_counts[bi] * 32;
                    const size_t wb = quant_row_size(t, n), ab = quant_row_size(tr->vec_dot_type, n);
                    uint8_t *w = malloc(wb), *a = malloc(ab), *w_odd = malloc(wb + 1), *a_odd = malloc(ab + 1);
                    float *x = malloc((size_t)n * sizeof(float));
                    uint64_t rng = seed * 104729u + bi * 31u + (uint64_t)t;
                    random_weight_row(t, w, n, &rng);
                    random_activations(x, n, &rng);
                    at->from_float(x, a, n);
                    memcpy(w_odd + 1, w, wb);
                    memcpy(a_odd + 1, a, ab);
                    const float want = ggml_x86_order_dot(t, n, w, a);
                    float got;
                    dot(n, &got, w_odd + 1, a_odd + 1);
                    if (memcmp(&got, &want, sizeof got) != 0 && bad++ == 0)
                        CHECK(0, "seed %llu n=%lld: kernel %.9g, llama.cpp order %.9g", (unsigned long long)seed,
                              (long long)n, got, want);
                    compared++;
                    free(w); free(a); free(w_odd); free(a_odd); free(x);
                }
            CHECK(bad == 0 && compared == 28, "%d of %d rows differ", bad, compared);
            t_end();
        }
    }
    kern_set_impl("auto");
}

/* [hB] Q6_K / Q3_K / Q2_K against an order model of llama.cpp on AVX-512 x86 (bit-exact). Written from the
 * formats (quant/vec_dot.c code layouts), independent of the kernels' register tricks:
 *  - Q6_K, Q3_K (ggml_vec_dot_q6_K/q3_K_q8_K, AVX2 path): 8 exact int32 lanes per super-block, lane l =
 *    sum over the eight 32-element groups g of sc(sub-block) * w * a over elements 32g + 4l .. 32g + 4l + 3,
 *    Q6_K with w = c in [0, 63] and -32 * (sc[2l] bsums[2l] + sc[2l+1] bsums[2l+1]) added, Q3_K with
 *    w = c3 - 4; acc_l = fmaf(dy * dx, lane_l, acc_l); then ggml's hsum_float_8.
 *  - Q2_K (repacked gemv/gemm_q2_K_8x8 on AVX-512): S = fmaf(isum, dx * dy, S), M = fmaf(msum, dmin * dy, M)
 *    per super-block, result S - M.
 * Only the avx512 family promises this order for these types (avx2 keeps its own lane split). */
static float hb_hsum8(const float acc[8]) {
    float s4[4];
    for (int i = 0; i < 4; i++) s4[i] = acc[4 + i] + acc[i];
    const float lo = s4[0] + s4[2], hi = s4[1] + s4[3];
    return lo + hi;
}

static float hb_llama_order_dot(llmpi_type t, int64_t n, const uint8_t *wrow, const uint8_t *arow) {
    float acc[8] = { 0 }, S = 0.0f, M = 0.0f;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const block_q8_K *y = (const block_q8_K *)arow + b;
        int w[QK_K], sc[16];
        float dx = 0.0f, dmin = 0.0f;
        if (t == LLMPI_TYPE_Q6_K) {
            const block_q6_K *x = (const block_q6_K *)wrow + b;
            for (int e = 0; e < QK_K; e++) {
                const int h = e / 128, k = (e % 128) / 32, p = e % 32;
                const uint8_t l = x->ql[64 * h + 32 * (k & 1) + p];
                w[e] = (k < 2 ? (l & 0x0F) : (l >> 4)) | (((x->qh[32 * h + p] >> (2 * k)) & 3) << 4);
            }
            for (int s = 0; s < 16; s++) sc[s] = x->scales[s];
            dx = quant_f16_to_f32(x->d);
        } else if (t == LLMPI_TYPE_Q3_K) {
            const block_q3_K *x = (const block_q3_K *)wrow + b;
            for (int e = 0; e < QK_K; e++) {
                const int h = e / 128, k = (e % 128) / 32, p = e % 32;
                const int low2 = (x->qs[32 * h + p] >> (2 * k)) & 3, hb = (x->hmask[p] >> (e / 32)) & 1;
                w[e] = low2 + 4 * hb - 4;
            }
            for (int s = 0; s < 16; s++) {
                const int low4 = s < 8 ? (x->scales[s] & 0x0F) : (x->scales[s - 8] >> 4);
                sc[s] = (low4 | ((x->scales[8 + s % 4] >> (2 * (s / 4))) & 3) << 4) - 32;
            }
            dx = quant_f16_to_f32(x->d);
        } else {
            const block_q2_K *x = (const block_q2_K *)wrow + b;
            int32_t isum = 0, msum = 0;
            for (int e = 0; e < QK_K; e++)
                isum += (x->scales[e / 16] & 15) * ((x->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3) * y->qs[e];
            for (int s = 0; s < 16; s++) msum += (x->scales[s] >> 4) * y->bsums[s];
            dx = quant_f16_to_f32(x->d);
            dmin = quant_f16_to_f32(x->dmin);
            S = fmaf((float)isum, dx * y->d, S);
            M = fmaf((float)msum, dmin * y->d, M);
            continue;
        }
        for (int l = 0; l < 8; l++) {
            int32_t lane = 0;
            for (int g = 0; g < 8; g++)
                for (int i = 0; i < 4; i++) {
                    const int e = 32 * g + 4 * l + i;
                    lane += sc[e / 16] * w[e] * y->qs[e];
                }
            if (t == LLMPI_TYPE_Q6_K) lane -= 32 * (sc[2 * l] * y->bsums[2 * l] + sc[2 * l + 1] * y->bsums[2 * l + 1]);
            acc[l] = fmaf(y->d * dx, (float)lane, acc[l]);
        }
    }
    return t == LLMPI_TYPE_Q2_K ? S - M : hb_hsum8(acc);
}

static void test_llama_order_kquants(void) {
    static const llmpi_type types[] = { LLMPI_TYPE_Q6_K, LLMPI_TYPE_Q3_K, LLMPI_TYPE_Q2_K };
    static const int64_t block_counts[] = { 1, 2, 3, 5, 8, 11 };
    if (kern_set_impl("avx512") != 0) return;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const llmpi_type t = types[ti];
        const quant_type_traits *tr = quant_traits(t), *at = quant_traits(tr->vec_dot_type);
        const quant_vec_dot_fn dot = kern_vec_dot(t);
        const kern_vec_dot4_fn dot4 = kern_vec_dot_4(t);
        t_begin("avx512 dot %s == llama.cpp AVX-512 float order (bit-exact, via %s%s)", tr->name, kern_vec_dot_impl(t),
                dot4 ? ", and its 4-column kernel" : "");
        int compared = 0, bad = 0;
        for (uint64_t seed = 1; seed <= 4; seed++)
            for (size_t bi = 0; bi < sizeof block_counts / sizeof block_counts[0]; bi++) {
                const int64_t n = block_counts[bi] * QK_K;
                const size_t wb = quant_row_size(t, n), ab = quant_row_size(tr->vec_dot_type, n);
                uint8_t *w = malloc(wb), *a = malloc(4 * ab), *w_odd = malloc(wb + 1), *a_odd = malloc(4 * ab + 1);
                float *x = malloc((size_t)n * sizeof(float));
                uint64_t rng = seed * 15485863u + bi * 97u + (uint64_t)t;
                random_weight_row(t, w, n, &rng);
                for (int k = 0; k < 4; k++) {
                    random_activations(x, n, &rng);
                    at->from_float(x, a + (size_t)k * ab, n);
                }
                memcpy(w_odd + 1, w, wb);
                memcpy(a_odd + 1, a, 4 * ab);
                float got4[4];
                if (dot4) dot4(n, got4, w_odd + 1, a_odd + 1, ab);
                for (int k = 0; k < 4; k++) {
                    const float want = hb_llama_order_dot(t, n, w, a + (size_t)k * ab);
                    float got;
                    dot(n, &got, w_odd + 1, a_odd + 1 + (size_t)k * ab);
                    const bool differs = memcmp(&got, &want, sizeof got) != 0 || (dot4 && memcmp(&got4[k], &want, sizeof want) != 0);
                    if (differs && bad++ == 0)
                        CHECK(0, "seed %llu n=%lld col %d: kernel %.9g (4-col %.9g), llama.cpp order %.9g",
                              (unsigned long long)seed, (long long)n, k, got, dot4 ? got4[k] : got, want);
                    compared++;
                }
                free(w); free(a); free(w_odd); free(a_odd); free(x);
            }
        CHECK(bad == 0 && compared == 96, "%d of %d rows differ", bad, compared);
        t_end();
    }
    kern_set_impl("auto");
}

/* ---- benchmark --------------------------------------------------------------------------------- */

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench(int argc, char **argv) {
    const int64_t rows = 4096, cols = 4096;
    printf("cpu: %s\n4096x4096 matvec, 1 thread, per type and kernel family: ns per 256 weights, weight GB/s\n",
           cpu_features_string());
    for (int ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        const llmpi_type t = weight_types[ti];
        if (argc > 0) {
            bool wanted = false;
            for (int k = 0; k < argc; k++) wanted |= quant_type_from_name(argv[k]) == (int)t;
            if (!wanted) continue;
        }
        const quant_type_traits *tr = quant_traits(t), *at = quant_traits(tr->vec_dot_type);
        const size_t row_bytes = quant_row_size(t, cols);
        /* 64-byte aligned like an mmapped tensor (GGUF data is at least 32-byte aligned) */
        uint8_t *w = aligned_alloc(64, (row_bytes * (size_t)rows + 63) / 64 * 64);
        uint8_t *a = aligned_alloc(64, (quant_row_size(tr->vec_dot_type, cols) + 63) / 64 * 64);
        float *x = malloc((size_t)cols * sizeof(float)), *y = malloc((size_t)rows * sizeof(float));
        uint64_t rng = 42;
        for (int64_t r = 0; r < rows; r++) random_weight_row(t, w + (size_t)r * row_bytes, cols, &rng);
        random_activations(x, cols, &rng);
        at->from_float(x, a, cols);
        printf("%-7s", tr->name);
        for (int f = 0; f < N_FAMILIES; f++) {
            if (kern_set_impl(all_families[f]) != 0) continue;
            const char *impl = kern_vec_dot_impl(t);
            if (strcmp(impl, all_families[f]) != 0) continue;
            const quant_vec_dot_fn dot = kern_vec_dot(t);
            double best = 1e30;
            for (int rep = 0; rep < 5; rep++) {
                const double t0 = now_sec();
                for (int64_t r = 0; r < rows; r++) dot(cols, &y[r], w + (size_t)r * row_bytes, a);
                const double dt = now_sec() - t0;
                if (dt < best) best = dt;
            }
            const double ns_per_256 = best * 1e9 / ((double)rows * (double)cols / 256.0);
            printf("  %s %7.1f ns %6.2f GB/s", all_families[f], ns_per_256, (double)row_bytes * (double)rows / best / 1e9);
        }
        printf("\n");
        fflush(stdout);
        free(w); free(a); free(x); free(y);
    }
    kern_set_impl("auto");
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) return bench(argc - 2, argv + 2);

    /* $LLMPI_KERNELS is read at the first kernel call: make that call see "scalar". */
    setenv("LLMPI_KERNELS", "scalar", 1);
    t_begin("LLMPI_KERNELS=scalar selects the scalar family");
    CHECK(strcmp(kern_get_impl(), "scalar") == 0, "got %s", kern_get_impl());
    t_end();
    kern_set_impl("auto");
    printf("# cpu: %s; best family: %s\n", cpu_features_string(), kern_get_impl());

    test_dispatch_api();
    for (int f = 0; f < N_FAMILIES; f++) {
        if (!family_available(all_families[f])) continue;
        if (strcmp(all_families[f], "scalar") == 0) continue;
        test_family(all_families[f]);
        test_dot4_family(all_families[f]);
    }
    test_dot4_dispatch();
    test_act_quant();
    test_ggml_x86_order();
    test_llama_order_kquants();
    return t_summary();
}
