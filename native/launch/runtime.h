// The one seam between the launchers and what runs the kernels. The launchers (conv.cpp, linear.cpp, ...)
// decide the kernel, geometry and arguments; a Runtime only carries out "launch kernel K with this grid,
// block, shared memory and void** arguments on this stream" and "set these 32-bit words" (a memset,
// ordered on the stream like a launch). Two implementations, one per library:
//   cuda_runtime.cpp  libcheapconv.so      the CUDA driver API over a dlopen'd libcuda.so.1
//   emu_runtime.cpp   libcheapconv_emu.so  the CPU emulator (host pointers, streams ignored)
// Both libraries contain the same launcher objects; each links exactly one runtime, which provides
// create_runtime() and runtime_backend().
#ifndef CHEAPCONV_LAUNCH_RUNTIME_H
#define CHEAPCONV_LAUNCH_RUNTIME_H

#include "cheapconv.h"
#include "kernel_table.h"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace cc {

struct Dim3 {
    unsigned x = 1, y = 1, z = 1;
};

struct Geometry {
    Dim3 grid, block;
    unsigned shared_bytes = 0; // dynamic shared memory per block
};

// Why a runtime call failed, in the runtime's own words ("CUDA_ERROR_INVALID_VALUE", an emulator
// diagnostic); the launcher prefixes the kernel, geometry and problem.
struct Reason {
    char text[2048] = "";
};

// The sizes of a launch's arguments, in parameter order (what a recording needs to keep their values).
struct ArgSizes {
    const std::size_t* bytes = nullptr;
    int count = 0;
};

// What the launchers may ask of the device a runtime runs on, fixed when the runtime is created.
struct DeviceFacts {
    int compute_capability = 0;   // major * 10 + minor: 90 for an H100
    int multiprocessors = 0;      // SMs
    // The loaded code has the bodies of the thread-block-cluster kernels (CC_HAS_CLUSTERS) and the device runs them:
    // an sm_90 device running the fatbin's sm_90 SASS, or the emulator. Not the clang PTX (.target sm_80), where
    // those kernels are empty.
    bool cluster_kernels = false;
};

// A finished capture (cc_graph): runs what was recorded, in order, on a stream.
class Graph {
public:
    virtual ~Graph() = default;
    virtual cc_status launch(void* stream, Reason& why) const = 0;
};

class Runtime {
public:
    virtual ~Runtime() = default;

    // Enqueues the kernel on `stream`. args[i] points at the i-th parameter's value (cuLaunchKernel's
    // convention), of sizes.bytes[i] bytes. Returns CC_SUCCESS, or CC_ERROR_LAUNCH / CC_ERROR_EMULATOR /
    // CC_ERROR_DRIVER with `why`.
    virtual cc_status launch(KernelId kernel, const Geometry& geometry, void** args, ArgSizes sizes, void* stream,
                             Reason& why) const = 0;

    // Sets `count` 32-bit words at `destination` to `value`, ordered on `stream` like a launch.
    virtual cc_status memset32(void* destination, std::uint32_t value, std::size_t count, void* stream,
                               Reason& why) const = 0;

    // cc_memcpy_async and cc_memset8_async: ordered on `stream` like a launch.
    virtual cc_status memcpy(void* destination, const void* source, std::size_t bytes, void* stream, Reason& why) const = 0;
    virtual cc_status memset8(void* destination, unsigned char value, std::size_t bytes, void* stream, Reason& why) const = 0;

    // Stream capture (cc_capture_begin / cc_capture_end): from begin to end the calls on `stream` are recorded, not
    // run; end hands over the recording. CC_ERROR_INVALID_VALUE (with `why`) for a second begin or an end without one.
    virtual cc_status begin_capture(void* stream, Reason& why) const = 0;
    virtual cc_status end_capture(void* stream, std::unique_ptr<Graph>* graph, Reason& why) const = 0;

    // The device's facts (DeviceFacts).
    virtual DeviceFacts device() const = 0;

    // cc_describe's text: the device, and where the kernels came from.
    virtual void describe(char* text, std::size_t capacity) const = 0;
};

// Creates the library's runtime for cc_create (device >= 0 or CC_CURRENT_CONTEXT, already range-checked).
// On failure records the reason (cc::fail) and returns its status; *runtime is then unchanged.
cc_status create_runtime(int device, std::unique_ptr<Runtime>* runtime);

// cc_backend_kind of this library.
cc_backend runtime_backend();

} // namespace cc

// The opaque cc_handle of cheapconv.h: a runtime, immutable after cc_create (so calls on one handle from
// several threads need no lock here; each runtime is thread-safe for launches).
struct cc_handle_s {
    std::unique_ptr<cc::Runtime> runtime;
};

#endif
