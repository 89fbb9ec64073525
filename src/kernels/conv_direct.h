/* Direct convolution for layers with few input channels (NHWC in and out).
 *
 * im2col + SGEMM runs far from peak when a kernel row holds only a few floats
 * and Cout is small; these loops instead keep a block of output pixels x
 * output channels in registers and walk the window k = (ky, kx, ci) once,
 * broadcasting each input value against a row of weights packed as
 * [k][Cout padded]. The caller hands over a source whose windows need no
 * clipping: either the input itself (no padding) or a zero-padded copy of the
 * rows in use, so padded cells are multiplied like any other (0 * NaN weight
 * is NaN, as with im2col). */
#ifndef CNN_CONV_DIRECT_H
#define CNN_CONV_DIRECT_H

#include <stddef.h>

/* Packed weight rows are padded to a multiple of this many output channels
 * (the widest vector any implementation reads). */
#define CNN_CONV_DIRECT_PAD 16

/* Output channels of one packed weight row: cout rounded up to CNN_CONV_DIRECT_PAD. */
static inline size_t cnn__conv_direct_cout_pad(int cout)
{
    return ((size_t)cout + CNN_CONV_DIRECT_PAD - 1) / CNN_CONV_DIRECT_PAD * CNN_CONV_DIRECT_PAD;
}

/* OHWI weights [cout][k] to [k][cout_pad], zeros in the padding lanes. */
void cnn__conv_direct_pack(const float *ohwi, size_t k, int cout, float *packed);

/* One run of output pixels. Output (oy, ox) reads the window whose top-left
 * float is src + oy * y_step + ox * x_step; its kernel row ky starts ky *
 * row_stride floats further and is row_len = kernel_w * in_c contiguous floats
 * in (kx, ci) order, matching packed row ky * row_len + j. */
typedef struct cnn_conv_direct_task {
    const float *packed; /* [kernel_h * row_len][cnn__conv_direct_cout_pad(cout)] */
    int cout;
    int kernel_h;
    int row_len;
    const float *src;
    size_t row_stride;
    size_t y_step, x_step;
    int out_w;
} cnn_conv_direct_task;

/* Writes n output pixels starting at (oy, ox) and continuing in row-major
 * order (ox wraps to 0 at out_w, oy then advances): pixel i goes to
 * out[i * cout .. i * cout + cout). Each pixel is summed in the same order
 * (k ascending, from 0) wherever it falls in a block, so results do not
 * depend on how the caller splits a range. */
typedef void (*cnn_conv_direct_fn)(const cnn_conv_direct_task *t, int oy, int ox, size_t n,
                                   float *out);

/* Takes the AVX2 path when cnn__cpu_use_avx2() allows it, else the portable one. */
void cnn__conv_direct(const cnn_conv_direct_task *t, int oy, int ox, size_t n, float *out);

/* Plain C: builds and runs everywhere. */
void cnn__conv_direct_portable(const cnn_conv_direct_task *t, int oy, int ox, size_t n,
                               float *out);
/* The AVX2+FMA loop, or NULL when it was not built or this CPU cannot run it. */
cnn_conv_direct_fn cnn__conv_direct_avx2(void);
/* Defined only in builds with the AVX2 code (conv_direct_avx2.c); use cnn__conv_direct_avx2(). */
void cnn__conv_direct_avx2_loop(const cnn_conv_direct_task *t, int oy, int ox, size_t n,
                                float *out);

#endif
