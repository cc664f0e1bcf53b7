/* engine/sampler.c against the algorithm it replaced (kept here as the test-only reference
 * ref_sample): the old sampler sorted the whole vocabulary with qsort every token; the new one selects
 * the top_k best with a bounded heap and sorts only those. The drawn tokens must be identical for the
 * same seed and parameters: random logits (normal, coarsely rounded so many logits tie, runs of -inf,
 * several equal maxima), vocabularies of 1..3000 tokens, top_k off / 1 / small / >= n_vocab, top-p,
 * min-p, temperature, greedy, repetition penalty with accepted tokens, many seeds.
 *
 * `test_sampler --bench` times llmpi_sampler_sample against ref_sample for a 128256-token vocabulary
 * (Llama 3) with the default parameters and prints the median per-token time of each. */
#include "harness.h"
#include "llmpi.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the full-sort sampler (engine/sampler.c before the top-k selection), test-only ------------ */
typedef struct { int32_t id; float logit; float p; } ref_cand;

typedef struct {
    llmpi_sampler_params p;
    uint64_t rng;
    int32_t *recent;
    int n_recent, head;
    ref_cand *c;
} ref_sampler;

static void ref_init(ref_sampler *s, const llmpi_sampler_params *p, int n_vocab) {
    memset(s, 0, sizeof *s);
    s->p = *p;
    if (s->p.repeat_last_n < 0) s->p.repeat_last_n = 0;
    s->rng = s->p.seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    s->recent = calloc((size_t)(s->p.repeat_last_n > 0 ? s->p.repeat_last_n : 1), sizeof(int32_t));
    s->c = malloc((size_t)n_vocab * sizeof *s->c);
}

static void ref_free(ref_sampler *s) { free(s->recent); free(s->c); }

static void ref_accept(ref_sampler *s, int32_t token) {
    if (s->p.repeat_last_n <= 0) return;
    s->recent[s->head] = token;
    s->head = (s->head + 1) % s->p.repeat_last_n;
    if (s->n_recent < s->p.repeat_last_n) s->n_recent++;
}

static uint64_t ref_next_u64(uint64_t *st) { /* splitmix64 */
    uint64_t z = (*st += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int ref_by_logit_desc(const void *a, const void *b) {
    const ref_cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int32_t ref_sample(ref_sampler *s, const float *logits, int n_vocab) {
    ref_cand *c = s->c;
    for (int i = 0; i < n_vocab; i++) c[i] = (ref_cand){ i, logits[i], 0.0f };
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
    qsort(c, (size_t)n, sizeof *c, ref_by_logit_desc);
    if (s->p.top_k > 0 && s->p.top_k < n) n = s->p.top_k;
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
        const float threshold = s->p.min_p * c[0].p;
        int keep = 1;
        while (keep < n && c[keep].p >= threshold) keep++;
        n = keep;
    }
    sum = 0.0;
    for (int i = 0; i < n; i++) { c[i].p = expf((c[i].logit - c[0].logit) / s->p.temp); sum += c[i].p; }
    const double r = (double)(ref_next_u64(&s->rng) >> 11) * (1.0 / 9007199254740992.0) * sum;
    double cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += c[i].p;
        if (r < cum) return c[i].id;
    }
    return c[n - 1].id;
}

/* ---- random cases ---------------------------------------------------------------------------- */

/* kind 0: N(0, 3^2); 1: rounded to 0.5 (many ties, also at the top); 2: like 1 with runs of -inf;
 * 3: a handful of distinct values only (ties everywhere, several equal maxima). */
static void fill_logits(float *x, int n, int kind, uint64_t *rng) {
    for (int i = 0; i < n; i++) {
        float v = 3.0f * t_rand_normal(rng);
        if (kind >= 1) v = roundf(2.0f * v) * 0.5f;
        if (kind == 2 && (t_rand_u64(rng) % 5) == 0) v = -INFINITY;
        if (kind == 3) v = (float)(t_rand_u64(rng) % 4) - 1.0f;
        x[i] = v;
    }
}

static int pick(uint64_t *rng, int n) { return (int)(t_rand_u64(rng) % (uint64_t)n); }

static void test_same_tokens(void) {
    static const int vocab_sizes[] = { 1, 2, 7, 40, 41, 100, 513, 3000 };
    static const float temps[] = { 0.0f, 0.3f, 0.8f, 1.0f, 1.7f };
    static const float top_ps[] = { 1.0f, 0.95f, 0.5f, 0.1f };
    static const float min_ps[] = { 0.0f, 0.05f, 0.3f };
    static const float penalties[] = { 1.0f, 1.1f, 1.5f };
    static const int last_ns[] = { 0, 4, 64 };
    t_begin("sampler: top-k selection draws the same tokens as the full sort (many seeds and parameters)");
    uint64_t rng = 0xC0FFEE;
    int steps = 0, mismatches = 0, topk_partial = 0;
    float *logits = malloc(3000 * sizeof(float));
    for (int trial = 0; trial < 600; trial++) {
        const int n_vocab = vocab_sizes[pick(&rng, (int)(sizeof vocab_sizes / sizeof vocab_sizes[0]))];
        const int top_k_choices[] = { 0, 1, 2, 5, 40, n_vocab - 1, n_vocab, n_vocab + 3, -1 };
        llmpi_sampler_params p = llmpi_sampler_default_params();
        p.temp = temps[pick(&rng, 5)];
        p.top_k = top_k_choices[pick(&rng, 9)];
        p.top_p = top_ps[pick(&rng, 4)];
        p.min_p = min_ps[pick(&rng, 3)];
        p.repeat_penalty = penalties[pick(&rng, 3)];
        p.repeat_last_n = last_ns[pick(&rng, 3)];
        p.seed = t_rand_u64(&rng);
        const int kind = pick(&rng, 4);
        topk_partial += p.top_k > 0 && p.top_k < n_vocab;
        llmpi_sampler *s = llmpi_sampler_create(&p);
        ref_sampler r;
        ref_init(&r, &p, n_vocab);
        for (int step = 0; step < 12; step++) {
            fill_logits(logits, n_vocab, kind, &rng);
            const int32_t got = llmpi_sampler_sample(s, logits, n_vocab), want = ref_sample(&r, logits, n_vocab);
            steps++;
            if (got != want && mismatches++ == 0)
                CHECK(0, "trial %d step %d (vocab %d, temp %g, top_k %d, top_p %g, min_p %g, penalty %g/%d, kind %d): "
                      "token %d, full sort %d", trial, step, n_vocab, p.temp, p.top_k, p.top_p, p.min_p,
                      p.repeat_penalty, p.repeat_last_n, kind, got, want);
            llmpi_sampler_accept(s, want);
            ref_accept(&r, want);
        }
        llmpi_sampler_free(s);
        ref_free(&r);
    }
    printf("# %d draws (%d trials with 0 < top_k < n_vocab), %d differ\n", steps, topk_partial, mismatches);
    CHECK(mismatches == 0 && steps == 600 * 12 && topk_partial > 100, "%d of %d draws differ", mismatches, steps);
    free(logits);
    t_end();
}

/* ---- timing ------------------------------------------------------------------------------------ */

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int bench(void) {
    enum { V = 128256, REPS = 31 };
    float *logits = malloc((size_t)V * sizeof(float));
    uint64_t rng = 7;
    fill_logits(logits, V, 0, &rng);
    const llmpi_sampler_params p = llmpi_sampler_default_params();
    llmpi_sampler *s = llmpi_sampler_create(&p);
    ref_sampler r;
    ref_init(&r, &p, V);
    double t_new[REPS], t_ref[REPS];
    for (int k = 0; k < REPS; k++) {
        double t0 = now_sec();
        const int32_t a = llmpi_sampler_sample(s, logits, V);
        t_new[k] = now_sec() - t0;
        t0 = now_sec();
        const int32_t b = ref_sample(&r, logits, V);
        t_ref[k] = now_sec() - t0;
        if (a != b) { printf("tokens differ at rep %d: %d vs %d\n", k, a, b); return 1; }
        logits[a] -= 0.5f;   /* vary the input a little between reps */
    }
    qsort(t_new, REPS, sizeof(double), cmp_double);
    qsort(t_ref, REPS, sizeof(double), cmp_double);
    printf("sampling one token, vocab %d, temp %.2f top_k %d top_p %.2f min_p %.2f, median of %d:\n"
           "  full qsort (before): %8.3f ms\n  top-k heap (now):    %8.3f ms\n",
           V, p.temp, p.top_k, p.top_p, p.min_p, REPS, 1e3 * t_ref[REPS / 2], 1e3 * t_new[REPS / 2]);
    llmpi_sampler_free(s);
    ref_free(&r);
    free(logits);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) return bench();
    test_same_tokens();
    return t_summary();
}
