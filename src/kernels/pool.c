#include "pool.h"

#include "cpu.h"

static void pool_max_portable(const cnn_pool_geometry *g, const float *in, float *out, int batch)
{
    const size_t c = (size_t)g->channels;
    const size_t in_image = (size_t)g->in_h * (size_t)g->in_w * c;
    for (int n = 0; n < batch; n++) {
        const float *img = in + (size_t)n * in_image;
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++, out += c) {
                int y0, y1, x0, x1;
                cnn__pool_clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
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

static void pool_avg_portable(const cnn_pool_geometry *g, const float *in, float *out, int batch,
                              int count_pad)
{
    const size_t c = (size_t)g->channels;
    const size_t in_image = (size_t)g->in_h * (size_t)g->in_w * c;
    for (int n = 0; n < batch; n++) {
        const float *img = in + (size_t)n * in_image;
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++, out += c) {
                int y0, y1, x0, x1;
                cnn__pool_clip_window(g, oy, ox, &y0, &y1, &x0, &x1);
                for (size_t ch = 0; ch < c; ch++)
                    out[ch] = 0.0f;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        const float *cell = img + ((size_t)y * (size_t)g->in_w + (size_t)x) * c;
                        for (size_t ch = 0; ch < c; ch++)
                            out[ch] += cell[ch];
                    }
                float divisor = cnn__pool_avg_divisor(g, count_pad, y0, y1, x0, x1);
                for (size_t ch = 0; ch < c; ch++)
                    out[ch] /= divisor;
            }
    }
}

const cnn_pool_kernels cnn__pool_portable = { pool_max_portable, pool_avg_portable };

const cnn_pool_kernels *cnn__pool_avx2(void)
{
#ifdef CNN_HAVE_AVX2_KERNELS
    if (cnn__cpu_has_avx2_fma())
        return &cnn__pool_avx2_loops;
#endif
    return NULL;
}

static const cnn_pool_kernels *active(void)
{
#ifdef CNN_HAVE_AVX2_KERNELS
    if (cnn__cpu_use_avx2())
        return &cnn__pool_avx2_loops;
#endif
    return &cnn__pool_portable;
}

void cnn__pool_max(const cnn_pool_geometry *g, const float *in, float *out, int batch)
{
    active()->max(g, in, out, batch);
}

void cnn__pool_avg(const cnn_pool_geometry *g, const float *in, float *out, int batch,
                   int count_pad)
{
    active()->avg(g, in, out, batch, count_pad);
}
