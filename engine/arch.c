/* Supported architectures as data (see arch_desc in model.h). Facts: docs/formats.md §7.5. */
#include "model.h"

#include <string.h>

static const arch_desc archs[] = {
    /* Llama 2/3/3.x, TinyLlama, SmolLM, Mistral without SWA: converters permute Q/K rows so
     * adjacent-pair (NORM) rotation equals HF's rotate-half. */
    { .name = "llama", .rope_neox = false, .ffn_act = FFN_ACT_SILU },
    { .name = "qwen2", .rope_neox = true, .ffn_act = FFN_ACT_SILU, .qkv_bias_ok = true },
    { .name = "phi3", .rope_neox = true, .ffn_act = FFN_ACT_SILU, .ffn_gate_fused = true, .qkv_fused_ok = true,
      .q_prescale = true },
    { .name = "gemma2", .rope_neox = true, .ffn_act = FFN_ACT_GELU, .post_norms = true, .embd_scale_sqrt = true,
      .softcaps = true, .swa_even_layers = true, .output_always_tied = true, .q_prescale = true },
    /* Upstream llama.cpp "bitnet" (1bitLLM conversions): SiLU-gated FFN, sub-norms, optional scales. */
    { .name = "bitnet", .rope_neox = true, .ffn_act = FFN_ACT_SILU, .sub_norms = true, .weight_scales_ok = true,
      .output_always_tied = true },
    /* BitNet fork names for microsoft/bitnet-b1.58-2B-4T: squared-ReLU gated FFN (trained with relu2). */
    { .name = "bitnet-b1.58", .rope_neox = true, .ffn_act = FFN_ACT_RELU2, .sub_norms = true, .weight_scales_ok = true },
    { .name = "bitnet-25", .rope_neox = true, .ffn_act = FFN_ACT_RELU2, .sub_norms = true, .weight_scales_ok = true },
};

const arch_desc *arch_find(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (strlen(archs[i].name) == len && memcmp(archs[i].name, name, len) == 0) return &archs[i];
    return NULL;
}

const char *llmpi_supported_archs(void) { return "llama, qwen2, phi3, gemma2, bitnet, bitnet-b1.58, bitnet-25"; }
