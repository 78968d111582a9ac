// cc_conv_backward: both gradients of a convolution, one launch where the data and weight variants are of one family.
// For every variant its dx and dw must be bitwise those of cc_conv_backward_data and cc_conv_backward_weight called
// apart (the fused kernels run each pass's own blocks with its own plan: the same products, summed in the same order,
// split-K included), with accumulate on and off, and with either output NULL; and within the double-precision
// reference's bounds (conv_tests.cpp). That it is one launch is checked on the CUDA runtime against the fake driver
// (cuda_runtime_tests.cpp), whose log lists every launch; here cc_conv_kernel_names says which kernel(s) run.
#include "abi_test.h"

#include <cstring>
#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::string kernels_of(const cc_conv_problem& p, cc_conv_pass pass, const cc_options& o)
{
    char text[160] = "";
    if (cc_conv_kernel_names(&p, pass, &o, text, sizeof text) != CC_SUCCESS) return "?";
    return text;
}

std::size_t workspace_bytes(const cc_conv_problem& p, cc_conv_pass pass, const cc_options& o)
{
    std::size_t bytes = 0;
    cc_conv_workspace_size(&p, pass, &o, &bytes);
    return bytes;
}

// How many elements of `got` differ from `want` in any bit.
std::size_t differing(const std::vector<float>& got, const std::vector<float>& want)
{
    std::size_t bad = 0;
    for (std::size_t i = 0; i < got.size(); ++i) bad += std::memcmp(&got[i], &want[i], sizeof(float)) != 0 ? 1 : 0;
    return bad;
}

void expect_same_bits(Tally& t, const std::vector<float>& got, const std::vector<float>& want, const std::string& what)
{
    const std::size_t bad = differing(got, want);
    t.check(bad == 0, what + " (" + std::to_string(bad) + " of " + std::to_string(got.size()) + " differ)");
}

// Whether the split weight gradient's arrival counters are back at zero (the first CC_SPLIT_COUNTER_BYTES).
bool counters_zero(const std::vector<float>& workspace)
{
    const std::size_t words = std::min<std::size_t>(workspace.size(), CC_SPLIT_COUNTER_BYTES / sizeof(float));
    for (std::size_t i = 0; i < words; ++i) {
        unsigned bits = 0;
        std::memcpy(&bits, &workspace[i], sizeof bits);
        if (bits != 0) return false;
    }
    return true;
}

struct Case {
    cc_conv_problem p;
    cc_options options;
    const char* name;
    const char* kernels; // what cc_conv_kernel_names says for CC_CONV_BACKWARD
    bool splits = false; // the weight gradient is split (its workspace holds the partial sums): checked
};

// thorough: also a second call on the same workspace, each output alone, and the reference; without it (the TSan build)
// the fused call against the two separate ones only.
void check_case(Tally& t, const Case& c, bool thorough = true)
{
    const cc_conv_problem& p = c.p;
    const std::size_t inputs = static_cast<std::size_t>(p.n) * p.c * p.h * p.w, weights = static_cast<std::size_t>(p.k) * (p.c / p.groups) * p.r * p.s,
                      outputs = static_cast<std::size_t>(p.n) * p.k * p.p * p.q;
    const ConvTensors in{random_values(inputs, 71), random_values(weights, 72), random_values(outputs, 73)};
    const std::string kernels = kernels_of(p, CC_CONV_BACKWARD, c.options);
    t.check(kernels == c.kernels, std::string(c.name) + ": CC_CONV_BACKWARD runs " + c.kernels + " (got " + kernels + ")");
    const std::string label = std::string(c.name) + " (" + kernels + ")";
    const std::size_t fused_bytes = workspace_bytes(p, CC_CONV_BACKWARD, c.options);
    cc_options weight_options = c.options;
    weight_options.accumulate = 0;
    if (c.splits) t.check(fused_bytes > CC_SPLIT_COUNTER_BYTES, label + ": the weight gradient is split (partial sums in the workspace)");
    t.check(fused_bytes >= workspace_bytes(p, CC_CONV_BACKWARD_WEIGHT, weight_options) &&
                fused_bytes >= workspace_bytes(p, CC_CONV_BACKWARD_DATA, c.options),
            label + ": the CC_CONV_BACKWARD workspace holds either pass's");

    // Apart: the two calls of the ABI, each with its own workspace query.
    std::vector<float> dx_before = random_values(inputs, 74);
    for (std::size_t i = 0; i < inputs; i += 3) dx_before[i] = -0.0f; // -0 + +0 must become +0, as the separate add makes it
    std::vector<float> dx_apart = c.options.accumulate ? dx_before : std::vector<float>(inputs, kNaN), dw_apart(weights, kNaN);
    std::vector<float> data_ws = workspace_of(workspace_bytes(p, CC_CONV_BACKWARD_DATA, c.options)),
                       weight_ws = workspace_of(workspace_bytes(p, CC_CONV_BACKWARD_WEIGHT, weight_options));
    expect_status(t,
                  cc_conv_backward_data(emulator(), &p, &c.options, in.dy.data(), in.w.data(), dx_apart.data(), data_ws.data(),
                                        data_ws.size() * sizeof(float), nullptr),
                  CC_SUCCESS, {}, label + ": cc_conv_backward_data");
    expect_status(t,
                  cc_conv_backward_weight(emulator(), &p, &weight_options, in.x.data(), in.dy.data(), dw_apart.data(), weight_ws.data(),
                                          weight_ws.size() * sizeof(float), nullptr),
                  CC_SUCCESS, {}, label + ": cc_conv_backward_weight");

    // Together: one call, one workspace (its counters zero, the rest NaN).
    std::vector<float> ws = workspace_of(fused_bytes);
    std::vector<float> dx = c.options.accumulate ? dx_before : std::vector<float>(inputs, kNaN), dw(weights, kNaN);
    expect_status(t,
                  cc_conv_backward(emulator(), &p, &c.options, in.x.data(), in.dy.data(), in.w.data(), dx.data(), dw.data(), ws.data(),
                                   fused_bytes, nullptr),
                  CC_SUCCESS, {}, label + ": cc_conv_backward");
    expect_same_bits(t, dx, dx_apart, label + ": dx bitwise that of cc_conv_backward_data");
    expect_same_bits(t, dw, dw_apart, label + ": dw bitwise that of cc_conv_backward_weight");
    t.check(counters_zero(ws), label + ": the split counters are zero again after the call");
    if (!thorough) return;

    // Again on the same workspace: a second call (a captured step replayed) gives the same bits.
    std::vector<float> dx_again = c.options.accumulate ? dx_before : std::vector<float>(inputs, kNaN), dw_again(weights, kNaN);
    expect_status(t,
                  cc_conv_backward(emulator(), &p, &c.options, in.x.data(), in.dy.data(), in.w.data(), dx_again.data(), dw_again.data(),
                                   ws.data(), fused_bytes, nullptr),
                  CC_SUCCESS, {}, label + ": cc_conv_backward again");
    t.check(differing(dx_again, dx) == 0 && differing(dw_again, dw) == 0, label + ": a second call on the same workspace, the same bits");

    // One output NULL: exactly the other pass's call.
    std::vector<float> dx_only = c.options.accumulate ? dx_before : std::vector<float>(inputs, kNaN), dw_only(weights, kNaN);
    std::vector<float> ws_only = workspace_of(fused_bytes);
    expect_status(t,
                  cc_conv_backward(emulator(), &p, &c.options, nullptr, in.dy.data(), in.w.data(), dx_only.data(), nullptr, ws_only.data(),
                                   fused_bytes, nullptr),
                  CC_SUCCESS, {}, label + ": cc_conv_backward, dw NULL (and x NULL: not read)");
    expect_same_bits(t, dx_only, dx_apart, label + ": dw NULL: dx bitwise that of cc_conv_backward_data");
    expect_status(t,
                  cc_conv_backward(emulator(), &p, &c.options, in.x.data(), in.dy.data(), nullptr, nullptr, dw_only.data(), ws_only.data(),
                                   fused_bytes, nullptr),
                  CC_SUCCESS, {}, label + ": cc_conv_backward, dx NULL (and w NULL: not read)");
    expect_same_bits(t, dw_only, dw_apart, label + ": dx NULL: dw bitwise that of cc_conv_backward_weight");

    // And against the definition in double (overwriting only: the accumulating dx is checked bitwise above, and the
    // separate call's own accumulation in conv_accumulate_tests.cpp).
    if (c.options.accumulate) return;
    Sums y(outputs), want_dx(inputs), want_dw(weights);
    conv_reference(p, in, y, want_dx, want_dw);
    const bool tf32 = kernels.find("implicit_gemm") != std::string::npos;
    if (tf32) {
        expect_sums_tf32(t, dx, want_dx, label + ": dx within the tf32 bound of the reference");
        expect_sums_tf32(t, dw, want_dw, label + ": dw within the tf32 bound of the reference");
    } else {
        expect_sums(t, dx, want_dx, label + ": dx within the fp32 bound of the reference");
        expect_sums(t, dw, want_dw, label + ": dw within the fp32 bound of the reference");
    }
}

cc_conv_problem problem(int n, int c, int h, int w, int k, int r, int pad, int stride, int groups)
{
    cc_conv_problem p;
    cc_conv_init(&p, n, c, h, w, k, r, r, pad, pad, stride, stride, groups);
    return p;
}

cc_options algo(int a)
{
    cc_options o{};
    o.algo = a;
    return o;
}

cc_options with_split(cc_options o)
{
    o.split_chunk = 24; // several splits of the positions: the fused launch's last blocks reduce them
    return o;
}

cc_options fp32()
{
    cc_options o{};
    o.precision = CC_PRECISION_FP32;
    return o;
}

// One small case per fused kernel, the weight gradient split (its blocks meet at the arrival counters): what the TSan
// build runs, the fused call against the two separate ones only (its tracking of every access costs minutes), so that
// each fused kernel is launched under both sanitizers.
void test_each_fused_kernel(Tally& t)
{
    const Case cases[] = {
        {problem(2, 8, 6, 6, 12, 1, 0, 1, 1), with_split({}), "tensor cores 1x1, split-K", "cc_implicit_gemm_backward_1x1_kernel", true},
        {problem(1, 9, 5, 7, 10, 3, 1, 1, 1), with_split({}), "tensor cores 3x3, odd sizes, split-K", "cc_implicit_gemm_backward_3x3_kernel", true},
        {problem(1, 16, 9, 9, 16, 3, 1, 2, 2), with_split(algo(CC_ALGO_IMPLICIT_GEMM)), "tensor cores grouped 3x3 stride 2, split-K",
         "cc_implicit_gemm_backward_3x3_stride2_kernel", true},
        {problem(1, 8, 6, 7, 8, 3, 1, 1, 8), algo(CC_ALGO_TILED), "tiled depthwise 3x3", "cc_conv2d_tiled_backward_s1_kernel"},
        {problem(1, 8, 6, 7, 8, 3, 1, 2, 4), algo(CC_ALGO_TILED), "tiled grouped 3x3 stride 2", "cc_conv2d_tiled_backward_s2_kernel"},
    };
    for (const Case& c : cases) check_case(t, c, false);
}

void test_variants(Tally& t)
{
    const cc_options tf32{}, implicit = algo(CC_ALGO_IMPLICIT_GEMM), tiled = algo(CC_ALGO_TILED), direct = algo(CC_ALGO_DIRECT);
    const Case cases[] = {
        {problem(2, 8, 6, 6, 12, 1, 0, 1, 1), tf32, "tensor cores 1x1 (vectorized)", "cc_implicit_gemm_backward_1x1_kernel"},
        {problem(3, 5, 7, 5, 9, 1, 0, 1, 1), tf32, "tensor cores 1x1, odd sizes", "cc_implicit_gemm_backward_1x1_kernel"},
        {problem(2, 8, 6, 6, 12, 1, 0, 1, 1), with_split(tf32), "tensor cores 1x1, split-K", "cc_implicit_gemm_backward_1x1_kernel", true},
        {problem(2, 16, 7, 9, 16, 3, 1, 1, 1), tf32, "tensor cores 3x3", "cc_implicit_gemm_backward_3x3_kernel"},
        {problem(1, 9, 5, 7, 10, 3, 1, 1, 1), with_split(tf32), "tensor cores 3x3, odd sizes, split-K", "cc_implicit_gemm_backward_3x3_kernel", true},
        {problem(2, 16, 7, 9, 16, 3, 2, 1, 2), implicit, "tensor cores grouped 3x3 pad 2", "cc_implicit_gemm_backward_3x3_kernel"},
        {problem(2, 16, 8, 9, 16, 3, 1, 2, 2), implicit, "tensor cores grouped 3x3 stride 2", "cc_implicit_gemm_backward_3x3_stride2_kernel"},
        {problem(2, 16, 8, 9, 16, 3, 1, 2, 2), with_split(implicit), "tensor cores grouped 3x3 stride 2, split-K",
         "cc_implicit_gemm_backward_3x3_stride2_kernel", true},
        {problem(2, 8, 10, 11, 8, 3, 1, 1, 8), tiled, "tiled depthwise 3x3", "cc_conv2d_tiled_backward_s1_kernel"},
        {problem(2, 8, 10, 11, 8, 3, 1, 2, 4), tiled, "tiled grouped 3x3 stride 2", "cc_conv2d_tiled_backward_s2_kernel"},
        // Planes of 24 x 24 outputs and more: several blocks' worth of strips, so the tiled weight gradient splits them.
        {problem(2, 8, 32, 32, 8, 3, 1, 1, 8), tiled, "tiled depthwise 3x3, split weight gradient", "cc_conv2d_tiled_backward_s1_kernel", true},
        {problem(2, 8, 48, 48, 8, 3, 1, 2, 4), tiled, "tiled grouped 3x3 stride 2, split weight gradient", "cc_conv2d_tiled_backward_s2_kernel",
         true},
        {problem(2, 8, 64, 64, 8, 3, 1, 2, 8), tiled, "tiled depthwise 3x3 stride 2, split weight gradient", "cc_conv2d_tiled_backward_s2_kernel",
         true},
        {problem(3, 6, 9, 13, 5, 3, 1, 1, 1), fp32(), "tiled dense 3x3 (fp32)", "cc_conv2d_tiled_backward_s1_kernel"},
        {problem(2, 4, 9, 7, 6, 3, 0, 2, 2), fp32(), "tiled grouped 3x3 stride 2 no padding (fp32)", "cc_conv2d_tiled_backward_s2_kernel"},
        // No fused form: the two calls' launches in turn, the same bits.
        {problem(2, 5, 7, 6, 7, 1, 0, 2, 1), tf32, "1x1 stride 2 (GEMM data gradient, tensor-core weight gradient)",
         "cc_pointwise_backward_data_kernel cc_implicit_gemm_backward_weight_1x1_kernel"},
        {problem(2, 6, 7, 9, 4, 3, 1, 2, 2), direct, "direct grouped 3x3 stride 2",
         "cc_conv2d_backward_data_kernel cc_conv2d_backward_weight_kernel"},
    };
    for (Case c : cases) {
        check_case(t, c);
        c.options.accumulate = 1;
        const std::string name = std::string(c.name) + ", accumulating into dx";
        c.name = name.c_str();
        check_case(t, c);
    }
}

void test_refusals(Tally& t)
{
    const cc_conv_problem p = problem(2, 4, 5, 5, 4, 3, 1, 1, 1);
    std::vector<float> x(2 * 4 * 25), w(4 * 4 * 9), dy(2 * 4 * 25), dx(2 * 4 * 25), dw(4 * 4 * 9);
    expect_status(t, cc_conv_backward(emulator(), &p, nullptr, x.data(), dy.data(), w.data(), nullptr, nullptr, nullptr, 0, nullptr),
                  CC_ERROR_INVALID_VALUE, {"cc_conv_backward", "dx and dw are both NULL"}, "neither output");
    expect_status(t, cc_conv_backward(emulator(), &p, nullptr, x.data(), dy.data(), w.data(), dx.data(), x.data(), nullptr, 0, nullptr),
                  CC_ERROR_INVALID_VALUE, {"cc_conv_backward", "dw", "x"}, "dw overlapping x");
    expect_status(t, cc_conv_backward(emulator(), &p, nullptr, x.data(), dy.data(), w.data(), dx.data(), dx.data(), nullptr, 0, nullptr),
                  CC_ERROR_INVALID_VALUE, {"cc_conv_backward", "dx", "dw"}, "dx overlapping dw");
    expect_status(t, cc_conv_backward(emulator(), &p, nullptr, nullptr, dy.data(), w.data(), dx.data(), dw.data(), nullptr, 0, nullptr),
                  CC_ERROR_INVALID_VALUE, {"cc_conv_backward", "x"}, "x NULL with both outputs");
    // A tensor-core 1x1 weight gradient split in chunks of 7 of its 72 positions: 11 partial dw after the counters.
    const cc_conv_problem pointwise = problem(2, 8, 6, 6, 12, 1, 0, 1, 1);
    std::vector<float> px(2 * 8 * 36), pw(12 * 8), pdy(2 * 12 * 36), pdx(2 * 8 * 36), pdw(12 * 8);
    std::size_t bytes = 0;
    cc_options chunk{};
    chunk.split_chunk = 7;
    expect_status(t, cc_conv_workspace_size(&pointwise, CC_CONV_BACKWARD, &chunk, &bytes), CC_SUCCESS, {}, "the CC_CONV_BACKWARD workspace query");
    t.check(bytes == CC_SPLIT_COUNTER_BYTES + 11 * 12 * 8 * sizeof(float),
            "the CC_CONV_BACKWARD workspace of a split tensor-core weight gradient: its counters and 11 partial dw");
    expect_status(t,
                  cc_conv_backward(emulator(), &pointwise, &chunk, px.data(), pdy.data(), pw.data(), pdx.data(), pdw.data(), nullptr, 0, nullptr),
                  CC_ERROR_WORKSPACE, {"cc_conv_backward", "cc_conv_workspace_size"}, "a split weight gradient without its workspace");
    expect_status(t, cc_conv_workspace_size(&p, static_cast<cc_conv_pass>(5), nullptr, &bytes), CC_ERROR_INVALID_VALUE,
                  {"CC_CONV_FORWARD_BN_STATS", "got 5"}, "a pass past CC_CONV_FORWARD_BN_STATS");
}

} // namespace

void run_conv_backward_tests(Tally& t)
{
    if (kUnderTsan) test_each_fused_kernel(t);
    else test_variants(t);
    test_refusals(t);
}

} // namespace cc_abi_test
