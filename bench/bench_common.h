/* What conv_bench and onednn_bench share: the layer suite, command-line
 * options, timing statistics, a seeded fill, a spot check against a direct
 * convolution, and CSV output. Uses no libcnn and no BLAS. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One convolution of the fixed suite; square kernel, equal strides and pads. */
typedef struct bench_layer {
    const char *name;
    int n, h, w, cin, cout, kernel, stride, pad;
} bench_layer;

extern const bench_layer bench_suite[];
extern const size_t bench_suite_len;

int bench_out_h(const bench_layer *l);
int bench_out_w(const bench_layer *l);
/* The im2col GEMM of the whole layer: C[m x n] = A[m x k] * B[n x k]^T. */
size_t bench_gemm_m(const bench_layer *l);
size_t bench_gemm_k(const bench_layer *l);
/* 2*N*OH*OW*Cout*KH*KW*Cin: multiply-adds only, as the GEMM counts them. */
double bench_flops(const bench_layer *l);
size_t bench_input_floats(const bench_layer *l);
size_t bench_output_floats(const bench_layer *l);
size_t bench_weight_floats(const bench_layer *l);

#define BENCH_MAX_THREAD_COUNTS 8

typedef struct bench_options {
    int quick;                                /* few repetitions, for smoke runs */
    int threads[BENCH_MAX_THREAD_COUNTS];     /* thread counts to run, in order */
    int thread_count_len;
    const char *csv_path;                     /* NULL: no CSV */
    const char *filter;                       /* NULL: every case; else a substring of the name */
    int reps;                                 /* repetitions (each gives one ratio), >= 5 */
    int samples;                              /* timed samples per implementation per repetition */
    double sample_ms;                         /* a sample repeats the call until it lasts this long */
} bench_options;

/* Parses --quick, --threads LIST, --csv FILE, --filter NAME, --reps N,
 * --samples N, --help. Returns 0 on success, 1 after printing usage for --help,
 * -1 after printing an error. */
int bench_parse_options(int argc, char **argv, const char *program, const char *extra_usage,
                        bench_options *opts);
int bench_selected(const bench_options *opts, const char *name);

/* Two implementations timed side by side, sample by sample, so that both see
 * the same moments of a noisy machine. Each repetition gives one ratio. */
typedef struct bench_pair {
    void (*run_a)(void *ctx);
    void (*run_b)(void *ctx); /* NULL: time only run_a */
    void *ctx;
} bench_pair;

typedef struct bench_pair_result {
    double a_ms, b_ms; /* median over all samples, ms per call (b_ms NaN without run_b) */
    double ratio[3];   /* median, min, max over repetitions of b_ms / a_ms (NaN without run_b) */
} bench_pair_result;

/* Warm-up (at least 3 calls and ~50 ms, quick ~10 ms, per implementation),
 * then opts->reps repetitions of opts->samples alternating samples; a sample
 * repeats the call until it lasts about opts->sample_ms. Returns 0 when out
 * of memory. */
int bench_time_pair(const bench_pair *pair, const bench_options *opts, bench_pair_result *res);

/* Monotonic clock in milliseconds. */
double bench_now_ms(void);
/* Median of `count` values (sorts a copy); NaN for count 0. */
double bench_median(const double *values, size_t count);
double bench_min(const double *values, size_t count);
double bench_max(const double *values, size_t count);

/* Deterministic uniform fill in [-1, 1). */
void bench_fill(float *x, size_t count, uint64_t seed);
/* Allocates `count` floats aligned to 64 bytes; NULL on failure. Free with free(). */
float *bench_alloc_floats(size_t count);

/* Compares `samples` output elements picked across the tensor with a direct
 * convolution in double precision. Weights OHWI, activations NHWC, bias may be
 * NULL. Returns the normwise relative error over the samples. */
double bench_spot_check(const bench_layer *l, const float *input, const float *weights,
                        const float *bias, const float *output, int samples);

/* CSV: one schema for every program so the driver can join the files. */
FILE *bench_csv_open(const char *path, int append);
void bench_csv_row(FILE *csv, const char *impl, const char *kind, const char *name, int threads,
                   int batch, double ms, double gflops, double ceiling_gflops,
                   const double ratio_median_min_max[3], double ws_bytes, const char *ws_source,
                   double images_per_s, const char *note, int reps);

#endif
