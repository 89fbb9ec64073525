#include "bias.h"

#include "cpu.h"

/* Written as plain loops over whole periods, which compilers vectorise with
 * the baseline SSE2 (about 2.5x the per-row loop for 6 columns). */
static void add_rows_portable(float *c, size_t rows, int cols, const float *bias)
{
    size_t period = cnn__bias_period(cols);
    if (period == 0 || rows < 2) {
        for (size_t r = 0; r < rows; r++) {
            float *row = c + r * (size_t)cols;
            for (size_t j = 0; j < (size_t)cols; j++)
                row[j] += bias[j];
        }
        return;
    }
    float pattern[CNN_BIAS_MAX_PERIOD];
    cnn__bias_pattern(bias, cols, period, pattern);
    const size_t n = rows * (size_t)cols;
    size_t i = 0;
    for (; i + period <= n; i += period)
        for (size_t k = 0; k < period; k++)
            c[i + k] += pattern[k];
    for (size_t k = 0; i + k < n; k++)
        c[i + k] += pattern[k];
}

const cnn_bias_kernels cnn__bias_portable = { add_rows_portable };

const cnn_bias_kernels *cnn__bias_avx2(void)
{
#ifdef CNN_HAVE_AVX2_KERNELS
    if (cnn__cpu_has_avx2_fma())
        return &cnn__bias_avx2_loops;
#endif
    return NULL;
}

void cnn__add_bias_rows(float *c, size_t rows, int cols, const float *bias)
{
#ifdef CNN_HAVE_AVX2_KERNELS
    if (cnn__cpu_use_avx2()) {
        cnn__bias_avx2_loops.add_rows(c, rows, cols, bias);
        return;
    }
#endif
    add_rows_portable(c, rows, cols, bias);
}
