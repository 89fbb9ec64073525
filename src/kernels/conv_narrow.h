/* Direct convolution for layers with few output channels and horizontal
 * stride 1 (LeNet's 1 -> 6 first layer, a 3-channel head at the end of a
 * net).
 *
 * The direct loops (conv_direct.h) put output channels across the vector
 * lanes, so a layer with 6 channels uses 6 of 8 lanes and one with 3 uses 3.
 * This loop puts 8 neighbouring output pixels of one row across the lanes
 * instead: for each window element it loads the 8 inputs those pixels read,
 * which are contiguous when the input is stored one channel plane per row
 * (the band below) and the horizontal stride is 1, and multiplies them by one
 * broadcast weight per output channel. Every lane does useful work, whatever
 * the channel count. The accumulators are transposed back to NHWC on store.
 *
 * The band: input rows zero-padded on every side and stored planar. Band row
 * r, channel ci, is `pitch` floats at band + (r * in_c + ci) * pitch; its
 * column j is input column j - pad_w. Each output row's windows start at
 * column ox and run kernel_w columns; the loop may read up to
 * CNN_CONV_NARROW_SLACK floats past the last column a valid pixel reads
 * (those lanes are computed and discarded), so pitch leaves room for them. */
#ifndef CNN_CONV_NARROW_H
#define CNN_CONV_NARROW_H

#include <stddef.h>

#include "im2col.h"

/* Widest layer the loop takes: at 8 channels the channel-lane loops fill
 * their vectors already. */
#define CNN_CONV_NARROW_MAX_COUT 7
/* Floats a row may be read past the last column a valid pixel reaches. */
#define CNN_CONV_NARROW_SLACK 8

typedef struct cnn_conv_narrow_task {
    const float *weights;   /* [k][cout], by cnn__conv_narrow_pack */
    const unsigned *offsets; /* [k], by cnn__conv_narrow_pack */
    size_t k;               /* kernel_h * kernel_w * in_c */
    int cout;
    int in_c;
    const float *band;
    size_t pitch;
} cnn_conv_narrow_task;

/* Floats cnn__conv_narrow_pack writes (weights and offsets), a multiple of 16. */
size_t cnn__conv_narrow_packed_floats(const cnn_conv_geometry *g, int cout);

/* Lays out OHWI weights as [k][cout] at `packed` and, after them, the offset
 * of each window element (ky, kx, ci) from a window's top-left band float:
 * (ky * in_c + ci) * pitch + kx. */
void cnn__conv_narrow_pack(const cnn_conv_geometry *g, const float *ohwi, int cout,
                           size_t pitch, float *packed);

/* Points t's weights and offsets into `packed` (by cnn__conv_narrow_pack) and
 * sets its k. */
void cnn__conv_narrow_view(const cnn_conv_geometry *g, int cout, const float *packed,
                           cnn_conv_narrow_task *t);

/* n (>= 1) pixels of one output row, columns [ox, ox + n), whose windows
 * start at band row `row` (output row oy of a stride-s layer starts at band
 * row (oy - first band row's output row) * s). Pixel i's channel c goes to
 * out[i * cout + c]; nothing outside out[0, n * cout) is written. Each output
 * is one FMA chain from 0 over the window in (ky, kx, ci) order, the order of
 * the AVX2 channel-lane loop, so both give the same bits. */
typedef void (*cnn_conv_narrow_fn)(const cnn_conv_narrow_task *t, int row, int ox, int n,
                                   float *out);

/* The AVX2+FMA loop, or NULL when it was not built or the dispatch level
 * (cpu.h) does not allow AVX2. */
cnn_conv_narrow_fn cnn__conv_narrow_avx2(void);
/* Defined only in builds with the vector code; use the getter above. */
void cnn__conv_narrow_avx2_row(const cnn_conv_narrow_task *t, int row, int ox, int n,
                               float *out);

/* Floats between band rows of one channel plane: the padded width plus slack,
 * rounded up to 8. */
size_t cnn__conv_narrow_pitch(const cnn_conv_geometry *g);

/* Fills `rows` band rows starting at input row y0 (may be negative or past the
 * image: zeros) of the NHWC image `img`. */
void cnn__conv_narrow_fill_band(const cnn_conv_geometry *g, const float *img, int y0, int rows,
                                size_t pitch, float *band);

#endif
