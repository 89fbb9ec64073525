/* AVX2 bias loop. Built with -mavx2 -mfma (this file only) and called only
 * after cnn__cpu_has_avx2_fma() said yes. One addition per element, as in the
 * portable loop, so the results are the same (see bias.h for NaN + NaN). */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "bias_avx2.c must be compiled with -mavx2 -mfma"
#endif

#include <immintrin.h>

#include "bias.h"

#define LANES 8

/* x[0, n) += pattern[0, n), n < 8 * k for some small k: whole registers, then
 * the last few floats one by one. */
static inline void add_run(float *x, const float *pattern, size_t n)
{
    size_t k = 0;
    for (; k + LANES <= n; k += LANES)
        _mm256_storeu_ps(x + k, _mm256_add_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(pattern + k)));
    for (; k < n; k++)
        x[k] += pattern[k];
}

static void add_rows_avx2(float *c, size_t rows, int cols, const float *bias)
{
    size_t period = cnn__bias_period(cols);
    if (period == 0 || rows < 2) {
        for (size_t r = 0; r < rows; r++)
            add_run(c + r * (size_t)cols, bias, (size_t)cols);
        return;
    }
    float pattern[CNN_BIAS_MAX_PERIOD];
    cnn__bias_pattern(bias, cols, period, pattern);
    const size_t n = rows * (size_t)cols;
    size_t i = 0;
    for (; i + period <= n; i += period)
        for (size_t k = 0; k < period; k += LANES)
            _mm256_storeu_ps(c + i + k, _mm256_add_ps(_mm256_loadu_ps(c + i + k),
                                                      _mm256_loadu_ps(pattern + k)));
    add_run(c + i, pattern, n - i);
}

const cnn_bias_kernels cnn__bias_avx2_loops = { add_rows_avx2 };
