/* Throughput of the activation and pooling kernels (src/kernels), as ratios
 * measured in one run:
 *   - ReLU, leaky ReLU, max and average pooling against memcpy moving the same
 *     bytes (read + written), on tensors larger than L2;
 *   - sigmoid and tanh, AVX2 against the portable libm loop.
 * Every figure is the median of REPS repetitions. The machine is shared and noisy:
 * compare the ratios, not the seconds. Usage: kernel_bench [MiB per tensor, 32] */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/activation.h"
#include "kernels/cpu.h"
#include "kernels/pool.h"

#define REPS 9

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return v[n / 2];
}

static float *alloc_floats(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (!p) {
        fprintf(stderr, "kernel_bench: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    memset(p, 0, bytes); /* fault the pages in before timing */
    return p;
}

/* What one timed call does: `run(job)` `inner` times. */
typedef struct job {
    const cnn_activation_kernels *act;
    const cnn_pool_kernels *pool;
    const cnn_pool_geometry *geo;
    float *y;
    const float *x;
    size_t n;
    int inner;
} job;

typedef void (*job_fn)(const job *j);

static double time_median(job_fn run, const job *j)
{
    double t[REPS];
    run(j); /* warm-up */
    for (int r = 0; r < REPS; r++) {
        double t0 = now();
        run(j);
        t[r] = now() - t0;
    }
    return median(t, REPS);
}

static void run_memcpy(const job *j)
{
    for (int i = 0; i < j->inner; i++)
        memcpy(j->y, j->x, j->n * sizeof(float));
}
static void run_relu(const job *j)
{
    for (int i = 0; i < j->inner; i++)
        j->act->relu(j->y, j->x, j->n);
}
static void run_leaky(const job *j)
{
    for (int i = 0; i < j->inner; i++)
        j->act->leaky_relu(j->y, j->x, j->n, 0.01f);
}
static void run_sigmoid(const job *j)
{
    for (int i = 0; i < j->inner; i++)
        j->act->sigmoid(j->y, j->x, j->n);
}
static void run_tanh(const job *j)
{
    for (int i = 0; i < j->inner; i++)
        j->act->tanh(j->y, j->x, j->n);
}
static void run_pool_max(const job *j) { j->pool->max(j->geo, j->x, j->y, 1); }
static void run_pool_avg(const job *j) { j->pool->avg(j->geo, j->x, j->y, 1, 1); }

/* Data in [-4, 4) with about half the values negative, so ReLU's select is not uniform. */
static void fill(float *x, size_t n)
{
    unsigned s = 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = (float)(s >> 8) * (8.0f / 16777216.0f) - 4.0f;
    }
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 32;
    if (mib < 1)
        mib = 1;
    const size_t n = mib * ((size_t)1 << 20) / sizeof(float);
    const cnn_activation_kernels *avx2 = cnn__activation_avx2();
    const cnn_pool_kernels *avx2_pool = cnn__pool_avx2();
    const cnn_activation_kernels *portable = &cnn__activation_portable;
    const cnn_activation_kernels *fast = avx2 ? avx2 : portable;
    const cnn_pool_kernels *fast_pool = avx2_pool ? avx2_pool : &cnn__pool_portable;
    printf("kernel_bench: %zu MiB tensors, median of %d reps; AVX2 path: %s\n", mib, REPS,
           avx2 ? "yes" : "NOT AVAILABLE (portable path measured twice)");

    float *x = alloc_floats(n), *y = alloc_floats(n);
    fill(x, n);

    job j = { fast, fast_pool, NULL, y, x, n, 1 };
    const double t_copy = time_median(run_memcpy, &j);
    const double copy_bw = 2.0 * (double)n * sizeof(float) / t_copy; /* read + written */
    printf("memcpy                      %8.2f GB/s (reference)\n", copy_bw * 1e-9);

    /* Element-wise: n floats read, n written. */
    static const struct {
        const char *name;
        job_fn fn;
    } elementwise[] = { { "relu", run_relu }, { "leaky_relu", run_leaky } };
    for (size_t i = 0; i < 2; i++) {
        j.act = fast;
        double t = time_median(elementwise[i].fn, &j);
        j.act = portable;
        double tp = time_median(elementwise[i].fn, &j);
        printf("%-10s %-16s %8.2f GB/s  %.2fx memcpy (portable loop %.2fx memcpy)\n",
               elementwise[i].name, avx2 ? "avx2" : "portable",
               2.0 * (double)n * sizeof(float) / t * 1e-9, t_copy / t, t_copy / tp);
    }

    /* Pooling on a 1 x H x W x 32 NHWC tensor of the same size. */
    const int channels = 32;
    int side = 1;
    while ((size_t)(side + 1) * (size_t)(side + 1) * (size_t)channels <= n)
        side++;
    static const struct {
        const char *name;
        int window, stride, pad;
    } shapes[] = { { "2x2/2", 2, 2, 0 }, { "3x3/2 pad 1", 3, 2, 1 } };
    for (size_t s = 0; s < 2; s++) {
        int out = (side + 2 * shapes[s].pad - shapes[s].window) / shapes[s].stride + 1;
        cnn_pool_geometry g = { side,   side,   channels, out, out, shapes[s].window, shapes[s].window,
                                shapes[s].stride, shapes[s].stride, shapes[s].pad, shapes[s].pad };
        size_t bytes = ((size_t)side * (size_t)side + (size_t)out * (size_t)out) *
                       (size_t)channels * sizeof(float);
        j.geo = &g;
        for (int kind = 0; kind < 2; kind++) {
            job_fn fn = kind ? run_pool_avg : run_pool_max;
            j.pool = fast_pool;
            double t = time_median(fn, &j);
            j.pool = &cnn__pool_portable;
            double tp = time_median(fn, &j);
            double bw = (double)bytes / t;
            printf("pool %s %-12s %8.2f GB/s  %.2fx memcpy (portable loop %.2fx memcpy)\n",
                   kind ? "avg" : "max", shapes[s].name, bw * 1e-9, bw / copy_bw,
                   (double)bytes / tp / copy_bw);
        }
    }

    /* sigmoid / tanh: vector against the libm loop, on the big tensor and on a
     * 64 KiB one (cache-resident, repeated) where memory does not cap the gain. */
    const size_t small = 16384;
    static const struct {
        const char *name;
        job_fn fn;
    } maps[] = { { "sigmoid", run_sigmoid }, { "tanh", run_tanh } };
    for (size_t i = 0; i < 2; i++) {
        job big = { fast, NULL, NULL, y, x, n, 1 };
        job tiny = { fast, NULL, NULL, y, x, small, (int)(n / small) };
        double t_big = time_median(maps[i].fn, &big), t_tiny = time_median(maps[i].fn, &tiny);
        big.act = tiny.act = portable;
        double tp_big = time_median(maps[i].fn, &big), tp_tiny = time_median(maps[i].fn, &tiny);
        printf("%-8s speedup over the libm loop: %.2fx (%zu MiB), %.2fx (64 KiB in cache); "
               "%.2fx memcpy at %zu MiB\n",
               maps[i].name, tp_big / t_big, mib, tp_tiny / t_tiny, t_copy / t_big, mib);
    }
    printf("dispatch: cnn__* kernels take the %s path in this process\n",
           cnn__cpu_use_avx2() && avx2 ? "AVX2" : "portable");
    free(x);
    free(y);
    return 0;
}
