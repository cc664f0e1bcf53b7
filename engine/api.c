/* Public API (llmpi.h): model load/free, tokenizer access, contexts, eval, generation. */
#include "llmpi.h"
#include "model.h"
#include "tokenizer.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

void model_free_arena(llmpi_model *m);

const char *llmpi_status_string(llmpi_status s) {
    switch (s) {
    case LLMPI_OK: return "ok";
    case LLMPI_ERR_IO: return "I/O error";
    case LLMPI_ERR_FORMAT: return "invalid model file";
    case LLMPI_ERR_UNSUPPORTED: return "unsupported";
    case LLMPI_ERR_NOMEM: return "out of memory";
    case LLMPI_ERR_INVALID_ARG: return "invalid argument";
    case LLMPI_ERR_CONTEXT_FULL: return "context full";
    case LLMPI_ERR_NO_TOKENIZER: return "no tokenizer";
    case LLMPI_ERR_CANCELLED: return "cancelled";
    }
    return "unknown error";
}

double llmpi_time_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t llmpi_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (uint64_t)ru.ru_maxrss * 1024u; /* Linux reports kilobytes */
}

static llmpi_status from_gguf(gguf_status st) {
    switch (st) {
    case GGUF_OK: return LLMPI_OK;
    case GGUF_E_IO: return LLMPI_ERR_IO;
    case GGUF_E_NOMEM: return LLMPI_ERR_NOMEM;
    case GGUF_E_UNSUPPORTED: return LLMPI_ERR_UNSUPPORTED;
    default: return LLMPI_ERR_FORMAT;
    }
}

llmpi_status llmpi_print_file_info(const char *path, bool use_mmap, FILE *out, llmpi_error *err) {
    gguf_file f;
    gguf_error ge;
    gguf_status st = gguf_open(path, use_mmap, &f, &ge);
    if (st != GGUF_OK) {
        llmpi_set_error(err, from_gguf(st), "%s", ge.msg);
        return err ? err->code : from_gguf(st);
    }
    gguf_print_info(&f, out);
    gguf_free(&f);
    return LLMPI_OK;
}

/* ---- model -------------------------------------------------------------------------------- */
llmpi_model_params llmpi_model_default_params(void) {
    return (llmpi_model_params){ .use_mmap = true };
}

void llmpi_model_free(llmpi_model *m) {
    if (!m) return;
    if (m->tok) tokenizer_free(m->tok);
    free(m->layers);
    model_free_arena(m);
    for (int i = 0; i < m->n_repacked; i++) free(m->repacked[i]);
    free(m->repacked);
    gguf_free(&m->file);
    free(m);
}

llmpi_status llmpi_model_load(const char *path, const llmpi_model_params *params, llmpi_model **out, llmpi_error *err) {
    llmpi_model_params p = params ? *params : llmpi_model_default_params();
    *out = NULL;
    if (!path || !*path) {
        llmpi_set_error(err, LLMPI_ERR_INVALID_ARG, "no model path given");
        return LLMPI_ERR_INVALID_ARG;
    }
    llmpi_model *m = calloc(1, sizeof *m);
    if (!m) { llmpi_set_error(err, LLMPI_ERR_NOMEM, "out of memory"); return LLMPI_ERR_NOMEM; }
    if (p.act_scheme != LLMPI_ACT_AUTO && p.act_scheme != LLMPI_ACT_GGML && p.act_scheme != LLMPI_ACT_BITNET) {
        free(m);
        llmpi_set_error(err, LLMPI_ERR_INVALID_ARG, "unknown activation scheme %d", (int)p.act_scheme);
        return LLMPI_ERR_INVALID_ARG;
    }
    m->act_scheme = p.act_scheme;
    const char *repack_env = getenv("LLMPI_REPACK");
    m->no_repack = p.no_repack || (repack_env && strcmp(repack_env, "0") == 0);
    m->log = p.log;
    m->log_user = p.log_user;
    gguf_error ge;
    gguf_status gs = gguf_open(path, p.use_mmap, &m->file, &ge);
    if (gs != GGUF_OK) {
        free(m);
        llmpi_set_error(err, from_gguf(gs), "%s", ge.msg);
        return from_gguf(gs);
    }
    llmpi_status st = LLMPI_OK;
    gguf_str s;
    if (gguf_get_str(&m->file, "general.name", &s) == GGUF_OK)
        snprintf(m->name, sizeof m->name, "%.*s", (int)(s.len < 127 ? s.len : 127), s.ptr);

    /* The tokenizer is optional: a weights-only file can still be run with --tokens. */
    if (gguf_find_kv(&m->file, "tokenizer.ggml.model")) {
        char tmsg[256];
        if (tokenizer_create(&m->file, &m->tok, tmsg, sizeof tmsg) != 0) {
            llmpi_set_error(err, LLMPI_ERR_FORMAT, "tokenizer: %s", tmsg);
            st = LLMPI_ERR_FORMAT;
            goto fail;
        }
    } else if (p.vocab_only) {
        llmpi_set_error(err, LLMPI_ERR_NO_TOKENIZER, "the file has no tokenizer (no tokenizer.ggml.model key)");
        st = LLMPI_ERR_NO_TOKENIZER;
        goto fail;
    }
    m->vocab_only = p.vocab_only;
    if (p.vocab_only) { *out = m; return LLMPI_OK; }

    if (gguf_get_str(&m->file, "general.architecture", &s) != GGUF_OK) {
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "missing string key 'general.architecture'");
        st = LLMPI_ERR_FORMAT;
        goto fail;
    }
    snprintf(m->arch_name, sizeof m->arch_name, "%.*s", (int)(s.len < 63 ? s.len : 63), s.ptr);
    m->arch = arch_find(s.ptr, s.len);
    if (!m->arch) {
        llmpi_set_error(err, LLMPI_ERR_UNSUPPORTED, "unsupported architecture '%s' (supported: %s)", m->arch_name,
                        llmpi_supported_archs());
        st = LLMPI_ERR_UNSUPPORTED;
        goto fail;
    }
    st = model_bind(m, err);
    if (st != LLMPI_OK) goto fail;
    *out = m;
    return LLMPI_OK;
fail:
    llmpi_model_free(m);
    return st;
}

const char *llmpi_model_arch(const llmpi_model *m) { return m->arch_name; }
const char *llmpi_model_name(const llmpi_model *m) { return m->name; }
int llmpi_model_n_vocab(const llmpi_model *m) { return m->vocab_only ? tokenizer_n_vocab(m->tok) : m->hp.n_vocab; }
int llmpi_model_n_ctx_train(const llmpi_model *m) { return m->hp.n_ctx_train; }
int llmpi_model_n_embd(const llmpi_model *m) { return m->hp.n_embd; }
int llmpi_model_n_layer(const llmpi_model *m) { return m->hp.n_layer; }
uint64_t llmpi_model_n_params(const llmpi_model *m) { return m->n_params; }
uint64_t llmpi_model_size(const llmpi_model *m) { return m->n_bytes; }

const char *llmpi_act_scheme_name(llmpi_act_scheme s) {
    switch (s) {
    case LLMPI_ACT_AUTO: return "auto";
    case LLMPI_ACT_GGML: return "ggml";
    case LLMPI_ACT_BITNET: return "bitnet";
    }
    return "unknown";
}

int llmpi_act_scheme_from_name(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "auto")) return LLMPI_ACT_AUTO;
    if (!strcmp(name, "ggml")) return LLMPI_ACT_GGML;
    if (!strcmp(name, "bitnet")) return LLMPI_ACT_BITNET;
    return -1;
}

const char *llmpi_model_act_scheme(const llmpi_model *m) {
    return m->n_ternary ? llmpi_act_scheme_name(m->act_scheme) : "none";
}

void llmpi_model_type_mix(const llmpi_model *m, char *buf, size_t len) {
    int count[LLMPI_TYPE_COUNT] = { 0 };
    for (uint64_t i = 0; i < m->file.n_tensors; i++)
        if (m->file.tensors[i].type < LLMPI_TYPE_COUNT) count[m->file.tensors[i].type]++;
    size_t used = 0;
    if (len) buf[0] = 0;
    for (int t = 0; t < LLMPI_TYPE_COUNT && used < len; t++) {
        if (!count[t]) continue;
        int w = snprintf(buf + used, len - used, "%s%s:%d", used ? " " : "", quant_type_name((uint32_t)t), count[t]);
        if (w < 0) break;
        used += (size_t)w;
    }
}

/* ---- tokenizer ---------------------------------------------------------------------------- */
bool llmpi_model_has_tokenizer(const llmpi_model *m) { return m->tok != NULL; }

int llmpi_tokenize(const llmpi_model *m, const char *text, int len, bool add_special, bool parse_special,
                   int32_t *tokens, int max_tokens, llmpi_error *err) {
    if (!m->tok) {
        llmpi_set_error(err, LLMPI_ERR_NO_TOKENIZER, "the model has no tokenizer (use --tokens to pass token ids)");
        return -1;
    }
    size_t n = len < 0 ? strlen(text) : (size_t)len;
    int r = tokenizer_encode(m->tok, text, n, add_special, parse_special, tokens, max_tokens);
    if (r < 0) llmpi_set_error(err, LLMPI_ERR_INVALID_ARG, "tokenization failed");
    return r;
}

int llmpi_token_to_piece(const llmpi_model *m, int32_t token, char *buf, int buflen, bool render_special) {
    return m->tok ? tokenizer_token_to_piece(m->tok, token, buf, buflen, render_special) : -1;
}
int32_t llmpi_token_bos(const llmpi_model *m) { return m->tok ? tokenizer_bos(m->tok) : -1; }
int32_t llmpi_token_eos(const llmpi_model *m) { return m->tok ? tokenizer_eos(m->tok) : -1; }
bool llmpi_token_is_eog(const llmpi_model *m, int32_t token) { return m->tok && tokenizer_is_eog(m->tok, token); }

/* ---- context ------------------------------------------------------------------------------ */
struct llmpi_context {
    llmpi_model *model;
    llmpi_context_params p;
    llmpi_pool *pool;
    forward_state fs;
    int n_past;
    float *logits;       /* [n_logits][n_vocab] */
    int n_logits;        /* rows held from the last eval */
    int logits_first;    /* batch index of row 0 of logits */
    int last_n;          /* tokens in the last eval */
    size_t logits_cap;   /* rows allocated */
};

llmpi_context_params llmpi_context_default_params(void) {
    return (llmpi_context_params){ .n_ctx = 0, .n_batch = 32, .n_threads = 0 };
}

llmpi_status llmpi_context_create(llmpi_model *m, const llmpi_context_params *params, llmpi_context **out,
                                  llmpi_error *err) {
    *out = NULL;
    if (m->vocab_only) {
        llmpi_set_error(err, LLMPI_ERR_INVALID_ARG, "model was loaded vocab-only: no weights to run");
        return LLMPI_ERR_INVALID_ARG;
    }
    llmpi_context_params p = params ? *params : llmpi_context_default_params();
    if (p.n_ctx < 0 || p.n_batch < 0 || p.n_threads < 0) {
        llmpi_set_error(err, LLMPI_ERR_INVALID_ARG, "context parameters must not be negative");
        return LLMPI_ERR_INVALID_ARG;
    }
    if (p.n_ctx == 0) p.n_ctx = m->hp.n_ctx_train < LLMPI_DEFAULT_CTX ? m->hp.n_ctx_train : LLMPI_DEFAULT_CTX;
    if (p.n_batch == 0) p.n_batch = 32;
    if (p.n_batch > p.n_ctx) p.n_batch = p.n_ctx;
    llmpi_context *c = calloc(1, sizeof *c);
    if (!c) { llmpi_set_error(err, LLMPI_ERR_NOMEM, "out of memory"); return LLMPI_ERR_NOMEM; }
    c->model = m;
    c->p = p;
    c->pool = pool_create(p.n_threads);
    if (!c->pool) {
        free(c);
        llmpi_set_error(err, LLMPI_ERR_NOMEM, "cannot start %d threads", p.n_threads);
        return LLMPI_ERR_NOMEM;
    }
    c->p.n_threads = pool_n_threads(c->pool);
    llmpi_status st = forward_init(&c->fs, m, c->pool, p.n_ctx, p.n_batch, p.kv_f32, err);
    if (st != LLMPI_OK) {
        pool_free(c->pool);
        free(c);
        return st;
    }
    *out = c;
    return LLMPI_OK;
}

void llmpi_context_free(llmpi_context *c) {
    if (!c) return;
    forward_free(&c->fs);
    pool_free(c->pool);
    free(c->logits);
    free(c);
}

int llmpi_n_ctx(const llmpi_context *c) { return c->p.n_ctx; }
int llmpi_n_past(const llmpi_context *c) { return c->n_past; }
int llmpi_n_threads(const llmpi_context *c) { return c->p.n_threads; }

void llmpi_set_matmul_observer(llmpi_context *c, llmpi_matmul_observer fn, void *user) {
    c->fs.observer = fn;
    c->fs.observer_user = user;
}
void llmpi_kv_clear(llmpi_context *c) { c->n_past = 0; c->n_logits = 0; c->last_n = 0; }

static bool ensure_logit_rows(llmpi_context *c, size_t rows) {
    if (rows <= c->logits_cap) return true;
    float *l = realloc(c->logits, rows * (size_t)c->model->hp.n_vocab * sizeof(float));
    if (!l) return false;
    c->logits = l;
    c->logits_cap = rows;
    return true;
}

llmpi_status llmpi_eval(llmpi_context *c, const int32_t *tokens, int n, llmpi_error *err) {
    const int V = c->model->hp.n_vocab;
    if (n <= 0 || !tokens) {
        llmpi_set_error(err, LLMPI_ERR_INVALID_ARG, "nothing to evaluate (empty token list)");
        return LLMPI_ERR_INVALID_ARG;
    }
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= V) {
            llmpi_set_error(err, LLMPI_ERR_INVALID_ARG, "token id %d at position %d is outside the vocabulary [0, %d)",
                            tokens[i], i, V);
            return LLMPI_ERR_INVALID_ARG;
        }
    }
    if (n > c->p.n_ctx - c->n_past) {
        llmpi_set_error(err, LLMPI_ERR_CONTEXT_FULL,
                        "%d tokens do not fit in the context: %d of %d positions are free (use -c to enlarge it)", n,
                        c->p.n_ctx - c->n_past, c->p.n_ctx);
        return LLMPI_ERR_CONTEXT_FULL;
    }
    const size_t rows = c->p.logits_all ? (size_t)n : 1;
    if (!ensure_logit_rows(c, rows)) {
        llmpi_set_error(err, LLMPI_ERR_NOMEM, "out of memory for logits");
        return LLMPI_ERR_NOMEM;
    }
    for (int done = 0; done < n;) {
        const int nb = n - done < c->p.n_batch ? n - done : c->p.n_batch;
        const bool last = done + nb == n;
        float *out = NULL;
        int first = nb;
        if (c->p.logits_all) { out = c->logits + (size_t)done * (size_t)V; first = 0; }
        else if (last) { out = c->logits; first = nb - 1; }
        forward_batch(&c->fs, tokens + done, nb, c->n_past, out, first);
        c->n_past += nb;
        done += nb;
    }
    c->last_n = n;
    c->n_logits = (int)rows;
    c->logits_first = c->p.logits_all ? 0 : n - 1;
    return LLMPI_OK;
}

const float *llmpi_get_logits(const llmpi_context *c, int i) {
    if (c->last_n == 0) return NULL;
    if (i < 0) i += c->last_n;
    if (i < c->logits_first || i >= c->logits_first + c->n_logits) return NULL;
    return c->logits + (size_t)(i - c->logits_first) * (size_t)c->model->hp.n_vocab;
}

/* ---- generation --------------------------------------------------------------------------- */
llmpi_status llmpi_generate(llmpi_context *c, llmpi_sampler *s, const int32_t *prompt, int n_prompt, int n_predict,
                            bool ignore_eog, llmpi_token_cb cb, void *user, llmpi_gen_stats *stats, llmpi_error *err) {
    llmpi_gen_stats st = { 0 };
    st.n_prompt = n_prompt;
    if (n_predict < 0) {
        llmpi_set_error(err, LLMPI_ERR_INVALID_ARG, "number of tokens to predict must not be negative (got %d)", n_predict);
        return LLMPI_ERR_INVALID_ARG;
    }
    if (n_prompt + n_predict > c->p.n_ctx - c->n_past) {
        llmpi_set_error(err, LLMPI_ERR_CONTEXT_FULL,
                        "prompt (%d tokens) + %d generated tokens do not fit in the context of %d (%d used); use -c",
                        n_prompt, n_predict, c->p.n_ctx, c->n_past);
        return LLMPI_ERR_CONTEXT_FULL;
    }
    llmpi_status r = LLMPI_OK;
    double t1 = llmpi_time_seconds();
    if (n_prompt > 0) {
        for (int i = 0; i < n_prompt; i++) llmpi_sampler_accept(s, prompt[i]);
        const double t0 = t1;
        r = llmpi_eval(c, prompt, n_prompt, err);
        if (r != LLMPI_OK) return r;
        t1 = llmpi_time_seconds();
        st.prompt_seconds = t1 - t0;
    } else if (!llmpi_get_logits(c, -1)) {
        llmpi_set_error(err, LLMPI_ERR_INVALID_ARG, "no prompt given and nothing evaluated yet to continue from");
        return LLMPI_ERR_INVALID_ARG;
    }

    const llmpi_model *m = c->model;
    tokenizer_stream ts;
    tokenizer_stream_init(&ts);
    char piece[256];
    for (int i = 0; i < n_predict; i++) {
        const float *logits = llmpi_get_logits(c, -1);
        int32_t tok = llmpi_sampler_sample(s, logits, m->hp.n_vocab);
        if (tok < 0) { llmpi_set_error(err, LLMPI_ERR_NOMEM, "sampling failed"); return LLMPI_ERR_NOMEM; }
        llmpi_sampler_accept(s, tok);
        st.n_generated++;
        const bool eog = !ignore_eog && llmpi_token_is_eog(m, tok);
        int len = 0;
        if (m->tok && !eog) len = tokenizer_stream_feed(m->tok, &ts, tok, piece, (int)sizeof piece);
        if (len < 0) len = 0;
        if (cb && !cb(tok, piece, len, user)) { st.stopped_by_callback = true; break; }
        if (eog) { st.stopped_by_eog = true; break; }
        if (i + 1 < n_predict) {
            r = llmpi_eval(c, &tok, 1, err);
            if (r != LLMPI_OK) return r;
        }
    }
    if (m->tok && cb && !st.stopped_by_callback) {
        int len = tokenizer_stream_flush(&ts, piece, (int)sizeof piece);
        if (len > 0) cb(-1, piece, len, user);
    }
    st.gen_seconds = llmpi_time_seconds() - t1;
    if (stats) *stats = st;
    return LLMPI_OK;
}
