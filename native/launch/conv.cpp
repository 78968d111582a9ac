// The convolution family of the C ABI: descriptor validation, the variant choice (direct kernels of
// kernels/conv2d.cu, the pointwise GEMM kernels of kernels/gemm.cu for 1x1 / groups 1 / no padding,
// with the split-K weight gradient, or the tiled 3x3 kernels planned in conv_tiled.cpp), workspace sizes,
// the three passes, and both gradients at once (cc_conv_backward: one launch where the two variants share a grid).
// Ported from the C# launcher (GpuBackend.cs, GpuBackend.Gemm.cs) and ConvProblem.Validate.
#include "checks.h"
#include "conv_implicit_gemm.h"
#include "conv_tiled.h"
#include "gemm_plan.h"
#include "geometry.h"
#include "launch.h"

#include <algorithm>
#include <cstdint>

namespace cc {
namespace {

using i64 = std::int64_t;

constexpr unsigned kWeightGradBlock = 256; // direct weight gradient: 8 warps, one dw element each
constexpr const char* kWorkspaceQuery = "cc_conv_workspace_size";

i64 input_elements(const cc_conv_problem& p) { return product({p.n, p.c, p.h, p.w}); }
i64 weight_elements(const cc_conv_problem& p) { return product({p.k, p.c / p.groups, p.r, p.s}); }
i64 output_elements(const cc_conv_problem& p) { return product({p.n, p.k, p.p, p.q}); }

// (extent + 2 * pad - filter) / stride + 1, or 0 when the filter does not fit the padded extent.
i64 output_extent(i64 extent, i64 pad, i64 filter, i64 stride)
{
    const i64 padded = extent + 2 * pad;
    return padded < filter ? 0 : (padded - filter) / stride + 1;
}

// The one-line form of failure messages.
struct ConvText {
    const cc_conv_problem& p;
    void operator()(char* text, std::size_t capacity) const
    {
        format_into(text, capacity, "conv n=%d c=%d h=%d w=%d k=%d r=%d s=%d pad=%dx%d stride=%dx%d groups=%d -> p=%d q=%d", p.n,
                    p.c, p.h, p.w, p.k, p.r, p.s, p.pad_h, p.pad_w, p.stride_h, p.stride_w, p.groups, p.p, p.q);
    }
};

cc_status validate(const char* call, const cc_conv_problem* problem)
{
    CC_TRY(check_not_null(call, problem, "problem"));
    const cc_conv_problem& p = *problem;
    const struct {
        const char* name;
        int value;
    } positive[] = {{"n", p.n}, {"c", p.c}, {"h", p.h}, {"w", p.w}, {"k", p.k}, {"r", p.r}, {"s", p.s},
                    {"stride_h", p.stride_h}, {"stride_w", p.stride_w}, {"groups", p.groups}};
    for (const auto& field : positive) CC_TRY(check_positive(call, field.name, field.value));
    CC_TRY(check_not_negative(call, "pad_h", p.pad_h));
    CC_TRY(check_not_negative(call, "pad_w", p.pad_w));
    if (p.c % p.groups != 0) return fail(CC_ERROR_INVALID_VALUE, "%s: groups (%d) must divide c (%d)", call, p.groups, p.c);
    if (p.k % p.groups != 0) return fail(CC_ERROR_INVALID_VALUE, "%s: groups (%d) must divide k (%d)", call, p.groups, p.k);
    const i64 want_p = output_extent(p.h, p.pad_h, p.r, p.stride_h);
    const i64 want_q = output_extent(p.w, p.pad_w, p.s, p.stride_w);
    if (want_p == 0 || want_q == 0)
        return fail(CC_ERROR_INVALID_VALUE, "%s: the %dx%d filter (r x s) is larger than the padded %lldx%lld input", call, p.r, p.s,
                    static_cast<long long>(i64{p.h} + 2 * i64{p.pad_h}), static_cast<long long>(i64{p.w} + 2 * i64{p.pad_w}));
    if (p.p != want_p || p.q != want_q)
        return fail(CC_ERROR_INVALID_VALUE,
                    "%s: the output size p x q = %dx%d does not follow from the other fields, which give %lldx%lld "
                    "((h + 2*pad_h - r) / stride_h + 1; cc_conv_init derives it)",
                    call, p.p, p.q, static_cast<long long>(want_p), static_cast<long long>(want_q));
    CC_TRY(check_elements(call, "x (n*c*h*w)", input_elements(p)));
    CC_TRY(check_elements(call, "w (k*(c/groups)*r*s)", weight_elements(p)));
    CC_TRY(check_elements(call, "y (n*k*p*q)", output_elements(p)));
    if (p.layout != CC_LAYOUT_NCHW)
        return fail(CC_ERROR_NOT_SUPPORTED, "%s: layout %d is not implemented; only CC_LAYOUT_NCHW (%d) is", call, p.layout,
                    CC_LAYOUT_NCHW);
    if (p.dtype != CC_DTYPE_F32)
        return fail(CC_ERROR_NOT_SUPPORTED, "%s: dtype %d is not implemented; only CC_DTYPE_F32 (%d) is", call, p.dtype,
                    CC_DTYPE_F32);
    return CC_SUCCESS;
}

// What one pass runs: the direct kernel or the pointwise GEMM, with its geometry; the GEMM weight
// gradient also carries its split plan (and the workspace it needs). A tiled pass carries its own plan.
struct ConvPlan {
    bool gemm = false;
    bool tiled = false;
    TiledPlan tiled_plan;
    Geometry geometry;
    SplitPlan split;
    std::size_t workspace_bytes = 0;
    bool implicit_gemm = false; // the tensor-core variant (conv_implicit_gemm.h) runs the pass, as planned here:
    ImplicitGemmPlan implicit;
    int accumulate = 0;         // backward-data: dx += the gradient (options->accumulate)
};

// The GEMM kernels compute 1x1 convolutions with groups 1 and no padding, any stride.
bool is_pointwise(const cc_conv_problem& p) { return p.r == 1 && p.s == 1 && p.groups == 1 && p.pad_h == 0 && p.pad_w == 0; }

// The GEMM's m x n output and reduction k for a pass (gemm.cu's table).
struct GemmShape {
    i64 m, n, k;
};
GemmShape gemm_shape(const cc_conv_problem& p, cc_conv_pass pass)
{
    const i64 positions = i64{p.n} * p.p * p.q;
    switch (pass) {
    case CC_CONV_FORWARD: return {p.k, positions, p.c};
    case CC_CONV_BACKWARD_DATA: return {p.c, positions, p.k};
    case CC_CONV_BACKWARD_WEIGHT:
    case CC_CONV_BACKWARD:
    case CC_CONV_FORWARD_BN_STATS: break; // never planned as one pass (plan_variant refuses it): both are planned apart
    }
    return {p.k, p.c, positions};
}

Geometry direct_geometry(const cc_conv_problem& p, cc_conv_pass pass)
{
    switch (pass) {
    case CC_CONV_FORWARD: return elementwise_geometry(output_elements(p));
    case CC_CONV_BACKWARD_DATA: return elementwise_geometry(input_elements(p));
    case CC_CONV_BACKWARD_WEIGHT:
    case CC_CONV_BACKWARD:
    case CC_CONV_FORWARD_BN_STATS: break; // never planned as one pass (plan_variant refuses it): both are planned apart
    }
    return warp_per_item_geometry(weight_elements(p), kWeightGradBlock);
}

cc_status plan_variant(const char* call, const cc_conv_problem* problem, cc_conv_pass pass, const cc_options* options, ConvPlan* plan)
{
    CC_TRY(validate(call, problem));
    const cc_conv_problem& p = *problem;
    const cc_options o = options != nullptr ? *options : cc_options{};
    if (pass != CC_CONV_FORWARD && pass != CC_CONV_BACKWARD_DATA && pass != CC_CONV_BACKWARD_WEIGHT)
        return fail(CC_ERROR_INVALID_VALUE,
                    "%s: pass must be CC_CONV_FORWARD, CC_CONV_BACKWARD_DATA, CC_CONV_BACKWARD_WEIGHT, CC_CONV_BACKWARD or "
                    "CC_CONV_FORWARD_BN_STATS, got %d",
                    call,
                    static_cast<int>(pass));
    if (o.algo != CC_ALGO_AUTO && o.algo != CC_ALGO_DIRECT && o.algo != CC_ALGO_GEMM && o.algo != CC_ALGO_TILED &&
        o.algo != CC_ALGO_IMPLICIT_GEMM)
        return fail(CC_ERROR_INVALID_VALUE,
                    "%s: options->algo must be CC_ALGO_AUTO (0), CC_ALGO_DIRECT (1), CC_ALGO_GEMM (2), CC_ALGO_TILED (3) or "
                    "CC_ALGO_IMPLICIT_GEMM (4), got %d",
                    call, o.algo);
    if (o.split_chunk < 0)
        return fail(CC_ERROR_INVALID_VALUE, "%s: options->split_chunk must be 0 (the launcher's choice) or positive, got %d", call,
                    o.split_chunk);
    CC_TRY(check_precision(call, o.precision));
    if (o.accumulate != 0 && pass != CC_CONV_BACKWARD_DATA)
        return fail(CC_ERROR_INVALID_VALUE, "%s: options->accumulate (%d) adds into dx and is for cc_conv_backward_data only; pass %d "
                                            "overwrites its output",
                    call, o.accumulate, static_cast<int>(pass));

    // The tensor-core variant: asked for, or CC_ALGO_AUTO's choice where tf32 is allowed (conv_implicit_gemm.h).
    if (o.algo == CC_ALGO_IMPLICIT_GEMM && o.precision != CC_PRECISION_TF32)
        return fail(CC_ERROR_NOT_SUPPORTED,
                    "%s: CC_ALGO_IMPLICIT_GEMM runs on tensor cores in tf32; options->precision CC_PRECISION_FP32 asks for exact "
                    "fp32 products (use CC_ALGO_AUTO, CC_ALGO_DIRECT or CC_ALGO_GEMM with it)",
                    call);
    if (o.algo == CC_ALGO_IMPLICIT_GEMM || (o.algo == CC_ALGO_AUTO && o.precision == CC_PRECISION_TF32 && implicit_gemm_preferred(p, pass))) {
        ConvPlan result;
        result.implicit_gemm = true;
        CC_TRY(plan_implicit_gemm(call, p, pass, o.split_chunk, &result.implicit));
        result.workspace_bytes = result.implicit.workspace_bytes;
        *plan = result;
        return CC_SUCCESS;
    }
    if (o.algo == CC_ALGO_GEMM && !is_pointwise(p))
        return fail(CC_ERROR_NOT_SUPPORTED,
                    "%s: CC_ALGO_GEMM computes 1x1 convolutions with groups 1 and no padding, not r=%d s=%d groups=%d pad=%dx%d "
                    "(use CC_ALGO_AUTO or CC_ALGO_DIRECT)",
                    call, p.r, p.s, p.groups, p.pad_h, p.pad_w);

    // The tiled 3x3 kernels (conv_tiled.h): when asked for, and AUTO's choice for every 3x3 with stride 1 or 2 the
    // tensor cores do not take — grouped, depthwise and dense alike. For dense ones (groups 1) the roofline model has them
    // 15x faster than the direct kernels over the catalogue's 12 dense 3x3 problems in fp32 (forward 5916.5 -> 397.8 us,
    // backward data 5028.9 -> 459.9, backward weight 6080.7 -> 528.6; faster on each problem and pass), and the 3-channel
    // stem 7x to 20x faster (bench/results/profile-2026-11-29-dense-tiled.md).
    if (o.algo == CC_ALGO_TILED && !tiled_supports(p))
        return fail(CC_ERROR_NOT_SUPPORTED, "%s: CC_ALGO_TILED computes %s, not r=%d s=%d stride=%dx%d (use CC_ALGO_AUTO or CC_ALGO_DIRECT)",
                    call, kTiledSupports, p.r, p.s, p.stride_h, p.stride_w);
    if (o.algo == CC_ALGO_TILED || (o.algo == CC_ALGO_AUTO && tiled_supports(p))) {
        ConvPlan tiled;
        tiled.tiled = true;
        CC_TRY(plan_tiled(call, p, pass, &tiled.tiled_plan));
        tiled.workspace_bytes = tiled.tiled_plan.workspace_bytes;
        *plan = tiled;
        return CC_SUCCESS;
    }

    const GemmShape shape = gemm_shape(p, pass);
    // AUTO takes the GEMM for every pointwise problem whose tile grid CUDA can launch.
    const bool gemm = o.algo == CC_ALGO_GEMM || (o.algo == CC_ALGO_AUTO && is_pointwise(p) && gemm_fits(shape.m, shape.n, 1));
    ConvPlan result;
    result.gemm = gemm;
    if (!gemm) {
        result.geometry = direct_geometry(p, pass);
    } else if (pass == CC_CONV_BACKWARD_WEIGHT) {
        CC_TRY(plan_split(call, shape.m, shape.n, shape.k, o.split_chunk, &result.split));
        result.geometry = result.split.geometry;
        result.workspace_bytes = result.split.workspace_bytes();
    } else {
        CC_TRY(gemm_geometry(call, shape.m, shape.n, 1, &result.geometry));
    }
    *plan = result;
    return CC_SUCCESS;
}

// The variant's plan, and whether the data gradient adds into dx (plan_variant refused accumulate for other passes).
cc_status plan_pass(const char* call, const cc_conv_problem* problem, cc_conv_pass pass, const cc_options* options, ConvPlan* plan)
{
    CC_TRY(plan_variant(call, problem, pass, options, plan));
    plan->accumulate = options != nullptr && options->accumulate != 0 ? 1 : 0;
    return CC_SUCCESS;
}

// The kernel a planned pass launches (a split weight gradient reduces its splits in the same launch).
KernelId pass_kernel(const ConvPlan& plan, cc_conv_pass pass)
{
    static constexpr KernelId direct[] = {KernelId::conv2d_forward, KernelId::conv2d_backward_data, KernelId::conv2d_backward_weight};
    static constexpr KernelId gemm[] = {KernelId::pointwise_forward, KernelId::pointwise_backward_data,
                                        KernelId::pointwise_backward_weight};
    return plan.tiled           ? plan.tiled_plan.kernel
           : plan.implicit_gemm ? plan.implicit.kernel
                                : (plan.gemm ? gemm : direct)[pass];
}

// cc_conv_backward's two passes: each planned as its own call would plan it (the weight gradient without accumulate,
// which belongs to dx), the workspace shared between them, and the one launch that computes both where there is one.
struct BackwardPlan {
    ConvPlan data, weight;
    std::size_t data_offset = 0;     // the data gradient's workspace, after the weight gradient's (whose counters open it)
    std::size_t workspace_bytes = 0;
    bool fused = false;
    FusedBackward launch{};
};

cc_options weight_options_of(const cc_options* options)
{
    cc_options o = options != nullptr ? *options : cc_options{};
    o.accumulate = 0;
    return o;
}

cc_status plan_backward(const char* call, const cc_conv_problem* problem, const cc_options* options, BackwardPlan* plan)
{
    BackwardPlan result;
    CC_TRY(plan_pass(call, problem, CC_CONV_BACKWARD_DATA, options, &result.data));
    const cc_options weight_options = weight_options_of(options);
    CC_TRY(plan_pass(call, problem, CC_CONV_BACKWARD_WEIGHT, &weight_options, &result.weight));
    constexpr std::size_t kAlignment = 16;
    result.data_offset = (result.weight.workspace_bytes + kAlignment - 1) / kAlignment * kAlignment;
    result.workspace_bytes = result.data.workspace_bytes == 0 ? result.weight.workspace_bytes : result.data_offset + result.data.workspace_bytes;
    // The one place that chooses one launch or two: the passes' variants fuse when they are of one family, whose fused
    // kernel runs each pass's blocks with that pass's own plan (so the same arithmetic in the same order: the same bits).
    if (result.data.implicit_gemm && result.weight.implicit_gemm)
        result.fused = plan_implicit_gemm_backward(result.data.implicit, result.weight.implicit, &result.launch);
    else if (result.data.tiled && result.weight.tiled)
        result.fused = plan_tiled_backward(result.data.tiled_plan, result.weight.tiled_plan, &result.launch);
    *plan = result;
    return CC_SUCCESS;
}

// cc_conv_backward's checks of its tensors and workspace with both outputs given; cc_conv_backward_input_bn's too, where
// x is z, dx is da, and bn's arrays are more inputs (`more`) the outputs must not overlap.
struct Named {
    const float* pointer;
    const char* name;
};
cc_status check_backward_tensors(const char* call, const cc_conv_problem& p, const BackwardPlan& plan, Named x, const float* dy,
                                 const float* w, Named dx, const float* dw, const void* workspace, std::size_t workspace_bytes,
                                 std::initializer_list<Extent> more = {})
{
    CC_TRY(check_tensors(call, {{x.pointer, x.name}, {dy, "dy"}, {w, "w"}, {dx.pointer, dx.name}, {dw, "dw"}}));
    const auto bytes = [](i64 elements) { return elements * static_cast<i64>(sizeof(float)); };
    const Extent ex{x.pointer, bytes(input_elements(p)), x.name}, edy{dy, bytes(output_elements(p)), "dy"},
        ew{w, bytes(weight_elements(p)), "w"}, edx{dx.pointer, bytes(input_elements(p)), dx.name}, edw{dw, bytes(weight_elements(p)), "dw"};
    CC_TRY(check_disjoint(call, {edx, edw}, {ex, edy, ew}));
    CC_TRY(check_disjoint(call, {edx, edw}, more));
    CC_TRY(check_disjoint(call, {edx}, {edw}));
    CC_TRY(check_workspace(call, workspace, workspace_bytes, plan.workspace_bytes, kWorkspaceQuery));
    if (plan.workspace_bytes > 0)
        CC_TRY(check_disjoint(call, {{workspace, static_cast<i64>(plan.workspace_bytes), "workspace"}}, {ex, edy, ew, edx, edw}));
    return CC_SUCCESS;
}

// The tensors of a pass, as (input, input, output): their names and element counts.
struct PassTensors {
    const char* names[3];
    i64 elements[3];
};
PassTensors pass_tensors(const cc_conv_problem& p, cc_conv_pass pass)
{
    switch (pass) {
    case CC_CONV_FORWARD: return {{"x", "w", "y"}, {input_elements(p), weight_elements(p), output_elements(p)}};
    case CC_CONV_BACKWARD_DATA: return {{"dy", "w", "dx"}, {output_elements(p), weight_elements(p), input_elements(p)}};
    case CC_CONV_BACKWARD_WEIGHT:
    case CC_CONV_BACKWARD:
    case CC_CONV_FORWARD_BN_STATS: break; // never planned as one pass (plan_variant refuses it): both are planned apart
    }
    return {{"x", "dy", "dw"}, {input_elements(p), output_elements(p), weight_elements(p)}};
}

// Everything a pass checks before it launches: handle, plan, tensors (non-NULL, aligned, the output apart
// from the inputs) and workspace.
cc_status prepare(const char* call, cc_handle handle, const cc_conv_problem* problem, cc_conv_pass pass, const cc_options* options,
                  const void* in0, const void* in1, const void* out, const void* workspace, std::size_t workspace_bytes,
                  ConvPlan* plan)
{
    CC_TRY(check_handle(call, handle));
    CC_TRY(plan_pass(call, problem, pass, options, plan));
    const PassTensors t = pass_tensors(*problem, pass);
    CC_TRY(check_tensors(call, {{in0, t.names[0]}, {in1, t.names[1]}, {out, t.names[2]}}));
    const auto bytes = [](i64 elements) { return elements * static_cast<i64>(sizeof(float)); };
    const Extent e0{in0, bytes(t.elements[0]), t.names[0]}, e1{in1, bytes(t.elements[1]), t.names[1]},
        e2{out, bytes(t.elements[2]), t.names[2]};
    CC_TRY(check_disjoint(call, {e2}, {e0, e1}));
    CC_TRY(check_workspace(call, workspace, workspace_bytes, plan->workspace_bytes, kWorkspaceQuery));
    if (plan->workspace_bytes > 0)
        CC_TRY(check_disjoint(call, {{workspace, static_cast<i64>(plan->workspace_bytes), "workspace"}}, {e0, e1, e2}));
    return CC_SUCCESS;
}

// Forward and backward-data: one launch, of the direct kernel or of the pointwise GEMM, with the same
// (problem, input, input, output) arguments.
template <KernelId Direct, KernelId Gemm>
cc_status run_pass(const char* call, cc_conv_pass pass, cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
                   const float* in0, const float* in1, float* out, void* workspace, std::size_t workspace_bytes, void* stream)
{
    ConvPlan plan;
    CC_TRY(prepare(call, handle, problem, pass, options, in0, in1, out, workspace, workspace_bytes, &plan));
    const ConvText text{*problem};
    if (plan.implicit_gemm)
        return launch_implicit_gemm(*handle, plan.implicit, pass, *problem, in0, in1, out, workspace, stream, text, plan.accumulate);
    if (plan.tiled) return run_tiled(*handle, plan.tiled_plan, *problem, in0, in1, out, workspace, stream, text, plan.accumulate);
    if constexpr (Direct == KernelId::conv2d_backward_data) { // the data gradient may add into dx
        if (plan.gemm) return launch<Gemm>(*handle, plan.geometry, stream, text, *problem, in0, in1, out, plan.accumulate);
        return launch<Direct>(*handle, plan.geometry, stream, text, *problem, in0, in1, out, plan.accumulate);
    } else {
        if (plan.gemm) return launch<Gemm>(*handle, plan.geometry, stream, text, *problem, in0, in1, out);
        return launch<Direct>(*handle, plan.geometry, stream, text, *problem, in0, in1, out);
    }
}

// cc_conv_forward_fused's epilogue: the batch-norm parameters come with the second output or not at all, something is
// written, eps is usable, every given tensor is aligned, and the outputs are apart from every input and each other
// (the kernel reads the inputs through the read-only cache; the fallback's separate launches would not care, but the
// rule is the call's, not the path's). y may be NULL here; the caller checked x and w.
cc_status check_epilogue(const char* call, const cc_conv_problem& p, const cc_conv_epilogue* epilogue, const float* x, const float* w,
                         const float* y)
{
    CC_TRY(check_not_null(call, epilogue, "epilogue"));
    const cc_conv_epilogue& e = *epilogue;
    const bool activate = e.activated != nullptr;
    const Tensor parameters[] = {{e.bn_gamma, "epilogue->bn_gamma"}, {e.bn_beta, "epilogue->bn_beta"},
                                 {e.bn_mean, "epilogue->bn_mean"}, {e.bn_var, "epilogue->bn_var"}};
    for (const Tensor& t : parameters) {
        if (activate && t.pointer == nullptr)
            return fail(CC_ERROR_INVALID_VALUE,
                        "%s: epilogue->activated is set but %s is NULL: the second output relu(bn(y)) needs all four batch-norm "
                        "parameters (bn_gamma, bn_beta, bn_mean, bn_var)",
                        call, t.name);
        if (!activate && t.pointer != nullptr)
            return fail(CC_ERROR_INVALID_VALUE,
                        "%s: %s is set but epilogue->activated is NULL: batch-norm parameters without the output they would "
                        "produce (set activated, or leave the four parameters NULL)",
                        call, t.name);
        if (activate) CC_TRY(check_tensors(call, {t}));
    }
    if (y == nullptr && !activate)
        return fail(CC_ERROR_INVALID_VALUE, "%s: y and epilogue->activated are both NULL: the call would write nothing", call);
    if (activate) CC_TRY(check_finite_at_least(call, "epilogue->bn_eps", e.bn_eps, 0.0f, "finite and non-negative"));
    if (y != nullptr) CC_TRY(check_tensors(call, {{y, "y"}}));
    if (e.residual != nullptr) CC_TRY(check_tensors(call, {{e.residual, "epilogue->residual"}}));
    if (activate) CC_TRY(check_tensors(call, {{e.activated, "epilogue->activated"}}));

    const auto bytes = [](const void* pointer, i64 elements) { return pointer != nullptr ? elements * static_cast<i64>(sizeof(float)) : 0; };
    const i64 out = output_elements(p);
    const Extent ey{y, bytes(y, out), "y"}, eactivated{e.activated, bytes(e.activated, out), "epilogue->activated"},
        ex{x, bytes(x, input_elements(p)), "x"}, ew{w, bytes(w, weight_elements(p)), "w"},
        eresidual{e.residual, bytes(e.residual, out), "epilogue->residual"}, egamma{e.bn_gamma, bytes(e.bn_gamma, p.k), "epilogue->bn_gamma"},
        ebeta{e.bn_beta, bytes(e.bn_beta, p.k), "epilogue->bn_beta"}, emean{e.bn_mean, bytes(e.bn_mean, p.k), "epilogue->bn_mean"},
        evar{e.bn_var, bytes(e.bn_var, p.k), "epilogue->bn_var"};
    CC_TRY(check_disjoint(call, {ey, eactivated}, {ex, ew, eresidual, egamma, ebeta, emean, evar}));
    return check_disjoint(call, {ey}, {eactivated});
}

// The slots per channel of a batch-norm epilogue: `count`, one per block column of the plan's grid, so long as the
// batch-norm kernel that reads them indexes channels x slots x floats_per_slot with 32 bits (else CC_ERROR_NOT_SUPPORTED,
// naming the calls to run `instead`).
cc_status slots_of(const char* call, i64 count, int channels, int floats_per_slot, const char* instead, int* slots)
{
    if (product({channels, count, floats_per_slot}) > kMaxElements)
        return fail(CC_ERROR_NOT_SUPPORTED, "%s: %lld slots per channel for %d channels pass the batch-norm kernel's 32-bit indices: run %s instead",
                    call, static_cast<long long>(count), channels, instead);
    *slots = static_cast<int>(count);
    return CC_SUCCESS;
}

// That `name` (bytes long) holds channels x slots slots of floats_per_slot floats (slots from the call `query`); *needed:
// the bytes they take.
cc_status check_slot_bytes(const char* call, const char* name, std::size_t bytes, int channels, int slots, int floats_per_slot,
                           const char* query, i64* needed)
{
    *needed = product({channels, slots, floats_per_slot, static_cast<i64>(sizeof(float))});
    if (bytes < static_cast<std::size_t>(*needed))
        return fail(CC_ERROR_INVALID_VALUE, "%s: %s holds %zu bytes, but %d channels x %d slots (%s) x %d floats need %lld", call, name,
                    bytes, channels, slots, query, floats_per_slot, static_cast<long long>(*needed));
    return CC_SUCCESS;
}

// The forward plan of cc_conv_forward_bn_stats and its statistics slots per output channel: the implicit-GEMM forward
// kernels (store_statistics in kernels/implicit_gemm.cu) and the tiled ones (block_statistics in kernels/conv2d_tiled.cu)
// write them, one slot per block column of their grid; the direct and GEMM kernels do not.
cc_status plan_bn_stats(const char* call, const cc_conv_problem* problem, const cc_options* options, ConvPlan* plan, int* slots)
{
    CC_TRY(plan_pass(call, problem, CC_CONV_FORWARD, options, plan));
    if (!plan->implicit_gemm && !plan->tiled)
        return fail(CC_ERROR_NOT_SUPPORTED,
                    "%s: only the tensor-core (implicit-GEMM) and tiled forward kernels write batch-norm statistics, and this "
                    "problem's forward pass runs %s with these options: run cc_conv_forward (or cc_conv_forward_fused) and then "
                    "cc_batchnorm_train_forward instead",
                    call, kernel_name(pass_kernel(*plan, CC_CONV_FORWARD)));
    const i64 count = plan->implicit_gemm ? plan->implicit.geometry.grid.x : tiled_stats_slots(plan->tiled_plan);
    return slots_of(call, count, problem->k, CC_BN_STATS_FLOATS_PER_SLOT, "cc_conv_forward and then cc_batchnorm_train_forward", slots);
}

// The data-gradient plan of cc_conv_backward_data_bn_sums and its sums slots per input channel: only the 1x1 implicit-GEMM
// data-gradient kernel writes them (store_bn_sums in kernels/implicit_gemm.cu), one slot per block column of its grid.
// The sums are of da alone, so accumulate is refused.
cc_status plan_bn_sums(const char* call, const cc_conv_problem* problem, const cc_options* options, ConvPlan* plan, int* slots)
{
    CC_TRY(plan_pass(call, problem, CC_CONV_BACKWARD_DATA, options, plan));
    if (plan->accumulate)
        return fail(CC_ERROR_NOT_SUPPORTED,
                    "%s: options->accumulate is set, but the batch-norm sums are of da alone: run cc_conv_backward_data and then "
                    "cc_batchnorm_backward instead",
                    call);
    if (!plan->implicit_gemm || plan->implicit.kernel != KernelId::implicit_gemm_backward_data_1x1)
        return fail(CC_ERROR_NOT_SUPPORTED,
                    "%s: only the tensor-core (implicit-GEMM) data gradient of a 1x1 convolution with stride 1, no padding and groups 1 "
                    "writes batch-norm sums, and this problem's data gradient runs %s with these options: run cc_conv_backward_data "
                    "and then cc_batchnorm_backward instead",
                    call, kernel_name(pass_kernel(*plan, CC_CONV_BACKWARD_DATA)));
    return slots_of(call, plan->implicit.geometry.grid.x, problem->c, CC_BN_SUMS_FLOATS_PER_SLOT,
                    "cc_conv_backward_data and then cc_batchnorm_backward", slots);
}

// ---- The input's training batch norm applied by the 1x1 kernels as they read (cc_conv_input_bn) ----
constexpr const char* kInputBnInstead =
    "run cc_batchnorm_train_forward (which stores a = relu?(bn(z))) and then the plain call (cc_conv_forward, "
    "cc_conv_forward_bn_stats or cc_conv_backward) on a instead";

// Whether a planned pass reads its input through the batch norm: a 1x1 problem with stride 1, no padding and groups 1 (the
// G unit's pointwise convolution), run by the tensor-core kernels; CC_ERROR_NOT_SUPPORTED otherwise.
cc_status check_input_bn_plan(const char* call, const cc_conv_problem& p, const ConvPlan& plan, cc_conv_pass pass)
{
    if (!is_pointwise(p) || p.stride_h != 1 || p.stride_w != 1)
        return fail(CC_ERROR_NOT_SUPPORTED,
                    "%s: only 1x1 convolutions with stride 1, no padding and groups 1 apply the input's batch norm as they read it, "
                    "not r=%d s=%d stride=%dx%d pad=%dx%d groups=%d: %s",
                    call, p.r, p.s, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.groups, kInputBnInstead);
    if (!plan.implicit_gemm)
        return fail(CC_ERROR_NOT_SUPPORTED,
                    "%s: only the tensor-core (implicit-GEMM, CC_PRECISION_TF32) kernels apply the input's batch norm as they read "
                    "it, and this problem's pass runs %s with these options: %s",
                    call, kernel_name(pass_kernel(plan, pass)), kInputBnInstead);
    return CC_SUCCESS;
}

// plan_pass, then check_input_bn_plan.
cc_status plan_input_bn(const char* call, const cc_conv_problem* problem, cc_conv_pass pass, const cc_options* options, ConvPlan* plan)
{
    CC_TRY(plan_pass(call, problem, pass, options, plan));
    return check_input_bn_plan(call, *problem, *plan, pass);
}

// The four arrays of cc_conv_input_bn (c floats each): given, aligned; their extents for the overlap checks.
struct InputBnExtents {
    Extent mean, invstd, gamma, beta;
};
cc_status check_input_bn(const char* call, const cc_conv_problem& p, const cc_conv_input_bn* bn, InputBnExtents* extents)
{
    CC_TRY(check_not_null(call, bn, "bn"));
    CC_TRY(check_tensors(call, {{bn->mean, "bn->mean"}, {bn->invstd, "bn->invstd"}, {bn->gamma, "bn->gamma"}, {bn->beta, "bn->beta"}}));
    const i64 bytes = i64{p.c} * static_cast<i64>(sizeof(float));
    *extents = InputBnExtents{{bn->mean, bytes, "bn->mean"}, {bn->invstd, bytes, "bn->invstd"}, {bn->gamma, bytes, "bn->gamma"},
                              {bn->beta, bytes, "bn->beta"}};
    return CC_SUCCESS;
}

} // namespace
} // namespace cc

using namespace cc;

extern "C" {

CC_API cc_status cc_conv_init(cc_conv_problem* problem, int n, int c, int h, int w, int k, int r, int s, int pad_h, int pad_w,
                              int stride_h, int stride_w, int groups)
{
    CC_TRY(check_not_null("cc_conv_init", problem, "problem"));
    cc_conv_problem p{};
    p.n = n;
    p.c = c;
    p.h = h;
    p.w = w;
    p.k = k;
    p.r = r;
    p.s = s;
    p.pad_h = pad_h;
    p.pad_w = pad_w;
    p.stride_h = stride_h;
    p.stride_w = stride_w;
    p.groups = groups;
    // Derived only where defined; validate() reports the size that makes them undefined. The checked
    // 64-bit value fits an int whenever validation passes (p <= h + 2*pad_h is bounded by y's size).
    const bool derivable = stride_h > 0 && stride_w > 0 && pad_h >= 0 && pad_w >= 0;
    p.p = derivable ? static_cast<int>(std::min<i64>(output_extent(h, pad_h, r, stride_h), kMaxElements)) : 0;
    p.q = derivable ? static_cast<int>(std::min<i64>(output_extent(w, pad_w, s, stride_w), kMaxElements)) : 0;
    p.layout = CC_LAYOUT_NCHW;
    p.dtype = CC_DTYPE_F32;
    *problem = p;
    return validate("cc_conv_init", problem);
}

CC_API cc_status cc_conv_validate(const cc_conv_problem* problem) { return validate("cc_conv_validate", problem); }

CC_API cc_status cc_conv_workspace_size(const cc_conv_problem* problem, cc_conv_pass pass, const cc_options* options, size_t* bytes)
{
    constexpr const char* call = "cc_conv_workspace_size";
    CC_TRY(check_not_null(call, bytes, "bytes"));
    if (pass == CC_CONV_BACKWARD) {
        BackwardPlan both;
        CC_TRY(plan_backward(call, problem, options, &both));
        *bytes = both.workspace_bytes;
        return CC_SUCCESS;
    }
    ConvPlan plan;
    if (pass == CC_CONV_FORWARD_BN_STATS) {
        int slots = 0;
        CC_TRY(plan_bn_stats(call, problem, options, &plan, &slots));
    } else {
        CC_TRY(plan_pass(call, problem, pass, options, &plan));
    }
    *bytes = plan.workspace_bytes;
    return CC_SUCCESS;
}

CC_API cc_status cc_conv_kernel_names(const cc_conv_problem* problem, cc_conv_pass pass, const cc_options* options, char* text,
                                      size_t capacity)
{
    constexpr const char* call = "cc_conv_kernel_names";
    if (text == nullptr || capacity == 0)
        return fail(CC_ERROR_INVALID_VALUE, "%s: text is NULL or capacity is 0 (no room for the terminating NUL)", call);
    if (pass == CC_CONV_BACKWARD) {
        BackwardPlan both;
        CC_TRY(plan_backward(call, problem, options, &both));
        if (both.fused) format_into(text, capacity, "%s", kernel_name(both.launch.kernel));
        else
            format_into(text, capacity, "%s %s", kernel_name(pass_kernel(both.data, CC_CONV_BACKWARD_DATA)),
                        kernel_name(pass_kernel(both.weight, CC_CONV_BACKWARD_WEIGHT)));
        return CC_SUCCESS;
    }
    ConvPlan plan;
    if (pass == CC_CONV_FORWARD_BN_STATS) {
        int slots = 0;
        CC_TRY(plan_bn_stats(call, problem, options, &plan, &slots));
        // Without a residual (which the tiled kernels add in another kernel, tiled_bn_stats_kernel).
        const KernelId forward = plan.tiled ? tiled_bn_stats_kernel(plan.tiled_plan, false) : pass_kernel(plan, CC_CONV_FORWARD);
        format_into(text, capacity, "%s %s", kernel_name(forward), kernel_name(KernelId::batchnorm_train_forward_from_stats));
        return CC_SUCCESS;
    }
    CC_TRY(plan_pass(call, problem, pass, options, &plan));
    format_into(text, capacity, "%s", kernel_name(pass_kernel(plan, pass)));
    return CC_SUCCESS;
}

CC_API cc_status cc_conv_forward(cc_handle handle, const cc_conv_problem* problem, const cc_options* options, const float* x,
                                 const float* w, float* y, void* workspace, size_t workspace_bytes, void* stream)
{
    return run_pass<KernelId::conv2d_forward, KernelId::pointwise_forward>("cc_conv_forward", CC_CONV_FORWARD, handle, problem, options,
                                                                          x, w, y, workspace, workspace_bytes, stream);
}

CC_API cc_status cc_conv_forward_fused(cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
                                       const cc_conv_epilogue* epilogue, const float* x, const float* w, float* y, void* workspace,
                                       size_t workspace_bytes, void* stream)
{
    constexpr const char* call = "cc_conv_forward_fused";
    CC_TRY(check_handle(call, handle));
    ConvPlan plan;
    CC_TRY(plan_pass(call, problem, CC_CONV_FORWARD, options, &plan));
    const cc_conv_problem& p = *problem;
    CC_TRY(check_tensors(call, {{x, "x"}, {w, "w"}}));
    CC_TRY(check_epilogue(call, p, epilogue, x, w, y));
    CC_TRY(check_workspace(call, workspace, workspace_bytes, plan.workspace_bytes, kWorkspaceQuery));
    const cc_conv_epilogue& e = *epilogue;
    if (plan.implicit_gemm)
        return launch_implicit_gemm(*handle, plan.implicit, CC_CONV_FORWARD, p, x, w, y, workspace, stream, ConvText{p}, 0, e);

    // Every other variant: the plain forward, then the residual add and the eval batch norm + ReLU as their own launches
    // (the same definition, the same bits as the fused store). Without y the sum is formed in `activated` and normalised
    // in place (both calls allow it).
    float* sum = y != nullptr ? y : e.activated;
    CC_TRY(cc_conv_forward(handle, problem, options, x, w, sum, workspace, workspace_bytes, stream));
    if (e.residual != nullptr) {
        const cc_elementwise_problem length{output_elements(p)};
        CC_TRY(cc_add(handle, &length, sum, e.residual, sum, stream));
    }
    if (e.activated == nullptr) return CC_SUCCESS;
    const cc_batchnorm_problem bn{.n = p.n, .c = p.k, .h = p.p, .w = p.q, .eps = e.bn_eps, .momentum = 0.0f, .relu = 1, .accumulate = 0};
    return cc_batchnorm_eval_forward(handle, &bn, sum, e.bn_gamma, e.bn_beta, e.bn_mean, e.bn_var, e.activated, stream);
}

CC_API cc_status cc_conv_bn_stats_slots(const cc_conv_problem* problem, const cc_options* options, int* slots)
{
    constexpr const char* call = "cc_conv_bn_stats_slots";
    CC_TRY(check_not_null(call, slots, "slots"));
    ConvPlan plan;
    return plan_bn_stats(call, problem, options, &plan, slots);
}

CC_API cc_status cc_conv_forward_bn_stats(cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
                                          const float* residual, const float* x, const float* w, float* y, float* stats,
                                          size_t stats_bytes, void* workspace, size_t workspace_bytes, void* stream)
{
    constexpr const char* call = "cc_conv_forward_bn_stats";
    CC_TRY(check_handle(call, handle));
    ConvPlan plan;
    int slots = 0;
    CC_TRY(plan_bn_stats(call, problem, options, &plan, &slots));
    const cc_conv_problem& p = *problem;
    CC_TRY(check_tensors(call, {{x, "x"}, {w, "w"}, {y, "y"}, {stats, "stats"}}));
    if (residual != nullptr) CC_TRY(check_tensors(call, {{residual, "residual"}}));
    i64 needed = 0;
    CC_TRY(check_slot_bytes(call, "stats", stats_bytes, p.k, slots, CC_BN_STATS_FLOATS_PER_SLOT, "cc_conv_bn_stats_slots", &needed));
    const auto bytes = [](i64 elements) { return elements * static_cast<i64>(sizeof(float)); };
    const Extent ex{x, bytes(input_elements(p)), "x"}, ew{w, bytes(weight_elements(p)), "w"},
        eresidual{residual, residual != nullptr ? bytes(output_elements(p)) : 0, "residual"}, ey{y, bytes(output_elements(p)), "y"},
        estats{stats, needed, "stats"};
    CC_TRY(check_disjoint(call, {ey, estats}, {ex, ew, eresidual}));
    CC_TRY(check_disjoint(call, {ey}, {estats}));
    CC_TRY(check_workspace(call, workspace, workspace_bytes, plan.workspace_bytes, kWorkspaceQuery));
    if (plan.tiled) return run_tiled_bn_stats(*handle, plan.tiled_plan, p, x, w, residual, y, stats, stream, ConvText{p});
    cc_conv_epilogue epilogue{};
    epilogue.residual = residual;
    return launch_implicit_gemm(*handle, plan.implicit, CC_CONV_FORWARD, p, x, w, y, workspace, stream, ConvText{p}, 0, epilogue, stats);
}

CC_API cc_status cc_conv_input_bn_supported(const cc_conv_problem* problem, const cc_options* options)
{
    constexpr const char* call = "cc_conv_input_bn_supported";
    // Every pass the two calls may run: the forward and both gradients (options->accumulate is cc_conv_backward_input_bn's
    // da's, so it is not held against the forward here).
    const cc_options o = weight_options_of(options);
    const cc_conv_pass passes[] = {CC_CONV_FORWARD, CC_CONV_BACKWARD_DATA, CC_CONV_BACKWARD_WEIGHT};
    for (const cc_conv_pass pass : passes) {
        ConvPlan plan;
        CC_TRY(plan_input_bn(call, problem, pass, &o, &plan));
    }
    return CC_SUCCESS;
}

CC_API cc_status cc_conv_forward_input_bn(cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
                                          const cc_conv_input_bn* bn, const float* residual, const float* z, const float* w, float* y,
                                          float* stats, size_t stats_bytes, void* workspace, size_t workspace_bytes, void* stream)
{
    constexpr const char* call = "cc_conv_forward_input_bn";
    CC_TRY(check_handle(call, handle));
    ConvPlan plan;
    CC_TRY(plan_input_bn(call, problem, CC_CONV_FORWARD, options, &plan));
    int slots = 0;
    if (stats != nullptr) CC_TRY(plan_bn_stats(call, problem, options, &plan, &slots)); // the same forward plan, and its slots
    const cc_conv_problem& p = *problem;
    InputBnExtents e;
    CC_TRY(check_input_bn(call, p, bn, &e));
    CC_TRY(check_tensors(call, {{z, "z"}, {w, "w"}, {y, "y"}}));
    if (residual != nullptr) CC_TRY(check_tensors(call, {{residual, "residual"}}));
    i64 needed = 0;
    if (stats != nullptr)
        CC_TRY(check_slot_bytes(call, "stats", stats_bytes, p.k, slots, CC_BN_STATS_FLOATS_PER_SLOT, "cc_conv_bn_stats_slots", &needed));
    const auto bytes = [](i64 elements) { return elements * static_cast<i64>(sizeof(float)); };
    const Extent ez{z, bytes(input_elements(p)), "z"}, ew{w, bytes(weight_elements(p)), "w"},
        eresidual{residual, residual != nullptr ? bytes(output_elements(p)) : 0, "residual"}, ey{y, bytes(output_elements(p)), "y"},
        estats{stats, needed, "stats"};
    CC_TRY(check_disjoint(call, {ey, estats}, {ez, ew, eresidual, e.mean, e.invstd, e.gamma, e.beta}));
    CC_TRY(check_disjoint(call, {ey}, {estats}));
    CC_TRY(check_workspace(call, workspace, workspace_bytes, plan.workspace_bytes, kWorkspaceQuery));
    cc_conv_epilogue epilogue{};
    epilogue.residual = residual;
    return launch_implicit_gemm(*handle, plan.implicit, CC_CONV_FORWARD, p, z, w, y, workspace, stream, ConvText{p}, 0, epilogue, stats, bn);
}

CC_API cc_status cc_conv_backward_data(cc_handle handle, const cc_conv_problem* problem, const cc_options* options, const float* dy,
                                       const float* w, float* dx, void* workspace, size_t workspace_bytes, void* stream)
{
    return run_pass<KernelId::conv2d_backward_data, KernelId::pointwise_backward_data>(
        "cc_conv_backward_data", CC_CONV_BACKWARD_DATA, handle, problem, options, dy, w, dx, workspace, workspace_bytes, stream);
}

CC_API cc_status cc_conv_bn_sum_slots(const cc_conv_problem* problem, const cc_options* options, int* slots)
{
    constexpr const char* call = "cc_conv_bn_sum_slots";
    CC_TRY(check_not_null(call, slots, "slots"));
    ConvPlan plan;
    return plan_bn_sums(call, problem, options, &plan, slots);
}

CC_API cc_status cc_conv_backward_data_bn_sums(cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
                                               const cc_conv_input_bn* bn, const float* z, const float* dy, const float* w, float* da,
                                               float* sums, size_t sums_bytes, void* workspace, size_t workspace_bytes, void* stream)
{
    constexpr const char* call = "cc_conv_backward_data_bn_sums";
    CC_TRY(check_handle(call, handle));
    ConvPlan plan;
    int slots = 0;
    CC_TRY(plan_bn_sums(call, problem, options, &plan, &slots));
    const cc_conv_problem& p = *problem;
    CC_TRY(check_not_null(call, bn, "bn"));
    CC_TRY(check_tensors(call, {{bn->mean, "bn->mean"}, {bn->invstd, "bn->invstd"}, {bn->gamma, "bn->gamma"}, {bn->beta, "bn->beta"},
                                {z, "z"}, {dy, "dy"}, {w, "w"}, {da, "da"}, {sums, "sums"}}));
    i64 needed = 0;
    CC_TRY(check_slot_bytes(call, "sums", sums_bytes, p.c, slots, CC_BN_SUMS_FLOATS_PER_SLOT, "cc_conv_bn_sum_slots", &needed));
    const auto bytes = [](i64 elements) { return elements * static_cast<i64>(sizeof(float)); };
    const i64 channel = bytes(p.c);
    const Extent ez{z, bytes(input_elements(p)), "z"}, edy{dy, bytes(output_elements(p)), "dy"}, ew{w, bytes(weight_elements(p)), "w"},
        emean{bn->mean, channel, "bn->mean"}, einvstd{bn->invstd, channel, "bn->invstd"}, egamma{bn->gamma, channel, "bn->gamma"},
        ebeta{bn->beta, channel, "bn->beta"}, eda{da, bytes(input_elements(p)), "da"}, esums{sums, needed, "sums"};
    CC_TRY(check_disjoint(call, {eda, esums}, {ez, edy, ew, emean, einvstd, egamma, ebeta}));
    CC_TRY(check_disjoint(call, {eda}, {esums}));
    CC_TRY(check_workspace(call, workspace, workspace_bytes, plan.workspace_bytes, kWorkspaceQuery));
    return launch_implicit_gemm_bn_sums(*handle, plan.implicit, p, dy, w, da, *bn, z, sums, stream, ConvText{p});
}

CC_API cc_status cc_conv_backward_weight(cc_handle handle, const cc_conv_problem* problem, const cc_options* options, const float* x,
                                         const float* dy, float* dw, void* workspace, size_t workspace_bytes, void* stream)
{
    ConvPlan plan;
    CC_TRY(prepare("cc_conv_backward_weight", handle, problem, CC_CONV_BACKWARD_WEIGHT, options, x, dy, dw, workspace,
                   workspace_bytes, &plan));
    const ConvText text{*problem};
    if (plan.implicit_gemm)
        return launch_implicit_gemm(*handle, plan.implicit, CC_CONV_BACKWARD_WEIGHT, *problem, x, dy, dw, workspace, stream, text);
    if (plan.tiled) return run_tiled(*handle, plan.tiled_plan, *problem, x, dy, dw, workspace, stream, text);
    if (plan.gemm)
        return launch_split<KernelId::pointwise_backward_weight>(*handle, plan.split, stream, text, dw, workspace, *problem, x, dy);
    return launch<KernelId::conv2d_backward_weight>(*handle, plan.geometry, stream, text, *problem, x, dy, dw);
}

CC_API cc_status cc_conv_backward(cc_handle handle, const cc_conv_problem* problem, const cc_options* options, const float* x,
                                  const float* dy, const float* w, float* dx, float* dw, void* workspace, size_t workspace_bytes,
                                  void* stream)
{
    constexpr const char* call = "cc_conv_backward";
    if (dx == nullptr && dw == nullptr)
        return fail(CC_ERROR_INVALID_VALUE, "%s: dx and dw are both NULL: the call would write nothing", call);
    // One gradient: exactly its own call (the workspace the CC_CONV_BACKWARD query sized holds either pass's).
    if (dw == nullptr) return cc_conv_backward_data(handle, problem, options, dy, w, dx, workspace, workspace_bytes, stream);
    const cc_options weight_options = weight_options_of(options);
    if (dx == nullptr) return cc_conv_backward_weight(handle, problem, &weight_options, x, dy, dw, workspace, workspace_bytes, stream);

    CC_TRY(check_handle(call, handle));
    BackwardPlan plan;
    CC_TRY(plan_backward(call, problem, options, &plan));
    const cc_conv_problem& p = *problem;
    CC_TRY(check_backward_tensors(call, p, plan, {x, "x"}, dy, w, {dx, "dx"}, dw, workspace, workspace_bytes));

    const ConvText text{p};
    if (plan.fused && plan.data.implicit_gemm)
        return launch_implicit_gemm_backward(*handle, plan.launch, plan.data.implicit, plan.weight.implicit, p, x, dy, w, dx, dw, workspace,
                                             stream, text, plan.data.accumulate);
    if (plan.fused)
        return run_tiled_backward(*handle, plan.launch, plan.data.tiled_plan, plan.weight.tiled_plan, p, x, dy, w, dx, dw, workspace, stream,
                                  text, plan.data.accumulate);
    // Two launches: each pass's call with its part of the workspace.
    void* data_workspace = plan.data.workspace_bytes > 0 ? static_cast<unsigned char*>(workspace) + plan.data_offset : nullptr;
    CC_TRY(cc_conv_backward_data(handle, problem, options, dy, w, dx, data_workspace, plan.data.workspace_bytes, stream));
    return cc_conv_backward_weight(handle, problem, &weight_options, x, dy, dw, workspace, plan.weight.workspace_bytes, stream);
}

CC_API cc_status cc_conv_backward_input_bn(cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
                                           const cc_conv_input_bn* bn, const float* z, const float* dy, const float* w, float* da, float* dw,
                                           void* workspace, size_t workspace_bytes, void* stream)
{
    constexpr const char* call = "cc_conv_backward_input_bn";
    if (da == nullptr && dw == nullptr)
        return fail(CC_ERROR_INVALID_VALUE, "%s: da and dw are both NULL: the call would write nothing", call);
    const auto bytes = [](i64 elements) { return elements * static_cast<i64>(sizeof(float)); };
    InputBnExtents e;
    // One gradient: that pass's checks and launch (as cc_conv_backward's single passes), on the input-batch-norm kernel for dw.
    if (dw == nullptr || da == nullptr) {
        const cc_options weight_options = weight_options_of(options);
        const cc_conv_pass pass = dw == nullptr ? CC_CONV_BACKWARD_DATA : CC_CONV_BACKWARD_WEIGHT;
        const float* in0 = dw == nullptr ? dy : z;
        const float* in1 = dw == nullptr ? w : dy;
        float* out = dw == nullptr ? da : dw;
        ConvPlan plan;
        CC_TRY(prepare(call, handle, problem, pass, dw == nullptr ? options : &weight_options, in0, in1, out, workspace, workspace_bytes, &plan));
        CC_TRY(check_input_bn_plan(call, *problem, plan, pass));
        CC_TRY(check_input_bn(call, *problem, bn, &e));
        const ConvText text{*problem};
        const i64 out_elements = dw == nullptr ? input_elements(*problem) : weight_elements(*problem);
        CC_TRY(check_disjoint(call, {{out, bytes(out_elements), dw == nullptr ? "da" : "dw"}}, {e.mean, e.invstd, e.gamma, e.beta}));
        if (dw == nullptr)
            return launch_implicit_gemm(*handle, plan.implicit, pass, *problem, dy, w, da, workspace, stream, text, plan.accumulate);
        return launch_implicit_gemm(*handle, plan.implicit, pass, *problem, z, dy, dw, workspace, stream, text, 0, cc_conv_epilogue{}, nullptr, bn);
    }

    CC_TRY(check_handle(call, handle));
    BackwardPlan plan;
    CC_TRY(plan_backward(call, problem, options, &plan));
    const cc_conv_problem& p = *problem;
    CC_TRY(check_input_bn_plan(call, p, plan.data, CC_CONV_BACKWARD_DATA));
    CC_TRY(check_input_bn_plan(call, p, plan.weight, CC_CONV_BACKWARD_WEIGHT));
    CC_TRY(check_input_bn(call, p, bn, &e));
    CC_TRY(check_backward_tensors(call, p, plan, {z, "z"}, dy, w, {da, "da"}, dw, workspace, workspace_bytes,
                                  {e.mean, e.invstd, e.gamma, e.beta}));
    const ConvText text{p};
    if (plan.fused)
        return launch_implicit_gemm_backward(*handle, plan.launch, plan.data.implicit, plan.weight.implicit, p, z, dy, w, da, dw, workspace,
                                             stream, text, plan.data.accumulate, bn);
    // Two launches (a grid past CUDA's limit for the fused one): each pass with its part of the workspace.
    void* data_workspace = plan.data.workspace_bytes > 0 ? static_cast<unsigned char*>(workspace) + plan.data_offset : nullptr;
    CC_TRY(launch_implicit_gemm(*handle, plan.data.implicit, CC_CONV_BACKWARD_DATA, p, dy, w, da, data_workspace, stream, text,
                                plan.data.accumulate));
    return launch_implicit_gemm(*handle, plan.weight.implicit, CC_CONV_BACKWARD_WEIGHT, p, z, dy, dw, workspace, stream, text, 0,
                                cc_conv_epilogue{}, nullptr, bn);
}

} // extern "C"
