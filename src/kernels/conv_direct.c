#include "conv_direct.h"

#include "cpu.h"

/* Row width of panel i: its channels rounded up to the layout's lanes. */
static size_t panel_width(cnn_conv_direct_layout l, int cout, int i)
{
    int left = cout - i * l.panel;
    int width = left < l.panel ? left : l.panel;
    return (size_t)((width + l.lanes - 1) / l.lanes * l.lanes);
}

void cnn__conv_direct_pack(const float *ohwi, size_t k, int cout, cnn_conv_direct_layout l,
                           int first, int end, float *packed)
{
    for (int i = first; i < end; i++) {
        const size_t width = panel_width(l, cout, i), c0 = (size_t)i * (size_t)l.panel;
        const size_t used = (size_t)cout - c0 < width ? (size_t)cout - c0 : width;
        float *panel = packed + (c0 - (size_t)first * (size_t)l.panel) * k;
        /* The vector transposes take the whole 8-channel blocks of the first
         * k / 8 * 8 elements; this loop the rest (tails, padding lanes). */
        size_t done_k = 0, done_o = 0;
#ifdef CNN_HAVE_AVX2_KERNELS
        if (cnn__cpu_use_avx2()) {
            done_k = cnn__conv_direct_pack_avx2(ohwi + c0 * k, k, used, width, panel);
            done_o = used / 8 * 8;
        }
#endif
        /* Blocks of 8 channels x 64 k: reads stay within 8 kernel rows and
         * writes within 64 packed rows, both cached, instead of one strided
         * pass over all of k per channel. */
        for (size_t k0 = 0; k0 < k; k0 += 64) {
            size_t k1 = k - k0 < 64 ? k : k0 + 64;
            for (size_t o0 = 0; o0 < width; o0 += 8) {
                if (o0 < done_o && k1 <= done_k)
                    continue;
                for (size_t j = k0; j < k1; j++) {
                    if (o0 < done_o && j < done_k)
                        continue;
                    float *row = panel + j * width;
                    for (size_t o = o0; o < o0 + 8; o++)
                        row[o] = o < used ? ohwi[(c0 + o) * k + j] : 0.0f;
                }
            }
        }
    }
}

/* ---- portable loop ---------------------------------------------------------
 * Panels of 8 channels, blocks of 6 pixels; the channel loop is a fixed-length
 * loop over a packed row, which compilers vectorise with whatever the target
 * has (two SSE vectors on baseline x86-64). */
#define PIXELS 6
#define LANES 8

/* GCC would otherwise unroll the channel loop early and vectorise the window
 * loop instead, gathering inputs with shuffles (measured ~8x slower). */
#if defined(__GNUC__) && !defined(__clang__)
#define CHANNEL_LOOP _Pragma("GCC unroll 1")
#else
#define CHANNEL_LOOP
#endif

cnn_conv_direct_layout cnn__conv_direct_portable_layout(int cout)
{
    (void)cout;
    return (cnn_conv_direct_layout){ LANES, LANES };
}

void cnn__conv_direct_portable(const cnn_conv_direct_task *t, int oy, int ox, size_t n,
                               int first, int end, float *out)
{
    const size_t cout = (size_t)t->cout;
    const size_t k = (size_t)t->kernel_h * (size_t)t->row_len;
    for (int panel = first; panel < end; panel++) {
        const size_t c0 = (size_t)panel * LANES;
        const size_t lanes = cout - c0 < LANES ? cout - c0 : LANES;
        int cy = oy, cx = ox;
        for (size_t done = 0; done < n; done += PIXELS) {
            size_t valid = n - done < PIXELS ? n - done : PIXELS;
            /* Window corners of the block; slots past the end repeat the last pixel. */
            const float *px[PIXELS];
            for (size_t p = 0; p < PIXELS; p++) {
                if (p < valid) {
                    px[p] = t->src + (size_t)cy * t->y_step + (size_t)cx * t->x_step;
                    if (++cx == t->out_w) {
                        cx = 0;
                        cy++;
                    }
                } else {
                    px[p] = px[p - 1];
                }
            }
            float acc[PIXELS][LANES] = { { 0.0f } };
            const float *w = t->packed + (c0 - (size_t)t->packed_from * LANES) * k;
            for (int ky = 0; ky < t->kernel_h; ky++) {
                const size_t row = (size_t)ky * t->row_stride;
                for (int j = 0; j < t->row_len; j++, w += LANES)
                    for (size_t p = 0; p < PIXELS; p++) {
                        const float x = px[p][row + (size_t)j];
                        CHANNEL_LOOP
                        for (size_t l = 0; l < LANES; l++)
                            acc[p][l] += x * w[l];
                    }
            }
            for (size_t p = 0; p < valid; p++)
                for (size_t l = 0; l < lanes; l++)
                    out[(done + p) * cout + c0 + l] = acc[p][l];
        }
    }
}

/* ---- vector loops and dispatch ---------------------------------------------- */

/* AVX2: one panel of up to 32 channels (1..4 vectors), or panels of 24, whose
 * 4-pixel blocks keep their three weight vectors in registers (see
 * conv_direct_avx2.c). */
cnn_conv_direct_layout cnn__conv_direct_avx2_layout(int cout)
{
    return (cnn_conv_direct_layout){ cout <= 32 ? (cout + 7) / 8 * 8 : 24, 8 };
}

/* AVX-512: one panel of up to 64 channels (1..4 vectors of 16), or panels of
 * 64 (see conv_direct_avx512.c). */
cnn_conv_direct_layout cnn__conv_direct_avx512_layout(int cout)
{
    return (cnn_conv_direct_layout){ cout <= 64 ? (cout + 15) / 16 * 16 : 64, 16 };
}

cnn_conv_direct_fn cnn__conv_direct_avx2(void)
{
#ifdef CNN_HAVE_AVX2_KERNELS
    if (cnn__cpu_has_avx2_fma())
        return cnn__conv_direct_avx2_loop;
#endif
    return NULL;
}

cnn_conv_direct_fn cnn__conv_direct_avx512(void)
{
#ifdef CNN_HAVE_AVX512_KERNELS
    if (cnn__cpu_has_avx2_fma() && cnn__cpu_has_avx512f())
        return cnn__conv_direct_avx512_loop;
#endif
    return NULL;
}

/* The AVX-512 loop only for layers whose channels fill its 16 lanes in 64-wide
 * panels: there it beat the AVX2 loop by 1-4% at 1 thread on Zen 4 (GFLOP/s,
 * AVX2 -> AVX-512: 56x56x64 -> 64 3x3 111 -> 114, 28x28x128 -> 128 110 -> 113,
 * 28x28x512 -> 128 1x1 109 -> 114), while narrower layers waste lanes and
 * lose (32x32x24 -> 24 3x3 113 -> 80, 56x56x64 -> 8 3x3 77 -> 51, 56x56x32 ->
 * 32 1x1 103 -> 92; 32x32x32 -> 48 3x3 113 either way). */
static int wide_enough_for_avx512(int cout) { return cout >= 64 && cout % 16 == 0; }

typedef enum { LOOP_PORTABLE, LOOP_AVX2, LOOP_AVX512 } loop_kind;

static loop_kind dispatched(int cout)
{
    int avx512 = 0, avx2 = 0;
#ifdef CNN_HAVE_AVX512_KERNELS
    avx512 = cnn__cpu_use_avx512();
#endif
#ifdef CNN_HAVE_AVX2_KERNELS
    avx2 = cnn__cpu_use_avx2();
#endif
    if (avx512 && wide_enough_for_avx512(cout))
        return LOOP_AVX512;
    return avx2 ? LOOP_AVX2 : LOOP_PORTABLE;
}

cnn_conv_direct_layout cnn__conv_direct_layout(int cout)
{
    switch (dispatched(cout)) {
    case LOOP_AVX512:
        return cnn__conv_direct_avx512_layout(cout);
    case LOOP_AVX2:
        return cnn__conv_direct_avx2_layout(cout);
    default:
        return cnn__conv_direct_portable_layout(cout);
    }
}

void cnn__conv_direct(const cnn_conv_direct_task *t, int oy, int ox, size_t n, int first,
                      int end, float *out)
{
    switch (dispatched(t->cout)) {
#ifdef CNN_HAVE_AVX512_KERNELS
    case LOOP_AVX512:
        cnn__conv_direct_avx512_loop(t, oy, ox, n, first, end, out);
        return;
#endif
#ifdef CNN_HAVE_AVX2_KERNELS
    case LOOP_AVX2:
        cnn__conv_direct_avx2_loop(t, oy, ox, n, first, end, out);
        return;
#endif
    default:
        cnn__conv_direct_portable(t, oy, ox, n, first, end, out);
    }
}
