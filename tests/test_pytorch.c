/* Whole-net cross-check against PyTorch.
 *
 * Reads the nets written by tests/pytorch_lenet.py (DIR/nets.txt, DIR/<net>/manifest.txt
 * and raw little-endian float32 files), rebuilds each net with libcnn, imports its weights
 * with CNN_LAYOUT_PYTORCH and compares the outputs with PyTorch's, for the whole batch and
 * for each image run alone.
 *
 * With --negative it is its own negative control: it imports the same weights in the wrong
 * layout (every layer native, then only the first dense layer native) and passes only if
 * every such net disagrees with PyTorch, which shows the comparison can fail.
 *
 * Exit status: 0 every check passed, 1 a check failed, 2 the files or a library call failed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"
#include "support.h"

/* DESIGN.md's normwise relative error bound for whole nets against PyTorch. */
#define TOLERANCE 1e-4

#define PATH_CAPACITY 4096
#define LINE_CAPACITY 1024
#define MAX_FIELDS 16

enum { EXIT_PASS = 0, EXIT_MISMATCH = 1, EXIT_ERROR = 2 };

/* Which layers get CNN_LAYOUT_PYTORCH. */
typedef enum import_mode {
    IMPORT_PYTORCH,         /* every layer: the real test */
    IMPORT_ALL_NATIVE,      /* every layer native: must mismatch */
    IMPORT_FIRST_DENSE_NATIVE /* only the flatten-following dense layer native: must mismatch */
} import_mode;

static const char *mode_name(import_mode mode)
{
    switch (mode) {
    case IMPORT_PYTORCH: return "PyTorch layout";
    case IMPORT_ALL_NATIVE: return "every layer imported as NATIVE (negative control)";
    case IMPORT_FIRST_DENSE_NATIVE: return "first dense imported as NATIVE (negative control)";
    }
    return "?";
}

/* One manifest line: a keyword and its key=value fields, pointing into the line. */
typedef struct manifest_line {
    const char *keyword;
    int n_fields;
    const char *key[MAX_FIELDS];
    const char *value[MAX_FIELDS];
} manifest_line;

/* What the manifest says about a net besides its layers. */
typedef struct net_case {
    const char *dir;
    const char *name;
    import_mode mode;
    cnn_net *net;
    int in_h, in_w, in_c;
    int batch;
    int out_h, out_w, out_c;
    char input_file[PATH_CAPACITY];
    char output_file[PATH_CAPACITY];
    int dense_seen;
} net_case;

static int join_path(char *out, const char *dir, const char *file)
{
    int n = snprintf(out, PATH_CAPACITY, "%s/%s", dir, file);
    if (n < 0 || n >= PATH_CAPACITY) {
        fprintf(stderr, "path too long: %s/%s\n", dir, file);
        return 0;
    }
    return 1;
}

/* Cuts the next blank-separated token out of *cursor (in place); NULL at the end. */
static char *next_token(char **cursor)
{
    static const char blanks[] = " \t\r\n";
    char *token = *cursor + strspn(*cursor, blanks);
    if (*token == '\0')
        return NULL;
    char *end = token + strcspn(token, blanks);
    *cursor = *end ? end + 1 : end;
    *end = '\0';
    return token;
}

/* Splits `text` in place; blank lines and comments give keyword NULL. */
static int split_line(char *text, manifest_line *line)
{
    memset(line, 0, sizeof *line);
    char *cursor = text;
    char *token = next_token(&cursor);
    if (!token || token[0] == '#')
        return 1;
    line->keyword = token;
    while ((token = next_token(&cursor)) != NULL) {
        char *eq = strchr(token, '=');
        if (!eq || line->n_fields == MAX_FIELDS) {
            fprintf(stderr, "bad field '%s' in a '%s' line\n", token, line->keyword);
            return 0;
        }
        *eq = '\0';
        line->key[line->n_fields] = token;
        line->value[line->n_fields] = eq + 1;
        line->n_fields++;
    }
    return 1;
}

static const char *field_text(const manifest_line *line, const char *key)
{
    for (int i = 0; i < line->n_fields; i++)
        if (strcmp(line->key[i], key) == 0)
            return line->value[i];
    fprintf(stderr, "'%s' line has no field '%s'\n", line->keyword, key);
    return NULL;
}

static int field_int(const manifest_line *line, const char *key, int *out)
{
    const char *text = field_text(line, key);
    if (!text)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < -1000000 || v > 1000000) {
        fprintf(stderr, "'%s' line: %s=%s is not a small integer\n", line->keyword, key, text);
        return 0;
    }
    *out = (int)v;
    return 1;
}

static int field_float(const manifest_line *line, const char *key, float *out)
{
    const char *text = field_text(line, key);
    if (!text)
        return 0;
    char *end;
    errno = 0;
    float v = strtof(text, &end);
    if (errno || end == text || *end) {
        fprintf(stderr, "'%s' line: %s=%s is not a number\n", line->keyword, key, text);
        return 0;
    }
    *out = v;
    return 1;
}

/* Reads exactly `count` little-endian float32 values; the file must hold no more. */
static float *read_floats(const char *path, size_t count)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    unsigned char *bytes = test_xmalloc(count * 4);
    size_t got = fread(bytes, 1, count * 4, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != count * 4 || extra) {
        fprintf(stderr, "%s: expected exactly %zu floats (%zu bytes)%s\n", path, count,
                count * 4, extra ? ", the file is longer" : "");
        free(bytes);
        return NULL;
    }
    float *values = test_xmalloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++) {
        const unsigned char *b = bytes + 4 * i;
        uint32_t bits = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                        (uint32_t)b[3] << 24;
        memcpy(&values[i], &bits, sizeof bits);
    }
    free(bytes);
    return values;
}

static int api_ok(const net_case *nc, cnn_status st, const char *what)
{
    if (st == CNN_OK)
        return 1;
    fprintf(stderr, "%s: %s failed: %s (%s)\n", nc->name, what, cnn_status_string(st),
            cnn_net_last_error(nc->net));
    return 0;
}

static cnn_weight_layout layout_for(net_case *nc, int is_first_dense)
{
    switch (nc->mode) {
    case IMPORT_ALL_NATIVE: return CNN_LAYOUT_NATIVE;
    case IMPORT_FIRST_DENSE_NATIVE: return is_first_dense ? CNN_LAYOUT_NATIVE : CNN_LAYOUT_PYTORCH;
    case IMPORT_PYTORCH: break;
    }
    return CNN_LAYOUT_PYTORCH;
}

/* Loads the weights (and the bias, when the line has bias=1) of the layer just added. */
static int load_params(net_case *nc, const manifest_line *line, int layer,
                       cnn_weight_layout layout)
{
    size_t n_weights, n_bias;
    int has_bias;
    char path[PATH_CAPACITY];
    if (!api_ok(nc, cnn_layer_param_sizes(nc->net, layer, &n_weights, &n_bias),
                "cnn_layer_param_sizes") ||
        !field_int(line, "bias", &has_bias))
        return 0;
    const char *file = field_text(line, "weights");
    if (!file || !join_path(path, nc->dir, file))
        return 0;
    float *weights = read_floats(path, n_weights);
    if (!weights)
        return 0;
    int ok = api_ok(nc, cnn_layer_set_weights(nc->net, layer, weights, n_weights, layout),
                    "cnn_layer_set_weights");
    free(weights);
    if (!ok || !has_bias)
        return ok;
    file = field_text(line, "biasfile");
    if (!file || !join_path(path, nc->dir, file))
        return 0;
    float *bias = read_floats(path, n_bias);
    if (!bias)
        return 0;
    ok = api_ok(nc, cnn_layer_set_bias(nc->net, layer, bias, n_bias), "cnn_layer_set_bias");
    free(bias);
    return ok;
}

static int add_conv(net_case *nc, const manifest_line *line)
{
    cnn_conv_desc d;
    cnn_conv_desc_init(&d);
    int layer;
    if (!field_int(line, "filters", &d.filters) || !field_int(line, "kh", &d.kernel_h) ||
        !field_int(line, "kw", &d.kernel_w) || !field_int(line, "sh", &d.stride_h) ||
        !field_int(line, "sw", &d.stride_w) || !field_int(line, "ph", &d.pad_h) ||
        !field_int(line, "pw", &d.pad_w) || !field_int(line, "bias", &d.bias))
        return 0;
    return api_ok(nc, cnn_layer_add_conv(nc->net, &d, &layer), "cnn_layer_add_conv") &&
           load_params(nc, line, layer, layout_for(nc, 0));
}

static int add_pool(net_case *nc, const manifest_line *line)
{
    cnn_pool_desc d;
    cnn_pool_desc_init(&d);
    const char *kind = field_text(line, "kind");
    if (!kind || !field_int(line, "wh", &d.window_h) || !field_int(line, "ww", &d.window_w) ||
        !field_int(line, "sh", &d.stride_h) || !field_int(line, "sw", &d.stride_w) ||
        !field_int(line, "ph", &d.pad_h) || !field_int(line, "pw", &d.pad_w) ||
        !field_int(line, "count_pad", &d.count_pad))
        return 0;
    if (strcmp(kind, "max") == 0)
        d.kind = CNN_POOL_MAX;
    else if (strcmp(kind, "avg") == 0)
        d.kind = CNN_POOL_AVG;
    else {
        fprintf(stderr, "%s: unknown pooling kind '%s'\n", nc->name, kind);
        return 0;
    }
    return api_ok(nc, cnn_layer_add_pool(nc->net, &d, NULL), "cnn_layer_add_pool");
}

static int add_activation(net_case *nc, const manifest_line *line)
{
    static const struct { const char *name; cnn_activation kind; } kinds[] = {
        { "relu", CNN_ACT_RELU }, { "leaky_relu", CNN_ACT_LEAKY_RELU },
        { "sigmoid", CNN_ACT_SIGMOID }, { "tanh", CNN_ACT_TANH },
    };
    const char *name = field_text(line, "kind");
    float slope;
    if (!name || !field_float(line, "slope", &slope))
        return 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(name, kinds[i].name) == 0)
            return api_ok(nc, cnn_layer_add_activation(nc->net, kinds[i].kind, slope, NULL),
                          "cnn_layer_add_activation");
    fprintf(stderr, "%s: unknown activation '%s'\n", nc->name, name);
    return 0;
}

static int add_dense(net_case *nc, const manifest_line *line)
{
    int units, bias, layer;
    if (!field_int(line, "units", &units) || !field_int(line, "bias", &bias))
        return 0;
    int first = !nc->dense_seen;
    nc->dense_seen = 1;
    return api_ok(nc, cnn_layer_add_dense(nc->net, units, bias, &layer), "cnn_layer_add_dense") &&
           load_params(nc, line, layer, layout_for(nc, first));
}

/* The header lines: input (creates the net), batch, output. */
static int read_header_line(net_case *nc, const manifest_line *line)
{
    const char *file;
    if (strcmp(line->keyword, "input") == 0) {
        if (nc->net) {
            fprintf(stderr, "%s: a second 'input' line\n", nc->name);
            return 0;
        }
        if (!field_int(line, "h", &nc->in_h) || !field_int(line, "w", &nc->in_w) ||
            !field_int(line, "c", &nc->in_c))
            return 0;
        return api_ok(nc, cnn_net_create(&nc->net, nc->in_h, nc->in_w, nc->in_c),
                      "cnn_net_create");
    }
    if (strcmp(line->keyword, "batch") == 0)
        return field_int(line, "n", &nc->batch) && (file = field_text(line, "file")) != NULL &&
               join_path(nc->input_file, nc->dir, file);
    return field_int(line, "h", &nc->out_h) && field_int(line, "w", &nc->out_w) &&
           field_int(line, "c", &nc->out_c) && (file = field_text(line, "file")) != NULL &&
           join_path(nc->output_file, nc->dir, file);
}

static int read_line(net_case *nc, const manifest_line *line)
{
    const char *k = line->keyword;
    if (strcmp(k, "input") == 0 || strcmp(k, "batch") == 0 || strcmp(k, "output") == 0)
        return read_header_line(nc, line);
    if (!nc->net) {
        fprintf(stderr, "%s: '%s' line before the 'input' line\n", nc->name, k);
        return 0;
    }
    if (strcmp(k, "conv") == 0)
        return add_conv(nc, line);
    if (strcmp(k, "pool") == 0)
        return add_pool(nc, line);
    if (strcmp(k, "act") == 0)
        return add_activation(nc, line);
    if (strcmp(k, "dense") == 0)
        return add_dense(nc, line);
    if (strcmp(k, "softmax") == 0)
        return api_ok(nc, cnn_layer_add_softmax(nc->net, NULL), "cnn_layer_add_softmax");
    fprintf(stderr, "%s: unknown manifest keyword '%s'\n", nc->name, k);
    return 0;
}

/* Builds nc->net from DIR/manifest.txt, weights imported as nc->mode says. */
static int build_net(net_case *nc)
{
    char path[PATH_CAPACITY], text[LINE_CAPACITY];
    if (!join_path(path, nc->dir, "manifest.txt"))
        return 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return 0;
    }
    int ok = 1;
    while (ok && fgets(text, sizeof text, f)) {
        manifest_line line;
        ok = split_line(text, &line) && (!line.keyword || read_line(nc, &line));
    }
    fclose(f);
    if (ok && (!nc->net || nc->batch < 1 || nc->out_c < 1)) {
        fprintf(stderr, "%s: the manifest lacks its input, batch or output line\n", nc->name);
        ok = 0;
    }
    int oh, ow, oc;
    if (ok && api_ok(nc, cnn_net_output_shape(nc->net, &oh, &ow, &oc), "cnn_net_output_shape") &&
        (oh != nc->out_h || ow != nc->out_w || oc != nc->out_c)) {
        fprintf(stderr, "%s: libcnn infers output %dx%dx%d, PyTorch gave %dx%dx%d\n", nc->name,
                oh, ow, oc, nc->out_h, nc->out_w, nc->out_c);
        ok = 0;
    }
    return ok;
}

/* Runs the net on `batch` images from `x` and returns the error against `ref`, or -1. */
static double forward_error(net_case *nc, const float *x, int batch, const float *ref,
                            size_t out_per_image)
{
    size_t n = (size_t)batch * out_per_image;
    float *y = test_xmalloc(n * sizeof(float));
    double err = -1.0;
    if (api_ok(nc, cnn_forward(nc->net, x, batch, y), "cnn_forward"))
        err = test_rel_error_f(y, ref, n);
    free(y);
    return err;
}

/* Builds and checks one net; returns an exit status. */
static int check_net(const char *dir, const char *name, import_mode mode)
{
    net_case nc;
    memset(&nc, 0, sizeof nc);
    nc.dir = dir;
    nc.name = name;
    nc.mode = mode;
    int status = EXIT_ERROR;
    float *x = NULL, *ref = NULL;
    if (!build_net(&nc))
        goto done;
    size_t in_per_image = (size_t)nc.in_h * (size_t)nc.in_w * (size_t)nc.in_c;
    size_t out_per_image = (size_t)nc.out_h * (size_t)nc.out_w * (size_t)nc.out_c;
    x = read_floats(nc.input_file, (size_t)nc.batch * in_per_image);
    ref = read_floats(nc.output_file, (size_t)nc.batch * out_per_image);
    if (!x || !ref)
        goto done;

    double err = forward_error(&nc, x, nc.batch, ref, out_per_image);
    if (err < 0.0)
        goto done;
    int match = err <= TOLERANCE;
    int expect_match = mode == IMPORT_PYTORCH;
    printf("%-20s %s: batch %d: rel error %.3e %s %.0e: %s\n", name, mode_name(mode), nc.batch,
           err, match ? "<=" : ">", TOLERANCE,
           match == expect_match ? (expect_match ? "PASS" : "mismatch caught: PASS")
                                 : (expect_match ? "FAIL" : "no mismatch: FAIL"));
    status = match == expect_match ? EXIT_PASS : EXIT_MISMATCH;
    if (!expect_match)
        goto done;

    /* Each image alone must give PyTorch's answer too (a batch-1 plan differs). */
    for (int b = 0; b < nc.batch; b++) {
        err = forward_error(&nc, x + (size_t)b * in_per_image, 1, ref + (size_t)b * out_per_image,
                            out_per_image);
        if (err < 0.0) {
            status = EXIT_ERROR;
            goto done;
        }
        match = err <= TOLERANCE;
        printf("%-20s %s: image %d alone (batch 1): rel error %.3e %s %.0e: %s\n", name,
               mode_name(mode), b, err, match ? "<=" : ">", TOLERANCE, match ? "PASS" : "FAIL");
        if (!match && status == EXIT_PASS)
            status = EXIT_MISMATCH;
    }
done:
    if (status == EXIT_ERROR)
        printf("%-20s %s: ERROR (see stderr)\n", name, mode_name(mode));
    free(x);
    free(ref);
    cnn_net_destroy(nc.net);
    return status;
}

static int worse(int a, int b) { return a > b ? a : b; }

int main(int argc, char **argv)
{
    int negative = argc == 3 && strcmp(argv[1], "--negative") == 0;
    if (argc != 2 + negative) {
        fprintf(stderr, "usage: %s [--negative] DIR  (DIR written by pytorch_lenet.py)\n",
                argv[0]);
        return EXIT_ERROR;
    }
    const char *root = argv[argc - 1];
    char path[PATH_CAPACITY], name[LINE_CAPACITY];
    if (!join_path(path, root, "nets.txt"))
        return EXIT_ERROR;
    FILE *list = fopen(path, "r");
    if (!list) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return EXIT_ERROR;
    }
    int status = EXIT_PASS, nets = 0, checks = 0;
    while (fgets(name, sizeof name, list)) {
        name[strcspn(name, "\r\n")] = '\0';
        if (name[0] == '\0' || name[0] == '#')
            continue;
        char dir[PATH_CAPACITY];
        if (!join_path(dir, root, name)) {
            status = EXIT_ERROR;
            continue;
        }
        nets++;
        if (negative) {
            status = worse(status, check_net(dir, name, IMPORT_ALL_NATIVE));
            status = worse(status, check_net(dir, name, IMPORT_FIRST_DENSE_NATIVE));
            checks += 2;
        } else {
            status = worse(status, check_net(dir, name, IMPORT_PYTORCH));
            checks++;
        }
    }
    fclose(list);
    if (nets == 0) {
        fprintf(stderr, "%s lists no nets\n", path);
        return EXIT_ERROR;
    }
    printf("%s: %d nets, %d %s: %s\n", negative ? "negative controls" : "PyTorch cross-check",
           nets, checks, negative ? "wrong-layout imports" : "nets compared",
           status == EXIT_PASS ? "ALL PASSED" : status == EXIT_MISMATCH ? "FAILED" : "ERROR");
    return status;
}
