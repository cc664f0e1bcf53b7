/* llmpi-bench and llmpi-perplexity: the helpers (statistics, labels, SVG, KLD math, QA metrics and
 * JSON lines), the fixed CSV/JSON schemas of llmpi-bench, the paper protocol's parameters, the
 * chart, perplexity of the real fixture (finite, deterministic for a thread count), KL divergence
 * of a model against itself (0, top-1 100%) and against its Q8_0 quantization, and the QA check.
 * Tiny settings throughout (stories260K, -p 8 -n 4 -r 2, -c 64) so it stays fast under qemu/ASan. */
#include "bench_util.h"
#include "harness.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The documented column order of llmpi-bench -o csv (docs/bench.md); JSON records have the same
 * keys plus samples_ns and samples_ts. */
static const char *const bench_columns[] = {
    "model_filename", "model_type", "model_size", "model_n_params", "type_mix", "quant", "backends", "n_threads",
    "n_batch", "n_ctx", "use_mmap", "test", "n_prompt", "n_gen", "n_reps", "test_time", "avg_ns", "stddev_ns",
    "avg_ts", "stddev_ts", "prompt_tps", "load_seconds", "peak_rss_bytes", "power_source", "energy_j", "avg_w",
    "static_w", "dynamic_w", "j_per_token", "tpj", "tpj_dynamic", "wbl", "battery_wh", "tokens_per_word",
    "max_temp_c", "throttled", "energy_partial",
};
#define N_BENCH_COLUMNS ((int)(sizeof bench_columns / sizeof bench_columns[0]))

static char *run_tool(const char *tool, const char *args, int *status) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s", t_tool(tool), args);
    char *out = NULL;
    *status = t_run(cmd, &out);
    return out ? out : calloc(1, 1);
}

/* Same, stdout only (progress on stderr discarded): for output that must parse as a whole. */
static char *run_tool_stdout(const char *tool, const char *args, int *status) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "{ %s %s 2>/dev/null; }", t_tool(tool), args);
    char *out = NULL;
    *status = t_run(cmd, &out);
    return out ? out : calloc(1, 1);
}

/* A whole file as a NUL-terminated string (t_read_file's buffer is not terminated). */
static char *read_text(const char *path) {
    size_t len;
    char *raw = t_read_file(path, &len);
    if (!raw) return NULL;
    char *s = malloc(len + 1);
    if (s) { memcpy(s, raw, len); s[len] = 0; }
    free(raw);
    return s;
}

static const char *stories(void) { return t_shared("fixtures/real/stories260K.gguf"); }

/* ---- a tiny CSV reader (RFC 4180 quoting) --------------------------------------------------- */
#define MAX_FIELDS 64
#define MAX_ROWS 64
typedef struct {
    int n_rows;
    int n_fields[MAX_ROWS];
    char *field[MAX_ROWS][MAX_FIELDS];
} csv_doc;

/* Parses the lines of text that look like CSV (starting at the header line that begins with
 * `header_start`); returns false on malformed quoting. */
static bool csv_parse(const char *text, const char *header_start, csv_doc *d) {
    memset(d, 0, sizeof *d);
    const char *p = strstr(text, header_start);
    if (!p) return false;
    while (*p && d->n_rows < MAX_ROWS) {
        int nf = 0;
        for (;;) {
            char buf[1024];
            size_t bl = 0;
            if (*p == '"') {
                p++;
                for (;;) {
                    if (!*p) return false;
                    if (*p == '"' && p[1] == '"') { if (bl + 1 < sizeof buf) buf[bl++] = '"'; p += 2; continue; }
                    if (*p == '"') { p++; break; }
                    if (bl + 1 < sizeof buf) buf[bl++] = *p;
                    p++;
                }
            } else {
                while (*p && *p != ',' && *p != '\n') { if (bl + 1 < sizeof buf) buf[bl++] = *p; p++; }
            }
            buf[bl] = 0;
            if (nf < MAX_FIELDS) d->field[d->n_rows][nf++] = strdup(buf);
            if (*p == ',') { p++; continue; }
            if (*p == '\n' || !*p) break;
            return false;   /* garbage after a quoted field */
        }
        d->n_fields[d->n_rows++] = nf;
        if (*p == '\n') p++;
        /* Stop at the first line that is not a CSV row of ours (stderr lines start with the tool name). */
        if (!*p || strncmp(p, "llmpi-", 6) == 0) break;
    }
    return true;
}

static void csv_free(csv_doc *d) {
    for (int r = 0; r < d->n_rows; r++)
        for (int f = 0; f < d->n_fields[r]; f++) free(d->field[r][f]);
}

/* ---- a tiny validating JSON reader ----------------------------------------------------------- */
#define MAX_KEYS 64
#define MAX_RECORDS 32
typedef struct {
    int n_records;
    int n_keys[MAX_RECORDS];
    char key[MAX_RECORDS][MAX_KEYS][64];
    char value[MAX_RECORDS][MAX_KEYS][512];   /* raw JSON text of the value */
} json_doc;

static void jws(const char **p) { while (**p == ' ' || **p == '\n' || **p == '\t' || **p == '\r') (*p)++; }

static bool jvalue(const char **p, json_doc *d, int depth);

static bool jstr(const char **p, char *out, size_t len) {
    if (**p != '"') return false;
    (*p)++;
    size_t o = 0;
    while (**p && **p != '"') {
        if ((unsigned char)**p < 0x20) return false;
        if (**p == '\\') {
            (*p)++;
            if (!strchr("\"\\/bfnrtu", **p)) return false;
            if (**p == 'u') {
                for (int i = 1; i <= 4; i++) if (!isxdigit((unsigned char)(*p)[i])) return false;
                *p += 4;
            }
        }
        if (out && o + 1 < len) out[o++] = **p;
        (*p)++;
    }
    if (**p != '"') return false;
    (*p)++;
    if (out) out[o] = 0;
    return true;
}

static bool jvalue(const char **p, json_doc *d, int depth) {
    jws(p);
    if (depth > 16) return false;
    if (**p == '"') return jstr(p, NULL, 0);
    if (**p == '[') {
        (*p)++;
        jws(p);
        if (**p == ']') { (*p)++; return true; }
        for (;;) {
            if (!jvalue(p, d, depth + 1)) return false;
            jws(p);
            if (**p == ',') { (*p)++; continue; }
            if (**p == ']') { (*p)++; return true; }
            return false;
        }
    }
    if (**p == '{') {
        /* Records are the objects directly inside the top-level array. */
        const bool record = depth == 1 && d && d->n_records < MAX_RECORDS;
        const int r = record ? d->n_records++ : -1;
        (*p)++;
        jws(p);
        if (**p == '}') { (*p)++; return true; }
        for (;;) {
            char key[64];
            jws(p);
            if (!jstr(p, key, sizeof key)) return false;
            jws(p);
            if (**p != ':') return false;
            (*p)++;
            jws(p);
            const char *v0 = *p;
            if (!jvalue(p, d, depth + 1)) return false;
            if (record && d->n_keys[r] < MAX_KEYS) {
                int k = d->n_keys[r]++;
                snprintf(d->key[r][k], sizeof d->key[r][k], "%s", key);
                size_t vl = (size_t)(*p - v0) < sizeof d->value[r][k] - 1 ? (size_t)(*p - v0) : sizeof d->value[r][k] - 1;
                memcpy(d->value[r][k], v0, vl);
                d->value[r][k][vl] = 0;
            }
            jws(p);
            if (**p == ',') { (*p)++; continue; }
            if (**p == '}') { (*p)++; return true; }
            return false;
        }
    }
    if (!strncmp(*p, "true", 4)) { *p += 4; return true; }
    if (!strncmp(*p, "false", 5)) { *p += 5; return true; }
    if (!strncmp(*p, "null", 4)) { *p += 4; return true; }
    char *end;
    strtod(*p, &end);
    if (end == *p) return false;
    *p = end;
    return true;
}

static const char *jget(const json_doc *d, int r, const char *key) {
    for (int k = 0; k < d->n_keys[r]; k++)
        if (!strcmp(d->key[r][k], key)) return d->value[r][k];
    return NULL;
}

/* ---- a tiny XML well-formedness check (enough for our SVG) ---------------------------------- */
static bool xml_well_formed(const char *s, char *why, size_t whylen) {
    char stack[64][64];
    int depth = 0, roots = 0;
    const char *p = s;
    if (!strncmp(p, "<?xml", 5)) {
        p = strstr(p, "?>");
        if (!p) { snprintf(why, whylen, "unterminated XML declaration"); return false; }
        p += 2;
    }
    while (*p) {
        if (*p != '<') {
            if (*p == '&') {
                const char *semi = strchr(p, ';');
                if (!semi || semi - p > 6) { snprintf(why, whylen, "bare '&'"); return false; }
            }
            if (depth == 0 && !isspace((unsigned char)*p)) { snprintf(why, whylen, "text outside the root"); return false; }
            p++;
            continue;
        }
        const bool closing = p[1] == '/';
        const char *name = p + (closing ? 2 : 1);
        size_t nl = 0;
        while (name[nl] && (isalnum((unsigned char)name[nl]) || name[nl] == '-' || name[nl] == ':')) nl++;
        if (nl == 0 || nl >= 64) { snprintf(why, whylen, "bad tag name near '%.20s'", p); return false; }
        /* Attributes: name="value" pairs with no '<' inside values. */
        const char *q = name + nl;
        for (;;) {
            while (isspace((unsigned char)*q)) q++;
            if (*q == '>' || (*q == '/' && q[1] == '>')) break;
            if (closing) { snprintf(why, whylen, "attributes on a closing tag"); return false; }
            const char *an = q;
            while (isalnum((unsigned char)*q) || *q == '-' || *q == ':' || *q == '_') q++;
            if (q == an || *q != '=' || (q[1] != '"' && q[1] != '\'')) { snprintf(why, whylen, "bad attribute near '%.30s'", an); return false; }
            const char quote = q[1];
            q += 2;
            while (*q && *q != quote) { if (*q == '<') { snprintf(why, whylen, "'<' in an attribute"); return false; } q++; }
            if (!*q) { snprintf(why, whylen, "unterminated attribute"); return false; }
            q++;
        }
        const bool self_closing = *q == '/';
        p = q + (self_closing ? 2 : 1);
        if (closing) {
            if (depth == 0 || strncmp(stack[depth - 1], name, nl) || stack[depth - 1][nl]) {
                snprintf(why, whylen, "mismatched </%.*s>", (int)nl, name);
                return false;
            }
            depth--;
        } else {
            if (depth == 0) roots++;
            if (!self_closing) {
                if (depth == 64) { snprintf(why, whylen, "too deep"); return false; }
                memcpy(stack[depth], name, nl);
                stack[depth][nl] = 0;
                depth++;
            }
        }
    }
    if (depth != 0) { snprintf(why, whylen, "%d unclosed elements (innermost <%s>)", depth, stack[depth - 1]); return false; }
    if (roots != 1) { snprintf(why, whylen, "%d root elements", roots); return false; }
    return true;
}

/* ---- helper unit tests ---------------------------------------------------------------------- */
static void test_stats(void) {
    t_begin("mean, sample stddev, percentiles");
    const double v[] = { 2, 4, 4, 4, 5, 5, 7, 9 };
    CHECK(fabs(bench_mean(v, 8) - 5) < 1e-12, "mean %g", bench_mean(v, 8));
    CHECK(fabs(bench_stddev(v, 8) - sqrt(32.0 / 7)) < 1e-12, "stddev %g", bench_stddev(v, 8));
    CHECK(bench_stddev(v, 1) == 0, "stddev of one value");
    const float s[] = { 0, 1, 2, 3, 4 };
    CHECK(fabs(bench_percentile_sorted(s, 5, 0.5) - 2) < 1e-9, "median");
    CHECK(fabs(bench_percentile_sorted(s, 5, 0.9) - 3.6) < 1e-6, "90%% %g", bench_percentile_sorted(s, 5, 0.9));
    CHECK(bench_percentile_sorted(s, 5, 1.0) == 4 && bench_percentile_sorted(s, 5, 0) == 0, "ends");
    t_end();
}

static void test_labels(void) {
    t_begin("quant labels and model base names");
    const struct { const char *path, *mix, *quant, *base; } cases[] = {
        { "../models/Llama-3.2-1B_Q4_0.gguf", "", "Q4_0", "Llama-3.2-1B" },
        { "bitnet-3M-Q4_K_M.gguf", "Q4_K:48 Q6_K:9 F32:89", "Q4_K_M", "bitnet-3M" },
        { "/x/bitnet-3M-f32.gguf", "F32:146", "F32", "bitnet-3M" },
        { "stories260K.gguf", "F32:48", "F32", "stories260K" },
        { "mystery.gguf", "Q4_K:13 Q6_K:3 F32:5", "Q4_K", "mystery" },
        { "gemma2-BF16.gguf", "BF16:20 F32:5", "BF16", "gemma2" },
        { "ggml-model-i2_s.gguf", "", "I2_S", "ggml-model" },
        { "Q8_0-phi3.gguf", "", "Q8_0", "phi3" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char q[32], b[256];
        bench_quant_label(cases[i].path, cases[i].mix, q, sizeof q);
        bench_model_base_name(cases[i].path, q, b, sizeof b);
        CHECK(!strcmp(q, cases[i].quant), "%s: quant %s, want %s", cases[i].path, q, cases[i].quant);
        CHECK(!strcmp(b, cases[i].base), "%s: base %s, want %s", cases[i].path, b, cases[i].base);
    }
    CHECK(!strcmp(bench_paper_column("F16"), "FP") && !strcmp(bench_paper_column("Q2_K"), "Q2_K"), "paper columns");
    char buf[32];
    bench_format_size(buf, sizeof buf, 1171200);
    CHECK(!strcmp(buf, "1.12 MiB"), "size %s", buf);
    bench_format_params(buf, sizeof buf, 292800);
    CHECK(!strcmp(buf, "0.29 M"), "params %s", buf);
    t_end();
}

static void test_qa_metrics(void) {
    t_begin("QA normalization, exact match, F1, answer span");
    char n[256];
    bench_qa_normalize("  The Quick, brown fox!  ", n, sizeof n);
    CHECK(!strcmp(n, "quick brown fox"), "normalize: '%s'", n);
    bench_qa_normalize("An apple a day", n, sizeof n);
    CHECK(!strcmp(n, "apple day"), "articles: '%s'", n);
    CHECK(bench_qa_exact_match("The tortoise.", "tortoise"), "EM ignores articles and punctuation");
    CHECK(!bench_qa_exact_match("the hare", "tortoise"), "EM mismatch");
    CHECK(fabs(bench_qa_f1("in the garage next to the car", "the garage") - 2.0 * (1.0 / 5) * 1 / (1.0 / 5 + 1)) < 1e-9,
          "F1 %g", bench_qa_f1("in the garage next to the car", "the garage"));
    CHECK(bench_qa_f1("red red", "red") > 0.66 && bench_qa_f1("red red", "red") < 0.67, "F1 counts multiplicity");
    CHECK(bench_qa_f1("", "red") == 0 && bench_qa_f1("blue", "red") == 0, "F1 zero cases");
    CHECK(bench_qa_contains("It was red, like a cherry.", "red") && !bench_qa_contains("It was reddish.", "red"),
          "contains is whole-word");
    char span[64];
    bench_qa_answer_span("  Paris.\nQuestion: next", span, sizeof span);
    CHECK(!strcmp(span, "Paris."), "span '%s'", span);
    t_end();

    t_begin("QA JSON lines");
    bench_qa_item it;
    char err[256];
    int rc = bench_qa_parse_line("{\"id\": 3, \"context\": \"a \\\"b\\\"\\n\\u00e9\\ud83d\\ude00\", \"question\": \"q?\","
                                 " \"answers\": [\"x\", \"y\"], \"extra\": {\"k\": [1, 2.5e3, true, null]}}",
                                 &it, err, sizeof err);
    CHECK(rc == 0, "parse: %s", err);
    if (rc == 0) {
        CHECK(!strcmp(it.context, "a \"b\"\n\xc3\xa9\xf0\x9f\x98\x80"), "escapes decoded: '%s'", it.context);
        CHECK(it.n_answers == 2 && !strcmp(it.answers[1], "y"), "answers");
        bench_qa_item_free(&it);
    }
    rc = bench_qa_parse_line("{\"context\": \"c\", \"question\": \"q\", \"answers\": {\"text\": [\"t1\"], \"answer_start\": [4]}}",
                             &it, err, sizeof err);
    CHECK(rc == 0 && it.n_answers == 1 && !strcmp(it.answers[0], "t1"), "SQuAD answers object: %s", err);
    if (rc == 0) bench_qa_item_free(&it);
    CHECK(bench_qa_parse_line("{\"context\": \"c\", \"question\": \"q\"}", &it, err, sizeof err) != 0 &&
              strstr(err, "answers"), "missing answers: %s", err);
    CHECK(bench_qa_parse_line("{\"context\": \"c\", \"question\": \"q\", \"answers\": [\"a\"]", &it, err, sizeof err) != 0,
          "unterminated object accepted");
    CHECK(bench_qa_parse_line("[1]", &it, err, sizeof err) != 0, "non-object accepted");
    char *prompt = bench_qa_prompt("CTX", "Q?");
    CHECK(prompt && strstr(prompt, "Based on the following context, provide a detailed and specific answer.") == prompt &&
              strstr(prompt, "\n\nContext: CTX\n\nQuestion: Q?\n\nAnswer:"), "paper prompt: %s", prompt ? prompt : "(null)");
    free(prompt);
    t_end();
}

static void test_kld_math(void) {
    t_begin("KLD row encoding: self 0, known divergence");
    enum { V = 37 };
    float a[V], b[V];
    uint64_t rng = 7;
    for (int i = 0; i < V; i++) { a[i] = 3 * t_rand_normal(&rng); b[i] = a[i] + 0.5f * t_rand_normal(&rng); }
    a[5] = -40;  /* far below the top: clamped to the 16-nat floor */
    uint16_t row[2 * ((V + 1) / 2) + 4];
    CHECK(bench_kld_row_u16(V) == 2 * ((V + 1) / 2) + 4, "row size");
    const double nll = bench_kld_encode_row(a, V, 3, row);
    CHECK(fabs(nll - bench_nll(a, V, 3)) < 1e-5, "encoded NLL %g vs %g", nll, bench_nll(a, V, 3));
    bench_kld_acc acc;
    memset(&acc, 0, sizeof acc);
    double pd;
    const double self = bench_kld_score_row(a, V, row, 3, &acc, &pd);
    /* Not exactly 0: the base row stores log-probabilities in 16-bit steps of <= 16/65535 nats. */
    CHECK(fabs(self) < 2e-4, "self KLD %g", self);
    CHECK(acc.n_same_top == 1 && fabs(pd) < 1e-4, "self top-1 %zu, dp %g", acc.n_same_top, pd);
    /* Exact KL(a || b) in double, straight from the definition. */
    double za = 0, zb = 0, kl = 0;
    for (int i = 0; i < V; i++) { za += exp((double)a[i]); zb += exp((double)b[i]); }
    for (int i = 0; i < V; i++) {
        const double la = a[i] - log(za), lb = b[i] - log(zb);
        if (la > -16) kl += exp(la) * (la - lb);
    }
    const double got = bench_kld_score_row(b, V, row, 3, &acc, &pd);
    CHECK(kl > 0.01 && fabs(got - kl) < 1e-3 * kl + 1e-5, "KLD %g, exact %g", got, kl);
    CHECK(acc.count == 2, "count");
    t_end();
}

static void test_svg(void) {
    t_begin("SVG chart: well-formed, every series present");
    bench_bar bars[] = {
        { "tg128: tokens/s", "Llama-3.2-1B", "Q4_0", 11.7, 0.2 },
        { "tg128: tokens/s", "Llama-3.2-1B", "Q8_0", 7.4, 0.1 },
        { "tg128: tokens/s", "gemma<2>&co", "Q4_0", 5.6, NAN },
        { "tg128: tokens/s", "gemma<2>&co", "F16 \"fp\"", 1.9, 0 },
        { "tg128: tokens per joule", "Llama-3.2-1B", "Q4_0", 4.2, NAN },
    };
    const char *path = "bench_chart.svg";
    char full[1024];
    snprintf(full, sizeof full, "%s/%s", t_tmpdir(), path);
    FILE *f = fopen(full, "w");
    CHECK(f != NULL, "cannot create %s", full);
    if (f) {
        CHECK(bench_write_svg(f, "title <&>", bars, 5) == 0, "write failed");
        fclose(f);
        char *svg = read_text(full);
        if (svg) {
            char why[128] = "";
            CHECK(xml_well_formed(svg, why, sizeof why), "not well-formed: %s", why);
            CHECK(strstr(svg, "data-series=\"Q4_0\"") && strstr(svg, "data-series=\"Q8_0\"") &&
                      strstr(svg, "data-series=\"F16 &quot;fp&quot;\""), "series missing");
            CHECK(strstr(svg, "gemma&lt;2&gt;&amp;co") != NULL, "group label not escaped");
            CHECK(strstr(svg, "data-panel=\"tg128: tokens per joule\"") != NULL, "TPJ panel missing");
            free(svg);
        }
    }
    t_end();
}

/* ---- llmpi-bench ------------------------------------------------------------------------------ */
static void test_bench_csv(void) {
    t_begin("llmpi-bench -o csv: fixed schema");
    char args[4096];
    snprintf(args, sizeof args, "-m '%s' -p 8 -n 4 -r 2 -t 1 -o csv", stories());
    int st;
    char *out = run_tool("llmpi-bench", args, &st);
    CHECK(st == 0, "exit %d: %.500s", st, out);
    csv_doc d;
    CHECK(csv_parse(out, "model_filename,", &d), "CSV does not parse: %.300s", out);
    CHECK(d.n_rows == 3, "want header + 2 rows, got %d rows", d.n_rows);
    if (d.n_rows >= 1) {
        CHECK(d.n_fields[0] == N_BENCH_COLUMNS, "header has %d columns, want %d", d.n_fields[0], N_BENCH_COLUMNS);
        for (int c = 0; c < N_BENCH_COLUMNS && c < d.n_fields[0]; c++)
            CHECK(!strcmp(d.field[0][c], bench_columns[c]), "column %d is %s, want %s", c, d.field[0][c], bench_columns[c]);
    }
    for (int r = 1; r < d.n_rows; r++) {
        CHECK(d.n_fields[r] == N_BENCH_COLUMNS, "row %d has %d fields", r, d.n_fields[r]);
        if (d.n_fields[r] != N_BENCH_COLUMNS) continue;
        const char *test = d.field[r][11];
        CHECK(!strcmp(test, r == 1 ? "pp8" : "tg4"), "row %d test %s", r, test);
        CHECK(atoi(d.field[r][12]) == (r == 1 ? 8 : 0) && atoi(d.field[r][13]) == (r == 1 ? 0 : 4), "n_prompt/n_gen");
        const double ts = atof(d.field[r][18]);
        CHECK(isfinite(ts) && ts > 0, "avg_ts %s", d.field[r][18]);
        CHECK(!strcmp(d.field[r][7], "1") && !strcmp(d.field[r][14], "2"), "threads/reps");
        CHECK(strstr(d.field[r][0], "stories260K.gguf") != NULL, "model_filename %s", d.field[r][0]);
        CHECK(!strcmp(d.field[r][5], "F32") && atof(d.field[r][2]) > 1e6, "quant %s size %s", d.field[r][5], d.field[r][2]);
        CHECK(!strcmp(d.field[r][23], "none") && d.field[r][24][0] == 0, "energy columns should be empty without power");
    }
    csv_free(&d);
    free(out);
    t_end();
}

static void test_bench_json_md_plot(void) {
    t_begin("llmpi-bench -o json: llama-bench keys + energy keys, two models, --plot");
    char svg[1024], args[4096];
    snprintf(svg, sizeof svg, "%s/bench.svg", t_tmpdir());
    snprintf(args, sizeof args, "-m '%s' -m '%s' -p 8 -n 4 -r 2 -t 1 -o json --plot '%s'", stories(),
             t_shared("fixtures/real/bitnet-3M-Q8_0.gguf"), svg);
    int st;
    char *out = run_tool_stdout("llmpi-bench", args, &st);
    CHECK(st == 0, "exit %d: %.500s", st, out);
    json_doc *d = calloc(1, sizeof *d);
    const char *p = strchr(out, '[');
    bool ok = p && jvalue(&p, d, 0);
    if (ok) { jws(&p); ok = *p == 0; }
    CHECK(ok, "JSON does not parse: %.300s", out);
    CHECK(d->n_records == 4, "want 4 records (2 models x pp, tg), got %d", d->n_records);
    static const char *const required[] = { "model_filename", "model_type", "model_size", "model_n_params", "n_threads",
                                            "n_prompt", "n_gen", "avg_ts", "stddev_ts", "samples_ts", "power_source",
                                            "energy_j", "avg_w", "static_w", "dynamic_w", "j_per_token", "tpj",
                                            "tpj_dynamic", "wbl", "battery_wh", "tokens_per_word", "max_temp_c",
                                            "throttled" };
    for (int r = 0; r < d->n_records; r++) {
        for (size_t k = 0; k < sizeof required / sizeof required[0]; k++)
            CHECK(jget(d, r, required[k]) != NULL, "record %d lacks %s", r, required[k]);
        CHECK(d->n_keys[r] == N_BENCH_COLUMNS + 2, "record %d has %d keys, want %d", r, d->n_keys[r], N_BENCH_COLUMNS + 2);
        const char *ts = jget(d, r, "avg_ts"), *tpj = jget(d, r, "tpj");
        CHECK(ts && atof(ts) > 0, "avg_ts %s", ts ? ts : "-");
        CHECK(tpj && !strcmp(tpj, "null"), "tpj should be null without a power source: %s", tpj ? tpj : "-");
    }
    if (d->n_records == 4) {
        CHECK(strstr(jget(d, 2, "model_filename"), "bitnet-3M-Q8_0") && strstr(jget(d, 2, "model_type"), "Q8_0"),
              "second model: %s", jget(d, 2, "model_type"));
    }
    free(d);
    free(out);
    char *s = read_text(svg);
    if (s) {
        char why[128] = "";
        CHECK(xml_well_formed(s, why, sizeof why), "plot not well-formed: %s", why);
        CHECK(strstr(s, "data-series=\"F32\"") && strstr(s, "data-series=\"Q8_0\""), "plot lacks a series");
        CHECK(strstr(s, "pp8: tokens/s") && strstr(s, "tg4: tokens/s"), "plot lacks a panel");
        free(s);
    }
    t_end();

    t_begin("llmpi-bench markdown table");
    snprintf(args, sizeof args, "-m '%s' -p 8 -n 4 -r 2 -t 1,2 --no-mmap", stories());
    out = run_tool_stdout("llmpi-bench", args, &st);
    CHECK(st == 0, "exit %d: %.300s", st, out);
    CHECK(strstr(out, "| model ") && strstr(out, " size |") && strstr(out, " params |") && strstr(out, " threads |") &&
              strstr(out, " test |") && strstr(out, " t/s |") && strstr(out, " mmap |"), "header: %.300s", out);
    int rows = 0;
    for (const char *q = out; (q = strstr(q, "| stories260K ")); q++) rows++;
    CHECK(rows == 4, "want 4 rows (2 threads x 2 tests), got %d: %.600s", rows, out);
    CHECK(strstr(out, " pp8 |") && strstr(out, " tg4 |") && strstr(out, " ± "), "tests/t/s: %.400s", out);
    CHECK(strstr(out, " W |") == NULL, "energy columns shown without a power source");
    free(out);
    t_end();
}

static void test_bench_protocol(void) {
    t_begin("llmpi-bench --protocol llmpi: the paper's parameters");
    char args[4096];
    snprintf(args, sizeof args, "-m '%s' --protocol llmpi --dry-run", stories());
    int st;
    char *out = run_tool("llmpi-bench", args, &st);
    CHECK(st == 0, "exit %d: %s", st, out);
    CHECK(strstr(out, "prompt: \"What are the benefits of deploying AI models on edge devices? Provide a concise response.\"") != NULL,
          "prompt: %s", out);
    CHECK(strstr(out, "n_gen: 50\n") && strstr(out, "n_ctx: 4096\n") && strstr(out, "repetitions: 10\n") &&
              strstr(out, "pause_seconds: 5\n") && strstr(out, "idle_seconds: 180"), "parameters: %s", out);
    CHECK(strstr(out, "temp 0.8, top_k 40, top_p 0.95, min_p 0.05") != NULL, "sampler: %s", out);
    free(out);
    t_end();

    t_begin("llmpi-bench --protocol llmpi run (1 run, no pause) and the paper's table");
    snprintf(args, sizeof args, "-m '%s' --protocol llmpi -r 1 --pause-seconds 0 -t 1", stories());
    out = run_tool_stdout("llmpi-bench", args, &st);
    CHECK(st == 0, "exit %d: %.500s", st, out);
    CHECK(strstr(out, " llmpi-tg50 |") != NULL, "no llmpi-tg50 row: %.500s", out);
    const char *tbl = strstr(out, "| Model | FP | Q8_0 | Q6_K | Q4_0 | Q2_K |");
    CHECK(tbl != NULL, "no paper-layout table: %.800s", out);
    if (tbl) {
        const char *row = strstr(tbl, "| stories260K | ");
        double tps = row ? atof(row + strlen("| stories260K | ")) : 0;
        CHECK(row && tps > 0 && strstr(row, " / n/a / n/a |"), "row: %.200s", row ? row : tbl);
    }
    free(out);
    snprintf(args, sizeof args, "-m '%s' --protocol llmpi -r 1 --pause-seconds 0 -t 1 -o json", stories());
    out = run_tool_stdout("llmpi-bench", args, &st);
    json_doc *d = calloc(1, sizeof *d);
    const char *p = strchr(out, '[');
    CHECK(st == 0 && p && jvalue(&p, d, 0) && d->n_records == 1, "exit %d, json: %.300s", st, out);
    if (d->n_records == 1) {
        CHECK(!strcmp(jget(d, 0, "n_gen"), "50") && !strcmp(jget(d, 0, "n_ctx"), "4096"), "n_gen %s n_ctx %s",
              jget(d, 0, "n_gen"), jget(d, 0, "n_ctx"));
        CHECK(atoi(jget(d, 0, "n_prompt")) > 10 && atof(jget(d, 0, "prompt_tps")) > 0, "prompt %s, %s t/s",
              jget(d, 0, "n_prompt"), jget(d, 0, "prompt_tps"));
    }
    free(d);
    free(out);
    t_end();

    t_begin("llmpi-bench errors");
    out = run_tool("llmpi-bench", "--kernels", &st);
    CHECK(st == 1 && strstr(out, "llmpi-bench: error: ") && strstr(out, "not supported"), "--kernels: %d %s", st, out);
    free(out);
    snprintf(args, sizeof args, "-m '%s' -o xml", stories());
    out = run_tool("llmpi-bench", args, &st);
    CHECK(st == 2 && strstr(out, "unknown output format"), "bad format: %d %s", st, out);
    free(out);
    out = run_tool("llmpi-bench", "-m /nonexistent/model.gguf -p 8 -n 0 -r 1", &st);
    CHECK(st == 1 && strstr(out, "llmpi-bench: error: /nonexistent/model.gguf"), "missing model: %d %s", st, out);
    free(out);
    t_end();
}

/* ---- llmpi-perplexity ---------------------------------------------------------------------- */
static double parse_final_ppl(const char *out, double *err) {
    const char *f = strstr(out, "Final estimate: PPL = ");
    if (!f) return NAN;
    char *end;
    double v = strtod(f + strlen("Final estimate: PPL = "), &end);
    if (err) *err = strncmp(end, " +/- ", 5) ? NAN : atof(end + 5);
    return v;
}

static char *final_line(const char *out) {
    const char *f = strstr(out, "Final estimate:");
    if (!f) return strdup("");
    const char *e = strchr(f, '\n');
    return strndup(f, e ? (size_t)(e - f) : strlen(f));
}

static void test_perplexity(void) {
    t_begin("llmpi-perplexity: finite, deterministic for a thread count");
    char args[4096];
    snprintf(args, sizeof args, "-m '%s' -f tests/data/stories.txt -c 64 --chunks 4 -t 2", stories());
    int st1, st2;
    char *o1 = run_tool("llmpi-perplexity", args, &st1);
    char *o2 = run_tool("llmpi-perplexity", args, &st2);
    CHECK(st1 == 0 && st2 == 0, "exit %d/%d: %.400s", st1, st2, o1);
    double e1;
    const double p1 = parse_final_ppl(o1, &e1);
    CHECK(isfinite(p1) && p1 > 1 && p1 < 512 && isfinite(e1) && e1 > 0, "PPL %g +/- %g: %.300s", p1, e1, o1);
    char *l1 = final_line(o1), *l2 = final_line(o2);
    CHECK(l1[0] && !strcmp(l1, l2), "runs differ: '%s' vs '%s'", l1, l2);
    CHECK(strstr(o1, "[1]") && strstr(o1, "[4]") && !strstr(o1, "[5]"), "per-chunk progress: %.300s", o1);
    free(l1); free(l2); free(o1); free(o2);
    snprintf(args, sizeof args, "-m '%s' -f tests/data/stories.txt -c 64 --chunks 4 -t 1", stories());
    o1 = run_tool("llmpi-perplexity", args, &st1);
    const double p_t1 = parse_final_ppl(o1, NULL);
    CHECK(st1 == 0 && fabs(p_t1 - p1) < 1e-3 * p1, "1 thread %g vs 2 threads %g", p_t1, p1);
    free(o1);
    t_end();

    t_begin("llmpi-perplexity --kld-base / --kld: a model against itself");
    char base[1024];
    snprintf(base, sizeof base, "%s/stories.kld", t_tmpdir());
    snprintf(args, sizeof args, "-m '%s' -f tests/data/stories.txt -c 64 --chunks 4 --kld-base '%s'", stories(), base);
    o1 = run_tool("llmpi-perplexity", args, &st1);
    CHECK(st1 == 0, "save: exit %d %.300s", st1, o1);
    const double ppl_base = parse_final_ppl(o1, NULL);
    free(o1);
    struct stat sb;
    /* "_logits_" + 3 int32, then 4 chunks x 64 int32 tokens, then 4 chunks x 31 scored rows of
     * (512 + 4) u16 (2 floats + 512 codes) */
    const long want = 8 + 3 * 4 + 4L * 64 * 4 + 4L * 31 * (512 + 4) * 2;
    CHECK(stat(base, &sb) == 0 && sb.st_size == want, "base file size %ld, want %ld", (long)sb.st_size, want);
    snprintf(args, sizeof args, "-m '%s' --kld '%s'", stories(), base);
    o1 = run_tool("llmpi-perplexity", args, &st1);
    CHECK(st1 == 0, "compare: exit %d %.300s", st1, o1);
    const char *k = strstr(o1, "Mean    KLD:");
    const double kld = k ? atof(k + 12) : NAN;
    CHECK(k && fabs(kld) < 1e-4, "self KLD %g: %.300s", kld, k ? k : o1);
    const char *mx = strstr(o1, "Maximum KLD:");
    CHECK(mx && fabs(atof(mx + 12)) < 1e-3, "max self KLD: %.40s", mx ? mx : "-");
    const char *top = strstr(o1, "Same top p:");
    CHECK(top && fabs(atof(top + 11) - 100.0) < 1e-9, "self top-1: %.40s", top ? top : "-");
    const char *pq = strstr(o1, "Mean PPL(Q)                   :");
    CHECK(pq && fabs(atof(pq + 32) - ppl_base) < 2e-3 * ppl_base, "PPL(Q) %.40s vs saved run %g", pq ? pq : "-", ppl_base);
    const char *dppl = strstr(o1, "Mean PPL(Q)-PPL(base)         :");
    CHECK(dppl && fabs(atof(dppl + 32)) < 1e-2, "ΔPPL: %.60s", dppl ? dppl : "-");
    CHECK(strstr(o1, "RMS Δp    :") && strstr(o1, "99.0%   KLD:") && strstr(o1, "Median  KLD:"), "missing statistics");
    free(o1);
    t_end();

    t_begin("llmpi-perplexity --kld: bitnet-3M Q8_0 against its F32 base");
    snprintf(base, sizeof base, "%s/bitnet.kld", t_tmpdir());
    snprintf(args, sizeof args, "-m '%s' -f tests/data/stories.txt -c 64 --chunks 2 --kld-base '%s'",
             t_shared("fixtures/real/bitnet-3M-f32.gguf"), base);
    o1 = run_tool("llmpi-perplexity", args, &st1);
    CHECK(st1 == 0 && isfinite(parse_final_ppl(o1, NULL)), "save: exit %d %.300s", st1, o1);
    free(o1);
    snprintf(args, sizeof args, "-m '%s' --kld '%s'", t_shared("fixtures/real/bitnet-3M-Q8_0.gguf"), base);
    o1 = run_tool("llmpi-perplexity", args, &st1);
    k = strstr(o1, "Mean    KLD:");
    top = strstr(o1, "Same top p:");
    CHECK(st1 == 0 && k && top, "exit %d %.300s", st1, o1);
    if (k && top) {
        const double kq = atof(k + 12), tq = atof(top + 11);
        CHECK(kq > 1e-6 && kq < 0.5, "Q8_0 KLD %g", kq);
        CHECK(tq > 50 && tq <= 100, "Q8_0 top-1 %g %%", tq);
    }
    free(o1);
    t_end();

    t_begin("llmpi-perplexity errors");
    snprintf(args, sizeof args, "-m '%s' -f tests/data/stories.txt --imatrix-out /nonexistent-dir/x.imatrix", stories());
    o1 = run_tool("llmpi-perplexity", args, &st1);
    const char *nl = strchr(o1, '\n');
    CHECK(st1 == 1 && strstr(o1, "llmpi-perplexity: error: /nonexistent-dir/x.imatrix: cannot write") && nl && !nl[1],
          "imatrix: want a one-line error, got %d %s", st1, o1);
    free(o1);
    snprintf(args, sizeof args, "-m '%s' -f tests/data/qa.jsonl -c 4096", stories());
    o1 = run_tool("llmpi-perplexity", args, &st1);
    CHECK(st1 == 1 && strstr(o1, "you need at least 8192 tokens"), "short text: %d %s", st1, o1);
    free(o1);
    snprintf(args, sizeof args, "-m '%s' --kld tests/data/stories.txt", stories());
    o1 = run_tool("llmpi-perplexity", args, &st1);
    CHECK(st1 == 1 && strstr(o1, "does not look like"), "bad base file: %d %s", st1, o1);
    free(o1);
    t_end();
}

static void test_qa(void) {
    t_begin("llmpi-perplexity --qa: the shipped QA file");
    char args[4096];
    snprintf(args, sizeof args, "-m '%s' --qa tests/data/qa.jsonl -t 1", stories());
    int st1, st2;
    char *o1 = run_tool_stdout("llmpi-perplexity", args, &st1);
    CHECK(st1 == 0, "exit %d: %.400s", st1, o1);
    int items = 0;
    for (const char *q = o1; (q = strstr(q, "] EM ")); q++) items++;
    CHECK(items == 10, "want 10 item lines, got %d", items);
    const char *sum = strstr(o1, "QA: 10 items (0 skipped)");
    CHECK(sum != NULL, "summary: %.600s", o1);
    if (sum) {
        const char *em = strstr(sum, "exact match = "), *f1 = strstr(sum, "token F1 = ");
        const double emv = em ? atof(em + 14) : -1, f1v = f1 ? atof(f1 + 11) : -1;
        CHECK(emv >= 0 && emv <= 100 && f1v >= emv - 1e-9 && f1v <= 100, "EM %g F1 %g", emv, f1v);
    }
    /* Greedy answers are deterministic: the first three items again, on their own. */
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/qa3.jsonl", t_tmpdir());
    char *all = read_text("tests/data/qa.jsonl");
    FILE *sf = fopen(sub, "w");
    if (all && sf) {
        const char *e = all;
        for (int i = 0; i < 3 && e; i++) { e = strchr(e, '\n'); if (e) e++; }
        fwrite(all, 1, e ? (size_t)(e - all) : strlen(all), sf);
    }
    if (sf) fclose(sf);
    free(all);
    snprintf(args, sizeof args, "-m '%s' --qa '%s' -t 1", stories(), sub);
    char *o2 = run_tool_stdout("llmpi-perplexity", args, &st2);
    const char *i1 = strstr(o1, "[1] EM"), *i4 = strstr(o1, "[4] EM"), *j1 = strstr(o2, "[1] EM");
    CHECK(st2 == 0 && i1 && i4 && j1 && !strncmp(i1, j1, (size_t)(i4 - i1)) && strstr(o2, "QA: 3 items"),
          "greedy QA is not deterministic: %.300s", o2);
    free(o1);
    free(o2);
    char bad[1024];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", t_tmpdir());
    FILE *f = fopen(bad, "w");
    if (f) {
        fputs("{\"context\": \"c\", \"question\": \"q\", \"answers\": [\"a\"]}\n{\"context\": \"c\"}\n", f);
        fclose(f);
    }
    snprintf(args, sizeof args, "-m '%s' --qa '%s'", stories(), bad);
    o1 = run_tool("llmpi-perplexity", args, &st1);
    CHECK(st1 == 1 && strstr(o1, "bad.jsonl:2: missing \"question\""), "bad QA line: %d %s", st1, o1);
    free(o1);
    t_end();
}

/* Energy columns from a real (fake-sysfs) sensor: an INA226 reading a constant 4.5 W. */
static void test_bench_power(void) {
    t_begin("llmpi-bench --power: energy columns from the sampler");
    char root[600], args[4096];
    snprintf(root, sizeof root, "%s", t_fake_hwmon("sysfs-bench", "ina226", 4.5));
    setenv("LLMPI_SYSFS_ROOT", root, 1);
    /* 256 tokens at 200 Hz: every repetition spans many sample periods even on a loaded machine (64 tokens
     * took ~20 ms, one or two samples, and the energy columns came out empty under load). */
    snprintf(args, sizeof args, "-m '%s' -p 0 -n 256 -r 2 -t 1 -o json --power hwmon --power-rate 200", stories());
    int st;
    char *out = run_tool("llmpi-bench", args, &st);
    unsetenv("LLMPI_SYSFS_ROOT");
    CHECK(st == 0, "exit %d: %.500s", st, out);
    CHECK(strstr(out, "\"power_source\": \"hwmon:ina226") != NULL, "power_source: %.800s", out);
    CHECK(strstr(out, "\"avg_w\": 4.5") != NULL, "avg_w is not the sensor's 4.5 W: %.800s", out);
    CHECK(strstr(out, "\"tpj\": null") == NULL, "tpj missing: %.800s", out);
    free(out);
    snprintf(args, sizeof args, "-m '%s' -p 0 -n 4 -r 1 -t 1 -o json", stories());
    out = run_tool("llmpi-bench", args, &st);
    CHECK(st == 0 && strstr(out, "\"avg_w\": null"), "without --power energy must be null: %.400s", out);
    free(out);
    t_end();
}

int main(void) {
    test_stats();
    test_labels();
    test_qa_metrics();
    test_kld_math();
    test_svg();
    test_bench_csv();
    test_bench_json_md_plot();
    test_bench_protocol();
    test_bench_power();
    test_perplexity();
    test_qa();
    return t_summary();
}
