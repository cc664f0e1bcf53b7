/* Packed weight layouts (kernels/packed.h): packing at load, the scalar reference kernel and the
 * threaded driver kern_matmul hands packed matrices to. */
#include "packed.h"
#include "blocks.h"

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF   /* the reference's fmaf is the only fused operation */
#endif

enum { Q4_0_GROUP_BLOCK_BYTES = KERN_PACK_ROWS * (int)sizeof(block_q4_0),    /* 288 */
       Q8_0_GROUP_BLOCK_BYTES = KERN_PACK_ROWS * (int)sizeof(block_q8_0) };   /* 544 */

/* The layout a type packs into, its block size in the file and the number of 4-byte code chunks. */
static uint32_t layout_of_type(uint32_t t) {
    return t == LLMPI_TYPE_Q4_0 ? KERN_PACKED_Q4_0_16 : t == LLMPI_TYPE_Q8_0 ? KERN_PACKED_Q8_0_16 : KERN_PACKED_NONE;
}
static size_t file_block_bytes(uint32_t layout) {
    return layout == KERN_PACKED_Q4_0_16 ? sizeof(block_q4_0) : sizeof(block_q8_0);
}
static size_t group_block_bytes(uint32_t layout) { return KERN_PACK_ROWS * file_block_bytes(layout); }

static bool packable(const kern_matrix *w, uint32_t layout) {
    return layout != KERN_PACKED_NONE && layout_of_type(w->type) == layout && w->packed == KERN_PACKED_NONE &&
           w->ne0 > 0 && w->ne0 % 32 == 0 && w->ne1 >= KERN_PACK_ROWS &&
           (w->act_type == 0 || w->act_type == LLMPI_TYPE_Q8_0) &&
           w->row_bytes == (size_t)(w->ne0 / 32) * file_block_bytes(layout);
}

kern_packed_q4_0_fn kern_packed_kernel(uint32_t layout, const char **impl) {
#if defined(__x86_64__)
    if (strcmp(kern_get_impl(), "avx512") == 0) {
        if (impl) *impl = "avx512";
        return layout == KERN_PACKED_Q8_0_16 ? kern_packed_q8_0_avx512 : kern_packed_q4_0_avx512;
    }
#endif
    if (impl) *impl = "scalar";   /* no SIMD packed kernel in this family: the reference */
    return layout == KERN_PACKED_Q8_0_16 ? kern_packed_q8_0_ref : kern_packed_q4_0_ref;
}

kern_packed_q4_0_fn kern_packed_q4_0_kernel(const char **impl) { return kern_packed_kernel(KERN_PACKED_Q4_0_16, impl); }

uint32_t kern_pack_layout(const kern_matrix *w) {
    const uint32_t layout = layout_of_type(w->type);
    if (!packable(w, layout)) return KERN_PACKED_NONE;
    const char *impl = NULL;
    kern_packed_kernel(layout, &impl);
    /* Only where a SIMD packed kernel exists; elsewhere the file layout's kernels are faster. */
    return strcmp(impl, "scalar") != 0 ? layout : KERN_PACKED_NONE;
}

size_t kern_packed_bytes(const kern_matrix *w, uint32_t layout) {
    if (!packable(w, layout)) return 0;
    return w->row_bytes * (size_t)w->ne1;   /* size-preserving: 16 blocks of the file -> one group block */
}

int kern_pack_matrix(kern_matrix *w, uint32_t layout, void *dst) {
    if (!dst || kern_packed_bytes(w, layout) == 0) return -1;
    const int64_t nb = w->ne0 / 32, n_groups = w->ne1 / KERN_PACK_ROWS;
    const size_t fbb = file_block_bytes(layout), gbb = group_block_bytes(layout);
    const int n_chunks = (int)(fbb - 2) / 4;   /* 4 (Q4_0: 16 code bytes) or 8 (Q8_0: 32) */
    const uint8_t *src = w->data;
    uint8_t *out = dst;
    for (int64_t g = 0; g < n_groups; g++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *o = out + ((size_t)g * (size_t)nb + (size_t)b) * gbb;
            for (int r = 0; r < KERN_PACK_ROWS; r++) {
                /* both block types: f16 d at byte 0, codes from byte 2 */
                const uint8_t *blk = src + (size_t)(g * KERN_PACK_ROWS + r) * w->row_bytes + (size_t)b * fbb;
                memcpy(o + 2 * r, blk, 2);
                for (int q = 0; q < n_chunks; q++) memcpy(o + 32 + 64 * q + 4 * r, blk + 2 + 4 * q, 4);
            }
        }
    /* rows past the last full group: file layout, at the same offsets as in the file */
    const size_t done = (size_t)n_groups * KERN_PACK_ROWS * w->row_bytes;
    memcpy(out + done, src + done, w->row_bytes * (size_t)w->ne1 - done);
    w->data = dst;
    w->packed = layout;
    return 0;
}

void kern_packed_q4_0_ref(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,
                          const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy) {
    for (int t = 0; t < n_tok; t++) {
        float acc[KERN_PACK_ROWS] = { 0 };
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = grp + (size_t)b * Q4_0_GROUP_BLOCK_BYTES;
            const int8_t *a = (const int8_t *)(act_rows[t] + (size_t)b * act_block_bytes + offsetof(block_q8_0, qs));
            const float dab = da[(size_t)t * (size_t)nb + (size_t)b];
            for (int r = 0; r < KERN_PACK_ROWS; r++) {
                int32_t isum = -sa8[(size_t)t * (size_t)nb + (size_t)b];   /* sum (c - 8) a = sum c a - 8 sum a */
                for (int q = 0; q < 4; q++)
                    for (int i = 0; i < 4; i++) {
                        const uint8_t byte = blk[32 + 64 * q + 4 * r + i];
                        isum += (byte & 0x0F) * a[4 * q + i] + (byte >> 4) * a[16 + 4 * q + i];
                    }
                uint16_t dh;
                memcpy(&dh, blk + 2 * r, 2);
                const float scale = quant_f16_to_f32(dh) * dab;
                acc[r] = fmaf((float)isum, scale, acc[r]);
            }
        }
        for (int r = 0; r < KERN_PACK_ROWS; r++) y[(size_t)t * (size_t)ldy + (size_t)r] = acc[r] * tensor_scale;
    }
}

void kern_packed_q8_0_ref(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,
                          const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy) {
    (void)sa8;
    for (int t = 0; t < n_tok; t++) {
        float acc[KERN_PACK_ROWS] = { 0 };
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = grp + (size_t)b * Q8_0_GROUP_BLOCK_BYTES;
            const uint8_t *au = act_rows[t] + (size_t)b * act_block_bytes;   /* codes + 128 */
            const float dab = da[(size_t)t * (size_t)nb + (size_t)b];
            for (int r = 0; r < KERN_PACK_ROWS; r++) {
                int32_t isum = 0;
                for (int q = 0; q < 8; q++)
                    for (int i = 0; i < 4; i++)
                        isum += ((int)au[4 * q + i] - 128) * (int8_t)blk[32 + 64 * q + 4 * r + i];
                uint16_t dh;
                memcpy(&dh, blk + 2 * r, 2);
                acc[r] = fmaf((float)isum, quant_f16_to_f32(dh) * dab, acc[r]);
            }
        }
        for (int r = 0; r < KERN_PACK_ROWS; r++) y[(size_t)t * (size_t)ldy + (size_t)r] = acc[r] * tensor_scale;
    }
}

/* ---- driver ------------------------------------------------------------------------------------- */

/* Per token and block: da (f32), then Q4_0: sa8 (int32) / Q8_0: the 32 codes + 128 (bytes). */
static size_t per_block_extra(uint32_t layout) { return layout == KERN_PACKED_Q8_0_16 ? 32 : sizeof(int32_t); }

size_t kern_packed_scratch_bytes(const kern_matrix *w, int n_tokens) {
    if (w->packed == KERN_PACKED_NONE) return 0;
    return (size_t)n_tokens * (size_t)(w->ne0 / 32) * (sizeof(float) + per_block_extra(w->packed)) + 64;
}

typedef struct {
    const kern_matrix *w;
    const uint8_t *xq;
    size_t act_bytes;
    int n_tokens;
    float *y;
    int64_t ldy;
    const float *da;
    const int32_t *sa8;    /* Q4_0 */
    const uint8_t *au;     /* Q8_0: codes + 128, n_tokens rows of nb * 32 bytes */
    kern_packed_q4_0_fn kernel;
    llmpi_pool *pool;
} packed_job;

/* Per token and block: the activation scale as f32 and 8 * the sum of its codes. */
static void prep_task(void *argp, int ith, int nth) {
    packed_job *j = argp;
    const int64_t nb = j->w->ne0 / 32;
    float *da = (float *)j->da;
    int32_t *sa8 = (int32_t *)j->sa8;
    for (int t = ith; t < j->n_tokens; t += nth)
        for (int64_t b = 0; b < nb; b++) {
            const block_q8_0 *blk = (const block_q8_0 *)(j->xq + (size_t)t * j->act_bytes) + b;
            da[(size_t)t * (size_t)nb + (size_t)b] = quant_f16_to_f32(blk->d);
            if (j->au) {
                uint8_t *au = (uint8_t *)j->au + ((size_t)t * (size_t)nb + (size_t)b) * 32;
                for (int i = 0; i < 32; i++) au[i] = (uint8_t)(blk->qs[i] + 128);
            } else {
                int32_t s = 0;
                for (int i = 0; i < 32; i++) s += blk->qs[i];
                sa8[(size_t)t * (size_t)nb + (size_t)b] = 8 * s;
            }
        }
}

/* Row groups handed out in contiguous chunks (as matmul.c does for rows); each group is used for all
 * tokens, KERN_PACK_TILE at a time, while its packed blocks are hot in L1/L2. */
static void packed_task(void *argp, int ith, int nth) {
    packed_job *j = argp;
    const kern_matrix *w = j->w;
    const int64_t nb = w->ne0 / 32, n_groups = w->ne1 / KERN_PACK_ROWS;
    int64_t per_chunk = n_groups / ((int64_t)nth * 8);
    if (per_chunk < 1) per_chunk = 1;
    const int64_t n_chunks = (n_groups + per_chunk - 1) / per_chunk;
    (void)ith;
    for (int64_t c = pool_chunk_next(j->pool); c < n_chunks; c = pool_chunk_next(j->pool)) {
        const int64_t g1 = (c + 1) * per_chunk < n_groups ? (c + 1) * per_chunk : n_groups;
        for (int64_t g = c * per_chunk; g < g1; g++) {
            const uint8_t *grp = (const uint8_t *)w->data + (size_t)g * (size_t)nb * group_block_bytes(w->packed);
            for (int t0 = 0; t0 < j->n_tokens; t0 += KERN_PACK_TILE) {
                const int n_tok = j->n_tokens - t0 < KERN_PACK_TILE ? j->n_tokens - t0 : KERN_PACK_TILE;
                const uint8_t *rows[KERN_PACK_TILE];
                for (int t = 0; t < n_tok; t++)
                    rows[t] = j->au ? j->au + (size_t)(t0 + t) * (size_t)nb * 32 : j->xq + (size_t)(t0 + t) * j->act_bytes;
                j->kernel(grp, nb, rows, j->au ? 32 : sizeof(block_q8_0), j->da + (size_t)t0 * (size_t)nb,
                          j->sa8 ? j->sa8 + (size_t)t0 * (size_t)nb : NULL, n_tok, w->tensor_scale,
                          j->y + (size_t)t0 * (size_t)j->ldy + (size_t)g * KERN_PACK_ROWS, j->ldy);
            }
        }
    }
}

void kern_packed_matmul(llmpi_pool *pool, const kern_matrix *w, const uint8_t *xq, size_t act_bytes, int n_tokens,
                        float *y, int64_t ldy, void *extra) {
    const int64_t nb = w->ne0 / 32;
    float *da = extra;
    void *rest = da + (size_t)n_tokens * (size_t)nb;
    const bool q8 = w->packed == KERN_PACKED_Q8_0_16;
    packed_job j = { w, xq, act_bytes, n_tokens, y, ldy, da, q8 ? NULL : rest, q8 ? rest : NULL,
                     kern_packed_kernel(w->packed, NULL), pool };
    if (n_tokens == 1) prep_task(&j, 0, 1);
    else pool_run(pool, prep_task, &j);
    pool_run(pool, packed_task, &j);
}
