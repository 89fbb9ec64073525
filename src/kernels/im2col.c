#include "im2col.h"

#include <string.h>

/* In NHWC the part of one kernel row that lies inside the image is a single
 * contiguous run of input floats, so each kernel row is at most one memcpy. */
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
                memset(dst, 0, row_floats * sizeof(float));
                continue;
            }
            const float *src = img + ((size_t)y * (size_t)g->in_w + (size_t)(x0 + left)) * c;
            memset(dst, 0, (size_t)left * c * sizeof(float));
            memcpy(dst + (size_t)left * c, src, (size_t)(right_end - left) * c * sizeof(float));
            memset(dst + (size_t)right_end * c, 0,
                   (size_t)(g->kernel_w - right_end) * c * sizeof(float));
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
            memset(dst, 0, (to - from) * sizeof(float));
        else
            memcpy(dst, img + ((size_t)y * (size_t)g->in_w + (size_t)x) * c + (from - cell * c),
                   (to - from) * sizeof(float));
    }
}
