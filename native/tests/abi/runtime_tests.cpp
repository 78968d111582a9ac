// The launch layer under the ABI (launch/launch.h) over the emulator runtime, with geometries no
// launcher produces: how a refused launch and a kernel fault found by the emulator come back
// (CC_ERROR_LAUNCH and CC_ERROR_EMULATOR, each with the emulator's words, the kernel, grid, block and
// problem). The self-test links the launcher objects, so the internal interface is reachable here.
#include "abi_test.h"

#include "launch.h"

#include <string>

namespace cc_abi_test {
namespace {

struct Text {
    void operator()(char* text, std::size_t capacity) const { cc::format_into(text, capacity, "a test geometry"); }
};

void test_refused_launch(Tally& t)
{
    cc::Geometry g;
    g.block.x = 2048; // over the 1024 threads a block may have
    std::vector<float> x(4);
    const cc_status s = cc::launch<cc::KernelId::fill>(*emulator(), g, nullptr, Text{}, 4, 1.0f, x.data());
    expect_status(t, s, CC_ERROR_LAUNCH,
                  {"cc_fill_kernel (grid (1,1,1), block (2048,1,1)", "failed for a test geometry", "CUDA_ERROR_INVALID_VALUE"},
                  "a launch the emulator refuses is CC_ERROR_LAUNCH with its reason");
}

void test_kernel_fault(Tally& t)
{
    // The block reduction needs whole warps: with 48 threads the second warp's full-mask shuffles name
    // lanes that do not exist, which the emulator diagnoses.
    cc::Geometry g;
    g.block.x = 48;
    std::vector<float> partials(4, 1.0f), result(1);
    const cc_status s = cc::launch<cc::KernelId::sum_final>(*emulator(), g, nullptr, Text{}, 4, partials.data(), result.data());
    expect_status(t, s, CC_ERROR_EMULATOR, {"cc_sum_final_kernel (grid (1,1,1), block (48,1,1)", "failed for a test geometry: CC_EMU_"},
                  "a kernel fault the emulator finds is CC_ERROR_EMULATOR with its diagnostic");
}

} // namespace

void run_runtime_tests(Tally& t)
{
    test_refused_launch(t);
    test_kernel_fault(t);
}

} // namespace cc_abi_test
