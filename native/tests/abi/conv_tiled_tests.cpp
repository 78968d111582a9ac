// The tiled 3x3 kernels of the convolution family (CC_ALGO_TILED, AUTO's choice for grouped 3x3) on the
// emulator: the variant choice and its refusals, the three passes against the textbook loops in double for
// every stride, depthwise and grouped (1, 2, 3, 12 channels per group), aligned and odd widths, planes
// wider than one strip, other paddings; the 16-byte and 4-byte stagings giving the same bits, and a weight
// gradient bitwise independent of the run and of the emulator's worker-thread count.
#include "abi_test.h"

#include "cc_emu.h"

#include <cstring>
#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::size_t input_count(const cc_conv_problem& p) { return static_cast<std::size_t>(p.n) * p.c * p.h * p.w; }
std::size_t weight_count(const cc_conv_problem& p) { return static_cast<std::size_t>(p.k) * (p.c / p.groups) * p.r * p.s; }
std::size_t output_count(const cc_conv_problem& p) { return static_cast<std::size_t>(p.n) * p.k * p.p * p.q; }

cc_options tiled_options()
{
    cc_options o{};
    o.algo = CC_ALGO_TILED;
    return o;
}

std::string names(const cc_conv_problem& p, cc_conv_pass pass, const cc_options* options)
{
    char text[160] = "";
    if (cc_conv_kernel_names(&p, pass, options, text, sizeof text) != CC_SUCCESS) return std::string("failed: ") + cc_last_error();
    return text;
}

void test_choice_and_refusals(Tally& t)
{
    const cc_options tiled = tiled_options();
    cc_conv_problem depthwise, grouped, dense, pointwise, five, stride3;
    cc_conv_init(&depthwise, 2, 8, 9, 7, 8, 3, 3, 1, 1, 1, 1, 8);
    cc_conv_init(&grouped, 2, 8, 9, 7, 8, 3, 3, 1, 1, 2, 2, 4);
    cc_conv_init(&dense, 2, 8, 9, 7, 8, 3, 3, 1, 1, 1, 1, 1);
    cc_conv_init(&pointwise, 2, 8, 9, 7, 8, 1, 1, 0, 0, 1, 1, 1);
    cc_conv_init(&five, 1, 2, 8, 8, 2, 5, 5, 2, 2, 1, 1, 2);
    cc_conv_init(&stride3, 1, 6, 7, 7, 6, 3, 3, 2, 2, 3, 3, 2);
    t.check(names(depthwise, CC_CONV_FORWARD, nullptr) == "cc_conv2d_tiled_forward_s1_kernel", "AUTO runs a depthwise 3x3 tiled");
    t.check(names(grouped, CC_CONV_BACKWARD_DATA, nullptr) == "cc_conv2d_tiled_backward_data_s2_kernel",
            "AUTO runs a grouped stride-2 3x3 tiled: " + names(grouped, CC_CONV_BACKWARD_DATA, nullptr));
    cc_options fp32{};
    fp32.precision = CC_PRECISION_FP32; // with tf32 allowed a dense 3x3 goes to the tensor cores (conv_tests.cpp)
    t.check(names(dense, CC_CONV_FORWARD, &fp32) == "cc_conv2d_tiled_forward_s1_kernel",
            "AUTO (fp32) runs a dense 3x3 (groups 1) tiled: " + names(dense, CC_CONV_FORWARD, &fp32));
    cc_conv_problem stem; // 3 input channels: too few for the tensor cores even with tf32 allowed
    cc_conv_init(&stem, 2, 3, 9, 7, 8, 3, 3, 1, 1, 1, 1, 1);
    t.check(names(stem, CC_CONV_BACKWARD_WEIGHT, nullptr).rfind("cc_conv2d_tiled_backward_weight_s1_kernel", 0) == 0,
            "AUTO (tf32) runs a 3-channel dense 3x3 tiled: " + names(stem, CC_CONV_BACKWARD_WEIGHT, nullptr));
    t.check(names(dense, CC_CONV_BACKWARD_WEIGHT, &tiled).rfind("cc_conv2d_tiled_backward_weight_s1_kernel", 0) == 0,
            "CC_ALGO_TILED runs a dense 3x3 tiled: " + names(dense, CC_CONV_BACKWARD_WEIGHT, &tiled));

    std::vector<float> x(input_count(pointwise)), w(weight_count(pointwise)), y(output_count(pointwise));
    expect_status(t, cc_conv_forward(emulator(), &pointwise, &tiled, x.data(), w.data(), y.data(), nullptr, 0, nullptr),
                  CC_ERROR_NOT_SUPPORTED, {"CC_ALGO_TILED computes 3x3 filters with stride 1 or 2", "not r=1 s=1"},
                  "CC_ALGO_TILED for a 1x1");
    size_t bytes = 0;
    expect_status(t, cc_conv_workspace_size(&five, CC_CONV_BACKWARD_WEIGHT, &tiled, &bytes), CC_ERROR_NOT_SUPPORTED,
                  {"CC_ALGO_TILED computes", "not r=5 s=5", "CC_ALGO_DIRECT"}, "CC_ALGO_TILED for a 5x5");
    expect_status(t, cc_conv_workspace_size(&stride3, CC_CONV_FORWARD, &tiled, &bytes), CC_ERROR_NOT_SUPPORTED,
                  {"stride=3x3"}, "CC_ALGO_TILED for stride 3");
    t.check(names(five, CC_CONV_FORWARD, nullptr) == "cc_conv2d_forward_kernel", "AUTO keeps a grouped 5x5 direct");

    // A weight gradient over many strips is split: its workspace holds the arrival counters and one dw per split,
    // which the last split of each block row adds in the same launch.
    cc_conv_problem long_reduction;
    cc_conv_init(&long_reduction, 8, 4, 32, 32, 4, 3, 3, 1, 1, 1, 1, 4);
    cc_conv_workspace_size(&long_reduction, CC_CONV_BACKWARD_WEIGHT, nullptr, &bytes);
    t.check(bytes > CC_SPLIT_COUNTER_BYTES && (bytes - CC_SPLIT_COUNTER_BYTES) % (weight_count(long_reduction) * sizeof(float)) == 0,
            "a split tiled weight gradient needs the counters and whole dw-sized slots: " + std::to_string(bytes) + " bytes");
    t.check(names(long_reduction, CC_CONV_BACKWARD_WEIGHT, nullptr) == "cc_conv2d_tiled_backward_weight_s1_kernel",
            "a split tiled weight gradient is one launch: " + names(long_reduction, CC_CONV_BACKWARD_WEIGHT, nullptr));
    cc_conv_workspace_size(&long_reduction, CC_CONV_FORWARD, nullptr, &bytes);
    t.check(bytes == 0, "the tiled forward needs no workspace");
}

void test_passes(Tally& t)
{
    const cc_options tiled = tiled_options();
    // Under TSan (each CUDA thread a fiber whose every switch and access TSan tracks: minutes for the whole
    // list) only the cases marked: they launch every tiled kernel, with both stagings and chunks of 1 and 4
    // channels (the wide chunk's code differs from the narrow one's only in its unrolled count).
    struct Case {
        int n, c, h, w, k, pad, stride, groups;
        bool under_tsan;
        const char* what;
    } cases[] = {
        {2, 8, 9, 7, 8, 1, 1, 8, false, "depthwise, odd sizes (4-byte staging)"},
        {2, 4, 8, 8, 4, 1, 1, 4, true, "depthwise, width 8 (16-byte staging)"},
        {2, 3, 16, 32, 3, 1, 1, 3, false, "depthwise, width 32 (one strip per warp)"},
        {2, 5, 9, 9, 5, 1, 2, 5, true, "depthwise stride 2, odd sizes"},
        {2, 4, 16, 16, 4, 1, 2, 4, false, "depthwise stride 2, width 16"},
        {2, 5, 7, 6, 10, 1, 2, 5, false, "depthwise multiplier 2, stride 2"},
        {2, 8, 8, 8, 8, 1, 1, 4, true, "grouped, 2 channels per group"},
        {2, 8, 8, 8, 8, 1, 2, 4, true, "grouped, 2 channels per group, stride 2"},
        {2, 6, 9, 7, 6, 1, 1, 2, false, "grouped, 3 channels per group, odd sizes"},
        {1, 4, 6, 6, 24, 1, 1, 2, false, "grouped, 12 filters per group (a partial chunk)"},
        {1, 24, 7, 5, 4, 1, 2, 2, false, "grouped, 12 channels per group, stride 2"},
        {1, 2, 5, 70, 2, 1, 1, 2, true, "70 columns: three strips across"},
        {1, 2, 6, 69, 2, 1, 2, 1, false, "69 columns, stride 2, dense"},
        {2, 4, 7, 9, 4, 0, 1, 4, false, "no padding"},
        {1, 4, 6, 8, 4, 2, 2, 2, false, "padding 2, stride 2"},
        {1, 4, 5, 8, 4, 3, 1, 4, false, "padding 3 (wider than the filter's reach)"},
        {1, 5, 6, 6, 3, 1, 1, 1, false, "dense 3x3, C and K not multiples of 4"},
        {3, 2, 1, 1, 2, 1, 1, 2, true, "1x1 planes"},
        {3, 4, 32, 32, 4, 1, 1, 4, false, "batch 3, 32x32: a weight gradient in 3 splits"},
        {6, 4, 32, 32, 4, 1, 2, 2, false, "batch 6, 32x32, stride 2: a weight gradient in 3 splits"},
        // The stride-2 x windows have an odd pitch here (9 rows of 97 floats): the dy windows after them must still
        // start 16-byte aligned for their 16-byte staging (once a misaligned float4 store: a crash).
        {2, 8, 64, 64, 8, 1, 2, 4, false, "grouped, 2 channels per group, stride 2, 64x64 (dy windows after odd x windows)"},
        // Enough blocks x groups that the launcher takes the wide chunk (8 channels per thread) for the
        // forward and backward-data: 88 groups of 8 make 88 blocks of 8 warps, kNarrowChunkBelowWarps.
        {1, 704, 8, 8, 704, 1, 1, 88, false, "88 groups of 8 channels (the wide chunk)"},
        {1, 704, 16, 16, 704, 1, 2, 88, false, "88 groups of 8 channels, stride 2 (the wide chunk)"},
    };
    for (const Case& c : cases) {
        if (kUnderTsan && !c.under_tsan) continue;
        cc_conv_problem p;
        if (cc_conv_init(&p, c.n, c.c, c.h, c.w, c.k, 3, 3, c.pad, c.pad, c.stride, c.stride, c.groups) != CC_SUCCESS) {
            t.check(false, std::string(c.what) + ": cc_conv_init failed: " + cc_last_error());
            continue;
        }
        check_conv_passes(t, p, &tiled, std::string("tiled ") + c.what);
    }
}

// The 16-byte staging (aligned input) and the 4-byte one (the same values 4 bytes off alignment) add the
// same products in the same order: the same bits.
void test_staging_paths_agree(Tally& t)
{
    const cc_options tiled = tiled_options();
    cc_conv_problem p;
    cc_conv_init(&p, 2, 4, 8, 16, 4, 3, 3, 1, 1, 1, 1, 2);
    const std::vector<float> x = random_values(input_count(p), 11), w = random_values(weight_count(p), 12);
    std::vector<float> shifted(x.size() + 4);
    std::memcpy(shifted.data() + 1, x.data(), x.size() * sizeof(float));
    std::vector<float> aligned_y(output_count(p), kNaN), shifted_y(output_count(p), kNaN);
    const bool aligned = reinterpret_cast<std::uintptr_t>(x.data()) % 16 == 0;
    cc_conv_forward(emulator(), &p, &tiled, x.data(), w.data(), aligned_y.data(), nullptr, 0, nullptr);
    cc_conv_forward(emulator(), &p, &tiled, shifted.data() + 1, w.data(), shifted_y.data(), nullptr, 0, nullptr);
    t.check(aligned, "the test's x is 16-byte aligned (std::vector of floats from operator new)");
    t.check(std::memcmp(aligned_y.data(), shifted_y.data(), aligned_y.size() * sizeof(float)) == 0,
            "the 16-byte and the 4-byte staging give the same forward bits");
}

// The split weight gradient: bitwise the same on every run and whatever the number of worker threads
// running the blocks.
void test_weight_gradient_determinism(Tally& t)
{
    cc_conv_problem p;
    cc_conv_init(&p, 5, 4, 16, 16, 8, 3, 3, 1, 1, 1, 1, 2); // 2 splits of 4-filter chunks
    const std::vector<float> x = random_values(input_count(p), 21), dy = random_values(output_count(p), 22);
    size_t bytes = 0;
    cc_conv_workspace_size(&p, CC_CONV_BACKWARD_WEIGHT, nullptr, &bytes);
    t.check(bytes > 0, "the determinism problem is split (so the order of the splits' sum is tested)");
    std::vector<float> workspace = workspace_of(bytes);
    std::vector<float> first;
    for (int workers : {1, 3, 2}) {
        cc_emu_set_worker_threads(workers);
        std::vector<float> dw(weight_count(p), kNaN);
        const cc_status s = cc_conv_backward_weight(emulator(), &p, nullptr, x.data(), dy.data(), dw.data(), workspace.data(), bytes, nullptr);
        expect_status(t, s, CC_SUCCESS, {}, "tiled weight gradient with " + std::to_string(workers) + " worker thread(s)");
        if (first.empty()) {
            first = dw;
            continue;
        }
        t.check(std::memcmp(first.data(), dw.data(), dw.size() * sizeof(float)) == 0,
                "the tiled weight gradient is bitwise the same with " + std::to_string(workers) + " worker thread(s)");
    }
    cc_emu_set_worker_threads(0); // back to the default
}

} // namespace

void run_conv_tiled_tests(Tally& t)
{
    test_choice_and_refusals(t);
    test_passes(t);
    test_staging_paths_agree(t);
    // Under TSan the cases above already run the weight gradient kernels; the repeated multi-threaded runs
    // here would add a minute, and would undo the worker count the sanitizer driver chose.
    if (!kUnderTsan) test_weight_gradient_determinism(t);
}

} // namespace cc_abi_test
