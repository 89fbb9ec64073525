#include "bias.h"

#include "cpu.h"

/* What follows the addition in one loop. */
enum { THEN_NOTHING, THEN_RELU, THEN_LEAKY_RELU };

/* The sum, then the activation written as the portable activation loops do. */
static inline float finish(float v, int then, float slope)
{
    if (then == THEN_RELU)
        return v < 0.0f ? 0.0f : v;
    if (then == THEN_LEAKY_RELU)
        return v < 0.0f ? slope * v : v;
    return v;
}

/* Written as plain loops over whole periods, which compilers vectorise with
 * the baseline SSE2 (about 2.5x the per-row loop for 6 columns). `then` is a
 * constant at each call, so each gets its own loop. */
static inline void add_rows_then(float *c, size_t rows, int cols, const float *bias, int then,
                                 float slope)
{
    size_t period = cnn__bias_period(cols);
    if (period == 0 || rows < 2) {
        for (size_t r = 0; r < rows; r++) {
            float *row = c + r * (size_t)cols;
            for (size_t j = 0; j < (size_t)cols; j++)
                row[j] = finish(row[j] + bias[j], then, slope);
        }
        return;
    }
    float pattern[CNN_BIAS_MAX_PERIOD];
    cnn__bias_pattern(bias, cols, period, pattern);
    const size_t n = rows * (size_t)cols;
    size_t i = 0;
    for (; i + period <= n; i += period)
        for (size_t k = 0; k < period; k++)
            c[i + k] = finish(c[i + k] + pattern[k], then, slope);
    for (size_t k = 0; i + k < n; k++)
        c[i + k] = finish(c[i + k] + pattern[k], then, slope);
}

static void add_rows_portable(float *c, size_t rows, int cols, const float *bias)
{
    add_rows_then(c, rows, cols, bias, THEN_NOTHING, 0.0f);
}

static void add_rows_relu_portable(float *c, size_t rows, int cols, const float *bias)
{
    add_rows_then(c, rows, cols, bias, THEN_RELU, 0.0f);
}

static void add_rows_leaky_relu_portable(float *c, size_t rows, int cols, const float *bias,
                                         float slope)
{
    add_rows_then(c, rows, cols, bias, THEN_LEAKY_RELU, slope);
}

const cnn_bias_kernels cnn__bias_portable = { add_rows_portable, add_rows_relu_portable,
                                              add_rows_leaky_relu_portable };

const cnn_bias_kernels *cnn__bias_avx2(void)
{
#ifdef CNN_HAVE_AVX2_KERNELS
    if (cnn__cpu_has_avx2_fma())
        return &cnn__bias_avx2_loops;
#endif
    return NULL;
}

static const cnn_bias_kernels *active(void)
{
#ifdef CNN_HAVE_AVX2_KERNELS
    if (cnn__cpu_use_avx2())
        return &cnn__bias_avx2_loops;
#endif
    return &cnn__bias_portable;
}

void cnn__add_bias_rows(float *c, size_t rows, int cols, const float *bias)
{
    active()->add_rows(c, rows, cols, bias);
}

void cnn__add_bias_relu_rows(float *c, size_t rows, int cols, const float *bias)
{
    active()->add_rows_relu(c, rows, cols, bias);
}

void cnn__add_bias_leaky_relu_rows(float *c, size_t rows, int cols, const float *bias,
                                   float slope)
{
    active()->add_rows_leaky_relu(c, rows, cols, bias, slope);
}
