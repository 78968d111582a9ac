// The element-wise, pooling and padding calls of the C ABI on the emulator: refusals, empty tensors,
// the sum's workspace, and results against exact or rounding-bounded references.
#include "abi_test.h"

#include <cmath>
#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kOneRounding = 1.2e-7; // relative error of one fp32 rounding (2^-24), with room

void test_elementwise_refusals(Tally& t)
{
    const cc_status bad = CC_ERROR_INVALID_VALUE;
    cc_elementwise_problem p{-1};
    expect_status(t, cc_elementwise_validate(&p), bad, {"length must not be negative, got -1"}, "negative length");
    p.length = 2147483648LL;
    expect_status(t, cc_elementwise_validate(&p), bad, {"2147483648 elements", "2^31-1"}, "a length of 2^31");
    p.length = 0;
    expect_status(t, cc_add(emulator(), &p, nullptr, nullptr, nullptr, nullptr), CC_SUCCESS, {}, "an empty add needs no pointers");
    p.length = 4;
    std::vector<float> x(4);
    expect_status(t, cc_add(emulator(), &p, x.data(), nullptr, x.data(), nullptr), bad, {"cc_add: b is NULL"}, "add with NULL b");

    std::vector<float> sum_ws(1), result(1);
    p.length = 1000; // 4 blocks of 256 -> 16 bytes
    size_t bytes = 0;
    cc_sum_workspace_size(&p, &bytes);
    t.check(bytes == 4 * sizeof(float), "the sum of 1000 elements needs 4 partial sums: " + std::to_string(bytes));
    std::vector<float> big(1000);
    expect_status(t, cc_sum(emulator(), &p, big.data(), result.data(), sum_ws.data(), 4, nullptr), CC_ERROR_WORKSPACE,
                  {"workspace of 4 bytes given, 16 needed; ask cc_sum_workspace_size"}, "a sum with a short workspace");
}

void test_elementwise_results(Tally& t)
{
    const std::size_t n = 1000;
    const cc_elementwise_problem p{static_cast<int64_t>(n)};
    const std::vector<float> a = random_values(n, 41), b = random_values(n, 42);
    std::vector<float> relu(n, kNaN), drelu(n, kNaN), sum_ab = a, filled(n, kNaN), scaled = a, axpy = b, result(1, kNaN);
    std::vector<double> r_relu(n), r_drelu(n), r_add(n), r_fill(n, 0.75), r_scale(n), r_axpy(n);
    Sums r_sum(1);
    for (std::size_t i = 0; i < n; ++i) {
        r_relu[i] = a[i] < 0 ? 0.0 : a[i];
        r_drelu[i] = r_relu[i] > 0 ? b[i] : 0.0;
        r_add[i] = static_cast<double>(a[i]) + b[i];
        r_scale[i] = a[i] * -1.5;
        r_axpy[i] = b[i] + 0.5 * a[i];
        r_sum.add(0, a[i], 1.0);
    }
    expect_status(t, cc_relu_forward(emulator(), &p, a.data(), relu.data(), nullptr), CC_SUCCESS, {}, "relu forward");
    expect_status(t, cc_relu_backward(emulator(), &p, relu.data(), b.data(), drelu.data(), nullptr), CC_SUCCESS, {}, "relu backward");
    expect_status(t, cc_add(emulator(), &p, sum_ab.data(), b.data(), sum_ab.data(), nullptr), CC_SUCCESS, {}, "add with y = a");
    expect_status(t, cc_fill(emulator(), &p, 0.75f, filled.data(), nullptr), CC_SUCCESS, {}, "fill");
    expect_status(t, cc_scale(emulator(), &p, -1.5f, scaled.data(), nullptr), CC_SUCCESS, {}, "scale");
    expect_status(t, cc_axpy(emulator(), &p, 0.5f, a.data(), axpy.data(), nullptr), CC_SUCCESS, {}, "axpy");
    size_t bytes = 0;
    cc_sum_workspace_size(&p, &bytes);
    std::vector<float> workspace(bytes / sizeof(float), kNaN);
    expect_status(t, cc_sum(emulator(), &p, a.data(), result.data(), workspace.data(), bytes, nullptr), CC_SUCCESS, {}, "sum");

    expect_close(t, relu.data(), r_relu.data(), n, 0, 0, "relu forward");
    expect_close(t, drelu.data(), r_drelu.data(), n, 0, 0, "relu backward");
    expect_close(t, sum_ab.data(), r_add.data(), n, kOneRounding, 0, "add");
    expect_close(t, filled.data(), r_fill.data(), n, 0, 0, "fill");
    expect_close(t, scaled.data(), r_scale.data(), n, kOneRounding, 0, "scale");
    expect_close(t, axpy.data(), r_axpy.data(), n, kOneRounding, 0, "axpy (one fused rounding)");
    expect_sums(t, result, r_sum, "sum of 1000 elements");

    const cc_elementwise_problem empty{0};
    float zero = kNaN;
    expect_status(t, cc_sum(emulator(), &empty, nullptr, &zero, workspace.data(), bytes, nullptr), CC_SUCCESS, {}, "sum of nothing");
    t.check(zero == 0.0f, "the sum of 0 elements is 0");
}

// One launch over a list of tensors: the first non-finite element of each (lowest index, whichever thread meets it
// first), 0 for an all-finite or empty tensor, and the refusals the launcher can make without reading the list.
void test_first_nonfinite(Tally& t)
{
    constexpr float kInf = std::numeric_limits<float>::infinity();
    std::vector<float> finite(1000, 1.5f), late(1000, 2.0f), early(5, 0.0f);
    late[900] = kNaN;
    late[700] = -kInf; // lower index than the NaN: it is the one reported
    late[999] = kInf;
    early[0] = kInf;
    finite[999] = 3.4e38f; // large but finite
    const cc_tensor_ref list[] = {{finite.data(), 1000}, {late.data(), 1000}, {early.data(), 5}, {nullptr, 0}};
    std::vector<float> result(4, 1234.0f);
    expect_status(t, cc_first_nonfinite(emulator(), list, 4, result.data(), nullptr), CC_SUCCESS, {}, "first non-finite of 4 tensors");
    t.check(result[0] == 0.0f, "an all-finite tensor gives 0");
    t.check(result[1] == -kInf, "the non-finite element with the lowest index is reported (-inf at 700, before NaN at 900)");
    t.check(result[2] == kInf, "a non-finite first element is found");
    t.check(result[3] == 0.0f, "an empty tensor gives 0");

    const cc_status bad = CC_ERROR_INVALID_VALUE;
    expect_status(t, cc_first_nonfinite(emulator(), list, 0, result.data(), nullptr), bad, {"count must be positive, got 0"}, "an empty list");
    expect_status(t, cc_first_nonfinite(emulator(), nullptr, 1, result.data(), nullptr), bad, {"tensors is NULL"}, "no list");
    expect_status(t, cc_first_nonfinite(emulator(), list, 1, reinterpret_cast<float*>(const_cast<cc_tensor_ref*>(list)), nullptr), bad,
                  {"overlap"}, "results written over the list");
}

void test_pool_refusals(Tally& t)
{
    const cc_status bad = CC_ERROR_INVALID_VALUE;
    cc_pool_problem p{2, 3, 4, 4, 0, -1, 0, 0};
    expect_status(t, cc_pool_validate(&p), bad, {"pad_bottom must not be negative, got -1"}, "negative padding");
    p = {2, 3, 4, 4, 1, 1, 0, 0};
    std::vector<float> x(96), y(6);
    expect_status(t, cc_global_avg_pool_forward(emulator(), &p, x.data(), y.data(), nullptr), bad,
                  {"global average pooling takes no padding, got top=1 bottom=1"}, "global pooling with padding");
    p = {1, 1, 65536, 65536, 0, 0, 0, 0};
    expect_status(t, cc_pool_validate(&p), bad, {"x (n*c*h*w)", "2^31-1"}, "an input over 2^31-1 elements");
}

void test_pool_results(Tally& t)
{
    const cc_pool_problem global{2, 3, 5, 7, 0, 0, 0, 0};
    const std::size_t planes = 6, hw = 35;
    const std::vector<float> x = random_values(planes * hw, 51), dy = random_values(planes, 52);
    std::vector<float> y(planes, kNaN), dx(planes * hw, kNaN);
    std::vector<double> ry(planes), rdx(planes * hw);
    for (std::size_t p = 0; p < planes; ++p) {
        double sum = 0;
        for (std::size_t i = 0; i < hw; ++i) sum += x[p * hw + i];
        ry[p] = sum / hw;
        for (std::size_t i = 0; i < hw; ++i) rdx[p * hw + i] = dy[p] / static_cast<double>(hw);
    }
    expect_status(t, cc_global_avg_pool_forward(emulator(), &global, x.data(), y.data(), nullptr), CC_SUCCESS, {}, "global average pool");
    expect_status(t, cc_global_avg_pool_backward(emulator(), &global, dy.data(), dx.data(), nullptr), CC_SUCCESS, {},
                  "global average pool backward");
    expect_close(t, y.data(), ry.data(), planes, 1e-6, 1e-7, "global average pool");
    expect_close(t, dx.data(), rdx.data(), planes * hw, kOneRounding, 0, "global average pool backward");

    const cc_pool_problem pad{2, 2, 3, 4, 1, 2, 0, 3}; // padded 6 x 7
    const std::size_t in = 2 * 2 * 3 * 4, out = 2 * 2 * 6 * 7;
    const std::vector<float> xp = random_values(in, 53), dyp = random_values(out, 54);
    std::vector<float> yp(out, kNaN), dxp(in, kNaN);
    std::vector<double> ryp(out, 0.0), rdxp(in);
    for (std::size_t plane = 0; plane < 4; ++plane)
        for (std::size_t h = 0; h < 3; ++h)
            for (std::size_t w = 0; w < 4; ++w) {
                ryp[(plane * 6 + h + 1) * 7 + w] = xp[(plane * 3 + h) * 4 + w];
                rdxp[(plane * 3 + h) * 4 + w] = dyp[(plane * 6 + h + 1) * 7 + w];
            }
    expect_status(t, cc_zero_pad_forward(emulator(), &pad, xp.data(), yp.data(), nullptr), CC_SUCCESS, {}, "zero pad");
    expect_status(t, cc_zero_pad_backward(emulator(), &pad, dyp.data(), dxp.data(), nullptr), CC_SUCCESS, {}, "zero pad backward");
    expect_close(t, yp.data(), ryp.data(), out, 0, 0, "zero pad (exact copy, zeros around)");
    expect_close(t, dxp.data(), rdxp.data(), in, 0, 0, "zero pad backward (exact crop)");
}

} // namespace

void run_elementwise_pool_tests(Tally& t)
{
    test_elementwise_refusals(t);
    test_elementwise_results(t);
    test_first_nonfinite(t);
    test_pool_refusals(t);
    test_pool_results(t);
}

} // namespace cc_abi_test
