/* The conv suite of conv_bench through oneDNN's C API (v2.x): NHWC source and
 * destination, weights in the format oneDNN picks (reordered once, outside the
 * timing), forward_inference, bias, user-managed scratchpad (its size is the
 * workspace reported). Same timing method as conv_bench.
 *
 * oneDNN runs on OpenMP, which reads OMP_NUM_THREADS and OMP_WAIT_POLICY when
 * the process starts; so each thread count runs in its own process: this
 * program re-executes itself with those variables set. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include "bench_common.h"

static int dnnl_failed(dnnl_status_t status, const char *what, const char *layer)
{
    if (status == dnnl_success)
        return 0;
    fprintf(stderr, "onednn_bench: %s: %s failed: %s\n", layer, what, dnnl_status2str(status));
    return 1;
}

#define TRY(call) \
    do { \
        if (dnnl_failed((call), #call, l->name)) \
            return 1; \
    } while (0)

typedef struct onednn_case {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t conv;
    dnnl_memory_t src, user_weights, weights, bias, dst, scratchpad;
    float *input, *weights_ohwi, *bias_values, *output;
    size_t scratchpad_bytes;
    char impl[64];
} onednn_case;

static void run_onednn(void *ctx)
{
    onednn_case *oc = ctx;
    dnnl_exec_arg_t args[5] = {
        { DNNL_ARG_SRC, oc->src }, { DNNL_ARG_WEIGHTS, oc->weights },
        { DNNL_ARG_BIAS, oc->bias }, { DNNL_ARG_DST, oc->dst },
        { DNNL_ARG_SCRATCHPAD, oc->scratchpad },
    };
    dnnl_primitive_execute(oc->conv, oc->stream, oc->scratchpad ? 5 : 4, args);
    dnnl_stream_wait(oc->stream);
}

static void free_onednn_case(onednn_case *oc)
{
    dnnl_memory_t mems[6] = { oc->src, oc->user_weights, oc->weights, oc->bias, oc->dst,
                              oc->scratchpad };
    for (int i = 0; i < 6; i++)
        if (mems[i] && (i != 2 || mems[i] != oc->user_weights))
            dnnl_memory_destroy(mems[i]);
    if (oc->conv)
        dnnl_primitive_destroy(oc->conv);
    if (oc->pd)
        dnnl_primitive_desc_destroy(oc->pd);
    free(oc->input), free(oc->weights_ohwi), free(oc->bias_values), free(oc->output);
}

/* Weights go to the layout the primitive chose, once. */
static int reorder_weights(const bench_layer *l, onednn_case *oc, const dnnl_memory_desc_t *from,
                           const dnnl_memory_desc_t *to)
{
    if (dnnl_memory_desc_equal(from, to)) {
        oc->weights = oc->user_weights;
        return 0;
    }
    dnnl_primitive_desc_t reorder_pd;
    dnnl_primitive_t reorder;
    TRY(dnnl_memory_create(&oc->weights, to, oc->engine, DNNL_MEMORY_ALLOCATE));
    TRY(dnnl_reorder_primitive_desc_create(&reorder_pd, from, oc->engine, to, oc->engine, NULL));
    dnnl_status_t st = dnnl_primitive_create(&reorder, reorder_pd);
    dnnl_primitive_desc_destroy(reorder_pd);
    TRY(st);
    dnnl_exec_arg_t args[2] = { { DNNL_ARG_FROM, oc->user_weights }, { DNNL_ARG_TO, oc->weights } };
    st = dnnl_primitive_execute(reorder, oc->stream, 2, args);
    if (st == dnnl_success)
        st = dnnl_stream_wait(oc->stream);
    dnnl_primitive_destroy(reorder);
    TRY(st);
    return 0;
}

static int setup_onednn_case(const bench_layer *l, onednn_case *oc)
{
    const dnnl_dim_t n = l->n, ci = l->cin, co = l->cout, k = l->kernel;
    dnnl_dims_t src_dims = { n, ci, l->h, l->w }, wei_dims = { co, ci, k, k }, bias_dims = { co };
    dnnl_dims_t dst_dims = { n, co, bench_out_h(l), bench_out_w(l) };
    dnnl_dims_t strides = { l->stride, l->stride }, pads = { l->pad, l->pad };
    dnnl_memory_desc_t src_md, wei_any_md, wei_user_md, bias_md, dst_md;
    TRY(dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, dnnl_f32, dnnl_nhwc));
    TRY(dnnl_memory_desc_init_by_tag(&wei_any_md, 4, wei_dims, dnnl_f32, dnnl_format_tag_any));
    TRY(dnnl_memory_desc_init_by_tag(&wei_user_md, 4, wei_dims, dnnl_f32, dnnl_ohwi));
    TRY(dnnl_memory_desc_init_by_tag(&bias_md, 1, bias_dims, dnnl_f32, dnnl_x));
    TRY(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, dnnl_f32, dnnl_nhwc));

    dnnl_convolution_desc_t conv_desc;
    TRY(dnnl_convolution_forward_desc_init(&conv_desc, dnnl_forward_inference,
                                           dnnl_convolution_direct, &src_md, &wei_any_md,
                                           &bias_md, &dst_md, strides, pads, pads));
    dnnl_primitive_attr_t attr;
    TRY(dnnl_primitive_attr_create(&attr));
    dnnl_status_t st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&oc->pd, &conv_desc, attr, oc->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    TRY(st);
    TRY(dnnl_primitive_create(&oc->conv, oc->pd));
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(oc->pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
        impl)
        snprintf(oc->impl, sizeof oc->impl, "%s", impl);
    for (char *c = oc->impl; *c; c++)
        *c = *c == ',' ? ';' : *c; /* kept out of the CSV's separators */

    oc->input = bench_alloc_floats(bench_input_floats(l));
    oc->output = bench_alloc_floats(bench_output_floats(l));
    oc->weights_ohwi = bench_alloc_floats(bench_weight_floats(l));
    oc->bias_values = bench_alloc_floats((size_t)l->cout);
    if (!oc->input || !oc->output || !oc->weights_ohwi || !oc->bias_values) {
        fprintf(stderr, "onednn_bench: out of memory for %s\n", l->name);
        return 1;
    }
    bench_fill(oc->input, bench_input_floats(l), 1);
    bench_fill(oc->weights_ohwi, bench_weight_floats(l), 4);
    bench_fill(oc->bias_values, (size_t)l->cout, 5);

    const dnnl_memory_desc_t *wei_md = dnnl_primitive_desc_query_md(oc->pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *pad_md = dnnl_primitive_desc_query_md(oc->pd, dnnl_query_scratchpad_md, 0);
    TRY(dnnl_memory_create(&oc->src, &src_md, oc->engine, oc->input));
    TRY(dnnl_memory_create(&oc->dst, &dst_md, oc->engine, oc->output));
    TRY(dnnl_memory_create(&oc->bias, &bias_md, oc->engine, oc->bias_values));
    TRY(dnnl_memory_create(&oc->user_weights, &wei_user_md, oc->engine, oc->weights_ohwi));
    if (!wei_md) {
        fprintf(stderr, "onednn_bench: %s: no weights memory descriptor\n", l->name);
        return 1;
    }
    if (reorder_weights(l, oc, &wei_user_md, wei_md))
        return 1;
    oc->scratchpad_bytes = pad_md ? dnnl_memory_desc_get_size(pad_md) : 0;
    if (oc->scratchpad_bytes)
        TRY(dnnl_memory_create(&oc->scratchpad, pad_md, oc->engine, DNNL_MEMORY_ALLOCATE));

    run_onednn(oc);
    double err = bench_spot_check(l, oc->input, oc->weights_ohwi, oc->bias_values, oc->output, 64);
    if (!(err < 1e-4)) {
        fprintf(stderr, "onednn_bench: %s: oneDNN output differs from a direct convolution "
                        "(relative error %.3g)\n", l->name, err);
        return 1;
    }
    return 0;
}

static int bench_layer_onednn(const bench_layer *l, dnnl_engine_t engine, dnnl_stream_t stream,
                              int threads, const bench_options *opts, FILE *csv)
{
    onednn_case oc;
    memset(&oc, 0, sizeof oc);
    oc.engine = engine;
    oc.stream = stream;
    bench_pair pair = { run_onednn, NULL, &oc };
    bench_pair_result res;
    int err = setup_onednn_case(l, &oc);
    if (!err && !bench_time_pair(&pair, opts, &res)) {
        fprintf(stderr, "onednn_bench: out of memory timing %s\n", l->name);
        err = 1;
    }
    free_onednn_case(&oc);
    if (err)
        return 1;
    double gflops = bench_flops(l) / (res.a_ms * 1e6);
    char shape[64];
    snprintf(shape, sizeof shape, "%d %dx%dx%d>%d %d/%d/%d", l->n, l->h, l->w, l->cin, l->cout,
             l->kernel, l->stride, l->pad);
    printf("%-13s %3d %-26s %9.4f %8.2f %11zu  %s\n", l->name, threads, shape, res.a_ms, gflops,
           oc.scratchpad_bytes, oc.impl);
    fflush(stdout);
    bench_csv_row(csv, "onednn", "conv", l->name, threads, l->n, res.a_ms, gflops, NAN, NULL,
                  (double)oc.scratchpad_bytes, "scratchpad", NAN, oc.impl, opts->reps);
    return 0;
}

/* Runs every requested thread count in a child process with OMP_NUM_THREADS
 * set (and OMP_WAIT_POLICY=passive unless the caller chose a policy). */
static int run_children(int argc, char **argv, const bench_options *opts)
{
    if (opts->csv_path) {
        FILE *csv = bench_csv_open(opts->csv_path, 0); /* truncate; children append */
        if (!csv || fclose(csv) != 0) {
            fprintf(stderr, "onednn_bench: cannot write %s\n", opts->csv_path);
            return 2;
        }
    }
    int failures = 0;
    for (int t = 0; t < opts->thread_count_len; t++) {
        char count[16];
        snprintf(count, sizeof count, "%d", opts->threads[t]);
        char **child_argv = calloc((size_t)argc + 3, sizeof *child_argv);
        if (!child_argv)
            return 2;
        int c = 0;
        for (int i = 0; i < argc; i++) {
            if (!strcmp(argv[i], "--threads")) {
                i++;
                continue;
            }
            child_argv[c++] = argv[i];
        }
        child_argv[c++] = "--threads";
        child_argv[c++] = count;
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            setenv("OMP_NUM_THREADS", count, 1);
            setenv("OMP_WAIT_POLICY", "passive", 0);
            setenv("BENCH_CSV_APPEND", "1", 1);
            execv("/proc/self/exe", child_argv);
            fprintf(stderr, "onednn_bench: cannot re-execute itself: %s\n", strerror(errno));
            _exit(127);
        }
        free(child_argv);
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            failures++;
    }
    return failures ? 1 : 0;
}

static int in_own_process(const bench_options *opts)
{
    const char *count = getenv("OMP_NUM_THREADS");
    return opts->thread_count_len == 1 && count && atoi(count) == opts->threads[0] &&
           getenv("OMP_WAIT_POLICY");
}

int main(int argc, char **argv)
{
    bench_options opts;
    int parsed = bench_parse_options(
        argc, argv, "onednn_bench",
        "Each thread count runs in its own process with OMP_NUM_THREADS=N and\n"
        "OMP_WAIT_POLICY=passive (unless set); the program re-executes itself for that.\n",
        &opts);
    if (parsed)
        return parsed > 0 ? 0 : 2;
    if (!in_own_process(&opts))
        return run_children(argc, argv, &opts);

    const int threads = opts.threads[0];
    const char *append = getenv("BENCH_CSV_APPEND");
    FILE *csv = NULL;
    if (opts.csv_path && !(csv = bench_csv_open(opts.csv_path, append && *append == '1'))) {
        fprintf(stderr, "onednn_bench: cannot write %s\n", opts.csv_path);
        return 2;
    }
    const dnnl_version_t *v = dnnl_version();
    printf("\noneDNN %d.%d.%d conv benchmark%s: %d repetitions x %d samples per case; "
           "OMP_NUM_THREADS=%s OMP_WAIT_POLICY=%s\n",
           v->major, v->minor, v->patch, opts.quick ? " (--quick: smoke run, noisy)" : "",
           opts.reps, opts.samples, getenv("OMP_NUM_THREADS"), getenv("OMP_WAIT_POLICY"));
    printf("NHWC src/dst, weights format chosen by oneDNN, forward_inference, bias; "
           "ws bytes = user scratchpad\n\n");
    printf("%-13s %3s %-26s %9s %8s %11s  %s\n", "case", "thr", "N HxWxCin>Cout k/s/p", "ms",
           "GFLOP/s", "ws bytes", "implementation");

    dnnl_engine_t engine;
    dnnl_stream_t stream;
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) {
        fprintf(stderr, "onednn_bench: no CPU engine\n");
        return 1;
    }
    int failures = 0;
    for (size_t i = 0; i < bench_suite_len; i++)
        if (bench_selected(&opts, bench_suite[i].name))
            failures += bench_layer_onednn(&bench_suite[i], engine, stream, threads, &opts, csv);
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    if (csv && fclose(csv) != 0) {
        fprintf(stderr, "onednn_bench: writing %s failed\n", opts.csv_path);
        failures++;
    }
    return failures ? 1 : 0;
}
