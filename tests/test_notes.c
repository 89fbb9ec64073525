/* The claims of the CNN lecture notes, each as a test of the library:
 * the 32x32x3 example, blur and identity kernels, the output-size formula,
 * translation equivariance of convolution, small-shift invariance of max
 * pooling, and pooling each activation map on its own. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"
#include "net_harness.h"
#include "reference.h"
#include "support.h"

/* Index of (b, y, x, ch) in an NHWC batch of h x w x c images. */
static size_t nhwc(int h, int w, int c, int b, int y, int x, int ch)
{
    return (((size_t)b * (size_t)h + (size_t)y) * (size_t)w + (size_t)x) * (size_t)c + (size_t)ch;
}

/* A net of one conv layer; weights are set by the caller. */
static cnn_net *conv_net(ref_shape in, int filters, int kh, int kw, int stride, int pad, int bias)
{
    cnn_net *net = harness_net(in);
    cnn_conv_desc d;
    cnn_conv_desc_init(&d);
    d.filters = filters;
    d.kernel_h = kh;
    d.kernel_w = kw;
    d.stride_h = d.stride_w = stride;
    d.pad_h = d.pad_w = pad;
    d.bias = bias;
    harness_ok(net, cnn_layer_add_conv(net, &d, NULL), "conv");
    return net;
}

static cnn_net *pool_net(ref_shape in, cnn_pool_kind kind, int window, int stride, int pad)
{
    cnn_net *net = harness_net(in);
    cnn_pool_desc d;
    cnn_pool_desc_init(&d);
    d.kind = kind;
    d.window_h = d.window_w = window;
    d.stride_h = d.stride_w = stride;
    d.pad_h = d.pad_w = pad;
    harness_ok(net, cnn_layer_add_pool(net, &d, NULL), "pool");
    return net;
}

/* Per-channel kernels: filter o has `value` at every tap of input channel o
 * (or only at the centre tap when centre_only), 0 elsewhere. OHWI. */
static float *channelwise_kernel(int channels, int k, float value, int centre_only)
{
    size_t n = (size_t)channels * (size_t)(k * k) * (size_t)channels;
    float *w = test_xmalloc(n * sizeof(float));
    memset(w, 0, n * sizeof(float));
    for (int o = 0; o < channels; o++)
        for (int y = 0; y < k; y++)
            for (int x = 0; x < k; x++)
                if (!centre_only || (y == k / 2 && x == k / 2))
                    w[nhwc(k, k, channels, o, y, x, o)] = value;
    return w;
}

/* ---- the notes' example: 32x32x3 input, 16 kernels of 5x5x3 -> 28x28x16 ---- */

START_TEST(example_32x32x3_gives_28x28x16)
{
    test_rng rng;
    test_rng_seed(&rng, 11);
    const ref_shape in = { 1, 32, 32, 3 };
    cnn_net *net = conv_net(in, 16, 5, 5, 1, 0, 1);
    harness_expect_shape(net, 0, 28, 28, 16, "notes example");
    int h = 0, w = 0, c = 0;
    harness_ok(net, cnn_net_output_shape(net, &h, &w, &c), "net output shape");
    ck_assert(h == 28 && w == 28 && c == 16);
    size_t weights = 0, biases = 0;
    harness_ok(net, cnn_layer_param_sizes(net, 0, &weights, &biases), "param sizes");
    ck_assert_uint_eq(weights, 16 * 5 * 5 * 3); /* one 5x5x3 kernel per output channel */
    ck_assert_uint_eq(biases, 16);

    float *kernel = harness_random(&rng, weights, -1.0f, 1.0f);
    float *bias = harness_random(&rng, biases, -1.0f, 1.0f);
    harness_ok(net, cnn_layer_set_weights(net, 0, kernel, weights, CNN_LAYOUT_NATIVE), "set");
    harness_ok(net, cnn_layer_set_bias(net, 0, bias, biases), "set bias");
    float *x = harness_random(&rng, ref_elems(in), -1.0f, 1.0f);
    /* The output buffer has a guard band: the forward writes exactly 28*28*16 floats. */
    const size_t out_n = 28 * 28 * 16, guard = 64;
    float *y = test_xmalloc((out_n + guard) * sizeof(float));
    for (size_t i = 0; i < out_n + guard; i++)
        y[i] = i < out_n ? NAN : 1234.5f;
    harness_ok(net, cnn_forward(net, x, 1, y), "forward");
    for (size_t i = out_n; i < out_n + guard; i++)
        ck_assert_msg(y[i] == 1234.5f, "forward wrote past 28x28x16 at %zu", i);
    double *xd = harness_widen(x, ref_elems(in));
    double *ref = test_xmalloc(out_n * sizeof(double));
    ref_conv(xd, in, kernel, bias, 16, (ref_window){ 5, 5, 1, 1, 0, 0 }, ref);
    harness_expect_close(y, ref, out_n, 1e-5, "notes example forward");
    free(ref);
    free(xd);
    free(y);
    free(x);
    free(bias);
    free(kernel);
    cnn_net_destroy(net);
}
END_TEST

/* ---- a kernel of all 1/9 is a blur -------------------------------------- */

static double variance(const double *v, size_t n, double *mean_out)
{
    double mean = 0.0, var = 0.0;
    for (size_t i = 0; i < n; i++)
        mean += v[i];
    mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        var += (v[i] - mean) * (v[i] - mean);
    *mean_out = mean;
    return var / (double)n;
}

START_TEST(mean_kernel_blurs)
{
    test_rng rng;
    test_rng_seed(&rng, 12);
    const int H = 24, W = 20, C = 3;
    const ref_shape in = { 1, H, W, C };
    cnn_net *net = conv_net(in, C, 3, 3, 1, 1, 0);
    float *kernel = channelwise_kernel(C, 3, 1.0f / 9.0f, 0);
    size_t nw = (size_t)(C * 9 * C);
    harness_ok(net, cnn_layer_set_weights(net, 0, kernel, nw, CNN_LAYOUT_NATIVE), "set");
    float *x = harness_random(&rng, ref_elems(in), 0.0f, 1.0f); /* noise */
    float *y = harness_forward(net, x, 1, ref_elems(in));

    /* Interior pixels: the mean of the 3x3 neighbourhood, computed here. */
    size_t interior = (size_t)((H - 2) * (W - 2) * C), i = 0;
    float *got = test_xmalloc(interior * sizeof(float));
    double *local_mean = test_xmalloc(interior * sizeof(double));
    double *noise = test_xmalloc(interior * sizeof(double));
    for (int yy = 1; yy < H - 1; yy++)
        for (int xx = 1; xx < W - 1; xx++)
            for (int ch = 0; ch < C; ch++, i++) {
                double sum = 0.0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                        sum += x[nhwc(H, W, C, 0, yy + dy, xx + dx, ch)];
                local_mean[i] = sum / 9.0;
                noise[i] = x[nhwc(H, W, C, 0, yy, xx, ch)];
                got[i] = y[nhwc(H, W, C, 0, yy, xx, ch)];
            }
    harness_expect_close(got, local_mean, interior, 1e-5, "3x3 mean kernel");

    /* Averaging nine independent values divides the variance by about nine;
     * the mean stays where it was. */
    double *blurred = harness_widen(got, interior), mean_in = 0.0, mean_out = 0.0;
    double var_in = variance(noise, interior, &mean_in);
    double var_out = variance(blurred, interior, &mean_out);
    ck_assert_msg(var_out < var_in / 4.0, "blur variance %g is not well below noise %g", var_out,
                  var_in);
    ck_assert_msg(fabs(mean_out - mean_in) < 0.02, "blur moved the mean %g -> %g", mean_in,
                  mean_out);
    free(blurred);
    free(noise);
    free(local_mean);
    free(got);
    free(y);
    free(x);
    free(kernel);
    cnn_net_destroy(net);
}
END_TEST

/* ---- a centred one-hot kernel is the identity ------------------------- */

START_TEST(centre_kernel_is_identity)
{
    test_rng rng;
    test_rng_seed(&rng, 13);
    const int sizes[] = { 3, 5, 1 };
    for (int s = 0; s < 3; s++) {
        const int k = sizes[s], C = 4;
        const ref_shape in = { 2, 9, 7, C };
        cnn_net *net = conv_net(in, C, k, k, 1, k / 2, 1); /* biases stay zero */
        harness_expect_shape(net, 0, in.h, in.w, C, "identity kernel");
        float *kernel = channelwise_kernel(C, k, 1.0f, 1);
        harness_ok(net, cnn_layer_set_weights(net, 0, kernel, (size_t)(C * k * k * C),
                                              CNN_LAYOUT_NATIVE), "set");
        size_t n = ref_elems(in);
        float *x = harness_random(&rng, n, -100.0f, 100.0f);
        float *y = harness_forward(net, x, in.n, n);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(y[i] == x[i], "%dx%d identity kernel: element %zu is %.9g, not %.9g", k,
                          k, i, (double)y[i], (double)x[i]);
        free(y);
        free(x);
        free(kernel);
        cnn_net_destroy(net);
    }
}
END_TEST

/* ---- OH = (H + 2*pad - KH) / stride + 1 (floor) ------------------------- */

/* Runs a tiny forward of a conv and compares it with the reference, so the
 * reported size is also the size the layer writes. */
static void forward_matches_shape(cnn_net *net, ref_shape in, ref_window win, test_rng *rng)
{
    size_t nw = (size_t)(win.kh * win.kw * in.c);
    float *kernel = harness_random(rng, nw, -1.0f, 1.0f);
    harness_ok(net, cnn_layer_set_weights(net, 0, kernel, nw, CNN_LAYOUT_NATIVE), "set");
    ref_shape os = ref_window_shape(in, win, 1);
    float *x = harness_random(rng, ref_elems(in), -1.0f, 1.0f);
    double *xd = harness_widen(x, ref_elems(in));
    double *ref = test_xmalloc(ref_elems(os) * sizeof(double));
    ref_conv(xd, in, kernel, NULL, 1, win, ref);
    float *y = harness_forward(net, x, 1, ref_elems(os));
    harness_expect_close(y, ref, ref_elems(os), 1e-5, "size sweep forward");
    free(y);
    free(ref);
    free(xd);
    free(x);
    free(kernel);
}

START_TEST(output_size_formula_sweep)
{
    test_rng rng;
    test_rng_seed(&rng, 14);
    const int forward_every = test_small() ? 37 : 5;
    int cases = 0;
    for (int h = 1; h <= 12; h++)
        for (int pad = 0; pad <= 3; pad++)
            for (int k = 1; k <= 7 && k <= h + 2 * pad; k++)
                for (int stride = 1; stride <= 4; stride++, cases++) {
                    /* Height sweeps (h, k, stride, pad); width takes another setting. */
                    int w = 13 - h, sw = 1 + cases % 2, pw = cases % 2;
                    int kw = 1 + cases % 3 <= w + 2 * pw ? 1 + cases % 3 : w + 2 * pw;
                    int expect_h = (h + 2 * pad - k) / stride + 1;
                    int expect_w = (w + 2 * pw - kw) / sw + 1;
                    char what[120];
                    snprintf(what, sizeof what, "H %d K %d stride %d pad %d / W %d K %d s %d p %d",
                             h, k, stride, pad, w, kw, sw, pw);
                    ref_shape in = { 1, h, w, 2 };
                    cnn_net *net = harness_net(in);
                    cnn_conv_desc d;
                    cnn_conv_desc_init(&d);
                    d.filters = 1;
                    d.kernel_h = k;
                    d.kernel_w = kw;
                    d.stride_h = stride;
                    d.stride_w = sw;
                    d.pad_h = pad;
                    d.pad_w = pw;
                    d.bias = 0;
                    harness_ok(net, cnn_layer_add_conv(net, &d, NULL), what);
                    harness_expect_shape(net, 0, expect_h, expect_w, 1, what);
                    if (cases % forward_every == 0)
                        forward_matches_shape(net, in, (ref_window){ k, kw, stride, sw, pad, pw },
                                              &rng);
                    cnn_net_destroy(net);
                }
    ck_assert_int_gt(cases, 500);
}
END_TEST

/* ---- convolution is translation-equivariant ---------------------------- */

/* Max relative difference between out2 at (y, x) and out1 at (y - oy, x - ox)
 * over y in [y0, y1), x in [x0, x1), all channels. */
static double shifted_difference(const float *out1, const float *out2, ref_shape os, int oy,
                                 int ox, int y0, int y1, int x0, int x1)
{
    size_t n = (size_t)((y1 - y0) * (x1 - x0) * os.c), i = 0;
    float *a = test_xmalloc(n * sizeof(float)), *b = test_xmalloc(n * sizeof(float));
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            for (int ch = 0; ch < os.c; ch++, i++) {
                a[i] = out2[nhwc(os.h, os.w, os.c, 0, y, x, ch)];
                b[i] = out1[nhwc(os.h, os.w, os.c, 0, y - oy, x - ox, ch)];
            }
    double err = test_rel_error_f(a, b, n);
    free(b);
    free(a);
    return err;
}

/* Shifting the input by (dy, dx) shifts the output by (dy, dx) / stride away
 * from the borders; the freshly exposed rows and columns get new noise. */
static void check_equivariance(int kh, int kw, int stride, int pad, int dy, int dx,
                               test_rng *rng)
{
    const ref_shape in = { 1, 18, 17, 3 };
    const int filters = 4;
    char what[120];
    snprintf(what, sizeof what, "kernel %dx%d stride %d pad %d shift (%d, %d)", kh, kw, stride,
             pad, dy, dx);
    cnn_net *net = conv_net(in, filters, kh, kw, stride, pad, 1);
    size_t nw = (size_t)(filters * kh * kw * in.c);
    float *kernel = harness_random(rng, nw, -1.0f, 1.0f), bias[4] = { 0.5f, -0.25f, 1.0f, 0.0f };
    harness_ok(net, cnn_layer_set_weights(net, 0, kernel, nw, CNN_LAYOUT_NATIVE), what);
    harness_ok(net, cnn_layer_set_bias(net, 0, bias, 4), what);
    size_t n = ref_elems(in);
    float *x = harness_random(rng, n, -1.0f, 1.0f);
    float *shifted = harness_random(rng, n, -1.0f, 1.0f);
    for (int y = dy; y < in.h; y++)
        for (int xx = dx; xx < in.w; xx++)
            for (int ch = 0; ch < in.c; ch++)
                shifted[nhwc(in.h, in.w, in.c, 0, y, xx, ch)] =
                    x[nhwc(in.h, in.w, in.c, 0, y - dy, xx - dx, ch)];
    ref_shape os = ref_window_shape(in, (ref_window){ kh, kw, stride, stride, pad, pad }, filters);
    float *out1 = harness_forward(net, x, 1, ref_elems(os));
    float *out2 = harness_forward(net, shifted, 1, ref_elems(os));

    /* Output (y, x) reads input rows y*stride - pad .. + kh - 1: compare where
     * that window lies in the shifted content and inside the image. */
    int oy = dy / stride, ox = dx / stride;
    int y0 = (dy + pad + stride - 1) / stride, y1 = (in.h - kh + pad) / stride + 1;
    int x0 = (dx + pad + stride - 1) / stride, x1 = (in.w - kw + pad) / stride + 1;
    ck_assert_msg(y1 - y0 >= 3 && x1 - x0 >= 3, "%s: too few interior outputs", what);
    double err = shifted_difference(out1, out2, os, oy, ox, y0, y1, x0, x1);
    ck_assert_msg(err <= 1e-6, "%s: shifted output differs by %g", what, err);
    /* Control: the same comparison without the shift finds a difference. */
    double control = shifted_difference(out1, out2, os, 0, 0, y0, y1, x0, x1);
    ck_assert_msg(control > 1e-2, "%s: the shift had no visible effect (%g)", what, control);
    free(out2);
    free(out1);
    free(shifted);
    free(x);
    free(kernel);
    cnn_net_destroy(net);
}

START_TEST(conv_is_translation_equivariant)
{
    test_rng rng;
    test_rng_seed(&rng, 15);
    for (int k = 1; k <= 3; k++) {
        check_equivariance(3, 3, 1, 1, k, 0, &rng);
        check_equivariance(3, 3, 1, 1, 0, k, &rng);
        check_equivariance(3, 3, 1, 1, k, k, &rng);
        check_equivariance(5, 3, 1, 0, k, k, &rng);
    }
    /* With stride 2 a shift of 2 input pixels is one output pixel. */
    check_equivariance(3, 3, 2, 1, 2, 2, &rng);
    check_equivariance(3, 3, 2, 1, 2, 0, &rng);
}
END_TEST

/* ---- max pooling ignores small shifts ----------------------------------- */

static float *pool_forward(cnn_net *net, const float *x, size_t out_n)
{
    return harness_forward(net, x, 1, out_n);
}

/* One bright pixel per channel on a dim noisy background; moving it within
 * its 2x2 window keeps the pooled map, moving it across a window edge does not. */
START_TEST(max_pool_small_shift_invariance)
{
    test_rng rng;
    test_rng_seed(&rng, 16);
    const ref_shape in = { 1, 8, 10, 3 };
    cnn_net *net = pool_net(in, CNN_POOL_MAX, 2, 2, 0);
    const size_t n = ref_elems(in), out_n = (size_t)(4 * 5 * 3);
    for (int trial = 0; trial < 20; trial++) {
        float *bg = harness_random(&rng, n, 0.0f, 0.5f);
        float *a = test_xmalloc(n * sizeof(float)), *b = test_xmalloc(n * sizeof(float));
        float *c = test_xmalloc(n * sizeof(float));
        memcpy(a, bg, n * sizeof(float));
        memcpy(b, bg, n * sizeof(float));
        memcpy(c, bg, n * sizeof(float));
        int wy[3], wx[3];
        for (int ch = 0; ch < in.c; ch++) {
            /* Window (wy, wx); wx < 4 so the window to the right exists. */
            wy[ch] = test_rng_int(&rng, 0, 3);
            wx[ch] = test_rng_int(&rng, 0, 3);
            int py = 2 * wy[ch] + test_rng_int(&rng, 0, 1);
            int qy = 2 * wy[ch] + test_rng_int(&rng, 0, 1), qx = 2 * wx[ch];
            a[nhwc(8, 10, 3, 0, py, 2 * wx[ch] + 1, ch)] = 1.0f; /* right column */
            b[nhwc(8, 10, 3, 0, qy, qx, ch)] = 1.0f;             /* same window */
            c[nhwc(8, 10, 3, 0, py, 2 * wx[ch] + 2, ch)] = 1.0f; /* one step right: next window */
        }
        float *pa = pool_forward(net, a, out_n), *pb = pool_forward(net, b, out_n);
        float *pc = pool_forward(net, c, out_n);
        ck_assert_msg(memcmp(pa, pb, out_n * sizeof(float)) == 0,
                      "trial %d: a shift inside the window changed the pooled map", trial);
        for (int ch = 0; ch < in.c; ch++) {
            float here = pc[nhwc(4, 5, 3, 0, wy[ch], wx[ch], ch)];
            float right = pc[nhwc(4, 5, 3, 0, wy[ch], wx[ch] + 1, ch)];
            ck_assert_msg(pa[nhwc(4, 5, 3, 0, wy[ch], wx[ch], ch)] == 1.0f && here < 1.0f &&
                              right == 1.0f,
                          "trial %d channel %d: crossing the window edge left the map as it was",
                          trial, ch);
        }
        ck_assert(memcmp(pa, pc, out_n * sizeof(float)) != 0);
        free(pc);
        free(pb);
        free(pa);
        free(c);
        free(b);
        free(a);
        free(bg);
    }
    cnn_net_destroy(net);
}
END_TEST

/* Shifting a whole image by one pixel: features on even rows and columns stay
 * in their 2x2 windows (map unchanged); features on odd ones cross (changed). */
START_TEST(max_pool_whole_image_shift)
{
    test_rng rng;
    test_rng_seed(&rng, 17);
    const int H = 12, W = 12, C = 2;
    const ref_shape in = { 1, H, W, C };
    const size_t n = ref_elems(in), out_n = (size_t)(6 * 6 * C);
    cnn_net *net = pool_net(in, CNN_POOL_MAX, 2, 2, 0);
    const int shifts[3][2] = { { 1, 0 }, { 0, 1 }, { 1, 1 } };
    for (int parity = 0; parity < 2; parity++)
        for (int s = 0; s < 3; s++) {
            int dy = shifts[s][0], dx = shifts[s][1];
            float *x = test_xmalloc(n * sizeof(float)), *moved = test_xmalloc(n * sizeof(float));
            memset(x, 0, n * sizeof(float));
            memset(moved, 0, n * sizeof(float));
            /* Sparse positive features at (even + parity) positions, away from the last row/col. */
            for (int y = parity; y < H - 1; y += 2)
                for (int xx = parity; xx < W - 1; xx += 2)
                    for (int ch = 0; ch < C; ch++)
                        if (test_rng_int(&rng, 0, 2) == 0)
                            x[nhwc(H, W, C, 0, y, xx, ch)] = test_rng_float(&rng, 0.5f, 1.0f);
            for (int y = dy; y < H; y++)
                for (int xx = dx; xx < W; xx++)
                    for (int ch = 0; ch < C; ch++)
                        moved[nhwc(H, W, C, 0, y, xx, ch)] = x[nhwc(H, W, C, 0, y - dy, xx - dx, ch)];
            float *p1 = pool_forward(net, x, out_n), *p2 = pool_forward(net, moved, out_n);
            int same = memcmp(p1, p2, out_n * sizeof(float)) == 0;
            if (parity == 0)
                ck_assert_msg(same, "shift (%d, %d) inside the windows changed the map", dy, dx);
            else
                ck_assert_msg(!same, "shift (%d, %d) across window edges left the map", dy, dx);
            free(p2);
            free(p1);
            free(moved);
            free(x);
        }
    cnn_net_destroy(net);
}
END_TEST

/* ---- pooling shrinks each activation map independently ------------------ */

static void check_channels_independent(cnn_pool_kind kind, test_rng *rng)
{
    const ref_shape in = { 2, 10, 9, 5 }, one = { 2, 10, 9, 1 };
    const char *name = kind == CNN_POOL_MAX ? "max" : "avg";
    cnn_net *net = pool_net(in, kind, 3, 2, 1);
    cnn_net *single = pool_net(one, kind, 3, 2, 1);
    int oh = 0, ow = 0, oc = 0;
    harness_ok(net, cnn_net_output_shape(net, &oh, &ow, &oc), name);
    ck_assert_msg(oh < in.h && ow < in.w && oc == in.c, "%s pool: %dx%dx%d from %dx%dx%d", name,
                  oh, ow, oc, in.h, in.w, in.c);
    const size_t n = ref_elems(in), out_n = (size_t)(in.n * oh * ow * oc);
    const size_t pixels = out_n / (size_t)oc;
    float *x = harness_random(rng, n, -1.0f, 1.0f);
    float *base = harness_forward(net, x, in.n, out_n);
    float *plane = test_xmalloc(n / (size_t)in.c * sizeof(float));
    for (int c = 0; c < in.c; c++) {
        /* Channel c alone through a one-channel net gives output channel c exactly. */
        for (size_t p = 0; p < n / (size_t)in.c; p++)
            plane[p] = x[p * (size_t)in.c + (size_t)c];
        float *alone = harness_forward(single, plane, in.n, pixels);
        for (size_t p = 0; p < pixels; p++)
            ck_assert_msg(alone[p] == base[p * (size_t)oc + (size_t)c],
                          "%s pool: channel %d differs when pooled alone", name, c);
        free(alone);

        /* New values in channel c change output channel c and no other. */
        float *changed = test_xmalloc(n * sizeof(float));
        memcpy(changed, x, n * sizeof(float));
        for (size_t p = 0; p < n / (size_t)in.c; p++)
            changed[p * (size_t)in.c + (size_t)c] = test_rng_float(rng, 2.0f, 3.0f);
        float *out = harness_forward(net, changed, in.n, out_n);
        int moved = 0;
        for (size_t i = 0; i < out_n; i++) {
            if (i % (size_t)oc == (size_t)c)
                moved |= out[i] != base[i];
            else
                ck_assert_msg(out[i] == base[i], "%s pool: changing channel %d changed %zu", name,
                              c, i % (size_t)oc);
        }
        ck_assert_msg(moved, "%s pool: changing channel %d did not change it", name, c);
        free(out);
        free(changed);
    }
    free(plane);
    free(base);
    free(x);
    cnn_net_destroy(single);
    cnn_net_destroy(net);
}

START_TEST(pooling_is_per_channel)
{
    test_rng rng;
    test_rng_seed(&rng, 18);
    check_channels_independent(CNN_POOL_MAX, &rng);
    check_channels_independent(CNN_POOL_AVG, &rng);
}
END_TEST

static Suite *notes_suite(void)
{
    Suite *s = suite_create("notes");
    TCase *conv = tcase_create("convolution");
    tcase_add_test(conv, example_32x32x3_gives_28x28x16);
    tcase_add_test(conv, mean_kernel_blurs);
    tcase_add_test(conv, centre_kernel_is_identity);
    tcase_add_test(conv, output_size_formula_sweep);
    tcase_add_test(conv, conv_is_translation_equivariant);
    suite_add_tcase(s, conv);
    TCase *pool = tcase_create("pooling");
    tcase_add_test(pool, max_pool_small_shift_invariance);
    tcase_add_test(pool, max_pool_whole_image_shift);
    tcase_add_test(pool, pooling_is_per_channel);
    suite_add_tcase(s, pool);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(notes_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
