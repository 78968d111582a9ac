using System.Runtime.InteropServices;
using CheapConv.Problems;

namespace CheapConv.Interop;

// The C# twins of the descriptors of native/include/cheapconv.h (cc_conv_problem's twin is
// CheapConv.Problems.ConvProblem). Same fields, same order, same types; every one is blittable, so a pointer to
// it is a pointer to the C struct. A test compiles a C program against the header and compares every size and
// offset with these (tests/CheapConv.Tests/Interop/AbiLayoutTests.cs).

/// <summary>cc_algo: which kernels a GEMM-capable convolution pass runs.</summary>
public enum KernelAlgorithm
{
    /// <summary>CC_ALGO_AUTO: the launcher's choice (the GEMM kernels for pointwise problems, the tiled kernels for grouped and
    /// depthwise 3×3 ones).</summary>
    Auto = 0,

    /// <summary>CC_ALGO_DIRECT: the direct, correct-first kernels, for any problem.</summary>
    Direct = 1,

    /// <summary>CC_ALGO_GEMM: the tiled fp32 GEMM kernels (1×1, groups 1, no padding, any stride).</summary>
    Gemm = 2,

    /// <summary>CC_ALGO_TILED: the tiled 3×3 kernels (stride 1 or 2, any padding, groups and channels) with a deterministic
    /// split weight gradient.</summary>
    Tiled = 3,

    /// <summary>CC_ALGO_IMPLICIT_GEMM: the tensor-core (tf32) implicit-GEMM kernels, for the passes they implement; needs
    /// <see cref="KernelPrecision.Tf32"/>.</summary>
    ImplicitGemm = 4,
}

/// <summary>cc_precision: the arithmetic a convolution may use.</summary>
public enum KernelPrecision
{
    /// <summary>CC_PRECISION_TF32, the default (as PyTorch's for cuDNN convolutions): tensor-core kernels may run, rounding
    /// x, w and dy to tf32 (10 mantissa bits, a relative error up to 2⁻¹¹ each) and accumulating in fp32.</summary>
    Tf32 = 0,

    /// <summary>CC_PRECISION_FP32: every product exact in fp32 (the CUDA-core kernels).</summary>
    Fp32 = 1,
}

/// <summary>cc_conv_pass: forward (x, w → y), backward-data (dy, w → dx), backward-weight (x, dy → dw), both gradients
/// (<see cref="Backward"/>: cc_conv_backward's workspace and kernel queries), and the forward with batch-norm statistics
/// (<see cref="ForwardBatchNormStats"/>).</summary>
public enum ConvPass
{
    Forward = 0,
    BackwardData = 1,
    BackwardWeight = 2,

    /// <summary>CC_CONV_BACKWARD: dx and dw as one call (<see cref="CheapConvNative.ConvBackward"/>); not one of the
    /// single passes <see cref="ConvPassOperands"/> and <see cref="CheapConvNative.Conv"/> take.</summary>
    Backward = 3,

    /// <summary>CC_CONV_FORWARD_BN_STATS: the forward pass with the batch norm's statistics in its store
    /// (<see cref="CheapConvNative.ConvForwardBatchNormStats"/>); for the workspace and kernel queries only.</summary>
    ForwardBatchNormStats = 4,
}

/// <summary>The operands of each <see cref="ConvPass"/>, in the order the C calls take them.</summary>
public static class ConvPassOperands
{
    /// <summary>The names of the pass's two inputs and its output: ("x", "w", "y"), ("dy", "w", "dx"), ("x", "dy", "dw").</summary>
    public static (string First, string Second, string Output) Names(this ConvPass pass) => pass switch
    {
        ConvPass.Forward => ("x", "w", "y"),
        ConvPass.BackwardData => ("dy", "w", "dx"),
        _ => ("x", "dy", "dw"),
    };

    /// <summary>How many elements each operand of the pass has for <paramref name="problem"/>.</summary>
    public static (long First, long Second, long Output) Elements(this ConvPass pass, ConvProblem problem) => pass switch
    {
        ConvPass.Forward => (problem.InputElements, problem.WeightElements, problem.OutputElements),
        ConvPass.BackwardData => (problem.OutputElements, problem.WeightElements, problem.InputElements),
        _ => (problem.InputElements, problem.OutputElements, problem.WeightElements),
    };
}

/// <summary>cc_options; the default value means "all defaults".</summary>
/// <param name="SplitChunk">Weight gradients: reduction indices per deterministic split; 0 = the launcher's choice;
/// at least the reduction length = one pass straight into dw.</param>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct KernelOptions(KernelAlgorithm Algorithm = KernelAlgorithm.Auto, int SplitChunk = 0)
{
    /// <summary>What <see cref="KernelAlgorithm.Auto"/> may choose; the default, tf32, lets it run tensor-core kernels.
    /// (A field after the positional ones: cc_options' third member.)</summary>
    public KernelPrecision Precision { get; init; }

    /// <summary>cc_options' fourth member: nonzero makes cc_conv_backward_data add the data gradient into dx (rounded to fp32
    /// first: the bits of a separate add); the other calls refuse it.</summary>
    public int Accumulate { get; init; }
}

/// <summary>cc_linear_problem: y[n, out] = x[n, in] · w[out, in]ᵀ + b[out].</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct LinearProblem(int N, int InFeatures, int OutFeatures);

/// <summary>cc_batchnorm_problem: per-channel batch normalisation of an N×C×H×W tensor, optionally fused with ReLU.</summary>
/// <param name="Eps">Added to the variance.</param>
/// <param name="Momentum">Running-statistics update, PyTorch's convention (0.1).</param>
/// <param name="Relu">Nonzero: y = relu(bn(x)) and the backward includes the ReLU.</param>
/// <param name="Accumulate">cc_batchnorm_backward: nonzero adds the data gradient into dx (rounded to fp32 first, the bits of a
/// separate add); 0 overwrites dx. The other calls ignore it.</param>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct BatchNormProblem(int N, int C, int H, int W, float Eps, float Momentum, int Relu, int Accumulate = 0);

/// <summary>cc_elementwise_problem: a flat tensor of at most 2^31 − 1 elements.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct ElementwiseProblem(long Length);

/// <summary>cc_pool_problem: an N×C×H×W input and its zero padding (all 0 for global average pooling).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct PoolProblem(int N, int C, int H, int W, int PadTop = 0, int PadBottom = 0, int PadLeft = 0, int PadRight = 0);

/// <summary>cc_tensor_ref: one tensor of a list a single launch walks (cc_first_nonfinite); lists live in device memory.</summary>
/// <param name="Data">The tensor's first element, a device pointer.</param>
/// <param name="Length">Its fp32 elements.</param>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct TensorRef(nint Data, long Length);

/// <summary>cc_conv_epilogue: what <see cref="CheapConvNative.ConvForwardFused"/> does with the convolution's result before
/// storing it — v = conv(x, w) + <paramref name="Residual"/> (0: nothing added) to y, and relu(eval batch norm(v)) with the
/// four per-channel parameters and <paramref name="BnEps"/> to <paramref name="Activated"/> (0: no second output; the
/// parameters are then 0 too). Device addresses.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct ConvEpilogue(nint Residual, nint BnGamma, nint BnBeta, nint BnMean, nint BnVar, nint Activated, float BnEps);

/// <summary>cc_conv_input_bn: the training batch norm (+ ReLU when <paramref name="Relu"/> is nonzero) a convolution applies to its
/// input as it reads it (<see cref="CheapConvNative.ConvForwardInputBn"/>): four per-input-channel device arrays, the batch's saved
/// mean and 1/√(var + eps), γ and β.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct ConvInputBn(nint Mean, nint InvStd, nint Gamma, nint Beta, int Relu);

/// <summary>cc_loss_problem: logits (N × Classes) for cross-entropy, KD and count-correct; feature maps (N × C × H × W)
/// for attention transfer.</summary>
/// <param name="Temperature">KD's softmax temperature T (the loss is scaled by T²).</param>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct LossProblem(int N, int Classes, float Temperature, int C, int H, int W);

/// <summary>cc_sgd_problem: one torch.optim.SGD step over a flat parameter tensor.</summary>
/// <param name="Nesterov">Nonzero for Nesterov momentum.</param>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct SgdProblem(long Length, float LearningRate, float Momentum, float WeightDecay, int Nesterov);
