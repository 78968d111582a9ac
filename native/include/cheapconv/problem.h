/* CheapConv problem descriptors: plain structs shared by kernels, launchers, tests, benchmarks and the
 * C ABI. The C# twin (src/CheapConv/Problems/ConvProblem.cs) must keep the same fields in the same
 * order; a test checks the size. Every field is a 32-bit int so the layout is the same for nvcc, clang
 * (PTX), the host compiler and .NET's sequential struct layout. */
#ifndef CHEAPCONV_PROBLEM_H
#define CHEAPCONV_PROBLEM_H

#ifdef __cplusplus
extern "C" {
#endif

/* Tensor layouts and element types. Only NCHW fp32 is implemented; the fields exist so that NHWC and
 * bf16/tf32 variants are added as variants, not rewrites. */
enum { CC_LAYOUT_NCHW = 0 };
enum { CC_DTYPE_F32 = 0 };

/* 2D convolution, cross-correlation as in PyTorch.
 *   x: N x C x H x W, w: K x (C/groups) x R x S, y: N x K x P x Q
 *   P = (H + 2*pad_h - R) / stride_h + 1, Q = (W + 2*pad_w - S) / stride_w + 1
 * Output channel k belongs to group k / (K/groups) and reads input channels
 * [g*(C/groups), (g+1)*(C/groups)). */
typedef struct cc_conv_problem {
    int n, c, h, w;             /* input */
    int k, r, s;                /* filters */
    int pad_h, pad_w;           /* zero padding on each side */
    int stride_h, stride_w;
    int groups;
    int p, q;                   /* output size, derived from the above */
    int layout;                 /* CC_LAYOUT_* */
    int dtype;                  /* CC_DTYPE_* */
} cc_conv_problem;

/* What a forward convolution does with its result before storing it (cc_conv_forward_fused, cheapconv.h): the
 * epilogue. Passed by value to the implicit-GEMM forward kernels (every pointer NULL: the plain forward), so it
 * lives here, beside the problem, with the same layout in every build. The C# twin is ConvEpilogue.
 *   v = conv(x, w) [+ residual]   written to y (y may be NULL when activated is not)
 *   activated = relu(bn_gamma * (v - bn_mean) / sqrt(bn_var + bn_eps) + bn_beta), per output channel (eval-mode batch
 *               norm with the running statistics, then ReLU: cc_batchnorm_eval_forward's arithmetic, bit for bit) */
typedef struct cc_conv_epilogue {
    const float* residual;      /* y's shape (n*k*p*q), or NULL: nothing added */
    const float* bn_gamma;      /* k each; all four non-NULL exactly when activated is */
    const float* bn_beta;
    const float* bn_mean;       /* the running mean */
    const float* bn_var;        /* the running (unbiased) variance */
    float* activated;           /* y's shape, or NULL: no second output */
    float bn_eps;               /* added to the variance; finite, >= 0 (ignored without activated) */
} cc_conv_epilogue;

/* One tensor of a list that a single launch walks (cc_first_nonfinite): where it starts on the device and how many
 * fp32 elements it has. 16 bytes on every 64-bit build (a pointer, then a 64-bit length); the list itself lives in
 * device memory, so one launch can cover every parameter of a model. The C# twin is TensorRef. */
typedef struct cc_tensor_ref {
    const float* data;
    long long length;
} cc_tensor_ref;

#ifdef __cplusplus
}
#endif

#endif
