/* Kernels of the emulator self-test (tests/selftest/primitives.cpp checks their results). They exercise
 * every primitive of cuda_shim.h and are compiled to PTX as well, which checks the device half of the
 * shim. Not part of any shipped library. */
#include "cheapconv/cuda_shim.h"

/* Sum of blockDim.x floats per block: tree reduction in dynamic shared memory down to one warp, then
 * shuffles. blockDim.x must be a power of two >= 64; dynamic shared = blockDim.x * 4 bytes. */
extern "C" __global__ void st_reduce_dynamic(const float* in, float* out, int n) {
    CC_DYNAMIC_SHARED(float, buf);
    const unsigned t = threadIdx.x;
    const int i = (int)(blockIdx.x * blockDim.x + t);
    buf[t] = i < n ? in[i] : 0.0f;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s >= 32; s /= 2) {
        if (t < s) buf[t] += buf[t + s];
        __syncthreads();
    }
    if (t < 32) {
        float v = buf[t];
        for (int d = 16; d > 0; d /= 2) v += __shfl_xor_sync(0xffffffffu, v, d);
        if (t == 0) out[blockIdx.x] = v;
    }
}
CC_REGISTER_KERNEL(st_reduce_dynamic);

/* Every shuffle flavour at widths 32, 16, 8 on int values, plus float and unsigned spot checks.
 * One block of 64 threads. out: 4 ops * 3 widths * 64 ints, then 64 floats' bits, then 64 unsigned. */
extern "C" __global__ void st_shuffles(int* out, float* fout, unsigned* uout) {
    const unsigned t = threadIdx.x;
    const int v = (int)(t * 10 + 1);
    const int widths[3] = {32, 16, 8};
    for (int w = 0; w < 3; ++w) {
        const int width = widths[w];
        out[(0 * 3 + w) * 64 + t] = __shfl_sync(0xffffffffu, v, (int)(t * 7 + 3), width);
        out[(1 * 3 + w) * 64 + t] = __shfl_up_sync(0xffffffffu, v, 3, width);
        out[(2 * 3 + w) * 64 + t] = __shfl_down_sync(0xffffffffu, v, 3, width);
        out[(3 * 3 + w) * 64 + t] = __shfl_xor_sync(0xffffffffu, v, 5, width);
    }
    fout[t] = __shfl_down_sync(0xffffffffu, (float)t + 0.5f, 1);
    uout[t] = __shfl_sync(0xffffffffu, 0x80000000u | t, 0);
}
CC_REGISTER_KERNEL(st_shuffles);

/* Votes, with the full warp and with half-warp masks. One block of 64 threads; out: 64 * 5 unsigned. */
extern "C" __global__ void st_votes(unsigned* out) {
    const unsigned t = threadIdx.x, lane = t % 32;
    out[0 * 64 + t] = __ballot_sync(0xffffffffu, lane % 3 == 0);
    out[1 * 64 + t] = (unsigned)__any_sync(0xffffffffu, lane == 5);
    out[2 * 64 + t] = (unsigned)__all_sync(0xffffffffu, lane < 31);
    if (lane < 16)
        out[3 * 64 + t] = __ballot_sync(0x0000ffffu, lane & 1);
    else
        out[3 * 64 + t] = __ballot_sync(0xffff0000u, lane & 2);
    __syncwarp();
    out[4 * 64 + t] = (unsigned)__all_sync(0xffffffffu, 1);
}
CC_REGISTER_KERNEL(st_votes);

/* Atomics from every thread of every block (blocks run on several OS threads at once). */
extern "C" __global__ void st_atomics(int* ints, float* f, unsigned* u, unsigned long long* ull) {
    const int gid = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    atomicAdd(&ints[0], 1);
    atomicMax(&ints[1], gid);
    atomicMin(&ints[2], -gid);
    int old = 0; /* a guess; a failed CAS returns the real value (no plain read of a contended word) */
    for (;;) { /* an increment built from compare-and-swap */
        const int seen = atomicCAS(&ints[3], old, old + 1);
        if (seen == old) break;
        old = seen;
    }
    atomicExch(&ints[4], 7);
    atomicSub(&ints[5], 2);
    atomicAdd(f, 0.5f);
    atomicAdd(&u[0], 3u);
    atomicMax(&u[1], (unsigned)gid);
    atomicAdd(ull, 1ull << 32);
    __threadfence();
}
CC_REGISTER_KERNEL(st_atomics);

/* "Last block reduces" on cc_atomic_add_acq_rel: thread 0 of every block stores blockIdx.x + 1 into its slot and
 * counts the block's arrival; the block that arrives last (it reads gridDim.x - 1) adds the slots in order into
 * *total (reading what the other blocks stored) and counts itself in *lasts. */
extern "C" __global__ void st_last_block(float* slots, unsigned* counter, float* total, unsigned* lasts) {
    CC_STATIC_SHARED(int, last, );
    if (threadIdx.x == 0) {
        slots[blockIdx.x] = (float)(blockIdx.x + 1);
        last = cc_atomic_add_acq_rel(counter, 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!last || threadIdx.x != 0) return;
    const volatile float* seen = slots;
    float acc = 0.0f;
    for (unsigned b = 0; b < gridDim.x; ++b) acc += seen[b];
    *total = acc;
    atomicAdd(lasts, 1u);
}
CC_REGISTER_KERNEL(st_last_block);

/* 3D grid and block: each thread writes its coordinates, packed, at its global linear index. */
extern "C" __global__ void st_indices(unsigned* out, unsigned* dims) {
    const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
    const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned local = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    out[block * threads + local] = threadIdx.x | threadIdx.y << 4 | threadIdx.z << 8 | blockIdx.x << 12 |
                                   blockIdx.y << 16 | blockIdx.z << 20;
    if (block == 0 && local == 0) {
        dims[0] = blockDim.x; dims[1] = blockDim.y; dims[2] = blockDim.z;
        dims[3] = gridDim.x; dims[4] = gridDim.y; dims[5] = gridDim.z;
        dims[6] = warpSize;
    }
}
CC_REGISTER_KERNEL(st_indices);

/* Warp-level inclusive scan through shared memory, ordered by __syncwarp (not by shuffles). Block of
 * 64 threads; static shared memory. */
extern "C" __global__ void st_syncwarp_scan(const int* in, int* out) {
    CC_STATIC_SHARED(int, s, [64]);
    const unsigned t = threadIdx.x, lane = t % 32;
    s[t] = in[t];
    __syncwarp();
    for (unsigned d = 1; d < 32; d *= 2) {
        const int add = lane >= d ? s[t - d] : 0;
        __syncwarp();
        s[t] += add;
        __syncwarp();
    }
    out[t] = s[t];
}
CC_REGISTER_KERNEL(st_syncwarp_scan);

/* The shim's math functions. out: 10 floats per input. */
extern "C" __global__ void st_math(const float* in, float* out, int n) {
    const int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= n) return;
    const float x = in[i];
    float* o = out + 10 * i;
    o[0] = fmaxf(x, 0.25f);
    o[1] = fminf(x, 0.25f);
    o[2] = fmaf(x, 2.0f, 1.0f);
    o[3] = fabsf(x);
    o[4] = sqrtf(fabsf(x));
    o[5] = rsqrtf(fabsf(x) + 1.0f);
    o[6] = expf(x);
    o[7] = logf(fabsf(x) + 1.0f);
    o[8] = (float)max(min((int)(x * 4.0f), 3), -3);
    o[9] = __ldg(&in[i]);
}
CC_REGISTER_KERNEL(st_math);

/* y = a*x + y, one thread per element, no synchronization: the emulator's raw throughput. */
extern "C" __global__ void st_saxpy(float a, const float* x, float* y, int n) {
    const int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i < n) y[i] = a * x[i] + y[i];
}
CC_REGISTER_KERNEL(st_saxpy);

/* A POD struct by value (like cc_conv_problem) and mixed scalar parameter types. */
extern "C" __global__ void st_params(cc_conv_problem p, unsigned u, float f, int* out) {
    if (threadIdx.x == 0) {
        out[0] = p.n + p.c + p.h + p.w + p.k + p.r + p.s + p.pad_h + p.pad_w + p.stride_h + p.stride_w + p.groups + p.p + p.q;
        out[1] = (int)u;
        out[2] = (int)(f * 4.0f);
    }
}
CC_REGISTER_KERNEL(st_params);

/* A block that is not a whole number of warps (blockDim.x = 48): the missing lanes 48..63 of warp 1 do
 * not exist, so they neither hold up the full-mask vote and shuffle nor appear in the ballot. out: 48 * 3. */
extern "C" __global__ void st_partial_warp(unsigned* out) {
    const unsigned t = threadIdx.x;
    out[t] = __ballot_sync(0xffffffffu, 1);
    out[48 + t] = (unsigned)__shfl_xor_sync(0xffffffffu, (int)t, 1);
    __syncthreads();
    out[96 + t] = (unsigned)__all_sync(0xffffffffu, t < 48);
}
CC_REGISTER_KERNEL(st_partial_warp);

/* ---- tensor cores, ldmatrix, cp.async, 64-bit shuffles, __activemask (primitives.cpp checks them) ---- */

/* cc_cvt_tf32 of each input: out[i] = the tf32 bits. One block of 32 threads, n <= 32. */
extern "C" __global__ void st_cvt_tf32(const float* in, unsigned* out, int n) {
    const int i = (int)threadIdx.x;
    if (i < n) out[i] = cc_cvt_tf32(in[i]);
}
CC_REGISTER_KERNEL(st_cvt_tf32);

/* D = A·B + C with one mma.sync m16n8k8: a 16×8 row-major, b 8×8 row-major (B[k][n] at b[k*8+n]), c and d
 * 16×8 row-major. One warp; each lane gathers and scatters its fragments with the PTX ISA layout. */
extern "C" __global__ void st_mma_tf32(const float* a, const float* b, const float* c, float* d) {
    const unsigned lane = threadIdx.x, g = lane / 4, t = lane % 4;
    const unsigned fa[4] = {cc_cvt_tf32(a[g * 8 + t]), cc_cvt_tf32(a[(g + 8) * 8 + t]), cc_cvt_tf32(a[g * 8 + t + 4]),
                            cc_cvt_tf32(a[(g + 8) * 8 + t + 4])};
    const unsigned fb[2] = {cc_cvt_tf32(b[t * 8 + g]), cc_cvt_tf32(b[(t + 4) * 8 + g])};
    float acc[4] = {c[g * 8 + 2 * t], c[g * 8 + 2 * t + 1], c[(g + 8) * 8 + 2 * t], c[(g + 8) * 8 + 2 * t + 1]};
    cc_mma_tf32_m16n8k8(acc, fa, fb, acc);
    d[g * 8 + 2 * t] = acc[0];
    d[g * 8 + 2 * t + 1] = acc[1];
    d[(g + 8) * 8 + 2 * t] = acc[2];
    d[(g + 8) * 8 + 2 * t + 1] = acc[3];
}
CC_REGISTER_KERNEL(st_mma_tf32);

/* Every ldmatrix form on four 8×8 b16 matrices held in shared memory with their rows in reverse order (row j
 * of matrix m at slot 8m + 7 - j), so the result also checks that each lane's address is the one used.
 * in: 4 matrices × 8 rows × 4 words in matrix order; out: 6 forms (x1, x2, x4, x1.trans, x2.trans, x4.trans)
 * × 32 lanes × 4 words, the words a form does not return left as they were. One warp. */
extern "C" __global__ void st_ldmatrix(const unsigned* in, unsigned* out) {
    CC_STATIC_SHARED(unsigned, s, [32 * 4]);
    const unsigned lane = threadIdx.x, m = lane / 8, j = lane % 8;
    for (int w = 0; w < 4; ++w) s[(m * 8 + 7 - j) * 4 + w] = in[(m * 8 + j) * 4 + w];
    __syncwarp();
    const unsigned* row = &s[(m * 8 + 7 - j) * 4];
    unsigned r[4];
    cc_ldmatrix_x1(r, row);
    out[(0 * 32 + lane) * 4] = r[0];
    cc_ldmatrix_x2(r, row);
    for (int i = 0; i < 2; ++i) out[(1 * 32 + lane) * 4 + i] = r[i];
    cc_ldmatrix_x4(r, row);
    for (int i = 0; i < 4; ++i) out[(2 * 32 + lane) * 4 + i] = r[i];
    cc_ldmatrix_x1_trans(r, row);
    out[(3 * 32 + lane) * 4] = r[0];
    cc_ldmatrix_x2_trans(r, row);
    for (int i = 0; i < 2; ++i) out[(4 * 32 + lane) * 4 + i] = r[i];
    cc_ldmatrix_x4_trans(r, row);
    for (int i = 0; i < 4; ++i) out[(5 * 32 + lane) * 4 + i] = r[i];
}
CC_REGISTER_KERNEL(st_ldmatrix);

/* cp.async and its groups, per thread t of one warp, each step's shared words read back into out
 * (kCpAsyncSteps words per thread, in this order):
 *   0      4-byte .ca copy of src[t], read before any wait          -> the poison
 *   1      the same word after wait<0>                               -> src[t]
 *   2..3   8-byte .ca copy of src[32+2t..], after commit + wait<0>   -> the data
 *   4..7   16-byte .cg copy with src_bytes 8 (zero-fill), waited     -> src[96+4t], src[97+4t], 0, 0
 *   8..9   group A then group B committed, after wait<1>: A, B       -> A's data, the poison
 *   10     B after wait<0>                                           -> B's data
 *   11     a copy issued but never committed, after wait<0>          -> the poison (no group covers it)
 *   12     the same after commit + wait<0>                           -> the data */
#define ST_CP_ASYNC_STEPS 13
extern "C" __global__ void st_cp_async(const unsigned* src, unsigned* out) {
    CC_STATIC_SHARED(unsigned, s, [32 * 16]);
    const unsigned t = threadIdx.x;
    unsigned* mine = &s[t * 16];
    unsigned* o = &out[t * ST_CP_ASYNC_STEPS];
    cc_cp_async_ca<4>(&mine[0], &src[t]);
    cc_cp_async_commit();
    o[0] = mine[0];
    cc_cp_async_wait<0>();
    o[1] = mine[0];
    cc_cp_async_ca<8>(&mine[2], &src[32 + 2 * t]);
    cc_cp_async_commit();
    cc_cp_async_wait<0>();
    o[2] = mine[2];
    o[3] = mine[3];
    cc_cp_async_cg(&mine[4], &src[96 + 4 * t], 8);
    cc_cp_async_commit();
    cc_cp_async_wait<0>();
    for (int i = 0; i < 4; ++i) o[4 + i] = mine[4 + i];
    cc_cp_async_ca<4>(&mine[8], &src[224 + t]);
    cc_cp_async_commit();
    cc_cp_async_ca<4>(&mine[9], &src[256 + t]);
    cc_cp_async_commit();
    cc_cp_async_wait<1>();
    o[8] = mine[8];
    o[9] = mine[9];
    cc_cp_async_wait<0>();
    o[10] = mine[9];
    cc_cp_async_ca<4>(&mine[10], &src[288 + t]);
    cc_cp_async_wait<0>();
    o[11] = mine[10];
    cc_cp_async_commit();
    cc_cp_async_wait<0>();
    o[12] = mine[10];
}
CC_REGISTER_KERNEL(st_cp_async);

/* 64-bit shuffles: out[t] = __shfl_xor_sync of double (t + 0.25) * 2^40 with lane mask 1; lout[t] = __shfl_down
 * of long long -(t << 33) - t by 2 at width 16; uout[t] = __shfl_sync of unsigned long long (t << 40 | 7) from
 * lane 3 of each 8-lane segment. One block of 64 threads. */
extern "C" __global__ void st_shuffles64(double* out, long long* lout, unsigned long long* uout) {
    const unsigned t = threadIdx.x;
    out[t] = __shfl_xor_sync(0xffffffffu, ((double)t + 0.25) * 1099511627776.0, 1);
    lout[t] = __shfl_down_sync(0xffffffffu, -(long long)((unsigned long long)t << 33) - (long long)t, 2, 16);
    uout[t] = __shfl_sync(0xffffffffu, (unsigned long long)t << 40 | 7, 3, 8);
}
CC_REGISTER_KERNEL(st_shuffles64);

/* __activemask() of every thread of a block of 48 (a full warp and a half warp). */
extern "C" __global__ void st_activemask(unsigned* out) { out[threadIdx.x] = __activemask(); }
CC_REGISTER_KERNEL(st_activemask);

/* Writes i into each of the n words of dynamic shared memory, then out[0] = the sum read back (one thread).
 * For the 48 KiB opt-in check: the launch asks for n * 4 bytes. */
extern "C" __global__ void st_large_dynamic_shared(unsigned* out, unsigned n) {
    CC_DYNAMIC_SHARED(unsigned, words); /* a name of its own: extern __shared__ arrays share one name space */
    for (unsigned i = threadIdx.x; i < n; i += blockDim.x) words[i] = i;
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned sum = 0;
        for (unsigned i = 0; i < n; ++i) sum += words[i];
        out[0] = sum;
    }
}
CC_REGISTER_KERNEL(st_large_dynamic_shared);

/* Static shared memory, one block of 64 threads per launch block: before[b*64 + t] = what thread t reads from
 * its word of `words` before anything wrote it (must be 0xffffffff in every block: shared memory starts out
 * undefined, and the emulator never hands a block what the previous one left); after[b*64 + t] = the word of
 * thread (t+1)%64 after every thread wrote its own (the array is the block's, not the thread's); aligned[b] = 1
 * when both variables are 16-byte aligned and do not overlap. */
extern "C" __global__ void st_static_shared(unsigned* before, unsigned* after, unsigned* aligned) {
    CC_STATIC_SHARED(unsigned, words, [64]);
    CC_STATIC_SHARED(float, three, [3]);
    const unsigned t = threadIdx.x, b = blockIdx.x;
    before[b * 64 + t] = words[t];
    __syncthreads();
    words[t] = b * 1000 + t;
    if (t == 0) three[2] = 1.0f;
    __syncthreads();
    after[b * 64 + t] = words[(t + 1) % 64];
    if (t == 0) {
        const unsigned long long w = (unsigned long long)words, f = (unsigned long long)three;
        aligned[b] = (w % 16 == 0 && f % 16 == 0 && (f >= w + sizeof words || w >= f + sizeof three)) ? 1u : 0u;
    }
}
CC_REGISTER_KERNEL(st_static_shared);

/* 32 KiB of static shared memory beside the launch's dynamic buffer: together they must fit in 48 KiB without the
 * opt-in. out[0] = the last static word read back (words - 1). */
extern "C" __global__ void st_static_beside_dynamic(unsigned* out) {
    CC_STATIC_SHARED(unsigned, words, [8192]);
    for (unsigned i = threadIdx.x; i < 8192; i += blockDim.x) words[i] = i;
    __syncthreads();
    if (threadIdx.x == 0) out[0] = words[8191];
}
CC_REGISTER_KERNEL(st_static_beside_dynamic);

#if !defined(CC_DEVICE_BUILD)
/* 4 bytes past CUDA's 48 KiB of static shared memory (ptxas refuses it, so only the emulator build has it). */
extern "C" __global__ void st_static_shared_too_large(unsigned* out) {
    CC_STATIC_SHARED(unsigned, small, [1]);
    CC_STATIC_SHARED(unsigned, big, [12288]);
    small[0] = 1;
    big[threadIdx.x] = small[0];
    out[threadIdx.x] = big[threadIdx.x];
}
CC_REGISTER_KERNEL(st_static_shared_too_large); /* emulator only */
#endif

/* Thread-block clusters. st_cluster_ranks: cluster (4,1,1), any grid a multiple of it; every thread of block b
 * (linear) writes out[b * blockDim.x + t] = cc_cluster_ctarank() | cc_cluster_nctarank() << 8 | blockIdx.x << 16.
 * st_cluster_ranks_2d: the same with cluster (2,2,1) and blockIdx.y << 24 as well, for the rank's x + y*cx. */
extern "C" __global__ void CC_CLUSTER_DIMS(4, 1, 1) st_cluster_ranks(unsigned* out) {
#if CC_HAS_CLUSTERS
    const unsigned b = blockIdx.x + gridDim.x * blockIdx.y;
    out[b * blockDim.x + threadIdx.x] = cc_cluster_ctarank() | cc_cluster_nctarank() << 8 | blockIdx.x << 16;
#else
    cc_unused(out);
#endif
}
CC_REGISTER_CLUSTER_KERNEL(st_cluster_ranks, 4, 1, 1);

extern "C" __global__ void CC_CLUSTER_DIMS(2, 2, 1) st_cluster_ranks_2d(unsigned* out) {
#if CC_HAS_CLUSTERS
    const unsigned b = blockIdx.x + gridDim.x * blockIdx.y;
    out[b * blockDim.x + threadIdx.x] = cc_cluster_ctarank() | cc_cluster_nctarank() << 8 | blockIdx.x << 16 | blockIdx.y << 24;
#else
    cc_unused(out);
#endif
}
CC_REGISTER_CLUSTER_KERNEL(st_cluster_ranks_2d, 2, 2, 1);

/* Distributed shared memory, cluster (4,1,1), blocks of 64 threads, 64 * 4 bytes of dynamic shared memory. Block rank
 * r, thread t: words[t] = 1000 r + t (static), dyn[t] = 100 r + t + 0.5 (dynamic); cluster barrier; then, with
 * b = blockIdx.x and o = &out[(b * 64 + t) * 3]:
 *   o[0] = words[(t + 3) % 64] of rank (r + 1) % 4, o[1] = dyn[63 - t] of rank (r + 3) % 4,
 *   o[2] = the sum of words[t] over ranks 0, 1, 2, 3 in that order (the same bits in every block);
 * then a second barrier, so no block exits while another may still read its shared memory. */
extern "C" __global__ void CC_CLUSTER_DIMS(4, 1, 1) st_cluster_dsmem(float* out) {
#if CC_HAS_CLUSTERS
    CC_STATIC_SHARED(float, words, [64]);
    CC_DYNAMIC_SHARED(float, dyn);
    const unsigned t = threadIdx.x, r = cc_cluster_ctarank();
    words[t] = (float)(1000 * r + t);
    dyn[t] = (float)(100 * r + t) + 0.5f;
    cc_cluster_sync();
    float* o = &out[(blockIdx.x * 64 + t) * 3];
    o[0] = cc_cluster_load(&words[(t + 3) % 64], (r + 1) % 4);
    o[1] = cc_cluster_load(&dyn[63 - t], (r + 3) % 4);
    float sum = 0.0f;
    for (unsigned k = 0; k < 4; ++k) sum += cc_cluster_load(&words[t], k);
    o[2] = sum;
    cc_cluster_sync();
#else
    cc_unused(out);
#endif
}
CC_REGISTER_CLUSTER_KERNEL(st_cluster_dsmem, 4, 1, 1);

#if !defined(CC_DEVICE_BUILD)
/* What the emulator refuses, cluster (2,1,1), blocks of 32 threads; `mode` picks the fault:
 *   0 a read of the other block before any cluster barrier          1 a read at rank 2 (outside the cluster)
 *   2 a read one float past a 4-float static variable               3 a read of a block that has exited
 *   4 rank 0 waits at one cc_cluster_sync, rank 1 at another (a divergent cluster barrier) */
extern "C" __global__ void st_cluster_faults(int mode, float* out) {
    CC_STATIC_SHARED(float, four, [4]);
    const unsigned t = threadIdx.x, r = cc_cluster_ctarank();
    if (t < 4) four[t] = (float)t;
    if (mode == 0) {
        out[t] = cc_cluster_load(&four[0], 1 - r);
        return;
    }
    if (mode == 4) {
        if (r == 0) cc_cluster_sync();
        else cc_cluster_sync();
        return;
    }
    cc_cluster_sync();
    if (mode == 1) out[t] = cc_cluster_load(&four[0], 2);
    if (mode == 2) out[t] = cc_cluster_load(&four[4], 1 - r);
    if (mode == 3) {
        if (r == 1) return;
        __syncthreads(); /* rank 1 runs to its end meanwhile */
        out[t] = cc_cluster_load(&four[0], 1);
    }
    cc_cluster_sync();
}
CC_REGISTER_CLUSTER_KERNEL(st_cluster_faults, 2, 1, 1); /* emulator only */
#endif
