/* Run-time choice between the vector kernels and the portable C ones.
 *
 * Answers are computed once per process and cached. Two environment variables,
 * read once before the first kernel call (later changes are ignored), lower
 * the level that dispatched kernels use (tests and benchmarks use them):
 * - CNN_FORCE_PORTABLE set to a non-empty value other than "0": every kernel
 *   takes its portable path (no AVX2, no AVX-512);
 * - CNN_MAX_SIMD=avx2: kernels with an AVX-512 path take their AVX2 path
 *   instead (CNN_MAX_SIMD=portable is the same as CNN_FORCE_PORTABLE=1; other
 *   values, "avx512" included, leave the CPU's own level). */
#ifndef CNN_CPU_H
#define CNN_CPU_H

/* Nonzero when this CPU and OS can run AVX2+FMA code (ignores the variables).
 * Always 0 on non-x86-64 targets and compilers without CPU feature built-ins. */
int cnn__cpu_has_avx2_fma(void);

/* Nonzero when this CPU and OS can run AVX-512F code, ZMM state included
 * (ignores the variables). Valgrind 3.19 reports no AVX-512, so under it the
 * kernels take their AVX2 paths. */
int cnn__cpu_has_avx512f(void);

/* Nonzero when dispatched kernels should take their AVX2 path: the CPU can and
 * the variables allow it. Kernels also need their AVX2 code built. */
int cnn__cpu_use_avx2(void);

/* Nonzero when kernels with an AVX-512 path should take it: the CPU has
 * AVX-512F and AVX2+FMA, and neither variable lowers the level. */
int cnn__cpu_use_avx512(void);

#endif
