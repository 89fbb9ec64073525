/* A seeded generator that gives the same stream on every IEEE-754 machine:
 * integer state only, and floats built from bits, not from libm. */
#ifndef CNN_RNG_H
#define CNN_RNG_H

#include <stdint.h>

typedef struct cnn_rng {
    uint64_t s[4];
} cnn_rng;

void cnn__rng_seed(cnn_rng *rng, uint64_t seed);
/* Uniform on [0, 1) with 53 random bits. */
double cnn__rng_uniform(cnn_rng *rng);
/* Standard normal (Marsaglia's polar method with the library's own log). */
double cnn__rng_normal(cnn_rng *rng);

#endif
