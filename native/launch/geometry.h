// The launch shapes the kernels are written for (see each kernels/*.cu header), shared by the families.
// Callers have already checked that counts fit the kernels' 32-bit indices (<= 2^31 - 1), so every grid
// here stays within CUDA's 2^31 - 1 blocks in x.
#ifndef CHEAPCONV_LAUNCH_GEOMETRY_H
#define CHEAPCONV_LAUNCH_GEOMETRY_H

#include "runtime.h"

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

} // namespace cc

#endif
