/* Synthetic random-weight models (see synthetic.h). */
#include "synthetic.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const synth_shape shapes[] = {
    /* name          arch      based on                       E     L   H   Hk  D    F      V       ctx     rope_base rms    tied  vocab               rope_f orig  tern   swa */
    { "llama-1b",    "llama",  "Llama-3.2-1B",               2048, 16, 32, 8,  64,  8192,  128256, 131072, 500000.f, 1e-5f, true,  SYNTH_VOCAB_LLAMA3_BPE, 32.f, 8192, false, 0 },
    { "llama-3b",    "llama",  "Llama-3.2-3B",               3072, 28, 24, 8,  128, 8192,  128256, 131072, 500000.f, 1e-5f, true,  SYNTH_VOCAB_LLAMA3_BPE, 32.f, 8192, false, 0 },
    { "llama-8b",    "llama",  "Llama-3.1-8B",               4096, 32, 32, 8,  128, 14336, 128256, 131072, 500000.f, 1e-5f, false, SYNTH_VOCAB_LLAMA3_BPE, 8.f,  8192, false, 0 },
    { "bitnet-0.7b", "bitnet", "1bitLLM/bitnet_b1_58-large", 1536, 24, 16, 16, 96,  4096,  32002,  2048,   10000.f,  1e-5f, true,  SYNTH_VOCAB_SPM,        0.f,  0,    true,  0 },
    { "bitnet-2b",   "bitnet", "microsoft/bitnet-b1.58-2B-4T (shape)", 2560, 30, 20, 5, 128, 6912, 128256, 4096, 500000.f, 1e-5f, true, SYNTH_VOCAB_LLAMA3_BPE, 0.f, 0, true, 0 },
    { "bitnet-2b-4t", "bitnet-b1.58", "microsoft/bitnet-b1.58-2B-4T (official GGUF layout)", 2560, 30, 20, 5, 128, 6912, 128256, 4096, 500000.f, 1e-5f, true, SYNTH_VOCAB_LLAMA3_BPE, 0.f, 0, true, 0 },
    { "llama3-8b-1.58", "llama", "HF1BitLLM/Llama3-8B-1.58-100B-tokens", 4096, 32, 32, 8, 128, 14336, 128256, 8192, 500000.f, 1e-5f, false, SYNTH_VOCAB_LLAMA3_BPE, 8.f, 8192, true, 0 },
    { "gemma2-2b",   "gemma2", "gemma-2-2b",                 2304, 26, 8,  4,  256, 9216,  256000, 8192,   10000.f,  1e-6f, true,  SYNTH_VOCAB_SPM,        0.f,  0,    false, 4096 },
    { "phi3-mini",   "phi3",   "Phi-3-mini-4k-instruct",     3072, 32, 32, 32, 96,  8192,  32064,  4096,   10000.f,  1e-5f, false, SYNTH_VOCAB_SPM,        0.f,  0,    false, 0 },
    /* Small shapes for tests (the dimensions of the llama-tiny / bitnet-tiny fixtures). */
    { "llama-tiny",  "llama",  "LLMPi test fixture shape",   256,  2,  8,  2,  32,  768,   512,    256,    10000.f,  1e-5f, false, SYNTH_VOCAB_SPM,        0.f,  0,    false, 0 },
    { "bitnet-tiny", "bitnet", "LLMPi test fixture shape",   256,  2,  8,  8,  32,  768,   512,    256,    10000.f,  1e-5f, true,  SYNTH_VOCAB_SPM,        0.f,  0,    true,  0 },
    /* Other ternary families (docs/models.md), tiny: bitnet.cpp's arch names for BitNet b1.58 2B-4T
     * (squared-ReLU FFN, sub-norms, no .scale tensors) and a Llama-architecture model with ternary
     * projections (HF1BitLLM Llama3-8B-1.58: no sub-norms, no .scale tensors). */
    { "bitnet25-tiny", "bitnet-25", "LLMPi test shape (bitnet.cpp 2B-4T layout)", 256, 2, 8, 2, 32, 768, 512, 256, 500000.f, 1e-5f, true, SYNTH_VOCAB_SPM, 0.f, 0, true, 0 },
    { "bitnet-b158-tiny", "bitnet-b1.58", "LLMPi test shape (official 2B-4T GGUF layout)", 256, 2, 8, 2, 32, 768, 512, 256, 500000.f, 1e-5f, true, SYNTH_VOCAB_SPM, 0.f, 0, true, 0 },
    { "llama3-1.58-tiny", "llama", "LLMPi test shape (Llama3-8B-1.58 layout)", 256, 2, 8, 2, 32, 768, 512, 256, 500000.f, 1e-5f, false, SYNTH_VOCAB_SPM, 0.f, 0, true, 0 },
};

const synth_shape *synth_shapes(size_t *count) {
    *count = sizeof shapes / sizeof shapes[0];
    return shapes;
}

const synth_shape *synth_shape_find(const char *name) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (strcmp(shapes[i].name, name) == 0) return &shapes[i];
    return NULL;
}

/* How a tensor's values are generated. */
typedef enum { GEN_EMBED, GEN_NORM, GEN_PROJ, GEN_PROJ_OUT, GEN_TERNARY, GEN_TERNARY_OUT, GEN_ONE, GEN_ROPE_FREQS } gen_kind;

typedef struct {
    synth_tensor t;
    gen_kind kind;
    float    scale;   /* std (Gaussian kinds) or the ternary magnitude */
} tensor_entry;

/* A growable string table backed by one character arena (pointers are offsets until finished). */
typedef struct {
    char    *chars;
    size_t   len, cap;
    size_t  *offs;
    size_t   n, ncap;
} str_table;

struct synth_model {
    const synth_shape *shape;
    uint64_t seed;
    tensor_entry *tensors;
    size_t n_tensors, cap_tensors;
    str_table tokens, merges;
    float   *scores;     /* SPM only */
    int32_t *types;
    uint32_t bos, eos, unk;
    bool failed;
};

/* ---- small helpers -------------------------------------------------------------------------- */

static bool st_push(str_table *t, const char *s, size_t n) {
    if (t->n == t->ncap) {
        size_t cap = t->ncap ? 2 * t->ncap : 1024;
        size_t *p = realloc(t->offs, cap * sizeof *p);
        if (!p) return false;
        t->offs = p;
        t->ncap = cap;
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 65536;
        while (cap < t->len + n + 1) cap *= 2;
        char *p = realloc(t->chars, cap);
        if (!p) return false;
        t->chars = p;
        t->cap = cap;
    }
    memcpy(t->chars + t->len, s, n);
    t->chars[t->len + n] = 0;
    t->offs[t->n++] = t->len;
    t->len += n + 1;
    return true;
}

static const char *st_get(const str_table *t, size_t i) { return t->chars + t->offs[i]; }

static void st_free(str_table *t) {
    free(t->chars);
    free(t->offs);
}

static void add_tensor(synth_model *m, const char *name, int64_t ne0, int64_t ne1, gen_kind kind, float scale) {
    if (m->failed) return;
    if (m->n_tensors == m->cap_tensors) {
        size_t cap = m->cap_tensors ? 2 * m->cap_tensors : 64;
        tensor_entry *p = realloc(m->tensors, cap * sizeof *p);
        if (!p) { m->failed = true; return; }
        m->tensors = p;
        m->cap_tensors = cap;
    }
    tensor_entry *e = &m->tensors[m->n_tensors++];
    memset(e, 0, sizeof *e);
    snprintf(e->t.name, sizeof e->t.name, "%s", name);
    e->t.n_dims = ne1 > 1 ? 2 : 1;
    e->t.ne[0] = ne0;
    e->t.ne[1] = ne1;
    e->t.ne[2] = e->t.ne[3] = 1;
    e->kind = kind;
    e->scale = scale;
}

/* Nearest power of two: exact in f16/bf16, so ternary tensors survive TQ1_0/TQ2_0/I2_S losslessly. */
static float pow2_near(double x) { return (float)ldexp(1.0, (int)lround(log2(x))); }

/* ---- tensors -------------------------------------------------------------------------------- */

static void build_tensors(synth_model *m) {
    const synth_shape *s = m->shape;
    const int64_t E = s->n_embd, F = s->n_ff, V = s->n_vocab, D = s->head_dim;
    const int64_t q_dim = (int64_t)s->n_head * D, kv_dim = (int64_t)s->n_head_kv * D;
    /* Output logits std ~3 on an RMS-normalised hidden state; residual branches shrink with depth. */
    const float embed_std = 3.0f / sqrtf((float)E);
    const float out_gain = 1.0f / sqrtf(2.0f * (float)s->n_layer);
    char name[64];
    const bool bitnet = s->ternary;
    /* The bitnet archs have sub-norms; only files converted the upstream-"bitnet" way (and our fixtures)
     * carry per-matrix .scale tensors. A ternary "llama" model has neither. */
    const bool sub_norms = strncmp(s->arch, "bitnet", 6) == 0;
    const bool scales = bitnet && strcmp(s->arch, "bitnet") == 0;

    add_tensor(m, "token_embd.weight", E, V, GEN_EMBED, embed_std);
    add_tensor(m, "output_norm.weight", E, 1, GEN_NORM, 0.1f);
    if (!s->tied) add_tensor(m, "output.weight", E, V, GEN_EMBED, embed_std);
    if (s->rope_factor > 0) add_tensor(m, "rope_freqs.weight", D / 2, 1, GEN_ROPE_FREQS, 0);

    for (int l = 0; l < s->n_layer; l++) {
#define T(suffix, ne0, ne1, kind, scale) \
        do { snprintf(name, sizeof name, "blk.%d.%s", l, suffix); add_tensor(m, name, ne0, ne1, kind, scale); } while (0)
        const gen_kind proj = bitnet ? GEN_TERNARY : GEN_PROJ;
        const gen_kind proj_out = bitnet ? GEN_TERNARY_OUT : GEN_PROJ_OUT;
        T("attn_norm.weight", E, 1, GEN_NORM, 0.1f);
        if (strcmp(s->arch, "phi3") == 0) {
            T("attn_qkv.weight", E, q_dim + 2 * kv_dim, proj, 1.0f / sqrtf((float)E));
        } else {
            T("attn_q.weight", E, q_dim, proj, 1.0f / sqrtf((float)E));
            if (scales) T("attn_q.scale", 1, 1, GEN_ONE, 0);
            T("attn_k.weight", E, kv_dim, proj, 1.0f / sqrtf((float)E));
            if (scales) T("attn_k.scale", 1, 1, GEN_ONE, 0);
            T("attn_v.weight", E, kv_dim, proj, 1.0f / sqrtf((float)E));
            if (scales) T("attn_v.scale", 1, 1, GEN_ONE, 0);
        }
        if (sub_norms) T("attn_sub_norm.weight", q_dim, 1, GEN_NORM, 0.1f);
        T("attn_output.weight", q_dim, E, proj_out, out_gain / sqrtf((float)q_dim));
        if (scales) T("attn_output.scale", 1, 1, GEN_ONE, 0);
        if (strcmp(s->arch, "gemma2") == 0) T("post_attention_norm.weight", E, 1, GEN_NORM, 0.1f);
        T("ffn_norm.weight", E, 1, GEN_NORM, 0.1f);
        if (strcmp(s->arch, "phi3") == 0) {
            T("ffn_up.weight", E, 2 * F, proj, 1.0f / sqrtf((float)E));
        } else {
            T("ffn_gate.weight", E, F, proj, 1.0f / sqrtf((float)E));
            if (scales) T("ffn_gate.scale", 1, 1, GEN_ONE, 0);
            T("ffn_up.weight", E, F, proj, 1.0f / sqrtf((float)E));
            if (scales) T("ffn_up.scale", 1, 1, GEN_ONE, 0);
        }
        if (sub_norms) T("ffn_sub_norm.weight", F, 1, GEN_NORM, 0.1f);
        T("ffn_down.weight", F, E, proj_out, out_gain / sqrtf((float)F));
        if (scales) T("ffn_down.scale", 1, 1, GEN_ONE, 0);
        if (strcmp(s->arch, "gemma2") == 0) T("post_ffw_norm.weight", E, 1, GEN_NORM, 0.1f);
#undef T
    }
    for (size_t i = 0; i < m->n_tensors; i++) {
        tensor_entry *e = &m->tensors[i];
        if (e->kind == GEN_TERNARY || e->kind == GEN_TERNARY_OUT) e->scale = pow2_near(e->scale);
    }
}

/* ---- tokenizers ----------------------------------------------------------------------------- */

/* GPT-2 byte-level alphabet: printable bytes map to themselves, the rest to U+0100 onwards. */
static unsigned byte_to_codepoint(unsigned b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    unsigned k = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174)) k++;
    return 256 + k;
}

static size_t utf8_encode(unsigned cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 63)); return 2; }
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 63));
    out[2] = (char)(0x80 | (cp & 63));
    return 3;
}

/* Words over a-z in order of length then alphabet: index 0 = "a", 25 = "z", 26 = "aa", ... */
static size_t nth_word(size_t idx, char *out) {
    size_t len = 1, count = 26;
    while (idx >= count) { idx -= count; len++; count *= 26; }
    for (size_t i = len; i-- > 0;) { out[i] = (char)('a' + idx % 26); idx /= 26; }
    out[len] = 0;
    return len;
}

/* SentencePiece-style vocabulary: <unk> <s> </s>, 256 byte tokens, then pieces "▁word" / "word" with
 * decreasing scores. Phi-3 gets its added tokens (llama.cpp looks some of them up by text). */
static void build_spm_vocab(synth_model *m) {
    const synth_shape *s = m->shape;
    const int V = s->n_vocab;
    m->scores = malloc((size_t)V * sizeof *m->scores);
    m->types = malloc((size_t)V * sizeof *m->types);
    if (!m->scores || !m->types) { m->failed = true; return; }
    static const char *const phi3_added[] = {
        "<|endoftext|>", "<|assistant|>", "<|placeholder1|>", "<|placeholder2|>", "<|placeholder3|>",
        "<|placeholder4|>", "<|system|>", "<|end|>", "<|placeholder5|>", "<|placeholder6|>", "<|user|>",
    };
    const bool phi3 = strcmp(s->arch, "phi3") == 0;
    const int n_added = phi3 ? 64 : 0;
    char buf[64];
    int id = 0;
    const char *const specials[3] = { "<unk>", "<s>", "</s>" };
    for (int i = 0; i < 3; i++, id++) {
        if (!st_push(&m->tokens, specials[i], strlen(specials[i]))) { m->failed = true; return; }
        m->scores[id] = 0;
        m->types[id] = i == 0 ? 2 : 3;
    }
    for (int b = 0; b < 256; b++, id++) {
        int n = snprintf(buf, sizeof buf, "<0x%02X>", b);
        if (!st_push(&m->tokens, buf, (size_t)n)) { m->failed = true; return; }
        m->scores[id] = 0;
        m->types[id] = 6;
    }
    for (size_t w = 0; id < V - n_added; w++) {
        char word[16];
        size_t wl = nth_word(w / 2, word);
        size_t n;
        if (w % 2 == 0) { memcpy(buf, "\xE2\x96\x81", 3); memcpy(buf + 3, word, wl + 1); n = wl + 3; }
        else { memcpy(buf, word, wl + 1); n = wl; }
        if (!st_push(&m->tokens, buf, n)) { m->failed = true; return; }
        m->scores[id] = -(float)(id - 259);
        m->types[id] = 1;
        id++;
    }
    for (int a = 0; a < n_added; a++, id++) {
        int n = a < 11 ? snprintf(buf, sizeof buf, "%s", phi3_added[a]) : snprintf(buf, sizeof buf, "<|dummy_id_%d|>", a - 11);
        if (!st_push(&m->tokens, buf, (size_t)n)) { m->failed = true; return; }
        m->scores[id] = 0;
        m->types[id] = a < 11 ? 3 : 4;
    }
    m->unk = 0;
    m->bos = 1;
    m->eos = phi3 ? 32000 : 2;
}

/* Byte-level BPE vocabulary of Llama 3's size: 256 byte tokens, merges that grow "Ġ" and a-z into words
 * (each merge appends one letter to an earlier token, so every merge's parts and result exist), and
 * 256 special tokens from 128000 (<|begin_of_text|> = BOS, <|end_of_text|> = EOS, <|eot_id|> = 128009). */
static void build_bpe_vocab(synth_model *m) {
    const synth_shape *s = m->shape;
    const int V = s->n_vocab, n_special = 256, n_normal = V - n_special;
    m->types = malloc((size_t)V * sizeof *m->types);
    if (!m->types || n_normal < 256 + 27) { m->failed = true; return; }
    char buf[128];
    for (unsigned b = 0; b < 256; b++) {
        size_t n = utf8_encode(byte_to_codepoint(b), buf);
        if (!st_push(&m->tokens, buf, n)) { m->failed = true; return; }
        m->types[b] = 1;
    }
    /* Seeds of the merge tree: "Ġ" (space) and the letters. New token = token[p] + letter, p walking
     * the token list breadth-first from the seeds. */
    size_t *seeds = malloc((size_t)n_normal * sizeof *seeds);
    if (!seeds) { m->failed = true; return; }
    size_t n_queue = 0;
    seeds[n_queue++] = ' ';   /* token ids 0..255 are the bytes: id 32 is "Ġ" */
    for (unsigned c = 'a'; c <= 'z'; c++) seeds[n_queue++] = c;
    int id = 256;
    for (size_t p = 0; id < n_normal && p < n_queue; p++) {
        for (unsigned c = 'a'; c <= 'z' && id < n_normal; c++, id++) {
            const char *left = st_get(&m->tokens, seeds[p]);
            size_t ll = strlen(left);
            if (ll + 2 > sizeof buf) { free(seeds); m->failed = true; return; }
            memcpy(buf, left, ll);
            buf[ll] = (char)c;
            char mbuf[140];   /* built before st_push, which may move `left` */
            int mn = snprintf(mbuf, sizeof mbuf, "%s %c", left, (char)c);
            if (!st_push(&m->tokens, buf, ll + 1) || !st_push(&m->merges, mbuf, (size_t)mn)) {
                free(seeds);
                m->failed = true;
                return;
            }
            m->types[id] = 1;
            seeds[n_queue++] = (size_t)id;
        }
    }
    free(seeds);
    static const char *const named[] = {
        "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
        "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
        "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
    };
    for (int k = 0; k < n_special; k++, id++) {
        int n = k < 11 ? snprintf(buf, sizeof buf, "%s", named[k])
                       : snprintf(buf, sizeof buf, "<|reserved_special_token_%d|>", k - 8);
        if (!st_push(&m->tokens, buf, (size_t)n)) { m->failed = true; return; }
        m->types[id] = 3;
    }
    m->bos = (uint32_t)n_normal;
    m->eos = (uint32_t)n_normal + 1;
    m->unk = UINT32_MAX;
}

/* ---- public --------------------------------------------------------------------------------- */

synth_model *synth_create(const synth_shape *shape, uint64_t seed) {
    synth_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->shape = shape;
    m->seed = seed;
    build_tensors(m);
    if (shape->vocab == SYNTH_VOCAB_SPM) build_spm_vocab(m);
    else build_bpe_vocab(m);
    if (m->failed || m->tokens.n != (size_t)shape->n_vocab) {
        synth_free(m);
        return NULL;
    }
    return m;
}

void synth_free(synth_model *m) {
    if (!m) return;
    free(m->tensors);
    st_free(&m->tokens);
    st_free(&m->merges);
    free(m->scores);
    free(m->types);
    free(m);
}

size_t synth_n_tensors(const synth_model *m) { return m->n_tensors; }
const synth_tensor *synth_get_tensor(const synth_model *m, size_t i) { return i < m->n_tensors ? &m->tensors[i].t : NULL; }
const synth_shape *synth_get_shape(const synth_model *m) { return m->shape; }

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline uint64_t xorshift64s(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Approximately standard normal: Irwin-Hall sum of four 16-bit uniforms, rescaled (variance 1). */
static inline float gauss_approx(uint64_t r) {
    const float sum = (float)(r & 0xFFFF) + (float)((r >> 16) & 0xFFFF) + (float)((r >> 32) & 0xFFFF) + (float)(r >> 48);
    return (sum * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

/* Llama 3 rope_freqs (convert_hf_to_gguf): per frequency pair, 1 for short wavelengths, `factor` for long
 * ones and a smooth blend in between (low_freq_factor 1, high_freq_factor 4). */
static float llama3_rope_factor(const synth_shape *s, int64_t i) {
    const double base = s->rope_base, dim = s->head_dim, factor = s->rope_factor, old_ctx = s->rope_orig_ctx;
    const double low = 1.0, high = 4.0;
    const double freq = 1.0 / pow(base, (double)(2 * i) / dim);
    const double wavelen = 2.0 * M_PI / freq;
    const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
    if (wavelen < high_wavelen) return 1.0f;
    if (wavelen > low_wavelen) return (float)factor;
    const double smooth = (old_ctx / wavelen - low) / (high - low);
    return (float)(1.0 / ((1.0 - smooth) / factor + smooth));
}

void synth_fill_rows(const synth_model *m, size_t ti, int64_t row0, int64_t nrows, float *out) {
    const tensor_entry *e = &m->tensors[ti];
    const int64_t ne0 = e->t.ne[0];
    for (int64_t r = 0; r < nrows; r++) {
        float *y = out + r * ne0;
        uint64_t state = splitmix64(m->seed ^ splitmix64(((uint64_t)ti << 40) ^ (uint64_t)(row0 + r))) | 1;
        switch (e->kind) {
        case GEN_EMBED: case GEN_PROJ: case GEN_PROJ_OUT:
            for (int64_t i = 0; i < ne0; i++) y[i] = e->scale * gauss_approx(xorshift64s(&state));
            break;
        case GEN_NORM:
            for (int64_t i = 0; i < ne0; i++) y[i] = 1.0f + e->scale * gauss_approx(xorshift64s(&state));
            break;
        case GEN_TERNARY: case GEN_TERNARY_OUT:
            for (int64_t i = 0; i < ne0; i++) {
                const uint64_t v = (xorshift64s(&state) >> 32) % 3;   /* 0, 1, 2 -> -s, 0, +s */
                y[i] = ((float)v - 1.0f) * e->scale;
            }
            break;
        case GEN_ONE:
            for (int64_t i = 0; i < ne0; i++) y[i] = 1.0f;
            break;
        case GEN_ROPE_FREQS:
            for (int64_t i = 0; i < ne0; i++) y[i] = llama3_rope_factor(m->shape, i);
            break;
        }
    }
}

bool synth_write_kv(const synth_model *m, gguf_writer *w) {
    const synth_shape *s = m->shape;
    char key[128], text[256];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", s->arch, suffix), key)
    gguf_writer_set_str(w, "general.architecture", s->arch);
    snprintf(text, sizeof text, "llmpi-synthetic-%s", s->name);
    gguf_writer_set_str(w, "general.name", text);
    snprintf(text, sizeof text, "LLMPi synthetic model: random weights in the shape of %s (seed %llu), not a trained model",
             s->based_on, (unsigned long long)m->seed);
    gguf_writer_set_str(w, "general.description", text);
    gguf_writer_set_u32(w, K("vocab_size"), (uint32_t)s->n_vocab);
    gguf_writer_set_u32(w, K("context_length"), (uint32_t)s->n_ctx);
    gguf_writer_set_u32(w, K("embedding_length"), (uint32_t)s->n_embd);
    gguf_writer_set_u32(w, K("block_count"), (uint32_t)s->n_layer);
    gguf_writer_set_u32(w, K("feed_forward_length"), (uint32_t)s->n_ff);
    gguf_writer_set_u32(w, K("attention.head_count"), (uint32_t)s->n_head);
    gguf_writer_set_u32(w, K("attention.head_count_kv"), (uint32_t)s->n_head_kv);
    gguf_writer_set_f32(w, K("attention.layer_norm_rms_epsilon"), s->rms_eps);
    gguf_writer_set_f32(w, K("rope.freq_base"), s->rope_base);
    gguf_writer_set_u32(w, K("rope.dimension_count"), (uint32_t)s->head_dim);
    gguf_writer_set_u32(w, K("attention.key_length"), (uint32_t)s->head_dim);
    gguf_writer_set_u32(w, K("attention.value_length"), (uint32_t)s->head_dim);
    if (strcmp(s->arch, "gemma2") == 0) {
        gguf_writer_set_f32(w, K("attn_logit_softcapping"), 50.0f);
        gguf_writer_set_f32(w, K("final_logit_softcapping"), 30.0f);
    }
    if (s->sliding_window) gguf_writer_set_u32(w, K("attention.sliding_window"), (uint32_t)s->sliding_window);
#undef K

    const size_t n = m->tokens.n;
    const char **toks = malloc(n * sizeof *toks);
    if (!toks) return false;
    for (size_t i = 0; i < n; i++) toks[i] = st_get(&m->tokens, i);
    if (s->vocab == SYNTH_VOCAB_SPM) {
        gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
        gguf_writer_set_str(w, "tokenizer.ggml.pre", "default");
        gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, n);
        gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, m->scores, n);
        gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, m->types, n);
        gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", m->unk);
        gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", m->bos);
        gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", m->eos);
        gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
        gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
        if (strcmp(s->arch, "gemma2") == 0) gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", false);
    } else {
        gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
        gguf_writer_set_str(w, "tokenizer.ggml.pre", "llama-bpe");
        gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, n);
        gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, m->types, n);
        const char **merges = malloc((m->merges.n ? m->merges.n : 1) * sizeof *merges);
        if (!merges) { free(toks); return false; }
        for (size_t i = 0; i < m->merges.n; i++) merges[i] = st_get(&m->merges, i);
        gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, m->merges.n);
        free(merges);
        gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", m->bos);
        gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", m->eos);
        gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
        gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    }
    free(toks);
    return true;
}
