// The tensor-core implicit-GEMM variant of the convolution family (see conv_implicit_gemm.h and the kernels'
// header comment in kernels/implicit_gemm.cu).
#include "conv_implicit_gemm.h"

#include "checks.h"
#include "gemm_plan.h"

#include <algorithm>
#include <cstdint>
#include <numeric>

namespace cc {
namespace {

using i64 = std::int64_t;

i64 tiles(i64 extent, i64 tile) { return (extent + tile - 1) / tile; }

bool filter_is(const cc_conv_problem& p, int size) { return p.r == size && p.s == size; }

// The 1x1 convolution whose positions are x's pixels, one for one: stride 1, no padding.
bool one_to_one(const cc_conv_problem& p) { return filter_is(p, 1) && p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0; }

bool aligned16(const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0; }

i64 positions(const cc_conv_problem& p) { return i64{p.n} * p.p * p.q; }

// Grid (ceil(columns / tile columns), ceil(rows / tile rows), layers) of the tile's threads with its pipeline's shared memory.
cc_status geometry_for(const char* call, const ImplicitGemmTile& tile, i64 rows, i64 columns, i64 layers, Geometry* geometry)
{
    const i64 x = tiles(columns, tile.columns), y = tiles(rows, tile.rows);
    if (y > kMaxGridYZ || layers > kMaxGridYZ || x > kMaxElements)
        return fail(CC_ERROR_INVALID_VALUE,
                    "%s: the implicit GEMM needs a grid of %lldx%lldx%lld blocks, over CUDA's limits (2147483647x65535x65535)",
                    call, static_cast<long long>(x), static_cast<long long>(y), static_cast<long long>(layers));
    geometry->grid = Dim3{static_cast<unsigned>(x), static_cast<unsigned>(y), static_cast<unsigned>(layers)};
    geometry->block = Dim3{tile.threads, 1, 1};
    geometry->shared_bytes = tile.shared_bytes;
    return CC_SUCCESS;
}

// The most window rows (cheapconv/halo_plan.h) a block of `columns` consecutive output positions spans, stride 1: from
// its first column's output row to its last's, plus 2, where crossing into the next image also crosses that image's
// 2 extra window rows (P + 2 per image). A block's span depends only on where it starts in an image; blocks start at
// multiples of `columns`, so every start that is a multiple of gcd(columns, P Q) is tried (at most 4096 of them; past
// that, the bound of the worst start: rows touched, and images crossed, by `columns` positions from any offset).
i64 window_rows(const cc_conv_problem& p, i64 columns)
{
    const i64 q = p.q, plane = i64{p.p} * q, height = i64{p.p} + 2, total = positions(p);
    const auto row_of = [&](i64 j) { return j / plane * height + j % plane / q; };
    const i64 step = std::gcd(columns, plane);
    if (plane / step > 4096) return (columns + q - 2) / q + 2 * ((columns + plane - 2) / plane) + 3;
    i64 most = 0;
    for (i64 start = 0; start < std::min(plane, total); start += step)
        most = std::max(most, row_of(std::min(start + columns, total) - 1) - row_of(start) + 3);
    return most;
}

// Two runs of at most 10 consecutive words (a fragment's 8 columns and the 2 more taps of its row) whose starts are
// `apart` words apart hit disjoint banks when apart mod 32 is in [10, 22].
bool disjoint_banks(i64 apart) { const i64 m = (apart % 32 + 32) % 32; return m >= 10 && m <= 22; }

i64 round_up4(i64 v) { return (v + 3) / 4 * 4; }

// The x window of the 3x3 forward kernels, where it pays and fits; {} (row_stride 0) where they gather x per tap. Stride 2
// keeps the gather: in this layout its taps would read every other column of a window row (2-way bank conflicts on the
// fragment reads) and a block would hold twice the window rows per output row, for 3 of the 59 3x3 forward launches of
// the WRN-40-2 -> G(4) step (12.6 + 13.0 + 6.4 µs modelled by profile --catalogue, of a 5750 µs step).
// The strides: a B fragment read is, for each of 4 consecutive reduction indices (lanes t), 8 consecutive columns of
// one output row (lanes g; Q % 8 == 0) at the tap's offset; 4 consecutive taps lie in at most 2 window rows, each run
// at most 10 words, and those two rows are either consecutive (row_stride apart) or the last of channel c and the
// first of c + 1 (slot_stride - 2 row_stride apart, or -7 slot_stride - 2 row_stride where the ring wraps). Every such
// distance mod 32 in [10, 22] (disjoint_banks) keeps the 32 lanes in distinct banks or on the same word. Rows and slots
// are multiples of 4 floats (16-byte copies land aligned), and row_stride / 4 is odd (the copies' bank-spread order,
// XWindow::row_and_piece, needs it), so row_stride mod 32 is 12 or 20, and for each a slot_stride mod 32 exists (12: 4,
// 20: 20); each search ends within 8 steps.
cc_halo_plan halo_plan_for(const cc_conv_problem& p, ForwardTile tile)
{
    if (!filter_is(p, 3) || p.stride_h != 1 || p.stride_w != 1) return {};
    const ImplicitGemmTile& shape = tile == ForwardTile::wide ? kImplicitGemmWide : tile == ForwardTile::flat ? kImplicitGemmFlat : kImplicitGemmSquare;
    const i64 room = tile == ForwardTile::square ? kImplicitGemmWindowFloatsSquare : kImplicitGemmWindowFloatsWideOrFlat;
    const i64 lead = round_up4(p.pad_w), width = p.w + 2 * i64{p.pad_w}, rows = window_rows(p, shape.columns);
    i64 row_stride = round_up4(width);
    while (!disjoint_banks(row_stride) || row_stride / 4 % 2 == 0) row_stride += 4;
    i64 slot_stride = round_up4(lead + (rows - 1) * row_stride + p.w + p.pad_w);
    while (!disjoint_banks(slot_stride - 2 * row_stride) || !disjoint_banks(-(CC_HALO_SLOTS - 1) * slot_stride - 2 * row_stride))
        slot_stride += 4;
    if (CC_HALO_SLOTS * slot_stride > room) return {};
    return cc_halo_plan{static_cast<int>(row_stride), static_cast<int>(slot_stride), static_cast<int>(lead), 0};
}

// The stride-1 data gradient as the forward convolution the kernels compute (backward_data in implicit_gemm.cu): dy as
// the input (K channels, P x Q), the turned filter's C outputs, padding R - 1 - pad, over dx's H x W positions. Its x
// window is dy's window for cc_implicit_gemm_backward_data_3x3_kernel, planned by the forward pass's rule on the square tile.
cc_conv_problem data_gradient_as_forward(const cc_conv_problem& p)
{
    cc_conv_problem f = p;
    f.c = p.k;
    f.h = p.p;
    f.w = p.q;
    f.k = p.c;
    f.pad_h = p.r - 1 - p.pad_h;
    f.pad_w = p.s - 1 - p.pad_w;
    f.p = p.h;
    f.q = p.w;
    return f;
}

// The forward pass's GEMM: M = K / groups rows, N = N P Q columns, one layer per group.
cc_status forward_plan(const char* call, const cc_conv_problem& p, ForwardTile tile, ImplicitGemmPlan* plan)
{
    plan->window = halo_plan_for(p, tile);
    switch (tile) {
    case ForwardTile::wide: plan->kernel = KernelId::implicit_gemm_forward_3x3_wide; break;
    case ForwardTile::flat: plan->kernel = KernelId::implicit_gemm_forward_3x3_flat; break;
    case ForwardTile::square:
        plan->kernel = filter_is(p, 3) ? KernelId::implicit_gemm_forward_3x3 : KernelId::implicit_gemm_forward_1x1;
        break;
    }
    const ImplicitGemmTile& shape = tile == ForwardTile::wide ? kImplicitGemmWide : tile == ForwardTile::flat ? kImplicitGemmFlat : kImplicitGemmSquare;
    return geometry_for(call, shape, p.k / p.groups, positions(p), p.groups, &plan->geometry);
}

// Which operands the kernels may copy 16 bytes at a time (the kernels' `vectorized` argument): four consecutive
// elements along the contiguous dimension must be contiguous, in one image or row, and 16-byte aligned.
int vectorized_operands(const cc_conv_problem& p, cc_conv_pass pass, const ImplicitGemmPlan& plan, const void* in0, const void* in1)
{
    const bool pixels = one_to_one(p) && (i64{p.p} * p.q) % 4 == 0; // runs of 4 positions are runs of 4 pixels
    switch (pass) {
    case CC_CONV_FORWARD: { // in0 = x, in1 = w
        const bool weights = (i64{p.c / p.groups} * p.r * p.s) % 4 == 0 && aligned16(in1);
        return (weights ? 1 : 0) | (pixels && aligned16(in0) ? 2 : 0);
    }
    case CC_CONV_BACKWARD_DATA: // in0 = dy, in1 = w
        return (p.c % 4 == 0 && aligned16(in1) ? 1 : 0) | (pixels && aligned16(in0) ? 2 : 0);
    case CC_CONV_BACKWARD_WEIGHT: // in0 = x, in1 = dy; a split starts at a multiple of its chunk
        return pixels && plan.chunk % 4 == 0 && aligned16(in0) && aligned16(in1) ? 1 : 0;
    case CC_CONV_BACKWARD:
    case CC_CONV_FORWARD_BN_STATS: break; // never planned as one pass: cc_conv_backward plans both apart
    }
    return 0;
}

} // namespace

bool implicit_gemm_implements(const cc_conv_problem& p, cc_conv_pass pass)
{
    if (!filter_is(p, 1) && !filter_is(p, 3)) return false;
    if (pass != CC_CONV_BACKWARD_DATA) return true;
    // The data gradient as the forward convolution of dy (dilated for stride 2) with the turned filter: stride 1 or 2
    // in both directions, and a padding the turned window can mirror (pad <= r - 1); the 1x1 kernel has no groups.
    if (filter_is(p, 1)) return one_to_one(p) && p.groups == 1;
    return p.stride_h == p.stride_w && (p.stride_h == 1 || p.stride_h == 2) && p.pad_h <= 2 && p.pad_w <= 2;
}

bool implicit_gemm_preferred(const cc_conv_problem& p, cc_conv_pass pass)
{
    if (!implicit_gemm_implements(p, pass)) return false;
    if (filter_is(p, 1)) return true;
    const i64 per_group = std::min(p.c / p.groups, p.k / p.groups);
    if (p.groups == 1) return per_group >= 8;
    // Grouped 3x3: the roofline model of the catalogue's grouped problems (profile --catalogue with --algo tiled and
    // --algo implicit-gemm, bench/results/profile-2026-11-29-grouped-choice.md) has the tiled kernels faster below 16
    // channels per group in the forward pass and below 32 in the backward passes, whose smaller per-group GEMMs leave
    // more of each mma tile and of the im2col gather unused.
    return per_group >= (pass == CC_CONV_FORWARD ? 16 : 32);
}

// The wide tile reads each block's strip of the weights (A) once for 128 columns instead of 64, so the L2 sectors per
// MAC fall by 16% (Kg = 32) to 24% (Kg = 64, 128): L2 is what binds the dense 3x3 forward passes at batch 128. But it
// makes half as many blocks, and the model (like the GPU) gives a grid that leaves SMs idle only their share of the L2
// bandwidth. So: wide while its grid keeps at least 7/8 of the 132 SMs of an H100 busy (the profile's model; 108 on an
// A100), i.e. while idle SMs cost less than the sectors saved. Modelled on profile --catalogue
// shapes/wrn40-2-moonshine.txt, forward, square -> wide tile, µs: 128 blocks (Kg = 128 at 8x8) 18.5 -> 15.2 and
// 14.1 -> 12.6, taken; 64 blocks (Kg = 64 at 8x8) 7.0 -> 9.0 and 8.2 -> 12.6, refused; 256 and more blocks 8.9 -> 8.2,
// 19.3 -> 15.8, 15.5 -> 14.4, 16.8 -> 15.4, 29.1 -> 26.8, 12.0 -> 11.3, 14.6 -> 13.0 (grouped by 4: 4-11% less).
// With at most 32 filters per group, the flat tile (32 rows, the same columns and grid) instead: no warp multiplies rows
// past M, so the shared-memory wavefronts that bound those problems on the 64-row tiles fall; wide -> flat, µs: 8.2 ->
// 8.0, 14.4 -> 12.8, 15.4 -> 15.3, 26.8 -> 25.3, 11.3 -> 11.3 (grouped by 4: 5.1 -> 4.7, 8.2 -> 7.9, 14.4 -> 13.1,
// 6.5 -> 6.4), every one now L2-bound.
ForwardTile implicit_gemm_forward_tile(const cc_conv_problem& p)
{
    constexpr i64 kSms = 132;
    if (!filter_is(p, 3)) return ForwardTile::square;
    const i64 kg = p.k / p.groups, blocks = tiles(positions(p), kImplicitGemmWide.columns) * tiles(kg, kImplicitGemmWide.rows) * p.groups;
    if (8 * blocks < 7 * kSms) return ForwardTile::square;
    return kg <= kImplicitGemmFlat.rows ? ForwardTile::flat : ForwardTile::wide;
}

cc_status plan_implicit_gemm_forward(const char* call, const cc_conv_problem& p, ForwardTile tile, ImplicitGemmPlan* plan,
                                     ForwardGather gather)
{
    if (!implicit_gemm_implements(p, CC_CONV_FORWARD))
        return plan_implicit_gemm(call, p, CC_CONV_FORWARD, 0, plan); // its refusal
    if (tile != ForwardTile::square && !filter_is(p, 3))
        return fail(CC_ERROR_NOT_SUPPORTED, "%s: the wide and flat implicit-GEMM tiles have forward kernels for 3x3 filters only, not r=%d s=%d",
                    call, p.r, p.s);
    ImplicitGemmPlan result;
    CC_TRY(forward_plan(call, p, tile, &result));
    if (gather == ForwardGather::per_tap) result.window = cc_halo_plan{};
    *plan = result;
    return CC_SUCCESS;
}

cc_status plan_implicit_gemm(const char* call, const cc_conv_problem& p, cc_conv_pass pass, int split_chunk, ImplicitGemmPlan* plan)
{
    if (!implicit_gemm_implements(p, pass))
        return fail(CC_ERROR_NOT_SUPPORTED,
                    "%s: CC_ALGO_IMPLICIT_GEMM implements the forward and weight-gradient passes of 1x1 and 3x3 filters, and "
                    "the data gradient of 3x3 filters with stride 1 or 2 and padding at most 2 and of 1x1 filters with stride 1, no "
                    "padding and groups 1; not this pass of r=%d s=%d stride=%dx%d pad=%dx%d groups=%d (use CC_ALGO_AUTO or "
                    "CC_ALGO_DIRECT)",
                    call, p.r, p.s, p.stride_h, p.stride_w, p.pad_h, p.pad_w, p.groups);
    ImplicitGemmPlan result;
    const bool three = filter_is(p, 3);
    const i64 cg = p.c / p.groups, kg = p.k / p.groups;
    switch (pass) {
    case CC_CONV_FORWARD:
        CC_TRY(forward_plan(call, p, implicit_gemm_forward_tile(p), &result));
        break;
    case CC_CONV_BACKWARD_DATA: // over dx's pixels
        result.kernel = !three               ? KernelId::implicit_gemm_backward_data_1x1
                        : p.stride_h == 1 ? KernelId::implicit_gemm_backward_data_3x3
                                          : KernelId::implicit_gemm_backward_data_3x3_stride2;
        CC_TRY(geometry_for(call, kImplicitGemmSquare, cg, i64{p.n} * p.h * p.w, p.groups, &result.geometry));
        if (three && p.stride_h == 1) result.window = halo_plan_for(data_gradient_as_forward(p), ForwardTile::square);
        break;
    case CC_CONV_BACKWARD_WEIGHT: {
        result.kernel = three ? KernelId::implicit_gemm_backward_weight_3x3 : KernelId::implicit_gemm_backward_weight_1x1;
        // The split of gemm_plan (the same rules as the fp32 GEMM's, over dw as a K x (Cg R S) matrix): each split
        // writes a whole dw, so its workspace slices are those of that matrix. The arrival counters are one per
        // block of a split: per group, tiles of its Kg x (Cg R S) block of dw.
        const i64 columns = cg * p.r * p.s;
        const i64 blocks = p.groups * tiles(kg, kImplicitGemmSquare.rows) * tiles(columns, kImplicitGemmSquare.columns);
        SplitPlan split;
        CC_TRY(plan_split(call, p.k, columns, positions(p), split_chunk, &split, blocks));
        result.splits = split.splits;
        result.chunk = split.chunk;
        result.workspace_bytes = split.workspace_bytes();
        CC_TRY(geometry_for(call, kImplicitGemmSquare, kg, columns, p.groups * split.splits, &result.geometry));
        break;
    }
    case CC_CONV_FORWARD_BN_STATS: // conv.cpp plans it as CC_CONV_FORWARD
    case CC_CONV_BACKWARD: // conv.cpp plans the two passes of cc_conv_backward apart
        return fail(CC_ERROR_INTERNAL, "%s: plan_implicit_gemm plans one pass, not pass %d", call, static_cast<int>(pass));
    }
    *plan = result;
    return CC_SUCCESS;
}

bool plan_implicit_gemm_backward(const ImplicitGemmPlan& data, const ImplicitGemmPlan& weight, FusedBackward* fused)
{
    FusedBackward result;
    switch (data.kernel) {
    case KernelId::implicit_gemm_backward_data_1x1: result.kernel = KernelId::implicit_gemm_backward_1x1; break;
    case KernelId::implicit_gemm_backward_data_3x3: result.kernel = KernelId::implicit_gemm_backward_3x3; break;
    case KernelId::implicit_gemm_backward_data_3x3_stride2: result.kernel = KernelId::implicit_gemm_backward_3x3_stride2; break;
    default: return false;
    }
    if (!fused_geometry(weight.geometry, data.geometry, &result.geometry, &result.parts)) return false;
    *fused = result;
    return true;
}

namespace {

// The weight gradient's split target and chunk, as its kernel takes them: split z writes its partial dw to slice z of
// the workspace (dw itself with one split), and the last split of each tile adds the slices in the fixed order z = 0, 1, ...
struct WeightArguments {
    cc_split_target target;
    int chunk;
};
// A planned window as the kernel takes it: its rows copied 16 bytes at a time where they are runs of 4k floats from a
// 16-byte aligned tensor (x's rows of W for the forward pass, dy's rows of Q for the data gradient).
cc_halo_plan window_for(const cc_halo_plan& planned, cc_conv_pass pass, const cc_conv_problem& p, const float* windowed)
{
    cc_halo_plan window = planned;
    const int row = pass == CC_CONV_BACKWARD_DATA ? p.q : p.w;
    window.vector = row % 4 == 0 && aligned16(windowed) ? 1 : 0;
    return window;
}

WeightArguments weight_arguments(const ImplicitGemmPlan& plan, const cc_conv_problem& p, float* dw, void* workspace)
{
    // The chunk fits an int: plan_split keeps the chunk and the workspace within 2^31 - 1 elements.
    return WeightArguments{split_target(dw, workspace, plan.splits), static_cast<int>(std::min<i64>(plan.chunk, positions(p)))};
}

} // namespace

cc_status launch_implicit_gemm_backward(const cc_handle_s& handle, const FusedBackward& fused, const ImplicitGemmPlan& data,
                                        const ImplicitGemmPlan& weight, const cc_conv_problem& p, const float* x, const float* dy,
                                        const float* w, float* dx, float* dw, void* workspace, void* stream, const ProblemText& text,
                                        int accumulate, const cc_conv_input_bn* input_bn)
{
    const int data_vectorized = vectorized_operands(p, CC_CONV_BACKWARD_DATA, data, dy, w);
    const cc_halo_plan data_window = window_for(data.window, CC_CONV_BACKWARD_DATA, p, dy);
    const int weight_vectorized = vectorized_operands(p, CC_CONV_BACKWARD_WEIGHT, weight, x, dy);
    const WeightArguments wa = weight_arguments(weight, p, dw, workspace);
    if (input_bn != nullptr) {
        if (fused.kernel != KernelId::implicit_gemm_backward_1x1)
            return fail(CC_ERROR_INTERNAL, "launch_implicit_gemm_backward: the input batch norm has no fused form of %s",
                        kernel_name(fused.kernel));
        Geometry geometry = fused.geometry;
        geometry.shared_bytes += kImplicitGemmInputBnWeightBytes;
        return launch<KernelId::implicit_gemm_backward_1x1_input_bn>(handle, geometry, stream, text, p, fused.parts, x, dy, w, dx,
                                                                     data_vectorized, accumulate, wa.target, wa.chunk, weight_vectorized,
                                                                     data_window, *input_bn);
    }
#define CC_LAUNCH_FUSED(id)                                                                                                \
    case KernelId::id:                                                                                                     \
        return launch<KernelId::id>(handle, fused.geometry, stream, text, p, fused.parts, x, dy, w, dx, data_vectorized, accumulate, \
                                    wa.target, wa.chunk, weight_vectorized, data_window)
    switch (fused.kernel) {
        CC_LAUNCH_FUSED(implicit_gemm_backward_1x1);
        CC_LAUNCH_FUSED(implicit_gemm_backward_3x3);
        CC_LAUNCH_FUSED(implicit_gemm_backward_3x3_stride2);
    default: break;
    }
#undef CC_LAUNCH_FUSED
    return fail(CC_ERROR_INTERNAL, "launch_implicit_gemm_backward: %s is not a fused implicit-GEMM kernel", kernel_name(fused.kernel));
}

cc_status launch_implicit_gemm_bn_sums(const cc_handle_s& handle, const ImplicitGemmPlan& plan, const cc_conv_problem& p, const float* dy,
                                       const float* w, float* dx, const cc_conv_input_bn& bn, const float* z, float* sums, void* stream,
                                       const ProblemText& text)
{
    if (plan.kernel != KernelId::implicit_gemm_backward_data_1x1)
        return fail(CC_ERROR_INTERNAL, "launch_implicit_gemm_bn_sums: %s has no batch-norm sums variant", kernel_name(plan.kernel));
    // The plain kernel's grid and operands: the same dx bits.
    return launch<KernelId::implicit_gemm_backward_data_1x1_bn_sums>(handle, plan.geometry, stream, text, p, dy, w, dx,
                                                                     vectorized_operands(p, CC_CONV_BACKWARD_DATA, plan, dy, w), bn.mean,
                                                                     bn.invstd, bn.gamma, bn.beta, bn.relu != 0 ? 1 : 0, z, sums);
}

cc_status launch_implicit_gemm(const cc_handle_s& handle, const ImplicitGemmPlan& plan, cc_conv_pass pass, const cc_conv_problem& p,
                               const float* in0, const float* in1, float* out, void* workspace, void* stream, const ProblemText& text,
                               int accumulate, const cc_conv_epilogue& epilogue, float* stats, const cc_conv_input_bn* input_bn)
{
    const int vectorized = vectorized_operands(p, pass, plan, in0, in1);
    const cc_halo_plan window = window_for(plan.window, pass, p, in0);
    if (input_bn != nullptr) { // the same plan, geometry and arguments, on the kernel that reads z through the batch norm
        if (plan.kernel == KernelId::implicit_gemm_forward_1x1)
            return launch<KernelId::implicit_gemm_forward_1x1_input_bn>(handle, plan.geometry, stream, text, p, in0, in1, out, epilogue,
                                                                        stats, vectorized, *input_bn);
        if (plan.kernel == KernelId::implicit_gemm_backward_weight_1x1) {
            const WeightArguments wa = weight_arguments(plan, p, out, workspace);
            Geometry geometry = plan.geometry;
            geometry.shared_bytes += kImplicitGemmInputBnWeightBytes;
            return launch<KernelId::implicit_gemm_backward_weight_1x1_input_bn>(handle, geometry, stream, text, p, in0, in1, wa.target,
                                                                                wa.chunk, vectorized, *input_bn);
        }
        return fail(CC_ERROR_INTERNAL, "launch_implicit_gemm: the input batch norm has no form of %s", kernel_name(plan.kernel));
    }
    switch (plan.kernel) {
    case KernelId::implicit_gemm_forward_1x1:
        return launch<KernelId::implicit_gemm_forward_1x1>(handle, plan.geometry, stream, text, p, in0, in1, out, epilogue, stats, vectorized);
    case KernelId::implicit_gemm_forward_3x3:
        return launch<KernelId::implicit_gemm_forward_3x3>(handle, plan.geometry, stream, text, p, in0, in1, out, epilogue, stats, vectorized,
                                                           window);
    case KernelId::implicit_gemm_forward_3x3_wide:
        return launch<KernelId::implicit_gemm_forward_3x3_wide>(handle, plan.geometry, stream, text, p, in0, in1, out, epilogue,
                                                                stats, vectorized, window);
    case KernelId::implicit_gemm_forward_3x3_flat:
        return launch<KernelId::implicit_gemm_forward_3x3_flat>(handle, plan.geometry, stream, text, p, in0, in1, out, epilogue,
                                                                stats, vectorized, window);
    case KernelId::implicit_gemm_backward_data_1x1:
        return launch<KernelId::implicit_gemm_backward_data_1x1>(handle, plan.geometry, stream, text, p, in0, in1, out, vectorized,
                                                                 accumulate);
    case KernelId::implicit_gemm_backward_data_3x3:
        return launch<KernelId::implicit_gemm_backward_data_3x3>(handle, plan.geometry, stream, text, p, in0, in1, out, vectorized,
                                                                 accumulate, window);
    case KernelId::implicit_gemm_backward_data_3x3_stride2:
        return launch<KernelId::implicit_gemm_backward_data_3x3_stride2>(handle, plan.geometry, stream, text, p, in0, in1, out,
                                                                         vectorized, accumulate);
    default: break;
    }
    // The weight gradient (one launch, which also reduces its splits).
    const WeightArguments wa = weight_arguments(plan, p, out, workspace);
    return plan.kernel == KernelId::implicit_gemm_backward_weight_3x3
               ? launch<KernelId::implicit_gemm_backward_weight_3x3>(handle, plan.geometry, stream, text, p, in0, in1, wa.target, wa.chunk,
                                                                     vectorized)
               : launch<KernelId::implicit_gemm_backward_weight_1x1>(handle, plan.geometry, stream, text, p, in0, in1, wa.target, wa.chunk,
                                                                     vectorized);
}

} // namespace cc
