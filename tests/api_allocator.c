/* The allocator hook: counting, when it may be changed, a failing allocator,
 * and a steady-state forward that allocates nothing. Every test puts the
 * default allocator back, since the hook is process-wide (CK_FORK=no runs
 * all tests in one process). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"
#include "support.h"

typedef struct counter {
    size_t allocs;
    size_t frees;
    size_t null_frees; /* free(NULL) is documented never to happen */
    int fail;          /* nonzero: every allocation fails */
} counter;

static void *counting_alloc(void *user, size_t size)
{
    counter *c = user;
    if (c->fail)
        return NULL;
    c->allocs++;
    return malloc(size);
}

static void counting_free(void *user, void *block)
{
    counter *c = user;
    if (!block) {
        c->null_frees++;
        return;
    }
    c->frees++;
    free(block);
}

static cnn_allocator counting_allocator(counter *c)
{
    memset(c, 0, sizeof *c);
    cnn_allocator a = { sizeof(cnn_allocator), counting_alloc, counting_free, c };
    return a;
}

START_TEST(allocator_counts_and_restores)
{
    counter c;
    cnn_allocator a = counting_allocator(&c);
    API_OK(cnn_set_allocator(&a));
    cnn_net *net = api_net_full();
    size_t x_count;
    float *x = api_fixed_input(net, 2, &x_count);
    float y[2 * 4];
    API_OK(cnn_forward(net, x, 2, y));
    cnn_net *clone = NULL;
    API_OK(cnn_net_clone(net, &clone));
    ck_assert_uint_gt(c.allocs, 5); /* net, message, layers, parameters, buffers */
    cnn_net_destroy(net);
    cnn_net_destroy(clone);
    ck_assert_msg(c.frees == c.allocs, "%zu allocations, %zu frees", c.allocs, c.frees);
    ck_assert_uint_eq(c.null_frees, 0);

    /* NULL restores malloc/free: the counter sees nothing more. */
    API_OK(cnn_set_allocator(NULL));
    size_t seen = c.allocs;
    net = api_net_full();
    API_OK(cnn_forward(net, x, 2, y));
    cnn_net_destroy(net);
    ck_assert_uint_eq(c.allocs, seen);
    ck_assert_uint_eq(c.frees, seen);
    free(x);
}
END_TEST

START_TEST(allocator_refused_while_a_net_exists)
{
    counter c;
    cnn_allocator a = counting_allocator(&c);
    cnn_net *net = NULL, *clone = NULL;
    API_OK(cnn_net_create(&net, 2, 2, 1));
    API_EXPECT_FAIL(CNN_E_STATE, NULL, cnn_set_allocator(&a), "cnn_set_allocator", "net");
    API_EXPECT_FAIL(CNN_E_STATE, NULL, cnn_set_allocator(NULL), "cnn_set_allocator");
    API_OK(cnn_net_clone(net, &clone));
    cnn_net_destroy(net);
    /* The clone is still a net made by the current allocator. */
    API_EXPECT_FAIL(CNN_E_STATE, NULL, cnn_set_allocator(&a), "cnn_set_allocator");
    cnn_net_destroy(clone);
    API_OK(cnn_set_allocator(&a));
    ck_assert_uint_eq(c.allocs, 0); /* the refusals installed nothing */
    API_OK(cnn_set_allocator(NULL));
}
END_TEST

START_TEST(allocator_bad_descriptors)
{
    counter good, other;
    cnn_allocator a = counting_allocator(&good);
    API_OK(cnn_set_allocator(&a));
    cnn_allocator bad = counting_allocator(&other);
    bad.struct_size = sizeof bad + 8;
    API_EXPECT_FAIL(CNN_E_STRUCT_SIZE, NULL, cnn_set_allocator(&bad), "cnn_set_allocator",
                    "struct_size");
    bad.struct_size = sizeof bad - sizeof(void *);
    API_EXPECT_FAIL(CNN_E_STRUCT_SIZE, NULL, cnn_set_allocator(&bad), "struct_size");
    bad.struct_size = sizeof bad;
    bad.alloc = NULL;
    API_EXPECT_FAIL(CNN_E_NULL_ARG, NULL, cnn_set_allocator(&bad), "cnn_set_allocator");
    bad.alloc = counting_alloc;
    bad.free = NULL;
    API_EXPECT_FAIL(CNN_E_NULL_ARG, NULL, cnn_set_allocator(&bad), "cnn_set_allocator");
    /* The allocator in place before the refusals is still the one used. */
    cnn_net *net = NULL;
    API_OK(cnn_net_create(&net, 2, 2, 1));
    ck_assert_uint_gt(good.allocs, 0);
    ck_assert_uint_eq(other.allocs, 0);
    cnn_net_destroy(net);
    ck_assert_uint_eq(good.frees, good.allocs);
    API_OK(cnn_set_allocator(NULL));
}
END_TEST

START_TEST(failing_allocator)
{
    counter c;
    cnn_allocator a = counting_allocator(&c);
    c.fail = 1;
    API_OK(cnn_set_allocator(&a));
    cnn_net *net = (cnn_net *)&c; /* must be reset to NULL */
    API_EXPECT_FAIL(CNN_E_NOMEM, NULL, cnn_net_create(&net, 4, 4, 1), "cnn_net_create",
                    "memory");
    ck_assert_ptr_null(net);
    /* No net was left behind, so the allocator may be changed again. */
    API_OK(cnn_set_allocator(NULL));
    ck_assert_uint_eq(c.null_frees, 0);
}
END_TEST

/* "later calls with the same batch size allocate nothing" (cnn_forward). */
START_TEST(steady_state_forward_allocates_nothing)
{
    counter c;
    cnn_allocator a = counting_allocator(&c);
    API_OK(cnn_set_allocator(&a));
    cnn_net *net = api_lenet();
    API_OK(cnn_net_init_params(net, CNN_INIT_HE_NORMAL, 3));
    const int batch = test_small() ? 2 : 8;
    size_t n_in;
    float *x = api_fixed_input(net, batch, &n_in);
    float *y1 = test_xmalloc((size_t)batch * 10 * sizeof(float));
    float *y2 = test_xmalloc((size_t)batch * 10 * sizeof(float));
    size_t before = c.allocs;
    API_OK(cnn_forward(net, x, batch, y1));
    ck_assert_uint_gt(c.allocs, before); /* the first run plans its buffers */
    size_t allocs = c.allocs, frees = c.frees;
    API_OK(cnn_forward(net, x, batch, y2));
    ck_assert_msg(c.allocs == allocs && c.frees == frees,
                  "the second forward allocated %zu and freed %zu blocks", c.allocs - allocs,
                  c.frees - frees);
    ck_assert_mem_eq(y1, y2, (size_t)batch * 10 * sizeof(float));
    cnn_net_destroy(net);
    ck_assert_uint_eq(c.frees, c.allocs);
    API_OK(cnn_set_allocator(NULL));
    free(x);
    free(y1);
    free(y2);
}
END_TEST

TCase *api_allocator_tcase(void)
{
    TCase *tc = tcase_create("allocator");
    tcase_add_test(tc, allocator_counts_and_restores);
    tcase_add_test(tc, allocator_refused_while_a_net_exists);
    tcase_add_test(tc, allocator_bad_descriptors);
    tcase_add_test(tc, failing_allocator);
    tcase_add_test(tc, steady_state_forward_allocates_nothing);
    return tc;
}
