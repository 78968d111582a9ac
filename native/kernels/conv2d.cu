// Direct 2D convolution, NCHW fp32, any groups / R x S / stride / padding: forward, backward-data and
// backward-weight. These are the correct-first kernels every specialised variant (depthwise, pointwise
// GEMM, tiled grouped 3x3) is validated against on the device; the CPU reference is
// src/CheapConv/Backends/CpuBackend.cs.
//
// Shapes (see cheapconv/problem.h): x N x C x H x W, w K x (C/groups) x R x S, y N x K x P x Q.
// Launch geometry (computed by native/launch/conv.cpp):
//   cc_conv2d_forward_kernel                  one thread per y element,  1-D grid, any block size
//   cc_conv2d_backward_data_kernel            one thread per dx element, 1-D grid, any block size
//   cc_conv2d_backward_weight_kernel          one warp per dw element,   1-D grid, block size a multiple of 32
// Indices are 32-bit: cc_conv_validate refuses tensors of more than 2^31-1 elements.
// No atomics anywhere: every output element is written by exactly one thread, so results are
// deterministic run to run.
#include "cheapconv/cuda_shim.h"
#include "cheapconv/kernels.h" // the declarations these definitions must match
#include "cheapconv/problem.h"

// Each output element y[n, k, p, q] sums x over its group's input channels and the R x S window.
extern "C" __global__ void cc_conv2d_forward_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                             const float* __restrict__ w, float* __restrict__ y)
{
    const int total = pr.n * pr.k * pr.p * pr.q;
    // Unsigned: blockIdx.x * blockDim.x can exceed INT_MAX in the last block of a tensor near 2^31 elements.
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)total) return;
    const int index = (int)thread;

    const int q = index % pr.q;
    const int p = (index / pr.q) % pr.p;
    const int k = (index / (pr.q * pr.p)) % pr.k;
    const int n = index / (pr.q * pr.p * pr.k);

    const int channels_per_group = pr.c / pr.groups;
    const int group = k / (pr.k / pr.groups);
    const int h0 = p * pr.stride_h - pr.pad_h;
    const int w0 = q * pr.stride_w - pr.pad_w;

    const float* filter = w + k * channels_per_group * pr.r * pr.s;
    const float* image = x + (n * pr.c + group * channels_per_group) * pr.h * pr.w;

    float acc = 0.0f;
    for (int c = 0; c < channels_per_group; ++c) {
        const float* plane = image + c * pr.h * pr.w;
        const float* taps = filter + c * pr.r * pr.s;
        for (int r = 0; r < pr.r; ++r) {
            const int h = h0 + r;
            if (h < 0 || h >= pr.h) continue;
            for (int s = 0; s < pr.s; ++s) {
                const int wi = w0 + s;
                if (wi < 0 || wi >= pr.w) continue;
                acc = fmaf(plane[h * pr.w + wi], taps[r * pr.s + s], acc);
            }
        }
    }
    y[index] = acc;
}

// dx[n, c, h, w] gathers from every output position whose window covered (h, w): for tap (r, s) that is
// p = (h + pad_h - r) / stride_h when the division is exact and p lies inside the output.
extern "C" __global__ void cc_conv2d_backward_data_kernel(cc_conv_problem pr, const float* __restrict__ dy,
                                                   const float* __restrict__ w, float* __restrict__ dx, int accumulate)
{
    const int total = pr.n * pr.c * pr.h * pr.w;
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)total) return;
    const int index = (int)thread;

    const int wi = index % pr.w;
    const int h = (index / pr.w) % pr.h;
    const int c = (index / (pr.w * pr.h)) % pr.c;
    const int n = index / (pr.w * pr.h * pr.c);

    const int channels_per_group = pr.c / pr.groups;
    const int filters_per_group = pr.k / pr.groups;
    const int group = c / channels_per_group;
    const int c_in_group = c % channels_per_group;

    float acc = 0.0f;
    for (int kk = 0; kk < filters_per_group; ++kk) {
        const int k = group * filters_per_group + kk;
        const float* grad_plane = dy + (n * pr.k + k) * pr.p * pr.q;
        const float* taps = w + (k * channels_per_group + c_in_group) * pr.r * pr.s;
        for (int r = 0; r < pr.r; ++r) {
            const int hp = h + pr.pad_h - r;
            if (hp < 0 || hp % pr.stride_h != 0) continue;
            const int p = hp / pr.stride_h;
            if (p >= pr.p) continue;
            for (int s = 0; s < pr.s; ++s) {
                const int wq = wi + pr.pad_w - s;
                if (wq < 0 || wq % pr.stride_w != 0) continue;
                const int q = wq / pr.stride_w;
                if (q >= pr.q) continue;
                acc = fmaf(grad_plane[p * pr.q + q], taps[r * pr.s + s], acc);
            }
        }
    }
    // accumulate: dx += the rounded sum, one rounded add (cuda_shim.h, cc_add_rn): the bits of a later cc_axpy.
    dx[index] = accumulate ? cc_add_rn(dx[index], acc) : acc;
}

// dw[k, c, r, s] = sum over n, p, q of dy[n, k, p, q] * x[n, group*C/groups + c, p*stride - pad + r, ...].
// One warp owns one weight element: its lanes stride over the N*P*Q positions, then a shuffle tree adds
// the 32 partial sums. A fixed order of additions per lane and a fixed tree make the result
// deterministic without atomics.
extern "C" __global__ void cc_conv2d_backward_weight_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                     const float* __restrict__ dy, float* __restrict__ dw)
{
    const int channels_per_group = pr.c / pr.groups;
    const int total = pr.k * channels_per_group * pr.r * pr.s;
    const int warps_per_block = blockDim.x / warpSize;
    const int lane = threadIdx.x % warpSize;
    const unsigned warp = blockIdx.x * warps_per_block + threadIdx.x / warpSize;
    // The whole warp leaves together, so the shuffles below always see all 32 lanes.
    if (warp >= (unsigned)total) return;
    const int index = (int)warp;

    const int s = index % pr.s;
    const int r = (index / pr.s) % pr.r;
    const int c_in_group = (index / (pr.s * pr.r)) % channels_per_group;
    const int k = index / (pr.s * pr.r * channels_per_group);
    const int c = (k / (pr.k / pr.groups)) * channels_per_group + c_in_group;

    const int positions = pr.n * pr.p * pr.q;
    float acc = 0.0f;
    for (int i = lane; i < positions; i += warpSize) {
        const int q = i % pr.q;
        const int p = (i / pr.q) % pr.p;
        const int n = i / (pr.q * pr.p);
        const int h = p * pr.stride_h - pr.pad_h + r;
        const int wi = q * pr.stride_w - pr.pad_w + s;
        if (h < 0 || h >= pr.h || wi < 0 || wi >= pr.w) continue;
        const float g = dy[((n * pr.k + k) * pr.p + p) * pr.q + q];
        const float v = x[((n * pr.c + c) * pr.h + h) * pr.w + wi];
        acc = fmaf(g, v, acc);
    }
    for (int offset = warpSize / 2; offset > 0; offset /= 2) {
        acc += __shfl_down_sync(0xffffffffu, acc, offset);
    }
    if (lane == 0) dw[index] = acc;
}

CC_REGISTER_KERNEL(cc_conv2d_forward_kernel);
CC_REGISTER_KERNEL(cc_conv2d_backward_data_kernel);
CC_REGISTER_KERNEL(cc_conv2d_backward_weight_kernel);
