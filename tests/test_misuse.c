/* Misuse of every public function: one table row per (function, class of bad
 * argument). Each row runs on a freshly built small net and checks the
 * documented status, that a message explains it, and that the net still
 * computes exactly what it did before the bad call. A second test fails when
 * a function exported by lib/libcnn.map has no row. */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"
#include "support.h"

/* The fixture net: 6x6x2 -> conv 3x3 (3 filters, pad 1) -> relu -> max pool 2x2
 * -> conv 1x1 (2 filters, no bias) -> dense 4 -> softmax. The sizes below follow
 * from that architecture (the tail is 1x1x4). */
enum {
    IN_H = 6, IN_W = 6, IN_C = 2, IN_ELEMS = IN_H * IN_W * IN_C,
    L_CONV = 0, L_RELU = 1, L_POOL = 2, L_CONV_NOBIAS = 3, L_DENSE = 4, L_SOFTMAX = 5,
    N_LAYERS = 6,
    CONV_WEIGHTS = 3 * 3 * 3 * IN_C, CONV_BIAS = 3,
    OUT_ELEMS = 4
};

/* Builders write the index only on success. */
#define INDEX_UNTOUCHED (-12345)

/* Every block the library asks for comes from here. The cap turns "huge size"
 * rows into a deterministic CNN_E_NOMEM instead of depending on overcommit. */
#define HEAP_CAP ((size_t)64 << 20)

typedef struct capped_heap {
    long live_blocks;
} capped_heap;

static capped_heap heap;

static void *capped_alloc(void *user, size_t size)
{
    capped_heap *h = user;
    void *block = size > HEAP_CAP ? NULL : malloc(size);
    if (block)
        h->live_blocks++;
    return block;
}

static void capped_free(void *user, void *block)
{
    capped_heap *h = user;
    h->live_blocks--;
    free(block);
}

static const cnn_allocator capped_allocator = { sizeof(cnn_allocator), capped_alloc, capped_free,
                                                &heap };

typedef struct fixture {
    cnn_net *net;
    cnn_net *other;  /* a second net a row made; the harness destroys it */
    float input[IN_ELEMS];
    float before[OUT_ELEMS];
    char thread_sentinel[256]; /* cnn_net_last_error(NULL) just before the call */
    unsigned char *workspace;  /* a caller's scratch block a row handed the net (malloc) */
} fixture;

static fixture fx;

/* Where the failure's message must appear. */
typedef enum error_place {
    ON_NET,      /* cnn_net_last_error(fixture net) */
    ON_OTHER,    /* cnn_net_last_error(the net the row made) */
    ON_THREAD,   /* cnn_net_last_error(NULL): the call had no net */
    NO_FAILURE   /* a call with no failure mode, or an allowed NULL: the row checks itself */
} error_place;

/* Which argument of the call the row makes bad. */
typedef enum bad_kind {
    BAD_NONE,    /* all arguments valid (behaviour rows) */
    BAD_NET,     /* NULL handle */
    BAD_PTR,     /* NULL buffer / out-pointer / descriptor number `slot` */
    BAD_LAYER,   /* layer index `value` (AT_COUNT: the layer count) */
    BAD_SIZE,    /* element count or struct_size: one of the SIZE_* cases in `value` */
    BAD_INT,     /* int argument number `slot` (or descriptor field at offset `slot`) = `value` */
    BAD_ENUM,    /* the enum argument = `value` */
    BAD_ORDER    /* a call not allowed in the current state */
} bad_kind;

#define AT_COUNT LLONG_MAX
#define ALL_SLOTS SIZE_MAX
enum { SIZE_ZERO, SIZE_ONE_LESS, SIZE_ONE_MORE, SIZE_HUGE };

typedef struct misuse_row misuse_row;
typedef cnn_status (*misuse_call)(fixture *f, const misuse_row *r);

struct misuse_row {
    const char *function; /* exported name, as in lib/libcnn.map */
    const char *what;     /* the class of misuse, for failure messages */
    misuse_call call;
    bad_kind bad;
    long long value;
    size_t slot;
    cnn_status expect;
    cnn_status also;      /* a second acceptable status, CNN_OK when there is none */
    error_place where;
};

/* ---- argument helpers: the valid value unless the row makes this one bad ---- */

static cnn_net *net_arg(const fixture *f, const misuse_row *r)
{
    return r->bad == BAD_NET ? NULL : f->net;
}

static void *ptr_arg(const misuse_row *r, size_t slot, void *valid)
{
    return r->bad == BAD_PTR && (r->slot == slot || r->slot == ALL_SLOTS) ? NULL : valid;
}

static int layer_arg(const misuse_row *r, int valid)
{
    if (r->bad != BAD_LAYER)
        return valid;
    return r->value == AT_COUNT ? N_LAYERS : (int)r->value;
}

static size_t size_arg(const misuse_row *r, size_t valid)
{
    if (r->bad != BAD_SIZE)
        return valid;
    switch (r->value) {
    case SIZE_ZERO: return 0;
    case SIZE_ONE_LESS: return valid - 1;
    case SIZE_ONE_MORE: return valid + 1;
    default: return SIZE_MAX;
    }
}

static int int_arg(const misuse_row *r, size_t slot, int valid)
{
    return r->bad == BAD_INT && (r->slot == slot || r->slot == ALL_SLOTS) ? (int)r->value : valid;
}

static int enum_arg(const misuse_row *r, int valid)
{
    return r->bad == BAD_ENUM ? (int)r->value : valid;
}

/* Writes the row's int into the descriptor field at offset `slot`. */
static void set_desc_field(const misuse_row *r, void *desc, size_t desc_size)
{
    if (r->bad != BAD_INT)
        return;
    ck_assert(r->slot + sizeof(int) <= desc_size);
    int v = (int)r->value;
    memcpy((unsigned char *)desc + r->slot, &v, sizeof v);
}

static void expect_ok(cnn_status st, const cnn_net *net, const char *what)
{
    ck_assert_msg(st == CNN_OK, "%s: %s (%s)", what, cnn_status_string(st),
                  cnn_net_last_error(net));
}

static void fill(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

/* ---- the fixture ---- */

static void fixture_build(fixture *f)
{
    cnn_net *net;
    expect_ok(cnn_net_create(&net, IN_H, IN_W, IN_C), NULL, "create");
    f->net = net;
    cnn_conv_desc conv = CNN_CONV_DESC_INIT;
    conv.filters = 3;
    conv.pad_h = conv.pad_w = 1;
    expect_ok(cnn_layer_add_conv(net, &conv, NULL), net, "conv");
    expect_ok(cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL), net, "relu");
    cnn_pool_desc pool = CNN_POOL_DESC_INIT;
    expect_ok(cnn_layer_add_pool(net, &pool, NULL), net, "pool");
    conv.filters = 2;
    conv.kernel_h = conv.kernel_w = 1;
    conv.pad_h = conv.pad_w = 0;
    conv.bias = 0;
    expect_ok(cnn_layer_add_conv(net, &conv, NULL), net, "conv 1x1");
    expect_ok(cnn_layer_add_dense(net, OUT_ELEMS, 1, NULL), net, "dense");
    expect_ok(cnn_layer_add_softmax(net, NULL), net, "softmax");
    expect_ok(cnn_net_init_params(net, CNN_INIT_HE_UNIFORM, 11), net, "init");
    const float conv_bias[CONV_BIAS] = { 0.1f, -0.2f, 0.3f };
    const float dense_bias[OUT_ELEMS] = { 0.05f, -0.1f, 0.15f, -0.2f };
    expect_ok(cnn_layer_set_bias(net, L_CONV, conv_bias, CONV_BIAS), net, "conv bias");
    expect_ok(cnn_layer_set_bias(net, L_DENSE, dense_bias, OUT_ELEMS), net, "dense bias");
    test_rng rng;
    test_rng_seed(&rng, 5);
    test_fill_uniform(&rng, f->input, IN_ELEMS, -1.0f, 1.0f);
    expect_ok(cnn_forward(net, f->input, 1, f->before), net, "forward");
}

static void fixture_destroy(fixture *f)
{
    cnn_net_destroy(f->other);
    cnn_net_destroy(f->net);
    f->other = NULL;
    f->net = NULL;
    free(f->workspace); /* only once no net can use it */
    f->workspace = NULL;
}

static void setup(void)
{
    memset(&fx, 0, sizeof fx);
    ck_assert_int_eq(cnn_set_allocator(&capped_allocator), CNN_OK);
    fixture_build(&fx);
}

/* Also runs after a failed row (so CK_FORK=no runs keep going cleanly). */
static void teardown(void)
{
    fixture_destroy(&fx);
    cnn_set_allocator(NULL);
}

/* ---- one caller per public function (plus a few for special cases) ---- */

static cnn_status call_version(fixture *f, const misuse_row *r)
{
    (void)f;
    (void)r;
    ck_assert_int_eq(cnn_version(), CNN_VERSION_NUMBER);
    return CNN_OK;
}

static cnn_status call_version_string(fixture *f, const misuse_row *r)
{
    (void)f;
    (void)r;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", CNN_VERSION_MAJOR, CNN_VERSION_MINOR,
             CNN_VERSION_PATCH);
    const char *got = cnn_version_string();
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    return CNN_OK;
}

static cnn_status call_status_string(fixture *f, const misuse_row *r)
{
    (void)f;
    const char *s = cnn_status_string((cnn_status)enum_arg(r, CNN_OK));
    ck_assert_msg(s != NULL && s[0] != '\0', "cnn_status_string(%lld) is NULL or empty", r->value);
    return CNN_OK;
}

static cnn_status call_layer_kind_name(fixture *f, const misuse_row *r)
{
    (void)f;
    const char *s = cnn_layer_kind_name((cnn_layer_kind)enum_arg(r, CNN_LAYER_CONV));
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "unknown");
    return CNN_OK;
}

static cnn_status call_net_create(fixture *f, const misuse_row *r)
{
    cnn_net *made = (cnn_net *)(void *)f; /* any non-NULL value: a failure must clear it */
    cnn_status st = cnn_net_create(ptr_arg(r, 0, &made), int_arg(r, 0, IN_H),
                                   int_arg(r, 1, IN_W), int_arg(r, 2, IN_C));
    if (st == CNN_OK)
        f->other = made;
    else if (r->bad != BAD_PTR)
        ck_assert_msg(made == NULL, "a failed cnn_net_create left *net non-NULL");
    return st;
}

static cnn_status call_net_destroy(fixture *f, const misuse_row *r)
{
    (void)f;
    (void)r;
    cnn_net_destroy(NULL);
    return CNN_OK;
}

static cnn_status call_net_clone(fixture *f, const misuse_row *r)
{
    cnn_net *made = (cnn_net *)(void *)f;
    cnn_status st = cnn_net_clone(net_arg(f, r), ptr_arg(r, 0, &made));
    if (st == CNN_OK)
        f->other = made;
    else if (r->bad != BAD_PTR)
        ck_assert_msg(made == NULL, "a failed cnn_net_clone left *clone non-NULL");
    return st;
}

/* NULL: the thread's message of the last failure with no net (the harness's
 * sentinel); a net on which nothing failed: the empty string. */
static cnn_status call_net_last_error(fixture *f, const misuse_row *r)
{
    const char *s = cnn_net_last_error(net_arg(f, r));
    ck_assert_ptr_nonnull(s);
    if (r->bad == BAD_NET)
        ck_assert_str_eq(s, f->thread_sentinel);
    else
        ck_assert_str_eq(s, "");
    return CNN_OK;
}

static cnn_status call_conv_desc_init(fixture *f, const misuse_row *r)
{
    (void)f;
    (void)r;
    cnn_conv_desc_init(NULL);
    cnn_conv_desc d;
    memset(&d, 0x5a, sizeof d);
    cnn_conv_desc_init(&d);
    ck_assert_uint_eq(d.struct_size, sizeof d);
    ck_assert(d.filters == 0 && d.kernel_h == 3 && d.kernel_w == 3 && d.stride_h == 1 &&
              d.stride_w == 1 && d.pad_h == 0 && d.pad_w == 0 && d.bias == 1);
    return CNN_OK;
}

static cnn_status call_pool_desc_init(fixture *f, const misuse_row *r)
{
    (void)f;
    (void)r;
    cnn_pool_desc_init(NULL);
    cnn_pool_desc d;
    memset(&d, 0x5a, sizeof d);
    cnn_pool_desc_init(&d);
    ck_assert_uint_eq(d.struct_size, sizeof d);
    ck_assert(d.kind == CNN_POOL_MAX && d.window_h == 2 && d.window_w == 2 && d.stride_h == 2 &&
              d.stride_w == 2 && d.pad_h == 0 && d.pad_w == 0 && d.count_pad == 1);
    return CNN_OK;
}

static cnn_status builder_done(cnn_status st, int index)
{
    if (st != CNN_OK)
        ck_assert_msg(index == INDEX_UNTOUCHED, "a failed builder wrote index %d", index);
    return st;
}

static cnn_status call_add_conv(fixture *f, const misuse_row *r)
{
    cnn_conv_desc d;
    cnn_conv_desc_init(&d);
    d.filters = 2;
    d.kernel_h = d.kernel_w = 1; /* fits the 1x1x4 tail */
    set_desc_field(r, &d, sizeof d);
    d.struct_size = size_arg(r, sizeof d);
    int index = INDEX_UNTOUCHED;
    return builder_done(cnn_layer_add_conv(net_arg(f, r), ptr_arg(r, 0, &d), &index), index);
}

_Static_assert(sizeof(cnn_pool_kind) == sizeof(int), "pool kind is written as an int field");

static cnn_status call_add_pool(fixture *f, const misuse_row *r)
{
    cnn_pool_desc d;
    cnn_pool_desc_init(&d);
    d.window_h = d.window_w = 1; /* fits the 1x1x4 tail */
    d.stride_h = d.stride_w = 1;
    set_desc_field(r, &d, sizeof d);
    d.struct_size = size_arg(r, sizeof d);
    int index = INDEX_UNTOUCHED;
    return builder_done(cnn_layer_add_pool(net_arg(f, r), ptr_arg(r, 0, &d), &index), index);
}

static cnn_status call_add_activation(fixture *f, const misuse_row *r)
{
    int index = INDEX_UNTOUCHED;
    cnn_activation kind = (cnn_activation)enum_arg(r, CNN_ACT_RELU);
    return builder_done(cnn_layer_add_activation(net_arg(f, r), kind, 0.01f, &index), index);
}

/* value 0: NaN slope; otherwise +-infinity with the value's sign. */
static cnn_status call_add_leaky_slope(fixture *f, const misuse_row *r)
{
    int index = INDEX_UNTOUCHED;
    float slope = r->value == 0 ? NAN : (r->value > 0 ? INFINITY : -INFINITY);
    return builder_done(cnn_layer_add_activation(f->net, CNN_ACT_LEAKY_RELU, slope, &index),
                        index);
}

static cnn_status call_add_dense(fixture *f, const misuse_row *r)
{
    int index = INDEX_UNTOUCHED;
    return builder_done(cnn_layer_add_dense(net_arg(f, r), int_arg(r, 0, 3), 1, &index), index);
}

static cnn_status call_add_softmax(fixture *f, const misuse_row *r)
{
    int index = INDEX_UNTOUCHED;
    return builder_done(cnn_layer_add_softmax(net_arg(f, r), &index), index);
}

static cnn_status call_forward(fixture *f, const misuse_row *r)
{
    float out[OUT_ELEMS];
    return cnn_forward(net_arg(f, r), ptr_arg(r, 0, f->input), int_arg(r, 0, 1),
                       ptr_arg(r, 1, out));
}

/* The output starts `value` floats after the input's start. */
static cnn_status call_forward_overlap(fixture *f, const misuse_row *r)
{
    float both[IN_ELEMS + OUT_ELEMS];
    memcpy(both, f->input, sizeof f->input);
    return cnn_forward(f->net, both, 1, both + r->value);
}

static cnn_status call_forward_empty_net(fixture *f, const misuse_row *r)
{
    (void)r;
    float out[IN_ELEMS];
    expect_ok(cnn_net_create(&f->other, IN_H, IN_W, IN_C), NULL, "create");
    return cnn_forward(f->other, f->input, 1, out);
}

static cnn_status call_param_sizes(fixture *f, const misuse_row *r)
{
    size_t w, b;
    return cnn_layer_param_sizes(net_arg(f, r), layer_arg(r, L_CONV), ptr_arg(r, 0, &w),
                                 ptr_arg(r, 1, &b));
}

static cnn_status call_set_weights(fixture *f, const misuse_row *r)
{
    float w[CONV_WEIGHTS + 1];
    fill(w, CONV_WEIGHTS + 1, 9.0f); /* would change the output if it got in */
    return cnn_layer_set_weights(net_arg(f, r), layer_arg(r, L_CONV), ptr_arg(r, 0, w),
                                 size_arg(r, CONV_WEIGHTS),
                                 (cnn_weight_layout)enum_arg(r, CNN_LAYOUT_NATIVE));
}

static cnn_status call_get_weights(fixture *f, const misuse_row *r)
{
    float w[CONV_WEIGHTS + 1];
    fill(w, CONV_WEIGHTS + 1, 7.0f);
    cnn_status st = cnn_layer_get_weights(net_arg(f, r), layer_arg(r, L_CONV), ptr_arg(r, 0, w),
                                          size_arg(r, CONV_WEIGHTS),
                                          (cnn_weight_layout)enum_arg(r, CNN_LAYOUT_NATIVE));
    for (int i = 0; st != CNN_OK && i < CONV_WEIGHTS + 1; i++)
        ck_assert_msg(w[i] == 7.0f, "a failed cnn_layer_get_weights wrote the buffer");
    return st;
}

static cnn_status call_set_bias(fixture *f, const misuse_row *r)
{
    float b[CONV_BIAS + 1];
    fill(b, CONV_BIAS + 1, 9.0f);
    return cnn_layer_set_bias(net_arg(f, r), layer_arg(r, L_CONV), ptr_arg(r, 0, b),
                              size_arg(r, CONV_BIAS));
}

static cnn_status call_get_bias(fixture *f, const misuse_row *r)
{
    float b[CONV_BIAS + 1];
    fill(b, CONV_BIAS + 1, 7.0f);
    cnn_status st = cnn_layer_get_bias(net_arg(f, r), layer_arg(r, L_CONV), ptr_arg(r, 0, b),
                                       size_arg(r, CONV_BIAS));
    for (int i = 0; st != CNN_OK && i < CONV_BIAS + 1; i++)
        ck_assert_msg(b[i] == 7.0f, "a failed cnn_layer_get_bias wrote the buffer");
    return st;
}

static cnn_status call_init_params(fixture *f, const misuse_row *r)
{
    return cnn_net_init_params(net_arg(f, r), (cnn_init)enum_arg(r, CNN_INIT_HE_UNIFORM), 99);
}

static cnn_status call_layer_count(fixture *f, const misuse_row *r)
{
    int n = -1;
    cnn_status st = cnn_net_layer_count(net_arg(f, r), ptr_arg(r, 0, &n));
    if (st != CNN_OK)
        ck_assert_int_eq(n, -1);
    return st;
}

static cnn_status call_kind_of(fixture *f, const misuse_row *r)
{
    cnn_layer_kind kind;
    return cnn_layer_kind_of(net_arg(f, r), layer_arg(r, L_CONV), ptr_arg(r, 0, &kind));
}

static cnn_status call_layer_output_shape(fixture *f, const misuse_row *r)
{
    int h, w, c;
    return cnn_layer_output_shape(net_arg(f, r), layer_arg(r, L_CONV), ptr_arg(r, 0, &h),
                                  ptr_arg(r, 1, &w), ptr_arg(r, 2, &c));
}

static cnn_status call_layer_param_count(fixture *f, const misuse_row *r)
{
    size_t n;
    return cnn_layer_param_count(net_arg(f, r), layer_arg(r, L_CONV), ptr_arg(r, 0, &n));
}

static cnn_status call_layer_flops(fixture *f, const misuse_row *r)
{
    uint64_t n;
    return cnn_layer_flops(net_arg(f, r), layer_arg(r, L_CONV), ptr_arg(r, 0, &n));
}

static cnn_status call_receptive_field(fixture *f, const misuse_row *r)
{
    int h, w;
    return cnn_layer_receptive_field(net_arg(f, r), layer_arg(r, L_CONV), ptr_arg(r, 0, &h),
                                     ptr_arg(r, 1, &w));
}

static cnn_status call_net_input_shape(fixture *f, const misuse_row *r)
{
    int h, w, c;
    return cnn_net_input_shape(net_arg(f, r), ptr_arg(r, 0, &h), ptr_arg(r, 1, &w),
                               ptr_arg(r, 2, &c));
}

static cnn_status call_net_output_shape(fixture *f, const misuse_row *r)
{
    int h, w, c;
    return cnn_net_output_shape(net_arg(f, r), ptr_arg(r, 0, &h), ptr_arg(r, 1, &w),
                                ptr_arg(r, 2, &c));
}

static cnn_status call_net_param_count(fixture *f, const misuse_row *r)
{
    size_t n;
    return cnn_net_param_count(net_arg(f, r), ptr_arg(r, 0, &n));
}

static cnn_status call_net_flops(fixture *f, const misuse_row *r)
{
    uint64_t n;
    return cnn_net_flops(net_arg(f, r), ptr_arg(r, 0, &n));
}

/* A count the library accepts must read back (0: the available cores, at
 * least 1); a refused one must leave the count as it was. The default is
 * restored, so the harness's forward starts no extra threads. */
static cnn_status call_set_threads(fixture *f, const misuse_row *r)
{
    int before = -1, after = -1;
    expect_ok(cnn_net_get_threads(f->net, &before), f->net, "get threads");
    int asked = int_arg(r, 0, 1);
    cnn_status st = cnn_net_set_threads(net_arg(f, r), asked);
    expect_ok(cnn_net_get_threads(f->net, &after), f->net, "get threads");
    if (st != CNN_OK) {
        ck_assert_msg(after == before, "a failed cnn_net_set_threads changed %d to %d", before,
                      after);
        return st;
    }
    ck_assert_msg(asked == 0 ? after >= 1 : after == asked, "asked %d threads, got %d", asked,
                  after);
    expect_ok(cnn_net_set_threads(f->net, 0), f->net, "restore threads");
    return st;
}

static cnn_status call_get_threads(fixture *f, const misuse_row *r)
{
    int n = -1;
    cnn_status st = cnn_net_get_threads(net_arg(f, r), ptr_arg(r, 0, &n));
    if (st != CNN_OK)
        ck_assert_msg(n == -1, "a failed cnn_net_get_threads wrote %d", n);
    return st;
}

static cnn_status call_workspace_size(fixture *f, const misuse_row *r)
{
    size_t bytes = 12345;
    cnn_status st = cnn_net_workspace_size(net_arg(f, r), int_arg(r, 0, 1), ptr_arg(r, 0, &bytes));
    if (st != CNN_OK)
        ck_assert_msg(bytes == 12345, "a failed cnn_net_workspace_size wrote %zu", bytes);
    else
        ck_assert_msg(bytes > 0, "cnn_net_workspace_size gave 0 bytes");
    return st;
}

/* Two layers of (just under) INT_MAX elements per image: the buffer between
 * them for INT_MAX images does not fit the address space. */
static cnn_status call_workspace_size_overflow(fixture *f, const misuse_row *r)
{
    (void)r;
    expect_ok(cnn_net_create(&f->other, 46340, 46340, 1), NULL, "create");
    expect_ok(cnn_layer_add_activation(f->other, CNN_ACT_RELU, 0.0f, NULL), f->other, "relu");
    expect_ok(cnn_layer_add_activation(f->other, CNN_ACT_TANH, 0.0f, NULL), f->other, "tanh");
    size_t bytes = 12345;
    cnn_status st = cnn_net_workspace_size(f->other, INT_MAX, &bytes);
    if (st != CNN_OK)
        ck_assert_msg(bytes == 12345, "a failed cnn_net_workspace_size wrote %zu", bytes);
    return st;
}

/* Hands the net a block of exactly cnn_net_workspace_size(batch 1) bytes (or
 * NULL for BAD_PTR); the harness's forward then runs in it. */
static cnn_status call_set_workspace(fixture *f, const misuse_row *r)
{
    size_t need = 0;
    expect_ok(cnn_net_workspace_size(f->net, 1, &need), f->net, "workspace size");
    f->workspace = test_xmalloc(need);
    return cnn_net_set_workspace(net_arg(f, r), ptr_arg(r, 0, f->workspace), need);
}

/* NULL, 0 after a block: the net returns to its own memory. The block is freed
 * at once, so a net that still used it would be caught by valgrind / ASan. */
static cnn_status call_set_workspace_release(fixture *f, const misuse_row *r)
{
    expect_ok(call_set_workspace(f, r), f->net, "set workspace");
    float out[OUT_ELEMS];
    expect_ok(cnn_forward(f->net, f->input, 1, out), f->net, "forward in the block");
    cnn_status st = cnn_net_set_workspace(f->net, NULL, 0);
    free(f->workspace);
    f->workspace = NULL;
    return st;
}

/* A block of size_arg(cnn_net_workspace_size(1 image)) bytes; value 2 in
 * `slot` 1 instead runs 2 images in a block sized for 1. cnn_forward must
 * refuse without writing the output; the net gets its own memory back after. */
static cnn_status call_forward_small_workspace(fixture *f, const misuse_row *r)
{
    size_t need = 0;
    expect_ok(cnn_net_workspace_size(f->net, 1, &need), f->net, "workspace size");
    f->workspace = test_xmalloc(need);
    size_t given = r->bad == BAD_SIZE ? size_arg(r, need) : need;
    expect_ok(cnn_net_set_workspace(f->net, f->workspace, given), f->net, "set workspace");
    int batch = int_arg(r, 1, 1);
    float in[2 * IN_ELEMS], out[2 * OUT_ELEMS];
    memcpy(in, f->input, sizeof f->input);
    memcpy(in + IN_ELEMS, f->input, sizeof f->input);
    fill(out, 2 * OUT_ELEMS, 7.0f);
    cnn_status st = cnn_forward(f->net, in, batch, out);
    for (int i = 0; st != CNN_OK && i < 2 * OUT_ELEMS; i++)
        ck_assert_msg(out[i] == 7.0f, "a refused cnn_forward wrote the output");
    /* a success does not replace the failure's message, which the harness checks */
    expect_ok(cnn_net_set_workspace(f->net, NULL, 0), f->net, "back to own memory");
    return st;
}

static cnn_status call_runtime_info(fixture *f, const misuse_row *r)
{
    (void)f;
    (void)r;
    const char *first = cnn_runtime_info();
    ck_assert_msg(first != NULL && first[0] != '\0', "cnn_runtime_info is NULL or empty");
    const char *again = cnn_runtime_info();
    ck_assert_ptr_nonnull(again);
    ck_assert_str_eq(again, first);
    return CNN_OK;
}

/* While the fixture net exists. value 0: restore the default (NULL);
 * 1: the allocator already installed. */
static cnn_status call_set_allocator_live(fixture *f, const misuse_row *r)
{
    (void)f;
    return cnn_set_allocator(r->value ? &capped_allocator : NULL);
}

/* With no net alive, so that only the argument is wrong; the fixture is rebuilt
 * afterwards (deterministically, so the harness's comparison still holds). */
static cnn_status call_set_allocator_args(fixture *f, const misuse_row *r)
{
    cnn_allocator a = capped_allocator;
    a.struct_size = size_arg(r, sizeof a);
    if (ptr_arg(r, 0, &a) == NULL)
        a.alloc = NULL;
    if (ptr_arg(r, 1, &a) == NULL)
        a.free = NULL;
    fixture_destroy(f);
    cnn_status st = cnn_set_allocator(&a);
    fixture_build(f);
    return st;
}

/* ---- the table ---- */

#define ROW(fn, what, call, bad, value, slot, expect, where) \
    { #fn, what, call, bad, value, slot, expect, CNN_OK, where }
#define NULL_NET(fn, call) ROW(fn, "NULL net", call, BAD_NET, 0, 0, CNN_E_NULL_ARG, ON_THREAD)
#define NULL_PTR(fn, what, call, slot) \
    ROW(fn, what, call, BAD_PTR, 0, slot, CNN_E_NULL_ARG, ON_NET)
#define NULLS_ALLOWED(fn, call) \
    ROW(fn, "NULL out-pointers are allowed", call, BAD_PTR, 0, ALL_SLOTS, CNN_OK, NO_FAILURE)
#define BAD_INDEXES(fn, call)                                                              \
    ROW(fn, "layer -1", call, BAD_LAYER, -1, 0, CNN_E_INDEX, ON_NET),                      \
    ROW(fn, "layer == count", call, BAD_LAYER, AT_COUNT, 0, CNN_E_INDEX, ON_NET),          \
    ROW(fn, "layer INT_MAX", call, BAD_LAYER, INT_MAX, 0, CNN_E_INDEX, ON_NET),            \
    ROW(fn, "layer INT_MIN", call, BAD_LAYER, INT_MIN, 0, CNN_E_INDEX, ON_NET)
#define BAD_COUNTS(fn, call)                                                               \
    ROW(fn, "count 0", call, BAD_SIZE, SIZE_ZERO, 0, CNN_E_BUFFER_SIZE, ON_NET),           \
    ROW(fn, "count one short", call, BAD_SIZE, SIZE_ONE_LESS, 0, CNN_E_BUFFER_SIZE, ON_NET), \
    ROW(fn, "count one over", call, BAD_SIZE, SIZE_ONE_MORE, 0, CNN_E_BUFFER_SIZE, ON_NET), \
    ROW(fn, "count SIZE_MAX", call, BAD_SIZE, SIZE_HUGE, 0, CNN_E_BUFFER_SIZE, ON_NET)
#define BAD_STRUCT_SIZES(fn, call, where)                                                  \
    ROW(fn, "struct_size 0", call, BAD_SIZE, SIZE_ZERO, 0, CNN_E_STRUCT_SIZE, where),      \
    ROW(fn, "struct_size one short", call, BAD_SIZE, SIZE_ONE_LESS, 0, CNN_E_STRUCT_SIZE, where), \
    ROW(fn, "struct_size one over", call, BAD_SIZE, SIZE_ONE_MORE, 0, CNN_E_STRUCT_SIZE, where), \
    ROW(fn, "struct_size SIZE_MAX", call, BAD_SIZE, SIZE_HUGE, 0, CNN_E_STRUCT_SIZE, where)
#define CONV_FIELD(what, field, value, expect) \
    ROW(cnn_layer_add_conv, what, call_add_conv, BAD_INT, value, \
        offsetof(cnn_conv_desc, field), expect, ON_NET)
#define POOL_FIELD(what, field, value, expect) \
    ROW(cnn_layer_add_pool, what, call_add_pool, BAD_INT, value, \
        offsetof(cnn_pool_desc, field), expect, ON_NET)

static const misuse_row rows[] = {
    ROW(cnn_version, "equals CNN_VERSION_NUMBER", call_version, BAD_NONE, 0, 0, CNN_OK,
        NO_FAILURE),
    ROW(cnn_version_string, "is MAJOR.MINOR.PATCH", call_version_string, BAD_NONE, 0, 0, CNN_OK,
        NO_FAILURE),
    ROW(cnn_status_string, "unknown status 99", call_status_string, BAD_ENUM, 99, 0, CNN_OK,
        NO_FAILURE),
    ROW(cnn_status_string, "unknown status -1", call_status_string, BAD_ENUM, -1, 0, CNN_OK,
        NO_FAILURE),
    ROW(cnn_layer_kind_name, "unknown kind 99", call_layer_kind_name, BAD_ENUM, 99, 0, CNN_OK,
        NO_FAILURE),
    ROW(cnn_layer_kind_name, "unknown kind -1", call_layer_kind_name, BAD_ENUM, -1, 0, CNN_OK,
        NO_FAILURE),

    ROW(cnn_net_create, "NULL out-pointer", call_net_create, BAD_PTR, 0, 0, CNN_E_NULL_ARG,
        ON_THREAD),
    ROW(cnn_net_create, "height 0", call_net_create, BAD_INT, 0, 0, CNN_E_INVALID_ARG, ON_THREAD),
    ROW(cnn_net_create, "width -1", call_net_create, BAD_INT, -1, 1, CNN_E_INVALID_ARG,
        ON_THREAD),
    ROW(cnn_net_create, "channels INT_MIN", call_net_create, BAD_INT, INT_MIN, 2,
        CNN_E_INVALID_ARG, ON_THREAD),
    ROW(cnn_net_create, "height INT_MAX", call_net_create, BAD_INT, INT_MAX, 0, CNN_E_OVERFLOW,
        ON_THREAD),
    ROW(cnn_net_create, "all sizes INT_MAX", call_net_create, BAD_INT, INT_MAX, ALL_SLOTS,
        CNN_E_OVERFLOW, ON_THREAD),
    ROW(cnn_net_destroy, "NULL is allowed", call_net_destroy, BAD_NET, 0, 0, CNN_OK, NO_FAILURE),
    NULL_NET(cnn_net_clone, call_net_clone),
    NULL_PTR(cnn_net_clone, "NULL out-pointer", call_net_clone, 0),
    ROW(cnn_net_last_error, "NULL gives the thread's message", call_net_last_error, BAD_NET, 0,
        0, CNN_OK, NO_FAILURE),
    ROW(cnn_net_last_error, "empty before any failure", call_net_last_error, BAD_NONE, 0, 0,
        CNN_OK, NO_FAILURE),

    ROW(cnn_conv_desc_init, "NULL is ignored", call_conv_desc_init, BAD_PTR, 0, 0, CNN_OK,
        NO_FAILURE),
    NULL_NET(cnn_layer_add_conv, call_add_conv),
    NULL_PTR(cnn_layer_add_conv, "NULL descriptor", call_add_conv, 0),
    BAD_STRUCT_SIZES(cnn_layer_add_conv, call_add_conv, ON_NET),
    CONV_FIELD("filters 0 (left unset)", filters, 0, CNN_E_INVALID_ARG),
    CONV_FIELD("filters -1", filters, -1, CNN_E_INVALID_ARG),
    /* 4 x INT_MAX weights fit size_t but not the (capped) heap */
    CONV_FIELD("filters INT_MAX", filters, INT_MAX, CNN_E_NOMEM),
    CONV_FIELD("kernel_h 0", kernel_h, 0, CNN_E_INVALID_ARG),
    CONV_FIELD("kernel_w -1", kernel_w, -1, CNN_E_INVALID_ARG),
    CONV_FIELD("kernel_h INT_MAX", kernel_h, INT_MAX, CNN_E_SHAPE),
    CONV_FIELD("stride_h 0", stride_h, 0, CNN_E_INVALID_ARG),
    CONV_FIELD("stride_w INT_MIN", stride_w, INT_MIN, CNN_E_INVALID_ARG),
    CONV_FIELD("pad_h -1", pad_h, -1, CNN_E_INVALID_ARG),
    CONV_FIELD("pad_w INT_MAX", pad_w, INT_MAX, CNN_E_OVERFLOW),

    ROW(cnn_pool_desc_init, "NULL is ignored", call_pool_desc_init, BAD_PTR, 0, 0, CNN_OK,
        NO_FAILURE),
    NULL_NET(cnn_layer_add_pool, call_add_pool),
    NULL_PTR(cnn_layer_add_pool, "NULL descriptor", call_add_pool, 0),
    BAD_STRUCT_SIZES(cnn_layer_add_pool, call_add_pool, ON_NET),
    POOL_FIELD("unknown kind 99", kind, 99, CNN_E_INVALID_ARG),
    POOL_FIELD("unknown kind -1", kind, -1, CNN_E_INVALID_ARG),
    POOL_FIELD("window_h 0", window_h, 0, CNN_E_INVALID_ARG),
    POOL_FIELD("window_w -1", window_w, -1, CNN_E_INVALID_ARG),
    POOL_FIELD("window_h INT_MAX", window_h, INT_MAX, CNN_E_SHAPE),
    POOL_FIELD("stride_h 0", stride_h, 0, CNN_E_INVALID_ARG),
    POOL_FIELD("stride_w -1", stride_w, -1, CNN_E_INVALID_ARG),
    POOL_FIELD("pad_h -1", pad_h, -1, CNN_E_INVALID_ARG),
    POOL_FIELD("pad_w more than half the window", pad_w, 1, CNN_E_INVALID_ARG),
    POOL_FIELD("pad_h INT_MAX", pad_h, INT_MAX, CNN_E_INVALID_ARG),

    NULL_NET(cnn_layer_add_activation, call_add_activation),
    ROW(cnn_layer_add_activation, "unknown kind 99", call_add_activation, BAD_ENUM, 99, 0,
        CNN_E_INVALID_ARG, ON_NET),
    ROW(cnn_layer_add_activation, "unknown kind -1", call_add_activation, BAD_ENUM, -1, 0,
        CNN_E_INVALID_ARG, ON_NET),
    ROW(cnn_layer_add_activation, "leaky slope NaN", call_add_leaky_slope, BAD_INT, 0, 0,
        CNN_E_INVALID_ARG, ON_NET),
    ROW(cnn_layer_add_activation, "leaky slope +inf", call_add_leaky_slope, BAD_INT, 1, 0,
        CNN_E_INVALID_ARG, ON_NET),
    ROW(cnn_layer_add_activation, "leaky slope -inf", call_add_leaky_slope, BAD_INT, -1, 0,
        CNN_E_INVALID_ARG, ON_NET),

    NULL_NET(cnn_layer_add_dense, call_add_dense),
    ROW(cnn_layer_add_dense, "units 0", call_add_dense, BAD_INT, 0, 0, CNN_E_INVALID_ARG, ON_NET),
    ROW(cnn_layer_add_dense, "units -1", call_add_dense, BAD_INT, -1, 0, CNN_E_INVALID_ARG,
        ON_NET),
    ROW(cnn_layer_add_dense, "units INT_MIN", call_add_dense, BAD_INT, INT_MIN, 0,
        CNN_E_INVALID_ARG, ON_NET),
    /* 4 x INT_MAX weights fit size_t but not the (capped) heap */
    ROW(cnn_layer_add_dense, "units INT_MAX", call_add_dense, BAD_INT, INT_MAX, 0, CNN_E_NOMEM,
        ON_NET),

    NULL_NET(cnn_layer_add_softmax, call_add_softmax),

    NULL_NET(cnn_forward, call_forward),
    NULL_PTR(cnn_forward, "NULL input", call_forward, 0),
    NULL_PTR(cnn_forward, "NULL output", call_forward, 1),
    ROW(cnn_forward, "batch 0", call_forward, BAD_INT, 0, 0, CNN_E_INVALID_ARG, ON_NET),
    ROW(cnn_forward, "batch -1", call_forward, BAD_INT, -1, 0, CNN_E_INVALID_ARG, ON_NET),
    ROW(cnn_forward, "batch INT_MIN", call_forward, BAD_INT, INT_MIN, 0, CNN_E_INVALID_ARG,
        ON_NET),
    /* The buffers cannot hold INT_MAX images: the library must refuse before
     * touching them, either because the claimed ranges overlap or because the
     * (capped) heap cannot plan buffers that large. */
    { "cnn_forward", "batch INT_MAX", call_forward, BAD_INT, INT_MAX, 0, CNN_E_NOMEM,
      CNN_E_OVERLAP, ON_NET },
    ROW(cnn_forward, "output == input", call_forward_overlap, BAD_PTR, 0, 0, CNN_E_OVERLAP,
        ON_NET),
    ROW(cnn_forward, "output overlaps the input's last float", call_forward_overlap, BAD_PTR,
        IN_ELEMS - 1, 0, CNN_E_OVERLAP, ON_NET),
    ROW(cnn_forward, "forward on an empty net", call_forward_empty_net, BAD_ORDER, 0, 0,
        CNN_E_EMPTY_NET, ON_OTHER),

    NULL_NET(cnn_layer_param_sizes, call_param_sizes),
    BAD_INDEXES(cnn_layer_param_sizes, call_param_sizes),
    ROW(cnn_layer_param_sizes, "activation layer", call_param_sizes, BAD_LAYER, L_RELU, 0,
        CNN_E_LAYER_KIND, ON_NET),
    ROW(cnn_layer_param_sizes, "pool layer", call_param_sizes, BAD_LAYER, L_POOL, 0,
        CNN_E_LAYER_KIND, ON_NET),
    ROW(cnn_layer_param_sizes, "softmax layer", call_param_sizes, BAD_LAYER, L_SOFTMAX, 0,
        CNN_E_LAYER_KIND, ON_NET),
    NULLS_ALLOWED(cnn_layer_param_sizes, call_param_sizes),

    NULL_NET(cnn_layer_set_weights, call_set_weights),
    NULL_PTR(cnn_layer_set_weights, "NULL buffer", call_set_weights, 0),
    BAD_COUNTS(cnn_layer_set_weights, call_set_weights),
    BAD_INDEXES(cnn_layer_set_weights, call_set_weights),
    ROW(cnn_layer_set_weights, "activation layer", call_set_weights, BAD_LAYER, L_RELU, 0,
        CNN_E_LAYER_KIND, ON_NET),
    ROW(cnn_layer_set_weights, "unknown layout 99", call_set_weights, BAD_ENUM, 99, 0,
        CNN_E_INVALID_ARG, ON_NET),
    ROW(cnn_layer_set_weights, "unknown layout -1", call_set_weights, BAD_ENUM, -1, 0,
        CNN_E_INVALID_ARG, ON_NET),

    NULL_NET(cnn_layer_get_weights, call_get_weights),
    NULL_PTR(cnn_layer_get_weights, "NULL buffer", call_get_weights, 0),
    BAD_COUNTS(cnn_layer_get_weights, call_get_weights),
    BAD_INDEXES(cnn_layer_get_weights, call_get_weights),
    ROW(cnn_layer_get_weights, "pool layer", call_get_weights, BAD_LAYER, L_POOL, 0,
        CNN_E_LAYER_KIND, ON_NET),
    ROW(cnn_layer_get_weights, "unknown layout 99", call_get_weights, BAD_ENUM, 99, 0,
        CNN_E_INVALID_ARG, ON_NET),

    NULL_NET(cnn_layer_set_bias, call_set_bias),
    NULL_PTR(cnn_layer_set_bias, "NULL buffer", call_set_bias, 0),
    BAD_COUNTS(cnn_layer_set_bias, call_set_bias),
    BAD_INDEXES(cnn_layer_set_bias, call_set_bias),
    ROW(cnn_layer_set_bias, "softmax layer", call_set_bias, BAD_LAYER, L_SOFTMAX, 0,
        CNN_E_LAYER_KIND, ON_NET),
    ROW(cnn_layer_set_bias, "conv built without bias", call_set_bias, BAD_LAYER, L_CONV_NOBIAS,
        0, CNN_E_LAYER_KIND, ON_NET),

    NULL_NET(cnn_layer_get_bias, call_get_bias),
    NULL_PTR(cnn_layer_get_bias, "NULL buffer", call_get_bias, 0),
    BAD_COUNTS(cnn_layer_get_bias, call_get_bias),
    BAD_INDEXES(cnn_layer_get_bias, call_get_bias),
    ROW(cnn_layer_get_bias, "activation layer", call_get_bias, BAD_LAYER, L_RELU, 0,
        CNN_E_LAYER_KIND, ON_NET),
    ROW(cnn_layer_get_bias, "conv built without bias", call_get_bias, BAD_LAYER, L_CONV_NOBIAS,
        0, CNN_E_LAYER_KIND, ON_NET),

    NULL_NET(cnn_net_init_params, call_init_params),
    ROW(cnn_net_init_params, "unknown scheme 99", call_init_params, BAD_ENUM, 99, 0,
        CNN_E_INVALID_ARG, ON_NET),
    ROW(cnn_net_init_params, "unknown scheme -1", call_init_params, BAD_ENUM, -1, 0,
        CNN_E_INVALID_ARG, ON_NET),

    NULL_NET(cnn_net_layer_count, call_layer_count),
    NULL_PTR(cnn_net_layer_count, "NULL count", call_layer_count, 0),

    NULL_NET(cnn_layer_kind_of, call_kind_of),
    NULL_PTR(cnn_layer_kind_of, "NULL kind", call_kind_of, 0),
    BAD_INDEXES(cnn_layer_kind_of, call_kind_of),

    NULL_NET(cnn_layer_output_shape, call_layer_output_shape),
    BAD_INDEXES(cnn_layer_output_shape, call_layer_output_shape),
    NULLS_ALLOWED(cnn_layer_output_shape, call_layer_output_shape),

    NULL_NET(cnn_layer_param_count, call_layer_param_count),
    NULL_PTR(cnn_layer_param_count, "NULL count", call_layer_param_count, 0),
    BAD_INDEXES(cnn_layer_param_count, call_layer_param_count),

    NULL_NET(cnn_layer_flops, call_layer_flops),
    NULL_PTR(cnn_layer_flops, "NULL flops", call_layer_flops, 0),
    BAD_INDEXES(cnn_layer_flops, call_layer_flops),

    NULL_NET(cnn_layer_receptive_field, call_receptive_field),
    BAD_INDEXES(cnn_layer_receptive_field, call_receptive_field),
    NULLS_ALLOWED(cnn_layer_receptive_field, call_receptive_field),

    NULL_NET(cnn_net_input_shape, call_net_input_shape),
    NULLS_ALLOWED(cnn_net_input_shape, call_net_input_shape),
    NULL_NET(cnn_net_output_shape, call_net_output_shape),
    NULLS_ALLOWED(cnn_net_output_shape, call_net_output_shape),
    NULL_NET(cnn_net_param_count, call_net_param_count),
    NULL_PTR(cnn_net_param_count, "NULL count", call_net_param_count, 0),
    NULL_NET(cnn_net_flops, call_net_flops),
    NULL_PTR(cnn_net_flops, "NULL flops", call_net_flops, 0),

    NULL_NET(cnn_net_set_threads, call_set_threads),
    ROW(cnn_net_set_threads, "one thread", call_set_threads, BAD_NONE, 0, 0, CNN_OK, NO_FAILURE),
    ROW(cnn_net_set_threads, "0 means every core", call_set_threads, BAD_INT, 0, 0, CNN_OK,
        NO_FAILURE),
    ROW(cnn_net_set_threads, "1024 is the maximum", call_set_threads, BAD_INT, 1024, 0, CNN_OK,
        NO_FAILURE),
    ROW(cnn_net_set_threads, "threads -1", call_set_threads, BAD_INT, -1, 0, CNN_E_INVALID_ARG,
        ON_NET),
    ROW(cnn_net_set_threads, "threads INT_MIN", call_set_threads, BAD_INT, INT_MIN, 0,
        CNN_E_INVALID_ARG, ON_NET),
    ROW(cnn_net_set_threads, "threads 1025", call_set_threads, BAD_INT, 1025, 0,
        CNN_E_INVALID_ARG, ON_NET),
    ROW(cnn_net_set_threads, "threads INT_MAX", call_set_threads, BAD_INT, INT_MAX, 0,
        CNN_E_INVALID_ARG, ON_NET),

    NULL_NET(cnn_net_get_threads, call_get_threads),
    NULL_PTR(cnn_net_get_threads, "NULL threads", call_get_threads, 0),

    NULL_NET(cnn_net_workspace_size, call_workspace_size),
    NULL_PTR(cnn_net_workspace_size, "NULL bytes", call_workspace_size, 0),
    ROW(cnn_net_workspace_size, "batch 0", call_workspace_size, BAD_INT, 0, 0, CNN_E_INVALID_ARG,
        ON_NET),
    ROW(cnn_net_workspace_size, "batch -1", call_workspace_size, BAD_INT, -1, 0,
        CNN_E_INVALID_ARG, ON_NET),
    ROW(cnn_net_workspace_size, "batch INT_MIN", call_workspace_size, BAD_INT, INT_MIN, 0,
        CNN_E_INVALID_ARG, ON_NET),
    ROW(cnn_net_workspace_size, "INT_MAX images of INT_MAX elements",
        call_workspace_size_overflow, BAD_INT, INT_MAX, 0, CNN_E_OVERFLOW, ON_OTHER),

    NULL_NET(cnn_net_set_workspace, call_set_workspace),
    NULL_PTR(cnn_net_set_workspace, "NULL block with bytes > 0", call_set_workspace, 0),
    ROW(cnn_net_set_workspace, "a block of exactly cnn_net_workspace_size bytes",
        call_set_workspace, BAD_NONE, 0, 0, CNN_OK, NO_FAILURE),
    ROW(cnn_net_set_workspace, "NULL, 0 returns to the net's own memory",
        call_set_workspace_release, BAD_NONE, 0, 0, CNN_OK, NO_FAILURE),
    ROW(cnn_forward, "caller's workspace one byte too small", call_forward_small_workspace,
        BAD_SIZE, SIZE_ONE_LESS, 0, CNN_E_BUFFER_SIZE, ON_NET),
    ROW(cnn_forward, "caller's workspace of 0 bytes", call_forward_small_workspace, BAD_SIZE,
        SIZE_ZERO, 0, CNN_E_BUFFER_SIZE, ON_NET),
    ROW(cnn_forward, "2 images in a workspace sized for 1", call_forward_small_workspace,
        BAD_INT, 2, 1, CNN_E_BUFFER_SIZE, ON_NET),

    ROW(cnn_runtime_info, "never NULL or empty", call_runtime_info, BAD_NONE, 0, 0, CNN_OK,
        NO_FAILURE),

    ROW(cnn_set_allocator, "restore the default while a net exists", call_set_allocator_live,
        BAD_ORDER, 0, 0, CNN_E_STATE, ON_THREAD),
    ROW(cnn_set_allocator, "replace the allocator while a net exists", call_set_allocator_live,
        BAD_ORDER, 1, 0, CNN_E_STATE, ON_THREAD),
    BAD_STRUCT_SIZES(cnn_set_allocator, call_set_allocator_args, ON_THREAD),
    ROW(cnn_set_allocator, "NULL alloc callback", call_set_allocator_args, BAD_PTR, 0, 0,
        CNN_E_NULL_ARG, ON_THREAD),
    ROW(cnn_set_allocator, "NULL free callback", call_set_allocator_args, BAD_PTR, 0, 1,
        CNN_E_NULL_ARG, ON_THREAD),
};

#define N_ROWS ((int)(sizeof rows / sizeof rows[0]))

/* ---- the harness ---- */

/* Leaves a known message in the thread's slot, so a row can tell that its
 * call wrote a new one. -7777 appears in no row. */
static void prime_thread_error(fixture *f)
{
    cnn_net *unused;
    ck_assert_int_eq(cnn_net_create(&unused, -7777, 1, 1), CNN_E_INVALID_ARG);
    snprintf(f->thread_sentinel, sizeof f->thread_sentinel, "%s", cnn_net_last_error(NULL));
    ck_assert(f->thread_sentinel[0] != '\0');
}

static void check_message(const fixture *f, const misuse_row *r)
{
    const char *msg = NULL;
    switch (r->where) {
    case ON_NET: msg = cnn_net_last_error(f->net); break;
    case ON_OTHER: msg = cnn_net_last_error(f->other); break;
    case ON_THREAD:
        msg = cnn_net_last_error(NULL);
        ck_assert_msg(msg && strcmp(msg, f->thread_sentinel) != 0,
                      "%s (%s): no new message for cnn_net_last_error(NULL)", r->function,
                      r->what);
        break;
    case NO_FAILURE:
        /* nothing failed, so the fixture net's message stays empty */
        msg = cnn_net_last_error(f->net);
        ck_assert_msg(msg && msg[0] == '\0', "%s (%s): message \"%s\" after a call that did not fail",
                      r->function, r->what, msg ? msg : "(null)");
        return;
    }
    ck_assert_msg(msg && msg[0] != '\0', "%s (%s): empty error message", r->function, r->what);
}

/* The fixture still has its layers and computes exactly what it did before. */
static void check_fixture_intact(const fixture *f, const misuse_row *r, const float *before)
{
    int count = -1, h = 0, w = 0, c = 0;
    ck_assert_int_eq(cnn_net_layer_count(f->net, &count), CNN_OK);
    ck_assert_msg(count == N_LAYERS, "%s (%s): layer count %d, was %d", r->function, r->what,
                  count, N_LAYERS);
    ck_assert_int_eq(cnn_net_output_shape(f->net, &h, &w, &c), CNN_OK);
    ck_assert(h == 1 && w == 1 && c == OUT_ELEMS);
    float after[OUT_ELEMS];
    cnn_status st = cnn_forward(f->net, f->input, 1, after);
    ck_assert_msg(st == CNN_OK, "%s (%s): forward afterwards failed: %s", r->function, r->what,
                  cnn_net_last_error(f->net));
    ck_assert_msg(memcmp(after, before, sizeof after) == 0,
                  "%s (%s): the net computes something else after the call", r->function,
                  r->what);
}

START_TEST(misuse_row_test)
{
    const misuse_row *r = &rows[_i];
    float before[OUT_ELEMS];
    memcpy(before, fx.before, sizeof before);
    prime_thread_error(&fx);

    cnn_status st = r->call(&fx, r);

    ck_assert_msg(st == r->expect || (r->also != CNN_OK && st == r->also),
                  "%s (%s): returned \"%s\", documented \"%s\"", r->function, r->what,
                  cnn_status_string(st), cnn_status_string(r->expect));
    check_message(&fx, r);
    cnn_net_destroy(fx.other);
    fx.other = NULL;
    check_fixture_intact(&fx, r, before);
    fixture_destroy(&fx);
    ck_assert_msg(heap.live_blocks == 0, "%s (%s): %ld blocks leaked", r->function, r->what,
                  heap.live_blocks);
}
END_TEST

/* ---- coverage: every function of lib/libcnn.map has a row ---- */

#define MAX_SYMBOLS 512
#define MAX_NAME 64

/* Identifiers starting with "cnn_" outside comments of a linker version script. */
static int read_exported(const char *path, char names[][MAX_NAME], int max)
{
    FILE *in = fopen(path, "r");
    ck_assert_msg(in != NULL, "cannot open the symbol map %s", path);
    int n = 0, c, prev = 0;
    char word[MAX_NAME];
    size_t len = 0;
    while ((c = fgetc(in)) != EOF) {
        if (prev == '/' && c == '*') { /* skip a C comment */
            int last = 0;
            while ((c = fgetc(in)) != EOF && !(last == '*' && c == '/'))
                last = c;
            prev = 0;
            len = 0;
            continue;
        }
        if (c == '#') { /* and a line comment */
            while ((c = fgetc(in)) != EOF && c != '\n')
                ;
            prev = 0;
            len = 0;
            continue;
        }
        prev = c;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '*' || c == '.') {
            if (len + 1 < sizeof word)
                word[len++] = (char)c;
            continue;
        }
        word[len] = '\0';
        if (len > 4 && strncmp(word, "cnn_", 4) == 0) {
            ck_assert_msg(strchr(word, '*') == NULL, "wildcard %s in the symbol map", word);
            ck_assert_msg(n < max, "more than %d exported names", max);
            snprintf(names[n++], MAX_NAME, "%s", word);
        }
        len = 0;
    }
    fclose(in);
    return n;
}

static int has_row(const char *name)
{
    for (int i = 0; i < N_ROWS; i++)
        if (strcmp(rows[i].function, name) == 0)
            return 1;
    return 0;
}

START_TEST(every_exported_function_has_a_row)
{
    const char *path = getenv("CNN_SYMBOL_MAP");
    ck_assert_msg(path && *path, "CNN_SYMBOL_MAP must name lib/libcnn.map (tests/meson.build sets it)");
    static char names[MAX_SYMBOLS][MAX_NAME];
    int n = read_exported(path, names, MAX_SYMBOLS);
    ck_assert_msg(n > 0, "no cnn_* names found in %s", path);

    char missing[2048] = "";
    int n_missing = 0;
    for (int i = 0; i < n; i++)
        if (!has_row(names[i])) {
            n_missing++;
            strncat(missing, " ", sizeof missing - strlen(missing) - 1);
            strncat(missing, names[i], sizeof missing - strlen(missing) - 1);
        }
    ck_assert_msg(n_missing == 0, "%d exported function(s) have no misuse row:%s", n_missing,
                  missing);

    /* and no row names a function that is not exported (a typo would hide a gap) */
    for (int i = 0; i < N_ROWS; i++) {
        int found = 0;
        for (int j = 0; j < n && !found; j++)
            found = strcmp(rows[i].function, names[j]) == 0;
        ck_assert_msg(found, "row \"%s (%s)\" names a function not in %s", rows[i].function,
                      rows[i].what, path);
    }
}
END_TEST

static Suite *misuse_suite(void)
{
    Suite *s = suite_create("misuse");
    TCase *table = tcase_create("table");
    tcase_add_checked_fixture(table, setup, teardown);
    tcase_add_loop_test(table, misuse_row_test, 0, N_ROWS);
    suite_add_tcase(s, table);
    TCase *coverage = tcase_create("coverage");
    tcase_add_test(coverage, every_exported_function_has_a_row);
    suite_add_tcase(s, coverage);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(misuse_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
