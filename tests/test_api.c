/* The public API apart from layer numerics: version, status names, introspection.
 * Errors, parameters, initialisation, clones, growth and the allocator hook are
 * in api_*.c; this file assembles the suite. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"

START_TEST(version_number_and_string)
{
    ck_assert_int_eq(cnn_version(), CNN_VERSION_NUMBER);
    /* Decode the run-time number by the documented rule MAJOR*10000+MINOR*100+PATCH. */
    int v = cnn_version();
    ck_assert_int_eq(v / 10000, CNN_VERSION_MAJOR);
    ck_assert_int_eq(v / 100 % 100, CNN_VERSION_MINOR);
    ck_assert_int_eq(v % 100, CNN_VERSION_PATCH);
    ck_assert_int_lt(CNN_VERSION_MINOR, 100);
    ck_assert_int_lt(CNN_VERSION_PATCH, 100);

    const char *s = cnn_version_string();
    ck_assert_ptr_nonnull(s);
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", CNN_VERSION_MAJOR, CNN_VERSION_MINOR,
             CNN_VERSION_PATCH);
    ck_assert_str_eq(s, expected);
}
END_TEST

static const char *const status_names[] = {
    "CNN_OK",          "CNN_E_NULL_ARG",    "CNN_E_INVALID_ARG", "CNN_E_SHAPE",
    "CNN_E_OVERFLOW",  "CNN_E_NOMEM",       "CNN_E_INDEX",       "CNN_E_LAYER_KIND",
    "CNN_E_EMPTY_NET", "CNN_E_STRUCT_SIZE", "CNN_E_BUFFER_SIZE", "CNN_E_OVERLAP",
    "CNN_E_STATE",
};
#define N_STATUS ((int)(sizeof status_names / sizeof status_names[0]))

START_TEST(status_strings_name_every_status)
{
    /* The enum values are ABI: check the numbering the names table assumes. */
    ck_assert_int_eq(CNN_E_NULL_ARG, 1);
    ck_assert_int_eq(CNN_E_STATE, 12);
    for (int i = 0; i < N_STATUS; i++) {
        const char *s = cnn_status_string((cnn_status)i);
        ck_assert_ptr_nonnull(s);
        size_t len = strlen(status_names[i]);
        /* "CNN_E_SHAPE: shapes do not fit": the identifier, then ':' or the end. */
        ck_assert_msg(strncmp(s, status_names[i], len) == 0 && (s[len] == ':' || s[len] == '\0'),
                      "status %d is named \"%s\", expected it to start with %s", i, s,
                      status_names[i]);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(s, cnn_status_string((cnn_status)j));
    }
}
END_TEST

START_TEST(status_string_of_unknown_values)
{
    const int unknown[] = { N_STATUS, 99, -1, INT_MAX, INT_MIN };
    for (size_t k = 0; k < sizeof unknown / sizeof unknown[0]; k++) {
        const char *s = cnn_status_string((cnn_status)unknown[k]);
        ck_assert_ptr_nonnull(s);
        ck_assert_int_gt((int)strlen(s), 0);
        for (int i = 0; i < N_STATUS; i++)
            ck_assert_str_ne(s, cnn_status_string((cnn_status)i));
    }
}
END_TEST

START_TEST(layer_kind_names)
{
    ck_assert_str_eq(cnn_layer_kind_name(CNN_LAYER_CONV), "conv");
    ck_assert_str_eq(cnn_layer_kind_name(CNN_LAYER_POOL), "pool");
    ck_assert_str_eq(cnn_layer_kind_name(CNN_LAYER_ACTIVATION), "activation");
    ck_assert_str_eq(cnn_layer_kind_name(CNN_LAYER_DENSE), "dense");
    ck_assert_str_eq(cnn_layer_kind_name(CNN_LAYER_SOFTMAX), "softmax");
    ck_assert_str_eq(cnn_layer_kind_name((cnn_layer_kind)5), "unknown");
    ck_assert_str_eq(cnn_layer_kind_name((cnn_layer_kind)-1), "unknown");
}
END_TEST

/* LeNet-5 as worked out by hand. kh/kw/cin/bias describe conv and dense
 * (dense: cin is the flattened input size, kh = kw = 1); rf is the receptive
 * field: conv1 5, pool1 5 + 1 = 6, conv2 6 + 4*2 = 14, pool2 14 + 1*2 = 16,
 * dense1 sees the whole padded 32x32 input (16 + 4*4 with a jump of 4). */
typedef struct lenet_row {
    cnn_layer_kind kind;
    int h, w, c;
    int kh, kw, cin, bias;
    size_t params;
    int rf;
} lenet_row;

static const lenet_row lenet[] = {
    { CNN_LAYER_CONV, 28, 28, 6, 5, 5, 1, 1, 156, 5 },
    { CNN_LAYER_ACTIVATION, 28, 28, 6, 0, 0, 0, 0, 0, 5 },
    { CNN_LAYER_POOL, 14, 14, 6, 0, 0, 0, 0, 0, 6 },
    { CNN_LAYER_CONV, 10, 10, 16, 5, 5, 6, 1, 2416, 14 },
    { CNN_LAYER_ACTIVATION, 10, 10, 16, 0, 0, 0, 0, 0, 14 },
    { CNN_LAYER_POOL, 5, 5, 16, 0, 0, 0, 0, 0, 16 },
    { CNN_LAYER_DENSE, 1, 1, 120, 1, 1, 400, 1, 48120, 32 },
    { CNN_LAYER_ACTIVATION, 1, 1, 120, 0, 0, 0, 0, 0, 32 },
    { CNN_LAYER_DENSE, 1, 1, 84, 1, 1, 120, 1, 10164, 32 },
    { CNN_LAYER_ACTIVATION, 1, 1, 84, 0, 0, 0, 0, 0, 32 },
    { CNN_LAYER_DENSE, 1, 1, 10, 1, 1, 84, 1, 850, 32 },
    { CNN_LAYER_SOFTMAX, 1, 1, 10, 0, 0, 0, 0, 0, 32 },
};
#define LENET_LAYERS ((int)(sizeof lenet / sizeof lenet[0]))

/* DESIGN.md: a multiply-add counts 2, plus one per bias add, for each output
 * element of conv and dense; one per output element for every other kind. */
static uint64_t expected_flops(const lenet_row *r)
{
    uint64_t outputs = (uint64_t)r->h * (uint64_t)r->w * (uint64_t)r->c;
    if (r->kind == CNN_LAYER_CONV || r->kind == CNN_LAYER_DENSE)
        return outputs * (2u * (uint64_t)r->kh * (uint64_t)r->kw * (uint64_t)r->cin +
                          (uint64_t)r->bias);
    return outputs;
}

START_TEST(lenet_introspection)
{
    cnn_net *net = api_lenet();
    int count = -1;
    API_OK(cnn_net_layer_count(net, &count));
    ck_assert_int_eq(count, LENET_LAYERS);
    size_t param_sum = 0;
    uint64_t flop_sum = 0;
    for (int i = 0; i < LENET_LAYERS; i++) {
        const lenet_row *r = &lenet[i];
        cnn_layer_kind kind;
        int h = 0, w = 0, c = 0, rf_h = 0, rf_w = 0;
        size_t params = 99;
        uint64_t flops = 0;
        API_OK(cnn_layer_kind_of(net, i, &kind));
        API_OK(cnn_layer_output_shape(net, i, &h, &w, &c));
        API_OK(cnn_layer_param_count(net, i, &params));
        API_OK(cnn_layer_flops(net, i, &flops));
        API_OK(cnn_layer_receptive_field(net, i, &rf_h, &rf_w));
        ck_assert_msg(kind == r->kind, "layer %d: kind %d, expected %d", i, kind, r->kind);
        ck_assert_msg(h == r->h && w == r->w && c == r->c, "layer %d: shape %dx%dx%d", i, h, w,
                      c);
        ck_assert_msg(params == r->params, "layer %d: %zu params, expected %zu", i, params,
                      r->params);
        ck_assert_msg(flops == expected_flops(r), "layer %d: %llu FLOPs, expected %llu", i,
                      (unsigned long long)flops, (unsigned long long)expected_flops(r));
        ck_assert_msg(rf_h == r->rf && rf_w == r->rf, "layer %d: receptive field %dx%d, "
                      "expected %dx%d", i, rf_h, rf_w, r->rf, r->rf);
        param_sum += params;
        flop_sum += flops;
    }
    /* The textbook LeNet-5 count, independent of the table's arithmetic. */
    ck_assert_uint_eq(param_sum, 61706);
    size_t total_params = 0;
    uint64_t total_flops = 0;
    API_OK(cnn_net_param_count(net, &total_params));
    API_OK(cnn_net_flops(net, &total_flops));
    ck_assert_uint_eq(total_params, param_sum);
    ck_assert_uint_eq(total_flops, flop_sum);

    int h = 0, w = 0, c = 0;
    API_OK(cnn_net_input_shape(net, &h, &w, &c));
    ck_assert(h == 28 && w == 28 && c == 1);
    API_OK(cnn_net_output_shape(net, &h, &w, &c));
    ck_assert(h == 1 && w == 1 && c == 10);
    /* Every out-pointer of the shape queries may be NULL. */
    c = 0;
    API_OK(cnn_layer_output_shape(net, 3, NULL, NULL, &c));
    ck_assert_int_eq(c, 16);
    API_OK(cnn_net_output_shape(net, NULL, NULL, NULL));
    API_OK(cnn_layer_receptive_field(net, 2, NULL, &w));
    ck_assert_int_eq(w, 6);
    cnn_net_destroy(net);
}
END_TEST

/* Different kernels, strides and windows per axis, so swapped axes show:
 * 20x30x1 -> conv 3x5 stride 1x2 -> 18x13 (rf 3x5, jump 1x2)
 *         -> pool 2x3 stride 2x1 -> 9x11 (rf 3+1*1 = 4, 5+2*2 = 9; jump 2x2)
 *         -> conv 3x3            -> 7x9  (rf 4+2*2 = 8, 9+2*2 = 13). */
START_TEST(receptive_field_per_axis)
{
    cnn_net *net = NULL;
    API_OK(cnn_net_create(&net, 20, 30, 1));
    cnn_conv_desc conv = CNN_CONV_DESC_INIT;
    conv.filters = 2;
    conv.kernel_h = 3;
    conv.kernel_w = 5;
    conv.stride_w = 2;
    API_OK(cnn_layer_add_conv(net, &conv, NULL));
    cnn_pool_desc pool = CNN_POOL_DESC_INIT;
    pool.window_w = 3;
    pool.stride_w = 1;
    API_OK(cnn_layer_add_pool(net, &pool, NULL));
    cnn_conv_desc conv2 = CNN_CONV_DESC_INIT;
    conv2.filters = 1;
    API_OK(cnn_layer_add_conv(net, &conv2, NULL));
    const int shapes[3][2] = { { 18, 13 }, { 9, 11 }, { 7, 9 } };
    const int fields[3][2] = { { 3, 5 }, { 4, 9 }, { 8, 13 } };
    for (int i = 0; i < 3; i++) {
        int h = 0, w = 0, rf_h = 0, rf_w = 0;
        API_OK(cnn_layer_output_shape(net, i, &h, &w, NULL));
        API_OK(cnn_layer_receptive_field(net, i, &rf_h, &rf_w));
        ck_assert_msg(h == shapes[i][0] && w == shapes[i][1], "layer %d: %dx%d", i, h, w);
        ck_assert_msg(rf_h == fields[i][0] && rf_w == fields[i][1],
                      "layer %d: receptive field %dx%d, expected %dx%d", i, rf_h, rf_w,
                      fields[i][0], fields[i][1]);
    }
    cnn_net_destroy(net);
}
END_TEST

START_TEST(empty_net_introspection)
{
    cnn_net *net = NULL;
    API_OK(cnn_net_create(&net, 3, 4, 5));
    int count = -1, h = 0, w = 0, c = 0;
    API_OK(cnn_net_layer_count(net, &count));
    ck_assert_int_eq(count, 0);
    API_OK(cnn_net_output_shape(net, &h, &w, &c));
    ck_assert_msg(h == 3 && w == 4 && c == 5, "empty net's output shape %dx%dx%d", h, w, c);
    size_t params = 1;
    uint64_t flops = 1;
    API_OK(cnn_net_param_count(net, &params));
    API_OK(cnn_net_flops(net, &flops));
    ck_assert_uint_eq(params, 0);
    ck_assert_uint_eq(flops, 0);
    ck_assert_str_eq(cnn_net_last_error(net), ""); /* nothing failed yet */
    cnn_net_destroy(net);
    cnn_net_destroy(NULL); /* documented as a no-op */
}
END_TEST

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *basics = tcase_create("basics");
    tcase_add_test(basics, version_number_and_string);
    tcase_add_test(basics, status_strings_name_every_status);
    tcase_add_test(basics, status_string_of_unknown_values);
    tcase_add_test(basics, layer_kind_names);
    suite_add_tcase(s, basics);
    TCase *intro = tcase_create("introspection");
    tcase_add_test(intro, lenet_introspection);
    tcase_add_test(intro, receptive_field_per_axis);
    tcase_add_test(intro, empty_net_introspection);
    suite_add_tcase(s, intro);
    suite_add_tcase(s, api_errors_tcase());
    suite_add_tcase(s, api_params_tcase());
    suite_add_tcase(s, api_init_tcase());
    suite_add_tcase(s, api_lifecycle_tcase());
    suite_add_tcase(s, api_allocator_tcase());
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(api_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
