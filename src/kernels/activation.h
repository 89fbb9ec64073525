/* Element-wise activation loops, y may equal x. NaN in x stays NaN in y. */
#ifndef CNN_ACTIVATION_KERNELS_H
#define CNN_ACTIVATION_KERNELS_H

#include <stddef.h>

/* These take the AVX2 path when cnn__cpu_use_avx2() allows it, else the portable one. */
void cnn__relu(float *y, const float *x, size_t n);
void cnn__leaky_relu(float *y, const float *x, size_t n, float slope);
void cnn__sigmoid(float *y, const float *x, size_t n);
void cnn__tanh(float *y, const float *x, size_t n);

/* One implementation of the four loops above. */
typedef struct cnn_activation_kernels {
    void (*relu)(float *y, const float *x, size_t n);
    void (*leaky_relu)(float *y, const float *x, size_t n, float slope);
    void (*sigmoid)(float *y, const float *x, size_t n);
    void (*tanh)(float *y, const float *x, size_t n);
} cnn_activation_kernels;

/* Plain C with libm: builds and runs everywhere. */
extern const cnn_activation_kernels cnn__activation_portable;
/* The AVX2+FMA loops, or NULL when they were not built or this CPU cannot run them.
 * ReLU and leaky ReLU give the portable results bit for bit; sigmoid and tanh are
 * within 1e-6 relative error of the exact value (see activation_avx2.c). */
const cnn_activation_kernels *cnn__activation_avx2(void);
/* Defined only in builds with the AVX2 code (activation_avx2.c); reach it through
 * cnn__activation_avx2(), which also checks the CPU. */
extern const cnn_activation_kernels cnn__activation_avx2_loops;

#endif
