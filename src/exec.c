#include "exec.h"

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

typedef struct range_job {
    size_t n;
    int threads;
    cnn_range_fn fn;
    void *arg;
} range_job;

int cnn__parallel_threads(const cnn_exec *exec, size_t n, uint64_t work)
{
    int threads = exec->threads;
    while (threads > 1 && ((size_t)threads > n || work / (uint64_t)threads < CNN_MIN_WORK_PER_THREAD))
        threads--;
    return threads;
}

static void run_range(void *raw, int thread, int threads)
{
    const range_job *job = raw;
    (void)threads;
    if (thread >= job->threads)
        return;
    size_t begin = job->n * (size_t)thread / (size_t)job->threads;
    size_t end = job->n * (size_t)(thread + 1) / (size_t)job->threads;
    if (begin < end)
        job->fn(job->arg, begin, end, thread);
}

void cnn__parallel_for(const cnn_exec *exec, size_t n, uint64_t work, cnn_range_fn fn, void *arg)
{
    if (n == 0)
        return;
    int threads = cnn__parallel_threads(exec, n, work);
    if (threads == 1) {
        fn(arg, 0, n, 0);
        return;
    }
    range_job job = { n, threads, fn, arg };
    cnn__pool_run(exec->pool, run_range, &job);
}
