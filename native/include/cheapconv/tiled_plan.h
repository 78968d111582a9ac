/* The launch plan of the tiled 3x3 convolution kernels (kernels/conv2d_tiled.cu), computed once per problem by
 * the launcher (launch/conv_tiled.cpp) and passed to the kernels by value. Plain ints only, so the layout is the
 * same for nvcc, clang (PTX) and the host compiler.
 *
 * Vocabulary (see the kernel file's header for the whole picture):
 *   strip   tile_w output columns x kTiledRows output rows of one image: one thread per column, each thread
 *           computing the kTiledRows outputs of its column (for the stride-2 backward-data: its 2x2 cells).
 *   window  what one strip reads of one input plane, staged in shared memory: the strip's footprint plus its
 *           halo, zero outside the tensor. Every strip has its own window (halos are staged once per strip).
 */
#ifndef CHEAPCONV_TILED_PLAN_H
#define CHEAPCONV_TILED_PLAN_H

#ifdef __cplusplus
extern "C" {
#endif

/* Fixed by the kernels' code: the launcher plans with the same numbers. */
enum {
    CC_TILED_THREADS = 256,      /* threads per block, every tiled kernel */
    CC_TILED_ROWS = 4,           /* output rows per thread (forward, stride-1 backward-data, backward-weight) */
    CC_TILED_CELL_ROWS = 2,      /* stride-2 backward-data: 2x2 dx cells per thread, down its column */
    CC_TILED_WIDE_CHUNK = 8,     /* output channels per thread where a group has more than one (forward, backward-data) */
    CC_TILED_NARROW_CHUNK = 4,   /* ... where a group has at most 4, or the wide chunk leaves the GPU short of warps */
    CC_TILED_WEIGHT_CHUNK = 4,   /* filters per block in the backward-weight where a group has more than one */
    CC_TILED_SHARED_FLOATS = 10240 /* the staged windows of one block: 40 KiB of static shared memory */
};

/* How one strip's window of one plane lies in the tensor and in shared memory. */
typedef struct cc_tiled_window {
    int row_offset, col_offset; /* tensor row/column of window (0, 0): tile origin * step + offset */
    int row_step, col_step;     /* the tile origin's step: the stride for x read by a strided pass, else 1 */
    int rows, cols;             /* window extent */
    int pitch;                  /* floats between window rows in shared memory */
    int lead;                   /* stride-1 layout: shared column of window column 0 (aligns float4 stores) */
    int odd;                    /* stride-2 layout: offset of the odd window columns within a row (even ones at 0) */
    int stride;                 /* floats between the windows of consecutive strips (== tile_w mod 32: no bank conflicts) */
    int vector;                 /* 1: staged with 16-byte loads (whole rows, aligned); the launcher sets it per call */
    int vector_rows, vector_cols; /* 16-byte staging: how far 32 lanes' float4s advance, as (rows, columns) of the plane */
    int plane_h, plane_w;       /* the tensor plane the window reads */
} cc_tiled_window;

typedef struct cc_tiled_plan {
    int tile_w;           /* output columns (threads) per strip, 1..32 */
    int strips;           /* strips per block; strips * tile_w <= the block's 256 threads */
    int row_tiles;        /* strips down a plane */
    int col_tiles;        /* strips across a plane */
    int strip_count;      /* n * row_tiles * col_tiles */
    int chunk;            /* output channels one thread computes: 1, CC_TILED_NARROW_CHUNK or CC_TILED_WIDE_CHUNK
                             (backward-weight: 1 or CC_TILED_WEIGHT_CHUNK) */
    int chunks_per_group; /* ceil(output channels per group / chunk) */
    int strips_per_split; /* backward-weight: strips one block sums (a multiple of strips); 0 elsewhere */
    cc_tiled_window in;   /* the gathered input: x (forward, backward-weight) or dy (backward-data) */
    cc_tiled_window grad; /* backward-weight: dy, tile_w x kTiledRows per strip and channel; unused elsewhere */
} cc_tiled_plan;

#ifdef __cplusplus
}
#endif

#endif
