// Global average pooling and zero padding, NCHW fp32, forward and backward. The CPU reference is
// src/CheapConv/Backends/CpuBackend.Norm.cs; the launcher is native/launch/pooling.cpp.
//
// Launch geometry:
//   cc_global_avg_pool_forward_kernel         one warp per (n, c) plane, 1-D grid, block a multiple of 32
//   cc_global_avg_pool_backward_kernel        one thread per dx element, 1-D grid
//   cc_zero_pad_forward_kernel                one thread per y element (the padded tensor), 1-D grid
//   cc_zero_pad_backward_kernel               one thread per dx element (the crop), 1-D grid
// Every output element is written by exactly one thread; the pooling sum is a per-lane sequential sum
// over a stride of 32 and a fixed shuffle tree: deterministic, no atomics.
//
// Indices are 32-bit (the launcher refuses tensors over 2^31 - 1 elements); thread indices and strided loop
// counters are unsigned so that the overshoot of the last block or stride cannot wrap to a negative index.
#include "cheapconv/cuda_shim.h"
#include "cheapconv/kernels.h" // the declarations these definitions must match
#include "cheapconv/block_reduce.h"

// y[plane] = (sum over the plane's hw values) / hw, plane = n*C + c.
extern "C" __global__ void cc_global_avg_pool_forward_kernel(int planes, int hw, const float* __restrict__ x,
                                                      float* __restrict__ y)
{
    const int lane = threadIdx.x % warpSize;
    const int plane = blockIdx.x * (blockDim.x / warpSize) + threadIdx.x / warpSize;
    // The whole warp leaves together, so the shuffles see all 32 lanes.
    if (plane >= planes) return;
    const float* values = x + plane * hw;
    float sum = 0.0f;
    for (int i = lane; i < hw; i += warpSize) {
        sum += values[i];
    }
    sum = cc_warp_sum(sum);
    if (lane == 0) y[plane] = sum / (float)hw;
}

// dx[plane, i] = dy[plane] / hw.
extern "C" __global__ void cc_global_avg_pool_backward_kernel(int planes, int hw, const float* __restrict__ dy,
                                                       float* __restrict__ dx)
{
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)(planes * hw)) return;
    const int index = (int)thread;
    dx[index] = dy[index / hw] / (float)hw;
}

// y (planes x (h+top+bottom) x (w+left+right)) = x (planes x h x w) in the middle, zeros around it.
extern "C" __global__ void cc_zero_pad_forward_kernel(int planes, int h, int w, int top, int bottom, int left, int right,
                                               const float* __restrict__ x, float* __restrict__ y)
{
    const int out_h = h + top + bottom, out_w = w + left + right;
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)(planes * out_h * out_w)) return;
    const int index = (int)thread;
    const int ow = index % out_w;
    const int oh = (index / out_w) % out_h;
    const int plane = index / (out_w * out_h);
    const int ih = oh - top, iw = ow - left;
    y[index] = (ih >= 0 && ih < h && iw >= 0 && iw < w) ? x[(plane * h + ih) * w + iw] : 0.0f;
}

// dx (planes x h x w) = the middle window of dy (planes x (h+top+bottom) x (w+left+right)).
extern "C" __global__ void cc_zero_pad_backward_kernel(int planes, int h, int w, int top, int bottom, int left, int right,
                                                const float* __restrict__ dy, float* __restrict__ dx)
{
    const int out_h = h + top + bottom, out_w = w + left + right;
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)(planes * h * w)) return;
    const int index = (int)thread;
    const int iw = index % w;
    const int ih = (index / w) % h;
    const int plane = index / (w * h);
    dx[index] = dy[(plane * out_h + ih + top) * out_w + iw + left];
}

CC_REGISTER_KERNEL(cc_global_avg_pool_forward_kernel);
CC_REGISTER_KERNEL(cc_global_avg_pool_backward_kernel);
CC_REGISTER_KERNEL(cc_zero_pad_forward_kernel);
CC_REGISTER_KERNEL(cc_zero_pad_backward_kernel);
