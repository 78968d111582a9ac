// Planning and launching the tiled 3x3 kernels (see conv_tiled.h and the header of kernels/conv2d_tiled.cu).
#include "conv_tiled.h"

#include "checks.h"
#include "gemm_plan.h"

#include <algorithm>
#include <cstdint>

namespace cc {
namespace {

using i64 = std::int64_t;

constexpr int kWarpLanes = 32;
constexpr int kBanks = 32;
constexpr int kMaxGridY = 65535; // CUDA's limit on gridDim.y
constexpr int kMaxStripWidth = 32; // a strip's columns never span more than one warp
// Warps that keep every scheduler of a 132-SM H100 busy: 4 per scheduler (the FFMA latency), 4 schedulers.
constexpr i64 kBusyWarps = 132 * 16;
// The narrow chunk doubles a problem's warps but reads about 1.5x the shared memory per multiply-add (its
// weights serve half the channels): it pays where the wide chunk fills under a third of the schedulers
// (measured with `cheapconv profile` over the catalogue: better at 512 warps, worse from 1024).
constexpr i64 kNarrowChunkBelowWarps = kBusyWarps / 3;

int ceil_div(int a, int b) { return (a + b - 1) / b; }
int round_up(int value, int multiple) { return ceil_div(value, multiple) * multiple; }

// Chunks of output channels a group's `per_group` channels split into.
int chunks_of(int per_group, int wide_chunk) { return per_group == 1 ? 1 : ceil_div(per_group, wide_chunk); }

// Where one strip's window lies in its tensor plane, before the shared-memory layout is chosen.
struct WindowShape {
    int plane_h, plane_w;
    int row_offset, col_offset, row_step, col_step;
    int rows, cols;
    int layout; // 1: row-major; 2: even and odd columns apart (stride-2 reads)
};

// Whether the 8 lanes of each quarter-warp, storing 4 consecutive floats each of a run of whole rows of
// `plane_w` floats into rows `pitch` apart, hit 32 distinct banks (one 16-byte store per lane, Nsight's
// 4-phase rule). The pattern repeats after plane_w quarter-warps at most.
bool vector_stores_conflict_free(int pitch, int plane_w)
{
    for (int quarter = 0; quarter < plane_w; ++quarter) {
        unsigned used = 0;
        for (int lane = 0; lane < 8; ++lane) {
            const int element = kWarpLanes * quarter + 4 * lane;
            const int word = element / plane_w * pitch + element % plane_w;
            const unsigned group = 1u << (word / 4 % (kBanks / 4));
            if (used & group) return false;
            used |= group;
        }
    }
    return true;
}

// The smallest value >= size that is == tile_w (mod 32) when a warp spans several strips (their windows
// then start on different banks, and the warp's reads of one window row cover 32 consecutive banks), and
// a multiple of 4 when the windows take 16-byte stores.
int strip_stride(int size, int tile_w, bool vector)
{
    if (tile_w < kMaxStripWidth) return size + ((tile_w - size) % kBanks + kBanks) % kBanks;
    return vector ? round_up(size, 4) : size;
}

cc_tiled_window make_window(const WindowShape& s, int tile_w, bool whole_rows)
{
    cc_tiled_window w{};
    w.plane_h = s.plane_h;
    w.plane_w = s.plane_w;
    w.row_offset = s.row_offset;
    w.col_offset = s.col_offset;
    w.row_step = s.row_step;
    w.col_step = s.col_step;
    w.rows = s.rows;
    w.cols = s.cols;
    if (s.layout == 2) {
        // A row's lanes store even and odd columns at once: the odd ones 16 banks after the even ones.
        const int evens = (s.cols + 1) / 2;
        w.odd = evens + ((16 - evens) % kBanks + kBanks) % kBanks;
        w.pitch = w.odd + s.cols / 2;
    } else {
        // Column 0 sits where tensor column 0 of a whole-row window is 16-byte aligned.
        w.lead = ((s.col_offset % 4) + 4) % 4;
        w.vector = whole_rows && s.plane_w % 4 == 0 && s.col_offset <= 0 && s.col_offset + s.cols >= s.plane_w && tile_w % 4 == 0;
        w.pitch = round_up(w.lead + s.cols, 4);
        if (w.vector) {
            const int first = w.pitch;
            while (!vector_stores_conflict_free(w.pitch, s.plane_w) && w.pitch < first + kBanks) w.pitch += 4;
            if (!vector_stores_conflict_free(w.pitch, s.plane_w)) w.pitch = first;
            w.vector_rows = 4 * kWarpLanes / s.plane_w;
            w.vector_cols = 4 * kWarpLanes % s.plane_w;
        }
    }
    if (!w.vector && s.cols >= kWarpLanes) {
        // The columns past the last whole round of 32 are staged one lane per (row, column): rows == the
        // leftover count apart (mod 32) put them on distinct banks.
        const int rest = s.cols % kWarpLanes;
        w.pitch += ((rest - w.pitch) % kBanks + kBanks) % kBanks;
    }
    w.stride = strip_stride(s.rows * w.pitch, tile_w, w.vector != 0);
    return w;
}

KernelId kernel_for(cc_conv_pass pass, int stride)
{
    switch (pass) {
    case CC_CONV_FORWARD: return stride == 1 ? KernelId::conv2d_tiled_forward_s1 : KernelId::conv2d_tiled_forward_s2;
    case CC_CONV_BACKWARD_DATA: return stride == 1 ? KernelId::conv2d_tiled_backward_data_s1 : KernelId::conv2d_tiled_backward_data_s2;
    case CC_CONV_BACKWARD_WEIGHT:
    case CC_CONV_BACKWARD:
    case CC_CONV_FORWARD_BN_STATS: break; // never planned as one pass (plan_variant refuses it): both are planned apart
    }
    return stride == 1 ? KernelId::conv2d_tiled_backward_weight_s1 : KernelId::conv2d_tiled_backward_weight_s2;
}

// Every tiled kernel takes (problem, tiles, input, input, output).
struct LaunchArguments {
    const cc_handle_s& handle;
    const TiledPlan& plan;
    const cc_tiled_plan& tiles;
    const cc_conv_problem& p;
    const float *in0, *in1;
    float* out;                      // forward, backward-data
    const cc_split_target& target;   // backward-weight
    int accumulate;                  // backward-data: dx += the gradient
    void* stream;
    const ProblemText& text;
};

template <KernelId Id>
cc_status launch_tiled(const LaunchArguments& a)
{
    if constexpr (Id == KernelId::conv2d_tiled_backward_weight_s1 || Id == KernelId::conv2d_tiled_backward_weight_s2)
        return launch<Id>(a.handle, a.plan.geometry, a.stream, a.text, a.p, a.tiles, a.in0, a.in1, a.target);
    else if constexpr (Id == KernelId::conv2d_tiled_backward_data_s1 || Id == KernelId::conv2d_tiled_backward_data_s2)
        return launch<Id>(a.handle, a.plan.geometry, a.stream, a.text, a.p, a.tiles, a.in0, a.in1, a.out, a.accumulate);
    else
        return launch<Id>(a.handle, a.plan.geometry, a.stream, a.text, a.p, a.tiles, a.in0, a.in1, a.out);
}

bool aligned16(const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0; }

} // namespace

bool tiled_supports(const cc_conv_problem& p)
{
    if (p.r != 3 || p.s != 3 || p.stride_h != p.stride_w || (p.stride_h != 1 && p.stride_h != 2)) return false;
    // Grid rows: groups x chunks (forward, backward-data; at most as many as narrow chunks make) and c x chunks
    // (backward-weight).
    const i64 kpg = p.k / p.groups, cpg = p.c / p.groups;
    return i64{p.groups} * chunks_of(static_cast<int>(kpg), CC_TILED_NARROW_CHUNK) <= kMaxGridY &&
           i64{p.groups} * chunks_of(static_cast<int>(cpg), CC_TILED_NARROW_CHUNK) <= kMaxGridY &&
           i64{p.c} * chunks_of(static_cast<int>(kpg), CC_TILED_WEIGHT_CHUNK) <= kMaxGridY;
}

cc_status plan_tiled(const char* call, const cc_conv_problem& p, cc_conv_pass pass, TiledPlan* plan)
{
    const int stride = p.stride_h;
    const int cpg = p.c / p.groups, kpg = p.k / p.groups;
    const int window_rows = (CC_TILED_ROWS - 1) * stride + 3;
    // The extent of a thread's outputs (for the stride-2 backward-data: its cells), the channels a block's
    // chunk is taken from, and the widest chunk the pass's kernel has.
    int out_h = p.p, out_w = p.q, rows_per_strip = CC_TILED_ROWS, per_group = kpg, wide_chunk = CC_TILED_WIDE_CHUNK;
    const bool weight_gradient = pass == CC_CONV_BACKWARD_WEIGHT;
    if (pass == CC_CONV_BACKWARD_DATA) {
        per_group = cpg;
        out_h = p.h;
        out_w = p.w;
        if (stride == 2) {
            out_h = (p.h + p.pad_h + 1) / 2;
            out_w = (p.w + p.pad_w + 1) / 2;
            rows_per_strip = CC_TILED_CELL_ROWS;
        }
    } else if (weight_gradient) {
        wide_chunk = CC_TILED_WEIGHT_CHUNK;
    }

    cc_tiled_plan t{};
    t.tile_w = std::min(out_w, kMaxStripWidth);
    t.col_tiles = ceil_div(out_w, t.tile_w);
    t.row_tiles = ceil_div(out_h, rows_per_strip);
    t.strip_count = static_cast<int>(i64{p.n} * t.row_tiles * t.col_tiles); // <= the output's elements
    t.chunk = per_group == 1 ? 1 : wide_chunk;
    const bool whole_rows = t.col_tiles == 1;
    const int tw = t.tile_w;

    // The gathered input's window: x for forward and backward-weight; dy for backward-data, read as a
    // forward convolution with padding 2 - pad (stride 1) or as the dy rows and columns p - 1, p of each
    // cell (stride 2).
    WindowShape in{p.h, p.w, -p.pad_h, -p.pad_w, stride, stride, window_rows, (tw - 1) * stride + 3, stride};
    if (pass == CC_CONV_BACKWARD_DATA)
        in = stride == 1 ? WindowShape{p.p, p.q, p.pad_h - 2, p.pad_w - 2, 1, 1, CC_TILED_ROWS + 2, tw + 2, 1}
                         : WindowShape{p.p, p.q, -1, -1, 1, 1, CC_TILED_CELL_ROWS + 1, tw + 1, 1};
    t.in = make_window(in, tw, whole_rows);
    if (weight_gradient) {
        t.grad = make_window(WindowShape{p.p, p.q, 0, 0, 1, 1, CC_TILED_ROWS, tw, 1}, tw, whole_rows);
        // The dy windows follow the strips' x windows in shared memory, and 16-byte staging stores float4s: the x
        // windows must end on a 16-byte boundary, which a stride-2 x window (an odd pitch, 9 rows) need not.
        if (t.grad.vector) t.in.stride = round_up(t.in.stride, 4);
    }
    const int per_strip = t.in.stride + (weight_gradient ? t.chunk * t.grad.stride : 0);
    // As many strips as the block's threads hold, and as its shared memory holds.
    t.strips = std::min(CC_TILED_THREADS / tw, CC_TILED_SHARED_FLOATS / per_strip);
    if (t.strips < 1)
        return fail(CC_ERROR_INTERNAL, "%s: one strip's windows (%d floats) exceed the tiled kernels' %d floats of shared memory", call,
                    per_strip, CC_TILED_SHARED_FLOATS);

    const int blocks = ceil_div(t.strip_count, t.strips);
    if (!weight_gradient && per_group > 1) {
        // The wide chunk feeds each staged input to the most multiply-adds; the narrow one where the group
        // has few channels, or where the wide one leaves the GPU far short of warps (small problems).
        const i64 wide_warps = i64{blocks} * p.groups * chunks_of(per_group, CC_TILED_WIDE_CHUNK) * (CC_TILED_THREADS / kWarpLanes);
        const bool narrow = per_group <= CC_TILED_NARROW_CHUNK || wide_warps < kNarrowChunkBelowWarps;
        t.chunk = narrow ? CC_TILED_NARROW_CHUNK : CC_TILED_WIDE_CHUNK;
    }
    t.chunks_per_group = chunks_of(per_group, t.chunk);

    TiledPlan result;
    result.kernel = kernel_for(pass, stride);
    result.geometry.block = Dim3{CC_TILED_THREADS, 1, 1};
    if (!weight_gradient) {
        result.geometry.grid = Dim3{static_cast<unsigned>(blocks), static_cast<unsigned>(p.groups * t.chunks_per_group), 1};
    } else {
        // Enough splits of the strips that the grid reaches about kSplitTargetBlocks blocks, each split a
        // whole number of the block's strip rounds, and a workspace 32-bit indices reach.
        const i64 weights = i64{p.k} * cpg * 9;
        const i64 rows_of_blocks = i64{p.c} * t.chunks_per_group;
        i64 splits = std::clamp<i64>((kSplitTargetBlocks + rows_of_blocks - 1) / rows_of_blocks, 1, blocks);
        splits = std::min(splits, std::max<i64>(1, kMaxElements / weights));
        const int rounds = ceil_div(blocks, static_cast<int>(splits));
        t.strips_per_split = rounds * t.strips;
        result.splits = ceil_div(t.strip_count, t.strips_per_split);
        // One arrival counter per row of blocks: a split grid has fewer rows than kSplitTargetBlocks (more rows are
        // enough blocks without a split), far fewer than the workspace has counters.
        static_assert(kSplitTargetBlocks <= kSplitCounters, "a split tiled weight gradient has a counter per row of blocks");
        result.workspace_bytes = split_workspace_bytes(result.splits, weights);
        result.geometry.grid = Dim3{static_cast<unsigned>(result.splits), static_cast<unsigned>(rows_of_blocks), 1};
    }
    result.tiles = t;
    *plan = result;
    return CC_SUCCESS;
}

namespace {

// The plan's tiles for these tensors: the 16-byte staging needs the gathered tensors 16-byte aligned (their planes
// then are: their widths are multiples of 4 where the plan allows it).
cc_tiled_plan tiles_for(const TiledPlan& plan, const float* in0, const float* in1)
{
    cc_tiled_plan tiles = plan.tiles;
    tiles.in.vector &= aligned16(in0);
    tiles.grad.vector &= aligned16(in1);
    return tiles;
}

} // namespace

bool plan_tiled_backward(const TiledPlan& data, const TiledPlan& weight, FusedBackward* fused)
{
    FusedBackward result;
    switch (data.kernel) {
    case KernelId::conv2d_tiled_backward_data_s1: result.kernel = KernelId::conv2d_tiled_backward_s1; break;
    case KernelId::conv2d_tiled_backward_data_s2: result.kernel = KernelId::conv2d_tiled_backward_s2; break;
    default: return false;
    }
    if (!fused_geometry(weight.geometry, data.geometry, &result.geometry, &result.parts)) return false;
    *fused = result;
    return true;
}

cc_status run_tiled_backward(const cc_handle_s& handle, const FusedBackward& fused, const TiledPlan& data, const TiledPlan& weight,
                             const cc_conv_problem& p, const float* x, const float* dy, const float* w, float* dx, float* dw,
                             void* workspace, void* stream, const ProblemText& text, int accumulate)
{
    // Each pass's tiles as its own kernel would get them: the data gradient gathers dy (its `in`), the weight gradient
    // x and dy (its `in` and `grad`).
    const cc_tiled_plan data_tiles = tiles_for(data, dy, w), weight_tiles = tiles_for(weight, x, dy);
    const cc_split_target target = split_target(dw, workspace, weight.splits);
    if (fused.kernel == KernelId::conv2d_tiled_backward_s1)
        return launch<KernelId::conv2d_tiled_backward_s1>(handle, fused.geometry, stream, text, p, fused.parts, data_tiles, weight_tiles, x,
                                                          dy, w, dx, accumulate, target);
    if (fused.kernel == KernelId::conv2d_tiled_backward_s2)
        return launch<KernelId::conv2d_tiled_backward_s2>(handle, fused.geometry, stream, text, p, fused.parts, data_tiles, weight_tiles, x,
                                                          dy, w, dx, accumulate, target);
    return fail(CC_ERROR_INTERNAL, "run_tiled_backward: %s is not a fused tiled kernel", kernel_name(fused.kernel));
}

KernelId tiled_bn_stats_kernel(const TiledPlan& plan, bool residual)
{
    const bool s1 = plan.kernel == KernelId::conv2d_tiled_forward_s1;
    if (residual) return s1 ? KernelId::conv2d_tiled_forward_residual_bn_stats_s1 : KernelId::conv2d_tiled_forward_residual_bn_stats_s2;
    return s1 ? KernelId::conv2d_tiled_forward_bn_stats_s1 : KernelId::conv2d_tiled_forward_bn_stats_s2;
}

cc_status run_tiled_bn_stats(const cc_handle_s& handle, const TiledPlan& plan, const cc_conv_problem& p, const float* x, const float* w,
                             const float* residual, float* y, float* stats, void* stream, const ProblemText& text)
{
    const cc_tiled_plan tiles = tiles_for(plan, x, w);
    switch (tiled_bn_stats_kernel(plan, residual != nullptr)) {
    case KernelId::conv2d_tiled_forward_bn_stats_s1:
        return launch<KernelId::conv2d_tiled_forward_bn_stats_s1>(handle, plan.geometry, stream, text, p, tiles, x, w, y, stats);
    case KernelId::conv2d_tiled_forward_bn_stats_s2:
        return launch<KernelId::conv2d_tiled_forward_bn_stats_s2>(handle, plan.geometry, stream, text, p, tiles, x, w, y, stats);
    case KernelId::conv2d_tiled_forward_residual_bn_stats_s1:
        return launch<KernelId::conv2d_tiled_forward_residual_bn_stats_s1>(handle, plan.geometry, stream, text, p, tiles, x, w, residual, y,
                                                                           stats);
    default:
        return launch<KernelId::conv2d_tiled_forward_residual_bn_stats_s2>(handle, plan.geometry, stream, text, p, tiles, x, w, residual, y,
                                                                           stats);
    }
}

cc_status run_tiled(const cc_handle_s& handle, const TiledPlan& plan, const cc_conv_problem& p, const float* in0, const float* in1,
                    float* out, void* workspace, void* stream, const ProblemText& text, int accumulate)
{
    const cc_tiled_plan tiles = tiles_for(plan, in0, in1);
    const bool weight_gradient = plan.kernel == KernelId::conv2d_tiled_backward_weight_s1 || plan.kernel == KernelId::conv2d_tiled_backward_weight_s2;
    const cc_split_target target = split_target(out, workspace, weight_gradient ? plan.splits : 1);
    const LaunchArguments a{handle, plan, tiles, p, in0, in1, out, target, accumulate, stream, text};
    switch (plan.kernel) {
    case KernelId::conv2d_tiled_forward_s1: return launch_tiled<KernelId::conv2d_tiled_forward_s1>(a);
    case KernelId::conv2d_tiled_forward_s2: return launch_tiled<KernelId::conv2d_tiled_forward_s2>(a);
    case KernelId::conv2d_tiled_backward_data_s1: return launch_tiled<KernelId::conv2d_tiled_backward_data_s1>(a);
    case KernelId::conv2d_tiled_backward_data_s2: return launch_tiled<KernelId::conv2d_tiled_backward_data_s2>(a);
    case KernelId::conv2d_tiled_backward_weight_s1: return launch_tiled<KernelId::conv2d_tiled_backward_weight_s1>(a);
    case KernelId::conv2d_tiled_backward_weight_s2: return launch_tiled<KernelId::conv2d_tiled_backward_weight_s2>(a);
    default: return fail(CC_ERROR_INTERNAL, "run_tiled: %s is not a tiled kernel", kernel_name(plan.kernel));
    }
}

} // namespace cc
