using CheapConv.Problems;

namespace CheapConv.Backends;

/// <summary>
/// The op level of DESIGN.md: everything a network needs, on one device. <see cref="CpuBackend"/> runs plain
/// C#; <see cref="GpuBackend"/> launches the CUDA kernels of native/kernels on a CUDA device or the emulator.
/// Both compute the same maths, so a model runs unchanged on either and their results are compared op by op.
/// Conventions: NCHW fp32; every size is passed explicitly; outputs are overwritten (never accumulated)
/// unless a method says otherwise; scalar results (losses, sums) are 1-element storages so they stay on the
/// device. The interface is split by family: conv here, then IBackend.Gemm.cs, IBackend.Norm.cs and
/// IBackend.Loss.cs.
/// </summary>
public partial interface IBackend
{
    /// <summary>For messages: "cpu", "emulator", "NVIDIA H100 … (cuda:0)".</summary>
    string Name { get; }

    /// <summary>A new storage of <paramref name="length"/> elements with unspecified contents.</summary>
    Storage Allocate(long length);

    /// <summary>A new storage holding a copy of <paramref name="data"/>.</summary>
    Storage Upload(ReadOnlySpan<float> data);

    /// <summary>Copies a storage to host memory (waits for pending work).</summary>
    void Download(Storage source, Span<float> destination);

    /// <summary>destination = source (same length).</summary>
    void Copy(Storage source, Storage destination);

    /// <summary>Direct convolution, any groups/R×S/stride/padding (pointwise 1×1 problems may take the GEMM path).</summary>
    void Conv2dForward(ConvProblem problem, Storage x, Storage w, Storage y);

    /// <summary>dx = ∂L/∂x given dy; with <paramref name="accumulate"/>, dx += it instead (rounded to fp32 first, so the bits
    /// equal writing it elsewhere and adding it with <see cref="Axpy"/>, α = 1: the autograd's second gradient of a tensor).</summary>
    void Conv2dBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx, bool accumulate = false);

    void Conv2dBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw);

    /// <summary>
    /// Both gradients of a convolution: <paramref name="dx"/> (when given) as <see cref="Conv2dBackwardData"/> computes it, added
    /// into with <paramref name="accumulate"/>, and <paramref name="dw"/> (when given) as <see cref="Conv2dBackwardWeight"/>
    /// does, with the same bits. At least one of them. This default makes the two calls in turn; <see cref="GpuBackend"/>
    /// makes them one launch where the kernels of the two passes share a grid (cc_conv_backward).
    /// </summary>
    void Conv2dBackward(ConvProblem problem, Storage x, Storage dy, Storage w, Storage? dx, Storage? dw, bool accumulate = false)
    {
        if (dx is null && dw is null)
        {
            throw new ArgumentException("Conv2dBackward: neither dx nor dw: nothing to write");
        }

        if (dx is not null)
        {
            Conv2dBackwardData(problem, dy, w, dx, accumulate);
        }

        if (dw is not null)
        {
            Conv2dBackwardWeight(problem, x, dy, dw);
        }
    }

    /// <summary>
    /// The forward convolution with what follows it in a pre-activation residual network: v = conv(x, w) +
    /// <paramref name="residual"/> (when given) into <paramref name="y"/> (when given), and relu(eval batch norm(v)) into
    /// <paramref name="activation"/>'s output (when given). At least one of y and the activation. The bits are those of
    /// <see cref="Conv2dForward"/>, <see cref="Add"/> and <see cref="BatchNormReluEvalForward"/> made in turn — which is
    /// what this default does; <see cref="GpuBackend"/> makes it one launch where the tensor-core kernels run the problem.
    /// </summary>
    void Conv2dForwardFused(ConvProblem problem, Storage x, Storage w, Storage? y, Storage? residual, EvalBatchNormRelu? activation)
    {
        // Without y the sum is formed in the activation's output and normalised in place (both ops allow it).
        var sum = y ?? activation?.Output ?? throw new ArgumentException("Conv2dForwardFused: neither y nor an activation output: nothing to write");
        Conv2dForward(problem, x, w, sum);
        if (residual is not null)
        {
            Add(sum.Length, sum, residual, sum);
        }

        if (activation is { } a)
        {
            BatchNormReluEvalForward(problem.N, problem.K, problem.P, problem.Q, sum, a.Gamma, a.Beta, a.RunningMean, a.RunningVar, a.Eps, a.Output);
        }
    }

    /// <summary>
    /// The forward convolution and the training-mode batch norm that follows it: y = conv(x, w) + <paramref name="residual"/>
    /// (when given), kept in <paramref name="y"/> (the batch norm's backward reads it), then <paramref name="bn"/> over y, with
    /// its batch statistics saved and its running statistics updated. What <see cref="Conv2dForwardFused"/> and
    /// <see cref="TrainBatchNorm.RunOn"/> made in turn compute — which is what this default does; <see cref="GpuBackend"/>
    /// computes the statistics in the convolution's store where the tensor-core kernels run it, so that the batch norm reads
    /// y once (the same y, statistics within rounding of the separate calls').
    /// </summary>
    void Conv2dForwardBatchNormTrain(ConvProblem problem, Storage x, Storage w, Storage y, Storage? residual, TrainBatchNorm bn)
    {
        if (residual is null)
        {
            Conv2dForward(problem, x, w, y);
        }
        else
        {
            Conv2dForwardFused(problem, x, w, y, residual, activation: null);
        }

        bn.RunOn(this, problem.N, problem.K, problem.P, problem.Q, y);
    }
}
