/* A net's own worker threads. The calling thread takes part in every run, so
 * a pool for T threads starts T - 1 workers. Workers spin briefly, then sleep. */
#ifndef CNN_THREADS_H
#define CNN_THREADS_H

#include <stddef.h>

typedef struct cnn_pool cnn_pool;

/* One part of a pool run: thread is the part's number, 0 .. threads - 1. */
typedef void (*cnn_pool_fn)(void *arg, int thread, int threads);

/* Starts threads - 1 workers; 0 when a thread or allocation fails (nothing leaks). */
int cnn__pool_create(cnn_pool **pool, int threads);
void cnn__pool_destroy(cnn_pool *pool);
int cnn__pool_threads(const cnn_pool *pool);
/* Calls fn(arg, t, threads) once for every t in 0 .. threads - 1 and returns
 * when all have finished: the caller runs t = 0, each worker its own t, and
 * the caller also runs the parts of workers that have not started theirs when
 * it gets to them (t is the part, not the thread running it). A NULL pool runs
 * fn(arg, 0, 1) on the caller. */
void cnn__pool_run(cnn_pool *pool, cnn_pool_fn fn, void *arg);

/* Processors this process may run on (at least 1). */
int cnn__available_cores(void);

#endif
