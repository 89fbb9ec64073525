#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "alloc.h"

/* Spin iterations before a worker sleeps: a forward pass issues its parallel
 * loops back to back, so a short spin saves a futex wake per layer. */
#define CNN_POOL_SPIN 20000

struct cnn_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t done;
    atomic_uint generation; /* bumped once per run */
    atomic_int pending;     /* workers still running the current job */
    int stopping;
    cnn_pool_fn fn;
    void *arg;
    struct worker_start *starts; /* read by workers at start-up; freed with the pool */
};

typedef struct worker_start {
    cnn_pool *pool;
    int index;
} worker_start;

static void finish_job(cnn_pool *pool)
{
    if (atomic_fetch_sub(&pool->pending, 1) == 1) {
        pthread_mutex_lock(&pool->lock);
        pthread_cond_signal(&pool->done);
        pthread_mutex_unlock(&pool->lock);
    }
}

static void *worker_main(void *raw)
{
    worker_start *start = raw;
    cnn_pool *pool = start->pool;
    int index = start->index;
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load(&pool->generation) == seen && spins < CNN_POOL_SPIN)
            spins++;
        pthread_mutex_lock(&pool->lock);
        while (atomic_load(&pool->generation) == seen && !pool->stopping)
            pthread_cond_wait(&pool->wake, &pool->lock);
        int stop = pool->stopping;
        pthread_mutex_unlock(&pool->lock);
        if (stop)
            return NULL;
        seen = atomic_load(&pool->generation);
        pool->fn(pool->arg, index, pool->threads);
        finish_job(pool);
    }
}

int cnn__available_cores(void)
{
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (n > 1024 ? 1024 : (int)n) : 1;
}

/* Stops and joins the first `started` workers, then frees the pool. */
static void pool_teardown(cnn_pool *pool, int started, worker_start *starts)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < started; i++)
        pthread_join(pool->workers[i], NULL);
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    cnn__free(starts);
    cnn__free(pool->workers);
    cnn__free(pool);
}

int cnn__pool_create(cnn_pool **out, int threads)
{
    *out = NULL;
    cnn_pool *pool = cnn__calloc(1, sizeof *pool);
    if (!pool)
        return 0;
    size_t workers = (size_t)(threads - 1);
    pool->threads = threads;
    pool->workers = cnn__calloc(workers ? workers : 1, sizeof *pool->workers);
    worker_start *starts = cnn__calloc(workers ? workers : 1, sizeof *starts);
    if (!pool->workers || !starts || pthread_mutex_init(&pool->lock, NULL) != 0) {
        cnn__free(starts);
        cnn__free(pool->workers);
        cnn__free(pool);
        return 0;
    }
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    atomic_init(&pool->generation, 0u);
    atomic_init(&pool->pending, 0);
    for (int i = 0; i < threads - 1; i++) {
        starts[i] = (worker_start){ pool, i + 1 };
        if (pthread_create(&pool->workers[i], NULL, worker_main, &starts[i]) != 0) {
            pool_teardown(pool, i, starts);
            return 0;
        }
    }
    pool->starts = starts;
    *out = pool;
    return 1;
}

void cnn__pool_destroy(cnn_pool *pool)
{
    if (pool)
        pool_teardown(pool, pool->threads - 1, pool->starts);
}

int cnn__pool_threads(const cnn_pool *pool) { return pool ? pool->threads : 1; }

void cnn__pool_run(cnn_pool *pool, cnn_pool_fn fn, void *arg)
{
    if (!pool || pool->threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store(&pool->pending, pool->threads - 1);
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add(&pool->generation, 1u);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    fn(arg, 0, pool->threads);
    while (atomic_load(&pool->pending) > 0) {
        int spins = 0;
        while (atomic_load(&pool->pending) > 0 && spins < CNN_POOL_SPIN)
            spins++;
        pthread_mutex_lock(&pool->lock);
        while (atomic_load(&pool->pending) > 0)
            pthread_cond_wait(&pool->done, &pool->lock);
        pthread_mutex_unlock(&pool->lock);
    }
}
