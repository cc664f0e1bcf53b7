/* Dequantization tests.
 *   - F16/BF16 scalar conversions: exhaustive round trips, every f16 rounding tie against an
 *     independent nearest-value search, subnormals, overflow, Inf, NaN.
 *   - Every fixtures/dequant/<name>.dequant.gguf golden (ggml's own F32 output) against our to_float
 *     of the same tensors in the quantized source file: bit-for-bit.
 *   - I2_S tensors against the F32 model they were quantized from (exact), F16/BF16 model files
 *     against f16(F32)/bf16(F32) of the F32 model (exact).
 *   - Table/size contracts and quant_dequantize_tensor's error returns. */
#include "gguf.h"
#include "harness.h"
#include "quant.h"
#include "blocks.h"
#include "ref.h"

#include <dirent.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }

/* ---- F16 ---------------------------------------------------------------------------------- */

/* Exact value of an f16 bit pattern computed independently (ldexp in double). */
static double f16_value_ref(uint16_t h) {
    const int exp = (h >> 10) & 31, mant = h & 1023;
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (exp == 0) return sign * ldexp((double)mant, -24);
    return sign * ldexp((double)(1024 + mant), exp - 25);
}

/* Reference f32 -> f16 for finite x: nearest f16 by binary search over the positive finite
 * patterns (monotonic in bits), ties to the even pattern, |x| >= 65520 -> Inf. */
static uint16_t f16_from_f32_ref(float x) {
    const uint16_t sign = signbit(x) ? 0x8000 : 0;
    const double ax = fabs((double)x);
    if (ax >= 65520.0) return sign | 0x7C00;
    uint16_t lo = 0, hi = 0x7BFF;            /* largest pattern with value <= ax */
    while (lo < hi) {
        const uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if (f16_value_ref(mid) <= ax) lo = mid; else hi = (uint16_t)(mid - 1);
    }
    if (lo == 0x7BFF) return sign | lo;      /* in [65504, 65520) */
    const double below = ax - f16_value_ref(lo), above = f16_value_ref((uint16_t)(lo + 1)) - ax;
    uint16_t r = lo;
    if (above < below || (above == below && (lo & 1))) r = (uint16_t)(lo + 1);
    return sign | r;
}

static void test_f16(void) {
    t_begin("f16 -> f32 exhaustive (value, sign, Inf, NaN) and f32 -> f16 round trip");
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = quant_f16_to_f32((uint16_t)h);
        const bool is_nan = ((h >> 10) & 31) == 31 && (h & 1023);
        if (is_nan) {
            CHECK(isnan(f), "f16 %04x should be NaN", h);
            CHECK(quant_f32_to_f16(f) == ((h & 0x8000) | 0x7E00), "NaN %04x -> %04x", h, quant_f32_to_f16(f));
            continue;
        }
        if (((h >> 10) & 31) == 31) CHECK(isinf(f) && (signbit(f) != 0) == ((h & 0x8000) != 0), "Inf %04x", h);
        else CHECK((double)f == f16_value_ref((uint16_t)h) && (signbit(f) != 0) == ((h & 0x8000) != 0),
                   "f16 %04x -> %a, want %a", h, (double)f, f16_value_ref((uint16_t)h));
        CHECK(quant_f32_to_f16(f) == h, "round trip %04x -> %04x", h, quant_f32_to_f16(f));
    }
    t_end();

    t_begin("f32 -> f16 on every tie between neighbouring f16 values, +-1 ulp around it (RNE)");
    for (uint32_t h = 0; h < 0x7BFF; h++) {
        const double mid = (f16_value_ref((uint16_t)h) + f16_value_ref((uint16_t)(h + 1))) / 2;
        const float m = (float)mid;                   /* exact: 12 significant bits */
        CHECK((double)m == mid, "midpoint not exact at %04x", h);
        const uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        CHECK(quant_f32_to_f16(m) == even, "tie above %04x -> %04x, want %04x", h, quant_f32_to_f16(m), even);
        CHECK(quant_f32_to_f16(-m) == (0x8000 | even), "negative tie above %04x", h);
        const float just_below = nextafterf(m, 0.0f), just_above = nextafterf(m, INFINITY);
        CHECK(quant_f32_to_f16(just_below) == h, "below tie %04x -> %04x", h, quant_f32_to_f16(just_below));
        CHECK(quant_f32_to_f16(just_above) == h + 1, "above tie %04x -> %04x", h, quant_f32_to_f16(just_above));
    }
    t_end();

    t_begin("f32 -> f16 random floats against the nearest-value search");
    uint64_t rng = 12345;
    for (int i = 0; i < 200000; i++) {
        /* exponents spread over the f16 range and a bit beyond (subnormal, underflow, overflow) */
        const int e = (int)(t_rand_u64(&rng) % 50) - 30;
        const float x = ldexpf(t_rand_uniform(&rng, 1.0f, 2.0f), e) * ((t_rand_u64(&rng) & 1) ? -1.0f : 1.0f);
        const uint16_t want = f16_from_f32_ref(x), got = quant_f32_to_f16(x);
        CHECK(got == want, "x=%a -> %04x, want %04x", (double)x, got, want);
        if (t_case_failed()) break;
    }
    t_end();

    t_begin("f32 -> f16 special values");
    const struct { float x; uint16_t h; } cases[] = {
        { 0.0f, 0x0000 }, { -0.0f, 0x8000 }, { 1.0f, 0x3C00 }, { -2.0f, 0xC000 },
        { 65504.0f, 0x7BFF }, { 65519.996f, 0x7BFF }, { 65520.0f, 0x7C00 }, { -65520.0f, 0xFC00 },
        { 1e10f, 0x7C00 }, { INFINITY, 0x7C00 }, { -INFINITY, 0xFC00 }, { FLT_MAX, 0x7C00 },
        { 0x1p-24f, 0x0001 }, { 0x1p-25f, 0x0000 }, { -0x1p-25f, 0x8000 }, { 0x1.000002p-25f, 0x0001 },
        { 0x1.8p-24f, 0x0002 }, { 0x1.4p-23f, 0x0002 }, { 0x1p-14f, 0x0400 }, { 0x1.ff8p-15f, 0x03FF }, { 0x1.ffcp-15f, 0x0400 },
        { 0x1.ff0p-15f, 0x03FE }, { 1e-30f, 0x0000 }, { 0x1.002p0f, 0x3C00 }, { 0x1.006p0f, 0x3C02 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(quant_f32_to_f16(cases[i].x) == cases[i].h, "%a -> %04x, want %04x", (double)cases[i].x,
              quant_f32_to_f16(cases[i].x), cases[i].h);
    CHECK(quant_f32_to_f16(bits_f32(0x7FC00000u)) == 0x7E00, "qNaN");
    CHECK(quant_f32_to_f16(bits_f32(0xFF800001u)) == 0xFE00, "-sNaN");
    CHECK(quant_f32_to_f16(bits_f32(0x7F800001u)) == 0x7E00, "sNaN with a low payload must stay NaN");
    CHECK(f32_bits(quant_f16_to_f32(0x0001)) == f32_bits(0x1p-24f), "smallest subnormal");
    CHECK(f32_bits(quant_f16_to_f32(0x83FF)) == f32_bits(-0x1.ff8p-15f), "largest negative subnormal");
    t_end();
}

static void test_bf16(void) {
    t_begin("bf16 <-> f32: exhaustive round trip, RNE ties, NaN, overflow, subnormals");
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = quant_bf16_to_f32((uint16_t)h);
        CHECK(f32_bits(f) == h << 16, "bf16 %04x widening", h);
        const bool is_nan = (h & 0x7F80) == 0x7F80 && (h & 0x7F);
        if (is_nan) CHECK(quant_f32_to_bf16(f) == (h | 0x40), "NaN %04x -> %04x", h, quant_f32_to_bf16(f));
        else CHECK(quant_f32_to_bf16(f) == h, "round trip %04x -> %04x", h, quant_f32_to_bf16(f));
    }
    const struct { uint32_t x; uint16_t h; } cases[] = {
        { 0x3F808000u, 0x3F80 }, /* tie, even below */   { 0x3F818000u, 0x3F82 }, /* tie, odd below -> up */
        { 0x3F808001u, 0x3F81 }, { 0x3F807FFFu, 0x3F80 }, { 0xBF818000u, 0xBF82 },
        { 0x7F7FFFFFu, 0x7F80 }, /* FLT_MAX rounds to Inf */ { 0x7F7F7FFFu, 0x7F7F },
        { 0x7F800000u, 0x7F80 }, { 0xFF800000u, 0xFF80 }, { 0x7F800001u, 0x7FC0 }, { 0xFFC00000u, 0xFFC0 },
        { 0x00008000u, 0x0000 }, { 0x00018000u, 0x0002 }, { 0x00008001u, 0x0001 }, { 0x80000000u, 0x8000 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(quant_f32_to_bf16(bits_f32(cases[i].x)) == cases[i].h, "%08x -> %04x, want %04x", cases[i].x,
              quant_f32_to_bf16(bits_f32(cases[i].x)), cases[i].h);
    t_end();
}

/* ---- fixture helpers ---------------------------------------------------------------------- */

static bool open_gguf(const char *path, gguf_file *f) {
    gguf_error err;
    if (gguf_open(path, true, f, &err) != GGUF_OK) {
        CHECK(0, "cannot open %s: %s", path, err.msg);
        return false;
    }
    return true;
}

/* Dequantizes tensor t of file f into a fresh buffer (NULL + failed check on error). */
static float *dequant_tensor(const gguf_tensor *t) {
    const int64_t nrows = t->n_elements / t->ne[0];
    float *y = malloc((size_t)t->n_elements * sizeof(float));
    if (!y) { CHECK(0, "out of memory"); return NULL; }
    if (!quant_dequantize_tensor(t->type, t->data, y, t->ne[0], nrows)) {
        CHECK(0, "quant_dequantize_tensor(%s, %s) failed", t->name, quant_type_name(t->type));
        free(y);
        return NULL;
    }
    return y;
}

static bool same_shape(const gguf_tensor *a, const gguf_tensor *b) {
    for (int d = 0; d < GGUF_MAX_DIMS; d++) if (a->ne[d] != b->ne[d]) return false;
    return true;
}

/* Bitwise compare n floats; reports the count of mismatches and the first one. */
static void check_bits_equal(const float *got, const float *want, int64_t n, const char *what) {
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (f32_bits(got[i]) != f32_bits(want[i])) { if (first < 0) first = i; bad++; }
    if (bad)
        CHECK(0, "%s: %" PRId64 " of %" PRId64 " values differ; first at %" PRId64 ": got %a want %a",
              what, bad, n, first, (double)got[first], (double)want[first]);
}

/* ---- ggml dequant goldens ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_golden_file(const char *name) {
    char rel[512];
    snprintf(rel, sizeof rel, "fixtures/dequant/%s", name);
    t_begin("dequant golden %s", name);
    gguf_file golden, src;
    if (!open_gguf(t_shared(rel), &golden)) { t_end(); return; }
    gguf_str source;
    if (gguf_get_str(&golden, "llmpi.dequant.source", &source) != GGUF_OK) {
        CHECK(0, "no llmpi.dequant.source key");
        gguf_free(&golden); t_end(); return;
    }
    char src_name[256];
    snprintf(src_name, sizeof src_name, "%.*s", (int)(source.len < 200 ? source.len : 200), source.ptr);
    /* The key may hold a bare file name or a relative path: use the base name. */
    const char *base = strrchr(src_name, '/') ? strrchr(src_name, '/') + 1 : src_name;
    char src_rel[512];
    snprintf(src_rel, sizeof src_rel, "fixtures/real/%s", base);
    FILE *probe = fopen(t_shared(src_rel), "rb");
    if (probe) fclose(probe); else snprintf(src_rel, sizeof src_rel, "fixtures/synth/%s", base);
    if (!open_gguf(t_shared(src_rel), &src)) { gguf_free(&golden); t_end(); return; }

    static const char *const names[] = { "blk.0.ffn_down.weight", "blk.0.attn_k.weight" };
    for (int k = 0; k < 2; k++) {
        const gguf_tensor *g = gguf_find_tensor(&golden, names[k]);
        const gguf_tensor *s = gguf_find_tensor(&src, names[k]);
        CHECK(g && s, "%s missing in golden or source", names[k]);
        if (!g || !s) continue;
        CHECK(g->type == LLMPI_TYPE_F32, "golden %s is %s, not F32", names[k], quant_type_name(g->type));
        CHECK(same_shape(g, s), "%s shapes differ", names[k]);
        CHECK(quant_traits(s->type) && quant_traits(s->type)->is_quantized, "%s source type %s", names[k],
              quant_type_name(s->type));
        if (g->type != LLMPI_TYPE_F32 || !same_shape(g, s)) continue;
        float *y = dequant_tensor(s);
        if (!y) continue;
        char what[128];
        snprintf(what, sizeof what, "%s (%s)", names[k], quant_type_name(s->type));
        check_bits_equal(y, g->data, g->n_elements, what);
        free(y);
    }
    gguf_free(&src);
    gguf_free(&golden);
    t_end();
}

static void test_goldens(void) {
    DIR *dir = opendir(t_shared("fixtures/dequant"));
    t_begin("fixtures/dequant exists and holds goldens");
    CHECK(dir != NULL, "cannot open %s", t_shared("fixtures/dequant"));
    char *files[64];
    int n = 0;
    if (dir) {
        for (struct dirent *de; (de = readdir(dir)) != NULL;) {
            const size_t len = strlen(de->d_name);
            if (len > 13 && strcmp(de->d_name + len - 13, ".dequant.gguf") == 0 && n < 64)
                files[n++] = strdup(de->d_name);
        }
        closedir(dir);
    }
    CHECK(n >= 19, "found %d golden files, expected 19", n);
    t_end();
    qsort(files, (size_t)n, sizeof files[0], cmp_str);
    for (int i = 0; i < n; i++) { test_golden_file(files[i]); free(files[i]); }
}

/* ---- I2_S, F16, BF16 files against the F32 model they came from ---------------------------- */

/* For every tensor of type `type` in `quant_rel`, the same-named tensor in `f32_rel` (F32) mapped
 * through `expect` must equal our dequantization bit for bit. Returns the number compared. */
typedef float (*expect_fn)(float src, float i2s_scale);
static float expect_i2s(float src, float scale) { (void)scale; return src; }
static float expect_f16(float src, float scale) { (void)scale; return quant_f16_to_f32(quant_f32_to_f16(src)); }
static float expect_bf16(float src, float scale) { (void)scale; return quant_bf16_to_f32(quant_f32_to_bf16(src)); }

static int compare_model(const char *quant_rel, const char *f32_rel, uint32_t type, expect_fn expect,
                         float want_i2s_scale) {
    gguf_file q, f;
    int compared = 0;
    if (!open_gguf(t_shared(quant_rel), &q)) return 0;
    if (!open_gguf(t_shared(f32_rel), &f)) { gguf_free(&q); return 0; }
    for (uint64_t i = 0; i < q.n_tensors; i++) {
        const gguf_tensor *t = &q.tensors[i];
        if (t->type != type) continue;
        const gguf_tensor *ref = gguf_find_tensor(&f, t->name);
        CHECK(ref && ref->type == LLMPI_TYPE_F32 && same_shape(ref, t), "%s: no matching F32 tensor", t->name);
        if (!ref || ref->type != LLMPI_TYPE_F32 || !same_shape(ref, t)) continue;
        float scale = 1.0f;
        if (type == LLMPI_TYPE_I2_S) {
            scale = quant_i2s_tensor_scale(t->data, t->n_elements);
            CHECK(scale == want_i2s_scale, "%s: I2_S scale %g, want %g", t->name, (double)scale, (double)want_i2s_scale);
            uint64_t nbytes = 0;
            CHECK(quant_tensor_nbytes(type, t->ne, &nbytes) && nbytes == (uint64_t)t->n_elements / 4 + 32,
                  "%s: I2_S tensor bytes %" PRIu64, t->name, nbytes);
        }
        float *y = dequant_tensor(t);
        if (!y) continue;
        float *want = malloc((size_t)t->n_elements * sizeof(float));
        const float *src = ref->data;
        for (int64_t k = 0; k < t->n_elements; k++) want[k] = expect(src[k], scale);
        check_bits_equal(y, want, t->n_elements, t->name);
        if (type == LLMPI_TYPE_I2_S) {
            /* the row-level to_float gives the ternary values, without the scale */
            float row[1024];
            if (t->ne[0] <= 1024) {
                quant_traits(type)->to_float(t->data, row, t->ne[0]);
                for (int64_t k = 0; k < t->ne[0]; k++)
                    CHECK(row[k] * scale == y[k] && (row[k] == -1.0f || row[k] == 0.0f || row[k] == 1.0f),
                          "%s: row to_float[%" PRId64 "] = %g", t->name, k, (double)row[k]);
            }
        }
        free(want);
        free(y);
        compared++;
    }
    gguf_free(&f);
    gguf_free(&q);
    return compared;
}

static void test_models(void) {
    t_begin("I2_S: bitnet-3M-I2_S tensors == bitnet-3M-f32 (scale 1.0)");
    int n = compare_model("fixtures/real/bitnet-3M-I2_S.gguf", "fixtures/real/bitnet-3M-f32.gguf",
                          LLMPI_TYPE_I2_S, expect_i2s, 1.0f);
    CHECK(n == 56, "compared %d I2_S tensors, expected 56", n);
    t_end();

    t_begin("I2_S: bitnet-tiny-I2_S tensors == bitnet-tiny-F32 (scale 0.25)");
    n = compare_model("fixtures/synth/bitnet-tiny-I2_S.gguf", "fixtures/synth/bitnet-tiny-F32.gguf",
                      LLMPI_TYPE_I2_S, expect_i2s, 0.25f);
    CHECK(n == 14, "compared %d I2_S tensors, expected 14", n);
    t_end();

    t_begin("F16: llama-tiny-F16-pure == f16(llama-tiny-F32)");
    n = compare_model("fixtures/synth/llama-tiny-F16-pure.gguf", "fixtures/synth/llama-tiny-F32.gguf",
                      LLMPI_TYPE_F16, expect_f16, 0.0f);
    CHECK(n == 16, "compared %d F16 tensors, expected 16", n);
    t_end();

    t_begin("BF16: llama-tiny-BF16-pure == bf16(llama-tiny-F32)");
    n = compare_model("fixtures/synth/llama-tiny-BF16-pure.gguf", "fixtures/synth/llama-tiny-F32.gguf",
                      LLMPI_TYPE_BF16, expect_bf16, 0.0f);
    CHECK(n == 16, "compared %d BF16 tensors, expected 16", n);
    t_end();
}

/* ---- table and API contracts ---------------------------------------------------------------- */

static void test_contracts(void) {
    t_begin("traits: every supported type has to_float; weights have vec_dot; vec_dot types have from_float");
    int n_types = 0;
    for (uint32_t t = 0; t < LLMPI_TYPE_COUNT; t++) {
        const quant_type_traits *tr = quant_traits(t);
        if (!tr) continue;
        n_types++;
        CHECK(tr->to_float != NULL, "%s has no to_float", tr->name);
        if (!tr->is_activation_only) {
            CHECK(tr->vec_dot != NULL, "%s has no vec_dot", tr->name);
            const quant_type_traits *at = quant_traits(tr->vec_dot_type);
            CHECK(at && at->from_float != NULL, "%s: vec_dot_type %s has no from_float", tr->name,
                  quant_type_name(tr->vec_dot_type));
        }
    }
    CHECK(n_types == 21, "%d supported types, expected 21", n_types);
    t_end();

    t_begin("row sizes: I8_S = n + 8, I2_S = n / 4, tensor sizes reject activation types");
    CHECK(quant_row_size(LLMPI_TYPE_I8_S, 256) == 264, "I8_S row %zu", quant_row_size(LLMPI_TYPE_I8_S, 256));
    CHECK(quant_row_size(LLMPI_TYPE_I8_S, 1) == 9, "I8_S row of 1");
    CHECK(quant_row_size(LLMPI_TYPE_I2_S, 256) == 64, "I2_S row %zu", quant_row_size(LLMPI_TYPE_I2_S, 256));
    CHECK(quant_row_size(LLMPI_TYPE_I2_S, 100) == 0, "I2_S row of 100 must be rejected");
    CHECK(quant_row_size(LLMPI_TYPE_Q4_K, 768) == 3 * 144, "Q4_K row");
    CHECK(quant_row_size(LLMPI_TYPE_Q8_K, 256) == 292, "Q8_K row");
    const int64_t ne[4] = { 256, 4, 1, 1 };
    uint64_t nb = 0;
    CHECK(!quant_tensor_nbytes(LLMPI_TYPE_I8_S, ne, &nb), "I8_S tensors must be rejected");
    CHECK(!quant_tensor_nbytes(LLMPI_TYPE_Q8_K, ne, &nb), "Q8_K tensors must be rejected");
    CHECK(quant_tensor_nbytes(LLMPI_TYPE_I2_S, ne, &nb) && nb == 256 + 32, "I2_S tensor bytes %" PRIu64, nb);
    t_end();

    t_begin("quant_dequantize_tensor rejects bad input without crashing");
    static block_q4_0 blocks[4];
    float y[256];
    CHECK(!quant_dequantize_tensor(16 /* IQ2_XXS, unsupported */, blocks, y, 256, 1), "IQ2_XXS accepted");
    CHECK(!quant_dequantize_tensor(4 /* removed */, blocks, y, 32, 1), "removed type accepted");
    CHECK(!quant_dequantize_tensor(999, blocks, y, 32, 1), "type 999 accepted");
    CHECK(!quant_dequantize_tensor(LLMPI_TYPE_Q4_0, blocks, y, 33, 1), "row of 33 accepted for Q4_0");
    CHECK(!quant_dequantize_tensor(LLMPI_TYPE_Q4_0, blocks, y, 0, 1), "row of 0 accepted");
    CHECK(!quant_dequantize_tensor(LLMPI_TYPE_Q4_0, blocks, y, -32, 1), "negative row accepted");
    CHECK(!quant_dequantize_tensor(LLMPI_TYPE_Q4_0, NULL, y, 32, 1), "NULL data accepted");
    CHECK(!quant_dequantize_tensor(LLMPI_TYPE_Q4_K, blocks, y, 128, 1), "half a Q4_K block accepted");
    /* a valid call decodes: d = 1.0, all codes 8 + e%8 -> value e%8 */
    memset(blocks, 0, sizeof blocks);
    blocks[0].d = quant_f32_to_f16(1.0f);
    for (int j = 0; j < 16; j++) blocks[0].qs[j] = (uint8_t)((8 + j % 8) | (8 + (j + 16) % 8) << 4);
    CHECK(quant_dequantize_tensor(LLMPI_TYPE_Q4_0, blocks, y, 32, 1), "valid Q4_0 call failed");
    for (int e = 0; e < 32; e++) CHECK(y[e] == (float)(e % 8), "Q4_0 element %d = %g", e, (double)y[e]);
    t_end();

    t_begin("I8_S row: to_float gives a / s");
    float x[128];
    uint8_t row[128 + 8];
    for (int k = 0; k < 128; k++) x[k] = (float)(k - 64) / 16.0f;
    quantize_row_i8_s_act(x, row, 128);
    float back[128];
    dequantize_row_i8_s(row, back, 128);
    for (int k = 0; k < 128; k++)
        CHECK(fabsf(back[k] - x[k]) <= 0.5f * 4.0f / 127.0f + 1e-6f, "I8_S element %d: %g vs %g", k,
              (double)back[k], (double)x[k]);
    t_end();
}

/* TQ1_0 -> TQ2_0 (the engine's load-time conversion) keeps every value: random blocks with every trit
 * pattern per byte (all 243 base-3 bytes occur), random f16 d incl. 0 and negative. */
static void test_tq1_to_tq2(void) {
    t_begin("TQ1_0 -> TQ2_0 conversion is lossless (random blocks, all byte values, d = 0 / negative)");
    enum { NB = 40 };
    block_tq1_0 *src = calloc(NB, sizeof *src);
    block_tq2_0 *dst = calloc(NB, sizeof *dst);
    float *a = malloc(NB * QK_K * sizeof *a), *b = malloc(NB * QK_K * sizeof *b);
    uint64_t st = 12345;
    for (int i = 0; i < NB; i++) {
        for (size_t k = 0; k < sizeof src[i].qs; k++) src[i].qs[k] = (uint8_t)((i * 48 + (int)k) % 256);
        for (size_t k = 0; k < sizeof src[i].qh; k++) src[i].qh[k] = (uint8_t)t_rand_u64(&st);
        src[i].d = i == 0 ? 0 : quant_f32_to_f16((i % 3 == 0 ? -1.0f : 1.0f) * (0.01f + (float)(t_rand_u64(&st) % 1000) / 500.0f));
    }
    quant_tq1_0_to_tq2_0(src, dst, NB * QK_K);
    dequantize_row_tq1_0(src, a, NB * QK_K);
    dequantize_row_tq2_0(dst, b, NB * QK_K);
    int bad = 0;
    for (int i = 0; i < NB * QK_K; i++) bad += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    CHECK(bad == 0, "%d of %d values differ", bad, NB * QK_K);
    free(src); free(dst); free(a); free(b);
    t_end();
}

int main(void) {
    test_tq1_to_tq2();
    test_f16();
    test_bf16();
    test_contracts();
    test_goldens();
    test_models();
    return t_summary();
}
