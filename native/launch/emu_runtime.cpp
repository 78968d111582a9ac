// The emulator runtime of libcheapconv_emu.so (runtime.h): launches go through the emulator's own launch
// path (cc_emu_launch, the same one the C# EmulatedDevice and the tests use), pointers are host pointers,
// a memset is a loop, streams are ignored and every call has finished when it returns.
//
// Status mapping: the emulator's diagnostics (divergent barrier, deadlock, warp mismatch, ...) become
// CC_ERROR_EMULATOR; its CUDA-style refusals (invalid geometry, unknown kernel, out of memory) become
// CC_ERROR_LAUNCH, as a GPU would report them. Either way the message is the emulator's own text.
//
// Warnings: outside strict mode the emulator lets some launches succeed with a warning (threads that
// returned while others wait at __syncthreads: legal on the GPU, but code after the barrier must not rely on
// them). A C ABI call returns only a status, so the runtime keeps those warnings, with kernel and geometry,
// until cc_emu_take_warnings (defined here, declared in cc_emu.h) hands them out. They are kept in a fixed
// buffer: recording one never allocates or throws on the path of a call that succeeded, and a caller that
// never takes them (a C program, the Python binding) costs 64 KiB, not a growing log.
#include "emu_runtime.h"
#include "runtime.h"
#include "status.h"

#include "cc_emu.h"
#include "emu_internal.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>
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

// The warnings of the library's ABI launches since the last cc_emu_take_warnings, one line each. A line
// that no longer fits is counted instead of kept, and the count is reported when they are taken.
class WarningLog {
public:
    void add(const char* kernel, const Geometry& g, const char* warning)
    {
        char line[sizeof(Reason::text) + 256];
        format_into(line, sizeof line, "%s (grid (%u,%u,%u), block (%u,%u,%u)): %s\n", kernel, g.grid.x, g.grid.y, g.grid.z,
                    g.block.x, g.block.y, g.block.z, warning);
        const std::size_t n = std::strlen(line);
        std::lock_guard<std::mutex> lock(mu_);
        if (length_ + n >= sizeof text_) {
            ++dropped_;
            return;
        }
        std::memcpy(text_ + length_, line, n + 1);
        length_ += n;
    }

    // cc_emu_take_warnings: the whole text's length; copied and forgotten only when it fits.
    std::size_t take(char* out, std::size_t capacity)
    {
        std::lock_guard<std::mutex> lock(mu_);
        char tail[160] = "";
        if (dropped_ != 0)
            format_into(tail, sizeof tail,
                        "cc_emu_take_warnings: %llu more warning(s) dropped: the library keeps %zu bytes of them between calls\n",
                        dropped_, sizeof text_);
        const std::size_t total = length_ + std::strlen(tail);
        if (out == nullptr || capacity <= total) return total;
        std::memcpy(out, text_, length_);
        std::memcpy(out + length_, tail, std::strlen(tail) + 1);
        length_ = 0;
        text_[0] = '\0';
        dropped_ = 0;
        return total;
    }

private:
    std::mutex mu_;
    char text_[64 * 1024] = "";
    std::size_t length_ = 0;
    unsigned long long dropped_ = 0;
};

// Never destroyed: a launch on another thread may still record into it while the process exits.
WarningLog& warning_log()
{
    static WarningLog* log = new WarningLog;
    return *log;
}

class EmulatorRuntime final : public Runtime {
public:
    cc_status launch(KernelId kernel, const Geometry& g, void** args, void* /*stream*/, Reason& why) const override
    {
        CC_TRY(allow_dynamic_shared(kernel, g.shared_bytes, why));
        return emulator_launch(kernel_name(kernel), g, args, why);
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

private:
    // What the CUDA runtime does with cuFuncSetAttribute: a launch with more than 48 KiB of dynamic shared memory
    // opts its kernel in first (the emulator refuses it otherwise, as the driver would). The emulator's attribute is
    // one per kernel for the whole process, so the allowance is too, and it only grows: a concurrent launch, of this
    // handle or another, never sees it shrink under it.
    static cc_status allow_dynamic_shared(KernelId kernel, unsigned bytes, Reason& why)
    {
        if (bytes <= CC_EMU_DEFAULT_DYNAMIC_SHARED) return CC_SUCCESS;
        struct Allowance {
            std::mutex mu;
            unsigned bytes[kKernelCount] = {};
        };
        static Allowance* const allowance = new Allowance; // never destroyed: launches may run during process exit
        std::lock_guard<std::mutex> lock(allowance->mu);
        unsigned& allowed = allowance->bytes[static_cast<int>(kernel)];
        if (bytes <= allowed) return CC_SUCCESS;
        const int status = cc_emu_set_max_dynamic_shared(kernel_name(kernel), bytes);
        if (status != CC_EMU_SUCCESS) {
            format_into(why.text, sizeof why.text, "%s: kernel %s: cannot allow %u bytes of dynamic shared memory (at most %u)",
                        cc_emu_status_name(status), kernel_name(kernel), bytes, static_cast<unsigned>(CC_EMU_MAX_DYNAMIC_SHARED));
            return status_of(status);
        }
        allowed = bytes;
        return CC_SUCCESS;
    }
};

} // namespace

cc_status emulator_launch(const char* kernel, const Geometry& g, void** args, Reason& why)
{
    const int status = cc_emu_launch(kernel, cc_dim3{g.grid.x, g.grid.y, g.grid.z}, cc_dim3{g.block.x, g.block.y, g.block.z},
                                     g.shared_bytes, args, why.text, static_cast<int>(sizeof why.text));
    // On success the emulator's message is its warning, or "".
    if (status == CC_EMU_SUCCESS && why.text[0] != '\0') warning_log().add(kernel, g, why.text);
    return status_of(status);
}

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

extern "C" CC_EMU_API size_t cc_emu_take_warnings(char* text, size_t capacity)
{
    return cc::warning_log().take(text, capacity);
}
