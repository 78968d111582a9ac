// The split weight gradients reduced in their own launch (cheapconv/split_reduce.h: the last block of each tile adds
// the splits' slices): for each kernel family that splits (the fp32 pointwise GEMM, the tensor-core implicit GEMM,
// the tiled 3x3 kernels, the linear layer), dw must be
//   - bitwise the sum the second launch used to compute: cc_gemm_column_sums_kernel's arithmetic (0.0f, then the
//     slices added in order z = 0, 1, ...) over the slices the launch left in the workspace, recomputed here;
//   - within the reference's bound (check_conv_passes, conv_tests.cpp);
//   - the same bits on a second launch on the same workspace (the counters were put back to zero: they are zero
//     after every launch) and whatever the number of emulator worker threads.
// And the launcher refuses a requested split with more output tiles than the workspace has counters.
#include "abi_test.h"

#include <cc_emu.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// One split weight gradient: its size and a call that runs it into dw with the given workspace.
struct Case {
    std::string name;
    std::size_t weights = 0;
    std::size_t workspace_bytes = 0;
    std::function<cc_status(float* dw, void* workspace, std::size_t bytes)> run;
};

// What the counters and slices of `workspace` say after a launch: whether every counter is zero, and dw as
// cc_gemm_column_sums_kernel computed it from the slices (rows = splits, cols = weights), or empty if a slice
// element was never written (still NaN).
struct AfterLaunch {
    bool counters_zero = true;
    std::vector<float> column_sums;
};

AfterLaunch inspect(const std::vector<float>& workspace, std::size_t weights)
{
    AfterLaunch a;
    const std::size_t counters = CC_SPLIT_COUNTER_BYTES / sizeof(unsigned);
    for (std::size_t i = 0; i < counters; ++i) {
        unsigned value;
        std::memcpy(&value, &workspace[i], sizeof value);
        a.counters_zero = a.counters_zero && value == 0;
    }
    const float* slices = workspace.data() + counters;
    const std::size_t splits = (workspace.size() - counters) / weights;
    a.column_sums.assign(weights, 0.0f);
    for (std::size_t j = 0; j < weights; ++j) {
        float acc = 0.0f; // exactly cc_gemm_column_sums_kernel: acc = 0.0f; acc += src[r * cols + j], r in order
        for (std::size_t z = 0; z < splits; ++z) {
            if (std::isnan(slices[z * weights + j])) {
                a.column_sums.clear();
                return a;
            }
            acc += slices[z * weights + j];
        }
        a.column_sums[j] = acc;
    }
    return a;
}

void check_case(Tally& t, const Case& c)
{
    t.check(c.workspace_bytes > CC_SPLIT_COUNTER_BYTES, c.name + ": the problem is split (" + std::to_string(c.workspace_bytes) + " bytes)");
    if (c.workspace_bytes <= CC_SPLIT_COUNTER_BYTES) return;
    std::vector<float> workspace = workspace_of(c.workspace_bytes), dw(c.weights, kNaN);
    expect_status(t, c.run(dw.data(), workspace.data(), c.workspace_bytes), CC_SUCCESS, {}, c.name + ": first launch");
    const AfterLaunch after = inspect(workspace, c.weights);
    t.check(after.counters_zero, c.name + ": every arrival counter is zero again after the launch");
    t.check(!after.column_sums.empty(), c.name + ": every split wrote its whole slice");
    t.check(same_bits(dw, after.column_sums), c.name + ": dw is bitwise the ordered sum of the slices (the old second launch)");

    // Again on the same workspace, its counters as the first launch left them and its slices poisoned again.
    const std::size_t counters = CC_SPLIT_COUNTER_BYTES / sizeof(float);
    std::fill(workspace.begin() + static_cast<std::ptrdiff_t>(counters), workspace.end(), kNaN);
    std::vector<float> again(c.weights, kNaN);
    expect_status(t, c.run(again.data(), workspace.data(), c.workspace_bytes), CC_SUCCESS, {}, c.name + ": second launch");
    t.check(same_bits(dw, again), c.name + ": a second launch on the same workspace gives the same bits");
    t.check(inspect(workspace, c.weights).counters_zero, c.name + ": the counters are zero after the second launch too");

    // The blocks of a tile arrive in another order with another number of worker threads; the bits do not change.
    // (Under TSan the launches above already run the kernels; the driver chose the worker count.)
    if (kUnderTsan) return;
    for (int workers : {1, 3}) {
        cc_emu_set_worker_threads(workers);
        std::vector<float> other(c.weights, kNaN);
        expect_status(t, c.run(other.data(), workspace.data(), c.workspace_bytes), CC_SUCCESS, {},
                      c.name + ": with " + std::to_string(workers) + " worker thread(s)");
        t.check(same_bits(dw, other), c.name + ": the same bits with " + std::to_string(workers) + " worker thread(s)");
    }
    cc_emu_set_worker_threads(0); // back to the default
}

Case conv_case(const std::string& name, const cc_conv_problem& p, const cc_options& options, unsigned long long seed)
{
    Case c;
    c.name = name;
    c.weights = static_cast<std::size_t>(p.k) * (p.c / p.groups) * p.r * p.s;
    cc_conv_workspace_size(&p, CC_CONV_BACKWARD_WEIGHT, &options, &c.workspace_bytes);
    auto x = std::make_shared<std::vector<float>>(random_values(static_cast<std::size_t>(p.n) * p.c * p.h * p.w, seed));
    auto dy = std::make_shared<std::vector<float>>(random_values(static_cast<std::size_t>(p.n) * p.k * p.p * p.q, seed + 1));
    c.run = [p, options, x, dy](float* dw, void* workspace, std::size_t bytes) {
        return cc_conv_backward_weight(emulator(), &p, &options, x->data(), dy->data(), dw, workspace, bytes, nullptr);
    };
    return c;
}

void test_families(Tally& t)
{
    cc_options fp32{}, tf32{}, tiled{};
    fp32.precision = CC_PRECISION_FP32;
    tf32.precision = CC_PRECISION_TF32;
    // Forced: AUTO gives a grouped 3x3 with 16 channels per group the tiled kernels in the backward passes.
    tf32.algo = CC_ALGO_IMPLICIT_GEMM;
    tiled.algo = CC_ALGO_TILED;

    // fp32 pointwise GEMM: K=70 x C=67 (2 x 2 tiles of 64), 3*9*9 = 243 positions in chunks of 64 -> 4 splits.
    cc_conv_problem pw;
    cc_conv_init(&pw, 3, 67, 9, 9, 70, 1, 1, 0, 0, 1, 1, 1);
    fp32.split_chunk = 64;
    const Case gemm = conv_case("fp32 pointwise GEMM, 4 splits of 2x2 tiles", pw, fp32, 31);
    // Tensor cores, 3x3 with groups: per group 16 filters x 16*9 columns (3 tiles), 2 groups, 5 splits.
    cc_conv_problem grouped;
    cc_conv_init(&grouped, 2, 32, 10, 9, 32, 3, 3, 1, 1, 1, 1, 2);
    tf32.split_chunk = 36; // 2*10*9 = 180 positions -> 5 splits
    const Case implicit3 = conv_case("tf32 implicit GEMM 3x3, 2 groups, 5 splits", grouped, tf32, 41);
    cc_conv_problem pw_tf32 = pw;
    tf32.split_chunk = 64;
    const Case implicit1 = conv_case("tf32 implicit GEMM 1x1, 4 splits", pw_tf32, tf32, 51);
    // The tiled kernels plan their own split: a long reduction over few filters.
    cc_conv_problem depthwise;
    cc_conv_init(&depthwise, 8, 4, 32, 32, 4, 3, 3, 1, 1, 1, 1, 4);
    const Case tiled_s1 = conv_case("tiled 3x3 stride 1 (depthwise)", depthwise, tiled, 61);
    cc_conv_problem strided;
    cc_conv_init(&strided, 8, 8, 32, 32, 16, 3, 3, 1, 1, 2, 2, 4);
    const Case tiled_s2 = conv_case("tiled 3x3 stride 2 (grouped)", strided, tiled, 71);

    // Under TSan (every access tracked: minutes) the fp32 GEMM's case checks the arrival's ordering (cc_split_arrive, the
    // same code in every family); the other families and the reference comparisons run in the other builds.
    if (kUnderTsan) {
        check_case(t, gemm);
    } else {
        for (const Case* c : {&gemm, &implicit3, &implicit1, &tiled_s1, &tiled_s2}) check_case(t, *c);
        // And each against the reference in double, within the bound of its arithmetic.
        check_conv_passes(t, pw, &fp32, "fp32 pointwise GEMM split 4 ways, against the reference");
        tf32.split_chunk = 36;
        check_conv_passes(t, grouped, &tf32, "tf32 implicit GEMM 3x3 split 5 ways, against the reference");
        check_conv_passes(t, depthwise, &tiled, "tiled 3x3 stride 1, split, against the reference");
        check_conv_passes(t, strided, &tiled, "tiled 3x3 stride 2, split, against the reference");
    }

    // The linear layer's weight gradient: out=70 x in=67 over 50 samples in chunks of 16 -> 4 splits.
    const cc_linear_problem lp{50, 67, 70};
    cc_options chunked{};
    chunked.split_chunk = 16;
    Case linear;
    linear.name = "linear weight gradient, 4 splits";
    linear.weights = 70 * 67;
    cc_linear_workspace_size(&lp, &chunked, &linear.workspace_bytes);
    auto x = std::make_shared<std::vector<float>>(random_values(50 * 67, 81));
    auto dy = std::make_shared<std::vector<float>>(random_values(50 * 70, 82));
    linear.run = [lp, chunked, x, dy](float* dw, void* workspace, std::size_t bytes) {
        return cc_linear_backward_weight(emulator(), &lp, &chunked, x->data(), dy->data(), dw, workspace, bytes, nullptr);
    };
    if (!kUnderTsan) check_case(t, linear); // the GEMM core of the case above
}

// A split needs a counter per output tile of its launch: more tiles than CC_SPLIT_COUNTER_BYTES / 4 is refused
// when the caller asks for the split, and not split when the launcher chooses.
void test_counter_limit(Tally& t)
{
    const cc_linear_problem wide{4096, 8256, 8256}; // 129 x 129 = 16641 tiles of 64 x 64
    cc_options chunked{};
    chunked.split_chunk = 2048;
    size_t bytes = 0;
    expect_status(t, cc_linear_workspace_size(&wide, &chunked, &bytes), CC_ERROR_INVALID_VALUE,
                  {"split_chunk 2048 splits a launch of 16641 output tiles", "at most 16384", "CC_SPLIT_COUNTER_BYTES"},
                  "a requested split of more tiles than counters");
    expect_status(t, cc_linear_workspace_size(&wide, nullptr, &bytes), CC_SUCCESS, {}, "the launcher's choice for the same problem");
    t.check(bytes == 0, "the launcher does not split 16641 tiles: " + std::to_string(bytes) + " bytes");
}

} // namespace

void run_split_reduce_tests(Tally& t)
{
    test_families(t);
    test_counter_limit(t);
}

} // namespace cc_abi_test
