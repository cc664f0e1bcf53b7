/* Ternary LUT family (layout and contract in kernels/ternary.h): TL1 packing, activation tables,
 * the scalar tile reference, the LUT matmul driver, and the MAD / LUT mode selector. */
#include "ternary.h"
#include "blocks.h"
#include "cpu_features.h"
#include "ref.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

bool kern_tl1_supported(uint32_t t) {
    return t == LLMPI_TYPE_TQ1_0 || t == LLMPI_TYPE_TQ2_0 || t == LLMPI_TYPE_I2_S;
}

static bool is_tq(uint32_t t) { return t == LLMPI_TYPE_TQ1_0 || t == LLMPI_TYPE_TQ2_0; }

static size_t tile_bytes_for(uint32_t t, int64_t ne0) {
    size_t b = (size_t)(ne0 / KERN_TL1_CHUNK) * KERN_TL1_CHUNK_BYTES;
    if (is_tq(t)) b += (size_t)(ne0 / QK_K) * KERN_TL1_ROWS * sizeof(float);
    return b;
}

static bool shape_ok(const kern_matrix *w) {
    if (!w || !kern_tl1_supported(w->type) || w->ne0 <= 0 || w->ne1 <= 0) return false;
    const int64_t blk = is_tq(w->type) ? QK_K : QK_I2S;
    return w->ne0 % blk == 0 && w->ne0 <= ((int64_t)1 << 22);
}

size_t kern_tl1_packed_bytes(const kern_matrix *w) {
    if (!shape_ok(w)) return 0;
    return (size_t)((w->ne1 + KERN_TL1_ROWS - 1) / KERN_TL1_ROWS) * tile_bytes_for(w->type, w->ne0);
}

/* Codes 0..3 (value c - 1) of one row, in element order, as the scalar references read them. */
static void row_codes(uint32_t t, const uint8_t *row, int64_t ne0, uint8_t *codes) {
    /* byte offsets, not struct pointers: rows may sit at any address */
    if (t == LLMPI_TYPE_TQ2_0) {
        for (int64_t i = 0; i < ne0 / QK_K; i++) {
            const uint8_t *qs = row + (size_t)i * sizeof(block_tq2_0) + offsetof(block_tq2_0, qs);
            for (int e = 0; e < QK_K; e++) {
                const int h = e / 128, k = (e % 128) / 32, p = e % 32;
                codes[i * QK_K + e] = (qs[32 * h + p] >> (2 * k)) & 3;
            }
        }
    } else if (t == LLMPI_TYPE_TQ1_0) {
        static const uint8_t pow3[5] = { 1, 3, 9, 27, 81 };
        for (int64_t i = 0; i < ne0 / QK_K; i++) {
            const uint8_t *qs = row + (size_t)i * sizeof(block_tq1_0) + offsetof(block_tq1_0, qs);
            const uint8_t *qh = row + (size_t)i * sizeof(block_tq1_0) + offsetof(block_tq1_0, qh);
            uint8_t *c = codes + i * QK_K;
#define TRIT(b, n) ((uint8_t)(((unsigned)(uint8_t)((b) * pow3[n]) * 3) >> 8))
            for (int n = 0; n < 5; n++)
                for (int m = 0; m < 32; m++) c[32 * n + m] = TRIT(qs[m], n);
            for (int n = 0; n < 5; n++)
                for (int m = 0; m < 16; m++) c[160 + 16 * n + m] = TRIT(qs[32 + m], n);
            for (int n = 0; n < 4; n++)
                for (int j = 0; j < 4; j++) c[240 + 4 * n + j] = TRIT(qh[j], n);
#undef TRIT
        }
    } else {   /* I2_S: 32-byte groups, no header */
        for (int64_t g = 0; g < ne0 / QK_I2S; g++) {
            const uint8_t *qs = row + (size_t)g * sizeof(block_i2_s);
            for (int c = 0; c < 4; c++)
                for (int p = 0; p < 32; p++) codes[g * QK_I2S + 32 * c + p] = (qs[p] >> (6 - 2 * c)) & 3;
        }
    }
}

/* Position of local pair p (0..7) of an octet: slot (16-byte column) and group (nibble / table half). */
static inline int pair_slot(int p) { return (p & 1) + 2 * (p >> 2); }
static inline int pair_group(int p) { return (p >> 1) & 1; }

int kern_tl1_pack(const kern_matrix *w, kern_tl1_matrix *out) {
    memset(out, 0, sizeof *out);
    const size_t total = kern_tl1_packed_bytes(w);
    if (!total) return -1;
    const size_t tb = tile_bytes_for(w->type, w->ne0);
    uint8_t *data = aligned_alloc(64, (total + 63) / 64 * 64);
    uint8_t *codes = malloc((size_t)w->ne0);
    if (!data || !codes) {
        free(data);
        free(codes);
        return -1;
    }
    memset(data, 0, total);
    const int64_t n_tiles = (w->ne1 + KERN_TL1_ROWS - 1) / KERN_TL1_ROWS;
    const int64_t n_chunks = w->ne0 / KERN_TL1_CHUNK;
    for (int64_t tile = 0; tile < n_tiles; tile++) {
        uint8_t *tp = data + (size_t)tile * tb;
        for (int r = 0; r < KERN_TL1_ROWS; r++) {
            const int64_t row = tile * KERN_TL1_ROWS + r;
            if (row < w->ne1) {
                const uint8_t *src = (const uint8_t *)w->data + (size_t)row * w->row_bytes;
                row_codes(w->type, src, w->ne0, codes);
                if (is_tq(w->type)) {
                    float *d = (float *)(tp + (size_t)n_chunks * KERN_TL1_CHUNK_BYTES);
                    const size_t bsz = w->type == LLMPI_TYPE_TQ1_0 ? sizeof(block_tq1_0) : sizeof(block_tq2_0);
                    const size_t doff = w->type == LLMPI_TYPE_TQ1_0 ? offsetof(block_tq1_0, d) : offsetof(block_tq2_0, d);
                    for (int64_t b = 0; b < w->ne0 / QK_K; b++) {
                        uint16_t h;
                        memcpy(&h, src + (size_t)b * bsz + doff, sizeof h);
                        d[b * KERN_TL1_ROWS + r] = quant_f16_to_f32(h);
                    }
                }
            } else {
                memset(codes, 1, (size_t)w->ne0);   /* pad row: value 0, scale stays 0 */
            }
            for (int64_t j = 0; j < w->ne0 / 2; j++) {
                const int64_t k = j / 64;
                const int q = (int)(j % 64), o = q / 8, p = q % 8;
                const uint8_t idx = (uint8_t)(codes[2 * j] + 4 * codes[2 * j + 1]);
                tp[k * KERN_TL1_CHUNK_BYTES + o * 64 + pair_slot(p) * 16 + r] |= (uint8_t)(idx << (4 * pair_group(p)));
            }
        }
    }
    free(codes);
    out->type = w->type;
    out->ne0 = w->ne0;
    out->ne1 = w->ne1;
    out->n_tiles = n_tiles;
    out->tile_bytes = tb;
    out->tensor_scale = w->tensor_scale;
    out->data = data;
    return 0;
}

void kern_tl1_free(kern_tl1_matrix *m) {
    if (!m) return;
    free(m->data);
    memset(m, 0, sizeof *m);
}

/* int8 activation codes of a converted row: Q8_K blocks (TQ) or the I8_S code array. */
static inline int8_t act_code(uint32_t type, const void *act_row, int64_t e) {
    if (is_tq(type))
        return (int8_t)((const uint8_t *)act_row)[(size_t)(e / QK_K) * sizeof(block_q8_K) + offsetof(block_q8_K, qs) + e % QK_K];
    return ((const int8_t *)act_row)[e];
}

void kern_tl1_build_table(uint32_t type, int64_t ne0, const void *act_row, uint8_t *tables) {
    for (int64_t j = 0; j < ne0 / 2; j++) {
        const int a0 = act_code(type, act_row, 2 * j), a1 = act_code(type, act_row, 2 * j + 1);
        const int64_t k = j / 64;
        const int q = (int)(j % 64), o = q / 8, p = q % 8;
        uint8_t *lo = tables + k * (KERN_TL1_CHUNK * KERN_TL1_TABLE_BYTES_PER_ELEM) + o * 256 +
                      pair_group(p) * 128 + pair_slot(p) * 16;
        for (int c1 = 0; c1 < 4; c1++)
            for (int c0 = 0; c0 < 4; c0++) {
                const int v = (c0 - 1) * a0 + (c1 - 1) * a1;   /* [-512, 508] */
                lo[c0 + 4 * c1] = (uint8_t)(v & 0xFF);
                lo[64 + c0 + 4 * c1] = (uint8_t)((unsigned)v >> 8);
            }
    }
}


void kern_tl1_tile_ref(const kern_tl1_matrix *w, int64_t tile, const void *act_row,
                       const uint8_t *tables, float out[KERN_TL1_ROWS]) {
    const uint8_t *tp = w->data + (size_t)tile * w->tile_bytes;
    const int64_t n_chunks = w->ne0 / KERN_TL1_CHUNK;
    const float *d = (const float *)(tp + (size_t)n_chunks * KERN_TL1_CHUNK_BYTES);
    for (int r = 0; r < KERN_TL1_ROWS; r++) {
        float sumf = 0.0f;
        int64_t total = 0;
        int32_t sumi = 0;
        for (int64_t k = 0; k < n_chunks; k++) {
            for (int q = 0; q < 64; q++) {
                const int o = q / 8, p = q % 8;
                const uint8_t idx = (tp[k * KERN_TL1_CHUNK_BYTES + o * 64 + pair_slot(p) * 16 + r] >> (4 * pair_group(p))) & 15;
                const uint8_t *t = tables + k * (KERN_TL1_CHUNK * KERN_TL1_TABLE_BYTES_PER_ELEM) + o * 256 +
                                   pair_group(p) * 128 + pair_slot(p) * 16;
                sumi += (int16_t)(uint16_t)(t[idx] | (t[64 + idx] << 8));
            }
            if (is_tq(w->type)) {
                if (k & 1) {   /* end of a 256-element block */
                    const int64_t b = k / 2;
                    sumf += (float)sumi * (d[b * KERN_TL1_ROWS + r] * kern_tl1_q8k_d(act_row, b));
                    sumi = 0;
                }
            } else {
                total += sumi;
                sumi = 0;
            }
        }
        if (is_tq(w->type)) {
            out[r] = sumf;
        } else {
            float act_scale;
            memcpy(&act_scale, (const uint8_t *)act_row + I8S_SCALE_OFFSET(w->ne0), sizeof act_scale);
            out[r] = (float)total / act_scale;
        }
    }
}

kern_tl1_tile_fn kern_tl1_tile_kernel_named(const char *family) {
    if (!family || strcmp(family, "scalar") == 0) return kern_tl1_tile_ref;
    const cpu_features *cpu = cpu_features_get();
    (void)cpu;
#if defined(__x86_64__)
    const bool avx2 = cpu->avx2 && cpu->fma && cpu->f16c;
    const bool avx512 = avx2 && cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512vnni;
    if (strcmp(family, "avx2") == 0) return avx2 ? kern_tl1_tile_avx2 : NULL;
    if (strcmp(family, "avx512") == 0) return avx512 ? kern_tl1_tile_avx512 : NULL;
#elif defined(__aarch64__)
    if (strcmp(family, "neon") == 0 || strcmp(family, "neon-dotprod") == 0) return kern_tl1_tile_neon;
#endif
    return NULL;
}

kern_tl1_tile4_fn kern_tl1_tile4_kernel(void) {
    const char *impl = "scalar";
    kern_tl1_tile_kernel(&impl);
#if defined(__x86_64__)
    if (strcmp(impl, "avx512") == 0) return kern_tl1_tile4_avx512;
#endif
    return NULL;
}

kern_tl1_table_fn kern_tl1_table_builder(void) {
    const char *impl = "scalar";
    kern_tl1_tile_kernel(&impl);
#if defined(__x86_64__)
    if (strcmp(impl, "avx2") == 0 || strcmp(impl, "avx512") == 0) return kern_tl1_build_table_avx2;
#elif defined(__aarch64__)
    if (strcmp(impl, "neon") == 0) return kern_tl1_build_table_neon;
#endif
    return kern_tl1_build_table;
}

kern_tl1_tile_fn kern_tl1_tile_kernel(const char **impl) {
    /* Follow the active vec_dot family (kern_set_impl) down its chain. */
    static const char *const chain[] = { "avx512", "avx2", "neon", "scalar" };
    const char *fam = kern_get_impl();
    int start = 3;
    if (strcmp(fam, "avx512") == 0) start = 0;
    else if (strcmp(fam, "avx2") == 0) start = 1;
    else if (strncmp(fam, "neon", 4) == 0) start = 2;
    for (int i = start; i < 4; i++) {
        kern_tl1_tile_fn f = kern_tl1_tile_kernel_named(chain[i]);
        if (f) {
            if (impl) *impl = chain[i];
            return f;
        }
    }
    if (impl) *impl = "scalar";
    return kern_tl1_tile_ref;
}

/* ---- LUT matmul driver ---------------------------------------------------------------------------- */

static size_t act_bytes_of(const kern_tl1_matrix *w) {
    return (quant_row_size(quant_traits(w->type)->vec_dot_type, w->ne0) + 63) / 64 * 64;
}
static size_t table_bytes_of(const kern_tl1_matrix *w) { return (size_t)w->ne0 * KERN_TL1_TABLE_BYTES_PER_ELEM; }

size_t kern_tl1_scratch_bytes(const kern_tl1_matrix *w, int n_tokens) {
    return (act_bytes_of(w) + table_bytes_of(w)) * (size_t)n_tokens + 64;
}

typedef struct {
    const kern_tl1_matrix *w;
    const float *x;
    int n_tokens;
    float *y;
    int64_t ldy;
    uint8_t *base;        /* 64-aligned scratch: per token [act row | tables] */
    size_t stride;
    kern_tl1_tile_fn tile;
    llmpi_pool *pool;
    kern_tl1_table_fn build;
    kern_tl1_tile4_fn tile4;   /* NULL if the family has none */
} tl1_job;

static void tl1_convert_task(void *argp, int ith, int nth) {
    tl1_job *j = argp;
    const uint32_t vdt = quant_traits(j->w->type)->vec_dot_type;
    const quant_from_float_fn from_float = kern_act_quant(vdt);
    const size_t ab = act_bytes_of(j->w);
    for (int t = ith; t < j->n_tokens; t += nth) {
        uint8_t *act = j->base + (size_t)t * j->stride;
        from_float(j->x + (size_t)t * j->w->ne0, act, j->w->ne0);
        j->build(j->w->type, j->w->ne0, act, act + ab);
    }
}

/* Tiles of rows [r0, r0 + 16 * n) for every token (4 at a time where a 4-tile kernel exists). */
static void tl1_run_tiles(const tl1_job *j, int64_t t0, int64_t t1) {
    const kern_tl1_matrix *w = j->w;
    const size_t ab = act_bytes_of(w);
    for (int64_t tile = t0; tile < t1;) {
        const int nt = (j->tile4 && tile + 4 <= t1) ? 4 : 1;
        for (int t = 0; t < j->n_tokens; t++) {
            const uint8_t *act = j->base + (size_t)t * j->stride;
            float out[4 * KERN_TL1_ROWS];
            if (nt == 4) j->tile4(w, tile, act, act + ab, out);
            else j->tile(w, tile, act, act + ab, out);
            const int64_t r0 = tile * KERN_TL1_ROWS;
            const int64_t nr = w->ne1 - r0 < nt * KERN_TL1_ROWS ? w->ne1 - r0 : nt * KERN_TL1_ROWS;
            float *yt = j->y + (size_t)t * j->ldy + r0;
            for (int64_t r = 0; r < nr; r++) yt[r] = out[r] * w->tensor_scale;
        }
        tile += nt;
    }
}

#define TL1_TILES_PER_CHUNK 4
static void tl1_matmul_task(void *argp, int ith, int nth) {
    tl1_job *j = argp;
    const kern_tl1_matrix *w = j->w;
    /* chunks of a multiple of 4 tiles, about n_tiles / (8 threads) (see kernels/matmul.c) */
    int64_t per = w->n_tiles / ((int64_t)nth * 8) / 4 * 4;
    if (per < TL1_TILES_PER_CHUNK) per = TL1_TILES_PER_CHUNK;
    const int64_t n_chunks = (w->n_tiles + per - 1) / per;
    (void)ith;
    for (int64_t c = pool_chunk_next(j->pool); c < n_chunks; c = pool_chunk_next(j->pool))
        tl1_run_tiles(j, c * per, (c + 1) * per < w->n_tiles ? (c + 1) * per : w->n_tiles);
}

void kern_tl1_matmul(llmpi_pool *pool, const kern_tl1_matrix *w, const float *x, int n_tokens,
                     float *y, int64_t ldy, void *scratch) {
    uint8_t *base = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    tl1_job j = { w, x, n_tokens, y, ldy, base, act_bytes_of(w) + table_bytes_of(w),
                  kern_tl1_tile_kernel(NULL), pool, kern_tl1_table_builder(), kern_tl1_tile4_kernel() };
    if (n_tokens == 1 || !pool) tl1_convert_task(&j, 0, 1);
    else pool_run(pool, tl1_convert_task, &j);
    if (!pool) {   /* no pool: every tile on this thread */
        tl1_run_tiles(&j, 0, w->n_tiles);
        return;
    }
    pool_run(pool, tl1_matmul_task, &j);
}

/* ---- MAD row groups: TQ2_0 x Q8_K, 4 rows per pass (layout in kernels/ternary.h) ------------------------ */

void kern_tq2_prepare_act(int64_t n, const void *q8k_row, kern_tq2_act_block *out, float *d) {
    const uint8_t *y = q8k_row;
    for (int64_t b = 0; b < n / QK_K; b++) {
        const uint8_t *yb = y + (size_t)b * sizeof(block_q8_K);
        const uint8_t *qs = yb + offsetof(block_q8_K, qs);
        for (int k = 0; k < 4; k++) {
            memcpy(out[b].qs + 64 * k, qs + 32 * k, 32);
            memcpy(out[b].qs + 64 * k + 32, qs + 128 + 32 * k, 32);
        }
        int16_t bsums[QK_K / 16];
        memcpy(bsums, yb + offsetof(block_q8_K, bsums), sizeof bsums);
        for (int l = 0; l < 16; l++) out[b].neg_bsum[l] = l < 8 ? -(bsums[2 * l] + bsums[2 * l + 1]) : 0;
        memcpy(&d[b], yb + offsetof(block_q8_K, d), sizeof(float));
    }
}

void kern_tq2_rows4_ref(int64_t n, float s[4], const uint8_t *x, size_t row_bytes,
                        const kern_tq2_act_block *a, const float *d) {
    for (int r = 0; r < 4; r++) {
        const uint8_t *row = x + (size_t)r * row_bytes;
        float sumf = 0.0f;
        for (int64_t b = 0; b < n / QK_K; b++) {
            const uint8_t *xb = row + (size_t)b * sizeof(block_tq2_0);
            int32_t sumi = 0;
            for (int l = 0; l < 16; l++) sumi += a[b].neg_bsum[l];
            for (int k = 0; k < 4; k++)   /* prepared register k, byte j: field k of code byte j */
                for (int j = 0; j < 64; j++) sumi += ((xb[offsetof(block_tq2_0, qs) + j] >> (2 * k)) & 3) * a[b].qs[64 * k + j];
            uint16_t dh;
            memcpy(&dh, xb + offsetof(block_tq2_0, d), sizeof dh);
            sumf += (float)sumi * (quant_f16_to_f32(dh) * d[b]);
        }
        s[r] = sumf;
    }
}

kern_tq2_rows4_fn kern_tq2_rows4_kernel(void) {
#if defined(__x86_64__)
    if (strcmp(kern_vec_dot_impl(LLMPI_TYPE_TQ2_0), "avx512") == 0) return kern_tq2_rows4_avx512;
#endif
    return NULL;
}

/* Scratch per token: [Q8_K row | prepared blocks | block d], each 64-byte aligned. */
static size_t tq2_token_bytes(int64_t ne0) {
    const size_t nb = (size_t)(ne0 / QK_K);
    return (quant_row_size(LLMPI_TYPE_Q8_K, ne0) + 63) / 64 * 64 + nb * sizeof(kern_tq2_act_block) +
           (nb * sizeof(float) + 63) / 64 * 64;
}

typedef struct {
    const kern_matrix *w;
    const float *x;
    int n_tokens;
    float *y;
    int64_t ldy;
    uint8_t *base;          /* 64-aligned scratch, tq2_token_bytes per token */
    kern_tq2_rows4_fn rows4;
    quant_vec_dot_fn dot;   /* rows past the last group of 4; bit-identical to rows4 */
    llmpi_pool *pool;
} tq2_job;

static void tq2_token(const tq2_job *j, int t, const uint8_t **q8k, const kern_tq2_act_block **a, const float **d) {
    const int64_t ne0 = j->w->ne0;
    uint8_t *p = j->base + (size_t)t * tq2_token_bytes(ne0);
    *q8k = p;
    p += (quant_row_size(LLMPI_TYPE_Q8_K, ne0) + 63) / 64 * 64;
    *a = (const kern_tq2_act_block *)p;
    *d = (const float *)(p + (size_t)(ne0 / QK_K) * sizeof(kern_tq2_act_block));
}

static void tq2_convert_task(void *argp, int ith, int nth) {
    tq2_job *j = argp;
    const quant_from_float_fn from_float = kern_act_quant(LLMPI_TYPE_Q8_K);
    for (int t = ith; t < j->n_tokens; t += nth) {
        const uint8_t *q8k;
        const kern_tq2_act_block *a;
        const float *d;
        tq2_token(j, t, &q8k, &a, &d);
        from_float(j->x + (size_t)t * j->w->ne0, (void *)q8k, j->w->ne0);
        kern_tq2_prepare_act(j->w->ne0, q8k, (kern_tq2_act_block *)a, (float *)d);
    }
}

/* Contiguous chunks of rows (a multiple of 4, about ne1 / (8 threads), as kernels/matmul.c). */
#define TQ2_MIN_ROWS_PER_CHUNK 16
static void tq2_matmul_task(void *argp, int ith, int nth) {
    tq2_job *j = argp;
    const kern_matrix *w = j->w;
    int64_t per = w->ne1 / ((int64_t)nth * 8) / 4 * 4;
    if (per < TQ2_MIN_ROWS_PER_CHUNK) per = TQ2_MIN_ROWS_PER_CHUNK;
    const int64_t n_chunks = (w->ne1 + per - 1) / per;
    (void)ith;
    /* without a pool (pool_run then calls this once) every chunk runs here */
    for (int64_t c = j->pool ? pool_chunk_next(j->pool) : 0; c < n_chunks; c = j->pool ? pool_chunk_next(j->pool) : c + 1) {
        const int64_t r0 = c * per, r1 = r0 + per < w->ne1 ? r0 + per : w->ne1;
        for (int t = 0; t < j->n_tokens; t++) {
            const uint8_t *q8k;
            const kern_tq2_act_block *a;
            const float *d;
            tq2_token(j, t, &q8k, &a, &d);
            float *yt = j->y + (size_t)t * j->ldy;
            int64_t r = r0;
            for (; r + 4 <= r1; r += 4) {
                float s4[4];
                j->rows4(w->ne0, s4, (const uint8_t *)w->data + (size_t)r * w->row_bytes, w->row_bytes, a, d);
                for (int k = 0; k < 4; k++) yt[r + k] = s4[k] * w->tensor_scale;
            }
            for (; r < r1; r++) {
                float s1;
                j->dot(w->ne0, &s1, (const uint8_t *)w->data + (size_t)r * w->row_bytes, q8k);
                yt[r] = s1 * w->tensor_scale;
            }
        }
    }
}

/* True (and Y = W X done) if w is TQ2_0 with its own activation type and the family has a 4-row kernel. */
static bool tq2_rows_matmul(llmpi_pool *pool, const kern_matrix *w, const float *x, int n_tokens,
                            float *y, int64_t ldy, void *scratch) {
    if (w->type != LLMPI_TYPE_TQ2_0 || w->ne0 % QK_K != 0) return false;
    const kern_tq2_rows4_fn rows4 = kern_tq2_rows4_kernel();
    if (!rows4) return false;
    tq2_job j = { w, x, n_tokens, y, ldy, (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), rows4,
                  kern_vec_dot(LLMPI_TYPE_TQ2_0), pool };
    if (n_tokens == 1 || !pool) tq2_convert_task(&j, 0, 1);
    else pool_run(pool, tq2_convert_task, &j);
    pool_run(pool, tq2_matmul_task, &j);
    return true;
}

/* ---- mode selector (kernels.h "ternary kernels" section) --------------------------------------------- */

enum { TMODE_AUTO, TMODE_MAD, TMODE_LUT };
static _Atomic int ternary_mode = -1;   /* -1: not read from the environment yet */

static int mode_from_name(const char *m) {
    if (!m || !*m || strcmp(m, "auto") == 0) return TMODE_AUTO;
    if (strcmp(m, "mad") == 0) return TMODE_MAD;
    if (strcmp(m, "lut") == 0) return TMODE_LUT;
    return -1;
}

static int current_mode(void) {
    int m = atomic_load(&ternary_mode);
    if (m < 0) {
        m = mode_from_name(getenv("LLMPI_TERNARY"));
        if (m < 0) m = TMODE_AUTO;   /* unknown value: ignored, like $LLMPI_KERNELS */
        int expect = -1;
        atomic_compare_exchange_strong(&ternary_mode, &expect, m);
        m = atomic_load(&ternary_mode);
    }
    return m;
}

int kern_set_ternary_mode(const char *mode) {
    const int m = mode_from_name(mode);
    if (m < 0) return -1;
    atomic_store(&ternary_mode, m);
    return 0;
}

const char *kern_get_ternary_mode(void) {
    static const char *const names[] = { "auto", "mad", "lut" };
    return names[current_mode()];
}

/* "auto": a measured static table (docs/kernels.md, "Ternary kernels"). What decides is the
 * DRAM-bound case generation runs in (48 copies of the matrix cycled so nothing stays in L3; 1 token,
 * avx512 family, median of 9 passes) and llmpi-bench tg on the
 * synthetic bitnet-0.7b models:
 *   TQ1_0: LUT 0.62x (4096x1536) / 0.76x (1536x4096) the MAD time; tg 57.7 vs 47.6 t/s (1 thread)
 *          -> LUT (the base-3 decode costs MAD more than the 1.26x larger packed copy costs LUT);
 *   TQ2_0, I2_S: LUT 1.25-1.58x the MAD time (MAD streams 18-22 GB/s, LUT 13-17 GB/s); tg 85.6 vs
 *          57.5 (TQ2_0) -> MAD. (With the matrix in L3 LUT was 0.54-0.69x at ne0 = 1536: a
 *          compute-bound microbench alone would have picked the wrong family.)
 * aarch64 (no hardware here; qemu timings are meaningless): llvm-mca cycles per 256 weights of the
 * inner loops (docs/kernels.md) put the LUT loop at ~64 against MAD 33 / 56 / 34 (TQ2_0 / TQ1_0 /
 * I2_S, dotprod) and 44 / 69 / 46 (plain NEON): MAD everywhere (TQ1_0 without dotprod is a tie in
 * cycles, and LUT would stream 1.26x the bytes on a memory-bound Pi) -> auto = MAD on ARM. */
static bool auto_prefers_lut(uint32_t t, int64_t ne0) {
    (void)ne0;
#if defined(__x86_64__)
    return t == LLMPI_TYPE_TQ1_0;
#else
    (void)t;
    return false;
#endif
}

bool kern_ternary_use_lut_shape(uint32_t t, int64_t ne0, int64_t ne1) {
    (void)ne1;
    if (!kern_tl1_supported(t)) return false;
    switch (current_mode()) {
    case TMODE_LUT: return true;
    case TMODE_MAD: return false;
    default:        return auto_prefers_lut(t, ne0);
    }
}

bool kern_ternary_use_lut(uint32_t t) {
    return kern_ternary_use_lut_shape(t, 2048, 2048);
}

/* ---- kern_matmul hook: lazily packed matrices ------------------------------------------------------- */

typedef struct {
    const void *data;
    uint32_t type;
    int64_t ne0, ne1;
    size_t row_bytes;
    uint64_t sig;
    kern_tl1_matrix m;
} lut_entry;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static lut_entry *cache;
static size_t cache_n, cache_cap;

/* Signature of 16 evenly spaced 64-byte spans (first and last included), 8 bytes at a time. */
static uint64_t matrix_sig(const kern_matrix *w) {
    const size_t total = w->row_bytes * (size_t)w->ne1;
    const uint8_t *p = w->data;
    uint64_t h = 0xcbf29ce484222325ull ^ total;
    const size_t span = total < 64 ? total : 64;
    for (size_t s = 0; s < 16; s++) {
        const size_t off = (total - span) / 15 * s;
        for (size_t i = 0; i + 8 <= span; i += 8) {
            uint64_t v;
            memcpy(&v, p + off + i, sizeof v);
            h = (h ^ v) * 0x100000001b3ull;
            h ^= h >> 29;
        }
    }
    return h;
}

static const kern_tl1_matrix *cached_pack(const kern_matrix *w) {
    const uint64_t sig = matrix_sig(w);
    const kern_tl1_matrix *res = NULL;
    pthread_mutex_lock(&cache_mu);
    lut_entry *e = NULL;
    for (size_t i = 0; i < cache_n; i++)
        if (cache[i].data == w->data && cache[i].type == w->type && cache[i].ne0 == w->ne0 &&
            cache[i].ne1 == w->ne1 && cache[i].row_bytes == w->row_bytes) {
            e = &cache[i];
            break;
        }
    if (e && e->sig == sig) {
        e->m.tensor_scale = w->tensor_scale;
        res = &e->m;
    } else {
        if (e) {
            kern_tl1_free(&e->m);   /* another matrix now lives at this address: repack */
        } else {
            if (cache_n == cache_cap) {
                const size_t cap = cache_cap ? 2 * cache_cap : 64;
                lut_entry *nc = realloc(cache, cap * sizeof *nc);
                if (nc) {
                    cache = nc;
                    cache_cap = cap;
                }
            }
            if (cache_n < cache_cap) e = &cache[cache_n++];   /* else: no memory, use MAD */
        }
        if (e) {
            *e = (lut_entry){ w->data, w->type, w->ne0, w->ne1, w->row_bytes, sig, { 0 } };
            if (kern_tl1_pack(w, &e->m) == 0) res = &e->m;
            else *e = cache[--cache_n];   /* packing failed: drop the entry, use MAD */
        }
    }
    pthread_mutex_unlock(&cache_mu);
    return res;
}

void kern_ternary_cache_clear(void) {
    pthread_mutex_lock(&cache_mu);
    for (size_t i = 0; i < cache_n; i++) kern_tl1_free(&cache[i].m);
    free(cache);
    cache = NULL;
    cache_n = cache_cap = 0;
    pthread_mutex_unlock(&cache_mu);
}

static bool hook_applies(const kern_matrix *w, int n_tokens) {
    if (!w || !kern_tl1_supported(w->type) || n_tokens < 1 || n_tokens > KERN_TL1_MAX_TOKENS) return false;
    if (w->act_type && w->act_type != (uint32_t)quant_traits(w->type)->vec_dot_type) return false;
    return kern_tl1_packed_bytes(w) != 0;
}

size_t kern_ternary_scratch_bytes(const kern_matrix *w, int n_tokens) {
    const int nt = n_tokens < KERN_TL1_MAX_TOKENS ? n_tokens : KERN_TL1_MAX_TOKENS;
    if (!hook_applies(w, nt)) return 0;
    const kern_tl1_matrix shape = { .type = w->type, .ne0 = w->ne0 };
    const size_t lut = kern_tl1_scratch_bytes(&shape, nt);
    const size_t mad = w->type == LLMPI_TYPE_TQ2_0 ? tq2_token_bytes(w->ne0) * (size_t)nt + 64 : 0;
    return lut > mad ? lut : mad;
}

bool kern_ternary_matmul(llmpi_pool *pool, const kern_matrix *w, const float *x, int n_tokens,
                         float *y, int64_t ldy, void *scratch) {
    if (!hook_applies(w, n_tokens)) return false;
    /* MAD: TQ2_0 generation through the 4-row kernel where the family has one */
    if (!kern_ternary_use_lut_shape(w->type, w->ne0, w->ne1)) return tq2_rows_matmul(pool, w, x, n_tokens, y, ldy, scratch);
    const kern_tl1_matrix *m = cached_pack(w);
    if (!m) return false;
    kern_tl1_matmul(pool, m, x, n_tokens, y, ldy, scratch);
    return true;
}

const char *kern_ternary_impl(uint32_t t) {
    static const char *const lut_names[] = { "lut-avx512", "lut-avx2", "lut-neon", "lut-scalar" };
    static const char *const mad_names[] = { "mad-avx512", "mad-avx2", "mad-neon", "mad-neon-dotprod", "mad-scalar" };
    if (!kern_tl1_supported(t)) return "none";
    if (kern_ternary_use_lut(t)) {
        const char *impl = "scalar";
        kern_tl1_tile_kernel(&impl);
        if (strcmp(impl, "avx512") == 0) return lut_names[0];
        if (strcmp(impl, "avx2") == 0) return lut_names[1];
        if (strcmp(impl, "neon") == 0) return lut_names[2];
        return lut_names[3];
    }
    const char *f = kern_vec_dot_impl(t);
    if (strcmp(f, "avx512") == 0) return mad_names[0];
    if (strcmp(f, "avx2") == 0) return mad_names[1];
    if (strcmp(f, "neon") == 0) return mad_names[2];
    if (strcmp(f, "neon-dotprod") == 0) return mad_names[3];
    return mad_names[4];
}
