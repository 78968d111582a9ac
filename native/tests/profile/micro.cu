/* Microkernels with hand-computed memory-traffic counts, for the emulator's profile (cheapconv/profile.h).
 * Built into the profiling library only (libcheapconv_emu_profile.so; never the production or test
 * emulator libraries) and compiled to PTX, so the same kernels can be run under Nsight Compute on a GPU
 * to check the counts there. native/tests/profile/profile_test.cpp and
 * tests/CheapConv.Tests/Profiling/MemoryProfileTests.cs assert the counts exactly; the expected values
 * are derived there, next to each assertion. Every kernel is extern "C", launched by name.
 *
 * Kernel (signature)                                                  geometry used by the tests
 * ------------------------------------------------------------------  ---------------------------------------
 * cc_prof_copy(const float* in, float* out, int n)                     out[i] = in[i], i = global thread index < n
 * cc_prof_gather(const float* in, float* out, int stride)              out[i] = in[i * stride] (stride 0: broadcast)
 * cc_prof_copy4(const float4* in, float4* out, int n)                  out[i] = in[i], 16 bytes per thread
 * cc_prof_copy_loop(const float* in, float* out, int n)                grid-stride loop of out[i] = in[i]
 * cc_prof_shared_stride(float* out, int stride)                        __shared__ float s[]; s[t*stride] = t; out[t] = s[(t^1)*stride]
 * cc_prof_dynamic_shared_stride(float* out, int stride)                the same in dynamic shared memory
 * cc_prof_shared_vector(float* out, int stride)                        float2 and float4 shared accesses at element stride
 * cc_prof_shared_float4_halves(float* out, int same_half)               one float4 shared load per lane, the same float4
 *                                                                      for lanes of one half-warp (same_half) or for lanes l
 *                                                                      and l + 16; out[4 t + i] = what lane t read
 * cc_prof_atomics(int* counter)                                        one global and one shared atomicAdd per thread
 * cc_prof_tensor_core(const float* in, float* out, int row_stride)     one warp: a 16-byte cp.async per lane into shared row
 *                                                                      lane * row_stride (words), ldmatrix.x4 of those rows,
 *                                                                      one mma.sync; out[4 lane + i] = d[i]
 */
#include "cheapconv/cuda_shim.h"

extern "C" __global__ void cc_prof_copy(const float* __restrict__ in, float* __restrict__ out, int n)
{
    const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n) out[i] = in[i];
}
CC_REGISTER_KERNEL(cc_prof_copy);

extern "C" __global__ void cc_prof_gather(const float* __restrict__ in, float* __restrict__ out, int stride)
{
    const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    out[i] = in[i * stride];
}
CC_REGISTER_KERNEL(cc_prof_gather);

// Through the fields, as kernels use a float4: clang then emits ld.global.nc.v4.f32 / st.global.v4.f32
// (a plain struct copy would be two 8-byte accesses in the PTX).
extern "C" __global__ void cc_prof_copy4(const float4* __restrict__ in, float4* __restrict__ out, int n)
{
    const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n) {
        const float4 v = in[i];
        out[i] = make_float4(v.x, v.y, v.z, v.w);
    }
}
CC_REGISTER_KERNEL(cc_prof_copy4);

// The k-th iteration of every lane forms the k-th request of the warp's load and store.
extern "C" __global__ void cc_prof_copy_loop(const float* __restrict__ in, float* __restrict__ out, int n)
{
    const int step = static_cast<int>(gridDim.x * blockDim.x);
    for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += step) out[i] = in[i];
}
CC_REGISTER_KERNEL(cc_prof_copy_loop);

// Up to 64 threads, stride up to 32: 64 * 32 floats. Thread t stores word t*stride and reads its
// neighbour's, (t^1)*stride — the same words, so the same banks — which the GPU compiler cannot forward
// from the thread's own store.
extern "C" __global__ void cc_prof_shared_stride(float* __restrict__ out, int stride)
{
    CC_STATIC_SHARED(float, s, [64 * 32]);
    const int t = static_cast<int>(threadIdx.x);
    s[t * stride] = static_cast<float>(t);
    __syncthreads();
    out[t] = s[(t ^ 1) * stride];
}
CC_REGISTER_KERNEL(cc_prof_shared_stride);

// Dynamic shared memory of blockDim.x * stride floats (at least one).
extern "C" __global__ void cc_prof_dynamic_shared_stride(float* __restrict__ out, int stride)
{
    CC_DYNAMIC_SHARED(float, s);
    const int t = static_cast<int>(threadIdx.x);
    s[t * stride] = static_cast<float>(t);
    __syncthreads();
    out[t] = s[(t ^ 1) * stride];
}
CC_REGISTER_KERNEL(cc_prof_dynamic_shared_stride);

// One warp: thread t stores float2 element t*stride and float4 element t*stride, then reads its
// neighbour's (element (t^1)*stride). out: 6 floats per thread.
extern "C" __global__ void cc_prof_shared_vector(float* __restrict__ out, int stride)
{
    CC_STATIC_SHARED(float2, s2, [32 * 4]);
    CC_STATIC_SHARED(float4, s4, [32 * 4]);
    const int t = static_cast<int>(threadIdx.x);
    const float f = static_cast<float>(t);
    s2[t * stride] = make_float2(f, f + 1.0f);
    s4[t * stride] = make_float4(f, f + 1.0f, f + 2.0f, f + 3.0f);
    __syncthreads();
    const float2 a = s2[(t ^ 1) * stride];
    const float4 b = s4[(t ^ 1) * stride];
    out[6 * t + 0] = a.x;
    out[6 * t + 1] = a.y;
    out[6 * t + 2] = b.x;
    out[6 * t + 3] = b.y;
    out[6 * t + 4] = b.z;
    out[6 * t + 5] = b.w;
}
CC_REGISTER_KERNEL(cc_prof_shared_vector);

// The two LDS.128 patterns of the forum report profile.cpp cites, 32 bytes between the float4s read: same_half,
// lanes 0-15 read float4 0 and lanes 16-31 float4 2; otherwise lane l reads float4 2 (l % 16), so lanes l and
// l + 16 (different half-warps) share an address.
extern "C" __global__ void cc_prof_shared_float4_halves(float* __restrict__ out, int same_half)
{
    CC_STATIC_SHARED(float4, s4, [32]);
    const int t = static_cast<int>(threadIdx.x);
    const float f = static_cast<float>(t);
    s4[t] = make_float4(f, f + 1.0f, f + 2.0f, f + 3.0f);
    __syncthreads();
    const float4 v = s4[same_half ? 2 * (t / 16) : 2 * (t % 16)];
    out[4 * t + 0] = v.x;
    out[4 * t + 1] = v.y;
    out[4 * t + 2] = v.z;
    out[4 * t + 3] = v.w;
}
CC_REGISTER_KERNEL(cc_prof_shared_float4_halves);

// counter[0] += 1 per thread (global atomic); counter[1 + blockIdx.x] = the block's thread count, counted
// with a shared atomic.
extern "C" __global__ void cc_prof_atomics(int* counter)
{
    CC_STATIC_SHARED(int, block_count, );
    if (threadIdx.x == 0) block_count = 0;
    __syncthreads();
    atomicAdd(&block_count, 1);
    atomicAdd(&counter[0], 1);
    __syncthreads();
    if (threadIdx.x == 0) counter[1 + blockIdx.x] = block_count;
}
CC_REGISTER_KERNEL(cc_prof_atomics);

// cp.async of 512 contiguous bytes (16 per lane), ldmatrix.x4 of the 32 rows the lanes wrote, one mma.sync whose A
// is that fragment (B is its first two registers, C is zero). row_stride 4: the rows are contiguous; 8: rows l and
// l + 4 of each matrix share banks.
extern "C" __global__ void cc_prof_tensor_core(const float* __restrict__ in, float* __restrict__ out, int row_stride)
{
    CC_STATIC_SHARED(float, s, [32 * 8]);
    const unsigned lane = threadIdx.x;
    float* row = &s[lane * row_stride];
    cc_cp_async_ca<16>(row, &in[4 * lane]);
    cc_cp_async_commit();
    cc_cp_async_wait<0>();
    __syncwarp();
    unsigned a[4];
    cc_ldmatrix_x4(a, row);
    const unsigned b[2] = {a[0], a[1]};
    float d[4] = {0, 0, 0, 0};
    cc_mma_tf32_m16n8k8(d, a, b, d);
    for (int i = 0; i < 4; ++i) out[4 * lane + i] = d[i];
}
CC_REGISTER_KERNEL(cc_prof_tensor_core);
