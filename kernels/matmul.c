#include "kernels.h"
#include "ternary.h"   /* [h4] ternary LUT family hook */
#include "packed.h"

#include <string.h>

/* The type activations are converted to: the weight's vec_dot_type unless the matrix selects the
 * other ternary scheme (kern_matrix.act_type). */
static uint32_t act_type(const kern_matrix *w) {
    return w->act_type ? w->act_type : (uint32_t)quant_traits(w->type)->vec_dot_type;
}

static size_t act_row_bytes(const kern_matrix *w) {
    return quant_row_size(act_type(w), w->ne0);
}

/* Scratch: converted activations, then (packed matrices) the packed kernel's per-block sums at the
 * next 64-byte boundary. */
static size_t packed_extra_offset(const kern_matrix *w, int n_tokens) {
    return (act_row_bytes(w) * (size_t)n_tokens + 63) / 64 * 64;
}

size_t kern_matmul_scratch_bytes(const kern_matrix *w, int n_tokens) {
    const size_t own = packed_extra_offset(w, n_tokens) + kern_packed_scratch_bytes(w, n_tokens) + 64;
    /* [h4] the ternary LUT path (kern_ternary_matmul below) needs activation tables */
    const size_t lut = kern_ternary_scratch_bytes(w, n_tokens);
    return lut > own ? lut : own;
}

typedef struct {
    const kern_matrix *w;
    const float *x;
    int n_tokens;
    float *y;
    int64_t ldy;
    uint8_t *xq;          /* converted activations, n_tokens rows of act_bytes */
    size_t act_bytes;
    llmpi_pool *pool;
    int64_t row0;         /* first row to compute (rows below it were done by the packed kernel) */
} matmul_job;

/* Activation conversion: one row per token, split across threads by row. */
static void convert_task(void *argp, int ith, int nth) {
    matmul_job *j = argp;
    /* SIMD quantizer where one exists (byte-identical to the type table's from_float) */
    const quant_from_float_fn from_float = kern_act_quant(act_type(j->w));
    for (int t = ith; t < j->n_tokens; t += nth)
        from_float(j->x + (size_t)t * j->w->ne0, j->xq + (size_t)t * j->act_bytes, j->w->ne0);
}

/* Weight rows are handed out in chunks by an atomic counter. Chunks are large and contiguous
 * (about rows / (8 * threads), at least MIN_ROWS_PER_CHUNK): each thread then streams long runs of
 * the matrix, which the hardware prefetchers follow; small interleaved chunks made two threads slower
 * than one on a 1B model (measured: 18 vs 21 t/s). Each weight row is used against all tokens while it
 * is hot in L1, so a micro-batch of T tokens streams the matrix once instead of T times; with a
 * 4-column kernel (kern_vec_dot_4) each weight block is also decoded once per 4 tokens. */
#define MIN_ROWS_PER_CHUNK 16
static void matmul_task(void *argp, int ith, int nth) {
    matmul_job *j = argp;
    const kern_matrix *w = j->w;
    quant_vec_dot_fn dot = kern_vec_dot_for(w->type, w->act_type);
    /* Same family as `dot` and bit-identical to it, so results do not depend on n_tokens.
     * (4-column kernels exist only for the type table's own activation type.) */
    const bool own_act = act_type(w) == (uint32_t)quant_traits(w->type)->vec_dot_type;
    kern_vec_dot4_fn dot4 = j->n_tokens >= 4 && own_act ? kern_vec_dot_4(w->type) : NULL;
    int64_t rows_per_chunk = w->ne1 / ((int64_t)nth * 8);
    if (rows_per_chunk < MIN_ROWS_PER_CHUNK) rows_per_chunk = MIN_ROWS_PER_CHUNK;
    const int64_t n_rows = w->ne1 - j->row0;
    const int64_t n_chunks = (n_rows + rows_per_chunk - 1) / rows_per_chunk;
    (void)ith;
    for (int64_t c = pool_chunk_next(j->pool); c < n_chunks; c = pool_chunk_next(j->pool)) {
        const int64_t r0 = j->row0 + c * rows_per_chunk;
        const int64_t r1 = r0 + rows_per_chunk < w->ne1 ? r0 + rows_per_chunk : w->ne1;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
            int t = 0;
            if (dot4) {   /* groups of 4 tokens: the weight row is decoded once per group */
                for (; t + 4 <= j->n_tokens; t += 4) {
                    float s4[4];
                    dot4(w->ne0, s4, wr, j->xq + (size_t)t * j->act_bytes, j->act_bytes);
                    for (int k = 0; k < 4; k++) j->y[(size_t)(t + k) * j->ldy + r] = s4[k] * w->tensor_scale;
                }
            }
            for (; t < j->n_tokens; t++) {
                float s;
                dot(w->ne0, &s, wr, j->xq + (size_t)t * j->act_bytes);
                j->y[(size_t)t * j->ldy + r] = s * w->tensor_scale;
            }
        }
    }
}

void kern_matmul(llmpi_pool *pool, const kern_matrix *w, const float *x, int n_tokens,
                 float *y, int64_t ldy, void *scratch) {
    /* [h2, issue #5] Float weights (F32/F16/BF16) on prompt batches: register-tiled GEMM
     * (kernels/gemm_float.c). Single tokens stay on the dot kernels below. */
    if (n_tokens >= 2 && kern_gemm_float_available(w)) {
        kern_gemm_float(pool, w, x, n_tokens, y, ldy, scratch);
        return;
    }
    /* [h4, issue #6] TQ1_0 / TQ2_0 / I2_S through the LUT family when kern_set_ternary_mode (or its
     * "auto" table) picks it for this matrix (kernels/ternary.c); otherwise the MAD kernels below. */
    if (kern_ternary_matmul(pool, w, x, n_tokens, y, ldy, scratch)) return;
    matmul_job j = { w, x, n_tokens, y, ldy, scratch, act_row_bytes(w), pool, 0 };
    if (act_type(w) == LLMPI_TYPE_F32) {
        /* F32 weights: the activation is used as is. */
        memcpy(scratch, x, (size_t)n_tokens * j.act_bytes);
    } else if (n_tokens == 1) {
        convert_task(&j, 0, 1);
    } else {
        pool_run(pool, convert_task, &j);
    }
    if (w->packed) {
        /* Row groups interleaved at load (kernels/packed.h); the ne1 % 16 rows after them are in the file
         * layout and go through the dot kernels below. */
        kern_packed_matmul(pool, w, j.xq, j.act_bytes, n_tokens, y, ldy,
                           (uint8_t *)scratch + packed_extra_offset(w, n_tokens));
        j.row0 = w->ne1 / KERN_PACK_ROWS * KERN_PACK_ROWS;
        if (j.row0 == w->ne1) return;
    }
    pool_run(pool, matmul_task, &j);
}
