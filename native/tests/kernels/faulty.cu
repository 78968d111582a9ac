/* Test kernels for the emulator's diagnostics, plus one correct kernel for the happy path.
 * Built into libcheapconv_emu_test.so (never into the production libcheapconv_emu.so), into the
 * sanitizer driver (native/tests/sancheck.cpp) and the native self-test; also compiled to PTX to prove
 * they are valid CUDA. Every kernel is extern "C"; launch them by name through cc_emu_launch.
 *
 * Kernel (signature)                                              geometry                    expected
 * --------------------------------------------------------------  --------------------------  ----------------------------------
 * cc_test_block_reduce(const int* in, int* out, int n)            grid (ceil(n/256),1,1),     0; out[b] = sum of in[256b..256b+255]
 *                                                                 block (256,1,1), shared 0   (any blockDim.x that is a multiple of
 *                                                                                             32 works; out has gridDim.x ints)
 * cc_test_divergent_barrier(int* out)                             grid (1,1,1), block (64,1,1) CC_EMU_DIVERGENT_BARRIER; message names
 *                                                                 out: 64 ints                threads (0,0,0) and (32,0,0) and the
 *                                                                                             two faulty.cu lines
 * cc_test_missing_barrier(const int* in, int* out, int n)         grid (ceil(n/256),1,1),     0 from the emulator (it cannot see the
 *                                                                 block (256,1,1)             race: results are wrong), TSan build:
 *                                                                                             "data race"
 * The next three exist only in the sanitizer builds (see CC_SANITIZER_BUILD below) and the PTX:
 * cc_test_oob_global(float* y, int n)                             grid (ceil((n+1)/256),1,1), ASan: heap-buffer-overflow
 *                                                                 block (256,1,1); y has n
 * cc_test_oob_dynamic_shared(float* out)                          grid (1,1,1), block (64,1,1), ASan: heap-buffer-overflow
 *                                                                 shared 64*4 bytes; out: 64
 * cc_test_oob_static_shared(int* out)                             grid (1,1,1), block (64,1,1), UBSan: "index 64 out of bounds"
 *                                                                 out: 64 ints
 * cc_test_shuffle_mask_mismatch(int* out)                         grid (1,1,1), block (32,1,1), CC_EMU_WARP_MISMATCH (lanes 0-15
 *                                                                 out: 32 ints                pass 0xffffffff, 16-31 0xffff0000)
 * cc_test_shuffle_site_mismatch(int* out)                         grid (1,1,1), block (32,1,1), CC_EMU_WARP_MISMATCH (two call sites)
 * cc_test_inactive_lane_read(int* out)                            grid (1,1,1), block (32,1,1), CC_EMU_INACTIVE_LANE_READ (lane 30
 *                                                                 out: 32 ints                reads lane 31, outside the mask)
 * cc_test_barrier_warp_deadlock(int* out)                         grid (1,1,1), block (32,1,1), CC_EMU_DEADLOCK
 * cc_test_early_return_barrier(int* out)                          grid (1,1,1), block (64,1,1), 0 with a warning naming
 *                                                                 out: 64 ints                CC_EMU_EXITED_AT_BARRIER (an error
 *                                                                                             with cc_emu_set_strict(1)); out[t] =
 *                                                                                             t+1 for t < 32, untouched otherwise
 * cc_test_mma_partial_warp(int* out)                              grid (1,1,1), block (48,1,1), CC_EMU_WARP_MISMATCH (mma.sync needs
 *                                                                 out: 48 ints                all 32 lanes; lanes 48..63 do not exist)
 * cc_test_ldmatrix_misaligned(int* out)                           grid (1,1,1), block (32,1,1), CC_EMU_INVALID_OPERAND (lane 5's row
 *                                                                 out: 32 ints                address is not 16-byte aligned)
 */
#include "cheapconv/cuda_shim.h"

extern "C" __global__ void cc_test_block_reduce(const int* in, int* out, int n) {
    CC_STATIC_SHARED(int, warp_sums, [32]);
    const int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    const unsigned lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
    int v = i < n ? in[i] : 0;
    for (int d = 16; d > 0; d /= 2) v += __shfl_down_sync(0xffffffffu, v, d);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        const unsigned warps = blockDim.x / warpSize;
        v = lane < warps ? warp_sums[lane] : 0;
        for (int d = 16; d > 0; d /= 2) v += __shfl_down_sync(0xffffffffu, v, d);
        if (lane == 0) out[blockIdx.x] = v;
    }
}
CC_REGISTER_KERNEL(cc_test_block_reduce);

/* Warp 0 and warp 1 wait at different __syncthreads calls: undefined behaviour on a GPU (usually a hang
 * or silently wrong results). */
extern "C" __global__ void cc_test_divergent_barrier(int* out) {
    const unsigned t = threadIdx.x;
    if (t < 32) {
        out[t] = 1;
        __syncthreads();
    } else {
        out[t] = 2;
        __syncthreads();
    }
}
CC_REGISTER_KERNEL(cc_test_divergent_barrier);

/* Each thread stores to shared memory and reads its neighbour's slot with no __syncthreads between. */
extern "C" __global__ void cc_test_missing_barrier(const int* in, int* out, int n) {
    CC_STATIC_SHARED(int, tile, [256]);
    const unsigned t = threadIdx.x;
    const int i = (int)(blockIdx.x * blockDim.x + t);
    tile[t] = i < n ? in[i] : 0;
    /* missing: __syncthreads(); */
    const int neighbour = tile[(t + 1) % blockDim.x];
    if (i < n) out[i] = neighbour;
}
CC_REGISTER_KERNEL(cc_test_missing_barrier);

/* The three out-of-bounds kernels really corrupt memory, so the plain emulator libraries leave them out:
 * they exist in the sanitizer builds (CC_SANITIZER_BUILD, where the first bad access stops the process)
 * and in the PTX. */
#if !defined(CC_HOST_EMULATOR_BUILD) || defined(CC_SANITIZER_BUILD)

/* Off by one: `<=` writes y[n], one past the end. */
extern "C" __global__ void cc_test_oob_global(float* y, int n) {
    const int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i <= n) y[i] = 1.0f;
}
CC_REGISTER_KERNEL(cc_test_oob_global);

/* Launched with blockDim.x floats of dynamic shared memory; the last thread writes one past the end. */
extern "C" __global__ void cc_test_oob_dynamic_shared(float* out) {
    CC_DYNAMIC_SHARED(float, buf);
    const unsigned t = threadIdx.x;
    buf[t + 1] = (float)t;
    __syncthreads();
    out[t] = buf[t];
}
CC_REGISTER_KERNEL(cc_test_oob_dynamic_shared);

/* A static __shared__ array indexed one past its end by the last of 64 threads. */
extern "C" __global__ void cc_test_oob_static_shared(int* out) {
    CC_STATIC_SHARED(int, s, [64]);
    const unsigned t = threadIdx.x;
    s[t + 1] = (int)t;
    __syncthreads();
    out[t] = s[t % 64];
}
CC_REGISTER_KERNEL(cc_test_oob_static_shared);

#endif /* out-of-bounds kernels */

/* Half the warp names the whole warp in its mask, the other half only itself. */
extern "C" __global__ void cc_test_shuffle_mask_mismatch(int* out) {
    const unsigned lane = threadIdx.x % 32;
    const unsigned mask = lane < 16 ? 0xffffffffu : 0xffff0000u;
    out[threadIdx.x] = __shfl_down_sync(mask, (int)lane, 1);
}
CC_REGISTER_KERNEL(cc_test_shuffle_mask_mismatch);

/* The same shuffle written twice in divergent branches: lanes arrive at different call sites. */
extern "C" __global__ void cc_test_shuffle_site_mismatch(int* out) {
    const unsigned lane = threadIdx.x % 32;
    int v;
    if (lane < 16)
        v = __shfl_xor_sync(0xffffffffu, (int)lane, 16);
    else
        v = __shfl_xor_sync(0xffffffffu, (int)lane, 16);
    out[threadIdx.x] = v;
}
CC_REGISTER_KERNEL(cc_test_shuffle_site_mismatch);

/* Lane 31 is left out of the mask, but lane 30 shuffles down from it. */
extern "C" __global__ void cc_test_inactive_lane_read(int* out) {
    const unsigned lane = threadIdx.x % 32;
    int v = (int)lane;
    if (lane < 31) v = __shfl_down_sync(0x7fffffffu, v, 1);
    out[threadIdx.x] = v;
}
CC_REGISTER_KERNEL(cc_test_inactive_lane_read);

/* Thread 0 waits at __syncthreads while the rest of its warp waits for it in __syncwarp. */
extern "C" __global__ void cc_test_barrier_warp_deadlock(int* out) {
    const unsigned t = threadIdx.x;
    if (t == 0) {
        __syncthreads();
    } else {
        __syncwarp();
        __syncthreads();
    }
    out[t] = 1;
}
CC_REGISTER_KERNEL(cc_test_barrier_warp_deadlock);

/* Threads 32..63 return before the barrier the others wait at. Legal on current GPUs (exited threads
 * do not hold a barrier) but fragile, hence a warning. */
extern "C" __global__ void cc_test_early_return_barrier(int* out) {
    CC_STATIC_SHARED(int, s, [32]);
    const unsigned t = threadIdx.x;
    if (t >= 32) return;
    s[t] = (int)t + 1;
    __syncthreads();
    out[t] = s[t];
}
CC_REGISTER_KERNEL(cc_test_early_return_barrier);

/* mma.sync in a block of 48 threads: the second warp has 16 lanes, and mma needs all 32. */
extern "C" __global__ void cc_test_mma_partial_warp(int* out) {
    const unsigned zero[4] = {0, 0, 0, 0};
    float d[4] = {0, 0, 0, 0};
    cc_mma_tf32_m16n8k8(d, zero, zero, d);
    out[threadIdx.x] = (int)d[0];
}
CC_REGISTER_KERNEL(cc_test_mma_partial_warp);

/* ldmatrix with lane 5's row address 4 bytes past a 16-byte boundary (rows must be 16-byte aligned). */
extern "C" __global__ void cc_test_ldmatrix_misaligned(int* out) {
    CC_STATIC_SHARED(unsigned, s, [8 * 4 + 4]);
    const unsigned lane = threadIdx.x;
    for (unsigned i = lane; i < 8 * 4 + 4; i += 32) s[i] = i;
    __syncwarp();
    unsigned r[1];
    cc_ldmatrix_x1(r, &s[(lane % 8) * 4 + (lane == 5 ? 1 : 0)]);
    out[lane] = (int)r[0];
}
CC_REGISTER_KERNEL(cc_test_ldmatrix_misaligned);
