/* Max and average pooling layers. */
#include "../checked.h"
#include "../kernels/pool.h"
#include "builder.h"

typedef struct pool_config {
    cnn_pool_geometry geo;
    cnn_pool_kind kind;
    int count_pad;
} pool_config;

static const pool_config *config_of(const cnn_layer *layer) { return layer->config; }

typedef struct pool_job {
    const pool_config *cfg;
    const float *in;
    float *out;
    size_t in_image, out_image; /* floats per image */
} pool_job;

static void pool_images(void *raw, size_t begin, size_t end, int thread)
{
    const pool_job *job = raw;
    const float *in = job->in + begin * job->in_image;
    float *out = job->out + begin * job->out_image;
    int images = (int)(end - begin);
    (void)thread;
    if (job->cfg->kind == CNN_POOL_MAX)
        cnn__pool_max(&job->cfg->geo, in, out, images);
    else
        cnn__pool_avg(&job->cfg->geo, in, out, images, job->cfg->count_pad);
}

/* The work cnn__parallel_for weighs against its FLOP threshold: a window cell
 * costs about what 5-9 FLOPs of a convolution do (LeNet-5's 2x2 max pool of
 * 28x28x6, 64 images: 301k cells in 37 us on one AVX2 core, the time its
 * convolutions take for 1.4-2.7 MFLOP). Counted as one, that pool ran on one
 * thread while the other waited. */
#define POOL_WORK_PER_CELL 8u

/* Images are independent, so the batch is split between threads. */
static void pool_forward(const cnn_layer *layer, const float *in, float *out, int batch,
                         const cnn_exec *exec, const cnn_layer *epilogue)
{
    (void)epilogue;
    const pool_config *cfg = config_of(layer);
    const cnn_pool_geometry *g = &cfg->geo;
    size_t out_image = (size_t)g->out_h * (size_t)g->out_w * (size_t)g->channels;
    pool_job job = { cfg, in, out, (size_t)g->in_h * (size_t)g->in_w * (size_t)g->channels,
                     out_image };
    uint64_t work = POOL_WORK_PER_CELL * (uint64_t)out_image * (uint64_t)batch *
                    (uint64_t)g->window_h * (uint64_t)g->window_w;
    cnn__parallel_for(exec, (size_t)batch, work, pool_images, &job);
}

static uint64_t pool_flops(const cnn_layer *layer)
{
    return (uint64_t)layer->out.h * (uint64_t)layer->out.w * (uint64_t)layer->out.c;
}

static void pool_window(const cnn_layer *layer, int *kh, int *kw, int *sh, int *sw)
{
    const cnn_pool_geometry *g = &config_of(layer)->geo;
    *kh = g->window_h;
    *kw = g->window_w;
    *sh = g->stride_h;
    *sw = g->stride_w;
}

const cnn_layer_ops cnn__pool_ops = {
    .kind = CNN_LAYER_POOL,
    .name = "pool",
    .flops = pool_flops,
    .window = pool_window,
    .forward = pool_forward,
};

void cnn_pool_desc_init(cnn_pool_desc *desc)
{
    if (desc)
        *desc = (cnn_pool_desc)CNN_POOL_DESC_INIT;
}

static cnn_status check_pool(const cnn_net *net, const cnn_pool_desc *d, cnn_shape in,
                             pool_config *cfg)
{
    const int at = cnn__net_layer_count(net);
#define POOL_FAIL(st, ...) cnn__layer_fail(net, at, "pool", st, __VA_ARGS__)
    if (d->kind != CNN_POOL_MAX && d->kind != CNN_POOL_AVG)
        return POOL_FAIL(CNN_E_INVALID_ARG, "unknown pooling kind %d", (int)d->kind);
    if (d->window_h <= 0 || d->window_w <= 0)
        return POOL_FAIL(CNN_E_INVALID_ARG, "window %dx%d must be positive", d->window_h,
                         d->window_w);
    if (d->stride_h < 1 || d->stride_w < 1)
        return POOL_FAIL(CNN_E_INVALID_ARG, "stride %dx%d must be at least 1", d->stride_h,
                         d->stride_w);
    if (d->pad_h < 0 || d->pad_w < 0)
        return POOL_FAIL(CNN_E_INVALID_ARG, "padding %dx%d must not be negative", d->pad_h,
                         d->pad_w);
    if (d->pad_h > d->window_h / 2 || d->pad_w > d->window_w / 2)
        return POOL_FAIL(CNN_E_INVALID_ARG,
                         "padding %dx%d is more than half of the %dx%d window", d->pad_h,
                         d->pad_w, d->window_h, d->window_w);
    long long padded_h = (long long)in.h + 2LL * d->pad_h, padded_w = (long long)in.w + 2LL * d->pad_w;
    if (d->window_h > padded_h || d->window_w > padded_w)
        return POOL_FAIL(CNN_E_SHAPE, "%dx%d window is larger than the %lldx%lld padded input",
                         d->window_h, d->window_w, padded_h, padded_w);
    if (padded_h > 0x7fffffff || padded_w > 0x7fffffff)
        return POOL_FAIL(CNN_E_OVERFLOW, "padded input %lldx%lld does not fit an int", padded_h,
                         padded_w);
    int oh = cnn__window_out(in.h, d->pad_h, d->window_h, d->stride_h);
    int ow = cnn__window_out(in.w, d->pad_w, d->window_w, d->stride_w);
    /* Padding lets the output outgrow the input (2x2 window, pad 1, stride 1). */
    size_t out_elems;
    if (!cnn__mul3_size((size_t)oh, (size_t)ow, (size_t)in.c, &out_elems) ||
        !cnn__fits_int(out_elems))
        return POOL_FAIL(CNN_E_OVERFLOW, "output %dx%dx%d has more than INT_MAX elements", oh, ow,
                         in.c);
#undef POOL_FAIL
    cfg->geo = (cnn_pool_geometry){ in.h, in.w, in.c, oh, ow, d->window_h, d->window_w,
                                    d->stride_h, d->stride_w, d->pad_h, d->pad_w };
    cfg->kind = d->kind;
    cfg->count_pad = d->count_pad != 0;
    return CNN_OK;
}

cnn_status cnn_layer_add_pool(cnn_net *net, const cnn_pool_desc *desc, int *index)
{
    cnn_status st = cnn__builder_net(net, "cnn_layer_add_pool");
    if (st == CNN_OK)
        st = cnn__builder_desc(net, desc, desc ? desc->struct_size : 0, sizeof(cnn_pool_desc),
                               "pool");
    if (st != CNN_OK)
        return st;
    pool_config cfg;
    cnn_shape in = cnn__net_tail_shape(net);
    st = check_pool(net, desc, in, &cfg);
    if (st != CNN_OK)
        return st;
    cnn_layer_spec spec = { &cnn__pool_ops, { cfg.geo.out_h, cfg.geo.out_w, in.c }, &cfg,
                            sizeof cfg, 0, 0 };
    return cnn__net_append(net, &spec, index);
}
