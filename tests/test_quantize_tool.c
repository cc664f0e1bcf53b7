/* llmpi-quantize and its preset rules (tools/quant_plan.c) against llama-quantize's own files.
 *
 *  - plans: for every llama.cpp-quantized fixture, our plan from its F32 source (same preset, --pure when
 *    the fixture is a -pure file) has the same tensors in the same order with the same types and shapes,
 *    and the same data size;
 *  - files: the tool reproduces several fixtures byte for byte (Q4_K_M, Q2_K, Q8_0-pure, bitnet TQ1_0) and
 *    the bitnet.cpp I2_S tensors; quantization RMSE equals llama.cpp's;
 *  - our files load in the engine, give exactly the logits of llama.cpp's file of the same preset there,
 *    and stay within the engine's bounds of llama.cpp's golden logits;
 *  - hybrid options (--tensor-type glob/regex, --layer-types), --dry-run, BitNet absmean ternarization,
 *    synthetic models (deterministic for any thread count, ternary shapes exact in TQ2_0);
 *  - bad input gives one clear error, and a failed (write error) or interrupted run leaves no output. */
#include "gguf.h"
#include "harness.h"
#include "llmpi.h"
#include "quant.h"
#include "quant_plan.h"
#include "quantize.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------------------- */

static char *run_tool(const char *args, int *status) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "{ %s %s; }", t_tool("llmpi-quantize"), args);
    char *out;
    *status = t_run(cmd, &out);
    return out;
}

static const char *tmp_path(const char *name) {
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ & 7];
    snprintf(b, 1024, "%s/%s", t_tmpdir(), name);
    return b;
}

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static bool files_equal(const char *a, const char *b) {
    size_t la, lb;
    void *da = t_read_file(a, &la), *db = t_read_file(b, &lb);
    bool eq = da && db && la == lb && memcmp(da, db, la) == 0;
    free(da);
    free(db);
    return eq;
}

/* Leftover temporary files (OUT.tmp-XXXXXX) in the test directory. */
static int count_tmp_files(void) {
    DIR *d = opendir(t_tmpdir());
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp-")) n++;
    closedir(d);
    return n;
}

static bool open_gguf(const char *path, gguf_file *f) {
    gguf_error e;
    if (gguf_open(path, true, f, &e) != GGUF_OK) {
        CHECK(0, "cannot open %s: %s", path, e.msg);
        return false;
    }
    return true;
}

/* Model info for the plan, from the GGUF metadata (what llmpi-quantize reads). */
static void model_info(const gguf_file *f, qp_model_info *mi) {
    memset(mi, 0, sizeof *mi);
    gguf_str arch = { 0 };
    gguf_get_str(f, "general.architecture", &arch);
    snprintf(mi->arch, sizeof mi->arch, "%.*s", (int)arch.len, arch.ptr);
    char key[128];
    int64_t v;
    snprintf(key, sizeof key, "%s.block_count", mi->arch);
    mi->n_layer = gguf_get_int(f, key, &v) == GGUF_OK ? (int)v : 0;
    snprintf(key, sizeof key, "%s.attention.head_count", mi->arch);
    mi->n_head = gguf_get_int(f, key, &v) == GGUF_OK ? (int)v : 1;
    snprintf(key, sizeof key, "%s.attention.head_count_kv", mi->arch);
    mi->n_head_kv = gguf_get_int(f, key, &v) == GGUF_OK ? (int)v : mi->n_head;
}

/* Plans src with the given options; returns a malloc'd sorted plan of *n tensors (NULL on failure). */
static qp_tensor *plan_source(const gguf_file *src, qp_options *opt, size_t *n) {
    *n = (size_t)src->n_tensors;
    qp_tensor *t = calloc(*n, sizeof *t);
    for (size_t i = 0; i < *n; i++) {
        snprintf(t[i].name, sizeof t[i].name, "%s", src->tensors[i].name);
        memcpy(t[i].ne, src->tensors[i].ne, sizeof t[i].ne);
        t[i].src_type = src->tensors[i].type;
    }
    qsort(t, *n, sizeof *t, qp_tensor_cmp);
    qp_model_info mi;
    model_info(src, &mi);
    char err[256];
    if (!qp_plan(&mi, opt, t, *n, err, sizeof err)) {
        CHECK(0, "plan failed: %s", err);
        free(t);
        return NULL;
    }
    return t;
}

/* ---- 1. plans equal llama-quantize's choices, tensor by tensor -------------------------------- */

static void check_plan_against(const char *src_rel, const char *ref_rel, const char *preset, bool pure) {
    t_begin("plan %s %s%s == %s", src_rel, preset, pure ? " --pure" : "", ref_rel);
    gguf_file src, ref;
    if (!open_gguf(t_shared(src_rel), &src)) { t_end(); return; }
    if (!open_gguf(t_shared(ref_rel), &ref)) { gguf_free(&src); t_end(); return; }
    qp_options opt;
    qp_options_init(&opt);
    opt.preset = qp_preset_find(preset);
    opt.pure = pure;
    CHECK(opt.preset != NULL, "preset %s unknown", preset);
    size_t n = 0;
    qp_tensor *t = opt.preset ? plan_source(&src, &opt, &n) : NULL;
    if (t) {
        CHECK(n == ref.n_tensors, "%zu tensors planned, reference has %llu", n, (unsigned long long)ref.n_tensors);
        uint64_t our_bytes = 0, ref_bytes = 0;
        for (size_t i = 0; i < n && i < ref.n_tensors; i++) {
            const gguf_tensor *r = &ref.tensors[i];
            CHECK(strcmp(t[i].name, r->name) == 0, "tensor %zu: ours %s, llama.cpp %s (order)", i, t[i].name, r->name);
            CHECK(t[i].type == r->type, "%s: ours %s, llama.cpp %s", r->name, quant_type_name(t[i].type), quant_type_name(r->type));
            CHECK(t[i].n_dims == r->n_dims && memcmp(t[i].ne, r->ne, sizeof r->ne) == 0, "%s: shape differs", r->name);
            uint64_t nb = 0;
            CHECK(quant_tensor_nbytes(t[i].type, t[i].ne, &nb), "%s: no size for %s", t[i].name, quant_type_name(t[i].type));
            our_bytes += nb;
            ref_bytes += r->nbytes;
        }
        CHECK(our_bytes == ref_bytes, "tensor data %llu bytes, llama.cpp %llu", (unsigned long long)our_bytes, (unsigned long long)ref_bytes);
        uint32_t ftype = 0;
        gguf_get_u32(&ref, "general.file_type", &ftype);
        CHECK((int)ftype == opt.preset->ftype, "ftype %d, llama.cpp file says %u", opt.preset->ftype, ftype);
    }
    free(t);
    qp_options_free(&opt);
    gguf_free(&src);
    gguf_free(&ref);
    t_end();
}

static void check_all_plans(void) {
    const char *mixes[] = { "Q4_K_M", "Q2_K", "Q3_K_M" };
    for (int i = 0; i < 3; i++) {
        char ref[256];
        snprintf(ref, sizeof ref, "fixtures/synth/llama-tiny-%s.gguf", mixes[i]);
        check_plan_against("fixtures/synth/llama-tiny-F32.gguf", ref, mixes[i], false);
    }
    const char *pures[] = { "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
                            "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "F16", "BF16" };
    for (size_t i = 0; i < sizeof pures / sizeof pures[0]; i++) {
        char ref[256];
        snprintf(ref, sizeof ref, "fixtures/synth/llama-tiny-%s-pure.gguf", pures[i]);
        check_plan_against("fixtures/synth/llama-tiny-F32.gguf", ref, pures[i], true);
    }
    const char *bitnet[] = { "TQ1_0", "TQ2_0", "Q8_0", "Q4_K_M", "Q2_K" };
    for (int i = 0; i < 5; i++) {
        char ref[256];
        snprintf(ref, sizeof ref, "fixtures/real/bitnet-3M-%s.gguf", bitnet[i]);
        check_plan_against("fixtures/real/bitnet-3M-f32.gguf", ref, bitnet[i], false);
    }
    check_plan_against("fixtures/synth/bitnet-tiny-F32.gguf", "fixtures/synth/bitnet-tiny-TQ1_0.gguf", "TQ1_0", false);
    check_plan_against("fixtures/synth/bitnet-tiny-F32.gguf", "fixtures/synth/bitnet-tiny-TQ2_0.gguf", "TQ2_0", false);
    const char *archs[] = { "gemma2", "phi3", "qwen2", "llama3rope" };
    for (int a = 0; a < 4; a++)
        for (int k = 0; k < 2; k++) {
            char src[256], ref[256];
            snprintf(src, sizeof src, "fixtures/synth/%s-tiny-F32.gguf", archs[a]);
            snprintf(ref, sizeof ref, "fixtures/synth/%s-tiny-%s.gguf", archs[a], k ? "Q8_0" : "Q4_K_M");
            check_plan_against(src, ref, k ? "Q8_0" : "Q4_K_M", false);
        }
}

/* The I2_S preset (bitnet.cpp's fork) keeps the source tensor order, so compare by name. */
static void check_i2s_plan(void) {
    t_begin("plan bitnet-3M I2_S == bitnet.cpp's types");
    gguf_file src, ref;
    if (open_gguf(t_shared("fixtures/real/bitnet-3M-f32.gguf"), &src)) {
        if (open_gguf(t_shared("fixtures/real/bitnet-3M-I2_S.gguf"), &ref)) {
            qp_options opt;
            qp_options_init(&opt);
            opt.preset = qp_preset_find("I2_S");
            size_t n;
            qp_tensor *t = plan_source(&src, &opt, &n);
            for (size_t i = 0; t && i < n; i++) {
                const gguf_tensor *r = gguf_find_tensor(&ref, t[i].name);
                CHECK(r && r->type == t[i].type, "%s: ours %s, bitnet.cpp %s", t[i].name, quant_type_name(t[i].type),
                      r ? quant_type_name(r->type) : "(missing)");
            }
            CHECK(opt.preset && opt.preset->ftype == 40, "I2_S ftype");
            free(t);
            qp_options_free(&opt);
            gguf_free(&ref);
        }
        gguf_free(&src);
    }
    t_end();
}

/* Rules that the tiny fixtures cannot reach (2 layers): the use_more_bits pattern on 32 layers
 * (docs/formats.md §6.5), Q3_K_M's first two attn_v, GQA >= 4, and the block-size fallbacks. */
static void check_rules_synthetic_shapes(void) {
    t_begin("plan rules on a 32-layer llama (formats.md 6.5) and fallbacks");
    enum { L = 32 };
    qp_tensor t[2 + 2 * L + 2];
    size_t n = 0;
    memset(t, 0, sizeof t);
#define ADD(nm, a, b) do { snprintf(t[n].name, sizeof t[n].name, "%s", nm); t[n].ne[0] = a; t[n].ne[1] = b; \
                           t[n].ne[2] = t[n].ne[3] = 1; t[n].src_type = LLMPI_TYPE_F16; n++; } while (0)
    ADD("token_embd.weight", 4096, 1000);
    ADD("output.weight", 4096, 1000);
    for (int l = 0; l < L; l++) {
        char nm[64];
        snprintf(nm, sizeof nm, "blk.%d.attn_v.weight", l);
        ADD(nm, 4096, 1024);
        snprintf(nm, sizeof nm, "blk.%d.ffn_down.weight", l);
        ADD(nm, 14336, 4096);
    }
    ADD("blk.0.odd.weight", 4000, 8);     /* 4000 % 256 != 0: Q4_K -> Q5_0 */
    ADD("blk.0.odder.weight", 100, 8);    /* 100 % 32 != 0: F16 */
#undef ADD
    qsort(t, n, sizeof t[0], qp_tensor_cmp);
    qp_model_info mi = { .arch = "llama", .n_layer = L, .n_head = 32, .n_head_kv = 8 };
    qp_options opt;
    qp_options_init(&opt);
    opt.preset = qp_preset_find("q4_k_m");
    char err[256];
    CHECK(qp_plan(&mi, &opt, t, n, err, sizeof err), "%s", err);
    const int more[] = { 0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31 };
    for (size_t i = 0; i < n; i++) {
        int layer = -1;
        sscanf(t[i].name, "blk.%d.", &layer);
        bool bump = false;
        for (int k = 0; k < 16; k++) bump |= more[k] == layer;
        if (strstr(t[i].name, "attn_v") || strstr(t[i].name, "ffn_down"))
            CHECK(t[i].type == (bump ? LLMPI_TYPE_Q6_K : LLMPI_TYPE_Q4_K), "%s: %s", t[i].name, quant_type_name(t[i].type));
        else if (strcmp(t[i].name, "output.weight") == 0) CHECK(t[i].type == LLMPI_TYPE_Q6_K, "output %s", quant_type_name(t[i].type));
        else if (strcmp(t[i].name, "token_embd.weight") == 0) CHECK(t[i].type == LLMPI_TYPE_Q4_K, "embd %s", quant_type_name(t[i].type));
        else if (strcmp(t[i].name, "blk.0.odd.weight") == 0) CHECK(t[i].type == LLMPI_TYPE_Q5_0 && t[i].fallback, "odd %s", quant_type_name(t[i].type));
        else if (strcmp(t[i].name, "blk.0.odder.weight") == 0) CHECK(t[i].type == LLMPI_TYPE_F16, "odder %s", quant_type_name(t[i].type));
    }
    /* Q3_K_M: attn_v #0,#1 -> Q5_K, rest Q4_K; ffn_down layers < 2 -> Q5_K, rest Q4_K. Q2_K with GQA 4: attn_v Q4_K. */
    opt.preset = qp_preset_find("Q3_K_M");
    CHECK(qp_plan(&mi, &opt, t, n, err, sizeof err), "%s", err);
    for (size_t i = 0; i < n; i++) {
        int layer = -1;
        sscanf(t[i].name, "blk.%d.", &layer);
        if (strstr(t[i].name, "attn_v") || strstr(t[i].name, "ffn_down"))
            CHECK(t[i].type == (layer < 2 ? LLMPI_TYPE_Q5_K : LLMPI_TYPE_Q4_K), "Q3_K_M %s: %s", t[i].name, quant_type_name(t[i].type));
    }
    opt.preset = qp_preset_find("Q2_K");
    CHECK(qp_plan(&mi, &opt, t, n, err, sizeof err), "%s", err);
    for (size_t i = 0; i < n; i++)
        if (strstr(t[i].name, "attn_v")) CHECK(t[i].type == LLMPI_TYPE_Q4_K, "Q2_K gqa4 %s: %s", t[i].name, quant_type_name(t[i].type));
    /* --pure: everything the base type, output included (fallbacks still apply). */
    opt.preset = qp_preset_find("Q4_K_M");
    opt.pure = true;
    CHECK(qp_plan(&mi, &opt, t, n, err, sizeof err), "%s", err);
    for (size_t i = 0; i < n; i++)
        if (!strstr(t[i].name, "odd")) CHECK(t[i].type == LLMPI_TYPE_Q4_K, "pure %s: %s", t[i].name, quant_type_name(t[i].type));
    qp_options_free(&opt);
    t_end();
}

static void check_overrides(void) {
    t_begin("--tensor-type globs/regexes and --layer-types");
    gguf_file src;
    if (!open_gguf(t_shared("fixtures/synth/llama-tiny-F32.gguf"), &src)) { t_end(); return; }
    qp_options opt;
    qp_options_init(&opt);
    opt.preset = qp_preset_find("Q4_K_M");
    char err[256];
    CHECK(qp_options_add_override(&opt, "*ffn_down*=Q8_0", err, sizeof err), "%s", err);      /* glob */
    CHECK(qp_options_add_override(&opt, "blk\\.1\\.attn_[qk]=q5_k", err, sizeof err), "%s", err); /* regex */
    CHECK(qp_options_add_override(&opt, "re:^output\\.weight$=6", err, sizeof err), "%s", err);  /* bit width */
    CHECK(!qp_options_add_override(&opt, "attn_v", err, sizeof err), "missing '=' accepted");
    CHECK(!qp_options_add_override(&opt, "attn_v=Q7_K", err, sizeof err), "unknown type accepted");
    CHECK(!qp_options_add_override(&opt, "re:(=Q8_0", err, sizeof err), "bad regex accepted");
    const char *lt = tmp_path("layers.txt");
    FILE *f = fopen(lt, "w");
    if (f) {
        fputs("# per-layer types\n*   Q5_K\n0   8  attn\n1   Q6_K ffn_gate   # comment\n", f);
        fclose(f);
    }
    CHECK(qp_options_load_layer_types(&opt, lt, err, sizeof err), "%s", err);
    size_t n;
    qp_tensor *t = plan_source(&src, &opt, &n);
    for (size_t i = 0; t && i < n; i++) {
        const char *nm = t[i].name;
        uint32_t want;
        if (!t[i].quantizable) want = LLMPI_TYPE_F32;
        else if (strstr(nm, "ffn_down")) want = LLMPI_TYPE_Q8_0;
        else if (strcmp(nm, "blk.1.attn_q.weight") == 0 || strcmp(nm, "blk.1.attn_k.weight") == 0) want = LLMPI_TYPE_Q5_K;
        else if (strcmp(nm, "output.weight") == 0) want = LLMPI_TYPE_Q6_K;
        else if (strncmp(nm, "blk.0.attn", 10) == 0) want = LLMPI_TYPE_Q8_0;
        else if (strcmp(nm, "blk.1.ffn_gate.weight") == 0) want = LLMPI_TYPE_Q6_K;
        else if (strncmp(nm, "blk.", 4) == 0) want = LLMPI_TYPE_Q5_K;
        else want = LLMPI_TYPE_Q4_K; /* token_embd: preset */
        CHECK(t[i].type == want, "%s: %s, want %s (%s)", nm, quant_type_name(t[i].type), quant_type_name(want), t[i].why);
    }
    free(t);
    qp_options_free(&opt);
    qp_options_init(&opt);
    f = fopen(lt, "w");
    if (f) { fputs("0-x Q4_K\n", f); fclose(f); }
    CHECK(!qp_options_load_layer_types(&opt, lt, err, sizeof err) && strstr(err, ":1:"), "bad layer range accepted: %s", err);
    qp_options_free(&opt);
    gguf_free(&src);
    t_end();
}

/* ---- 2. files written by the tool ----------------------------------------------------------- */

/* RMSE of every tensor of q (dequantized) against the F32 source tensor of the same name
 * (only_ternary: just the TQ1_0/TQ2_0/I2_S tensors). */
static double weights_rmse(const char *f32_path, const char *q_path, bool only_ternary) {
    gguf_file a, b;
    if (!open_gguf(f32_path, &a)) return -1;
    if (!open_gguf(q_path, &b)) { gguf_free(&a); return -1; }
    double se = 0, n = 0;
    for (uint64_t i = 0; i < b.n_tensors; i++) {
        const gguf_tensor *tq = &b.tensors[i], *tf = gguf_find_tensor(&a, tq->name);
        if (!tf || tf->type != LLMPI_TYPE_F32 || tq->n_elements != tf->n_elements) continue;
        if (only_ternary && !qp_type_is_ternary(tq->type)) continue;
        float *y = malloc((size_t)tq->n_elements * sizeof *y);
        if (y && quant_dequantize_tensor(tq->type, tq->data, y, tq->ne[0], tq->n_elements / tq->ne[0])) {
            for (int64_t k = 0; k < tq->n_elements; k++) {
                float x;
                memcpy(&x, (const uint8_t *)tf->data + 4 * k, 4);
                se += ((double)y[k] - x) * ((double)y[k] - x);
            }
            n += (double)tq->n_elements;
        }
        free(y);
    }
    gguf_free(&a);
    gguf_free(&b);
    return n > 0 ? sqrt(se / n) : -1;
}

static void check_tool_reproduces(const char *src_rel, const char *ref_rel, const char *opts, const char *type, const char *out_name) {
    t_begin("llmpi-quantize %s %s %s == %s", src_rel, opts, type, ref_rel);
    const char *out = tmp_path(out_name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "-q %s '%s' '%s' %s", opts, t_shared(src_rel), out, type);
    int st;
    char *log = run_tool(cmd, &st);
    CHECK(st == 0, "exit %d: %s", st, log);
    long a = file_size(out), b = file_size(t_shared(ref_rel));
    CHECK(a > 0 && labs(a - b) <= b / 200, "size %ld vs llama.cpp %ld (more than 0.5%% apart)", a, b);
    CHECK(files_equal(out, t_shared(ref_rel)), "file differs from llama.cpp's %s", ref_rel);
    double r_ours = weights_rmse(t_shared(src_rel), out, false), r_ref = weights_rmse(t_shared(src_rel), t_shared(ref_rel), false);
    CHECK(r_ours >= 0 && r_ours <= r_ref * (1 + 1e-9), "weight RMSE %.6g worse than llama.cpp's %.6g", r_ours, r_ref);
    printf("# %s: weight RMSE %.6g (llama.cpp %.6g)\n", ref_rel, r_ours, r_ref);
    free(log);
    t_end();
}

static void check_i2s_file(const char *src_rel, const char *ref_rel, const char *out_name) {
    t_begin("llmpi-quantize %s I2_S == bitnet.cpp's tensors", src_rel);
    const char *out = tmp_path(out_name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "-q -t 2 '%s' '%s' I2_S", t_shared(src_rel), out);
    int st;
    char *log = run_tool(cmd, &st);
    CHECK(st == 0, "exit %d: %s", st, log);
    gguf_file a, b;
    if (open_gguf(out, &a)) {
        if (open_gguf(t_shared(ref_rel), &b)) {
            CHECK(a.n_tensors == b.n_tensors, "tensor count");
            uint32_t ft = 0;
            gguf_get_u32(&a, "general.file_type", &ft);
            CHECK(ft == 40, "file_type %u", ft);
            for (uint64_t i = 0; i < b.n_tensors; i++) {
                const gguf_tensor *r = &b.tensors[i], *o = gguf_find_tensor(&a, r->name);
                if (!o) { CHECK(0, "%s missing", r->name); continue; }
                CHECK(o->type == r->type && o->nbytes == r->nbytes, "%s: type/size", r->name);
                /* bitnet.cpp leaves the 28 filler bytes after an I2_S scale uninitialised: ignore them. */
                uint64_t cmp = r->type == LLMPI_TYPE_I2_S ? r->nbytes - 28 : r->nbytes;
                CHECK(o->nbytes == r->nbytes && memcmp(o->data, r->data, cmp) == 0, "%s: data differs", r->name);
            }
            CHECK(file_size(out) == file_size(t_shared(ref_rel)), "file size");
            gguf_free(&b);
        }
        gguf_free(&a);
    }
    free(log);
    t_end();
}

/* ---- 3. logits in our engine vs llama.cpp's golden of the same preset ------------------------- */

typedef struct { uint32_t n_tokens, n_vocab; int32_t *tokens; float *logits; } golden;

static bool read_golden(const char *path, golden *g) {
    size_t len;
    uint8_t *d = t_read_file(path, &len);
    if (!d) return false;
    bool ok = len >= 16 && memcmp(d, "LPLOGIT1", 8) == 0;
    if (ok) {
        memcpy(&g->n_tokens, d + 8, 4);
        memcpy(&g->n_vocab, d + 12, 4);
        ok = len == 16 + 4 * (size_t)g->n_tokens + 4 * (size_t)g->n_tokens * g->n_vocab;
    }
    if (ok) {
        g->tokens = malloc(4 * (size_t)g->n_tokens);
        g->logits = malloc(4 * (size_t)g->n_tokens * g->n_vocab);
        memcpy(g->tokens, d + 16, 4 * (size_t)g->n_tokens);
        memcpy(g->logits, d + 16 + 4 * (size_t)g->n_tokens, 4 * (size_t)g->n_tokens * g->n_vocab);
    }
    free(d);
    CHECK(ok, "%s is not a valid LPLOGIT1 file", path);
    return ok;
}

/* Logits of every position of g's tokens in our engine (n_tokens * n_vocab floats, malloc'd), or NULL. */
static float *engine_logits(const char *model_path, const golden *g) {
    llmpi_model_params mp = llmpi_model_default_params();
    llmpi_model *m = NULL;
    llmpi_error e;
    if (llmpi_model_load(model_path, &mp, &m, &e) != LLMPI_OK) {
        CHECK(0, "engine cannot load %s: %s", model_path, e.msg);
        return NULL;
    }
    llmpi_context_params cp = llmpi_context_default_params();
    cp.n_ctx = 512;
    cp.n_threads = 2;
    cp.logits_all = true;
    cp.n_batch = (int)g->n_tokens;
    llmpi_context *ctx = NULL;
    float *out = NULL;
    if (llmpi_model_n_vocab(m) != (int)g->n_vocab) {
        CHECK(0, "%s: vocab %d, golden %u", model_path, llmpi_model_n_vocab(m), g->n_vocab);
    } else if (llmpi_context_create(m, &cp, &ctx, &e) != LLMPI_OK || llmpi_eval(ctx, g->tokens, (int)g->n_tokens, &e) != LLMPI_OK) {
        CHECK(0, "engine eval of %s failed: %s", model_path, e.msg);
    } else {
        out = malloc(sizeof(float) * g->n_tokens * g->n_vocab);
        for (uint32_t i = 0; out && i < g->n_tokens; i++) {
            const float *l = llmpi_get_logits(ctx, (int)i);
            if (!l) { CHECK(0, "no logits for position %u", i); free(out); out = NULL; break; }
            memcpy(out + (size_t)i * g->n_vocab, l, sizeof(float) * g->n_vocab);
        }
    }
    llmpi_context_free(ctx);
    llmpi_model_free(m);
    return out;
}

/* Our file in our engine vs llama.cpp's golden of the same preset. Asserted: the engine gives exactly the
 * same logits for our file as for llama.cpp's file of the same preset (ref_rel), and stays within the bounds
 * tests/test_engine.c asserts for quantized files (mean KL <= 5e-3, top-1 >= 90%); the strict bound
 * (KL <= 1e-3, top-1 >= 98%) is printed (it depends on the engine's arithmetic, see test_engine.c). */
static void check_logits(const char *model_path, const char *ref_rel, const char *golden_rel) {
    t_begin("engine logits of our %s vs llama.cpp %s", strrchr(model_path, '/') + 1, golden_rel);
    golden g = { 0 };
    if (!read_golden(t_shared(golden_rel), &g)) { t_end(); return; }
    float *ours = engine_logits(model_path, &g), *theirs = engine_logits(t_shared(ref_rel), &g);
    if (ours && theirs) {
        const size_t V = g.n_vocab;
        size_t n_diff = 0;
        for (size_t k = 0; k < (size_t)g.n_tokens * V; k++) n_diff += ours[k] != theirs[k];
        CHECK(n_diff == 0, "%zu logits differ between our file and %s in the same engine", n_diff, ref_rel);
        double kl_sum = 0;
        int top1 = 0;
        for (uint32_t i = 0; i < g.n_tokens; i++) {
            const float *o = ours + (size_t)i * V, *r = g.logits + (size_t)i * V;
            double mr = r[0], mo = o[0];
            size_t ar = 0, ao = 0;
            for (size_t k = 1; k < V; k++) {
                if (r[k] > mr) { mr = r[k]; ar = k; }
                if (o[k] > mo) { mo = o[k]; ao = k; }
            }
            double zr = 0, zo = 0;
            for (size_t k = 0; k < V; k++) { zr += exp(r[k] - mr); zo += exp(o[k] - mo); }
            double kl = 0;
            for (size_t k = 0; k < V; k++) {
                const double lp = r[k] - mr - log(zr), lq = o[k] - mo - log(zo);
                kl += exp(lp) * (lp - lq);
            }
            kl_sum += kl;
            top1 += ar == ao;
        }
        const double kl = kl_sum / g.n_tokens, t1 = 100.0 * top1 / g.n_tokens;
        printf("# %s: mean KL %.3g nats, top-1 %.1f%%, issue bound (KL <= 1e-3, top-1 >= 98%%) %s\n", golden_rel, kl, t1,
               kl <= 1e-3 && t1 >= 98.0 ? "met" : "MISSED");
        CHECK(kl <= 5e-3, "mean KL %.4g > 5e-3", kl);
        CHECK(t1 >= 90.0, "top-1 agreement %.1f%% < 90%%", t1);
    }
    free(ours);
    free(theirs);
    free(g.tokens);
    free(g.logits);
    t_end();
}

/* ---- 4. hybrid options through the CLI, dry run, ternarization, synthetic models ------------- */

static void check_cli_hybrid_and_dry_run(void) {
    t_begin("CLI --tensor-type/--layer-types/--dry-run");
    const char *out = tmp_path("hybrid.gguf");
    const char *lt = tmp_path("layers2.txt");
    FILE *f = fopen(lt, "w");
    if (f) { fputs("1 8\n", f); fclose(f); }
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "--dry-run --tensor-type 'ffn_down=q5_0' --layer-types '%s' '%s' '%s' Q4_0",
             lt, t_shared("fixtures/synth/llama-tiny-F32.gguf"), out);
    char *log = run_tool(cmd, &st);
    CHECK(st == 0, "dry run exit %d: %s", st, log);
    CHECK(!file_exists(out), "--dry-run created the output");
    CHECK(strstr(log, "blk.0.ffn_down.weight") && strstr(log, "Q5_0") && strstr(log, "bpw"), "plan table missing: %.400s", log);
    free(log);
    snprintf(cmd, sizeof cmd, "-q -t 3 --tensor-type 'ffn_down=q5_0' --layer-types '%s' '%s' '%s' Q4_0",
             lt, t_shared("fixtures/synth/llama-tiny-F32.gguf"), out);
    log = run_tool(cmd, &st);
    CHECK(st == 0, "exit %d: %s", st, log);
    gguf_file g;
    if (open_gguf(out, &g)) {
        for (uint64_t i = 0; i < g.n_tensors; i++) {
            const gguf_tensor *t = &g.tensors[i];
            uint32_t want = t->n_dims < 2 ? LLMPI_TYPE_F32
                          : strstr(t->name, "ffn_down") ? LLMPI_TYPE_Q5_0
                          : strncmp(t->name, "blk.1.", 6) == 0 ? LLMPI_TYPE_Q8_0
                          : strcmp(t->name, "output.weight") == 0 ? LLMPI_TYPE_Q6_K : LLMPI_TYPE_Q4_0;
            CHECK(t->type == want, "%s: %s, want %s", t->name, quant_type_name(t->type), quant_type_name(want));
        }
        uint32_t ft = 0;
        gguf_get_u32(&g, "general.file_type", &ft);
        CHECK(ft == 2, "file_type %u", ft);
        gguf_free(&g);
    }
    free(log);
    t_end();
}

/* A bitnet model whose weights are NOT ternary (bitnet-tiny plus noise): TQ2_0 must hold the absmean
 * ternarization T*s (s = mean|W| per tensor, T = clamp(round(W/s), -1, 1)), recomputed here. */
static void check_ternarization(void) {
    t_begin("BitNet absmean ternarization into TQ2_0 / I2_S, refusal for llama");
    gguf_file src;
    if (!open_gguf(t_shared("fixtures/synth/bitnet-tiny-F32.gguf"), &src)) { t_end(); return; }
    const char *noisy = tmp_path("bitnet-noisy.gguf");
    gguf_writer *w = gguf_writer_create();
    for (uint64_t i = 0; i < src.n_kv; i++) gguf_writer_copy_kv(w, &src.kv[i]);
    void **data = calloc((size_t)src.n_tensors, sizeof *data);
    uint64_t rng = 12345;
    for (uint64_t i = 0; i < src.n_tensors; i++) {
        const gguf_tensor *t = &src.tensors[i];
        gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne);
        data[i] = malloc((size_t)t->nbytes);
        memcpy(data[i], t->data, (size_t)t->nbytes);
        if (t->n_dims == 2 && strstr(t->name, "blk.") && !strstr(t->name, "norm")) {
            float *x = data[i];
            for (int64_t k = 0; k < t->n_elements; k++) x[k] += 0.05f * t_rand_normal(&rng);
        }
    }
    FILE *f = fopen(noisy, "wb");
    gguf_error ge;
    CHECK(f && gguf_writer_write_all(w, f, (const void *const *)data, &ge) == GGUF_OK, "writing the noisy model");
    if (f) fclose(f);
    gguf_writer_free(w);

    const char *out = tmp_path("bitnet-tern.gguf");
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "-q -t 2 '%s' '%s' TQ2_0", noisy, out);
    char *log = run_tool(cmd, &st);
    CHECK(st == 0, "exit %d: %s", st, log);
    free(log);
    const char *out2 = tmp_path("bitnet-tern-i2s.gguf");
    snprintf(cmd, sizeof cmd, "-q '%s' '%s' I2_S", noisy, out2);
    log = run_tool(cmd, &st);
    CHECK(st == 0, "I2_S exit %d: %s", st, log);
    free(log);
    gguf_file q, q2;
    if (open_gguf(out, &q) && open_gguf(out2, &q2)) {
        int checked = 0;
        for (uint64_t i = 0; i < src.n_tensors; i++) {
            const gguf_tensor *t = &src.tensors[i];
            const gguf_tensor *o = gguf_find_tensor(&q, t->name), *o2 = gguf_find_tensor(&q2, t->name);
            if (!o || !o2 || o->type != LLMPI_TYPE_TQ2_0) continue;
            CHECK(o2->type == LLMPI_TYPE_I2_S, "%s: I2_S file has %s", t->name, quant_type_name(o2->type));
            const float *x = data[i];
            double sum = 0;
            for (int64_t k = 0; k < t->n_elements; k++) sum += fabsf(x[k]);
            float s = (float)(sum / (double)t->n_elements);
            if (s < 1e-5f) s = 1e-5f;
            const float is = 1.0f / s;
            float *y = malloc((size_t)t->n_elements * sizeof *y), *y2 = malloc((size_t)t->n_elements * sizeof *y2);
            /* The library's whole-tensor ternarizer (quant/ternary.c) agrees with the streaming one. */
            float *lib = malloc((size_t)t->n_elements * sizeof *lib);
            const float lib_s = quant_ternarize_absmean(x, lib, t->n_elements);
            CHECK(lib_s == s, "%s: quant_ternarize_absmean scale %g, ours %g", t->name, lib_s, s);
            CHECK(quant_dequantize_tensor(o->type, o->data, y, t->ne[0], t->ne[1]), "dequant TQ2_0");
            CHECK(quant_dequantize_tensor(o2->type, o2->data, y2, t->ne[0], t->ne[1]), "dequant I2_S");
            int bad = 0;
            for (int64_t k = 0; k < t->n_elements && bad < 3; k++) {
                float tv = rintf(x[k] * is);
                tv = tv > 1 ? 1 : tv < -1 ? -1 : tv;
                const float want = tv / is;
                /* TQ2_0 stores the block scale as f16; I2_S keeps it in f32. */
                if (fabsf(y[k] - want) > 1e-3f * s || fabsf(y2[k] - want) > 1e-6f * s || lib[k] != want) {
                    CHECK(0, "%s[%lld]: W %g -> TQ2_0 %g, I2_S %g, want %g (library %g)", t->name, (long long)k, x[k], y[k], y2[k],
                          want, lib[k]);
                    bad++;
                }
            }
            free(y);
            free(y2);
            free(lib);
            checked++;
        }
        CHECK(checked == 14, "%d ternarized tensors checked, want 14", checked);
        gguf_free(&q);
        gguf_free(&q2);
    }
    for (uint64_t i = 0; i < src.n_tensors; i++) free(data[i]);
    free(data);
    gguf_free(&src);

    /* A llama model is refused, and accepted with --force (then like llama-quantize: per-block TQ). */
    snprintf(cmd, sizeof cmd, "'%s' '%s' TQ1_0", t_shared("fixtures/synth/llama-tiny-F32.gguf"), tmp_path("refused.gguf"));
    log = run_tool(cmd, &st);
    CHECK(st == 1 && strstr(log, "not a ternary") && strstr(log, "--force"), "exit %d: %s", st, log);
    CHECK(!file_exists(tmp_path("refused.gguf")), "refused run left a file");
    free(log);
    t_end();
}

static void check_synthetic(void) {
    t_begin("--synthetic: deterministic for any thread count, seed matters, loads, ternary exact");
    const char *a = tmp_path("syn-a.gguf"), *b = tmp_path("syn-b.gguf"), *c = tmp_path("syn-c.gguf");
    char cmd[1024];
    int st;
    snprintf(cmd, sizeof cmd, "-q -t 1 --seed 7 --synthetic llama-tiny '%s' Q8_0", a);
    char *log = run_tool(cmd, &st);
    CHECK(st == 0, "exit %d: %s", st, log);
    free(log);
    snprintf(cmd, sizeof cmd, "-q -t 3 --synthetic llama-tiny --seed 7 '%s' Q8_0", b);
    log = run_tool(cmd, &st);
    CHECK(st == 0, "exit %d: %s", st, log);
    free(log);
    snprintf(cmd, sizeof cmd, "-q --synthetic llama-tiny --seed 8 '%s' Q8_0", c);
    log = run_tool(cmd, &st);
    CHECK(st == 0, "exit %d: %s", st, log);
    free(log);
    CHECK(files_equal(a, b), "same seed, different thread count: files differ");
    CHECK(file_size(a) == file_size(c) && !files_equal(a, c), "a different seed should change the weights only");
    llmpi_model_params mp = llmpi_model_default_params();
    llmpi_model *m = NULL;
    llmpi_error e;
    if (llmpi_model_load(a, &mp, &m, &e) == LLMPI_OK) {
        CHECK(llmpi_model_n_vocab(m) == 512 && llmpi_model_n_layer(m) == 2, "shape");
        int32_t toks[64];
        int n = llmpi_tokenize(m, "Once upon a time", -1, true, false, toks, 64, &e);
        CHECK(n > 1, "tokenizer: %s", e.msg);
        llmpi_model_free(m);
    } else {
        CHECK(0, "engine cannot load the synthetic model: %s", e.msg);
    }
    /* bitnet-tiny: ternary weights with power-of-two scales, so TQ2_0 is lossless against F32. */
    const char *tf = tmp_path("synb-f32.gguf"), *tq = tmp_path("synb-tq2.gguf");
    snprintf(cmd, sizeof cmd, "-q --synthetic bitnet-tiny '%s' F32", tf);
    log = run_tool(cmd, &st);
    CHECK(st == 0, "exit %d: %s", st, log);
    free(log);
    snprintf(cmd, sizeof cmd, "-q --synthetic bitnet-tiny '%s' TQ2_0", tq);
    log = run_tool(cmd, &st);
    CHECK(st == 0, "exit %d: %s", st, log);
    free(log);
    double rmse = weights_rmse(tf, tq, true);
    CHECK(rmse == 0.0, "bitnet-tiny TQ2_0 vs F32: ternary weight RMSE %g, want 0", rmse);
    t_end();
}

/* An imatrix in llama.cpp's GGUF format for every blk.* matrix of llama-tiny: in_sum2 = importance * count. */
static bool write_imatrix(const char *path, const gguf_file *src) {
    gguf_writer *w = gguf_writer_create();
    gguf_writer_set_str(w, "general.type", "imatrix");
    const char *ds[1] = { "llmpi-test-data.txt" };
    gguf_writer_set_arr_str(w, "imatrix.datasets", ds, 1);
    gguf_writer_set_u32(w, "imatrix.chunk_count", 7);
    gguf_writer_set_u32(w, "imatrix.chunk_size", 512);
    void *data[64];
    int n = 0;
    uint64_t rng = 99;
    for (uint64_t i = 0; i < src->n_tensors && n + 2 <= 64; i++) {
        const gguf_tensor *t = &src->tensors[i];
        if (t->n_dims != 2 || strncmp(t->name, "blk.", 4) != 0) continue;
        char name[96];
        int64_t ne_s[2] = { t->ne[0], 1 }, ne_c[2] = { 1, 1 };
        snprintf(name, sizeof name, "%s.in_sum2", t->name);
        gguf_writer_add_tensor(w, name, LLMPI_TYPE_F32, 2, ne_s);
        float *sums = malloc(sizeof(float) * (size_t)t->ne[0]);
        for (int64_t k = 0; k < t->ne[0]; k++) sums[k] = 70.0f * t_rand_uniform(&rng, 0.01f, 10.0f);
        data[n++] = sums;
        snprintf(name, sizeof name, "%s.counts", t->name);
        gguf_writer_add_tensor(w, name, LLMPI_TYPE_F32, 2, ne_c);
        float *cnt = malloc(sizeof(float));
        *cnt = 70.0f;
        data[n++] = cnt;
    }
    FILE *f = fopen(path, "wb");
    gguf_error ge;
    bool ok = f && gguf_writer_write_all(w, f, (const void *const *)data, &ge) == GGUF_OK;
    if (f) fclose(f);
    gguf_writer_free(w);
    for (int i = 0; i < n; i++) free(data[i]);
    return ok;
}

static void check_imatrix(void) {
    t_begin("--imatrix (llama.cpp imatrix GGUF) reaches the quantizers and the metadata");
    gguf_file src;
    if (!open_gguf(t_shared("fixtures/synth/llama-tiny-F32.gguf"), &src)) { t_end(); return; }
    const char *im = tmp_path("test.imatrix.gguf"), *out = tmp_path("imatrix-q4km.gguf");
    CHECK(write_imatrix(im, &src), "cannot write the imatrix");
    char cmd[2048];
    int st;
    snprintf(cmd, sizeof cmd, "-q --imatrix '%s' '%s' '%s' Q4_K_M", im, t_shared("fixtures/synth/llama-tiny-F32.gguf"), out);
    char *log = run_tool(cmd, &st);
    CHECK(st == 0, "exit %d: %s", st, log);
    free(log);
    gguf_file q, imf;
    if (open_gguf(out, &q) && open_gguf(im, &imf)) {
        gguf_str ds = { 0 };
        uint32_t entries = 0, chunks = 0;
        CHECK(gguf_get_str(&q, "quantize.imatrix.dataset", &ds) == GGUF_OK && gguf_str_eq(ds, "llmpi-test-data.txt"), "dataset key");
        CHECK(gguf_get_u32(&q, "quantize.imatrix.entries_count", &entries) == GGUF_OK && entries == 14, "entries_count %u", entries);
        CHECK(gguf_get_u32(&q, "quantize.imatrix.chunks_count", &chunks) == GGUF_OK && chunks == 7, "chunks_count %u", chunks);
        /* Each quantized blk tensor equals the quantizer run with in_sum2 / count as weights; the imatrix changes it. */
        int checked = 0, changed = 0;
        for (uint64_t i = 0; i < q.n_tensors; i++) {
            const gguf_tensor *t = &q.tensors[i];
            if (t->n_dims != 2 || strncmp(t->name, "blk.", 4) != 0) continue;
            char name[96];
            snprintf(name, sizeof name, "%s.in_sum2", t->name);
            const gguf_tensor *sums = gguf_find_tensor(&imf, name), *s32 = gguf_find_tensor(&src, t->name);
            if (!sums || !s32) { CHECK(0, "%s: no imatrix/source tensor", t->name); continue; }
            float *w = malloc(sizeof(float) * (size_t)t->ne[0]);
            for (int64_t k = 0; k < t->ne[0]; k++) {
                float v;
                memcpy(&v, (const uint8_t *)sums->data + 4 * k, 4);
                w[k] = v / 70.0f;
            }
            uint8_t *want = malloc((size_t)t->nbytes), *plain = malloc((size_t)t->nbytes);
            quant_quantize_fn fn = qp_quantizer(t->type);
            fn((const float *)s32->data, want, t->ne[1], t->ne[0], w);
            fn((const float *)s32->data, plain, t->ne[1], t->ne[0], NULL);
            CHECK(memcmp(want, t->data, (size_t)t->nbytes) == 0, "%s (%s): not the imatrix quantization", t->name, quant_type_name(t->type));
            changed += memcmp(plain, t->data, (size_t)t->nbytes) != 0;
            checked++;
            free(w);
            free(want);
            free(plain);
        }
        CHECK(checked == 14 && changed == checked, "%d tensors checked, %d changed by the imatrix", checked, changed);
        gguf_free(&imf);
        gguf_free(&q);
    }
    gguf_free(&src);
    t_end();
}

/* ---- 5. errors and atomic output ------------------------------------------------------------ */

static void expect_error(const char *name, const char *args, int want_status, const char *want) {
    t_begin("error: %s", name);
    int st;
    char *out = run_tool(args, &st);
    CHECK(st == want_status, "exit %d, want %d: %s", st, want_status, out);
    CHECK(strstr(out, "llmpi-quantize: error: ") != NULL, "no error line: %s", out);
    CHECK(strstr(out, want) != NULL, "message lacks '%s': %s", want, out);
    free(out);
    t_end();
}

static void check_errors(void) {
    const char *src = t_shared("fixtures/synth/llama-tiny-F32.gguf");
    const char *q4 = t_shared("fixtures/synth/llama-tiny-Q4_K_M.gguf");
    char args[2048];
    snprintf(args, sizeof args, "'%s' '%s' Q7_K", src, tmp_path("x.gguf"));
    expect_error("unknown type", args, 2, "unknown type 'Q7_K'");
    const char *txt = tmp_path("not-a-model.gguf");
    FILE *f = fopen(txt, "w");
    if (f) { fputs("hello, this is not a GGUF file at all\n", f); fclose(f); }
    snprintf(args, sizeof args, "'%s' '%s' Q4_0", txt, tmp_path("x.gguf"));
    expect_error("not a GGUF", args, 1, "not-a-model.gguf");
    snprintf(args, sizeof args, "'%s' '%s/no/such/dir/out.gguf' Q4_0", src, t_tmpdir());
    expect_error("unwritable output", args, 1, "cannot create");
    snprintf(args, sizeof args, "'%s' '%s' Q4_0", src, src);
    expect_error("input == output", args, 1, "same file");
    snprintf(args, sizeof args, "'%s' '%s' Q4_0", q4, tmp_path("x.gguf"));
    expect_error("requantize without --allow-requantize", args, 1, "--allow-requantize");
    CHECK(!file_exists(tmp_path("x.gguf")), "a failed run left x.gguf");

    t_begin("--allow-requantize works and warns");
    snprintf(args, sizeof args, "-q --allow-requantize '%s' '%s' Q8_0", q4, tmp_path("requant.gguf"));
    int st;
    char *out = run_tool(args, &st);
    CHECK(st == 0 && strstr(out, "warning") && strstr(out, "quality"), "exit %d: %s", st, out);
    free(out);
    t_end();
}

/* A write failure (file size limit: the tool sees EFBIG like a full disk) leaves no output and no
 * temporary file, and an existing OUT untouched. */
static void check_write_failure(void) {
    t_begin("write failure leaves no partial output");
    const char *out = tmp_path("limited.gguf");
    FILE *f = fopen(out, "w");
    if (f) { fputs("previous contents\n", f); fclose(f); }
    char args[2048];
    snprintf(args, sizeof args, "-q '%s' '%s' Q8_0", t_shared("fixtures/synth/llama-tiny-F32.gguf"), out);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "( ulimit -f 200; %s %s )", t_tool("llmpi-quantize"), args);   /* 100 KiB */
    char *log;
    int st = t_run(cmd, &log);
    CHECK(st == 1, "exit %d, want 1: %s", st, log);
    CHECK(strstr(log, "llmpi-quantize: error: ") && (strstr(log, "too large") || strstr(log, "File too large")),
          "no clear write error: %s", log);
    size_t len;
    char *content = t_read_file(out, &len);
    CHECK(content && len == 18 && memcmp(content, "previous contents\n", 18) == 0, "existing output was modified");
    free(content);
    CHECK(count_tmp_files() == 0, "temporary file left behind");
    free(log);
    t_end();
}

/* SIGINT in the middle of a run (slowed by the test hook) leaves no output and no temporary file. */
static void check_interrupt(void) {
    t_begin("interrupted run leaves no partial output");
    const char *out = tmp_path("interrupted.gguf");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "LLMPI_QUANTIZE_TEST_SLOW_MS=400 exec %s '%s' '%s' Q8_0 2>&1", t_tool("llmpi-quantize"),
             t_shared("fixtures/synth/llama-tiny-F32.gguf"), out);
    int pipefd[2];
    if (pipe(pipefd) != 0) { CHECK(0, "pipe"); t_end(); return; }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        close(pipefd[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    FILE *r = fdopen(pipefd[0], "r");
    char line[512];
    bool started = false;
    while (r && fgets(line, sizeof line, r))
        if (line[0] == '[') { started = true; break; }   /* first tensor written */
    CHECK(started, "no progress line before the interrupt");
    kill(pid, SIGINT);
    int status = 0;
    waitpid(pid, &status, 0);
    if (r) fclose(r);
    CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0), "the interrupted run reported success");
    CHECK(!file_exists(out), "interrupted run left %s", out);
    CHECK(count_tmp_files() == 0, "temporary file left behind");
    t_end();
}

int main(void) {
    check_all_plans();
    check_i2s_plan();
    check_rules_synthetic_shapes();
    check_overrides();

    check_tool_reproduces("fixtures/synth/llama-tiny-F32.gguf", "fixtures/synth/llama-tiny-Q4_K_M.gguf", "-t 2", "Q4_K_M", "q4km.gguf");
    check_tool_reproduces("fixtures/synth/llama-tiny-F32.gguf", "fixtures/synth/llama-tiny-Q2_K.gguf", "", "Q2_K", "q2k.gguf");
    check_tool_reproduces("fixtures/synth/llama-tiny-F32.gguf", "fixtures/synth/llama-tiny-Q8_0-pure.gguf", "--pure", "Q8_0", "q80.gguf");
    check_tool_reproduces("fixtures/real/bitnet-3M-f32.gguf", "fixtures/real/bitnet-3M-TQ1_0.gguf", "-t 3", "TQ1_0", "tq10.gguf");
    check_i2s_file("fixtures/synth/bitnet-tiny-F32.gguf", "fixtures/synth/bitnet-tiny-I2_S.gguf", "i2s-tiny.gguf");
    check_i2s_file("fixtures/real/bitnet-3M-f32.gguf", "fixtures/real/bitnet-3M-I2_S.gguf", "i2s-3M.gguf");

    check_logits(tmp_path("q4km.gguf"), "fixtures/synth/llama-tiny-Q4_K_M.gguf", "fixtures/golden/llama-tiny-Q4_K_M.logits");
    check_logits(tmp_path("tq10.gguf"), "fixtures/real/bitnet-3M-TQ1_0.gguf", "fixtures/golden/bitnet-3M-TQ1_0.logits");
    /* (bitnet-3M: the engine's I2_S path does not match bitnet.cpp on the random-weight bitnet-tiny yet,
     * with bitnet.cpp's own file as much as with ours; the tensors are checked identical above.) */
    check_logits(tmp_path("i2s-3M.gguf"), "fixtures/real/bitnet-3M-I2_S.gguf", "fixtures/golden/bitnet-3M-I2_S.logits");

    check_cli_hybrid_and_dry_run();
    check_ternarization();
    check_imatrix();
    check_synthetic();
    check_errors();
    check_write_failure();
    check_interrupt();
    const int rc = t_summary();
    if (rc == 0) {
        /* The outputs are a few MB each: keep them only when something failed. */
        DIR *d = opendir(t_tmpdir());
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (e->d_name[0] != '.') unlink(tmp_path(e->d_name));
        if (d) closedir(d);
        rmdir(t_tmpdir());
    }
    return rc;
}
