/* Documented numeric behaviour: NaN propagates through every layer kind,
 * infinities give the mathematical limits, the caller's floating-point
 * environment is left alone, denormals are computed (not flushed), size
 * overflows are refused, and results are bit-identical run after run. */
#include <check.h>
#include <fenv.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#  include <xmmintrin.h>
#  define HAVE_MXCSR 1
#  define MXCSR_DAZ 0x0040u
#  define MXCSR_FTZ 0x8000u
#  define MXCSR_FLAGS 0x003Fu /* sticky exception flags: arithmetic may set them */
#else
#  define HAVE_MXCSR 0
#endif

#include "cnn.h"
#include "support.h"

/* The limits tests need malloc to return NULL for impossible sizes (what the
 * library then reports as CNN_E_NOMEM). Under ASan/TSan the allocator aborts on
 * such sizes unless told otherwise; these hooks are read by the sanitizer
 * runtimes only, and options given in ASAN_OPTIONS/TSAN_OPTIONS still apply. */
const char *__asan_default_options(void);
const char *__tsan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }
const char *__tsan_default_options(void) { return "allocator_may_return_null=1"; }

/* ---- helpers ------------------------------------------------------------ */

static cnn_net *net_new(int h, int w, int c)
{
    cnn_net *net = NULL;
    ck_assert_int_eq(cnn_net_create(&net, h, w, c), CNN_OK);
    return net;
}

static void add_conv(cnn_net *net, int filters, int k, int stride, int pad, int bias)
{
    cnn_conv_desc d = CNN_CONV_DESC_INIT;
    d.filters = filters;
    d.kernel_h = d.kernel_w = k;
    d.stride_h = d.stride_w = stride;
    d.pad_h = d.pad_w = pad;
    d.bias = bias;
    ck_assert_int_eq(cnn_layer_add_conv(net, &d, NULL), CNN_OK);
}

static void add_pool(cnn_net *net, cnn_pool_kind kind, int window, int stride, int pad)
{
    cnn_pool_desc d = CNN_POOL_DESC_INIT;
    d.kind = kind;
    d.window_h = d.window_w = window;
    d.stride_h = d.stride_w = stride;
    d.pad_h = d.pad_w = pad;
    ck_assert_int_eq(cnn_layer_add_pool(net, &d, NULL), CNN_OK);
}

static size_t out_floats(const cnn_net *net)
{
    int h, w, c;
    ck_assert_int_eq(cnn_net_output_shape(net, &h, &w, &c), CNN_OK);
    return (size_t)h * (size_t)w * (size_t)c;
}

/* Sets every weight of layer `layer` uniformly in [lo, hi) and every bias to `bias`. */
static void fill_params(cnn_net *net, int layer, test_rng *rng, float lo, float hi, float bias)
{
    size_t nw, nb;
    ck_assert_int_eq(cnn_layer_param_sizes(net, layer, &nw, &nb), CNN_OK);
    float *w = test_xmalloc(nw * sizeof(float));
    test_fill_uniform(rng, w, nw, lo, hi);
    ck_assert_int_eq(cnn_layer_set_weights(net, layer, w, nw, CNN_LAYOUT_NATIVE), CNN_OK);
    free(w);
    if (nb) {
        float *b = test_xmalloc(nb * sizeof(float));
        for (size_t i = 0; i < nb; i++)
            b[i] = bias;
        ck_assert_int_eq(cnn_layer_set_bias(net, layer, b, nb), CNN_OK);
        free(b);
    }
}

/* Overwrites one weight of a layer (native index). */
static void poke_weight(cnn_net *net, int layer, size_t index, float value)
{
    size_t nw;
    ck_assert_int_eq(cnn_layer_param_sizes(net, layer, &nw, NULL), CNN_OK);
    float *w = test_xmalloc(nw * sizeof(float));
    ck_assert_int_eq(cnn_layer_get_weights(net, layer, w, nw, CNN_LAYOUT_NATIVE), CNN_OK);
    w[index] = value;
    ck_assert_int_eq(cnn_layer_set_weights(net, layer, w, nw, CNN_LAYOUT_NATIVE), CNN_OK);
    free(w);
}

/* Runs the net and returns a new output buffer (prefilled with garbage the
 * library must overwrite). */
static float *run(cnn_net *net, const float *in, int batch)
{
    size_t n = out_floats(net) * (size_t)batch;
    float *out = test_xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        out[i] = -12345.0f;
    ck_assert_int_eq(cnn_forward(net, in, batch, out), CNN_OK);
    return out;
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* A window starting at o*stride - pad of `size` cells covers real cell q. */
static int covers(int o, int stride, int pad, int size, int q)
{
    int start = o * stride - pad;
    return start <= q && q < start + size;
}

/* ---- NaN through each layer kind ---------------------------------------- */

/* A NaN input pixel makes exactly the conv outputs whose window covers it NaN
 * (every filter, since all weights are nonzero), and no output of another image. */
START_TEST(test_nan_conv_window)
{
    static const int cfg[][3] = { { 3, 1, 1 }, { 3, 2, 0 }, { 2, 2, 0 }, { 1, 1, 0 }, { 3, 2, 1 } };
    enum { H = 7, W = 6, C = 2, F = 3, NY = 3, NX = 2, NC = 1 };
    test_rng rng;
    test_rng_seed(&rng, 11);
    size_t img = (size_t)H * W * C;
    float *in = test_xmalloc(2 * img * sizeof(float));
    test_fill_uniform(&rng, in, 2 * img, -1.0f, 1.0f);
    in[img + ((size_t)NY * W + NX) * C + NC] = NAN; /* image 1 only */
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        int ks = cfg[k][0], s = cfg[k][1], p = cfg[k][2];
        cnn_net *net = net_new(H, W, C);
        add_conv(net, F, ks, s, p, 1);
        fill_params(net, 0, &rng, 0.1f, 1.0f, 0.25f);
        int oh, ow;
        ck_assert_int_eq(cnn_net_output_shape(net, &oh, &ow, NULL), CNN_OK);
        float *out = run(net, in, 2);
        int nan_count = 0;
        for (int n = 0; n < 2; n++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                    for (int f = 0; f < F; f++) {
                        float v = out[(((size_t)n * (size_t)oh + (size_t)oy) * (size_t)ow +
                                       (size_t)ox) * F + (size_t)f];
                        int expect_nan = n == 1 && covers(oy, s, p, ks, NY) &&
                                         covers(ox, s, p, ks, NX);
                        nan_count += expect_nan;
                        ck_assert_msg(expect_nan ? isnan(v) : isfinite(v),
                                      "k%d s%d p%d: image %d output (%d,%d,%d) is %g", ks, s, p,
                                      n, oy, ox, f, (double)v);
                    }
        ck_assert_int_gt(nan_count, 0);
        free(out);
        cnn_net_destroy(net);
    }
    free(in);
}
END_TEST

/* Every activation keeps NaN of either sign (ReLU must not turn it into 0)
 * and maps the infinities to the mathematical limits. */
START_TEST(test_activations_nan_and_inf)
{
    /* 11 values: one vector of 8 and a tail of 3, each with NaN and infinities. */
    const float x[] = { NAN, -NAN, 1.5f, -2.0f, 0.0f, INFINITY, -INFINITY, 3.5f,
                        -INFINITY, -NAN, INFINITY };
    const size_t n = sizeof x / sizeof x[0];
    const float slope = 0.125f;
    for (int kind = CNN_ACT_RELU; kind <= CNN_ACT_TANH; kind++) {
        cnn_net *net = net_new(1, 1, (int)n);
        ck_assert_int_eq(cnn_layer_add_activation(net, (cnn_activation)kind, slope, NULL), CNN_OK);
        float *y = run(net, x, 1);
        for (size_t i = 0; i < n; i++) {
            double xi = (double)x[i], want;
            if (isnan(x[i])) {
                ck_assert_msg(isnan(y[i]), "activation %d turned NaN into %g", kind, (double)y[i]);
                continue;
            }
            switch (kind) {
            case CNN_ACT_RELU: want = xi < 0 ? 0.0 : xi; break;
            case CNN_ACT_LEAKY_RELU: want = xi < 0 ? (double)slope * xi : xi; break;
            case CNN_ACT_SIGMOID: want = isinf(xi) ? (xi > 0 ? 1.0 : 0.0) : 1.0 / (1.0 + exp(-xi)); break;
            default: want = tanh(xi); break;
            }
            if (isinf(want) || isinf(xi) || want == 0.0)
                ck_assert_msg((double)y[i] == want, "activation %d of %g gave %g, want %g", kind,
                              xi, (double)y[i], want);
            else
                ck_assert_msg(fabs((double)y[i] - want) <= 1e-5 * fabs(want),
                              "activation %d of %g gave %g, want %g", kind, xi, (double)y[i], want);
        }
        free(y);
        cnn_net_destroy(net);
    }
}
END_TEST

/* Max pooling keeps a NaN wherever its window contains one, wherever in the
 * window it sits (first cell, later cell, beside +inf), also with padding and
 * overlapping windows; average pooling too. Ten channels: the marked ones are
 * 0 (in the first group of 8, which vector loops take) and 9 (the remainder);
 * the other channels stay finite. */
START_TEST(test_nan_pooling)
{
    static const int cfg[][3] = { { 2, 2, 0 }, { 3, 2, 1 }, { 3, 1, 1 }, { 2, 1, 0 } };
    static const int marked[] = { 0, 9 };
    enum { H = 4, W = 5, C = 10, INF_Y = 1, INF_X = 3 };
    test_rng rng;
    test_rng_seed(&rng, 12);
    float *in = test_xmalloc((size_t)H * W * C * sizeof(float));
    for (int kind = CNN_POOL_MAX; kind <= CNN_POOL_AVG; kind++)
        for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++)
            for (int ny = 0; ny < H; ny++)
                for (int nx = 0; nx < W; nx++) {
                    int win = cfg[k][0], s = cfg[k][1], p = cfg[k][2];
                    test_fill_uniform(&rng, in, (size_t)H * W * C, -4.0f, 4.0f);
                    for (int m = 0; m < 2; m++) {
                        in[((size_t)INF_Y * W + INF_X) * C + (size_t)marked[m]] = INFINITY;
                        in[((size_t)ny * W + (size_t)nx) * C + (size_t)marked[m]] =
                            (ny + nx + m) % 2 ? NAN : -NAN;
                    }
                    cnn_net *net = net_new(H, W, C);
                    add_pool(net, (cnn_pool_kind)kind, win, s, p);
                    int oh, ow;
                    ck_assert_int_eq(cnn_net_output_shape(net, &oh, &ow, NULL), CNN_OK);
                    float *out = run(net, in, 1);
                    for (int oy = 0; oy < oh; oy++)
                        for (int ox = 0; ox < ow; ox++)
                            for (int c = 0; c < C; c++) {
                                float v = out[((size_t)oy * (size_t)ow + (size_t)ox) * C +
                                              (size_t)c];
                                int is_marked = c == marked[0] || c == marked[1];
                                int has_nan = is_marked && covers(oy, s, p, win, ny) &&
                                              covers(ox, s, p, win, nx);
                                int has_inf = is_marked && covers(oy, s, p, win, INF_Y) &&
                                              covers(ox, s, p, win, INF_X);
                                ck_assert_msg(has_nan ? isnan(v)
                                                      : (has_inf ? v == INFINITY : isfinite(v)),
                                              "%s pool w%d s%d p%d, NaN at (%d,%d): output "
                                              "(%d,%d,%d) is %g",
                                              kind == CNN_POOL_MAX ? "max" : "avg", win, s, p, ny,
                                              nx, oy, ox, c, (double)v);
                            }
                    free(out);
                    cnn_net_destroy(net);
                }
    free(in);
}
END_TEST

/* A NaN input makes every unit of its image NaN in a dense layer (each unit
 * sees the whole input); softmax makes the whole pixel NaN and leaves the
 * other pixels finite and normalised. */
START_TEST(test_nan_dense_and_softmax)
{
    test_rng rng;
    test_rng_seed(&rng, 13);
    float in[2 * 12];
    test_fill_uniform(&rng, in, 24, -1.0f, 1.0f);
    in[7] = NAN; /* image 0 */
    cnn_net *dense = net_new(2, 2, 3);
    ck_assert_int_eq(cnn_layer_add_dense(dense, 5, 1, NULL), CNN_OK);
    fill_params(dense, 0, &rng, 0.1f, 1.0f, 0.5f);
    float *y = run(dense, in, 2);
    for (int u = 0; u < 5; u++) {
        ck_assert_msg(isnan(y[u]), "dense unit %d of the NaN image is %g", u, (double)y[u]);
        ck_assert(isfinite(y[5 + u]));
    }
    free(y);
    cnn_net_destroy(dense);

    /* 2x2 pixels of 4 channels: NaN in the first channel of pixel 1 (the
     * running maximum starts there) and in the third channel of pixel 2. */
    float map[16];
    test_fill_uniform(&rng, map, 16, -3.0f, 3.0f);
    map[4 + 0] = NAN;
    map[8 + 2] = -NAN;
    cnn_net *soft = net_new(2, 2, 4);
    ck_assert_int_eq(cnn_layer_add_softmax(soft, NULL), CNN_OK);
    float *p = run(soft, map, 1);
    for (int px = 0; px < 4; px++) {
        double sum = 0.0;
        for (int c = 0; c < 4; c++) {
            float v = p[px * 4 + c];
            if (px == 1 || px == 2)
                ck_assert_msg(isnan(v), "softmax pixel %d channel %d is %g", px, c, (double)v);
            else
                sum += (double)v;
        }
        if (px == 0 || px == 3)
            ck_assert_msg(fabs(sum - 1.0) < 1e-6, "softmax pixel %d sums to %g", px, sum);
    }
    free(p);
    cnn_net_destroy(soft);
}
END_TEST

/* A whole conv/relu/max-pool/sigmoid/tanh/avg-pool/dense/softmax net: one NaN
 * pixel makes every output of its image NaN and none of the other image. */
START_TEST(test_nan_through_whole_net)
{
    test_rng rng;
    test_rng_seed(&rng, 14);
    cnn_net *net = net_new(8, 8, 2);
    add_conv(net, 4, 3, 1, 1, 1);
    ck_assert_int_eq(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL), CNN_OK);
    add_pool(net, CNN_POOL_MAX, 2, 2, 0);
    ck_assert_int_eq(cnn_layer_add_activation(net, CNN_ACT_SIGMOID, 0.0f, NULL), CNN_OK);
    ck_assert_int_eq(cnn_layer_add_activation(net, CNN_ACT_TANH, 0.0f, NULL), CNN_OK);
    add_pool(net, CNN_POOL_AVG, 2, 2, 0);
    ck_assert_int_eq(cnn_layer_add_dense(net, 6, 1, NULL), CNN_OK);
    ck_assert_int_eq(cnn_layer_add_softmax(net, NULL), CNN_OK);
    ck_assert_int_eq(cnn_net_init_params(net, CNN_INIT_HE_UNIFORM, 5), CNN_OK);
    /* Positive conv weights; the NaN itself must survive ReLU and max pooling. */
    fill_params(net, 0, &rng, 0.1f, 1.0f, 0.0f);
    float in[2 * 8 * 8 * 2];
    test_fill_uniform(&rng, in, sizeof in / sizeof in[0], -1.0f, 1.0f);
    in[8 * 8 * 2 + (5 * 8 + 2) * 2 + 1] = NAN; /* image 1 */
    float *out = run(net, in, 2);
    for (int i = 0; i < 6; i++) {
        ck_assert(isfinite(out[i]));
        ck_assert_msg(isnan(out[6 + i]), "output %d of the NaN image is %g", i, (double)out[6 + i]);
    }
    free(out);
    cnn_net_destroy(net);
}
END_TEST

/* NaN and infinite weights and biases follow IEEE arithmetic: a NaN weight
 * makes its filter's outputs NaN (also where it meets zero padding: 0 * NaN),
 * an infinite weight gives +-inf where it meets a positive pixel and NaN where
 * it meets padding (0 * inf); the other filters stay finite. This assumes a
 * BLAS that does not skip zero operands (OpenBLAS does not). */
START_TEST(test_nan_and_inf_weights)
{
    enum { H = 5, W = 5, C = 2, F = 3 };
    test_rng rng;
    test_rng_seed(&rng, 15);
    float in[5 * 5 * 2];
    test_fill_uniform(&rng, in, sizeof in / sizeof in[0], 0.5f, 1.0f);
    for (int inf = 0; inf < 2; inf++) {
        cnn_net *net = net_new(H, W, C);
        add_conv(net, F, 3, 1, 1, 1);
        fill_params(net, 0, &rng, 0.1f, 1.0f, 0.0f);
        /* filter 1, kernel cell (0, 0), input channel 0 (OHWI) */
        poke_weight(net, 0, (size_t)1 * 3 * 3 * C, inf ? INFINITY : NAN);
        float *out = run(net, in, 1);
        for (int oy = 0; oy < H; oy++)
            for (int ox = 0; ox < W; ox++)
                for (int f = 0; f < F; f++) {
                    float v = out[((size_t)oy * W + (size_t)ox) * F + (size_t)f];
                    int on_pad = oy == 0 || ox == 0; /* cell (0,0) reads row/col -1 */
                    if (f != 1)
                        ck_assert(isfinite(v));
                    else if (!inf || on_pad)
                        ck_assert_msg(isnan(v), "output (%d,%d) is %g, want NaN", oy, ox,
                                      (double)v);
                    else
                        ck_assert_msg(v == INFINITY, "output (%d,%d) is %g, want inf", oy, ox,
                                      (double)v);
                }
        free(out);
        cnn_net_destroy(net);
    }

    /* Dense: NaN weight (unit 2), -inf weight (unit 4), +inf bias (unit 0). */
    cnn_net *dense = net_new(1, 1, 6);
    ck_assert_int_eq(cnn_layer_add_dense(dense, 5, 1, NULL), CNN_OK);
    fill_params(dense, 0, &rng, 0.1f, 1.0f, 0.5f);
    poke_weight(dense, 0, 2 * 6 + 3, NAN);
    poke_weight(dense, 0, 4 * 6 + 0, -INFINITY);
    float bias[5] = { INFINITY, 0.0f, 0.0f, 0.0f, 0.0f };
    ck_assert_int_eq(cnn_layer_set_bias(dense, 0, bias, 5), CNN_OK);
    float *y = run(dense, in, 1);
    ck_assert(y[0] == INFINITY);
    ck_assert(isfinite(y[1]) && isfinite(y[3]));
    ck_assert(isnan(y[2]));
    ck_assert(y[4] == -INFINITY);
    free(y);
    cnn_net_destroy(dense);
}
END_TEST

/* ---- the caller's floating-point environment ---------------------------- */

/* A net with every layer kind, its parameters, and an input with denormals. */
static cnn_net *every_kind_net(void)
{
    cnn_net *net = net_new(9, 9, 3);
    add_conv(net, 6, 3, 1, 1, 1);
    ck_assert_int_eq(cnn_layer_add_activation(net, CNN_ACT_LEAKY_RELU, 0.01f, NULL), CNN_OK);
    add_pool(net, CNN_POOL_MAX, 2, 2, 0);
    add_conv(net, 5, 1, 1, 0, 0);
    ck_assert_int_eq(cnn_layer_add_activation(net, CNN_ACT_SIGMOID, 0.0f, NULL), CNN_OK);
    ck_assert_int_eq(cnn_layer_add_activation(net, CNN_ACT_TANH, 0.0f, NULL), CNN_OK);
    ck_assert_int_eq(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL), CNN_OK);
    add_pool(net, CNN_POOL_AVG, 3, 1, 1);
    ck_assert_int_eq(cnn_layer_add_dense(net, 7, 1, NULL), CNN_OK);
    ck_assert_int_eq(cnn_layer_add_softmax(net, NULL), CNN_OK);
    ck_assert_int_eq(cnn_net_init_params(net, CNN_INIT_XAVIER_NORMAL, 99), CNN_OK);
    return net;
}

static float *every_kind_input(int batch)
{
    test_rng rng;
    test_rng_seed(&rng, 16);
    size_t n = (size_t)batch * 9 * 9 * 3;
    float *in = test_xmalloc(n * sizeof(float));
    test_fill_uniform(&rng, in, n, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i += 3)
        in[i] *= FLT_MIN / 64.0f; /* denormal */
    return in;
}

/* 1 when a denormal survives arithmetic in the calling thread (no FTZ/DAZ). */
static int denormals_work(void)
{
    volatile float min = FLT_MIN, four = 4.0f;
    volatile float tiny = min / four; /* 2^-128, a denormal */
    volatile float back = tiny * four;
    return tiny > 0.0f && back == FLT_MIN;
}

static void forward_every_kind(void)
{
    cnn_net *net = every_kind_net();
    float *in = every_kind_input(3);
    for (int b = 3; b >= 1; b -= 2) /* also a replan */
        free(run(net, in, b));
    free(in);
    cnn_net_destroy(net);
}

/* Rounding mode and denormal handling of the caller are the same after
 * building, running and replanning a net (portable check). */
START_TEST(test_fenv_rounding_and_denormals_unchanged)
{
    ck_assert(denormals_work());
    static const int modes[] = { FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        ck_assert_int_eq(fesetround(modes[i]), 0);
        forward_every_kind();
        int after = fegetround();
        int denormals = denormals_work();
        fesetround(FE_TONEAREST);
        ck_assert_msg(after == modes[i], "rounding mode %d became %d", modes[i], after);
        ck_assert_msg(denormals, "denormals are flushed after a forward pass");
    }
}
END_TEST

#if HAVE_MXCSR
/* MXCSR control bits (FTZ, DAZ, rounding, exception masks) are unchanged. */
START_TEST(test_mxcsr_unchanged)
{
    unsigned before = _mm_getcsr() & ~MXCSR_FLAGS;
    ck_assert_uint_eq(before & (MXCSR_FTZ | MXCSR_DAZ), 0);
    forward_every_kind();
    unsigned after = _mm_getcsr() & ~MXCSR_FLAGS;
    ck_assert_msg(after == before, "MXCSR control bits went from %#x to %#x", before, after);
}
END_TEST

/* A caller that runs with FTZ and DAZ on keeps them on. */
START_TEST(test_mxcsr_ftz_daz_kept)
{
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | MXCSR_FTZ | MXCSR_DAZ);
    unsigned before = _mm_getcsr() & ~MXCSR_FLAGS;
    forward_every_kind();
    unsigned after = _mm_getcsr() & ~MXCSR_FLAGS;
    _mm_setcsr(saved);
    ck_assert_msg(after == before, "MXCSR control bits went from %#x to %#x", before, after);
}
END_TEST

/* Whether this CPU (or emulator: valgrind ignores FTZ/DAZ) keeps the bits set. */
static int mxcsr_ftz_daz_settable(void)
{
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | MXCSR_FTZ | MXCSR_DAZ);
    unsigned got = _mm_getcsr();
    _mm_setcsr(saved);
    return (got & (MXCSR_FTZ | MXCSR_DAZ)) == (MXCSR_FTZ | MXCSR_DAZ);
}
#endif

/* ---- denormal inputs ---------------------------------------------------- */

/* Denormal inputs are computed exactly where the arithmetic is exact (values
 * are multiples of 2^-146 so halving, quartering and sums stay representable):
 * a library that flushed them to zero would give zeros. */
START_TEST(test_denormal_inputs)
{
    const float q = ldexpf(1.0f, -146);
    float x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (float)(i + 1) * 4.0f * q * (i % 2 ? -1.0f : 1.0f);

    /* ReLU and leaky ReLU (slope 1/4). */
    for (int kind = CNN_ACT_RELU; kind <= CNN_ACT_LEAKY_RELU; kind++) {
        cnn_net *net = net_new(1, 1, 8);
        ck_assert_int_eq(cnn_layer_add_activation(net, (cnn_activation)kind, 0.25f, NULL), CNN_OK);
        float *y = run(net, x, 1);
        for (int i = 0; i < 8; i++) {
            float want = x[i] < 0.0f ? (kind == CNN_ACT_RELU ? 0.0f : 0.25f * x[i]) : x[i];
            ck_assert(want != 0.0f || kind == CNN_ACT_RELU);
            ck_assert_msg(same_bits(y[i], want), "activation %d of %g gave %g", kind,
                          (double)x[i], (double)y[i]);
        }
        free(y);
        cnn_net_destroy(net);
    }

    /* tanh(x) = x and sigmoid(x) = 1/2 to float precision for tiny x. */
    cnn_net *act = net_new(1, 1, 8);
    ck_assert_int_eq(cnn_layer_add_activation(act, CNN_ACT_TANH, 0.0f, NULL), CNN_OK);
    ck_assert_int_eq(cnn_layer_add_activation(act, CNN_ACT_SIGMOID, 0.0f, NULL), CNN_OK);
    float *y = run(act, x, 1);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(fabsf(y[i] - 0.5f) <= FLT_EPSILON, "sigmoid(tanh(%g)) = %g", (double)x[i],
                      (double)y[i]);
    free(y);
    cnn_net_destroy(act);
    cnn_net *th = net_new(1, 1, 8);
    ck_assert_int_eq(cnn_layer_add_activation(th, CNN_ACT_TANH, 0.0f, NULL), CNN_OK);
    y = run(th, x, 1);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(y[i] != 0.0f && fabsf(y[i] - x[i]) <= fabsf(x[i]) * FLT_EPSILON,
                      "tanh(%g) = %g", (double)x[i], (double)y[i]);
    free(y);
    cnn_net_destroy(th);

    /* Pointwise conv (weight 1/2) and dense (unit u sums x[0..u]). */
    cnn_net *conv = net_new(2, 2, 2);
    add_conv(conv, 1, 1, 1, 0, 0);
    float cw[2] = { 0.5f, 0.0f };
    ck_assert_int_eq(cnn_layer_set_weights(conv, 0, cw, 2, CNN_LAYOUT_NATIVE), CNN_OK);
    y = run(conv, x, 1);
    for (int p = 0; p < 4; p++)
        ck_assert_msg(same_bits(y[p], 0.5f * x[2 * p]), "conv pixel %d: %g", p, (double)y[p]);
    free(y);
    cnn_net_destroy(conv);

    cnn_net *dense = net_new(1, 1, 8);
    ck_assert_int_eq(cnn_layer_add_dense(dense, 8, 0, NULL), CNN_OK);
    float dw[64] = { 0 };
    for (int u = 0; u < 8; u++)
        for (int i = 0; i <= u; i++)
            dw[u * 8 + i] = 1.0f;
    ck_assert_int_eq(cnn_layer_set_weights(dense, 0, dw, 64, CNN_LAYOUT_NATIVE), CNN_OK);
    y = run(dense, x, 1);
    double sum = 0.0;
    for (int u = 0; u < 8; u++) {
        sum += (double)x[u];
        ck_assert_msg((double)y[u] == sum, "dense unit %d: %g, want %g", u, (double)y[u], sum);
    }
    free(y);
    cnn_net_destroy(dense);

    /* Max and average pooling over a 2x2x2 map of denormals. */
    for (int kind = CNN_POOL_MAX; kind <= CNN_POOL_AVG; kind++) {
        cnn_net *pool = net_new(2, 2, 2);
        add_pool(pool, (cnn_pool_kind)kind, 2, 2, 0);
        y = run(pool, x, 1);
        for (int c = 0; c < 2; c++) {
            double want = kind == CNN_POOL_MAX ? -INFINITY : 0.0;
            for (int p = 0; p < 4; p++)
                want = kind == CNN_POOL_MAX ? fmax(want, (double)x[2 * p + c])
                                            : want + (double)x[2 * p + c] / 4.0;
            ck_assert(want != 0.0);
            ck_assert_msg((double)y[c] == want, "pool %d channel %d: %g, want %g", kind, c,
                          (double)y[c], want);
        }
        free(y);
        cnn_net_destroy(pool);
    }

    /* Softmax of denormals: uniform. */
    cnn_net *soft = net_new(1, 1, 8);
    ck_assert_int_eq(cnn_layer_add_softmax(soft, NULL), CNN_OK);
    y = run(soft, x, 1);
    for (int i = 0; i < 8; i++)
        ck_assert(fabsf(y[i] - 0.125f) <= FLT_EPSILON);
    free(y);
    cnn_net_destroy(soft);
}
END_TEST

/* ---- size limits -------------------------------------------------------- */

/* The documented overflow refusals, each leaving no net or the net unchanged.
 * Paths that need the memory they guard cannot run here: a conv GEMM with
 * M = batch*OH*OW >= 2^31 rows (gemm.c splits M into INT_MAX blocks) needs
 * more than 8 GB, so it is covered by reading, not by this test. */
START_TEST(test_overflow_refused)
{
    cnn_net *net = (cnn_net *)&net; /* must be reset to NULL on failure */
    ck_assert_int_eq(cnn_net_create(&net, 65536, 32768, 1), CNN_E_OVERFLOW); /* 2^31 elements */
    ck_assert_ptr_null(net);
    ck_assert_str_ne(cnn_net_last_error(NULL), "");
    ck_assert_int_eq(cnn_net_create(&net, INT_MAX, INT_MAX, INT_MAX), CNN_E_OVERFLOW);
    ck_assert_ptr_null(net);

    /* Conv output of more than INT_MAX elements per image: 60001^2 > 2^31. */
    net = net_new(1, 1, 1);
    cnn_conv_desc d = CNN_CONV_DESC_INIT;
    d.filters = 1;
    d.kernel_h = d.kernel_w = 1;
    d.pad_h = d.pad_w = 30000;
    ck_assert_int_eq(cnn_layer_add_conv(net, &d, NULL), CNN_E_OVERFLOW);
    int layers = -1;
    ck_assert_int_eq(cnn_net_layer_count(net, &layers), CNN_OK);
    ck_assert_int_eq(layers, 0);
    cnn_net_destroy(net);

    /* Conv kernel of more than INT_MAX elements (2 x 1 x INT_MAX). */
    net = net_new(1, 1, INT_MAX);
    d.kernel_h = 2;
    d.pad_h = 1;
    d.pad_w = 0;
    ck_assert_int_eq(cnn_layer_add_conv(net, &d, NULL), CNN_E_OVERFLOW);
    /* Dense of 2^29 units on INT_MAX inputs: its weights overflow size_t
     * where size_t is 32-bit and cannot be allocated where it is 64-bit. */
    cnn_status st = cnn_layer_add_dense(net, 1 << 29, 1, NULL); /* 2^62 bytes */
    ck_assert_msg(st == CNN_E_OVERFLOW || st == CNN_E_NOMEM, "dense: %s", cnn_status_string(st));
    ck_assert_int_eq(cnn_net_layer_count(net, &layers), CNN_OK);
    ck_assert_int_eq(layers, 0);
    cnn_net_destroy(net);
}
END_TEST

/* A batch whose activations do not fit in memory is refused before any layer
 * runs, and the output is untouched. The net pads a 1x1 input into a
 * 46339^2 ~ 2^31 map (the largest per-image size allowed) and pools it back
 * to 1x1; 2^24 images would need ~2^57 bytes, more than any address space.
 * Code that multiplied these sizes in int would wrap and write out of bounds.
 * With 64-bit size_t the byte counts cannot overflow (at most INT_MAX^2 * 4),
 * so this refusal is CNN_E_NOMEM; CNN_E_OVERFLOW needs a 32-bit size_t. */
START_TEST(test_huge_batch_refused)
{
    const int pad = 23169, side = 2 * pad + 1, batch = 1 << 24;
    cnn_net *net = net_new(1, 1, 1);
    add_conv(net, 1, 1, 1, pad, 1);
    add_pool(net, CNN_POOL_MAX, side, 1, 0);
    ck_assert_uint_eq(out_floats(net), 1);
    float *in = calloc((size_t)batch, sizeof(float));
    float *out = test_xmalloc((size_t)batch * sizeof(float));
    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < (size_t)batch; i++)
        out[i] = 7.0f;
    cnn_status st = cnn_forward(net, in, batch, out);
    ck_assert_msg(st == CNN_E_NOMEM || st == CNN_E_OVERFLOW, "forward: %s", cnn_status_string(st));
    ck_assert_str_ne(cnn_net_last_error(net), "");
    ck_assert(out[0] == 7.0f && out[batch - 1] == 7.0f);
    ck_assert_int_eq(cnn_forward(net, in, 0, out), CNN_E_INVALID_ARG);
    free(in);
    free(out);
    cnn_net_destroy(net);
}
END_TEST

#if SIZE_MAX <= UINT32_MAX
/* Only with a 32-bit size_t can the input of a valid batch overflow it. */
START_TEST(test_batch_overflows_size_t)
{
    cnn_net *net = net_new(1024, 1024, 1);
    ck_assert_int_eq(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL), CNN_OK);
    float one = 0.0f, other = 0.0f;
    ck_assert_int_eq(cnn_forward(net, &one, 4096, &other), CNN_E_OVERFLOW); /* 2^32 floats */
    cnn_net_destroy(net);
}
END_TEST
#endif

/* ---- determinism -------------------------------------------------------- */

/* The same input and batch size give the same bits run after run, after
 * replans (3, 1, 3), after a forward whose input held NaN (stale buffers must
 * not leak), and whatever the output buffer held before. */
START_TEST(test_bit_identical_runs)
{
    cnn_net *net = every_kind_net();
    const int batch = 3;
    float *in = every_kind_input(batch);
    size_t n1 = out_floats(net), n3 = n1 * (size_t)batch, img = 9 * 9 * 3;
    float *first3 = run(net, in, batch);
    float *first1 = run(net, in, 1);
    for (int r = 0; r < 20; r++) {
        float *y = test_xmalloc(n3 * sizeof(float));
        for (size_t i = 0; i < n3; i++)
            y[i] = r % 2 ? NAN : (float)r;
        ck_assert_int_eq(cnn_forward(net, in, batch, y), CNN_OK);
        ck_assert_msg(memcmp(y, first3, n3 * sizeof(float)) == 0, "run %d differs", r);
        free(y);
    }
    float *again1 = run(net, in, 1);
    ck_assert(memcmp(again1, first1, n1 * sizeof(float)) == 0);
    free(again1);

    size_t n_in = (size_t)batch * img;
    float *nan_in = test_xmalloc(n_in * sizeof(float));
    memcpy(nan_in, in, n_in * sizeof(float));
    for (size_t i = 0; i < n_in; i += 5)
        nan_in[i] = NAN;
    float *poisoned = run(net, nan_in, batch);
    ck_assert(isnan(poisoned[0]));
    free(poisoned);
    free(nan_in);
    float *after = run(net, in, batch);
    ck_assert_msg(memcmp(after, first3, n3 * sizeof(float)) == 0,
                  "a NaN forward changed the next clean result");
    free(after);

    /* Batch 1 and batch 3 may differ in the last bits (DESIGN.md), not more. */
    ck_assert(test_rel_error_f(first1, first3, n1) < 1e-5);
    free(first1);
    free(first3);
    free(in);
    cnn_net_destroy(net);
}
END_TEST

static Suite *numbers_suite(void)
{
    Suite *s = suite_create("numbers");
    TCase *nan = tcase_create("nan_inf");
    tcase_add_test(nan, test_nan_conv_window);
    tcase_add_test(nan, test_activations_nan_and_inf);
    tcase_add_test(nan, test_nan_pooling);
    tcase_add_test(nan, test_nan_dense_and_softmax);
    tcase_add_test(nan, test_nan_through_whole_net);
    tcase_add_test(nan, test_nan_and_inf_weights);
    suite_add_tcase(s, nan);

    TCase *env = tcase_create("fp_environment");
    tcase_add_test(env, test_fenv_rounding_and_denormals_unchanged);
#if HAVE_MXCSR
    tcase_add_test(env, test_mxcsr_unchanged);
    if (mxcsr_ftz_daz_settable())
        tcase_add_test(env, test_mxcsr_ftz_daz_kept);
    else
        fprintf(stderr, "test_mxcsr_ftz_daz_kept not run: FTZ/DAZ cannot be set here "
                        "(an emulator such as valgrind)\n");
#endif
    tcase_add_test(env, test_denormal_inputs);
    suite_add_tcase(s, env);

    TCase *limits = tcase_create("limits");
    tcase_add_test(limits, test_overflow_refused);
    tcase_add_test(limits, test_huge_batch_refused);
#if SIZE_MAX <= UINT32_MAX
    tcase_add_test(limits, test_batch_overflows_size_t);
#endif
    suite_add_tcase(s, limits);

    TCase *det = tcase_create("determinism");
    tcase_add_test(det, test_bit_identical_runs);
    suite_add_tcase(s, det);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(numbers_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
