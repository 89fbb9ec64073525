#include "reference.h"

#include <math.h>

int ref_out_size(int size, int pad, int kernel, int stride)
{
    return (size + 2 * pad - kernel) / stride + 1;
}

size_t ref_elems(ref_shape s)
{
    return (size_t)s.n * (size_t)s.h * (size_t)s.w * (size_t)s.c;
}

ref_shape ref_window_shape(ref_shape s, ref_window win, int filters)
{
    ref_shape o = { s.n, ref_out_size(s.h, win.ph, win.kh, win.sh),
                    ref_out_size(s.w, win.pw, win.kw, win.sw), filters };
    return o;
}

void ref_widen(const float *x, double *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = (double)x[i];
}

/* Index of element (b, y, x, ch) of an NHWC tensor of shape s. */
static size_t at(ref_shape s, int b, int y, int x, int ch)
{
    return (((size_t)b * (size_t)s.h + (size_t)y) * (size_t)s.w + (size_t)x) * (size_t)s.c +
           (size_t)ch;
}

static int inside(ref_shape s, int y, int x)
{
    return y >= 0 && y < s.h && x >= 0 && x < s.w;
}

void ref_conv(const double *in, ref_shape s, const float *weights, const float *bias,
              int filters, ref_window win, double *out)
{
    ref_shape o = ref_window_shape(s, win, filters);
    for (int b = 0; b < o.n; b++)
        for (int oy = 0; oy < o.h; oy++)
            for (int ox = 0; ox < o.w; ox++)
                for (int f = 0; f < filters; f++) {
                    double sum = bias ? (double)bias[f] : 0.0;
                    for (int ky = 0; ky < win.kh; ky++)
                        for (int kx = 0; kx < win.kw; kx++) {
                            int y = oy * win.sh - win.ph + ky, x = ox * win.sw - win.pw + kx;
                            if (!inside(s, y, x))
                                continue; /* a zero of the padding */
                            for (int ch = 0; ch < s.c; ch++) {
                                size_t wi = (((size_t)f * (size_t)win.kh + (size_t)ky) *
                                                 (size_t)win.kw + (size_t)kx) * (size_t)s.c +
                                            (size_t)ch;
                                sum += (double)weights[wi] * in[at(s, b, y, x, ch)];
                            }
                        }
                    out[at(o, b, oy, ox, f)] = sum;
                }
}

/* Shared walk of both poolings; `max` selects the operator. */
static void pool(const double *in, ref_shape s, ref_window win, int max, int count_pad,
                 double *out)
{
    ref_shape o = ref_window_shape(s, win, s.c);
    for (int b = 0; b < o.n; b++)
        for (int oy = 0; oy < o.h; oy++)
            for (int ox = 0; ox < o.w; ox++)
                for (int ch = 0; ch < s.c; ch++) {
                    double best = -INFINITY, sum = 0.0;
                    int cells = 0;
                    for (int ky = 0; ky < win.kh; ky++)
                        for (int kx = 0; kx < win.kw; kx++) {
                            int y = oy * win.sh - win.ph + ky, x = ox * win.sw - win.pw + kx;
                            if (!inside(s, y, x))
                                continue;
                            double v = in[at(s, b, y, x, ch)];
                            if (v > best)
                                best = v;
                            sum += v;
                            cells++;
                        }
                    double divisor = count_pad ? (double)(win.kh * win.kw) : (double)cells;
                    out[at(o, b, oy, ox, ch)] = max ? best : sum / divisor;
                }
}

void ref_max_pool(const double *in, ref_shape s, ref_window win, double *out)
{
    pool(in, s, win, 1, 0, out);
}

void ref_avg_pool(const double *in, ref_shape s, ref_window win, int count_pad, double *out)
{
    pool(in, s, win, 0, count_pad, out);
}

void ref_relu(const double *in, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] > 0.0 ? in[i] : 0.0;
}

void ref_leaky_relu(const double *in, size_t n, double slope, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] >= 0.0 ? in[i] : slope * in[i];
}

void ref_sigmoid(const double *in, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = 1.0 / (1.0 + exp(-in[i]));
}

void ref_tanh(const double *in, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = tanh(in[i]);
}

void ref_dense(const double *in, int batch, int inputs, const float *weights,
               const float *bias, int units, double *out)
{
    for (int b = 0; b < batch; b++)
        for (int u = 0; u < units; u++) {
            double sum = bias ? (double)bias[u] : 0.0;
            for (int i = 0; i < inputs; i++)
                sum += (double)weights[(size_t)u * (size_t)inputs + (size_t)i] *
                       in[(size_t)b * (size_t)inputs + (size_t)i];
            out[(size_t)b * (size_t)units + (size_t)u] = sum;
        }
}

void ref_softmax(const double *in, size_t pixels, int channels, double *out)
{
    const size_t c = (size_t)channels;
    for (size_t p = 0; p < pixels; p++) {
        const double *x = in + p * c;
        double *y = out + p * c;
        double max = x[0], sum = 0.0;
        for (size_t i = 1; i < c; i++)
            if (x[i] > max)
                max = x[i];
        for (size_t i = 0; i < c; i++) {
            y[i] = exp(x[i] - max);
            sum += y[i];
        }
        for (size_t i = 0; i < c; i++)
            y[i] /= sum;
    }
}

void ref_nhwc_to_nchw(const double *in, ref_shape s, double *out)
{
    size_t i = 0;
    for (int b = 0; b < s.n; b++)
        for (int ch = 0; ch < s.c; ch++)
            for (int y = 0; y < s.h; y++)
                for (int x = 0; x < s.w; x++)
                    out[i++] = in[at(s, b, y, x, ch)];
}

void ref_oihw_to_ohwi(const float *oihw, int filters, int kh, int kw, int in_c, float *ohwi)
{
    size_t i = 0;
    for (int o = 0; o < filters; o++)
        for (int ci = 0; ci < in_c; ci++)
            for (int y = 0; y < kh; y++)
                for (int x = 0; x < kw; x++) {
                    size_t dst = (((size_t)o * (size_t)kh + (size_t)y) * (size_t)kw +
                                  (size_t)x) * (size_t)in_c + (size_t)ci;
                    ohwi[dst] = oihw[i++];
                }
}
