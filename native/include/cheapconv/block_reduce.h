/* Deterministic warp and block sums for the kernels of native/kernels (batch norm, pooling, Sum).
 *
 * Every reduction here adds in a fixed order that depends only on the block size: a shuffle-down tree
 * inside each warp (offsets 16, 8, 4, 2, 1), then the per-warp totals in a second fixed tree. No atomics,
 * so a result is bit-identical run to run on a given device. Include after cheapconv/cuda_shim.h. */
#ifndef CHEAPCONV_BLOCK_REDUCE_H
#define CHEAPCONV_BLOCK_REDUCE_H

#include "cheapconv/cuda_shim.h"

/* Most warps a block may have (1024 threads). */
#define CC_MAX_WARPS 32

/* The sum of v over the 32 lanes of a full warp; lane 0 holds it (the other lanes hold partial sums). */
static __device__ __forceinline__ float cc_warp_sum(float v)
{
    for (int offset = warpSize / 2; offset > 0; offset /= 2) {
        v += __shfl_down_sync(0xffffffffu, v, offset);
    }
    return v;
}

/* The sum of v over every thread of the block, returned to every thread. blockDim.x must be a multiple of
 * 32 and every thread of the block must call it (it holds barriers). scratch: CC_MAX_WARPS floats of
 * __shared__ memory. Each warp reduces the per-warp totals with the same tree, so every thread gets the
 * same bits without a broadcast slot; the closing barrier lets the caller reuse scratch immediately. */
static __device__ __forceinline__ float cc_block_sum(float v, float* scratch)
{
    const int lane = threadIdx.x % warpSize;
    const int warp = threadIdx.x / warpSize;
    const int warps = blockDim.x / warpSize;
    v = cc_warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float total = lane < warps ? scratch[lane] : 0.0f;
    total = cc_warp_sum(total);
    total = __shfl_sync(0xffffffffu, total, 0);
    __syncthreads();
    return total;
}

#endif
