/* A net's own threads, the fused conv/dense epilogue, the caller's workspace,
 * OpenBLAS's thread count and cnn_runtime_info (cnn.h, "Threads and workspace").
 * Layers big enough that the driver splits them must give, at 2, 3 and 4
 * threads, the 1-thread result within DESIGN.md's 1e-6 relative error, and
 * repeat bit for bit at every fixed thread count. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <check.h>
#include <math.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cnn.h"
#include "exec.h" /* CNN_MIN_WORK_PER_THREAD only */
#include "net_harness.h"
#include "reference.h"
#include "support.h"

#define AGREE_TOL 1e-6 /* another thread count against the 1-thread result */
#define REF_TOL 1e-5   /* a float net against the double reference (as test_layers) */
/* src/exec.h: a loop runs on fewer threads while each would get less than
 * this much of the work the layer estimates. */
#define SPLIT_WORK_PER_THREAD CNN_MIN_WORK_PER_THREAD
#define MAX_TRIED_THREADS 4

static int repeats(void) { return test_small() ? 2 : 3; }

static size_t output_floats(const cnn_net *net, int batch)
{
    int h, w, c;
    harness_ok(net, cnn_net_output_shape(net, &h, &w, &c), "output shape");
    return (size_t)batch * (size_t)h * (size_t)w * (size_t)c;
}

/* Gives every conv/dense layer seeded He weights and nonzero random biases. */
static void randomize_params(cnn_net *net, uint64_t seed)
{
    harness_ok(net, cnn_net_init_params(net, CNN_INIT_HE_UNIFORM, seed), "init");
    int layers = 0;
    harness_ok(net, cnn_net_layer_count(net, &layers), "layer count");
    test_rng rng;
    test_rng_seed(&rng, seed + 1000);
    for (int l = 0; l < layers; l++) {
        size_t nw = 0, nb = 0;
        if (cnn_layer_param_sizes(net, l, &nw, &nb) != CNN_OK || nb == 0)
            continue;
        float *bias = harness_random(&rng, nb, -0.5f, 0.5f);
        harness_ok(net, cnn_layer_set_bias(net, l, bias, nb), "set bias");
        free(bias);
    }
}

/* Layer `layer`'s weights (and biases, NULL without) copied out. */
static float *weights_of(const cnn_net *net, int layer)
{
    size_t nw = 0;
    harness_ok(net, cnn_layer_param_sizes(net, layer, &nw, NULL), "param sizes");
    float *w = test_xmalloc(nw * sizeof(float));
    harness_ok(net, cnn_layer_get_weights(net, layer, w, nw, CNN_LAYOUT_NATIVE), "get weights");
    return w;
}

static float *bias_of(const cnn_net *net, int layer)
{
    size_t nb = 0;
    harness_ok(net, cnn_layer_param_sizes(net, layer, NULL, &nb), "param sizes");
    if (nb == 0)
        return NULL;
    float *b = test_xmalloc(nb * sizeof(float));
    harness_ok(net, cnn_layer_get_bias(net, layer, b, nb), "get bias");
    return b;
}

/* Runs the net at 1..MAX_TRIED_THREADS threads: each count repeats bit for bit
 * (also after the net ran at other counts) and agrees with 1 thread. Returns
 * the 1-thread result. */
static float *check_thread_counts(cnn_net *net, const float *in, int batch, const char *what)
{
    size_t n = output_floats(net, batch);
    float *by_threads[MAX_TRIED_THREADS + 1] = { NULL };
    for (int t = 1; t <= MAX_TRIED_THREADS; t++) {
        harness_ok(net, cnn_net_set_threads(net, t), what);
        float *y = harness_forward(net, in, batch, n);
        for (int r = 1; r < repeats(); r++) {
            float *again = harness_forward(net, in, batch, n);
            ck_assert_msg(memcmp(again, y, n * sizeof(float)) == 0,
                          "%s: run %d at %d threads is not bit-identical to the first", what,
                          r + 1, t);
            free(again);
        }
        double err = test_rel_error_f(y, by_threads[1] ? by_threads[1] : y, n);
        ck_assert_msg(err <= AGREE_TOL, "%s: %d threads differ from 1 thread by %g", what, t,
                      err);
        by_threads[t] = y;
    }
    /* back to a count used before: a replanned net gives the same bits again */
    for (int t = MAX_TRIED_THREADS; t >= 1; t -= 2) {
        harness_ok(net, cnn_net_set_threads(net, t), what);
        float *again = harness_forward(net, in, batch, n);
        ck_assert_msg(memcmp(again, by_threads[t], n * sizeof(float)) == 0,
                      "%s: %d threads again (after other counts) is not bit-identical", what, t);
        free(again);
    }
    for (int t = 2; t <= MAX_TRIED_THREADS; t++)
        free(by_threads[t]);
    return by_threads[1];
}

/* ---- single layers, each big enough to be split 4 ways ---- */

typedef enum case_kind { CASE_CONV, CASE_DENSE, CASE_POOL, CASE_ACT, CASE_SOFTMAX } case_kind;

typedef struct layer_case {
    const char *name;
    case_kind kind;
    ref_shape in;          /* batch and input image */
    int units;             /* conv filters / dense units */
    ref_window win;        /* conv / pool */
    int bias;
    cnn_pool_kind pool;
    int count_pad;
    cnn_activation act;
    float slope;
    float lo, hi; /* input range */
} layer_case;

/* Each case's work reaches 4 x SPLIT_WORK_PER_THREAD (checked by the test). The
 * conv cases with at most 8 input channels may take the direct path, the others
 * im2col + SGEMM. */
static const layer_case layer_cases[] = {
    { "conv 3x3 pad 1, 8 channels", CASE_CONV, { 2, 32, 32, 8 }, 16, { 3, 3, 1, 1, 1, 1 }, 1,
      CNN_POOL_MAX, 0, CNN_ACT_RELU, 0.0f, -1.0f, 1.0f },
    { "conv 3x3 pad 1, 24 channels", CASE_CONV, { 2, 24, 24, 24 }, 16, { 3, 3, 1, 1, 1, 1 }, 1,
      CNN_POOL_MAX, 0, CNN_ACT_RELU, 0.0f, -1.0f, 1.0f },
    { "conv 5x5 stride 2 pad 2, no bias", CASE_CONV, { 4, 31, 31, 6 }, 16, { 5, 5, 2, 2, 2, 2 },
      0, CNN_POOL_MAX, 0, CNN_ACT_RELU, 0.0f, -1.0f, 1.0f },
    { "conv 3x2 stride 1x2 pad 1x0", CASE_CONV, { 5, 39, 30, 5 }, 24, { 3, 2, 1, 2, 1, 0 }, 1,
      CNN_POOL_MAX, 0, CNN_ACT_RELU, 0.0f, -1.0f, 1.0f },
    { "pointwise conv 1x1", CASE_CONV, { 4, 32, 16, 32 }, 32, { 1, 1, 1, 1, 0, 0 }, 1,
      CNN_POOL_MAX, 0, CNN_ACT_RELU, 0.0f, -1.0f, 1.0f },
    { "dense at batch 1 (split by columns)", CASE_DENSE, { 1, 8, 8, 64 }, 512,
      { 0, 0, 0, 0, 0, 0 }, 1, CNN_POOL_MAX, 0, CNN_ACT_RELU, 0.0f, -1.0f, 1.0f },
    { "dense at batch 16 (split by rows)", CASE_DENSE, { 16, 4, 4, 64 }, 128,
      { 0, 0, 0, 0, 0, 0 }, 1, CNN_POOL_MAX, 0, CNN_ACT_RELU, 0.0f, -1.0f, 1.0f },
    { "max pool 3x3 stride 1 pad 1, batch 5", CASE_POOL, { 5, 64, 64, 32 }, 0,
      { 3, 3, 1, 1, 1, 1 }, 0, CNN_POOL_MAX, 0, CNN_ACT_RELU, 0.0f, -1.0f, 1.0f },
    { "avg pool 2x2 stride 1 pad 1 (real cells), batch 5", CASE_POOL, { 5, 80, 80, 32 }, 0,
      { 2, 2, 1, 1, 1, 1 }, 0, CNN_POOL_AVG, 0, CNN_ACT_RELU, 0.0f, -1.0f, 1.0f },
    { "relu", CASE_ACT, { 4, 64, 64, 128 }, 0, { 0, 0, 0, 0, 0, 0 }, 0, CNN_POOL_MAX, 0,
      CNN_ACT_RELU, 0.0f, -1.0f, 1.0f },
    { "leaky relu", CASE_ACT, { 4, 64, 64, 128 }, 0, { 0, 0, 0, 0, 0, 0 }, 0, CNN_POOL_MAX, 0,
      CNN_ACT_LEAKY_RELU, 0.1f, -1.0f, 1.0f },
    { "sigmoid", CASE_ACT, { 4, 64, 64, 32 }, 0, { 0, 0, 0, 0, 0, 0 }, 0, CNN_POOL_MAX, 0,
      CNN_ACT_SIGMOID, 0.0f, -6.0f, 6.0f },
    { "tanh", CASE_ACT, { 4, 64, 64, 32 }, 0, { 0, 0, 0, 0, 0, 0 }, 0, CNN_POOL_MAX, 0,
      CNN_ACT_TANH, 0.0f, -4.0f, 4.0f },
    { "softmax", CASE_SOFTMAX, { 4, 64, 64, 32 }, 0, { 0, 0, 0, 0, 0, 0 }, 0, CNN_POOL_MAX, 0,
      CNN_ACT_RELU, 0.0f, -3.0f, 3.0f },
};

#define N_LAYER_CASES ((int)(sizeof layer_cases / sizeof layer_cases[0]))

static cnn_net *case_net(const layer_case *c, ref_shape s)
{
    cnn_net *net = harness_net(s);
    cnn_status st = CNN_OK;
    switch (c->kind) {
    case CASE_CONV: {
        cnn_conv_desc d = CNN_CONV_DESC_INIT;
        d.filters = c->units;
        d.kernel_h = c->win.kh;
        d.kernel_w = c->win.kw;
        d.stride_h = c->win.sh;
        d.stride_w = c->win.sw;
        d.pad_h = c->win.ph;
        d.pad_w = c->win.pw;
        d.bias = c->bias;
        st = cnn_layer_add_conv(net, &d, NULL);
        break;
    }
    case CASE_DENSE: st = cnn_layer_add_dense(net, c->units, c->bias, NULL); break;
    case CASE_POOL: {
        cnn_pool_desc d = CNN_POOL_DESC_INIT;
        d.kind = c->pool;
        d.window_h = c->win.kh;
        d.window_w = c->win.kw;
        d.stride_h = c->win.sh;
        d.stride_w = c->win.sw;
        d.pad_h = c->win.ph;
        d.pad_w = c->win.pw;
        d.count_pad = c->count_pad;
        st = cnn_layer_add_pool(net, &d, NULL);
        break;
    }
    case CASE_ACT: st = cnn_layer_add_activation(net, c->act, c->slope, NULL); break;
    case CASE_SOFTMAX: st = cnn_layer_add_softmax(net, NULL); break;
    }
    harness_ok(net, st, c->name);
    if (c->kind == CASE_CONV || c->kind == CASE_DENSE)
        randomize_params(net, 77);
    return net;
}

/* The work the layer hands src/exec.c (what the files of src/layers/ pass to
 * cnn__parallel_for): conv FLOPs; dense 2 * m * n * k; pooling one per window
 * cell; activations 2 per element, 20 for sigmoid and tanh; softmax 20 per
 * element. */
static uint64_t split_work(const layer_case *c, const cnn_net *net)
{
    uint64_t flops = 0;
    harness_ok(net, cnn_layer_flops(net, 0, &flops), c->name);
    uint64_t batch = (uint64_t)c->in.n;
    uint64_t inputs = (uint64_t)c->in.h * (uint64_t)c->in.w * (uint64_t)c->in.c;
    switch (c->kind) {
    case CASE_CONV: return flops * batch;
    case CASE_DENSE: return 2u * batch * (uint64_t)c->units * inputs;
    case CASE_POOL: /* layers/pool.c counts 8 per window cell */
        return 8u * flops * batch * (uint64_t)c->win.kh * (uint64_t)c->win.kw;
    case CASE_ACT:
        return flops * batch * (c->act == CNN_ACT_SIGMOID || c->act == CNN_ACT_TANH ? 20u : 2u);
    case CASE_SOFTMAX: return flops * batch * 20u;
    }
    return 0;
}

/* The case's layer computed by reference.c in double. */
static double *case_reference(const layer_case *c, const cnn_net *net, ref_shape s,
                              const float *in, size_t n_out)
{
    double *x = harness_widen(in, ref_elems(s));
    double *y = test_xmalloc(n_out * sizeof(double));
    float *w = NULL, *b = NULL;
    switch (c->kind) {
    case CASE_CONV:
        w = weights_of(net, 0);
        b = bias_of(net, 0);
        ref_conv(x, s, w, b, c->units, c->win, y);
        break;
    case CASE_DENSE:
        w = weights_of(net, 0);
        b = bias_of(net, 0);
        ref_dense(x, s.n, s.h * s.w * s.c, w, b, c->units, y);
        break;
    case CASE_POOL:
        if (c->pool == CNN_POOL_MAX)
            ref_max_pool(x, s, c->win, y);
        else
            ref_avg_pool(x, s, c->win, c->count_pad, y);
        break;
    case CASE_ACT:
        switch (c->act) {
        case CNN_ACT_RELU: ref_relu(x, n_out, y); break;
        case CNN_ACT_LEAKY_RELU: ref_leaky_relu(x, n_out, (double)c->slope, y); break;
        case CNN_ACT_SIGMOID: ref_sigmoid(x, n_out, y); break;
        case CNN_ACT_TANH: ref_tanh(x, n_out, y); break;
        }
        break;
    case CASE_SOFTMAX:
        ref_softmax(x, (size_t)s.n * (size_t)s.h * (size_t)s.w, s.c, y);
        break;
    }
    free(w);
    free(b);
    free(x);
    return y;
}

START_TEST(thread_counts_agree_per_layer)
{
    const layer_case *c = &layer_cases[_i];
    ref_shape s = c->in;
    cnn_net *net = case_net(c, s);
    uint64_t work = split_work(c, net);
    ck_assert_msg(work >= 4u * (uint64_t)SPLIT_WORK_PER_THREAD,
                  "%s: work %llu is too little for the driver to split 4 ways", c->name,
                  (unsigned long long)work);
    test_rng rng;
    test_rng_seed(&rng, 100 + (uint64_t)_i);
    float *in = harness_random(&rng, ref_elems(s), c->lo, c->hi);
    float *one = check_thread_counts(net, in, s.n, c->name);
    size_t n_out = output_floats(net, s.n);
    double *ref = case_reference(c, net, s, in, n_out);
    harness_expect_close(one, ref, n_out, REF_TOL, c->name);
    free(ref);
    free(one);
    free(in);
    cnn_net_destroy(net);
}
END_TEST

/* A whole net (fused pairs, ping-pong buffers, every kind) at odd batch sizes. */
static cnn_net *mixed_net(int side)
{
    ref_shape s = { 1, side, side, 3 };
    cnn_net *net = harness_net(s);
    cnn_conv_desc conv = CNN_CONV_DESC_INIT;
    conv.filters = 16;
    conv.pad_h = conv.pad_w = 1;
    harness_ok(net, cnn_layer_add_conv(net, &conv, NULL), "conv");
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL), "relu");
    cnn_pool_desc pool = CNN_POOL_DESC_INIT;
    harness_ok(net, cnn_layer_add_pool(net, &pool, NULL), "pool");
    conv.filters = 32;
    harness_ok(net, cnn_layer_add_conv(net, &conv, NULL), "conv");
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_LEAKY_RELU, 0.05f, NULL), "leaky");
    pool.kind = CNN_POOL_AVG;
    harness_ok(net, cnn_layer_add_pool(net, &pool, NULL), "avg pool");
    harness_ok(net, cnn_layer_add_dense(net, 64, 1, NULL), "dense");
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_TANH, 0.0f, NULL), "tanh");
    harness_ok(net, cnn_layer_add_dense(net, 10, 1, NULL), "dense");
    harness_ok(net, cnn_layer_add_softmax(net, NULL), "softmax");
    randomize_params(net, 5);
    return net;
}

START_TEST(thread_counts_agree_whole_net)
{
    const int side = test_small() ? 16 : 32;
    cnn_net *net = mixed_net(side);
    test_rng rng;
    test_rng_seed(&rng, 8);
    const int batches[] = { 1, 3, 7 };
    for (int i = 0; i < (test_small() ? 2 : 3); i++) {
        char what[64];
        snprintf(what, sizeof what, "whole net, batch %d", batches[i]);
        float *in = harness_random(&rng, (size_t)batches[i] * (size_t)side * (size_t)side * 3u,
                                   -1.0f, 1.0f);
        free(check_thread_counts(net, in, batches[i], what));
        free(in);
    }
    cnn_net_destroy(net);
}
END_TEST

/* ---- thread count setting ---- */

static int available_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set) > 1024 ? 1024 : CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
}

static int threads_of(const cnn_net *net)
{
    int t = -1;
    harness_ok(net, cnn_net_get_threads(net, &t), "get threads");
    return t;
}

START_TEST(thread_count_default_and_round_trip)
{
    ref_shape s = { 1, 4, 4, 2 };
    cnn_net *net = harness_net(s);
    const int cores = available_cores();
    ck_assert_msg(threads_of(net) == cores, "default %d threads, but %d cores are available",
                  threads_of(net), cores);
    const int asks[] = { 1, 2, 3, 4, 7, 1024, 1 };
    for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++) {
        harness_ok(net, cnn_net_set_threads(net, asks[i]), "set threads");
        ck_assert_int_eq(threads_of(net), asks[i]);
    }
    harness_ok(net, cnn_net_set_threads(net, 0), "set threads 0");
    ck_assert_msg(threads_of(net) == cores, "0 gave %d threads, %d cores are available",
                  threads_of(net), cores);

    /* a clone starts with its source's setting, then goes its own way */
    harness_ok(net, cnn_net_set_threads(net, 3), "set threads 3");
    cnn_net *clone = NULL;
    harness_ok(net, cnn_net_clone(net, &clone), "clone");
    ck_assert_int_eq(threads_of(clone), 3);
    harness_ok(clone, cnn_net_set_threads(clone, 1), "set threads on the clone");
    ck_assert_int_eq(threads_of(net), 3);
    cnn_net_destroy(clone);
    cnn_net_destroy(net);
}
END_TEST

/* ---- fusion: conv/dense + activation against the unfused computation ---- */

typedef struct fused_pair {
    const char *name;
    int dense;          /* 0: conv 3x3 pad 1 */
    ref_shape full, small;
    int units;
    cnn_activation act;
    float slope;
} fused_pair;

/* Each splits at 2 threads (>= 2 x SPLIT_WORK_PER_THREAD). The conv -> relu
 * input has 3x3x128 = 1152 values per im2col row, so a tile holds 910 rows
 * (4 MiB): the full conv runs 3 tiles on 1 thread, 2 per thread on 2. */
static const fused_pair fused_pairs[] = {
    { "conv -> relu", 0, { 1, 48, 48, 128 }, { 1, 32, 32, 128 }, 4, CNN_ACT_RELU, 0.0f },
    { "conv -> sigmoid", 0, { 2, 24, 24, 8 }, { 2, 24, 24, 8 }, 16, CNN_ACT_SIGMOID, 0.0f },
    { "dense -> tanh", 1, { 3, 8, 8, 32 }, { 3, 8, 8, 32 }, 192, CNN_ACT_TANH, 0.0f },
    { "dense -> leaky relu", 1, { 1, 16, 16, 16 }, { 1, 16, 16, 16 }, 300, CNN_ACT_LEAKY_RELU,
      0.2f },
};

#define N_FUSED_PAIRS ((int)(sizeof fused_pairs / sizeof fused_pairs[0]))

static ref_window conv3x3(void)
{
    ref_window w = { 3, 3, 1, 1, 1, 1 };
    return w;
}

static void add_first(cnn_net *net, const fused_pair *p)
{
    if (p->dense) {
        harness_ok(net, cnn_layer_add_dense(net, p->units, 1, NULL), p->name);
        return;
    }
    cnn_conv_desc d = CNN_CONV_DESC_INIT;
    d.filters = p->units;
    d.pad_h = d.pad_w = 1;
    harness_ok(net, cnn_layer_add_conv(net, &d, NULL), p->name);
}

/* Copies layer 0's parameters of `from` into layer 0 of `to`. */
static void copy_params(const cnn_net *from, cnn_net *to)
{
    size_t nw = 0, nb = 0;
    harness_ok(from, cnn_layer_param_sizes(from, 0, &nw, &nb), "param sizes");
    float *w = weights_of(from, 0), *b = bias_of(from, 0);
    harness_ok(to, cnn_layer_set_weights(to, 0, w, nw, CNN_LAYOUT_NATIVE), "set weights");
    harness_ok(to, cnn_layer_set_bias(to, 0, b, nb), "set bias");
    free(w);
    free(b);
}

static void ref_activation(cnn_activation act, double slope, const double *x, size_t n, double *y)
{
    switch (act) {
    case CNN_ACT_RELU: ref_relu(x, n, y); break;
    case CNN_ACT_LEAKY_RELU: ref_leaky_relu(x, n, slope, y); break;
    case CNN_ACT_SIGMOID: ref_sigmoid(x, n, y); break;
    case CNN_ACT_TANH: ref_tanh(x, n, y); break;
    }
}

/* Introspection of a fused pair still shows two layers with their own kinds,
 * shapes and FLOPs (DESIGN.md's counting rule). */
static void expect_pair_introspection(const cnn_net *net, const fused_pair *p, ref_shape s)
{
    int count = 0;
    harness_ok(net, cnn_net_layer_count(net, &count), p->name);
    ck_assert_msg(count == 2, "%s: %d layers listed, expected 2", p->name, count);
    cnn_layer_kind k0, k1;
    harness_ok(net, cnn_layer_kind_of(net, 0, &k0), p->name);
    harness_ok(net, cnn_layer_kind_of(net, 1, &k1), p->name);
    ck_assert_int_eq(k0, p->dense ? CNN_LAYER_DENSE : CNN_LAYER_CONV);
    ck_assert_int_eq(k1, CNN_LAYER_ACTIVATION);
    int oh = p->dense ? 1 : s.h, ow = p->dense ? 1 : s.w;
    harness_expect_shape(net, 0, oh, ow, p->units, p->name);
    harness_expect_shape(net, 1, oh, ow, p->units, p->name);
    uint64_t k = p->dense ? (uint64_t)s.h * (uint64_t)s.w * (uint64_t)s.c : 9u * (uint64_t)s.c;
    uint64_t outputs = (uint64_t)oh * (uint64_t)ow * (uint64_t)p->units;
    uint64_t f0 = 0, f1 = 0, total = 0;
    harness_ok(net, cnn_layer_flops(net, 0, &f0), p->name);
    harness_ok(net, cnn_layer_flops(net, 1, &f1), p->name);
    harness_ok(net, cnn_net_flops(net, &total), p->name);
    ck_assert_msg(f0 == outputs * (2u * k + 1u), "%s: first layer reports %llu FLOPs", p->name,
                  (unsigned long long)f0);
    ck_assert_msg(f1 == outputs, "%s: activation reports %llu FLOPs", p->name,
                  (unsigned long long)f1);
    ck_assert_uint_eq(total, f0 + f1);
}

START_TEST(fused_pair_matches_unfused)
{
    const fused_pair *p = &fused_pairs[_i];
    ref_shape s = test_small() ? p->small : p->full;
    cnn_net *fused = harness_net(s);
    add_first(fused, p);
    harness_ok(fused, cnn_layer_add_activation(fused, p->act, p->slope, NULL), p->name);
    randomize_params(fused, 31 + (uint64_t)_i);

    /* the same computation as two nets: the layer alone, then the activation alone */
    cnn_net *first = harness_net(s);
    add_first(first, p);
    copy_params(fused, first);
    int oh = p->dense ? 1 : s.h, ow = p->dense ? 1 : s.w;
    ref_shape mid_shape = { s.n, oh, ow, p->units };
    cnn_net *act = harness_net(mid_shape);
    harness_ok(act, cnn_layer_add_activation(act, p->act, p->slope, NULL), p->name);

    test_rng rng;
    test_rng_seed(&rng, 200 + (uint64_t)_i);
    float *in = harness_random(&rng, ref_elems(s), -1.0f, 1.0f);
    size_t n_out = ref_elems(mid_shape);

    /* double reference: the layer, then the activation */
    double *x = harness_widen(in, ref_elems(s));
    double *mid = test_xmalloc(n_out * sizeof(double));
    double *ref = test_xmalloc(n_out * sizeof(double));
    float *w = weights_of(fused, 0), *b = bias_of(fused, 0);
    if (p->dense)
        ref_dense(x, s.n, s.h * s.w * s.c, w, b, p->units, mid);
    else
        ref_conv(x, s, w, b, p->units, conv3x3(), mid);
    ref_activation(p->act, (double)p->slope, mid, n_out, ref);

    for (int t = 1; t <= 3; t++) {
        char what[96];
        snprintf(what, sizeof what, "%s at %d threads", p->name, t);
        harness_ok(fused, cnn_net_set_threads(fused, t), what);
        harness_ok(first, cnn_net_set_threads(first, t), what);
        harness_ok(act, cnn_net_set_threads(act, t), what);
        float *y = harness_forward(fused, in, s.n, n_out);
        float *between = harness_forward(first, in, s.n, n_out);
        float *unfused = harness_forward(act, between, s.n, n_out);
        double err = test_rel_error_f(y, unfused, n_out);
        ck_assert_msg(err <= AGREE_TOL, "%s: fused differs from unfused by %g", what, err);
        harness_expect_close(y, ref, n_out, REF_TOL, what);
        free(y);
        free(between);
        free(unfused);
    }
    expect_pair_introspection(fused, p, s);
    free(w);
    free(b);
    free(x);
    free(mid);
    free(ref);
    free(in);
    cnn_net_destroy(act);
    cnn_net_destroy(first);
    cnn_net_destroy(fused);
}
END_TEST

/* conv -> relu -> tanh -> conv -> sigmoid -> dense -> tanh -> dense -> leaky:
 * fused pairs writing into the ping-pong buffers and into the caller's output,
 * and a second activation after a fused one, which must still run. */
START_TEST(fused_chain_matches_reference)
{
    const int side = test_small() ? 8 : 14;
    ref_shape s = { 2, side, side, 3 };
    cnn_net *net = harness_net(s);
    cnn_conv_desc d = CNN_CONV_DESC_INIT;
    d.filters = 8;
    d.pad_h = d.pad_w = 1;
    harness_ok(net, cnn_layer_add_conv(net, &d, NULL), "conv");
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL), "relu");
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_TANH, 0.0f, NULL), "tanh");
    d.filters = 6;
    harness_ok(net, cnn_layer_add_conv(net, &d, NULL), "conv");
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_SIGMOID, 0.0f, NULL), "sigmoid");
    harness_ok(net, cnn_layer_add_dense(net, 20, 1, NULL), "dense");
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_TANH, 0.0f, NULL), "tanh");
    harness_ok(net, cnn_layer_add_dense(net, 7, 1, NULL), "dense");
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_LEAKY_RELU, 0.3f, NULL), "leaky");
    randomize_params(net, 12);

    const cnn_layer_kind kinds[] = { CNN_LAYER_CONV,  CNN_LAYER_ACTIVATION, CNN_LAYER_ACTIVATION,
                                     CNN_LAYER_CONV,  CNN_LAYER_ACTIVATION, CNN_LAYER_DENSE,
                                     CNN_LAYER_ACTIVATION, CNN_LAYER_DENSE, CNN_LAYER_ACTIVATION };
    int count = 0;
    harness_ok(net, cnn_net_layer_count(net, &count), "layer count");
    ck_assert_int_eq(count, 9);
    for (int l = 0; l < count; l++) {
        cnn_layer_kind k;
        harness_ok(net, cnn_layer_kind_of(net, l, &k), "kind");
        ck_assert_msg(k == kinds[l], "layer %d is a %s, expected %s", l, cnn_layer_kind_name(k),
                      cnn_layer_kind_name(kinds[l]));
    }

    test_rng rng;
    test_rng_seed(&rng, 13);
    float *in = harness_random(&rng, ref_elems(s), -1.0f, 1.0f);
    ref_shape s1 = { s.n, side, side, 8 }, s2 = { s.n, side, side, 6 };
    size_t n1 = ref_elems(s1), n2 = ref_elems(s2), n3 = (size_t)s.n * 20u, n4 = (size_t)s.n * 7u;
    double *x = harness_widen(in, ref_elems(s));
    double *a = test_xmalloc(n1 * sizeof(double)), *b = test_xmalloc(n1 * sizeof(double));
    float *w0 = weights_of(net, 0), *b0 = bias_of(net, 0);
    float *w3 = weights_of(net, 3), *b3 = bias_of(net, 3);
    float *w5 = weights_of(net, 5), *b5 = bias_of(net, 5);
    float *w7 = weights_of(net, 7), *b7 = bias_of(net, 7);
    ref_conv(x, s, w0, b0, 8, conv3x3(), a);
    ref_relu(a, n1, b);
    ref_tanh(b, n1, a);
    ref_conv(a, s1, w3, b3, 6, conv3x3(), b);
    ref_sigmoid(b, n2, a);
    ref_dense(a, s.n, (int)(n2 / (size_t)s.n), w5, b5, 20, b);
    ref_tanh(b, n3, a);
    ref_dense(a, s.n, 20, w7, b7, 7, b);
    ref_leaky_relu(b, n4, 0.3, a);
    for (int t = 1; t <= 2; t++) {
        harness_ok(net, cnn_net_set_threads(net, t), "threads");
        float *y = harness_forward(net, in, s.n, n4);
        harness_expect_close(y, a, n4, REF_TOL, t == 1 ? "chain, 1 thread" : "chain, 2 threads");
        free(y);
    }
    float *owned[] = { w0, b0, w3, b3, w5, b5, w7, b7, in };
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        free(owned[i]);
    free(x);
    free(a);
    free(b);
    cnn_net_destroy(net);
}
END_TEST

/* ---- the caller's workspace ---- */

/* Counts the blocks libcnn asks for. */
typedef struct counting_heap {
    size_t allocs;
    long live;
} counting_heap;

static counting_heap heap;

static void *counting_alloc(void *user, size_t size)
{
    counting_heap *h = user;
    h->allocs++;
    void *block = malloc(size);
    if (block)
        h->live++;
    return block;
}

static void counting_free(void *user, void *block)
{
    counting_heap *h = user;
    h->live--;
    free(block);
}

static const cnn_allocator counting = { sizeof(cnn_allocator), counting_alloc, counting_free,
                                        &heap };

/* The net of the workspace tests (destroyed by the teardown too, so a failed
 * assertion under CK_FORK=no leaves no net that would pin the allocator). */
static cnn_net *ws_net;

static void ws_setup(void)
{
    memset(&heap, 0, sizeof heap);
    ck_assert_int_eq(cnn_set_allocator(&counting), CNN_OK);
}

static void ws_teardown(void)
{
    cnn_net_destroy(ws_net);
    ws_net = NULL;
    cnn_set_allocator(NULL);
}

enum { WS_SIDE = 16, WS_C = 8 };

/* conv 3x3 (im2col: a column buffer per thread) -> relu -> pool -> dense -> softmax */
static cnn_net *workspace_net(void)
{
    ref_shape s = { 1, WS_SIDE, WS_SIDE, WS_C };
    cnn_net *net = harness_net(s);
    cnn_conv_desc d = CNN_CONV_DESC_INIT;
    d.filters = 12;
    d.pad_h = d.pad_w = 1;
    harness_ok(net, cnn_layer_add_conv(net, &d, NULL), "conv");
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL), "relu");
    cnn_pool_desc p = CNN_POOL_DESC_INIT;
    harness_ok(net, cnn_layer_add_pool(net, &p, NULL), "pool");
    harness_ok(net, cnn_layer_add_dense(net, 10, 1, NULL), "dense");
    harness_ok(net, cnn_layer_add_softmax(net, NULL), "softmax");
    randomize_params(net, 3);
    return net;
}

static size_t workspace_bytes(const cnn_net *net, int batch)
{
    size_t bytes = 0;
    harness_ok(net, cnn_net_workspace_size(net, batch, &bytes), "workspace size");
    return bytes;
}

static float *ws_input(int batch)
{
    test_rng rng;
    test_rng_seed(&rng, 17);
    return harness_random(&rng, (size_t)batch * WS_SIDE * WS_SIDE * WS_C, -1.0f, 1.0f);
}

START_TEST(workspace_size_grows_with_batch_and_threads)
{
    ws_net = workspace_net();
    harness_ok(ws_net, cnn_net_set_threads(ws_net, 1), "threads");
    const int batches[] = { 1, 2, 5, 16 };
    size_t last = 0;
    for (int i = 0; i < 4; i++) {
        size_t b = workspace_bytes(ws_net, batches[i]);
        ck_assert_msg(b > last, "batch %d needs %zu bytes, batch %d needed %zu", batches[i], b,
                      i ? batches[i - 1] : 0, last);
        last = b;
    }
    last = 0;
    for (int t = 1; t <= 4; t++) {
        harness_ok(ws_net, cnn_net_set_threads(ws_net, t), "threads");
        size_t b = workspace_bytes(ws_net, 3);
        ck_assert_msg(b > last, "%d threads need %zu bytes, one fewer needed %zu", t, b, last);
        last = b;
    }

    /* each thread's column buffer is at most 4 MiB, however big the conv */
    ref_shape big = { 1, 64, 64, 64 };
    cnn_net *net = harness_net(big);
    cnn_conv_desc d = CNN_CONV_DESC_INIT;
    d.filters = 4;
    d.pad_h = d.pad_w = 1;
    harness_ok(net, cnn_layer_add_conv(net, &d, NULL), "big conv");
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_SIGMOID, 0.0f, NULL), "sigmoid");
    harness_ok(net, cnn_net_set_threads(net, 1), "threads");
    size_t one = workspace_bytes(net, 4);
    harness_ok(net, cnn_net_set_threads(net, 3), "threads");
    size_t three = workspace_bytes(net, 4);
    ck_assert_msg(three > one && three - one <= 2u * (((size_t)4 << 20) + 64u),
                  "1 thread: %zu bytes, 3 threads: %zu bytes", one, three);
    cnn_net_destroy(net);
}
END_TEST

/* A block of exactly cnn_net_workspace_size bytes at `offset` from a 64-byte
 * boundary, guarded on both sides: the net's results are bit-identical to its
 * own scratch's and nothing outside the block is written. */
static void run_in_block(int threads, int batch, size_t offset)
{
    char what[96];
    snprintf(what, sizeof what, "%d threads, batch %d, block at 64k+%zu", threads, batch, offset);
    harness_ok(ws_net, cnn_net_set_workspace(ws_net, NULL, 0), what);
    harness_ok(ws_net, cnn_net_set_threads(ws_net, threads), what);
    float *in = ws_input(batch);
    size_t n = output_floats(ws_net, batch);
    float *own = harness_forward(ws_net, in, batch, n);

    const size_t guard = 64, bytes = workspace_bytes(ws_net, batch);
    unsigned char *raw = test_xmalloc(bytes + 3 * guard);
    uintptr_t aligned = ((uintptr_t)raw + guard + 63u) & ~(uintptr_t)63u;
    unsigned char *block = raw + (aligned - (uintptr_t)raw) + offset;
    memset(raw, 0xa5, bytes + 3 * guard);
    memset(block, 0xff, bytes); /* NaN everywhere: scratch read before written shows */
    harness_ok(ws_net, cnn_net_set_workspace(ws_net, block, bytes), what);
    for (int r = 0; r < 2; r++) {
        float *y = harness_forward(ws_net, in, batch, n);
        ck_assert_msg(memcmp(y, own, n * sizeof(float)) == 0,
                      "%s: run %d in the caller's block differs from the net's own scratch", what,
                      r + 1);
        free(y);
    }
    for (unsigned char *p = raw; p < block; p++)
        ck_assert_msg(*p == 0xa5, "%s: byte %td before the block was written", what, block - p);
    for (unsigned char *p = block + bytes; p < raw + bytes + 3 * guard; p++)
        ck_assert_msg(*p == 0xa5, "%s: byte %td after the block was written", what,
                      p - (block + bytes));
    harness_ok(ws_net, cnn_net_set_workspace(ws_net, NULL, 0), what);
    free(raw);
    free(own);
    free(in);
}

START_TEST(caller_block_gives_the_same_bits)
{
    ws_net = workspace_net();
    for (int threads = 1; threads <= 3; threads++)
        for (int batch = 1; batch <= 4; batch += 3) {
            run_in_block(threads, batch, 0);
            run_in_block(threads, batch, 4);
        }
}
END_TEST

START_TEST(caller_block_means_no_allocation)
{
    ws_net = workspace_net();
    float *in = ws_input(2);
    size_t n = output_floats(ws_net, 2);
    float *y = test_xmalloc(n * sizeof(float));

    /* 1 thread: not even the first forward allocates */
    harness_ok(ws_net, cnn_net_set_threads(ws_net, 1), "threads");
    size_t bytes = workspace_bytes(ws_net, 2);
    unsigned char *block = test_xmalloc(bytes);
    size_t before = heap.allocs;
    harness_ok(ws_net, cnn_net_set_workspace(ws_net, block, bytes), "set workspace");
    for (int r = 0; r < 2; r++) {
        harness_ok(ws_net, cnn_forward(ws_net, in, 2, y), "forward");
        harness_ok(ws_net, cnn_forward(ws_net, in, 1, y), "forward, batch 1");
    }
    ck_assert_msg(heap.allocs == before, "1 thread: %zu allocation(s) with the caller's block",
                  heap.allocs - before);

    /* 2 threads: the threads start at a forward in the net's own memory; after
     * that, the caller's block again means no allocation at all */
    harness_ok(ws_net, cnn_net_set_workspace(ws_net, NULL, 0), "own memory");
    harness_ok(ws_net, cnn_net_set_threads(ws_net, 2), "threads");
    harness_ok(ws_net, cnn_forward(ws_net, in, 2, y), "forward starting the threads");
    free(block);
    bytes = workspace_bytes(ws_net, 2);
    block = test_xmalloc(bytes);
    before = heap.allocs;
    harness_ok(ws_net, cnn_net_set_workspace(ws_net, block, bytes), "set workspace");
    for (int r = 0; r < 2; r++) {
        harness_ok(ws_net, cnn_forward(ws_net, in, 2, y), "forward");
        harness_ok(ws_net, cnn_forward(ws_net, in, 1, y), "forward, batch 1");
    }
    ck_assert_msg(heap.allocs == before, "2 threads: %zu allocation(s) with the caller's block",
                  heap.allocs - before);

    /* NULL, 0: the net allocates its own scratch again */
    harness_ok(ws_net, cnn_net_set_workspace(ws_net, NULL, 0), "own memory");
    free(block); /* the net must no longer touch it */
    harness_ok(ws_net, cnn_forward(ws_net, in, 2, y), "forward in own memory");
    ck_assert_msg(heap.allocs > before, "no allocation after returning to the net's own memory");
    free(y);
    free(in);
}
END_TEST

START_TEST(too_small_block_is_refused)
{
    ws_net = workspace_net();
    harness_ok(ws_net, cnn_net_set_threads(ws_net, 2), "threads");
    const int batch = 3;
    float *in = ws_input(batch);
    size_t n = output_floats(ws_net, batch);
    float *own = harness_forward(ws_net, in, batch, n);
    size_t bytes = workspace_bytes(ws_net, batch);
    unsigned char *block = test_xmalloc(bytes);
    float *y = test_xmalloc(n * sizeof(float));

    harness_ok(ws_net, cnn_net_set_workspace(ws_net, block, bytes - 1), "set workspace");
    for (size_t i = 0; i < n; i++)
        y[i] = 7.0f;
    ck_assert_int_eq(cnn_forward(ws_net, in, batch, y), CNN_E_BUFFER_SIZE);
    ck_assert_msg(cnn_net_last_error(ws_net)[0] != '\0', "no message for CNN_E_BUFFER_SIZE");
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(y[i] == 7.0f, "the refused forward wrote output %zu", i);
    int count = 0;
    harness_ok(ws_net, cnn_net_layer_count(ws_net, &count), "layer count");
    ck_assert_int_eq(count, 5);

    /* a block sized for 2 threads is too small once the net runs 3 */
    harness_ok(ws_net, cnn_net_set_workspace(ws_net, block, bytes), "set workspace");
    harness_ok(ws_net, cnn_net_set_threads(ws_net, 3), "threads");
    ck_assert_int_eq(cnn_forward(ws_net, in, batch, y), CNN_E_BUFFER_SIZE);
    harness_ok(ws_net, cnn_net_set_threads(ws_net, 2), "threads");

    /* the right size works, and gives the net's own result */
    harness_ok(ws_net, cnn_forward(ws_net, in, batch, y), "forward in the exact block");
    ck_assert(memcmp(y, own, n * sizeof(float)) == 0);
    harness_ok(ws_net, cnn_net_set_workspace(ws_net, NULL, 0), "own memory");
    free(block);
    harness_ok(ws_net, cnn_forward(ws_net, in, batch, y), "forward in own memory");
    ck_assert(memcmp(y, own, n * sizeof(float)) == 0);
    free(y);
    free(own);
    free(in);
}
END_TEST

/* ---- OpenBLAS's (process-wide) thread count ---- */

#if defined(CNN_HAVE_OPENBLAS)
/* OpenBLAS's own API, declared here so the test needs only its symbols. */
int openblas_get_num_threads(void);
void openblas_set_num_threads(int threads);

static void forward_checking_blas(cnn_net *net, const float *in, float *y, int expect)
{
    for (int t = 1; t <= 2; t++) {
        harness_ok(net, cnn_net_set_threads(net, t), "threads");
        harness_ok(net, cnn_forward(net, in, 2, y), "forward");
        int now = openblas_get_num_threads();
        ck_assert_msg(now == expect, "OpenBLAS runs %d threads after a forward at %d, was %d",
                      now, t, expect);
    }
}

START_TEST(openblas_thread_count_restored)
{
    const int original = openblas_get_num_threads();
    cnn_net *net = workspace_net();
    float *in = ws_input(2);
    float *y = test_xmalloc(output_floats(net, 2) * sizeof(float));
    forward_checking_blas(net, in, y, original);

    /* a count the application chose comes back, whatever it is */
    openblas_set_num_threads(2);
    forward_checking_blas(net, in, y, openblas_get_num_threads());
    openblas_set_num_threads(1);
    forward_checking_blas(net, in, y, 1);
    openblas_set_num_threads(original);
    ck_assert_int_eq(openblas_get_num_threads(), original);
    free(y);
    free(in);
    cnn_net_destroy(net);
}
END_TEST
#endif

/* ---- cnn_runtime_info ---- */

START_TEST(runtime_info_names_the_paths)
{
    const char *info = cnn_runtime_info();
    ck_assert_ptr_nonnull(info);
    ck_assert_msg(strstr(info, "simd:") != NULL, "no \"simd:\" in \"%s\"", info);
    ck_assert_msg(strstr(info, "blas:") != NULL, "no \"blas:\" in \"%s\"", info);
    const char *simd = strstr(info, "simd:");
    const char *forced = getenv("CNN_FORCE_PORTABLE");
    if (forced && strcmp(forced, "1") == 0) {
        ck_assert_msg(strncmp(simd, "simd: portable", 14) == 0,
                      "CNN_FORCE_PORTABLE=1, but \"%s\"", info);
    } else {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            ck_assert_msg(strncmp(simd, "simd: avx2+fma", 14) == 0,
                          "the CPU has AVX2+FMA, but \"%s\"", info);
        else
            ck_assert_msg(strncmp(simd, "simd: portable", 14) == 0, "no AVX2+FMA, but \"%s\"",
                          info);
#else
        ck_assert_msg(strncmp(simd, "simd: portable", 14) == 0, "\"%s\"", info);
#endif
    }
    ck_assert_str_eq(cnn_runtime_info(), info);
}
END_TEST

static Suite *parallel_suite(void)
{
    Suite *s = suite_create("parallel");
    TCase *split = tcase_create("split");
    tcase_add_loop_test(split, thread_counts_agree_per_layer, 0, N_LAYER_CASES);
    tcase_add_test(split, thread_counts_agree_whole_net);
    tcase_add_test(split, thread_count_default_and_round_trip);
    suite_add_tcase(s, split);

    TCase *fusion = tcase_create("fusion");
    tcase_add_loop_test(fusion, fused_pair_matches_unfused, 0, N_FUSED_PAIRS);
    tcase_add_test(fusion, fused_chain_matches_reference);
    suite_add_tcase(s, fusion);

    TCase *workspace = tcase_create("workspace");
    tcase_add_checked_fixture(workspace, ws_setup, ws_teardown);
    tcase_add_test(workspace, workspace_size_grows_with_batch_and_threads);
    tcase_add_test(workspace, caller_block_gives_the_same_bits);
    tcase_add_test(workspace, caller_block_means_no_allocation);
    tcase_add_test(workspace, too_small_block_is_refused);
    suite_add_tcase(s, workspace);

#if defined(CNN_HAVE_OPENBLAS)
    TCase *blas = tcase_create("blas");
    tcase_add_test(blas, openblas_thread_count_restored);
    suite_add_tcase(s, blas);
#endif

    TCase *info = tcase_create("runtime_info");
    tcase_add_test(info, runtime_info_names_the_paths);
    suite_add_tcase(s, info);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(parallel_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
