/* The x window ("halo") of the implicit-GEMM 3x3 forward kernels (kernels/implicit_gemm.cu, the stride-1 path): how
 * one input channel of a block's window lies in shared memory. Planned once per problem by the launcher
 * (launch/conv_implicit_gemm.cpp, halo_plan_for) and passed to the kernels by value; plain ints only, so the layout is
 * the same for nvcc, clang (PTX) and the host compiler.
 *
 * Vocabulary. A block's columns are output positions (n, p, q); with stride 1 the output row (n, p) reads the window
 * rows u = n (P + 2) + p + r, r = 0, 1, 2, i.e. input row h = p - pad_h + r of image n (rows outside the image are
 * padding). The block's window is the run of window rows from its first column's to its last's + 2, each W + 2 pad_w
 * columns wide (input columns -pad_w .. W + pad_w - 1), for one input channel: a "slot". The kernel keeps
 * CC_HALO_SLOTS slots in a ring (channel c in slot c % CC_HALO_SLOTS) and copies each channel once per block,
 * instead of gathering each x element once per filter tap.
 * Element (window row i, input column w) of slot s is at s * slot_stride + lead + i * row_stride + w. The strides
 * keep the B fragment reads free of bank conflicts where Q is a multiple of 8 (the launcher's rule says why), and the
 * 16-byte copies too, in the order XWindow::row_and_piece gives them.
 */
#ifndef CHEAPCONV_HALO_PLAN_H
#define CHEAPCONV_HALO_PLAN_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
    /* Channel slots in the ring. While tile t of 16 reduction indices (k = 9 c + 3 r + s) is copied, tiles t - 2 and
     * t - 1 may still be read: 48 consecutive indices, at most 47 / 9 + 2 = 7 channels; 8 makes the slot a mask. */
    CC_HALO_SLOTS = 8
};

typedef struct cc_halo_plan {
    int row_stride;  /* floats between window rows; 0: no window, the kernel gathers x per tap as before */
    int slot_stride; /* floats between channel slots */
    int lead;        /* floats before input column 0 of window row 0 in a slot: room for the left padding, a multiple of 4 */
    int vector;      /* 1: x's rows are copied 16 bytes at a time (W % 4 == 0 and x 16-byte aligned) */
} cc_halo_plan;

#ifdef __cplusplus
}
#endif

#endif
