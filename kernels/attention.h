/* Causal multi-head attention over the KV cache (GQA, sliding window, softcap), tiled and threaded,
 * plus SIMD f32 <-> f16 row conversion for storing K/V.
 *
 * Numerics (identical for every kernel family and thread count, and identical to the per-(token,
 * head) loop engine/forward.c had before: docs/formats.md §4.6):
 *   qh[d]  = q[d] * q_scale, rounded to f16 when the cache is f16 (llama.cpp's F16 vec_dot_type);
 *   s_p    = ((qh[0]*k_p[0] + qh[1]*k_p[1]) + ...) + qh[D-1]*k_p[D-1]   (f32, in d order, no FMA);
 *   s_p   *= score_scale; with softcap c > 0: s_p = c * tanhf(s_p / c);
 *   w      = kern_softmax_at(s over the keys start..pos, col0 = start) (ggml softmax of the masked row);
 *            rounded to f16 when the cache is f16 (llama.cpp rounds P to the F16 vec_dot_type)
 *            unless probs_f32 (bitnet.cpp's fork multiplies the F16 V cache by f32 P);
 *   out[d] = (((0 + w_0*v_0[d]) + w_1*v_1[d]) + ...)   (f32, in position order, no FMA).
 * The SIMD kernels keep every one of these operations: Q·K runs 16 keys in parallel lanes (each lane
 * sums over d in order, on a transposed K tile), P·V runs over d in lanes. So all families are
 * bit-exact with kern_attention_ref(). Softmax is the exact two-pass one (not an online/flash
 * softmax), which needs each row's scores in a buffer; see kern_attention_scratch_bytes(). */
#ifndef LLMPI_ATTENTION_H
#define LLMPI_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "threadpool.h"

typedef struct {
    int n_q;            /* query tokens in this call */
    int pos0;           /* position of query 0 (query t is at pos0 + t) */
    int n_head;         /* query heads H */
    int n_head_kv;      /* KV heads Hk (H % Hk == 0; query head h uses KV head h / (H/Hk)) */
    int head_dim;       /* D, 1..1024 */
    int n_ctx;          /* cache capacity in positions (pos0 + n_q <= n_ctx); sizes the scratch */
    int window;         /* sliding window: query at pos sees keys [pos-window+1, pos]; 0 = full causal */
    bool kv_f32;        /* cache holds f32 (true) or f16 bits (false) */
    float q_scale;      /* multiplies Q before the f16 rounding (phi3/gemma2 prescale), else 1 */
    float score_scale;  /* multiplies Q·K (1/sqrt(D) unless Q was prescaled) */
    float softcap;      /* > 0: s = softcap * tanh(s / softcap) after scaling */
    bool probs_f32;     /* keep softmax probabilities in f32 for P·V even with an f16 cache (bitnet.cpp's
                           numerics: its 2024 llama.cpp fork does not round P to f16; engine act scheme
                           "bitnet", docs/models.md) */
    const float *q;     /* [n_q][H*D] */
    const void *k;      /* this layer's cache: [n_ctx][Hk*D] f16 bits or f32; positions 0..pos0+n_q-1 valid */
    const void *v;      /* same layout as k */
    float *out;         /* [n_q][H*D] */
} kern_attn_params;

/* Bytes of scratch kern_attention needs for these dimensions (n_q, pos0 and the pointers are not
 * looked at; n_ctx bounds the key count) on a pool of n_threads threads. Per thread: a transposed
 * K tile and a converted V tile (16 keys x D f32 each), the block's rounded Q rows, and the score
 * rows of one block of queries: max(ATTN_SCORE_BUDGET, group * n_ctx) floats, where a block takes
 * as many queries as fit in the budget (so memory does not grow with queries x n_ctx). */
size_t kern_attention_scratch_bytes(const kern_attn_params *p, int n_threads);

/* out = attention(q, cache) for every query token and head, on the pool. Work items are
 * (KV head, block of queries), handed out by the pool's chunk counter; each K/V tile loaded from the
 * cache is used by every query head of the group and every query of the block. scratch: at least
 * kern_attention_scratch_bytes(p, pool_n_threads(pool)) bytes, 64-byte aligned (pool may be NULL:
 * one thread, scratch for 1). Results do not
 * depend on the thread count or the kernel family. */
void kern_attention(llmpi_pool *pool, const kern_attn_params *p, void *scratch);

/* Scalar reference (tests): the plain per-(token, head) loop engine/forward.c used to run, same
 * numerics as above, single thread, quant/ scalar f16 conversions. Returns 0, or -1 if the score row
 * cannot be allocated or head_dim > 1024. */
int kern_attention_ref(const kern_attn_params *p);

/* f32 -> f16 bits, bit-identical to quant_f32_to_f16 (round to nearest even, subnormals, |x| >= 65520
 * -> Inf, NaN -> sign | 0x7E00), using F16C / NEON fcvt where the active family has it. */
void kern_f32_to_f16_row(const float *x, uint16_t *y, int64_t n);
/* f16 bits -> f32, bit-identical to quant_f16_to_f32 for every input except signalling NaNs, which
 * the hardware converters quiet (0x7C01..0x7DFF -> quiet NaN of the same sign; quant_f32_to_f16 never
 * produces them). */
void kern_f16_to_f32_row(const uint16_t *x, float *y, int64_t n);

/* ---- internal: per-ISA building blocks (kernels/attention_*.c), used by kernels/attention.c ----- */
#define ATTN_KT 16  /* keys per tile = lanes of the Q·K kernel */

typedef struct {
    /* kt[d * ATTN_KT + j] = f32 of key row j, element d, for d < D (rows[j] point at D f16 or f32). */
    void (*k_tile)(const void *const rows[ATTN_KT], bool f16, int D, float *kt);
    /* s[r * s_stride + j] = sum_d q[r * q_stride + d] * kt[d * ATTN_KT + j], r < n_rows, j < ATTN_KT
     * (starting from +0, one multiply and one add per d, in d order). */
    void (*qk)(const float *kt, int D, const float *q, size_t q_stride, int n_rows, float *s, size_t s_stride);
    /* out[d] += w[j] * v[j * v_stride + d], for j = j0..j1-1 in order, d < D (mul then add). */
    void (*pv)(float *out, const float *v, size_t v_stride, const float *w, int j0, int j1, int D);
    void (*f32_to_f16)(const float *x, uint16_t *y, int64_t n);
    void (*f16_to_f32)(const uint16_t *x, float *y, int64_t n);
} kern_attn_ops;

extern const kern_attn_ops kern_attn_ops_scalar;
#if defined(__x86_64__)
extern const kern_attn_ops kern_attn_ops_avx2;
extern const kern_attn_ops kern_attn_ops_avx512;
#endif
#if defined(__aarch64__)
extern const kern_attn_ops kern_attn_ops_neon;
#endif
#endif
