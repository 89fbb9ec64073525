/* libcnn convolution benchmark: each layer of the suite against the ceiling of
 * its im2col lowering, one cblas_sgemm of the layer's whole GEMM shape, timed
 * in the same repetitions; then LeNet-5 end to end. Reports ratios because the
 * machine it runs on is shared and noisy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cblas.h>
#include <cnn.h>

#include "bench_common.h"

/* Bytes libcnn asked its allocator for, to cross-check cnn_net_workspace_size:
 * a one-layer net allocates nothing in its first forward but its scratch (and,
 * above one thread, its small thread pool). */
static size_t allocated_bytes;

static void *counting_alloc(void *user, size_t size)
{
    (void)user;
    allocated_bytes += size;
    return malloc(size);
}

static void counting_free(void *user, void *block)
{
    (void)user;
    free(block);
}

static int fail(const cnn_net *net, const char *what, cnn_status status)
{
    fprintf(stderr, "conv_bench: %s failed: %s\n  %s\n", what, cnn_status_string(status),
            cnn_net_last_error(net));
    return 1;
}

/* Threads of the current run: libcnn nets get them through cnn_net_set_threads
 * (libcnn keeps OpenBLAS single-threaded inside cnn_forward and splits work over
 * its own threads); the ceiling gets them through OpenBLAS's own count. */
static int run_threads = 1;

/* Sets OpenBLAS's thread count for the ceiling and remembers the count for the
 * libcnn nets. Returns the count to label results with (0: unknown). */
static int set_blas_threads(int threads)
{
    run_threads = threads;
#ifdef BENCH_HAVE_OPENBLAS_THREADS
    openblas_set_num_threads(threads);
    int got = openblas_get_num_threads();
    if (got != threads)
        fprintf(stderr, "conv_bench: asked OpenBLAS for %d threads, it uses %d\n", threads, got);
    return got;
#else
    (void)threads;
    return 0;
#endif
}

/* ---- one convolution layer against its GEMM ceiling ---- */

typedef struct conv_case {
    const bench_layer *layer;
    cnn_net *net;
    float *input, *output;        /* libcnn: NHWC */
    float *columns, *weights, *c; /* ceiling: A[m x k] (random), B[n x k] (the layer's OHWI weights), C */
    int batch, gemm_m, gemm_n, gemm_k;
    char note[64]; /* CSV note: set when the first forward allocates more than reported */
    size_t workspace; /* cnn_net_workspace_size for this batch and thread count */
} conv_case;

static void run_libcnn(void *ctx)
{
    conv_case *cc = ctx;
    cnn_forward(cc->net, cc->input, cc->batch, cc->output);
}

static void run_ceiling(void *ctx)
{
    conv_case *cc = ctx;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cc->gemm_m, cc->gemm_n, cc->gemm_k,
                1.0f, cc->columns, cc->gemm_k, cc->weights, cc->gemm_k, 0.0f, cc->c, cc->gemm_n);
}

static void free_conv_case(conv_case *cc)
{
    cnn_net_destroy(cc->net);
    free(cc->input), free(cc->output), free(cc->columns), free(cc->weights), free(cc->c);
}

static int setup_conv_case(const bench_layer *l, conv_case *cc)
{
    *cc = (conv_case){ l, NULL, NULL, NULL, NULL, NULL, NULL, l->n, (int)bench_gemm_m(l),
                       l->cout, (int)bench_gemm_k(l), "", 0 };
    cnn_status st = cnn_net_create(&cc->net, l->h, l->w, l->cin);
    if (st != CNN_OK)
        return fail(NULL, "cnn_net_create", st);
    cnn_conv_desc conv = CNN_CONV_DESC_INIT;
    conv.filters = l->cout;
    conv.kernel_h = conv.kernel_w = l->kernel;
    conv.stride_h = conv.stride_w = l->stride;
    conv.pad_h = conv.pad_w = l->pad;
    if ((st = cnn_net_set_threads(cc->net, run_threads)) != CNN_OK)
        return fail(cc->net, "cnn_net_set_threads", st);
    if ((st = cnn_layer_add_conv(cc->net, &conv, NULL)) != CNN_OK)
        return fail(cc->net, "cnn_layer_add_conv", st);
    if ((st = cnn_net_init_params(cc->net, CNN_INIT_HE_NORMAL, 7)) != CNN_OK)
        return fail(cc->net, "cnn_net_init_params", st);
    cc->input = bench_alloc_floats(bench_input_floats(l));
    cc->output = bench_alloc_floats(bench_output_floats(l));
    cc->columns = bench_alloc_floats(bench_gemm_m(l) * bench_gemm_k(l));
    cc->weights = bench_alloc_floats(bench_weight_floats(l));
    cc->c = bench_alloc_floats(bench_output_floats(l));
    if (!cc->input || !cc->output || !cc->columns || !cc->weights || !cc->c) {
        fprintf(stderr, "conv_bench: out of memory for %s\n", l->name);
        return 1;
    }
    bench_fill(cc->input, bench_input_floats(l), 1);
    bench_fill(cc->columns, bench_gemm_m(l) * bench_gemm_k(l), 2);
    if ((st = cnn_layer_get_weights(cc->net, 0, cc->weights, bench_weight_floats(l),
                                    CNN_LAYOUT_NATIVE)) != CNN_OK)
        return fail(cc->net, "cnn_layer_get_weights", st);
    /* The bias is zero after cnn_net_init_params; the check below relies on it. */
    if ((st = cnn_net_workspace_size(cc->net, l->n, &cc->workspace)) != CNN_OK)
        return fail(cc->net, "cnn_net_workspace_size", st);
    size_t before = allocated_bytes;
    if ((st = cnn_forward(cc->net, cc->input, l->n, cc->output)) != CNN_OK)
        return fail(cc->net, "cnn_forward", st);
    /* Each block carries a little alignment overhead; a thread pool a few small blocks. */
    double planned = (double)(allocated_bytes - before), reported = (double)cc->workspace;
    if (planned < reported || planned > reported + 4096.0) {
        snprintf(cc->note, sizeof cc->note, "first forward allocated %.0f bytes", planned);
        fprintf(stderr, "conv_bench: %s: cnn_net_workspace_size says %.0f bytes, but the first "
                        "forward allocated %.0f bytes\n", l->name, reported, planned);
    }
    double err = bench_spot_check(l, cc->input, cc->weights, NULL, cc->output, 64);
    if (!(err < 1e-4)) {
        fprintf(stderr, "conv_bench: %s: libcnn output differs from a direct convolution "
                        "(relative error %.3g)\n", l->name, err);
        return 1;
    }
    return 0;
}

static void print_conv_header(void)
{
    printf("%-13s %3s %-26s %9s %8s %9s %7s %15s %11s\n", "case", "thr",
           "N HxWxCin>Cout k/s/p", "ms", "GFLOP/s", "ceil GF/s", "ratio", "ratio min..max",
           "ws bytes");
}

static int bench_conv(const bench_layer *l, int threads, const bench_options *opts, FILE *csv)
{
    conv_case cc;
    if (setup_conv_case(l, &cc)) {
        free_conv_case(&cc);
        return 1;
    }
    bench_pair pair = { run_libcnn, run_ceiling, &cc };
    bench_pair_result res;
    int ok = bench_time_pair(&pair, opts, &res);
    char note[sizeof cc.note];
    snprintf(note, sizeof note, "%s", cc.note);
    double ws = (double)cc.workspace;
    free_conv_case(&cc);
    if (!ok) {
        fprintf(stderr, "conv_bench: out of memory timing %s\n", l->name);
        return 1;
    }
    double flops = bench_flops(l);
    double gflops = flops / (res.a_ms * 1e6), ceiling = flops / (res.b_ms * 1e6);
    char shape[64];
    snprintf(shape, sizeof shape, "%d %dx%dx%d>%d %d/%d/%d", l->n, l->h, l->w, l->cin, l->cout,
             l->kernel, l->stride, l->pad);
    printf("%-13s %3d %-26s %9.4f %8.2f %9.2f %7.3f %7.3f..%-6.3f %11.0f\n", l->name, threads,
           shape, res.a_ms, gflops, ceiling, res.ratio[0], res.ratio[1], res.ratio[2], ws);
    fflush(stdout);
    bench_csv_row(csv, "libcnn", "conv", l->name, threads, l->n, res.a_ms, gflops, ceiling,
                  res.ratio, ws, "cnn_net_workspace_size", NAN, note, opts->reps);
    return 0;
}

/* ---- LeNet-5 end to end ---- */

typedef struct lenet_case {
    cnn_net *net;
    float *input, *output;
    int batch;
} lenet_case;

static void run_lenet(void *ctx)
{
    lenet_case *lc = ctx;
    cnn_forward(lc->net, lc->input, lc->batch, lc->output);
}

static cnn_status build_lenet(cnn_net **out)
{
    cnn_net *net = NULL;
    cnn_status st = cnn_net_create(&net, 28, 28, 1);
    if (st == CNN_OK)
        st = cnn_net_set_threads(net, run_threads);
    cnn_conv_desc conv = CNN_CONV_DESC_INIT;
    cnn_pool_desc pool = CNN_POOL_DESC_INIT; /* 2x2 max, stride 2 */
    conv.kernel_h = conv.kernel_w = 5;
    if (st == CNN_OK) {
        conv.filters = 6;
        conv.pad_h = conv.pad_w = 2;
        st = cnn_layer_add_conv(net, &conv, NULL);
    }
    if (st == CNN_OK)
        st = cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL);
    if (st == CNN_OK)
        st = cnn_layer_add_pool(net, &pool, NULL);
    if (st == CNN_OK) {
        conv.filters = 16;
        conv.pad_h = conv.pad_w = 0;
        st = cnn_layer_add_conv(net, &conv, NULL);
    }
    if (st == CNN_OK)
        st = cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL);
    if (st == CNN_OK)
        st = cnn_layer_add_pool(net, &pool, NULL);
    const int units[3] = { 120, 84, 10 };
    for (int i = 0; i < 3 && st == CNN_OK; i++) {
        st = cnn_layer_add_dense(net, units[i], 1, NULL);
        if (st == CNN_OK && i < 2)
            st = cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL);
    }
    if (st == CNN_OK)
        st = cnn_layer_add_softmax(net, NULL);
    if (st == CNN_OK)
        st = cnn_net_init_params(net, CNN_INIT_HE_NORMAL, 5);
    if (st != CNN_OK)
        fail(net, "building LeNet-5", st);
    *out = net;
    return st;
}

static int bench_lenet(int batch, int threads, const bench_options *opts, FILE *csv)
{
    char name[32];
    snprintf(name, sizeof name, "lenet5_b%d", batch);
    if (!bench_selected(opts, name))
        return 0;
    lenet_case lc = { NULL, bench_alloc_floats((size_t)batch * 28 * 28),
                      bench_alloc_floats((size_t)batch * 10), batch };
    uint64_t flops_per_image = 0;
    int err = !lc.input || !lc.output || build_lenet(&lc.net) != CNN_OK ||
              cnn_net_flops(lc.net, &flops_per_image) != CNN_OK;
    if (!err) {
        bench_fill(lc.input, (size_t)batch * 28 * 28, 3);
        cnn_status st = cnn_forward(lc.net, lc.input, batch, lc.output);
        err = st != CNN_OK && fail(lc.net, "cnn_forward (LeNet-5)", st);
    }
    bench_pair_result res;
    bench_pair pair = { run_lenet, NULL, &lc };
    if (!err && !bench_time_pair(&pair, opts, &res))
        err = 1;
    cnn_net_destroy(lc.net);
    free(lc.input), free(lc.output);
    if (err)
        return 1;
    double images_per_s = batch / (res.a_ms * 1e-3);
    double gflops = (double)flops_per_image * batch / (res.a_ms * 1e6);
    printf("%-13s %3d %-26s %9.4f %8.2f %9s %7s %15s %11s  %.0f images/s\n", name, threads,
           batch == 1 ? "1 28x28x1 LeNet-5" : "64 28x28x1 LeNet-5", res.a_ms, gflops, "", "",
           "", "", images_per_s);
    fflush(stdout);
    bench_csv_row(csv, "libcnn", "e2e", name, threads, batch, res.a_ms, gflops, NAN, NULL, NAN,
                  "", images_per_s, "", opts->reps);
    return 0;
}

/* OpenBLAS's idle workers spin for 2^OPENBLAS_THREAD_TIMEOUT cycles (default
 * 2^28, tens of milliseconds) after each threaded call. Interleaved with the
 * ceiling's threaded sgemm, that spinning would take the second core from
 * libcnn's own threads, so the bench runs with the shortest timeout (4). The
 * variable is read when OpenBLAS loads, hence the re-exec. Set it yourself to
 * measure with another value. */
static void ensure_short_blas_spin(char **argv)
{
    if (getenv("OPENBLAS_THREAD_TIMEOUT"))
        return;
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    execv("/proc/self/exe", argv);
    /* No /proc: run on with OpenBLAS's default and say so. */
    fprintf(stderr, "conv_bench: could not re-exec with OPENBLAS_THREAD_TIMEOUT=4; "
                    "2-thread ratios may suffer from OpenBLAS's spinning workers\n");
}

int main(int argc, char **argv)
{
    ensure_short_blas_spin(argv);
    bench_options opts;
    int parsed = bench_parse_options(argc, argv, "conv_bench", NULL, &opts);
    if (parsed)
        return parsed > 0 ? 0 : 2;
    const cnn_allocator counting = { sizeof counting, counting_alloc, counting_free, NULL };
    cnn_status st = cnn_set_allocator(&counting); /* before any net exists */
    if (st != CNN_OK)
        return fail(NULL, "cnn_set_allocator", st);
    FILE *csv = NULL;
    if (opts.csv_path && !(csv = bench_csv_open(opts.csv_path, 0))) {
        fprintf(stderr, "conv_bench: cannot write %s\n", opts.csv_path);
        return 2;
    }
    printf("libcnn %s conv benchmark%s: %d repetitions x %d samples per case\n",
           cnn_version_string(), opts.quick ? " (--quick: smoke run, noisy)" : "", opts.reps,
           opts.samples);
#ifdef BENCH_HAVE_OPENBLAS_THREADS
    printf("OpenBLAS: %s (core %s)\n", openblas_get_config(), openblas_get_corename());
#else
    printf("BLAS without openblas_set_num_threads: thread counts cannot be set (labelled 0)\n");
    opts.thread_count_len = 1;
#endif
    printf("GFLOP/s counts 2*N*OH*OW*Cout*KH*KW*Cin; ceil = one cblas_sgemm of the layer's whole "
           "im2col GEMM;\nratio = ceil time / libcnn time per repetition (median, min..max); "
           "ws bytes = cnn_net_workspace_size (all threads' column buffers).\n");
    int failures = 0;
    for (int t = 0; t < opts.thread_count_len; t++) {
        int threads = set_blas_threads(opts.threads[t]);
        printf("\n");
        print_conv_header();
        for (size_t i = 0; i < bench_suite_len; i++)
            if (bench_selected(&opts, bench_suite[i].name))
                failures += bench_conv(&bench_suite[i], threads, &opts, csv);
        failures += bench_lenet(1, threads, &opts, csv);
        failures += bench_lenet(64, threads, &opts, csv);
    }
    if (csv && fclose(csv) != 0) {
        fprintf(stderr, "conv_bench: writing %s failed\n", opts.csv_path);
        failures++;
    }
    return failures ? 1 : 0;
}
