// Shared helpers of the C ABI tests (abi_test.h).
#include "abi_test.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <limits>

namespace cc_abi_test {

void expect_status(Tally& t, cc_status got, cc_status want, std::initializer_list<const char*> needles, const std::string& what)
{
    expect_status(t, got, want, cc_last_error(), needles, what);
}

void expect_status(Tally& t, cc_status got, cc_status want, const std::string& message, std::initializer_list<const char*> needles,
                   const std::string& what)
{
    bool ok = got == want;
    for (const char* needle : needles) ok = ok && message.find(needle) != std::string::npos;
    std::string detail = what + " -> " + cc_status_string(want);
    if (!ok || t.verbose) {
        detail += std::string("\n        got ") + cc_status_string(got) + (got != CC_SUCCESS ? ": " + message : std::string());
        if (!ok) {
            detail += "\n        wanted a message containing:";
            for (const char* needle : needles) detail += std::string(" \"") + needle + "\"";
        }
    }
    t.check(ok, detail);
}

std::vector<float> workspace_of(std::size_t bytes)
{
    std::vector<float> workspace((bytes + sizeof(float) - 1) / sizeof(float), std::numeric_limits<float>::quiet_NaN());
    std::fill_n(workspace.begin(), std::min(workspace.size(), CC_SPLIT_COUNTER_BYTES / sizeof(float)), 0.0f);
    return workspace;
}

std::vector<float> random_values(std::size_t count, unsigned long long seed, float lo, float hi)
{
    std::vector<float> values(count);
    unsigned long long state = seed * 0x9e3779b97f4a7c15ull + 1;
    for (float& v : values) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        v = lo + (hi - lo) * static_cast<float>((state >> 40) & 0xffffff) / 16777216.0f;
    }
    return values;
}

void expect_within(Tally& t, const std::vector<float>& got, const std::vector<double>& want, const std::vector<double>& bound,
                   const std::string& what)
{
    std::size_t bad = 0, first = 0;
    double worst = 0; // the largest error as a share of its bound: how tight the bound is
    const bool sizes = got.size() == want.size() && got.size() == bound.size();
    for (std::size_t i = 0; sizes && i < got.size(); ++i) {
        const double error = std::fabs(static_cast<double>(got[i]) - want[i]);
        if (!(error <= bound[i]) && bad++ == 0) first = i;
        if (bound[i] > 0) worst = std::max(worst, error / bound[i]);
    }
    char text[320];
    if (!sizes)
        std::snprintf(text, sizeof text, "%s: %zu values against %zu references and %zu bounds", what.c_str(), got.size(), want.size(),
                      bound.size());
    else if (bad != 0)
        std::snprintf(text, sizeof text, "%s: %zu of %zu off, first [%zu]: %.9g vs %.9g (bound %.3g)", what.c_str(), bad, got.size(), first,
                      static_cast<double>(got[first]), want[first], bound[first]);
    else
        std::snprintf(text, sizeof text, "%s: %zu values within the derived bound (largest error %.3g of its bound)", what.c_str(), got.size(),
                      worst);
    t.check(sizes && bad == 0, text);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b)
{
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

namespace {

// Every element within its bound, the bound of one element being relative(terms) * sum |products|.
template <class Relative>
void expect_within(Tally& t, const std::vector<float>& got, const Sums& want, const std::string& what, Relative relative)
{
    std::size_t bad = 0, worst = 0;
    double worst_ratio = 0.0;
    for (std::size_t i = 0; i < want.value.size(); ++i) {
        const double bound = relative(static_cast<double>(want.terms[i])) * want.magnitude[i];
        const double error = std::fabs(static_cast<double>(got[i]) - want.value[i]);
        if (!(error <= bound)) ++bad;
        const double ratio = bound > 0 ? error / bound : (error > 0 ? INFINITY : 0);
        if (!(ratio <= worst_ratio)) {
            worst_ratio = ratio;
            worst = i;
        }
    }
    char detail[256];
    std::snprintf(detail, sizeof detail, "%s: %zu elements within their rounding bounds (worst error/bound %.3g at [%zu]: %.9g vs %.9g)",
                  what.c_str(), want.value.size(), worst_ratio, worst, static_cast<double>(got[worst]), want.value[worst]);
    t.check(bad == 0 && got.size() == want.value.size(), detail);
}

double fp32_sum_gamma(double terms)
{
    const double u = std::ldexp(1.0, -24);
    return terms * u / (1.0 - terms * u);
}

} // namespace

void expect_sums(Tally& t, const std::vector<float>& got, const Sums& want, const std::string& what)
{
    expect_within(t, got, want, what, fp32_sum_gamma);
}

void expect_sums_tf32(Tally& t, const std::vector<float>& got, const Sums& want, const std::string& what)
{
    const double v = std::ldexp(1.0, -11);
    expect_within(t, got, want, what + " (tf32)", [v](double terms) { return 2 * v + v * v + fp32_sum_gamma(terms) * (1 + v) * (1 + v); });
}

void expect_close(Tally& t, const float* got, const double* want, std::size_t count, double rel, double abs, const std::string& what)
{
    std::size_t bad = 0, first_bad = 0;
    for (std::size_t i = 0; i < count; ++i) {
        if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= abs + rel * std::fabs(want[i]))) {
            if (bad++ == 0) first_bad = i;
        }
    }
    char detail[256];
    if (bad == 0)
        std::snprintf(detail, sizeof detail, "%s: %zu elements within %g + %g relative", what.c_str(), count, abs, rel);
    else
        std::snprintf(detail, sizeof detail, "%s: %zu of %zu elements off, first [%zu]: %.9g vs %.9g", what.c_str(), bad, count, first_bad,
                      static_cast<double>(got[first_bad]), want[first_bad]);
    t.check(bad == 0, detail);
}

void run_emulator_tests(Tally& t)
{
    const struct {
        const char* heading;
        void (*run)(Tally&);
    } families[] = {{"handle, status, last error", run_api_tests},
                    {"convolution", run_conv_tests},
                    {"convolution, tiled 3x3 kernels", run_conv_tiled_tests},
                    {"convolution, data gradient added into dx", run_conv_accumulate_tests},
                    {"convolution, forward with a fused epilogue", run_conv_fused_tests},
                    {"convolution, both gradients in one call (cc_conv_backward)", run_conv_backward_tests},
                    {"convolution, the implicit GEMM's forward on every block tile, the data gradient's dy window", run_conv_tile_tests},
                    {"convolution with the training batch norm's statistics in its store, and the batch norm from them", run_conv_bn_stats_tests},
                    {"1x1 convolution reading its input through the training batch norm (a prologue), and the statistics alone", run_conv_input_bn_tests},
                    {"1x1 data gradient with the training batch norm's backward sums in its store, and the batch norm from them",
                     run_conv_bn_sums_tests},
                    {"linear", run_linear_tests},
                    {"split weight gradients reduced in their own launch", run_split_reduce_tests},
                    {"batch norm", run_batchnorm_tests},
                    {"element-wise, pooling, padding", run_elementwise_pool_tests},
                    {"losses, SGD", run_loss_sgd_tests},
                    {"launch failures and warnings on the emulator runtime", run_runtime_tests},
                    {"stream capture and graphs", run_graph_tests},
                    // Last: under TSan a cluster of 8 blocks of 256 threads is 2048 fibers, and TSan's vector clocks grow
                    // with the fibers ever synchronised, slowing every later test.
                    {"batch norm, one launch per pass (thread-block clusters) against the two-launch path", run_batchnorm_cluster_tests}};
    // Under TSan the families before the last take the paths of a GPU without clusters (the two-launch batch norm): the
    // cluster kernels' 2048 fibers per cluster would make every later synchronisation slow (see above); the last family
    // turns them on for its own launches.
    if (kUnderTsan) cc_emu_set_cluster_kernels(0);
    for (const auto& family : families) {
        std::printf("C ABI: %s\n", family.heading);
        family.run(t);
    }
}

cc_handle emulator()
{
    static cc_handle handle = [] {
        cc_handle h = nullptr;
        if (cc_create(&h, 0) != CC_SUCCESS) std::printf("  cc_create on the emulator failed: %s\n", cc_last_error());
        return h;
    }();
    return handle;
}

} // namespace cc_abi_test
