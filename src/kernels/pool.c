#include "pool.h"

/* The window of output (oy, ox) clipped to the image: rows [*y0, *y1), cols [*x0, *x1). */
static void clip_window(const cnn_pool_geometry *g, int oy, int ox, int *y0, int *y1, int *x0,
                        int *x1)
{
    int ys = oy * g->stride_h - g->pad_h, xs = ox * g->stride_w - g->pad_w;
    *y0 = ys < 0 ? 0 : ys;
    *x0 = xs < 0 ? 0 : xs;
    *y1 = ys + g->window_h > g->in_h ? g->in_h : ys + g->window_h;
    *x1 = xs + g->window_w > g->in_w ? g->in_w : xs + g->window_w;
}

void cnn__pool_max(const cnn_pool_geometry *g, const float *in, float *out, int batch)
{
    const size_t c = (size_t)g->channels;
    const size_t in_image = (size_t)g->in_h * (size_t)g->in_w * c;
    for (int n = 0; n < batch; n++) {
        const float *img = in + (size_t)n * in_image;
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++, out += c) {
                int y0, y1, x0, x1;
                clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
                const float *first = img + ((size_t)y0 * (size_t)g->in_w + (size_t)x0) * c;
                for (size_t ch = 0; ch < c; ch++)
                    out[ch] = first[ch];
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        const float *cell = img + ((size_t)y * (size_t)g->in_w + (size_t)x) * c;
                        /* `v > m || v != v` keeps NaN once seen and takes a new NaN. */
                        for (size_t ch = 0; ch < c; ch++)
                            if (cell[ch] > out[ch] || cell[ch] != cell[ch])
                                out[ch] = cell[ch];
                    }
            }
    }
}

void cnn__pool_avg(const cnn_pool_geometry *g, const float *in, float *out, int batch,
                   int count_pad)
{
    const size_t c = (size_t)g->channels;
    const size_t in_image = (size_t)g->in_h * (size_t)g->in_w * c;
    for (int n = 0; n < batch; n++) {
        const float *img = in + (size_t)n * in_image;
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++, out += c) {
                int y0, y1, x0, x1;
                clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
                for (size_t ch = 0; ch < c; ch++)
                    out[ch] = 0.0f;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        const float *cell = img + ((size_t)y * (size_t)g->in_w + (size_t)x) * c;
                        for (size_t ch = 0; ch < c; ch++)
                            out[ch] += cell[ch];
                    }
                /* Floor-mode windows never leave the padded image, so the whole
                 * window is window_h * window_w cells. */
                int cells = count_pad ? g->window_h * g->window_w : (y1 - y0) * (x1 - x0);
                float divisor = (float)cells;
                for (size_t ch = 0; ch < c; ch++)
                    out[ch] /= divisor;
            }
    }
}
