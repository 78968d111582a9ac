// The emulator runtime's launch by kernel name, for the code that must reach it without a KernelId: the
// EmulatorRuntime of emu_runtime.cpp (through kernel_name) and the tests that run a diagnostic kernel of
// tests/kernels/ the way the C ABI runs a production one (libcheapconv_emu_test.so's
// cc_emu_test_runtime_launch, the self-test). Only the emulator libraries contain it.
#ifndef CHEAPCONV_LAUNCH_EMU_RUNTIME_H
#define CHEAPCONV_LAUNCH_EMU_RUNTIME_H

#include "runtime.h"

namespace cc {

// Runs `kernel` through cc_emu_launch. Returns CC_SUCCESS, CC_ERROR_EMULATOR (a diagnostic) or CC_ERROR_LAUNCH
// (a refusal) with the emulator's text in `why`. A successful launch the emulator warned about (e.g. threads
// that returned while others waited at a barrier) is kept, with the kernel and geometry, for
// cc_emu_take_warnings (cc_emu.h): the C ABI's calls return a status and have nowhere else to put it.
cc_status emulator_launch(const char* kernel, const Geometry& geometry, void** args, Reason& why);

} // namespace cc

#endif
