// cc_emu_sancheck: runs kernels on the emulator inside a sanitizer build.
//
// Build: make -C native sanitize      (both binaries; `make -C native sancheck` also runs every case)
//   native/build/asan/cc_emu_sancheck   ASan + UBSan (-fsanitize=address,bounds -fno-sanitize-recover=all)
//   native/build/tsan/cc_emu_sancheck   TSan (kernels instrumented, fibers annotated, barriers modelled)
// Sanitizer options are compiled in (see the *_default_options functions below): no environment needed.
//
// Usage: cc_emu_sancheck <case>     (run from anywhere; prints what it does; diagnostics go to stderr)
//
// case                 binary that catches it  expected result
// -------------------  ----------------------  -----------------------------------------------------------
// conv                 (both must pass)        exit 0, stdout has "conv: ok". Runs cc_conv2d_forward_kernel,
//                                              cc_conv2d_backward_data_kernel, cc_conv2d_backward_weight_kernel on small
//                                              problems (grouped stride 2, depthwise, 1x1, rectangular) with
//                                              exact-size malloc'ed buffers and checks them against a double
//                                              precision reference (exit 2 and "MISMATCH" if they disagree).
// selftest             (both must pass)        exit 0, stdout ends "selftest: N passed, 0 failed": the
//                                              emulator primitive tests of tests/selftest/primitives.cpp
//                                              and the C ABI tests on the emulator (tests/abi: every
//                                              launcher, with exact-size buffers).
// oob-global           asan                    exit 1, stderr "ERROR: AddressSanitizer: heap-buffer-overflow"
// oob-dynamic-shared   asan                    exit 1, stderr "ERROR: AddressSanitizer: heap-buffer-overflow"
// oob-static-shared    asan                    exit 1, stderr "runtime error: index 64 out of bounds for type 'int [64]'"
// missing-barrier      tsan                    exit 66, stderr "WARNING: ThreadSanitizer: data race"
// divergent-barrier    both                    exit 1, stderr "CC_EMU_DIVERGENT_BARRIER: ... thread (0,0,0) waits at
//                                              __syncthreads at tests/kernels/faulty.cu:LINE but thread (32,0,0) ..."
// shuffle-mismatch     both                    exit 1, stderr "CC_EMU_WARP_MISMATCH: ..."
//
// Both good cases print "launched: NAME" for every kernel they launched (see launch accounting below).
//
// A faulty case run under the binary that cannot see it (e.g. missing-barrier under asan) exits 3 and
// prints "NOT CAUGHT". Unknown case or bad usage: exit 64.
#include "selftest/primitives.h"
#include "abi/abi_test.h"

#include "cheapconv/problem.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
extern "C" __attribute__((visibility("default"), used)) const char* __asan_default_options() {
    // Leak checking is off: the emulator keeps its worker pool and fiber stacks for the process lifetime.
    return "detect_leaks=0:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0";
}
extern "C" __attribute__((visibility("default"), used)) const char* __ubsan_default_options() {
    return "halt_on_error=1:print_stacktrace=1";
}
static const char* const kBuild = "asan";
#elif defined(__SANITIZE_THREAD__)
extern "C" __attribute__((visibility("default"), used)) const char* __tsan_default_options() {
    // halt_on_error: the first race ends the run with exit code 66.
    return "halt_on_error=1:report_signal_unsafe=0:second_deadlock_stack=1";
}
static const char* const kBuild = "tsan";
#else
static const char* const kBuild = "plain";
#endif

using cc_selftest::launch;

// ---- launch accounting --------------------------------------------------------------------------------
// The sanitizer binaries are linked with -Wl,--wrap=cc_emu_launch: every launch, from these cases, the selftest's
// helpers or the C ABI's launchers, passes through here first. The good cases end by listing every kernel they
// launched ("launched: NAME"), and the C# SanitizerTests check that each production kernel (every entry of the
// embedded PTX) is launched under both sanitizers — so a new kernel cannot go without a sanitizer case.
#include <mutex>
#include <set>

extern "C" int __real_cc_emu_launch(const char* kernel, cc_dim3 grid, cc_dim3 block, unsigned dynamic_shared_bytes, void** args,
                                    char* message, int message_capacity);

namespace {
std::mutex launched_mutex;
std::set<std::string>& launched_kernels() {
    static std::set<std::string> names;
    return names;
}
} // namespace

extern "C" int __wrap_cc_emu_launch(const char* kernel, cc_dim3 grid, cc_dim3 block, unsigned dynamic_shared_bytes, void** args,
                                    char* message, int message_capacity) {
    if (kernel != nullptr) {
        const std::lock_guard<std::mutex> lock(launched_mutex);
        launched_kernels().insert(kernel);
    }
    return __real_cc_emu_launch(kernel, grid, block, dynamic_shared_bytes, args, message, message_capacity);
}

namespace {

void print_launched() {
    const std::lock_guard<std::mutex> lock(launched_mutex);
    for (const std::string& name : launched_kernels()) std::printf("launched: %s\n", name.c_str());
}

// ---- conv ---------------------------------------------------------------------------------------------

unsigned long long rng_state = 0x9e3779b97f4a7c15ull;
float random_float() {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>((rng_state >> 40) & 0xffff) / 32768.0f - 1.0f;
}

// Exactly n floats (so ASan sees one past the end), filled with random values.
float* random_buffer(std::size_t n) {
    auto* p = static_cast<float*>(std::malloc(n * sizeof(float)));
    for (std::size_t i = 0; i < n; ++i) p[i] = random_float();
    return p;
}
float* nan_buffer(std::size_t n) {
    auto* p = static_cast<float*>(std::malloc(n * sizeof(float)));
    for (std::size_t i = 0; i < n; ++i) p[i] = NAN; // an unwritten output fails the comparison
    return p;
}

cc_conv_problem make_problem(int n, int c, int h, int w, int k, int r, int s, int pad_h, int pad_w, int stride_h, int stride_w,
                             int groups) {
    cc_conv_problem p{};
    p.n = n; p.c = c; p.h = h; p.w = w; p.k = k; p.r = r; p.s = s;
    p.pad_h = pad_h; p.pad_w = pad_w; p.stride_h = stride_h; p.stride_w = stride_w; p.groups = groups;
    p.p = (h + 2 * pad_h - r) / stride_h + 1;
    p.q = (w + 2 * pad_w - s) / stride_w + 1;
    p.layout = CC_LAYOUT_NCHW;
    p.dtype = CC_DTYPE_F32;
    return p;
}

// y = conv(x, w) in double; dx and dw as the adjoints for a given dy.
void reference(const cc_conv_problem& p, const float* x, const float* w, const float* dy, std::vector<double>& y,
               std::vector<double>& dx, std::vector<double>& dw) {
    const int cg = p.c / p.groups, kg = p.k / p.groups;
    y.assign(static_cast<std::size_t>(p.n) * p.k * p.p * p.q, 0.0);
    dx.assign(static_cast<std::size_t>(p.n) * p.c * p.h * p.w, 0.0);
    dw.assign(static_cast<std::size_t>(p.k) * cg * p.r * p.s, 0.0);
    for (int n = 0; n < p.n; ++n)
        for (int k = 0; k < p.k; ++k)
            for (int oh = 0; oh < p.p; ++oh)
                for (int ow = 0; ow < p.q; ++ow) {
                    const std::size_t yi = ((static_cast<std::size_t>(n) * p.k + k) * p.p + oh) * p.q + ow;
                    for (int ci = 0; ci < cg; ++ci)
                        for (int r = 0; r < p.r; ++r)
                            for (int s = 0; s < p.s; ++s) {
                                const int h = oh * p.stride_h - p.pad_h + r, wi = ow * p.stride_w - p.pad_w + s;
                                if (h < 0 || h >= p.h || wi < 0 || wi >= p.w) continue;
                                const int c = k / kg * cg + ci;
                                const std::size_t xi = ((static_cast<std::size_t>(n) * p.c + c) * p.h + h) * p.w + wi;
                                const std::size_t wj = ((static_cast<std::size_t>(k) * cg + ci) * p.r + r) * p.s + s;
                                y[yi] += static_cast<double>(x[xi]) * w[wj];
                                dx[xi] += static_cast<double>(dy[yi]) * w[wj];
                                dw[wj] += static_cast<double>(dy[yi]) * x[xi];
                            }
                }
}

bool compare(const char* what, const float* got, const std::vector<double>& want) {
    for (std::size_t i = 0; i < want.size(); ++i) {
        const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
        if (!(err <= 1e-4 + 1e-4 * std::fabs(want[i]))) {
            std::printf("MISMATCH %s[%zu]: got %.7g, want %.7g\n", what, i, static_cast<double>(got[i]), want[i]);
            return false;
        }
    }
    return true;
}

unsigned blocks_for(long long items, long long per_block) { return static_cast<unsigned>((items + per_block - 1) / per_block); }

int run_conv() {
    const cc_conv_problem problems[] = {
        make_problem(2, 6, 7, 5, 6, 3, 3, 1, 1, 2, 2, 3), // grouped, stride 2, odd sizes
        make_problem(2, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 4), // depthwise
        make_problem(1, 5, 4, 3, 7, 1, 1, 0, 0, 1, 1, 1), // pointwise 1x1
        make_problem(1, 4, 5, 6, 8, 3, 2, 0, 1, 1, 2, 2), // rectangular filter and stride, K = 2C
    };
    bool all_ok = true;
    for (const cc_conv_problem& p : problems) {
        const std::size_t xs = static_cast<std::size_t>(p.n) * p.c * p.h * p.w;
        const std::size_t ws = static_cast<std::size_t>(p.k) * (p.c / p.groups) * p.r * p.s;
        const std::size_t ys = static_cast<std::size_t>(p.n) * p.k * p.p * p.q;
        float* x = random_buffer(xs);
        float* w = random_buffer(ws);
        float* dy = random_buffer(ys);
        float* y = nan_buffer(ys);
        float* dx = nan_buffer(xs);
        float* dw = nan_buffer(ws);
        std::printf("conv N=%d C=%d H=%d W=%d K=%d R=%d S=%d pad=%d,%d stride=%d,%d groups=%d -> P=%d Q=%d\n", p.n, p.c, p.h, p.w,
                    p.k, p.r, p.s, p.pad_h, p.pad_w, p.stride_h, p.stride_w, p.groups, p.p, p.q);
        cc_conv_problem pc = p;
        void* fwd[] = {&pc, &x, &w, &y};
        int overwrite = 0; // cc_conv2d_backward_data_kernel's accumulate: dx is written, not added into
        void* bwd_data[] = {&pc, &dy, &w, &dx, &overwrite};
        void* bwd_weight[] = {&pc, &x, &dy, &dw};
        // Geometry as in kernels/conv2d.cu: one thread per output element; one warp per weight element.
        int rc = launch("cc_conv2d_forward_kernel", {blocks_for(static_cast<long long>(ys), 256), 1, 1}, {256, 1, 1}, 0, fwd);
        if (rc == 0) rc = launch("cc_conv2d_backward_data_kernel", {blocks_for(static_cast<long long>(xs), 256), 1, 1}, {256, 1, 1}, 0, bwd_data);
        if (rc == 0) rc = launch("cc_conv2d_backward_weight_kernel", {blocks_for(static_cast<long long>(ws), 8), 1, 1}, {256, 1, 1}, 0, bwd_weight);
        if (rc != 0) {
            std::fprintf(stderr, "conv: emulator error %s\n", cc_emu_status_name(rc));
            return 1;
        }
        std::vector<double> ry, rdx, rdw;
        reference(p, x, w, dy, ry, rdx, rdw);
        all_ok = compare("y", y, ry) && all_ok;
        all_ok = compare("dx", dx, rdx) && all_ok;
        all_ok = compare("dw", dw, rdw) && all_ok;
        for (float* b : {x, w, dy, y, dx, dw}) std::free(b);
    }
    std::printf(all_ok ? "conv: ok\n" : "conv: MISMATCH\n");
    return all_ok ? 0 : 2;
}

// ---- faulty cases -------------------------------------------------------------------------------------

int not_caught(const char* what) {
    std::printf("NOT CAUGHT: %s ran to completion in the %s build (run it under the build named in sancheck.cpp)\n", what, kBuild);
    return 3;
}

// An emulator diagnostic: print it and fail.
int expect_emulator_error(const char* kernel, unsigned threads) {
    std::vector<int> out(threads, 0);
    int* po = out.data();
    void* args[] = {&po};
    std::string msg;
    const int rc = launch(kernel, {1, 1, 1}, {threads, 1, 1}, 0, args, &msg);
    if (rc == 0) return not_caught(kernel);
    std::fprintf(stderr, "%s\n", msg.c_str());
    return 1;
}

int run_case(const std::string& c) {
    if (c == "conv") {
        const int rc = run_conv();
        print_launched();
        return rc;
    }
    if (c == "selftest") {
        cc_selftest::Tally t;
        cc_selftest::run_primitive_tests(t);
        cc_abi_test::run_emulator_tests(t);
        print_launched();
        std::printf("selftest: %d passed, %d failed\n", t.passed, t.failed);
        return t.failed == 0 ? 0 : 1;
    }
    if (c == "oob-global") {
        int n = 1000;
        auto* y = static_cast<float*>(std::malloc(static_cast<std::size_t>(n) * sizeof(float)));
        void* args[] = {&y, &n};
        launch("cc_test_oob_global", {blocks_for(n + 1, 256), 1, 1}, {256, 1, 1}, 0, args);
        std::free(y);
        return not_caught(c.c_str());
    }
    if (c == "oob-dynamic-shared") {
        std::vector<float> out(64);
        float* po = out.data();
        void* args[] = {&po};
        launch("cc_test_oob_dynamic_shared", {1, 1, 1}, {64, 1, 1}, 64 * sizeof(float), args);
        return not_caught(c.c_str());
    }
    if (c == "oob-static-shared") {
        std::vector<int> out(64);
        int* po = out.data();
        void* args[] = {&po};
        launch("cc_test_oob_static_shared", {1, 1, 1}, {64, 1, 1}, 0, args);
        return not_caught(c.c_str());
    }
    if (c == "missing-barrier") {
        int n = 1000;
        std::vector<int> in(static_cast<std::size_t>(n), 1), out(static_cast<std::size_t>(n), 0);
        const int* pi = in.data();
        int* po = out.data();
        void* args[] = {&pi, &po, &n};
        launch("cc_test_missing_barrier", {blocks_for(n, 256), 1, 1}, {256, 1, 1}, 0, args);
        return not_caught(c.c_str());
    }
    if (c == "divergent-barrier") return expect_emulator_error("cc_test_divergent_barrier", 64);
    if (c == "shuffle-mismatch") return expect_emulator_error("cc_test_shuffle_mask_mismatch", 32);
    std::fprintf(stderr, "unknown case '%s'\n", c.c_str());
    return 64;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr,
                     "usage: %s <case>\ncases: conv selftest oob-global oob-dynamic-shared oob-static-shared missing-barrier "
                     "divergent-barrier shuffle-mismatch\n",
                     argv[0]);
        return 64;
    }
    // Two workers: blocks really run on two OS threads, which the sanitizers then see.
    cc_emu_set_worker_threads(2);
    std::printf("cc_emu_sancheck (%s build): %s\n", kBuild, argv[1]);
    std::fflush(stdout);
    const int rc = run_case(argv[1]);
    std::fflush(stdout);
    return rc;
}
