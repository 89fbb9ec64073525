/* Parameter sizes, weight layouts (native and PyTorch) and biases. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"
#include "support.h"

START_TEST(param_sizes)
{
    cnn_net *net = api_lenet();
    /* layer, weights, biases: 6x5x5x1, 16x5x5x6, 120x400, 84x120, 10x84 */
    const size_t expected[][3] = {
        { 0, 150, 6 }, { 3, 2400, 16 }, { 6, 48000, 120 }, { 8, 10080, 84 }, { 10, 840, 10 },
    };
    for (size_t k = 0; k < sizeof expected / sizeof expected[0]; k++) {
        size_t nw = 0, nb = 0, total = 0;
        int layer = (int)expected[k][0];
        API_OK(cnn_layer_param_sizes(net, layer, &nw, &nb));
        ck_assert_msg(nw == expected[k][1] && nb == expected[k][2],
                      "layer %d: %zu weights, %zu biases", layer, nw, nb);
        API_OK(cnn_layer_param_count(net, layer, &total));
        ck_assert_uint_eq(total, nw + nb);
    }
    size_t nb = 7;
    API_OK(cnn_layer_param_sizes(net, 3, NULL, &nb)); /* either out-pointer may be NULL */
    ck_assert_uint_eq(nb, 16);
    API_OK(cnn_layer_param_sizes(net, 3, NULL, NULL));
    cnn_net_destroy(net);

    /* A conv built without bias: bias count 0, its parameters are its weights. */
    cnn_net *plain = api_net_tail5();
    size_t nw = 0, total = 0;
    nb = 7;
    API_OK(cnn_layer_param_sizes(plain, 0, &nw, &nb));
    ck_assert_uint_eq(nw, 3 * 3 * 3 * 2);
    ck_assert_uint_eq(nb, 0);
    API_OK(cnn_layer_param_count(plain, 0, &total));
    ck_assert_uint_eq(total, nw);
    cnn_net_destroy(plain);
}
END_TEST

static void fill_distinct(float *x, size_t n, uint64_t seed)
{
    test_rng rng;
    test_rng_seed(&rng, seed);
    test_fill_uniform(&rng, x, n, -2.0f, 2.0f);
}

/* Conv with Cout 3, Cin 2, a 2x3 kernel: every axis has a different extent. */
enum { CO = 3, CI = 2, KH = 2, KW = 3, CONV_W = CO * CI * KH * KW };

static size_t ohwi(size_t o, size_t y, size_t x, size_t i) { return ((o * KH + y) * KW + x) * CI + i; }
static size_t oihw(size_t o, size_t i, size_t y, size_t x) { return ((o * CI + i) * KH + y) * KW + x; }

START_TEST(conv_weight_layouts)
{
    cnn_net *net = NULL;
    API_OK(cnn_net_create(&net, 4, 5, CI));
    cnn_conv_desc d = CNN_CONV_DESC_INIT;
    d.filters = CO;
    d.kernel_h = KH;
    d.kernel_w = KW;
    API_OK(cnn_layer_add_conv(net, &d, NULL));
    float native[CONV_W], torch[CONV_W], back[CONV_W];

    /* A single 1 at OIHW (o=2, i=1, y=1, x=0), flat index ((2*2+1)*2+1)*3+0 = 33,
     * lands at OHWI flat index ((2*2+1)*3+0)*2+1 = 31 and nowhere else. */
    memset(torch, 0, sizeof torch);
    torch[33] = 1.0f;
    API_OK(cnn_layer_set_weights(net, 0, torch, CONV_W, CNN_LAYOUT_PYTORCH));
    API_OK(cnn_layer_get_weights(net, 0, native, CONV_W, CNN_LAYOUT_NATIVE));
    for (size_t j = 0; j < CONV_W; j++)
        ck_assert_msg(native[j] == (j == 31 ? 1.0f : 0.0f), "native[%zu] = %g", j,
                      (double)native[j]);

    /* Every element moves by the layouts' definitions, both ways. */
    fill_distinct(native, CONV_W, 1);
    API_OK(cnn_layer_set_weights(net, 0, native, CONV_W, CNN_LAYOUT_NATIVE));
    API_OK(cnn_layer_get_weights(net, 0, back, CONV_W, CNN_LAYOUT_NATIVE));
    ck_assert_mem_eq(back, native, sizeof native);
    API_OK(cnn_layer_get_weights(net, 0, torch, CONV_W, CNN_LAYOUT_PYTORCH));
    for (size_t o = 0; o < CO; o++)
        for (size_t i = 0; i < CI; i++)
            for (size_t y = 0; y < KH; y++)
                for (size_t x = 0; x < KW; x++)
                    ck_assert_msg(torch[oihw(o, i, y, x)] == native[ohwi(o, y, x, i)],
                                  "(o %zu, i %zu, y %zu, x %zu) misplaced", o, i, y, x);
    fill_distinct(torch, CONV_W, 2);
    API_OK(cnn_layer_set_weights(net, 0, torch, CONV_W, CNN_LAYOUT_PYTORCH));
    API_OK(cnn_layer_get_weights(net, 0, back, CONV_W, CNN_LAYOUT_PYTORCH));
    ck_assert_mem_eq(back, torch, sizeof torch);
    API_OK(cnn_layer_get_weights(net, 0, native, CONV_W, CNN_LAYOUT_NATIVE));
    ck_assert_float_eq(native[ohwi(1, 1, 2, 0)], torch[oihw(1, 0, 1, 2)]);
    cnn_net_destroy(net);
}
END_TEST

/* Dense after a 2x3x4 map: PyTorch numbers input (c, y, x) as c*6 + y*3 + x
 * (NCHW flatten); the native order is (y*3 + x)*4 + c (NHWC). */
START_TEST(dense_weight_layouts)
{
    enum { H = 2, W = 3, C = 4, IN = H * W * C, UNITS = 5, N = IN * UNITS };
    cnn_net *net = NULL;
    API_OK(cnn_net_create(&net, H, W, C));
    API_OK(cnn_layer_add_dense(net, UNITS, 1, NULL));
    float torch[N], native[N], back[N];
    /* unit 3, input (c=2, y=1, x=0): PyTorch 3*24 + 2*6 + 3 = 87, native 3*24 + 3*4 + 2 = 86 */
    memset(torch, 0, sizeof torch);
    torch[87] = -1.5f;
    API_OK(cnn_layer_set_weights(net, 0, torch, N, CNN_LAYOUT_PYTORCH));
    API_OK(cnn_layer_get_weights(net, 0, native, N, CNN_LAYOUT_NATIVE));
    for (size_t j = 0; j < N; j++)
        ck_assert_msg(native[j] == (j == 86 ? -1.5f : 0.0f), "native[%zu] = %g", j,
                      (double)native[j]);

    fill_distinct(native, N, 3);
    API_OK(cnn_layer_set_weights(net, 0, native, N, CNN_LAYOUT_NATIVE));
    API_OK(cnn_layer_get_weights(net, 0, torch, N, CNN_LAYOUT_PYTORCH));
    for (size_t u = 0; u < UNITS; u++)
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < W; x++)
                for (size_t c = 0; c < C; c++)
                    ck_assert(torch[u * IN + (c * H + y) * W + x] ==
                              native[u * IN + (y * W + x) * C + c]);
    API_OK(cnn_layer_set_weights(net, 0, torch, N, CNN_LAYOUT_PYTORCH));
    API_OK(cnn_layer_get_weights(net, 0, back, N, CNN_LAYOUT_NATIVE));
    ck_assert_mem_eq(back, native, sizeof native);
    cnn_net_destroy(net);

    /* After a 1x1xC input both orders are the same. */
    API_OK(cnn_net_create(&net, 1, 1, 6));
    API_OK(cnn_layer_add_dense(net, 2, 0, NULL));
    float w[12], t[12];
    fill_distinct(w, 12, 4);
    API_OK(cnn_layer_set_weights(net, 0, w, 12, CNN_LAYOUT_NATIVE));
    API_OK(cnn_layer_get_weights(net, 0, t, 12, CNN_LAYOUT_PYTORCH));
    ck_assert_mem_eq(t, w, sizeof w);
    cnn_net_destroy(net);
}
END_TEST

START_TEST(bias_round_trip)
{
    cnn_net *net = api_lenet();
    /* Parameters start at zero. */
    float b[16], back[16];
    for (int i = 0; i < 16; i++)
        back[i] = 1.0f;
    API_OK(cnn_layer_get_bias(net, 3, back, 16));
    for (int i = 0; i < 16; i++)
        ck_assert_float_eq(back[i], 0.0f);
    fill_distinct(b, 16, 5);
    API_OK(cnn_layer_set_bias(net, 3, b, 16));
    API_OK(cnn_layer_get_bias(net, 3, back, 16));
    ck_assert_mem_eq(back, b, sizeof b);
    /* Biases are separate from weights and from other layers. */
    float w[2400];
    API_OK(cnn_layer_get_weights(net, 3, w, 2400, CNN_LAYOUT_NATIVE));
    for (int i = 0; i < 2400; i++)
        ck_assert_float_eq(w[i], 0.0f);
    API_OK(cnn_layer_get_bias(net, 0, back, 6));
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(back[i], 0.0f);
    API_OK(cnn_layer_set_bias(net, 10, b, 10));
    API_OK(cnn_layer_get_bias(net, 10, back, 10));
    ck_assert_mem_eq(back, b, 10 * sizeof(float));
    cnn_net_destroy(net);
}
END_TEST

TCase *api_params_tcase(void)
{
    TCase *tc = tcase_create("params");
    tcase_add_test(tc, param_sizes);
    tcase_add_test(tc, conv_weight_layouts);
    tcase_add_test(tc, dense_weight_layouts);
    tcase_add_test(tc, bias_round_trip);
    return tc;
}
