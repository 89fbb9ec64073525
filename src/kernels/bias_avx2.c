/* AVX2 bias loops. Built with -mavx2 -mfma (this file only) and called only
 * after cnn__cpu_has_avx2_fma() said yes. One addition per element, as in the
 * portable loop, then ReLU or leaky ReLU with the `x < 0` (ordered) select of
 * activation_avx2.c, so the results are the same (see bias.h for NaN + NaN). */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "bias_avx2.c must be compiled with -mavx2 -mfma"
#endif

#include <immintrin.h>

#include "bias.h"

#define LANES 8

enum { THEN_NOTHING, THEN_RELU, THEN_LEAKY_RELU };

static inline __m256 finish8(__m256 v, int then, __m256 slope)
{
    if (then == THEN_NOTHING)
        return v;
    __m256 negative = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 low = then == THEN_RELU ? _mm256_setzero_ps() : _mm256_mul_ps(slope, v);
    return _mm256_blendv_ps(v, low, negative);
}

static inline float finish1(float v, int then, float slope)
{
    if (then == THEN_RELU)
        return v < 0.0f ? 0.0f : v;
    if (then == THEN_LEAKY_RELU)
        return v < 0.0f ? slope * v : v;
    return v;
}

/* x[0, n) = finish(x + pattern[0, n)): whole registers, then the last few
 * floats one by one. */
static inline void add_run(float *x, const float *pattern, size_t n, int then, float slope)
{
    const __m256 slope8 = _mm256_set1_ps(slope);
    size_t k = 0;
    for (; k + LANES <= n; k += LANES)
        _mm256_storeu_ps(x + k, finish8(_mm256_add_ps(_mm256_loadu_ps(x + k),
                                                      _mm256_loadu_ps(pattern + k)),
                                        then, slope8));
    for (; k < n; k++)
        x[k] = finish1(x[k] + pattern[k], then, slope);
}

/* `then` is a constant at each call, so each gets its own loop. */
static inline void add_rows_then(float *c, size_t rows, int cols, const float *bias, int then,
                                 float slope)
{
    size_t period = cnn__bias_period(cols);
    if (period == 0 || rows < 2) {
        for (size_t r = 0; r < rows; r++)
            add_run(c + r * (size_t)cols, bias, (size_t)cols, then, slope);
        return;
    }
    float pattern[CNN_BIAS_MAX_PERIOD];
    cnn__bias_pattern(bias, cols, period, pattern);
    const __m256 slope8 = _mm256_set1_ps(slope);
    const size_t n = rows * (size_t)cols;
    size_t i = 0;
    for (; i + period <= n; i += period)
        for (size_t k = 0; k < period; k += LANES)
            _mm256_storeu_ps(c + i + k, finish8(_mm256_add_ps(_mm256_loadu_ps(c + i + k),
                                                              _mm256_loadu_ps(pattern + k)),
                                                then, slope8));
    add_run(c + i, pattern, n - i, then, slope);
}

static void add_rows_avx2(float *c, size_t rows, int cols, const float *bias)
{
    add_rows_then(c, rows, cols, bias, THEN_NOTHING, 0.0f);
}

static void add_rows_relu_avx2(float *c, size_t rows, int cols, const float *bias)
{
    add_rows_then(c, rows, cols, bias, THEN_RELU, 0.0f);
}

static void add_rows_leaky_relu_avx2(float *c, size_t rows, int cols, const float *bias,
                                     float slope)
{
    add_rows_then(c, rows, cols, bias, THEN_LEAKY_RELU, slope);
}

const cnn_bias_kernels cnn__bias_avx2_loops = { add_rows_avx2, add_rows_relu_avx2,
                                                add_rows_leaky_relu_avx2 };
