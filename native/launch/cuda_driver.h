// The few CUDA driver API types, constants and entry points libcheapconv.so uses, declared here so that
// building needs no CUDA header or toolkit, and loaded at run time with dlopen so that a machine without
// a GPU gets CC_ERROR_NO_DEVICE with the reason instead of a loader error.
//
// The library is libcuda.so.1, or the path in $CHEAPCONV_CUDA_DRIVER (the tests point it at a fake driver,
// native/tests/fake_cuda). Entry points are resolved by the versioned names cuda.h's macros select
// (cuCtxPushCurrent -> cuCtxPushCurrent_v2, ...); signatures and values are those of cuda.h (CUDA 11+).
#ifndef CHEAPCONV_LAUNCH_CUDA_DRIVER_H
#define CHEAPCONV_LAUNCH_CUDA_DRIVER_H

#include "cheapconv.h"

#include <cstddef>

namespace cc::cuda {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st*;
using CUmodule = struct CUmod_st*;
using CUfunction = struct CUfunc_st*;
using CUstream = struct CUstream_st*;
using CUgraph = struct CUgraph_st*;
using CUgraphExec = struct CUgraphExec_st*;

inline constexpr CUresult CUDA_SUCCESS = 0;
inline constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
inline constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
inline constexpr int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
inline constexpr int CU_JIT_ERROR_LOG_BUFFER = 5;
inline constexpr int CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;
// Relaxed capture: other threads may keep calling the driver (and, say, allocate) while a stream is captured.
inline constexpr int CU_STREAM_CAPTURE_MODE_RELAXED = 2;
inline constexpr int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

// The environment variable that replaces "libcuda.so.1".
inline constexpr const char* kDriverEnvironmentVariable = "CHEAPCONV_CUDA_DRIVER";

// The resolved entry points of one dlopen of the driver.
struct Driver {
    void* library = nullptr;
    char path[512] = "";
    CUresult (*cuInit)(unsigned flags) = nullptr;
    CUresult (*cuDeviceGetCount)(int* count) = nullptr;
    CUresult (*cuDeviceGet)(CUdevice* device, int ordinal) = nullptr;
    CUresult (*cuDeviceGetAttribute)(int* value, int attribute, CUdevice device) = nullptr;
    CUresult (*cuDeviceGetName)(char* name, int length, CUdevice device) = nullptr;
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext* context, CUdevice device) = nullptr;
    CUresult (*cuDevicePrimaryCtxRelease)(CUdevice device) = nullptr;
    CUresult (*cuCtxGetCurrent)(CUcontext* context) = nullptr;
    CUresult (*cuCtxGetDevice)(CUdevice* device) = nullptr;
    CUresult (*cuCtxPushCurrent)(CUcontext context) = nullptr;
    CUresult (*cuCtxPopCurrent)(CUcontext* context) = nullptr;
    CUresult (*cuModuleLoadDataEx)(CUmodule* module, const void* image, unsigned options, int* option_keys,
                                   void** option_values) = nullptr;
    CUresult (*cuModuleGetFunction)(CUfunction* function, CUmodule module, const char* name) = nullptr;
    CUresult (*cuModuleUnload)(CUmodule module) = nullptr;
    CUresult (*cuFuncSetAttribute)(CUfunction function, int attribute, int value) = nullptr;
    CUresult (*cuLaunchKernel)(CUfunction function, unsigned grid_x, unsigned grid_y, unsigned grid_z, unsigned block_x,
                               unsigned block_y, unsigned block_z, unsigned shared_bytes, CUstream stream, void** params,
                               void** extra) = nullptr;
    CUresult (*cuMemsetD32Async)(CUdeviceptr destination, unsigned value, std::size_t count, CUstream stream) = nullptr;
    CUresult (*cuGetErrorName)(CUresult error, const char** name) = nullptr;
    CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr destination, CUdeviceptr source, std::size_t bytes, CUstream stream) = nullptr;
    CUresult (*cuMemsetD8Async)(CUdeviceptr destination, unsigned char value, std::size_t count, CUstream stream) = nullptr;

    // Stream capture and graphs: optional (null on a driver older than CUDA 11.4, where cc_capture_begin says so).
    CUresult (*cuStreamBeginCapture)(CUstream stream, int mode) = nullptr;
    CUresult (*cuStreamEndCapture)(CUstream stream, CUgraph* graph) = nullptr;
    CUresult (*cuGraphInstantiateWithFlags)(CUgraphExec* exec, CUgraph graph, unsigned long long flags) = nullptr;
    CUresult (*cuGraphLaunch)(CUgraphExec exec, CUstream stream) = nullptr;
    CUresult (*cuGraphExecDestroy)(CUgraphExec exec) = nullptr;
    CUresult (*cuGraphDestroy)(CUgraph graph) = nullptr;

    // "CUDA_ERROR_INVALID_VALUE", or "CUresult 999" where the driver does not know the value.
    const char* error_name(CUresult result, char* buffer, std::size_t capacity) const;
};

// dlopens the driver and resolves every entry point above. On failure records why (no library, with
// dlerror's text; a missing entry point) as CC_ERROR_NO_DEVICE and leaves nothing loaded.
cc_status load_driver(const char* call, Driver* driver);

// dlcloses what load_driver opened.
void unload_driver(Driver* driver);

} // namespace cc::cuda

#endif
