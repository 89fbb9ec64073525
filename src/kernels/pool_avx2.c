/* AVX2 pooling loops. Built with -mavx2 -mfma (this file only) and called only
 * after cnn__cpu_has_avx2_fma() said yes.
 *
 * NHWC keeps a pixel's channels contiguous, so each step pools 8 channels of one
 * output pixel over its whole window, in the same cell order and with the same
 * comparisons as the portable loops, so results match the portable path bit for
 * bit. Channels left after the 8-wide blocks (all of them when there are fewer
 * than 8, like LeNet's 6) take one more 8-lane block: a plain one whose extra
 * lanes read the next cell's channels and write the next pixel's (which that
 * pixel overwrites later), or a masked one where that would leave the call's
 * tensors (the last pixels). Masked loads and stores are several times slower
 * than plain ones on AMD cores: LeNet's 28x28x6 2x2 max pool of 64 images took
 * 118 us with a masked block per pixel, 78 us with plain blocks and, with the
 * 2x2 window unrolled and the clipping worked out once per row, 30 us. */
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

/* Take v when v > m or v is NaN: NaN once seen stays, a later NaN replaces it,
 * and of equal values (+0, -0) the earlier stays. max_ps(v, m) is v > m ? v : m
 * (m when either is NaN), so only a NaN v needs the blend. */
static inline __m256 max_or_nan(__m256 m, __m256 v)
{
    return _mm256_blendv_ps(_mm256_max_ps(v, m), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* The window max of `blocks` adjacent 8-channel blocks (1..MAX_BLOCKS) over
 * rows x cols cells. Called with constants where it matters (blocks; 2x2
 * windows), so the blocks live in registers and the cell loops unroll. The
 * first cell starts the max; comparing it with itself again, as the portable
 * loop does, changes no bit. */
static inline void window_max_blocks(const window *w, int rows, int cols, float *out, int blocks)
{
    __m256 m[MAX_BLOCKS];
    for (int b = 0; b < blocks; b++)
        m[b] = _mm256_loadu_ps(w->corner + b * LANES);
    for (int y = 0; y < rows; y++) {
        const float *cell = w->corner + (size_t)y * w->row_step;
        for (int x = 0; x < cols; x++, cell += w->cell_step)
            if (x | y)
                for (int b = 0; b < blocks; b++)
                    m[b] = max_or_nan(m[b], _mm256_loadu_ps(cell + b * LANES));
    }
    for (int b = 0; b < blocks; b++)
        _mm256_storeu_ps(out + b * LANES, m[b]);
}

/* Window sums in cell order from 0 (the portable order: 0 + -0 is +0), divided
 * like the portable loop. */
static inline void window_avg_blocks(const window *w, int rows, int cols, float *out, int blocks,
                                     __m256 divisor)
{
    __m256 s[MAX_BLOCKS];
    for (int b = 0; b < blocks; b++)
        s[b] = _mm256_setzero_ps();
    for (int y = 0; y < rows; y++) {
        const float *cell = w->corner + (size_t)y * w->row_step;
        for (int x = 0; x < cols; x++, cell += w->cell_step)
            for (int b = 0; b < blocks; b++)
                s[b] = _mm256_add_ps(s[b], _mm256_loadu_ps(cell + b * LANES));
    }
    for (int b = 0; b < blocks; b++)
        _mm256_storeu_ps(out + b * LANES, _mm256_div_ps(s[b], divisor));
}

/* Lane i on for i < count (1..7). */
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

/* What one pixel's pooling needs besides its window. */
typedef struct pixel_job {
    size_t channels;
    const float *in_end;  /* end of the call's input */
    const float *out_end; /* end of the call's output */
    __m256i tail;         /* lanes of the last block's channels */
    __m256 divisor;       /* avg only */
} pixel_job;

/* Whether the last block, starting at channel ch, may load and store all 8
 * lanes: its reads then stay inside the input and its writes inside the output. */
static inline int wide_tail_fits(const pixel_job *p, const window *w, const float *out)
{
    const float *last = w->corner + (size_t)(w->rows - 1) * w->row_step +
                        (size_t)(w->cols - 1) * w->cell_step;
    return last + LANES <= p->in_end && out + LANES <= p->out_end;
}

/* The channel blocks of one output pixel, w at channel 0, over rows x cols cells. */
static inline void pixel_max(const pixel_job *p, window w, int rows, int cols, float *out)
{
    const float *base = w.corner;
    const size_t c = p->channels;
    size_t ch = 0;
    for (; ch + MAX_BLOCKS * LANES <= c; ch += MAX_BLOCKS * LANES) {
        w.corner = base + ch;
        window_max_blocks(&w, rows, cols, out + ch, MAX_BLOCKS);
    }
    for (; ch + LANES <= c; ch += LANES) {
        w.corner = base + ch;
        window_max_blocks(&w, rows, cols, out + ch, 1);
    }
    if (ch < c) {
        w.corner = base + ch;
        if (wide_tail_fits(p, &w, out + ch))
            window_max_blocks(&w, rows, cols, out + ch, 1);
        else
            window_max_masked(&w, out + ch, p->tail);
    }
}

static inline void pixel_avg(const pixel_job *p, window w, int rows, int cols, float *out)
{
    const float *base = w.corner;
    const size_t c = p->channels;
    size_t ch = 0;
    for (; ch + MAX_BLOCKS * LANES <= c; ch += MAX_BLOCKS * LANES) {
        w.corner = base + ch;
        window_avg_blocks(&w, rows, cols, out + ch, MAX_BLOCKS, p->divisor);
    }
    for (; ch + LANES <= c; ch += LANES) {
        w.corner = base + ch;
        window_avg_blocks(&w, rows, cols, out + ch, 1, p->divisor);
    }
    if (ch < c) {
        w.corner = base + ch;
        if (wide_tail_fits(p, &w, out + ch))
            window_avg_blocks(&w, rows, cols, out + ch, 1, p->divisor);
        else
            window_avg_masked(&w, out + ch, p->tail, p->divisor);
    }
}

/* Output columns [*lo, *hi) whose windows lie wholly inside the image's width. */
static void inner_columns(const cnn_pool_geometry *g, int *lo, int *hi)
{
    int first = (g->pad_w + g->stride_w - 1) / g->stride_w;
    int last = g->in_w + g->pad_w - g->window_w < 0
                   ? -1
                   : (g->in_w + g->pad_w - g->window_w) / g->stride_w;
    *lo = first < g->out_w ? first : g->out_w;
    *hi = last + 1 < g->out_w ? last + 1 : g->out_w;
    if (*hi < *lo)
        *hi = *lo;
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

static pixel_job job_for(const cnn_pool_geometry *g, const float *in, const float *out,
                         int batch)
{
    const size_t c = (size_t)g->channels;
    pixel_job p;
    p.channels = c;
    p.in_end = in + (size_t)batch * (size_t)g->in_h * (size_t)g->in_w * c;
    p.out_end = out + (size_t)batch * (size_t)g->out_h * (size_t)g->out_w * c;
    p.tail = tail_mask(c % LANES ? c % LANES : LANES);
    p.divisor = _mm256_set1_ps(1.0f);
    return p;
}

/* One output pixel through window_at (any clipping). */
static inline void clipped_pixel(const cnn_pool_geometry *g, pixel_job *p, const float *img,
                                 int oy, int ox, float *out, int avg, int count_pad)
{
    int y0, y1, x0, x1;
    window w = window_at(g, img, oy, ox, &y0, &y1, &x0, &x1);
    if (avg) {
        p->divisor = _mm256_set1_ps(cnn__pool_avg_divisor(g, count_pad, y0, y1, x0, x1));
        pixel_avg(p, w, w.rows, w.cols, out);
    } else {
        pixel_max(p, w, w.rows, w.cols, out);
    }
}

/* n pixels from window w on, `step` floats apart, over rows x cols cells (a
 * constant at the 2x2 call). `plain`: fewer than 8 channels and even the last
 * pixel's plain block fits, so every pixel is one plain block, no checks. */
static inline void run_pixels(pixel_job *p, window w, int rows, int cols, int n, size_t step,
                              float *out, int avg, int plain)
{
    const size_t c = p->channels;
    if (plain && avg)
        for (int i = 0; i < n; i++, w.corner += step, out += c)
            window_avg_blocks(&w, rows, cols, out, 1, p->divisor);
    else if (plain)
        for (int i = 0; i < n; i++, w.corner += step, out += c)
            window_max_blocks(&w, rows, cols, out, 1);
    else if (avg)
        for (int i = 0; i < n; i++, w.corner += step, out += c)
            pixel_avg(p, w, rows, cols, out);
    else
        for (int i = 0; i < n; i++, w.corner += step, out += c)
            pixel_max(p, w, rows, cols, out);
}

/* Output columns [lo, hi) of row oy, whose windows are whole in width: one
 * window walked along the row, the same rows clipped for all (so one avg
 * divisor), and full 2x2 windows unrolled. Checking once per row whether the
 * last pixel's plain block fits took LeNet's 28x28x6 pool of 64 images from
 * 37 to 30 us. */
static inline void inner_pixels(const cnn_pool_geometry *g, pixel_job *p, const float *img,
                                int oy, int lo, int hi, float *out, int avg, int count_pad)
{
    const size_t step = (size_t)g->stride_w * p->channels;
    const int n = hi - lo;
    int y0, y1, x0, x1;
    window w = window_at(g, img, oy, lo, &y0, &y1, &x0, &x1);
    if (avg)
        p->divisor = _mm256_set1_ps(cnn__pool_avg_divisor(g, count_pad, y0, y1, x0, x1));
    window last = w;
    last.corner += (size_t)(n - 1) * step;
    const int plain = p->channels < LANES &&
                      wide_tail_fits(p, &last, out + (size_t)(n - 1) * p->channels);
    if (w.rows == 2 && w.cols == 2)
        run_pixels(p, w, 2, 2, n, step, out, avg, plain);
    else
        run_pixels(p, w, w.rows, w.cols, n, step, out, avg, plain);
}

/* Every output pixel, in output order (each pixel's wide last block may spill
 * into the next pixel, which is written after it). `avg` is a constant at
 * both calls, so each gets its own loop. */
static inline void pool_loop(const cnn_pool_geometry *g, const float *in, float *out, int batch,
                             int avg, int count_pad)
{
    pixel_job p = job_for(g, in, out, batch);
    const size_t c = (size_t)g->channels;
    const size_t in_image = (size_t)g->in_h * (size_t)g->in_w * c;
    int lo, hi;
    inner_columns(g, &lo, &hi);
    for (int n = 0; n < batch; n++) {
        const float *img = in + (size_t)n * in_image;
        for (int oy = 0; oy < g->out_h; oy++) {
            int ox = 0;
            for (; ox < lo; ox++, out += c)
                clipped_pixel(g, &p, img, oy, ox, out, avg, count_pad);
            if (lo < hi) {
                inner_pixels(g, &p, img, oy, lo, hi, out, avg, count_pad);
                out += (size_t)(hi - lo) * c;
                ox = hi;
            }
            for (; ox < g->out_w; ox++, out += c)
                clipped_pixel(g, &p, img, oy, ox, out, avg, count_pad);
        }
    }
}

static void pool_max_avx2(const cnn_pool_geometry *g, const float *in, float *out, int batch)
{
    pool_loop(g, in, out, batch, 0, 0);
}

static void pool_avg_avx2(const cnn_pool_geometry *g, const float *in, float *out, int batch,
                          int count_pad)
{
    pool_loop(g, in, out, batch, 1, count_pad);
}

const cnn_pool_kernels cnn__pool_avx2_loops = { pool_max_avx2, pool_avg_avx2 };
