/* cnn_runtime_info: which code paths this process runs. */
#include <pthread.h>
#include <stdio.h>

#include "cnn.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "threads.h"

static char info[512];
static pthread_once_t info_once = PTHREAD_ONCE_INIT;

static void describe(void)
{
    const char *simd = cnn__cpu_use_avx512()   ? "avx2+fma, avx512f (wide convolutions)"
                       : cnn__cpu_has_avx512f() && cnn__cpu_use_avx2()
                           ? "avx2+fma (avx512f off: CNN_MAX_SIMD)"
                       : cnn__cpu_use_avx2()     ? "avx2+fma"
                       : cnn__cpu_has_avx2_fma() ? "portable (forced by CNN_FORCE_PORTABLE)"
                                                 : "portable";
#if defined(CNN_HAVE_OPENBLAS)
    const char *blas_threads = "OpenBLAS set to 1 thread while a cnn_forward runs, restored after";
#else
    const char *blas_threads = "the CBLAS's own threading, unchanged";
#endif
    snprintf(info, sizeof info,
             "libcnn %s; simd: %s; blas: %s; blas threads: %s; threads: each net's own pool "
             "(default %d = available cores)",
             cnn_version_string(), simd, cnn__blas_name(), blas_threads, cnn__available_cores());
}

const char *cnn_runtime_info(void)
{
    pthread_once(&info_once, describe);
    return info;
}
