/* Pooling loops over NHWC tensors; each channel is pooled independently. */
#ifndef CNN_POOL_KERNELS_H
#define CNN_POOL_KERNELS_H

#include <stddef.h>

typedef struct cnn_pool_geometry {
    int in_h, in_w, channels;
    int out_h, out_w;
    int window_h, window_w;
    int stride_h, stride_w;
    int pad_h, pad_w;
} cnn_pool_geometry;

/* Max over the window's real cells (padding ignored); NaN wins over numbers. */
void cnn__pool_max(const cnn_pool_geometry *g, const float *in, float *out, int batch);
/* Mean over the window; count_pad divides by the whole window, else by its real cells. */
void cnn__pool_avg(const cnn_pool_geometry *g, const float *in, float *out, int batch,
                   int count_pad);

#endif
