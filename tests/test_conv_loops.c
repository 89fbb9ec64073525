/* The direct convolution's loops (src/kernels/conv_direct*.c) called directly,
 * below conv.c's choice of path: every loop this build and CPU can run
 * (portable, AVX2, AVX-512 — each with its own packed layout) against a
 * double-precision reference, on runs of pixels that start and stop anywhere,
 * wrap rows, and cover any range of channel panels, packed from that range's
 * first panel or from panel 0; channels of other panels and floats past the
 * run must stay untouched. The packing against its
 * definition for each layout (vector transposes and their edges).
 *
 * Registered as is, with CNN_MAX_SIMD=avx2 and with CNN_FORCE_PORTABLE=1: the
 * loops are called by pointer either way, but the packing's vector transposes
 * follow the dispatch level. */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv_direct.h"
#include "kernels/cpu.h"
#include "support.h"

#define TOL 1e-5           /* a pixel's channels against the double reference */
#define GUARD 64           /* canary floats after a run's output */

typedef struct loop {
    const char *name;
    cnn_conv_direct_fn fn;
    cnn_conv_direct_layout (*layout)(int cout);
} loop;

/* The loops this process can run; the portable one always. */
static int available_loops(loop *loops)
{
    int n = 0;
    loops[n++] = (loop){ "portable", cnn__conv_direct_portable, cnn__conv_direct_portable_layout };
    if (cnn__conv_direct_avx2())
        loops[n++] = (loop){ "avx2", cnn__conv_direct_avx2(), cnn__conv_direct_avx2_layout };
    if (cnn__conv_direct_avx512())
        loops[n++] = (loop){ "avx512", cnn__conv_direct_avx512(), cnn__conv_direct_avx512_layout };
    return n;
}


static float *aligned_floats(size_t n)
{
    void *p = NULL;
    ck_assert_int_eq(posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)), 0);
    return p;
}

/* An unpadded layer and one run of its output pixels. */
typedef struct loop_case {
    int in_h, in_w, in_c, cout, kh, kw, sh, sw;
    int out_h, out_w;
    size_t start, n; /* first output pixel (row-major) and count */
} loop_case;

static loop_case random_case(test_rng *rng, int in_c, int cout)
{
    loop_case c;
    c.in_c = in_c;
    c.cout = cout;
    c.kh = test_rng_int(rng, 1, 3);
    c.kw = test_rng_int(rng, 1, 3);
    c.sh = test_rng_int(rng, 1, 2);
    c.sw = test_rng_int(rng, 1, 2);
    c.in_h = c.kh + test_rng_int(rng, 0, test_small() ? 3 : 6);
    c.in_w = c.kw + test_rng_int(rng, 0, test_small() ? 5 : 11);
    c.out_h = (c.in_h - c.kh) / c.sh + 1;
    c.out_w = (c.in_w - c.kw) / c.sw + 1;
    size_t pixels = (size_t)c.out_h * (size_t)c.out_w;
    c.start = (size_t)test_rng_int(rng, 0, (int)pixels - 1);
    c.n = (size_t)test_rng_int(rng, 1, (int)(pixels - c.start));
    return c;
}

/* Output pixel p's channel o in double: the window sum in OHWI order. */
static double reference(const loop_case *c, const float *x, const float *w, size_t p, int o)
{
    int oy = (int)(p / (size_t)c->out_w), ox = (int)(p % (size_t)c->out_w);
    double sum = 0.0;
    for (int ky = 0; ky < c->kh; ky++)
        for (int kx = 0; kx < c->kw; kx++)
            for (int i = 0; i < c->in_c; i++) {
                size_t at = (((size_t)(oy * c->sh + ky) * (size_t)c->in_w) +
                             (size_t)(ox * c->sw + kx)) * (size_t)c->in_c + (size_t)i;
                size_t wi = (((size_t)o * (size_t)c->kh + (size_t)ky) * (size_t)c->kw +
                             (size_t)kx) * (size_t)c->in_c + (size_t)i;
                sum += (double)x[at] * (double)w[wi];
            }
    return sum;
}

/* Runs panels [first, end) of the case through one loop and checks every
 * float of the output run and its guard. */
static void check_loop(const loop *l, const loop_case *c, const float *x, const float *w,
                       int first, int end, const char *what)
{
    const cnn_conv_direct_layout layout = l->layout(c->cout);
    const size_t k = (size_t)c->kh * (size_t)c->kw * (size_t)c->in_c;
    const size_t cout = (size_t)c->cout;
    float *packed = aligned_floats(k * cnn__conv_direct_cout_pad(c->cout));
    /* Packed from panel `from` on: the run's first panel, or panel 0. */
    const int from = first % 2 ? 0 : first;
    const int to = from ? end : cnn__conv_direct_panels(layout, c->cout);
    cnn__conv_direct_pack(w, k, c->cout, layout, from, to, packed);
    cnn_conv_direct_task t = { packed, from, layout, c->cout, c->kh, c->kw * c->in_c, x,
                               (size_t)c->in_w * (size_t)c->in_c, 0,
                               (size_t)c->sw * (size_t)c->in_c, c->out_w };
    t.y_step = (size_t)c->sh * t.row_stride;
    const size_t floats = c->n * cout + GUARD;
    float *out = aligned_floats(floats);
    for (size_t i = 0; i < floats; i++)
        out[i] = test_canary();
    l->fn(&t, (int)(c->start / (size_t)c->out_w), (int)(c->start % (size_t)c->out_w), c->n,
          first, end, out);
    const int c0 = first * layout.panel;
    const int c1 = end * layout.panel < c->cout ? end * layout.panel : c->cout;
    for (size_t p = 0; p < c->n; p++) {
        double err = 0.0, scale = 0.0;
        for (int o = 0; o < c->cout; o++) {
            float y = out[p * cout + (size_t)o];
            if (o < c0 || o >= c1) {
                ck_assert_msg(test_is_canary(y), "%s: pixel %zu channel %d outside panels %d..%d "
                              "was written", what, p, o, first, end);
                continue;
            }
            double ref = reference(c, x, w, c->start + p, o);
            err = fmax(err, fabs((double)y - ref));
            scale = fmax(scale, fabs(ref));
            ck_assert_msg(!isnan(y), "%s: pixel %zu channel %d not written", what, p, o);
        }
        ck_assert_msg(err <= TOL * (scale > 0.0 ? scale : 1.0),
                      "%s: pixel %zu off by %g (scale %g)", what, p, err, scale);
    }
    for (size_t i = c->n * cout; i < floats; i++)
        ck_assert_msg(test_is_canary(out[i]), "%s: wrote %zu floats past the run", what,
                      i - c->n * cout + 1);
    free(out);
    free(packed);
}

static void describe(char *buf, size_t size, const char *name, const loop_case *c, int first,
                     int end)
{
    snprintf(buf, size,
             "%s: in %dx%dx%d kernel %dx%d stride %dx%d cout %d pixels %zu+%zu panels %d..%d",
             name, c->in_h, c->in_w, c->in_c, c->kh, c->kw, c->sh, c->sw, c->cout, c->start,
             c->n, first, end);
}

/* Couts around every panel and vector edge of the three layouts (8, 16, 24,
 * 32, 64 channels) with narrow and wide inputs; each loop runs all panels and
 * a random sub-range. */
START_TEST(loops_match_reference)
{
    static const int couts[] = { 1, 5, 8, 9, 16, 17, 23, 24, 25, 31, 32, 33, 47, 48, 49,
                                 63, 64, 65, 72, 80, 96, 100, 128, 129, 150, 192 };
    static const int in_cs[] = { 1, 3, 8, 17, 64, 70 };
    const size_t n_couts = sizeof couts / sizeof couts[0], n_ins = sizeof in_cs / sizeof in_cs[0];
    loop loops[3];
    const int n_loops = available_loops(loops);
    test_rng rng;
    test_rng_seed(&rng, 801);
    int runs = 0;
    for (size_t ci = 0; ci < n_couts; ci++)
        for (size_t ii = 0; ii < n_ins; ii++) {
            if (test_small() && (ci + ii) % 4 != 0)
                continue;
            loop_case c = random_case(&rng, in_cs[ii], couts[ci]);
            size_t in_n = (size_t)c.in_h * (size_t)c.in_w * (size_t)c.in_c;
            size_t w_n = (size_t)c.kh * (size_t)c.kw * (size_t)c.in_c * (size_t)c.cout;
            float *x = test_xmalloc(in_n * sizeof(float));
            float *w = test_xmalloc(w_n * sizeof(float));
            test_fill_uniform(&rng, x, in_n, -1.0f, 1.0f);
            test_fill_uniform(&rng, w, w_n, -1.0f, 1.0f);
            for (int li = 0; li < n_loops; li++) {
                const int panels = cnn__conv_direct_panels(loops[li].layout(c.cout), c.cout);
                int first = test_rng_int(&rng, 0, panels - 1);
                int end = test_rng_int(&rng, first + 1, panels);
                char what[256];
                describe(what, sizeof what, loops[li].name, &c, 0, panels);
                check_loop(&loops[li], &c, x, w, 0, panels, what);
                describe(what, sizeof what, loops[li].name, &c, first, end);
                check_loop(&loops[li], &c, x, w, first, end, what);
                runs += 2;
            }
            free(w);
            free(x);
        }
    ck_assert_int_gt(runs, 0);
}
END_TEST

/* A NaN input reaches exactly the outputs whose window covers it, in every
 * channel of every panel; the rest stay finite. */
START_TEST(loops_propagate_nan)
{
    loop loops[3];
    const int n_loops = available_loops(loops);
    for (int li = 0; li < n_loops; li++) {
        loop_case c = { 7, 9, 20, 0, 3, 3, 1, 2, 5, 4, 0, 20 };
        c.cout = loops[li].layout(1000).panel + 5; /* two panels, the second partial */
        size_t in_n = (size_t)c.in_h * (size_t)c.in_w * (size_t)c.in_c;
        size_t w_n = (size_t)c.kh * (size_t)c.kw * (size_t)c.in_c * (size_t)c.cout;
        float *x = test_xmalloc(in_n * sizeof(float)), *w = test_xmalloc(w_n * sizeof(float));
        test_rng rng;
        test_rng_seed(&rng, 802);
        test_fill_uniform(&rng, x, in_n, -1.0f, 1.0f);
        test_fill_uniform(&rng, w, w_n, -1.0f, 1.0f);
        const int ny = 3, nx = 4;
        x[((size_t)ny * (size_t)c.in_w + (size_t)nx) * (size_t)c.in_c + 11] = NAN;
        const cnn_conv_direct_layout layout = loops[li].layout(c.cout);
        const size_t k = (size_t)c.kh * (size_t)c.kw * (size_t)c.in_c;
        float *packed = aligned_floats(k * cnn__conv_direct_cout_pad(c.cout));
        const int panels = cnn__conv_direct_panels(layout, c.cout);
        cnn__conv_direct_pack(w, k, c.cout, layout, 0, panels, packed);
        cnn_conv_direct_task t = { packed, 0, layout, c.cout, c.kh, c.kw * c.in_c, x,
                                   (size_t)c.in_w * (size_t)c.in_c, 0,
                                   (size_t)c.sw * (size_t)c.in_c, c.out_w };
        t.y_step = (size_t)c.sh * t.row_stride;
        float *out = aligned_floats(c.n * (size_t)c.cout);
        loops[li].fn(&t, 0, 0, c.n, 0, panels, out);
        int nans = 0;
        for (size_t p = 0; p < c.n; p++) {
            int oy = (int)(p / (size_t)c.out_w), ox = (int)(p % (size_t)c.out_w);
            int dy = ny - oy * c.sh, dx = nx - ox * c.sw;
            int covers = dy >= 0 && dy < c.kh && dx >= 0 && dx < c.kw;
            for (int o = 0; o < c.cout; o++) {
                float y = out[p * (size_t)c.cout + (size_t)o];
                ck_assert_msg(covers ? isnan(y) : isfinite(y), "%s: output (%d,%d,%d) is %g",
                              loops[li].name, oy, ox, o, (double)y);
                nans += covers;
            }
        }
        ck_assert_int_gt(nans, 0);
        free(out);
        free(packed);
        free(w);
        free(x);
    }
}
END_TEST

/* Panels [first, end) packed from the buffer's start: panel i, row j, lane o
 * is weight (i * panel + o, j), zero past cout; nothing written after them. Window sizes with and without
 * a tail of 8, couts with partial 8-channel blocks, for every layout. */
START_TEST(pack_matches_definition)
{
    static const int couts[] = { 1, 7, 8, 13, 24, 40, 64, 70, 136 };
    static const size_t ks[] = { 1, 7, 8, 9, 64, 65, 200 };
    cnn_conv_direct_layout (*const layouts[])(int) = { cnn__conv_direct_portable_layout,
                                                        cnn__conv_direct_avx2_layout,
                                                        cnn__conv_direct_avx512_layout };
    test_rng rng;
    test_rng_seed(&rng, 803);
    for (size_t li = 0; li < 3; li++)
        for (size_t ci = 0; ci < sizeof couts / sizeof couts[0]; ci++)
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
                const int cout = couts[ci];
                const size_t k = ks[ki];
                const cnn_conv_direct_layout l = layouts[li](cout);
                ck_assert_int_eq(l.panel % l.lanes, 0);
                ck_assert_int_eq(CNN_CONV_DIRECT_PAD % l.lanes, 0);
                const int panels = cnn__conv_direct_panels(l, cout);
                const size_t total = k * cnn__conv_direct_cout_pad(cout);
                float *w = test_xmalloc(k * (size_t)cout * sizeof(float));
                float *packed = aligned_floats(total);
                test_fill_uniform(&rng, w, k * (size_t)cout, -1.0f, 1.0f);
                for (size_t i = 0; i < total; i++)
                    packed[i] = test_canary();
                int first = test_rng_int(&rng, 0, panels - 1);
                int end = test_rng_int(&rng, first + 1, panels);
                cnn__conv_direct_pack(w, k, cout, l, first, end, packed);
                size_t used = 0; /* floats of panels first .. i - 1 */
                for (int i = first; i < end; i++) {
                    int left = cout - i * l.panel, chans = left < l.panel ? left : l.panel;
                    size_t width = (size_t)((chans + l.lanes - 1) / l.lanes * l.lanes);
                    for (size_t j = 0; j < k; j++)
                        for (size_t o = 0; o < width; o++) {
                            float got = packed[used + j * width + o];
                            size_t ch = (size_t)(i * l.panel) + o;
                            ck_assert_msg(got == ((int)o < chans ? w[ch * k + j] : 0.0f),
                                          "layout %zu cout %d k %zu: panel %d row %zu lane "
                                          "%zu is %g", li, cout, k, i, j, o, (double)got);
                        }
                    used += k * width;
                }
                for (size_t i = used; i < total; i++)
                    ck_assert_msg(test_is_canary(packed[i]), "layout %zu cout %d k %zu panels "
                                  "%d..%d: wrote float %zu, past their %zu", li, cout, k, first,
                                  end, i, used);
                ck_assert_uint_le(used, total);
                free(packed);
                free(w);
            }
}
END_TEST

/* The dispatched loop's layout follows the level cpu.h names, which
 * CNN_MAX_SIMD / CNN_FORCE_PORTABLE lower: AVX-512 only for layers of at
 * least 64 channels in whole 16-lane vectors, else AVX2, else portable. */
START_TEST(dispatch_follows_level)
{
    const char *max = getenv("CNN_MAX_SIMD");
    const char *forced = getenv("CNN_FORCE_PORTABLE");
    int portable = (forced && forced[0] && strcmp(forced, "0") != 0) ||
                   (max && strcmp(max, "portable") == 0);
    int avx2_cap = max && strcmp(max, "avx2") == 0;
    ck_assert_int_eq(cnn__cpu_use_avx2(), cnn__cpu_has_avx2_fma() && !portable);
    ck_assert_int_eq(cnn__cpu_use_avx512(),
                     cnn__cpu_use_avx2() && cnn__cpu_has_avx512f() && !avx2_cap);
    static const int couts[] = { 1, 8, 24, 48, 63, 64, 72, 100, 128, 256 };
    for (size_t i = 0; i < sizeof couts / sizeof couts[0]; i++) {
        const int cout = couts[i];
        int wide = cout >= 64 && cout % 16 == 0;
        cnn_conv_direct_layout want = cnn__conv_direct_portable_layout(cout);
        if (wide && cnn__cpu_use_avx512() && cnn__conv_direct_avx512())
            want = cnn__conv_direct_avx512_layout(cout);
        else if (cnn__cpu_use_avx2() && cnn__conv_direct_avx2())
            want = cnn__conv_direct_avx2_layout(cout);
        cnn_conv_direct_layout got = cnn__conv_direct_layout(cout);
        ck_assert_msg(got.panel == want.panel && got.lanes == want.lanes,
                      "cout %d: layout %d/%d, want %d/%d", cout, got.panel, got.lanes, want.panel,
                      want.lanes);
    }
    printf("conv loops: avx2 %s, avx512 %s; 128 channels dispatched to lanes of %d\n",
           cnn__conv_direct_avx2() ? "runs" : "absent", cnn__conv_direct_avx512() ? "runs" : "absent",
           cnn__conv_direct_layout(128).lanes);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conv_loops");
    TCase *tc = tcase_create("loops");
    tcase_add_test(tc, loops_match_reference);
    tcase_add_test(tc, loops_propagate_nan);
    tcase_add_test(tc, pack_matches_definition);
    tcase_add_test(tc, dispatch_follows_level);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
