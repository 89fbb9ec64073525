/* Small helpers of the layer suites: nets, random buffers, checked forwards.
 * They fail the running Check test (with the library's message) on error. */
#ifndef CNN_TEST_NET_HARNESS_H
#define CNN_TEST_NET_HARNESS_H

#include <stddef.h>

#include "cnn.h"
#include "reference.h"
#include "support.h"

/* Fails the test unless st is CNN_OK; `what` names the case. */
void harness_ok(const cnn_net *net, cnn_status st, const char *what);

/* A new empty net for inputs of s.h x s.w x s.c. */
cnn_net *harness_net(ref_shape s);

/* A convolution of `filters` kernels over window w, with or without bias. */
cnn_conv_desc harness_conv_desc(ref_window w, int filters, int bias);

/* A new buffer of n uniform floats in [lo, hi). */
float *harness_random(test_rng *rng, size_t n, float lo, float hi);

/* A new double copy of x. */
double *harness_widen(const float *x, size_t n);

/* Runs the net on `batch` images into a new buffer of out_elems floats that
 * starts as NaN, so an element the net does not write fails any comparison. */
float *harness_forward(cnn_net *net, const float *in, int batch, size_t out_elems);

/* Fails the test unless layer `layer` reports output shape h x w x c. */
void harness_expect_shape(const cnn_net *net, int layer, int h, int w, int c, const char *what);

/* Fails the test unless test_rel_error(y, ref) <= tol. */
void harness_expect_close(const float *y, const double *ref, size_t n, double tol,
                          const char *what);

#endif
