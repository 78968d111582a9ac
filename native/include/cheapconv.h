/* cheapconv.h — the C ABI of the CheapConv kernel library.
 *
 * Two shared libraries export exactly this ABI:
 *   libcheapconv.so      runs the kernels on an NVIDIA GPU through the CUDA driver API. The driver
 *                        (libcuda.so.1) is loaded at run time with dlopen: building and linking need no
 *                        CUDA toolkit, and a machine without a GPU gets CC_ERROR_NO_DEVICE, not a
 *                        loader error. Pointers are CUDA device pointers, streams are CUstream.
 *   libcheapconv_emu.so  runs the same kernels (the same native/kernels/ sources, compiled as host C++)
 *                        on the CPU in the CUDA emulator. Pointers are host pointers; streams are
 *                        ignored (pass NULL) and every call has finished when it returns.
 * The same launcher code decides the kernel variant, grid, block and shared memory in both.
 *
 * Conventions, for every call below:
 *   - Includable from C99 and C++; needs no CUDA header. Contexts and streams are `void*`
 *     (a CUcontext / CUstream); NULL stream = the context's default (legacy) stream.
 *   - Tensors are fp32, densely packed, NCHW (cc_conv_problem.layout/dtype say so explicitly).
 *   - A call never allocates device memory and never waits for the host: work that needs scratch takes a
 *     caller-provided workspace of at least the size its *_workspace_size query returned (NULL with 0
 *     bytes when that is 0). Launches are asynchronous on the given stream (emulator: synchronous).
 *   - A split weight gradient (cc_conv_backward_weight, cc_linear_backward_weight with a workspace size
 *     over 0) is reduced in the same launch that computes it: the block that finishes a tile last adds the
 *     splits' partial sums in a fixed order. It counts the arrivals in the first CC_SPLIT_COUNTER_BYTES of
 *     its workspace, which must be zero when the call starts; the call leaves them zero again (so a
 *     captured graph replays without a memset). Zero a new workspace once (e.g. cuMemsetD8Async) before its
 *     first such call, and do not pass those first bytes to calls that use their workspace as plain scratch
 *     (cc_sum, the losses), or zero them again afterwards. After a call that failed on the device, zero them
 *     again too. The rest of the workspace is scratch.
 *   - Every call returns a cc_status. On failure, cc_last_error() returns a readable message for the
 *     calling thread (what was wrong and what to do); nothing aborts the process.
 *   - Calls on one handle from several threads are safe; launches are ordered by their streams.
 *   - Outputs are overwritten, never accumulated into, unless a call says otherwise.
 *   - Tensor pointers must be non-NULL and 4-byte aligned. An output must not overlap an input unless the
 *     call says it may (the kernels read inputs through restrict pointers, the GPU's read-only cache);
 *     the launchers refuse overlaps they can see (CC_ERROR_INVALID_VALUE).
 *   - Integer labels live on the device and are not checked: they must lie in [0, classes).
 *   - Every reduction is deterministic: no floating-point atomics; the same inputs give the same bits.
 */
#ifndef CHEAPCONV_H
#define CHEAPCONV_H

#include <stddef.h>
#include <stdint.h>

#include "cheapconv/problem.h" /* cc_conv_problem: shared with the kernels themselves */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define CC_API __declspec(dllimport)
#elif defined(__GNUC__)
#define CC_API __attribute__((visibility("default")))
#else
#define CC_API
#endif

/* ---- version -------------------------------------------------------------------------------------- */

/* The ABI version this header describes: MAJOR changes break callers, MINOR adds calls or fields.
 * 1.1 added cc_first_nonfinite and cc_count_correct_f32; 1.2 stream capture and graphs (cc_capture_begin, ...) and
 * cc_memcpy_async / cc_memset8_async.
 * 2.0: cc_options gained `precision` (a struct a caller allocates changed size, so callers built against 1.x
 * must be rebuilt) and cc_algo CC_ALGO_IMPLICIT_GEMM.
 * 3.0: a split weight gradient reduces its splits in the same launch and needs the first CC_SPLIT_COUNTER_BYTES of
 * its workspace zero when it starts (a caller that passed uninitialised workspace must now zero it once);
 * cc_options gained `accumulate` and cc_batchnorm_problem `accumulate` (structs a caller allocates changed size):
 * the data gradients of cc_conv_backward_data and cc_batchnorm_backward can add into dx.
 * 3.1 added cc_conv_forward_fused and its cc_conv_epilogue (cheapconv/problem.h): a residual add and an eval-mode batch
 * norm + ReLU in the forward convolution's store.
 * 3.2 added cc_conv_backward (both gradients of a convolution, in one launch where the kernels allow) and its workspace
 * query CC_CONV_BACKWARD.
 * 3.3 added the training batch norm's statistics in the forward convolution's store: cc_conv_bn_stats_slots,
 * cc_conv_forward_bn_stats and cc_batchnorm_train_forward_from_stats, and the pass CC_CONV_FORWARD_BN_STATS of
 * cc_conv_kernel_names.
 * 3.4 added the input's training batch norm (+ ReLU) applied by the 1x1 tensor-core convolution as it reads its input (a
 * prologue): cc_conv_input_bn_supported, cc_conv_forward_input_bn and cc_conv_backward_input_bn with cc_conv_input_bn, and
 * the statistics alone, cc_batchnorm_train_statistics and cc_batchnorm_train_statistics_from_stats.
 * 3.4 also added the training batch norm's backward sums in the 1x1 data gradient's store: cc_conv_bn_sum_slots,
 * cc_conv_backward_data_bn_sums and cc_batchnorm_backward_from_sums. */
#define CC_VERSION_MAJOR 3
#define CC_VERSION_MINOR 4
#define CC_VERSION_PATCH 0
#define CC_VERSION (CC_VERSION_MAJOR * 10000 + CC_VERSION_MINOR * 100 + CC_VERSION_PATCH)

/* CC_VERSION of the loaded library. A caller built against MAJOR.x should refuse a library whose
 * cc_version() / 10000 differs. */
CC_API int cc_version(void);

/* ---- status --------------------------------------------------------------------------------------- */

typedef enum cc_status {
    CC_SUCCESS = 0,
    CC_ERROR_INVALID_VALUE = 1,     /* a descriptor, pointer, size or option is wrong (message says which) */
    CC_ERROR_NOT_SUPPORTED = 2,     /* a valid problem no kernel of this library implements (layout, dtype) */
    CC_ERROR_WORKSPACE = 3,         /* the workspace is NULL or smaller than the *_workspace_size query said */
    CC_ERROR_NO_DEVICE = 4,         /* no CUDA driver, no GPU, or no current context where one was asked for */
    CC_ERROR_DRIVER = 5,            /* a CUDA driver call failed (message names the call and the CUresult) */
    CC_ERROR_LAUNCH = 6,            /* a kernel launch failed (message names kernel, grid, block, problem) */
    CC_ERROR_EMULATOR = 7,          /* the emulator found a kernel fault (divergent barrier, deadlock, ...) */
    CC_ERROR_INTERNAL = 8           /* a bug in CheapConv: please report the message */
} cc_status;

/* "CC_SUCCESS", "CC_ERROR_INVALID_VALUE", ...; "CC_ERROR_UNKNOWN" for a value outside the enum. */
CC_API const char* cc_status_string(cc_status status);

/* The message of the last failed call made on the calling thread ("" if none). Valid until the thread's
 * next call into the library. */
CC_API const char* cc_last_error(void);

/* ---- handle --------------------------------------------------------------------------------------- */

/* A handle binds the library to one CUDA context and holds the kernels loaded into it: SASS for the
 * device's exact architecture where the embedded fatbin has it, else the embedded PTX (JIT-compiled by
 * the driver). Create it once and reuse it; it is cheap to call with and expensive to create. */
typedef struct cc_handle_s* cc_handle;

/* Pass as `device` to bind to the context current on the calling thread (the caller's own, e.g.
 * PyTorch's); CC_ERROR_NO_DEVICE if there is none. */
#define CC_CURRENT_CONTEXT (-1)

/* device >= 0: the primary context of that device ordinal (retained by the handle, released by
 * cc_destroy); CC_CURRENT_CONTEXT: the calling thread's current context (not retained: the caller keeps
 * it alive). The emulator ignores `device` (it has one CPU "device") except that a negative value other
 * than CC_CURRENT_CONTEXT is invalid. Calls made with the handle make its context current for their
 * duration when another one (or none) is current on the thread, and restore the previous one.
 * libcheapconv.so loads the driver from $CHEAPCONV_CUDA_DRIVER when set (else libcuda.so.1), and
 * $CHEAPCONV_CUDA_PTX_ONLY=1 makes it JIT-compile the PTX even where the fatbin has SASS for the device. */
CC_API cc_status cc_create(cc_handle* handle, int device);
CC_API cc_status cc_destroy(cc_handle handle);

/* What the handle runs on, NUL-terminated into `text` (truncated to `capacity`, which must be >= 1), e.g.
 *   "cuda: NVIDIA H100 80GB HBM3 (device 0, sm_90), kernels: SASS sm_90 from the fatbin"
 *   "cuda: NVIDIA A40 (device 0, sm_86), kernels: PTX sm_80 (JIT)"
 *   "emulator: 2 worker threads" */
CC_API cc_status cc_describe(cc_handle handle, char* text, size_t capacity);

/* CC_BACKEND_CUDA for libcheapconv.so, CC_BACKEND_EMULATOR for libcheapconv_emu.so. */
typedef enum cc_backend { CC_BACKEND_CUDA = 0, CC_BACKEND_EMULATOR = 1 } cc_backend;
CC_API cc_backend cc_backend_kind(void);

/* ---- options shared by the GEMM-based families --------------------------------------------------- */

/* The arrival counters at the start of a split weight gradient's workspace (see the conventions above): one
 * 32-bit counter per output tile of the launch, at most CC_SPLIT_COUNTER_BYTES / 4 of them; the partial sums
 * follow. Included in the *_workspace_size answers. */
#define CC_SPLIT_COUNTER_BYTES 65536

typedef enum cc_algo {
    CC_ALGO_AUTO = 0,     /* the launcher's choice (the fastest correct variant for the problem and precision) */
    CC_ALGO_DIRECT = 1,   /* the direct, correct-first kernels: the reference algorithm on the device */
    CC_ALGO_GEMM = 2,     /* the tiled fp32 GEMM kernels (1x1, groups 1, no padding, any stride); another
                             convolution asked for with it gets CC_ERROR_NOT_SUPPORTED, as does a linear
                             layer asked for with CC_ALGO_DIRECT */
    CC_ALGO_TILED = 3,    /* the tiled fp32 3x3 kernels for depthwise, grouped and dense convolutions (3x3
                             filters, stride 1 or 2 in both directions, any padding, groups and channels):
                             shared-memory tiles with halos, several outputs per thread, a deterministic split
                             weight gradient (workspace from cc_conv_workspace_size). AUTO takes them for every
                             such problem that the tensor-core kernels do not take; another problem asked for
                             with them gets CC_ERROR_NOT_SUPPORTED */
    CC_ALGO_IMPLICIT_GEMM = 4 /* the tensor-core (tf32 mma.sync) implicit GEMM kernels; needs CC_PRECISION_TF32 and
                             a problem they implement (CC_ERROR_NOT_SUPPORTED otherwise) */
} cc_algo;

/* The arithmetic a convolution may use. TF32 (the default, as PyTorch's for cuDNN convolutions) lets the
 * launcher run tensor-core kernels, which round x, w and dy to tf32 (10 mantissa bits: a relative error up
 * to 2^-11 per input) and accumulate in fp32; FP32 keeps every product exact in fp32 (the CUDA-core kernels). */
typedef enum cc_precision {
    CC_PRECISION_TF32 = 0,
    CC_PRECISION_FP32 = 1
} cc_precision;

/* Zero-initialised options mean "all defaults". */
typedef struct cc_options {
    int algo;             /* cc_algo */
    int split_chunk;      /* GEMM weight gradients (pointwise convolution, linear layer): reduction
                             indices per deterministic split; 0 = the launcher's choice; >= the reduction
                             length = one pass straight into dw (no workspace). The direct and tiled
                             kernels ignore it (the tiled weight gradient plans its own split). Negative is
                             invalid, and so is a chunk that splits a launch of more output tiles than
                             there are counters (CC_SPLIT_COUNTER_BYTES / 4; the launcher's own choice
                             then does not split). */
    int precision;        /* cc_precision: what CC_ALGO_AUTO may choose (CC_ALGO_DIRECT, CC_ALGO_GEMM and
                             CC_ALGO_TILED are fp32 whatever it says). The linear layer is always fp32. */
    int accumulate;       /* cc_conv_backward_data and cc_conv_backward (its dx) only: nonzero adds the data gradient
                             into dx (dx = dx + g, g rounded to fp32 first, so the bits are those of writing g and adding
                             it later, as an autograd does for a tensor with several consumers); 0 overwrites dx. Every
                             other call that takes options refuses a nonzero value (CC_ERROR_INVALID_VALUE). */
} cc_options;

/* ---- convolution (cc_conv_problem in cheapconv/problem.h) ----------------------------------------- */

/* Fills a descriptor (layout NCHW, dtype fp32) and derives p and q. Returns CC_ERROR_INVALID_VALUE
 * (with the reason) for an impossible problem, as cc_conv_validate does; the descriptor then holds the
 * given fields (p and q 0 where they are undefined). */
CC_API cc_status cc_conv_init(cc_conv_problem* problem, int n, int c, int h, int w, int k, int r, int s,
                              int pad_h, int pad_w, int stride_h, int stride_w, int groups);

/* Checks a descriptor: positive sizes, groups dividing c and k, p and q consistent with the rest, every
 * tensor under 2^31 elements, a layout and dtype this library implements. */
CC_API cc_status cc_conv_validate(const cc_conv_problem* problem);

/* CC_CONV_BACKWARD: both gradients, as cc_conv_backward computes them. CC_CONV_FORWARD_BN_STATS: the forward pass as
 * cc_conv_forward_bn_stats runs it (cc_conv_kernel_names and cc_conv_workspace_size only). */
typedef enum cc_conv_pass {
    CC_CONV_FORWARD = 0,
    CC_CONV_BACKWARD_DATA = 1,
    CC_CONV_BACKWARD_WEIGHT = 2,
    CC_CONV_BACKWARD = 3,
    CC_CONV_FORWARD_BN_STATS = 4
} cc_conv_pass;

/* Workspace bytes the pass needs with these options (options may be NULL): 0, or for a split weight gradient
 * CC_SPLIT_COUNTER_BYTES of arrival counters (zero before the call: see the conventions) plus one partial dw
 * per split. CC_CONV_BACKWARD: the weight gradient's bytes (first, so its counters open the workspace) plus the data
 * gradient's after them (rounded up to 16 bytes); enough for cc_conv_backward with or without either output. */
CC_API cc_status cc_conv_workspace_size(const cc_conv_problem* problem, cc_conv_pass pass,
                                        const cc_options* options, size_t* bytes);

/* The kernel a pass would run, for messages and profiles: "cc_conv2d_forward_kernel",
 * "cc_pointwise_backward_weight_kernel" (a split weight gradient is one launch: it reduces its own splits).
 * CC_CONV_BACKWARD (cc_conv_backward with both outputs): the fused kernel, e.g. "cc_implicit_gemm_backward_1x1_kernel",
 * or, where the two gradients run as two launches, their kernels in launch order separated by a space
 * ("cc_conv2d_backward_data_kernel cc_conv2d_backward_weight_kernel"). CC_CONV_FORWARD_BN_STATS: the forward kernel that
 * also writes the statistics without a residual (the tiled kernels add one in another kernel), then the batch norm's
 * ("cc_implicit_gemm_forward_1x1_kernel cc_batchnorm_train_forward_from_stats_kernel"), or cc_conv_bn_stats_slots's
 * CC_ERROR_NOT_SUPPORTED. */
CC_API cc_status cc_conv_kernel_names(const cc_conv_problem* problem, cc_conv_pass pass,
                                      const cc_options* options, char* text, size_t capacity);

/* y = conv(x, w). x: n*c*h*w, w: k*(c/groups)*r*s, y: n*k*p*q. */
CC_API cc_status cc_conv_forward(cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
                                 const float* x, const float* w, float* y,
                                 void* workspace, size_t workspace_bytes, void* stream);

/* The forward convolution with an epilogue (cc_conv_epilogue in cheapconv/problem.h), the launches a pre-activation
 * residual network spends after most of its convolutions, done in the convolution's store where the tensor-core kernels
 * run it:
 *   v = conv(x, w) + epilogue->residual (when not NULL)   -> y (when not NULL)
 *   relu(eval batch norm(v)) per output channel k          -> epilogue->activated (when not NULL)
 * with the arithmetic of cc_add and of cc_batchnorm_eval_forward with relu set: the same bits as those calls made after
 * cc_conv_forward. Where the pass runs the implicit-GEMM kernels (CC_ALGO_IMPLICIT_GEMM, or CC_ALGO_AUTO's choice with
 * CC_PRECISION_TF32) it is one launch; any other variant runs cc_conv_forward, cc_add and cc_batchnorm_eval_forward in
 * turn, so every problem cc_conv_forward accepts is accepted. Workspace as cc_conv_forward's (CC_CONV_FORWARD).
 * epilogue must not be NULL; all its pointers NULL is the plain forward. y may be NULL when epilogue->activated is not
 * (only the normalised output is needed). bn_gamma, bn_beta, bn_mean and bn_var (k each) are given exactly when activated
 * is, and bn_eps must then be finite and >= 0. residual and activated have y's shape (n*k*p*q). y and activated must not
 * overlap each other or any input (x, w, residual, the batch-norm parameters). CC_ERROR_INVALID_VALUE names what is wrong. */
CC_API cc_status cc_conv_forward_fused(cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
                                       const cc_conv_epilogue* epilogue, const float* x, const float* w, float* y,
                                       void* workspace, size_t workspace_bytes, void* stream);

/* The training-mode batch norm that follows a convolution, with its statistics computed in the convolution's store, so
 * that the batch norm reads its input once (cc_batchnorm_train_forward reads it two or three times):
 *   cc_conv_forward_bn_stats               y = conv(x, w) [+ residual], and per block of the forward kernel and per output
 *                                          channel k, a slot of the statistics of the y values the block stored
 *   cc_batchnorm_train_forward_from_stats  combines each channel's slots, then does what cc_batchnorm_train_forward does
 *                                          with y as its x (the same outputs, running-statistics update and conventions)
 * A slot is CC_BN_STATS_FLOATS_PER_SLOT floats {count, mean, sum of squared deviations from that mean} (not a sum of
 * squares, which loses the variance to cancellation when |mean| is large against the spread); slot s of channel k starts
 * at stats[CC_BN_STATS_FLOATS_PER_SLOT * (k * slots + s)]. Each slot has one writer (no atomics), and the batch norm
 * combines them (Chan, Golub and LeVeque's pairwise update) in a fixed order: the same bits on every run. The statistics
 * differ from cc_batchnorm_train_forward's within rounding. */
#define CC_BN_STATS_FLOATS_PER_SLOT 3

/* The slots per output channel cc_conv_forward_bn_stats writes for the problem with these options (options may be NULL):
 * stats needs k * slots * CC_BN_STATS_FLOATS_PER_SLOT floats. The tensor-core (implicit-GEMM) and the tiled 3x3 forward kernels
 * write statistics: where the pass runs another variant (the direct or GEMM kernels, by CC_ALGO_AUTO's choice or the algo asked
 * for), CC_ERROR_NOT_SUPPORTED, and the caller runs cc_conv_forward (or cc_conv_forward_fused for the residual) and then
 * cc_batchnorm_train_forward. */
CC_API cc_status cc_conv_bn_stats_slots(const cc_conv_problem* problem, const cc_options* options, int* slots);

/* y = conv(x, w) + residual (residual may be NULL: nothing added; with the add of cc_conv_forward_fused, the same bits),
 * and the statistics slots of y into stats (stats_bytes at least k * slots * CC_BN_STATS_FLOATS_PER_SLOT * 4, slots from
 * cc_conv_bn_stats_slots with the same problem and options). One launch. CC_ERROR_NOT_SUPPORTED as cc_conv_bn_stats_slots.
 * y and stats must not overlap each other or any input; the workspace is CC_CONV_FORWARD's. */
CC_API cc_status cc_conv_forward_bn_stats(cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
                                          const float* residual, const float* x, const float* w, float* y, float* stats,
                                          size_t stats_bytes, void* workspace, size_t workspace_bytes, void* stream);

/* The training-mode batch norm (+ ReLU) between a convolution's input z and what the convolution multiplies: per input
 * channel c, a = relu?(cc_bn_affine(z, mean[c], invstd[c], gamma[c], beta[c])) with the batch's saved statistics (what
 * cc_batchnorm_train_forward's save_mean and save_invstd hold), the arithmetic of cc_batchnorm_train_forward's apply, so a
 * kernel that applies it while reading z (a prologue) multiplies the same a as one that reads a stored copy. Four arrays
 * of problem->c floats on the device; relu nonzero applies max(., 0) after the affine map. */
typedef struct cc_conv_input_bn {
    const float* mean;
    const float* invstd;
    const float* gamma;
    const float* beta;
    int relu;
} cc_conv_input_bn;

/* The input batch norm (cc_conv_input_bn, above) applied by the convolution as it reads z, so a = relu?(bn(z)) is never
 * stored: for 1x1 problems with stride 1, no padding and groups 1 whose passes run the tensor-core kernels
 * (CC_ALGO_IMPLICIT_GEMM, or CC_ALGO_AUTO with CC_PRECISION_TF32). cc_conv_input_bn_supported returns CC_SUCCESS for those
 * (with these options, options->accumulate aside) and CC_ERROR_NOT_SUPPORTED otherwise, with a message; the caller then
 * runs cc_batchnorm_train_forward (which stores a) and the plain calls on a. The statistics come from
 * cc_batchnorm_train_statistics or cc_batchnorm_train_statistics_from_stats (the batch norm's forward without its y). */
CC_API cc_status cc_conv_input_bn_supported(const cc_conv_problem* problem, const cc_options* options);

/* y = conv(a, w) + residual with a = relu?(bn(z)) per input channel (residual may be NULL: nothing added), and, when stats
 * is not NULL, the statistics slots of y as cc_conv_forward_bn_stats writes them (stats_bytes as it checks them; slots from
 * cc_conv_bn_stats_slots). One launch. y has the bits of cc_conv_forward (cc_conv_forward_fused with the residual,
 * cc_conv_forward_bn_stats with stats) run on a stored by cc_batchnorm_train_forward with the same statistics.
 * CC_ERROR_NOT_SUPPORTED as cc_conv_input_bn_supported. y and stats must not overlap each other or any input (z, w,
 * residual, bn's arrays); the workspace is CC_CONV_FORWARD's. */
CC_API cc_status cc_conv_forward_input_bn(cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
                                          const cc_conv_input_bn* bn, const float* residual, const float* z, const float* w, float* y,
                                          float* stats, size_t stats_bytes, void* workspace, size_t workspace_bytes, void* stream);

/* dx = dL/dx given dy = dL/dy; with options->accumulate, dx += dL/dx (dx must hold the gradient to add to). */
CC_API cc_status cc_conv_backward_data(cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
                                       const float* dy, const float* w, float* dx,
                                       void* workspace, size_t workspace_bytes, void* stream);

/* The training-mode batch norm (+ ReLU) before a 1x1 convolution, z -> a = relu?(bn(z)) -> y = conv(a, w), with its
 * backward's per-channel reduction done in the store of the convolution's data gradient, so that the batch norm's
 * backward reads z and da once (cc_batchnorm_backward reads them twice):
 *   cc_conv_backward_data_bn_sums    da = the data gradient (cc_conv_backward_data's bits), and per block of its kernel
 *                                    and per input channel c, a slot of the sums of what cc_batchnorm_backward reduces
 *                                    over the positions the block stored
 *   cc_batchnorm_backward_from_sums  adds each channel's slots, then does what cc_batchnorm_backward does with z as its x
 *                                    and da as its dy (the same outputs and conventions)
 * A slot is CC_BN_SUMS_FLOATS_PER_SLOT floats {sum of g, sum of g * x_hat} (x_hat = (z - mean) * invstd; g = da, or 0 where
 * the forward's ReLU mask, recomputed from z, is off); slot s of channel c starts at sums[CC_BN_SUMS_FLOATS_PER_SLOT *
 * (c * slots + s)]. Each slot has one writer (no atomics), and the batch norm adds them in a fixed order: the same bits
 * on every run. dgamma and dbeta differ from cc_batchnorm_backward's within rounding. */
#define CC_BN_SUMS_FLOATS_PER_SLOT 2   /* {sum of g, sum of g * x_hat}; slot s of channel c at sums[2 * (c * slots + s)] */

/* The slots per INPUT channel cc_conv_backward_data_bn_sums writes for the problem with these options (options may be
 * NULL): sums needs c * slots * CC_BN_SUMS_FLOATS_PER_SLOT floats. Only the tensor-core (implicit-GEMM) data gradient of a
 * 1x1 convolution with stride 1, no padding and groups 1 writes them; where the pass runs another variant (CC_ALGO_AUTO's
 * choice, or the algo asked for), or options->accumulate is set (the sums are of da alone), CC_ERROR_NOT_SUPPORTED, and
 * the caller runs cc_conv_backward_data and then cc_batchnorm_backward. */
CC_API cc_status cc_conv_bn_sum_slots(const cc_conv_problem* problem, const cc_options* options, int* slots); /* slots per INPUT channel, or CC_ERROR_NOT_SUPPORTED + message */

/* da = dL/da given dy (overwritten, cc_conv_backward_data's bits; options->accumulate must be 0), and the sums slots of the
 * batch norm bn whose input is z (problem->c channels, the convolution's input shape; bn's four arrays and relu as in the
 * forward that made a from z) into sums (sums_bytes at least c * slots * CC_BN_SUMS_FLOATS_PER_SLOT * 4, slots from
 * cc_conv_bn_sum_slots with the same problem and options). One launch. CC_ERROR_NOT_SUPPORTED as cc_conv_bn_sum_slots.
 * da and sums must not overlap each other or any input; the workspace is CC_CONV_BACKWARD_DATA's. */
CC_API cc_status cc_conv_backward_data_bn_sums(cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
        const cc_conv_input_bn* bn, const float* z, const float* dy, const float* w, float* da,
        float* sums, size_t sums_bytes, void* workspace, size_t workspace_bytes, void* stream);

/* dw = dL/dw given x and dy. */
CC_API cc_status cc_conv_backward_weight(cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
                                         const float* x, const float* dy, float* dw,
                                         void* workspace, size_t workspace_bytes, void* stream);

/* Both gradients of a convolution: dx as cc_conv_backward_data computes it (with options->accumulate, dx += it) and dw
 * as cc_conv_backward_weight does, with the same bits. Both read dy and neither reads the other's output, so where the
 * launcher's variants for the two passes are of one family (the implicit-GEMM kernels of 1x1 or of 3x3 filters, the
 * tiled kernels of stride 1 or 2) it is ONE launch, whose first blocks compute dw and the rest dx; otherwise the two
 * calls' launches in turn (data, then weight). cc_conv_kernel_names with CC_CONV_BACKWARD says which.
 * dx or dw may be NULL: the call is then exactly cc_conv_backward_weight or cc_conv_backward_data (x, or w, is then
 * not read and may be NULL too); not both. The workspace is the CC_CONV_BACKWARD query's (the split weight gradient's
 * arrival counters first: zero before the call, as the conventions say). dx and dw must not overlap each other or
 * any input. */
CC_API cc_status cc_conv_backward(cc_handle handle, const cc_conv_problem* problem, const cc_options* options, const float* x,
                                  const float* dy, const float* w, float* dx, float* dw, void* workspace, size_t workspace_bytes,
                                  void* stream);

/* Both gradients of cc_conv_forward_input_bn's convolution (without the batch norm's own backward): da = dL/da, the bits
 * of cc_conv_backward_data (with options->accumulate, da += it), and dw = dL/dw from a = relu?(bn(z)), the bits of
 * cc_conv_backward_weight run on a stored a. One launch when both are given; either may be NULL (then that pass alone;
 * not both; z, or w, is then not read and may be NULL). CC_ERROR_NOT_SUPPORTED as cc_conv_input_bn_supported. The
 * workspace is the CC_CONV_BACKWARD query's (its counters zero before the call, as the conventions say). da and dw must
 * not overlap each other or any input (z, dy, w, bn's arrays). */
CC_API cc_status cc_conv_backward_input_bn(cc_handle handle, const cc_conv_problem* problem, const cc_options* options,
                                           const cc_conv_input_bn* bn, const float* z, const float* dy, const float* w, float* da,
                                           float* dw, void* workspace, size_t workspace_bytes, void* stream);

/* ---- linear layer / GEMM -------------------------------------------------------------------------- */

/* y[n, out] = x[n, in] · w[out, in]ᵀ + b[out] (PyTorch's nn.Linear); b may be NULL (no bias). */
typedef struct cc_linear_problem {
    int n, in_features, out_features;
} cc_linear_problem;

CC_API cc_status cc_linear_validate(const cc_linear_problem* problem);
/* Only the weight gradient needs a workspace (split reductions: CC_SPLIT_COUNTER_BYTES of arrival counters, zero
 * before the call, then one partial dw per split); other passes report 0. */
CC_API cc_status cc_linear_workspace_size(const cc_linear_problem* problem, const cc_options* options, size_t* bytes);

CC_API cc_status cc_linear_forward(cc_handle handle, const cc_linear_problem* problem,
                                   const float* x, const float* w, const float* b, float* y, void* stream);
/* dx = dy · w */
CC_API cc_status cc_linear_backward_data(cc_handle handle, const cc_linear_problem* problem,
                                         const float* dy, const float* w, float* dx, void* stream);
/* dw = dyᵀ · x */
CC_API cc_status cc_linear_backward_weight(cc_handle handle, const cc_linear_problem* problem, const cc_options* options,
                                           const float* x, const float* dy, float* dw,
                                           void* workspace, size_t workspace_bytes, void* stream);
/* db = column sums of dy */
CC_API cc_status cc_linear_backward_bias(cc_handle handle, const cc_linear_problem* problem,
                                         const float* dy, float* db, void* stream);

/* ---- batch normalisation (per channel of an NCHW tensor), optionally fused with ReLU ------------- */

typedef struct cc_batchnorm_problem {
    int n, c, h, w;
    float eps;            /* added to the variance, e.g. 1e-5; finite, >= 0 */
    float momentum;       /* running-statistics update, PyTorch's convention (0.1); in [0, 1] */
    int relu;             /* nonzero: y = relu(bn(x)) and the backward includes the ReLU */
    int accumulate;       /* cc_batchnorm_backward: nonzero adds the data gradient into dx (dx = dx + g, g rounded to
                             fp32 first, so the bits are those of writing g and adding it later); 0 overwrites dx.
                             dgamma and dbeta are always overwritten. The other calls ignore it. */
} cc_batchnorm_problem;

CC_API cc_status cc_batchnorm_validate(const cc_batchnorm_problem* problem);

/* Training mode: batch statistics into save_mean / save_invstd (c each), running statistics updated
 * in place (unbiased variance, as PyTorch, so n*h*w must be at least 2), y normalised. y may be x. */
CC_API cc_status cc_batchnorm_train_forward(cc_handle handle, const cc_batchnorm_problem* problem,
                                            const float* x, const float* gamma, const float* beta,
                                            float* running_mean, float* running_var,
                                            float* y, float* save_mean, float* save_invstd, void* stream);
/* cc_batchnorm_train_forward with the batch statistics combined from `slots` slots per channel that cc_conv_forward_bn_stats
 * wrote for x (its y; problem->c is the convolution's k): one launch, which reads x once. The same outputs, running-statistics
 * update (unbiased variance; n*h*w at least 2) and ReLU; y may be x. stats is not overwritten, so the call can run again. */
CC_API cc_status cc_batchnorm_train_forward_from_stats(cc_handle handle, const cc_batchnorm_problem* problem, const float* stats,
                                                       int slots, const float* x, const float* gamma, const float* beta,
                                                       float* running_mean, float* running_var, float* y, float* save_mean,
                                                       float* save_invstd, void* stream);
/* The statistics part of cc_batchnorm_train_forward alone (no y): save_mean, save_invstd and the running-statistics update,
 * the same checks (n*h*w at least 2) and the same bits, for a consumer that applies them itself (cc_conv_forward_input_bn).
 * One launch. */
CC_API cc_status cc_batchnorm_train_statistics(cc_handle handle, const cc_batchnorm_problem* problem, const float* x,
                                               float* running_mean, float* running_var, float* save_mean, float* save_invstd,
                                               void* stream);
/* The statistics part of cc_batchnorm_train_forward_from_stats alone: the slots combined in the same order, so save_mean
 * and save_invstd have its bits, and the same running-statistics update. One launch. */
CC_API cc_status cc_batchnorm_train_statistics_from_stats(cc_handle handle, const cc_batchnorm_problem* problem,
                                                          const float* stats, int slots, float* running_mean, float* running_var,
                                                          float* save_mean, float* save_invstd, void* stream);
/* Evaluation mode: the running statistics normalise. y may be x. */
CC_API cc_status cc_batchnorm_eval_forward(cc_handle handle, const cc_batchnorm_problem* problem,
                                           const float* x, const float* gamma, const float* beta,
                                           const float* running_mean, const float* running_var,
                                           float* y, void* stream);
/* Backward of the training-mode forward. beta is read only when relu is set (to recompute the mask);
 * it may be NULL when relu is 0. With problem->accumulate, dx must hold the gradient to add to. */
CC_API cc_status cc_batchnorm_backward(cc_handle handle, const cc_batchnorm_problem* problem,
                                       const float* x, const float* dy, const float* gamma, const float* beta,
                                       const float* save_mean, const float* save_invstd,
                                       float* dx, float* dgamma, float* dbeta, void* stream);
/* cc_batchnorm_backward with dbeta and dgamma the fixed-order sums of the `slots` slots per channel that
 * cc_conv_backward_data_bn_sums wrote for x = z and dy = da (problem->relu as bn->relu there): one launch, which reads x and
 * dy once. The same outputs, ReLU and accumulate (into dx) conventions; sums is not overwritten, so the call can run again. */
CC_API cc_status cc_batchnorm_backward_from_sums(cc_handle handle, const cc_batchnorm_problem* problem, const float* sums, int slots,
        const float* x, const float* dy, const float* gamma, const float* beta, const float* save_mean, const float* save_invstd,
        float* dx, float* dgamma, float* dbeta, void* stream);

/* ---- element-wise ----------------------------------------------------------------------------------- */

typedef struct cc_elementwise_problem {
    int64_t length;       /* elements; 0 to 2^31 - 1. A length of 0 launches nothing (the pointers are
                             then not looked at), except that cc_sum writes 0 to result[0]. */
} cc_elementwise_problem;

CC_API cc_status cc_elementwise_validate(const cc_elementwise_problem* problem);
/* Only cc_sum needs a workspace (one partial sum per block of its first pass); the others need none. */
CC_API cc_status cc_sum_workspace_size(const cc_elementwise_problem* problem, size_t* bytes);

/* y = max(x, 0); y may alias x (so may every pointer of the calls below, except cc_sum's). */
CC_API cc_status cc_relu_forward(cc_handle handle, const cc_elementwise_problem* problem, const float* x, float* y, void* stream);
/* dx = dy where y > 0, else 0 */
CC_API cc_status cc_relu_backward(cc_handle handle, const cc_elementwise_problem* problem, const float* y, const float* dy,
                                  float* dx, void* stream);
/* y = a + b (y may alias a or b) */
CC_API cc_status cc_add(cc_handle handle, const cc_elementwise_problem* problem, const float* a, const float* b, float* y,
                        void* stream);
CC_API cc_status cc_fill(cc_handle handle, const cc_elementwise_problem* problem, float value, float* x, void* stream);
/* x *= alpha */
CC_API cc_status cc_scale(cc_handle handle, const cc_elementwise_problem* problem, float alpha, float* x, void* stream);
/* y += alpha * x */
CC_API cc_status cc_axpy(cc_handle handle, const cc_elementwise_problem* problem, float alpha, const float* x, float* y,
                         void* stream);
/* result[0] = sum of x, in a fixed order */
CC_API cc_status cc_sum(cc_handle handle, const cc_elementwise_problem* problem, const float* x, float* result,
                        void* workspace, size_t workspace_bytes, void* stream);
/* For each of the `count` tensors listed in `tensors` (an array of cc_tensor_ref in DEVICE memory, so that one
 * launch covers them all and the list is uploaded once for a model), result[i] = the NaN or infinite element of
 * tensor i with the lowest index, or 0 when every element of it is finite. result: `count` floats on the device,
 * disjoint from the list. One launch; the answer is the same whatever the schedule. The list's contents cannot be
 * checked without waiting for the device: each entry must name `length` readable floats (0 allowed). */
CC_API cc_status cc_first_nonfinite(cc_handle handle, const cc_tensor_ref* tensors, int count, float* result, void* stream);

/* ---- pooling and padding ---------------------------------------------------------------------------- */

typedef struct cc_pool_problem {
    int n, c, h, w;                              /* the input */
    int pad_top, pad_bottom, pad_left, pad_right; /* zero padding only; 0 for global average pooling */
} cc_pool_problem;

CC_API cc_status cc_pool_validate(const cc_pool_problem* problem);
/* y[n, c] = mean of x[n, c, :, :]; the problem's paddings must be 0. */
CC_API cc_status cc_global_avg_pool_forward(cc_handle handle, const cc_pool_problem* problem, const float* x, float* y,
                                            void* stream);
CC_API cc_status cc_global_avg_pool_backward(cc_handle handle, const cc_pool_problem* problem, const float* dy, float* dx,
                                             void* stream);
/* y: n × c × (h + top + bottom) × (w + left + right), zeros around x */
CC_API cc_status cc_zero_pad_forward(cc_handle handle, const cc_pool_problem* problem, const float* x, float* y,
                                     void* stream);
CC_API cc_status cc_zero_pad_backward(cc_handle handle, const cc_pool_problem* problem, const float* dy, float* dx,
                                      void* stream);

/* ---- losses --------------------------------------------------------------------------------------- */

/* Losses over logits (n × classes) and attention transfer over feature maps (n × c × h × w).
 * Every loss is a mean written to one float on the device; the backward takes that float's gradient
 * (dloss, one float on the device) so a loss can sit anywhere in a graph. Labels are int32 on the device. */
typedef struct cc_loss_problem {
    int n;
    int classes;          /* cross-entropy, KD, count-correct */
    float temperature;    /* KD: softmax temperature T (the loss is scaled by T², Hinton et al.) */
    int c, h, w;          /* attention transfer: the feature maps */
} cc_loss_problem;

/* Checks every field: n >= 1, the others >= 0 (0 where a loss does not use them), temperature finite,
 * n*classes and n*c*h*w under 2^31 elements. Each call then also checks what it uses: classes >= 1
 * (cross-entropy, KD, count-correct), temperature > 0 (KD), c, h, w >= 1 (attention transfer). */
CC_API cc_status cc_loss_validate(const cc_loss_problem* problem);
/* Workspace of every forward loss: one partial sum per sample (n floats), added in a fixed order. */
CC_API cc_status cc_loss_workspace_size(const cc_loss_problem* problem, size_t* bytes);

/* loss = mean over samples of -log softmax(logits)[label]; probabilities (n × classes) kept for backward. */
CC_API cc_status cc_cross_entropy_forward(cc_handle handle, const cc_loss_problem* problem, const float* logits,
                                          const int32_t* labels, float* loss, float* probabilities,
                                          void* workspace, size_t workspace_bytes, void* stream);
/* dlogits = (probabilities - onehot(labels)) · dloss[0] / n; dlogits may be the probabilities buffer. */
CC_API cc_status cc_cross_entropy_backward(cc_handle handle, const cc_loss_problem* problem, const float* probabilities,
                                           const int32_t* labels, const float* dloss, float* dlogits, void* stream);
/* loss = T²/n · Σ KL(softmax(teacher/T) ‖ softmax(student/T)); both softmaxes kept for backward. */
CC_API cc_status cc_kd_forward(cc_handle handle, const cc_loss_problem* problem, const float* student,
                               const float* teacher, float* loss, float* student_soft, float* teacher_soft,
                               void* workspace, size_t workspace_bytes, void* stream);
/* dstudent = T/n · (student_soft - teacher_soft) · dloss[0]; dstudent may be either softmax buffer. */
CC_API cc_status cc_kd_backward(cc_handle handle, const cc_loss_problem* problem, const float* student_soft,
                                const float* teacher_soft, const float* dloss, float* dstudent, void* stream);
/* Attention transfer (Zagoruyko & Komodakis) for one activation pair: maps q = mean over channels of x²,
 * each sample's map divided by max(‖q‖₂, 1e-12) (F.normalize); loss = Σ (q_s − q_t)² / (n·h·w), the mean
 * over all map elements. student_map, teacher_map (n × h × w, the normalised maps q_s and q_t) and
 * student_norm (n, the student's ‖q‖₂ before normalisation) are kept for backward. */
CC_API cc_status cc_at_forward(cc_handle handle, const cc_loss_problem* problem, const float* student,
                               const float* teacher, float* loss, float* student_map, float* teacher_map,
                               float* student_norm, void* workspace, size_t workspace_bytes, void* stream);
CC_API cc_status cc_at_backward(cc_handle handle, const cc_loss_problem* problem, const float* student,
                                const float* student_map, const float* teacher_map, const float* student_norm,
                                const float* dloss, float* dstudent, void* stream);
/* correct[0] = number of samples whose arg-max logit equals the label (the first maximum wins; NaN counts
 * as the largest). Overwrites correct[0]. */
CC_API cc_status cc_count_correct(cc_handle handle, const cc_loss_problem* problem, const float* logits,
                                  const int32_t* labels, int32_t* correct, void* stream);
/* The same count written as a float to correct[0] (exact: n must be below 2^24), for per-step metrics that stay on
 * the device beside the losses. */
CC_API cc_status cc_count_correct_f32(cc_handle handle, const cc_loss_problem* problem, const float* logits,
                                      const int32_t* labels, float* correct, void* stream);

/* ---- stream capture and graphs ---------------------------------------------------------------------- */

/* A recording of calls made on one stream, replayed as one submission (a CUDA graph on a GPU). */
typedef struct cc_graph_s* cc_graph;

/* Between cc_capture_begin and cc_capture_end, the calls made with `handle` on `stream` are recorded instead of run: the
 * kernel launches and memsets of every cc_* call, cc_memcpy_async and cc_memset8_async, and — on a GPU, where this is the
 * driver's stream capture (relaxed mode) — every other copy or launch the caller queues on that stream. cc_graph_launch
 * runs the recording again, with the same pointers and values (so the buffers must still exist and hold the next inputs),
 * in order on the stream it is given. Calls never allocate or wait, so a training step can be captured whole.
 * One capture at a time per handle. On a GPU `stream` must be a stream the caller created: CUDA cannot capture the legacy
 * default stream (NULL), and the call then returns CC_ERROR_NOT_SUPPORTED. */
CC_API cc_status cc_capture_begin(cc_handle handle, void* stream);
CC_API cc_status cc_capture_end(cc_handle handle, void* stream, cc_graph* graph);
CC_API cc_status cc_graph_launch(cc_handle handle, cc_graph graph, void* stream);
/* Frees a graph (NULL: nothing to do); the handle that made it must still exist. */
CC_API cc_status cc_graph_destroy(cc_handle handle, cc_graph graph);

/* Device-to-device copy and byte fill ordered on `stream` like a launch (and recorded by a capture, also on the
 * emulator). `destination` and `source` must not overlap. */
CC_API cc_status cc_memcpy_async(cc_handle handle, void* destination, const void* source, size_t bytes, void* stream);
CC_API cc_status cc_memset8_async(cc_handle handle, void* destination, unsigned char value, size_t bytes, void* stream);

/* ---- SGD ------------------------------------------------------------------------------------------ */

/* PyTorch's torch.optim.SGD step for one parameter tensor:
 *   g = grad + weight_decay·p;  buf = momentum·buf + g;  p -= lr · (nesterov ? g + momentum·buf : buf) */
typedef struct cc_sgd_problem {
    int64_t length;       /* elements; 0 (nothing to do) to 2^31 - 1 */
    float learning_rate;
    float momentum;
    float weight_decay;
    int nesterov;
} cc_sgd_problem;

/* learning_rate, momentum, weight_decay finite and >= 0; nesterov only with momentum > 0. */
CC_API cc_status cc_sgd_validate(const cc_sgd_problem* problem);
/* In place. momentum_buffer must start at zero; with momentum 0 it is neither read nor written and may
 * be NULL. */
CC_API cc_status cc_sgd_step(cc_handle handle, const cc_sgd_problem* problem, float* parameter, const float* gradient,
                             float* momentum_buffer, void* stream);

#ifdef __cplusplus
}
#endif

#endif
