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
//   cc_batchnorm_train_forward_cluster_kernel one cluster of CC_BN_CLUSTER_BLOCKS blocks per channel (grid
//                                             C * CC_BN_CLUSTER_BLOCKS), block a multiple of 32 (256); sm_90
//   cc_batchnorm_backward_cluster_kernel      the same
//   cc_batchnorm_train_forward_from_stats_kernel  grid (C, parts), block a multiple of 32 (256): the training forward
//                                             from a convolution's statistics slots (below)
//   cc_batchnorm_statistics_from_stats_kernel grid C, block 256: the same statistics, without y
//   cc_batchnorm_backward_from_sums_kernel    grid (C, parts), block a multiple of 32 (256): the training backward from
//                                             the sums slots a data-gradient convolution wrote (below)
// Training forward = train_stats then apply; backward = backward_reduce then backward_data. The per-channel
// reductions are split from the element-wise passes so that the element-wise work spreads over the whole
// GPU even where C is small (16 channels would otherwise occupy 16 SMs).
//
// On sm_90 each pair is one launch instead (the launcher's choice, native/launch/batchnorm.cpp): a thread-block
// cluster per channel spreads the channel over CC_BN_CLUSTER_BLOCKS blocks (SMs), and the blocks exchange their
// partial sums through distributed shared memory, so the statistics need no second launch. Each block reduces
// its slice (thread t of rank r takes elements r * blockDim + t + k * CC_BN_CLUSTER_BLOCKS * blockDim) with the
// block tree below, publishes the total in its shared memory, and after a cluster barrier every thread adds the
// CC_BN_CLUSTER_BLOCKS totals in rank order (cc_bn_cluster_sum): every block gets the same bits, without atomics,
// and the result depends only on the shape (the launcher's one geometry per shape). The sums are partitioned
// differently from the two-launch path, so the bits differ from it within rounding. The same thread then applies
// (or differentiates) the elements it reduced, so y may still alias x. Without clusters (clang's sm_80 PTX,
// nvcc's sm_80 pass) the bodies are empty and the launcher never picks these kernels.
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

// dx = gamma * invstd / M * (M * g - dbeta - x_hat * dgamma).
static __device__ __forceinline__ float cc_bn_input_gradient(float ga, float is, float m, float x_hat, float g, float dgamma, float dbeta)
{
    return ga * is / m * fmaf(-x_hat, dgamma, m * g - dbeta);
}

// backward_data's element: dx[index] = gamma * invstd / M * (M * g - dbeta - x_hat * dgamma) from the channel's sums;
// accumulate: the gradient rounded to fp32, then one rounded add (never contracted into the product), so the bits are
// those of storing it and adding it to dx afterwards (cc_axpy_kernel with alpha 1). Shared by every backward kernel.
static __device__ __forceinline__ void cc_bn_backward_element(int index, const float* x, const float* dy, float mu, float is, float ga,
                                                              float be, int relu, float m, float dgamma, float dbeta, int accumulate,
                                                              float* dx)
{
    float x_hat;
    const float g = cc_bn_masked_gradient(x[index], dy[index], mu, is, ga, be, relu, &x_hat);
    const float gradient = cc_bn_input_gradient(ga, is, m, x_hat, g, dgamma, dbeta);
    dx[index] = accumulate ? cc_add_rn(dx[index], gradient) : gradient;
}

// The end of every training forward's statistics (thread 0 of a channel): save_mean and save_invstd for the backward,
// and running = (1 - momentum) running + momentum batch with the unbiased variance squares / (m - 1).
static __device__ __forceinline__ void cc_bn_save_statistics(int channel, int m, float mean, float invstd, float squares, float momentum,
                                                             float* running_mean, float* running_var, float* save_mean, float* save_invstd)
{
    const float unbiased = squares / (float)(m - 1);
    save_mean[channel] = mean;
    save_invstd[channel] = invstd;
    running_mean[channel] = (1.0f - momentum) * running_mean[channel] + momentum * mean;
    running_var[channel] = (1.0f - momentum) * running_var[channel] + momentum * unbiased;
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
        cc_bn_save_statistics(channel, m, mean, 1.0f / sqrtf(var + eps), squares_total, momentum, running_mean, running_var, save_mean,
                              save_invstd);
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
        float x_hat;
        const float g = cc_bn_masked_gradient(x[index], dy[index], mu, is, ga, be, relu, &x_hat);
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
    cc_bn_backward_element(index, x, dy, mu, is, ga, beta[channel], relu, m, dgamma[channel], dbeta[channel], accumulate, dx);
}

#if CC_HAS_CLUSTERS
// The sum of partial[0] over the blocks of the cluster, added in rank order 0, 1, ..., CC_BN_CLUSTER_BLOCKS - 1: the
// same bits in every thread of every block. Lane r of each warp loads rank r's word (one distributed-shared-memory
// read per lane), and the shuffles hand the words to every lane in rank order. The caller has passed a
// cc_cluster_sync since every block stored its word; blockDim.x is a multiple of 32.
static __device__ __forceinline__ float cc_bn_cluster_sum(const float* partial)
{
    const unsigned lane = threadIdx.x % warpSize;
    const float mine = lane < CC_BN_CLUSTER_BLOCKS ? cc_cluster_load(partial, lane) : 0.0f;
    float total = 0.0f;
    CC_UNROLL
    for (int r = 0; r < CC_BN_CLUSTER_BLOCKS; ++r) total += __shfl_sync(0xffffffffu, mine, r);
    return total;
}
#endif

// Training forward in one launch (sm_90): the statistics of train_stats (two-pass: the mean, then the squared
// deviations from it) over the channel's cluster, then apply's y for the block's slice. Writes save_mean,
// save_invstd and the running statistics (rank 0) exactly as train_stats does from its totals; y may alias x.
extern "C" __global__ void CC_CLUSTER_DIMS(CC_BN_CLUSTER_BLOCKS, 1, 1)
    cc_batchnorm_train_forward_cluster_kernel(int n, int c, int hw, const float* x, const float* __restrict__ gamma,
                                              const float* __restrict__ beta, float momentum, float eps,
                                              float* __restrict__ running_mean, float* __restrict__ running_var,
                                              float* __restrict__ save_mean, float* __restrict__ save_invstd, int relu,
                                              float* y)
{
#if CC_HAS_CLUSTERS
    CC_STATIC_SHARED(float, scratch, [CC_MAX_WARPS]);
    CC_STATIC_SHARED(float, partial, [2]); // this block's sum, then its squared deviations: what the cluster reads
    const unsigned rank = cc_cluster_ctarank();
    const int channel = blockIdx.x / CC_BN_CLUSTER_BLOCKS;
    const int m = n * hw;
    const unsigned first = rank * blockDim.x + threadIdx.x, stride = CC_BN_CLUSTER_BLOCKS * blockDim.x;

    float sum = 0.0f;
    for (unsigned j = first; j < (unsigned)m; j += stride) {
        sum += x[cc_bn_index(j, channel, c, hw)];
    }
    sum = cc_block_sum(sum, scratch);
    if (threadIdx.x == 0) partial[0] = sum;
    cc_cluster_sync();
    const float mean = cc_bn_cluster_sum(&partial[0]) / (float)m;

    float squares = 0.0f;
    for (unsigned j = first; j < (unsigned)m; j += stride) {
        const float d = x[cc_bn_index(j, channel, c, hw)] - mean;
        squares = fmaf(d, d, squares);
    }
    squares = cc_block_sum(squares, scratch);
    if (threadIdx.x == 0) partial[1] = squares; // a slot of its own: another block may still be reading partial[0]
    cc_cluster_sync();
    const float squares_total = cc_bn_cluster_sum(&partial[1]);
    const float invstd = 1.0f / sqrtf(squares_total / (float)m + eps);

    if (rank == 0 && threadIdx.x == 0)
        cc_bn_save_statistics(channel, m, mean, invstd, squares_total, momentum, running_mean, running_var, save_mean, save_invstd);

    if (y != nullptr) { // NULL: the statistics alone (cc_batchnorm_train_statistics; gamma and beta are not read)
        const float ga = gamma[channel], be = beta[channel];
        for (unsigned j = first; j < (unsigned)m; j += stride) {
            const int index = cc_bn_index(j, channel, c, hw);
            float v = cc_bn_affine(x[index], mean, invstd, ga, be);
            if (relu && !(v > 0.0f)) v = 0.0f;
            y[index] = v;
        }
    }
    cc_cluster_sync(); // no block exits (taking its shared memory) while another may still read its partial[1]
#else
    cc_unused(n, c, hw, x, gamma, beta, momentum, eps, running_mean, running_var, save_mean, save_invstd, relu, y);
#endif
}

// Training backward in one launch (sm_90): backward_reduce's sums of g and g * x_hat over the channel's cluster, then
// backward_data's dx for the block's slice (accumulate: dx += it, one rounded add). dgamma and dbeta from rank 0.
extern "C" __global__ void CC_CLUSTER_DIMS(CC_BN_CLUSTER_BLOCKS, 1, 1)
    cc_batchnorm_backward_cluster_kernel(int n, int c, int hw, const float* __restrict__ x, const float* __restrict__ dy,
                                         const float* __restrict__ gamma, const float* __restrict__ beta,
                                         const float* __restrict__ mean, const float* __restrict__ invstd, int relu,
                                         int accumulate, float* __restrict__ dgamma, float* __restrict__ dbeta,
                                         float* __restrict__ dx)
{
#if CC_HAS_CLUSTERS
    CC_STATIC_SHARED(float, scratch, [CC_MAX_WARPS]);
    CC_STATIC_SHARED(float, partial, [2]); // this block's sums of g and of g * x_hat
    const unsigned rank = cc_cluster_ctarank();
    const int channel = blockIdx.x / CC_BN_CLUSTER_BLOCKS;
    const int m = n * hw;
    const unsigned first = rank * blockDim.x + threadIdx.x, stride = CC_BN_CLUSTER_BLOCKS * blockDim.x;
    const float mu = mean[channel], is = invstd[channel], ga = gamma[channel], be = beta[channel];

    float sum_g = 0.0f, sum_g_xhat = 0.0f;
    for (unsigned j = first; j < (unsigned)m; j += stride) {
        const int index = cc_bn_index(j, channel, c, hw);
        float x_hat;
        const float g = cc_bn_masked_gradient(x[index], dy[index], mu, is, ga, be, relu, &x_hat);
        sum_g += g;
        sum_g_xhat = fmaf(g, x_hat, sum_g_xhat);
    }
    sum_g = cc_block_sum(sum_g, scratch);
    sum_g_xhat = cc_block_sum(sum_g_xhat, scratch);
    if (threadIdx.x == 0) {
        partial[0] = sum_g;
        partial[1] = sum_g_xhat;
    }
    cc_cluster_sync();
    const float total_g = cc_bn_cluster_sum(&partial[0]);
    const float total_g_xhat = cc_bn_cluster_sum(&partial[1]);
    if (rank == 0 && threadIdx.x == 0) {
        dbeta[channel] = total_g;
        dgamma[channel] = total_g_xhat;
    }

    // backward_data's expression with the cluster's totals for dbeta and dgamma.
    const float mf = (float)m;
    for (unsigned j = first; j < (unsigned)m; j += stride)
        cc_bn_backward_element(cc_bn_index(j, channel, c, hw), x, dy, mu, is, ga, be, relu, mf, total_g_xhat, total_g, accumulate, dx);
    cc_cluster_sync(); // no block exits while another may still read its partials
#else
    cc_unused(n, c, hw, x, dy, gamma, beta, mean, invstd, relu, accumulate, dgamma, dbeta, dx);
#endif
}

// ---- Training forward from the statistics a forward convolution wrote in its store ----
// The convolution that produced x (implicit_gemm.cu, store_statistics) left, per output channel, `slots` slots of
// {count, mean, sum of squared deviations from that mean}, slot s of channel k at stats[3 (k slots + s)]. Here they are
// combined with Chan, Golub and LeVeque's pairwise update, which never forms a sum of squares (no cancellation), in a
// fixed order: thread t combines slots t, t + blockDim, ... in turn, then the threads' results meet in the fixed trees of
// cc_bn_block_combine. The order depends only on (slots, blockDim), so every block of a channel, every run and every
// emulator worker count gets the same bits. The batch norm then reads x once: to apply.

// (count, mean, m2) += (nb, mb, m2b): n = na + nb, delta = mb - ma, mean = ma + delta nb / n, m2 = m2a + m2b +
// delta^2 na nb / n. With na = 0 (and ma = m2a = 0) it gives exactly (nb, mb, m2b); nb = 0 changes nothing.
static __device__ __forceinline__ void cc_bn_combine(int& count, float& mean, float& m2, int nb, float mb, float m2b)
{
    if (nb == 0) return;
    const int total = count + nb;
    const float delta = mb - mean, share = (float)nb / (float)total;
    m2 = fmaf(delta * delta, (float)count * share, m2 + m2b);
    mean = fmaf(delta, share, mean);
    count = total;
}

// The same over a full warp: lane l takes lane l + offset's set as the later one, offsets 16, 8, 4, 2, 1; lane 0 holds
// the warp's combination.
static __device__ __forceinline__ void cc_bn_warp_combine(int& count, float& mean, float& m2)
{
    for (int offset = warpSize / 2; offset > 0; offset /= 2) {
        const int nb = __shfl_down_sync(0xffffffffu, count, offset);
        const float mb = __shfl_down_sync(0xffffffffu, mean, offset), m2b = __shfl_down_sync(0xffffffffu, m2, offset);
        cc_bn_combine(count, mean, m2, nb, mb, m2b);
    }
}

// The combination over every thread of the block, returned to every thread (the shape of cc_block_sum: warps, then the
// warps' results in a second tree that every warp computes alike). blockDim.x a multiple of 32; every thread calls it.
static __device__ __forceinline__ void cc_bn_block_combine(int& count, float& mean, float& m2, int* counts, float* means, float* m2s)
{
    const int lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize, warps = blockDim.x / warpSize;
    cc_bn_warp_combine(count, mean, m2);
    if (lane == 0) {
        counts[warp] = count;
        means[warp] = mean;
        m2s[warp] = m2;
    }
    __syncthreads();
    count = lane < warps ? counts[lane] : 0;
    mean = lane < warps ? means[lane] : 0.0f;
    m2 = lane < warps ? m2s[lane] : 0.0f;
    cc_bn_warp_combine(count, mean, m2);
    count = __shfl_sync(0xffffffffu, count, 0);
    mean = __shfl_sync(0xffffffffu, mean, 0);
    m2 = __shfl_sync(0xffffffffu, m2, 0);
}

// Channel `channel`'s statistics from its `slots` slots: count, mean and squared deviations, combined in the fixed order
// above (depends on slots and blockDim only), the same bits in every thread; then invstd. Every thread calls it.
static __device__ __forceinline__ void cc_bn_combine_slots(const float* __restrict__ stats, int channel, int slots, int m, float eps,
                                                           float& mean, float& squares, float& invstd)
{
    CC_STATIC_SHARED(int, counts, [CC_MAX_WARPS]);
    CC_STATIC_SHARED(float, means, [CC_MAX_WARPS]);
    CC_STATIC_SHARED(float, m2s, [CC_MAX_WARPS]);
    const float* slot = stats + 3 * channel * slots; // the launcher keeps 3 c slots within 2^31 - 1
    int count = 0;
    mean = 0.0f;
    squares = 0.0f;
    for (unsigned s = threadIdx.x; s < (unsigned)slots; s += blockDim.x) {
        cc_bn_combine(count, mean, squares, (int)slot[3 * s], slot[3 * s + 1], slot[3 * s + 2]);
    }
    cc_bn_block_combine(count, mean, squares, counts, means, m2s);
    invstd = 1.0f / sqrtf(squares / (float)m + eps);
}

// The statistics alone from the slots (cc_batchnorm_train_statistics_from_stats): grid C, one block per channel, the
// block size of cc_batchnorm_train_forward_from_stats_kernel's launch, so save_mean and save_invstd have its bits.
extern "C" __global__ void cc_batchnorm_statistics_from_stats_kernel(int n, int c, int hw, int slots, const float* __restrict__ stats,
                                                                     float momentum, float eps, float* __restrict__ running_mean,
                                                                     float* __restrict__ running_var, float* __restrict__ save_mean,
                                                                     float* __restrict__ save_invstd)
{
    (void)c;
    const int channel = blockIdx.x, m = n * hw;
    float mean, squares, invstd;
    cc_bn_combine_slots(stats, channel, slots, m, eps, mean, squares, invstd);
    if (threadIdx.x == 0)
        cc_bn_save_statistics(channel, m, mean, invstd, squares, momentum, running_mean, running_var, save_mean, save_invstd);
}

// Training forward in one launch from the slots: channel blockIdx.x's mean and squared deviations from them, then
// save_mean, save_invstd and the running statistics (block part 0) with train_stats's expressions, then y for the block's
// part of the channel (elements blockIdx.y * blockDim + t + k * gridDim.y * blockDim). y may alias x.
extern "C" __global__ void cc_batchnorm_train_forward_from_stats_kernel(int n, int c, int hw, int slots, const float* __restrict__ stats,
                                                                        const float* x, const float* __restrict__ gamma,
                                                                        const float* __restrict__ beta, float momentum, float eps,
                                                                        float* __restrict__ running_mean,
                                                                        float* __restrict__ running_var,
                                                                        float* __restrict__ save_mean,
                                                                        float* __restrict__ save_invstd, int relu, float* y)
{
    const int channel = blockIdx.x;
    const int m = n * hw;
    float mean, squares, invstd;
    cc_bn_combine_slots(stats, channel, slots, m, eps, mean, squares, invstd);

    if (blockIdx.y == 0 && threadIdx.x == 0)
        cc_bn_save_statistics(channel, m, mean, invstd, squares, momentum, running_mean, running_var, save_mean, save_invstd);

    const float ga = gamma[channel], be = beta[channel];
    for (unsigned j = blockIdx.y * blockDim.x + threadIdx.x; j < (unsigned)m; j += gridDim.y * blockDim.x) {
        const int index = cc_bn_index(j, channel, c, hw);
        float v = cc_bn_affine(x[index], mean, invstd, ga, be);
        if (relu && !(v > 0.0f)) v = 0.0f;
        y[index] = v;
    }
}

// ---- Training backward from the sums a data-gradient convolution wrote in its store ----
// The 1x1 convolution whose data gradient is dy here (implicit_gemm.cu, store_bn_sums) left, per channel, `slots` slots
// of {sum of g, sum of g * x_hat} over the positions each of its block columns stored, slot s of channel c at
// sums[2 (c slots + s)]. Each block adds its channel's slots in a fixed order, as the statistics kernel above combines
// its slots (thread t: slots t, t + blockDim, ... in turn), then cc_block_sum's trees, which depends only on (slots, blockDim): every block of a channel,
// every run and every emulator worker count gets the same dbeta and dgamma. dx then needs one read of x and dy.
extern "C" __global__ void cc_batchnorm_backward_from_sums_kernel(int n, int c, int hw, int slots, const float* __restrict__ sums,
                                                                  const float* __restrict__ x, const float* __restrict__ dy,
                                                                  const float* __restrict__ gamma, const float* __restrict__ beta,
                                                                  const float* __restrict__ mean, const float* __restrict__ invstd,
                                                                  int relu, int accumulate, float* __restrict__ dgamma,
                                                                  float* __restrict__ dbeta, float* __restrict__ dx)
{
    CC_STATIC_SHARED(float, scratch, [CC_MAX_WARPS]);
    const int channel = blockIdx.x;
    const int m = n * hw;
    const float* slot = sums + 2 * channel * slots; // the launcher keeps 2 c slots within 2^31 - 1

    float sum_g = 0.0f, sum_g_xhat = 0.0f;
    for (unsigned s = threadIdx.x; s < (unsigned)slots; s += blockDim.x) {
        sum_g += slot[2 * s];
        sum_g_xhat += slot[2 * s + 1];
    }
    const float total_g = cc_block_sum(sum_g, scratch);
    const float total_g_xhat = cc_block_sum(sum_g_xhat, scratch);
    if (blockIdx.y == 0 && threadIdx.x == 0) {
        dbeta[channel] = total_g;
        dgamma[channel] = total_g_xhat;
    }

    const float mu = mean[channel], is = invstd[channel], ga = gamma[channel], be = beta[channel], mf = (float)m;
    for (unsigned j = blockIdx.y * blockDim.x + threadIdx.x; j < (unsigned)m; j += gridDim.y * blockDim.x)
        cc_bn_backward_element(cc_bn_index(j, channel, c, hw), x, dy, mu, is, ga, be, relu, mf, total_g_xhat, total_g, accumulate, dx);
}

CC_REGISTER_KERNEL(cc_batchnorm_train_stats_kernel);
CC_REGISTER_KERNEL(cc_batchnorm_apply_kernel);
CC_REGISTER_KERNEL(cc_batchnorm_eval_forward_kernel);
CC_REGISTER_KERNEL(cc_batchnorm_backward_reduce_kernel);
CC_REGISTER_KERNEL(cc_batchnorm_backward_data_kernel);
CC_REGISTER_KERNEL(cc_batchnorm_train_forward_from_stats_kernel);
CC_REGISTER_KERNEL(cc_batchnorm_statistics_from_stats_kernel);
CC_REGISTER_KERNEL(cc_batchnorm_backward_from_sums_kernel);
CC_REGISTER_CLUSTER_KERNEL(cc_batchnorm_train_forward_cluster_kernel, CC_BN_CLUSTER_BLOCKS, 1, 1);
CC_REGISTER_CLUSTER_KERNEL(cc_batchnorm_backward_cluster_kernel, CC_BN_CLUSTER_BLOCKS, 1, 1);
