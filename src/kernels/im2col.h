/* Lowering a convolution's input windows to GEMM rows (NHWC, OHWI order). */
#ifndef CNN_IM2COL_H
#define CNN_IM2COL_H

#include <stddef.h>

typedef struct cnn_conv_geometry {
    int in_h, in_w, in_c;
    int out_h, out_w;
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int pad_h, pad_w;
} cnn_conv_geometry;

/* Writes rows [first, first + count) of the column matrix: row m is output pixel
 * m = (image, oy, ox) of the batch starting at `input`; each row holds the
 * kernel_h x kernel_w x in_c window in (row, column, channel) order, zeros where
 * the window covers padding. */
void cnn__im2col_rows(const cnn_conv_geometry *g, const float *input, size_t first, size_t count,
                      float *columns);

/* Elements [k0, k1) of column-matrix row m alone, for layers whose single row
 * is larger than the column buffer (the GEMM then accumulates over K slices). */
void cnn__im2col_row_slice(const cnn_conv_geometry *g, const float *input, size_t m, size_t k0,
                           size_t k1, float *columns);

#endif
