/* AVX2+FMA activation loops. Built with -mavx2 -mfma (this file only) and called
 * only after cnn__cpu_has_avx2_fma() said yes.
 *
 * ReLU and leaky ReLU select with a `x < 0` (ordered) compare, so NaN and -0 pass
 * through exactly as in the portable loops. Sigmoid and tanh use exp() from a
 * range reduction and a polynomial; both stay within 1e-6 relative error of the
 * exact value over the whole float range, and hand NaN inputs back unchanged. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "activation_avx2.c must be compiled with -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <string.h>

#include "activation.h"

#define LANES 8

static void relu_avx2(float *y, const float *x, size_t n)
{
    const __m256 zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 negative = _mm256_cmp_ps(v, zero, _CMP_LT_OQ);
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(v, zero, negative));
    }
    for (; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

static void leaky_relu_avx2(float *y, const float *x, size_t n, float slope)
{
    const __m256 zero = _mm256_setzero_ps(), k = _mm256_set1_ps(slope);
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 negative = _mm256_cmp_ps(v, zero, _CMP_LT_OQ);
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(v, _mm256_mul_ps(k, v), negative));
    }
    for (; i < n; i++)
        y[i] = x[i] < 0.0f ? slope * x[i] : x[i];
}

/* exp(a) for a <= 0 (any NaN lane gives some finite value; callers restore NaN).
 * a = n ln2 + r with |r| <= ln2/2; exp(r) = 1 + r + r^2 q(r), q a degree-4 Chebyshev
 * fit of (exp(r) - 1 - r) / r^2 (error ~1e-8 relative). 2^n is applied as two
 * factors so results down in the subnormal range are rounded only once. */
static inline __m256 exp_nonpositive(__m256 a)
{
    /* exp(-104) is below half the smallest subnormal: rounds to 0 like anything lower. */
    a = _mm256_max_ps(a, _mm256_set1_ps(-104.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(a, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* ln2 split in a float and its remainder: with FMA, r carries ~2^-24 relative error. */
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693147182f), a);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-1.90465421e-9f), r);

    __m256 q = _mm256_set1_ps(0.00139261759f);
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(0.00836317334f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(0.0416665561f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(0.166665778f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(0.5f));
    __m256 p = _mm256_add_ps(_mm256_fmadd_ps(q, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));

    /* n in [-150, 0]: each half in [-75, 0] is a normal power of two. */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i half = _mm256_srai_epi32(ni, 1);
    __m256i rest = _mm256_sub_epi32(ni, half);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(rest, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

static inline __m256 keep_nan(__m256 y, __m256 x)
{
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/* With e = exp(-|x|) <= 1 nothing overflows: 1 / (1 + e) for x >= 0, e / (1 + e)
 * for x < 0 (which keeps the tiny, even subnormal, results of very negative x). */
static inline __m256 sigmoid8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 minus_abs = _mm256_or_ps(x, _mm256_set1_ps(-0.0f));
    __m256 e = exp_nonpositive(minus_abs);
    __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 y = _mm256_div_ps(_mm256_blendv_ps(one, e, negative), _mm256_add_ps(one, e));
    return keep_nan(y, x);
}

/* |x| < 0.625: odd polynomial |x| + |x|^3 q(x^2) (degree-4 Chebyshev fit of
 * (tanh(x) - x) / x^3, error ~2e-8 relative), so small |x| keeps full relative
 * accuracy. Otherwise (1 - e) / (1 + e) with e = exp(-2|x|) <= exp(-1.25), where
 * 1 - e no longer cancels. The sign of x is put back last (so -0 stays -0). */
static inline __m256 tanh8(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(sign, x);

    __m256 x2 = _mm256_mul_ps(ax, ax);
    __m256 q = _mm256_set1_ps(-0.00609671418f);
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(0.0209971797f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-0.0538509078f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(0.133327693f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(-0.333333284f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(ax, x2), q, ax);

    /* tanh(20) is 1.0f already; the clamp keeps exp() in its range for +-Inf. */
    __m256 clamped = _mm256_min_ps(ax, _mm256_set1_ps(20.0f));
    __m256 e = exp_nonpositive(_mm256_mul_ps(clamped, _mm256_set1_ps(-2.0f)));
    __m256 large = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));

    __m256 is_small = _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ);
    __m256 t = _mm256_blendv_ps(large, small, is_small);
    return keep_nan(_mm256_or_ps(t, _mm256_and_ps(x, sign)), x);
}

/* The tail goes through a padded copy so every element, wherever it sits, gets
 * the same vector formula (results do not depend on n or alignment). */
#define MAP_LANES(name, f)                                                        \
    static void name(float *y, const float *x, size_t n)                          \
    {                                                                             \
        size_t i = 0;                                                             \
        for (; i + LANES <= n; i += LANES)                                        \
            _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));                   \
        if (i < n) {                                                              \
            float buf[LANES] = { 0 };                                             \
            memcpy(buf, x + i, (n - i) * sizeof *buf);                            \
            _mm256_storeu_ps(buf, f(_mm256_loadu_ps(buf)));                       \
            memcpy(y + i, buf, (n - i) * sizeof *buf);                            \
        }                                                                         \
    }

MAP_LANES(sigmoid_avx2, sigmoid8)
MAP_LANES(tanh_avx2, tanh8)

const cnn_activation_kernels cnn__activation_avx2_loops = {
    relu_avx2, leaky_relu_avx2, sigmoid_avx2, tanh_avx2,
};
