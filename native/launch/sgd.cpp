// The SGD step of the C ABI (kernels/optim.cu): PyTorch's torch.optim.SGD update of one parameter tensor,
// one thread per element. Ported from the C# launcher (GpuBackend.SgdStep) and CpuBackend.CheckSgdOptions.
#include "checks.h"
#include "geometry.h"
#include "launch.h"

#include <cstdint>

namespace cc {
namespace {

using i64 = std::int64_t;

struct SgdText {
    const cc_sgd_problem& p;
    void operator()(char* text, std::size_t capacity) const
    {
        format_into(text, capacity, "SGD step length=%lld lr=%g momentum=%g weight_decay=%g nesterov=%d", static_cast<long long>(p.length),
                    static_cast<double>(p.learning_rate), static_cast<double>(p.momentum), static_cast<double>(p.weight_decay),
                    p.nesterov != 0);
    }
};

// The options torch.optim.SGD accepts (with dampening 0): finite, non-negative, Nesterov only with momentum.
cc_status validate(const char* call, const cc_sgd_problem* problem)
{
    CC_TRY(check_not_null(call, problem, "problem"));
    const cc_sgd_problem& p = *problem;
    CC_TRY(check_not_negative(call, "length", p.length));
    CC_TRY(check_elements(call, "the parameter", p.length));
    CC_TRY(check_finite_at_least(call, "learning_rate", p.learning_rate, 0.0f, "finite and non-negative"));
    CC_TRY(check_finite_at_least(call, "momentum", p.momentum, 0.0f, "finite and non-negative"));
    CC_TRY(check_finite_at_least(call, "weight_decay", p.weight_decay, 0.0f, "finite and non-negative"));
    if (p.nesterov != 0 && p.momentum == 0.0f)
        return fail(CC_ERROR_INVALID_VALUE, "%s: Nesterov momentum needs a momentum above 0 (as torch.optim.SGD requires)", call);
    return CC_SUCCESS;
}

} // namespace
} // namespace cc

using namespace cc;

extern "C" {

CC_API cc_status cc_sgd_validate(const cc_sgd_problem* problem) { return validate("cc_sgd_validate", problem); }

CC_API cc_status cc_sgd_step(cc_handle handle, const cc_sgd_problem* problem, float* parameter, const float* gradient,
                             float* momentum_buffer, void* stream)
{
    constexpr const char* call = "cc_sgd_step";
    CC_TRY(check_handle(call, handle));
    CC_TRY(validate(call, problem));
    const cc_sgd_problem& p = *problem;
    if (p.length == 0) return CC_SUCCESS;
    CC_TRY(check_tensors(call, {{parameter, "parameter"}, {gradient, "gradient"}}));
    // With momentum 0 the kernel neither reads nor writes the buffer (PyTorch keeps none), so it may be NULL.
    const bool uses_buffer = p.momentum != 0.0f;
    if (uses_buffer) CC_TRY(check_tensors(call, {{momentum_buffer, "momentum_buffer"}}));
    const i64 bytes = p.length * static_cast<i64>(sizeof(float));
    const Extent eparameter{parameter, bytes, "parameter"}, egradient{gradient, bytes, "gradient"},
        ebuffer{momentum_buffer, uses_buffer ? bytes : 0, "momentum_buffer"};
    CC_TRY(check_disjoint(call, {eparameter, ebuffer}, {egradient}));
    CC_TRY(check_disjoint(call, {eparameter}, {ebuffer}));
    return launch<KernelId::sgd_step>(*handle, elementwise_geometry(p.length), stream, SgdText{p}, static_cast<int>(p.length), parameter,
                                      gradient, momentum_buffer, p.learning_rate, p.momentum, p.weight_decay, p.nesterov != 0 ? 1 : 0);
}

} // extern "C"
