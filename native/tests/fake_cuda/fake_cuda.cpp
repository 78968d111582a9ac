// A fake CUDA driver (build/test/libcheapconv_fake_cuda.so) for testing, without a GPU, the two users of the
// driver: libcheapconv.so's CUDA runtime (the C ABI tests of tests/abi) and the C# CudaDevice (its memory,
// copies, streams, events and contexts; tests/CheapConv.Tests/Devices/FakeDriverDeviceTests.cs). Both are pointed
// at it with CHEAPCONV_CUDA_DRIVER.
//
// It exports the driver entry points both resolve, behaves as configured by the environment variable
// CHEAPCONV_FAKE_CUDA (read at every call, "key=value,key=value"), and records what it was asked to do in a
// log the test reads through fake_cuda_log():
//   init=N     cuInit returns N (e.g. 100, CUDA_ERROR_NO_DEVICE)          default 0
//   devices=N  cuDeviceGetCount reports N devices                          default 1
//   cc=MN      compute capability M.N of every device (e.g. 90, 86)        default 90
//   load=N     cuModuleLoadDataEx returns N (and writes a JIT log)         default 0
//   launch=N   cuLaunchKernel returns N                                    default 0
//   memset=N   cuMemsetD32Async returns N                                  default 0
//   memory=M   every device has M MiB of memory (cuDeviceTotalMem, cuMemGetInfo, cuMemAlloc's limit)  default 81559
//   query=N    cuEventQuery returns N (e.g. 600, CUDA_ERROR_NOT_READY: the event's work "still runs")  default 0
//   fault=N    the first launch "faults": from then on every call that waits for or queues work (stream and
//              event synchronization, copies, memsets, launches, allocations) returns N, like a real driver after
//              a kernel's sticky error (e.g. 700, CUDA_ERROR_ILLEGAL_ADDRESS)   default 0 (none)
// Modules are checked like a driver would: an image must be PTX text (".version", ".target") or a fatbin
// (magic 0xBA55ED50), and cuModuleGetFunction finds a kernel only if its name is in that image (a PTX
// ".entry NAME(" or the name's bytes in the fatbin's ELF string tables). Kernels are never run.
//
// Memory is host memory: cuMemAlloc returns a malloc'ed block, copies and memsets really copy and set, so data
// round-trips. Every address a copy or cuMemsetD8Async names must lie inside a live allocation
// (CUDA_ERROR_INVALID_VALUE otherwise); cuMemsetD32Async writes only when it does (the C ABI tests pass
// made-up pointers, which it records and leaves alone). Contexts, streams and events are fake objects: the
// primary context of device d is a fixed pointer, cuCtxCreate makes others; a stream or event made here
// must be used with its own context current (CUDA_ERROR_INVALID_HANDLE otherwise), while a made-up stream
// pointer is accepted. Every call that touches memory, streams or events needs a current context
// (CUDA_ERROR_INVALID_CONTEXT otherwise), and the current-context stack is per thread, as in the real driver.
// Log lines (pointers as %p):
//   load ptx|fatbin                     launch NAME grid=(x,y,z) block=(x,y,z) shared=N stream=S context=C
//   attribute NAME max_dynamic_shared=N (cuFuncSetAttribute; a launch above the attribute, 48 KiB by default, is refused)
//   memset32 words=N value=V stream=S   memset8 bytes=N value=V stream=S
//   push C / pop C                      retain D refs=N / release D refs=N   (primary context reference count)
//   context create C device=D / context destroy C
//   alloc P bytes=N context=C / free P
//   memcpy htod|dtoh|dtod bytes=N stream=S
//   stream create S context=C flags=F / stream destroy S / sync stream=S
//   event create E / event record E stream=S / event destroy E / event query E / event sync E
//   hostalloc P bytes=N / freehost P     (page-locked host memory)
//   capture begin stream=S mode=M / capture end stream=S graph=G / graph instantiate G exec=E / graph launch E stream=S /
//   graph exec destroy E / graph destroy G   (stream capture: nothing is recorded or replayed, only logged)
// cuEventElapsedTime reports 1 microsecond per launch, copy or memset queued between the two records.
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
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
using CUevent = void*;
using CUdeviceptr = unsigned long long;

constexpr CUresult kSuccess = 0;
constexpr CUresult kInvalidValue = 1;
constexpr CUresult kOutOfMemory = 2;
constexpr CUresult kNotInitialized = 3;
constexpr CUresult kInvalidDevice = 101;
constexpr CUresult kInvalidImage = 200;
constexpr CUresult kInvalidContext = 201;
constexpr CUresult kInvalidHandle = 400;
constexpr CUresult kNotFound = 500;
constexpr std::uint32_t kFatbinMagic = 0xBA55ED50u;
constexpr int kMaxDevices = 16;

// The primary context of device d is kContexts + d: distinct, stable fake pointers.
char kContexts[kMaxDevices];

int setting(const char* key, int fallback)
{
    const char* config = std::getenv("CHEAPCONV_FAKE_CUDA");
    if (config == nullptr) return fallback;
    const std::size_t length = std::strlen(key);
    for (const char* at = config; (at = std::strstr(at, key)) != nullptr; at += length)
        if ((at == config || at[-1] == ',') && at[length] == '=') return std::atoi(at + length + 1);
    return fallback;
}

unsigned long long total_memory() { return static_cast<unsigned long long>(setting("memory", 81559)) << 20; }

struct Allocation {
    std::size_t bytes;
    CUcontext context;
};

struct Stream {
    CUcontext context;
};

struct Event {
    CUcontext context;
    bool recorded = false;
    unsigned long long tick = 0;
};

// Everything below is guarded by g_mu; the context stack is the calling thread's own.
std::mutex g_mu;
std::string g_log;
bool g_initialized = false;
int g_primary_refs[kMaxDevices] = {};
std::map<CUcontext, CUdevice> g_created_contexts;
std::map<char*, Allocation> g_allocations; // by start address
unsigned long long g_allocated = 0;
std::map<CUstream, std::unique_ptr<Stream>> g_streams;
std::map<CUevent, std::unique_ptr<Event>> g_events;
unsigned long long g_ticks = 0; // work queued so far: what events measure
CUresult g_sticky = kSuccess;   // the error every later call returns after a configured fault
thread_local std::vector<CUcontext> t_stack;

void record_locked(const char* format, va_list args)
{
    char line[512];
    std::vsnprintf(line, sizeof line, format, args);
    g_log += line;
    g_log += '\n';
}

void record(const char* format, ...) __attribute__((format(printf, 1, 2)));
void record(const char* format, ...)
{
    va_list args;
    va_start(args, format);
    std::lock_guard<std::mutex> lock(g_mu);
    record_locked(format, args);
    va_end(args);
}

// The same, for callers that already hold g_mu.
void record_held(const char* format, ...) __attribute__((format(printf, 1, 2)));
void record_held(const char* format, ...)
{
    va_list args;
    va_start(args, format);
    record_locked(format, args);
    va_end(args);
}

struct Function {
    std::string name;
    int max_dynamic_shared = 48 * 1024; // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
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

CUcontext current() { return t_stack.empty() ? nullptr : t_stack.back(); }

// With g_mu held: whether [address, address + bytes) lies inside one live allocation.
bool allocated_locked(const void* address, std::size_t bytes)
{
    char* const p = static_cast<char*>(const_cast<void*>(address));
    auto it = g_allocations.upper_bound(p);
    if (it == g_allocations.begin()) return false;
    --it;
    return p >= it->first && p + bytes <= it->first + it->second.bytes && bytes <= it->second.bytes;
}

// With g_mu held: a stream made here must belong to the current context; 0 and made-up pointers pass.
CUresult check_stream_locked(CUstream stream)
{
    const auto it = g_streams.find(stream);
    return it == g_streams.end() || it->second->context == current() ? kSuccess : kInvalidHandle;
}

// The checks every call that queues or waits for work makes, in the driver's order: initialised, a current
// context, no sticky error, a usable stream. With g_mu held.
CUresult check_work_locked(CUstream stream)
{
    if (!g_initialized) return kNotInitialized;
    if (current() == nullptr) return kInvalidContext;
    if (g_sticky != kSuccess) return g_sticky;
    return check_stream_locked(stream);
}

CUresult copy(const char* kind, void* destination, const void* source, std::size_t bytes, CUstream stream, bool device_destination,
              bool device_source)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(stream); r != kSuccess) return r;
    if ((device_destination && !allocated_locked(destination, bytes)) || (device_source && !allocated_locked(source, bytes)))
        return kInvalidValue;
    std::memmove(destination, source, bytes);
    ++g_ticks;
    record_held("memcpy %s bytes=%zu stream=%p", kind, bytes, stream);
    return kSuccess;
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

// ---- driver API: initialisation, errors, devices --------------------------------------------------------
CUresult cuInit(unsigned flags)
{
    if (flags != 0) return kInvalidValue;
    const CUresult r = setting("init", kSuccess);
    std::lock_guard<std::mutex> lock(g_mu);
    g_initialized = r == kSuccess;
    return r;
}

// Works before cuInit, as the real one does: CUDA 12.4.
CUresult cuDriverGetVersion(int* version)
{
    if (version == nullptr) return kInvalidValue;
    *version = 12040;
    return kSuccess;
}

CUresult cuGetErrorName(CUresult error, const char** name)
{
    switch (error) {
    case 0: *name = "CUDA_SUCCESS"; return kSuccess;
    case 1: *name = "CUDA_ERROR_INVALID_VALUE"; return kSuccess;
    case 2: *name = "CUDA_ERROR_OUT_OF_MEMORY"; return kSuccess;
    case 3: *name = "CUDA_ERROR_NOT_INITIALIZED"; return kSuccess;
    case 100: *name = "CUDA_ERROR_NO_DEVICE"; return kSuccess;
    case 101: *name = "CUDA_ERROR_INVALID_DEVICE"; return kSuccess;
    case 200: *name = "CUDA_ERROR_INVALID_IMAGE"; return kSuccess;
    case 201: *name = "CUDA_ERROR_INVALID_CONTEXT"; return kSuccess;
    case 218: *name = "CUDA_ERROR_INVALID_PTX"; return kSuccess;
    case 400: *name = "CUDA_ERROR_INVALID_HANDLE"; return kSuccess;
    case 500: *name = "CUDA_ERROR_NOT_FOUND"; return kSuccess;
    case 700: *name = "CUDA_ERROR_ILLEGAL_ADDRESS"; return kSuccess;
    case 701: *name = "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"; return kSuccess;
    default: *name = nullptr; return kInvalidValue;
    }
}

// The descriptions of the real driver for the codes the fake returns.
CUresult cuGetErrorString(CUresult error, const char** text)
{
    switch (error) {
    case 0: *text = "no error"; return kSuccess;
    case 1: *text = "invalid argument"; return kSuccess;
    case 2: *text = "out of memory"; return kSuccess;
    case 3: *text = "initialization error"; return kSuccess;
    case 100: *text = "no CUDA-capable device is detected"; return kSuccess;
    case 101: *text = "invalid device ordinal"; return kSuccess;
    case 200: *text = "device kernel image is invalid"; return kSuccess;
    case 201: *text = "invalid device context"; return kSuccess;
    case 218: *text = "a PTX JIT compilation failed"; return kSuccess;
    case 400: *text = "invalid resource handle"; return kSuccess;
    case 500: *text = "named symbol not found"; return kSuccess;
    case 700: *text = "an illegal memory access was encountered"; return kSuccess;
    case 701: *text = "too many resources requested for launch"; return kSuccess;
    default: *text = nullptr; return kInvalidValue;
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
    if (ordinal < 0 || ordinal >= setting("devices", 1) || ordinal >= kMaxDevices) return kInvalidDevice;
    *device = ordinal;
    return kSuccess;
}

// An H100 SXM for cc=90, an A40 for anything else (the values CudaDeviceInfo reads).
CUresult cuDeviceGetAttribute(int* value, int attribute, CUdevice device)
{
    if (device < 0 || device >= kMaxDevices) return kInvalidDevice;
    const int cc = setting("cc", 90);
    const bool hopper = cc >= 90;
    switch (attribute) {
    case 75: *value = cc / 10; break;                          // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
    case 76: *value = cc % 10; break;                          // ..._MINOR
    case 16: *value = hopper ? 132 : 84; break;                // MULTIPROCESSOR_COUNT
    case 97: *value = hopper ? 232448 : 101376; break;         // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
    case 38: *value = (hopper ? 50 : 6) << 20; break;          // L2_CACHE_SIZE
    case 33: *value = 0x18 + device; break;                    // PCI_BUS_ID
    case 13: *value = hopper ? 1980000 : 1740000; break;       // CLOCK_RATE (kHz)
    case 36: *value = hopper ? 2619000 : 7251000; break;       // MEMORY_CLOCK_RATE (kHz)
    case 37: *value = hopper ? 5120 : 384; break;              // GLOBAL_MEMORY_BUS_WIDTH (bits)
    default: return kInvalidValue;
    }
    return kSuccess;
}

CUresult cuDeviceGetName(char* name, int length, CUdevice device)
{
    std::snprintf(name, static_cast<std::size_t>(length), "Fake GPU %d", device);
    return kSuccess;
}

CUresult cuDeviceTotalMem_v2(std::size_t* bytes, CUdevice device)
{
    if (!initialized()) return kNotInitialized;
    if (device < 0 || device >= setting("devices", 1)) return kInvalidDevice;
    *bytes = total_memory();
    return kSuccess;
}

// ---- contexts ----------------------------------------------------------------------------------------------
CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice device)
{
    if (device < 0 || device >= kMaxDevices) return kInvalidDevice;
    *context = kContexts + device;
    std::lock_guard<std::mutex> lock(g_mu);
    record_held("retain %d refs=%d", device, ++g_primary_refs[device]);
    return kSuccess;
}

// Releasing more often than retained is an error, as in the real driver.
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device)
{
    if (device < 0 || device >= kMaxDevices) return kInvalidDevice;
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_primary_refs[device] == 0) return kInvalidContext;
    record_held("release %d refs=%d", device, --g_primary_refs[device]);
    return kSuccess;
}

CUresult cuCtxCreate_v2(CUcontext* context, unsigned /*flags*/, CUdevice device)
{
    if (!initialized()) return kNotInitialized;
    if (device < 0 || device >= setting("devices", 1)) return kInvalidDevice;
    CUcontext created = new char(0);
    {
        std::lock_guard<std::mutex> lock(g_mu);
        g_created_contexts[created] = device;
        record_held("context create %p device=%d", created, device);
    }
    t_stack.push_back(created); // the new context is current, as with the real cuCtxCreate
    *context = created;
    return kSuccess;
}

CUresult cuCtxDestroy_v2(CUcontext context)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_created_contexts.erase(context) == 0) return kInvalidContext;
    record_held("context destroy %p", context);
    if (!t_stack.empty() && t_stack.back() == context) t_stack.pop_back();
    delete static_cast<char*>(context);
    return kSuccess;
}

CUresult cuCtxGetCurrent(CUcontext* context)
{
    if (!initialized()) return kNotInitialized;
    *context = current();
    return kSuccess;
}

// Replaces the top of the thread's stack (NULL pops it), as the real one does; not logged: CudaDevice binds its
// context before every call.
CUresult cuCtxSetCurrent(CUcontext context)
{
    if (!initialized()) return kNotInitialized;
    if (!t_stack.empty()) t_stack.pop_back();
    if (context != nullptr) t_stack.push_back(context);
    return kSuccess;
}

CUresult cuCtxGetDevice(CUdevice* device)
{
    if (t_stack.empty()) return kInvalidContext;
    std::lock_guard<std::mutex> lock(g_mu);
    if (const auto it = g_created_contexts.find(t_stack.back()); it != g_created_contexts.end()) {
        *device = it->second;
        return kSuccess;
    }
    const auto offset = static_cast<char*>(t_stack.back()) - kContexts;
    *device = offset >= 0 && offset < kMaxDevices ? static_cast<CUdevice>(offset) : 0;
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

// ---- modules and launches ------------------------------------------------------------------------------------
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

// Only the attribute the C ABI sets: the dynamic shared memory a launch may use (above 48 KiB needs it, at most
// sm_90's 227 KiB).
CUresult cuFuncSetAttribute(CUfunction function, int attribute, int value)
{
    constexpr int kMaxDynamicSharedSizeBytes = 8;
    if (function == nullptr || attribute != kMaxDynamicSharedSizeBytes || value < 0 || value > 227 * 1024) return kInvalidValue;
    auto* f = static_cast<Function*>(function);
    std::lock_guard<std::mutex> lock(g_mu);
    f->max_dynamic_shared = value;
    record_held("attribute %s max_dynamic_shared=%d", f->name.c_str(), value);
    return kSuccess;
}

CUresult cuLaunchKernel(CUfunction function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, CUstream stream, void** params, void** extra)
{
    if (t_stack.empty()) return kInvalidContext;
    if (params == nullptr || extra != nullptr) return kInvalidValue;
    // As the driver: more dynamic shared memory than the kernel's attribute allows is refused.
    if (shared > static_cast<unsigned>(static_cast<const Function*>(function)->max_dynamic_shared)) return kInvalidValue;
    const CUresult configured = setting("launch", kSuccess);
    if (configured != kSuccess) return configured;
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(stream); r != kSuccess) return r;
    ++g_ticks;
    record_held("launch %s grid=(%u,%u,%u) block=(%u,%u,%u) shared=%u stream=%p context=%p",
                static_cast<const Function*>(function)->name.c_str(), gx, gy, gz, bx, by, bz, shared, stream, current());
    // A fault is found while the kernel runs, so the launch itself succeeds; everything after it sees it.
    g_sticky = setting("fault", kSuccess);
    return kSuccess;
}

// ---- memory ----------------------------------------------------------------------------------------------------
CUresult cuMemAlloc_v2(CUdeviceptr* pointer, std::size_t bytes)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(nullptr); r != kSuccess) return r;
    if (bytes == 0) return kInvalidValue;
    if (g_allocated + bytes > total_memory()) return kOutOfMemory;
    // 256-byte aligned, as cuMemAlloc guarantees; the size rounded up as aligned_alloc requires.
    void* block = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (block == nullptr) return kOutOfMemory;
    g_allocations[static_cast<char*>(block)] = Allocation{bytes, current()};
    g_allocated += bytes;
    *pointer = reinterpret_cast<CUdeviceptr>(block);
    record_held("alloc %p bytes=%zu context=%p", block, bytes, current());
    return kSuccess;
}

CUresult cuMemFree_v2(CUdeviceptr pointer)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (!g_initialized) return kNotInitialized;
    if (current() == nullptr) return kInvalidContext;
    const auto it = g_allocations.find(reinterpret_cast<char*>(pointer));
    if (it == g_allocations.end()) return kInvalidValue;
    g_allocated -= it->second.bytes;
    std::free(it->first);
    g_allocations.erase(it);
    record_held("free %p", reinterpret_cast<void*>(pointer));
    return kSuccess;
}

CUresult cuMemGetInfo_v2(std::size_t* free, std::size_t* total)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (!g_initialized) return kNotInitialized;
    if (current() == nullptr) return kInvalidContext;
    *total = total_memory();
    *free = *total - g_allocated;
    return kSuccess;
}

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr destination, const void* source, std::size_t bytes, CUstream stream)
{
    return copy("htod", reinterpret_cast<void*>(destination), source, bytes, stream, true, false);
}

CUresult cuMemcpyDtoHAsync_v2(void* destination, CUdeviceptr source, std::size_t bytes, CUstream stream)
{
    return copy("dtoh", destination, reinterpret_cast<const void*>(source), bytes, stream, false, true);
}

CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr destination, CUdeviceptr source, std::size_t bytes, CUstream stream)
{
    return copy("dtod", reinterpret_cast<void*>(destination), reinterpret_cast<const void*>(source), bytes, stream, true, true);
}

CUresult cuMemsetD8Async(CUdeviceptr destination, unsigned char value, std::size_t count, CUstream stream)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(stream); r != kSuccess) return r;
    if (!allocated_locked(reinterpret_cast<void*>(destination), count)) return kInvalidValue;
    std::memset(reinterpret_cast<void*>(destination), value, count);
    ++g_ticks;
    record_held("memset8 bytes=%zu value=%u stream=%p", count, value, stream);
    return kSuccess;
}

CUresult cuMemsetD32Async(CUdeviceptr destination, unsigned value, std::size_t count, CUstream stream)
{
    if (t_stack.empty()) return kInvalidContext;
    const CUresult configured = setting("memset", kSuccess);
    if (configured != kSuccess) return configured;
    if (destination % 4 != 0) return kInvalidValue;
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(stream); r != kSuccess) return r;
    auto* words = reinterpret_cast<std::uint32_t*>(destination);
    if (allocated_locked(words, count * 4))
        for (std::size_t i = 0; i < count; ++i) words[i] = value;
    ++g_ticks;
    record_held("memset32 words=%zu value=%u stream=%p", count, value, stream);
    return kSuccess;
}

// ---- streams and events ----------------------------------------------------------------------------------------
CUresult cuStreamCreate(CUstream* stream, unsigned flags)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(nullptr); r != kSuccess) return r;
    auto created = std::make_unique<Stream>(Stream{current()});
    *stream = created.get();
    record_held("stream create %p context=%p flags=%u", *stream, current(), flags);
    g_streams[*stream] = std::move(created);
    return kSuccess;
}

CUresult cuStreamDestroy_v2(CUstream stream)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_streams.erase(stream) == 0) return kInvalidHandle;
    record_held("stream destroy %p", stream);
    return kSuccess;
}

// Work "finishes" when queued: waiting only reports what a real wait would (the sticky fault, a foreign stream).
CUresult cuStreamSynchronize(CUstream stream)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(stream); r != kSuccess) return r;
    record_held("sync stream=%p", stream);
    return kSuccess;
}

CUresult cuEventCreate(CUevent* event, unsigned /*flags*/)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(nullptr); r != kSuccess) return r;
    auto created = std::make_unique<Event>(Event{current()});
    *event = created.get();
    record_held("event create %p", *event);
    g_events[*event] = std::move(created);
    return kSuccess;
}

CUresult cuEventDestroy_v2(CUevent event)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_events.erase(event) == 0) return kInvalidHandle;
    record_held("event destroy %p", event);
    return kSuccess;
}

CUresult cuEventRecord(CUevent event, CUstream stream)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(stream); r != kSuccess) return r;
    const auto it = g_events.find(event);
    if (it == g_events.end() || it->second->context != current()) return kInvalidHandle;
    it->second->recorded = true;
    it->second->tick = g_ticks;
    record_held("event record %p stream=%p", event, stream);
    return kSuccess;
}

CUresult cuEventSynchronize(CUevent event)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_sticky != kSuccess) return g_sticky;
    if (g_events.count(event) == 0) return kInvalidHandle;
    record_held("event sync %p", event);
    return kSuccess;
}

CUresult cuEventQuery(CUevent event)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_sticky != kSuccess) return g_sticky;
    if (g_events.count(event) == 0) return kInvalidHandle;
    record_held("event query %p", event);
    return setting("query", kSuccess);
}

// ---- stream capture and graphs: logged, with fake graph objects ----------------------------------------------------
char g_graphs[64];     // CUgraph i is g_graphs + i
char g_graph_execs[64]; // CUgraphExec i is g_graph_execs + i
int g_next_graph = 0;

CUresult cuStreamBeginCapture_v2(CUstream stream, int mode)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(stream); r != kSuccess) return r;
    record_held("capture begin stream=%p mode=%d", stream, mode);
    return kSuccess;
}

CUresult cuStreamEndCapture(CUstream stream, void** graph)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(stream); r != kSuccess) return r;
    *graph = g_graphs + (g_next_graph++ % 64);
    record_held("capture end stream=%p graph=%p", stream, *graph);
    return kSuccess;
}

CUresult cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long /*flags*/)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(nullptr); r != kSuccess) return r;
    *exec = g_graph_execs + (static_cast<char*>(graph) - g_graphs);
    record_held("graph instantiate %p exec=%p", graph, *exec);
    return kSuccess;
}

CUresult cuGraphLaunch(void* exec, CUstream stream)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(stream); r != kSuccess) return r;
    record_held("graph launch %p stream=%p", exec, stream);
    return kSuccess;
}

CUresult cuGraphExecDestroy(void* exec)
{
    std::lock_guard<std::mutex> lock(g_mu);
    record_held("graph exec destroy %p", exec);
    return kSuccess;
}

CUresult cuGraphDestroy(void* graph)
{
    std::lock_guard<std::mutex> lock(g_mu);
    record_held("graph destroy %p", graph);
    return kSuccess;
}

// ---- page-locked host memory: plain host memory here ----------------------------------------------------------
CUresult cuMemHostAlloc(void** pointer, std::size_t bytes, unsigned /*flags*/)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (const CUresult r = check_work_locked(nullptr); r != kSuccess) return r;
    if (bytes == 0) return kInvalidValue;
    *pointer = std::malloc(bytes);
    if (*pointer == nullptr) return kOutOfMemory;
    record_held("hostalloc %p bytes=%zu", *pointer, bytes);
    return kSuccess;
}

CUresult cuMemFreeHost(void* pointer)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (!g_initialized) return kNotInitialized;
    record_held("freehost %p", pointer); // logged first: the pointer's value must not be used after the free
    std::free(pointer);
    return kSuccess;
}

// Both events must have been recorded (CUDA_ERROR_INVALID_HANDLE otherwise, as in the real driver).
CUresult cuEventElapsedTime(float* milliseconds, CUevent start, CUevent end)
{
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_sticky != kSuccess) return g_sticky;
    const auto s = g_events.find(start), e = g_events.find(end);
    if (s == g_events.end() || e == g_events.end() || !s->second->recorded || !e->second->recorded) return kInvalidHandle;
    *milliseconds = static_cast<float>(static_cast<double>(e->second->tick) - static_cast<double>(s->second->tick)) * 1e-3f;
    return kSuccess;
}

} // extern "C"
