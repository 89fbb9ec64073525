/* Helpers shared by the Check suites: seeded data, the error metric, sizes. */
#ifndef CNN_TEST_SUPPORT_H
#define CNN_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* Seeded generator for test data (not the library's). */
typedef struct test_rng {
    uint64_t state;
} test_rng;

void test_rng_seed(test_rng *rng, uint64_t seed);
uint32_t test_rng_u32(test_rng *rng);
/* Uniform integer in [lo, hi]. */
int test_rng_int(test_rng *rng, int lo, int hi);
/* Uniform float in [lo, hi). */
float test_rng_float(test_rng *rng, float lo, float hi);
void test_fill_uniform(test_rng *rng, float *x, size_t n, float lo, float hi);

/* DESIGN.md's relative error: max|y - ref| / max|ref| over the tensor
 * (max|y - ref| itself when ref is all zero). NaN in either gives +inf. */
double test_rel_error(const float *y, const double *ref, size_t n);
double test_rel_error_f(const float *y, const float *ref, size_t n);

/* Nonzero when CNN_TEST_SMALL is set (valgrind runs): suites shrink their sizes. */
int test_small(void);

/* malloc that never returns NULL to the test (aborts the test process instead). */
void *test_xmalloc(size_t bytes);

/* A NaN with a payload no kernel computes: fills memory a kernel must leave
 * alone, and test_is_canary tells whether a float still holds it. */
float test_canary(void);
int test_is_canary(float f);

#endif
