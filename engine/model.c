/* Model binding: hyperparameters from {arch}.* keys, tensors bound by name with exact shape checks.
 * Everything a file could get wrong is reported with the key or tensor it concerns. */
#include "model.h"
#include "tokenizer.h"
#include "packed.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void llmpi_set_error(llmpi_error *err, llmpi_status code, const char *fmt, ...) {
    if (!err) return;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

/* Float arrays owned by the model (norm weights, rope factors) come from one growable list. */
static float *model_alloc_floats(llmpi_model *m, size_t n) {
    /* The arena is a linked list of blocks: [next pointer][floats...]. */
    void **blk = malloc(sizeof(void *) + n * sizeof(float));
    if (!blk) return NULL;
    blk[0] = m->f32_arena;
    m->f32_arena = (float *)blk;
    return (float *)(blk + 1);
}

void model_free_arena(llmpi_model *m) {
    void **blk = (void **)m->f32_arena;
    while (blk) {
        void **next = blk[0];
        free(blk);
        blk = next;
    }
    m->f32_arena = NULL;
}

/* ---- keys --------------------------------------------------------------------------------- */
static gguf_status arch_key_int(const llmpi_model *m, const char *suffix, int64_t *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", m->arch_name, suffix);
    gguf_status st = gguf_get_int(&m->file, key, out);
    if (st == GGUF_E_TYPE) {
        /* Per-layer arrays (e.g. head_count per layer): accept when every layer agrees. */
        const gguf_value *arr;
        if (gguf_get_arr(&m->file, key, &arr) == GGUF_OK && arr->arr.n > 0) {
            int64_t first, v;
            if (!gguf_arr_int(arr, 0, &first)) return GGUF_E_TYPE;
            for (uint64_t i = 1; i < arr->arr.n; i++)
                if (!gguf_arr_int(arr, i, &v) || v != first) return GGUF_E_TYPE;
            *out = first;
            return GGUF_OK;
        }
    }
    return st;
}

static llmpi_status need_int(const llmpi_model *m, const char *suffix, int64_t lo, int64_t hi, bool required,
                             int64_t dflt, int *out, llmpi_error *err) {
    int64_t v;
    gguf_status st = arch_key_int(m, suffix, &v);
    if (st == GGUF_E_NOT_FOUND && !required) v = dflt;
    else if (st == GGUF_E_NOT_FOUND) {
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "missing key '%s.%s'", m->arch_name, suffix);
        return err->code;
    } else if (st != GGUF_OK) {
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "key '%s.%s' is not an integer (or varies per layer)", m->arch_name, suffix);
        return err->code;
    }
    if (v < lo || v > hi) {
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "key '%s.%s' = %lld is out of range [%lld, %lld]", m->arch_name,
                        suffix, (long long)v, (long long)lo, (long long)hi);
        return err->code;
    }
    *out = (int)v;
    return LLMPI_OK;
}

static llmpi_status need_float(const llmpi_model *m, const char *suffix, bool required, double dflt, float *out,
                               llmpi_error *err) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", m->arch_name, suffix);
    double v;
    gguf_status st = gguf_get_float(&m->file, key, &v);
    if (st == GGUF_E_NOT_FOUND && !required) v = dflt;
    else if (st != GGUF_OK) {
        llmpi_set_error(err, LLMPI_ERR_FORMAT, st == GGUF_E_NOT_FOUND ? "missing key '%s'" : "key '%s' is not a float", key);
        return err->code;
    }
    if (!isfinite(v)) {
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "key '%s' is not finite", key);
        return err->code;
    }
    *out = (float)v;
    return LLMPI_OK;
}

/* ---- tensors ------------------------------------------------------------------------------ */
static int tensor_is_2d(const gguf_tensor *t) { return t->ne[2] == 1 && t->ne[3] == 1; }

static bool type_is_ternary(uint32_t t) {
    return t == LLMPI_TYPE_TQ1_0 || t == LLMPI_TYPE_TQ2_0 || t == LLMPI_TYPE_I2_S;
}

/* Activation type of a ternary (or, under BITNET, F16) matrix under the model's scheme (llmpi.h llmpi_act_scheme):
 * GGML -> Q8_K (TQ1_0/TQ2_0 natively, I2_S via vec_dot_i2_s_q8_K), BITNET -> I8_S (I2_S natively,
 * TQ1_0/TQ2_0 via vec_dot_tq*_i8_s). act_type 0 keeps the type table's own vec_dot_type. */
static llmpi_status select_act_type(llmpi_model *m, model_weight *w, llmpi_error *err) {
    const uint32_t t = w->m.type;
    /* bitnet.cpp numerics: its fork multiplies F16 matrices (the tied F16 output of its I2_S files) by the
     * f32 activations as they are; llama.cpp rounds them to F16 first (the F16 vec_dot_type). */
    if (t == LLMPI_TYPE_F16 && m->act_scheme == LLMPI_ACT_BITNET) {
        w->m.act_type = LLMPI_TYPE_F32;
        return LLMPI_OK;
    }
    if (!type_is_ternary(t)) return LLMPI_OK;
    m->n_ternary++;
    const uint32_t want = m->act_scheme == LLMPI_ACT_BITNET ? LLMPI_TYPE_I8_S : LLMPI_TYPE_Q8_K;
    if (want == (uint32_t)quant_traits(t)->vec_dot_type) return LLMPI_OK;
    if (quant_row_size(want, w->m.ne0) == 0 || !kern_vec_dot_for(t, want)) {
        llmpi_set_error(err, LLMPI_ERR_UNSUPPORTED,
                        "tensor '%s' (%s, rows of %lld) cannot take %s activations (activation scheme '%s'); "
                        "use the other scheme", w->name ? w->name : "?", quant_type_name(t), (long long)w->m.ne0,
                        quant_type_name(want), llmpi_act_scheme_name(m->act_scheme));
        return err->code;
    }
    w->m.act_type = want;
    return LLMPI_OK;
}
#define TRY_SCHEME(x) do { llmpi_status st_ = (x); if (st_ != LLMPI_OK) return st_; } while (0)

/* TQ1_0 -> TQ2_0 at load. Lossless: both store value = t * d with t in {-1, 0, +1} and one f16 d per
 * 256 weights, so each block keeps its d and its trits. Why: TQ1_0 packs 5 trits per byte in base 3
 * (1.69 bpw), and decoding that costs more than streaming the 22% more bytes of TQ2_0's 2-bit codes;
 * the TQ2_0 kernels are faster for prompts and generation (docs/benchmarks.md). Cost: 66/54 of the
 * tensor's memory; the TQ1_0 bytes are given back to the OS (gguf_release_range). Not done for a
 * tensor that is also read raw (the tied token embedding). */
static llmpi_status keep_buffer(llmpi_model *m, void *buf, const char *name, llmpi_error *err) {
    if (m->n_repacked == m->cap_repacked) {
        const int cap = m->cap_repacked ? 2 * m->cap_repacked : 64;
        void **nr = realloc(m->repacked, (size_t)cap * sizeof *nr);
        if (!nr) {
            free(buf);
            llmpi_set_error(err, LLMPI_ERR_NOMEM, "out of memory repacking '%s'", name);
            return err->code;
        }
        m->repacked = nr;
        m->cap_repacked = cap;
    }
    m->repacked[m->n_repacked++] = buf;
    return LLMPI_OK;
}

/* Row groups interleaved for the packed kernels where this CPU's kernel family has one
 * (kernels/packed.h: Q4_0 on AVX-512). Same bytes as the tensor; the file's copy is given back. */
static llmpi_status pack_rows(llmpi_model *m, model_weight *w, const gguf_tensor *t, llmpi_error *err) {
    const uint32_t layout = kern_pack_layout(&w->m);
    const size_t bytes = layout ? kern_packed_bytes(&w->m, layout) : 0;
    if (bytes == 0) return LLMPI_OK;
    void *dst = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!dst) { llmpi_set_error(err, LLMPI_ERR_NOMEM, "out of memory packing '%s'", w->name); return err->code; }
    const void *orig = w->m.data;
    if (kern_pack_matrix(&w->m, layout, dst) != 0) { free(dst); return LLMPI_OK; }
    TRY_SCHEME(keep_buffer(m, dst, w->name, err));
    if (orig == t->data) gguf_release_range(&m->file, t->data, bytes);
    return LLMPI_OK;
}

static llmpi_status repack_tq1_0_as_tq2_0(llmpi_model *m, model_weight *w, const gguf_tensor *t, llmpi_error *err) {
    const int64_t ne0 = w->m.ne0, ne1 = w->m.ne1;
    const size_t row2 = quant_row_size(LLMPI_TYPE_TQ2_0, ne0);
    const size_t bytes = (row2 * (size_t)ne1 + 63) / 64 * 64;
    uint8_t *dst = aligned_alloc(64, bytes ? bytes : 64);
    if (!dst) { llmpi_set_error(err, LLMPI_ERR_NOMEM, "out of memory repacking '%s'", w->name); return err->code; }
    for (int64_t r = 0; r < ne1; r++)
        quant_tq1_0_to_tq2_0((const uint8_t *)w->m.data + (size_t)r * w->m.row_bytes, dst + (size_t)r * row2, ne0);
    TRY_SCHEME(keep_buffer(m, dst, w->name, err));
    gguf_release_range(&m->file, t->data, w->m.row_bytes * (size_t)ne1);
    w->m.data = dst;
    w->m.type = LLMPI_TYPE_TQ2_0;
    w->m.row_bytes = row2;
    return LLMPI_OK;
}

static llmpi_status bind_matrix(llmpi_model *m, model_weight *w, const char *name, int64_t ne0, int64_t ne1,
                                bool required, llmpi_error *err) {
    memset(w, 0, sizeof *w);
    w->out_scale = 1.0f;
    const gguf_tensor *t = gguf_find_tensor(&m->file, name);
    if (!t) {
        if (!required) return LLMPI_OK;
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "missing tensor '%s'", name);
        return err->code;
    }
    if (!tensor_is_2d(t) || t->ne[0] != ne0 || t->ne[1] != ne1) {
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                        name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                        (long long)ne0, (long long)ne1);
        return err->code;
    }
    const quant_type_traits *tr = quant_traits(t->type);
    const quant_type_traits *at = tr ? quant_traits(tr->vec_dot_type) : NULL;
    if (!tr || tr->is_activation_only || !tr->to_float || !kern_vec_dot(t->type) || !at || !at->from_float) {
        llmpi_set_error(err, LLMPI_ERR_UNSUPPORTED, "tensor '%s' has type %s, which this build cannot compute with",
                        name, quant_type_name(t->type));
        return err->code;
    }
    if ((uintptr_t)t->data % 4) {
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "tensor '%s' data is not 4-byte aligned", name);
        return err->code;
    }
    w->name = t->name;
    w->m = (kern_matrix){ .data = t->data, .type = t->type, .ne0 = ne0, .ne1 = ne1,
                          .row_bytes = quant_row_size(t->type, ne0), .tensor_scale = 1.0f };
    if (t->type == LLMPI_TYPE_I2_S) w->m.tensor_scale = quant_i2s_tensor_scale(t->data, ne0 * ne1);
    if (t->type == LLMPI_TYPE_TQ1_0 && !m->no_repack && t != m->tok_embd_t)
        TRY_SCHEME(repack_tq1_0_as_tq2_0(m, w, t, err));
    TRY_SCHEME(select_act_type(m, w, err));
    if (!m->no_repack && t != m->tok_embd_t) TRY_SCHEME(pack_rows(m, w, t, err));

    if (m->arch->weight_scales_ok) {
        /* BitNet: "blk.N.attn_q.weight" may come with "blk.N.attn_q.scale" [1] multiplying its output. */
        char sname[GGUF_MAX_NAME + 8];
        size_t len = strlen(name);
        if (len > 7 && strcmp(name + len - 7, ".weight") == 0) {
            snprintf(sname, sizeof sname, "%.*s.scale", (int)(len - 7), name);
            const gguf_tensor *s = gguf_find_tensor(&m->file, sname);
            if (s) {
                if (s->type != LLMPI_TYPE_F32 || s->n_elements != 1) {
                    llmpi_set_error(err, LLMPI_ERR_FORMAT, "tensor '%s' must be a single F32 value", sname);
                    return err->code;
                }
                memcpy(&w->out_scale, s->data, sizeof(float));
            }
        }
    }
    return LLMPI_OK;
}

/* 1-D tensors (norm weights, biases, rope factors) are converted to f32 arrays owned by the model. */
static llmpi_status bind_vector(llmpi_model *m, float **out, const char *name, int64_t n, bool required,
                                llmpi_error *err) {
    *out = NULL;
    const gguf_tensor *t = gguf_find_tensor(&m->file, name);
    if (!t) {
        if (!required) return LLMPI_OK;
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "missing tensor '%s'", name);
        return err->code;
    }
    if (t->ne[0] != n || t->n_elements != n) {
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "tensor '%s' has %lld elements (ne0 %lld), expected a vector of %lld",
                        name, (long long)t->n_elements, (long long)t->ne[0], (long long)n);
        return err->code;
    }
    float *v = model_alloc_floats(m, (size_t)n);
    if (!v) { llmpi_set_error(err, LLMPI_ERR_NOMEM, "out of memory"); return err->code; }
    if (!quant_dequantize_tensor(t->type, t->data, v, n, 1)) {
        llmpi_set_error(err, LLMPI_ERR_UNSUPPORTED, "tensor '%s' has type %s, which this build cannot read", name,
                        quant_type_name(t->type));
        return err->code;
    }
    *out = v;
    return LLMPI_OK;
}

#define TRY(x) do { llmpi_status st_ = (x); if (st_ != LLMPI_OK) return st_; } while (0)

static llmpi_status bind_hparams(llmpi_model *m, llmpi_error *err) {
    model_hparams *hp = &m->hp;
    TRY(need_int(m, "embedding_length", 1, 1 << 16, true, 0, &hp->n_embd, err));
    TRY(need_int(m, "block_count", 1, 1024, true, 0, &hp->n_layer, err));
    TRY(need_int(m, "context_length", 1, 1 << 24, true, 0, &hp->n_ctx_train, err));
    TRY(need_int(m, "feed_forward_length", 1, 1 << 20, true, 0, &hp->n_ff, err));
    TRY(need_int(m, "attention.head_count", 1, 1024, true, 0, &hp->n_head, err));
    TRY(need_int(m, "attention.head_count_kv", 1, 1024, false, hp->n_head, &hp->n_head_kv, err));
    if (hp->n_head % hp->n_head_kv) {
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "head_count %d is not a multiple of head_count_kv %d", hp->n_head,
                        hp->n_head_kv);
        return err->code;
    }
    TRY(need_int(m, "attention.key_length", 1, 1024, false, hp->n_embd / hp->n_head, &hp->head_dim, err));
    int value_length;
    TRY(need_int(m, "attention.value_length", 1, 1024, false, hp->head_dim, &value_length, err));
    if (value_length != hp->head_dim) {
        llmpi_set_error(err, LLMPI_ERR_UNSUPPORTED, "key_length %d != value_length %d is not supported", hp->head_dim,
                        value_length);
        return err->code;
    }
    TRY(need_int(m, "rope.dimension_count", 2, hp->head_dim, false, hp->head_dim, &hp->n_rot, err));
    if (hp->n_rot % 2) {
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "rope.dimension_count %d is odd", hp->n_rot);
        return err->code;
    }
    TRY(need_float(m, "attention.layer_norm_rms_epsilon", true, 0, &hp->rms_eps, err));
    TRY(need_float(m, "rope.freq_base", false, 10000.0, &hp->rope_base, err));
    TRY(need_float(m, "rope.scaling.attn_factor", false, 1.0, &hp->rope_attn_factor, err));

    /* RoPE scaling: none / linear (freq_scale = 1/factor). Others change the math: refuse clearly. */
    float factor = 0.0f;
    TRY(need_float(m, "rope.scaling.factor", false, 0.0, &factor, err));
    if (factor == 0.0f) TRY(need_float(m, "rope.scale_linear", false, 0.0, &factor, err));
    char key[160];
    gguf_str type = { "linear", 6 };
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch_name);
    gguf_get_str(&m->file, key, &type);
    if (gguf_str_eq(type, "none")) factor = 0.0f;
    else if (!gguf_str_eq(type, "linear")) {
        llmpi_set_error(err, LLMPI_ERR_UNSUPPORTED, "rope scaling type '%.*s' is not supported (none, linear)",
                        (int)(type.len > 32 ? 32 : type.len), type.ptr);
        return err->code;
    }
    hp->rope_freq_scale = factor > 0.0f ? 1.0f / factor : 1.0f;

    if (m->arch->softcaps) {
        TRY(need_float(m, "attn_logit_softcapping", false, 50.0, &hp->attn_softcap, err));
        TRY(need_float(m, "final_logit_softcapping", false, 30.0, &hp->final_softcap, err));
    }
    if (m->arch->swa_even_layers) TRY(need_int(m, "attention.sliding_window", 1, 1 << 24, false, 4096, &hp->swa_window, err));
    return LLMPI_OK;
}

llmpi_status model_bind(llmpi_model *m, llmpi_error *err) {
    TRY(bind_hparams(m, err));
    /* AUTO follows the file: bitnet.cpp's I2_S files were made for per-row int8 activations, llama.cpp's
     * TQ1_0/TQ2_0 files for Q8_K blocks. One scheme for the whole model either way. */
    if (m->act_scheme == LLMPI_ACT_AUTO) {
        m->act_scheme = LLMPI_ACT_GGML;
        for (uint64_t i = 0; i < m->file.n_tensors; i++)
            if (m->file.tensors[i].type == LLMPI_TYPE_I2_S) m->act_scheme = LLMPI_ACT_BITNET;
    }
    model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, H = hp->n_head, Hk = hp->n_head_kv, D = hp->head_dim, F = hp->n_ff;

    m->tok_embd_t = gguf_find_tensor(&m->file, "token_embd.weight");
    if (!m->tok_embd_t) { llmpi_set_error(err, LLMPI_ERR_FORMAT, "missing tensor 'token_embd.weight'"); return err->code; }
    if (m->tok_embd_t->ne[0] != E || !tensor_is_2d(m->tok_embd_t)) {
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "tensor 'token_embd.weight' has ne0 %lld, expected n_embd %lld",
                        (long long)m->tok_embd_t->ne[0], (long long)E);
        return err->code;
    }
    hp->n_vocab = (int)m->tok_embd_t->ne[1];
    const quant_type_traits *et = quant_traits(m->tok_embd_t->type);
    if (!et || !et->to_float) {
        llmpi_set_error(err, LLMPI_ERR_UNSUPPORTED, "tensor 'token_embd.weight' has type %s, which this build cannot read",
                        quant_type_name(m->tok_embd_t->type));
        return err->code;
    }
    if (m->tok && tokenizer_n_vocab(m->tok) > hp->n_vocab) {
        llmpi_set_error(err, LLMPI_ERR_FORMAT, "tokenizer has %d tokens but token_embd.weight only %d rows",
                        tokenizer_n_vocab(m->tok), hp->n_vocab);
        return err->code;
    }

    TRY(bind_vector(m, &m->output_norm, "output_norm.weight", E, true, err));
    const bool has_output = gguf_find_tensor(&m->file, "output.weight") != NULL;
    TRY(bind_matrix(m, &m->output, has_output && !m->arch->output_always_tied ? "output.weight" : "token_embd.weight",
                    E, hp->n_vocab, true, err));
    TRY(bind_vector(m, &m->rope_freqs, "rope_freqs.weight", hp->n_rot / 2, false, err));

    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) { llmpi_set_error(err, LLMPI_ERR_NOMEM, "out of memory"); return err->code; }
    char name[GGUF_MAX_NAME + 16];
#define NAME(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, il), name)
    for (int il = 0; il < hp->n_layer; il++) {
        model_layer *l = &m->layers[il];
        TRY(bind_vector(m, &l->attn_norm, NAME("attn_norm.weight"), E, true, err));
        if (m->arch->qkv_fused_ok && gguf_find_tensor(&m->file, NAME("attn_qkv.weight"))) {
            TRY(bind_matrix(m, &l->wqkv, NAME("attn_qkv.weight"), E, (H + 2 * Hk) * D, true, err));
        } else {
            TRY(bind_matrix(m, &l->wq, NAME("attn_q.weight"), E, H * D, true, err));
            TRY(bind_matrix(m, &l->wk, NAME("attn_k.weight"), E, Hk * D, true, err));
            TRY(bind_matrix(m, &l->wv, NAME("attn_v.weight"), E, Hk * D, true, err));
            if (m->arch->qkv_bias_ok) {
                float *b;
                TRY(bind_vector(m, &b, NAME("attn_q.bias"), H * D, false, err)); l->wq.bias = b;
                TRY(bind_vector(m, &b, NAME("attn_k.bias"), Hk * D, false, err)); l->wk.bias = b;
                TRY(bind_vector(m, &b, NAME("attn_v.bias"), Hk * D, false, err)); l->wv.bias = b;
            }
        }
        if (m->arch->sub_norms) TRY(bind_vector(m, &l->attn_sub_norm, NAME("attn_sub_norm.weight"), H * D, true, err));
        TRY(bind_matrix(m, &l->wo, NAME("attn_output.weight"), H * D, E, true, err));
        if (m->arch->post_norms) {
            TRY(bind_vector(m, &l->post_attn_norm, NAME("post_attention_norm.weight"), E, true, err));
            TRY(bind_vector(m, &l->post_ffw_norm, NAME("post_ffw_norm.weight"), E, true, err));
        }
        TRY(bind_vector(m, &l->ffn_norm, NAME("ffn_norm.weight"), E, true, err));
        if (m->arch->ffn_gate_fused) {
            TRY(bind_matrix(m, &l->w_up, NAME("ffn_up.weight"), E, 2 * F, true, err));
        } else {
            TRY(bind_matrix(m, &l->w_gate, NAME("ffn_gate.weight"), E, F, true, err));
            TRY(bind_matrix(m, &l->w_up, NAME("ffn_up.weight"), E, F, true, err));
        }
        if (m->arch->sub_norms) TRY(bind_vector(m, &l->ffn_sub_norm, NAME("ffn_sub_norm.weight"), F, true, err));
        TRY(bind_matrix(m, &l->w_down, NAME("ffn_down.weight"), F, E, true, err));
    }
#undef NAME
    for (uint64_t i = 0; i < m->file.n_tensors; i++) {
        m->n_params += (uint64_t)m->file.tensors[i].n_elements;
        m->n_bytes += m->file.tensors[i].nbytes;
    }
    return LLMPI_OK;
}
