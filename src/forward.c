/* The forward driver: plans buffers for a batch size, then runs the layers. */
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "checked.h"
#include "error.h"
#include "net.h"

void cnn__plan_release(cnn_net *net)
{
    cnn__free(net->activations[0]);
    cnn__free(net->activations[1]);
    cnn__free(net->workspace);
    net->activations[0] = net->activations[1] = NULL;
    net->workspace = NULL;
    net->planned_batch = 0;
    net->planned_layers = 0;
}

/* Sizes of the ping-pong buffers and the shared workspace for `batch` images. */
static cnn_status plan_sizes(const cnn_net *net, int batch, size_t *act_floats,
                             size_t *work_floats)
{
    size_t act = 0, work = 0;
    /* The last layer writes into the caller's output, so it needs no buffer. */
    for (int i = 0; i < net->n_layers; i++) {
        const cnn_layer *layer = &net->layers[i];
        size_t per_image = cnn__shape_elems(layer->out), n, w;
        if (!per_image || !cnn__mul_size(per_image, (size_t)batch, &n) ||
            !cnn__mul_size(n, sizeof(float), &w))
            return cnn__layer_fail(net, i, layer->ops->name, CNN_E_OVERFLOW,
                                   "output of %d images overflows size_t", batch);
        if (i + 1 < net->n_layers && n > act)
            act = n;
        if (!layer->ops->workspace_floats(layer, batch, &w))
            return cnn__layer_fail(net, i, layer->ops->name, CNN_E_OVERFLOW,
                                   "workspace for %d images overflows size_t", batch);
        if (w > work)
            work = w;
    }
    size_t bytes;
    if (!cnn__mul_size(act, sizeof(float), &bytes) || !cnn__mul_size(work, sizeof(float), &bytes))
        return cnn__fail(net, CNN_E_OVERFLOW, "cnn_forward: buffers for %d images overflow size_t",
                         batch);
    *act_floats = act;
    *work_floats = work;
    return CNN_OK;
}

/* Replaces the plan only once every new buffer exists, so failure changes nothing. */
static cnn_status ensure_plan(cnn_net *net, int batch)
{
    if (net->planned_batch == batch && net->planned_layers == net->n_layers)
        return CNN_OK;
    size_t act = 0, work = 0;
    cnn_status st = plan_sizes(net, batch, &act, &work);
    if (st != CNN_OK)
        return st;
    int pingpong = net->n_layers > 2 ? 2 : (net->n_layers > 1 ? 1 : 0);
    float *a0 = pingpong >= 1 ? cnn__alloc(act * sizeof(float)) : NULL;
    float *a1 = pingpong >= 2 ? cnn__alloc(act * sizeof(float)) : NULL;
    float *ws = work ? cnn__alloc(work * sizeof(float)) : NULL;
    if ((pingpong >= 1 && !a0) || (pingpong >= 2 && !a1) || (work && !ws)) {
        cnn__free(a0);
        cnn__free(a1);
        cnn__free(ws);
        return cnn__fail(net, CNN_E_NOMEM,
                         "cnn_forward: out of memory planning buffers for %d images", batch);
    }
    cnn__plan_release(net);
    net->activations[0] = a0;
    net->activations[1] = a1;
    net->workspace = ws;
    net->planned_batch = batch;
    net->planned_layers = net->n_layers;
    return CNN_OK;
}

static int ranges_overlap(const void *a, size_t a_bytes, const void *b, size_t b_bytes)
{
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < b0 + b_bytes && b0 < a0 + a_bytes;
}

cnn_status cnn_forward(cnn_net *net, const float *input, int batch, float *output)
{
    if (!net)
        return cnn__fail(NULL, CNN_E_NULL_ARG, "cnn_forward: net is NULL");
    if (!input || !output)
        return cnn__fail(net, CNN_E_NULL_ARG, "cnn_forward: %s buffer is NULL",
                         input ? "output" : "input");
    if (batch < 1)
        return cnn__fail(net, CNN_E_INVALID_ARG, "cnn_forward: batch %d must be at least 1",
                         batch);
    if (net->n_layers == 0)
        return cnn__fail(net, CNN_E_EMPTY_NET, "cnn_forward: the net has no layers");
    size_t in_bytes, out_bytes;
    if (!cnn__mul3_size(cnn__shape_elems(net->input), (size_t)batch, sizeof(float), &in_bytes) ||
        !cnn__mul3_size(cnn__shape_elems(cnn__net_tail_shape(net)), (size_t)batch, sizeof(float),
                        &out_bytes))
        return cnn__fail(net, CNN_E_OVERFLOW, "cnn_forward: %d images overflow size_t", batch);
    if (ranges_overlap(input, in_bytes, output, out_bytes))
        return cnn__fail(net, CNN_E_OVERLAP, "cnn_forward: input and output buffers overlap");
    cnn_status st = ensure_plan(net, batch);
    if (st != CNN_OK)
        return st;
    const float *src = input;
    for (int i = 0; i < net->n_layers; i++) {
        const cnn_layer *layer = &net->layers[i];
        float *dst = (i + 1 == net->n_layers) ? output : net->activations[i % 2];
        layer->ops->forward(layer, src, dst, batch, net->workspace);
        src = dst;
    }
    return CNN_OK;
}
