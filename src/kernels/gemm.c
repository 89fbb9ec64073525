#include "gemm.h"

#include <limits.h>
#include <pthread.h>

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

typedef struct gemm_job {
    size_t m;
    int n, k;
    const float *a, *b;
    float *c;
    int lda, ldb, ldc;
    int by_rows;
} gemm_job;

static void gemm_range(void *raw, size_t begin, size_t end, int thread)
{
    const gemm_job *j = raw;
    (void)thread;
    if (j->by_rows)
        cnn__gemm_abt(end - begin, j->n, j->k, j->a + begin * (size_t)j->lda, j->lda, j->b,
                      j->ldb, j->c + begin * (size_t)j->ldc, j->ldc, 0);
    else
        cnn__gemm_abt(j->m, (int)(end - begin), j->k, j->a, j->lda,
                      j->b + begin * (size_t)j->ldb, j->ldb, j->c + begin, j->ldc, 0);
}

void cnn__gemm_abt_parallel(const cnn_exec *exec, size_t m, int n, int k, const float *a,
                            int lda, const float *b, int ldb, float *c, int ldc)
{
    uint64_t work = 2u * (uint64_t)m * (uint64_t)n * (uint64_t)k;
    /* Splitting rows keeps each thread's B panel whole; with few rows (a dense
     * layer at batch 1) split the columns instead. */
    int by_rows = m >= 4u * (size_t)exec->threads;
    gemm_job job = { m, n, k, a, b, c, lda, ldb, ldc, by_rows };
    cnn__parallel_for(exec, by_rows ? m : (size_t)n, work, gemm_range, &job);
}

#if defined(CNN_HAVE_OPENBLAS)
/* Declared by OpenBLAS's cblas.h. Setting the count around every forward is
 * cheap: with OpenBLAS 0.3.21 (pthreads) a set_num_threads(1) / (2) pair took
 * 8 ns and woke no worker, whose threads run only when a threaded call queues
 * work. The sched_yield seen in profiles of a forward loop comes from those
 * workers idling after they start, or after the application's own threaded
 * BLAS calls, for 2^OPENBLAS_THREAD_TIMEOUT cycles (default 2^28, ~0.1 s) on
 * the other cores; a steady-state profile of LeNet-5 shows none. */
static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int blas_users;
static int blas_saved_threads;

void cnn__blas_serial_begin(void)
{
    pthread_mutex_lock(&blas_lock);
    if (blas_users++ == 0) {
        blas_saved_threads = openblas_get_num_threads();
        if (blas_saved_threads != 1)
            openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_lock);
}

void cnn__blas_serial_end(void)
{
    pthread_mutex_lock(&blas_lock);
    if (--blas_users == 0 && blas_saved_threads != 1)
        openblas_set_num_threads(blas_saved_threads);
    pthread_mutex_unlock(&blas_lock);
}

const char *cnn__blas_name(void) { return openblas_get_config(); }
#else
void cnn__blas_serial_begin(void) {}
void cnn__blas_serial_end(void) {}
const char *cnn__blas_name(void) { return "CBLAS"; }
#endif
