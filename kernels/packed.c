/* Packed weight layouts (kernels/packed.h): packing at load, the scalar reference kernel and the
 * threaded driver kern_matmul hands packed matrices to. */
#include "packed.h"
#include "blocks.h"
#include "ref.h"   /* q4k_get_scale_min */

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF   /* the reference's fmaf is the only fused operation */
#endif

enum { Q4_0_GROUP_BLOCK_BYTES = KERN_PACK_ROWS * (int)sizeof(block_q4_0),    /* 288 */
       Q8_0_GROUP_BLOCK_BYTES = KERN_PACK_ROWS * (int)sizeof(block_q8_0),    /* 544 */
       Q4_K_GROUP_BLOCK_BYTES = KERN_PACK_ROWS * (int)sizeof(block_q4_K),    /* 2304 */
       Q2_K_GROUP_BLOCK_BYTES = KERN_PACK_ROWS * (int)sizeof(block_q2_K) };  /* 1344 */

/* One row per packed layout: the weight type it packs, the activation type its kernel takes, the
 * weights per block and the file block size (a group block is KERN_PACK_ROWS file blocks). */
typedef struct {
    uint32_t type, act_type;
    int block_elems;
    size_t file_block_bytes;
} packed_layout_info;

static const packed_layout_info layout_infos[] = {
    [KERN_PACKED_Q4_0_16] = { LLMPI_TYPE_Q4_0, LLMPI_TYPE_Q8_0, 32, sizeof(block_q4_0) },
    [KERN_PACKED_Q8_0_16] = { LLMPI_TYPE_Q8_0, LLMPI_TYPE_Q8_0, 32, sizeof(block_q8_0) },
    [KERN_PACKED_Q4_K_16] = { LLMPI_TYPE_Q4_K, LLMPI_TYPE_Q8_K, 256, sizeof(block_q4_K) },
    [KERN_PACKED_Q2_K_16] = { LLMPI_TYPE_Q2_K, LLMPI_TYPE_Q8_K, 256, sizeof(block_q2_K) },
};
#define N_LAYOUTS ((uint32_t)(sizeof layout_infos / sizeof layout_infos[0]))

static uint32_t layout_of_type(uint32_t t) {
    for (uint32_t l = 1; l < N_LAYOUTS; l++)
        if (layout_infos[l].type == t) return l;
    return KERN_PACKED_NONE;
}
static size_t file_block_bytes(uint32_t layout) { return layout_infos[layout].file_block_bytes; }
static size_t group_block_bytes(uint32_t layout) { return KERN_PACK_ROWS * file_block_bytes(layout); }
static int64_t blocks_per_row(const kern_matrix *w) { return w->ne0 / layout_infos[w->packed].block_elems; }

static bool packable(const kern_matrix *w, uint32_t layout) {
    if (layout == KERN_PACKED_NONE || layout >= N_LAYOUTS) return false;
    const packed_layout_info *li = &layout_infos[layout];
    return li->type == w->type && w->packed == KERN_PACKED_NONE && w->ne0 > 0 && w->ne0 % li->block_elems == 0 &&
           w->ne1 >= KERN_PACK_ROWS && (w->act_type == 0 || w->act_type == li->act_type) &&
           w->row_bytes == (size_t)(w->ne0 / li->block_elems) * li->file_block_bytes;
}

kern_packed_fn kern_packed_kernel(uint32_t layout, const char **impl) {
    static const kern_packed_fn refs[] = { [KERN_PACKED_Q4_0_16] = kern_packed_q4_0_ref,
                                                [KERN_PACKED_Q8_0_16] = kern_packed_q8_0_ref,
                                                [KERN_PACKED_Q4_K_16] = kern_packed_q4_K_ref,
                                                [KERN_PACKED_Q2_K_16] = kern_packed_q2_K_ref };
    if (layout == KERN_PACKED_NONE || layout >= N_LAYOUTS) return NULL;
#if defined(__x86_64__)
    static const kern_packed_fn avx512[] = { [KERN_PACKED_Q4_0_16] = kern_packed_q4_0_avx512,
                                                  [KERN_PACKED_Q8_0_16] = kern_packed_q8_0_avx512,
                                                  [KERN_PACKED_Q4_K_16] = kern_packed_q4_K_avx512,
                                                  [KERN_PACKED_Q2_K_16] = kern_packed_q2_K_avx512 };
    if (strcmp(kern_get_impl(), "avx512") == 0) {
        if (impl) *impl = "avx512";
        return avx512[layout];
    }
#elif defined(__aarch64__)
    const char *fam = kern_get_impl();
#if defined(__ARM_FEATURE_DOTPROD)
    static const kern_packed_fn dotprod[] = { [KERN_PACKED_Q4_0_16] = kern_packed_q4_0_neon_dotprod,
                                              [KERN_PACKED_Q8_0_16] = kern_packed_q8_0_neon_dotprod,
                                              [KERN_PACKED_Q4_K_16] = kern_packed_q4_K_neon_dotprod,
                                              [KERN_PACKED_Q2_K_16] = kern_packed_q2_K_neon_dotprod };
    if (strcmp(fam, "neon-dotprod") == 0) {
        if (impl) *impl = "neon-dotprod";
        return dotprod[layout];
    }
#endif
    /* "neon", and "neon-dotprod" in a build without SDOT (the family is then never usable) */
    static const kern_packed_fn neon[] = { [KERN_PACKED_Q4_0_16] = kern_packed_q4_0_neon,
                                           [KERN_PACKED_Q8_0_16] = kern_packed_q8_0_neon,
                                           [KERN_PACKED_Q4_K_16] = kern_packed_q4_K_neon,
                                           [KERN_PACKED_Q2_K_16] = kern_packed_q2_K_neon };
    if (strcmp(fam, "neon") == 0 || strcmp(fam, "neon-dotprod") == 0) {
        if (impl) *impl = "neon";
        return neon[layout];
    }
#endif
    if (impl) *impl = "scalar";   /* no SIMD packed kernel in this family: the reference */
    return refs[layout];
}

kern_packed_fn kern_packed_q4_0_kernel(const char **impl) { return kern_packed_kernel(KERN_PACKED_Q4_0_16, impl); }

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

/* One group block of Q4_0 / Q8_0: f16 d of the 16 rows, then the codes in 4-byte chunks. */
static void pack_q_0_block(uint32_t layout, const uint8_t *const *blk, uint8_t *o) {
    const int n_chunks = (int)(file_block_bytes(layout) - 2) / 4;   /* 4 (Q4_0: 16 code bytes) or 8 (Q8_0: 32) */
    for (int r = 0; r < KERN_PACK_ROWS; r++) {
        /* both block types: f16 d at byte 0, codes from byte 2 */
        memcpy(o + 2 * r, blk[r], 2);
        for (int q = 0; q < n_chunks; q++) memcpy(o + 32 + 64 * q + 4 * r, blk[r] + 2 + 4 * q, 4);
    }
}

/* One group block of Q4_K (layout in packed.h): d, dmin, 12 planes of scale bytes, 32 code chunks. */
static void pack_q4_K_block(const uint8_t *const *blk, uint8_t *o) {
    for (int r = 0; r < KERN_PACK_ROWS; r++) {
        const block_q4_K *b = (const block_q4_K *)(const void *)blk[r];
        memcpy(o + 2 * r, &b->d, 2);
        memcpy(o + 32 + 2 * r, &b->dmin, 2);
        for (int k = 0; k < K_SCALE_SIZE; k++) o[64 + 16 * k + r] = b->scales[k];
        for (int c = 0; c < QK_K / 8; c++) memcpy(o + 256 + 64 * c + 4 * r, b->qs + 4 * c, 4);
    }
}

/* One group block of Q2_K (layout in packed.h): d, dmin, 16 planes of scale bytes, 16 code chunks. */
static void pack_q2_K_block(const uint8_t *const *blk, uint8_t *o) {
    for (int r = 0; r < KERN_PACK_ROWS; r++) {
        const block_q2_K *b = (const block_q2_K *)(const void *)blk[r];
        memcpy(o + 2 * r, &b->d, 2);
        memcpy(o + 32 + 2 * r, &b->dmin, 2);
        for (int k = 0; k < QK_K / 16; k++) o[64 + 16 * k + r] = b->scales[k];
        for (int c = 0; c < QK_K / 16; c++) memcpy(o + 320 + 64 * c + 4 * r, b->qs + 4 * c, 4);
    }
}

int kern_pack_matrix(kern_matrix *w, uint32_t layout, void *dst) {
    if (!dst || kern_packed_bytes(w, layout) == 0) return -1;
    const int64_t nb = w->ne0 / layout_infos[layout].block_elems, n_groups = w->ne1 / KERN_PACK_ROWS;
    const size_t fbb = file_block_bytes(layout), gbb = group_block_bytes(layout);
    const uint8_t *src = w->data;
    uint8_t *out = dst;
    for (int64_t g = 0; g < n_groups; g++)
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk[KERN_PACK_ROWS];
            for (int r = 0; r < KERN_PACK_ROWS; r++)
                blk[r] = src + (size_t)(g * KERN_PACK_ROWS + r) * w->row_bytes + (size_t)b * fbb;
            uint8_t *o = out + ((size_t)g * (size_t)nb + (size_t)b) * gbb;
            if (layout == KERN_PACKED_Q4_K_16) pack_q4_K_block(blk, o);
            else if (layout == KERN_PACKED_Q2_K_16) pack_q2_K_block(blk, o);
            else pack_q_0_block(layout, blk, o);
        }
    /* rows past the last full group: file layout, at the same offsets as in the file */
    const size_t done = (size_t)n_groups * KERN_PACK_ROWS * w->row_bytes;
    memcpy(out + done, src + done, w->row_bytes * (size_t)w->ne1 - done);
    w->data = dst;
    w->packed = layout;
    return 0;
}

void kern_packed_q4_0_ref(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,
                          const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy,
                          bool per_part) {
    (void)per_part;   /* one scale per block: no parts */
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
                          const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy,
                          bool per_part) {
    (void)per_part;   /* one scale per block: no parts */
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

/* Shared by the K-quant references (Q4_K, Q2_K): row r's d * da and dmin * da, the flush of the integer
 * sums into the two fmaf chains, and the final (acc - accm) * tensor_scale. */
static void kq_row_scales(const uint8_t *blk, int r, float ad, float *d, float *dmin) {
    uint16_t dh, mh;
    memcpy(&dh, blk + 2 * r, 2);
    memcpy(&mh, blk + 32 + 2 * r, 2);
    *d = quant_f16_to_f32(dh) * ad;
    *dmin = quant_f16_to_f32(mh) * ad;
}
static void kq_flush_row(int32_t *isum, int32_t *imin, float d, float dmin, float *acc, float *accm) {
    *acc = fmaf((float)*isum, d, *acc);
    *accm = fmaf((float)*imin, dmin, *accm);
    *isum = *imin = 0;
}
static void kq_store_rows(const float *acc, const float *accm, float tensor_scale, float *y) {
    for (int r = 0; r < KERN_PACK_ROWS; r++) y[r] = (acc[r] - accm[r]) * tensor_scale;
}

/* Per row, llama.cpp's repacked Q4_K order (ggml gemv/gemm_q4_K_8x8_q8_K): integer sums per part
 * (isum = sum_s sc_s * sum_{i in s} c_i a_i, imin = sum_s m_s * (bsums[2s] + bsums[2s+1]), exact in
 * int32: |isum| <= 8 * 63 * 32 * 15 * 128 < 2^25), then acc += isum * (d * da) and accm += imin *
 * (dmin * da) as two fmaf chains, once per super-block (gemv) or once per 64 weights (per_part: gemm);
 * the row's result is acc - accm. */
void kern_packed_q4_K_ref(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,
                          const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy,
                          bool per_part) {
    (void)da;
    (void)sa8;
    for (int t = 0; t < n_tok; t++) {
        float acc[KERN_PACK_ROWS] = { 0 }, accm[KERN_PACK_ROWS] = { 0 };
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = grp + (size_t)b * Q4_K_GROUP_BLOCK_BYTES;
            block_q8_K a;
            memcpy(&a, act_rows[t] + (size_t)b * act_block_bytes, sizeof a);
            for (int r = 0; r < KERN_PACK_ROWS; r++) {
                uint8_t scales[K_SCALE_SIZE];
                for (int k = 0; k < K_SCALE_SIZE; k++) scales[k] = blk[64 + 16 * k + r];
                float d, dmin;
                kq_row_scales(blk, r, a.d, &d, &dmin);
                int32_t isum = 0, imin = 0;
                for (int s = 0; s < 8; s++) {
                    uint8_t sc, m;
                    q4k_get_scale_min(s, scales, &sc, &m);
                    /* sub-block s = elements 32s..32s+31: nibble (s & 1) of code bytes 32 (s / 2) + i */
                    int32_t sum = 0;
                    for (int i = 0; i < 32; i++) {
                        const int j = 32 * (s / 2) + i;   /* code byte index in the row's qs[128] */
                        const uint8_t byte = blk[256 + 64 * (j / 4) + 4 * r + j % 4];
                        sum += ((s & 1) ? byte >> 4 : byte & 0x0F) * a.qs[32 * s + i];
                    }
                    isum += sc * sum;
                    imin += m * (a.bsums[2 * s] + a.bsums[2 * s + 1]);
                    if ((per_part && (s & 1)) || s == 7) {
                        kq_flush_row(&isum, &imin, d, dmin, &acc[r], &accm[r]);
                    }
                }
            }
        }
        kq_store_rows(acc, accm, tensor_scale, y + (size_t)t * (size_t)ldy);
    }
}

/* Per row, llama.cpp's repacked Q2_K order (ggml gemv/gemm_q2_K_8x8_q8_K; AVX-512 CPUs): the two
 * chains of Q4_K over the 16 sub-blocks of 16 (isum = sum_s sc_s * sum_{i in s} c_i a_i, imin = sum_s
 * m_s * bsums[s], exact: |isum| <= 256 * 45 * 128), once per super-block or per 128 weights (per_part). */
void kern_packed_q2_K_ref(const uint8_t *grp, int64_t nb, const uint8_t *const *act_rows, size_t act_block_bytes,
                          const float *da, const int32_t *sa8, int n_tok, float tensor_scale, float *y, int64_t ldy,
                          bool per_part) {
    (void)da;
    (void)sa8;
    for (int t = 0; t < n_tok; t++) {
        float acc[KERN_PACK_ROWS] = { 0 }, accm[KERN_PACK_ROWS] = { 0 };
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = grp + (size_t)b * Q2_K_GROUP_BLOCK_BYTES;
            block_q8_K a;
            memcpy(&a, act_rows[t] + (size_t)b * act_block_bytes, sizeof a);
            for (int r = 0; r < KERN_PACK_ROWS; r++) {
                float d, dmin;
                kq_row_scales(blk, r, a.d, &d, &dmin);
                int32_t isum = 0, imin = 0;
                for (int e = 0; e < QK_K; e++) {
                    /* element e = 128 h + 32 k + l: bits 2k..2k+1 of code byte 32 h + l */
                    const int j = 32 * (e / 128) + e % 32, k = (e % 128) / 32;
                    const uint8_t byte = blk[320 + 64 * (j / 4) + 4 * r + j % 4];
                    isum += (blk[64 + 16 * (e / 16) + r] & 0x0F) * ((byte >> (2 * k)) & 3) * a.qs[e];
                    if (e % 16 == 15) imin += (blk[64 + 16 * (e / 16) + r] >> 4) * a.bsums[e / 16];
                    if ((per_part && e == 127) || e == QK_K - 1) {
                        kq_flush_row(&isum, &imin, d, dmin, &acc[r], &accm[r]);
                    }
                }
            }
        }
        kq_store_rows(acc, accm, tensor_scale, y + (size_t)t * (size_t)ldy);
    }
}

/* ---- driver ------------------------------------------------------------------------------------- */

/* Per token and block: da (f32), then Q4_0: sa8 (int32) / Q8_0: the 32 codes + 128 (bytes). */
static size_t per_block_extra(uint32_t layout) { return layout == KERN_PACKED_Q8_0_16 ? 32 : sizeof(int32_t); }

/* The K-quant kernels read d and bsums straight from the Q8_K activation blocks: no prepared data. */
static bool needs_prep(uint32_t layout) { return layout != KERN_PACKED_Q4_K_16 && layout != KERN_PACKED_Q2_K_16; }

size_t kern_packed_scratch_bytes(const kern_matrix *w, int n_tokens) {
    if (w->packed == KERN_PACKED_NONE || w->packed >= N_LAYOUTS) return 0;
    if (!needs_prep(w->packed)) return 64;
    return (size_t)n_tokens * (size_t)blocks_per_row(w) * (sizeof(float) + per_block_extra(w->packed)) + 64;
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
    size_t act_block_bytes;   /* stride of one block in the kernel's activation rows */
    kern_packed_fn kernel;
    llmpi_pool *pool;
} packed_job;

/* Per token and block: the activation scale as f32 and 8 * the sum of its codes. */
static void prep_task(void *argp, int ith, int nth) {
    packed_job *j = argp;
    const int64_t nb = blocks_per_row(j->w);
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
    const int64_t nb = blocks_per_row(w), n_groups = w->ne1 / KERN_PACK_ROWS;
    int64_t per_chunk = n_groups / ((int64_t)nth * 8);
    if (per_chunk < 1) per_chunk = 1;
    const int64_t n_chunks = (n_groups + per_chunk - 1) / per_chunk;
    (void)ith;
    for (int64_t c = pool_chunk_next(j->pool); c < n_chunks; c = pool_chunk_next(j->pool)) {
        const int64_t g1 = (c + 1) * per_chunk < n_groups ? (c + 1) * per_chunk : n_groups;
        for (int64_t g = c * per_chunk; g < g1; g++) {
            const uint8_t *grp = (const uint8_t *)w->data + (size_t)g * (size_t)nb * group_block_bytes(w->packed);
            /* llama.cpp's repacked matmul runs the first n - n % 4 tokens through its GEMM and the rest
             * through its GEMV, whose K-quant float orders differ (kern_packed_fn per_part) */
            const int n_gemm = j->n_tokens - j->n_tokens % 4;
            for (int t0 = 0; t0 < j->n_tokens;) {
                const int end = t0 < n_gemm ? n_gemm : j->n_tokens;
                const int n_tok = end - t0 < KERN_PACK_TILE ? end - t0 : KERN_PACK_TILE;
                const uint8_t *rows[KERN_PACK_TILE];
                for (int t = 0; t < n_tok; t++)
                    rows[t] = j->au ? j->au + (size_t)(t0 + t) * (size_t)nb * 32 : j->xq + (size_t)(t0 + t) * j->act_bytes;
                j->kernel(grp, nb, rows, j->act_block_bytes, j->da ? j->da + (size_t)t0 * (size_t)nb : NULL,
                          j->sa8 ? j->sa8 + (size_t)t0 * (size_t)nb : NULL, n_tok, w->tensor_scale,
                          j->y + (size_t)t0 * (size_t)j->ldy + (size_t)g * KERN_PACK_ROWS, j->ldy, t0 < n_gemm);
                t0 += n_tok;
            }
        }
    }
}

void kern_packed_matmul(llmpi_pool *pool, const kern_matrix *w, const uint8_t *xq, size_t act_bytes, int n_tokens,
                        float *y, int64_t ldy, void *extra) {
    if (!needs_prep(w->packed)) {   /* K-quants: the kernel takes the Q8_K rows as they are */
        packed_job j = { w, xq, act_bytes, n_tokens, y, ldy, NULL, NULL, NULL, sizeof(block_q8_K),
                         kern_packed_kernel(w->packed, NULL), pool };
        pool_run(pool, packed_task, &j);
        return;
    }
    const int64_t nb = blocks_per_row(w);
    float *da = extra;
    void *rest = da + (size_t)n_tokens * (size_t)nb;
    const bool q8 = w->packed == KERN_PACKED_Q8_0_16;
    packed_job j = { w, xq, act_bytes, n_tokens, y, ldy, da, q8 ? NULL : rest, q8 ? rest : NULL,
                     q8 ? 32 : sizeof(block_q8_0), kern_packed_kernel(w->packed, NULL), pool };
    if (n_tokens == 1) prep_task(&j, 0, 1);
    else pool_run(pool, prep_task, &j);
    pool_run(pool, packed_task, &j);
}
