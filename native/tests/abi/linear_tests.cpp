// The linear layer of the C ABI on the emulator: refusals, the split-K workspace, and the four calls
// against double-precision sums.
#include "abi_test.h"

#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

void test_refusals(Tally& t)
{
    const cc_status bad = CC_ERROR_INVALID_VALUE;
    cc_linear_problem p{4, 0, 3};
    expect_status(t, cc_linear_validate(&p), bad, {"cc_linear_validate: in_features must be positive, got 0"}, "in_features 0");
    p = {65536, 65536, 3};
    expect_status(t, cc_linear_validate(&p), bad, {"x (n*in_features)", "2^31-1"}, "x over 2^31-1 elements");
    expect_status(t, cc_linear_validate(nullptr), bad, {"problem is NULL"}, "NULL problem");
    p = {4, 5, 3};
    cc_options options{};
    options.algo = CC_ALGO_DIRECT;
    size_t bytes = 0;
    expect_status(t, cc_linear_workspace_size(&p, &options, &bytes), CC_ERROR_NOT_SUPPORTED, {"GEMM kernels only"},
                  "CC_ALGO_DIRECT for the linear layer");
    std::vector<float> x(20), w(15), y(12);
    expect_status(t, cc_linear_forward(emulator(), &p, x.data(), w.data(), nullptr, x.data(), nullptr), bad, {"y overlaps x"},
                  "y overlapping x");
    expect_status(t, cc_linear_forward(emulator(), &p, x.data(), nullptr, nullptr, y.data(), nullptr), bad, {"w is NULL"}, "NULL w");
}

void test_results(Tally& t)
{
    const cc_linear_problem p{10, 70, 9};
    const std::size_t n = 10, in = 70, out = 9;
    const std::vector<float> x = random_values(n * in, 11), w = random_values(out * in, 12), b = random_values(out, 13),
                             dy = random_values(n * out, 14);
    std::vector<float> y(n * out, kNaN), y_no_bias(n * out, kNaN), dx(n * in, kNaN), dw(out * in, kNaN), dw_split(out * in, kNaN),
        db(out, kNaN);
    Sums ry(n * out), ry_no_bias(n * out), rdx(n * in), rdw(out * in), rdb(out);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t o = 0; o < out; ++o) {
            for (std::size_t j = 0; j < in; ++j) {
                ry.add(i * out + o, x[i * in + j], w[o * in + j]);
                ry_no_bias.add(i * out + o, x[i * in + j], w[o * in + j]);
                rdx.add(i * in + j, dy[i * out + o], w[o * in + j]);
                rdw.add(o * in + j, dy[i * out + o], x[i * in + j]);
            }
            ry.add(i * out + o, b[o], 1.0); // the bias is one more rounded addition
            rdb.add(o, dy[i * out + o], 1.0);
        }

    expect_status(t, cc_linear_forward(emulator(), &p, x.data(), w.data(), b.data(), y.data(), nullptr), CC_SUCCESS, {}, "linear forward");
    expect_status(t, cc_linear_forward(emulator(), &p, x.data(), w.data(), nullptr, y_no_bias.data(), nullptr), CC_SUCCESS, {},
                  "linear forward without bias");
    expect_status(t, cc_linear_backward_data(emulator(), &p, dy.data(), w.data(), dx.data(), nullptr), CC_SUCCESS, {}, "linear backward-data");
    size_t bytes = 1;
    cc_linear_workspace_size(&p, nullptr, &bytes);
    t.check(bytes == 0, "a 10-sample weight gradient is not split (no workspace)");
    expect_status(t, cc_linear_backward_weight(emulator(), &p, nullptr, x.data(), dy.data(), dw.data(), nullptr, 0, nullptr), CC_SUCCESS,
                  {}, "linear backward-weight");
    cc_options split{};
    split.split_chunk = 4; // 10 samples -> 3 splits
    cc_linear_workspace_size(&p, &split, &bytes);
    t.check(bytes == CC_SPLIT_COUNTER_BYTES + 3 * out * in * sizeof(float),
            "3 splits need the counters and 3 x out x in floats: " + std::to_string(bytes));
    std::vector<float> workspace = workspace_of(bytes);
    expect_status(t, cc_linear_backward_weight(emulator(), &p, &split, x.data(), dy.data(), dw_split.data(), workspace.data(), bytes - 4,
                                               nullptr),
                  CC_ERROR_WORKSPACE, {"cc_linear_backward_weight: workspace of", "ask cc_linear_workspace_size"}, "a short workspace");
    expect_status(t, cc_linear_backward_weight(emulator(), &p, &split, x.data(), dy.data(), dw_split.data(), workspace.data(), bytes,
                                               nullptr),
                  CC_SUCCESS, {}, "linear backward-weight in 3 splits");
    expect_status(t, cc_linear_backward_bias(emulator(), &p, dy.data(), db.data(), nullptr), CC_SUCCESS, {}, "linear backward-bias");

    expect_sums(t, y, ry, "linear forward");
    expect_sums(t, y_no_bias, ry_no_bias, "linear forward, b = NULL");
    expect_sums(t, dx, rdx, "linear backward-data");
    expect_sums(t, dw, rdw, "linear backward-weight");
    expect_sums(t, dw_split, rdw, "linear backward-weight, split");
    expect_sums(t, db, rdb, "linear backward-bias");
}

} // namespace

void run_linear_tests(Tally& t)
{
    test_refusals(t);
    test_results(t);
}

} // namespace cc_abi_test
