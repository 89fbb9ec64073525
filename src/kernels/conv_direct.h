/* Direct convolution (NHWC in and out), no im2col.
 *
 * The loops keep a block of output pixels x output channels in registers and
 * walk the window k = (ky, kx, ci) once, broadcasting each input value against
 * a row of weights. The weights are packed per forward call into channel
 * panels: panel i holds output channels [i * panel, (i + 1) * panel) as
 * [k][width] rows, so a pass over one panel streams one contiguous block that
 * stays in cache while the caller runs many pixels through it. The caller
 * hands over a source whose windows need no clipping: either the input itself
 * (no padding) or a zero-padded copy of the rows in use, so padded cells are
 * multiplied like any other (0 * NaN weight is NaN, as with im2col). */
#ifndef CNN_CONV_DIRECT_H
#define CNN_CONV_DIRECT_H

#include <stddef.h>

/* Every layout's packed weights fit k * cnn__conv_direct_cout_pad(cout) floats. */
#define CNN_CONV_DIRECT_PAD 16

/* cout rounded up to CNN_CONV_DIRECT_PAD. */
static inline size_t cnn__conv_direct_cout_pad(int cout)
{
    return ((size_t)cout + CNN_CONV_DIRECT_PAD - 1) / CNN_CONV_DIRECT_PAD * CNN_CONV_DIRECT_PAD;
}

/* How one implementation wants its weights: panels of `panel` channels (the
 * last one may be narrower), each row padded to a multiple of `lanes` (which
 * divides `panel` and CNN_CONV_DIRECT_PAD). */
typedef struct cnn_conv_direct_layout {
    int panel;
    int lanes;
} cnn_conv_direct_layout;

/* The layout of the loop cnn__conv_direct() dispatches to for cout channels:
 * AVX-512 for wide layers when cnn__cpu_use_avx512(), else AVX2 when
 * cnn__cpu_use_avx2(), else portable. */
cnn_conv_direct_layout cnn__conv_direct_layout(int cout);

/* Panels of a layer with cout channels. */
static inline int cnn__conv_direct_panels(cnn_conv_direct_layout l, int cout)
{
    return (cout + l.panel - 1) / l.panel;
}

/* OHWI weights [cout][k] into panels [first, end), panel `first` at `packed`
 * and the others after it; zeros in the padding lanes. */
void cnn__conv_direct_pack(const float *ohwi, size_t k, int cout, cnn_conv_direct_layout l,
                           int first, int end, float *packed);

/* One run of output pixels. Output (oy, ox) reads the window whose top-left
 * float is src + oy * y_step + ox * x_step; its kernel row ky starts ky *
 * row_stride floats further and is row_len = kernel_w * in_c contiguous floats
 * in (kx, ci) order, matching packed row ky * row_len + j. */
typedef struct cnn_conv_direct_task {
    const float *packed; /* panels from packed_from on, by cnn__conv_direct_pack with `layout` */
    int packed_from;
    cnn_conv_direct_layout layout;
    int cout;
    int kernel_h;
    int row_len;
    const float *src;
    size_t row_stride;
    size_t y_step, x_step;
    int out_w;
} cnn_conv_direct_task;

/* Writes channels of panels [first, end) (packed: packed_from <= first) of n
 * output pixels starting at
 * (oy, ox) and continuing in row-major order (ox wraps to 0 at out_w, oy then
 * advances): pixel i's channel c goes to out[i * cout + c]. Other channels of
 * out are left as they are, except that a call covering every channel may
 * write them in any order. Each output is summed in the same order (k
 * ascending, from 0) wherever it falls in a block, so results do not depend
 * on how the caller splits pixels or panels. */
typedef void (*cnn_conv_direct_fn)(const cnn_conv_direct_task *t, int oy, int ox, size_t n,
                                   int first, int end, float *out);

/* Runs the loop cnn__conv_direct_layout(t->cout) belongs to; t->layout must be
 * that layout. */
void cnn__conv_direct(const cnn_conv_direct_task *t, int oy, int ox, size_t n, int first,
                      int end, float *out);

/* The loops behind it, each with its own layout (tests call them directly). */
cnn_conv_direct_layout cnn__conv_direct_portable_layout(int cout);
void cnn__conv_direct_portable(const cnn_conv_direct_task *t, int oy, int ox, size_t n,
                               int first, int end, float *out);
/* The AVX2+FMA loop, or NULL when it was not built or this CPU cannot run it. */
cnn_conv_direct_fn cnn__conv_direct_avx2(void);
cnn_conv_direct_layout cnn__conv_direct_avx2_layout(int cout);
/* The AVX-512F loop, or NULL when it was not built or this CPU cannot run it. */
cnn_conv_direct_fn cnn__conv_direct_avx512(void);
cnn_conv_direct_layout cnn__conv_direct_avx512_layout(int cout);
/* Defined only in builds with the vector code; use the getters above. */
void cnn__conv_direct_avx2_loop(const cnn_conv_direct_task *t, int oy, int ox, size_t n,
                                int first, int end, float *out);
/* Packs the window elements [0, returned) of the whole 8-channel blocks of a
 * panel's `channels` (ohwi: the panel's first channel row; rows `width` apart). */
size_t cnn__conv_direct_pack_avx2(const float *ohwi, size_t k, size_t channels, size_t width,
                                  float *panel);
void cnn__conv_direct_avx512_loop(const cnn_conv_direct_task *t, int oy, int ox, size_t n,
                                  int first, int end, float *out);

#endif
