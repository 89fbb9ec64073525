/* Allocation-failure injection through cnn_set_allocator. A scenario (a list
 * of steps, each one public call) is run once with no failure to count its
 * allocations and record its results; then, for every k, again with the k-th
 * allocation refused. The step that meets the refusal must return CNN_E_NOMEM
 * with a message and leave every net as it was; retried once allocation works,
 * it must succeed, and the rest of the scenario must give the recorded results.
 * Nothing may leak. New features add steps to the `steps` table. */
#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"
#include "support.h"

/* ---- the injecting allocator ---- */

/* Each block carries its size in front, so live bytes can be tracked. */
#define HEADER _Alignof(max_align_t)
_Static_assert(HEADER >= sizeof(size_t), "the header holds a size_t");

typedef struct injector {
    size_t count;       /* allocations asked for so far */
    size_t fail_at;     /* the 1-based allocation to refuse; 0: none */
    int fired;          /* that allocation was refused */
    long live_blocks;
    long long live_bytes;
    int foreign_free;   /* free() of a block this allocator did not hand out */
} injector;

static injector inj;

static void *inject_alloc(void *user, size_t size)
{
    injector *in = user;
    in->count++;
    if (in->count == in->fail_at) {
        in->fired = 1;
        return NULL;
    }
    if (size > SIZE_MAX - HEADER)
        return NULL;
    unsigned char *raw = malloc(HEADER + size);
    if (!raw)
        return NULL;
    memcpy(raw, &size, sizeof size);
    in->live_blocks++;
    in->live_bytes += (long long)size;
    return raw + HEADER;
}

static void inject_free(void *user, void *block)
{
    injector *in = user;
    unsigned char *raw = (unsigned char *)block - HEADER;
    size_t size;
    memcpy(&size, raw, sizeof size);
    if (in->live_blocks <= 0)
        in->foreign_free = 1;
    in->live_blocks--;
    in->live_bytes -= (long long)size;
    free(raw);
}

static const cnn_allocator injecting = { sizeof(cnn_allocator), inject_alloc, inject_free, &inj };

/* ---- the scenario ---- */

/* Input 5x5x2 -> conv 3x3 (3 filters, pad 1) -> relu -> max pool 2x2 -> dense 4
 * -> softmax; later the net grows by a dense 3. */
enum { IN_H = 5, IN_W = 5, IN_C = 2, IN_ELEMS = IN_H * IN_W * IN_C,
       CONV_WEIGHTS = 3 * 3 * 3 * IN_C, L_CONV = 0, L_DENSE = 3, DENSE_UNITS = 4,
       MAX_BATCH = 2, MAX_OUT = 8 };

enum { NET, CLONE, CLONE2, N_NETS };

typedef struct scenario {
    cnn_net *nets[N_NETS];
    float input[MAX_BATCH * IN_ELEMS];
    float output[MAX_BATCH * MAX_OUT];
    size_t output_n; /* floats the step wrote to `output` (forward steps) */
    unsigned char *workspace; /* the caller's scratch block (test_xmalloc, not the hook) */
} scenario;

static scenario sc;

static cnn_status step_create(scenario *s)
{
    return cnn_net_create(&s->nets[NET], IN_H, IN_W, IN_C);
}

static cnn_status step_add_conv(scenario *s)
{
    cnn_conv_desc d = CNN_CONV_DESC_INIT;
    d.filters = 3;
    d.pad_h = d.pad_w = 1;
    return cnn_layer_add_conv(s->nets[NET], &d, NULL);
}

static cnn_status step_add_relu(scenario *s)
{
    return cnn_layer_add_activation(s->nets[NET], CNN_ACT_RELU, 0.0f, NULL);
}

static cnn_status step_add_pool(scenario *s)
{
    cnn_pool_desc d = CNN_POOL_DESC_INIT;
    return cnn_layer_add_pool(s->nets[NET], &d, NULL);
}

static cnn_status step_add_dense(scenario *s)
{
    return cnn_layer_add_dense(s->nets[NET], DENSE_UNITS, 1, NULL);
}

static cnn_status step_add_softmax(scenario *s)
{
    return cnn_layer_add_softmax(s->nets[NET], NULL);
}

static cnn_status step_init_net(scenario *s)
{
    return cnn_net_init_params(s->nets[NET], CNN_INIT_HE_UNIFORM, 3);
}

static cnn_status forward(scenario *s, int net, int batch)
{
    int h, w, c;
    cnn_status st = cnn_net_output_shape(s->nets[net], &h, &w, &c);
    if (st != CNN_OK)
        return st;
    size_t n = (size_t)batch * (size_t)h * (size_t)w * (size_t)c;
    ck_assert(n <= sizeof s->output / sizeof s->output[0]);
    st = cnn_forward(s->nets[net], s->input, batch, s->output);
    s->output_n = st == CNN_OK ? n : 0;
    return st;
}

static cnn_status step_forward_net(scenario *s) { return forward(s, NET, 1); }
static cnn_status step_forward_net_batch2(scenario *s) { return forward(s, NET, 2); }
static cnn_status step_forward_clone(scenario *s) { return forward(s, CLONE, 1); }
static cnn_status step_forward_clone2(scenario *s) { return forward(s, CLONE2, 1); }

static cnn_status step_clone(scenario *s) { return cnn_net_clone(s->nets[NET], &s->nets[CLONE]); }
static cnn_status step_clone2(scenario *s)
{
    return cnn_net_clone(s->nets[NET], &s->nets[CLONE2]);
}

static cnn_status step_clone_set_weights(scenario *s)
{
    float w[CONV_WEIGHTS];
    test_rng rng;
    test_rng_seed(&rng, 21);
    test_fill_uniform(&rng, w, CONV_WEIGHTS, -0.5f, 0.5f);
    return cnn_layer_set_weights(s->nets[CLONE], L_CONV, w, CONV_WEIGHTS, CNN_LAYOUT_NATIVE);
}

static cnn_status step_clone_set_bias(scenario *s)
{
    const float b[DENSE_UNITS] = { 0.25f, -0.5f, 0.75f, -1.0f };
    return cnn_layer_set_bias(s->nets[CLONE], L_DENSE, b, DENSE_UNITS);
}

static cnn_status step_clone2_init(scenario *s)
{
    return cnn_net_init_params(s->nets[CLONE2], CNN_INIT_XAVIER_NORMAL, 8);
}

static cnn_status step_grow_net(scenario *s)
{
    return cnn_layer_add_dense(s->nets[NET], 3, 1, NULL);
}

static cnn_status step_threads_1(scenario *s) { return cnn_net_set_threads(s->nets[NET], 1); }
static cnn_status step_threads_2(scenario *s) { return cnn_net_set_threads(s->nets[NET], 2); }

/* A block of exactly the bytes a batch-2 forward needs, from the test's own heap. */
static cnn_status step_set_workspace(scenario *s)
{
    size_t bytes = 0;
    cnn_status st = cnn_net_workspace_size(s->nets[NET], MAX_BATCH, &bytes);
    if (st != CNN_OK)
        return st;
    free(s->workspace);
    s->workspace = test_xmalloc(bytes);
    return cnn_net_set_workspace(s->nets[NET], s->workspace, bytes);
}

static cnn_status step_own_workspace(scenario *s)
{
    return cnn_net_set_workspace(s->nets[NET], NULL, 0);
}

/* What a step is documented to allocate when nothing fails. */
typedef enum alloc_rule {
    ALLOCS_ANY,
    ALLOCS_SOME, /* it must allocate, or the injection would never reach it */
    ALLOCS_NONE  /* e.g. a forward with the batch size of the last one */
} alloc_rule;

#define ON_THREAD (-1)

typedef struct step {
    const char *name;
    cnn_status (*run)(scenario *s);
    int error_net;   /* index into nets[] whose message explains a failure; ON_THREAD */
    alloc_rule allocs;
    /* optional: more checks right after the step failed, before it is retried */
    void (*after_failure)(scenario *s, size_t k);
} step;

static void old_plan_kept(scenario *s, size_t k);

#define STEP(name, run, error_net, allocs) { name, run, error_net, allocs, NULL }

static const step steps[] = {
    STEP("cnn_net_create", step_create, ON_THREAD, ALLOCS_SOME),
    STEP("cnn_layer_add_conv", step_add_conv, NET, ALLOCS_SOME),
    STEP("cnn_layer_add_activation", step_add_relu, NET, ALLOCS_SOME),
    STEP("cnn_layer_add_pool", step_add_pool, NET, ALLOCS_SOME),
    STEP("cnn_layer_add_dense", step_add_dense, NET, ALLOCS_SOME),
    STEP("cnn_layer_add_softmax", step_add_softmax, NET, ALLOCS_SOME),
    STEP("cnn_net_init_params on an unshared net", step_init_net, NET, ALLOCS_ANY),
    STEP("first cnn_forward (plans buffers)", step_forward_net, NET, ALLOCS_SOME),
    STEP("cnn_forward, same batch", step_forward_net, NET, ALLOCS_NONE),
    { "cnn_forward, batch 2 (replans)", step_forward_net_batch2, NET, ALLOCS_SOME,
      old_plan_kept },
    STEP("cnn_net_clone", step_clone, NET, ALLOCS_SOME),
    STEP("cnn_layer_set_weights on the clone (copy-on-write)", step_clone_set_weights, CLONE,
         ALLOCS_SOME),
    STEP("cnn_layer_set_bias on the clone (copy-on-write)", step_clone_set_bias, CLONE,
         ALLOCS_SOME),
    STEP("cnn_forward on the clone", step_forward_clone, CLONE, ALLOCS_SOME),
    STEP("second cnn_net_clone", step_clone2, NET, ALLOCS_SOME),
    STEP("cnn_net_init_params on the second clone (copy-on-write)", step_clone2_init, CLONE2,
         ALLOCS_SOME),
    STEP("cnn_forward on the second clone", step_forward_clone2, CLONE2, ALLOCS_SOME),
    STEP("cnn_forward on the source after its clones changed", step_forward_net_batch2, NET,
         ALLOCS_NONE),
    STEP("cnn_layer_add_dense after the net ran", step_grow_net, NET, ALLOCS_SOME),
    STEP("cnn_forward after growth (replans)", step_forward_net, NET, ALLOCS_SOME),
    /* 1 then 2 threads, so the pool is started whatever the machine's default is */
    STEP("cnn_net_set_threads(1)", step_threads_1, NET, ALLOCS_NONE),
    STEP("cnn_forward at 1 thread (replans)", step_forward_net, NET, ALLOCS_SOME),
    STEP("cnn_net_set_threads(2)", step_threads_2, NET, ALLOCS_NONE),
    STEP("cnn_forward at 2 threads (starts the pool, replans)", step_forward_net, NET,
         ALLOCS_SOME),
    STEP("cnn_forward at 2 threads, same batch", step_forward_net, NET, ALLOCS_NONE),
    STEP("cnn_forward at 2 threads, batch 2 (replans)", step_forward_net_batch2, NET,
         ALLOCS_SOME),
    STEP("cnn_forward at 2 threads, batch 2 again", step_forward_net_batch2, NET, ALLOCS_NONE),
    STEP("cnn_net_set_workspace (caller's block)", step_set_workspace, NET, ALLOCS_NONE),
    STEP("first cnn_forward in the caller's workspace", step_forward_net_batch2, NET,
         ALLOCS_NONE),
    STEP("cnn_forward in the caller's workspace, batch 1", step_forward_net, NET, ALLOCS_NONE),
    STEP("cnn_net_set_workspace(NULL, 0)", step_own_workspace, NET, ALLOCS_NONE),
    STEP("cnn_forward back in the net's own memory", step_forward_net_batch2, NET, ALLOCS_SOME),
};

#define N_STEPS (sizeof steps / sizeof steps[0])

/* Results of the forward steps in the run without failures. */
static float reference[N_STEPS][MAX_BATCH * MAX_OUT];
static size_t reference_n[N_STEPS];

/* A failed replan keeps the old plan: batch 1 still runs without allocating
 * and gives what the first batch-1 forward gave. */
static void old_plan_kept(scenario *s, size_t k)
{
    size_t first = 0;
    while (steps[first].run != step_forward_net)
        first++;
    size_t before = inj.count;
    cnn_status st = forward(s, NET, 1);
    ck_assert_msg(st == CNN_OK && inj.count == before,
                  "k=%zu: after a failed replan, batch 1 gave \"%s\" and allocated %zu block(s)",
                  k, cnn_status_string(st), inj.count - before);
    ck_assert_msg(s->output_n == reference_n[first] &&
                      memcmp(s->output, reference[first], s->output_n * sizeof(float)) == 0,
                  "k=%zu: after a failed replan, batch 1 gives another result", k);
}

/* ---- observing the nets without allocating ---- */

typedef struct snapshot {
    unsigned char *bytes;
    size_t n, cap;
} snapshot;

static void snap_put(snapshot *s, const void *data, size_t n)
{
    if (s->n + n > s->cap) {
        size_t cap = (s->n + n) * 2;
        unsigned char *grown = test_xmalloc(cap);
        if (s->n)
            memcpy(grown, s->bytes, s->n);
        free(s->bytes);
        s->bytes = grown;
        s->cap = cap;
    }
    memcpy(s->bytes + s->n, data, n);
    s->n += n;
}

/* Handles, layer counts, output shapes and every parameter of every net. */
static void take_snapshot(const scenario *s, snapshot *out)
{
    out->n = 0;
    for (int i = 0; i < N_NETS; i++) {
        const cnn_net *net = s->nets[i];
        snap_put(out, &net, sizeof net);
        if (!net)
            continue;
        int layers = 0, shape[3] = { 0, 0, 0 };
        ck_assert_int_eq(cnn_net_layer_count(net, &layers), CNN_OK);
        ck_assert_int_eq(cnn_net_output_shape(net, &shape[0], &shape[1], &shape[2]), CNN_OK);
        snap_put(out, &layers, sizeof layers);
        snap_put(out, shape, sizeof shape);
        for (int l = 0; l < layers; l++) {
            cnn_layer_kind kind;
            ck_assert_int_eq(cnn_layer_kind_of(net, l, &kind), CNN_OK);
            snap_put(out, &kind, sizeof kind);
            if (kind != CNN_LAYER_CONV && kind != CNN_LAYER_DENSE)
                continue;
            size_t nw = 0, nb = 0;
            ck_assert_int_eq(cnn_layer_param_sizes(net, l, &nw, &nb), CNN_OK);
            float *p = test_xmalloc((nw + nb) * sizeof(float));
            ck_assert_int_eq(cnn_layer_get_weights(net, l, p, nw, CNN_LAYOUT_NATIVE), CNN_OK);
            if (nb)
                ck_assert_int_eq(cnn_layer_get_bias(net, l, p + nw, nb), CNN_OK);
            snap_put(out, p, (nw + nb) * sizeof(float));
            free(p);
        }
    }
}

/* Leaves known messages on the thread and on every net, so a failure must
 * replace them. -7777 and a NULL count allocate nothing. */
static void prime_messages(const scenario *s, char sentinel[N_NETS + 1][256])
{
    cnn_net *unused;
    ck_assert_int_eq(cnn_net_create(&unused, -7777, 1, 1), CNN_E_INVALID_ARG);
    snprintf(sentinel[N_NETS], 256, "%s", cnn_net_last_error(NULL));
    for (int i = 0; i < N_NETS; i++) {
        if (!s->nets[i])
            continue;
        ck_assert_int_eq(cnn_net_layer_count(s->nets[i], NULL), CNN_E_NULL_ARG);
        snprintf(sentinel[i], 256, "%s", cnn_net_last_error(s->nets[i]));
    }
}

static void destroy_nets(scenario *s)
{
    for (int i = 0; i < N_NETS; i++) {
        cnn_net_destroy(s->nets[i]);
        s->nets[i] = NULL;
    }
    free(s->workspace); /* only once no net can use it */
    s->workspace = NULL;
}

/* ---- one run of the scenario ---- */

/* Checks a step that met the refused allocation: CNN_E_NOMEM, a new message
 * where the step reports, and every net exactly as before. */
static void check_failed_step(const scenario *s, const step *st, cnn_status status, size_t k,
                              char sentinel[N_NETS + 1][256], const snapshot *before)
{
    ck_assert_msg(status == CNN_E_NOMEM, "k=%zu, %s: allocation refused, but returned \"%s\"", k,
                  st->name, cnn_status_string(status));
    const cnn_net *where = st->error_net == ON_THREAD ? NULL : s->nets[st->error_net];
    const char *msg = cnn_net_last_error(where);
    const char *old = sentinel[st->error_net == ON_THREAD ? N_NETS : st->error_net];
    ck_assert_msg(msg[0] != '\0' && strcmp(msg, old) != 0, "k=%zu, %s: no message for the failure",
                  k, st->name);
    snapshot after = { NULL, 0, 0 };
    take_snapshot(s, &after);
    ck_assert_msg(after.n == before->n && memcmp(after.bytes, before->bytes, after.n) == 0,
                  "k=%zu, %s: the failed call changed a net", k, st->name);
    free(after.bytes);
}

/* Runs every step with allocation `fail_at` refused (0: none); returns the
 * number of allocations made. The run with fail_at == 0 records the results. */
static size_t run_scenario(size_t fail_at)
{
    memset(&inj, 0, sizeof inj);
    inj.fail_at = fail_at;
    ck_assert_int_eq(cnn_set_allocator(&injecting), CNN_OK);
    memset(&sc, 0, sizeof sc);
    test_rng rng;
    test_rng_seed(&rng, 4);
    test_fill_uniform(&rng, sc.input, MAX_BATCH * IN_ELEMS, -1.0f, 1.0f);
    snapshot before = { NULL, 0, 0 };
    char sentinel[N_NETS + 1][256];

    for (size_t i = 0; i < N_STEPS; i++) {
        const step *st = &steps[i];
        take_snapshot(&sc, &before);
        prime_messages(&sc, sentinel);
        size_t count_before = inj.count;
        int fired_before = inj.fired;
        sc.output_n = 0;
        cnn_status status = st->run(&sc);
        if (inj.fired && !fired_before) {
            check_failed_step(&sc, st, status, fail_at, sentinel, &before);
            if (st->after_failure)
                st->after_failure(&sc, fail_at);
            status = st->run(&sc); /* allocation works again */
        } else if (fail_at == 0 && st->allocs == ALLOCS_SOME) {
            ck_assert_msg(inj.count > count_before, "%s allocated nothing", st->name);
        } else if (st->allocs == ALLOCS_NONE) {
            ck_assert_msg(inj.count == count_before, "k=%zu, %s allocated %zu block(s)", fail_at,
                          st->name, inj.count - count_before);
        }
        ck_assert_msg(status == CNN_OK, "k=%zu, %s: \"%s\" (%s)", fail_at, st->name,
                      cnn_status_string(status),
                      cnn_net_last_error(st->error_net == ON_THREAD ? NULL
                                                                    : sc.nets[st->error_net]));
        if (fail_at == 0) {
            memcpy(reference[i], sc.output, sc.output_n * sizeof(float));
            reference_n[i] = sc.output_n;
        } else {
            ck_assert_msg(sc.output_n == reference_n[i] &&
                              memcmp(sc.output, reference[i], sc.output_n * sizeof(float)) == 0,
                          "k=%zu, %s: result differs from the run without failures", fail_at,
                          st->name);
        }
    }
    free(before.bytes);

    destroy_nets(&sc);
    ck_assert_msg(inj.live_blocks == 0 && inj.live_bytes == 0 && !inj.foreign_free,
                  "k=%zu: %ld block(s), %lld byte(s) leaked%s", fail_at, inj.live_blocks,
                  inj.live_bytes, inj.foreign_free ? ", and a foreign block was freed" : "");
    ck_assert_int_eq(cnn_set_allocator(NULL), CNN_OK);
    if (fail_at)
        ck_assert_msg(inj.fired, "k=%zu: the scenario never reached that allocation", fail_at);
    return inj.count;
}

START_TEST(every_allocation_may_fail)
{
    size_t total = run_scenario(0);
    ck_assert_uint_gt(total, 0);
    for (size_t k = 1; k <= total; k++)
        run_scenario(k);
}
END_TEST

/* After a failed assertion (CK_FORK=no), leave no net and no allocator behind. */
static void teardown(void)
{
    destroy_nets(&sc);
    cnn_set_allocator(NULL);
}

static Suite *alloc_fail_suite(void)
{
    Suite *s = suite_create("alloc_fail");
    TCase *tc = tcase_create("injection");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, every_allocation_may_fail);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(alloc_fail_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
