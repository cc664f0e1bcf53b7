/* The type-traits table: one row per format (docs/formats.md §2). Every consumer loops over it. */
#include "quant.h"
#include "blocks.h"
#include "ref.h"
#include "quantize.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* to_float / from_float / vec_dot are the scalar references (quant/ref.h); quantize is the weight
 * quantizer of quant/quantize.h (NULL for the activation-only types). */
#define ROW(id, nm, blck, size, quantized, act_only, vdt, to_f, from_f, dot, quant) \
    [id] = { .name = nm, .blck_size = blck, .type_size = size, .is_quantized = quantized, \
             .is_activation_only = act_only, .vec_dot_type = vdt, \
             .to_float = to_f, .from_float = from_f, .quantize = quant, .vec_dot = dot }

static const quant_type_traits traits_table[LLMPI_TYPE_COUNT] = {
    ROW(LLMPI_TYPE_F32,    "F32",    1,      4,                    false, false, LLMPI_TYPE_F32,
        dequantize_row_f32,    quantize_row_f32_act,  vec_dot_f32_f32, quantize_f32),
    ROW(LLMPI_TYPE_F16,    "F16",    1,      2,                    false, false, LLMPI_TYPE_F16,
        dequantize_row_f16,    quantize_row_f16_act,  vec_dot_f16_f16, quantize_f16),
    ROW(LLMPI_TYPE_Q4_0,   "Q4_0",   QK4_0,  sizeof(block_q4_0),   true,  false, LLMPI_TYPE_Q8_0,
        dequantize_row_q4_0,   NULL,                  vec_dot_q4_0_q8_0, quantize_q4_0),
    ROW(LLMPI_TYPE_Q4_1,   "Q4_1",   QK4_1,  sizeof(block_q4_1),   true,  false, LLMPI_TYPE_Q8_1,
        dequantize_row_q4_1,   NULL,                  vec_dot_q4_1_q8_1, quantize_q4_1),
    ROW(LLMPI_TYPE_Q5_0,   "Q5_0",   QK5_0,  sizeof(block_q5_0),   true,  false, LLMPI_TYPE_Q8_0,
        dequantize_row_q5_0,   NULL,                  vec_dot_q5_0_q8_0, quantize_q5_0),
    ROW(LLMPI_TYPE_Q5_1,   "Q5_1",   QK5_1,  sizeof(block_q5_1),   true,  false, LLMPI_TYPE_Q8_1,
        dequantize_row_q5_1,   NULL,                  vec_dot_q5_1_q8_1, quantize_q5_1),
    ROW(LLMPI_TYPE_Q8_0,   "Q8_0",   QK8_0,  sizeof(block_q8_0),   true,  false, LLMPI_TYPE_Q8_0,
        dequantize_row_q8_0,   quantize_row_q8_0_act, vec_dot_q8_0_q8_0, quantize_q8_0),
    ROW(LLMPI_TYPE_Q8_1,   "Q8_1",   QK8_1,  sizeof(block_q8_1),   true,  true,  LLMPI_TYPE_Q8_1,
        dequantize_row_q8_1,   quantize_row_q8_1_act, NULL, NULL),
    ROW(LLMPI_TYPE_Q2_K,   "Q2_K",   QK_K,   sizeof(block_q2_K),   true,  false, LLMPI_TYPE_Q8_K,
        dequantize_row_q2_K,   NULL,                  vec_dot_q2_K_q8_K, quantize_q2_K),
    ROW(LLMPI_TYPE_Q3_K,   "Q3_K",   QK_K,   sizeof(block_q3_K),   true,  false, LLMPI_TYPE_Q8_K,
        dequantize_row_q3_K,   NULL,                  vec_dot_q3_K_q8_K, quantize_q3_K),
    ROW(LLMPI_TYPE_Q4_K,   "Q4_K",   QK_K,   sizeof(block_q4_K),   true,  false, LLMPI_TYPE_Q8_K,
        dequantize_row_q4_K,   NULL,                  vec_dot_q4_K_q8_K, quantize_q4_K),
    ROW(LLMPI_TYPE_Q5_K,   "Q5_K",   QK_K,   sizeof(block_q5_K),   true,  false, LLMPI_TYPE_Q8_K,
        dequantize_row_q5_K,   NULL,                  vec_dot_q5_K_q8_K, quantize_q5_K),
    ROW(LLMPI_TYPE_Q6_K,   "Q6_K",   QK_K,   sizeof(block_q6_K),   true,  false, LLMPI_TYPE_Q8_K,
        dequantize_row_q6_K,   NULL,                  vec_dot_q6_K_q8_K, quantize_q6_K),
    ROW(LLMPI_TYPE_Q8_K,   "Q8_K",   QK_K,   sizeof(block_q8_K),   true,  true,  LLMPI_TYPE_Q8_K,
        dequantize_row_q8_K,   quantize_row_q8_K_act, NULL, NULL),
    ROW(LLMPI_TYPE_IQ4_NL, "IQ4_NL", QK4_NL, sizeof(block_iq4_nl), true,  false, LLMPI_TYPE_Q8_0,
        dequantize_row_iq4_nl, NULL,                  vec_dot_iq4_nl_q8_0, quantize_iq4_nl),
    ROW(LLMPI_TYPE_IQ4_XS, "IQ4_XS", QK_K,   sizeof(block_iq4_xs), true,  false, LLMPI_TYPE_Q8_K,
        dequantize_row_iq4_xs, NULL,                  vec_dot_iq4_xs_q8_K, quantize_iq4_xs),
    ROW(LLMPI_TYPE_BF16,   "BF16",   1,      2,                    false, false, LLMPI_TYPE_BF16,
        dequantize_row_bf16,   quantize_row_bf16_act, vec_dot_bf16_bf16, quantize_bf16),
    ROW(LLMPI_TYPE_TQ1_0,  "TQ1_0",  QK_K,   sizeof(block_tq1_0),  true,  false, LLMPI_TYPE_Q8_K,
        dequantize_row_tq1_0,  NULL,                  vec_dot_tq1_0_q8_K, quantize_tq1_0),
    ROW(LLMPI_TYPE_TQ2_0,  "TQ2_0",  QK_K,   sizeof(block_tq2_0),  true,  false, LLMPI_TYPE_Q8_K,
        dequantize_row_tq2_0,  NULL,                  vec_dot_tq2_0_q8_K, quantize_tq2_0),
    /* I2_S rows are 32 bytes per 128 elements; the tensor adds a 32-byte tail (scale + filler).
     * Its row to_float yields the ternary values; quant_dequantize_tensor applies the scale. */
    ROW(LLMPI_TYPE_I2_S,   "I2_S",   QK_I2S, sizeof(block_i2_s),   true,  false, LLMPI_TYPE_I8_S,
        dequantize_row_i2_s,   NULL,                  vec_dot_i2_s_i8_s, quantize_i2_s),
    /* I8_S is a per-row activation format, not a block format: n int8 codes + f32 scale + i32 sum,
     * n + 8 bytes per row (quant_row_size special-cases it; see quant/ref.h). */
    ROW(LLMPI_TYPE_I8_S,   "I8_S",   1,      1,                    true,  true,  LLMPI_TYPE_I8_S,
        dequantize_row_i8_s,   quantize_row_i8_s_act, NULL, NULL),
};

/* Names of ggml ids we recognise but do not support, so errors can say what the file holds. */
static const char *const other_names[LLMPI_TYPE_COUNT] = {
    [4] = "Q4_2 (removed)", [5] = "Q4_3 (removed)", [16] = "IQ2_XXS", [17] = "IQ2_XS", [18] = "IQ3_XXS",
    [19] = "IQ1_S", [21] = "IQ3_S", [22] = "IQ2_S", [24] = "I8", [25] = "I16", [26] = "I32", [27] = "I64",
    [28] = "F64", [29] = "IQ1_M", [31] = "Q4_0_4_4 (removed)", [32] = "Q4_0_4_8 (removed)",
    [33] = "Q4_0_8_8 (removed)", [38] = "TL1", [39] = "MXFP4", [40] = "NVFP4", [41] = "Q1_0", [42] = "Q2_0",
};

const quant_type_traits *quant_traits(uint32_t t) {
    if (t >= LLMPI_TYPE_COUNT || traits_table[t].name == NULL) return NULL;
    return &traits_table[t];
}

const char *quant_type_name(uint32_t t) {
    static _Thread_local char buf[32];
    if (t < LLMPI_TYPE_COUNT && traits_table[t].name) return traits_table[t].name;
    if (t < LLMPI_TYPE_COUNT && other_names[t]) return other_names[t];
    snprintf(buf, sizeof buf, "type %u", t);
    return buf;
}

int quant_type_from_name(const char *name) {
    for (int t = 0; t < LLMPI_TYPE_COUNT; t++) {
        const char *n = traits_table[t].name;
        if (!n) continue;
        size_t i = 0;
        while (n[i] && name[i] && toupper((unsigned char)name[i]) == n[i]) i++;
        if (!n[i] && !name[i]) return t;
    }
    return -1;
}

size_t quant_row_size(uint32_t t, int64_t ne0) {
    const quant_type_traits *tr = quant_traits(t);
    if (!tr || ne0 <= 0 || ne0 % tr->blck_size) return 0;
    if (t == LLMPI_TYPE_I8_S) return I8S_ROW_BYTES(ne0);   /* codes + f32 scale + i32 sum */
    return (size_t)(ne0 / tr->blck_size) * tr->type_size;
}

bool quant_tensor_nbytes(uint32_t t, const int64_t ne[4], uint64_t *out) {
    const quant_type_traits *tr = quant_traits(t);
    if (!tr || tr->is_activation_only) return false;
    for (int i = 0; i < 4; i++) if (ne[i] <= 0) return false;
    if (ne[0] % tr->blck_size) return false;
    uint64_t rows = 1;
    for (int i = 1; i < 4; i++) {
        if ((uint64_t)ne[i] > UINT64_MAX / rows) return false;
        rows *= (uint64_t)ne[i];
    }
    const uint64_t blocks = (uint64_t)(ne[0] / tr->blck_size);
    if (blocks > UINT64_MAX / tr->type_size) return false;
    uint64_t row_bytes = blocks * tr->type_size;
    if (rows && row_bytes > UINT64_MAX / rows) return false;
    uint64_t total = row_bytes * rows;
    if (t == LLMPI_TYPE_I2_S) {
        if (total > UINT64_MAX - I2S_TENSOR_TAIL) return false;
        total += I2S_TENSOR_TAIL;
    }
    *out = total;
    return true;
}
