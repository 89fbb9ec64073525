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

/* These take the AVX2 path when cnn__cpu_use_avx2() allows it, else the portable one. */
/* Max over the window's real cells (padding ignored); NaN wins over numbers. */
void cnn__pool_max(const cnn_pool_geometry *g, const float *in, float *out, int batch);
/* Mean over the window; count_pad divides by the whole window, else by its real cells. */
void cnn__pool_avg(const cnn_pool_geometry *g, const float *in, float *out, int batch,
                   int count_pad);

/* One implementation of the two loops above. */
typedef struct cnn_pool_kernels {
    void (*max)(const cnn_pool_geometry *g, const float *in, float *out, int batch);
    void (*avg)(const cnn_pool_geometry *g, const float *in, float *out, int batch,
                int count_pad);
} cnn_pool_kernels;

/* Plain C: builds and runs everywhere. */
extern const cnn_pool_kernels cnn__pool_portable;
/* The AVX2 loops (8 channels per step), or NULL when they were not built or this CPU
 * cannot run them. Both give the portable results bit for bit: same comparisons,
 * same order of additions. */
const cnn_pool_kernels *cnn__pool_avx2(void);
/* Defined only in builds with the AVX2 code (pool_avx2.c); use cnn__pool_avx2(). */
extern const cnn_pool_kernels cnn__pool_avx2_loops;

/* The window of output (oy, ox) clipped to the image: rows [*y0, *y1), cols [*x0, *x1). */
static inline void cnn__pool_clip_window(const cnn_pool_geometry *g, int oy, int ox, int *y0,
                                         int *y1, int *x0, int *x1)
{
    int ys = oy * g->stride_h - g->pad_h, xs = ox * g->stride_w - g->pad_w;
    *y0 = ys < 0 ? 0 : ys;
    *x0 = xs < 0 ? 0 : xs;
    *y1 = ys + g->window_h > g->in_h ? g->in_h : ys + g->window_h;
    *x1 = xs + g->window_w > g->in_w ? g->in_w : xs + g->window_w;
}

/* The divisor of an average window clipped to rows [y0, y1), cols [x0, x1).
 * Floor-mode windows never leave the padded image, so the whole window is
 * window_h * window_w cells. */
static inline float cnn__pool_avg_divisor(const cnn_pool_geometry *g, int count_pad, int y0,
                                          int y1, int x0, int x1)
{
    int cells = count_pad ? g->window_h * g->window_w : (y1 - y0) * (x1 - x0);
    return (float)cells;
}

#endif
