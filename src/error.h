/* Recording failures: on a net, or per thread when there is no net. */
#ifndef CNN_ERROR_H
#define CNN_ERROR_H

#include "cnn.h"

#define CNN_ERROR_CAPACITY 256

#if defined(__GNUC__)
#define CNN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CNN_PRINTF(f, a)
#endif

/* Writes the message into the net's error (or the thread's, for net == NULL)
 * and returns `status`, so callers can `return cnn__fail(...)`. */
cnn_status cnn__fail(const cnn_net *net, cnn_status status, const char *fmt, ...)
    CNN_PRINTF(3, 4);

/* Same, prefixed "layer N (kind): ". */
cnn_status cnn__layer_fail(const cnn_net *net, int layer, const char *kind, cnn_status status,
                           const char *fmt, ...) CNN_PRINTF(5, 6);

/* The net's message buffer (net.c owns it). */
char *cnn__net_error_buffer(const cnn_net *net);

#endif
