/* Read-only questions about a net and its layers. */
#include "error.h"
#include "net.h"

static cnn_status need_net(const cnn_net *net, const char *caller)
{
    return net ? CNN_OK : cnn__fail(NULL, CNN_E_NULL_ARG, "%s: net is NULL", caller);
}

const char *cnn_layer_kind_name(cnn_layer_kind kind)
{
    switch (kind) {
    case CNN_LAYER_CONV: return "conv";
    case CNN_LAYER_POOL: return "pool";
    case CNN_LAYER_ACTIVATION: return "activation";
    case CNN_LAYER_DENSE: return "dense";
    case CNN_LAYER_SOFTMAX: return "softmax";
    }
    return "unknown";
}

cnn_status cnn_net_layer_count(const cnn_net *net, int *count)
{
    cnn_status st = need_net(net, "cnn_net_layer_count");
    if (st != CNN_OK)
        return st;
    if (!count)
        return cnn__fail(net, CNN_E_NULL_ARG, "cnn_net_layer_count: count is NULL");
    *count = net->n_layers;
    return CNN_OK;
}

/* Finds the layer and checks that the one required out-pointer is there. */
static cnn_status layer_query(const cnn_net *net, int index, const char *caller,
                              const void *out, const cnn_layer **layer)
{
    cnn_status st = cnn__net_layer(net, index, caller, layer);
    if (st == CNN_OK && !out)
        st = cnn__fail(net, CNN_E_NULL_ARG, "%s: out-pointer is NULL", caller);
    return st;
}

cnn_status cnn_layer_kind_of(const cnn_net *net, int index, cnn_layer_kind *kind)
{
    const cnn_layer *layer;
    cnn_status st = layer_query(net, index, "cnn_layer_kind_of", kind, &layer);
    if (st == CNN_OK)
        *kind = layer->ops->kind;
    return st;
}

static void put_shape(cnn_shape s, int *h, int *w, int *c)
{
    if (h)
        *h = s.h;
    if (w)
        *w = s.w;
    if (c)
        *c = s.c;
}

cnn_status cnn_layer_output_shape(const cnn_net *net, int index, int *h, int *w, int *c)
{
    const cnn_layer *layer;
    cnn_status st = cnn__net_layer(net, index, "cnn_layer_output_shape", &layer);
    if (st == CNN_OK)
        put_shape(layer->out, h, w, c);
    return st;
}

static size_t layer_params(const cnn_layer *layer)
{
    return layer->params ? layer->params->n_weights + layer->params->n_bias : 0;
}

cnn_status cnn_layer_param_count(const cnn_net *net, int index, size_t *count)
{
    const cnn_layer *layer;
    cnn_status st = layer_query(net, index, "cnn_layer_param_count", count, &layer);
    if (st == CNN_OK)
        *count = layer_params(layer);
    return st;
}

cnn_status cnn_layer_flops(const cnn_net *net, int index, uint64_t *flops)
{
    const cnn_layer *layer;
    cnn_status st = layer_query(net, index, "cnn_layer_flops", flops, &layer);
    if (st == CNN_OK)
        *flops = layer->ops->flops(layer);
    return st;
}

/* rf grows by (k - 1) * jump per layer; jump, the input-pixel distance between
 * neighbouring outputs, multiplies by the stride. Saturates instead of overflowing. */
cnn_status cnn_layer_receptive_field(const cnn_net *net, int index, int *height, int *width)
{
    const cnn_layer *layer;
    cnn_status st = cnn__net_layer(net, index, "cnn_layer_receptive_field", &layer);
    if (st != CNN_OK)
        return st;
    long long rf_h = 1, rf_w = 1, jump_h = 1, jump_w = 1;
    const long long cap = 0x7fffffff;
    for (int i = 0; i <= index; i++) {
        int kh, kw, sh, sw;
        net->layers[i].ops->window(&net->layers[i], &kh, &kw, &sh, &sw);
        rf_h += (long long)(kh - 1) * jump_h;
        rf_w += (long long)(kw - 1) * jump_w;
        jump_h = jump_h * sh > cap ? cap : jump_h * sh;
        jump_w = jump_w * sw > cap ? cap : jump_w * sw;
        rf_h = rf_h > cap ? cap : rf_h;
        rf_w = rf_w > cap ? cap : rf_w;
    }
    if (height)
        *height = (int)rf_h;
    if (width)
        *width = (int)rf_w;
    return CNN_OK;
}

cnn_status cnn_net_input_shape(const cnn_net *net, int *h, int *w, int *c)
{
    cnn_status st = need_net(net, "cnn_net_input_shape");
    if (st == CNN_OK)
        put_shape(net->input, h, w, c);
    return st;
}

cnn_status cnn_net_output_shape(const cnn_net *net, int *h, int *w, int *c)
{
    cnn_status st = need_net(net, "cnn_net_output_shape");
    if (st == CNN_OK)
        put_shape(cnn__net_tail_shape(net), h, w, c);
    return st;
}

cnn_status cnn_net_param_count(const cnn_net *net, size_t *count)
{
    cnn_status st = need_net(net, "cnn_net_param_count");
    if (st == CNN_OK && !count)
        st = cnn__fail(net, CNN_E_NULL_ARG, "cnn_net_param_count: count is NULL");
    if (st != CNN_OK)
        return st;
    size_t total = 0;
    for (int i = 0; i < net->n_layers; i++)
        total += layer_params(&net->layers[i]);
    *count = total;
    return CNN_OK;
}

cnn_status cnn_net_flops(const cnn_net *net, uint64_t *flops)
{
    cnn_status st = need_net(net, "cnn_net_flops");
    if (st == CNN_OK && !flops)
        st = cnn__fail(net, CNN_E_NULL_ARG, "cnn_net_flops: flops is NULL");
    if (st != CNN_OK)
        return st;
    uint64_t total = 0;
    for (int i = 0; i < net->n_layers; i++)
        total += net->layers[i].ops->flops(&net->layers[i]);
    *flops = total;
    return CNN_OK;
}
