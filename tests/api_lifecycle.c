/* Clones (copy-on-write parameters), nets that grow after running, batch sizes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"
#include "support.h"

/* Scales every weight of `layer` (through the public calls). A scale, not a
 * shift: a shift of a dense layer's weights can cancel in the softmax. */
static void scale_weights(cnn_net *net, int layer, float factor)
{
    size_t nw = 0;
    API_OK(cnn_layer_param_sizes(net, layer, &nw, NULL));
    float *w = test_xmalloc(nw * sizeof(float));
    API_OK(cnn_layer_get_weights(net, layer, w, nw, CNN_LAYOUT_NATIVE));
    for (size_t i = 0; i < nw; i++)
        w[i] *= factor;
    API_OK(cnn_layer_set_weights(net, layer, w, nw, CNN_LAYOUT_NATIVE));
    free(w);
}

/* Whether the net differs from a snapshot both in its parameter values and in
 * its forward output on the fixed input. */
static int differs_from(cnn_net *net, const api_snapshot *snap)
{
    api_snapshot now;
    api_snapshot_take(net, 1, &now);
    int differ = now.n_values != snap->n_values ||
                 memcmp(now.values, snap->values, now.n_values * sizeof(float)) != 0;
    int out_differ = now.n_forward != snap->n_forward ||
                     memcmp(now.forward, snap->forward, now.n_forward * sizeof(float)) != 0;
    api_snapshot_free(&now);
    return differ && out_differ;
}

/* The three ways a net changes its own parameters. */
typedef enum param_change { SET_WEIGHTS, SET_BIAS, INIT_PARAMS, N_CHANGES } param_change;
static const char *const change_names[N_CHANGES] = { "cnn_layer_set_weights",
                                                     "cnn_layer_set_bias",
                                                     "cnn_net_init_params" };

static void apply_change(cnn_net *net, param_change what)
{
    const float bias[4] = { -1.0f, 2.0f, 0.0f, 0.5f };
    switch (what) {
    case SET_WEIGHTS: scale_weights(net, 3, 1.5f); break;
    case SET_BIAS: API_OK(cnn_layer_set_bias(net, 3, bias, 4)); break;
    case INIT_PARAMS: API_OK(cnn_net_init_params(net, CNN_INIT_XAVIER_NORMAL, 99)); break;
    case N_CHANGES: break;
    }
}

/* Each change, made on a fresh clone or on the source of a fresh clone (so the
 * parameters are still shared when it happens), reaches that net only. */
START_TEST(clone_copy_on_write)
{
    for (int what = 0; what < N_CHANGES; what++)
        for (int on_clone = 0; on_clone < 2; on_clone++) {
            cnn_net *source = api_net_full(), *clone = NULL;
            api_snapshot original;
            api_snapshot_take(source, 1, &original);
            API_OK(cnn_net_clone(source, &clone));
            ck_assert_ptr_nonnull(clone);
            ck_assert_ptr_ne(clone, source);
            api_snapshot_assert_same(clone, &original, "cloning");
            cnn_net *changed = on_clone ? clone : source, *other = on_clone ? source : clone;
            char after[96];
            snprintf(after, sizeof after, "%s on the %s", change_names[what],
                     on_clone ? "clone" : "source");
            apply_change(changed, (param_change)what);
            api_snapshot_assert_same(other, &original, after);
            ck_assert_msg(differs_from(changed, &original), "%s did not change that net", after);
            cnn_net_destroy(source);
            cnn_net_destroy(clone);
            api_snapshot_free(&original);
        }
}
END_TEST

START_TEST(clone_outlives_source)
{
    cnn_net *source = api_net_full(), *clone = NULL;
    API_OK(cnn_net_clone(source, &clone));
    /* Layers added to the clone are the clone's only. */
    API_OK(cnn_layer_add_activation(clone, CNN_ACT_SIGMOID, 0.0f, NULL));
    int n_source = 0, n_clone = 0;
    API_OK(cnn_net_layer_count(source, &n_source));
    API_OK(cnn_net_layer_count(clone, &n_clone));
    ck_assert_int_eq(n_source, 5);
    ck_assert_int_eq(n_clone, 6);

    api_snapshot state;
    api_snapshot_take(clone, 1, &state);
    cnn_net_destroy(source);
    api_snapshot_assert_same(clone, &state, "destroying the source");
    /* Its parameters, shared until now, are still its own to change. */
    scale_weights(clone, 0, 2.0f);
    ck_assert(differs_from(clone, &state));
    cnn_net_destroy(clone);
    api_snapshot_free(&state);
}
END_TEST

START_TEST(clone_of_shared_and_empty_nets)
{
    /* A clone of a clone, all three sharing, then each destroyed in turn. */
    cnn_net *a = api_net_full(), *b = NULL, *c = NULL;
    api_snapshot snap;
    api_snapshot_take(a, 1, &snap);
    API_OK(cnn_net_clone(a, &b));
    API_OK(cnn_net_clone(b, &c));
    cnn_net_destroy(b);
    scale_weights(a, 3, 2.0f);
    api_snapshot_assert_same(c, &snap, "changing the first of three sharing nets");
    cnn_net_destroy(a);
    api_snapshot_assert_same(c, &snap, "destroying two of three sharing nets");
    cnn_net_destroy(c);
    api_snapshot_free(&snap);

    cnn_net *empty = NULL, *copy = NULL;
    API_OK(cnn_net_create(&empty, 3, 2, 7));
    API_OK(cnn_net_clone(empty, &copy));
    int h = 0, w = 0, ch = 0, n = -1;
    API_OK(cnn_net_input_shape(copy, &h, &w, &ch));
    API_OK(cnn_net_layer_count(copy, &n));
    ck_assert(h == 3 && w == 2 && ch == 7 && n == 0);
    cnn_net_destroy(empty);
    cnn_net_destroy(copy);
}
END_TEST

/* The net runs, grows, and runs again with the new tail. */
START_TEST(net_grows_after_running)
{
    cnn_net *net = NULL;
    API_OK(cnn_net_create(&net, 6, 6, 2));
    cnn_conv_desc d = CNN_CONV_DESC_INIT;
    d.filters = 3;
    API_OK(cnn_layer_add_conv(net, &d, NULL));
    API_OK(cnn_net_init_params(net, CNN_INIT_HE_UNIFORM, 5));
    const float conv_bias[3] = { -0.3f, 0.1f, 0.2f };
    API_OK(cnn_layer_set_bias(net, 0, conv_bias, 3));
    enum { BATCH = 2, MAP = 4 * 4 * 3, UNITS = 5 };
    size_t n_in;
    float *x = api_fixed_input(net, BATCH, &n_in);
    float conv_out[BATCH * MAP], relu_out[BATCH * MAP], dense_out[BATCH * UNITS];
    API_OK(cnn_forward(net, x, BATCH, conv_out));

    API_OK(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL));
    API_OK(cnn_forward(net, x, BATCH, relu_out));
    int positives = 0;
    for (int i = 0; i < BATCH * MAP; i++) {
        ck_assert_float_eq(relu_out[i], conv_out[i] > 0.0f ? conv_out[i] : 0.0f);
        positives += conv_out[i] > 0.0f;
    }
    ck_assert(positives > 0 && positives < BATCH * MAP); /* ReLU had work to do */

    int index = -1;
    API_OK(cnn_layer_add_dense(net, UNITS, 1, &index));
    ck_assert_int_eq(index, 2);
    int h = 0, w = 0, c = 0;
    API_OK(cnn_net_output_shape(net, &h, &w, &c));
    ck_assert(h == 1 && w == 1 && c == UNITS);
    float weights[UNITS * MAP], bias[UNITS];
    test_rng rng;
    test_rng_seed(&rng, 8);
    test_fill_uniform(&rng, weights, UNITS * MAP, -1.0f, 1.0f);
    test_fill_uniform(&rng, bias, UNITS, -1.0f, 1.0f);
    API_OK(cnn_layer_set_weights(net, 2, weights, UNITS * MAP, CNN_LAYOUT_NATIVE));
    API_OK(cnn_layer_set_bias(net, 2, bias, UNITS));
    API_OK(cnn_forward(net, x, BATCH, dense_out));
    double ref[BATCH * UNITS];
    for (int b = 0; b < BATCH; b++)
        for (int u = 0; u < UNITS; u++) {
            double sum = bias[u];
            for (int j = 0; j < MAP; j++)
                sum += (double)weights[u * MAP + j] * relu_out[b * MAP + j];
            ref[b * UNITS + u] = sum;
        }
    double err = test_rel_error(dense_out, ref, BATCH * UNITS);
    ck_assert_msg(err < 1e-5, "dense added after running: relative error %g", err);
    free(x);
    cnn_net_destroy(net);
}
END_TEST

/* Batch 1, then 5, then 1 again: each image's result does not depend on its
 * batch (up to rounding), and a repeated batch size repeats bit for bit. */
START_TEST(batch_sizes_change)
{
    cnn_net *net = api_net_full();
    enum { IMAGES = 5 };
    size_t n_in, per_out = api_output_elems(net);
    float *x = api_fixed_input(net, IMAGES, &n_in);
    size_t per_in = n_in / IMAGES;
    float *single = test_xmalloc(IMAGES * per_out * sizeof(float));
    float *five = test_xmalloc(IMAGES * per_out * sizeof(float));
    float *again = test_xmalloc(per_out * sizeof(float));
    for (size_t k = 0; k < IMAGES; k++)
        API_OK(cnn_forward(net, x + k * per_in, 1, single + k * per_out));
    API_OK(cnn_forward(net, x, IMAGES, five));
    double err = test_rel_error_f(five, single, IMAGES * per_out);
    ck_assert_msg(err < 1e-5, "batch 5 against five batches of 1: relative error %g", err);
    /* The images differ, so a net that mixed them up would show. */
    ck_assert(memcmp(single, single + per_out, per_out * sizeof(float)) != 0);
    API_OK(cnn_forward(net, x + 3 * per_in, 1, again));
    ck_assert_mem_eq(again, single + 3 * per_out, per_out * sizeof(float));
    API_OK(cnn_forward(net, x, IMAGES, single));
    ck_assert_mem_eq(single, five, IMAGES * per_out * sizeof(float));
    free(x);
    free(single);
    free(five);
    free(again);
    cnn_net_destroy(net);
}
END_TEST

TCase *api_lifecycle_tcase(void)
{
    TCase *tc = tcase_create("lifecycle");
    tcase_add_test(tc, clone_copy_on_write);
    tcase_add_test(tc, clone_outlives_source);
    tcase_add_test(tc, clone_of_shared_and_empty_nets);
    tcase_add_test(tc, net_grows_after_running);
    tcase_add_test(tc, batch_sizes_change);
    return tc;
}
