/* Register-tiled GEMM for float weights (F32, F16, BF16) on prompt batches (issue #5).
 *
 * kern_matmul's general path computes one vec_dot per (row, token). For float weights that leaves
 * the FMA units waiting on loads: every weight vector is used once per token pass and every
 * activation vector once per row. Here the output is cut into register tiles of GEMM_RM_MAX (4)
 * weight rows x rn tokens (avx512 6, avx2 3, neon 6) with one SIMD accumulator per output carried
 * over the whole row (llama.cpp's tinyBLAS scheme); each loaded weight vector feeds rn FMAs and each
 * activation vector 4. The per-ISA tiles and their exact float order are in kernels/gemm_float_*.c
 * (interface: kernels/gemm_float.h); on x86 the order equals tinyBLAS's, so F16/F32/BF16 prompt
 * logits can match llama.cpp's AVX-512 / AVX2 builds bit for bit.
 *
 * Activations are converted once to the weight type's vec_dot_type (F16 for F16, BF16 for BF16,
 * F32 used as is), with the same converter kern_matmul uses (kern_act_quant).
 *
 * Threads: the rows are cut into chunks of whole row tiles, handed out by the pool's atomic chunk
 * counter; a chunk computes its rows for every token. Each output is computed by exactly one tile
 * whose float order does not depend on the tile's position or width, so results are identical for
 * any thread count and any n_tokens. */
#include "kernels.h"
#include "gemm_float.h"

#include <string.h>

/* The tile set for the active kernel family, or NULL (scalar family, or not built here). The family
 * name comes from kernels/dispatch.c, which only selects families this CPU can run. */
static const gemm_float_isa *active_isa(void) {
#if defined(LLMPI_NO_GEMM_FLOAT)   /* A/B builds (CFLAGS_EXTRA=-DLLMPI_NO_GEMM_FLOAT): dot kernels only */
    return NULL;
#endif
    const char *fam = kern_get_impl();
#if defined(__x86_64__)
    if (strcmp(fam, "avx512") == 0) return &kern_gemm_float_avx512;
    if (strcmp(fam, "avx2") == 0) return &kern_gemm_float_avx2;
#elif defined(__aarch64__)
    if (strcmp(fam, "neon") == 0 || strcmp(fam, "neon-dotprod") == 0) return &kern_gemm_float_neon;
#endif
    (void)fam;
    return NULL;   /* "scalar" (or an ISA without tiles): kern_matmul's vec_dot path serves it */
}

static int type_index(uint32_t t) {
    switch (t) {
    case LLMPI_TYPE_F32: return GEMM_F32;
    case LLMPI_TYPE_F16: return GEMM_F16;
    case LLMPI_TYPE_BF16: return GEMM_BF16;
    default: return -1;
    }
}

bool kern_gemm_float_available(const kern_matrix *w) {
    if (type_index(w->type) < 0) return false;
    if (w->act_type && w->act_type != (uint32_t)quant_traits(w->type)->vec_dot_type) return false;
    return active_isa() != NULL;
}

const char *kern_gemm_float_impl(void) {
    const gemm_float_isa *isa = active_isa();
    return isa ? isa->name : NULL;
}

int kern_gemm_float_lanes(void) {
    const gemm_float_isa *isa = active_isa();
    return isa ? isa->lanes : 0;
}

void kern_gemm_float_ref(const kern_matrix *w, const void *xq, size_t xq_stride, int n_tokens,
                         float *y, int64_t ldy) {
    const quant_vec_dot_fn dot = quant_traits(w->type)->vec_dot;
    for (int t = 0; t < n_tokens; t++)
        for (int64_t r = 0; r < w->ne1; r++) {
            float s;
            dot(w->ne0, &s, (const uint8_t *)w->data + (size_t)r * w->row_bytes,
                (const uint8_t *)xq + (size_t)t * xq_stride);
            y[(size_t)t * ldy + r] = s * w->tensor_scale;
        }
}

typedef struct {
    const gemm_float_isa *isa;
    const gemm_tile_fn *tiles;   /* isa->tile[type] */
    const kern_matrix *w;
    const float *x;              /* F32 input rows, ne0 floats apart */
    const uint8_t *xq;           /* activations in vec_dot_type, xs bytes apart */
    size_t xs;
    int n_tokens;
    float *y;
    int64_t ldy;
    int64_t rows_per_chunk;      /* a multiple of GEMM_RM_MAX */
    llmpi_pool *pool;
} gemm_job;

static void convert_task(void *argp, int ith, int nth) {
    gemm_job *j = argp;
    const quant_from_float_fn from_float = kern_act_quant(quant_traits(j->w->type)->vec_dot_type);
    for (int t = ith; t < j->n_tokens; t += nth)
        from_float(j->x + (size_t)t * j->w->ne0, (uint8_t *)j->xq + (size_t)t * j->xs, j->w->ne0);
}

static void gemm_task(void *argp, int ith, int nth) {
    gemm_job *j = argp;
    const kern_matrix *w = j->w;
    const int rn = j->isa->rn, n = j->n_tokens;
    /* Token tiles of nearly equal width (n = 128, rn = 6: 18 tiles of 6 and 4 of 5) so no tile is
     * mostly empty: n_tt tiles, the first `extra` of them one token wider than `base`. */
    const int n_tt = (n + rn - 1) / rn, base = n / n_tt, extra = n % n_tt;
    const int64_t n_chunks = (w->ne1 + j->rows_per_chunk - 1) / j->rows_per_chunk;
    (void)ith; (void)nth;
    for (int64_t c = pool_chunk_next(j->pool); c < n_chunks; c = pool_chunk_next(j->pool)) {
        const int64_t r0 = c * j->rows_per_chunk;
        const int64_t r1 = r0 + j->rows_per_chunk < w->ne1 ? r0 + j->rows_per_chunk : w->ne1;
        for (int64_t r = r0; r < r1; r += GEMM_RM_MAX) {
            const int mr = r1 - r < GEMM_RM_MAX ? (int)(r1 - r) : GEMM_RM_MAX;
            const uint8_t *wp[GEMM_RM_MAX];
            for (int i = 0; i < GEMM_RM_MAX; i++)   /* rows past mr repeat the last row (not stored) */
                wp[i] = (const uint8_t *)w->data + (size_t)(r + (i < mr ? i : mr - 1)) * w->row_bytes;
            int t0 = 0;
            for (int tt = 0; tt < n_tt; tt++) {
                const int nr = base + (tt < extra);
                const uint8_t *xp[GEMM_RN_MAX];
                for (int q = 0; q < nr; q++) xp[q] = j->xq + (size_t)(t0 + q) * j->xs;
                j->tiles[nr](w->ne0, wp, mr, xp, j->y + (size_t)t0 * j->ldy + r, j->ldy);
                t0 += nr;
            }
            if (w->tensor_scale != 1.0f)   /* 1 for every float type today; kept for kern_matmul's contract */
                for (int t = 0; t < n; t++)
                    for (int i = 0; i < mr; i++) j->y[(size_t)t * j->ldy + r + i] *= w->tensor_scale;
        }
    }
}

/* Rows per chunk: about rows / (8 * threads) like kern_matmul (long contiguous runs of the matrix
 * per thread, several chunks per thread for balance), at least 4 tiles, rounded to whole tiles. */
#define MIN_ROWS_PER_CHUNK (4 * GEMM_RM_MAX)

void kern_gemm_float(llmpi_pool *pool, const kern_matrix *w, const float *x, int n_tokens,
                     float *y, int64_t ldy, void *scratch) {
    if (!kern_gemm_float_available(w)) {   /* not served here: the general path (kern_matmul checks first) */
        kern_matmul(pool, w, x, n_tokens, y, ldy, scratch);
        return;
    }
    const gemm_float_isa *isa = active_isa();
    const int ti = type_index(w->type);
    const int nth = pool_n_threads(pool);
    int64_t rpc = w->ne1 / ((int64_t)nth * 8);
    if (rpc < MIN_ROWS_PER_CHUNK) rpc = MIN_ROWS_PER_CHUNK;
    rpc = (rpc + GEMM_RM_MAX - 1) / GEMM_RM_MAX * GEMM_RM_MAX;
    const llmpi_type vdt = quant_traits(w->type)->vec_dot_type;
    gemm_job j = { isa, isa->tile[ti], w, x, NULL, quant_row_size(vdt, w->ne0), n_tokens, y, ldy, rpc, pool };
    if (vdt == LLMPI_TYPE_F32) {
        j.xq = (const uint8_t *)x;   /* F32 weights: the activations are used in place */
    } else {
        j.xq = scratch;
        if (n_tokens == 1) convert_task(&j, 0, 1);
        else pool_run(pool, convert_task, &j);
    }
    pool_run(pool, gemm_task, &j);
}
