/* The per-element arithmetic of batch normalisation, shared by kernels/batchnorm.cu and the fused epilogues of the
 * implicit-GEMM convolutions (kernels/implicit_gemm.cu): one definition, so the fused and the separate launch
 * give the same bits (the C# reference, CpuBackend.Norm.cs, writes the same expressions). Device code only. */
#ifndef CHEAPCONV_BN_ARITHMETIC_H
#define CHEAPCONV_BN_ARITHMETIC_H

#include "cheapconv/cuda_shim.h"

/* y = gamma * ((x - mean) * invstd) + beta, one rounding for the multiply-add. Shared by every pass so forward and
 * backward agree on y (the fused ReLU's backward recomputes its mask with it). */
static __device__ __forceinline__ float cc_bn_affine(float x, float mean, float invstd, float gamma, float beta)
{
    return fmaf(gamma, (x - mean) * invstd, beta);
}

/* Eval mode's invstd from the running variance. */
static __device__ __forceinline__ float cc_bn_eval_invstd(float running_var, float eps) { return 1.0f / sqrtf(running_var + eps); }

/* max(v, 0), with NaN (and -0) to 0: the fused ReLU of every batch-norm kernel. */
static __device__ __forceinline__ float cc_bn_relu(float v) { return v > 0.0f ? v : 0.0f; }

/* x_hat = (x - mean) invstd, as the training backward normalises. */
static __device__ __forceinline__ float cc_bn_x_hat(float x, float mean, float invstd) { return (x - mean) * invstd; }

/* The training backward's per-element terms, shared by every backward kernel of batchnorm.cu and the data-gradient
 * epilogue of implicit_gemm.cu that sums them (cc_conv_backward_data_bn_sums): x_hat, and g = dy, or 0 where the fused
 * ReLU's mask (the forward's y > 0, recomputed with cc_bn_affine) is off. */
static __device__ __forceinline__ float cc_bn_masked_gradient(float x, float dy, float mu, float is, float ga, float be, int relu,
                                                              float* x_hat)
{
    *x_hat = cc_bn_x_hat(x, mu, is);
    return relu && !(cc_bn_affine(x, mu, is, ga, be) > 0.0f) ? 0.0f : dy;
}

#endif
