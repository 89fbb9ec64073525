/* AVX-512F direct convolution. Built with -mavx512f (this file only) and
 * called only after cnn__cpu_has_avx512f() and cnn__cpu_has_avx2_fma() said
 * yes.
 *
 * The AVX2 loop's scheme with 16 lanes and 32 registers: a block is `pixels`
 * output pixels x `vecs` vectors of 16 channels, one panel of the packed
 * weights (cnn__conv_direct_avx512_layout: one panel of up to 64 channels, or
 * panels of 64). The 32 registers hold 24 accumulators next to the 4 weight
 * vectors, so a 64-channel panel reuses each broadcast input 4 times and each
 * weight vector 6 times. */
#if !defined(__AVX512F__)
#error "conv_direct_avx512.c must be compiled with -mavx512f"
#endif

#include <immintrin.h>

#include "conv_direct.h"

#define LANES 16
#define MAX_VECS 4
#define MAX_PIXELS 12

/* One panel: channels [c0, c0 + width) of n pixels from (oy, ox), weights
 * `w` ([k][vecs * 16]); as in conv_direct_avx2.c, `spill` (the only panel)
 * lets a last vector that ends inside the run be stored whole. */
static inline __attribute__((always_inline)) void
panel_pass(const cnn_conv_direct_task *t, int oy, int ox, size_t n, float *out, const float *w0,
           size_t c0, int vecs, int pixels, int spill)
{
    const size_t cout = (size_t)t->cout, stride = (size_t)vecs * LANES;
    const size_t end = n * cout;
    const size_t width = stride < cout - c0 ? stride : cout - c0;
    const size_t tail = width - (size_t)(vecs - 1) * LANES; /* lanes of the last vector */
    const __mmask16 tail_mask = (__mmask16)((1u << tail) - 1u);
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
        __m512 acc[MAX_PIXELS][MAX_VECS];
#pragma GCC unroll 12
        for (int p = 0; p < pixels; p++)
#pragma GCC unroll 4
            for (int v = 0; v < vecs; v++)
                acc[p][v] = _mm512_setzero_ps();
        const float *w = w0;
        for (int ky = 0; ky < t->kernel_h; ky++) {
            const float *row[MAX_PIXELS];
            const size_t offset = (size_t)ky * t->row_stride;
#pragma GCC unroll 12
            for (int p = 0; p < pixels; p++)
                row[p] = px[p] + offset;
            for (int j = 0; j < t->row_len; j++, w += stride) {
                __m512 wv[MAX_VECS];
#pragma GCC unroll 4
                for (int v = 0; v < vecs; v++)
                    wv[v] = _mm512_load_ps(w + v * LANES);
#pragma GCC unroll 12
                for (int p = 0; p < pixels; p++) {
                    const __m512 x = _mm512_set1_ps(row[p][j]);
#pragma GCC unroll 4
                    for (int v = 0; v < vecs; v++)
                        acc[p][v] = _mm512_fmadd_ps(x, wv[v], acc[p][v]);
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
                _mm512_storeu_ps(out + at + (size_t)v * LANES, acc[p][v]);
            float *last = out + at + (size_t)(vecs - 1) * LANES;
            if (tail == LANES || (spill && at + (size_t)vecs * LANES <= end))
                _mm512_storeu_ps(last, acc[p][vecs - 1]);
            else
                _mm512_mask_storeu_ps(last, tail_mask, acc[p][vecs - 1]);
        }
    }
}

/* (oy, ox) moved on by `pixels` output pixels in row-major order. */
static inline void advance(const cnn_conv_direct_task *t, int *oy, int *ox, size_t pixels)
{
    size_t x = (size_t)*ox + pixels;
    *oy += (int)(x / (size_t)t->out_w);
    *ox = (int)(x % (size_t)t->out_w);
}

/* Pixels per block for each width: at least 8 independent FMA chains, and
 * accumulators + weights + a broadcast within the 32 ZMM registers. */
typedef void (*pass_fn)(const cnn_conv_direct_task *, int, int, size_t, float *, const float *,
                        size_t, int);
/* The whole blocks of a run, then the rest in blocks of 8, 4, 2 and 1 pixels
 * (those below `pixels`), so no block computes pixels it does not store: a
 * 7x7 image is 8 blocks of 6 and one of 1 instead of 9 of 6. */
#define TAIL(vecs, pixels, size)                                                              \
    if ((size) < (pixels) && n - done >= (size)) {                                            \
        panel_pass(t, oy, ox, (size), out + done * cout, w, c0, vecs, (size), spill);         \
        done += (size);                                                                       \
        advance(t, &oy, &ox, (size));                                                         \
    }
#define PASS(vecs, pixels)                                                                    \
    static void pass_##vecs(const cnn_conv_direct_task *t, int oy, int ox, size_t n,          \
                            float *out, const float *w, size_t c0, int spill)                 \
    {                                                                                         \
        const size_t cout = (size_t)t->cout;                                                  \
        size_t done = n / (pixels) * (pixels);                                                \
        if (done) {                                                                           \
            panel_pass(t, oy, ox, done, out, w, c0, vecs, pixels, spill);                     \
            advance(t, &oy, &ox, done);                                                       \
        }                                                                                     \
        TAIL(vecs, pixels, 8)                                                                 \
        TAIL(vecs, pixels, 4)                                                                 \
        TAIL(vecs, pixels, 2)                                                                 \
        TAIL(vecs, pixels, 1)                                                                 \
    }
PASS(1, 12)
PASS(2, 12)
PASS(3, 8)
PASS(4, 6)

void cnn__conv_direct_avx512_loop(const cnn_conv_direct_task *t, int oy, int ox, size_t n,
                                  int first, int end, float *out)
{
    static const pass_fn passes[MAX_VECS] = { pass_1, pass_2, pass_3, pass_4 };
    const size_t cout = (size_t)t->cout, panel = (size_t)t->layout.panel;
    const size_t k = (size_t)t->kernel_h * (size_t)t->row_len;
    const int single = cout <= panel;
    for (int i = first; i < end; i++) {
        const size_t c0 = (size_t)i * panel;
        const size_t left = cout - c0 < panel ? cout - c0 : panel;
        const float *w = t->packed + (c0 - (size_t)t->packed_from * panel) * k;
        passes[(left + LANES - 1) / LANES - 1](t, oy, ox, n, out, w, c0, single);
    }
}
