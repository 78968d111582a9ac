// Exports of libcheapconv_emu_test.so only (beside the diagnostic kernels of tests/kernels/), never of the
// production libcheapconv_emu.so: a way into the C ABI's launch path for a kernel the ABI never launches.
//
//   int cc_emu_test_runtime_launch(const char* kernel, cc_dim3 grid, cc_dim3 block, unsigned dynamic_shared_bytes,
//                                  void** args, char* message, int message_capacity)
//
// Runs `kernel` as the emulator runtime runs a cc_* call's kernel (cc::emulator_launch), not as cc_emu_launch
// does: a warning is not returned but kept for cc_emu_take_warnings, exactly as for a production kernel of the
// ABI. Returns a cc_status (CC_SUCCESS, CC_ERROR_EMULATOR, CC_ERROR_LAUNCH); `message` (may be NULL) gets the
// emulator's text on failure and "" on success. The production kernels give no warning at any geometry their
// launchers choose, so this is how the C# tests see an ABI warning reach EmulatedDevice.TakeWarnings.
#include "cc_emu.h"
#include "emu_runtime.h"
#include "status.h"

extern "C" CC_EMU_API int cc_emu_test_runtime_launch(const char* kernel, cc_dim3 grid, cc_dim3 block, unsigned dynamic_shared_bytes,
                                                     void** args, char* message, int message_capacity)
{
    cc::Geometry g;
    g.grid = {grid.x, grid.y, grid.z};
    g.block = {block.x, block.y, block.z};
    g.shared_bytes = dynamic_shared_bytes;
    cc::Reason why;
    const cc_status status = cc::emulator_launch(kernel, g, args, why);
    if (message != nullptr && message_capacity > 0)
        cc::format_into(message, static_cast<std::size_t>(message_capacity), "%s", status == CC_SUCCESS ? "" : why.text);
    return status;
}
