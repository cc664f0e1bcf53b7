/* The transformer forward pass, read top to bottom in forward_batch():
 *   embed -> per layer [norm -> QKV -> RoPE -> KV cache -> attention -> output proj -> residual
 *                       -> norm -> FFN -> residual] -> final norm -> logits.
 * Architecture differences come from arch_desc flags (engine/arch.c). Numerics follow llama.cpp's CPU
 * backend where it matters for logit parity (docs/formats.md §4.6): F16 KV cache, Q rounded to F16 before
 * Q·K, softmax probabilities rounded to F16 before P·V, RMS sums in double. */
#include "model.h"

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
    fs->scores = xalloc((size_t)pool_n_threads(pool) * (size_t)n_ctx * sizeof(float));
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

static float kv_get(const forward_state *fs, const void *cache, size_t idx) {
    return fs->kv_f32 ? ((const float *)cache)[idx] : quant_f16_to_f32(((const uint16_t *)cache)[idx]);
}

static void kv_put(const forward_state *fs, void *cache, size_t idx, float v) {
    if (fs->kv_f32) ((float *)cache)[idx] = v;
    else ((uint16_t *)cache)[idx] = quant_f32_to_f16(v);
}

/* ---- attention: one (token, head) pair per work item ------------------------------------------ */
typedef struct {
    forward_state *fs;
    int layer, n, pos0;
    float scale;         /* applied to Q·K before softcap/softmax */
    int window;          /* sliding window (0 = full causal) */
} attn_job;

static void attention_task(void *argp, int ith, int nth) {
    attn_job *j = argp;
    forward_state *fs = j->fs;
    const model_hparams *hp = &fs->model->hp;
    const int H = hp->n_head, Hk = hp->n_head_kv, D = hp->head_dim, group = H / Hk;
    const size_t KD = (size_t)Hk * (size_t)D, HD = (size_t)H * (size_t)D;
    const size_t layer_off = (size_t)j->layer * (size_t)fs->n_ctx * KD;
    float *scores = fs->scores + (size_t)ith * (size_t)fs->n_ctx;
    const int64_t n_items = (int64_t)j->n * H;
    for (int64_t item = pool_chunk_next(fs->pool); item < n_items; item = pool_chunk_next(fs->pool)) {
        const int t = (int)(item / H), h = (int)(item % H), kvh = h / group;
        const int pos = j->pos0 + t;
        const float *q = fs->q + (size_t)t * HD + (size_t)h * (size_t)D;
        float qr[1024]; /* head_dim <= 1024 is checked at load */
        float *qh = qr;
        /* With an F16 cache llama.cpp converts Q to F16 (the F16 vec_dot_type) before Q·K. */
        const float qscale = fs->model->arch->q_prescale ? j->scale : 1.0f;
        for (int d = 0; d < D; d++) {
            const float qd = q[d] * qscale;
            qh[d] = fs->kv_f32 ? qd : quant_f16_to_f32(quant_f32_to_f16(qd));
        }
        const float score_scale = fs->model->arch->q_prescale ? 1.0f : j->scale;
        const int start = j->window > 0 && pos - j->window + 1 > 0 ? pos - j->window + 1 : 0;
        for (int p = start; p <= pos; p++) {
            const size_t base = layer_off + (size_t)p * KD + (size_t)kvh * (size_t)D;
            float s = 0.0f;
            for (int d = 0; d < D; d++) s += qh[d] * kv_get(fs, fs->k_cache, base + (size_t)d);
            s *= score_scale;
            if (hp->attn_softcap > 0.0f) s = hp->attn_softcap * tanhf(s / hp->attn_softcap);
            scores[p - start] = s;
        }
        const int n_keys = pos - start + 1;
        kern_softmax(scores, n_keys);
        float *out = fs->att + (size_t)t * HD + (size_t)h * (size_t)D;
        for (int d = 0; d < D; d++) out[d] = 0.0f;
        for (int p = start; p <= pos; p++) {
            /* llama.cpp multiplies V by the probabilities converted to F16 (F16 V cache). */
            float w = scores[p - start];
            if (!fs->kv_f32) w = quant_f16_to_f32(quant_f32_to_f16(w));
            const size_t base = layer_off + (size_t)p * KD + (size_t)kvh * (size_t)D;
            for (int d = 0; d < D; d++) out[d] += w * kv_get(fs, fs->v_cache, base + (size_t)d);
        }
    }
    (void)nth;
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
        const size_t layer_off = (size_t)il * (size_t)fs->n_ctx * KD;
        for (int t = 0; t < n; t++) {
            const size_t base = layer_off + (size_t)(pos0 + t) * KD;
            for (size_t i = 0; i < KD; i++) {
                kv_put(fs, fs->k_cache, base + i, fs->k[(size_t)t * KD + i]);
                kv_put(fs, fs->v_cache, base + i, fs->v[(size_t)t * KD + i]);
            }
        }
        attn_job aj = { fs, il, n, pos0, 1.0f / sqrtf((float)D), 0 };
        if (arch->swa_even_layers && il % 2 == 0) aj.window = hp->swa_window;
        pool_run(fs->pool, attention_task, &aj);

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
            for (int i = 0; i < F; i++) {
                float a;
                switch (arch->ffn_act) {
                case FFN_ACT_GELU: a = kern_gelu(g[i]); break;
                case FFN_ACT_RELU2: a = g[i] > 0.0f ? g[i] * g[i] : 0.0f; break;
                default: a = kern_silu(g[i]); break;
                }
                o[i] = a * u[i];
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
