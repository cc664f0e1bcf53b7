/* Reference vec_dot and activation-quantizer tests.
 *
 * vec_dot: for every weight type, random *valid* weight rows are built directly (random bytes for
 * every code field, so every bit pattern occurs, and small random finite f16 scales), the
 * activation row goes through from_float of the type's vec_dot_type, and vec_dot must equal the
 * double-precision dot product of the dequantized weights and dequantized activations:
 *     |vec_dot - sum w_k a_k| <= 1e-5 * sum |w_k| |a_k|   (+ a min-term allowance for Q4_1/Q5_1)
 * The integer partial sums are exact, so the only error is f32 rounding of the per-block scale
 * products and the f32 accumulation over <= 7 blocks: a few ulp (~1e-7) of the magnitude sum.
 * Q4_1/Q5_1 use the activation's stored s = f16(d * sum q) for the min term instead of
 * f16(d) * sum q; the reference adds that exact difference, sum_blocks m (F(s) - F(d) sum q), and
 * the bound includes sum |m F(s)|.
 *
 * VD_DEBUG=1 prints every case's error ratios.
 *
 * Activation quantizers: the rounding rules of every variant on constructed ties and against
 * independent formulas, Q8_K scale sign and bsums, I8_S layout, all-zero blocks. */
#include "harness.h"
#include "quant.h"
#include "blocks.h"
#include "ref.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }

/* Offsets of the f16 scale fields inside one block of each weight type (-1 terminated). */
typedef struct { uint32_t type; int f16_fields[3]; } scale_layout;
static const scale_layout layouts[] = {
    { LLMPI_TYPE_Q4_0,   { offsetof(block_q4_0, d), -1 } },
    { LLMPI_TYPE_Q4_1,   { offsetof(block_q4_1, d), offsetof(block_q4_1, m), -1 } },
    { LLMPI_TYPE_Q5_0,   { offsetof(block_q5_0, d), -1 } },
    { LLMPI_TYPE_Q5_1,   { offsetof(block_q5_1, d), offsetof(block_q5_1, m), -1 } },
    { LLMPI_TYPE_Q8_0,   { offsetof(block_q8_0, d), -1 } },
    { LLMPI_TYPE_Q2_K,   { offsetof(block_q2_K, d), offsetof(block_q2_K, dmin), -1 } },
    { LLMPI_TYPE_Q3_K,   { offsetof(block_q3_K, d), -1 } },
    { LLMPI_TYPE_Q4_K,   { offsetof(block_q4_K, d), offsetof(block_q4_K, dmin), -1 } },
    { LLMPI_TYPE_Q5_K,   { offsetof(block_q5_K, d), offsetof(block_q5_K, dmin), -1 } },
    { LLMPI_TYPE_Q6_K,   { offsetof(block_q6_K, d), -1 } },
    { LLMPI_TYPE_IQ4_NL, { offsetof(block_iq4_nl, d), -1 } },
    { LLMPI_TYPE_IQ4_XS, { offsetof(block_iq4_xs, d), -1 } },
    { LLMPI_TYPE_TQ1_0,  { offsetof(block_tq1_0, d), -1 } },
    { LLMPI_TYPE_TQ2_0,  { offsetof(block_tq2_0, d), -1 } },
    { LLMPI_TYPE_I2_S,   { -1 } },   /* per-tensor scale, not in the row */
};

static const scale_layout *layout_of(uint32_t t) {
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
        if (layouts[i].type == t) return &layouts[i];
    return NULL;
}

static void put_f16(uint8_t *p, float v) {
    const uint16_t h = quant_f32_to_f16(v);
    memcpy(p, &h, sizeof h);
}

/* Fills one random weight row of n elements of type t (row_bytes bytes). */
static void random_weight_row(uint32_t t, uint8_t *row, size_t row_bytes, int64_t n, uint64_t *rng) {
    const quant_type_traits *tr = quant_traits(t);
    if (t == LLMPI_TYPE_F32) {
        float *w = (float *)row;
        for (int64_t i = 0; i < n; i++) w[i] = t_rand_normal(rng);
        return;
    }
    if (t == LLMPI_TYPE_F16 || t == LLMPI_TYPE_BF16) {
        uint16_t *w = (uint16_t *)row;
        for (int64_t i = 0; i < n; i++)
            w[i] = t == LLMPI_TYPE_F16 ? quant_f32_to_f16(t_rand_normal(rng)) : quant_f32_to_bf16(t_rand_normal(rng));
        return;
    }
    for (size_t i = 0; i < row_bytes; i++) row[i] = (uint8_t)(t_rand_u64(rng) >> 56);
    const scale_layout *lay = layout_of(t);
    for (int64_t b = 0; b < n / tr->blck_size; b++)
        for (int f = 0; lay->f16_fields[f] >= 0; f++)
            put_f16(row + (size_t)b * tr->type_size + (size_t)lay->f16_fields[f], t_rand_uniform(rng, -0.05f, 0.05f));
}

/* Q4_1/Q5_1: vec_dot's min term is m * F(s) while the dequantized activations sum to F(d) * sum(q).
 * That difference is the format's, not rounding, so the reference adds it exactly:
 * correction = sum_blocks m * (F(s) - F(d) sum q); *mag_out gets sum |m| |F(s)| for the bound. */
static double min_term_correction(uint32_t t, const uint8_t *w, const uint8_t *act, int64_t n, double *mag_out) {
    double corr = 0.0, mag = 0.0;
    if (t == LLMPI_TYPE_Q4_1 || t == LLMPI_TYPE_Q5_1) {
        const block_q8_1 *y = (const block_q8_1 *)act;
        for (int64_t b = 0; b < n / 32; b++) {
            uint16_t mh;
            memcpy(&mh, w + (size_t)b * quant_traits(t)->type_size + 2, sizeof mh);   /* m follows d */
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += y[b].qs[j];
            const double m = quant_f16_to_f32(mh), fs = quant_f16_to_f32(y[b].s);
            corr += m * (fs - (double)quant_f16_to_f32(y[b].d) * sum);
            mag += fabs(m * fs);
        }
    }
    *mag_out = mag;
    return corr;
}

static double worst_ratio;   /* largest |error| / bound seen, for the log */

static void test_type(uint32_t t) {
    const quant_type_traits *tr = quant_traits(t);
    const quant_type_traits *at = quant_traits(tr->vec_dot_type);
    t_begin("vec_dot %s . %s vs double dot of dequantized rows", tr->name, at ? at->name : "?");
    if (!at || !tr->vec_dot || !at->from_float || !tr->to_float || !at->to_float) {
        CHECK(0, "missing function pointers");
        t_end();
        return;
    }
    /* Lengths: 1, 2, 3 and 7 blocks (float types: 1, 2, 3, 7 and 259 elements). */
    const int64_t blck = tr->blck_size;
    const int64_t lengths[5] = { blck, 2 * blck, 3 * blck, 7 * blck, 259 };
    const int n_lengths = blck == 1 ? 5 : 4;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        for (int li = 0; li < n_lengths; li++) {
            const int64_t n = lengths[li];
            uint64_t rng = seed * 7919 + (uint64_t)li * 104729 + t;
            const size_t wbytes = quant_row_size(t, n), abytes = quant_row_size(tr->vec_dot_type, n);
            uint8_t *w = malloc(wbytes), *act = malloc(abytes);
            float *x = malloc((size_t)n * sizeof(float)), *wf = malloc((size_t)n * sizeof(float));
            float *af = malloc((size_t)n * sizeof(float));
            random_weight_row(t, w, wbytes, n, &rng);
            /* activations: normal, scaled per seed; seed 4 has one outlier per row */
            const float scale = seed == 2 ? 1e-3f : seed == 3 ? 40.0f : 1.0f;
            for (int64_t k = 0; k < n; k++) x[k] = scale * t_rand_normal(&rng);
            if (seed == 4) x[n / 2] = 25.0f;
            at->from_float(x, act, n);
            tr->to_float(w, wf, n);
            at->to_float(act, af, n);
            double ref = 0.0, mag = 0.0;
            for (int64_t k = 0; k < n; k++) {
                ref += (double)wf[k] * (double)af[k];
                mag += fabs((double)wf[k] * (double)af[k]);
            }
            float got = NAN;
            tr->vec_dot(n, &got, w, act);
            double min_mag;
            ref += min_term_correction(t, w, act, n, &min_mag);
            const double bound = 1e-5 * (mag + min_mag) + 1e-30;
            const double err = fabs((double)got - ref);
            if (err / bound > worst_ratio) worst_ratio = err / bound;
            if (getenv("VD_DEBUG")) printf("  %s n=%lld seed %llu: err/mag %.3g err/bound %.3g\n", tr->name, (long long)n, (unsigned long long)seed, err / (mag + 1e-300), err / bound);
            CHECK(isfinite(got) && err <= bound, "seed %llu n=%lld: got %.9g want %.9g (|err| %.3g, bound %.3g)",
                  (unsigned long long)seed, (long long)n, (double)got, ref, err, bound);
            free(w); free(act); free(x); free(wf); free(af);
        }
    }
    /* All-zero weight bytes against a non-zero activation: exactly 0 (F16/BF16/F32 zero too). */
    {
        const int64_t n = 2 * (blck > 1 ? blck : 32);
        const size_t wbytes = quant_row_size(t, n), abytes = quant_row_size(tr->vec_dot_type, n);
        uint8_t *w = calloc(1, wbytes), *act = malloc(abytes);
        float *x = malloc((size_t)n * sizeof(float));
        for (int64_t k = 0; k < n; k++) x[k] = (float)(k % 7) - 3.0f;
        at->from_float(x, act, n);
        float got = NAN;
        tr->vec_dot(n, &got, w, act);
        /* I2_S all-zero bytes are code 0 = -1 everywhere: the dot is -sum(a)/s. Others: 0. */
        if (t == LLMPI_TYPE_I2_S) {
            float af[512];
            at->to_float(act, af, n);
            double want = 0.0;
            for (int64_t k = 0; k < n; k++) want -= af[k];
            CHECK(fabs((double)got - want) <= 1e-5 * fabs(want), "I2_S all-code-0 row: %g vs %g", (double)got, want);
        } else {
            CHECK(got == 0.0f, "zero weights give %g", (double)got);
        }
        free(w); free(act); free(x);
    }
    t_end();
}

/* ---- activation quantizers ----------------------------------------------------------------- */

static void test_q8_0_rules(void) {
    t_begin("Q8_0/Q8_1 activation rounding: x86 (127/amax, RNE), ref (1/d, roundf), arm (1/d, RNE)");
    /* amax = 127 makes id exactly 1 in every variant, so codes are round(x) and ties are visible. */
    float x[32] = { 127.0f, 2.5f, -2.5f, 3.5f, -3.5f, 0.5f, -0.5f, 1.5f, 126.5f, -126.5f, 0.49999997f, -1.5f };
    const int want_even[12] = { 127, 2, -2, 4, -4, 0, 0, 2, 126, -126, 0, -2 };
    const int want_away[12] = { 127, 3, -3, 4, -4, 1, -1, 2, 127, -127, 0, -2 };
    block_q8_0 b;
    block_q8_1 b1;
    quantize_row_q8_0_act(x, &b, 32);
    for (int j = 0; j < 12; j++) CHECK(b.qs[j] == want_even[j], "x86 x=%g -> %d, want %d", (double)x[j], b.qs[j], want_even[j]);
    CHECK(b.d == quant_f32_to_f16(1.0f), "x86 d");
    quantize_row_q8_0_arm(x, &b, 32);
    for (int j = 0; j < 12; j++) CHECK(b.qs[j] == want_even[j], "arm x=%g -> %d, want %d", (double)x[j], b.qs[j], want_even[j]);
    quantize_row_q8_0_ref(x, &b, 32);
    for (int j = 0; j < 12; j++) CHECK(b.qs[j] == want_away[j], "ref x=%g -> %d, want %d", (double)x[j], b.qs[j], want_away[j]);
    quantize_row_q8_1_ref(x, &b1, 32);
    for (int j = 0; j < 12; j++) CHECK(b1.qs[j] == want_away[j], "q8_1 ref x=%g -> %d", (double)x[j], b1.qs[j]);
    quantize_row_q8_1_act(x, &b1, 32);
    int sum = 0;
    for (int j = 0; j < 32; j++) { CHECK(j >= 12 || b1.qs[j] == want_even[j], "q8_1 x86 %d", j); sum += b1.qs[j]; }
    CHECK(b1.s == quant_f32_to_f16(1.0f * (float)sum), "q8_1 s = f16(d * sum): %04x vs sum %d", b1.s, sum);
    t_end();

    t_begin("Q8_0/Q8_1 activation codes match independent formulas on random blocks");
    uint64_t rng = 99;
    int x86_vs_arm_differ = 0;
    for (int it = 0; it < 3000; it++) {
        float v[32];
        const float sc = ldexpf(1.0f, (int)(t_rand_u64(&rng) % 40) - 20);
        for (int j = 0; j < 32; j++) v[j] = sc * t_rand_normal(&rng);
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(v[j]));
        const float d = amax / 127.0f;
        const float id_x86 = 127.0f / amax, id_ref = 1.0f / d;
        block_q8_0 bx, br, ba;
        block_q8_1 b1x;
        quantize_row_q8_0_act(v, &bx, 32);
        quantize_row_q8_0_ref(v, &br, 32);
        quantize_row_q8_0_arm(v, &ba, 32);
        quantize_row_q8_1_act(v, &b1x, 32);
        CHECK(bx.d == quant_f32_to_f16(d) && br.d == bx.d && ba.d == bx.d && b1x.d == bx.d, "d mismatch");
        int s = 0;
        for (int j = 0; j < 32; j++) {
            const int cx = (int)rintf(v[j] * id_x86), cr = (int)roundf(v[j] * id_ref), ca = (int)rintf(v[j] * id_ref);
            CHECK(bx.qs[j] == cx && b1x.qs[j] == cx, "x86 code %d vs %d", bx.qs[j], cx);
            CHECK(br.qs[j] == cr, "ref code %d vs %d", br.qs[j], cr);
            CHECK(ba.qs[j] == ca, "arm code %d vs %d", ba.qs[j], ca);
            if (bx.qs[j] != ba.qs[j]) x86_vs_arm_differ++;
            s += bx.qs[j];
        }
        CHECK(b1x.s == quant_f32_to_f16(d * (float)s), "q8_1 s");
        if (t_case_failed()) break;
    }
    printf("  (x86 and arm Q8_0 codes differed %d times in 96000 elements)\n", x86_vs_arm_differ);
    t_end();

    t_begin("Q8_0/Q8_1 all-zero block: d = 0, codes 0, s = 0");
    float z[64] = { 0 };
    z[5] = -0.0f;
    block_q8_0 bz[2];
    block_q8_1 bz1[2];
    memset(bz, 0x55, sizeof bz);
    memset(bz1, 0x55, sizeof bz1);
    quantize_row_q8_0_act(z, bz, 64);
    quantize_row_q8_1_act(z, bz1, 64);
    for (int k = 0; k < 2; k++) {
        CHECK(bz[k].d == 0 && bz1[k].d == 0 && bz1[k].s == 0, "zero block %d scales", k);
        for (int j = 0; j < 32; j++) CHECK(bz[k].qs[j] == 0 && bz1[k].qs[j] == 0, "zero block %d code %d", k, j);
    }
    t_end();
}

static void test_q8_K_rules(void) {
    t_begin("Q8_K: signed max (first wins), iscale = -127/max, RNE, d = 1/iscale, bsums");
    float x[256] = { 0 };
    /* max element -127 -> iscale = 1: codes are round-half-even(x) */
    x[0] = 2.5f; x[1] = -2.5f; x[2] = 3.5f; x[3] = 0.5f; x[4] = -0.5f; x[5] = -127.0f; x[6] = 126.5f; x[7] = 1.5f;
    const int want[8] = { 2, -2, 4, 0, 0, -127, 126, 2 };
    block_q8_K b;
    quantize_row_q8_K_act(x, &b, 256);
    for (int j = 0; j < 8; j++) CHECK(b.qs[j] == want[j], "x=%g -> %d, want %d", (double)x[j], b.qs[j], want[j]);
    CHECK(b.d == 1.0f, "d = %g, want 1", (double)b.d);
    /* positive max: iscale = -1, d = -1, codes negated */
    x[5] = 127.0f;
    quantize_row_q8_K_act(x, &b, 256);
    CHECK(b.d == -1.0f, "d = %g, want -1 (largest element positive)", (double)b.d);
    CHECK(b.qs[0] == -2 && b.qs[2] == -4 && b.qs[5] == -127 && b.qs[6] == -126, "negated codes");
    /* tie in magnitude: the first one sets the sign */
    memset(x, 0, sizeof x);
    x[3] = 5.0f; x[10] = -5.0f; x[11] = 1.0f;
    quantize_row_q8_K_act(x, &b, 256);
    CHECK(b.qs[3] == -127 && b.qs[10] == 127 && b.d < 0.0f, "first max wins: q3=%d q10=%d d=%g", b.qs[3], b.qs[10], (double)b.d);
    CHECK(b.d == 1.0f / (-127.0f / 5.0f), "d = 1/iscale exactly");
    t_end();

    t_begin("Q8_K random blocks: codes, d, bsums consistent; dequant within |d|/2");
    uint64_t rng = 4242;
    for (int it = 0; it < 200; it++) {
        float v[512];
        const float sc = ldexpf(1.0f, (int)(t_rand_u64(&rng) % 30) - 15);
        for (int j = 0; j < 512; j++) v[j] = sc * t_rand_normal(&rng);
        block_q8_K bk[2];
        quantize_row_q8_K_act(v, bk, 512);
        for (int blk = 0; blk < 2; blk++) {
            const float *xb = v + 256 * blk;
            float amax = 0.0f, max = 0.0f;
            for (int j = 0; j < 256; j++) if (fabsf(xb[j]) > amax) { amax = fabsf(xb[j]); max = xb[j]; }
            const float iscale = -127.0f / max;
            CHECK(f32_bits(bk[blk].d) == f32_bits(1.0f / iscale), "d");
            for (int j = 0; j < 256; j++) {
                int c = (int)rintf(iscale * xb[j]);
                if (c > 127) c = 127;
                CHECK(bk[blk].qs[j] == c, "code %d vs %d", bk[blk].qs[j], c);
                CHECK(fabsf(bk[blk].d * (float)bk[blk].qs[j] - xb[j]) <= 0.5001f * fabsf(bk[blk].d), "dequant error");
            }
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += bk[blk].qs[16 * g + l];
                CHECK(bk[blk].bsums[g] == s, "bsums[%d] = %d, want %d", g, bk[blk].bsums[g], s);
            }
        }
        if (t_case_failed()) break;
    }
    t_end();

    t_begin("Q8_K all-zero block: d = 0, codes 0, bsums 0");
    float z[256] = { 0 };
    block_q8_K bz;
    memset(&bz, 0x55, sizeof bz);
    quantize_row_q8_K_act(z, &bz, 256);
    CHECK(bz.d == 0.0f, "d");
    for (int j = 0; j < 256; j++) CHECK(bz.qs[j] == 0, "code %d", j);
    for (int g = 0; g < 16; g++) CHECK(bz.bsums[g] == 0, "bsum %d", g);
    t_end();
}

static void test_i8_s_rules(void) {
    t_begin("I8_S: s = (float)(127/amax) in double, RNE codes, A = sum, layout n + 8");
    float x[128] = { 0 };
    x[0] = 127.0f; x[1] = 2.5f; x[2] = -3.5f; x[3] = 0.5f; x[4] = -0.5f; x[5] = -127.0f; x[6] = 1.5f;
    const int want[7] = { 127, 2, -4, 0, 0, -127, 2 };
    uint8_t row[128 + 8];
    CHECK(quant_row_size(LLMPI_TYPE_I8_S, 128) == sizeof row, "row size");
    memset(row, 0xAA, sizeof row);
    quantize_row_i8_s_act(x, row, 128);
    const int8_t *codes = (const int8_t *)row;
    float s;
    int32_t A;
    memcpy(&s, row + 128, sizeof s);
    memcpy(&A, row + 132, sizeof A);
    CHECK(s == 1.0f, "s = %g", (double)s);
    int sum = 0;
    for (int k = 0; k < 128; k++) sum += codes[k];
    for (int j = 0; j < 7; j++) CHECK(codes[j] == want[j], "x=%g -> %d, want %d", (double)x[j], codes[j], want[j]);
    CHECK(A == sum, "A = %d, want %d", A, sum);

    /* all-zero row: the 1e-5 floor gives s = 127e5, codes 0, A = 0 */
    memset(x, 0, sizeof x);
    quantize_row_i8_s_act(x, row, 128);
    memcpy(&s, row + 128, sizeof s);
    memcpy(&A, row + 132, sizeof A);
    CHECK(s == (float)(127.0 / 1e-5) && A == 0, "zero row: s=%g A=%d", (double)s, A);
    for (int k = 0; k < 128; k++) CHECK(codes[k] == 0, "zero row code %d", k);
    /* below the floor: amax 1e-7 -> s = 1.27e7, x * s = 1.27 -> 1 */
    x[9] = 1e-7f; x[10] = -4e-7f;
    quantize_row_i8_s_act(x, row, 128);
    memcpy(&A, row + 132, sizeof A);
    CHECK(codes[9] == 1 && codes[10] == (int)rintf(-4e-7f * (float)(127.0 / 1e-5)) && A == codes[9] + codes[10],
          "floor: codes %d %d A %d", codes[9], codes[10], A);

    /* random rows against the formula (double amax, f32 product, rint) */
    uint64_t rng = 777;
    for (int it = 0; it < 200; it++) {
        float v[384];
        for (int k = 0; k < 384; k++) v[k] = t_rand_normal(&rng) * 3.0f;
        uint8_t r[384 + 8];
        quantize_row_i8_s_act(v, r, 384);
        double amax = 0.0;
        for (int k = 0; k < 384; k++) if (fabs((double)v[k]) > amax) amax = fabs((double)v[k]);
        const float ws = (float)(127.0 / fmax(amax, 1e-5));
        float gs;
        int32_t gA, sA = 0;
        memcpy(&gs, r + 384, sizeof gs);
        memcpy(&gA, r + 388, sizeof gA);
        CHECK(f32_bits(gs) == f32_bits(ws), "scale");
        for (int k = 0; k < 384; k++) {
            const int c = (int)rintf(v[k] * ws);
            CHECK((int8_t)r[k] == (c < -128 ? -128 : c > 127 ? 127 : c), "code %d", k);
            sA += (int8_t)r[k];
        }
        CHECK(gA == sA, "A");
        if (t_case_failed()) break;
    }
    t_end();
}

static void test_float_acts(void) {
    t_begin("F32/F16/BF16 activation conversion");
    float x[37];
    uint64_t rng = 5;
    for (int k = 0; k < 37; k++) x[k] = t_rand_normal(&rng) * 100.0f;
    x[3] = 1e6f; x[4] = 1e-9f; x[5] = NAN;
    float y32[37];
    uint16_t h[37], b[37];
    quantize_row_f32_act(x, y32, 37);
    quantize_row_f16_act(x, h, 37);
    quantize_row_bf16_act(x, b, 37);
    for (int k = 0; k < 37; k++) {
        CHECK(f32_bits(y32[k]) == f32_bits(x[k]), "f32 copy %d", k);
        CHECK(h[k] == quant_f32_to_f16(x[k]), "f16 %d", k);
        CHECK(b[k] == quant_f32_to_bf16(x[k]), "bf16 %d", k);
    }
    CHECK(h[3] == 0x7C00 && h[4] == 0 && (h[5] & 0x7E00) == 0x7E00, "f16 specials %04x %04x %04x", h[3], h[4], h[5]);
    t_end();
}

/* Non-finite inputs are garbage in, but must not be undefined behaviour (run under UBSan). */
static void test_nonfinite_acts(void) {
    t_begin("activation quantizers accept NaN/Inf input without UB");
    float x[256];
    for (int k = 0; k < 256; k++) x[k] = (float)(k % 9) - 4.0f;
    x[1] = INFINITY; x[40] = NAN; x[77] = -INFINITY;
    static uint8_t buf[2048];
    void (*const fns[])(const float *restrict, void *restrict, int64_t) = {
        quantize_row_q8_0_act, quantize_row_q8_0_ref, quantize_row_q8_0_arm, quantize_row_q8_1_act,
        quantize_row_q8_1_ref, quantize_row_q8_1_arm, quantize_row_q8_K_act, quantize_row_i8_s_act,
        quantize_row_f16_act, quantize_row_bf16_act,
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) fns[i](x, buf, 256);
    /* Blocks without a non-finite value are unaffected: Q8_0 block 3 (elements 96..127). */
    block_q8_0 b[8];
    quantize_row_q8_0_ref(x, b, 256);
    CHECK(b[3].d == quant_f32_to_f16(4.0f / 127.0f), "finite block scale");
    t_end();
}

/* vec_dot over a known block: hand-computable values to catch symmetric mistakes the random
 * comparison (which shares to_float's decoding) could miss. */
static void test_known_values(void) {
    t_begin("vec_dot known values: Q4_0, Q8_0, TQ2_0, I2_S against hand-computed sums");
    float x[256];
    for (int k = 0; k < 256; k++) x[k] = (float)((k % 11) - 5);   /* amax 5 */
    /* Q4_0 with d = 1 and code 9 everywhere (weight +1): dot = sum of dequantized activations */
    block_q4_0 w4[8];
    for (int b = 0; b < 8; b++) { w4[b].d = quant_f32_to_f16(1.0f); memset(w4[b].qs, 0x99, 16); }
    block_q8_0 a8[8];
    quantize_row_q8_0_act(x, a8, 256);
    double want = 0.0;
    for (int b = 0; b < 8; b++)
        for (int j = 0; j < 32; j++) want += (double)a8[b].qs[j] * quant_f16_to_f32(a8[b].d);
    float got;
    vec_dot_q4_0_q8_0(256, &got, w4, a8);
    CHECK(fabs(got - want) <= 1e-5 * fabs(want) + 1e-6, "Q4_0: %g vs %g", (double)got, want);
    /* TQ2_0 code 2 everywhere (weight +d) with d = 0.5: dot = 0.5 * sum of Q8_K-dequantized x */
    block_tq2_0 t2;
    memset(t2.qs, 0xAA, sizeof t2.qs);
    t2.d = quant_f32_to_f16(0.5f);
    block_q8_K ak;
    quantize_row_q8_K_act(x, &ak, 256);
    want = 0.0;
    for (int j = 0; j < 256; j++) want += 0.5 * ak.d * ak.qs[j];
    vec_dot_tq2_0_q8_K(256, &got, &t2, &ak);
    CHECK(fabs(got - want) <= 1e-5 * fabs(want) + 1e-6, "TQ2_0: %g vs %g", (double)got, want);
    /* I2_S: elements p of each group get code 2 (+1) in the top pair, code 1 (0) elsewhere:
     * byte 0b10010101 -> elements p (c=0) = +1, p+32/p+64/p+96 = 0. */
    block_i2_s g[2];
    memset(g, 0x95, sizeof g);
    uint8_t a[256 + 8];
    quantize_row_i8_s_act(x, a, 256);
    float s;
    memcpy(&s, a + 256, sizeof s);
    int32_t S = 0;
    for (int grp = 0; grp < 2; grp++)
        for (int p = 0; p < 32; p++) S += ((const int8_t *)a)[128 * grp + p];
    vec_dot_i2_s_i8_s(256, &got, g, a);
    CHECK(got == (float)S / s, "I2_S: %g vs %g", (double)got, (double)((float)S / s));
    t_end();
}

int main(void) {
    test_q8_0_rules();
    test_q8_K_rules();
    test_i8_s_rules();
    test_float_acts();
    test_nonfinite_acts();
    test_known_values();
    for (uint32_t t = 0; t < LLMPI_TYPE_COUNT; t++) {
        const quant_type_traits *tr = quant_traits(t);
        if (tr && !tr->is_activation_only) test_type(t);
    }
    printf("  (largest vec_dot |error| / bound over all cases: %.3g)\n", worst_ratio);
    return t_summary();
}
