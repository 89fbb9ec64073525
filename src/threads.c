#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "threads.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"

/* How long a waiting thread (a worker between jobs, the caller waiting for a
 * worker's part) spins before it sleeps on a condition variable. A forward
 * pass runs its parallel loops with serial stretches between them (LeNet-5 at
 * batch 64: small dense layers, softmax, the next call's first layer: up to
 * tens of microseconds), and waking a sleeping thread is slow: on the 2-core
 * development VM a parallel loop of nothing took 0.3 us with the worker
 * spinning and 26-33 us with it asleep. The old budget (20000 spins, about
 * 10 us) sent the worker to sleep between most layers. Measured there, LeNet-5
 * batch 64 on 2 threads (ms per forward; with the pooling split as well):
 * 20000 spins 0.55-0.59, 10 us 0.51-0.57, 50 us 0.44, 100 us 0.44; spinning
 * 10 us and then polling with sched_yield up to 200 us gave the same as 50 us.
 * Spinning costs when another process keeps a core busy: there, with the
 * caller waiting for every part, 50 us took 1.2-2.0 ms (1 thread: 0.80, the
 * old spin 1.05); with the caller running the parts of workers that have not
 * started (below) and the budgets halving when spinning was in vain, 0.94-1.02.
 * After a forward's last parallel loop the workers spin this long for nothing,
 * then sleep. */
#define CNN_POOL_SPIN_NS 50000u

/* Spin budgets shrink by half, down to this, each time spinning was in vain
 * (see below), and return to CNN_POOL_SPIN_NS when it pays. */
#define CNN_POOL_MIN_SPIN_NS 2000u

/* The clock is read once per this many spins. */
#define CNN_POOL_SPINS_PER_CLOCK 32u

/* Bounded busy-waiting: keep_spinning() pauses once and says whether the
 * budget (limit_ns) allows another spin. */
typedef struct spin_budget {
    uint64_t deadline; /* 0 until the clock was first read */
    unsigned spins;
    uint64_t limit_ns;
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
        b->deadline = now + b->limit_ns;
    return now < b->deadline;
}

static uint64_t halved_budget(uint64_t ns)
{
    return ns / 2 > CNN_POOL_MIN_SPIN_NS ? ns / 2 : CNN_POOL_MIN_SPIN_NS;
}

/* Part t of a job is the call fn(arg, t, threads). The caller does part 0,
 * then every worker's part that its worker has not taken yet, so a job never
 * waits for a worker that is asleep or has no core (another process, or the
 * caller itself, holds it). Which thread runs a part does not change its
 * result, so results stay the same run after run. */
typedef struct job_part {
    _Alignas(64) atomic_uint taken; /* the last job (generation) whose part was taken */
    atomic_uint finished;           /* the last job whose part a worker finished */
} job_part;

struct cnn_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* workers wait here for a job */
    pthread_cond_t done; /* the caller waits here for a worker's part */
    atomic_uint generation; /* the current job's number, bumped once per run */
    int stopping;
    cnn_pool_fn fn;
    void *arg;
    job_part *parts;        /* [threads]; 0 is the caller's own */
    uint64_t caller_spin_ns; /* the caller's budget for waiting on a part */
    struct worker_start *starts; /* read by workers at start-up; freed with the pool */
};

typedef struct worker_start {
    cnn_pool *pool;
    int index;
} worker_start;

/* Takes part p of job `job` unless someone has: `taken` is that job (taken)
 * or an earlier one; a worker that read the generation late may find a later
 * one, which it must not take back. */
static int take_part(job_part *p, unsigned job)
{
    unsigned prev = atomic_load(&p->taken);
    unsigned ahead = job - prev;
    return ahead != 0 && ahead < 0x80000000u &&
           atomic_compare_exchange_strong(&p->taken, &prev, job);
}

/* Waits until the generation moves past `seen`; 0 when the pool is stopping. */
static int wait_for_job(cnn_pool *pool, unsigned seen, uint64_t spin_ns)
{
    spin_budget budget = { 0, 0, spin_ns };
    while (atomic_load(&pool->generation) == seen && keep_spinning(&budget))
        ;
    pthread_mutex_lock(&pool->lock);
    while (atomic_load(&pool->generation) == seen && !pool->stopping)
        pthread_cond_wait(&pool->wake, &pool->lock);
    int stop = pool->stopping;
    pthread_mutex_unlock(&pool->lock);
    return !stop;
}

/* A worker spins between jobs while it gets its parts; when the caller took
 * its part first (this worker woke or ran too late), it spins less next time. */
static void *worker_main(void *raw)
{
    worker_start *start = raw;
    cnn_pool *pool = start->pool;
    const int index = start->index;
    job_part *mine = &pool->parts[index];
    unsigned seen = 0;
    uint64_t spin_ns = CNN_POOL_SPIN_NS;
    while (wait_for_job(pool, seen, spin_ns)) {
        seen = atomic_load(&pool->generation);
        if (!take_part(mine, seen)) {
            spin_ns = halved_budget(spin_ns);
            continue;
        }
        pool->fn(pool->arg, index, pool->threads);
        atomic_store(&mine->finished, seen);
        pthread_mutex_lock(&pool->lock);
        pthread_cond_broadcast(&pool->done);
        pthread_mutex_unlock(&pool->lock);
        spin_ns = CNN_POOL_SPIN_NS;
    }
    return NULL;
}

/* The caller waits for a part a worker took. Its budget halves when the wait
 * outlasted it (the worker may be sharing the caller's core). */
static void wait_for_part(cnn_pool *pool, job_part *p, unsigned job)
{
    spin_budget budget = { 0, 0, pool->caller_spin_ns };
    while (atomic_load(&p->finished) != job && keep_spinning(&budget))
        ;
    if (atomic_load(&p->finished) == job) {
        pool->caller_spin_ns = CNN_POOL_SPIN_NS;
        return;
    }
    pool->caller_spin_ns = halved_budget(pool->caller_spin_ns);
    pthread_mutex_lock(&pool->lock);
    while (atomic_load(&p->finished) != job)
        pthread_cond_wait(&pool->done, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
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
    cnn__free(pool->parts);
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
    pool->parts = cnn__calloc((size_t)threads, sizeof *pool->parts);
    worker_start *starts = cnn__calloc(workers ? workers : 1, sizeof *starts);
    if (!pool->workers || !pool->parts || !starts ||
        pthread_mutex_init(&pool->lock, NULL) != 0) {
        cnn__free(starts);
        cnn__free(pool->parts);
        cnn__free(pool->workers);
        cnn__free(pool);
        return 0;
    }
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    atomic_init(&pool->generation, 0u);
    for (int t = 0; t < threads; t++) {
        atomic_init(&pool->parts[t].taken, 0u);
        atomic_init(&pool->parts[t].finished, 0u);
    }
    pool->caller_spin_ns = CNN_POOL_SPIN_NS;
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
    /* Written before the generation is published; a worker reads them only
     * after taking a part of this job, and the next run starts only when every
     * part taken has finished. */
    pool->fn = fn;
    pool->arg = arg;
    pthread_mutex_lock(&pool->lock);
    unsigned job = atomic_load(&pool->generation) + 1u;
    atomic_store(&pool->generation, job);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    fn(arg, 0, pool->threads);
    for (int t = 1; t < pool->threads; t++) {
        job_part *p = &pool->parts[t];
        if (take_part(p, job))
            fn(arg, t, pool->threads);
        else
            wait_for_part(pool, p, job);
    }
}
