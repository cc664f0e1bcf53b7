/* llmpi-bench: prompt-processing and generation speed per model x threads x test, like llama-bench,
 * plus the paper's measurement protocol (--protocol llmpi) and an SVG chart (--plot).
 * Results go to stdout (md / csv / json), progress and errors to stderr.
 * Exit codes: 0 ok, 1 error (a model failed; results of the others are still printed), 2 usage.
 * Output schemas and the protocol are documented in docs/bench.md. */
#include "bench_util.h"
#include "cli.h"
#include "llmpi.h"
#include "power.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "llmpi-bench";

static const char *usage_text =
    "usage: llmpi-bench -m MODEL.gguf [-m MODEL2.gguf ...] [options]\n"
    "  -m, --model FILE        model to benchmark (repeatable; bare file names work too)\n"
    "  -p, --n-prompt N[,N..]  prompt-processing tests of N random tokens (default 512; 0 = none)\n"
    "  -n, --n-gen N[,N..]     generation tests of N single-token evals (default 128; 0 = none)\n"
    "  -t, --threads N[,N..]   thread counts (default: online cores)\n"
    "  -r, --repetitions N     timed repetitions per test, after one warm-up (default 5)\n"
    "  -b, --batch-size N      prompt micro-batch (default: the engine's, 32)\n"
    "  -c, --ctx-size N        context (default: the largest test; --protocol: 4096)\n"
    "  -o, --output FMT        md (default), csv or json\n"
    "      --mmap, --no-mmap   map the weights (default) or read them into memory; also -mmp 1|0\n"
    "      --kv-f32            F32 KV cache (default F16)\n"
    "      --no-warmup         skip the warm-up run      --warmup  force it (off in --protocol)\n"
    "      --pause-seconds S   pause between repetitions (default 0; --protocol: 5)\n"
    "      --seed N            seed of the random prompt tokens / sampler (default 1234)\n"
    "      --protocol llmpi    the paper's protocol: fixed prompt, 50 generated tokens, context 4096,\n"
    "                          10 runs, 5 s pauses, idle baseline; adds the paper's results table\n"
    "      --plot FILE.svg     write a bar chart of t/s (and TPJ when measured)\n"
    "      --dry-run           print the plan and parameters, run nothing\n"
    "      --power SOURCE, --idle-seconds N, --battery-wh X, --tokens-per-word X\n"
    "                          energy columns (W, TPJ, W/BL): see docs/energy.md\n"
    "  -h, --help\n";





#define MAX_LIST 32
typedef struct { int v[MAX_LIST]; int n; } int_list;

/* "1,2,4" -> list; each value in [lo, hi]. */
static void parse_list(const char *opt, const char *s, long lo, long hi, int_list *out) {
    out->n = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (out->n == MAX_LIST) cli_die("too many values for %s (at most %d)", opt, MAX_LIST);
        out->v[out->n++] = (int)cli_parse_long(opt, tok, lo, hi);
    }
    if (out->n == 0) cli_die("empty list for %s", opt);
}

/* ---- power ------------------------------------------------------------------------------------
 * Energy columns come from the power sampler (tools/power.h, docs/energy.md): one sampler session per
 * timed repetition, marked PROMPT / GEN, its metrics copied into that repetition's bench_energy; records
 * average the repetitions (bench_energy_average). Without --power every energy figure stays NaN
 * (printed n/a / null): power is measured, never estimated. */
typedef struct {
    bool   requested;          /* a power option was given */
    bool   idle_set;           /* --idle-seconds given (the protocol's default is 180 s) */
    power_config cfg;
    power_sampler *sampler;    /* NULL without --power */
} power_hook;

static power_hook power;

/* Consumes a power option at argv[i]; returns argv entries used (0 = not a power option). */
static int power_option(int argc, char **argv, int i) {
    char err[256];
    const double idle_before = power.cfg.idle_seconds;
    int used = power_cli_parse(&power.cfg, argc, argv, i, err, sizeof err);
    if (used < 0) cli_die("%s", err);
    if (used > 0) {
        if (!strncmp(argv[i], "--power", 7) && strncmp(argv[i], "--power-", 8)) power.requested = true;
        if (power.cfg.idle_seconds != idle_before || !strncmp(argv[i], "--idle-seconds", 14)) power.idle_set = true;
    }
    return used;
}

static void power_open(void) {
    if (!power.requested) return;
    char err[512];
    if (power_sampler_create(&power.cfg, &power.sampler, err, sizeof err) != 0) cli_die("power: %s", err);
    fprintf(stderr, "%s: power source: %s\n", prog, power_source_name(power.sampler));
    if (power.cfg.idle_seconds > 0) {
        if (!power_sampler_has_power(power.sampler)) {
            fprintf(stderr, "%s: note: no power source, skipping the %.0f s idle baseline\n", prog, power.cfg.idle_seconds);
        } else {
            fprintf(stderr, "%s: measuring idle power for %.0f s\n", prog, power.cfg.idle_seconds);
            if (power_measure_idle(power.sampler, power.cfg.idle_seconds) != 0)
                cli_die("power: %s", power_sampler_error(power.sampler));
        }
    }
}

static void power_close(void) { power_sampler_free(power.sampler); power.sampler = NULL; }

static void power_run_begin(void) {
    if (power.sampler && power_sampler_start(power.sampler) != 0)
        cli_die("power: cannot start the sampler: %s", power_sampler_error(power.sampler));
}
static void power_mark_prompt(void) { if (power.sampler) power_sampler_mark(power.sampler, POWER_PHASE_PROMPT); }
static void power_mark_gen(void) { if (power.sampler) power_sampler_mark(power.sampler, POWER_PHASE_GEN); }
static void power_run_end(long prompt_tokens, double prompt_s, long gen_tokens, double gen_s, bench_energy *e) {
    bench_energy_init(e);
    e->battery_wh = power.cfg.battery_wh;
    e->tokens_per_word = power.cfg.tokens_per_word;
    if (!power.sampler) return;
    power_sampler_mark(power.sampler, POWER_PHASE_OTHER);
    power_sampler_stop(power.sampler);
    power_report rep;
    power_sampler_report(power.sampler, &rep);
    power_run_info run = { prompt_tokens, prompt_s, gen_tokens, gen_s };
    power_metrics m;
    power_compute_metrics(&rep, &run, power.cfg.battery_wh, power.cfg.tokens_per_word, &m);
    snprintf(e->power_source, sizeof e->power_source, "%s", m.power_source);
    e->energy_j = m.energy_j; e->avg_w = m.avg_w; e->static_w = m.static_w; e->dynamic_w = m.dynamic_w;
    e->j_per_token = m.j_per_token; e->tpj = m.tpj; e->tpj_dynamic = m.tpj_dynamic; e->wbl = m.wbl;
    e->max_temp_c = m.max_temp_c; e->throttled = m.throttled; e->energy_partial = m.energy_partial;
}

/* Mean of each figure over the repetitions (NaN stays NaN when any repetition lacks it). */
static void bench_energy_average(const bench_energy *reps, int n, bench_energy *out) {
    *out = reps[0];
#define AVERAGE(field)                                          \
    do {                                                        \
        double sum = 0;                                         \
        for (int r = 0; r < n; r++) sum += reps[r].field;       \
        out->field = sum / n;                                   \
    } while (0)
    AVERAGE(energy_j);
    AVERAGE(avg_w);
    AVERAGE(static_w);
    AVERAGE(dynamic_w);
    AVERAGE(j_per_token);
    AVERAGE(tpj);
    AVERAGE(tpj_dynamic);
    AVERAGE(wbl);
#undef AVERAGE
    for (int r = 1; r < n; r++) {
        if (reps[r].max_temp_c > out->max_temp_c || isnan(out->max_temp_c)) out->max_temp_c = reps[r].max_temp_c;
        out->throttled |= reps[r].throttled;
        out->energy_partial |= reps[r].energy_partial;
    }
}

/* ---- models and results ---------------------------------------------------------------------- */
typedef struct {
    const char *path;
    char   quant[32];          /* Q4_0, F32, ... */
    char   base[256];          /* file name without directory, .gguf and quant label */
    char   stem[256];          /* file name without directory and .gguf */
    char   arch[64];
    char   model_type[160];    /* "<arch> <params> <quant>" */
    char   type_mix[256];
    uint64_t size, n_params;
    double load_seconds;
    uint64_t peak_rss;
    bool   failed;
} model_info;

#define MAX_REPS 1000
typedef struct {
    int    model;              /* index into the model list */
    int    n_threads, n_batch, n_ctx;
    char   test[32];
    int    n_prompt, n_gen, n_reps;
    char   test_time[32];
    double *ns, *ts;           /* per repetition: nanoseconds, tokens/s */
    double avg_ns, stddev_ns, avg_ts, stddev_ts;
    double prompt_tps;         /* --protocol: prompt t/s (mean), NaN otherwise */
    bench_energy energy;
} record;

typedef struct {
    record *v;
    int n, cap;
} record_list;

static record *new_record(record_list *l) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        record *nv = realloc(l->v, (size_t)cap * sizeof *nv);
        if (!nv) cli_die("out of memory");
        l->v = nv;
        l->cap = cap;
    }
    record *r = &l->v[l->n++];
    memset(r, 0, sizeof *r);
    r->prompt_tps = NAN;
    bench_energy_init(&r->energy);
    return r;
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

typedef struct {
    int_list threads, n_prompt, n_gen;
    int reps, n_batch, n_ctx;
    bool use_mmap, kv_f32, warmup, protocol, dry_run;
    double pause_s;
    uint64_t seed;
    const char *plot_path;
    enum { OUT_MD, OUT_CSV, OUT_JSON } output;
} bench_params;

/* Random token ids for a pp test: BOS first when the model has one, like llama-bench. */
static void fill_random_tokens(const llmpi_model *m, int32_t *toks, int n, uint64_t *rng) {
    const int n_vocab = llmpi_model_n_vocab(m);
    for (int i = 0; i < n; i++) toks[i] = (int32_t)(rng_next(rng) % (uint64_t)n_vocab);
    const int32_t bos = llmpi_token_bos(m);
    if (n > 0 && bos >= 0 && bos < n_vocab) toks[0] = bos;
}

static void iso_time(char *buf, size_t len) {
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tmv);
}

static void finish_record(record *r, const bench_energy *reps_energy) {
    r->avg_ns = bench_mean(r->ns, r->n_reps);
    r->stddev_ns = bench_stddev(r->ns, r->n_reps);
    r->avg_ts = bench_mean(r->ts, r->n_reps);
    r->stddev_ts = bench_stddev(r->ts, r->n_reps);
    bench_energy_average(reps_energy, r->n_reps, &r->energy);
}

/* One llama-bench style test (pp: one eval of n_prompt tokens; tg: n_gen single-token evals). */
static bool run_speed_test(llmpi_context *ctx, const llmpi_model *m, const bench_params *bp, record *r,
                           const char *model_label, llmpi_error *err) {
    const bool is_pp = r->n_prompt > 0;
    const int n = is_pp ? r->n_prompt : r->n_gen;
    int32_t *toks = malloc((size_t)n * sizeof *toks);
    r->ns = calloc((size_t)bp->reps, sizeof *r->ns);
    r->ts = calloc((size_t)bp->reps, sizeof *r->ts);
    bench_energy *en = calloc((size_t)bp->reps, sizeof *en);
    if (!toks || !r->ns || !r->ts || !en) cli_die("out of memory");
    uint64_t rng = bp->seed * 0x9E3779B97F4A7C15ull + 1;
    const int32_t bos = llmpi_token_bos(m);
    const int n_vocab = llmpi_model_n_vocab(m);

    bool ok = true;
    for (int rep = -1; rep < bp->reps && ok; rep++) {
        if (rep < 0 && !bp->warmup) continue;
        if (rep > 0 && bp->pause_s > 0) bench_sleep(bp->pause_s);
        if (rep < 0) fprintf(stderr, "%s: %s: t=%d %s warm-up\n", prog, model_label, r->n_threads, r->test);
        else fprintf(stderr, "%s: %s: t=%d %s rep %d/%d\n", prog, model_label, r->n_threads, r->test, rep + 1, bp->reps);
        llmpi_kv_clear(ctx);
        double elapsed = 0;
        if (rep >= 0) power_run_begin();
        if (is_pp) {
            fill_random_tokens(m, toks, n, &rng);
            if (rep >= 0) power_mark_prompt();
            const double t0 = llmpi_time_seconds();
            ok = llmpi_eval(ctx, toks, n, err) == LLMPI_OK;
            elapsed = llmpi_time_seconds() - t0;
        } else {
            /* llama-bench: BOS (or a random token) first, then random tokens, one eval each; the
             * warm-up evaluates a single token. */
            const int count = rep < 0 ? 1 : n;
            int32_t tok = bos >= 0 && bos < n_vocab ? bos : (int32_t)(rng_next(&rng) % (uint64_t)n_vocab);
            if (rep >= 0) power_mark_gen();
            const double t0 = llmpi_time_seconds();
            for (int i = 0; i < count && ok; i++) {
                ok = llmpi_eval(ctx, &tok, 1, err) == LLMPI_OK;
                tok = (int32_t)(rng_next(&rng) % (uint64_t)n_vocab);
            }
            elapsed = llmpi_time_seconds() - t0;
        }
        if (rep < 0 || !ok) continue;
        power_run_end(is_pp ? n : 0, is_pp ? elapsed : 0, is_pp ? 0 : n, is_pp ? 0 : elapsed, &en[rep]);
        r->ns[rep] = elapsed * 1e9;
        r->ts[rep] = elapsed > 0 ? n / elapsed : NAN;
    }
    if (ok) finish_record(r, en);
    free(toks);
    free(en);
    return ok;
}

/* The paper's run: evaluate the fixed prompt, then sample n_gen tokens with llama-cli's default
 * sampler (temp 0.8, top-k 40, top-p 0.95, min-p 0.05), never stopping early. TPS is llama.cpp's
 * "eval" rate: single-token evals (n_gen - 1; the last sampled token is not evaluated) divided by
 * their wall time. */
static bool run_protocol_test(llmpi_context *ctx, const llmpi_model *m, const bench_params *bp, record *r,
                              const int32_t *prompt, int n_prompt, const char *model_label, llmpi_error *err) {
    r->ns = calloc((size_t)bp->reps, sizeof *r->ns);
    r->ts = calloc((size_t)bp->reps, sizeof *r->ts);
    double *pp_ts = calloc((size_t)bp->reps, sizeof *pp_ts);
    bench_energy *en = calloc((size_t)bp->reps, sizeof *en);
    if (!r->ns || !r->ts || !pp_ts || !en) cli_die("out of memory");
    const int n_vocab = llmpi_model_n_vocab(m);
    bool ok = true;
    for (int rep = -1; rep < bp->reps && ok; rep++) {
        if (rep < 0 && !bp->warmup) continue;
        if (rep > 0 && bp->pause_s > 0) {
            fprintf(stderr, "%s: pausing %.1f s\n", prog, bp->pause_s);
            bench_sleep(bp->pause_s);
        }
        if (rep < 0) fprintf(stderr, "%s: %s: t=%d %s warm-up\n", prog, model_label, r->n_threads, r->test);
        else fprintf(stderr, "%s: %s: t=%d %s run %d/%d\n", prog, model_label, r->n_threads, r->test, rep + 1, bp->reps);
        llmpi_sampler_params sp = llmpi_sampler_default_params();
        sp.temp = 0.8f;
        sp.top_k = 40;
        sp.top_p = 0.95f;
        sp.min_p = 0.05f;
        sp.repeat_penalty = 1.0f;
        sp.seed = bp->seed + (uint64_t)(rep + 1);
        llmpi_sampler *smp = llmpi_sampler_create(&sp);
        if (!smp) cli_die("out of memory");
        llmpi_kv_clear(ctx);
        if (rep >= 0) { power_run_begin(); power_mark_prompt(); }
        const double t0 = llmpi_time_seconds();
        ok = llmpi_eval(ctx, prompt, n_prompt, err) == LLMPI_OK;
        const double prompt_s = llmpi_time_seconds() - t0;
        for (int i = 0; i < n_prompt; i++) llmpi_sampler_accept(smp, prompt[i]);
        if (rep >= 0) power_mark_gen();
        double eval_s = 0;
        const double tg0 = llmpi_time_seconds();
        for (int i = 0; i < r->n_gen && ok; i++) {
            int32_t tok = llmpi_sampler_sample(smp, llmpi_get_logits(ctx, -1), n_vocab);
            if (tok < 0) { ok = false; snprintf(err->msg, sizeof err->msg, "sampling failed"); break; }
            llmpi_sampler_accept(smp, tok);
            if (i + 1 < r->n_gen) {
                const double te = llmpi_time_seconds();
                ok = llmpi_eval(ctx, &tok, 1, err) == LLMPI_OK;
                eval_s += llmpi_time_seconds() - te;
            }
        }
        const double gen_wall_s = llmpi_time_seconds() - tg0;
        llmpi_sampler_free(smp);
        if (rep < 0 || !ok) continue;
        power_run_end(n_prompt, prompt_s, r->n_gen, gen_wall_s, &en[rep]);
        const int n_evals = r->n_gen - 1;
        r->ns[rep] = eval_s * 1e9;
        r->ts[rep] = n_evals > 0 && eval_s > 0 ? n_evals / eval_s : NAN;
        pp_ts[rep] = prompt_s > 0 ? n_prompt / prompt_s : NAN;
        fprintf(stderr, "%s:   %.2f t/s generation, %.2f t/s prompt\n", prog, r->ts[rep], pp_ts[rep]);
    }
    if (ok) {
        finish_record(r, en);
        r->prompt_tps = bench_mean(pp_ts, bp->reps);
    }
    free(pp_ts);
    free(en);
    return ok;
}

/* ---- output ----------------------------------------------------------------------------------- */
static const char *const csv_columns[] = {
    "model_filename", "model_type", "model_size", "model_n_params", "type_mix", "quant", "backends", "n_threads",
    "n_batch", "n_ctx", "use_mmap", "test", "n_prompt", "n_gen", "n_reps", "test_time", "avg_ns", "stddev_ns",
    "avg_ts", "stddev_ts", "prompt_tps", "load_seconds", "peak_rss_bytes", "power_source", "energy_j", "avg_w",
    "static_w", "dynamic_w", "j_per_token", "tpj", "tpj_dynamic", "wbl", "battery_wh", "tokens_per_word",
    "max_temp_c", "throttled", "energy_partial",
};
#define N_CSV_COLUMNS ((int)(sizeof csv_columns / sizeof csv_columns[0]))

typedef enum { V_STR, V_NUM, V_BOOL } value_kind;
typedef struct { value_kind kind; const char *s; double d; bool b; } value;

/* Values of one record in csv_columns order. */
static void record_values(const record *r, const model_info *mi, const bench_params *bp, value *v) {
    int k = 0;
#define S(x) (v[k++] = (value){ V_STR, (x), 0, false })
#define N(x) (v[k++] = (value){ V_NUM, NULL, (double)(x), false })
#define B(x) (v[k++] = (value){ V_BOOL, NULL, 0, (x) })
    S(mi->path); S(mi->model_type); N(mi->size); N(mi->n_params); S(mi->type_mix); S(mi->quant); S("CPU");
    N(r->n_threads); N(r->n_batch); N(r->n_ctx); B(bp->use_mmap); S(r->test); N(r->n_prompt); N(r->n_gen);
    N(r->n_reps); S(r->test_time); N(round(r->avg_ns)); N(round(r->stddev_ns)); N(r->avg_ts); N(r->stddev_ts);
    N(r->prompt_tps); N(mi->load_seconds); N(mi->peak_rss);
    const bench_energy *e = &r->energy;
    S(e->power_source); N(e->energy_j); N(e->avg_w); N(e->static_w); N(e->dynamic_w); N(e->j_per_token); N(e->tpj);
    N(e->tpj_dynamic); N(e->wbl); N(e->battery_wh); N(e->tokens_per_word); N(e->max_temp_c); B(e->throttled);
    B(e->energy_partial);
#undef S
#undef N
#undef B
}

static void print_csv(const record_list *rl, const model_info *models, const bench_params *bp) {
    for (int c = 0; c < N_CSV_COLUMNS; c++) printf("%s%s", c ? "," : "", csv_columns[c]);
    printf("\n");
    value v[N_CSV_COLUMNS];
    for (int i = 0; i < rl->n; i++) {
        record_values(&rl->v[i], &models[rl->v[i].model], bp, v);
        for (int c = 0; c < N_CSV_COLUMNS; c++) {
            if (c) putchar(',');
            if (v[c].kind == V_STR) bench_csv_string(stdout, v[c].s);
            else if (v[c].kind == V_NUM) bench_csv_number(stdout, v[c].d);
            else fputs(v[c].b ? "true" : "false", stdout);
        }
        printf("\n");
    }
}

static void print_json(const record_list *rl, const model_info *models, const bench_params *bp) {
    value v[N_CSV_COLUMNS];
    printf("[");
    for (int i = 0; i < rl->n; i++) {
        const record *r = &rl->v[i];
        record_values(r, &models[r->model], bp, v);
        printf("%s\n  {", i ? "," : "");
        for (int c = 0; c < N_CSV_COLUMNS; c++) {
            printf("%s\n    \"%s\": ", c ? "," : "", csv_columns[c]);
            if (v[c].kind == V_STR) bench_json_string(stdout, v[c].s);
            else if (v[c].kind == V_NUM) bench_json_number(stdout, v[c].d);
            else fputs(v[c].b ? "true" : "false", stdout);
        }
        printf(",\n    \"samples_ns\": [");
        for (int k = 0; k < r->n_reps; k++) { printf("%s", k ? ", " : " "); bench_json_number(stdout, round(r->ns[k])); }
        printf(" ],\n    \"samples_ts\": [");
        for (int k = 0; k < r->n_reps; k++) { printf("%s", k ? ", " : " "); bench_json_number(stdout, r->ts[k]); }
        printf(" ]\n  }");
    }
    printf("%s]\n", rl->n ? "\n" : "");
}

static void fmt_energy(char *buf, size_t len, double v, const char *fmt) {
    if (isfinite(v)) snprintf(buf, len, fmt, v);
    else snprintf(buf, len, "n/a");
}

static void print_md(const record_list *rl, const model_info *models, const bench_params *bp) {
    bool energy = false;
    for (int i = 0; i < rl->n; i++) energy |= bench_energy_available(&rl->v[i].energy);
    printf("| model                          |       size |     params | types                    | backend | threads |%s"
           "            test |                  t/s |   load s |  peak RSS |%s\n",
           bp->use_mmap ? "" : " mmap |", energy ? "      W |    TPJ |    W/BL |" : "");
    printf("| ------------------------------ | ---------: | ---------: | ------------------------ | ------- | ------: |%s"
           " --------------: | -------------------: | -------: | --------: |%s\n",
           bp->use_mmap ? "" : " ---: |", energy ? " -----: | -----: | ------: |" : "");
    for (int i = 0; i < rl->n; i++) {
        const record *r = &rl->v[i];
        const model_info *mi = &models[r->model];
        char size[32], params[32], ts[64], rss[32];
        bench_format_size(size, sizeof size, mi->size);
        bench_format_params(params, sizeof params, mi->n_params);
        snprintf(ts, sizeof ts, "%.2f ± %.2f", r->avg_ts, r->stddev_ts);
        snprintf(rss, sizeof rss, "%.1f MiB", (double)mi->peak_rss / (1024.0 * 1024.0));
        printf("| %-30s | %10s | %10s | %-24s | %-7s | %7d |%s %15s | %20s | %8.3f | %9s |", mi->stem, size, params,
               mi->type_mix, "CPU", r->n_threads, bp->use_mmap ? "" : "    0 |", r->test, ts, mi->load_seconds, rss);
        if (energy) {
            char w[32], tpj[32], wbl[32];
            fmt_energy(w, sizeof w, r->energy.avg_w, "%.2f");
            fmt_energy(tpj, sizeof tpj, r->energy.tpj, "%.2f");
            fmt_energy(wbl, sizeof wbl, r->energy.wbl, "%.2g");
            printf(" %6s | %6s | %7s |", w, tpj, wbl);
        }
        printf("\n");
    }
    if (energy && rl->n > 0)
        printf("\nW/BL: battery %.3g Wh, %.3g tokens per word\n", rl->v[0].energy.battery_wh,
               rl->v[0].energy.tokens_per_word);
}

/* The paper's layout: model rows x quantization columns, cells "TPS / TPJ / W/BL". */
static void print_paper_table(const record_list *rl, const model_info *models) {
    static const char *const paper_cols[] = { "FP", "Q8_0", "Q6_K", "Q4_0", "Q2_K" };
    const char *cols[64];
    int n_cols = 0;
    for (size_t c = 0; c < sizeof paper_cols / sizeof paper_cols[0]; c++) cols[n_cols++] = paper_cols[c];
    for (int i = 0; i < rl->n && n_cols < 64; i++) {
        const char *q = bench_paper_column(models[rl->v[i].model].quant);
        bool seen = false;
        for (int c = 0; c < n_cols; c++) seen |= !strcmp(cols[c], q);
        if (!seen) cols[n_cols++] = q;
    }
    bool multi_threads = false;
    for (int i = 1; i < rl->n; i++) multi_threads |= rl->v[i].n_threads != rl->v[0].n_threads;

    printf("\nLLMPi protocol (docs/paper.md): TPS / TPJ / W/BL per model and quantization\n\n| Model |");
    for (int c = 0; c < n_cols; c++) printf(" %s |", cols[c]);
    printf("\n|---|");
    for (int c = 0; c < n_cols; c++) printf("---|");
    printf("\n");
    /* Rows: base model name (+ threads when several), in order of first appearance. */
    bool *done = calloc((size_t)rl->n + 1, sizeof *done);
    if (!done) cli_die("out of memory");
    for (int i = 0; i < rl->n; i++) {
        if (done[i]) continue;
        const record *ri = &rl->v[i];
        const char *row = models[ri->model].base;
        if (multi_threads) printf("| %s (t=%d) |", row, ri->n_threads);
        else printf("| %s |", row);
        for (int c = 0; c < n_cols; c++) {
            const record *cell = NULL;
            for (int j = i; j < rl->n; j++) {
                const record *rj = &rl->v[j];
                if (strcmp(models[rj->model].base, row) || rj->n_threads != ri->n_threads) continue;
                if (strcmp(bench_paper_column(models[rj->model].quant), cols[c])) continue;
                if (!cell) cell = rj;
                done[j] = true;
            }
            if (!cell) { printf(" |"); continue; }
            char tpj[32], wbl[32];
            fmt_energy(tpj, sizeof tpj, cell->energy.tpj, "%.2f");
            fmt_energy(wbl, sizeof wbl, cell->energy.wbl, "%.2g");
            printf(" %.2f / %s / %s |", cell->avg_ts, tpj, wbl);
        }
        printf("\n");
    }
    free(done);
    printf("\nTPS = generation (eval) tokens/s, mean of the runs; TPJ = tokens per joule; W/BL = words per battery "
           "life (%.3g Wh, %.3g tokens/word). n/a: no power source.\n",
           rl->n ? rl->v[0].energy.battery_wh : 5.0, rl->n ? rl->v[0].energy.tokens_per_word : 1.5);
}

static int write_plot(const char *path, const record_list *rl, const model_info *models) {
    bool multi_threads = false;
    for (int i = 1; i < rl->n; i++) multi_threads |= rl->v[i].n_threads != rl->v[0].n_threads;
    bench_bar *bars = calloc((size_t)rl->n * 2 + 1, sizeof *bars);
    char (*panel)[64] = calloc((size_t)rl->n * 2 + 1, sizeof *panel);
    char (*series)[64] = calloc((size_t)rl->n + 1, sizeof *series);
    if (!bars || !panel || !series) cli_die("out of memory");
    int nb = 0;
    for (int i = 0; i < rl->n; i++) {
        const record *r = &rl->v[i];
        const model_info *mi = &models[r->model];
        if (multi_threads) snprintf(series[i], sizeof series[i], "%s t=%d", mi->quant, r->n_threads);
        else snprintf(series[i], sizeof series[i], "%s", mi->quant);
        snprintf(panel[nb], sizeof panel[nb], "%s: tokens/s", r->test);
        bars[nb] = (bench_bar){ panel[nb], mi->base, series[i], r->avg_ts, r->stddev_ts };
        nb++;
        if (isfinite(r->energy.tpj)) {
            snprintf(panel[nb], sizeof panel[nb], "%s: tokens per joule", r->test);
            bars[nb] = (bench_bar){ panel[nb], mi->base, series[i], r->energy.tpj, NAN };
            nb++;
        }
    }
    FILE *f = fopen(path, "w");
    if (!f) cli_die("%s: %s", path, strerror(errno));
    int rc = bench_write_svg(f, "llmpi-bench: speed per model and quantization", bars, nb);
    if (fclose(f) != 0) rc = -1;
    free(bars);
    free(panel);
    free(series);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------------- */
static void print_plan(const bench_params *bp, const char **paths, int n_models, int n_ctx) {
    printf("mode: %s\n", bp->protocol ? "protocol llmpi (docs/paper.md)" : "llama-bench");
    if (bp->protocol) {
        printf("prompt: \"%s\" (+BOS)\n", BENCH_PAPER_PROMPT);
        printf("sampler: temp 0.8, top_k 40, top_p 0.95, min_p 0.05 (llama-cli defaults), end-of-generation ignored\n");
    }
    printf("n_prompt:");
    for (int i = 0; i < bp->n_prompt.n; i++) printf(" %d", bp->n_prompt.v[i]);
    printf("\nn_gen:");
    for (int i = 0; i < bp->n_gen.n; i++) printf(" %d", bp->n_gen.v[i]);
    printf("\nthreads:");
    for (int i = 0; i < bp->threads.n; i++) printf(" %d", bp->threads.v[i]);
    printf("\nn_ctx: %d\nrepetitions: %d\nwarmup: %s\npause_seconds: %g\n", n_ctx, bp->reps, bp->warmup ? "yes" : "no",
           bp->pause_s);
    printf("idle_seconds: %g (static power baseline; measured only with a power source)\n", power.cfg.idle_seconds);
    printf("power: %s\nmmap: %s\nkv: %s\n", power.requested ? power.cfg.source : "none", bp->use_mmap ? "yes" : "no",
           bp->kv_f32 ? "f32" : "f16");
    for (int i = 0; i < n_models; i++) printf("model: %s\n", paths[i]);
}

int main(int argc, char **argv) {
    cli_prog = prog;
    cli_usage = usage_text;
    power_config_default(&power.cfg);
    bench_params bp = { .reps = 5, .use_mmap = true, .warmup = true, .seed = 1234, .output = OUT_MD };
    bool reps_set = false, pause_set = false, warmup_set = false, gen_set = false;
    bp.n_prompt = (int_list){ { 512 }, 1 };
    bp.n_gen = (int_list){ { 128 }, 1 };
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    bp.threads = (int_list){ { cores > 0 ? (int)cores : 1 }, 1 };
    const char *paths[256];
    int n_models = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (cli_usage_exit("option %s needs a value", a), ""))
        int used = power_option(argc, argv, i);
        if (used > 0) { i += used - 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage_text, stdout); return 0; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (n_models == 256) cli_die("too many models (at most 256)");
            paths[n_models++] = NEXT();
        }
        else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) parse_list(a, NEXT(), 0, 1 << 20, &bp.n_prompt);
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) { parse_list(a, NEXT(), 0, 1 << 20, &bp.n_gen); gen_set = true; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) parse_list(a, NEXT(), 1, 512, &bp.threads);
        else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) { bp.reps = (int)cli_parse_long(a, NEXT(), 1, MAX_REPS); reps_set = true; }
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) bp.n_batch = (int)cli_parse_long(a, NEXT(), 1, 1 << 16);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) bp.n_ctx = (int)cli_parse_long(a, NEXT(), 1, 1 << 24);
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            const char *f = NEXT();
            if (!strcmp(f, "md")) bp.output = OUT_MD;
            else if (!strcmp(f, "csv")) bp.output = OUT_CSV;
            else if (!strcmp(f, "json")) bp.output = OUT_JSON;
            else cli_usage_exit("unknown output format '%s' (md, csv or json)", f);
        }
        else if (!strcmp(a, "--mmap")) bp.use_mmap = true;
        else if (!strcmp(a, "--no-mmap")) bp.use_mmap = false;
        else if (!strcmp(a, "-mmp") || !strcmp(a, "--mmp")) bp.use_mmap = cli_parse_long(a, NEXT(), 0, 1) != 0;
        else if (!strcmp(a, "--kv-f32")) bp.kv_f32 = true;
        else if (!strcmp(a, "--warmup")) { bp.warmup = true; warmup_set = true; }
        else if (!strcmp(a, "--no-warmup")) { bp.warmup = false; warmup_set = true; }
        else if (!strcmp(a, "--pause-seconds") || !strcmp(a, "--delay")) { bp.pause_s = cli_parse_double(a, NEXT(), 0, 3600); pause_set = true; }
        else if (!strcmp(a, "--seed")) bp.seed = (uint64_t)cli_parse_long(a, NEXT(), 0, LONG_MAX);
        else if (!strcmp(a, "--protocol")) {
            const char *p = NEXT();
            if (strcmp(p, "llmpi")) cli_usage_exit("unknown protocol '%s' (only 'llmpi')", p);
            bp.protocol = true;
        }
        else if (!strcmp(a, "--plot")) bp.plot_path = NEXT();
        else if (!strcmp(a, "--dry-run")) bp.dry_run = true;
        else if (!strcmp(a, "--kernels"))
            cli_die("--kernels (per-kernel micro-benchmarks) is not supported yet: it needs an internal kernel API "
                "that llmpi.h does not expose");
        else if (a[0] == '-' && a[1]) cli_usage_exit("unknown option '%s'", a);
        else {
            if (n_models == 256) cli_die("too many models (at most 256)");
            paths[n_models++] = a;
        }
#undef NEXT
    }
    if (n_models == 0) cli_usage_exit("%s", "no model given (use -m MODEL.gguf)");

    /* The paper's protocol: its parameters unless explicitly overridden. */
    if (bp.protocol) {
        bp.n_prompt = (int_list){ { 0 }, 1 };
        if (!gen_set) bp.n_gen = (int_list){ { BENCH_PAPER_N_GEN }, 1 };
        if (bp.n_gen.n != 1 || bp.n_gen.v[0] < 1) cli_die("--protocol runs one generation length >= 1 (-n N)");
        if (!reps_set) bp.reps = BENCH_PAPER_REPS;
        if (!pause_set) bp.pause_s = BENCH_PAPER_PAUSE_S;
        if (!warmup_set) bp.warmup = false;   /* the paper's 10 runs were separate llama-cli processes */
        if (!bp.n_ctx) bp.n_ctx = BENCH_PAPER_N_CTX;
        if (!power.idle_set) power.cfg.idle_seconds = BENCH_PAPER_IDLE_S;   /* used only with a power source */
    }
    int n_ctx = bp.n_ctx;
    if (!n_ctx) {
        for (int i = 0; i < bp.n_prompt.n; i++) if (bp.n_prompt.v[i] > n_ctx) n_ctx = bp.n_prompt.v[i];
        for (int i = 0; i < bp.n_gen.n; i++) if (bp.n_gen.v[i] > n_ctx) n_ctx = bp.n_gen.v[i];
        if (n_ctx < 1) cli_die("nothing to run: every -p and -n value is 0");
    }
    if (bp.dry_run) {
        print_plan(&bp, paths, n_models, n_ctx);
        return 0;
    }
    power_open();

    model_info *models = calloc((size_t)n_models, sizeof *models);
    if (!models) cli_die("out of memory");
    record_list rl = { 0 };
    int exit_code = 0;
    llmpi_error err;

    for (int mi_idx = 0; mi_idx < n_models; mi_idx++) {
        model_info *mi = &models[mi_idx];
        mi->path = paths[mi_idx];
        const char *slash = strrchr(mi->path, '/');
        snprintf(mi->stem, sizeof mi->stem, "%s", slash ? slash + 1 : mi->path);
        size_t sl = strlen(mi->stem);
        if (sl > 5 && !strcasecmp(mi->stem + sl - 5, ".gguf")) mi->stem[sl - 5] = 0;

        fprintf(stderr, "%s: [%d/%d] loading %s\n", prog, mi_idx + 1, n_models, mi->path);
        const bool rss_reset = bench_peak_rss_reset();
        llmpi_model_params mp = llmpi_model_default_params();
        mp.use_mmap = bp.use_mmap;
        llmpi_model *m;
        const double t0 = llmpi_time_seconds();
        if (llmpi_model_load(mi->path, &mp, &m, &err) != LLMPI_OK) {
            fprintf(stderr, "%s: error: %s: %s\n", prog, mi->path, err.msg);
            mi->failed = true;
            exit_code = 1;
            continue;
        }
        mi->load_seconds = llmpi_time_seconds() - t0;
        snprintf(mi->arch, sizeof mi->arch, "%s", llmpi_model_arch(m));
        llmpi_model_type_mix(m, mi->type_mix, sizeof mi->type_mix);
        mi->size = llmpi_model_size(m);
        mi->n_params = llmpi_model_n_params(m);
        bench_quant_label(mi->path, mi->type_mix, mi->quant, sizeof mi->quant);
        bench_model_base_name(mi->path, mi->quant, mi->base, sizeof mi->base);
        char pshort[32];
        bench_format_params_short(pshort, sizeof pshort, mi->n_params);
        snprintf(mi->model_type, sizeof mi->model_type, "%s %s %s", mi->arch, pshort, mi->quant);
        if (n_ctx > llmpi_model_n_ctx_train(m) && llmpi_model_n_ctx_train(m) > 0)
            fprintf(stderr, "%s: note: context %d exceeds the model's training context %d\n", prog, n_ctx,
                    llmpi_model_n_ctx_train(m));

        /* Protocol prompt, tokenized once per model. */
        int32_t *prompt = NULL;
        int n_prompt_tokens = 0;
        if (bp.protocol) {
            const int cap = (int)strlen(BENCH_PAPER_PROMPT) + 16;
            prompt = malloc((size_t)cap * sizeof *prompt);
            if (!prompt) cli_die("out of memory");
            n_prompt_tokens = llmpi_tokenize(m, BENCH_PAPER_PROMPT, -1, true, false, prompt, cap, &err);
            if (n_prompt_tokens <= 0 || n_prompt_tokens > cap) {
                fprintf(stderr, "%s: error: %s: cannot tokenize the protocol prompt: %s\n", prog, mi->path,
                        n_prompt_tokens < 0 ? err.msg : "no tokens");
                mi->failed = true;
                exit_code = 1;
                free(prompt);
                llmpi_model_free(m);
                continue;
            }
        }

        for (int ti = 0; ti < bp.threads.n && !mi->failed; ti++) {
            llmpi_context_params cp = llmpi_context_default_params();
            cp.n_ctx = n_ctx;
            cp.n_threads = bp.threads.v[ti];
            if (bp.n_batch) cp.n_batch = bp.n_batch;
            cp.kv_f32 = bp.kv_f32;
            llmpi_context *ctx;
            if (llmpi_context_create(m, &cp, &ctx, &err) != LLMPI_OK) {
                fprintf(stderr, "%s: error: %s: %s\n", prog, mi->path, err.msg);
                mi->failed = true;
                exit_code = 1;
                break;
            }
            const int n_batch_eff = bp.n_batch ? (bp.n_batch < n_ctx ? bp.n_batch : n_ctx)
                                               : (cp.n_batch < n_ctx ? cp.n_batch : n_ctx);
            const int n_tests = bp.protocol ? 1 : bp.n_prompt.n + bp.n_gen.n;
            for (int k = 0; k < n_tests; k++) {
                int np = 0, ng = 0;
                if (bp.protocol) { np = n_prompt_tokens; ng = bp.n_gen.v[0]; }
                else if (k < bp.n_prompt.n) np = bp.n_prompt.v[k];
                else ng = bp.n_gen.v[k - bp.n_prompt.n];
                if (!bp.protocol && np == 0 && ng == 0) continue;
                if (bp.protocol && np + ng > n_ctx) {
                    fprintf(stderr, "%s: error: %s: prompt (%d) + %d tokens exceed the context %d\n", prog, mi->path,
                            np, ng, n_ctx);
                    mi->failed = true;
                    exit_code = 1;
                    break;
                }
                record *r = new_record(&rl);
                r->model = mi_idx;
                r->n_threads = bp.threads.v[ti];
                r->n_batch = n_batch_eff;
                r->n_ctx = n_ctx;
                r->n_prompt = np;
                r->n_gen = ng;
                r->n_reps = bp.reps;
                iso_time(r->test_time, sizeof r->test_time);
                if (bp.protocol) snprintf(r->test, sizeof r->test, "llmpi-tg%d", ng);
                else if (np) snprintf(r->test, sizeof r->test, "pp%d", np);
                else snprintf(r->test, sizeof r->test, "tg%d", ng);
                const bool ok = bp.protocol ? run_protocol_test(ctx, m, &bp, r, prompt, n_prompt_tokens, mi->stem, &err)
                                            : run_speed_test(ctx, m, &bp, r, mi->stem, &err);
                if (!ok) {
                    fprintf(stderr, "%s: error: %s: %s: %s\n", prog, mi->path, r->test, err.msg);
                    free(r->ns);
                    free(r->ts);
                    rl.n--;
                    mi->failed = true;
                    exit_code = 1;
                    break;
                }
                fprintf(stderr, "%s: %s: t=%d %s: %.2f ± %.2f t/s\n", prog, mi->stem, r->n_threads, r->test, r->avg_ts,
                        r->stddev_ts);
            }
            llmpi_context_free(ctx);
        }
        mi->peak_rss = rss_reset ? bench_peak_rss_read() : 0;
        if (!mi->peak_rss) mi->peak_rss = llmpi_peak_rss_bytes();   /* process-wide peak as a fallback */
        free(prompt);
        llmpi_model_free(m);
    }

    if (bp.output == OUT_CSV) print_csv(&rl, models, &bp);
    else if (bp.output == OUT_JSON) print_json(&rl, models, &bp);
    else {
        print_md(&rl, models, &bp);
        if (bp.protocol) print_paper_table(&rl, models);
    }
    fflush(stdout);
    if (bp.plot_path) {
        if (write_plot(bp.plot_path, &rl, models) != 0) cli_die("%s: write failed", bp.plot_path);
        fprintf(stderr, "%s: wrote %s\n", prog, bp.plot_path);
    }
    for (int i = 0; i < rl.n; i++) { free(rl.v[i].ns); free(rl.v[i].ts); }
    free(rl.v);
    free(models);
    power_close();
    return exit_code;
}
