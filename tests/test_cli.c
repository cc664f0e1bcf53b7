/* llmpi-run as a user meets it: --info on every fixture, bad input (one-line error, exit 1; usage
 * errors exit 2), --tokenize, greedy stdout = prompt + llama.cpp's continuation, --dump-logits,
 * Ctrl-C, and the docs/api-example.c program built against libllmpi.a. */
#include "gguf.h"
#include "harness.h"
#include "quant.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

/* Runs llmpi-run with args inside a brace group, so redirections in args (2>/dev/null) apply
 * before t_run's own trailing 2>&1. */
static char *run(const char *args, int *status) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "{ %s %s; }", t_tool("llmpi-run"), args);
    char *out;
    *status = t_run(cmd, &out);
    return out;
}

/* Exactly one line of output that starts with "llmpi-run: error: " and contains `want`. */
static void expect_error(const char *name, const char *args, const char *want) {
    t_begin("cli error: %s", name);
    int st;
    char *out = run(args, &st);
    CHECK(st == 1, "exit status %d, want 1; output: %s", st, out);
    const char *e = strstr(out, "llmpi-run: error: ");
    CHECK(e != NULL, "no 'llmpi-run: error:' line in: %s", out);
    CHECK(strstr(out, want) != NULL, "message lacks '%s': %s", want, out);
    int lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    CHECK(lines == 1, "expected a one-line error, got %d lines: %s", lines, out);
    free(out);
    t_end();
}

static void check_info_all_fixtures(void) {
    const char *dirs[] = { "fixtures/real", "fixtures/synth", "fixtures/vocab", "fixtures/dequant" };
    int n_files = 0;
    for (int d = 0; d < 4; d++) {
        DIR *dir = opendir(t_shared(dirs[d]));
        if (!dir) continue;
        struct dirent *e;
        while ((e = readdir(dir))) {
            size_t len = strlen(e->d_name);
            if (len < 5 || strcmp(e->d_name + len - 5, ".gguf")) continue;
            char rel[512], path[1024], args[1200];
            snprintf(rel, sizeof rel, "%s/%s", dirs[d], e->d_name);
            snprintf(path, sizeof path, "%s", t_shared(rel));
            t_begin("--info %s", rel);
            gguf_file f;
            gguf_error ge;
            CHECK(gguf_open(path, true, &f, &ge) == GGUF_OK, "parse: %s", ge.msg);
            snprintf(args, sizeof args, "'%s' --info", path);
            int st;
            char *out = run(args, &st);
            CHECK(st == 0, "exit %d: %.300s", st, out);
            char want[64];
            snprintf(want, sizeof want, "tensors: %llu", (unsigned long long)f.n_tensors);
            CHECK(strstr(out, want) != NULL, "output lacks '%s'", want);
            snprintf(want, sizeof want, "kv: %llu", (unsigned long long)f.n_kv);
            CHECK(strstr(out, want) != NULL, "output lacks '%s'", want);
            if (f.n_tensors > 0) CHECK(strstr(out, f.tensors[f.n_tensors - 1].name) != NULL, "last tensor not listed");
            gguf_free(&f);
            free(out);
            t_end();
            n_files++;
        }
        closedir(dir);
    }
    t_begin("--info covered the fixtures");
    CHECK(n_files >= 60, "only %d fixture files found", n_files);
    t_end();
}

/* Writes a copy of src through the GGUF writer, optionally dropping a tensor, reshaping one (same
 * byte size), dropping keys with a prefix, or overriding one tensor's type. */
static bool write_variant(const char *src, const char *dst, const char *drop_tensor, const char *reshape_tensor,
                          const char *drop_key_prefix) {
    gguf_file f;
    gguf_error ge;
    if (gguf_open(src, true, &f, &ge) != GGUF_OK) { CHECK(0, "%s", ge.msg); return false; }
    gguf_writer *w = gguf_writer_create();
    for (uint64_t i = 0; i < f.n_kv; i++) {
        if (drop_key_prefix && f.kv[i].key.len >= strlen(drop_key_prefix) &&
            memcmp(f.kv[i].key.ptr, drop_key_prefix, strlen(drop_key_prefix)) == 0) continue;
        gguf_writer_copy_kv(w, &f.kv[i]);
    }
    const void **data = calloc(f.n_tensors, sizeof *data);
    int n = 0;
    for (uint64_t i = 0; i < f.n_tensors; i++) {
        const gguf_tensor *t = &f.tensors[i];
        if (drop_tensor && !strcmp(t->name, drop_tensor)) continue;
        int64_t ne[4] = { t->ne[0], t->ne[1], t->ne[2], t->ne[3] };
        if (reshape_tensor && !strcmp(t->name, reshape_tensor)) { ne[0] /= 2; ne[1] *= 2; }
        gguf_writer_add_tensor(w, t->name, t->type, t->n_dims < 2 ? 2 : t->n_dims, ne);
        data[n++] = t->data;
    }
    FILE *fp = fopen(dst, "wb");
    bool ok = fp && gguf_writer_write_all(w, fp, data, &ge) == GGUF_OK;
    if (fp) ok = fclose(fp) == 0 && ok;
    CHECK(ok, "writing %s failed: %s", dst, ge.msg);
    gguf_writer_free(w);
    free(data);
    gguf_free(&f);
    return ok;
}

static void check_bad_input(void) {
    char stories[600]; /* t_shared returns a rotating buffer: keep our own copy */
    snprintf(stories, sizeof stories, "%s", t_shared("fixtures/real/stories260K.gguf"));
    const char *tmp = t_tmpdir();
    char args[4096], p1[600], p2[600], p3[600], p4[600];

    expect_error("missing model file", "/nonexistent/model.gguf -p hi", "/nonexistent/model.gguf");
    snprintf(p1, sizeof p1, "%s/garbage.gguf", tmp);
    FILE *f = fopen(p1, "wb");
    if (f) { fputs("this is not a gguf file at all, just text", f); fclose(f); }
    snprintf(args, sizeof args, "'%s' -p hi", p1);
    expect_error("not a GGUF file", args, p1);
    snprintf(args, sizeof args, "'%s' --info", p1);
    expect_error("--info on a bad file", args, "garbage.gguf: ");

    snprintf(args, sizeof args, "'%s' -p hi -n -3", stories);
    expect_error("negative -n", args, "-n");
    snprintf(args, sizeof args, "'%s' -p hi -t abc", stories);
    expect_error("non-numeric -t", args, "'abc'");
    snprintf(args, sizeof args, "'%s' -p hi --temp warm", stories);
    expect_error("non-numeric --temp", args, "'warm'");
    snprintf(args, sizeof args, "'%s' -p ''", stories);
    expect_error("empty prompt", args, "empty prompt");
    snprintf(args, sizeof args, "'%s' -c 8 -n 4 -p 'Once upon a time there was a very long prompt that does not fit'",
             stories);
    expect_error("prompt longer than context", args, "does not fit");
    snprintf(args, sizeof args, "'%s' -p hi -f /nonexistent/prompt.txt", stories);
    expect_error("-p with -f", args, "cannot be combined");
    snprintf(args, sizeof args, "'%s' -f /nonexistent/prompt.txt", stories);
    expect_error("missing prompt file", args, "/nonexistent/prompt.txt");
    snprintf(args, sizeof args, "'%s' --tokens 1,x,3", stories);
    expect_error("bad --tokens", args, "token list");
    snprintf(args, sizeof args, "'%s' --tokens 1,99999 -n 1", stories);
    expect_error("token id out of range", args, "outside the vocabulary");

    snprintf(p2, sizeof p2, "%s/missing-tensor.gguf", tmp);
    if (write_variant(stories, p2, "blk.1.ffn_up.weight", NULL, NULL)) {
        snprintf(args, sizeof args, "'%s' -p hi", p2);
        expect_error("missing tensor", args, "missing tensor 'blk.1.ffn_up.weight'");
    }
    snprintf(p3, sizeof p3, "%s/wrong-shape.gguf", tmp);
    if (write_variant(stories, p3, NULL, "blk.0.attn_q.weight", NULL)) {
        snprintf(args, sizeof args, "'%s' -p hi", p3);
        expect_error("wrong tensor shape", args, "tensor 'blk.0.attn_q.weight' has shape");
    }
    snprintf(p4, sizeof p4, "%s/no-tokenizer.gguf", tmp);
    if (write_variant(stories, p4, NULL, NULL, "tokenizer.")) {
        snprintf(args, sizeof args, "'%s' -p hi -n 2", p4);
        expect_error("tokenizer-less model with a prompt", args, "no tokenizer");
        snprintf(args, sizeof args, "'%s' --tokenize hi", p4);
        expect_error("tokenizer-less model with --tokenize", args, "no tokenizer");
        t_begin("tokenizer-less model runs from --tokens");
        int st;
        snprintf(args, sizeof args, "'%s' --tokens 1,403,407 -n 3 --temp 0", p4);
        char *out = run(args, &st);
        CHECK(st == 0, "exit %d: %s", st, out);
        free(out);
        t_end();
    }
    /* Unsupported tensor type: a llama-tiny copy whose attn_q claims IQ2_XXS (same 256-element rows). */
    t_begin("cli error: unsupported tensor type");
    {
        size_t len;
        uint8_t *buf = t_read_file(t_shared("fixtures/synth/llama-tiny-Q4_K-pure.gguf"), &len);
        gguf_file gf;
        gguf_error ge;
        if (buf && gguf_parse(buf, len, &gf, &ge) == GGUF_OK) {
            const gguf_tensor *t = gguf_find_tensor(&gf, "blk.0.attn_q.weight");
            /* The type field follows name, n_dims, ne[] in the tensor info; find it by searching the
             * info record for the name and stepping over the fixed-size fields. */
            const uint8_t *name = memmem(buf, len, "blk.0.attn_q.weight", strlen("blk.0.attn_q.weight"));
            if (t && name) {
                uint8_t *type_field = (uint8_t *)name + strlen("blk.0.attn_q.weight") + 4 + 8 * t->n_dims;
                uint32_t iq2 = 16;
                memcpy(type_field, &iq2, 4);
                char p5[600];
                snprintf(p5, sizeof p5, "%s/unsupported-type.gguf", tmp);
                FILE *o = fopen(p5, "wb");
                if (o) { fwrite(buf, 1, len, o); fclose(o); }
                snprintf(args, sizeof args, "'%s' -p hi", p5);
                int st;
                char *out = run(args, &st);
                CHECK(st == 1 && strstr(out, "IQ2_XXS") && strstr(out, "llmpi-run: error: "), "exit %d: %s", st, out);
                free(out);
            } else CHECK(0, "tensor not found");
            gguf_free(&gf);
        } else CHECK(0, "cannot parse llama-tiny-Q4_K-pure");
        free(buf);
    }
    t_end();

    t_begin("unknown option prints usage and exits 2");
    int st;
    snprintf(args, sizeof args, "'%s' --frobnicate", stories);
    char *out = run(args, &st);
    CHECK(st == 2, "exit %d", st);
    CHECK(strstr(out, "usage: llmpi-run") != NULL, "no usage: %s", out);
    free(out);
    out = run("", &st);
    CHECK(st == 2, "no arguments: exit %d", st);
    free(out);
    t_end();
}

static void check_generation(void) {
    char stories[600];
    snprintf(stories, sizeof stories, "%s", t_shared("fixtures/real/stories260K.gguf"));
    char args[4096];
    int st;

    t_begin("--tokenize matches the golden prompt tokens");
    snprintf(args, sizeof args, "'%s' --tokenize 'Once upon a time'", stories);
    char *out = run(args, &st);
    CHECK(st == 0 && strncmp(out, "1,", 2) == 0, "exit %d: %s (want BOS 1 first)", st, out);
    size_t glen;
    char *gen = t_read_file(t_shared("fixtures/golden/stories260K.gen.txt"), &glen);
    free(out);
    t_end();

    t_begin("--tokenize works on a vocab-only file");
    snprintf(args, sizeof args, "'%s' --tokenize 'Hello world'", t_shared("fixtures/vocab/ggml-vocab-llama-spm.gguf"));
    out = run(args, &st);
    CHECK(st == 0 && strncmp(out, "1,", 2) == 0, "exit %d: %s", st, out);
    free(out);
    t_end();

    t_begin("greedy stdout = prompt + llama.cpp's 200-token continuation");
    snprintf(args, sizeof args, "'%s' -p 'Once upon a time' -n 200 --temp 0 --ignore-eos -t 2 2>/dev/null", stories);
    out = run(args, &st);
    CHECK(st == 0, "exit %d", st);
    if (gen) {
        const char *text = strchr(gen, '\n'); /* line 1 is the ids; the text follows */
        text = text ? text + 1 : gen;
        size_t tl = strlen(text);
        char *want = malloc(tl + 64);
        snprintf(want, tl + 64, "Once upon a time%s", text);
        size_t wl = strlen(want);
        while (wl && want[wl - 1] == '\n') want[--wl] = 0;
        size_t ol = strlen(out);
        while (ol && out[ol - 1] == '\n') out[--ol] = 0;
        CHECK(strcmp(out, want) == 0, "stdout differs:\n got: %.200s\nwant: %.200s", out, want);
        free(want);
    }
    free(out);
    t_end();

    t_begin("stats on stderr");
    snprintf(args, sizeof args, "{ %s '%s' -p 'Once upon a time' -n 8 --temp 0 2>&1 >/dev/null; }", t_tool("llmpi-run"), stories);
    st = t_run(args, &out);
    CHECK(st == 0, "exit %d", st);
    CHECK(strstr(out, "prompt:") && strstr(out, "generated:") && strstr(out, "peak RSS") && strstr(out, "load:"),
          "stats missing: %s", out);
    free(out);
    t_end();

    t_begin("--dump-logits writes LPLOGIT1 for every prompt position");
    char lp[600];
    snprintf(lp, sizeof lp, "%s/dump.logits", t_tmpdir());
    snprintf(args, sizeof args, "'%s' -p 'Once upon a time' -n 0 --dump-logits '%s' --no-mmap", stories, lp);
    out = run(args, &st);
    CHECK(st == 0, "exit %d: %s", st, out);
    free(out);
    size_t len;
    uint8_t *d = t_read_file(lp, &len);
    if (d) {
        uint32_t nt = 0, nv = 0;
        memcpy(&nt, d + 8, 4);
        memcpy(&nv, d + 12, 4);
        CHECK(memcmp(d, "LPLOGIT1", 8) == 0 && nt == 5 && nv == 512 && len == 16 + 4 * nt + 4 * (size_t)nt * nv,
              "bad header: n_tokens %u n_vocab %u len %zu", nt, nv, len);
        free(d);
    }
    t_end();

    t_begin("--dump-logits then generation: same text as a plain run");
    snprintf(args, sizeof args, "'%s' -p 'Once upon a time' -n 30 --temp 0 2>/dev/null", stories);
    char *plain = run(args, &st);
    snprintf(args, sizeof args, "'%s' -p 'Once upon a time' -n 30 --temp 0 --dump-logits '%s' 2>/dev/null", stories, lp);
    char *dumped = run(args, &st);
    CHECK(st == 0 && strcmp(plain, dumped) == 0, "exit %d:\n%s\nvs\n%s", st, plain, dumped);
    free(plain);
    free(dumped);
    t_end();

    t_begin("same seed, same text (sampling)");
    snprintf(args, sizeof args, "'%s' -p 'Once upon a time' -n 40 --temp 0.9 --seed 7 2>/dev/null", stories);
    char *a = run(args, &st);
    char *b = run(args, &st);
    CHECK(strcmp(a, b) == 0, "two runs with seed 7 differ");
    snprintf(args, sizeof args, "'%s' -p 'Once upon a time' -n 40 --temp 0.9 --seed 8 2>/dev/null", stories);
    char *c = run(args, &st);
    CHECK(strcmp(a, c) != 0, "seed 7 and 8 gave the same 40 tokens");
    free(a); free(b); free(c);
    t_end();

    t_begin("Ctrl-C stops generation cleanly and prints stats");
    snprintf(args, sizeof args,
             "sh -c \"%s '%s' -p 'Once upon a time' -n 100000 -c 100100 --ignore-eos --temp 0 >/dev/null & "
             "pid=\\$!; sleep 2; kill -INT \\$pid; wait \\$pid; echo exit=\\$?\"",
             t_tool("llmpi-run"), stories);
    out = NULL;
    st = t_run(args, &out);
    CHECK(strstr(out, "interrupted") != NULL, "no interrupted note: %s", out);
    CHECK(strstr(out, "exit=0") != NULL, "exit status not 0: %s", out);
    free(out);
    t_end();

    t_begin("--power with a fake hwmon sensor: energy metrics on stderr and --stats-json");
    {
        char root[600], json[700];
        snprintf(root, sizeof root, "%s", t_fake_hwmon("sysfs", "ina226", 4.5));
        snprintf(json, sizeof json, "%s/stats.json", t_tmpdir());
        snprintf(args, sizeof args,
                 "{ LLMPI_SYSFS_ROOT='%s' %s '%s' -p 'Once upon a time' -n 400 -c 512 --ignore-eos --temp 0 "
                 "--power hwmon --power-rate 50 --stats-json '%s' >/dev/null; }",
                 root, t_tool("llmpi-run"), stories, json);
        st = t_run(args, &out);
        CHECK(st == 0, "exit %d: %s", st, out);
        CHECK(strstr(out, "hwmon:ina226") && strstr(out, "TPJ"), "no energy lines: %s", out);
        free(out);
        size_t jl;
        char *js = t_read_file(json, &jl);
        const char *keys[] = { "prompt_tokens", "prompt_tps", "gen_tokens", "gen_tps", "power_source", "energy_j",
                               "avg_w", "static_w", "dynamic_w", "j_per_token", "tpj", "tpj_dynamic", "wbl",
                               "battery_wh", "tokens_per_word", "max_temp_c", "throttled" };
        for (size_t k = 0; js && k < sizeof keys / sizeof keys[0]; k++) {
            char q[64];
            snprintf(q, sizeof q, "\"%s\":", keys[k]);
            CHECK(strstr(js, q) != NULL, "stats JSON lacks %s: %s", keys[k], js);
        }
        CHECK(js && strstr(js, "\"avg_w\": 4.5,"), "average power is not the sensor's 4.5 W: %s", js ? js : "(none)");
        CHECK(js && strstr(js, "\"gen_tokens\": 400,"), "gen_tokens: %s", js ? js : "(none)");
        free(js);
    }
    t_end();

    t_begin("--power none: energy reported as unavailable, not invented");
    snprintf(args, sizeof args, "'%s' -p 'Once upon a time' -n 4 --power none 2>&1 >/dev/null", stories);
    out = run(args, &st);
    CHECK(st == 0 && strstr(out, "n/a") && !strstr(out, "TPJ 0"), "exit %d: %s", st, out);
    free(out);
    t_end();

    t_begin("docs/api-example.c runs against libllmpi.a");
    const char *bindir = getenv("LLMPI_BINDIR");
    char example[600];
    /* The example is built next to the test binaries: build/api-example or $BUILD/api-example. */
    snprintf(example, sizeof example, "%s", bindir && strcmp(bindir, ".") ? bindir : "build");
    char *slash = strrchr(example, '/');
    if (slash && !strcmp(slash, "/bin")) *slash = 0;
    const char *run_prefix = getenv("LLMPI_RUN");
    snprintf(args, sizeof args, "%s %s/api-example '%s' 'Once upon a time' 2>&1", run_prefix ? run_prefix : "", example,
             stories);
    out = NULL;
    st = t_run(args, &out);
    CHECK(st == 0 && strncmp(out, "Once upon a time", 16) == 0 && strlen(out) > 40, "exit %d: %s", st, out);
    free(out);
    t_end();
    free(gen);
}

int main(void) {
    check_info_all_fixtures();
    check_bad_input();
    check_generation();
    return t_summary();
}
