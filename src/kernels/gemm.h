/* The library's only route to BLAS. */
#ifndef CNN_GEMM_H
#define CNN_GEMM_H

#include <stddef.h>

/* Row-major C[m x n] = A[m x k] * B[n x k]^T, plus the old C when `accumulate`.
 * lda, ldb, ldc are row strides in floats. m may exceed CBLAS's int range: the
 * product is split into row blocks that fit. n, k and the strides must fit an int. */
void cnn__gemm_abt(size_t m, int n, int k, const float *a, int lda, const float *b, int ldb,
                   float *c, int ldc, int accumulate);

/* Adds bias[j] to every row's column j of a row-major rows x cols matrix. */
void cnn__add_bias_rows(float *c, size_t rows, int cols, const float *bias);

#endif
