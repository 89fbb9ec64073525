/* The narrow direct convolution (src/kernels/conv_narrow*.c: 8 output pixels
 * across the AVX2 lanes, for layers of at most 7 output channels and
 * horizontal stride 1) called directly, below conv.c's choice of path:
 * - the row function on random geometries (every cout 1..7, in_c 1..9 and 32,
 *   kernels 1..7 either way, vertical strides 1..3, paddings 0..3, rows of 1
 *   to 70 pixels) and runs [ox, ox + n) that start and end anywhere, against
 *   a double reference, bit for bit against the AVX2 channel-lane loop
 *   (conv_direct.h) on a zero-padded NHWC copy of the same rows, with canaries
 *   before and after the run, and with the band cut off by an unmapped page
 *   CNN_CONV_NARROW_SLACK floats past the last float a valid pixel reads
 *   (every float no valid pixel reads is NaN, so a lane that leaks shows);
 * - NaN inputs and weights reach exactly the outputs that read them;
 * - the band fill, the pitch and the weight packing against their definitions;
 * - a LeNet-like layer (and one of several bands per image) through the
 *   public API at 1 and 2 threads: the reference, the loop's bits, and the
 *   same bits at every thread count and run.
 *
 * Registered as is and with CNN_FORCE_PORTABLE=1. Lowered to portable, the
 * loop's getter must say NULL (that replaces the loop's cases); as is, a CPU
 * with AVX2+FMA must get the loop, and one without it makes the suite exit 77
 * (skipped) after the cases that do not need it. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, posix_memalign */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cnn.h"
#include "kernels/conv_direct.h"
#include "kernels/conv_narrow.h"
#include "kernels/cpu.h"
#include "net_harness.h"
#include "reference.h"
#include "support.h"

#define TOL 1e-5           /* a pixel's error over its largest sum of |products| */
#define NET_TOL 1e-5       /* a net's output against the double reference (normwise) */
#define GUARD 64           /* canary floats around an output run or a buffer */


static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static float *aligned_floats(size_t n)
{
    void *p = NULL;
    ck_assert_int_eq(posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)), 0);
    return p;
}

static void fill_canary(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = test_canary();
}

/* Nonzero when CNN_FORCE_PORTABLE or CNN_MAX_SIMD=portable lowers the level
 * (cpu.h's rule). */
static int lowered_to_portable(void)
{
    const char *forced = getenv("CNN_FORCE_PORTABLE"), *max = getenv("CNN_MAX_SIMD");
    return (forced && forced[0] && strcmp(forced, "0") != 0) ||
           (max && strcmp(max, "portable") == 0);
}

/* ---- geometry ------------------------------------------------------------ */

static size_t window_size(const cnn_conv_geometry *g)
{
    return (size_t)g->kernel_h * (size_t)g->kernel_w * (size_t)g->in_c;
}

static int padded_width(const cnn_conv_geometry *g) { return g->in_w + 2 * g->pad_w; }

/* Fills the output size of a geometry whose input and window are set. */
static void set_out_size(cnn_conv_geometry *g)
{
    g->stride_w = 1;
    g->out_h = (g->in_h + 2 * g->pad_h - g->kernel_h) / g->stride_h + 1;
    g->out_w = padded_width(g) - g->kernel_w + 1;
}

/* A random layer whose rows are out_w pixels: below 8, whole multiples of 8
 * (a third of the time) and everything between, up to 70. */
static cnn_conv_geometry random_geometry(test_rng *rng)
{
    cnn_conv_geometry g;
    g.in_c = test_rng_int(rng, 0, 7) == 0 ? 32 : test_rng_int(rng, 1, 9);
    g.kernel_h = test_rng_int(rng, 1, 7);
    g.kernel_w = test_rng_int(rng, 1, 7);
    g.stride_h = test_rng_int(rng, 1, 3);
    g.pad_h = test_rng_int(rng, 0, 3);
    g.pad_w = test_rng_int(rng, 0, 3);
    int out_w = test_rng_int(rng, 0, 2) == 0 ? 8 * test_rng_int(rng, 1, 8) : test_rng_int(rng, 1, 70);
    g.in_w = out_w - 1 + g.kernel_w - 2 * g.pad_w;
    while (g.in_w < 1) { /* too much padding for this width: less of it */
        g.pad_w--;
        g.in_w += 2;
    }
    g.in_h = test_rng_int(rng, 1, test_small() ? 6 : 12);
    if (g.in_h + 2 * g.pad_h < g.kernel_h)
        g.in_h = g.kernel_h - 2 * g.pad_h;
    set_out_size(&g);
    ck_assert_int_eq(g.out_w, out_w);
    return g;
}

static void describe(char *buf, size_t size, const cnn_conv_geometry *g, int cout)
{
    snprintf(buf, size, "in %dx%dx%d kernel %dx%d stride %d pad %dx%d -> %dx%dx%d", g->in_h,
             g->in_w, g->in_c, g->kernel_h, g->kernel_w, g->stride_h, g->pad_h, g->pad_w, g->out_h,
             g->out_w, cout);
}

/* Output (oy, ox) channel o in double, with its largest possible rounding
 * scale: the sum of |products| (cancellation makes |result| meaningless). */
static double reference(const cnn_conv_geometry *g, const float *x, const float *w, int oy,
                        int ox, int o, double *abs_sum)
{
    const size_t k = window_size(g);
    double sum = 0.0, mag = 0.0;
    for (int ky = 0; ky < g->kernel_h; ky++)
        for (int kx = 0; kx < g->kernel_w; kx++) {
            const int y = oy * g->stride_h - g->pad_h + ky, xx = ox - g->pad_w + kx;
            if (y < 0 || y >= g->in_h || xx < 0 || xx >= g->in_w)
                continue;
            for (int ci = 0; ci < g->in_c; ci++) {
                size_t at = ((size_t)y * (size_t)g->in_w + (size_t)xx) * (size_t)g->in_c +
                            (size_t)ci;
                size_t wi = (size_t)o * k +
                            ((size_t)ky * (size_t)g->kernel_w + (size_t)kx) * (size_t)g->in_c +
                            (size_t)ci;
                double p = (double)x[at] * (double)w[wi];
                sum += p;
                mag += fabs(p);
            }
        }
    *abs_sum = mag;
    return sum;
}

/* Band rows [y0, y0 + rows) of image x by the definition: plane (r, ci)
 * column j is input (y0 + r, j - pad_w, ci), zero outside the image and in
 * every column up to pitch; nothing written past the band. */
static void check_band(const cnn_conv_geometry *g, const float *x, int y0, int rows,
                       size_t pitch, const float *band, size_t floats_after, const char *what)
{
    const size_t in_c = (size_t)g->in_c;
    for (int r = 0; r < rows; r++)
        for (size_t ci = 0; ci < in_c; ci++)
            for (size_t j = 0; j < pitch; j++) {
                const int y = y0 + r, xx = (int)j - g->pad_w;
                float want = 0.0f;
                if (y >= 0 && y < g->in_h && xx >= 0 && xx < g->in_w)
                    want = x[((size_t)y * (size_t)g->in_w + (size_t)xx) * in_c + ci];
                float got = band[((size_t)r * in_c + ci) * pitch + j];
                ck_assert_msg(same_bits(got, want),
                              "%s: band y0 %d row %d channel %zu column %zu is %g, want %g",
                              what, y0, r, ci, j, (double)got, (double)want);
            }
    const float *after = band + (size_t)rows * in_c * pitch;
    for (size_t i = 0; i < floats_after; i++)
        ck_assert_msg(test_is_canary(after[i]), "%s: band fill wrote float %zu past its %d rows",
                      what, i, rows);
}

/* ---- one layer's band, packed weights and both loops' inputs -------------- */

/* A mapping whose last page is unreadable: `end` is its first float. */
typedef struct guarded {
    void *map;
    size_t bytes;
    float *end;
} guarded;

static guarded guarded_floats(size_t n)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t body = (n * sizeof(float) + page - 1) / page * page;
    guarded gd = { NULL, body + page, NULL };
    gd.map = mmap(NULL, gd.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_msg(gd.map != MAP_FAILED, "mmap of %zu bytes failed", gd.bytes);
    ck_assert_int_eq(mprotect((char *)gd.map + body, page, PROT_NONE), 0);
    gd.end = (float *)(void *)((char *)gd.map + body);
    return gd;
}

typedef struct narrow_setup {
    const cnn_conv_geometry *g;
    int cout;
    const float *x, *w;
    int oy0;                /* output row whose window starts at band row 0 */
    int rows;               /* band rows */
    cnn_conv_narrow_task t; /* band filled by cnn__conv_narrow_fill_band */
    float *band, *packed;
    cnn_conv_narrow_fn narrow;
    cnn_conv_direct_task dt; /* the channel-lane loop on padded NHWC rows */
    float *padded, *direct_packed;
    cnn_conv_direct_fn direct;
    int panels;
    guarded copy; /* the band again, cut off past what a run may read */
} narrow_setup;

/* Input rows [y0, y0 + rows) zero-padded to the padded width, NHWC: the
 * source the channel-lane loop reads without clipping. */
static float *padded_rows(const cnn_conv_geometry *g, const float *x, int y0, int rows)
{
    const size_t in_c = (size_t)g->in_c, width = (size_t)padded_width(g);
    float *p = aligned_floats((size_t)rows * width * in_c);
    for (int r = 0; r < rows; r++)
        for (size_t j = 0; j < width; j++)
            for (size_t ci = 0; ci < in_c; ci++) {
                const int y = y0 + r, xx = (int)j - g->pad_w;
                int inside = y >= 0 && y < g->in_h && xx >= 0 && xx < g->in_w;
                p[((size_t)r * width + j) * in_c + ci] =
                    inside ? x[((size_t)y * (size_t)g->in_w + (size_t)xx) * in_c + ci] : 0.0f;
            }
    return p;
}

/* Everything a run of output rows [oy0, oy1] needs; checks the band fill and
 * the packing's bounds on the way. */
static void setup_rows(narrow_setup *s, const cnn_conv_geometry *g, int cout, const float *x,
                       const float *w, int oy0, int oy1, const char *what)
{
    const size_t in_c = (size_t)g->in_c, k = window_size(g);
    s->g = g;
    s->cout = cout;
    s->x = x;
    s->w = w;
    s->oy0 = oy0;
    s->rows = (oy1 - oy0) * g->stride_h + g->kernel_h;
    const int y0 = oy0 * g->stride_h - g->pad_h;
    const size_t pitch = cnn__conv_narrow_pitch(g);
    const size_t band_floats = (size_t)s->rows * in_c * pitch;
    s->band = aligned_floats(band_floats + GUARD);
    fill_canary(s->band, band_floats + GUARD);
    cnn__conv_narrow_fill_band(g, x, y0, s->rows, pitch, s->band);
    check_band(g, x, y0, s->rows, pitch, s->band, GUARD, what);

    const size_t packed_floats = cnn__conv_narrow_packed_floats(g, cout);
    s->packed = aligned_floats(packed_floats + GUARD);
    fill_canary(s->packed, packed_floats + GUARD);
    s->t = (cnn_conv_narrow_task){ NULL, NULL, 0, cout, g->in_c, s->band, pitch };
    cnn__conv_narrow_pack(g, w, cout, pitch, s->packed);
    cnn__conv_narrow_view(g, cout, s->packed, &s->t);
    for (size_t i = packed_floats; i < packed_floats + GUARD; i++)
        ck_assert_msg(test_is_canary(s->packed[i]), "%s: packing wrote past its %zu floats", what,
                      packed_floats);
    ck_assert_uint_eq(s->t.k, k);
    s->narrow = cnn__conv_narrow_avx2();
    ck_assert_msg(s->narrow != NULL, "the narrow loop vanished");

    const cnn_conv_direct_layout layout = cnn__conv_direct_avx2_layout(cout);
    s->direct = cnn__conv_direct_avx2();
    ck_assert_msg(s->direct != NULL, "the narrow loop runs but the channel-lane AVX2 loop not");
    s->panels = cnn__conv_direct_panels(layout, cout);
    s->direct_packed = aligned_floats(k * cnn__conv_direct_cout_pad(cout));
    cnn__conv_direct_pack(w, k, cout, layout, 0, s->panels, s->direct_packed);
    s->padded = padded_rows(g, x, y0, s->rows);
    const size_t row_stride = (size_t)padded_width(g) * in_c;
    s->dt = (cnn_conv_direct_task){ .packed = s->direct_packed,
                                    .packed_from = 0,
                                    .layout = layout,
                                    .cout = cout,
                                    .kernel_h = g->kernel_h,
                                    .row_len = g->kernel_w * g->in_c,
                                    .src = s->padded,
                                    .row_stride = row_stride,
                                    .y_step = (size_t)g->stride_h * row_stride,
                                    .x_step = in_c,
                                    .out_w = g->out_w };
    s->copy = guarded_floats(band_floats);
}

static void free_setup(narrow_setup *s)
{
    munmap(s->copy.map, s->copy.bytes);
    free(s->padded);
    free(s->direct_packed);
    free(s->packed);
    free(s->band);
}

/* The band at the end of the guarded mapping for a run on band row `row`,
 * columns [ox, ox + n): it ends CNN_CONV_NARROW_SLACK floats past the last
 * float a valid pixel reads, and every float no valid pixel reads is NaN.
 * Returns the task that reads it. */
static cnn_conv_narrow_task guarded_band(const narrow_setup *s, int row, int ox, int n)
{
    const cnn_conv_geometry *g = s->g;
    const size_t pitch = s->t.pitch, in_c = (size_t)g->in_c;
    const size_t first_plane = (size_t)row * in_c;
    const size_t last_plane = (size_t)(row + g->kernel_h) * in_c - 1;
    const size_t col0 = (size_t)ox, col1 = (size_t)(ox + n - 1 + g->kernel_w - 1);
    const size_t reach = last_plane * pitch + col1 + 1 + CNN_CONV_NARROW_SLACK;
    ck_assert_uint_le(reach, (size_t)s->rows * in_c * pitch);
    float *dst = s->copy.end - reach;
    memcpy(dst, s->band, reach * sizeof(float));
    for (size_t i = 0; i < reach; i++) {
        const size_t plane = i / pitch, col = i % pitch;
        if (plane < first_plane || plane > last_plane || col < col0 || col > col1)
            dst[i] = NAN;
    }
    cnn_conv_narrow_task t = s->t;
    t.band = dst;
    return t;
}

/* Runs output row oy's pixels [ox, ox + n) through the narrow loop and checks
 * them: the reference, the canaries, the channel-lane loop's bits. */
static void check_run(const narrow_setup *s, int oy, int ox, int n, const char *what)
{
    const cnn_conv_geometry *g = s->g;
    const size_t cout = (size_t)s->cout, floats = (size_t)n * cout;
    const int row = (oy - s->oy0) * g->stride_h;
    const cnn_conv_narrow_task t = guarded_band(s, row, ox, n);
    /* A varying misalignment: conv.c stores runs at any pixel. */
    const size_t before = GUARD + (size_t)(ox + n) % 8;
    float *buf = aligned_floats(before + floats + GUARD);
    fill_canary(buf, before + floats + GUARD);
    float *out = buf + before;
    s->narrow(&t, row, ox, n, out);
    for (size_t i = 0; i < before; i++)
        ck_assert_msg(test_is_canary(buf[i]), "%s: row %d run %d+%d wrote %zu floats before it",
                      what, oy, ox, n, before - i);
    for (size_t i = 0; i < GUARD; i++)
        ck_assert_msg(test_is_canary(out[floats + i]), "%s: row %d run %d+%d wrote float %zu past it",
                      what, oy, ox, n, i);
    for (int p = 0; p < n; p++) {
        double err = 0.0, scale = 0.0;
        for (int o = 0; o < s->cout; o++) {
            double mag;
            double ref = reference(g, s->x, s->w, oy, ox + p, o, &mag);
            float y = out[(size_t)p * cout + (size_t)o];
            ck_assert_msg(isfinite(y), "%s: row %d run %d+%d pixel %d channel %d is %g", what,
                          oy, ox, n, p, o, (double)y);
            err = fmax(err, fabs((double)y - ref));
            scale = fmax(scale, mag);
        }
        ck_assert_msg(err <= TOL * scale, "%s: row %d run %d+%d pixel %d off by %g (scale %g)",
                      what, oy, ox, n, p, err, scale);
    }
    float *lanes = aligned_floats(floats);
    s->direct(&s->dt, oy - s->oy0, ox, (size_t)n, 0, s->panels, lanes);
    for (size_t i = 0; i < floats; i++)
        ck_assert_msg(same_bits(out[i], lanes[i]),
                      "%s: row %d run %d+%d pixel %zu channel %zu: narrow %a, channel lanes %a",
                      what, oy, ox, n, i / cout, i % cout, (double)out[i], (double)lanes[i]);
    free(lanes);
    free(buf);
}

/* ---- the loop's cases (AVX2 only) ---------------------------------------- */

/* Random layers for every cout; each fills a band of up to 4 output rows
 * (above and below the image when padded) and runs whole rows and random
 * runs of each. */
START_TEST(loop_matches_reference_and_channel_lanes)
{
    test_rng rng;
    test_rng_seed(&rng, 8101);
    const int per_cout = test_small() ? 3 : 40;
    int runs = 0;
    for (int cout = 1; cout <= CNN_CONV_NARROW_MAX_COUT; cout++)
        for (int i = 0; i < per_cout; i++) {
            const cnn_conv_geometry g = random_geometry(&rng);
            const size_t k = window_size(&g);
            const size_t in_n = (size_t)g.in_h * (size_t)g.in_w * (size_t)g.in_c;
            float *x = harness_random(&rng, in_n, -1.0f, 1.0f);
            float *w = harness_random(&rng, k * (size_t)cout, -1.0f, 1.0f);
            const int oy0 = test_rng_int(&rng, 0, g.out_h - 1);
            const int oy1 = test_rng_int(&rng, oy0, g.out_h - 1 < oy0 + 3 ? g.out_h - 1 : oy0 + 3);
            char what[160];
            describe(what, sizeof what, &g, cout);
            narrow_setup s;
            setup_rows(&s, &g, cout, x, w, oy0, oy1, what);
            for (int oy = oy0; oy <= oy1; oy++) {
                check_run(&s, oy, 0, g.out_w, what);
                const int ox = test_rng_int(&rng, 0, g.out_w - 1);
                check_run(&s, oy, ox, test_rng_int(&rng, 1, g.out_w - ox), what);
                const int n = test_rng_int(&rng, 1, g.out_w);
                check_run(&s, oy, g.out_w - n, n, what); /* ends at the row's end */
                runs += 3;
            }
            free_setup(&s);
            free(w);
            free(x);
        }
    ck_assert_int_gt(runs, 0);
}
END_TEST

/* Every run length 1..70 for every cout, from the row's start and ending at
 * its end: every tail of every block size. */
START_TEST(loop_every_run_length)
{
    test_rng rng;
    test_rng_seed(&rng, 8102);
    for (int cout = 1; cout <= CNN_CONV_NARROW_MAX_COUT; cout++) {
        cnn_conv_geometry g = { .in_h = 5, .in_w = 70, .in_c = 1 + cout % 3, .kernel_h = 2,
                                .kernel_w = 3, .stride_h = 1, .pad_h = 1, .pad_w = 1 };
        set_out_size(&g);
        const size_t k = window_size(&g);
        float *x = harness_random(&rng, (size_t)g.in_h * (size_t)g.in_w * (size_t)g.in_c, -1.0f,
                                  1.0f);
        float *w = harness_random(&rng, k * (size_t)cout, -1.0f, 1.0f);
        char what[160];
        describe(what, sizeof what, &g, cout);
        narrow_setup s;
        setup_rows(&s, &g, cout, x, w, 0, g.out_h - 1, what);
        for (int n = 1; n <= g.out_w; n++) {
            const int oy = n % g.out_h;
            check_run(&s, oy, 0, n, what);
            check_run(&s, oy, g.out_w - n, n, what);
        }
        free_setup(&s);
        free(w);
        free(x);
    }
}
END_TEST

/* All output rows of a layer as runs split at `split` (0: whole rows) into out (NHWC). */
static void run_layer(const narrow_setup *s, int split, float *out)
{
    const cnn_conv_geometry *g = s->g;
    for (int oy = 0; oy < g->out_h; oy++) {
        float *row_out = out + (size_t)oy * (size_t)g->out_w * (size_t)s->cout;
        const int row = oy * g->stride_h;
        if (split > 0 && split < g->out_w) {
            s->narrow(&s->t, row, 0, split, row_out);
            s->narrow(&s->t, row, split, g->out_w - split, row_out + (size_t)split * (size_t)s->cout);
        } else {
            s->narrow(&s->t, row, 0, g->out_w, row_out);
        }
    }
}

/* A NaN input at each corner, edge and inside reaches exactly the outputs
 * whose window covers it, in every channel; the rest stay finite. */
START_TEST(loop_input_nan_reaches_its_windows)
{
    static const int spots[][3] = { { 0, 0, 0 }, { 6, 20, 2 }, { 3, 10, 1 }, { 0, 20, 1 },
                                    { 6, 0, 2 }, { 2, 7, 0 } };
    test_rng rng;
    test_rng_seed(&rng, 8103);
    for (int cout = 1; cout <= CNN_CONV_NARROW_MAX_COUT; cout++) {
        cnn_conv_geometry g = { .in_h = 7, .in_w = 21, .in_c = 3, .kernel_h = 3, .kernel_w = 4,
                                .stride_h = 2, .pad_h = 1, .pad_w = 2 };
        set_out_size(&g);
        const size_t k = window_size(&g), in_n = (size_t)g.in_h * (size_t)g.in_w * 3;
        const size_t out_n = (size_t)g.out_h * (size_t)g.out_w * (size_t)cout;
        float *w = harness_random(&rng, k * (size_t)cout, -1.0f, 1.0f);
        float *out = test_xmalloc(out_n * sizeof(float));
        for (size_t si = 0; si < sizeof spots / sizeof spots[0]; si++) {
            const int ny = spots[si][0], nx = spots[si][1], nc = spots[si][2];
            float *x = harness_random(&rng, in_n, -1.0f, 1.0f);
            x[((size_t)ny * (size_t)g.in_w + (size_t)nx) * 3 + (size_t)nc] = NAN;
            char what[160];
            describe(what, sizeof what, &g, cout);
            narrow_setup s;
            setup_rows(&s, &g, cout, x, w, 0, g.out_h - 1, what);
            run_layer(&s, (int)si * 5, out);
            int nans = 0;
            for (int oy = 0; oy < g.out_h; oy++)
                for (int ox = 0; ox < g.out_w; ox++) {
                    const int dy = ny - (oy * g.stride_h - g.pad_h), dx = nx - (ox - g.pad_w);
                    const int covers = dy >= 0 && dy < g.kernel_h && dx >= 0 && dx < g.kernel_w;
                    for (int o = 0; o < cout; o++) {
                        float y = out[((size_t)oy * (size_t)g.out_w + (size_t)ox) * (size_t)cout +
                                      (size_t)o];
                        ck_assert_msg(covers ? isnan(y) : isfinite(y),
                                      "%s: NaN at (%d,%d,%d): output (%d,%d,%d) is %g", what, ny,
                                      nx, nc, oy, ox, o, (double)y);
                        nans += covers;
                    }
                }
            ck_assert_int_gt(nans, 0);
            free_setup(&s);
            free(x);
        }
        free(out);
        free(w);
    }
}
END_TEST

/* A NaN weight makes every output of its channel NaN (windows of padding
 * only too: 0 * NaN) and no output of another channel. */
START_TEST(loop_weight_nan_poisons_its_channel)
{
    test_rng rng;
    test_rng_seed(&rng, 8104);
    for (int cout = 1; cout <= CNN_CONV_NARROW_MAX_COUT; cout++) {
        /* pad 3 > kernel_w - 1: the edge columns' windows are all padding */
        cnn_conv_geometry g = { .in_h = 6, .in_w = 19, .in_c = 2, .kernel_h = 2, .kernel_w = 3,
                                .stride_h = 3, .pad_h = 2, .pad_w = 3 };
        set_out_size(&g);
        const size_t k = window_size(&g), in_n = (size_t)g.in_h * (size_t)g.in_w * 2;
        const size_t out_n = (size_t)g.out_h * (size_t)g.out_w * (size_t)cout;
        float *x = harness_random(&rng, in_n, -1.0f, 1.0f);
        float *out = test_xmalloc(out_n * sizeof(float));
        for (int bad = 0; bad < cout; bad++) {
            float *w = harness_random(&rng, k * (size_t)cout, -1.0f, 1.0f);
            w[(size_t)bad * k + (size_t)test_rng_int(&rng, 0, (int)k - 1)] = NAN;
            char what[160];
            describe(what, sizeof what, &g, cout);
            narrow_setup s;
            setup_rows(&s, &g, cout, x, w, 0, g.out_h - 1, what);
            run_layer(&s, bad * 3, out);
            for (size_t i = 0; i < out_n; i++) {
                const int o = (int)(i % (size_t)cout);
                ck_assert_msg(o == bad ? isnan(out[i]) : isfinite(out[i]),
                              "%s: NaN weight of channel %d: pixel %zu channel %d is %g", what,
                              bad, i / (size_t)cout, o, (double)out[i]);
            }
            free_setup(&s);
            free(w);
        }
        free(out);
        free(x);
    }
}
END_TEST

/* ---- band, pitch and packing (portable code: every registration) --------- */

/* Bands of 1..6 rows from above the image (y0 < 0) to below it, for random
 * widths, channels and paddings, against the definition. */
START_TEST(band_fill_matches_definition)
{
    test_rng rng;
    test_rng_seed(&rng, 8105);
    const int cases = test_small() ? 30 : 300;
    for (int i = 0; i < cases; i++) {
        cnn_conv_geometry g = random_geometry(&rng);
        if (i % 3 == 0)
            g.in_c = 1; /* the single-plane copy */
        const size_t pitch = cnn__conv_narrow_pitch(&g);
        float *x = harness_random(&rng, (size_t)g.in_h * (size_t)g.in_w * (size_t)g.in_c, -1.0f,
                                  1.0f);
        const int rows = test_rng_int(&rng, 1, 6);
        const int y0 = test_rng_int(&rng, -rows - 1, g.in_h + 1);
        const size_t floats = (size_t)rows * (size_t)g.in_c * pitch;
        float *band = aligned_floats(floats + GUARD);
        fill_canary(band, floats + GUARD);
        cnn__conv_narrow_fill_band(&g, x, y0, rows, pitch, band);
        char what[160];
        describe(what, sizeof what, &g, 0);
        check_band(&g, x, y0, rows, pitch, band, GUARD, what);
        free(band);
        free(x);
    }
}
END_TEST

/* pitch = padded width + slack, rounded up to a multiple of 8. */
START_TEST(pitch_leaves_the_slack)
{
    for (int in_w = 1; in_w <= 80; in_w++)
        for (int pad_w = 0; pad_w <= 3; pad_w++) {
            cnn_conv_geometry g = { .in_h = 3, .in_w = in_w, .in_c = 2, .kernel_h = 1,
                                    .kernel_w = 1, .stride_h = 1, .pad_h = 0, .pad_w = pad_w };
            set_out_size(&g);
            const size_t pitch = cnn__conv_narrow_pitch(&g);
            const size_t need = (size_t)padded_width(&g) + CNN_CONV_NARROW_SLACK;
            ck_assert_msg(pitch % 8 == 0 && pitch >= need && pitch < need + 8,
                          "in_w %d pad %d: pitch %zu for %zu floats", in_w, pad_w, pitch, need);
        }
}
END_TEST

/* Weights as [k][cout], offsets (ky * in_c + ci) * pitch + kx after them,
 * all inside cnn__conv_narrow_packed_floats (a multiple of 16). */
START_TEST(pack_matches_definition)
{
    test_rng rng;
    test_rng_seed(&rng, 8106);
    for (int cout = 1; cout <= CNN_CONV_NARROW_MAX_COUT; cout++)
        for (int i = 0; i < 6; i++) {
            cnn_conv_geometry g = random_geometry(&rng);
            if (i == 0) { /* the largest window */
                g.in_c = 32;
                g.kernel_h = g.kernel_w = 7;
                g.pad_h = g.pad_w = 3;
                g.in_h = g.in_w = 9;
                set_out_size(&g);
            }
            const size_t k = window_size(&g), pitch = cnn__conv_narrow_pitch(&g);
            const size_t floats = cnn__conv_narrow_packed_floats(&g, cout);
            ck_assert_uint_eq(floats % 16, 0);
            float *w = harness_random(&rng, k * (size_t)cout, -1.0f, 1.0f);
            float *packed = aligned_floats(floats + GUARD);
            fill_canary(packed, floats + GUARD);
            cnn_conv_narrow_task t = { NULL, NULL, 0, cout, g.in_c, NULL, pitch };
            cnn__conv_narrow_pack(&g, w, cout, pitch, packed);
            cnn__conv_narrow_view(&g, cout, packed, &t);
            char what[160];
            describe(what, sizeof what, &g, cout);
            ck_assert_ptr_eq(t.weights, packed);
            ck_assert_uint_eq(t.k, k);
            const char *lo = (const char *)(packed + k * (size_t)cout);
            const char *hi = (const char *)(packed + floats);
            ck_assert_msg((const char *)t.offsets >= lo && (const char *)(t.offsets + k) <= hi,
                          "%s: offsets outside the packed area", what);
            for (size_t j = 0; j < k; j++) {
                for (size_t c = 0; c < (size_t)cout; c++)
                    ck_assert_msg(same_bits(t.weights[j * (size_t)cout + c], w[c * k + j]),
                                  "%s: packed weight %zu channel %zu", what, j, c);
                const size_t in_c = (size_t)g.in_c, kw = (size_t)g.kernel_w;
                const size_t ky = j / (kw * in_c), kx = j / in_c % kw, ci = j % in_c;
                ck_assert_msg((size_t)t.offsets[j] == (ky * in_c + ci) * pitch + kx,
                              "%s: offset %zu is %u", what, j, t.offsets[j]);
            }
            for (size_t i2 = floats; i2 < floats + GUARD; i2++)
                ck_assert_msg(test_is_canary(packed[i2]), "%s: wrote past the packed area", what);
            free(packed);
            free(w);
        }
}
END_TEST

/* The getter follows the level: NULL when lowered to portable; the loop on
 * any CPU with AVX2+FMA otherwise (a build that lost it fails here). */
START_TEST(getter_follows_level)
{
    const cnn_conv_narrow_fn fn = cnn__conv_narrow_avx2();
    if (lowered_to_portable()) {
        ck_assert_msg(fn == NULL, "lowered to portable, yet the narrow AVX2 loop is offered");
        ck_assert_int_eq(cnn__cpu_use_avx2(), 0);
    } else if (cnn__cpu_has_avx2_fma()) {
        ck_assert_msg(fn != NULL, "this CPU has AVX2+FMA but cnn__conv_narrow_avx2() is NULL: "
                                  "the narrow loop was not built or the dispatch lost it");
    } else {
        ck_assert_msg(fn == NULL, "no AVX2+FMA on this CPU, yet the narrow loop is offered");
    }
}
END_TEST

/* ---- through the public API ---------------------------------------------- */

typedef struct net_case {
    ref_shape in;
    ref_window win;
    int filters;
} net_case;

/* conv (with bias) + ReLU at 1 and 2 threads, twice each: the double
 * reference, the same bits every time, and, where the loop runs, the loop's
 * bits row by row plus the bias, then ReLU (what conv.c's bands and thread
 * splits must give). */
static void check_net(const net_case *nc, uint64_t seed)
{
    char what[160];
    snprintf(what, sizeof what, "net %dx%dx%dx%d kernel %dx%d stride %d pad %dx%d -> %d",
             nc->in.n, nc->in.h, nc->in.w, nc->in.c, nc->win.kh, nc->win.kw, nc->win.sh,
             nc->win.ph, nc->win.pw, nc->filters);
    test_rng rng;
    test_rng_seed(&rng, seed);
    cnn_net *net = harness_net(nc->in);
    cnn_conv_desc d = harness_conv_desc(nc->win, nc->filters, 1);
    harness_ok(net, cnn_layer_add_conv(net, &d, NULL), what);
    harness_ok(net, cnn_layer_add_activation(net, CNN_ACT_RELU, 0.0f, NULL), what);
    size_t nw = 0, nb = 0;
    harness_ok(net, cnn_layer_param_sizes(net, 0, &nw, &nb), what);
    float *w = harness_random(&rng, nw, -1.0f, 1.0f);
    float *bias = harness_random(&rng, nb, -1.0f, 1.0f);
    harness_ok(net, cnn_layer_set_weights(net, 0, w, nw, CNN_LAYOUT_NATIVE), what);
    harness_ok(net, cnn_layer_set_bias(net, 0, bias, nb), what);

    const ref_shape os = ref_window_shape(nc->in, nc->win, nc->filters);
    harness_expect_shape(net, 1, os.h, os.w, os.c, what);
    const size_t in_n = ref_elems(nc->in), out_n = ref_elems(os);
    float *x = harness_random(&rng, in_n, -1.0f, 1.0f);
    double *xd = harness_widen(x, in_n);
    double *ref = test_xmalloc(out_n * sizeof(double));
    ref_conv(xd, nc->in, w, bias, nc->filters, nc->win, ref);
    ref_relu(ref, out_n, ref);

    float *first = NULL;
    for (int threads = 1; threads <= 2; threads++) {
        harness_ok(net, cnn_net_set_threads(net, threads), what);
        for (int run = 0; run < 2; run++) {
            float *y = harness_forward(net, x, nc->in.n, out_n);
            harness_expect_close(y, ref, out_n, NET_TOL, what);
            if (!first) {
                first = y;
                continue;
            }
            ck_assert_msg(memcmp(y, first, out_n * sizeof(float)) == 0,
                          "%s: %d threads run %d differs from 1 thread run 0", what, threads,
                          run);
            free(y);
        }
    }

    if (cnn__conv_narrow_avx2()) {
        const cnn_conv_geometry g = { nc->in.h, nc->in.w, nc->in.c, os.h, os.w, nc->win.kh,
                                      nc->win.kw, nc->win.sh, 1, nc->win.ph, nc->win.pw };
        const size_t image_in = in_n / (size_t)nc->in.n, image_out = out_n / (size_t)nc->in.n;
        float *loop = test_xmalloc(image_out * sizeof(float));
        for (int b = 0; b < nc->in.n; b++) {
            narrow_setup s;
            setup_rows(&s, &g, nc->filters, x + (size_t)b * image_in, w, 0, g.out_h - 1, what);
            run_layer(&s, 0, loop);
            for (size_t i = 0; i < image_out; i++) {
                const float v = loop[i] + bias[i % (size_t)nc->filters];
                const float want = v > 0.0f ? v : 0.0f;
                const float got = first[(size_t)b * image_out + i];
                ck_assert_msg(got == want, "%s: image %d output %zu is %a, the loop gives %a",
                              what, b, i, (double)got, (double)want);
            }
            free_setup(&s);
        }
        free(loop);
    }
    free(first);
    free(ref);
    free(xd);
    free(x);
    free(bias);
    free(w);
    cnn_net_destroy(net);
}

/* LeNet's first layer: 28x28x1 -> 28x28x6, 5x5 pad 2, batch 3. */
START_TEST(net_lenet_c1)
{
    const net_case nc = { { 3, 28, 28, 1 }, { 5, 5, 1, 1, 2, 2 }, 6 };
    check_net(&nc, 8107);
}
END_TEST

/* Several bands per image (conv.c holds 64K floats of planar rows: 33 rows
 * of 9 x 216 here, 16 output rows), stride 2 vertically, 5 channels. */
START_TEST(net_several_bands)
{
    const net_case nc = { { 3, test_small() ? 40 : 60, 200, 9 }, { 3, 3, 2, 1, 1, 1 }, 5 };
    check_net(&nc, 8108);
}
END_TEST

/* One channel, rows of 60: a tail of 8 vectors in the 64-pixel blocks of
 * the one-channel loop (once left unwritten). */
START_TEST(net_one_channel_long_rows)
{
    const net_case nc = { { 2, 10, 60, 3 }, { 3, 3, 1, 1, 1, 1 }, 1 };
    check_net(&nc, 8109);
}
END_TEST

int main(void)
{
    const int loop_runs = cnn__conv_narrow_avx2() != NULL;
    Suite *s = suite_create("conv_narrow");
    TCase *common = tcase_create("common");
    tcase_add_test(common, getter_follows_level);
    tcase_add_test(common, band_fill_matches_definition);
    tcase_add_test(common, pitch_leaves_the_slack);
    tcase_add_test(common, pack_matches_definition);
    tcase_add_test(common, net_lenet_c1);
    tcase_add_test(common, net_several_bands);
    tcase_add_test(common, net_one_channel_long_rows);
    suite_add_tcase(s, common);
    if (loop_runs) {
        TCase *loop = tcase_create("avx2_loop");
        tcase_add_test(loop, loop_matches_reference_and_channel_lanes);
        tcase_add_test(loop, loop_every_run_length);
        tcase_add_test(loop, loop_input_nan_reaches_its_windows);
        tcase_add_test(loop, loop_weight_nan_poisons_its_channel);
        suite_add_tcase(s, loop);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed)
        return 1;
    if (!loop_runs && !lowered_to_portable()) {
        /* getter_follows_level passed, so the CPU really lacks AVX2+FMA. */
        printf("no AVX2+FMA on this CPU: the narrow loop's cases did not run (skipped)\n");
        return 77;
    }
    return 0;
}
