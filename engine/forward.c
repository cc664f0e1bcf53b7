/* The transformer forward pass, read top to bottom in forward_batch():
 *   embed -> per layer [norm -> QKV -> RoPE -> KV cache -> attention -> output proj -> residual
 *                       -> norm -> FFN -> residual] -> final norm -> logits.
 * Architecture differences come from arch_desc flags (engine/arch.c). Numerics follow llama.cpp's CPU
 * backend where it matters for logit parity (docs/formats.md §4.6): F16 KV cache, Q rounded to F16 before
 * Q·K, softmax probabilities rounded to F16 before P·V, RMS sums in double. */
#include "model.h"
#include "attention.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 64

static void *xalloc_raw(size_t bytes) {
    bytes = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    return aligned_alloc(ALIGN, bytes ? bytes : ALIGN);
}

static void *xalloc(size_t bytes) {
    void *p = xalloc_raw(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

static size_t weight_scratch(const model_weight *w, int B) {
    return w->m.data ? kern_matmul_scratch_bytes(&w->m, B) : 0;
}

llmpi_status forward_init(forward_state *fs, const llmpi_model *m, llmpi_pool *pool, int n_ctx, int n_batch,
                          bool kv_f32, llmpi_error *err) {
    memset(fs, 0, sizeof *fs);
    const model_hparams *hp = &m->hp;
    const size_t E = (size_t)hp->n_embd, HD = (size_t)hp->n_head * (size_t)hp->head_dim,
                 KD = (size_t)hp->n_head_kv * (size_t)hp->head_dim, F = (size_t)hp->n_ff, B = (size_t)n_batch;
    fs->model = m;
    fs->pool = pool;
    fs->n_ctx = n_ctx;
    fs->n_batch = n_batch;
    fs->kv_f32 = kv_f32;
    const size_t kv_elems = (size_t)hp->n_layer * (size_t)n_ctx * KD;
    const size_t elem = kv_f32 ? sizeof(float) : sizeof(uint16_t);
    if (kv_elems / (size_t)n_ctx / (size_t)hp->n_layer != KD || kv_elems > ((size_t)1 << 40) / elem) {
        llmpi_set_error(err, LLMPI_ERR_NOMEM, "KV cache of %d tokens is too large", n_ctx);
        return err->code;
    }
    /* Not zeroed: attention reads only positions already written, and untouched pages of a large
     * cache then cost no memory (RSS grows with the tokens actually used). */
    fs->k_cache = xalloc_raw(kv_elems * elem);
    fs->v_cache = xalloc_raw(kv_elems * elem);
    fs->x = xalloc(B * E * sizeof(float));
    fs->xb = xalloc(B * max_sz(E, HD) * sizeof(float));
    fs->xb2 = xalloc(B * E * sizeof(float));
    fs->q = xalloc(B * HD * sizeof(float));
    fs->k = xalloc(B * KD * sizeof(float));
    fs->v = xalloc(B * KD * sizeof(float));
    fs->att = xalloc(B * HD * sizeof(float));
    fs->qkv = xalloc(B * (HD + 2 * KD) * sizeof(float));
    fs->hb = xalloc(B * 2 * F * sizeof(float));
    fs->hb2 = xalloc(B * F * sizeof(float));
    const kern_attn_params ap = { .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim,
                                  .n_ctx = n_ctx, .kv_f32 = kv_f32 };
    fs->scores = xalloc_raw(kern_attention_scratch_bytes(&ap, pool_n_threads(pool))); /* kern_attention scratch */
    fs->cos_sin = xalloc(B * (size_t)hp->n_rot * sizeof(float));
    size_t scratch = weight_scratch(&m->output, 1);
    for (int il = 0; il < hp->n_layer; il++) {
        const model_layer *l = &m->layers[il];
        const model_weight *ws[] = { &l->wq, &l->wk, &l->wv, &l->wqkv, &l->wo, &l->w_gate, &l->w_up, &l->w_down };
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) scratch = max_sz(scratch, weight_scratch(ws[i], n_batch));
    }
    scratch = max_sz(scratch, weight_scratch(&m->output, n_batch));
    fs->mm_scratch_bytes = scratch;
    fs->mm_scratch = xalloc(scratch);
    if (!fs->k_cache || !fs->v_cache || !fs->x || !fs->xb || !fs->xb2 || !fs->q || !fs->k || !fs->v || !fs->att ||
        !fs->qkv || !fs->hb || !fs->hb2 || !fs->scores || !fs->cos_sin || !fs->mm_scratch) {
        forward_free(fs);
        llmpi_set_error(err, LLMPI_ERR_NOMEM, "out of memory allocating a context of %d tokens", n_ctx);
        return err->code;
    }
    return LLMPI_OK;
}

void forward_free(forward_state *fs) {
    void *ps[] = { fs->k_cache, fs->v_cache, fs->x, fs->xb, fs->xb2, fs->q, fs->k, fs->v, fs->att, fs->qkv,
                   fs->hb, fs->hb2, fs->scores, fs->cos_sin, fs->mm_scratch };
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) free(ps[i]);
    memset(fs, 0, sizeof *fs);
}

/* y[t] = W x[t] (+ bias) * out_scale for t < n; x rows are W.ne0 apart, y rows ldy apart. */
static void matmul(forward_state *fs, const model_weight *w, const float *x, int n, float *y, int64_t ldy) {
    if (fs->observer && w->name) fs->observer(w->name, x, n, w->m.ne0, fs->observer_user);
    kern_matmul(fs->pool, &w->m, x, n, y, ldy, fs->mm_scratch);
    if (w->out_scale != 1.0f || w->bias) {
        for (int t = 0; t < n; t++) {
            float *yt = y + (size_t)t * (size_t)ldy;
            if (w->out_scale != 1.0f) for (int64_t r = 0; r < w->m.ne1; r++) yt[r] *= w->out_scale;
            if (w->bias) for (int64_t r = 0; r < w->m.ne1; r++) yt[r] += w->bias[r];
        }
    }
}

/* ---- attention: kernels/attention.c (tiled over KV head x query block, threaded) ---------------- */
static void attention(forward_state *fs, int il, int n, int pos0) {
    const model_hparams *hp = &fs->model->hp;
    const size_t KD = (size_t)hp->n_head_kv * (size_t)hp->head_dim;
    const size_t layer_off = (size_t)il * (size_t)fs->n_ctx * KD * (fs->kv_f32 ? sizeof(float) : sizeof(uint16_t));
    const float scale = 1.0f / sqrtf((float)hp->head_dim);
    const bool prescale = fs->model->arch->q_prescale;
    const kern_attn_params ap = {
        .n_q = n, .pos0 = pos0, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim,
        .n_ctx = fs->n_ctx,
        .window = fs->model->arch->swa_even_layers && il % 2 == 0 ? hp->swa_window : 0,
        .kv_f32 = fs->kv_f32,
        .q_scale = prescale ? scale : 1.0f,   /* phi3/gemma2 scale Q before its f16 rounding */
        .score_scale = prescale ? 1.0f : scale,
        .softcap = hp->attn_softcap,
        .probs_f32 = fs->model->act_scheme == LLMPI_ACT_BITNET,   /* bitnet.cpp numerics (docs/models.md) */
        .q = fs->q, .k = (const char *)fs->k_cache + layer_off, .v = (const char *)fs->v_cache + layer_off,
        .out = fs->att,
    };
    kern_attention(fs->pool, &ap, fs->scores);
}

static void apply_rope(forward_state *fs, int n, int pos0) {
    const llmpi_model *m = fs->model;
    const model_hparams *hp = &m->hp;
    const int H = hp->n_head, Hk = hp->n_head_kv, D = hp->head_dim;
    for (int t = 0; t < n; t++) {
        float *cs = fs->cos_sin + (size_t)t * (size_t)hp->n_rot;
        kern_rope_cache(cs, hp->n_rot, pos0 + t, hp->rope_base, hp->rope_freq_scale, m->rope_freqs,
                        hp->rope_attn_factor);
        for (int h = 0; h < H; h++) kern_rope(fs->q + ((size_t)t * H + h) * D, hp->n_rot, cs, m->arch->rope_neox);
        for (int h = 0; h < Hk; h++) kern_rope(fs->k + ((size_t)t * Hk + h) * D, hp->n_rot, cs, m->arch->rope_neox);
    }
}

void forward_batch(forward_state *fs, const int32_t *tokens, int n, int pos0, float *logits, int first_logit) {
    const llmpi_model *m = fs->model;
    const model_hparams *hp = &m->hp;
    const arch_desc *arch = m->arch;
    const int E = hp->n_embd, H = hp->n_head, Hk = hp->n_head_kv, D = hp->head_dim, F = hp->n_ff;
    const size_t HD = (size_t)H * D, KD = (size_t)Hk * D;
    const quant_type_traits *et = quant_traits(m->tok_embd_t->type);
    const size_t embd_row = quant_row_size(m->tok_embd_t->type, E);

    /* Embedding lookup: exact dequantization of the token's row (not an activation-quantized matmul). */
    for (int t = 0; t < n; t++) {
        float *x = fs->x + (size_t)t * E;
        et->to_float((const uint8_t *)m->tok_embd_t->data + (size_t)tokens[t] * embd_row, x, E);
        if (arch->embd_scale_sqrt) {
            const float s = sqrtf((float)E);
            for (int i = 0; i < E; i++) x[i] *= s;
        }
    }

    for (int il = 0; il < hp->n_layer; il++) {
        const model_layer *l = &m->layers[il];

        /* ---- attention block ---- */
        for (int t = 0; t < n; t++) kern_rmsnorm(fs->xb + (size_t)t * E, fs->x + (size_t)t * E, l->attn_norm, E, hp->rms_eps);
        if (l->wqkv.m.data) {
            const size_t QKV = HD + 2 * KD;
            matmul(fs, &l->wqkv, fs->xb, n, fs->qkv, (int64_t)QKV);
            for (int t = 0; t < n; t++) {
                const float *row = fs->qkv + (size_t)t * QKV;
                memcpy(fs->q + (size_t)t * HD, row, HD * sizeof(float));
                memcpy(fs->k + (size_t)t * KD, row + HD, KD * sizeof(float));
                memcpy(fs->v + (size_t)t * KD, row + HD + KD, KD * sizeof(float));
            }
        } else {
            matmul(fs, &l->wq, fs->xb, n, fs->q, (int64_t)HD);
            matmul(fs, &l->wk, fs->xb, n, fs->k, (int64_t)KD);
            matmul(fs, &l->wv, fs->xb, n, fs->v, (int64_t)KD);
        }
        apply_rope(fs, n, pos0);

        /* Store K and V for positions pos0..pos0+n-1; attention then reads them back from the cache
         * (rounded to F16 like llama.cpp's cache), including the current batch's own tokens. */
        const size_t base = ((size_t)il * (size_t)fs->n_ctx + (size_t)pos0) * KD; /* elements */
        if (fs->kv_f32) {
            memcpy((float *)fs->k_cache + base, fs->k, (size_t)n * KD * sizeof(float));
            memcpy((float *)fs->v_cache + base, fs->v, (size_t)n * KD * sizeof(float));
        } else { /* rows of consecutive positions are contiguous in the cache: one conversion each */
            kern_f32_to_f16_row(fs->k, (uint16_t *)fs->k_cache + base, (int64_t)n * (int64_t)KD);
            kern_f32_to_f16_row(fs->v, (uint16_t *)fs->v_cache + base, (int64_t)n * (int64_t)KD);
        }
        attention(fs, il, n, pos0);

        float *att_in = fs->att;
        if (l->attn_sub_norm) {
            for (int t = 0; t < n; t++)
                kern_rmsnorm(fs->xb + (size_t)t * HD, fs->att + (size_t)t * HD, l->attn_sub_norm, (int64_t)HD, hp->rms_eps);
            att_in = fs->xb;
        }
        matmul(fs, &l->wo, att_in, n, fs->xb2, E);
        if (l->post_attn_norm)
            for (int t = 0; t < n; t++)
                kern_rmsnorm(fs->xb2 + (size_t)t * E, fs->xb2 + (size_t)t * E, l->post_attn_norm, E, hp->rms_eps);
        for (size_t i = 0; i < (size_t)n * E; i++) fs->x[i] += fs->xb2[i];

        /* ---- feed-forward block ---- */
        for (int t = 0; t < n; t++) kern_rmsnorm(fs->xb + (size_t)t * E, fs->x + (size_t)t * E, l->ffn_norm, E, hp->rms_eps);
        float *gate, *up;
        int64_t ld;
        if (arch->ffn_gate_fused) {
            matmul(fs, &l->w_up, fs->xb, n, fs->hb, 2 * (int64_t)F); /* rows: [gate F | up F] */
            gate = fs->hb; up = fs->hb + F; ld = 2 * (int64_t)F;
        } else {
            matmul(fs, &l->w_gate, fs->xb, n, fs->hb, F);
            matmul(fs, &l->w_up, fs->xb, n, fs->hb2, F);
            gate = fs->hb; up = fs->hb2; ld = F;
        }
        for (int t = 0; t < n; t++) {
            const float *g = gate + (size_t)t * (size_t)ld, *u = up + (size_t)t * (size_t)ld;
            float *o = fs->hb2 + (size_t)t * F; /* may alias u for the unfused case: same index, read first */
            /* Whole-row activations with ggml's numerics (ggml_vec_swiglu_f32 / _geglu_f32). */
            switch (arch->ffn_act) {
            case FFN_ACT_GELU: kern_geglu(o, g, u, F); break;
            case FFN_ACT_RELU2:
                for (int i = 0; i < F; i++) {
                    const float a = g[i] > 0.0f ? g[i] * g[i] : 0.0f; /* relu, sqr, then mul */
                    o[i] = a * u[i];
                }
                break;
            default: kern_swiglu(o, g, u, F); break;
            }
            if (l->ffn_sub_norm) kern_rmsnorm(o, o, l->ffn_sub_norm, F, hp->rms_eps);
        }
        matmul(fs, &l->w_down, fs->hb2, n, fs->xb2, E);
        if (l->post_ffw_norm)
            for (int t = 0; t < n; t++)
                kern_rmsnorm(fs->xb2 + (size_t)t * E, fs->xb2 + (size_t)t * E, l->post_ffw_norm, E, hp->rms_eps);
        for (size_t i = 0; i < (size_t)n * E; i++) fs->x[i] += fs->xb2[i];
    }

    if (!logits || first_logit >= n) return;
    const int n_out = n - first_logit;
    for (int t = 0; t < n_out; t++)
        kern_rmsnorm(fs->xb + (size_t)t * E, fs->x + (size_t)(first_logit + t) * E, m->output_norm, E, hp->rms_eps);
    matmul(fs, &m->output, fs->xb, n_out, logits, hp->n_vocab);
    if (hp->final_softcap > 0.0f)
        for (size_t i = 0; i < (size_t)n_out * (size_t)hp->n_vocab; i++)
            logits[i] = hp->final_softcap * tanhf(logits[i] / hp->final_softcap);
}
