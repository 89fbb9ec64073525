#include "bench_common.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* name, N, H, W, Cin, Cout, kernel, stride, pad */
const bench_layer bench_suite[] = {
    { "lenet_c1", 1, 28, 28, 1, 6, 5, 1, 2 },
    { "lenet_c2", 1, 14, 14, 6, 16, 5, 1, 0 },
    { "seed_5x5", 1, 32, 32, 3, 16, 5, 1, 0 },
    { "cifar_3x3", 1, 32, 32, 3, 32, 3, 1, 1 },
    { "vgg_56", 1, 56, 56, 64, 64, 3, 1, 1 },
    { "res_28", 1, 28, 28, 128, 128, 3, 1, 1 },
    { "res_14", 1, 14, 14, 256, 256, 3, 1, 1 },
    { "pw_28", 1, 28, 28, 256, 64, 1, 1, 0 },
    { "s2_56", 1, 56, 56, 64, 128, 3, 2, 1 },
    { "stem_224", 1, 224, 224, 3, 64, 7, 2, 3 },
    { "res_14_b8", 8, 14, 14, 256, 256, 3, 1, 1 },
    { "vgg_56_b8", 8, 56, 56, 64, 64, 3, 1, 1 },
    { "cifar_3x3_b8", 8, 32, 32, 3, 32, 3, 1, 1 },
};
const size_t bench_suite_len = sizeof bench_suite / sizeof bench_suite[0];

int bench_out_h(const bench_layer *l) { return (l->h + 2 * l->pad - l->kernel) / l->stride + 1; }
int bench_out_w(const bench_layer *l) { return (l->w + 2 * l->pad - l->kernel) / l->stride + 1; }

size_t bench_gemm_m(const bench_layer *l)
{
    return (size_t)l->n * (size_t)bench_out_h(l) * (size_t)bench_out_w(l);
}

size_t bench_gemm_k(const bench_layer *l)
{
    return (size_t)l->kernel * (size_t)l->kernel * (size_t)l->cin;
}

double bench_flops(const bench_layer *l)
{
    return 2.0 * (double)bench_gemm_m(l) * (double)l->cout * (double)bench_gemm_k(l);
}

size_t bench_input_floats(const bench_layer *l)
{
    return (size_t)l->n * (size_t)l->h * (size_t)l->w * (size_t)l->cin;
}

size_t bench_output_floats(const bench_layer *l) { return bench_gemm_m(l) * (size_t)l->cout; }

size_t bench_weight_floats(const bench_layer *l) { return (size_t)l->cout * bench_gemm_k(l); }

static void usage(FILE *to, const char *program, const char *extra_usage)
{
    fprintf(to,
            "usage: %s [--quick] [--threads 1,2] [--csv FILE] [--filter NAME]\n"
            "          [--reps N] [--samples N]\n"
            "  --quick         few repetitions and short samples (smoke runs; noisy)\n"
            "  --threads LIST  comma-separated thread counts (default 1,2)\n"
            "  --csv FILE      also write the results as CSV\n"
            "  --filter NAME   run only the cases whose name contains NAME\n"
            "  --reps N        repetitions, each giving one ratio (>= 5; default 9, quick 5)\n"
            "  --samples N     timed samples per implementation per repetition\n"
            "                  (default 7, quick 3)\n%s",
            program, extra_usage ? extra_usage : "");
}

static int parse_int(const char *text, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return 0;
    *out = (int)v;
    return 1;
}

static int parse_threads(const char *text, bench_options *opts)
{
    char buf[128];
    if (strlen(text) >= sizeof buf)
        return 0;
    strcpy(buf, text);
    opts->thread_count_len = 0;
    for (char *item = strtok(buf, ","); item; item = strtok(NULL, ",")) {
        if (opts->thread_count_len == BENCH_MAX_THREAD_COUNTS ||
            !parse_int(item, 1, 1024, &opts->threads[opts->thread_count_len]))
            return 0;
        opts->thread_count_len++;
    }
    return opts->thread_count_len > 0;
}

int bench_parse_options(int argc, char **argv, const char *program, const char *extra_usage,
                        bench_options *opts)
{
    *opts = (bench_options){ 0, { 1, 2 }, 2, NULL, NULL, 0, 0, 0.0 };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1, takes_value = 1;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout, program, extra_usage);
            return 1;
        } else if (!strcmp(arg, "--quick")) {
            opts->quick = 1;
            takes_value = 0;
        } else if (!value) {
            ok = 0;
        } else if (!strcmp(arg, "--threads")) {
            ok = parse_threads(value, opts);
        } else if (!strcmp(arg, "--csv")) {
            opts->csv_path = value;
        } else if (!strcmp(arg, "--filter")) {
            opts->filter = value;
        } else if (!strcmp(arg, "--reps")) {
            ok = parse_int(value, 5, 100000, &opts->reps);
        } else if (!strcmp(arg, "--samples")) {
            ok = parse_int(value, 1, 100000, &opts->samples);
        } else {
            ok = 0;
        }
        if (!ok) {
            fprintf(stderr, "%s: bad or incomplete option '%s%s%s'\n", program, arg,
                    value && takes_value ? " " : "", value && takes_value ? value : "");
            usage(stderr, program, extra_usage);
            return -1;
        }
        i += takes_value;
    }
    if (!opts->reps)
        opts->reps = opts->quick ? 5 : 9;
    if (!opts->samples)
        opts->samples = opts->quick ? 3 : 7;
    opts->sample_ms = opts->quick ? 0.2 : 1.0;
    return 0;
}

int bench_selected(const bench_options *opts, const char *name)
{
    return !opts->filter || strstr(name, opts->filter) != NULL;
}

double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(const double *values, size_t count)
{
    if (!count)
        return NAN;
    double *copy = malloc(count * sizeof *copy);
    if (!copy)
        return NAN;
    memcpy(copy, values, count * sizeof *copy);
    qsort(copy, count, sizeof *copy, compare_doubles);
    double mid = count % 2 ? copy[count / 2] : 0.5 * (copy[count / 2 - 1] + copy[count / 2]);
    free(copy);
    return mid;
}

double bench_min(const double *values, size_t count)
{
    double m = count ? values[0] : NAN;
    for (size_t i = 1; i < count; i++)
        m = values[i] < m ? values[i] : m;
    return m;
}

double bench_max(const double *values, size_t count)
{
    double m = count ? values[0] : NAN;
    for (size_t i = 1; i < count; i++)
        m = values[i] > m ? values[i] : m;
    return m;
}

static double time_calls(void (*run)(void *), void *ctx, int calls)
{
    double start = bench_now_ms();
    for (int i = 0; i < calls; i++)
        run(ctx);
    return (bench_now_ms() - start) / calls;
}

/* Returns how many calls make one sample last opts->sample_ms. */
static int warm_up(void (*run)(void *), void *ctx, const bench_options *opts)
{
    double budget = opts->quick ? 10.0 : 50.0, spent = 0.0, per_call = 0.0;
    for (int i = 0; i < 3 || spent < budget; i++) {
        per_call = time_calls(run, ctx, 1);
        spent += per_call;
    }
    int calls = per_call > 0.0 ? (int)ceil(opts->sample_ms / per_call) : 1;
    return calls < 1 ? 1 : calls > 10000 ? 10000 : calls;
}

int bench_time_pair(const bench_pair *p, const bench_options *opts, bench_pair_result *res)
{
    int calls_a = warm_up(p->run_a, p->ctx, opts);
    int calls_b = p->run_b ? warm_up(p->run_b, p->ctx, opts) : 0;
    size_t reps = (size_t)opts->reps, samples = (size_t)opts->samples;
    double *a = malloc(reps * samples * sizeof *a), *b = malloc(reps * samples * sizeof *b);
    double *ratios = malloc(reps * sizeof *ratios);
    if (!a || !b || !ratios) {
        free(a), free(b), free(ratios);
        return 0;
    }
    for (size_t r = 0; r < reps; r++) {
        double *ra = a + r * samples, *rb = b + r * samples;
        for (size_t s = 0; s < samples; s++) {
            ra[s] = time_calls(p->run_a, p->ctx, calls_a);
            if (p->run_b)
                rb[s] = time_calls(p->run_b, p->ctx, calls_b);
        }
        ratios[r] = p->run_b ? bench_median(rb, samples) / bench_median(ra, samples) : NAN;
    }
    res->a_ms = bench_median(a, reps * samples);
    res->b_ms = p->run_b ? bench_median(b, reps * samples) : NAN;
    res->ratio[0] = bench_median(ratios, reps);
    res->ratio[1] = bench_min(ratios, reps);
    res->ratio[2] = bench_max(ratios, reps);
    free(a), free(b), free(ratios);
    return 1;
}

/* splitmix64: any fixed generator will do; the values only need to be ordinary floats. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void bench_fill(float *x, size_t count, uint64_t seed)
{
    uint64_t state = seed;
    for (size_t i = 0; i < count; i++)
        x[i] = (float)((double)(next_random(&state) >> 11) * 0x1p-52 - 1.0);
}

float *bench_alloc_floats(size_t count)
{
    size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
    return aligned_alloc(64, bytes ? bytes : 64);
}

double bench_spot_check(const bench_layer *l, const float *input, const float *weights,
                        const float *bias, const float *output, int samples)
{
    const size_t total = bench_output_floats(l);
    const int oh = bench_out_h(l), ow = bench_out_w(l);
    double max_err = 0.0, max_ref = 0.0;
    for (int s = 0; s < samples; s++) {
        /* Spread the samples over the tensor, corners included. */
        size_t at = samples > 1 ? (size_t)((double)(total - 1) * s / (samples - 1)) : 0;
        size_t o = at % (size_t)l->cout, pixel = at / (size_t)l->cout;
        int ox = (int)(pixel % (size_t)ow), oy = (int)(pixel / (size_t)ow % (size_t)oh);
        size_t image = pixel / ((size_t)ow * (size_t)oh);
        double acc = bias ? bias[o] : 0.0;
        for (int ky = 0; ky < l->kernel; ky++)
            for (int kx = 0; kx < l->kernel; kx++) {
                int y = oy * l->stride - l->pad + ky, x = ox * l->stride - l->pad + kx;
                if (y < 0 || y >= l->h || x < 0 || x >= l->w)
                    continue;
                const float *in = input + (((image * (size_t)l->h + (size_t)y) * (size_t)l->w +
                                            (size_t)x) * (size_t)l->cin);
                const float *wt = weights + ((o * (size_t)l->kernel + (size_t)ky) *
                                                 (size_t)l->kernel + (size_t)kx) * (size_t)l->cin;
                for (int c = 0; c < l->cin; c++)
                    acc += (double)in[c] * (double)wt[c];
            }
        double err = fabs(acc - (double)output[at]);
        max_err = err > max_err ? err : max_err;
        max_ref = fabs(acc) > max_ref ? fabs(acc) : max_ref;
    }
    return max_ref > 0.0 ? max_err / max_ref : max_err;
}

FILE *bench_csv_open(const char *path, int append)
{
    FILE *csv = fopen(path, append ? "a" : "w");
    /* Appending to a file that already has rows: no second header. */
    if (csv && fseek(csv, 0, SEEK_END) == 0 && ftell(csv) == 0)
        fprintf(csv, "impl,kind,name,threads,batch,ms_median,gflops,ceiling_gflops,ratio_median,"
                     "ratio_min,ratio_max,ws_bytes,ws_source,images_per_s,note,reps\n");
    return csv;
}

/* NaN prints as an empty field: "not applicable". */
static void csv_number(FILE *csv, double v, int decimals)
{
    fputc(',', csv);
    if (!isnan(v))
        fprintf(csv, "%.*f", decimals, v);
}

void bench_csv_row(FILE *csv, const char *impl, const char *kind, const char *name, int threads,
                   int batch, double ms, double gflops, double ceiling_gflops,
                   const double ratio_median_min_max[3], double ws_bytes, const char *ws_source,
                   double images_per_s, const char *note, int reps)
{
    if (!csv)
        return;
    fprintf(csv, "%s,%s,%s,%d,%d", impl, kind, name, threads, batch);
    csv_number(csv, ms, 6);
    csv_number(csv, gflops, 3);
    csv_number(csv, ceiling_gflops, 3);
    for (int i = 0; i < 3; i++)
        csv_number(csv, ratio_median_min_max ? ratio_median_min_max[i] : NAN, 4);
    csv_number(csv, ws_bytes, 0);
    fprintf(csv, ",%s", ws_source ? ws_source : "");
    csv_number(csv, images_per_s, 1);
    fprintf(csv, ",%s,%d\n", note ? note : "", reps);
    fflush(csv);
}
