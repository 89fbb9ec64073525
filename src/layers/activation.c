/* Element-wise activation layers. */
#include <math.h>

#include "../kernels/activation.h"
#include "../kernels/bias.h"
#include "builder.h"

typedef struct activation_config {
    cnn_activation kind;
    float slope;
} activation_config;

static size_t elems(const cnn_layer *layer)
{
    return (size_t)layer->out.h * (size_t)layer->out.w * (size_t)layer->out.c;
}

typedef struct activation_job {
    const activation_config *cfg;
    const float *in;
    float *out;
} activation_job;

static void activate(const activation_config *cfg, float *out, const float *in, size_t n)
{
    switch (cfg->kind) {
    case CNN_ACT_RELU: cnn__relu(out, in, n); break;
    case CNN_ACT_LEAKY_RELU: cnn__leaky_relu(out, in, n, cfg->slope); break;
    case CNN_ACT_SIGMOID: cnn__sigmoid(out, in, n); break;
    case CNN_ACT_TANH: cnn__tanh(out, in, n); break;
    }
}

static void activation_range(void *raw, size_t begin, size_t end, int thread)
{
    const activation_job *job = raw;
    (void)thread;
    activate(job->cfg, job->out + begin, job->in + begin, end - begin);
}

static void activation_inplace(const cnn_layer *layer, float *x, size_t n)
{
    activate(layer->config, x, x, n);
}

/* ReLU and leaky ReLU fold into the bias loop; sigmoid and tanh cost far
 * more than a pass over cached rows, so they keep two. */
static void activation_bias_inplace(const cnn_layer *layer, float *x, size_t rows, int cols,
                                    const float *bias)
{
    const activation_config *cfg = layer->config;
    if (cfg->kind == CNN_ACT_RELU) {
        cnn__add_bias_relu_rows(x, rows, cols, bias);
    } else if (cfg->kind == CNN_ACT_LEAKY_RELU) {
        cnn__add_bias_leaky_relu_rows(x, rows, cols, bias, cfg->slope);
    } else {
        cnn__add_bias_rows(x, rows, cols, bias);
        activate(cfg, x, x, rows * (size_t)cols);
    }
}

static void activation_forward(const cnn_layer *layer, const float *in, float *out, int batch,
                               const cnn_exec *exec, const cnn_layer *epilogue)
{
    (void)epilogue;
    const activation_config *cfg = layer->config;
    size_t n = elems(layer) * (size_t)batch;
    /* Work in "FLOP equivalents": the transcendental ones cost far more per element. */
    uint64_t per_elem = cfg->kind == CNN_ACT_SIGMOID || cfg->kind == CNN_ACT_TANH ? 20u : 2u;
    activation_job job = { cfg, in, out };
    cnn__parallel_for(exec, n, (uint64_t)n * per_elem, activation_range, &job);
}

static uint64_t activation_flops(const cnn_layer *layer) { return (uint64_t)elems(layer); }

static void activation_window(const cnn_layer *layer, int *kh, int *kw, int *sh, int *sw)
{
    (void)layer;
    *kh = *kw = *sh = *sw = 1;
}

const cnn_layer_ops cnn__activation_ops = {
    .kind = CNN_LAYER_ACTIVATION,
    .name = "activation",
    .flops = activation_flops,
    .window = activation_window,
    .forward = activation_forward,
    .apply_inplace = activation_inplace,
    .apply_bias_inplace = activation_bias_inplace,
};

cnn_status cnn_layer_add_activation(cnn_net *net, cnn_activation kind, float slope, int *index)
{
    cnn_status st = cnn__builder_net(net, "cnn_layer_add_activation");
    if (st != CNN_OK)
        return st;
    int at = cnn__net_layer_count(net);
    if (kind != CNN_ACT_RELU && kind != CNN_ACT_LEAKY_RELU && kind != CNN_ACT_SIGMOID &&
        kind != CNN_ACT_TANH)
        return cnn__layer_fail(net, at, "activation", CNN_E_INVALID_ARG,
                               "unknown activation %d", (int)kind);
    if (kind == CNN_ACT_LEAKY_RELU && !isfinite(slope))
        return cnn__layer_fail(net, at, "activation", CNN_E_INVALID_ARG,
                               "leaky ReLU slope must be finite");
    activation_config cfg = { kind, kind == CNN_ACT_LEAKY_RELU ? slope : 0.0f };
    cnn_layer_spec spec = { &cnn__activation_ops, cnn__net_tail_shape(net), &cfg, sizeof cfg, 0, 0 };
    return cnn__net_append(net, &spec, index);
}
