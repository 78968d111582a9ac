// The one-launch training batch norm (kernels/batchnorm.cu, the thread-block-cluster kernels the launcher picks on
// sm_90 and on the emulator) against three oracles, over the catalogue's activation shapes at batch 2 and odd shapes,
// with the ReLU on and off and dx overwritten and accumulated:
//   1. the float64 reference, within the worst-case bounds derived below;
//   2. the two-launch path (train_stats + apply, backward_reduce + backward_data, launched here by name through
//      cc_emu_launch, as the launcher does on devices without clusters), within the same bounds: both paths are
//      within them of the reference, so they differ by at most twice the bound;
//   3. themselves: the C ABI's call gives the same bits as a direct launch of the cluster kernel (so the ABI did take
//      the one-launch path), and the same bits again on every run, with one or several emulator worker threads.
//
// The bounds (u = 2^-24, g(k) = k u / (1 - k u), the classic bound for k roundings in a row). A value reaches a sum
// through at most h additions: the cluster kernel's per-thread loop (ceil(M / (8 * 256)) adds), the warp tree (5), the
// block's tree over the warp totals (5) and the cluster's 8 adds in rank order; the two-launch kernels' per-thread loop
// (ceil(M / 256)) and the two trees. h is the larger of the two, so one bound serves both. Any summation whose every
// term passes through at most h roundings is off by at most g(h) * sum |terms| (Higham, Accuracy and Stability,
// 4.2). Per channel, with M values, exact mean mu, S2 = sum (x - mu)^2, S1 = sum |x|:
//   mean:     |mu' - mu| <= e_mu = g(h + 1) S1 / M                       (the sum, then the division)
//   squares:  d = fl(x - mu') = (x - mu')(1 + d1), and sum (x - mu')^2 = S2 + M (mu - mu')^2 exactly (sum (x - mu) = 0),
//             so with the fma chain |S2' - S2| <= e_S2 = g(h + 2) (S2 + M e_mu^2) + M e_mu^2
//   v = S2 / M + eps:  |v' - v| <= e_v = e_S2 / M + g(2) (v + e_S2 / M)    (a division and an add)
//   invstd = 1 / sqrt(v):  relative error <= r_is = e_v / (2 (v - e_v)) + g(2) (the square root halves the relative
//             error of v to first order, written against v - e_v to stay an upper bound; sqrt and 1/. round once each)
//   y = fma(gamma, fl(fl(x - mu') * invstd'), beta): x_hat is off by
//             e_xh = is (1 + r_is)(1 + u) (e_mu + u (|x - mu| + e_mu)) + |x - mu| is (r_is + u + r_is u),
//             y by |gamma| e_xh + u (|gamma x_hat| + |beta| + |gamma| e_xh); the ReLU (max with 0) moves nothing further.
//   running statistics: three roundings (1 - momentum, both products, the add: 4u of the magnitudes) and the
//             batch statistic's error times momentum; the unbiased variance S2' / (M - 1) is off by
//             e_S2 / (M - 1) + u (S2 + e_S2) / (M - 1).
// The backward is checked against the float64 formulas evaluated from the saved fp32 statistics (its inputs, so the
// forward's error does not enter twice) and the fp32 ReLU mask (cc_bn_affine's expression, the forward's y > 0 by
// definition; a double mask could flip where y rounds to 0). x_hat' = fl(fl(x - mean) * invstd) is off by g(2)|x_hat|:
//   dbeta  = sum g:          e_db = g(h) sum |g|
//   dgamma = sum g x_hat':   e_dg = g(h + 3) sum |g x_hat|    (the fma chain, and the two roundings inside x_hat')
//   dx = fl(fl(gamma * invstd) / M) * fma(-x_hat', dgamma', fl(M g) - dbeta'): the bracket is off by
//             e_I = e_db + |x_hat| (1 + g(2)) e_dg + g(2) |x_hat| |dgamma| + 3u (M |g| + |dbeta| + e_db + |x_hat| (|dgamma| + e_dg)),
//             dx by |c| e_I (1 + g(3)) + g(3) |c I|, c = gamma * invstd / M.
// These are worst cases, far above the usual error (a wrong formula, index or mask is off by O(1) instead).
#include "abi_test.h"

#include "cheapconv/kernels.h" // CC_BN_CLUSTER_BLOCKS

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kU = 1.0 / 16777216.0; // 2^-24
constexpr unsigned kBlock = 256;        // the launcher's kReductionBlock, the block of every kernel here

double g(double k) { return k * kU / (1.0 - k * kU); }

struct Shape {
    int n, c, h, w;
    std::size_t count() const { return static_cast<std::size_t>(n) * c * h * w; }
    std::size_t hw() const { return static_cast<std::size_t>(h) * w; }
    std::size_t m() const { return static_cast<std::size_t>(n) * hw(); }
    std::size_t index(std::size_t s, std::size_t ch, std::size_t i) const { return (s * c + ch) * hw() + i; }
    std::string name() const
    {
        return std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
    }
};

// Additions a value passes through on its way into a channel's sum, in either path (see the header).
double depth(std::size_t m)
{
    const double cluster = std::ceil(static_cast<double>(m) / (CC_BN_CLUSTER_BLOCKS * kBlock)) + 5 + 5 + CC_BN_CLUSTER_BLOCKS;
    const double two_launch = std::ceil(static_cast<double>(m) / kBlock) + 5 + 5;
    return std::max(cluster, two_launch);
}

struct Inputs {
    std::vector<float> x, gamma, beta, running_mean, running_var, dy, before;
};

struct Forward {
    std::vector<float> y, save_mean, save_invstd, running_mean, running_var;
};

struct Backward {
    std::vector<float> dx, dgamma, dbeta;
};

using cc_abi_test::same_bits; // the vectors' (abi_support.cpp), beside the overloads below

bool same_bits(const Forward& a, const Forward& b)
{
    return same_bits(a.y, b.y) && same_bits(a.save_mean, b.save_mean) && same_bits(a.save_invstd, b.save_invstd) &&
           same_bits(a.running_mean, b.running_mean) && same_bits(a.running_var, b.running_var);
}

bool same_bits(const Backward& a, const Backward& b)
{
    return same_bits(a.dx, b.dx) && same_bits(a.dgamma, b.dgamma) && same_bits(a.dbeta, b.dbeta);
}

// Two results, each within `bound` of the reference, differ by at most twice it.
void expect_paths_agree(Tally& t, const std::vector<float>& a, const std::vector<float>& b, const std::vector<double>& bound,
                        const std::string& what)
{
    std::size_t bad = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        bad += !(std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])) <= 2 * bound[i]) ? 1 : 0;
    t.check(bad == 0, what + ": the one-launch and the two-launch path agree within twice the bound (" + std::to_string(bad) + " off)");
}

Inputs make_inputs(const Shape& sh, unsigned long long seed, float offset)
{
    Inputs in;
    in.x = random_values(sh.count(), seed, offset - 2.0f, offset + 3.0f);
    in.gamma = random_values(sh.c, seed + 1, -1.5f, 1.5f);
    in.beta = random_values(sh.c, seed + 2);
    in.running_mean = random_values(sh.c, seed + 3);
    in.running_var = random_values(sh.c, seed + 4, 0.5f, 2.0f);
    in.dy = random_values(sh.count(), seed + 5);
    in.before = random_values(sh.count(), seed + 6);
    return in;
}

Forward fresh_forward(const Shape& sh, const Inputs& in)
{
    return Forward{std::vector<float>(sh.count(), kNaN), std::vector<float>(sh.c, kNaN), std::vector<float>(sh.c, kNaN),
                   in.running_mean, in.running_var};
}

// The C ABI's training forward (the cluster kernel on the emulator).
Forward abi_forward(Tally& t, const Shape& sh, const cc_batchnorm_problem& p, const Inputs& in, const std::string& what)
{
    Forward f = fresh_forward(sh, in);
    expect_status(t,
                  cc_batchnorm_train_forward(emulator(), &p, in.x.data(), in.gamma.data(), in.beta.data(), f.running_mean.data(),
                                             f.running_var.data(), f.y.data(), f.save_mean.data(), f.save_invstd.data(), nullptr),
                  CC_SUCCESS, {}, what + ": cc_batchnorm_train_forward");
    return f;
}

// The cluster kernel launched directly, with the launcher's geometry.
Forward cluster_forward(Tally& t, const Shape& sh, const cc_batchnorm_problem& p, const Inputs& in, const std::string& what)
{
    Forward f = fresh_forward(sh, in);
    int n = sh.n, c = sh.c, hw = static_cast<int>(sh.hw()), relu = p.relu;
    float momentum = p.momentum, eps = p.eps;
    const float *x = in.x.data(), *gamma = in.gamma.data(), *beta = in.beta.data();
    float *rm = f.running_mean.data(), *rv = f.running_var.data(), *sm = f.save_mean.data(), *si = f.save_invstd.data(), *y = f.y.data();
    void* args[] = {&n, &c, &hw, &x, &gamma, &beta, &momentum, &eps, &rm, &rv, &sm, &si, &relu, &y};
    t.check(cc_selftest::launch("cc_batchnorm_train_forward_cluster_kernel", {static_cast<unsigned>(c) * CC_BN_CLUSTER_BLOCKS, 1, 1},
                                {kBlock, 1, 1}, 0, args) == 0,
            what + ": the cluster forward launched directly");
    return f;
}

// The two-launch path: train_stats, then apply.
Forward two_launch_forward(Tally& t, const Shape& sh, const cc_batchnorm_problem& p, const Inputs& in, const std::string& what)
{
    Forward f = fresh_forward(sh, in);
    int n = sh.n, c = sh.c, hw = static_cast<int>(sh.hw()), relu = p.relu;
    float momentum = p.momentum, eps = p.eps;
    const float *x = in.x.data(), *gamma = in.gamma.data(), *beta = in.beta.data();
    float *rm = f.running_mean.data(), *rv = f.running_var.data(), *sm = f.save_mean.data(), *si = f.save_invstd.data(), *y = f.y.data();
    void* stats[] = {&n, &c, &hw, &x, &momentum, &eps, &rm, &rv, &sm, &si};
    const float *mean = sm, *invstd = si;
    void* apply[] = {&n, &c, &hw, &x, &gamma, &beta, &mean, &invstd, &relu, &y};
    const unsigned blocks = static_cast<unsigned>((sh.count() + kBlock - 1) / kBlock);
    t.check(cc_selftest::launch("cc_batchnorm_train_stats_kernel", {static_cast<unsigned>(c), 1, 1}, {kBlock, 1, 1}, 0, stats) == 0 &&
                cc_selftest::launch("cc_batchnorm_apply_kernel", {blocks, 1, 1}, {kBlock, 1, 1}, 0, apply) == 0,
            what + ": the two-launch forward");
    return f;
}

Backward fresh_backward(const Shape& sh, const cc_batchnorm_problem& p, const Inputs& in)
{
    return Backward{p.accumulate ? in.before : std::vector<float>(sh.count(), kNaN), std::vector<float>(sh.c, kNaN),
                    std::vector<float>(sh.c, kNaN)};
}

Backward abi_backward(Tally& t, const Shape& sh, const cc_batchnorm_problem& p, const Inputs& in, const Forward& f, const std::string& what)
{
    Backward b = fresh_backward(sh, p, in);
    expect_status(t,
                  cc_batchnorm_backward(emulator(), &p, in.x.data(), in.dy.data(), in.gamma.data(), in.beta.data(), f.save_mean.data(),
                                        f.save_invstd.data(), b.dx.data(), b.dgamma.data(), b.dbeta.data(), nullptr),
                  CC_SUCCESS, {}, what + ": cc_batchnorm_backward");
    return b;
}

Backward cluster_backward(Tally& t, const Shape& sh, const cc_batchnorm_problem& p, const Inputs& in, const Forward& f,
                          const std::string& what)
{
    Backward b = fresh_backward(sh, p, in);
    int n = sh.n, c = sh.c, hw = static_cast<int>(sh.hw()), relu = p.relu, accumulate = p.accumulate;
    const float *x = in.x.data(), *dy = in.dy.data(), *gamma = in.gamma.data(), *beta = in.beta.data(), *mean = f.save_mean.data(),
                *invstd = f.save_invstd.data();
    float *dgamma = b.dgamma.data(), *dbeta = b.dbeta.data(), *dx = b.dx.data();
    void* args[] = {&n, &c, &hw, &x, &dy, &gamma, &beta, &mean, &invstd, &relu, &accumulate, &dgamma, &dbeta, &dx};
    t.check(cc_selftest::launch("cc_batchnorm_backward_cluster_kernel", {static_cast<unsigned>(c) * CC_BN_CLUSTER_BLOCKS, 1, 1},
                                {kBlock, 1, 1}, 0, args) == 0,
            what + ": the cluster backward launched directly");
    return b;
}

Backward two_launch_backward(Tally& t, const Shape& sh, const cc_batchnorm_problem& p, const Inputs& in, const Forward& f,
                             const std::string& what)
{
    Backward b = fresh_backward(sh, p, in);
    int n = sh.n, c = sh.c, hw = static_cast<int>(sh.hw()), relu = p.relu, accumulate = p.accumulate;
    const float *x = in.x.data(), *dy = in.dy.data(), *gamma = in.gamma.data(), *beta = in.beta.data(), *mean = f.save_mean.data(),
                *invstd = f.save_invstd.data();
    float *dgamma = b.dgamma.data(), *dbeta = b.dbeta.data(), *dx = b.dx.data();
    void* reduce[] = {&n, &c, &hw, &x, &dy, &gamma, &beta, &mean, &invstd, &relu, &dgamma, &dbeta};
    const float *dgamma_in = dgamma, *dbeta_in = dbeta;
    void* data[] = {&n, &c, &hw, &x, &dy, &gamma, &beta, &mean, &invstd, &dgamma_in, &dbeta_in, &relu, &accumulate, &dx};
    const unsigned blocks = static_cast<unsigned>((sh.count() + kBlock - 1) / kBlock);
    t.check(cc_selftest::launch("cc_batchnorm_backward_reduce_kernel", {static_cast<unsigned>(c), 1, 1}, {kBlock, 1, 1}, 0, reduce) == 0 &&
                cc_selftest::launch("cc_batchnorm_backward_data_kernel", {blocks, 1, 1}, {kBlock, 1, 1}, 0, data) == 0,
            what + ": the two-launch backward");
    return b;
}

// The float64 forward reference and its bounds (see the header).
struct ForwardReference {
    std::vector<double> y, mean, invstd, running_mean, running_var;
    std::vector<double> y_bound, mean_bound, invstd_bound, running_mean_bound, running_var_bound;
};

ForwardReference forward_reference(const Shape& sh, const cc_batchnorm_problem& p, const Inputs& in)
{
    ForwardReference r;
    const std::size_t c = static_cast<std::size_t>(sh.c);
    r.y.resize(sh.count());
    r.y_bound.resize(sh.count());
    for (auto* v : {&r.mean, &r.invstd, &r.running_mean, &r.running_var, &r.mean_bound, &r.invstd_bound, &r.running_mean_bound,
                    &r.running_var_bound})
        v->resize(c);
    const double m = static_cast<double>(sh.m()), h = depth(sh.m()), mo = p.momentum, eps = p.eps;
    for (std::size_t ch = 0; ch < c; ++ch) {
        double sum = 0, s1 = 0, s2 = 0;
        for (std::size_t s = 0; s < static_cast<std::size_t>(sh.n); ++s)
            for (std::size_t i = 0; i < sh.hw(); ++i) {
                sum += in.x[sh.index(s, ch, i)];
                s1 += std::fabs(in.x[sh.index(s, ch, i)]);
            }
        const double mu = sum / m;
        for (std::size_t s = 0; s < static_cast<std::size_t>(sh.n); ++s)
            for (std::size_t i = 0; i < sh.hw(); ++i) s2 += (in.x[sh.index(s, ch, i)] - mu) * (in.x[sh.index(s, ch, i)] - mu);
        const double v = s2 / m + eps, is = 1 / std::sqrt(v);
        const double e_mu = g(h + 1) * s1 / m;
        const double e_s2 = g(h + 2) * (s2 + m * e_mu * e_mu) + m * e_mu * e_mu;
        const double e_v = e_s2 / m + g(2) * (v + e_s2 / m);
        const double r_is = e_v / (2 * (v - e_v)) + g(2);
        r.mean[ch] = mu;
        r.invstd[ch] = is;
        r.mean_bound[ch] = e_mu;
        r.invstd_bound[ch] = r_is * is;
        const double unbiased = s2 / (m - 1), e_unbiased = e_s2 / (m - 1) + kU * (s2 + e_s2) / (m - 1);
        r.running_mean[ch] = (1 - mo) * in.running_mean[ch] + mo * mu;
        r.running_var[ch] = (1 - mo) * in.running_var[ch] + mo * unbiased;
        r.running_mean_bound[ch] = mo * e_mu + 4 * kU * ((1 - mo) * std::fabs(in.running_mean[ch]) + mo * (std::fabs(mu) + e_mu));
        r.running_var_bound[ch] = mo * e_unbiased + 4 * kU * ((1 - mo) * std::fabs(in.running_var[ch]) + mo * (unbiased + e_unbiased));
        const double ga = in.gamma[ch], be = in.beta[ch];
        for (std::size_t s = 0; s < static_cast<std::size_t>(sh.n); ++s)
            for (std::size_t i = 0; i < sh.hw(); ++i) {
                const std::size_t j = sh.index(s, ch, i);
                const double dev = std::fabs(in.x[j] - mu), xhat = (in.x[j] - mu) * is, y = ga * xhat + be;
                const double e_xh = is * (1 + r_is) * (1 + kU) * (e_mu + kU * (dev + e_mu)) + dev * is * (r_is + kU + r_is * kU);
                r.y[j] = p.relu && !(y > 0) ? 0.0 : y;
                r.y_bound[j] = std::fabs(ga) * e_xh + kU * (std::fabs(ga * xhat) + std::fabs(be) + std::fabs(ga) * e_xh);
            }
    }
    return r;
}

// The float64 backward from the saved fp32 statistics `f` and its bounds (see the header).
struct BackwardReference {
    std::vector<double> dx, dgamma, dbeta, dx_bound, dgamma_bound, dbeta_bound;
};

BackwardReference backward_reference(const Shape& sh, const cc_batchnorm_problem& p, const Inputs& in, const Forward& f)
{
    BackwardReference r;
    const std::size_t c = static_cast<std::size_t>(sh.c);
    r.dx.resize(sh.count());
    r.dx_bound.resize(sh.count());
    for (auto* v : {&r.dgamma, &r.dbeta, &r.dgamma_bound, &r.dbeta_bound}) v->resize(c);
    const double m = static_cast<double>(sh.m()), h = depth(sh.m());
    std::vector<double> gs(sh.count());
    for (std::size_t ch = 0; ch < c; ++ch) {
        const float mean = f.save_mean[ch], invstd = f.save_invstd[ch], ga = in.gamma[ch], be = in.beta[ch];
        double sum_g = 0, sum_gx = 0, abs_g = 0, abs_gx = 0;
        for (std::size_t s = 0; s < static_cast<std::size_t>(sh.n); ++s)
            for (std::size_t i = 0; i < sh.hw(); ++i) {
                const std::size_t j = sh.index(s, ch, i);
                // The kernel's mask: cc_bn_affine in fp32 (one rounding of the fma, as std::fma).
                const bool masked = p.relu && !(std::fma(ga, (in.x[j] - mean) * invstd, be) > 0.0f);
                const double gj = masked ? 0.0 : in.dy[j], xhat = (static_cast<double>(in.x[j]) - mean) * invstd;
                gs[j] = gj;
                sum_g += gj;
                sum_gx += gj * xhat;
                abs_g += std::fabs(gj);
                abs_gx += std::fabs(gj * xhat);
            }
        const double e_db = g(h) * abs_g, e_dg = g(h + 3) * abs_gx, coef = static_cast<double>(ga) * invstd / m;
        r.dbeta[ch] = sum_g;
        r.dgamma[ch] = sum_gx;
        r.dbeta_bound[ch] = e_db;
        r.dgamma_bound[ch] = e_dg;
        for (std::size_t s = 0; s < static_cast<std::size_t>(sh.n); ++s)
            for (std::size_t i = 0; i < sh.hw(); ++i) {
                const std::size_t j = sh.index(s, ch, i);
                const double xhat = (static_cast<double>(in.x[j]) - mean) * invstd, ax = std::fabs(xhat);
                const double bracket = m * gs[j] - sum_g - xhat * sum_gx;
                const double e_i = e_db + ax * (1 + g(2)) * e_dg + g(2) * ax * std::fabs(sum_gx) +
                                   3 * kU * (m * std::fabs(gs[j]) + std::fabs(sum_g) + e_db + ax * (std::fabs(sum_gx) + e_dg));
                r.dx[j] = coef * bracket;
                r.dx_bound[j] = std::fabs(coef) * e_i * (1 + g(3)) + g(3) * std::fabs(coef * bracket);
            }
    }
    return r;
}

// lite: one cluster launch per pass (TSan, where each costs seconds): no repeats, no in-place or accumulating run.
void check_shape(Tally& t, const Shape& sh, int relu, float offset, unsigned long long seed, bool lite = false)
{
    const std::string name = "cluster batch norm" + std::string(relu ? " + ReLU " : " ") + sh.name() +
                             (offset != 0.0f ? " (mean " + std::to_string(static_cast<int>(offset)) + ")" : "");
    cc_batchnorm_problem p{sh.n, sh.c, sh.h, sh.w, 1e-3f, 0.25f, relu, 0};
    const Inputs in = make_inputs(sh, seed, offset);

    // Forward: the ABI (the cluster kernel), again for determinism, directly, and the two-launch oracle.
    const Forward abi = abi_forward(t, sh, p, in, name);
    const Forward two = two_launch_forward(t, sh, p, in, name);
    if (!lite) {
        const Forward again = abi_forward(t, sh, p, in, name);
        const Forward direct = cluster_forward(t, sh, p, in, name);
        t.check(same_bits(abi, again) && same_bits(abi, direct),
                name + ": forward, the same bits on every run and as the cluster kernel launched directly");
    }
    const ForwardReference fr = forward_reference(sh, p, in);
    for (const auto& [path, f] : {std::pair<const char*, const Forward*>{"one launch", &abi}, {"two launches", &two}}) {
        const std::string what = name + " (" + path + ")";
        expect_within(t, f->y, fr.y, fr.y_bound, what + ": y");
        expect_within(t, f->save_mean, fr.mean, fr.mean_bound, what + ": save_mean");
        expect_within(t, f->save_invstd, fr.invstd, fr.invstd_bound, what + ": save_invstd");
        expect_within(t, f->running_mean, fr.running_mean, fr.running_mean_bound, what + ": running_mean");
        expect_within(t, f->running_var, fr.running_var, fr.running_var_bound, what + ": running_var");
    }
    expect_paths_agree(t, abi.y, two.y, fr.y_bound, name + ": y");
    expect_paths_agree(t, abi.save_invstd, two.save_invstd, fr.invstd_bound, name + ": save_invstd");

    // In place (y is x): the same bits.
    if (!lite) {
        Forward inplace = fresh_forward(sh, in);
        std::vector<float> xy = in.x;
        expect_status(t,
                      cc_batchnorm_train_forward(emulator(), &p, xy.data(), in.gamma.data(), in.beta.data(), inplace.running_mean.data(),
                                                 inplace.running_var.data(), xy.data(), inplace.save_mean.data(),
                                                 inplace.save_invstd.data(), nullptr),
                      CC_SUCCESS, {}, name + ": forward in place");
        inplace.y = xy;
        t.check(same_bits(inplace, abi), name + ": forward in place (y is x), the same bits");
    }

    // Backward, from the one-launch forward's statistics, dx overwritten and then accumulated.
    const BackwardReference br = backward_reference(sh, p, in, abi);
    Backward overwritten;
    for (int accumulate = 0; accumulate < (lite ? 1 : 2); ++accumulate) {
        p.accumulate = accumulate;
        const std::string what = name + (accumulate ? ", dx accumulated" : "");
        const Backward b = abi_backward(t, sh, p, in, abi, what);
        const Backward b_two = two_launch_backward(t, sh, p, in, abi, what);
        if (!lite) {
            const Backward b_again = abi_backward(t, sh, p, in, abi, what);
            const Backward b_direct = cluster_backward(t, sh, p, in, abi, what);
            t.check(same_bits(b, b_again) && same_bits(b, b_direct),
                    what + ": backward, the same bits on every run and as the cluster kernel launched directly");
        }
        for (const auto& [path, r] : {std::pair<const char*, const Backward*>{"one launch", &b}, {"two launches", &b_two}}) {
            const std::string w = what + " (" + path + ")";
            expect_within(t, r->dbeta, br.dbeta, br.dbeta_bound, w + ": dbeta");
            expect_within(t, r->dgamma, br.dgamma, br.dgamma_bound, w + ": dgamma");
            if (!accumulate) expect_within(t, r->dx, br.dx, br.dx_bound, w + ": dx");
        }
        if (!accumulate) {
            expect_paths_agree(t, b.dx, b_two.dx, br.dx_bound, what + ": dx");
            overwritten = b;
            continue;
        }
        // Accumulating: the old dx plus the overwriting call's gradient, one rounded add; dgamma and dbeta unchanged.
        std::size_t bad = 0;
        for (std::size_t i = 0; i < b.dx.size(); ++i) {
            const float want = in.before[i] + overwritten.dx[i];
            bad += std::memcmp(&want, &b.dx[i], sizeof want) != 0 ? 1 : 0;
        }
        t.check(bad == 0 && same_bits(b.dgamma, overwritten.dgamma) && same_bits(b.dbeta, overwritten.dbeta),
                what + ": dx is bitwise the old dx plus the overwriting call's, dgamma and dbeta the same bits (" +
                    std::to_string(bad) + " differ)");
    }
}

} // namespace

void run_batchnorm_cluster_tests(Tally& t)
{
    // The catalogue's activations at batch 2 (C x P x Q of the WRN-40-2 / Moonshine convolutions' outputs), then odd
    // shapes: the fewest values training accepts (N*H*W = 2), C = 1, channels fewer than or not a multiple of the
    // cluster's blocks, per-channel counts below one block, between a block and a cluster, and above a cluster's
    // 2048 threads (several values per thread), H != W.
    const Shape catalogue[] = {{2, 16, 32, 32}, {2, 32, 32, 32}, {2, 32, 16, 16}, {2, 64, 16, 16},
                               {2, 128, 16, 16}, {2, 64, 8, 8},  {2, 128, 8, 8}};
    const Shape odd[] = {{1, 1, 1, 2}, {2, 5, 1, 1}, {1, 3, 5, 7}, {3, 33, 17, 19}, {1, 7, 1, 300}, {2, 130, 3, 3}, {16, 3, 32, 33}};
    unsigned long long seed = 400;
    // The ABI tests turn the cluster kernels off under TSan until this family (abi_support.cpp); on for the rest of the run.
    cc_emu_set_cluster_kernels(1);
    if (kUnderTsan) {
        // Every access and synchronisation is tracked, and a cluster is 2048 fibers: one channel, one launch per pass,
        // covers the cluster's synchronisation (barriers, distributed shared memory) under TSan.
        check_shape(t, Shape{1, 1, 1, 2}, 1, 0.0f, seed += 10, /*lite=*/true);
        return;
    }
#if defined(__SANITIZE_ADDRESS__)
    // ASan: the odd shapes but the largest (the catalogue's run in the plain build); the whole logic, at a sanitizer's cost.
    for (const Shape& sh : odd)
        if (sh.count() < 40000)
            for (int relu = 0; relu < 2; ++relu) check_shape(t, sh, relu, 0.0f, seed += 10);
    return;
#endif
    for (const Shape& sh : catalogue) check_shape(t, sh, 1, 0.0f, seed += 10);
    for (const Shape& sh : odd)
        for (int relu = 0; relu < 2; ++relu) check_shape(t, sh, relu, 0.0f, seed += 10);
    check_shape(t, Shape{2, 64, 8, 8}, 0, 0.0f, seed += 10);
    // Values 1000 +- 2.5: a one-pass E[x^2] - E[x]^2 would lose the variance; the two-pass statistics keep it.
    check_shape(t, Shape{3, 5, 17, 19}, 0, 1000.0f, seed += 10);

    // Determinism across the emulator's scheduling: one worker thread gives the bits of several.
    const Shape sh{2, 33, 9, 7};
    const cc_batchnorm_problem p{sh.n, sh.c, sh.h, sh.w, 1e-5f, 0.1f, 1, 0};
    const Inputs in = make_inputs(sh, 777, 0.0f);
    const Forward many = abi_forward(t, sh, p, in, "cluster batch norm, several workers");
    const Backward many_b = abi_backward(t, sh, p, in, many, "cluster batch norm, several workers");
    cc_emu_set_worker_threads(1);
    const Forward one = abi_forward(t, sh, p, in, "cluster batch norm, one worker");
    const Backward one_b = abi_backward(t, sh, p, in, one, "cluster batch norm, one worker");
    cc_emu_set_worker_threads(0);
    t.check(same_bits(many, one) && same_bits(many_b, one_b), "cluster batch norm: the same bits with one worker thread as with several");
}

} // namespace cc_abi_test
