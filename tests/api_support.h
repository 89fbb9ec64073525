/* Helpers of the public-API suite (test_api): assertions on statuses and
 * messages, fixture nets, and snapshots that show a failed call changed nothing. */
#ifndef CNN_API_SUPPORT_H
#define CNN_API_SUPPORT_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "cnn.h"

/* The call must succeed; on failure the report names the call and its status. */
#define API_OK(call)                                                                    \
    do {                                                                                \
        cnn_status api_st_ = (call);                                                    \
        ck_assert_msg(api_st_ == CNN_OK, "%s failed: %s", #call,                        \
                      cnn_status_string(api_st_));                                      \
    } while (0)

/* The call must fail with `want`, and the message then held by
 * cnn_net_last_error(msg_net) must contain every listed fragment. */
#define API_EXPECT_FAIL(want, msg_net, call, ...)                                       \
    do {                                                                                \
        cnn_status api_st_ = (call);                                                    \
        api_check_failure(#call, __LINE__, api_st_, (want), cnn_net_last_error(msg_net), \
                          (const char *const[]){ __VA_ARGS__, NULL });                  \
    } while (0)

void api_check_failure(const char *call, int line, cnn_status got, cnn_status want,
                       const char *message, const char *const *fragments);

/* Everything a caller can observe of a net. */
#define API_MAX_LAYERS 32
typedef struct api_snapshot {
    int layers;
    int input[3];
    int output[3];
    int kinds[API_MAX_LAYERS];
    int shapes[API_MAX_LAYERS][3];
    size_t params;
    uint64_t flops;
    float *values;    /* every weight and bias, layer by layer */
    size_t n_values;
    float *forward;   /* output for the fixed input (NULL when not run) */
    size_t n_forward;
} api_snapshot;

/* With run_forward, also runs the net on API_SNAPSHOT_BATCH fixed images. */
#define API_SNAPSHOT_BATCH 2
void api_snapshot_take(cnn_net *net, int run_forward, api_snapshot *snap);
/* Takes a new snapshot and asserts it equals `before` bit for bit. */
void api_snapshot_assert_same(cnn_net *net, const api_snapshot *before, const char *after_what);
void api_snapshot_free(api_snapshot *snap);

/* Fixed input of `batch` images for `net` (seeded, in [-1, 1)). Caller frees. */
float *api_fixed_input(const cnn_net *net, int batch, size_t *count);
/* Elements per image of the net's output. */
size_t api_output_elems(const cnn_net *net);

/* 9x9x2 -> conv 3 filters 3x3 without bias (7x7x3) -> max pool 3x3 stride 1 (5x5x3).
 * Weights seeded, so forward results are not trivial. */
cnn_net *api_net_tail5(void);
/* api_net_tail5 + relu + dense 4 with bias (nonzero) + softmax: layers 0..4. */
cnn_net *api_net_full(void);
/* LeNet-5 style: 28x28x1, conv 6 5x5 pad 2, relu, maxpool 2, conv 16 5x5, relu,
 * maxpool 2, dense 120, relu, dense 84, relu, dense 10, softmax. Zero weights. */
cnn_net *api_lenet(void);

/* Test cases of the other files of the suite. */
TCase *api_errors_tcase(void);
TCase *api_params_tcase(void);
TCase *api_init_tcase(void);
TCase *api_lifecycle_tcase(void);
TCase *api_allocator_tcase(void);

#endif
