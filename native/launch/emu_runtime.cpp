// The emulator runtime of libcheapconv_emu.so (runtime.h): launches go through the emulator's own launch
// path (cc_emu_launch, the same one the C# EmulatedDevice and the tests use), pointers are host pointers,
// a memset is a loop, streams are ignored and every call has finished when it returns.
//
// Status mapping: the emulator's diagnostics (divergent barrier, deadlock, warp mismatch, ...) become
// CC_ERROR_EMULATOR; its CUDA-style refusals (invalid geometry, unknown kernel, out of memory) become
// CC_ERROR_LAUNCH, as a GPU would report them. Either way the message is the emulator's own text.
#include "runtime.h"
#include "status.h"

#include "cc_emu.h"
#include "emu_internal.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace cc {
namespace {

cc_status status_of(int emulator_status)
{
    if (emulator_status == CC_EMU_SUCCESS) return CC_SUCCESS;
    return emulator_status >= CC_EMU_DIVERGENT_BARRIER ? CC_ERROR_EMULATOR : CC_ERROR_LAUNCH;
}

bool registered(const char* kernel)
{
    for (int i = 0; i < cc_emu_kernel_count(); ++i)
        if (std::strcmp(cc_emu_kernel_name(i), kernel) == 0) return true;
    return false;
}

class EmulatorRuntime final : public Runtime {
public:
    cc_status launch(KernelId kernel, const Geometry& g, void** args, void* /*stream*/, Reason& why) const override
    {
        const int status = cc_emu_launch(kernel_name(kernel), cc_dim3{g.grid.x, g.grid.y, g.grid.z},
                                         cc_dim3{g.block.x, g.block.y, g.block.z}, g.shared_bytes, args, why.text,
                                         static_cast<int>(sizeof why.text));
        return status_of(status);
    }

    cc_status memset32(void* destination, std::uint32_t value, std::size_t count, void* /*stream*/, Reason& /*why*/) const override
    {
        std::fill_n(static_cast<std::uint32_t*>(destination), count, value);
        return CC_SUCCESS;
    }

    void describe(char* text, std::size_t capacity) const override
    {
        format_into(text, capacity, "emulator: %d worker threads", cc_emu::worker_thread_count());
    }
};

} // namespace

cc_status create_runtime(int /*device: the emulator has one CPU "device"*/, std::unique_ptr<Runtime>* runtime)
{
    // Every kernel the launchers can ask for must be in this library: a kernel listed in
    // cheapconv/kernels.h but never registered would otherwise fail only when first launched.
    for (int i = 0; i < kKernelCount; ++i) {
        const char* name = kernel_name(static_cast<KernelId>(i));
        if (!registered(name))
            return fail(CC_ERROR_INTERNAL, "cc_create: kernel %s is declared in cheapconv/kernels.h but not registered in the emulator "
                                           "(a missing CC_REGISTER_KERNEL?)", name);
    }
    runtime->reset(new (std::nothrow) EmulatorRuntime);
    if (!*runtime) return fail(CC_ERROR_INTERNAL, "cc_create: out of host memory for the emulator runtime");
    return CC_SUCCESS;
}

cc_backend runtime_backend() { return CC_BACKEND_EMULATOR; }

} // namespace cc
