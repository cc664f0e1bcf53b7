/* Importance matrices (llama.cpp's llama-imatrix statistics): collecting, writing, reading.
 *
 * What is collected: for every weight W of a matrix product y = W·x, and every input column j,
 *   in_sum2[j] = sum over all input rows x seen so far of x[j]^2      (accumulated in double)
 *   count      = number of rows added
 * llama-quantize uses importance[j] = in_sum2[j] / count to weight each column's quantization error.
 *
 * Which weights (as llama-imatrix does): only names beginning with "blk." (every per-layer 2-D
 * weight: attn_q/k/v or attn_qkv, attn_output, ffn_gate/up/down, ...), plus "output.weight" when
 * process_output is set (llama-imatrix --process-output). token_embd.weight is never collected:
 * the embedding is a row lookup, not a matmul, and when the output is tied to it the output matmul's
 * weight is named token_embd.weight, which llama-imatrix skips even with --process-output.
 * Unlike llama-imatrix, calls with fewer than 16 rows are kept: our engine splits a chunk into
 * micro-batches (-b), while llama-imatrix sees the whole chunk (up to 512 tokens) in one call.
 *
 * File format (llama.cpp's imatrix GGUF, tools/imatrix/imatrix.cpp): KVs general.type = "imatrix",
 * imatrix.datasets (array of strings: the text files), imatrix.chunk_count (u32: max count /
 * chunk_size), imatrix.chunk_size (u32: tokens per chunk); per weight NAME, sorted by name,
 *   NAME.in_sum2  F32 [n_in]  (n_dims 1; [n_in, n_mat] for n_mat > 1 experts)
 *   NAME.counts   F32 [1]     ([1, n_mat])
 * The legacy ".dat" format is read too (imatrix_load), not written.
 *
 * All functions report failures through their return value and a one-line message; nothing is
 * printed. Not thread-safe: one collector per context (the engine calls its observer on the
 * thread that called llmpi_eval). */
#ifndef LLMPI_TOOLS_IMATRIX_H
#define LLMPI_TOOLS_IMATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMATRIX_ERR_MAX 320

/* ---- collecting and writing ------------------------------------------------------------------ */
typedef struct imatrix_collector imatrix_collector;

/* chunk_size: tokens per chunk (-c), written as imatrix.chunk_size and used for chunk_count.
 * Returns NULL if out of memory or chunk_size < 1. */
imatrix_collector *imatrix_collector_create(int chunk_size, bool process_output);
void imatrix_collector_free(imatrix_collector *c);

/* Whether rows entering a product with this weight are collected (the name rule above). */
bool imatrix_collector_wants(const imatrix_collector *c, const char *weight_name);

/* Adds n_rows input rows of n_in floats (row-major, n_in apart) for weight_name. Names the collector
 * does not want are ignored (returns true). Returns false, and remembers the error (sticky: later
 * calls do nothing), if n_in changes for a name, the sums become non-finite, or memory runs out. */
bool imatrix_collector_add(imatrix_collector *c, const char *weight_name, const float *x, int n_rows, int64_t n_in);

/* llmpi_matmul_observer-compatible wrapper: user is the collector.
 *   llmpi_set_matmul_observer(ctx, imatrix_collector_observe, collector); */
void imatrix_collector_observe(const char *weight_name, const float *x, int n_tokens, int64_t n_in, void *user);

/* The first error (one line), or NULL if none. */
const char *imatrix_collector_error(const imatrix_collector *c);

/* Records a dataset (text file) name for imatrix.datasets. Returns false if out of memory. */
bool imatrix_collector_add_dataset(imatrix_collector *c, const char *name);

size_t imatrix_collector_n_entries(const imatrix_collector *c);
/* max(count) / chunk_size: the chunks seen so far (llama-imatrix's imatrix.chunk_count). */
int32_t imatrix_collector_chunk_count(const imatrix_collector *c);
/* Looks up one weight's statistics: *sum2 (n_in doubles, owned by the collector), *n_in, *count. */
bool imatrix_collector_get(const imatrix_collector *c, const char *weight_name, const double **sum2, int64_t *n_in,
                           int64_t *count);

/* Writes the imatrix GGUF to path (overwriting it). Fails, without leaving a partial file, on a
 * sticky collector error, an I/O error, or a weight name too long for "NAME.in_sum2" (< 64 bytes). */
bool imatrix_collector_save(const imatrix_collector *c, const char *path, char *err, size_t errlen);

/* ---- reading ---------------------------------------------------------------------------------- */
typedef struct {
    char    *name;        /* weight name, e.g. "blk.0.ffn_down.weight" */
    int64_t  n_per_mat;   /* columns of the weight (its ne[0]) */
    int64_t  n_mat;       /* matrices: 1 for a dense weight, the experts of a 3-D MoE weight */
    float   *sums;        /* n_per_mat * n_mat: GGUF: raw in_sum2; legacy: the stored mean * ncall */
    int64_t *counts;      /* n_mat: GGUF: rows seen per matrix (rounded); legacy: {ncall} */
    float   *importance;  /* n_per_mat * n_mat: what llama-quantize passes to the quantizers:
                           * GGUF: sums / count (1 where the count is 0); legacy: sums / ncall */
} imatrix_entry_data;

typedef struct {
    imatrix_entry_data *entries;  /* sorted by name */
    size_t   n_entries;
    char   **datasets;            /* imatrix.datasets (legacy: the trailing dataset name, if any) */
    size_t   n_datasets;
    int32_t  chunk_count;         /* imatrix.chunk_count, 0 if absent */
    int32_t  chunk_size;          /* imatrix.chunk_size, 0 if absent (always 0 for legacy files) */
    bool     is_legacy;           /* read from the legacy .dat format */
    bool     has_metadata;        /* GGUF with all three imatrix.* keys (llama-quantize requires it) */
} imatrix_data;

/* Reads an imatrix GGUF, or (if the file is not GGUF) the legacy .dat format. Every entry needs a
 * matching F32 in_sum2/counts pair; values must be finite. On failure *out is zeroed (nothing to
 * free) and err holds a one-line message starting with the path. */
bool imatrix_load(const char *path, imatrix_data *out, char *err, size_t errlen);
/* The entry for a weight name, or NULL. */
const imatrix_entry_data *imatrix_data_find(const imatrix_data *d, const char *weight_name);
void imatrix_data_free(imatrix_data *d);

#endif
