// Native self-test of the emulator and of the C ABI: `make -C native selftest` builds and runs it.
//   cc_emu_selftest [libcheapconv_emu_test.so [libcheapconv_emu.so]] [--expect-sass=LIST] [-v]
// Runs the primitive checks, the diagnostics on the faulty kernels, launch validation, worker counts,
// concurrent launches and a throughput smoke test through the emulator's C API (linked in statically),
// then loads the given shared libraries with dlopen and launches through them as the C# side does.
// Then the C ABI (cheapconv.h): every family on the emulator (the ABI is linked in too), and
// libcheapconv.so's CUDA runtime against the fake driver; both found beside this program
// (build/bin/../lib/libcheapconv.so, build/bin/../test/libcheapconv_fake_cuda.so). --expect-sass says
// which SASS the build embedded ("80 90", or "none") so the fatbin choice is checked exactly; without it
// the test checks that what cc_describe reports is what was loaded.
// Prints "N passed, M failed"; exit status 0 only when nothing failed.
#include "primitives.h"

#include "../abi/abi_test.h"

#include <dlfcn.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

using cc_selftest::launch;
using cc_selftest::Tally;

namespace {

bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

// Launches a one-block faulty kernel and checks the status and that the message mentions each `needle`.
void expect_diagnostic(Tally& t, const char* kernel, unsigned threads, int want, std::vector<const char*> needles) {
    std::vector<int> out(threads, 0);
    int* po = out.data();
    void* args[] = {&po};
    std::string msg;
    const int rc = launch(kernel, {1, 1, 1}, {threads, 1, 1}, 0, args, &msg);
    bool ok = rc == want && contains(msg, cc_emu_status_name(want));
    for (const char* n : needles) ok = ok && contains(msg, n);
    t.check(ok, std::string(kernel) + " -> " + cc_emu_status_name(want) + (t.verbose || !ok ? "\n        " + msg : ""));
}

void test_diagnostics(Tally& t) {
    expect_diagnostic(t, "cc_test_divergent_barrier", 64, CC_EMU_DIVERGENT_BARRIER,
                      {"thread (0,0,0)", "thread (32,0,0)", "faulty.cu:", "block (0,0,0)", "cc_test_divergent_barrier"});
    expect_diagnostic(t, "cc_test_shuffle_mask_mismatch", 32, CC_EMU_WARP_MISMATCH, {"__shfl_down_sync", "0xffff0000", "faulty.cu:"});
    expect_diagnostic(t, "cc_test_shuffle_site_mismatch", 32, CC_EMU_WARP_MISMATCH, {"__shfl_xor_sync", "faulty.cu:"});
    expect_diagnostic(t, "cc_test_inactive_lane_read", 32, CC_EMU_INACTIVE_LANE_READ, {"lane 30", "reads lane 31", "not in the mask"});
    expect_diagnostic(t, "cc_test_barrier_warp_deadlock", 32, CC_EMU_DEADLOCK, {"__syncwarp", "__syncthreads", "faulty.cu:"});
    expect_diagnostic(t, "cc_test_mma_partial_warp", 48, CC_EMU_WARP_MISMATCH,
                      {"cc_mma_tf32_m16n8k8", "all 32 lanes", "0xffff0000", "beyond blockDim", "faulty.cu:"});
    expect_diagnostic(t, "cc_test_ldmatrix_misaligned", 32, CC_EMU_INVALID_OPERAND, {"cc_ldmatrix", "lane 5", "16-byte aligned", "faulty.cu:"});

    // Early return before a barrier: warning by default, error in strict mode.
    std::vector<int> out(64, 0);
    int* po = out.data();
    void* args[] = {&po};
    std::string msg;
    int rc = launch("cc_test_early_return_barrier", {1, 1, 1}, {64, 1, 1}, 0, args, &msg);
    bool ok = rc == 0 && contains(msg, "warning") && contains(msg, "CC_EMU_EXITED_AT_BARRIER") && contains(msg, "thread (32,0,0)");
    for (int i = 0; i < 32; ++i) ok = ok && out[static_cast<std::size_t>(i)] == i + 1;
    t.check(ok, "cc_test_early_return_barrier -> success with a warning" + (t.verbose ? "\n        " + msg : ""));
    const int previous = cc_emu_set_strict(1);
    rc = launch("cc_test_early_return_barrier", {1, 1, 1}, {64, 1, 1}, 0, args, &msg);
    cc_emu_set_strict(previous);
    t.check(rc == CC_EMU_EXITED_AT_BARRIER && previous == 0, "strict mode: early return at a barrier is CC_EMU_EXITED_AT_BARRIER");

    // A failed launch must leave the emulator usable (abandoned fibers are reset).
    std::vector<int> in(512, 1), sums(2, 0);
    const int* pi = in.data();
    int* ps = sums.data();
    int n = 512;
    void* rargs[] = {&pi, &ps, &n};
    t.check(launch("cc_test_block_reduce", {2, 1, 1}, {256, 1, 1}, 0, rargs) == 0 && sums[0] == 256 && sums[1] == 256,
            "a launch after failed launches works");
}

void test_validation(Tally& t) {
    std::vector<int> out(1024, 0);
    int* po = out.data();
    void* args[] = {&po};
    std::string msg;
    struct Case {
        cc_dim3 grid, block;
        unsigned shared;
        const char* what;
    };
    const Case cases[] = {
        {{1, 1, 1}, {1025, 1, 1}, 0, "block of 1025 threads"},
        {{1, 1, 1}, {32, 32, 2}, 0, "block of 32x32x2 threads"},
        {{1, 1, 1}, {1, 1, 65}, 0, "blockDim.z = 65"},
        {{1, 1, 1}, {0, 1, 1}, 0, "blockDim.x = 0"},
        {{0, 1, 1}, {32, 1, 1}, 0, "gridDim.x = 0"},
        {{1, 65536, 1}, {32, 1, 1}, 0, "gridDim.y = 65536"},
        {{1, 1, 1}, {32, 1, 1}, 48 * 1024 + 1, "dynamic shared 48 KiB + 1"},
    };
    for (const Case& c : cases) {
        const int rc = launch("cc_test_divergent_barrier", c.grid, c.block, c.shared, args, &msg);
        t.check(rc == CC_EMU_ERROR_INVALID_VALUE && contains(msg, "CUDA_ERROR_INVALID_VALUE"),
                std::string("CUDA_ERROR_INVALID_VALUE for ") + c.what + (t.verbose ? "\n        " + msg : ""));
    }
    t.check(contains(msg, "48 KiB"), "the shared memory error names the limit");
    int rc = launch("no_such_kernel", {1, 1, 1}, {1, 1, 1}, 0, args, &msg);
    t.check(rc == CC_EMU_ERROR_NOT_FOUND && contains(msg, "CUDA_ERROR_NOT_FOUND") && contains(msg, "no_such_kernel"),
            "CUDA_ERROR_NOT_FOUND for an unknown kernel");
    rc = launch("cc_test_divergent_barrier", {1, 1, 1}, {32, 1, 1}, 0, nullptr, &msg);
    t.check(rc == CC_EMU_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE for NULL args");
    rc = cc_emu_launch(nullptr, {1, 1, 1}, {1, 1, 1}, 0, args, nullptr, 0);
    t.check(rc == CC_EMU_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE for a NULL kernel name, NULL message buffer");
    char tiny[8];
    rc = cc_emu_launch("no_such_kernel", {1, 1, 1}, {1, 1, 1}, 0, args, tiny, sizeof tiny);
    t.check(rc == CC_EMU_ERROR_NOT_FOUND && std::strlen(tiny) == 7, "message truncated to its capacity");

    bool names_ok = cc_emu_kernel_count() > 0 && cc_emu_kernel_name(-1) == nullptr &&
                    cc_emu_kernel_name(cc_emu_kernel_count()) == nullptr;
    bool found = false;
    for (int i = 0; i < cc_emu_kernel_count(); ++i) {
        found = found || std::strcmp(cc_emu_kernel_name(i), "cc_test_block_reduce") == 0;
        if (i > 0) names_ok = names_ok && std::strcmp(cc_emu_kernel_name(i - 1), cc_emu_kernel_name(i)) < 0;
    }
    t.check(names_ok && found, "kernel registry: sorted names, bounds");
    t.check(cc_emu_version() == CC_EMU_VERSION, "cc_emu_version");
    t.check(std::strcmp(cc_emu_status_name(CC_EMU_DEADLOCK), "CC_EMU_DEADLOCK") == 0 &&
                std::strcmp(cc_emu_status_name(12345), "CC_EMU_UNKNOWN_STATUS") == 0,
            "cc_emu_status_name");
    t.check(cc_emu_set_worker_threads(-1) == CC_EMU_ERROR_INVALID_VALUE && cc_emu_set_worker_threads(1000) != 0,
            "cc_emu_set_worker_threads rejects bad counts");
}

// The same reduction with 1, 2, 3 and default worker threads, and from several caller threads at once.
void test_workers_and_concurrency(Tally& t) {
    const int n = 256 * 64;
    std::vector<int> in(n);
    for (int i = 0; i < n; ++i) in[static_cast<std::size_t>(i)] = i % 7;
    auto run_once = [&](std::vector<int>& sums) {
        const int* pi = in.data();
        int* ps = sums.data();
        int nn = n;
        void* args[] = {&pi, &ps, &nn};
        if (launch("cc_test_block_reduce", {64, 1, 1}, {256, 1, 1}, 0, args) != 0) return false;
        for (int b = 0; b < 64; ++b) {
            int ref = 0;
            for (int i = b * 256; i < (b + 1) * 256; ++i) ref += in[static_cast<std::size_t>(i)];
            if (sums[static_cast<std::size_t>(b)] != ref) return false;
        }
        return true;
    };
    for (int workers : {1, 2, 3, 0}) {
        cc_emu_set_worker_threads(workers);
        std::vector<int> sums(64, -1);
        t.check(run_once(sums), "64 blocks with " + std::to_string(workers) + " worker thread(s) (0 = default)");
    }
    std::vector<std::thread> threads;
    std::vector<int> ok(4, 0);
    for (int c = 0; c < 4; ++c)
        threads.emplace_back([&, c] {
            int good = 1;
            for (int r = 0; r < 10; ++r) {
                std::vector<int> sums(64, -1);
                good &= run_once(sums) ? 1 : 0;
            }
            ok[static_cast<std::size_t>(c)] = good;
        });
    for (auto& th : threads) th.join();
    t.check(ok[0] && ok[1] && ok[2] && ok[3], "40 launches from 4 caller threads at once");
}

void test_throughput(Tally& t) {
    const int n = 1 << 20;
    std::vector<float> x(n, 2.0f), y(n, 1.0f);
    const float* px = x.data();
    float* py = y.data();
    float a = 3.0f;
    int nn = n;
    void* args[] = {&a, &px, &py, &nn};
    const auto t0 = std::chrono::steady_clock::now();
    const int rc = launch("st_saxpy", {n / 256, 1, 1}, {256, 1, 1}, 0, args);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bool ok = rc == 0;
    for (int i = 0; i < n && ok; ++i) ok = y[static_cast<std::size_t>(i)] == 7.0f;
    std::printf("  info  2^20 threads without synchronization: %.3f s\n", s);
    t.check(ok, "saxpy over 2^20 threads");
}

// Loads a built library as the C# side does and launches through it.
void test_library(Tally& t, const char* path, bool has_test_kernels) {
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        t.check(false, std::string("dlopen ") + path + ": " + dlerror());
        return;
    }
    using launch_fn = int (*)(const char*, cc_dim3, cc_dim3, unsigned, void**, char*, int);
    using count_fn = int (*)();
    using name_fn = const char* (*)(int);
    auto l = reinterpret_cast<launch_fn>(dlsym(h, "cc_emu_launch"));
    auto count = reinterpret_cast<count_fn>(dlsym(h, "cc_emu_kernel_count"));
    auto name = reinterpret_cast<name_fn>(dlsym(h, "cc_emu_kernel_name"));
    const bool syms = l && count && name && dlsym(h, "cc_emu_version") && dlsym(h, "cc_emu_status_name") &&
                      dlsym(h, "cc_emu_set_worker_threads") && dlsym(h, "cc_emu_set_strict") && dlsym(h, "cc_emu_take_warnings") &&
                      !dlsym(h, "cc_test_block_reduce") &&
                      dlsym(h, "cc_create") && dlsym(h, "cc_conv_forward") && !dlsym(h, "cc_conv2d_forward_kernel");
    t.check(syms, std::string(path) + ": exports the C APIs (cc_emu_*, cheapconv.h), not the kernels");
    if (!syms) return;
    bool test_kernels = false;
    std::string names;
    for (int i = 0; i < count(); ++i) {
        test_kernels = test_kernels || std::strncmp(name(i), "cc_test_", 8) == 0;
        names += std::string(" ") + name(i);
    }
    std::printf("  info  %s: %d kernel(s):%s\n", path, count(), names.c_str());
    t.check(test_kernels == has_test_kernels, std::string(path) + (has_test_kernels ? ": has" : ": has no") + " cc_test_* kernels");
    using runtime_launch_fn = int (*)(const char*, cc_dim3, cc_dim3, unsigned, void**, char*, int);
    using take_fn = std::size_t (*)(char*, std::size_t);
    auto runtime_launch = reinterpret_cast<runtime_launch_fn>(dlsym(h, "cc_emu_test_runtime_launch"));
    auto take = reinterpret_cast<take_fn>(dlsym(h, "cc_emu_take_warnings"));
    t.check((runtime_launch != nullptr) == has_test_kernels,
            std::string(path) + (has_test_kernels ? ": has" : ": has no") + " cc_emu_test_runtime_launch");
    if (has_test_kernels) {
        std::vector<int> in(300, 2), sums(2, 0);
        const int* pi = in.data();
        int* ps = sums.data();
        int n = 300;
        void* args[] = {&pi, &ps, &n};
        char msg[512];
        const int rc = l("cc_test_block_reduce", {2, 1, 1}, {256, 1, 1}, 0, args, msg, sizeof msg);
        t.check(rc == 0 && sums[0] == 512 && sums[1] == 88, std::string(path) + ": cc_test_block_reduce");
        int out[64];
        int* po = out;
        void* dargs[] = {&po};
        const int drc = l("cc_test_divergent_barrier", {1, 1, 1}, {64, 1, 1}, 0, dargs, msg, sizeof msg);
        t.check(drc == CC_EMU_DIVERGENT_BARRIER, std::string(path) + ": cc_test_divergent_barrier diagnosed");
        // The library's own warning log (this program links another copy of the runtime): a warning of a kernel on the
        // ABI's launch path is kept until taken, and taken once.
        if (runtime_launch) {
            char text[4096] = "";
            take(text, sizeof text);
            const int wrc = runtime_launch("cc_test_early_return_barrier", {1, 1, 1}, {64, 1, 1}, 0, dargs, msg, sizeof msg);
            const std::size_t length = take(text, sizeof text);
            t.check(wrc == 0 && length > 0 && length < sizeof text &&
                        std::strstr(text, "cc_test_early_return_barrier (grid (1,1,1), block (64,1,1)): warning: ") == text &&
                        std::strstr(text, "CC_EMU_EXITED_AT_BARRIER") != nullptr && take(nullptr, 0) == 0,
                    std::string(path) + ": a warning on the ABI's launch path comes back from cc_emu_take_warnings, once: " + text);
        }
    }
    dlclose(h);
}

// The build folder this program runs from (build/bin/cc_emu_selftest -> build).
std::string build_dir() {
    char path[4096];
    const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) return "build";
    std::string exe(path, static_cast<std::size_t>(n));
    exe = exe.substr(0, exe.rfind('/')); // build/bin
    return exe.substr(0, exe.rfind('/'));
}

} // namespace

int main(int argc, char** argv) {
    Tally t;
    std::vector<const char*> libs;
    std::string expect_sass;
    const char* const sass_option = "--expect-sass=";
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "-v") == 0)
            t.verbose = true;
        else if (std::strncmp(argv[i], sass_option, std::strlen(sass_option)) == 0)
            expect_sass = argv[i] + std::strlen(sass_option);
        else
            libs.push_back(argv[i]);
    }
    std::printf("primitives\n");
    cc_selftest::run_primitive_tests(t);
    std::printf("diagnostics\n");
    test_diagnostics(t);
    std::printf("launch validation and API\n");
    test_validation(t);
    std::printf("workers and concurrency\n");
    test_workers_and_concurrency(t);
    std::printf("throughput\n");
    test_throughput(t);
    if (!libs.empty()) {
        std::printf("shared libraries\n");
        for (std::size_t i = 0; i < libs.size(); ++i) test_library(t, libs[i], std::strstr(libs[i], "_test") != nullptr);
    }
    cc_abi_test::run_emulator_tests(t);
    std::printf("C ABI: libcheapconv.so on a fake CUDA driver\n");
    const std::string build = build_dir();
    cc_abi_test::run_cuda_runtime_tests(t, build + "/lib/libcheapconv.so", build + "/test/libcheapconv_fake_cuda.so", expect_sass);
    std::printf("%d passed, %d failed\n", t.passed, t.failed);
    return t.failed == 0 ? 0 : 1;
}
