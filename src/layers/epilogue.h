/* What conv and dense do to output rows they have just written, while the rows
 * are in cache: the layer's bias and the fused activation (DESIGN.md: fusion). */
#ifndef CNN_EPILOGUE_H
#define CNN_EPILOGUE_H

#include <stddef.h>

#include "../kernels/bias.h"
#include "../layer.h"

/* Adds bias (NULL: none) to the rows x cols floats at x and applies the
 * epilogue activation layer (NULL: none), in one pass when both are there and
 * the activation offers it. */
static inline void cnn__epilogue_rows(float *x, size_t rows, int cols, const float *bias,
                                      const cnn_layer *epilogue)
{
    if (bias && epilogue && epilogue->ops->apply_bias_inplace) {
        epilogue->ops->apply_bias_inplace(epilogue, x, rows, cols, bias);
        return;
    }
    if (bias)
        cnn__add_bias_rows(x, rows, cols, bias);
    if (epilogue)
        epilogue->ops->apply_inplace(epilogue, x, rows * (size_t)cols);
}

#endif
