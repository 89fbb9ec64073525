/* Convolution: im2col rows tiled to a bounded buffer, then one SGEMM per tile,
 * or, for layers with few input channels, a direct loop (kernels/conv_direct.h);
 * threads take contiguous ranges of output pixels, each with its own buffer. */
#include <string.h>

#include "../alloc.h"
#include "../checked.h"
#include "../kernels/conv_direct.h"
#include "../kernels/conv_narrow.h"
#include "../kernels/cpu.h"
#include "../kernels/gemm.h"
#include "../kernels/im2col.h"
#include "builder.h"
#include "epilogue.h"

/* Upper bound of the column buffer; larger layers are lowered tile by tile. */
#define CONV_COLUMN_BYTES ((size_t)4 << 20)

typedef struct conv_config {
    cnn_conv_geometry geo;
    int filters;
    int k; /* kernel_h * kernel_w * in_c: one GEMM row */
    int bias;
} conv_config;

static const conv_config *config_of(const cnn_layer *layer) { return layer->config; }
static uint64_t conv_flops(const cnn_layer *layer);

/* A 1x1, stride-1, unpadded convolution is already a GEMM on the NHWC input. */
static int is_pointwise(const conv_config *cfg)
{
    const cnn_conv_geometry *g = &cfg->geo;
    return g->kernel_h == 1 && g->kernel_w == 1 && g->stride_h == 1 && g->stride_w == 1 &&
           g->pad_h == 0 && g->pad_w == 0;
}

#define CONV_COLUMN_FLOATS (CONV_COLUMN_BYTES / sizeof(float))

/* Output pixels per tile: as many im2col rows as fit the column buffer. */
static size_t tile_rows(const conv_config *cfg)
{
    size_t rows = CONV_COLUMN_FLOATS / (size_t)cfg->k;
    return rows ? rows : 1;
}

/* Column floats one tile needs: whole rows, or one slice of a row too large
 * for the buffer. */
static size_t tile_floats(const conv_config *cfg, size_t m)
{
    size_t k = (size_t)cfg->k;
    if (k > CONV_COLUMN_FLOATS)
        return CONV_COLUMN_FLOATS;
    size_t rows = tile_rows(cfg);
    return (m < rows ? m : rows) * k;
}

/* ---- direct path ----------------------------------------------------------
 *
 * The direct loops (kernels/conv_direct.h) against im2col + OpenBLAS SGEMM,
 * measured at 1 thread on the development machine (AMD Zen 4, OpenBLAS 0.3.21
 * running its AVX-512 kernels; GFLOP/s, im2col -> direct with the AVX2 loop /
 * with the AVX-512 loop where cnn__conv_direct_layout takes it):
 * - few input channels (first measured with the unpanelled loop): 32x32x3 ->
 *   32 3x3 p1 41 -> 86, 28x28x1 -> 6 5x5 p2 7 -> 32, 32x32x16 -> 32 3x3 p1
 *   61 -> 106, 224x224x3 -> 64 7x7 s2 p3 66 -> 105; 56x56x64 -> 8 3x3 p1
 *   38 -> 77, 28x28x128 -> 3 3x3 p1 17 -> 29;
 * - wide layers (panels of 24 / 64 channels run over chunks of pixels, so each
 *   panel's weights stay in cache): 56x56x64 -> 64 3x3 p1 91 -> 111 / 114,
 *   28x28x128 -> 128 97 -> 110 / 113, 14x14x256 -> 256 99 -> 109 / 108 (and
 *   96 -> 112 / 112 at batch 8), 28x28x256 -> 256 99 -> 112 / 111,
 *   14x14x512 -> 128 (K = 4608: a panel outgrows L2, still) 95 -> 107 / 109,
 *   56x56x64 -> 128 3x3 s2 98 -> 108 / 110;
 * - 1x1 stride-1 unpadded layers, where the GEMM reads the input in place:
 *   56x56x16 -> 16 60 -> 75, 56x56x32 -> 32 79 -> 103, 28x28x256 -> 64
 *   98 -> 111 / 113, 28x28x512 -> 128 102 -> 109 / 114, 14x14x1024 -> 256
 *   92 -> 111 / 111; 1x1 stride 2: 56x56x256 -> 512 101 -> 109 / 111;
 * - weights too large to pack at once (over DIRECT_MAX_PACKED_FLOATS), packed
 *   a slot of panels at a time, each slot reading the input again:
 *   7x7x512 -> 512 3x3 p1 82 -> 94 (93 -> 106 at batch 8), 7x7x2048 -> 512
 *   1x1 63 -> 96, 7x7x512 -> 2048 1x1 84 -> 96, 14x14x256 -> 512 3x3 s2
 *   85 -> 95 (at 2 threads, before the loops' tail blocks: 131 -> 170,
 *   88 -> 182, 134 -> 181, 137 -> 180).
 * No measured shape was slower, so with the AVX2 loop (and the AVX-512 one)
 * every layer takes the direct path whose scratch fits the 4 MiB per thread
 * that im2col's column buffer also keeps to:
 * - one panel, K x 64 (AVX-512) or K x 24 (AVX2) floats, at most
 *   DIRECT_MAX_PACKED_FLOATS (K up to 15360 or 40960);
 * - padded layers: the padded input rows of one output row fit the band.
 * The portable loop (SSE2 on baseline x86-64) peaks near 35 GFLOP/s: with
 * CNN_FORCE_PORTABLE on an AVX2 machine, where OpenBLAS still runs its vector
 * kernels, it beats im2col only on the smallest layers (28x28x1 -> 6: 4 -> 16)
 * and is up to 2x slower on wider ones (32x32x16 -> 32: 72 -> 33), so without
 * AVX2 the direct path keeps its first rule: in_c <= 16 (<= 8 for 1x1
 * stride-1 unpadded layers) and packed weights at most 64K floats. That mode
 * exists for testing, and CPUs without AVX2 give OpenBLAS narrower vectors too.
 * The choice depends on the shape and the dispatch level only (both fixed for
 * the process), so a layer takes the same path on every run and thread count.
 *
 * Threads: by default they split the output pixels, and each streams all the
 * weights. When the weights outnumber the input floats more than twice and
 * the panels divide evenly, each of T threads instead takes 1/T of the panels
 * for every pixel and reads only those weights, at the price of reading (and,
 * when padded, copying) all the input. 2 threads, GFLOP/s by pixels -> by
 * panels (weights / input), measured when each thread still packed its
 * weights per call: 14x14x256 -> 256 3x3 p1 206 -> 217 (11.8), 14x14x512 ->
 * 128 203 -> 215 (5.9), 28x28x256 -> 256 222 -> 224 (2.9), 28x28x128 -> 128
 * 224 -> 219 (1.5), the same at batch 8 219 either way (1.5). Either way each
 * output is summed in the same order, so the split does not change a bit.
 *
 * The packed weights (all panels, or the narrow path's [k][cout] copy) are
 * made by the forward driver once per plan and again only when the weights
 * change (ops packed_floats / pack_weights); they were packed on every call
 * before, which cost 6-7% of a 14x14x256 -> 256 forward. */
#define DIRECT_PORTABLE_MAX_IN_C 16
#define DIRECT_PORTABLE_MAX_POINTWISE_IN_C 8
#define DIRECT_PORTABLE_MAX_PACKED_FLOATS ((size_t)64 << 10)
/* Zero-padded input rows copied per band of output rows (padded layers only). */
#define DIRECT_BAND_FLOATS ((size_t)64 << 10)
/* Packed weights and a band together fit 4 MiB (the bound from when the
 * weights were packed into the per-thread workspace; it still sets which
 * layers take the direct path, and the slots below). */
#define DIRECT_MAX_PACKED_FLOATS (((size_t)1 << 20) - DIRECT_BAND_FLOATS)
/* Output floats of one chunk of pixels, which runs through all of a thread's
 * panels before bias and activation run on it (while in L2). Pixel counts are
 * rounded to a multiple of 24, which every loop's block size divides; 16K to
 * 128K floats measured within noise of each other. */
#define DIRECT_CHUNK_FLOATS ((size_t)32 << 10)

static int is_padded(const conv_config *cfg) { return cfg->geo.pad_h || cfg->geo.pad_w; }

/* Panels a chunk of pixels runs through before the next slot of panels: all
 * of them, or as many as DIRECT_MAX_PACKED_FLOATS holds (at least one:
 * uses_direct checks). The bound came from packing a slot at a time into the
 * workspace; the packed weights now live in the plan, and the slots stay as
 * the loop order measured above. */
static int slot_panels(const conv_config *cfg, cnn_conv_direct_layout layout)
{
    const int panels = cnn__conv_direct_panels(layout, cfg->filters);
    size_t fit = DIRECT_MAX_PACKED_FLOATS / ((size_t)cfg->k * (size_t)layout.panel);
    return fit < (size_t)panels ? (int)fit : panels;
}

/* Floats of one padded input row: the columns the windows reach, in_c each. */
static size_t band_row_floats(const cnn_conv_geometry *g)
{
    return ((size_t)(g->out_w - 1) * (size_t)g->stride_w + (size_t)g->kernel_w) *
           (size_t)g->in_c;
}

/* Output rows per band: as many as DIRECT_BAND_FLOATS holds, at least one
 * (uses_direct checks that one fits), at most the image. */
static int band_rows(const cnn_conv_geometry *g)
{
    size_t in_rows = DIRECT_BAND_FLOATS / band_row_floats(g);
    size_t rows = in_rows > (size_t)g->kernel_h
                      ? (in_rows - (size_t)g->kernel_h) / (size_t)g->stride_h + 1
                      : 1;
    return rows < (size_t)g->out_h ? (int)rows : g->out_h;
}

static size_t band_floats(const cnn_conv_geometry *g)
{
    size_t in_rows = (size_t)(band_rows(g) - 1) * (size_t)g->stride_h + (size_t)g->kernel_h;
    return in_rows * band_row_floats(g);
}

static int uses_direct(const conv_config *cfg)
{
    const cnn_conv_geometry *g = &cfg->geo;
    size_t packed;
    if (cnn__cpu_use_avx2()) {
        /* One panel must fit; more are packed a slot of panels at a time. */
        if (!cnn__mul_size((size_t)cfg->k, (size_t)cnn__conv_direct_layout(cfg->filters).panel,
                           &packed) ||
            packed > DIRECT_MAX_PACKED_FLOATS)
            return 0;
    } else if (g->in_c > (is_pointwise(cfg) ? DIRECT_PORTABLE_MAX_POINTWISE_IN_C
                                            : DIRECT_PORTABLE_MAX_IN_C) ||
               !cnn__mul_size((size_t)cfg->k, cnn__conv_direct_cout_pad(cfg->filters), &packed) ||
               packed > DIRECT_PORTABLE_MAX_PACKED_FLOATS) {
        return 0;
    }
    if (!is_padded(cfg))
        return 1;
    /* The reached width is at most the padded width, an int (checked at build). */
    size_t width = (size_t)(g->out_w - 1) * (size_t)g->stride_w + (size_t)g->kernel_w;
    size_t row, one_band;
    return cnn__mul_size(width, (size_t)g->in_c, &row) &&
           cnn__mul_size(row, (size_t)g->kernel_h, &one_band) && one_band <= DIRECT_BAND_FLOATS;
}

/* ---- narrow path -----------------------------------------------------------
 *
 * Layers with few output channels and horizontal stride 1, with AVX2: output
 * pixels across the lanes (kernels/conv_narrow.h), from a planar copy of the
 * padded input rows, a band of output rows at a time. Against the AVX2
 * channel-lane loop at 1 thread (both packing weights per call then),
 * GFLOP/s, narrow / channel-lane (HxWxCin -> Cout kernel/pad/stride_h):
 * - up to 4 channels, where the channel-lane loop fills half its lanes or
 *   less, narrow is ahead or level everywhere: 28x28x1 -> 1 5/2 17.6 / 6.7,
 *   -> 2 3/1 16.9 / 8.6, 32x32x3 -> 3 3/1 30.0 / 21.8, 56x56x16 -> 4 3/1
 *   49.9 / 36.4, 28x28x128 -> 3 3/1 31.8 / 23.3, 56x56x32 -> 3 40.4 / 28.0,
 *   14x14x6 -> 4 31.0 / 29.9, 7x7x3 -> 3 at batch 8 16.1 / 16.3;
 * - 5 to 7 channels with at most 3 input channels (LeNet's first layer):
 *   28x28x1 -> 6 5/2 52.0 / 38.8 (70.8 / 39.8 at batch 8), 32x32x3 -> 6 5/0
 *   68.0 / 53.6, 224x224x3 -> 6 7/3 99.3 / 57.1, 28x28x1 -> 7 5/2 51.0 /
 *   46.1, 28x28x1 -> 6 5/2 stride_h 2 59.2 / 36.3, 56x56x3 -> 6 3/1 stride_h
 *   2 39.8 / 41.7;
 * - 5 to 7 channels with more input channels, the channel-lane loop is level
 *   or ahead (its 6-7 of 8 lanes cost less than the planar copy, a transposing
 *   scalar loop, and the narrow loop's row tails): 56x56x32 -> 6 58.2 / 57.7,
 *   56x56x64 -> 7 53.2 / 56.4, 28x28x16 -> 7 46.0 / 64.7, 14x14x6 -> 7 5/0
 *   29.1 / 44.4, 10x10x6 -> 6 31.6 / 40.9, so they keep it.
 * Both loops sum each output in the same order, so the choice does not change
 * a bit. */
#define NARROW_MAX_WIDE_COUT 4
#define NARROW_MAX_IN_C 3
/* Planar input rows copied per band; the band of one output row must fit. */
#define NARROW_BAND_FLOATS ((size_t)64 << 10)

/* Floats of one band row: in_c planes of the padded row. */
static size_t narrow_row_floats(const cnn_conv_geometry *g)
{
    return (size_t)g->in_c * cnn__conv_narrow_pitch(g);
}

static int uses_narrow(const conv_config *cfg)
{
    const cnn_conv_geometry *g = &cfg->geo;
    size_t one_band;
    return cfg->filters <= CNN_CONV_NARROW_MAX_COUT && g->stride_w == 1 &&
           (cfg->filters <= NARROW_MAX_WIDE_COUT || g->in_c <= NARROW_MAX_IN_C) &&
           cnn__conv_narrow_avx2() != NULL &&
           cnn__mul_size(narrow_row_floats(g), (size_t)g->kernel_h, &one_band) &&
           one_band <= NARROW_BAND_FLOATS;
}

/* Output rows per band: as many as NARROW_BAND_FLOATS holds, at most the image. */
static int narrow_band_rows(const cnn_conv_geometry *g)
{
    size_t in_rows = NARROW_BAND_FLOATS / narrow_row_floats(g);
    size_t rows = (in_rows - (size_t)g->kernel_h) / (size_t)g->stride_h + 1;
    return rows < (size_t)g->out_h ? (int)rows : g->out_h;
}

static size_t narrow_band_floats(const cnn_conv_geometry *g)
{
    size_t in_rows = (size_t)(narrow_band_rows(g) - 1) * (size_t)g->stride_h + (size_t)g->kernel_h;
    return in_rows * narrow_row_floats(g);
}

/* Channel groups the threads split the panels into (see above): `threads` or 1. */
static int direct_groups(const conv_config *cfg, cnn_conv_direct_layout layout, int batch,
                         int threads)
{
    const cnn_conv_geometry *g = &cfg->geo;
    const int panels = cnn__conv_direct_panels(layout, cfg->filters);
    if (threads < 2 || panels % threads != 0)
        return 1;
    /* Both products are below the sizes of buffers that exist (weights, input). */
    size_t weights = (size_t)cfg->k * (size_t)cfg->filters;
    size_t input = (size_t)batch * (size_t)g->in_h * (size_t)g->in_w * (size_t)g->in_c;
    return weights / 2 > input ? threads : 1;
}

static int conv_workspace(const cnn_layer *layer, int batch, size_t *floats)
{
    const conv_config *cfg = config_of(layer);
    size_t m;
    if (!cnn__mul3_size((size_t)batch, (size_t)cfg->geo.out_h, (size_t)cfg->geo.out_w, &m))
        return 0;
    if (uses_narrow(cfg)) {
        *floats = narrow_band_floats(&cfg->geo);
        return 1;
    }
    if (uses_direct(cfg)) {
        *floats = is_padded(cfg) ? band_floats(&cfg->geo) : 0;
        return 1;
    }
    if (is_pointwise(cfg)) {
        *floats = 0;
        return 1;
    }
    *floats = tile_floats(cfg, m);
    return 1;
}

typedef struct conv_job {
    const cnn_layer *layer;
    const float *in;
    float *out;
    const cnn_exec *exec;
    const cnn_layer *epilogue;
    /* Direct path: items are (channel group, output pixel), group-major. */
    size_t pixels;                 /* output pixels of the batch */
    int groups;                    /* channel groups (1: threads split pixels only) */
    cnn_conv_direct_layout layout; /* packed panels of the dispatched loop */
} conv_job;

/* Bias and the fused activation on rows just written, while they are in cache. */
static void finish_rows(const conv_job *job, float *rows_out, size_t rows)
{
    const conv_config *cfg = config_of(job->layer);
    cnn__epilogue_rows(rows_out, rows, cfg->filters, cfg->bias ? job->layer->params->bias : NULL,
                       job->epilogue);
}

/* finish_rows on channels [c0, c1) of each row only (the rest belong to
 * another thread's channel group). */
static void finish_channels(const conv_job *job, float *rows_out, size_t rows, int c0, int c1)
{
    const conv_config *cfg = config_of(job->layer);
    if (c0 == 0 && c1 == cfg->filters) {
        finish_rows(job, rows_out, rows);
        return;
    }
    const float *bias = cfg->bias ? job->layer->params->bias + c0 : NULL;
    for (size_t r = 0; r < rows; r++)
        cnn__epilogue_rows(rows_out + r * (size_t)cfg->filters + c0, 1, c1 - c0, bias,
                           job->epilogue);
}

/* A row too large for the column buffer: the GEMM accumulates over K slices. */
static void conv_row_sliced(const conv_job *job, size_t m, float *columns)
{
    const conv_config *cfg = config_of(job->layer);
    const float *weights = job->layer->params->weights;
    const size_t k = (size_t)cfg->k;
    float *c = job->out + m * (size_t)cfg->filters;
    for (size_t k0 = 0; k0 < k; k0 += CONV_COLUMN_FLOATS) {
        size_t k1 = k - k0 < CONV_COLUMN_FLOATS ? k : k0 + CONV_COLUMN_FLOATS;
        cnn__im2col_row_slice(&cfg->geo, job->in, m, k0, k1, columns);
        cnn__gemm_abt(1, cfg->filters, (int)(k1 - k0), columns, (int)(k1 - k0), weights + k0,
                      cfg->k, c, cfg->filters, k0 > 0);
    }
    finish_rows(job, c, 1);
}

/* Where the band of output pixels starting at pixel m (of the batch) ends:
 * rows_per_band rows of m's image on, the image's end, or `end`. */
static size_t band_stop(const cnn_conv_geometry *g, size_t m, size_t end, int rows_per_band)
{
    const size_t pixels = (size_t)g->out_h * (size_t)g->out_w;
    const int oy = (int)(m % pixels / (size_t)g->out_w);
    const int last = rows_per_band < g->out_h - oy ? oy + rows_per_band : g->out_h;
    const size_t stop = m / pixels * pixels + (size_t)last * (size_t)g->out_w;
    return end < stop ? end : stop;
}

/* Input rows of output rows [oy0, oy1] of one image, zero-padded and cut to
 * the columns the windows reach: row r is input row oy0 * stride - pad + r. */
static void fill_band(const cnn_conv_geometry *g, const float *img, int oy0, int oy1, float *band)
{
    const size_t c = (size_t)g->in_c, row_floats = band_row_floats(g);
    const int width = (int)(row_floats / c);
    const int left = g->pad_w < width ? g->pad_w : width;
    int inside = width - g->pad_w < g->in_w ? width - g->pad_w : g->in_w;
    inside = inside > 0 ? inside : 0;
    const size_t right = (size_t)(width - left - inside) * c;
    const int rows = (oy1 - oy0) * g->stride_h + g->kernel_h;
    for (int r = 0; r < rows; r++) {
        float *dst = band + (size_t)r * row_floats;
        int y = oy0 * g->stride_h - g->pad_h + r;
        if (y < 0 || y >= g->in_h || inside == 0) {
            memset(dst, 0, row_floats * sizeof(float));
            continue;
        }
        memset(dst, 0, (size_t)left * c * sizeof(float));
        memcpy(dst + (size_t)left * c, img + (size_t)y * (size_t)g->in_w * c,
               (size_t)inside * c * sizeof(float));
        memset(dst + (size_t)(left + inside) * c, 0, right * sizeof(float));
    }
}

/* Output pixels [begin, end) of panels [from, to), all of which fit the packed
 * area at once, band by band of output rows (the whole image when unpadded:
 * the loop then reads the input in place), chunk by chunk of pixels: each
 * chunk runs through the panels while their weights stay in cache. `finish`:
 * these are the last panels of channels [c0, c1), whose bias and activation
 * then run on each chunk. */
static void direct_panels(const conv_job *job, int from, int to, size_t begin, size_t end,
                          int c0, int c1, int finish, float *workspace)
{
    const conv_config *cfg = config_of(job->layer);
    const cnn_conv_geometry *g = &cfg->geo;
    const size_t c = (size_t)g->in_c, cout = (size_t)cfg->filters;
    const size_t pixels = (size_t)g->out_h * (size_t)g->out_w;
    const size_t image_floats = (size_t)g->in_h * (size_t)g->in_w * c;
    const int padded = is_padded(cfg);
    const int rows_per_band = padded ? band_rows(g) : g->out_h;
    size_t chunk = DIRECT_CHUNK_FLOATS / (size_t)(c1 - c0) / 24 * 24;
    chunk = chunk ? chunk : 24;
    float *band = workspace;
    cnn_conv_direct_task t = { job->layer->packed, 0, job->layout, cfg->filters, g->kernel_h,
                               g->kernel_w * g->in_c, NULL, 0, 0, (size_t)g->stride_w * c,
                               g->out_w };
    t.row_stride = padded ? band_row_floats(g) : (size_t)g->in_w * c;
    t.y_step = (size_t)g->stride_h * t.row_stride;
    for (size_t m = begin; m < end;) {
        const size_t image = m / pixels;
        const int oy = (int)(m % pixels / (size_t)g->out_w);
        const size_t stop = band_stop(g, m, end, rows_per_band);
        const float *img = job->in + image * image_floats;
        int first_row = 0;
        t.src = img;
        if (padded) {
            int last_row = (int)((stop - 1) % pixels / (size_t)g->out_w);
            fill_band(g, img, oy, last_row, band);
            t.src = band;
            first_row = oy;
        }
        for (; m < stop; m += chunk) {
            size_t n = stop - m < chunk ? stop - m : chunk, pixel = m % pixels;
            float *out = job->out + m * cout;
            const int cy = (int)(pixel / (size_t)g->out_w) - first_row;
            const int cx = (int)(pixel % (size_t)g->out_w);
            cnn__conv_direct(&t, cy, cx, n, from, to, out);
            if (finish)
                finish_channels(job, out, n, c0, c1);
        }
        m = stop;
    }
}

/* Output pixels [begin, end) of channel group `group`, a slot of panels at a
 * time when they do not all fit the packed area (each slot reads the input
 * again; the last one finishes the rows). */
static void direct_segment(const conv_job *job, int group, size_t begin, size_t end,
                           float *workspace)
{
    const conv_config *cfg = config_of(job->layer);
    const int per_group = cnn__conv_direct_panels(job->layout, cfg->filters) / job->groups;
    const int first = group * per_group, last = first + per_group;
    const int slot = slot_panels(cfg, job->layout);
    const int c0 = first * job->layout.panel;
    const int c1 = last * job->layout.panel < cfg->filters ? last * job->layout.panel : cfg->filters;
    for (int from = first; from < last; from += slot) {
        const int to = last - from < slot ? last : from + slot;
        direct_panels(job, from, to, begin, end, c0, c1, to == last, workspace);
    }
}

/* Items [begin, end) of the direct path: (group, pixel) pairs, group-major. */
static void conv_rows_direct(const conv_job *job, size_t begin, size_t end, float *workspace)
{
    for (size_t item = begin; item < end;) {
        const size_t group = item / job->pixels, group_end = (group + 1) * job->pixels;
        const size_t stop = end < group_end ? end : group_end;
        direct_segment(job, (int)group, item - group * job->pixels, stop - group * job->pixels,
                       workspace);
        item = stop;
    }
}

/* Output pixels [begin, end) of the narrow path, band by band of output rows;
 * bias and activation run on each band while it is in cache. */
static void conv_rows_narrow(const conv_job *job, size_t begin, size_t end, float *workspace)
{
    const conv_config *cfg = config_of(job->layer);
    const cnn_conv_geometry *g = &cfg->geo;
    const size_t pixels = (size_t)g->out_h * (size_t)g->out_w, cout = (size_t)cfg->filters;
    const size_t image_floats = (size_t)g->in_h * (size_t)g->in_w * (size_t)g->in_c;
    const int rows_per_band = narrow_band_rows(g);
    const cnn_conv_narrow_fn row_fn = cnn__conv_narrow_avx2();
    float *band = workspace;
    cnn_conv_narrow_task t = { NULL, NULL, 0, cfg->filters, g->in_c, band,
                               cnn__conv_narrow_pitch(g) };
    cnn__conv_narrow_view(g, cfg->filters, job->layer->packed, &t);
    for (size_t m = begin; m < end;) {
        const size_t image = m / pixels;
        const int oy = (int)(m % pixels / (size_t)g->out_w);
        const size_t stop = band_stop(g, m, end, rows_per_band);
        const int last_oy = (int)((stop - 1) % pixels / (size_t)g->out_w);
        cnn__conv_narrow_fill_band(g, job->in + image * image_floats, oy * g->stride_h - g->pad_h,
                                   (last_oy - oy) * g->stride_h + g->kernel_h, t.pitch, band);
        for (size_t at = m; at < stop;) {
            const size_t pixel = at % pixels;
            const int cy = (int)(pixel / (size_t)g->out_w), cx = (int)(pixel % (size_t)g->out_w);
            const size_t row_end = at - (size_t)cx + (size_t)g->out_w;
            const size_t n = (stop < row_end ? stop : row_end) - at;
            row_fn(&t, (cy - oy) * g->stride_h, cx, (int)n, job->out + at * cout);
            at += n;
        }
        finish_rows(job, job->out + m * cout, stop - m);
        m = stop;
    }
}

/* Output rows [begin, end) of the GEMM, one bounded tile at a time. */
static void conv_rows(void *raw, size_t begin, size_t end, int thread)
{
    const conv_job *job = raw;
    const conv_config *cfg = config_of(job->layer);
    const float *weights = job->layer->params->weights;
    const int cout = cfg->filters, k = cfg->k;
    const int pointwise = is_pointwise(cfg);
    float *columns = cnn__exec_workspace(job->exec, thread);
    if (uses_narrow(cfg)) {
        conv_rows_narrow(job, begin, end, columns);
        return;
    }
    if (uses_direct(cfg)) {
        conv_rows_direct(job, begin, end, columns);
        return;
    }
    if (!pointwise && (size_t)k > CONV_COLUMN_FLOATS) {
        for (size_t m = begin; m < end; m++)
            conv_row_sliced(job, m, columns);
        return;
    }
    size_t rows = tile_rows(cfg);
    for (size_t first = begin; first < end; first += rows) {
        size_t count = end - first < rows ? end - first : rows;
        const float *a = job->in + first * (size_t)k;
        if (!pointwise) {
            cnn__im2col_rows(&cfg->geo, job->in, first, count, columns);
            a = columns;
        }
        float *c = job->out + first * (size_t)cout;
        cnn__gemm_abt(count, cout, k, a, k, weights, k, c, cout, 0);
        finish_rows(job, c, count);
    }
}

static void conv_forward(const cnn_layer *layer, const float *in, float *out, int batch,
                         const cnn_exec *exec, const cnn_layer *epilogue)
{
    const conv_config *cfg = config_of(layer);
    size_t m = (size_t)batch * (size_t)cfg->geo.out_h * (size_t)cfg->geo.out_w;
    conv_job job = { layer, in, out, exec, epilogue, m, 1, { 0, 0 } };
    uint64_t work = conv_flops(layer) * (uint64_t)batch;
    size_t items = m;
    if (!uses_narrow(cfg) && uses_direct(cfg)) {
        job.layout = cnn__conv_direct_layout(cfg->filters);
        job.groups = direct_groups(cfg, job.layout, batch, cnn__parallel_threads(exec, m, work));
        items = m * (size_t)job.groups; /* no overflow: groups <= threads <= 1024 and m * cout fits */
    }
    cnn__parallel_for(exec, items, work, conv_rows, &job);
}

/* The packed weights the layer's path reads (none for im2col + SGEMM, which
 * reads the OHWI weights as they are). */
static size_t conv_packed_floats(const cnn_layer *layer)
{
    const conv_config *cfg = config_of(layer);
    if (uses_narrow(cfg))
        return cnn__conv_narrow_packed_floats(&cfg->geo, cfg->filters);
    if (uses_direct(cfg))
        return (size_t)cfg->k * cnn__conv_direct_cout_pad(cfg->filters);
    return 0;
}

static void conv_pack_weights(const cnn_layer *layer, float *packed)
{
    const conv_config *cfg = config_of(layer);
    const float *weights = layer->params->weights;
    if (uses_narrow(cfg)) {
        cnn__conv_narrow_pack(&cfg->geo, weights, cfg->filters,
                              cnn__conv_narrow_pitch(&cfg->geo), packed);
        return;
    }
    const cnn_conv_direct_layout layout = cnn__conv_direct_layout(cfg->filters);
    cnn__conv_direct_pack(weights, (size_t)cfg->k, cfg->filters, layout, 0,
                          cnn__conv_direct_panels(layout, cfg->filters), packed);
}

static uint64_t conv_flops(const cnn_layer *layer)
{
    const conv_config *cfg = config_of(layer);
    uint64_t outputs = (uint64_t)layer->out.h * (uint64_t)layer->out.w * (uint64_t)layer->out.c;
    return outputs * (2u * (uint64_t)cfg->k + (cfg->bias ? 1u : 0u));
}

static void conv_window(const cnn_layer *layer, int *kh, int *kw, int *sh, int *sw)
{
    const cnn_conv_geometry *g = &config_of(layer)->geo;
    *kh = g->kernel_h;
    *kw = g->kernel_w;
    *sh = g->stride_h;
    *sw = g->stride_w;
}

/* OIHW (PyTorch) <-> OHWI (native); index (o, y, x, i). */
static void convert_weights(const cnn_layer *layer, const float *src, float *dst, int to_native)
{
    const cnn_conv_geometry *g = &config_of(layer)->geo;
    const size_t kh = (size_t)g->kernel_h, kw = (size_t)g->kernel_w, ci = (size_t)g->in_c;
    for (size_t o = 0; o < (size_t)config_of(layer)->filters; o++)
        for (size_t y = 0; y < kh; y++)
            for (size_t x = 0; x < kw; x++)
                for (size_t i = 0; i < ci; i++) {
                    size_t ohwi = ((o * kh + y) * kw + x) * ci + i;
                    size_t oihw = ((o * ci + i) * kh + y) * kw + x;
                    if (to_native)
                        dst[ohwi] = src[oihw];
                    else
                        dst[oihw] = src[ohwi];
                }
}

static void conv_from_pytorch(const cnn_layer *layer, const float *src, float *dst)
{
    convert_weights(layer, src, dst, 1);
}

static void conv_to_pytorch(const cnn_layer *layer, const float *src, float *dst)
{
    convert_weights(layer, src, dst, 0);
}

static void conv_fans(const cnn_layer *layer, double *fan_in, double *fan_out)
{
    const conv_config *cfg = config_of(layer);
    double area = (double)cfg->geo.kernel_h * cfg->geo.kernel_w;
    *fan_in = area * cfg->geo.in_c;
    *fan_out = area * cfg->filters;
}

const cnn_layer_ops cnn__conv_ops = {
    .kind = CNN_LAYER_CONV,
    .name = "conv",
    .flops = conv_flops,
    .window = conv_window,
    .workspace_floats = conv_workspace,
    .forward = conv_forward,
    .fuses_epilogue = 1,
    .weights_from_pytorch = conv_from_pytorch,
    .weights_to_pytorch = conv_to_pytorch,
    .fans = conv_fans,
    .packed_floats = conv_packed_floats,
    .pack_weights = conv_pack_weights,
};

void cnn_conv_desc_init(cnn_conv_desc *desc)
{
    if (desc)
        *desc = (cnn_conv_desc)CNN_CONV_DESC_INIT;
}

static cnn_status check_conv(const cnn_net *net, const cnn_conv_desc *d, cnn_shape in,
                             conv_config *cfg, cnn_layer_spec *spec)
{
    const int at = cnn__net_layer_count(net);
#define CONV_FAIL(st, ...) cnn__layer_fail(net, at, "conv", st, __VA_ARGS__)
    if (d->filters <= 0)
        return CONV_FAIL(CNN_E_INVALID_ARG, "filters is %d; it must be at least 1", d->filters);
    if (d->kernel_h <= 0 || d->kernel_w <= 0)
        return CONV_FAIL(CNN_E_INVALID_ARG, "kernel %dx%d must be positive", d->kernel_h,
                         d->kernel_w);
    if (d->stride_h < 1 || d->stride_w < 1)
        return CONV_FAIL(CNN_E_INVALID_ARG, "stride %dx%d must be at least 1", d->stride_h,
                         d->stride_w);
    if (d->pad_h < 0 || d->pad_w < 0)
        return CONV_FAIL(CNN_E_INVALID_ARG, "padding %dx%d must not be negative", d->pad_h,
                         d->pad_w);
    long long padded_h = (long long)in.h + 2LL * d->pad_h, padded_w = (long long)in.w + 2LL * d->pad_w;
    if (d->kernel_h > padded_h || d->kernel_w > padded_w)
        return CONV_FAIL(CNN_E_SHAPE, "%dx%d kernel is larger than the %lldx%lld padded input",
                         d->kernel_h, d->kernel_w, padded_h, padded_w);
    if (padded_h > 0x7fffffff || padded_w > 0x7fffffff)
        return CONV_FAIL(CNN_E_OVERFLOW, "padded input %lldx%lld does not fit an int", padded_h,
                         padded_w);
    size_t k, weights, out_elems;
    int oh = cnn__window_out(in.h, d->pad_h, d->kernel_h, d->stride_h);
    int ow = cnn__window_out(in.w, d->pad_w, d->kernel_w, d->stride_w);
    if (!cnn__mul3_size((size_t)d->kernel_h, (size_t)d->kernel_w, (size_t)in.c, &k) ||
        !cnn__fits_int(k))
        return CONV_FAIL(CNN_E_OVERFLOW, "kernel %dx%dx%d has more than INT_MAX elements",
                         d->kernel_h, d->kernel_w, in.c);
    if (!cnn__mul_size(k, (size_t)d->filters, &weights) ||
        !cnn__mul_size(weights, sizeof(float), &weights) || !cnn__fits_object(weights))
        return CONV_FAIL(CNN_E_OVERFLOW, "%d kernels of %zu weights exceed the largest object",
                         d->filters, k);
    if (!cnn__mul3_size((size_t)oh, (size_t)ow, (size_t)d->filters, &out_elems) ||
        !cnn__fits_int(out_elems))
        return CONV_FAIL(CNN_E_OVERFLOW, "output %dx%dx%d has more than INT_MAX elements", oh, ow,
                         d->filters);
#undef CONV_FAIL
    cfg->geo = (cnn_conv_geometry){ in.h, in.w, in.c, oh, ow, d->kernel_h, d->kernel_w,
                                    d->stride_h, d->stride_w, d->pad_h, d->pad_w };
    cfg->filters = d->filters;
    cfg->k = (int)k;
    cfg->bias = d->bias != 0;
    spec->ops = &cnn__conv_ops;
    spec->out = (cnn_shape){ oh, ow, d->filters };
    spec->config = cfg;
    spec->config_size = sizeof *cfg;
    spec->n_weights = k * (size_t)d->filters;
    spec->n_bias = cfg->bias ? (size_t)d->filters : 0;
    return CNN_OK;
}

cnn_status cnn_layer_add_conv(cnn_net *net, const cnn_conv_desc *desc, int *index)
{
    cnn_status st = cnn__builder_net(net, "cnn_layer_add_conv");
    if (st == CNN_OK)
        st = cnn__builder_desc(net, desc, desc ? desc->struct_size : 0, sizeof(cnn_conv_desc),
                               "conv");
    if (st != CNN_OK)
        return st;
    conv_config cfg;
    cnn_layer_spec spec;
    st = check_conv(net, desc, cnn__net_tail_shape(net), &cfg, &spec);
    return st == CNN_OK ? cnn__net_append(net, &spec, index) : st;
}
