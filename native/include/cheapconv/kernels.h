/* CheapConv kernels: the declaration of every production kernel and the list of them.
 *
 * Why a header for kernels nobody calls by name: the launchers (native/launch) pack each kernel's
 * arguments from the parameter types declared here, and every native/kernels/<module>.cu includes this
 * file, so a definition that drifts from its declaration (a parameter added, removed or retyped) is a
 * compile error in the kernel build ("conflicting declaration of C function"), and a launcher that passes
 * the wrong count or type of arguments is a compile error in the launcher build. The launchers only take
 * decltype(&kernel): they never odr-use a kernel, so libcheapconv.so links without the kernels' host
 * versions (it loads them from PTX/fatbin images instead).
 *
 * Included by: the kernel sources in all three shim modes (clang PTX, nvcc, host emulator) and the
 * launchers (host g++, where cuda_shim.h makes __global__ empty). `__restrict__` is spelled as in the
 * definitions: it documents which pointers must not alias (they become ld.global.nc on the GPU).
 *
 * CC_KERNEL_MODULES(X) lists the kernel source files (X(module)); CC_KERNELS(X) lists every kernel as
 * X(module, short_name), the kernel being cc_<short_name>_kernel in native/kernels/<module>.cu.
 * tests/check_ptx.sh checks that every CC_REGISTER_KERNEL of a source is in CC_KERNELS with that module.
 * Adding a kernel: declare it here, add it to CC_KERNELS, define and register it in its module. */
#ifndef CHEAPCONV_KERNELS_H
#define CHEAPCONV_KERNELS_H

#include "cheapconv.h" /* cc_conv_input_bn, passed by value to the input-batch-norm kernels */
#include "cheapconv/cuda_shim.h"
#include "cheapconv/fused_grid.h"
#include "cheapconv/halo_plan.h"
#include "cheapconv/problem.h"
#include "cheapconv/split_reduce.h"
#include "cheapconv/tiled_plan.h"

#define CC_KERNEL_NAME(short_name) cc_##short_name##_kernel

#define CC_KERNEL_MODULES(X) \
    X(batchnorm)             \
    X(conv2d)                \
    X(conv2d_tiled)          \
    X(elementwise)           \
    X(gemm)                  \
    X(implicit_gemm)         \
    X(losses)                \
    X(optim)                 \
    X(pooling)

#define CC_KERNELS(X)                           \
    X(batchnorm, batchnorm_train_stats)         \
    X(batchnorm, batchnorm_apply)               \
    X(batchnorm, batchnorm_eval_forward)        \
    X(batchnorm, batchnorm_backward_reduce)     \
    X(batchnorm, batchnorm_backward_data)       \
    X(batchnorm, batchnorm_train_forward_cluster) \
    X(batchnorm, batchnorm_backward_cluster)    \
    X(batchnorm, batchnorm_train_forward_from_stats) \
    X(batchnorm, batchnorm_statistics_from_stats) \
    X(batchnorm, batchnorm_backward_from_sums)  \
    X(conv2d, conv2d_forward)                   \
    X(conv2d, conv2d_backward_data)             \
    X(conv2d, conv2d_backward_weight)           \
    X(conv2d_tiled, conv2d_tiled_forward_s1)    \
    X(conv2d_tiled, conv2d_tiled_forward_s2)    \
    X(conv2d_tiled, conv2d_tiled_forward_bn_stats_s1) \
    X(conv2d_tiled, conv2d_tiled_forward_bn_stats_s2) \
    X(conv2d_tiled, conv2d_tiled_forward_residual_bn_stats_s1) \
    X(conv2d_tiled, conv2d_tiled_forward_residual_bn_stats_s2) \
    X(conv2d_tiled, conv2d_tiled_backward_data_s1) \
    X(conv2d_tiled, conv2d_tiled_backward_data_s2) \
    X(conv2d_tiled, conv2d_tiled_backward_weight_s1) \
    X(conv2d_tiled, conv2d_tiled_backward_weight_s2) \
    X(conv2d_tiled, conv2d_tiled_backward_s1)   \
    X(conv2d_tiled, conv2d_tiled_backward_s2)   \
    X(elementwise, relu_forward)                \
    X(elementwise, relu_backward)               \
    X(elementwise, add)                         \
    X(elementwise, fill)                        \
    X(elementwise, scale)                       \
    X(elementwise, axpy)                        \
    X(elementwise, sum_partials)                \
    X(elementwise, sum_final)                   \
    X(elementwise, first_nonfinite)             \
    X(gemm, pointwise_forward)                  \
    X(gemm, pointwise_backward_data)            \
    X(gemm, pointwise_backward_weight)          \
    X(gemm, linear_forward)                     \
    X(gemm, linear_backward_data)               \
    X(gemm, linear_backward_weight)             \
    X(gemm, gemm_column_sums)                   \
    X(implicit_gemm, implicit_gemm_forward_1x1) \
    X(implicit_gemm, implicit_gemm_forward_3x3) \
    X(implicit_gemm, implicit_gemm_forward_3x3_wide) \
    X(implicit_gemm, implicit_gemm_forward_3x3_flat) \
    X(implicit_gemm, implicit_gemm_backward_data_1x1) \
    X(implicit_gemm, implicit_gemm_backward_data_1x1_bn_sums) \
    X(implicit_gemm, implicit_gemm_backward_data_3x3) \
    X(implicit_gemm, implicit_gemm_backward_data_3x3_stride2) \
    X(implicit_gemm, implicit_gemm_backward_weight_1x1) \
    X(implicit_gemm, implicit_gemm_backward_weight_3x3) \
    X(implicit_gemm, implicit_gemm_backward_1x1) \
    X(implicit_gemm, implicit_gemm_backward_3x3) \
    X(implicit_gemm, implicit_gemm_backward_3x3_stride2) \
    X(implicit_gemm, implicit_gemm_forward_1x1_input_bn) \
    X(implicit_gemm, implicit_gemm_backward_weight_1x1_input_bn) \
    X(implicit_gemm, implicit_gemm_backward_1x1_input_bn) \
    X(losses, cross_entropy_forward)            \
    X(losses, cross_entropy_backward)           \
    X(losses, kd_forward)                       \
    X(losses, kd_backward)                      \
    X(losses, at_forward)                       \
    X(losses, at_backward)                      \
    X(losses, loss_reduce)                      \
    X(losses, count_correct)                    \
    X(losses, count_correct_f32)                \
    X(optim, sgd_step)                          \
    X(pooling, global_avg_pool_forward)         \
    X(pooling, global_avg_pool_backward)        \
    X(pooling, zero_pad_forward)                \
    X(pooling, zero_pad_backward)

/* ---- batchnorm.cu ---- */
extern "C" __global__ void cc_batchnorm_train_stats_kernel(int n, int c, int hw, const float* __restrict__ x, float momentum,
                                                           float eps, float* __restrict__ running_mean,
                                                           float* __restrict__ running_var, float* __restrict__ save_mean,
                                                           float* __restrict__ save_invstd);
extern "C" __global__ void cc_batchnorm_apply_kernel(int n, int c, int hw, const float* x, const float* __restrict__ gamma,
                                                     const float* __restrict__ beta, const float* __restrict__ mean,
                                                     const float* __restrict__ invstd, int relu, float* y);
extern "C" __global__ void cc_batchnorm_eval_forward_kernel(int n, int c, int hw, const float* x,
                                                            const float* __restrict__ gamma, const float* __restrict__ beta,
                                                            const float* __restrict__ running_mean,
                                                            const float* __restrict__ running_var, float eps, int relu,
                                                            float* y);
extern "C" __global__ void cc_batchnorm_backward_reduce_kernel(int n, int c, int hw, const float* __restrict__ x,
                                                               const float* __restrict__ dy, const float* __restrict__ gamma,
                                                               const float* __restrict__ beta, const float* __restrict__ mean,
                                                               const float* __restrict__ invstd, int relu,
                                                               float* __restrict__ dgamma, float* __restrict__ dbeta);
extern "C" __global__ void cc_batchnorm_backward_data_kernel(int n, int c, int hw, const float* __restrict__ x,
                                                             const float* __restrict__ dy, const float* __restrict__ gamma,
                                                             const float* __restrict__ beta, const float* __restrict__ mean,
                                                             const float* __restrict__ invstd,
                                                             const float* __restrict__ dgamma,
                                                             const float* __restrict__ dbeta, int relu, int accumulate,
                                                             float* __restrict__ dx);
/* The one-launch training kernels (sm_90 thread-block clusters): CC_BN_CLUSTER_BLOCKS blocks per channel, grid
 * C * CC_BN_CLUSTER_BLOCKS. */
#define CC_BN_CLUSTER_BLOCKS 8
extern "C" __global__ void cc_batchnorm_train_forward_cluster_kernel(int n, int c, int hw, const float* x,
                                                                     const float* __restrict__ gamma,
                                                                     const float* __restrict__ beta, float momentum, float eps,
                                                                     float* __restrict__ running_mean,
                                                                     float* __restrict__ running_var,
                                                                     float* __restrict__ save_mean,
                                                                     float* __restrict__ save_invstd, int relu, float* y);
/* Training forward from the statistics slots of a forward convolution (cc_implicit_gemm_forward_*_kernel's `stats`): grid
 * (C, parts), every block combines its channel's `slots` slots and applies to its part of the channel. */
extern "C" __global__ void cc_batchnorm_train_forward_from_stats_kernel(int n, int c, int hw, int slots, const float* __restrict__ stats,
                                                                        const float* x, const float* __restrict__ gamma,
                                                                        const float* __restrict__ beta, float momentum, float eps,
                                                                        float* __restrict__ running_mean,
                                                                        float* __restrict__ running_var,
                                                                        float* __restrict__ save_mean,
                                                                        float* __restrict__ save_invstd, int relu, float* y);
/* The statistics of cc_batchnorm_train_forward_from_stats_kernel alone (no y): grid C, the same block size. */
extern "C" __global__ void cc_batchnorm_statistics_from_stats_kernel(int n, int c, int hw, int slots, const float* __restrict__ stats,
                                                                     float momentum, float eps, float* __restrict__ running_mean,
                                                                     float* __restrict__ running_var, float* __restrict__ save_mean,
                                                                     float* __restrict__ save_invstd);
/* Training backward from the sums slots of a 1x1 data gradient (cc_implicit_gemm_backward_data_1x1_bn_sums_kernel's `sums`):
 * grid (C, parts), every block adds its channel's `slots` slots and computes dx for its part of the channel. */
extern "C" __global__ void cc_batchnorm_backward_from_sums_kernel(int n, int c, int hw, int slots, const float* __restrict__ sums,
                                                                  const float* __restrict__ x, const float* __restrict__ dy,
                                                                  const float* __restrict__ gamma, const float* __restrict__ beta,
                                                                  const float* __restrict__ mean, const float* __restrict__ invstd,
                                                                  int relu, int accumulate, float* __restrict__ dgamma,
                                                                  float* __restrict__ dbeta, float* __restrict__ dx);
extern "C" __global__ void cc_batchnorm_backward_cluster_kernel(int n, int c, int hw, const float* __restrict__ x,
                                                                const float* __restrict__ dy, const float* __restrict__ gamma,
                                                                const float* __restrict__ beta, const float* __restrict__ mean,
                                                                const float* __restrict__ invstd, int relu, int accumulate,
                                                                float* __restrict__ dgamma, float* __restrict__ dbeta,
                                                                float* __restrict__ dx);

/* ---- conv2d.cu ---- */
extern "C" __global__ void cc_conv2d_forward_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                    const float* __restrict__ w, float* __restrict__ y);
extern "C" __global__ void cc_conv2d_backward_data_kernel(cc_conv_problem pr, const float* __restrict__ dy,
                                                          const float* __restrict__ w, float* __restrict__ dx, int accumulate);
extern "C" __global__ void cc_conv2d_backward_weight_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                            const float* __restrict__ dy, float* __restrict__ dw);

/* ---- conv2d_tiled.cu ---- */
extern "C" __global__ void cc_conv2d_tiled_forward_s1_kernel(cc_conv_problem pr, cc_tiled_plan plan, const float* __restrict__ x,
                                                             const float* __restrict__ w, float* __restrict__ y);
extern "C" __global__ void cc_conv2d_tiled_forward_bn_stats_s1_kernel(cc_conv_problem pr, cc_tiled_plan plan, const float* __restrict__ x,
                                                                      const float* __restrict__ w, float* __restrict__ y,
                                                                      float* __restrict__ stats);
extern "C" __global__ void cc_conv2d_tiled_forward_residual_bn_stats_s1_kernel(cc_conv_problem pr, cc_tiled_plan plan,
                                                                               const float* __restrict__ x, const float* __restrict__ w,
                                                                               const float* __restrict__ residual, float* __restrict__ y,
                                                                               float* __restrict__ stats);
extern "C" __global__ void cc_conv2d_tiled_forward_s2_kernel(cc_conv_problem pr, cc_tiled_plan plan, const float* __restrict__ x,
                                                             const float* __restrict__ w, float* __restrict__ y);
extern "C" __global__ void cc_conv2d_tiled_forward_bn_stats_s2_kernel(cc_conv_problem pr, cc_tiled_plan plan, const float* __restrict__ x,
                                                                      const float* __restrict__ w, float* __restrict__ y,
                                                                      float* __restrict__ stats);
extern "C" __global__ void cc_conv2d_tiled_forward_residual_bn_stats_s2_kernel(cc_conv_problem pr, cc_tiled_plan plan,
                                                                               const float* __restrict__ x, const float* __restrict__ w,
                                                                               const float* __restrict__ residual, float* __restrict__ y,
                                                                               float* __restrict__ stats);
extern "C" __global__ void cc_conv2d_tiled_backward_data_s1_kernel(cc_conv_problem pr, cc_tiled_plan plan,
                                                                   const float* __restrict__ dy, const float* __restrict__ w,
                                                                   float* __restrict__ dx, int accumulate);
extern "C" __global__ void cc_conv2d_tiled_backward_data_s2_kernel(cc_conv_problem pr, cc_tiled_plan plan,
                                                                   const float* __restrict__ dy, const float* __restrict__ w,
                                                                   float* __restrict__ dx, int accumulate);
extern "C" __global__ void cc_conv2d_tiled_backward_weight_s1_kernel(cc_conv_problem pr, cc_tiled_plan plan,
                                                                     const float* __restrict__ x, const float* __restrict__ dy,
                                                                     cc_split_target out);
extern "C" __global__ void cc_conv2d_tiled_backward_weight_s2_kernel(cc_conv_problem pr, cc_tiled_plan plan,
                                                                     const float* __restrict__ x, const float* __restrict__ dy,
                                                                     cc_split_target out);
/* Both gradients in one launch (cheapconv/fused_grid.h): the weight gradient's blocks, then the data gradient's. */
extern "C" __global__ void cc_conv2d_tiled_backward_s1_kernel(cc_conv_problem pr, cc_fused_grid grid, cc_tiled_plan data_plan,
                                                              cc_tiled_plan weight_plan, const float* __restrict__ x,
                                                              const float* __restrict__ dy, const float* __restrict__ w,
                                                              float* __restrict__ dx, int accumulate, cc_split_target dw);
extern "C" __global__ void cc_conv2d_tiled_backward_s2_kernel(cc_conv_problem pr, cc_fused_grid grid, cc_tiled_plan data_plan,
                                                              cc_tiled_plan weight_plan, const float* __restrict__ x,
                                                              const float* __restrict__ dy, const float* __restrict__ w,
                                                              float* __restrict__ dx, int accumulate, cc_split_target dw);

/* ---- elementwise.cu ---- */
extern "C" __global__ void cc_relu_forward_kernel(int length, const float* x, float* y);
extern "C" __global__ void cc_relu_backward_kernel(int length, const float* y, const float* dy, float* dx);
extern "C" __global__ void cc_add_kernel(int length, const float* a, const float* b, float* y);
extern "C" __global__ void cc_fill_kernel(int length, float value, float* __restrict__ x);
extern "C" __global__ void cc_scale_kernel(int length, float alpha, float* __restrict__ x);
extern "C" __global__ void cc_axpy_kernel(int length, float alpha, const float* x, float* y);
extern "C" __global__ void cc_sum_partials_kernel(int length, const float* __restrict__ x, float* __restrict__ partials);
extern "C" __global__ void cc_sum_final_kernel(int count, const float* __restrict__ partials, float* __restrict__ result);

/* The block size cc_first_nonfinite_kernel is written for (its shared-memory tree). */
#define CC_FIRST_NONFINITE_BLOCK 256
extern "C" __global__ void cc_first_nonfinite_kernel(const cc_tensor_ref* __restrict__ tensors, float* __restrict__ result);

/* ---- gemm.cu ---- */
extern "C" __global__ void cc_pointwise_forward_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                       const float* __restrict__ w, float* __restrict__ y);
extern "C" __global__ void cc_pointwise_backward_data_kernel(cc_conv_problem pr, const float* __restrict__ dy,
                                                             const float* __restrict__ w, float* __restrict__ dx, int accumulate);
extern "C" __global__ void cc_pointwise_backward_weight_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                               const float* __restrict__ dy,
                                                               cc_split_target out, int k_chunk);
extern "C" __global__ void cc_linear_forward_kernel(int n, int in, int out, const float* __restrict__ x,
                                                    const float* __restrict__ w, const float* __restrict__ b,
                                                    float* __restrict__ y);
extern "C" __global__ void cc_linear_backward_data_kernel(int n, int in, int out, const float* __restrict__ dy,
                                                          const float* __restrict__ w, float* __restrict__ dx);
extern "C" __global__ void cc_linear_backward_weight_kernel(int n, int in, int out, const float* __restrict__ x,
                                                            const float* __restrict__ dy,
                                                            cc_split_target target, int k_chunk);
extern "C" __global__ void cc_gemm_column_sums_kernel(int rows, int cols, const float* __restrict__ src,
                                                      float* __restrict__ dst);

/* ---- implicit_gemm.cu ---- */
extern "C" __global__ void cc_implicit_gemm_forward_1x1_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                               const float* __restrict__ w, float* __restrict__ y,
                                                               cc_conv_epilogue ep, float* __restrict__ stats, int vectorized);
extern "C" __global__ void cc_implicit_gemm_forward_3x3_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                               const float* __restrict__ w, float* __restrict__ y,
                                                               cc_conv_epilogue ep, float* __restrict__ stats, int vectorized, cc_halo_plan halo);
extern "C" __global__ void cc_implicit_gemm_forward_3x3_wide_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                                    const float* __restrict__ w, float* __restrict__ y,
                                                                    cc_conv_epilogue ep, float* __restrict__ stats, int vectorized, cc_halo_plan halo);
extern "C" __global__ void cc_implicit_gemm_forward_3x3_flat_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                                    const float* __restrict__ w, float* __restrict__ y,
                                                                    cc_conv_epilogue ep, float* __restrict__ stats, int vectorized, cc_halo_plan halo);
extern "C" __global__ void cc_implicit_gemm_backward_data_1x1_kernel(cc_conv_problem pr, const float* __restrict__ dy,
                                                                     const float* __restrict__ w, float* __restrict__ dx,
                                                                     int vectorized, int accumulate);
/* The 1x1 data gradient (dx overwritten) that also writes, per block column and input channel, the training batch norm's
 * backward sums of dx against z (the batch norm's input, with bn_mean / bn_invstd / bn_gamma / bn_beta / bn_relu). */
extern "C" __global__ void cc_implicit_gemm_backward_data_1x1_bn_sums_kernel(cc_conv_problem pr, const float* __restrict__ dy,
                                                                             const float* __restrict__ w, float* __restrict__ dx,
                                                                             int vectorized, const float* __restrict__ bn_mean,
                                                                             const float* __restrict__ bn_invstd,
                                                                             const float* __restrict__ bn_gamma,
                                                                             const float* __restrict__ bn_beta, int bn_relu,
                                                                             const float* __restrict__ z, float* __restrict__ sums);
extern "C" __global__ void cc_implicit_gemm_backward_data_3x3_kernel(cc_conv_problem pr, const float* __restrict__ dy,
                                                                     const float* __restrict__ w, float* __restrict__ dx,
                                                                     int vectorized, int accumulate, cc_halo_plan halo);
extern "C" __global__ void cc_implicit_gemm_backward_data_3x3_stride2_kernel(cc_conv_problem pr, const float* __restrict__ dy,
                                                                             const float* __restrict__ w,
                                                                             float* __restrict__ dx, int vectorized, int accumulate);
extern "C" __global__ void cc_implicit_gemm_backward_weight_1x1_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                                       const float* __restrict__ dy,
                                                                       cc_split_target out, int k_chunk,
                                                                       int vectorized);
extern "C" __global__ void cc_implicit_gemm_backward_weight_3x3_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                                       const float* __restrict__ dy,
                                                                       cc_split_target out, int k_chunk,
                                                                       int vectorized);
/* Both gradients in one launch (cheapconv/fused_grid.h): the weight gradient's blocks, then the data gradient's (halo:
 * dy's window for the stride-1 3x3 data gradient, as cc_implicit_gemm_backward_data_3x3_kernel's; unused by the others). */
#define CC_IMPLICIT_GEMM_BACKWARD_PARAMETERS                                                                              \
    cc_conv_problem pr, cc_fused_grid grid, const float* __restrict__ x, const float* __restrict__ dy,                     \
        const float* __restrict__ w, float* __restrict__ dx, int data_vectorized, int accumulate, cc_split_target dw, \
        int k_chunk, int weight_vectorized, cc_halo_plan halo
extern "C" __global__ void cc_implicit_gemm_backward_1x1_kernel(CC_IMPLICIT_GEMM_BACKWARD_PARAMETERS);
extern "C" __global__ void cc_implicit_gemm_backward_3x3_kernel(CC_IMPLICIT_GEMM_BACKWARD_PARAMETERS);
extern "C" __global__ void cc_implicit_gemm_backward_3x3_stride2_kernel(CC_IMPLICIT_GEMM_BACKWARD_PARAMETERS);
/* The 1x1 kernels (stride 1, no padding, groups 1) that read z and multiply a = relu?(bn(z)) per input channel, bn the
 * training batch norm with saved statistics (cc_conv_input_bn): the forward pass (y = conv(a, w), epilogue and stats as
 * the plain kernel's), the weight gradient (dw from a and dy), and both gradients in one launch (da needs no bn: the
 * plain data gradient's blocks). */
extern "C" __global__ void cc_implicit_gemm_forward_1x1_input_bn_kernel(cc_conv_problem pr, const float* __restrict__ z,
                                                                        const float* __restrict__ w, float* __restrict__ y,
                                                                        cc_conv_epilogue ep, float* __restrict__ stats, int vectorized,
                                                                        cc_conv_input_bn bn);
extern "C" __global__ void cc_implicit_gemm_backward_weight_1x1_input_bn_kernel(cc_conv_problem pr, const float* __restrict__ z,
                                                                                const float* __restrict__ dy, cc_split_target out,
                                                                                int k_chunk, int vectorized, cc_conv_input_bn bn);
extern "C" __global__ void cc_implicit_gemm_backward_1x1_input_bn_kernel(CC_IMPLICIT_GEMM_BACKWARD_PARAMETERS, cc_conv_input_bn bn);

/* ---- losses.cu ---- */
extern "C" __global__ void cc_cross_entropy_forward_kernel(int n, int classes, const float* __restrict__ logits,
                                                           const int* __restrict__ labels,
                                                           float* __restrict__ probabilities,
                                                           float* __restrict__ row_loss);
extern "C" __global__ void cc_cross_entropy_backward_kernel(int n, int classes, const float* probabilities,
                                                            const int* __restrict__ labels,
                                                            const float* __restrict__ dloss, float* dlogits);
extern "C" __global__ void cc_kd_forward_kernel(int n, int classes, float temperature,
                                                const float* __restrict__ student, const float* __restrict__ teacher,
                                                float* __restrict__ student_soft, float* __restrict__ teacher_soft,
                                                float* __restrict__ row_kl);
extern "C" __global__ void cc_kd_backward_kernel(int n, int classes, float temperature, const float* student_soft,
                                                 const float* teacher_soft, const float* __restrict__ dloss,
                                                 float* dstudent);
extern "C" __global__ void cc_at_forward_kernel(int n, int c, int hw, const float* __restrict__ student,
                                                const float* __restrict__ teacher, float* __restrict__ student_map,
                                                float* __restrict__ teacher_map, float* __restrict__ student_norm,
                                                float* __restrict__ sample_loss);
extern "C" __global__ void cc_at_backward_kernel(int n, int c, int hw, const float* __restrict__ student,
                                                 const float* __restrict__ student_map,
                                                 const float* __restrict__ teacher_map,
                                                 const float* __restrict__ student_norm,
                                                 const float* __restrict__ dloss, float* __restrict__ dstudent);
extern "C" __global__ void cc_loss_reduce_kernel(int count, float scale, const float* __restrict__ partials,
                                                 float* __restrict__ loss);
extern "C" __global__ void cc_count_correct_kernel(int n, int classes, const float* __restrict__ logits,
                                                   const int* __restrict__ labels, int* __restrict__ correct);
extern "C" __global__ void cc_count_correct_f32_kernel(int n, int classes, const float* __restrict__ logits,
                                                       const int* __restrict__ labels, float* __restrict__ correct);

/* ---- optim.cu ---- */
extern "C" __global__ void cc_sgd_step_kernel(int length, float* __restrict__ parameter, const float* __restrict__ gradient,
                                              float* __restrict__ momentum_buffer, float learning_rate, float momentum,
                                              float weight_decay, int nesterov);

/* ---- pooling.cu ---- */
extern "C" __global__ void cc_global_avg_pool_forward_kernel(int planes, int hw, const float* __restrict__ x,
                                                             float* __restrict__ y);
extern "C" __global__ void cc_global_avg_pool_backward_kernel(int planes, int hw, const float* __restrict__ dy,
                                                              float* __restrict__ dx);
extern "C" __global__ void cc_zero_pad_forward_kernel(int planes, int h, int w, int top, int bottom, int left, int right,
                                                      const float* __restrict__ x, float* __restrict__ y);
extern "C" __global__ void cc_zero_pad_backward_kernel(int planes, int h, int w, int top, int bottom, int left, int right,
                                                       const float* __restrict__ dy, float* __restrict__ dx);

#endif
