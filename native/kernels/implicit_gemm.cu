// Convolutions as implicit GEMMs on the tensor cores: tf32 mma.sync m16n8k8 with fp32 accumulation, operands staged
// in shared memory by a 3-stage cp.async pipeline, NCHW fp32 in memory. The launcher is native/launch/
// conv_implicit_gemm.cpp; the fp32 kernels of conv2d.cu and gemm.cu stay the exact path (CC_PRECISION_FP32).
//
// Each pass is C (M x N) = A (M x Kr) . B (Kr x N) over one group g (blockIdx.z), read in place, without im2col
// copies ("implicit"). With Cg = C/groups input and Kg = K/groups output channels per group, RS = R*S taps and the
// positions j = (n, p, q) of the output, N*P*Q of them:
//   forward           y[n, g Kg + m, p, q]   = sum_(c,r,s) w[g Kg + m, c, r, s] . x[n, g Cg + c, p sh - pad + r, q sw - pad + s]
//                     M = Kg, N = N*P*Q, Kr = Cg*RS; A = w (rows contiguous along Kr), B = im2col(x) (gathered);
//                     its store may add a residual and write relu(eval bn(y)) beside or instead of y (cc_conv_epilogue),
//                     or write per-block batch-norm statistics of y beside it (store_statistics); the 1x1 pass (stride 1,
//                     no padding, groups 1) may read x as z and multiply a = relu?(training bn(z)) (the *_input_bn
//                     kernels, ForwardInputBn), as may the 1x1 weight gradient (WeightInputBn)
//   backward data 1x1 dx[n, c, p, q]        = sum_k w[k, c] . dy[n, k, p, q]   (stride 1, no padding, groups 1)
//                     M = C, N = N*P*Q, Kr = K; A = w^T (contiguous along M), B = dy; its store may also write per-block
//                     sums of the training batch norm's backward beside dx (store_bn_sums)
//   backward data 3x3 dx[n, g Cg + c, h, w]  = sum_(k,r',s') w[g Kg + k, c, 2-r', 2-s'] . dy[n, g Kg + k, h - (2-pad) + r', ...]
//                     (stride 1 or 2): the forward convolution of dy (stride 2: dilated, a zero between neighbours)
//                     with the turned filter and padding 2 - pad;
//                     M = Cg, N = N*H*W, Kr = Kg*9; A = the turned w (gathered), B = im2col(dy)
//   backward weight   dw[g Kg + m, (c,r,s)]  = sum_j dy[n, g Kg + m, p, q] . im2col(x)[(c,r,s), j]
//                     M = Kg, N = Cg*RS, Kr = N*P*Q, split over gridDim.z = groups * splits: split z sums the
//                     positions [z_split * k_chunk, ...) into its own slice of out.partials (a whole dw), and the
//                     block that arrives last at its (tile, group) adds the tile's slices in order z = 0, 1, ...
//                     into out.dw (cheapconv/split_reduce.h: deterministic, no floating-point atomics).
//   both gradients    (cc_conv_backward) one launch of the weight gradient's blocks, then the data gradient's, each
//                     running the body of its standalone kernel with that kernel's arguments at the (x, y, z) it plays
//                     (cheapconv/fused_grid.h): the bodies take their block as a cc_block_place, never blockIdx.
//
// Block: a compile-time tile (TileConfig below). Every kernel has SquareTile: 128 threads = 4 warps in 2 x 2, a 64 x 64
// tile of C, each warp 32 x 32 = 2 x 4 mma tiles of 16 x 8; the 3x3 forward pass also has WideTile: 256 threads = 8 warps
// in 2 x 4, a 64 x 128 tile (the same warp tile), which halves the re-reads of the weights, and FlatTile: 128 threads =
// 4 warps in 1 x 4, a 32 x 128 tile for M <= 32 (kernels cc_implicit_gemm_forward_3x3_wide_kernel and _flat_; the
// launcher chooses). Grid: (ceil(N / columns), ceil(M / rows), groups [* splits]). Dynamic shared memory: the tile's
// kSharedBytes (30 KiB square, 45 KiB wide, 37.5 KiB flat).
// Pipeline: the tile of reduction indices [k0, k0 + 16) of A and of B is copied by cp.async into one of 3 stages,
// two tiles ahead of the one the warps multiply; an element outside the matrix (or the split's range, or the
// padding) is a zero-filled copy (src-size 0), so the mma loop needs no guards.
// Shared layouts, one per operand, chosen by where its global memory is contiguous (so 16-byte copies stay 16 bytes):
//   k-major   s[k][mn], row stride 72 floats (the tile's 64 rows or columns + 8; 136 for the wide tile's 128 columns,
//             also 8 mod 32): fragment reads s[k0 + t][base + g] hit bank (8t + g) mod 32, all 32 lanes distinct;
//   mn-major  s[mn][k], row stride 20 floats: reads s[base + g][k0 + t] hit bank (20g + t) mod 32, distinct.
// 16-byte copies ("vectorized") where 4 consecutive elements along the contiguous dimension are contiguous and
// aligned in global memory (the launcher checks it: pointwise stride 1, extents multiple of 4, 16-byte buffers);
// 4-byte copies otherwise. Per-thread index math (the position j -> (n, p, q) split, the output offsets) is done
// once before the reduction loop; in it a thread only advances a position cursor and adds offsets.
// The 3x3 forward kernels with stride 1 read B from a window of x instead, where the launcher plans one (cheapconv/
// halo_plan.h, halo_plan_for in conv_implicit_gemm.cpp): each input channel's rows under the block's columns, 2 more
// and the padding columns, copied once per block (16 bytes at a time where x's rows allow) into a ring of 8 channel
// slots in what 3 stages of A alone leave of the tile's shared memory (the same size), so each x element crosses L2
// about once per block instead of once per tap; the fragments read the window at the column's pixel plus the tap's
// offset, without bank conflicts (the launcher's strides). Same reduction order, same bits (XWindow and
// reduce_over_window below).
//
// Precision: every operand is rounded to tf32 (cvt.rna: 10 mantissa bits, a relative error of at most 2^-11) as it
// is read from shared memory; products are exact in fp32 and summed in fp32 (by the tensor core, in its own order).
// Indices are 32-bit: the launcher refuses tensors over 2^31-1 elements.
#include "cheapconv/bn_arithmetic.h"
#include "cheapconv/cuda_shim.h"
#include "cheapconv/fused_grid.h"
#include "cheapconv/kernels.h" // the declarations these definitions must match
#include "cheapconv/problem.h"
#include "cheapconv/split_reduce.h"

namespace {

constexpr int kTileK = 16; // reduction indices per stage
constexpr int kMnMajorStride = kTileK + 4;

// The k-major row stride of an operand whose tile spans Extent rows or columns of C: 8 floats of padding, so the
// stride is 8 mod 32 banks (Extent a multiple of 32) and fragment reads stay conflict-free (header comment).
template <int Extent>
constexpr int kKMajorStride = Extent + 8;
// One operand's region of a stage: either layout fits, so any kernel may give it either.
template <int Extent>
constexpr int kOperandFloats =
    kTileK * kKMajorStride<Extent> > Extent * kMnMajorStride ? kTileK * kKMajorStride<Extent> : Extent * kMnMajorStride;

// A block's tile, fixed at compile time (no runtime branch on it anywhere): Rows x Cols of C per block, WarpsM x WarpsN
// warps each multiplying a (Rows / WarpsM) x (Cols / WarpsN) part of it in mma tiles of 16 x 8, Stages pipeline stages,
// and the resident blocks per SM its __launch_bounds__ promise (which caps the registers per thread).
template <int Rows, int Cols, int WarpsM, int WarpsN, int Stages, int MinBlocksPerSm>
struct TileConfig {
    static constexpr int kRows = Rows, kCols = Cols, kStages = Stages, kMinBlocksPerSm = MinBlocksPerSm;
    static constexpr int kWarpsN = WarpsN, kWarps = WarpsM * WarpsN, kThreads = 32 * kWarps;
    static constexpr int kWarpRows = Rows / WarpsM, kWarpCols = Cols / WarpsN;
    static constexpr int kFragsM = kWarpRows / 16, kFragsN = kWarpCols / 8;
    static constexpr int kAFloats = kOperandFloats<Rows>, kBFloats = kOperandFloats<Cols>;
    static constexpr int kStageFloats = kAFloats + kBFloats; // A then B
    static constexpr int kSharedBytes = kStages * kStageFloats * 4;
    static_assert(kWarpRows % 16 == 0 && kWarpCols % 8 == 0, "whole mma tiles per warp");
    // The copy patterns below: every thread copies the same number of elements (4-byte) and chunks (16-byte) of each
    // operand, and the tile's rows and columns are multiples of 32 (the k-major strides' bank argument).
    static_assert(Rows % 32 == 0 && Cols % 32 == 0 && (Rows * kTileK / 4) % kThreads == 0 && (Cols * kTileK / 4) % kThreads == 0,
                  "copies spread evenly over the threads");
    static_assert(kAFloats % 4 == 0 && kBFloats % 4 == 0 && kMnMajorStride % 4 == 0 && kKMajorStride<Rows> % 4 == 0 &&
                      kKMajorStride<Cols> % 4 == 0,
                  "16-byte aligned rows");
};

// Every kernel's tile: 64 x 64, 4 warps of 32 x 32. At least 4 resident blocks (16 warps) per SM: caps the registers at
// 128 per thread (65536 / (4 * 128)), enough warps for the loads in flight of these mostly memory-bound shapes; 30 KiB
// x 4 of shared memory fits every target.
using SquareTile = TileConfig<64, 64, 2, 2, 3, 4>;
static_assert(SquareTile::kThreads == 128 && SquareTile::kSharedBytes == 30720,
              "kImplicitGemmSquare in native/launch/conv_implicit_gemm.h");
// The wide tile of the dense 3x3 forward pass: 64 x 128, 8 warps of 32 x 32 (the same warp tile, so the same registers
// per thread). Each block reads its Kr x 64 strip of A (the weights) once for 128 columns instead of 64: 16% (M = 32) to
// 24% (M = 64, 128) fewer L2 sectors per MAC, the binding limit of these problems at batch 128
// (bench/results/profile-2026-11-29-fused-splits.md; the launcher's rule, conv_implicit_gemm.cpp, has the numbers). 45 KiB of shared memory (B's region is 128 x 20 floats), under
// the 48 KiB that needs the opt-in; at least 2 resident blocks (16 warps) per SM cap the registers at 128 again.
using WideTile = TileConfig<64, 128, 2, 4, 3, 2>;
static_assert(WideTile::kThreads == 256 && WideTile::kSharedBytes == 46080, "kImplicitGemmWide in native/launch/conv_implicit_gemm.h");
// The flat tile, for the same passes with at most 32 filters per group: 32 x 128, 4 warps of 32 x 32 side by side. On the
// 64-row tiles half the warps (or more) multiply rows past M, reading fragments from shared memory for nothing: the
// limit of those problems once the wide tile has cut their L2 traffic. The same A and B traffic per block as the wide
// tile's for M <= 32; 37.5 KiB of shared memory, and 4 resident blocks per SM (128 registers per thread) like the square.
using FlatTile = TileConfig<32, 128, 1, 4, 3, 4>;
static_assert(FlatTile::kThreads == 128 && FlatTile::kSharedBytes == 38400, "kImplicitGemmFlat in native/launch/conv_implicit_gemm.h");

enum Layout { kKMajor, kMnMajor };

// Element (mn, k) of an operand tile spanning `Extent` rows (A) or columns (B) of C.
template <Layout L, int Extent>
__device__ __forceinline__ int smem_index(int mn, int k)
{
    return L == kKMajor ? k * kKMajorStride<Extent> + mn : mn * kMnMajorStride + k;
}

// Copies one element (4 bytes) or, vectorized, the 4 elements that follow along the layout's contiguous dimension.
// A null source writes zeros (src-size 0 reads nothing; the pointer only has to be a valid one).
__device__ __forceinline__ void copy4(float* dst, const float* src, const float* any_valid)
{
    cc_cp_async_ca<4>(dst, src != nullptr ? src : any_valid, src != nullptr ? 4u : 0u);
}
__device__ __forceinline__ void copy16(float* dst, const float* src, const float* any_valid)
{
    cc_cp_async_cg(dst, src != nullptr ? src : any_valid, src != nullptr ? 16u : 0u);
}

// Which element of an mn-major tile (rows 20 words apart) a thread copies in step i of its 4-byte copies (Extent * 16 /
// threads of them): the lanes of a half warp along k, so 16 consecutive k of one row (coalesced in memory, 16 banks),
// the other half warp 4 rows further (80 words = 16 banks on), so the 32 lanes hit 32 banks. k is the same in every step.
template <class T>
__device__ __forceinline__ void mn_major_element(int i, int& mn, int& k)
{
    const int lane = (int)threadIdx.x % 32, r = T::kWarps * i + (int)threadIdx.x / 32; // r: 0 .. Extent / 2 - 1
    mn = r % 4 + 8 * (r / 4) + 4 * (lane / 16);
    k = lane % 16;
}

// The same for step i of the 16-byte copies (Extent * 4 / threads of them): a quarter warp (one 16-byte phase) writes
// the same 4 columns of 8 consecutive rows, whose 20-word strides spread them over all 32 banks. k is the same in
// every step.
template <class T>
__device__ __forceinline__ void mn_major_chunk(int i, int& mn, int& k)
{
    const int chunk = (int)threadIdx.x + T::kThreads * i;
    mn = chunk % 8 + 8 * (chunk / 32);
    k = 4 * ((chunk / 8) % 4);
}

// An output position j = (n, p, q) and the reduction cursor over positions: advancing it by a step is a few
// compares, not a division.
struct Position {
    int n, p, q;
    __device__ __forceinline__ void set(int j, int P, int Q)
    {
        q = j % Q;
        const int rest = j / Q;
        p = rest % P;
        n = rest / P;
    }
    __device__ __forceinline__ void advance(int step, int P, int Q)
    {
        q += step;
        while (q >= Q) q -= Q, ++p;
        while (p >= P) p -= P, ++n;
    }
};

// The activation tensor a convolution reads through its window: x (or dy, seen as a 1x1 convolution's input).
struct Activation {
    const float* base;  // element (n, c, h, w) at base + n * image + c * plane + h * width + w (c of the group)
    int image, plane, height, width;
    int stride_h, stride_w, pad_h, pad_w;
    int out_h, out_w;   // P, Q: the positions j = (n, p, q)
    int positions;      // N * P * Q
};

// Operand B of the forward pass (and of the backward-data passes): im2col(x), k-major. Element (k = (c, r, s),
// column j) is x at (n, c, p sh - pad + r, q sw - pad + s), zero outside the image or the matrix. With Dilation 2 the
// window reads the tensor with a zero between neighbours (element h of the dilated row is row h / 2 where h is even,
// zero where odd): the stride-2 data gradient's dy.
// Thread t always copies column (t % Cols) (4-byte) or columns 4 (t % (Cols / 4)) .. +3 (vectorized), so the position
// split is done once, in the constructor.
template <class T, int R, int S, int Dilation = 1>
struct Im2colColumns {
    static constexpr int kQuads = T::kCols / 4; // 16-byte chunks per k-major row
    const Activation& a;
    int k_end;
    bool vectorized;
    int col;               // the thread's column (first of 4, vectorized) within the tile
    const float* pixel;    // x at (n, 0, p sh - pad, q sw - pad) for the thread's column (may point outside: only
                           // offsets that land inside are used), nullptr past the last position
    int h0, w0;            // the window's origin, in dilated coordinates
    int h0_row, w0_column; // the pixel `pixel` stands for: the origin, divided by the dilation (rounded down)

    __device__ Im2colColumns(const Activation& act, int col0, int k_end_, bool vec) : a(act), k_end(k_end_), vectorized(vec)
    {
        const int t = (int)threadIdx.x;
        col = vectorized ? 4 * (t % kQuads) : t % T::kCols;
        Position pos;
        const int j = col0 + col;
        pos.set(j, a.out_h, a.out_w);
        h0 = pos.p * a.stride_h - a.pad_h;
        w0 = pos.q * a.stride_w - a.pad_w;
        // Dilated: the pixel the window's origin rounds down to (only offsets of even coordinates are used).
        h0_row = Dilation == 1 ? h0 : floor_div(h0);
        w0_column = Dilation == 1 ? w0 : floor_div(w0);
        pixel = j < a.positions ? a.base + pos.n * a.image + h0_row * a.width + w0_column : nullptr;
    }

    static __device__ __forceinline__ int floor_div(int v) { return v >= 0 ? v / Dilation : -((-v + Dilation - 1) / Dilation); }

    __device__ __forceinline__ void load(float* s, int k0) const
    {
        if (vectorized) {
            // 1x1, stride 1, no padding, P*Q a multiple of 4: columns j..j+3 are consecutive pixels of one image.
            const int t = (int)threadIdx.x;
            for (int i = 0; i < kQuads * kTileK / T::kThreads; ++i) {
                const int k = t / kQuads + T::kThreads / kQuads * i;
                const bool ok = pixel != nullptr && k0 + k < k_end;
                copy16(&s[smem_index<kKMajor, T::kCols>(col, k)], ok ? pixel + (k0 + k) * a.plane : nullptr, a.base);
            }
            return;
        }
        for (int i = 0; i < T::kCols * kTileK / T::kThreads; ++i) {
            const int k = (int)threadIdx.x / T::kCols + T::kThreads / T::kCols * i;
            const int kk = k0 + k;
            const int c = kk / (R * S), rs = kk % (R * S); // divisions by compile-time constants
            const int h = h0 + rs / S, w = w0 + rs % S;     // in the (dilated) window's coordinates
            const bool ok = pixel != nullptr && kk < k_end && h >= 0 && h < Dilation * (a.height - 1) + 1 && w >= 0 &&
                            w < Dilation * (a.width - 1) + 1 && h % Dilation == 0 && w % Dilation == 0;
            const int offset = Dilation == 1 ? (rs / S) * a.width + rs % S : (h / Dilation - h0_row) * a.width + (w / Dilation - w0_column);
            copy4(&s[smem_index<kKMajor, T::kCols>(col, k)], ok ? pixel + c * a.plane + offset : nullptr, a.base);
        }
    }
};

// The weights as a dense matrix with rows [0, rows) and leading dimension ld: element (row, k) at
// base + row * ld + k when KContiguous (the forward pass: rows = Kg filters, k = (c, r, s)), at base + k * ld + row
// otherwise (the 1x1 backward-data pass's w^T: row = input channel c, k = filter). The shared layout follows the
// contiguous dimension, so a 16-byte copy stays one (vectorized: 4 | ld, 4 | rows unless KContiguous, aligned base).
template <class T, bool KContiguous>
struct DenseRows {
    static constexpr Layout kLayout = KContiguous ? kMnMajor : kKMajor;
    static constexpr int kQuads = T::kRows / 4; // 16-byte chunks per k-major row
    const float* base;
    int rows, ld, row0, k_end;
    bool vectorized;

    __device__ __forceinline__ const float* at(int mn, int k) const
    {
        return KContiguous ? base + (row0 + mn) * ld + k : base + k * ld + row0 + mn;
    }

    __device__ __forceinline__ void load(float* s, int k0) const
    {
        const int t = (int)threadIdx.x;
        if (vectorized) {
            for (int i = 0; i < kQuads * kTileK / T::kThreads; ++i) { // 4 consecutive elements along the contiguous dimension
                int mn = 4 * (t % kQuads), k = t / kQuads + T::kThreads / kQuads * i; // k-major: a quarter warp writes 128 contiguous bytes
                if (KContiguous) mn_major_chunk<T>(i, mn, k);
                const bool ok = row0 + mn < rows && k0 + k < k_end; // all 4 or none: k_end (or rows) % 4 == 0
                copy16(&s[smem_index<kLayout, T::kRows>(mn, k)], ok ? at(mn, k0 + k) : nullptr, base);
            }
            return;
        }
        for (int i = 0; i < T::kRows * kTileK / T::kThreads; ++i) {
            int mn = t % T::kRows, k = t / T::kRows + T::kThreads / T::kRows * i; // k-major: consecutive threads along mn
            if (KContiguous) mn_major_element<T>(i, mn, k);
            const bool ok = row0 + mn < rows && k0 + k < k_end;
            copy4(&s[smem_index<kLayout, T::kRows>(mn, k)], ok ? at(mn, k0 + k) : nullptr, base);
        }
    }
};

// The stride-1 data gradient's weights: A(c, (k, r', s')) = w[g Kg + k, c, R-1-r', S-1-s'] (the filter turned by 180
// degrees and its channels swapped), at base + c RS + k Cg RS + (RS - 1 - (r' S + s')). Mn-major in shared memory,
// 4-byte copies (the weights are small and stay in L2).
template <class T, int R, int S>
struct TurnedWeights {
    const float* base;
    int rows, row0, k_end; // rows = Cg; k_end = Kg R S

    __device__ __forceinline__ void load(float* s, int k0) const
    {
        for (int i = 0; i < T::kRows * kTileK / T::kThreads; ++i) {
            int mn, k;
            mn_major_element<T>(i, mn, k);
            const int kk = k0 + k, filter = kk / (R * S), tap = kk % (R * S); // divisions by compile-time constants
            const bool ok = row0 + mn < rows && kk < k_end;
            copy4(&s[smem_index<kMnMajor, T::kRows>(mn, k)], ok ? base + ((row0 + mn) + filter * rows) * (R * S) + (R * S - 1 - tap) : nullptr, base);
        }
    }
};

// The weight gradient's operands, both reduced over positions j (mn-major in shared memory): row mn of A is the
// output channel m of dy (a 1x1 "window"), row mn of B is the input channel and tap (c, r, s) of x's window.
// Element (mn, j) = act at (n, c, p sh - pad + r, q sw - pad + s). Thread t always copies the reduction index
// k = t % 16 (4-byte) or 4 (t % 4) .. +3 (vectorized) of each tile, so its position advances by 16 per tile. Extent:
// the rows of the tile (T::kRows as operand A, T::kCols as B).
template <class T, int Extent, int R, int S>
struct Im2colRows {
    const Activation& a;
    int rows, row0, k_end;
    bool vectorized; // 1x1, stride 1, no padding, P*Q and k_chunk multiples of 4, 16-byte aligned
    Position pos;    // the position of the thread's reduction index in the current tile

    __device__ Im2colRows(const Activation& act, int rows_, int row0_, int k_begin, int k_end_, bool vec)
        : a(act), rows(rows_), row0(row0_), k_end(k_end_), vectorized(vec)
    {
        int mn, k; // the thread's k is the same in every step (mn_major_chunk, mn_major_element)
        if (vectorized) mn_major_chunk<T>(0, mn, k);
        else mn_major_element<T>(0, mn, k);
        pos.set(k_begin + k, a.out_h, a.out_w);
    }

    // Copies the tile at k0 (the tiles come in order, one call each) and moves to the next.
    __device__ __forceinline__ void load(float* s, int k0)
    {
        const int h0 = pos.p * a.stride_h - a.pad_h, w0 = pos.q * a.stride_w - a.pad_w;
        const float* pixel = a.base + pos.n * a.image + h0 * a.width + w0;
        if (vectorized) {
            for (int i = 0; i < Extent * kTileK / 4 / T::kThreads; ++i) {
                int mn, k;
                mn_major_chunk<T>(i, mn, k);
                const bool ok = row0 + mn < rows && k0 + k < k_end;
                copy16(&s[smem_index<kMnMajor, Extent>(mn, k)], ok ? pixel + (row0 + mn) * a.plane : nullptr, a.base);
            }
        } else {
            for (int i = 0; i < Extent * kTileK / T::kThreads; ++i) {
                int mn, k;
                mn_major_element<T>(i, mn, k);
                const int row = row0 + mn, c = row / (R * S), rs = row % (R * S);
                const int h = h0 + rs / S, w = w0 + rs % S;
                const bool ok = row < rows && k0 + k < k_end && h >= 0 && h < a.height && w >= 0 && w < a.width;
                copy4(&s[smem_index<kMnMajor, Extent>(mn, k)], ok ? pixel + c * a.plane + (rs / S) * a.width + rs % S : nullptr, a.base);
            }
        }
        pos.advance(kTileK, a.out_h, a.out_w);
    }
};

// What the mma multiplies of a B element read from shared memory: the element itself (PlainB: every kernel but the
// input-batch-norm ones), or a function of it (the prologue, InputBnColumns / WeightInputBn below). As a reduction's
// prologue, stage(b, k0) is called once per pipeline stage (b: the stage's B region, k0: its first reduction index) and
// returns the stage's step maker; that is called once per k-step of 8, step(kk), and returns f(j, h, v): what to multiply
// for element v of fragment column j at reduction index kk + t (h = 0) or kk + t + 4 (h = 1). So per-stage and per-k-step
// work (the parameters of the reduction indices a lane touches) is done once, not per element. PlainB inlines to nothing:
// the plain kernels compile to the code they had before the prologue existed.
struct PlainB {
    static constexpr bool kInPlace = false; // WeightInputBn: the stage's B mapped in shared memory first (transform)
    __device__ __forceinline__ void transform(float*, int) const {}
    struct Step {
        __device__ __forceinline__ float operator()(int, int, float v) const { return v; }
    };
    __device__ __forceinline__ Step operator()(int) const { return Step{}; }
    __device__ __forceinline__ PlainB stage(const float*, int) const { return *this; }
};

// The warp's share of one stage: 2 k-steps of 8, each kFragsM x kFragsN mma on fragments read from shared memory and
// rounded to tf32. Fragment layouts: cuda_shim.h (PTX ISA, mma.m16n8k8 .tf32). B's element (column warp_n + 8 j + g of
// the tile, index k of the stage) is b_at(j, k): where B lies is the caller's; b_step (PlainB above) may map it before
// the rounding; the mma steps, which fix every output's bits, are the same for all.
template <class T, Layout LA, class BElement, class BStep = PlainB>
__device__ __forceinline__ void multiply_fragments(const float* a, int warp_m, BElement b_at, float (&acc)[T::kFragsM][T::kFragsN][4],
                                                   BStep b_step = BStep{})
{
    const int lane = (int)threadIdx.x % 32, g = lane / 4, t = lane % 4;
    for (int kk = 0; kk < kTileK; kk += 8) {
        unsigned af[T::kFragsM][4], bf[T::kFragsN][2];
        for (int i = 0; i < T::kFragsM; ++i) {
            const int r = warp_m + 16 * i + g;
            af[i][0] = cc_cvt_tf32(a[smem_index<LA, T::kRows>(r, kk + t)]);
            af[i][1] = cc_cvt_tf32(a[smem_index<LA, T::kRows>(r + 8, kk + t)]);
            af[i][2] = cc_cvt_tf32(a[smem_index<LA, T::kRows>(r, kk + t + 4)]);
            af[i][3] = cc_cvt_tf32(a[smem_index<LA, T::kRows>(r + 8, kk + t + 4)]);
        }
        const auto b_of = b_step(kk);
        for (int j = 0; j < T::kFragsN; ++j) {
            bf[j][0] = cc_cvt_tf32(b_of(j, 0, b_at(j, kk + t)));
            bf[j][1] = cc_cvt_tf32(b_of(j, 1, b_at(j, kk + t + 4)));
        }
        for (int i = 0; i < T::kFragsM; ++i)
            for (int j = 0; j < T::kFragsN; ++j) cc_mma_tf32_m16n8k8(acc[i][j], af[i], bf[j], acc[i][j]);
    }
}

// multiply_fragments with B staged in shared memory like A.
template <class T, Layout LA, Layout LB, class BStep = PlainB>
__device__ __forceinline__ void multiply_stage(const float* a, const float* b, int warp_m, int warp_n,
                                               float (&acc)[T::kFragsM][T::kFragsN][4], BStep b_step = BStep{})
{
    const int g = (int)threadIdx.x % 32 / 4;
    multiply_fragments<T, LA>(a, warp_m, [&](int j, int k) { return b[smem_index<LB, T::kCols>(warp_n + 8 * j + g, k)]; }, acc, b_step);
}

// The reduction [k_begin, k_end) of the block's tile: the 3-stage pipeline. Loaders copy one tile of A and of B;
// they are called once per tile, in order. prologue (PlainB: none) maps B's elements as they are multiplied.
template <class T, Layout LA, Layout LB, class LoaderA, class LoaderB, class Prologue = PlainB>
__device__ __forceinline__ void reduce(LoaderA& load_a, LoaderB& load_b, int k_begin, int k_end, float (&acc)[T::kFragsM][T::kFragsN][4],
                                       const Prologue& prologue = Prologue{})
{
    constexpr int kStages = T::kStages, kStageFloats = T::kStageFloats;
    CC_DYNAMIC_SHARED(float, smem);
    const int warp = (int)threadIdx.x / 32;
    const int warp_m = (warp / T::kWarpsN) * T::kWarpRows, warp_n = (warp % T::kWarpsN) * T::kWarpCols;
    for (int i = 0; i < T::kFragsM; ++i)
        for (int j = 0; j < T::kFragsN; ++j)
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    const int tiles = k_end > k_begin ? (k_end - k_begin + kTileK - 1) / kTileK : 0;
    // Prologue: tiles 0 .. kStages-2 in flight, one commit group each (empty groups past the end keep the count).
    for (int s = 0; s < kStages - 1; ++s) {
        if (s < tiles) {
            load_a.load(smem + s * kStageFloats, k_begin + s * kTileK);
            load_b.load(smem + s * kStageFloats + T::kAFloats, k_begin + s * kTileK);
        }
        cc_cp_async_commit();
    }
    for (int tile = 0; tile < tiles; ++tile) {
        // Groups committed so far: tiles 0 .. tile + kStages - 2; at most kStages - 2 pending means this
        // thread's copies of `tile` are done; the barrier makes every thread's visible, and also means every
        // warp has finished multiplying tile - 1, whose stage the prefetch below overwrites.
        cc_cp_async_wait<kStages - 2>();
        __syncthreads();
        const int next = tile + kStages - 1;
        if (next < tiles) {
            float* stage = smem + (next % kStages) * kStageFloats;
            load_a.load(stage, k_begin + next * kTileK);
            load_b.load(stage + T::kAFloats, k_begin + next * kTileK);
        }
        cc_cp_async_commit();
        float* stage = smem + (tile % kStages) * kStageFloats;
        if (Prologue::kInPlace) { // B mapped in place (WeightInputBn): once every thread's copies landed, before any read
            prologue.transform(stage + T::kAFloats, k_begin + tile * kTileK);
            __syncthreads();
        }
        multiply_stage<T, LA, LB>(stage, stage + T::kAFloats, warp_m, warp_n, acc,
                                  prologue.stage(stage + T::kAFloats, k_begin + tile * kTileK));
    }
    cc_cp_async_wait<0>();
}

// ---- The input's training batch norm applied as B is read (cc_conv_forward_input_bn, cc_conv_backward_input_bn) ----
// The 1x1 convolution (stride 1, no padding, groups 1) after `grouped 3x3 -> BN -> ReLU` reads z and multiplies, per
// input channel c, a = relu?(cc_bn_affine(z, mean[c], invstd[c], gamma[c], beta[c])) (cc_conv_input_bn): a is never
// stored. The map has cc_batchnorm_apply_kernel's expression and is applied before the tf32 rounding the plain kernel
// does, so the plain kernel run on a stored a rounds the same fp32 value; the tiles, k order and mma steps are unchanged,
// so every output has its bits. The forward pass applies it to each B element between its shared-memory read and that
// rounding (ForwardInputBn): 4 arithmetic instructions per B element a warp reads (each is read by the 2 warps of its
// column, so computed twice), no extra barrier, no shared store; in place in shared memory after the cp.async wait it
// would cost a second barrier per stage and a store per element. The weight gradient does it in place all the same
// (WeightInputBn): its mma loop has no registers to spare.
// Where B has no element (reduction indices past the end, zero-filled by cp.async) the product must stay exactly 0,
// as the plain kernel's zero is: relu?(bn(0)) is not 0.

// a from z with cc_batchnorm_apply_kernel's arithmetic (bn_arithmetic.h): the affine map rounded once, then the ReLU.
__device__ __forceinline__ float input_bn(float z, float mean, float invstd, float gamma, float beta, int relu)
{
    const float a = cc_bn_affine(z, mean, invstd, gamma, beta);
    return relu ? cc_bn_relu(a) : a;
}

// The forward pass: B k-major, reduction index k = input channel. The parameters of a stage's 16 channels are copied
// by cp.async with the stage's B tile (same commit group, so the wait that covers the tile covers them) into the end of
// B's region, which the k-major tile leaves unused (16 rows of 72 floats of 80 x 16): channel k's {mean, invstd, gamma,
// beta} as one float4 at kInputBnOffset + 4 k, read with one 16-byte load per reduction index and k-step (lanes of one t
// read the same float4: a broadcast; the 4 t's read 16 consecutive words: no bank conflict). A channel past C is a
// zero-filled copy (nothing is read past C): bn with all four 0 is fmaf(0, (0 - 0) * 0, 0) = +0, relu(+0) = +0, the
// plain kernel's zero-filled B, so out-of-range indices contribute exactly what they do there.
template <class T>
constexpr int kInputBnOffset = kTileK * kKMajorStride<T::kCols>;
static_assert(kInputBnOffset<SquareTile> + 4 * kTileK <= SquareTile::kBFloats && kInputBnOffset<SquareTile> % 4 == 0,
              "the stage's 16 channels' parameters fit after the k-major B tile, 16-byte aligned");

template <class T>
struct InputBnColumns : Im2colColumns<T, 1, 1> {
    const cc_conv_input_bn& bn;
    int channels; // C

    __device__ InputBnColumns(const Activation& act, int col0, int channels_, bool vec, const cc_conv_input_bn& bn_)
        : Im2colColumns<T, 1, 1>(act, col0, channels_, vec), bn(bn_), channels(channels_)
    {
    }

    // z's tile as Im2colColumns copies it, then the parameters: thread t < 64 (warps 0 and 1, a uniform branch) copies
    // array t % 4 of channel k0 + t / 4, so a warp's copies land in 32 consecutive words.
    __device__ __forceinline__ void load(float* s, int k0) const
    {
        static_assert(T::kThreads >= 4 * kTileK, "one parameter per thread");
        Im2colColumns<T, 1, 1>::load(s, k0);
        const int t = (int)threadIdx.x;
        if (t >= 4 * kTileK) return;
        const int array = t % 4, k = t / 4;
        const float* src = array == 0 ? bn.mean : array == 1 ? bn.invstd : array == 2 ? bn.gamma : bn.beta;
        copy4(&s[kInputBnOffset<T> + 4 * k + array], k0 + k < channels ? src + k0 + k : nullptr, src);
    }
};

// The forward pass's prologue: per k-step, the float4 of each of the lane's two reduction indices.
template <class T>
struct ForwardInputBn {
    static constexpr bool kInPlace = false;
    __device__ __forceinline__ void transform(float*, int) const {}
    int relu;
    struct Step {
        float4 p[2]; // {mean, invstd, gamma, beta} of indices kk + t and kk + t + 4
        int relu;
        __device__ __forceinline__ float operator()(int, int h, float z) const { return input_bn(z, p[h].x, p[h].y, p[h].z, p[h].w, relu); }
    };
    struct Stage {
        const float* params;
        int relu;
        __device__ __forceinline__ Step operator()(int kk) const
        {
            const int t = (int)threadIdx.x % 4;
            const float4* p = reinterpret_cast<const float4*>(params);
            return Step{{p[kk + t], p[kk + t + 4]}, relu};
        }
    };
    __device__ __forceinline__ Stage stage(const float* b, int) const { return Stage{b + kInputBnOffset<T>, relu}; }
};

// The weight gradient: B mn-major, row = input channel c = column of dw, reduction index = position. Here the map is
// applied in place in shared memory, once per element, after the stage's copies land (reduce(): a second barrier per
// stage), not on the fragments: the plain kernel already holds 128 registers per thread in its mma loop (nvcc's build),
// and a fragment-side map that kept a lane's 16 parameters (or even one column's 4) live there spilled 12 to 112 bytes
// in nvcc's SASS. In place, the mma loop is the plain kernel's. The block's kCols channels' {mean, invstd, gamma, beta}
// are copied once, before the reduction, into the kInputBnWeightFloats floats of shared memory past the pipeline's (the
// launcher adds kImplicitGemmInputBnWeightBytes to the kernel's dynamic shared memory), a float4 per channel, zeros past C
// (nothing is read there). Thread (warp, lane) maps k = lane % 16 of rows warp + 4 (lane / 16) + 8 i (the rows of
// mn_major_element: a half warp along 16 k of one row, the other half 4 rows = 80 words = 16 banks on: no bank conflict
// on the read or the write; the row's float4 is a broadcast), with one base address and immediate offsets: computing
// each row apart hoisted 8 addresses out of the loop and spilled again. Positions past the reduction's end (the split's, the tensor's) are zero-filled z, whose bn is not 0: they
// are set to +0, the plain kernel's zero.
template <class T>
constexpr int kInputBnWeightFloats = 4 * T::kCols;
static_assert(kInputBnWeightFloats<SquareTile> * 4 == 1024, "kImplicitGemmInputBnWeightBytes in native/launch/conv_implicit_gemm.h");

template <class T>
struct WeightInputBn {
    static constexpr bool kInPlace = true;
    const float4* params; // channel col0 + mn at params[mn]
    int relu, k_end;

    // Threads t < kCols (whole warps) copy channel col0 + t: 4 coalesced loads, one 16-byte store (consecutive float4s).
    // The reduction's first barrier (after its first cp.async wait) orders it before any read. (Selecting the array by a
    // thread's index instead made clang keep the kernel's cc_conv_input_bn in a stack frame, to index it.)
    __device__ WeightInputBn(const cc_conv_input_bn& bn, int channels, int col0, int k_end_) : relu(bn.relu), k_end(k_end_)
    {
        static_assert(T::kCols % 32 == 0 && T::kCols <= T::kThreads, "one channel per thread of whole warps");
        CC_DYNAMIC_SHARED(float, smem);
        float4* table = reinterpret_cast<float4*>(smem + T::kSharedBytes / 4);
        const int t = (int)threadIdx.x, c = col0 + t;
        if (t < T::kCols) {
            float4 q = {0.0f, 0.0f, 0.0f, 0.0f};
            if (c < channels) q = {__ldg(bn.mean + c), __ldg(bn.invstd + c), __ldg(bn.gamma + c), __ldg(bn.beta + c)};
            table[t] = q;
        }
        params = table;
    }
    // The stage's B tile (first reduction index k0), in place; every thread calls it (the caller's barriers around it).
    __device__ __forceinline__ void transform(float* b, int k0) const
    {
        static_assert(T::kWarps == 4 && T::kCols == 64, "rows warp + 4 (lane / 16) + 8 i cover the tile's 64 rows once");
        const int lane = (int)threadIdx.x % 32, row = (int)threadIdx.x / 32 + 4 * (lane / 16), k = lane % 16;
        float* v = b + smem_index<kMnMajor, T::kCols>(row, k);
        const float4* p = params + row;
        const bool valid = k0 + k < k_end;
        CC_UNROLL
        for (int i = 0; i < T::kCols / 8; ++i) { // row + 8 i: 8 i * kMnMajorStride words on, an immediate offset
            const float4 q = p[8 * i];
            float& e = v[8 * i * kMnMajorStride];
            e = valid ? input_bn(e, q.x, q.y, q.z, q.w, relu) : 0.0f;
        }
    }
    __device__ __forceinline__ PlainB stage(const float*, int) const { return PlainB{}; } // the fragments: as read
};

// Calls store(row, col, value) for every accumulator of the thread inside the M x N matrix, rows and columns
// relative to the tile's origin; columns come in the order of col_index() so per-column offsets can be computed once.
template <class T>
__device__ __forceinline__ int acc_row(int i, int half)
{
    return ((int)threadIdx.x / 32 / T::kWarpsN) * T::kWarpRows + 16 * i + (int)threadIdx.x % 32 / 4 + 8 * half;
}
template <class T>
__device__ __forceinline__ int acc_col(int j, int odd)
{
    return ((int)threadIdx.x / 32 % T::kWarpsN) * T::kWarpCols + 8 * j + 2 * ((int)threadIdx.x % 4) + odd;
}

// Calls store(channel)(index, value) for every accumulator of the thread inside the M x N matrix, as element
// C(row = channel0 + row, col = position j = (n, p, q)) of an NCHW activation: index = n * image + channel * plane +
// p * Q + q. store(channel) is called once per row the thread holds (per-row parameters are loaded there, once), and
// returns what stores the row's elements. The 8 column offsets are computed once. The loops must unroll (acc stays in
// registers): what varies between the stores is in their types, never a runtime branch inside.
// Acc is the accumulator array, const or not: a store that takes its value by reference may change it in place.
template <class T, class RowStore, class Acc>
__device__ __forceinline__ void store_tile(Acc& acc, int rows, int row0, int channel0, int positions, int col0, int P, int Q, int image,
                                           int plane, RowStore store)
{
    int col_offset[T::kFragsN][2];
    for (int j = 0; j < T::kFragsN; ++j)
        for (int odd = 0; odd < 2; ++odd) {
            const int col = col0 + acc_col<T>(j, odd);
            Position pos;
            pos.set(col, P, Q);
            col_offset[j][odd] = col < positions ? pos.n * image + pos.p * Q + pos.q : -1;
        }
    CC_UNROLL
    for (int i = 0; i < T::kFragsM; ++i)
        CC_UNROLL
        for (int half = 0; half < 2; ++half) {
            const int row = row0 + acc_row<T>(i, half);
            if (row >= rows) continue;
            const int channel = channel0 + row;
            const auto element = store(channel);
            const int line = channel * plane;
            CC_UNROLL
            for (int j = 0; j < T::kFragsN; ++j)
                CC_UNROLL
                for (int odd = 0; odd < 2; ++odd)
                    if (col_offset[j][odd] >= 0) element(line + col_offset[j][odd], acc[i][j][2 * half + odd]);
        }
}

// Writes the tile into an NCHW activation (y, or dx). Accumulate (backward-data): adds each value into the element
// instead, one rounded add of the rounded value (cc_add_rn), the bits of a later cc_axpy.
template <class T, bool Accumulate>
__device__ __forceinline__ void store_activation(const float (&acc)[T::kFragsM][T::kFragsN][4], float* out, int rows, int row0,
                                                 int channel0, int positions, int col0, int P, int Q, int image, int plane)
{
    store_tile<T>(acc, rows, row0, channel0, positions, col0, P, Q, image, plane, [out](int) {
        return [out](int index, float value) { out[index] = Accumulate ? cc_add_rn(out[index], value) : value; };
    });
}

// The forward pass's store with its epilogue (cc_conv_epilogue): v = acc [+ residual], written to y (WriteY) and/or,
// Activate, relu(eval batch norm(v)) to ep.activated, with the channel's four parameters loaded once per row. The add
// and the normalisation are those of cc_add_kernel and cc_batchnorm_eval_forward_kernel (cc_add_rn: never contracted;
// bn_arithmetic.h), so the fused store gives the bits of the separate launches.
template <class T, bool Residual, bool Activate, bool WriteY>
__device__ __forceinline__ void store_forward(const float (&acc)[T::kFragsM][T::kFragsN][4], float* y, const cc_conv_epilogue& ep, int rows,
                                              int row0, int channel0, int positions, int col0, int P, int Q, int image, int plane)
{
    store_tile<T>(acc, rows, row0, channel0, positions, col0, P, Q, image, plane, [&](int channel) {
        float mean = 0.0f, invstd = 0.0f, gamma = 0.0f, beta = 0.0f;
        if (Activate) {
            mean = __ldg(ep.bn_mean + channel);
            invstd = cc_bn_eval_invstd(__ldg(ep.bn_var + channel), ep.bn_eps);
            gamma = __ldg(ep.bn_gamma + channel);
            beta = __ldg(ep.bn_beta + channel);
        }
        return [=](int index, float value) {
            if (Residual) value = cc_add_rn(value, __ldg(ep.residual + index));
            if (WriteY) y[index] = value;
            if (Activate) ep.activated[index] = cc_bn_relu(cc_bn_affine(value, mean, invstd, gamma, beta));
        };
    });
}

// ---- Batch-norm statistics in the forward pass's epilogue (cc_conv_forward_bn_stats) ----
// The convolution that produces a training-mode batch norm's input also writes, per block and per output channel, the
// statistics of the values it stores: the block's count of positions, their mean, and the sum of their squared
// deviations from that mean (two passes over the registers, never a one-pass sum of squares, which cancels when |mean| is
// large against the spread). Slot blockIdx.x of channel k is stats[3 (k gridDim.x + blockIdx.x) + {0, 1, 2}]: every
// (block, channel) pair has a slot of its own, so there are no atomics, and cc_batchnorm_train_forward_from_stats_kernel
// (batchnorm.cu) combines a channel's slots in slot order.

// acc += residual, element by element, with the store's add (cc_add_rn): the statistics are then of what is stored.
template <class T>
__device__ __forceinline__ void add_residual(float (&acc)[T::kFragsM][T::kFragsN][4], const float* residual, int rows, int row0,
                                             int channel0, int positions, int col0, int P, int Q, int image, int plane)
{
    store_tile<T>(acc, rows, row0, channel0, positions, col0, P, Q, image, plane, [residual](int) {
        return [residual](int index, float& value) { value = cc_add_rn(value, __ldg(residual + index)); };
    });
}

// For each row (i, half) the thread holds, the sum of f(i, j, e) over the tile's valid columns, the same bits in every
// thread that holds the row. The order is fixed: the thread's own columns in (j, odd) order, then the 4 lanes of the row
// (xor 1, then xor 2: both partners add the same two numbers), then the kWarpsN warps of the row in order, through
// `scratch` (kRows * kWarpsN floats of shared memory). Every thread of the block calls it (barriers).
template <class T, class F>
__device__ __forceinline__ void row_sums(float (&sums)[T::kFragsM][2], const bool (&valid)[T::kFragsN][2], float* scratch, F f)
{
    const int warp_n = (int)threadIdx.x / 32 % T::kWarpsN, lane = (int)threadIdx.x % 32;
    CC_UNROLL
    for (int i = 0; i < T::kFragsM; ++i)
        CC_UNROLL
        for (int half = 0; half < 2; ++half) {
            float s = 0.0f;
            CC_UNROLL
            for (int j = 0; j < T::kFragsN; ++j)
                CC_UNROLL
                for (int odd = 0; odd < 2; ++odd)
                    if (valid[j][odd]) s += f(i, j, 2 * half + odd);
            s += __shfl_xor_sync(0xffffffffu, s, 1);
            s += __shfl_xor_sync(0xffffffffu, s, 2);
            if (lane % 4 == 0) scratch[acc_row<T>(i, half) * T::kWarpsN + warp_n] = s;
        }
    __syncthreads();
    CC_UNROLL
    for (int i = 0; i < T::kFragsM; ++i)
        CC_UNROLL
        for (int half = 0; half < 2; ++half) {
            float total = 0.0f;
            CC_UNROLL
            for (int w = 0; w < T::kWarpsN; ++w) total += scratch[acc_row<T>(i, half) * T::kWarpsN + w];
            sums[i][half] = total;
        }
    __syncthreads(); // scratch is free again
}

// Which of the thread's accumulator columns are positions of the matrix (below `positions`).
template <class T>
__device__ __forceinline__ void valid_columns(bool (&valid)[T::kFragsN][2], int col0, int positions)
{
    CC_UNROLL
    for (int j = 0; j < T::kFragsN; ++j)
        CC_UNROLL
        for (int odd = 0; odd < 2; ++odd) valid[j][odd] = col0 + acc_col<T>(j, odd) < positions;
}

// After row_sums: write(i, half, row) for each row below `rows` of the thread's, by one thread per row (the first warp of
// the row's warps, lane 4 g): the one writer of each slot.
template <class T, class Write>
__device__ __forceinline__ void write_row_slots(int rows, int row0, Write write)
{
    if ((int)threadIdx.x / 32 % T::kWarpsN != 0 || threadIdx.x % 4 != 0) return;
    CC_UNROLL
    for (int i = 0; i < T::kFragsM; ++i)
        CC_UNROLL
        for (int half = 0; half < 2; ++half) {
            const int row = row0 + acc_row<T>(i, half);
            if (row < rows) write(i, half, row);
        }
}

// Writes the block's slot of each of its channels (rows below `rows`): {count, mean, squared deviations} of the values
// in acc over the valid columns (positions below `positions`). Reuses the pipeline's shared memory, once every warp is
// past its last fragment read.
template <class T>
__device__ __forceinline__ void store_statistics(const float (&acc)[T::kFragsM][T::kFragsN][4], float* stats, int rows, int row0, int channel0,
                                                 int positions, int col0)
{
    static_assert(T::kRows * T::kWarpsN * 4 <= T::kSharedBytes, "the row sums fit the pipeline's shared memory");
    CC_DYNAMIC_SHARED(float, scratch);
    __syncthreads();
    bool valid[T::kFragsN][2];
    valid_columns<T>(valid, col0, positions);
    const int count = positions - col0 < T::kCols ? positions - col0 : T::kCols;
    float mean[T::kFragsM][2], squares[T::kFragsM][2];
    row_sums<T>(mean, valid, scratch, [&](int i, int j, int e) { return acc[i][j][e]; });
    CC_UNROLL
    for (int i = 0; i < T::kFragsM; ++i)
        CC_UNROLL
        for (int half = 0; half < 2; ++half) mean[i][half] /= (float)count;
    row_sums<T>(squares, valid, scratch, [&](int i, int j, int e) {
        const float d = acc[i][j][e] - mean[i][e / 2];
        return d * d;
    });
    write_row_slots<T>(rows, row0, [&](int i, int half, int row) {
        float* slot = stats + 3 * ((channel0 + row) * (int)gridDim.x + (int)blockIdx.x);
        slot[0] = (float)count;
        slot[1] = mean[i][half];
        slot[2] = squares[i][half];
    });
}

// store_activation for a data gradient: overwriting dx, or adding into it.
template <class T>
__device__ __forceinline__ void store_gradient(const float (&acc)[T::kFragsM][T::kFragsN][4], float* dx, int rows, int row0, int channel0,
                                               int positions, int col0, int P, int Q, int image, int plane, int accumulate)
{
    if (accumulate) store_activation<T, true>(acc, dx, rows, row0, channel0, positions, col0, P, Q, image, plane);
    else store_activation<T, false>(acc, dx, rows, row0, channel0, positions, col0, P, Q, image, plane);
}

// ---- The training batch norm's backward sums in the 1x1 data gradient's epilogue (cc_conv_backward_data_bn_sums) ----
// In z -> a = relu?(bn(z)) -> y = conv1x1(a), the data gradient's da is the batch norm's dy. While the block stores its
// da tile, it also writes, per input channel c it covers, one slot {sum of g, sum of g * x_hat} over the positions it
// stored, with g and x_hat of cc_batchnorm_backward_reduce_kernel (cc_bn_masked_gradient: x_hat = (z - mean) invstd, g =
// da masked by the forward's relu mask recomputed from z). Slot at.x of channel c is sums[2 (c at.grid.x + at.x) + {0,
// 1}]: one writer per (block column, channel), no atomics; the sums use row_sums's fixed order, and
// cc_batchnorm_backward_from_sums_kernel (batchnorm.cu) combines a channel's slots in a fixed order.
struct BnSumsTarget {
    const float* mean;   // the batch norm's saved statistics and affine parameters, C each
    const float* invstd;
    const float* gamma;
    const float* beta;
    int relu;
    const float* z;      // the batch norm's input: dx's shape
    float* sums;         // C * at.grid.x slots of 2 floats
};

// After the tile's store: acc becomes g, then g * x_hat (in place, each a pass over the valid elements that reads z at
// dx's index), and each pass's row sums go to the slot. The channel's four parameters are loaded once per row.
template <class T>
__device__ __forceinline__ void store_bn_sums(float (&acc)[T::kFragsM][T::kFragsN][4], const BnSumsTarget& bn, int rows, int row0,
                                              int positions, int col0, int P, int Q, int image, int plane, const cc_block_place& at)
{
    static_assert(T::kRows * T::kWarpsN * 4 <= T::kSharedBytes, "the row sums fit the pipeline's shared memory");
    CC_DYNAMIC_SHARED(float, scratch);
    __syncthreads(); // every warp is past its last fragment read: the pipeline's shared memory is scratch now
    bool valid[T::kFragsN][2];
    valid_columns<T>(valid, col0, positions);
    const float* z = bn.z;
    const int relu = bn.relu;
    store_tile<T>(acc, rows, row0, 0, positions, col0, P, Q, image, plane, [&](int channel) {
        const float mu = __ldg(bn.mean + channel), is = __ldg(bn.invstd + channel), ga = __ldg(bn.gamma + channel),
                    be = __ldg(bn.beta + channel);
        return [=](int index, float& value) {
            float x_hat;
            value = cc_bn_masked_gradient(__ldg(z + index), value, mu, is, ga, be, relu, &x_hat);
        };
    });
    float sum_g[T::kFragsM][2], sum_g_xhat[T::kFragsM][2];
    row_sums<T>(sum_g, valid, scratch, [&](int i, int j, int e) { return acc[i][j][e]; });
    store_tile<T>(acc, rows, row0, 0, positions, col0, P, Q, image, plane, [&](int channel) {
        const float mu = __ldg(bn.mean + channel), is = __ldg(bn.invstd + channel);
        return [=](int index, float& value) {
            value *= cc_bn_x_hat(__ldg(z + index), mu, is);
        };
    });
    row_sums<T>(sum_g_xhat, valid, scratch, [&](int i, int j, int e) { return acc[i][j][e]; });
    write_row_slots<T>(rows, row0, [&](int i, int half, int row) {
        float* slot = bn.sums + 2 * (row * at.grid.x + at.x); // CC_BN_SUMS_FLOATS_PER_SLOT
        slot[0] = sum_g[i][half];
        slot[1] = sum_g_xhat[i][half];
    });
}

__device__ Activation activation_of(const cc_conv_problem& pr, const float* base, int channels_total)
{
    Activation a;
    a.base = base;
    a.image = channels_total * pr.h * pr.w;
    a.plane = pr.h * pr.w;
    a.height = pr.h;
    a.width = pr.w;
    a.stride_h = pr.stride_h;
    a.stride_w = pr.stride_w;
    a.pad_h = pr.pad_h;
    a.pad_w = pr.pad_w;
    a.out_h = pr.p;
    a.out_w = pr.q;
    a.positions = pr.n * pr.p * pr.q;
    return a;
}

// dy seen as the input of a 1x1, stride-1 convolution (channels K, P x Q pixels).
__device__ Activation gradient_of(const cc_conv_problem& pr, const float* dy)
{
    Activation a;
    a.base = dy;
    a.image = pr.k * pr.p * pr.q;
    a.plane = pr.p * pr.q;
    a.height = pr.p;
    a.width = pr.q;
    a.stride_h = a.stride_w = 1;
    a.pad_h = a.pad_w = 0;
    a.out_h = pr.p;
    a.out_w = pr.q;
    a.positions = pr.n * pr.p * pr.q;
    return a;
}

// ---- The stride-1 3x3 forward pass's B operand from a window of x in shared memory (cheapconv/halo_plan.h) ----
// The gather (Im2colColumns) copies element (k = (c, r, s), column j) of im2col(x) once per filter tap: each x element
// crosses L2 up to 9 times per block. Here each channel's window (the block's output rows and 2 more, W + 2 pad
// columns) is copied once per block into a ring of CC_HALO_SLOTS channel slots, and the B fragments are read from it at
// the column's pixel plus the tap's offset. Only A (the weights) still goes through the pipeline's stages. The tiles
// of 16 reduction indices, the mma steps and the k order are the gather's, so every output has the same bits.

// The window's room in a tile's shared memory: what the stages of A leave (the launcher plans with the same numbers).
template <class T>
constexpr int kWindowFloats = T::kSharedBytes / 4 - T::kStages * T::kAFloats;
static_assert(kWindowFloats<SquareTile> == 3840 && kWindowFloats<WideTile> == 7680 && kWindowFloats<FlatTile> == 7680,
              "kImplicitGemmWindowFloats in native/launch/conv_implicit_gemm.h");

// The ring offset of reduction index k = (c, r, s): the channel's slot, then the tap's row and column in the window.
__device__ __forceinline__ int window_tap_offset(const cc_halo_plan& plan, int k)
{
    const unsigned c = (unsigned)k / 9u, rs = (unsigned)k - 9u * c, r = rs / 3u, s = rs - 3u * r; // by constants
    return (int)(c % CC_HALO_SLOTS) * plan.slot_stride + (int)r * plan.row_stride + (int)s;
}

// A block's window of x: which window rows it holds, which channels are in the ring, and (per lane) where each of the
// lane's fragment columns starts in a slot.
template <class T>
struct XWindow {
    const Activation& a;
    const cc_halo_plan& plan;
    float* ring;          // CC_HALO_SLOTS * plan.slot_stride floats, after the stages of A
    int channels;         // Cg: the slots of later channels (the last tile's k >= Kr) hold zeros
    int first_row;        // window row u = n (P + 2) + p of the block's first column: the slot's row 0
    int rows;             // window rows from there to the last column's + 2
    int copied = 0;       // channels 0 .. copied - 1 have been copied
    int column[T::kFragsN]; // slot offset of tap (0, 0) for column warp_n + 8 j + g of the lane's fragments

    __device__ XWindow(const Activation& act, const cc_halo_plan& pl, float* ring_, int channels_, int col0, int warp_n)
        : a(act), plan(pl), ring(ring_), channels(channels_)
    {
        const int height = a.out_h + 2, last = min(col0 + T::kCols, a.positions) - 1;
        Position pos;
        pos.set(col0, a.out_h, a.out_w);
        first_row = pos.n * height + pos.p;
        pos.set(last, a.out_h, a.out_w);
        rows = pos.n * height + pos.p + 3 - first_row;
        // Columns past the last position (not stored) read the last one's window: any initialised words do.
        for (int j = 0; j < T::kFragsN; ++j) {
            pos.set(min(col0 + warp_n + 8 * j + (int)threadIdx.x % 32 / 4, last), a.out_h, a.out_w);
            column[j] = plan.lead + (pos.n * height + pos.p - first_row) * plan.row_stride + pos.q - a.pad_w;
        }
    }

    // Zeros in every slot: the padding (rows and columns outside the image) is never copied over, so it stays zero.
    __device__ void clear() const
    {
        for (int i = (int)threadIdx.x; i < CC_HALO_SLOTS * plan.slot_stride; i += T::kThreads) ring[i] = 0.0f;
    }

    // Whether copy `rest` of a channel takes its row from the bank-spread order below: 16-byte copies of rows of 1, 2 or
    // 4 pieces, whose quarter warps would otherwise write 8, 4 or 2 rows that share banks.
    __device__ __forceinline__ bool spread_rows(int per_row) const { return plan.vector && 8 % per_row == 0 && per_row < 8; }

    // The window row i and the piece (16 bytes, or 4) of copy `rest` of a channel. Row by row, except where
    // spread_rows: then a quarter warp (8 lanes, one 16-byte store phase) writes pieces that fall in 8 distinct groups
    // of 4 banks. Row i starts in bank group m i mod 8 (m = row_stride / 4, odd: the launcher's row_stride is 12 or 20
    // mod 32), so among 8 consecutive rows, the rows of group rho = m i mod 8 are i = m rho mod 8 (m m = 1 mod 8); phase
    // f of those 8 rows takes the 8 / per_row rows with rho = f, f + per_row, ..., whose pieces cover groups f .. f + 7.
    __device__ __forceinline__ void row_and_piece(int rest, int per_row, int& i, int& piece) const
    {
        if (!spread_rows(per_row)) {
            i = rest / per_row;
            piece = rest - i * per_row;
            return;
        }
        const int group = rest / (8 * per_row), phase = rest % (8 * per_row) / 8, lane = rest % 8;
        const int rho = phase + lane / per_row * per_row;
        i = 8 * group + rho * (plan.row_stride / 4) % 8;
        piece = lane % per_row;
    }

    // Copies channels copied .. last into their slots: the rows inside the image, 16 bytes at a time where plan.vector
    // says x's rows allow it; a channel past Cg (reduction indices past Kr, whose weights are zero-filled too) is zeros,
    // as the gather's zero-filled copies were. Called once per tile with its last channel, in order.
    __device__ __forceinline__ void copy_through(int last)
    {
        const int count = last + 1 - copied;
        if (count <= 0) return;
        const int width = plan.vector ? 4 : 1, per_row = a.width / width;
        const int per_channel = (spread_rows(per_row) ? (rows + 7) / 8 * 8 : rows) * per_row; // spread: whole groups of 8 rows
        const int height = a.out_h + 2;
        for (int e = (int)threadIdx.x; e < count * per_channel; e += T::kThreads) {
            const int index = e / per_channel;
            int i, piece;
            row_and_piece(e - index * per_channel, per_row, i, piece);
            const int w = width * piece, c = copied + index, u = first_row + i, n = u / height, h = u - n * height - a.pad_h;
            if (i >= rows || h < 0 || h >= a.height) continue; // past the window, or padding rows: zero since clear()
            float* dst = ring + c % CC_HALO_SLOTS * plan.slot_stride + plan.lead + i * plan.row_stride + w;
            if (c >= channels) {
                for (int v = 0; v < width; ++v) dst[v] = 0.0f;
            } else {
                const float* src = a.base + n * a.image + c * a.plane + h * a.width + w;
                if (plan.vector) copy16(dst, src, a.base);
                else copy4(dst, src, a.base);
            }
        }
        copied = last + 1;
    }
};

// multiply_fragments with B read from the window: element (k, column) of im2col(x) at the column's pixel plus k's tap.
template <class T>
__device__ __forceinline__ void multiply_stage_from_window(const float* a, const XWindow<T>& b, int k0, int warp_m,
                                                           float (&acc)[T::kFragsM][T::kFragsN][4])
{
    multiply_fragments<T, kMnMajor>(a, warp_m, [&](int j, int k) { return b.ring[b.column[j] + window_tap_offset(b.plan, k0 + k)]; }, acc);
}

// The reduction [0, k_end) of the forward pass over the window: reduce()'s pipeline with the stages holding A only.
// Prefetching tile t (k0 = 16 t) copies its A tile and the channels up to its last, (16 t + 15) / 9, in the same commit
// group, so the wait that covers the tile covers its channels. A slot is overwritten 8 channels later, when the tiles
// still being read (t - 2 and t - 1, after the barrier) reach back at most 6 channels: (16 t + 15) / 9 - (16 t - 32) / 9.
template <class T, class LoaderA>
__device__ __forceinline__ void reduce_over_window(LoaderA& load_a, XWindow<T>& b, int k_end, float (&acc)[T::kFragsM][T::kFragsN][4])
{
    constexpr int kStages = T::kStages;
    CC_DYNAMIC_SHARED(float, smem);
    const int warp_m = ((int)threadIdx.x / 32 / T::kWarpsN) * T::kWarpRows;
    for (int i = 0; i < T::kFragsM; ++i)
        for (int j = 0; j < T::kFragsN; ++j)
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    b.clear();
    __syncthreads(); // the zeros land before any copy into the same words
    const int tiles = (k_end + kTileK - 1) / kTileK;
    auto prefetch = [&](int tile) {
        load_a.load(smem + tile % kStages * T::kAFloats, tile * kTileK);
        b.copy_through((tile * kTileK + kTileK - 1) / 9);
    };
    for (int s = 0; s < kStages - 1; ++s) {
        if (s < tiles) prefetch(s);
        cc_cp_async_commit();
    }
    for (int tile = 0; tile < tiles; ++tile) {
        cc_cp_async_wait<kStages - 2>(); // as in reduce()
        __syncthreads();
        if (tile + kStages - 1 < tiles) prefetch(tile + kStages - 1);
        cc_cp_async_commit();
        multiply_stage_from_window<T>(smem + tile % kStages * T::kAFloats, b, tile * kTileK, warp_m, acc);
    }
    cc_cp_async_wait<0>();
}

// InputBn: x is z, and the pass multiplies a = the input batch norm of it (bn; 1x1, stride 1, no padding, groups 1: the
// launcher's rule), the rest unchanged.
template <class T, int R, int S, bool InputBn = false>
__device__ __forceinline__ void forward(const cc_conv_problem& pr, const float* x, const float* w, float* y, const cc_conv_epilogue& ep,
                                        float* stats, int vectorized, const cc_halo_plan& halo,
                                        const cc_conv_input_bn& bn = cc_conv_input_bn{})
{
    static_assert(!InputBn || (R == 1 && S == 1), "the input batch norm is for 1x1 filters");
    const int cg = pr.c / pr.groups, kg = pr.k / pr.groups, g = (int)blockIdx.z;
    const int kr = cg * R * S;
    const int row0 = (int)blockIdx.y * T::kRows, col0 = (int)blockIdx.x * T::kCols;
    Activation act = activation_of(pr, x + g * cg * pr.h * pr.w, pr.c);
    // vectorized bit 0: the weights (kr % 4 == 0); bit 1: x (1x1, stride 1, no padding, P*Q % 4 == 0).
    DenseRows<T, true> a{w + g * kg * kr, kg, kr, row0, kr, (vectorized & 1) != 0};
    float acc[T::kFragsM][T::kFragsN][4];
    if (R == 3 && halo.row_stride != 0) { // the launcher's choice: stride 1, and the window fits (halo_plan_for)
        CC_DYNAMIC_SHARED(float, smem);
        const int warp_n = ((int)threadIdx.x / 32 % T::kWarpsN) * T::kWarpCols;
        XWindow<T> b(act, halo, smem + T::kStages * T::kAFloats, cg, col0, warp_n);
        reduce_over_window<T>(a, b, kr, acc);
    } else if (InputBn) {
        InputBnColumns<T> b(act, col0, kr, (vectorized & 2) != 0, bn);
        reduce<T, kMnMajor, kKMajor>(a, b, 0, kr, acc, ForwardInputBn<T>{bn.relu});
    } else {
        Im2colColumns<T, R, S> b(act, col0, kr, (vectorized & 2) != 0);
        reduce<T, kMnMajor, kKMajor>(a, b, 0, kr, acc);
    }
    // The epilogue is chosen here, once, after the reduction (its pointers stay kernel parameters until then): a
    // uniform branch to one of the stores, each a loop without branches on it. The launcher guarantees y or activated.
    const int image = pr.k * pr.p * pr.q, plane = pr.p * pr.q;
    const bool residual = ep.residual != nullptr, activate = ep.activated != nullptr, write_y = y != nullptr;
#define CC_STORE_FORWARD(R, A, Y) store_forward<T, R, A, Y>(acc, y, ep, kg, row0, g * kg, act.positions, col0, pr.p, pr.q, image, plane)
    if (stats != nullptr) { // the batch norm's statistics of v = acc [+ residual]: y is written, activated is not (the launcher's rule)
        if (residual) add_residual<T>(acc, ep.residual, kg, row0, g * kg, act.positions, col0, pr.p, pr.q, image, plane);
        CC_STORE_FORWARD(false, false, true);
        store_statistics<T>(acc, stats, kg, row0, g * kg, act.positions, col0);
        return;
    }
    if (!activate) {
        if (residual) CC_STORE_FORWARD(true, false, true);
        else CC_STORE_FORWARD(false, false, true);
    } else if (write_y) {
        if (residual) CC_STORE_FORWARD(true, true, true);
        else CC_STORE_FORWARD(false, true, true);
    } else {
        if (residual) CC_STORE_FORWARD(true, true, false);
        else CC_STORE_FORWARD(false, true, false);
    }
#undef CC_STORE_FORWARD
}

// Calls f(row * cols + col, i, j, e) for every accumulator acc[i][j][e] of the thread inside the rows x cols block of a
// weight gradient (row, col: the tile's origin plus the accumulator's place in it).
template <class T, class F>
__device__ __forceinline__ void for_each_weight(int row0, int col0, int rows, int cols, F f)
{
    for (int i = 0; i < T::kFragsM; ++i)
        for (int half = 0; half < 2; ++half) {
            const int row = row0 + acc_row<T>(i, half);
            if (row >= rows) continue;
            for (int j = 0; j < T::kFragsN; ++j)
                for (int odd = 0; odd < 2; ++odd) {
                    const int col = col0 + acc_col<T>(j, odd);
                    if (col < cols) f(row * cols + col, i, j, 2 * half + odd);
                }
        }
}

// InputBn: x is z, and dw is the gradient of a = the input batch norm of it (bn; 1x1, stride 1, no padding, groups 1).
template <class T, int R, int S, bool InputBn = false>
__device__ __forceinline__ void backward_weight(const cc_conv_problem& pr, const float* x, const float* dy, const cc_split_target& target,
                                                int k_chunk, int vectorized, const cc_block_place& at,
                                                const cc_conv_input_bn& bn = cc_conv_input_bn{})
{
    static_assert(!InputBn || (R == 1 && S == 1), "the input batch norm is for 1x1 filters");
    const int cg = pr.c / pr.groups, kg = pr.k / pr.groups;
    const int splits = at.grid.z / pr.groups;
    const int g = at.z / splits, split = at.z % splits;
    const int cols = cg * R * S;
    const int row0 = at.y * T::kRows, col0 = at.x * T::kCols;
    const int positions = pr.n * pr.p * pr.q;
    const int k_begin = split * k_chunk, k_end = min(positions, k_begin + k_chunk);
    Activation grad = gradient_of(pr, dy + g * kg * pr.p * pr.q);
    Activation act = activation_of(pr, x + g * cg * pr.h * pr.w, pr.c);
    const bool vec = vectorized != 0;
    Im2colRows<T, T::kRows, 1, 1> a(grad, kg, row0, k_begin, k_end, vec);
    Im2colRows<T, T::kCols, R, S> b(act, cols, col0, k_begin, k_end, vec);
    float acc[T::kFragsM][T::kFragsN][4];
    if (InputBn) reduce<T, kMnMajor, kMnMajor>(a, b, k_begin, k_end, acc, WeightInputBn<T>(bn, cols, col0, k_end));
    else reduce<T, kMnMajor, kMnMajor>(a, b, k_begin, k_end, acc);
    // Slice `split` of the partials, a whole dw (K * cols): element (g Kg + row, col) at (g Kg + row) * cols + col.
    const int slice = pr.k * cols, group_offset = g * kg * cols;
    float* out = target.partials + split * slice + group_offset;
    for_each_weight<T>(row0, col0, kg, cols, [&](int offset, int i, int j, int e) { out[offset] = acc[i][j][e]; });
    if (splits == 1) return;
    // The last split to finish this (tile, group) adds its slices into dw, each thread the elements it stored.
    if (!cc_split_arrive(target, (g * at.grid.y + at.y) * at.grid.x + at.x)) return;
    for_each_weight<T>(row0, col0, kg, cols, [&](int offset, int, int, int) { cc_split_sum(target, slice, group_offset + offset); });
}

// dx: the forward convolution of dy (K channels, P x Q pixels; with stride 2, dilated: a zero between neighbours) with
// the turned filter, padding R-1-pad, stride 1, over the positions (n, h, w) of dx. M = Cg, N = N*H*W, Kr = Kg*R*S.
// With stride 2 three quarters of the products are with those zeros: copies the tensor cores multiply but memory
// never serves (zero-filled), the price of one GEMM for the whole pass. With stride 1, B comes from a window of dy in
// shared memory where the launcher planned one (`halo`: the forward pass's window, over dy as that convolution's input;
// the same tiles, k order and mma steps as the gather, so the same bits), else gathered per tap.
template <class T, int R, int S, int Stride>
__device__ __forceinline__ void backward_data(const cc_conv_problem& pr, const float* dy, const float* w, float* dx, int accumulate,
                                              const cc_halo_plan& halo, const cc_block_place& at)
{
    const int cg = pr.c / pr.groups, kg = pr.k / pr.groups, g = at.z;
    const int kr = kg * R * S;
    const int row0 = at.y * T::kRows, col0 = at.x * T::kCols;
    Activation grad;
    grad.base = dy + g * kg * pr.p * pr.q;
    grad.image = pr.k * pr.p * pr.q;
    grad.plane = pr.p * pr.q;
    grad.height = pr.p;
    grad.width = pr.q;
    grad.stride_h = grad.stride_w = 1;
    grad.pad_h = R - 1 - pr.pad_h;
    grad.pad_w = S - 1 - pr.pad_w;
    grad.out_h = pr.h;
    grad.out_w = pr.w;
    grad.positions = pr.n * pr.h * pr.w;
    TurnedWeights<T, R, S> a{w + g * kg * cg * R * S, cg, row0, kr};
    float acc[T::kFragsM][T::kFragsN][4];
    if (Stride == 1 && R == 3 && halo.row_stride != 0) {
        CC_DYNAMIC_SHARED(float, smem);
        const int warp_n = ((int)threadIdx.x / 32 % T::kWarpsN) * T::kWarpCols;
        XWindow<T> b(grad, halo, smem + T::kStages * T::kAFloats, kg, col0, warp_n);
        reduce_over_window<T>(a, b, kr, acc);
    } else {
        Im2colColumns<T, R, S, Stride> b(grad, col0, kr, false);
        reduce<T, kMnMajor, kKMajor>(a, b, 0, kr, acc);
    }
    store_gradient<T>(acc, dx, cg, row0, g * cg, grad.positions, col0, pr.h, pr.w, pr.c * pr.h * pr.w, pr.h * pr.w, accumulate);
}

// dx = sum_k w[k, c] dy[n, k, p, q] for 1x1 filters, stride 1, no padding, groups 1: M = C, N = N*P*Q, Kr = K.
// vectorized bit 0: w^T (C % 4 == 0); bit 1: dy (P*Q % 4 == 0). BnSums: after storing dx (overwritten: the launcher never
// accumulates then), the block's batch-norm backward slots (store_bn_sums, `bn`); without it `bn` is never read and the
// body is the plain kernel's.
template <class T, bool BnSums = false>
__device__ __forceinline__ void backward_data_1x1(const cc_conv_problem& pr, const float* dy, const float* w, float* dx, int vectorized,
                                                  int accumulate, const cc_block_place& at, const BnSumsTarget& bn = BnSumsTarget{})
{
    const int row0 = at.y * T::kRows, col0 = at.x * T::kCols;
    Activation grad = gradient_of(pr, dy);
    DenseRows<T, false> a{w, pr.c, pr.c, row0, pr.k, (vectorized & 1) != 0};
    Im2colColumns<T, 1, 1> b(grad, col0, pr.k, (vectorized & 2) != 0);
    float acc[T::kFragsM][T::kFragsN][4];
    reduce<T, kKMajor, kKMajor>(a, b, 0, pr.k, acc);
    store_gradient<T>(acc, dx, pr.c, row0, 0, grad.positions, col0, pr.h, pr.w, pr.c * pr.h * pr.w, pr.h * pr.w, accumulate);
    if (BnSums) store_bn_sums<T>(acc, bn, pr.c, row0, grad.positions, col0, pr.h, pr.w, pr.c * pr.h * pr.w, pr.h * pr.w, at);
}

// The fused backward pass (cheapconv/fused_grid.h): the launch's first blocks compute the weight gradient of an R x S
// filter (InputBn: of the input batch norm of x, bn), the rest play the data gradient's blocks through `data` (called
// with the block's place in that grid).
template <int R, int S, class Data, bool InputBn = false>
__device__ __forceinline__ void backward_both(const cc_conv_problem& pr, const cc_fused_grid& grid, const float* x, const float* dy,
                                              const cc_split_target& dw, int k_chunk, int weight_vectorized, Data data,
                                              const cc_conv_input_bn& bn = cc_conv_input_bn{})
{
    const int index = (int)blockIdx.x, weight_blocks = cc_grid_blocks(grid.weight);
    if (index < weight_blocks)
        backward_weight<SquareTile, R, S, InputBn>(pr, x, dy, dw, k_chunk, weight_vectorized, cc_place_in(grid.weight, index), bn);
    else data(cc_place_in(grid.data, index - weight_blocks));
}

} // namespace

// y = conv(x, w) for 1x1 filters (any stride, padding and groups), with the epilogue `ep` (every pointer NULL: none;
// y may then be NULL when ep.activated is not). stats (NULL: none): the batch-norm statistics slots of y (store_statistics).
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm) cc_implicit_gemm_forward_1x1_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                                                          const float* __restrict__ w,
                                                                                          float* __restrict__ y, cc_conv_epilogue ep,
                                                                                          float* __restrict__ stats, int vectorized)
{
    forward<SquareTile, 1, 1>(pr, x, w, y, ep, stats, vectorized, cc_halo_plan{});
}

// y = conv(x, w) for 3x3 filters (any stride, padding and groups), with the epilogue `ep` (every pointer NULL: none;
// y may then be NULL when ep.activated is not). stats as the 1x1 kernel's.
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm) cc_implicit_gemm_forward_3x3_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                                                          const float* __restrict__ w,
                                                                                          float* __restrict__ y, cc_conv_epilogue ep,
                                                                                          float* __restrict__ stats, int vectorized, cc_halo_plan halo)
{
    forward<SquareTile, 3, 3>(pr, x, w, y, ep, stats, vectorized, halo);
}

// The same on the wide tile (WideTile: 64 x 128, 256 threads, 45 KiB): the launcher's choice where the wider blocks
// still fill the SMs (conv_implicit_gemm.cpp).
extern "C" __global__ void __launch_bounds__(WideTile::kThreads, WideTile::kMinBlocksPerSm) cc_implicit_gemm_forward_3x3_wide_kernel(
    cc_conv_problem pr, const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y, cc_conv_epilogue ep, float* __restrict__ stats,
    int vectorized, cc_halo_plan halo)
{
    forward<WideTile, 3, 3>(pr, x, w, y, ep, stats, vectorized, halo);
}

// The same on the flat tile (FlatTile: 32 x 128, 128 threads, 37.5 KiB): the launcher's choice over the wide tile where
// the filters per group fit its 32 rows.
extern "C" __global__ void __launch_bounds__(FlatTile::kThreads, FlatTile::kMinBlocksPerSm) cc_implicit_gemm_forward_3x3_flat_kernel(
    cc_conv_problem pr, const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y, cc_conv_epilogue ep, float* __restrict__ stats,
    int vectorized, cc_halo_plan halo)
{
    forward<FlatTile, 3, 3>(pr, x, w, y, ep, stats, vectorized, halo);
}

// dx = sum_k w[k, c] dy[n, k, p, q] for 1x1 filters, stride 1, no padding, groups 1 (every dx pixel is written).
// vectorized bit 0: w^T (C % 4 == 0); bit 1: dy (P*Q % 4 == 0).
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm) cc_implicit_gemm_backward_data_1x1_kernel(cc_conv_problem pr,
                                                                                                const float* __restrict__ dy,
                                                                                                const float* __restrict__ w,
                                                                                                float* __restrict__ dx, int vectorized,
                                                                                                int accumulate)
{
    backward_data_1x1<SquareTile>(pr, dy, w, dx, vectorized, accumulate, cc_own_place());
}

// The same, and the training batch norm's backward slots of dx (store_bn_sums): the batch norm before the convolution
// has input z, saved statistics bn_mean / bn_invstd, parameters bn_gamma / bn_beta and ReLU bn_relu; `sums` holds
// CC_BN_SUMS_FLOATS_PER_SLOT * C * gridDim.x floats. dx is overwritten.
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm) cc_implicit_gemm_backward_data_1x1_bn_sums_kernel(
    cc_conv_problem pr, const float* __restrict__ dy, const float* __restrict__ w, float* __restrict__ dx, int vectorized,
    const float* __restrict__ bn_mean, const float* __restrict__ bn_invstd, const float* __restrict__ bn_gamma,
    const float* __restrict__ bn_beta, int bn_relu, const float* __restrict__ z, float* __restrict__ sums)
{
    const BnSumsTarget bn{bn_mean, bn_invstd, bn_gamma, bn_beta, bn_relu, z, sums};
    backward_data_1x1<SquareTile, true>(pr, dy, w, dx, vectorized, 0, cc_own_place(), bn);
}

// dx = the data gradient for 3x3 filters with stride 1, padding at most 2, any groups (every dx pixel is written), dy
// read through the window `halo` where the launcher planned one (row_stride 0: gathered per tap).
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm) cc_implicit_gemm_backward_data_3x3_kernel(cc_conv_problem pr,
                                                                                                const float* __restrict__ dy,
                                                                                                const float* __restrict__ w,
                                                                                                float* __restrict__ dx, int vectorized,
                                                                                                int accumulate, cc_halo_plan halo)
{
    (void)vectorized; // the turned filter is 4-byte copies; dy's window rows are 16-byte ones where halo.vector says so
    backward_data<SquareTile, 3, 3, 1>(pr, dy, w, dx, accumulate, halo, cc_own_place());
}

// The same for stride 2 (both directions), over the dilated dy.
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm) cc_implicit_gemm_backward_data_3x3_stride2_kernel(
    cc_conv_problem pr, const float* __restrict__ dy, const float* __restrict__ w, float* __restrict__ dx, int vectorized, int accumulate)
{
    (void)vectorized;
    backward_data<SquareTile, 3, 3, 2>(pr, dy, w, dx, accumulate, cc_halo_plan{}, cc_own_place());
}

// dw (split-K, reduced by the last split of each tile) for 1x1 filters (any stride, padding and groups). vectorized:
// 1x1 stride 1 without padding, P*Q and k_chunk multiples of 4, both tensors 16-byte aligned.
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm) cc_implicit_gemm_backward_weight_1x1_kernel(cc_conv_problem pr,
                                                                                                  const float* __restrict__ x,
                                                                                                  const float* __restrict__ dy,
                                                                                                  cc_split_target out,
                                                                                                  int k_chunk, int vectorized)
{
    backward_weight<SquareTile, 1, 1>(pr, x, dy, out, k_chunk, vectorized, cc_own_place());
}

// dw (split-K, reduced by the last split of each tile) for 3x3 filters (any stride, padding and groups).
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm) cc_implicit_gemm_backward_weight_3x3_kernel(cc_conv_problem pr,
                                                                                                  const float* __restrict__ x,
                                                                                                  const float* __restrict__ dy,
                                                                                                  cc_split_target out,
                                                                                                  int k_chunk, int vectorized)
{
    backward_weight<SquareTile, 3, 3>(pr, x, dy, out, k_chunk, vectorized, cc_own_place());
}

// Both gradients of a 1x1 convolution with stride 1, no padding and groups 1 in one launch (cc_conv_backward): the
// blocks of cc_implicit_gemm_backward_weight_1x1_kernel, then those of cc_implicit_gemm_backward_data_1x1_kernel, each
// with that kernel's arguments (data_vectorized / accumulate, dw / k_chunk / weight_vectorized). Same tile, threads and
// shared memory as both, so the same __launch_bounds__.
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm)
    cc_implicit_gemm_backward_1x1_kernel(CC_IMPLICIT_GEMM_BACKWARD_PARAMETERS)
{
    (void)halo; // no window: dy is the 1x1 convolution's own input
    backward_both<1, 1>(pr, grid, x, dy, dw, k_chunk, weight_vectorized, [&](const cc_block_place& at) {
        backward_data_1x1<SquareTile>(pr, dy, w, dx, data_vectorized, accumulate, at);
    });
}

// Both gradients of a 3x3 convolution with stride 1 (padding at most 2, any groups) in one launch: the blocks of
// cc_implicit_gemm_backward_weight_3x3_kernel, then those of cc_implicit_gemm_backward_data_3x3_kernel (with its `halo`).
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm)
    cc_implicit_gemm_backward_3x3_kernel(CC_IMPLICIT_GEMM_BACKWARD_PARAMETERS)
{
    (void)data_vectorized; // as cc_implicit_gemm_backward_data_3x3_kernel
    backward_both<3, 3>(pr, grid, x, dy, dw, k_chunk, weight_vectorized,
                        [&](const cc_block_place& at) { backward_data<SquareTile, 3, 3, 1>(pr, dy, w, dx, accumulate, halo, at); });
}

// The same for stride 2: the blocks of cc_implicit_gemm_backward_weight_3x3_kernel, then those of
// cc_implicit_gemm_backward_data_3x3_stride2_kernel.
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm)
    cc_implicit_gemm_backward_3x3_stride2_kernel(CC_IMPLICIT_GEMM_BACKWARD_PARAMETERS)
{
    (void)data_vectorized;
    (void)halo; // the dilated dy is gathered per tap
    backward_both<3, 3>(pr, grid, x, dy, dw, k_chunk, weight_vectorized,
                        [&](const cc_block_place& at) { backward_data<SquareTile, 3, 3, 2>(pr, dy, w, dx, accumulate, cc_halo_plan{}, at); });
}

// ---- The 1x1 kernels with the input's batch norm applied as they read it (stride 1, no padding, groups 1) ----

// y = conv(a, w) with a = the input batch norm of z (bn), the epilogue and stats as cc_implicit_gemm_forward_1x1_kernel's.
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm)
    cc_implicit_gemm_forward_1x1_input_bn_kernel(cc_conv_problem pr, const float* __restrict__ z, const float* __restrict__ w,
                                                 float* __restrict__ y, cc_conv_epilogue ep, float* __restrict__ stats, int vectorized,
                                                 cc_conv_input_bn bn)
{
    forward<SquareTile, 1, 1, true>(pr, z, w, y, ep, stats, vectorized, cc_halo_plan{}, bn);
}

// dw of a = the input batch norm of z (bn), split as cc_implicit_gemm_backward_weight_1x1_kernel.
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm)
    cc_implicit_gemm_backward_weight_1x1_input_bn_kernel(cc_conv_problem pr, const float* __restrict__ z, const float* __restrict__ dy,
                                                         cc_split_target out, int k_chunk, int vectorized, cc_conv_input_bn bn)
{
    backward_weight<SquareTile, 1, 1, true>(pr, z, dy, out, k_chunk, vectorized, cc_own_place(), bn);
}

// Both gradients in one launch, as cc_implicit_gemm_backward_1x1_kernel: the weight gradient's blocks of a = the input
// batch norm of z (x here), then the plain data gradient's (da = w^T dy does not involve bn).
extern "C" __global__ void __launch_bounds__(SquareTile::kThreads, SquareTile::kMinBlocksPerSm)
    cc_implicit_gemm_backward_1x1_input_bn_kernel(CC_IMPLICIT_GEMM_BACKWARD_PARAMETERS, cc_conv_input_bn bn)
{
    (void)halo;
    auto data = [&](const cc_block_place& at) { backward_data_1x1<SquareTile>(pr, dy, w, dx, data_vectorized, accumulate, at); };
    backward_both<1, 1, decltype(data), true>(pr, grid, x, dy, dw, k_chunk, weight_vectorized, data, bn);
}

CC_REGISTER_KERNEL(cc_implicit_gemm_forward_1x1_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_forward_3x3_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_forward_3x3_wide_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_forward_3x3_flat_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_backward_data_1x1_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_backward_data_1x1_bn_sums_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_backward_data_3x3_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_backward_data_3x3_stride2_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_backward_weight_1x1_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_backward_weight_3x3_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_backward_1x1_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_backward_3x3_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_backward_3x3_stride2_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_forward_1x1_input_bn_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_backward_weight_1x1_input_bn_kernel);
CC_REGISTER_KERNEL(cc_implicit_gemm_backward_1x1_input_bn_kernel);
