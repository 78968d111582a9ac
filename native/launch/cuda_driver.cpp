// Loading the CUDA driver at run time (see cuda_driver.h).
#include "cuda_driver.h"

#include "status.h"

#include <dlfcn.h>

#include <cstdlib>
#include <type_traits>

namespace cc::cuda {

const char* Driver::error_name(CUresult result, char* buffer, std::size_t capacity) const
{
    const char* name = nullptr;
    if (cuGetErrorName != nullptr && cuGetErrorName(result, &name) == CUDA_SUCCESS && name != nullptr) return name;
    format_into(buffer, capacity, "CUresult %d", result);
    return buffer;
}

cc_status load_driver(const char* call, Driver* driver)
{
    const char* override_path = std::getenv(kDriverEnvironmentVariable);
    const char* path = override_path != nullptr && *override_path != '\0' ? override_path : "libcuda.so.1";
    Driver d;
    format_into(d.path, sizeof d.path, "%s", path);
    d.library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (d.library == nullptr) {
        const char* reason = dlerror();
        return fail(CC_ERROR_NO_DEVICE,
                    "%s: no CUDA driver: cannot load %s (%s). Install the NVIDIA driver, or set %s to the driver library's path",
                    call, path, reason != nullptr ? reason : "no reason given", kDriverEnvironmentVariable);
    }

    // Resolves one entry point by its exported (versioned) name into the member of the same role.
    bool complete = true;
    const char* missing = "";
    const auto resolve = [&](auto& entry, const char* name) {
        entry = reinterpret_cast<std::remove_reference_t<decltype(entry)>>(dlsym(d.library, name));
        if (entry == nullptr && complete) {
            complete = false;
            missing = name;
        }
    };
    resolve(d.cuInit, "cuInit");
    resolve(d.cuDeviceGetCount, "cuDeviceGetCount");
    resolve(d.cuDeviceGet, "cuDeviceGet");
    resolve(d.cuDeviceGetAttribute, "cuDeviceGetAttribute");
    resolve(d.cuDeviceGetName, "cuDeviceGetName");
    resolve(d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    resolve(d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    resolve(d.cuCtxGetCurrent, "cuCtxGetCurrent");
    resolve(d.cuCtxGetDevice, "cuCtxGetDevice");
    resolve(d.cuCtxPushCurrent, "cuCtxPushCurrent_v2");
    resolve(d.cuCtxPopCurrent, "cuCtxPopCurrent_v2");
    resolve(d.cuModuleLoadDataEx, "cuModuleLoadDataEx");
    resolve(d.cuModuleGetFunction, "cuModuleGetFunction");
    resolve(d.cuModuleUnload, "cuModuleUnload");
    resolve(d.cuFuncSetAttribute, "cuFuncSetAttribute");
    resolve(d.cuLaunchKernel, "cuLaunchKernel");
    resolve(d.cuMemsetD32Async, "cuMemsetD32Async");
    resolve(d.cuGetErrorName, "cuGetErrorName");
    resolve(d.cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
    resolve(d.cuMemsetD8Async, "cuMemsetD8Async");
    if (complete) {
        // Optional: a driver without them still runs every kernel; only capture is refused.
        const auto optional = [&](auto& entry, const char* name) {
            entry = reinterpret_cast<std::remove_reference_t<decltype(entry)>>(dlsym(d.library, name));
        };
        optional(d.cuStreamBeginCapture, "cuStreamBeginCapture_v2");
        optional(d.cuStreamEndCapture, "cuStreamEndCapture");
        optional(d.cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags");
        optional(d.cuGraphLaunch, "cuGraphLaunch");
        optional(d.cuGraphExecDestroy, "cuGraphExecDestroy");
        optional(d.cuGraphDestroy, "cuGraphDestroy");
    }
    if (!complete) {
        dlclose(d.library);
        return fail(CC_ERROR_NO_DEVICE, "%s: %s is not a usable CUDA driver: it has no entry point %s (not the NVIDIA driver, or one older than CUDA 11)", call, path,
                    missing);
    }
    *driver = d;
    return CC_SUCCESS;
}

void unload_driver(Driver* driver)
{
    if (driver->library != nullptr) dlclose(driver->library);
    driver->library = nullptr;
}

} // namespace cc::cuda
