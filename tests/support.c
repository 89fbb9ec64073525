#include "support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void test_rng_seed(test_rng *rng, uint64_t seed) { rng->state = seed * 2862933555777941757ULL + 3037000493ULL; }

/* PCG-style step: 64-bit LCG with an xorshift output. */
uint32_t test_rng_u32(test_rng *rng)
{
    rng->state = rng->state * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t x = rng->state;
    return (uint32_t)((x ^ (x >> 22)) >> (22 + (x >> 61)));
}

int test_rng_int(test_rng *rng, int lo, int hi)
{
    uint32_t span = (uint32_t)(hi - lo) + 1u;
    return lo + (int)(test_rng_u32(rng) % span);
}

float test_rng_float(test_rng *rng, float lo, float hi)
{
    float u = (float)(test_rng_u32(rng) >> 8) * (1.0f / 16777216.0f);
    return lo + (hi - lo) * u;
}

void test_fill_uniform(test_rng *rng, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = test_rng_float(rng, lo, hi);
}

double test_rel_error(const float *y, const double *ref, size_t n)
{
    double max_diff = 0.0, max_ref = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)y[i] - ref[i]);
        if (isnan(d))
            return INFINITY;
        if (d > max_diff)
            max_diff = d;
        if (fabs(ref[i]) > max_ref)
            max_ref = fabs(ref[i]);
    }
    return max_ref > 0.0 ? max_diff / max_ref : max_diff;
}

double test_rel_error_f(const float *y, const float *ref, size_t n)
{
    double max_diff = 0.0, max_ref = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)y[i] - (double)ref[i]);
        if (isnan(d))
            return INFINITY;
        if (d > max_diff)
            max_diff = d;
        if (fabs((double)ref[i]) > max_ref)
            max_ref = fabs((double)ref[i]);
    }
    return max_ref > 0.0 ? max_diff / max_ref : max_diff;
}

int test_small(void)
{
    const char *v = getenv("CNN_TEST_SMALL");
    return v && *v && *v != '0';
}

void *test_xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test_xmalloc: out of memory for %zu bytes\n", bytes);
        abort();
    }
    return p;
}

#define TEST_CANARY_BITS 0x7fc0beefu

float test_canary(void)
{
    uint32_t bits = TEST_CANARY_BITS;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

int test_is_canary(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits == TEST_CANARY_BITS;
}
