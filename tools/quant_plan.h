/* Quantization plans: which type each tensor of a model gets (docs/formats.md §6, docs/quantize.md).
 *
 * Reproduces llama-quantize's choices (llama.cpp src/llama-quant.cpp): the presets with their
 * `general.file_type` ids and base types, the per-tensor rules (output/embedding, attn_v and ffn_down
 * bumps, ...), the block-size fallbacks, `--pure`, `--tensor-type`, `--output-tensor-type` and
 * `--token-embedding-type`; plus LLMPi's `--layer-types` per-layer rules and the BitNet fork's I2_S
 * preset. Used by llmpi-quantize (and by its test to compare plans with llama.cpp's files).
 *
 * Tensors must be planned in llama.cpp's order (qp_name_cmp): the attn_v / ffn_down rules count
 * tensors as they go. Nothing here prints or allocates except qp_options_* (freed by qp_options_free). */
#ifndef LLMPI_QUANT_PLAN_H
#define LLMPI_QUANT_PLAN_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quant.h"

/* llama_ftype ids (general.file_type). I2_S is the BitNet fork's id (upstream 40 = Q1_0). */
enum {
    QP_FTYPE_ALL_F32 = 0, QP_FTYPE_F16 = 1, QP_FTYPE_Q4_0 = 2, QP_FTYPE_Q4_1 = 3, QP_FTYPE_Q8_0 = 7,
    QP_FTYPE_Q5_0 = 8, QP_FTYPE_Q5_1 = 9, QP_FTYPE_Q2_K = 10, QP_FTYPE_Q3_K_S = 11, QP_FTYPE_Q3_K_M = 12,
    QP_FTYPE_Q3_K_L = 13, QP_FTYPE_Q4_K_S = 14, QP_FTYPE_Q4_K_M = 15, QP_FTYPE_Q5_K_S = 16,
    QP_FTYPE_Q5_K_M = 17, QP_FTYPE_Q6_K = 18, QP_FTYPE_IQ4_NL = 25, QP_FTYPE_IQ4_XS = 30,
    QP_FTYPE_BF16 = 32, QP_FTYPE_TQ1_0 = 36, QP_FTYPE_TQ2_0 = 37, QP_FTYPE_I2_S = 40,
};

typedef struct {
    const char *name;      /* llama-quantize's name, e.g. "Q4_K_M" */
    int         ftype;     /* general.file_type */
    uint32_t    base_type; /* llmpi_type every quantizable tensor starts from */
    const char *desc;
} qp_preset;

/* All presets (aliases excluded), in llama-quantize's listing order. */
const qp_preset *qp_presets(size_t *count);
/* Finds a preset by name (case-insensitive; the aliases Q3_K/Q4_K/Q5_K = the _M presets) or by its
 * ftype number ("15"). NULL if unknown. */
const qp_preset *qp_preset_find(const char *name);

/* What the rules need to know about the model (from the GGUF metadata). */
typedef struct {
    char arch[64];   /* general.architecture */
    int  n_layer;    /* {arch}.block_count */
    int  n_head;     /* head count of layer 0 */
    int  n_head_kv;  /* kv head count of layer 0 (= n_head if absent) */
    int  n_expert;   /* {arch}.expert_count, 0 if absent */
} qp_model_info;

/* --tensor-type PATTERN=TYPE. Pattern syntax: "re:R" = POSIX extended regex searched anywhere in the
 * name (like llama.cpp's std::regex_search; `\d` is accepted), "glob:G" = shell glob over the whole
 * name; without a prefix a pattern containing * ? or [ and no regex-only syntax is a glob, anything
 * else a regex. Patterns are lower-cased like llama-quantize does. */
typedef struct {
    char     text[128];  /* as given (after lower-casing), for messages */
    bool     is_glob;
    regex_t  re;         /* compiled when !is_glob */
    uint32_t type;
} qp_override;

/* One --layer-types rule: layers [first, last] (inclusive; first = -1 means every layer), optionally only
 * tensors whose name contains `filter`. */
typedef struct {
    int      first, last;
    char     filter[64];
    uint32_t type;
    int      line;       /* line in the file, for messages */
} qp_layer_rule;

typedef struct {
    const qp_preset *preset;
    bool pure;                    /* --pure: skip the per-tensor rules */
    bool has_imatrix;             /* changes the ffn_down rules of Q4_0/Q5_0/IQ4_NL/IQ4_XS */
    bool leave_output_tensor;     /* --leave-output-tensor */
    int  output_tensor_type;      /* --output-tensor-type, -1 = none */
    int  token_embedding_type;    /* --token-embedding-type, -1 = none */
    qp_override   *overrides;     /* first match wins */
    size_t         n_overrides;
    qp_layer_rule *layer_rules;   /* last match wins (later lines refine earlier ones) */
    size_t         n_layer_rules;
} qp_options;

void qp_options_init(qp_options *o);
void qp_options_free(qp_options *o);
/* Adds "PATTERN=TYPE". Returns false with a one-line message in err on a malformed argument. */
bool qp_options_add_override(qp_options *o, const char *arg, char *err, size_t errlen);
/* Parses a --layer-types file (format in docs/quantize.md): lines "LAYERS TYPE [FILTER]", LAYERS = N,
 * N-M, a comma list of those, or *; TYPE = a type name or a bit width (2..6 -> Q<n>_K, 8 -> Q8_0,
 * 16 -> F16); '#' starts a comment. */
bool qp_options_load_layer_types(qp_options *o, const char *path, char *err, size_t errlen);
/* Parses a weight type name or bit width as used in --layer-types; -1 if invalid or not writable. */
int qp_parse_type(const char *s);

/* One tensor of the plan. Inputs: name, n_dims, ne, src_type. Outputs: the rest. */
typedef struct {
    char     name[64];
    uint32_t n_dims;       /* as llama.cpp writes it: ggml_n_dims (trailing 1s dropped, at least 1) */
    int64_t  ne[4];
    uint32_t src_type;
    uint32_t type;         /* chosen type */
    bool     quantizable;  /* passes llama.cpp's "may be quantized" test (2-D+, *weight, not a norm...) */
    bool     fallback;     /* the chosen type was replaced because ne[0] is not a multiple of its block */
    char     why[48];      /* short reason for --dry-run: "preset", "output: Q6_K", "override ...", ... */
} qp_tensor;

/* llama.cpp's tensor order (llama_model_loader's weight map): tensors outside blk.N first, then by
 * layer number; names compared with strcmp inside each group. For qsort over qp_tensor. */
int qp_tensor_cmp(const void *a, const void *b);
int qp_name_cmp(const char *a, const char *b);
/* ggml_n_dims: index of the last dimension > 1, plus one (at least 1). */
uint32_t qp_effective_dims(const int64_t ne[4]);
/* llama.cpp's "may this tensor be quantized at all" test (docs/formats.md §6.1). */
bool qp_tensor_allows_quantization(const char *name, uint32_t n_dims, bool leave_output_tensor);

/* Plans every tensor (in the given order, which must be qp_tensor_cmp order). Returns false with a
 * message if a chosen type cannot be written (no quantizer in the type table). */
bool qp_plan(const qp_model_info *mi, const qp_options *opt, qp_tensor *t, size_t n, char *err, size_t errlen);

/* The weight quantizer for a type (the type table's, or quant/quantize.h's while the table is not
 * wired), NULL if this build cannot write the type. */
quant_quantize_fn qp_quantizer(uint32_t type);

/* True for the ternary formats (TQ1_0, TQ2_0, I2_S). */
bool qp_type_is_ternary(uint32_t type);
/* True for architectures whose weights are meant to be ternary (bitnet, bitnet-b1.58, bitnet-25). */
bool qp_arch_is_ternary(const char *arch);

#endif
