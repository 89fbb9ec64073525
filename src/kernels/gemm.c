#include "gemm.h"

#include <limits.h>

#include <cblas.h>

void cnn__gemm_abt(size_t m, int n, int k, const float *a, int lda, const float *b, int ldb,
                   float *c, int ldc, int accumulate)
{
    const size_t block = (size_t)INT_MAX;
    for (size_t row = 0; row < m; row += block) {
        size_t rows = m - row < block ? m - row : block;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, n, k, 1.0f,
                    a + row * (size_t)lda, lda, b, ldb, accumulate ? 1.0f : 0.0f,
                    c + row * (size_t)ldc, ldc);
    }
}

void cnn__add_bias_rows(float *c, size_t rows, int cols, const float *bias)
{
    for (size_t r = 0; r < rows; r++) {
        float *row = c + r * (size_t)cols;
        for (int j = 0; j < cols; j++)
            row[j] += bias[j];
    }
}
