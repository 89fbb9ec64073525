/* The activation and pooling kernels (src/kernels): the portable loops against
 * their definitions and libm in double, the AVX2 loops against the portable ones
 * on odd sizes, unaligned starts and special values.
 *
 * Run with one argument: "portable" (the portable loops), "avx2" (exits 77, which
 * meson counts as skipped, when the AVX2 loops were not built or the CPU lacks
 * AVX2/FMA) or "dispatch" (which path cnn__relu & co. take; run once as is and
 * once with CNN_FORCE_PORTABLE=1). */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/activation.h"
#include "kernels/bias.h"
#include "kernels/cpu.h"
#include "kernels/pool.h"
#include "support.h"

#define MAX_REL_ERROR 1e-6 /* sigmoid / tanh against libm in double */
#define GUARD 8            /* canary floats on each side of an output */
#define CANARY 0x5eedf00du

static const cnn_activation_kernels *avx2_act;
static const cnn_pool_kernels *avx2_pool;
static const cnn_bias_kernels *avx2_bias;

/* ---- floats ---------------------------------------------------------------- */

static float from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint32_t bits_of(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/* Same bits, or both NaN (a NaN's payload may legitimately change in arithmetic). */
static int same_float(float a, float b) { return bits_of(a) == bits_of(b) || (isnan(a) && isnan(b)); }

static const uint32_t special_bits[] = {
    0x00000000u, 0x80000000u, /* +-0 */
    0x7f800000u, 0xff800000u, /* +-Inf */
    0x7fc00000u, 0xffc00000u, 0x7fc12345u, 0x7f800001u, /* NaNs, one signalling */
    0x00000001u, 0x80000001u, 0x007fffffu, 0x80400000u, /* subnormals */
    0x00800000u, 0x80800000u, 0x7f7fffffu, 0xff7fffffu, /* +-FLT_MIN, +-FLT_MAX */
    0x42b00000u, 0xc2b00000u, 0x42d00000u, 0xc2d00000u, /* +-88, +-104 */
    0x3f200000u, 0xbf200000u, 0x3f1fffffu, 0xbf1fffffu, /* +-0.625 and just below */
};
#define SPECIALS (sizeof special_bits / sizeof special_bits[0])

/* A quarter special values, a quarter arbitrary bit patterns, half in [-10, 10). */
static void fill_mixed(test_rng *rng, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t r = test_rng_u32(rng) % 4u;
        if (r == 0)
            x[i] = from_bits(special_bits[test_rng_u32(rng) % SPECIALS]);
        else if (r == 1)
            x[i] = from_bits(test_rng_u32(rng));
        else
            x[i] = test_rng_float(rng, -10.0f, 10.0f);
    }
}

/* An output area of n floats at `offset` inside a buffer with canaries around it. */
typedef struct guarded {
    float *buf, *y;
    size_t n;
} guarded;

static guarded guarded_alloc(size_t n, size_t offset)
{
    guarded g;
    size_t total = n + offset + 2 * GUARD;
    g.buf = test_xmalloc(total * sizeof *g.buf);
    for (size_t i = 0; i < total; i++)
        g.buf[i] = from_bits(CANARY);
    g.y = g.buf + GUARD + offset;
    g.n = n;
    return g;
}

static void guarded_check_free(guarded *g, const char *what)
{
    for (size_t i = 0; i < GUARD; i++) {
        ck_assert_msg(bits_of(g->y[-1 - (ptrdiff_t)i]) == CANARY, "%s wrote before its output", what);
        ck_assert_msg(bits_of(g->y[g->n + i]) == CANARY, "%s wrote past its output (n=%zu)", what,
                      g->n);
    }
    free(g->buf);
}

/* ---- references in double ---------------------------------------------------- */

static double sigmoid_ref(double x) { return 1.0 / (1.0 + exp(-x)); }
static double tanh_ref(double x) { return tanh(x); }

/* Relative error with |ref| floored at FLT_MIN: below FLT_MIN floats are spaced
 * 2^-149 apart, so even a correctly rounded subnormal has no relative accuracy. */
static double rel_error(float y, double ref)
{
    double scale = fabs(ref) > FLT_MIN ? fabs(ref) : FLT_MIN;
    return fabs((double)y - ref) / scale;
}

typedef void (*map_fn)(float *y, const float *x, size_t n);

typedef struct sweep_result {
    double max_error, worst_x;
    double max_error_normal; /* over results with |ref| >= FLT_MIN */
    size_t values, nan_lost;
} sweep_result;

/* Every `step`-th float bit pattern (NaNs included) through f, against ref. */
static sweep_result sweep(map_fn f, double (*ref)(double), uint32_t step)
{
    enum { CHUNK = 4099 }; /* odd, so chunks end in a tail */
    float *x = test_xmalloc(CHUNK * sizeof *x), *y = test_xmalloc(CHUNK * sizeof *y);
    sweep_result r = { 0.0, 0.0, 0.0, 0, 0 };
    uint64_t bits = 0;
    while (bits <= UINT32_MAX) {
        size_t n = 0;
        for (; n < CHUNK && bits <= UINT32_MAX; n++, bits += step)
            x[n] = from_bits((uint32_t)bits);
        f(y, x, n);
        for (size_t i = 0; i < n; i++) {
            r.values++;
            if (isnan(x[i])) {
                if (!isnan(y[i]))
                    r.nan_lost++;
                continue;
            }
            double want = ref((double)x[i]);
            double e = isnan(y[i]) ? INFINITY : rel_error(y[i], want);
            if (e > r.max_error) {
                r.max_error = e;
                r.worst_x = (double)x[i];
            }
            if (fabs(want) >= FLT_MIN && e > r.max_error_normal)
                r.max_error_normal = e;
        }
    }
    free(x);
    free(y);
    return r;
}

static uint32_t sweep_step(void) { return test_small() ? 99991u : 1000u; }

static void check_sweep(const char *what, map_fn f, double (*ref)(double))
{
    sweep_result r = sweep(f, ref, sweep_step());
    printf("%s: %zu values, max relative error %.3g at x = %.9g (%.3g over normal results)\n",
           what, r.values, r.max_error, r.worst_x, r.max_error_normal);
    ck_assert_msg(r.nan_lost == 0, "%s: %zu NaN inputs gave numbers", what, r.nan_lost);
    ck_assert_msg(r.max_error <= MAX_REL_ERROR, "%s: max relative error %g at x = %.9g", what,
                  r.max_error, r.worst_x);
}

/* Values whose results follow from the definitions alone. */
static void check_exact_values(const cnn_activation_kernels *k, const char *path)
{
    static const struct {
        uint32_t x, sigmoid, tanh;
    } rows[] = {
        { 0x00000000u, 0x3f000000u, 0x00000000u }, /* +0: 0.5, +0 */
        { 0x80000000u, 0x3f000000u, 0x80000000u }, /* -0: 0.5, -0 */
        { 0x7f800000u, 0x3f800000u, 0x3f800000u }, /* +Inf: 1, 1 */
        { 0xff800000u, 0x00000000u, 0xbf800000u }, /* -Inf: 0, -1 */
        { 0x7f7fffffu, 0x3f800000u, 0x3f800000u }, /* FLT_MAX: 1, 1 */
        { 0xff7fffffu, 0x00000000u, 0xbf800000u }, /* -FLT_MAX: 0, -1 */
        { 0x43480000u, 0x3f800000u, 0x3f800000u }, /* 200: 1, 1 */
        { 0xc3480000u, 0x00000000u, 0xbf800000u }, /* -200: 0, -1 */
        { 0x00000001u, 0x3f000000u, 0x00000001u }, /* smallest subnormal: 0.5, itself */
        { 0x807fffffu, 0x3f000000u, 0x807fffffu }, /* largest negative subnormal */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        float x = from_bits(rows[i].x), y;
        k->sigmoid(&y, &x, 1);
        ck_assert_msg(bits_of(y) == rows[i].sigmoid, "%s sigmoid(%a) = %a", path, (double)x,
                      (double)y);
        k->tanh(&y, &x, 1);
        ck_assert_msg(bits_of(y) == rows[i].tanh, "%s tanh(%a) = %a", path, (double)x, (double)y);
    }
    static const uint32_t nans[] = { 0x7fc00000u, 0xffc00000u, 0x7fc12345u, 0x7f800001u };
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        float x = from_bits(nans[i]), y[4];
        k->relu(&y[0], &x, 1);
        k->leaky_relu(&y[1], &x, 1, 0.1f);
        k->sigmoid(&y[2], &x, 1);
        k->tanh(&y[3], &x, 1);
        for (int j = 0; j < 4; j++)
            ck_assert_msg(isnan(y[j]), "%s: kernel %d turned NaN %08x into %a", path, j, nans[i],
                          (double)y[j]);
    }
}

/* ReLU and leaky ReLU against their definitions, in and out of place. */
static void check_relu_definition(const cnn_activation_kernels *k, const char *path)
{
    static const float slopes[] = { 0.0f, 0.01f, 0.2f, 1.0f, -0.5f, 3.0f };
    test_rng rng;
    test_rng_seed(&rng, 11);
    for (size_t n = 1; n <= 67; n++) {
        float *x = test_xmalloc(n * sizeof *x), *y = test_xmalloc(n * sizeof *y);
        fill_mixed(&rng, x, n);
        k->relu(y, x, n);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(same_float(y[i], x[i] < 0.0f ? 0.0f : x[i]), "%s relu(%a) = %a", path,
                          (double)x[i], (double)y[i]);
        for (size_t s = 0; s < sizeof slopes / sizeof slopes[0]; s++) {
            memcpy(y, x, n * sizeof *y);
            k->leaky_relu(y, y, n, slopes[s]);
            for (size_t i = 0; i < n; i++) {
                float want = x[i] < 0.0f ? slopes[s] * x[i] : x[i];
                ck_assert_msg(same_float(y[i], want), "%s leaky_relu(%a, %g) = %a", path,
                              (double)x[i], (double)slopes[s], (double)y[i]);
            }
        }
        free(x);
        free(y);
    }
}

/* ---- portable suite ------------------------------------------------------------ */

START_TEST(portable_relu_matches_definition)
{
    check_relu_definition(&cnn__activation_portable, "portable");
}
END_TEST

START_TEST(portable_exact_values)
{
    check_exact_values(&cnn__activation_portable, "portable");
}
END_TEST

START_TEST(portable_sigmoid_accuracy)
{
    check_sweep("portable sigmoid", cnn__activation_portable.sigmoid, sigmoid_ref);
}
END_TEST

START_TEST(portable_tanh_accuracy)
{
    check_sweep("portable tanh", cnn__activation_portable.tanh, tanh_ref);
}
END_TEST

/* ---- AVX2 against portable: activations --------------------------------------- */

static size_t large_size(void) { return test_small() ? 1031 : 100003; }

/* Calls `run` on x (at `xoff`) into a guarded y (at `yoff`) for the sizes 1..67 and
 * one large size, each start offset 0..7, and once in place. */
typedef void (*act_run)(const cnn_activation_kernels *k, float *y, const float *x, size_t n);

static void compare_paths(act_run run, const char *what, int (*agree)(float, float, float))
{
    test_rng rng;
    test_rng_seed(&rng, 23);
    for (size_t n = 1; n <= 68; n++) {
        size_t size = n == 68 ? large_size() : n;
        for (size_t off = 0; off < 8; off++) {
            size_t xoff = off, yoff = (off * 5 + 3) % 8;
            float *xbuf = test_xmalloc((size + 8) * sizeof *xbuf), *x = xbuf + xoff;
            float *want = test_xmalloc(size * sizeof *want);
            fill_mixed(&rng, x, size);
            run(&cnn__activation_portable, want, x, size);

            guarded y = guarded_alloc(size, yoff);
            run(avx2_act, y.y, x, size);
            for (size_t i = 0; i < size; i++)
                ck_assert_msg(agree(y.y[i], want[i], x[i]),
                              "%s: n=%zu offsets %zu/%zu, x=%a: avx2 %a, portable %a", what, size,
                              xoff, yoff, (double)x[i], (double)y.y[i], (double)want[i]);
            guarded_check_free(&y, what);

            /* In place gives the same bits as out of place. */
            float *copy = test_xmalloc(size * sizeof *copy);
            memcpy(copy, x, size * sizeof *copy);
            run(avx2_act, x, x, size);
            float *out_of_place = test_xmalloc(size * sizeof *out_of_place);
            run(avx2_act, out_of_place, copy, size);
            ck_assert_msg(memcmp(x, out_of_place, size * sizeof *x) == 0,
                          "%s: in place differs from out of place (n=%zu)", what, size);
            free(out_of_place);
            free(copy);
            free(want);
            free(xbuf);
        }
    }
}

static int bits_agree(float a, float b, float x)
{
    (void)x;
    return same_float(a, b);
}

/* Both within MAX_REL_ERROR of the double result, so NaN and specials included. */
static int sigmoid_agree(float a, float b, float x)
{
    if (isnan(x))
        return isnan(a) && isnan(b);
    double want = sigmoid_ref((double)x);
    return rel_error(a, want) <= MAX_REL_ERROR && rel_error(b, want) <= MAX_REL_ERROR;
}

static int tanh_agree(float a, float b, float x)
{
    if (isnan(x))
        return isnan(a) && isnan(b);
    double want = tanh_ref((double)x);
    return rel_error(a, want) <= MAX_REL_ERROR && rel_error(b, want) <= MAX_REL_ERROR;
}

static void run_relu(const cnn_activation_kernels *k, float *y, const float *x, size_t n)
{
    k->relu(y, x, n);
}
static void run_leaky(const cnn_activation_kernels *k, float *y, const float *x, size_t n)
{
    k->leaky_relu(y, x, n, 0.01f);
}
static void run_leaky_odd(const cnn_activation_kernels *k, float *y, const float *x, size_t n)
{
    k->leaky_relu(y, x, n, -1.75f);
}
static void run_sigmoid(const cnn_activation_kernels *k, float *y, const float *x, size_t n)
{
    k->sigmoid(y, x, n);
}
static void run_tanh(const cnn_activation_kernels *k, float *y, const float *x, size_t n)
{
    k->tanh(y, x, n);
}

START_TEST(avx2_relu_matches_portable)
{
    compare_paths(run_relu, "relu", bits_agree);
}
END_TEST

START_TEST(avx2_leaky_relu_matches_portable)
{
    compare_paths(run_leaky, "leaky_relu 0.01", bits_agree);
    compare_paths(run_leaky_odd, "leaky_relu -1.75", bits_agree);
}
END_TEST

START_TEST(avx2_sigmoid_matches_portable)
{
    compare_paths(run_sigmoid, "sigmoid", sigmoid_agree);
}
END_TEST

START_TEST(avx2_tanh_matches_portable)
{
    compare_paths(run_tanh, "tanh", tanh_agree);
}
END_TEST

START_TEST(avx2_relu_matches_definition)
{
    check_relu_definition(avx2_act, "avx2");
}
END_TEST

START_TEST(avx2_exact_values)
{
    check_exact_values(avx2_act, "avx2");
}
END_TEST

START_TEST(avx2_sigmoid_accuracy)
{
    check_sweep("avx2 sigmoid", avx2_act->sigmoid, sigmoid_ref);
}
END_TEST

START_TEST(avx2_tanh_accuracy)
{
    check_sweep("avx2 tanh", avx2_act->tanh, tanh_ref);
}
END_TEST

/* An element's result does not depend on where it sits (vector body or tail). */
START_TEST(avx2_result_independent_of_position)
{
    test_rng rng;
    test_rng_seed(&rng, 31);
    enum { N = 203 };
    float x[N], whole[N], alone;
    fill_mixed(&rng, x, N);
    const map_fn fns[] = { avx2_act->sigmoid, avx2_act->tanh };
    for (size_t f = 0; f < 2; f++) {
        fns[f](whole, x, N);
        for (size_t i = 0; i < N; i++) {
            fns[f](&alone, &x[i], 1);
            ck_assert_msg(bits_of(alone) == bits_of(whole[i]) || (isnan(alone) && isnan(whole[i])),
                          "kernel %zu: x=%a gives %a alone, %a at index %zu", f, (double)x[i],
                          (double)alone, (double)whole[i], i);
        }
    }
}
END_TEST

/* ---- pooling --------------------------------------------------------------------- */

static cnn_pool_geometry random_geometry(test_rng *rng, int max_channels)
{
    cnn_pool_geometry g;
    g.window_h = test_rng_int(rng, 1, 4);
    g.window_w = test_rng_int(rng, 1, 4);
    g.stride_h = test_rng_int(rng, 1, 3);
    g.stride_w = test_rng_int(rng, 1, 3);
    g.pad_h = test_rng_int(rng, 0, g.window_h / 2);
    g.pad_w = test_rng_int(rng, 0, g.window_w / 2);
    int lo_h = g.window_h - 2 * g.pad_h, lo_w = g.window_w - 2 * g.pad_w;
    g.in_h = test_rng_int(rng, lo_h < 1 ? 1 : lo_h, g.window_h + 8);
    g.in_w = test_rng_int(rng, lo_w < 1 ? 1 : lo_w, g.window_w + 8);
    g.channels = test_rng_int(rng, 1, max_channels);
    g.out_h = (g.in_h + 2 * g.pad_h - g.window_h) / g.stride_h + 1;
    g.out_w = (g.in_w + 2 * g.pad_w - g.window_w) / g.stride_w + 1;
    return g;
}

static size_t in_count(const cnn_pool_geometry *g, int batch)
{
    return (size_t)batch * (size_t)g->in_h * (size_t)g->in_w * (size_t)g->channels;
}

static size_t out_count(const cnn_pool_geometry *g, int batch)
{
    return (size_t)batch * (size_t)g->out_h * (size_t)g->out_w * (size_t)g->channels;
}

/* Naive pooling in double, straight from the definition: padded cells ignored by
 * max (a NaN anywhere in the window gives NaN) and counted by avg when count_pad. */
static void pool_reference(const cnn_pool_geometry *g, const float *in, double *out, int batch,
                           int avg, int count_pad)
{
    size_t c = (size_t)g->channels, at = 0;
    for (int n = 0; n < batch; n++)
        for (int oy = 0; oy < g->out_h; oy++)
            for (int ox = 0; ox < g->out_w; ox++)
                for (size_t ch = 0; ch < c; ch++, at++) {
                    double acc = avg ? 0.0 : -INFINITY;
                    int cells = 0, nan = 0;
                    for (int ky = 0; ky < g->window_h; ky++)
                        for (int kx = 0; kx < g->window_w; kx++) {
                            int y = oy * g->stride_h - g->pad_h + ky;
                            int x = ox * g->stride_w - g->pad_w + kx;
                            if (count_pad)
                                cells++;
                            if (y < 0 || y >= g->in_h || x < 0 || x >= g->in_w)
                                continue;
                            if (!count_pad)
                                cells++;
                            double v = in[(((size_t)n * (size_t)g->in_h + (size_t)y) *
                                               (size_t)g->in_w + (size_t)x) * c + ch];
                            nan |= isnan(v);
                            acc = avg ? acc + v : (v > acc ? v : acc);
                        }
                    out[at] = nan ? NAN : avg ? acc / cells : acc;
                }
}

static void describe(char *buf, size_t size, const cnn_pool_geometry *g, int batch)
{
    snprintf(buf, size, "in %dx%dx%dx%d window %dx%d stride %dx%d pad %dx%d", batch, g->in_h,
             g->in_w, g->channels, g->window_h, g->window_w, g->stride_h, g->stride_w, g->pad_h,
             g->pad_w);
}

/* Finite data, a few +-Inf and -0 (and NaN when `with_nan`). */
static void fill_pool_input(test_rng *rng, float *x, size_t n, int with_nan)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t r = test_rng_u32(rng) % 64u;
        if (r == 0)
            x[i] = from_bits(test_rng_u32(rng) % 2u ? 0xff800000u : 0x7f800000u);
        else if (r == 1)
            x[i] = -0.0f;
        else if (r == 2 && with_nan)
            x[i] = from_bits(0x7fc00000u | (test_rng_u32(rng) & 0xffffu));
        else
            x[i] = test_rng_float(rng, -4.0f, 4.0f);
    }
}

static void check_pool_against_reference(const cnn_pool_kernels *k, const char *path)
{
    test_rng rng;
    test_rng_seed(&rng, 41);
    int cases = test_small() ? 12 : 150;
    char what[160];
    for (int i = 0; i < cases; i++) {
        cnn_pool_geometry g = random_geometry(&rng, 40);
        int batch = test_rng_int(&rng, 1, 3);
        size_t nin = in_count(&g, batch), nout = out_count(&g, batch);
        float *x = test_xmalloc(nin * sizeof *x), *y = test_xmalloc(nout * sizeof *y);
        double *want = test_xmalloc(nout * sizeof *want);
        fill_pool_input(&rng, x, nin, 0);
        describe(what, sizeof what, &g, batch);

        k->max(&g, x, y, batch);
        pool_reference(&g, x, want, batch, 0, 0);
        for (size_t j = 0; j < nout; j++)
            ck_assert_msg((double)y[j] == want[j], "%s max %s: [%zu] %a, want %a", path, what, j,
                          (double)y[j], want[j]);
        for (int count_pad = 0; count_pad < 2; count_pad++) {
            k->avg(&g, x, y, batch, count_pad);
            pool_reference(&g, x, want, batch, 1, count_pad);
            for (size_t j = 0; j < nout; j++) {
                double err = isinf(want[j]) || isnan(want[j])
                                 ? (same_float(y[j], (float)want[j]) ? 0.0 : INFINITY)
                                 : fabs((double)y[j] - want[j]) / fmax(fabs(want[j]), 1.0);
                ck_assert_msg(err <= 1e-6, "%s avg %s count_pad %d: [%zu] %a, want %a", path,
                              what, count_pad, j, (double)y[j], want[j]);
            }
        }
        free(x);
        free(y);
        free(want);
    }
}

/* One NaN in finite data: exactly the outputs whose window covers it are NaN. */
static void check_pool_nan(const cnn_pool_kernels *k, const char *path)
{
    test_rng rng;
    test_rng_seed(&rng, 43);
    int cases = test_small() ? 10 : 100;
    char what[160];
    for (int i = 0; i < cases; i++) {
        cnn_pool_geometry g = random_geometry(&rng, 20);
        size_t nin = in_count(&g, 1), nout = out_count(&g, 1);
        float *x = test_xmalloc(nin * sizeof *x), *y = test_xmalloc(nout * sizeof *y);
        test_fill_uniform(&rng, x, nin, -4.0f, 4.0f);
        int ny = test_rng_int(&rng, 0, g.in_h - 1), nx = test_rng_int(&rng, 0, g.in_w - 1);
        int nc = test_rng_int(&rng, 0, g.channels - 1);
        x[((size_t)ny * (size_t)g.in_w + (size_t)nx) * (size_t)g.channels + (size_t)nc] = NAN;
        describe(what, sizeof what, &g, 1);
        k->max(&g, x, y, 1);
        for (int oy = 0; oy < g.out_h; oy++)
            for (int ox = 0; ox < g.out_w; ox++)
                for (int ch = 0; ch < g.channels; ch++) {
                    int dy = ny - (oy * g.stride_h - g.pad_h), dx = nx - (ox * g.stride_w - g.pad_w);
                    int covered = ch == nc && dy >= 0 && dy < g.window_h && dx >= 0 &&
                                  dx < g.window_w;
                    float v = y[((size_t)oy * (size_t)g.out_w + (size_t)ox) * (size_t)g.channels +
                                (size_t)ch];
                    ck_assert_msg((isnan(v) != 0) == covered,
                                  "%s %s: NaN at (%d,%d,%d), out (%d,%d,%d) = %a", path, what, ny, nx, nc, oy, ox, ch, (double)v);
                }
        free(x);
        free(y);
    }
}

START_TEST(portable_pool_matches_reference)
{
    check_pool_against_reference(&cnn__pool_portable, "portable");
}
END_TEST

START_TEST(portable_pool_max_propagates_nan)
{
    check_pool_nan(&cnn__pool_portable, "portable");
}
END_TEST

START_TEST(avx2_pool_matches_reference)
{
    check_pool_against_reference(avx2_pool, "avx2");
}
END_TEST

START_TEST(avx2_pool_max_propagates_nan)
{
    check_pool_nan(avx2_pool, "avx2");
}
END_TEST

/* Random shapes (channels 1..67 and one large case), NaN/Inf/-0 in the data,
 * input and output at unaligned starts: max bit for bit, avg within 1e-6. */
START_TEST(avx2_pool_matches_portable)
{
    test_rng rng;
    test_rng_seed(&rng, 47);
    int cases = test_small() ? 16 : 300;
    char what[200];
    for (int i = 0; i <= cases; i++) {
        cnn_pool_geometry g = random_geometry(&rng, 67);
        int batch = test_rng_int(&rng, 1, 3);
        if (i == cases && !test_small()) { /* one large tensor */
            g = (cnn_pool_geometry){ 57, 61, 67, 0, 0, 3, 3, 2, 2, 1, 1 };
            g.out_h = (g.in_h + 2 * g.pad_h - g.window_h) / g.stride_h + 1;
            g.out_w = (g.in_w + 2 * g.pad_w - g.window_w) / g.stride_w + 1;
        }
        size_t nin = in_count(&g, batch), nout = out_count(&g, batch);
        size_t xoff = (size_t)test_rng_int(&rng, 1, 7), yoff = (size_t)test_rng_int(&rng, 1, 7);
        float *xbuf = test_xmalloc((nin + 8) * sizeof *xbuf), *x = xbuf + xoff;
        float *want = test_xmalloc(nout * sizeof *want);
        fill_pool_input(&rng, x, nin, 1);
        describe(what, sizeof what, &g, batch);

        guarded y = guarded_alloc(nout, yoff);
        cnn__pool_portable.max(&g, x, want, batch);
        avx2_pool->max(&g, x, y.y, batch);
        for (size_t j = 0; j < nout; j++)
            ck_assert_msg(bits_of(y.y[j]) == bits_of(want[j]),
                          "max %s offsets %zu/%zu: [%zu] avx2 %a, portable %a", what, xoff, yoff,
                          j, (double)y.y[j], (double)want[j]);
        for (int count_pad = 0; count_pad < 2; count_pad++) {
            cnn__pool_portable.avg(&g, x, want, batch, count_pad);
            avx2_pool->avg(&g, x, y.y, batch, count_pad);
            for (size_t j = 0; j < nout; j++) {
                int ok = isnan(want[j]) || isinf(want[j])
                             ? same_float(y.y[j], want[j])
                             : fabs((double)y.y[j] - (double)want[j]) <=
                                   1e-6 * fabs((double)want[j]);
                ck_assert_msg(ok, "avg %s count_pad %d: [%zu] avx2 %a, portable %a", what,
                              count_pad, j, (double)y.y[j], (double)want[j]);
            }
        }
        guarded_check_free(&y, "pool");
        free(want);
        free(xbuf);
    }
}
END_TEST

/* Floats that end exactly where an unreadable page begins: a kernel that reads
 * even one float past them crashes the test. */
typedef struct page_end {
    void *map;
    size_t map_bytes;
    float *x;
} page_end;

static page_end page_end_alloc(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data = (n * sizeof(float) + page - 1) / page * page;
    page_end e;
    e.map_bytes = data + page;
    e.map = mmap(NULL, e.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_msg(e.map != MAP_FAILED, "mmap of %zu bytes failed", e.map_bytes);
    ck_assert_int_eq(mprotect((char *)e.map + data, page, PROT_NONE), 0);
    e.x = (float *)(void *)((char *)e.map + data) - n;
    return e;
}

/* Fewer than 8 channels (or a remainder past the 8-wide blocks): the AVX2 loops
 * use full 8-lane blocks that reach into the next cell and the next pixel, and
 * must fall back to masked ones at the end of the call's input and output. The
 * input ends at an unreadable page and the output has canaries after it; the
 * result still matches the portable loop bit for bit. */
START_TEST(avx2_pool_stays_inside_tensors)
{
    static const int shapes[][5] = { /* window, stride, pad, in_h, in_w */
        { 2, 2, 0, 28, 28 }, { 2, 2, 0, 5, 7 }, { 3, 2, 1, 9, 8 }, { 3, 1, 0, 6, 5 },
        { 2, 1, 1, 4, 4 },   { 1, 1, 0, 3, 3 }, { 4, 3, 2, 11, 10 },
    };
    test_rng rng;
    test_rng_seed(&rng, 59);
    char what[200];
    int max_channels = test_small() ? 10 : 19;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int c = 1; c <= max_channels; c++)
            for (int batch = 1; batch <= 2; batch++) {
                const int *sh = shapes[s];
                cnn_pool_geometry g = { sh[3], sh[4], c, 0, 0, sh[0], sh[0], sh[1], sh[1], sh[2], sh[2] };
                g.out_h = (g.in_h + 2 * g.pad_h - g.window_h) / g.stride_h + 1;
                g.out_w = (g.in_w + 2 * g.pad_w - g.window_w) / g.stride_w + 1;
                size_t nin = in_count(&g, batch), nout = out_count(&g, batch);
                page_end in = page_end_alloc(nin);
                fill_pool_input(&rng, in.x, nin, 1);
                float *want = test_xmalloc(nout * sizeof *want);
                guarded y = guarded_alloc(nout, 0);
                describe(what, sizeof what, &g, batch);
                cnn__pool_portable.max(&g, in.x, want, batch);
                avx2_pool->max(&g, in.x, y.y, batch);
                for (size_t j = 0; j < nout; j++)
                    ck_assert_msg(bits_of(y.y[j]) == bits_of(want[j]),
                                  "max %s: [%zu] avx2 %a, portable %a", what, j, (double)y.y[j],
                                  (double)want[j]);
                cnn__pool_portable.avg(&g, in.x, want, batch, 1);
                avx2_pool->avg(&g, in.x, y.y, batch, 1);
                for (size_t j = 0; j < nout; j++)
                    ck_assert_msg(same_float(y.y[j], want[j]) ||
                                      fabs((double)y.y[j] - (double)want[j]) <=
                                          1e-6 * fabs((double)want[j]),
                                  "avg %s: [%zu] avx2 %a, portable %a", what, j, (double)y.y[j],
                                  (double)want[j]);
                guarded_check_free(&y, "pool");
                free(want);
                munmap(in.map, in.map_bytes);
            }
}
END_TEST

/* ---- bias rows ----------------------------------------------------------------------- */

/* Column counts around the flat-pattern limit (lcm(cols, 8) <= 128) and past it. */
static const int bias_cols[] = { 1, 2, 3, 5, 6, 7, 8, 9, 10, 12, 15, 16, 17, 24, 31, 32,
                                 33, 40, 84, 120, 127, 128, 129, 200 };

/* What follows the bias: nothing, ReLU, leaky ReLU (slope 0.1). */
enum { BIAS_ONLY, BIAS_RELU, BIAS_LEAKY, BIAS_OPS };
static const char *const bias_op_names[BIAS_OPS] = { "bias", "bias+relu", "bias+leaky relu" };
#define BIAS_SLOPE 0.1f

static void run_bias_op(const cnn_bias_kernels *k, int op, float *c, size_t rows, int cols,
                        const float *bias)
{
    if (op == BIAS_ONLY)
        k->add_rows(c, rows, cols, bias);
    else if (op == BIAS_RELU)
        k->add_rows_relu(c, rows, cols, bias);
    else
        k->add_rows_leaky_relu(c, rows, cols, bias, BIAS_SLOPE);
}

/* The definitions: one float addition, then x < 0 ? 0 (slope * x) : x, so that
 * NaN and -0 pass the activation unchanged. */
static float bias_op_definition(int op, float x, float b)
{
    float v = x + b;
    if (op == BIAS_RELU)
        return v < 0.0f ? 0.0f : v;
    if (op == BIAS_LEAKY)
        return v < 0.0f ? BIAS_SLOPE * v : v;
    return v;
}

/* Every element gets exactly its column's bias added and then the activation,
 * at unaligned starts, and nothing outside the matrix is written; mixed data
 * with NaN, Inf, -0 and subnormals. */
static void check_bias_rows(const cnn_bias_kernels *k, const char *path)
{
    test_rng rng;
    test_rng_seed(&rng, 61);
    for (int op = 0; op < BIAS_OPS; op++)
        for (size_t ci = 0; ci < sizeof bias_cols / sizeof bias_cols[0]; ci++) {
            const int cols = bias_cols[ci];
            const size_t row_counts[] = { 0, 1, 2, 3, 7, 64, 671 };
            for (size_t ri = 0; ri < sizeof row_counts / sizeof row_counts[0]; ri++) {
                size_t rows = row_counts[ri], n = rows * (size_t)cols;
                if (test_small() && n > 2000)
                    continue;
                float *bias = test_xmalloc((size_t)cols * sizeof *bias);
                float *x = test_xmalloc((n ? n : 1) * sizeof *x);
                fill_mixed(&rng, bias, (size_t)cols);
                fill_mixed(&rng, x, n);
                guarded y = guarded_alloc(n, (size_t)test_rng_int(&rng, 0, 7));
                memcpy(y.y, x, n * sizeof *x);
                run_bias_op(k, op, y.y, rows, cols, bias);
                for (size_t r = 0; r < rows; r++)
                    for (size_t j = 0; j < (size_t)cols; j++) {
                        size_t at = r * (size_t)cols + j;
                        float want = bias_op_definition(op, x[at], bias[j]);
                        ck_assert_msg(same_float(y.y[at], want),
                                      "%s %s %zu x %d: [%zu][%zu] x %a, bias %a gave %a, want %a",
                                      path, bias_op_names[op], rows, cols, r, j, (double)x[at],
                                      (double)bias[j], (double)y.y[at], (double)want);
                    }
                guarded_check_free(&y, bias_op_names[op]);
                free(x);
                free(bias);
            }
        }
}

START_TEST(portable_bias_rows_add_each_column)
{
    check_bias_rows(&cnn__bias_portable, "portable");
}
END_TEST

START_TEST(avx2_bias_rows_add_each_column)
{
    check_bias_rows(avx2_bias, "avx2");
}
END_TEST

/* The two paths agree bit for bit, except which NaN a sum of two NaNs keeps
 * (C leaves that to the compiler, which may swap the operands). */
START_TEST(avx2_bias_rows_match_portable)
{
    test_rng rng;
    test_rng_seed(&rng, 67);
    for (int op = 0; op < BIAS_OPS; op++)
        for (size_t ci = 0; ci < sizeof bias_cols / sizeof bias_cols[0]; ci++) {
            const int cols = bias_cols[ci];
            size_t rows = (size_t)test_rng_int(&rng, 1, test_small() ? 20 : 300);
            size_t n = rows * (size_t)cols;
            float bias[200], *a = test_xmalloc(n * sizeof *a), *b = test_xmalloc(n * sizeof *b);
            fill_mixed(&rng, bias, (size_t)cols);
            fill_mixed(&rng, a, n);
            memcpy(b, a, n * sizeof *a);
            run_bias_op(&cnn__bias_portable, op, a, rows, cols, bias);
            run_bias_op(avx2_bias, op, b, rows, cols, bias);
            for (size_t i = 0; i < n; i++)
                ck_assert_msg(same_float(a[i], b[i]), "%s %zu x %d: [%zu] portable %a, avx2 %a",
                              bias_op_names[op], rows, cols, i, (double)a[i], (double)b[i]);
            free(a);
            free(b);
        }
}
END_TEST

/* The fused loops give what the bias loop and then the activation loop give,
 * on the dispatched path. */
START_TEST(bias_then_activation_equals_fused)
{
    test_rng rng;
    test_rng_seed(&rng, 71);
    enum { ROWS = 37, COLS = 6, N = ROWS * COLS };
    float bias[COLS], x[N], fused[N], apart[N];
    fill_mixed(&rng, bias, COLS);
    fill_mixed(&rng, x, N);
    memcpy(fused, x, sizeof x);
    memcpy(apart, x, sizeof x);
    cnn__add_bias_relu_rows(fused, ROWS, COLS, bias);
    cnn__add_bias_rows(apart, ROWS, COLS, bias);
    cnn__relu(apart, apart, N);
    for (size_t i = 0; i < N; i++)
        ck_assert_msg(same_float(fused[i], apart[i]), "relu [%zu]: %a fused, %a apart", i,
                      (double)fused[i], (double)apart[i]);
    memcpy(fused, x, sizeof x);
    memcpy(apart, x, sizeof x);
    cnn__add_bias_leaky_relu_rows(fused, ROWS, COLS, bias, 0.3f);
    cnn__add_bias_rows(apart, ROWS, COLS, bias);
    cnn__leaky_relu(apart, apart, N, 0.3f);
    for (size_t i = 0; i < N; i++)
        ck_assert_msg(same_float(fused[i], apart[i]), "leaky [%zu]: %a fused, %a apart", i,
                      (double)fused[i], (double)apart[i]);
}
END_TEST

/* ---- dispatch ---------------------------------------------------------------------- */

/* cnn__relu & co. take the path cnn__cpu_use_avx2() names; CNN_FORCE_PORTABLE=1
 * (set by the second registration of this test) makes that the portable one. */
START_TEST(dispatch_follows_cpu_choice)
{
    const char *forced = getenv("CNN_FORCE_PORTABLE");
    int use = cnn__cpu_use_avx2();
    printf("dispatch: AVX2+FMA %s, CNN_FORCE_PORTABLE=%s, kernels take the %s path\n",
           cnn__cpu_has_avx2_fma() ? "available" : "not available", forced ? forced : "(unset)",
           use && avx2_act ? "AVX2" : "portable");
    if (forced && forced[0] && strcmp(forced, "0") != 0)
        ck_assert_msg(!use, "CNN_FORCE_PORTABLE=%s but the AVX2 path is chosen", forced);
    if (use)
        ck_assert(cnn__cpu_has_avx2_fma());
    ck_assert_int_eq(cnn__cpu_use_avx2(), use); /* cached: same answer */

    const cnn_activation_kernels *act = use && avx2_act ? avx2_act : &cnn__activation_portable;
    const cnn_pool_kernels *pool = use && avx2_pool ? avx2_pool : &cnn__pool_portable;
    enum { N = 1000 };
    float x[N], got[N], want[N];
    test_rng rng;
    test_rng_seed(&rng, 53);
    /* sigmoid and tanh differ between the paths in the last bits somewhere in here. */
    test_fill_uniform(&rng, x, N, -12.0f, 12.0f);
    cnn__sigmoid(got, x, N);
    act->sigmoid(want, x, N);
    ck_assert_msg(memcmp(got, want, sizeof got) == 0, "cnn__sigmoid took the other path");
    cnn__tanh(got, x, N);
    act->tanh(want, x, N);
    ck_assert_msg(memcmp(got, want, sizeof got) == 0, "cnn__tanh took the other path");
    cnn__relu(got, x, N);
    act->relu(want, x, N);
    ck_assert(memcmp(got, want, sizeof got) == 0);
    cnn__leaky_relu(got, x, N, 0.25f);
    act->leaky_relu(want, x, N, 0.25f);
    ck_assert(memcmp(got, want, sizeof got) == 0);

    cnn_pool_geometry g = { 10, 10, 10, 5, 5, 2, 2, 2, 2, 0, 0 };
    cnn__pool_max(&g, x, got, 1);
    pool->max(&g, x, want, 1);
    ck_assert(memcmp(got, want, 250 * sizeof *got) == 0);
    cnn__pool_avg(&g, x, got, 1, 1);
    pool->avg(&g, x, want, 1, 1);
    ck_assert(memcmp(got, want, 250 * sizeof *got) == 0);
}
END_TEST

/* The sweep really tells the two sigmoid paths apart (else the dispatch test above
 * could not fail). */
START_TEST(dispatch_paths_distinguishable)
{
    enum { N = 1000 };
    float x[N], a[N], b[N];
    test_rng rng;
    test_rng_seed(&rng, 53);
    test_fill_uniform(&rng, x, N, -12.0f, 12.0f);
    cnn__activation_portable.sigmoid(a, x, N);
    avx2_act->sigmoid(b, x, N);
    ck_assert_msg(memcmp(a, b, sizeof a) != 0, "sigmoid paths agree on every bit here");
    cnn__activation_portable.tanh(a, x, N);
    avx2_act->tanh(b, x, N);
    ck_assert_msg(memcmp(a, b, sizeof a) != 0, "tanh paths agree on every bit here");
}
END_TEST

/* ---- main ------------------------------------------------------------------------------ */

static Suite *portable_suite(void)
{
    Suite *s = suite_create("kernels_portable");
    TCase *tc = tcase_create("portable");
    tcase_add_test(tc, portable_relu_matches_definition);
    tcase_add_test(tc, portable_exact_values);
    tcase_add_test(tc, portable_sigmoid_accuracy);
    tcase_add_test(tc, portable_tanh_accuracy);
    tcase_add_test(tc, portable_pool_matches_reference);
    tcase_add_test(tc, portable_pool_max_propagates_nan);
    tcase_add_test(tc, portable_bias_rows_add_each_column);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *avx2_suite(void)
{
    Suite *s = suite_create("kernels_avx2");
    TCase *tc = tcase_create("avx2");
    tcase_add_test(tc, avx2_relu_matches_definition);
    tcase_add_test(tc, avx2_exact_values);
    tcase_add_test(tc, avx2_relu_matches_portable);
    tcase_add_test(tc, avx2_leaky_relu_matches_portable);
    tcase_add_test(tc, avx2_sigmoid_matches_portable);
    tcase_add_test(tc, avx2_tanh_matches_portable);
    tcase_add_test(tc, avx2_sigmoid_accuracy);
    tcase_add_test(tc, avx2_tanh_accuracy);
    tcase_add_test(tc, avx2_result_independent_of_position);
    tcase_add_test(tc, avx2_pool_matches_reference);
    tcase_add_test(tc, avx2_pool_max_propagates_nan);
    tcase_add_test(tc, avx2_pool_matches_portable);
    tcase_add_test(tc, avx2_pool_stays_inside_tensors);
    tcase_add_test(tc, avx2_bias_rows_add_each_column);
    tcase_add_test(tc, avx2_bias_rows_match_portable);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *dispatch_suite(void)
{
    Suite *s = suite_create("kernels_dispatch");
    TCase *tc = tcase_create("dispatch");
    tcase_add_test(tc, dispatch_follows_cpu_choice);
    tcase_add_test(tc, bias_then_activation_equals_fused);
    if (avx2_act)
        tcase_add_test(tc, dispatch_paths_distinguishable);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    avx2_act = cnn__activation_avx2();
    avx2_pool = cnn__pool_avx2();
    avx2_bias = cnn__bias_avx2();
    Suite *s;
    if (strcmp(mode, "portable") == 0)
        s = portable_suite();
    else if (strcmp(mode, "dispatch") == 0)
        s = dispatch_suite();
    else if (strcmp(mode, "avx2") == 0) {
        if (!avx2_act || !avx2_pool || !avx2_bias) {
            printf("SKIP: AVX2 kernels %s\n", cnn__cpu_has_avx2_fma()
                                                  ? "were not built"
                                                  : "need AVX2+FMA, which this CPU lacks");
            return 77;
        }
        s = avx2_suite();
    } else {
        fprintf(stderr, "usage: %s portable|avx2|dispatch\n", argv[0]);
        return 2;
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
