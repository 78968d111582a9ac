// Batch normalization over N x C x H x W (NCHW fp32), with PyTorch's semantics, and its fusion with the
// following ReLU: training forward (batch statistics + running-statistics update), eval forward (running
// statistics) and training backward. The CPU reference is src/CheapConv/Backends/CpuBackend.Norm.cs; the
// launcher that computes the geometry below is native/launch/batchnorm.cpp.
//
// A channel's M = N*H*W values are element j = s*HW + p (sample s, position p) at x[(s*C + c)*HW + p].
//
// Launch geometry:
//   cc_batchnorm_train_stats_kernel           one block per channel (grid C), block a multiple of 32 (256)
//   cc_batchnorm_apply_kernel                 one thread per element, 1-D grid
//   cc_batchnorm_eval_forward_kernel          one thread per element, 1-D grid
//   cc_batchnorm_backward_reduce_kernel       one block per channel (grid C), block a multiple of 32 (256)
//   cc_batchnorm_backward_data_kernel         one thread per element, 1-D grid
// Training forward = train_stats then apply; backward = backward_reduce then backward_data. The per-channel
// reductions are split from the element-wise passes so that the element-wise work spreads over the whole
// GPU even where C is small (16 channels would otherwise occupy 16 SMs).
//
// Statistics are two-pass inside one block: the mean first, then the sum of squared deviations from it.
// Unlike E[x^2] - E[x]^2, that stays accurate when |mean| is large against the spread. Every reduction is
// a per-thread sequential sum over a fixed stride followed by the fixed tree of cheapconv/block_reduce.h:
// deterministic, no atomics.
//
// The fused ReLU's backward recomputes y = gamma * x_hat + beta with the same helper (cc_bn_affine) as the
// forward, so the mask is exactly the forward's y > 0 on the same device.
//
// Indices are 32-bit (the launcher refuses tensors over 2^31 - 1 elements); thread indices and strided loop
// counters are unsigned so that the overshoot of the last block or stride cannot wrap to a negative index.
#include "cheapconv/cuda_shim.h"
#include "cheapconv/kernels.h" // the declarations these definitions must match
#include "cheapconv/block_reduce.h"
#include "cheapconv/bn_arithmetic.h" // cc_bn_affine, cc_bn_eval_invstd, cc_bn_relu: shared with the fused conv epilogue


// Index of element j (0 <= j < N*HW) of channel `channel`.
static __device__ __forceinline__ int cc_bn_index(int j, int channel, int c, int hw)
{
    const int sample = j / hw;
    return (sample * c + channel) * hw + (j - sample * hw);
}

// Per channel: mean, biased variance, invstd = 1/sqrt(var + eps) into save_mean/save_invstd, and
// running = (1 - momentum) * running + momentum * batch with the unbiased variance. Needs N*HW >= 2 (the
// launcher checks: PyTorch refuses training batch norm on one value per channel).
extern "C" __global__ void cc_batchnorm_train_stats_kernel(int n, int c, int hw, const float* __restrict__ x, float momentum,
                                                    float eps, float* __restrict__ running_mean,
                                                    float* __restrict__ running_var, float* __restrict__ save_mean,
                                                    float* __restrict__ save_invstd)
{
    CC_STATIC_SHARED(float, scratch, [CC_MAX_WARPS]);
    const int channel = blockIdx.x;
    const int m = n * hw;

    float sum = 0.0f;
    for (unsigned j = threadIdx.x; j < (unsigned)m; j += blockDim.x) {
        sum += x[cc_bn_index(j, channel, c, hw)];
    }
    const float mean = cc_block_sum(sum, scratch) / (float)m;

    float squares = 0.0f;
    for (unsigned j = threadIdx.x; j < (unsigned)m; j += blockDim.x) {
        const float d = x[cc_bn_index(j, channel, c, hw)] - mean;
        squares = fmaf(d, d, squares);
    }
    const float squares_total = cc_block_sum(squares, scratch);

    if (threadIdx.x == 0) {
        const float var = squares_total / (float)m;
        const float unbiased = squares_total / (float)(m - 1);
        save_mean[channel] = mean;
        save_invstd[channel] = 1.0f / sqrtf(var + eps);
        running_mean[channel] = (1.0f - momentum) * running_mean[channel] + momentum * mean;
        running_var[channel] = (1.0f - momentum) * running_var[channel] + momentum * unbiased;
    }
}

// y = gamma * (x - mean) * invstd + beta with the saved batch statistics; relu != 0 applies max(., 0).
// y may alias x (each thread reads its element before writing it).
extern "C" __global__ void cc_batchnorm_apply_kernel(int n, int c, int hw, const float* x, const float* __restrict__ gamma,
                                              const float* __restrict__ beta, const float* __restrict__ mean,
                                              const float* __restrict__ invstd, int relu, float* y)
{
    const int total = n * c * hw;
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)total) return;
    const int index = (int)thread;
    const int channel = (index / hw) % c;
    float v = cc_bn_affine(x[index], mean[channel], invstd[channel], gamma[channel], beta[channel]);
    if (relu && !(v > 0.0f)) v = 0.0f;
    y[index] = v;
}

// Eval mode: the running statistics instead of the batch's; relu != 0 applies max(., 0).
extern "C" __global__ void cc_batchnorm_eval_forward_kernel(int n, int c, int hw, const float* x,
                                                     const float* __restrict__ gamma, const float* __restrict__ beta,
                                                     const float* __restrict__ running_mean,
                                                     const float* __restrict__ running_var, float eps, int relu,
                                                     float* y)
{
    const int total = n * c * hw;
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)total) return;
    const int index = (int)thread;
    const int channel = (index / hw) % c;
    const float invstd = cc_bn_eval_invstd(running_var[channel], eps);
    const float v = cc_bn_affine(x[index], running_mean[channel], invstd, gamma[channel], beta[channel]);
    y[index] = relu ? cc_bn_relu(v) : v;
}

// Per channel: dbeta = sum of g, dgamma = sum of g * x_hat, where g = dy, or dy masked by y > 0 when relu != 0.
extern "C" __global__ void cc_batchnorm_backward_reduce_kernel(int n, int c, int hw, const float* __restrict__ x,
                                                        const float* __restrict__ dy, const float* __restrict__ gamma,
                                                        const float* __restrict__ beta,
                                                        const float* __restrict__ mean,
                                                        const float* __restrict__ invstd, int relu,
                                                        float* __restrict__ dgamma, float* __restrict__ dbeta)
{
    CC_STATIC_SHARED(float, scratch, [CC_MAX_WARPS]);
    const int channel = blockIdx.x;
    const int m = n * hw;
    const float mu = mean[channel], is = invstd[channel], ga = gamma[channel], be = beta[channel];

    float sum_g = 0.0f, sum_g_xhat = 0.0f;
    for (unsigned j = threadIdx.x; j < (unsigned)m; j += blockDim.x) {
        const int index = cc_bn_index(j, channel, c, hw);
        const float x_hat = (x[index] - mu) * is;
        float g = dy[index];
        if (relu && !(cc_bn_affine(x[index], mu, is, ga, be) > 0.0f)) g = 0.0f;
        sum_g += g;
        sum_g_xhat = fmaf(g, x_hat, sum_g_xhat);
    }
    const float total_g = cc_block_sum(sum_g, scratch);
    const float total_g_xhat = cc_block_sum(sum_g_xhat, scratch);
    if (threadIdx.x == 0) {
        dbeta[channel] = total_g;
        dgamma[channel] = total_g_xhat;
    }
}

// dx = gamma * invstd / M * (M * g - dbeta - x_hat * dgamma), g as in the reduce pass; with accumulate, dx += that.
extern "C" __global__ void cc_batchnorm_backward_data_kernel(int n, int c, int hw, const float* __restrict__ x,
                                                      const float* __restrict__ dy, const float* __restrict__ gamma,
                                                      const float* __restrict__ beta,
                                                      const float* __restrict__ mean,
                                                      const float* __restrict__ invstd,
                                                      const float* __restrict__ dgamma,
                                                      const float* __restrict__ dbeta, int relu, int accumulate,
                                                      float* __restrict__ dx)
{
    const int total = n * c * hw;
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)total) return;
    const int index = (int)thread;
    const int channel = (index / hw) % c;
    const float m = (float)(n * hw);
    const float mu = mean[channel], is = invstd[channel], ga = gamma[channel];
    const float x_hat = (x[index] - mu) * is;
    float g = dy[index];
    if (relu && !(cc_bn_affine(x[index], mu, is, ga, beta[channel]) > 0.0f)) g = 0.0f;
    const float gradient = ga * is / m * fmaf(-x_hat, dgamma[channel], m * g - dbeta[channel]);
    // Accumulating: the gradient rounded to fp32, then one rounded add (never contracted into the product above), so
    // the bits are those of storing it and adding it to dx afterwards (cc_axpy_kernel with alpha 1).
    dx[index] = accumulate ? cc_add_rn(dx[index], gradient) : gradient;
}

CC_REGISTER_KERNEL(cc_batchnorm_train_stats_kernel);
CC_REGISTER_KERNEL(cc_batchnorm_apply_kernel);
CC_REGISTER_KERNEL(cc_batchnorm_eval_forward_kernel);
CC_REGISTER_KERNEL(cc_batchnorm_backward_reduce_kernel);
CC_REGISTER_KERNEL(cc_batchnorm_backward_data_kernel);
