/* Token sampling in llama.cpp's default chain order: repetition penalty -> top-k -> top-p -> min-p ->
 * temperature -> draw. temp <= 0 is greedy (argmax after the penalty). The RNG is seeded, so a given
 * seed and thread count always produce the same text.
 *
 * Candidate order: higher logit first, equal logits by lower id (a strict total order unless a logit is
 * NaN). With 0 < top_k < n_vocab only the top_k best are selected (a bounded heap, O(n_vocab log k))
 * and sorted; the kept list, and so every later step and the drawn token, is the same as sorting the
 * whole vocabulary (tests/test_sampler.c checks this against the full-sort algorithm). */
#include "llmpi.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct llmpi_sampler {
    llmpi_sampler_params p;
    uint64_t rng;
    int32_t *recent;      /* ring of the last repeat_last_n accepted tokens */
    int n_recent, head;
    struct cand { int32_t id; float logit; float p; } *cands;
    int cap;
};

llmpi_sampler_params llmpi_sampler_default_params(void) {
    return (llmpi_sampler_params){ .temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                                   .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0x5EED };
}

llmpi_sampler *llmpi_sampler_create(const llmpi_sampler_params *p) {
    llmpi_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = p ? *p : llmpi_sampler_default_params();
    if (s->p.repeat_last_n < 0) s->p.repeat_last_n = 0;
    s->rng = s->p.seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (s->p.repeat_last_n > 0) {
        s->recent = calloc((size_t)s->p.repeat_last_n, sizeof(int32_t));
        if (!s->recent) { free(s); return NULL; }
    }
    return s;
}

void llmpi_sampler_free(llmpi_sampler *s) {
    if (!s) return;
    free(s->recent);
    free(s->cands);
    free(s);
}

void llmpi_sampler_accept(llmpi_sampler *s, int32_t token) {
    if (!s || s->p.repeat_last_n <= 0) return;
    s->recent[s->head] = token;
    s->head = (s->head + 1) % s->p.repeat_last_n;
    if (s->n_recent < s->p.repeat_last_n) s->n_recent++;
}

static uint64_t next_u64(uint64_t *st) { /* splitmix64 */
    uint64_t z = (*st += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int by_logit_desc(const void *a, const void *b) {
    const struct cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id; /* stable tie order: lower id first */
}

/* cand_before(x, y): x comes first in the candidate order (the order by_logit_desc sorts into). */
static bool cand_before(const struct cand *x, const struct cand *y) {
    if (x->logit != y->logit) return x->logit > y->logit;
    return x->id < y->id;
}

/* Heap of k candidates with the LAST in candidate order at the root: every child comes before its parent. */
static void sift_down(struct cand *h, int k, int i) {
    for (;;) {
        int last = i;
        const int l = 2 * i + 1, r = l + 1;
        if (l < k && cand_before(&h[last], &h[l])) last = l;
        if (r < k && cand_before(&h[last], &h[r])) last = r;
        if (last == i) return;
        const struct cand t = h[i];
        h[i] = h[last];
        h[last] = t;
        i = last;
    }
}

/* Moves the k first candidates (in candidate order) of c[0..n) to c[0..k), unordered (1 <= k <= n). A
 * candidate that beats the heap's last one replaces it; c[k..n) is only read. */
static void select_top_k(struct cand *c, int n, int k) {
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(c, k, i);
    for (int i = k; i < n; i++)
        if (cand_before(&c[i], &c[0])) {
            c[0] = c[i];
            sift_down(c, k, 0);
        }
}

int32_t llmpi_sampler_sample(llmpi_sampler *s, const float *logits, int n_vocab) {
    if (!s || !logits || n_vocab <= 0) return -1;
    if (s->cap < n_vocab) {
        struct cand *c = realloc(s->cands, (size_t)n_vocab * sizeof *c);
        if (!c) return -1;
        s->cands = c;
        s->cap = n_vocab;
    }
    struct cand *c = s->cands;
    for (int i = 0; i < n_vocab; i++) c[i] = (struct cand){ i, logits[i], 0.0f };

    /* Repetition penalty (each distinct recent token once): positive logits divided, negative multiplied. */
    if (s->p.repeat_penalty != 1.0f && s->n_recent > 0) {
        for (int i = 0; i < s->n_recent; i++) {
            int32_t t = s->recent[i];
            if (t < 0 || t >= n_vocab) continue;
            int seen = 0;
            for (int k = 0; k < i; k++) if (s->recent[k] == t) { seen = 1; break; }
            if (seen) continue;
            c[t].logit = c[t].logit > 0 ? c[t].logit / s->p.repeat_penalty : c[t].logit * s->p.repeat_penalty;
        }
    }

    if (s->p.temp <= 0.0f) {
        int best = 0;
        for (int i = 1; i < n_vocab; i++) if (c[i].logit > c[best].logit) best = i;
        return c[best].id;
    }

    int n = n_vocab;
    if (s->p.top_k > 0 && s->p.top_k < n) {
        n = s->p.top_k;
        select_top_k(c, n_vocab, n);   /* then sort only the kept ones */
    }
    qsort(c, (size_t)n, sizeof *c, by_logit_desc);

    /* Probabilities at temperature 1 for the top-p / min-p filters (as llama.cpp's chain does). */
    double sum = 0.0;
    for (int i = 0; i < n; i++) { c[i].p = expf(c[i].logit - c[0].logit); sum += c[i].p; }
    if (s->p.top_p < 1.0f) {
        double cum = 0.0;
        for (int i = 0; i < n; i++) {
            cum += c[i].p / sum;
            if (cum >= s->p.top_p) { n = i + 1; break; }
        }
    }
    if (s->p.min_p > 0.0f) {
        const float threshold = s->p.min_p * c[0].p; /* c[0].p == 1: the top token */
        int keep = 1;
        while (keep < n && c[keep].p >= threshold) keep++;
        n = keep;
    }

    sum = 0.0;
    for (int i = 0; i < n; i++) { c[i].p = expf((c[i].logit - c[0].logit) / s->p.temp); sum += c[i].p; }
    const double r = (double)(next_u64(&s->rng) >> 11) * (1.0 / 9007199254740992.0) * sum;
    double cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += c[i].p;
        if (r < cum) return c[i].id;
    }
    return c[n - 1].id;
}
