/* The library's only route to BLAS. */
#ifndef CNN_GEMM_H
#define CNN_GEMM_H

#include <stddef.h>

#include "../exec.h"
#include "bias.h" /* cnn__add_bias_rows, the GEMM callers' epilogue */

/* Row-major C[m x n] = A[m x k] * B[n x k]^T, plus the old C when `accumulate`.
 * lda, ldb, ldc are row strides in floats. m may exceed CBLAS's int range: the
 * product is split into row blocks that fit. n, k and the strides must fit an int. */
void cnn__gemm_abt(size_t m, int n, int k, const float *a, int lda, const float *b, int ldb,
                   float *c, int ldc, int accumulate);

/* The same product (accumulate off) spread over the exec's threads: by rows of
 * C when there are enough, else by columns. */
void cnn__gemm_abt_parallel(const cnn_exec *exec, size_t m, int n, int k, const float *a,
                            int lda, const float *b, int ldb, float *c, int ldc);

/* BLAS threading around a forward pass. libcnn parallelises with its own
 * threads and calls BLAS from each of them, so BLAS must run single-threaded
 * meanwhile: with OpenBLAS, the first forward in flight in the process saves
 * OpenBLAS's (process-wide) thread count and sets it to 1, and the last one to
 * finish restores it. With another CBLAS nothing is changed. */
void cnn__blas_serial_begin(void);
void cnn__blas_serial_end(void);

/* "OpenBLAS <config>" or "CBLAS", for cnn_runtime_info(). */
const char *cnn__blas_name(void);

#endif
