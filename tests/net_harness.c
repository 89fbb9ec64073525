#include "net_harness.h"

#include <math.h>
#include <stdlib.h>

#include <check.h>

void harness_ok(const cnn_net *net, cnn_status st, const char *what)
{
    ck_assert_msg(st == CNN_OK, "%s: %s (%s)", what, cnn_status_string(st),
                  cnn_net_last_error(net));
}

cnn_net *harness_net(ref_shape s)
{
    cnn_net *net = NULL;
    harness_ok(NULL, cnn_net_create(&net, s.h, s.w, s.c), "cnn_net_create");
    ck_assert_ptr_nonnull(net);
    return net;
}

float *harness_random(test_rng *rng, size_t n, float lo, float hi)
{
    float *x = test_xmalloc(n * sizeof(float));
    test_fill_uniform(rng, x, n, lo, hi);
    return x;
}

double *harness_widen(const float *x, size_t n)
{
    double *y = test_xmalloc(n * sizeof(double));
    ref_widen(x, y, n);
    return y;
}

float *harness_forward(cnn_net *net, const float *in, int batch, size_t out_elems)
{
    float *out = test_xmalloc(out_elems * sizeof(float));
    for (size_t i = 0; i < out_elems; i++)
        out[i] = NAN;
    harness_ok(net, cnn_forward(net, in, batch, out), "cnn_forward");
    return out;
}

void harness_expect_shape(const cnn_net *net, int layer, int h, int w, int c, const char *what)
{
    int gh = -1, gw = -1, gc = -1;
    harness_ok(net, cnn_layer_output_shape(net, layer, &gh, &gw, &gc), what);
    ck_assert_msg(gh == h && gw == w && gc == c,
                  "%s: layer %d output is %dx%dx%d, expected %dx%dx%d", what, layer, gh, gw, gc,
                  h, w, c);
}

void harness_expect_close(const float *y, const double *ref, size_t n, double tol,
                          const char *what)
{
    double err = test_rel_error(y, ref, n);
    ck_assert_msg(err <= tol, "%s: relative error %g exceeds %g", what, err, tol);
}

cnn_conv_desc harness_conv_desc(ref_window w, int filters, int bias)
{
    cnn_conv_desc d;
    cnn_conv_desc_init(&d);
    d.filters = filters;
    d.kernel_h = w.kh;
    d.kernel_w = w.kw;
    d.stride_h = w.sh;
    d.stride_w = w.sw;
    d.pad_h = w.ph;
    d.pad_w = w.pw;
    d.bias = bias;
    return d;
}
