// The launch layer under the ABI (launch/launch.h) over the emulator runtime, with geometries no
// launcher produces: how a refused launch and a kernel fault found by the emulator come back
// (CC_ERROR_LAUNCH and CC_ERROR_EMULATOR, each with the emulator's words, the kernel, grid, block and
// problem), and how a warning comes back (kept for cc_emu_take_warnings, since the call returns only a
// status). The self-test links the launcher objects, so the internal interface is reachable here.
#include "abi_test.h"

#include "cc_emu.h"
#include "emu_runtime.h"
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

// Everything cc_emu_take_warnings holds now ("" when nothing), taken.
std::string take_warnings()
{
    for (;;) {
        const std::size_t length = cc_emu_take_warnings(nullptr, 0);
        if (length == 0) return "";
        std::string text(length + 1, '\0');
        const std::size_t taken = cc_emu_take_warnings(text.data(), text.size());
        if (taken < text.size()) {
            text.resize(taken);
            return text;
        }
        // More came in between: ask again with the new length.
    }
}

void test_production_kernels_left_no_warning(Tally& t)
{
    // Runs after every family's tests above: their launches, all through the ABI on the emulator, warned of nothing.
    const std::string warnings = take_warnings();
    t.check(warnings.empty(), "the production kernels launched by the tests above left no warning: " + warnings);
}

// The lines of `text` that start with `start`.
int count_lines(const std::string& text, const std::string& start)
{
    int n = 0;
    for (std::size_t at = 0; at < text.size();) {
        if (text.compare(at, start.size(), start) == 0) ++n;
        const std::size_t end = text.find('\n', at);
        if (end == std::string::npos) break;
        at = end + 1;
    }
    return n;
}

// The diagnostic kernel whose threads 32..63 return before the barrier the others wait at (tests/kernels/faulty.cu):
// a success with a warning by default, an error in strict mode.
cc_status launch_early_return(int* out, cc::Reason& why)
{
    cc::Geometry g;
    g.block.x = 64;
    void* args[] = {&out};
    return cc::emulator_launch("cc_test_early_return_barrier", g, args, why);
}

void test_warning_kept(Tally& t)
{
    take_warnings();
    const int previous_strict = cc_emu_set_strict(0);
    std::vector<int> out(64, 0);
    cc::Reason why;
    const cc_status s = launch_early_return(out.data(), why);
    t.check(s == CC_SUCCESS && out[0] == 1 && out[31] == 32 && out[32] == 0,
            "a launch the emulator only warns about succeeds on the ABI's launch path");

    const std::size_t length = cc_emu_take_warnings(nullptr, 0);
    char small[16] = "untouched";
    t.check(length > 0 && cc_emu_take_warnings(small, sizeof small) == length && std::string(small) == "untouched" &&
                cc_emu_take_warnings(nullptr, 0) == length,
            "cc_emu_take_warnings says the length, and copies and forgets nothing into a buffer too small");
    const std::string text = take_warnings();
    t.check(text.size() == length && text.rfind("cc_test_early_return_barrier (grid (1,1,1), block (64,1,1)): warning: kernel "
                                                "cc_test_early_return_barrier, block (0,0,0)", 0) == 0 &&
                text.find("CC_EMU_EXITED_AT_BARRIER") != std::string::npos && text.back() == '\n' && count_lines(text, "cc_") == 1,
            "the warning is kept as one line naming kernel, grid, block and diagnostic: " + text);
    t.check(cc_emu_take_warnings(nullptr, 0) == 0, "a warning is handed out once");

    // Strict mode: the same launch fails with the diagnostic, and nothing is kept.
    cc_emu_set_strict(1);
    const cc_status strict = launch_early_return(out.data(), why);
    cc_emu_set_strict(0);
    t.check(strict == CC_ERROR_EMULATOR && std::string(why.text).find("CC_EMU_EXITED_AT_BARRIER") != std::string::npos &&
                cc_emu_take_warnings(nullptr, 0) == 0,
            "in strict mode it is CC_ERROR_EMULATOR and no warning");

    // A caller that never takes them: the log stops growing at its fixed size and says how many it dropped.
    const int launches = 400; // about 300 bytes each: well past the 64 KiB kept
    for (int i = 0; i < launches; ++i) launch_early_return(out.data(), why);
    const std::string many = take_warnings();
    const int kept = count_lines(many, "cc_test_early_return_barrier (");
    const std::string dropped = "cc_emu_take_warnings: " + std::to_string(launches - kept) + " more warning(s) dropped";
    t.check(kept > 0 && kept < launches && many.size() <= 64 * 1024 + 160 && many.find(dropped) != std::string::npos,
            "400 warnings: " + std::to_string(kept) + " kept, the rest counted (" + dropped + ")");
    t.check(cc_emu_take_warnings(nullptr, 0) == 0, "taking them also clears the count of dropped ones");
    cc_emu_set_strict(previous_strict);
}

} // namespace

void run_runtime_tests(Tally& t)
{
    test_production_kernels_left_no_warning(t);
    test_refused_launch(t);
    test_kernel_fault(t);
    test_warning_kept(t);
}

} // namespace cc_abi_test
