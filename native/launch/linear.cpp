// The linear layer of the C ABI (y = x w^T + b, PyTorch's nn.Linear) on the GEMM kernels of
// kernels/gemm.cu: forward, backward-data, the split-K weight gradient (gemm_plan.h) and the bias
// gradient as column sums. Ported from the C# launcher (GpuBackend.Gemm.cs) and CpuBackend.CheckLinear.
#include "checks.h"
#include "gemm_plan.h"
#include "launch.h"

#include <cstdint>

namespace cc {
namespace {

using i64 = std::int64_t;

constexpr const char* kWorkspaceQuery = "cc_linear_workspace_size";

struct LinearText {
    const cc_linear_problem& p;
    void operator()(char* text, std::size_t capacity) const
    {
        format_into(text, capacity, "linear n=%d in_features=%d out_features=%d", p.n, p.in_features, p.out_features);
    }
};

i64 bytes(i64 a, i64 b) { return a * b * static_cast<i64>(sizeof(float)); }

cc_status validate(const char* call, const cc_linear_problem* problem)
{
    CC_TRY(check_not_null(call, problem, "problem"));
    const cc_linear_problem& p = *problem;
    CC_TRY(check_positive(call, "n", p.n));
    CC_TRY(check_positive(call, "in_features", p.in_features));
    CC_TRY(check_positive(call, "out_features", p.out_features));
    CC_TRY(check_elements(call, "x (n*in_features)", i64{p.n} * p.in_features));
    CC_TRY(check_elements(call, "w (out_features*in_features)", i64{p.out_features} * p.in_features));
    CC_TRY(check_elements(call, "y (n*out_features)", i64{p.n} * p.out_features));
    return CC_SUCCESS;
}

// The weight gradient dw (out x in) = dy^T x reduces over the n samples.
cc_status plan_weight_gradient(const char* call, const cc_linear_problem* problem, const cc_options* options, SplitPlan* plan)
{
    CC_TRY(validate(call, problem));
    const cc_options o = options != nullptr ? *options : cc_options{};
    if (o.algo == CC_ALGO_DIRECT)
        return fail(CC_ERROR_NOT_SUPPORTED, "%s: the linear layer runs on the GEMM kernels only; options->algo CC_ALGO_DIRECT is "
                                            "for convolutions (use CC_ALGO_AUTO or CC_ALGO_GEMM)", call);
    if (o.algo == CC_ALGO_IMPLICIT_GEMM)
        return fail(CC_ERROR_NOT_SUPPORTED, "%s: the linear layer runs on the fp32 GEMM kernels only; options->algo CC_ALGO_IMPLICIT_GEMM "
                                            "is for convolutions (use CC_ALGO_AUTO or CC_ALGO_GEMM)", call);
    if (o.algo != CC_ALGO_AUTO && o.algo != CC_ALGO_GEMM)
        return fail(CC_ERROR_INVALID_VALUE, "%s: options->algo must be CC_ALGO_AUTO (0), CC_ALGO_DIRECT (1), CC_ALGO_GEMM (2) or "
                                            "CC_ALGO_IMPLICIT_GEMM (4), got %d", call, o.algo);
    CC_TRY(check_precision(call, o.precision));
    if (o.accumulate != 0)
        return fail(CC_ERROR_INVALID_VALUE, "%s: options->accumulate (%d) is for cc_conv_backward_data only; dw is overwritten", call,
                    o.accumulate);
    return plan_split(call, problem->out_features, problem->in_features, problem->n, o.split_chunk, plan);
}

} // namespace
} // namespace cc

using namespace cc;

extern "C" {

CC_API cc_status cc_linear_validate(const cc_linear_problem* problem) { return validate("cc_linear_validate", problem); }

CC_API cc_status cc_linear_workspace_size(const cc_linear_problem* problem, const cc_options* options, size_t* bytes)
{
    constexpr const char* call = "cc_linear_workspace_size";
    CC_TRY(check_not_null(call, bytes, "bytes"));
    SplitPlan plan;
    CC_TRY(plan_weight_gradient(call, problem, options, &plan));
    *bytes = plan.workspace_bytes();
    return CC_SUCCESS;
}

CC_API cc_status cc_linear_forward(cc_handle handle, const cc_linear_problem* problem, const float* x, const float* w,
                                   const float* b, float* y, void* stream)
{
    constexpr const char* call = "cc_linear_forward";
    CC_TRY(check_handle(call, handle));
    CC_TRY(validate(call, problem));
    const cc_linear_problem& p = *problem;
    CC_TRY(check_tensors(call, {{x, "x"}, {w, "w"}, {y, "y"}}));
    if (b != nullptr) CC_TRY(check_tensors(call, {{b, "b"}}));
    CC_TRY(check_disjoint(call, {{y, bytes(p.n, p.out_features), "y"}},
                          {{x, bytes(p.n, p.in_features), "x"}, {w, bytes(p.out_features, p.in_features), "w"},
                           {b, b != nullptr ? bytes(1, p.out_features) : 0, "b"}}));
    Geometry g;
    CC_TRY(gemm_geometry(call, p.n, p.out_features, 1, &g));
    return launch<KernelId::linear_forward>(*handle, g, stream, LinearText{p}, p.n, p.in_features, p.out_features, x, w, b, y);
}

CC_API cc_status cc_linear_backward_data(cc_handle handle, const cc_linear_problem* problem, const float* dy, const float* w,
                                         float* dx, void* stream)
{
    constexpr const char* call = "cc_linear_backward_data";
    CC_TRY(check_handle(call, handle));
    CC_TRY(validate(call, problem));
    const cc_linear_problem& p = *problem;
    CC_TRY(check_tensors(call, {{dy, "dy"}, {w, "w"}, {dx, "dx"}}));
    CC_TRY(check_disjoint(call, {{dx, bytes(p.n, p.in_features), "dx"}},
                          {{dy, bytes(p.n, p.out_features), "dy"}, {w, bytes(p.out_features, p.in_features), "w"}}));
    Geometry g;
    CC_TRY(gemm_geometry(call, p.n, p.in_features, 1, &g));
    return launch<KernelId::linear_backward_data>(*handle, g, stream, LinearText{p}, p.n, p.in_features, p.out_features, dy, w, dx);
}

CC_API cc_status cc_linear_backward_weight(cc_handle handle, const cc_linear_problem* problem, const cc_options* options,
                                           const float* x, const float* dy, float* dw, void* workspace, size_t workspace_bytes,
                                           void* stream)
{
    constexpr const char* call = "cc_linear_backward_weight";
    CC_TRY(check_handle(call, handle));
    SplitPlan plan;
    CC_TRY(plan_weight_gradient(call, problem, options, &plan));
    const cc_linear_problem& p = *problem;
    CC_TRY(check_tensors(call, {{x, "x"}, {dy, "dy"}, {dw, "dw"}}));
    const Extent ex{x, bytes(p.n, p.in_features), "x"}, edy{dy, bytes(p.n, p.out_features), "dy"},
        edw{dw, bytes(p.out_features, p.in_features), "dw"};
    CC_TRY(check_disjoint(call, {edw}, {ex, edy}));
    CC_TRY(check_workspace(call, workspace, workspace_bytes, plan.workspace_bytes(), kWorkspaceQuery));
    if (plan.workspace_bytes() > 0)
        CC_TRY(check_disjoint(call, {{workspace, static_cast<i64>(plan.workspace_bytes()), "workspace"}}, {ex, edy, edw}));
    return launch_split<KernelId::linear_backward_weight>(*handle, plan, stream, LinearText{p}, dw, workspace, p.n, p.in_features,
                                                          p.out_features, x, dy);
}

CC_API cc_status cc_linear_backward_bias(cc_handle handle, const cc_linear_problem* problem, const float* dy, float* db, void* stream)
{
    constexpr const char* call = "cc_linear_backward_bias";
    CC_TRY(check_handle(call, handle));
    CC_TRY(validate(call, problem));
    const cc_linear_problem& p = *problem;
    CC_TRY(check_tensors(call, {{dy, "dy"}, {db, "db"}}));
    CC_TRY(check_disjoint(call, {{db, bytes(1, p.out_features), "db"}}, {{dy, bytes(p.n, p.out_features), "dy"}}));
    return launch_column_sums(*handle, p.n, p.out_features, dy, db, stream, LinearText{p});
}

} // extern "C"
