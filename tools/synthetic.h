/* Synthetic (random-weight) models of real shapes, for benchmarks without downloads.
 *
 * A synthetic model is a virtual F32 source: metadata (hyperparameters and a valid tokenizer of the
 * right vocabulary size, loadable by LLMPi and llama.cpp) plus a deterministic weight generator that can
 * produce any rows of any tensor on demand, so llmpi-quantize --synthetic streams a multi-GB model
 * through the same quantization path as a real file without ever holding it in memory.
 * Weights depend only on (seed, tensor index, row): any chunking or thread count gives identical bytes.
 *
 * Shapes (llmpi-quantize --synthetic list prints them): llama-1b (Llama-3.2-1B), llama-3b (Llama-3.2-3B),
 * llama-8b (Llama-3.1-8B), bitnet-0.7b (1bitLLM bitnet_b1_58-large), bitnet-2b (BitNet b1.58 2B-4T
 * shape, upstream "bitnet" arch), gemma2-2b, phi3-mini (Phi-3-mini-4k), and the small test shapes
 * llama-tiny / bitnet-tiny (dimensions of the fixtures). */
#ifndef LLMPI_SYNTHETIC_H
#define LLMPI_SYNTHETIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef enum { SYNTH_VOCAB_SPM, SYNTH_VOCAB_LLAMA3_BPE } synth_vocab_kind;

typedef struct {
    const char *name;        /* "llama-1b" */
    const char *arch;        /* general.architecture */
    const char *based_on;    /* the real model whose shape this copies */
    int   n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
    float rope_base, rms_eps;
    bool  tied;              /* no output.weight (logits use token_embd) */
    synth_vocab_kind vocab;
    float rope_factor;       /* Llama 3 rope_freqs scaling factor; 0 = no rope_freqs tensor */
    int   rope_orig_ctx;     /* Llama 3 original context for rope_freqs */
    bool  ternary;           /* BitNet: projections are {-s, 0, +s} with per-tensor .scale tensors */
    int   sliding_window;    /* gemma2 SWA window, 0 = none */
} synth_shape;

const synth_shape *synth_shapes(size_t *count);
const synth_shape *synth_shape_find(const char *name);

typedef struct {
    char     name[64];
    uint32_t n_dims;
    int64_t  ne[4];
} synth_tensor;

typedef struct synth_model synth_model;

/* Builds the tensor list and the tokenizer (a few MB for 128k/256k vocabularies). NULL on out of memory. */
synth_model *synth_create(const synth_shape *shape, uint64_t seed);
void synth_free(synth_model *m);

size_t              synth_n_tensors(const synth_model *m);
const synth_tensor *synth_get_tensor(const synth_model *m, size_t i);
const synth_shape  *synth_get_shape(const synth_model *m);

/* Writes rows [row0, row0 + nrows) of tensor i (each ne[0] floats) into out. Thread-safe. */
void synth_fill_rows(const synth_model *m, size_t i, int64_t row0, int64_t nrows, float *out);

/* Sets every metadata key (general.*, {arch}.*, tokenizer.*) except general.file_type and
 * general.quantization_version. False on out of memory. */
bool synth_write_kv(const synth_model *m, gguf_writer *w);

#endif
