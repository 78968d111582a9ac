// cc_options.accumulate on cc_conv_backward_data: dx = dx + g, where g is what the overwriting call writes (checked
// against the reference in conv_tests.cpp and conv_tiled_tests.cpp). For every kernel variant that computes a data
// gradient, the bits must equal g added to the old dx afterwards (one rounded add, as cc_axpy with alpha 1 does), so an
// autograd that fuses its accumulation gets the same gradients. The other passes and the linear layer refuse the flag.
#include "abi_test.h"

#include <cstring>
#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::string kernel_of(const cc_conv_problem& p, const cc_options& o)
{
    char text[128] = "";
    if (cc_conv_kernel_names(&p, CC_CONV_BACKWARD_DATA, &o, text, sizeof text) != CC_SUCCESS) return "?";
    return text;
}

void check_variant(Tally& t, const cc_conv_problem& p, cc_options options, const std::string& name)
{
    const std::size_t inputs = static_cast<std::size_t>(p.n) * p.c * p.h * p.w;
    const std::vector<float> dy = random_values(static_cast<std::size_t>(p.n) * p.k * p.p * p.q, 51),
                             w = random_values(static_cast<std::size_t>(p.k) * (p.c / p.groups) * p.r * p.s, 52);
    std::vector<float> before = random_values(inputs, 53);
    // Some -0: -0 + +0 is +0, so where the gradient is zero (the stride cells' other pixels) the sign bit must still change,
    // as the separate add would change it.
    for (std::size_t i = 0; i < inputs; i += 3) before[i] = -0.0f;
    std::vector<float> g(inputs, kNaN);
    options.accumulate = 0;
    const std::string label = name + " (" + kernel_of(p, options) + ")";
    expect_status(t, cc_conv_backward_data(emulator(), &p, &options, dy.data(), w.data(), g.data(), nullptr, 0, nullptr), CC_SUCCESS, {},
                  label + ": overwriting");
    options.accumulate = 1;
    std::vector<float> dx = before;
    expect_status(t, cc_conv_backward_data(emulator(), &p, &options, dy.data(), w.data(), dx.data(), nullptr, 0, nullptr), CC_SUCCESS, {},
                  label + ": accumulating");
    std::size_t bad = 0;
    for (std::size_t i = 0; i < dx.size(); ++i) {
        const float want = before[i] + g[i];
        bad += std::memcmp(&want, &dx[i], sizeof want) != 0 ? 1 : 0;
    }
    t.check(bad == 0, label + ": dx is bitwise the old dx plus the overwriting call's gradient (" + std::to_string(bad) + " of " +
                          std::to_string(dx.size()) + " differ)");
}

void test_variants(Tally& t)
{
    cc_options direct{}, fp32{}, tf32{}, tiled{};
    direct.algo = CC_ALGO_DIRECT;
    fp32.precision = CC_PRECISION_FP32;
    tiled.algo = CC_ALGO_TILED;
    cc_conv_problem p;
    cc_conv_init(&p, 2, 6, 7, 9, 4, 3, 3, 1, 1, 2, 2, 2);
    check_variant(t, p, direct, "direct grouped 3x3 stride 2");
    cc_conv_init(&p, 2, 5, 7, 6, 7, 1, 1, 0, 0, 2, 2, 1); // stride 2: the GEMM also zeroes the rest of each stride cell
    check_variant(t, p, fp32, "fp32 GEMM 1x1 stride 2");
    cc_conv_init(&p, 2, 8, 6, 6, 12, 1, 1, 0, 0, 1, 1, 1);
    check_variant(t, p, tf32, "tensor cores 1x1");
    cc_conv_init(&p, 2, 16, 7, 9, 16, 3, 3, 1, 1, 1, 1, 1);
    check_variant(t, p, tf32, "tensor cores 3x3");
    cc_conv_init(&p, 2, 16, 8, 9, 16, 3, 3, 1, 1, 2, 2, 2);
    check_variant(t, p, tf32, "tensor cores 3x3 stride 2");
    cc_conv_init(&p, 2, 8, 10, 11, 8, 3, 3, 1, 1, 1, 1, 8);
    check_variant(t, p, tiled, "tiled depthwise 3x3");
    cc_conv_init(&p, 2, 8, 10, 11, 8, 3, 3, 1, 1, 2, 2, 4);
    check_variant(t, p, tiled, "tiled grouped 3x3 stride 2");
}

void test_refusals(Tally& t)
{
    cc_conv_problem p;
    cc_conv_init(&p, 2, 4, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1);
    cc_options accumulate{};
    accumulate.accumulate = 1;
    std::vector<float> x(2 * 4 * 25), w(4 * 4 * 9), y(2 * 4 * 25);
    expect_status(t, cc_conv_forward(emulator(), &p, &accumulate, x.data(), w.data(), y.data(), nullptr, 0, nullptr), CC_ERROR_INVALID_VALUE,
                  {"options->accumulate (1)", "cc_conv_backward_data only"}, "accumulate on the forward pass");
    expect_status(t, cc_conv_backward_weight(emulator(), &p, &accumulate, x.data(), y.data(), w.data(), nullptr, 0, nullptr),
                  CC_ERROR_INVALID_VALUE, {"options->accumulate (1)"}, "accumulate on the weight gradient");
    const cc_linear_problem lp{4, 5, 6};
    size_t bytes = 0;
    expect_status(t, cc_linear_workspace_size(&lp, &accumulate, &bytes), CC_ERROR_INVALID_VALUE, {"options->accumulate (1)", "dw is overwritten"},
                  "accumulate on the linear weight gradient");
}

} // namespace

void run_conv_accumulate_tests(Tally& t)
{
    // Each element is read and written by one thread (no ordering between blocks to check): under TSan, whose tracking
    // of every access costs minutes, only the refusals run.
    if (!kUnderTsan) test_variants(t);
    test_refusals(t);
}

} // namespace cc_abi_test
