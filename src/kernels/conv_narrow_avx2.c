/* AVX2+FMA loop of conv_narrow.h. Built with -mavx2 -mfma (this file only)
 * and called only after the getter in conv_narrow.c said the CPU can.
 *
 * A block is `vecs` vectors of 8 neighbouring output pixels x `cout`
 * channels, one accumulator each. Per window element it loads `vecs` input
 * vectors and broadcasts `cout` weights: cout * vecs independent FMA chains,
 * enough to cover the FMA latency while accumulators, inputs and a weight fit
 * the 16 YMM registers. Stored by an 8x8 transpose, one pixel per vector. */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "conv_narrow_avx2.c must be compiled with -mavx2 -mfma"
#endif

#include <immintrin.h>

#include "conv_narrow.h"

#define LANES 8
#define MAX_VECS 8

/* mask_source + 8 - lanes: the first `lanes` of 8 lanes set. */
static const int mask_source[2 * LANES] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };

/* Rows of the 8x8 matrix r become its columns. */
static inline void transpose_8x8(__m256 r[LANES])
{
    __m256 t[LANES], u[LANES];
    for (int i = 0; i < LANES; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < LANES; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int q = 0; q < 4; q++) {
        r[q] = _mm256_permute2f128_ps(u[q], u[q + 4], 0x20);
        r[q + 4] = _mm256_permute2f128_ps(u[q], u[q + 4], 0x31);
    }
}

/* Pixels [0, valid) of channels [0, cout) from acc (one vector of 8 pixels
 * per channel) to out (NHWC, cout per pixel), writing nothing at or past
 * out[limit]. A whole-vector store spills into the next pixels' channels,
 * which the next stores overwrite; where it would pass `limit` it is masked. */
static inline __attribute__((always_inline)) void store_pixels(const __m256 *acc, int cout,
                                                               int valid, float *out,
                                                               size_t limit)
{
    if (cout == 1) { /* the 8 pixels are already contiguous */
        const __m256i first = _mm256_loadu_si256((const __m256i *)(mask_source + LANES - valid));
        if ((size_t)valid == LANES && limit >= LANES)
            _mm256_storeu_ps(out, acc[0]);
        else
            _mm256_maskstore_ps(out, first, acc[0]);
        return;
    }
    const __m256i mask = _mm256_loadu_si256((const __m256i *)(mask_source + LANES - cout));
    __m256 r[LANES];
    for (int c = 0; c < LANES; c++)
        r[c] = c < cout ? acc[c] : _mm256_setzero_ps();
    transpose_8x8(r);
    for (int p = 0; p < valid; p++) {
        const size_t at = (size_t)p * (size_t)cout;
        if (at + LANES <= limit)
            _mm256_storeu_ps(out + at, r[p]);
        else
            _mm256_maskstore_ps(out + at, mask, r[p]);
    }
}

/* One block: `valid` (<= 8 * vecs) pixels from column ox. `cout` and `vecs`
 * are constants at every call, so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void
block(const cnn_conv_narrow_task *t, int row, int ox, int valid, float *out, size_t limit,
      int cout, int vecs)
{
    const float *src = t->band + (size_t)row * (size_t)t->in_c * t->pitch + (size_t)ox;
    __m256 acc[MAX_VECS][CNN_CONV_NARROW_MAX_COUT];
#pragma GCC unroll 8
    for (int v = 0; v < vecs; v++)
#pragma GCC unroll 7
        for (int c = 0; c < cout; c++)
            acc[v][c] = _mm256_setzero_ps();
    const float *w = t->weights;
    for (size_t j = 0; j < t->k; j++, w += cout) {
        const float *x = src + t->offsets[j];
        __m256 xv[MAX_VECS];
#pragma GCC unroll 8
        for (int v = 0; v < vecs; v++)
            xv[v] = _mm256_loadu_ps(x + v * LANES);
#pragma GCC unroll 7
        for (int c = 0; c < cout; c++) {
            const __m256 wc = _mm256_broadcast_ss(w + c);
#pragma GCC unroll 8
            for (int v = 0; v < vecs; v++)
                acc[v][c] = _mm256_fmadd_ps(xv[v], wc, acc[v][c]);
        }
    }
#pragma GCC unroll 8
    for (int v = 0; v < vecs; v++) {
        const int left = valid - v * LANES;
        if (left <= 0)
            break;
        const size_t first = (size_t)v * LANES * (size_t)cout;
        store_pixels(acc[v], cout, left < LANES ? left : LANES, out + first, limit - first);
    }
}

/* Blocks of `vecs` vectors along the row, then one block of as many vectors
 * as the rest needs, so at most 7 computed pixels are thrown away per row. */
#define TAIL(cout, vecs, v)                                                                   \
    case v:                                                                                   \
        if ((vecs) >= (v))                                                                    \
            block(t, row, ox + i, rest, tail, limit - (size_t)i * (cout), cout,               \
                  (vecs) >= (v) ? (v) : 1);                                                   \
        break;
#define ROW(cout, vecs)                                                                       \
    static void row_##cout(const cnn_conv_narrow_task *t, int row, int ox, int n, float *out)  \
    {                                                                                         \
        const size_t limit = (size_t)n * (cout);                                              \
        int i = 0;                                                                            \
        for (; i + (vecs) * LANES <= n; i += (vecs) * LANES)                                   \
            block(t, row, ox + i, (vecs) * LANES, out + (size_t)i * (cout),                   \
                  limit - (size_t)i * (cout), cout, vecs);                                    \
        const int rest = n - i;                                                               \
        float *tail = out + (size_t)i * (cout);                                               \
        switch ((rest + LANES - 1) / LANES) {                                                 \
            TAIL(cout, vecs, 1)                                                               \
            TAIL(cout, vecs, 2)                                                               \
            TAIL(cout, vecs, 3)                                                               \
            TAIL(cout, vecs, 4)                                                               \
            TAIL(cout, vecs, 5)                                                               \
            TAIL(cout, vecs, 6)                                                               \
            TAIL(cout, vecs, 7)                                                               \
            TAIL(cout, vecs, 8)                                                               \
        default:                                                                              \
            break;                                                                            \
        }                                                                                     \
    }
/* cout * vecs accumulators, the inputs and one weight in at most 16
 * registers (with one channel the inputs fold into the FMAs); at least 7
 * chains (4 cycles of latency x 2 FMA ports wants 8). */
ROW(1, 8)
ROW(2, 4)
ROW(3, 3)
ROW(4, 3)
ROW(5, 2)
ROW(6, 2)
ROW(7, 1)

void cnn__conv_narrow_avx2_row(const cnn_conv_narrow_task *t, int row, int ox, int n,
                               float *out)
{
    typedef void (*row_fn)(const cnn_conv_narrow_task *, int, int, int, float *);
    static const row_fn rows[CNN_CONV_NARROW_MAX_COUT] = { row_1, row_2, row_3, row_4,
                                                           row_5, row_6, row_7 };
    rows[t->cout - 1](t, row, ox, n, out);
}
