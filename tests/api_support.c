#include "api_support.h"

#include <stdlib.h>
#include <string.h>

#include "support.h"

void api_check_failure(const char *call, int line, cnn_status got, cnn_status want,
                       const char *message, const char *const *fragments)
{
    ck_assert_msg(got == want, "line %d: %s returned %s, expected %s (message: \"%s\")", line,
                  call, cnn_status_string(got), cnn_status_string(want), message);
    ck_assert_msg(message != NULL && message[0] != '\0', "line %d: %s left no message", line,
                  call);
    for (const char *const *f = fragments; *f; f++)
        ck_assert_msg(strstr(message, *f) != NULL,
                      "line %d: message of %s is \"%s\"; it should contain \"%s\"", line, call,
                      message, *f);
}

size_t api_output_elems(const cnn_net *net)
{
    int h = 0, w = 0, c = 0;
    API_OK(cnn_net_output_shape(net, &h, &w, &c));
    return (size_t)h * (size_t)w * (size_t)c;
}

float *api_fixed_input(const cnn_net *net, int batch, size_t *count)
{
    int h = 0, w = 0, c = 0;
    API_OK(cnn_net_input_shape(net, &h, &w, &c));
    size_t n = (size_t)h * (size_t)w * (size_t)c * (size_t)batch;
    float *x = test_xmalloc(n * sizeof(float));
    test_rng rng;
    test_rng_seed(&rng, 20240607);
    test_fill_uniform(&rng, x, n, -1.0f, 1.0f);
    *count = n;
    return x;
}

/* Appends every weight and bias of the net to snap->values. */
static void take_values(const cnn_net *net, api_snapshot *snap)
{
    size_t total = 0;
    for (int i = 0; i < snap->layers; i++) {
        size_t nw = 0, nb = 0;
        if (cnn_layer_param_sizes(net, i, &nw, &nb) == CNN_OK)
            total += nw + nb;
    }
    snap->values = test_xmalloc(total * sizeof(float));
    snap->n_values = total;
    size_t at = 0;
    for (int i = 0; i < snap->layers; i++) {
        size_t nw = 0, nb = 0;
        if (cnn_layer_param_sizes(net, i, &nw, &nb) != CNN_OK)
            continue;
        API_OK(cnn_layer_get_weights(net, i, snap->values + at, nw, CNN_LAYOUT_NATIVE));
        at += nw;
        if (nb)
            API_OK(cnn_layer_get_bias(net, i, snap->values + at, nb));
        at += nb;
    }
}

void api_snapshot_take(cnn_net *net, int run_forward, api_snapshot *snap)
{
    memset(snap, 0, sizeof *snap);
    API_OK(cnn_net_layer_count(net, &snap->layers));
    ck_assert_int_le(snap->layers, API_MAX_LAYERS);
    API_OK(cnn_net_input_shape(net, &snap->input[0], &snap->input[1], &snap->input[2]));
    API_OK(cnn_net_output_shape(net, &snap->output[0], &snap->output[1], &snap->output[2]));
    for (int i = 0; i < snap->layers; i++) {
        cnn_layer_kind kind;
        API_OK(cnn_layer_kind_of(net, i, &kind));
        snap->kinds[i] = (int)kind;
        API_OK(cnn_layer_output_shape(net, i, &snap->shapes[i][0], &snap->shapes[i][1],
                                      &snap->shapes[i][2]));
    }
    API_OK(cnn_net_param_count(net, &snap->params));
    API_OK(cnn_net_flops(net, &snap->flops));
    take_values(net, snap);
    if (run_forward && snap->layers > 0) {
        size_t n_in;
        float *x = api_fixed_input(net, API_SNAPSHOT_BATCH, &n_in);
        snap->n_forward = api_output_elems(net) * API_SNAPSHOT_BATCH;
        snap->forward = test_xmalloc(snap->n_forward * sizeof(float));
        API_OK(cnn_forward(net, x, API_SNAPSHOT_BATCH, snap->forward));
        free(x);
    }
}

void api_snapshot_assert_same(cnn_net *net, const api_snapshot *before, const char *after_what)
{
    api_snapshot now;
    api_snapshot_take(net, before->forward != NULL, &now);
    ck_assert_msg(now.layers == before->layers, "after %s: %d layers, before %d", after_what,
                  now.layers, before->layers);
    ck_assert_msg(memcmp(now.input, before->input, sizeof now.input) == 0 &&
                      memcmp(now.output, before->output, sizeof now.output) == 0,
                  "after %s: the net's input or output shape changed", after_what);
    for (int i = 0; i < now.layers; i++)
        ck_assert_msg(now.kinds[i] == before->kinds[i] &&
                          memcmp(now.shapes[i], before->shapes[i], sizeof now.shapes[i]) == 0,
                      "after %s: layer %d changed kind or shape", after_what, i);
    ck_assert_msg(now.params == before->params && now.flops == before->flops,
                  "after %s: parameter or FLOP totals changed", after_what);
    ck_assert_msg(now.n_values == before->n_values &&
                      memcmp(now.values, before->values, now.n_values * sizeof(float)) == 0,
                  "after %s: weights or biases changed", after_what);
    ck_assert_msg(now.n_forward == before->n_forward &&
                      (now.n_forward == 0 ||
                       memcmp(now.forward, before->forward, now.n_forward * sizeof(float)) == 0),
                  "after %s: the forward output on the fixed input changed", after_what);
    api_snapshot_free(&now);
}

void api_snapshot_free(api_snapshot *snap)
{
    free(snap->values);
    free(snap->forward);
    snap->values = snap->forward = NULL;
}

cnn_net *api_net_tail5(void)
{
    cnn_net *net = NULL;
    API_OK(cnn_net_create(&net, 9, 9, 2));
    cnn_conv_desc conv = CNN_CONV_DESC_INIT;
    conv.filters = 3;
    conv.bias = 0;
    API_OK(cnn_layer_add_conv(net, &conv, NULL));
    cnn_pool_desc pool = CNN_POOL_DESC_INIT;
    pool.window_h = pool.window_w = 3;
    pool.stride_h = pool.stride_w = 1;
    API_OK(cnn_layer_add_pool(net, &pool, NULL));
    API_OK(cnn_net_init_params(net, CNN_INIT_HE_UNIFORM, 11));
    return net;
}

cnn_net *api_net_full(void)
{
    cnn_net *net = api_net_tail5();
    API_OK(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL));
    API_OK(cnn_layer_add_dense(net, 4, 1, NULL));
    API_OK(cnn_layer_add_softmax(net, NULL));
    API_OK(cnn_net_init_params(net, CNN_INIT_HE_UNIFORM, 12));
    const float bias[4] = { 0.25f, -0.5f, 0.125f, 1.0f };
    API_OK(cnn_layer_set_bias(net, 3, bias, 4));
    return net;
}

cnn_net *api_lenet(void)
{
    cnn_net *net = NULL;
    API_OK(cnn_net_create(&net, 28, 28, 1));
    cnn_conv_desc conv = CNN_CONV_DESC_INIT;
    cnn_pool_desc pool = CNN_POOL_DESC_INIT; /* max, 2x2, stride 2 */
    conv.filters = 6;
    conv.kernel_h = conv.kernel_w = 5;
    conv.pad_h = conv.pad_w = 2;
    API_OK(cnn_layer_add_conv(net, &conv, NULL));
    API_OK(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL));
    API_OK(cnn_layer_add_pool(net, &pool, NULL));
    conv.filters = 16;
    conv.pad_h = conv.pad_w = 0;
    API_OK(cnn_layer_add_conv(net, &conv, NULL));
    API_OK(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL));
    API_OK(cnn_layer_add_pool(net, &pool, NULL));
    API_OK(cnn_layer_add_dense(net, 120, 1, NULL));
    API_OK(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL));
    API_OK(cnn_layer_add_dense(net, 84, 1, NULL));
    API_OK(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL));
    API_OK(cnn_layer_add_dense(net, 10, 1, NULL));
    API_OK(cnn_layer_add_softmax(net, NULL));
    return net;
}
