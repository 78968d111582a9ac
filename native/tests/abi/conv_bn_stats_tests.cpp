// The training batch norm's statistics in the forward convolution's store (cc_conv_forward_bn_stats: the implicit-GEMM
// forward kernels' store_statistics, the tiled 3x3 kernels' block_statistics) and the batch norm that combines them
// (cc_batchnorm_train_forward_from_stats), over catalogue convolutions at batch 2 (the G(4) student's pointwise and grouped
// problems, its 8-channel-group 3x3s and a depthwise one on the tiled kernels, a dense one) and odd shapes, with the residual
// and the ReLU on and off, on every implicit-GEMM forward tile:
//   1. y bit for bit the plain fused forward's (cc_conv_forward_fused with the residual): the statistics change no output;
//   2. every slot: its count exactly, its mean and squared deviations within the bounds derived below of float64 over
//      the stored y values of its block;
//   3. the combined statistics (save_mean, save_invstd, the running statistics) within the bounds of float64 over all of
//      the channel's y values;
//   4. the applied output against the unfused path (the same y through cc_batchnorm_train_forward), within the bound of
//      applying two sets of fp32 statistics, each checked in 3 (the unfused path by batchnorm_cluster_tests);
//   5. the same bits on every run and with one emulator worker thread as with several;
//   6. the refusals: NULL and too-small buffers, overlaps, and a problem the statistics cannot be fused into.
//
// Bounds (u = 2^-24, g(k) = k u / (1 - k u): k roundings in a row, Higham 3.4). A block's slot of channel k sums its
// n_b <= 128 values through at most h_b = 14 roundings: a thread's 8 columns of the row (2 per mma tile, 4 tiles), 2
// lane shuffles, and the row's at most 4 warps; a tiled block's through h_b = 16: a thread's 4 rows (3 adds), the warp's
// 5 shuffles, its 8 warps. With S1 = sum |v|, S2 = sum (v - mu)^2 over the block:
//   mean:     e_mu = g(h_b + 1) S1 / n_b                                  (the sum, then the division)
//   squares:  sum (v - mu')^2 = S2 + n_b (mu - mu')^2 exactly; each term is one subtraction and one product away from it,
//             then h_b adds: e_S2 = g(h_b + 2) (S2 + n_b e_mu^2) + n_b e_mu^2.
// The batch norm combines a channel's slots through at most D = ceil(slots / 256) + 5 + 5 pairwise steps (a thread's
// slots in turn, then the warp tree and the block tree). A step's mean ma + fl(mb - ma) fl(nb / n) is a convex
// combination of its inputs (their errors carry over with weight at most 1 + u) plus at most 2u |mb - ma| + u |mean|
// of rounding; with R the range of the channel's values and A their largest magnitude,
//   e_mean = (max_b e_mu_b + D u (2R + A)) (1 + g(D)).
// A step's m2 = fma(d^2, na fl(nb / n), m2a + m2b) adds positive terms with at most 4 roundings each, and its d = fl(mb -
// ma) is off by eps = 2 e_mean + u (R + 2 e_mean), so d^2 by 2 R eps + eps^2; the weights na nb / n of the steps of one
// tree level add up to at most M / 2, so with W = D M / 2:
//   e_S2 = sum_b e_S2_b + W (2 R eps + eps^2) + g(4 D) (S2 + sum_b e_S2_b + W (2 R eps + eps^2)).
// From there invstd and the running statistics as batchnorm_cluster_tests derives them. Applying two sets of fp32
// statistics (m1, is1) and (m2, is2) to the same x: x_hat_i = fl(fl(x - m_i) is_i) is within g(2) |x_hat_i| of (x - m_i)
// is_i, and y_i = fma(gamma, x_hat_i, beta) rounds once, so |y1 - y2| <= |gamma| (|(x - m1) is1 - (x - m2) is2| + g(2)
// (|x_hat_1| + |x_hat_2|)) + u (|y1| + |y2|) + (the same again for the rounded x_hat in the products), which the ReLU
// keeps (it is 1-Lipschitz). Worst cases: a dropped slot or a wrong order shifts a channel's statistics by O(1 / slots)
// of its spread, orders of magnitude above them.
#include "abi_test.h"
#include "conv_implicit_gemm.h"
#include "conv_tiled.h"
#include "runtime.h"

#include "cc_emu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kU = 1.0 / 16777216.0;
constexpr int kSlotDepth = 14;      // h_b above: the implicit-GEMM kernels
constexpr int kTiledSlotDepth = 16; // and the tiled ones
constexpr int kBlock = 256;    // the batch norm's block (batchnorm.cpp's kReductionBlock)

double g(double k) { return k * kU / (1.0 - k * kU); }

std::size_t outputs(const cc_conv_problem& p) { return static_cast<std::size_t>(p.n) * p.k * p.p * p.q; }

std::string text_of(const cc_conv_problem& p)
{
    char text[160];
    std::snprintf(text, sizeof text, "n=%d c=%d h=%d w=%d k=%d r=%d stride=%d pad=%d groups=%d", p.n, p.c, p.h, p.w, p.k, p.r,
                  p.stride_h, p.pad_h, p.groups);
    return text;
}

// The convolution's y and the slots its store wrote.
struct Produced {
    std::vector<float> y, stats;
    int slots = 0;
};

// The batch norm's outputs.
struct Normalized {
    std::vector<float> y, save_mean, save_invstd, running_mean, running_var;
    bool operator==(const Normalized& o) const
    {
        return same_bits(y, o.y) && same_bits(save_mean, o.save_mean) && same_bits(save_invstd, o.save_invstd) &&
               same_bits(running_mean, o.running_mean) && same_bits(running_var, o.running_var);
    }
};

struct Case {
    cc_conv_problem p;
    cc_options options;
    std::vector<float> x, w, residual, gamma, beta, running_mean, running_var;
    int relu;
};

Case make_case(const cc_conv_problem& p, const cc_options& options, bool residual, float offset, int relu, unsigned long long seed)
{
    Case c{p, options, {}, {}, {}, {}, {}, {}, {}, relu};
    c.x = random_values(static_cast<std::size_t>(p.n) * p.c * p.h * p.w, seed);
    c.w = random_values(static_cast<std::size_t>(p.k) * (p.c / p.groups) * p.r * p.s, seed + 1);
    // The residual carries the offset: the stored values then have a mean far from 0 against their spread.
    if (residual) c.residual = random_values(outputs(p), seed + 2, offset - 1.0f, offset + 1.0f);
    c.gamma = random_values(p.k, seed + 3, -1.5f, 1.5f);
    c.beta = random_values(p.k, seed + 4);
    c.running_mean = random_values(p.k, seed + 5);
    c.running_var = random_values(p.k, seed + 6, 0.5f, 2.0f);
    return c;
}

const float* residual_of(const Case& c) { return c.residual.empty() ? nullptr : c.residual.data(); }

// Through the ABI: the slots query and cc_conv_forward_bn_stats, outputs NaN-poisoned.
Produced produce(Tally& t, const Case& c, const std::string& name)
{
    Produced out;
    expect_status(t, cc_conv_bn_stats_slots(&c.p, &c.options, &out.slots), CC_SUCCESS, {}, name + ": cc_conv_bn_stats_slots");
    out.y.assign(outputs(c.p), kNaN);
    out.stats.assign(static_cast<std::size_t>(c.p.k) * out.slots * CC_BN_STATS_FLOATS_PER_SLOT, kNaN);
    expect_status(t,
                  cc_conv_forward_bn_stats(emulator(), &c.p, &c.options, residual_of(c), c.x.data(), c.w.data(), out.y.data(),
                                           out.stats.data(), out.stats.size() * sizeof(float), nullptr, 0, nullptr),
                  CC_SUCCESS, {}, name + ": cc_conv_forward_bn_stats");
    return out;
}

// On a tile chosen here (the launcher's rule gives the wide and flat tiles to batch-128 grids only), and without the
// statistics for comparison (stats false).
Produced produce_on(Tally& t, const Case& c, cc::ForwardTile tile, bool stats, const std::string& name)
{
    Produced out;
    cc::ImplicitGemmPlan plan;
    cc_status s = cc::plan_implicit_gemm_forward("conv_bn_stats_tests", c.p, tile, &plan);
    out.slots = static_cast<int>(plan.geometry.grid.x);
    out.y.assign(outputs(c.p), kNaN);
    out.stats.assign(static_cast<std::size_t>(c.p.k) * out.slots * CC_BN_STATS_FLOATS_PER_SLOT, kNaN);
    cc_conv_epilogue ep{};
    ep.residual = residual_of(c);
    if (s == CC_SUCCESS)
        s = cc::launch_implicit_gemm(*emulator(), plan, CC_CONV_FORWARD, c.p, c.x.data(), c.w.data(), out.y.data(), nullptr, nullptr,
                                     [&](char* text, std::size_t capacity) { std::snprintf(text, capacity, "%s", name.c_str()); }, 0, ep,
                                     stats ? out.stats.data() : nullptr);
    expect_status(t, s, CC_SUCCESS, {}, name + ": launch on the tile");
    return out;
}

cc_batchnorm_problem bn_problem(const Case& c)
{
    return cc_batchnorm_problem{c.p.n, c.p.k, c.p.p, c.p.q, 1e-3f, 0.25f, c.relu, 0};
}

Normalized fresh(const Case& c)
{
    const std::size_t k = static_cast<std::size_t>(c.p.k);
    return Normalized{std::vector<float>(outputs(c.p), kNaN), std::vector<float>(k, kNaN), std::vector<float>(k, kNaN), c.running_mean,
                      c.running_var};
}

Normalized normalize_from_stats(Tally& t, const Case& c, const Produced& in, const std::string& name)
{
    Normalized out = fresh(c);
    const cc_batchnorm_problem bn = bn_problem(c);
    expect_status(t,
                  cc_batchnorm_train_forward_from_stats(emulator(), &bn, in.stats.data(), in.slots, in.y.data(), c.gamma.data(),
                                                        c.beta.data(), out.running_mean.data(), out.running_var.data(), out.y.data(),
                                                        out.save_mean.data(), out.save_invstd.data(), nullptr),
                  CC_SUCCESS, {}, name + ": cc_batchnorm_train_forward_from_stats");
    return out;
}

Normalized normalize_unfused(Tally& t, const Case& c, const std::vector<float>& y, const std::string& name)
{
    Normalized out = fresh(c);
    const cc_batchnorm_problem bn = bn_problem(c);
    expect_status(t,
                  cc_batchnorm_train_forward(emulator(), &bn, y.data(), c.gamma.data(), c.beta.data(), out.running_mean.data(),
                                             out.running_var.data(), out.y.data(), out.save_mean.data(), out.save_invstd.data(), nullptr),
                  CC_SUCCESS, {}, name + ": cc_batchnorm_train_forward");
    return out;
}

// Element j of channel k of an N x K x P x Q tensor, j = (n, p, q) the output position.
std::size_t at(const cc_conv_problem& p, int k, std::size_t j)
{
    const std::size_t plane = static_cast<std::size_t>(p.p) * p.q;
    return (j / plane * p.k + k) * plane + j % plane;
}

// Which slot each output position j = (n, p, q) is in: the block of the implicit-GEMM kernels' column tiles (the tile's width
// is slot 0's count where there are several), or of the tiled kernels' strips (kernels/conv2d_tiled.cu: strip
// (n * row_tiles + p / CC_TILED_ROWS) * col_tiles + q / tile_w, `strips` of them per block). Also the rounding depth h_b.
std::vector<int> slot_owners(Tally& t, const Case& c, const Produced& in, int* depth)
{
    const std::size_t positions = static_cast<std::size_t>(c.p.n) * c.p.p * c.p.q, plane = static_cast<std::size_t>(c.p.p) * c.p.q;
    std::vector<int> owner(positions);
    char names[256] = "";
    cc_conv_kernel_names(&c.p, CC_CONV_FORWARD, &c.options, names, sizeof names);
    if (std::strstr(names, "tiled") != nullptr) {
        cc::TiledPlan plan;
        expect_status(t, cc::plan_tiled("conv_bn_stats_tests", c.p, CC_CONV_FORWARD, &plan), CC_SUCCESS, {}, "the tiled plan");
        const cc_tiled_plan& tp = plan.tiles;
        for (std::size_t j = 0; j < positions; ++j) {
            const int n = static_cast<int>(j / plane), p = static_cast<int>(j % plane) / c.p.q, q = static_cast<int>(j % c.p.q);
            owner[j] = ((n * tp.row_tiles + p / CC_TILED_ROWS) * tp.col_tiles + q / tp.tile_w) / tp.strips;
        }
        *depth = kTiledSlotDepth;
        return owner;
    }
    const std::size_t columns = in.slots > 1 ? static_cast<std::size_t>(in.stats[0]) : positions;
    for (std::size_t j = 0; j < positions; ++j) owner[j] = static_cast<int>(j / columns);
    *depth = kSlotDepth;
    return owner;
}

// 2: every slot against float64 over its block's positions. Returns sum_b e_S2_b and max_b e_mu_b per channel, for the
// combined bounds.
void check_slots(Tally& t, const Case& c, const Produced& in, std::vector<double>& slot_mean_error, std::vector<double>& slot_s2_error,
                 const std::string& name)
{
    const std::size_t positions = static_cast<std::size_t>(c.p.n) * c.p.p * c.p.q;
    int depth = 0;
    const std::vector<int> owner = slot_owners(t, c, in, &depth);
    std::vector<float> counts, means, squares;
    std::vector<double> want_counts, want_means, want_squares, zero, mean_bounds, square_bounds;
    slot_mean_error.assign(c.p.k, 0.0);
    slot_s2_error.assign(c.p.k, 0.0);
    for (int k = 0; k < c.p.k; ++k) {
        std::vector<double> n(in.slots), sum(in.slots), s1(in.slots), s2(in.slots);
        for (std::size_t j = 0; j < positions; ++j) {
            const double v = in.y[at(c.p, k, j)];
            n[owner[j]] += 1;
            sum[owner[j]] += v;
            s1[owner[j]] += std::fabs(v);
        }
        for (std::size_t j = 0; j < positions; ++j) {
            const double d = in.y[at(c.p, k, j)] - sum[owner[j]] / n[owner[j]];
            s2[owner[j]] += d * d;
        }
        for (int s = 0; s < in.slots; ++s) {
            const float* slot = &in.stats[CC_BN_STATS_FLOATS_PER_SLOT * (static_cast<std::size_t>(k) * in.slots + s)];
            const double mu = sum[s] / n[s];
            const double e_mu = g(depth + 1) * s1[s] / n[s], e_s2 = g(depth + 2) * (s2[s] + n[s] * e_mu * e_mu) + n[s] * e_mu * e_mu;
            counts.push_back(slot[0]);
            means.push_back(slot[1]);
            squares.push_back(slot[2]);
            want_counts.push_back(n[s]);
            want_means.push_back(mu);
            want_squares.push_back(s2[s]);
            zero.push_back(0.0);
            mean_bounds.push_back(e_mu);
            square_bounds.push_back(e_s2);
            slot_mean_error[k] = std::max(slot_mean_error[k], e_mu);
            slot_s2_error[k] += e_s2;
        }
    }
    expect_within(t, counts, want_counts, zero, name + ": every slot's count");
    expect_within(t, means, want_means, mean_bounds, name + ": every slot's mean");
    expect_within(t, squares, want_squares, square_bounds, name + ": every slot's squared deviations");
}

// 3: the combined statistics against float64 over the channel, within the bounds of the header.
void check_combined(Tally& t, const Case& c, const Produced& in, const Normalized& got, const std::string& name)
{
    std::vector<double> slot_mean_error, slot_s2_error;
    check_slots(t, c, in, slot_mean_error, slot_s2_error, name);
    const cc_batchnorm_problem bn = bn_problem(c);
    const std::size_t positions = static_cast<std::size_t>(c.p.n) * c.p.p * c.p.q;
    const double m = static_cast<double>(positions), d = std::ceil(in.slots / static_cast<double>(kBlock)) + 5 + 5, mo = bn.momentum;
    std::vector<double> mean(c.p.k), invstd(c.p.k), rmean(c.p.k), rvar(c.p.k), mean_b(c.p.k), invstd_b(c.p.k), rmean_b(c.p.k), rvar_b(c.p.k);
    for (int k = 0; k < c.p.k; ++k) {
        double sum = 0, lo = INFINITY, hi = -INFINITY, s2 = 0;
        for (std::size_t j = 0; j < positions; ++j) {
            const double v = in.y[at(c.p, k, j)];
            sum += v;
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        const double mu = sum / m, range = hi - lo, largest = std::max(std::fabs(lo), std::fabs(hi));
        for (std::size_t j = 0; j < positions; ++j) s2 += (in.y[at(c.p, k, j)] - mu) * (in.y[at(c.p, k, j)] - mu);
        const double e_mean = (slot_mean_error[k] + d * kU * (2 * range + largest)) * (1 + g(d));
        const double eps = 2 * e_mean + kU * (range + 2 * e_mean), weights = d * m / 2, cross = weights * (2 * range * eps + eps * eps);
        const double e_s2 = slot_s2_error[k] + cross + g(4 * d) * (s2 + slot_s2_error[k] + cross);
        const double v = s2 / m + bn.eps, e_v = e_s2 / m + g(2) * (v + e_s2 / m), r_is = e_v / (2 * (v - e_v)) + g(2);
        const double unbiased = s2 / (m - 1), e_unbiased = e_s2 / (m - 1) + kU * (s2 + e_s2) / (m - 1);
        mean[k] = mu;
        mean_b[k] = e_mean;
        invstd[k] = 1 / std::sqrt(v);
        invstd_b[k] = r_is * invstd[k];
        rmean[k] = (1 - mo) * c.running_mean[k] + mo * mu;
        rvar[k] = (1 - mo) * c.running_var[k] + mo * unbiased;
        rmean_b[k] = mo * e_mean + 4 * kU * ((1 - mo) * std::fabs(c.running_mean[k]) + mo * (std::fabs(mu) + e_mean));
        rvar_b[k] = mo * e_unbiased + 4 * kU * ((1 - mo) * std::fabs(c.running_var[k]) + mo * (unbiased + e_unbiased));
    }
    expect_within(t, got.save_mean, mean, mean_b, name + ": save_mean against float64");
    expect_within(t, got.save_invstd, invstd, invstd_b, name + ": save_invstd against float64");
    expect_within(t, got.running_mean, rmean, rmean_b, name + ": running_mean against float64");
    expect_within(t, got.running_var, rvar, rvar_b, name + ": running_var against float64");
}

// 4: the fused path's output against the unfused path's, each applying its own fp32 statistics to the same x.
void check_applied(Tally& t, const Case& c, const std::vector<float>& x, const Normalized& fused, const Normalized& unfused,
                   const std::string& name)
{
    const std::size_t positions = static_cast<std::size_t>(c.p.n) * c.p.p * c.p.q;
    std::vector<double> want(x.size()), bound(x.size());
    for (int k = 0; k < c.p.k; ++k) {
        const double m1 = fused.save_mean[k], is1 = fused.save_invstd[k], m2 = unfused.save_mean[k], is2 = unfused.save_invstd[k];
        const double ga = std::fabs(c.gamma[k]), be = std::fabs(c.beta[k]);
        for (std::size_t j = 0; j < positions; ++j) {
            const std::size_t i = at(c.p, k, j);
            const double xh1 = (x[i] - m1) * is1, xh2 = (x[i] - m2) * is2;
            const double rounding = ga * g(2) * (std::fabs(xh1) + std::fabs(xh2)) * (1 + g(2));
            want[i] = unfused.y[i];
            bound[i] = ga * std::fabs(xh1 - xh2) + rounding + 2 * kU * (ga * (std::fabs(xh1) + std::fabs(xh2)) * (1 + g(2)) + 2 * be);
        }
    }
    expect_within(t, fused.y, want, bound, name + ": the applied output against cc_batchnorm_train_forward's");
}

void check_case(Tally& t, const Case& c, const std::string& name)
{
    const Produced fused = produce(t, c, name);
    std::vector<float> plain(outputs(c.p), kNaN);
    cc_conv_epilogue ep{};
    ep.residual = residual_of(c);
    expect_status(t,
                  cc_conv_forward_fused(emulator(), &c.p, &c.options, &ep, c.x.data(), c.w.data(), plain.data(), nullptr, 0, nullptr),
                  CC_SUCCESS, {}, name + ": cc_conv_forward_fused");
    t.check(same_bits(fused.y, plain), name + ": y bit for bit cc_conv_forward_fused's");
    const Normalized got = normalize_from_stats(t, c, fused, name);
    check_combined(t, c, fused, got, name);
    check_applied(t, c, fused.y, got, normalize_unfused(t, c, fused.y, name), name);
    const Produced again = produce(t, c, name + " (again)");
    t.check(same_bits(again.y, fused.y) && same_bits(again.stats, fused.stats) && normalize_from_stats(t, c, again, name) == got,
            name + ": the same bits on a second run");
}

// Every tile: the slots where the tile's blocks are, the same y as the tile without statistics, the same combined
// statistics within their bounds.
void check_tile(Tally& t, const Case& c, cc::ForwardTile tile, const std::string& name)
{
    const Produced with = produce_on(t, c, tile, true, name);
    const Produced without = produce_on(t, c, tile, false, name);
    t.check(same_bits(with.y, without.y), name + ": y bit for bit the tile's without statistics");
    check_combined(t, c, with, normalize_from_stats(t, c, with, name), name);
}

cc_conv_problem conv(int n, int c, int h, int w, int k, int r, int stride, int pad, int groups)
{
    cc_conv_problem p{};
    cc_conv_init(&p, n, c, h, w, k, r, r, pad, pad, stride, stride, groups);
    return p;
}

void check_refusals(Tally& t)
{
    const cc_conv_problem p = conv(2, 8, 5, 5, 16, 1, 1, 0, 1);
    const cc_options tf32{};
    int slots = 0;
    expect_status(t, cc_conv_bn_stats_slots(&p, &tf32, nullptr), CC_ERROR_INVALID_VALUE, {"slots"}, "slots query: NULL slots");
    expect_status(t, cc_conv_bn_stats_slots(nullptr, &tf32, &slots), CC_ERROR_INVALID_VALUE, {"problem"}, "slots query: NULL problem");
    cc_options fp32{};
    fp32.precision = CC_PRECISION_FP32;
    expect_status(t, cc_conv_bn_stats_slots(&p, &fp32, &slots), CC_ERROR_NOT_SUPPORTED, {"cc_batchnorm_train_forward", "implicit-GEMM"},
                  "slots query: fp32 (the GEMM kernels) cannot fuse the statistics");
    const cc_conv_problem depthwise = conv(2, 8, 6, 6, 8, 3, 1, 1, 8);
    cc_options direct{};
    direct.algo = CC_ALGO_DIRECT;
    expect_status(t, cc_conv_bn_stats_slots(&depthwise, &direct, &slots), CC_ERROR_NOT_SUPPORTED, {"cc_batchnorm_train_forward"},
                  "slots query: the direct kernels cannot fuse the statistics");
    char names[256];
    expect_status(t, cc_conv_kernel_names(&depthwise, CC_CONV_FORWARD_BN_STATS, &direct, names, sizeof names), CC_ERROR_NOT_SUPPORTED,
                  {"cc_batchnorm_train_forward"}, "kernel names: the direct kernels with statistics refused");
    expect_status(t, cc_conv_kernel_names(&depthwise, CC_CONV_FORWARD_BN_STATS, nullptr, names, sizeof names), CC_SUCCESS, {},
                  "kernel names: a depthwise 3x3 with statistics");
    t.check(std::string(names) == "cc_conv2d_tiled_forward_bn_stats_s1_kernel cc_batchnorm_train_forward_from_stats_kernel",
            std::string("kernel names: a depthwise 3x3 writes its statistics in the tiled kernel (got ") + names + ")");
    expect_status(t, cc_conv_kernel_names(&p, CC_CONV_FORWARD_BN_STATS, nullptr, names, sizeof names), CC_SUCCESS, {},
                  "kernel names with statistics");
    t.check(std::string(names) == "cc_implicit_gemm_forward_1x1_kernel cc_batchnorm_train_forward_from_stats_kernel",
            std::string("kernel names with statistics: the forward kernel, then the batch norm's (got ") + names + ")");
    std::size_t bytes = 1;
    expect_status(t, cc_conv_workspace_size(&p, CC_CONV_FORWARD_BN_STATS, nullptr, &bytes), CC_SUCCESS, {}, "workspace with statistics");
    t.check(bytes == 0, "the forward with statistics needs no workspace");

    expect_status(t, cc_conv_bn_stats_slots(&p, &tf32, &slots), CC_SUCCESS, {}, "slots query");
    t.check(slots == 1, "50 positions: one 64-column block, one slot per channel (got " + std::to_string(slots) + ")");
    std::vector<float> x(2 * 8 * 25, 1.0f), w(16 * 8, 1.0f), y(outputs(p)), stats(16 * 3 * slots + 64);
    const std::size_t need = 16 * 3 * sizeof(float) * slots;
    expect_status(t, cc_conv_forward_bn_stats(emulator(), &p, nullptr, nullptr, x.data(), w.data(), y.data(), nullptr, need, nullptr, 0, nullptr),
                  CC_ERROR_INVALID_VALUE, {"stats"}, "conv with statistics: NULL stats");
    expect_status(t, cc_conv_forward_bn_stats(emulator(), &p, nullptr, nullptr, x.data(), w.data(), nullptr, stats.data(), need, nullptr, 0,
                                              nullptr),
                  CC_ERROR_INVALID_VALUE, {"y"}, "conv with statistics: NULL y");
    expect_status(t, cc_conv_forward_bn_stats(emulator(), &p, nullptr, nullptr, x.data(), w.data(), y.data(), stats.data(), need - 4, nullptr,
                                              0, nullptr),
                  CC_ERROR_INVALID_VALUE, {"stats holds", "cc_conv_bn_stats_slots"}, "conv with statistics: stats one float short");
    expect_status(t, cc_conv_forward_bn_stats(emulator(), &p, nullptr, nullptr, x.data(), w.data(), y.data(), y.data() + 8, need, nullptr, 0,
                                              nullptr),
                  CC_ERROR_INVALID_VALUE, {"stats", "y"}, "conv with statistics: stats overlapping y");
    expect_status(t, cc_conv_forward_bn_stats(emulator(), &p, &fp32, nullptr, x.data(), w.data(), y.data(), stats.data(), need, nullptr, 0,
                                              nullptr),
                  CC_ERROR_NOT_SUPPORTED, {"cc_batchnorm_train_forward"}, "conv with statistics: fp32 refused");

    const cc_batchnorm_problem bn{2, 16, 5, 5, 1e-5f, 0.1f, 1, 0};
    std::vector<float> gamma(16, 1.0f), beta(16), rm(16), rv(16, 1.0f), sm(16), si(16), out(outputs(p));
    expect_status(t, cc_batchnorm_train_forward_from_stats(emulator(), &bn, stats.data(), 0, y.data(), gamma.data(), beta.data(), rm.data(),
                                                           rv.data(), out.data(), sm.data(), si.data(), nullptr),
                  CC_ERROR_INVALID_VALUE, {"slots"}, "batch norm from statistics: 0 slots");
    expect_status(t, cc_batchnorm_train_forward_from_stats(emulator(), &bn, nullptr, slots, y.data(), gamma.data(), beta.data(), rm.data(),
                                                           rv.data(), out.data(), sm.data(), si.data(), nullptr),
                  CC_ERROR_INVALID_VALUE, {"stats"}, "batch norm from statistics: NULL stats");
    expect_status(t, cc_batchnorm_train_forward_from_stats(emulator(), &bn, out.data(), slots, y.data(), gamma.data(), beta.data(), rm.data(),
                                                           rv.data(), out.data(), sm.data(), si.data(), nullptr),
                  CC_ERROR_INVALID_VALUE, {"stats", "y"}, "batch norm from statistics: stats overlapping y");
    const cc_batchnorm_problem one{1, 16, 1, 1, 1e-5f, 0.1f, 1, 0};
    expect_status(t, cc_batchnorm_train_forward_from_stats(emulator(), &one, stats.data(), slots, y.data(), gamma.data(), beta.data(),
                                                           rm.data(), rv.data(), out.data(), sm.data(), si.data(), nullptr),
                  CC_ERROR_INVALID_VALUE, {"more than one value"}, "batch norm from statistics: one value per channel");
}

} // namespace

void run_conv_bn_stats_tests(Tally& t)
{
    check_refusals(t);
    cc_options implicit{};
    implicit.algo = CC_ALGO_IMPLICIT_GEMM;
    cc_options tiled{};
    tiled.algo = CC_ALGO_TILED;
    const cc_options automatic{};
    // The catalogue's problems of the G(4) student at batch 2 (shapes/wrn40-2-moonshine.txt: the pointwise convolutions,
    // the grouped 3x3 ones the tensor cores take, a stride-2 projection) and a dense 3x3 of the teacher; then odd shapes:
    // M, N not multiples of the tiles, two row tiles (K = 70), one partial slot (9 positions), groups, stride 2.
    struct Problem {
        cc_conv_problem p;
        const cc_options* options;
    };
    const Problem problems[] = {
        {conv(2, 64, 8, 8, 128, 1, 1, 0, 1), &automatic},   {conv(2, 32, 16, 16, 64, 1, 1, 0, 1), &automatic},
        {conv(2, 16, 32, 32, 32, 1, 1, 0, 1), &automatic},  {conv(2, 32, 32, 32, 64, 1, 2, 0, 1), &automatic},
        {conv(2, 64, 16, 16, 64, 3, 1, 1, 4), &automatic},  {conv(2, 128, 8, 8, 128, 3, 1, 1, 4), &automatic},
        {conv(2, 32, 32, 32, 32, 3, 1, 1, 1), &automatic},  {conv(3, 5, 7, 9, 7, 1, 1, 0, 1), &implicit},
        {conv(1, 6, 5, 11, 70, 3, 2, 1, 1), &implicit},     {conv(1, 8, 3, 3, 9, 1, 1, 0, 1), &implicit},
        {conv(2, 12, 9, 13, 24, 3, 1, 1, 3), &implicit},
        // The tiled kernels (kernels/conv2d_tiled.cu): the G(4) student's 8-channel groups (stride 1 and 2), a depthwise 3x3,
        // the stem (one input channel), odd shapes with partial strips and a block of several images.
        {conv(2, 32, 32, 32, 32, 3, 1, 1, 4), &automatic},  {conv(2, 32, 32, 32, 32, 3, 2, 1, 4), &automatic},
        {conv(2, 16, 12, 12, 16, 3, 1, 1, 16), &automatic}, {conv(2, 1, 12, 12, 16, 3, 1, 1, 1), &tiled},
        {conv(3, 6, 7, 9, 6, 3, 2, 0, 3), &tiled},          {conv(5, 4, 5, 3, 8, 3, 1, 2, 2), &tiled},
    };
    unsigned long long seed = 900;
    for (const Problem& pr : problems) {
        if (kUnderTsan && outputs(pr.p) > 4096) continue; // TSan: the small ones cover the synchronisation
        for (int residual = 0; residual < 2; ++residual)
            for (int relu = 0; relu < 2; ++relu) {
                const std::string name = "bn statistics " + text_of(pr.p) + (residual ? " + residual" : "") + (relu ? ", ReLU" : "");
                check_case(t, make_case(pr.p, *pr.options, residual != 0, 0.0f, relu, seed += 10), name);
                if (kUnderTsan) break;
            }
    }
    // Values about 1000 +- a few: a one-pass sum of squares would lose the variance, the slots keep it.
    check_case(t, make_case(conv(2, 16, 8, 8, 16, 3, 1, 1, 1), implicit, true, 1000.0f, 1, seed += 10), "bn statistics, mean 1000");

    // Every tile, with and without the residual (3x3 stride 1: the x window; stride 2: gathered).
    for (const cc_conv_problem& p : {conv(2, 16, 16, 16, 64, 3, 1, 1, 1), conv(2, 16, 16, 16, 32, 3, 1, 1, 1), conv(2, 12, 15, 17, 24, 3, 2, 1, 2)}) {
        if (kUnderTsan) break;
        for (cc::ForwardTile tile : {cc::ForwardTile::square, cc::ForwardTile::wide, cc::ForwardTile::flat})
            for (int residual = 0; residual < 2; ++residual) {
                const char* tile_name = tile == cc::ForwardTile::wide ? "wide" : tile == cc::ForwardTile::flat ? "flat" : "square";
                check_tile(t, make_case(p, implicit, residual != 0, 0.0f, 1, seed += 10), tile,
                           "bn statistics on the " + std::string(tile_name) + " tile, " + text_of(p) + (residual ? " + residual" : ""));
            }
    }

    // One worker thread gives the bits of several.
    const Case c = make_case(conv(2, 24, 9, 7, 40, 3, 1, 1, 1), implicit, true, 0.0f, 1, 4242);
    const Produced many = produce(t, c, "bn statistics, several workers");
    const Normalized many_bn = normalize_from_stats(t, c, many, "bn statistics, several workers");
    cc_emu_set_worker_threads(1);
    const Produced one = produce(t, c, "bn statistics, one worker");
    const Normalized one_bn = normalize_from_stats(t, c, one, "bn statistics, one worker");
    cc_emu_set_worker_threads(0);
    t.check(same_bits(many.y, one.y) && same_bits(many.stats, one.stats) && many_bn == one_bn,
            "bn statistics: the same bits with one worker thread as with several");
}

} // namespace cc_abi_test
