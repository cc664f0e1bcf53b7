/* llmpi-quantize: GGUF model quantizer, compatible with llama.cpp's llama-quantize (docs/quantize.md).
 *
 *   llmpi-quantize [options] IN.gguf OUT.gguf TYPE [THREADS]
 *   llmpi-quantize [options] --synthetic SHAPE OUT.gguf TYPE
 *
 * Pipeline: open the source (a GGUF file, mmapped, or a synthetic model generator) -> plan the type of
 * every tensor (tools/quant_plan.c, llama.cpp's preset rules) -> write the header to a temporary file
 * next to OUT -> stream every tensor in llama.cpp's order: rows in chunks of a few MB are converted to
 * f32, optionally ternarized, quantized by the worker pool and appended -> fsync, rename to OUT.
 * Memory stays at a few chunk buffers whatever the model size. Any failure or a fatal signal removes
 * the temporary file, so OUT is either the complete new file or untouched. */
#include "gguf.h"
#include "imatrix.h"
#include "quant.h"
#include "quant_plan.h"
#include "synthetic.h"
#include "threadpool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_F32_BYTES (8u << 20)   /* target size of one chunk of f32 rows */
#define QUANT_VERSION   2            /* general.quantization_version (ggml's GGML_QNT_VERSION) */

/* ---- messages ------------------------------------------------------------------------------- */

/* A progress bar is on screen without its newline (errors must start on a fresh line). */
static bool g_bar_open;

static void die_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die_msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (g_bar_open) { fputc('\n', stderr); g_bar_open = false; }
    fputs("llmpi-quantize: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void warn_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warn_msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("llmpi-quantize: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void format_bytes(double b, char *out, size_t len) {
    if (b >= 1024.0 * 1024 * 1024) snprintf(out, len, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024) snprintf(out, len, "%.2f MiB", b / (1024.0 * 1024));
    else if (b >= 1024.0) snprintf(out, len, "%.1f KiB", b / 1024.0);
    else snprintf(out, len, "%.0f B", b);
}

static void format_shape(const qp_tensor *t, char *out, size_t len) {
    int n = snprintf(out, len, "%" PRId64, t->ne[0]);
    for (uint32_t d = 1; d < t->n_dims && n > 0 && (size_t)n < len; d++)
        n += snprintf(out + n, len - (size_t)n, " x %" PRId64, t->ne[d]);
}

/* ---- temporary output and signals ----------------------------------------------------------- */

/* Path of the temporary output while it exists; the signal handler removes it. */
static char g_tmp_path[PATH_MAX + 32];
static volatile sig_atomic_t g_tmp_live;

static void on_fatal_signal(int sig) {
    if (g_tmp_live) unlink(g_tmp_path);   /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_signal_handlers(void) {
    const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
    /* Past the file size limit, write() then fails with EFBIG and the normal error path cleans up. */
    signal(SIGXFSZ, SIG_IGN);
}

static void remove_tmp(void) {
    if (g_tmp_live) {
        g_tmp_live = 0;
        unlink(g_tmp_path);
    }
}

/* ---- source: a GGUF file or a synthetic model ----------------------------------------------- */

typedef struct {
    bool         is_synth;
    gguf_file    g;
    synth_model *synth;
    qp_model_info info;
} source;

/* Source tensor i (in source order). */
static const char *src_name(const source *s, size_t i) {
    return s->is_synth ? synth_get_tensor(s->synth, i)->name : s->g.tensors[i].name;
}

static size_t src_count(const source *s) {
    return s->is_synth ? synth_n_tensors(s->synth) : (size_t)s->g.n_tensors;
}

static int64_t kv_first_int(const gguf_file *g, const char *key, int64_t dflt) {
    int64_t v;
    if (gguf_get_int(g, key, &v) == GGUF_OK) return v;
    const gguf_value *arr;
    if (gguf_get_arr(g, key, &arr) == GGUF_OK && gguf_arr_int(arr, 0, &v)) return v;
    return dflt;
}

static bool source_open_gguf(source *s, const char *path, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    gguf_error ge;
    if (gguf_open(path, true, &s->g, &ge) != GGUF_OK) {
        snprintf(err, errlen, "%s: %s", path, ge.msg);
        return false;
    }
    gguf_str arch;
    if (gguf_get_str(&s->g, "general.architecture", &arch) != GGUF_OK) {
        snprintf(err, errlen, "%s: no general.architecture key (not a model file?)", path);
        gguf_free(&s->g);
        return false;
    }
    snprintf(s->info.arch, sizeof s->info.arch, "%.*s", (int)(arch.len < 63 ? arch.len : 63), arch.ptr);
    char key[160];
    snprintf(key, sizeof key, "%s.block_count", s->info.arch);
    s->info.n_layer = (int)kv_first_int(&s->g, key, 0);
    snprintf(key, sizeof key, "%s.attention.head_count", s->info.arch);
    s->info.n_head = (int)kv_first_int(&s->g, key, 1);
    snprintf(key, sizeof key, "%s.attention.head_count_kv", s->info.arch);
    s->info.n_head_kv = (int)kv_first_int(&s->g, key, s->info.n_head);
    snprintf(key, sizeof key, "%s.expert_count", s->info.arch);
    s->info.n_expert = (int)kv_first_int(&s->g, key, 0);
    if (s->info.n_head_kv <= 0) s->info.n_head_kv = s->info.n_head;
    return true;
}

static bool source_open_synth(source *s, const char *shape_name, uint64_t seed, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    const synth_shape *shape = synth_shape_find(shape_name);
    if (!shape) {
        snprintf(err, errlen, "unknown synthetic shape '%s' (see --synthetic list)", shape_name);
        return false;
    }
    s->is_synth = true;
    s->synth = synth_create(shape, seed);
    if (!s->synth) { snprintf(err, errlen, "out of memory building the synthetic model"); return false; }
    snprintf(s->info.arch, sizeof s->info.arch, "%s", shape->arch);
    s->info.n_layer = shape->n_layer;
    s->info.n_head = shape->n_head;
    s->info.n_head_kv = shape->n_head_kv;
    return true;
}

static void source_close(source *s) {
    if (s->is_synth) synth_free(s->synth);
    else gguf_free(&s->g);
}

/* ---- options -------------------------------------------------------------------------------- */

typedef struct {
    const char *in_path, *out_path, *type_name, *synth_shape, *imatrix_path, *layer_types_path;
    int    n_threads;
    bool   dry_run, allow_requantize, force, quiet;
    uint64_t seed;
    qp_options plan;
} options;

static void usage(FILE *f) {
    fprintf(f,
        "usage: llmpi-quantize [options] IN.gguf OUT.gguf TYPE [THREADS]\n"
        "       llmpi-quantize [options] --synthetic SHAPE OUT.gguf TYPE\n"
        "       llmpi-quantize --list-types | --synthetic list\n"
        "\n"
        "Quantizes a F32/F16/BF16 GGUF model with llama-quantize's presets (same per-tensor type choices).\n"
        "\n"
        "options:\n"
        "  -t, --threads N            worker threads (default: all cores)\n"
        "  --pure                     one type for every quantizable tensor (no per-tensor rules)\n"
        "  --tensor-type PATTERN=T    type T for tensors matching PATTERN (regex, or glob with * ? [);\n"
        "                             prefix re: or glob: to force; repeatable, first match wins\n"
        "  --layer-types FILE         per-layer types / bit widths (see docs/quantize.md)\n"
        "  --output-tensor-type T     type of output.weight (or of a tied token_embd)\n"
        "  --token-embedding-type T   type of token_embd.weight\n"
        "  --leave-output-tensor      keep output.weight in its source type\n"
        "  --imatrix FILE             importance matrix (llama.cpp imatrix GGUF or legacy .dat)\n"
        "  --allow-requantize         accept already-quantized input (quality suffers)\n"
        "  --force                    ternarize (TQ1_0/TQ2_0/I2_S) a non-BitNet model anyway\n"
        "  --dry-run                  print the plan (tensor, shape, type, bytes) and bpw; write nothing\n"
        "  --synthetic SHAPE          random-weight model of a named shape instead of IN.gguf\n"
        "  --seed N                   seed of the synthetic weights (default 1)\n"
        "  -q, --quiet                no progress output\n");
}

static void list_types(void) {
    size_t n;
    const qp_preset *p = qp_presets(&n);
    printf("presets (TYPE argument; aliases: Q3_K=Q3_K_M Q4_K=Q4_K_M Q5_K=Q5_K_M):\n");
    for (size_t i = 0; i < n; i++)
        printf("  %2d  %-7s %-8s %s\n", p[i].ftype, p[i].name, quant_type_name(p[i].base_type), p[i].desc);
    printf("\nweight types for --tensor-type / --layer-types / --output-tensor-type:\n ");
    for (uint32_t t = 0; t < LLMPI_TYPE_COUNT; t++)
        if (qp_quantizer(t)) printf(" %s", quant_type_name(t));
    printf("\n");
}

static void list_shapes(void) {
    size_t n;
    const synth_shape *s = synth_shapes(&n);
    printf("%-12s %-7s %6s %4s %4s %4s %6s %7s  %s\n", "shape", "arch", "n_embd", "L", "H", "Hkv", "n_ff", "vocab", "based on");
    for (size_t i = 0; i < n; i++)
        printf("%-12s %-7s %6d %4d %4d %4d %6d %7d  %s%s\n", s[i].name, s[i].arch, s[i].n_embd, s[i].n_layer, s[i].n_head,
               s[i].n_head_kv, s[i].n_ff, s[i].n_vocab, s[i].based_on, s[i].tied ? ", tied output" : "");
}

static int parse_type_arg(const char *opt, const char *v) {
    int t = qp_parse_type(v);
    if (t < 0) die_msg("%s: unknown or unwritable type '%s' (see --list-types)", opt, v);
    return t;
}

/* Returns 0 to run, 1 on a usage error, 2 when the request was fully handled (help, lists). */
static int parse_args(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    qp_options_init(&o->plan);
    o->seed = 1;
    const char *pos[4];
    int n_pos = 0;
    char err[512];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE() do { if (!next) { die_msg("%s needs a value", a); return 1; } i++; } while (0)
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { usage(stdout); return 2; }
        else if (strcmp(a, "--list-types") == 0) { list_types(); return 2; }
        else if (strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) {
            NEED_VALUE();
            char *end;
            long v = strtol(next, &end, 10);
            if (*end || v < 1 || v > 256) { die_msg("%s: expected a thread count 1..256, got '%s'", a, next); return 1; }
            o->n_threads = (int)v;
        }
        else if (strcmp(a, "--pure") == 0) o->plan.pure = true;
        else if (strcmp(a, "--allow-requantize") == 0) o->allow_requantize = true;
        else if (strcmp(a, "--leave-output-tensor") == 0) o->plan.leave_output_tensor = true;
        else if (strcmp(a, "--force") == 0) o->force = true;
        else if (strcmp(a, "--dry-run") == 0) o->dry_run = true;
        else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) o->quiet = true;
        else if (strcmp(a, "--tensor-type") == 0) {
            NEED_VALUE();
            if (!qp_options_add_override(&o->plan, next, err, sizeof err)) { die_msg("%s", err); return 1; }
        }
        else if (strcmp(a, "--layer-types") == 0) { NEED_VALUE(); o->layer_types_path = next; }
        else if (strcmp(a, "--output-tensor-type") == 0) {
            NEED_VALUE();
            if ((o->plan.output_tensor_type = parse_type_arg(a, next)) < 0) return 1;
        }
        else if (strcmp(a, "--token-embedding-type") == 0) {
            NEED_VALUE();
            if ((o->plan.token_embedding_type = parse_type_arg(a, next)) < 0) return 1;
        }
        else if (strcmp(a, "--imatrix") == 0) { NEED_VALUE(); o->imatrix_path = next; }
        else if (strcmp(a, "--synthetic") == 0) {
            NEED_VALUE();
            if (strcmp(next, "list") == 0) { list_shapes(); return 2; }
            o->synth_shape = next;
        }
        else if (strcmp(a, "--seed") == 0) {
            NEED_VALUE();
            char *end;
            unsigned long long v = strtoull(next, &end, 10);
            if (*end || !*next) { die_msg("--seed: expected a number, got '%s'", next); return 1; }
            o->seed = v;
        }
        else if (a[0] == '-' && a[1] != 0) { die_msg("unknown option '%s' (see --help)", a); return 1; }
        else {
            if (n_pos == 4) { die_msg("too many arguments (see --help)"); return 1; }
            pos[n_pos++] = a;
        }
#undef NEED_VALUE
    }
    int need = o->synth_shape ? 2 : 3;
    if (n_pos < need) {
        usage(stderr);
        return 1;
    }
    int k = 0;
    if (!o->synth_shape) o->in_path = pos[k++];
    o->out_path = pos[k++];
    o->type_name = pos[k++];
    if (k < n_pos) {
        char *end;
        long v = strtol(pos[k], &end, 10);
        if (*end || v < 1 || v > 256 || o->synth_shape) { die_msg("unexpected argument '%s'", pos[k]); return 1; }
        if (!o->n_threads) o->n_threads = (int)v;
        k++;
    }
    if (k < n_pos) { die_msg("unexpected argument '%s'", pos[k]); return 1; }
    o->plan.preset = qp_preset_find(o->type_name);
    if (!o->plan.preset) {
        die_msg("unknown type '%s' (presets: Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_0 Q4_1 Q4_K_S Q4_K_M Q5_0 Q5_1 Q5_K_S Q5_K_M "
                "Q6_K Q8_0 IQ4_NL IQ4_XS TQ1_0 TQ2_0 I2_S F16 BF16 F32; see --list-types)", o->type_name);
        return 1;
    }
    if (o->layer_types_path && !qp_options_load_layer_types(&o->plan, o->layer_types_path, err, sizeof err)) {
        die_msg("%s", err);
        return 1;
    }
    return 0;
}

/* ---- the job -------------------------------------------------------------------------------- */

typedef struct {
    qp_tensor  plan;
    size_t     src_index;     /* tensor index in the source */
    uint64_t   src_bytes;     /* bytes in the source (for synthetic: as F32) */
    uint64_t   out_bytes;     /* bytes in the output (before padding) */
    const float *imatrix;     /* NULL or ne[0] importance weights */
    bool       ternarize;     /* absmean ternarization before quantizing (BitNet) */
} tensor_job;

typedef struct {
    options   *opt;
    source    *src;
    tensor_job *jobs;
    size_t     n_jobs;
    imatrix_data im;
    bool       have_imatrix;
    llmpi_pool *pool;
    uint32_t   alignment;
} context;

/* Converts rows [row0, row0 + nrows) of source tensor j to f32 in out (nrows * ne0 floats). */
static void load_rows_f32(const context *c, const tensor_job *j, int64_t row0, int64_t nrows, float *out) {
    const int64_t ne0 = j->plan.ne[0];
    if (c->src->is_synth) {
        synth_fill_rows(c->src->synth, j->src_index, row0, nrows, out);
        return;
    }
    const gguf_tensor *t = &c->src->g.tensors[j->src_index];
    const size_t row_bytes = quant_row_size(t->type, ne0);
    const uint8_t *p = (const uint8_t *)t->data + (size_t)row0 * row_bytes;
    if (t->type == LLMPI_TYPE_F32) {
        memcpy(out, p, (size_t)nrows * row_bytes);
        return;
    }
    const quant_type_traits *tr = quant_traits(t->type);
    for (int64_t r = 0; r < nrows; r++) tr->to_float(p + (size_t)r * row_bytes, out + r * ne0, ne0);
    if (t->type == LLMPI_TYPE_I2_S) {
        const float scale = quant_i2s_tensor_scale(t->data, t->n_elements);
        for (int64_t i = 0; i < nrows * ne0; i++) out[i] *= scale;
    }
}

/* ---- ternarization statistics (per row, so the result does not depend on the thread count) ---- */

typedef struct {
    const context *c;
    const tensor_job *j;
    int64_t row0, nrows, rows_per_task, n_tasks;
    float  *scratch;       /* per thread: rows_per_task * ne0 floats */
    double *abs_sum;       /* per row */
    float  *abs_max;       /* per row */
    float  *magnitude;     /* per row: the common |x| of the non-zero elements, 0 if none, -1 if they differ */
} stats_task;

static void stats_worker(void *arg, int ith, int nth) {
    (void)nth;
    stats_task *s = arg;
    const int64_t ne0 = s->j->plan.ne[0];
    float *buf = s->scratch + (size_t)ith * (size_t)(s->rows_per_task * ne0);
    for (int64_t task; (task = pool_chunk_next(s->c->pool)) < s->n_tasks;) {
        const int64_t r0 = task * s->rows_per_task;
        const int64_t nr = r0 + s->rows_per_task <= s->nrows ? s->rows_per_task : s->nrows - r0;
        load_rows_f32(s->c, s->j, s->row0 + r0, nr, buf);
        for (int64_t r = 0; r < nr; r++) {
            const float *x = buf + r * ne0;
            double sum = 0;
            float mx = 0, mag = 0;
            for (int64_t i = 0; i < ne0; i++) {
                const float a = fabsf(x[i]);
                sum += a;
                if (a > mx) mx = a;
                if (!isfinite(a)) mag = -1;   /* NaN/inf: not ternary (and ternarized to 0 below) */
                else if (a != 0 && mag >= 0) mag = mag == 0 ? a : (mag == a ? mag : -1);
            }
            s->abs_sum[r0 + r] = sum;
            s->abs_max[r0 + r] = mx;
            s->magnitude[r0 + r] = mag;
        }
    }
}

/* Result of scanning a tensor: whether it is already ternary {-a, 0, +a}, its absmean scale and max|x|. */
typedef struct {
    bool  already_ternary;
    float magnitude;   /* a, when already ternary */
    float absmean;     /* max(mean|x|, 1e-5) */
    float absmax;
} ternary_stats;

static bool scan_ternary(const context *c, const tensor_job *j, ternary_stats *out) {
    const int64_t ne0 = j->plan.ne[0];
    const int64_t nrows = j->plan.ne[1] * j->plan.ne[2] * j->plan.ne[3];
    const int nth = pool_n_threads(c->pool);
    int64_t rows_per_task = (int64_t)(CHUNK_F32_BYTES / 4 / (uint64_t)ne0 / (uint64_t)nth);
    if (rows_per_task < 1) rows_per_task = 1;
    stats_task s = { .c = c, .j = j, .row0 = 0, .nrows = nrows, .rows_per_task = rows_per_task };
    s.n_tasks = (nrows + rows_per_task - 1) / rows_per_task;
    s.scratch = malloc((size_t)nth * (size_t)(rows_per_task * ne0) * sizeof(float));
    s.abs_sum = malloc((size_t)nrows * sizeof(double));
    s.abs_max = malloc((size_t)nrows * sizeof(float));
    s.magnitude = malloc((size_t)nrows * sizeof(float));
    bool ok = s.scratch && s.abs_sum && s.abs_max && s.magnitude;
    if (ok) {
        pool_run(c->pool, stats_worker, &s);
        double sum = 0;
        float mx = 0, mag = 0;
        bool ternary = true;
        for (int64_t r = 0; r < nrows; r++) {
            sum += s.abs_sum[r];
            if (s.abs_max[r] > mx) mx = s.abs_max[r];
            const float m = s.magnitude[r];
            if (m < 0) ternary = false;
            else if (m > 0) {
                if (mag == 0) mag = m;
                else if (mag != m) ternary = false;
            }
        }
        const float mean = (float)(sum / ((double)nrows * (double)ne0));
        out->already_ternary = ternary;
        out->magnitude = mag;
        out->absmean = mean > 1e-5f ? mean : 1e-5f;
        out->absmax = mx;
    }
    free(s.scratch);
    free(s.abs_sum);
    free(s.abs_max);
    free(s.magnitude);
    return ok;
}

/* ---- quantization of one chunk of rows ------------------------------------------------------- */

typedef struct {
    const context *c;
    const tensor_job *j;
    quant_quantize_fn quantize;
    int64_t row0, nrows, rows_per_task, n_tasks;
    size_t  dst_row_bytes;
    float  *f32;            /* per thread: rows_per_task * ne0 floats */
    uint8_t *i2s_scratch;   /* per thread (I2_S only): rows_per_task * ne0/4 + tail */
    uint8_t *out;           /* nrows * dst_row_bytes */
    bool    ternarize;
    float   tern_iscale;    /* 1 / absmean */
} quant_task;

static void quant_worker(void *arg, int ith, int nth) {
    (void)nth;
    quant_task *q = arg;
    const int64_t ne0 = q->j->plan.ne[0];
    float *buf = q->f32 + (size_t)ith * (size_t)(q->rows_per_task * ne0);
    for (int64_t task; (task = pool_chunk_next(q->c->pool)) < q->n_tasks;) {
        const int64_t r0 = task * q->rows_per_task;
        const int64_t nr = r0 + q->rows_per_task <= q->nrows ? q->rows_per_task : q->nrows - r0;
        load_rows_f32(q->c, q->j, q->row0 + r0, nr, buf);
        if (q->ternarize) {
            /* Absmean ternarization as the BitNet converters do it (the arithmetic of quant/ternary.c's
             * quant_ternarize_absmean, applied chunk by chunk with the whole-tensor scale): round(w * (1/s))
             * clamped to [-1, 1], then divided by 1/s, all in f32 (rintf rounds half to even like
             * torch.round); a NaN weight becomes 0. */
            const float is = q->tern_iscale;
            for (int64_t i = 0; i < nr * ne0; i++) {
                float t = rintf(buf[i] * is);
                t = t > 1.0f ? 1.0f : (t < -1.0f ? -1.0f : t);
                if (t != t) t = 0.0f;
                buf[i] = t / is;
            }
        }
        uint8_t *dst = q->out + (size_t)r0 * q->dst_row_bytes;
        if (q->j->plan.type == LLMPI_TYPE_I2_S) {
            /* quantize_i2_s writes codes + a whole-tensor tail; keep the codes (they depend only on each
             * value's sign and zeroness), the tensor's tail is written once after the last chunk. */
            uint8_t *scratch = q->i2s_scratch + (size_t)ith * ((size_t)q->rows_per_task * q->dst_row_bytes + 32);
            q->quantize(buf, scratch, nr, ne0, NULL);
            memcpy(dst, scratch, (size_t)nr * q->dst_row_bytes);
        } else {
            q->quantize(buf, dst, nr, ne0, q->j->imatrix);
        }
    }
}

static bool write_all(FILE *fp, const void *data, size_t n, const char *what) {
    if (n && fwrite(data, 1, n, fp) != n) {
        die_msg("writing %s: %s", what, strerror(errno ? errno : EIO));
        return false;
    }
    return true;
}

static bool write_padding(FILE *fp, uint64_t nbytes, uint32_t alignment) {
    static const uint8_t zeros[64];
    uint64_t pad = (alignment - nbytes % alignment) % alignment;
    while (pad) {
        size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        if (!write_all(fp, zeros, n, "padding")) return false;
        pad -= n;
    }
    return true;
}

/* Streams tensor j to fp. */
static bool write_tensor(context *c, const tensor_job *j, FILE *fp) {
    const qp_tensor *t = &j->plan;
    const int64_t ne0 = t->ne[0];
    const int64_t nrows = t->ne[1] * t->ne[2] * t->ne[3];

    /* Same type as the source: copy the bytes (llama.cpp does the same). */
    if (!c->src->is_synth && t->type == t->src_type) {
        const gguf_tensor *g = &c->src->g.tensors[j->src_index];
        return write_all(fp, g->data, (size_t)g->nbytes, t->name) && write_padding(fp, g->nbytes, c->alignment);
    }

    quant_quantize_fn quantize = qp_quantizer(t->type);
    if (!quantize) { die_msg("tensor %s: this build cannot write %s", t->name, quant_type_name(t->type)); return false; }

    quant_task q = { .c = c, .j = j, .quantize = quantize };
    q.dst_row_bytes = quant_row_size(t->type, ne0);
    ternary_stats ts = { 0 };
    if (j->ternarize || t->type == LLMPI_TYPE_I2_S) {
        if (!scan_ternary(c, j, &ts)) { die_msg("out of memory"); return false; }
        q.ternarize = j->ternarize && !ts.already_ternary;
        q.tern_iscale = 1.0f / ts.absmean;
    }

    const int nth = pool_n_threads(c->pool);
    int64_t chunk_rows = (int64_t)(CHUNK_F32_BYTES / 4 / (uint64_t)ne0);
    if (chunk_rows < nth) chunk_rows = nth;
    if (chunk_rows > nrows) chunk_rows = nrows;
    int64_t n_tasks = nth * 4 < chunk_rows ? nth * 4 : chunk_rows;
    q.rows_per_task = (chunk_rows + n_tasks - 1) / n_tasks;
    q.f32 = malloc((size_t)nth * (size_t)(q.rows_per_task * ne0) * sizeof(float));
    q.out = malloc((size_t)chunk_rows * q.dst_row_bytes);
    if (t->type == LLMPI_TYPE_I2_S) q.i2s_scratch = malloc((size_t)nth * ((size_t)q.rows_per_task * q.dst_row_bytes + 32));
    bool ok = q.f32 && q.out && (t->type != LLMPI_TYPE_I2_S || q.i2s_scratch);
    if (!ok) die_msg("out of memory for tensor %s", t->name);
    uint64_t written = 0;
    for (int64_t row0 = 0; ok && row0 < nrows; row0 += chunk_rows) {
        q.row0 = row0;
        q.nrows = row0 + chunk_rows <= nrows ? chunk_rows : nrows - row0;
        q.n_tasks = (q.nrows + q.rows_per_task - 1) / q.rows_per_task;
        pool_run(c->pool, quant_worker, &q);
        const size_t n = (size_t)q.nrows * q.dst_row_bytes;
        ok = write_all(fp, q.out, n, t->name);
        written += n;
    }
    if (ok && t->type == LLMPI_TYPE_I2_S) {
        /* The fork's scale: max|x| of the (ternarized) tensor = its ternary magnitude. */
        uint8_t tail[32] = { 0 };
        const float scale = ts.already_ternary ? ts.magnitude : (q.ternarize ? ts.absmean : ts.absmax);
        memcpy(tail, &scale, sizeof scale);
        ok = write_all(fp, tail, sizeof tail, t->name);
        written += sizeof tail;
    }
    if (ok && written != j->out_bytes) {
        die_msg("internal error: tensor %s produced %" PRIu64 " bytes, expected %" PRIu64, t->name, written, j->out_bytes);
        ok = false;
    }
    if (ok) ok = write_padding(fp, written, c->alignment);
    free(q.f32);
    free(q.out);
    free(q.i2s_scratch);
    return ok;
}

/* Drops the source pages of a finished tensor from this process (like llama.cpp's unmap_weight), so
 * resident memory stays near one tensor even though the whole input is mapped. Pages are clean and
 * file-backed: dropping them loses nothing. */
static void release_source_pages(const context *c, const tensor_job *j) {
    if (c->src->is_synth || !c->src->g.map) return;
    const gguf_tensor *t = &c->src->g.tensors[j->src_index];
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t map0 = (uintptr_t)c->src->g.map, map1 = map0 + c->src->g.map_len;
    uintptr_t a = (uintptr_t)t->data & ~(page - 1), b = ((uintptr_t)t->data + (uintptr_t)t->nbytes + page - 1) & ~(page - 1);
    if (a < map0) a = map0;
    if (b > map1) b = map1;
    if (b > a) madvise((void *)a, (size_t)(b - a), MADV_DONTNEED);
}

/* ---- planning ------------------------------------------------------------------------------- */

static int job_cmp(const void *a, const void *b) {
    return qp_name_cmp(((const tensor_job *)a)->plan.name, ((const tensor_job *)b)->plan.name);
}

static bool build_plan(context *c, char *err, size_t errlen) {
    source *s = c->src;
    const size_t n = src_count(s);
    c->jobs = calloc(n ? n : 1, sizeof *c->jobs);
    if (!c->jobs) { snprintf(err, errlen, "out of memory"); return false; }
    c->n_jobs = n;
    for (size_t i = 0; i < n; i++) {
        tensor_job *j = &c->jobs[i];
        j->src_index = i;
        snprintf(j->plan.name, sizeof j->plan.name, "%s", src_name(s, i));
        if (s->is_synth) {
            const synth_tensor *st = synth_get_tensor(s->synth, i);
            memcpy(j->plan.ne, st->ne, sizeof j->plan.ne);
            j->plan.src_type = LLMPI_TYPE_F32;
            j->src_bytes = (uint64_t)(st->ne[0] * st->ne[1] * st->ne[2] * st->ne[3]) * 4;
        } else {
            const gguf_tensor *t = &s->g.tensors[i];
            memcpy(j->plan.ne, t->ne, sizeof j->plan.ne);
            j->plan.src_type = t->type;
            j->src_bytes = t->nbytes;
        }
    }
    /* llama.cpp's order: the attn_v / ffn_down rules count tensors in this order. */
    qsort(c->jobs, n, sizeof *c->jobs, job_cmp);
    qp_tensor *plan = malloc((n ? n : 1) * sizeof *plan);
    if (!plan) { snprintf(err, errlen, "out of memory"); return false; }
    for (size_t i = 0; i < n; i++) plan[i] = c->jobs[i].plan;
    bool ok = qp_plan(&s->info, &c->opt->plan, plan, n, err, errlen);
    for (size_t i = 0; i < n; i++) c->jobs[i].plan = plan[i];
    free(plan);
    if (!ok) return false;

    const bool ternary_arch = qp_arch_is_ternary(s->info.arch);
    bool warned_requant = false;
    for (size_t i = 0; ok && i < n; i++) {
        tensor_job *j = &c->jobs[i];
        const qp_tensor *t = &j->plan;
        int64_t ne4[4] = { t->ne[0], t->ne[1], t->ne[2], t->ne[3] };
        if (!quant_tensor_nbytes(t->type, ne4, &j->out_bytes)) {
            snprintf(err, errlen, "tensor %s: cannot store shape %" PRId64 " x %" PRId64 " as %s", t->name, t->ne[0], t->ne[1],
                     quant_type_name(t->type));
            return false;
        }
        if (t->type == t->src_type) continue;
        const quant_type_traits *src_tr = quant_traits(t->src_type);
        if (!src_tr || !src_tr->to_float) {
            snprintf(err, errlen, "tensor %s: cannot convert from source type %s", t->name, quant_type_name(t->src_type));
            return false;
        }
        if (src_tr->is_quantized) {
            if (!c->opt->allow_requantize) {
                snprintf(err, errlen, "tensor %s is already quantized (%s): requantizing loses quality; pass --allow-requantize to do it anyway",
                         t->name, quant_type_name(t->src_type));
                return false;
            }
            if (!warned_requant) {
                warn_msg("requantizing from %s: quality suffers compared with quantizing the F32/F16/BF16 original", quant_type_name(t->src_type));
                warned_requant = true;
            }
        }
        if (qp_type_is_ternary(t->type)) {
            if (!ternary_arch && !c->opt->force) {
                snprintf(err, errlen, "%s is a '%s' model, not a ternary (BitNet) architecture: ternarizing it to %s destroys it; "
                         "pass --force to do it anyway", c->opt->in_path ? c->opt->in_path : "the input", s->info.arch,
                         quant_type_name(t->type));
                return false;
            }
            /* BitNet weights are ternarized with their per-tensor absmean scale (already-ternary tensors are left
             * exact). I2_S always needs it: the format holds one scale per tensor. Other archs forced to TQ*
             * get llama.cpp's plain per-block quantization. */
            j->ternarize = ternary_arch || t->type == LLMPI_TYPE_I2_S;
        }
        if (c->have_imatrix) {
            const imatrix_entry_data *e = imatrix_data_find(&c->im, t->name);
            if (e) {
                const int64_t n_values = e->n_per_mat * e->n_mat;
                if (n_values == t->ne[0] * t->ne[2]) j->imatrix = e->importance;
                else if (strcmp(t->name, "token_embd.weight") != 0) {
                    snprintf(err, errlen, "imatrix has %" PRId64 " values for %s, the tensor has %" PRId64 " columns", n_values, t->name,
                             t->ne[0] * t->ne[2]);
                    return false;
                }
            }
        }
    }
    return ok;
}

/* Adds metadata and tensor infos to a new writer. */
static gguf_writer *make_writer(const context *c) {
    gguf_writer *w = gguf_writer_create();
    if (!w) return NULL;
    const source *s = c->src;
    if (s->is_synth) {
        if (!synth_write_kv(s->synth, w)) { gguf_writer_free(w); return NULL; }
    } else {
        for (uint64_t i = 0; i < s->g.n_kv; i++) {
            const gguf_kv *kv = &s->g.kv[i];
            if (gguf_str_eq(kv->key, "general.file_type") || gguf_str_eq(kv->key, "general.quantization_version") ||
                gguf_str_eq(kv->key, "split.no") || gguf_str_eq(kv->key, "split.count") ||
                gguf_str_eq(kv->key, "split.tensors.count"))
                continue;
            gguf_writer_copy_kv(w, kv);
        }
    }
    /* llama-quantize appends these two (removing any earlier value), then its imatrix keys. */
    gguf_writer_set_u32(w, "general.quantization_version", QUANT_VERSION);
    gguf_writer_set_u32(w, "general.file_type", (uint32_t)c->opt->plan.preset->ftype);
    if (c->have_imatrix) {
        /* llama-quantize passes these strings as KV overrides, whose values hold at most 127 bytes. */
        char file[128], dataset[128];
        snprintf(file, sizeof file, "%s", c->opt->imatrix_path);
        gguf_writer_set_str(w, "quantize.imatrix.file", file);
        snprintf(dataset, sizeof dataset, "%s", c->im.n_datasets > 0 ? c->im.datasets[0] : "");
        if (dataset[0]) gguf_writer_set_str(w, "quantize.imatrix.dataset", dataset);
        gguf_writer_set_u32(w, "quantize.imatrix.entries_count", (uint32_t)c->im.n_entries);
        if (c->im.chunk_count > 0) gguf_writer_set_u32(w, "quantize.imatrix.chunks_count", (uint32_t)c->im.chunk_count);
    }
    for (size_t i = 0; i < c->n_jobs; i++) {
        const qp_tensor *t = &c->jobs[i].plan;
        if (gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne) < 0) {
            die_msg("tensor %s: cannot be written as %s", t->name, quant_type_name(t->type));
            gguf_writer_free(w);
            return NULL;
        }
    }
    return w;
}

/* Size of the header (KVs + tensor infos + padding) by writing it to a memory stream. */
static bool header_size(const context *c, uint64_t *out) {
    gguf_writer *w = make_writer(c);
    if (!w) return false;
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    gguf_error ge;
    bool ok = mem && gguf_writer_write_header(w, mem, &ge) == GGUF_OK;
    if (mem) fclose(mem);
    free(buf);
    gguf_writer_free(w);
    *out = len;
    return ok;
}

/* ---- reports -------------------------------------------------------------------------------- */

static void print_plan(const context *c, uint64_t hdr) {
    printf("%5s  %-40s %-20s %-7s    %-7s %12s  %s\n", "idx", "tensor", "shape", "source", "type", "bytes", "why");
    uint64_t total = 0, elements = 0;
    for (size_t i = 0; i < c->n_jobs; i++) {
        const tensor_job *j = &c->jobs[i];
        char shape[64];
        format_shape(&j->plan, shape, sizeof shape);
        printf("%5zu  %-40s %-20s %-7s -> %-7s %12" PRIu64 "  %s%s\n", i + 1, j->plan.name, shape, quant_type_name(j->plan.src_type),
               quant_type_name(j->plan.type), j->out_bytes, j->plan.why, j->ternarize ? ", ternarized" : "");
        total += j->out_bytes + (c->alignment - j->out_bytes % c->alignment) % c->alignment;
        elements += (uint64_t)(j->plan.ne[0] * j->plan.ne[1] * j->plan.ne[2] * j->plan.ne[3]);
    }
    char b1[32];
    format_bytes((double)(hdr + total), b1, sizeof b1);
    printf("plan: %s %s, %zu tensors, %" PRIu64 " weights, %" PRIu64 " bytes of tensor data, %.4f bpw; file %" PRIu64 " bytes (%s)\n",
           c->opt->plan.preset->name, c->opt->plan.pure ? "(pure)" : "", c->n_jobs, elements, total,
           elements ? 8.0 * (double)total / (double)elements : 0.0, hdr + total, b1);
}

typedef struct { uint64_t count, elements, bytes_in, bytes_out; } type_total;

static void print_summary(const context *c, uint64_t file_bytes, double seconds) {
    type_total per[LLMPI_TYPE_COUNT];
    memset(per, 0, sizeof per);
    type_total all = { 0 };
    for (size_t i = 0; i < c->n_jobs; i++) {
        const tensor_job *j = &c->jobs[i];
        const uint64_t el = (uint64_t)(j->plan.ne[0] * j->plan.ne[1] * j->plan.ne[2] * j->plan.ne[3]);
        type_total *p = &per[j->plan.type < LLMPI_TYPE_COUNT ? j->plan.type : 0];
        p->count++; p->elements += el; p->bytes_in += j->src_bytes; p->bytes_out += j->out_bytes;
        all.count++; all.elements += el; all.bytes_in += j->src_bytes; all.bytes_out += j->out_bytes;
    }
    printf("\n%-8s %8s %14s %12s %12s %8s\n", "type", "tensors", "weights", "before", "after", "bpw");
    for (uint32_t t = 0; t < LLMPI_TYPE_COUNT; t++) {
        if (!per[t].count) continue;
        char bi[32], bo[32];
        format_bytes((double)per[t].bytes_in, bi, sizeof bi);
        format_bytes((double)per[t].bytes_out, bo, sizeof bo);
        printf("%-8s %8" PRIu64 " %14" PRIu64 " %12s %12s %8.3f\n", quant_type_name(t), per[t].count, per[t].elements, bi, bo,
               8.0 * (double)per[t].bytes_out / (double)per[t].elements);
    }
    char bi[32], bo[32], bf[32];
    format_bytes((double)all.bytes_in, bi, sizeof bi);
    format_bytes((double)all.bytes_out, bo, sizeof bo);
    format_bytes((double)file_bytes, bf, sizeof bf);
    printf("%-8s %8" PRIu64 " %14" PRIu64 " %12s %12s %8.3f\n", "total", all.count, all.elements, bi, bo,
           all.elements ? 8.0 * (double)all.bytes_out / (double)all.elements : 0.0);
    printf("wrote %s: %" PRIu64 " bytes (%s), %s, %.2f s, %d thread%s\n", c->opt->out_path, file_bytes, bf, c->opt->plan.preset->name,
           seconds, pool_n_threads(c->pool), pool_n_threads(c->pool) == 1 ? "" : "s");
}

static void progress(const context *c, size_t i, const tensor_job *j, double seconds, bool tty, double done_bytes, double total_bytes) {
    if (c->opt->quiet) return;
    if (tty) {
        const int width = 30;
        const double frac = total_bytes > 0 ? done_bytes / total_bytes : 1.0;
        int fill = (int)(frac * width + 0.5);
        char bar[64];
        for (int k = 0; k < width; k++) bar[k] = k < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r[%s] %3.0f%% %4zu/%zu %-36.36s %-6s", bar, 100.0 * frac, i + 1, c->n_jobs, j->plan.name,
                quant_type_name(j->plan.type));
        g_bar_open = i + 1 < c->n_jobs;
        if (!g_bar_open) fputc('\n', stderr);
    } else {
        char shape[64], bi[32], bo[32];
        format_shape(&j->plan, shape, sizeof shape);
        format_bytes((double)j->src_bytes, bi, sizeof bi);
        format_bytes((double)j->out_bytes, bo, sizeof bo);
        fprintf(stderr, "[%4zu/%zu] %-36s [%s] %s -> %s, %s -> %s, %.3f s\n", i + 1, c->n_jobs, j->plan.name, shape,
                quant_type_name(j->plan.src_type), quant_type_name(j->plan.type), bi, bo, seconds);
    }
    fflush(stderr);
}

/* ---- main ----------------------------------------------------------------------------------- */

static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return false;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static bool check_output_path(const char *out) {
    struct stat st;
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
        die_msg("output %s is a directory", out);
        return false;
    }
    return true;
}

/* Creates the temporary file next to out (same filesystem, so rename is atomic). */
static FILE *create_tmp(const char *out) {
    int n = snprintf(g_tmp_path, sizeof g_tmp_path, "%s.tmp-XXXXXX", out);
    if (n < 0 || (size_t)n >= sizeof g_tmp_path) { die_msg("output path too long"); return NULL; }
    int fd = mkstemp(g_tmp_path);
    if (fd < 0) {
        die_msg("cannot create the output file next to %s: %s", out, strerror(errno));
        return NULL;
    }
    g_tmp_live = 1;
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) { /* not fatal: the file keeps mkstemp's 0600 */ }
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        die_msg("cannot open %s: %s", g_tmp_path, strerror(errno));
        close(fd);
        remove_tmp();
        return NULL;
    }
    return fp;
}

int main(int argc, char **argv) {
    options opt;
    int rc = parse_args(argc, argv, &opt);
    if (rc) {
        qp_options_free(&opt.plan);
        return rc == 2 ? 0 : 2;   /* usage errors exit 2, failures 1 (like llmpi-run) */
    }
    char err[1024];
    source src;
    context c;
    memset(&c, 0, sizeof c);
    c.opt = &opt;
    c.src = &src;
    c.alignment = GGUF_DEFAULT_ALIGNMENT;
    const double t0 = now_seconds();

    if (!opt.dry_run && !check_output_path(opt.out_path)) { qp_options_free(&opt.plan); return 1; }
    if (opt.in_path && !opt.dry_run && (strcmp(opt.in_path, opt.out_path) == 0 || same_file(opt.in_path, opt.out_path))) {
        die_msg("input and output are the same file (%s): write to another path", opt.out_path);
        qp_options_free(&opt.plan);
        return 1;
    }
    bool opened = opt.synth_shape ? source_open_synth(&src, opt.synth_shape, opt.seed, err, sizeof err)
                                  : source_open_gguf(&src, opt.in_path, err, sizeof err);
    if (!opened) {
        die_msg("%s", err);
        qp_options_free(&opt.plan);
        return 1;
    }
    if (!src.is_synth) {
        int64_t a;
        if (gguf_get_int(&src.g, "general.alignment", &a) == GGUF_OK && a > 0 && (a & (a - 1)) == 0) c.alignment = (uint32_t)a;
    }
    if (opt.imatrix_path) {
        if (!imatrix_load(opt.imatrix_path, &c.im, err, sizeof err)) {
            die_msg("%s", err);
            source_close(&src);
            qp_options_free(&opt.plan);
            return 1;
        }
        c.have_imatrix = true;
        opt.plan.has_imatrix = true;
    }
    c.pool = pool_create(opt.n_threads);
    rc = 1;
    FILE *fp = NULL;
    gguf_writer *w = NULL;
    if (!c.pool) { die_msg("cannot start worker threads"); goto done; }
    if (!build_plan(&c, err, sizeof err)) { die_msg("%s", err); goto done; }

    uint64_t hdr = 0;
    if (!header_size(&c, &hdr)) { die_msg("cannot build the GGUF header"); goto done; }
    if (opt.dry_run) {
        print_plan(&c, hdr);
        rc = 0;
        goto done;
    }
    if (c.have_imatrix && !opt.quiet)
        fprintf(stderr, "imatrix: %zu entries from %s (%d chunks)\n", c.im.n_entries, opt.imatrix_path, c.im.chunk_count);
    size_t n_fallback = 0, n_no_imatrix = 0;
    for (size_t i = 0; i < c.n_jobs; i++) {
        const tensor_job *j = &c.jobs[i];
        n_fallback += j->plan.fallback;
        n_no_imatrix += c.have_imatrix && j->plan.type != j->plan.src_type && quant_traits(j->plan.type)->is_quantized && !j->imatrix;
    }
    if (n_fallback)
        warn_msg("%zu tensor(s) have rows that are not a multiple of their type's block and use a fallback type (see --dry-run)", n_fallback);
    if (n_no_imatrix) warn_msg("%zu quantized tensor(s) have no entry in the imatrix and are quantized without one", n_no_imatrix);

    install_signal_handlers();
    fp = create_tmp(opt.out_path);
    if (!fp) goto done;
    w = make_writer(&c);
    if (!w) { die_msg("cannot build the GGUF header"); goto done; }
    gguf_error ge;
    if (gguf_writer_write_header(w, fp, &ge) != GGUF_OK) { die_msg("writing %s: %s", opt.out_path, ge.msg); goto done; }

    const bool tty = isatty(fileno(stderr));
    double total_bytes = 0, done_bytes = 0;
    for (size_t i = 0; i < c.n_jobs; i++) total_bytes += (double)c.jobs[i].src_bytes;
    const char *slow = getenv("LLMPI_QUANTIZE_TEST_SLOW_MS");   /* test hook: widen the window for interrupt tests */
    const long slow_ms = slow ? strtol(slow, NULL, 10) : 0;
    for (size_t i = 0; i < c.n_jobs; i++) {
        const double ts = now_seconds();
        if (!write_tensor(&c, &c.jobs[i], fp)) goto done;
        release_source_pages(&c, &c.jobs[i]);
        done_bytes += (double)c.jobs[i].src_bytes;
        progress(&c, i, &c.jobs[i], now_seconds() - ts, tty, done_bytes, total_bytes);
        if (slow_ms > 0) {
            struct timespec d = { slow_ms / 1000, (slow_ms % 1000) * 1000000L };
            nanosleep(&d, NULL);
        }
    }
    if (fflush(fp) != 0 || ferror(fp) || fsync(fileno(fp)) != 0) {
        die_msg("writing %s: %s", opt.out_path, strerror(errno ? errno : EIO));
        goto done;
    }
    const long long file_bytes = (long long)ftello(fp);
    int close_rc = fclose(fp);
    fp = NULL;
    if (close_rc != 0) { die_msg("closing %s: %s", opt.out_path, strerror(errno)); goto done; }
    if (rename(g_tmp_path, opt.out_path) != 0) {
        die_msg("cannot rename the finished file to %s: %s", opt.out_path, strerror(errno));
        goto done;
    }
    g_tmp_live = 0;
    print_summary(&c, (uint64_t)file_bytes, now_seconds() - t0);
    rc = 0;

done:
    if (fp) fclose(fp);
    remove_tmp();
    gguf_writer_free(w);
    if (c.pool) pool_free(c.pool);
    free(c.jobs);
    if (c.have_imatrix) imatrix_data_free(&c.im);
    source_close(&src);
    qp_options_free(&opt.plan);
    return rc;
}
