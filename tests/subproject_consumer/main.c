/* Runs a small dense net from libcnn built as a subproject and checks it
 * against the arithmetic written out here. Exit status 0: every check held. */
#include <cnn.h>

#include <stdio.h>

static int ok(cnn_status status, const cnn_net *net, const char *what)
{
    if (status != CNN_OK)
        fprintf(stderr, "subproject_consumer: %s: %s (%s)\n", what, cnn_status_string(status),
                cnn_net_last_error(net));
    return status == CNN_OK;
}

int main(void)
{
    /* 1x1x3 input -> dense of 2 units: out[u] = sum_i w[u][i] * in[i] + b[u]. */
    const float weights[2 * 3] = {1.0f, 2.0f, 3.0f, -1.0f, 0.5f, 0.25f};
    const float bias[2] = {0.5f, -2.0f};
    const float in[3] = {1.0f, -2.0f, 4.0f};
    float want[2];
    float out[2] = {0.0f, 0.0f};
    cnn_net *net = NULL;
    int failed = 0;

    for (int u = 0; u < 2; u++) {
        want[u] = bias[u];
        for (int i = 0; i < 3; i++)
            want[u] += weights[u * 3 + i] * in[i];
    }
    if (cnn_version() != CNN_VERSION_NUMBER) {
        fprintf(stderr, "subproject_consumer: cnn_version() %d != CNN_VERSION_NUMBER %d\n",
                cnn_version(), CNN_VERSION_NUMBER);
        failed = 1;
    }
    if (!ok(cnn_net_create(&net, 1, 1, 3), NULL, "create"))
        return 1;
    if (ok(cnn_layer_add_dense(net, 2, 1, NULL), net, "add dense") &&
        ok(cnn_layer_set_weights(net, 0, weights, 6, CNN_LAYOUT_NATIVE), net, "set weights") &&
        ok(cnn_layer_set_bias(net, 0, bias, 2), net, "set bias") &&
        ok(cnn_forward(net, in, 1, out), net, "forward")) {
        /* Small integers and halves: float arithmetic is exact here. */
        for (int u = 0; u < 2; u++) {
            if (out[u] != want[u]) {
                fprintf(stderr, "subproject_consumer: out[%d] = %g, expected %g\n", u,
                        (double)out[u], (double)want[u]);
                failed = 1;
            }
        }
    } else {
        failed = 1;
    }
    cnn_net_destroy(net);
    if (!failed)
        printf("subproject_consumer: OK (%g, %g)\n", (double)out[0], (double)out[1]);
    return failed;
}
