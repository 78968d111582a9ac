using CheapConv.Devices;
using CheapConv.Interop;
using CheapConv.Problems;

namespace CheapConv.Backends;

// The GEMM family: pointwise 1×1 convolution (cc_conv_* with CC_ALGO_GEMM) and the linear layer (cc_linear_*). A
// weight gradient may be split into deterministic partial sums; the launcher chooses the split unless a caller
// forces one (cc_options.split_chunk), which the tests do to cover every split.
public sealed unsafe partial class GpuBackend
{
    /// <summary>A problem the pointwise GEMM kernels compute: R = S = 1, groups = 1, no padding, any stride.</summary>
    internal static bool IsPointwise(ConvProblem problem) =>
        problem.R == 1 && problem.S == 1 && problem.Groups == 1 && problem.PadH == 0 && problem.PadW == 0;

    void IBackend.PointwiseForward(ConvProblem problem, Storage x, Storage w, Storage y) =>
        PointwiseForward(problem, Buffer(x), Buffer(w), Buffer(y));

    void IBackend.PointwiseBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx) =>
        PointwiseBackwardData(problem, Buffer(dy), Buffer(w), Buffer(dx));

    void IBackend.PointwiseBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw) =>
        PointwiseBackwardWeight(problem, Buffer(x), Buffer(dy), Buffer(dw));

    /// <summary>y = 1×1 conv(x, w) on the GEMM kernels.</summary>
    internal void PointwiseForward(ConvProblem problem, DeviceBuffer<float> x, DeviceBuffer<float> w, DeviceBuffer<float> y)
    {
        CpuBackend.CheckPointwise(problem);
        Conv(ConvPass.Forward, problem, new KernelOptions(KernelAlgorithm.Gemm), x, w, y);
    }

    /// <summary>dx = Wᵀ · dy at the strided pixels, 0 at the others (every dx element is written).</summary>
    internal void PointwiseBackwardData(ConvProblem problem, DeviceBuffer<float> dy, DeviceBuffer<float> w, DeviceBuffer<float> dx)
    {
        CpuBackend.CheckPointwise(problem);
        Conv(ConvPass.BackwardData, problem, new KernelOptions(KernelAlgorithm.Gemm), dy, w, dx);
    }

    /// <summary>dw = dy · xᵀ summed over all N·P·Q positions (overwrites dw), split as the launcher chooses.</summary>
    internal void PointwiseBackwardWeight(ConvProblem problem, DeviceBuffer<float> x, DeviceBuffer<float> dy, DeviceBuffer<float> dw)
    {
        CpuBackend.CheckPointwise(problem);
        Conv(ConvPass.BackwardWeight, problem, new KernelOptions(KernelAlgorithm.Gemm), x, dy, dw);
    }

    /// <summary>
    /// dw = dy · xᵀ with the N·P·Q positions split into chunks of <paramref name="chunk"/>, added in chunk order
    /// (deterministic); a chunk of at least N·P·Q is a single pass straight into dw. Public so tests can force any split.
    /// </summary>
    internal void PointwiseBackwardWeight(ConvProblem problem, DeviceBuffer<float> x, DeviceBuffer<float> dy, DeviceBuffer<float> dw, int chunk)
    {
        CpuBackend.CheckPointwise(problem);
        Conv(ConvPass.BackwardWeight, problem, new KernelOptions(KernelAlgorithm.Gemm, PositiveChunk(chunk)), x, dy, dw);
    }

    /// <summary>y = x·wᵀ + b.</summary>
    void IBackend.LinearForward(int n, int inFeatures, int outFeatures, Storage x, Storage w, Storage b, Storage y)
    {
        CheckLinear(n, inFeatures, outFeatures, ("x", x, (long)n * inFeatures), ("w", w, (long)outFeatures * inFeatures), ("b", b, outFeatures), ("y", y, (long)n * outFeatures));
        var problem = new LinearProblem(n, inFeatures, outFeatures);
        Device.Native.LinearForward(Device.Handle, problem, Buffer(x).Pointer, Buffer(w).Pointer, Buffer(b).Pointer, Buffer(y).Pointer, Device.Stream);
        Device.Queued("cc_linear_forward", problem);
    }

    /// <summary>dx = dy·w.</summary>
    void IBackend.LinearBackwardData(int n, int inFeatures, int outFeatures, Storage dy, Storage w, Storage dx)
    {
        CheckLinear(n, inFeatures, outFeatures, ("dy", dy, (long)n * outFeatures), ("w", w, (long)outFeatures * inFeatures), ("dx", dx, (long)n * inFeatures));
        var problem = new LinearProblem(n, inFeatures, outFeatures);
        Device.Native.LinearBackwardData(Device.Handle, problem, Buffer(dy).Pointer, Buffer(w).Pointer, Buffer(dx).Pointer, Device.Stream);
        Device.Queued("cc_linear_backward_data", problem);
    }

    /// <summary>dw = dyᵀ·x (overwrites dw), the n samples split as the launcher chooses.</summary>
    void IBackend.LinearBackwardWeight(int n, int inFeatures, int outFeatures, Storage x, Storage dy, Storage dw) =>
        LinearBackwardWeight(n, inFeatures, outFeatures, x, dy, dw, new KernelOptions());

    /// <summary>dw = dyᵀ·x with the samples split into chunks of <paramref name="chunk"/> (see the pointwise overload).</summary>
    internal void LinearBackwardWeight(int n, int inFeatures, int outFeatures, Storage x, Storage dy, Storage dw, int chunk) =>
        LinearBackwardWeight(n, inFeatures, outFeatures, x, dy, dw, new KernelOptions(SplitChunk: PositiveChunk(chunk)));

    private void LinearBackwardWeight(int n, int inFeatures, int outFeatures, Storage x, Storage dy, Storage dw, KernelOptions options)
    {
        CheckLinear(n, inFeatures, outFeatures, ("x", x, (long)n * inFeatures), ("dy", dy, (long)n * outFeatures), ("dw", dw, (long)outFeatures * inFeatures));
        var problem = new LinearProblem(n, inFeatures, outFeatures);
        var (workspace, bytes) = SplitWorkspace(Device.Native.LinearWorkspaceSize(problem, options));
        Device.Native.LinearBackwardWeight(Device.Handle, problem, options, Buffer(x).Pointer, Buffer(dy).Pointer, Buffer(dw).Pointer, workspace, bytes, Device.Stream);
        Device.Queued("cc_linear_backward_weight", problem);
    }

    /// <summary>db = column sums of dy, rows added in order.</summary>
    void IBackend.LinearBackwardBias(int n, int outFeatures, Storage dy, Storage db)
    {
        CheckLinear(n, 1, outFeatures, ("dy", dy, (long)n * outFeatures), ("db", db, outFeatures));
        var problem = new LinearProblem(n, 1, outFeatures);
        Device.Native.LinearBackwardBias(Device.Handle, problem, Buffer(dy).Pointer, Buffer(db).Pointer, Device.Stream);
        Device.Queued("cc_linear_backward_bias", problem);
    }

    /// <summary>A forced split: cc_options.split_chunk takes 0 as "the launcher's choice", which a caller forcing one
    /// cannot mean.</summary>
    private static int PositiveChunk(int chunk) =>
        chunk > 0 ? chunk : throw new ArgumentException($"the split chunk must be positive, got {chunk}", nameof(chunk));

    private void CheckLinear(int n, int inFeatures, int outFeatures, params ReadOnlySpan<(string Name, Storage Storage, long Expected)> tensors)
    {
        CpuBackend.CheckLinear(n, inFeatures, outFeatures);
        foreach (var (name, storage, expected) in tensors)
        {
            _ = Buffer(storage);
            CpuBackend.CheckLinearLengths((name, storage.Length, expected));
        }
    }
}
