/* The net handle, shared by the driver-side files (net.c, forward.c, params.c,
 * introspect.c). Layer files never include this. */
#ifndef CNN_NET_H
#define CNN_NET_H

#include "layer.h"
#include "threads.h"

struct cnn_net {
    cnn_shape input;
    cnn_layer *layers;
    int n_layers;
    int capacity;
    char *error; /* CNN_ERROR_CAPACITY bytes; a pointer so const queries can record failures */

    /* Threads: 0 asks for every available core. */
    int threads_requested;
    cnn_pool *pool; /* worker threads, started by the first forward that needs them */

    /* Forward plan: valid for planned_batch images of the first planned_layers
     * layers at planned_threads threads, carved from one block of scratch. */
    int planned_batch;
    int planned_layers;
    int planned_threads;
    void *scratch;           /* owned block, or NULL while the caller's workspace is used */
    void *user_workspace;    /* caller's block (cnn_net_set_workspace), not owned */
    size_t user_workspace_bytes;
    float *activations[2];   /* ping-pong buffers between layers */
    cnn_exec exec;
};

/* Looks up layer `index`, recording CNN_E_NULL_ARG / CNN_E_INDEX on failure. */
cnn_status cnn__net_layer(const cnn_net *net, int index, const char *caller,
                          const cnn_layer **layer);

/* Drops one reference to a parameter block, freeing it on the last. */
/* Gives layer `index` its own parameter block if it shares one; CNN_E_NOMEM otherwise unchanged. */
cnn_status cnn__layer_params_unshare(cnn_net *net, int index);

void cnn__params_release(cnn_params *params);

/* Most threads one net may use. */
#define CNN_MAX_THREADS 1024

/* The thread count the net runs with (its request, or every available core). */
int cnn__net_threads(const cnn_net *net);

/* Frees the forward plan's buffers. */
void cnn__plan_release(cnn_net *net);

/* Elements per image of a shape; 0 when it overflows size_t. */
size_t cnn__shape_elems(cnn_shape shape);

#endif
