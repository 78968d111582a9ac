// The losses and the SGD step of the C ABI on the emulator: refusals, workspaces, count-correct
// overwriting its output, and every loss's forward and backward against double-precision formulas
// (attention transfer's backward against central differences of its forward).
#include "abi_test.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
// exp, log, divisions and sums of tens of terms in fp32: a few ulps, far below a wrong formula's error.
constexpr double kRel = 1e-5, kAbs = 1e-6;

void test_refusals(Tally& t)
{
    const cc_status bad = CC_ERROR_INVALID_VALUE;
    cc_loss_problem p{0, 10, 1.0f, 0, 0, 0};
    expect_status(t, cc_loss_validate(&p), bad, {"cc_loss_validate: n must be positive, got 0"}, "n = 0");
    p = {4, 10, -1.0f, 0, 0, 0};
    expect_status(t, cc_loss_validate(&p), bad, {"temperature must be finite and non-negative"}, "negative temperature");
    p = {4, 0, 1.0f, 2, 2, 2};
    std::vector<float> v(64), loss(1), ws(4);
    std::vector<int32_t> labels(4);
    expect_status(t, cc_cross_entropy_forward(emulator(), &p, v.data(), labels.data(), loss.data(), v.data() + 32, ws.data(), 16, nullptr),
                  bad, {"cc_cross_entropy_forward: classes must be positive, got 0"}, "cross-entropy without classes");
    p = {4, 3, 0.0f, 0, 0, 0};
    expect_status(t, cc_kd_backward(emulator(), &p, v.data(), v.data() + 12, v.data() + 24, v.data() + 32, nullptr), bad,
                  {"KD temperature must be positive"}, "KD at temperature 0");
    p = {4, 3, 1.0f, 0, 2, 2};
    expect_status(t, cc_at_backward(emulator(), &p, v.data(), v.data(), v.data(), v.data(), v.data(), v.data() + 40, nullptr), bad,
                  {"cc_at_backward: c must be positive, got 0"}, "AT without channels");
    p = {4, 3, 1.0f, 0, 0, 0};
    size_t bytes = 0;
    cc_loss_workspace_size(&p, &bytes);
    t.check(bytes == 4 * sizeof(float), "a loss over 4 samples needs 4 partial sums");
    expect_status(t, cc_cross_entropy_forward(emulator(), &p, v.data(), labels.data(), loss.data(), v.data() + 32, ws.data(), 12, nullptr),
                  CC_ERROR_WORKSPACE, {"workspace of 12 bytes given, 16 needed; ask cc_loss_workspace_size"}, "a short loss workspace");
}

// Row-wise softmax of x / temperature, in double.
std::vector<double> softmax(const std::vector<float>& x, std::size_t n, std::size_t classes, double temperature)
{
    std::vector<double> p(n * classes);
    for (std::size_t i = 0; i < n; ++i) {
        double max = -INFINITY, sum = 0;
        for (std::size_t j = 0; j < classes; ++j) max = std::max(max, x[i * classes + j] / temperature);
        for (std::size_t j = 0; j < classes; ++j) sum += p[i * classes + j] = std::exp(x[i * classes + j] / temperature - max);
        for (std::size_t j = 0; j < classes; ++j) p[i * classes + j] /= sum;
    }
    return p;
}

void test_cross_entropy_and_kd(Tally& t)
{
    const std::size_t n = 13, classes = 37; // more classes than a warp has lanes
    const float temperature = 4.0f, dloss = 0.7f;
    const std::vector<float> logits = random_values(n * classes, 61, -4.0f, 4.0f), teacher = random_values(n * classes, 62, -4.0f, 4.0f);
    std::vector<int32_t> labels(n);
    for (std::size_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>((i * 7) % classes);
    const cc_loss_problem p{static_cast<int>(n), static_cast<int>(classes), temperature, 0, 0, 0};
    std::vector<float> workspace(n, kNaN), loss(1, kNaN), kd_loss(1, kNaN), probabilities(n * classes, kNaN), ss(n * classes, kNaN),
        ts(n * classes, kNaN), dlogits(n * classes, kNaN), dstudent(n * classes, kNaN);
    const std::vector<float> dloss_buffer(1, dloss);
    const size_t bytes = n * sizeof(float);
    expect_status(t, cc_cross_entropy_forward(emulator(), &p, logits.data(), labels.data(), loss.data(), probabilities.data(),
                                              workspace.data(), bytes, nullptr),
                  CC_SUCCESS, {}, "cross-entropy forward");
    expect_status(t, cc_cross_entropy_backward(emulator(), &p, probabilities.data(), labels.data(), dloss_buffer.data(), dlogits.data(), nullptr),
                  CC_SUCCESS, {}, "cross-entropy backward");
    expect_status(t, cc_kd_forward(emulator(), &p, logits.data(), teacher.data(), kd_loss.data(), ss.data(), ts.data(), workspace.data(),
                                   bytes, nullptr),
                  CC_SUCCESS, {}, "KD forward");
    expect_status(t, cc_kd_backward(emulator(), &p, ss.data(), ts.data(), dloss_buffer.data(), dstudent.data(), nullptr), CC_SUCCESS, {},
                  "KD backward");

    const std::vector<double> rp = softmax(logits, n, classes, 1.0), rps = softmax(logits, n, classes, temperature),
                              rpt = softmax(teacher, n, classes, temperature);
    double rloss = 0, rkd = 0;
    std::vector<double> rdlogits(n * classes), rdstudent(n * classes);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < classes; ++j) {
            const std::size_t k = i * classes + j;
            if (static_cast<int32_t>(j) == labels[i]) rloss -= std::log(rp[k]) / n;
            rkd += static_cast<double>(temperature) * temperature / n * rpt[k] * (std::log(rpt[k]) - std::log(rps[k]));
            rdlogits[k] = (rp[k] - (static_cast<int32_t>(j) == labels[i] ? 1.0 : 0.0)) * dloss / n;
            rdstudent[k] = static_cast<double>(temperature) / n * (rps[k] - rpt[k]) * dloss;
        }
    expect_close(t, loss.data(), &rloss, 1, kRel, kAbs, "cross-entropy loss");
    expect_close(t, probabilities.data(), rp.data(), rp.size(), kRel, kAbs, "cross-entropy probabilities");
    expect_close(t, dlogits.data(), rdlogits.data(), rdlogits.size(), kRel, kAbs, "cross-entropy dlogits");
    expect_close(t, kd_loss.data(), &rkd, 1, kRel, kAbs, "KD loss (T^2/n sum KL)");
    expect_close(t, ss.data(), rps.data(), rps.size(), kRel, kAbs, "KD student softmax");
    expect_close(t, ts.data(), rpt.data(), rpt.size(), kRel, kAbs, "KD teacher softmax");
    expect_close(t, dstudent.data(), rdstudent.data(), rdstudent.size(), kRel, kAbs, "KD dstudent");
}

// Attention transfer's loss in double, for the reference and for the finite differences.
double at_loss(const std::vector<double>& s, const std::vector<float>& teacher, std::size_t n, std::size_t c, std::size_t hw,
               std::vector<double>* qs_out = nullptr, std::vector<double>* qt_out = nullptr, std::vector<double>* norm_out = nullptr)
{
    double loss = 0;
    for (std::size_t i = 0; i < n; ++i) {
        std::vector<double> qs(hw), qt(hw);
        double ns = 0, nt = 0;
        for (std::size_t k = 0; k < hw; ++k) {
            for (std::size_t ch = 0; ch < c; ++ch) {
                qs[k] += s[(i * c + ch) * hw + k] * s[(i * c + ch) * hw + k] / c;
                qt[k] += static_cast<double>(teacher[(i * c + ch) * hw + k]) * teacher[(i * c + ch) * hw + k] / c;
            }
            ns += qs[k] * qs[k];
            nt += qt[k] * qt[k];
        }
        ns = std::sqrt(ns);
        nt = std::sqrt(nt);
        for (std::size_t k = 0; k < hw; ++k) {
            const double a = qs[k] / std::max(ns, 1e-12), b = qt[k] / std::max(nt, 1e-12);
            loss += (a - b) * (a - b) / static_cast<double>(n * hw);
            if (qs_out != nullptr) (*qs_out)[i * hw + k] = a, (*qt_out)[i * hw + k] = b;
        }
        if (norm_out != nullptr) (*norm_out)[i] = ns;
    }
    return loss;
}

void test_attention_transfer(Tally& t)
{
    const std::size_t n = 3, c = 4, h = 5, w = 3, hw = h * w;
    const float dloss = 0.7f;
    const std::vector<float> student = random_values(n * c * hw, 71), teacher = random_values(n * c * hw, 72);
    const cc_loss_problem p{static_cast<int>(n), 0, 0.0f, static_cast<int>(c), static_cast<int>(h), static_cast<int>(w)};
    std::vector<float> workspace(n, kNaN), loss(1, kNaN), qs(n * hw, kNaN), qt(n * hw, kNaN), norm(n, kNaN), ds(n * c * hw, kNaN);
    const std::vector<float> dloss_buffer(1, dloss);
    expect_status(t, cc_at_forward(emulator(), &p, student.data(), teacher.data(), loss.data(), qs.data(), qt.data(), norm.data(),
                                   workspace.data(), n * sizeof(float), nullptr),
                  CC_SUCCESS, {}, "AT forward");
    expect_status(t, cc_at_backward(emulator(), &p, student.data(), qs.data(), qt.data(), norm.data(), dloss_buffer.data(), ds.data(), nullptr),
                  CC_SUCCESS, {}, "AT backward");

    std::vector<double> s(student.begin(), student.end()), rqs(n * hw), rqt(n * hw), rnorm(n), rds(n * c * hw);
    const double rloss = at_loss(s, teacher, n, c, hw, &rqs, &rqt, &rnorm);
    const double step = 1e-4; // central differences: truncation ~ step^2, far below the tolerance
    for (std::size_t k = 0; k < s.size(); ++k) {
        std::vector<double> plus = s, minus = s;
        plus[k] += step;
        minus[k] -= step;
        rds[k] = dloss * (at_loss(plus, teacher, n, c, hw) - at_loss(minus, teacher, n, c, hw)) / (2 * step);
    }
    double scale = 0;
    for (double g : rds) scale = std::max(scale, std::fabs(g));
    expect_close(t, loss.data(), &rloss, 1, kRel, 1e-9, "AT loss");
    expect_close(t, qs.data(), rqs.data(), rqs.size(), kRel, kAbs, "AT student map (normalised)");
    expect_close(t, qt.data(), rqt.data(), rqt.size(), kRel, kAbs, "AT teacher map (normalised)");
    expect_close(t, norm.data(), rnorm.data(), n, kRel, kAbs, "AT student norm");
    expect_close(t, ds.data(), rds.data(), rds.size(), 1e-4, 1e-5 * scale, "AT dstudent against central differences");
}

void test_count_correct(Tally& t)
{
    const std::size_t n = 20, classes = 7;
    std::vector<float> logits = random_values(n * classes, 81);
    std::vector<int32_t> labels(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto row = logits.begin() + static_cast<std::ptrdiff_t>(i * classes);
        const auto argmax = static_cast<int32_t>(std::max_element(row, row + classes) - row);
        labels[i] = i % 3 == 0 ? (argmax + 1) % classes : argmax; // 7 of 20 wrong
    }
    logits[1 * classes + 5] = kNaN; // NaN is the largest: row 1 predicts 5
    labels[1] = 5;
    logits[2 * classes + 2] = logits[2 * classes + 4] = 9.0f; // a tie: the first maximum (2) wins
    labels[2] = 4;                                           // so row 2 is wrong
    // PyTorch's argmax: NaN is the largest value, and the first of equal maxima wins.
    int expected = 0;
    for (std::size_t i = 0; i < n; ++i) {
        int best = 0;
        for (std::size_t j = 1; j < classes; ++j) {
            const float v = logits[i * classes + j], b = logits[i * classes + best];
            if ((v != v && b == b) || v > b) best = static_cast<int>(j);
        }
        expected += best == labels[i] ? 1 : 0;
    }
    const cc_loss_problem p{static_cast<int>(n), static_cast<int>(classes), 0.0f, 0, 0, 0};
    int32_t correct = 1234;
    expect_status(t, cc_count_correct(emulator(), &p, logits.data(), labels.data(), &correct, nullptr), CC_SUCCESS, {}, "count correct");
    t.check(correct == expected, "count correct overwrites its output and counts " + std::to_string(expected) + " (NaN largest, first of a tie): " +
                                     std::to_string(correct));
    float correct_f32 = 1234.0f;
    expect_status(t, cc_count_correct_f32(emulator(), &p, logits.data(), labels.data(), &correct_f32, nullptr), CC_SUCCESS, {},
                  "count correct as a float");
    t.check(correct_f32 == static_cast<float>(expected), "the float count overwrites its output with the same count: " + std::to_string(correct_f32));
    const cc_loss_problem huge{1 << 24, static_cast<int>(classes), 0.0f, 0, 0, 0};
    expect_status(t, cc_count_correct_f32(emulator(), &huge, logits.data(), labels.data(), &correct_f32, nullptr), CC_ERROR_INVALID_VALUE,
                  {"must be below 2^24"}, "a float count of 2^24 rows");
}

void test_sgd(Tally& t)
{
    const cc_status bad = CC_ERROR_INVALID_VALUE;
    cc_sgd_problem p{10, 0.1f, 0.0f, 0.0f, 1};
    expect_status(t, cc_sgd_validate(&p), bad, {"Nesterov momentum needs a momentum above 0"}, "Nesterov without momentum");
    p = {10, -0.1f, 0.9f, 0.0f, 0};
    expect_status(t, cc_sgd_validate(&p), bad, {"learning_rate must be finite and non-negative, got -0.1"}, "a negative learning rate");
    p = {10, 0.1f, 0.9f, kNaN, 0};
    expect_status(t, cc_sgd_validate(&p), bad, {"weight_decay must be finite"}, "a NaN weight decay");
    p = {-1, 0.1f, 0.9f, 0.0f, 0};
    expect_status(t, cc_sgd_validate(&p), bad, {"length must not be negative"}, "a negative length");

    const std::size_t n = 100;
    const cc_sgd_problem nesterov{static_cast<int64_t>(n), 0.1f, 0.9f, 5e-4f, 1}, plain{static_cast<int64_t>(n), 0.1f, 0.0f, 5e-4f, 0};
    std::vector<float> parameter = random_values(n, 91), buffer(n, 0.0f), plain_parameter = parameter;
    const std::vector<float> g1 = random_values(n, 92), g2 = random_values(n, 93);
    std::vector<double> rp(parameter.begin(), parameter.end()), rb(n, 0.0), rplain(parameter.begin(), parameter.end());
    for (const auto* g : {&g1, &g2}) {
        expect_status(t, cc_sgd_step(emulator(), &nesterov, parameter.data(), g->data(), buffer.data(), nullptr), CC_SUCCESS, {},
                      "SGD step (momentum, Nesterov, weight decay)");
        for (std::size_t i = 0; i < n; ++i) {
            const double d = (*g)[i] + 5e-4 * rp[i];
            rb[i] = 0.9 * rb[i] + d;
            rp[i] -= 0.1 * (d + 0.9 * rb[i]);
        }
    }
    expect_status(t, cc_sgd_step(emulator(), &plain, plain_parameter.data(), g1.data(), nullptr, nullptr), CC_SUCCESS, {},
                  "SGD step without momentum takes a NULL buffer");
    for (std::size_t i = 0; i < n; ++i) rplain[i] -= 0.1 * (g1[i] + 5e-4 * rplain[i]);
    expect_close(t, parameter.data(), rp.data(), n, 1e-6, 1e-7, "SGD: two Nesterov steps");
    expect_close(t, buffer.data(), rb.data(), n, 1e-6, 1e-7, "SGD: momentum buffer");
    expect_close(t, plain_parameter.data(), rplain.data(), n, 1e-6, 1e-7, "SGD: plain step");
}

} // namespace

void run_loss_sgd_tests(Tally& t)
{
    test_refusals(t);
    test_cross_entropy_and_kd(t);
    test_attention_transfer(t);
    test_count_correct(t);
    test_sgd(t);
}

} // namespace cc_abi_test
