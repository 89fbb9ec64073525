/* The packed weights of conv layers live in the forward plan and are packed
 * again only when the parameters' stamp changes (src/forward.c). These tests
 * show, through the public API only, that the copy is never stale: after
 * every way of changing parameters (set_weights in both layouts, set_bias,
 * init_params), after replans (batch size, thread count, a layer appended, a
 * new caller block), and across clones, each forward matches the double
 * reference of the parameters the net holds NOW. They also show that
 * repacking allocates nothing and that the copy is part of the workspace.
 * Layers on each conv path: narrow (few output channels), channel-lane direct,
 * wide direct (the AVX-512 loop where the CPU has it) and 1x1 stride 1. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"
#include "net_harness.h"
#include "reference.h"
#include "support.h"

#define TOL 1e-5       /* float net against the double reference */
#define MAX_BATCH 2    /* images of each model's input */
#define MAX_STAGES 2   /* conv + ReLU pairs in one model */

/* One conv layer (with bias, then a fused ReLU) on one of the paths. */
typedef struct conv_case {
    const char *name;
    int h, w, c;             /* input */
    int small_h, small_w;    /* input under test_small() (valgrind) */
    int filters, kernel, pad;
} conv_case;

static const conv_case cases[] = {
    { "narrow 28x28x1 -> 6 5x5 p2", 28, 28, 1, 10, 10, 6, 5, 2 },
    { "narrow 20x20x3 -> 3 3x3 p1", 20, 20, 3, 7, 7, 3, 3, 1 },
    { "narrow 24x24x2 -> 1 3x3 p1", 24, 24, 2, 6, 9, 1, 3, 1 },
    { "channel-lane 14x14x16 -> 32 3x3 p1", 14, 14, 16, 5, 5, 32, 3, 1 },
    { "wide 14x14x64 -> 64 3x3 p1", 14, 14, 64, 4, 4, 64, 3, 1 },
    { "1x1 7x7x32 -> 16", 7, 7, 32, 3, 4, 16, 1, 0 },
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- a model: a net and the parameters it should hold ---- */

typedef struct stage {
    int layer;        /* index of the conv layer in the net */
    ref_shape in;     /* per image (n = 1) */
    ref_window win;
    int filters;
    size_t n_weights;
    float *weights;   /* OHWI, what the net holds now */
    float *bias;
} stage;

typedef struct model {
    const char *name;
    cnn_net *net;
    int n_stages;
    stage stages[MAX_STAGES];
    ref_shape in;            /* per image */
    float *input;            /* MAX_BATCH images */
    test_rng rng;
    unsigned char *block;    /* the caller's workspace, or NULL: the net's own memory */
    size_t block_bytes;
} model;

static void model_set_native(model *m, int s);

static ref_shape stage_out(const stage *st) { return ref_window_shape(st->in, st->win, st->filters); }

static size_t model_out_elems(const model *m, int batch)
{
    ref_shape o = stage_out(&m->stages[m->n_stages - 1]);
    o.n = batch;
    return ref_elems(o);
}

static void set_bias_values(model *m, int s)
{
    stage *st = &m->stages[s];
    test_fill_uniform(&m->rng, st->bias, (size_t)st->filters, -1.0f, 1.0f);
    harness_ok(m->net, cnn_layer_set_bias(m->net, st->layer, st->bias, (size_t)st->filters),
               "cnn_layer_set_bias");
}

/* Appends conv (with bias) + ReLU and gives it random parameters. */
static void model_add_stage(model *m, int filters, int kernel, int pad)
{
    ck_assert_int_lt(m->n_stages, MAX_STAGES);
    stage *st = &m->stages[m->n_stages];
    st->in = m->n_stages ? stage_out(&m->stages[m->n_stages - 1]) : m->in;
    st->win = (ref_window){ kernel, kernel, 1, 1, pad, pad };
    st->filters = filters;
    cnn_conv_desc d = harness_conv_desc(st->win, filters, 1);
    harness_ok(m->net, cnn_layer_add_conv(m->net, &d, &st->layer), "add conv");
    harness_ok(m->net, cnn_layer_add_activation(m->net, CNN_ACT_RELU, 0.0f, NULL), "add relu");
    harness_ok(m->net, cnn_layer_param_sizes(m->net, st->layer, &st->n_weights, NULL), "sizes");
    ck_assert_uint_eq(st->n_weights, (size_t)filters * (size_t)(kernel * kernel * st->in.c));
    st->weights = test_xmalloc(st->n_weights * sizeof(float));
    st->bias = test_xmalloc((size_t)filters * sizeof(float));
    m->n_stages++;
    model_set_native(m, m->n_stages - 1);
    set_bias_values(m, m->n_stages - 1);
}

static void model_make(model *m, const conv_case *cc, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->name = cc->name;
    m->in = (ref_shape){ 1, test_small() ? cc->small_h : cc->h,
                         test_small() ? cc->small_w : cc->w, cc->c };
    test_rng_seed(&m->rng, seed);
    m->net = harness_net(m->in);
    harness_ok(m->net, cnn_net_set_threads(m->net, 1), "1 thread");
    ref_shape batch_in = m->in;
    batch_in.n = MAX_BATCH;
    m->input = harness_random(&m->rng, ref_elems(batch_in), -1.0f, 1.0f);
    model_add_stage(m, cc->filters, cc->kernel, cc->pad);
}

/* A model of `clone`, a clone of src's net, holding what src holds. */
static void model_copy(model *dst, const model *src, cnn_net *clone)
{
    *dst = *src;
    dst->net = clone;
    dst->block = NULL;
    dst->block_bytes = 0;
    ref_shape batch_in = src->in;
    batch_in.n = MAX_BATCH;
    dst->input = test_xmalloc(ref_elems(batch_in) * sizeof(float));
    memcpy(dst->input, src->input, ref_elems(batch_in) * sizeof(float));
    for (int s = 0; s < src->n_stages; s++) {
        stage *d = &dst->stages[s];
        d->weights = test_xmalloc(d->n_weights * sizeof(float));
        memcpy(d->weights, src->stages[s].weights, d->n_weights * sizeof(float));
        d->bias = test_xmalloc((size_t)d->filters * sizeof(float));
        memcpy(d->bias, src->stages[s].bias, (size_t)d->filters * sizeof(float));
    }
}

static void model_free(model *m)
{
    cnn_net_destroy(m->net); /* before its block */
    free(m->block);
    free(m->input);
    for (int s = 0; s < m->n_stages; s++) {
        free(m->stages[s].weights);
        free(m->stages[s].bias);
    }
    memset(m, 0, sizeof *m);
}

/* ---- changing parameters (the model follows) ---- */

static void model_set_native(model *m, int s)
{
    stage *st = &m->stages[s];
    test_fill_uniform(&m->rng, st->weights, st->n_weights, -1.0f, 1.0f);
    harness_ok(m->net, cnn_layer_set_weights(m->net, st->layer, st->weights, st->n_weights,
                                             CNN_LAYOUT_NATIVE),
               "cnn_layer_set_weights (native)");
}

static void model_set_pytorch(model *m, int s)
{
    stage *st = &m->stages[s];
    float *oihw = harness_random(&m->rng, st->n_weights, -1.0f, 1.0f);
    harness_ok(m->net, cnn_layer_set_weights(m->net, st->layer, oihw, st->n_weights,
                                             CNN_LAYOUT_PYTORCH),
               "cnn_layer_set_weights (PyTorch)");
    ref_oihw_to_ohwi(oihw, st->filters, st->win.kh, st->win.kw, st->in.c, st->weights);
    free(oihw);
}

/* init_params draws from the library's generator; the model reads back what
 * the net now holds (get_weights reads the parameters, not the packed copy). */
static void model_init(model *m, uint64_t seed)
{
    harness_ok(m->net, cnn_net_init_params(m->net, CNN_INIT_HE_UNIFORM, seed),
               "cnn_net_init_params");
    for (int s = 0; s < m->n_stages; s++) {
        stage *st = &m->stages[s];
        harness_ok(m->net, cnn_layer_get_weights(m->net, st->layer, st->weights, st->n_weights,
                                                 CNN_LAYOUT_NATIVE),
                   "get weights");
        harness_ok(m->net, cnn_layer_get_bias(m->net, st->layer, st->bias, (size_t)st->filters),
                   "get bias");
        for (int f = 0; f < st->filters; f++)
            ck_assert_msg(st->bias[f] == 0.0f, "init_params left bias %d at %g", f,
                          (double)st->bias[f]);
    }
}

/* ---- forwards ---- */

/* The caller's block for `batch` at the net's current layers and threads:
 * a new one when `fresh` or when the current one is too small. A new block
 * starts as NaN everywhere, so a packed copy not made in it shows. */
static void model_fit_block(model *m, int batch, int fresh)
{
    size_t bytes = 0;
    harness_ok(m->net, cnn_net_workspace_size(m->net, batch, &bytes), "workspace size");
    if (!fresh && m->block && bytes <= m->block_bytes)
        return;
    unsigned char *block = test_xmalloc(bytes);
    memset(block, 0xff, bytes);
    harness_ok(m->net, cnn_net_set_workspace(m->net, block, bytes), "set workspace");
    free(m->block); /* the net no longer uses it */
    m->block = block;
    m->block_bytes = bytes;
}

/* Double reference of the whole model for the first `batch` images. */
static double *model_reference(const model *m, int batch)
{
    ref_shape s = m->in;
    s.n = batch;
    double *x = harness_widen(m->input, ref_elems(s));
    for (int i = 0; i < m->n_stages; i++) {
        const stage *st = &m->stages[i];
        s = st->in;
        s.n = batch;
        ref_shape o = stage_out(st);
        o.n = batch;
        double *y = test_xmalloc(ref_elems(o) * sizeof(double));
        ref_conv(x, s, st->weights, st->bias, st->filters, st->win, y);
        ref_relu(y, ref_elems(o), y);
        free(x);
        x = y;
    }
    return x;
}

/* A forward of `batch` images that must match the reference of the
 * parameters the model says the net holds; returns its output. */
static float *model_check(model *m, int batch, const char *what)
{
    char msg[192];
    snprintf(msg, sizeof msg, "%s: %s, batch %d", m->name, what, batch);
    if (m->block)
        model_fit_block(m, batch, 0);
    const size_t n = model_out_elems(m, batch);
    float *y = harness_forward(m->net, m->input, batch, n);
    double *ref = model_reference(m, batch);
    harness_expect_close(y, ref, n, TOL, msg);
    free(ref);
    return y;
}

/* model_check after a change of parameters under the same plan: the output
 * must also differ from the previous one (which it replaces). */
static float *model_check_changed(model *m, int batch, float *prev, const char *what)
{
    float *y = model_check(m, batch, what);
    ck_assert_msg(memcmp(y, prev, model_out_elems(m, batch) * sizeof(float)) != 0,
                  "%s: %s: the output did not change", m->name, what);
    free(prev);
    return y;
}

/* The forward gives exactly `expected` (the same net state ran before). */
static void model_check_same(model *m, int batch, const float *expected, const char *what)
{
    if (m->block)
        model_fit_block(m, batch, 0);
    const size_t n = model_out_elems(m, batch);
    float *y = harness_forward(m->net, m->input, batch, n);
    ck_assert_msg(memcmp(y, expected, n * sizeof(float)) == 0,
                  "%s: %s: not bit-identical to the earlier forward", m->name, what);
    free(y);
}

static void set_threads(model *m, int threads)
{
    harness_ok(m->net, cnn_net_set_threads(m->net, threads), "cnn_net_set_threads");
}

/* ---- 1: every change of parameters, every replan ---- */

static void run_sequence(const conv_case *cc, int caller_block)
{
    model m;
    model_make(&m, cc, 0x5eed0000u + (uint64_t)caller_block);
    if (caller_block)
        model_fit_block(&m, 1, 1);
    float *y = model_check(&m, 1, "first forward");

    /* the same plan: each change must reach the next forward */
    model_set_native(&m, 0);
    y = model_check_changed(&m, 1, y, "set_weights native");
    model_set_pytorch(&m, 0);
    y = model_check_changed(&m, 1, y, "set_weights PyTorch");
    set_bias_values(&m, 0);
    y = model_check_changed(&m, 1, y, "set_bias");
    model_init(&m, 101);
    y = model_check_changed(&m, 1, y, "init_params seed 101");
    model_init(&m, 202);
    y = model_check_changed(&m, 1, y, "init_params seed 202");
    model_set_native(&m, 0);
    y = model_check_changed(&m, 1, y, "set_weights native after init_params");

    /* a new batch size: the replan alone, changes under the new plan, and a
     * change right before a replan */
    free(y);
    y = model_check(&m, 2, "batch 2, parameters unchanged");
    model_set_native(&m, 0);
    y = model_check_changed(&m, 2, y, "set_weights under the batch-2 plan");
    model_set_pytorch(&m, 0);
    y = model_check_changed(&m, 2, y, "set_weights PyTorch under the batch-2 plan");
    model_set_native(&m, 0);
    free(y);
    y = model_check(&m, 1, "set_weights, then back to batch 1");
    model_set_native(&m, 0);
    free(y);
    y = model_check(&m, 2, "set_weights, then batch 2 again");

    /* a new thread count likewise */
    set_threads(&m, 2);
    free(y);
    y = model_check(&m, 2, "2 threads, parameters unchanged");
    model_set_native(&m, 0);
    y = model_check_changed(&m, 2, y, "set_weights under the 2-thread plan");
    set_bias_values(&m, 0);
    y = model_check_changed(&m, 2, y, "set_bias under the 2-thread plan");
    model_init(&m, 303);
    y = model_check_changed(&m, 2, y, "init_params under the 2-thread plan");
    set_threads(&m, 1);
    model_set_pytorch(&m, 0);
    free(y);
    y = model_check(&m, 2, "set_weights, then back to 1 thread");
    set_threads(&m, 2);
    model_set_native(&m, 0);
    free(y);
    y = model_check(&m, 1, "set_weights, then 2 threads and batch 1");
    set_threads(&m, 1);
    free(y);
    y = model_check(&m, 1, "back to 1 thread, parameters unchanged");
    model_set_native(&m, 0);
    y = model_check_changed(&m, 1, y, "set_weights back at 1 thread, batch 1");

    if (caller_block) {
        /* a fresh (NaN) block after weights changed, and one with no change */
        model_set_native(&m, 0);
        model_fit_block(&m, 1, 1);
        y = model_check_changed(&m, 1, y, "set_weights, then a fresh block");
        model_fit_block(&m, 1, 1);
        model_check_same(&m, 1, y, "a fresh block, parameters unchanged");
        model_set_pytorch(&m, 0);
        y = model_check_changed(&m, 1, y, "set_weights in the fresh block");
    }

    /* a layer appended (another conv whose copy is planned after the first's) */
    model_set_native(&m, 0);
    model_add_stage(&m, 8, 3, 1);
    free(y);
    y = model_check(&m, 1, "set_weights, then a conv layer appended");
    model_set_native(&m, 0);
    y = model_check_changed(&m, 1, y, "set_weights of the first layer after the append");
    model_set_pytorch(&m, 1);
    y = model_check_changed(&m, 1, y, "set_weights of the appended layer");
    set_bias_values(&m, 1);
    y = model_check_changed(&m, 1, y, "set_bias of the appended layer");
    model_init(&m, 404);
    y = model_check_changed(&m, 1, y, "init_params of both layers");
    free(y);
    model_free(&m);
}

START_TEST(changes_reach_the_next_forward)
{
    run_sequence(&cases[_i], 0);
}
END_TEST

START_TEST(changes_reach_the_next_forward_in_a_caller_block)
{
    run_sequence(&cases[_i], 1);
}
END_TEST

/* The caller's block is only promised untouched DURING a forward pass: what
 * the caller writes into it between passes must not reach the output. */
START_TEST(caller_block_rewritten_between_forwards)
{
    model m;
    model_make(&m, &cases[_i], 0xb10cu);
    model_fit_block(&m, 1, 1);
    float *y = model_check(&m, 1, "first forward");
    memset(m.block, 0xff, m.block_bytes);
    model_check_same(&m, 1, y, "block overwritten with NaN between forwards");
    memset(m.block, 0, m.block_bytes);
    model_check_same(&m, 1, y, "block overwritten with zeros between forwards");
    free(y);
    model_free(&m);
}
END_TEST

/* One caller block handed to two nets used one after the other (the second
 * forward pass starts after the first returned, so neither is in flight). */
START_TEST(caller_block_shared_by_two_nets)
{
    model a, b;
    model_make(&a, &cases[_i], 0xa11u);
    model_make(&b, &cases[_i], 0xb22u);
    size_t bytes = 0;
    harness_ok(a.net, cnn_net_workspace_size(a.net, 1, &bytes), "workspace size");
    unsigned char *shared = test_xmalloc(bytes);
    memset(shared, 0xff, bytes);
    harness_ok(a.net, cnn_net_set_workspace(a.net, shared, bytes), "set workspace a");
    harness_ok(b.net, cnn_net_set_workspace(b.net, shared, bytes), "set workspace b");
    for (int round = 0; round < 2; round++) {
        free(model_check(&a, 1, round ? "net a again after net b" : "net a"));
        free(model_check(&b, 1, round ? "net b again after net a" : "net b"));
    }
    model_free(&a);
    model_free(&b);
    free(shared);
}
END_TEST

/* ---- 2: clones share parameter blocks but each packs its own copy ---- */

START_TEST(clones_pack_their_own_copies)
{
    model src, cl;
    model_make(&src, &cases[_i], 0xc10eu);
    float *ys = model_check(&src, 1, "source, weights A");
    cnn_net *clone = NULL;
    harness_ok(src.net, cnn_net_clone(src.net, &clone), "cnn_net_clone");
    model_copy(&cl, &src, clone); /* made after the source packed */
    cl.name = "clone";
    float *yc = model_check(&cl, 1, "clone's first forward, weights A");
    ck_assert_msg(memcmp(ys, yc, model_out_elems(&src, 1) * sizeof(float)) == 0,
                  "%s: the clone's first forward differs from its source's", src.name);

    model_set_native(&src, 0); /* B, on the source only */
    ys = model_check_changed(&src, 1, ys, "source after set_weights B");
    model_check_same(&cl, 1, yc, "clone keeps A after the source set B");
    free(model_check(&cl, 1, "clone keeps A (reference)"));

    model_set_pytorch(&cl, 0); /* C, on the clone only */
    yc = model_check_changed(&cl, 1, yc, "clone after set_weights C");
    model_check_same(&src, 1, ys, "source keeps B after the clone set C");

    set_bias_values(&src, 0);
    ys = model_check_changed(&src, 1, ys, "source after set_bias");
    model_check_same(&cl, 1, yc, "clone keeps its bias after the source's set_bias");

    model_free(&src);
    model_check_same(&cl, 1, yc, "clone after its source was destroyed");
    model_set_native(&cl, 0); /* now the only owner: written in place */
    yc = model_check_changed(&cl, 1, yc, "clone's set_weights as the only owner");
    model_init(&cl, 77);
    yc = model_check_changed(&cl, 1, yc, "clone's init_params as the only owner");
    free(ys);
    free(yc);
    model_free(&cl);
}
END_TEST

/* A source whose packed copy is stale when the clone is made (weights set in
 * place after it ran): neither may run on the old copy. */
START_TEST(clone_of_a_net_whose_copy_is_stale)
{
    model src, cl;
    model_make(&src, &cases[_i], 0x57a1eu);
    float *ys = model_check(&src, 1, "source, weights A");
    model_set_native(&src, 0); /* B, in place: no clone yet */
    cnn_net *clone = NULL;
    harness_ok(src.net, cnn_net_clone(src.net, &clone), "cnn_net_clone");
    model_copy(&cl, &src, clone);
    cl.name = "clone of a stale source";
    float *yc = model_check(&cl, 1, "clone's first forward, weights B");
    ys = model_check_changed(&src, 1, ys, "source's forward after set_weights B");
    ck_assert(memcmp(ys, yc, model_out_elems(&src, 1) * sizeof(float)) == 0);

    /* the clone dies; the source owns its block alone again and writes in place */
    model_free(&cl);
    model_set_pytorch(&src, 0);
    ys = model_check_changed(&src, 1, ys, "source's set_weights after its clone died");
    free(ys);
    free(yc);
    model_free(&src);
}
END_TEST

/* Clones in caller blocks of their own, at 2 threads. */
START_TEST(clones_in_caller_blocks)
{
    model src, cl;
    model_make(&src, &cases[_i], 0xc1b0u);
    set_threads(&src, 2);
    model_fit_block(&src, 2, 1);
    float *ys = model_check(&src, 2, "source, weights A");
    cnn_net *clone = NULL;
    harness_ok(src.net, cnn_net_clone(src.net, &clone), "cnn_net_clone");
    model_copy(&cl, &src, clone);
    cl.name = "clone in its own block";
    model_fit_block(&cl, 2, 1);
    float *yc = model_check(&cl, 2, "clone, weights A");
    model_set_native(&src, 0);
    ys = model_check_changed(&src, 2, ys, "source after set_weights B");
    model_check_same(&cl, 2, yc, "clone keeps A");
    model_set_native(&cl, 0);
    yc = model_check_changed(&cl, 2, yc, "clone after set_weights C");
    model_check_same(&src, 2, ys, "source keeps B");
    free(ys);
    free(yc);
    model_free(&src);
    model_free(&cl);
}
END_TEST

/* ---- 3: no allocation, and the copy is in the workspace ---- */

typedef struct counter {
    size_t allocs, frees;
} counter;

static void *counting_alloc(void *user, size_t size)
{
    ((counter *)user)->allocs++;
    return malloc(size);
}

static void counting_free(void *user, void *block)
{
    ((counter *)user)->frees++;
    free(block);
}

/* model_check, asserting the forward allocated nothing. */
static float *check_without_allocation(model *m, const counter *c, float *prev, const char *what)
{
    const size_t allocs = c->allocs, frees = c->frees;
    float *y = prev ? model_check_changed(m, 1, prev, what) : model_check(m, 1, what);
    ck_assert_msg(c->allocs == allocs && c->frees == frees,
                  "%s: %s: the forward allocated %zu and freed %zu blocks", m->name, what,
                  c->allocs - allocs, c->frees - frees);
    return y;
}

START_TEST(repacking_allocates_nothing)
{
    counter c = { 0, 0 };
    cnn_allocator a = { sizeof(cnn_allocator), counting_alloc, counting_free, &c };
    /* process-wide: only while no net exists (every other test destroys its nets) */
    ck_assert_int_eq(cnn_set_allocator(&a), CNN_OK);
    for (int i = 0; i < N_CASES; i++) {
        model m;
        model_make(&m, &cases[i], 0xa110cu + (uint64_t)i);
        model_fit_block(&m, 1, 1);
        float *y = check_without_allocation(&m, &c, NULL, "first forward in the caller's block");
        model_set_native(&m, 0);
        y = check_without_allocation(&m, &c, y, "after set_weights native");
        model_set_pytorch(&m, 0);
        y = check_without_allocation(&m, &c, y, "after set_weights PyTorch");
        model_init(&m, 9);
        y = check_without_allocation(&m, &c, y, "after init_params");

        /* a clone: its set_weights makes its own block (not a forward's doing) */
        cnn_net *clone = NULL;
        harness_ok(m.net, cnn_net_clone(m.net, &clone), "cnn_net_clone");
        model cl;
        model_copy(&cl, &m, clone);
        model_fit_block(&cl, 1, 1);
        float *yc = check_without_allocation(&cl, &c, NULL, "clone's first forward");
        model_set_native(&cl, 0);
        yc = check_without_allocation(&cl, &c, yc, "clone after set_weights");
        model_check_same(&m, 1, y, "source after its clone's set_weights");
        free(yc);
        model_free(&cl);

        /* the net's own memory: the first forward plans, the rest allocate nothing */
        harness_ok(m.net, cnn_net_set_workspace(m.net, NULL, 0), "own memory");
        free(m.block);
        m.block = NULL;
        m.block_bytes = 0;
        free(model_check(&m, 1, "first forward in the net's own memory"));
        model_set_native(&m, 0);
        y = check_without_allocation(&m, &c, y, "own memory, after set_weights");
        free(y);
        model_free(&m);
    }
    ck_assert_msg(c.frees == c.allocs, "%zu allocations, %zu frees", c.allocs, c.frees);
    ck_assert_int_eq(cnn_set_allocator(NULL), CNN_OK);
}
END_TEST

/* Bytes of scratch of a one-conv net (no bias, nothing after it). */
static size_t conv_net_workspace(int h, int w, int c, int filters, int kernel, int pad,
                                 int threads, size_t *weight_bytes)
{
    cnn_net *net = harness_net((ref_shape){ 1, h, w, c });
    const ref_window win = { kernel, kernel, 1, 1, pad, pad };
    cnn_conv_desc d = harness_conv_desc(win, filters, 0);
    harness_ok(net, cnn_layer_add_conv(net, &d, NULL), "add conv");
    harness_ok(net, cnn_net_set_threads(net, threads), "threads");
    size_t bytes = 0, count = 0;
    harness_ok(net, cnn_net_workspace_size(net, 1, &bytes), "workspace size");
    harness_ok(net, cnn_layer_param_sizes(net, 0, &count, NULL), "param sizes");
    *weight_bytes = count * sizeof(float);
    cnn_net_destroy(net);
    return bytes;
}

/* The packed copy is in cnn_net_workspace_size, once per net (not per thread).
 * A one-layer net has no buffers between layers, so besides the copy its
 * scratch is a small band (direct path) or im2col columns (which would be
 * far smaller than the weights here). 4x4x16 -> 448 3x3 is on the direct path
 * at every dispatch level (16 input channels, 64512 packed floats); 14x14x256
 * -> 256 3x3 only with AVX2, where its copy (2.25 MiB) outgrows the columns
 * im2col would need (1.7 MiB). */
START_TEST(workspace_holds_one_packed_copy)
{
    size_t weights = 0, weights2 = 0;
    size_t one = conv_net_workspace(4, 4, 16, 448, 3, 1, 1, &weights);
    size_t two = conv_net_workspace(4, 4, 16, 448, 3, 1, 2, &weights2);
    ck_assert_uint_eq(weights, weights2);
    ck_assert_msg(one >= weights, "4x4x16 -> 448: workspace %zu bytes < weights %zu", one,
                  weights);
    ck_assert_msg(two > one && two - one < weights,
                  "4x4x16 -> 448: 1 thread %zu bytes, 2 threads %zu: the copy is per thread?",
                  one, two);
    if (strstr(cnn_runtime_info(), "simd: avx2") != NULL) {
        size_t big = conv_net_workspace(14, 14, 256, 256, 3, 1, 1, &weights);
        ck_assert_msg(big >= weights, "14x14x256 -> 256: workspace %zu bytes < weights %zu",
                      big, weights);
    }
}
END_TEST

/* ---- 4: the same values again give the same bits ---- */

static void ohwi_to_oihw(const stage *st, float *oihw)
{
    const int kh = st->win.kh, kw = st->win.kw, c = st->in.c;
    for (int o = 0; o < st->filters; o++)
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++)
                for (int i = 0; i < c; i++)
                    oihw[(((size_t)o * (size_t)c + (size_t)i) * (size_t)kh + (size_t)y) *
                             (size_t)kw + (size_t)x] =
                        st->weights[(((size_t)o * (size_t)kh + (size_t)y) * (size_t)kw +
                                     (size_t)x) * (size_t)c + (size_t)i];
}

START_TEST(same_values_give_the_same_bits)
{
    for (int threads = 1; threads <= 2; threads++) {
        model m;
        model_make(&m, &cases[_i], 0x1d3u);
        set_threads(&m, threads);
        const stage *st = &m.stages[0];
        float *y = model_check(&m, 2, "first forward");
        harness_ok(m.net, cnn_layer_set_weights(m.net, st->layer, st->weights, st->n_weights,
                                                CNN_LAYOUT_NATIVE),
                   "the same weights again");
        model_check_same(&m, 2, y, "the same native weights set again");
        float *oihw = test_xmalloc(st->n_weights * sizeof(float));
        ohwi_to_oihw(st, oihw);
        harness_ok(m.net, cnn_layer_set_weights(m.net, st->layer, oihw, st->n_weights,
                                                CNN_LAYOUT_PYTORCH),
                   "the same weights in PyTorch layout");
        free(oihw);
        model_check_same(&m, 2, y, "the same weights set again in PyTorch layout");
        harness_ok(m.net, cnn_layer_set_bias(m.net, st->layer, st->bias, (size_t)st->filters),
                   "the same bias again");
        model_check_same(&m, 2, y, "the same bias set again");

        /* a new net with these parameters packs them for the first time */
        model fresh;
        model_make(&fresh, &cases[_i], 0x1d3u);
        set_threads(&fresh, threads);
        model_check_same(&fresh, 2, y, "a new net with the same parameters");
        model_free(&fresh);

        model_init(&m, 55);
        free(model_check(&m, 2, "init_params seed 55"));
        float *first = model_check(&m, 2, "init_params seed 55 (kept)");
        model_init(&m, 66);
        free(model_check(&m, 2, "init_params seed 66"));
        model_init(&m, 55);
        model_check_same(&m, 2, first, "init_params seed 55 again");
        free(first);
        free(y);
        model_free(&m);
    }
}
END_TEST

static Suite *packed_weights_suite(void)
{
    Suite *s = suite_create("packed_weights");
    TCase *changes = tcase_create("changes");
    tcase_add_loop_test(changes, changes_reach_the_next_forward, 0, N_CASES);
    tcase_add_loop_test(changes, changes_reach_the_next_forward_in_a_caller_block, 0, N_CASES);
    tcase_add_loop_test(changes, caller_block_rewritten_between_forwards, 0, N_CASES);
    tcase_add_loop_test(changes, caller_block_shared_by_two_nets, 0, N_CASES);
    suite_add_tcase(s, changes);
    TCase *clones = tcase_create("clones");
    tcase_add_loop_test(clones, clones_pack_their_own_copies, 0, N_CASES);
    tcase_add_loop_test(clones, clone_of_a_net_whose_copy_is_stale, 0, N_CASES);
    tcase_add_loop_test(clones, clones_in_caller_blocks, 0, N_CASES);
    suite_add_tcase(s, clones);
    TCase *memory = tcase_create("memory");
    tcase_add_test(memory, repacking_allocates_nothing);
    tcase_add_test(memory, workspace_holds_one_packed_copy);
    suite_add_tcase(s, memory);
    TCase *bits = tcase_create("bits");
    tcase_add_loop_test(bits, same_values_give_the_same_bits, 0, N_CASES);
    suite_add_tcase(s, bits);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(packed_weights_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
