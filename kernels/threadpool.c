#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_ITERS 20000  /* ~tens of microseconds of polling before a worker sleeps */

typedef struct { alignas(64) atomic_int_fast64_t v; } padded_counter;

struct llmpi_pool {
    int n_threads;
    pthread_t *threads;
    /* Each counter on its own cache line: workers poll `generation`, finishers bump `done`,
     * chunk grabbers hit `chunk`; sharing a line would make every poll a coherence miss. */
    padded_counter generation;
    padded_counter done;
    padded_counter chunk;
    pool_task_fn fn;      /* written by the caller before bumping generation (release) */
    void *arg;
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sleepers;         /* guarded by mu */
};

typedef struct { llmpi_pool *pool; int ith; } worker_arg;
static worker_arg *worker_args_of(llmpi_pool *p) { return (worker_arg *)(p->threads + p->n_threads); }

static void *worker_main(void *argp) {
    worker_arg *wa = argp;
    llmpi_pool *p = wa->pool;
    int64_t seen = 0;
    for (;;) {
        int64_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->generation.v, memory_order_acquire)) == seen) {
            if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
            if (++spins < SPIN_ITERS) continue;
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while (atomic_load_explicit(&p->generation.v, memory_order_acquire) == seen &&
                   !atomic_load_explicit(&p->stop, memory_order_acquire))
                pthread_cond_wait(&p->cv, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
        seen = g;
        p->fn(p->arg, wa->ith, p->n_threads);
        atomic_fetch_add_explicit(&p->done.v, 1, memory_order_acq_rel);
    }
}

int pool_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

llmpi_pool *pool_create(int n_threads) {
    if (n_threads <= 0) n_threads = pool_default_threads();
    if (n_threads > 512) n_threads = 512;
    llmpi_pool *p = aligned_alloc(64, (sizeof *p + 63) / 64 * 64);
    if (!p) return NULL;
    *p = (llmpi_pool){ .n_threads = n_threads };
    atomic_init(&p->generation.v, 0);
    atomic_init(&p->done.v, 0);
    atomic_init(&p->chunk.v, 0);
    atomic_init(&p->stop, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = calloc((size_t)n_threads, sizeof(pthread_t) + sizeof(worker_arg));
    if (!p->threads) { free(p); return NULL; }
    worker_arg *args = worker_args_of(p);
    for (int i = 1; i < n_threads; i++) {
        args[i] = (worker_arg){ p, i };
        if (pthread_create(&p->threads[i], NULL, worker_main, &args[i]) != 0) {
            p->n_threads = i; /* join what started */
            pool_free(p);
            return NULL;
        }
    }
    return p;
}

void pool_free(llmpi_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

int pool_n_threads(const llmpi_pool *p) { return p ? p->n_threads : 1; }

int64_t pool_chunk_next(llmpi_pool *p) {
    return atomic_fetch_add_explicit(&p->chunk.v, 1, memory_order_relaxed);
}

void pool_run(llmpi_pool *p, pool_task_fn fn, void *arg) {
    if (!p || p->n_threads == 1) {
        if (p) atomic_store_explicit(&p->chunk.v, 0, memory_order_relaxed);
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->chunk.v, 0, memory_order_relaxed);
    atomic_store_explicit(&p->done.v, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation.v, 1, memory_order_acq_rel);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers) pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n_threads);
    int spins = 0;
    while (atomic_load_explicit(&p->done.v, memory_order_acquire) < p->n_threads - 1)
        if (++spins > 1000) { sched_yield(); spins = 0; }
}
