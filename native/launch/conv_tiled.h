// The launch plan of the tiled 3x3 convolution kernels (kernels/conv2d_tiled.cu): which problems they
// compute, the strips and shared-memory windows of each pass (cheapconv/tiled_plan.h), the grid, and the
// split of the weight gradient with its workspace. conv.cpp asks here when CC_ALGO_TILED is chosen (or
// chosen by CC_ALGO_AUTO) and hands the pass over to run_tiled.
#ifndef CHEAPCONV_LAUNCH_CONV_TILED_H
#define CHEAPCONV_LAUNCH_CONV_TILED_H

#include "geometry.h"
#include "launch.h"

#include "cheapconv/tiled_plan.h"

#include <cstddef>

namespace cc {

// Whether the tiled kernels compute `p`: a 3x3 filter with equal strides 1 or 2 (any padding, groups,
// channels and sizes), and channel counts whose grid fits CUDA's 65535 blocks in y.
bool tiled_supports(const cc_conv_problem& p);

// What the tiled kernels support, for CC_ERROR_NOT_SUPPORTED messages.
inline constexpr const char* kTiledSupports = "3x3 filters with stride 1 or 2 (equal in h and w), any padding and groups, "
                                              "at most 65535 channels";

struct TiledPlan {
    KernelId kernel = KernelId::conv2d_tiled_forward_s1;
    Geometry geometry;
    cc_tiled_plan tiles{};
    int splits = 1;                  // backward-weight: partial sums, added by the last split of each row of blocks when > 1
    std::size_t workspace_bytes = 0; // splits > 1: the arrival counters and one weight-sized slot per split
};

// The plan of one pass of a validated problem that tiled_supports; CC_ERROR_INVALID_VALUE when its
// split workspace would pass 2^31 - 1 elements.
cc_status plan_tiled(const char* call, const cc_conv_problem& p, cc_conv_pass pass, TiledPlan* plan);

// Runs a planned pass: (x, w -> y), (dy, w -> dx) or (x, dy -> dw), as conv.cpp's passes take them.
// `workspace` holds plan.workspace_bytes (checked by the caller). accumulate (backward-data only): dx += the gradient.
cc_status run_tiled(const cc_handle_s& handle, const TiledPlan& plan, const cc_conv_problem& p, const float* in0, const float* in1,
                    float* out, void* workspace, void* stream, const ProblemText& text, int accumulate = 0);

// The forward plan's kernel that also writes the batch-norm statistics slots (after adding a residual when `residual`).
KernelId tiled_bn_stats_kernel(const TiledPlan& plan, bool residual);

// Runs it: y = conv(x, w) [+ residual where not NULL], and the statistics slots of y into stats (tiled_stats_slots per
// output channel, cc_conv_forward_bn_stats's layout). The forward plan takes no workspace.
cc_status run_tiled_bn_stats(const cc_handle_s& handle, const TiledPlan& plan, const cc_conv_problem& p, const float* x, const float* w,
                             const float* residual, float* y, float* stats, void* stream, const ProblemText& text);

// The statistics slots per output channel of a forward plan: one per block column of its grid (each block's strips).
inline int tiled_stats_slots(const TiledPlan& plan) { return static_cast<int>(plan.geometry.grid.x); }

// The fused form of a data-gradient plan and a weight-gradient plan of one problem (cc_conv2d_tiled_backward_s1 and
// _s2: the same 256-thread block and static shared memory); false where the grid would pass CUDA's limit.
bool plan_tiled_backward(const TiledPlan& data, const TiledPlan& weight, FusedBackward* fused);

// Runs it: dx (+)= the data gradient of dy and w (with `data`), dw = the weight gradient of x and dy (with `weight`,
// whose split workspace `workspace` holds), in one launch.
cc_status run_tiled_backward(const cc_handle_s& handle, const FusedBackward& fused, const TiledPlan& data, const TiledPlan& weight,
                             const cc_conv_problem& p, const float* x, const float* dy, const float* w, float* dx, float* dw,
                             void* workspace, void* stream, const ProblemText& text, int accumulate);

} // namespace cc

#endif
