/* Refusals: each documented error gives its status, a message naming the layer
 * (index and kind) and the reason, and leaves the net exactly as it was. */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"
#include "support.h"

START_TEST(create_refusals)
{
    API_EXPECT_FAIL(CNN_E_NULL_ARG, NULL, cnn_net_create(NULL, 2, 2, 2), "cnn_net_create",
                    "NULL");
    const int bad[][3] = { { 0, 5, 5 }, { 5, -1, 5 }, { 5, 5, 0 }, { INT_MIN, 1, 1 } };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cnn_net *net = (cnn_net *)&bad; /* any non-NULL value: it must be reset */
        API_EXPECT_FAIL(CNN_E_INVALID_ARG, NULL, cnn_net_create(&net, bad[k][0], bad[k][1],
                                                                 bad[k][2]),
                        "cnn_net_create");
        ck_assert_ptr_null(net);
    }
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, NULL, cnn_net_create(&(cnn_net *){ NULL }, 5, -1, 5),
                    "5x-1x5");
    /* 65536 * 65536 elements do not fit the int that sizes a tensor. */
    cnn_net *net = (cnn_net *)&bad;
    API_EXPECT_FAIL(CNN_E_OVERFLOW, NULL, cnn_net_create(&net, 65536, 65536, 1),
                    "cnn_net_create", "65536x65536x1");
    ck_assert_ptr_null(net);
}
END_TEST

/* A net's message belongs to that net; failures without a net go to the thread's. */
START_TEST(messages_are_per_net)
{
    cnn_net *a = api_net_tail5(), *b = api_net_tail5();
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, a, cnn_layer_add_dense(a, 0, 1, NULL), "layer 2 (dense)");
    char kept[256];
    strncpy(kept, cnn_net_last_error(a), sizeof kept - 1);
    kept[sizeof kept - 1] = '\0';
    ck_assert_str_eq(cnn_net_last_error(b), "");
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, NULL, cnn_net_create(&(cnn_net *){ NULL }, 0, 1, 1),
                    "cnn_net_create");
    API_EXPECT_FAIL(CNN_E_INDEX, b, cnn_layer_kind_of(b, 7, &(cnn_layer_kind){ 0 }), "index 7");
    ck_assert_str_eq(cnn_net_last_error(a), kept);
    ck_assert_ptr_nonnull(cnn_net_last_error(NULL));
    cnn_net_destroy(a);
    cnn_net_destroy(b);
}
END_TEST

/* Applies a modification to a default conv descriptor. */
typedef struct conv_case {
    int filters, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
    cnn_status want;
    const char *reason;
} conv_case;

START_TEST(conv_refusals)
{
    cnn_net *net = api_net_tail5(); /* 2 layers, tail 5x5x3 */
    api_snapshot before;
    api_snapshot_take(net, 1, &before);
    const conv_case cases[] = {
        { 0, 3, 3, 1, 1, 0, 0, CNN_E_INVALID_ARG, "filters" },
        { -2, 3, 3, 1, 1, 0, 0, CNN_E_INVALID_ARG, "filters" },
        { 2, 0, 3, 1, 1, 0, 0, CNN_E_INVALID_ARG, "kernel" },
        { 2, 3, -1, 1, 1, 0, 0, CNN_E_INVALID_ARG, "kernel" },
        { 2, 3, 3, 0, 1, 0, 0, CNN_E_INVALID_ARG, "stride" },
        { 2, 3, 3, 1, -3, 0, 0, CNN_E_INVALID_ARG, "stride" },
        { 2, 3, 3, 1, 1, -1, 0, CNN_E_INVALID_ARG, "padding" },
        { 2, 3, 3, 1, 1, 0, -2, CNN_E_INVALID_ARG, "padding" },
        { 2, 6, 3, 1, 1, 0, 0, CNN_E_SHAPE, "larger than" },
        { 2, 3, 8, 1, 1, 1, 1, CNN_E_SHAPE, "larger than" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const conv_case *c = &cases[k];
        cnn_conv_desc d = CNN_CONV_DESC_INIT;
        d.filters = c->filters;
        d.kernel_h = c->kernel_h;
        d.kernel_w = c->kernel_w;
        d.stride_h = c->stride_h;
        d.stride_w = c->stride_w;
        d.pad_h = c->pad_h;
        d.pad_w = c->pad_w;
        API_EXPECT_FAIL(c->want, net, cnn_layer_add_conv(net, &d, NULL), "layer 2 (conv)",
                        c->reason);
        api_snapshot_assert_same(net, &before, "a refused conv");
    }
    /* The exact form of the shape message, for a 7x7 kernel on the 5x5 tail. */
    cnn_conv_desc d = CNN_CONV_DESC_INIT;
    d.filters = 1;
    d.kernel_h = d.kernel_w = 7;
    ck_assert_int_eq(cnn_layer_add_conv(net, &d, NULL), CNN_E_SHAPE);
    ck_assert_str_eq(cnn_net_last_error(net),
                     "layer 2 (conv): 7x7 kernel is larger than the 5x5 padded input");
    api_snapshot_assert_same(net, &before, "a 7x7 conv on a 5x5 input");

    d.struct_size = sizeof d + 8;
    API_EXPECT_FAIL(CNN_E_STRUCT_SIZE, net, cnn_layer_add_conv(net, &d, NULL), "layer 2 (conv)",
                    "struct_size");
    d.struct_size = sizeof d - sizeof(int);
    API_EXPECT_FAIL(CNN_E_STRUCT_SIZE, net, cnn_layer_add_conv(net, &d, NULL), "struct_size");
    d.struct_size = 0;
    API_EXPECT_FAIL(CNN_E_STRUCT_SIZE, net, cnn_layer_add_conv(net, &d, NULL), "struct_size");
    API_EXPECT_FAIL(CNN_E_NULL_ARG, net, cnn_layer_add_conv(net, NULL, NULL), "layer 2 (conv)",
                    "descriptor");
    API_EXPECT_FAIL(CNN_E_NULL_ARG, NULL, cnn_layer_add_conv(NULL, &d, NULL),
                    "cnn_layer_add_conv", "NULL");
    api_snapshot_assert_same(net, &before, "refused conv descriptors");

    /* The boundary is accepted: a 7x7 kernel fits the 5x5 input padded by 1. */
    d.struct_size = sizeof d;
    d.pad_h = d.pad_w = 1;
    int index = -1;
    API_OK(cnn_layer_add_conv(net, &d, &index));
    ck_assert_int_eq(index, 2);
    int h = 0, w = 0;
    API_OK(cnn_net_output_shape(net, &h, &w, NULL));
    ck_assert(h == 1 && w == 1);
    api_snapshot_free(&before);
    cnn_net_destroy(net);
}
END_TEST

typedef struct pool_case {
    int kind, window_h, window_w, stride_h, stride_w, pad_h, pad_w;
    cnn_status want;
    const char *reason;
} pool_case;

START_TEST(pool_refusals)
{
    cnn_net *net = api_net_tail5();
    api_snapshot before;
    api_snapshot_take(net, 1, &before);
    const pool_case cases[] = {
        { 7, 2, 2, 2, 2, 0, 0, CNN_E_INVALID_ARG, "kind 7" },
        { -1, 2, 2, 2, 2, 0, 0, CNN_E_INVALID_ARG, "kind -1" },
        { CNN_POOL_MAX, 0, 2, 2, 2, 0, 0, CNN_E_INVALID_ARG, "window" },
        { CNN_POOL_AVG, 2, -2, 2, 2, 0, 0, CNN_E_INVALID_ARG, "window" },
        { CNN_POOL_MAX, 2, 2, 0, 2, 0, 0, CNN_E_INVALID_ARG, "stride" },
        { CNN_POOL_MAX, 2, 2, 2, -1, 0, 0, CNN_E_INVALID_ARG, "stride" },
        { CNN_POOL_MAX, 2, 2, 2, 2, -1, 0, CNN_E_INVALID_ARG, "padding" },
        /* more than half the window: 2 > 3/2, 3 > 5/2 */
        { CNN_POOL_MAX, 3, 3, 1, 1, 2, 0, CNN_E_INVALID_ARG, "half" },
        { CNN_POOL_AVG, 3, 5, 1, 1, 0, 3, CNN_E_INVALID_ARG, "half" },
        { CNN_POOL_MAX, 6, 2, 1, 1, 0, 0, CNN_E_SHAPE, "6x2 window is larger than the 5x5" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const pool_case *c = &cases[k];
        cnn_pool_desc d = CNN_POOL_DESC_INIT;
        d.kind = (cnn_pool_kind)c->kind;
        d.window_h = c->window_h;
        d.window_w = c->window_w;
        d.stride_h = c->stride_h;
        d.stride_w = c->stride_w;
        d.pad_h = c->pad_h;
        d.pad_w = c->pad_w;
        API_EXPECT_FAIL(c->want, net, cnn_layer_add_pool(net, &d, NULL), "layer 2 (pool)",
                        c->reason);
        api_snapshot_assert_same(net, &before, "a refused pool");
    }
    cnn_pool_desc d = CNN_POOL_DESC_INIT;
    d.struct_size = sizeof d + 4;
    API_EXPECT_FAIL(CNN_E_STRUCT_SIZE, net, cnn_layer_add_pool(net, &d, NULL), "layer 2 (pool)",
                    "struct_size");
    API_EXPECT_FAIL(CNN_E_NULL_ARG, net, cnn_layer_add_pool(net, NULL, NULL), "layer 2 (pool)",
                    "descriptor");
    API_EXPECT_FAIL(CNN_E_NULL_ARG, NULL, cnn_layer_add_pool(NULL, &d, NULL),
                    "cnn_layer_add_pool", "NULL");
    api_snapshot_assert_same(net, &before, "refused pool descriptors");

    /* Exactly half the window is allowed (2 <= 4/2, 1 <= 2/2 and 1 <= 3/2). */
    cnn_pool_desc ok = CNN_POOL_DESC_INIT;
    ok.window_h = 4;
    ok.pad_h = 2;
    ok.window_w = 2;
    ok.pad_w = 1;
    API_OK(cnn_layer_add_pool(net, &ok, NULL));
    ok.window_h = ok.window_w = 3;
    ok.pad_h = ok.pad_w = 1;
    API_OK(cnn_layer_add_pool(net, &ok, NULL));
    api_snapshot_free(&before);
    cnn_net_destroy(net);
}
END_TEST

START_TEST(activation_dense_softmax_refusals)
{
    cnn_net *net = api_net_tail5();
    api_snapshot before;
    api_snapshot_take(net, 1, &before);
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, net,
                    cnn_layer_add_activation(net, (cnn_activation)4, 0.0f, NULL),
                    "layer 2 (activation)", "4");
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, net,
                    cnn_layer_add_activation(net, (cnn_activation)-1, 0.0f, NULL),
                    "layer 2 (activation)", "-1");
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, net,
                    cnn_layer_add_activation(net, CNN_ACT_LEAKY_RELU, NAN, NULL),
                    "layer 2 (activation)", "slope");
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, net,
                    cnn_layer_add_activation(net, CNN_ACT_LEAKY_RELU, -INFINITY, NULL),
                    "layer 2 (activation)", "slope");
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, net, cnn_layer_add_dense(net, 0, 1, NULL),
                    "layer 2 (dense)", "units");
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, net, cnn_layer_add_dense(net, -5, 0, NULL),
                    "layer 2 (dense)", "-5");
    API_EXPECT_FAIL(CNN_E_NULL_ARG, NULL, cnn_layer_add_activation(NULL, CNN_ACT_RELU, 0, NULL),
                    "cnn_layer_add_activation", "NULL");
    API_EXPECT_FAIL(CNN_E_NULL_ARG, NULL, cnn_layer_add_dense(NULL, 3, 1, NULL),
                    "cnn_layer_add_dense", "NULL");
    API_EXPECT_FAIL(CNN_E_NULL_ARG, NULL, cnn_layer_add_softmax(NULL, NULL),
                    "cnn_layer_add_softmax", "NULL");
    api_snapshot_assert_same(net, &before, "refused activation/dense/softmax layers");
    /* The slope of a kind that does not use it is ignored, even when not finite. */
    API_OK(cnn_layer_add_activation(net, CNN_ACT_TANH, NAN, NULL));
    api_snapshot_free(&before);
    cnn_net_destroy(net);
}
END_TEST

/* Counts too large for the library's types. No forward runs on these nets
 * (their tensors would need gigabytes); shapes and counts must not change. */
START_TEST(element_count_overflow)
{
    /* kernel 64x64 over 2^20 channels: 2^32 elements per kernel > INT_MAX. */
    cnn_net *wide = NULL;
    API_OK(cnn_net_create(&wide, 1, 1, 1 << 20));
    api_snapshot before;
    api_snapshot_take(wide, 0, &before);
    cnn_conv_desc d = CNN_CONV_DESC_INIT;
    d.filters = 1;
    d.kernel_h = d.kernel_w = 64;
    d.pad_h = d.pad_w = 32;
    API_EXPECT_FAIL(CNN_E_OVERFLOW, wide, cnn_layer_add_conv(wide, &d, NULL), "layer 0 (conv)",
                    "INT_MAX");
    api_snapshot_assert_same(wide, &before, "a conv with a 2^32-element kernel");
    api_snapshot_free(&before);
    cnn_net_destroy(wide);

    /* 1x1 kernels over 3*2^29 channels fit an int, but INT_MAX of them hold
     * about 3*2^60 weights, 3*2^62 bytes: more than PTRDIFF_MAX (the largest
     * object), though still less than SIZE_MAX. */
    API_OK(cnn_net_create(&wide, 1, 1, 3 << 29));
    api_snapshot_take(wide, 0, &before);
    d = (cnn_conv_desc)CNN_CONV_DESC_INIT;
    d.filters = INT_MAX;
    d.kernel_h = d.kernel_w = 1;
    API_EXPECT_FAIL(CNN_E_OVERFLOW, wide, cnn_layer_add_conv(wide, &d, NULL), "layer 0 (conv)",
                    "2147483647");
    api_snapshot_assert_same(wide, &before, "a conv of 2^61 weights");
    api_snapshot_free(&before);
    cnn_net_destroy(wide);

    /* 46340^2 = 2147395600 <= INT_MAX input elements; after a ReLU (layer 0):
     * two 1x1 filters give 2^32 output elements; INT_MAX dense units give
     * 2^62 weights, 2^64 bytes, more than any object can hold. */
    cnn_net *big = NULL;
    API_OK(cnn_net_create(&big, 46340, 46340, 1));
    API_OK(cnn_layer_add_activation(big, CNN_ACT_RELU, 0.0f, NULL));
    api_snapshot_take(big, 0, &before);
    d = (cnn_conv_desc)CNN_CONV_DESC_INIT;
    d.filters = 2;
    d.kernel_h = d.kernel_w = 1;
    API_EXPECT_FAIL(CNN_E_OVERFLOW, big, cnn_layer_add_conv(big, &d, NULL), "layer 1 (conv)",
                    "INT_MAX");
    API_EXPECT_FAIL(CNN_E_OVERFLOW, big, cnn_layer_add_dense(big, INT_MAX, 1, NULL),
                    "layer 1 (dense)", "2147483647");
    api_snapshot_assert_same(big, &before, "refused layers after a 46340x46340 input");
    api_snapshot_free(&before);
    cnn_net_destroy(big);

    /* A 2x2 pool padded by 1 with stride 1 grows each axis by one:
     * 46341x46340 = 2147441940 fits an int, 46342x46341 = 2147534622 does not. */
    cnn_net *grow = NULL;
    API_OK(cnn_net_create(&grow, 46341, 46340, 1));
    api_snapshot_take(grow, 0, &before);
    cnn_pool_desc p = CNN_POOL_DESC_INIT;
    p.stride_h = p.stride_w = 1;
    p.pad_h = p.pad_w = 1;
    API_EXPECT_FAIL(CNN_E_OVERFLOW, grow, cnn_layer_add_pool(grow, &p, NULL), "layer 0 (pool)",
                    "INT_MAX");
    api_snapshot_assert_same(grow, &before, "a pool whose output exceeds INT_MAX elements");
    api_snapshot_free(&before);
    cnn_net_destroy(grow);
}
END_TEST

/* Layers of api_net_full: 0 conv (no bias), 1 pool, 2 relu, 3 dense 4, 4 softmax. */
START_TEST(parameter_refusals)
{
    cnn_net *net = api_net_full();
    api_snapshot before;
    api_snapshot_take(net, 1, &before);
    size_t nw = 0, nb = 0;
    API_OK(cnn_layer_param_sizes(net, 3, &nw, &nb));
    ck_assert_uint_eq(nw, 75 * 4);
    ck_assert_uint_eq(nb, 4);
    float *buf = test_xmalloc((nw + 1) * sizeof(float));
    for (size_t i = 0; i <= nw; i++)
        buf[i] = 3.0f;

    API_EXPECT_FAIL(CNN_E_BUFFER_SIZE, net,
                    cnn_layer_set_weights(net, 3, buf, nw - 1, CNN_LAYOUT_NATIVE),
                    "layer 3 (dense)", "299", "300");
    API_EXPECT_FAIL(CNN_E_BUFFER_SIZE, net,
                    cnn_layer_set_weights(net, 3, buf, nw + 1, CNN_LAYOUT_PYTORCH),
                    "layer 3 (dense)", "301", "300");
    API_EXPECT_FAIL(CNN_E_BUFFER_SIZE, net,
                    cnn_layer_get_weights(net, 3, buf, nw - 1, CNN_LAYOUT_NATIVE),
                    "layer 3 (dense)", "299");
    API_EXPECT_FAIL(CNN_E_BUFFER_SIZE, net, cnn_layer_set_bias(net, 3, buf, 3),
                    "layer 3 (dense)", "cnn_layer_set_bias", "4");
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, net,
                    cnn_layer_set_weights(net, 3, buf, nw, (cnn_weight_layout)2),
                    "layer 3 (dense)", "layout");
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, net,
                    cnn_layer_get_weights(net, 3, buf, nw, (cnn_weight_layout)-1),
                    "layer 3 (dense)", "layout");
    API_EXPECT_FAIL(CNN_E_NULL_ARG, net, cnn_layer_set_weights(net, 3, NULL, nw,
                                                               CNN_LAYOUT_NATIVE),
                    "layer 3 (dense)");

    /* Operations on layers of the wrong kind. */
    API_EXPECT_FAIL(CNN_E_LAYER_KIND, net,
                    cnn_layer_set_weights(net, 1, buf, 4, CNN_LAYOUT_NATIVE), "layer 1 (pool)");
    API_EXPECT_FAIL(CNN_E_LAYER_KIND, net,
                    cnn_layer_get_weights(net, 2, buf, 4, CNN_LAYOUT_NATIVE),
                    "layer 2 (activation)");
    API_EXPECT_FAIL(CNN_E_LAYER_KIND, net, cnn_layer_param_sizes(net, 4, &nw, &nb),
                    "layer 4 (softmax)");
    API_EXPECT_FAIL(CNN_E_LAYER_KIND, net, cnn_layer_set_bias(net, 0, buf, 3),
                    "layer 0 (conv)", "bias");
    API_EXPECT_FAIL(CNN_E_LAYER_KIND, net, cnn_layer_get_bias(net, 0, buf, 3),
                    "layer 0 (conv)", "bias");
    API_EXPECT_FAIL(CNN_E_LAYER_KIND, net, cnn_layer_set_bias(net, 1, buf, 3), "layer 1 (pool)");

    /* Layer indices out of range, below and above. */
    API_EXPECT_FAIL(CNN_E_INDEX, net, cnn_layer_set_weights(net, -1, buf, nw, CNN_LAYOUT_NATIVE),
                    "cnn_layer_set_weights", "index -1", "out of range");
    API_EXPECT_FAIL(CNN_E_INDEX, net, cnn_layer_set_weights(net, 5, buf, nw, CNN_LAYOUT_NATIVE),
                    "cnn_layer_set_weights", "index 5", "out of range");
    API_EXPECT_FAIL(CNN_E_INDEX, net, cnn_layer_set_bias(net, INT_MAX, buf, 4), "index 2147483647");
    API_EXPECT_FAIL(CNN_E_INDEX, net, cnn_layer_get_bias(net, INT_MIN, buf, 4), "index -2147483648");
    API_EXPECT_FAIL(CNN_E_INDEX, net, cnn_layer_param_sizes(net, 5, &nw, &nb), "index 5");
    API_EXPECT_FAIL(CNN_E_INDEX, net, cnn_layer_kind_of(net, -1, &(cnn_layer_kind){ 0 }),
                    "cnn_layer_kind_of", "index -1");
    API_EXPECT_FAIL(CNN_E_INDEX, net, cnn_layer_output_shape(net, 5, NULL, NULL, NULL),
                    "cnn_layer_output_shape", "index 5");
    API_EXPECT_FAIL(CNN_E_INDEX, net, cnn_layer_param_count(net, -2, &nw),
                    "cnn_layer_param_count", "index -2");
    API_EXPECT_FAIL(CNN_E_INDEX, net, cnn_layer_flops(net, 6, &(uint64_t){ 0 }),
                    "cnn_layer_flops", "index 6");
    API_EXPECT_FAIL(CNN_E_INDEX, net, cnn_layer_receptive_field(net, -1, NULL, NULL),
                    "cnn_layer_receptive_field", "index -1");

    API_EXPECT_FAIL(CNN_E_INVALID_ARG, net, cnn_net_init_params(net, (cnn_init)4, 1),
                    "cnn_net_init_params", "4");
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, net, cnn_net_init_params(net, (cnn_init)-1, 1), "-1");
    api_snapshot_assert_same(net, &before, "refused parameter calls");
    free(buf);
    api_snapshot_free(&before);
    cnn_net_destroy(net);
}
END_TEST

START_TEST(forward_refusals)
{
    cnn_net *empty = NULL;
    API_OK(cnn_net_create(&empty, 2, 2, 1));
    float in4[4] = { 1, 2, 3, 4 }, out4[4] = { 9, 9, 9, 9 };
    API_EXPECT_FAIL(CNN_E_EMPTY_NET, empty, cnn_forward(empty, in4, 1, out4), "cnn_forward",
                    "no layers");
    ck_assert(out4[0] == 9 && out4[3] == 9);
    cnn_net_destroy(empty);

    cnn_net *net = api_net_full();
    api_snapshot before;
    api_snapshot_take(net, 1, &before);
    size_t n_in;
    float *x = api_fixed_input(net, API_SNAPSHOT_BATCH, &n_in);
    size_t n_out = before.n_forward;
    float *y = test_xmalloc(n_out * sizeof(float));
    for (size_t i = 0; i < n_out; i++)
        y[i] = 12345.0f;
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, net, cnn_forward(net, x, 0, y), "cnn_forward", "batch 0");
    API_EXPECT_FAIL(CNN_E_INVALID_ARG, net, cnn_forward(net, x, -3, y), "cnn_forward", "-3");
    API_EXPECT_FAIL(CNN_E_NULL_ARG, NULL, cnn_forward(NULL, x, 1, y), "cnn_forward", "NULL");
    for (size_t i = 0; i < n_out; i++)
        ck_assert_float_eq(y[i], 12345.0f);

    /* One buffer holding the input followed by room for the output. */
    float *buf = test_xmalloc((n_in + n_out) * sizeof(float));
    memcpy(buf, x, n_in * sizeof(float));
    API_EXPECT_FAIL(CNN_E_OVERLAP, net, cnn_forward(net, buf, API_SNAPSHOT_BATCH, buf + n_in - 1),
                    "cnn_forward", "overlap");
    API_EXPECT_FAIL(CNN_E_OVERLAP, net, cnn_forward(net, buf, API_SNAPSHOT_BATCH, buf),
                    "overlap");
    API_EXPECT_FAIL(CNN_E_OVERLAP, net, cnn_forward(net, buf + 1, 1, buf), "overlap");
    ck_assert_mem_eq(buf, x, n_in * sizeof(float));
    api_snapshot_assert_same(net, &before, "refused forward calls");
    /* Adjacent is not overlapping: the output may start right after the input. */
    API_OK(cnn_forward(net, buf, API_SNAPSHOT_BATCH, buf + n_in));
    ck_assert_mem_eq(buf + n_in, before.forward, n_out * sizeof(float));
    free(buf);
    free(y);
    free(x);
    api_snapshot_free(&before);
    cnn_net_destroy(net);
}
END_TEST

TCase *api_errors_tcase(void)
{
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, create_refusals);
    tcase_add_test(tc, messages_are_per_net);
    tcase_add_test(tc, conv_refusals);
    tcase_add_test(tc, pool_refusals);
    tcase_add_test(tc, activation_dense_softmax_refusals);
    tcase_add_test(tc, element_count_overflow);
    tcase_add_test(tc, parameter_refusals);
    tcase_add_test(tc, forward_refusals);
    return tc;
}
