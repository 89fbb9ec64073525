/* A net's own worker threads. The calling thread takes part in every run, so
 * a pool for T threads starts T - 1 workers. Workers spin briefly, then sleep. */
#ifndef CNN_THREADS_H
#define CNN_THREADS_H

#include <stddef.h>

typedef struct cnn_pool cnn_pool;

/* Runs on every thread of a pool run: thread is 0 (the caller) .. threads - 1. */
typedef void (*cnn_pool_fn)(void *arg, int thread, int threads);

/* Starts threads - 1 workers; 0 when a thread or allocation fails (nothing leaks). */
int cnn__pool_create(cnn_pool **pool, int threads);
void cnn__pool_destroy(cnn_pool *pool);
int cnn__pool_threads(const cnn_pool *pool);
/* Calls fn on every thread and returns when all have finished. A NULL pool runs
 * fn(arg, 0, 1) on the caller. */
void cnn__pool_run(cnn_pool *pool, cnn_pool_fn fn, void *arg);

/* Processors this process may run on (at least 1). */
int cnn__available_cores(void);

#endif
