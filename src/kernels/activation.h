/* Element-wise activation loops, y may equal x. NaN in x stays NaN in y. */
#ifndef CNN_ACTIVATION_KERNELS_H
#define CNN_ACTIVATION_KERNELS_H

#include <stddef.h>

void cnn__relu(float *y, const float *x, size_t n);
void cnn__leaky_relu(float *y, const float *x, size_t n, float slope);
void cnn__sigmoid(float *y, const float *x, size_t n);
void cnn__tanh(float *y, const float *x, size_t n);

#endif
