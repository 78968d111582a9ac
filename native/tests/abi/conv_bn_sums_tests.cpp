// The training batch norm's backward reduction in the 1x1 data gradient's store (cc_conv_backward_data_bn_sums, the
// implicit-GEMM kernel's store_bn_sums) and the batch-norm backward that adds the slots (cc_batchnorm_backward_from_sums),
// over the Moonshine G unit's pointwise problems (z -> relu(bn(z)) -> 1x1) at small batch and odd shapes, with the ReLU
// and the batch norm's accumulate on and off:
//   1. da bit for bit cc_conv_backward_data's (same problem and options): the sums change no output;
//   2. every slot within the bounds derived below of float64 sums over its block's positions (of the fp32 da);
//   3. dbeta, dgamma and dz within their bounds of a float64 reference (exact sums, exact x_hat), and within the sum of
//      both paths' bounds of cc_batchnorm_backward's (on the same z and da);
//   4. the same bits on a second run and with one emulator worker thread as with several;
//   5. the refusals: NULL pointers, bn's arrays, a short sums buffer, overlaps, accumulate, and problems or options whose
//      data gradient runs another kernel.
//
// Bounds (u = 2^-24, g(k) = k u / (1 - k u): k roundings in a row, Higham 3.4). g = da or 0 (the mask is recomputed in
// float exactly as the kernels do, cc_bn_affine > 0, so it is the same set of positions in the reference); x_hat =
// fl(fl(z - mean) invstd) is within g(2) |x_hat| of (z - mean) invstd (mean, invstd the fp32 parameters both use).
// A block's slot sums at most 64 positions (the square tile's columns) through at most h = 12 roundings: a thread's 8
// columns of the row (2 per mma tile, 4 tiles), 2 lane shuffles, and the row's 2 warps. So
//   slot[0] (sum of g):          e0 = g(h) sum |g|
//   slot[1] (sum of g x_hat):    e1 = g(h + 3) sum |g x_hat|   (x_hat's 2 roundings and the product's, then the sum)
// The batch norm adds a channel's slots through at most D = ceil(slots / 256) + 5 + 5 roundings (a thread's slots in
// turn, the warp tree, the block tree), so with s_b the exact slot sums:
//   E = sum_b e_b + g(D) sum_b (|s_b| + e_b)   for dbeta (e0, |sum g|) and dgamma (e1, |sum g x_hat|).
// cc_batchnorm_backward's own sums (m values per channel, a thread's ceil(m / 256) in turn, two trees of 5, and up to 8
// cluster ranks): E' = g(ceil(m / 256) + 18 + 3) sum |term|.
// dz = ga is / m (m g - dbeta - x_hat dgamma) as cc_bn_input_gradient evaluates it: with A the exact bracket, the
// computed one is off by at most E_beta + |x_hat| E_gamma + g(4) (m |g| + |dbeta| + E_beta + |x_hat| (|dgamma| + E_gamma)),
// and the factor fl(fl(ga is) / m) times it adds g(3): |dz~ - dz| <= |ga is / m| ((1 + g(3)) err_A + g(3) |A|). With the
// batch norm's accumulate, dx = fl(dx0 + dz~) adds u (|dx0| + |dz| + that bound). Worst cases for these tests: a dropped
// slot moves dbeta by a whole block's sum (64 positions of the channel's g), a wrong channel's mean moves x_hat by the
// difference of two means, a skipped mask changes g itself: each far above the bounds.
#include "abi_test.h"

#include "cc_emu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kU = 1.0 / 16777216.0;
constexpr int kSlotDepth = 12;  // h above
constexpr int kColumns = 64;    // positions per block column: the square tile's (implicit_gemm.cu's SquareTile)
constexpr int kBlock = 256;     // the batch norm's block (batchnorm.cpp's kReductionBlock)

double g(double k) { return k * kU / (1.0 - k * kU); }

std::size_t inputs(const cc_conv_problem& p) { return static_cast<std::size_t>(p.n) * p.c * p.h * p.w; }
std::size_t outputs(const cc_conv_problem& p) { return static_cast<std::size_t>(p.n) * p.k * p.p * p.q; }
std::size_t positions(const cc_conv_problem& p) { return static_cast<std::size_t>(p.n) * p.h * p.w; }

cc_conv_problem conv(int n, int c, int h, int w, int k)
{
    cc_conv_problem p{};
    cc_conv_init(&p, n, c, h, w, k, 1, 1, 0, 0, 1, 1, 1);
    return p;
}

std::string text_of(const cc_conv_problem& p)
{
    char text[128];
    std::snprintf(text, sizeof text, "n=%d c=%d h=%d w=%d k=%d", p.n, p.c, p.h, p.w, p.k);
    return text;
}

struct Case {
    cc_conv_problem p;
    cc_options options;
    int relu, accumulate;
    std::vector<float> z, dy, w, mean, invstd, gamma, beta, dx0; // dx0: what the batch norm's accumulate adds into
};

// z with a per-channel offset; mean and invstd the fp32 batch statistics of z (as the forward saved them).
Case make_case(const cc_conv_problem& p, const cc_options& options, int relu, int accumulate, unsigned long long seed)
{
    Case c{p, options, relu, accumulate, {}, {}, {}, {}, {}, {}, {}, {}};
    c.z = random_values(inputs(p), seed);
    const std::vector<float> offsets = random_values(p.c, seed + 1, -2.0f, 2.0f);
    const std::size_t plane = static_cast<std::size_t>(p.h) * p.w;
    for (std::size_t i = 0; i < c.z.size(); ++i) c.z[i] += offsets[i / plane % p.c];
    c.dy = random_values(outputs(p), seed + 2);
    c.w = random_values(static_cast<std::size_t>(p.k) * p.c, seed + 3);
    c.gamma = random_values(p.c, seed + 4, -1.5f, 1.5f);
    c.beta = random_values(p.c, seed + 5);
    c.dx0 = random_values(inputs(p), seed + 6);
    const double m = static_cast<double>(positions(p));
    for (int ch = 0; ch < p.c; ++ch) {
        double sum = 0, squares = 0;
        for (std::size_t j = 0; j < positions(p); ++j) sum += c.z[j / plane * p.c * plane + ch * plane + j % plane];
        const double mu = sum / m;
        for (std::size_t j = 0; j < positions(p); ++j) {
            const double d = c.z[j / plane * p.c * plane + ch * plane + j % plane] - mu;
            squares += d * d;
        }
        c.mean.push_back(static_cast<float>(mu));
        c.invstd.push_back(static_cast<float>(1.0 / std::sqrt(squares / m + 1e-5)));
    }
    return c;
}

// Element j = (n, h, w) of channel ch of z, da or dz.
std::size_t at(const cc_conv_problem& p, int ch, std::size_t j)
{
    const std::size_t plane = static_cast<std::size_t>(p.h) * p.w;
    return (j / plane * p.c + ch) * plane + j % plane;
}

cc_conv_input_bn input_bn(const Case& c) { return cc_conv_input_bn{c.mean.data(), c.invstd.data(), c.gamma.data(), c.beta.data(), c.relu}; }

cc_batchnorm_problem bn_problem(const Case& c) { return cc_batchnorm_problem{c.p.n, c.p.c, c.p.h, c.p.w, 1e-5f, 0.1f, c.relu, c.accumulate}; }

// The fused convolution's outputs.
struct Produced {
    std::vector<float> da, sums;
    int slots = 0;
};

Produced produce(Tally& t, const Case& c, const std::string& name)
{
    Produced out;
    expect_status(t, cc_conv_bn_sum_slots(&c.p, &c.options, &out.slots), CC_SUCCESS, {}, name + ": cc_conv_bn_sum_slots");
    out.da.assign(inputs(c.p), kNaN);
    out.sums.assign(static_cast<std::size_t>(c.p.c) * out.slots * CC_BN_SUMS_FLOATS_PER_SLOT, kNaN);
    const cc_conv_input_bn bn = input_bn(c);
    expect_status(t,
                  cc_conv_backward_data_bn_sums(emulator(), &c.p, &c.options, &bn, c.z.data(), c.dy.data(), c.w.data(), out.da.data(),
                                                out.sums.data(), out.sums.size() * sizeof(float), nullptr, 0, nullptr),
                  CC_SUCCESS, {}, name + ": cc_conv_backward_data_bn_sums");
    return out;
}

// The batch norm's outputs.
struct Gradients {
    std::vector<float> dz, dgamma, dbeta;
    bool operator==(const Gradients& o) const { return same_bits(dz, o.dz) && same_bits(dgamma, o.dgamma) && same_bits(dbeta, o.dbeta); }
};

Gradients fresh(const Case& c)
{
    return Gradients{c.accumulate ? c.dx0 : std::vector<float>(inputs(c.p), kNaN), std::vector<float>(c.p.c, kNaN),
                     std::vector<float>(c.p.c, kNaN)};
}

Gradients backward_from_sums(Tally& t, const Case& c, const Produced& in, const std::string& name)
{
    Gradients out = fresh(c);
    const cc_batchnorm_problem bn = bn_problem(c);
    expect_status(t,
                  cc_batchnorm_backward_from_sums(emulator(), &bn, in.sums.data(), in.slots, c.z.data(), in.da.data(), c.gamma.data(),
                                                  c.beta.data(), c.mean.data(), c.invstd.data(), out.dz.data(), out.dgamma.data(),
                                                  out.dbeta.data(), nullptr),
                  CC_SUCCESS, {}, name + ": cc_batchnorm_backward_from_sums");
    return out;
}

Gradients backward_unfused(Tally& t, const Case& c, const std::vector<float>& da, const std::string& name)
{
    Gradients out = fresh(c);
    const cc_batchnorm_problem bn = bn_problem(c);
    expect_status(t,
                  cc_batchnorm_backward(emulator(), &bn, c.z.data(), da.data(), c.gamma.data(), c.beta.data(), c.mean.data(), c.invstd.data(),
                                        out.dz.data(), out.dgamma.data(), out.dbeta.data(), nullptr),
                  CC_SUCCESS, {}, name + ": cc_batchnorm_backward");
    return out;
}

// The per-element terms in float64 (x_hat exact from the fp32 parameters), with the kernels' fp32 mask.
struct Terms {
    double g, x_hat;
};
Terms terms(const Case& c, const std::vector<float>& da, int ch, std::size_t j)
{
    const std::size_t i = at(c.p, ch, j);
    const float mu = c.mean[ch], is = c.invstd[ch];
    const bool off = c.relu && !(std::fma(c.gamma[ch], (c.z[i] - mu) * is, c.beta[ch]) > 0.0f);
    return Terms{off ? 0.0 : static_cast<double>(da[i]), (static_cast<double>(c.z[i]) - mu) * is};
}

// The float64 reference of everything, and the bounds of the header.
struct Reference {
    std::vector<double> dbeta, dgamma, dz, e_beta, e_gamma, dz_bound; // dz_bound: for the fused path
    std::vector<double> e_beta_unfused, e_gamma_unfused, dz_bound_unfused;
};

// 2: every slot against float64 over its block's positions; fills the combined sums' bounds.
void check_slots(Tally& t, const Case& c, const Produced& in, Reference& r, const std::string& name)
{
    const std::size_t count = positions(c.p);
    t.check(static_cast<std::size_t>(in.slots) == (count + kColumns - 1) / kColumns,
            name + ": one slot per 64-position block column (" + std::to_string(in.slots) + ")");
    std::vector<float> got;
    std::vector<double> want, bound;
    const double d = std::ceil(in.slots / static_cast<double>(kBlock)) + 5 + 5;
    r.e_beta.assign(c.p.c, 0.0);
    r.e_gamma.assign(c.p.c, 0.0);
    for (int ch = 0; ch < c.p.c; ++ch) {
        double abs_beta = 0, abs_gamma = 0;
        for (int s = 0; s < in.slots; ++s) {
            const float* slot = &in.sums[CC_BN_SUMS_FLOATS_PER_SLOT * (static_cast<std::size_t>(ch) * in.slots + s)];
            double sum_g = 0, sum_gx = 0, mag_g = 0, mag_gx = 0;
            for (std::size_t j = static_cast<std::size_t>(s) * kColumns; j < std::min(count, static_cast<std::size_t>(s + 1) * kColumns); ++j) {
                const Terms e = terms(c, in.da, ch, j);
                sum_g += e.g;
                sum_gx += e.g * e.x_hat;
                mag_g += std::fabs(e.g);
                mag_gx += std::fabs(e.g * e.x_hat);
            }
            const double e0 = g(kSlotDepth) * mag_g, e1 = g(kSlotDepth + 3) * mag_gx;
            got.push_back(slot[0]);
            got.push_back(slot[1]);
            want.push_back(sum_g);
            want.push_back(sum_gx);
            bound.push_back(e0);
            bound.push_back(e1);
            r.e_beta[ch] += e0;
            r.e_gamma[ch] += e1;
            abs_beta += std::fabs(sum_g) + e0;
            abs_gamma += std::fabs(sum_gx) + e1;
        }
        r.e_beta[ch] += g(d) * abs_beta;
        r.e_gamma[ch] += g(d) * abs_gamma;
    }
    expect_within(t, got, want, bound, name + ": every slot {sum g, sum g x_hat} against float64");
}

// dz's bound (header) for the fused or the unfused sums' errors.
double dz_bound(const Case& c, int ch, double m, const Terms& e, double dbeta, double dgamma, double e_beta, double e_gamma, double dz,
                std::size_t i)
{
    const double a = m * e.g - dbeta - e.x_hat * dgamma;
    const double err_a = e_beta + std::fabs(e.x_hat) * e_gamma +
                         g(4) * (m * std::fabs(e.g) + std::fabs(dbeta) + e_beta + std::fabs(e.x_hat) * (std::fabs(dgamma) + e_gamma));
    const double factor = std::fabs(static_cast<double>(c.gamma[ch]) * c.invstd[ch] / m);
    const double bound = factor * ((1 + g(3)) * err_a + g(3) * std::fabs(a));
    return c.accumulate ? bound + kU * (std::fabs(c.dx0[i]) + std::fabs(dz) + bound) : bound;
}

Reference reference(Tally& t, const Case& c, const Produced& in, const std::string& name)
{
    Reference r;
    check_slots(t, c, in, r, name);
    const std::size_t count = positions(c.p);
    const double m = static_cast<double>(count), depth = std::ceil(m / kBlock) + 18 + 3;
    r.dbeta.assign(c.p.c, 0.0);
    r.dgamma.assign(c.p.c, 0.0);
    r.e_beta_unfused.assign(c.p.c, 0.0);
    r.e_gamma_unfused.assign(c.p.c, 0.0);
    r.dz.assign(inputs(c.p), 0.0);
    r.dz_bound.assign(inputs(c.p), 0.0);
    r.dz_bound_unfused.assign(inputs(c.p), 0.0);
    for (int ch = 0; ch < c.p.c; ++ch) {
        double mag_g = 0, mag_gx = 0;
        for (std::size_t j = 0; j < count; ++j) {
            const Terms e = terms(c, in.da, ch, j);
            r.dbeta[ch] += e.g;
            r.dgamma[ch] += e.g * e.x_hat;
            mag_g += std::fabs(e.g);
            mag_gx += std::fabs(e.g * e.x_hat);
        }
        r.e_beta_unfused[ch] = g(depth) * mag_g;
        r.e_gamma_unfused[ch] = g(depth) * mag_gx;
        for (std::size_t j = 0; j < count; ++j) {
            const Terms e = terms(c, in.da, ch, j);
            const std::size_t i = at(c.p, ch, j);
            const double dz = static_cast<double>(c.gamma[ch]) * c.invstd[ch] / m * (m * e.g - r.dbeta[ch] - e.x_hat * r.dgamma[ch]);
            r.dz[i] = c.accumulate ? c.dx0[i] + dz : dz;
            r.dz_bound[i] = dz_bound(c, ch, m, e, r.dbeta[ch], r.dgamma[ch], r.e_beta[ch], r.e_gamma[ch], dz, i);
            r.dz_bound_unfused[i] = dz_bound(c, ch, m, e, r.dbeta[ch], r.dgamma[ch], r.e_beta_unfused[ch], r.e_gamma_unfused[ch], dz, i);
        }
    }
    return r;
}

// 3: against float64, and against cc_batchnorm_backward within the sum of both paths' bounds.
void check_gradients(Tally& t, const Case& c, const Reference& r, const Gradients& fused, const Gradients& unfused, const std::string& name)
{
    expect_within(t, fused.dbeta, r.dbeta, r.e_beta, name + ": dbeta against float64");
    expect_within(t, fused.dgamma, r.dgamma, r.e_gamma, name + ": dgamma against float64");
    expect_within(t, fused.dz, r.dz, r.dz_bound, name + ": dz against float64");
    const auto as_double = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
    const auto add = [](std::vector<double> a, const std::vector<double>& b) {
        for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
        return a;
    };
    expect_within(t, fused.dbeta, as_double(unfused.dbeta), add(r.e_beta, r.e_beta_unfused), name + ": dbeta against cc_batchnorm_backward's");
    expect_within(t, fused.dgamma, as_double(unfused.dgamma), add(r.e_gamma, r.e_gamma_unfused),
                  name + ": dgamma against cc_batchnorm_backward's");
    expect_within(t, fused.dz, as_double(unfused.dz), add(r.dz_bound, r.dz_bound_unfused), name + ": dz against cc_batchnorm_backward's");
    (void)c;
}

void check_case(Tally& t, const Case& c, bool again, const std::string& name)
{
    const Produced fused = produce(t, c, name);
    std::vector<float> plain(inputs(c.p), kNaN);
    expect_status(t, cc_conv_backward_data(emulator(), &c.p, &c.options, c.dy.data(), c.w.data(), plain.data(), nullptr, 0, nullptr),
                  CC_SUCCESS, {}, name + ": cc_conv_backward_data");
    t.check(same_bits(fused.da, plain), name + ": da bit for bit cc_conv_backward_data's");
    const Reference r = reference(t, c, fused, name);
    const Gradients got = backward_from_sums(t, c, fused, name);
    check_gradients(t, c, r, got, backward_unfused(t, c, fused.da, name), name);
    if (!again) return;
    const Produced second = produce(t, c, name + " (again)");
    t.check(same_bits(second.da, fused.da) && same_bits(second.sums, fused.sums) && backward_from_sums(t, c, second, name) == got,
            name + ": the same bits on a second run");
}

void check_refusals(Tally& t)
{
    const cc_conv_problem p = conv(2, 8, 5, 5, 16);
    const cc_options tf32{};
    int slots = 0;
    const char* fallback = "cc_batchnorm_backward";
    expect_status(t, cc_conv_bn_sum_slots(&p, &tf32, nullptr), CC_ERROR_INVALID_VALUE, {"slots"}, "bn sums slots query: NULL slots");
    expect_status(t, cc_conv_bn_sum_slots(nullptr, &tf32, &slots), CC_ERROR_INVALID_VALUE, {"problem"}, "bn sums slots query: NULL problem");
    cc_options fp32{};
    fp32.precision = CC_PRECISION_FP32;
    expect_status(t, cc_conv_bn_sum_slots(&p, &fp32, &slots), CC_ERROR_NOT_SUPPORTED, {"cc_conv_backward_data", fallback, "implicit-GEMM"},
                  "bn sums slots query: fp32 (the GEMM kernels) cannot fuse the sums");
    cc_options accumulate{};
    accumulate.accumulate = 1;
    expect_status(t, cc_conv_bn_sum_slots(&p, &accumulate, &slots), CC_ERROR_NOT_SUPPORTED, {"accumulate", "da alone", fallback},
                  "bn sums slots query: accumulate refused");
    cc_conv_problem other{};
    cc_conv_init(&other, 2, 8, 6, 6, 8, 3, 3, 1, 1, 1, 1, 1);
    expect_status(t, cc_conv_bn_sum_slots(&other, nullptr, &slots), CC_ERROR_NOT_SUPPORTED, {"1x1", fallback}, "bn sums slots query: a 3x3");
    cc_conv_init(&other, 2, 8, 6, 6, 16, 1, 1, 0, 0, 2, 2, 1);
    expect_status(t, cc_conv_bn_sum_slots(&other, nullptr, &slots), CC_ERROR_NOT_SUPPORTED, {"stride 1", fallback},
                  "bn sums slots query: a stride-2 1x1");
    cc_conv_init(&other, 2, 8, 6, 6, 16, 1, 1, 0, 0, 1, 1, 2);
    expect_status(t, cc_conv_bn_sum_slots(&other, nullptr, &slots), CC_ERROR_NOT_SUPPORTED, {"groups 1", fallback},
                  "bn sums slots query: a grouped 1x1");

    expect_status(t, cc_conv_bn_sum_slots(&p, &tf32, &slots), CC_SUCCESS, {}, "bn sums slots query");
    t.check(slots == 1, "bn sums: 50 positions, one 64-column block, one slot per channel (got " + std::to_string(slots) + ")");
    std::vector<float> z(2 * 8 * 25, 1.0f), dy(2 * 16 * 25, 1.0f), w(16 * 8, 1.0f), da(z.size()), sums(8 * 2 * slots + 64);
    std::vector<float> mean(8), invstd(8, 1.0f), gamma(8, 1.0f), beta(8);
    const std::size_t need = 8 * 2 * sizeof(float) * slots;
    const cc_conv_input_bn bn{mean.data(), invstd.data(), gamma.data(), beta.data(), 1};
    const auto call = [&](const cc_options* options, const cc_conv_input_bn* b, const float* zz, float* dd, float* ss, std::size_t bytes) {
        return cc_conv_backward_data_bn_sums(emulator(), &p, options, b, zz, dy.data(), w.data(), dd, ss, bytes, nullptr, 0, nullptr);
    };
    expect_status(t, call(nullptr, nullptr, z.data(), da.data(), sums.data(), need), CC_ERROR_INVALID_VALUE, {"bn"}, "conv with bn sums: NULL bn");
    for (int which = 0; which < 4; ++which) {
        cc_conv_input_bn broken = bn;
        const char* names[] = {"bn->mean", "bn->invstd", "bn->gamma", "bn->beta"};
        (which == 0 ? broken.mean : which == 1 ? broken.invstd : which == 2 ? broken.gamma : broken.beta) = nullptr;
        expect_status(t, call(nullptr, &broken, z.data(), da.data(), sums.data(), need), CC_ERROR_INVALID_VALUE, {names[which]},
                      std::string("conv with bn sums: NULL ") + names[which]);
    }
    expect_status(t, call(nullptr, &bn, nullptr, da.data(), sums.data(), need), CC_ERROR_INVALID_VALUE, {"z"}, "conv with bn sums: NULL z");
    expect_status(t, call(nullptr, &bn, z.data(), nullptr, sums.data(), need), CC_ERROR_INVALID_VALUE, {"da"}, "conv with bn sums: NULL da");
    expect_status(t, call(nullptr, &bn, z.data(), da.data(), nullptr, need), CC_ERROR_INVALID_VALUE, {"sums"}, "conv with bn sums: NULL sums");
    expect_status(t, call(nullptr, &bn, z.data(), da.data(), sums.data(), need - 4), CC_ERROR_INVALID_VALUE, {"sums holds", "cc_conv_bn_sum_slots"},
                  "conv with bn sums: sums one float short");
    expect_status(t, call(nullptr, &bn, z.data(), da.data(), da.data() + 8, need), CC_ERROR_INVALID_VALUE, {"sums", "da"},
                  "conv with bn sums: sums overlapping da");
    expect_status(t, call(nullptr, &bn, da.data(), da.data(), sums.data(), need), CC_ERROR_INVALID_VALUE, {"da", "z"},
                  "conv with bn sums: da overlapping z");
    expect_status(t, call(nullptr, &bn, z.data(), da.data(), mean.data(), need), CC_ERROR_INVALID_VALUE, {"sums", "bn->mean"},
                  "conv with bn sums: sums overlapping bn->mean");
    expect_status(t, call(&accumulate, &bn, z.data(), da.data(), sums.data(), need), CC_ERROR_NOT_SUPPORTED, {"accumulate"},
                  "conv with bn sums: accumulate refused");
    expect_status(t, call(&fp32, &bn, z.data(), da.data(), sums.data(), need), CC_ERROR_NOT_SUPPORTED, {fallback},
                  "conv with bn sums: fp32 refused");
    expect_status(t, cc_conv_backward_data_bn_sums(nullptr, &p, nullptr, &bn, z.data(), dy.data(), w.data(), da.data(), sums.data(), need,
                                                   nullptr, 0, nullptr),
                  CC_ERROR_INVALID_VALUE, {"handle"}, "conv with bn sums: NULL handle");

    const cc_batchnorm_problem bp{2, 8, 5, 5, 1e-5f, 0.1f, 1, 0};
    std::vector<float> dz(z.size()), dgamma(8), dbeta(8);
    const auto from = [&](const cc_batchnorm_problem* problem, const float* s, int count, const float* b, float* out, float* dg) {
        return cc_batchnorm_backward_from_sums(emulator(), problem, s, count, z.data(), da.data(), gamma.data(), b, mean.data(), invstd.data(), out,
                                               dg, dbeta.data(), nullptr);
    };
    expect_status(t, from(&bp, sums.data(), 0, beta.data(), dz.data(), dgamma.data()), CC_ERROR_INVALID_VALUE, {"slots"},
                  "batch norm from sums: 0 slots");
    expect_status(t, from(&bp, nullptr, slots, beta.data(), dz.data(), dgamma.data()), CC_ERROR_INVALID_VALUE, {"sums"},
                  "batch norm from sums: NULL sums");
    expect_status(t, from(&bp, dz.data(), slots, beta.data(), dz.data(), dgamma.data()), CC_ERROR_INVALID_VALUE, {"sums", "dx"},
                  "batch norm from sums: sums overlapping dx");
    expect_status(t, from(&bp, sums.data(), slots, nullptr, dz.data(), dgamma.data()), CC_ERROR_INVALID_VALUE, {"beta", "relu"},
                  "batch norm from sums: NULL beta with the ReLU");
    expect_status(t, from(&bp, sums.data(), slots, beta.data(), dz.data(), dbeta.data()), CC_ERROR_INVALID_VALUE, {"dgamma", "dbeta"},
                  "batch norm from sums: dgamma overlapping dbeta");
    expect_status(t, from(nullptr, sums.data(), slots, beta.data(), dz.data(), dgamma.data()), CC_ERROR_INVALID_VALUE, {"problem"},
                  "batch norm from sums: NULL problem");
}

} // namespace

void run_conv_bn_sums_tests(Tally& t)
{
    check_refusals(t);
    cc_options implicit{};
    implicit.algo = CC_ALGO_IMPLICIT_GEMM;
    const cc_options automatic{};
    // The G unit's pointwise problems of the catalogue (shapes/wrn40-2-moonshine.txt) at batch 2: 32 -> 64 at 32x32 and the
    // reversed roles 64 -> 32, 128 -> 128 at 8x8; then odd shapes: C, K, H, W off the multiples of 4, 8 and 16, two row
    // tiles (C = 70), a partial last slot (117 positions), batch 1 to 3.
    struct Problem {
        cc_conv_problem p;
        const cc_options* options;
    };
    const Problem problems[] = {
        {conv(2, 32, 32, 32, 64), &automatic}, {conv(2, 64, 32, 32, 32), &automatic}, {conv(2, 128, 8, 8, 128), &automatic},
        {conv(3, 5, 7, 9, 7), &implicit},      {conv(1, 70, 5, 11, 6), &implicit},     {conv(1, 9, 9, 13, 20), &implicit},
        {conv(2, 13, 3, 3, 17), &implicit},
    };
    unsigned long long seed = 1700;
    for (const Problem& pr : problems) {
        if (kUnderTsan && inputs(pr.p) > 4096) continue; // TSan: the small ones cover the synchronisation
        const bool large = inputs(pr.p) > 16384; // the 32x32 ones: two of the four cases (the ReLU on, accumulate on)
        for (int relu = 0; relu < 2; ++relu)
            for (int accumulate = 0; accumulate < 2; ++accumulate) {
                if (large && relu == accumulate) continue;
                const std::string name = "bn sums " + text_of(pr.p) + (relu ? ", ReLU" : "") + (accumulate ? ", accumulate" : "");
                check_case(t, make_case(pr.p, *pr.options, relu, accumulate, seed += 10), relu == accumulate || (large && relu), name);
                if (kUnderTsan) break;
            }
    }

    // One worker thread gives the bits of several.
    const Case c = make_case(conv(2, 24, 9, 7, 40), implicit, 1, 0, 4343);
    const Produced many = produce(t, c, "bn sums, several workers");
    const Gradients many_bn = backward_from_sums(t, c, many, "bn sums, several workers");
    cc_emu_set_worker_threads(1);
    const Produced one = produce(t, c, "bn sums, one worker");
    const Gradients one_bn = backward_from_sums(t, c, one, "bn sums, one worker");
    cc_emu_set_worker_threads(0);
    t.check(same_bits(many.da, one.da) && same_bits(many.sums, one.sums) && many_bn == one_bn,
            "bn sums: the same bits with one worker thread as with several");
}

} // namespace cc_abi_test
