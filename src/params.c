/* Parameter access and initialisation; layout conversion is each kind's business. */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "net.h"
#include "rng.h"

/* Common checks of the parameter calls: the layer exists and has parameters. */
static cnn_status param_layer(const cnn_net *net, int index, const char *caller,
                              const cnn_layer **layer)
{
    cnn_status st = cnn__net_layer(net, index, caller, layer);
    if (st != CNN_OK)
        return st;
    if (!(*layer)->params)
        return cnn__layer_fail(net, index, (*layer)->ops->name, CNN_E_LAYER_KIND,
                               "%s: this kind of layer has no parameters", caller);
    return CNN_OK;
}

cnn_status cnn_layer_param_sizes(const cnn_net *net, int index, size_t *weight_count,
                                 size_t *bias_count)
{
    const cnn_layer *layer;
    cnn_status st = param_layer(net, index, "cnn_layer_param_sizes", &layer);
    if (st != CNN_OK)
        return st;
    if (weight_count)
        *weight_count = layer->params->n_weights;
    if (bias_count)
        *bias_count = layer->params->n_bias;
    return CNN_OK;
}

/* Checks shared by the weight and bias transfers. */
static cnn_status check_transfer(const cnn_net *net, int index, const char *caller,
                                 const void *buffer, size_t count, int bias,
                                 const cnn_layer **layer)
{
    cnn_status st = param_layer(net, index, caller, layer);
    if (st != CNN_OK)
        return st;
    const char *kind = (*layer)->ops->name;
    size_t need = bias ? (*layer)->params->n_bias : (*layer)->params->n_weights;
    if (bias && need == 0)
        return cnn__layer_fail(net, index, kind, CNN_E_LAYER_KIND,
                               "%s: the layer was built without bias", caller);
    if (!buffer)
        return cnn__layer_fail(net, index, kind, CNN_E_NULL_ARG, "%s: buffer is NULL", caller);
    if (count != need)
        return cnn__layer_fail(net, index, kind, CNN_E_BUFFER_SIZE,
                               "%s: buffer holds %zu floats, the layer has %zu", caller, count,
                               need);
    return CNN_OK;
}

static cnn_status check_layout(const cnn_net *net, int index, const cnn_layer *layer,
                               const char *caller, cnn_weight_layout layout)
{
    if (layout != CNN_LAYOUT_NATIVE && layout != CNN_LAYOUT_PYTORCH)
        return cnn__layer_fail(net, index, layer->ops->name, CNN_E_INVALID_ARG,
                               "%s: unknown weight layout %d", caller, (int)layout);
    return CNN_OK;
}

cnn_status cnn_layer_set_weights(cnn_net *net, int index, const float *weights, size_t count,
                                 cnn_weight_layout layout)
{
    const char *caller = "cnn_layer_set_weights";
    const cnn_layer *layer;
    cnn_status st = check_transfer(net, index, caller, weights, count, 0, &layer);
    if (st == CNN_OK)
        st = check_layout(net, index, layer, caller, layout);
    if (st == CNN_OK)
        st = cnn__layer_params_unshare(net, index);
    if (st != CNN_OK)
        return st;
    float *dst = layer->params->weights;
    if (layout == CNN_LAYOUT_PYTORCH)
        layer->ops->weights_from_pytorch(layer, weights, dst);
    else
        memcpy(dst, weights, count * sizeof(float));
    return CNN_OK;
}

cnn_status cnn_layer_get_weights(const cnn_net *net, int index, float *weights, size_t count,
                                 cnn_weight_layout layout)
{
    const char *caller = "cnn_layer_get_weights";
    const cnn_layer *layer;
    cnn_status st = check_transfer(net, index, caller, weights, count, 0, &layer);
    if (st == CNN_OK)
        st = check_layout(net, index, layer, caller, layout);
    if (st != CNN_OK)
        return st;
    if (layout == CNN_LAYOUT_PYTORCH)
        layer->ops->weights_to_pytorch(layer, layer->params->weights, weights);
    else
        memcpy(weights, layer->params->weights, count * sizeof(float));
    return CNN_OK;
}

cnn_status cnn_layer_set_bias(cnn_net *net, int index, const float *bias, size_t count)
{
    const cnn_layer *layer;
    cnn_status st = check_transfer(net, index, "cnn_layer_set_bias", bias, count, 1, &layer);
    if (st == CNN_OK)
        st = cnn__layer_params_unshare(net, index);
    if (st != CNN_OK)
        return st;
    memcpy(layer->params->bias, bias, count * sizeof(float));
    return CNN_OK;
}

cnn_status cnn_layer_get_bias(const cnn_net *net, int index, float *bias, size_t count)
{
    const cnn_layer *layer;
    cnn_status st = check_transfer(net, index, "cnn_layer_get_bias", bias, count, 1, &layer);
    if (st != CNN_OK)
        return st;
    memcpy(bias, layer->params->bias, count * sizeof(float));
    return CNN_OK;
}

static void fill_weights(const cnn_layer *layer, cnn_init scheme, cnn_rng *rng)
{
    double fan_in, fan_out;
    layer->ops->fans(layer, &fan_in, &fan_out);
    int he = scheme == CNN_INIT_HE_UNIFORM || scheme == CNN_INIT_HE_NORMAL;
    int uniform = scheme == CNN_INIT_HE_UNIFORM || scheme == CNN_INIT_XAVIER_UNIFORM;
    double variance = 2.0 / (he ? fan_in : fan_in + fan_out);
    double scale = uniform ? sqrt(3.0 * variance) : sqrt(variance);
    cnn_params *p = layer->params;
    for (size_t i = 0; i < p->n_weights; i++) {
        double r = uniform ? 2.0 * cnn__rng_uniform(rng) - 1.0 : cnn__rng_normal(rng);
        p->weights[i] = (float)(scale * r);
    }
    if (p->n_bias)
        memset(p->bias, 0, p->n_bias * sizeof(float));
}

cnn_status cnn_net_init_params(cnn_net *net, cnn_init scheme, uint64_t seed)
{
    if (!net)
        return cnn__fail(NULL, CNN_E_NULL_ARG, "cnn_net_init_params: net is NULL");
    if ((int)scheme < (int)CNN_INIT_HE_UNIFORM || (int)scheme > (int)CNN_INIT_XAVIER_NORMAL)
        return cnn__fail(net, CNN_E_INVALID_ARG, "cnn_net_init_params: unknown scheme %d",
                         (int)scheme);
    /* Unshare every block first so that a failure leaves all weights as they were. */
    for (int i = 0; i < net->n_layers; i++) {
        if (!net->layers[i].params)
            continue;
        cnn_status st = cnn__layer_params_unshare(net, i);
        if (st != CNN_OK)
            return st;
    }
    cnn_rng rng;
    cnn__rng_seed(&rng, seed);
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].params)
            fill_weights(&net->layers[i], scheme, &rng);
    return CNN_OK;
}
