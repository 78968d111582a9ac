// Batch normalisation of the C ABI on the emulator: refusals, and training forward (with and without the
// fused ReLU), evaluation forward and backward against PyTorch's formulas evaluated in double.
#include "abi_test.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
// sqrt, a division and the sums of n*h*w values: a few ulps relative, far below what a wrong formula gives.
constexpr double kRel = 1e-5, kAbs = 1e-5;

struct Shape {
    int n, c, h, w;
    std::size_t count() const { return static_cast<std::size_t>(n) * c * h * w; }
    std::size_t hw() const { return static_cast<std::size_t>(h) * w; }
    std::size_t index(std::size_t s, std::size_t ch, std::size_t i) const { return (s * c + ch) * hw() + i; }
};

void test_refusals(Tally& t)
{
    const cc_status bad = CC_ERROR_INVALID_VALUE;
    cc_batchnorm_problem p{2, 3, 4, 4, 1e-5f, 0.1f, 0, 0};
    p.eps = -1.0f;
    expect_status(t, cc_batchnorm_validate(&p), bad, {"eps must be finite and non-negative, got -1"}, "negative eps");
    p.eps = std::numeric_limits<float>::quiet_NaN();
    expect_status(t, cc_batchnorm_validate(&p), bad, {"eps must be finite"}, "NaN eps");
    p.eps = 1e-5f;
    p.momentum = 2.0f;
    expect_status(t, cc_batchnorm_validate(&p), bad, {"momentum must be in [0, 1], got 2"}, "momentum 2");
    p.momentum = 0.1f;
    p.c = 0;
    expect_status(t, cc_batchnorm_validate(&p), bad, {"c must be positive, got 0"}, "c = 0");

    cc_batchnorm_problem single{1, 2, 1, 1, 1e-5f, 0.1f, 0, 0};
    std::vector<float> v(2), s(2);
    expect_status(t,
                  cc_batchnorm_train_forward(emulator(), &single, v.data(), v.data(), v.data(), s.data(), s.data(), v.data(), s.data(),
                                             s.data(), nullptr),
                  bad, {"more than one value per channel", "n*h*w = 1"}, "training on one value per channel");
    cc_batchnorm_problem relu{2, 2, 2, 2, 1e-5f, 0.1f, 1, 0};
    std::vector<float> x(16), g(2), dgamma(2), dbeta(2), dx(16);
    expect_status(t,
                  cc_batchnorm_backward(emulator(), &relu, x.data(), x.data(), g.data(), nullptr, g.data(), g.data(), dx.data(),
                                        dgamma.data(), dbeta.data(), nullptr),
                  bad, {"beta is NULL, but relu is set"}, "backward with the ReLU and no beta");
}

void test_training(Tally& t, int relu)
{
    const Shape sh{3, 4, 5, 3};
    const cc_batchnorm_problem p{sh.n, sh.c, sh.h, sh.w, 1e-3f, 0.25f, relu, 0};
    const std::string name = relu ? "batch norm + ReLU" : "batch norm";
    const std::vector<float> x = random_values(sh.count(), 21, -2.0f, 3.0f), gamma = random_values(sh.c, 22, 0.5f, 1.5f),
                             beta = random_values(sh.c, 23), dy = random_values(sh.count(), 24);
    std::vector<float> running_mean = random_values(sh.c, 25), running_var = random_values(sh.c, 26, 0.5f, 2.0f);
    const std::vector<float> old_mean = running_mean, old_var = running_var;
    std::vector<float> y(sh.count(), kNaN), save_mean(sh.c, kNaN), save_invstd(sh.c, kNaN), dx(sh.count(), kNaN), dgamma(sh.c, kNaN),
        dbeta(sh.c, kNaN);
    expect_status(t,
                  cc_batchnorm_train_forward(emulator(), &p, x.data(), gamma.data(), beta.data(), running_mean.data(), running_var.data(),
                                             y.data(), save_mean.data(), save_invstd.data(), nullptr),
                  CC_SUCCESS, {}, name + " training forward");
    expect_status(t,
                  cc_batchnorm_backward(emulator(), &p, x.data(), dy.data(), gamma.data(), relu ? beta.data() : nullptr, save_mean.data(),
                                        save_invstd.data(), dx.data(), dgamma.data(), dbeta.data(), nullptr),
                  CC_SUCCESS, {}, name + " backward");

    const double m = static_cast<double>(sh.n) * sh.hw();
    std::vector<double> mean(sh.c), invstd(sh.c), rmean(sh.c), rvar(sh.c), ry(sh.count()), rdx(sh.count()), rdgamma(sh.c), rdbeta(sh.c);
    for (std::size_t ch = 0; ch < static_cast<std::size_t>(sh.c); ++ch) {
        double sum = 0, squares = 0;
        for (std::size_t s = 0; s < static_cast<std::size_t>(sh.n); ++s)
            for (std::size_t i = 0; i < sh.hw(); ++i) sum += x[sh.index(s, ch, i)];
        mean[ch] = sum / m;
        for (std::size_t s = 0; s < static_cast<std::size_t>(sh.n); ++s)
            for (std::size_t i = 0; i < sh.hw(); ++i) squares += std::pow(x[sh.index(s, ch, i)] - mean[ch], 2);
        invstd[ch] = 1.0 / std::sqrt(squares / m + p.eps);
        rmean[ch] = (1 - p.momentum) * old_mean[ch] + p.momentum * mean[ch];
        rvar[ch] = (1 - p.momentum) * old_var[ch] + p.momentum * squares / (m - 1);
        double sum_g = 0, sum_g_xhat = 0;
        for (std::size_t s = 0; s < static_cast<std::size_t>(sh.n); ++s)
            for (std::size_t i = 0; i < sh.hw(); ++i) {
                const std::size_t j = sh.index(s, ch, i);
                const double xhat = (x[j] - mean[ch]) * invstd[ch], v = gamma[ch] * xhat + beta[ch];
                ry[j] = relu && v <= 0 ? 0.0 : v;
                const double g = relu && v <= 0 ? 0.0 : dy[j];
                sum_g += g;
                sum_g_xhat += g * xhat;
            }
        rdbeta[ch] = sum_g;
        rdgamma[ch] = sum_g_xhat;
        for (std::size_t s = 0; s < static_cast<std::size_t>(sh.n); ++s)
            for (std::size_t i = 0; i < sh.hw(); ++i) {
                const std::size_t j = sh.index(s, ch, i);
                const double xhat = (x[j] - mean[ch]) * invstd[ch], v = gamma[ch] * xhat + beta[ch];
                const double g = relu && v <= 0 ? 0.0 : dy[j];
                rdx[j] = gamma[ch] * invstd[ch] / m * (m * g - sum_g - xhat * sum_g_xhat);
            }
    }
    expect_close(t, save_mean.data(), mean.data(), mean.size(), kRel, kAbs, name + ": save_mean");
    expect_close(t, save_invstd.data(), invstd.data(), invstd.size(), kRel, kAbs, name + ": save_invstd");
    expect_close(t, running_mean.data(), rmean.data(), rmean.size(), kRel, kAbs, name + ": running_mean");
    expect_close(t, running_var.data(), rvar.data(), rvar.size(), kRel, kAbs, name + ": running_var (unbiased)");
    expect_close(t, y.data(), ry.data(), ry.size(), kRel, kAbs, name + ": y");
    expect_close(t, dbeta.data(), rdbeta.data(), rdbeta.size(), kRel, kAbs, name + ": dbeta");
    expect_close(t, dgamma.data(), rdgamma.data(), rdgamma.size(), kRel, kAbs, name + ": dgamma");
    expect_close(t, dx.data(), rdx.data(), rdx.size(), kRel, kAbs, name + ": dx");
}

void test_eval(Tally& t)
{
    const Shape sh{2, 3, 4, 2};
    const cc_batchnorm_problem p{sh.n, sh.c, sh.h, sh.w, 1e-5f, 0.1f, 1, 0};
    const std::vector<float> gamma = random_values(sh.c, 31), beta = random_values(sh.c, 32), mean = random_values(sh.c, 33),
                             var = random_values(sh.c, 34, 0.1f, 2.0f);
    std::vector<float> x = random_values(sh.count(), 35);
    std::vector<double> ry(sh.count());
    for (std::size_t j = 0; j < sh.count(); ++j) {
        const std::size_t ch = j / sh.hw() % sh.c;
        const double v = gamma[ch] * (x[j] - mean[ch]) / std::sqrt(var[ch] + 1e-5) + beta[ch];
        ry[j] = v > 0 ? v : 0.0;
    }
    // In place: y is x.
    expect_status(t, cc_batchnorm_eval_forward(emulator(), &p, x.data(), gamma.data(), beta.data(), mean.data(), var.data(), x.data(), nullptr),
                  CC_SUCCESS, {}, "batch norm + ReLU eval forward, in place");
    expect_close(t, x.data(), ry.data(), ry.size(), kRel, kAbs, "batch norm + ReLU eval forward: y");
}

// problem.accumulate: dx = dx + g, where g is the gradient the overwriting call writes (checked above against double).
// The bits must equal that call's dx added to the old dx afterwards (as cc_axpy with alpha 1 does: one rounding), and
// dgamma, dbeta must be the overwriting call's.
void test_accumulate(Tally& t, int relu)
{
    const Shape sh{2, 3, 7, 5};
    cc_batchnorm_problem p{sh.n, sh.c, sh.h, sh.w, 1e-3f, 0.25f, relu, 0};
    const std::string name = std::string(relu ? "batch norm + ReLU" : "batch norm") + " backward accumulating into dx";
    const std::vector<float> x = random_values(sh.count(), 31, -2.0f, 3.0f), gamma = random_values(sh.c, 32, 0.5f, 1.5f),
                             beta = random_values(sh.c, 33), dy = random_values(sh.count(), 34), before = random_values(sh.count(), 35);
    std::vector<float> running_mean(sh.c, 0.0f), running_var(sh.c, 1.0f), y(sh.count()), save_mean(sh.c), save_invstd(sh.c);
    cc_batchnorm_train_forward(emulator(), &p, x.data(), gamma.data(), beta.data(), running_mean.data(), running_var.data(), y.data(),
                               save_mean.data(), save_invstd.data(), nullptr);
    std::vector<float> g(sh.count(), kNaN), dgamma(sh.c, kNaN), dbeta(sh.c, kNaN);
    expect_status(t,
                  cc_batchnorm_backward(emulator(), &p, x.data(), dy.data(), gamma.data(), beta.data(), save_mean.data(), save_invstd.data(),
                                        g.data(), dgamma.data(), dbeta.data(), nullptr),
                  CC_SUCCESS, {}, name + ": the overwriting call");
    p.accumulate = 1;
    std::vector<float> dx = before, dgamma2(sh.c, kNaN), dbeta2(sh.c, kNaN);
    expect_status(t,
                  cc_batchnorm_backward(emulator(), &p, x.data(), dy.data(), gamma.data(), beta.data(), save_mean.data(), save_invstd.data(),
                                        dx.data(), dgamma2.data(), dbeta2.data(), nullptr),
                  CC_SUCCESS, {}, name);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < dx.size(); ++i) {
        const float want = before[i] + g[i];
        bad += std::memcmp(&want, &dx[i], sizeof want) != 0 ? 1 : 0;
    }
    t.check(bad == 0, name + ": dx is bitwise the old dx plus the overwriting call's gradient (" + std::to_string(bad) + " differ)");
    t.check(std::memcmp(dgamma.data(), dgamma2.data(), sh.c * sizeof(float)) == 0 &&
                std::memcmp(dbeta.data(), dbeta2.data(), sh.c * sizeof(float)) == 0,
            name + ": dgamma and dbeta are overwritten, the same bits");
}

} // namespace

void run_batchnorm_tests(Tally& t)
{
    test_refusals(t);
    test_training(t, 0);
    test_training(t, 1);
    test_accumulate(t, 0);
    test_accumulate(t, 1);
    test_eval(t);
}

} // namespace cc_abi_test
