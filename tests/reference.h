/* Naive reference layers: nested loops, double accumulators, NHWC tensors.
 * These are the ground truth of the layer tests, so they favour being
 * obviously correct over being fast. Activations are double in and out, so
 * references chain without rounding; weights are the library's floats. */
#ifndef CNN_TEST_REFERENCE_H
#define CNN_TEST_REFERENCE_H

#include <stddef.h>

/* A batch of n images of h x w x c (NHWC). */
typedef struct ref_shape {
    int n, h, w, c;
} ref_shape;

/* A sliding window: size, stride and zero padding per axis. */
typedef struct ref_window {
    int kh, kw;
    int sh, sw;
    int ph, pw;
} ref_window;

/* floor((size + 2*pad - kernel) / stride) + 1, the output size of a window. */
int ref_out_size(int size, int pad, int kernel, int stride);

/* Elements of a shape (all four axes). */
size_t ref_elems(ref_shape s);

/* Output shape of a conv with `filters` kernels, or of a pool (filters = s.c). */
ref_shape ref_window_shape(ref_shape s, ref_window win, int filters);

/* y[i] = x[i] as double. */
void ref_widen(const float *x, double *y, size_t n);

/* Convolution; weights OHWI [filters][kh][kw][s.c]; bias may be NULL. */
void ref_conv(const double *in, ref_shape s, const float *weights, const float *bias,
              int filters, ref_window win, double *out);

/* Max pooling per channel; padded cells take no part. */
void ref_max_pool(const double *in, ref_shape s, ref_window win, double *out);

/* Average pooling per channel; count_pad nonzero divides by kh*kw, zero by
 * the number of real input cells in the window. */
void ref_avg_pool(const double *in, ref_shape s, ref_window win, int count_pad, double *out);

void ref_relu(const double *in, size_t n, double *out);
void ref_leaky_relu(const double *in, size_t n, double slope, double *out);
void ref_sigmoid(const double *in, size_t n, double *out);
void ref_tanh(const double *in, size_t n, double *out);

/* Fully connected: out[b][u] = bias[u] + sum_i weights[u][i] * in[b][i];
 * `in` is each image flattened as stored (NHWC); bias may be NULL. */
void ref_dense(const double *in, int batch, int inputs, const float *weights,
               const float *bias, int units, double *out);

/* Softmax over the last axis of `pixels` vectors of `channels` values. */
void ref_softmax(const double *in, size_t pixels, int channels, double *out);

/* Reorders a batch from NHWC to NCHW (PyTorch's flatten order). */
void ref_nhwc_to_nchw(const double *in, ref_shape s, double *out);

/* Conv weights from OIHW (PyTorch) to OHWI (native), by index. */
void ref_oihw_to_ohwi(const float *oihw, int filters, int kh, int kw, int in_c, float *ohwi);

#endif
