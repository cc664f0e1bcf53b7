/* Tiled, threaded attention over the KV cache (see attention.h for the exact numerics).
 *
 * Work item = (KV head g, block of QB consecutive queries). Its rows are the QB x G (query, query
 * head) pairs that read KV head g. For each tile of ATTN_KT = 16 cache positions the item
 *   pass 1: converts the K tile once to f32 and transposes it (kt[d][16]), then every row computes
 *           16 scores at once (lanes = keys, each lane summing over d in order like the scalar loop);
 * then each row gets the exact two-pass kern_softmax_at over its causal/window range and its
 * probabilities are rounded to f16 (f16 cache), and
 *   pass 2: converts the V tile once to f32 ([16][D]) and every row adds w_j * v_j in position order.
 * So a K/V row leaves the cache once per (KV head, query block), not once per query and head.
 *
 * Why not an online (flash) softmax: it rescales partial sums as the running max grows, which
 * changes the last bits of every probability relative to llama.cpp's non-flash CPU path (the one
 * the golden logits use, shared/tools/llmpi-ref-logits.c: whole-row max, exp, sum in double, one
 * multiply by 1/sum; kern_softmax_at reproduces it). Keeping that exact two-pass softmax needs a
 * row's scores in memory, so the block size QB is chosen to keep the score buffer of one item within
 * ATTN_SCORE_BUDGET floats (one query's G rows always fit: the buffer is at least G * n_ctx).
 * Measured: with this kernel the golden-logit exact-position counts of tests/test_engine are
 * identical to the per-(token, head) reference loop (kern_attention_ref) on all 44 files. */
#include "attention.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF  /* every a*b + c below is two roundings, as in the reference */
#endif

#define ATTN_SCORE_BUDGET 65536  /* floats of scores per thread (256 KiB): QB = budget / (G * keys) */
#define ATTN_MAX_ROWS     128    /* rows (query x head) per item, unless one query's group is larger */
#define ATTN_ALIGN_F      16     /* floats per 64 bytes */

/* ---- scalar building blocks (also the fallback family) ------------------------------------------ */
static void k_tile_scalar(const void *const rows[ATTN_KT], bool f16, int D, float *kt) {
    for (int j = 0; j < ATTN_KT; j++)
        for (int d = 0; d < D; d++)
            kt[(size_t)d * ATTN_KT + j] = f16 ? quant_f16_to_f32(((const uint16_t *)rows[j])[d])
                                              : ((const float *)rows[j])[d];
}

static void qk_scalar(const float *kt, int D, const float *q, size_t q_stride, int n_rows, float *s,
                      size_t s_stride) {
    for (int r = 0; r < n_rows; r++)
        for (int j = 0; j < ATTN_KT; j++) {
            float acc = 0.0f;
            for (int d = 0; d < D; d++) {
                const float prod = q[(size_t)r * q_stride + (size_t)d] * kt[(size_t)d * ATTN_KT + j];
                acc += prod;
            }
            s[(size_t)r * s_stride + (size_t)j] = acc;
        }
}

static void pv_scalar(float *out, const float *v, size_t v_stride, const float *w, int j0, int j1, int D) {
    for (int j = j0; j < j1; j++)
        for (int d = 0; d < D; d++) {
            const float prod = w[j] * v[(size_t)j * v_stride + (size_t)d];
            out[d] += prod;
        }
}

static void f32_to_f16_scalar(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = quant_f32_to_f16(x[i]);
}

static void f16_to_f32_scalar(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = quant_f16_to_f32(x[i]);
}

const kern_attn_ops kern_attn_ops_scalar = {
    k_tile_scalar, qk_scalar, pv_scalar, f32_to_f16_scalar, f16_to_f32_scalar,
};

/* The ops of the kernel family kern_vec_dot uses (kern_set_impl / $LLMPI_KERNELS force it too); a
 * family is only selectable when this CPU runs it (avx2 implies F16C, neon implies fcvt). */
static const kern_attn_ops *active_ops(void) {
    const char *f = kern_get_impl();
#if defined(__x86_64__)
    if (strcmp(f, "avx512") == 0) return &kern_attn_ops_avx512;
    if (strcmp(f, "avx2") == 0) return &kern_attn_ops_avx2;
#elif defined(__aarch64__)
    if (strncmp(f, "neon", 4) == 0) return &kern_attn_ops_neon;
#endif
    (void)f;
    return &kern_attn_ops_scalar;
}

void kern_f32_to_f16_row(const float *x, uint16_t *y, int64_t n) { active_ops()->f32_to_f16(x, y, n); }
void kern_f16_to_f32_row(const uint16_t *x, float *y, int64_t n) { active_ops()->f16_to_f32(x, y, n); }

/* ---- reference ------------------------------------------------------------------------------------ */
static int key_start(const kern_attn_params *p, int pos) {
    return p->window > 0 && pos - p->window + 1 > 0 ? pos - p->window + 1 : 0;
}

static float softcap_score(float s, float softcap) {
    return softcap > 0.0f ? softcap * tanhf(s / softcap) : s;
}

static float round_f16(float x) { return quant_f16_to_f32(quant_f32_to_f16(x)); }

int kern_attention_ref(const kern_attn_params *p) {
    const int H = p->n_head, Hk = p->n_head_kv, D = p->head_dim, group = H / Hk;
    const size_t KD = (size_t)Hk * (size_t)D, HD = (size_t)H * (size_t)D;
    const bool f16 = !p->kv_f32;
    const uint16_t *k16 = p->k, *v16 = p->v;
    const float *k32 = p->k, *v32 = p->v;
    float qh[1024];
    float *scores = malloc((size_t)(p->pos0 + p->n_q) * sizeof *scores);
    if (!scores || D > 1024) { free(scores); return -1; }
    for (int t = 0; t < p->n_q; t++) {
        const int pos = p->pos0 + t, start = key_start(p, pos);
        for (int h = 0; h < H; h++) {
            const int kvh = h / group;
            const float *q = p->q + (size_t)t * HD + (size_t)h * (size_t)D;
            for (int d = 0; d < D; d++) {
                const float qd = q[d] * p->q_scale;
                qh[d] = f16 ? round_f16(qd) : qd;
            }
            for (int k = start; k <= pos; k++) {
                const size_t base = (size_t)k * KD + (size_t)kvh * (size_t)D;
                float s = 0.0f;
                for (int d = 0; d < D; d++) {
                    const float prod = qh[d] * (f16 ? quant_f16_to_f32(k16[base + (size_t)d]) : k32[base + (size_t)d]);
                    s += prod;
                }
                s *= p->score_scale;
                scores[k - start] = softcap_score(s, p->softcap);
            }
            kern_softmax_at(scores, pos - start + 1, start); /* columns start..pos of the masked row */
            float *out = p->out + (size_t)t * HD + (size_t)h * (size_t)D;
            for (int d = 0; d < D; d++) out[d] = 0.0f;
            for (int k = start; k <= pos; k++) {
                const size_t base = (size_t)k * KD + (size_t)kvh * (size_t)D;
                const float w = f16 && !p->probs_f32 ? round_f16(scores[k - start]) : scores[k - start];
                for (int d = 0; d < D; d++) {
                    const float prod = w * (f16 ? quant_f16_to_f32(v16[base + (size_t)d]) : v32[base + (size_t)d]);
                    out[d] += prod;
                }
            }
        }
    }
    free(scores);
    return 0;
}

/* ---- tiled driver ------------------------------------------------------------------------------- */
static size_t round16(size_t n) { return (n + ATTN_ALIGN_F - 1) / ATTN_ALIGN_F * ATTN_ALIGN_F; }

typedef struct {
    size_t kt, vt, zero, qh, scores, total;  /* floats per thread, each a multiple of 16 */
    int rows_cap;                            /* rows (query x head) per item */
} attn_layout;

static attn_layout layout_of(const kern_attn_params *p) {
    const int G = p->n_head / p->n_head_kv;
    const size_t D = (size_t)p->head_dim;
    attn_layout L;
    L.rows_cap = G > ATTN_MAX_ROWS ? G : ATTN_MAX_ROWS;
    L.kt = round16(D * ATTN_KT);
    L.vt = round16(D * ATTN_KT);
    L.zero = round16(D);
    L.qh = round16((size_t)L.rows_cap * D);
    const size_t one_query = (size_t)G * round16((size_t)(p->n_ctx > 0 ? p->n_ctx : 1));
    L.scores = one_query > ATTN_SCORE_BUDGET ? one_query : ATTN_SCORE_BUDGET;
    L.total = L.kt + L.vt + L.zero + L.qh + L.scores;
    return L;
}

size_t kern_attention_scratch_bytes(const kern_attn_params *p, int n_threads) {
    if (n_threads < 1) n_threads = 1;
    return layout_of(p).total * sizeof(float) * (size_t)n_threads;
}

typedef struct {
    const kern_attn_params *p;
    const kern_attn_ops *ops;
    attn_layout L;
    float *scratch;
    llmpi_pool *pool;
    int qb, n_blocks;
    int64_t serial_next;  /* item counter when there is no pool (single thread) */
} attn_job;

static int64_t next_item(attn_job *job) { return job->pool ? pool_chunk_next(job->pool) : job->serial_next++; }

/* x[0..n) = f16-rounded x, through the family's converters (bit-identical to round_f16). */
static void round_row_f16(const kern_attn_ops *ops, float *x, int64_t n) {
    uint16_t tmp[256];
    for (int64_t i = 0; i < n; i += 256) {
        const int64_t m = n - i < 256 ? n - i : 256;
        ops->f32_to_f16(x + i, tmp, m);
        ops->f16_to_f32(tmp, x + i, m);
    }
}

static void attention_task(void *argp, int ith, int nth) {
    attn_job *job = argp;
    const kern_attn_params *p = job->p;
    const kern_attn_ops *ops = job->ops;
    const int H = p->n_head, Hk = p->n_head_kv, D = p->head_dim, G = H / Hk;
    const size_t KD = (size_t)Hk * (size_t)D, HD = (size_t)H * (size_t)D;
    const bool f16 = !p->kv_f32;
    const size_t elem = f16 ? sizeof(uint16_t) : sizeof(float);
    float *kt = job->scratch + (size_t)ith * job->L.total;
    float *vt = kt + job->L.kt, *zero = vt + job->L.vt, *qh = zero + job->L.zero, *sc = qh + job->L.qh;
    memset(zero, 0, job->L.zero * sizeof(float));
    const int64_t n_items = (int64_t)job->n_blocks * Hk;
    for (int64_t item = next_item(job); item < n_items; item = next_item(job)) {
        /* Late query blocks see the most keys: hand them out first for a better balance. */
        const int blk = job->n_blocks - 1 - (int)(item / Hk), kvh = (int)(item % Hk);
        const int t0 = blk * job->qb, t1 = t0 + job->qb < p->n_q ? t0 + job->qb : p->n_q, nq = t1 - t0;
        const int qpos0 = p->pos0 + t0;                      /* position of the block's first query */
        const int kbeg = key_start(p, qpos0), kend = p->pos0 + t1;
        const size_t SS = round16((size_t)(kend - kbeg));    /* score row stride */

        /* Q rows r = ti * G + g (query t0 + ti, head kvh * G + g), prescaled and rounded like the ref. */
        for (int ti = 0; ti < nq; ti++)
            for (int g = 0; g < G; g++) {
                const float *q = p->q + (size_t)(t0 + ti) * HD + (size_t)(kvh * G + g) * (size_t)D;
                float *row = qh + (size_t)(ti * G + g) * (size_t)D;
                for (int d = 0; d < D; d++) row[d] = q[d] * p->q_scale;
                if (f16) round_row_f16(ops, row, D);
            }

        /* Pass 1: scores. Queries [ti_lo, ti_hi) are the ones whose key range meets the tile. */
        for (int k0 = kbeg; k0 < kend; k0 += ATTN_KT) {
            const void *rows[ATTN_KT];
            for (int j = 0; j < ATTN_KT; j++)
                rows[j] = k0 + j < kend
                              ? (const void *)((const char *)p->k + ((size_t)(k0 + j) * KD + (size_t)kvh * (size_t)D) * elem)
                              : (const void *)zero;
            ops->k_tile(rows, f16, D, kt);
            const int ti_lo = k0 > qpos0 ? k0 - qpos0 : 0;
            int ti_hi = nq;
            if (p->window > 0) {
                /* start(pos) = pos - window + 1 < k0 + KT  <=>  ti < k0 + KT + window - 1 - qpos0 */
                const long lim = (long)k0 + ATTN_KT + p->window - 1 - qpos0;
                if (lim < ti_hi) ti_hi = (int)(lim > 0 ? lim : 0);
            }
            if (ti_lo < ti_hi)
                ops->qk(kt, D, qh + (size_t)ti_lo * (size_t)G * (size_t)D, (size_t)D, (ti_hi - ti_lo) * G,
                        sc + (size_t)ti_lo * (size_t)G * SS + (size_t)(k0 - kbeg), SS);
        }

        /* Scale, softcap, exact softmax, f16 rounding of the probabilities; clear the outputs. */
        for (int ti = 0; ti < nq; ti++) {
            const int pos = qpos0 + ti, st = key_start(p, pos), n = pos - st + 1;
            for (int g = 0; g < G; g++) {
                float *x = sc + (size_t)(ti * G + g) * SS + (size_t)(st - kbeg);
                for (int i = 0; i < n; i++) x[i] *= p->score_scale;
                if (p->softcap > 0.0f)
                    for (int i = 0; i < n; i++) x[i] = softcap_score(x[i], p->softcap);
                kern_softmax_at(x, n, st);
                if (f16 && !p->probs_f32) round_row_f16(ops, x, n);
                memset(p->out + (size_t)(t0 + ti) * HD + (size_t)(kvh * G + g) * (size_t)D, 0, (size_t)D * sizeof(float));
            }
        }

        /* Pass 2: out += w * V, tile by tile, positions in increasing order within each row. */
        for (int k0 = kbeg; k0 < kend; k0 += ATTN_KT) {
            const int nk = kend - k0 < ATTN_KT ? kend - k0 : ATTN_KT;
            const float *vp;
            size_t vs;
            if (f16) {
                for (int j = 0; j < nk; j++)
                    ops->f16_to_f32((const uint16_t *)p->v + (size_t)(k0 + j) * KD + (size_t)kvh * (size_t)D,
                                    vt + (size_t)j * (size_t)D, D);
                vp = vt;
                vs = (size_t)D;
            } else {
                vp = (const float *)p->v + (size_t)k0 * KD + (size_t)kvh * (size_t)D;
                vs = KD;
            }
            const int ti_lo = k0 > qpos0 ? k0 - qpos0 : 0;
            for (int ti = ti_lo; ti < nq; ti++) {
                const int pos = qpos0 + ti, st = key_start(p, pos);
                const int j0 = (st > k0 ? st : k0) - k0, j1 = (pos + 1 < k0 + nk ? pos + 1 : k0 + nk) - k0;
                if (j0 >= j1) continue;
                for (int g = 0; g < G; g++)
                    ops->pv(p->out + (size_t)(t0 + ti) * HD + (size_t)(kvh * G + g) * (size_t)D, vp, vs,
                            sc + (size_t)(ti * G + g) * SS + (size_t)(k0 - kbeg), j0, j1, D);
            }
        }
    }
    (void)nth;
}

void kern_attention(llmpi_pool *pool, const kern_attn_params *p, void *scratch) {
    if (p->n_q <= 0) return;
    const int G = p->n_head / p->n_head_kv, nth = pool_n_threads(pool);
    attn_job job = { .p = p, .ops = active_ops(), .L = layout_of(p), .scratch = scratch, .pool = pool };
    /* Queries per block: as many as the row and score budgets allow (the largest key span is the last
     * block's), but small enough to give every thread a few items. Results do not depend on it. */
    int qb = job.L.rows_cap / G;
    if (qb > p->n_q) qb = p->n_q;
    if (qb < 1) qb = 1;
    for (;;) {
        const int kend = p->pos0 + p->n_q;
        int span = kend;
        if (p->window > 0 && p->window + qb - 1 < span) span = p->window + qb - 1;
        if (qb == 1 || (size_t)G * (size_t)qb * round16((size_t)span) <= job.L.scores) break;
        qb--;
    }
    while (qb > 1 && (int64_t)p->n_head_kv * ((p->n_q + qb - 1) / qb) < 4 * (int64_t)nth) qb = (qb + 1) / 2;
    job.qb = qb;
    job.n_blocks = (p->n_q + qb - 1) / qb;
    if (pool) pool_run(pool, attention_task, &job);
    else attention_task(&job, 0, 1);
}
