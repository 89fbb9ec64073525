#include "exec.h"

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
