/* The direct convolution path (src/kernels/conv_direct*.c), which conv.c takes
 * (see its rule) for every layer whose packed weights and band fit the
 * workspace when the CPU has AVX2, and for layers with at most 16 input
 * channels (8 for 1x1 stride-1 unpadded ones) in the portable mode, against
 * the double-precision reference: every Cin 1..8 with every Cout 1..40 (one to
 * five 8-lane vectors, a partial last one, several channel panels), Cin 9..16
 * with fewer Couts, kernels 1..7, strides 1..3, paddings 0..3, batch 1 and 3,
 * odd widths; 1x1 layers; wide layers (Cin 17..100, Cout up to 130: panels of
 * 24 and 64 channels and their partial last ones); weights packed a slot of
 * panels at a time; bands of padded rows, thread splits by pixels and by
 * channel panels (bit-identical to 1 thread), with a fused ReLU, and NaN
 * windows.
 *
 * Registered three times: as is (the AVX-512 loop for wide layers and the
 * AVX2 loop for the rest on CPUs that have them), with CNN_MAX_SIMD=avx2 (the
 * AVX2 loop only) and with CNN_FORCE_PORTABLE=1 (the portable loop; wide
 * layers then take im2col, which these cases check all the same). */
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
#define BATCH_TOL 1e-6 /* one image alone against the same image in a batch */

typedef struct direct_case {
    ref_shape in;
    ref_window win;
    int filters;
    int bias;
} direct_case;

static void describe(char *buf, size_t size, const direct_case *dc)
{
    snprintf(buf, size, "in %dx%dx%dx%d kernel %dx%d stride %dx%d pad %dx%d out_c %d bias %d",
             dc->in.n, dc->in.h, dc->in.w, dc->in.c, dc->win.kh, dc->win.kw, dc->win.sh,
             dc->win.sw, dc->win.ph, dc->win.pw, dc->filters, dc->bias);
}

static cnn_net *conv_net(const direct_case *dc, const char *what)
{
    cnn_net *net = harness_net(dc->in);
    cnn_conv_desc d = harness_conv_desc(dc->win, dc->filters, dc->bias);
    harness_ok(net, cnn_layer_add_conv(net, &d, NULL), what);
    return net;
}

/* Weights and biases in [-1, 1), set on layer 0 and returned (native layout). */
static float *set_params(cnn_net *net, test_rng *rng, const direct_case *dc, float **bias,
                         const char *what)
{
    size_t nw = 0, nb = 0;
    harness_ok(net, cnn_layer_param_sizes(net, 0, &nw, &nb), what);
    float *w = harness_random(rng, nw, -1.0f, 1.0f);
    harness_ok(net, cnn_layer_set_weights(net, 0, w, nw, CNN_LAYOUT_NATIVE), what);
    *bias = NULL;
    if (dc->bias) {
        *bias = harness_random(rng, nb, -1.0f, 1.0f);
        harness_ok(net, cnn_layer_set_bias(net, 0, *bias, nb), what);
    }
    return w;
}

/* Runs one case at `threads` threads against ref_conv; returns the output
 * (batch images) for further checks. */
static float *check_case(const direct_case *dc, test_rng *rng, int threads)
{
    char what[200];
    describe(what, sizeof what, dc);
    cnn_net *net = conv_net(dc, what);
    harness_ok(net, cnn_net_set_threads(net, threads), what);
    float *bias;
    float *w = set_params(net, rng, dc, &bias, what);
    ref_shape os = ref_window_shape(dc->in, dc->win, dc->filters);
    harness_expect_shape(net, 0, os.h, os.w, os.c, what);
    size_t in_n = ref_elems(dc->in), out_n = ref_elems(os);
    float *x = harness_random(rng, in_n, -1.0f, 1.0f);
    double *xd = harness_widen(x, in_n);
    double *ref = test_xmalloc(out_n * sizeof(double));
    ref_conv(xd, dc->in, w, bias, dc->filters, dc->win, ref);
    float *y = harness_forward(net, x, dc->in.n, out_n);
    harness_expect_close(y, ref, out_n, TOL, what);
    /* Each image alone gives what it gave inside the batch. */
    size_t in_img = in_n / (size_t)dc->in.n, out_img = out_n / (size_t)dc->in.n;
    for (int b = 1; b < dc->in.n; b++) {
        float *one = harness_forward(net, x + (size_t)b * in_img, 1, out_img);
        double err = test_rel_error_f(one, y + (size_t)b * out_img, out_img);
        ck_assert_msg(err <= BATCH_TOL, "%s: image %d alone differs by %g", what, b, err);
        free(one);
    }
    free(ref);
    free(xd);
    free(x);
    free(bias);
    free(w);
    cnn_net_destroy(net);
    return y;
}

/* Whether conv.c takes the direct path for this layer (its rule): always with
 * the vector loops (these cases' weights fit the workspace), only up to 16
 * input channels (8 for 1x1 stride-1 unpadded) at the portable level, which
 * cnn_runtime_info names. Only that path promises the same bits on every
 * thread count; im2col + BLAS may differ in the last bits between them. */
static int takes_direct(const direct_case *dc)
{
    const char *simd = strstr(cnn_runtime_info(), "simd: ");
    ck_assert_ptr_nonnull(simd);
    if (strncmp(simd, "simd: portable", 14) != 0)
        return 1;
    int pointwise = dc->win.kh == 1 && dc->win.kw == 1 && dc->win.sh == 1 && dc->win.sw == 1 &&
                    dc->win.ph == 0 && dc->win.pw == 0;
    return dc->in.c <= (pointwise ? 8 : 16);
}

/* A random geometry for (cin, cout): kernel 1..7, stride 1..3, padding 0..3
 * per axis, an input the padded window fits, odd widths. */
static direct_case random_case(test_rng *rng, int cin, int cout, int batch)
{
    direct_case dc;
    int extra = test_small() ? 2 : 9;
    dc.win.kh = test_rng_int(rng, 1, 7);
    dc.win.kw = test_rng_int(rng, 1, 7);
    dc.win.sh = test_rng_int(rng, 1, 3);
    dc.win.sw = test_rng_int(rng, 1, 3);
    dc.win.ph = test_rng_int(rng, 0, 3);
    dc.win.pw = test_rng_int(rng, 0, 3);
    int lo_h = dc.win.kh - 2 * dc.win.ph, lo_w = dc.win.kw - 2 * dc.win.pw;
    dc.in.n = batch;
    dc.in.h = test_rng_int(rng, lo_h < 1 ? 1 : lo_h, dc.win.kh + extra);
    dc.in.w = test_rng_int(rng, lo_w < 1 ? 1 : lo_w, dc.win.kw + extra) | 1;
    dc.in.c = cin;
    dc.filters = cout;
    dc.bias = test_rng_int(rng, 0, 3) != 0;
    return dc;
}

/* Every (Cin, Cout) pair with Cin 1..8 and Cout 1..40, and Cin 9..16 with
 * every third Cout, each with its own random geometry; batch 1 and 3
 * alternate. Small mode (valgrind) takes Cout in steps of 7 (1, 8, 15, ...,
 * 36: still one to five vectors). */
START_TEST(direct_every_channel_pair)
{
    test_rng rng;
    test_rng_seed(&rng, 701);
    int i = 0;
    for (int cin = 1; cin <= 16; cin++)
        for (int cout = 1; cout <= 40; cout += test_small() ? 7 : (cin <= 8 ? 1 : 3), i++) {
            direct_case dc = random_case(&rng, cin, cout, i % 2 ? 3 : 1);
            free(check_case(&dc, &rng, 1));
        }
}
END_TEST

/* Each kernel size, stride and padding on both axes at least once, with
 * channel counts that are not multiples of 8. */
START_TEST(direct_every_window)
{
    test_rng rng;
    test_rng_seed(&rng, 702);
    static const int couts[] = { 3, 6, 13, 21, 38 };
    int i = 0;
    for (int k = 1; k <= 7; k++)
        for (int s = 1; s <= 3; s++)
            for (int p = 0; p <= 3; p++, i++) {
                if (test_small() && i % 5 != 0)
                    continue;
                int cin = 1 + i % 16, cout = couts[i % 5];
                direct_case dc = random_case(&rng, cin, cout, i % 2 ? 3 : 1);
                /* (k, s, p) on one axis, the other axis random. */
                if (i % 2) {
                    dc.win.kh = k, dc.win.sh = s, dc.win.ph = p;
                    dc.in.h = k + 2 + (test_small() ? 0 : 5);
                } else {
                    dc.win.kw = k, dc.win.sw = s, dc.win.pw = p;
                    dc.in.w = k + 3 + (test_small() ? 0 : 6);
                }
                free(check_case(&dc, &rng, 1));
            }
}
END_TEST

/* 1x1 stride-1 unpadded layers with up to 8 channels read the input in place;
 * odd widths, batch 3. */
START_TEST(direct_pointwise)
{
    test_rng rng;
    test_rng_seed(&rng, 707);
    for (int cin = 1; cin <= 8; cin++) {
        direct_case dc = { { 3, 5 + cin, 2 * cin + 1, cin }, { 1, 1, 1, 1, 0, 0 }, 3 + 5 * cin, 1 };
        free(check_case(&dc, &rng, 1));
    }
}
END_TEST

/* The benchmark's layers and a stem: LeNet c1 (padded, Cout 6), c2 (Cin 6),
 * the notes' 32x32x3 -> 16, a padded 3x3 -> 32 at batch 3, a 7x7/2 stem with
 * 64 filters (two full channel passes). */
START_TEST(direct_known_layers)
{
    test_rng rng;
    test_rng_seed(&rng, 703);
    const direct_case cases[] = {
        { { 1, 28, 28, 1 }, { 5, 5, 1, 1, 2, 2 }, 6, 1 },
        { { 1, 14, 14, 6 }, { 5, 5, 1, 1, 0, 0 }, 16, 1 },
        { { 1, 32, 32, 3 }, { 5, 5, 1, 1, 0, 0 }, 16, 1 },
        { { 3, 32, 32, 3 }, { 3, 3, 1, 1, 1, 1 }, 32, 1 },
        { { 1, 37, 45, 3 }, { 7, 7, 2, 2, 3, 3 }, 64, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        free(check_case(&cases[i], &rng, 1));
}
END_TEST

/* Inputs so wide that the padded rows of a whole image exceed the band
 * buffer (64 Ki floats): the image is done in several bands of output rows. */
START_TEST(direct_bands)
{
    test_rng rng;
    test_rng_seed(&rng, 704);
    const direct_case cases[] = {
        { { 1, 9, 2045, 8 }, { 3, 3, 1, 1, 1, 1 }, 5, 1 },  /* 2 output rows per band */
        { { 3, 11, 4001, 3 }, { 5, 3, 2, 1, 2, 1 }, 9, 1 }, /* 1 output row per band */
        { { 1, 12, 1600, 7 }, { 4, 2, 3, 2, 3, 0 }, 17, 0 }, /* 1 row, stride 3 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        free(check_case(&cases[i], &rng, 1));
}
END_TEST

/* Wide layers: Cin past 16 with Couts around the AVX2 loop's 24-channel and
 * the AVX-512 loop's 64-channel panels, small windows (kernel 1..3, stride
 * 1..2, padding 0..1) and 1x1 layers read in place; batch 1 and 2. */
START_TEST(direct_wide_layers)
{
    static const int cins[] = { 17, 24, 33, 64, 100 };
    static const int couts[] = { 1, 7, 16, 24, 25, 48, 64, 65, 72, 96, 128, 130 };
    test_rng rng;
    test_rng_seed(&rng, 708);
    int i = 0;
    for (size_t a = 0; a < sizeof cins / sizeof cins[0]; a++)
        for (size_t b = 0; b < sizeof couts / sizeof couts[0]; b++, i++) {
            if (test_small() && i % 6 != 0)
                continue;
            direct_case dc;
            dc.win.kh = test_rng_int(&rng, 1, 3);
            dc.win.kw = i % 4 == 0 ? 1 : test_rng_int(&rng, 1, 3);
            dc.win.sh = test_rng_int(&rng, 1, 2);
            dc.win.sw = test_rng_int(&rng, 1, 2);
            dc.win.ph = i % 4 == 0 ? 0 : test_rng_int(&rng, 0, 1);
            dc.win.pw = i % 4 == 0 ? 0 : test_rng_int(&rng, 0, 1);
            if (i % 4 == 0)
                dc.win.kh = dc.win.sh = dc.win.sw = 1; /* 1x1, stride 1, unpadded */
            dc.in = (ref_shape){ 1 + i % 2, test_rng_int(&rng, 3, test_small() ? 5 : 9),
                                 test_rng_int(&rng, 3, test_small() ? 6 : 11) | 1, cins[a] };
            dc.filters = couts[b];
            dc.bias = i % 3 != 0;
            free(check_case(&dc, &rng, 1));
        }
}
END_TEST

/* Threads split the output pixels anywhere (mid-row, mid-band); each pixel
 * is summed the same way wherever its range starts, so 2 and 3 threads give
 * the 1-thread bits (where the layer takes the direct path: the wide case
 * takes im2col at the portable level). */
START_TEST(direct_threads_bit_identical)
{
    const direct_case cases[] = {
        { { 2, 61, 67, 3 }, { 5, 5, 1, 1, 2, 2 }, 16, 1 },
        { { 1, 35, 3001, 5 }, { 3, 3, 1, 2, 1, 1 }, 11, 1 },
        { { 1, 64, 63, 1 }, { 3, 5, 1, 1, 0, 0 }, 37, 1 },
        { { 2, 23, 21, 64 }, { 3, 3, 1, 1, 1, 1 }, 64, 1 }, /* wide, split by pixels */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t out_n = ref_elems(ref_window_shape(cases[i].in, cases[i].win, cases[i].filters));
        float *y[3];
        for (int t = 1; t <= 3; t++) {
            test_rng rng;
            test_rng_seed(&rng, 705 + i);
            y[t - 1] = check_case(&cases[i], &rng, t);
        }
        for (int t = 2; t <= 3; t++)
            ck_assert_msg(!takes_direct(&cases[i]) ||
                              memcmp(y[0], y[t - 1], out_n * sizeof(float)) == 0,
                          "case %zu: %d threads differ from 1 thread", i, t);
        for (int t = 0; t < 3; t++)
            free(y[t]);
    }
}
END_TEST

/* conv + fused ReLU of case dc on `threads` threads, weights and input from
 * `seed`: checked against the double reference when `check_ref`, and against
 * the 1-thread bits `first` (NULL at 1 thread) where the direct path runs.
 * Returns the output. */
static float *relu_case_at(const direct_case *dc, uint64_t seed, int threads, int check_ref,
                           const float *first)
{
    const ref_shape os = ref_window_shape(dc->in, dc->win, dc->filters);
    const size_t out_n = ref_elems(os), in_n = ref_elems(dc->in);
    test_rng rng;
    test_rng_seed(&rng, seed);
    char what[200];
    describe(what, sizeof what, dc);
    cnn_net *net = conv_net(dc, what);
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL), what);
    harness_ok(net, cnn_net_set_threads(net, threads), what);
    float *bias;
    float *w = set_params(net, &rng, dc, &bias, what);
    float *x = harness_random(&rng, in_n, -1.0f, 1.0f);
    float *y = harness_forward(net, x, dc->in.n, out_n);
    if (check_ref) {
        double *xd = harness_widen(x, in_n);
        double *ref = test_xmalloc(out_n * sizeof(double));
        ref_conv(xd, dc->in, w, bias, dc->filters, dc->win, ref);
        for (size_t j = 0; j < out_n; j++)
            ref[j] = ref[j] > 0.0 ? ref[j] : 0.0;
        harness_expect_close(y, ref, out_n, TOL, what);
        free(ref);
        free(xd);
    }
    ck_assert_msg(!first || !takes_direct(dc) || memcmp(first, y, out_n * sizeof(float)) == 0,
                  "%s: %d threads differ from 1 thread", what, threads);
    free(x);
    free(bias);
    free(w);
    cnn_net_destroy(net);
    return y;
}

/* Each case at 1..max_threads threads (relu_case_at); the reference is
 * checked at 1 thread, and at every count unless `ref_once_when_small` and
 * test_small(). */
static void relu_cases_across_threads(const direct_case *cases, size_t n, uint64_t seed,
                                      int max_threads, int ref_once_when_small)
{
    for (size_t i = 0; i < n; i++) {
        float *first = NULL;
        for (int t = 1; t <= max_threads; t++) {
            const int check_ref = t == 1 || !ref_once_when_small || !test_small();
            float *y = relu_case_at(&cases[i], seed + i, t, check_ref, first);
            if (first)
                free(y);
            else
                first = y;
        }
        free(first);
    }
}

/* Layers whose weights outnumber their inputs more than twice: 2..4 threads
 * split the channel panels (each reads only its panels' packed weights) when
 * the panel count divides evenly — 10x10x16 -> 192 has 3 AVX-512, 8 AVX2 and
 * 24 portable panels, 8x8x40 -> 128 2 AVX-512 and 6 AVX2 ones — and give the
 * 1-thread bits, also with a fused ReLU, which then runs on each thread's
 * channels only (at the portable level 8x8x40 takes im2col: checked against
 * the reference only). */
START_TEST(direct_channel_groups)
{
    const direct_case cases[] = {
        { { 1, 10, 10, 16 }, { 3, 3, 1, 1, 1, 1 }, 192, 1 },
        { { 1, 8, 8, 40 }, { 3, 3, 1, 1, 1, 1 }, 128, 1 },
        { { 2, 8, 8, 40 }, { 3, 3, 1, 1, 1, 1 }, 128, 0 },
    };
    relu_cases_across_threads(cases, sizeof cases / sizeof cases[0], 709, 4, 0);
}
END_TEST

/* Weights over 960K floats padded: each chunk of pixels runs through a slot of
 * panels at a time (3 of 8 AVX-512 panels, 8 of 22 AVX2 ones for 3x3x512 ->
 * 512), reading the input again per slot, and the rows are finished after
 * the last slot; 1..3 threads, split by channel panels at 2, with a fused
 * ReLU, give the 1-thread bits (the portable level takes im2col: reference
 * only). */
START_TEST(direct_weights_in_slots)
{
    const direct_case cases[] = {
        { { 1, 3, 3, 512 }, { 3, 3, 1, 1, 1, 1 }, 512, 1 },
        { { 2, 2, 3, 2048 }, { 1, 1, 1, 1, 0, 0 }, 500, 1 },
    };
    relu_cases_across_threads(cases, sizeof cases / sizeof cases[0], 712, 3, 1);
}
END_TEST

/* A NaN input makes exactly the outputs whose window covers it NaN, in
 * every channel, with padding around; Cout 6 and 37 have a partial last
 * vector (stored whole into the next pixel, or masked); Cin 40 with Cout 72
 * and 128 takes the wide layers' panels. */
START_TEST(direct_nan_window)
{
    static const int shapes[][2] = { { 3, 6 }, { 3, 37 }, { 40, 72 }, { 40, 128 } };
    enum { H = 9, W = 11, NY = 4, NX = 0, NC = 2 };
    for (size_t ci = 0; ci < sizeof shapes / sizeof shapes[0]; ci++) {
        const int C = shapes[ci][0], F = shapes[ci][1];
        direct_case dc = { { 2, H, W, C }, { 3, 5, 2, 1, 1, 2 }, F, 1 };
        test_rng rng;
        test_rng_seed(&rng, 706);
        cnn_net *net = conv_net(&dc, "nan window");
        float *bias;
        float *w = set_params(net, &rng, &dc, &bias, "nan window");
        size_t img = (size_t)H * W * (size_t)C;
        float *x = harness_random(&rng, 2 * img, -1.0f, 1.0f);
        x[img + ((size_t)NY * W + NX) * (size_t)C + NC] = NAN;
        ref_shape os = ref_window_shape(dc.in, dc.win, F);
        float *y = harness_forward(net, x, 2, ref_elems(os));
        int nans = 0;
        for (int n = 0; n < 2; n++)
            for (int oy = 0; oy < os.h; oy++)
                for (int ox = 0; ox < os.w; ox++) {
                    int dy = NY - (oy * dc.win.sh - dc.win.ph), dx = NX - (ox * dc.win.sw - dc.win.pw);
                    int covers = n == 1 && dy >= 0 && dy < dc.win.kh && dx >= 0 && dx < dc.win.kw;
                    for (int f = 0; f < F; f++) {
                        float v = y[(((size_t)n * (size_t)os.h + (size_t)oy) * (size_t)os.w +
                                     (size_t)ox) * (size_t)F + (size_t)f];
                        nans += covers;
                        ck_assert_msg(covers ? isnan(v) : isfinite(v),
                                      "Cout %d: image %d output (%d,%d,%d) is %g", F, n, oy, ox, f,
                                      (double)v);
                    }
                }
        ck_assert_int_gt(nans, 0);
        free(y);
        free(x);
        free(bias);
        free(w);
        cnn_net_destroy(net);
    }
}
END_TEST

static Suite *direct_suite(void)
{
    Suite *s = suite_create("conv_direct");
    TCase *tc = tcase_create("direct");
    tcase_add_test(tc, direct_every_channel_pair);
    tcase_add_test(tc, direct_every_window);
    tcase_add_test(tc, direct_pointwise);
    tcase_add_test(tc, direct_known_layers);
    tcase_add_test(tc, direct_bands);
    tcase_add_test(tc, direct_wide_layers);
    tcase_add_test(tc, direct_threads_bit_identical);
    tcase_add_test(tc, direct_channel_groups);
    tcase_add_test(tc, direct_weights_in_slots);
    tcase_add_test(tc, direct_nan_window);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(direct_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
