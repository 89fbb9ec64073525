#include "activation.h"

#include <math.h>

#include "cpu.h"

/* Written as `x < 0 ? ... : x` so that NaN (for which x < 0 is false) passes through. */
static void relu_portable(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

static void leaky_relu_portable(float *y, const float *x, size_t n, float slope)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? slope * x[i] : x[i];
}

/* Below -87, exp(-x) overflows and 1 / (1 + exp(-x)) would flush the (tiny, then
 * subnormal) result to 0; there sigmoid(x) = exp(x) to float precision. */
static void sigmoid_portable(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < -87.0f ? expf(x[i]) : 1.0f / (1.0f + expf(-x[i]));
}

static void tanh_portable(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}

const cnn_activation_kernels cnn__activation_portable = {
    relu_portable, leaky_relu_portable, sigmoid_portable, tanh_portable,
};

const cnn_activation_kernels *cnn__activation_avx2(void)
{
#ifdef CNN_HAVE_AVX2_KERNELS
    if (cnn__cpu_has_avx2_fma())
        return &cnn__activation_avx2_loops;
#endif
    return NULL;
}

static const cnn_activation_kernels *active(void)
{
#ifdef CNN_HAVE_AVX2_KERNELS
    if (cnn__cpu_use_avx2())
        return &cnn__activation_avx2_loops;
#endif
    return &cnn__activation_portable;
}

void cnn__relu(float *y, const float *x, size_t n) { active()->relu(y, x, n); }

void cnn__leaky_relu(float *y, const float *x, size_t n, float slope)
{
    active()->leaky_relu(y, x, n, slope);
}

void cnn__sigmoid(float *y, const float *x, size_t n) { active()->sigmoid(y, x, n); }

void cnn__tanh(float *y, const float *x, size_t n) { active()->tanh(y, x, n); }
