/* Adding a per-column bias to the rows a GEMM wrote (conv and dense epilogues). */
#ifndef CNN_BIAS_KERNELS_H
#define CNN_BIAS_KERNELS_H

#include <stddef.h>

/* Adds bias[j] to column j of every row of a row-major rows x cols matrix.
 * Takes the AVX2 path when cnn__cpu_use_avx2() allows it; both paths do one
 * float addition per element, so their results are the same bit for bit (but
 * for which NaN the sum of two NaNs keeps: compilers may swap the operands). */
void cnn__add_bias_rows(float *c, size_t rows, int cols, const float *bias);

/* The bias and then ReLU (or leaky ReLU) in one pass: the results of
 * cnn__add_bias_rows followed by cnn__relu (cnn__leaky_relu), bit for bit. */
void cnn__add_bias_relu_rows(float *c, size_t rows, int cols, const float *bias);
void cnn__add_bias_leaky_relu_rows(float *c, size_t rows, int cols, const float *bias,
                                   float slope);

/* One implementation of the loops above. */
typedef struct cnn_bias_kernels {
    void (*add_rows)(float *c, size_t rows, int cols, const float *bias);
    void (*add_rows_relu)(float *c, size_t rows, int cols, const float *bias);
    void (*add_rows_leaky_relu)(float *c, size_t rows, int cols, const float *bias, float slope);
} cnn_bias_kernels;

/* Plain C: builds and runs everywhere. */
extern const cnn_bias_kernels cnn__bias_portable;
/* The AVX2 loop, or NULL when it was not built or this CPU cannot run it. */
const cnn_bias_kernels *cnn__bias_avx2(void);
/* Defined only in builds with the AVX2 code (bias_avx2.c); use cnn__bias_avx2(). */
extern const cnn_bias_kernels cnn__bias_avx2_loops;

/* Narrow rows (LeNet's 6 or 16 channels) are added as one flat array against
 * the bias repeated up to a period of lcm(cols, 8) floats, so the vector loop
 * runs over whole registers instead of a few floats per row. Periods longer
 * than this many floats fall back to a loop per row. */
#define CNN_BIAS_MAX_PERIOD 128

/* lcm(cols, 8) when it is at most CNN_BIAS_MAX_PERIOD, else 0. */
static inline size_t cnn__bias_period(int cols)
{
    size_t c = (size_t)cols, g = c % 8 == 0 ? 8 : c % 4 == 0 ? 4 : c % 2 == 0 ? 2 : 1;
    size_t period = c / g * 8;
    return period <= CNN_BIAS_MAX_PERIOD ? period : 0;
}

/* Fills pattern[0, period) with the bias repeated. */
static inline void cnn__bias_pattern(const float *bias, int cols, size_t period, float *pattern)
{
    for (size_t i = 0; i < period; i += (size_t)cols)
        for (size_t j = 0; j < (size_t)cols; j++)
            pattern[i + j] = bias[j];
}

#endif
