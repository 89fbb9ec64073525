// cnn.h used from C++: the header must compile as C++11 without warnings,
// its initialiser macros must work as C++ aggregate initialisers, and the
// C linkage must let a C++ program link and run the library.
#include <cnn.h>

#include <cstdio>
#include <memory>
#include <vector>

namespace {

int failures = 0;

void expect(bool ok, const char *what)
{
    if (!ok) {
        std::fprintf(stderr, "test_cxx: FAILED: %s\n", what);
        ++failures;
    }
}

struct net_deleter {
    void operator()(cnn_net *net) const { cnn_net_destroy(net); }
};
using net_ptr = std::unique_ptr<cnn_net, net_deleter>;

bool ok(cnn_status status, const cnn_net *net, const char *what)
{
    if (status != CNN_OK) {
        std::fprintf(stderr, "test_cxx: %s: %s (%s)\n", what, cnn_status_string(status),
                     cnn_net_last_error(net));
        ++failures;
    }
    return status == CNN_OK;
}

const int side = 6;
const int channels = 2;

// Input at (y, x, c): small integers, so the net's arithmetic is exact.
float input_at(int n, int y, int x, int c)
{
    return static_cast<float>((n * 7 + y * 5 + x * 3 + c * 11) % 9 - 4);
}

void run()
{
    cnn_net *raw = nullptr;
    if (!ok(cnn_net_create(&raw, side, side, channels), nullptr, "cnn_net_create"))
        return;
    net_ptr net(raw);

    // A 3x3 padded conv whose kernels pick their own channel at the centre:
    // the identity, then 2x2 max pooling.
    cnn_conv_desc conv = CNN_CONV_DESC_INIT;
    conv.filters = channels;
    conv.pad_h = conv.pad_w = 1;
    conv.bias = 0;
    cnn_pool_desc pool = CNN_POOL_DESC_INIT;
    expect(conv.struct_size == sizeof(cnn_conv_desc) && conv.kernel_h == 3 &&
               pool.struct_size == sizeof(cnn_pool_desc) && pool.kind == CNN_POOL_MAX &&
               pool.window_w == 2,
           "initialiser macros fill the documented defaults");

    int conv_index = -1;
    int pool_index = -1;
    if (!ok(cnn_layer_add_conv(net.get(), &conv, &conv_index), net.get(), "add conv") ||
        !ok(cnn_layer_add_pool(net.get(), &pool, &pool_index), net.get(), "add pool"))
        return;
    expect(conv_index == 0 && pool_index == 1, "layer indices are 0 and 1");

    size_t weight_count = 0;
    if (!ok(cnn_layer_param_sizes(net.get(), 0, &weight_count, nullptr), net.get(), "sizes"))
        return;
    expect(weight_count == static_cast<size_t>(channels * 3 * 3 * channels), "conv weight count");
    std::vector<float> weights(weight_count, 0.0f); // OHWI
    for (int o = 0; o < channels; ++o)
        weights[static_cast<size_t>(((o * 3 + 1) * 3 + 1) * channels + o)] = 1.0f;
    if (!ok(cnn_layer_set_weights(net.get(), 0, weights.data(), weights.size(),
                                  CNN_LAYOUT_NATIVE),
            net.get(), "set weights"))
        return;

    // A rejected layer leaves the net as it was.
    cnn_conv_desc bad = CNN_CONV_DESC_INIT; // filters stays 0: invalid
    expect(cnn_layer_add_conv(net.get(), &bad, nullptr) == CNN_E_INVALID_ARG,
           "a conv without filters is rejected");
    int count = 0;
    expect(cnn_net_layer_count(net.get(), &count) == CNN_OK && count == 2,
           "the rejected layer was not added");

    const int batch = 2;
    const int half = side / 2;
    std::vector<float> in(static_cast<size_t>(batch * side * side * channels));
    std::vector<float> out(static_cast<size_t>(batch * half * half * channels), -100.0f);
    size_t at = 0;
    for (int n = 0; n < batch; ++n)
        for (int y = 0; y < side; ++y)
            for (int x = 0; x < side; ++x)
                for (int c = 0; c < channels; ++c)
                    in[at++] = input_at(n, y, x, c);
    if (!ok(cnn_forward(net.get(), in.data(), batch, out.data()), net.get(), "forward"))
        return;

    at = 0;
    for (int n = 0; n < batch; ++n)
        for (int y = 0; y < half; ++y)
            for (int x = 0; x < half; ++x)
                for (int c = 0; c < channels; ++c, ++at) {
                    float want = input_at(n, 2 * y, 2 * x, c);
                    for (int d = 1; d < 4; ++d) {
                        float v = input_at(n, 2 * y + d / 2, 2 * x + d % 2, c);
                        want = v > want ? v : want;
                    }
                    if (out[at] != want) {
                        std::fprintf(stderr, "test_cxx: out[%zu] = %g, expected %g\n", at,
                                     static_cast<double>(out[at]), static_cast<double>(want));
                        ++failures;
                    }
                }
}

} // namespace

int main()
{
    expect(cnn_version() == CNN_VERSION_NUMBER, "cnn_version() == CNN_VERSION_NUMBER");
    run();
    if (failures != 0) {
        std::fprintf(stderr, "test_cxx: %d check(s) failed\n", failures);
        return 1;
    }
    std::puts("test_cxx: OK");
    return 0;
}
