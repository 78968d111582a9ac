/* CheapConv CUDA emulator: C API of libcheapconv_emu.so / libcheapconv_emu_test.so.
 *
 * The library contains the kernels of native/kernels/<name>.cu compiled as host C++ (the _test variant adds
 * the deliberately faulty diagnostic kernels of native/tests/kernels/<name>.cu) and runs them on the CPU:
 * blocks are spread over a pool of OS threads, each block runs to completion on one of them, and each
 * CUDA thread is a fiber. "Device memory" is plain host memory owned by the caller.
 *
 * All functions are thread-safe. Launches are synchronous and serialized (one at a time, in parallel
 * inside), so concurrent callers simply queue. No function throws or aborts: errors are status codes.
 */
#ifndef CHEAPCONV_CC_EMU_H
#define CHEAPCONV_CC_EMU_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CC_EMU_API __attribute__((visibility("default")))
#else
#define CC_EMU_API
#endif

/* Incremented whenever this API or its behaviour changes incompatibly. */
#define CC_EMU_VERSION 2

typedef struct cc_dim3 { unsigned x, y, z; } cc_dim3;

/* Status codes. The CUDA ones have the CUDA driver's values and names. */
enum {
    CC_EMU_SUCCESS = 0,                  /* CUDA_SUCCESS */
    CC_EMU_ERROR_INVALID_VALUE = 1,      /* CUDA_ERROR_INVALID_VALUE: bad geometry, too much shared memory, null args */
    CC_EMU_ERROR_OUT_OF_MEMORY = 2,      /* CUDA_ERROR_OUT_OF_MEMORY: fiber stacks or shared memory could not be allocated */
    CC_EMU_ERROR_NOT_FOUND = 500,        /* CUDA_ERROR_NOT_FOUND: no kernel of that name */
    /* Emulator diagnostics (no CUDA equivalent: on a GPU these are hangs or undefined behaviour). */
    CC_EMU_DIVERGENT_BARRIER = 10001,    /* threads of a block wait at different __syncthreads call sites */
    CC_EMU_DEADLOCK = 10002,             /* no thread of a block can make progress (e.g. barrier vs warp op) */
    CC_EMU_WARP_MISMATCH = 10003,        /* lanes of one warp op disagree on mask, op or call site; own bit not in mask; bad width */
    CC_EMU_INACTIVE_LANE_READ = 10004,   /* a shuffle reads a lane that is not participating (not in mask, exited, nonexistent) */
    CC_EMU_EXITED_AT_BARRIER = 10005,    /* strict mode only: threads returned while others wait at __syncthreads */
    CC_EMU_INVALID_OPERAND = 10006       /* a warp-collective operand the GPU would fault on (ldmatrix: a misaligned row) */
};

/* CC_EMU_VERSION of the loaded library. */
CC_EMU_API int cc_emu_version(void);

/* Runs `kernel` on grid x block threads. args[i] points at the i-th kernel argument, exactly as for
 * cuLaunchKernel. Returns 0 on success. `message` (may be NULL) receives, NUL-terminated and truncated
 * to message_capacity, the error text on failure, warnings on success, or "" if there is nothing to
 * say. The text starts with the status name, e.g. "CC_EMU_DIVERGENT_BARRIER: kernel ..., block ...". */
CC_EMU_API int cc_emu_launch(const char* kernel, cc_dim3 grid, cc_dim3 block, unsigned dynamic_shared_bytes,
                             void** args, char* message, int message_capacity);

/* The per-block dynamic shared memory a launch may ask for: 48 KiB, as on a GPU, unless the kernel was opted in
 * to more. */
#define CC_EMU_DEFAULT_DYNAMIC_SHARED (48 * 1024)
/* The most a kernel can be opted in to: 163 KiB (166912 bytes), the sm_80 limit (227 KiB on sm_90); the
 * kernels are built for both, so the smaller one holds. */
#define CC_EMU_MAX_DYNAMIC_SHARED (163 * 1024)

/* cuFuncSetAttribute(kernel, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes): later launches of
 * `kernel` may use up to `bytes` of dynamic shared memory. Returns 0, CUDA_ERROR_NOT_FOUND for an unknown
 * kernel, or CUDA_ERROR_INVALID_VALUE for bytes above CC_EMU_MAX_DYNAMIC_SHARED. */
CC_EMU_API int cc_emu_set_max_dynamic_shared(const char* kernel, unsigned bytes);

/* "CUDA_SUCCESS", "CUDA_ERROR_INVALID_VALUE", "CC_EMU_DEADLOCK", ...; "CC_EMU_UNKNOWN_STATUS" otherwise. */
CC_EMU_API const char* cc_emu_status_name(int status);

/* Registered kernels, sorted by name. kernel_name returns NULL for an index out of range. */
CC_EMU_API int cc_emu_kernel_count(void);
CC_EMU_API const char* cc_emu_kernel_name(int index);

/* Number of OS threads that run blocks (the calling thread is one of them). 0 = hardware concurrency,
 * capped at 16. Returns 0, or CUDA_ERROR_INVALID_VALUE for a count outside 0..256. Takes effect for the
 * next launch. */
CC_EMU_API int cc_emu_set_worker_threads(int count);

/* Nonzero (the default): the C ABI's launchers of this library may pick the thread-block-cluster kernels, as on the
 * H100 the emulator stands for (sm_90, running the fatbin's sm_90 SASS). 0: they take the paths of a device without
 * them (an sm_80 GPU, or any GPU running the clang PTX), e.g. so that tests can run and profile those kernels too.
 * Takes effect for the next C ABI call, on every handle. Returns the previous setting. */
CC_EMU_API int cc_emu_set_cluster_kernels(int enabled);

/* Nonzero: threads that returned while others wait at __syncthreads are an error
 * (CC_EMU_EXITED_AT_BARRIER) instead of a warning. Returns the previous setting. */
CC_EMU_API int cc_emu_set_strict(int strict);

/* The warnings of the C ABI's launches (the cc_* calls of cheapconv.h, which return only a status) since the
 * last call, from every thread and handle of this library: one line per launch that warned,
 *   "KERNEL (grid (x,y,z), block (x,y,z)): warning: kernel KERNEL, block (...), ... (CC_EMU_EXITED_AT_BARRIER)\n",
 * and, if more came than the library keeps (64 KiB), a last line saying how many were dropped.
 * Returns the length of that text (without the NUL). When it fits in `capacity` (length + 1 bytes or more),
 * copies it NUL-terminated into `text` and forgets it; otherwise (or when `text` is NULL) copies and forgets
 * nothing, so a caller can ask for the length with (NULL, 0) and call again with a large enough buffer
 * (repeating if more warnings came in between). cc_emu_launch's own warnings come back in its `message` and
 * are not kept here. Exported by the emulator libraries only. */
CC_EMU_API size_t cc_emu_take_warnings(char* text, size_t capacity);

#ifdef __cplusplus
}
#endif

#endif
