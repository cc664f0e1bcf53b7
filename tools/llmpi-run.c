/* llmpi-run: generate text from a GGUF model, inspect a file (--info), tokenize, dump logits.
 * stdout carries exactly the prompt followed by the generated text (streamed); everything else
 * (stats, errors) goes to stderr. Exit codes: 0 ok, 1 error, 2 usage. */
#include "cli.h"
#include "llmpi.h"
#include "power.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage_text =
    "usage: llmpi-run MODEL.gguf [options]\n"
    "  -p, --prompt TEXT       prompt text\n"
    "  -f, --file FILE         read the prompt from FILE\n"
    "  -n, --n-predict N       tokens to generate (default 128)\n"
    "  -t, --threads N         threads (default: online cores)\n"
    "  -c, --ctx-size N        context length (default: the model's, at most 4096)\n"
    "  -b, --batch-size N      prompt micro-batch (default 32)\n"
    "      --temp T            temperature (0 = greedy; default 0.8)\n"
    "      --top-k K           (default 40)      --top-p P  (default 0.95)\n"
    "      --min-p M           (default 0.05)    --repeat-penalty R (default 1.0)\n"
    "      --repeat-last-n N   penalty window (default 64)\n"
    "      --seed S            RNG seed\n"
    "      --ignore-eos        do not stop at end-of-generation tokens\n"
    "      --tokens 1,2,3      feed raw token ids instead of a prompt\n"
    "      --tokenize TEXT     print the token ids of TEXT and exit\n"
    "      --dump-logits FILE  write the logits of every prompt position (LPLOGIT1)\n"
    "      --info              print the GGUF header, metadata and tensor table and exit\n"
    "      --no-mmap           read weights into memory instead of mapping the file\n"
    "      --kv-f32            F32 KV cache (default F16)\n"
    "      --act-scheme S      ternary weights' activations: ggml (Q8_K blocks, llama.cpp), bitnet\n"
    "                          (int8 per token, bitnet.cpp) or auto (default: I2_S files bitnet, else ggml)\n"
    "      --stats-json FILE   write the run's figures (t/s, energy) as one JSON object\n"
    "  -h, --help\n"
    "  power measurement (docs/energy.md):\n";

static const char *prog = "llmpi-run";






static int32_t *parse_token_list(const char *s, int *n_out) {
    int cap = 16, n = 0;
    int32_t *v = malloc((size_t)cap * sizeof *v);
    const char *p = s;
    while (v && *p) {
        char *end;
        errno = 0;
        long t = strtol(p, &end, 10);
        if (end == p || errno || t < 0 || t > INT32_MAX) cli_die("invalid token list '%s': expected ids like 1,2,3", s);
        if (n == cap) { cap *= 2; int32_t *nv = realloc(v, (size_t)cap * sizeof *v); if (!nv) break; v = nv; }
        v[n++] = (int32_t)t;
        p = end;
        if (*p == ',') p++;
        else if (*p) cli_die("invalid token list '%s': expected ids like 1,2,3", s);
    }
    if (!v || n == 0) cli_die("empty token list");
    *n_out = n;
    return v;
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

/* Per-token callback: streams text and marks the start of generation for the power sampler
 * (the first callback comes right after the prompt has been evaluated). */
static bool print_token(int32_t token, const char *text, int len, void *user) {
    power_sampler *ps = user;
    static bool gen_marked;
    if (ps && !gen_marked) { power_sampler_mark(ps, POWER_PHASE_GEN); gen_marked = true; }
    (void)token;
    if (len > 0) { fwrite(text, 1, (size_t)len, stdout); fflush(stdout); }
    return !interrupted;
}

/* LPLOGIT1: magic, u32 n_tokens, u32 n_vocab, i32 tokens[n], f32 logits[n][n_vocab] (little-endian host). */
static void write_logits(const char *path, const llmpi_context *ctx, const int32_t *toks, int n, int n_vocab) {
    FILE *f = fopen(path, "wb");
    if (!f) cli_die("%s: %s", path, strerror(errno));
    uint32_t hdr[2] = { (uint32_t)n, (uint32_t)n_vocab };
    bool ok = fwrite("LPLOGIT1", 1, 8, f) == 8 && fwrite(hdr, 4, 2, f) == 2 && fwrite(toks, 4, (size_t)n, f) == (size_t)n;
    for (int i = 0; ok && i < n; i++) {
        const float *l = llmpi_get_logits(ctx, i);
        ok = l && fwrite(l, 4, (size_t)n_vocab, f) == (size_t)n_vocab;
    }
    if (fclose(f) != 0 || !ok) cli_die("%s: write failed", path);
}

int main(int argc, char **argv) {
    cli_prog = prog;
    cli_usage = usage_text;
    cli_usage_extra = power_cli_usage();
    /* static: these stay reachable when cli_die() exits early, so leak checkers report no leak. */
    static int32_t *toks;
    static char *file_text;
    static llmpi_model *model;
    static llmpi_context *ctx;
    static power_sampler *ps;
    const char *model_path = NULL, *prompt = NULL, *prompt_file = NULL, *tokens_arg = NULL, *tokenize_text = NULL;
    const char *dump_logits = NULL, *stats_json = NULL;
    int n_predict = 128;
    power_config pc;
    power_config_default(&pc);
    bool power_requested = false;
    bool info = false, ignore_eos = false;
    llmpi_model_params mp = llmpi_model_default_params();
    llmpi_context_params cp = llmpi_context_default_params();
    llmpi_sampler_params sp = llmpi_sampler_default_params();

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (cli_usage_exit("option %s needs a value", a), ""))
        char perr[256];
        int used = power_cli_parse(&pc, argc, argv, i, perr, sizeof perr);
        if (used < 0) cli_die("%s", perr);
        if (used > 0) { i += used - 1; power_requested = true; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { printf("%s%s", usage_text, power_cli_usage()); return 0; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = NEXT();
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) prompt_file = NEXT();
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) n_predict = (int)cli_parse_long(a, NEXT(), 0, INT_MAX);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) cp.n_threads = (int)cli_parse_long(a, NEXT(), 1, 512);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) cp.n_ctx = (int)cli_parse_long(a, NEXT(), 1, 1 << 24);
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) cp.n_batch = (int)cli_parse_long(a, NEXT(), 1, 1 << 16);
        else if (!strcmp(a, "--temp")) sp.temp = (float)cli_parse_double(a, NEXT(), 0.0f, 100.0f);
        else if (!strcmp(a, "--top-k")) sp.top_k = (int)cli_parse_long(a, NEXT(), 0, INT_MAX);
        else if (!strcmp(a, "--top-p")) sp.top_p = (float)cli_parse_double(a, NEXT(), 0.0f, 1.0f);
        else if (!strcmp(a, "--min-p")) sp.min_p = (float)cli_parse_double(a, NEXT(), 0.0f, 1.0f);
        else if (!strcmp(a, "--repeat-penalty")) sp.repeat_penalty = (float)cli_parse_double(a, NEXT(), 0.0f, 100.0f);
        else if (!strcmp(a, "--repeat-last-n")) sp.repeat_last_n = (int)cli_parse_long(a, NEXT(), 0, 1 << 20);
        else if (!strcmp(a, "--seed")) sp.seed = (uint64_t)cli_parse_long(a, NEXT(), 0, LONG_MAX);
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = true;
        else if (!strcmp(a, "--tokens")) tokens_arg = NEXT();
        else if (!strcmp(a, "--tokenize")) tokenize_text = NEXT();
        else if (!strcmp(a, "--dump-logits")) dump_logits = NEXT();
        else if (!strcmp(a, "--info")) info = true;
        else if (!strcmp(a, "--no-mmap")) mp.use_mmap = false;
        else if (!strcmp(a, "--mmap")) mp.use_mmap = true;
        else if (!strcmp(a, "--kv-f32")) cp.kv_f32 = true;
        else if (!strcmp(a, "--stats-json")) stats_json = NEXT();
        else if (!strcmp(a, "--act-scheme")) {
            const char *v = NEXT();
            const int sch = llmpi_act_scheme_from_name(v);
            if (sch < 0) cli_usage_exit("--act-scheme must be ggml, bitnet or auto (got '%s')", v);
            mp.act_scheme = (llmpi_act_scheme)sch;
        }
        else if (a[0] == '-' && a[1]) cli_usage_exit("unknown option '%s'", a);
        else if (!model_path) model_path = a;
        else cli_usage_exit("unexpected argument '%s'", a);
#undef NEXT
    }
    if (!model_path) cli_usage_exit("%s", "no model given");

    llmpi_error err;
    if (info) {
        if (llmpi_print_file_info(model_path, mp.use_mmap, stdout, &err) != LLMPI_OK) cli_die("%s: %s", model_path, err.msg);
        return 0;
    }

    double t_load0 = llmpi_time_seconds();
    mp.vocab_only = tokenize_text != NULL;
    if (llmpi_model_load(model_path, &mp, &model, &err) != LLMPI_OK) cli_die("%s: %s", model_path, err.msg);
    double load_seconds = llmpi_time_seconds() - t_load0;

    if (tokenize_text) {
        int cap = (int)strlen(tokenize_text) + 16;
        toks = malloc((size_t)cap * sizeof *toks);
        int n = toks ? llmpi_tokenize(model, tokenize_text, -1, true, false, toks, cap, &err) : -1;
        if (n < 0 || n > cap) cli_die("%s", n < 0 ? err.msg : "tokenization overflow");
        for (int i = 0; i < n; i++) printf("%s%d", i ? "," : "", toks[i]);
        printf("\n");
        free(toks);
        llmpi_model_free(model);
        return 0;
    }

    /* Prompt -> token ids. */
    int n_toks = 0;
    if (tokens_arg) {
        if (prompt || prompt_file) cli_die("--tokens cannot be combined with -p/-f");
        toks = parse_token_list(tokens_arg, &n_toks);
    } else {
        if (prompt_file) {
            if (prompt) cli_die("-p and -f cannot be combined");
            prompt = file_text = cli_read_text_file(prompt_file, NULL);
        }
        if (!prompt) cli_die("no prompt: use -p TEXT, -f FILE or --tokens IDS");
        if (!*prompt) cli_die("empty prompt");
        int cap = (int)strlen(prompt) + 16;
        toks = malloc((size_t)cap * sizeof *toks);
        if (!toks) cli_die("out of memory");
        n_toks = llmpi_tokenize(model, prompt, -1, true, false, toks, cap, &err);
        if (n_toks < 0) cli_die("%s", err.msg);
        if (n_toks > cap) cli_die("prompt tokenization overflow");
        if (n_toks == 0) cli_die("empty prompt");
    }

    cp.logits_all = dump_logits != NULL;
    if (llmpi_context_create(model, &cp, &ctx, &err) != LLMPI_OK) cli_die("%s", err.msg);
    if (n_toks + n_predict > llmpi_n_ctx(ctx))
        cli_die("prompt of %d tokens + %d to generate does not fit in the context of %d tokens (use -c)", n_toks,
            n_predict, llmpi_n_ctx(ctx));

    /* Echo the prompt: its own text, or the detokenized ids. */
    if (prompt) fputs(prompt, stdout);
    else if (llmpi_model_has_tokenizer(model)) {
        char piece[256];
        for (int i = 0; i < n_toks; i++) {
            int len = llmpi_token_to_piece(model, toks[i], piece, (int)sizeof piece, false);
            if (len > 0 && len <= (int)sizeof piece) fwrite(piece, 1, (size_t)len, stdout);
        }
    }
    fflush(stdout);

    struct sigaction sa = { 0 };
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);

    /* Power: sampled on its own thread around the run; never estimated (docs/energy.md). */
    if (power_requested || stats_json) {
        char perr[512];
        if (power_sampler_create(&pc, &ps, perr, sizeof perr) != 0) cli_die("power: %s", perr);
        if (pc.idle_seconds > 0) {
            fprintf(stderr, "%s: measuring idle power for %.0f s\n", prog, pc.idle_seconds);
            if (power_measure_idle(ps, pc.idle_seconds) != 0) cli_die("power: %s", power_sampler_error(ps));
        }
        if (power_sampler_start(ps) != 0) cli_die("power: cannot start the sampler: %s", power_sampler_error(ps));
        power_sampler_mark(ps, POWER_PHASE_PROMPT);
    }

    llmpi_gen_stats st = { 0 };
    if (dump_logits) {
        double t0 = llmpi_time_seconds();
        if (llmpi_eval(ctx, toks, n_toks, &err) != LLMPI_OK) cli_die("%s", err.msg);
        st.prompt_seconds = llmpi_time_seconds() - t0;
        st.n_prompt = n_toks;
        write_logits(dump_logits, ctx, toks, n_toks, llmpi_model_n_vocab(model));
    }
    if (!dump_logits || n_predict > 0) {
        static llmpi_sampler *smp;
        smp = llmpi_sampler_create(&sp);
        if (!smp) cli_die("out of memory");
        /* After --dump-logits the prompt is already in the cache: generation continues from it. */
        const int n_eval = dump_logits ? 0 : n_toks;
        if (dump_logits) for (int i = 0; i < n_toks; i++) llmpi_sampler_accept(smp, toks[i]);
        llmpi_gen_stats gs;
        if (llmpi_generate(ctx, smp, toks, n_eval, n_predict, ignore_eos, print_token, ps, &gs, &err) != LLMPI_OK)
            cli_die("%s", err.msg);
        if (n_eval > 0) st = gs;
        else { st.n_generated = gs.n_generated; st.gen_seconds = gs.gen_seconds; }
        llmpi_sampler_free(smp);
    }
    printf("\n");
    fflush(stdout);
    power_report rep;
    if (ps) {
        power_sampler_mark(ps, POWER_PHASE_OTHER);
        power_sampler_stop(ps);
        power_sampler_report(ps, &rep);
    }

    fprintf(stderr, "\n%s: prompt: %d tokens in %.3f s (%.2f t/s)\n", prog, st.n_prompt, st.prompt_seconds,
            st.prompt_seconds > 0 ? st.n_prompt / st.prompt_seconds : 0.0);
    fprintf(stderr, "%s: generated: %d tokens in %.3f s (%.2f t/s)%s\n", prog, st.n_generated, st.gen_seconds,
            st.gen_seconds > 0 ? st.n_generated / st.gen_seconds : 0.0, interrupted ? " (interrupted)" : "");
    fprintf(stderr, "%s: load: %.3f s, threads: %d, peak RSS: %.1f MiB, ternary activation scheme: %s\n", prog,
            load_seconds, llmpi_n_threads(ctx), (double)llmpi_peak_rss_bytes() / (1024.0 * 1024.0),
            llmpi_model_act_scheme(model));

    if (ps || stats_json) {
        power_run_info run = { st.n_prompt, st.prompt_seconds, st.n_generated, st.gen_seconds };
        power_metrics pm;
        power_compute_metrics(ps ? &rep : NULL, &run, pc.battery_wh, pc.tokens_per_word, &pm);
        if (ps) power_print_metrics(stderr, "llmpi-run: ", &pm);
        if (stats_json) {
            FILE *jf = fopen(stats_json, "w");
            if (!jf) cli_die("%s: %s", stats_json, strerror(errno));
            /* power_write_json writes one object; the activation scheme is appended as its last member. */
            char *buf = NULL;
            size_t len = 0;
            FILE *mf = open_memstream(&buf, &len);
            if (!mf || power_write_json(mf, &pm) != 0 || fclose(mf) != 0) cli_die("%s: write failed", stats_json);
            while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '}')) len--;
            if (fprintf(jf, "%.*s, \"act_scheme\": \"%s\"}\n", (int)len, buf, llmpi_model_act_scheme(model)) < 0 ||
                fclose(jf) != 0)
                cli_die("%s: write failed", stats_json);
            free(buf);
        }
    }
    power_sampler_free(ps);
    llmpi_context_free(ctx);
    llmpi_model_free(model);
    free(toks);
    free(file_text);
    return 0;
}
