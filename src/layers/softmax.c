/* Softmax over the channels of each pixel (the last NHWC axis). */
#include <math.h>

#include "builder.h"

typedef struct softmax_job {
    const float *in;
    float *out;
    size_t channels;
} softmax_job;

/* Subtracting the maximum keeps expf finite; a NaN anywhere in a pixel makes
 * the maximum (or the sum) NaN, so the whole pixel becomes NaN. */
static void softmax_pixels(void *raw, size_t begin, size_t end, int thread)
{
    const softmax_job *job = raw;
    const size_t c = job->channels;
    (void)thread;
    for (size_t p = begin; p < end; p++) {
        const float *x = job->in + p * c;
        float *y = job->out + p * c;
        float max = x[0];
        for (size_t i = 1; i < c; i++)
            if (x[i] > max || x[i] != x[i])
                max = x[i];
        float sum = 0.0f;
        for (size_t i = 0; i < c; i++) {
            y[i] = expf(x[i] - max);
            sum += y[i];
        }
        for (size_t i = 0; i < c; i++)
            y[i] /= sum;
    }
}

static void softmax_forward(const cnn_layer *layer, const float *in, float *out, int batch,
                            const cnn_exec *exec, const cnn_layer *epilogue)
{
    (void)epilogue;
    const size_t c = (size_t)layer->out.c;
    const size_t pixels = (size_t)batch * (size_t)layer->out.h * (size_t)layer->out.w;
    softmax_job job = { in, out, c };
    cnn__parallel_for(exec, pixels, (uint64_t)pixels * c * 20u, softmax_pixels, &job);
}

static uint64_t softmax_flops(const cnn_layer *layer)
{
    return (uint64_t)layer->out.h * (uint64_t)layer->out.w * (uint64_t)layer->out.c;
}

static void softmax_window(const cnn_layer *layer, int *kh, int *kw, int *sh, int *sw)
{
    (void)layer;
    *kh = *kw = *sh = *sw = 1;
}

const cnn_layer_ops cnn__softmax_ops = {
    .kind = CNN_LAYER_SOFTMAX,
    .name = "softmax",
    .flops = softmax_flops,
    .window = softmax_window,
    .forward = softmax_forward,
};

cnn_status cnn_layer_add_softmax(cnn_net *net, int *index)
{
    cnn_status st = cnn__builder_net(net, "cnn_layer_add_softmax");
    if (st != CNN_OK)
        return st;
    char unused = 0;
    cnn_layer_spec spec = { &cnn__softmax_ops, cnn__net_tail_shape(net), &unused, sizeof unused,
                            0, 0 };
    return cnn__net_append(net, &spec, index);
}
