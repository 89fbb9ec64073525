#include "error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char thread_error[CNN_ERROR_CAPACITY];

static char *error_buffer(const cnn_net *net)
{
    return net ? cnn__net_error_buffer(net) : thread_error;
}

cnn_status cnn__fail(const cnn_net *net, cnn_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(error_buffer(net), CNN_ERROR_CAPACITY, fmt, args);
    va_end(args);
    return status;
}

cnn_status cnn__layer_fail(const cnn_net *net, int layer, const char *kind, cnn_status status,
                           const char *fmt, ...)
{
    char *buf = error_buffer(net);
    int n = snprintf(buf, CNN_ERROR_CAPACITY, "layer %d (%s): ", layer, kind);
    if (n < 0 || n >= CNN_ERROR_CAPACITY)
        return status;
    va_list args;
    va_start(args, fmt);
    vsnprintf(buf + n, CNN_ERROR_CAPACITY - (size_t)n, fmt, args);
    va_end(args);
    return status;
}

const char *cnn_net_last_error(const cnn_net *net)
{
    return error_buffer(net);
}

const char *cnn_status_string(cnn_status status)
{
    switch (status) {
    case CNN_OK: return "CNN_OK: success";
    case CNN_E_NULL_ARG: return "CNN_E_NULL_ARG: a required pointer is NULL";
    case CNN_E_INVALID_ARG: return "CNN_E_INVALID_ARG: a value is out of range";
    case CNN_E_SHAPE: return "CNN_E_SHAPE: shapes do not fit";
    case CNN_E_OVERFLOW: return "CNN_E_OVERFLOW: a size would overflow";
    case CNN_E_NOMEM: return "CNN_E_NOMEM: out of memory";
    case CNN_E_INDEX: return "CNN_E_INDEX: layer index out of range";
    case CNN_E_LAYER_KIND: return "CNN_E_LAYER_KIND: not supported by this kind of layer";
    case CNN_E_EMPTY_NET: return "CNN_E_EMPTY_NET: the net has no layers";
    case CNN_E_STRUCT_SIZE: return "CNN_E_STRUCT_SIZE: unknown descriptor size";
    case CNN_E_BUFFER_SIZE: return "CNN_E_BUFFER_SIZE: wrong buffer length";
    case CNN_E_OVERLAP: return "CNN_E_OVERLAP: buffers overlap";
    case CNN_E_STATE: return "CNN_E_STATE: not allowed in the current state";
    }
    return "unknown cnn_status";
}
