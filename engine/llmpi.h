/* LLMPi public API. Link with libllmpi.a -lm -pthread.
 *
 *   llmpi_model *m;  llmpi_error e;
 *   llmpi_model_params mp = llmpi_model_default_params();
 *   if (llmpi_model_load("model.gguf", &mp, &m, &e)) { fprintf(stderr, "%s\n", e.msg); ... }
 *   llmpi_context_params cp = llmpi_context_default_params();
 *   llmpi_context *ctx;  llmpi_context_create(m, &cp, &ctx, &e);
 *   int32_t toks[256]; int n = llmpi_tokenize(m, "Once upon a time", -1, true, false, toks, 256, &e);
 *   llmpi_eval(ctx, toks, n, &e);                     // logits of the last token: llmpi_get_logits(ctx, -1)
 *   ... or llmpi_generate(ctx, sampler, toks, n, 64, on_token, user, &stats, &e);
 *   llmpi_context_free(ctx); llmpi_model_free(m);
 *
 * The library never prints and never exits: every failure returns a status and a one-line message
 * in llmpi_error. Diagnostics go to an optional log callback. The only global state is the thread pool. */
#ifndef LLMPI_H
#define LLMPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LLMPI_OK = 0,
    LLMPI_ERR_IO,            /* missing/unreadable file */
    LLMPI_ERR_FORMAT,        /* corrupt or malformed GGUF / model */
    LLMPI_ERR_UNSUPPORTED,   /* architecture, tensor type or tokenizer this build does not support */
    LLMPI_ERR_NOMEM,
    LLMPI_ERR_INVALID_ARG,
    LLMPI_ERR_CONTEXT_FULL,  /* tokens do not fit in the context */
    LLMPI_ERR_NO_TOKENIZER,  /* the file has no tokenizer */
    LLMPI_ERR_CANCELLED,     /* stopped by a callback */
} llmpi_status;

typedef struct {
    llmpi_status code;
    char msg[512];
} llmpi_error;

const char *llmpi_status_string(llmpi_status s);

typedef enum { LLMPI_LOG_ERROR = 0, LLMPI_LOG_WARN = 1, LLMPI_LOG_INFO = 2, LLMPI_LOG_DEBUG = 3 } llmpi_log_level;
typedef void (*llmpi_log_fn)(llmpi_log_level level, const char *msg, void *user);

/* ---- model ---------------------------------------------------------------------------------- */
typedef struct llmpi_model llmpi_model;

/* How activations are quantized for ternary weight matrices (TQ1_0, TQ2_0, I2_S; docs/models.md):
 *   LLMPI_ACT_GGML:   Q8_K blocks (256 values, one f32 scale each) - what llama.cpp computes for
 *                     TQ1_0/TQ2_0, so its logits are reproduced;
 *   LLMPI_ACT_BITNET: I8_S, int8 with one absmax scale per token row - what the BitNet b1.58 papers
 *                     train with and bitnet.cpp computes for I2_S;
 *   LLMPI_ACT_AUTO:   per the file: BITNET if it holds any I2_S matrix, else GGML.
 * Other weight types are not affected. */
typedef enum { LLMPI_ACT_AUTO = 0, LLMPI_ACT_GGML = 1, LLMPI_ACT_BITNET = 2 } llmpi_act_scheme;

typedef struct {
    bool use_mmap;          /* default true; false reads the weights into memory (--no-mmap) */
    bool vocab_only;        /* load only the tokenizer (works on vocab-only GGUF files) */
    llmpi_act_scheme act_scheme; /* ternary matrices' activation scheme (default AUTO, see above) */
    bool no_repack;         /* keep every weight in its file layout (default false: weights whose kernels
                               run faster in another layout are converted at load, e.g. TQ1_0 -> TQ2_0;
                               docs/kernels.md "Repacking"). $LLMPI_REPACK=0 does the same. */
    llmpi_log_fn log;       /* optional */
    void *log_user;
} llmpi_model_params;

llmpi_model_params llmpi_model_default_params(void);
llmpi_status llmpi_model_load(const char *path, const llmpi_model_params *params, llmpi_model **out, llmpi_error *err);
void llmpi_model_free(llmpi_model *m);

const char *llmpi_model_arch(const llmpi_model *m);
const char *llmpi_model_name(const llmpi_model *m);     /* general.name or "" */
int      llmpi_model_n_vocab(const llmpi_model *m);
int      llmpi_model_n_ctx_train(const llmpi_model *m);
int      llmpi_model_n_embd(const llmpi_model *m);
int      llmpi_model_n_layer(const llmpi_model *m);
uint64_t llmpi_model_n_params(const llmpi_model *m);    /* elements of all weight tensors */
uint64_t llmpi_model_size(const llmpi_model *m);        /* bytes of all weight tensors */
/* Weight types present, e.g. "Q4_K:13 Q6_K:3 F32:5"; writes at most len bytes. */
void     llmpi_model_type_mix(const llmpi_model *m, char *buf, size_t len);
/* Activation scheme the model's ternary matrices use: "ggml", "bitnet", or "none" (no ternary
 * matrices). */
const char *llmpi_model_act_scheme(const llmpi_model *m);
/* "auto" / "ggml" / "bitnet" <-> llmpi_act_scheme; the parser returns -1 for an unknown name. */
const char *llmpi_act_scheme_name(llmpi_act_scheme s);
int llmpi_act_scheme_from_name(const char *name);
/* Comma-separated list of supported architectures. */
const char *llmpi_supported_archs(void);

/* Prints a dump of a GGUF file (header, metadata, tensor table) to out, without loading a model. */
llmpi_status llmpi_print_file_info(const char *path, bool use_mmap, FILE *out, llmpi_error *err);

/* ---- tokenizer ------------------------------------------------------------------------------ */
/* Tokenizes text (len < 0: NUL-terminated). add_special: BOS (and EOS) as the model specifies.
 * Returns the number of tokens (which may exceed max_tokens: nothing past max_tokens is written),
 * or -1 with err set. */
int  llmpi_tokenize(const llmpi_model *m, const char *text, int len, bool add_special, bool parse_special,
                    int32_t *tokens, int max_tokens, llmpi_error *err);
/* Bytes of one token; returns the length (needed length if > buflen), -1 for an invalid id. */
int  llmpi_token_to_piece(const llmpi_model *m, int32_t token, char *buf, int buflen, bool render_special);
int32_t llmpi_token_bos(const llmpi_model *m);
int32_t llmpi_token_eos(const llmpi_model *m);
bool llmpi_token_is_eog(const llmpi_model *m, int32_t token);
bool llmpi_model_has_tokenizer(const llmpi_model *m);

/* ---- context: KV cache, evaluation, logits -------------------------------------------------- */
typedef struct llmpi_context llmpi_context;

#define LLMPI_DEFAULT_CTX 4096  /* default context when n_ctx = 0 and the model allows more */

typedef struct {
    int  n_ctx;        /* 0 = the model's training context, capped at LLMPI_DEFAULT_CTX (like llama.cpp) */
    int  n_batch;      /* tokens per forward pass when evaluating a prompt (micro-batch), default 32 */
    int  n_threads;    /* 0 = online cores */
    bool kv_f32;       /* KV cache in F32 instead of F16 */
    bool logits_all;   /* keep logits for every token of each eval, not only the last */
} llmpi_context_params;

llmpi_context_params llmpi_context_default_params(void);
llmpi_status llmpi_context_create(llmpi_model *m, const llmpi_context_params *params, llmpi_context **out, llmpi_error *err);
void llmpi_context_free(llmpi_context *ctx);
int  llmpi_n_ctx(const llmpi_context *ctx);
int  llmpi_n_past(const llmpi_context *ctx);    /* tokens in the KV cache */
int  llmpi_n_threads(const llmpi_context *ctx); /* threads the context computes with */
void llmpi_kv_clear(llmpi_context *ctx);

/* Appends n tokens at the current position and runs the forward pass. Fails with LLMPI_ERR_CONTEXT_FULL
 * (nothing evaluated) if they do not fit. */
llmpi_status llmpi_eval(llmpi_context *ctx, const int32_t *tokens, int n, llmpi_error *err);
/* Logits (n_vocab floats) of token i of the last eval (i < 0 counts from the end: -1 = last).
 * Rows other than the last are available only with logits_all. NULL if unavailable. */
const float *llmpi_get_logits(const llmpi_context *ctx, int i);

/* Observer of every matrix product's input (for importance matrices, activation statistics):
 * called before W·x with the weight tensor's name (e.g. "blk.3.ffn_down.weight"), the n_tokens input
 * rows of n_in floats each (row-major, n_in apart), on the calling thread. Set NULL to remove. */
typedef void (*llmpi_matmul_observer)(const char *weight_name, const float *x, int n_tokens, int64_t n_in,
                                      void *user);
void llmpi_set_matmul_observer(llmpi_context *ctx, llmpi_matmul_observer fn, void *user);

/* ---- sampling ------------------------------------------------------------------------------- */
typedef struct {
    float    temp;            /* 0 = greedy (argmax) */
    int      top_k;           /* 0 = off */
    float    top_p;           /* 1 = off */
    float    min_p;           /* 0 = off */
    float    repeat_penalty;  /* 1 = off */
    int      repeat_last_n;   /* window of recent tokens the penalty looks at */
    uint64_t seed;
} llmpi_sampler_params;

typedef struct llmpi_sampler llmpi_sampler;
llmpi_sampler_params llmpi_sampler_default_params(void);
llmpi_sampler *llmpi_sampler_create(const llmpi_sampler_params *p);
void    llmpi_sampler_free(llmpi_sampler *s);
/* Picks a token from logits (n_vocab floats). Does not modify logits. */
int32_t llmpi_sampler_sample(llmpi_sampler *s, const float *logits, int n_vocab);
/* Records a token in the repetition window (prompt tokens and generated ones). */
void    llmpi_sampler_accept(llmpi_sampler *s, int32_t token);

/* ---- generation helper ---------------------------------------------------------------------- */
/* Called once per generated token with its text (complete UTF-8 only; may be empty while a multi-byte
 * character is pending). Return false to stop. */
typedef bool (*llmpi_token_cb)(int32_t token, const char *text, int len, void *user);

typedef struct {
    int    n_prompt;
    int    n_generated;
    double prompt_seconds;   /* wall time of prompt evaluation */
    double gen_seconds;      /* wall time of generation (first to last generated token) */
    bool   stopped_by_eog;
    bool   stopped_by_callback;
} llmpi_gen_stats;

/* Evaluates the prompt, then samples up to n_predict tokens (stopping at end-of-generation tokens
 * unless ignore_eog), calling cb for each. A cancelled run returns LLMPI_OK with stopped_by_callback.
 * n_prompt == 0 continues from the context as it is: sampling starts from the logits of the last
 * llmpi_eval (LLMPI_ERR_INVALID_ARG if nothing has been evaluated); prompt tokens evaluated that way are
 * not in the sampler's repetition window unless the caller accepted them. */
llmpi_status llmpi_generate(llmpi_context *ctx, llmpi_sampler *s, const int32_t *prompt, int n_prompt,
                            int n_predict, bool ignore_eog, llmpi_token_cb cb, void *user,
                            llmpi_gen_stats *stats, llmpi_error *err);

/* Peak resident set size of this process in bytes (0 if unknown). */
uint64_t llmpi_peak_rss_bytes(void);
/* Monotonic clock in seconds. */
double llmpi_time_seconds(void);

#ifdef __cplusplus
}
#endif
#endif
