// The input's training batch norm (+ ReLU) applied by the 1x1 tensor-core convolution as it reads z (cc_conv_forward_input_bn,
// cc_conv_backward_input_bn, the *_input_bn kernels of implicit_gemm.cu), and the batch norm's statistics alone
// (cc_batchnorm_train_statistics, cc_batchnorm_train_statistics_from_stats). Over the G unit's pointwise problems at
// batch 2 (shapes/wrn40-2-moonshine.txt) and odd shapes (C, K, H, W not multiples of 4, 8 or 16; C past one or two
// 16-channel k tiles by a few channels; batch 1 to 3), ReLU, residual and statistics on and off:
//   1. y, the statistics slots, da and dw bit for bit the unfused path: a stored by cc_batchnorm_train_forward (whose
//      save_mean and save_invstd are the bn given to the fused calls), then the plain calls on a (cc_conv_forward,
//      cc_conv_forward_fused with the residual, cc_conv_forward_bn_stats with stats, cc_conv_backward and its single
//      passes, with accumulate and with a split weight gradient whose chunks end inside a 16-position tile);
//   2. y, da and dw within the tf32 bounds of float64 sums over the stored a (expect_sums_tf32) for one shape;
//   3. the statistics calls bit for bit the statistics cc_batchnorm_train_forward and cc_batchnorm_train_forward_from_stats
//      save, and their running-statistics updates, the slots coming from cc_conv_forward_input_bn itself (the G unit's
//      chain: a convolution's store writes the slots, the next one reads through the batch norm they give);
//   4. the refusals: a 3x3 or stride-2 problem, fp32, NULL bn or fields, a short stats buffer, overlaps, nothing to write.
// What a wrong prologue looks like here: a parameter of the wrong channel, a skipped ReLU, an out-of-range reduction index
// that is not exactly 0 (bn(0) != 0), or a parameter read past C, change y and dw bits (and ASan sees the read).
#include "abi_test.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::size_t inputs(const cc_conv_problem& p) { return static_cast<std::size_t>(p.n) * p.c * p.h * p.w; }
std::size_t outputs(const cc_conv_problem& p) { return static_cast<std::size_t>(p.n) * p.k * p.p * p.q; }
std::size_t weights(const cc_conv_problem& p) { return static_cast<std::size_t>(p.k) * p.c; }

cc_conv_problem pointwise(int n, int c, int h, int w, int k, int stride = 1)
{
    cc_conv_problem p{};
    cc_conv_init(&p, n, c, h, w, k, 1, 1, 0, 0, stride, stride, 1);
    return p;
}

std::string text_of(const cc_conv_problem& p)
{
    char text[96];
    std::snprintf(text, sizeof text, "n=%d c=%d h=%d w=%d k=%d", p.n, p.c, p.h, p.w, p.k);
    return text;
}

// z and its batch norm: a stored by cc_batchnorm_train_forward, and the statistics it saved (what the fused calls get).
struct Case {
    cc_conv_problem p;
    cc_options options;
    std::vector<float> z, w, dy, residual, gamma, beta, a, save_mean, save_invstd;
    cc_conv_input_bn bn;
};

Case make_case(Tally& t, const cc_conv_problem& p, const cc_options& options, int relu, unsigned long long seed, const std::string& name)
{
    Case c{p, options, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    c.z = random_values(inputs(p), seed, -1.0f, 3.0f);
    c.w = random_values(weights(p), seed + 1);
    c.dy = random_values(outputs(p), seed + 2);
    c.residual = random_values(outputs(p), seed + 3);
    c.gamma = random_values(p.c, seed + 4, -1.5f, 1.5f); // both signs: the ReLU clips about half of a
    c.beta = random_values(p.c, seed + 5);
    c.a.assign(inputs(p), kNaN);
    c.save_mean.assign(p.c, kNaN);
    c.save_invstd.assign(p.c, kNaN);
    std::vector<float> running_mean(p.c, 0.0f), running_var(p.c, 1.0f);
    const cc_batchnorm_problem bp{p.n, p.c, p.h, p.w, 1e-5f, 0.1f, relu, 0};
    expect_status(t,
                  cc_batchnorm_train_forward(emulator(), &bp, c.z.data(), c.gamma.data(), c.beta.data(), running_mean.data(),
                                             running_var.data(), c.a.data(), c.save_mean.data(), c.save_invstd.data(), nullptr),
                  CC_SUCCESS, {}, name + ": cc_batchnorm_train_forward stores a");
    c.bn = cc_conv_input_bn{c.save_mean.data(), c.save_invstd.data(), c.gamma.data(), c.beta.data(), relu};
    return c;
}

// Statistics under which bn(0) overflows while a stays finite: mean 2^100, invstd 2^30, gamma +-2^-110, and z = 2^100 +
// m 2^77 (m integer, |m| <= 1000: exact in fp32), so x_hat = m 2^107 and a = gamma x_hat + beta is about m / 8, but for
// a zero z, x_hat = -2^130 = -inf and a = -inf (no ReLU). The kernels' zero-filled copies (reduction indices past C or past
// a split's end, columns past the last position) then hold z = 0: unless the prologue makes their contribution exactly 0,
// a product with the zero weight or dy beside it is 0 * inf = NaN. a is stored by cc_batchnorm_eval_forward (running
// variance 2^-60, eps 0: invstd = 1 / sqrt(2^-60) = 2^30 exactly), the same cc_bn_affine.
Case make_overflow_case(Tally& t, const cc_conv_problem& p, const cc_options& options, unsigned long long seed, const std::string& name)
{
    Case c{p, options, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    c.z = random_values(inputs(p), seed, -1000.0f, 1000.0f);
    for (float& v : c.z) v = std::ldexp(1.0f, 100) + std::round(v) * std::ldexp(1.0f, 77);
    c.w = random_values(weights(p), seed + 1);
    c.dy = random_values(outputs(p), seed + 2);
    c.residual = random_values(outputs(p), seed + 3);
    c.gamma = random_values(p.c, seed + 4);
    for (float& v : c.gamma) v = std::ldexp(v < 0 ? -1.0f : 1.0f, -110);
    c.beta = random_values(p.c, seed + 5);
    c.save_mean.assign(p.c, std::ldexp(1.0f, 100));
    c.save_invstd.assign(p.c, std::ldexp(1.0f, 30));
    const std::vector<float> variance(p.c, std::ldexp(1.0f, -60));
    c.a.assign(inputs(p), kNaN);
    const cc_batchnorm_problem bp{p.n, p.c, p.h, p.w, 0.0f, 0.1f, 0, 0};
    expect_status(t,
                  cc_batchnorm_eval_forward(emulator(), &bp, c.z.data(), c.gamma.data(), c.beta.data(), c.save_mean.data(), variance.data(),
                                            c.a.data(), nullptr),
                  CC_SUCCESS, {}, name + ": cc_batchnorm_eval_forward stores a");
    bool finite = true;
    for (float v : c.a) finite = finite && std::isfinite(v);
    t.check(finite, name + ": a is finite where bn(0) is -inf");
    c.bn = cc_conv_input_bn{c.save_mean.data(), c.save_invstd.data(), c.gamma.data(), c.beta.data(), 0};
    return c;
}

// 1, forward: cc_conv_forward_input_bn against the plain call on a, with or without the residual and the statistics.
void check_forward(Tally& t, const Case& c, bool residual, bool stats, const std::string& name)
{
    const float* res = residual ? c.residual.data() : nullptr;
    int slots = 0;
    if (stats) expect_status(t, cc_conv_bn_stats_slots(&c.p, &c.options, &slots), CC_SUCCESS, {}, name + ": slots");
    const std::size_t stat_floats = static_cast<std::size_t>(c.p.k) * slots * CC_BN_STATS_FLOATS_PER_SLOT;
    std::vector<float> y(outputs(c.p), kNaN), y_plain(outputs(c.p), kNaN), s(stat_floats, kNaN), s_plain(stat_floats, kNaN);
    expect_status(t,
                  cc_conv_forward_input_bn(emulator(), &c.p, &c.options, &c.bn, res, c.z.data(), c.w.data(), y.data(),
                                           stats ? s.data() : nullptr, s.size() * sizeof(float), nullptr, 0, nullptr),
                  CC_SUCCESS, {}, name + ": cc_conv_forward_input_bn");
    cc_status plain;
    const char* which;
    if (stats) {
        which = "cc_conv_forward_bn_stats";
        plain = cc_conv_forward_bn_stats(emulator(), &c.p, &c.options, res, c.a.data(), c.w.data(), y_plain.data(), s_plain.data(),
                                         s_plain.size() * sizeof(float), nullptr, 0, nullptr);
    } else if (residual) {
        which = "cc_conv_forward_fused";
        cc_conv_epilogue ep{};
        ep.residual = res;
        plain = cc_conv_forward_fused(emulator(), &c.p, &c.options, &ep, c.a.data(), c.w.data(), y_plain.data(), nullptr, 0, nullptr);
    } else {
        which = "cc_conv_forward";
        plain = cc_conv_forward(emulator(), &c.p, &c.options, c.a.data(), c.w.data(), y_plain.data(), nullptr, 0, nullptr);
    }
    expect_status(t, plain, CC_SUCCESS, {}, name + ": " + which + " on a");
    t.check(same_bits(y, y_plain), name + ": y bit for bit " + which + "'s on the stored a");
    if (stats) t.check(same_bits(s, s_plain), name + ": the statistics slots bit for bit " + which + "'s");
}

// 1, backward: cc_conv_backward_input_bn against cc_conv_backward on a (both gradients: the fused launch), and each
// gradient alone against its own call; with accumulate, da adds into what it held.
void check_backward(Tally& t, const Case& c, const std::string& name)
{
    std::size_t bytes = 0;
    expect_status(t, cc_conv_workspace_size(&c.p, CC_CONV_BACKWARD, &c.options, &bytes), CC_SUCCESS, {}, name + ": workspace");
    const std::vector<float> start = c.options.accumulate != 0 ? random_values(inputs(c.p), 77) : std::vector<float>(inputs(c.p), kNaN);
    std::vector<float> da = start, dw(weights(c.p), kNaN), dx = start, dw_plain(weights(c.p), kNaN), ws = workspace_of(bytes),
                       ws_plain = workspace_of(bytes);
    expect_status(t,
                  cc_conv_backward_input_bn(emulator(), &c.p, &c.options, &c.bn, c.z.data(), c.dy.data(), c.w.data(), da.data(), dw.data(),
                                            ws.data(), bytes, nullptr),
                  CC_SUCCESS, {}, name + ": cc_conv_backward_input_bn");
    expect_status(t,
                  cc_conv_backward(emulator(), &c.p, &c.options, c.a.data(), c.dy.data(), c.w.data(), dx.data(), dw_plain.data(),
                                   ws_plain.data(), bytes, nullptr),
                  CC_SUCCESS, {}, name + ": cc_conv_backward on a");
    t.check(same_bits(da, dx), name + ": da bit for bit cc_conv_backward's dx");
    t.check(same_bits(dw, dw_plain), name + ": dw bit for bit cc_conv_backward's on the stored a");

    // One gradient at a time (the single passes; z, or w, not read).
    std::vector<float> da_only = start, dw_only(weights(c.p), kNaN);
    ws = workspace_of(bytes);
    expect_status(t,
                  cc_conv_backward_input_bn(emulator(), &c.p, &c.options, &c.bn, nullptr, c.dy.data(), c.w.data(), da_only.data(), nullptr,
                                            ws.data(), bytes, nullptr),
                  CC_SUCCESS, {}, name + ": da alone");
    ws = workspace_of(bytes);
    expect_status(t,
                  cc_conv_backward_input_bn(emulator(), &c.p, &c.options, &c.bn, c.z.data(), c.dy.data(), nullptr, nullptr, dw_only.data(),
                                            ws.data(), bytes, nullptr),
                  CC_SUCCESS, {}, name + ": dw alone");
    t.check(same_bits(da_only, dx) && same_bits(dw_only, dw_plain), name + ": each gradient alone has the same bits");
}

// 2: y, da and dw within the tf32 bounds of float64 sums over the stored a (which 1 shows the fused calls multiply).
void check_reference(Tally& t, const Case& c, const std::string& name)
{
    ConvTensors in{c.a, c.w, c.dy};
    Sums y(outputs(c.p)), dx(inputs(c.p)), dw(weights(c.p));
    conv_reference(c.p, in, y, dx, dw);
    std::vector<float> got_y(outputs(c.p), kNaN), da(inputs(c.p), kNaN), got_dw(weights(c.p), kNaN);
    std::size_t bytes = 0;
    expect_status(t, cc_conv_workspace_size(&c.p, CC_CONV_BACKWARD, &c.options, &bytes), CC_SUCCESS, {}, name + ": workspace");
    std::vector<float> ws = workspace_of(bytes);
    expect_status(t,
                  cc_conv_forward_input_bn(emulator(), &c.p, &c.options, &c.bn, nullptr, c.z.data(), c.w.data(), got_y.data(), nullptr, 0,
                                           nullptr, 0, nullptr),
                  CC_SUCCESS, {}, name + ": forward");
    expect_status(t,
                  cc_conv_backward_input_bn(emulator(), &c.p, &c.options, &c.bn, c.z.data(), c.dy.data(), c.w.data(), da.data(),
                                            got_dw.data(), ws.data(), bytes, nullptr),
                  CC_SUCCESS, {}, name + ": backward");
    expect_sums_tf32(t, got_y, y, name + ": y against float64");
    expect_sums_tf32(t, da, dx, name + ": da against float64");
    expect_sums_tf32(t, got_dw, dw, name + ": dw against float64");
}

// 3: the statistics alone, bit for bit the training forwards' statistics. The slots are those cc_conv_forward_input_bn
// writes for its y (so the chain of the G unit runs as it would: the next batch norm's statistics from this store).
void check_statistics(Tally& t, const Case& c, const std::string& name)
{
    const cc_conv_problem& p = c.p;
    // Of z (c channels): cc_batchnorm_train_statistics against cc_batchnorm_train_forward.
    const cc_batchnorm_problem bz{p.n, p.c, p.h, p.w, 1e-3f, 0.25f, c.bn.relu, 0};
    std::vector<float> rm = random_values(p.c, 5), rv = random_values(p.c, 6, 0.5f, 2.0f), rm2 = rm, rv2 = rv;
    std::vector<float> sm(p.c, kNaN), si(p.c, kNaN), sm2(p.c, kNaN), si2(p.c, kNaN), y(inputs(p), kNaN);
    expect_status(t,
                  cc_batchnorm_train_statistics(emulator(), &bz, c.z.data(), rm.data(), rv.data(), sm.data(), si.data(), nullptr),
                  CC_SUCCESS, {}, name + ": cc_batchnorm_train_statistics");
    expect_status(t,
                  cc_batchnorm_train_forward(emulator(), &bz, c.z.data(), c.gamma.data(), c.beta.data(), rm2.data(), rv2.data(), y.data(),
                                             sm2.data(), si2.data(), nullptr),
                  CC_SUCCESS, {}, name + ": cc_batchnorm_train_forward");
    t.check(same_bits(sm, sm2) && same_bits(si, si2) && same_bits(rm, rm2) && same_bits(rv, rv2),
            name + ": cc_batchnorm_train_statistics bit for bit cc_batchnorm_train_forward's saved and running statistics");

    // Of y (k channels) from the slots of cc_conv_forward_input_bn: the _from_stats pair.
    int slots = 0;
    expect_status(t, cc_conv_bn_stats_slots(&p, &c.options, &slots), CC_SUCCESS, {}, name + ": slots");
    std::vector<float> out(outputs(p), kNaN), stats(static_cast<std::size_t>(p.k) * slots * CC_BN_STATS_FLOATS_PER_SLOT, kNaN);
    expect_status(t,
                  cc_conv_forward_input_bn(emulator(), &p, &c.options, &c.bn, c.residual.data(), c.z.data(), c.w.data(), out.data(),
                                           stats.data(), stats.size() * sizeof(float), nullptr, 0, nullptr),
                  CC_SUCCESS, {}, name + ": the slots of y");
    const cc_batchnorm_problem by{p.n, p.k, p.p, p.q, 1e-3f, 0.25f, 1, 0};
    const std::vector<float> gamma = random_values(p.k, 7, -1.5f, 1.5f), beta = random_values(p.k, 8);
    std::vector<float> km = random_values(p.k, 9), kv = random_values(p.k, 10, 0.5f, 2.0f), km2 = km, kv2 = kv;
    std::vector<float> ym(p.k, kNaN), yi(p.k, kNaN), ym2(p.k, kNaN), yi2(p.k, kNaN), normalized(outputs(p), kNaN);
    expect_status(t,
                  cc_batchnorm_train_statistics_from_stats(emulator(), &by, stats.data(), slots, km.data(), kv.data(), ym.data(), yi.data(),
                                                           nullptr),
                  CC_SUCCESS, {}, name + ": cc_batchnorm_train_statistics_from_stats");
    expect_status(t,
                  cc_batchnorm_train_forward_from_stats(emulator(), &by, stats.data(), slots, out.data(), gamma.data(), beta.data(),
                                                        km2.data(), kv2.data(), normalized.data(), ym2.data(), yi2.data(), nullptr),
                  CC_SUCCESS, {}, name + ": cc_batchnorm_train_forward_from_stats");
    t.check(same_bits(ym, ym2) && same_bits(yi, yi2) && same_bits(km, km2) && same_bits(kv, kv2),
            name + ": cc_batchnorm_train_statistics_from_stats bit for bit cc_batchnorm_train_forward_from_stats's statistics");
}

void check_refusals(Tally& t)
{
    const cc_options tf32{};
    cc_options fp32{};
    fp32.precision = CC_PRECISION_FP32;
    const cc_conv_problem p = pointwise(2, 8, 5, 5, 16);
    expect_status(t, cc_conv_input_bn_supported(&p, &tf32), CC_SUCCESS, {}, "input bn: a 1x1 stride-1 problem in tf32 is supported");
    expect_status(t, cc_conv_input_bn_supported(&p, nullptr), CC_SUCCESS, {}, "input bn: NULL options (the defaults) too");
    expect_status(t, cc_conv_input_bn_supported(nullptr, &tf32), CC_ERROR_INVALID_VALUE, {"problem"}, "input bn: NULL problem");
    expect_status(t, cc_conv_input_bn_supported(&p, &fp32), CC_ERROR_NOT_SUPPORTED, {"cc_batchnorm_train_forward", "TF32"},
                  "input bn: fp32 (the GEMM kernels) refused");
    cc_conv_problem dense3{};
    cc_conv_init(&dense3, 2, 8, 6, 6, 8, 3, 3, 1, 1, 1, 1, 1);
    expect_status(t, cc_conv_input_bn_supported(&dense3, &tf32), CC_ERROR_NOT_SUPPORTED, {"cc_batchnorm_train_forward", "1x1"},
                  "input bn: a 3x3 problem refused");
    const cc_conv_problem strided = pointwise(2, 8, 6, 6, 8, 2);
    expect_status(t, cc_conv_input_bn_supported(&strided, &tf32), CC_ERROR_NOT_SUPPORTED, {"stride"}, "input bn: stride 2 refused");

    std::vector<float> z(inputs(p), 1.0f), w(weights(p), 1.0f), y(outputs(p)), dy(outputs(p), 1.0f), da(inputs(p)), dw(weights(p));
    std::vector<float> mean(8, 0.0f), invstd(8, 1.0f), gamma(8, 1.0f), beta(8, 0.0f), stats(16 * 3 + 64);
    const cc_conv_input_bn bn{mean.data(), invstd.data(), gamma.data(), beta.data(), 1};
    const auto forward = [&](const cc_conv_problem* problem, const cc_options* o, const cc_conv_input_bn* b, float* out, float* s,
                             std::size_t s_bytes) {
        return cc_conv_forward_input_bn(emulator(), problem, o, b, nullptr, z.data(), w.data(), out, s, s_bytes, nullptr, 0, nullptr);
    };
    expect_status(t, forward(&dense3, &tf32, &bn, y.data(), nullptr, 0), CC_ERROR_NOT_SUPPORTED, {"cc_batchnorm_train_forward"},
                  "input bn forward: a 3x3 problem refused");
    expect_status(t, forward(&p, &fp32, &bn, y.data(), nullptr, 0), CC_ERROR_NOT_SUPPORTED, {"cc_batchnorm_train_forward"},
                  "input bn forward: fp32 refused");
    expect_status(t, forward(&p, &tf32, nullptr, y.data(), nullptr, 0), CC_ERROR_INVALID_VALUE, {"bn"}, "input bn forward: NULL bn");
    const char* fields[] = {"bn->mean", "bn->invstd", "bn->gamma", "bn->beta"};
    for (int f = 0; f < 4; ++f) {
        cc_conv_input_bn broken = bn;
        const float** field[] = {&broken.mean, &broken.invstd, &broken.gamma, &broken.beta};
        *field[f] = nullptr;
        expect_status(t, forward(&p, &tf32, &broken, y.data(), nullptr, 0), CC_ERROR_INVALID_VALUE, {fields[f]},
                      std::string("input bn forward: NULL ") + fields[f]);
        std::vector<float> ws = workspace_of(1 << 20);
        expect_status(t,
                      cc_conv_backward_input_bn(emulator(), &p, &tf32, &broken, z.data(), dy.data(), w.data(), da.data(), dw.data(), ws.data(),
                                                ws.size() * sizeof(float), nullptr),
                      CC_ERROR_INVALID_VALUE, {fields[f]}, std::string("input bn backward: NULL ") + fields[f]);
    }
    expect_status(t, forward(&p, &tf32, &bn, nullptr, nullptr, 0), CC_ERROR_INVALID_VALUE, {"y"}, "input bn forward: NULL y");
    const std::size_t need = 16 * 3 * sizeof(float); // 50 positions: one slot per channel
    expect_status(t, forward(&p, &tf32, &bn, y.data(), stats.data(), need - 4), CC_ERROR_INVALID_VALUE, {"stats holds", "cc_conv_bn_stats_slots"},
                  "input bn forward: stats one float short");
    expect_status(t, forward(&p, &tf32, &bn, y.data(), stats.data(), need), CC_SUCCESS, {}, "input bn forward: stats of the right size");
    const cc_conv_input_bn onto_y{y.data(), invstd.data(), gamma.data(), beta.data(), 0};
    expect_status(t, forward(&p, &tf32, &onto_y, y.data(), nullptr, 0), CC_ERROR_INVALID_VALUE, {"bn->mean", "y"},
                  "input bn forward: y overlapping bn->mean");
    expect_status(t, forward(&p, &tf32, &bn, y.data(), y.data() + 4, need), CC_ERROR_INVALID_VALUE, {"stats", "y"},
                  "input bn forward: stats overlapping y");

    std::size_t bytes = 0;
    expect_status(t, cc_conv_workspace_size(&p, CC_CONV_BACKWARD, &tf32, &bytes), CC_SUCCESS, {}, "input bn backward: workspace");
    std::vector<float> ws = workspace_of(bytes);
    void* workspace = bytes > 0 ? ws.data() : nullptr;
    expect_status(t,
                  cc_conv_backward_input_bn(emulator(), &p, &tf32, &bn, z.data(), dy.data(), w.data(), nullptr, nullptr, workspace, bytes,
                                            nullptr),
                  CC_ERROR_INVALID_VALUE, {"da and dw"}, "input bn backward: nothing to write");
    expect_status(t,
                  cc_conv_backward_input_bn(emulator(), &p, &fp32, &bn, z.data(), dy.data(), w.data(), da.data(), dw.data(), workspace, bytes,
                                            nullptr),
                  CC_ERROR_NOT_SUPPORTED, {"cc_batchnorm_train_forward"}, "input bn backward: fp32 refused");
    expect_status(t,
                  cc_conv_backward_input_bn(emulator(), &p, &fp32, &bn, nullptr, dy.data(), w.data(), da.data(), nullptr, workspace, bytes,
                                            nullptr),
                  CC_ERROR_NOT_SUPPORTED, {"cc_batchnorm_train_forward"}, "input bn backward: fp32 refused for da alone");
    expect_status(t,
                  cc_conv_backward_input_bn(emulator(), &dense3, &tf32, &bn, z.data(), dy.data(), w.data(), da.data(), dw.data(), workspace,
                                            bytes, nullptr),
                  CC_ERROR_NOT_SUPPORTED, {"1x1"}, "input bn backward: a 3x3 problem refused");
    const cc_conv_input_bn onto_dw{mean.data(), dw.data(), gamma.data(), beta.data(), 0};
    expect_status(t,
                  cc_conv_backward_input_bn(emulator(), &p, &tf32, &onto_dw, z.data(), dy.data(), w.data(), da.data(), dw.data(), workspace,
                                            bytes, nullptr),
                  CC_ERROR_INVALID_VALUE, {"dw", "bn->invstd"}, "input bn backward: dw overlapping bn->invstd");
    expect_status(t,
                  cc_conv_backward_input_bn(emulator(), &p, &tf32, &onto_dw, z.data(), dy.data(), nullptr, nullptr, dw.data(), workspace,
                                            bytes, nullptr),
                  CC_ERROR_INVALID_VALUE, {"dw", "bn->invstd"}, "input bn backward: dw alone overlapping bn->invstd");

    // The statistics calls: the training forward's checks.
    const cc_batchnorm_problem one{1, 8, 1, 1, 1e-5f, 0.1f, 0, 0};
    std::vector<float> rm(16), rv(16, 1.0f), sm(16), si(16);
    expect_status(t, cc_batchnorm_train_statistics(emulator(), &one, z.data(), rm.data(), rv.data(), sm.data(), si.data(), nullptr),
                  CC_ERROR_INVALID_VALUE, {"more than one value"}, "statistics: one value per channel");
    const cc_batchnorm_problem bp{2, 8, 5, 5, 1e-5f, 0.1f, 0, 0};
    expect_status(t, cc_batchnorm_train_statistics(emulator(), &bp, z.data(), rm.data(), rv.data(), nullptr, si.data(), nullptr),
                  CC_ERROR_INVALID_VALUE, {"save_mean"}, "statistics: NULL save_mean");
    expect_status(t, cc_batchnorm_train_statistics(emulator(), &bp, nullptr, rm.data(), rv.data(), sm.data(), si.data(), nullptr),
                  CC_ERROR_INVALID_VALUE, {"x"}, "statistics: NULL x");
    expect_status(t, cc_batchnorm_train_statistics(emulator(), &bp, z.data(), rm.data(), z.data() + 8, sm.data(), si.data(), nullptr),
                  CC_ERROR_INVALID_VALUE, {"running_var", "x"}, "statistics: running_var overlapping x");
    const cc_batchnorm_problem bk{2, 16, 5, 5, 1e-5f, 0.1f, 0, 0};
    expect_status(t, cc_batchnorm_train_statistics_from_stats(emulator(), &bk, stats.data(), 0, rm.data(), rv.data(), sm.data(), si.data(), nullptr),
                  CC_ERROR_INVALID_VALUE, {"slots"}, "statistics from slots: 0 slots");
    expect_status(t, cc_batchnorm_train_statistics_from_stats(emulator(), &bk, nullptr, 1, rm.data(), rv.data(), sm.data(), si.data(), nullptr),
                  CC_ERROR_INVALID_VALUE, {"stats"}, "statistics from slots: NULL stats");
    expect_status(t,
                  cc_batchnorm_train_statistics_from_stats(emulator(), &bk, stats.data(), 1, rm.data(), rv.data(), stats.data() + 3, si.data(),
                                                           nullptr),
                  CC_ERROR_INVALID_VALUE, {"save_mean", "stats"}, "statistics from slots: save_mean overlapping stats");
}

} // namespace

void run_conv_input_bn_tests(Tally& t)
{
    check_refusals(t);
    cc_options implicit{};
    implicit.algo = CC_ALGO_IMPLICIT_GEMM;
    const cc_options automatic{};
    struct Problem {
        cc_conv_problem p;
        const cc_options* options;
        bool all; // every combination of ReLU, residual and statistics (else two)
    };
    // The G unit's pointwise problems at batch 2, then odd shapes: C = 5, 13 (one partial k tile), 17, 20 (a second tile
    // with 1 or 4 channels), K = 7, 9, 70 (two row tiles), positions 2 to 189 (partial and several column tiles).
    const Problem problems[] = {
        {pointwise(2, 32, 32, 32, 64), &automatic, false},  {pointwise(2, 64, 16, 16, 128), &automatic, false},
        {pointwise(2, 128, 8, 8, 128), &automatic, false},  {pointwise(3, 5, 7, 9, 7), &implicit, true},
        {pointwise(1, 13, 5, 3, 70), &implicit, true},      {pointwise(3, 17, 7, 9, 12), &implicit, true},
        {pointwise(2, 20, 3, 5, 9), &automatic, true},      {pointwise(1, 6, 1, 2, 5), &implicit, true},
    };
    unsigned long long seed = 3100;
    for (const Problem& pr : problems) {
        if (kUnderTsan && (outputs(pr.p) > 1024 || inputs(pr.p) > 1024)) continue; // TSan: the small ones cover the synchronisation
        for (int relu = 1; relu >= 0; --relu) {
            const std::string name = "input bn " + text_of(pr.p) + (relu ? ", ReLU" : "");
            const Case c = make_case(t, pr.p, *pr.options, relu, seed += 10, name);
            for (int combo = 0; combo < 4; ++combo) {
                const bool residual = (combo & 1) != 0, stats = (combo & 2) != 0;
                if (!pr.all && combo != (relu ? 3 : 0)) continue;
                check_forward(t, c, residual, stats, name + (residual ? " + residual" : "") + (stats ? ", stats" : ""));
                if (kUnderTsan) break;
            }
            check_backward(t, c, name);
            if (kUnderTsan) break;
        }
    }

    // Accumulate into da; a split weight gradient whose chunks (44 positions) end inside a 16-position tile, so the
    // masked positions past each split's end are exercised; a vectorized split (chunk 64).
    // Under TSan (every access tracked) the families keep a few small cases that launch each kernel: the refusals' forward
    // with statistics, one small problem's forward and both backward forms, the bn(0) = -inf case of 50 positions (a split
    // weight gradient alone), and the statistics of a small problem.
    const cc_conv_problem odd = pointwise(2, 17, 9, 11, 24);
    for (int chunk : {0, 44, 64}) {
        if (kUnderTsan) break;
        cc_options o = implicit;
        o.split_chunk = chunk;
        o.accumulate = chunk == 0 ? 1 : 0;
        const std::string name = "input bn " + text_of(odd) + (chunk == 0 ? ", accumulate" : ", split chunk " + std::to_string(chunk));
        check_backward(t, make_case(t, odd, o, 1, seed += 10, name), name);
    }
    const cc_conv_problem even = pointwise(2, 16, 8, 8, 24);
    if (!kUnderTsan) {
        cc_options o = implicit;
        o.split_chunk = 64;
        check_backward(t, make_case(t, even, o, 1, seed += 10, "input bn split 64"), "input bn " + text_of(even) + ", vectorized split chunk 64");
    }

    // bn(0) = -inf: every zero-filled index must contribute exactly 0 (C = 17 and 5: partial k tiles; 189 and 50 positions:
    // partial column tiles; split chunks of 44 positions: each split's last tile partial).
    for (const cc_conv_problem& p : {pointwise(3, 17, 7, 9, 12), pointwise(2, 5, 5, 5, 70)}) {
        if (kUnderTsan && p.c == 17) continue;
        cc_options o = implicit;
        o.split_chunk = 44;
        const std::string name = "input bn, bn(0) = -inf, " + text_of(p);
        const Case c = make_overflow_case(t, p, o, seed += 10, name);
        for (int combo = 0; combo < 4; ++combo) {
            if (kUnderTsan && combo != 3) continue;
            check_forward(t, c, (combo & 1) != 0, (combo & 2) != 0, name + ((combo & 1) ? " + residual" : "") + ((combo & 2) ? ", stats" : ""));
        }
        if (kUnderTsan) { // dw alone: the weight-gradient kernel with its split
            std::size_t bytes = 0;
            expect_status(t, cc_conv_workspace_size(&c.p, CC_CONV_BACKWARD, &c.options, &bytes), CC_SUCCESS, {}, name + ": workspace");
            std::vector<float> ws = workspace_of(bytes), dw(weights(c.p), kNaN), ws_plain = workspace_of(bytes), dw_plain(weights(c.p), kNaN);
            expect_status(t,
                          cc_conv_backward_input_bn(emulator(), &c.p, &c.options, &c.bn, c.z.data(), c.dy.data(), nullptr, nullptr,
                                                    dw.data(), ws.data(), bytes, nullptr),
                          CC_SUCCESS, {}, name + ": dw alone");
            expect_status(t,
                          cc_conv_backward_weight(emulator(), &c.p, &c.options, c.a.data(), c.dy.data(), dw_plain.data(), ws_plain.data(),
                                                  bytes, nullptr),
                          CC_SUCCESS, {}, name + ": cc_conv_backward_weight on a");
            t.check(same_bits(dw, dw_plain), name + ": dw alone bit for bit cc_conv_backward_weight's");
            continue;
        }
        check_backward(t, c, name);
    }

    // Against float64 (outside TSan).
    if (!kUnderTsan) check_reference(t, make_case(t, pointwise(3, 17, 7, 9, 12), implicit, 1, seed += 10, "input bn reference"),
                                     "input bn reference " + text_of(pointwise(3, 17, 7, 9, 12)));
    if (!kUnderTsan)
        check_reference(t, make_case(t, pointwise(2, 32, 16, 16, 64), automatic, 0, seed += 10, "input bn reference"),
                        "input bn reference " + text_of(pointwise(2, 32, 16, 16, 64)));

    // The statistics calls.
    for (const cc_conv_problem& p : {pointwise(2, 20, 3, 5, 9), pointwise(3, 17, 7, 9, 12), pointwise(2, 32, 16, 16, 64)}) {
        if (kUnderTsan && inputs(p) > 1024) break;
        check_statistics(t, make_case(t, p, implicit, 1, seed += 10, "input bn statistics"), "input bn statistics " + text_of(p));
    }
}

} // namespace cc_abi_test
