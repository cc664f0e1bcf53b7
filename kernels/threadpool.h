/* Persistent worker pool. pool_run(fn) calls fn(arg, ith, nth) on every thread (the caller is ith 0)
 * and returns when all have finished. Workers spin briefly on a generation counter, then sleep on a
 * condition variable, so back-to-back ops (one per matmul) avoid syscalls while idle pools cost nothing.
 * Work inside an op is usually handed out with pool_chunk_next() (an atomic counter), which keeps
 * results deterministic as long as each output element is computed by exactly one chunk. */
#ifndef LLMPI_THREADPOOL_H
#define LLMPI_THREADPOOL_H

#include <stdint.h>

typedef struct llmpi_pool llmpi_pool;
typedef void (*pool_task_fn)(void *arg, int ith, int nth);

/* n_threads <= 0: online cores. Returns NULL on allocation/thread-creation failure. */
llmpi_pool *pool_create(int n_threads);
void pool_free(llmpi_pool *p);
int  pool_n_threads(const llmpi_pool *p);
void pool_run(llmpi_pool *p, pool_task_fn fn, void *arg);

/* Shared chunk counter for the op in flight: reset by pool_run before the op starts. Returns the next
 * chunk index (0, 1, 2, ...) to process; callers stop when it is >= their chunk count. */
int64_t pool_chunk_next(llmpi_pool *p);

int pool_default_threads(void);
#endif
