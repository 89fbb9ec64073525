/* Clones running in threads: each clone has its own workspace, shares the
 * source's parameters copy-on-write, and gives results bit-identical to the
 * source's single-threaded results. Workers never call ck_assert (a failing
 * assertion must not unwind a thread); they count problems, and the main
 * thread asserts after joining. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"
#include "support.h"

enum {
    IMG_H = 16,
    IMG_W = 16,
    IMG_C = 3,
    N_INPUTS = 4,
    N_THREADS = 4,
    MAX_PARAM_LAYERS = 8
};

#define IMG_FLOATS ((size_t)IMG_H * IMG_W * IMG_C)

/* conv/relu/max-pool/conv/leaky/avg-pool/dense/softmax, large enough that
 * OpenBLAS may use its own threads for the conv GEMMs. */
static cnn_net *build_net(uint64_t seed)
{
    cnn_net *net = NULL;
    ck_assert_int_eq(cnn_net_create(&net, IMG_H, IMG_W, IMG_C), CNN_OK);
    cnn_conv_desc conv = CNN_CONV_DESC_INIT;
    conv.filters = 16;
    conv.pad_h = conv.pad_w = 1;
    ck_assert_int_eq(cnn_layer_add_conv(net, &conv, NULL), CNN_OK);
    ck_assert_int_eq(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL), CNN_OK);
    cnn_pool_desc pool = CNN_POOL_DESC_INIT;
    ck_assert_int_eq(cnn_layer_add_pool(net, &pool, NULL), CNN_OK);
    conv.filters = 32;
    conv.pad_h = conv.pad_w = 0;
    ck_assert_int_eq(cnn_layer_add_conv(net, &conv, NULL), CNN_OK);
    ck_assert_int_eq(cnn_layer_add_activation(net, CNN_ACT_LEAKY_RELU, 0.01f, NULL), CNN_OK);
    pool.kind = CNN_POOL_AVG;
    ck_assert_int_eq(cnn_layer_add_pool(net, &pool, NULL), CNN_OK);
    ck_assert_int_eq(cnn_layer_add_dense(net, 10, 1, NULL), CNN_OK);
    ck_assert_int_eq(cnn_layer_add_softmax(net, NULL), CNN_OK);
    ck_assert_int_eq(cnn_net_init_params(net, CNN_INIT_HE_UNIFORM, seed), CNN_OK);
    return net;
}

static size_t output_floats(const cnn_net *net)
{
    int h, w, c;
    ck_assert_int_eq(cnn_net_output_shape(net, &h, &w, &c), CNN_OK);
    return (size_t)h * (size_t)w * (size_t)c;
}

/* Every conv/dense layer's weights and biases, copied out of a net. */
typedef struct param_set {
    int n_layers;
    int layer[MAX_PARAM_LAYERS];
    float *weights[MAX_PARAM_LAYERS];
    size_t n_weights[MAX_PARAM_LAYERS];
    float *bias[MAX_PARAM_LAYERS];
    size_t n_bias[MAX_PARAM_LAYERS];
} param_set;

static void param_set_read(param_set *set, const cnn_net *net)
{
    int count;
    memset(set, 0, sizeof *set);
    ck_assert_int_eq(cnn_net_layer_count(net, &count), CNN_OK);
    for (int i = 0; i < count; i++) {
        size_t nw, nb;
        if (cnn_layer_param_sizes(net, i, &nw, &nb) != CNN_OK)
            continue;
        ck_assert_int_lt(set->n_layers, MAX_PARAM_LAYERS);
        int at = set->n_layers++;
        set->layer[at] = i;
        set->n_weights[at] = nw;
        set->n_bias[at] = nb;
        set->weights[at] = test_xmalloc(nw * sizeof(float));
        set->bias[at] = test_xmalloc(nb * sizeof(float));
        ck_assert_int_eq(cnn_layer_get_weights(net, i, set->weights[at], nw, CNN_LAYOUT_NATIVE),
                         CNN_OK);
        if (nb)
            ck_assert_int_eq(cnn_layer_get_bias(net, i, set->bias[at], nb), CNN_OK);
    }
    ck_assert_int_gt(set->n_layers, 0);
}

static void param_set_free(param_set *set)
{
    for (int i = 0; i < set->n_layers; i++) {
        free(set->weights[i]);
        free(set->bias[i]);
    }
}

/* Writes the set into `net`; returns the number of calls that failed
 * (callable from a worker thread, so it does not assert). */
static int param_set_write(const param_set *set, cnn_net *net)
{
    int failed = 0;
    for (int i = 0; i < set->n_layers; i++) {
        failed += cnn_layer_set_weights(net, set->layer[i], set->weights[i], set->n_weights[i],
                                        CNN_LAYOUT_NATIVE) != CNN_OK;
        if (set->n_bias[i])
            failed += cnn_layer_set_bias(net, set->layer[i], set->bias[i], set->n_bias[i]) != CNN_OK;
    }
    return failed;
}

/* 1 when the net's parameters equal the set bit for bit. */
static int param_set_matches(const param_set *set, const cnn_net *net)
{
    int same = 1;
    for (int i = 0; i < set->n_layers && same; i++) {
        float *w = test_xmalloc(set->n_weights[i] * sizeof(float));
        same = cnn_layer_get_weights(net, set->layer[i], w, set->n_weights[i],
                                     CNN_LAYOUT_NATIVE) == CNN_OK &&
               memcmp(w, set->weights[i], set->n_weights[i] * sizeof(float)) == 0;
        free(w);
    }
    return same;
}

/* Outputs of one net for the shared inputs: one image at a time, and all at once. */
typedef struct reference {
    size_t out_floats;
    float *single; /* N_INPUTS results of batch 1, back to back */
    float *batched;
} reference;

static void reference_compute(reference *ref, cnn_net *net, const float *inputs)
{
    ref->out_floats = output_floats(net);
    ref->single = test_xmalloc(N_INPUTS * ref->out_floats * sizeof(float));
    ref->batched = test_xmalloc(N_INPUTS * ref->out_floats * sizeof(float));
    for (int i = 0; i < N_INPUTS; i++)
        ck_assert_int_eq(cnn_forward(net, inputs + (size_t)i * IMG_FLOATS, 1,
                                     ref->single + (size_t)i * ref->out_floats),
                         CNN_OK);
    ck_assert_int_eq(cnn_forward(net, inputs, N_INPUTS, ref->batched), CNN_OK);
}

static void reference_free(reference *ref)
{
    free(ref->single);
    free(ref->batched);
}

/* Forwards every input alone and the whole batch, and counts results that
 * differ from `ref` in any bit and calls that failed. */
static void forward_and_compare(cnn_net *net, const float *inputs, const reference *ref,
                                float *out, int *mismatches, int *failures)
{
    for (int i = 0; i < N_INPUTS; i++) {
        if (cnn_forward(net, inputs + (size_t)i * IMG_FLOATS, 1, out) != CNN_OK)
            ++*failures;
        else if (memcmp(out, ref->single + (size_t)i * ref->out_floats,
                        ref->out_floats * sizeof(float)) != 0)
            ++*mismatches;
    }
    if (cnn_forward(net, inputs, N_INPUTS, out) != CNN_OK)
        ++*failures;
    else if (memcmp(out, ref->batched, N_INPUTS * ref->out_floats * sizeof(float)) != 0)
        ++*mismatches;
}

typedef struct worker {
    pthread_t thread;
    cnn_net *net; /* the worker's own clone; only this thread touches it while running */
    const float *inputs;
    const reference *before;
    const reference *after;     /* expected once the worker has set `new_params` */
    const param_set *new_params;
    int switch_at;              /* iteration that sets new_params on the clone; -1 never */
    int min_iterations;
    const atomic_int *stop;     /* set by the main thread; checked after min_iterations */
    atomic_int progress;        /* iterations completed, read by the main thread */
    int mismatches;
    int failures;
    int switched_iterations;    /* iterations run after the switch */
} worker;

static void *worker_run(void *arg)
{
    worker *w = arg;
    float *out = test_xmalloc(N_INPUTS * w->before->out_floats * sizeof(float));
    const reference *expected = w->before;
    for (int it = 0; it < w->min_iterations || !atomic_load(w->stop); it++) {
        if (it == w->switch_at) {
            w->failures += param_set_write(w->new_params, w->net);
            expected = w->after;
        }
        forward_and_compare(w->net, w->inputs, expected, out, &w->mismatches, &w->failures);
        if (expected == w->after)
            w->switched_iterations++;
        atomic_store(&w->progress, it + 1);
    }
    free(out);
    return NULL;
}

/* The shared fixture of every test: inputs, the source, references for its
 * parameters (before) and for another seed's parameters (after). */
typedef struct fixture {
    float *inputs;
    cnn_net *source;
    param_set old_params, new_params;
    reference before, after;
    worker workers[N_THREADS];
    atomic_int stop;
} fixture;

static int iterations(void) { return test_small() ? 3 : 150; }

static void fixture_setup(fixture *f)
{
    test_rng rng;
    test_rng_seed(&rng, 20240611);
    f->inputs = test_xmalloc(N_INPUTS * IMG_FLOATS * sizeof(float));
    test_fill_uniform(&rng, f->inputs, N_INPUTS * IMG_FLOATS, -1.0f, 1.0f);

    /* "after" comes from an independently built net, so it does not rely on
     * copy-on-write being right. */
    cnn_net *other = build_net(2);
    param_set_read(&f->new_params, other);
    reference_compute(&f->after, other, f->inputs);
    cnn_net_destroy(other);

    f->source = build_net(1);
    param_set_read(&f->old_params, f->source);
    reference_compute(&f->before, f->source, f->inputs);
    /* Otherwise a worker that switched could not be told from one that did not. */
    ck_assert_int_ne(memcmp(f->before.batched, f->after.batched,
                            N_INPUTS * f->before.out_floats * sizeof(float)), 0);
    atomic_init(&f->stop, 0);
    for (int t = 0; t < N_THREADS; t++) {
        worker *w = &f->workers[t];
        memset(w, 0, sizeof *w);
        ck_assert_int_eq(cnn_net_clone(f->source, &w->net), CNN_OK);
        w->inputs = f->inputs;
        w->before = &f->before;
        w->after = &f->after;
        w->new_params = &f->new_params;
        w->switch_at = -1;
        w->min_iterations = iterations();
        w->stop = &f->stop;
        atomic_init(&w->progress, 0);
    }
}

static void fixture_start(fixture *f)
{
    for (int t = 0; t < N_THREADS; t++)
        ck_assert_int_eq(pthread_create(&f->workers[t].thread, NULL, worker_run, &f->workers[t]),
                         0);
}

/* Waits until every worker has completed `more` iterations beyond now. */
static void wait_for_progress(fixture *f, int more)
{
    int target[N_THREADS];
    for (int t = 0; t < N_THREADS; t++)
        target[t] = atomic_load(&f->workers[t].progress) + more;
    for (int t = 0; t < N_THREADS; t++)
        while (atomic_load(&f->workers[t].progress) < target[t])
            sched_yield();
}

static void fixture_join(fixture *f)
{
    atomic_store(&f->stop, 1);
    for (int t = 0; t < N_THREADS; t++)
        ck_assert_int_eq(pthread_join(f->workers[t].thread, NULL), 0);
}

static void assert_worker_clean(const worker *w, int t)
{
    ck_assert_msg(w->failures == 0, "worker %d: %d calls failed", t, w->failures);
    ck_assert_msg(w->mismatches == 0, "worker %d: %d results differ from the reference", t,
                  w->mismatches);
    ck_assert_int_ge(atomic_load(&w->progress), w->min_iterations);
}

static void fixture_teardown(fixture *f)
{
    for (int t = 0; t < N_THREADS; t++)
        cnn_net_destroy(f->workers[t].net);
    cnn_net_destroy(f->source);
    reference_free(&f->before);
    reference_free(&f->after);
    param_set_free(&f->old_params);
    param_set_free(&f->new_params);
    free(f->inputs);
}

/* Clones in four threads, and the source in the main thread beside them,
 * all reproduce the single-threaded results bit for bit. Then the source is
 * destroyed while it still shares every parameter block with the running
 * clones; they go on unaffected. */
START_TEST(test_clones_match_reference)
{
    fixture f;
    fixture_setup(&f);
    fixture_start(&f);
    float *out = test_xmalloc(N_INPUTS * f.before.out_floats * sizeof(float));
    int mismatches = 0, failures = 0;
    for (int it = 0; it < iterations(); it++)
        forward_and_compare(f.source, f.inputs, &f.before, out, &mismatches, &failures);
    free(out);
    wait_for_progress(&f, 1);
    cnn_net_destroy(f.source);
    f.source = NULL;
    wait_for_progress(&f, 2);
    fixture_join(&f);

    ck_assert_int_eq(failures, 0);
    ck_assert_int_eq(mismatches, 0);
    for (int t = 0; t < N_THREADS; t++) {
        assert_worker_clean(&f.workers[t], t);
        ck_assert(param_set_matches(&f.old_params, f.workers[t].net));
    }
    fixture_teardown(&f);
}
END_TEST

/* The main thread sets new parameters on the source while the clones run:
 * the source gets its own copy (its results switch to the new reference),
 * the clones keep the old parameters and results. Then the source (now with
 * blocks of its own) is destroyed while the clones still run. */
START_TEST(test_source_set_and_destroy_while_clones_run)
{
    fixture f;
    fixture_setup(&f);
    fixture_start(&f);
    wait_for_progress(&f, 1);

    int set_failures = param_set_write(&f.new_params, f.source);
    int source_new = param_set_matches(&f.new_params, f.source);
    float *out = test_xmalloc(N_INPUTS * f.before.out_floats * sizeof(float));
    int mismatches = 0, failures = 0;
    forward_and_compare(f.source, f.inputs, &f.after, out, &mismatches, &failures);
    free(out);

    wait_for_progress(&f, 2);
    cnn_net_destroy(f.source);
    f.source = NULL;
    wait_for_progress(&f, 2);
    fixture_join(&f);

    ck_assert_int_eq(set_failures, 0);
    ck_assert_msg(source_new, "the source does not hold the parameters just set");
    ck_assert_int_eq(failures, 0);
    ck_assert_msg(mismatches == 0, "the source's results after setting weights are not those "
                                   "of an independent net with the same weights");
    for (int t = 0; t < N_THREADS; t++) {
        assert_worker_clean(&f.workers[t], t);
        ck_assert_msg(param_set_matches(&f.old_params, f.workers[t].net),
                      "clone %d lost its parameters", t);
    }
    fixture_teardown(&f);
}
END_TEST

/* One worker sets new parameters on its own clone mid-run: its later results
 * match the new reference; the other clones and the source keep the old. */
START_TEST(test_clone_sets_own_weights_mid_run)
{
    fixture f;
    fixture_setup(&f);
    worker *changer = &f.workers[0];
    changer->switch_at = iterations() / 2 > 0 ? iterations() / 2 : 1;
    fixture_start(&f);
    while (atomic_load(&changer->progress) < changer->switch_at + 1)
        sched_yield();
    wait_for_progress(&f, 2); /* the others run on after the switch */
    fixture_join(&f);

    for (int t = 0; t < N_THREADS; t++)
        assert_worker_clean(&f.workers[t], t);
    ck_assert_int_gt(changer->switched_iterations, 0);
    ck_assert(param_set_matches(&f.new_params, changer->net));
    for (int t = 1; t < N_THREADS; t++)
        ck_assert_msg(param_set_matches(&f.old_params, f.workers[t].net),
                      "clone %d changed when clone 0 set its weights", t);
    ck_assert(param_set_matches(&f.old_params, f.source));
    float *out = test_xmalloc(N_INPUTS * f.before.out_floats * sizeof(float));
    int mismatches = 0, failures = 0;
    forward_and_compare(f.source, f.inputs, &f.before, out, &mismatches, &failures);
    free(out);
    ck_assert_int_eq(failures, 0);
    ck_assert_int_eq(mismatches, 0);
    fixture_teardown(&f);
}
END_TEST

static Suite *threads_suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("clones");
    tcase_add_test(tc, test_clones_match_reference);
    tcase_add_test(tc, test_source_set_and_destroy_while_clones_run);
    tcase_add_test(tc, test_clone_sets_own_weights_mid_run);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(threads_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
