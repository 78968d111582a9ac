// cc_conv_forward_fused: the forward convolution with its epilogue (a residual add, an eval batch norm + ReLU as a second
// output, y optional). Whatever variant runs, the outputs must be bitwise those of the separate calls it replaces —
// cc_conv_forward, then cc_add, then cc_batchnorm_eval_forward with relu — because the fused store uses their arithmetic
// (cheapconv/bn_arithmetic.h, cc_add_rn), and the other variants make exactly those calls. Bitwise is right here: the
// convolution's sums are the same launch's in both, and the epilogue's two or three roundings are the same operations.
// Then what the call refuses, and why.
#include "abi_test.h"

#include <cstring>
#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::size_t outputs(const cc_conv_problem& p) { return static_cast<std::size_t>(p.n) * p.k * p.p * p.q; }

std::string kernel_of(const cc_conv_problem& p, const cc_options& o)
{
    char text[128] = "";
    if (cc_conv_kernel_names(&p, CC_CONV_FORWARD, &o, text, sizeof text) != CC_SUCCESS) return "?";
    return text;
}

std::size_t bitwise_differences(const std::vector<float>& got, const std::vector<float>& want)
{
    std::size_t bad = 0;
    for (std::size_t i = 0; i < got.size(); ++i) bad += std::memcmp(&got[i], &want[i], sizeof(float)) != 0 ? 1 : 0;
    return bad;
}

// Batch-norm parameters that put the normalised values on both sides of 0 (so the ReLU matters) with some running
// variances below eps's scale (so eps matters).
struct BatchNorm {
    std::vector<float> gamma, beta, mean, var;
    float eps = 1e-5f;
    explicit BatchNorm(int channels)
        : gamma(random_values(channels, 61, -1.5f, 1.5f)), beta(random_values(channels, 62, -0.5f, 0.5f)),
          mean(random_values(channels, 63, -0.3f, 0.3f)), var(random_values(channels, 64, 1e-6f, 2.0f))
    {
    }
};

// Every epilogue on one problem and options: residual or not x activated (with y, or y NULL) or not.
void check_problem(Tally& t, const cc_conv_problem& p, const cc_options& options, const std::string& name)
{
    const std::vector<float> x = random_values(static_cast<std::size_t>(p.n) * p.c * p.h * p.w, 71),
                             w = random_values(static_cast<std::size_t>(p.k) * (p.c / p.groups) * p.r * p.s, 72),
                             residual = random_values(outputs(p), 73);
    const BatchNorm bn(p.k);
    const std::string label = name + " (" + kernel_of(p, options) + ")";

    // The separate calls: y, y + residual, and each normalised.
    std::vector<float> plain(outputs(p), kNaN), summed(outputs(p), kNaN), plain_bn(outputs(p), kNaN), summed_bn(outputs(p), kNaN);
    const cc_elementwise_problem length{static_cast<int64_t>(outputs(p))};
    const cc_batchnorm_problem bp{.n = p.n, .c = p.k, .h = p.p, .w = p.q, .eps = bn.eps, .momentum = 0.0f, .relu = 1, .accumulate = 0};
    const bool separate_ok =
        cc_conv_forward(emulator(), &p, &options, x.data(), w.data(), plain.data(), nullptr, 0, nullptr) == CC_SUCCESS &&
        cc_add(emulator(), &length, plain.data(), residual.data(), summed.data(), nullptr) == CC_SUCCESS &&
        cc_batchnorm_eval_forward(emulator(), &bp, plain.data(), bn.gamma.data(), bn.beta.data(), bn.mean.data(), bn.var.data(),
                                  plain_bn.data(), nullptr) == CC_SUCCESS &&
        cc_batchnorm_eval_forward(emulator(), &bp, summed.data(), bn.gamma.data(), bn.beta.data(), bn.mean.data(), bn.var.data(),
                                  summed_bn.data(), nullptr) == CC_SUCCESS;
    t.check(separate_ok, label + ": the separate calls run");
    if (!separate_ok) return;

    for (const bool with_residual : {false, true})
        for (const int activation : {0, 1, 2}) { // 0: y only; 1: y and activated; 2: activated only (y NULL)
            cc_conv_epilogue e{};
            e.residual = with_residual ? residual.data() : nullptr;
            std::vector<float> y(outputs(p), kNaN), activated(outputs(p), kNaN);
            if (activation > 0) {
                e.bn_gamma = bn.gamma.data();
                e.bn_beta = bn.beta.data();
                e.bn_mean = bn.mean.data();
                e.bn_var = bn.var.data();
                e.bn_eps = bn.eps;
                e.activated = activated.data();
            }
            const std::string what = label + (with_residual ? ", residual" : "") +
                                     (activation == 0 ? ", y" : activation == 1 ? ", y and activated" : ", activated only (y NULL)");
            expect_status(t,
                          cc_conv_forward_fused(emulator(), &p, &options, &e, x.data(), w.data(), activation == 2 ? nullptr : y.data(),
                                                nullptr, 0, nullptr),
                          CC_SUCCESS, {}, what);
            if (activation < 2) {
                const std::size_t bad = bitwise_differences(y, with_residual ? summed : plain);
                t.check(bad == 0, what + ": y is bitwise the separate calls' (" + std::to_string(bad) + " of " + std::to_string(y.size()) +
                                      " differ)");
            }
            if (activation > 0) {
                const std::size_t bad = bitwise_differences(activated, with_residual ? summed_bn : plain_bn);
                t.check(bad == 0, what + ": activated is bitwise relu(eval bn(...)) of the separate calls (" + std::to_string(bad) +
                                      " of " + std::to_string(activated.size()) + " differ)");
            }
        }
}

void test_results(Tally& t)
{
    cc_options tf32{}, fp32{}, direct{};
    fp32.precision = CC_PRECISION_FP32;
    direct.algo = CC_ALGO_DIRECT;
    cc_conv_problem p;
    // The tensor-core kernels, fused: vectorised 1x1 (P*Q % 4 == 0), a 1x1 with stride (4-byte copies), a dense 3x3 over
    // more than one 64-row tile of channels with a partial column tile, a strided grouped 3x3.
    cc_conv_init(&p, 2, 8, 6, 6, 12, 1, 1, 0, 0, 1, 1, 1);
    check_problem(t, p, tf32, "tensor cores 1x1");
    cc_conv_init(&p, 2, 16, 9, 7, 24, 1, 1, 0, 0, 2, 2, 1);
    check_problem(t, p, tf32, "tensor cores 1x1 stride 2");
    cc_conv_init(&p, 2, 16, 7, 9, 72, 3, 3, 1, 1, 1, 1, 1);
    check_problem(t, p, tf32, "tensor cores 3x3, 72 filters");
    cc_conv_init(&p, 2, 32, 8, 9, 32, 3, 3, 1, 1, 2, 2, 2);
    check_problem(t, p, tf32, "tensor cores grouped 3x3 stride 2");
    // The fallback: the same definition by separate launches.
    cc_conv_init(&p, 2, 8, 6, 6, 12, 1, 1, 0, 0, 1, 1, 1);
    check_problem(t, p, fp32, "fp32 GEMM 1x1 (fallback)");
    cc_conv_init(&p, 2, 6, 7, 9, 4, 3, 3, 1, 1, 2, 2, 2);
    check_problem(t, p, direct, "direct grouped 3x3 (fallback)");
    cc_conv_init(&p, 2, 8, 10, 11, 8, 3, 3, 1, 1, 1, 1, 8);
    check_problem(t, p, tf32, "depthwise 3x3, AUTO takes the tiled kernels (fallback)");
}

void test_refusals(Tally& t)
{
    cc_conv_problem p;
    cc_conv_init(&p, 2, 8, 6, 6, 8, 1, 1, 0, 0, 1, 1, 1);
    std::vector<float> x(2 * 8 * 36), w(8 * 8), y(2 * 8 * 36), r(2 * 8 * 36), z(2 * 8 * 36), gamma(8), beta(8), mean(8), var(8, 1.0f);
    const auto fused = [&](const cc_conv_epilogue* e, float* out) {
        return cc_conv_forward_fused(emulator(), &p, nullptr, e, x.data(), w.data(), out, nullptr, 0, nullptr);
    };
    const auto with_bn = [&]() {
        cc_conv_epilogue e{};
        e.bn_gamma = gamma.data();
        e.bn_beta = beta.data();
        e.bn_mean = mean.data();
        e.bn_var = var.data();
        e.bn_eps = 1e-5f;
        e.activated = z.data();
        return e;
    };
    expect_status(t, fused(nullptr, y.data()), CC_ERROR_INVALID_VALUE, {"cc_conv_forward_fused", "epilogue is NULL"}, "no epilogue");
    cc_conv_epilogue none{};
    expect_status(t, fused(&none, nullptr), CC_ERROR_INVALID_VALUE, {"y and epilogue->activated are both NULL"}, "nothing to write");
    cc_conv_epilogue e = with_bn();
    e.bn_var = nullptr;
    expect_status(t, fused(&e, y.data()), CC_ERROR_INVALID_VALUE, {"epilogue->activated is set but epilogue->bn_var is NULL"},
                  "activated without a batch-norm parameter");
    e = with_bn();
    e.activated = nullptr;
    expect_status(t, fused(&e, y.data()), CC_ERROR_INVALID_VALUE, {"epilogue->bn_gamma is set but epilogue->activated is NULL"},
                  "batch-norm parameters without activated");
    for (const float eps : {-1.0f, kNaN, std::numeric_limits<float>::infinity()}) {
        e = with_bn();
        e.bn_eps = eps;
        expect_status(t, fused(&e, y.data()), CC_ERROR_INVALID_VALUE, {"epilogue->bn_eps"}, "eps " + std::to_string(eps));
    }
    e = with_bn();
    e.activated = y.data();
    expect_status(t, fused(&e, y.data()), CC_ERROR_INVALID_VALUE, {"y overlaps epilogue->activated"}, "activated is y");
    e = with_bn();
    e.residual = z.data();
    expect_status(t, fused(&e, y.data()), CC_ERROR_INVALID_VALUE, {"epilogue->activated overlaps epilogue->residual"},
                  "residual is activated");
    cc_conv_epilogue residual_is_y{};
    residual_is_y.residual = y.data();
    expect_status(t, fused(&residual_is_y, y.data()), CC_ERROR_INVALID_VALUE, {"y overlaps epilogue->residual"}, "residual is y");
    e = with_bn();
    e.bn_mean = z.data() + 3;
    expect_status(t, fused(&e, nullptr), CC_ERROR_INVALID_VALUE, {"epilogue->activated overlaps epilogue->bn_mean"},
                  "a parameter inside activated");
    cc_conv_epilogue misaligned{};
    misaligned.residual = reinterpret_cast<const float*>(reinterpret_cast<const char*>(r.data()) + 2);
    expect_status(t, fused(&misaligned, y.data()), CC_ERROR_INVALID_VALUE, {"epilogue->residual", "not aligned"}, "misaligned residual");
    cc_options accumulate{};
    accumulate.accumulate = 1;
    expect_status(t, cc_conv_forward_fused(emulator(), &p, &accumulate, &none, x.data(), w.data(), y.data(), nullptr, 0, nullptr),
                  CC_ERROR_INVALID_VALUE, {"cc_conv_forward_fused", "options->accumulate"}, "accumulate");
}

} // namespace

void run_conv_fused_tests(Tally& t)
{
    if (!kUnderTsan) test_results(t); // element-wise stores, nothing shared between blocks: TSan runs the refusals only
    test_refusals(t);
}

} // namespace cc_abi_test
