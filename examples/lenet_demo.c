/* The main demo: a LeNet-style network, initialised, run on a batch, and
 * described layer by layer; then the notes' point about parameter sharing. */
#include <stdio.h>
#include <stdlib.h>

#include <cnn.h>

#define CHECK(call)                                                                     \
    do {                                                                                \
        cnn_status check_status_ = (call);                                              \
        if (check_status_ != CNN_OK) {                                                  \
            fprintf(stderr, "%s failed: %s\n  %s\n", #call,                             \
                    cnn_status_string(check_status_), cnn_net_last_error(net));          \
            cnn_net_destroy(net);                                                       \
            return 1;                                                                   \
        }                                                                               \
    } while (0)

static cnn_status add_conv(cnn_net *net, int filters, int kernel, int pad)
{
    cnn_conv_desc conv = CNN_CONV_DESC_INIT;
    conv.filters = filters;
    conv.kernel_h = conv.kernel_w = kernel;
    conv.pad_h = conv.pad_w = pad;
    return cnn_layer_add_conv(net, &conv, NULL);
}

static cnn_status add_maxpool(cnn_net *net)
{
    cnn_pool_desc pool = CNN_POOL_DESC_INIT; /* 2x2 max, stride 2 */
    return cnn_layer_add_pool(net, &pool, NULL);
}

static int print_layers(const cnn_net *net)
{
    int layers;
    if (cnn_net_layer_count(net, &layers) != CNN_OK)
        return 1;
    printf("%-5s %-10s %-12s %10s %12s %10s\n", "layer", "kind", "output", "params", "FLOPs",
           "recept.");
    for (int i = 0; i < layers; i++) {
        cnn_layer_kind kind;
        int h, w, c, rf_h, rf_w;
        size_t params;
        uint64_t flops;
        if (cnn_layer_kind_of(net, i, &kind) || cnn_layer_output_shape(net, i, &h, &w, &c) ||
            cnn_layer_param_count(net, i, &params) || cnn_layer_flops(net, i, &flops) ||
            cnn_layer_receptive_field(net, i, &rf_h, &rf_w))
            return 1;
        char shape[32], field[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", h, w, c);
        snprintf(field, sizeof field, "%dx%d", rf_h, rf_w);
        printf("%-5d %-10s %-12s %10zu %12llu %10s\n", i, cnn_layer_kind_name(kind), shape,
               params, (unsigned long long)flops, field);
    }
    size_t total_params;
    uint64_t total_flops;
    if (cnn_net_param_count(net, &total_params) || cnn_net_flops(net, &total_flops))
        return 1;
    printf("%-5s %-10s %-12s %10zu %12llu\n", "total", "", "", total_params,
           (unsigned long long)total_flops);
    return 0;
}

/* Parameters one layer of each kind needs on a 200x200x3 image. */
static int parameter_sharing(void)
{
    cnn_net *net = NULL;
    size_t dense_params, conv_params;
    CHECK(cnn_net_create(&net, 200, 200, 3));
    CHECK(cnn_layer_add_dense(net, 100, 1, NULL));
    CHECK(cnn_layer_param_count(net, 0, &dense_params));
    cnn_net_destroy(net);
    net = NULL;
    CHECK(cnn_net_create(&net, 200, 200, 3));
    CHECK(add_conv(net, 16, 5, 0));
    CHECK(cnn_layer_param_count(net, 0, &conv_params));
    cnn_net_destroy(net);
    printf("\nOn a 200x200x3 image:\n");
    printf("  a dense layer of 100 units needs %zu parameters (200*200*3*100 weights + 100 biases)\n",
           dense_params);
    printf("  sixteen 5x5x3 kernels need %zu parameters (16*5*5*3 weights + 16 biases),\n",
           conv_params);
    printf("  shared across every position of the image.\n");
    return 0;
}

int main(void)
{
    enum { BATCH = 8, CLASSES = 10 };
    cnn_net *net = NULL;
    printf("libcnn %s (header %d, library %d)\n\n", cnn_version_string(), CNN_VERSION_NUMBER,
           cnn_version());

    /* LeNet-5 on 28x28 grey images. */
    CHECK(cnn_net_create(&net, 28, 28, 1));
    CHECK(add_conv(net, 6, 5, 2));
    CHECK(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL));
    CHECK(add_maxpool(net));
    CHECK(add_conv(net, 16, 5, 0));
    CHECK(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL));
    CHECK(add_maxpool(net));
    CHECK(cnn_layer_add_dense(net, 120, 1, NULL));
    CHECK(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL));
    CHECK(cnn_layer_add_dense(net, 84, 1, NULL));
    CHECK(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL));
    CHECK(cnn_layer_add_dense(net, CLASSES, 1, NULL));
    CHECK(cnn_layer_add_softmax(net, NULL));
    CHECK(cnn_net_init_params(net, CNN_INIT_HE_NORMAL, 42));

    if (print_layers(net)) {
        fprintf(stderr, "introspection failed: %s\n", cnn_net_last_error(net));
        cnn_net_destroy(net);
        return 1;
    }

    static float images[BATCH * 28 * 28], probs[BATCH * CLASSES];
    unsigned seed = 1;
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++) {
        seed = seed * 1103515245u + 12345u;
        images[i] = (float)((seed >> 16) & 0x7fff) / 32767.0f;
    }
    CHECK(cnn_forward(net, images, BATCH, probs));
    printf("\nClass probabilities of a batch of %d random images (untrained net):\n", BATCH);
    for (int n = 0; n < BATCH; n++) {
        int best = 0;
        float sum = 0.0f;
        for (int k = 0; k < CLASSES; k++) {
            sum += probs[n * CLASSES + k];
            if (probs[n * CLASSES + k] > probs[n * CLASSES + best])
                best = k;
        }
        printf("  image %d: most likely class %d (p = %.3f), probabilities sum to %.4f\n", n,
               best, (double)probs[n * CLASSES + best], (double)sum);
    }
    cnn_net_destroy(net);
    return parameter_sharing();
}
