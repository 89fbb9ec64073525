#include "cpu.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* 0: not computed yet; otherwise 1 + the answer. Racing first calls compute the
 * same value, so a plain atomic store is enough (no lock, no call_once). */
static atomic_int has_avx2_fma_state;
static atomic_int has_avx512f_state;
static atomic_int use_avx2_state;
static atomic_int use_avx512_state;

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

static int detect_avx512f(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    /* As above, including the OS's saving of the ZMM and mask registers. */
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

static int env_is(const char *name, const char *value)
{
    const char *v = getenv(name);
    return v != NULL && strcmp(v, value) == 0;
}

static int portable_forced(void)
{
    const char *value = getenv("CNN_FORCE_PORTABLE");
    return (value != NULL && value[0] != '\0' && strcmp(value, "0") != 0) ||
           env_is("CNN_MAX_SIMD", "portable");
}

static int cached(atomic_int *state, int (*compute)(void))
{
    int s = atomic_load_explicit(state, memory_order_relaxed);
    if (s == 0) {
        s = 1 + (compute() != 0);
        atomic_store_explicit(state, s, memory_order_relaxed);
    }
    return s - 1;
}

int cnn__cpu_has_avx2_fma(void) { return cached(&has_avx2_fma_state, detect_avx2_fma); }

int cnn__cpu_has_avx512f(void) { return cached(&has_avx512f_state, detect_avx512f); }

static int decide_avx2(void) { return cnn__cpu_has_avx2_fma() && !portable_forced(); }

static int decide_avx512(void)
{
    return cnn__cpu_use_avx2() && cnn__cpu_has_avx512f() && !env_is("CNN_MAX_SIMD", "avx2");
}

int cnn__cpu_use_avx2(void) { return cached(&use_avx2_state, decide_avx2); }

int cnn__cpu_use_avx512(void) { return cached(&use_avx512_state, decide_avx512); }
