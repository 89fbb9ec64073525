#include "activation.h"

#include <math.h>

/* Written as `x < 0 ? ... : x` so that NaN (for which x < 0 is false) passes through. */
void cnn__relu(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void cnn__leaky_relu(float *y, const float *x, size_t n, float slope)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? slope * x[i] : x[i];
}

/* exp(-x) overflows to inf for very negative x, giving 1/inf = 0: the right limit. */
void cnn__sigmoid(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}

void cnn__tanh(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}
