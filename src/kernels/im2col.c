#include "im2col.h"

#include <string.h>

/* Runs shorter than this many floats are copied or zeroed inline: with few
 * input channels a kernel row (or its padded part) is a handful of floats, and
 * a libc call costs more than the copy. The inline form is fixed-size pieces
 * picked by the bits of n (each a few vector moves), with no loop a compiler
 * could turn back into a call. */
#define SHORT_RUN 32

static inline void copy_floats(float *dst, const float *src, size_t n)
{
    if (n >= SHORT_RUN) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t piece = 16; piece > 0; piece /= 2)
        if (n & piece) {
            memcpy(dst, src, piece * sizeof(float));
            dst += piece;
            src += piece;
        }
}

static inline void zero_floats(float *dst, size_t n)
{
    if (n >= SHORT_RUN) {
        memset(dst, 0, n * sizeof(float));
        return;
    }
    for (size_t piece = 16; piece > 0; piece /= 2)
        if (n & piece) {
            memset(dst, 0, piece * sizeof(float));
            dst += piece;
        }
}

/* In NHWC the part of one kernel row that lies inside the image is a single
 * contiguous run of input floats, so each kernel row is at most one copy. */
void cnn__im2col_rows(const cnn_conv_geometry *g, const float *input, size_t first, size_t count,
                      float *columns)
{
    const size_t c = (size_t)g->in_c;
    const size_t row_floats = (size_t)g->kernel_w * c;
    const size_t k = (size_t)g->kernel_h * row_floats;
    const size_t pixels = (size_t)g->out_h * (size_t)g->out_w;
    const size_t image_floats = (size_t)g->in_h * (size_t)g->in_w * c;
    for (size_t i = 0; i < count; i++) {
        size_t m = first + i;
        size_t image = m / pixels, pixel = m % pixels;
        int oy = (int)(pixel / (size_t)g->out_w), ox = (int)(pixel % (size_t)g->out_w);
        const float *img = input + image * image_floats;
        float *dst = columns + i * k;
        int x0 = ox * g->stride_w - g->pad_w;
        int left = x0 < 0 ? -x0 : 0;
        int right_end = x0 + g->kernel_w > g->in_w ? g->in_w - x0 : g->kernel_w;
        for (int ky = 0; ky < g->kernel_h; ky++, dst += row_floats) {
            int y = oy * g->stride_h - g->pad_h + ky;
            if (y < 0 || y >= g->in_h || right_end <= left) {
                zero_floats(dst, row_floats);
                continue;
            }
            const float *src = img + ((size_t)y * (size_t)g->in_w + (size_t)(x0 + left)) * c;
            if (left > 0)
                zero_floats(dst, (size_t)left * c);
            copy_floats(dst + (size_t)left * c, src, (size_t)(right_end - left) * c);
            if (right_end < g->kernel_w)
                zero_floats(dst + (size_t)right_end * c, (size_t)(g->kernel_w - right_end) * c);
        }
    }
}

void cnn__im2col_row_slice(const cnn_conv_geometry *g, const float *input, size_t m, size_t k0,
                           size_t k1, float *columns)
{
    const size_t c = (size_t)g->in_c;
    const size_t pixels = (size_t)g->out_h * (size_t)g->out_w;
    const size_t image = m / pixels, pixel = m % pixels;
    const int oy = (int)(pixel / (size_t)g->out_w), ox = (int)(pixel % (size_t)g->out_w);
    const float *img = input + image * (size_t)g->in_h * (size_t)g->in_w * c;
    /* Walk the kernel cells (ky, kx) whose channel run [cell * c, cell * c + c)
     * meets [k0, k1), copying the part inside the slice. */
    for (size_t cell = k0 / c; cell * c < k1; cell++) {
        size_t from = cell * c > k0 ? cell * c : k0;
        size_t to = cell * c + c < k1 ? cell * c + c : k1;
        int ky = (int)(cell / (size_t)g->kernel_w), kx = (int)(cell % (size_t)g->kernel_w);
        int y = oy * g->stride_h - g->pad_h + ky, x = ox * g->stride_w - g->pad_w + kx;
        float *dst = columns + (from - k0);
        if (y < 0 || y >= g->in_h || x < 0 || x >= g->in_w)
            zero_floats(dst, to - from);
        else
            copy_floats(dst, img + ((size_t)y * (size_t)g->in_w + (size_t)x) * c + (from - cell * c),
                        to - from);
    }
}
