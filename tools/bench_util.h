/* Helpers shared by llmpi-bench and llmpi-perplexity (and unit-tested by tests/test_bench.c):
 * statistics, output formatting (JSON/CSV escaping, the SVG chart), quantization labels,
 * per-model peak RSS, llama.cpp-compatible perplexity / KL-divergence math, and the SQuAD-style
 * answer metrics of the QA check. Every name starts with bench_ because this file is linked into
 * every tool and test binary. Nothing here prints to stdout/stderr unless handed a FILE. */
#ifndef LLMPI_BENCH_UTIL_H
#define LLMPI_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- statistics ----------------------------------------------------------------------------- */
double bench_mean(const double *v, int n);
/* Sample standard deviation (n-1 denominator, like llama-bench); 0 for n < 2. */
double bench_stddev(const double *v, int n);
/* llama.cpp's percentile on an ascending array: linear interpolation at fraction*(n-1). */
double bench_percentile_sorted(const float *sorted, size_t n, double fraction);

/* ---- energy columns --------------------------------------------------------------------------- */
/* The energy keys of `llmpi-run --stats-json` (tools/power.h power_metrics). NaN = unavailable
 * (printed "n/a" in tables, null in JSON, empty in CSV). Filled by the power hook in llmpi-bench;
 * until the sampler is wired every figure stays NaN and power_source is "none". */
typedef struct bench_energy {
    char   power_source[160];
    double energy_j, avg_w, static_w, dynamic_w, j_per_token, tpj, tpj_dynamic, wbl;
    double battery_wh, tokens_per_word, max_temp_c;
    bool   throttled, energy_partial;
} bench_energy;

void bench_energy_init(bench_energy *e);   /* all NaN, "none", W/BL parameters 5 Wh / 1.5 */
bool bench_energy_available(const bench_energy *e);

/* ---- text output helpers ---------------------------------------------------------------------- */
void bench_json_string(FILE *out, const char *s);          /* "..." with JSON escapes */
void bench_json_number(FILE *out, double v);               /* %.6g-ish, null for NaN/inf */
void bench_csv_string(FILE *out, const char *s);           /* always quoted, "" doubled */
void bench_csv_number(FILE *out, double v);                /* empty for NaN */
/* "1.12 MiB", "3.2 GiB" (llama-bench's size column). */
void bench_format_size(char *buf, size_t len, uint64_t bytes);
/* "0.29 M", "1.24 B" (llama-bench's params column). */
void bench_format_params(char *buf, size_t len, uint64_t n);
/* "292.8K", "1.2B": compact parameter count for model_type. */
void bench_format_params_short(char *buf, size_t len, uint64_t n);

/* ---- models ----------------------------------------------------------------------------------- */
/* Quantization label of a model file: a known llama.cpp ftype name inside the file's base name
 * (e.g. "bitnet-3M-Q4_K_M.gguf" -> "Q4_K_M", "x-f32.gguf" -> "F32"), else the weight type with
 * the most tensors in type_mix ("Q4_K:13 Q6_K:3 F32:5" -> "Q4_K"; only F32 -> "F32"). */
void bench_quant_label(const char *path, const char *type_mix, char *out, size_t len);
/* Base name of path without directory, ".gguf" and the quant label (and separators around it):
 * "models/Llama-3.2-1B_Q4_0.gguf" -> "Llama-3.2-1B". */
void bench_model_base_name(const char *path, const char *quant_label, char *out, size_t len);
/* The paper's column for a quant label: F32/F16/BF16 -> "FP", others unchanged. */
const char *bench_paper_column(const char *quant_label);

/* Per-model peak RSS on Linux: reset the kernel's high-water mark (/proc/self/clear_refs "5"),
 * then read VmHWM from /proc/self/status. reset returns false where unsupported; read returns 0
 * if unknown. */
bool     bench_peak_rss_reset(void);
uint64_t bench_peak_rss_read(void);

/* Seconds of sleep (nanosleep, restarts after signals). */
void bench_sleep(double seconds);

/* ---- SVG chart -------------------------------------------------------------------------------- */
/* One bar: value of `series` (e.g. the quant label) for `group` (e.g. the model) in `panel`
 * (e.g. "tg50 t/s"). NaN values are skipped. */
typedef struct bench_bar {
    const char *panel, *group, *series;
    double value, error;   /* error: ± bar (NaN/0 = none) */
} bench_bar;

/* Writes a self-contained SVG: one grouped bar chart per panel (panels in order of first
 * appearance), groups on the x axis, one colour per series with a legend, value labels on bars.
 * Each series' bars sit in <g class="series" data-series="NAME">. Returns 0, -1 on I/O error. */
int bench_write_svg(FILE *out, const char *title, const bench_bar *bars, int n_bars);

/* ---- perplexity and KL divergence (llama.cpp tools/perplexity semantics) ---------------------- */
/* -log softmax(logits)[tok], with the max subtracted and the exp sum in double. */
double bench_nll(const float *logits, int n_vocab, int32_t tok);

/* llama.cpp's "_logits_" base file: per scored position one row of nv = 2*((n_vocab+1)/2)+4 u16:
 * f32 scale, f32 min_log_prob, then n_vocab u16 codes of log-probabilities clamped to 16 nats
 * below the top (code 0 for anything lower). */
int    bench_kld_row_u16(int n_vocab);
/* Encodes one row (the layout above; host endian like llama.cpp) and returns its NLL of tok. */
double bench_kld_encode_row(const float *logits, int n_vocab, int32_t tok, uint16_t *row);

typedef struct bench_kld_acc {
    double sum_nll, sum_nll2, sum_nll_base, sum_nll_base2, sum_nll_nll_base;
    double sum_kld, sum_kld2, sum_p_diff, sum_p_diff2, sum_p_diff4;
    double max_p_diff;
    size_t n_same_top, count;
} bench_kld_acc;

/* Scores one position of the model under test against a base row: accumulates into acc and
 * returns the position's KL(base || model) (and its Δp = p(tok) - p_base(tok) in *p_diff). */
double bench_kld_score_row(const float *logits, int n_vocab, const uint16_t *base_row, int32_t tok,
                           bench_kld_acc *acc, double *p_diff);

/* mean and its standard error from running sums (llama.cpp: error 0 for count <= 10). */
void bench_mean_and_error(double sum, double sum2, size_t count, double *mean, double *error);

/* ---- QA metrics (SQuAD v1.1 evaluation rules) ------------------------------------------------- */
/* Normalizes an answer: lower case, ASCII punctuation removed, articles a/an/the removed,
 * whitespace collapsed to single spaces, trimmed. Writes at most len bytes (NUL included). */
void   bench_qa_normalize(const char *s, char *out, size_t len);
bool   bench_qa_exact_match(const char *prediction, const char *gold);
double bench_qa_f1(const char *prediction, const char *gold);   /* token F1 of normalized bags */
/* Whether the normalized gold occurs in the normalized text as whole words. */
bool   bench_qa_contains(const char *text, const char *gold);
/* The answer span of a generated response: leading whitespace skipped, cut at the first newline. */
void   bench_qa_answer_span(const char *response, char *out, size_t len);

/* One QA item parsed from a JSON line: {"context": "...", "question": "...", "answers": [...]}
 * (answers may be a string, an array of strings, or SQuAD's {"text": [...]}; other keys are
 * ignored). Strings are malloc'd. */
typedef struct bench_qa_item {
    char  *context, *question;
    char **answers;
    int    n_answers;
} bench_qa_item;

/* Parses one line. Returns 0, or -1 with a one-line reason in err. */
int  bench_qa_parse_line(const char *line, bench_qa_item *item, char *err, size_t errlen);
void bench_qa_item_free(bench_qa_item *item);
/* The paper's QA prompt (authors' script: llama-cli, 50 new tokens). malloc'd. */
char *bench_qa_prompt(const char *context, const char *question);

/* ---- the paper's throughput protocol (docs/paper.md, docs/bench.md) -------------------------- */
#define BENCH_PAPER_PROMPT \
    "What are the benefits of deploying AI models on edge devices? Provide a concise response."
#define BENCH_PAPER_N_GEN        50
#define BENCH_PAPER_N_CTX        4096
#define BENCH_PAPER_REPS         10
#define BENCH_PAPER_PAUSE_S      5.0
#define BENCH_PAPER_IDLE_S       180.0   /* 3-minute static power window */
#define BENCH_PAPER_QA_N_GEN     50
#define BENCH_PAPER_QA_N_CTX     8192

#endif
