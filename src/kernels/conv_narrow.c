#include "conv_narrow.h"

#include <string.h>

#include "cpu.h"

cnn_conv_narrow_fn cnn__conv_narrow_avx2(void)
{
#ifdef CNN_HAVE_AVX2_KERNELS
    if (cnn__cpu_use_avx2())
        return cnn__conv_narrow_avx2_row;
#endif
    return NULL;
}

size_t cnn__conv_narrow_pitch(const cnn_conv_geometry *g)
{
    const size_t padded = (size_t)g->in_w + 2 * (size_t)g->pad_w;
    return (padded + CNN_CONV_NARROW_SLACK + 7) / 8 * 8;
}

/* Floats of the [k][cout] weights, rounded up so the offsets after them stay aligned. */
static size_t weight_floats(size_t k, int cout) { return (k * (size_t)cout + 15) / 16 * 16; }

size_t cnn__conv_narrow_packed_floats(const cnn_conv_geometry *g, int cout)
{
    const size_t k = (size_t)g->kernel_h * (size_t)g->kernel_w * (size_t)g->in_c;
    return weight_floats(k, cout) + (k + 15) / 16 * 16;
}

void cnn__conv_narrow_pack(const cnn_conv_geometry *g, const float *ohwi, int cout,
                           size_t pitch, float *packed)
{
    const size_t in_c = (size_t)g->in_c, kw = (size_t)g->kernel_w;
    const size_t k = (size_t)g->kernel_h * kw * in_c;
    /* The offsets share the float block; nothing reads them as floats. */
    unsigned *offsets = (unsigned *)(packed + weight_floats(k, cout));
    for (size_t j = 0; j < k; j++) {
        for (size_t c = 0; c < (size_t)cout; c++)
            packed[j * (size_t)cout + c] = ohwi[c * k + j];
        const size_t ky = j / (kw * in_c), kx = j / in_c % kw, ci = j % in_c;
        /* Below one band (at most NARROW_BAND_FLOATS in conv.c), so it fits. */
        offsets[j] = (unsigned)((ky * in_c + ci) * pitch + kx);
    }
}

void cnn__conv_narrow_view(const cnn_conv_geometry *g, int cout, const float *packed,
                           cnn_conv_narrow_task *t)
{
    const size_t k = (size_t)g->kernel_h * (size_t)g->kernel_w * (size_t)g->in_c;
    t->weights = packed;
    t->offsets = (const unsigned *)(packed + weight_floats(k, cout));
    t->k = k;
}

void cnn__conv_narrow_fill_band(const cnn_conv_geometry *g, const float *img, int y0, int rows,
                                size_t pitch, float *band)
{
    const size_t in_c = (size_t)g->in_c, in_w = (size_t)g->in_w, left = (size_t)g->pad_w;
    const size_t right = pitch - left - in_w; /* right padding and slack: zeros too */
    for (int r = 0; r < rows; r++) {
        float *planes = band + (size_t)r * in_c * pitch;
        const int y = y0 + r;
        if (y < 0 || y >= g->in_h) {
            memset(planes, 0, in_c * pitch * sizeof(float));
            continue;
        }
        const float *src = img + (size_t)y * in_w * in_c;
        for (size_t ci = 0; ci < in_c; ci++) {
            memset(planes + ci * pitch, 0, left * sizeof(float));
            memset(planes + ci * pitch + left + in_w, 0, right * sizeof(float));
        }
        if (in_c == 1) {
            memcpy(planes + left, src, in_w * sizeof(float));
            continue;
        }
        /* Reads the row in order; writes in_c planes a float each per pixel. */
        for (size_t x = 0; x < in_w; x++)
            for (size_t ci = 0; ci < in_c; ci++)
                planes[ci * pitch + left + x] = src[x * in_c + ci];
    }
}
