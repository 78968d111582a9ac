// The losses of distillation, forward and backward, and the argmax accuracy count, fp32:
//   softmax cross-entropy with integer labels, knowledge distillation (KD, the corrected form of
//   REFERENCE.md: T^2/N * sum_n KL(softmax(t_n/T) || softmax(s_n/T))), attention transfer (AT) for one
//   activation pair, and CountCorrect. The C# reference is src/CheapConv/Backends/CpuBackend.Loss.cs; the
//   launcher is native/launch/losses.cpp, which computes the geometry below.
//
// Launch geometry:
//   cc_cross_entropy_forward_kernel           one warp per row (sample), 1-D grid, block a multiple of 32
//   cc_kd_forward_kernel                      one warp per row, 1-D grid, block a multiple of 32
//   cc_count_correct_kernel, cc_count_correct_f32_kernel
//                                             one warp per row, 1-D grid, block a multiple of 32
//   cc_at_forward_kernel                      one block per sample, grid N, block a multiple of 32 (at most 1024)
//   cc_at_backward_kernel                     one block per sample, grid N, block a multiple of 32 (at most 1024)
//   cc_loss_reduce_kernel                     one block, block a multiple of 32 (at most 1024)
//   cc_cross_entropy_backward_kernel, cc_kd_backward_kernel
//                                             one thread per element, 1-D grid, any block size
//
// Determinism: the forward kernels write one partial per sample (a row's loss, a sample's sum of squared
// differences) and cc_loss_reduce_kernel adds them in one block in a fixed order (strided per-thread sums, then a
// fixed tree, block_reduce.h), so the loss is bitwise the same run to run; no floating-point atomics anywhere.
// The count-correct kernels add integers (as int, or as floats below 2^24) with atomicAdd: exact and order-independent.
//
// Accuracy: device expf/logf are ex2.approx/lg2.approx (see cuda_shim.h): relative error about 2^-21 plus
// |x| * 2^-24 for expf, absolute error about 2^-21.4 for logf near 1. Every exponent here is x - max <= 0
// and every logarithm is of a softmax denominator in [1, classes], so these errors stay within a few
// 2^-21 relative per term; the tests' tolerances (tests/CheapConv.Tests/Kernels/LossTolerance.cs) include
// them. They are far below what fp32 training notices, so the precise (slower) forms are not used.
#include "cheapconv/cuda_shim.h"
#include "cheapconv/kernels.h" // the declarations these definitions must match
#include "cheapconv/block_reduce.h"

#define CC_FULL_MASK 0xffffffffu

// F.normalize's eps: the map's norm is clamped below at this value before dividing.
#define CC_AT_NORM_EPSILON 1e-12f

// Butterfly sums and maxima: every lane ends with the same bits, because each level combines the same two
// values on both partners and IEEE addition is commutative. (block_reduce.h's cc_warp_sum leaves the total
// in lane 0 only; the softmax rows need it in every lane.)
static __device__ __forceinline__ float cc_warp_sum_all(float v)
{
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(CC_FULL_MASK, v, offset);
    return v;
}

static __device__ __forceinline__ float cc_warp_max_all(float v)
{
    for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(CC_FULL_MASK, v, offset));
    return v;
}

// The max and the denominator sum_j exp(x_j / T - max) of a row's softmax at temperature T, both in every
// lane of the warp. T = 1 divides exactly, so cross-entropy shares this with KD.
struct cc_softmax_row {
    float max;
    float sum;
};

static __device__ __forceinline__ cc_softmax_row cc_softmax_statistics(const float* row, int classes, float temperature, int lane)
{
    float max = -__builtin_huge_valf();
    for (int j = lane; j < classes; j += warpSize) max = fmaxf(max, row[j] / temperature);
    max = cc_warp_max_all(max);
    float sum = 0.0f;
    for (int j = lane; j < classes; j += warpSize) sum += expf(row[j] / temperature - max);
    return cc_softmax_row{max, cc_warp_sum_all(sum)};
}

// probabilities[n, j] = softmax(logits[n])_j;  row_loss[n] = log sum_j exp(x_j - max) - (x_label - max),
// which is -log softmax(x)_label computed without ever taking the log of a small probability.
extern "C" __global__ void cc_cross_entropy_forward_kernel(int n, int classes, const float* __restrict__ logits,
                                                    const int* __restrict__ labels,
                                                    float* __restrict__ probabilities,
                                                    float* __restrict__ row_loss)
{
    const int lane = threadIdx.x % warpSize;
    const int row = blockIdx.x * (blockDim.x / warpSize) + threadIdx.x / warpSize;
    // The whole warp leaves together, so the shuffles always see all 32 lanes.
    if (row >= n) return;

    const float* x = logits + row * classes;
    float* p = probabilities + row * classes;
    const cc_softmax_row stats = cc_softmax_statistics(x, classes, 1.0f, lane);
    for (int j = lane; j < classes; j += warpSize) p[j] = expf(x[j] - stats.max) / stats.sum;
    if (lane == 0) row_loss[row] = logf(stats.sum) - (x[labels[row]] - stats.max);
}

// dlogits = (probabilities - onehot(label)) * dloss[0] / N. Alias-safe: dlogits may be probabilities.
extern "C" __global__ void cc_cross_entropy_backward_kernel(int n, int classes, const float* probabilities,
                                                     const int* __restrict__ labels,
                                                     const float* __restrict__ dloss, float* dlogits)
{
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= n * classes) return;
    const int row = index / classes;
    const int j = index % classes;
    const float scale = dloss[0] / (float)n;
    dlogits[index] = (probabilities[index] - (j == labels[row] ? 1.0f : 0.0f)) * scale;
}

// Per row: softmax(s/T) and softmax(t/T) saved, and KL(p_t || p_s) = sum_j p_t,j (log p_t,j - log p_s,j)
// with the logs taken in log-sum-exp form, (x_j/T - max) - log sum. Identical rows give identical logs, so
// their KL is exactly 0. A p_t,j that underflows to 0 contributes 0, as kl_div's 0 log 0 = 0 does.
extern "C" __global__ void cc_kd_forward_kernel(int n, int classes, float temperature,
                                         const float* __restrict__ student, const float* __restrict__ teacher,
                                         float* __restrict__ student_soft, float* __restrict__ teacher_soft,
                                         float* __restrict__ row_kl)
{
    const int lane = threadIdx.x % warpSize;
    const int row = blockIdx.x * (blockDim.x / warpSize) + threadIdx.x / warpSize;
    if (row >= n) return;

    const float* s = student + row * classes;
    const float* t = teacher + row * classes;
    const cc_softmax_row ss = cc_softmax_statistics(s, classes, temperature, lane);
    const cc_softmax_row ts = cc_softmax_statistics(t, classes, temperature, lane);
    const float log_sum_s = logf(ss.sum);
    const float log_sum_t = logf(ts.sum);
    float kl = 0.0f;
    for (int j = lane; j < classes; j += warpSize) {
        const float shifted_s = s[j] / temperature - ss.max;
        const float shifted_t = t[j] / temperature - ts.max;
        const float ps = expf(shifted_s) / ss.sum;
        const float pt = expf(shifted_t) / ts.sum;
        student_soft[row * classes + j] = ps;
        teacher_soft[row * classes + j] = pt;
        kl += pt * ((shifted_t - log_sum_t) - (shifted_s - log_sum_s));
    }
    kl = cc_warp_sum_all(kl);
    if (lane == 0) row_kl[row] = kl;
}

// dstudent = T/N * (softmax(s/T) - softmax(t/T)) * dloss[0]. Alias-safe: dstudent may be either input.
extern "C" __global__ void cc_kd_backward_kernel(int n, int classes, float temperature, const float* student_soft,
                                          const float* teacher_soft, const float* __restrict__ dloss,
                                          float* dstudent)
{
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= n * classes) return;
    const float scale = dloss[0] * temperature / (float)n;
    dstudent[index] = (student_soft[index] - teacher_soft[index]) * scale;
}

// One block per sample. Pass 1: map[hw] = mean_c a[c, hw]^2 for both tensors (threads stride over hw, so
// each channel's plane is read coalesced), written out unnormalised, with the sums of squares of the maps.
// Pass 2: the same thread re-reads the map elements it wrote (no barrier needed for its own writes),
// normalises them by max(norm, eps), and sums (q_s - q_t)^2. The per-sample sum goes to sample_loss; the
// mean over N * HW is cc_loss_reduce_kernel's scale.
extern "C" __global__ void cc_at_forward_kernel(int n, int c, int hw, const float* __restrict__ student,
                                         const float* __restrict__ teacher, float* __restrict__ student_map,
                                         float* __restrict__ teacher_map, float* __restrict__ student_norm,
                                         float* __restrict__ sample_loss)
{
    CC_STATIC_SHARED(float, warp_sums, [CC_MAX_WARPS]);
    const int sample = blockIdx.x;
    // Uniform across the block: all threads leave, so no barrier below is left waiting.
    if (sample >= n) return;

    const float* s = student + sample * c * hw;
    const float* t = teacher + sample * c * hw;
    float* qs = student_map + sample * hw;
    float* qt = teacher_map + sample * hw;

    float squares_s = 0.0f, squares_t = 0.0f;
    for (int i = threadIdx.x; i < hw; i += blockDim.x) {
        float sum_s = 0.0f, sum_t = 0.0f;
        for (int ch = 0; ch < c; ++ch) {
            const float a = s[ch * hw + i];
            const float b = t[ch * hw + i];
            sum_s = fmaf(a, a, sum_s);
            sum_t = fmaf(b, b, sum_t);
        }
        const float map_s = sum_s / (float)c;
        const float map_t = sum_t / (float)c;
        qs[i] = map_s;
        qt[i] = map_t;
        squares_s = fmaf(map_s, map_s, squares_s);
        squares_t = fmaf(map_t, map_t, squares_t);
    }
    const float norm_s = sqrtf(cc_block_sum(squares_s, warp_sums));
    const float norm_t = sqrtf(cc_block_sum(squares_t, warp_sums));
    const float divisor_s = fmaxf(norm_s, CC_AT_NORM_EPSILON);
    const float divisor_t = fmaxf(norm_t, CC_AT_NORM_EPSILON);

    float squared_difference = 0.0f;
    for (int i = threadIdx.x; i < hw; i += blockDim.x) {
        const float a = qs[i] / divisor_s;
        const float b = qt[i] / divisor_t;
        qs[i] = a;
        qt[i] = b;
        const float d = a - b;
        squared_difference = fmaf(d, d, squared_difference);
    }
    squared_difference = cc_block_sum(squared_difference, warp_sums);
    if (threadIdx.x == 0) {
        student_norm[sample] = norm_s;
        sample_loss[sample] = squared_difference;
    }
}

// One block per sample. With g = dL/dq_s = k (q_s - q_t), k = 2 dloss / (N * HW):
//   norm >= eps: dL/dmap = (g - q_s <q_s, g>) / norm      (the Jacobian of map / ||map||)
//   norm <  eps: dL/dmap = g / eps                         (clamped: the divisor is a constant)
// and dL/da[c, hw] = dL/dmap[hw] * 2 a[c, hw] / C. The dot product is a block reduction; the block then
// strides over all C * HW elements of the sample, recomputing dL/dmap[hw] (two cached loads) per element.
extern "C" __global__ void cc_at_backward_kernel(int n, int c, int hw, const float* __restrict__ student,
                                          const float* __restrict__ student_map,
                                          const float* __restrict__ teacher_map,
                                          const float* __restrict__ student_norm,
                                          const float* __restrict__ dloss, float* __restrict__ dstudent)
{
    CC_STATIC_SHARED(float, warp_sums, [CC_MAX_WARPS]);
    const int sample = blockIdx.x;
    if (sample >= n) return;

    const float* qs = student_map + sample * hw;
    const float* qt = teacher_map + sample * hw;
    float dot = 0.0f;
    for (int i = threadIdx.x; i < hw; i += blockDim.x) dot = fmaf(qs[i], qs[i] - qt[i], dot);
    dot = cc_block_sum(dot, warp_sums);

    const float norm = student_norm[sample];
    const bool clamped = norm < CC_AT_NORM_EPSILON;
    const float projection = clamped ? 0.0f : dot;
    const float divisor = clamped ? CC_AT_NORM_EPSILON : norm;
    const float k = 2.0f * dloss[0] / ((float)n * (float)hw);
    const float channel_scale = 2.0f / (float)c;

    const float* s = student + sample * c * hw;
    float* ds = dstudent + sample * c * hw;
    for (int index = threadIdx.x; index < c * hw; index += blockDim.x) {
        const int i = index % hw;
        const float dmap = k * ((qs[i] - qt[i]) - qs[i] * projection) / divisor;
        ds[index] = dmap * channel_scale * s[index];
    }
}

// loss[0] = scale * sum_i partials[i], i < count, in one block: each thread adds a strided slice in order,
// then a fixed tree adds the threads' sums.
extern "C" __global__ void cc_loss_reduce_kernel(int count, float scale, const float* __restrict__ partials,
                                          float* __restrict__ loss)
{
    CC_STATIC_SHARED(float, warp_sums, [CC_MAX_WARPS]);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    sum = cc_block_sum(sum, warp_sums);
    if (threadIdx.x == 0) loss[0] = sum * scale;
}

// argmax with PyTorch's rules: NaN is larger than every number, and ties go to the lowest index. A strict
// total order on (value, index) pairs, so the butterfly below leaves the same winner in every lane.
static __device__ __forceinline__ bool cc_argmax_prefers(float value, int index, float best, int best_index)
{
    const bool value_nan = value != value;
    const bool best_nan = best != best;
    if (value_nan || best_nan) return value_nan && (!best_nan || index < best_index);
    return value > best || (value == best && index < best_index);
}

// Whether row `row`'s argmax (first on ties, NaN largest) is its label, in lane 0 of the row's warp (the other lanes'
// answers are meaningless). The whole warp must call it: it shuffles.
static __device__ __forceinline__ bool cc_row_is_correct(int row, int classes, const float* __restrict__ logits,
                                                         const int* __restrict__ labels)
{
    const int lane = threadIdx.x % warpSize;
    const float* x = logits + row * classes;
    float best = -__builtin_huge_valf();
    int best_index = 0x7fffffff;
    for (int j = lane; j < classes; j += warpSize) {
        if (cc_argmax_prefers(x[j], j, best, best_index)) {
            best = x[j];
            best_index = j;
        }
    }
    for (int offset = 16; offset > 0; offset /= 2) {
        const float other = __shfl_xor_sync(CC_FULL_MASK, best, offset);
        const int other_index = __shfl_xor_sync(CC_FULL_MASK, best_index, offset);
        if (cc_argmax_prefers(other, other_index, best, best_index)) {
            best = other;
            best_index = other_index;
        }
    }
    return lane == 0 && best_index == labels[row];
}

// correct[0] += number of rows whose argmax is the label. The caller zeroes correct[0] first.
extern "C" __global__ void cc_count_correct_kernel(int n, int classes, const float* __restrict__ logits,
                                            const int* __restrict__ labels, int* __restrict__ correct)
{
    const int row = blockIdx.x * (blockDim.x / warpSize) + threadIdx.x / warpSize;
    if (row >= n) return;
    if (cc_row_is_correct(row, classes, logits, labels)) atomicAdd(correct, 1);
}

// The same count as a float, for logs of per-step metrics kept on the device. Adding 1.0f is exact while the count
// stays below 2^24 (the launcher refuses larger n), so the order of the atomic additions cannot change the result.
extern "C" __global__ void cc_count_correct_f32_kernel(int n, int classes, const float* __restrict__ logits,
                                                const int* __restrict__ labels, float* __restrict__ correct)
{
    const int row = blockIdx.x * (blockDim.x / warpSize) + threadIdx.x / warpSize;
    if (row >= n) return;
    if (cc_row_is_correct(row, classes, logits, labels)) atomicAdd(correct, 1.0f);
}

CC_REGISTER_KERNEL(cc_cross_entropy_forward_kernel);
CC_REGISTER_KERNEL(cc_cross_entropy_backward_kernel);
CC_REGISTER_KERNEL(cc_kd_forward_kernel);
CC_REGISTER_KERNEL(cc_kd_backward_kernel);
CC_REGISTER_KERNEL(cc_at_forward_kernel);
CC_REGISTER_KERNEL(cc_at_backward_kernel);
CC_REGISTER_KERNEL(cc_loss_reduce_kernel);
CC_REGISTER_KERNEL(cc_count_correct_kernel);
CC_REGISTER_KERNEL(cc_count_correct_f32_kernel);
