// A fake CUDA driver (build/test/libcheapconv_fake_cuda.so) for testing libcheapconv.so's CUDA runtime
// without a GPU: the C ABI tests point CHEAPCONV_CUDA_DRIVER at it.
//
// It exports the driver entry points libcheapconv.so resolves, behaves as configured by the environment
// variable CHEAPCONV_FAKE_CUDA (read at every call, "key=value,key=value"), and records what it was asked
// to do in a log the test reads through fake_cuda_log():
//   init=N     cuInit returns N (e.g. 100, CUDA_ERROR_NO_DEVICE)          default 0
//   devices=N  cuDeviceGetCount reports N devices                          default 1
//   cc=MN      compute capability M.N of every device (e.g. 90, 86)        default 90
//   load=N     cuModuleLoadDataEx returns N (and writes a JIT log)         default 0
//   launch=N   cuLaunchKernel returns N                                    default 0
//   memset=N   cuMemsetD32Async returns N                                  default 0
// Modules are checked like a driver would: an image must be PTX text (".version", ".target") or a fatbin
// (magic 0xBA55ED50), and cuModuleGetFunction finds a kernel only if its name is in that image (a PTX
// ".entry NAME(" or the name's bytes in the fatbin's ELF string tables). Log lines:
//   load ptx|fatbin <kernels in image>   launch NAME grid=(x,y,z) block=(x,y,z) shared=N stream=P
//   memset32 words=N value=V             push CTX / pop CTX / retain DEV / release DEV
// Contexts are fake pointers; the current-context stack is per thread, as in the real driver.
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

using CUresult = int;
using CUdevice = int;
using CUcontext = void*;
using CUmodule = void*;
using CUfunction = void*;
using CUstream = void*;

constexpr CUresult kSuccess = 0;
constexpr CUresult kInvalidValue = 1;
constexpr CUresult kNotInitialized = 3;
constexpr CUresult kInvalidContext = 201;
constexpr CUresult kInvalidImage = 200;
constexpr CUresult kNotFound = 500;
constexpr std::uint32_t kFatbinMagic = 0xBA55ED50u;

// The primary context of device d is kContexts + d: distinct, stable fake pointers.
char kContexts[16];

int setting(const char* key, int fallback)
{
    const char* config = std::getenv("CHEAPCONV_FAKE_CUDA");
    if (config == nullptr) return fallback;
    const std::size_t length = std::strlen(key);
    for (const char* at = config; (at = std::strstr(at, key)) != nullptr; at += length)
        if ((at == config || at[-1] == ',') && at[length] == '=') return std::atoi(at + length + 1);
    return fallback;
}

std::mutex g_mu;
std::string g_log;
bool g_initialized = false;
thread_local std::vector<CUcontext> t_stack;

void record(const char* format, ...) __attribute__((format(printf, 1, 2)));
void record(const char* format, ...)
{
    char line[512];
    va_list args;
    va_start(args, format);
    std::vsnprintf(line, sizeof line, format, args);
    va_end(args);
    std::lock_guard<std::mutex> lock(g_mu);
    g_log += line;
    g_log += '\n';
}

struct Function {
    std::string name;
};

struct Module {
    bool fatbin;
    std::string image; // the bytes, to look kernel names up in
    std::vector<std::unique_ptr<Function>> functions;
};

bool initialized()
{
    std::lock_guard<std::mutex> lock(g_mu);
    return g_initialized;
}

} // namespace

extern "C" {

// ---- test side -----------------------------------------------------------------------------------------
const char* fake_cuda_log()
{
    static thread_local std::string copy;
    std::lock_guard<std::mutex> lock(g_mu);
    copy = g_log;
    return copy.c_str();
}

void fake_cuda_reset()
{
    std::lock_guard<std::mutex> lock(g_mu);
    g_log.clear();
}

// ---- driver API ------------------------------------------------------------------------------------------
CUresult cuInit(unsigned flags)
{
    if (flags != 0) return kInvalidValue;
    const CUresult r = setting("init", kSuccess);
    std::lock_guard<std::mutex> lock(g_mu);
    g_initialized = r == kSuccess;
    return r;
}

CUresult cuGetErrorName(CUresult error, const char** name)
{
    switch (error) {
    case 0: *name = "CUDA_SUCCESS"; return kSuccess;
    case 1: *name = "CUDA_ERROR_INVALID_VALUE"; return kSuccess;
    case 3: *name = "CUDA_ERROR_NOT_INITIALIZED"; return kSuccess;
    case 100: *name = "CUDA_ERROR_NO_DEVICE"; return kSuccess;
    case 200: *name = "CUDA_ERROR_INVALID_IMAGE"; return kSuccess;
    case 201: *name = "CUDA_ERROR_INVALID_CONTEXT"; return kSuccess;
    case 218: *name = "CUDA_ERROR_INVALID_PTX"; return kSuccess;
    case 500: *name = "CUDA_ERROR_NOT_FOUND"; return kSuccess;
    case 701: *name = "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"; return kSuccess;
    default: *name = nullptr; return kInvalidValue;
    }
}

CUresult cuDeviceGetCount(int* count)
{
    if (!initialized()) return kNotInitialized;
    *count = setting("devices", 1);
    return kSuccess;
}

CUresult cuDeviceGet(CUdevice* device, int ordinal)
{
    if (!initialized()) return kNotInitialized;
    if (ordinal < 0 || ordinal >= setting("devices", 1)) return 101; // CUDA_ERROR_INVALID_DEVICE
    *device = ordinal;
    return kSuccess;
}

CUresult cuDeviceGetAttribute(int* value, int attribute, CUdevice)
{
    const int cc = setting("cc", 90);
    if (attribute == 75) *value = cc / 10;      // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
    else if (attribute == 76) *value = cc % 10; // ..._MINOR
    else return kInvalidValue;
    return kSuccess;
}

CUresult cuDeviceGetName(char* name, int length, CUdevice device)
{
    std::snprintf(name, static_cast<std::size_t>(length), "Fake GPU %d", device);
    return kSuccess;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice device)
{
    *context = kContexts + device;
    record("retain %d", device);
    return kSuccess;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device)
{
    record("release %d", device);
    return kSuccess;
}

CUresult cuCtxGetCurrent(CUcontext* context)
{
    if (!initialized()) return kNotInitialized;
    *context = t_stack.empty() ? nullptr : t_stack.back();
    return kSuccess;
}

CUresult cuCtxGetDevice(CUdevice* device)
{
    if (t_stack.empty()) return kInvalidContext;
    const auto offset = static_cast<char*>(t_stack.back()) - kContexts;
    *device = offset >= 0 && offset < 16 ? static_cast<CUdevice>(offset) : 0;
    return kSuccess;
}

CUresult cuCtxPushCurrent_v2(CUcontext context)
{
    if (context == nullptr) return kInvalidContext;
    t_stack.push_back(context);
    record("push %p", context);
    return kSuccess;
}

CUresult cuCtxPopCurrent_v2(CUcontext* context)
{
    if (t_stack.empty()) return kInvalidContext;
    if (context != nullptr) *context = t_stack.back();
    record("pop %p", t_stack.back());
    t_stack.pop_back();
    return kSuccess;
}

CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned options, int* keys, void** values)
{
    if (t_stack.empty()) return kInvalidContext;
    const CUresult configured = setting("load", kSuccess);
    if (configured != kSuccess) {
        // Like the JIT: the error log goes into CU_JIT_ERROR_LOG_BUFFER.
        for (unsigned i = 0; i < options; ++i)
            if (keys[i] == 5) std::snprintf(static_cast<char*>(values[i]), 64, "fake JIT log: line 1: syntax error");
        return configured;
    }
    std::uint32_t magic;
    std::memcpy(&magic, image, sizeof magic);
    auto* m = new Module;
    if (magic == kFatbinMagic) {
        // Fatbin header: magic, u16 version, u16 header size, u64 size of what follows the header.
        std::uint16_t header;
        std::uint64_t size;
        std::memcpy(&header, static_cast<const char*>(image) + 6, sizeof header);
        std::memcpy(&size, static_cast<const char*>(image) + 8, sizeof size);
        m->fatbin = true;
        m->image.assign(static_cast<const char*>(image), header + size);
    } else {
        m->fatbin = false;
        m->image = static_cast<const char*>(image);
        if (m->image.find(".version") == std::string::npos || m->image.find(".target") == std::string::npos) {
            delete m;
            return kInvalidImage;
        }
    }
    record("load %s", m->fatbin ? "fatbin" : "ptx");
    *module = m;
    return kSuccess;
}

CUresult cuModuleGetFunction(CUfunction* function, CUmodule module, const char* name)
{
    auto* m = static_cast<Module*>(module);
    // PTX names its kernels ".entry NAME("; a fatbin's cubins hold the name NUL-terminated in their string tables.
    const std::string needle = m->fatbin ? std::string(name) + '\0' : ".entry " + std::string(name) + "(";
    if (m->image.find(needle) == std::string::npos) return kNotFound;
    m->functions.push_back(std::make_unique<Function>(Function{name}));
    *function = m->functions.back().get();
    return kSuccess;
}

CUresult cuModuleUnload(CUmodule module)
{
    delete static_cast<Module*>(module);
    return kSuccess;
}

CUresult cuLaunchKernel(CUfunction function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, CUstream stream, void** params, void** extra)
{
    if (t_stack.empty()) return kInvalidContext;
    if (params == nullptr || extra != nullptr) return kInvalidValue;
    const CUresult configured = setting("launch", kSuccess);
    if (configured != kSuccess) return configured;
    record("launch %s grid=(%u,%u,%u) block=(%u,%u,%u) shared=%u stream=%p", static_cast<const Function*>(function)->name.c_str(), gx, gy,
           gz, bx, by, bz, shared, stream);
    return kSuccess;
}

CUresult cuMemsetD32Async(unsigned long long destination, unsigned value, std::size_t count, CUstream)
{
    if (t_stack.empty()) return kInvalidContext;
    const CUresult configured = setting("memset", kSuccess);
    if (configured != kSuccess) return configured;
    if (destination % 4 != 0) return kInvalidValue;
    record("memset32 words=%zu value=%u", count, value);
    return kSuccess;
}

} // extern "C"
