// Tiled 3x3 convolution for depthwise and grouped problems (any channels per group), stride 1 or 2, any
// padding, NCHW fp32: forward, backward-data and backward-weight. The direct kernels of conv2d.cu are the
// reference these are tested against; the launcher (native/launch/conv_tiled.cpp) plans the tiles.
//
// Work unit: a *strip* is tile_w output columns x CC_TILED_ROWS output rows of one image; each of its
// tile_w threads owns one column and keeps its outputs in registers, for a chunk of the group's output
// channels at once (1, 4 or 8, the launcher's choice), so every staged input feeds chunk x 9 multiply-adds.
// A block of CC_TILED_THREADS threads holds `strips` strips (tile_w <= 32: small planes put several images
// in one block), and for each input channel of the group it stages each strip's *window* (footprint plus
// halo, zero outside the tensor) and the weights of that channel in shared memory; each thread then copies
// its 3-column slice of the window into registers and does all its taps from there. Stride and filter size
// are template constants: every tap index below is known at compile time, and the arithmetic loops have no
// division or modulo and no branch a warp could diverge on (a strip's coordinates are divided out once per
// staged window, outside them).
//
// Shared-memory layout (bank-conflict free): a window row is contiguous with the thread's column; the
// windows of consecutive strips lie `stride` floats apart with stride == tile_w (mod 32), so the 32 lanes
// of a warp, spread over strips, read 32 consecutive banks. For stride 2 a row keeps its even and odd
// columns apart (taps 2q, 2q+1, 2q+2 are even[q], odd[q], even[q+1]). Windows that span whole rows of a
// plane whose width is a multiple of 4 are staged with 16-byte loads and stores (the launcher checks the
// alignment per call); the others with 4-byte loads, consecutive lanes on consecutive columns
// (for_each_element).
//
// Passes:
//   forward            y[n,k] = sum_c x[n,c] (*) w[k,c], c over k's group                  (gather_tiles)
//                      _bn_stats: also the batch-norm statistics slots of y (block_statistics), after adding a residual
//                      (_residual_bn_stats)
//   backward-data s=1  dx[n,c] = sum_k dy[n,k] (*) flip(w[k,c]), padding 2 - pad: the same gather
//   backward-data s=2  a thread owns a column of 2x2 dx cells: the cell of dy position (p, q) gets taps
//                      from dy (p, q), (p-1, q), (p, q-1), (p-1, q-1) only, each output of the cell a
//                      fixed subset of the 9 taps (split by output parity at compile time, no modulo)
//   backward-weight    block = (input channel, chunk of its group's filters, split of the strips); each
//                      thread sums its strips' products for the chunk x 9 weights in registers, the block
//                      adds its threads in a fixed tree, and writes one partial per split into its own
//                      workspace slot; the split that arrives last at its (input channel, chunk) adds the
//                      slots in order z = 0, 1, ... into dw (cheapconv/split_reduce.h: deterministic, no
//                      floating-point atomics; with one split the block writes dw directly).
//   both gradients     (cc_conv_backward) one launch: the backward-weight blocks, then the backward-data ones, on one
//                      set of shared arrays (tiled_shared), each pass's body at the block it plays (cheapconv/fused_grid.h)
// Launch geometry (native/launch/conv_tiled.cpp): block CC_TILED_THREADS; forward and backward-data grid
// (ceil(strip_count / strips), groups * chunks_per_group); backward-weight grid (splits, C * chunks_per_group).
// Indices are 32-bit: cc_conv_validate refuses tensors of more than 2^31-1 elements.
#include "cheapconv/cuda_shim.h"
#include "cheapconv/fused_grid.h"
#include "cheapconv/kernels.h" // the declarations these definitions must match
#include "cheapconv/problem.h"
#include "cheapconv/split_reduce.h"
#include "cheapconv/tiled_plan.h"

namespace {

constexpr int kThreads = CC_TILED_THREADS;
constexpr int kWarps = kThreads / 32;
constexpr int kTaps = 9;
constexpr int kRows = CC_TILED_ROWS;
constexpr int kCellRows = CC_TILED_CELL_ROWS;
constexpr int kWideChunk = CC_TILED_WIDE_CHUNK;
constexpr int kNarrowChunk = CC_TILED_NARROW_CHUNK;
constexpr int kWeightChunk = CC_TILED_WEIGHT_CHUNK;

// The image and first output row / column of strip `index` (of rows_per_strip rows).
struct Strip {
    int n, row0, col0;
};

__device__ __forceinline__ Strip locate(const cc_tiled_plan& plan, int index, int rows_per_strip)
{
    const int rest = index / plan.col_tiles;
    const int image = rest / plan.row_tiles;
    return Strip{image, (rest - image * plan.row_tiles) * rows_per_strip, (index - rest * plan.col_tiles) * plan.tile_w};
}

// Where a lane's first float4 of a 16-byte staging lands, as (row, column) of the plane; computed once
// per thread so the staging loop only adds the launcher's per-step advance.
struct VectorCursor {
    int row, col;
};

__device__ __forceinline__ VectorCursor vector_cursor(const cc_tiled_window& win, int lane)
{
    if (!win.vector) return VectorCursor{0, 0};
    const int row = 4 * lane / win.plane_w;
    return VectorCursor{row, 4 * lane - row * win.plane_w};
}

// The shared slot of window element (row, col). Layout 1: rows of `pitch` floats, column 0 at `lead`.
// Layout 2 (stride-2 reads): even columns at 0, odd ones at `odd`.
template <int Layout>
__device__ __forceinline__ int slot(const cc_tiled_window& win, int row, int col)
{
    if (Layout == 2) return row * win.pitch + ((col & 1) ? win.odd : 0) + (col >> 1);
    return row * win.pitch + win.lead + col;
}

// Calls visit(row, col) for each element of a rows x cols block, the warp's lanes on consecutive columns.
// Every lane makes the same number of calls for every block of one shape, so the k-th access of each lane
// is always the same warp-wide request (the GPU's, and the profile's grouping): whole rounds of 32 columns
// per row, then the columns left over of all rows together, one lane each (the launcher's pitch puts them
// on distinct banks); a block narrower than a warp takes one round per row.
template <class Visit>
__device__ __forceinline__ void for_each_element(int rows, int cols, int lane, Visit visit)
{
    if (cols < 32) {
        if (lane < cols)
            for (int r = 0; r < rows; ++r) visit(r, lane);
        return;
    }
    const int full = cols & ~31;
    for (int r = 0; r < rows; ++r)
        for (int c = lane; c < full; c += 32) visit(r, c);
    const int rest = cols - full;
    for (int e = lane; e < rest * rows; e += 32) {
        const int r = e / rest; // a few elements per window, outside the arithmetic loops
        visit(r, full + e - r * rest);
    }
}

// One warp stages one strip's window: tensor rows [h0, h0 + rows) x columns [w0, w0 + cols) of `plane`,
// zero outside the plane.
template <int Layout>
__device__ __forceinline__ void stage_window(const cc_tiled_window& win, const float* __restrict__ plane, int h0, int w0, float* dst,
                                             int lane, VectorCursor cursor)
{
    if (Layout == 1 && win.vector) {
        // The window spans whole rows (w0 <= 0, w0 + cols >= plane_w): zero the rows outside the plane and
        // the halo columns, then copy the rows inside as one contiguous run of float4s.
        const int left = -w0;
        const int halo = left + win.cols - (win.plane_w - w0);
        for (int r = 0; r < win.rows; ++r) {
            const int h = h0 + r;
            if (h < 0 || h >= win.plane_h) {
                for (int c = lane; c < win.cols; c += 32) dst[slot<1>(win, r, c)] = 0.0f;
            } else {
                for (int c = lane; c < halo; c += 32) dst[slot<1>(win, r, c < left ? c : c - left + win.plane_w - w0)] = 0.0f;
            }
        }
        const int first = max(h0, 0);
        const int last = min(h0 + win.rows, win.plane_h);
        const int count = last > first ? (last - first) * win.plane_w / 4 : 0;
        const float4* source = reinterpret_cast<const float4*>(plane + first * win.plane_w);
        float* rows = dst + (first - h0) * win.pitch + win.lead - w0;
        int row = cursor.row, col = cursor.col;
        for (int f = lane; f < count; f += 32) {
            *reinterpret_cast<float4*>(rows + row * win.pitch + col) = source[f];
            row += win.vector_rows;
            col += win.vector_cols;
            if (col >= win.plane_w) {
                col -= win.plane_w;
                ++row;
            }
        }
        return;
    }
    for_each_element(win.rows, win.cols, lane, [&](int r, int c) {
        const int h = h0 + r, column = w0 + c;
        const bool inside = h >= 0 && h < win.plane_h && column >= 0 && column < win.plane_w;
        dst[slot<Layout>(win, r, c)] = inside ? plane[h * win.plane_w + column] : 0.0f;
    });
}

// `Chunk` consecutive floats of shared memory into registers: float4 reads when Chunk allows.
template <int Chunk>
__device__ __forceinline__ void load_chunk(const float* src, float (&dst)[Chunk])
{
    if (Chunk % 4 == 0) { // a compile-time condition
        CC_UNROLL
        for (int i = 0; i < Chunk / 4; ++i) {
            const float4 v = reinterpret_cast<const float4*>(src)[i];
            dst[4 * i] = v.x;
            dst[4 * i + 1] = v.y;
            dst[4 * i + 2] = v.z;
            dst[4 * i + 3] = v.w;
        }
    } else {
        CC_UNROLL
        for (int i = 0; i < Chunk; ++i) dst[i] = src[i];
    }
}

// A convolution seen as "output channel o gathers input channel i of its group through filter taps":
// the forward pass (x -> y) and both backward-data passes (dy -> dx) in one form.
struct Gather {
    const float* in;
    const float* w;
    float* out;
    int in_channels, out_channels;
    int in_per_group, out_per_group;
    int in_plane;         // in_h * in_w
    int out_h, out_w;
    int pad_h, pad_w;     // the pass's own padding (the forward's, for the output positions of the s=2 cells)
    bool backward;          // out is dx: weight (o, i) is the forward's w[k = i's channel][c = o]
    bool flip;              // taps reversed (stride-1 backward-data: a forward convolution with the flipped filter)
    int channels_per_group; // the forward's C / groups (the weight tensor's second extent)
    bool accumulate;        // backward-data: out += the result (rounded first, then one rounded add) instead of out =
    const float* residual;  // forward (NULL: none): out = the result + residual, with the add of cc_add (cc_add_rn)
    float* stats;           // forward (NULL: none): the block's batch-norm statistics slots of what it stores (block_statistics)

    __device__ __forceinline__ void store(float* element, float value) const
    {
        *element = accumulate ? cc_add_rn(*element, value) : value;
    }

    // Filter tap t of output channel o from input channel i (index within the group).
    __device__ __forceinline__ float weight(int group, int o, int i, int tap) const
    {
        const int t = flip ? kTaps - 1 - tap : tap;
        if (!backward) return w[(o * channels_per_group + i) * kTaps + t];
        return w[((group * in_per_group + i) * channels_per_group + (o - group * out_per_group)) * kTaps + t];
    }
};

__device__ __forceinline__ Gather forward_roles(const cc_conv_problem& pr, const float* x, const float* w, const float* residual, float* y,
                                               float* stats)
{
    const int cpg = pr.c / pr.groups;
    return Gather{x,     w,        y,        pr.c,  pr.k,  cpg, pr.k / pr.groups, pr.h * pr.w, pr.p, pr.q, pr.pad_h, pr.pad_w,
                  false, false,    cpg,      false, residual, stats};
}

__device__ __forceinline__ Gather backward_data_roles(const cc_conv_problem& pr, const float* dy, const float* w, float* dx, bool flip,
                                                     int accumulate)
{
    const int cpg = pr.c / pr.groups;
    return Gather{dy,   w,    dx,  pr.k, pr.c, pr.k / pr.groups, cpg, pr.p * pr.q, pr.h, pr.w, pr.pad_h, pr.pad_w,
                  true, flip, cpg, accumulate != 0, nullptr, nullptr};
}

// The block's place: its strips, its thread's strip and column, and its chunk of output channels.
struct BlockWork {
    int tid, lane, warp;
    int strip_local, col_local; // this thread's strip in the block and column in the strip
    bool active;                // the thread owns a column of a strip that exists
    int group, o0, count;       // output channels [o0, o0 + count) of `group`
};

// row_of_blocks: the block's y in its pass's grid (a group and chunk of its output channels).
__device__ __forceinline__ BlockWork block_work(const cc_tiled_plan& plan, int row_of_blocks, int first_strip, int end_strip, int per_group,
                                                int chunk)
{
    BlockWork b;
    b.tid = threadIdx.x;
    b.lane = b.tid & 31;
    b.warp = b.tid >> 5;
    b.strip_local = b.tid / plan.tile_w;
    b.col_local = b.tid - b.strip_local * plan.tile_w;
    b.active = b.strip_local < plan.strips && first_strip + b.strip_local < end_strip;
    b.group = row_of_blocks / plan.chunks_per_group;
    const int first = (row_of_blocks - b.group * plan.chunks_per_group) * chunk;
    b.o0 = b.group * per_group + first;
    b.count = min(chunk, per_group - first);
    return b;
}

// Stages, for input channel i of the block's group, every strip's window (one warp per strip) and the
// 9 x Chunk weights (tap-major, zero past the chunk's channels).
template <int Layout, int Chunk>
__device__ __forceinline__ void stage_channel(const Gather& g, const cc_tiled_plan& plan, const BlockWork& b, int first_strip,
                                              int rows_per_strip, int i, VectorCursor cursor, float* windows, float* weights)
{
    const cc_tiled_window& win = plan.in;
    const int channel = b.group * g.in_per_group + i;
    for (int j = b.warp; j < plan.strips && first_strip + j < plan.strip_count; j += kWarps) {
        const Strip s = locate(plan, first_strip + j, rows_per_strip);
        const float* plane = g.in + (s.n * g.in_channels + channel) * g.in_plane;
        stage_window<Layout>(win, plane, s.row0 * win.row_step + win.row_offset, s.col0 * win.col_step + win.col_offset,
                             windows + j * win.stride, b.lane, cursor);
    }
    for (int e = b.tid; e < kTaps * Chunk; e += kThreads) {
        const int tap = e / Chunk; // Chunk is a compile-time power of two: a shift
        const int kk = e - tap * Chunk;
        weights[e] = kk < b.count ? g.weight(b.group, b.o0 + kk, i, tap) : 0.0f;
    }
}

// For each of Count values per thread, the block's sum, the same bits in every thread: the warp's butterfly (both partners
// of an exchange add the same two numbers, so every lane ends with the same bits), then the warps' sums in warp order
// through `scratch` (Count * kWarps floats of shared memory). Every thread of the block calls it (barriers).
template <int Count>
__device__ __forceinline__ void block_sums(float (&v)[Count], const BlockWork& b, float* scratch)
{
    __syncthreads(); // scratch (the staged windows) is no longer read
    CC_UNROLL
    for (int i = 0; i < Count; ++i) {
        float s = v[i];
        CC_UNROLL
        for (int offset = 16; offset > 0; offset /= 2) s += __shfl_xor_sync(0xffffffffu, s, offset);
        if (b.lane == 0) scratch[i * kWarps + b.warp] = s;
    }
    __syncthreads();
    CC_UNROLL
    for (int i = 0; i < Count; ++i) {
        float total = 0.0f;
        CC_UNROLL
        for (int w = 0; w < kWarps; ++w) total += scratch[i * kWarps + w];
        v[i] = total;
    }
}

// The training batch norm's statistics of what the block stores (cc_conv_forward_bn_stats), in the slots the implicit-GEMM
// kernels write (store_statistics in implicit_gemm.cu): slot `slot` of `slots` per output channel, {count, mean, sum of
// squared deviations from that mean} over the block's outputs of the channel, two passes over the registers (never a
// one-pass sum of squares, which cancels when |mean| is large against the spread), one writer per slot, no atomics.
// `rows`: how many of the thread's kRows outputs exist (0 for a thread without a column). Every thread calls it.
template <int Chunk>
__device__ __forceinline__ void block_statistics(const float (&acc)[Chunk][kRows], const BlockWork& b, int rows, float* stats, int slot, int slots,
                                                 float* scratch)
{
    float sums[Chunk + 1]; // the chunk's sums, then the count (exact in fp32: a block holds at most kThreads * kRows outputs)
    CC_UNROLL
    for (int kk = 0; kk < Chunk; ++kk) {
        float s = 0.0f;
        CC_UNROLL
        for (int row = 0; row < kRows; ++row)
            if (row < rows) s += acc[kk][row];
        sums[kk] = s;
    }
    sums[Chunk] = (float)rows;
    block_sums<Chunk + 1>(sums, b, scratch);
    const float count = sums[Chunk];
    float squares[Chunk];
    CC_UNROLL
    for (int kk = 0; kk < Chunk; ++kk) {
        const float mean = sums[kk] / count;
        float s = 0.0f;
        CC_UNROLL
        for (int row = 0; row < kRows; ++row)
            if (row < rows) {
                const float d = acc[kk][row] - mean;
                s += d * d;
            }
        squares[kk] = s;
        sums[kk] = mean;
    }
    block_sums<Chunk>(squares, b, scratch);
    if (b.tid >= b.count) return; // thread kk writes channel o0 + kk's slot
    CC_UNROLL
    for (int kk = 0; kk < Chunk; ++kk)
        if (kk == b.tid) {
            float* out = stats + 3 * ((b.o0 + kk) * slots + slot);
            out[0] = count;
            out[1] = sums[kk];
            out[2] = squares[kk];
        }
}

// Forward (Stride 1 or 2) and stride-1 backward-data: each thread computes kRows outputs down its column
// for Chunk output channels. Forward only: Residual adds g.residual before the store, Statistics writes the block's
// batch-norm statistics slots of what it stores (block_statistics). Compile-time, so that the plain kernels keep their
// registers (the residual's loads and the statistics' sums raise a forward kernel from 96 to 128-140 registers, which would
// halve its resident blocks).
template <int Stride, int Chunk, bool Statistics = false, bool Residual = false>
__device__ __forceinline__ void gather_tiles(const Gather& g, const cc_tiled_plan& plan, const cc_block_place& at, float* windows,
                                             float* weights)
{
    constexpr int WindowRows = (kRows - 1) * Stride + 3;
    const int first_strip = at.x * plan.strips;
    const BlockWork b = block_work(plan, at.y, first_strip, plan.strip_count, g.out_per_group, Chunk);
    const VectorCursor cursor = vector_cursor(plan.in, b.lane);

    float acc[Chunk][kRows];
    CC_UNROLL
    for (int kk = 0; kk < Chunk; ++kk)
        CC_UNROLL
        for (int i = 0; i < kRows; ++i) acc[kk][i] = 0.0f;

    for (int i = 0; i < g.in_per_group; ++i) {
        __syncthreads(); // the previous channel's windows and weights are no longer read
        stage_channel<Stride, Chunk>(g, plan, b, first_strip, kRows, i, cursor, windows, weights);
        __syncthreads();
        if (!b.active) continue;
        const float* win = windows + b.strip_local * plan.in.stride;
        float v[WindowRows][3];
        CC_UNROLL
        for (int r = 0; r < WindowRows; ++r)
            CC_UNROLL
            for (int s = 0; s < 3; ++s) v[r][s] = win[slot<Stride>(plan.in, r, b.col_local * Stride + s)];
        CC_UNROLL
        for (int tap = 0; tap < kTaps; ++tap) {
            float wv[Chunk];
            load_chunk<Chunk>(weights + tap * Chunk, wv);
            const int r = tap / 3, s = tap % 3; // compile-time after unrolling
            CC_UNROLL
            for (int kk = 0; kk < Chunk; ++kk)
                CC_UNROLL
                for (int row = 0; row < kRows; ++row) acc[kk][row] = fmaf(v[row * Stride + r][s], wv[kk], acc[kk][row]);
        }
    }
    // The thread's outputs: its column of its strip (when it has one), the rows above out_h, the chunk's channels.
    const Strip mine = locate(plan, first_strip + b.strip_local, kRows);
    const int q = mine.col0 + b.col_local;
    const bool column = b.active && q < g.out_w;
    const int plane_size = g.out_h * g.out_w;
    if (Residual && column) {
        CC_UNROLL
        for (int kk = 0; kk < Chunk; ++kk)
            CC_UNROLL
            for (int row = 0; row < kRows; ++row) {
                const int p = mine.row0 + row;
                if (kk < b.count && p < g.out_h)
                    acc[kk][row] = cc_add_rn(acc[kk][row], __ldg(g.residual + (mine.n * g.out_channels + b.o0 + kk) * plane_size + p * g.out_w + q));
            }
    }
    if constexpr (Statistics) // every thread reaches the statistics' barriers (none has returned yet)
        block_statistics<Chunk>(acc, b, column ? min(g.out_h - mine.row0, kRows) : 0, g.stats, at.x, (plan.strip_count + plan.strips - 1) / plan.strips,
                                windows);
    if (!column) return;
    CC_UNROLL
    for (int kk = 0; kk < Chunk; ++kk) {
        if (kk >= b.count) continue;
        float* plane = g.out + (mine.n * g.out_channels + b.o0 + kk) * plane_size;
        CC_UNROLL
        for (int row = 0; row < kRows; ++row) {
            const int p = mine.row0 + row;
            if (p < g.out_h) g.store(&plane[p * g.out_w + q], acc[kk][row]);
        }
    }
}

// Stride-2 backward-data. Cell (p, q) holds dx rows 2p - pad_h + a and columns 2q - pad_w + b (a, b in
// {0, 1}); tap (r, s) reaches it from dy (p - t, q - u) when r = a + 2t and s = b + 2u. The window holds dy
// rows row0 - 1 .. row0 + kCellRows - 1 and columns col0 - 1 .. col0 + tile_w - 1 (layout 1).
template <int Chunk>
__device__ __forceinline__ void scatter_cells(const Gather& g, const cc_tiled_plan& plan, const cc_block_place& at, float* windows,
                                              float* weights)
{
    const int first_strip = at.x * plan.strips;
    const BlockWork b = block_work(plan, at.y, first_strip, plan.strip_count, g.out_per_group, Chunk);
    const VectorCursor cursor = vector_cursor(plan.in, b.lane);

    float acc[Chunk][kCellRows][2][2];
    CC_UNROLL
    for (int kk = 0; kk < Chunk; ++kk)
        CC_UNROLL
        for (int i = 0; i < kCellRows; ++i)
            CC_UNROLL
            for (int a = 0; a < 2; ++a)
                CC_UNROLL
                for (int c = 0; c < 2; ++c) acc[kk][i][a][c] = 0.0f;

    for (int i = 0; i < g.in_per_group; ++i) {
        __syncthreads();
        stage_channel<1, Chunk>(g, plan, b, first_strip, kCellRows, i, cursor, windows, weights);
        __syncthreads();
        if (!b.active) continue;
        const float* win = windows + b.strip_local * plan.in.stride;
        float v[kCellRows + 1][2]; // dy rows p - 1, p, ...; columns q - 1, q
        CC_UNROLL
        for (int r = 0; r < kCellRows + 1; ++r)
            CC_UNROLL
            for (int u = 0; u < 2; ++u) v[r][u] = win[slot<1>(plan.in, r, b.col_local + u)];
        CC_UNROLL
        for (int r = 0; r < 3; ++r) {
            const int a = r & 1, t = r >> 1;
            CC_UNROLL
            for (int s = 0; s < 3; ++s) {
                const int c = s & 1, u = s >> 1;
                float wv[Chunk];
                load_chunk<Chunk>(weights + (r * 3 + s) * Chunk, wv);
                CC_UNROLL
                for (int kk = 0; kk < Chunk; ++kk)
                    CC_UNROLL
                    for (int cell = 0; cell < kCellRows; ++cell)
                        acc[kk][cell][a][c] = fmaf(v[cell + 1 - t][1 - u], wv[kk], acc[kk][cell][a][c]);
            }
        }
    }
    if (!b.active) return;
    const Strip mine = locate(plan, first_strip + b.strip_local, kCellRows);
    const int q = mine.col0 + b.col_local;
    CC_UNROLL
    for (int kk = 0; kk < Chunk; ++kk) {
        if (kk >= b.count) continue;
        float* plane = g.out + (mine.n * g.out_channels + b.o0 + kk) * g.out_h * g.out_w;
        CC_UNROLL
        for (int cell = 0; cell < kCellRows; ++cell) {
            CC_UNROLL
            for (int a = 0; a < 2; ++a) {
                const int h = 2 * (mine.row0 + cell) - g.pad_h + a;
                if (h < 0 || h >= g.out_h) continue;
                CC_UNROLL
                for (int c = 0; c < 2; ++c) {
                    const int wc = 2 * q - g.pad_w + c;
                    if (wc >= 0 && wc < g.out_w) g.store(&plane[h * g.out_w + wc], acc[kk][cell][a][c]);
                }
            }
        }
    }
}

// Backward-weight: at.y = (input channel c, chunk of its group's filters), at.x = split of the strips. The block
// writes its partial weights to out.partials (dw itself with one split), then with several splits the last one
// of its at.y adds the slots into out.dw.
template <int Stride, int Chunk>
__device__ __forceinline__ void weight_tiles(const cc_conv_problem& pr, const cc_tiled_plan& plan, const float* __restrict__ x,
                                             const float* __restrict__ dy, const cc_split_target& out, const cc_block_place& at, float* windows,
                                             float* reduce)
{
    constexpr int WindowRows = (kRows - 1) * Stride + 3;
    const int cpg = pr.c / pr.groups, kpg = pr.k / pr.groups;
    const int split_begin = at.x * plan.strips_per_split;
    const int split_end = min(plan.strip_count, split_begin + plan.strips_per_split);
    // block_work's "group" is here the input channel: at.y = c * chunks_per_group + chunk.
    const BlockWork b = block_work(plan, at.y, 0, plan.strips, kpg, Chunk);
    const int c = b.group;
    const int group = c / cpg;
    const int k0 = group * kpg + (b.o0 - c * kpg);
    const VectorCursor x_cursor = vector_cursor(plan.in, b.lane);
    const VectorCursor dy_cursor = vector_cursor(plan.grad, b.lane);
    float* grads = windows + plan.strips * plan.in.stride;

    float acc[Chunk][kTaps];
    CC_UNROLL
    for (int kk = 0; kk < Chunk; ++kk)
        CC_UNROLL
        for (int t = 0; t < kTaps; ++t) acc[kk][t] = 0.0f;

    for (int base = split_begin; base < split_end; base += plan.strips) {
        __syncthreads();
        for (int j = b.warp; j < plan.strips && base + j < split_end; j += kWarps) {
            const Strip s = locate(plan, base + j, kRows);
            const float* x_plane = x + (s.n * pr.c + c) * pr.h * pr.w;
            stage_window<Stride>(plan.in, x_plane, s.row0 * Stride - pr.pad_h, s.col0 * Stride - pr.pad_w, windows + j * plan.in.stride,
                                 b.lane, x_cursor);
            CC_UNROLL
            for (int kk = 0; kk < Chunk; ++kk) {
                if (kk >= b.count) continue;
                const float* dy_plane = dy + (s.n * pr.k + k0 + kk) * pr.p * pr.q;
                stage_window<1>(plan.grad, dy_plane, s.row0, s.col0, grads + (kk * plan.strips + j) * plan.grad.stride, b.lane, dy_cursor);
            }
        }
        __syncthreads();
        if (!b.active || base + b.strip_local >= split_end) continue;
        const float* win = windows + b.strip_local * plan.in.stride;
        float v[WindowRows][3];
        CC_UNROLL
        for (int r = 0; r < WindowRows; ++r)
            CC_UNROLL
            for (int s = 0; s < 3; ++s) v[r][s] = win[slot<Stride>(plan.in, r, b.col_local * Stride + s)];
        CC_UNROLL
        for (int kk = 0; kk < Chunk; ++kk) {
            if (kk >= b.count) continue;
            const float* grad = grads + (kk * plan.strips + b.strip_local) * plan.grad.stride;
            float gv[kRows];
            CC_UNROLL
            for (int row = 0; row < kRows; ++row) gv[row] = grad[slot<1>(plan.grad, row, b.col_local)];
            CC_UNROLL
            for (int tap = 0; tap < kTaps; ++tap) {
                const int r = tap / 3, s = tap % 3;
                CC_UNROLL
                for (int row = 0; row < kRows; ++row) acc[kk][tap] = fmaf(gv[row], v[row * Stride + r][s], acc[kk][tap]);
            }
        }
    }

    // The block's sum in a fixed order: a butterfly within each warp, then the warps in order.
    CC_UNROLL
    for (int kk = 0; kk < Chunk; ++kk)
        CC_UNROLL
        for (int t = 0; t < kTaps; ++t) {
            float value = acc[kk][t];
            for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
            if (b.lane == 0) reduce[b.warp * Chunk * kTaps + kk * kTaps + t] = value;
        }
    __syncthreads();
    // Thread b.tid < Chunk * kTaps owns weight (kk, tap) of the block (when the chunk has filter kk).
    const int kk = b.tid / kTaps, tap = b.tid - kk * kTaps;
    const bool owner = b.tid < Chunk * kTaps && kk < b.count;
    const int weight_elements = pr.k * cpg * kTaps;
    const int element = ((k0 + kk) * cpg + (c - group * cpg)) * kTaps + tap;
    if (owner) {
        float sum = reduce[b.tid];
        for (int w = 1; w < kWarps; ++w) sum += reduce[w * Chunk * kTaps + b.tid];
        out.partials[at.x * weight_elements + element] = sum;
    }
    // Every thread takes part in the arrival (it holds barriers); the last split adds the block's weights.
    if (out.splits == 1 || !cc_split_arrive(out, at.y)) return;
    if (owner) cc_split_sum(out, weight_elements, element);
}

// The shared memory of every tiled pass: the staged windows and, after them, the weights of a gather pass's chunk
// (kTaps * kWideChunk) or the per-warp sums of a weight pass (kWarps * kWeightChunk * kTaps). Declared here, once,
// so that a kernel running both passes (the fused backward) has one copy of each array, not one per pass: two
// 40 KiB window arrays would not fit the 48 KiB of static shared memory.
template <int ScratchFloats>
struct TiledShared {
    float* windows;
    float* scratch;
};
template <int ScratchFloats>
__device__ __forceinline__ TiledShared<ScratchFloats> tiled_shared()
{
    CC_STATIC_SHARED(float, windows, [CC_TILED_SHARED_FLOATS]);
    CC_STATIC_SHARED(float, scratch, [ScratchFloats]);
    return TiledShared<ScratchFloats>{windows, scratch};
}
constexpr int kGatherScratch = kTaps * kWideChunk;
constexpr int kWeightScratch = kWarps * kWeightChunk * kTaps;
constexpr int kBothScratch = kGatherScratch > kWeightScratch ? kGatherScratch : kWeightScratch;

// The gather passes at their chunk of output channels per thread (the plan's choice). Cells: the stride-2
// backward-data.
template <int Stride, bool Cells, int ScratchFloats, bool Statistics = false, bool Residual = false>
__device__ __forceinline__ void gather_pass(const Gather& g, const cc_tiled_plan& plan, const cc_block_place& at,
                                            TiledShared<ScratchFloats> shared)
{
    static_assert(ScratchFloats >= kGatherScratch, "room for the widest chunk's weights");
    float* windows = shared.windows;
    float* weights = shared.scratch;
    if (Cells) {
        if (plan.chunk == 1) scatter_cells<1>(g, plan, at, windows, weights);
        else if (plan.chunk == kNarrowChunk) scatter_cells<kNarrowChunk>(g, plan, at, windows, weights);
        else scatter_cells<kWideChunk>(g, plan, at, windows, weights);
    } else {
        if (plan.chunk == 1) gather_tiles<Stride, 1, Statistics, Residual>(g, plan, at, windows, weights);
        else if (plan.chunk == kNarrowChunk) gather_tiles<Stride, kNarrowChunk, Statistics, Residual>(g, plan, at, windows, weights);
        else gather_tiles<Stride, kWideChunk, Statistics, Residual>(g, plan, at, windows, weights);
    }
}

template <int Stride, int ScratchFloats>
__device__ __forceinline__ void weight_pass(const cc_conv_problem& pr, const cc_tiled_plan& plan, const float* __restrict__ x,
                                            const float* __restrict__ dy, const cc_split_target& out, const cc_block_place& at,
                                            TiledShared<ScratchFloats> shared)
{
    static_assert(ScratchFloats >= kWeightScratch, "room for every warp's sums");
    if (plan.chunk == 1) weight_tiles<Stride, 1>(pr, plan, x, dy, out, at, shared.windows, shared.scratch);
    else weight_tiles<Stride, kWeightChunk>(pr, plan, x, dy, out, at, shared.windows, shared.scratch);
}

// The fused backward pass (cheapconv/fused_grid.h): the launch's first blocks compute the weight gradient, the rest
// the data gradient (stride 1: the flipped-filter gather; stride 2: the 2x2 cells), both on one set of shared arrays.
template <int Stride>
__device__ __forceinline__ void backward_both(const cc_conv_problem& pr, const cc_fused_grid& grid, const cc_tiled_plan& data_plan,
                                              const cc_tiled_plan& weight_plan, const float* __restrict__ x,
                                              const float* __restrict__ dy, const float* __restrict__ w, float* __restrict__ dx,
                                              int accumulate, const cc_split_target& dw)
{
    const TiledShared<kBothScratch> shared = tiled_shared<kBothScratch>();
    const int index = (int)blockIdx.x, weight_blocks = cc_grid_blocks(grid.weight);
    if (index < weight_blocks) {
        weight_pass<Stride>(pr, weight_plan, x, dy, dw, cc_place_in(grid.weight, index), shared);
        return;
    }
    const cc_block_place at = cc_place_in(grid.data, index - weight_blocks);
    gather_pass<1, Stride == 2>(backward_data_roles(pr, dy, w, dx, Stride == 1, accumulate), data_plan, at, shared);
}

} // namespace

extern "C" __global__ void cc_conv2d_tiled_forward_s1_kernel(cc_conv_problem pr, cc_tiled_plan plan, const float* __restrict__ x,
                                                             const float* __restrict__ w, float* __restrict__ y)
{
    gather_pass<1, false>(forward_roles(pr, x, w, nullptr, y, nullptr), plan, cc_own_place(), tiled_shared<kGatherScratch>());
}

extern "C" __global__ void cc_conv2d_tiled_forward_s2_kernel(cc_conv_problem pr, cc_tiled_plan plan, const float* __restrict__ x,
                                                             const float* __restrict__ w, float* __restrict__ y)
{
    gather_pass<2, false>(forward_roles(pr, x, w, nullptr, y, nullptr), plan, cc_own_place(), tiled_shared<kGatherScratch>());
}

// cc_conv_forward_bn_stats on the tiled plan: y = conv(x, w) [+ residual], and the batch-norm statistics slots of y. Two
// resident blocks per SM, as the plain forward kernels have (96 and 128 registers): the residual's loads would otherwise
// take the kernel to 138 registers and one block (nvcc 11.8, sm_90); with the bound it needs 127, without spilling.
extern "C" __global__ void __launch_bounds__(kThreads, 2) cc_conv2d_tiled_forward_bn_stats_s1_kernel(cc_conv_problem pr, cc_tiled_plan plan, const float* __restrict__ x,
                                                                      const float* __restrict__ w, float* __restrict__ y,
                                                                      float* __restrict__ stats)
{
    gather_pass<1, false, kGatherScratch, true, false>(forward_roles(pr, x, w, nullptr, y, stats), plan, cc_own_place(),
                                                       tiled_shared<kGatherScratch>());
}

extern "C" __global__ void __launch_bounds__(kThreads, 2) cc_conv2d_tiled_forward_bn_stats_s2_kernel(cc_conv_problem pr, cc_tiled_plan plan, const float* __restrict__ x,
                                                                      const float* __restrict__ w, float* __restrict__ y,
                                                                      float* __restrict__ stats)
{
    gather_pass<2, false, kGatherScratch, true, false>(forward_roles(pr, x, w, nullptr, y, stats), plan, cc_own_place(),
                                                       tiled_shared<kGatherScratch>());
}

extern "C" __global__ void __launch_bounds__(kThreads, 2) cc_conv2d_tiled_forward_residual_bn_stats_s1_kernel(cc_conv_problem pr, cc_tiled_plan plan,
                                                                               const float* __restrict__ x, const float* __restrict__ w,
                                                                               const float* __restrict__ residual, float* __restrict__ y,
                                                                               float* __restrict__ stats)
{
    gather_pass<1, false, kGatherScratch, true, true>(forward_roles(pr, x, w, residual, y, stats), plan, cc_own_place(),
                                                      tiled_shared<kGatherScratch>());
}

extern "C" __global__ void __launch_bounds__(kThreads, 2) cc_conv2d_tiled_forward_residual_bn_stats_s2_kernel(cc_conv_problem pr, cc_tiled_plan plan,
                                                                               const float* __restrict__ x, const float* __restrict__ w,
                                                                               const float* __restrict__ residual, float* __restrict__ y,
                                                                               float* __restrict__ stats)
{
    gather_pass<2, false, kGatherScratch, true, true>(forward_roles(pr, x, w, residual, y, stats), plan, cc_own_place(),
                                                      tiled_shared<kGatherScratch>());
}

extern "C" __global__ void cc_conv2d_tiled_backward_data_s1_kernel(cc_conv_problem pr, cc_tiled_plan plan, const float* __restrict__ dy,
                                                                   const float* __restrict__ w, float* __restrict__ dx, int accumulate)
{
    gather_pass<1, false>(backward_data_roles(pr, dy, w, dx, true, accumulate), plan, cc_own_place(), tiled_shared<kGatherScratch>());
}

extern "C" __global__ void cc_conv2d_tiled_backward_data_s2_kernel(cc_conv_problem pr, cc_tiled_plan plan, const float* __restrict__ dy,
                                                                   const float* __restrict__ w, float* __restrict__ dx, int accumulate)
{
    gather_pass<1, true>(backward_data_roles(pr, dy, w, dx, false, accumulate), plan, cc_own_place(), tiled_shared<kGatherScratch>());
}

extern "C" __global__ void cc_conv2d_tiled_backward_weight_s1_kernel(cc_conv_problem pr, cc_tiled_plan plan, const float* __restrict__ x,
                                                                     const float* __restrict__ dy, cc_split_target out)
{
    weight_pass<1>(pr, plan, x, dy, out, cc_own_place(), tiled_shared<kWeightScratch>());
}

extern "C" __global__ void cc_conv2d_tiled_backward_weight_s2_kernel(cc_conv_problem pr, cc_tiled_plan plan, const float* __restrict__ x,
                                                                     const float* __restrict__ dy, cc_split_target out)
{
    weight_pass<2>(pr, plan, x, dy, out, cc_own_place(), tiled_shared<kWeightScratch>());
}

// Both gradients of a stride-1 problem in one launch (cc_conv_backward): the blocks of
// cc_conv2d_tiled_backward_weight_s1_kernel (weight_plan, dw), then those of cc_conv2d_tiled_backward_data_s1_kernel
// (data_plan, dx, accumulate).
extern "C" __global__ void cc_conv2d_tiled_backward_s1_kernel(cc_conv_problem pr, cc_fused_grid grid, cc_tiled_plan data_plan,
                                                              cc_tiled_plan weight_plan, const float* __restrict__ x,
                                                              const float* __restrict__ dy, const float* __restrict__ w,
                                                              float* __restrict__ dx, int accumulate, cc_split_target dw)
{
    backward_both<1>(pr, grid, data_plan, weight_plan, x, dy, w, dx, accumulate, dw);
}

// The same for stride 2: the blocks of cc_conv2d_tiled_backward_weight_s2_kernel, then those of
// cc_conv2d_tiled_backward_data_s2_kernel.
extern "C" __global__ void cc_conv2d_tiled_backward_s2_kernel(cc_conv_problem pr, cc_fused_grid grid, cc_tiled_plan data_plan,
                                                              cc_tiled_plan weight_plan, const float* __restrict__ x,
                                                              const float* __restrict__ dy, const float* __restrict__ w,
                                                              float* __restrict__ dx, int accumulate, cc_split_target dw)
{
    backward_both<2>(pr, grid, data_plan, weight_plan, x, dy, w, dx, accumulate, dw);
}

CC_REGISTER_KERNEL(cc_conv2d_tiled_forward_s1_kernel);
CC_REGISTER_KERNEL(cc_conv2d_tiled_forward_s2_kernel);
CC_REGISTER_KERNEL(cc_conv2d_tiled_forward_bn_stats_s1_kernel);
CC_REGISTER_KERNEL(cc_conv2d_tiled_forward_bn_stats_s2_kernel);
CC_REGISTER_KERNEL(cc_conv2d_tiled_forward_residual_bn_stats_s1_kernel);
CC_REGISTER_KERNEL(cc_conv2d_tiled_forward_residual_bn_stats_s2_kernel);
CC_REGISTER_KERNEL(cc_conv2d_tiled_backward_data_s1_kernel);
CC_REGISTER_KERNEL(cc_conv2d_tiled_backward_data_s2_kernel);
CC_REGISTER_KERNEL(cc_conv2d_tiled_backward_weight_s1_kernel);
CC_REGISTER_KERNEL(cc_conv2d_tiled_backward_weight_s2_kernel);
CC_REGISTER_KERNEL(cc_conv2d_tiled_backward_s1_kernel);
CC_REGISTER_KERNEL(cc_conv2d_tiled_backward_s2_kernel);
