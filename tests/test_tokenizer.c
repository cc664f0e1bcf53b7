/* Tokenizer tests: llama.cpp's tokenizer vectors for five vocabularies, the golden prompt tokens of
 * stories260K / qwen2-tiny, detokenization of the golden generations, streaming, Unicode tables and
 * hostile metadata. */
#include "harness.h"
#include "gguf.h"
#include "tokenizer.h"
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Opens a GGUF file and builds its tokenizer; NULL (with a failed check) on error. */
static llmpi_tokenizer *load_tokenizer(const char *path, double *seconds) {
    gguf_file f;
    gguf_error e;
    double t0 = now_seconds();
    if (gguf_open(path, true, &f, &e) != GGUF_OK) {
        CHECK(0, "cannot open %s: %s", path, e.msg);
        return NULL;
    }
    llmpi_tokenizer *t = NULL;
    char err[256] = "";
    int rc = tokenizer_create(&f, &t, err, sizeof err);
    gguf_free(&f);   /* the tokenizer must not depend on the file */
    if (seconds) *seconds = now_seconds() - t0;
    CHECK(rc == 0 && t, "tokenizer_create(%s) failed: %s", path, err);
    return rc == 0 ? t : NULL;
}

/* Encodes with a buffer that grows until it fits; returns a malloc'd array and its length in *n. */
static int32_t *encode_all(const llmpi_tokenizer *t, const char *text, size_t len, bool add_special,
                           bool parse_special, int *n) {
    int cap = 8;
    int32_t *buf = malloc((size_t)cap * sizeof *buf);
    for (;;) {
        int r = tokenizer_encode(t, text, len, add_special, parse_special, buf, cap);
        if (r < 0) { free(buf); *n = -1; return NULL; }
        if (r <= cap) { *n = r; return buf; }
        cap = r;
        buf = realloc(buf, (size_t)cap * sizeof *buf);
    }
}

/* Decodes into a malloc'd NUL-terminated string (length in *n). */
static char *decode_all(const llmpi_tokenizer *t, const int32_t *ids, int n_ids, bool remove_special,
                        bool render_special, int *n) {
    int cap = 4;
    char *buf = malloc((size_t)cap);
    for (;;) {
        int r = tokenizer_decode(t, ids, n_ids, buf, cap, remove_special, render_special);
        if (r < 0) { free(buf); *n = -1; return NULL; }
        if (r < cap) { buf[r] = '\0'; *n = r; return buf; }
        cap = r + 1;
        buf = realloc(buf, (size_t)cap);
    }
}

static void print_text(const char *label, const char *s, size_t n) {
    printf("  %s: \"", label);
    for (size_t i = 0; i < n && i < 120; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\') putchar(c);
        else printf("\\x%02x", c);
    }
    printf("\"\n");
}

static void print_ids(const char *label, const int32_t *ids, int n) {
    printf("  %s:", label);
    for (int i = 0; i < n && i < 40; i++) printf(" %d", ids[i]);
    printf("%s\n", n > 40 ? " ..." : "");
}

/* True if text contains something llama.cpp's clean_up_tokenization_spaces would change. */
static bool cleanup_applies(const char *s, size_t n) {
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == ' ' && strchr("?!.,'", s[i + 1])) return true;
    return false;
}

/* ---- llama.cpp tokenizer vectors ------------------------------------------------------------------ */

static void test_vocab_vectors(const char *name, bool cleans_spaces) {
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/vocab/%s.gguf", name);
    const char *gguf_path = t_shared(rel);
    snprintf(rel, sizeof rel, "fixtures/vocab/%s.gguf.inp", name);
    const char *inp_path = t_shared(rel);
    snprintf(rel, sizeof rel, "fixtures/vocab/%s.gguf.out", name);
    const char *out_path = t_shared(rel);

    t_begin("vocab %s: llama.cpp test vectors", name);
    double load_s = 0;
    llmpi_tokenizer *t = load_tokenizer(gguf_path, &load_s);
    size_t inp_len = 0, out_len = 0;
    char *inp = t_read_file(inp_path, &inp_len);
    char *outs = t_read_file(out_path, &out_len);
    if (!t || !inp || !outs) { free(inp); free(outs); tokenizer_free(t); t_end(); return; }
    printf("  %s: %d tokens, model %s, pre %s, loaded in %.3f s\n", name, tokenizer_n_vocab(t),
           tokenizer_model_name(t), tokenizer_pre_name(t), load_s);

    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t sep_len = sizeof sep - 1;
    int n_cases = 0, n_ok = 0, n_rt = 0, n_rt_ok = 0;
    char *in_pos = inp, *in_end = inp + inp_len, *out_line = outs, *out_end = outs + out_len;
    for (;;) {
        /* next test string: up to the next separator (nothing follows the last one) */
        char *s = NULL;
        for (char *p = in_pos; p + sep_len <= in_end; p++)
            if (memcmp(p, sep, sep_len) == 0) { s = p; break; }
        if (!s) break;
        const size_t text_len = (size_t)(s - in_pos);
        const char *text = in_pos;
        in_pos = s + sep_len;

        /* expected ids: one line of the .out file */
        char *nl = memchr(out_line, '\n', (size_t)(out_end - out_line));
        if (!nl) nl = out_end;
        int32_t want[512];
        int n_want = 0;
        for (char *p = out_line; p < nl && n_want < 512;) {
            char *q;
            long v = strtol(p, &q, 10);
            if (q == p) break;
            want[n_want++] = (int32_t)v;
            p = q;
        }
        out_line = nl < out_end ? nl + 1 : out_end;

        n_cases++;
        int n_got = 0;
        int32_t *got = encode_all(t, text, text_len, false, false, &n_got);
        bool ok = got && n_got == n_want && memcmp(got, want, (size_t)n_want * sizeof *got) == 0;
        if (ok) {
            n_ok++;
        } else {
            CHECK(0, "%s case %d differs from llama.cpp", name, n_cases);
            print_text("text", text, text_len);
            print_ids("want", want, n_want);
            if (got) print_ids("got ", got, n_got);
        }
        /* round trip, where llama.cpp's detokenizer is lossless: no clean-up pattern in the text */
        if (got && !(cleans_spaces && cleanup_applies(text, text_len))) {
            n_rt++;
            int n_dec = 0;
            char *dec = decode_all(t, got, n_got, false, false, &n_dec);
            if (dec && (size_t)n_dec == text_len && memcmp(dec, text, text_len) == 0) {
                n_rt_ok++;
            } else {
                CHECK(0, "%s case %d: decode(encode(text)) != text", name, n_cases);
                print_text("text   ", text, text_len);
                if (dec) print_text("decoded", dec, (size_t)n_dec);
            }
            free(dec);
        }
        free(got);
    }
    printf("  %s: %d/%d cases match llama.cpp, %d/%d round trips exact\n", name, n_ok, n_cases, n_rt_ok, n_rt);
    CHECK(n_cases == 46, "%s: expected 46 test cases, found %d", name, n_cases);
    free(inp);
    free(outs);
    tokenizer_free(t);
    t_end();
}

/* ---- golden prompt tokens -------------------------------------------------------------------------- */

static const char k_fixture_text[] =
    "Once upon a time, there was a little robot named Pip. Pip loved to count the stars in the sky every night.";

static void test_golden_prompt(const char *model_rel, const char *golden_rel, int expect_n) {
    t_begin("golden prompt tokens: %s", model_rel);
    llmpi_tokenizer *t = load_tokenizer(t_shared(model_rel), NULL);
    size_t glen = 0;
    unsigned char *g = t_read_file(t_shared(golden_rel), &glen);
    if (t && g && glen >= 16 && memcmp(g, "LPLOGIT1", 8) == 0) {
        uint32_t n_tok;
        memcpy(&n_tok, g + 8, 4);
        CHECK((int)n_tok == expect_n, "golden has %u tokens, expected %d", n_tok, expect_n);
        if (glen >= 16 + 4 * (size_t)n_tok) {
            int32_t want[64];
            memcpy(want, g + 16, 4 * (size_t)(n_tok < 64 ? n_tok : 64));
            int n = 0;
            int32_t *got = encode_all(t, k_fixture_text, strlen(k_fixture_text), true, false, &n);
            bool ok = got && n == (int)n_tok && memcmp(got, want, (size_t)n * sizeof *got) == 0;
            CHECK(ok, "encode(fixture text, add_special) differs from the golden prompt");
            if (!ok) {
                print_ids("want", want, (int)n_tok);
                if (got) print_ids("got ", got, n);
            }
            free(got);
        }
    } else {
        CHECK(0, "cannot use %s", golden_rel);
    }
    free(g);
    tokenizer_free(t);
    t_end();
}

/* ---- golden generations: llama_detokenize of 200 generated ids --------------------------------------- */

static void test_golden_generation(const char *model_rel, const char *gen_rel) {
    t_begin("golden generation text: %s", gen_rel);
    llmpi_tokenizer *t = load_tokenizer(t_shared(model_rel), NULL);
    size_t len = 0;
    char *file = t_read_file(t_shared(gen_rel), &len);
    if (!t || !file) { free(file); tokenizer_free(t); t_end(); return; }
    /* line 1: "tokens: id,id,..."; the rest is the detokenized text followed by one "\n" */
    char *nl = memchr(file, '\n', len);
    CHECK(nl && strncmp(file, "tokens: ", 8) == 0, "unexpected layout of %s", gen_rel);
    if (nl) {
        int32_t ids[256];
        int n = 0;
        for (char *p = file + 8; p < nl && n < 256;) {
            char *q;
            long v = strtol(p, &q, 10);
            if (q == p) break;
            ids[n++] = (int32_t)v;
            p = q;
            if (*p == ',') p++;
        }
        CHECK(n == 200, "expected 200 ids, parsed %d", n);
        const char *want = nl + 1;
        size_t want_len = len - (size_t)(want - file);
        CHECK(want_len > 0 && want[want_len - 1] == '\n', "text does not end with a newline");
        if (want_len > 0) want_len--;
        int n_dec = 0;
        char *dec = decode_all(t, ids, n, false, false, &n_dec);
        bool ok = dec && (size_t)n_dec == want_len && memcmp(dec, want, want_len) == 0;
        CHECK(ok, "decode of the generated ids differs from the golden text (%d vs %zu bytes)", n_dec, want_len);
        if (!ok && dec) {
            size_t i = 0;
            while (i < want_len && i < (size_t)n_dec && dec[i] == want[i]) i++;
            printf("  first difference at byte %zu\n", i);
            print_text("want", want + (i > 20 ? i - 20 : 0), 60);
            print_text("got ", dec + (i > 20 ? i - 20 : 0), 60);
        }
        /* streaming the same ids gives the same text except llama_detokenize's dropped leading space */
        tokenizer_stream s;
        tokenizer_stream_init(&s);
        char *streamed = malloc(want_len + 64);
        size_t sn = 0;
        for (int i = 0; i < n && streamed; i++) {
            char piece[128];
            int r = tokenizer_stream_feed(t, &s, ids[i], piece, (int)sizeof piece);
            CHECK(r >= 0, "stream_feed returned %d", r);
            if (r > 0 && sn + (size_t)r <= want_len + 32) { memcpy(streamed + sn, piece, (size_t)r); sn += (size_t)r; }
        }
        char piece[8];
        int r = tokenizer_stream_flush(&s, piece, (int)sizeof piece);
        CHECK(r == 0, "nothing should be pending at the end (flush returned %d)", r);
        size_t skip = sn > 0 && streamed[0] == ' ' && tokenizer_add_space_prefix(t) ? 1 : 0;
        CHECK(streamed && sn - skip == want_len && memcmp(streamed + skip, want, want_len) == 0,
              "streamed text differs from the golden text");
        free(streamed);
        free(dec);
    }
    free(file);
    tokenizer_free(t);
    t_end();
}

/* ---- pieces, special tokens, clean-up ------------------------------------------------------------- */

static void expect_piece(const llmpi_tokenizer *t, int32_t id, bool special, const char *want) {
    char buf[64];
    int r = tokenizer_token_to_piece(t, id, buf, (int)sizeof buf, special);
    CHECK(r >= 0 && (size_t)r == strlen(want) && memcmp(buf, want, (size_t)r) == 0,
          "piece of %d (special=%d): got %d bytes \"%.*s\", want \"%s\"", id, special, r, r > 0 ? r : 0, buf, want);
}

static void test_pieces_and_specials(void) {
    t_begin("SPM pieces, BOS/EOS, parse_special (llama-spm)");
    llmpi_tokenizer *t = load_tokenizer(t_shared("fixtures/vocab/ggml-vocab-llama-spm.gguf"), NULL);
    if (t) {
        CHECK(tokenizer_bos(t) == 1 && tokenizer_eos(t) == 2 && tokenizer_unk(t) == 0, "special ids");
        CHECK(tokenizer_add_bos(t) && !tokenizer_add_eos(t), "add_bos/add_eos");
        CHECK(strcmp(tokenizer_model_name(t), "llama") == 0, "model name %s", tokenizer_model_name(t));
        CHECK(tokenizer_is_eog(t, 2) && !tokenizer_is_eog(t, 1), "eog");
        int32_t nl = tokenizer_find_token(t, "<0x0A>", 6);
        CHECK(nl == 13, "<0x0A> is %d", nl);
        expect_piece(t, nl, false, "\n");
        int32_t the = tokenizer_find_token(t, "\xE2\x96\x81the", 6);
        CHECK(the >= 0, "no ▁the");
        expect_piece(t, the, false, " the");
        expect_piece(t, 1, false, "");
        expect_piece(t, 1, true, "<s>");
        char small[2];
        CHECK(tokenizer_token_to_piece(t, the, small, 2, false) == 4, "needed length when the buffer is small");
        CHECK(tokenizer_token_to_piece(t, -1, small, 2, false) == -1, "invalid id");
        CHECK(tokenizer_token_to_piece(t, 32000, small, 2, false) == -1, "invalid id");

        /* add_special: BOS first; parse_special recognises "</s>" only when asked */
        int n = 0;
        int32_t *ids = encode_all(t, "Hello</s>", 9, true, true, &n);
        CHECK(ids && n >= 3 && ids[0] == 1 && ids[n - 1] == 2, "BOS ... EOS with parse_special");
        free(ids);
        ids = encode_all(t, "Hello</s>", 9, true, false, &n);
        CHECK(ids && n >= 3 && ids[0] == 1 && ids[n - 1] != 2, "no special parsing without parse_special");
        free(ids);
        /* the max_tokens contract: total count returned, nothing written past the buffer */
        int32_t two[3] = { -7, -7, -7 };
        int r = tokenizer_encode(t, "Hello world again", 17, true, false, two, 2);
        CHECK(r > 2 && two[0] == 1 && two[2] == -7, "short buffer: r=%d", r);
        CHECK(tokenizer_encode(t, "", 0, true, false, two, 3) == 1 && two[0] == 1, "empty text gives [BOS]");
        CHECK(tokenizer_encode(t, "", 0, false, false, two, 3) == 0, "empty text gives nothing");

        /* decode: the first piece loses its leading space (add_space_prefix), except that llama.cpp keeps it
         * when remove_special drops a leading BOS */
        ids = encode_all(t, "Hello world", 11, true, false, &n);
        int dn = 0;
        char *d = decode_all(t, ids, n, true, false, &dn);
        CHECK(d && strcmp(d, " Hello world") == 0, "decode(remove_special) = \"%s\"", d ? d : "(null)");
        free(d);
        d = decode_all(t, ids, n, false, true, &dn);
        CHECK(d && strcmp(d, "<s> Hello world") == 0, "decode(render_special) = \"%s\"", d ? d : "(null)");
        free(d);
        d = decode_all(t, ids + 1, n - 1, false, false, &dn);
        CHECK(d && strcmp(d, "Hello world") == 0, "decode without BOS = \"%s\"", d ? d : "(null)");
        free(d);
        int32_t bad[2] = { 5, 40000 };
        char buf[16];
        CHECK(tokenizer_decode(t, bad, 2, buf, sizeof buf, false, false) == -1, "invalid id in decode");
        free(ids);
    }
    tokenizer_free(t);
    t_end();

    t_begin("llama3: special tokens, EOG, parse_special");
    double s = 0;
    t = load_tokenizer(t_shared("fixtures/vocab/llama3.gguf"), &s);
    if (t) {
        CHECK(tokenizer_bos(t) == 128000 && tokenizer_eos(t) == 128009, "bos/eos %d/%d", tokenizer_bos(t), tokenizer_eos(t));
        CHECK(tokenizer_eot(t) == 128009 && tokenizer_eom(t) == 128008, "eot/eom %d/%d", tokenizer_eot(t), tokenizer_eom(t));
        CHECK(tokenizer_add_bos(t), "llama-bpe adds BOS");
        CHECK(tokenizer_is_eog(t, 128009) && tokenizer_is_eog(t, 128001) && tokenizer_is_eog(t, 128008) &&
              !tokenizer_is_eog(t, 128000) && !tokenizer_is_eog(t, 1000), "eog set");
        static const char chat[] = "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>";
        int n = 0;
        int32_t *ids = encode_all(t, chat, sizeof chat - 1, true, true, &n);
        CHECK(ids && n >= 6 && ids[0] == 128000 && ids[1] == 128006 && ids[3] == 128007 && ids[n - 1] == 128009,
              "chat tokens");
        int dn = 0;
        char *d = ids ? decode_all(t, ids, n, false, true, &dn) : NULL;
        CHECK(d && strcmp(d, "<|begin_of_text|>" "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>") == 0,
              "render_special round trip: \"%s\"", d ? d : "(null)");
        free(d);
        d = ids ? decode_all(t, ids, n, false, false, &dn) : NULL;
        CHECK(d && strcmp(d, "user\n\nHi!") == 0, "control tokens hidden: \"%s\"", d ? d : "(null)");
        free(d);
        free(ids);
        ids = encode_all(t, chat, sizeof chat - 1, false, false, &n);
        bool any_special = false;
        for (int i = 0; ids && i < n; i++) any_special |= ids[i] >= 128000;
        CHECK(ids && !any_special, "without parse_special no control token is produced");
        free(ids);
        /* clean_up_tokenization_spaces (on for llama-bpe): " ," " ." " 's" lose their space */
        ids = encode_all(t, "Hello , world . It 's", 21, false, false, &n);
        d = ids ? decode_all(t, ids, n, false, false, &dn) : NULL;
        CHECK(d && strcmp(d, "Hello, world. It's") == 0, "clean-up: \"%s\"", d ? d : "(null)");
        free(d);
        free(ids);
        expect_piece(t, tokenizer_find_token(t, "\xC4\xA0the", 5), false, " the");
        CHECK(tokenizer_max_piece_len(t) > 0 && tokenizer_max_piece_len(t) < 1024, "max piece %d",
              tokenizer_max_piece_len(t));
    }
    tokenizer_free(t);
    t_end();
}

/* ---- streaming ------------------------------------------------------------------------------------- */

/* Valid UTF-8 made only of complete characters. */
static bool utf8_complete(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t l = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (l == 0 || i + l > n) return false;
        for (size_t k = 1; k < l; k++)
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) return false;
        i += l;
    }
    return true;
}

static void stream_check(const llmpi_tokenizer *t, const char *label, const int32_t *ids, int n, const char *want,
                         size_t want_len) {
    tokenizer_stream s;
    tokenizer_stream_init(&s);
    char all[1024];
    size_t total = 0;
    int held = 0;
    for (int i = 0; i < n; i++) {
        char out[256];
        int r = tokenizer_stream_feed(t, &s, ids[i], out, (int)sizeof out);
        CHECK(r >= 0, "%s: feed returned %d", label, r);
        if (r < 0) return;
        CHECK(utf8_complete(out, (size_t)r), "%s: chunk %d is not complete UTF-8", label, i);
        if (r == 0) held++;
        if (total + (size_t)r <= sizeof all) memcpy(all + total, out, (size_t)r);
        total += (size_t)r;
    }
    char out[8];
    int r = tokenizer_stream_flush(&s, out, (int)sizeof out);
    CHECK(r >= 0, "%s: flush returned %d", label, r);
    if (r > 0 && total + (size_t)r <= sizeof all) memcpy(all + total, out, (size_t)r);
    total += r > 0 ? (size_t)r : 0;
    CHECK(total == want_len && memcmp(all, want, want_len) == 0, "%s: streamed text differs", label);
    if (total != want_len || memcmp(all, want, want_len) != 0) {
        print_text("want", want, want_len);
        print_text("got ", all, total < sizeof all ? total : sizeof all);
    }
    CHECK(held > 0, "%s: expected some tokens to be held back", label);
}

static void test_streaming(void) {
    t_begin("streaming detokenizer: multi-byte characters split across tokens");
    /* SPM: characters missing from the vocabulary become <0xNN> byte tokens */
    llmpi_tokenizer *t = load_tokenizer(t_shared("fixtures/vocab/ggml-vocab-llama-spm.gguf"), NULL);
    if (t) {
        static const char text[] = "Llama \xF0\x9F\xA6\x99 and \xE2\x82\xAC 5, \xF0\x9F\x98\x81!";
        int n = 0;
        int32_t *ids = encode_all(t, text, sizeof text - 1, true, false, &n);   /* starts with BOS */
        int dn = 0;
        char *full = ids ? decode_all(t, ids, n, false, false, &dn) : NULL;
        /* BOS renders empty and takes llama_detokenize's leading-space removal, so decode keeps the space */
        CHECK(full && dn > 0 && full[0] == ' ' && strcmp(full + 1, text) == 0, "decode: \"%s\"", full ? full : "");
        if (full) stream_check(t, "spm", ids, n, full, (size_t)dn);
        free(full);

        /* invalid byte sequences: <0xE2><0x82> then 'a' -> U+FFFD 'a'; a dangling lead at the end -> U+FFFD */
        int32_t bad[4] = { t ? tokenizer_find_token(t, "<0xE2>", 6) : -1, tokenizer_find_token(t, "<0x82>", 6),
                           tokenizer_find_token(t, "a", 1), tokenizer_find_token(t, "<0xF0>", 6) };
        tokenizer_stream s;
        tokenizer_stream_init(&s);
        char out[32];
        int r1 = tokenizer_stream_feed(t, &s, bad[0], out, (int)sizeof out);
        int r2 = tokenizer_stream_feed(t, &s, bad[1], out, (int)sizeof out);
        CHECK(r1 == 0 && r2 == 0 && s.n_pending == 2, "prefix held back (%d %d %d)", r1, r2, s.n_pending);
        /* too small a buffer: negative, state unchanged */
        int r3 = tokenizer_stream_feed(t, &s, bad[2], out, 2);
        CHECK(r3 == -4 && s.n_pending == 2, "small buffer: %d", r3);
        r3 = tokenizer_stream_feed(t, &s, bad[2], out, (int)sizeof out);
        CHECK(r3 == 4 && memcmp(out, "\xEF\xBF\xBD" "a", 4) == 0, "U+FFFD then 'a' (%d)", r3);
        int r4 = tokenizer_stream_feed(t, &s, bad[3], out, (int)sizeof out);
        CHECK(r4 == 0 && s.n_pending == 1, "dangling lead byte held");
        int r5 = tokenizer_stream_flush(&s, out, (int)sizeof out);
        CHECK(r5 == 3 && memcmp(out, "\xEF\xBF\xBD", 3) == 0 && s.n_pending == 0, "flush emits U+FFFD (%d)", r5);
        CHECK(tokenizer_stream_feed(t, &s, -5, out, (int)sizeof out) == -1, "invalid id");
        free(ids);
    }
    tokenizer_free(t);

    /* byte-level BPE: qwen2-tiny's small vocabulary splits emoji bytes across tokens */
    t = load_tokenizer(t_shared("fixtures/synth/qwen2-tiny-F32.gguf"), NULL);
    if (t) {
        static const char text[] = "caf\xC3\xA9 \xF0\x9F\xA6\x99\xF0\x9F\x9A\x80 \xE4\xBD\xA0\xE5\xA5\xBD <|im_end|>";
        int n = 0;
        int32_t *ids = encode_all(t, text, sizeof text - 1, false, true, &n);
        int dn = 0;
        char *full = ids ? decode_all(t, ids, n, false, false, &dn) : NULL;
        static const char shown[] = "caf\xC3\xA9 \xF0\x9F\xA6\x99\xF0\x9F\x9A\x80 \xE4\xBD\xA0\xE5\xA5\xBD ";
        CHECK(full && strcmp(full, shown) == 0, "qwen2 decode hides <|im_end|>");
        CHECK(ids && n > 0 && ids[n - 1] == 1158 && tokenizer_is_eog(t, 1158), "<|im_end|> parsed, is EOG");
        if (full) stream_check(t, "bpe", ids, n, full, (size_t)dn);
        free(full);
        free(ids);
    }
    tokenizer_free(t);
    t_end();
}

/* ---- Unicode tables -------------------------------------------------------------------------------- */

static void test_unicode(void) {
    t_begin("Unicode classes and UTF-8 decoding");
    for (uint32_t c = 0; c < 128; c++) {
        uint8_t f = tok_cpt_flags(c);
        CHECK((int)(f & TOK_F_CLASS_MASK) == tok_unicode_class(c), "ASCII fast path disagrees at %u", c);
        CHECK(!!(f & TOK_F_SPACE) == tok_unicode_is_whitespace(c), "ASCII space flag at %u", c);
    }
    static const struct { uint32_t cp; int cls; bool ws; } known[] = {
        { 0xE9, TOK_CLASS_LETTER, false },   { 0x663, TOK_CLASS_NUMBER, false }, { 0x301, TOK_CLASS_MARK, false },
        { 0x3000, TOK_CLASS_SEPARATOR, true }, { 0x85, TOK_CLASS_CONTROL, true }, { 0x4E00, TOK_CLASS_LETTER, false },
        { 0x1F999, TOK_CLASS_SYMBOL, false }, { 0x2026, TOK_CLASS_PUNCT, false }, { 0x378, TOK_CLASS_UNDEFINED, false },
        { 0x10FFFF, TOK_CLASS_UNDEFINED, false }, { 0xE000, TOK_CLASS_CONTROL, false }, { 0x200D, TOK_CLASS_CONTROL, false },
        { 0x17B6, TOK_CLASS_MARK, false },   { 0xBD, TOK_CLASS_NUMBER, false }, { 0x110000, TOK_CLASS_UNDEFINED, false },
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        CHECK(tok_unicode_class(known[i].cp) == known[i].cls, "class of U+%04X is %d, want %d", known[i].cp,
              tok_unicode_class(known[i].cp), known[i].cls);
        CHECK(tok_unicode_is_whitespace(known[i].cp) == known[i].ws, "White_Space of U+%04X", known[i].cp);
    }
    /* llama.cpp's decoding: stray continuation -> U+FFFD (1 byte); truncated sequence -> U+FFFD per byte */
    static const char s[] = "a\x80\xE2\x82" "b\xF0\x9F\xA6\x99\xC3";
    uint32_t cp[16];
    size_t n = tok_utf8_to_cpts(s, sizeof s - 1, cp);
    static const uint32_t want[] = { 'a', 0xFFFD, 0xFFFD, 0xFFFD, 'b', 0x1F999, 0xFFFD };
    CHECK(n == 7 && memcmp(cp, want, sizeof want) == 0, "decoded %zu codepoints", n);
    for (unsigned b = 0; b < 256; b++)
        CHECK(tok_cp_to_byte(tok_byte_to_cp((unsigned char)b)) == (int)b, "byte map round trip at %u", b);
    CHECK(tok_byte_to_cp(' ') == 0x120 && tok_byte_to_cp('\n') == 0x10A && tok_byte_to_cp(0xAD) == 0x143, "byte map");
    t_end();
}

/* ---- errors and hostile metadata ------------------------------------------------------------------ */

typedef void (*kv_setter)(gguf_writer *w);

/* Writes a tokenizer-only GGUF with the given extra keys, then expects tokenizer_create to fail (or, with
 * expect_ok, succeed) and returns the message. */
static void expect_create(const char *label, kv_setter set, bool expect_ok, const char *want_substr) {
    char path[600];
    snprintf(path, sizeof path, "%s/tok-%s.gguf", t_tmpdir(), label);
    gguf_writer *w = gguf_writer_create();
    gguf_writer_set_str(w, "general.architecture", "llama");
    set(w);
    FILE *fp = fopen(path, "wb");
    gguf_error e;
    bool written = fp && gguf_writer_write_header(w, fp, &e) == GGUF_OK;
    if (fp) fclose(fp);
    gguf_writer_free(w);
    CHECK(written, "%s: cannot write %s", label, path);
    if (!written) return;
    gguf_file f;
    if (gguf_open(path, false, &f, &e) != GGUF_OK) { CHECK(0, "%s: cannot reopen: %s", label, e.msg); return; }
    llmpi_tokenizer *t = NULL;
    char err[512] = "";
    int rc = tokenizer_create(&f, &t, err, sizeof err);
    gguf_free(&f);
    if (expect_ok) {
        CHECK(rc == 0 && t, "%s: expected success, got \"%s\"", label, err);
    } else {
        CHECK(rc == -1 && !t, "%s: expected an error", label);
        CHECK(err[0] && !strchr(err, '\n'), "%s: expected a one-line message", label);
        CHECK(!want_substr || strstr(err, want_substr), "%s: message \"%s\" lacks \"%s\"", label, err, want_substr);
        printf("  %s -> %s\n", label, err);
    }
    tokenizer_free(t);
}

static const char *const k_small_tokens[] = { "<unk>", "<s>", "</s>", "a", "b", "ab", "\xE2\x96\x81" };
static const char *const k_small_bpe_tokens[] = { "a", "b", "ab", "<|endoftext|>" };
static const float k_small_scores[] = { 0, 0, 0, -1, -2, -3, -4 };
static const int32_t k_small_types[] = { 2, 3, 3, 1, 1, 1, 1 };

static void set_spm(gguf_writer *w) {
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", k_small_tokens, 7);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, k_small_scores, 7);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, k_small_types, 7);
}
static void set_bpe(gguf_writer *w, const char *pre) {
    static const char *const merges[] = { "a b" };
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", k_small_bpe_tokens, 4);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 3);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 3);
}
static void kv_none(gguf_writer *w) { gguf_writer_set_u32(w, "llama.block_count", 1); }
static void kv_bert(gguf_writer *w) { set_spm(w); gguf_writer_set_str(w, "tokenizer.ggml.model", "bert"); }
static void kv_spm_ok(gguf_writer *w) { set_spm(w); }
static void kv_bpe_ok(gguf_writer *w) { set_bpe(w, "qwen2"); }
static void kv_bad_pre(gguf_writer *w) { set_bpe(w, "xyz"); }
static void kv_bos_range(gguf_writer *w) { set_spm(w); gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 7); }
static void kv_eos_neg(gguf_writer *w) { set_spm(w); gguf_writer_set_i32(w, "tokenizer.ggml.eos_token_id", -5); }
static void kv_pad_none(gguf_writer *w) {   /* as in stories260K: 0xFFFFFFFF means "none" */
    set_spm(w);
    gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0xFFFFFFFFu);
    gguf_writer_set_u32(w, "tokenizer.ggml.seperator_token_id", 0xFFFFFFFFu);
}
static void kv_scores_short(gguf_writer *w) {
    set_spm(w);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, k_small_scores, 5);
}
static void kv_types_str(gguf_writer *w) {
    set_spm(w);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.token_type", k_small_tokens, 7);
}
static void kv_types_short(gguf_writer *w) {
    set_spm(w);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, k_small_types, 2);
}
static void kv_tokens_not_str(gguf_writer *w) {
    set_spm(w);
    gguf_writer_set_arr(w, "tokenizer.ggml.tokens", GGUF_TYPE_FLOAT32, k_small_scores, 7);
}
static void kv_tokens_empty(gguf_writer *w) {
    set_spm(w);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", k_small_tokens, 0);
}
static void kv_dup(gguf_writer *w) {
    static const char *const dup[] = { "<unk>", "<s>", "</s>", "a", "b", "a", "c" };
    set_spm(w);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", dup, 7);
}
static void kv_merge_nospace(gguf_writer *w) {
    static const char *const merges[] = { "a b", "ab" };
    set_bpe(w, "gpt-2");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 2);
}
static void kv_merge_leading_space(gguf_writer *w) {
    static const char *const merges[] = { " ab" };   /* the only space is at position 0 */
    set_bpe(w, "gpt-2");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
}
static void kv_no_merges(gguf_writer *w) {
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", k_small_bpe_tokens, 4);
}
static void kv_add_bos_no_bos(gguf_writer *w) {
    /* BPE default BOS is 11, outside this 4-token vocabulary */
    kv_no_merges(w);
    static const char *const merges[] = { "a b" };
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
}
static void kv_model_int(gguf_writer *w) { set_spm(w); gguf_writer_set_u32(w, "tokenizer.ggml.model", 3); }
static void kv_add_bos_str(gguf_writer *w) { set_spm(w); gguf_writer_set_str(w, "tokenizer.ggml.add_bos_token", "yes"); }

static void test_errors(void) {
    t_begin("errors: missing tokenizer, unsupported kinds, hostile metadata");
    expect_create("no-tokenizer", kv_none, false, "no tokenizer");
    expect_create("bert", kv_bert, false, "unsupported tokenizer.ggml.model 'bert'");
    expect_create("bad-pre", kv_bad_pre, false, "unsupported tokenizer.ggml.pre 'xyz' (supported: default, gpt-2");
    expect_create("bos-out-of-range", kv_bos_range, false, "bos_token_id");
    expect_create("eos-negative", kv_eos_neg, false, "eos_token_id");
    expect_create("scores-short", kv_scores_short, false, "scores");
    expect_create("types-string", kv_types_str, false, "token_type");
    expect_create("types-short", kv_types_short, false, "token_type");
    expect_create("tokens-not-strings", kv_tokens_not_str, false, "tokens");
    expect_create("tokens-empty", kv_tokens_empty, false, "tokens");
    expect_create("duplicate-token", kv_dup, false, "duplicate");
    expect_create("merge-no-space", kv_merge_nospace, false, "merges[1]");
    expect_create("merge-leading-space", kv_merge_leading_space, false, "merges[0]");
    expect_create("no-merges", kv_no_merges, false, "merges");
    expect_create("add-bos-without-bos", kv_add_bos_no_bos, false, "add_bos_token");
    expect_create("model-not-string", kv_model_int, false, "tokenizer.ggml.model");
    expect_create("add-bos-string", kv_add_bos_str, false, "add_bos_token");
    expect_create("pad-none", kv_pad_none, true, NULL);
    expect_create("spm-ok", kv_spm_ok, true, NULL);
    expect_create("bpe-ok", kv_bpe_ok, true, NULL);
    CHECK(tokenizer_create(NULL, NULL, NULL, 0) == -1, "NULL arguments");
    t_end();
}

int main(void) {
    test_unicode();
    test_vocab_vectors("ggml-vocab-llama-spm", false);
    test_vocab_vectors("ggml-vocab-phi-3", false);
    test_vocab_vectors("ggml-vocab-gpt-2", true);
    test_vocab_vectors("ggml-vocab-deepseek-llm", false);
    test_vocab_vectors("llama3", true);
    test_golden_prompt("fixtures/real/stories260K.gguf", "fixtures/golden/stories260K.logits", 46);
    test_golden_prompt("fixtures/synth/qwen2-tiny-F32.gguf", "fixtures/golden/qwen2-tiny-F32.logits", 43);
    test_golden_generation("fixtures/real/stories260K.gguf", "fixtures/golden/stories260K.gen.txt");
    test_golden_generation("fixtures/real/bitnet-3M-f32.gguf", "fixtures/golden/bitnet-3M-f32.gen.txt");
    test_pieces_and_specials();
    test_streaming();
    test_errors();
    return t_summary();
}
