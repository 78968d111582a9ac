// The CUDA runtime of libcheapconv.so (runtime.h), over the driver API loaded by cuda_driver.cpp.
//
// cc_create binds a handle to one context: a device's primary context (retained, released by
// cc_destroy) or the caller's current one (CC_CURRENT_CONTEXT, not retained). It loads every kernel
// module into that context, choosing per device:
//   - the embedded nvcc fatbin, when it holds SASS for the device's exact compute capability (sm_80 and
//     sm_90 as the Makefile builds it): no JIT, the code ptxas compiled ahead of time;
//   - otherwise the embedded clang PTX (.target sm_80), which the driver JIT-compiles for the device
//     (any compute capability 8.0 or later).
// $CHEAPCONV_CUDA_PTX_ONLY=1 forces the PTX (to compare the two on one GPU). cc_describe reports which.
//
// Every launch and memset makes the handle's context current for its duration when another one (or
// none) is current on the calling thread, and restores the previous one, so callers that juggle contexts
// (PyTorch, several devices) never see theirs changed.
#include "runtime.h"

#include "cuda_driver.h"
#include "module_images.h"
#include "status.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

namespace cc {
namespace {

using namespace cuda;

constexpr const char* kCreate = "cc_create";
constexpr const char* kPtxOnlyEnvironmentVariable = "CHEAPCONV_CUDA_PTX_ONLY";

// Makes `context` current on this thread for the scope's lifetime unless it already is.
class ContextScope {
public:
    ContextScope(const Driver& driver, CUcontext context) : driver_(driver)
    {
        CUcontext current = nullptr;
        status_ = driver.cuCtxGetCurrent(&current);
        if (status_ == CUDA_SUCCESS && current != context) {
            status_ = driver.cuCtxPushCurrent(context);
            pushed_ = status_ == CUDA_SUCCESS;
        }
    }
    ~ContextScope()
    {
        CUcontext popped = nullptr;
        if (pushed_) driver_.cuCtxPopCurrent(&popped);
    }
    ContextScope(const ContextScope&) = delete;
    ContextScope& operator=(const ContextScope&) = delete;

    CUresult status() const { return status_; }

private:
    const Driver& driver_;
    CUresult status_ = CUDA_SUCCESS;
    bool pushed_ = false;
};

class CudaRuntime final : public Runtime {
public:
    ~CudaRuntime() override
    {
        if (context_ != nullptr) {
            ContextScope scope(driver_, context_);
            for (CUmodule module : modules_)
                if (module != nullptr) driver_.cuModuleUnload(module);
        }
        if (retained_) driver_.cuDevicePrimaryCtxRelease(device_);
        unload_driver(&driver_);
    }

    // cc_create's work: driver, context, device facts, modules. The destructor undoes any part done.
    cc_status open(int ordinal);

    cc_status launch(KernelId kernel, const Geometry& g, void** args, ArgSizes /*sizes: the driver copies them itself*/, void* stream,
                     Reason& why) const override
    {
        ContextScope scope(driver_, context_);
        if (scope.status() != CUDA_SUCCESS) return driver_failure(why, "making the handle's context current", scope.status());
        CC_TRY(allow_dynamic_shared(kernel, g.shared_bytes, why));
        const CUresult r = driver_.cuLaunchKernel(functions_[static_cast<int>(kernel)], g.grid.x, g.grid.y, g.grid.z, g.block.x,
                                                  g.block.y, g.block.z, g.shared_bytes, static_cast<CUstream>(stream), args, nullptr);
        if (r == CUDA_SUCCESS) return CC_SUCCESS;
        char buffer[32];
        format_into(why.text, sizeof why.text, "cuLaunchKernel returned %s", driver_.error_name(r, buffer, sizeof buffer));
        return CC_ERROR_LAUNCH;
    }

    cc_status memset32(void* destination, std::uint32_t value, std::size_t count, void* stream, Reason& why) const override
    {
        ContextScope scope(driver_, context_);
        if (scope.status() != CUDA_SUCCESS) return driver_failure(why, "making the handle's context current", scope.status());
        const CUresult r = driver_.cuMemsetD32Async(reinterpret_cast<CUdeviceptr>(destination), value, count,
                                                    static_cast<CUstream>(stream));
        return r == CUDA_SUCCESS ? CC_SUCCESS : driver_failure(why, "cuMemsetD32Async", r);
    }

    cc_status memcpy(void* destination, const void* source, std::size_t bytes, void* stream, Reason& why) const override
    {
        ContextScope scope(driver_, context_);
        if (scope.status() != CUDA_SUCCESS) return driver_failure(why, "making the handle's context current", scope.status());
        const CUresult r = driver_.cuMemcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(destination), reinterpret_cast<CUdeviceptr>(source), bytes,
                                                     static_cast<CUstream>(stream));
        return r == CUDA_SUCCESS ? CC_SUCCESS : driver_failure(why, "cuMemcpyDtoDAsync_v2", r);
    }

    cc_status memset8(void* destination, unsigned char value, std::size_t bytes, void* stream, Reason& why) const override
    {
        ContextScope scope(driver_, context_);
        if (scope.status() != CUDA_SUCCESS) return driver_failure(why, "making the handle's context current", scope.status());
        const CUresult r = driver_.cuMemsetD8Async(reinterpret_cast<CUdeviceptr>(destination), value, bytes, static_cast<CUstream>(stream));
        return r == CUDA_SUCCESS ? CC_SUCCESS : driver_failure(why, "cuMemsetD8Async", r);
    }

    // The driver's own stream capture: it records what is queued on the stream, the caller's copies included.
    cc_status begin_capture(void* stream, Reason& why) const override
    {
        if (driver_.cuStreamBeginCapture == nullptr || driver_.cuGraphInstantiateWithFlags == nullptr) {
            format_into(why.text, sizeof why.text, "the CUDA driver %s has no stream capture with cuGraphInstantiateWithFlags (CUDA 11.4 or later)",
                        driver_.path);
            return CC_ERROR_NOT_SUPPORTED;
        }
        if (stream == nullptr) {
            format_into(why.text, sizeof why.text,
                        "CUDA cannot capture the legacy default stream (NULL): create a stream (cuStreamCreate) and queue the work on it");
            return CC_ERROR_NOT_SUPPORTED;
        }
        ContextScope scope(driver_, context_);
        if (scope.status() != CUDA_SUCCESS) return driver_failure(why, "making the handle's context current", scope.status());
        const CUresult r = driver_.cuStreamBeginCapture(static_cast<CUstream>(stream), CU_STREAM_CAPTURE_MODE_RELAXED);
        return r == CUDA_SUCCESS ? CC_SUCCESS : driver_failure(why, "cuStreamBeginCapture_v2", r);
    }

    cc_status end_capture(void* stream, std::unique_ptr<Graph>* graph, Reason& why) const override;

    DeviceFacts device() const override
    {
        DeviceFacts facts;
        facts.compute_capability = major_ * 10 + minor_;
        facts.multiprocessors = multiprocessors_;
        // The fatbin holds SASS for exactly this device (sass_): for sm_90 that is the nvcc pass with CC_HAS_CLUSTERS.
        facts.cluster_kernels = sass_ && major_ >= 9;
        return facts;
    }

    void describe(char* text, std::size_t capacity) const override
    {
        char kernels[64];
        if (sass_)
            format_into(kernels, sizeof kernels, "SASS sm_%d%d from the fatbin", major_, minor_);
        else
            format_into(kernels, sizeof kernels, "PTX %s (JIT)", ptx_target_);
        format_into(text, capacity, "cuda: %s (device %d, sm_%d%d%s), kernels: %s", name_, device_, major_, minor_,
                    retained_ ? "" : ", the caller's context", kernels);
    }

private:
    // A launch may use more than 48 KiB of dynamic shared memory only after the kernel's attribute says so
    // (cuFuncSetAttribute, once per kernel and size: the attribute only grows).
    cc_status allow_dynamic_shared(KernelId kernel, unsigned bytes, Reason& why) const
    {
        if (bytes <= kDefaultDynamicShared) return CC_SUCCESS;
        std::lock_guard<std::mutex> lock(attribute_mu_);
        unsigned& allowed = dynamic_shared_allowed_[static_cast<int>(kernel)];
        if (bytes <= allowed) return CC_SUCCESS;
        const CUresult r = driver_.cuFuncSetAttribute(functions_[static_cast<int>(kernel)], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                                      static_cast<int>(bytes));
        if (r != CUDA_SUCCESS) return driver_failure(why, "cuFuncSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)", r);
        allowed = bytes;
        return CC_SUCCESS;
    }

    cc_status driver_failure(Reason& why, const char* what, CUresult r) const
    {
        char buffer[32];
        format_into(why.text, sizeof why.text, "%s returned %s", what, driver_.error_name(r, buffer, sizeof buffer));
        return CC_ERROR_DRIVER;
    }

    // Records "cc_create: CALL failed with CUDA_ERROR_...: detail" and returns `status`.
    cc_status create_failure(cc_status status, const char* what, CUresult r, const char* detail = "") const
    {
        char buffer[32];
        return fail(status, "%s: %s failed with %s%s%s", kCreate, what, driver_.error_name(r, buffer, sizeof buffer),
                    *detail != '\0' ? ": " : "", detail);
    }

    cc_status bind_context(int ordinal);
    cc_status load_modules();

    Driver driver_;
    CUcontext context_ = nullptr;
    CUdevice device_ = 0;
    bool retained_ = false; // the primary context of device_, released by the destructor
    int major_ = 0, minor_ = 0;
    int multiprocessors_ = 0;
    char name_[256] = "";
    bool sass_ = false;       // modules loaded from the fatbin (else PTX)
    char ptx_target_[16] = "sm_80";
    CUmodule modules_[kModuleCount] = {};
    CUfunction functions_[kKernelCount] = {};
    static constexpr unsigned kDefaultDynamicShared = 48 * 1024;
    mutable std::mutex attribute_mu_;                            // guards dynamic_shared_allowed_
    mutable unsigned dynamic_shared_allowed_[kKernelCount] = {}; // what each kernel's attribute allows above 48 KiB
};

cc_status CudaRuntime::bind_context(int ordinal)
{
    if (ordinal >= 0) {
        int count = 0;
        CUresult r = driver_.cuDeviceGetCount(&count);
        if (r != CUDA_SUCCESS) return create_failure(CC_ERROR_NO_DEVICE, "cuDeviceGetCount", r);
        if (ordinal >= count)
            return fail(CC_ERROR_NO_DEVICE, "%s: no CUDA device %d: the driver (%s) reports %d device(s)", kCreate, ordinal,
                        driver_.path, count);
        r = driver_.cuDeviceGet(&device_, ordinal);
        if (r != CUDA_SUCCESS) return create_failure(CC_ERROR_DRIVER, "cuDeviceGet", r);
        r = driver_.cuDevicePrimaryCtxRetain(&context_, device_);
        if (r != CUDA_SUCCESS) return create_failure(CC_ERROR_DRIVER, "cuDevicePrimaryCtxRetain", r);
        retained_ = true;
        return CC_SUCCESS;
    }
    CUresult r = driver_.cuCtxGetCurrent(&context_);
    if (r != CUDA_SUCCESS) return create_failure(CC_ERROR_NO_DEVICE, "cuCtxGetCurrent", r);
    if (context_ == nullptr)
        return fail(CC_ERROR_NO_DEVICE,
                    "%s: CC_CURRENT_CONTEXT was asked for, but no CUDA context is current on the calling thread (make the "
                    "caller's context current first, or pass a device ordinal to use its primary context)",
                    kCreate);
    r = driver_.cuCtxGetDevice(&device_);
    if (r != CUDA_SUCCESS) return create_failure(CC_ERROR_DRIVER, "cuCtxGetDevice", r);
    return CC_SUCCESS;
}

cc_status CudaRuntime::load_modules()
{
    ContextScope scope(driver_, context_);
    if (scope.status() != CUDA_SUCCESS) return create_failure(CC_ERROR_DRIVER, "cuCtxPushCurrent", scope.status());
    for (int m = 0; m < kModuleCount; ++m) {
        const ModuleId module = static_cast<ModuleId>(m);
        const ModuleImages images = module_images(module);
        char log[4096] = "";
        int keys[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
        void* values[] = {log, reinterpret_cast<void*>(static_cast<std::uintptr_t>(sizeof log))};
        const void* image = sass_ ? images.fatbin : static_cast<const void*>(images.ptx);
        const CUresult r = driver_.cuModuleLoadDataEx(&modules_[m], image, 2, keys, values);
        if (r != CUDA_SUCCESS) {
            char what[128];
            format_into(what, sizeof what, "cuModuleLoadDataEx for module %s (%s)", module_name(module),
                        sass_ ? "fatbin" : "PTX, JIT-compiled");
            return create_failure(CC_ERROR_DRIVER, what, r, log);
        }
    }
    for (int k = 0; k < kKernelCount; ++k) {
        const KernelId kernel = static_cast<KernelId>(k);
        const CUresult r =
            driver_.cuModuleGetFunction(&functions_[k], modules_[static_cast<int>(kernel_module(kernel))], kernel_name(kernel));
        if (r != CUDA_SUCCESS) {
            char what[160];
            format_into(what, sizeof what, "cuModuleGetFunction(%s) in module %s", kernel_name(kernel),
                        module_name(kernel_module(kernel)));
            return create_failure(CC_ERROR_INTERNAL, what, r);
        }
    }
    return CC_SUCCESS;
}

// An instantiated CUDA graph; destroyed with the handle's context current.
class CudaGraph final : public Graph {
public:
    CudaGraph(const Driver& driver, CUcontext context, CUgraph graph, CUgraphExec exec)
        : driver_(driver), context_(context), graph_(graph), exec_(exec)
    {
    }
    ~CudaGraph() override
    {
        ContextScope scope(driver_, context_);
        driver_.cuGraphExecDestroy(exec_);
        driver_.cuGraphDestroy(graph_);
    }
    CudaGraph(const CudaGraph&) = delete;
    CudaGraph& operator=(const CudaGraph&) = delete;

    cc_status launch(void* stream, Reason& why) const override
    {
        ContextScope scope(driver_, context_);
        char buffer[32];
        if (scope.status() != CUDA_SUCCESS) {
            format_into(why.text, sizeof why.text, "making the handle's context current returned %s",
                        driver_.error_name(scope.status(), buffer, sizeof buffer));
            return CC_ERROR_DRIVER;
        }
        const CUresult r = driver_.cuGraphLaunch(exec_, static_cast<CUstream>(stream));
        if (r == CUDA_SUCCESS) return CC_SUCCESS;
        format_into(why.text, sizeof why.text, "cuGraphLaunch returned %s", driver_.error_name(r, buffer, sizeof buffer));
        return CC_ERROR_LAUNCH;
    }

private:
    const Driver& driver_;
    CUcontext context_;
    CUgraph graph_;
    CUgraphExec exec_;
};

cc_status CudaRuntime::end_capture(void* stream, std::unique_ptr<Graph>* graph, Reason& why) const
{
    if (driver_.cuStreamEndCapture == nullptr) {
        format_into(why.text, sizeof why.text, "the CUDA driver %s has no stream capture", driver_.path);
        return CC_ERROR_NOT_SUPPORTED;
    }
    ContextScope scope(driver_, context_);
    if (scope.status() != CUDA_SUCCESS) return driver_failure(why, "making the handle's context current", scope.status());
    CUgraph captured = nullptr;
    CUresult r = driver_.cuStreamEndCapture(static_cast<CUstream>(stream), &captured);
    if (r != CUDA_SUCCESS) return driver_failure(why, "cuStreamEndCapture", r);
    CUgraphExec exec = nullptr;
    r = driver_.cuGraphInstantiateWithFlags(&exec, captured, 0);
    if (r != CUDA_SUCCESS) {
        driver_.cuGraphDestroy(captured);
        return driver_failure(why, "cuGraphInstantiateWithFlags", r);
    }
    graph->reset(new (std::nothrow) CudaGraph(driver_, context_, captured, exec));
    if (!*graph) {
        driver_.cuGraphExecDestroy(exec);
        driver_.cuGraphDestroy(captured);
        format_into(why.text, sizeof why.text, "out of host memory for the graph");
        return CC_ERROR_INTERNAL;
    }
    return CC_SUCCESS;
}

cc_status CudaRuntime::open(int ordinal)
{
    CC_TRY(load_driver(kCreate, &driver_));
    const CUresult r = driver_.cuInit(0);
    if (r != CUDA_SUCCESS) {
        char buffer[32];
        return fail(CC_ERROR_NO_DEVICE, "%s: the CUDA driver %s is there, but cuInit failed with %s (no usable GPU?)", kCreate,
                    driver_.path, driver_.error_name(r, buffer, sizeof buffer));
    }
    CC_TRY(bind_context(ordinal));

    CUresult a = driver_.cuDeviceGetAttribute(&major_, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device_);
    if (a == CUDA_SUCCESS) a = driver_.cuDeviceGetAttribute(&minor_, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device_);
    if (a != CUDA_SUCCESS) return create_failure(CC_ERROR_DRIVER, "cuDeviceGetAttribute(compute capability)", a);
    a = driver_.cuDeviceGetAttribute(&multiprocessors_, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device_);
    if (a != CUDA_SUCCESS) return create_failure(CC_ERROR_DRIVER, "cuDeviceGetAttribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)", a);
    if (driver_.cuDeviceGetName(name_, sizeof name_, device_) != CUDA_SUCCESS) format_into(name_, sizeof name_, "unnamed device");

    // The fatbins exist for every module or for none (one Makefile rule builds them all).
    const char* ptx_only = std::getenv(kPtxOnlyEnvironmentVariable);
    const bool forced_ptx = ptx_only != nullptr && std::strcmp(ptx_only, "1") == 0;
    sass_ = !forced_ptx && module_images(ModuleId{}).fatbin != nullptr && fatbin_has_sass(major_, minor_);
    if (const char* target = std::strstr(module_images(ModuleId{}).ptx, ".target "))
        std::sscanf(target, ".target %15[a-z_0-9]", ptx_target_);
    return load_modules();
}

} // namespace

cc_status create_runtime(int device, std::unique_ptr<Runtime>* runtime)
{
    std::unique_ptr<CudaRuntime> created(new (std::nothrow) CudaRuntime);
    if (!created) return fail(CC_ERROR_INTERNAL, "%s: out of host memory for the CUDA runtime", kCreate);
    CC_TRY(created->open(device));
    *runtime = std::move(created);
    return CC_SUCCESS;
}

cc_backend runtime_backend() { return CC_BACKEND_CUDA; }

} // namespace cc
