/* bench_kernels: kernel microbenchmarks with a roofline (`make bench`, docs/kernels.md "make bench").
 *
 * For each weight type: a matrix-vector product (decode shape, default ne0 = 2048 input features x
 * ne1 = 8192 rows, Llama-3.2-1B's ffn_up/gate) and GEMMs (prompt micro-batches of 32 and 128 tokens),
 * at 1 and N threads. Everything goes through the production entry point kern_matmul() on an
 * llmpi_pool, so a row measures what the engine runs: activation conversion to the vec_dot type
 * (kern_act_quant), the chunked row split, the 4-column kernels for batches >= 4.
 *
 * Roofline first: read bandwidth of a buffer much larger than the last-level cache (default 256 MiB;
 * the Pi 5 has 2 MiB of L3, this EPYC a few tens of MiB), summed with the widest SIMD this build and
 * CPU have, on the same pool at 1 and N threads, median of several passes. Each kernel row reports
 * weight GB/s (weight bytes / median time) as a percentage of that figure.
 *
 * Decode streams every weight matrix from DRAM once per token (the whole model does not fit in any
 * cache), so the bench cycles through enough copies of each matrix that their total (>= the
 * bandwidth buffer) cannot stay cached: call i uses copy i mod n_copies. Without this, a 9 MiB Q4_0
 * matrix would be timed from L3 here and read "faster than memory".
 *
 * Weights are realistic blocks: 64 random rows quantized by the type's own quantizer (ternary types
 * from {-1, 0, +1} inputs), tiled over the matrix. Timing: warm-up calls, then repetitions until both
 * a minimum count and a time budget are reached (capped), median and min reported. */
#include "kernels.h"
#include "cpu_features.h"
#include "ternary.h"
#include "quant.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#define MAX_LIST 32
#define SEED_ROWS 64          /* distinct quantized rows, tiled over the matrix */
#define MAX_REPS 60

typedef struct {
    int64_t ne0, ne1;         /* input features (row length), rows */
    int batches[MAX_LIST], n_batches;
    int threads[MAX_LIST], n_threads;
    int types[LLMPI_TYPE_COUNT], n_types;
    const char *families[MAX_LIST];
    int n_families;
    bool family_all;          /* --family all: skip types a family does not implement itself */
    size_t bw_bytes;          /* bandwidth buffer and minimum cold-weight footprint, bytes */
    int min_reps;
    double budget_s;          /* per row: keep repeating until this much time is spent (or MAX_REPS) */
    bool csv, quick;
    bool act_cross;           /* --act-cross: ternary types also on the other activation scheme */
} bench_opts;

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n samples (sorts v in place). */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t rng_next(uint64_t *s) {   /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}
static float rng_normal(uint64_t *s) {    /* Box-Muller; u1 in (0, 1] */
    const double u1 = ((double)(rng_next(s) >> 11) + 1.0) / 9007199254740992.0;
    const double u2 = (double)(rng_next(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* ---- read bandwidth ---------------------------------------------------------------------------- */
/* Each sum adds the buffer as 64-bit integers into 4 independent accumulators (no FP: random bytes
 * would include NaNs/denormals) and returns the total so the loads cannot be dropped. n is a
 * multiple of 256 bytes and p 64-byte aligned (the caller slices the buffer that way). */
typedef uint64_t (*sum_fn)(const uint8_t *p, size_t n);

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static uint64_t sum_avx512(const uint8_t *p, size_t n) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 256) {
        a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512((const void *)(p + i + 64)));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512((const void *)(p + i + 128)));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512((const void *)(p + i + 192)));
    }
    /* lanes summed as uint64 (wrapping is intended; gcc's _mm512_reduce_add_epi64 adds as signed) */
    uint64_t lanes[8], r = 0;
    _mm512_storeu_si512((void *)lanes, _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
    for (int i = 0; i < 8; i++) r += lanes[i];
    return r;
}
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)));
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
static uint64_t sum_sse2(const uint8_t *p, size_t n) {
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 64) {
        a0 = _mm_add_epi64(a0, _mm_load_si128((const __m128i *)(p + i)));
        a1 = _mm_add_epi64(a1, _mm_load_si128((const __m128i *)(p + i + 16)));
        a2 = _mm_add_epi64(a2, _mm_load_si128((const __m128i *)(p + i + 32)));
        a3 = _mm_add_epi64(a3, _mm_load_si128((const __m128i *)(p + i + 48)));
    }
    uint64_t lanes[2];
    _mm_storeu_si128((__m128i *)lanes, _mm_add_epi64(_mm_add_epi64(a0, a1), _mm_add_epi64(a2, a3)));
    return lanes[0] + lanes[1];
}
static sum_fn pick_sum(const char **name) {
    const cpu_features *f = cpu_features_get();
    if (f->avx512f) { *name = "avx512"; return sum_avx512; }
    if (f->avx2) { *name = "avx2"; return sum_avx2; }
    *name = "sse2";
    return sum_sse2;
}
#elif defined(__aarch64__)
static uint64_t sum_neon(const uint8_t *p, size_t n) {
    uint64x2_t a0 = vdupq_n_u64(0), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 64) {
        a0 = vaddq_u64(a0, vld1q_u64((const uint64_t *)(const void *)(p + i)));
        a1 = vaddq_u64(a1, vld1q_u64((const uint64_t *)(const void *)(p + i + 16)));
        a2 = vaddq_u64(a2, vld1q_u64((const uint64_t *)(const void *)(p + i + 32)));
        a3 = vaddq_u64(a3, vld1q_u64((const uint64_t *)(const void *)(p + i + 48)));
    }
    return vaddvq_u64(vaddq_u64(vaddq_u64(a0, a1), vaddq_u64(a2, a3)));
}
static sum_fn pick_sum(const char **name) { *name = "neon"; return sum_neon; }
#else
/* Portable fallback: 64-bit scalar loads, 4 accumulators. */
static uint64_t sum_scalar(const uint8_t *p, size_t n) {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (size_t i = 0; i < n; i += 32) {
        uint64_t v[4];
        memcpy(v, p + i, sizeof v);
        a0 += v[0]; a1 += v[1]; a2 += v[2]; a3 += v[3];
    }
    return a0 + a1 + a2 + a3;
}
static sum_fn pick_sum(const char **name) { *name = "scalar"; return sum_scalar; }
#endif

typedef struct {
    const uint8_t *buf;
    size_t bytes;             /* multiple of 256 */
    sum_fn sum;
    uint64_t out[512 * 8];    /* one result per thread, 64 bytes apart (no false sharing) */
} bw_job;

/* Thread ith sums its contiguous slice (256-byte granules), like a thread streaming its row chunk. */
static void bw_task(void *argp, int ith, int nth) {
    bw_job *j = argp;
    const size_t granules = j->bytes / 256;
    const size_t g0 = granules * (size_t)ith / (size_t)nth, g1 = granules * (size_t)(ith + 1) / (size_t)nth;
    j->out[ith * 8] = j->sum(j->buf + g0 * 256, (g1 - g0) * 256);
}

/* Median read bandwidth (GB/s, 1e9 bytes) of buf on pool, after one warm-up pass. */
static double measure_bw(llmpi_pool *pool, bw_job *j, int reps) {
    double t[MAX_REPS];
    if (reps > MAX_REPS) reps = MAX_REPS;
    pool_run(pool, bw_task, j);
    for (int r = 0; r < reps; r++) {
        const double t0 = now_sec();
        pool_run(pool, bw_task, j);
        t[r] = now_sec() - t0;
    }
    return (double)j->bytes / median(t, reps) / 1e9;
}

/* ---- one weight type ---------------------------------------------------------------------------- */

static bool is_ternary(uint32_t t) {
    return t == LLMPI_TYPE_TQ1_0 || t == LLMPI_TYPE_TQ2_0 || t == LLMPI_TYPE_I2_S;
}

/* Cold copies of one weight matrix (see the file comment). */
typedef struct {
    uint8_t **copy;
    int n_copies;
    size_t bytes;             /* one copy: ne1 * row_bytes */
    size_t row_bytes;
    float tensor_scale;
    kern_tl1_matrix *lut;     /* ternary types: each copy repacked for the LUT kernels (NULL = none) */
} weights;

static void weights_free(weights *w) {
    for (int i = 0; w->lut && i < w->n_copies; i++) kern_tl1_free(&w->lut[i]);
    free(w->lut);
    for (int i = 0; i < w->n_copies; i++) free(w->copy[i]);
    free(w->copy);
    memset(w, 0, sizeof *w);
}

/* Returns false (with a message) if the type cannot be benchmarked at this shape or memory runs out. */
static bool weights_make(weights *w, uint32_t t, int64_t ne0, int64_t ne1, size_t min_footprint) {
    memset(w, 0, sizeof *w);
    const quant_type_traits *tr = quant_traits(t);
    w->row_bytes = quant_row_size(t, ne0);
    if (!w->row_bytes || !tr->quantize) {
        fprintf(stderr, "bench_kernels: %s: row length %lld is not a multiple of %lld (or no quantizer)\n",
                tr->name, (long long)ne0, (long long)tr->blck_size);
        return false;
    }
    w->bytes = w->row_bytes * (size_t)ne1;
    /* Seed: SEED_ROWS rows quantized by the type's quantizer (+ I2_S's 32-byte scale tail). */
    const int64_t seed_rows = ne1 < SEED_ROWS ? ne1 : SEED_ROWS;
    float *src = malloc((size_t)(seed_rows * ne0) * sizeof(float));
    uint8_t *seed = malloc(w->row_bytes * (size_t)seed_rows + 64);
    if (!src || !seed) { free(src); free(seed); fprintf(stderr, "bench_kernels: out of memory\n"); return false; }
    uint64_t rng = 0x5EED0000u + t;
    for (int64_t i = 0; i < seed_rows * ne0; i++)
        src[i] = is_ternary(t) ? (float)((int)(rng_next(&rng) % 3) - 1) : rng_normal(&rng);
    const size_t got = tr->quantize(src, seed, seed_rows, ne0, NULL);
    w->tensor_scale = t == LLMPI_TYPE_I2_S ? quant_i2s_tensor_scale(seed, seed_rows * ne0) : 1.0f;
    free(src);
    if (got == 0) { free(seed); fprintf(stderr, "bench_kernels: %s: quantizer failed\n", tr->name); return false; }

    size_t n = (min_footprint + w->bytes - 1) / w->bytes;
    if (n < 1) n = 1;
    if (n > 4096) n = 4096;
    w->copy = calloc(n, sizeof *w->copy);
    if (!w->copy) { free(seed); return false; }
    const size_t alloc = (w->bytes + 63) / 64 * 64;   /* 64-byte aligned like an mmapped tensor */
    for (size_t c = 0; c < n; c++) {
        w->copy[c] = aligned_alloc(64, alloc);
        if (!w->copy[c]) { free(seed); weights_free(w); fprintf(stderr, "bench_kernels: out of memory\n"); return false; }
        w->n_copies = (int)c + 1;
        if (c == 0) {
            for (int64_t r = 0; r < ne1; r++)
                memcpy(w->copy[0] + (size_t)r * w->row_bytes, seed + (size_t)(r % seed_rows) * w->row_bytes, w->row_bytes);
        } else {
            memcpy(w->copy[c], w->copy[0], w->bytes);   /* also faults the pages in before timing */
        }
    }
    free(seed);
    /* LUT mode (kernels/ternary.h): every copy repacked to the TL1 layout, as a LUT model would hold it */
    if (kern_tl1_supported(t)) {
        w->lut = calloc((size_t)w->n_copies, sizeof *w->lut);
        for (int c = 0; w->lut && c < w->n_copies; c++) {
            const kern_matrix m = { .data = w->copy[c], .type = t, .ne0 = ne0, .ne1 = ne1, .row_bytes = w->row_bytes,
                                    .tensor_scale = w->tensor_scale };
            if (kern_tl1_pack(&m, &w->lut[c]) != 0) {
                for (int i = 0; i < c; i++) kern_tl1_free(&w->lut[i]);
                free(w->lut);
                w->lut = NULL;
                fprintf(stderr, "bench_kernels: %s: LUT packing failed at this shape; MAD rows only\n",
                        quant_traits(t)->name);
            }
        }
    }
    return true;
}

typedef struct {
    double median_ms, min_ms;
    int reps;
} timing;

/* The code path kern_matmul takes for m and batch tokens under the current family (kernels/matmul.c):
 * "gemm-<isa>" for the float register-tiled GEMM (F32/F16/BF16, batch >= 2); else the dot family
 * (kern_vec_dot_impl) with "+dot4" when the 4-column kernel serves groups of 4 tokens; for a ternary
 * matrix on the other activation scheme "scalar-ref" if no family provides that pair (the reference
 * quant_vec_dot_for is what runs). tests/test_bench_kernels.c checks the table against this rule. */
static void bench_path_name(char *buf, size_t size, const kern_matrix *m, int batch) {
    const uint32_t own = (uint32_t)quant_traits(m->type)->vec_dot_type;
    if (batch >= 2 && kern_gemm_float_available(m)) {
        snprintf(buf, size, "gemm-%s", kern_gemm_float_impl());
    } else if (m->act_type && m->act_type != own) {
        const bool ref = kern_vec_dot_for(m->type, m->act_type) == quant_vec_dot_for(m->type, m->act_type);
        snprintf(buf, size, "%s", ref ? "scalar-ref" : kern_get_impl());
    } else {
        snprintf(buf, size, "%s%s", kern_vec_dot_impl(m->type), batch >= 4 && kern_vec_dot_4(m->type) ? "+dot4" : "");
    }
}

/* Times kern_matmul(m with each cold copy as data, batch tokens). */
static timing time_matmul(llmpi_pool *pool, const weights *w, kern_matrix m, bool lut, const float *x, int batch,
                          float *y, void *scratch, const bench_opts *o) {
    double s[MAX_REPS];
    const int64_t ne1 = m.ne1;
    /* Warm-up (pool threads awake, code and scratch hot): two calls, or one if a call is slow. */
    int c = 0;
    for (int warm = 0; warm < 2; warm++) {
        m.data = w->copy[c];
        c = (c + 1) % w->n_copies;
        const double t0 = now_sec();
        if (lut) kern_tl1_matmul(pool, &w->lut[(c + w->n_copies - 1) % w->n_copies], x, batch, y, ne1, scratch);
        else kern_matmul(pool, &m, x, batch, y, ne1, scratch);
        if (now_sec() - t0 > 0.01) break;
    }
    int n = 0;
    const double start = now_sec();
    while (n < MAX_REPS && (n < o->min_reps || now_sec() - start < o->budget_s)) {
        m.data = w->copy[c];
        c = (c + 1) % w->n_copies;
        const double t0 = now_sec();
        if (lut) kern_tl1_matmul(pool, &w->lut[(c + w->n_copies - 1) % w->n_copies], x, batch, y, ne1, scratch);
        else kern_matmul(pool, &m, x, batch, y, ne1, scratch);
        s[n++] = now_sec() - t0;
    }
    timing r = { 0, 1e30, n };
    for (int i = 0; i < n; i++) if (s[i] < r.min_ms) r.min_ms = s[i];
    r.min_ms *= 1e3;
    r.median_ms = median(s, n) * 1e3;
    return r;
}

/* ---- options -------------------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
        "usage: bench_kernels [options]\n"
        "  --types LIST     weight types, comma-separated (default: every weight type), e.g. q4_0,q4_k\n"
        "  --threads LIST   thread counts (default: 1,N with N = online cores)\n"
        "  --family LIST    kernel families for kern_set_impl: auto (default), scalar, avx2, avx512,\n"
        "                   neon, neon-dotprod, or all (every family this CPU runs; rows only for the\n"
        "                   types a family implements itself)\n"
        "  --shape NE0xNE1  matrix: NE0 input features (row length) x NE1 rows (default 2048x8192)\n"
        "  --batches LIST   tokens per matmul (default 1,32,128; --quick 1,32)\n"
        "  --quick          small and short: 2048x512, batches 1,32, 64 MiB roofline buffer, 3 reps\n"
        "  --bw-mib N       roofline buffer and minimum weight footprint in MiB (default 256)\n"
        "  --act-cross      ternary types also against the other activation scheme (variant act:I8_S /\n"
        "                   act:Q8_K; kern_matrix.act_type), slow where only the scalar reference exists\n"
        "  --csv            CSV on stdout (header line first); notes go to stderr\n");
}

/* Comma-separated positive ints; returns count or -1. */
static int parse_int_list(const char *s, int *out, int max) {
    int n = 0;
    while (*s) {
        char *end;
        const long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || v > 100000 || n == max || (*end && *end != ',')) return -1;
        out[n++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return n;
}

/* Returns 0, or 2 on a usage error (message printed). */
static int parse_opts(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->ne0 = 2048; o->ne1 = 8192;
    bool have_shape = false, have_batches = false, have_bw = false;
    static char fam_buf[256];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quick") == 0) { o->quick = true; continue; }
        if (strcmp(a, "--csv") == 0) { o->csv = true; continue; }
        if (strcmp(a, "--act-cross") == 0) { o->act_cross = true; continue; }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { usage(stdout); exit(0); }
        if (!v) { fprintf(stderr, "bench_kernels: unknown option or missing value: %s\n", a); usage(stderr); return 2; }
        i++;
        if (strcmp(a, "--types") == 0) {
            char buf[512];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                const int t = quant_type_from_name(tok);
                const quant_type_traits *tr = t >= 0 ? quant_traits((uint32_t)t) : NULL;
                if (!tr || tr->is_activation_only || !tr->vec_dot || o->n_types == LLMPI_TYPE_COUNT) {
                    fprintf(stderr, "bench_kernels: not a weight type this build can multiply: %s\n", tok);
                    return 2;
                }
                o->types[o->n_types++] = t;
            }
        } else if (strcmp(a, "--threads") == 0) {
            if ((o->n_threads = parse_int_list(v, o->threads, MAX_LIST)) <= 0) {
                fprintf(stderr, "bench_kernels: bad --threads: %s\n", v); return 2;
            }
        } else if (strcmp(a, "--batches") == 0) {
            if ((o->n_batches = parse_int_list(v, o->batches, MAX_LIST)) <= 0) {
                fprintf(stderr, "bench_kernels: bad --batches: %s\n", v); return 2;
            }
            have_batches = true;
        } else if (strcmp(a, "--shape") == 0) {
            long long ne0, ne1;
            char tail;
            if (sscanf(v, "%lldx%lld%c", &ne0, &ne1, &tail) != 2 || ne0 <= 0 || ne1 <= 0 || ne0 > (1 << 20) ||
                ne1 > (1 << 20)) {
                fprintf(stderr, "bench_kernels: bad --shape (want NE0xNE1): %s\n", v); return 2;
            }
            o->ne0 = ne0; o->ne1 = ne1;
            have_shape = true;
        } else if (strcmp(a, "--bw-mib") == 0) {
            const long mib = strtol(v, NULL, 10);
            if (mib <= 0 || mib > 65536) { fprintf(stderr, "bench_kernels: bad --bw-mib: %s\n", v); return 2; }
            o->bw_bytes = (size_t)mib << 20;
            have_bw = true;
        } else if (strcmp(a, "--family") == 0) {
            snprintf(fam_buf, sizeof fam_buf, "%s", v);
            for (char *tok = strtok(fam_buf, ","); tok && o->n_families < MAX_LIST; tok = strtok(NULL, ","))
                o->families[o->n_families++] = tok;
        } else {
            fprintf(stderr, "bench_kernels: unknown option: %s\n", a); usage(stderr); return 2;
        }
    }
    if (o->quick && !have_shape) o->ne1 = 512;
    if (!have_batches) {
        const int def[] = { 1, 32, 128 };
        o->n_batches = o->quick ? 2 : 3;
        memcpy(o->batches, def, sizeof(int) * (size_t)o->n_batches);
    }
    if (!have_bw) o->bw_bytes = (size_t)(o->quick ? 64 : 256) << 20;
    o->min_reps = o->quick ? 3 : 5;
    o->budget_s = o->quick ? 0.02 : 0.25;
    if (o->n_threads == 0) {
        const int n = pool_default_threads();
        o->threads[o->n_threads++] = 1;
        if (n > 1) o->threads[o->n_threads++] = n;
    }
    if (o->n_types == 0) {
        for (uint32_t t = 0; t < LLMPI_TYPE_COUNT; t++) {
            const quant_type_traits *tr = quant_traits(t);
            if (tr && !tr->is_activation_only && tr->vec_dot && tr->quantize) o->types[o->n_types++] = (int)t;
        }
    }
    static const char *const every_family[] = { "scalar", "avx2", "avx512", "neon", "neon-dotprod" };
    if (o->n_families == 0) o->families[o->n_families++] = "auto";
    if (o->n_families == 1 && strcmp(o->families[0], "all") == 0) {
        o->n_families = 0;
        o->family_all = true;
        for (size_t f = 0; f < sizeof every_family / sizeof every_family[0]; f++)
            if (kern_set_impl(every_family[f]) == 0) o->families[o->n_families++] = every_family[f];
        kern_set_impl("auto");
    }
    for (int f = 0; f < o->n_families; f++) {
        if (kern_set_impl(o->families[f]) != 0) {
            fprintf(stderr, "bench_kernels: kernel family '%s' is unknown or not available on this CPU\n", o->families[f]);
            return 2;
        }
    }
    kern_set_impl("auto");
    return 0;
}

/* ---- main ------------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    bench_opts o;
    const int perr = parse_opts(argc, argv, &o);
    if (perr) return perr;
    FILE *notes = o.csv ? stderr : stdout;
    const double t_start = now_sec();

    llmpi_pool *pools[MAX_LIST] = { 0 };
    for (int i = 0; i < o.n_threads; i++) {
        if (!(pools[i] = pool_create(o.threads[i]))) { fprintf(stderr, "bench_kernels: pool_create failed\n"); return 1; }
    }

    /* Roofline: read bandwidth at each thread count, measured again after the kernels (the buffer is
     * kept) so a reader can see whether the machine's load changed while the bench ran. */
    double bw[MAX_LIST];
    const int bw_reps = o.quick ? 5 : 15;
    const char *sum_name;
    bw_job *bwj = aligned_alloc(64, (sizeof(bw_job) + 63) / 64 * 64);
    uint8_t *bw_buf = aligned_alloc(64, o.bw_bytes);
    if (!bwj || !bw_buf) {
        fprintf(stderr, "bench_kernels: out of memory for the %zu-byte roofline buffer\n", o.bw_bytes);
        return 1;
    }
    for (size_t i = 0; i < o.bw_bytes; i += 8) { const uint64_t v = i * 0x9E3779B97F4A7C15ull; memcpy(bw_buf + i, &v, 8); }
    bwj->buf = bw_buf;
    bwj->bytes = o.bw_bytes / 256 * 256;
    bwj->sum = pick_sum(&sum_name);
    fprintf(notes, "# bench_kernels: cpu %s; kernel family auto = %s\n", cpu_features_string(), kern_get_impl());
    fprintf(notes, "# roofline: read bandwidth of a %zu MiB buffer, %s integer sum, median of %d passes:",
            o.bw_bytes >> 20, sum_name, bw_reps);
    for (int i = 0; i < o.n_threads; i++) {
        bw[i] = measure_bw(pools[i], bwj, bw_reps);
        fprintf(notes, " %d thread%s %.2f GB/s%s", o.threads[i], o.threads[i] > 1 ? "s" : "", bw[i],
                i + 1 < o.n_threads ? "," : "\n");
    }
    fprintf(notes, "# weights: %lld x %lld (ne0 input features x ne1 rows), cycled through copies totalling >= %zu MiB;"
            " GB/s = weight bytes / median; GOP/s = 2*ne0*ne1*batch / median\n",
            (long long)o.ne0, (long long)o.ne1, o.bw_bytes >> 20);

    /* Variants (the "variant" column). With --act-cross, ternary weights also run with the other
     * activation scheme (kern_matrix.act_type: TQ1_0/TQ2_0 against I8_S, I2_S against Q8_K; engine
     * act_scheme), so the table shows what llmpi_params.act_scheme costs.
     * Ternary types run in both kernel modes (kern_set_ternary_mode, kernels/ternary.h): "mad" =
     * kern_matmul over the file layout; "lut" = kern_tl1_matmul over the repacked TL1 copies. */
    static const char *const ternary_modes[] = { "mad", "lut" };
    const int n_ternary_modes = (int)(sizeof ternary_modes / sizeof ternary_modes[0]);

    if (o.csv)
        printf("type,ne0,ne1,batch,threads,kernel,variant,median_ms,min_ms,gb_s,gop_s,pct_bw,bw_gb_s,reps\n");
    else
        printf("%-7s %-11s %5s %3s %-18s %-10s %10s %10s %8s %8s %6s\n", "type", "shape", "batch", "thr", "kernel",
               "variant", "median_ms", "min_ms", "GB/s", "GOP/s", "%BW");

    int max_batch = 1;
    for (int b = 0; b < o.n_batches; b++) if (o.batches[b] > max_batch) max_batch = o.batches[b];
    float *x = malloc((size_t)max_batch * (size_t)o.ne0 * sizeof(float));
    float *y = malloc((size_t)max_batch * (size_t)o.ne1 * sizeof(float));
    if (!x || !y) { fprintf(stderr, "bench_kernels: out of memory\n"); return 1; }
    uint64_t rng = 7;
    for (size_t i = 0; i < (size_t)max_batch * (size_t)o.ne0; i++) x[i] = rng_normal(&rng);

    int status = 0, rows_printed = 0;
    for (int ti = 0; ti < o.n_types; ti++) {
        const uint32_t t = (uint32_t)o.types[ti];
        const quant_type_traits *tr = quant_traits(t);
        weights w;
        if (!weights_make(&w, t, o.ne0, o.ne1, o.bw_bytes)) { status = 1; continue; }
        uint32_t acts[2] = { 0, 0 };   /* 0 = the type's own vec_dot_type */
        int n_acts = 1;
        const uint32_t cross = t == LLMPI_TYPE_I2_S ? LLMPI_TYPE_Q8_K : is_ternary(t) ? LLMPI_TYPE_I8_S : 0;
        if (o.act_cross && cross && kern_vec_dot_for(t, cross)) acts[n_acts++] = cross;
        const int n_modes = is_ternary(t) && w.lut ? n_ternary_modes : 1;
        for (int ai = 0; ai < n_acts; ai++) {
            const kern_matrix m = { .type = t, .ne0 = o.ne0, .ne1 = o.ne1, .row_bytes = w.row_bytes,
                                    .tensor_scale = w.tensor_scale, .act_type = acts[ai] };
            size_t scratch_bytes = kern_matmul_scratch_bytes(&m, max_batch);
            if (w.lut && kern_tl1_scratch_bytes(&w.lut[0], max_batch) > scratch_bytes)
                scratch_bytes = kern_tl1_scratch_bytes(&w.lut[0], max_batch);
            void *scratch = aligned_alloc(64, (scratch_bytes + 63) / 64 * 64);
            if (!scratch) { fprintf(stderr, "bench_kernels: out of memory\n"); status = 1; continue; }
            for (int fi = 0; fi < o.n_families; fi++) {
                kern_set_impl(o.families[fi]);
                if (o.family_all && strcmp(kern_vec_dot_impl(t), o.families[fi]) != 0) continue;
                for (int mi = 0; mi < n_modes; mi++) {
                    const char *mode = n_modes > 1 ? ternary_modes[mi] : NULL;
                    /* LUT kernels only for the type's own activation type (kern_tl1_matmul converts to it) */
                    if (mode && strcmp(mode, "lut") == 0 && acts[ai]) continue;
                    if (mode) kern_set_ternary_mode(mode);
                    const bool lut = mode && kern_ternary_use_lut(t);
                    char variant[32];
                    if (acts[ai]) snprintf(variant, sizeof variant, "%s%sact:%s", mode ? mode : "", mode ? "+" : "",
                                           quant_type_name(acts[ai]));
                    else snprintf(variant, sizeof variant, "%s", mode ? mode : "plain");
                    for (int bi = 0; bi < o.n_batches; bi++) {
                        const int batch = o.batches[bi];
                        char kernel[48];
                        if (lut) snprintf(kernel, sizeof kernel, "%s", kern_ternary_impl(t));
                        else bench_path_name(kernel, sizeof kernel, &m, batch);
                        for (int thi = 0; thi < o.n_threads; thi++) {
                            const timing tm = time_matmul(pools[thi], &w, m, lut, x, batch, y, scratch, &o);
                            const double sec = tm.median_ms * 1e-3;
                            const double gbs = (double)w.bytes / sec / 1e9;
                            const double gops = 2.0 * (double)o.ne0 * (double)o.ne1 * batch / sec / 1e9;
                            const double pct = 100.0 * gbs / bw[thi];
                            if (o.csv)
                                printf("%s,%lld,%lld,%d,%d,%s,%s,%.6f,%.6f,%.4f,%.4f,%.2f,%.4f,%d\n", tr->name,
                                       (long long)o.ne0, (long long)o.ne1, batch, o.threads[thi], kernel, variant,
                                       tm.median_ms, tm.min_ms, gbs, gops, pct, bw[thi], tm.reps);
                            else {
                                char shp[32];
                                snprintf(shp, sizeof shp, "%lldx%lld", (long long)o.ne0, (long long)o.ne1);
                                printf("%-7s %-11s %5d %3d %-18s %-10s %10.3f %10.3f %8.2f %8.2f %6.1f\n", tr->name,
                                       shp, batch, o.threads[thi], kernel, variant, tm.median_ms, tm.min_ms, gbs, gops,
                                       pct);
                            }
                            fflush(stdout);
                            rows_printed++;
                        }
                    }
                }
            }
            kern_set_impl("auto");
            kern_set_ternary_mode("auto");
            free(scratch);
        }
        weights_free(&w);
    }
    fprintf(notes, "# roofline again after the kernels (%%BW above uses the first):");
    for (int i = 0; i < o.n_threads; i++)
        fprintf(notes, " %d thread%s %.2f GB/s%s", o.threads[i], o.threads[i] > 1 ? "s" : "",
                measure_bw(pools[i], bwj, bw_reps), i + 1 < o.n_threads ? "," : "\n");
    free(bw_buf);
    free(bwj);
    fprintf(notes, "# %d rows in %.1f s\n", rows_printed, now_sec() - t_start);
    free(x); free(y);
    for (int i = 0; i < o.n_threads; i++) pool_free(pools[i]);
    return status;
}
