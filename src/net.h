/* The net handle, shared by the driver-side files (net.c, forward.c, params.c,
 * introspect.c). Layer files never include this. */
#ifndef CNN_NET_H
#define CNN_NET_H

#include "layer.h"

struct cnn_net {
    cnn_shape input;
    cnn_layer *layers;
    int n_layers;
    int capacity;
    char *error; /* CNN_ERROR_CAPACITY bytes; a pointer so const queries can record failures */

    /* Forward plan: valid for planned_batch images of the first planned_layers layers. */
    int planned_batch;
    int planned_layers;
    float *activations[2]; /* ping-pong buffers between layers */
    float *workspace;
};

/* Looks up layer `index`, recording CNN_E_NULL_ARG / CNN_E_INDEX on failure. */
cnn_status cnn__net_layer(const cnn_net *net, int index, const char *caller,
                          const cnn_layer **layer);

/* Drops one reference to a parameter block, freeing it on the last. */
/* Gives layer `index` its own parameter block if it shares one; CNN_E_NOMEM otherwise unchanged. */
cnn_status cnn__layer_params_unshare(cnn_net *net, int index);

void cnn__params_release(cnn_params *params);

/* Frees the forward plan's buffers. */
void cnn__plan_release(cnn_net *net);

/* Elements per image of a shape; 0 when it overflows size_t. */
size_t cnn__shape_elems(cnn_shape shape);

#endif
