/* AVX2+FMA direct convolution. Built with -mavx2 -mfma (this file only) and
 * called only after cnn__cpu_has_avx2_fma() said yes.
 *
 * Output channels go across the 8 lanes: a block is `pixels` output pixels x
 * `vecs` vectors of 8 channels held in registers (at most 32 channels per pass;
 * wider layers take several passes). For each window element the block loads
 * `vecs` weight vectors once and broadcasts one input float per pixel, so the
 * FMAs of different pixels and vectors form independent chains. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "conv_direct_avx2.c must be compiled with -mavx2 -mfma"
#endif

#include <immintrin.h>

#include "conv_direct.h"

#define LANES 8
#define MAX_VECS 4   /* channels per pass: MAX_VECS * LANES */
#define MAX_PIXELS 12

/* mask_source + 8 - lanes: the first `lanes` of 8 lanes set. */
static const int mask_source[2 * LANES] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };

/* One pass over channels [c0, c0 + vecs * 8) of n pixels from (oy, ox).
 * `vecs` and `pixels` are constants at every call, so the accumulators stay in
 * registers. `spill` allows a whole-vector store past the last channel: the
 * extra lanes land on the next pixel's channels, which this loop writes later
 * (pixels are stored in order, and this is the only pass), so only the
 * pixels whose vector would end past out[n * cout] need a masked store. */
static inline __attribute__((always_inline)) void
channel_pass(const cnn_conv_direct_task *t, int oy, int ox, size_t n, float *out, size_t c0,
             int vecs, int pixels, int spill)
{
    const size_t pad = cnn__conv_direct_cout_pad(t->cout), cout = (size_t)t->cout;
    const size_t end = n * cout;
    const size_t width = (size_t)vecs * LANES < cout - c0 ? (size_t)vecs * LANES : cout - c0;
    const size_t tail = width - (size_t)(vecs - 1) * LANES; /* lanes of the last vector */
    const __m256i tail_mask = _mm256_loadu_si256((const __m256i *)(mask_source + LANES - tail));
    int cy = oy, cx = ox;
    for (size_t done = 0; done < n; done += (size_t)pixels) {
        size_t valid = n - done < (size_t)pixels ? n - done : (size_t)pixels;
        /* Window corners; slots past the end repeat the last pixel (computed, not stored). */
        const float *px[MAX_PIXELS];
#pragma GCC unroll 12
        for (int p = 0; p < pixels; p++) {
            if ((size_t)p < valid) {
                px[p] = t->src + (size_t)cy * t->y_step + (size_t)cx * t->x_step;
                if (++cx == t->out_w) {
                    cx = 0;
                    cy++;
                }
            } else {
                px[p] = px[p - 1];
            }
        }
        __m256 acc[MAX_PIXELS][MAX_VECS];
#pragma GCC unroll 12
        for (int p = 0; p < pixels; p++)
#pragma GCC unroll 4
            for (int v = 0; v < vecs; v++)
                acc[p][v] = _mm256_setzero_ps();
        const float *w = t->packed + c0;
        for (int ky = 0; ky < t->kernel_h; ky++) {
            const float *row[MAX_PIXELS];
            const size_t offset = (size_t)ky * t->row_stride;
#pragma GCC unroll 12
            for (int p = 0; p < pixels; p++)
                row[p] = px[p] + offset;
            for (int j = 0; j < t->row_len; j++, w += pad) {
                __m256 wv[MAX_VECS];
#pragma GCC unroll 4
                for (int v = 0; v < vecs; v++)
                    wv[v] = _mm256_load_ps(w + v * LANES);
#pragma GCC unroll 12
                for (int p = 0; p < pixels; p++) {
                    const __m256 x = _mm256_broadcast_ss(row[p] + j);
#pragma GCC unroll 4
                    for (int v = 0; v < vecs; v++)
                        acc[p][v] = _mm256_fmadd_ps(x, wv[v], acc[p][v]);
                }
            }
        }
#pragma GCC unroll 12
        for (int p = 0; p < pixels; p++) {
            if ((size_t)p >= valid)
                break;
            const size_t at = (done + (size_t)p) * cout + c0;
#pragma GCC unroll 4
            for (int v = 0; v < vecs - 1; v++)
                _mm256_storeu_ps(out + at + (size_t)v * LANES, acc[p][v]);
            float *last = out + at + (size_t)(vecs - 1) * LANES;
            if (tail == LANES || (spill && at + (size_t)vecs * LANES <= end))
                _mm256_storeu_ps(last, acc[p][vecs - 1]);
            else
                _mm256_maskstore_ps(last, tail_mask, acc[p][vecs - 1]);
        }
    }
}

/* Pixels per block for each width: enough independent FMA chains to cover the
 * FMA latency, few enough that accumulators, weights and a broadcast fit in
 * the 16 YMM registers. */
static void pass_1(const cnn_conv_direct_task *t, int oy, int ox, size_t n, float *out, size_t c0,
                   int spill)
{
    channel_pass(t, oy, ox, n, out, c0, 1, 12, spill);
}

static void pass_2(const cnn_conv_direct_task *t, int oy, int ox, size_t n, float *out, size_t c0,
                   int spill)
{
    channel_pass(t, oy, ox, n, out, c0, 2, 6, spill);
}

static void pass_3(const cnn_conv_direct_task *t, int oy, int ox, size_t n, float *out, size_t c0,
                   int spill)
{
    channel_pass(t, oy, ox, n, out, c0, 3, 4, spill);
}

static void pass_4(const cnn_conv_direct_task *t, int oy, int ox, size_t n, float *out, size_t c0,
                   int spill)
{
    channel_pass(t, oy, ox, n, out, c0, 4, 3, spill);
}

void cnn__conv_direct_avx2_loop(const cnn_conv_direct_task *t, int oy, int ox, size_t n,
                                float *out)
{
    static void (*const passes[MAX_VECS])(const cnn_conv_direct_task *, int, int, size_t,
                                          float *, size_t, int) = { pass_1, pass_2, pass_3,
                                                                    pass_4 };
    /* Up to 32 channels in one pass; wider layers in passes of 24, whose 4-pixel
     * blocks keep their weights in registers (measured faster than 32-channel
     * passes, whose weights come from memory: 7x7x3 -> 64 stem 75 -> 107
     * GFLOP/s, and than passes of 16: 3x3x8 -> 40 89 -> 99). */
    const size_t cout = (size_t)t->cout;
    const int single = cout <= MAX_VECS * LANES;
    const size_t per_pass = single ? MAX_VECS * LANES : 3 * LANES;
    for (size_t c0 = 0; c0 < cout; c0 += per_pass) {
        size_t left = cout - c0 < per_pass ? cout - c0 : per_pass;
        passes[(left + LANES - 1) / LANES - 1](t, oy, ox, n, out, c0, single);
    }
}
