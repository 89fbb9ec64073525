/* What a layer's forward pass may use besides its tensors: the net's threads
 * and its per-thread workspace. */
#ifndef CNN_EXEC_H
#define CNN_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "threads.h"

/* Below this many FLOPs per thread a loop runs on the caller alone. Waking a
 * sleeping worker costs tens of microseconds, but workers spin for a while
 * after each loop (threads.c), and handing a loop to a spinning worker costs
 * under a microsecond, about what one thread computes in 0.05 MFLOP. Measured
 * on 2 threads (LeNet-5, ms per forward): batch 64 at 1 / 0.5 / 0.25 / 0.1
 * MFLOP per thread 0.435 / 0.431 / 0.424 / 0.424 (0.25 also splits the
 * second pooling layer and the 84-unit dense layer); batch 1 stays at 0.0139
 * down to 0.25 (no layer splits) but takes 0.019 at 0.1, where its small
 * convolutions split and lose more than they gain. */
#define CNN_MIN_WORK_PER_THREAD 250000u

typedef struct cnn_exec {
    cnn_pool *pool;              /* NULL when the net runs on one thread */
    int threads;                 /* threads of the pool (1 without one) */
    float *workspace;            /* threads * workspace_floats floats, 64-byte aligned */
    size_t workspace_floats;     /* per thread; each slice is 64-byte aligned */
} cnn_exec;

/* Runs fn over [0, n) split into contiguous near-equal ranges, one per thread
 * (fewer when n is small or `work` — the FLOPs of the whole loop — is too
 * little to repay waking the workers). The split depends only on n and the
 * thread count, so results are the same run after run. */
typedef void (*cnn_range_fn)(void *arg, size_t begin, size_t end, int thread);
void cnn__parallel_for(const cnn_exec *exec, size_t n, uint64_t work, cnn_range_fn fn, void *arg);

/* Threads cnn__parallel_for would use for a loop of n items and `work` FLOPs. */
int cnn__parallel_threads(const cnn_exec *exec, size_t n, uint64_t work);

/* Thread t's workspace slice. */
static inline float *cnn__exec_workspace(const cnn_exec *exec, int thread)
{
    return exec->workspace + (size_t)thread * exec->workspace_floats;
}

#endif
