/* The net handle: creation, the layer list, cloning. */
#include "net.h"

#include <string.h>

#include "alloc.h"
#include "checked.h"
#include "error.h"

size_t cnn__shape_elems(cnn_shape s)
{
    size_t n;
    return cnn__mul3_size((size_t)s.h, (size_t)s.w, (size_t)s.c, &n) ? n : 0;
}

char *cnn__net_error_buffer(const cnn_net *net) { return net->error; }

cnn_shape cnn__net_tail_shape(const cnn_net *net)
{
    return net->n_layers ? net->layers[net->n_layers - 1].out : net->input;
}

int cnn__net_layer_count(const cnn_net *net) { return net->n_layers; }

cnn_status cnn__net_layer(const cnn_net *net, int index, const char *caller,
                          const cnn_layer **layer)
{
    if (!net)
        return cnn__fail(NULL, CNN_E_NULL_ARG, "%s: net is NULL", caller);
    if (index < 0 || index >= net->n_layers)
        return cnn__fail(net, CNN_E_INDEX, "%s: layer index %d is out of range (the net has %d layers)",
                         caller, index, net->n_layers);
    *layer = &net->layers[index];
    return CNN_OK;
}

cnn_status cnn_net_create(cnn_net **out, int height, int width, int channels)
{
    if (!out)
        return cnn__fail(NULL, CNN_E_NULL_ARG, "cnn_net_create: net out-pointer is NULL");
    *out = NULL;
    if (height <= 0 || width <= 0 || channels <= 0)
        return cnn__fail(NULL, CNN_E_INVALID_ARG,
                         "cnn_net_create: input shape %dx%dx%d must be positive", height, width,
                         channels);
    cnn_shape input = { height, width, channels };
    if (!cnn__shape_elems(input) || !cnn__fits_int(cnn__shape_elems(input)))
        return cnn__fail(NULL, CNN_E_OVERFLOW,
                         "cnn_net_create: input %dx%dx%d has more than INT_MAX elements", height,
                         width, channels);
    cnn_net *net = cnn__calloc(1, sizeof *net);
    char *error = cnn__calloc(1, CNN_ERROR_CAPACITY);
    if (!net || !error) {
        cnn__free(net);
        cnn__free(error);
        return cnn__fail(NULL, CNN_E_NOMEM, "cnn_net_create: out of memory");
    }
    net->input = input;
    net->error = error;
    cnn__net_count_add(1);
    *out = net;
    return CNN_OK;
}

void cnn__params_release(cnn_params *params)
{
    if (params && atomic_fetch_sub(&params->refs, 1) == 1)
        cnn__free(params);
}

static void layer_release(cnn_layer *layer)
{
    cnn__free(layer->config);
    cnn__params_release(layer->params);
}

void cnn_net_destroy(cnn_net *net)
{
    if (!net)
        return;
    cnn__plan_release(net); /* first: it clears each layer's packed copy */
    for (int i = 0; i < net->n_layers; i++)
        layer_release(&net->layers[i]);
    cnn__free(net->layers);
    cnn__pool_destroy(net->pool);
    cnn__free(net->error);
    cnn__free(net);
    cnn__net_count_add(-1);
}

/* Parameter stamps: unique in the process, never 0. */
static atomic_uint_fast64_t last_stamp;

static uint64_t next_stamp(void) { return (uint64_t)atomic_fetch_add(&last_stamp, 1) + 1; }

/* One block holds the header, the weights and the biases. */
static cnn_params *params_new(size_t n_weights, size_t n_bias)
{
    size_t floats, bytes;
    size_t header = (sizeof(cnn_params) + 63) / 64 * 64;
    if (!cnn__add_size(n_weights, n_bias, &floats) || !cnn__mul_size(floats, sizeof(float), &bytes) ||
        !cnn__add_size(bytes, header, &bytes))
        return NULL;
    unsigned char *block = cnn__calloc(1, bytes);
    if (!block)
        return NULL;
    cnn_params *p = (cnn_params *)(void *)block;
    atomic_init(&p->refs, 1);
    p->n_weights = n_weights;
    p->n_bias = n_bias;
    p->weights = (float *)(void *)(block + header);
    p->bias = n_bias ? p->weights + n_weights : NULL;
    p->stamp = next_stamp();
    return p;
}

/* Grows the layer array to hold one more; leaves the net unchanged on failure. */
static int reserve_one(cnn_net *net)
{
    if (net->n_layers < net->capacity)
        return 1;
    int cap = net->capacity == 0 ? 8
              : net->capacity > 0x3fffffff ? 0x7fffffff : net->capacity * 2;
    cnn_layer *grown = cnn__calloc((size_t)cap, sizeof *grown);
    if (!grown)
        return 0;
    if (net->n_layers)
        memcpy(grown, net->layers, (size_t)net->n_layers * sizeof *grown);
    cnn__free(net->layers);
    net->layers = grown;
    net->capacity = cap;
    return 1;
}

cnn_status cnn__net_append(cnn_net *net, const cnn_layer_spec *spec, int *index)
{
    int at = net->n_layers;
    if (at == 0x7fffffff)
        return cnn__layer_fail(net, at, spec->ops->name, CNN_E_OVERFLOW, "too many layers");
    void *config = cnn__alloc(spec->config_size);
    cnn_params *params = NULL;
    int has_params = spec->ops->weights_from_pytorch != NULL;
    if (has_params)
        params = params_new(spec->n_weights, spec->n_bias);
    if (!config || (has_params && !params) || !reserve_one(net)) {
        cnn__free(config);
        cnn__params_release(params);
        return cnn__layer_fail(net, at, spec->ops->name, CNN_E_NOMEM, "out of memory");
    }
    memcpy(config, spec->config, spec->config_size);
    cnn_layer *layer = &net->layers[at];
    layer->ops = spec->ops;
    layer->in = cnn__net_tail_shape(net);
    layer->out = spec->out;
    layer->config = config;
    layer->config_size = spec->config_size;
    layer->params = params;
    layer->packed = NULL;
    layer->packed_stamp = 0;
    net->n_layers = at + 1;
    if (index)
        *index = at;
    return CNN_OK;
}

cnn_status cnn_net_clone(const cnn_net *source, cnn_net **out)
{
    if (!out)
        return cnn__fail(source, CNN_E_NULL_ARG, "cnn_net_clone: clone out-pointer is NULL");
    *out = NULL;
    if (!source)
        return cnn__fail(NULL, CNN_E_NULL_ARG, "cnn_net_clone: source net is NULL");
    cnn_net *clone;
    cnn_status st = cnn_net_create(&clone, source->input.h, source->input.w, source->input.c);
    if (st != CNN_OK)
        return cnn__fail(source, st, "cnn_net_clone: %s", cnn_net_last_error(NULL));
    clone->threads_requested = source->threads_requested;
    if (source->n_layers) {
        clone->layers = cnn__calloc((size_t)source->n_layers, sizeof *clone->layers);
        if (!clone->layers) {
            cnn_net_destroy(clone);
            return cnn__fail(source, CNN_E_NOMEM, "cnn_net_clone: out of memory");
        }
        clone->capacity = source->n_layers;
    }
    for (int i = 0; i < source->n_layers; i++) {
        const cnn_layer *from = &source->layers[i];
        void *config = cnn__alloc(from->config_size);
        if (!config) {
            cnn_net_destroy(clone);
            return cnn__fail(source, CNN_E_NOMEM, "cnn_net_clone: out of memory");
        }
        memcpy(config, from->config, from->config_size);
        clone->layers[i] = *from;
        clone->layers[i].config = config;
        clone->layers[i].packed = NULL; /* the source's copy lives in its plan */
        clone->layers[i].packed_stamp = 0;
        if (from->params)
            atomic_fetch_add(&from->params->refs, 1);
        clone->n_layers = i + 1;
    }
    *out = clone;
    return CNN_OK;
}

/* Gives the layer a private parameter block before it is written (copy-on-write). */
cnn_status cnn__layer_params_unshare(cnn_net *net, int index)
{
    cnn_layer *layer = &net->layers[index];
    cnn_params *old = layer->params;
    if (atomic_load(&old->refs) == 1) {
        old->stamp = next_stamp(); /* about to be written: packed copies go stale */
        return CNN_OK;
    }
    cnn_params *own = params_new(old->n_weights, old->n_bias);
    if (!own)
        return cnn__layer_fail(net, index, layer->ops->name, CNN_E_NOMEM,
                               "out of memory copying shared parameters");
    memcpy(own->weights, old->weights, old->n_weights * sizeof(float));
    if (old->n_bias)
        memcpy(own->bias, old->bias, old->n_bias * sizeof(float));
    layer->params = own;
    cnn__params_release(old);
    return CNN_OK;
}
