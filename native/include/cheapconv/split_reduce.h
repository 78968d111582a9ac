/* The deterministic split weight gradient, reduced inside the launch that computes it ("last block reduces").
 *
 * A weight gradient is a small output reduced over a long index (every position of the batch), so its kernels
 * split that index over several blocks per output tile (gemm.cu, implicit_gemm.cu: split-K; conv2d_tiled.cu:
 * splits of the strips). Split z writes its partial tile to slice z of the caller's workspace. Then, instead
 * of a second launch adding the slices:
 *   1. every thread of the block fences its stores (__threadfence) and the block meets at a barrier;
 *   2. one thread counts the block's arrival at the tile's counter (cc_atomic_add_acq_rel, release/acquire);
 *   3. the block that arrives last (it read splits - 1) adds the tile's slices in the fixed order
 *      z = 0, 1, ..., splits - 1, starting from 0.0f: exactly the arithmetic of cc_gemm_column_sums_kernel, the
 *      second launch this replaces, so dw has the same bits whichever block arrives last and whatever order the
 *      blocks run in; it also puts the counter back to 0.
 * The counters live at the start of the workspace (CC_SPLIT_COUNTER_BYTES, cheapconv.h): zero before the first
 * launch (the caller zeroes a new workspace once), zero again after every launch, so no launch needs a memset
 * and a captured graph can replay the sequence. The slices follow them.
 *
 * cc_split_target is a plain struct passed by value to the split kernels (same layout in every build). */
#ifndef CHEAPCONV_SPLIT_REDUCE_H
#define CHEAPCONV_SPLIT_REDUCE_H

#include "cheapconv/cuda_shim.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_split_target {
    float* dw;          /* the reduced weight gradient */
    float* partials;    /* split z's partial dw starts at partials + z * (elements of dw); dw itself with one split */
    unsigned* counters; /* one arrival counter per output tile of the launch (zero between launches); NULL with one split */
    int splits;         /* >= 1 */
} cc_split_target;

#ifdef __cplusplus
}
#endif

/* Called by every thread of the block once it has stored its split's part of output tile `tile` (with
 * target.splits > 1). Returns, in every thread, whether this block arrived last at the tile: that block must
 * then call cc_split_sum for each element of the tile; the others are done. */
static __device__ __forceinline__ bool cc_split_arrive(const cc_split_target& target, int tile)
{
    CC_STATIC_SHARED(int, last, );
    __threadfence(); // this thread's partial stores reach device scope before the block's arrival is counted
    __syncthreads();
    if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) {
        const unsigned arrived = cc_atomic_add_acq_rel(&target.counters[tile], 1u);
        last = arrived == static_cast<unsigned>(target.splits - 1);
        // Every split of the tile has arrived and none will touch the counter again in this launch.
        if (last) atomicExch(&target.counters[tile], 0u);
    }
    __syncthreads(); // the other threads of the last block read the slices after the arrival (acquire)
    return last != 0;
}

/* dw[offset] = the sum of the slices' elements at `offset` (slices `slice` floats apart), in order z = 0, 1, ...
 * The reads are volatile: other blocks wrote the slices during this launch (no read-only or stale cached copy). */
static __device__ __forceinline__ void cc_split_sum(const cc_split_target& target, int slice, int offset)
{
    const volatile float* element = target.partials + offset;
    float acc = 0.0f;
    for (int z = 0; z < target.splits; ++z) acc += element[z * slice];
    target.dw[offset] = acc;
}

#endif
