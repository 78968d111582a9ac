// Element-wise kernels over flat fp32 arrays: ReLU forward/backward, the residual add, fill, scale, axpy,
// and the deterministic two-stage Sum. The CPU reference is src/CheapConv/Backends/CpuBackend.Norm.cs.
//
// Launch geometry (native/launch/elementwise.cpp):
//   cc_relu_forward_kernel, cc_relu_backward_kernel, cc_add_kernel, cc_fill_kernel, cc_scale_kernel,
//   cc_axpy_kernel            one thread per element, 1-D grid
//   cc_sum_partials_kernel    G blocks (G depends only on the length), block a multiple of 32: partials[b]
//                             is the sum of block b's grid-strided elements
//   cc_sum_final_kernel       one block, block a multiple of 32: result[0] = sum of the G partials
//   cc_first_nonfinite_kernel one block per tensor of a list, CC_FIRST_NONFINITE_BLOCK threads: result[b] = the
//                             non-finite element of tensor b with the lowest index, or 0 when it has none
// The Sum adds in an order fixed by the length alone (per-thread sequential sums over a fixed stride, then
// the fixed trees of cheapconv/block_reduce.h): the same bits every run, no atomics.
//
// Pointers that may alias (ReLU in place, y = a + b with y == a) carry no __restrict__: each thread reads its
// element before writing it, so aliasing is safe.
//
// Indices are 32-bit (the launcher refuses tensors over 2^31 - 1 elements); thread indices and strided loop
// counters are unsigned so that the overshoot of the last block or stride cannot wrap to a negative index.
#include "cheapconv/cuda_shim.h"
#include "cheapconv/kernels.h" // the declarations these definitions must match
#include "cheapconv/block_reduce.h"

// y = max(x, 0); NaN propagates as in PyTorch (NaN < 0 is false).
extern "C" __global__ void cc_relu_forward_kernel(int length, const float* x, float* y)
{
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)length) return;
    const int index = (int)thread;
    const float v = x[index];
    y[index] = v < 0.0f ? 0.0f : v;
}

// dx = dy where the forward output y > 0, else 0.
extern "C" __global__ void cc_relu_backward_kernel(int length, const float* y, const float* dy, float* dx)
{
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)length) return;
    const int index = (int)thread;
    dx[index] = y[index] > 0.0f ? dy[index] : 0.0f;
}

// y = a + b.
extern "C" __global__ void cc_add_kernel(int length, const float* a, const float* b, float* y)
{
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)length) return;
    const int index = (int)thread;
    y[index] = a[index] + b[index];
}

extern "C" __global__ void cc_fill_kernel(int length, float value, float* __restrict__ x)
{
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)length) return;
    const int index = (int)thread;
    x[index] = value;
}

// x *= alpha.
extern "C" __global__ void cc_scale_kernel(int length, float alpha, float* __restrict__ x)
{
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)length) return;
    const int index = (int)thread;
    x[index] *= alpha;
}

// y += alpha * x, one rounding (fma).
extern "C" __global__ void cc_axpy_kernel(int length, float alpha, const float* x, float* y)
{
    const unsigned thread = blockIdx.x * blockDim.x + threadIdx.x;
    if (thread >= (unsigned)length) return;
    const int index = (int)thread;
    y[index] = fmaf(alpha, x[index], y[index]);
}

// Stage 1 of Sum: block b writes partials[b] = sum of x[i] for i = b*blockDim + t + k*gridDim*blockDim.
extern "C" __global__ void cc_sum_partials_kernel(int length, const float* __restrict__ x, float* __restrict__ partials)
{
    CC_STATIC_SHARED(float, scratch, [CC_MAX_WARPS]);
    const unsigned stride = gridDim.x * blockDim.x;
    float sum = 0.0f;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned)length; i += stride) {
        sum += x[i];
    }
    sum = cc_block_sum(sum, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

// Stage 2 of Sum, one block: result[0] = sum of the `count` partials.
extern "C" __global__ void cc_sum_final_kernel(int count, const float* __restrict__ partials, float* __restrict__ result)
{
    CC_STATIC_SHARED(float, scratch, [CC_MAX_WARPS]);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < count; i += blockDim.x) {
        sum += partials[i];
    }
    sum = cc_block_sum(sum, scratch);
    if (threadIdx.x == 0) result[0] = sum;
}

// result[b] = tensors[b].data[i] for the lowest i whose element is a NaN or an infinity, or 0 when every element is
// finite (0 is itself finite, so the two cases never mix). Each thread stops at its first non-finite element (its
// lowest, since it walks upwards), then a fixed shared-memory tree takes the minimum index: the same answer every run,
// whatever the schedule. Indices are 64-bit: a parameter list may hold any tensor the caller has.
extern "C" __global__ void cc_first_nonfinite_kernel(const cc_tensor_ref* __restrict__ tensors, float* __restrict__ result)
{
    CC_STATIC_SHARED(long long, first, [CC_FIRST_NONFINITE_BLOCK]);
    const long long none = 0x7fffffffffffffffLL;
    const cc_tensor_ref tensor = tensors[blockIdx.x];
    long long mine = none;
    for (long long i = threadIdx.x; i < tensor.length; i += CC_FIRST_NONFINITE_BLOCK) {
        const float v = tensor.data[i];
        if (v - v != 0.0f) { // NaN - NaN and inf - inf are NaN; every finite v gives 0
            mine = i;
            break;
        }
    }
    first[threadIdx.x] = mine;
    __syncthreads();
    for (int half = CC_FIRST_NONFINITE_BLOCK / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half && first[threadIdx.x + half] < first[threadIdx.x]) first[threadIdx.x] = first[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) result[blockIdx.x] = first[0] == none ? 0.0f : tensor.data[first[0]];
}

CC_REGISTER_KERNEL(cc_relu_forward_kernel);
CC_REGISTER_KERNEL(cc_relu_backward_kernel);
CC_REGISTER_KERNEL(cc_add_kernel);
CC_REGISTER_KERNEL(cc_fill_kernel);
CC_REGISTER_KERNEL(cc_scale_kernel);
CC_REGISTER_KERNEL(cc_axpy_kernel);
CC_REGISTER_KERNEL(cc_sum_partials_kernel);
CC_REGISTER_KERNEL(cc_sum_final_kernel);
CC_REGISTER_KERNEL(cc_first_nonfinite_kernel);
