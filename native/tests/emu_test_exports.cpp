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
//
//   int cc_emu_test_conv_forward_on_tile(cc_handle handle, const cc_conv_problem* problem, const float* x, const float* w,
//                                        float* y, int tile)
//
// Runs the implicit GEMM's forward pass of `problem` (y = conv(x, w), no epilogue) on the block tile asked for (tile:
// 0 the 64 x 64 one, 1 the wide 64 x 128, 2 the flat 32 x 128; those two for 3x3 filters only) whatever the launcher's
// rule would choose (launch/conv_implicit_gemm.h): the rule gives the wide and flat tiles to batch-128 grids only, so
// this is how the C# tests run their kernels over the shape catalogue at the emulator's batch. Returns a cc_status (the
// reason in cc_last_error).
#include "cc_emu.h"
#include "conv_implicit_gemm.h"
#include "emu_runtime.h"
#include "runtime.h"
#include "status.h"

#include <cstdio>

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

extern "C" CC_EMU_API int cc_emu_test_conv_forward_on_tile(cc_handle handle, const cc_conv_problem* problem, const float* x,
                                                           const float* w, float* y, int tile)
{
    const char* call = "cc_emu_test_conv_forward_on_tile";
    if (handle == nullptr || problem == nullptr) return cc::fail(CC_ERROR_INVALID_VALUE, "%s: handle and problem must not be NULL", call);
    if (tile < 0 || tile > 2) return cc::fail(CC_ERROR_INVALID_VALUE, "%s: tile must be 0, 1 or 2, got %d", call, tile);
    CC_TRY(cc_conv_validate(problem));
    cc::ImplicitGemmPlan plan;
    CC_TRY(cc::plan_implicit_gemm_forward(call, *problem, static_cast<cc::ForwardTile>(tile), &plan));
    return cc::launch_implicit_gemm(*handle, plan, CC_CONV_FORWARD, *problem, x, w, y, nullptr, nullptr,
                                    [call](char* text, std::size_t capacity) { std::snprintf(text, capacity, "%s", call); });
}
