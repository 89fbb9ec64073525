/* Checks shared by the layer builders. */
#ifndef CNN_BUILDER_H
#define CNN_BUILDER_H

#include "cnn.h"
#include "error.h"
#include "layer.h"

/* A builder's net argument: NULL is reported on the thread's error. */
static inline cnn_status cnn__builder_net(const cnn_net *net, const char *caller)
{
    return net ? CNN_OK : cnn__fail(NULL, CNN_E_NULL_ARG, "%s: net is NULL", caller);
}

/* A descriptor argument: present and of the size this library was built with. */
static inline cnn_status cnn__builder_desc(const cnn_net *net, const void *desc,
                                           size_t struct_size, size_t expected,
                                           const char *kind)
{
    int at = cnn__net_layer_count(net);
    if (!desc)
        return cnn__layer_fail(net, at, kind, CNN_E_NULL_ARG, "descriptor is NULL");
    if (struct_size != expected)
        return cnn__layer_fail(net, at, kind, CNN_E_STRUCT_SIZE,
                               "descriptor struct_size %zu is not %zu (initialise it with the "
                               "library's init function)",
                               struct_size, expected);
    return CNN_OK;
}

/* Output extent of a window sliding over `in` cells padded by `pad` on each side. */
static inline int cnn__window_out(int in, int pad, int window, int stride)
{
    return (int)(((long long)in + 2LL * pad - window) / stride + 1);
}

#endif
