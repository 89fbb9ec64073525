/* Run-time choice between the AVX2+FMA kernels and the portable C ones.
 *
 * The answer is computed once per process and cached. Setting the environment
 * variable CNN_FORCE_PORTABLE to a non-empty value other than "0" before the
 * first kernel call makes every dispatched kernel take the portable path (tests
 * and benchmarks use it; the variable is read once, later changes are ignored). */
#ifndef CNN_CPU_H
#define CNN_CPU_H

/* Nonzero when this CPU and OS can run AVX2+FMA code (ignores CNN_FORCE_PORTABLE).
 * Always 0 on non-x86-64 targets and compilers without CPU feature built-ins. */
int cnn__cpu_has_avx2_fma(void);

/* Nonzero when dispatched kernels should take their AVX2 path: the CPU can and
 * CNN_FORCE_PORTABLE does not forbid it. Kernels also need their AVX2 code built. */
int cnn__cpu_use_avx2(void);

#endif
