// Batch normalisation of the C ABI (kernels/batchnorm.cu), optionally fused with the following ReLU:
// training forward (per-channel statistics, then the element-wise apply), evaluation forward, and the
// training backward (per-channel reduction, then the element-wise dx). Where the device runs thread-block
// clusters (sm_90 with the fatbin's SASS, or the emulator: DeviceFacts::cluster_kernels), each training pass is
// one launch of the cluster kernel instead of two. Ported from the C# launcher
// (GpuBackend.Norm.cs) and CpuBackend.CheckNormShape / CheckBatchNormTraining.
#include "checks.h"
#include "geometry.h"
#include "launch.h"

#include <algorithm>
#include <cstdint>

namespace cc {
namespace {

using i64 = std::int64_t;

constexpr unsigned kReductionBlock = 256; // per-channel reductions: one block per channel; the cluster kernels' blocks

// The one-launch cluster kernels: where the device runs them and the grid (C clusters of CC_BN_CLUSTER_BLOCKS blocks)
// fits CUDA's 2^31 - 1 blocks in x. The geometry depends only on the shape, so the result is the same bits on every
// launch of a shape.
bool use_cluster_kernels(const cc_handle_s& handle, const cc_batchnorm_problem& p)
{
    const DeviceFacts device = handle.runtime->device();
    return device.cluster_kernels && device.compute_capability >= 90 && i64{p.c} * CC_BN_CLUSTER_BLOCKS <= 2147483647;
}

Geometry cluster_geometry(const cc_batchnorm_problem& p)
{
    Geometry g;
    g.grid.x = static_cast<unsigned>(p.c) * CC_BN_CLUSTER_BLOCKS; // checked by use_cluster_kernels
    g.block.x = kReductionBlock;
    return g;
}

struct BatchNormText {
    const cc_batchnorm_problem& p;
    void operator()(char* text, std::size_t capacity) const
    {
        format_into(text, capacity, "batch norm n=%d c=%d h=%d w=%d eps=%g momentum=%g relu=%d%s", p.n, p.c, p.h, p.w,
                    static_cast<double>(p.eps), static_cast<double>(p.momentum), p.relu != 0, p.accumulate != 0 ? " accumulate" : "");
    }
};

i64 elements(const cc_batchnorm_problem& p) { return product({p.n, p.c, p.h, p.w}); }
i64 tensor_bytes(const cc_batchnorm_problem& p) { return elements(p) * static_cast<i64>(sizeof(float)); }
i64 channel_bytes(const cc_batchnorm_problem& p) { return i64{p.c} * static_cast<i64>(sizeof(float)); }

cc_status validate(const char* call, const cc_batchnorm_problem* problem)
{
    CC_TRY(check_not_null(call, problem, "problem"));
    const cc_batchnorm_problem& p = *problem;
    CC_TRY(check_positive(call, "n", p.n));
    CC_TRY(check_positive(call, "c", p.c));
    CC_TRY(check_positive(call, "h", p.h));
    CC_TRY(check_positive(call, "w", p.w));
    CC_TRY(check_elements(call, "x (n*c*h*w)", elements(p)));
    CC_TRY(check_finite_at_least(call, "eps", p.eps, 0.0f, "finite and non-negative"));
    CC_TRY(check_finite_at_least(call, "momentum", p.momentum, 0.0f, "in [0, 1]"));
    if (p.momentum > 1.0f)
        return fail(CC_ERROR_INVALID_VALUE, "%s: momentum must be in [0, 1], got %g", call, static_cast<double>(p.momentum));
    return CC_SUCCESS;
}

// The handle and the descriptor; `call` prefixes every message.
cc_status prepare(const char* call, cc_handle handle, const cc_batchnorm_problem* problem)
{
    CC_TRY(check_handle(call, handle));
    return validate(call, problem);
}

// What every training forward checks of the statistics it writes, after prepare(): more than one value per channel, and
// the four per-channel outputs (non-NULL, aligned, apart from each other and from `inputs`, checked by the caller).
cc_status check_statistics(const char* call, const cc_batchnorm_problem& p, const float* running_mean, const float* running_var,
                           const float* save_mean, const float* save_invstd, std::initializer_list<Extent> inputs)
{
    const i64 per_channel = product({p.n, p.h, p.w});
    if (per_channel < 2)
        return fail(CC_ERROR_INVALID_VALUE,
                    "%s: training batch norm needs more than one value per channel (the unbiased variance divides by "
                    "n*h*w - 1), but n*h*w = %lld",
                    call, static_cast<long long>(per_channel));
    CC_TRY(check_tensors(call, {{running_mean, "running_mean"}, {running_var, "running_var"}, {save_mean, "save_mean"},
                                {save_invstd, "save_invstd"}}));
    const i64 ch = channel_bytes(p);
    const Extent emean{running_mean, ch, "running_mean"}, evar{running_var, ch, "running_var"}, esave_mean{save_mean, ch, "save_mean"},
        esave_invstd{save_invstd, ch, "save_invstd"};
    CC_TRY(check_disjoint(call, {emean, evar, esave_mean, esave_invstd}, inputs));
    CC_TRY(check_disjoint(call, {emean}, {evar, esave_mean, esave_invstd}));
    CC_TRY(check_disjoint(call, {evar}, {esave_mean, esave_invstd}));
    return check_disjoint(call, {esave_mean}, {esave_invstd});
}

// What both training forwards check: the statistics (check_statistics) and the tensors (non-NULL, aligned, the statistics
// apart from every input; y may be x).
cc_status check_train_forward(const char* call, cc_handle handle, const cc_batchnorm_problem* problem, const float* x, const float* gamma,
                              const float* beta, const float* running_mean, const float* running_var, const float* y,
                              const float* save_mean, const float* save_invstd)
{
    CC_TRY(prepare(call, handle, problem));
    CC_TRY(check_tensors(call, {{x, "x"}, {gamma, "gamma"}, {beta, "beta"}, {y, "y"}}));
    const cc_batchnorm_problem& p = *problem;
    const i64 t = tensor_bytes(p), ch = channel_bytes(p);
    const Extent ex{x, t, "x"}, egamma{gamma, ch, "gamma"}, ebeta{beta, ch, "beta"};
    CC_TRY(check_statistics(call, p, running_mean, running_var, save_mean, save_invstd, {ex, egamma, ebeta}));
    // y may be x (the apply pass reads each element before writing it); the statistics must be apart.
    return check_disjoint(call, {{y, t, "y"}},
                          {egamma, ebeta, {running_mean, ch, "running_mean"}, {running_var, ch, "running_var"}, {save_mean, ch, "save_mean"},
                           {save_invstd, ch, "save_invstd"}});
}

// What both training backwards check: the handle, the descriptor, and the tensors (non-NULL, aligned; dx, dgamma and
// dbeta apart from every input and each other). beta may be NULL without the ReLU: *beta_or_gamma is what the kernels
// get for it then (gamma; they never read it).
cc_status check_backward(const char* call, cc_handle handle, const cc_batchnorm_problem* problem, const float* x, const float* dy,
                         const float* gamma, const float* beta, const float* save_mean, const float* save_invstd, const float* dx,
                         const float* dgamma, const float* dbeta, const float** beta_or_gamma)
{
    CC_TRY(prepare(call, handle, problem));
    const cc_batchnorm_problem& p = *problem;
    if (p.relu != 0 && beta == nullptr)
        return fail(CC_ERROR_INVALID_VALUE, "%s: beta is NULL, but relu is set: the backward recomputes the ReLU mask from beta", call);
    *beta_or_gamma = beta != nullptr ? beta : gamma;
    CC_TRY(check_tensors(call, {{x, "x"}, {dy, "dy"}, {gamma, "gamma"}, {*beta_or_gamma, "beta"}, {save_mean, "save_mean"},
                                {save_invstd, "save_invstd"}, {dx, "dx"}, {dgamma, "dgamma"}, {dbeta, "dbeta"}}));
    const i64 t = tensor_bytes(p), ch = channel_bytes(p);
    const Extent ex{x, t, "x"}, edy{dy, t, "dy"}, egamma{gamma, ch, "gamma"}, ebeta{*beta_or_gamma, ch, "beta"},
        emean{save_mean, ch, "save_mean"}, einvstd{save_invstd, ch, "save_invstd"}, edgamma{dgamma, ch, "dgamma"},
        edbeta{dbeta, ch, "dbeta"};
    CC_TRY(check_disjoint(call, {{dx, t, "dx"}}, {ex, edy, egamma, ebeta, emean, einvstd, edgamma, edbeta}));
    CC_TRY(check_disjoint(call, {edgamma, edbeta}, {ex, edy, egamma, ebeta, emean, einvstd}));
    return check_disjoint(call, {edgamma}, {edbeta});
}

// What both from-slots calls check of their slots (after the rest of their arguments): a positive count whose floats the
// kernel indexes with 32 bits, a non-NULL aligned pointer, apart from every output.
cc_status check_slots(const char* call, const cc_batchnorm_problem& p, int slots, int floats_per_slot, const float* values, const char* name,
                      std::initializer_list<Extent> outputs)
{
    CC_TRY(check_positive(call, "slots", slots));
    const i64 floats = product({p.c, slots, floats_per_slot});
    if (floats > kMaxElements)
        return fail(CC_ERROR_INVALID_VALUE, "%s: %d channels x %d slots x %d floats of %s pass the kernel's 32-bit indices", call, p.c,
                    slots, floats_per_slot, name);
    CC_TRY(check_tensors(call, {{values, name}}));
    return check_disjoint(call, outputs, {{values, floats * static_cast<i64>(sizeof(float)), name}});
}

// The from-slots kernels' grid (C, parts): each part works on its share of the channel after combining all of the
// channel's slots (a few KiB), so the parts grow with the channel, up to CC_BN_CLUSTER_BLOCKS, at about 16 elements per
// thread. The geometry depends only on the shape: the same bits on every launch.
Geometry slots_geometry(const cc_batchnorm_problem& p)
{
    const i64 per_channel = product({p.n, p.h, p.w});
    Geometry g;
    g.grid.x = static_cast<unsigned>(p.c);
    g.grid.y = static_cast<unsigned>(std::clamp<i64>((per_channel + 16 * kReductionBlock - 1) / (16 * kReductionBlock), 1, CC_BN_CLUSTER_BLOCKS));
    g.block.x = kReductionBlock;
    return g;
}

} // namespace
} // namespace cc

using namespace cc;

extern "C" {

CC_API cc_status cc_batchnorm_validate(const cc_batchnorm_problem* problem) { return validate("cc_batchnorm_validate", problem); }

CC_API cc_status cc_batchnorm_train_forward(cc_handle handle, const cc_batchnorm_problem* problem, const float* x, const float* gamma,
                                            const float* beta, float* running_mean, float* running_var, float* y,
                                            float* save_mean, float* save_invstd, void* stream)
{
    constexpr const char* call = "cc_batchnorm_train_forward";
    CC_TRY(check_train_forward(call, handle, problem, x, gamma, beta, running_mean, running_var, y, save_mean, save_invstd));
    const cc_batchnorm_problem& p = *problem;
    const int hw = p.h * p.w; // <= n*c*h*w, checked to fit an int
    const BatchNormText text{p};
    if (use_cluster_kernels(*handle, p))
        return launch<KernelId::batchnorm_train_forward_cluster>(*handle, cluster_geometry(p), stream, text, p.n, p.c, hw, x, gamma,
                                                                 beta, p.momentum, p.eps, running_mean, running_var, save_mean,
                                                                 save_invstd, p.relu != 0 ? 1 : 0, y);
    CC_TRY(launch<KernelId::batchnorm_train_stats>(*handle, block_per_item_geometry(p.c, kReductionBlock), stream, text, p.n, p.c, hw,
                                                   x, p.momentum, p.eps, running_mean, running_var, save_mean, save_invstd));
    return launch<KernelId::batchnorm_apply>(*handle, elementwise_geometry(elements(p)), stream, text, p.n, p.c, hw, x, gamma, beta,
                                             save_mean, save_invstd, p.relu != 0 ? 1 : 0, y);
}

CC_API cc_status cc_batchnorm_train_forward_from_stats(cc_handle handle, const cc_batchnorm_problem* problem, const float* stats,
                                                       int slots, const float* x, const float* gamma, const float* beta,
                                                       float* running_mean, float* running_var, float* y, float* save_mean,
                                                       float* save_invstd, void* stream)
{
    constexpr const char* call = "cc_batchnorm_train_forward_from_stats";
    CC_TRY(check_train_forward(call, handle, problem, x, gamma, beta, running_mean, running_var, y, save_mean, save_invstd));
    const cc_batchnorm_problem& p = *problem;
    const i64 ch = channel_bytes(p);
    CC_TRY(check_slots(call, p, slots, CC_BN_STATS_FLOATS_PER_SLOT, stats, "stats",
                       {{y, tensor_bytes(p), "y"}, {running_mean, ch, "running_mean"}, {running_var, ch, "running_var"},
                        {save_mean, ch, "save_mean"}, {save_invstd, ch, "save_invstd"}}));
    return launch<KernelId::batchnorm_train_forward_from_stats>(*handle, slots_geometry(p), stream, BatchNormText{p}, p.n, p.c, p.h * p.w, slots, stats, x,
                                                                gamma, beta, p.momentum, p.eps, running_mean, running_var, save_mean,
                                                                save_invstd, p.relu != 0 ? 1 : 0, y);
}

CC_API cc_status cc_batchnorm_train_statistics(cc_handle handle, const cc_batchnorm_problem* problem, const float* x, float* running_mean,
                                               float* running_var, float* save_mean, float* save_invstd, void* stream)
{
    constexpr const char* call = "cc_batchnorm_train_statistics";
    CC_TRY(prepare(call, handle, problem));
    CC_TRY(check_tensors(call, {{x, "x"}}));
    const cc_batchnorm_problem& p = *problem;
    CC_TRY(check_statistics(call, p, running_mean, running_var, save_mean, save_invstd, {{x, tensor_bytes(p), "x"}}));
    const int hw = p.h * p.w;
    const BatchNormText text{p};
    // cc_batchnorm_train_forward's statistics launch, so the same bits: the cluster kernel where that call runs it (y NULL:
    // it stops after the statistics and reads neither gamma nor beta), the statistics kernel elsewhere.
    if (use_cluster_kernels(*handle, p))
        return launch<KernelId::batchnorm_train_forward_cluster>(*handle, cluster_geometry(p), stream, text, p.n, p.c, hw, x, nullptr,
                                                                 nullptr, p.momentum, p.eps, running_mean, running_var, save_mean,
                                                                 save_invstd, 0, nullptr);
    return launch<KernelId::batchnorm_train_stats>(*handle, block_per_item_geometry(p.c, kReductionBlock), stream, text, p.n, p.c, hw, x,
                                                   p.momentum, p.eps, running_mean, running_var, save_mean, save_invstd);
}

CC_API cc_status cc_batchnorm_train_statistics_from_stats(cc_handle handle, const cc_batchnorm_problem* problem, const float* stats,
                                                          int slots, float* running_mean, float* running_var, float* save_mean,
                                                          float* save_invstd, void* stream)
{
    constexpr const char* call = "cc_batchnorm_train_statistics_from_stats";
    CC_TRY(prepare(call, handle, problem));
    const cc_batchnorm_problem& p = *problem;
    CC_TRY(check_statistics(call, p, running_mean, running_var, save_mean, save_invstd, {}));
    const i64 ch = channel_bytes(p);
    CC_TRY(check_slots(call, p, slots, CC_BN_STATS_FLOATS_PER_SLOT, stats, "stats",
                       {{running_mean, ch, "running_mean"}, {running_var, ch, "running_var"}, {save_mean, ch, "save_mean"},
                        {save_invstd, ch, "save_invstd"}}));
    // cc_batchnorm_train_forward_from_stats's block size: the combination's order depends on it (and on slots) only.
    return launch<KernelId::batchnorm_statistics_from_stats>(*handle, block_per_item_geometry(p.c, kReductionBlock), stream,
                                                             BatchNormText{p}, p.n, p.c, p.h * p.w, slots, stats, p.momentum, p.eps,
                                                             running_mean, running_var, save_mean, save_invstd);
}

CC_API cc_status cc_batchnorm_eval_forward(cc_handle handle, const cc_batchnorm_problem* problem, const float* x, const float* gamma,
                                           const float* beta, const float* running_mean, const float* running_var, float* y,
                                           void* stream)
{
    constexpr const char* call = "cc_batchnorm_eval_forward";
    CC_TRY(prepare(call, handle, problem));
    const cc_batchnorm_problem& p = *problem;
    CC_TRY(check_tensors(call, {{x, "x"}, {gamma, "gamma"}, {beta, "beta"}, {running_mean, "running_mean"},
                                {running_var, "running_var"}, {y, "y"}}));
    const i64 ch = channel_bytes(p);
    // y may be x; the per-channel parameters are read through restrict pointers.
    CC_TRY(check_disjoint(call, {{y, tensor_bytes(p), "y"}},
                          {{gamma, ch, "gamma"}, {beta, ch, "beta"}, {running_mean, ch, "running_mean"}, {running_var, ch, "running_var"}}));
    return launch<KernelId::batchnorm_eval_forward>(*handle, elementwise_geometry(elements(p)), stream, BatchNormText{p}, p.n, p.c,
                                                    p.h * p.w, x, gamma, beta, running_mean, running_var, p.eps,
                                                    p.relu != 0 ? 1 : 0, y);
}

CC_API cc_status cc_batchnorm_backward(cc_handle handle, const cc_batchnorm_problem* problem, const float* x, const float* dy,
                                       const float* gamma, const float* beta, const float* save_mean, const float* save_invstd,
                                       float* dx, float* dgamma, float* dbeta, void* stream)
{
    constexpr const char* call = "cc_batchnorm_backward";
    const float* beta_or_gamma = nullptr;
    CC_TRY(check_backward(call, handle, problem, x, dy, gamma, beta, save_mean, save_invstd, dx, dgamma, dbeta, &beta_or_gamma));
    const cc_batchnorm_problem& p = *problem;
    const int relu = p.relu != 0 ? 1 : 0;
    const int hw = p.h * p.w;
    const BatchNormText text{p};
    if (use_cluster_kernels(*handle, p))
        return launch<KernelId::batchnorm_backward_cluster>(*handle, cluster_geometry(p), stream, text, p.n, p.c, hw, x, dy, gamma,
                                                            beta_or_gamma, save_mean, save_invstd, relu, p.accumulate != 0 ? 1 : 0,
                                                            dgamma, dbeta, dx);
    CC_TRY(launch<KernelId::batchnorm_backward_reduce>(*handle, block_per_item_geometry(p.c, kReductionBlock), stream, text, p.n, p.c,
                                                       hw, x, dy, gamma, beta_or_gamma, save_mean, save_invstd, relu, dgamma, dbeta));
    return launch<KernelId::batchnorm_backward_data>(*handle, elementwise_geometry(elements(p)), stream, text, p.n, p.c, hw, x, dy,
                                                     gamma, beta_or_gamma, save_mean, save_invstd, dgamma, dbeta, relu,
                                                     p.accumulate != 0 ? 1 : 0, dx);
}

CC_API cc_status cc_batchnorm_backward_from_sums(cc_handle handle, const cc_batchnorm_problem* problem, const float* sums, int slots,
                                                 const float* x, const float* dy, const float* gamma, const float* beta,
                                                 const float* save_mean, const float* save_invstd, float* dx, float* dgamma, float* dbeta,
                                                 void* stream)
{
    constexpr const char* call = "cc_batchnorm_backward_from_sums";
    const float* beta_or_gamma = nullptr;
    CC_TRY(check_backward(call, handle, problem, x, dy, gamma, beta, save_mean, save_invstd, dx, dgamma, dbeta, &beta_or_gamma));
    const cc_batchnorm_problem& p = *problem;
    const i64 ch = channel_bytes(p);
    CC_TRY(check_slots(call, p, slots, CC_BN_SUMS_FLOATS_PER_SLOT, sums, "sums",
                       {{dx, tensor_bytes(p), "dx"}, {dgamma, ch, "dgamma"}, {dbeta, ch, "dbeta"}}));
    return launch<KernelId::batchnorm_backward_from_sums>(*handle, slots_geometry(p), stream, BatchNormText{p}, p.n, p.c, p.h * p.w, slots,
                                                          sums, x, dy, gamma, beta_or_gamma, save_mean, save_invstd, p.relu != 0 ? 1 : 0,
                                                          p.accumulate != 0 ? 1 : 0, dgamma, dbeta, dx);
}

} // extern "C"
