/* Quantization plans: llama-quantize's preset rules restated (see quant_plan.h, docs/formats.md §6). */
#include "quant_plan.h"

#include "quant.h"
#include "quantize.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- presets -------------------------------------------------------------------------------- */

static const qp_preset presets[] = {
    { "Q4_0",   QP_FTYPE_Q4_0,    LLMPI_TYPE_Q4_0,   "4.5 bpw legacy, 32-blocks" },
    { "Q4_1",   QP_FTYPE_Q4_1,    LLMPI_TYPE_Q4_1,   "5.0 bpw legacy with min" },
    { "Q5_0",   QP_FTYPE_Q5_0,    LLMPI_TYPE_Q5_0,   "5.5 bpw legacy" },
    { "Q5_1",   QP_FTYPE_Q5_1,    LLMPI_TYPE_Q5_1,   "6.0 bpw legacy with min" },
    { "TQ1_0",  QP_FTYPE_TQ1_0,   LLMPI_TYPE_TQ1_0,  "1.69 bpw ternary (BitNet)" },
    { "TQ2_0",  QP_FTYPE_TQ2_0,   LLMPI_TYPE_TQ2_0,  "2.06 bpw ternary (BitNet)" },
    { "I2_S",   QP_FTYPE_I2_S,    LLMPI_TYPE_I2_S,   "2 bpw ternary, BitNet fork layout (bitnet.cpp)" },
    { "Q2_K",   QP_FTYPE_Q2_K,    LLMPI_TYPE_Q2_K,   "k-quant mix around 2.6-3 bpw" },
    { "Q3_K_S", QP_FTYPE_Q3_K_S,  LLMPI_TYPE_Q3_K,   "Q3_K everywhere" },
    { "Q3_K_M", QP_FTYPE_Q3_K_M,  LLMPI_TYPE_Q3_K,   "Q3_K, attn_v/ffn_down/attn_output bumped" },
    { "Q3_K_L", QP_FTYPE_Q3_K_L,  LLMPI_TYPE_Q3_K,   "Q3_K, attn_v/ffn_down/attn_output at Q5_K" },
    { "IQ4_NL", QP_FTYPE_IQ4_NL,  LLMPI_TYPE_IQ4_NL, "4.5 bpw non-linear" },
    { "IQ4_XS", QP_FTYPE_IQ4_XS,  LLMPI_TYPE_IQ4_XS, "4.25 bpw non-linear" },
    { "Q4_K_S", QP_FTYPE_Q4_K_S,  LLMPI_TYPE_Q4_K,   "Q4_K, a few tensors Q5_K" },
    { "Q4_K_M", QP_FTYPE_Q4_K_M,  LLMPI_TYPE_Q4_K,   "Q4_K, half of attn_v/ffn_down Q6_K" },
    { "Q5_K_S", QP_FTYPE_Q5_K_S,  LLMPI_TYPE_Q5_K,   "Q5_K everywhere" },
    { "Q5_K_M", QP_FTYPE_Q5_K_M,  LLMPI_TYPE_Q5_K,   "Q5_K, half of attn_v/ffn_down Q6_K" },
    { "Q6_K",   QP_FTYPE_Q6_K,    LLMPI_TYPE_Q6_K,   "6.56 bpw" },
    { "Q8_0",   QP_FTYPE_Q8_0,    LLMPI_TYPE_Q8_0,   "8.5 bpw" },
    { "F16",    QP_FTYPE_F16,     LLMPI_TYPE_F16,    "16 bpw IEEE half" },
    { "BF16",   QP_FTYPE_BF16,    LLMPI_TYPE_BF16,   "16 bpw bfloat16" },
    { "F32",    QP_FTYPE_ALL_F32, LLMPI_TYPE_F32,    "32 bpw, no quantization" },
};

const qp_preset *qp_presets(size_t *count) {
    *count = sizeof presets / sizeof presets[0];
    return presets;
}

static bool str_ieq(const char *a, const char *b) {
    while (*a && *b && toupper((unsigned char)*a) == toupper((unsigned char)*b)) a++, b++;
    return *a == 0 && *b == 0;
}

const qp_preset *qp_preset_find(const char *name) {
    if (!name || !*name) return NULL;
    static const struct { const char *alias, *target; } aliases[] = {
        { "Q3_K", "Q3_K_M" }, { "Q4_K", "Q4_K_M" }, { "Q5_K", "Q5_K_M" },
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (str_ieq(name, aliases[i].alias)) name = aliases[i].target;
    size_t n;
    const qp_preset *p = qp_presets(&n);
    char *end;
    errno = 0;
    long id = strtol(name, &end, 10);
    bool numeric = *end == 0 && errno == 0;
    for (size_t i = 0; i < n; i++)
        if (numeric ? p[i].ftype == id : str_ieq(name, p[i].name)) return &p[i];
    return NULL;
}

/* ---- type helpers --------------------------------------------------------------------------- */

static bool type_is_quantized(uint32_t t) {
    const quant_type_traits *tr = quant_traits(t);
    return tr && tr->is_quantized;
}

static int64_t type_block(uint32_t t) {
    const quant_type_traits *tr = quant_traits(t);
    return tr ? tr->blck_size : 1;
}

quant_quantize_fn qp_quantizer(uint32_t type) {
    const quant_type_traits *tr = quant_traits(type);
    if (!tr || tr->is_activation_only) return NULL;
    if (tr->quantize) return tr->quantize;
    /* The type table's .quantize pointers may not be wired yet: use quant/quantize.h directly. */
    switch (type) {
    case LLMPI_TYPE_F32:    return quantize_f32;
    case LLMPI_TYPE_F16:    return quantize_f16;
    case LLMPI_TYPE_BF16:   return quantize_bf16;
    case LLMPI_TYPE_Q4_0:   return quantize_q4_0;
    case LLMPI_TYPE_Q4_1:   return quantize_q4_1;
    case LLMPI_TYPE_Q5_0:   return quantize_q5_0;
    case LLMPI_TYPE_Q5_1:   return quantize_q5_1;
    case LLMPI_TYPE_Q8_0:   return quantize_q8_0;
    case LLMPI_TYPE_Q2_K:   return quantize_q2_K;
    case LLMPI_TYPE_Q3_K:   return quantize_q3_K;
    case LLMPI_TYPE_Q4_K:   return quantize_q4_K;
    case LLMPI_TYPE_Q5_K:   return quantize_q5_K;
    case LLMPI_TYPE_Q6_K:   return quantize_q6_K;
    case LLMPI_TYPE_IQ4_NL: return quantize_iq4_nl;
    case LLMPI_TYPE_IQ4_XS: return quantize_iq4_xs;
    case LLMPI_TYPE_TQ1_0:  return quantize_tq1_0;
    case LLMPI_TYPE_TQ2_0:  return quantize_tq2_0;
    case LLMPI_TYPE_I2_S:   return quantize_i2_s;
    default:                return NULL;
    }
}

bool qp_type_is_ternary(uint32_t type) {
    return type == LLMPI_TYPE_TQ1_0 || type == LLMPI_TYPE_TQ2_0 || type == LLMPI_TYPE_I2_S;
}

bool qp_arch_is_ternary(const char *arch) {
    return strcmp(arch, "bitnet") == 0 || strcmp(arch, "bitnet-b1.58") == 0 || strcmp(arch, "bitnet-25") == 0;
}

int qp_parse_type(const char *s) {
    if (!s || !*s) return -1;
    char *end;
    long bits = strtol(s, &end, 10);
    if (*end == 0) {
        switch (bits) {
        case 2: return LLMPI_TYPE_Q2_K;
        case 3: return LLMPI_TYPE_Q3_K;
        case 4: return LLMPI_TYPE_Q4_K;
        case 5: return LLMPI_TYPE_Q5_K;
        case 6: return LLMPI_TYPE_Q6_K;
        case 8: return LLMPI_TYPE_Q8_0;
        case 16: return LLMPI_TYPE_F16;
        case 32: return LLMPI_TYPE_F32;
        default: return -1;
        }
    }
    int t = quant_type_from_name(s);
    return t >= 0 && qp_quantizer((uint32_t)t) ? t : -1;
}

/* ---- options -------------------------------------------------------------------------------- */

void qp_options_init(qp_options *o) {
    memset(o, 0, sizeof *o);
    o->output_tensor_type = -1;
    o->token_embedding_type = -1;
}

void qp_options_free(qp_options *o) {
    for (size_t i = 0; i < o->n_overrides; i++)
        if (!o->overrides[i].is_glob) regfree(&o->overrides[i].re);
    free(o->overrides);
    free(o->layer_rules);
    o->overrides = NULL;
    o->layer_rules = NULL;
    o->n_overrides = o->n_layer_rules = 0;
}

/* POSIX ERE has no \d; llama.cpp users write it (std::regex is ECMAScript), so translate it. */
static void translate_regex(const char *in, char *out, size_t outlen) {
    size_t j = 0;
    for (size_t i = 0; in[i] && j + 6 < outlen; i++) {
        if (in[i] == '\\' && in[i + 1] == 'd') {
            memcpy(out + j, "[0-9]", 5);
            j += 5;
            i++;
        } else {
            out[j++] = in[i];
        }
    }
    out[j] = 0;
}

static bool looks_like_glob(const char *p) {
    if (!strpbrk(p, "*?[")) return false;
    if (strpbrk(p, "\\^$()|+{}")) return false;
    return strstr(p, ".*") == NULL;
}

bool qp_options_add_override(qp_options *o, const char *arg, char *err, size_t errlen) {
    const char *eq = strrchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) {
        snprintf(err, errlen, "--tensor-type '%s': expected PATTERN=TYPE", arg);
        return false;
    }
    int type = qp_parse_type(eq + 1);
    if (type < 0) {
        snprintf(err, errlen, "--tensor-type '%s': unknown or unwritable type '%s'", arg, eq + 1);
        return false;
    }
    qp_override ov;
    memset(&ov, 0, sizeof ov);
    size_t len = (size_t)(eq - arg);
    if (len >= sizeof ov.text) {
        snprintf(err, errlen, "--tensor-type: pattern too long (max %zu characters)", sizeof ov.text - 1);
        return false;
    }
    for (size_t i = 0; i < len; i++) ov.text[i] = (char)tolower((unsigned char)arg[i]);
    ov.text[len] = 0;
    ov.type = (uint32_t)type;
    const char *pat = ov.text;
    if (strncmp(pat, "glob:", 5) == 0) {
        ov.is_glob = true;
    } else if (strncmp(pat, "re:", 3) == 0) {
        ov.is_glob = false;
        pat += 3;
    } else {
        ov.is_glob = looks_like_glob(pat);
    }
    if (!ov.is_glob) {
        char ere[512];
        translate_regex(pat, ere, sizeof ere);
        int rc = regcomp(&ov.re, ere, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char msg[128];
            regerror(rc, &ov.re, msg, sizeof msg);
            snprintf(err, errlen, "--tensor-type '%s': bad regular expression: %s", arg, msg);
            return false;
        }
    }
    qp_override *p = realloc(o->overrides, (o->n_overrides + 1) * sizeof *p);
    if (!p) {
        if (!ov.is_glob) regfree(&ov.re);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    o->overrides = p;
    o->overrides[o->n_overrides++] = ov;
    return true;
}

static bool override_matches(const qp_override *ov, const char *name) {
    if (ov->is_glob) {
        const char *g = strncmp(ov->text, "glob:", 5) == 0 ? ov->text + 5 : ov->text;
        return fnmatch(g, name, 0) == 0;
    }
    return regexec(&ov->re, name, 0, NULL, 0) == 0;
}

/* Parses "N", "N-M" or "*" into [first, last]. */
static bool parse_layer_range(const char *s, int *first, int *last) {
    if (strcmp(s, "*") == 0) { *first = *last = -1; return true; }
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || a < 0 || a > 100000) return false;
    long b = a;
    if (*end == '-') {
        const char *s2 = end + 1;
        b = strtol(s2, &end, 10);
        if (end == s2 || b < a || b > 100000) return false;
    }
    if (*end) return false;
    *first = (int)a;
    *last = (int)b;
    return true;
}

bool qp_options_load_layer_types(qp_options *o, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "--layer-types %s: %s", path, strerror(errno));
        return false;
    }
    char line[512];
    int lineno = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *save = NULL;
        char *layers = strtok_r(line, " \t\r\n", &save);
        if (!layers) continue;
        char *type_s = strtok_r(NULL, " \t\r\n", &save);
        char *filter = strtok_r(NULL, " \t\r\n", &save);
        char *extra = strtok_r(NULL, " \t\r\n", &save);
        int type = type_s ? qp_parse_type(type_s) : -1;
        if (!type_s || extra || type < 0 || (filter && strlen(filter) >= sizeof o->layer_rules[0].filter)) {
            snprintf(err, errlen, "--layer-types %s:%d: expected 'LAYERS TYPE [FILTER]' with a writable type or bit width%s%s",
                     path, lineno, type_s && type < 0 ? ", got " : "", type_s && type < 0 ? type_s : "");
            ok = false;
            break;
        }
        char *save2 = NULL;
        for (char *part = strtok_r(layers, ",", &save2); part; part = strtok_r(NULL, ",", &save2)) {
            qp_layer_rule r;
            memset(&r, 0, sizeof r);
            if (!parse_layer_range(part, &r.first, &r.last)) {
                snprintf(err, errlen, "--layer-types %s:%d: bad layer range '%s' (use N, N-M, a comma list or *)", path, lineno, part);
                ok = false;
                break;
            }
            r.type = (uint32_t)type;
            r.line = lineno;
            if (filter) snprintf(r.filter, sizeof r.filter, "%s", filter);
            qp_layer_rule *p = realloc(o->layer_rules, (o->n_layer_rules + 1) * sizeof *p);
            if (!p) { snprintf(err, errlen, "out of memory"); ok = false; break; }
            o->layer_rules = p;
            o->layer_rules[o->n_layer_rules++] = r;
        }
    }
    if (ok && ferror(f)) {
        snprintf(err, errlen, "--layer-types %s: read error", path);
        ok = false;
    }
    fclose(f);
    return ok;
}

/* ---- tensor order and classification -------------------------------------------------------- */

static int layer_of(const char *name) {
    int layer = -1;
    if (sscanf(name, "blk.%d.", &layer) != 1) layer = -1;
    return layer;
}

int qp_name_cmp(const char *a, const char *b) {
    int la = layer_of(a), lb = layer_of(b);
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(a, b);
}

int qp_tensor_cmp(const void *a, const void *b) {
    return qp_name_cmp(((const qp_tensor *)a)->name, ((const qp_tensor *)b)->name);
}

uint32_t qp_effective_dims(const int64_t ne[4]) {
    for (int i = 3; i >= 1; i--)
        if (ne[i] > 1) return (uint32_t)i + 1;
    return 1;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

bool qp_tensor_allows_quantization(const char *name, uint32_t n_dims, bool leave_output_tensor) {
    if (n_dims < 2) return false;
    if (!ends_with(name, "weight")) return false;
    if (strstr(name, "_norm.weight")) return false;
    if (leave_output_tensor && strcmp(name, "output.weight") == 0) return false;
    static const char *const never[] = {
        "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj", "ssm_conv1d",
        "shortconv.conv.weight", "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight",
        "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight",
        "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight",
        "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.",
        "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger",
    };
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (strstr(name, never[i])) return false;
    if (strcmp(name, "position_embd.weight") == 0 || strcmp(name, "token_types.weight") == 0) return false;
    return true;
}

typedef enum {
    CAT_TOKEN_EMBD, CAT_ATTN_Q, CAT_ATTN_V, CAT_ATTN_K, CAT_ATTN_QKV, CAT_ATTN_KV_B, CAT_ATTN_OUTPUT,
    CAT_FFN_UP, CAT_FFN_GATE, CAT_FFN_DOWN, CAT_OUTPUT, CAT_OTHER
} category;

/* Same substring tests, in the same order, as llama.cpp's tensor_get_category. */
static category category_of(const char *name) {
    if (strcmp(name, "output.weight") == 0) return CAT_OUTPUT;
    if (strcmp(name, "token_embd.weight") == 0 || strcmp(name, "per_layer_token_embd.weight") == 0) return CAT_TOKEN_EMBD;
    if (strstr(name, "attn_qkv.weight")) return CAT_ATTN_QKV;
    if (strstr(name, "attn_kv_b.weight")) return CAT_ATTN_KV_B;
    if (strstr(name, "attn_v.weight")) return CAT_ATTN_V;
    if (strstr(name, "attn_k.weight")) return CAT_ATTN_K;
    if (strstr(name, "attn_q.weight")) return CAT_ATTN_Q;
    if (strstr(name, "attn_output.weight")) return CAT_ATTN_OUTPUT;
    if (strstr(name, "ffn_up")) return CAT_FFN_UP;
    if (strstr(name, "ffn_gate")) return CAT_FFN_GATE;
    if (strstr(name, "ffn_down")) return CAT_FFN_DOWN;
    return CAT_OTHER;
}

static bool is_attn_v_like(category c) { return c == CAT_ATTN_V || c == CAT_ATTN_QKV || c == CAT_ATTN_KV_B; }

/* ---- the rules (llama_tensor_get_type_impl) ------------------------------------------------- */

typedef struct {
    int n_attention_wv, i_attention_wv;
    int n_ffn_down, i_ffn_down;
    bool tied;          /* no output.weight: token_embd is also the output matrix */
} plan_state;

static bool use_more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

#define WHY(...) snprintf(why, whylen, __VA_ARGS__)

static uint32_t rules(plan_state *st, const qp_model_info *mi, const qp_options *opt, const qp_tensor *t,
                      category cat, char *why, size_t whylen) {
    const int ftype = opt->preset->ftype;
    uint32_t type = opt->preset->base_type;
    const bool falcon = strcmp(mi->arch, "falcon") == 0;
    const int gqa = mi->n_head_kv > 0 ? mi->n_head / mi->n_head_kv : 1;
    const int n_expert = mi->n_expert;

    if (cat == CAT_OUTPUT || (st->tied && cat == CAT_TOKEN_EMBD)) {
        if (opt->output_tensor_type >= 0) {
            WHY("--output-tensor-type");
            return (uint32_t)opt->output_tensor_type;
        }
        if (ftype == QP_FTYPE_I2_S) {
            WHY("I2_S: output in F16");
            return LLMPI_TYPE_F16;
        }
        if (falcon || t->ne[0] % type_block(type) != 0) {
            WHY("output: Q8_0");
            return LLMPI_TYPE_Q8_0;
        }
        if (type != LLMPI_TYPE_Q8_0) {
            WHY("output: Q6_K");
            return LLMPI_TYPE_Q6_K;
        }
        WHY("output");
        return type;
    }
    if (cat == CAT_TOKEN_EMBD) {
        if (opt->token_embedding_type >= 0) {
            WHY("--token-embedding-type");
            return (uint32_t)opt->token_embedding_type;
        }
        if (ftype == QP_FTYPE_TQ1_0 || ftype == QP_FTYPE_TQ2_0) {
            WHY("token_embd: Q4_K");
            return LLMPI_TYPE_Q4_K;
        }
        if (ftype == QP_FTYPE_I2_S) {
            WHY("I2_S: token_embd in F16");
            return LLMPI_TYPE_F16;
        }
        WHY("token_embd");
        return type;
    }
    if (is_attn_v_like(cat)) {
        const int i = st->i_attention_wv++;
        const uint32_t before = type;
        if (ftype == QP_FTYPE_Q2_K) type = gqa >= 4 ? LLMPI_TYPE_Q4_K : LLMPI_TYPE_Q3_K;
        else if (ftype == QP_FTYPE_Q3_K_M) type = i < 2 ? LLMPI_TYPE_Q5_K : LLMPI_TYPE_Q4_K;
        else if (ftype == QP_FTYPE_Q3_K_L) type = LLMPI_TYPE_Q5_K;
        else if ((ftype == QP_FTYPE_IQ4_NL || ftype == QP_FTYPE_IQ4_XS) && gqa >= 4) type = LLMPI_TYPE_Q5_K;
        else if ((ftype == QP_FTYPE_Q4_K_M || ftype == QP_FTYPE_Q5_K_M) && use_more_bits(i, st->n_attention_wv)) type = LLMPI_TYPE_Q6_K;
        else if (ftype == QP_FTYPE_Q4_K_S && i < 4) type = LLMPI_TYPE_Q5_K;
        /* llama.cpp's LLM_TYPE_70B: an 80-layer llama with grouped-query attention. */
        const bool is_70b = strcmp(mi->arch, "llama") == 0 && mi->n_layer == 80 && mi->n_head != mi->n_head_kv;
        if (is_70b && (type == LLMPI_TYPE_Q3_K || type == LLMPI_TYPE_Q4_K)) type = LLMPI_TYPE_Q5_K;
        if (n_expert == 8) type = LLMPI_TYPE_Q8_0;
        if (type != before) WHY("attn_v #%d: %s", i, quant_type_name(type));
        else WHY("preset");
        return type;
    }
    if (cat == CAT_ATTN_K) {
        if (n_expert == 8) { WHY("attn_k (8 experts)"); return LLMPI_TYPE_Q8_0; }
        WHY("preset");
        return type;
    }
    if (cat == CAT_FFN_DOWN) {
        const int i = st->i_ffn_down++;
        int n = st->n_ffn_down;
        int layer = i;
        if (n_expert > 1) {
            layer = layer_of(t->name);
            n = mi->n_layer;
        }
        const uint32_t before = type;
        if (ftype == QP_FTYPE_Q2_K) type = LLMPI_TYPE_Q3_K;
        else if (ftype == QP_FTYPE_Q3_K_M)
            type = layer < n / 16 ? LLMPI_TYPE_Q5_K : (!falcon || use_more_bits(layer, n)) ? LLMPI_TYPE_Q4_K : LLMPI_TYPE_Q3_K;
        else if (ftype == QP_FTYPE_Q3_K_L) type = falcon ? LLMPI_TYPE_Q4_K : LLMPI_TYPE_Q5_K;
        else if (ftype == QP_FTYPE_Q4_K_M) {
            if (falcon) type = layer < n / 16 ? LLMPI_TYPE_Q6_K : use_more_bits(layer, n) ? LLMPI_TYPE_Q5_K : LLMPI_TYPE_Q4_K;
            else if (use_more_bits(layer, n)) type = LLMPI_TYPE_Q6_K;
        }
        else if (layer < n / 8 && (ftype == QP_FTYPE_IQ4_NL || ftype == QP_FTYPE_IQ4_XS) && !opt->has_imatrix) type = LLMPI_TYPE_Q5_K;
        else if (ftype == QP_FTYPE_Q5_K_M && use_more_bits(layer, n)) type = LLMPI_TYPE_Q6_K;
        else if (ftype == QP_FTYPE_Q4_K_S && !falcon && layer < n / 8) type = LLMPI_TYPE_Q5_K;
        else if ((ftype == QP_FTYPE_Q4_0 || ftype == QP_FTYPE_Q5_0) && opt->has_imatrix && layer < n / 8)
            type = ftype == QP_FTYPE_Q4_0 ? LLMPI_TYPE_Q4_1 : LLMPI_TYPE_Q5_1;
        if (type != before) WHY("ffn_down L%d: %s", layer, quant_type_name(type));
        else WHY("preset");
        return type;
    }
    if (cat == CAT_ATTN_OUTPUT) {
        const uint32_t before = type;
        if (!falcon) {
            if (n_expert == 8) {
                if (ftype == QP_FTYPE_Q2_K || ftype == QP_FTYPE_Q3_K_S || ftype == QP_FTYPE_Q3_K_M ||
                    ftype == QP_FTYPE_IQ4_NL || ftype == QP_FTYPE_Q4_K_S || ftype == QP_FTYPE_Q4_K_M ||
                    ftype == QP_FTYPE_IQ4_XS)
                    type = LLMPI_TYPE_Q5_K;
            } else {
                if (ftype == QP_FTYPE_Q2_K) type = LLMPI_TYPE_Q3_K;
                else if (ftype == QP_FTYPE_Q3_K_M) type = LLMPI_TYPE_Q4_K;
                else if (ftype == QP_FTYPE_Q3_K_L) type = LLMPI_TYPE_Q5_K;
            }
        } else if (ftype == QP_FTYPE_Q3_K_L) {
            type = LLMPI_TYPE_Q4_K;
        }
        if (type != before) WHY("attn_output: %s", quant_type_name(type));
        else WHY("preset");
        return type;
    }
    /* attn_q, ffn_gate, ffn_up: only the IQ3/IQ2 presets (not offered here) change them. */
    WHY("preset");
    return type;
}

/* Block-size fallback (llama.cpp tensor_type_fallback). */
static uint32_t fallback(uint32_t type, int64_t ncols, bool *changed) {
    *changed = false;
    if (ncols % type_block(type) == 0) return type;
    *changed = true;
    uint32_t to = type;
    switch (type) {
    case LLMPI_TYPE_IQ4_XS: to = LLMPI_TYPE_IQ4_NL; break;
    case LLMPI_TYPE_Q2_K: case LLMPI_TYPE_Q3_K: case LLMPI_TYPE_TQ1_0: case LLMPI_TYPE_TQ2_0: to = LLMPI_TYPE_Q4_0; break;
    case LLMPI_TYPE_Q4_K: to = LLMPI_TYPE_Q5_0; break;
    case LLMPI_TYPE_Q5_K: to = LLMPI_TYPE_Q5_1; break;
    case LLMPI_TYPE_Q6_K: to = LLMPI_TYPE_Q8_0; break;
    case LLMPI_TYPE_I2_S: to = LLMPI_TYPE_F16; break; /* the fork keeps non-ternary tensors in F16 */
    default: break;                                   /* a 32-block type: only F16 is left */
    }
    if (ncols % type_block(to) != 0) to = LLMPI_TYPE_F16;
    return to;
}

static const qp_layer_rule *layer_rule_for(const qp_options *opt, const char *name) {
    const int layer = layer_of(name);
    if (layer < 0) return NULL;
    const qp_layer_rule *hit = NULL;
    for (size_t i = 0; i < opt->n_layer_rules; i++) {
        const qp_layer_rule *r = &opt->layer_rules[i];
        if (r->first >= 0 && (layer < r->first || layer > r->last)) continue;
        if (r->filter[0] && !strstr(name, r->filter)) continue;
        hit = r;
    }
    return hit;
}

bool qp_plan(const qp_model_info *mi, const qp_options *opt, qp_tensor *t, size_t n, char *err, size_t errlen) {
    plan_state st = { .tied = true, .n_ffn_down = mi->n_layer };
    for (size_t i = 0; i < n; i++) {
        category c = category_of(t[i].name);
        if (is_attn_v_like(c)) st.n_attention_wv++;
        if (c == CAT_OUTPUT) st.tied = false;
    }
    const uint32_t base = opt->preset->base_type;
    for (size_t i = 0; i < n; i++) {
        qp_tensor *x = &t[i];
        char *why = x->why;
        const size_t whylen = sizeof x->why;
        x->fallback = false;
        x->n_dims = qp_effective_dims(x->ne);
        x->quantizable = qp_tensor_allows_quantization(x->name, x->n_dims, opt->leave_output_tensor);
        if (!x->quantizable) {
            x->type = x->src_type;
            WHY("kept");
            continue;
        }
        const category c = category_of(x->name);
        if (opt->token_embedding_type >= 0 && c == CAT_TOKEN_EMBD) {
            x->type = (uint32_t)opt->token_embedding_type;
            WHY("--token-embedding-type");
            continue;
        }
        if (opt->output_tensor_type >= 0 && c == CAT_OUTPUT) {
            x->type = (uint32_t)opt->output_tensor_type;
            WHY("--output-tensor-type");
            continue;
        }
        uint32_t type = base;
        bool manual = false;
        for (size_t k = 0; k < opt->n_overrides; k++) {
            if (override_matches(&opt->overrides[k], x->name)) {
                type = opt->overrides[k].type;
                WHY("--tensor-type %.30s", opt->overrides[k].text);
                manual = true;
                break;
            }
        }
        if (!manual) {
            const qp_layer_rule *r = layer_rule_for(opt, x->name);
            if (r) {
                type = r->type;
                WHY("--layer-types line %d", r->line);
                manual = true;
            }
        }
        if (!type_is_quantized(base) && !manual) {
            /* F32/F16/BF16 presets: every quantizable tensor takes the base type, no rules, no fallback. */
            x->type = base;
            WHY("preset");
            continue;
        }
        if (!manual && !opt->pure) type = rules(&st, mi, opt, x, c, why, whylen);
        else if (!manual) WHY("--pure");
        bool changed;
        uint32_t fb = fallback(type, x->ne[0], &changed);
        if (changed) {
            WHY("fallback %s->%s (ne0 %lld)", quant_type_name(type), quant_type_name(fb), (long long)x->ne[0]);
            x->fallback = true;
        }
        x->type = fb;
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i].type != t[i].src_type && !qp_quantizer(t[i].type)) {
            snprintf(err, errlen, "tensor %s: this build cannot write type %s", t[i].name, quant_type_name(t[i].type));
            return false;
        }
    }
    return true;
}
