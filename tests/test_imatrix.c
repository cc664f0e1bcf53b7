/* Importance matrix (tools/imatrix.c) and llmpi-perplexity --imatrix-out:
 *   1. accumulation on hand-made rows (exact sums), the name rule, sticky errors;
 *   2. write -> read round trip (values, counts, importance, KVs, llama.cpp's tensor layout);
 *   3. the legacy .dat reader and malformed files;
 *   4. llmpi-perplexity --imatrix-out on stories260K: one in_sum2/counts pair per blk.* 2-D weight,
 *      counts = tokens evaluated, finite non-negative values, equal statistics for weights sharing an
 *      input, and layer 0's attention input recomputed here from the embeddings; output.weight only
 *      with --process-output (llama-tiny), never the tied token_embd (bitnet-3M); CLI error paths.
 * The comparison with llama-imatrix itself is in docs/bench.md (the reference build is not in CI). */
#include "gguf.h"
#include "harness.h"
#include "imatrix.h"
#include "llmpi.h"
#include "quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *tmp_path(const char *name) {
    static char buf[4][600];
    static int slot;
    char *b = buf[slot++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", t_tmpdir(), name);
    return b;
}

static bool write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    const bool ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* ---- 1. accumulation ---------------------------------------------------------------------------- */
static void test_accumulation(void) {
    t_begin("accumulation: hand-made rows");
    imatrix_collector *c = imatrix_collector_create(4, false);
    CHECK(c != NULL, "create failed");
    if (!c) { t_end(); return; }
    /* Two calls for the same weight: 3 rows then 2 rows of 3 columns. */
    const float a[3 * 3] = { 1, -2, 0.5f, 3, 0, -1, -1, 4, 2 };
    const float b[2 * 3] = { 2, 2, 2, 0, -3, 0.25f };
    CHECK(imatrix_collector_add(c, "blk.0.attn_q.weight", a, 3, 3), "add a: %s", imatrix_collector_error(c));
    CHECK(imatrix_collector_add(c, "blk.0.attn_q.weight", b, 2, 3), "add b: %s", imatrix_collector_error(c));
    /* By hand: column 0: 1+9+1+4+0 = 15; column 1: 4+0+16+4+9 = 33; column 2: .25+1+4+4+.0625 = 9.3125 */
    const double want[3] = { 15.0, 33.0, 9.3125 };
    const double *sum2 = NULL;
    int64_t n_in = 0, count = 0;
    CHECK(imatrix_collector_get(c, "blk.0.attn_q.weight", &sum2, &n_in, &count), "entry missing");
    CHECK(n_in == 3 && count == 5, "n_in %lld count %lld, want 3 and 5", (long long)n_in, (long long)count);
    for (int j = 0; sum2 && j < 3; j++) CHECK(sum2[j] == want[j], "column %d: %.9g, want %.9g", j, sum2[j], want[j]);
    CHECK(imatrix_collector_chunk_count(c) == 1, "chunk_count %d, want 5/4 = 1", (int)imatrix_collector_chunk_count(c));

    /* The observer wrapper adds the same way. */
    imatrix_collector_observe("blk.1.ffn_down.weight", b, 2, 3, c);
    CHECK(imatrix_collector_get(c, "blk.1.ffn_down.weight", &sum2, &n_in, &count) && count == 2 && sum2[1] == 13.0,
          "observer did not accumulate");
    /* Names llama-imatrix skips: the embedding / tied output, and output.weight without process_output. */
    CHECK(imatrix_collector_add(c, "token_embd.weight", a, 3, 3), "ignored names must not fail");
    CHECK(imatrix_collector_add(c, "output.weight", a, 3, 3), "ignored names must not fail");
    CHECK(!imatrix_collector_get(c, "token_embd.weight", NULL, NULL, NULL), "token_embd.weight collected");
    CHECK(!imatrix_collector_get(c, "output.weight", NULL, NULL, NULL), "output.weight collected without process_output");
    CHECK(imatrix_collector_n_entries(c) == 2, "%zu entries, want 2", imatrix_collector_n_entries(c));
    CHECK(imatrix_collector_add(c, "blk.0.attn_q.weight", a, 0, 3) && imatrix_collector_get(c, "blk.0.attn_q.weight", NULL, NULL, &count) &&
          count == 5, "zero rows changed the count");
    CHECK(imatrix_collector_error(c) == NULL, "unexpected error %s", imatrix_collector_error(c));

    /* A different width for a known name is an error, and errors are sticky. */
    CHECK(!imatrix_collector_add(c, "blk.0.attn_q.weight", a, 1, 2), "width change accepted");
    const char *e = imatrix_collector_error(c);
    CHECK(e && strstr(e, "blk.0.attn_q.weight"), "error does not name the weight: %s", e ? e : "(none)");
    CHECK(!imatrix_collector_add(c, "blk.2.attn_q.weight", a, 1, 3), "add after an error succeeded");
    char err[IMATRIX_ERR_MAX];
    CHECK(!imatrix_collector_save(c, tmp_path("never.gguf"), err, sizeof err), "save after an error succeeded");
    FILE *f = fopen(tmp_path("never.gguf"), "rb");
    CHECK(f == NULL, "a file was written despite the error");
    if (f) fclose(f);
    imatrix_collector_free(c);

    c = imatrix_collector_create(8, true);
    CHECK(c && imatrix_collector_wants(c, "output.weight") && imatrix_collector_wants(c, "blk.3.ffn_up.weight") &&
          !imatrix_collector_wants(c, "token_embd.weight") && !imatrix_collector_wants(c, "output_norm.weight"),
          "process_output name rule");
    const float inf_row[2] = { 1.0f, INFINITY };
    CHECK(c && !imatrix_collector_add(c, "output.weight", inf_row, 1, 2), "non-finite input accepted");
    CHECK(c && imatrix_collector_error(c) && strstr(imatrix_collector_error(c), "non-finite"), "non-finite error message");
    imatrix_collector_free(c);
    CHECK(imatrix_collector_create(0, false) == NULL, "chunk_size 0 accepted");
    t_end();
}

/* ---- 2. round trip ------------------------------------------------------------------------------ */
static void test_round_trip(void) {
    t_begin("write -> read round trip");
    enum { N_LAYERS = 40, N_KINDS = 3 };   /* 120 entries: the hash table grows twice */
    static const char *const kinds[N_KINDS] = { "attn_q", "ffn_down", "ffn_up" };
    static const int64_t widths[N_KINDS] = { 24, 40, 24 };
    imatrix_collector *c = imatrix_collector_create(16, false);
    CHECK(c && imatrix_collector_add_dataset(c, "first.txt") && imatrix_collector_add_dataset(c, "second.txt"), "create");
    if (!c) { t_end(); return; }
    uint64_t rng = 42;
    float rows[5 * 40];
    char name[64];
    for (int l = N_LAYERS - 1; l >= 0; l--)   /* inserted in reverse: the file must be sorted anyway */
        for (int k = 0; k < N_KINDS; k++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, kinds[k]);
            const int n_rows = 1 + (l + k) % 5;   /* counts differ per entry; max is 5 rows x 8 calls = 40 */
            for (int call = 0; call < 8; call++) {
                for (int i = 0; i < n_rows * widths[k]; i++) rows[i] = t_rand_normal(&rng) * (float)(1 + k);
                imatrix_collector_add(c, name, rows, n_rows, widths[k]);
            }
        }
    CHECK(imatrix_collector_error(c) == NULL, "%s", imatrix_collector_error(c));
    CHECK(imatrix_collector_n_entries(c) == N_LAYERS * N_KINDS, "%zu entries", imatrix_collector_n_entries(c));
    const char *path = tmp_path("round.imatrix.gguf");
    char err[IMATRIX_ERR_MAX];
    CHECK(imatrix_collector_save(c, path, err, sizeof err), "save: %s", err);

    imatrix_data d;
    const bool loaded = imatrix_load(path, &d, err, sizeof err);
    CHECK(loaded, "load: %s", err);
    if (loaded) {
        CHECK(!d.is_legacy && d.has_metadata, "legacy %d metadata %d", d.is_legacy, d.has_metadata);
        CHECK(d.chunk_size == 16 && d.chunk_count == 40 / 16, "chunk size %d count %d", (int)d.chunk_size, (int)d.chunk_count);
        CHECK(d.n_datasets == 2 && !strcmp(d.datasets[0], "first.txt") && !strcmp(d.datasets[1], "second.txt"), "datasets");
        CHECK(d.n_entries == N_LAYERS * N_KINDS, "%zu entries read", d.n_entries);
        for (size_t i = 1; i < d.n_entries; i++) CHECK(strcmp(d.entries[i - 1].name, d.entries[i].name) < 0, "not sorted at %zu", i);
        int bad = 0;
        for (int l = 0; l < N_LAYERS; l++)
            for (int k = 0; k < N_KINDS; k++) {
                snprintf(name, sizeof name, "blk.%d.%s.weight", l, kinds[k]);
                const imatrix_entry_data *e = imatrix_data_find(&d, name);
                const double *sum2 = NULL;
                int64_t n_in = 0, count = 0;
                imatrix_collector_get(c, name, &sum2, &n_in, &count);
                if (!e || !sum2 || e->n_mat != 1 || e->n_per_mat != n_in || e->counts[0] != count) { bad++; continue; }
                for (int64_t j = 0; j < n_in; j++) {
                    const float s = (float)sum2[j];
                    if (e->sums[j] != s || e->importance[j] != s / (float)count) bad++;
                }
            }
        CHECK(bad == 0, "%d values or entries differ after the round trip", bad);
        CHECK(imatrix_data_find(&d, "blk.99.attn_q.weight") == NULL, "found a missing entry");
        imatrix_data_free(&d);
    }

    /* llama.cpp's layout: KVs, and for each weight (sorted) NAME.in_sum2 F32 [n] then NAME.counts F32 [1]. */
    gguf_file g;
    gguf_error ge;
    const bool opened = gguf_open(path, false, &g, &ge) == GGUF_OK;
    CHECK(opened, "gguf_open: %s", ge.msg);
    if (opened) {
        gguf_str s;
        CHECK(gguf_get_str(&g, "general.type", &s) == GGUF_OK && gguf_str_eq(s, "imatrix"), "general.type");
        uint32_t u = 0;
        CHECK(gguf_get_u32(&g, "imatrix.chunk_count", &u) == GGUF_OK && u == 2, "imatrix.chunk_count must be u32 2");
        CHECK(gguf_get_u32(&g, "imatrix.chunk_size", &u) == GGUF_OK && u == 16, "imatrix.chunk_size must be u32 16");
        const gguf_value *arr = NULL;
        CHECK(gguf_get_arr(&g, "imatrix.datasets", &arr) == GGUF_OK && arr->arr.elem_type == GGUF_TYPE_STRING, "datasets array");
        CHECK(g.n_tensors == 2 * N_LAYERS * N_KINDS, "%llu tensors", (unsigned long long)g.n_tensors);
        for (uint64_t i = 0; i + 1 < g.n_tensors; i += 2) {
            const gguf_tensor *a = &g.tensors[i], *b = &g.tensors[i + 1];
            const size_t la = strlen(a->name), lb = strlen(b->name);
            const bool pair = la > 8 && lb > 7 && !strcmp(a->name + la - 8, ".in_sum2") && !strcmp(b->name + lb - 7, ".counts") &&
                              la - 8 == lb - 7 && !strncmp(a->name, b->name, la - 8);
            CHECK(pair, "tensors %llu/%llu are not a pair: %s %s", (unsigned long long)i, (unsigned long long)i + 1, a->name, b->name);
            CHECK(a->type == LLMPI_TYPE_F32 && b->type == LLMPI_TYPE_F32 && a->n_dims == 1 && b->n_dims == 1 && b->ne[0] == 1,
                  "%s: types/shapes", a->name);
            if (i >= 2) CHECK(strcmp(g.tensors[i - 2].name, a->name) < 0, "tensor order at %s", a->name);
        }
        gguf_free(&g);
    }
    imatrix_collector_free(c);

    /* An empty collector has nothing to save; a name too long for "NAME.in_sum2" is refused. */
    c = imatrix_collector_create(4, false);
    CHECK(c && !imatrix_collector_save(c, tmp_path("empty.gguf"), err, sizeof err) && strstr(err, "no activations"),
          "empty save: %s", err);
    const float one = 1.0f;
    imatrix_collector_add(c, "blk.0.a_very_long_weight_name_that_is_long_enough_to_overflow.weight", &one, 1, 1);
    CHECK(c && !imatrix_collector_save(c, tmp_path("long.gguf"), err, sizeof err) && strstr(err, "shorter than"), "long name: %s", err);
    imatrix_collector_free(c);
    t_end();
}

/* ---- 3. legacy and malformed files -------------------------------------------------------------- */
typedef struct { uint8_t b[1024]; size_t n; } byte_out;
static void put(byte_out *o, const void *p, size_t n) { memcpy(o->b + o->n, p, n); o->n += n; }
static void put_i32(byte_out *o, int32_t v) { put(o, &v, 4); }

static void test_legacy_and_bad_files(void) {
    t_begin("legacy .dat reader, malformed files");
    /* Two entries; values are the stored (mean * ncall); trailer: 7 chunks, dataset "data.txt". */
    byte_out o = { .n = 0 };
    put_i32(&o, 2);
    put_i32(&o, 19); put(&o, "blk.0.attn_k.weight", 19); put_i32(&o, 4); put_i32(&o, 3);
    const float v0[3] = { 8, 2, 0.5f };
    put(&o, v0, sizeof v0);
    put_i32(&o, 13); put(&o, "output.weight", 13); put_i32(&o, 0); put_i32(&o, 2);
    const float v1[2] = { 3, 5 };
    put(&o, v1, sizeof v1);
    put_i32(&o, 7); put_i32(&o, 8); put(&o, "data.txt", 8);
    const char *path = tmp_path("legacy.dat");
    CHECK(write_bytes(path, o.b, o.n), "write");
    imatrix_data d;
    char err[IMATRIX_ERR_MAX];
    const bool ok = imatrix_load(path, &d, err, sizeof err);
    CHECK(ok, "load: %s", err);
    if (ok) {
        CHECK(d.is_legacy && !d.has_metadata && d.chunk_count == 7 && d.chunk_size == 0, "header fields");
        CHECK(d.n_datasets == 1 && !strcmp(d.datasets[0], "data.txt"), "dataset");
        const imatrix_entry_data *k = imatrix_data_find(&d, "blk.0.attn_k.weight"), *out = imatrix_data_find(&d, "output.weight");
        CHECK(k && k->n_per_mat == 3 && k->counts[0] == 4 && k->importance[0] == 2.0f && k->importance[1] == 0.5f &&
              k->importance[2] == 0.125f, "attn_k importance = stored / ncall");
        CHECK(out && out->n_per_mat == 2 && out->importance[0] == 3.0f && out->importance[1] == 5.0f,
              "ncall 0: importance = stored values (llama-quantize)");
        imatrix_data_free(&d);
    }
    /* Without the optional trailer. */
    CHECK(write_bytes(path, o.b, o.n - 16), "write");
    CHECK(imatrix_load(path, &d, err, sizeof err) && d.chunk_count == 0 && d.n_datasets == 0, "no trailer: %s", err);
    imatrix_data_free(&d);
    /* Truncated in the values, and an absurd name length. */
    CHECK(write_bytes(path, o.b, 40), "write");
    CHECK(!imatrix_load(path, &d, err, sizeof err) && strstr(err, path), "truncated legacy file accepted");
    CHECK(d.entries == NULL && d.n_entries == 0, "failed load left data");
    int32_t bad_len[2] = { 1, 1 << 30 };
    CHECK(write_bytes(path, bad_len, sizeof bad_len), "write");
    CHECK(!imatrix_load(path, &d, err, sizeof err), "huge name length accepted");
    CHECK(!imatrix_load(tmp_path("does-not-exist.gguf"), &d, err, sizeof err) && strstr(err, "does-not-exist"), "missing file");

    /* GGUF: an in_sum2 without its counts; a zero count (importance 1, as llama-quantize); NaN. */
    for (int variant = 0; variant < 3; variant++) {
        gguf_writer *w = gguf_writer_create();
        gguf_writer_set_str(w, "general.type", "imatrix");
        const int64_t ne2[1] = { 2 }, ne1[1] = { 1 };
        gguf_writer_add_tensor(w, "blk.0.ffn_up.weight.in_sum2", LLMPI_TYPE_F32, 1, ne2);
        if (variant > 0) gguf_writer_add_tensor(w, "blk.0.ffn_up.weight.counts", LLMPI_TYPE_F32, 1, ne1);
        const float sums[2] = { 4.0f, variant == 2 ? NAN : 6.0f }, count = variant == 2 ? 1.0f : 0.0f;
        const void *data[2] = { sums, &count };
        const char *gp = tmp_path("bad.gguf");
        FILE *f = fopen(gp, "wb");
        gguf_error ge;
        CHECK(f && gguf_writer_write_all(w, f, data, &ge) == GGUF_OK, "write variant %d", variant);
        if (f) fclose(f);
        gguf_writer_free(w);
        const bool loaded = imatrix_load(gp, &d, err, sizeof err);
        if (variant == 0) CHECK(!loaded && strstr(err, "mismatched"), "unpaired in_sum2: %s", loaded ? "accepted" : err);
        if (variant == 1) {
            CHECK(loaded && !d.has_metadata && d.n_entries == 1 && d.entries[0].counts[0] == 0 && d.entries[0].importance[0] == 1.0f &&
                  d.entries[0].importance[1] == 1.0f, "zero count: %s", loaded ? "wrong values" : err);
            imatrix_data_free(&d);
        }
        if (variant == 2) CHECK(!loaded && strstr(err, "non-finite"), "NaN: %s", loaded ? "accepted" : err);
    }
    t_end();
}

/* ---- 4. llmpi-perplexity --imatrix-out ---------------------------------------------------------- */
enum { CLI_CTX = 16, CLI_CHUNKS = 3 };

/* Layer 0's attention input recomputed from the file: rmsnorm(token_embd[tok]) * attn_norm over every
 * token of the evaluated chunks (BOS first when the model adds it), sum of squares per column. */
static bool expected_attn0(const char *model_path, const char *text_path, double *want, int64_t n_embd) {
    gguf_file g;
    gguf_error ge;
    if (gguf_open(model_path, false, &g, &ge) != GGUF_OK) return false;
    const gguf_tensor *emb = gguf_find_tensor(&g, "token_embd.weight"), *norm = gguf_find_tensor(&g, "blk.0.attn_norm.weight");
    double eps = 0;
    bool ok = emb && norm && emb->type == LLMPI_TYPE_F32 && norm->type == LLMPI_TYPE_F32 && emb->ne[0] == n_embd &&
              gguf_get_float(&g, "llama.attention.layer_norm_rms_epsilon", &eps) == GGUF_OK;
    llmpi_model_params mp = llmpi_model_default_params();
    mp.vocab_only = true;
    llmpi_model *m = NULL;
    llmpi_error err;
    size_t len = 0;
    char *text = t_read_file(text_path, &len);
    int32_t *toks = text ? malloc((len + 16) * sizeof *toks) : NULL;
    if (ok && toks && llmpi_model_load(model_path, &mp, &m, &err) == LLMPI_OK) {
        const int n = llmpi_tokenize(m, text, (int)len, true, false, toks, (int)len + 16, &err);
        int32_t a[8], b[8];
        const bool adds_bos = llmpi_tokenize(m, "a", -1, true, false, a, 8, &err) > llmpi_tokenize(m, "a", -1, false, false, b, 8, &err) &&
                              a[0] == llmpi_token_bos(m);
        ok = n >= CLI_CTX * CLI_CHUNKS;
        for (int64_t j = 0; j < n_embd; j++) want[j] = 0;
        float *x = malloc((size_t)n_embd * sizeof *x), w;
        for (int c = 0; ok && x && c < CLI_CHUNKS; c++)
            for (int t = 0; t < CLI_CTX; t++) {
                const int32_t tok = t == 0 && adds_bos ? llmpi_token_bos(m) : toks[c * CLI_CTX + t];
                memcpy(x, (const uint8_t *)emb->data + (size_t)tok * (size_t)n_embd * 4, (size_t)n_embd * 4);
                double ss = 0;
                for (int64_t j = 0; j < n_embd; j++) ss += (double)x[j] * x[j];
                const double scale = 1.0 / sqrt(ss / (double)n_embd + eps);
                for (int64_t j = 0; j < n_embd; j++) {
                    memcpy(&w, (const uint8_t *)norm->data + 4 * j, 4);
                    const double y = x[j] * scale * w;
                    want[j] += y * y;
                }
            }
        free(x);
        llmpi_model_free(m);
    } else {
        ok = false;
    }
    free(toks);
    free(text);
    gguf_free(&g);
    return ok;
}

static bool same_values(const imatrix_entry_data *a, const imatrix_entry_data *b) {
    if (!a || !b || a->n_per_mat != b->n_per_mat || a->counts[0] != b->counts[0]) return false;
    for (int64_t j = 0; j < a->n_per_mat; j++)
        if (a->sums[j] != b->sums[j]) return false;
    return true;
}

static void test_cli(void) {
    char model[600], tiny[600], bitnet[600];   /* t_shared's buffers rotate: keep copies */
    snprintf(model, sizeof model, "%s", t_shared("fixtures/real/stories260K.gguf"));
    snprintf(tiny, sizeof tiny, "%s", t_shared("fixtures/synth/llama-tiny-F32.gguf"));
    snprintf(bitnet, sizeof bitnet, "%s", t_shared("fixtures/real/bitnet-3M-I2_S.gguf"));
    const char *text = "tests/data/stories.txt";
    const char *out_path = tmp_path("stories.imatrix.gguf");
    char cmd[2048], err[IMATRIX_ERR_MAX];
    char *out = NULL;

    t_begin("llmpi-perplexity --imatrix-out on stories260K");
    /* -b 5: micro-batches of 5, 3 and 8 rows; llama-imatrix would see each 16-token chunk at once, the sums are the same. */
    snprintf(cmd, sizeof cmd, "%s -m %s -f %s -c %d --chunks %d -b 5 -t 2 --imatrix-out %s", t_tool("llmpi-perplexity"),
             model, text, CLI_CTX, CLI_CHUNKS, out_path);
    int st = t_run(cmd, &out);
    CHECK(st == 0, "exit %d: %s", st, out ? out : "");
    CHECK(out && strstr(out, "Final estimate: PPL") && strstr(out, "saved the importance matrix"), "output: %s", out ? out : "");
    free(out);
    imatrix_data d;
    const bool loaded = st == 0 && imatrix_load(out_path, &d, err, sizeof err);
    CHECK(loaded, "load: %s", err);
    gguf_file g;
    gguf_error ge;
    const bool model_open = gguf_open(model, false, &g, &ge) == GGUF_OK;
    CHECK(model_open, "model: %s", ge.msg);
    if (loaded && model_open) {
        CHECK(d.has_metadata && d.chunk_size == CLI_CTX && d.chunk_count == CLI_CHUNKS, "chunk size %d count %d", (int)d.chunk_size,
              (int)d.chunk_count);
        CHECK(d.n_datasets == 1 && !strcmp(d.datasets[0], text), "dataset %s", d.n_datasets ? d.datasets[0] : "(none)");
        /* Every blk.* 2-D weight, nothing else: output.weight only with --process-output. */
        size_t n_weights = 0;
        for (uint64_t i = 0; i < g.n_tensors; i++) {
            const gguf_tensor *t = &g.tensors[i];
            if (t->n_dims != 2) continue;
            const bool wanted = strncmp(t->name, "blk.", 4) == 0;
            const imatrix_entry_data *e = imatrix_data_find(&d, t->name);
            if (!wanted) { CHECK(e == NULL, "%s must not be collected", t->name); continue; }
            n_weights++;
            CHECK(e != NULL, "no entry for %s", t->name);
            if (!e) continue;
            CHECK(e->n_mat == 1 && e->n_per_mat == t->ne[0], "%s: %lld values, the weight has %lld columns", t->name,
                  (long long)e->n_per_mat, (long long)t->ne[0]);
            CHECK(e->counts[0] == CLI_CTX * CLI_CHUNKS, "%s: count %lld, want %d tokens", t->name, (long long)e->counts[0],
                  CLI_CTX * CLI_CHUNKS);
            int bad = 0;
            double total = 0;
            for (int64_t j = 0; j < e->n_per_mat; j++) {
                if (!isfinite(e->sums[j]) || e->sums[j] < 0) bad++;
                total += e->sums[j];
            }
            CHECK(bad == 0 && total > 0, "%s: %d bad values, total %g", t->name, bad, total);
        }
        CHECK(n_weights == 35 && d.n_entries == n_weights, "%zu entries for %zu blk.* weights (stories260K has 35)", d.n_entries,
              n_weights);
        /* Weights fed the same input have identical statistics. */
        char a[64], b[64];
        for (int l = 0; l < 5; l++) {
            snprintf(a, sizeof a, "blk.%d.attn_q.weight", l);
            snprintf(b, sizeof b, "blk.%d.attn_k.weight", l);
            CHECK(same_values(imatrix_data_find(&d, a), imatrix_data_find(&d, b)), "%s and %s differ", a, b);
            snprintf(b, sizeof b, "blk.%d.attn_v.weight", l);
            CHECK(same_values(imatrix_data_find(&d, a), imatrix_data_find(&d, b)), "%s and %s differ", a, b);
            snprintf(a, sizeof a, "blk.%d.ffn_gate.weight", l);
            snprintf(b, sizeof b, "blk.%d.ffn_up.weight", l);
            CHECK(same_values(imatrix_data_find(&d, a), imatrix_data_find(&d, b)), "%s and %s differ", a, b);
        }
        /* Layer 0's attention input, recomputed independently. */
        const imatrix_entry_data *q0 = imatrix_data_find(&d, "blk.0.attn_q.weight");
        double want[64];
        const bool have_want = q0 && q0->n_per_mat == 64 && expected_attn0(model, text, want, 64);
        CHECK(have_want, "could not recompute layer 0's input");
        double worst = 0;
        for (int j = 0; have_want && j < 64; j++) {
            const double rel = fabs(q0->sums[j] - want[j]) / want[j];   /* not fmax(): aarch64 gcc 12 ICEs vectorizing it */
            if (rel > worst) worst = rel;
        }
        CHECK(worst < 1e-4, "blk.0.attn_q in_sum2 differs from the recomputed value by %.3g (relative)", worst);
        printf("# stories260K: %zu entries, layer-0 input max rel diff %.3g\n", d.n_entries, worst);
    }
    if (loaded) imatrix_data_free(&d);
    if (model_open) gguf_free(&g);
    t_end();

    t_begin("--process-output on an untied model adds output.weight");
    const char *tiny_out = tmp_path("tiny.imatrix.gguf");
    snprintf(cmd, sizeof cmd, "%s -m %s -f %s -c %d --chunks 2 -t 1 --imatrix-out %s --process-output", t_tool("llmpi-perplexity"), tiny,
             text, CLI_CTX, tiny_out);
    st = t_run(cmd, &out);
    CHECK(st == 0, "exit %d: %s", st, out ? out : "");
    free(out);
    if (st == 0 && imatrix_load(tiny_out, &d, err, sizeof err)) {
        const imatrix_entry_data *e = imatrix_data_find(&d, "output.weight");
        CHECK(e && e->n_per_mat == 256 && e->counts[0] == 2 * CLI_CTX, "output.weight entry");
        CHECK(d.n_entries == 2 * 7 + 1, "%zu entries, want 15 (2 layers x 7 + output)", d.n_entries);
        imatrix_data_free(&d);
    } else {
        CHECK(0, "load %s: %s", tiny_out, err);
    }
    t_end();

    t_begin("--process-output on a tied model (bitnet-3M): token_embd is not collected");
    const char *bitnet_out = tmp_path("bitnet.imatrix.gguf");
    snprintf(cmd, sizeof cmd, "%s -m %s -f %s -c %d --chunks 2 -t 2 --imatrix-out %s --process-output", t_tool("llmpi-perplexity"),
             bitnet, text, CLI_CTX, bitnet_out);
    st = t_run(cmd, &out);
    CHECK(st == 0, "exit %d: %s", st, out ? out : "");
    free(out);
    if (st == 0 && imatrix_load(bitnet_out, &d, err, sizeof err)) {
        size_t n_blk = 0;
        for (size_t i = 0; i < d.n_entries; i++) {
            n_blk += strncmp(d.entries[i].name, "blk.", 4) == 0;
            CHECK(d.entries[i].counts[0] == 2 * CLI_CTX, "%s: count %lld", d.entries[i].name, (long long)d.entries[i].counts[0]);
        }
        CHECK(n_blk == d.n_entries && d.n_entries == 8 * 7, "%zu entries (%zu blk.*), want 56 (8 layers x 7)", d.n_entries, n_blk);
        CHECK(imatrix_data_find(&d, "token_embd.weight") == NULL && imatrix_data_find(&d, "output.weight") == NULL, "output collected");
        const imatrix_entry_data *down = imatrix_data_find(&d, "blk.0.ffn_down.weight");
        CHECK(down && down->n_per_mat == 256, "blk.0.ffn_down.weight: want 256 columns (the FFN width)");
        imatrix_data_free(&d);
    } else {
        CHECK(0, "load %s: %s", bitnet_out, err);
    }
    t_end();

    t_begin("--imatrix-out error paths");
    snprintf(cmd, sizeof cmd, "%s -m %s --qa tests/data/qa.jsonl --imatrix-out %s", t_tool("llmpi-perplexity"), model, tmp_path("x.gguf"));
    st = t_run(cmd, &out);
    CHECK(st == 2 && out && strstr(out, "--imatrix-out"), "with --qa: exit %d: %s", st, out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "%s -m %s -f %s --process-output", t_tool("llmpi-perplexity"), model, text);
    st = t_run(cmd, &out);
    CHECK(st == 2 && out && strstr(out, "--process-output"), "--process-output alone: exit %d: %s", st, out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "%s -m %s -f %s -c %d --chunks 2 --imatrix-out %s/no/such/dir/x.gguf", t_tool("llmpi-perplexity"), model,
             text, CLI_CTX, t_tmpdir());
    st = t_run(cmd, &out);
    CHECK(st == 1 && out && strstr(out, "error") && strstr(out, "no/such/dir"), "unwritable path: exit %d: %s", st, out ? out : "");
    free(out);
    t_end();
}

int main(void) {
    test_accumulation();
    test_round_trip();
    test_legacy_and_bad_files();
    test_cli();
    return t_summary();
}
