#include "conv_direct.h"

#include "cpu.h"

void cnn__conv_direct_pack(const float *ohwi, size_t k, int cout, float *packed)
{
    const size_t pad = cnn__conv_direct_cout_pad(cout);
    for (size_t i = 0; i < k; i++) {
        float *row = packed + i * pad;
        for (size_t o = 0; o < (size_t)cout; o++)
            row[o] = ohwi[o * k + i];
        for (size_t o = (size_t)cout; o < pad; o++)
            row[o] = 0.0f;
    }
}

/* Pixels and output channels of one block; the channel loop is a fixed-length
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

void cnn__conv_direct_portable(const cnn_conv_direct_task *t, int oy, int ox, size_t n,
                               float *out)
{
    const size_t pad = cnn__conv_direct_cout_pad(t->cout), cout = (size_t)t->cout;
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
        for (size_t c0 = 0; c0 < cout; c0 += LANES) {
            float acc[PIXELS][LANES] = { { 0.0f } };
            const float *w = t->packed + c0;
            for (int ky = 0; ky < t->kernel_h; ky++) {
                const size_t row = (size_t)ky * t->row_stride;
                for (int j = 0; j < t->row_len; j++, w += pad)
                    for (size_t p = 0; p < PIXELS; p++) {
                        const float x = px[p][row + (size_t)j];
                        CHANNEL_LOOP
                        for (size_t l = 0; l < LANES; l++)
                            acc[p][l] += x * w[l];
                    }
            }
            size_t lanes = cout - c0 < LANES ? cout - c0 : LANES;
            for (size_t p = 0; p < valid; p++)
                for (size_t l = 0; l < lanes; l++)
                    out[(done + p) * cout + c0 + l] = acc[p][l];
        }
    }
}

cnn_conv_direct_fn cnn__conv_direct_avx2(void)
{
#ifdef CNN_HAVE_AVX2_KERNELS
    if (cnn__cpu_has_avx2_fma())
        return cnn__conv_direct_avx2_loop;
#endif
    return NULL;
}

void cnn__conv_direct(const cnn_conv_direct_task *t, int oy, int ox, size_t n, float *out)
{
#ifdef CNN_HAVE_AVX2_KERNELS
    if (cnn__cpu_use_avx2()) {
        cnn__conv_direct_avx2_loop(t, oy, ox, n, out);
        return;
    }
#endif
    cnn__conv_direct_portable(t, oy, ox, n, out);
}
