/* The grid of a horizontally fused launch (cc_conv_backward): the weight gradient and the data gradient of one
 * convolution in one launch, as CUTLASS's grouped GEMM runs several problems in one grid. The launch is a 1-D grid of
 * (blocks of weight) + (blocks of data) blocks: block i < blocks of weight plays block i of the weight gradient's own
 * (x, y, z) grid, the others block i - (blocks of weight) of the data gradient's. The weight gradient goes first
 * because its blocks reduce over every position of the batch and are the longest: started first, they do not form the
 * launch's tail. Each part's blocks keep their own order (x fastest, then y, then z), the order its standalone launch
 * dispatches them in.
 *
 * The bodies of the kernels take the block they play as a cc_block_place rather than reading blockIdx and gridDim,
 * so the standalone and the fused kernels run the same code. Plain ints only: the same layout in every build. */
#ifndef CHEAPCONV_FUSED_GRID_H
#define CHEAPCONV_FUSED_GRID_H

#include "cheapconv/cuda_shim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_grid_extent {
    int x, y, z;
} cc_grid_extent;

typedef struct cc_fused_grid {
    cc_grid_extent weight; /* the weight gradient's grid: the launch's first x * y * z blocks */
    cc_grid_extent data;   /* the data gradient's grid: the blocks after them */
} cc_fused_grid;

/* A block's place in the grid of the pass it computes: its index and that grid's extent. */
typedef struct cc_block_place {
    int x, y, z;
    cc_grid_extent grid;
} cc_block_place;

#ifdef __cplusplus
}
#endif

/* The place of the running block in its own launch's grid (a standalone kernel). */
static __device__ __forceinline__ cc_block_place cc_own_place(void)
{
    const cc_grid_extent grid = {(int)gridDim.x, (int)gridDim.y, (int)gridDim.z};
    const cc_block_place place = {(int)blockIdx.x, (int)blockIdx.y, (int)blockIdx.z, grid};
    return place;
}

static __device__ __forceinline__ int cc_grid_blocks(const cc_grid_extent& grid) { return grid.x * grid.y * grid.z; }

/* Block `index` of `grid`, counted x fastest, then y, then z. */
static __device__ __forceinline__ cc_block_place cc_place_in(const cc_grid_extent& grid, int index)
{
    const int plane = grid.x * grid.y;
    const int z = index / plane, rest = index - z * plane;
    const int y = rest / grid.x;
    const cc_block_place place = {rest - y * grid.x, y, z, grid};
    return place;
}

#endif
