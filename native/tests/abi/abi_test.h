// Tests of the C ABI (include/cheapconv.h), run by the native self-test (tests/selftest/selftest.cpp):
// every family's refusals and their messages, workspaces, status strings, version, the per-thread last
// error, every family's results on the emulator against double-precision references, and the CUDA
// runtime of libcheapconv.so against a fake driver (tests/fake_cuda).
//
// The emulator tests call the ABI linked into the self-test binary (the same launcher and emulator-runtime
// objects as libcheapconv_emu.so); the CUDA runtime tests dlopen the built libcheapconv.so.
#ifndef CHEAPCONV_TESTS_ABI_TEST_H
#define CHEAPCONV_TESTS_ABI_TEST_H

#include "cheapconv.h"
#include "../selftest/primitives.h"

#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

namespace cc_abi_test {

using cc_selftest::Tally;

// Checks that a call returned `want` and, when that is a failure, that `message` (the library's
// cc_last_error()) contains every needle: the message says what was wrong.
void expect_status(Tally& t, cc_status got, cc_status want, const std::string& message, std::initializer_list<const char*> needles,
                   const std::string& what);
// The same for the ABI linked into the self-test (the emulator's), whose cc_last_error() it reads.
void expect_status(Tally& t, cc_status got, cc_status want, std::initializer_list<const char*> needles, const std::string& what);

// Whether this is the TSan build, where the tests run fewer and smaller cases (every access is tracked).
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kUnderTsan = true;
#else
inline constexpr bool kUnderTsan = false;
#endif

// A workspace of `bytes` for any call: the split weight gradients' arrival counters (its first
// CC_SPLIT_COUNTER_BYTES) zero, as cheapconv.h requires, and the rest NaN-poisoned (a call must write what it reads).
std::vector<float> workspace_of(std::size_t bytes);

// Deterministic values uniform in [lo, hi).
std::vector<float> random_values(std::size_t count, unsigned long long seed, float lo = -1.0f, float hi = 1.0f);

// Exact sums of products (in double) with, per element, the bound on the error of any fp32 evaluation:
// gamma(T) * sum |products|, gamma(T) = T u / (1 - T u), u = 2^-24, T the number of terms.
struct Sums {
    explicit Sums(std::size_t count) : value(count), magnitude(count), terms(count) {}
    void add(std::size_t i, double a, double b)
    {
        value[i] += a * b;
        magnitude[i] += a * b < 0 ? -a * b : a * b;
        terms[i] += 1;
    }
    std::vector<double> value, magnitude;
    std::vector<long> terms;
};

// Every element of `got` within its Sums bound; one check, named `what`.
void expect_sums(Tally& t, const std::vector<float>& got, const Sums& want, const std::string& what);

// The same for a tf32 evaluation (the tensor-core kernels): each factor rounded to tf32 first, |a~ - a| <= v|a| with
// v = 2^-11 (cvt.rna keeps 10 mantissa bits), so a product is off by at most (2v + v^2)|ab|, and the fp32 sum of the
// rounded products, whose magnitudes add up to at most (1 + v)^2 sum |ab|, by gamma(T) of that:
//   bound = (2v + v^2 + gamma(T) (1 + v)^2) * sum |products|.
void expect_sums_tf32(Tally& t, const std::vector<float>& got, const Sums& want, const std::string& what);

// Every element of `got` within bound[i] of want[i] (a float64 reference and a bound the test derives); one check, named
// `what`, which says the first offender, or how close the largest error came to its bound.
void expect_within(Tally& t, const std::vector<float>& got, const std::vector<double>& want, const std::vector<double>& bound,
                   const std::string& what);

// Whether two results hold the same bits (the determinism checks).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b);

// Every element within abs + rel * |want|; for results of exp, log, sqrt and divisions, whose errors the
// test states in ulps rather than derives term by term.
void expect_close(Tally& t, const float* got, const double* want, std::size_t count, double rel, double abs, const std::string& what);

// The emulator handle the family tests share (created on first use).
cc_handle emulator();

// Every test of the ABI on the emulator (the functions below), each family under a printed heading.
void run_emulator_tests(Tally& t);

void run_api_tests(Tally& t);
void run_conv_tests(Tally& t);
void run_conv_tiled_tests(Tally& t);
void run_conv_accumulate_tests(Tally& t);
void run_conv_fused_tests(Tally& t);
void run_conv_backward_tests(Tally& t);
void run_conv_tile_tests(Tally& t);
void run_conv_bn_stats_tests(Tally& t);
void run_conv_input_bn_tests(Tally& t);
void run_conv_bn_sums_tests(Tally& t);

// A convolution's inputs, and y, dx and dw by definition from them (conv_tests.cpp).
struct ConvTensors {
    std::vector<float> x, w, dy;
};
void conv_reference(const cc_conv_problem& p, const ConvTensors& in, Sums& y, Sums& dx, Sums& dw);

// Runs the three passes of `p` with `options` (outputs NaN-poisoned first) and checks each against the
// textbook loops in double (conv_tests.cpp).
void check_conv_passes(Tally& t, const cc_conv_problem& p, const cc_options* options, const std::string& name);
void run_linear_tests(Tally& t);
void run_split_reduce_tests(Tally& t);
void run_batchnorm_tests(Tally& t);
void run_batchnorm_cluster_tests(Tally& t);
void run_elementwise_pool_tests(Tally& t);
void run_loss_sgd_tests(Tally& t);
void run_runtime_tests(Tally& t);
void run_graph_tests(Tally& t);

// libcheapconv.so's CUDA runtime against the fake driver and against a missing one. `expect_sass` is the
// SASS list the build embedded ("80 90", or "none"), or "" when the caller does not know; either way the
// test checks that the describe text and the images loaded agree.
void run_cuda_runtime_tests(Tally& t, const std::string& library, const std::string& fake_driver, const std::string& expect_sass);

} // namespace cc_abi_test

#endif
