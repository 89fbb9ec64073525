/* AVX2 pooling loops. Built with -mavx2 -mfma (this file only) and called only
 * after cnn__cpu_has_avx2_fma() said yes.
 *
 * NHWC keeps a pixel's channels contiguous, so each step pools 8 channels of one
 * output pixel over its whole window, in the same cell order and with the same
 * comparisons as the portable loops; channels left over (fewer than 8) take one
 * masked block. Results therefore match the portable path bit for bit. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "pool_avx2.c must be compiled with -mavx2 -mfma"
#endif

#include <immintrin.h>

#include "pool.h"

#define LANES 8
#define MAX_BLOCKS 4 /* 32 channels per pass over a window */

/* Walks the window rows [y0, y1), cols [x0, x1) of one pixel's channel block. */
typedef struct window {
    const float *corner; /* (y0, x0), first channel of the block */
    size_t row_step, cell_step;
    int rows, cols;
} window;

/* Take v when v > m or v is NaN: NaN once seen stays, a later NaN replaces it. */
static inline __m256 max_or_nan(__m256 m, __m256 v)
{
    __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    return _mm256_blendv_ps(m, v, take);
}

/* The window max of `blocks` adjacent 8-channel blocks (1..MAX_BLOCKS; a constant
 * at each call, so the blocks live in registers and their chains overlap). */
static inline void window_max_blocks(const window *w, float *out, int blocks)
{
    __m256 m[MAX_BLOCKS];
    for (int b = 0; b < blocks; b++)
        m[b] = _mm256_loadu_ps(w->corner + b * LANES);
    for (int y = 0; y < w->rows; y++) {
        const float *cell = w->corner + (size_t)y * w->row_step;
        for (int x = 0; x < w->cols; x++, cell += w->cell_step)
            for (int b = 0; b < blocks; b++)
                m[b] = max_or_nan(m[b], _mm256_loadu_ps(cell + b * LANES));
    }
    for (int b = 0; b < blocks; b++)
        _mm256_storeu_ps(out + b * LANES, m[b]);
}

/* Window sums in cell order (the portable order), divided like the portable loop. */
static inline void window_avg_blocks(const window *w, float *out, int blocks, __m256 divisor)
{
    __m256 s[MAX_BLOCKS];
    for (int b = 0; b < blocks; b++)
        s[b] = _mm256_setzero_ps();
    for (int y = 0; y < w->rows; y++) {
        const float *cell = w->corner + (size_t)y * w->row_step;
        for (int x = 0; x < w->cols; x++, cell += w->cell_step)
            for (int b = 0; b < blocks; b++)
                s[b] = _mm256_add_ps(s[b], _mm256_loadu_ps(cell + b * LANES));
    }
    for (int b = 0; b < blocks; b++)
        _mm256_storeu_ps(out + b * LANES, _mm256_div_ps(s[b], divisor));
}

/* Lane i on for i < count (1..7): the channels left after the 8-wide blocks.
 * Masked loads read nothing past the tail, so small channel counts (LeNet's 6)
 * stay vectorised instead of falling to one channel at a time. */
static inline __m256i tail_mask(size_t count)
{
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), lanes);
}

static inline void window_max_masked(const window *w, float *out, __m256i mask)
{
    __m256 m = _mm256_maskload_ps(w->corner, mask);
    for (int y = 0; y < w->rows; y++) {
        const float *cell = w->corner + (size_t)y * w->row_step;
        for (int x = 0; x < w->cols; x++, cell += w->cell_step)
            m = max_or_nan(m, _mm256_maskload_ps(cell, mask));
    }
    _mm256_maskstore_ps(out, mask, m);
}

static inline void window_avg_masked(const window *w, float *out, __m256i mask, __m256 divisor)
{
    __m256 s = _mm256_setzero_ps();
    for (int y = 0; y < w->rows; y++) {
        const float *cell = w->corner + (size_t)y * w->row_step;
        for (int x = 0; x < w->cols; x++, cell += w->cell_step)
            s = _mm256_add_ps(s, _mm256_maskload_ps(cell, mask));
    }
    _mm256_maskstore_ps(out, mask, _mm256_div_ps(s, divisor));
}

/* The window of output (oy, ox) of image `img`, at channel 0. */
static window window_at(const cnn_pool_geometry *g, const float *img, int oy, int ox, int *y0,
                        int *y1, int *x0, int *x1)
{
    const size_t c = (size_t)g->channels;
    cnn__pool_clip_window(g, oy, ox, y0, y1, x0, x1);
    window w;
    w.corner = img + ((size_t)*y0 * (size_t)g->in_w + (size_t)*x0) * c;
    w.row_step = (size_t)g->in_w * c;
    w.cell_step = c;
    w.rows = *y1 - *y0;
    w.cols = *x1 - *x0;
    return w;
}

static void pool_max_avx2(const cnn_pool_geometry *g, const float *in, float *out, int batch)
{
    const size_t c = (size_t)g->channels;
    const size_t in_image = (size_t)g->in_h * (size_t)g->in_w * c;
    for (int n = 0; n < batch; n++) {
        const float *img = in + (size_t)n * in_image;
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++, out += c) {
                int y0, y1, x0, x1;
                window w = window_at(g, img, oy, ox, &y0, &y1, &x0, &x1);
                const float *base = w.corner;
                size_t ch = 0;
                for (; ch + MAX_BLOCKS * LANES <= c; ch += MAX_BLOCKS * LANES) {
                    w.corner = base + ch;
                    window_max_blocks(&w, out + ch, MAX_BLOCKS);
                }
                for (; ch + LANES <= c; ch += LANES) {
                    w.corner = base + ch;
                    window_max_blocks(&w, out + ch, 1);
                }
                if (ch < c) {
                    w.corner = base + ch;
                    window_max_masked(&w, out + ch, tail_mask(c - ch));
                }
            }
    }
}

static void pool_avg_avx2(const cnn_pool_geometry *g, const float *in, float *out, int batch,
                          int count_pad)
{
    const size_t c = (size_t)g->channels;
    const size_t in_image = (size_t)g->in_h * (size_t)g->in_w * c;
    for (int n = 0; n < batch; n++) {
        const float *img = in + (size_t)n * in_image;
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++, out += c) {
                int y0, y1, x0, x1;
                window w = window_at(g, img, oy, ox, &y0, &y1, &x0, &x1);
                const float divisor = cnn__pool_avg_divisor(g, count_pad, y0, y1, x0, x1);
                const __m256 divisor8 = _mm256_set1_ps(divisor);
                const float *base = w.corner;
                size_t ch = 0;
                for (; ch + MAX_BLOCKS * LANES <= c; ch += MAX_BLOCKS * LANES) {
                    w.corner = base + ch;
                    window_avg_blocks(&w, out + ch, MAX_BLOCKS, divisor8);
                }
                for (; ch + LANES <= c; ch += LANES) {
                    w.corner = base + ch;
                    window_avg_blocks(&w, out + ch, 1, divisor8);
                }
                if (ch < c) {
                    w.corner = base + ch;
                    window_avg_masked(&w, out + ch, tail_mask(c - ch), divisor8);
                }
            }
    }
}

const cnn_pool_kernels cnn__pool_avx2_loops = { pool_max_avx2, pool_avg_avx2 };
