/* llmpi-perplexity: perplexity over a text file (llama-perplexity's chunking and scoring), KL
 * divergence against saved base-model log-probabilities (llama.cpp's "_logits_" file, so files
 * from llama-perplexity --kl-divergence-base work too), and the paper-style QA check (--qa).
 * Results go to stdout, progress and errors to stderr. Exit codes: 0 ok, 1 error, 2 usage.
 * Details and the comparison with llama.cpp: docs/bench.md. */
#include "bench_util.h"
#include "imatrix.h"
#include "cli.h"
#include "llmpi.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "llmpi-perplexity";

static const char *usage_text =
    "usage: llmpi-perplexity -m MODEL.gguf -f TEXT [options]\n"
    "       llmpi-perplexity -m QUANT.gguf --kld BASE.kld\n"
    "       llmpi-perplexity -m MODEL.gguf --qa ITEMS.jsonl\n"
    "  -m, --model FILE        model (a bare file name works too)\n"
    "  -f, --file FILE         text to score\n"
    "  -c, --ctx-size N        tokens per chunk (default 512); the second half of each chunk is scored\n"
    "      --chunks N          score at most N chunks\n"
    "  -b, --batch-size N      prompt micro-batch (default: the engine's, 32)\n"
    "  -t, --threads N         threads (default: online cores)\n"
    "      --kld-base FILE     also save the scored positions' log-probabilities (base model)\n"
    "      --kld FILE          KL divergence, top-1 agreement, PPL ratio and Δp against a saved base\n"
    "                          (tokens and context come from FILE; -f is not needed)\n"
    "                          llama.cpp spelling: --kl-divergence-base FILE [--kl-divergence]\n"
    "      --qa FILE.jsonl     QA check: {\"context\",\"question\",\"answers\"} per line, the paper's prompt,\n"
    "                          greedy generation; exact match and token F1 (SQuAD rules)\n"
    "  -n, --n-predict N       tokens generated per QA item (default 50)\n"
    "      --imatrix-out FILE  while scoring, collect llama-imatrix statistics (imatrix GGUF) for\n"
    "                          llmpi-quantize --imatrix / llama-quantize --imatrix (saved every 10 chunks)\n"
    "      --process-output    with --imatrix-out: also collect output.weight (llama-imatrix's option)\n"
    "      --mmap, --no-mmap   map the weights (default) or read them into memory\n"
    "      --kv-f32            F32 KV cache (default F16)\n"
    "  -h, --help\n";





typedef struct {
    const char *model_path, *text_path, *kld_base_out, *kld_in, *qa_path, *imatrix_out;
    int n_ctx, n_batch, n_threads, max_chunks, n_predict;
    bool ctx_set, use_mmap, kv_f32, process_output;
} options;

/* Whether tokenizing with add_special puts a BOS in front (llama_vocab_get_add_bos). */
static bool model_adds_bos(const llmpi_model *m) {
    int32_t a[16], b[16];
    llmpi_error err;
    const int na = llmpi_tokenize(m, "a", -1, true, false, a, 16, &err);
    const int nb = llmpi_tokenize(m, "a", -1, false, false, b, 16, &err);
    return na > nb && na > 0 && a[0] == llmpi_token_bos(m);
}

static llmpi_context *make_context(llmpi_model *m, const options *o, int n_ctx, bool logits_all) {
    llmpi_context_params cp = llmpi_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = o->n_threads;
    if (o->n_batch) cp.n_batch = o->n_batch;
    cp.kv_f32 = o->kv_f32;
    cp.logits_all = logits_all;
    llmpi_context *ctx;
    llmpi_error err;
    if (llmpi_context_create(m, &cp, &ctx, &err) != LLMPI_OK) cli_die("%s", err.msg);
    return ctx;
}

/* Evaluates one chunk of n_ctx tokens from an empty cache (first token replaced by BOS when the
 * model adds one, as llama-perplexity does) in two evals: positions [0, first) whose logits are
 * not needed, then [first, n_ctx) whose logits row j belongs to position first + j. */
static void eval_chunk(llmpi_context *ctx, const int32_t *chunk_tokens, int n_ctx, int first, bool add_bos,
                       int32_t bos, int32_t *scratch) {
    llmpi_error err;
    memcpy(scratch, chunk_tokens, (size_t)n_ctx * sizeof *scratch);
    if (add_bos) scratch[0] = bos;
    llmpi_kv_clear(ctx);
    if (first > 0 && llmpi_eval(ctx, scratch, first, &err) != LLMPI_OK) cli_die("%s", err.msg);
    if (llmpi_eval(ctx, scratch + first, n_ctx - first, &err) != LLMPI_OK) cli_die("%s", err.msg);
}

static void print_eta(double seconds_per_chunk, int n_chunk) {
    fprintf(stderr, "%s: %.2f seconds per pass - ETA %.2f minutes\n", prog, seconds_per_chunk,
            seconds_per_chunk * n_chunk / 60.0);
}

static void write_all(FILE *f, const void *p, size_t size, size_t n, const char *path) {
    if (fwrite(p, size, n, f) != n) cli_die("%s: write failed: %s", path, strerror(errno));
}

/* ---- perplexity (and saving the base log-probabilities) ------------------------------------- */
static int run_perplexity(llmpi_model *m, const options *o) {
    size_t text_len;
    char *text = cli_read_text_file(o->text_path, &text_len);
    if (text_len > (size_t)INT_MAX - 16) cli_die("%s: file too large", o->text_path);
    const int cap = (int)text_len + 16;
    int32_t *tokens = malloc((size_t)cap * sizeof *tokens);
    if (!tokens) cli_die("out of memory");
    llmpi_error err;
    fprintf(stderr, "%s: tokenizing the input ..\n", prog);
    const int n_tokens = llmpi_tokenize(m, text, (int)text_len, true, false, tokens, cap, &err);
    free(text);
    if (n_tokens < 0) cli_die("%s", err.msg);
    if (n_tokens > cap) cli_die("tokenization overflow");

    const int n_ctx = o->n_ctx;
    if (n_ctx < 4) cli_die("-c %d is too small: a chunk needs at least 4 tokens", n_ctx);
    if (n_tokens < 2 * n_ctx)
        cli_die("you need at least %d tokens to evaluate perplexity with a context of %d; %s tokenizes to only %d",
            2 * n_ctx, n_ctx, o->text_path, n_tokens);
    int n_chunk = n_tokens / n_ctx;
    if (o->max_chunks > 0 && o->max_chunks < n_chunk) n_chunk = o->max_chunks;
    const int first = n_ctx / 2;
    const int n_scored = n_ctx - 1 - first;   /* positions scored per chunk */
    const int n_vocab = llmpi_model_n_vocab(m);
    const bool add_bos = model_adds_bos(m);
    const int32_t bos = llmpi_token_bos(m);

    FILE *kf = NULL;
    uint16_t *rows = NULL;
    const int nv = bench_kld_row_u16(n_vocab);
    if (o->kld_base_out) {
        kf = fopen(o->kld_base_out, "wb");
        if (!kf) cli_die("%s: %s", o->kld_base_out, strerror(errno));
        const int32_t hdr[3] = { n_ctx, n_vocab, n_chunk };
        write_all(kf, "_logits_", 1, 8, o->kld_base_out);
        write_all(kf, hdr, sizeof hdr[0], 3, o->kld_base_out);
        write_all(kf, tokens, sizeof *tokens, (size_t)n_chunk * (size_t)n_ctx, o->kld_base_out);
        rows = malloc((size_t)n_scored * (size_t)nv * sizeof *rows);
        if (!rows) cli_die("out of memory");
        fprintf(stderr, "%s: saving the base log-probabilities to %s\n", prog, o->kld_base_out);
    }

    fprintf(stderr, "%s: %d tokens; calculating perplexity over %d chunks, n_ctx=%d (scoring the last %d of each)\n",
            prog, n_tokens, n_chunk, n_ctx, n_scored);
    llmpi_context *ctx = make_context(m, o, n_ctx, true);
    int32_t *scratch = malloc((size_t)n_ctx * sizeof *scratch);
    if (!scratch) cli_die("out of memory");
    /* --imatrix-out: the same chunks llama-imatrix evaluates (all n_ctx tokens, BOS first), so the
     * statistics match its file for the same -f, -c and --chunks. */
    imatrix_collector *imat = NULL;
    if (o->imatrix_out) {
        imat = imatrix_collector_create(n_ctx, o->process_output);
        if (!imat || !imatrix_collector_add_dataset(imat, o->text_path)) cli_die("out of memory");
        llmpi_set_matmul_observer(ctx, imatrix_collector_observe, imat);
        fprintf(stderr, "%s: collecting the importance matrix into %s\n", prog, o->imatrix_out);
    }
    double nll = 0, nll2 = 0;
    long count = 0;
    for (int i = 0; i < n_chunk; i++) {
        const double t0 = llmpi_time_seconds();
        const int32_t *chunk = tokens + (size_t)i * (size_t)n_ctx;
        eval_chunk(ctx, chunk, n_ctx, first, add_bos, bos, scratch);
        if (imat) {
            char ierr[IMATRIX_ERR_MAX];
            if (imatrix_collector_error(imat)) cli_die("%s", imatrix_collector_error(imat));
            /* llama-imatrix's default --output-frequency 10: long runs leave usable checkpoints. */
            if ((i + 1) % 10 == 0 && i + 1 < n_chunk && !imatrix_collector_save(imat, o->imatrix_out, ierr, sizeof ierr))
                cli_die("%s", ierr);
        }
        for (int j = 0; j < n_scored; j++) {
            const float *logits = llmpi_get_logits(ctx, j);
            if (!logits) cli_die("internal error: logits of position %d unavailable", first + j);
            const int32_t next = chunk[first + j + 1];
            const double v = kf ? bench_kld_encode_row(logits, n_vocab, next, rows + (size_t)j * (size_t)nv)
                                : bench_nll(logits, n_vocab, next);
            nll += v;
            nll2 += v * v;
        }
        count += n_scored;
        if (kf) write_all(kf, rows, sizeof *rows, (size_t)n_scored * (size_t)nv, o->kld_base_out);
        if (i == 0) print_eta(llmpi_time_seconds() - t0, n_chunk);
        printf("[%d]%.4f,", i + 1, exp(nll / (double)count));
        fflush(stdout);
    }
    printf("\n");
    if (kf && fclose(kf) != 0) cli_die("%s: write failed", o->kld_base_out);

    const double mean = nll / (double)count;
    const double ppl = exp(mean);
    double var = nll2 / (double)count - mean * mean;
    if (imat) {
        char ierr[IMATRIX_ERR_MAX];
        if (!imatrix_collector_save(imat, o->imatrix_out, ierr, sizeof ierr)) cli_die("%s", ierr);
        fprintf(stderr, "%s: saved the importance matrix (%zu weights, %d chunks of %d tokens) to %s\n", prog,
                imatrix_collector_n_entries(imat), (int)imatrix_collector_chunk_count(imat), n_ctx, o->imatrix_out);
        imatrix_collector_free(imat);
    }
    if (!isfinite(ppl)) cli_die("perplexity is not finite (mean NLL %g)", mean);
    if (var > 0 && count > 1) printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, sqrt(var / (double)(count - 1)) * ppl);
    else printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, 0.0);
    llmpi_context_free(ctx);
    free(scratch);
    free(rows);
    free(tokens);
    return 0;
}

/* ---- KL divergence against a saved base ----------------------------------------------------- */
static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void read_exact(FILE *f, void *p, size_t size, size_t n, const char *path, const char *what) {
    if (fread(p, size, n, f) != n) cli_die("%s: truncated file: cannot read %s", path, what);
}

static int run_kld(llmpi_model *m, const options *o) {
    const char *path = o->kld_in;
    FILE *f = fopen(path, "rb");
    if (!f) cli_die("%s: %s", path, strerror(errno));
    char magic[8];
    int32_t hdr[3];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "_logits_", 8) != 0)
        cli_die("%s does not look like a file of base log-probabilities (no \"_logits_\" header)", path);
    read_exact(f, hdr, sizeof hdr[0], 3, path, "the header");
    const int n_ctx = hdr[0], n_vocab = hdr[1], n_chunk = hdr[2];
    if (n_ctx < 4 || n_ctx > (1 << 24) || n_chunk < 1 || n_chunk > (1 << 24))
        cli_die("%s: bad header (n_ctx %d, n_chunk %d)", path, n_ctx, n_chunk);
    if (n_vocab != llmpi_model_n_vocab(m))
        cli_die("%s: inconsistent vocabulary: the base model had %d tokens, %s has %d", path, n_vocab, o->model_path,
            llmpi_model_n_vocab(m));
    if (o->ctx_set && o->n_ctx != n_ctx)
        fprintf(stderr, "%s: note: using the base file's context of %d (not -c %d)\n", prog, n_ctx, o->n_ctx);
    const size_t n_tok = (size_t)n_chunk * (size_t)n_ctx;
    int32_t *tokens = malloc(n_tok * sizeof *tokens);
    if (!tokens) cli_die("out of memory");
    read_exact(f, tokens, sizeof *tokens, n_tok, path, "the tokens");
    for (size_t i = 0; i < n_tok; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab) cli_die("%s: token %d at %zu is outside the vocabulary", path, tokens[i], i);

    const int first = n_ctx / 2, n_scored = n_ctx - 1 - first, nv = bench_kld_row_u16(n_vocab);
    uint16_t *rows = malloc((size_t)n_scored * (size_t)nv * sizeof *rows);
    float *kld_values = malloc((size_t)n_chunk * (size_t)n_scored * sizeof *kld_values);
    float *p_diff_values = malloc((size_t)n_chunk * (size_t)n_scored * sizeof *p_diff_values);
    int32_t *scratch = malloc((size_t)n_ctx * sizeof *scratch);
    if (!rows || !kld_values || !p_diff_values || !scratch) cli_die("out of memory");
    const bool add_bos = model_adds_bos(m);
    const int32_t bos = llmpi_token_bos(m);
    llmpi_context *ctx = make_context(m, o, n_ctx, true);
    bench_kld_acc acc;
    memset(&acc, 0, sizeof acc);
    size_t k = 0;

    fprintf(stderr, "%s: %d chunks of %d tokens from %s\n", prog, n_chunk, n_ctx, path);
    printf("chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p\n");
    for (int i = 0; i < n_chunk; i++) {
        const double t0 = llmpi_time_seconds();
        read_exact(f, rows, sizeof *rows, (size_t)n_scored * (size_t)nv, path, "the log-probabilities");
        const int32_t *chunk = tokens + (size_t)i * (size_t)n_ctx;
        eval_chunk(ctx, chunk, n_ctx, first, add_bos, bos, scratch);
        for (int j = 0; j < n_scored; j++, k++) {
            const float *logits = llmpi_get_logits(ctx, j);
            if (!logits) cli_die("internal error: logits of position %d unavailable", first + j);
            double p_diff;
            kld_values[k] = (float)bench_kld_score_row(logits, n_vocab, rows + (size_t)j * (size_t)nv,
                                                       chunk[first + j + 1], &acc, &p_diff);
            p_diff_values[k] = (float)p_diff;
        }
        if (i == 0) print_eta(llmpi_time_seconds() - t0, n_chunk);
        double lp, lp_err, lb, lb_err, kl, kl_err, msd, msd_err;
        bench_mean_and_error(acc.sum_nll, acc.sum_nll2, acc.count, &lp, &lp_err);
        bench_mean_and_error(acc.sum_nll_base, acc.sum_nll_base2, acc.count, &lb, &lb_err);
        bench_mean_and_error(acc.sum_kld, acc.sum_kld2, acc.count, &kl, &kl_err);
        bench_mean_and_error(acc.sum_p_diff2, acc.sum_p_diff4, acc.count, &msd, &msd_err);
        const double cov = acc.count >= 10 ? (acc.sum_nll_nll_base / acc.count - lp * lb) / (double)(acc.count - 1) : 0;
        const double ratio_err = sqrt(fmax(0, lp_err * lp_err + lb_err * lb_err - 2 * cov));
        const double rms = sqrt(msd), rms_err = rms > 0 ? 0.5 / rms * msd_err : 0;
        const double top = (double)acc.n_same_top / (double)acc.count;
        const double top_err = acc.count > 1 ? sqrt(top * (1 - top) / (double)(acc.count - 1)) : 0;
        printf("%4d    %9.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%    %6.3f ± %6.3f %%\n",
               i + 1, exp(lp), exp(lp) * lp_err, lp - lb, ratio_err, kl, kl_err, 100 * rms, 100 * rms_err, 100 * top,
               100 * top_err);
        fflush(stdout);
    }
    fclose(f);
    llmpi_context_free(ctx);

    const size_t n = acc.count;
    qsort(kld_values, n, sizeof *kld_values, cmp_float);
    qsort(p_diff_values, n, sizeof *p_diff_values, cmp_float);
    double lp, lp_err, lb, lb_err;
    bench_mean_and_error(acc.sum_nll, acc.sum_nll2, n, &lp, &lp_err);
    bench_mean_and_error(acc.sum_nll_base, acc.sum_nll_base2, n, &lb, &lb_err);
    const double ppl = exp(lp), ppl_err = ppl * lp_err, ppl_base = exp(lb), ppl_base_err = ppl_base * lb_err;
    const double cov = n >= 10 ? (acc.sum_nll_nll_base / n - lp * lb) / (double)(n - 1) : 0;
    const double ratio_err = sqrt(fmax(0, lp_err * lp_err + lb_err * lb_err - 2 * cov));
    printf("\n");
    if (n < 100) printf("note: only %zu scored positions; the statistics below are rough\n\n", n);
    printf("====== Perplexity statistics ======\n");
    printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", ppl, ppl_err);
    printf("Mean PPL(base)                : %10.6f ± %10.6f\n", ppl_base, ppl_base_err);
    if (lp_err > 0 && lb_err > 0) printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100 * cov / (lp_err * lb_err));
    printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", lp - lb, ratio_err);
    printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", exp(lp - lb), exp(lp - lb) * ratio_err);
    const double ppl_diff_err = sqrt(fmax(0, ppl_err * ppl_err + ppl_base_err * ppl_base_err - 2 * ppl * ppl_base * cov));
    printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", ppl - ppl_base, ppl_diff_err);

    double kl, kl_err;
    bench_mean_and_error(acc.sum_kld, acc.sum_kld2, n, &kl, &kl_err);
    printf("\n====== KL divergence statistics ======\n");
    printf("Mean    KLD: %10.6f ± %10.6f\n", kl, kl_err);
    printf("Maximum KLD: %10.6f\n", (double)kld_values[n - 1]);
    static const double pct[] = { 0.999, 0.990, 0.950, 0.900 };
    static const char *const pct_name[] = { "99.9%", "99.0%", "95.0%", "90.0%" };
    for (int i = 0; i < 4; i++) printf("%s   KLD: %10.6f\n", pct_name[i], bench_percentile_sorted(kld_values, n, pct[i]));
    printf("Median  KLD: %10.6f\n", bench_percentile_sorted(kld_values, n, 0.5));
    static const double low_pct[] = { 0.100, 0.050, 0.010, 0.001 };
    static const char *const low_name[] = { "10.0%", " 5.0%", " 1.0%", " 0.1%" };
    for (int i = 0; i < 4; i++) printf("%s   KLD: %10.6f\n", low_name[i], bench_percentile_sorted(kld_values, n, low_pct[i]));
    printf("Minimum KLD: %10.6f\n", (double)kld_values[0]);

    double pd, pd_err, msd, msd_err;
    bench_mean_and_error(acc.sum_p_diff, acc.sum_p_diff2, n, &pd, &pd_err);
    bench_mean_and_error(acc.sum_p_diff2, acc.sum_p_diff4, n, &msd, &msd_err);
    printf("\n====== Token probability statistics ======\n");
    printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100 * pd, 100 * pd_err);
    printf("Maximum Δp: %6.3f%%\n", 100.0 * p_diff_values[n - 1]);
    static const double dp_pct[] = { 0.999, 0.990, 0.950, 0.900, 0.750, 0.5, 0.250, 0.100, 0.050, 0.010, 0.001 };
    static const char *const dp_name[] = { "99.9%  ", "99.0%  ", "95.0%  ", "90.0%  ", "75.0%  ", "Median ",
                                           "25.0%  ", "10.0%  ", " 5.0%  ", " 1.0%  ", " 0.1%  " };
    for (int i = 0; i < 11; i++) printf("%s Δp: %6.3f%%\n", dp_name[i], 100 * bench_percentile_sorted(p_diff_values, n, dp_pct[i]));
    printf("Minimum Δp: %6.3f%%\n", 100.0 * p_diff_values[0]);
    const double rms = sqrt(msd), rms_err = rms > 0 ? 0.5 / rms * msd_err : 0;
    printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100 * rms, 100 * rms_err);
    const double top = (double)acc.n_same_top / (double)n;
    printf("Same top p: %6.3f ± %5.3f %%\n", 100 * top, n > 1 ? 100 * sqrt(top * (1 - top) / (double)(n - 1)) : 0.0);

    free(tokens);
    free(rows);
    free(kld_values);
    free(p_diff_values);
    free(scratch);
    return 0;
}

/* ---- QA check -------------------------------------------------------------------------------- */
typedef struct {
    char *buf;
    size_t len, cap;
} text_buf;

static bool collect_text(int32_t token, const char *text, int len, void *user) {
    (void)token;
    text_buf *t = user;
    if (len <= 0) return true;
    if (t->len + (size_t)len + 1 > t->cap) {
        size_t cap = (t->cap ? t->cap * 2 : 256) + (size_t)len;
        char *nb = realloc(t->buf, cap);
        if (!nb) return false;
        t->buf = nb;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, text, (size_t)len);
    t->len += (size_t)len;
    t->buf[t->len] = 0;
    return true;
}

/* One line for the log: newlines shown as spaces. */
static void print_flat(const char *s, size_t max) {
    size_t i = 0;
    for (; s[i] && i < max; i++) putchar(s[i] == '\n' || s[i] == '\r' || s[i] == '\t' ? ' ' : s[i]);
    if (s[i]) fputs("...", stdout);
}

static int run_qa(llmpi_model *m, const options *o) {
    char *data = cli_read_text_file(o->qa_path, NULL);
    int n_ctx = o->ctx_set ? o->n_ctx : BENCH_PAPER_QA_N_CTX;
    const int train = llmpi_model_n_ctx_train(m);
    if (!o->ctx_set && train > 0 && train < n_ctx) n_ctx = train;
    llmpi_context *ctx = make_context(m, o, n_ctx, false);
    llmpi_sampler_params sp = llmpi_sampler_default_params();
    sp.temp = 0;   /* greedy */
    sp.repeat_penalty = 1.0f;
    int n_items = 0, n_skipped = 0, n_em = 0, n_contains = 0;
    double f1_sum = 0;
    int line_no = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        const char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (!*p) continue;
        bench_qa_item it;
        char perr[256];
        if (bench_qa_parse_line(p, &it, perr, sizeof perr) != 0) cli_die("%s:%d: %s", o->qa_path, line_no, perr);
        char *prompt = bench_qa_prompt(it.context, it.question);
        if (!prompt) cli_die("out of memory");
        const int cap = (int)strlen(prompt) + 16;
        int32_t *toks = malloc((size_t)cap * sizeof *toks);
        if (!toks) cli_die("out of memory");
        llmpi_error err;
        const int n = llmpi_tokenize(m, prompt, -1, true, false, toks, cap, &err);
        if (n < 0 || n > cap) cli_die("%s:%d: %s", o->qa_path, line_no, n < 0 ? err.msg : "tokenization overflow");
        if (n + o->n_predict > n_ctx) {
            fprintf(stderr, "%s: %s:%d: skipped: prompt of %d tokens + %d does not fit the context of %d\n", prog,
                    o->qa_path, line_no, n, o->n_predict, n_ctx);
            n_skipped++;
        } else {
            llmpi_sampler *smp = llmpi_sampler_create(&sp);
            if (!smp) cli_die("out of memory");
            text_buf out = { 0 };
            llmpi_kv_clear(ctx);
            fprintf(stderr, "%s: item %d (%d prompt tokens)\n", prog, n_items + n_skipped + 1, n);
            if (llmpi_generate(ctx, smp, toks, n, o->n_predict, false, collect_text, &out, NULL, &err) != LLMPI_OK)
                cli_die("%s", err.msg);
            llmpi_sampler_free(smp);
            const char *response = out.buf ? out.buf : "";
            char span[2048];
            bench_qa_answer_span(response, span, sizeof span);
            bool em = false, contains = false;
            double f1 = 0;
            for (int a = 0; a < it.n_answers; a++) {
                em |= bench_qa_exact_match(span, it.answers[a]);
                contains |= bench_qa_contains(response, it.answers[a]);
                const double f = bench_qa_f1(span, it.answers[a]);
                if (f > f1) f1 = f;
            }
            n_items++;
            n_em += em;
            n_contains += contains;
            f1_sum += f1;
            printf("[%d] EM %d  F1 %.3f  contains %d | Q: ", n_items, em, f1, contains);
            print_flat(it.question, 120);
            printf(" | gold: ");
            print_flat(it.answers[0], 80);
            printf(" | answer: ");
            print_flat(span, 160);
            printf("\n");
            fflush(stdout);
            free(out.buf);
        }
        free(toks);
        free(prompt);
        bench_qa_item_free(&it);
    }
    free(data);
    llmpi_context_free(ctx);
    if (n_items + n_skipped == 0) cli_die("%s: no QA items", o->qa_path);
    if (n_items == 0) cli_die("%s: every item was skipped (prompt too long for the context of %d)", o->qa_path, n_ctx);
    printf("QA: %d items (%d skipped), %d tokens each, greedy: exact match = %.2f %%, token F1 = %.2f %%, "
           "contains answer = %.2f %%\n",
           n_items, n_skipped, o->n_predict, 100.0 * n_em / n_items, 100.0 * f1_sum / n_items,
           100.0 * n_contains / n_items);
    return 0;
}

int main(int argc, char **argv) {
    cli_prog = prog;
    cli_usage = usage_text;
    options o = { .n_ctx = 512, .n_predict = BENCH_PAPER_QA_N_GEN, .use_mmap = true };
    bool kl_divergence_flag = false;
    const char *kl_base_llama = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (cli_usage_exit("option %s needs a value", a), ""))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage_text, stdout); return 0; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) o.model_path = NEXT();
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) o.text_path = NEXT();
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) { o.n_ctx = (int)cli_parse_long(a, NEXT(), 4, 1 << 24); o.ctx_set = true; }
        else if (!strcmp(a, "--chunks")) o.max_chunks = (int)cli_parse_long(a, NEXT(), 1, INT_MAX);
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) o.n_batch = (int)cli_parse_long(a, NEXT(), 1, 1 << 16);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) o.n_threads = (int)cli_parse_long(a, NEXT(), 1, 512);
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) o.n_predict = (int)cli_parse_long(a, NEXT(), 1, 1 << 20);
        else if (!strcmp(a, "--kld-base")) o.kld_base_out = NEXT();
        else if (!strcmp(a, "--kld")) o.kld_in = NEXT();
        else if (!strcmp(a, "--kl-divergence-base")) kl_base_llama = NEXT();
        else if (!strcmp(a, "--kl-divergence")) kl_divergence_flag = true;
        else if (!strcmp(a, "--qa")) o.qa_path = NEXT();
        else if (!strcmp(a, "--imatrix-out")) o.imatrix_out = NEXT();
        else if (!strcmp(a, "--process-output")) o.process_output = true;
        else if (!strcmp(a, "--mmap")) o.use_mmap = true;
        else if (!strcmp(a, "--no-mmap")) o.use_mmap = false;
        else if (!strcmp(a, "--kv-f32")) o.kv_f32 = true;
        else if (a[0] == '-' && a[1]) cli_usage_exit("unknown option '%s'", a);
        else if (!o.model_path) o.model_path = a;
        else cli_usage_exit("unexpected argument '%s'", a);
#undef NEXT
    }
    /* llama-perplexity's spelling: --kl-divergence-base FILE writes it, adding --kl-divergence reads it. */
    if (kl_base_llama) {
        if (kl_divergence_flag) o.kld_in = kl_base_llama;
        else o.kld_base_out = kl_base_llama;
    } else if (kl_divergence_flag) {
        cli_usage_exit("%s", "--kl-divergence needs --kl-divergence-base FILE");
    }
    if (!o.model_path) cli_usage_exit("%s", "no model given (use -m MODEL.gguf)");
    const int modes = (o.kld_in != NULL) + (o.qa_path != NULL);
    if (modes > 1) cli_usage_exit("%s", "--kld and --qa cannot be combined");
    if (o.kld_in && o.kld_base_out) cli_usage_exit("%s", "--kld (compare) and --kld-base (save) cannot be combined");
    if (o.qa_path && o.kld_base_out) cli_usage_exit("%s", "--qa and --kld-base cannot be combined");
    if (o.imatrix_out && modes) cli_usage_exit("%s", "--imatrix-out works with perplexity over -f only (not with --kld or --qa)");
    if (o.process_output && !o.imatrix_out) cli_usage_exit("%s", "--process-output needs --imatrix-out FILE");
    if (o.imatrix_out) {
        /* Fail now, not after hours of evaluation, if the file cannot be written (saving writes
         * FILE.tmp and renames it over FILE). */
        char probe[4096];
        snprintf(probe, sizeof probe, "%s.tmp", o.imatrix_out);
        FILE *pf = fopen(probe, "wb");
        if (!pf) cli_die("%s: cannot write the importance matrix: %s", o.imatrix_out, strerror(errno));
        fclose(pf);
        remove(probe);
    }
    if (!modes && !o.text_path) cli_usage_exit("%s", "no text given (use -f FILE)");
    if (modes && o.text_path)
        fprintf(stderr, "%s: note: -f %s is not used with %s\n", prog, o.text_path, o.kld_in ? "--kld" : "--qa");

    llmpi_model_params mp = llmpi_model_default_params();
    mp.use_mmap = o.use_mmap;
    llmpi_model *m;
    llmpi_error err;
    if (llmpi_model_load(o.model_path, &mp, &m, &err) != LLMPI_OK) cli_die("%s: %s", o.model_path, err.msg);
    if (!llmpi_model_has_tokenizer(m) && !o.kld_in) cli_die("%s: the model has no tokenizer", o.model_path);
    int rc = o.kld_in ? run_kld(m, &o) : o.qa_path ? run_qa(m, &o) : run_perplexity(m, &o);
    llmpi_model_free(m);
    return rc;
}
