/* AVX2+FMA direct convolution. Built with -mavx2 -mfma (this file only) and
 * called only after cnn__cpu_has_avx2_fma() said yes.
 *
 * Output channels go across the 8 lanes: a block is `pixels` output pixels x
 * `vecs` vectors of 8 channels held in registers, one panel of the packed
 * weights (cnn__conv_direct_avx2_layout: one panel of up to 32 channels, or
 * panels of 24). For each window element the block loads `vecs` weight
 * vectors once and broadcasts one input float per pixel, so the FMAs of
 * different pixels and vectors form independent chains. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "conv_direct_avx2.c must be compiled with -mavx2 -mfma"
#endif

#include <immintrin.h>

#include "conv_direct.h"

#define LANES 8
#define MAX_VECS 4
#define MAX_PIXELS 12

/* mask_source + 8 - lanes: the first `lanes` of 8 lanes set. */
static const int mask_source[2 * LANES] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };

/* One panel: channels [c0, c0 + width) of n pixels from (oy, ox), weights
 * `w` ([k][vecs * 8]). `vecs` and `pixels` are constants at every call, so the
 * accumulators stay in registers. `spill` allows a whole-vector store past the
 * last channel: the extra lanes land on the next pixel's channels, which this
 * loop writes later (pixels are stored in order, and this is the only panel),
 * so only the pixels whose vector would end past out[n * cout] need a masked
 * store. */
static inline __attribute__((always_inline)) void
panel_pass(const cnn_conv_direct_task *t, int oy, int ox, size_t n, float *out, const float *w0,
           size_t c0, int vecs, int pixels, int spill)
{
    const size_t cout = (size_t)t->cout, stride = (size_t)vecs * LANES;
    const size_t end = n * cout;
    const size_t width = stride < cout - c0 ? stride : cout - c0;
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
        const float *w = w0;
        for (int ky = 0; ky < t->kernel_h; ky++) {
            const float *row[MAX_PIXELS];
            const size_t offset = (size_t)ky * t->row_stride;
#pragma GCC unroll 12
            for (int p = 0; p < pixels; p++)
                row[p] = px[p] + offset;
            for (int j = 0; j < t->row_len; j++, w += stride) {
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

/* (oy, ox) moved on by `pixels` output pixels in row-major order. */
static inline void advance(const cnn_conv_direct_task *t, int *oy, int *ox, size_t pixels)
{
    size_t x = (size_t)*ox + pixels;
    *oy += (int)(x / (size_t)t->out_w);
    *ox = (int)(x % (size_t)t->out_w);
}

/* Pixels per block for each width: enough independent FMA chains to cover the
 * FMA latency, few enough that accumulators, weights and a broadcast fit in
 * the 16 YMM registers. */
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
PASS(2, 6)
PASS(3, 4)
PASS(4, 3)

void cnn__conv_direct_avx2_loop(const cnn_conv_direct_task *t, int oy, int ox, size_t n,
                                int first, int end, float *out)
{
    static const pass_fn passes[MAX_VECS] = { pass_1, pass_2, pass_3, pass_4 };
    /* A layer of up to 32 channels is one panel; wider ones take panels of 24,
     * whose 4-pixel blocks keep their weights in registers (measured faster
     * than 32-channel panels, whose weights come from memory: 7x7x3 -> 64 stem
     * 75 -> 107 GFLOP/s, and than panels of 16: 3x3x8 -> 40 89 -> 99). */
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

/* Packs 8 channels x 8 window elements: rows o of `src` (stride k) become
 * columns of `dst` (row stride `width`), by the usual unpack / shuffle /
 * 128-bit permute transpose. */
static inline void transpose_8x8(const float *src, size_t k, float *dst, size_t width)
{
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++)
        r[i] = _mm256_loadu_ps(src + (size_t)i * k);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int q = 0; q < 4; q++) {
        _mm256_storeu_ps(dst + (size_t)q * width, _mm256_permute2f128_ps(u[q], u[q + 4], 0x20));
        _mm256_storeu_ps(dst + (size_t)(q + 4) * width,
                         _mm256_permute2f128_ps(u[q], u[q + 4], 0x31));
    }
}

size_t cnn__conv_direct_pack_avx2(const float *ohwi, size_t k, size_t channels, size_t width,
                                  float *panel)
{
    /* 8 source rows at a time, each read start to end: 8 streams the hardware
     * prefetcher follows (the weights are often out of cache by the next
     * call). Blocks of 64 window elements over all of a panel's rows, which
     * kept the writes in L1, read 64 streams at once: 1 thread, 14x14x256 ->
     * 256, 2.30 -> 2.24 ms a call. */
    const size_t whole = k / 8 * 8;
    for (size_t o0 = 0; o0 + 8 <= channels; o0 += 8)
        for (size_t j = 0; j < whole; j += 8)
            transpose_8x8(ohwi + o0 * k + j, k, panel + j * width + o0, width);
    return whole;
}
