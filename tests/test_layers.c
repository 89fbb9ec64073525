/* Every layer kind against the naive references of reference.c, on seeded
 * random shapes, strides, paddings and batch sizes. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"
#include "net_harness.h"
#include "reference.h"
#include "support.h"

#define TOL 1e-5       /* float layer against the double reference */
#define BATCH_TOL 1e-6 /* batch of N against N single-image runs */

/* Mirrors CONV_COLUMN_BYTES of src/layers/conv.c: im2col rows per tile. */
static size_t conv_tile_rows(size_t k)
{
    size_t rows = ((size_t)4 << 20) / sizeof(float) / k;
    return rows ? rows : 1;
}

static int sweep_cases(int full) { return test_small() ? 6 : full; }

static void describe(char *buf, size_t size, const char *what, ref_shape s, ref_window w,
                     int out_c)
{
    snprintf(buf, size, "%s: in %dx%dx%dx%d window %dx%d stride %dx%d pad %dx%d out_c %d", what,
             s.n, s.h, s.w, s.c, w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, out_c);
}

/* A window with random size 1..max_kernel, stride 1..3 and padding (0..2 for
 * conv, at most half the window for pooling). */
static ref_window random_window(test_rng *rng, int max_kernel, int pool)
{
    ref_window w;
    w.kh = test_rng_int(rng, 1, max_kernel);
    w.kw = test_rng_int(rng, 1, max_kernel);
    w.sh = test_rng_int(rng, 1, 3);
    w.sw = test_rng_int(rng, 1, 3);
    w.ph = test_rng_int(rng, 0, pool ? w.kh / 2 : 2);
    w.pw = test_rng_int(rng, 0, pool ? w.kw / 2 : 2);
    return w;
}

/* An input extent the window fits once padded, up to `extra` larger. */
static int random_extent(test_rng *rng, int kernel, int pad, int extra)
{
    int lo = kernel - 2 * pad;
    return test_rng_int(rng, lo < 1 ? 1 : lo, kernel + extra);
}

/* Batch 1 or 3, alternating over the cases. */
static int case_batch(int i) { return i % 2 ? 3 : 1; }

/* The net's batch forward agrees with one forward per image, and repeats
 * bit-identically. `y` is the batch output already computed. */
static void expect_batch_consistent(cnn_net *net, const float *x, const float *y, int batch,
                                    size_t in_per_image, size_t out_per_image, const char *what)
{
    if (batch < 2)
        return;
    for (int b = 0; b < batch; b++) {
        float *one = harness_forward(net, x + (size_t)b * in_per_image, 1, out_per_image);
        double err = test_rel_error_f(one, y + (size_t)b * out_per_image, out_per_image);
        ck_assert_msg(err <= BATCH_TOL, "%s: image %d alone differs from the batch by %g", what,
                      b, err);
        free(one);
    }
    size_t n = (size_t)batch * out_per_image;
    float *again = harness_forward(net, x, batch, n);
    ck_assert_msg(memcmp(again, y, n * sizeof(float)) == 0,
                  "%s: a repeated forward is not bit-identical", what);
    free(again);
}

static cnn_pool_desc pool_desc(ref_window w, cnn_pool_kind kind, int count_pad)
{
    cnn_pool_desc d;
    cnn_pool_desc_init(&d);
    d.kind = kind;
    d.window_h = w.kh;
    d.window_w = w.kw;
    d.stride_h = w.sh;
    d.stride_w = w.sw;
    d.pad_h = w.ph;
    d.pad_w = w.pw;
    d.count_pad = count_pad;
    return d;
}

/* Parameters given to one conv or dense layer, in native layout. */
typedef struct layer_params {
    float *weights; /* native layout */
    float *bias;    /* NULL without bias */
} layer_params;

static void free_params(layer_params *p)
{
    free(p->weights);
    free(p->bias);
}

/* Sets random weights (given in `layout`) and biases on layer `layer` after
 * checking the counts; returns them in native layout for the reference. */
static layer_params set_random_params(cnn_net *net, int layer, test_rng *rng,
                                      cnn_weight_layout layout, size_t weights, size_t biases,
                                      void (*to_native)(const float *, float *, const void *),
                                      const void *geometry, const char *what)
{
    size_t nw = 0, nb = 0;
    harness_ok(net, cnn_layer_param_sizes(net, layer, &nw, &nb), what);
    ck_assert_msg(nw == weights && nb == biases, "%s: %zu weights and %zu biases, expected %zu, %zu",
                  what, nw, nb, weights, biases);
    layer_params p = { harness_random(rng, nw, -1.0f, 1.0f), NULL };
    harness_ok(net, cnn_layer_set_weights(net, layer, p.weights, nw, layout), what);
    if (layout == CNN_LAYOUT_PYTORCH) {
        float *native = test_xmalloc(nw * sizeof(float));
        to_native(p.weights, native, geometry);
        free(p.weights);
        p.weights = native;
    }
    if (nb) {
        p.bias = harness_random(rng, nb, -1.0f, 1.0f);
        harness_ok(net, cnn_layer_set_bias(net, layer, p.bias, nb), what);
    }
    return p;
}

/* ---- convolution ------------------------------------------------------- */

typedef struct conv_geometry {
    int filters, kh, kw, in_c;
} conv_geometry;

static void conv_oihw_to_native(const float *src, float *dst, const void *geometry)
{
    const conv_geometry *g = geometry;
    ref_oihw_to_ohwi(src, g->filters, g->kh, g->kw, g->in_c, dst);
}

typedef struct conv_case {
    ref_shape in;
    ref_window win;
    int filters;
    int bias;
    cnn_weight_layout layout;
} conv_case;

/* Builds a one-conv net, checks its shape and runs it against ref_conv. */
static void check_conv(const conv_case *cc, test_rng *rng, const char *label)
{
    char what[200];
    describe(what, sizeof what, label, cc->in, cc->win, cc->filters);
    cnn_net *net = harness_net(cc->in);
    cnn_conv_desc d = harness_conv_desc(cc->win, cc->filters, cc->bias);
    int index = -1;
    harness_ok(net, cnn_layer_add_conv(net, &d, &index), what);
    ck_assert_int_eq(index, 0);
    ref_shape os = ref_window_shape(cc->in, cc->win, cc->filters);
    harness_expect_shape(net, 0, os.h, os.w, os.c, what);

    conv_geometry g = { cc->filters, cc->win.kh, cc->win.kw, cc->in.c };
    size_t nw = (size_t)g.filters * (size_t)g.kh * (size_t)g.kw * (size_t)g.in_c;
    layer_params p = set_random_params(net, 0, rng, cc->layout, nw,
                                       cc->bias ? (size_t)cc->filters : 0, conv_oihw_to_native,
                                       &g, what);
    size_t in_n = ref_elems(cc->in), out_n = ref_elems(os);
    float *x = harness_random(rng, in_n, -1.0f, 1.0f);
    double *xd = harness_widen(x, in_n);
    double *ref = test_xmalloc(out_n * sizeof(double));
    ref_conv(xd, cc->in, p.weights, p.bias, cc->filters, cc->win, ref);
    float *y = harness_forward(net, x, cc->in.n, out_n);
    harness_expect_close(y, ref, out_n, TOL, what);
    expect_batch_consistent(net, x, y, cc->in.n, in_n / (size_t)cc->in.n,
                            out_n / (size_t)cc->in.n, what);
    free(y);
    free(ref);
    free(xd);
    free(x);
    free_params(&p);
    cnn_net_destroy(net);
}

/* A random conv case; one in four is pointwise (1x1, stride 1, no padding). */
static conv_case random_conv_case(test_rng *rng, int i)
{
    int big = test_small() ? 0 : 1;
    conv_case cc;
    cc.win = random_window(rng, 5, 0);
    if (i % 4 == 0)
        cc.win = (ref_window){ 1, 1, 1, 1, 0, 0 };
    cc.in.n = case_batch(i);
    cc.in.h = random_extent(rng, cc.win.kh, cc.win.ph, big ? 10 : 3);
    cc.in.w = random_extent(rng, cc.win.kw, cc.win.pw, big ? 10 : 3);
    cc.in.c = test_rng_int(rng, 1, big ? 20 : 5);
    cc.filters = test_rng_int(rng, 1, big ? 20 : 5);
    cc.bias = test_rng_int(rng, 0, 3) != 0;
    cc.layout = CNN_LAYOUT_NATIVE;
    return cc;
}

START_TEST(conv_random_shapes)
{
    test_rng rng;
    test_rng_seed(&rng, 101);
    for (int i = 0, n = sweep_cases(300); i < n; i++) {
        conv_case cc = random_conv_case(&rng, i);
        check_conv(&cc, &rng, "conv sweep");
    }
}
END_TEST

START_TEST(conv_pointwise_and_1x1_variants)
{
    test_rng rng;
    test_rng_seed(&rng, 102);
    /* 1x1 kernels: the pointwise GEMM path, and 1x1 with stride or padding (im2col). */
    const ref_window wins[] = { { 1, 1, 1, 1, 0, 0 }, { 1, 1, 2, 3, 0, 0 }, { 1, 1, 1, 1, 1, 0 },
                                { 1, 1, 1, 1, 0, 2 } };
    for (int i = 0; i < 8; i++) {
        conv_case cc = { { case_batch(i), 3 + i, 7 - i / 2, 1 + 2 * i }, wins[i % 4], 3 + i, 1,
                         CNN_LAYOUT_NATIVE };
        check_conv(&cc, &rng, "conv 1x1");
    }
}
END_TEST

START_TEST(conv_without_bias)
{
    test_rng rng;
    test_rng_seed(&rng, 103);
    for (int i = 0, n = sweep_cases(40); i < n; i++) {
        conv_case cc = random_conv_case(&rng, i);
        cc.bias = 0;
        check_conv(&cc, &rng, "conv without bias");
    }
}
END_TEST

START_TEST(conv_pytorch_weights)
{
    test_rng rng;
    test_rng_seed(&rng, 104);
    for (int i = 0, n = sweep_cases(40); i < n; i++) {
        conv_case cc = random_conv_case(&rng, i);
        cc.layout = CNN_LAYOUT_PYTORCH;
        check_conv(&cc, &rng, "conv with OIHW weights");
    }
}
END_TEST

/* Nonzero when some tile boundary falls inside an image of `per_image` rows. */
static int tile_splits_image(size_t m, size_t per_image, size_t rows)
{
    for (size_t first = rows; first < m; first += rows)
        if (first % per_image != 0)
            return 1;
    return 0;
}

START_TEST(conv_im2col_tiles)
{
    test_rng rng;
    test_rng_seed(&rng, 105);
    /* Small mode uses deep inputs: a long GEMM row makes a tile a few rows. */
    conv_case cc = { { 1, 130, 100, 32 }, { 3, 3, 1, 1, 1, 1 }, 8, 1, CNN_LAYOUT_NATIVE };
    if (test_small())
        cc = (conv_case){ { 1, 12, 12, 2048 }, { 3, 3, 1, 1, 1, 1 }, 3, 1, CNN_LAYOUT_NATIVE };
    size_t k = (size_t)cc.win.kh * (size_t)cc.win.kw * (size_t)cc.in.c;
    ref_shape os = ref_window_shape(cc.in, cc.win, cc.filters);
    size_t m = (size_t)os.h * (size_t)os.w;
    ck_assert_msg(m > 2 * conv_tile_rows(k), "%zu rows fit in fewer than 3 tiles of %zu", m,
                  conv_tile_rows(k));
    check_conv(&cc, &rng, "conv in several tiles");
}
END_TEST

/* One im2col row longer than the whole column buffer (4 MiB): the library
 * lowers it in K slices and accumulates the GEMM over them. Padding puts
 * zeros inside the slices too. */
START_TEST(conv_k_slices)
{
    test_rng rng;
    test_rng_seed(&rng, 108);
    conv_case cc = { { 1, 2, 2, 262145 }, { 2, 2, 1, 1, 1, 1 }, 2, 1, CNN_LAYOUT_NATIVE };
    size_t k = (size_t)cc.win.kh * (size_t)cc.win.kw * (size_t)cc.in.c;
    ck_assert_msg(k * sizeof(float) > ((size_t)4 << 20), "a row of %zu floats fits the buffer", k);
    check_conv(&cc, &rng, "conv in K slices");
}
END_TEST

START_TEST(conv_im2col_tiles_across_images)
{
    test_rng rng;
    test_rng_seed(&rng, 106);
    conv_case cc = { { 3, 50, 45, 32 }, { 3, 3, 1, 1, 0, 0 }, 6, 1, CNN_LAYOUT_NATIVE };
    if (test_small())
        cc = (conv_case){ { 3, 6, 6, 2048 }, { 3, 3, 1, 1, 1, 1 }, 3, 1, CNN_LAYOUT_NATIVE };
    size_t k = (size_t)cc.win.kh * (size_t)cc.win.kw * (size_t)cc.in.c;
    ref_shape os = ref_window_shape(cc.in, cc.win, cc.filters);
    size_t per_image = (size_t)os.h * (size_t)os.w;
    ck_assert_msg(tile_splits_image(per_image * (size_t)os.n, per_image, conv_tile_rows(k)),
                  "no tile of %zu rows crosses an image of %zu rows", conv_tile_rows(k),
                  per_image);
    check_conv(&cc, &rng, "conv tiles across images");
}
END_TEST

/* ---- pooling ------------------------------------------------------------ */

typedef struct pool_case {
    ref_shape in;
    ref_window win;
    cnn_pool_kind kind;
    int count_pad;
    float lo, hi; /* input range; all-negative inputs expose padding read as zero */
} pool_case;

static void check_pool(const pool_case *pc, test_rng *rng, const char *label)
{
    char what[240], tag[80];
    snprintf(tag, sizeof tag, "%s %s count_pad %d", label, pc->kind == CNN_POOL_MAX ? "max" : "avg",
             pc->count_pad);
    describe(what, sizeof what, tag, pc->in, pc->win, pc->in.c);
    cnn_net *net = harness_net(pc->in);
    cnn_pool_desc d = pool_desc(pc->win, pc->kind, pc->count_pad);
    harness_ok(net, cnn_layer_add_pool(net, &d, NULL), what);
    ref_shape os = ref_window_shape(pc->in, pc->win, pc->in.c);
    harness_expect_shape(net, 0, os.h, os.w, os.c, what);
    size_t in_n = ref_elems(pc->in), out_n = ref_elems(os);
    float *x = harness_random(rng, in_n, pc->lo, pc->hi);
    double *xd = harness_widen(x, in_n);
    double *ref = test_xmalloc(out_n * sizeof(double));
    if (pc->kind == CNN_POOL_MAX)
        ref_max_pool(xd, pc->in, pc->win, ref);
    else
        ref_avg_pool(xd, pc->in, pc->win, pc->count_pad, ref);
    float *y = harness_forward(net, x, pc->in.n, out_n);
    harness_expect_close(y, ref, out_n, TOL, what);
    expect_batch_consistent(net, x, y, pc->in.n, in_n / (size_t)pc->in.n,
                            out_n / (size_t)pc->in.n, what);
    free(y);
    free(ref);
    free(xd);
    free(x);
    cnn_net_destroy(net);
}

START_TEST(pool_random_shapes)
{
    test_rng rng;
    test_rng_seed(&rng, 201);
    int big = test_small() ? 0 : 1;
    for (int i = 0, n = sweep_cases(400); i < n; i++) {
        pool_case pc;
        pc.win = random_window(&rng, 4, 1);
        pc.in.n = case_batch(i);
        pc.in.h = random_extent(&rng, pc.win.kh, pc.win.ph, big ? 10 : 3);
        pc.in.w = random_extent(&rng, pc.win.kw, pc.win.pw, big ? 10 : 3);
        pc.in.c = test_rng_int(&rng, 1, big ? 20 : 4);
        pc.kind = (i / 2) % 2 ? CNN_POOL_AVG : CNN_POOL_MAX;
        pc.count_pad = (i / 4) % 2;
        pc.lo = (i / 8) % 3 == 0 ? -2.0f : -1.0f;
        pc.hi = (i / 8) % 3 == 0 ? -1.0f : 1.0f;
        check_pool(&pc, &rng, "pool sweep");
    }
}
END_TEST

/* Padded windows on negative inputs: max must ignore the pad, avg must
 * divide by the right count (both settings). */
START_TEST(pool_padding_semantics)
{
    test_rng rng;
    test_rng_seed(&rng, 202);
    const ref_window wins[] = { { 3, 3, 1, 1, 1, 1 }, { 2, 4, 2, 1, 1, 2 }, { 3, 2, 2, 2, 1, 1 } };
    for (int i = 0; i < 12; i++) {
        pool_case pc = { { case_batch(i), 5, 6, 3 }, wins[i % 3],
                         i % 2 ? CNN_POOL_AVG : CNN_POOL_MAX, (i / 2) % 2, -3.0f, -1.0f };
        check_pool(&pc, &rng, "padded pool");
    }
}
END_TEST

/* ---- activations -------------------------------------------------------- */

static void ref_activation(cnn_activation kind, float slope, const double *in, size_t n,
                           double *out)
{
    switch (kind) {
    case CNN_ACT_RELU: ref_relu(in, n, out); break;
    case CNN_ACT_LEAKY_RELU: ref_leaky_relu(in, n, (double)slope, out); break;
    case CNN_ACT_SIGMOID: ref_sigmoid(in, n, out); break;
    case CNN_ACT_TANH: ref_tanh(in, n, out); break;
    }
}

static const char *activation_name(cnn_activation kind)
{
    static const char *const names[] = { "relu", "leaky_relu", "sigmoid", "tanh" };
    return names[kind];
}

/* An activation alone (after_conv = 0) or after a conv (where a fused epilogue may run). */
static void check_activation(cnn_activation kind, float slope, ref_shape in, int after_conv,
                             test_rng *rng)
{
    char what[200];
    ref_window w = { 3, 2, 1, 1, 1, 0 };
    int filters = in.c + 2;
    if (after_conv)
        describe(what, sizeof what, activation_name(kind), in, w, filters);
    else
        snprintf(what, sizeof what, "%s: in %dx%dx%dx%d", activation_name(kind), in.n, in.h,
                 in.w, in.c);
    cnn_net *net = harness_net(in);
    layer_params p = { NULL, NULL };
    ref_shape mid = in;
    if (after_conv) {
        cnn_conv_desc d = harness_conv_desc(w, filters, 1);
        harness_ok(net, cnn_layer_add_conv(net, &d, NULL), what);
        mid = ref_window_shape(in, w, filters);
        size_t nw = (size_t)filters * (size_t)(w.kh * w.kw) * (size_t)in.c;
        p = set_random_params(net, 0, rng, CNN_LAYOUT_NATIVE, nw, (size_t)filters, NULL, NULL,
                              what);
    }
    int index = -1;
    harness_ok(net, cnn_layer_add_activation(net, kind, slope, &index), what);
    ck_assert_int_eq(index, after_conv ? 1 : 0);
    harness_expect_shape(net, index, mid.h, mid.w, mid.c, what);
    size_t in_n = ref_elems(in), out_n = ref_elems(mid);
    float *x = harness_random(rng, in_n, -6.0f, 6.0f);
    double *xd = harness_widen(x, in_n);
    double *pre = test_xmalloc(out_n * sizeof(double));
    double *ref = test_xmalloc(out_n * sizeof(double));
    if (after_conv)
        ref_conv(xd, in, p.weights, p.bias, filters, w, pre);
    else
        memcpy(pre, xd, in_n * sizeof(double));
    ref_activation(kind, slope, pre, out_n, ref);
    float *y = harness_forward(net, x, in.n, out_n);
    harness_expect_close(y, ref, out_n, TOL, what);
    expect_batch_consistent(net, x, y, in.n, in_n / (size_t)in.n, out_n / (size_t)in.n, what);
    free(y);
    free(ref);
    free(pre);
    free(xd);
    free(x);
    free_params(&p);
    cnn_net_destroy(net);
}

START_TEST(activation_random_shapes)
{
    test_rng rng;
    test_rng_seed(&rng, 301);
    int big = test_small() ? 0 : 1;
    for (int i = 0, n = sweep_cases(120); i < n; i++) {
        cnn_activation kind = (cnn_activation)(i % 4);
        float slope = test_rng_float(&rng, 0.01f, 0.5f);
        ref_shape in = { case_batch(i / 4), test_rng_int(&rng, 1, big ? 12 : 4),
                         test_rng_int(&rng, 1, big ? 12 : 4), test_rng_int(&rng, 1, big ? 20 : 4) };
        check_activation(kind, slope, in, 0, &rng);
    }
}
END_TEST

START_TEST(activation_after_conv)
{
    test_rng rng;
    test_rng_seed(&rng, 302);
    for (int i = 0; i < 8; i++) {
        ref_shape in = { case_batch(i / 4), 3 + i, 2 + i, 1 + i % 3 };
        check_activation((cnn_activation)(i % 4), 0.1f, in, 1, &rng);
    }
}
END_TEST

/* ---- dense -------------------------------------------------------------- */

typedef struct dense_geometry {
    int units, h, w, c;
} dense_geometry;

/* Dense weights with columns in NCHW-flatten order to columns in NHWC order. */
static void dense_nchw_to_native(const float *src, float *dst, const void *geometry)
{
    const dense_geometry *g = geometry;
    size_t inputs = (size_t)g->h * (size_t)g->w * (size_t)g->c, i = 0;
    for (int u = 0; u < g->units; u++)
        for (int ch = 0; ch < g->c; ch++)
            for (int y = 0; y < g->h; y++)
                for (int x = 0; x < g->w; x++) {
                    size_t col = ((size_t)y * (size_t)g->w + (size_t)x) * (size_t)g->c + (size_t)ch;
                    dst[(size_t)u * inputs + col] = src[i++];
                }
}

START_TEST(dense_random_shapes)
{
    test_rng rng;
    test_rng_seed(&rng, 401);
    int big = test_small() ? 0 : 1;
    for (int i = 0, n = sweep_cases(120); i < n; i++) {
        ref_shape in = { case_batch(i), test_rng_int(&rng, 1, big ? 6 : 3),
                         test_rng_int(&rng, 1, big ? 6 : 3), test_rng_int(&rng, 1, big ? 12 : 3) };
        int units = test_rng_int(&rng, 1, big ? 20 : 5), bias = i % 3 != 0;
        char what[160];
        snprintf(what, sizeof what, "dense: in %dx%dx%dx%d units %d bias %d", in.n, in.h, in.w,
                 in.c, units, bias);
        cnn_net *net = harness_net(in);
        harness_ok(net, cnn_layer_add_dense(net, units, bias, NULL), what);
        harness_expect_shape(net, 0, 1, 1, units, what);
        int inputs = in.h * in.w * in.c;
        layer_params p = set_random_params(net, 0, &rng, CNN_LAYOUT_NATIVE,
                                           (size_t)inputs * (size_t)units,
                                           bias ? (size_t)units : 0, NULL, NULL, what);
        size_t in_n = ref_elems(in), out_n = (size_t)in.n * (size_t)units;
        float *x = harness_random(&rng, in_n, -1.0f, 1.0f);
        double *xd = harness_widen(x, in_n);
        double *ref = test_xmalloc(out_n * sizeof(double));
        ref_dense(xd, in.n, inputs, p.weights, p.bias, units, ref);
        float *y = harness_forward(net, x, in.n, out_n);
        harness_expect_close(y, ref, out_n, TOL, what);
        expect_batch_consistent(net, x, y, in.n, (size_t)inputs, (size_t)units, what);
        free(y);
        free(ref);
        free(xd);
        free(x);
        free_params(&p);
        cnn_net_destroy(net);
    }
}
END_TEST

/* conv -> dense with the dense weights given in PyTorch order: the reference
 * flattens the conv output NCHW, as torch.flatten would. */
START_TEST(dense_pytorch_after_conv)
{
    test_rng rng;
    test_rng_seed(&rng, 402);
    for (int i = 0; i < 6; i++) {
        ref_shape in = { case_batch(i), 5 + i, 4 + i / 2, 2 + i % 3 };
        ref_window w = { 3, 2, 1 + i % 2, 1, 1, 0 };
        int filters = 3 + i, units = 4 + i;
        char what[200];
        describe(what, sizeof what, "conv -> dense (PyTorch)", in, w, filters);
        cnn_net *net = harness_net(in);
        cnn_conv_desc d = harness_conv_desc(w, filters, 1);
        harness_ok(net, cnn_layer_add_conv(net, &d, NULL), what);
        harness_ok(net, cnn_layer_add_dense(net, units, 1, NULL), what);
        ref_shape mid = ref_window_shape(in, w, filters);
        int inputs = mid.h * mid.w * mid.c;
        size_t conv_w = (size_t)filters * (size_t)(w.kh * w.kw) * (size_t)in.c;
        layer_params pc = set_random_params(net, 0, &rng, CNN_LAYOUT_NATIVE, conv_w,
                                            (size_t)filters, NULL, NULL, what);
        size_t dense_w = (size_t)units * (size_t)inputs;
        float *torch_w = harness_random(&rng, dense_w, -1.0f, 1.0f);
        float *dense_b = harness_random(&rng, (size_t)units, -1.0f, 1.0f);
        harness_ok(net, cnn_layer_set_weights(net, 1, torch_w, dense_w, CNN_LAYOUT_PYTORCH), what);
        harness_ok(net, cnn_layer_set_bias(net, 1, dense_b, (size_t)units), what);

        size_t in_n = ref_elems(in), mid_n = ref_elems(mid), out_n = (size_t)in.n * (size_t)units;
        float *x = harness_random(&rng, in_n, -1.0f, 1.0f);
        double *xd = harness_widen(x, in_n);
        double *conv_out = test_xmalloc(mid_n * sizeof(double));
        double *nchw = test_xmalloc(mid_n * sizeof(double));
        double *ref = test_xmalloc(out_n * sizeof(double));
        ref_conv(xd, in, pc.weights, pc.bias, filters, w, conv_out);
        ref_nhwc_to_nchw(conv_out, mid, nchw);
        ref_dense(nchw, in.n, inputs, torch_w, dense_b, units, ref);
        float *y = harness_forward(net, x, in.n, out_n);
        harness_expect_close(y, ref, out_n, TOL, what);
        free(y);
        free(ref);
        free(nchw);
        free(conv_out);
        free(xd);
        free(x);
        free(dense_b);
        free(torch_w);
        free_params(&pc);
        cnn_net_destroy(net);
    }
}
END_TEST

/* ---- parameter layouts -------------------------------------------------- */

/* Both set layouts, then both get layouts, give back the same values exactly. */
static void expect_weights_round_trip(cnn_net *net, int layer, const float *torch,
                                      const float *native, size_t n, const char *what)
{
    float *got = test_xmalloc(n * sizeof(float));
    const cnn_weight_layout layouts[] = { CNN_LAYOUT_NATIVE, CNN_LAYOUT_PYTORCH };
    for (int s = 0; s < 2; s++) {
        const float *given = layouts[s] == CNN_LAYOUT_NATIVE ? native : torch;
        harness_ok(net, cnn_layer_set_weights(net, layer, given, n, layouts[s]), what);
        for (int g = 0; g < 2; g++) {
            const float *expect = layouts[g] == CNN_LAYOUT_NATIVE ? native : torch;
            memset(got, 0, n * sizeof(float));
            harness_ok(net, cnn_layer_get_weights(net, layer, got, n, layouts[g]), what);
            ck_assert_msg(memcmp(got, expect, n * sizeof(float)) == 0,
                          "%s: set in layout %d, get in layout %d differs", what, s, g);
        }
    }
    free(got);
}

START_TEST(weights_round_trip_both_layouts)
{
    test_rng rng;
    test_rng_seed(&rng, 501);
    /* Non-square kernel with in != out channels, so a swapped index shows. */
    ref_shape in = { 1, 7, 6, 3 };
    conv_geometry g = { 5, 3, 2, 3 };
    ref_window w = { g.kh, g.kw, 1, 1, 0, 0 };
    cnn_net *net = harness_net(in);
    cnn_conv_desc d = harness_conv_desc(w, g.filters, 1);
    harness_ok(net, cnn_layer_add_conv(net, &d, NULL), "conv");
    ref_shape mid = ref_window_shape(in, w, g.filters);
    dense_geometry dg = { 4, mid.h, mid.w, mid.c };
    harness_ok(net, cnn_layer_add_dense(net, dg.units, 1, NULL), "dense");

    size_t conv_n = (size_t)(g.filters * g.kh * g.kw * g.in_c);
    float *torch = harness_random(&rng, conv_n, -1.0f, 1.0f);
    float *native = test_xmalloc(conv_n * sizeof(float));
    conv_oihw_to_native(torch, native, &g);
    ck_assert(memcmp(torch, native, conv_n * sizeof(float)) != 0);
    expect_weights_round_trip(net, 0, torch, native, conv_n, "conv weights");
    free(native);
    free(torch);

    size_t dense_n = (size_t)dg.units * (size_t)(mid.h * mid.w * mid.c);
    torch = harness_random(&rng, dense_n, -1.0f, 1.0f);
    native = test_xmalloc(dense_n * sizeof(float));
    dense_nchw_to_native(torch, native, &dg);
    ck_assert(memcmp(torch, native, dense_n * sizeof(float)) != 0);
    expect_weights_round_trip(net, 1, torch, native, dense_n, "dense weights");

    float bias[4] = { 0.5f, -1.25f, 2.0f, 3.5f }, got[4] = { 0 };
    harness_ok(net, cnn_layer_set_bias(net, 1, bias, 4), "dense bias");
    harness_ok(net, cnn_layer_get_bias(net, 1, got, 4), "dense bias");
    ck_assert(memcmp(bias, got, sizeof bias) == 0);
    free(native);
    free(torch);
    cnn_net_destroy(net);
}
END_TEST

/* ---- softmax ------------------------------------------------------------ */

START_TEST(softmax_random_shapes)
{
    test_rng rng;
    test_rng_seed(&rng, 601);
    int big = test_small() ? 0 : 1;
    for (int i = 0, n = sweep_cases(80); i < n; i++) {
        ref_shape in = { case_batch(i), test_rng_int(&rng, 1, big ? 8 : 3),
                         test_rng_int(&rng, 1, big ? 8 : 3), test_rng_int(&rng, 1, big ? 20 : 6) };
        /* Every third case is far from zero: expf would overflow without a shift. */
        float lo = i % 3 == 2 ? 90.0f : -10.0f, hi = i % 3 == 2 ? 110.0f : 10.0f;
        char what[160];
        snprintf(what, sizeof what, "softmax: in %dx%dx%dx%d range [%g, %g)", in.n, in.h, in.w,
                 in.c, (double)lo, (double)hi);
        cnn_net *net = harness_net(in);
        harness_ok(net, cnn_layer_add_softmax(net, NULL), what);
        harness_expect_shape(net, 0, in.h, in.w, in.c, what);
        size_t n_el = ref_elems(in);
        float *x = harness_random(&rng, n_el, lo, hi);
        double *xd = harness_widen(x, n_el);
        double *ref = test_xmalloc(n_el * sizeof(double));
        ref_softmax(xd, n_el / (size_t)in.c, in.c, ref);
        float *y = harness_forward(net, x, in.n, n_el);
        harness_expect_close(y, ref, n_el, TOL, what);
        expect_batch_consistent(net, x, y, in.n, n_el / (size_t)in.n, n_el / (size_t)in.n, what);
        free(y);
        free(ref);
        free(xd);
        free(x);
        cnn_net_destroy(net);
    }
}
END_TEST

/* ---- a whole net -------------------------------------------------------- */

/* conv-relu-maxpool-conv-tanh-avgpool-dense-softmax against chained references. */
START_TEST(multi_layer_net)
{
    test_rng rng;
    test_rng_seed(&rng, 701);
    ref_shape in = test_small() ? (ref_shape){ 3, 10, 9, 2 } : (ref_shape){ 3, 24, 21, 3 };
    const ref_window c1 = { 3, 3, 1, 1, 1, 1 }, p1 = { 2, 2, 2, 2, 0, 0 };
    const ref_window c2 = { 3, 2, 1, 1, 0, 1 }, p2 = { 3, 3, 2, 2, 1, 1 };
    const int f1 = 6, f2 = 8, units = 10;
    cnn_net *net = harness_net(in);
    cnn_conv_desc d1 = harness_conv_desc(c1, f1, 1), d2 = harness_conv_desc(c2, f2, 1);
    cnn_pool_desc q1 = pool_desc(p1, CNN_POOL_MAX, 1), q2 = pool_desc(p2, CNN_POOL_AVG, 1);
    harness_ok(net, cnn_layer_add_conv(net, &d1, NULL), "conv1");
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL), "relu");
    harness_ok(net, cnn_layer_add_pool(net, &q1, NULL), "maxpool");
    harness_ok(net, cnn_layer_add_conv(net, &d2, NULL), "conv2");
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_TANH, 0.0f, NULL), "tanh");
    harness_ok(net, cnn_layer_add_pool(net, &q2, NULL), "avgpool");
    harness_ok(net, cnn_layer_add_dense(net, units, 1, NULL), "dense");
    harness_ok(net, cnn_layer_add_softmax(net, NULL), "softmax");

    ref_shape s1 = ref_window_shape(in, c1, f1), s2 = ref_window_shape(s1, p1, f1);
    ref_shape s3 = ref_window_shape(s2, c2, f2), s4 = ref_window_shape(s3, p2, f2);
    const ref_shape shapes[] = { s1, s1, s2, s3, s3, s4 };
    for (int i = 0; i < 6; i++)
        harness_expect_shape(net, i, shapes[i].h, shapes[i].w, shapes[i].c, "multi-layer");
    harness_expect_shape(net, 6, 1, 1, units, "multi-layer");
    harness_expect_shape(net, 7, 1, 1, units, "multi-layer");
    int oh = 0, ow = 0, oc = 0;
    harness_ok(net, cnn_net_output_shape(net, &oh, &ow, &oc), "net output shape");
    ck_assert(oh == 1 && ow == 1 && oc == units);

    layer_params pc1 = set_random_params(net, 0, &rng, CNN_LAYOUT_NATIVE,
                                         (size_t)(f1 * 9 * in.c), (size_t)f1, NULL, NULL, "conv1");
    layer_params pc2 = set_random_params(net, 3, &rng, CNN_LAYOUT_NATIVE, (size_t)(f2 * 6 * f1),
                                         (size_t)f2, NULL, NULL, "conv2");
    int inputs = s4.h * s4.w * s4.c;
    layer_params pd = set_random_params(net, 6, &rng, CNN_LAYOUT_NATIVE,
                                        (size_t)(units * inputs), (size_t)units, NULL, NULL,
                                        "dense");

    size_t n0 = ref_elems(in), n1 = ref_elems(s1), n2 = ref_elems(s2), n3 = ref_elems(s3);
    size_t n4 = ref_elems(s4), n5 = (size_t)in.n * (size_t)units;
    float *x = harness_random(&rng, n0, -1.0f, 1.0f);
    double *a0 = harness_widen(x, n0);
    double *a1 = test_xmalloc(n1 * sizeof(double)), *a2 = test_xmalloc(n2 * sizeof(double));
    double *a3 = test_xmalloc(n3 * sizeof(double)), *a4 = test_xmalloc(n4 * sizeof(double));
    double *a5 = test_xmalloc(n5 * sizeof(double)), *ref = test_xmalloc(n5 * sizeof(double));
    ref_conv(a0, in, pc1.weights, pc1.bias, f1, c1, a1);
    ref_relu(a1, n1, a1);
    ref_max_pool(a1, s1, p1, a2);
    ref_conv(a2, s2, pc2.weights, pc2.bias, f2, c2, a3);
    ref_tanh(a3, n3, a3);
    ref_avg_pool(a3, s3, p2, 1, a4);
    ref_dense(a4, in.n, inputs, pd.weights, pd.bias, units, a5);
    ref_softmax(a5, (size_t)in.n, units, ref);

    float *y = harness_forward(net, x, in.n, n5);
    harness_expect_close(y, ref, n5, TOL, "multi-layer net");
    expect_batch_consistent(net, x, y, in.n, n0 / (size_t)in.n, (size_t)units, "multi-layer net");
    free(y);
    free(ref);
    free(a5);
    free(a4);
    free(a3);
    free(a2);
    free(a1);
    free(a0);
    free(x);
    free_params(&pd);
    free_params(&pc2);
    free_params(&pc1);
    cnn_net_destroy(net);
}
END_TEST

static Suite *layers_suite(void)
{
    Suite *s = suite_create("layers");
    TCase *conv = tcase_create("conv");
    tcase_add_test(conv, conv_random_shapes);
    tcase_add_test(conv, conv_pointwise_and_1x1_variants);
    tcase_add_test(conv, conv_without_bias);
    tcase_add_test(conv, conv_pytorch_weights);
    tcase_add_test(conv, conv_im2col_tiles);
    tcase_add_test(conv, conv_im2col_tiles_across_images);
    tcase_add_test(conv, conv_k_slices);
    suite_add_tcase(s, conv);
    TCase *pool = tcase_create("pool");
    tcase_add_test(pool, pool_random_shapes);
    tcase_add_test(pool, pool_padding_semantics);
    suite_add_tcase(s, pool);
    TCase *act = tcase_create("activation");
    tcase_add_test(act, activation_random_shapes);
    tcase_add_test(act, activation_after_conv);
    suite_add_tcase(s, act);
    TCase *dense = tcase_create("dense");
    tcase_add_test(dense, dense_random_shapes);
    tcase_add_test(dense, dense_pytorch_after_conv);
    suite_add_tcase(s, dense);
    TCase *params = tcase_create("params");
    tcase_add_test(params, weights_round_trip_both_layouts);
    suite_add_tcase(s, params);
    TCase *softmax = tcase_create("softmax");
    tcase_add_test(softmax, softmax_random_shapes);
    suite_add_tcase(s, softmax);
    TCase *net = tcase_create("net");
    tcase_add_test(net, multi_layer_net);
    suite_add_tcase(s, net);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(layers_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
