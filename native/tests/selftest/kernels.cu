/* Kernels of the emulator self-test (tests/selftest/primitives.cpp checks their results). They exercise
 * every primitive of cuda_shim.h and are compiled to PTX as well, which checks the device half of the
 * shim. Not part of any shipped library. */
#include "cheapconv/cuda_shim.h"

/* Sum of blockDim.x floats per block: tree reduction in dynamic shared memory down to one warp, then
 * shuffles. blockDim.x must be a power of two >= 64; dynamic shared = blockDim.x * 4 bytes. */
extern "C" __global__ void st_reduce_dynamic(const float* in, float* out, int n) {
    CC_DYNAMIC_SHARED(float, buf);
    const unsigned t = threadIdx.x;
    const int i = (int)(blockIdx.x * blockDim.x + t);
    buf[t] = i < n ? in[i] : 0.0f;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s >= 32; s /= 2) {
        if (t < s) buf[t] += buf[t + s];
        __syncthreads();
    }
    if (t < 32) {
        float v = buf[t];
        for (int d = 16; d > 0; d /= 2) v += __shfl_xor_sync(0xffffffffu, v, d);
        if (t == 0) out[blockIdx.x] = v;
    }
}
CC_REGISTER_KERNEL(st_reduce_dynamic);

/* Every shuffle flavour at widths 32, 16, 8 on int values, plus float and unsigned spot checks.
 * One block of 64 threads. out: 4 ops * 3 widths * 64 ints, then 64 floats' bits, then 64 unsigned. */
extern "C" __global__ void st_shuffles(int* out, float* fout, unsigned* uout) {
    const unsigned t = threadIdx.x;
    const int v = (int)(t * 10 + 1);
    const int widths[3] = {32, 16, 8};
    for (int w = 0; w < 3; ++w) {
        const int width = widths[w];
        out[(0 * 3 + w) * 64 + t] = __shfl_sync(0xffffffffu, v, (int)(t * 7 + 3), width);
        out[(1 * 3 + w) * 64 + t] = __shfl_up_sync(0xffffffffu, v, 3, width);
        out[(2 * 3 + w) * 64 + t] = __shfl_down_sync(0xffffffffu, v, 3, width);
        out[(3 * 3 + w) * 64 + t] = __shfl_xor_sync(0xffffffffu, v, 5, width);
    }
    fout[t] = __shfl_down_sync(0xffffffffu, (float)t + 0.5f, 1);
    uout[t] = __shfl_sync(0xffffffffu, 0x80000000u | t, 0);
}
CC_REGISTER_KERNEL(st_shuffles);

/* Votes, with the full warp and with half-warp masks. One block of 64 threads; out: 64 * 5 unsigned. */
extern "C" __global__ void st_votes(unsigned* out) {
    const unsigned t = threadIdx.x, lane = t % 32;
    out[0 * 64 + t] = __ballot_sync(0xffffffffu, lane % 3 == 0);
    out[1 * 64 + t] = (unsigned)__any_sync(0xffffffffu, lane == 5);
    out[2 * 64 + t] = (unsigned)__all_sync(0xffffffffu, lane < 31);
    if (lane < 16)
        out[3 * 64 + t] = __ballot_sync(0x0000ffffu, lane & 1);
    else
        out[3 * 64 + t] = __ballot_sync(0xffff0000u, lane & 2);
    __syncwarp();
    out[4 * 64 + t] = (unsigned)__all_sync(0xffffffffu, 1);
}
CC_REGISTER_KERNEL(st_votes);

/* Atomics from every thread of every block (blocks run on several OS threads at once). */
extern "C" __global__ void st_atomics(int* ints, float* f, unsigned* u, unsigned long long* ull) {
    const int gid = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    atomicAdd(&ints[0], 1);
    atomicMax(&ints[1], gid);
    atomicMin(&ints[2], -gid);
    int old = 0; /* a guess; a failed CAS returns the real value (no plain read of a contended word) */
    for (;;) { /* an increment built from compare-and-swap */
        const int seen = atomicCAS(&ints[3], old, old + 1);
        if (seen == old) break;
        old = seen;
    }
    atomicExch(&ints[4], 7);
    atomicSub(&ints[5], 2);
    atomicAdd(f, 0.5f);
    atomicAdd(&u[0], 3u);
    atomicMax(&u[1], (unsigned)gid);
    atomicAdd(ull, 1ull << 32);
    __threadfence();
}
CC_REGISTER_KERNEL(st_atomics);

/* 3D grid and block: each thread writes its coordinates, packed, at its global linear index. */
extern "C" __global__ void st_indices(unsigned* out, unsigned* dims) {
    const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
    const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned local = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    out[block * threads + local] = threadIdx.x | threadIdx.y << 4 | threadIdx.z << 8 | blockIdx.x << 12 |
                                   blockIdx.y << 16 | blockIdx.z << 20;
    if (block == 0 && local == 0) {
        dims[0] = blockDim.x; dims[1] = blockDim.y; dims[2] = blockDim.z;
        dims[3] = gridDim.x; dims[4] = gridDim.y; dims[5] = gridDim.z;
        dims[6] = warpSize;
    }
}
CC_REGISTER_KERNEL(st_indices);

/* Warp-level inclusive scan through shared memory, ordered by __syncwarp (not by shuffles). Block of
 * 64 threads; static shared memory. */
extern "C" __global__ void st_syncwarp_scan(const int* in, int* out) {
    __shared__ int s[64];
    const unsigned t = threadIdx.x, lane = t % 32;
    s[t] = in[t];
    __syncwarp();
    for (unsigned d = 1; d < 32; d *= 2) {
        const int add = lane >= d ? s[t - d] : 0;
        __syncwarp();
        s[t] += add;
        __syncwarp();
    }
    out[t] = s[t];
}
CC_REGISTER_KERNEL(st_syncwarp_scan);

/* The shim's math functions. out: 10 floats per input. */
extern "C" __global__ void st_math(const float* in, float* out, int n) {
    const int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= n) return;
    const float x = in[i];
    float* o = out + 10 * i;
    o[0] = fmaxf(x, 0.25f);
    o[1] = fminf(x, 0.25f);
    o[2] = fmaf(x, 2.0f, 1.0f);
    o[3] = fabsf(x);
    o[4] = sqrtf(fabsf(x));
    o[5] = rsqrtf(fabsf(x) + 1.0f);
    o[6] = expf(x);
    o[7] = logf(fabsf(x) + 1.0f);
    o[8] = (float)max(min((int)(x * 4.0f), 3), -3);
    o[9] = __ldg(&in[i]);
}
CC_REGISTER_KERNEL(st_math);

/* y = a*x + y, one thread per element, no synchronization: the emulator's raw throughput. */
extern "C" __global__ void st_saxpy(float a, const float* x, float* y, int n) {
    const int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n) y[i] = a * x[i] + y[i];
}
CC_REGISTER_KERNEL(st_saxpy);

/* A POD struct by value (like cc_conv_problem) and mixed scalar parameter types. */
extern "C" __global__ void st_params(cc_conv_problem p, unsigned u, float f, int* out) {
    if (threadIdx.x == 0) {
        out[0] = p.n + p.c + p.h + p.w + p.k + p.r + p.s + p.pad_h + p.pad_w + p.stride_h + p.stride_w + p.groups + p.p + p.q;
        out[1] = (int)u;
        out[2] = (int)(f * 4.0f);
    }
}
CC_REGISTER_KERNEL(st_params);

/* A block that is not a whole number of warps (blockDim.x = 48): the missing lanes 48..63 of warp 1 do
 * not exist, so they neither hold up the full-mask vote and shuffle nor appear in the ballot. out: 48 * 3. */
extern "C" __global__ void st_partial_warp(unsigned* out) {
    const unsigned t = threadIdx.x;
    out[t] = __ballot_sync(0xffffffffu, 1);
    out[48 + t] = (unsigned)__shfl_xor_sync(0xffffffffu, (int)t, 1);
    __syncthreads();
    out[96 + t] = (unsigned)__all_sync(0xffffffffu, t < 48);
}
CC_REGISTER_KERNEL(st_partial_warp);
