/* Overflow-checked size arithmetic. */
#ifndef CNN_CHECKED_H
#define CNN_CHECKED_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* *out = a * b; returns 0 when the product does not fit in size_t. */
static inline int cnn__mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

/* *out = a * b * c with the same rule. */
static inline int cnn__mul3_size(size_t a, size_t b, size_t c, size_t *out)
{
    size_t ab;
    return cnn__mul_size(a, b, &ab) && cnn__mul_size(ab, c, out);
}

/* *out = a + b; returns 0 on overflow. */
static inline int cnn__add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return 0;
    *out = a + b;
    return 1;
}

/* 1 when `bytes` may be one object: C and malloc cap objects at PTRDIFF_MAX. */
static inline int cnn__fits_object(size_t bytes) { return bytes <= (size_t)PTRDIFF_MAX; }

/* 1 when the product of non-negative ints fits in an int (CBLAS's index type). */
static inline int cnn__fits_int(size_t v) { return v <= (size_t)INT_MAX; }

#endif
