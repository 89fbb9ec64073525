/* The contract between the net driver (net.c) and each layer kind (one file per kind under src/layers/).
 * The driver sees a layer only through its ops table, its shapes and its
 * parameter block; the kind-specific configuration is an opaque byte copy. */
#ifndef CNN_LAYER_H
#define CNN_LAYER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cnn.h"
#include "exec.h"

typedef struct cnn_shape {
    int h, w, c;
} cnn_shape;

/* Weights and biases of one layer, shared copy-on-write between clones. */
typedef struct cnn_params {
    atomic_int refs;
    size_t n_weights;
    size_t n_bias;
    float *weights; /* n_weights floats, native layout */
    float *bias;    /* n_bias floats, NULL when n_bias == 0 */
    /* Unique in the process, and new whenever the values may change (a new
     * block, or a private one about to be written): what a net packed from
     * these parameters is current while the stamps agree. Never 0. */
    uint64_t stamp;
} cnn_params;

typedef struct cnn_layer cnn_layer;

typedef struct cnn_layer_ops {
    cnn_layer_kind kind;
    const char *name;
    /* FLOPs for one image (DESIGN.md's counting rule). */
    uint64_t (*flops)(const cnn_layer *layer);
    /* Window and stride seen from the output, for the receptive field. */
    void (*window)(const cnn_layer *layer, int *kh, int *kw, int *sh, int *sw);
    /* Scratch floats EACH thread needs in the forward pass for `batch` images;
     * returns 0 on overflow. */
    int (*workspace_floats)(const cnn_layer *layer, int batch, size_t *floats);
    /* in: batch images of layer->in; out: batch images of layer->out. Thread t
     * may use cnn__exec_workspace(exec, t). */
    void (*forward)(const cnn_layer *layer, const float *in, float *out, int batch,
                    const cnn_exec *exec, const cnn_layer *epilogue);
    /* Nonzero when forward can apply the next layer's in-place activation to
     * its output while that output is still in cache (the fused epilogue);
     * the driver then passes that layer as `epilogue` and skips its forward. */
    int fuses_epilogue;
    /* Activation kinds: apply the layer in place to n floats (used as an epilogue). */
    void (*apply_inplace)(const cnn_layer *layer, float *x, size_t n);
    /* Activation kinds: x[r][j] = f(x[r][j] + bias[j]) over rows x cols floats,
     * the epilogue of a layer with a bias: the results of cnn__add_bias_rows
     * and then apply_inplace, in one pass where the kind allows. */
    void (*apply_bias_inplace)(const cnn_layer *layer, float *x, size_t rows, int cols,
                               const float *bias);
    /* Parameterised kinds only (NULL otherwise): PyTorch <-> native weight order,
     * and the fans used by the initialisers. */
    void (*weights_from_pytorch)(const cnn_layer *layer, const float *src, float *dst);
    void (*weights_to_pytorch)(const cnn_layer *layer, const float *src, float *dst);
    void (*fans)(const cnn_layer *layer, double *fan_in, double *fan_out);
    /* Optional: floats of the copy of the weights that forward reads in the
     * order its loops want (0: this layer's path needs none), and the packing
     * into it. The driver keeps the copy in the net's plan and packs again
     * only when the parameters' stamp changes (weights packed once, as XNNPACK
     * does; DESIGN.md names it). */
    size_t (*packed_floats)(const cnn_layer *layer);
    void (*pack_weights)(const cnn_layer *layer, float *packed);
} cnn_layer_ops;

struct cnn_layer {
    const cnn_layer_ops *ops;
    cnn_shape in;
    cnn_shape out;
    void *config;        /* kind-specific, immutable once added */
    size_t config_size;
    cnn_params *params;  /* NULL for kinds without parameters */
    /* ops->pack_weights' copy, in the forward plan's scratch (NULL without a
     * plan or a copy), and the stamp of the parameters it was packed from (0:
     * not packed yet). Set by the forward driver only. */
    float *packed;
    uint64_t packed_stamp;
};

/* What a builder hands to the driver to append a layer. */
typedef struct cnn_layer_spec {
    const cnn_layer_ops *ops;
    cnn_shape out;
    const void *config;
    size_t config_size;
    size_t n_weights;
    size_t n_bias;
} cnn_layer_spec;

/* Driver services for builders. */
cnn_shape cnn__net_tail_shape(const cnn_net *net);
int cnn__net_layer_count(const cnn_net *net);
/* Appends a layer with zeroed parameters; all-or-nothing. */
cnn_status cnn__net_append(cnn_net *net, const cnn_layer_spec *spec, int *index);

/* Per-kind ops tables (the registry). */
extern const cnn_layer_ops cnn__conv_ops;
extern const cnn_layer_ops cnn__pool_ops;
extern const cnn_layer_ops cnn__activation_ops;
extern const cnn_layer_ops cnn__dense_ops;
extern const cnn_layer_ops cnn__softmax_ops;

#endif
