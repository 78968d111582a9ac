// The convolution family of the C ABI on the emulator: descriptor refusals and their messages, the
// variant choice (direct, pointwise GEMM, split-K), workspaces, and the three passes against the
// textbook loops in double.
#include "abi_test.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::size_t input_count(const cc_conv_problem& p) { return static_cast<std::size_t>(p.n) * p.c * p.h * p.w; }
std::size_t weight_count(const cc_conv_problem& p) { return static_cast<std::size_t>(p.k) * (p.c / p.groups) * p.r * p.s; }
std::size_t output_count(const cc_conv_problem& p) { return static_cast<std::size_t>(p.n) * p.k * p.p * p.q; }

std::string kernel_names(const cc_conv_problem& p, cc_conv_pass pass, const cc_options* options)
{
    char text[128] = "";
    if (cc_conv_kernel_names(&p, pass, options, text, sizeof text) != CC_SUCCESS) return std::string("failed: ") + cc_last_error();
    return text;
}

} // namespace

// y, dx and dw of a grouped cross-correlation, by definition.
void conv_reference(const cc_conv_problem& p, const ConvTensors& in, Sums& y, Sums& dx, Sums& dw)
{
    const int cg = p.c / p.groups, kg = p.k / p.groups;
    for (int n = 0; n < p.n; ++n)
        for (int k = 0; k < p.k; ++k)
            for (int oh = 0; oh < p.p; ++oh)
                for (int ow = 0; ow < p.q; ++ow)
                    for (int ci = 0; ci < cg; ++ci)
                        for (int r = 0; r < p.r; ++r)
                            for (int s = 0; s < p.s; ++s) {
                                const int h = oh * p.stride_h - p.pad_h + r, wi = ow * p.stride_w - p.pad_w + s;
                                if (h < 0 || h >= p.h || wi < 0 || wi >= p.w) continue;
                                const std::size_t yi = ((static_cast<std::size_t>(n) * p.k + k) * p.p + oh) * p.q + ow;
                                const std::size_t xi = ((static_cast<std::size_t>(n) * p.c + k / kg * cg + ci) * p.h + h) * p.w + wi;
                                const std::size_t wj = ((static_cast<std::size_t>(k) * cg + ci) * p.r + r) * p.s + s;
                                y.add(yi, in.x[xi], in.w[wj]);
                                dx.add(xi, in.dy[yi], in.w[wj]);
                                dw.add(wj, in.dy[yi], in.x[xi]);
                            }
}

// Runs the three passes with `options` (outputs NaN-poisoned first) and checks them against the reference, with
// the tf32 bound where the tensor-core kernels ran the pass and the fp32 bound elsewhere. Shared with the tiled tests.
void check_conv_passes(Tally& t, const cc_conv_problem& p, const cc_options* options, const std::string& name)
{
    ConvTensors in{random_values(input_count(p), 1), random_values(weight_count(p), 2), random_values(output_count(p), 3)};
    std::vector<float> y(output_count(p), kNaN), dx(input_count(p), kNaN), dw(weight_count(p), kNaN);
    const cc_conv_pass passes[] = {CC_CONV_FORWARD, CC_CONV_BACKWARD_DATA, CC_CONV_BACKWARD_WEIGHT};
    std::vector<float> workspace;
    for (cc_conv_pass pass : passes) {
        size_t bytes = 0;
        cc_conv_workspace_size(&p, pass, options, &bytes);
        workspace = workspace_of(bytes);
        void* ws = bytes > 0 ? workspace.data() : nullptr;
        cc_status s = CC_ERROR_INTERNAL;
        if (pass == CC_CONV_FORWARD) s = cc_conv_forward(emulator(), &p, options, in.x.data(), in.w.data(), y.data(), ws, bytes, nullptr);
        if (pass == CC_CONV_BACKWARD_DATA)
            s = cc_conv_backward_data(emulator(), &p, options, in.dy.data(), in.w.data(), dx.data(), ws, bytes, nullptr);
        if (pass == CC_CONV_BACKWARD_WEIGHT)
            s = cc_conv_backward_weight(emulator(), &p, options, in.x.data(), in.dy.data(), dw.data(), ws, bytes, nullptr);
        expect_status(t, s, CC_SUCCESS, {}, name + ": pass " + std::to_string(pass));
    }
    Sums ry(y.size()), rdx(dx.size()), rdw(dw.size());
    conv_reference(p, in, ry, rdx, rdw);
    const auto expect = [&](cc_conv_pass pass, const std::vector<float>& got, const Sums& want, const char* what) {
        const std::string kernel = kernel_names(p, pass, options);
        const std::string label = name + ": " + what + " on " + kernel;
        if (kernel.find("implicit_gemm") != std::string::npos) expect_sums_tf32(t, got, want, label);
        else expect_sums(t, got, want, label);
    };
    expect(CC_CONV_FORWARD, y, ry, "forward");
    expect(CC_CONV_BACKWARD_DATA, dx, rdx, "backward-data");
    expect(CC_CONV_BACKWARD_WEIGHT, dw, rdw, "backward-weight");
}

namespace {

void check_passes(Tally& t, const cc_conv_problem& p, const cc_options* options, const std::string& name)
{
    check_conv_passes(t, p, options, name);
}

void test_refusals(Tally& t)
{
    cc_conv_problem p;
    const cc_status bad = CC_ERROR_INVALID_VALUE;
    expect_status(t, cc_conv_init(&p, 2, 32, 8, 8, 32, 3, 3, 1, 1, 1, 1, 3), bad, {"cc_conv_init", "groups (3) must divide c (32)"},
                  "groups not dividing c");
    expect_status(t, cc_conv_init(&p, 2, 6, 8, 8, 8, 3, 3, 1, 1, 1, 1, 3), bad, {"groups (3) must divide k (8)"}, "groups not dividing k");
    expect_status(t, cc_conv_init(&p, 0, 6, 8, 8, 6, 3, 3, 1, 1, 1, 1, 1), bad, {"n must be positive, got 0"}, "n = 0");
    expect_status(t, cc_conv_init(&p, 1, 6, 8, 8, 6, 3, 3, 1, 1, 0, 1, 1), bad, {"stride_h must be positive, got 0"}, "stride 0");
    expect_status(t, cc_conv_init(&p, 1, 6, 8, 8, 6, 3, 3, -1, 1, 1, 1, 1), bad, {"pad_h must not be negative, got -1"}, "pad -1");
    expect_status(t, cc_conv_init(&p, 1, 6, 2, 8, 6, 5, 3, 0, 1, 1, 1, 1), bad, {"5x3 filter", "larger than the padded 2x10 input"},
                  "filter larger than the input");
    expect_status(t, cc_conv_init(&p, 65536, 256, 256, 256, 256, 1, 1, 0, 0, 1, 1, 1), bad, {"x (n*c*h*w)", "2^31-1"},
                  "an input over 2^31-1 elements");
    expect_status(t, cc_conv_init(&p, 2147483647, 2147483647, 2147483647, 2147483647, 1, 1, 1, 0, 0, 1, 1, 1), bad,
                  {"x (n*c*h*w) has 9223372036854775807 elements"}, "sizes whose product overflows 64 bits (saturated)");
    expect_status(t, cc_conv_init(nullptr, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1), bad, {"problem is NULL"}, "cc_conv_init(NULL)");
    expect_status(t, cc_conv_validate(nullptr), bad, {"cc_conv_validate: problem is NULL"}, "cc_conv_validate(NULL)");

    cc_conv_init(&p, 2, 8, 9, 7, 8, 3, 3, 1, 1, 2, 2, 4);
    cc_conv_problem wrong = p;
    wrong.p += 1;
    expect_status(t, cc_conv_validate(&wrong), bad, {"p x q = 6x4 does not follow", "give 5x4"}, "an inconsistent p");
    wrong = p;
    wrong.layout = 1;
    expect_status(t, cc_conv_validate(&wrong), CC_ERROR_NOT_SUPPORTED, {"layout 1 is not implemented"}, "layout NHWC");
    wrong = p;
    wrong.dtype = 1;
    expect_status(t, cc_conv_validate(&wrong), CC_ERROR_NOT_SUPPORTED, {"dtype 1 is not implemented"}, "dtype other than fp32");

    std::vector<float> x(input_count(p)), w(weight_count(p)), y(output_count(p));
    expect_status(t, cc_conv_forward(nullptr, &p, nullptr, x.data(), w.data(), y.data(), nullptr, 0, nullptr), bad,
                  {"cc_conv_forward: handle is NULL"}, "NULL handle");
    expect_status(t, cc_conv_forward(emulator(), &p, nullptr, nullptr, w.data(), y.data(), nullptr, 0, nullptr), bad,
                  {"cc_conv_forward: x is NULL"}, "NULL x");
    const float* misaligned = reinterpret_cast<const float*>(reinterpret_cast<const char*>(x.data()) + 2);
    expect_status(t, cc_conv_forward(emulator(), &p, nullptr, misaligned, w.data(), y.data(), nullptr, 0, nullptr), bad,
                  {"x (", "not aligned"}, "misaligned x");
    expect_status(t, cc_conv_forward(emulator(), &p, nullptr, x.data(), w.data(), x.data() + 1, nullptr, 0, nullptr), bad,
                  {"y overlaps x"}, "y overlapping x");

    cc_options options{};
    options.algo = 7;
    expect_status(t, cc_conv_forward(emulator(), &p, &options, x.data(), w.data(), y.data(), nullptr, 0, nullptr), bad,
                  {"options->algo must be", "got 7"}, "an unknown algo");
    size_t planned = 0;
    options.algo = CC_ALGO_IMPLICIT_GEMM;
    options.precision = CC_PRECISION_FP32;
    expect_status(t, cc_conv_workspace_size(&p, CC_CONV_FORWARD, &options, &planned), CC_ERROR_NOT_SUPPORTED,
                  {"CC_ALGO_IMPLICIT_GEMM runs on tensor cores in tf32", "CC_PRECISION_FP32"}, "CC_ALGO_IMPLICIT_GEMM with fp32");
    options.precision = CC_PRECISION_TF32;
    cc_conv_problem mixed;
    cc_conv_init(&mixed, 2, 8, 9, 7, 8, 3, 3, 1, 1, 2, 1, 4);
    expect_status(t, cc_conv_workspace_size(&mixed, CC_CONV_BACKWARD_DATA, &options, &planned), CC_ERROR_NOT_SUPPORTED,
                  {"CC_ALGO_IMPLICIT_GEMM implements", "r=3 s=3 stride=2x1 pad=1x1 groups=4"},
                  "CC_ALGO_IMPLICIT_GEMM for a 3x3 backward-data pass with strides 2 and 1");
    options.precision = 2;
    expect_status(t, cc_conv_workspace_size(&p, CC_CONV_FORWARD, &options, &planned), bad,
                  {"options->precision must be CC_PRECISION_TF32 (0) or CC_PRECISION_FP32 (1), got 2"}, "an unknown precision");
    options = cc_options{};
    options.algo = CC_ALGO_GEMM;
    expect_status(t, cc_conv_forward(emulator(), &p, &options, x.data(), w.data(), y.data(), nullptr, 0, nullptr),
                  CC_ERROR_NOT_SUPPORTED, {"CC_ALGO_GEMM computes 1x1", "r=3 s=3 groups=4"}, "CC_ALGO_GEMM for a grouped 3x3");
    options = cc_options{};
    options.split_chunk = -1;
    size_t bytes = 0;
    expect_status(t, cc_conv_workspace_size(&p, CC_CONV_BACKWARD_WEIGHT, &options, &bytes), bad, {"split_chunk", "got -1"},
                  "a negative split_chunk");
    expect_status(t, cc_conv_workspace_size(&p, static_cast<cc_conv_pass>(5), nullptr, &bytes), bad, {"pass must be", "got 5"},
                  "an unknown pass");
    expect_status(t, cc_conv_workspace_size(&p, CC_CONV_FORWARD, nullptr, nullptr), bad, {"bytes is NULL"}, "NULL bytes");
}

// Which kernels run: with fp32, pointwise problems go to the GEMM; with tf32 (the default) 1x1 and many-channel 3x3
// problems go to the tensor-core kernels where they implement the pass; a forced split needs a workspace the call
// checks.
void test_variants_and_workspace(Tally& t)
{
    cc_conv_problem pw, grouped, dense;
    cc_conv_init(&pw, 2, 5, 7, 6, 7, 1, 1, 0, 0, 2, 2, 1);
    cc_conv_init(&grouped, 2, 8, 9, 7, 8, 3, 3, 1, 1, 2, 2, 4);
    cc_conv_init(&dense, 2, 16, 9, 7, 8, 3, 3, 1, 1, 1, 1, 2); // 8 channels and 4 filters per group
    cc_options fp32{}, split{}, direct{};
    fp32.precision = CC_PRECISION_FP32;
    split.split_chunk = 5; // 2*4*3 = 24 positions -> 5 splits of 5
    split.precision = CC_PRECISION_FP32;
    direct.algo = CC_ALGO_DIRECT;
    t.check(kernel_names(grouped, CC_CONV_FORWARD, &direct) == "cc_conv2d_forward_kernel", "CC_ALGO_DIRECT keeps a grouped 3x3 direct");
    t.check(kernel_names(pw, CC_CONV_FORWARD, &fp32) == "cc_pointwise_forward_kernel", "fp32: a 1x1 runs the GEMM");
    t.check(kernel_names(pw, CC_CONV_BACKWARD_WEIGHT, &fp32) == "cc_pointwise_backward_weight_kernel",
            "fp32: a short reduction is not split: " + kernel_names(pw, CC_CONV_BACKWARD_WEIGHT, &fp32));
    t.check(kernel_names(pw, CC_CONV_BACKWARD_WEIGHT, &split) == "cc_pointwise_backward_weight_kernel",
            "fp32: a split weight gradient is one launch (it adds its splits itself)");
    t.check(kernel_names(pw, CC_CONV_BACKWARD_DATA, &direct) == "cc_conv2d_backward_data_kernel", "CC_ALGO_DIRECT keeps a 1x1 direct");
    t.check(kernel_names(pw, CC_CONV_FORWARD, nullptr) == "cc_implicit_gemm_forward_1x1_kernel", "tf32: a 1x1 runs on tensor cores");
    t.check(kernel_names(pw, CC_CONV_BACKWARD_DATA, nullptr) == "cc_pointwise_backward_data_kernel",
            "tf32: a stride-2 1x1 backward-data pass (not implemented on tensor cores) runs the GEMM");
    split.precision = CC_PRECISION_TF32;
    t.check(kernel_names(pw, CC_CONV_BACKWARD_WEIGHT, &split) == "cc_implicit_gemm_backward_weight_1x1_kernel",
            "tf32: a split weight gradient is one launch (it adds its splits itself)");
    t.check(kernel_names(dense, CC_CONV_FORWARD, nullptr) == "cc_conv2d_tiled_forward_s1_kernel",
            "tf32: a grouped 3x3 with 4 filters per group runs the tiled kernels: " + kernel_names(dense, CC_CONV_FORWARD, nullptr));
    // Grouped 3x3: the tensor cores from 16 channels and filters per group for the forward pass, from 32 for the
    // backward passes (implicit_gemm_preferred); the tiled kernels below that.
    const auto passes = [](const cc_conv_problem& q) {
        return kernel_names(q, CC_CONV_FORWARD, nullptr) + " " + kernel_names(q, CC_CONV_BACKWARD_DATA, nullptr) + " " +
               kernel_names(q, CC_CONV_BACKWARD_WEIGHT, nullptr);
    };
    dense.k = 16;
    t.check(passes(dense) == "cc_conv2d_tiled_forward_s1_kernel cc_conv2d_tiled_backward_data_s1_kernel "
                             "cc_conv2d_tiled_backward_weight_s1_kernel",
            "tf32: a grouped 3x3 with 8 channels and filters per group runs the tiled kernels: " + passes(dense));
    cc_conv_init(&dense, 2, 32, 9, 7, 32, 3, 3, 1, 1, 1, 1, 2);
    t.check(passes(dense) == "cc_implicit_gemm_forward_3x3_kernel cc_conv2d_tiled_backward_data_s1_kernel "
                             "cc_conv2d_tiled_backward_weight_s1_kernel",
            "tf32: with 16 per group only the forward pass runs on tensor cores: " + passes(dense));
    cc_conv_init(&dense, 2, 64, 9, 7, 64, 3, 3, 1, 1, 2, 2, 2);
    t.check(passes(dense) == "cc_implicit_gemm_forward_3x3_kernel cc_implicit_gemm_backward_data_3x3_stride2_kernel "
                             "cc_implicit_gemm_backward_weight_3x3_kernel",
            "tf32: with 32 per group every pass runs on tensor cores (stride 2: the data gradient on the dilated dy): " + passes(dense));
    cc_conv_init(&dense, 2, 8, 9, 7, 8, 3, 3, 1, 1, 1, 1, 1);
    t.check(passes(dense) == "cc_implicit_gemm_forward_3x3_kernel cc_implicit_gemm_backward_data_3x3_kernel "
                             "cc_implicit_gemm_backward_weight_3x3_kernel",
            "tf32: a dense 3x3 with 8 channels and filters runs every pass on tensor cores: " + passes(dense));

    size_t bytes = 1;
    cc_conv_workspace_size(&pw, CC_CONV_BACKWARD_WEIGHT, nullptr, &bytes);
    t.check(bytes == 0, "no split, no workspace");
    for (int precision : {CC_PRECISION_FP32, CC_PRECISION_TF32}) {
        split.precision = precision;
        cc_conv_workspace_size(&pw, CC_CONV_BACKWARD_WEIGHT, &split, &bytes);
        t.check(bytes == CC_SPLIT_COUNTER_BYTES + 5 * 7 * 5 * sizeof(float),
                "5 splits of a 7x5 weight gradient need the counters and 5*7*5 floats: " + std::to_string(bytes));
    }
    cc_conv_workspace_size(&grouped, CC_CONV_FORWARD, &direct, &bytes);
    t.check(bytes == 0, "the direct kernels need no workspace");
}

void test_workspace_refusals(Tally& t)
{
    cc_conv_problem pw;
    cc_conv_init(&pw, 2, 5, 7, 6, 7, 1, 1, 0, 0, 2, 2, 1);
    cc_options split{};
    split.split_chunk = 5;
    std::vector<float> x(input_count(pw)), dy(output_count(pw)), dw(weight_count(pw));
    std::vector<float> ws = workspace_of(CC_SPLIT_COUNTER_BYTES + 700);
    expect_status(t, cc_conv_backward_weight(emulator(), &pw, &split, x.data(), dy.data(), dw.data(), ws.data(), 66232, nullptr),
                  CC_ERROR_WORKSPACE, {"workspace of 66232 bytes given, 66236 needed; ask cc_conv_workspace_size"}, "a workspace 4 bytes short");
    expect_status(t, cc_conv_backward_weight(emulator(), &pw, &split, x.data(), dy.data(), dw.data(), nullptr, 0, nullptr),
                  CC_ERROR_WORKSPACE, {"workspace is NULL, 66236 bytes needed"}, "a NULL workspace");
    expect_status(t, cc_conv_backward_weight(emulator(), &pw, &split, x.data(), dy.data(), dw.data(), x.data(), 66236, nullptr),
                  CC_ERROR_INVALID_VALUE, {"workspace overlaps x"}, "a workspace overlapping x");
}

// Split or not, the weight gradient is the same sum in a fixed order: bitwise equal across runs.
void test_determinism(Tally& t)
{
    cc_conv_problem pw;
    cc_conv_init(&pw, 3, 9, 10, 10, 6, 1, 1, 0, 0, 1, 1, 1);
    cc_options split{};
    split.split_chunk = 64;
    const std::vector<float> x = random_values(input_count(pw), 7), dy = random_values(output_count(pw), 8);
    std::vector<float> first(weight_count(pw), kNaN), second(weight_count(pw), kNaN);
    size_t bytes = 0;
    cc_conv_workspace_size(&pw, CC_CONV_BACKWARD_WEIGHT, &split, &bytes);
    std::vector<float> ws = workspace_of(bytes);
    const cc_status s1 = cc_conv_backward_weight(emulator(), &pw, &split, x.data(), dy.data(), first.data(), ws.data(), bytes, nullptr);
    const cc_status s2 = cc_conv_backward_weight(emulator(), &pw, &split, x.data(), dy.data(), second.data(), ws.data(), bytes, nullptr);
    t.check(s1 == CC_SUCCESS && s2 == CC_SUCCESS && std::memcmp(first.data(), second.data(), first.size() * sizeof(float)) == 0 &&
                !std::isnan(first[0]),
            "a split weight gradient is bitwise repeatable");
}

} // namespace

void run_conv_tests(Tally& t)
{
    test_refusals(t);
    test_variants_and_workspace(t);
    test_workspace_refusals(t);
    test_determinism(t);

    cc_conv_problem p;
    cc_options direct{}, fp32{}, split{}, split_tf32{}, implicit{};
    direct.algo = CC_ALGO_DIRECT;
    fp32.precision = CC_PRECISION_FP32;
    split.split_chunk = 5;
    split.precision = CC_PRECISION_FP32;
    split_tf32.split_chunk = 5;
    implicit.algo = CC_ALGO_IMPLICIT_GEMM;
    cc_conv_init(&p, 2, 6, 7, 5, 6, 3, 3, 1, 1, 2, 2, 3);
    check_passes(t, p, nullptr, "grouped 3x3 stride 2");
    cc_conv_init(&p, 2, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 4);
    check_passes(t, p, nullptr, "depthwise 3x3");
    cc_conv_init(&p, 1, 4, 5, 6, 8, 3, 2, 0, 1, 1, 2, 2);
    check_passes(t, p, nullptr, "rectangular filter and stride, k = 2c");
    cc_conv_init(&p, 2, 5, 7, 6, 7, 1, 1, 0, 0, 2, 2, 1);
    check_passes(t, p, &fp32, "pointwise stride 2 (fp32 GEMM)");
    check_passes(t, p, &split, "pointwise stride 2 (fp32 GEMM, 5 splits)");
    check_passes(t, p, &direct, "pointwise stride 2 (CC_ALGO_DIRECT)");
    check_passes(t, p, nullptr, "pointwise stride 2 (tf32)");
    check_passes(t, p, &split_tf32, "pointwise stride 2 (tf32, 5 splits)");
    cc_conv_init(&p, 2, 70, 9, 9, 66, 1, 1, 0, 0, 1, 1, 1);
    check_passes(t, p, &fp32, "pointwise 70 -> 66 channels (fp32 GEMM, partial tiles)");
    check_passes(t, p, nullptr, "pointwise 70 -> 66 channels (tf32, partial tiles, 4-byte copies)");
    cc_conv_init(&p, 3, 20, 8, 6, 68, 1, 1, 0, 0, 1, 1, 1);
    check_passes(t, p, nullptr, "pointwise 20 -> 68 channels, 8x6 (tf32, 16-byte copies, partial tiles)");
    cc_conv_init(&p, 2, 16, 9, 7, 16, 3, 3, 1, 1, 2, 2, 2);
    check_passes(t, p, &implicit, "3x3 stride 2, 8 channels per group (CC_ALGO_IMPLICIT_GEMM, every pass)");
    cc_conv_init(&p, 2, 16, 7, 6, 24, 3, 3, 1, 1, 1, 1, 2);
    check_passes(t, p, &implicit, "3x3 stride 1 pad 1, 8 channels and 12 filters per group (CC_ALGO_IMPLICIT_GEMM, every pass)");
    cc_conv_init(&p, 1, 9, 6, 7, 10, 3, 3, 0, 0, 1, 1, 1);
    check_passes(t, p, nullptr, "3x3 stride 1 pad 0, 9 -> 10 channels (tf32, every pass)");
    cc_conv_init(&p, 1, 8, 5, 4, 8, 3, 3, 2, 2, 1, 1, 1);
    check_passes(t, p, nullptr, "3x3 stride 1 pad 2 (tf32, every pass)");
    cc_conv_init(&p, 2, 16, 8, 7, 8, 3, 3, 1, 1, 2, 2, 1);
    check_passes(t, p, nullptr, "3x3 stride 2 pad 1, 8x7 (tf32, every pass; dx's last row gets no window)");
    cc_conv_init(&p, 1, 24, 9, 6, 16, 3, 3, 0, 0, 2, 2, 2);
    check_passes(t, p, &implicit, "3x3 stride 2 pad 0, groups 2 (CC_ALGO_IMPLICIT_GEMM, every pass)");
    cc_conv_init(&p, 2, 3, 5, 7, 5, 1, 1, 0, 0, 1, 1, 1);
    check_passes(t, p, &implicit, "pointwise 3 -> 5 channels, 5x7 (CC_ALGO_IMPLICIT_GEMM, 4-byte copies)");
}

} // namespace cc_abi_test
