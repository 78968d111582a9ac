// libcheapconv.so's CUDA runtime without a GPU: the library is dlopen'ed, and CHEAPCONV_CUDA_DRIVER points
// it at a missing driver, at a library that is no driver, and at the fake driver (tests/fake_cuda), whose
// log shows what the runtime asked for: images loaded (PTX or fatbin, every kernel found in them),
// contexts pushed and popped, launches with their grid and block, memsets.
#include "abi_test.h"
#include "kernel_table.h" // cc::kModuleCount: the images libcheapconv.so loads

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>

namespace cc_abi_test {
namespace {

template <class F>
F symbol(void* library, const char* name)
{
    return reinterpret_cast<F>(dlsym(library, name));
}
// The library's own function, typed by the declaration in cheapconv.h.
#define CC_SYMBOL(library, function) symbol<decltype(&function)>(library, #function)

// The calls the tests make, resolved in libcheapconv.so (not the emulator ABI linked into this binary).
struct CudaAbi {
    explicit CudaAbi(void* library)
        : create(CC_SYMBOL(library, cc_create)), destroy(CC_SYMBOL(library, cc_destroy)), describe(CC_SYMBOL(library, cc_describe)),
          last_error(CC_SYMBOL(library, cc_last_error)), backend_kind(CC_SYMBOL(library, cc_backend_kind)),
          conv_forward(CC_SYMBOL(library, cc_conv_forward)), conv_backward_weight(CC_SYMBOL(library, cc_conv_backward_weight)),
          conv_backward(CC_SYMBOL(library, cc_conv_backward)),
          count_correct(CC_SYMBOL(library, cc_count_correct)), capture_begin(CC_SYMBOL(library, cc_capture_begin)),
          capture_end(CC_SYMBOL(library, cc_capture_end)), graph_launch(CC_SYMBOL(library, cc_graph_launch)),
          graph_destroy(CC_SYMBOL(library, cc_graph_destroy)), memcpy_async(CC_SYMBOL(library, cc_memcpy_async)),
          batchnorm_train_forward(CC_SYMBOL(library, cc_batchnorm_train_forward)), batchnorm_backward(CC_SYMBOL(library, cc_batchnorm_backward))
    {
    }
    bool complete() const
    {
        return create && destroy && describe && last_error && backend_kind && conv_forward && conv_backward_weight && conv_backward && count_correct &&
               capture_begin && capture_end && graph_launch && graph_destroy && memcpy_async && batchnorm_train_forward && batchnorm_backward;
    }
    decltype(&cc_create) create;
    decltype(&cc_destroy) destroy;
    decltype(&cc_describe) describe;
    decltype(&cc_last_error) last_error;
    decltype(&cc_backend_kind) backend_kind;
    decltype(&cc_conv_forward) conv_forward;
    decltype(&cc_conv_backward_weight) conv_backward_weight;
    decltype(&cc_conv_backward) conv_backward;
    decltype(&cc_count_correct) count_correct;
    decltype(&cc_capture_begin) capture_begin;
    decltype(&cc_capture_end) capture_end;
    decltype(&cc_graph_launch) graph_launch;
    decltype(&cc_graph_destroy) graph_destroy;
    decltype(&cc_memcpy_async) memcpy_async;
    decltype(&cc_batchnorm_train_forward) batchnorm_train_forward;
    decltype(&cc_batchnorm_backward) batchnorm_backward;
};

// The fake driver's test interface and the context calls the tests use to play a caller.
struct FakeDriver {
    explicit FakeDriver(void* library)
        : log(symbol<const char* (*)()>(library, "fake_cuda_log")), reset(symbol<void (*)()>(library, "fake_cuda_reset")),
          push(symbol<int (*)(void*)>(library, "cuCtxPushCurrent_v2")), pop(symbol<int (*)(void**)>(library, "cuCtxPopCurrent_v2")),
          current(symbol<int (*)(void**)>(library, "cuCtxGetCurrent"))
    {
    }
    bool complete() const { return log && reset && push && pop && current; }
    const char* (*log)();
    void (*reset)();
    int (*push)(void*);
    int (*pop)(void**);
    int (*current)(void**);
};

int count(const std::string& text, const std::string& needle)
{
    int n = 0;
    for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
}

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

std::string describe(const CudaAbi& abi, cc_handle h)
{
    char text[256] = "";
    abi.describe(h, text, sizeof text);
    return text;
}

// Fake device pointers: aligned, apart, never dereferenced by the fake driver.
template <class T>
T* fake_pointer(std::uintptr_t address)
{
    return reinterpret_cast<T*>(address);
}

// Makes the call, then reads the library's message (argument evaluation order would not sequence them).
template <class Call>
void expect(Tally& t, const CudaAbi& abi, Call call, cc_status want, std::initializer_list<const char*> needles, const std::string& what)
{
    const cc_status got = call();
    expect_status(t, got, want, abi.last_error(), needles, what);
}

void test_without_driver(Tally& t, const CudaAbi& abi, const std::string& library)
{
    cc_handle h = nullptr;
    setenv("CHEAPCONV_CUDA_DRIVER", "/nonexistent/libcuda.so.1", 1);
    expect(t, abi, [&] { return abi.create(&h, 0); }, CC_ERROR_NO_DEVICE,
                  {"cc_create: no CUDA driver: cannot load /nonexistent/libcuda.so.1", "cannot open shared object file", "CHEAPCONV_CUDA_DRIVER"},
                  "libcheapconv.so without a driver library");
    setenv("CHEAPCONV_CUDA_DRIVER", library.c_str(), 1);
    expect(t, abi, [&] { return abi.create(&h, 0); }, CC_ERROR_NO_DEVICE, {"is not a usable CUDA driver: it has no entry point cuInit"},
                  "libcheapconv.so with a library that is not a driver");
}

void test_device_selection(Tally& t, const CudaAbi& abi)
{
    cc_handle h = nullptr;
    setenv("CHEAPCONV_FAKE_CUDA", "init=100", 1);
    expect(t, abi, [&] { return abi.create(&h, 0); }, CC_ERROR_NO_DEVICE, {"cuInit failed with CUDA_ERROR_NO_DEVICE"},
                  "a driver whose cuInit finds no device");
    setenv("CHEAPCONV_FAKE_CUDA", "devices=1", 1);
    expect(t, abi, [&] { return abi.create(&h, 3); }, CC_ERROR_NO_DEVICE, {"no CUDA device 3", "reports 1 device(s)"},
                  "a device ordinal past the last device");
    expect(t, abi, [&] { return abi.create(&h, CC_CURRENT_CONTEXT); }, CC_ERROR_NO_DEVICE, {"no CUDA context is current"},
                  "CC_CURRENT_CONTEXT with no current context");
    setenv("CHEAPCONV_FAKE_CUDA", "load=218", 1);
    expect(t, abi, [&] { return abi.create(&h, 0); }, CC_ERROR_DRIVER,
                  {"cuModuleLoadDataEx for module batchnorm", "CUDA_ERROR_INVALID_PTX", "fake JIT log: line 1"},
                  "a module the driver refuses (with the JIT log)");
}

// Which images a handle loaded: every module from the same kind, every kernel found in its module.
void test_images(Tally& t, const CudaAbi& abi, const FakeDriver& fake, const std::string& expect_sass)
{
    cc_handle h = nullptr;
    setenv("CHEAPCONV_FAKE_CUDA", "cc=86", 1);
    fake.reset();
    expect(t, abi, [&] { return abi.create(&h, 0); }, CC_SUCCESS, {}, "cc_create on an sm_86 device");
    std::string log = fake.log();
    t.check(describe(abi, h) == "cuda: Fake GPU 0 (device 0, sm_86), kernels: PTX sm_80 (JIT)",
            "sm_86 has no SASS in the fatbin: the PTX is JIT-compiled: " + describe(abi, h));
    t.check(count(log, "load ptx") == cc::kModuleCount && count(log, "load fatbin") == 0 && contains(log, "retain 0"),
            "sm_86: every PTX module loaded into the retained primary context");
    fake.reset();
    abi.destroy(h);
    t.check(contains(fake.log(), "release 0"), "cc_destroy releases the primary context");

    setenv("CHEAPCONV_FAKE_CUDA", "cc=90", 1);
    fake.reset();
    expect(t, abi, [&] { return abi.create(&h, 0); }, CC_SUCCESS, {}, "cc_create on an sm_90 device");
    log = fake.log();
    const std::string text = describe(abi, h);
    const bool sass = text == "cuda: Fake GPU 0 (device 0, sm_90), kernels: SASS sm_90 from the fatbin";
    const bool ptx = text == "cuda: Fake GPU 0 (device 0, sm_90), kernels: PTX sm_80 (JIT)";
    t.check((sass && count(log, "load fatbin") == cc::kModuleCount && count(log, "load ptx") == 0) ||
                (ptx && count(log, "load ptx") == cc::kModuleCount && count(log, "load fatbin") == 0),
            "sm_90: what cc_describe says was loaded was loaded: " + text);
    if (!expect_sass.empty())
        t.check(sass == contains(" " + expect_sass + " ", " 90 "), "the build embedded SASS for \"" + expect_sass + "\": " + text);
    abi.destroy(h);

    setenv("CHEAPCONV_CUDA_PTX_ONLY", "1", 1);
    fake.reset();
    abi.create(&h, 0);
    t.check(count(fake.log(), "load ptx") == cc::kModuleCount && contains(describe(abi, h), "PTX sm_80 (JIT)"), "CHEAPCONV_CUDA_PTX_ONLY=1 loads the PTX");
    abi.destroy(h);
    unsetenv("CHEAPCONV_CUDA_PTX_ONLY");
}

void test_launches(Tally& t, const CudaAbi& abi, const FakeDriver& fake)
{
    setenv("CHEAPCONV_FAKE_CUDA", "cc=90", 1);
    cc_handle h = nullptr;
    abi.create(&h, 0);
    void* const stream = fake_pointer<void>(0x1230);
    cc_conv_problem grouped, pointwise;
    cc_conv_init(&grouped, 2, 8, 9, 7, 8, 3, 3, 1, 1, 2, 2, 4);
    cc_conv_init(&pointwise, 2, 5, 7, 6, 7, 1, 1, 0, 0, 2, 2, 1);
    const float* x = fake_pointer<const float>(0x100000);
    const float* w = fake_pointer<const float>(0x200000);
    float* y = fake_pointer<float>(0x300000);
    float* ws = fake_pointer<float>(0x400000);
    cc_options direct{};
    direct.algo = CC_ALGO_DIRECT;

    fake.reset();
    expect(t, abi, [&] { return abi.conv_forward(h, &grouped, &direct, x, w, y, nullptr, 0, stream); }, CC_SUCCESS, {},
                  "conv forward through the fake driver");
    std::string log = fake.log();
    t.check(contains(log, "launch cc_conv2d_forward_kernel grid=(2,1,1) block=(256,1,1) shared=0 stream=0x1230"),
            "the direct forward: 320 outputs in 2 blocks of 256, on the caller's stream:\n" + log);
    t.check(log.find("push") < log.find("launch") && log.find("launch") < log.find("pop"),
            "with no context current, the launch pushes the handle's context and pops it");

    cc_options split{};
    split.split_chunk = 5;
    split.precision = CC_PRECISION_FP32;
    fake.reset();
    expect(t, abi, [&] { return abi.conv_backward_weight(h, &pointwise, &split, x, fake_pointer<const float>(0x500000), y, ws, CC_SPLIT_COUNTER_BYTES + 700, stream); }, CC_SUCCESS, {}, "a split fp32 pointwise weight gradient through the fake driver");
    log = fake.log();
    t.check(contains(log, "launch cc_pointwise_backward_weight_kernel grid=(1,1,5) block=(256,1,1)") && !contains(log, "cc_gemm_column_sums_kernel"),
            "5 splits in gridDim.z, reduced in the same launch (no column sums):\n" + log);
    split.precision = CC_PRECISION_TF32;
    fake.reset();
    expect(t, abi, [&] { return abi.conv_backward_weight(h, &pointwise, &split, x, fake_pointer<const float>(0x500000), y, ws, CC_SPLIT_COUNTER_BYTES + 700, stream); }, CC_SUCCESS, {}, "a split tf32 pointwise weight gradient through the fake driver");
    log = fake.log();
    t.check(contains(log, "launch cc_implicit_gemm_backward_weight_1x1_kernel grid=(1,1,5) block=(128,1,1) shared=30720") &&
                !contains(log, "cc_gemm_column_sums_kernel"),
            "tf32: the tensor-core kernel in 5 splits with 30 KiB of dynamic shared memory, reduced in the same launch:\n" + log);

    // Both gradients: one launch where the variants share a grid, its blocks the weight gradient's then the data
    // gradient's; the two launches of the separate calls where they do not.
    cc_conv_problem one_to_one, dense;
    cc_conv_init(&one_to_one, 2, 8, 6, 6, 12, 1, 1, 0, 0, 1, 1, 1);
    cc_conv_init(&dense, 2, 8, 10, 11, 8, 3, 3, 1, 1, 1, 1, 8);
    float* dw = fake_pointer<float>(0x800000);
    const float* dy = fake_pointer<const float>(0x500000);
    fake.reset();
    expect(t, abi, [&] { return abi.conv_backward(h, &one_to_one, nullptr, x, dy, w, y, dw, ws, CC_SPLIT_COUNTER_BYTES + 700, stream); },
           CC_SUCCESS, {}, "both gradients of a 1x1 convolution through the fake driver");
    log = fake.log();
    // dw: 12 x 8 in one 64 x 64 tile, one split; dx: 8 channels x 72 pixels in 2 tiles of 64 columns.
    t.check(count(log, "launch ") == 1 && contains(log, "launch cc_implicit_gemm_backward_1x1_kernel grid=(3,1,1) block=(128,1,1) shared=30720"),
            "tf32 1x1: ONE launch of the fused kernel, 1 weight block + 2 data blocks in a 1-D grid:\n" + log);
    cc_options tiled{};
    tiled.algo = CC_ALGO_TILED;
    fake.reset();
    expect(t, abi, [&] { return abi.conv_backward(h, &dense, &tiled, x, dy, w, y, dw, ws, 1 << 20, stream); }, CC_SUCCESS, {},
           "both gradients of a tiled depthwise convolution through the fake driver");
    log = fake.log();
    t.check(count(log, "launch ") == 1 && contains(log, "launch cc_conv2d_tiled_backward_s1_kernel") && contains(log, "block=(256,1,1) shared=0"),
            "tiled depthwise 3x3: ONE launch of the fused kernel:\n" + log);
    fake.reset();
    expect(t, abi, [&] { return abi.conv_backward(h, &dense, &direct, x, dy, w, y, dw, nullptr, 0, stream); }, CC_SUCCESS, {},
           "both gradients of a direct convolution through the fake driver");
    log = fake.log();
    t.check(count(log, "launch ") == 2 && log.find("launch cc_conv2d_backward_data_kernel") < log.find("launch cc_conv2d_backward_weight_kernel"),
            "the direct kernels have no fused form: the data gradient's launch, then the weight gradient's:\n" + log);

    const cc_loss_problem rows{20, 7, 0.0f, 0, 0, 0};
    fake.reset();
    expect(t, abi, [&] { return abi.count_correct(h, &rows, x, fake_pointer<const int32_t>(0x600000), fake_pointer<int32_t>(0x700000), stream); }, CC_SUCCESS, {}, "count correct through the fake driver");
    log = fake.log();
    t.check(contains(log, "memset32 words=1 value=0") && log.find("memset32") < log.find("launch cc_count_correct_kernel grid=(3,1,1)"),
            "count correct zeroes its output on the stream before the kernel adds to it:\n" + log);

    // A caller's own context stays current across the call.
    void* mine = fake_pointer<void>(0x5000);
    void* after = nullptr;
    fake.push(mine);
    fake.reset();
    abi.conv_forward(h, &grouped, nullptr, x, w, y, nullptr, 0, stream);
    fake.current(&after);
    t.check(after == mine && count(fake.log(), "push") == 1 && count(fake.log(), "pop") == 1,
            "another context current: pushed for the call, and the caller's restored");
    cc_handle caller = nullptr;
    expect(t, abi, [&] { return abi.create(&caller, CC_CURRENT_CONTEXT); }, CC_SUCCESS, {}, "cc_create(CC_CURRENT_CONTEXT)");
    t.check(contains(describe(abi, caller), ", the caller's context)"), "cc_describe names the caller's context: " + describe(abi, caller));
    fake.reset();
    abi.conv_forward(caller, &grouped, nullptr, x, w, y, nullptr, 0, stream);
    t.check(count(fake.log(), "push") == 0 && count(fake.log(), "launch") == 1, "the handle's context already current: no push");
    abi.destroy(caller);
    t.check(!contains(fake.log(), "release"), "a handle on the caller's context does not release it");
    fake.pop(&after);

    setenv("CHEAPCONV_FAKE_CUDA", "cc=90,launch=701", 1);
    expect(t, abi, [&] { return abi.conv_forward(h, &grouped, &direct, x, w, y, nullptr, 0, stream); }, CC_ERROR_LAUNCH,
                  {"cc_conv2d_forward_kernel (grid (2,1,1), block (256,1,1)", "failed for conv n=2 c=8 h=9 w=7 k=8",
                   "cuLaunchKernel returned CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"},
                  "a failed launch names kernel, grid, block, problem and the driver's error");
    setenv("CHEAPCONV_FAKE_CUDA", "cc=90,memset=1", 1);
    expect(t, abi, [&] { return abi.count_correct(h, &rows, x, fake_pointer<const int32_t>(0x600000), fake_pointer<int32_t>(0x700000), stream); }, CC_ERROR_DRIVER, {"cuMemsetD32Async returned CUDA_ERROR_INVALID_VALUE", "count correct n=20"},
                  "a failed memset is a driver error naming the call");
    cc_conv_problem wrong = grouped;
    wrong.groups = 3;
    expect(t, abi, [&] { return abi.conv_forward(h, &wrong, nullptr, x, w, y, nullptr, 0, stream); }, CC_ERROR_INVALID_VALUE,
                  {"groups (3) must divide c (8)"}, "the CUDA library validates like the emulator's");
    abi.destroy(h);
}

} // namespace

// Capture is the driver's stream capture: between begin and end the calls go to the driver as usual (it records them),
// end instantiates the graph, a launch of it is one cuGraphLaunch; the legacy default stream is refused.
void test_capture(Tally& t, const CudaAbi& abi, const FakeDriver& fake)
{
    setenv("CHEAPCONV_FAKE_CUDA", "cc=90", 1);
    cc_handle h = nullptr;
    abi.create(&h, 0);
    expect(t, abi, [&] { return abi.capture_begin(h, nullptr); }, CC_ERROR_NOT_SUPPORTED, {"legacy default stream"},
           "capturing the legacy default stream");
    void* const stream = fake_pointer<void>(0x1230);
    cc_conv_problem grouped;
    cc_conv_init(&grouped, 2, 8, 9, 7, 8, 3, 3, 1, 1, 2, 2, 4);
    cc_graph graph = nullptr;
    fake.reset();
    expect(t, abi, [&] { return abi.capture_begin(h, stream); }, CC_SUCCESS, {}, "capture begin on a stream");
    expect(t, abi, [&] { return abi.conv_forward(h, &grouped, nullptr, fake_pointer<const float>(0x100000), fake_pointer<const float>(0x200000),
                                                fake_pointer<float>(0x300000), nullptr, 0, stream); }, CC_SUCCESS, {}, "a captured convolution");
    expect(t, abi, [&] { return abi.capture_end(h, stream, &graph); }, CC_SUCCESS, {}, "capture end");
    expect(t, abi, [&] { return abi.graph_launch(h, graph, stream); }, CC_SUCCESS, {}, "a graph launch");
    expect(t, abi, [&] { return abi.graph_launch(h, graph, stream); }, CC_SUCCESS, {}, "another graph launch");
    expect(t, abi, [&] { return abi.graph_destroy(h, graph); }, CC_SUCCESS, {}, "graph destroy");
    const std::string log = fake.log();
    const auto begin = log.find("capture begin stream=0x1230 mode=2"), launch = log.find("launch cc_conv2d"),
               end = log.find("capture end stream=0x1230"), instantiate = log.find("graph instantiate");
    t.check(begin != std::string::npos && begin < launch && launch < end && end < instantiate,
            "the launcher's calls go to the driver between capture begin (relaxed mode) and end, then the graph is instantiated:\n" + log);
    t.check(count(log, "graph launch") == 2 && contains(log, "stream=0x1230") && contains(log, "graph exec destroy") &&
                contains(log, "graph destroy"),
            "each launch of the graph is one cuGraphLaunch on the given stream; destroy frees the executable graph and the graph:\n" + log);
    abi.destroy(h);
}

// The training batch norm's launches: one cluster kernel per pass (grid C * CC_BN_CLUSTER_BLOCKS = 3 * 8) where the
// device is sm_90 and runs the fatbin's sm_90 SASS; the two-launch path on the PTX (sm_86, or sm_90 forced to PTX),
// whose cluster kernels are empty.
void test_batchnorm_selection(Tally& t, const CudaAbi& abi, const FakeDriver& fake, const std::string& expect_sass)
{
    const cc_batchnorm_problem p{2, 3, 4, 5, 1e-5f, 0.1f, 1, 0};
    float* const a = fake_pointer<float>(0x100000);
    float* const stats = fake_pointer<float>(0x200000);
    const auto run = [&](const char* settings, bool ptx_only, const std::string& what) {
        setenv("CHEAPCONV_FAKE_CUDA", settings, 1);
        if (ptx_only) setenv("CHEAPCONV_CUDA_PTX_ONLY", "1", 1);
        cc_handle h = nullptr;
        abi.create(&h, 0);
        fake.reset();
        expect(t, abi, [&] { return abi.batchnorm_train_forward(h, &p, a, stats, stats + 16, stats + 32, stats + 48, a + 4096, stats + 64, stats + 80, nullptr); },
               CC_SUCCESS, {}, what + ": training forward");
        expect(t, abi, [&] { return abi.batchnorm_backward(h, &p, a, a + 4096, stats, stats + 16, stats + 64, stats + 80, a + 8192, stats + 96, stats + 112, nullptr); },
               CC_SUCCESS, {}, what + ": backward");
        const std::string log = fake.log();
        abi.destroy(h);
        unsetenv("CHEAPCONV_CUDA_PTX_ONLY");
        return log;
    };
    const bool sass_90 = contains(" " + expect_sass + " ", " 90 ");
    std::string log = run("cc=90", false, "batch norm on sm_90");
    if (sass_90)
        t.check(count(log, "launch ") == 2 && contains(log, "launch cc_batchnorm_train_forward_cluster_kernel grid=(24,1,1) block=(256,1,1)") &&
                    contains(log, "launch cc_batchnorm_backward_cluster_kernel grid=(24,1,1) block=(256,1,1)"),
                "sm_90 with the fatbin's SASS: one cluster launch per pass (3 channels x 8 blocks):\n" + log);
    for (const auto& [settings, ptx_only, what] : {std::tuple<const char*, bool, const char*>{"cc=86", false, "sm_86 (PTX)"},
                                                   {"cc=90", true, "sm_90 forced to the PTX"}}) {
        log = run(settings, ptx_only, std::string("batch norm on ") + what);
        t.check(count(log, "launch ") == 4 && contains(log, "launch cc_batchnorm_train_stats_kernel grid=(3,1,1)") &&
                    contains(log, "launch cc_batchnorm_apply_kernel") && contains(log, "launch cc_batchnorm_backward_reduce_kernel") &&
                    contains(log, "launch cc_batchnorm_backward_data_kernel") && !contains(log, "cluster"),
                std::string(what) + ": the two-launch path (the PTX's cluster kernels are empty):\n" + log);
    }
}

void run_cuda_runtime_tests(Tally& t, const std::string& library, const std::string& fake_driver, const std::string& expect_sass)
{
    void* lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    void* fake_lib = dlopen(fake_driver.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr || fake_lib == nullptr) {
        t.check(false, "dlopen " + library + " and " + fake_driver + ": " + dlerror());
        return;
    }
    const CudaAbi abi(lib);
    const FakeDriver fake(fake_lib);
    t.check(abi.complete() && fake.complete(), "libcheapconv.so exports the C ABI; the fake driver its test calls");
    if (abi.complete() && fake.complete()) {
        t.check(abi.backend_kind() == CC_BACKEND_CUDA, "cc_backend_kind() of libcheapconv.so is CC_BACKEND_CUDA");
        test_without_driver(t, abi, library);
        setenv("CHEAPCONV_CUDA_DRIVER", fake_driver.c_str(), 1);
        test_device_selection(t, abi);
        test_images(t, abi, fake, expect_sass);
        test_launches(t, abi, fake);
        test_capture(t, abi, fake);
        test_batchnorm_selection(t, abi, fake, expect_sass);
    }
    unsetenv("CHEAPCONV_CUDA_DRIVER");
    unsetenv("CHEAPCONV_FAKE_CUDA");
    dlclose(fake_lib);
    dlclose(lib);
}

} // namespace cc_abi_test
