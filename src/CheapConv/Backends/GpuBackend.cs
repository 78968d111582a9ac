using CheapConv.Devices;
using CheapConv.Kernels;
using CheapConv.Problems;

namespace CheapConv.Backends;

/// <summary>
/// The op level over a <see cref="Device"/>: picks the kernel, computes its grid and block, and packs the
/// arguments as <c>void**</c> exactly as <c>cuLaunchKernel</c> wants them. The same code drives the CUDA
/// driver and the emulator, so CI exercises the real launch path without a GPU. One file per op family
/// (GpuBackend.Gemm.cs, .Norm.cs, .Loss.cs); this one holds memory and the direct convolution.
/// </summary>
public sealed unsafe partial class GpuBackend(Device device) : IBackend, IDisposable
{
    /// <summary>Threads per block for the one-thread-per-element kernels.</summary>
    public const int ElementwiseBlock = 256;

    /// <summary>Threads per block of the weight-gradient kernel: 8 warps, one weight element each.</summary>
    public const int WeightGradBlock = 256;

    public Device Device { get; } = device;

    public string Name => Device.Name;

    public Storage Allocate(long length) => new DeviceStorage(Device.Allocate<float>(length));

    public Storage Upload(ReadOnlySpan<float> data) => new DeviceStorage(Device.Upload(data));

    public void Download(Storage source, Span<float> destination) => Buffer(source).CopyTo(destination);

    public void Copy(Storage source, Storage destination)
    {
        CpuBackend.CheckSameLength(source, destination);
        Device.CopyDeviceToDevice(Buffer(destination).Pointer, Buffer(source).Pointer, source.Length * sizeof(float));
    }

    /// <summary>Frees the scratch buffers the ops keep between calls (labels, loss partials, sum partials). The
    /// device and the storages handed out stay valid; the backend may be used again (buffers come back on demand).</summary>
    public void Dispose()
    {
        ReleaseLossBuffers();
        _sumPartials?.Dispose();
        _sumPartials = null;
    }

    void IBackend.Conv2dForward(ConvProblem problem, Storage x, Storage w, Storage y) =>
        Conv2dForward(problem, Buffer(x), Buffer(w), Buffer(y));

    void IBackend.Conv2dBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx) =>
        Conv2dBackwardData(problem, Buffer(dy), Buffer(w), Buffer(dx));

    void IBackend.Conv2dBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw) =>
        Conv2dBackwardWeight(problem, Buffer(x), Buffer(dy), Buffer(dw));

    /// <summary>The device buffer behind a storage of this backend.</summary>
    internal DeviceBuffer<float> Buffer(Storage storage) => storage is DeviceStorage { Buffer: var buffer } && buffer.Device == Device
        ? buffer
        : throw new ArgumentException($"a {storage.GetType().Name} not on {Device.Name} was given to its backend");

    /// <summary>y = conv(x, w); pointwise problems take the GEMM kernels unless <see cref="PointwiseAsGemm"/> is false.</summary>
    public void Conv2dForward(ConvProblem problem, DeviceBuffer<float> x, DeviceBuffer<float> w, DeviceBuffer<float> y)
    {
        if (PointwiseAsGemm && IsPointwise(problem))
        {
            PointwiseForward(problem, x, w, y);
            return;
        }

        Check(problem, (nameof(x), x, problem.InputElements), (nameof(w), w, problem.WeightElements), (nameof(y), y, problem.OutputElements));
        Launch(KernelNames.Conv2dForward, ForwardConfig(problem), problem, x.Pointer, w.Pointer, y.Pointer);
    }

    /// <summary>dx = ∂L/∂x given dy = ∂L/∂y.</summary>
    public void Conv2dBackwardData(ConvProblem problem, DeviceBuffer<float> dy, DeviceBuffer<float> w, DeviceBuffer<float> dx)
    {
        if (PointwiseAsGemm && IsPointwise(problem))
        {
            PointwiseBackwardData(problem, dy, w, dx);
            return;
        }

        Check(problem, (nameof(dy), dy, problem.OutputElements), (nameof(w), w, problem.WeightElements), (nameof(dx), dx, problem.InputElements));
        Launch(KernelNames.Conv2dBackwardData, BackwardDataConfig(problem), problem, dy.Pointer, w.Pointer, dx.Pointer);
    }

    /// <summary>dw = ∂L/∂w given x and dy = ∂L/∂y (overwrites dw; no accumulation).</summary>
    public void Conv2dBackwardWeight(ConvProblem problem, DeviceBuffer<float> x, DeviceBuffer<float> dy, DeviceBuffer<float> dw)
    {
        if (PointwiseAsGemm && IsPointwise(problem))
        {
            PointwiseBackwardWeight(problem, x, dy, dw);
            return;
        }

        Check(problem, (nameof(x), x, problem.InputElements), (nameof(dy), dy, problem.OutputElements), (nameof(dw), dw, problem.WeightElements));
        Launch(KernelNames.Conv2dBackwardWeight, BackwardWeightConfig(problem), problem, x.Pointer, dy.Pointer, dw.Pointer);
    }

    public static LaunchConfig ForwardConfig(ConvProblem problem) => Elementwise(problem.OutputElements);

    public static LaunchConfig BackwardDataConfig(ConvProblem problem) => Elementwise(problem.InputElements);

    public static LaunchConfig BackwardWeightConfig(ConvProblem problem)
    {
        const int warpsPerBlock = WeightGradBlock / 32;
        return new LaunchConfig(new Dim3(checked((uint)((problem.WeightElements + warpsPerBlock - 1) / warpsPerBlock))), new Dim3(WeightGradBlock));
    }

    // The three conv passes share one signature: (cc_conv_problem, pointer, pointer, pointer).
    private void Launch(string kernel, LaunchConfig config, ConvProblem problem, nint a, nint b, nint c)
    {
        var args = new KernelArguments();
        args.Add(problem);
        args.Add(a);
        args.Add(b);
        args.Add(c);
        args.Launch(Device, kernel, config, problem.ToString());
    }

    /// <summary>A 1-D grid of <see cref="ElementwiseBlock"/>-thread blocks covering <paramref name="elements"/> threads.</summary>
    public static LaunchConfig Elementwise(long elements) =>
        new(new Dim3(checked((uint)Math.Max(1, (elements + ElementwiseBlock - 1) / ElementwiseBlock))), new Dim3(ElementwiseBlock));

    private void Check(ConvProblem problem, params ReadOnlySpan<(string Name, DeviceBuffer<float> Buffer, long Expected)> tensors)
    {
        foreach (var (name, buffer, expected) in tensors)
        {
            if (buffer.Device != Device)
            {
                throw new ArgumentException($"{name} lives on {buffer.Device.Name}, not on {Device.Name}");
            }

            if (buffer.Length != expected)
            {
                throw new ArgumentException($"{name} has {buffer.Length} elements but the problem ({problem}) needs {expected}");
            }
        }
    }
}
