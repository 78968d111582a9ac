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
#include <cstddef>
#include <mutex>
#include <new>
#include <vector>

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

// One call of a capture, kept by value: a launch with a copy of its arguments, or a memset / copy.
struct RecordedCall {
    enum class Kind { launch, memset32, memcpy, memset8 } kind = Kind::launch;
    KernelId kernel{};
    Geometry geometry;
    std::vector<std::max_align_t> arguments; // the argument values, each at its offset, aligned for any type
    std::vector<std::size_t> offsets;
    void* destination = nullptr;
    const void* source = nullptr;
    std::uint32_t value = 0;
    std::size_t count = 0; // words (memset32) or bytes (memcpy, memset8)
};

// The emulator runs every call at once, so replaying a recording is running its calls again in order.
cc_status run_call(const RecordedCall& call, Reason& why);

class EmulatorGraph final : public Graph {
public:
    explicit EmulatorGraph(std::vector<RecordedCall> calls) : calls_(std::move(calls)) {}

    cc_status launch(void* /*stream*/, Reason& why) const override
    {
        for (const RecordedCall& call : calls_) CC_TRY(run_call(call, why));
        return CC_SUCCESS;
    }

private:
    std::vector<RecordedCall> calls_;
};

// A launch's arguments copied out of the caller's void** (they live on the launcher's stack).
RecordedCall record_launch(KernelId kernel, const Geometry& g, void** args, ArgSizes sizes)
{
    RecordedCall call;
    call.kernel = kernel;
    call.geometry = g;
    std::size_t total = 0;
    for (int i = 0; i < sizes.count; ++i) {
        total = (total + alignof(std::max_align_t) - 1) / alignof(std::max_align_t) * alignof(std::max_align_t);
        call.offsets.push_back(total);
        total += sizes.bytes[i];
    }
    call.arguments.resize((total + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t));
    auto* base = reinterpret_cast<unsigned char*>(call.arguments.data());
    for (int i = 0; i < sizes.count; ++i) std::memcpy(base + call.offsets[i], args[i], sizes.bytes[i]);
    return call;
}

class EmulatorRuntime final : public Runtime {
public:
    cc_status launch(KernelId kernel, const Geometry& g, void** args, ArgSizes sizes, void* /*stream*/, Reason& why) const override
    {
        CC_TRY(allow_dynamic_shared(kernel, g.shared_bytes, why)); // at capture too: a replay runs with the allowance set
        if (record([&] { return record_launch(kernel, g, args, sizes); })) return CC_SUCCESS;
        return emulator_launch(kernel_name(kernel), g, args, why);
    }

    cc_status memset32(void* destination, std::uint32_t value, std::size_t count, void* /*stream*/, Reason& why) const override
    {
        RecordedCall call;
        call.kind = RecordedCall::Kind::memset32;
        call.destination = destination;
        call.value = value;
        call.count = count;
        return record([&] { return call; }) ? CC_SUCCESS : run_call(call, why);
    }

    cc_status memcpy(void* destination, const void* source, std::size_t bytes, void* /*stream*/, Reason& why) const override
    {
        RecordedCall call;
        call.kind = RecordedCall::Kind::memcpy;
        call.destination = destination;
        call.source = source;
        call.count = bytes;
        return record([&] { return call; }) ? CC_SUCCESS : run_call(call, why);
    }

    cc_status memset8(void* destination, unsigned char value, std::size_t bytes, void* /*stream*/, Reason& why) const override
    {
        RecordedCall call;
        call.kind = RecordedCall::Kind::memset8;
        call.destination = destination;
        call.value = value;
        call.count = bytes;
        return record([&] { return call; }) ? CC_SUCCESS : run_call(call, why);
    }

    // The emulator ignores streams, so a capture records every call made with the handle, from any thread, until it ends.
    cc_status begin_capture(void* /*stream*/, Reason& why) const override
    {
        std::lock_guard<std::mutex> lock(capture_mu_);
        if (capturing_) {
            format_into(why.text, sizeof why.text, "a capture is already under way on this handle (end it with cc_capture_end first)");
            return CC_ERROR_INVALID_VALUE;
        }
        capturing_ = true;
        recorded_.clear();
        return CC_SUCCESS;
    }

    cc_status end_capture(void* /*stream*/, std::unique_ptr<Graph>* graph, Reason& why) const override
    {
        std::lock_guard<std::mutex> lock(capture_mu_);
        if (!capturing_) {
            format_into(why.text, sizeof why.text, "no capture is under way on this handle (start one with cc_capture_begin)");
            return CC_ERROR_INVALID_VALUE;
        }
        capturing_ = false;
        graph->reset(new (std::nothrow) EmulatorGraph(std::move(recorded_)));
        recorded_.clear();
        if (!*graph) {
            format_into(why.text, sizeof why.text, "out of host memory for the graph");
            return CC_ERROR_INTERNAL;
        }
        return CC_SUCCESS;
    }

    // The emulator stands for the H100 SXM that the profile models (sm_90, 132 SMs), running the fatbin's sm_90 SASS: it
    // runs the cluster kernels, unless cc_emu_set_cluster_kernels(0) makes it stand for a GPU without them.
    DeviceFacts device() const override
    {
        DeviceFacts facts;
        facts.compute_capability = 90;
        facts.multiprocessors = 132;
        facts.cluster_kernels = cc_emu::cluster_kernels_enabled();
        return facts;
    }

    void describe(char* text, std::size_t capacity) const override
    {
        format_into(text, capacity, "emulator: %d worker threads", cc_emu::worker_thread_count());
    }

private:
    // True when a capture is under way, after adding make()'s call to the recording.
    template <class Make>
    bool record(Make&& make) const
    {
        std::lock_guard<std::mutex> lock(capture_mu_);
        if (!capturing_) return false;
        recorded_.push_back(make());
        return true;
    }

    mutable std::mutex capture_mu_;
    mutable bool capturing_ = false;
    mutable std::vector<RecordedCall> recorded_;

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

cc_status run_call(const RecordedCall& call, Reason& why)
{
    switch (call.kind) {
    case RecordedCall::Kind::launch: {
        auto* base = const_cast<unsigned char*>(reinterpret_cast<const unsigned char*>(call.arguments.data()));
        std::vector<void*> pointers;
        for (std::size_t offset : call.offsets) pointers.push_back(base + offset);
        return emulator_launch(kernel_name(call.kernel), call.geometry, pointers.data(), why);
    }
    case RecordedCall::Kind::memset32:
        std::fill_n(static_cast<std::uint32_t*>(call.destination), call.count, call.value);
        return CC_SUCCESS;
    case RecordedCall::Kind::memcpy:
        std::memcpy(call.destination, call.source, call.count);
        return CC_SUCCESS;
    case RecordedCall::Kind::memset8:
        std::memset(call.destination, static_cast<int>(call.value), call.count);
        return CC_SUCCESS;
    }
    return CC_ERROR_INTERNAL;
}

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
