/* CheapConv CUDA shim: the one header every kernel source (native/kernels/<name>.cu) includes first.
 *
 * One kernel source is compiled three ways, and this header makes the same spelling work in each:
 *
 *   1. clang device compile (PTX):  clang-14 -x cuda --cuda-device-only -nocudainc -nocudalib ...
 *      __CUDA__ and __CUDA_ARCH__ are defined but *nothing* else is (no CUDA headers, no libdevice),
 *      so everything below is built from clang attributes and NVVM builtins. Every function here
 *      lowers to PTX instructions; none becomes an `.extern .func` call.
 *   2. nvcc (fatbin, where a CUDA toolkit exists): the real CUDA headers are already included, so only
 *      our own macros (CC_DYNAMIC_SHARED, CC_REGISTER_KERNEL) and the expf/logf mapping are defined.
 *   3. host emulator build: plain C++20 (g++ -x c++ -std=c++20). Kernels become ordinary functions run
 *      by the emulator in native/emu, one fiber per CUDA thread; the intrinsics call into it.
 *
 * API available in all three modes (see native/emu/cc_emu.h for the emulator's C API):
 *   __global__ __device__ __host__ __constant__ __forceinline__ __restrict__ __align__(n)
 *   __launch_bounds__(...)                      (ignored on host)
 *   threadIdx blockIdx blockDim gridDim (.x .y .z, unsigned), warpSize (= 32), uint3, dim3
 *   __syncthreads()  __syncwarp(mask = 0xffffffff)  __threadfence()
 *   __shfl_sync / __shfl_up_sync / __shfl_down_sync / __shfl_xor_sync (mask, v, lane|delta, width = 32)
 *       for float, int, unsigned
 *   __ballot_sync(mask, pred)  __any_sync(mask, pred)  __all_sync(mask, pred)
 *   atomicAdd (float, int, unsigned, unsigned long long)  atomicSub (int, unsigned)
 *   atomicMax / atomicMin (int, unsigned)  atomicCAS (int, unsigned)  atomicExch (int, unsigned, float)
 *   unsigned cc_atomic_add_acq_rel(unsigned* a, unsigned v)
 *                                   atomicAdd with release and acquire semantics at device scope: the arrival of
 *                                   a block at a counter other blocks of the grid count on ("last block reduces").
 *                                   Stores the thread made (and, after a __syncthreads, its block's) are visible
 *                                   to the thread that reads the counter's later value, and that thread (and its
 *                                   block, after a __syncthreads) sees every store made before the earlier
 *                                   arrivals. GPU: __threadfence(); atomicAdd; __threadfence(). Emulator: an
 *                                   acq_rel fetch_add, which TSan sees (it cannot see a fence).
 *   fmaxf fminf fmaf fabsf sqrtf rsqrtf expf logf, min / max (int, unsigned, float), __ldg (float, int)
 *   float cc_add_rn(float a, float b) a + b rounded once, never contracted with a multiply that produced a or b
 *                                    (CUDA's __fadd_rn): "accumulate into the output" modes add a value already
 *                                    rounded to fp32, so the bits equal a separate store and a later add
 *   float2 / float4 (8- and 16-byte aligned, as CUDA's), make_float2 / make_float4: a float4 load or store
 *       through a float4 pointer is one 16-byte access (ld.global.v4.f32 on the GPU)
 *   __shfl*_sync also for 64-bit values (double, long long, unsigned long long: two 32-bit shuffles, as CUDA's)
 *   __activemask()                  (emulator: a rendezvous of the warp's lanes that exist and have not exited, and
 *                                    its answer; so use it where the warp is converged, as the GPU's answer is then
 *                                    the same)
 *   CC_DYNAMIC_SHARED(type, name)   dynamic shared memory (the launch's dynamic_shared_bytes); above 48 KiB only
 *                                    for a kernel the runtime has opted in (cuFuncSetAttribute), as on a GPU
 *   CC_STATIC_SHARED(type, name, extents);  a static __shared__ array, 16-byte aligned, e.g.
 *                                    CC_STATIC_SHARED(float, tile, [16][17]); — kernels never write `__shared__`
 *                                    themselves (the emulator build does not define it; the lint test fails on it)
 *   CC_REGISTER_KERNEL(name);       after each kernel, at file scope
 * Tensor cores and asynchronous copies (sm_80 and later), the only inline PTX the kernels may use: kernels
 * never write `asm` themselves (tests/CheapConv.Tests/Kernels/KernelSourceLintTests.cs fails on it):
 *   unsigned cc_cvt_tf32(float x)   cvt.rna.tf32.f32: x rounded to tf32 (10 mantissa bits, nearest, ties away
 *                                    from zero), as a .b32 register for the mma below
 *   cc_mma_tf32_m16n8k8(d, a, b, c) mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32: D = A·B + C for one
 *                                    16×8 tile, warp-collective (all 32 lanes, converged). Each lane passes its
 *                                    fragments in the PTX ISA layout (groupID g = lane / 4, t = lane % 4):
 *                                      a[4] (A 16×8, row):  a0 = A[g][t], a1 = A[g+8][t], a2 = A[g][t+4], a3 = A[g+8][t+4]
 *                                      b[2] (B 8×8, col):   b0 = B[t][g], b1 = B[t+4][g]
 *                                      c[4], d[4] (16×8):   c0 = C[g][2t], c1 = C[g][2t+1], c2 = C[g+8][2t], c3 = C[g+8][2t+1]
 *                                    a and b are tf32 bit patterns (cc_cvt_tf32); d may be c.
 *   cc_ldmatrix_x1/_x2/_x4(r, row)  ldmatrix.sync.aligned.m8n8.x{1,2,4}.shared.b16 (and _trans: .trans), warp-
 *                                    collective: lane 8i + j passes the 16-byte-aligned shared address of row j of
 *                                    matrix i (lanes beyond 8 × count pass anything); r[i] of lane l receives the
 *                                    32-bit word l % 4 of row l / 4 of matrix i (.trans: the b16 elements [2(l%4)][l/4]
 *                                    and [2(l%4)+1][l/4]). For 32-bit data an 8×8 b16 matrix is 8 rows of 4 words, so
 *                                    the x4 form loads an mma A fragment of a row-major 16×8 tf32 tile.
 *   cc_cp_async_ca<B>(dst, src, n)  cp.async.ca.shared.global, B = 4, 8 or 16 bytes (cc_cp_async_cg: .cg, 16 only):
 *                                    copies n <= B bytes of global src to shared dst and zero-fills the rest (n = 0
 *                                    writes zeros: an edge tile's padding). Asynchronous: dst holds the data only
 *                                    after a cc_cp_async_wait that covers its group; the emulator writes
 *                                    CC_CP_ASYNC_POISON (a signalling NaN) into dst at issue and the data at the wait,
 *                                    so a read before the wait sees the poison. __syncthreads does not wait for it.
 *   cc_cp_async_commit()            cp.async.commit_group: closes the group of this thread's copies issued so far
 *   cc_cp_async_wait<N>()           cp.async.wait_group N: waits until at most the N newest committed groups are
 *                                    pending (copies not yet committed are not waited for); then __syncthreads
 *                                    before other threads read what this one copied.
 * Thread-block clusters (sm_90): only where CC_HAS_CLUSTERS is 1 — the emulator, and nvcc's sm_90 (and later)
 * device pass. clang-14's PTX (.target sm_80, PTX ISA 7.0) and nvcc's sm_80 pass have no clusters: a cluster
 * kernel's body is `#if CC_HAS_CLUSTERS`, left empty there, and the launcher uses it only on an sm_90 device running
 * the fatbin's sm_90 SASS (native/launch/runtime.h, DeviceFacts::cluster_kernels).
 *   CC_CLUSTER_DIMS(x, y, z)        in the kernel's definition, before its name: __cluster_dims__(x, y, z) on nvcc sm_90
 *                                    (a compile-time cluster; cuLaunchKernel launches it, the grid a multiple of it)
 *   CC_REGISTER_CLUSTER_KERNEL(fn, x, y, z);  instead of CC_REGISTER_KERNEL: the same dimensions for the emulator,
 *                                    which runs a cluster's blocks together on one OS thread
 *   unsigned cc_cluster_ctarank()   %cluster_ctarank: the block's rank in its cluster (x + y*cx + z*cx*cy)
 *   unsigned cc_cluster_nctarank()  %cluster_nctarank: blocks per cluster
 *   cc_cluster_sync()               barrier.cluster.arrive (release) + barrier.cluster.wait (acquire): every thread of
 *                                    every block of the cluster; shared-memory stores before it are visible to
 *                                    cc_cluster_load after it
 *   float cc_cluster_load(const float* shared, unsigned rank)
 *                                    mapa.shared::cluster + ld.shared::cluster.f32: the float at the same place as
 *                                    `shared` (this block's shared memory) in block `rank`'s shared memory (distributed
 *                                    shared memory). The reader must have passed a cc_cluster_sync since the target
 *                                    stored it, and the target must not have exited (end the kernel with a
 *                                    cc_cluster_sync after the last read). The emulator fails the launch on a read
 *                                    before the first cc_cluster_sync, of a block that has exited, at a rank outside
 *                                    the cluster, or outside one shared variable (CC_EMU_INVALID_OPERAND).
 *
 * One math decision for every GPU build (modes 1 and 2), documented here and in native/Makefile:
 *   expf and logf are the approximate hardware forms, ex2.approx / lg2.approx, in BOTH GPU builds: clang
 *   has no libdevice here, so mode 1 defines them from the NVVM builtins below; mode 2 maps the kernels'
 *   expf/logf calls to CUDA's __expf/__logf (the same instructions) instead of CUDA's slower precise
 *   expf/logf. Kernels spell them expf/logf in every mode. FMA contraction (a*b+c -> fma) stays ON in
 *   both GPU builds (clang -ffp-contract=fast, nvcc --fmad=true, both explicit in the Makefile); division
 *   and sqrtf stay IEEE round-to-nearest (no -use_fast_math), and denormals are kept (no FTZ): nvcc's
 *   __expf/__logf emit the same non-FTZ ex2.approx.f32 / lg2.approx.f32 as clang (checked in the PTX).
 *   The emulator (mode 3) uses <cmath>'s expf/logf (glibc: under 1 ulp) and g++ does not contract (ISO
 *   -std=c++20 sets -ffp-contract=off), so the emulator is the more exact build; an explicit fmaf() is a
 *   true fused multiply-add in every build.
 * Device math accuracy:
 *   fmaxf/fminf/fmaf/fabsf/sqrtf are exact (IEEE, round to nearest), as in CUDA.
 *   rsqrtf = rsqrt.approx.f32, as in CUDA (max 2 ulp).
 *   expf   = ex2.approx.f32(x * log2(e)): CUDA's __expf, *not* CUDA's precise expf.
 *            Relative error about 2^-21 plus |x| * 2^-24 from rounding x * log2(e).
 *   logf   = lg2.approx.f32(x) * ln(2): CUDA's __logf; absolute error about 2^-21.4 for x in [0.5, 2],
 *            relative error about 2^-22 elsewhere.
 *   Compare emulator and GPU results with tolerances anyway: summation order differs too.
 *
 * Static shared variables (CC_STATIC_SHARED) live, in the emulator, in the running block's arena
 * (native/emu/emu_internal.h, StaticShared): every CUDA thread of the block is a fiber on one OS thread and
 * gets the same variable, blocks running in parallel on other OS threads get their own, and each block's
 * variable starts filled with 0xff bytes (undefined on a GPU; NaN as float), never what the worker's previous
 * block left there. The launch fails where the block's static variables pass CUDA's 48 KiB, or static and
 * dynamic shared memory together pass 48 KiB without the opt-in.
 */
#ifndef CHEAPCONV_CUDA_SHIM_H
#define CHEAPCONV_CUDA_SHIM_H

#include "cheapconv/problem.h"

/* ================================================================================================ */
#if defined(__NVCC__)
/* ---- mode 2: nvcc. CUDA's headers provide everything except our own macros. ------------------- */

#define CC_DEVICE_BUILD 1
#define CC_DYNAMIC_SHARED(type, name) extern __shared__ __align__(16) type name[]
#define CC_STATIC_SHARED(type, name, extents) __shared__ __align__(16) type name extents
#define CC_REGISTER_KERNEL(fn) static_assert(true, "CC_REGISTER_KERNEL")
#define CC_REGISTER_CLUSTER_KERNEL(fn, x, y, z) static_assert(true, "CC_REGISTER_CLUSTER_KERNEL")
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define CC_HAS_CLUSTERS 1
#define CC_CLUSTER_DIMS(x, y, z) __cluster_dims__(x, y, z)
#else
#define CC_HAS_CLUSTERS 0
#define CC_CLUSTER_DIMS(x, y, z)
#endif

/* The math decision of the header comment: the kernels' expf/logf become the approximate intrinsics, as
 * in the clang build. Function-like macros, defined after CUDA's headers (which nvcc includes first), so
 * they rewrite only the calls in our own sources. */
#define expf(x) __expf(x)
#define logf(x) __logf(x)

/* ================================================================================================ */
#elif defined(__CUDA__) && defined(__CUDA_ARCH__)
/* ---- mode 1: clang device compile without CUDA headers. ---------------------------------------- */

#define CC_DEVICE_BUILD 1

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __host__ __attribute__((host))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))

#define CC_SHIM_DEV static __device__ __forceinline__

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    __host__ __device__ constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
/* CUDA's vector types: the alignment is what lets the backend use ld/st.v2 and .v4. */
struct __align__(8) float2 { float x, y; };
struct __align__(16) float4 { float x, y, z, w; };
CC_SHIM_DEV float2 make_float2(float x, float y) { return float2{x, y}; }
CC_SHIM_DEV float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

namespace cc_shim {
/* The special registers are read-only intrinsics: reading all three and using one lets the optimizer
 * drop the other two, so `threadIdx.x` costs exactly one mov from %tid.x. */
CC_SHIM_DEV uint3 thread_idx() { return uint3{(unsigned)__nvvm_read_ptx_sreg_tid_x(), (unsigned)__nvvm_read_ptx_sreg_tid_y(), (unsigned)__nvvm_read_ptx_sreg_tid_z()}; }
CC_SHIM_DEV uint3 block_idx() { return uint3{(unsigned)__nvvm_read_ptx_sreg_ctaid_x(), (unsigned)__nvvm_read_ptx_sreg_ctaid_y(), (unsigned)__nvvm_read_ptx_sreg_ctaid_z()}; }
CC_SHIM_DEV uint3 block_dim() { return uint3{(unsigned)__nvvm_read_ptx_sreg_ntid_x(), (unsigned)__nvvm_read_ptx_sreg_ntid_y(), (unsigned)__nvvm_read_ptx_sreg_ntid_z()}; }
CC_SHIM_DEV uint3 grid_dim() { return uint3{(unsigned)__nvvm_read_ptx_sreg_nctaid_x(), (unsigned)__nvvm_read_ptx_sreg_nctaid_y(), (unsigned)__nvvm_read_ptx_sreg_nctaid_z()}; }
/* shfl's "c" operand: bits 12:8 hold the segment mask (32 - width), bits 4:0 the clamp lane. */
CC_SHIM_DEV int shfl_c(int width, bool up) { return ((32 - width) << 8) | (up ? 0 : 0x1f); }
} // namespace cc_shim

#define threadIdx (::cc_shim::thread_idx())
#define blockIdx (::cc_shim::block_idx())
#define blockDim (::cc_shim::block_dim())
#define gridDim (::cc_shim::grid_dim())
#define warpSize 32

/* __syncthreads() is a clang NVPTX builtin (bar.sync 0) and needs no definition here. */
CC_SHIM_DEV void __syncwarp(unsigned mask = 0xffffffffu) { __nvvm_bar_warp_sync(mask); }
CC_SHIM_DEV void __threadfence() { __nvvm_membar_gl(); }

CC_SHIM_DEV float __shfl_sync(unsigned m, float v, int lane, int width = 32) { return __nvvm_shfl_sync_idx_f32(m, v, lane, cc_shim::shfl_c(width, false)); }
CC_SHIM_DEV int __shfl_sync(unsigned m, int v, int lane, int width = 32) { return __nvvm_shfl_sync_idx_i32(m, v, lane, cc_shim::shfl_c(width, false)); }
CC_SHIM_DEV unsigned __shfl_sync(unsigned m, unsigned v, int lane, int width = 32) { return (unsigned)__nvvm_shfl_sync_idx_i32(m, (int)v, lane, cc_shim::shfl_c(width, false)); }
CC_SHIM_DEV float __shfl_up_sync(unsigned m, float v, unsigned d, int width = 32) { return __nvvm_shfl_sync_up_f32(m, v, (int)d, cc_shim::shfl_c(width, true)); }
CC_SHIM_DEV int __shfl_up_sync(unsigned m, int v, unsigned d, int width = 32) { return __nvvm_shfl_sync_up_i32(m, v, (int)d, cc_shim::shfl_c(width, true)); }
CC_SHIM_DEV unsigned __shfl_up_sync(unsigned m, unsigned v, unsigned d, int width = 32) { return (unsigned)__nvvm_shfl_sync_up_i32(m, (int)v, (int)d, cc_shim::shfl_c(width, true)); }
CC_SHIM_DEV float __shfl_down_sync(unsigned m, float v, unsigned d, int width = 32) { return __nvvm_shfl_sync_down_f32(m, v, (int)d, cc_shim::shfl_c(width, false)); }
CC_SHIM_DEV int __shfl_down_sync(unsigned m, int v, unsigned d, int width = 32) { return __nvvm_shfl_sync_down_i32(m, v, (int)d, cc_shim::shfl_c(width, false)); }
CC_SHIM_DEV unsigned __shfl_down_sync(unsigned m, unsigned v, unsigned d, int width = 32) { return (unsigned)__nvvm_shfl_sync_down_i32(m, (int)v, (int)d, cc_shim::shfl_c(width, false)); }
CC_SHIM_DEV float __shfl_xor_sync(unsigned m, float v, int lm, int width = 32) { return __nvvm_shfl_sync_bfly_f32(m, v, lm, cc_shim::shfl_c(width, false)); }
CC_SHIM_DEV int __shfl_xor_sync(unsigned m, int v, int lm, int width = 32) { return __nvvm_shfl_sync_bfly_i32(m, v, lm, cc_shim::shfl_c(width, false)); }
CC_SHIM_DEV unsigned __shfl_xor_sync(unsigned m, unsigned v, int lm, int width = 32) { return (unsigned)__nvvm_shfl_sync_bfly_i32(m, (int)v, lm, cc_shim::shfl_c(width, false)); }

CC_SHIM_DEV unsigned __ballot_sync(unsigned m, int pred) { return __nvvm_vote_ballot_sync(m, pred != 0); }
CC_SHIM_DEV int __any_sync(unsigned m, int pred) { return __nvvm_vote_any_sync(m, pred != 0); }
CC_SHIM_DEV int __all_sync(unsigned m, int pred) { return __nvvm_vote_all_sync(m, pred != 0); }

CC_SHIM_DEV float atomicAdd(float* a, float v) { return __nvvm_atom_add_gen_f(a, v); }
CC_SHIM_DEV int atomicAdd(int* a, int v) { return __nvvm_atom_add_gen_i(a, v); }
CC_SHIM_DEV unsigned atomicAdd(unsigned* a, unsigned v) { return (unsigned)__nvvm_atom_add_gen_i((int*)a, (int)v); }
CC_SHIM_DEV unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) { return (unsigned long long)__nvvm_atom_add_gen_ll((long long*)a, (long long)v); }
CC_SHIM_DEV int atomicSub(int* a, int v) { return __nvvm_atom_add_gen_i(a, -v); }
CC_SHIM_DEV unsigned atomicSub(unsigned* a, unsigned v) { return (unsigned)__nvvm_atom_add_gen_i((int*)a, -(int)v); }
CC_SHIM_DEV int atomicMax(int* a, int v) { return __nvvm_atom_max_gen_i(a, v); }
CC_SHIM_DEV unsigned atomicMax(unsigned* a, unsigned v) { return __nvvm_atom_max_gen_ui(a, v); }
CC_SHIM_DEV int atomicMin(int* a, int v) { return __nvvm_atom_min_gen_i(a, v); }
CC_SHIM_DEV unsigned atomicMin(unsigned* a, unsigned v) { return __nvvm_atom_min_gen_ui(a, v); }
CC_SHIM_DEV int atomicCAS(int* a, int cmp, int v) { return __nvvm_atom_cas_gen_i(a, cmp, v); }
CC_SHIM_DEV unsigned atomicCAS(unsigned* a, unsigned cmp, unsigned v) { return (unsigned)__nvvm_atom_cas_gen_i((int*)a, (int)cmp, (int)v); }
CC_SHIM_DEV int atomicExch(int* a, int v) { return __nvvm_atom_xchg_gen_i(a, v); }
CC_SHIM_DEV unsigned atomicExch(unsigned* a, unsigned v) { return (unsigned)__nvvm_atom_xchg_gen_i((int*)a, (int)v); }
CC_SHIM_DEV float atomicExch(float* a, float v) { return __builtin_bit_cast(float, __nvvm_atom_xchg_gen_i((int*)a, __builtin_bit_cast(int, v))); }

/* Math: builtins that the NVPTX backend lowers to single instructions (max.f32, fma.rn.f32, ...). */
CC_SHIM_DEV float fmaxf(float a, float b) { return __builtin_fmaxf(a, b); }
CC_SHIM_DEV float fminf(float a, float b) { return __builtin_fminf(a, b); }
CC_SHIM_DEV float fmaf(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
CC_SHIM_DEV float fabsf(float a) { return __builtin_fabsf(a); }
CC_SHIM_DEV float sqrtf(float a) { return __nvvm_sqrt_rn_f(a); }
CC_SHIM_DEV float rsqrtf(float a) { return __nvvm_rsqrt_approx_f(a); }
CC_SHIM_DEV float expf(float a) { return __nvvm_ex2_approx_f(a * 1.4426950408889634f); }
CC_SHIM_DEV float logf(float a) { return __nvvm_lg2_approx_f(a) * 0.6931471805599453f; }
CC_SHIM_DEV int min(int a, int b) { return a < b ? a : b; }
CC_SHIM_DEV int max(int a, int b) { return a > b ? a : b; }
CC_SHIM_DEV unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
CC_SHIM_DEV unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
CC_SHIM_DEV float min(float a, float b) { return __builtin_fminf(a, b); }
CC_SHIM_DEV float max(float a, float b) { return __builtin_fmaxf(a, b); }
CC_SHIM_DEV float __ldg(const float* p) { return __nvvm_ldg_f(p); }
CC_SHIM_DEV int __ldg(const int* p) { return __nvvm_ldg_i(p); }

/* 64-bit shuffles: two 32-bit shuffles of the halves, as CUDA's headers do it. */
namespace cc_shim {
template <class T, class Shuffle>
CC_SHIM_DEV T shfl64(T v, Shuffle shuffle) {
    const unsigned long long bits = __builtin_bit_cast(unsigned long long, v);
    const unsigned lo = shuffle((unsigned)bits), hi = shuffle((unsigned)(bits >> 32));
    return __builtin_bit_cast(T, (unsigned long long)hi << 32 | lo);
}
} // namespace cc_shim
#define CC_SHIM_SHFL64(NAME, T, BT)                                                                 \
    CC_SHIM_DEV T NAME(unsigned m, T v, BT b, int width = 32) {                                     \
        return cc_shim::shfl64(v, [&](unsigned half) { return NAME(m, half, b, width); });          \
    }
#define CC_SHIM_SHFL64_ALL(T)                                                                       \
    CC_SHIM_SHFL64(__shfl_sync, T, int)                                                             \
    CC_SHIM_SHFL64(__shfl_up_sync, T, unsigned)                                                     \
    CC_SHIM_SHFL64(__shfl_down_sync, T, unsigned)                                                   \
    CC_SHIM_SHFL64(__shfl_xor_sync, T, int)
CC_SHIM_SHFL64_ALL(double)
CC_SHIM_SHFL64_ALL(long long)
CC_SHIM_SHFL64_ALL(unsigned long long)
#undef CC_SHIM_SHFL64_ALL
#undef CC_SHIM_SHFL64

CC_SHIM_DEV unsigned __activemask() {
    unsigned mask;
    asm volatile("activemask.b32 %0;" : "=r"(mask));
    return mask;
}

#define CC_DYNAMIC_SHARED(type, name) extern __shared__ __align__(16) type name[]
#define CC_STATIC_SHARED(type, name, extents) __shared__ __align__(16) type name extents
#define CC_REGISTER_KERNEL(fn) static_assert(true, "CC_REGISTER_KERNEL")
/* PTX ISA 7.0 for sm_80: no clusters (the kernel's body is left out; the launcher never picks it from this PTX). */
#define CC_REGISTER_CLUSTER_KERNEL(fn, x, y, z) static_assert(true, "CC_REGISTER_CLUSTER_KERNEL")
#define CC_HAS_CLUSTERS 0
#define CC_CLUSTER_DIMS(x, y, z)

/* ================================================================================================ */
#elif defined(__CUDA__)
#error "cuda_shim.h: clang's host-side CUDA pass is not supported; compile with --cuda-device-only for PTX, or as C++ (-x c++ -std=c++20) for the emulator"

/* ================================================================================================ */
#else
/* ---- mode 3: host C++ for the emulator. -------------------------------------------------------- */

#if __cplusplus < 202002L
#error "cuda_shim.h: the emulator build needs C++20 (-std=c++20)"
#endif

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <source_location>
#include <utility>

#define CC_HOST_EMULATOR_BUILD 1

#define __global__
#define __device__
#define __host__
#define __constant__
/* No __shared__: static shared arrays are CC_STATIC_SHARED (the header comment), so a raw one fails to compile here. */
#define __forceinline__ inline __attribute__((always_inline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
/* __restrict__ is a g++ keyword already. */

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
/* CUDA's vector types, with CUDA's alignment. The profiling build compiles with -fno-tree-sra so that a
 * float4 load or store stays one 16-byte access, as the GPU's ld/st.v4 (see native/emu/profile.cpp). */
struct __align__(8) float2 { float x, y; };
struct __align__(16) float4 { float x, y, z, w; };
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

/* Interface between kernel code and the emulator runtime (native/emu). Internal: hidden visibility,
 * resolved inside the emulator library. Kernel code never touches runtime memory directly (only
 * through these calls), which keeps TSan reports about kernel data only. */
namespace cc_emu_detail {

struct ThreadContext {
    uint3 thread_idx, block_idx, block_dim, grid_dim;
};

enum WarpOp : int { kShflIdx, kShflUp, kShflDown, kShflXor, kBallot, kAny, kAll, kSyncWarp, kActiveMask, kMma, kLdmatrix };

/* The running CUDA thread. Only valid inside a kernel launched by the emulator. */
const ThreadContext* current();
/* This block's dynamic shared buffer (16-byte aligned, exactly dynamic_shared_bytes long). */
void* dynamic_shared();
/* This block's static shared variable declared at `tag` (CC_STATIC_SHARED): `bytes` long, 16-byte aligned, the same
 * address for every thread of the block, filled with 0xff when the block first declares it. */
void* static_shared(const void* tag, std::size_t bytes, const char* name, const char* file, unsigned line);
void syncthreads(const char* file, unsigned line);
/* Rendezvous with the lanes in `mask`; returns the lane's 32-bit result (shuffled bits, ballot...). */
unsigned warp_op(WarpOp op, unsigned mask, unsigned value, int lane_or_delta, int width, const char* file, unsigned line);
/* Rendezvous of all 32 lanes for an operation whose lanes exchange more than a 32-bit value (kMma, kLdmatrix):
 * `in` points at this lane's operands, `out` at where its results go (both in the lane's own frame). */
void warp_collective(WarpOp op, const void* in, void* out, int operand, const char* file, unsigned line);
/* cp.async (native/emu/async_copy.cpp): the calling thread's pending copies. */
struct AsyncCopy {
    void* dst;
    const void* src;
    unsigned bytes, src_bytes;
};
void async_copy_issue(const AsyncCopy& copy);
void async_copy_commit();
/* Removes and returns (oldest first, *count of them) the copies that cp.async.wait_group `pending` completes:
 * those of every committed group but the `pending` newest. Valid until the thread's next async_copy_ call. */
const AsyncCopy* async_copy_complete(int pending, unsigned* count);

using Invoker = void (*)(void** args);
/* cluster_x/y/z: the kernel's compile-time cluster (CC_REGISTER_CLUSTER_KERNEL); 1, 1, 1 for an ordinary kernel. */
bool register_kernel(const char* name, Invoker invoke, int param_count, unsigned cluster_x = 1, unsigned cluster_y = 1,
                     unsigned cluster_z = 1);
/* Thread-block clusters (native/emu/scheduler.cpp): the calling thread's block rank and the blocks per cluster; the
 * cluster barrier; and the address of `bytes` at the place of `shared` (this block's shared memory) in block `rank`
 * of the cluster (fails the launch and never returns when the read is invalid: see the header comment). */
unsigned cluster_rank();
unsigned cluster_size();
void cluster_sync(const char* file, unsigned line);
const void* cluster_map(const void* shared, unsigned rank, unsigned bytes, const char* file, unsigned line);

#if defined(CC_EMU_PROFILE)
/* Profiling build (native/emu/profile.cpp): the unpacking below reads the launcher's argument array, which
 * on a GPU are constant-bank kernel parameters, not memory traffic; it stays uninstrumented, and the kernel
 * (instrumented) cannot be inlined into it. */
#define CC_EMU_UNPACK_ATTRS __attribute__((no_sanitize("thread")))
#else
#define CC_EMU_UNPACK_ATTRS
#endif

/* Unpacks cuLaunchKernel-style arguments: args[i] points at the i-th parameter's value. Top-level
 * cv/__restrict__ qualifiers are not part of a function type, so A... are the plain value types. */
template <class... A, std::size_t... I>
CC_EMU_UNPACK_ATTRS inline void call_unpacked(void (*fn)(A...), void** args, std::index_sequence<I...>) {
    (void)args;
    fn(*static_cast<A*>(args[I])...);
}
template <class... A>
CC_EMU_UNPACK_ATTRS inline void call_with_args(void (*fn)(A...), void** args) {
    call_unpacked(fn, args, std::index_sequence_for<A...>{});
}
template <auto Fn>
CC_EMU_UNPACK_ATTRS void invoke_kernel(void** args) { call_with_args(Fn, args); }
template <class... A>
constexpr int param_count(void (*)(A...)) { return static_cast<int>(sizeof...(A)); }

template <class T>
inline unsigned to_bits(T v) { return __builtin_bit_cast(unsigned, v); }
template <class T>
inline T from_bits(unsigned b) { return __builtin_bit_cast(T, b); }

template <class T>
inline T shfl(WarpOp op, unsigned mask, T v, int b, int width, const std::source_location& loc) {
    static_assert(sizeof(T) == 4, "shuffles are implemented for 32-bit types (float, int, unsigned)");
    return from_bits<T>(warp_op(op, mask, to_bits(v), b, width, loc.file_name(), loc.line()));
}

} // namespace cc_emu_detail

#define threadIdx (::cc_emu_detail::current()->thread_idx)
#define blockIdx (::cc_emu_detail::current()->block_idx)
#define blockDim (::cc_emu_detail::current()->block_dim)
#define gridDim (::cc_emu_detail::current()->grid_dim)
#define warpSize 32

/* The call site (file:line) rides along in a defaulted std::source_location so the emulator can say
 * where each thread waits when it reports a divergent barrier, a deadlock or a warp mismatch. */
#define CC_SHIM_LOC std::source_location loc = std::source_location::current()

inline void __syncthreads(CC_SHIM_LOC) { ::cc_emu_detail::syncthreads(loc.file_name(), loc.line()); }
inline void __syncwarp(unsigned mask = 0xffffffffu, CC_SHIM_LOC) {
    ::cc_emu_detail::warp_op(::cc_emu_detail::kSyncWarp, mask, 0, 0, 32, loc.file_name(), loc.line());
}
#if defined(__SANITIZE_THREAD__) && !defined(CC_EMU_PROFILE)
/* TSan cannot model standalone fences (g++ warns); a compiler barrier keeps the ordering it can see.
 * (The profiling build is instrumented like TSan's but performs the fence: native/emu/profile.cpp.)
 * Races a fence would "fix" are still races without an atomic flag, which TSan then reports. */
inline void __threadfence() { std::atomic_signal_fence(std::memory_order_seq_cst); }
#else
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
#endif

#define CC_SHIM_SHFL(NAME, OP, T, BT)                                                               \
    inline T NAME(unsigned mask, T v, BT b, int width = 32, CC_SHIM_LOC) {                          \
        return ::cc_emu_detail::shfl<T>(::cc_emu_detail::OP, mask, v, (int)b, width, loc);          \
    }
CC_SHIM_SHFL(__shfl_sync, kShflIdx, float, int)
CC_SHIM_SHFL(__shfl_sync, kShflIdx, int, int)
CC_SHIM_SHFL(__shfl_sync, kShflIdx, unsigned, int)
CC_SHIM_SHFL(__shfl_up_sync, kShflUp, float, unsigned)
CC_SHIM_SHFL(__shfl_up_sync, kShflUp, int, unsigned)
CC_SHIM_SHFL(__shfl_up_sync, kShflUp, unsigned, unsigned)
CC_SHIM_SHFL(__shfl_down_sync, kShflDown, float, unsigned)
CC_SHIM_SHFL(__shfl_down_sync, kShflDown, int, unsigned)
CC_SHIM_SHFL(__shfl_down_sync, kShflDown, unsigned, unsigned)
CC_SHIM_SHFL(__shfl_xor_sync, kShflXor, float, int)
CC_SHIM_SHFL(__shfl_xor_sync, kShflXor, int, int)
CC_SHIM_SHFL(__shfl_xor_sync, kShflXor, unsigned, int)
#undef CC_SHIM_SHFL

inline unsigned __ballot_sync(unsigned mask, int pred, CC_SHIM_LOC) {
    return ::cc_emu_detail::warp_op(::cc_emu_detail::kBallot, mask, pred != 0, 0, 32, loc.file_name(), loc.line());
}
inline int __any_sync(unsigned mask, int pred, CC_SHIM_LOC) {
    return (int)::cc_emu_detail::warp_op(::cc_emu_detail::kAny, mask, pred != 0, 0, 32, loc.file_name(), loc.line());
}
inline int __all_sync(unsigned mask, int pred, CC_SHIM_LOC) {
    return (int)::cc_emu_detail::warp_op(::cc_emu_detail::kAll, mask, pred != 0, 0, 32, loc.file_name(), loc.line());
}

/* Atomics are real atomics: blocks run in parallel on several OS threads. Relaxed ordering, as on the
 * GPU (atomics there order nothing but themselves), which also keeps TSan from inventing
 * happens-before edges that would hide missing barriers.
 * The profiling build records each call as one atomic access at its call site (CC_SHIM_ATOMIC_SITE, the
 * function inlined so the site is the kernel's): the loads and compare-exchange retries that implement
 * it on the host are not GPU traffic and are not recorded. */
#if defined(CC_EMU_PROFILE)
namespace cc_emu_detail {
void profile_atomic(const void* address, unsigned size);
}
#define CC_SHIM_MEMORY_OP inline __attribute__((always_inline))
#define CC_SHIM_ATOMIC_SITE(a) ::cc_emu_detail::profile_atomic((a), sizeof(*(a)))
#else
#define CC_SHIM_MEMORY_OP inline
#define CC_SHIM_ATOMIC_SITE(a) ((void)0)
#endif
namespace cc_emu_detail {
template <class T>
inline std::atomic_ref<T> aref(T* p) { return std::atomic_ref<T>(*p); }
template <class T, class F>
inline T atomic_update(T* a, F f) {
    auto r = aref(a);
    T old = r.load(std::memory_order_relaxed);
    while (!r.compare_exchange_weak(old, f(old), std::memory_order_relaxed)) {}
    return old;
}
} // namespace cc_emu_detail

CC_SHIM_MEMORY_OP float atomicAdd(float* a, float v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::aref(a).fetch_add(v, std::memory_order_relaxed); }
CC_SHIM_MEMORY_OP int atomicAdd(int* a, int v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::aref(a).fetch_add(v, std::memory_order_relaxed); }
CC_SHIM_MEMORY_OP unsigned atomicAdd(unsigned* a, unsigned v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::aref(a).fetch_add(v, std::memory_order_relaxed); }
CC_SHIM_MEMORY_OP unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::aref(a).fetch_add(v, std::memory_order_relaxed); }
CC_SHIM_MEMORY_OP int atomicSub(int* a, int v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::aref(a).fetch_sub(v, std::memory_order_relaxed); }
CC_SHIM_MEMORY_OP unsigned atomicSub(unsigned* a, unsigned v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::aref(a).fetch_sub(v, std::memory_order_relaxed); }
CC_SHIM_MEMORY_OP int atomicMax(int* a, int v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::atomic_update(a, [v](int o) { return o > v ? o : v; }); }
CC_SHIM_MEMORY_OP unsigned atomicMax(unsigned* a, unsigned v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::atomic_update(a, [v](unsigned o) { return o > v ? o : v; }); }
CC_SHIM_MEMORY_OP int atomicMin(int* a, int v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::atomic_update(a, [v](int o) { return o < v ? o : v; }); }
CC_SHIM_MEMORY_OP unsigned atomicMin(unsigned* a, unsigned v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::atomic_update(a, [v](unsigned o) { return o < v ? o : v; }); }
CC_SHIM_MEMORY_OP int atomicCAS(int* a, int cmp, int v) {
    CC_SHIM_ATOMIC_SITE(a);
    ::cc_emu_detail::aref(a).compare_exchange_strong(cmp, v, std::memory_order_relaxed);
    return cmp; /* holds the old value whether or not the exchange happened */
}
CC_SHIM_MEMORY_OP unsigned atomicCAS(unsigned* a, unsigned cmp, unsigned v) {
    CC_SHIM_ATOMIC_SITE(a);
    ::cc_emu_detail::aref(a).compare_exchange_strong(cmp, v, std::memory_order_relaxed);
    return cmp;
}
CC_SHIM_MEMORY_OP int atomicExch(int* a, int v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::aref(a).exchange(v, std::memory_order_relaxed); }
CC_SHIM_MEMORY_OP unsigned atomicExch(unsigned* a, unsigned v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::aref(a).exchange(v, std::memory_order_relaxed); }
CC_SHIM_MEMORY_OP float atomicExch(float* a, float v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::aref(a).exchange(v, std::memory_order_relaxed); }
/* The one atomic with ordering (see the header comment): acq_rel, so the emulator's blocks on other OS threads
 * synchronise through it exactly as the GPU's fences make them, and TSan sees the happens-before edge. */
CC_SHIM_MEMORY_OP unsigned cc_atomic_add_acq_rel(unsigned* a, unsigned v) { CC_SHIM_ATOMIC_SITE(a); return ::cc_emu_detail::aref(a).fetch_add(v, std::memory_order_acq_rel); }

/* Math: the C library's versions (fmaxf, fminf, fmaf, fabsf, sqrtf, expf, logf come from <cmath>). */
inline float rsqrtf(float a) { return 1.0f / std::sqrt(a); }
/* g++ does not contract here (ISO C++: -ffp-contract=off), so a plain add is rounded once. */
inline float cc_add_rn(float a, float b) { return a + b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
/* Inlined in the profiling build so that the load is the kernel's instruction, not one shared by every call. */
CC_SHIM_MEMORY_OP float __ldg(const float* p) { return *p; }
CC_SHIM_MEMORY_OP int __ldg(const int* p) { return *p; }

/* 64-bit shuffles: two 32-bit rendezvous at the same call site, low half first, as CUDA's headers do it. */
namespace cc_emu_detail {
template <class T>
inline T shfl64(WarpOp op, unsigned mask, T v, int b, int width, const std::source_location& loc) {
    static_assert(sizeof(T) == 8, "64-bit shuffles are for double, long long and unsigned long long");
    const auto bits = __builtin_bit_cast(unsigned long long, v);
    const unsigned lo = warp_op(op, mask, static_cast<unsigned>(bits), b, width, loc.file_name(), loc.line());
    const unsigned hi = warp_op(op, mask, static_cast<unsigned>(bits >> 32), b, width, loc.file_name(), loc.line());
    return __builtin_bit_cast(T, static_cast<unsigned long long>(hi) << 32 | lo);
}
} // namespace cc_emu_detail
#define CC_SHIM_SHFL64(NAME, OP, T, BT)                                                             \
    inline T NAME(unsigned mask, T v, BT b, int width = 32, CC_SHIM_LOC) {                          \
        return ::cc_emu_detail::shfl64<T>(::cc_emu_detail::OP, mask, v, (int)b, width, loc);        \
    }
#define CC_SHIM_SHFL64_ALL(T)                                                                       \
    CC_SHIM_SHFL64(__shfl_sync, kShflIdx, T, int)                                                   \
    CC_SHIM_SHFL64(__shfl_up_sync, kShflUp, T, unsigned)                                            \
    CC_SHIM_SHFL64(__shfl_down_sync, kShflDown, T, unsigned)                                        \
    CC_SHIM_SHFL64(__shfl_xor_sync, kShflXor, T, int)
CC_SHIM_SHFL64_ALL(double)
CC_SHIM_SHFL64_ALL(long long)
CC_SHIM_SHFL64_ALL(unsigned long long)
#undef CC_SHIM_SHFL64_ALL
#undef CC_SHIM_SHFL64

/* The emulator runs the lanes one after another, so "active" cannot mean "executing this instruction now": it
 * is a rendezvous of every lane that exists and has not exited, whose result is those lanes. In converged code
 * that is the GPU's answer; in divergent code the lanes elsewhere never arrive and the emulator reports it. */
inline unsigned __activemask(CC_SHIM_LOC) {
    return ::cc_emu_detail::warp_op(::cc_emu_detail::kActiveMask, 0xffffffffu, 0, 0, 32, loc.file_name(), loc.line());
}

/* ---- tensor cores and asynchronous copies (see the header comment; the GPU builds use PTX) ---------- */
/* The bit pattern the emulator writes into a cp.async destination until the wait: a signalling NaN. */
#define CC_CP_ASYNC_POISON 0x7fa0deadu
namespace cc_emu_detail {
/* cvt.rna.tf32.f32 on the bits: round the 23-bit mantissa to 10 bits, to nearest with ties away from zero
 * (adding half an ulp of tf32 to the magnitude carries into the exponent when it must, up to infinity);
 * NaN and infinity pass unchanged. */
inline unsigned tf32_round(unsigned bits) {
    if ((bits & 0x7f800000u) == 0x7f800000u) return bits;
    return (bits + 0x1000u) & ~0x1fffu;
}
/* One lane's operands of cc_mma_tf32_m16n8k8, in the PTX fragment layout. */
struct MmaOperands {
    unsigned a[4], b[2];
    float c[4];
};
/* One lane's part of ldmatrix: the row it addressed and, when it is one of the 8 × count addressing lanes,
 * the row's 16 bytes (read by the lane itself, so that the sanitizers and the profile see a shared load of
 * the kernel's). */
struct LdmatrixRow {
    const void* address;
    unsigned words[4];
    bool read;
};
inline unsigned lane_id() {
    const ThreadContext& c = *current();
    return (c.thread_idx.x + c.block_dim.x * (c.thread_idx.y + c.block_dim.y * c.thread_idx.z)) % 32;
}
template <int Count, bool Trans>
CC_SHIM_MEMORY_OP void ldmatrix(unsigned* r, const void* row, const std::source_location& loc) {
    LdmatrixRow in{row, {}, false};
    /* A misaligned row is not read here (the host's aligned 16-byte load would fault): the rendezvous
     * reports it. */
    if (lane_id() < 8u * Count && reinterpret_cast<std::uintptr_t>(row) % 16 == 0) {
        const float4 v = *static_cast<const float4*>(row);
        in.words[0] = to_bits(v.x), in.words[1] = to_bits(v.y), in.words[2] = to_bits(v.z), in.words[3] = to_bits(v.w);
        in.read = true;
    }
    warp_collective(kLdmatrix, &in, r, Count | (Trans ? 0x100 : 0), loc.file_name(), loc.line());
}

/* cp.async. The poison written at issue and the data written at the wait are the kernel's own writes in the
 * sanitizer builds (so ASan checks both ranges and TSan sees a write at each end of the copy's lifetime); the
 * profiling build records instead what the GPU does, one global read and one shared write at the issuing
 * instruction (profile_async_copy), and leaves these writes out of its counts. */
#if defined(CC_EMU_PROFILE)
void profile_async_copy(const void* dst, const void* src, unsigned bytes);
void profile_mma();
#define CC_SHIM_UNCOUNTED inline __attribute__((noinline, no_sanitize("thread")))
#else
#define CC_SHIM_UNCOUNTED inline
#endif
CC_SHIM_UNCOUNTED void async_copy_poison(void* dst, unsigned bytes) {
    for (unsigned i = 0; i < bytes / 4; ++i) static_cast<unsigned*>(dst)[i] = CC_CP_ASYNC_POISON;
}
CC_SHIM_UNCOUNTED void async_copy_perform(const AsyncCopy& c) {
    auto* d = static_cast<unsigned char*>(c.dst);
    const auto* s = static_cast<const unsigned char*>(c.src);
    for (unsigned i = 0; i < c.bytes; ++i) d[i] = i < c.src_bytes ? s[i] : 0;
}
#undef CC_SHIM_UNCOUNTED
template <int Bytes>
CC_SHIM_MEMORY_OP void cp_async(void* dst, const void* src, unsigned src_bytes) {
#if defined(CC_EMU_PROFILE)
    profile_async_copy(dst, src, Bytes);
#endif
    async_copy_poison(dst, Bytes);
    async_copy_issue(AsyncCopy{dst, src, Bytes, src_bytes});
}
} // namespace cc_emu_detail


inline unsigned cc_cvt_tf32(float x) { return ::cc_emu_detail::tf32_round(::cc_emu_detail::to_bits(x)); }

CC_SHIM_MEMORY_OP void cc_mma_tf32_m16n8k8(float d[4], const unsigned a[4], const unsigned b[2], const float c[4], CC_SHIM_LOC) {
#if defined(CC_EMU_PROFILE)
    ::cc_emu_detail::profile_mma();
#endif
    const ::cc_emu_detail::MmaOperands in{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}, {c[0], c[1], c[2], c[3]}};
    ::cc_emu_detail::warp_collective(::cc_emu_detail::kMma, &in, d, 0, loc.file_name(), loc.line());
}

#define CC_SHIM_LDMATRIX(NAME, COUNT, TRANS)                                                        \
    CC_SHIM_MEMORY_OP void NAME(unsigned r[COUNT], const void* row, CC_SHIM_LOC) {                  \
        ::cc_emu_detail::ldmatrix<COUNT, TRANS>(r, row, loc);                                       \
    }
CC_SHIM_LDMATRIX(cc_ldmatrix_x1, 1, false)
CC_SHIM_LDMATRIX(cc_ldmatrix_x2, 2, false)
CC_SHIM_LDMATRIX(cc_ldmatrix_x4, 4, false)
CC_SHIM_LDMATRIX(cc_ldmatrix_x1_trans, 1, true)
CC_SHIM_LDMATRIX(cc_ldmatrix_x2_trans, 2, true)
CC_SHIM_LDMATRIX(cc_ldmatrix_x4_trans, 4, true)
#undef CC_SHIM_LDMATRIX

template <int Bytes>
CC_SHIM_MEMORY_OP void cc_cp_async_ca(void* shared_dst, const void* global_src, unsigned src_bytes = Bytes) {
    static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async.ca copies 4, 8 or 16 bytes");
    ::cc_emu_detail::cp_async<Bytes>(shared_dst, global_src, src_bytes);
}
CC_SHIM_MEMORY_OP void cc_cp_async_cg(void* shared_dst, const void* global_src, unsigned src_bytes = 16) {
    ::cc_emu_detail::cp_async<16>(shared_dst, global_src, src_bytes);
}
inline void cc_cp_async_commit() { ::cc_emu_detail::async_copy_commit(); }
template <int Pending>
inline void cc_cp_async_wait() {
    static_assert(Pending >= 0 && Pending <= 7, "cp.async.wait_group takes 0..7");
    unsigned count = 0;
    const ::cc_emu_detail::AsyncCopy* copies = ::cc_emu_detail::async_copy_complete(Pending, &count);
    for (unsigned i = 0; i < count; ++i) ::cc_emu_detail::async_copy_perform(copies[i]);
}

/* ---- thread-block clusters (see the header comment; the GPU build uses PTX) ---------------------- */
inline unsigned cc_cluster_ctarank() { return ::cc_emu_detail::cluster_rank(); }
inline unsigned cc_cluster_nctarank() { return ::cc_emu_detail::cluster_size(); }
inline void cc_cluster_sync(CC_SHIM_LOC) { ::cc_emu_detail::cluster_sync(loc.file_name(), loc.line()); }
/* The load is the kernel's own (inlined into it), so the sanitizers check it and the profile counts it as a shared
 * load: its address lies in the other block's shared memory. */
CC_SHIM_MEMORY_OP float cc_cluster_load(const float* shared, unsigned rank, CC_SHIM_LOC) {
    return *static_cast<const float*>(::cc_emu_detail::cluster_map(shared, rank, sizeof(float), loc.file_name(), loc.line()));
}

#undef CC_SHIM_LOC

#define CC_DYNAMIC_SHARED(type, name) type* const name = static_cast<type*>(::cc_emu_detail::dynamic_shared())
/* The tag is a static of the declaration (one per template instantiation, as each is a kernel of its own). */
#define CC_STATIC_SHARED(type, name, extents)                                                                     \
    static const char cc_static_shared_tag_##name = 0;                                                           \
    using cc_static_shared_type_##name = type extents;                                                           \
    cc_static_shared_type_##name& name = *static_cast<cc_static_shared_type_##name*>(::cc_emu_detail::static_shared( \
        &cc_static_shared_tag_##name, sizeof(cc_static_shared_type_##name), #name, __FILE__, __LINE__))

/* Registers the kernel by name with an unpacker generated from its parameter types. The registrar runs
 * when the emulator library is loaded. */
#define CC_REGISTER_KERNEL(fn)                                                                       \
    [[maybe_unused]] static const bool cc_emu_registered_##fn =                                      \
        ::cc_emu_detail::register_kernel(#fn, &::cc_emu_detail::invoke_kernel<&fn>, ::cc_emu_detail::param_count(&fn))
/* A cluster kernel: the emulator runs each cluster's x*y*z blocks together (cc_cluster_sync, cc_cluster_load). */
#define CC_REGISTER_CLUSTER_KERNEL(fn, x, y, z)                                                      \
    [[maybe_unused]] static const bool cc_emu_registered_##fn = ::cc_emu_detail::register_kernel(    \
        #fn, &::cc_emu_detail::invoke_kernel<&fn>, ::cc_emu_detail::param_count(&fn), (x), (y), (z))
#define CC_HAS_CLUSTERS 1
#define CC_CLUSTER_DIMS(x, y, z)

#endif /* modes */

/* Loops over register arrays must be unrolled completely: an array indexed by a loop variable the compiler does not
 * resolve lives in local memory. CC_UNROLL before such a loop asks every build for it. */
#if defined(CC_DEVICE_BUILD)
#define CC_UNROLL _Pragma("unroll")
#else
#define CC_UNROLL _Pragma("GCC unroll 64")
#endif

/* Marks parameters as used: the `#else` of a cluster kernel whose body exists only where CC_HAS_CLUSTERS. */
#if defined(CC_DEVICE_BUILD)
template <class... T>
static __device__ __forceinline__ void cc_unused(const T&...) {}
#else
template <class... T>
inline void cc_unused(const T&...) {}
#endif

#if defined(CC_DEVICE_BUILD)
/* ---- modes 1 and 2: tensor cores and asynchronous copies (the shim's only inline PTX), the ordered arrival. */
#define CC_SHIM_PTX static __device__ __forceinline__

namespace cc_shim {
/* The shared-window address of a generic pointer into shared memory: what ldmatrix and cp.async take. */
CC_SHIM_PTX unsigned shared_address(const void* p) {
    unsigned long long address;
    asm("cvta.to.shared.u64 %0, %1;" : "=l"(address) : "l"(p));
    return (unsigned)address;
}
} // namespace cc_shim

/* Release: this thread's earlier stores reach device scope before the add; acquire: its later loads see what
 * the earlier arrivals released. (Both builds' atomicAdd and __threadfence: membar.gl around atom.add.) */
CC_SHIM_PTX unsigned cc_atomic_add_acq_rel(unsigned* a, unsigned v) {
    __threadfence();
    const unsigned old = atomicAdd(a, v);
    __threadfence();
    return old;
}

/* add.rn.f32: an explicit rounding modifier, so ptxas never fuses it with the multiply that produced an operand (a
 * plain add.f32 may be contracted into an fma; clang lowers __nvvm_add_rn_f to exactly that plain add). */
CC_SHIM_PTX float cc_add_rn(float a, float b) {
    float r;
    asm("add.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}

CC_SHIM_PTX unsigned cc_cvt_tf32(float x) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

CC_SHIM_PTX void cc_mma_tf32_m16n8k8(float d[4], const unsigned a[4], const unsigned b[2], const float c[4]) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}

/* "memory": the compiler must not move shared-memory stores of this thread across the read. TRANS is "" or
 * ".trans". */
#define CC_SHIM_LDMATRIX(SUFFIX, TRANS)                                                                           \
    CC_SHIM_PTX void cc_ldmatrix_x1##SUFFIX(unsigned r[1], const void* row) {                                     \
        asm volatile("ldmatrix.sync.aligned.m8n8.x1" TRANS ".shared.b16 {%0}, [%1];"                              \
                     : "=r"(r[0]) : "r"(cc_shim::shared_address(row)) : "memory");                                \
    }                                                                                                             \
    CC_SHIM_PTX void cc_ldmatrix_x2##SUFFIX(unsigned r[2], const void* row) {                                     \
        asm volatile("ldmatrix.sync.aligned.m8n8.x2" TRANS ".shared.b16 {%0,%1}, [%2];"                           \
                     : "=r"(r[0]), "=r"(r[1]) : "r"(cc_shim::shared_address(row)) : "memory");                    \
    }                                                                                                             \
    CC_SHIM_PTX void cc_ldmatrix_x4##SUFFIX(unsigned r[4], const void* row) {                                     \
        asm volatile("ldmatrix.sync.aligned.m8n8.x4" TRANS ".shared.b16 {%0,%1,%2,%3}, [%4];"                     \
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(cc_shim::shared_address(row)) : "memory"); \
    }
CC_SHIM_LDMATRIX(, "")
CC_SHIM_LDMATRIX(_trans, ".trans")
#undef CC_SHIM_LDMATRIX

template <int Bytes>
CC_SHIM_PTX void cc_cp_async_ca(void* shared_dst, const void* global_src, unsigned src_bytes = Bytes) {
    static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async.ca copies 4, 8 or 16 bytes");
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;" ::"r"(cc_shim::shared_address(shared_dst)), "l"(global_src),
                 "n"(Bytes), "r"(src_bytes)
                 : "memory");
}
CC_SHIM_PTX void cc_cp_async_cg(void* shared_dst, const void* global_src, unsigned src_bytes = 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(cc_shim::shared_address(shared_dst)), "l"(global_src),
                 "r"(src_bytes)
                 : "memory");
}
CC_SHIM_PTX void cc_cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int Pending>
CC_SHIM_PTX void cc_cp_async_wait() {
    static_assert(Pending >= 0 && Pending <= 7, "cp.async.wait_group takes 0..7");
    asm volatile("cp.async.wait_group %0;" ::"n"(Pending) : "memory");
}
#if CC_HAS_CLUSTERS
CC_SHIM_PTX unsigned cc_cluster_ctarank() {
    unsigned r;
    asm("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
    return r;
}
CC_SHIM_PTX unsigned cc_cluster_nctarank() {
    unsigned r;
    asm("mov.u32 %0, %%cluster_nctarank;" : "=r"(r));
    return r;
}
/* The default semantics: arrive releases, wait acquires (cluster scope), so shared-memory stores before it are seen
 * by the other blocks' cc_cluster_load after it. "memory": no load or store moves across it. */
CC_SHIM_PTX void cc_cluster_sync() { asm volatile("barrier.cluster.arrive;\n\tbarrier.cluster.wait;" ::: "memory"); }
CC_SHIM_PTX float cc_cluster_load(const float* shared, unsigned rank) {
    unsigned remote;
    float v;
    asm("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(cc_shim::shared_address(shared)), "r"(rank));
    asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v) : "r"(remote) : "memory");
    return v;
}
#endif

#undef CC_SHIM_PTX

#endif /* CC_DEVICE_BUILD */

#endif /* CHEAPCONV_CUDA_SHIM_H */
