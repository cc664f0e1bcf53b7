/* Internal model representation: hyperparameters, per-architecture description, bound weights.
 * Shapes use ggml's ne order: a weight [ne0 = in, ne1 = out] has ne1 rows of ne0 elements. */
#ifndef LLMPI_MODEL_H
#define LLMPI_MODEL_H

#include "gguf.h"
#include "kernels.h"
#include "llmpi.h"

typedef struct llmpi_tokenizer llmpi_tokenizer; /* engine/tokenizer.h */

typedef enum { FFN_ACT_SILU, FFN_ACT_GELU, FFN_ACT_RELU2 } ffn_activation;

/* What distinguishes one architecture's graph from another's. The forward pass reads these flags;
 * adding an architecture is a new row in engine/arch.c, not a new forward pass. */
typedef struct {
    const char    *name;             /* general.architecture */
    bool           rope_neox;        /* NEOX pairs (i, i+n_rot/2) vs NORM adjacent pairs */
    ffn_activation ffn_act;
    bool           ffn_gate_fused;   /* phi3: ffn_up holds [gate | up] (2*n_ff rows), no ffn_gate */
    bool           qkv_fused_ok;     /* phi3: attn_qkv may replace attn_q/k/v */
    bool           qkv_bias_ok;      /* qwen2: attn_q/k/v.bias optional */
    bool           sub_norms;        /* bitnet: attn_sub_norm before Wo, ffn_sub_norm before Wdown */
    bool           weight_scales_ok; /* bitnet: optional per-matrix *.scale [1] tensors */
    bool           post_norms;       /* gemma2: post_attention_norm, post_ffw_norm */
    bool           embd_scale_sqrt;  /* gemma2: embeddings * sqrt(n_embd) */
    bool           softcaps;         /* gemma2: attention and final logit soft-capping */
    bool           swa_even_layers;  /* gemma2: even layers use the sliding window */
    bool           output_always_tied;
    bool           q_prescale;       /* phi3, gemma2: Q is multiplied by the attention scale before Q·K
                                      * (llama.cpp scales the tensor, then rounds it to F16) */
} arch_desc;

const arch_desc *arch_find(const char *name, size_t len);

typedef struct {
    int   n_vocab;
    int   n_ctx_train;
    int   n_embd;          /* E */
    int   n_layer;
    int   n_head;          /* H */
    int   n_head_kv;       /* Hk */
    int   n_ff;            /* F */
    int   head_dim;        /* D = key_length = value_length */
    int   n_rot;           /* rotated dims per head (rope.dimension_count) */
    float rms_eps;
    float rope_base;
    float rope_freq_scale; /* 1 / rope.scaling.factor (linear) */
    float rope_attn_factor;
    int   swa_window;      /* gemma2 sliding window (0 = none) */
    float attn_softcap;    /* 0 = off */
    float final_softcap;   /* 0 = off */
} model_hparams;

/* A weight matrix plus the optional BitNet per-matrix output scale. */
typedef struct {
    kern_matrix m;
    float out_scale;       /* *.scale tensor value, 1 if absent */
    const float *bias;     /* qwen2 q/k/v bias (ne1 floats), NULL if absent */
    const char *name;      /* tensor name in the file (for observers), NULL if absent */
} model_weight;

typedef struct {
    float *attn_norm;                    /* [E] */
    model_weight wq, wk, wv;             /* [E, H*D], [E, Hk*D], [E, Hk*D] */
    model_weight wqkv;                   /* phi3 fused [E, (H+2Hk)*D]; m.data NULL when separate */
    float *attn_sub_norm;                /* bitnet [H*D] */
    model_weight wo;                     /* [H*D, E] */
    float *post_attn_norm;               /* gemma2 [E] */
    float *ffn_norm;                     /* [E] */
    model_weight w_gate, w_up;           /* [E, F] each (phi3: w_up [E, 2F], no gate) */
    float *ffn_sub_norm;                 /* bitnet [F] */
    model_weight w_down;                 /* [F, E] */
    float *post_ffw_norm;                /* gemma2 [E] */
} model_layer;

struct llmpi_model {
    gguf_file        file;
    const arch_desc *arch;
    char             arch_name[64];
    char             name[128];
    model_hparams    hp;
    bool             vocab_only;
    llmpi_tokenizer *tok;                /* NULL if the file has no tokenizer */
    const gguf_tensor *tok_embd_t;       /* [E, V] */
    model_weight     output;             /* [E, V] (token_embd when tied) */
    float           *output_norm;        /* [E] */
    float           *rope_freqs;         /* [n_rot/2] or NULL */
    model_layer     *layers;
    float           *f32_arena;          /* owns every float* above */
    uint64_t         n_params, n_bytes;
    llmpi_act_scheme act_scheme;         /* resolved (GGML or BITNET) for ternary matrices */
    int              n_ternary;          /* ternary matrices bound (0: the scheme is moot) */
    bool             no_repack;          /* llmpi_model_params.no_repack or $LLMPI_REPACK=0 */
    void           **repacked;           /* buffers of weights converted at load (owned) */
    int              n_repacked, cap_repacked;
    llmpi_log_fn     log;
    void            *log_user;
};

/* Loads hyperparameters and binds tensors; the forward pass lives in engine/forward.c. */
llmpi_status model_bind(llmpi_model *m, llmpi_error *err);

/* Forward pass state (one per context). */
typedef struct {
    const llmpi_model *model;
    llmpi_pool *pool;
    int n_ctx, n_batch;
    bool kv_f32;
    void *k_cache, *v_cache;       /* [n_layer][n_ctx][Hk*D] as f16 bits or f32 */
    /* Activations for one micro-batch of up to n_batch tokens. */
    float *x, *xb, *xb2;           /* [B][E] residual stream, normed input, projection output */
    float *q, *k, *v, *att;        /* [B][H*D], [B][Hk*D], [B][Hk*D], [B][H*D] */
    float *qkv;                    /* [B][(H+2Hk)*D] phi3 */
    float *hb, *hb2;               /* [B][2F], [B][F] FFN hidden */
    float *scores;                 /* kern_attention scratch (kern_attention_scratch_bytes) */
    float *cos_sin;                /* [B][n_rot] */
    void  *mm_scratch;             /* activation conversion buffer */
    size_t mm_scratch_bytes;
    llmpi_matmul_observer observer; /* optional: sees every matmul input */
    void  *observer_user;
} forward_state;

llmpi_status forward_init(forward_state *fs, const llmpi_model *m, llmpi_pool *pool, int n_ctx, int n_batch,
                          bool kv_f32, llmpi_error *err);
void forward_free(forward_state *fs);
/* Runs n (<= n_batch) tokens at positions pos0..pos0+n-1 through the model. If logits != NULL, writes
 * logits for the tokens whose index is >= first_logit ([n - first_logit][n_vocab]). */
void forward_batch(forward_state *fs, const int32_t *tokens, int n, int pos0, float *logits, int first_logit);

void llmpi_set_error(llmpi_error *err, llmpi_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#endif
