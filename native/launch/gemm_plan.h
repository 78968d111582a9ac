// The launch plan of the GEMM kernels (kernels/gemm.cu), shared by the pointwise convolution (conv.cpp)
// and the linear layer (linear.cpp): the 64x64-tile grid, and the deterministic split-K weight gradient.
//
// Split-K: a weight gradient is an m x n output reduced over a long k (N*P*Q positions, or N samples), so
// its grid is small. Splitting k over gridDim.z blocks gives the GPU work; split z writes its partial sum
// to slice z of a caller workspace, and the block that finishes a tile last adds the tile's slices in the
// fixed order z = 0, 1, ... (cheapconv/split_reduce.h: deterministic, one launch, arrival counters at the
// workspace's start). With one split the kernel writes dw directly.
#ifndef CHEAPCONV_LAUNCH_GEMM_PLAN_H
#define CHEAPCONV_LAUNCH_GEMM_PLAN_H

#include "cheapconv/split_reduce.h"
#include "launch.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace cc {

inline constexpr unsigned kGemmBlock = 256;        // kThreads in gemm.cu
inline constexpr std::int64_t kGemmTile = 64;       // kTileM = kTileN in gemm.cu
inline constexpr std::int64_t kGemmTileK = 16;      // kTileK in gemm.cu
inline constexpr std::int64_t kSplitTargetBlocks = 256; // about two waves on a 132-SM H100
inline constexpr std::int64_t kSplitMinChunk = 512; // no split sums fewer reduction indices than this
inline constexpr std::int64_t kMaxGridYZ = 65535;   // CUDA's limit on gridDim.y and gridDim.z
// Output tiles a split launch may have: one arrival counter each at the start of the workspace.
inline constexpr std::int64_t kSplitCounters = CC_SPLIT_COUNTER_BYTES / sizeof(unsigned);

// Bytes of workspace a split weight gradient of `elements` outputs needs: none with one split, else the
// counters and one slice of `elements` floats per split.
inline std::size_t split_workspace_bytes(std::int64_t splits, std::int64_t elements)
{
    return splits > 1 ? CC_SPLIT_COUNTER_BYTES + static_cast<std::size_t>(splits * elements) * sizeof(float) : 0;
}

// What a split kernel writes: dw directly with one split; else the slices after the workspace's counters.
inline cc_split_target split_target(float* dw, void* workspace, std::int64_t splits)
{
    if (splits == 1) return cc_split_target{dw, dw, nullptr, 1};
    auto* counters = static_cast<unsigned*>(workspace);
    auto* partials = reinterpret_cast<float*>(static_cast<unsigned char*>(workspace) + CC_SPLIT_COUNTER_BYTES);
    return cc_split_target{dw, partials, counters, static_cast<int>(splits)};
}

// The split of a reduction of length k into chunks of `chunk`, for a launch of `tiles` output tiles (one counter
// each): the default chunk (requested 0) falls back to one split past kSplitCounters tiles; a requested one is
// refused (CC_ERROR_INVALID_VALUE).
cc_status check_split_tiles(const char* call, std::int64_t tiles, std::int64_t k, int requested_chunk, std::int64_t* chunk);

// 64x64 tiles of an m x n output.
std::int64_t gemm_tiles(std::int64_t m, std::int64_t n);

// Whether an m x n GEMM in `splits` layers fits CUDA's grid limits.
bool gemm_fits(std::int64_t m, std::int64_t n, std::int64_t splits);

// Grid (ceil(n/64), ceil(m/64), splits) of kGemmBlock threads; CC_ERROR_INVALID_VALUE past CUDA's limits.
cc_status gemm_geometry(const char* call, std::int64_t m, std::int64_t n, std::int64_t splits, Geometry* geometry);

// How a weight gradient of m x n over a reduction of length k is split.
struct SplitPlan {
    std::int64_t m = 0, n = 0, k = 0;
    std::int64_t chunk = 0;  // reduction indices per split
    std::int64_t splits = 1; // ceil(k / chunk)
    Geometry geometry;

    // Bytes of caller workspace: the counters and one m x n slice per split, none when there is one split.
    std::size_t workspace_bytes() const { return split_workspace_bytes(splits, m * n); }
};

// The launcher's chunk: enough splits that the grid reaches about kSplitTargetBlocks blocks, none shorter
// than kSplitMinChunk, a workspace that 32-bit indices reach, and a multiple of kGemmTileK so only the
// last split has a partial shared-memory slice.
std::int64_t default_split_chunk(std::int64_t m, std::int64_t n, std::int64_t k);

// Plans the split for options->split_chunk (0 = default_split_chunk; >= k = one pass into dw) of a launch
// of `tiles` output tiles (the m x n tiles unless a caller's grid has more: the grouped implicit GEMM).
// CC_ERROR_INVALID_VALUE for a negative chunk, a workspace over 2^31 - 1 elements, a grid too large or a
// requested split of more tiles than kSplitCounters.
cc_status plan_split(const char* call, std::int64_t m, std::int64_t n, std::int64_t k, int requested_chunk, SplitPlan* plan,
                     std::int64_t tiles = 0);

// dst[j] = sum over r of src[r * cols + j], rows added in order (one thread per column).
cc_status launch_column_sums(const cc_handle_s& handle, int rows, int cols, const float* src, float* dst, void* stream,
                             const ProblemText& text);

// Runs a planned weight gradient. Id is a split-K kernel whose parameters are (leading..., cc_split_target,
// k_chunk): pointwise_backward_weight or linear_backward_weight; one launch, which also reduces the splits.
// `workspace` must hold plan.workspace_bytes() (checked by the caller), its counters zero.
template <KernelId Id, class... Leading>
cc_status launch_split(const cc_handle_s& handle, const SplitPlan& plan, void* stream, const ProblemText& text, float* dw,
                       void* workspace, Leading&&... leading)
{
    // Both fit an int: the chunk is at most the int the caller passed or default_split_chunk's (<= 2^31-1),
    // and plan_split refused workspaces over 2^31 - 1 elements.
    const int k_chunk = static_cast<int>(std::min(plan.chunk, plan.k));
    return launch<Id>(handle, plan.geometry, stream, text, std::forward<Leading>(leading)..., split_target(dw, workspace, plan.splits),
                      k_chunk);
}

} // namespace cc

#endif
