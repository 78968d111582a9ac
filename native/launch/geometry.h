// The launch shapes the kernels are written for (see each kernels/*.cu header), shared by the families.
// Callers have already checked that counts fit the kernels' 32-bit indices (<= 2^31 - 1), so every grid
// here stays within CUDA's 2^31 - 1 blocks in x.
#ifndef CHEAPCONV_LAUNCH_GEOMETRY_H
#define CHEAPCONV_LAUNCH_GEOMETRY_H

#include "runtime.h"

#include "cheapconv/fused_grid.h"

#include <cstdint>

namespace cc {

// Threads per block of the one-thread-per-element kernels.
inline constexpr unsigned kElementwiseBlock = 256;
inline constexpr unsigned kWarpSize = 32;

inline unsigned blocks_for(std::int64_t items, std::int64_t per_block)
{
    const std::int64_t blocks = (items + per_block - 1) / per_block;
    return static_cast<unsigned>(blocks < 1 ? 1 : blocks); // a zero grid is a launch error
}

// One thread per element, kElementwiseBlock threads per block, at least one block.
inline Geometry elementwise_geometry(std::int64_t elements)
{
    Geometry g;
    g.grid.x = blocks_for(elements, kElementwiseBlock);
    g.block.x = kElementwiseBlock;
    return g;
}

// One warp per item (a weight element, a pooled plane, a softmax row), block/32 items per block.
inline Geometry warp_per_item_geometry(std::int64_t items, unsigned block)
{
    Geometry g;
    g.grid.x = blocks_for(items, block / kWarpSize);
    g.block.x = block;
    return g;
}

// One block per item (a channel, a sample); `items` blocks of `block` threads.
inline Geometry block_per_item_geometry(std::int64_t items, unsigned block)
{
    Geometry g;
    g.grid.x = blocks_for(items, 1);
    g.block.x = block;
    return g;
}

// A convolution's two gradients as one launch (cc_conv_backward): the fused kernel, its geometry, and the grids of the
// two passes its blocks play (cheapconv/fused_grid.h).
struct FusedBackward {
    KernelId kernel;
    Geometry geometry;
    cc_fused_grid parts;
};

// The one launch of two passes of the same block: a 1-D grid of the weight gradient's blocks followed by the data
// gradient's, the larger of their dynamic shared memories, and the parts' grids for the kernel. False (nothing written)
// when the blocks differ or the sum passes CUDA's 2^31 - 1 blocks in x.
inline bool fused_geometry(const Geometry& weight, const Geometry& data, Geometry* fused, cc_fused_grid* parts)
{
    const Dim3 &wb = weight.block, &db = data.block;
    if (wb.x != db.x || wb.y != db.y || wb.z != db.z) return false;
    const auto blocks = [](const Dim3& g) { return std::int64_t{g.x} * g.y * g.z; };
    const std::int64_t total = blocks(weight.grid) + blocks(data.grid);
    if (total > 2147483647) return false;
    fused->grid = Dim3{static_cast<unsigned>(total), 1, 1};
    fused->block = wb;
    fused->shared_bytes = weight.shared_bytes > data.shared_bytes ? weight.shared_bytes : data.shared_bytes;
    // Each extent is at most CUDA's 2^31 - 1 (x) or 65535 (y, z): an int holds it.
    const auto extent = [](const Dim3& g) { return cc_grid_extent{static_cast<int>(g.x), static_cast<int>(g.y), static_cast<int>(g.z)}; };
    *parts = cc_fused_grid{extent(weight.grid), extent(data.grid)};
    return true;
}

} // namespace cc

#endif
