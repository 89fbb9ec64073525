/* The thread pool (src/threads.c) on its own, compiled into this test with the
 * allocator stubbed: every part of every run runs exactly once, on any thread
 * count, with workers spinning or asleep; the caller takes the part of a
 * worker that has not started it; a worker that is awake takes its own. */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "support.h"
#include "threads.h"

/* threads.c allocates through these; job parts want 64-byte alignment. */
void *cnn__calloc(size_t count, size_t size)
{
    size_t bytes = count * size, rounded = (bytes + 63) / 64 * 64;
    void *block = aligned_alloc(64, rounded ? rounded : 64);
    if (block)
        memset(block, 0, rounded ? rounded : 64);
    return block;
}

void cnn__free(void *block) { free(block); }

#define MAX_PARTS 8

static void sleep_us(long us)
{
    struct timespec t = { us / 1000000, (us % 1000000) * 1000 };
    nanosleep(&t, NULL);
}

/* What one run's parts did. */
typedef struct record {
    atomic_int runs[MAX_PARTS];   /* how often each part ran */
    pthread_t who[MAX_PARTS];     /* the thread that ran it */
    atomic_int bad_threads;       /* calls with a wrong `threads` argument */
    int threads;
} record;

static void record_part(void *raw, int part, int threads)
{
    record *r = raw;
    if (threads != r->threads || part < 0 || part >= MAX_PARTS) {
        atomic_fetch_add(&r->bad_threads, 1);
        return;
    }
    r->who[part] = pthread_self();
    atomic_fetch_add(&r->runs[part], 1);
}

static void record_init(record *r, int threads)
{
    for (int t = 0; t < MAX_PARTS; t++)
        atomic_init(&r->runs[t], 0);
    atomic_init(&r->bad_threads, 0);
    r->threads = threads;
}

static void expect_each_part_once(record *r, int threads, int run)
{
    ck_assert_msg(atomic_load(&r->bad_threads) == 0, "run %d: a part saw the wrong count",
                  run);
    for (int t = 0; t < MAX_PARTS; t++) {
        int want = t < threads ? 1 : 0;
        ck_assert_msg(atomic_load(&r->runs[t]) == want,
                      "%d threads, run %d: part %d ran %d times", threads, run, t,
                      atomic_load(&r->runs[t]));
    }
}

START_TEST(every_part_runs_once)
{
    int runs = test_small() ? 40 : 400;
    for (int threads = 1; threads <= 6; threads++) {
        cnn_pool *pool = NULL;
        ck_assert_int_eq(cnn__pool_create(&pool, threads), 1);
        ck_assert_int_eq(cnn__pool_threads(pool), threads);
        for (int run = 0; run < runs; run++) {
            /* Now and then long enough for the workers to fall asleep. */
            if (run % 16 == 15)
                sleep_us(300);
            record r;
            record_init(&r, threads);
            cnn__pool_run(pool, record_part, &r);
            expect_each_part_once(&r, threads, run);
            ck_assert(pthread_equal(r.who[0], pthread_self()));
        }
        cnn__pool_destroy(pool);
    }
}
END_TEST

START_TEST(no_pool_runs_part_zero)
{
    record r;
    record_init(&r, 1);
    cnn__pool_run(NULL, record_part, &r);
    expect_each_part_once(&r, 1, 0);
    ck_assert_int_eq(cnn__pool_threads(NULL), 1);
}
END_TEST

/* A worker asleep (idle well past its spin) cannot wake before the caller has
 * run an empty part 0, so the caller runs part 1 as well; tried a few times. */
START_TEST(caller_takes_a_sleeping_workers_part)
{
    cnn_pool *pool = NULL;
    ck_assert_int_eq(cnn__pool_create(&pool, 2), 1);
    int taken = 0;
    for (int attempt = 0; attempt < 20 && !taken; attempt++) {
        sleep_us(5000);
        record r;
        record_init(&r, 2);
        cnn__pool_run(pool, record_part, &r);
        expect_each_part_once(&r, 2, attempt);
        taken = pthread_equal(r.who[1], pthread_self());
    }
    ck_assert_msg(taken, "the caller never ran the sleeping worker's part");
    cnn__pool_destroy(pool);
}
END_TEST

/* Part 0 waits until part 1 has started, so part 1 must run on the worker. */
typedef struct handshake {
    atomic_int started;
    int timed_out;
    pthread_t who;
} handshake;

static void wait_for_partner(void *raw, int part, int threads)
{
    handshake *h = raw;
    (void)threads;
    if (part == 1) {
        h->who = pthread_self();
        atomic_store(&h->started, 1);
        return;
    }
    time_t give_up = time(NULL) + 20;
    while (!atomic_load(&h->started)) {
        if (time(NULL) > give_up) {
            h->timed_out = 1;
            return;
        }
        sched_yield();
    }
}

START_TEST(worker_takes_its_part)
{
    cnn_pool *pool = NULL;
    ck_assert_int_eq(cnn__pool_create(&pool, 2), 1);
    for (int run = 0; run < 3; run++) {
        if (run == 2)
            sleep_us(5000); /* from sleep too */
        handshake h;
        atomic_init(&h.started, 0);
        h.timed_out = 0;
        cnn__pool_run(pool, wait_for_partner, &h);
        ck_assert_msg(!h.timed_out, "run %d: the worker never started its part", run);
        ck_assert_msg(!pthread_equal(h.who, pthread_self()),
                      "run %d: part 1 ran on the caller", run);
    }
    cnn__pool_destroy(pool);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_add_test(tc, every_part_runs_once);
    tcase_add_test(tc, no_pool_runs_part_zero);
    tcase_add_test(tc, caller_takes_a_sleeping_workers_part);
    tcase_add_test(tc, worker_takes_its_part);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
