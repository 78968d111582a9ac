// The GEMM family, NCHW fp32: the pointwise (1x1, groups 1, no padding, any stride) convolution and the
// linear layer, forward and backward, all on ONE tiled shared-memory SGEMM core. The CPU reference is
// src/CheapConv/Backends/CpuBackend.Gemm.cs; the launchers are native/launch/conv.cpp
// (pointwise) and native/launch/linear.cpp, on the shared plan of native/launch/gemm_plan.h.
//
// The core computes C (m x n) = A (m x k) . B (k x n) where every operand is a *view*: the element offset
// of row r / column j comes from a GemmIndex that can split an index into up to three levels
// (j -> j % d0, (j / d0) % d1, j / (d0 d1)), each with its own stride. That is enough to read the
// convolution's tensors in place, without im2col copies:
//   pointwise forward      Y[n,k,pq]   = sum_c W[k,c] . X[n,c,p*sh,q*sw]   m=K, n=N*PQ, k=C
//   pointwise bwd data     dX[n,c,..]  = sum_k W[k,c] . dY[n,k,pq]         m=C, n=N*PQ, k=K (scattered)
//   pointwise bwd weight   dW[k,c]     = sum_{n,pq} dY[n,k,pq] . X[n,c,..]  m=K, n=C,    k=N*PQ
//   linear forward         Y = X . W^T + b                                  m=N, n=out,  k=in
//   linear bwd data        dX = dY . W                                      m=N, n=in,   k=out
//   linear bwd weight      dW = dY^T . X                                    m=out, n=in, k=N
// The batch is folded into the column (or reduction) index, so tiles run across image boundaries and
// small feature maps (8x8, odd sizes) do not leave most of a tile idle.
//
// Launch geometry (all GEMM kernels): block 256 threads (1-D), grid (ceil(n/64), ceil(m/64), splits).
// Each block owns a 64x64 tile of C; thread (tx, ty) = (tid % 16, tid / 16) owns the 4x4 elements at rows
// ty + 16i and columns tx + 16j, so shared-memory reads are conflict-free and stores coalesce along
// columns. Per 16-deep slice of the reduction the block stages a 64x16 slice of A and a 16x64 slice of B
// in shared memory (guarded: any m, n, k work; out-of-range elements read as 0), then every thread does
// 16 x 4 x 4 fused multiply-adds from registers.
//
// Determinism without floating-point atomics: every C element is accumulated by exactly one thread, in
// increasing reduction order. The weight gradients may split their (long) reduction over gridDim.z blocks
// ("split-K", for parallelism when the output is small): split z sums the reduction indices
// [z*k_chunk, min(k, (z+1)*k_chunk)) and writes its partial result to its own slice partials + z*m*n;
// the block that arrives last at its 64x64 tile then adds the tile's slices in the fixed order z = 0, 1, 2, ...
// (cheapconv/split_reduce.h: the arithmetic of cc_gemm_column_sums_kernel, in the same launch).
// cc_gemm_column_sums_kernel (one thread per column, rows summed in order) is the linear bias gradient.
//
// Indices are 32-bit: the launchers refuse tensors (and split workspaces) over 2^31-1 elements.
#include "cheapconv/cuda_shim.h"
#include "cheapconv/kernels.h" // the declarations these definitions must match
#include "cheapconv/problem.h"
#include "cheapconv/split_reduce.h"

namespace {

constexpr int kTileM = 64;
constexpr int kTileN = 64;
constexpr int kTileK = 16;
constexpr int kThreadsX = 16;                   // threads along a tile's columns
constexpr int kThreadsY = 16;                   // threads along a tile's rows
constexpr int kThreads = kThreadsX * kThreadsY; // must match kGemmBlock (native/launch/gemm_plan.h)
constexpr int kRowsPerThread = kTileM / kThreadsY;
constexpr int kColsPerThread = kTileN / kThreadsX;

// Maps an index j of one GEMM dimension to an element offset. d0 == 0 means a plain strided dimension
// (offset j * s0, no divisions); otherwise j splits as j0 = j % d0, j1 = (j / d0) % d1, j2 = j / (d0 d1)
// and the offset is j0 s0 + j1 s1 + j2 s2 (e.g. q, p, n of an output position).
struct GemmIndex {
    int d0, d1;
    int s0, s1, s2;

    __device__ __forceinline__ int offset(int j) const
    {
        if (d0 == 0) return j * s0;
        const int j0 = j % d0;
        const int rest = j / d0;
        return j0 * s0 + (rest % d1) * s1 + (rest / d1) * s2;
    }
};

__device__ GemmIndex plain(int stride) { return GemmIndex{0, 1, stride, 0, 0}; }

// Output position j = (n, p, q) of an N x ? x P x Q tensor, read at input pixel (p*sh, q*sw) of the
// N x channels x H x W tensor: the strided 1x1 window of the pointwise convolution.
__device__ GemmIndex strided_pixels(const cc_conv_problem& pr, int channels)
{
    return GemmIndex{pr.q, pr.p, pr.stride_w, pr.stride_h * pr.w, channels * pr.h * pr.w};
}

// Output position j = (n, pq) of an N x channels x P x Q tensor (P x Q contiguous).
__device__ GemmIndex output_pixels(const cc_conv_problem& pr, int channels)
{
    return GemmIndex{pr.p * pr.q, 1, 1, 0, channels * pr.p * pr.q};
}

// A read-only matrix view: element (r, j) at base[rows.offset(r) + cols.offset(j)].
struct GemmOperand {
    const float* base;
    GemmIndex rows, cols;
    // Which way consecutive threads walk when staging a tile: along the reduction index (true) or along
    // m / n (false). Chosen so that, where the tensor is contiguous in one of the two, loads coalesce.
    bool k_contiguous;

    __device__ __forceinline__ float at(int r, int j) const { return base[rows.offset(r) + cols.offset(j)]; }
};

struct GemmProblem {
    int m, n, k;
    GemmOperand a;        // m x k
    GemmOperand b;        // k x n
    float* c;             // m x n, element (r, j) at c[c_rows.offset(r) + c_cols.offset(j)]
    GemmIndex c_rows, c_cols;
    const float* bias;    // nullptr, or one value per column of C
    int k_chunk;          // reduction indices per split (blockIdx.z); >= k when not split
    int split_stride;     // distance between the output slices of consecutive splits
    cc_split_target reduce; // splits > 1: c is reduce.partials, and the last block of a tile adds the slices into reduce.dw
    // Scatter for the strided pointwise backward-data: C's column j = (n, p, q) lands on pixel
    // (p*cell_h, q*cell_w) of a plane_h x plane_w plane, and the same thread writes 0 to the other pixels
    // of that cell_h x cell_w cell (inside the plane), so every dx element is written exactly once.
    // cell_h = cell_w = 1 is a plain store. The column index must then be a three-level GemmIndex (d0 = Q,
    // d1 = P).
    int cell_h, cell_w, plane_h, plane_w;
    // Backward-data: C is added into (c = c + the rounded result, one rounded add: cc_add_rn) instead of stored.
    bool accumulate;

    __device__ __forceinline__ void store(float* element, float value) const
    {
        *element = accumulate ? cc_add_rn(*element, value) : value;
    }
};

__device__ __forceinline__ GemmProblem make_problem(int m, int n, int k)
{
    GemmProblem g{};
    g.m = m;
    g.n = n;
    g.k = k;
    g.k_chunk = k;
    g.split_stride = 0;
    g.reduce = cc_split_target{nullptr, nullptr, nullptr, 1};
    g.bias = nullptr;
    g.cell_h = g.cell_w = 1;
    g.plane_h = g.plane_w = 0;
    g.accumulate = false;
    return g;
}

// Stages rows [row0, row0 + tile_rows) x reduction [k0, k0 + kTileK) of A (or the transposed slice of B)
// into tile[kk][r]. Elements outside the matrix or the block's reduction range read as 0, so the inner
// product needs no guards.
template <int TileRows>
__device__ __forceinline__ void stage_tile(const GemmOperand& op, bool operand_is_b, int rows, int row0, int k0, int k_end,
                           float (*tile)[TileRows + 1])
{
    for (int e = threadIdx.x; e < TileRows * kTileK; e += kThreads) {
        int r, kk;
        if (op.k_contiguous) {
            kk = e % kTileK;
            r = e / kTileK;
        } else {
            r = e % TileRows;
            kk = e / TileRows;
        }
        const int row = row0 + r;
        const int kidx = k0 + kk;
        float v = 0.0f;
        if (row < rows && kidx < k_end) v = operand_is_b ? op.at(kidx, row) : op.at(row, kidx);
        tile[kk][r] = v;
    }
}

// Writes the thread's accumulators (plus the bias) into C at `out`; Accumulate adds each into its element instead (one
// rounded add of the rounded value, GemmProblem::store). A template parameter, not a runtime branch in the loop: the
// loop must unroll so that acc stays in registers.
template <bool Accumulate>
__device__ __forceinline__ void store_tile(const GemmProblem& g, const float (&acc)[kRowsPerThread][kColsPerThread], float* out, int row0,
                                           int col0, int tx, int ty)
{
    CC_UNROLL
    for (int i = 0; i < kRowsPerThread; ++i) {
        const int row = row0 + ty + kThreadsY * i;
        if (row >= g.m) continue;
        const int row_offset = g.c_rows.offset(row);
        CC_UNROLL
        for (int j = 0; j < kColsPerThread; ++j) {
            const int col = col0 + tx + kThreadsX * j;
            if (col >= g.n) continue;
            const float value = acc[i][j] + (g.bias != nullptr ? g.bias[col] : 0.0f);
            float& element = out[row_offset + g.c_cols.offset(col)];
            element = Accumulate ? cc_add_rn(element, value) : value;
        }
    }
}

// One 64 x 64 tile of C per block, one reduction split per blockIdx.z. Called by every kernel below with
// all 256 threads of the block (the barriers need all of them).
__device__ __forceinline__ void gemm_tile(const GemmProblem& g)
{
    // +1 column of padding: the k-contiguous staging writes a column of the tile per 16 threads, which
    // without it would hit one bank 16 times.
    CC_STATIC_SHARED(float, a_tile, [kTileK][kTileM + 1]);
    CC_STATIC_SHARED(float, b_tile, [kTileK][kTileN + 1]);

    const int tx = threadIdx.x % kThreadsX;
    const int ty = threadIdx.x / kThreadsX;
    const int row0 = blockIdx.y * kTileM;
    const int col0 = blockIdx.x * kTileN;
    const int split = blockIdx.z;
    const int k_begin = split * g.k_chunk;
    const int k_end = min(g.k, k_begin + g.k_chunk);

    float acc[kRowsPerThread][kColsPerThread];
    for (int i = 0; i < kRowsPerThread; ++i)
        for (int j = 0; j < kColsPerThread; ++j) acc[i][j] = 0.0f;

    for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
        stage_tile<kTileM>(g.a, false, g.m, row0, k0, k_end, a_tile);
        stage_tile<kTileN>(g.b, true, g.n, col0, k0, k_end, b_tile);
        __syncthreads();
        for (int kk = 0; kk < kTileK; ++kk) {
            float a_frag[kRowsPerThread];
            float b_frag[kColsPerThread];
            for (int i = 0; i < kRowsPerThread; ++i) a_frag[i] = a_tile[kk][ty + kThreadsY * i];
            for (int j = 0; j < kColsPerThread; ++j) b_frag[j] = b_tile[kk][tx + kThreadsX * j];
            for (int i = 0; i < kRowsPerThread; ++i)
                for (int j = 0; j < kColsPerThread; ++j) acc[i][j] = fmaf(a_frag[i], b_frag[j], acc[i][j]);
        }
        // The next iteration overwrites the tiles.
        __syncthreads();
    }

    float* out = g.c + split * g.split_stride;
    if (g.accumulate) store_tile<true>(g, acc, out, row0, col0, tx, ty);
    else store_tile<false>(g, acc, out, row0, col0, tx, ty);
    if (g.reduce.splits > 1) {
        // The last split to finish this tile adds its slices into dw (same elements, same threads as the stores).
        if (!cc_split_arrive(g.reduce, blockIdx.y * gridDim.x + blockIdx.x)) return;
        for (int i = 0; i < kRowsPerThread; ++i) {
            const int row = row0 + ty + kThreadsY * i;
            if (row >= g.m) continue;
            for (int j = 0; j < kColsPerThread; ++j) {
                const int col = col0 + tx + kThreadsX * j;
                if (col < g.n) cc_split_sum(g.reduce, g.split_stride, g.c_rows.offset(row) + g.c_cols.offset(col));
            }
        }
        return;
    }
    if (g.cell_h == 1 && g.cell_w == 1) return;

    // The rest of each stride cell, in a separate pass: inside the loop above the variable-length cell loops
    // keep the compiler from unrolling it, and acc[][] would then be indexed dynamically (local memory).
    for (int i = 0; i < kRowsPerThread; ++i) {
        const int row = row0 + ty + kThreadsY * i;
        if (row >= g.m) continue;
        const int row_offset = g.c_rows.offset(row);
        for (int j = 0; j < kColsPerThread; ++j) {
            const int col = col0 + tx + kThreadsX * j;
            if (col >= g.n) continue;
            float* cell = out + row_offset + g.c_cols.offset(col);
            const int h0 = ((col / g.c_cols.d0) % g.c_cols.d1) * g.cell_h;
            const int w0 = (col % g.c_cols.d0) * g.cell_w;
            for (int dh = 0; dh < g.cell_h && h0 + dh < g.plane_h; ++dh)
                for (int dw = 0; dw < g.cell_w && w0 + dw < g.plane_w; ++dw)
                    if (dh != 0 || dw != 0) g.store(&cell[dh * g.plane_w + dw], 0.0f);
        }
    }
}

} // namespace

// y[n,k,p,q] = sum_c w[k,c] x[n,c,p*sh,q*sw]: C = W (K x C) . X (C x N*PQ, strided pixels).
extern "C" __global__ void cc_pointwise_forward_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                const float* __restrict__ w, float* __restrict__ y)
{
    GemmProblem g = make_problem(pr.k, pr.n * pr.p * pr.q, pr.c);
    g.a = GemmOperand{w, plain(pr.c), plain(1), true};
    g.b = GemmOperand{x, plain(pr.h * pr.w), strided_pixels(pr, pr.c), false};
    g.c = y;
    g.c_rows = plain(pr.p * pr.q);
    g.c_cols = output_pixels(pr, pr.k);
    gemm_tile(g);
}

// dx[n,c,p*sh,q*sw] = sum_k w[k,c] dy[n,k,p,q], every other dx pixel 0: C = W^T (C x K) . dY (K x N*PQ),
// scattered to the strided pixels, the rest of each stride cell zeroed by the same thread.
extern "C" __global__ void cc_pointwise_backward_data_kernel(cc_conv_problem pr, const float* __restrict__ dy,
                                                      const float* __restrict__ w, float* __restrict__ dx, int accumulate)
{
    GemmProblem g = make_problem(pr.c, pr.n * pr.p * pr.q, pr.k);
    g.a = GemmOperand{w, plain(1), plain(pr.c), false};
    g.b = GemmOperand{dy, plain(pr.p * pr.q), output_pixels(pr, pr.k), false};
    g.c = dx;
    g.c_rows = plain(pr.h * pr.w);
    g.c_cols = strided_pixels(pr, pr.c);
    g.cell_h = pr.stride_h;
    g.cell_w = pr.stride_w;
    g.plane_h = pr.h;
    g.plane_w = pr.w;
    g.accumulate = accumulate != 0;
    gemm_tile(g);
}

// dw[k,c] = sum_{n,p,q} dy[n,k,p,q] x[n,c,p*sh,q*sw]: C = dY (K x N*PQ) . X^T (N*PQ x C). Split z writes
// the partial sum over positions [z*k_chunk, (z+1)*k_chunk) to out.partials + z*K*C, and the last split of a
// tile adds them into out.dw (with one split, out.partials is dw itself).
extern "C" __global__ void cc_pointwise_backward_weight_kernel(cc_conv_problem pr, const float* __restrict__ x,
                                                        const float* __restrict__ dy, cc_split_target out,
                                                        int k_chunk)
{
    GemmProblem g = make_problem(pr.k, pr.c, pr.n * pr.p * pr.q);
    g.a = GemmOperand{dy, plain(pr.p * pr.q), output_pixels(pr, pr.k), true};
    g.b = GemmOperand{x, strided_pixels(pr, pr.c), plain(pr.h * pr.w), true};
    g.c = out.partials;
    g.c_rows = plain(pr.c);
    g.c_cols = plain(1);
    g.k_chunk = k_chunk;
    g.split_stride = pr.k * pr.c;
    g.reduce = out;
    gemm_tile(g);
}

// y = x w^T + b: x n x in, w out x in (PyTorch's layout), b out (or null), y n x out.
extern "C" __global__ void cc_linear_forward_kernel(int n, int in, int out, const float* __restrict__ x,
                                             const float* __restrict__ w, const float* __restrict__ b,
                                             float* __restrict__ y)
{
    GemmProblem g = make_problem(n, out, in);
    g.a = GemmOperand{x, plain(in), plain(1), true};
    g.b = GemmOperand{w, plain(1), plain(in), true};
    g.c = y;
    g.c_rows = plain(out);
    g.c_cols = plain(1);
    g.bias = b;
    gemm_tile(g);
}

// dx = dy w: dy n x out, w out x in, dx n x in.
extern "C" __global__ void cc_linear_backward_data_kernel(int n, int in, int out, const float* __restrict__ dy,
                                                   const float* __restrict__ w, float* __restrict__ dx)
{
    GemmProblem g = make_problem(n, in, out);
    g.a = GemmOperand{dy, plain(out), plain(1), true};
    g.b = GemmOperand{w, plain(in), plain(1), false};
    g.c = dx;
    g.c_rows = plain(in);
    g.c_cols = plain(1);
    gemm_tile(g);
}

// dw = dy^T x: out x in, reduced over the n samples; split z writes its partial sum over samples
// [z*k_chunk, (z+1)*k_chunk) to target.partials + z*out*in, and the last split of a tile adds them into target.dw.
extern "C" __global__ void cc_linear_backward_weight_kernel(int n, int in, int out, const float* __restrict__ x,
                                                     const float* __restrict__ dy, cc_split_target target,
                                                     int k_chunk)
{
    GemmProblem g = make_problem(out, in, n);
    g.a = GemmOperand{dy, plain(1), plain(out), false};
    g.b = GemmOperand{x, plain(in), plain(1), false};
    g.c = target.partials;
    g.c_rows = plain(in);
    g.c_cols = plain(1);
    g.k_chunk = k_chunk;
    g.split_stride = out * in;
    g.reduce = target;
    gemm_tile(g);
}

// dst[j] = sum_r src[r*cols + j], rows added in order r = 0, 1, ... One thread per column, 1-D grid, any
// block size; consecutive threads read consecutive addresses. The linear bias gradient (src = dy, n x out);
// cc_split_sum (cheapconv/split_reduce.h) is the same arithmetic for the split weight gradients.
extern "C" __global__ void cc_gemm_column_sums_kernel(int rows, int cols, const float* __restrict__ src,
                                               float* __restrict__ dst)
{
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= cols) return;
    float acc = 0.0f;
    for (int r = 0; r < rows; ++r) acc += src[r * cols + j];
    dst[j] = acc;
}

CC_REGISTER_KERNEL(cc_pointwise_forward_kernel);
CC_REGISTER_KERNEL(cc_pointwise_backward_data_kernel);
CC_REGISTER_KERNEL(cc_pointwise_backward_weight_kernel);
CC_REGISTER_KERNEL(cc_linear_forward_kernel);
CC_REGISTER_KERNEL(cc_linear_backward_data_kernel);
CC_REGISTER_KERNEL(cc_linear_backward_weight_kernel);
CC_REGISTER_KERNEL(cc_gemm_column_sums_kernel);
