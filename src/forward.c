/* The forward driver: plans scratch for a batch size and thread count, then
 * runs the layers, fusing an activation into the layer before it when it can. */
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "checked.h"
#include "error.h"
#include "kernels/gemm.h"
#include "net.h"

#define CNN_SCRATCH_ALIGN 64

void cnn__plan_release(cnn_net *net)
{
    cnn__free(net->scratch);
    net->scratch = NULL;
    net->activations[0] = net->activations[1] = NULL;
    net->exec.workspace = NULL;
    net->exec.workspace_floats = 0;
    for (int i = 0; i < net->n_layers; i++) {
        net->layers[i].packed = NULL;
        net->layers[i].packed_stamp = 0;
    }
    net->planned_batch = 0;
    net->planned_layers = 0;
    net->planned_threads = 0;
}

int cnn__net_threads(const cnn_net *net)
{
    return net->threads_requested > 0 ? net->threads_requested : cnn__available_cores();
}

/* Sizes of one forward pass's scratch for `batch` images on `threads` threads. */
typedef struct plan_sizes {
    size_t act_floats;        /* each of the two ping-pong buffers */
    int pingpong;             /* how many of them the net needs (0..2) */
    size_t work_floats;       /* each thread's workspace, rounded to the alignment */
    size_t bytes;             /* all of it, each region aligned */
} plan_sizes;

static size_t round_up_floats(size_t floats)
{
    const size_t unit = CNN_SCRATCH_ALIGN / sizeof(float);
    return (floats + unit - 1) / unit * unit;
}

/* Floats of layer's packed weights, rounded to the alignment (0: none). */
static size_t packed_floats(const cnn_layer *layer)
{
    return layer->ops->packed_floats ? round_up_floats(layer->ops->packed_floats(layer)) : 0;
}

static cnn_status plan_sizes_for(const cnn_net *net, int batch, int threads, plan_sizes *out)
{
    size_t act = 0, work = 0, packed = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const cnn_layer *layer = &net->layers[i];
        size_t n, w = 0;
        if (!cnn__mul_size(cnn__shape_elems(layer->out), (size_t)batch, &n) ||
            !cnn__mul_size(n, sizeof(float), &w))
            return cnn__layer_fail(net, i, layer->ops->name, CNN_E_OVERFLOW,
                                   "output of %d images overflows size_t", batch);
        /* The last layer writes into the caller's output, so it needs no buffer. */
        if (i + 1 < net->n_layers && n > act)
            act = n;
        w = 0;
        if (layer->ops->workspace_floats && !layer->ops->workspace_floats(layer, batch, &w))
            return cnn__layer_fail(net, i, layer->ops->name, CNN_E_OVERFLOW,
                                   "workspace for %d images overflows size_t", batch);
        if (w > work)
            work = w;
        /* No overflow: each copy is about the size of weights that exist. */
        packed += packed_floats(layer);
    }
    out->pingpong = net->n_layers > 2 ? 2 : (net->n_layers > 1 ? 1 : 0);
    out->act_floats = round_up_floats(act);
    out->work_floats = round_up_floats(work);
    size_t acts, works, total;
    if (out->act_floats < act || out->work_floats < work ||
        !cnn__mul_size(out->act_floats, (size_t)out->pingpong, &acts) ||
        !cnn__mul_size(out->work_floats, (size_t)threads, &works) ||
        !cnn__add_size(acts, works, &total) || !cnn__add_size(total, packed, &total) ||
        !cnn__mul_size(total, sizeof(float), &total) ||
        !cnn__add_size(total, CNN_SCRATCH_ALIGN, &total) || !cnn__fits_object(total))
        return cnn__fail(net, CNN_E_OVERFLOW,
                         "cnn_forward: scratch for %d images on %d threads is too large", batch,
                         threads);
    out->bytes = total;
    return CNN_OK;
}

/* Lays the regions out in `block` (aligned up inside it). */
static void carve(cnn_net *net, void *block, const plan_sizes *sizes, int threads)
{
    uintptr_t at = ((uintptr_t)block + CNN_SCRATCH_ALIGN - 1) & ~(uintptr_t)(CNN_SCRATCH_ALIGN - 1);
    float *base = (float *)(void *)((unsigned char *)block + (at - (uintptr_t)block));
    net->activations[0] = sizes->pingpong >= 1 ? base : NULL;
    net->activations[1] = sizes->pingpong >= 2 ? base + sizes->act_floats : NULL;
    net->exec.workspace = base + sizes->act_floats * (size_t)sizes->pingpong;
    net->exec.workspace_floats = sizes->work_floats;
    float *packed = net->exec.workspace + sizes->work_floats * (size_t)threads;
    for (int i = 0; i < net->n_layers; i++) {
        cnn_layer *layer = &net->layers[i];
        const size_t floats = packed_floats(layer);
        layer->packed = floats ? packed : NULL;
        layer->packed_stamp = 0;
        packed += floats;
    }
}

/* Starts or replaces the worker threads; the old pool stays on failure. */
static cnn_status ensure_pool(cnn_net *net, int threads)
{
    if (cnn__pool_threads(net->pool) == threads)
        return CNN_OK;
    cnn_pool *pool = NULL;
    if (threads > 1 && !cnn__pool_create(&pool, threads))
        return cnn__fail(net, CNN_E_NOMEM, "cnn_forward: could not start %d threads", threads);
    cnn__pool_destroy(net->pool);
    net->pool = pool;
    return CNN_OK;
}

/* Replaces the plan only once everything new exists, so failure changes nothing. */
static cnn_status ensure_plan(cnn_net *net, int batch)
{
    int threads = cnn__net_threads(net);
    int own = net->user_workspace == NULL;
    if (net->planned_batch == batch && net->planned_layers == net->n_layers &&
        net->planned_threads == threads)
        return CNN_OK;
    plan_sizes sizes;
    cnn_status st = plan_sizes_for(net, batch, threads, &sizes);
    if (st != CNN_OK)
        return st;
    if (!own && sizes.bytes > net->user_workspace_bytes)
        return cnn__fail(net, CNN_E_BUFFER_SIZE,
                         "cnn_forward: the workspace of %zu bytes is smaller than the %zu bytes "
                         "%d images need (cnn_net_workspace_size)",
                         net->user_workspace_bytes, sizes.bytes, batch);
    void *block = own ? cnn__alloc(sizes.bytes) : net->user_workspace;
    if (!block)
        return cnn__fail(net, CNN_E_NOMEM,
                         "cnn_forward: out of memory planning %zu bytes for %d images", sizes.bytes,
                         batch);
    st = ensure_pool(net, threads);
    if (st != CNN_OK) {
        if (own)
            cnn__free(block);
        return st;
    }
    cnn__plan_release(net);
    net->scratch = own ? block : NULL;
    carve(net, block, &sizes, threads);
    net->exec.pool = net->pool;
    net->exec.threads = threads;
    net->planned_batch = batch;
    net->planned_layers = net->n_layers;
    net->planned_threads = threads;
    return CNN_OK;
}

/* Packs again the weights of layers whose parameters changed since (or were
 * never packed into this plan). A caller's block is promised untouched only
 * during a pass (cnn_net_set_workspace), and may be shared by nets run one
 * after another, so a copy in it is packed again every pass. */
static void repack_stale(cnn_net *net)
{
    const int every_pass = net->user_workspace != NULL;
    for (int i = 0; i < net->n_layers; i++) {
        cnn_layer *layer = &net->layers[i];
        if (layer->packed && (every_pass || layer->packed_stamp != layer->params->stamp)) {
            layer->ops->pack_weights(layer, layer->packed);
            layer->packed_stamp = layer->params->stamp;
        }
    }
}

static int ranges_overlap(const void *a, size_t a_bytes, const void *b, size_t b_bytes)
{
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < b0 + b_bytes && b0 < a0 + a_bytes;
}

/* The activation layer after `index` when the layer can apply it as its epilogue. */
static const cnn_layer *fusable_next(const cnn_net *net, int index)
{
    if (index + 1 >= net->n_layers || !net->layers[index].ops->fuses_epilogue)
        return NULL;
    const cnn_layer *next = &net->layers[index + 1];
    return next->ops->apply_inplace ? next : NULL;
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
    repack_stale(net);
    cnn__blas_serial_begin();
    const float *src = input;
    int next_buffer = 0; /* alternates per step, so a step never reads what it writes */
    for (int i = 0; i < net->n_layers; i++) {
        const cnn_layer *layer = &net->layers[i];
        const cnn_layer *epilogue = fusable_next(net, i);
        int last = epilogue ? i + 1 : i;
        float *dst = output;
        if (last + 1 < net->n_layers) {
            dst = net->activations[next_buffer];
            next_buffer ^= 1;
        }
        layer->ops->forward(layer, src, dst, batch, &net->exec, epilogue);
        src = dst;
        i = last;
    }
    cnn__blas_serial_end();
    return CNN_OK;
}

cnn_status cnn_net_workspace_size(const cnn_net *net, int batch, size_t *bytes)
{
    if (!net)
        return cnn__fail(NULL, CNN_E_NULL_ARG, "cnn_net_workspace_size: net is NULL");
    if (!bytes)
        return cnn__fail(net, CNN_E_NULL_ARG, "cnn_net_workspace_size: bytes is NULL");
    if (batch < 1)
        return cnn__fail(net, CNN_E_INVALID_ARG,
                         "cnn_net_workspace_size: batch %d must be at least 1", batch);
    plan_sizes sizes;
    cnn_status st = plan_sizes_for(net, batch, cnn__net_threads(net), &sizes);
    if (st == CNN_OK)
        *bytes = sizes.bytes;
    return st;
}

cnn_status cnn_net_set_workspace(cnn_net *net, void *workspace, size_t bytes)
{
    if (!net)
        return cnn__fail(NULL, CNN_E_NULL_ARG, "cnn_net_set_workspace: net is NULL");
    if (!workspace && bytes != 0)
        return cnn__fail(net, CNN_E_NULL_ARG,
                         "cnn_net_set_workspace: workspace is NULL but bytes is %zu", bytes);
    /* The next forward plans again, into the new block. */
    cnn__plan_release(net);
    net->user_workspace = workspace;
    net->user_workspace_bytes = workspace ? bytes : 0;
    return CNN_OK;
}

cnn_status cnn_net_set_threads(cnn_net *net, int threads)
{
    if (!net)
        return cnn__fail(NULL, CNN_E_NULL_ARG, "cnn_net_set_threads: net is NULL");
    if (threads < 0 || threads > CNN_MAX_THREADS)
        return cnn__fail(net, CNN_E_INVALID_ARG,
                         "cnn_net_set_threads: %d threads is outside 0..%d", threads,
                         CNN_MAX_THREADS);
    net->threads_requested = threads;
    return CNN_OK;
}

cnn_status cnn_net_get_threads(const cnn_net *net, int *threads)
{
    if (!net)
        return cnn__fail(NULL, CNN_E_NULL_ARG, "cnn_net_get_threads: net is NULL");
    if (!threads)
        return cnn__fail(net, CNN_E_NULL_ARG, "cnn_net_get_threads: threads is NULL");
    *threads = cnn__net_threads(net);
    return CNN_OK;
}
