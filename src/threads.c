#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"

/* How long a waiting thread (a worker between jobs, the caller waiting for
 * the workers) spins before it sleeps on a condition variable. A forward pass
 * runs its parallel loops with serial stretches between them (LeNet-5 at batch
 * 64: the small pooling and dense layers, softmax, the next call's first layer:
 * up to tens of microseconds), and waking a sleeping thread is slow: on the
 * 2-core development VM a parallel loop of nothing took 0.3 us with the worker
 * spinning and 26-33 us with it asleep. The old budget (20000 spins, about
 * 10 us) sent the worker to sleep between most layers. Measured there, LeNet-5
 * batch 64 on 2 threads (ms per forward; with the pooling split as well):
 * 20000 spins 0.55-0.59, 10 us 0.51-0.57, 50 us 0.44, 100 us 0.44; spinning
 * 10 us and then polling with sched_yield up to 200 us gave the same as 50 us.
 * The price is paid when another process keeps a core busy: then 2 threads
 * are slower than 1 anyway, and 50 us made them about 10% slower again
 * (0.89 -> 0.97 ms; the yielding variant no better). After a forward's last
 * parallel loop the workers spin this long for nothing, then sleep. */
#define CNN_POOL_SPIN_NS 50000u

/* The clock is read once per this many spins. */
#define CNN_POOL_SPINS_PER_CLOCK 32u

/* Bounded busy-waiting: keep_spinning() pauses once and says whether the
 * budget allows another spin. */
typedef struct spin_budget {
    uint64_t deadline; /* 0 until the clock was first read */
    unsigned spins;
} spin_budget;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int keep_spinning(spin_budget *b)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause(); /* tells the core this is a spin loop */
#endif
    if (++b->spins % CNN_POOL_SPINS_PER_CLOCK != 0)
        return 1;
    uint64_t now = now_ns();
    if (b->deadline == 0)
        b->deadline = now + CNN_POOL_SPIN_NS;
    return now < b->deadline;
}

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
        spin_budget budget = { 0, 0 };
        while (atomic_load(&pool->generation) == seen && keep_spinning(&budget))
            ;
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
        spin_budget budget = { 0, 0 };
        while (atomic_load(&pool->pending) > 0 && keep_spinning(&budget))
            ;
        pthread_mutex_lock(&pool->lock);
        while (atomic_load(&pool->pending) > 0)
            pthread_cond_wait(&pool->done, &pool->lock);
        pthread_mutex_unlock(&pool->lock);
    }
}
