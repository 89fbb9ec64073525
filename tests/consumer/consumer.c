/* A program outside the source tree, built only from the installed header and
 * library (found with pkg-config). It checks that the library it runs against
 * is the one its header describes and that a small net computes what loops
 * written here compute. Exit status 0 means every check held. */
#include <cnn.h>

#include <math.h> /* INFINITY only: the program must link without -lm of its own */
#include <stdio.h>
#include <string.h>

#define BATCH 2
#define SIDE 4 /* input is SIDE x SIDE x CHANNELS */
#define CHANNELS 3
#define POOLED (SIDE / 2)

static int failures;

static void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "consumer: FAILED: %s\n", what);
        failures++;
    }
}

static int call_ok(cnn_status status, const cnn_net *net, const char *what)
{
    if (status == CNN_OK)
        return 1;
    fprintf(stderr, "consumer: %s: %s (%s)\n", what, cnn_status_string(status),
            cnn_net_last_error(net));
    failures++;
    return 0;
}

static void check_version(void)
{
    char header_version[32];
    snprintf(header_version, sizeof header_version, "%d.%d.%d", CNN_VERSION_MAJOR,
             CNN_VERSION_MINOR, CNN_VERSION_PATCH);
    expect(cnn_version() == CNN_VERSION_NUMBER, "cnn_version() == CNN_VERSION_NUMBER");
    expect(strcmp(cnn_version_string(), header_version) == 0,
           "cnn_version_string() matches the header's version macros");
}

/* Exactly representable values in [-1, 1], varying from position to position. */
static float input_value(size_t i) { return (float)((int)((i * 37u) % 17u) - 8) / 8.0f; }

/* identity 1x1 conv + bias -> ReLU -> 2x2 max pool, written out as plain loops. */
static float reference(const float *in, const float *bias, int n, int y, int x, int c)
{
    float best = -INFINITY;
    for (int dy = 0; dy < 2; dy++) {
        for (int dx = 0; dx < 2; dx++) {
            size_t at = (((size_t)n * SIDE + (size_t)(2 * y + dy)) * SIDE + (size_t)(2 * x + dx)) *
                            CHANNELS + (size_t)c;
            float v = in[at] + bias[c];
            v = v > 0.0f ? v : 0.0f;
            best = v > best ? v : best;
        }
    }
    return best;
}

static void check_forward(void)
{
    static float in[BATCH * SIDE * SIDE * CHANNELS];
    static float out[BATCH * POOLED * POOLED * CHANNELS];
    const float bias[CHANNELS] = {0.5f, -0.25f, 0.0f};
    float weights[CHANNELS * CHANNELS]; /* OHWI with H = W = 1: [out][in] */
    cnn_net *net = NULL;
    cnn_conv_desc conv = CNN_CONV_DESC_INIT;
    cnn_pool_desc pool;
    int oh = 0, ow = 0, oc = 0;

    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        in[i] = input_value(i);
    for (int o = 0; o < CHANNELS; o++)
        for (int i = 0; i < CHANNELS; i++)
            weights[o * CHANNELS + i] = o == i ? 1.0f : 0.0f;
    conv.filters = CHANNELS;
    conv.kernel_h = conv.kernel_w = 1;
    cnn_pool_desc_init(&pool);

    if (!call_ok(cnn_net_create(&net, SIDE, SIDE, CHANNELS), NULL, "cnn_net_create"))
        return;
    if (call_ok(cnn_layer_add_conv(net, &conv, NULL), net, "add conv") &&
        call_ok(cnn_layer_set_weights(net, 0, weights, CHANNELS * CHANNELS, CNN_LAYOUT_NATIVE),
                net, "set weights") &&
        call_ok(cnn_layer_set_bias(net, 0, bias, CHANNELS), net, "set bias") &&
        call_ok(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL), net, "add relu") &&
        call_ok(cnn_layer_add_pool(net, &pool, NULL), net, "add pool") &&
        call_ok(cnn_net_output_shape(net, &oh, &ow, &oc), net, "output shape")) {
        expect(oh == POOLED && ow == POOLED && oc == CHANNELS, "output shape is 2x2x3");
        if (call_ok(cnn_forward(net, in, BATCH, out), net, "cnn_forward")) {
            size_t at = 0;
            for (int n = 0; n < BATCH; n++)
                for (int y = 0; y < POOLED; y++)
                    for (int x = 0; x < POOLED; x++)
                        for (int c = 0; c < CHANNELS; c++, at++) {
                            float want = reference(in, bias, n, y, x, c);
                            float diff = out[at] > want ? out[at] - want : want - out[at];
                            if (!(diff <= 1e-6f)) {
                                fprintf(stderr, "consumer: out[%zu] = %g, expected %g\n", at,
                                        (double)out[at], (double)want);
                                failures++;
                            }
                        }
        }
    }
    cnn_net_destroy(net);
}

int main(void)
{
    check_version();
    check_forward();
    if (failures) {
        fprintf(stderr, "consumer: %d check(s) failed\n", failures);
        return 1;
    }
    printf("consumer: libcnn %s OK\n", cnn_version_string());
    return 0;
}
