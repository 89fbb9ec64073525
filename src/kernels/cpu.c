#include "cpu.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* 0: not computed yet; otherwise 1 + the answer. Racing first calls compute the
 * same value, so a plain atomic store is enough (no lock, no call_once). */
static atomic_int has_avx2_fma_state;
static atomic_int use_avx2_state;

static int detect_avx2_fma(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    /* The built-ins also check that the OS saves the YMM registers (XGETBV). */
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static int portable_forced(void)
{
    const char *value = getenv("CNN_FORCE_PORTABLE");
    return value != NULL && value[0] != '\0' && strcmp(value, "0") != 0;
}

int cnn__cpu_has_avx2_fma(void)
{
    int state = atomic_load_explicit(&has_avx2_fma_state, memory_order_relaxed);
    if (state == 0) {
        state = 1 + (detect_avx2_fma() != 0);
        atomic_store_explicit(&has_avx2_fma_state, state, memory_order_relaxed);
    }
    return state - 1;
}

int cnn__cpu_use_avx2(void)
{
    int state = atomic_load_explicit(&use_avx2_state, memory_order_relaxed);
    if (state == 0) {
        state = 1 + (cnn__cpu_has_avx2_fma() && !portable_forced());
        atomic_store_explicit(&use_avx2_state, state, memory_order_relaxed);
    }
    return state - 1;
}
