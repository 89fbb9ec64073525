/* Fully connected layer: one SGEMM over the batch, the input flattened in NHWC order. */
#include "../checked.h"
#include "../kernels/gemm.h"
#include "builder.h"
#include "epilogue.h"

typedef struct dense_config {
    cnn_shape in; /* kept to convert PyTorch's NCHW-flatten column order */
    int inputs;
    int units;
    int bias;
} dense_config;

static const dense_config *config_of(const cnn_layer *layer) { return layer->config; }

static void dense_forward(const cnn_layer *layer, const float *in, float *out, int batch,
                          const cnn_exec *exec, const cnn_layer *epilogue)
{
    const dense_config *cfg = config_of(layer);
    cnn__gemm_abt_parallel(exec, (size_t)batch, cfg->units, cfg->inputs, in, cfg->inputs,
                           layer->params->weights, cfg->inputs, out, cfg->units);
    cnn__epilogue_rows(out, (size_t)batch, cfg->units, cfg->bias ? layer->params->bias : NULL,
                       epilogue);
}

static uint64_t dense_flops(const cnn_layer *layer)
{
    const dense_config *cfg = config_of(layer);
    return (uint64_t)cfg->units * (2u * (uint64_t)cfg->inputs + (cfg->bias ? 1u : 0u));
}

/* A dense unit sees its whole input: a window the size of the input map. */
static void dense_window(const cnn_layer *layer, int *kh, int *kw, int *sh, int *sw)
{
    *kh = layer->in.h;
    *kw = layer->in.w;
    *sh = *sw = 1;
}

/* Column (y, x, c) natively is column (c, y, x) in PyTorch's flatten of NCHW. */
static void convert_weights(const cnn_layer *layer, const float *src, float *dst, int to_native)
{
    const dense_config *cfg = config_of(layer);
    const size_t h = (size_t)cfg->in.h, w = (size_t)cfg->in.w, c = (size_t)cfg->in.c;
    const size_t inputs = (size_t)cfg->inputs;
    for (size_t u = 0; u < (size_t)cfg->units; u++) {
        const float *s = src + u * inputs;
        float *d = dst + u * inputs;
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++)
                for (size_t ch = 0; ch < c; ch++) {
                    size_t nhwc = (y * w + x) * c + ch, nchw = (ch * h + y) * w + x;
                    if (to_native)
                        d[nhwc] = s[nchw];
                    else
                        d[nchw] = s[nhwc];
                }
    }
}

static void dense_from_pytorch(const cnn_layer *layer, const float *src, float *dst)
{
    convert_weights(layer, src, dst, 1);
}

static void dense_to_pytorch(const cnn_layer *layer, const float *src, float *dst)
{
    convert_weights(layer, src, dst, 0);
}

static void dense_fans(const cnn_layer *layer, double *fan_in, double *fan_out)
{
    *fan_in = config_of(layer)->inputs;
    *fan_out = config_of(layer)->units;
}

const cnn_layer_ops cnn__dense_ops = {
    .kind = CNN_LAYER_DENSE,
    .name = "dense",
    .flops = dense_flops,
    .window = dense_window,
    .forward = dense_forward,
    .fuses_epilogue = 1,
    .weights_from_pytorch = dense_from_pytorch,
    .weights_to_pytorch = dense_to_pytorch,
    .fans = dense_fans,
};

cnn_status cnn_layer_add_dense(cnn_net *net, int units, int bias, int *index)
{
    cnn_status st = cnn__builder_net(net, "cnn_layer_add_dense");
    if (st != CNN_OK)
        return st;
    int at = cnn__net_layer_count(net);
    cnn_shape in = cnn__net_tail_shape(net);
    if (units <= 0)
        return cnn__layer_fail(net, at, "dense", CNN_E_INVALID_ARG,
                               "units is %d; it must be at least 1", units);
    size_t inputs = (size_t)in.h * (size_t)in.w * (size_t)in.c, weights;
    if (!cnn__mul_size(inputs, (size_t)units, &weights) ||
        !cnn__mul_size(weights, sizeof(float), &weights) || !cnn__fits_object(weights))
        return cnn__layer_fail(net, at, "dense", CNN_E_OVERFLOW,
                               "%d units of %zu inputs: the weights exceed the largest object",
                               units, inputs);
    dense_config cfg = { in, (int)inputs, units, bias != 0 };
    cnn_layer_spec spec = { &cnn__dense_ops, { 1, 1, units }, &cfg, sizeof cfg,
                            inputs * (size_t)units, bias ? (size_t)units : 0 };
    return cnn__net_append(net, &spec, index);
}
