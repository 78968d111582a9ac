// The tensor-core variant of the convolution family: the tf32 implicit-GEMM kernels of kernels/implicit_gemm.cu.
// Which passes of which problems they implement, which of those CC_ALGO_AUTO gives them (when the precision allows
// tf32), their plan (kernel, geometry, split-K and workspace) and their launch. conv.cpp's planning asks here first;
// everything the variant needs to know lives in this file and its .cpp.
#ifndef CHEAPCONV_LAUNCH_CONV_IMPLICIT_GEMM_H
#define CHEAPCONV_LAUNCH_CONV_IMPLICIT_GEMM_H

#include "geometry.h"
#include "launch.h"

#include <cstddef>
#include <cstdint>

namespace cc {

// A block tile of the kernels (TileConfig in implicit_gemm.cu): rows and columns of C per block, threads per block, and
// the dynamic shared memory of its pipeline (3 stages of A and B).
struct ImplicitGemmTile {
    std::int64_t rows, columns;
    unsigned threads, shared_bytes;
};
inline constexpr ImplicitGemmTile kImplicitGemmSquare{64, 64, 128, 30720}; // SquareTile: every kernel
inline constexpr ImplicitGemmTile kImplicitGemmWide{64, 128, 256, 46080};  // WideTile: cc_implicit_gemm_forward_3x3_wide_kernel
inline constexpr ImplicitGemmTile kImplicitGemmFlat{32, 128, 128, 38400};  // FlatTile: cc_implicit_gemm_forward_3x3_flat_kernel
inline constexpr std::int64_t kImplicitGemmTileK = 16;                     // kTileK: reduction indices per stage
// The input-batch-norm weight gradients' table of their 64 channels' {mean, invstd, gamma, beta} past the pipeline's shared
// memory (kInputBnWeightFloats in implicit_gemm.cu): added to the dynamic shared memory of their launches.
inline constexpr unsigned kImplicitGemmInputBnWeightBytes = 1024;
// The room the 3x3 forward kernels' x window has in a tile's shared memory (kWindowFloats in implicit_gemm.cu): what the
// 3 stages of A leave: the square tile's 30 KiB less 3 x 5 KiB, the wide tile's 45 KiB less 3 x 5 KiB, the flat tile's
// 37.5 KiB less 3 x 2.5 KiB.
inline constexpr std::int64_t kImplicitGemmWindowFloatsSquare = 3840, kImplicitGemmWindowFloatsWideOrFlat = 7680;

struct ImplicitGemmPlan {
    KernelId kernel = KernelId::implicit_gemm_forward_1x1;
    Geometry geometry;
    std::int64_t splits = 1, chunk = 0;  // backward weight: split-K over the positions
    std::size_t workspace_bytes = 0;     // splits > 1: the arrival counters and one whole dw per split
    cc_halo_plan window{};               // 3x3 forward: x's window in shared memory; stride-1 3x3 data gradient: dy's (row_stride 0: gathered per tap)
};

// Whether the kernels implement `pass` of `p` (a problem validate() accepted): the forward and weight-gradient passes
// of 1x1 and 3x3 filters (any stride, padding and groups), the data gradient of 3x3 filters with stride 1 or 2
// (the same in both directions) and padding at most 2 (any groups) and of 1x1 filters with stride 1, no padding and groups 1.
bool implicit_gemm_implements(const cc_conv_problem& p, cc_conv_pass pass);

// Whether CC_ALGO_AUTO runs them when tf32 is allowed: where implemented, for 1x1 filters, dense 3x3 filters with at
// least 8 channels and 8 filters (fewer leave most of an mma tile empty), and grouped 3x3 filters with at least 16
// channels and filters per group in the forward pass and 32 in the backward passes (the tiled kernels do better below).
bool implicit_gemm_preferred(const cc_conv_problem& p, cc_conv_pass pass);

// The block tiles of the forward pass: kImplicitGemmSquare (every filter size), kImplicitGemmWide and kImplicitGemmFlat
// (3x3 filters).
enum class ForwardTile { square, wide, flat };

// The tile the forward pass of `p` runs on: the rule of plan_implicit_gemm, justified where it is defined.
ForwardTile implicit_gemm_forward_tile(const cc_conv_problem& p);

// Plans the pass; CC_ERROR_NOT_SUPPORTED (with what is implemented) where implicit_gemm_implements is false,
// CC_ERROR_INVALID_VALUE for a negative split_chunk or a grid or workspace past CUDA's or 32-bit limits.
cc_status plan_implicit_gemm(const char* call, const cc_conv_problem& p, cc_conv_pass pass, int split_chunk, ImplicitGemmPlan* plan);

// How the 3x3 forward kernels read x: through a window in shared memory where the launcher's rule allows it
// (halo_plan_for in conv_implicit_gemm.cpp: stride 1, and the window fits the tile), or gathered once per filter tap.
enum class ForwardGather { window_where_it_fits, per_tap };

// plan_implicit_gemm's forward plan on the tile asked for (wide and flat: 3x3 filters only) whatever the rule says, and
// with the gather asked for: how the tests run every tile, with and without the window, on the same problems.
cc_status plan_implicit_gemm_forward(const char* call, const cc_conv_problem& p, ForwardTile tile, ImplicitGemmPlan* plan,
                                     ForwardGather gather = ForwardGather::window_where_it_fits);

// Runs a planned pass on (in0, in1) -> out, the operands in the order of the cc_conv_* call; `workspace` holds
// plan.workspace_bytes (checked by the caller). accumulate (backward-data only): out += the gradient. epilogue (forward
// only; checked by the caller): what the store adds and writes besides out, which may then be NULL (cc_conv_forward_fused).
// stats (forward only, with out set and no activated output; NULL: none): the batch-norm statistics slots of out, the
// plan's geometry.grid.x of them per output channel (cc_conv_forward_bn_stats). input_bn (forward and weight gradient of
// a 1x1 problem with stride 1, no padding and groups 1, checked by the caller; NULL: none): x (in0) is z, and the pass
// reads a = the input batch norm of it (the *_input_bn kernels: cc_conv_forward_input_bn, cc_conv_backward_input_bn).
cc_status launch_implicit_gemm(const cc_handle_s& handle, const ImplicitGemmPlan& plan, cc_conv_pass pass, const cc_conv_problem& p,
                               const float* in0, const float* in1, float* out, void* workspace, void* stream, const ProblemText& text,
                               int accumulate = 0, const cc_conv_epilogue& epilogue = cc_conv_epilogue{}, float* stats = nullptr,
                               const cc_conv_input_bn* input_bn = nullptr);

// Runs a data-gradient plan of cc_implicit_gemm_backward_data_1x1 (CC_ERROR_INTERNAL for another kernel) as its variant
// that also writes the training batch norm's backward sums (cc_conv_backward_data_bn_sums): dx overwritten, and the
// plan's geometry.grid.x slots per input channel of the sums of dx against z into `sums`. Checked by the caller.
cc_status launch_implicit_gemm_bn_sums(const cc_handle_s& handle, const ImplicitGemmPlan& plan, const cc_conv_problem& p, const float* dy,
                                       const float* w, float* dx, const cc_conv_input_bn& bn, const float* z, float* sums, void* stream,
                                       const ProblemText& text);

// The fused form of a data-gradient plan and a weight-gradient plan of one problem (cc_implicit_gemm_backward_1x1,
// _3x3, _3x3_stride2: every data-gradient kernel has one, on the square tile of both); false where the grid would pass
// CUDA's limit. Called by conv.cpp's one place that chooses between the fused and the separate launches.
bool plan_implicit_gemm_backward(const ImplicitGemmPlan& data, const ImplicitGemmPlan& weight, FusedBackward* fused);

// Runs it: dx (+)= the data gradient of dy and w (as launch_implicit_gemm with `data`), dw = the weight gradient of x and
// dy (with `weight`, whose split workspace `workspace` holds), in one launch. input_bn (the 1x1 kernel only; NULL: none):
// x is z, and dw is the weight gradient of a = the input batch norm of it (cc_implicit_gemm_backward_1x1_input_bn_kernel).
cc_status launch_implicit_gemm_backward(const cc_handle_s& handle, const FusedBackward& fused, const ImplicitGemmPlan& data,
                                        const ImplicitGemmPlan& weight, const cc_conv_problem& p, const float* x, const float* dy,
                                        const float* w, float* dx, float* dw, void* workspace, void* stream, const ProblemText& text,
                                        int accumulate, const cc_conv_input_bn* input_bn = nullptr);

} // namespace cc

#endif
