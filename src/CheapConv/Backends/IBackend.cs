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
}
